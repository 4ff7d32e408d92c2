//! 我的待办: what is due from a person at an office, most urgent first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use guihe_protocol::deadline::{DeadlineKind, DeadlineState};
use guihe_protocol::division::Division;
use guihe_protocol::event::{
    Acceptance, Agreement, AgreementForm, Assign, Body, Note, Refer, ReferLevel,
};
use guihe_protocol::id::NodeId;
use guihe_protocol::record::Record;
use guihe_protocol::todo::{Desk, Item, Why, todo};
use guihe_protocol::view::View;

const VILLAGE: &str = "500240101201";

fn views(o: &Office, records: &[&Record]) -> Vec<View> {
    records.iter().map(|r| r.view(&o.rules).unwrap()).collect()
}

fn list(o: &Office, records: &[&Record], staff: &str) -> Vec<Item> {
    let node = o.writer.author.node;
    let staff = staff.parse().unwrap();
    let desk = Desk {
        node: &node,
        division: VILLAGE.parse().unwrap(),
        staff: &staff,
        reviews_for: None,
    };
    todo(&views(o, records), &desk, &o.rules, o.now_ms)
}

fn note(text: &str) -> Note {
    Note { note: text.into() }
}

#[test]
fn a_petition_received_13_days_ago_tops_the_list_with_two_days_left() {
    let mut o = Office::new(1, "tan.dm");
    let mut case = o.create(new_case(&[VILLAGE]));
    o.record(&mut case, Body::Accept(Acceptance::default()))
        .unwrap();
    let mut new = new_petition(VILLAGE);
    new.received_ms = Some(o.now_ms - 13 * DAY_MS);
    let petition = o.create(new);
    let items = list(&o, &[&case, &petition], "tan.dm");
    let first = items.first().expect("an empty list");
    assert_eq!(first.record, petition.id());
    assert_eq!(
        first.why,
        Why::Deadline {
            kind: DeadlineKind::PetitionAccept,
            state: DeadlineState::Open {
                left_ms: 2 * DAY_MS
            }
        }
    );
    // Accepted: the acceptance deadline is met, the handling deadline (60 days) is next.
    let mut petition = petition;
    o.record(&mut petition, Body::Accept(Acceptance::default()))
        .unwrap();
    let items = list(&o, &[&case, &petition], "tan.dm");
    assert!(matches!(
        items.first().map(|i| i.why),
        Some(Why::Deadline {
            kind: DeadlineKind::PetitionHandle,
            ..
        })
    ));
}

#[test]
fn a_resolved_case_shows_its_follow_up_on_the_day_set_and_leaves_once_visited() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    o.record(&mut r, Body::Accept(Acceptance::default()))
        .unwrap();
    o.record(
        &mut r,
        Body::Session(guihe_protocol::event::Session {
            place: String::new(),
            note: "双方陈述".into(),
        }),
    )
    .unwrap();
    o.record(
        &mut r,
        Body::Agreement(Agreement {
            form: AgreementForm::Written,
            terms: "两户共同清理水沟".into(),
            seek_confirmation: false,
        }),
    )
    .unwrap();
    let agreed = o.now_ms;
    assert!(list(&o, &[&r], "tan.dm").is_empty(), "nothing due yet");
    o.now_ms = agreed + 15 * DAY_MS - 1;
    assert!(list(&o, &[&r], "tan.dm").is_empty(), "the day before");
    o.now_ms = agreed + 15 * DAY_MS;
    let items = list(&o, &[&r], "tan.dm");
    assert_eq!(
        items.iter().map(|i| i.why).collect::<Vec<_>>(),
        [Why::FollowUp {
            due_ms: agreed + 15 * DAY_MS
        }]
    );
    o.record(&mut r, Body::FollowUp(note("回访，协议已履行")))
        .unwrap();
    assert!(list(&o, &[&r], "tan.dm").is_empty(), "visited");
}

#[test]
fn a_ledger_copied_in_afterwards_is_history_not_work_due_today() {
    let mut o = Office::new(1, "tan.dm");
    let mut new = new_petition(VILLAGE);
    new.received_ms = Some(o.now_ms - 100 * DAY_MS);
    let old = o.create(new);
    assert!(list(&o, &[&old], "tan.dm").is_empty());
}

