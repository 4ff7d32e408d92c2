//! The township's and the county's dashboard: figures and trend.

use super::*;

#[derive(Debug, Deserialize, Default)]
pub(super) struct DashQuery {
    #[serde(default)]
    pub(super) division: String,
    /// The period picked: `2026-11`, `2026-Q3`, `2026` or `2018-01-01..`.
    #[serde(default)]
    pub(super) period: String,
}

/// The monthly trend as an SVG line chart.
pub(super) fn trend_svg(stats: &guihe_protocol::stats::Stats, lang: Lang) -> String {
    use plotters::prelude::*;
    let months = &stats.monthly;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 260)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let top = months
            .iter()
            .map(|m| m.received.max(m.resolved))
            .max()
            .unwrap_or(1)
            .max(1) as f64
            * 1.1;
        let n = months.len().max(1);
        let chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .caption(
                lang.t("每月登记与化解", "Received and resolved per month"),
                ("sans-serif", 16),
            )
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top);
        if let Ok(mut chart) = chart {
            let labels: Vec<String> = months.iter().map(|m| m.month.clone()).collect();
            let _ = chart
                .configure_mesh()
                .x_labels(n.min(12))
                .x_label_formatter(&|x| labels.get(x.round() as usize).cloned().unwrap_or_default())
                .draw();
            let received = months
                .iter()
                .enumerate()
                .map(|(i, m)| (i as f64, m.received as f64));
            let resolved = months
                .iter()
                .enumerate()
                .map(|(i, m)| (i as f64, m.resolved as f64));
            // Each month's figures as dots too: a single month draws no line.
            let _ = chart.draw_series(
                received
                    .clone()
                    .map(|p| Circle::new(p, 4, RGBColor(122, 46, 31).filled())),
            );
            let _ = chart.draw_series(
                resolved
                    .clone()
                    .map(|p| Circle::new(p, 4, RGBColor(30, 110, 60).filled())),
            );
            if let Ok(s) = chart.draw_series(LineSeries::new(received, &RGBColor(122, 46, 31))) {
                s.label(lang.t("登记", "received")).legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], RGBColor(122, 46, 31))
                });
            }
            if let Ok(s) = chart.draw_series(LineSeries::new(resolved, &RGBColor(30, 110, 60))) {
                s.label(lang.t("化解", "resolved")).legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], RGBColor(30, 110, 60))
                });
            }
            let _ = chart
                .configure_series_labels()
                .background_style(WHITE)
                .border_style(BLACK)
                .draw();
        }
        let _ = root.present();
    }
    svg
}

/// The counts beside the rates, as (key, label, figure) rows in a fixed order, so that a
/// period's rows and its year-earlier rows line up. Every channel, type and flag has a row,
/// zero included.
fn count_rows(c: &guihe_protocol::stats::Counts, lang: Lang) -> Vec<(String, String, String)> {
    use guihe_protocol::model::{Channel, PetitionType};
    let label = |zh: &str, en: &str| lang.t(zh, en).to_string();
    let mut rows = vec![
        (
            "agreements_written".into(),
            label("书面调解协议", "Written agreements"),
            c.agreements_written.to_string(),
        ),
        (
            "agreements_oral".into(),
            label("口头协议", "Oral agreements"),
            c.agreements_oral.to_string(),
        ),
        (
            "judicial_requested".into(),
            label("申请司法确认", "Judicial confirmation applied for"),
            c.judicial_requested.to_string(),
        ),
        (
            "judicial_granted".into(),
            label("司法确认有效", "Judicial confirmation granted"),
            c.judicial_granted.to_string(),
        ),
        (
            "protection_requested".into(),
            label("申请人身安全保护令", "Protection orders applied for"),
            c.protection_requested.to_string(),
        ),
        (
            "protection_granted".into(),
            label("签发人身安全保护令", "Protection orders issued"),
            c.protection_granted.to_string(),
        ),
        (
            "amount".into(),
            label("涉及金额（元）", "Amount at stake (yuan)"),
            match lang {
                Lang::Zh => format!("{}（{}件填写）", c.amount_yuan, c.with_amount),
                Lang::En => format!("{} ({} records state it)", c.amount_yuan, c.with_amount),
            },
        ),
        (
            "people".into(),
            label("涉及人数", "People involved"),
            match lang {
                Lang::Zh => format!("{}（{}件填写）", c.people, c.with_people),
                Lang::En => format!("{} ({} records state it)", c.people, c.with_people),
            },
        ),
    ];
    for ch in Channel::ALL {
        rows.push((
            format!("channel-{}", ch.code()),
            match lang {
                Lang::Zh => format!("信访·{}", ch.label_zh()),
                Lang::En => format!("Petitions by {}", ch.label_en()),
            },
            c.by_channel.get(ch).copied().unwrap_or(0).to_string(),
        ));
    }
    for ty in PetitionType::ALL {
        rows.push((
            format!("type-{}", ty.code()),
            match lang {
                Lang::Zh => format!("信访·{}类", ty.label_zh()),
                Lang::En => format!("Petitions: {}", ty.label_en()),
            },
            c.by_petition_type.get(ty).copied().unwrap_or(0).to_string(),
        ));
    }
    rows.push((
        "collective".into(),
        label("集体访", "Collective visits"),
        c.collective.to_string(),
    ));
    rows.push((
        "skip_level".into(),
        label("越级访", "Visits that skipped a level"),
        c.skip_level.to_string(),
    ));
    rows
}

