//! The case and petition workflow, the statutory deadlines, concurrent contradictions,
//! restriction of records with minors and typed refusals of bad input.
//!
//! Every refused command is checked to have written nothing: the document heads and its
//! saved bytes are the same before and after.

// Helpers outside `#[test]` functions are test code too (see clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use guihe_protocol::deadline::{Deadline, DeadlineKind, DeadlineState};
use guihe_protocol::event::EventType;
use guihe_protocol::event::{
    Acceptance, Agreement, AgreementForm, Amend, Assign, Body, Change, Court, Extend, Note,
    Outcome, ProtectionRequest, Refer, ReferLevel, Review, Satisfaction, Session,
};
use guihe_protocol::fold::{ConflictAbout, Refusal};
use guihe_protocol::id::EventId;
use guihe_protocol::model::{Category, FieldError, Kind, Party, PartyRole};
use guihe_protocol::record::{Command, CommandError, FUTURE_TOLERANCE_MS, NewRecord, Record};
use guihe_protocol::view::View;
use guihe_protocol::workflow::Status;

const VILLAGE: &str = "500240101201";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn note(text: &str) -> Note {
    Note { note: text.into() }
}

fn accept() -> Body {
    Body::Accept(Acceptance::default())
}

fn session() -> Body {
    Body::Session(Session {
        place: "贵和工作室".into(),
        note: "双方陈述了各自意见，约定下周现场踏勘。".into(),
    })
}

fn agreement(seek_confirmation: bool) -> Body {
    Body::Agreement(Agreement {
        form: AgreementForm::Written,
        terms: "以老界石为准，东移半米砌墙。".into(),
        seek_confirmation,
    })
}

fn resolve() -> Body {
    Body::Resolve(note("申请人和解后撤回。"))
}

fn fail() -> Body {
    Body::Fail(note("双方分歧过大。"))
}

fn refer() -> Body {
    Body::Refer(Refer {
        level: ReferLevel::Township,
        to: "南宾街道政法委员".into(),
        reason: "涉及宅基地确权，村级无权处理。".into(),
    })
}

fn follow_up() -> Body {
    Body::FollowUp(note("电话回访，双方已按协议履行。"))
}

fn close() -> Body {
    Body::Close(Note::default())
}

fn reopen() -> Body {
    Body::Reopen(note("一方反悔，重新调解。"))
}

fn reply() -> Body {
    Body::Reply(note("已协调镇政府补足补偿款。"))
}

fn reexam_request() -> Body {
    Body::ReexamRequest(note("对答复不服。"))
}

fn reexam_answer() -> Body {
    Body::ReexamAnswer(note("维持原答复意见。"))
}

fn extend(days: u32) -> Body {
    Body::Extend(Extend {
        days,
        reason: "需会同自然资源部门核实。".into(),
    })
}

fn judicial_request() -> Body {
    Body::JudicialRequest(Court {
        court: "石柱县人民法院".into(),
        note: String::new(),
    })
}

fn protection_request(urgent: bool) -> Body {
    Body::ProtectionRequest(ProtectionRequest {
        court: "石柱县人民法院".into(),
        urgent,
        note: String::new(),
    })
}

fn satisfaction(rating: u8) -> Body {
    Body::Satisfaction(Satisfaction {
        rating,
        note: String::new(),
    })
}

fn amend_category(category: Category) -> Body {
    Body::Amend(Amend {
        target: None,
        change: Change::Category(category),
        reason: "登记时类别选错。".into(),
    })
}

fn minor(name: &str) -> Party {
    Party {
        name: name.into(),
        role: PartyRole::Other,
        minor: true,
        contact: None,
        details: None,
    }
}

fn view(o: &Office, r: &Record) -> View {
    r.view(&o.rules).unwrap()
}

fn status(o: &Office, r: &Record) -> Status {
    view(o, r).common().status
}

fn deadline(v: &View, kind: DeadlineKind) -> Deadline {
    v.common()
        .deadlines
        .iter()
        .find(|d| d.kind == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind:?} deadline in {:?}", v.common().deadlines))
}

fn has_deadline(v: &View, kind: DeadlineKind) -> bool {
    v.common().deadlines.iter().any(|d| d.kind == kind)
}

fn event_count(r: &Record) -> usize {
    r.events().unwrap().events.len()
}

/// Runs a command that must fail and checks that it wrote nothing.
fn assert_writes_nothing(
    r: &mut Record,
    run: impl FnOnce(&mut Record) -> Result<EventId, CommandError>,
) -> CommandError {
    let heads = r.heads();
    let saved = r.save();
    let events = event_count(r);
    let err = run(r).expect_err("the command should have been refused");
    assert_eq!(r.heads(), heads, "a refused command changed the heads");
    assert_eq!(r.save(), saved, "a refused command changed the document");
    assert_eq!(event_count(r), events, "a refused command added an event");
    err
}

/// Records `body` now, expecting exactly `refusal`, and checks nothing was written.
fn assert_refused(o: &mut Office, r: &mut Record, body: Body, refusal: Refusal) {
    let err = assert_writes_nothing(r, |r| o.record(r, body));
    assert_eq!(err, CommandError::Refused(refusal));
}

/// Records `body` now, expecting `NotAllowed` for `event` in `status`.
fn assert_not_allowed(o: &mut Office, r: &mut Record, body: Body, kind: Kind, status: Status) {
    let event = body.event_type();
    assert_refused(
        o,
        r,
        body,
        Refusal::NotAllowed {
            kind,
            status,
            event,
        },
    );
}

/// A case brought to mediating: accepted and one session held.
fn mediating_case(o: &mut Office) -> Record {
    let mut r = o.create(new_case(&[VILLAGE]));
    o.record(&mut r, accept()).unwrap();
    o.record(&mut r, session()).unwrap();
    assert_eq!(status(o, &r), Status::Mediating);
    r
}

/// Moves the office's clock on and returns the new now.
fn advance(o: &mut Office, ms: u64) -> u64 {
    o.now_ms += ms;
    o.now_ms
}

// ---------------------------------------------------------------------------------------
// 1. Workflow rules of the status table
// ---------------------------------------------------------------------------------------

#[test]
fn case_goes_registered_accepted_mediating_resolved_followed_up_closed_and_reopens() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    assert_eq!(status(&o, &r), Status::Registered);

    let steps = [
        (accept(), Status::Accepted),
        (session(), Status::Mediating),
        (session(), Status::Mediating),
        (agreement(false), Status::Resolved),
        (follow_up(), Status::FollowedUp),
        (satisfaction(5), Status::FollowedUp),
        (close(), Status::Closed),
        (reopen(), Status::Reopened),
        (session(), Status::Mediating),
        (resolve(), Status::Resolved),
        (close(), Status::Closed),
    ];
    for (body, expected) in steps {
        let ty = body.event_type();
        advance(&mut o, HOUR_MS);
        o.record(&mut r, body)
            .unwrap_or_else(|e| panic!("{ty:?} refused: {e}"));
        assert_eq!(status(&o, &r), expected, "after {ty:?}");
    }
    let v = view(&o, &r);
    assert!(!v.common().needs_review);
    assert_eq!(v.common().follow_ups, 1);
    assert_eq!(v.common().satisfaction, Some(5));
    assert!(v.common().closed_ms.is_some());
    match v {
        View::Case(c) => assert_eq!(c.sessions, 3),
        View::Petition(_) => panic!("a case folded as a petition"),
    }
}

#[test]
fn failed_mediation_can_be_referred_followed_up_and_closed() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = mediating_case(&mut o);
    o.record(&mut r, fail()).unwrap();
    assert_eq!(status(&o, &r), Status::Failed);
    o.record(&mut r, refer()).unwrap();
    assert_eq!(status(&o, &r), Status::Referred);
    let v = view(&o, &r);
    assert_eq!(
        v.common().referral.as_ref().map(|x| x.level),
        Some(ReferLevel::Township)
    );
    o.record(&mut r, follow_up()).unwrap();
    assert_eq!(status(&o, &r), Status::FollowedUp);
    o.record(&mut r, close()).unwrap();
    assert_eq!(status(&o, &r), Status::Closed);
}

