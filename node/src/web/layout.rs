//! The page frame, its style and language, and the small helpers every page uses.

use super::*;

pub(super) const DAY_MS: f64 = 86_400_000.0;

/// The language of the page: Chinese unless the person switched to English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lang {
    Zh,
    En,
}

impl Lang {
    pub(super) fn of(headers: &HeaderMap) -> Lang {
        if cookie(headers, "lang") == Some("en") {
            Lang::En
        } else {
            Lang::Zh
        }
    }

    pub(super) fn t<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

pub(super) const STYLE: &str = "body{font-family:'Noto Sans CJK SC','Noto Sans SC','Microsoft YaHei',sans-serif;margin:0;color:#222;background:#f6f5f1}\
header{background:#7a2e1f;color:#fff;padding:.5em 1em;display:flex;flex-wrap:wrap;gap:1em;align-items:center}\
header a{color:#fff;text-decoration:none}header .who{margin-left:auto}\
main{padding:1em;max-width:1100px}table{border-collapse:collapse;width:100%;background:#fff}\
td,th{border:1px solid #ddd;padding:.3em .5em;text-align:left;font-size:14px}th{background:#eee}\
.flag{color:#a00;font-weight:bold}.muted{color:#777}.card{display:inline-block;background:#fff;border:1px solid #ddd;padding:.6em 1em;margin:.3em;min-width:9em}\
.card b{display:block;font-size:1.6em}form.inline{display:inline}label{display:block;margin:.4em 0}fieldset.party label,fieldset.matter label{display:inline-block;margin:.3em 1.2em .3em 0}fieldset.party select,fieldset.matter select{width:auto;max-width:100%}fieldset{min-width:0;max-width:60em}fieldset input{max-width:100%;box-sizing:border-box}\
input[type=text],input[type=password],select,textarea{font-size:15px;padding:.25em;max-width:40em;width:100%}\
.error{background:#fde;border:1px solid #c99;padding:.5em;margin:.5em 0}button{font-size:15px;padding:.3em 1em}\
input[type=date],input[type=number]{font-size:15px;padding:.25em}.required{color:#a00;font-size:13px}\
details.step{background:#fff;border:1px solid #ddd;margin:.4em 0;padding:.3em .8em;max-width:44em}\
details.step summary{cursor:pointer;font-size:16px;padding:.2em 0}details.step[open] summary{font-weight:bold}\
.late{font-size:12px;border:1px solid #a00;padding:0 .3em;margin-left:.3em}\
.id{font-size:13px;color:#777;word-break:break-all}.chart{overflow-x:auto}\
td.bar{width:45%}td.bar span{display:inline-block;height:.9em;background:#7a2e1f;vertical-align:middle}\
@media (max-width:640px){main{padding:.5em}fieldset{margin:.4em 0;padding:.3em .5em}fieldset.party label,fieldset.matter label{display:block;margin:.3em 0}header{gap:.4em .8em;font-size:14px;padding:.4em .6em}\
h1{font-size:1.4em}table{display:block;overflow-x:auto}\
table.cards,table.cards tbody,table.cards tr,table.cards td{display:block;width:auto}\
table.cards tr:first-child{display:none}table.cards tr{border:1px solid #ddd;margin:.4em 0;background:#fff}\
table.cards td{border:none;padding:.15em .5em}.card{min-width:7em;margin:.2em}}";

pub(super) fn layout(lang: Lang, ctx: Option<&Ctx>, title: &str, body: Markup) -> Markup {
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
                        a href="/todo" { (t("我的待办", "To do")) }
                        a href="/cases" { (t("纠纷", "Cases")) }
                        a href="/petitions" { (t("信访", "Petitions")) }
                        a href="/search" { (t("查找", "Find")) }
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

pub(super) fn page(lang: Lang, ctx: Option<&Ctx>, title: &str, body: Markup) -> Response {
    page_status(lang, ctx, StatusCode::OK, title, body)
}

/// A page answered with `status` (a form shown again with its refusal).
pub(super) fn page_status(
    lang: Lang,
    ctx: Option<&Ctx>,
    status: StatusCode,
    title: &str,
    body: Markup,
) -> Response {
    (status, Html(layout(lang, ctx, title, body).into_string())).into_response()
}

/// A form's date input (`YYYY-MM-DD`, Beijing time): `Ok(None)` for today or none given
/// (the time is now), `Ok(Some(start))` for an earlier day, from its start.
pub(super) fn form_day(day: &str) -> Result<Option<u64>, DayError> {
    let day = day.trim();
    if day.is_empty() || day == date(now_ms()) {
        return Ok(None);
    }
    match guihe_protocol::stats::parse_date(day) {
        None => Err(DayError::NotADate),
        Some(start) if start > now_ms() => Err(DayError::Future),
        Some(start) => Ok(Some(start)),
    }
}

/// Why a form's date was refused.
pub(super) enum DayError {
    /// It is no `YYYY-MM-DD` date.
    NotADate,
    /// It lies after today.
    Future,
}

pub(super) fn message_page(
    lang: Lang,
    ctx: Option<&Ctx>,
    status: StatusCode,
    text: &str,
) -> Response {
    let title = lang.t("提示", "Notice");
    page_status(lang, ctx, status, title, html! { p.error { (text) } })
}

pub(super) fn api_error_page(ctx: &Ctx, e: Response) -> Response {
    let status = e.status();
    let text = match status {
        StatusCode::NOT_FOUND => ctx.lang.t("没有这条记录。", "No such record."),
        StatusCode::FORBIDDEN => ctx.lang.t("无权操作。", "Not allowed."),
        _ => ctx.lang.t("操作未完成。", "That did not work."),
    };
    message_page(ctx.lang, Some(ctx), status, text)
}

pub(super) fn status_label(lang: Lang, s: Status) -> &'static str {
    match lang {
        Lang::Zh => s.label_zh(),
        Lang::En => s.label_en(),
    }
}

pub(super) fn date(ms: u64) -> String {
    guihe_protocol::stats::date_of(ms)
}

pub(super) fn names(v: &View, ctx: &Ctx) -> String {
    let c = v.common();
    if !c.visible_to(&ctx.viewer()) {
        return ctx.lang.t("（限制）", "(restricted)").into();
    }
    c.parties
        .iter()
        .map(|p| p.name.clone())
        .collect::<Vec<_>>()
        .join("、")
}

/// The message of an API error response, for showing on a form: in Chinese in the
/// Chinese view (the node's own sentence where it has one, else what the answer's status
/// means), in English in the English view.
pub(super) async fn error_text(e: Response, lang: Lang) -> String {
    let status = e.status();
    let bytes = axum::body::to_bytes(e.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let body = serde_json::from_slice::<crate::api::ErrorBody>(&bytes).ok();
    match (lang, body) {
        (Lang::En, Some(b)) => b.message,
        (Lang::En, None) => String::from_utf8_lossy(&bytes).into_owned(),
        (
            Lang::Zh,
            Some(crate::api::ErrorBody {
                message_zh: Some(zh),
                ..
            }),
        ) => zh,
        (Lang::Zh, _) => match status.as_u16() {
            400 | 422 => "所填内容有误，请检查后再保存。",
            403 => "本机或本账号无权这样操作。",
            404 => "没有这条记录。",
            409 => "此操作与记录的当前状态不符。",
            503 => "节点正忙或正在停止，请稍后再试。",
            _ => "节点出错，未能保存，请稍后再试或联系运维人员。",
        }
        .to_string(),
    }
}
