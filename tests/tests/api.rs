//! The HTTP API of a running node, endpoint by endpoint, with bad input: each refusal is
//! a 4xx with a JSON body that says what was wrong, and nothing is written.

use serde_json::{Value, json};

use guihe_tests::Lab;

const TOWNSHIP: &str = "500240001000";
const VILLAGE: &str = "500240001201";
const OTHER_VILLAGE: &str = "500240002201";

struct Api {
    url: String,
    token: String,
    agent: ureq::Agent,
}

impl Api {
    fn new(lab: &Lab, node: &str) -> Api {
        let endpoint: Value = serde_json::from_str(
            &std::fs::read_to_string(lab.data(node).join("api.json")).unwrap(),
        )
        .unwrap();
        Api {
            url: endpoint["url"].as_str().unwrap().to_string(),
            token: endpoint["token"].as_str().unwrap().to_string(),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
        }
    }

    fn get_as(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut r = self.agent.get(format!("{}{path}", self.url));
        if let Some(t) = token {
            r = r.header("Authorization", format!("Bearer {t}"));
        }
        let mut response = r.call().unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let (status, text) = self.get_as(path, Some(&self.token));
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn post_raw(&self, path: &str, body: &[u8]) -> (u16, Value) {
        let mut response = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", "application/json")
            .header("X-Guihe-Staff", "tan-mediator")
            .send(body)
            .unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(path, body.to_string().as_bytes())
    }

    fn count(&self) -> usize {
        let (status, records) = self.get("/api/v1/records");
        assert_eq!(status, 200);
        records.as_array().unwrap().len()
    }
}

fn intake() -> Value {
    json!({
        "villages": [VILLAGE],
        "category": "neighbour",
        "risk": "general",
        "summary": "两家因排水沟堵塞发生争执",
        "parties": [{"name": "谭德明"}, {"name": "冉秀英", "role": "respondent"}]
    })
}

fn refused(status: u16, body: &Value, expect: u16, mentions: &str) {
    assert_eq!(status, expect, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(mentions),
        "{message:?} should mention {mentions:?}"
    );
}

#[test]
fn every_endpoint_answers_and_bad_input_writes_nothing() {
    let mut lab = Lab::new("api");
    lab.add("township", "township", TOWNSHIP, None);
    lab.add("village", "village", VILLAGE, Some("township"));
    lab.start("village");
    let api = Api::new(&lab, "village");

    // No token, a wrong token: 401, and the health check needs none.
    let (status, _) = api.get_as("/api/v1/cases", None);
    assert_eq!(status, 401);
    let (status, _) = api.get_as("/api/v1/cases", Some("0000"));
    assert_eq!(status, 401);
    assert_eq!(api.get_as("/healthz", None), (200, "ok".to_string()));
    let (status, body) = api.get("/api/v1/nothing-here");
    refused(status, &body, 404, "route");

    // Intake: each wrong field is named, and nothing is written.
    let mut bad = intake();
    bad["category"] = json!("weather");
    let (status, body) = api.post("/api/v1/cases", bad);
    refused(status, &body, 400, "category");
    let mut bad = intake();
    bad["colour"] = json!("red");
    let (status, body) = api.post("/api/v1/cases", bad);
    refused(status, &body, 400, "colour");
    let mut bad = intake();
    bad["villages"] = json!(["12"]);
    let (status, body) = api.post("/api/v1/cases", bad);
    refused(status, &body, 400, "villages");
    let mut bad = intake();
    bad["parties"] = json!([{"name": ""}]);
    let (status, body) = api.post("/api/v1/cases", bad);
    refused(status, &body, 400, "parties[0]");
    let mut bad = intake();
    bad["villages"] = json!([OTHER_VILLAGE]);
    let (status, body) = api.post("/api/v1/cases", bad);
    refused(status, &body, 403, OTHER_VILLAGE);
    let (status, body) = api.post_raw("/api/v1/cases", b"{\"villages\": [");
    refused(status, &body, 400, "body");
    let (status, _) = api.post_raw("/api/v1/cases", &vec![b' '; 300 * 1024]);
    assert_eq!(status, 413);
    assert_eq!(api.count(), 0);

    // A good intake, then its page.
    let (status, body) = api.post("/api/v1/cases", intake());
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("case-"));
    let (status, detail) = api.get(&format!("/api/v1/records/{id}"));
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["view"]["id"], json!(id));
    assert_eq!(detail["timeline"].as_array().unwrap().len(), 1);
    let (status, cases) = api.get("/api/v1/cases");
    assert_eq!((status, cases.as_array().unwrap().len()), (200, 1));
    let (status, petitions) = api.get("/api/v1/petitions");
    assert_eq!((status, petitions.as_array().unwrap().len()), (200, 0));

    // Unknown and malformed ids.
    let (status, body) = api.get("/api/v1/records/case-00000000000000000000000000000000");
    refused(status, &body, 404, "case-0000");
    let (status, body) = api.get("/api/v1/records/nonsense");
    refused(status, &body, 400, "id");

    // Events: a wrong type, a missing field, one the workflow refuses, then good ones.
    let events = format!("/api/v1/records/{id}/events");
    let (status, body) = api.post(&events, json!({"type": "dance"}));
    refused(status, &body, 400, "event");
    let (status, body) = api.post(&events, json!({"type": "satisfaction"}));
    refused(status, &body, 400, "rating");
    let (status, body) = api.post(&events, json!({"type": "reply", "note": "答复"}));
    refused(status, &body, 409, "");
    let (status, body) = api.post(&events, json!({"type": "accept", "at_ms": "yesterday"}));
    refused(status, &body, 400, "at_ms");
    let (_, detail) = api.get(&format!("/api/v1/records/{id}"));
    assert_eq!(
        detail["timeline"].as_array().unwrap().len(),
        1,
        "a refusal wrote"
    );

    let (status, body) = api.post(&events, json!({"type": "accept"}));
    assert_eq!(status, 200, "{body}");
    let (status, body) = api.post(
        &events,
        json!({"type": "session", "place": "村委会", "note": "双方陈述"}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = api.post(
        &events,
        json!({"type": "agreement", "form": "written", "terms": "共同清理水沟"}),
    );
    assert_eq!(status, 200, "{body}");
    let (_, detail) = api.get(&format!("/api/v1/records/{id}"));
    let timeline = detail["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 4);
    assert_eq!(timeline[2]["staff"], json!("tan-mediator"));

    // Lists come from the materialised views, which follow every write.
    let (_, cases) = api.get("/api/v1/cases");
    assert_eq!(cases[0]["status"], detail["view"]["status"], "{cases}");
    assert_ne!(cases[0]["status"], json!("registered"));

    // Dashboard figures: the node's own village by default; another township is not its
    // to see; a malformed code is named.
    let (status, stats) = api.get("/api/v1/stats");
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["total"]["records"], json!(1));
    assert_eq!(stats["cases"], json!(1));
    let (status, body) = api.get("/api/v1/stats?division=500240002000");
    refused(status, &body, 403, "500240002000");
    let (status, body) = api.get("/api/v1/stats?division=12");
    refused(status, &body, 400, "division");

    // Staff accounts for the web app: made over the API, with typed refusals.
    let (status, body) = api.post(
        "/api/v1/staff",
        json!({"name": "tan", "display": "谭德明", "role": "mediator", "password": "long-enough-1"}),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = api.post(
        "/api/v1/staff",
        json!({"name": "x", "role": "mediator", "password": "short"}),
    );
    refused(status, &body, 400, "password");
    let (status, body) = api.post(
        "/api/v1/staff",
        json!({"name": "x", "role": "boss", "password": "long-enough-1"}),
    );
    refused(status, &body, 400, "role");

    // The web app: no session, a wrong password, a right one, and a form without its
    // CSRF token, which writes nothing.
    let web = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();
    let r = web.get(format!("{}/cases", api.url)).call().unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let r = web
        .post(format!("{}/login", api.url))
        .send_form([("name", "tan"), ("password", "wrong-password")])
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = web
        .post(format!("{}/login", api.url))
        .send_form([("name", "tan"), ("password", "long-enough-1")])
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_string();
    assert!(
        r.headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("HttpOnly")
    );
    let mut r = web
        .get(format!("{}/cases", api.url))
        .header("Cookie", &cookie)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.body_mut().read_to_string().unwrap().contains("谭德明"));
    let before = api.count();
    let r = web
        .post(format!("{}/new", api.url))
        .header("Cookie", &cookie)
        .send_form([
            ("csrf", "forged"),
            ("kind", "case"),
            ("village", VILLAGE),
            ("category", "neighbour"),
            ("risk", "general"),
            ("summary", "伪造的表单"),
        ])
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(api.count(), before);

    // The OpenAPI document names every API route.
    let (status, doc) = api.get_as("/api/v1/openapi.json", None);
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&doc).unwrap();
    for path in [
        "/api/v1/cases",
        "/api/v1/petitions",
        "/api/v1/records",
        "/api/v1/records/{id}",
        "/api/v1/records/{id}/events",
        "/api/v1/staff",
        "/api/v1/stats",
        "/api/v1/revocations",
        "/api/v1/status",
        "/metrics",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"]["NewForm"].is_object());

    // Status, revocations and metrics.
    let (status, report) = api.get("/api/v1/status");
    assert_eq!(status, 200);
    assert_eq!(report["division"], json!(VILLAGE));
    assert_eq!(report["records"], json!(1));
    let (status, body) = api.post("/api/v1/revocations", json!({"body": {}, "signature": []}));
    refused(status, &body, 400, "");
    let (status, text) = api.get_as("/metrics", None);
    assert_eq!(status, 200);
    assert!(text.contains("guihe_local_writes_total 4"), "{text}");
    assert!(
        text.contains("guihe_api_requests_total{route=\"/api/v1/cases\",status=\"400\"}"),
        "{text}"
    );
    assert!(text.contains("libp2p_"), "{text}");
}

/// A signed-in web session over plain HTTP: its cookie and the CSRF token its forms carry.
struct Web {
    url: String,
    agent: ureq::Agent,
    cookie: String,
    csrf: String,
}

impl Web {
    fn sign_in(api: &Api, name: &str, password: &str) -> Web {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .new_agent();
        let r = agent
            .post(format!("{}/login", api.url))
            .send_form([("name", name), ("password", password)])
            .unwrap();
        assert_eq!(r.status().as_u16(), 303);
        let cookie = r
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .unwrap()
            .to_string();
        let mut web = Web {
            url: api.url.clone(),
            agent,
            cookie,
            csrf: String::new(),
        };
        let (_, page) = web.get("/new");
        let at = page.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
        web.csrf = page[at..].split('"').next().unwrap().to_string();
        web
    }

    fn get(&self, path: &str) -> (u16, String) {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.url))
            .header("Cookie", &self.cookie)
            .call()
            .unwrap();
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        )
    }

    /// Posts a form; returns the status, the page, and where a redirect leads.
    fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String, Option<String>) {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        let mut r = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("Cookie", &self.cookie)
            .send_form(all)
            .unwrap();
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
            location,
        )
    }
}