#[test]
fn registered_case_can_be_referred_at_once_and_closed() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    o.record(&mut r, refer()).unwrap();
    assert_eq!(status(&o, &r), Status::Referred);
    o.record(&mut r, close()).unwrap();
    assert_eq!(status(&o, &r), Status::Closed);
}

#[test]
fn accepted_case_can_be_resolved_without_a_session() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    o.record(&mut r, accept()).unwrap();
    o.record(&mut r, resolve()).unwrap();
    assert_eq!(status(&o, &r), Status::Resolved);
}

#[test]
fn assigning_a_handler_keeps_the_status_and_sets_the_handler() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    o.record(
        &mut r,
        Body::Assign(Assign {
            to: "ran.gr".parse().unwrap(),
            note: String::new(),
        }),
    )
    .unwrap();
    let v = view(&o, &r);
    assert_eq!(v.common().status, Status::Registered);
    assert_eq!(v.common().handler, Some("ran.gr".parse().unwrap()));
}

#[test]
fn session_on_a_registered_case_is_refused_until_it_is_accepted() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    assert_not_allowed(&mut o, &mut r, session(), Kind::Case, Status::Registered);
    assert_not_allowed(&mut o, &mut r, fail(), Kind::Case, Status::Registered);
    assert_not_allowed(&mut o, &mut r, close(), Kind::Case, Status::Registered);
    assert_not_allowed(&mut o, &mut r, follow_up(), Kind::Case, Status::Registered);
    assert_not_allowed(&mut o, &mut r, reopen(), Kind::Case, Status::Registered);
}

#[test]
fn accepting_a_case_twice_is_refused() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    o.record(&mut r, accept()).unwrap();
    assert_not_allowed(&mut o, &mut r, accept(), Kind::Case, Status::Accepted);
}

#[test]
fn agreement_and_failure_need_a_mediation_session_first() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    o.record(&mut r, accept()).unwrap();
    assert_not_allowed(
        &mut o,
        &mut r,
        agreement(false),
        Kind::Case,
        Status::Accepted,
    );
    assert_not_allowed(&mut o, &mut r, fail(), Kind::Case, Status::Accepted);
}

#[test]
fn an_open_case_cannot_be_followed_up_closed_or_reopened() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = mediating_case(&mut o);
    assert_not_allowed(&mut o, &mut r, follow_up(), Kind::Case, Status::Mediating);
    assert_not_allowed(&mut o, &mut r, close(), Kind::Case, Status::Mediating);
    assert_not_allowed(&mut o, &mut r, reopen(), Kind::Case, Status::Mediating);
    assert_not_allowed(
        &mut o,
        &mut r,
        satisfaction(4),
        Kind::Case,
        Status::Mediating,
    );
}

#[test]
fn a_resolved_case_cannot_be_mediated_failed_or_referred_without_reopening() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = mediating_case(&mut o);
    o.record(&mut r, agreement(false)).unwrap();
    assert_not_allowed(&mut o, &mut r, session(), Kind::Case, Status::Resolved);
    assert_not_allowed(&mut o, &mut r, fail(), Kind::Case, Status::Resolved);
    assert_not_allowed(&mut o, &mut r, refer(), Kind::Case, Status::Resolved);
    assert_not_allowed(&mut o, &mut r, resolve(), Kind::Case, Status::Resolved);
}

#[test]
fn a_closed_case_takes_no_work_until_it_is_reopened() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = mediating_case(&mut o);
    o.record(&mut r, resolve()).unwrap();
    o.record(&mut r, close()).unwrap();
    assert_not_allowed(&mut o, &mut r, session(), Kind::Case, Status::Closed);
    assert_not_allowed(&mut o, &mut r, close(), Kind::Case, Status::Closed);
    assert_not_allowed(&mut o, &mut r, follow_up(), Kind::Case, Status::Closed);
    assert_not_allowed(
        &mut o,
        &mut r,
        protection_request(true),
        Kind::Case,
        Status::Closed,
    );
    o.record(&mut r, reopen()).unwrap();
    o.record(&mut r, session()).unwrap();
    assert_eq!(status(&o, &r), Status::Mediating);
}

#[test]
fn petition_events_are_refused_on_a_case_and_case_events_on_a_petition() {
    let mut o = Office::new(1, "tan.dm");
    let mut case = o.create(new_case(&[VILLAGE]));
    o.record(&mut case, accept()).unwrap();
    assert_not_allowed(&mut o, &mut case, reply(), Kind::Case, Status::Accepted);
    assert_not_allowed(&mut o, &mut case, extend(10), Kind::Case, Status::Accepted);
    assert_not_allowed(
        &mut o,
        &mut case,
        Body::NotAccept(note("不属于受理范围。")),
        Kind::Case,
        Status::Accepted,
    );

    let mut petition = o.create(new_petition(VILLAGE));
    o.record(&mut petition, accept()).unwrap();
    assert_not_allowed(
        &mut o,
        &mut petition,
        session(),
        Kind::Petition,
        Status::Accepted,
    );
    assert_not_allowed(
        &mut o,
        &mut petition,
        resolve(),
        Kind::Petition,
        Status::Accepted,
    );
}

#[test]
fn a_second_intake_is_refused() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    assert_refused(
        &mut o,
        &mut r,
        Body::Intake(Default::default()),
        Refusal::SecondIntake,
    );
}

#[test]
fn a_review_outcome_must_be_a_status_of_the_record_kind() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_petition(VILLAGE));
    assert_refused(
        &mut o,
        &mut r,
        Body::Review(Review {
            outcome: Some(Status::Mediating),
            note: "核查。".into(),
        }),
        Refusal::OutcomeNotForKind {
            kind: Kind::Petition,
            status: Status::Mediating,
        },
    );
}

#[test]
fn petition_goes_accepted_handling_replied_reexamined_followed_up_closed() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_petition(VILLAGE));
    let steps = [
        (accept(), Status::Accepted),
        (
            Body::Assign(Assign {
                to: "ma.cm".parse().unwrap(),
                note: String::new(),
            }),
            Status::Handling,
        ),
        (extend(20), Status::Handling),
        (reply(), Status::Replied),
        (reexam_request(), Status::Reexamining),
        (reexam_answer(), Status::Reexamined),
        (follow_up(), Status::FollowedUp),
        (close(), Status::Closed),
        (reopen(), Status::Reopened),
        (reply(), Status::Replied),
    ];
    for (body, expected) in steps {
        let ty = body.event_type();
        advance(&mut o, DAY_MS);
        o.record(&mut r, body)
            .unwrap_or_else(|e| panic!("{ty:?} refused: {e}"));
        assert_eq!(status(&o, &r), expected, "after {ty:?}");
    }
    assert!(!view(&o, &r).common().needs_review);
}

#[test]
fn a_petition_not_accepted_can_be_followed_up_and_closed_but_not_replied() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_petition(VILLAGE));
    o.record(&mut r, Body::NotAccept(note("已进入诉讼程序。")))
        .unwrap();
    assert_eq!(status(&o, &r), Status::NotAccepted);
    assert_not_allowed(&mut o, &mut r, reply(), Kind::Petition, Status::NotAccepted);
    assert_not_allowed(
        &mut o,
        &mut r,
        accept(),
        Kind::Petition,
        Status::NotAccepted,
    );
    o.record(&mut r, follow_up()).unwrap();
    o.record(&mut r, close()).unwrap();
    assert_eq!(status(&o, &r), Status::Closed);
}

#[test]
fn a_petition_reply_needs_acceptance_and_reexamination_needs_a_reply() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_petition(VILLAGE));
    assert_not_allowed(&mut o, &mut r, reply(), Kind::Petition, Status::Registered);
    o.record(&mut r, accept()).unwrap();
    assert_not_allowed(
        &mut o,
        &mut r,
        reexam_request(),
        Kind::Petition,
        Status::Accepted,
    );
    assert_not_allowed(
        &mut o,
        &mut r,
        reexam_answer(),
        Kind::Petition,
        Status::Accepted,
    );
}

