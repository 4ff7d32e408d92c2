//! Intake: the form for a new case or petition.

use super::*;

#[derive(Debug, Deserialize, Default)]
pub(super) struct NewQuery {
    #[serde(default)]
    pub(super) kind: String,
}

pub(super) fn new_body(ctx: &Ctx, kind: Kind, error: Option<&str>, village: &str) -> Markup {
    let t = |zh, en| ctx.lang.t(zh, en);
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
            label { (t("类别", "Category"))
                select name="category" {
                    @for c in Category::ALL { option value=(c.code()) { (c.label_zh()) " " (c.label_en()) } }
                }
            }
            label { (t("风险等级", "Risk"))
                select name="risk" {
                    @for r in Risk::ALL { option value=(r.code()) { (r.label_zh()) " " (r.label_en()) } }
                }
            }
            @if kind == Kind::Petition {
                label { (t("来源", "Channel"))
                    select name="channel" {
                        @for c in Channel::ALL { option value=(c.code()) { (c.label_zh()) " " (c.label_en()) } }
                    }
                }
            }
            @for i in 0..3usize {
                label {
                    (t("当事人", "Party")) " " (i + 1)
                    input type="text" name={ "party" (i) } style="width:12em";
                    select name={ "role" (i) } {
                        option value="" { (t("（默认）", "(default)")) }
                        @for r in guihe_protocol::model::PartyRole::ALL { option value=(r.code()) { (r.label_zh()) " " (r.label_en()) } }
                    }
                    " " input type="checkbox" name={ "minor" (i) } value="1"; (t(" 未成年人", " minor"))
                }
            }
            label { (t("摘要", "Summary")) textarea name="summary" rows="4" {} }
            label { input type="checkbox" name="restricted" value="1"; (t(" 限制查看", " Restricted")) }
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
        new_body(&ctx, kind, None, &village),
    )
}

pub(super) async fn new_record(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = csrf_ok(&ctx, f.get("csrf").map(String::as_str).unwrap_or("")) {
        return r;
    }
    let field = |k: &str| f.get(k).cloned().unwrap_or_default();
    let kind = if field("kind") == "petition" {
        Kind::Petition
    } else {
        Kind::Case
    };
    if !ctx.user.role.writes() {
        return message_page(
            ctx.lang,
            Some(&ctx),
            StatusCode::FORBIDDEN,
            ctx.lang.t("此角色不能登记。", "This role does not record."),
        );
    }
    let parties = (0..3)
        .filter(|i| !field(&format!("party{i}")).trim().is_empty())
        .map(|i| PartyForm {
            name: field(&format!("party{i}")),
            role: Some(field(&format!("role{i}"))).filter(|r| !r.is_empty()),
            minor: f.contains_key(&format!("minor{i}")),
            contact: None,
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
            let text = error_text(e).await;
            (
                status,
                Html(
                    layout(
                        ctx.lang,
                        Some(&ctx),
                        ctx.lang.t("登记", "New record"),
                        new_body(&ctx, kind, Some(&text), &field("village")),
                    )
                    .into_string(),
                ),
            )
                .into_response()
        }
    }
}
