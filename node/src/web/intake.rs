//! Intake: the form for a new case or petition.

use super::*;

#[derive(Debug, Deserialize, Default)]
pub(super) struct NewQuery {
    #[serde(default)]
    pub(super) kind: String,
}

/// Party rows the form shows at first; 再加一位当事人 adds one.
const PARTY_ROWS: usize = 3;

/// How many party rows the form shows: as many as it was sent with (one more if the worker
/// asked for another), never fewer than [`PARTY_ROWS`] nor more than a record may hold.
fn party_rows(refill: Option<&HashMap<String, String>>) -> usize {
    let sent = refill
        .and_then(|f| f.get("rows"))
        .and_then(|r| r.parse::<usize>().ok())
        .unwrap_or(PARTY_ROWS);
    let more = refill.is_some_and(|f| f.contains_key("more"));
    (sent + usize::from(more)).clamp(PARTY_ROWS, guihe_protocol::model::limits::PARTIES_MAX)
}

/// The intake form; after a refusal, `refill` holds what the worker filled in, shown
/// again so that nothing typed is lost. `schema` is the record schema the county allows:
/// from 2, each party's particulars and the matter's source, place, amount and people.
pub(super) fn new_body(
    ctx: &Ctx,
    kind: Kind,
    error: Option<&str>,
    village: &str,
    refill: Option<&HashMap<String, String>>,
    schema: u64,
) -> Markup {
    use guihe_protocol::model::{PetitionType, Sex, Source};
    let rows = party_rows(refill);
    let particulars = schema >= 2;
    let t = |zh, en| ctx.lang.t(zh, en);
    let value = |name: &str| {
        refill
            .and_then(|f| f.get(name))
            .map(String::as_str)
            .unwrap_or("")
    };
    let checked = |name: &str| refill.is_some_and(|f| f.contains_key(name));
    let today = date(now_ms());
    let pick = |zh: &'static str, en: &'static str| -> &'static str { t(zh, en) };
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
            label { (t("收到日期", "Date received")) span.required { (t("（必填）", " (required)")) }
                input type="date" name="date" max=(today) required
                    value=(if value("date").is_empty() { today.as_str() } else { value("date") });
            }
            label { (t("类别", "Category"))
                select name="category" {
                    @for c in Category::ALL { option value=(c.code()) selected[value("category") == c.code()] { (pick(c.label_zh(), c.label_en())) } }
                }
            }
            label { (t("风险等级", "Risk"))
                select name="risk" {
                    @for r in Risk::ALL { option value=(r.code()) selected[value("risk") == r.code()] { (pick(r.label_zh(), r.label_en())) } }
                }
            }
            @if kind == Kind::Petition {
                label { (t("来源", "Channel"))
                    select name="channel" {
                        @for c in Channel::ALL { option value=(c.code()) selected[value("channel") == c.code()] { (pick(c.label_zh(), c.label_en())) } }
                    }
                }
            }
            @if particulars {
                fieldset.matter {
                    legend { (t("事项情况", "The matter")) }
                    label { (t("纠纷来源", "Source"))
                        select name="source" {
                            option value="" { (t("（未填）", "(not given)")) }
                            @for c in Source::ALL { option value=(c.code()) selected[value("source") == c.code()] { (pick(c.label_zh(), c.label_en())) } }
                        }
                    }
                    label { (t("发生地点", "Place")) input type="text" name="place" value=(value("place")); }
                    label { (t("涉及金额（元）", "Amount at stake (yuan)")) input type="number" name="amount" min="0" step="1" inputmode="numeric" value=(value("amount")); }
                    label { (t("涉及人数", "People involved")) input type="number" name="people" min="0" step="1" inputmode="numeric" value=(value("people")); }
                    @if kind == Kind::Petition {
                        label { (t("信访类型", "Petition type"))
                            select name="petition_type" {
                                option value="" { (t("（未填）", "(not given)")) }
                                @for c in PetitionType::ALL { option value=(c.code()) selected[value("petition_type") == c.code()] { (pick(c.label_zh(), c.label_en())) } }
                            }
                        }
                        label { input type="checkbox" name="collective" value="1" checked[checked("collective")]; (t(" 集体访（5人以上）", " Group visit (5 or more)")) }
                        label { input type="checkbox" name="skip_level" value="1" checked[checked("skip_level")]; (t(" 越级访", " Skipped a level")) }
                    }
                }
            }
            input type="hidden" name="rows" value=(rows);
            @for i in 0..rows {
                @let role = value(&format!("role{i}"));
                @let v = |name: &str| value(&format!("{name}{i}"));
                fieldset.party {
                    legend { (t("当事人", "Party")) " " (i + 1) }
                    label { (t("姓名", "Name"))
                        input type="text" name={ "party" (i) } style="width:12em" value=(v("party"));
                    }
                    label { (t("身份", "Role"))
                        select name={ "role" (i) } {
                            option value="" { (t("（默认）", "(default)")) }
                            @for r in guihe_protocol::model::PartyRole::ALL { option value=(r.code()) selected[role == r.code()] { (pick(r.label_zh(), r.label_en())) } }
                        }
                    }
                    label { (t("联系电话", "Phone")) input type="tel" name={ "contact" (i) } style="width:9em" value=(v("contact")); }
                    label { input type="checkbox" name={ "minor" (i) } value="1" checked[checked(&format!("minor{i}"))]; (t(" 未成年人", " minor")) }
                    @if particulars {
                        label { (t("性别", "Sex"))
                            select name={ "sex" (i) } {
                                option value="" { (t("（未填）", "(not given)")) }
                                @for x in Sex::ALL { option value=(x.code()) selected[v("sex") == x.code()] { (pick(x.label_zh(), x.label_en())) } }
                            }
                        }
                        label { (t("年龄", "Age")) input type="number" name={ "age" (i) } min="0" max="130" style="width:5em" inputmode="numeric" value=(v("age")); }
                        label { (t("民族", "Ethnicity")) input type="text" name={ "ethnicity" (i) } style="width:6em" value=(v("ethnicity")); }
                        label { (t("职业或工作单位", "Occupation or employer")) input type="text" name={ "occupation" (i) } value=(v("occupation")); }
                        label { (t("住所", "Address")) input type="text" name={ "address" (i) } style="width:20em" value=(v("address")); }
                        label { (t("身份证号码（可不填）", "ID number (optional)")) input type="text" name={ "id_number" (i) } maxlength="18" style="width:12em" autocomplete="off" value=(v("id_number")); }
                    }
                }
            }
            label { (t("摘要", "Summary")) span.required { (t("（必填）", " (required)")) } textarea name="summary" rows="4" { (value("summary")) } }
            label { input type="checkbox" name="restricted" value="1" checked[checked("restricted")]; (t(" 限制查看", " Restricted")) }
            // The save button first: pressing Enter in a field saves.
            button type="submit" id="save" { (t("登记", "Record")) }
            " " button type="submit" id="more" name="more" value="1" formnovalidate { (t("再加一位当事人", "Add another party")) }
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
    let report = status_report(&state).await;
    let schema = report.as_ref().map_or(1, |r| r.record_schema);
    let village = match report {
        Some(r) if r.division.len() == 12 && !r.division.ends_with("000") => r.division,
        _ => String::new(),
    };
    page(
        ctx.lang,
        Some(&ctx),
        ctx.lang.t("登记", "New record"),
        new_body(&ctx, kind, None, &village, None, schema),
    )
}