/// The periods the dashboard offers, as (value, Chinese label, English label), newest
/// first: this and last month, quarter and year, and since 2018 (the county's reporting
/// began). The value is what `stats::Period::parse` reads.
fn periods(now_ms: u64) -> Vec<(String, String, String)> {
    let month = guihe_protocol::stats::month_of(now_ms);
    let (y, m): (i64, i64) = month
        .split_once('-')
        .and_then(|(y, m)| Some((y.parse().ok()?, m.parse().ok()?)))
        .unwrap_or((2026, 1));
    let (ly, lm) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    let q = (m - 1) / 3 + 1;
    let (lqy, lq) = if q == 1 { (y - 1, 4) } else { (y, q - 1) };
    vec![
        (
            format!("{y}-{m:02}"),
            format!("本月（{y}年{m}月）"),
            format!("This month ({y}-{m:02})"),
        ),
        (
            format!("{ly}-{lm:02}"),
            format!("上月（{ly}年{lm}月）"),
            format!("Last month ({ly}-{lm:02})"),
        ),
        (
            format!("{y}-Q{q}"),
            format!("本季度（{y}年第{q}季度）"),
            format!("This quarter ({y} Q{q})"),
        ),
        (
            format!("{lqy}-Q{lq}"),
            format!("上季度（{lqy}年第{lq}季度）"),
            format!("Last quarter ({lqy} Q{lq})"),
        ),
        (
            format!("{y}"),
            format!("今年（{y}年）"),
            format!("This year ({y})"),
        ),
        (
            format!("{}", y - 1),
            format!("去年（{}年）", y - 1),
            format!("Last year ({})", y - 1),
        ),
        (
            "2018-01-01..".into(),
            "2018年以来".into(),
            "Since 2018".into(),
        ),
    ]
}

