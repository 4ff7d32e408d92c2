//! 我的待办: the page a worker lands on, what is due from them, most urgent first.

use guihe_protocol::deadline::DeadlineState;
use guihe_protocol::todo::Why;

use super::*;
use crate::api::TodoLine;

/// What an item asks, in a few words, and how urgent it reads.
fn what(ctx: &Ctx, line: &TodoLine) -> (String, bool) {
    let zh = ctx.lang == Lang::Zh;
    let t = |c: &str, e: &str| ctx.lang.t(c, e).to_string();
    match line.item.why {
        Why::Deadline { kind, state } => (
            format!(
                "{}{}{}",
                if zh { kind.label_zh() } else { kind.label_en() },
                if zh { "：" } else { ": " },
                crate::words::deadline(state, zh)
            ),
            matches!(state, DeadlineState::Overdue { .. })
                || matches!(state, DeadlineState::Open { left_ms } if left_ms < 3 * 86_400_000),
        ),
        Why::ConfirmationClosing { state } => (
            format!(
                "{}{}",
                t(
                    "司法确认申请期限将满，请提醒当事人：",
                    "The judicial-confirmation window closes soon; tell the parties: "
                ),
                crate::words::deadline(state, zh)
            ),
            true,
        ),
        Why::FollowUp { due_ms } => (
            format!(
                "{}{}",
                t("回访到期 ", "Follow-up due "),
                if zh {
                    crate::words::date_zh(due_ms)
                } else {
                    date(due_ms)
                }
            ),
            false,
        ),
        Why::Assigned => (t("指派给我承办", "Assigned to me"), false),
        Why::Referred => (
            t(
                "下级移交，待本级接手",
                "Referred here, waiting to be taken up",
            ),
            false,
        ),
        Why::Review => (
            t(
                "记录相互矛盾，待审核",
                "Contradictory entries, waiting for review",
            ),
            false,
        ),
    }
}

pub(super) async fn todo_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let reviewer = ctx.user.role == StaffRole::TownshipReviewer;
    let lines = match call(
        &state,
        Some(ctx.user.staff.to_string()),
        Call::Todo { reviewer },
    )
    .await
    {
        Ok(Reply::Todo(lines)) => lines,
        Ok(_) => return message_page(ctx.lang, Some(&ctx), StatusCode::INTERNAL_SERVER_ERROR, "?"),
        Err(e) => return api_error_page(&ctx, e),
    };
    let t = |zh, en| ctx.lang.t(zh, en);
    let body = html! {
        @if lines.is_empty() {
            p id="todo-empty" { (t("今天没有待办事项。", "Nothing is due from you today.")) }
        } @else {
            table.cards id="todo" {
                tr { th { (t("待办", "To do")) } th { (t("事项", "Matter")) } th { (t("当事人", "Parties")) } th { (t("状态", "Status")) } }
                @for line in &lines {
                    @let (text, urgent) = what(&ctx, line);
                    @let c = line.view.common();
                    tr {
                        td class=(if urgent { "flag" } else { "" }) { (text) }
                        td {
                            a href={ "/records/" (line.item.record) } {
                                (if line.view.kind() == guihe_protocol::model::Kind::Case { t("纠纷", "Case") } else { t("信访", "Petition") })
                                " · " (if ctx.lang == Lang::Zh { c.category.label_zh() } else { c.category.label_en() })
                            }
                            br;
                            span.muted { (c.summary.chars().take(40).collect::<String>()) }
                        }
                        td { (names(&line.view, &ctx)) }
                        td { (status_label(ctx.lang, c.status)) }
                    }
                }
            }
        }
    };
    let body = html! {
        (body)
        p.muted { a href="/reassign" { (t("同事离职？转交其在办记录", "A colleague left? Hand over their open records")) } }
    };
    page(ctx.lang, Some(&ctx), t("我的待办", "My to-do list"), body)
}
