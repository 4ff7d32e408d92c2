//! The web app: the village workers' pages and the township and county dashboards, in
//! Chinese with an English switch, served by the node itself.
//!
//! Pages are rendered on the server (maud) with no script and nothing loaded from
//! outside, so they work on an old PC with no internet. Charts are SVG drawn by plotters.
//! Staff sign in with a local account (argon2 hash); the session is a random token in an
//! HttpOnly, SameSite=Strict cookie, and every form carries the session's CSRF token.
//! Restricted records (a minor among the parties, or restricted by hand) are shown only
//! to their handlers, and left out by name everywhere else.

// A handler's early exit is the page it answers with; boxing it would only add a step.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use guihe_protocol::id::StaffId;
use guihe_protocol::model::{Category, Channel, Kind, Risk};
use guihe_protocol::view::View;
use guihe_protocol::workflow::Status;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use rand::RngCore;
use serde::Deserialize;

use crate::accounts::{Account, StaffRole};
use crate::api::{Call, NewForm, PartyForm, Reply};
use crate::http::{AppState, call, status_report};
use crate::local::now_ms;

/// How long a sign-in lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
const COOKIE: &str = "guihe_session";
const DAY_MS: f64 = 86_400_000.0;

/// A signed-in staff member.
#[derive(Debug, Clone)]
pub(crate) struct WebSession {
    staff: StaffId,
    display: String,
    role: StaffRole,
    csrf: String,
    expires: Instant,
}

/// The signed-in sessions of this node.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sessions(Arc<Mutex<HashMap<String, WebSession>>>);

impl Sessions {
    fn get(&self, token: &str) -> Option<WebSession> {
        let mut map = self.0.lock().ok()?;
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        map.get(token).cloned()
    }

    fn open(&self, account: &Account) -> String {
        let token = random_hex();
        if let Ok(mut map) = self.0.lock() {
            map.insert(
                token.clone(),
                WebSession {
                    staff: account.name.clone(),
                    display: account.display.clone(),
                    role: account.role,
                    csrf: random_hex(),
                    expires: Instant::now() + SESSION_TTL,
                },
            );
        }
        token
    }

    fn close(&self, token: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(token);
        }
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The language of the page: Chinese unless the person switched to English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Zh,
    En,
}

impl Lang {
    fn of(headers: &HeaderMap) -> Lang {
        if cookie(headers, "lang") == Some("en") {
            Lang::En
        } else {
            Lang::Zh
        }
    }