/// `YYYY-MM-DD`, Beijing time, `days` ago.
fn day(days: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    guihe_protocol::stats::date_of(now - days * 86_400_000)
}

#[test]
fn the_record_page_offers_only_the_next_steps_and_a_refused_form_keeps_what_was_typed() {
    let mut lab = Lab::new("steps");
    lab.add("township", "township", TOWNSHIP, None);
    lab.add("village", "village", VILLAGE, Some("township"));
    lab.start("village");
    let api = Api::new(&lab, "village");
    let (status, body) = api.post(
        "/api/v1/staff",
        json!({"name": "tan", "display": "谭德明", "role": "mediator", "password": "long-enough-1"}),
    );
    assert_eq!(status, 201, "{body}");
    let web = Web::sign_in(&api, "tan", "long-enough-1");

    // Intake refused (no summary): the form comes back with what was typed.
    let before = api.count();
    let intake = |summary: &'static str, date: String| {
        vec![
            ("kind", "case".to_string()),
            ("village", VILLAGE.to_string()),
            ("date", date),
            ("category", "neighbour".to_string()),
            ("risk", "general".to_string()),
            ("party0", "谭德明".to_string()),
            ("role0", "applicant".to_string()),
            ("party1", "冉秀英".to_string()),
            ("role1", "respondent".to_string()),
            ("summary", summary.to_string()),
        ]
    };
    let form = intake("", day(0));
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, page, _) = web.post("/new", &fields);
    assert!((400..500).contains(&status), "{status}: {page}");
    assert!(page.contains("class=\"error\""), "{page}");
    assert!(
        page.contains("value=\"冉秀英\"") && page.contains("<option value=\"respondent\" selected"),
        "the parties typed are lost after a refusal: {page}"
    );
    // A date received in the future is refused in Chinese, and nothing is written.
    let tomorrow = guihe_protocol::stats::date_of(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            + 2 * 86_400_000,
    );
    let form = intake("两户因排水沟堵塞发生争执", tomorrow);
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, page, _) = web.post("/new", &fields);
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("收到日期不能晚于今天"), "{page}");
    assert!(page.contains("两户因排水沟堵塞发生争执"), "{page}");
    assert_eq!(api.count(), before);

    // A ledger copied in afterwards: received five days ago, marked 补录.
    let form = intake("两户因排水沟堵塞发生争执", day(5));
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, page, location) = web.post("/new", &fields);
    assert_eq!(status, 303, "{page}");
    let record = location.unwrap();
    let (_, page) = web.get(&record);
    assert!(page.contains(&format!("登记于 {}", day(5))), "{page}");
    assert!(page.contains("补录"), "{page}");

    // Registered: accepting is offered, a session is not.
    assert!(page.contains("id=\"step-accept\""), "{page}");
    assert!(!page.contains("id=\"step-session\""), "{page}");
    assert!(
        !page.contains("id=\"step-reply\""),
        "a petition's step on a case: {page}"
    );
    assert!(
        !page.contains("id=\"step-review\""),
        "a mediator does not review: {page}"
    );
    let (status, page, _) = web.post(
        &format!("{record}/events"),
        &[("type", "accept"), ("note", ""), ("date", &day(4))],
    );
    assert_eq!(status, 303, "{page}");
    let (_, page) = web.get(&record);
    assert!(page.contains("id=\"step-session\""), "{page}");
    assert!(!page.contains("id=\"step-accept\""), "{page}");

    // A session without its record is refused; the session's form comes back open with
    // the place typed, and nothing is written.
    let (status, before) = api.get(&format!("/api/v1/records/{}", &record["/records/".len()..]));
    assert_eq!(status, 200, "{before}");
    let (status, page, _) = web.post(
        &format!("{record}/events"),
        &[
            ("type", "session"),
            ("place", "村委会调解室"),
            ("note", ""),
            ("date", &day(0)),
        ],
    );
    assert!((400..500).contains(&status), "{status}: {page}");
    assert!(page.contains("class=\"error\""), "{page}");
    assert!(
        page.contains("<details class=\"step\" id=\"step-session\" open")
            && page.contains("value=\"村委会调解室\""),
        "{page}"
    );
    let (status, after) = api.get(&format!("/api/v1/records/{}", &record["/records/".len()..]));
    assert_eq!(status, 200, "{after}");
    assert_eq!(before["timeline"], after["timeline"]);
    // A day before the record was received: refused, not moved to the receipt.
    let (status, page, _) = web.post(
        &format!("{record}/events"),
        &[
            ("type", "session"),
            ("place", "村委会调解室"),
            ("note", "双方陈述"),
            ("date", &day(6)),
        ],
    );
    assert!((400..500).contains(&status), "{status}: {page}");
    assert!(page.contains("日期不能早于收到日期"), "{page}");
    // An assignment to someone who is no colleague here: refused.
    let (status, page, _) = web.post(
        &format!("{record}/events"),
        &[("type", "assign"), ("to", "stranger"), ("date", &day(0))],
    );
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("请填写本办公室同事的账号"), "{page}");
    let (_, unchanged) = api.get(&format!("/api/v1/records/{}", &record["/records/".len()..]));
    assert_eq!(before["timeline"], unchanged["timeline"]);
    // A date after today is refused.
    let (status, page, _) = web.post(
        &format!("{record}/events"),
        &[
            ("type", "session"),
            ("place", "村委会调解室"),
            ("note", "双方陈述"),
            ("date", "2999-01-01"),
        ],
    );
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("日期不能晚于今天"), "{page}");
    // Recorded today: the timeline reads as a sentence, not field names.
    let (status, page, _) = web.post(
        &format!("{record}/events"),
        &[
            ("type", "session"),
            ("place", "村委会调解室"),
            ("note", "双方陈述，同意再谈"),
            ("date", &day(0)),
        ],
    );
    assert_eq!(status, 303, "{page}");
    let (_, page) = web.get(&record);
    assert!(
        page.contains("在村委会调解室主持调解：双方陈述，同意再谈"),
        "{page}"
    );
    assert!(!page.contains("place:"), "{page}");
    assert!(page.contains("id=\"step-agreement\""), "{page}");
    assert!(
        !page.contains("id=\"step-judicial_request\""),
        "judicial confirmation before an agreement: {page}"
    );
    // The API gives the same steps.
    let (_, detail) = api.get(&format!("/api/v1/records/{}", &record["/records/".len()..]));
    let steps = detail["next_steps"].as_array().unwrap();
    assert!(
        steps.contains(&json!("agreement")) && !steps.contains(&json!("accept")),
        "{detail}"
    );

    // The dashboard: the rate says what it is a rate of, and one month's figures are
    // drawn (as dots: one month makes no line).
    let (status, page) = web.get("/dashboard");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("id=\"rate-base\"")
            && page.contains("调解成功0件，调解不成0件；移交、信访及在办1件不计"),
        "{page}"
    );
    assert!(page.contains("<circle"), "the trend draws nothing: {page}");

    // 我的待办, the page a worker lands on: a petition received 13 days ago tops it with
    // two days left to decide on acceptance.
    let (status, page, location) = web.post(
        "/new",
        &[
            ("kind", "petition"),
            ("village", VILLAGE),
            ("date", &day(13)),
            ("category", "other"),
            ("risk", "general"),
            ("channel", "visit"),
            ("party0", "马国富"),
            ("summary", "反映低保评定不公，请求重新评议。"),
        ],
    );
    assert_eq!(status, 303, "{page}");
    let petition = location.unwrap();
    let (status, page) = web.get("/todo");
    assert_eq!(status, 200, "{page}");
    let rows: Vec<&str> = page.split("<tr>").skip(2).collect();
    assert!(
        rows.first()
            .is_some_and(|r| r.contains(&petition) && r.contains("受理期限：还剩2天")),
        "{page}"
    );
    // Signing in lands there.
    let r = web
        .agent
        .post(format!("{}/login", web.url))
        .send_form([("name", "tan"), ("password", "long-enough-1")])
        .unwrap();
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/todo")
    );
}

