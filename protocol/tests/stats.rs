//! Dashboard figures from real records: counts, the resolution rate, overdue petitions,
//! major risks, the monthly trend, drill-down units, and restricted records counted but
//! never named.

mod common;

use common::*;
use guihe_protocol::division::Division;
use guihe_protocol::event::{Acceptance, Body, Note, Refer, ReferLevel};
use guihe_protocol::model::{Party, PartyRole, Risk};
use guihe_protocol::stats::{Stats, compute};
use guihe_protocol::view::View;
use guihe_protocol::workflow::Status;

const V1: &str = "500240001201";
const V2: &str = "500240001202";
const W1: &str = "500240002201";

#[test]
fn a_dashboard_counts_what_its_division_holds() {
    let mut office = Office::new(1, "tan");
    let mut views: Vec<View> = Vec::new();
    let rules = office.rules.clone();

    // V1: a case resolved then closed.
    let mut resolved = office.create(new_case(&[V1]));
    office
        .record(&mut resolved, Body::Accept(Acceptance::default()))
        .unwrap();
    office
        .record(
            &mut resolved,
            Body::Resolve(Note {
                note: "和解".into(),
            }),
        )
        .unwrap();
    views.push(resolved.view(&rules).unwrap());
    // V1: a major-risk case never passed up, with a minor among the parties.
    let mut major = new_case(&[V1]);
    major.risk = Risk::Major;
    major.parties.push(Party {
        name: "小明".into(),
        role: PartyRole::Other,
        minor: true,
        contact: None,
        details: None,
    });
    views.push(office.create(major).view(&rules).unwrap());
    // V2: a failed case, referred to the township.
    let mut failed = office.create(new_case(&[V2]));
    office
        .record(&mut failed, Body::Accept(Acceptance::default()))
        .unwrap();
    office
        .record(
            &mut failed,
            Body::Refer(Refer {
                level: ReferLevel::Township,
                to: "镇综治中心".into(),
                reason: "涉及多户".into(),
            }),
        )
        .unwrap();
    views.push(failed.view(&rules).unwrap());
    // V2: a petition, received long ago and never accepted: overdue.
    views.push(office.create(new_petition(V2)).view(&rules).unwrap());
    // Another township's village.
    views.push(office.create(new_case(&[W1])).view(&rules).unwrap());

    let later = T0 + 40 * DAY_MS;
    let township: Division = "500240001000".parse().unwrap();
    let s = compute(&views, township, later);
    assert_eq!(s.total.records, 4);
    assert_eq!((s.cases, s.petitions), (3, 1));
    assert_eq!(s.by_status[&Status::Resolved], 1);
    assert_eq!(s.escalations, 1);
    // Referred up is concluded here, but no ended mediation: the rate is the one
    // settlement over the one mediation that ended.
    assert_eq!(s.total.concluded, 2);
    assert_eq!((s.total.resolved, s.total.mediated), (1, 1));
    assert_eq!(s.total.resolution_rate(), Some(1.0));
    assert_eq!(s.overdue_petitions, vec![views[3].id()]);
    assert_eq!(s.major_risk_open, vec![views[1].id()]);
    assert_eq!(s.major_risk_unreported, vec![views[1].id()]);
    // Drill-down: the township's two villages.
    let v1: u64 = 500240001201;
    let v2: u64 = 500240001202;
    assert_eq!(s.by_unit.keys().copied().collect::<Vec<_>>(), vec![v1, v2]);
    assert_eq!(s.by_unit[&v1].records, 2);
    assert_eq!(s.by_unit[&v2].overdue, 1);
    // The monthly trend: everything received in one month.
    assert_eq!(s.monthly.len(), 1);
    assert_eq!(s.monthly[0].received, 4);
    assert_eq!(s.monthly[0].resolved, 1);
    // The restricted record is counted, and named nowhere in the figures.
    assert!(views[1].common().restricted);
    let text = serde_json::to_string(&s).unwrap();
    assert!(!text.contains("小明") && !text.contains("谭德明"));

    // The county sees both townships as its units.
    let county: Division = "500240000000".parse().unwrap();
    let c = compute(&views, county, later);
    assert_eq!(c.total.records, 5);
    assert_eq!(c.by_unit.len(), 2);
    // A handler sees the restricted record; someone else does not, nor the same login
    // name at another office.
    let here = office.writer.author.node;
    let elsewhere = guihe_protocol::id::NodeId::from_bytes([99; 32]);
    let sees = |node: &guihe_protocol::id::NodeId, staff: &str| {
        views[1].common().visible_to(&guihe_protocol::view::Viewer {
            node,
            staff: &staff.parse().unwrap(),
            reviews_for: None,
        })
    };
    assert!(sees(&here, "tan"));
    assert!(!sees(&here, "ran"));
    assert!(!sees(&elsewhere, "tan"));
}

