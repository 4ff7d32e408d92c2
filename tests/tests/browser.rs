//! The web app in a real headless Chromium, against real running nodes: a mediator signs
//! in and records a case with a session and an agreement; the case reaches the county
//! dashboard after sync; a colleague who does not handle a restricted record never sees
//! it. Screenshots of the main pages go to `target/artefacts/screenshots/`.
//!
//! Needs `chromium`, `chromium-driver` and `fonts-noto-cjk` (tests/run installs them).
//! `GUIHE_SKIP_BROWSER=1` skips it, saying so.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use guihe_tests::{Lab, arg, free_port, guihe_bin};

const COUNTY: &str = "500240000000";
const TOWNSHIP: &str = "500240001000";
const VILLAGE: &str = "500240001201";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn add_staff(lab: &Lab, node: &str, name: &str, role: &str, display: &str, password: &str) {
    let mut child = Command::new(guihe_bin().unwrap())
        .args([
            "staff",
            "add",
            "--data",
            arg(&lab.data(node)),
            "--name",
            name,
            "--role",
            role,
            "--display",
            display,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn url(lab: &Lab, node: &str) -> String {
    let endpoint: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab.data(node).join("api.json")).unwrap())
            .unwrap();
    endpoint["url"].as_str().unwrap().to_string()
}

fn artefacts() -> PathBuf {
    let dir = std::env::var_os("GUIHE_ARTEFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/artefacts/screenshots")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn browser(port: u16, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    let mut chrome = serde_json::json!({
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--window-size=1200,900",
            format!("--user-data-dir={}", profile.display()),
        ]
    });
    if std::path::Path::new("/usr/bin/chromium").exists() {
        chrome["binary"] = serde_json::json!("/usr/bin/chromium");
    }
    caps.insert("goog:chromeOptions".into(), chrome);
    let started = Instant::now();
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => return c,
            Err(e) if started.elapsed() < Duration::from_secs(20) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("chromedriver did not start a browser: {e}"),
        }
    }
}

async fn sign_in(c: &Client, base: &str, name: &str, password: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    c.find(Locator::Css("input[name=name]"))
        .await
        .unwrap()
        .send_keys(name)
        .await
        .unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    submit(c, "login").await;
    let url = c.current_url().await.unwrap();
    assert!(
        url.path().starts_with("/todo"),
        "sign-in failed: {url}\n{}",
        c.source().await.unwrap_or_default()
    );
}

/// Clicks a submit button and waits for the page that answers to replace this one.
async fn submit(c: &Client, id: &str) {
    let button = c.find(Locator::Id(id)).await.unwrap();
    button.click().await.unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if button.is_displayed().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("submitting #{id} never loaded a new page");
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(artefacts().join(format!("{name}.png")), png).unwrap();
}