/// The Latin words a person reads on a page (its text, not its markup or styles), outside
/// the allow-list: the product's name, the export formats, the switch to English, and
/// record ids and key digests.
fn english_words(html: &str) -> Vec<String> {
    let mut text = String::new();
    let mut rest = html;
    // Drop the style sheet and every tag; keep the text between.
    while let Some(at) = rest.find('<') {
        text.push_str(&rest[..at]);
        text.push(' ');
        let tag = &rest[at..];
        let end = if tag.starts_with("<style") {
            tag.find("</style>").map(|e| e + "</style>".len())
        } else {
            tag.find('>').map(|e| e + 1)
        };
        rest = &tag[end.unwrap_or(tag.len())..];
    }
    text.push_str(rest);
    let allowed = ["guihe", "CSV", "XLSX", "English", "A4"];
    let is_id = |w: &str| {
        let hex = |s: &str| s.len() >= 8 && s.chars().all(|c| c.is_ascii_hexdigit());
        ["case-", "pet-", "div-"]
            .iter()
            .any(|p| w.strip_prefix(p).is_some_and(|h| h.is_empty() || hex(h)))
            || hex(w)
    };
    text.split(|c: char| {
        !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '&' || c == ';')
    })
    .filter(|w| w.chars().any(|c| c.is_ascii_alphabetic()))
    // HTML entities (&amp;) are markup.
    .filter(|w| !(w.starts_with('&') && w.ends_with(';')))
    .filter(|w| !allowed.contains(w) && !is_id(w))
    .map(str::to_string)
    .collect()
}

