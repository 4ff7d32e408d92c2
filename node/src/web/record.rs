//! A record's page: its view, timeline, and the form for the next event.

use super::*;

use guihe_protocol::event::{EventType, FieldKind, FormField};

/// A step's form as the worker filled it in, to show again after a refusal.
pub(super) struct Refill<'a> {
    pub(super) ty: &'a str,
    pub(super) fields: &'a HashMap<String, String>,
}

/// The label of a step's field, (Chinese, English).
fn field_label(ty: EventType, field: &str) -> (&'static str, &'static str) {
    match (ty, field) {
        (EventType::Session, "note") => ("调解经过", "What was said"),
        (EventType::NotAccept | EventType::Fail | EventType::Reopen, "note") => ("原因", "Reason"),
        (EventType::Reply, "note") => ("答复内容", "Reply"),
        (EventType::ReexamAnswer, "note") => ("复查意见", "Re-examination answer"),
        (EventType::Review, "note") => ("审核意见", "Review note"),
        (EventType::JudicialResult | EventType::ProtectionResult, "note") => {
            ("裁定书文号或说明", "Ruling number or note")
        }
        (EventType::Satisfaction, "note") => ("当事人意见", "What the party said"),
        (_, "note") => ("说明", "Note"),
        (_, "place") => ("地点", "Place"),
        (_, "terms") => ("协议内容", "Terms"),
        (_, "form") => ("协议形式", "Form"),
        (_, "seek_confirmation") => (
            "双方拟申请司法确认",
            "The parties will seek judicial confirmation",
        ),
        (_, "court") => ("法院", "Court"),
        (_, "urgent") => (
            "紧急（法院24小时内裁定）",
            "Urgent (the court decides within 24 hours)",
        ),
        (_, "granted") => ("法院准许", "Granted"),
        (_, "level") => ("移交层级", "Referred to level"),
        (EventType::Assign, "to") => ("承办人账号", "Handler's account"),
        (_, "to") => ("移交单位", "Referred to"),
        (_, "reason") => ("原因", "Reason"),
        (_, "days") => ("延期天数", "Days added"),
        (_, "rating") => ("满意度（1-5）", "Rating (1-5)"),
        (_, "outcome") => ("审核结论", "The status settled on"),
        _ => ("", ""),
    }
}

/// One field of a step's form, filled in with `value` (after a refusal) if given.
fn field_input(
    ctx: &Ctx,
    (kind, schema): (guihe_protocol::model::Kind, u64),
    ty: EventType,
    f: &FormField,
    value: Option<&str>,
) -> Markup {
    let t = |zh, en| ctx.lang.t(zh, en);
    let (zh, en) = field_label(ty, f.name);
    let mark = if f.required {
        t("（必填）", " (required)")
    } else {
        ""
    };
    let value = value.unwrap_or("");
    html! {
        @match f.kind {
            FieldKind::Flag => {
                label.flag {
                    input type="checkbox" name=(f.name) value="1" checked[!value.is_empty()];
                    " " (t(zh, en))
                }
            }
            FieldKind::Text => {
                label { (t(zh, en)) span.required { (mark) }
                    textarea name=(f.name) rows="3" required[f.required] { (value) }
                }
            }
            FieldKind::Number => {
                label { (t(zh, en)) span.required { (mark) }
                    input type="number" name=(f.name) min="1" value=(value) required[f.required];
                }
            }
            FieldKind::Choice if f.name == "form" => {
                label { (t(zh, en)) span.required { (mark) }
                    select name="form" {
                        @for a in guihe_protocol::event::AgreementForm::ALL {
                            option value=(a.code()) selected[value == a.code()] { (t(a.label_zh(), a.label_en())) }
                        }
                    }
                }
            }
            FieldKind::Choice if f.name == "outcome" => {
                label { (t(zh, en))
                    select name="outcome" {
                        option value="" { (t("维持当前状态", "Keep the current status")) }
                        @for s in Status::ALL.iter().filter(|s| s.applies_to(kind) && guihe_protocol::workflow::status_schema(kind, **s) <= schema) {
                            option value=(s.code()) selected[value == s.code()] { (status_label(ctx.lang, *s)) }
                        }
                    }
                }
            }
            FieldKind::Choice => {
                label { (t(zh, en)) span.required { (mark) }
                    select name=(f.name) {
                        @for l in guihe_protocol::event::ReferLevel::ALL {
                            option value=(l.code()) selected[value == l.code()] { (t(l.label_zh(), l.label_en())) }
                        }
                    }
                }
            }
            FieldKind::Line => {
                label { (t(zh, en)) span.required { (mark) }
                    input type="text" name=(f.name) value=(value) required[f.required];
                }
            }
        }
    }
}