pub(super) async fn dashboard(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DashQuery>,
) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let division = Some(q.division.clone()).filter(|d| !d.is_empty());
    let period = Some(q.period.trim().to_string()).filter(|p| !p.is_empty());
    let stats = match call(
        &state,
        None,
        Call::Stats {
            division,
            period: period.clone(),
        },
    )
    .await
    {
        Ok(Reply::Stats(s)) => s,
        Ok(_) => return message_page(ctx.lang, Some(&ctx), StatusCode::INTERNAL_SERVER_ERROR, "?"),
        Err(e) => return api_error_page(&ctx, e),
    };
    let t = |zh, en| ctx.lang.t(zh, en);
    let rate = |u: &guihe_protocol::stats::Unit| {
        u.resolution_rate()
            .map(|r| format!("{:.2}%", r * 100.0))
            .unwrap_or_else(|| "–".into())
    };
    let division = stats.division.map(|d| d.to_string()).unwrap_or_default();
    let svg = trend_svg(&stats, ctx.lang);
    let report = status_report(&state).await;
    let now = now_ms();
    let freshness: Vec<(String, u64)> = report
        .map(|r| {
            r.freshness
                .into_iter()
                .filter(|f| {
                    stats
                        .division
                        .is_some_and(|d| f.village.parse().is_ok_and(|v| d.covers(v)))
                })
                .map(|f| (f.village, now.saturating_sub(f.newest_ms)))
                .collect()
        })
        .unwrap_or_default();
    let choices = periods(now);
    let picked = period.clone().unwrap_or_default();
    let drill = |code: &str| match &period {
        Some(p) => format!("/dashboard?division={code}&period={p}"),
        None => format!("/dashboard?division={code}"),
    };
    let earlier = stats.a_year_earlier.as_deref();
    let percent = |r: Option<f64>| {
        r.map(|r| format!("{:.1}%", r * 100.0))
            .unwrap_or_else(|| "–".into())
    };
    let mean = |r: Option<f64>| r.map(|r| format!("{r:.2}")).unwrap_or_else(|| "–".into());
    // A bar as wide as the share of the largest figure in its table.
    let bar = |n: usize, top: usize| -> String {
        let pct = if top == 0 {
            0.0
        } else {
            n as f64 / top as f64 * 100.0
        };
        format!("width:{pct:.1}%")
    };
    let level_top = stats
        .by_level
        .values()
        .copied()
        .chain([stats.passed_out])
        .max()
        .unwrap_or(0);
    let category_top = stats.by_category.values().copied().max().unwrap_or(0);
    let counts = count_rows(&stats.counts, ctx.lang);
    let counts_before = earlier.map(|e| count_rows(&e.counts, ctx.lang));
    let change = |now: usize, before: usize| -> String {
        if before == 0 {
            return "–".into();
        }
        let pct = (now as f64 - before as f64) / before as f64 * 100.0;
        format!("{pct:+.1}%")
    };
    let body = html! {
        p {
            (t("范围", "Division")) " " b id="division" { (division) } " · "
            a href={ "/cases?unit=" (division) } id="unit-cases" { (t("查看该范围的案件", "Cases in this division")) }
        }
        form method="get" action="/dashboard" id="period-form" {
            input type="hidden" name="division" value=(division);
            label { (t("统计期间", "Period")) " "
                select name="period" id="period" {
                    option value="" selected[picked.is_empty()] { (t("全部记录", "Every record")) }
                    @for (value, zh, en) in &choices {
                        option value=(value) selected[picked == *value] { (if ctx.lang == Lang::Zh { zh.as_str() } else { en.as_str() }) }
                    }
                    @if !picked.is_empty() && !choices.iter().any(|(v, _, _)| *v == picked) {
                        option value=(picked) selected { (picked) }
                    }
                }
                " " button type="submit" id="pick" { (t("查看", "Show")) }
            }
        }
        @if let Some(p) = stats.period {
            p id="period-span" {
                (t("统计期间：", "Period: ")) (crate::words::date_zh(p.from_ms)) (t("至", " to ")) (crate::words::date_zh(p.to_ms.saturating_sub(1)))
                @if let Some(before) = earlier {
                    " · " (t("去年同期：", "A year earlier: ")) span id="earlier" { (before.total.records) (t("件", " records")) "，" (t("调解成功率", "success rate")) " " (rate(&before.total)) }
                    " · " (t("同比", "Change")) " " span id="change" { (change(stats.total.records, before.total.records)) }
                }
            }
        }
        div {
            div.card { (t("记录", "Records")) b id="total" { (stats.total.records) } }
            div.card { (t("纠纷", "Cases")) b { (stats.cases) } }
            div.card { (t("信访", "Petitions")) b { (stats.petitions) } }
            div.card { (t("调解成功率", "Mediation success rate")) b id="rate" { (rate(&stats.total)) }
                span.muted id="rate-base" {
                    @if ctx.lang == Lang::Zh { "调解成功" (stats.total.resolved) "件，调解不成" (stats.total.mediated.saturating_sub(stats.total.resolved)) "件；移交、信访及在办" (stats.total.records.saturating_sub(stats.total.mediated)) "件不计" }
                    @else { (stats.total.resolved) " succeeded, " (stats.total.mediated.saturating_sub(stats.total.resolved)) " failed; " (stats.total.records.saturating_sub(stats.total.mediated)) " referred, petitions or open not counted" }
                }
            }
            div.card { (t("逾期信访", "Overdue petitions")) b { (stats.overdue_petitions.len()) } }
            div.card { (t("上报移交", "Escalations")) b { (stats.escalations) } }
            div.card { (t("重大风险在办", "Open major risks")) b { (stats.major_risk_open.len()) } }
            div.card { (t("待审核", "Needs review")) b { (stats.total.needs_review) } }
        }
        h2 { (t("下辖单位", "Units")) }
        table id="units" {
            tr { th { (t("代码", "Code")) } th { (t("记录", "Records")) } th { (t("办结", "Concluded")) } th { (t("调解成功率", "Success rate")) } th { (t("回访率", "Follow-up rate")) } th { (t("满意度", "Satisfaction")) } th { (t("逾期", "Overdue")) } th { (t("待审核", "Review")) } }
            @for (code, u) in &stats.by_unit {
                tr {
                    td { a href=(drill(&code.to_string())) { (code) } }
                    td { (u.records) } td { (u.concluded) } td { (rate(u)) } td.follow-up { (percent(u.follow_up_rate())) } td.satisfaction { (mean(u.satisfaction())) } td { (u.overdue) } td { (u.needs_review) }
                }
            }
        }
        h2 { (t("各村数据新鲜度", "Data freshness per village")) }
        table id="freshness" {
            tr { th { (t("村", "Village")) } th { (t("最新变更", "Newest change")) } }
            @for (village, age) in &freshness {
                tr {
                    td { a href={ "/dashboard?division=" (village) } { (village) } }
                    td class=(if *age as f64 > 7.0 * DAY_MS { "flag" } else { "" }) {
                        (crate::words::span(*age, ctx.lang == Lang::Zh)) (t("前", " ago"))
                    }
                }
            }
        }
        h2 { (t("化解层级（矛盾不上交）", "Where disputes were resolved")) }
        table id="levels" {
            tr { th { (t("层级", "Level")) } th { (t("调解成功", "Resolved")) } th {} @if earlier.is_some() { th { (t("去年同期", "A year earlier")) } } }
            @for level in guihe_protocol::stats::ResolvedAt::ALL {
                @let n = stats.by_level.get(level).copied().unwrap_or(0);
                tr {
                    td { (t(level.label_zh(), level.label_en())) }
                    td { (n) }
                    td.bar { span style=(bar(n, level_top)) {} }
                    @if let Some(before) = earlier { td { (before.by_level.get(level).copied().unwrap_or(0)) } }
                }
            }
            tr {
                td { (t("移交法院或其他组织未收回", "Passed to a court or another body")) }
                td { (stats.passed_out) }
                td.bar { span style=(bar(stats.passed_out, level_top)) {} }
                @if let Some(before) = earlier { td { (before.passed_out) } }
            }
        }
        h2 { (t("各项统计", "Counts")) }
        p.muted { (t("回访率：调解成功的纠纷中回访过的比例；满意度：最近一次评价（1–5分）的平均分。", "Follow-up rate: disputes mediated with success that were followed up; satisfaction: the mean latest rating (1–5).")) }
        table id="counts" {
            tr { th { (t("项目", "Item")) } th { (t("数量", "Count")) } @if earlier.is_some() { th { (t("去年同期", "A year earlier")) } } }
            tr { td { (t("回访率", "Follow-up rate")) } td id="follow-up-rate" { (percent(stats.total.follow_up_rate())) } @if let Some(before) = earlier { td { (percent(before.total.follow_up_rate())) } } }
            tr { td { (t("满意度", "Satisfaction")) } td id="satisfaction" { (mean(stats.total.satisfaction())) } @if let Some(before) = earlier { td { (mean(before.total.satisfaction())) } } }
            @for (i, (key, label, n)) in counts.iter().enumerate() {
                tr data-count=(key) {
                    td { (label) } td { (n) }
                    @if let Some(before) = &counts_before { td { (before.get(i).map(|b| b.2.as_str()).unwrap_or("")) } }
                }
            }
        }
        h2 { (t("趋势", "Trend")) }
        div.chart id="trend" { (PreEscaped(svg)) }
        h2 { (t("按状态", "By status")) }
        table { @for (s, n) in &stats.by_status { tr { td { (status_label(ctx.lang, *s)) } td { (n) } } } }
        h2 { (t("按类别", "By category")) }
        table id="categories" { @for (c, n) in &stats.by_category { tr { td { (if ctx.lang == Lang::Zh { c.label_zh() } else { c.label_en() }) } td { (n) } td.bar { span style=(bar(*n, category_top)) {} } } } }
        h2 { (t("逾期信访", "Overdue petitions")) }
        ul { @for id in &stats.overdue_petitions { li { a href={ "/records/" (id) } { (id) } } } }
        h2 { (t("未上报的重大风险", "Major risks not passed up")) }
        ul { @for id in &stats.major_risk_unreported { li { a href={ "/records/" (id) } { (id) } } } }
    };
    page(ctx.lang, Some(&ctx), t("统计", "Dashboard"), body)
}