#[test]
fn no_english_reaches_a_page_or_a_form_error_in_the_chinese_view() {
    let mut lab = Lab::new("zh");
    lab.add("township", "township", TOWNSHIP, None);
    lab.add("village", "village", VILLAGE, Some("township"));
    lab.start("village");
    let api = Api::new(&lab, "village");
    let (status, body) = api.post(
        "/api/v1/staff",
        json!({"name": "tan", "display": "谭德明", "role": "mediator", "password": "long-enough-1"}),
    );
    assert_eq!(status, 201, "{body}");
    let web = Web::sign_in(&api, "tan", "long-enough-1");
    // The scan finds what it should, and passes what it should.
    assert_eq!(
        english_words(
            "<style>p{color:red}</style><p class=\"x\">a Session event is not allowed &amp; 登记</p>"
        ),
        ["a", "Session", "event", "is", "not", "allowed"]
    );
    assert!(
        english_words("<a href=\"/x\">贵和 guihe</a> case-0f3a9b2c0f3a9b2c 2026-12-01").is_empty()
    );
    let check = |what: &str, page: &str| {
        let words = english_words(page);
        assert!(words.is_empty(), "English on {what}: {words:?}\n{page}");
    };
    let intake =
        |kind: &'static str, village: &'static str, date: String, summary: &'static str| {
            let mut form = vec![
                ("kind", kind.to_string()),
                ("village", village.to_string()),
                ("date", date),
                ("category", "neighbour".to_string()),
                ("risk", "general".to_string()),
                ("party0", "谭德明".to_string()),
                ("party1", "冉秀英".to_string()),
                ("role1", "respondent".to_string()),
                ("summary", summary.to_string()),
            ];
            if kind == "petition" {
                form.push(("channel", "visit".to_string()));
            }
            form
        };
    let post = |path: &str, form: &[(&str, String)]| {
        let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        web.post(path, &fields)
    };

    // Every refusal of the intake form.
    for (what, form) in [
        ("an empty summary", intake("case", VILLAGE, day(0), "")),
        (
            "a village code of two digits",
            intake("case", "12", day(0), "两户争执"),
        ),
        (
            "another township's village",
            intake("case", OTHER_VILLAGE, day(0), "两户争执"),
        ),
        (
            "a date after today",
            intake("case", VILLAGE, "2999-01-01".into(), "两户争执"),
        ),
        (
            "a date that is no date",
            intake("case", VILLAGE, "2026-13-45".into(), "两户争执"),
        ),
    ] {
        let (status, page, _) = post("/new", &form);
        assert!((400..500).contains(&status), "{what}: {status}");
        assert!(page.contains("class=\"error\""), "{what}: {page}");
        check(what, &page);
    }
    // A case and a petition.
    let (_, _, case) = post(
        "/new",
        &intake("case", VILLAGE, day(0), "两户因排水沟堵塞发生争执"),
    );
    let case = case.unwrap();
    let (_, _, petition) = post(
        "/new",
        &intake("petition", VILLAGE, day(3), "反映低保评定不公"),
    );
    let petition = petition.unwrap();

    // Every kind of refusal of a step: a step the state does not allow, a required field
    // left empty, a number that is no number, a number out of range, a date after today.
    let event =
        |record: &str, fields: &[(&str, &str)]| web.post(&format!("{record}/events"), fields);
    let (status, page, _) = event(
        &case,
        &[("type", "session"), ("note", "双方陈述"), ("date", &day(0))],
    );
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("不能记录“调解记录”"), "{page}");
    check("a step the state does not allow", &page);
    let (status, _, _) = event(&petition, &[("type", "accept"), ("date", &day(0))]);
    assert_eq!(status, 303);
    let today = day(0);
    for (what, fields) in [
        (
            "an empty required field",
            vec![("type", "reply"), ("note", ""), ("date", today.as_str())],
        ),
        (
            "a number that is no number",
            vec![
                ("type", "extend"),
                ("days", "十"),
                ("reason", "情况复杂"),
                ("date", today.as_str()),
            ],
        ),
        (
            "a number out of range",
            vec![
                ("type", "extend"),
                ("days", "99"),
                ("reason", "情况复杂"),
                ("date", today.as_str()),
            ],
        ),
        (
            "a date after today",
            vec![
                ("type", "extend"),
                ("days", "10"),
                ("reason", "情况复杂"),
                ("date", "2999-01-01"),
            ],
        ),
        (
            "an unknown step",
            vec![("type", "weather"), ("date", today.as_str())],
        ),
    ] {
        let fields: Vec<(&str, &str)> = fields.to_vec();
        let (status, page, _) = event(&petition, &fields);
        assert!((400..500).contains(&status), "{what}: {status} {page}");
        assert!(page.contains("class=\"error\""), "{what}: {page}");
        check(what, &page);
    }

    // Every page.
    for path in [
        "/todo",
        "/cases",
        "/petitions",
        "/new",
        "/new?kind=petition",
        "/review",
        "/dashboard",
        "/sync",
        "/search?q=%E8%B0%AD&risk=general",
        "/reassign?from=tan",
        &case,
        &petition,
        &format!("{case}/print/application"),
        &format!("{case}/print/register"),
        &format!("{case}/print/sessions"),
        &format!("{case}/print/agreement"),
        &format!("{petition}/print/follow-up"),
        &format!("{petition}/print/cover"),
        "/records/case-00000000000000000000000000000000",
    ] {
        let (status, page) = web.get(path);
        let expected = if path.contains("case-0000") { 404 } else { 200 };
        assert_eq!(status, expected, "{path}: {page}");
        check(path, &page);
    }
}

