//! The papers the law asks for, printed on A4 from the browser: 人民调解申请书,
//! 受理登记表, 调解笔录, 人民调解协议书 (with what article 29 of the People's Mediation Law
//! asks it to hold, and blanks for signatures, thumbprints and the committee's seal),
//! 回访记录, and the 卷宗 cover with its contents.
//!
//! Each is a page of its own with no menu, in Chinese only (a court reads it), dates as
//! 2026年3月5日, and no ids or codes. What the record does not hold (a party's particulars
//! and the case number before record schema 2; the office's short name) is a blank to fill
//! in by hand.

use guihe_protocol::event::{Body, Event};
use guihe_protocol::model::Party;

use super::*;
use crate::api::Detail;
use crate::words::date_zh;

/// The papers, by the name in their address.
const PAPERS: &[(&str, &str)] = &[
    ("application", "人民调解申请书"),
    ("register", "受理登记表"),
    ("sessions", "调解笔录"),
    ("agreement", "人民调解协议书"),
    ("follow-up", "回访记录"),
    ("cover", "卷宗封面及目录"),
];

const PRINT_STYLE: &str = "@page{size:A4;margin:22mm 20mm}\
body{font-family:'Noto Serif CJK SC','Noto Sans CJK SC','SimSun',serif;font-size:15px;line-height:1.9;color:#000;margin:0 auto;max-width:170mm}\
h1{text-align:center;font-size:24px;letter-spacing:.3em;margin:.4em 0}.no{text-align:right}\
table{border-collapse:collapse;width:100%}td,th{border:1px solid #000;padding:.3em .5em;text-align:left;vertical-align:top}\
.blank{display:inline-block;min-width:6em;border-bottom:1px solid #000}.line{border-bottom:1px solid #000;min-height:1.9em}\
table.party{margin:.4em 0}table.party th{white-space:nowrap;width:1%}.sign{margin-top:2em}.sign p{margin:.8em 0}.seal{text-align:right;margin-top:2em}\
@media screen{body{padding:1em}.noprint{margin-bottom:1em}}@media print{.noprint{display:none}}";

fn blank() -> Markup {
    html! { span.blank { "\u{3000}" } }
}

/// The case number as printed: the number the office gave the case on acceptance (record
/// schema 2), with a blank for the office's short name; blanks where there is none.
fn number(detail: &Detail) -> Markup {
    let c = detail.view.common();
    match detail.own_number {
        Some(n) => html! {
            p.no { "（" (n.year) "）" (blank()) "调字第" (n.seq) "号" }
        },
        None => {
            let year = guihe_protocol::stats::year_of(c.received_ms);
            html! { p.no { "（" (year) "）" (blank()) "调字第" (blank()) "号" } }
        }
    }
}

/// Who recorded an entry: a display name where the office knows it, else a blank to sign
/// (an account name is no name for a court).
fn author(detail: &Detail, here: &guihe_protocol::id::NodeId, e: &Event) -> Markup {
    match crate::words::author(detail, Some(here), e) {
        Some(name) => html! { (name) },
        None => blank(),
    }
}

/// An entry as a paper writes it: as the timeline does, except that a person the office
/// cannot name (an assignee at another office, or an account gone) is a blank to fill in,
/// never a login (an account name is no name for a court).
fn entry(detail: &Detail, here: &guihe_protocol::id::NodeId, e: &Event) -> Markup {
    if let Body::Assign(a) = &e.body {
        let named = (e.node == *here)
            .then(|| detail.display_names.get(a.to.as_str()))
            .flatten();
        return match named {
            Some(name) => html! { "指派" (name) "承办。" (a.note) },
            None => html! { "指派" (blank()) "承办。" (a.note) },
        };
    }
    html! { (crate::words::entry_sentence(detail, Some(here), e, true)) }
}

/// The parties as a paper names them: from the record's view (ID numbers masked), or,
/// for the application and the agreement, as the record holds them (`Call::Parties`).
fn view_parties(detail: &Detail) -> Vec<Party> {
    detail
        .view
        .common()
        .parties
        .iter()
        .map(|p| Party {
            name: p.name.clone(),
            role: p.role,
            minor: p.minor,
            contact: p.contact.clone(),
            details: p.details.clone(),
        })
        .collect()
}