    fn t<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

/// What every page handler starts with.
struct Ctx {
    lang: Lang,
    user: WebSession,
    token: String,
}

fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Ctx, Response> {
    let lang = Lang::of(headers);
    let token = cookie(headers, COOKIE).unwrap_or("");
    match state.web.get(token) {
        Some(user) => Ok(Ctx {
            lang,
            user,
            token: token.to_string(),
        }),
        None => Err(Redirect::to("/login").into_response()),
    }
}

fn csrf_ok(ctx: &Ctx, given: &str) -> Result<(), Response> {
    let expected = ctx.user.csrf.as_bytes();
    let same = expected.len() == given.len()
        && expected
            .iter()
            .zip(given.as_bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0;
    if same {
        Ok(())
    } else {
        Err(message_page(
            ctx.lang,
            Some(ctx),
            StatusCode::FORBIDDEN,
            ctx.lang.t(
                "表单已过期，请返回重试。",
                "The form has expired; go back and try again.",
            ),
        ))
    }
}

const STYLE: &str = "body{font-family:'Noto Sans CJK SC','Noto Sans SC','Microsoft YaHei',sans-serif;margin:0;color:#222;background:#f6f5f1}\
header{background:#7a2e1f;color:#fff;padding:.5em 1em;display:flex;flex-wrap:wrap;gap:1em;align-items:center}\
header a{color:#fff;text-decoration:none}header .who{margin-left:auto}\
main{padding:1em;max-width:1100px}table{border-collapse:collapse;width:100%;background:#fff}\
td,th{border:1px solid #ddd;padding:.3em .5em;text-align:left;font-size:14px}th{background:#eee}\
.flag{color:#a00;font-weight:bold}.muted{color:#777}.card{display:inline-block;background:#fff;border:1px solid #ddd;padding:.6em 1em;margin:.3em;min-width:9em}\
.card b{display:block;font-size:1.6em}form.inline{display:inline}label{display:block;margin:.4em 0}\
input[type=text],input[type=password],select,textarea{font-size:15px;padding:.25em;max-width:40em;width:100%}\
.error{background:#fde;border:1px solid #c99;padding:.5em;margin:.5em 0}button{font-size:15px;padding:.3em 1em}";

fn layout(lang: Lang, ctx: Option<&Ctx>, title: &str, body: Markup) -> Markup {
    let t = |zh, en| lang.t(zh, en);
    html! {
        (DOCTYPE)
        html lang=(t("zh-CN", "en")) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · 贵和 guihe" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { "贵和 guihe" }
                    @if let Some(ctx) = ctx {
                        a href="/cases" { (t("纠纷", "Cases")) }
                        a href="/petitions" { (t("信访", "Petitions")) }
                        @if ctx.user.role.writes() {
                            a href="/new" { (t("登记", "New record")) }
                        }
                        a href="/review" { (t("待审核", "Review")) }
                        a href="/dashboard" { (t("统计", "Dashboard")) }
                        a href="/sync" { (t("同步", "Sync")) }
                        a href="/export.csv" { "CSV" }
                        a href="/export.xlsx" { "XLSX" }
                    }
                    a href=(if lang == Lang::Zh { "/lang/en" } else { "/lang/zh" }) {
                        (if lang == Lang::Zh { "English" } else { "中文" })
                    }
                    @if let Some(ctx) = ctx {
                        span.who {
                            (ctx.user.display) " (" (if lang == Lang::Zh { ctx.user.role.label_zh() } else { ctx.user.role.code() }) ") "
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(ctx.user.csrf);
                                button type="submit" { (t("退出", "Sign out")) }
                            }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

fn page(lang: Lang, ctx: Option<&Ctx>, title: &str, body: Markup) -> Response {
    Html(layout(lang, ctx, title, body).into_string()).into_response()
}

fn message_page(lang: Lang, ctx: Option<&Ctx>, status: StatusCode, text: &str) -> Response {
    let title = lang.t("提示", "Notice");
    (
        status,
        Html(layout(lang, ctx, title, html! { p.error { (text) } }).into_string()),
    )
        .into_response()
}

fn api_error_page(ctx: &Ctx, e: Response) -> Response {
    let status = e.status();
    let text = match status {
        StatusCode::NOT_FOUND => ctx.lang.t("没有这条记录。", "No such record."),
        StatusCode::FORBIDDEN => ctx.lang.t("无权操作。", "Not allowed."),
        _ => ctx.lang.t("操作未完成。", "That did not work."),
    };
    message_page(ctx.lang, Some(ctx), status, text)
}

/// The web routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/cases") }))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/lang/{lang}", get(set_lang))
        .route("/cases", get(cases))
        .route("/petitions", get(petitions))
        .route("/review", get(review))
        .route("/new", get(new_form).post(new_record))
        .route("/records/{id}", get(record_page))
        .route("/records/{id}/events", post(add_event))
        .route("/sync", get(sync_page))
        .route("/dashboard", get(dashboard))
        .route("/export.csv", get(export_csv))
        .route("/export.xlsx", get(export_xlsx))
}

async fn set_lang(Path(lang): Path<String>) -> Response {
    let value = if lang == "en" { "en" } else { "zh" };
    (
        [(
            header::SET_COOKIE,
            format!("lang={value}; Path=/; SameSite=Strict; Max-Age=31536000"),
        )],
        Redirect::to("/cases"),
    )
        .into_response()
}

fn login_body(lang: Lang, error: Option<&str>) -> Markup {
    let t = |zh, en| lang.t(zh, en);
    html! {
        @if let Some(e) = error { p.error { (e) } }
        form method="post" action="/login" {
            label { (t("用户名", "User name")) input type="text" name="name" autofocus; }
            label { (t("密码", "Password")) input type="password" name="password"; }
            button type="submit" id="login" { (t("登录", "Sign in")) }
        }
    }
}

async fn login_form(headers: HeaderMap) -> Response {
    let lang = Lang::of(&headers);
    page(
        lang,
        None,
        lang.t("登录", "Sign in"),
        login_body(lang, None),
    )
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    name: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let lang = Lang::of(&headers);
    let account = match call(
        &state,
        None,
        Call::Account {
            name: f.name.trim().to_string(),
        },
    )
    .await
    {
        Ok(Reply::Account(a)) => a,
        _ => None,
    };
    // The hash is checked off the node's core task: it is slow on purpose.
    let checked = match account {
        Some(a) => {
            let password = f.password.clone();
            tokio::task::spawn_blocking(move || a.check(&password).then_some(a))
                .await
                .ok()
                .flatten()
        }
        None => None,
    };
    let Some(account) = checked else {
        let body = login_body(
            lang,
            Some(lang.t("用户名或密码不对。", "Wrong user name or password.")),
        );
        return (
            StatusCode::UNAUTHORIZED,
            Html(layout(lang, None, lang.t("登录", "Sign in"), body).into_string()),
        )
            .into_response();
    };
    let token = state.web.open(&account);
    (
        [(
            header::SET_COOKIE,
            format!(
                "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
                SESSION_TTL.as_secs()
            ),
        )],
        Redirect::to("/cases"),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = csrf_ok(&ctx, &f.csrf) {
        return r;
    }
    state.web.close(&ctx.token);
    (
        [(header::SET_COOKIE, format!("{COOKIE}=; Path=/; Max-Age=0"))],
        Redirect::to("/login"),
    )
        .into_response()
}

async fn views(state: &AppState, ctx: &Ctx, kind: Option<Kind>) -> Result<Vec<View>, Response> {
    match call(state, None, Call::List { kind }).await {
        Ok(Reply::Views(v)) => Ok(v
            .into_iter()
            .filter(|v| v.common().visible_to(&ctx.user.staff))
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

fn status_label(lang: Lang, s: Status) -> &'static str {
    match lang {
        Lang::Zh => s.label_zh(),
        Lang::En => s.label_en(),
    }
}

fn date(ms: u64) -> String {
    guihe_protocol::stats::date_of(ms)
}

fn names(v: &View, ctx: &Ctx) -> String {
    let c = v.common();
    if c.restricted && !c.staff.contains(&ctx.user.staff) {
        return ctx.lang.t("（限制）", "(restricted)").into();
    }
    c.parties
        .iter()
        .map(|p| p.name.clone())
        .collect::<Vec<_>>()
        .join("、")
}

fn record_table(ctx: &Ctx, views: &[View], now: u64) -> Markup {
    let t = |zh, en| ctx.lang.t(zh, en);
    html! {
        table {
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
                    td { (c.summary.chars().take(40).collect::<String>()) }
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

#[derive(Debug, Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    category: String,
    /// A village or township code: records of that unit (the dashboard's drill-down).
    #[serde(default)]
    unit: String,
    /// The page, from 0.
    #[serde(default)]
    page: usize,
}

/// Rows on one page of a list: enough to work with, light enough for an old PC.
const PAGE_ROWS: usize = 200;

fn matches(v: &View, q: &ListQuery, ctx: &Ctx) -> bool {
    let c = v.common();
    let unit = q.unit.parse::<guihe_protocol::division::Division>().ok();
    (q.status.is_empty() || c.status.code() == q.status)
        && unit.is_none_or(|d| c.jurisdictions.iter().any(|j| d.covers(*j)))
        && (q.category.is_empty() || c.category.code() == q.category)
        && (q.q.trim().is_empty() || {
            let needle = q.q.trim();
            c.summary.contains(needle)
                || v.id().to_string().contains(needle)
                || (c.visible_to(&ctx.user.staff)
                    && c.parties.iter().any(|p| p.name.contains(needle)))
        })
}

fn filters(ctx: &Ctx, q: &ListQuery, action: &str) -> Markup {
    let t = |zh, en| ctx.lang.t(zh, en);
    html! {
        form method="get" action=(action) {
            input type="text" name="q" value=(q.q) placeholder=(t("搜索摘要、当事人、编号", "Search summary, parties, id")) style="width:20em";
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
            @if !q.unit.is_empty() { input type="hidden" name="unit" value=(q.unit); }
            button type="submit" { (t("筛选", "Filter")) }
        }
    }
}

async fn list_page(state: AppState, headers: HeaderMap, q: ListQuery, kind: Kind) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut all = match views(&state, &ctx, Some(kind)).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    all.retain(|v| matches(v, &q, &ctx));
    all.sort_by_key(|v| std::cmp::Reverse(v.common().received_ms));
    let total = all.len();
    let first = (q.page * PAGE_ROWS).min(total);
    let shown: Vec<View> = all.iter().skip(first).take(PAGE_ROWS).cloned().collect();
    let link = |page: usize| {
        format!(
            "?q={}&status={}&category={}&unit={}&page={page}",
            urlencode(&q.q),
            urlencode(&q.status),
            urlencode(&q.category),
            urlencode(&q.unit)
        )
    };
    let now = now_ms();
    let (title, action) = if kind == Kind::Case {
        (ctx.lang.t("纠纷案件", "Dispute cases"), "/cases")
    } else {
        (ctx.lang.t("信访事项", "Petitions"), "/petitions")
    };
    let deadlines = kind == Kind::Petition;
    let body = html! {
        (filters(&ctx, &q, action))
        @if deadlines {
            h2 { (ctx.lang.t("法定期限", "Statutory deadlines")) }
            table {
                tr { th { (ctx.lang.t("编号", "Id")) } th { (ctx.lang.t("期限", "Deadline")) } th { (ctx.lang.t("剩余", "Left")) } }
                @for v in &shown {
                    @for d in v.common().deadlines.iter().filter(|d| d.met_ms.is_none()) {
                        @let left = d.remaining_ms(now).unwrap_or(0) as f64 / DAY_MS;
                        tr {
                            td { a href={ "/records/" (v.id()) } { (v.id().to_string().get(..12).unwrap_or("")) } }
                            td { (if ctx.lang == Lang::Zh { d.kind.label_zh() } else { d.kind.label_en() }) " " (date(d.due_ms)) }
                            td class=(if left < 0.0 { "flag" } else { "" }) {
                                @if left < 0.0 { (ctx.lang.t("逾期 ", "overdue ")) (format!("{:.1}", -left)) (ctx.lang.t(" 天", " days")) }
                                @else { (format!("{left:.1}")) (ctx.lang.t(" 天", " days")) }
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

async fn cases(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    list_page(state, headers, q, Kind::Case).await
}

async fn petitions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    list_page(state, headers, q, Kind::Petition).await
}

async fn review(State(state): State<AppState>, headers: HeaderMap) -> Response {
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

#[derive(Debug, Deserialize, Default)]
struct NewQuery {
    #[serde(default)]
    kind: String,
}

fn new_body(ctx: &Ctx, kind: Kind, error: Option<&str>, village: &str) -> Markup {
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

async fn new_form(
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

async fn new_record(
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

/// The message of an API error response, for showing on a form.
async fn error_text(e: Response) -> String {
    let bytes = axum::body::to_bytes(e.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    serde_json::from_slice::<crate::api::ErrorBody>(&bytes)
        .map(|b| b.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The event types a form offers, with the fields each takes.
const EVENT_TYPES: &[(&str, &str, &str)] = &[
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

fn event_form(ctx: &Ctx, id: &str) -> Markup {
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

async fn record_page(
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

async fn record_view(
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
fn details(body: &guihe_protocol::event::Body) -> String {
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

async fn add_event(
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

async fn sync_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(r) = status_report(&state).await else {
        return message_page(
            ctx.lang,
            Some(&ctx),
            StatusCode::SERVICE_UNAVAILABLE,
            ctx.lang.t("节点忙，请稍后。", "The node is busy."),
        );
    };
    let t = |zh, en| ctx.lang.t(zh, en);
    let now = now_ms();
    let ago = |ms: Option<u64>| match ms {
        None => t("从未", "never").to_string(),
        Some(ms) => {
            let h = now.saturating_sub(ms) as f64 / 3_600_000.0;
            if h < 1.0 {
                format!("{:.0} {}", h * 60.0, t("分钟前", "min ago"))
            } else if h < 48.0 {
                format!("{h:.1} {}", t("小时前", "h ago"))
            } else {
                format!("{:.1} {}", h / 24.0, t("天前", "days ago"))
            }
        }
    };
    let body = html! {
        @if r.disk_low {
            p.error id="disk-low" { (t("磁盘将满：在腾出空间之前，本节点不接受新记录，也不同步。已有记录仍可查看。", "The disk is nearly full: until space is freed this node takes no new entries and does not sync. Existing records can still be read.")) }
        }
        p { (t("本节点", "This node")) " " (r.division) " · " (r.role) " · "
            (t("记录", "records")) " " (r.records) " · " (t("待补依赖", "waiting for dependencies")) " " (r.pending) }
        @if r.held > 0 {
            p.flag id="held" { (t("有 ", "")) (r.held) (t(" 条变更的时间戳远在未来（发出方电脑时钟偏快），暂不采用，到时自动处理。",
                " changes are stamped far in the future (the sender's PC clock is fast): they are held and taken when their time comes.")) }
        }
        h2 { (t("对等节点", "Peers")) }
        table id="peers" {
            tr { th { (t("辖区", "Division")) } th { (t("连接", "Link")) } th { (t("上次同步", "Last sync")) } th { (t("上次收到", "Last heard")) } th { (t("收到变更", "Changes in")) } th { (t("对方时钟", "Peer's clock")) } }
            @for p in &r.peers {
                @let skew = p.clock_skew_ms.unwrap_or(0);
                @let far = skew.abs() > crate::net::SKEW_WARN_MS;
                tr {
                    td { (p.division.as_deref().unwrap_or("?")) }
                    td { (if p.connected { t("已连接", "connected") } else { t("未连接", "down") }) }
                    td { (ago(p.last_reconciled_ms)) }
                    td { (ago(p.last_seen_ms)) }
                    td { (p.changes_in) }
                    td class=(if far { "flag" } else { "" }) {
                        @match p.clock_skew_ms {
                            None => { "—" }
                            Some(_) if !far => { (t("一致", "in step")) }
                            Some(ms) => {
                                (format!("{} {:.0} {}", if ms > 0 { t("快", "ahead") } else { t("慢", "behind") }, (ms.unsigned_abs() as f64) / 60_000.0, t("分钟，请校正时钟", "min: set the clock right")))
                            }
                        }
                    }
                }
            }
        }
        @if !r.quarantined.is_empty() {
            h2 { (t("已隔离的变更", "Refused changes kept aside")) }
            p.error { (t("以下变更由已认证的节点签名，但不符合记录规则或其权限，未被采用，也不会转发给其他节点。该节点此后对同一记录的变更会一直等待，请联系该办公室核实，并由乡镇重新登记需要的内容。",
                "These changes were signed by certified nodes but break the record rules or the signer's authority: they were not applied and are not passed on. That node's later changes to the same records wait behind them; contact the office, and have the township record again what is needed.")) }
            table id="quarantine" {
                tr { th { (t("签名节点", "Signed by")) } th { (t("记录", "Record")) } th { (t("原因", "Reason")) } th { (t("拒收时间", "Refused")) } }
                @for q in &r.quarantined {
                    tr {
                        td { (q.signer_division.as_deref().unwrap_or("?")) " " small { (q.signer.chars().take(12).collect::<String>()) } }
                        td { (q.record) }
                        td title=(q.detail) { (t(&q.reason_zh, &q.reason_en)) }
                        td { (ago(Some(q.refused_ms))) }
                    }
                }
            }
        }
        @if !r.refused_upstream.is_empty() {
            h2 { (t("本机被上级拒收的修改", "This office's changes refused above")) }
            p.error { (t("上级节点拒收了本机对以下记录的修改，本机已不能再修改这些记录。请联系乡镇（街道）调解办公室，由上级重新登记需要补充的内容。",
                "The office above refused this office's changes to these records, which can no longer be changed here. Ask the township office to record what is needed.")) }
            table id="refused-upstream" {
                tr { th { (t("记录", "Record")) } th { (t("原因", "Reason")) } th { (t("得知时间", "Learned")) } }
                @for q in &r.refused_upstream {
                    tr {
                        td { a href=(format!("/records/{}", q.record)) { (q.record) } }
                        td title=(q.code) { (t(&q.reason_zh, &q.reason_en)) }
                        td { (ago(Some(q.at_ms))) }
                    }
                }
            }
        }
        @if !r.reported.is_empty() {
            h2 { (t("下级上报的隔离变更", "Refused changes reported from below")) }
            p { (t("以下变更被下级办公室拒收并上报（隔离报告只在乡镇和县之间同步，不会发给村）。",
                "Offices below refused these changes and reported them (quarantine reports travel between townships and the county, never to villages).")) }
            table id="reported" {
                tr { th { (t("上报办公室", "Reported by")) } th { (t("签名节点", "Signed by")) } th { (t("记录", "Record")) } th { (t("原因", "Reason")) } th { (t("拒收时间", "Refused")) } }
                @for q in &r.reported {
                    tr {
                        td { (q.office) }
                        td { (q.signer_division.as_deref().unwrap_or("?")) " " small { (q.signer.chars().take(12).collect::<String>()) } }
                        td { (q.record) }
                        td title=(q.code) { (t(&q.reason_zh, &q.reason_en)) }
                        td { (ago(Some(q.refused_ms))) }
                    }
                }
            }
        }
        h2 { (t("各村数据新鲜度", "Data freshness per village")) }
        table id="freshness" {
            tr { th { (t("村", "Village")) } th { (t("最新变更", "Newest change")) } }
            @for f in &r.freshness {
                @let stale = now.saturating_sub(f.newest_ms) > 7 * 86_400_000;
                tr { td { (f.village) } td class=(if stale { "flag" } else { "" }) { (ago(Some(f.newest_ms))) } }
            }
        }
    };
    page(ctx.lang, Some(&ctx), t("同步状态", "Sync"), body)
}

#[derive(Debug, Deserialize, Default)]
struct DashQuery {
    #[serde(default)]
    division: String,
}

/// The monthly trend as an SVG line chart.
fn trend_svg(stats: &guihe_protocol::stats::Stats, lang: Lang) -> String {
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
            .build_cartesian_2d(0f64..(n as f64 - 0.5).max(1.0), 0f64..top);
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

async fn dashboard(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DashQuery>,
) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let division = Some(q.division.clone()).filter(|d| !d.is_empty());
    let stats = match call(&state, None, Call::Stats { division }).await {
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
    let freshness: Vec<(String, f64)> = report
        .map(|r| {
            r.freshness
                .into_iter()
                .filter(|f| {
                    stats
                        .division
                        .is_some_and(|d| f.village.parse().is_ok_and(|v| d.covers(v)))
                })
                .map(|f| (f.village, now.saturating_sub(f.newest_ms) as f64 / DAY_MS))
                .collect()
        })
        .unwrap_or_default();
    let body = html! {
        p {
            (t("范围", "Division")) " " b id="division" { (division) } " · "
            a href={ "/cases?unit=" (division) } id="unit-cases" { (t("查看该范围的案件", "Cases in this division")) }
        }
        div {
            div.card { (t("记录", "Records")) b id="total" { (stats.total.records) } }
            div.card { (t("纠纷", "Cases")) b { (stats.cases) } }
            div.card { (t("信访", "Petitions")) b { (stats.petitions) } }
            div.card { (t("就地化解率", "Resolved locally")) b id="rate" { (rate(&stats.total)) } }
            div.card { (t("逾期信访", "Overdue petitions")) b { (stats.overdue_petitions.len()) } }
            div.card { (t("上报移交", "Escalations")) b { (stats.escalations) } }
            div.card { (t("重大风险在办", "Open major risks")) b { (stats.major_risk_open.len()) } }
            div.card { (t("待审核", "Needs review")) b { (stats.total.needs_review) } }
        }
        h2 { (t("下辖单位", "Units")) }
        table id="units" {
            tr { th { (t("代码", "Code")) } th { (t("记录", "Records")) } th { (t("办结", "Concluded")) } th { (t("化解率", "Resolved")) } th { (t("逾期", "Overdue")) } th { (t("待审核", "Review")) } }
            @for (code, u) in &stats.by_unit {
                tr {
                    td { a href={ "/dashboard?division=" (code) } { (code) } }
                    td { (u.records) } td { (u.concluded) } td { (rate(u)) } td { (u.overdue) } td { (u.needs_review) }
                }
            }
        }
        h2 { (t("各村数据新鲜度", "Data freshness per village")) }
        table id="freshness" {
            tr { th { (t("村", "Village")) } th { (t("最新变更距今（天）", "Days since the newest change")) } }
            @for (village, days) in &freshness {
                tr {
                    td { a href={ "/dashboard?division=" (village) } { (village) } }
                    td class=(if *days > 7.0 { "flag" } else { "" }) { (format!("{days:.1}")) }
                }
            }
        }
        h2 { (t("趋势", "Trend")) }
        div id="trend" { (PreEscaped(svg)) }
        h2 { (t("按状态", "By status")) }
        table { @for (s, n) in &stats.by_status { tr { td { (status_label(ctx.lang, *s)) } td { (n) } } } }
        h2 { (t("按类别", "By category")) }
        table { @for (c, n) in &stats.by_category { tr { td { (if ctx.lang == Lang::Zh { c.label_zh() } else { c.label_en() }) } td { (n) } } } }
        h2 { (t("逾期信访", "Overdue petitions")) }
        ul { @for id in &stats.overdue_petitions { li { a href={ "/records/" (id) } { (id) } } } }
        h2 { (t("未上报的重大风险", "Major risks not passed up")) }
        ul { @for id in &stats.major_risk_unreported { li { a href={ "/records/" (id) } { (id) } } } }
    };
    page(ctx.lang, Some(&ctx), t("统计", "Dashboard"), body)
}

/// The rows of an export: visible records, with the names of restricted ones left out.
async fn export_rows(state: &AppState, ctx: &Ctx) -> Result<Vec<Vec<String>>, Response> {
    let all = match call(state, None, Call::List { kind: None }).await {
        Ok(Reply::Views(v)) => v,
        Ok(_) => {
            return Err(message_page(
                ctx.lang,
                Some(ctx),
                StatusCode::INTERNAL_SERVER_ERROR,
                "?",
            ));
        }
        Err(e) => return Err(api_error_page(ctx, e)),
    };
    let mut rows = vec![
        [
            "编号 id",
            "类型 kind",
            "村 villages",
            "登记日期 received",
            "状态 status",
            "类别 category",
            "风险 risk",
            "当事人 parties",
            "摘要 summary",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for v in &all {
        let c = v.common();
        let hidden = c.restricted;
        rows.push(vec![
            v.id().to_string(),
            if v.kind() == Kind::Case {
                "纠纷 case"
            } else {
                "信访 petition"
            }
            .into(),
            c.jurisdictions
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            date(c.received_ms),
            c.status.label_zh().into(),
            c.category.label_zh().into(),
            c.risk.label_zh().into(),
            if hidden {
                "（限制 restricted）".into()
            } else {
                c.parties
                    .iter()
                    .map(|p| p.name.clone())
                    .collect::<Vec<_>>()
                    .join("、")
            },
            if hidden {
                String::new()
            } else {
                c.summary.clone()
            },
        ]);
    }
    Ok(rows)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

async fn export_csv(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let rows = match export_rows(&state, &ctx).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    // A byte-order mark so spreadsheet programs read the Chinese as UTF-8.
    let mut out = String::from("\u{feff}");
    for row in rows {
        out.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"guihe.csv\"",
            ),
        ],
        out,
    )
        .into_response()
}

async fn export_xlsx(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let rows = match export_rows(&state, &ctx).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let _ = sheet.write_string(r as u32, c as u16, cell);
        }
    }
    match book.save_to_buffer() {
        Ok(bytes) => (
            [
                (
                    header::CONTENT_TYPE,
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                ),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"guihe.xlsx\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => message_page(
            ctx.lang,
            Some(&ctx),
            StatusCode::INTERNAL_SERVER_ERROR,
            &e.to_string(),
        ),
    }
}