#[test]
fn a_returning_party_is_found_by_name_or_phone_with_their_other_records() {
    let mut lab = Lab::new("person");
    lab.add("township", "township", TOWNSHIP, None);
    lab.add("village", "village", VILLAGE, Some("township"));
    lab.start("village");
    let api = Api::new(&lab, "village");
    let (status, body) = api.post(
        "/api/v1/staff",
        json!({"name": "tan", "display": "谭德明", "role": "mediator", "password": "long-enough-1"}),
    );
    assert_eq!(status, 201, "{body}");
    let web = Web::sign_in(&api, "tan", "long-enough-1");
    let today = day(0);
    let new = |kind: &str, party: &str, contact: &str, summary: &str| {
        let mut form = vec![
            ("kind", kind),
            ("village", VILLAGE),
            ("date", today.as_str()),
            ("category", "neighbour"),
            ("risk", "general"),
            ("party0", party),
            ("contact0", contact),
            ("summary", summary),
        ];
        if kind == "petition" {
            form.push(("channel", "visit"));
        }
        let (status, page, location) = web.post("/new", &form);
        assert_eq!(status, 303, "{page}");
        location.unwrap()
    };
    let a = new(
        "case",
        "冉秀英",
        "138-0000-1234",
        "两户因排水沟堵塞发生争执",
    );
    let b = new("case", "冉秀英", "", "借用农具未归还发生争执");
    let c = new("petition", "冉秀英", "13900005678", "反映低保评定不公");
    let d = new("case", "马国富", "", "院坝晾晒占道发生口角");
    let id = |r: &str| r["/records/".len()..].to_string();

    let found = |query: &str| {
        let (status, page) = web.get(&format!("/search?{query}"));
        assert_eq!(status, 200, "{query}: {page}");
        assert!(page.contains("<table"), "{query}: {page}");
        page
    };
    let page = found("q=0000-1234");
    assert!(page.contains(&id(&a)[..13]), "{page}");
    for other in [&b, &c, &d] {
        assert!(!page.contains(&id(other)[..13]), "{page}");
    }
    let page = found(&format!("q={}", "%E5%86%89%E7%A7%80%E8%8B%B1"));
    for r in [&a, &b, &c] {
        assert!(page.contains(&id(r)[..13]), "{page}");
    }
    assert!(!page.contains(&id(&d)[..13]), "{page}");
    let page = found("risk=major");
    assert!(!page.contains(&id(&a)[..13]), "{page}");
    let page = found(&format!("from={today}&to={today}&handler=tan"));
    for r in [&a, &b, &c, &d] {
        assert!(page.contains(&id(r)[..13]), "{page}");
    }
    let page = found("from=2000-01-01&to=2000-12-31");
    assert!(!page.contains(&id(&a)[..13]), "{page}");

    // The record page shows the same people's other records: without a phone the name
    // decides; two phones that differ are two people.
    let (_, page) = web.get(&b);
    let related = page.split("id=\"related\"").nth(1).unwrap_or_default();
    assert!(
        related.contains(&id(&a)[..13]) && related.contains(&id(&c)[..13]),
        "{page}"
    );
    assert!(!related.contains(&id(&d)[..13]), "{page}");
    let (_, page) = web.get(&a);
    let related = page.split("id=\"related\"").nth(1).unwrap_or_default();
    assert!(related.contains(&id(&b)[..13]), "{page}");
    assert!(
        !related.contains(&id(&c)[..13]),
        "another person of the same name: {page}"
    );
}

