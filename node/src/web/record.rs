//! A record's page: its view, timeline, and the form for the next event.

use super::*;

/// The event types a form offers, with the fields each takes.
pub(super) const EVENT_TYPES: &[(&str, &str, &str)] = &[
    ("accept", "受理", "accept"),
    ("not_accept", "不予受理", "not accepted"),
    ("assign", "指派", "assign"),
    ("session", "调解记录", "mediation session"),
    ("agreement", "调解协议", "agreement"),
    (
        "judicial_request",
        "申请司法确认",
        "judicial confirmation request",
    ),
    (
        "judicial_result",
        "司法确认结果",
        "judicial confirmation result",
    ),
    (
        "protection_request",
        "申请人身安全保护令",
        "protection order request",
    ),
    (
        "protection_result",
        "保护令裁定",
        "protection order decision",
    ),
    ("refer", "移交上报", "refer"),
    ("resolve", "调解成功", "resolved"),
    ("fail", "调解不成", "failed"),
    ("extend", "延期", "extend"),
    ("reply", "答复", "reply"),
    ("reexam_request", "复查申请", "re-examination request"),
    ("reexam_answer", "复查意见", "re-examination answer"),
    ("follow_up", "回访", "follow-up"),
    ("satisfaction", "满意度评价", "satisfaction rating"),
    ("close", "结案", "close"),
    ("reopen", "重新办理", "reopen"),
    ("review", "审核", "review"),
];

