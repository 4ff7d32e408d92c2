//! The status of a record and the table of which event may follow which status.
//!
//! Cases: 登记 → 受理 → 调解中 → 调解成功 | 调解不成 | 移交 → 回访 → 结案; 重新办理 reopens.
//! Petitions: 登记 → 受理 | 不予受理; 受理 → 办理中 → 已答复 → (复查中 → 已复查) → 回访 → 结案.
//! Protection orders (一书一令) belong to dispute cases, the family disputes a police-station
//! mediation handles; petitions do not carry them.
//! This table only looks at the status. Rules that need more of the record (a judicial
//! request needs an agreement, a petition is extended once) live in the fold.

use crate::event::EventType;
use crate::model::Kind;
pub use crate::status::Status;

/// What an allowed event does to the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The status stays.
    Stay,
    /// The status becomes this one.
    To(Status),
}

/// The status-table rule: may an event of type `ty` follow `status` in a record of `kind`,
/// and what does it do? `None` means the event is not allowed there.
///
/// `Amend` and `Review` are allowed everywhere; their effect is the fold's business.
pub fn transition(kind: Kind, status: Status, ty: EventType) -> Option<Next> {
    use EventType as E;
    use Status as S;
    let to = |s| Some(Next::To(s));
    let stay = Some(Next::Stay);
    match ty {
        E::Amend | E::Review => return stay,
        E::Intake => return None,
        E::ProtectionRequest | E::ProtectionResult if status == S::Closed => return None,
        _ => {}
    }
    match kind {
        Kind::Case => match (ty, status) {
            (E::Accept, S::Registered) => to(S::Accepted),
            (E::NotAccept, S::Registered) => to(S::NotAccepted),
            (E::Receive, S::Referred | S::FollowedUp) => to(S::Accepted),
            (E::Assign, S::Registered | S::Accepted | S::Mediating | S::Referred | S::Reopened) => {
                stay
            }
            (E::Session, S::Accepted | S::Mediating | S::Reopened) => to(S::Mediating),
            (E::Agreement, S::Mediating) => to(S::Resolved),
            (E::Resolve, S::Accepted | S::Mediating | S::Reopened) => to(S::Resolved),
            (E::Fail, S::Mediating) => to(S::Failed),
            (E::JudicialRequest | E::JudicialResult, S::Resolved | S::FollowedUp | S::Closed) => {
                stay
            }
            (E::ProtectionRequest | E::ProtectionResult, _) => stay,
            (E::Refer, S::Registered | S::Accepted | S::Mediating | S::Failed | S::Reopened) => {
                to(S::Referred)
            }
            (
                E::FollowUp,
                S::Resolved | S::Failed | S::Referred | S::FollowedUp | S::NotAccepted,
            ) => to(S::FollowedUp),
            (
                E::Satisfaction,
                S::Resolved | S::Failed | S::Referred | S::FollowedUp | S::Closed,
            ) => stay,
            (E::Close, S::Resolved | S::Failed | S::Referred | S::FollowedUp | S::NotAccepted) => {
                to(S::Closed)
            }
            // A case declined (不予受理, record schema 2) and reopened goes back to the
            // decision whether to accept it: it was never accepted, so no session may
            // follow until it is.
            (E::Reopen, S::NotAccepted) => to(S::Registered),
            (E::Reopen, S::Resolved | S::Failed | S::Referred | S::FollowedUp | S::Closed) => {
                to(S::Reopened)
            }
            _ => None,
        },
        Kind::Petition => match (ty, status) {
            (E::Accept, S::Registered) => to(S::Accepted),
            (E::NotAccept, S::Registered) => to(S::NotAccepted),
            (E::Assign, S::Registered | S::Reexamining | S::Rechecking) => stay,
            (E::Receive, S::Referred | S::FollowedUp) => to(S::Accepted),
            (E::Assign, S::Accepted | S::Handling | S::Reopened) => to(S::Handling),
            (E::Extend, S::Accepted | S::Handling | S::Reopened) => stay,
            (E::Reply, S::Accepted | S::Handling | S::Reopened) => to(S::Replied),
            (E::Refer, S::Registered | S::Accepted | S::Handling | S::Reopened) => to(S::Referred),
            (E::ReexamRequest, S::Replied | S::FollowedUp) => to(S::Reexamining),
            (E::ReexamAnswer, S::Reexamining) => to(S::Reexamined),
            (E::RecheckRequest, S::Reexamined | S::FollowedUp) => to(S::Rechecking),
            (E::RecheckAnswer, S::Rechecking) => to(S::Rechecked),
            (
                E::FollowUp,
                S::Replied
                | S::Reexamined
                | S::Rechecked
                | S::Referred
                | S::FollowedUp
                | S::NotAccepted,
            ) => to(S::FollowedUp),
            (
                E::Satisfaction,
                S::Replied | S::Reexamined | S::Rechecked | S::Referred | S::FollowedUp | S::Closed,
            ) => stay,
            (
                E::Close,
                S::Replied
                | S::Reexamined
                | S::Rechecked
                | S::Referred
                | S::FollowedUp
                | S::NotAccepted,
            ) => to(S::Closed),
            (
                E::Reopen,
                S::Replied
                | S::Reexamined
                | S::Rechecked
                | S::Referred
                | S::FollowedUp
                | S::NotAccepted
                | S::Closed,
            ) => to(S::Reopened),
            _ => None,
        },
    }
}