/// The parties' particulars, as article 29 asks: a small table for each party, with what
/// the record holds and blanks for the rest.
fn parties(parties: &[Party]) -> Markup {
    let or_blank = |text: &str| -> Markup {
        if text.trim().is_empty() {
            blank()
        } else {
            html! { (text) }
        }
    };
    html! {
        @for p in parties {
            @let d = p.details.clone().unwrap_or_default();
            table.party {
                tr {
                    th { (p.role.label_zh()) } td { (p.name) }
                    th { "性别" } td { (or_blank(d.sex.map_or("", |s| s.label_zh()))) }
                    th { "年龄" } td { @match d.age { Some(a) => { (a) "岁" } None => { (blank()) } } }
                    th { "民族" } td { (or_blank(&d.ethnicity)) }
                }
                tr {
                    th { "职业或工作单位" } td colspan="3" { (or_blank(&d.occupation)) }
                    th { "联系方式" } td colspan="3" { (or_blank(p.contact.as_deref().unwrap_or(""))) }
                }
                tr { th { "住所" } td colspan="7" { (or_blank(&d.address)) } }
                @if !d.id_number.is_empty() {
                    tr { th { "公民身份号码" } td colspan="7" { (d.id_number) } }
                }
            }
        }
    }
}

fn signatures(detail: &Detail, at_ms: Option<u64>) -> Markup {
    html! {
        div.sign {
            @for p in &detail.view.common().parties {
                p { (p.role.label_zh()) "（签名、盖章或按指印）：" (blank()) (blank()) }
            }
            p { "人民调解员（签名）：" (blank()) (blank()) }
            p { "记录人（签名）：" (blank()) (blank()) }
        }
        div.seal {
            p { (blank()) "人民调解委员会（印章）" }
            p { @match at_ms { Some(ms) => { (date_zh(ms)) } None => { (blank()) "年" (blank()) "月" (blank()) "日" } } }
        }
    }
}

fn application(detail: &Detail, full: &[Party]) -> Markup {
    let c = detail.view.common();
    html! {
        h1 { "人民调解申请书" }
        h2 { "申请人与被申请人" }
        (parties(full))
        h2 { "纠纷简要情况" }
        p { (c.summary) }
        h2 { "申请事项" }
        div.line { } div.line { }
        p { "申请人自愿申请人民调解委员会调解上述纠纷。" }
        div.sign {
            p { "申请人（签名或按指印）：" (blank()) (blank()) }
            p { (date_zh(c.received_ms)) }
        }
    }
}

fn register(detail: &Detail, here: &guihe_protocol::id::NodeId) -> Markup {
    let c = detail.view.common();
    let accepted = detail
        .timeline
        .iter()
        .find(|e| matches!(e.body, Body::Accept(_)));
    html! {
        h1 { "受理登记表" }
        (number(detail))
        table {
            tr { th { "收到日期" } td { (date_zh(c.received_ms)) } th { "纠纷类别" } td { (c.category.label_zh()) } }
            tr { th { "风险等级" } td { (c.risk.label_zh()) } th { "受理日期" } td { @match accepted { Some(e) => { (date_zh(e.at_ms)) } None => { "未受理" } } } }
            tr { th { "当事人" } td colspan="3" { (parties(&view_parties(detail))) } }
            tr { th { "纠纷简要情况" } td colspan="3" { (c.summary) } }
            tr { th { "受理意见" } td colspan="3" { @match accepted { Some(e) => { (entry(detail, here, e)) } None => {} } div.line {} } }
        }
        (signatures(detail, accepted.map(|e| e.at_ms)))
    }
}

fn sessions(detail: &Detail, here: &guihe_protocol::id::NodeId) -> Markup {
    let held: Vec<&Event> = detail
        .timeline
        .iter()
        .filter(|e| matches!(e.body, Body::Session(_)))
        .collect();
    html! {
        h1 { "调解笔录" }
        (number(detail))
        @if held.is_empty() { p { "尚无调解记录。" } }
        @for (i, e) in held.iter().enumerate() {
            @if let Body::Session(s) = &e.body {
                h2 { "第" (i + 1) "次调解" }
                table {
                    tr { th { "时间" } td { (date_zh(e.at_ms)) } th { "地点" } td { @if s.place.is_empty() { (blank()) } @else { (s.place) } } }
                    tr { th { "调解员" } td { (author(detail, here, e)) } th { "记录人" } td { (blank()) } }
                    tr { th { "当事人" } td colspan="3" { @for p in &detail.view.common().parties { (p.name) "（" (p.role.label_zh()) "） " } } }
                    tr { th { "调解经过" } td colspan="3" { (s.note) } }
                }
                div.sign { p { "当事人核对无误后签名或按指印：" (blank()) (blank()) (blank()) } }
            }
        }
    }
}