/// The steps that may be recorded next, each its own small form with its own fields and
/// the date it happened. Only the steps the record's state allows are offered (the review
/// only to a township reviewer); after a refusal the step comes back open, as filled in.
pub(super) fn event_forms(
    ctx: &Ctx,
    id: &str,
    (kind, schema): (guihe_protocol::model::Kind, u64),
    steps: &[EventType],
    refill: Option<&Refill<'_>>,
) -> Markup {
    let t = |zh, en| ctx.lang.t(zh, en);
    let today = date(now_ms());
    let steps: Vec<EventType> = steps
        .iter()
        .copied()
        .filter(|ty| *ty != EventType::Review || ctx.user.role == StaffRole::TownshipReviewer)
        .collect();
    html! {
        h2 { (t("记录进展", "Record progress")) }
        @if steps.is_empty() {
            p id="no-steps" { (t("此记录现在没有可以记录的下一步。", "Nothing can be recorded on this record now.")) }
        }
        @for ty in &steps {
            @let mine = refill.filter(|r| r.ty == ty.code());
            @let value = |name: &str| mine.and_then(|r| r.fields.get(name)).map(String::as_str);
            details.step id={ "step-" (ty.code()) } open[mine.is_some()] {
                summary { (t(ty.label_zh(), ty.label_en())) }
                form method="post" action={ "/records/" (id) "/events" } {
                    input type="hidden" name="csrf" value=(ctx.user.csrf);
                    input type="hidden" name="type" value=(ty.code());
                    @for f in ty.form_fields() {
                        (field_input(ctx, (kind, schema), *ty, f, value(f.name)))
                    }
                    label { (t("日期", "Date")) span.required { (t("（必填）", " (required)")) }
                        input type="date" name="date" max=(today) required
                            value=(value("date").unwrap_or(&today));
                    }
                    button type="submit" id={ "add-" (ty.code()) } { (t("保存", "Save")) }
                }
            }
        }
    }
}

pub(super) async fn record_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    record_view(&state, &ctx, &id, None, None, StatusCode::OK).await
}

