//! The lists of cases and petitions, with filters, and the review queue.

use guihe_protocol::deadline::DeadlineState;

use super::*;

pub(super) async fn views(
    state: &AppState,
    ctx: &Ctx,
    kind: Option<Kind>,
) -> Result<Vec<View>, Response> {
    match call(state, None, Call::List { kind }).await {
        Ok(Reply::Views(v)) => Ok(v
            .into_iter()
            .filter(|v| v.common().visible_to(&ctx.viewer()))
            .collect()),
        Ok(_) => Err(message_page(
            ctx.lang,
            Some(ctx),
            StatusCode::INTERNAL_SERVER_ERROR,
            "?",
        )),
        Err(e) => Err(api_error_page(ctx, e)),
    }
}

pub(super) fn record_table(ctx: &Ctx, views: &[View], now: u64) -> Markup {
    let t = |zh, en| ctx.lang.t(zh, en);
    html! {
        table.cards {
            tr {
                th { (t("编号", "Id")) } th { (t("登记日期", "Received")) } th { (t("状态", "Status")) }
                th { (t("类别", "Category")) } th { (t("风险", "Risk")) } th { (t("当事人", "Parties")) }
                th { (t("摘要", "Summary")) } th { (t("提示", "Flags")) }
            }
            @for v in views {
                @let c = v.common();
                tr {
                    td { a href={ "/records/" (v.id()) } { (v.id().to_string().get(..13).unwrap_or("")) } }
                    td { (date(c.received_ms)) }
                    td { (status_label(ctx.lang, c.status)) }
                    td { (if ctx.lang == Lang::Zh { c.category.label_zh() } else { c.category.label_en() }) }
                    td { (if ctx.lang == Lang::Zh { c.risk.label_zh() } else { c.risk.label_en() }) }
                    td { (names(v, ctx)) }
                    td {
                        @if c.visible_to(&ctx.viewer()) { (c.summary.chars().take(40).collect::<String>()) }
                        @else { (t("（限制查看）", "(restricted)")) }
                    }
                    td.flag {
                        @if c.needs_review { (t("待审核 ", "review ")) }
                        @if c.status.is_open() && c.is_overdue(now) { (t("逾期 ", "overdue ")) }
                        @if c.restricted { (t("限制", "restricted")) }
                    }
                }
            }
        }
        p.muted { (views.len()) " " (t("条", "records")) }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, Default)]
pub(super) struct ListQuery {
    #[serde(default)]
    pub(super) q: String,
    #[serde(default)]
    pub(super) status: String,
    #[serde(default)]
    pub(super) category: String,
    /// A village or township code: records of that unit (the dashboard's drill-down).
    #[serde(default)]
    pub(super) unit: String,
    /// The risk level's code.
    #[serde(default)]
    pub(super) risk: String,
    /// Received on or after this day (`YYYY-MM-DD`).
    #[serde(default)]
    pub(super) from: String,
    /// Received on or before this day.
    #[serde(default)]
    pub(super) to: String,
    /// Handled by this account (it recorded on the record or was assigned it).
    #[serde(default)]
    pub(super) handler: String,
    /// The page, from 0.
    #[serde(default)]
    pub(super) page: usize,
}

/// Rows on one page of a list: enough to work with, light enough for an old PC.
pub(super) const PAGE_ROWS: usize = 200;

pub(super) fn matches(v: &View, q: &ListQuery, ctx: &Ctx) -> bool {
    let c = v.common();
    let unit = q.unit.parse::<guihe_protocol::division::Division>().ok();
    let from = guihe_protocol::stats::parse_date(&q.from);
    let to = guihe_protocol::stats::parse_date(&q.to).map(|t| t + 86_400_000);
    (q.status.is_empty() || c.status.code() == q.status)
        && unit.is_none_or(|d| c.jurisdictions.iter().any(|j| d.covers(*j)))
        && (q.category.is_empty() || c.category.code() == q.category)
        && (q.risk.is_empty() || c.risk.code() == q.risk)
        && from.is_none_or(|f| c.received_ms >= f)
        && to.is_none_or(|t| c.received_ms < t)
        && (q.handler.trim().is_empty() || c.staff.iter().any(|s| s.as_str() == q.handler.trim()))
        && (q.q.trim().is_empty() || {
            let needle = q.q.trim();
            c.summary.contains(needle)
                || v.id().to_string().contains(needle)
                || (c.visible_to(&ctx.viewer()) && c.parties.iter().any(|p| p.found_by(needle)))
                || guihe_protocol::model::id_needle(needle).is_some_and(|id| {
                    c.visible_to(&ctx.viewer()) && c.parties.iter().any(|p| p.may_have_id(&id))
                })
        })
}

/// Whether a record holds a party with the ID number `id`: views hold it masked, so a
/// search by ID number confirms each candidate against the record's parties.
async fn holds_id(state: &AppState, record: &str, id: &str) -> bool {
    match call(
        state,
        None,
        Call::Parties {
            id: record.to_string(),
        },
    )
    .await
    {
        Ok(Reply::Parties(parties)) => parties
            .iter()
            .any(|(_, p)| p.details.as_ref().is_some_and(|d| d.id_number == id)),
        _ => false,
    }
}