pub(super) fn event_form(ctx: &Ctx, id: &str) -> Markup {
    let t = |zh, en| ctx.lang.t(zh, en);
    html! {
        h2 { (t("记录进展", "Record progress")) }
        form method="post" action={ "/records/" (id) "/events" } {
            input type="hidden" name="csrf" value=(ctx.user.csrf);
            label { (t("事项", "Event"))
                select name="type" id="event-type" {
                    @for (code, zh, en) in EVENT_TYPES {
                        @if *code != "review" || ctx.user.role == StaffRole::TownshipReviewer {
                            option value=(code) { (zh) " " (en) }
                        }
                    }
                }
            }
            label { (t("说明", "Note")) textarea name="note" rows="2" {} }
            label { (t("地点（调解记录）", "Place (session)")) input type="text" name="place"; }
            label { (t("协议内容（调解协议）", "Terms (agreement)")) textarea name="terms" rows="2" {} }
            label { (t("协议形式", "Agreement form"))
                select name="form" { option value="written" { "书面 written" } option value="oral" { "口头 oral" } }
            }
            label { input type="checkbox" name="seek_confirmation" value="1"; (t(" 申请司法确认", " Seek judicial confirmation")) }
            label { (t("法院", "Court")) input type="text" name="court"; }
            label { input type="checkbox" name="granted" value="1"; (t(" 法院准许", " Granted")) }
            label { input type="checkbox" name="urgent" value="1"; (t(" 紧急", " Urgent")) }
            label { (t("移交层级", "Referral level"))
                select name="level" {
                    @for l in guihe_protocol::event::ReferLevel::ALL { option value=(l.code()) { (l.label_zh()) " " (l.label_en()) } }
                }
            }
            label { (t("移交/指派给", "Referred or assigned to")) input type="text" name="to"; }
            label { (t("原因", "Reason")) input type="text" name="reason"; }
            label { (t("延期天数", "Extension days")) input type="text" name="days"; }
            label { (t("满意度（1-5）", "Rating (1-5)")) input type="text" name="rating"; }
            button type="submit" id="add-event" { (t("保存", "Save")) }
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
    record_view(&state, &ctx, &id, None, StatusCode::OK).await
}

pub(super) async fn record_view(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let detail = match call(state, None, Call::Show { id: id.to_string() }).await {
        Ok(Reply::Detail(d)) => d,
        Ok(_) => return message_page(ctx.lang, Some(ctx), StatusCode::INTERNAL_SERVER_ERROR, "?"),
        Err(e) => return api_error_page(ctx, e),
    };
    let c = detail.view.common();
    if !c.visible_to(&ctx.user.staff) {
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
    let body = html! {
        @if let Some(e) = error { p.error { (e) } }
        p {
            b { (status_label(ctx.lang, c.status)) } " · "
            (if ctx.lang == Lang::Zh { c.category.label_zh() } else { c.category.label_en() }) " · "
            (t("风险", "risk")) " " (if ctx.lang == Lang::Zh { c.risk.label_zh() } else { c.risk.label_en() }) " · "
            (t("登记于", "received")) " " (date(c.received_ms))
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
        p { (t("当事人", "Parties")) ": "
            @for p in &c.parties { (p.name) "（" (p.role.label_zh()) @if p.minor { "，" (t("未成年", "minor")) } "） " }
        }
        p { (t("摘要", "Summary")) ": " (c.summary) }
        @if !c.deadlines.is_empty() {
            h2 { (t("期限", "Deadlines")) }
            ul {
                @for d in &c.deadlines {
                    li {
                        (if ctx.lang == Lang::Zh { d.kind.label_zh() } else { d.kind.label_en() }) " " (date(d.due_ms)) " "
                        @match (d.met_ms, d.remaining_ms(now)) {
                            (Some(_), _) => { (t("已办结", "met")) }
                            (None, Some(ms)) if ms < 0 => { span.flag { (t("逾期", "overdue")) " " (format!("{:.1}", -(ms as f64) / DAY_MS)) (t(" 天", " days")) } }
                            (None, Some(ms)) => { (t("剩余", "left")) " " (format!("{:.1}", ms as f64 / DAY_MS)) (t(" 天", " days")) }
                            (None, None) => {}
                        }
                    }
                }
            }
        }
        h2 { (t("时间线", "Timeline")) }
        table id="timeline" {
            tr { th { (t("日期", "Date")) } th { (t("事项", "Event")) } th { (t("记录人", "By")) } th { (t("内容", "Details")) } }
            @for e in &detail.timeline {
                tr {
                    td { (date(e.at_ms)) }
                    td { (e.body.event_type().label_zh()) }
                    td { (e.staff) }
                    td { (details(&e.body)) }
                }
            }
        }
        @if ctx.user.role.writes() { (event_form(ctx, id)) }
    };
    (
        status,
        Html(layout(ctx.lang, Some(ctx), &detail.view.id().to_string(), body).into_string()),
    )
        .into_response()
}

/// A short text of an event's fields.
pub(super) fn details(body: &guihe_protocol::event::Body) -> String {
    let json = serde_json::to_value(body).unwrap_or_default();
    let mut parts = Vec::new();
    if let serde_json::Value::Object(map) = json {
        for (k, v) in map {
            if k == "type" {
                continue;
            }
            let text = match v {
                serde_json::Value::String(s) if s.is_empty() => continue,
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            parts.push(format!("{k}: {text}"));
        }
    }
    parts.join("; ")
}

pub(super) async fn add_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = csrf_ok(&ctx, f.get("csrf").map(String::as_str).unwrap_or("")) {
        return r;
    }
    if !ctx.user.role.writes() {
        return message_page(
            ctx.lang,
            Some(&ctx),
            StatusCode::FORBIDDEN,
            ctx.lang.t("此角色不能记录。", "This role does not record."),
        );
    }
    let ty = f.get("type").cloned().unwrap_or_default();
    if ty == "review" && ctx.user.role != StaffRole::TownshipReviewer {
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
    // Only the fields the event type takes; serde names a missing or wrong one.
    let takes: &[&str] = match ty.as_str() {
        "assign" => &["to", "note"],
        "session" => &["place", "note"],
        "agreement" => &["form", "terms", "seek_confirmation"],
        "judicial_request" => &["court", "note"],
        "protection_request" => &["court", "urgent", "note"],
        "judicial_result" | "protection_result" => &["granted", "note"],
        "refer" => &["level", "to", "reason"],
        "extend" => &["days", "reason"],
        "satisfaction" => &["rating", "note"],
        "review" => &["note"],
        _ => &["note"],
    };
    let mut map = serde_json::Map::new();
    map.insert("type".into(), serde_json::Value::String(ty.clone()));
    for k in takes {
        let v = f.get(*k).map(String::as_str).unwrap_or("");
        let value = match *k {
            "seek_confirmation" | "urgent" | "granted" => serde_json::Value::Bool(!v.is_empty()),
            "days" | "rating" if !v.trim().is_empty() => match v.trim().parse::<u32>() {
                Ok(n) => serde_json::Value::from(n),
                Err(_) => serde_json::Value::String(v.into()),
            },
            _ if v.trim().is_empty() => continue,
            _ => serde_json::Value::String(v.trim().into()),
        };
        map.insert((*k).into(), value);
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
            let text = error_text(e).await;
            record_view(&state, &ctx, &id, Some(&text), status).await
        }
    }
}