/// The figures of a township over `records`, at a moment after all of them.
fn figures(office: &Office, records: &[&guihe_protocol::record::Record]) -> Stats {
    let views: Vec<View> = records
        .iter()
        .map(|r| r.view(&office.rules).unwrap())
        .collect();
    compute(&views, "500240001000".parse().unwrap(), T0 + 400 * DAY_MS)
}

fn mediating(office: &mut Office) -> guihe_protocol::record::Record {
    let mut r = office.create(new_case(&[V1]));
    office
        .record(&mut r, Body::Accept(Acceptance::default()))
        .unwrap();
    office
        .record(
            &mut r,
            Body::Session(guihe_protocol::event::Session {
                place: String::new(),
                note: "双方陈述".into(),
            }),
        )
        .unwrap();
    r
}

fn note(text: &str) -> Note {
    Note { note: text.into() }
}

#[test]
fn a_failed_mediation_that_is_followed_up_and_closed_lowers_the_rate() {
    let mut office = Office::new(1, "tan");
    let mut ok = mediating(&mut office);
    office.record(&mut ok, Body::Resolve(note("和解"))).unwrap();
    let mut failed = mediating(&mut office);
    office
        .record(&mut failed, Body::Fail(note("分歧较大")))
        .unwrap();
    office
        .record(&mut failed, Body::FollowUp(note("回访")))
        .unwrap();
    office
        .record(&mut failed, Body::Close(note("结案")))
        .unwrap();
    let s = figures(&office, &[&ok, &failed]);
    assert_eq!((s.total.resolved, s.total.mediated), (1, 2));
    assert_eq!(s.total.resolution_rate(), Some(0.5));
    // Reopened and settled after all: a success.
    office
        .record(&mut failed, Body::Reopen(note("当事人要求再调")))
        .unwrap();
    assert_eq!(
        figures(&office, &[&ok, &failed]).total.mediated,
        1,
        "reopened: not ended"
    );
    office
        .record(
            &mut failed,
            Body::Session(guihe_protocol::event::Session {
                place: String::new(),
                note: "再次调解".into(),
            }),
        )
        .unwrap();
    office
        .record(&mut failed, Body::Resolve(note("和解")))
        .unwrap();
    assert_eq!(
        figures(&office, &[&ok, &failed]).total.resolution_rate(),
        Some(1.0)
    );
}

#[test]
fn a_referral_and_an_open_dispute_are_no_ended_mediation() {
    let mut office = Office::new(1, "tan");
    let mut ok = mediating(&mut office);
    office.record(&mut ok, Body::Resolve(note("和解"))).unwrap();
    let mut referred = mediating(&mut office);
    office
        .record(
            &mut referred,
            Body::Refer(Refer {
                level: ReferLevel::County,
                to: "县矛盾纠纷调处中心".into(),
                reason: "涉及山林确权".into(),
            }),
        )
        .unwrap();
    office
        .record(&mut referred, Body::FollowUp(note("回访")))
        .unwrap();
    let open = mediating(&mut office);
    let s = figures(&office, &[&ok, &referred, &open]);
    assert_eq!((s.total.resolved, s.total.mediated), (1, 1));
    assert_eq!(s.total.concluded, 2, "the referral is concluded here");
}

#[test]
fn a_petition_is_never_in_the_dispute_rate() {
    let mut office = Office::new(1, "tan");
    let mut failed = mediating(&mut office);
    office
        .record(&mut failed, Body::Fail(note("分歧较大")))
        .unwrap();
    let mut petition = office.create(new_petition(V1));
    office
        .record(&mut petition, Body::Accept(Acceptance::default()))
        .unwrap();
    office
        .record(&mut petition, Body::Reply(note("已书面答复")))
        .unwrap();
    office
        .record(&mut petition, Body::Close(note("结案")))
        .unwrap();
    let s = figures(&office, &[&failed, &petition]);
    assert_eq!((s.total.resolved, s.total.mediated), (0, 1));
    assert_eq!(s.total.resolution_rate(), Some(0.0));
    assert_eq!(s.total.concluded, 2);
}