#[test]
fn reexamination_can_be_requested_only_once() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_petition(VILLAGE));
    o.record(&mut r, accept()).unwrap();
    o.record(&mut r, reply()).unwrap();
    o.record(&mut r, reexam_request()).unwrap();
    o.record(&mut r, reexam_answer()).unwrap();
    o.record(&mut r, follow_up()).unwrap();
    assert_eq!(status(&o, &r), Status::FollowedUp);
    assert_refused(
        &mut o,
        &mut r,
        reexam_request(),
        Refusal::ReexamAlreadyRequested,
    );
}

#[test]
fn a_judicial_result_needs_a_request_and_a_request_waits_for_its_result() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = mediating_case(&mut o);
    o.record(&mut r, agreement(true)).unwrap();
    let result = Body::JudicialResult(Outcome {
        granted: true,
        note: "(2026)渝0240民特1号".into(),
    });
    assert_refused(&mut o, &mut r, result.clone(), Refusal::NoJudicialRequest);
    o.record(&mut r, judicial_request()).unwrap();
    assert_refused(&mut o, &mut r, judicial_request(), Refusal::JudicialPending);
    o.record(&mut r, result).unwrap();
    match view(&o, &r) {
        View::Case(c) => {
            let j = c.judicial.expect("judicial state");
            assert_eq!(j.decided.map(|(_, granted)| granted), Some(true));
        }
        View::Petition(_) => panic!("a case folded as a petition"),
    }
}

#[test]
fn a_protection_result_needs_a_request_and_a_request_waits_for_its_result() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    let result = Body::ProtectionResult(Outcome {
        granted: true,
        note: String::new(),
    });
    assert_refused(&mut o, &mut r, result.clone(), Refusal::NoProtectionRequest);
    o.record(&mut r, protection_request(false)).unwrap();
    assert_refused(
        &mut o,
        &mut r,
        protection_request(true),
        Refusal::ProtectionPending,
    );
    o.record(&mut r, result).unwrap();
    let p = view(&o, &r).common().protection.clone().unwrap();
    assert_eq!(p.decided.map(|(_, granted)| granted), Some(true));
}

// ---------------------------------------------------------------------------------------
// 2. Deadlines
// ---------------------------------------------------------------------------------------

#[test]
fn petition_acceptance_is_due_15_days_after_receipt() {
    let mut o = Office::new(1, "tan.dm");
    let r = o.create(new_petition(VILLAGE));
    let d = deadline(&view(&o, &r), DeadlineKind::PetitionAccept);
    assert_eq!(d.due_ms, T0 + 15 * DAY_MS);
    assert_eq!(d.met_ms, None);
    assert!(!d.is_overdue(T0 + 15 * DAY_MS));
    assert!(d.is_overdue(T0 + 15 * DAY_MS + 1));
    assert!(view(&o, &r).common().is_overdue(T0 + 16 * DAY_MS));
}

#[test]
fn petition_acceptance_counts_from_a_receipt_date_in_the_past() {
    let mut o = Office::new(1, "tan.dm");
    let received = T0 - 20 * DAY_MS;
    let r = o.create(NewRecord {
        received_ms: Some(received),
        ..new_petition(VILLAGE)
    });
    let d = deadline(&view(&o, &r), DeadlineKind::PetitionAccept);
    assert_eq!(d.due_ms, received + 15 * DAY_MS);
    assert!(d.is_overdue(o.now_ms));
}

#[test]
fn petition_acceptance_deadline_is_met_by_the_acceptance_decision() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_petition(VILLAGE));
    let accepted = advance(&mut o, 3 * DAY_MS);
    o.record(&mut r, accept()).unwrap();
    let d = deadline(&view(&o, &r), DeadlineKind::PetitionAccept);
    assert_eq!(d.met_ms, Some(accepted));
    assert!(!d.is_overdue(T0 + 100 * DAY_MS));
    assert!(!d.was_late());
}

#[test]
fn petition_accepted_late_is_marked_late() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_petition(VILLAGE));
    advance(&mut o, 20 * DAY_MS);
    o.at(&mut r, T0 + 16 * DAY_MS, accept()).unwrap();
    let d = deadline(&view(&o, &r), DeadlineKind::PetitionAccept);
    assert_eq!(d.met_ms, Some(T0 + 16 * DAY_MS));
    assert!(d.was_late());
    assert!(!d.is_overdue(o.now_ms));
}

#[test]
fn petition_handling_is_due_60_days_after_acceptance() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_petition(VILLAGE));
    assert!(!has_deadline(&view(&o, &r), DeadlineKind::PetitionHandle));
    advance(&mut o, 10 * DAY_MS);
    let accepted = T0 + 5 * DAY_MS;
    o.at(&mut r, accepted, accept()).unwrap();
    let d = deadline(&view(&o, &r), DeadlineKind::PetitionHandle);
    assert_eq!(d.due_ms, accepted + 60 * DAY_MS);
    assert!(!d.is_overdue(accepted + 60 * DAY_MS));
    assert!(d.is_overdue(accepted + 60 * DAY_MS + 1));

    let replied = advance(&mut o, 20 * DAY_MS);
    o.record(&mut r, reply()).unwrap();
    let d = deadline(&view(&o, &r), DeadlineKind::PetitionHandle);
    assert_eq!(d.met_ms, Some(replied));
    assert!(!d.is_overdue(accepted + 100 * DAY_MS));
}

#[test]
fn petition_handling_can_be_extended_once_by_up_to_30_days() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_petition(VILLAGE));
    o.record(&mut r, accept()).unwrap();
    advance(&mut o, 50 * DAY_MS);
    o.record(&mut r, extend(30)).unwrap();
    let v = view(&o, &r);
    let d = deadline(&v, DeadlineKind::PetitionHandle);
    assert_eq!(d.due_ms, T0 + 90 * DAY_MS);
    assert!(!d.is_overdue(T0 + 61 * DAY_MS));
    assert!(d.is_overdue(T0 + 90 * DAY_MS + 1));
    match v {
        View::Petition(p) => assert_eq!(p.extension_days, Some(30)),
        View::Case(_) => panic!("a petition folded as a case"),
    }
    assert_refused(&mut o, &mut r, extend(5), Refusal::AlreadyExtended);
}

#[test]
fn a_petition_extension_longer_than_30_days_or_of_no_days_is_refused() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_petition(VILLAGE));
    o.record(&mut r, accept()).unwrap();
    assert_refused(
        &mut o,
        &mut r,
        extend(31),
        Refusal::ExtensionLength { days: 31, max: 30 },
    );
    assert_refused(
        &mut o,
        &mut r,
        extend(0),
        Refusal::ExtensionLength { days: 0, max: 30 },
    );
    // The refusals did not use up the one extension.
    o.record(&mut r, extend(10)).unwrap();
    let d = deadline(&view(&o, &r), DeadlineKind::PetitionHandle);
    assert_eq!(d.due_ms, T0 + 70 * DAY_MS);
}

#[test]
fn reexamination_may_be_requested_within_30_days_of_the_reply_and_is_answered_within_30() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_petition(VILLAGE));
    o.record(&mut r, accept()).unwrap();
    let replied = advance(&mut o, 20 * DAY_MS);
    o.record(&mut r, reply()).unwrap();

    let window = deadline(&view(&o, &r), DeadlineKind::ReexamRequestWindow);
    assert_eq!(window.due_ms, replied + 30 * DAY_MS);
    // The window is the petitioner's to use: it never goes overdue.
    assert!(!window.is_overdue(replied + 100 * DAY_MS));
    assert!(!has_deadline(&view(&o, &r), DeadlineKind::ReexamAnswer));

    advance(&mut o, 30 * DAY_MS);
    let requested = replied + 30 * DAY_MS;
    o.at(&mut r, requested, reexam_request()).unwrap();
    let v = view(&o, &r);
    assert_eq!(
        deadline(&v, DeadlineKind::ReexamRequestWindow).met_ms,
        Some(requested)
    );
    let answer = deadline(&v, DeadlineKind::ReexamAnswer);
    assert_eq!(answer.due_ms, requested + 30 * DAY_MS);
    assert!(!answer.is_overdue(requested + 30 * DAY_MS));
    assert!(answer.is_overdue(requested + 30 * DAY_MS + 1));

    let answered = advance(&mut o, 10 * DAY_MS);
    o.record(&mut r, reexam_answer()).unwrap();
    let answer = deadline(&view(&o, &r), DeadlineKind::ReexamAnswer);
    assert_eq!(answer.met_ms, Some(answered));
}