pub(super) async fn record_view(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    error: Option<&str>,
    refill: Option<&Refill<'_>>,
    status: StatusCode,
) -> Response {
    let detail = match call(state, None, Call::Show { id: id.to_string() }).await {
        Ok(Reply::Detail(d)) => d,
        Ok(_) => return message_page(ctx.lang, Some(ctx), StatusCode::INTERNAL_SERVER_ERROR, "?"),
        Err(e) => return api_error_page(ctx, e),
    };
    let c = detail.view.common();
    if !c.visible_to(&ctx.viewer()) {
        // Not even whether it exists.
        return message_page(
            ctx.lang,
            Some(ctx),
            StatusCode::NOT_FOUND,
            ctx.lang.t("没有这条记录。", "No such record."),
        );
    }
    let t = |zh, en| ctx.lang.t(zh, en);
    let now = now_ms();
    // A returning party's earlier disputes and petitions, as far as this person may see.
    let related: Vec<View> = match call(state, None, Call::Related { id: id.to_string() }).await {
        Ok(Reply::Views(v)) => v
            .into_iter()
            .filter(|v| v.common().visible_to(&ctx.viewer()))
            .collect(),
        _ => Vec::new(),
    };
    let title = format!(
        "{} · {}",
        if detail.view.kind() == guihe_protocol::model::Kind::Case {
            t("纠纷", "Case")
        } else {
            t("信访", "Petition")
        },
        if ctx.lang == Lang::Zh {
            c.category.label_zh()
        } else {
            c.category.label_en()
        }
    );
    let body = html! {
        p.id { (detail.view.id()) }
        @if let Some(e) = error { p.error { (e) } }
        p {
            b { (status_label(ctx.lang, c.status)) } " · "
            (if ctx.lang == Lang::Zh { c.category.label_zh() } else { c.category.label_en() }) " · "
            (t("风险", "risk")) " " (if ctx.lang == Lang::Zh { c.risk.label_zh() } else { c.risk.label_en() }) " · "
            (t("登记于", "received")) " " (date(c.received_ms))
            @if detail.timeline.first().is_some_and(|e| e.entered_late()) {
                " " span.flag.late title=(t("登记日期早于录入时间两天以上", "dated more than two days before it was entered")) { (t("补录", "entered afterwards")) }
            }
            @if c.needs_review { " · " span.flag { (t("待审核", "needs review")) } }
            @if c.restricted { " · " span.flag { (t("限制查看", "restricted")) } }
        }
        @if let Some(code) = &detail.refused_upstream {
            @let (zh, en) = guihe_protocol::quarantine::label(code);
            p.error id="refused-upstream" { (t("本机对此记录的一项修改已被上级节点拒收", "A change this office made to this record was refused by the office above")) "（" (t(zh, en)) "）。" (t("本机此后对该记录的修改都无法同步，因此已不能再修改此记录。请联系乡镇（街道）调解办公室，由上级重新登记需要补充的内容。",
                "Nothing more this office writes to it could reach them, so it can no longer be changed here. Ask the township office to record what is needed.")) }
        }
        @if c.revoked_entries {
            p.error { (t("本记录含有被吊销节点在吊销前未送达县里的录入（可能是失窃电脑上的冒名录入），已保留待审核：请核对纸质卷宗，必要时由乡镇更正。",
                "This record holds entries of a revoked office node that had not reached the county when it was revoked (perhaps a thief's, on a stolen PC): kept for review; check them against the paper file and have the township correct them if needed.")) }
        }
        p { (t("村", "Villages")) ": " (c.jurisdictions.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")) }
        @if let Some(number) = detail.own_number {
            p id="case-number" { (t("编号", "Number")) ": " (guihe_protocol::numbering::printed(number, ""))
                @if detail.duplicate_number {
                    " " span.flag { (t("编号重复：本机另有记录使用同一编号，请核对纸质卷宗后更正。", "duplicate: another record here holds the same number; check the paper file")) }
                }
            }
        }
        @if c.parties.iter().any(|p| p.details.is_some()) {
            h2 { (t("当事人", "Parties")) }
            table.cards id="parties" {
                tr { th { (t("姓名", "Name")) } th { (t("身份", "Role")) } th { (t("性别", "Sex")) } th { (t("年龄", "Age")) } th { (t("民族", "Ethnicity")) } th { (t("职业或工作单位", "Occupation")) } th { (t("住所", "Address")) } th { (t("联系电话", "Phone")) } th { (t("身份证号码", "ID number")) } }
                @for p in &c.parties {
                    @let d = p.details.clone().unwrap_or_default();
                    tr {
                        td { (p.name) @if p.minor { "（" (t("未成年", "minor")) "）" } }
                        td { (t(p.role.label_zh(), p.role.label_en())) }
                        td { (d.sex.map_or("", |x| t(x.label_zh(), x.label_en()))) }
                        td { (d.age.map(|a| a.to_string()).unwrap_or_default()) }
                        td { (d.ethnicity) }
                        td { (d.occupation) }
                        td { (d.address) }
                        td { (p.contact.clone().unwrap_or_default()) }
                        td { (d.id_number) }
                    }
                }
            }
        } @else {
            p { (t("当事人", "Parties")) ": "
                @for p in &c.parties { (p.name) "（" (p.role.label_zh()) @if p.minor { "，" (t("未成年", "minor")) } "） " }
            }
        }
        @if let Some(m) = &c.matter {
            p id="matter" { (t("事项情况", "The matter")) ": " (crate::words::matter(m, ctx.lang == Lang::Zh)) }
        }
        p { (t("摘要", "Summary")) ": " (c.summary) }
        @if !c.deadlines.is_empty() {
            h2 { (t("期限", "Deadlines")) }
            ul {
                @for d in &c.deadlines {
                    li {
                        (if ctx.lang == Lang::Zh { d.kind.label_zh() } else { d.kind.label_en() }) " " (crate::words::due(d.kind, d.due_ms)) " "
                        @let state = d.state(now);
                        span class=(if matches!(state, guihe_protocol::deadline::DeadlineState::Overdue { .. }) { "flag" } else { "" }) {
                            (crate::words::deadline(state, ctx.lang == Lang::Zh))
                        }
                    }
                }
            }
        }
        @if !c.conflicts.is_empty() || !c.skipped.is_empty() {
            h2 id="contradictions" { (t("待审核的原因", "Why it needs review")) }
            ul {
                @for x in &c.conflicts {
                    li { (crate::words::contradiction(&detail, Some(&ctx.node), x, ctx.lang == Lang::Zh)) }
                }
                @for x in &c.skipped {
                    li { (crate::words::not_applied(&detail, Some(&ctx.node), x, ctx.lang == Lang::Zh)) }
                }
            }
        }
        (print_links(&detail))
        h2 { (t("时间线", "Timeline")) }
        table.cards id="timeline" {
            tr { th { (t("日期", "Date")) } th { (t("事项", "Event")) } th { (t("记录人", "By")) } th { (t("内容", "Details")) } }
            @for e in &detail.timeline {
                tr {
                    td { (date(e.at_ms))
                        @if e.entered_late() {
                            " " span.flag.late title={ (t("录入于", "entered on")) " " (date(e.hlc.wall_ms)) } { (t("补录", "entered afterwards")) }
                        }
                    }
                    td { (t(e.body.event_type().label_zh(), e.body.event_type().label_en())) }
                    td { (crate::words::author(&detail, Some(&ctx.node), e).unwrap_or(e.staff.as_str())) }
                    td { (crate::words::entry_sentence(&detail, Some(&ctx.node), e, ctx.lang == Lang::Zh)) }
                }
            }
        }
        @if !related.is_empty() {
            h2 id="related" { (t("同一当事人的其他记录", "Other records of the same people")) }
            (record_table(ctx, &related, now))
        }
        @if ctx.user.role.writes() { (event_forms(ctx, id, (detail.view.kind(), detail.schema), &detail.next_steps, refill)) }
    };
    page_status(ctx.lang, Some(ctx), status, &title, body)
}

pub(super) async fn add_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let ctx = match signed_in_to_write(
        &state,
        &headers,
        &f,
        ("此角色不能记录。", "This role does not record."),
    ) {
        Ok(c) => c,
        Err(r) => return r,
    };
    // Only a record this person may see can be written to: writing makes them its handler.
    let received_ms = match call(&state, None, Call::Show { id: id.clone() }).await {
        Ok(Reply::Detail(d)) if d.view.common().visible_to(&ctx.viewer()) => {
            d.view.common().received_ms
        }
        Ok(_) => {
            return message_page(
                ctx.lang,
                Some(&ctx),
                StatusCode::NOT_FOUND,
                ctx.lang.t("没有这条记录。", "No such record."),
            );
        }
        Err(e) => return api_error_page(&ctx, e),
    };
    let ty = f.get("type").cloned().unwrap_or_default();
    let Some(step) = guihe_protocol::workflow::ALL_EVENT_TYPES
        .iter()
        .copied()
        .find(|t| t.code() == ty && !t.form_fields().is_empty())
    else {
        let text = ctx.lang.t("请选择要记录的事项。", "Choose what to record.");
        return record_view(&state, &ctx, &id, Some(text), None, StatusCode::BAD_REQUEST).await;
    };
    if step == EventType::Review && ctx.user.role != StaffRole::TownshipReviewer {
        return message_page(
            ctx.lang,
            Some(&ctx),
            StatusCode::FORBIDDEN,
            ctx.lang.t(
                "只有乡镇审核员可以审核。",
                "Only a township reviewer reviews.",
            ),
        );
    }
    let refill = Refill {
        ty: &ty,
        fields: &f,
    };
    let refuse = |text: String, status: StatusCode| {
        let state = state.clone();
        let id = id.clone();
        let ctx = &ctx;
        let refill = &refill;
        async move { record_view(&state, ctx, &id, Some(&text), Some(refill), status).await }
    };
    // An assignment names a colleague at this office (whom it lets see the record).
    if step == EventType::Assign {
        let to = f
            .get("to")
            .map(|t| t.trim().to_string())
            .unwrap_or_default();
        if !matches!(
            call(&state, None, Call::Account { name: to }).await,
            Ok(Reply::Account(Some(_)))
        ) {
            let text = ctx.lang.t(
                "请填写本办公室同事的账号。",
                "Give the account of a colleague at this office.",
            );
            return refuse(text.into(), StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    }
    // Only the fields the step takes; the record's rules name a missing or wrong one.
    let mut map = serde_json::Map::new();
    map.insert("type".into(), serde_json::Value::String(ty.clone()));
    for field in step.form_fields() {
        let v = f.get(field.name).map(String::as_str).unwrap_or("").trim();
        let value = match field.kind {
            FieldKind::Flag => serde_json::Value::Bool(!v.is_empty()),
            FieldKind::Number if !v.is_empty() => match v.parse::<u32>() {
                Ok(n) => serde_json::Value::from(n),
                Err(_) => {
                    let (zh, en) = field_label(step, field.name);
                    let text = match ctx.lang {
                        Lang::Zh => format!("“{zh}”应填一个整数。"),
                        Lang::En => format!("{en} must be a whole number."),
                    };
                    return refuse(text, StatusCode::UNPROCESSABLE_ENTITY).await;
                }
            },
            _ if v.is_empty() => continue,
            _ => serde_json::Value::String(v.into()),
        };
        map.insert(field.name.into(), value);
    }
    // The date it happened: today means now; an earlier day means that day, no earlier
    // than the record's receipt; a later day is refused.
    let start = match form_day(f.get("date").map_or("", String::as_str)) {
        Ok(start) => start,
        Err(DayError::NotADate) => {
            let text = ctx.lang.t(
                "日期格式不对，请按 年-月-日 填写。",
                "The date must be year-month-day.",
            );
            return refuse(text.into(), StatusCode::UNPROCESSABLE_ENTITY).await;
        }
        Err(DayError::Future) => {
            let text = ctx
                .lang
                .t("日期不能晚于今天。", "The date cannot be after today.");
            return refuse(text.into(), StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    if let Some(start) = start {
        // On the day of receipt, no earlier than the receipt itself; an earlier day is the
        // command's to refuse (日期不能早于收到日期).
        let at = if start.saturating_add(86_400_000) > received_ms {
            start.max(received_ms)
        } else {
            start
        };
        map.insert("at_ms".into(), serde_json::Value::from(at));
    }
    match call(
        &state,
        Some(ctx.user.staff.to_string()),
        Call::Event {
            id: id.clone(),
            event: serde_json::Value::Object(map),
        },
    )
    .await
    {
        Ok(_) => Redirect::to(&format!("/records/{id}")).into_response(),
        Err(e) => {
            let status = e.status();
            let text = error_text(e, ctx.lang).await;
            refuse(text, status).await
        }
    }
}