/// 矛盾不上交: a dispute counts at the level that resolved it. A case the village referred
/// and the township took on (接收) and settled is the township's; one the village settled
/// is the village's; one referred to a court and never taken back is passed out; one
/// referred to the township and not yet taken on is counted nowhere yet.
#[test]
fn a_referral_is_counted_at_the_level_that_resolved_it() {
    use guihe_protocol::stats::ResolvedAt;
    let mut village = Office::new(1, "tan");
    village.writer.schema = 2;
    let mut township = Office::new(2, "liu");
    township.writer.schema = 2;
    let rules = village.rules.clone();
    let refer = |level, to: &str| {
        Body::Refer(Refer {
            level,
            to: to.into(),
            reason: "村级无法化解".into(),
        })
    };
    let settle = || {
        Body::Resolve(Note {
            note: "和解".into(),
        })
    };
    let mut views = Vec::new();
    // Settled at the village.
    let mut r = village.create(new_case(&[V1]));
    village
        .record(&mut r, Body::Accept(Acceptance::default()))
        .unwrap();
    village.record(&mut r, settle()).unwrap();
    views.push(r.view(&rules).unwrap());
    // Referred, taken on and settled at the township.
    let mut r = village.create(new_case(&[V1]));
    village
        .record(&mut r, Body::Accept(Acceptance::default()))
        .unwrap();
    village
        .record(&mut r, refer(ReferLevel::Township, "镇调委会"))
        .unwrap();
    township.now_ms = village.now_ms + DAY_MS;
    township
        .record(&mut r, Body::Receive(Acceptance::default()))
        .unwrap();
    township.record(&mut r, settle()).unwrap();
    views.push(r.view(&rules).unwrap());
    // Referred to the township, not yet taken on.
    let mut r = village.create(new_case(&[V1]));
    village
        .record(&mut r, refer(ReferLevel::Township, "镇调委会"))
        .unwrap();
    views.push(r.view(&rules).unwrap());
    // Passed to a court.
    let mut r = village.create(new_case(&[V2]));
    village
        .record(&mut r, refer(ReferLevel::Court, "石柱县人民法院"))
        .unwrap();
    views.push(r.view(&rules).unwrap());

    let s = compute(&views, "500240001000".parse().unwrap(), T0 + 10 * DAY_MS);
    assert_eq!(s.by_level.get(&ResolvedAt::Village), Some(&1));
    assert_eq!(s.by_level.get(&ResolvedAt::Township), Some(&1));
    assert_eq!(s.by_level.values().sum::<usize>(), 2);
    assert_eq!(s.passed_out, 1);
    // The rate counts the township's settlement as a success of the county's mediation.
    assert_eq!((s.total.resolved, s.total.mediated), (2, 2));
}

/// The figures over a period hold the records received in it, with the same period a year
/// earlier beside them.
#[test]
fn figures_over_a_period_sit_beside_the_same_period_a_year_earlier() {
    use guihe_protocol::stats::{Period, Row, compute_period};
    let mut office = Office::new(1, "tan");
    let rules = office.rules.clone();
    let day = |t: &str| guihe_protocol::stats::parse_date(t).unwrap();
    let mut views = Vec::new();
    for (received, resolve) in [
        ("2025-11-03", true),
        ("2025-11-20", false),
        ("2026-11-02", true),
        ("2026-11-15", true),
        ("2026-11-28", false),
        ("2026-10-31", true),
    ] {
        let mut new = new_case(&[V1]);
        new.received_ms = Some(day(received));
        office.now_ms = day("2026-11-30");
        let mut r = office.create(new);
        if resolve {
            office
                .at(&mut r, day(received), Body::Accept(Acceptance::default()))
                .unwrap();
            office
                .at(
                    &mut r,
                    day(received),
                    Body::Resolve(Note {
                        note: "和解".into(),
                    }),
                )
                .unwrap();
        }
        views.push(r.view(&rules).unwrap());
    }
    let rows: Vec<Row> = views.iter().map(Row::of).collect();
    let now = day("2026-12-01");
    let november = Period::parse("2026-11", now).unwrap();
    let s = compute_period(&rows, "500240001000".parse().unwrap(), november, now);
    assert_eq!(s.total.records, 3);
    assert_eq!(s.total.resolved, 2);
    assert_eq!(s.period, Some(november));
    let before = s.a_year_earlier.expect("the same month a year earlier");
    assert_eq!(before.total.records, 2);
    assert_eq!(before.total.resolved, 1);
    assert_eq!(before.period.map(|p| p.from_ms), Some(day("2025-11-01")));
}