#[test]
fn a_reexamination_request_after_the_30_day_window_is_refused() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_petition(VILLAGE));
    o.record(&mut r, accept()).unwrap();
    let replied = advance(&mut o, 20 * DAY_MS);
    o.record(&mut r, reply()).unwrap();
    advance(&mut o, 31 * DAY_MS);
    let err = assert_writes_nothing(&mut r, |r| o.record(r, reexam_request()));
    assert_eq!(
        err,
        CommandError::Refused(Refusal::ReexamWindowClosed {
            due_ms: replied + 30 * DAY_MS
        })
    );
    // Dated back inside the window, the same request is taken.
    o.at(&mut r, replied + 29 * DAY_MS, reexam_request())
        .unwrap();
    assert_eq!(status(&o, &r), Status::Reexamining);
}

#[test]
fn judicial_confirmation_may_be_sought_within_30_days_of_an_agreement_that_seeks_it() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = mediating_case(&mut o);
    let agreed = advance(&mut o, 2 * DAY_MS);
    o.record(&mut r, agreement(true)).unwrap();
    let d = deadline(&view(&o, &r), DeadlineKind::JudicialConfirmation);
    assert_eq!(d.due_ms, agreed + 30 * DAY_MS);
    assert_eq!(
        d.state(agreed + 30 * DAY_MS),
        DeadlineState::Open { left_ms: 0 }
    );
    // The window is the parties' to use: unused, it lapses; the office is not late.
    assert!(!d.is_overdue(agreed + 30 * DAY_MS + 1));
    assert_eq!(d.state(agreed + 30 * DAY_MS + 1), DeadlineState::Lapsed);

    let requested = advance(&mut o, 5 * DAY_MS);
    o.record(&mut r, judicial_request()).unwrap();
    let d = deadline(&view(&o, &r), DeadlineKind::JudicialConfirmation);
    assert_eq!(d.met_ms, Some(requested));
    assert!(!d.is_overdue(agreed + 100 * DAY_MS));
}

#[test]
fn an_agreement_without_seeking_confirmation_has_no_judicial_deadline() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = mediating_case(&mut o);
    o.record(&mut r, agreement(false)).unwrap();
    assert!(!has_deadline(
        &view(&o, &r),
        DeadlineKind::JudicialConfirmation
    ));
}

#[test]
fn a_judicial_request_without_an_agreement_is_refused() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = mediating_case(&mut o);
    o.record(&mut r, resolve()).unwrap();
    assert_eq!(status(&o, &r), Status::Resolved);
    assert_refused(&mut o, &mut r, judicial_request(), Refusal::NoAgreement);
}

#[test]
fn a_protection_order_is_due_72_hours_after_the_request() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    let requested = advance(&mut o, HOUR_MS);
    o.record(&mut r, protection_request(false)).unwrap();
    let d = deadline(&view(&o, &r), DeadlineKind::ProtectionOrder);
    assert_eq!(d.due_ms, requested + 72 * HOUR_MS);
    assert!(!d.is_overdue(requested + 72 * HOUR_MS));
    assert!(d.is_overdue(requested + 72 * HOUR_MS + 1));
}

#[test]
fn an_urgent_protection_order_is_due_24_hours_after_the_request() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    let requested = advance(&mut o, HOUR_MS);
    o.record(&mut r, protection_request(true)).unwrap();
    let d = deadline(&view(&o, &r), DeadlineKind::ProtectionOrder);
    assert_eq!(d.due_ms, requested + 24 * HOUR_MS);
    assert!(d.is_overdue(requested + 24 * HOUR_MS + 1));

    let decided = advance(&mut o, 20 * HOUR_MS);
    o.record(
        &mut r,
        Body::ProtectionResult(Outcome {
            granted: true,
            note: String::new(),
        }),
    )
    .unwrap();
    let d = deadline(&view(&o, &r), DeadlineKind::ProtectionOrder);
    assert_eq!(d.met_ms, Some(decided));
    assert!(!d.was_late());
}

#[test]
fn a_custom_petition_acceptance_period_changes_the_due_time() {
    let mut o = Office::new(1, "tan.dm");
    o.rules.petition_accept_days = 10;
    let r = o.create(new_petition(VILLAGE));
    let d = deadline(&view(&o, &r), DeadlineKind::PetitionAccept);
    assert_eq!(d.due_ms, T0 + 10 * DAY_MS);
    assert!(d.is_overdue(T0 + 11 * DAY_MS));
}

#[test]
fn custom_periods_change_handling_extension_and_protection_limits() {
    let mut o = Office::new(1, "tan.dm");
    o.rules.petition_handle_days = 30;
    o.rules.petition_extension_days_max = 15;
    o.rules.protection_order_urgent_hours = 12;
    let mut r = o.create(new_petition(VILLAGE));
    o.record(&mut r, accept()).unwrap();
    assert_eq!(
        deadline(&view(&o, &r), DeadlineKind::PetitionHandle).due_ms,
        T0 + 30 * DAY_MS
    );
    assert_refused(
        &mut o,
        &mut r,
        extend(16),
        Refusal::ExtensionLength { days: 16, max: 15 },
    );
    o.record(&mut r, extend(15)).unwrap();
    assert_eq!(
        deadline(&view(&o, &r), DeadlineKind::PetitionHandle).due_ms,
        T0 + 45 * DAY_MS
    );

    let mut case = o.create(new_case(&[VILLAGE]));
    o.record(&mut case, protection_request(true)).unwrap();
    assert_eq!(
        deadline(&view(&o, &case), DeadlineKind::ProtectionOrder).due_ms,
        T0 + 12 * HOUR_MS
    );
}

// ---------------------------------------------------------------------------------------
// 3. Concurrent contradictions
// ---------------------------------------------------------------------------------------

/// A case mediating at the village office, and the township's replica of it.
fn two_offices() -> (Office, Office, Record, Record) {
    let mut village_office = Office::new(1, "tan.dm");
    let township = Office::new(2, "ran.township");
    let a = mediating_case(&mut village_office);
    let b = township.replica(&a);
    (village_office, township, a, b)
}

fn merge_both_ways(a: &mut Record, b: &mut Record) {
    a.merge(b).unwrap();
    b.merge(a).unwrap();
    assert_eq!(a.heads().len(), b.heads().len());
}

fn contains_event(r: &Record, id: EventId) -> bool {
    r.events().unwrap().events.iter().any(|e| e.id == id)
}

#[test]
fn concurrent_resolve_and_refer_are_a_conflict_that_a_review_settles() {
    let (mut o1, mut o2, mut a, mut b) = two_offices();
    o1.now_ms = T0 + HOUR_MS;
    o2.now_ms = T0 + HOUR_MS;
    let resolved = o1.record(&mut a, resolve()).unwrap();
    let referred = o2.record(&mut b, refer()).unwrap();
    merge_both_ways(&mut a, &mut b);

    let va = view(&o1, &a);
    let vb = view(&o2, &b);
    assert_eq!(va, vb);
    assert!(va.common().needs_review);
    assert_eq!(va.common().conflicts.len(), 1, "{:?}", va.common());
    let c = &va.common().conflicts[0];
    assert_eq!(c.about, ConflictAbout::Outcome);
    let mut involved = [c.first, c.second];
    involved.sort();
    let mut expected = [resolved, referred];
    expected.sort();
    assert_eq!(involved, expected);

    advance(&mut o1, HOUR_MS);
    o1.record(
        &mut a,
        Body::Review(Review {
            outcome: Some(Status::Referred),
            note: "涉及确权，以乡镇移交为准。".into(),
        }),
    )
    .unwrap();
    let va = view(&o1, &a);
    assert!(!va.common().needs_review);
    assert!(va.common().conflicts.is_empty());
    assert_eq!(va.common().status, Status::Referred);

    b.merge(&a).unwrap();
    assert_eq!(view(&o2, &b), va);
}