pub(super) fn filters(ctx: &Ctx, q: &ListQuery, action: &str) -> Markup {
    let t = |zh, en| ctx.lang.t(zh, en);
    html! {
        form method="get" action=(action) {
            input type="text" name="q" value=(q.q) placeholder=(t("搜索摘要、当事人姓名或电话、编号", "Search summary, a party's name or phone, id")) style="width:20em";
            select name="status" {
                option value="" { (t("全部状态", "Any status")) }
                @for s in Status::ALL {
                    option value=(s.code()) selected[q.status == s.code()] { (status_label(ctx.lang, *s)) }
                }
            }
            select name="category" {
                option value="" { (t("全部类别", "Any category")) }
                @for c in Category::ALL {
                    option value=(c.code()) selected[q.category == c.code()] {
                        (if ctx.lang == Lang::Zh { c.label_zh() } else { c.label_en() })
                    }
                }
            }
            select name="risk" {
                option value="" { (t("全部风险等级", "Any risk")) }
                @for r in guihe_protocol::model::Risk::ALL {
                    option value=(r.code()) selected[q.risk == r.code()] {
                        (if ctx.lang == Lang::Zh { r.label_zh() } else { r.label_en() })
                    }
                }
            }
            label.inline { (t("收到日期 从", "Received from")) " " input type="date" name="from" value=(q.from); }
            label.inline { (t("至", "to")) " " input type="date" name="to" value=(q.to); }
            input type="text" name="handler" value=(q.handler) placeholder=(t("承办人账号", "Handler's account")) style="width:10em";
            @if !q.unit.is_empty() { input type="hidden" name="unit" value=(q.unit); }
            button type="submit" { (t("筛选", "Filter")) }
        }
    }
}

pub(super) async fn list_page(
    state: AppState,
    headers: HeaderMap,
    q: ListQuery,
    kind: Option<Kind>,
) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut all = match views(&state, &ctx, kind).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    all.retain(|v| matches(v, &q, &ctx));
    if let Some(id) = guihe_protocol::model::id_needle(&q.q) {
        let mut confirmed = Vec::new();
        for v in all {
            if holds_id(&state, &v.id().to_string(), &id).await {
                confirmed.push(v);
            }
        }
        all = confirmed;
    }
    all.sort_by_key(|v| std::cmp::Reverse(v.common().received_ms));
    let total = all.len();
    let first = (q.page * PAGE_ROWS).min(total);
    let shown: Vec<View> = all.iter().skip(first).take(PAGE_ROWS).cloned().collect();
    let link = |page: usize| {
        let query = ListQuery { page, ..q.clone() };
        format!(
            "?{}",
            serde_urlencoded::to_string(&query).unwrap_or_default()
        )
    };
    let now = now_ms();
    let (title, action) = match kind {
        Some(Kind::Case) => (ctx.lang.t("纠纷案件", "Dispute cases"), "/cases"),
        Some(Kind::Petition) => (ctx.lang.t("信访事项", "Petitions"), "/petitions"),
        None => (
            ctx.lang.t("查找当事人与记录", "Find a person or a record"),
            "/search",
        ),
    };
    let deadlines = kind == Some(Kind::Petition);
    let body = html! {
        (filters(&ctx, &q, action))
        @if deadlines {
            h2 { (ctx.lang.t("法定期限", "Statutory deadlines")) }
            table {
                tr { th { (ctx.lang.t("编号", "Id")) } th { (ctx.lang.t("期限", "Deadline")) } th { (ctx.lang.t("剩余", "Left")) } }
                @for v in &shown {
                    // The office's deadlines still to meet, and the parties' windows still
                    // open (a lapsed window is nothing the office must act on).
                    @for d in v.common().deadlines.iter().filter(|d| matches!(d.state(now), DeadlineState::Open { .. } | DeadlineState::Overdue { .. })) {
                        @let state = d.state(now);
                        tr {
                            td { a href={ "/records/" (v.id()) } { (v.id().to_string().get(..12).unwrap_or("")) } }
                            td { (if ctx.lang == Lang::Zh { d.kind.label_zh() } else { d.kind.label_en() }) " " (crate::words::due(d.kind, d.due_ms)) }
                            td class=(if matches!(state, DeadlineState::Overdue { .. }) { "flag" } else { "" }) {
                                (crate::words::deadline(state, ctx.lang == Lang::Zh))
                            }
                        }
                    }
                }
            }
            h2 { (ctx.lang.t("全部信访", "All petitions")) }
        }
        (record_table(&ctx, &shown, now))
        p {
            (first + usize::from(total > 0)) "–" (first + shown.len()) " / " (total) " "
            @if q.page > 0 { a href=(link(q.page - 1)) { (ctx.lang.t("上一页", "previous")) } " " }
            @if first + shown.len() < total { a href=(link(q.page + 1)) id="next" { (ctx.lang.t("下一页", "next")) } }
        }
    };
    page(ctx.lang, Some(&ctx), title, body)
}

pub(super) async fn cases(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    list_page(state, headers, q, Some(Kind::Case)).await
}

/// Cases and petitions together: a returning party's earlier disputes and petitions.
pub(super) async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    list_page(state, headers, q, None).await
}

pub(super) async fn petitions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    list_page(state, headers, q, Some(Kind::Petition)).await
}

pub(super) async fn review(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut all = match views(&state, &ctx, None).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    all.retain(|v| v.common().needs_review);
    let body = html! {
        p { (ctx.lang.t(
            "这些记录在断网期间出现了相互矛盾的记录，或有未能采用的记录，需要乡镇审核员处理。",
            "These records got contradictory entries while offices were apart, or entries that could not be applied; a township reviewer settles them."
        )) }
        (record_table(&ctx, &all, now_ms()))
    };
    page(
        ctx.lang,
        Some(&ctx),
        ctx.lang.t("待审核", "Needs review"),
        body,
    )
}