fn agreement(detail: &Detail, full: &[Party]) -> Markup {
    let c = detail.view.common();
    let agreed = detail.timeline.iter().rev().find_map(|e| match &e.body {
        Body::Agreement(a) => Some((e, a)),
        _ => None,
    });
    html! {
        h1 { "人民调解协议书" }
        (number(detail))
        h2 { "一、当事人基本情况" }
        (parties(full))
        h2 { "二、纠纷的主要事实、争议事项及各方当事人的责任" }
        p { (c.summary) }
        div.line { } div.line { }
        h2 { "三、经调解，当事人自愿达成协议如下" }
        @match agreed {
            Some((_, a)) => { p { (a.terms) } }
            None => { div.line { } div.line { } }
        }
        h2 { "四、履行方式和期限" }
        div.line { } div.line { }
        @if agreed.is_some_and(|(_, a)| a.seek_confirmation) {
            p { "双方当事人同意自本协议生效之日起三十日内共同向人民法院申请司法确认。" }
        }
        p { "本协议一式" (blank()) "份，当事人各执一份，人民调解委员会留存一份。" }
        p { "本协议自各方当事人签名、盖章或者按指印，人民调解员签名并加盖人民调解委员会印章之日起生效。" }
        (signatures(detail, agreed.map(|(e, _)| e.at_ms)))
    }
}

fn follow_up(detail: &Detail, here: &guihe_protocol::id::NodeId) -> Markup {
    let visits: Vec<&Event> = detail
        .timeline
        .iter()
        .filter(|e| matches!(e.body, Body::FollowUp(_) | Body::Satisfaction(_)))
        .collect();
    html! {
        h1 { "回访记录" }
        (number(detail))
        table {
            tr { th { "日期" } th { "回访人" } th { "情况" } }
            @for e in &visits {
                tr { td { (date_zh(e.at_ms)) } td { (author(detail, here, e)) } td { (entry(detail, here, e)) } }
            }
            @if visits.is_empty() {
                tr { td { (blank()) } td { (blank()) } td { div.line {} } }
            }
        }
        div.sign { p { "回访人（签名）：" (blank()) (blank()) } p { "被回访人（签名或按指印）：" (blank()) (blank()) } }
    }
}

fn cover(detail: &Detail, here: &guihe_protocol::id::NodeId) -> Markup {
    let c = detail.view.common();
    html! {
        h1 { @if detail.view.kind() == guihe_protocol::model::Kind::Case { "人民调解卷宗" } @else { "信访事项卷宗" } }
        (number(detail))
        table {
            tr { th { "案由" } td { (c.category.label_zh()) @if !c.category.label_zh().ends_with("纠纷") && !c.category.label_zh().ends_with("争议") { "纠纷" } } }
            tr { th { "当事人" } td { @for p in &c.parties { (p.name) "（" (p.role.label_zh()) "） " } } }
            tr { th { "收到日期" } td { (date_zh(c.received_ms)) } }
            tr { th { "办理结果" } td { (c.status.label_zh()) } }
            tr { th { "结案日期" } td { @match c.closed_ms { Some(ms) => { (date_zh(ms)) } None => { "未结案" } } } }
            tr { th { "立卷人" } td { (blank()) } }
        }
        h2 { "卷内目录" }
        table {
            tr { th { "序号" } th { "日期" } th { "事项" } th { "记录人" } th { "内容" } }
            @for (i, e) in detail.timeline.iter().enumerate() {
                tr {
                    td { (i + 1) }
                    td { (date_zh(e.at_ms)) @if e.entered_late() { "（补录）" } }
                    td { (e.body.event_type().label_zh()) }
                    td { (author(detail, here, e)) }
                    td { (entry(detail, here, e)) }
                }
            }
        }
    }
}

/// Links to the papers a record can print now (the agreement once there is one).
pub(super) fn print_links(detail: &Detail) -> Markup {
    let has = |f: fn(&Body) -> bool| detail.timeline.iter().any(|e| f(&e.body));
    let id = detail.view.id();
    html! {
        p id="print" {
            "打印："
            @for (name, title) in PAPERS {
                @let shown = match *name {
                    "agreement" => has(|b| matches!(b, Body::Agreement(_))),
                    "sessions" => has(|b| matches!(b, Body::Session(_))),
                    "follow-up" => has(|b| matches!(b, Body::FollowUp(_))),
                    _ => detail.view.kind() == guihe_protocol::model::Kind::Case || *name != "application",
                };
                @if shown {
                    a href={ "/records/" (id) "/print/" (name) } id={ "print-" (name) } { (title) } " "
                }
            }
        }
    }
}