/// The same scenario without asserting where the contradiction is listed: both replicas
/// agree, the record is up for review, nothing is lost, and a review settles it.
#[test]
fn concurrent_resolve_and_refer_need_review_until_a_review_settles_on_referred() {
    let (mut o1, mut o2, mut a, mut b) = two_offices();
    o1.now_ms = T0 + HOUR_MS;
    o2.now_ms = T0 + HOUR_MS;
    let resolved = o1.record(&mut a, resolve()).unwrap();
    let referred = o2.record(&mut b, refer()).unwrap();
    merge_both_ways(&mut a, &mut b);

    let va = view(&o1, &a);
    assert_eq!(va, view(&o2, &b));
    assert!(va.common().needs_review);
    let flagged = va.common().conflicts.len() + va.common().skipped.len();
    assert_eq!(flagged, 1, "{:?}", va.common());
    for id in [resolved, referred] {
        assert!(contains_event(&a, id) && contains_event(&b, id));
    }

    advance(&mut o1, HOUR_MS);
    o1.record(
        &mut a,
        Body::Review(Review {
            outcome: Some(Status::Referred),
            note: "涉及确权，以乡镇移交为准。".into(),
        }),
    )
    .unwrap();
    let va = view(&o1, &a);
    assert!(!va.common().needs_review);
    assert!(va.common().conflicts.is_empty());
    assert!(va.common().skipped.is_empty());
    assert_eq!(va.common().status, Status::Referred);

    b.merge(&a).unwrap();
    let vb = view(&o2, &b);
    assert_eq!(vb, va);
    assert_eq!(vb.common().status, Status::Referred);
    assert!(!vb.common().needs_review);
}

#[test]
fn concurrent_failure_and_referral_are_an_outcome_conflict_that_a_review_settles() {
    let (mut o1, mut o2, mut a, mut b) = two_offices();
    o1.now_ms = T0 + HOUR_MS;
    o2.now_ms = T0 + 2 * HOUR_MS;
    // Fail sorts first (earlier clock); Refer is still legal after it, so both apply.
    let failed = o1.record(&mut a, fail()).unwrap();
    let referred = o2.record(&mut b, refer()).unwrap();
    merge_both_ways(&mut a, &mut b);

    let va = view(&o1, &a);
    assert_eq!(va, view(&o2, &b));
    assert!(va.common().needs_review);
    assert!(va.common().skipped.is_empty());
    assert_eq!(va.common().conflicts.len(), 1);
    let c = &va.common().conflicts[0];
    assert_eq!(
        (c.first, c.second, c.about),
        (failed, referred, ConflictAbout::Outcome)
    );

    advance(&mut o2, HOUR_MS);
    o2.record(
        &mut b,
        Body::Review(Review {
            outcome: Some(Status::Failed),
            note: "村级调解不成，暂不移交。".into(),
        }),
    )
    .unwrap();
    let vb = view(&o2, &b);
    assert!(!vb.common().needs_review);
    assert_eq!(vb.common().status, Status::Failed);
    a.merge(&b).unwrap();
    assert_eq!(view(&o1, &a), vb);
}

#[test]
fn a_review_that_did_not_see_both_events_does_not_settle_the_conflict() {
    let (mut o1, mut o2, mut a, mut b) = two_offices();
    o1.now_ms = T0 + HOUR_MS;
    o2.now_ms = T0 + 2 * HOUR_MS;
    o1.record(&mut a, fail()).unwrap();
    o2.record(&mut b, refer()).unwrap();
    // The village reviews before it has the township's referral.
    advance(&mut o1, 2 * HOUR_MS);
    o1.record(
        &mut a,
        Body::Review(Review {
            outcome: None,
            note: "核对。".into(),
        }),
    )
    .unwrap();
    merge_both_ways(&mut a, &mut b);
    assert!(view(&o1, &a).common().needs_review);
}

#[test]
fn concurrent_amendments_of_the_category_to_different_values_need_review() {
    let (mut o1, mut o2, mut a, mut b) = two_offices();
    o1.now_ms = T0 + HOUR_MS;
    o2.now_ms = T0 + HOUR_MS;
    o1.record(&mut a, amend_category(Category::Neighbour))
        .unwrap();
    o2.record(&mut b, amend_category(Category::ForestLand))
        .unwrap();
    merge_both_ways(&mut a, &mut b);
    let va = view(&o1, &a);
    assert_eq!(va, view(&o2, &b));
    assert!(va.common().needs_review);
    assert_eq!(va.common().conflicts.len(), 1);
    assert_eq!(va.common().conflicts[0].about, ConflictAbout::Field);

    advance(&mut o1, HOUR_MS);
    o1.record(
        &mut a,
        Body::Review(Review {
            outcome: None,
            note: "经核实属山林土地纠纷。".into(),
        }),
    )
    .unwrap();
    o1.record(&mut a, amend_category(Category::ForestLand))
        .unwrap();
    let va = view(&o1, &a);
    assert!(!va.common().needs_review);
    assert_eq!(va.common().category, Category::ForestLand);
    assert_eq!(va.common().status, Status::Mediating);
}

#[test]
fn concurrent_amendments_of_the_category_to_the_same_value_need_no_review() {
    let (mut o1, mut o2, mut a, mut b) = two_offices();
    o1.now_ms = T0 + HOUR_MS;
    o2.now_ms = T0 + HOUR_MS;
    o1.record(&mut a, amend_category(Category::Neighbour))
        .unwrap();
    o2.record(&mut b, amend_category(Category::Neighbour))
        .unwrap();
    merge_both_ways(&mut a, &mut b);
    let va = view(&o1, &a);
    assert_eq!(va, view(&o2, &b));
    assert!(!va.common().needs_review);
    assert!(va.common().conflicts.is_empty());
    assert_eq!(va.common().category, Category::Neighbour);
}

#[test]
fn sequential_amendments_of_the_category_are_no_conflict() {
    let (mut o1, mut o2, mut a, mut b) = two_offices();
    o1.now_ms = T0 + HOUR_MS;
    o1.record(&mut a, amend_category(Category::Neighbour))
        .unwrap();
    b.merge(&a).unwrap();
    o2.now_ms = T0 + 2 * HOUR_MS;
    o2.record(&mut b, amend_category(Category::Contract))
        .unwrap();
    merge_both_ways(&mut a, &mut b);
    let va = view(&o1, &a);
    assert!(!va.common().needs_review);
    assert_eq!(va.common().category, Category::Contract);
}

#[test]
fn an_event_concurrent_with_a_close_that_sorts_after_it_is_skipped_kept_and_needs_review() {
    let mut o1 = Office::new(1, "tan.dm");
    let mut o2 = Office::new(2, "ran.township");
    let mut a = mediating_case(&mut o1);
    o1.record(&mut a, resolve()).unwrap();
    let mut b = o2.replica(&a);

    o1.now_ms = T0 + HOUR_MS;
    o2.now_ms = T0 + 2 * HOUR_MS;
    o1.record(&mut a, close()).unwrap();
    // Legal where it was recorded (resolved), illegal after the close that sorts before it.
    let visit = o2.record(&mut b, follow_up()).unwrap();
    assert_eq!(status(&o2, &b), Status::FollowedUp);
    merge_both_ways(&mut a, &mut b);

    let va = view(&o1, &a);
    assert_eq!(va, view(&o2, &b));
    assert_eq!(va.common().status, Status::Closed);
    assert!(va.common().needs_review);
    assert_eq!(va.common().skipped.len(), 1);
    let s = &va.common().skipped[0];
    assert_eq!(s.event, visit);
    assert_eq!(
        s.refusal,
        Refusal::NotAllowed {
            kind: Kind::Case,
            status: Status::Closed,
            event: EventType::FollowUp,
        }
    );
    assert_eq!(va.common().follow_ups, 0);
    // Kept, not lost.
    assert!(contains_event(&a, visit));
    assert!(contains_event(&b, visit));

    advance(&mut o1, HOUR_MS);
    o1.record(
        &mut a,
        Body::Review(Review {
            outcome: None,
            note: "回访记录已知悉，维持结案。".into(),
        }),
    )
    .unwrap();
    let va = view(&o1, &a);
    assert!(!va.common().needs_review);
    assert_eq!(va.common().status, Status::Closed);
}