/// The counts beside the rates, each as the county defines it (see `stats`): agreements
/// by form, judicial confirmations and protection orders applied for and granted, the
/// follow-up rate over disputes mediated with success, the mean of the latest ratings,
/// the amounts and people stated, and petitions by channel, type and the 三无 flags.
#[test]
fn the_counts_beside_the_rates_follow_their_definitions() {
    use guihe_protocol::event::{
        Agreement, AgreementForm, Court, Outcome, ProtectionRequest, Satisfaction,
    };
    use guihe_protocol::model::{Channel, Matter, PetitionType};
    let mut office = Office::new(1, "tan");
    office.writer.schema = 2;
    let agree = |form| {
        Body::Agreement(Agreement {
            form,
            terms: "以老界石为准".into(),
            seek_confirmation: form == AgreementForm::Written,
        })
    };
    let court = |granted| {
        Body::JudicialResult(Outcome {
            granted,
            note: String::new(),
        })
    };
    // A written agreement, confirmed by the court, followed up and rated 5.
    let mut written = mediating(&mut office);
    for body in [
        agree(AgreementForm::Written),
        Body::JudicialRequest(Court {
            court: "石柱县人民法院".into(),
            note: String::new(),
        }),
        court(true),
        Body::FollowUp(note("协议履行良好")),
        Body::Satisfaction(Satisfaction {
            rating: 5,
            note: String::new(),
        }),
    ] {
        office.record(&mut written, body).unwrap();
    }
    // An oral agreement, never followed up, rated 2; a protection order applied for and
    // refused.
    let mut oral = mediating(&mut office);
    for body in [
        Body::ProtectionRequest(ProtectionRequest {
            court: "石柱县人民法院".into(),
            urgent: true,
            note: String::new(),
        }),
        Body::ProtectionResult(Outcome {
            granted: false,
            note: String::new(),
        }),
        agree(AgreementForm::Oral),
        Body::Satisfaction(Satisfaction {
            rating: 2,
            note: String::new(),
        }),
    ] {
        office.record(&mut oral, body).unwrap();
    }
    // A failed mediation followed up: no agreement, and not in the follow-up rate.
    let mut failed = mediating(&mut office);
    office
        .record(&mut failed, Body::Fail(note("分歧较大")))
        .unwrap();
    office
        .record(&mut failed, Body::FollowUp(note("回访")))
        .unwrap();
    // A dispute stating what is at stake, and two petitions: one collective, one that
    // skipped a level, by letter and by visit.
    let mut stated = new_case(&[V1]);
    stated.matter = Some(Matter {
        amount_yuan: Some(12_000),
        people: Some(3),
        ..Matter::default()
    });
    let stated = office.create(stated);
    let mut collective = new_petition(V1);
    collective.matter = Some(Matter {
        people: Some(23),
        petition_type: Some(PetitionType::Appeal),
        collective: true,
        ..Matter::default()
    });
    let collective = office.create(collective);
    let mut skipped = new_petition(V1);
    skipped.channel = Some(Channel::Letter);
    skipped.matter = Some(Matter {
        petition_type: Some(PetitionType::Accusation),
        skip_level: true,
        ..Matter::default()
    });
    let skipped = office.create(skipped);

    let s = figures(
        &office,
        &[&written, &oral, &failed, &stated, &collective, &skipped],
    );
    let c = &s.counts;
    assert_eq!((c.agreements_written, c.agreements_oral), (1, 1));
    assert_eq!((c.judicial_requested, c.judicial_granted), (1, 1));
    assert_eq!((c.protection_requested, c.protection_granted), (1, 0));
    assert_eq!((c.amount_yuan, c.with_amount), (12_000, 1));
    assert_eq!((c.people, c.with_people), (26, 2));
    assert_eq!(c.by_channel[&Channel::Letter], 1);
    assert_eq!(c.by_channel[&Channel::Visit], 1);
    assert_eq!(c.by_channel.values().sum::<usize>(), s.petitions);
    assert_eq!(c.by_petition_type[&PetitionType::Appeal], 1);
    assert_eq!(c.by_petition_type[&PetitionType::Accusation], 1);
    assert_eq!((c.collective, c.skip_level), (1, 1));
    // Follow-up rate: one of the two successes was followed up; the failed mediation's
    // follow-up is not in it.
    assert_eq!((s.total.followed_up, s.total.resolved), (1, 2));
    assert_eq!(s.total.follow_up_rate(), Some(0.5));
    assert_eq!(s.total.satisfaction(), Some(3.5));
    let v1: u64 = 500240001201;
    assert_eq!(s.by_unit[&v1].follow_up_rate(), Some(0.5));
    assert_eq!(s.by_unit[&v1].satisfaction(), Some(3.5));
    // Nothing to divide by: no figure rather than zero.
    let none = figures(&office, &[&stated]);
    assert_eq!(none.total.follow_up_rate(), None);
    assert_eq!(none.total.satisfaction(), None);
}