#[test]
fn a_departed_mediators_open_records_are_handed_to_a_colleague() {
    let mut lab = Lab::new("handover");
    lab.add("township", "township", TOWNSHIP, None);
    lab.add("village", "village", VILLAGE, Some("township"));
    lab.start("village");
    let api = Api::new(&lab, "village");
    for (name, display) in [("tan", "谭德明"), ("ran", "冉秀英")] {
        let (status, body) = api.post(
            "/api/v1/staff",
            json!({"name": name, "display": display, "role": "mediator", "password": "long-enough-1"}),
        );
        assert_eq!(status, 201, "{body}");
    }
    let tan = Web::sign_in(&api, "tan", "long-enough-1");
    let today = day(0);
    let mut records = Vec::new();
    for summary in ["两户因排水沟堵塞发生争执", "借用农具未归还发生争执"] {
        let (status, page, location) = tan.post(
            "/new",
            &[
                ("kind", "case"),
                ("village", VILLAGE),
                ("date", today.as_str()),
                ("category", "neighbour"),
                ("risk", "general"),
                ("party0", "马国富"),
                ("summary", summary),
            ],
        );
        assert_eq!(status, 303, "{page}");
        records.push(location.unwrap());
    }
    let (_, page) = tan.get("/reassign?from=tan");
    assert!(page.contains("在办记录 2"), "{page}");
    // Not an account of this office: refused in Chinese, nothing written.
    let (status, page, _) = tan.post(
        "/reassign",
        &[
            ("from", "tan"),
            ("to", "nobody"),
            ("reason", "原承办人离职"),
        ],
    );
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("请填写本办公室另一位同事的账号"), "{page}");
    let (status, page, _) = tan.post(
        "/reassign",
        &[("from", "tan"), ("to", "ran"), ("reason", "原承办人离职")],
    );
    assert_eq!(status, 303, "{page}");
    let (_, page) = tan.get("/reassign?from=tan");
    assert!(page.contains("在办记录 0"), "{page}");
    // Each record says who handed it to whom, and ran finds them on the to-do list.
    for r in &records {
        let (_, page) = tan.get(r);
        assert!(page.contains("指派 冉秀英 承办。原承办人离职"), "{page}");
    }
    let ran = Web::sign_in(&api, "ran", "long-enough-1");
    let (_, page) = ran.get("/todo");
    assert_eq!(page.matches("指派给我承办").count(), 2, "{page}");

    // A restricted record (a minor among the parties) that ran does not handle: ran
    // cannot write to it either, which would make ran its handler.
    let (status, page, location) = tan.post(
        "/new",
        &[
            ("kind", "case"),
            ("village", VILLAGE),
            ("date", today.as_str()),
            ("category", "marriage_family"),
            ("risk", "general"),
            ("party0", "谭小雨"),
            ("minor0", "1"),
            ("summary", "未成年人抚养费纠纷"),
        ],
    );
    assert_eq!(status, 303, "{page}");
    let restricted = location.unwrap();
    let id = &restricted["/records/".len()..];
    let (_, before) = api.get(&format!("/api/v1/records/{id}"));
    let (status, page, _) = ran.post(
        &format!("{restricted}/events"),
        &[("type", "accept"), ("note", ""), ("date", today.as_str())],
    );
    assert_eq!(status, 404, "{page}");
    assert!(!page.contains("谭小雨"), "{page}");
    let (_, after) = api.get(&format!("/api/v1/records/{id}"));
    assert_eq!(before["timeline"], after["timeline"]);
    assert!(
        ran.get(&format!("{restricted}/print/cover"))
            .1
            .contains("没有这条记录")
    );
}