// ---------------------------------------------------------------------------------------
// 4. Restricted records
// ---------------------------------------------------------------------------------------

#[test]
fn a_record_with_a_minor_party_is_restricted() {
    let mut o = Office::new(1, "tan.dm");
    let mut new = new_case(&[VILLAGE]);
    new.category = Category::MarriageFamily;
    new.parties.push(minor("谭小雨"));
    let r = o.create(new);
    let v = view(&o, &r);
    assert!(v.common().restricted);
    assert!(v.common().parties.iter().any(|p| p.minor));
}

#[test]
fn a_restricted_record_is_seen_by_the_person_at_the_office_and_by_the_township_reviewer_once_referred()
 {
    use guihe_protocol::id::NodeId;
    use guihe_protocol::view::Viewer;
    let mut o = Office::new(1, "tan.dm");
    let mut new = new_case(&[VILLAGE]);
    new.parties.push(minor("谭小雨"));
    let mut r = o.create(new);
    let here = o.writer.author.node;
    let township = NodeId::from_bytes([7; 32]);
    fn sees(o: &Office, r: &Record, node: &NodeId, staff: &str, reviewer: bool) -> bool {
        let township: guihe_protocol::division::Division = "500240101000".parse().unwrap();
        view(o, r).common().visible_to(&Viewer {
            node,
            staff: &staff.parse().unwrap(),
            reviews_for: reviewer.then_some(township),
        })
    }
    assert!(sees(&o, &r, &here, "tan.dm", false));
    assert!(
        !sees(&o, &r, &here, "ran.xh", false),
        "a colleague who does not handle it"
    );
    assert!(
        !sees(&o, &r, &township, "tan.dm", false),
        "the same login name at another office is another person"
    );
    assert!(
        !sees(&o, &r, &township, "zhou", true),
        "nothing to review yet"
    );
    // Assigned to a colleague at this office: they see it.
    o.record(
        &mut r,
        Body::Assign(Assign {
            to: "ran.xh".parse().unwrap(),
            note: String::new(),
        }),
    )
    .unwrap();
    assert!(sees(&o, &r, &here, "ran.xh", false));
    assert!(!sees(&o, &r, &township, "ran.xh", false));
    // Referred to the township: its reviewer sees it (and settles it there).
    o.record(&mut r, refer()).unwrap();
    assert!(sees(&o, &r, &township, "zhou", true));
    assert!(
        !sees(&o, &r, &township, "zhou", false),
        "a township worker who is no reviewer"
    );
    // Another township's reviewer sees nothing of it.
    let other: guihe_protocol::division::Division = "500240202000".parse().unwrap();
    assert!(!view(&o, &r).common().visible_to(&Viewer {
        node: &township,
        staff: &"zhou".parse().unwrap(),
        reviews_for: Some(other),
    }));
    // Once the referral is followed up, it is no longer the township's to see.
    o.record(&mut r, follow_up()).unwrap();
    assert!(!sees(&o, &r, &township, "zhou", true));
}

#[test]
fn a_record_without_minors_is_not_restricted_unless_set_by_hand() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    assert!(!view(&o, &r).common().restricted);
    o.record(
        &mut r,
        Body::Amend(Amend {
            target: None,
            change: Change::Restricted(true),
            reason: "涉及家庭隐私。".into(),
        }),
    )
    .unwrap();
    assert!(view(&o, &r).common().restricted);

    let hand = o.create(NewRecord {
        restricted: true,
        ..new_case(&[VILLAGE])
    });
    assert!(view(&o, &hand).common().restricted);
}

#[test]
fn adding_a_minor_party_restricts_an_existing_case() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = mediating_case(&mut o);
    assert!(!view(&o, &r).common().restricted);
    r.apply(
        &mut o.ctx(),
        Command::AddParty {
            party: minor("冉小军"),
            reason: "走访中发现涉及未成年子女。".into(),
        },
    )
    .unwrap();
    let v = view(&o, &r);
    assert!(v.common().restricted);
    assert_eq!(v.common().parties.len(), 3);
    assert_eq!(v.common().status, Status::Mediating);
    assert!(!v.common().needs_review);
}

#[test]
fn a_minor_added_at_one_office_restricts_the_merged_record_everywhere() {
    let (o1, mut o2, mut a, mut b) = two_offices();
    b.apply(
        &mut o2.ctx(),
        Command::AddParty {
            party: minor("冉小军"),
            reason: "涉及未成年子女。".into(),
        },
    )
    .unwrap();
    merge_both_ways(&mut a, &mut b);
    assert!(view(&o1, &a).common().restricted);
    assert_eq!(view(&o1, &a), view(&o2, &b));
}

// ---------------------------------------------------------------------------------------
// 5. Bad field input
// ---------------------------------------------------------------------------------------

#[test]
fn a_record_with_an_empty_summary_is_not_created() {
    let mut o = Office::new(1, "tan.dm");
    for summary in ["", "   "] {
        let err = Record::create(
            &mut o.ctx(),
            NewRecord {
                summary: summary.into(),
                ..new_case(&[VILLAGE])
            },
        )
        .unwrap_err();
        assert_eq!(
            err,
            CommandError::Field(FieldError::Empty { field: "summary" })
        );
    }
}

#[test]
fn editing_the_summary_to_empty_is_refused_and_writes_nothing() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    let err = assert_writes_nothing(&mut r, |r| {
        r.apply(
            &mut o.ctx(),
            Command::EditSummary {
                text: "  ".into(),
                reason: "清空".into(),
            },
        )
    });
    assert_eq!(
        err,
        CommandError::Field(FieldError::Empty { field: "summary" })
    );
    assert_eq!(r.summary().unwrap(), "两户因宅基地界线发生争执。");
}

#[test]
fn a_satisfaction_rating_of_0_or_6_is_refused_and_writes_nothing() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = mediating_case(&mut o);
    o.record(&mut r, resolve()).unwrap();
    for rating in [0u8, 6] {
        let err = assert_writes_nothing(&mut r, |r| o.record(r, satisfaction(rating)));
        assert_eq!(
            err,
            CommandError::Field(FieldError::Range {
                field: "rating",
                value: i64::from(rating),
                min: 1,
                max: 5,
            })
        );
    }
    for rating in [1u8, 5] {
        o.record(&mut r, satisfaction(rating)).unwrap();
    }
    assert_eq!(view(&o, &r).common().satisfaction, Some(5));
}

#[test]
fn required_texts_of_events_are_checked() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = mediating_case(&mut o);
    let err = assert_writes_nothing(&mut r, |r| o.record(r, Body::Fail(Note::default())));
    assert_eq!(
        err,
        CommandError::Field(FieldError::Empty { field: "reason" })
    );
    let err = assert_writes_nothing(&mut r, |r| {
        o.record(
            r,
            Body::Review(Review {
                outcome: None,
                note: String::new(),
            }),
        )
    });
    assert_eq!(
        err,
        CommandError::Field(FieldError::Empty {
            field: "review note"
        })
    );
}

#[test]
fn an_event_time_in_the_future_is_refused_and_writes_nothing() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    let now = o.now_ms;
    let late = now + FUTURE_TOLERANCE_MS + 1;
    let err = assert_writes_nothing(&mut r, |r| o.at(r, late, accept()));
    assert_eq!(
        err,
        CommandError::InFuture {
            at_ms: late,
            now_ms: now
        }
    );
    let err = assert_writes_nothing(&mut r, |r| o.at(r, now + DAY_MS, accept()));
    assert!(matches!(err, CommandError::InFuture { .. }));
    // A few minutes of clock difference are tolerated.
    o.at(&mut r, now + FUTURE_TOLERANCE_MS, accept()).unwrap();
}