#[test]
fn assignments_referrals_and_reviews_reach_the_right_desk() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    o.record(
        &mut r,
        Body::Assign(Assign {
            to: "ran.xh".parse().unwrap(),
            note: String::new(),
        }),
    )
    .unwrap();
    assert!(
        list(&o, &[&r], "ran.xh")
            .iter()
            .any(|i| i.why == Why::Assigned),
        "assigned to ran"
    );
    assert!(
        list(&o, &[&r], "tan.dm")
            .iter()
            .all(|i| i.why != Why::Assigned)
    );
    // Another office's login ran is another person.
    let elsewhere = NodeId::from_bytes([9; 32]);
    let staff = "ran.xh".parse().unwrap();
    let township: Division = "500240101000".parse().unwrap();
    let desk = |reviewer: bool| Desk {
        node: &elsewhere,
        division: township,
        staff: &staff,
        reviews_for: reviewer.then_some(township),
    };
    let seen = views(&o, &[&r]);
    assert!(todo(&seen, &desk(false), &o.rules, o.now_ms).is_empty());
    // Referred to the township: waiting there until the township takes it up.
    o.record(
        &mut r,
        Body::Refer(Refer {
            level: ReferLevel::Township,
            to: "乡镇调解委员会".into(),
            reason: "村级调解未果".into(),
        }),
    )
    .unwrap();
    let seen = views(&o, &[&r]);
    let items = todo(&seen, &desk(false), &o.rules, o.now_ms);
    assert_eq!(
        items.iter().map(|i| i.why).collect::<Vec<_>>(),
        [Why::Referred]
    );
    assert!(
        list(&o, &[&r], "tan.dm").is_empty(),
        "the village waits for its follow-up day"
    );
}

#[test]
fn a_referral_assigned_at_the_township_is_the_assignees_work_and_a_closed_record_owes_nothing() {
    let mut village = Office::new(1, "tan.dm");
    let mut r = village.create(new_case(&[VILLAGE]));
    village
        .record(
            &mut r,
            Body::Refer(Refer {
                level: ReferLevel::Township,
                to: "乡镇调解委员会".into(),
                reason: "村级调解未果".into(),
            }),
        )
        .unwrap();
    let mut township = Office::new(2, "zhou");
    let mut t = township.replica(&r);
    township
        .record(
            &mut t,
            Body::Assign(Assign {
                to: "liu".parse().unwrap(),
                note: String::new(),
            }),
        )
        .unwrap();
    let node = township.writer.author.node;
    let liu = "liu".parse().unwrap();
    let desk = Desk {
        node: &node,
        division: "500240101000".parse().unwrap(),
        staff: &liu,
        reviews_for: None,
    };
    let items = todo(
        &views(&township, &[&t]),
        &desk,
        &township.rules,
        township.now_ms,
    );
    assert_eq!(
        items.iter().map(|i| i.why).collect::<Vec<_>>(),
        [Why::Assigned],
        "assigned at the township: the assignee's work, no longer waiting"
    );

    // A protection order requested, then the case closed: its decision can no longer be
    // recorded, so it is no work due.
    let mut o = Office::new(3, "tan.dm");
    let mut c = o.create(new_case(&[VILLAGE]));
    o.record(
        &mut c,
        Body::ProtectionRequest(guihe_protocol::event::ProtectionRequest {
            court: "石柱土家族自治县人民法院".into(),
            urgent: true,
            note: String::new(),
        }),
    )
    .unwrap();
    o.now_ms += 3 * DAY_MS;
    assert!(matches!(
        list(&o, &[&c], "tan.dm").first().map(|i| i.why),
        Some(Why::Deadline {
            kind: DeadlineKind::ProtectionOrder,
            state: DeadlineState::Overdue { .. }
        })
    ));
    o.record(
        &mut c,
        Body::Refer(Refer {
            level: ReferLevel::Court,
            to: "人民法院".into(),
            reason: "起诉".into(),
        }),
    )
    .unwrap();
    o.record(&mut c, Body::Close(note("已移交法院"))).unwrap();
    assert!(list(&o, &[&c], "tan.dm").is_empty());
}