/// Record schema 2 waits for the county: a party's particulars and the matter's are
/// refused (in Chinese, nothing written) until the county's settings allow schema 2, and
/// the intake form offers them only then. Once allowed, an ID number is checked, kept in
/// the record, masked on every page and in the API's lists, and finds the person in a
/// search; each case accepted gets the office's next number.
#[test]
fn particulars_wait_for_the_county_then_are_kept_masked_and_numbered() {
    let mut lab = Lab::new("particulars");
    lab.add("township", "township", TOWNSHIP, None);
    lab.add("village", "village", VILLAGE, Some("township"));
    lab.start("village");
    let api = Api::new(&lab, "village");
    let (status, body) = api.post(
        "/api/v1/staff",
        json!({"name": "tan", "display": "谭德明", "role": "mediator", "password": "long-enough-1"}),
    );
    assert_eq!(status, 201, "{body}");
    let web = Web::sign_in(&api, "tan", "long-enough-1");
    let id_number = "500240197003050017";
    let detailed = || {
        let mut form = intake();
        form["parties"][0] = json!({
            "name": "谭德明", "sex": "male", "age": 56, "ethnicity": "土家族",
            "occupation": "农民", "address": "石柱土家族自治县示例村三组",
            "contact": "13800001111", "id_number": id_number
        });
        form["matter"] =
            json!({"source": "grid", "place": "示例村三组", "amount_yuan": 800, "people": 2});
        form
    };

    // Schema 1 until the county says otherwise: refused, in Chinese, nothing written.
    let (status, page) = web.get("/new");
    assert_eq!(status, 200);
    assert!(!page.contains("name=\"id_number0\""), "{page}");
    let before = api.count();
    let (status, body) = api.post("/api/v1/cases", detailed());
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message_zh"]
            .as_str()
            .is_some_and(|m| m.contains("第1版") && m.contains("第2版")),
        "{body}"
    );
    assert_eq!(api.count(), before);

    // A petition re-examined (复查) at schema 1: the petitioner's window to ask for 复核 is
    // a step nobody here can record yet, so it is not shown.
    let mut form = intake();
    form["channel"] = json!("visit");
    form["parties"] = json!([{"name": "马春梅", "role": "petitioner"}]);
    let (status, body) = api.post("/api/v1/petitions", form);
    assert_eq!(status, 201, "{body}");
    let petition = format!("/api/v1/records/{}", body["id"].as_str().unwrap());
    for event in [
        json!({"type": "accept"}),
        json!({"type": "reply", "note": "已书面答复"}),
        json!({"type": "reexam_request", "note": "不服答复"}),
        json!({"type": "reexam_answer", "note": "维持原答复"}),
    ] {
        let (status, body) = api.post(&format!("{petition}/events"), event);
        assert!(status < 300, "{body}");
    }
    let windows = || {
        let (status, detail) = api.get(&petition);
        assert_eq!(status, 200, "{detail}");
        detail["view"]["deadlines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["kind"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let shown = windows();
    assert!(
        shown.iter().any(|k| k == "reexam_answer")
            && !shown.iter().any(|k| k == "recheck_request_window"),
        "{shown:?}"
    );

    let county_key = lab.dir.join("county/county.key");
    lab.ok(
        "village",
        &[
            "settings",
            "--county-key",
            guihe_tests::arg(&county_key),
            "--record-schema",
            "2",
        ],
    );
    let (_, page) = web.get("/new");
    assert!(
        page.contains("name=\"id_number0\"") && page.contains("name=\"source\""),
        "{page}"
    );
    // Now the 复核 window shows.
    assert!(
        windows().iter().any(|k| k == "recheck_request_window"),
        "{:?}",
        windows()
    );

    // A malformed ID number and a wrong age are refused by name, in Chinese.
    let today = day(0);
    let form = |id: &str, age: &str| {
        vec![
            ("kind", "case".to_string()),
            ("village", VILLAGE.to_string()),
            ("date", today.clone()),
            ("category", "neighbour".to_string()),
            ("risk", "general".to_string()),
            ("party0", "冉秀英".to_string()),
            ("age0", age.to_string()),
            ("id_number0", id.to_string()),
            ("summary", "借用农具未归还发生争执".to_string()),
        ]
    };
    let post = |fields: Vec<(&str, String)>| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        web.post("/new", &fields)
    };
    let (status, page, _) = post(form("5002401970", "40"));
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("身份证号码应为18位"), "{page}");
    assert!(page.contains("5002401970"), "what was typed stays: {page}");
    let (status, page, _) = post(form("", "四十"));
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("年龄请填整数"), "{page}");
    let (status, page, _) = post(form("", "200"));
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("年龄应在0到130之间"), "{page}");
    assert_eq!(
        api.count(),
        before + 1,
        "the petition above, and nothing refused"
    );

    // Allowed now: kept, masked wherever lists and pages show it, found by it.
    let (status, body) = api.post("/api/v1/cases", detailed());
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let (_, list) = api.get("/api/v1/records");
    let list = list.to_string();
    assert!(
        !list.contains(id_number) && list.contains("500***********0017"),
        "{list}"
    );
    let (_, page) = web.get(&format!("/records/{id}"));
    assert!(
        !page.contains(id_number)
            && page.contains("500***********0017")
            && page.contains("土家族")
            && page.contains("来源：网格员上报"),
        "{page}"
    );
    let (_, page) = web.get(&format!("/search?q={id_number}"));
    assert!(page.contains(&id[..13]), "found by the ID number: {page}");
    let (_, page) = web.get("/search?q=500240197003050025");
    assert!(!page.contains(&id[..13]), "another ID number: {page}");
    let (_, csv) = web.get("/export.csv");
    assert!(!csv.contains(id_number), "{csv}");

    // Accepted cases are numbered by the office, one after another.
    let (status, body) = api.post(
        &format!("/api/v1/records/{id}/events"),
        json!({"type": "accept"}),
    );
    assert!(status < 300, "{body}");
    let (status, second) = api.post("/api/v1/cases", intake());
    assert_eq!(status, 201, "{second}");
    let second = second["id"].as_str().unwrap().to_string();
    let (status, body) = api.post(
        &format!("/api/v1/records/{second}/events"),
        json!({"type": "accept"}),
    );
    assert!(status < 300, "{body}");
    let year = &today[..4];
    let (_, page) = web.get(&format!("/records/{id}"));
    assert!(page.contains(&format!("（{year}）调字第1号")), "{page}");
    let (_, page) = web.get(&format!("/records/{second}"));
    assert!(page.contains(&format!("（{year}）调字第2号")), "{page}");
    assert!(!page.contains("编号重复"), "{page}");
    // The agreement's paper names the party in full.
    let (_, paper) = web.get(&format!("/records/{id}/print/application"));
    assert!(
        paper.contains(id_number) && paper.contains("56岁"),
        "{paper}"
    );

    // The figures over a period, beside the same period a year earlier; a period that is
    // none is refused by name, in Chinese.
    let (status, stats) = api.get(&format!("/api/v1/stats?period={year}"));
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["total"]["records"], 3, "{stats}");
    assert_eq!(stats["petitions"], 1, "{stats}");
    assert_eq!(stats["counts"]["by_channel"]["visit"], 1, "{stats}");
    assert_eq!(stats["counts"]["amount_yuan"], 800, "{stats}");
    assert_eq!(stats["a_year_earlier"]["total"]["records"], 0, "{stats}");
    let (status, body) = api.get("/api/v1/stats?period=2026-13");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message_zh"]
            .as_str()
            .is_some_and(|m| m.contains("统计期间")),
        "{body}"
    );
}