#[test]
fn an_event_time_before_receipt_is_refused_and_writes_nothing() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    advance(&mut o, DAY_MS);
    let err = assert_writes_nothing(&mut r, |r| o.at(r, T0 - 1, accept()));
    assert_eq!(
        err,
        CommandError::BeforeReceived {
            at_ms: T0 - 1,
            received_ms: T0
        }
    );
    o.at(&mut r, T0, accept()).unwrap();
}

#[test]
fn a_record_received_in_the_future_is_not_created() {
    let mut o = Office::new(1, "tan.dm");
    let received = T0 + FUTURE_TOLERANCE_MS + 1;
    let err = Record::create(
        &mut o.ctx(),
        NewRecord {
            received_ms: Some(received),
            ..new_case(&[VILLAGE])
        },
    )
    .unwrap_err();
    assert_eq!(
        err,
        CommandError::InFuture {
            at_ms: received,
            now_ms: T0
        }
    );
}

#[test]
fn a_bad_field_is_reported_before_a_workflow_refusal() {
    // A rating on a registered case is both out of range and not allowed: the field error
    // comes first, and nothing is written either way.
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    let err = assert_writes_nothing(&mut r, |r| o.record(r, satisfaction(0)));
    assert!(matches!(err, CommandError::Field(FieldError::Range { .. })));
    let err = assert_writes_nothing(&mut r, |r| o.record(r, satisfaction(3)));
    assert!(matches!(
        err,
        CommandError::Refused(Refusal::NotAllowed {
            status: Status::Registered,
            event: EventType::Satisfaction,
            ..
        })
    ));
}

#[test]
fn two_offices_closing_the_same_case_concurrently_need_no_review() {
    let (mut o1, mut o2, mut a, mut b) = two_offices();
    o1.now_ms = T0 + HOUR_MS;
    o2.now_ms = T0 + HOUR_MS;
    o1.record(&mut a, resolve()).unwrap();
    b.merge(&a).unwrap();
    o1.now_ms += HOUR_MS;
    o2.now_ms += HOUR_MS;
    let first = o1.record(&mut a, close()).unwrap();
    let second = o2.record(&mut b, close()).unwrap();
    merge_both_ways(&mut a, &mut b);
    let va = view(&o1, &a);
    assert_eq!(va, view(&o2, &b));
    assert_eq!(va.common().status, Status::Closed);
    assert!(!va.common().needs_review, "{:?}", va.common());
    assert!(contains_event(&a, first) && contains_event(&a, second));
}

#[test]
fn summary_corrections_in_chinese_are_events_and_concurrent_ones_go_to_review() {
    let (mut o1, mut o2, mut a, mut b) = two_offices();
    let start = a.summary().unwrap();
    for text in [
        "两户因宅基地界线发生争执，要求村调解委员会调解。",
        "邻里纠纷",
    ] {
        a.apply(
            &mut o1.ctx(),
            Command::EditSummary {
                text: text.into(),
                reason: "补充".into(),
            },
        )
        .unwrap();
        assert_eq!(a.summary().unwrap(), text);
        assert_eq!(a.view(&o1.rules).unwrap().common().summary, text);
    }
    b.apply(
        &mut o2.ctx(),
        Command::EditSummary {
            text: format!("{start}（乡镇补充）"),
            reason: "补充".into(),
        },
    )
    .unwrap();
    merge_both_ways(&mut a, &mut b);
    // Both replicas show the same summary, and the two offices' differing corrections are
    // a conflict for review; the text taken in at intake is still in the record.
    assert_eq!(a.summary().unwrap(), b.summary().unwrap());
    let va = a.view(&o1.rules).unwrap();
    assert_eq!(va, b.view(&o2.rules).unwrap());
    assert_eq!(va.common().summary, a.summary().unwrap());
    assert!(va.common().needs_review);
    assert!(
        va.common()
            .conflicts
            .iter()
            .any(|c| c.about == ConflictAbout::Field)
    );
    let intake: autosurgeon::Text =
        autosurgeon::hydrate_prop(a.doc(), automerge::ROOT, "summary").unwrap();
    assert_eq!(intake.as_str(), start);
}

// ---------------------------------------------------------------------------------------
// The next steps a form offers, and entries made afterwards
// ---------------------------------------------------------------------------------------

fn steps(o: &Office, r: &Record) -> Vec<EventType> {
    steps_at(o, r, VILLAGE)
}

/// The steps offered at the office of `division`, writing the schema `o` writes.
fn steps_at(o: &Office, r: &Record, division: &str) -> Vec<EventType> {
    r.next_steps(
        &o.rules,
        o.now_ms,
        division.parse().unwrap(),
        o.writer.schema,
    )
    .unwrap()
}

/// Every step offered is accepted by the command with its fields filled in, and every
/// step not offered is refused: the list is the rules, asked in advance.
fn assert_steps_are_the_rules(o: &mut Office, r: &Record) {
    let offered = steps(o, r);
    for ty in guihe_protocol::workflow::ALL_EVENT_TYPES {
        let Some(body) = Body::blank(*ty) else {
            assert!(!offered.contains(ty), "{ty:?} offered");
            continue;
        };
        let mut copy = r.clone();
        let result = o.record(&mut copy, body);
        assert_eq!(
            result.is_ok(),
            offered.contains(ty),
            "{ty:?}: offered {}, command {result:?}",
            offered.contains(ty)
        );
    }
}

#[test]
fn a_case_offers_only_the_steps_its_state_allows() {
    use EventType as E;
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    assert_eq!(
        steps(&o, &r),
        [
            E::Accept,
            E::Assign,
            E::ProtectionRequest,
            E::Refer,
            E::Review
        ],
        "a registered case: no session before it is accepted, no petition steps"
    );
    assert_steps_are_the_rules(&mut o, &r);
    o.record(&mut r, accept()).unwrap();
    assert!(steps(&o, &r).contains(&E::Session));
    assert!(!steps(&o, &r).contains(&E::Accept));
    o.record(&mut r, session()).unwrap();
    assert!(steps(&o, &r).contains(&E::Agreement));
    assert!(
        !steps(&o, &r).contains(&E::JudicialRequest),
        "no agreement yet"
    );
    assert_steps_are_the_rules(&mut o, &r);
    advance(&mut o, HOUR_MS);
    o.record(&mut r, agreement(true)).unwrap();
    assert!(steps(&o, &r).contains(&E::JudicialRequest));
    assert!(
        !steps(&o, &r).contains(&E::JudicialResult),
        "nothing asked of a court"
    );
    assert_steps_are_the_rules(&mut o, &r);
    o.record(&mut r, judicial_request()).unwrap();
    let now = steps(&o, &r);
    assert!(now.contains(&E::JudicialResult) && !now.contains(&E::JudicialRequest));
    assert_steps_are_the_rules(&mut o, &r);
    o.record(&mut r, protection_request(true)).unwrap();
    let now = steps(&o, &r);
    assert!(now.contains(&E::ProtectionResult) && !now.contains(&E::ProtectionRequest));
    assert_steps_are_the_rules(&mut o, &r);
}

#[test]
fn a_petition_offers_extension_once_and_reexamination_within_its_window() {
    use EventType as E;
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_petition(VILLAGE));
    assert!(steps(&o, &r).contains(&E::NotAccept));
    assert!(!steps(&o, &r).contains(&E::Reply), "not accepted yet");
    assert_steps_are_the_rules(&mut o, &r);
    o.record(&mut r, accept()).unwrap();
    assert!(steps(&o, &r).contains(&E::Extend));
    o.record(&mut r, extend(10)).unwrap();
    assert!(!steps(&o, &r).contains(&E::Extend), "extended once already");
    assert_steps_are_the_rules(&mut o, &r);
    o.record(&mut r, reply()).unwrap();
    assert!(steps(&o, &r).contains(&E::ReexamRequest));
    assert_steps_are_the_rules(&mut o, &r);
    advance(&mut o, 31 * DAY_MS);
    assert!(
        !steps(&o, &r).contains(&E::ReexamRequest),
        "the 30-day window to ask for re-examination has closed"
    );
    assert_steps_are_the_rules(&mut o, &r);
}