pub(super) async fn print_paper(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, paper)): Path<(String, String)>,
) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let detail = match call(&state, None, Call::Show { id: id.clone() }).await {
        Ok(Reply::Detail(d)) => d,
        Ok(_) => return message_page(ctx.lang, Some(&ctx), StatusCode::INTERNAL_SERVER_ERROR, "?"),
        Err(e) => return api_error_page(&ctx, e),
    };
    if !detail.view.common().visible_to(&ctx.viewer()) {
        return message_page(
            ctx.lang,
            Some(&ctx),
            StatusCode::NOT_FOUND,
            ctx.lang.t("没有这条记录。", "No such record."),
        );
    }
    let Some((_, title)) = PAPERS.iter().find(|(name, _)| *name == paper) else {
        return message_page(
            ctx.lang,
            Some(&ctx),
            StatusCode::NOT_FOUND,
            ctx.lang.t("没有这种文书。", "No such paper."),
        );
    };
    let here = ctx.node;
    // The application and the agreement name each party in full (their ID numbers too).
    let full = if matches!(paper.as_str(), "application" | "agreement") {
        match call(&state, None, Call::Parties { id: id.clone() }).await {
            Ok(Reply::Parties(p)) => p.into_iter().map(|(_, p)| p).collect(),
            Ok(_) => {
                return message_page(ctx.lang, Some(&ctx), StatusCode::INTERNAL_SERVER_ERROR, "?");
            }
            Err(e) => return api_error_page(&ctx, e),
        }
    } else {
        Vec::new()
    };
    let body = match paper.as_str() {
        "application" => application(&detail, &full),
        "register" => register(&detail, &here),
        "sessions" => sessions(&detail, &here),
        "agreement" => agreement(&detail, &full),
        "follow-up" => follow_up(&detail, &here),
        _ => cover(&detail, &here),
    };
    let page = html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                title { (title) }
                style { (PreEscaped(PRINT_STYLE)) }
            }
            body {
                p.noprint { a href={ "/records/" (id) } { "返回记录" } " · 用浏览器的“打印”在A4纸上打印本页。" }
                (body)
            }
        }
    };
    Html(page.into_string()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use guihe_protocol::record::Record;

    /// A fixture of records written by an earlier build (`protocol/tests/versions.rs`).
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Fixture {
        release: String,
        root: guihe_protocol::id::NodeId,
        now_ms: u64,
        certs: Vec<guihe_protocol::cert::Certificate>,
        changes: Vec<guihe_protocol::signed::SignedChange>,
        docs: Vec<Vec<u8>>,
        views: Vec<(String, String, String, usize)>,
    }

    /// The page's text: its markup without tags.
    fn text(page: &Markup) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in page.0.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out
    }

    /// Every record written by release 0.1 and by the last build of schema 1 prints every
    /// paper: in Chinese, with no Latin letters (no ids or codes), blanks where the record
    /// holds no particulars and no number.
    #[test]
    fn records_of_earlier_versions_print_every_paper() {
        let rules = guihe_protocol::deadline::Deadlines::default();
        let here = guihe_protocol::id::NodeId::from_bytes([9; 32]);
        let mut printed = 0;
        for release in ["v0.1", "schema1"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../protocol/tests/fixtures")
                .join(release)
                .join("records.bin");
            let fixture: Fixture =
                postcard::from_bytes(&std::fs::read(path).expect("fixture")).expect("fixture");
            for bytes in &fixture.docs {
                let record = Record::load(bytes).expect("record");
                let detail = Detail {
                    view: record.view(&rules).expect("view"),
                    timeline: record.events().expect("events").events,
                    refused_upstream: None,
                    next_steps: Vec::new(),
                    display_names: Default::default(),
                    duplicate_number: false,
                    own_number: None,
                    schema: 1,
                };
                let full = view_parties(&detail);
                for paper in [
                    application(&detail, &full),
                    register(&detail, &here),
                    sessions(&detail, &here),
                    agreement(&detail, &full),
                    follow_up(&detail, &here),
                    cover(&detail, &here),
                ] {
                    let text = text(&paper);
                    assert!(
                        !text.chars().any(|c| c.is_ascii_alphabetic()),
                        "{release} {}: {text}",
                        record.id()
                    );
                    printed += 1;
                }
                let agreement = text(&agreement(&detail, &full));
                assert!(
                    agreement.contains("调字第") && agreement.contains("性别"),
                    "{agreement}"
                );
            }
        }
        assert!(printed >= 120, "{printed}");
    }
}