pub(super) async fn new_record(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let ctx = match signed_in_to_write(
        &state,
        &headers,
        &f,
        ("此角色不能登记。", "This role does not record."),
    ) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let field = |k: &str| f.get(k).cloned().unwrap_or_default();
    let kind = if field("kind") == "petition" {
        Kind::Petition
    } else {
        Kind::Case
    };
    let schema = status_report(&state).await.map_or(1, |r| r.record_schema);
    let refuse = |text: &str| {
        page_status(
            ctx.lang,
            Some(&ctx),
            StatusCode::UNPROCESSABLE_ENTITY,
            ctx.lang.t("登记", "New record"),
            new_body(&ctx, kind, Some(text), &field("village"), Some(&f), schema),
        )
    };
    if f.contains_key("more") {
        // Another party row: the form again, as filled in, one row longer.
        return page(
            ctx.lang,
            Some(&ctx),
            ctx.lang.t("登记", "New record"),
            new_body(&ctx, kind, None, &field("village"), Some(&f), schema),
        );
    }
    let given = |k: String| Some(field(&k).trim().to_string()).filter(|c| !c.is_empty());
    // A number field: empty is "not given"; anything else must be a whole number.
    let number = |k: String, zh: String, en: &str| -> Result<Option<u64>, String> {
        match given(k) {
            None => Ok(None),
            Some(n) => n
                .parse::<u64>()
                .map(Some)
                .map_err(|_| ctx.lang.t(&zh, en).to_string()),
        }
    };
    // A row with particulars but no name: say so, rather than drop what was typed.
    let particular = [
        "contact",
        "sex",
        "age",
        "ethnicity",
        "occupation",
        "address",
        "id_number",
    ];
    if let Some(i) = (0..party_rows(Some(&f))).find(|i| {
        given(format!("party{i}")).is_none()
            && particular
                .iter()
                .any(|k| given(format!("{k}{i}")).is_some())
    }) {
        let zh = format!("第{}位当事人填了详细信息，请填写姓名。", i + 1);
        return refuse(
            ctx.lang
                .t(&zh, "A party has particulars but no name: give the name."),
        );
    }
    let mut parties = Vec::new();
    for i in (0..party_rows(Some(&f))).filter(|i| given(format!("party{i}")).is_some()) {
        let age = match number(
            format!("age{i}"),
            format!("第{}位当事人的年龄请填整数。", i + 1),
            "A party's age must be a whole number.",
        ) {
            Ok(a) => a.map(|a| u32::try_from(a).unwrap_or(u32::MAX)),
            Err(text) => return refuse(&text),
        };
        parties.push(PartyForm {
            name: field(&format!("party{i}")),
            role: given(format!("role{i}")),
            minor: f.contains_key(&format!("minor{i}")),
            contact: given(format!("contact{i}")),
            sex: given(format!("sex{i}")),
            age,
            ethnicity: given(format!("ethnicity{i}")),
            occupation: given(format!("occupation{i}")),
            address: given(format!("address{i}")),
            id_number: given(format!("id_number{i}")),
        });
    }
    let amount = match number(
        "amount".into(),
        "涉及金额请填整数（元）。".into(),
        "The amount at stake must be whole yuan.",
    ) {
        Ok(a) => a,
        Err(text) => return refuse(&text),
    };
    let people = match number(
        "people".into(),
        "涉及人数请填整数。".into(),
        "The number of people must be a whole number.",
    ) {
        Ok(p) => p.map(|p| u32::try_from(p).unwrap_or(u32::MAX)),
        Err(text) => return refuse(&text),
    };
    let matter = MatterForm {
        source: given("source".into()),
        place: given("place".into()),
        amount_yuan: amount,
        people,
        petition_type: given("petition_type".into()),
        collective: f.contains_key("collective"),
        skip_level: f.contains_key("skip_level"),
    };
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
        matter: (matter != MatterForm::default()).then(|| Box::new(matter)),
    };
    // The date received: today means now, an earlier day that day; a later one is refused.
    let mut form = form;
    let refused_date = match form_day(&field("date")) {
        Ok(start) => {
            form.received_ms = start;
            None
        }
        Err(DayError::NotADate) => Some(ctx.lang.t(
            "收到日期格式不对，请按 年-月-日 填写。",
            "The date received must be year-month-day.",
        )),
        Err(DayError::Future) => Some(ctx.lang.t(
            "收到日期不能晚于今天。",
            "The date received cannot be after today.",
        )),
    };
    if let Some(text) = refused_date {
        return refuse(text);
    }
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
            let text = error_text(e, ctx.lang).await;
            page_status(
                ctx.lang,
                Some(&ctx),
                status,
                ctx.lang.t("登记", "New record"),
                new_body(&ctx, kind, Some(&text), &field("village"), Some(&f), schema),
            )
        }
    }
}