#[test]
fn an_entry_dated_well_before_it_was_made_reads_as_entered_afterwards() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&[VILLAGE]));
    advance(&mut o, 10 * DAY_MS);
    let late = o.at(&mut r, o.now_ms - 3 * DAY_MS, accept()).unwrap();
    let timely = o.at(&mut r, o.now_ms - 2 * HOUR_MS, session()).unwrap();
    let events = r.events().unwrap().events;
    let find = |id| events.iter().find(|e| e.id == id).unwrap();
    assert!(
        find(late).entered_late(),
        "dated three days before it was made"
    );
    assert!(!find(timely).entered_late(), "dated the same day");
    assert!(
        !events[0].entered_late(),
        "the intake was made when it says"
    );
}

// ---------------------------------------------------------------------------------------
// The steps of record schema 2: a case not accepted, a referral taken on, 复核
// ---------------------------------------------------------------------------------------

const TOWNSHIP: &str = "500240101000";

/// A case the office does not take on (不予受理), a referral the township takes on (接收)
/// and mediates, and a petition reviewed by the level above (复核): none is offered nor
/// accepted while the office writes schema 1, and each is once schema 2 is allowed.
#[test]
fn the_steps_of_schema_2_wait_for_it_and_then_run_as_the_law_says() {
    use EventType as E;
    use guihe_protocol::record::CommandError;
    let mut o = Office::new(1, "tan.dm");

    // Not accepted: refused at schema 1, and not offered.
    let mut declined = o.create(new_case(&[VILLAGE]));
    let not_accept = || Body::NotAccept(note("不属于人民调解受理范围，已告知当事人向法院起诉。"));
    assert!(!steps(&o, &declined).contains(&E::NotAccept));
    assert!(matches!(
        o.record(&mut declined, not_accept()),
        Err(CommandError::SchemaNotAllowed {
            needed: 2,
            allowed: 1
        })
    ));
    o.writer.schema = 2;
    assert!(steps(&o, &declined).contains(&E::NotAccept));
    assert_steps_are_the_rules(&mut o, &declined);
    o.record(&mut declined, not_accept()).unwrap();
    let v = view(&o, &declined);
    assert_eq!(v.common().status, Status::NotAccepted);
    assert_eq!(v.common().outcome, Some(Status::NotAccepted));
    assert!(steps(&o, &declined).contains(&E::FollowUp));
    o.record(&mut declined, close()).unwrap();
    // Reopened, closed or not, a declined case goes back to the decision whether to
    // accept it: no session before 受理.
    let reopen = || Body::Reopen(note("当事人补充材料，重新审查是否受理"));
    o.record(&mut declined, reopen()).unwrap();
    assert_eq!(view(&o, &declined).common().status, Status::Registered);
    assert!(!steps(&o, &declined).contains(&E::Session));
    assert!(steps(&o, &declined).contains(&E::Accept));
    assert_steps_are_the_rules(&mut o, &declined);
    let mut again = o.create(new_case(&[VILLAGE]));
    o.record(&mut again, not_accept()).unwrap();
    o.record(&mut again, reopen()).unwrap();
    assert_eq!(view(&o, &again).common().status, Status::Registered);
    assert_eq!(view(&o, &again).common().outcome, None);
    o.record(&mut again, accept()).unwrap();
    o.record(&mut again, Body::Resolve(note("和解"))).unwrap();
    assert_eq!(view(&o, &again).common().outcome, Some(Status::Resolved));

    // Referred to the township: the village cannot take it on, the township can, and
    // then mediates it; the matter ends as the township's mediation ended.
    let mut referred = o.create(new_case(&[VILLAGE]));
    o.record(&mut referred, accept()).unwrap();
    o.record(&mut referred, refer()).unwrap();
    assert_eq!(view(&o, &referred).common().outcome, Some(Status::Referred));
    assert!(!steps(&o, &referred).contains(&E::Receive));
    assert!(steps_at(&o, &referred, TOWNSHIP).contains(&E::Receive));
    assert!(
        !steps_at(&o, &referred, "500240000000").contains(&E::Receive),
        "referred to the township, not the county"
    );
    // The village's follow-up of its referral does not stop the township taking it on.
    o.record(&mut referred, follow_up()).unwrap();
    assert!(steps_at(&o, &referred, TOWNSHIP).contains(&E::Receive));
    assert!(!steps_at(&o, &referred, TOWNSHIP).contains(&E::Session));
    let mut township = Office::new(2, "liu.zh");
    township.writer.schema = 2;
    township.now_ms = o.now_ms;
    advance(&mut township, HOUR_MS);
    township
        .record(
            &mut referred,
            Body::Receive(Acceptance {
                note: "乡镇调解委员会接收。".into(),
                number: None,
            }),
        )
        .unwrap();
    let v = view(&township, &referred);
    assert_eq!(v.common().status, Status::Accepted);
    assert_eq!(v.common().outcome, None, "taken on: not ended any more");
    assert!(steps_at(&township, &referred, TOWNSHIP).contains(&E::Session));
    township.record(&mut referred, session()).unwrap();
    township.record(&mut referred, agreement(false)).unwrap();
    assert_eq!(
        view(&township, &referred).common().outcome,
        Some(Status::Resolved)
    );

    // 复核: asked within 30 days of the re-examination opinion, answered within 30 days.
    let mut p = o.create(new_petition(VILLAGE));
    assert!(matches!(
        o.record(&mut p, Body::RecheckRequest(note("请求复核。"))),
        Err(CommandError::Refused(_))
    ));
    for body in [accept(), reply(), reexam_request(), reexam_answer()] {
        advance(&mut o, DAY_MS);
        o.record(&mut p, body).unwrap();
    }
    let answered = o.now_ms;
    assert!(steps(&o, &p).contains(&E::RecheckRequest));
    assert_steps_are_the_rules(&mut o, &p);
    let window = deadline(&view(&o, &p), DeadlineKind::RecheckRequestWindow);
    assert_eq!(window.due_ms, answered + 30 * DAY_MS);
    // Past the window: refused, and the window lapses (it is the petitioner's).
    let mut late = p.clone();
    let mut later = Office::new(1, "tan.dm");
    later.writer.schema = 2;
    later.now_ms = answered + 31 * DAY_MS;
    assert_eq!(
        later.record(&mut late, Body::RecheckRequest(note("请求复核。"))),
        Err(CommandError::Refused(Refusal::RecheckWindowClosed {
            due_ms: answered + 30 * DAY_MS
        }))
    );
    advance(&mut o, 3 * DAY_MS);
    o.record(
        &mut p,
        Body::RecheckRequest(note("对复查意见不服，请求复核。")),
    )
    .unwrap();
    let v = view(&o, &p);
    assert_eq!(v.common().status, Status::Rechecking);
    let due = deadline(&v, DeadlineKind::RecheckAnswer);
    assert_eq!(due.due_ms, o.now_ms + 30 * DAY_MS);
    assert!(due.met_ms.is_none());
    assert!(matches!(
        o.record(&mut p, Body::RecheckRequest(note("再次请求。"))),
        Err(CommandError::Refused(_))
    ));
    advance(&mut o, 10 * DAY_MS);
    o.record(
        &mut p,
        Body::RecheckAnswer(note("复核认为复查意见正确，予以维持。")),
    )
    .unwrap();
    let v = view(&o, &p);
    assert_eq!(v.common().status, Status::Rechecked);
    assert_eq!(v.common().outcome, Some(Status::Rechecked));
    assert_eq!(
        deadline(&v, DeadlineKind::RecheckAnswer).met_ms,
        Some(o.now_ms)
    );
    assert!(steps(&o, &p).contains(&E::FollowUp) && steps(&o, &p).contains(&E::Close));
    assert_steps_are_the_rules(&mut o, &p);
}