async fn fill(c: &Client, name: &str, text: &str) {
    let e = c
        .find(Locator::Css(&format!("[name={name}]")))
        .await
        .unwrap();
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn choose(c: &Client, name: &str, value: &str) {
    c.find(Locator::Css(&format!("select[name={name}]")))
        .await
        .unwrap()
        .select_by_value(value)
        .await
        .unwrap();
}

/// Appends an event through its step's own form on the record page: opens the step,
/// fills in its fields, saves.
async fn event(c: &Client, ty: &str, fields: &[(&str, &str)]) {
    let step = format!("#step-{ty}");
    c.find(Locator::Css(&format!("{step} summary")))
        .await
        .unwrap_or_else(|_| panic!("the record page does not offer {ty}"))
        .click()
        .await
        .unwrap();
    for (k, v) in fields {
        let field = c
            .find(Locator::Css(&format!("{step} [name={k}]")))
            .await
            .unwrap();
        if matches!(*k, "form" | "level" | "outcome") {
            field.select_by_value(v).await.unwrap();
        } else {
            field.clear().await.unwrap();
            field.send_keys(v).await.unwrap();
        }
    }
    submit(c, &format!("add-{ty}")).await;
    let source = c.source().await.unwrap();
    assert!(
        !source.contains("class=\"error\""),
        "the {ty} event was refused: {source}"
    );
}

/// Screenshots every page at an office PC's 1366×768 and a phone's 360×740, and checks
/// that none scrolls sideways on the phone.
async fn every_page_at_both_widths(c: &Client, base: &str, record: &str, who: &str) {
    let pages = [
        ("todo", "/todo".to_string()),
        ("cases", "/cases".to_string()),
        ("petitions", "/petitions".to_string()),
        ("new", "/new".to_string()),
        ("record", format!("/records/{record}")),
        ("review", "/review".to_string()),
        ("dashboard", "/dashboard".to_string()),
        ("sync", "/sync".to_string()),
    ];
    for (width, height) in [(1366, 768), (360, 740)] {
        c.set_window_size(width, height).await.unwrap();
        for (name, path) in &pages {
            c.goto(&format!("{base}{path}")).await.unwrap();
            let inner = c
                .execute("return window.innerWidth", vec![])
                .await
                .unwrap()
                .as_u64()
                .unwrap();
            let scroll = c
                .execute("return document.documentElement.scrollWidth", vec![])
                .await
                .unwrap()
                .as_u64()
                .unwrap();
            assert!(
                scroll <= inner,
                "{who}'s {name} page scrolls sideways at {width} px: {scroll} > {inner}"
            );
            shot(c, &format!("{who}-{name}-{width}")).await;
        }
    }
    c.set_window_size(1366, 768).await.unwrap();
}

/// Opens a paper from the record page's print links, prints it to PDF (A4), keeps the PDF
/// and a screenshot in the artefacts, and checks its text with `pdftotext`: it holds each
/// of `must`, and no Latin letters (no English, no ids, no codes).
async fn print_paper(c: &Client, paper: &str, must: &[&str]) {
    let record = c.current_url().await.unwrap();
    c.find(Locator::Id(&format!("print-{paper}")))
        .await
        .unwrap_or_else(|_| panic!("the record page offers no {paper} to print"))
        .click()
        .await
        .unwrap();
    shot(c, &format!("paper-{paper}")).await;
    let pdf = c
        .print(fantoccini::wd::PrintConfiguration::default())
        .await
        .unwrap();
    let path = artefacts().join(format!("paper-{paper}.pdf"));
    std::fs::write(&path, &pdf).unwrap();
    let out = Command::new("pdftotext")
        .args(["-layout"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext is missing: run tests/run (it installs poppler-utils)");
    let text = String::from_utf8_lossy(&out.stdout);
    for m in must {
        assert!(
            text.contains(m),
            "{paper}: {m:?} missing from the printed text:\n{text}"
        );
    }
    let latin: Vec<&str> = text
        .split(|ch: char| !ch.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .collect();
    assert!(
        latin.is_empty(),
        "{paper}: Latin letters in print: {latin:?}\n{text}"
    );
    c.goto(record.as_str()).await.unwrap();
}

/// Takes in a case through the intake form; returns its id.
async fn intake(c: &Client, base: &str, party: &str, minor: bool, summary: &str) -> String {
    c.goto(&format!("{base}/new")).await.unwrap();
    choose(c, "category", "neighbour").await;
    fill(c, "party0", party).await;
    if minor {
        c.find(Locator::Css("input[name=minor0]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    fill(c, "summary", summary).await;
    submit(c, "save").await;
    let url = c.current_url().await.unwrap();
    url.path()
        .strip_prefix("/records/")
        .unwrap_or_else(|| panic!("intake failed: {}", url))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mediator_records_a_case_that_reaches_the_county_and_restricted_records_stay_hidden() {
    if std::env::var("GUIHE_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("GUIHE_SKIP_BROWSER=1: the browser test is skipped");
        return;
    }
    let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect(
            "chromedriver is missing: run tests/run (it installs chromium and chromium-driver), or set GUIHE_SKIP_BROWSER=1",
        );

    let mut lab = Lab::new("browser");
    lab.add("county", "county", COUNTY, None);
    lab.add("township", "township", TOWNSHIP, Some("county"));
    lab.add("village", "village", VILLAGE, Some("township"));
    add_staff(
        &lab,
        "village",
        "tan",
        "mediator",
        "谭德明",
        "tan-pass-2026",
    );
    add_staff(
        &lab,
        "village",
        "ran",
        "mediator",
        "冉秀英",
        "ran-pass-2026",
    );
    add_staff(
        &lab,
        "township",
        "tan",
        "mediator",
        "谭德华",
        "tan-township-2026",
    );
    add_staff(
        &lab,
        "township",
        "liu",
        "township_reviewer",
        "刘审核",
        "liu-pass-2026",
    );
    add_staff(
        &lab,
        "county",
        "zhou",
        "county_analyst",
        "周县",
        "zhou-pass-2026",
    );
    for n in ["county", "township", "village"] {
        lab.start(n);
    }
    let village = url(&lab, "village");
    let county = url(&lab, "county");
    // The county allows record schema 2 (the parties' particulars, the matter's, case
    // numbers); its settings reach the village by sync.
    let county_key = lab.dir.join("county/county.key");
    lab.ok(
        "county",
        &[
            "settings",
            "--county-key",
            guihe_tests::arg(&county_key),
            "--record-schema",
            "2",
        ],
    );
    lab.wait_for(
        "the county's settings at the village",
        std::time::Duration::from_secs(60),
        || {
            std::fs::read_to_string(lab.data("village").join("status.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .is_some_and(|s| s["record_schema"] == 2)
        },
    );

    let port = free_port();
    let _driver = Driver(
        Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let profiles = lab.dir.join("profiles");

    // A mediator records a case, a session and an agreement.
    let c = browser(port, &profiles.join("tan")).await;
    sign_in(&c, &village, "tan", "tan-pass-2026").await;
    c.goto(&format!("{village}/new")).await.unwrap();
    shot(&c, "intake").await;
    // Two parties with their particulars, and the matter's source, place and amount.
    choose(&c, "category", "neighbour").await;
    for (name, value) in [
        ("party0", "谭德明"),
        ("age0", "56"),
        ("ethnicity0", "土家族"),
        ("occupation0", "农民"),
        ("address0", "石柱土家族自治县示例村三组"),
        ("contact0", "13800001111"),
        ("id_number0", "500240197003050017"),
        ("party1", "冉光荣"),
        ("age1", "49"),
        ("ethnicity1", "汉族"),
        ("occupation1", "个体经营"),
        ("address1", "石柱土家族自治县示例村四组"),
        ("place", "示例村三组水沟"),
        ("amount", "800"),
        ("people", "2"),
        ("summary", "两户因排水沟堵塞发生争执"),
    ] {
        fill(&c, name, value).await;
    }
    choose(&c, "sex0", "male").await;
    choose(&c, "sex1", "male").await;
    choose(&c, "role1", "respondent").await;
    choose(&c, "source", "applied").await;
    // A fourth party row on request; what was typed stays.
    submit(&c, "more").await;
    assert!(c.find(Locator::Css("input[name=party3]")).await.is_ok());
    let page = c.source().await.unwrap();
    assert!(page.contains("500240197003050017") && page.contains("示例村三组水沟"));
    shot(&c, "intake-particulars").await;
    submit(&c, "save").await;
    let case = c
        .current_url()
        .await
        .unwrap()
        .path()
        .strip_prefix("/records/")
        .expect("intake with particulars failed")
        .to_string();
    let page = c.source().await.unwrap();
    assert!(
        page.contains("500***********0017")
            && !page.contains("500240197003050017")
            && page.contains("土家族")
            && page.contains("来源：当事人申请")
            && page.contains("涉及金额：800元"),
        "the record page shows the particulars, the ID number masked: {page}"
    );
    // Only the steps the record's state allows: no session before it is accepted.
    let page = c.source().await.unwrap();
    assert!(
        page.contains("id=\"step-accept\"") && !page.contains("id=\"step-session\""),
        "{page}"
    );
    shot(&c, "record-registered").await;
    event(&c, "accept", &[]).await;
    event(
        &c,
        "session",
        &[("place", "村委会调解室"), ("note", "双方陈述，同意再谈")],
    )
    .await;
    event(
        &c,
        "agreement",
        &[("form", "written"), ("terms", "两户共同清理水沟，费用平摊")],
    )
    .await;
    let page = c.source().await.unwrap();
    assert!(
        page.contains("双方达成书面调解协议：两户共同清理水沟，费用平摊")
            && page.contains("在村委会调解室主持调解"),
        "{page}"
    );
    // The agreement, printed to PDF as the browser prints it on A4: everything article
    // 29 asks for, the parties, the terms, blanks for signatures, thumbprints and the
    // seal, a date in Chinese, and no English, ids or codes.
    print_paper(
        &c,
        "agreement",
        &[
            "谭德明",
            "两户共同清理水沟，费用平摊",
            "按指印",
            "人民调解委员会（印章）",
            "调字第1号",
            "土家族",
            "56岁",
            "石柱土家族自治县示例村三组",
            "13800001111",
            "公民身份号码",
            "500240197003050017",
            "冉光荣",
            "个体经营",
        ],
    )
    .await;
    for (paper, must) in [
        ("application", "人民调解申请书"),
        ("register", "受理登记表"),
        ("sessions", "村委会调解室"),
        ("cover", "卷内目录"),
    ] {
        print_paper(&c, paper, &[must]).await;
    }
    c.goto(&format!("{village}/records/{case}")).await.unwrap();
    let rows = c.find_all(Locator::Css("#timeline tr")).await.unwrap();
    assert_eq!(rows.len(), 5, "header, intake, accept, session, agreement");
    shot(&c, "record").await;
    // A record involving a minor: restricted to those who handle it. The mediator refers
    // it to the township at once.
    let restricted = intake(&c, &village, "小明", true, "未成年人抚养费纠纷").await;
    event(
        &c,
        "refer",
        &[
            ("level", "township"),
            ("to", "乡镇调解委员会"),
            ("reason", "涉及未成年人抚养，需乡镇协调"),
        ],
    )
    .await;
    c.goto(&format!("{village}/records/{restricted}"))
        .await
        .unwrap();
    // A boundary dispute the village refers to the township, which takes it on below.
    let referral = intake(&c, &village, "冉光明", false, "两户因山林界址发生争执").await;
    event(&c, "accept", &[]).await;
    event(
        &c,
        "refer",
        &[
            ("level", "township"),
            ("to", "乡镇调解委员会"),
            ("reason", "涉及林权确权，需乡镇调处"),
        ],
    )
    .await;
    assert!(
        !c.source().await.unwrap().contains("id=\"step-receive\""),
        "the village that referred it cannot take it on"
    );
    // A petition through 受理, 答复, 复查 and 复核, each step offered only when due.
    c.goto(&format!("{village}/new?kind=petition"))
        .await
        .unwrap();
    fill(&c, "party0", "马春梅").await;
    choose(&c, "channel", "visit").await;
    choose(&c, "petition_type", "appeal").await;
    fill(&c, "summary", "反映征地补偿款未足额发放").await;
    submit(&c, "save").await;
    for (ty, fields, next) in [
        ("accept", vec![], "reply"),
        (
            "reply",
            vec![("note", "已协调镇政府补足补偿款")],
            "reexam_request",
        ),
        (
            "reexam_request",
            vec![("note", "对答复不服")],
            "reexam_answer",
        ),
        (
            "reexam_answer",
            vec![("note", "维持原答复意见")],
            "recheck_request",
        ),
        (
            "recheck_request",
            vec![("note", "对复查意见不服，请求复核")],
            "recheck_answer",
        ),
        (
            "recheck_answer",
            vec![("note", "复核维持复查意见")],
            "close",
        ),
    ] {
        let page = c.source().await.unwrap();
        assert!(
            !page.contains(&format!("id=\"step-{next}\"")),
            "{next} offered before {ty}: {page}"
        );
        event(&c, ty, &fields).await;
        let page = c.source().await.unwrap();
        assert!(
            page.contains(&format!("id=\"step-{next}\"")),
            "{next} not offered after {ty}: {page}"
        );
    }
    let page = c.source().await.unwrap();
    assert!(
        page.contains("已复核") && page.contains("复核意见") && page.contains("类型：申诉求决"),
        "{page}"
    );
    shot(&c, "petition-rechecked").await;
    c.goto(&format!("{village}/cases")).await.unwrap();
    let list = c.source().await.unwrap();
    assert!(list.contains(&restricted[..13]) && list.contains(&case[..13]));
    shot(&c, "cases").await;
    c.goto(&format!("{village}/petitions")).await.unwrap();
    shot(&c, "petitions").await;
    every_page_at_both_widths(&c, &village, &case, "village").await;
    c.close().await.unwrap();

    // A colleague who does not handle the restricted record does not see it.
    let c = browser(port, &profiles.join("ran")).await;
    sign_in(&c, &village, "ran", "ran-pass-2026").await;
    shot(&c, "todo").await;
    c.goto(&format!("{village}/cases")).await.unwrap();
    let list = c.source().await.unwrap();
    assert!(list.contains(&case[..13]), "{list}");
    assert!(
        !list.contains(&restricted[..13]) && !list.contains("小明"),
        "{list}"
    );
    c.goto(&format!("{village}/records/{restricted}"))
        .await
        .unwrap();
    let page = c.source().await.unwrap();
    assert!(
        page.contains("没有这条记录") && !page.contains("小明"),
        "{page}"
    );
    c.goto(&format!("{village}/cases?q=小明")).await.unwrap();
    assert!(!c.source().await.unwrap().contains(&restricted[..13]));
    c.close().await.unwrap();

    // At the township: a worker whose login name is also `tan` is another person and sees
    // nothing of the restricted record; the township reviewer sees it, since it was
    // referred there, and settles it with a review.
    let township = url(&lab, "township");
    let c = browser(port, &profiles.join("tan-township")).await;
    sign_in(&c, &township, "tan", "tan-township-2026").await;
    let started = Instant::now();
    loop {
        c.goto(&format!("{township}/cases")).await.unwrap();
        let list = c.source().await.unwrap();
        if list.contains(&case[..13]) {
            assert!(
                !list.contains(&restricted[..13]) && !list.contains("小明"),
                "a same-named account at another office sees a restricted record: {list}"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the township never got the records\n{}",
            lab.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    c.goto(&format!("{township}/records/{restricted}"))
        .await
        .unwrap();
    let page = c.source().await.unwrap();
    assert!(
        page.contains("没有这条记录") && !page.contains("小明"),
        "{page}"
    );
    // The township takes on the village's referral (接收), numbers it as its own and
    // mediates it to an agreement.
    c.goto(&format!("{township}/records/{referral}"))
        .await
        .unwrap();
    let page = c.source().await.unwrap();
    assert!(
        !page.contains("id=\"step-session\""),
        "a referral is taken on before it is mediated"
    );
    assert!(
        page.contains("<td>谭德明</td>"),
        "the village mediator's entries carry her display name to the township: {page}"
    );
    event(&c, "receive", &[("note", "乡镇调解委员会接收")]).await;
    event(
        &c,
        "session",
        &[("place", "镇调解室"), ("note", "双方到场，现场核对林权证")],
    )
    .await;
    event(
        &c,
        "agreement",
        &[
            ("form", "written"),
            ("terms", "以林权证四至为界，共同埋设界桩"),
        ],
    )
    .await;
    let page = c.source().await.unwrap();
    assert!(
        page.contains("接收移交") && page.contains("调字第1号") && page.contains("调解成功"),
        "{page}"
    );
    shot(&c, "referral-mediated-at-township").await;
    c.close().await.unwrap();
    let c = browser(port, &profiles.join("liu")).await;
    sign_in(&c, &township, "liu", "liu-pass-2026").await;
    c.goto(&format!("{township}/records/{restricted}"))
        .await
        .unwrap();
    let page = c.source().await.unwrap();
    assert!(
        page.contains("小明"),
        "the reviewer cannot see a record referred to the township: {page}"
    );
    event(
        &c,
        "review",
        &[
            ("outcome", "referred"),
            ("note", "已与村调解员核实，由乡镇接手协调"),
        ],
    )
    .await;
    let page = c.source().await.unwrap();
    assert!(
        page.contains("审核结论：移交。已与村调解员核实"),
        "the review's outcome is not in the timeline: {page}"
    );
    shot(&c, "record-reviewed").await;
    c.close().await.unwrap();

    // The county analyst sees the case on the county dashboard once it has synced, and
    // drills down to the township.
    let c = browser(port, &profiles.join("zhou")).await;
    sign_in(&c, &county, "zhou", "zhou-pass-2026").await;
    let started = Instant::now();
    loop {
        c.goto(&format!("{county}/dashboard")).await.unwrap();
        let total: u32 = c
            .find(Locator::Id("total"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Both written agreements (the village's and the township's after 接收) and the
        // petition have reached the county.
        let count = |key: &'static str| {
            let c = &c;
            async move {
                c.find(Locator::Css(&format!(
                    "#counts tr[data-count='{key}'] td:nth-child(2)"
                )))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
            }
        };
        if total >= 2
            && count("agreements_written").await == "2"
            && count("channel-visit").await == "1"
        {
            assert_eq!(count("type-appeal").await, "1");
            assert!(count("amount").await.starts_with("800"));
            assert_eq!(count("agreements_oral").await, "0");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the county never got the records\n{}",
            lab.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    shot(&c, "dashboard-county").await;
    // The analyst picks this month (every record here was taken in today), sees the same
    // month a year earlier beside it, and drills down with the period kept.
    let all = c
        .find(Locator::Id("total"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let month = c
        .find(Locator::Css("#period option:nth-child(2)"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    choose(&c, "period", &month).await;
    submit(&c, "pick").await;
    let span = c
        .find(Locator::Id("period-span"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        span.contains("统计期间") && span.contains("去年同期"),
        "{span}"
    );
    let picked = c
        .find(Locator::Id("total"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(picked, all, "this month holds every record");
    assert!(c.find(Locator::Id("levels")).await.is_ok());
    shot(&c, "dashboard-county-month").await;
    c.find(Locator::Css(&format!(
        "#units a[href='/dashboard?division={TOWNSHIP}&period={month}']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    assert!(c.find(Locator::Id("period-span")).await.is_ok());
    c.goto(&format!("{county}/dashboard")).await.unwrap();
    c.find(Locator::Css(&format!(
        "#units a[href='/dashboard?division={TOWNSHIP}']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let division = c
        .find(Locator::Id("division"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(division.trim(), TOWNSHIP);
    shot(&c, "dashboard-township").await;
    // On to the village, then its cases.
    c.find(Locator::Css(&format!(
        "#units a[href='/dashboard?division={VILLAGE}']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let fresh = c
        .find(Locator::Id("freshness"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(fresh.contains(VILLAGE), "{fresh}");
    c.find(Locator::Id("unit-cases"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let list = c.source().await.unwrap();
    assert!(list.contains(&case[..13]), "{list}");
    c.goto(&format!("{county}/cases")).await.unwrap();
    let list = c.source().await.unwrap();
    assert!(list.contains(&case[..13]), "{list}");
    assert!(
        !list.contains("小明"),
        "a restricted record's name reached the county list"
    );
    c.goto(&format!("{county}/sync")).await.unwrap();
    shot(&c, "sync").await;
    c.goto(&format!("{county}/lang/en")).await.unwrap();
    c.goto(&format!("{county}/dashboard")).await.unwrap();
    assert!(c.source().await.unwrap().contains("Mediation success rate"));
    shot(&c, "dashboard-english").await;
    c.close().await.unwrap();
}
