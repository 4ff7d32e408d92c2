//! Reassigning a departed mediator's open records to a colleague at the same office: one
//! assignment entry per record, so the history says who handed what to whom.

use super::*;

#[derive(Debug, Deserialize, Default)]
pub(super) struct ReassignQuery {
    #[serde(default)]
    pub(super) from: String,
}

/// The open records the account `from` is in charge of at this office, restricted ones
/// included (whoever hands them over need not see them: the table leaves out their names
/// and summaries), and referred ones assigned here.
async fn open_records_of(state: &AppState, ctx: &Ctx, from: &str) -> Result<Vec<View>, Response> {
    let Ok(from) = from.trim().parse::<guihe_protocol::id::StaffId>() else {
        return Ok(Vec::new());
    };
    let mut all = match call(state, None, Call::List { kind: None }).await {
        Ok(Reply::Views(v)) => v,
        Ok(_) => return Ok(Vec::new()),
        Err(e) => return Err(api_error_page(ctx, e)),
    };
    all.retain(|v| {
        let c = v.common();
        (c.status.is_open() || c.status == Status::Referred) && c.in_charge(&ctx.node, &from)
    });
    all.sort_by_key(|v| v.common().received_ms);
    Ok(all)
}

fn reassign_body(ctx: &Ctx, from: &str, records: &[View], error: Option<&str>) -> Markup {
    let t = |zh, en| ctx.lang.t(zh, en);
    html! {
        @if let Some(e) = error { p.error { (e) } }
        p { (t("调解员离职或调走时，把其承办的在办记录转交给本办公室的同事。每条记录都会留下一条“指派”记录。",
               "When a mediator leaves, hand their open records to a colleague at this office. Each record gets an assignment entry.")) }
        form method="get" action="/reassign" {
            label { (t("原承办人账号", "The departing mediator's account"))
                input type="text" name="from" value=(from);
            }
            button type="submit" id="find-open" { (t("查看其在办记录", "Show their open records")) }
        }
        @if !from.trim().is_empty() {
            h2 { (t("在办记录", "Open records")) " " (records.len()) }
            (record_table(ctx, records, now_ms()))
            @if !records.is_empty() {
                form method="post" action="/reassign" {
                    input type="hidden" name="csrf" value=(ctx.user.csrf);
                    input type="hidden" name="from" value=(from);
                    label { (t("转交给（同事账号）", "Hand them to (a colleague's account)")) span.required { (t("（必填）", " (required)")) }
                        input type="text" name="to" required;
                    }
                    label { (t("原因", "Reason")) input type="text" name="reason" value=(t("原承办人离职", "The handler left")); }
                    button type="submit" id="reassign" { (t("全部转交", "Hand them all over")) }
                }
            }
        }
    }
}

pub(super) async fn reassign_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ReassignQuery>,
) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let records = match open_records_of(&state, &ctx, &q.from).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    page(
        ctx.lang,
        Some(&ctx),
        ctx.lang.t("转交在办记录", "Hand over open records"),
        reassign_body(&ctx, &q.from, &records, None),
    )
}

pub(super) async fn reassign(
    State(state): State<AppState>,
    headers: HeaderMap,
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
    let field = |k: &str| f.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let (from, to, reason) = (field("from"), field("to"), field("reason"));
    let records = match open_records_of(&state, &ctx, &from).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let refuse = |text: &str, status: StatusCode| {
        page_status(
            ctx.lang,
            Some(&ctx),
            status,
            ctx.lang.t("转交在办记录", "Hand over open records"),
            reassign_body(&ctx, &from, &records, Some(text)),
        )
    };
    // The colleague must be an account of this office.
    match call(&state, None, Call::Account { name: to.clone() }).await {
        Ok(Reply::Account(Some(_))) if to != from => {}
        _ => {
            return refuse(
                ctx.lang.t(
                    "请填写本办公室另一位同事的账号。",
                    "Give the account of another colleague at this office.",
                ),
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    }
    for v in &records {
        let event = serde_json::json!({
            "type": "assign",
            "to": to,
            "note": reason,
        });
        if let Err(e) = call(
            &state,
            Some(ctx.user.staff.to_string()),
            Call::Event {
                id: v.id().to_string(),
                event,
            },
        )
        .await
        {
            let text = error_text(e, ctx.lang).await;
            return refuse(&text, StatusCode::CONFLICT);
        }
    }
    Redirect::to(&format!("/reassign?from={}", to)).into_response()
}
