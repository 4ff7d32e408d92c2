//! Intake: the form for a new case or petition.

use super::*;

#[derive(Debug, Deserialize, Default)]
pub(super) struct NewQuery {
    #[serde(default)]
    pub(super) kind: String,
}

/// The intake form; after a refusal, `refill` holds what the worker filled in, shown
/// again so that nothing typed is lost.
pub(super) fn new_body(
    ctx: &Ctx,
    kind: Kind,
    error: Option<&str>,
    village: &str,
    refill: Option<&HashMap<String, String>>,
) -> Markup {
    let t = |zh, en| ctx.lang.t(zh, en);
    let value = |name: &str| {
        refill
            .and_then(|f| f.get(name))
            .map(String::as_str)
            .unwrap_or("")
    };
    let checked = |name: &str| refill.is_some_and(|f| f.contains_key(name));
    let today = date(now_ms());
    let pick = |zh: &'static str, en: &'static str| -> &'static str { t(zh, en) };
    html! {
        @if let Some(e) = error { p.error { (e) } }
        p {
            a href="/new?kind=case" { (t("纠纷", "Case")) } " · "
            a href="/new?kind=petition" { (t("信访", "Petition")) }
        }
        form method="post" action="/new" {
            input type="hidden" name="csrf" value=(ctx.user.csrf);
            input type="hidden" name="kind" value=(if kind == Kind::Case { "case" } else { "petition" });
            label { (t("村（12位代码）", "Village (12-digit code)")) input type="text" name="village" value=(village); }
            label { (t("收到日期", "Date received")) span.required { (t("（必填）", " (required)")) }
                input type="date" name="date" max=(today) required
                    value=(if value("date").is_empty() { today.as_str() } else { value("date") });
            }
            label { (t("类别", "Category"))
                select name="category" {
                    @for c in Category::ALL { option value=(c.code()) selected[value("category") == c.code()] { (pick(c.label_zh(), c.label_en())) } }
                }
            }
            label { (t("风险等级", "Risk"))
                select name="risk" {
                    @for r in Risk::ALL { option value=(r.code()) selected[value("risk") == r.code()] { (pick(r.label_zh(), r.label_en())) } }
                }
            }
            @if kind == Kind::Petition {
                label { (t("来源", "Channel"))
                    select name="channel" {
                        @for c in Channel::ALL { option value=(c.code()) selected[value("channel") == c.code()] { (pick(c.label_zh(), c.label_en())) } }
                    }
                }
            }
            @for i in 0..3usize {
                @let role = value(&format!("role{i}"));
                label {
                    (t("当事人", "Party")) " " (i + 1)
                    input type="text" name={ "party" (i) } style="width:12em" value=(value(&format!("party{i}")));
                    select name={ "role" (i) } {
                        option value="" { (t("（默认）", "(default)")) }
                        @for r in guihe_protocol::model::PartyRole::ALL { option value=(r.code()) selected[role == r.code()] { (pick(r.label_zh(), r.label_en())) } }
                    }
                    " " input type="text" name={ "contact" (i) } style="width:9em" placeholder=(t("联系电话", "Phone")) value=(value(&format!("contact{i}")));
                    " " input type="checkbox" name={ "minor" (i) } value="1" checked[checked(&format!("minor{i}"))]; (t(" 未成年人", " minor"))
                }
            }
            label { (t("摘要", "Summary")) span.required { (t("（必填）", " (required)")) } textarea name="summary" rows="4" { (value("summary")) } }
            label { input type="checkbox" name="restricted" value="1" checked[checked("restricted")]; (t(" 限制查看", " Restricted")) }
            button type="submit" id="save" { (t("登记", "Record")) }
        }
    }
}

pub(super) async fn new_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NewQuery>,
) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let kind = if q.kind == "petition" {
        Kind::Petition
    } else {
        Kind::Case
    };
    let village = match status_report(&state).await {
        Some(r) if r.division.len() == 12 && !r.division.ends_with("000") => r.division,
        _ => String::new(),
    };
    page(
        ctx.lang,
        Some(&ctx),
        ctx.lang.t("登记", "New record"),
        new_body(&ctx, kind, None, &village, None),
    )
}

pub(super) async fn new_record(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let ctx = match signed_in_to_write(
        &state,
        &headers,
        &f,
        ("此角色不能登记。", "This role does not record."),
    ) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let field = |k: &str| f.get(k).cloned().unwrap_or_default();
    let kind = if field("kind") == "petition" {
        Kind::Petition
    } else {
        Kind::Case
    };
    let parties = (0..3)
        .filter(|i| !field(&format!("party{i}")).trim().is_empty())
        .map(|i| PartyForm {
            name: field(&format!("party{i}")),
            role: Some(field(&format!("role{i}"))).filter(|r| !r.is_empty()),
            minor: f.contains_key(&format!("minor{i}")),
            contact: Some(field(&format!("contact{i}")))
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty()),
        })
        .collect();
    let form = NewForm {
        villages: field("village")
            .split([',', '，', ' '])
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect(),
        category: field("category"),
        risk: field("risk"),
        channel: (kind == Kind::Petition).then(|| field("channel")),
        summary: field("summary"),
        parties,
        restricted: f.contains_key("restricted"),
        received_ms: None,
    };
    // The date received: today means now, an earlier day that day; a later one is refused.
    let mut form = form;
    let refused_date = match form_day(&field("date")) {
        Ok(start) => {
            form.received_ms = start;
            None
        }
        Err(DayError::NotADate) => Some(ctx.lang.t(
            "收到日期格式不对，请按 年-月-日 填写。",
            "The date received must be year-month-day.",
        )),
        Err(DayError::Future) => Some(ctx.lang.t(
            "收到日期不能晚于今天。",
            "The date received cannot be after today.",
        )),
    };
    if let Some(text) = refused_date {
        return page_status(
            ctx.lang,
            Some(&ctx),
            StatusCode::UNPROCESSABLE_ENTITY,
            ctx.lang.t("登记", "New record"),
            new_body(&ctx, kind, Some(text), &field("village"), Some(&f)),
        );
    }
    match call(
        &state,
        Some(ctx.user.staff.to_string()),
        Call::Create { kind, form },
    )
    .await
    {
        Ok(Reply::Created { id }) => Redirect::to(&format!("/records/{id}")).into_response(),
        Ok(_) => message_page(ctx.lang, Some(&ctx), StatusCode::INTERNAL_SERVER_ERROR, "?"),
        Err(e) => {
            let status = e.status();
            let text = error_text(e, ctx.lang).await;
            page_status(
                ctx.lang,
                Some(&ctx),
                status,
                ctx.lang.t("登记", "New record"),
                new_body(&ctx, kind, Some(&text), &field("village"), Some(&f)),
            )
        }
    }
}