/// The outcome of a decisive event: events whose outcome excludes the others'. Two of these
/// recorded concurrently with different outcomes contradict each other and put the record
/// up for review. Other events return `None`.
pub fn decisive_outcome(ty: EventType) -> Option<Status> {
    match ty {
        EventType::Accept => Some(Status::Accepted),
        EventType::NotAccept => Some(Status::NotAccepted),
        EventType::Agreement | EventType::Resolve => Some(Status::Resolved),
        EventType::Fail => Some(Status::Failed),
        EventType::Refer => Some(Status::Referred),
        EventType::Reply => Some(Status::Replied),
        EventType::Close => Some(Status::Closed),
        EventType::Reopen => Some(Status::Reopened),
        _ => None,
    }
}

/// The oldest record schema whose readers know a step: 2 for 接收, 复核 and a case not
/// accepted (offices of schema 1 would fold them as steps not allowed), 1 for the rest.
/// A node records such a step only once the county's settings allow schema 2.
pub fn schema_of(kind: Kind, ty: EventType) -> u64 {
    match (kind, ty) {
        (_, EventType::Receive | EventType::RecheckRequest | EventType::RecheckAnswer)
        | (Kind::Case, EventType::NotAccept) => 2,
        _ => 1,
    }
}

/// The oldest record schema whose readers know a status a review may settle on: 2 for
/// 复核中, 已复核 and a case not accepted, 1 for the rest.
pub fn status_schema(kind: Kind, status: Status) -> u64 {
    match (kind, status) {
        (_, Status::Rechecking | Status::Rechecked) | (Kind::Case, Status::NotAccepted) => 2,
        _ => 1,
    }
}

/// Whether an office of `division` may take on (接收) a record referred as `referral`:
/// only an office of the level it was referred to (a township's for a referral to the
/// township, the county's for one to the county). A village, a court or another body
/// never records it here.
pub fn may_receive(
    referral: Option<&crate::event::Refer>,
    division: crate::division::Division,
) -> bool {
    use crate::division::Division as D;
    use crate::event::ReferLevel as L;
    matches!(
        (referral.map(|r| r.level), division),
        (Some(L::Township), D::Township(_)) | (Some(L::County), D::County(_))
    )
}

/// The event types a person may record next on a record of `kind` in `status`, in the
/// order a form lists them. Context rules of the fold may still refuse one.
pub fn allowed(kind: Kind, status: Status) -> Vec<EventType> {
    ALL_EVENT_TYPES
        .iter()
        .copied()
        .filter(|ty| transition(kind, status, *ty).is_some())
        .collect()
}

/// Every event type, in timeline order.
pub const ALL_EVENT_TYPES: &[EventType] = &[
    EventType::Intake,
    EventType::Accept,
    EventType::NotAccept,
    EventType::Assign,
    EventType::Session,
    EventType::Agreement,
    EventType::JudicialRequest,
    EventType::JudicialResult,
    EventType::ProtectionRequest,
    EventType::ProtectionResult,
    EventType::Refer,
    EventType::Receive,
    EventType::Resolve,
    EventType::Fail,
    EventType::Extend,
    EventType::Reply,
    EventType::ReexamRequest,
    EventType::ReexamAnswer,
    EventType::RecheckRequest,
    EventType::RecheckAnswer,
    EventType::FollowUp,
    EventType::Satisfaction,
    EventType::Close,
    EventType::Reopen,
    EventType::Amend,
    EventType::Review,
];
