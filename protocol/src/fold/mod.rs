//! The fold: status, deadlines and review flags from a record's events.
//!
//! Events are folded in `(hlc, id)` order, which every replica computes the same way, so
//! every replica that holds the same events reaches the same result whatever order they
//! arrived in. The fold never drops what a person recorded:
//!
//! - An event the rules do not allow at its place in the order is kept, not applied, and
//!   listed in `skipped`. This only happens when it was recorded concurrently with an event
//!   that sorts before it (its author's own view allowed it).
//! - Two concurrent decisive events with different outcomes (resolved at the village while
//!   referred at the township), or two concurrent amendments of the same field with
//!   different values, are a `Conflict`. The first in order wins the status.
//! - Either puts the record up for review until a `Review` event that comes after the
//!   events involved settles it.
//!
//! Command validation runs the same `Fold::step` on the author's current state, so the
//! rules live in one place.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::deadline::{Deadline, DeadlineKind, Deadlines, days_after, hours_after};
use crate::event::{AgreementForm, Body, Change, Event, EventType, Refer};
use crate::id::{EventId, NodeId, PartyId, StaffId};
use crate::model::{Category, Kind, Party, Risk};
use crate::workflow::{Next, Status, decisive_outcome, transition};

mod conflicts;
mod deadlines;
mod folder;

use conflicts::{Field, bit, set_bit};
use deadlines::deadlines;

/// Why a command was refused by the workflow rules. Nothing is written when this happens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    /// The event type may not follow the record's status.
    #[error("a {event:?} event is not allowed on a {kind} that is {status} ({zh})", zh = status.label_zh())]
    NotAllowed {
        /// The record kind.
        kind: Kind,
        /// The current status.
        status: Status,
        /// The event refused.
        event: EventType,
    },
    /// Judicial confirmation needs an agreement first.
    #[error("judicial confirmation needs a mediation agreement first")]
    NoAgreement,
    /// A judicial confirmation request is already waiting for the court.
    #[error("a judicial confirmation request is already waiting for the court's decision")]
    JudicialPending,
    /// A judicial result needs a request first.
    #[error("there is no judicial confirmation request waiting for a result")]
    NoJudicialRequest,
    /// A protection-order request is already waiting.
    #[error("a protection order request is already waiting for the court's decision")]
    ProtectionPending,
    /// A protection-order result needs a request first.
    #[error("there is no protection order request waiting for a decision")]
    NoProtectionRequest,
    /// A petition's handling period may be extended once.
    #[error("the handling period was already extended once")]
    AlreadyExtended,
    /// An extension longer than allowed.
    #[error("an extension is 1 to {max} days, got {days}")]
    ExtensionLength {
        /// The days asked for.
        days: u32,
        /// The configured maximum.
        max: u32,
    },
    /// Re-examination may be asked for once.
    #[error("re-examination was already requested")]
    ReexamAlreadyRequested,
    /// The window for asking for re-examination has closed.
    #[error("the window to request re-examination closed at {due_ms} (ms since epoch)")]
    ReexamWindowClosed {
        /// When it closed.
        due_ms: u64,
    },
    /// A review by the level above (复核) may be asked for once.
    #[error("a review by the level above was already requested")]
    RecheckAlreadyRequested,
    /// A review by the level above needs a re-examination opinion to review.
    #[error("there is no re-examination opinion to review")]
    RecheckWithoutReexam,
    /// The window for asking the level above for a review has closed.
    #[error(
        "the window to request a review by the level above closed at {due_ms} (ms since epoch)"
    )]
    RecheckWindowClosed {
        /// When it closed.
        due_ms: u64,
    },
    /// A review outcome that is not a status of this kind of record.
    #[error("{status} is not a status a {kind} can have")]
    OutcomeNotForKind {
        /// The record kind.
        kind: Kind,
        /// The status given.
        status: Status,
    },
    /// An amendment of an event the record does not hold.
    #[error("the record has no event {0}")]
    UnknownEvent(EventId),
    /// An amendment of a party the record does not hold.
    #[error("the record has no party {0}")]
    UnknownParty(PartyId),
    /// A second intake.
    #[error("a record has exactly one intake, written when it is created")]
    SecondIntake,
    /// 接收 with no referral standing to a township or the county.
    #[error("there is no referral to a township or the county to take on")]
    NothingToReceive,
    /// 接收 by an office the record was not referred to.
    #[error("the record was not referred to this office's level")]
    NotReferredHere,
}

/// Two events that contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The event that sorts first (its outcome stands until a review).
    pub first: EventId,
    /// The event that sorts second.
    pub second: EventId,
    /// What they disagree about.
    pub about: ConflictAbout,
}

/// What two conflicting events disagree about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictAbout {
    /// The outcome (status) of the record.
    Outcome,
    /// An amended field of the record.
    Field,
}

/// An event that was kept but not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The event.
    pub event: EventId,
    /// Why it could not be applied at its place in the order.
    pub refusal: Refusal,
}

/// The agreement of a case, once one was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgreementState {
    /// The agreement event.
    pub event: EventId,
    /// When it took effect.
    pub at_ms: u64,
    /// Written or oral.
    pub form: AgreementForm,
    /// Whether judicial confirmation is intended.
    pub seek_confirmation: bool,
}

/// A request to a court and its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourtState {
    /// When the request was filed.
    pub requested_ms: u64,
    /// Urgent (protection orders only).
    pub urgent: bool,
    /// When the court decided, and whether it granted.
    pub decided: Option<(u64, bool)>,
}

impl CourtState {
    /// Whether the court has yet to decide.
    pub fn is_pending(&self) -> bool {
        self.decided.is_none()
    }
}

/// Whether a court request is waiting for its decision.
pub fn pending(request: &Option<CourtState>) -> bool {
    request.as_ref().is_some_and(CourtState::is_pending)
}

/// The folded state of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    /// The record kind.
    pub kind: Kind,
    /// Current status.
    pub status: Status,
    /// Category after amendments.
    pub category: Category,
    /// Risk after amendments.
    pub risk: Risk,
    /// Restricted by hand (amendments) or by the header.
    pub restricted_flag: bool,
    /// Parties after corrections.
    pub parties: BTreeMap<PartyId, Party>,
    /// The staff member in charge.
    pub handler: Option<StaffId>,
    /// When the record was received (from the header).
    pub received_ms: u64,
    /// When it was accepted (or a petition's handling restarted by a reopen).
    pub accepted_ms: Option<u64>,
    /// When the acceptance decision was taken (accept, not accept or refer).
    pub decided_ms: Option<u64>,
    /// Mediation sessions held.
    pub sessions: u32,
    /// Follow-up visits.
    pub follow_ups: u32,
    /// The agreement, if any.
    pub agreement: Option<AgreementState>,
    /// Judicial confirmation.
    pub judicial: Option<CourtState>,
    /// Protection order.
    pub protection: Option<CourtState>,
    /// Days a petition's handling was extended by.
    pub extension_days: Option<u32>,
    /// When a petition was replied to.
    pub reply_ms: Option<u64>,
    /// When re-examination was requested.
    pub reexam_requested_ms: Option<u64>,
    /// When re-examination was answered.
    pub reexam_answered_ms: Option<u64>,
    /// When the level above was asked to review the re-examination (复核).
    #[serde(default)]
    pub recheck_requested_ms: Option<u64>,
    /// When the level above answered.
    #[serde(default)]
    pub recheck_answered_ms: Option<u64>,
    /// The latest referral.
    pub referral: Option<Refer>,
    /// When it was referred.
    pub referred_ms: Option<u64>,
    /// When it was last resolved (cases) or replied (petitions).
    pub resolved_ms: Option<u64>,
    /// When it was last closed.
    pub closed_ms: Option<u64>,
    /// The latest satisfaction rating.
    pub satisfaction: Option<u8>,
    /// Number of events applied.
    pub applied: u32,
    /// The latest business time of any event.
    pub last_at_ms: u64,
    /// Events kept but not applied, not yet settled by a review.
    pub skipped: Vec<Skipped>,
    /// Contradictions not yet settled by a review.
    pub conflicts: Vec<Conflict>,
    /// Entries of the event list that could not be read (written by a faulty node).
    pub malformed: u32,
    /// Deadlines, computed from the above.
    pub deadlines: Vec<Deadline>,
    /// Everyone who recorded an entry: the record's handlers, who alone see it when it is
    /// restricted.
    #[serde(default)]
    pub staff: BTreeSet<StaffId>,
    /// Everyone who recorded an entry, with the office they recorded it at, and whoever
    /// was assigned (at the office that assigned them): who sees the record when it is
    /// restricted. A login name alone names no one: another office may have a `tan` too.
    #[serde(default)]
    pub handlers: BTreeSet<(NodeId, StaffId)>,
    /// The person assigned last, at the office that assigned them.
    #[serde(default)]
    pub assigned: Option<(NodeId, StaffId)>,
    /// When the record was entered (its intake's clock stamp), as against when it says
    /// it was received: a ledger copied in afterwards is history, not work due today.
    #[serde(default)]
    pub entered_ms: u64,
    /// How the matter last ended, whatever came after (a follow-up, closing): 调解成功
    /// (an agreement or a settlement), 调解不成, 移交, 不予受理, 已答复 or 已复查, or
    /// a review's settled outcome. Reopening clears it. The county's figures count by it,
    /// not by the status, which a follow-up or closing moves on.
    #[serde(default)]
    pub outcome: Option<Status>,
    /// The summary as last corrected by an amend event; `None` keeps the summary taken in
    /// at intake.
    #[serde(default)]
    pub summary: Option<String>,
    /// The matter's particulars taken at intake (record schema 2).
    #[serde(default)]
    pub matter: Option<crate::model::Matter>,
    /// The level that took the record on by referral (接收), if one did: a dispute resolved
    /// after it was resolved at that level (record schema 2).
    #[serde(default)]
    pub taken_on_at: Option<crate::event::ReferLevel>,
    /// The case's numbers, in the order given: the acceptance's, and that of each office
    /// that took it on by referral (record schema 2). Every numbered acceptance counts,
    /// applied or not, so a number once written is never issued again.
    #[serde(default)]
    pub numbers: Vec<crate::event::CaseNumber>,
}

impl Fold {
    /// Whether someone must look at the record: unsettled contradictions, events that could
    /// not be applied, or unreadable entries.
    pub fn needs_review(&self) -> bool {
        !self.conflicts.is_empty() || !self.skipped.is_empty() || self.malformed > 0
    }
}

/// The header fields the fold starts from.
#[derive(Debug, Clone)]
pub struct Start {
    /// The record kind.
    pub kind: Kind,
    /// When it was received.
    pub received_ms: u64,
    /// Category at intake.
    pub category: Category,
    /// Risk at intake.
    pub risk: Risk,
    /// Restricted at intake.
    pub restricted: bool,
    /// Parties in the record's party map.
    pub parties: BTreeMap<PartyId, Party>,
}

/// The fold in progress: the state plus what conflict detection needs.
#[derive(Debug, Clone)]
pub struct Folder<'a> {
    rules: &'a Deadlines,
    state: Fold,
    /// Event id → position in fold order.
    position: BTreeMap<EventId, usize>,
    /// Per position: the set of positions of its ancestors, as a bitset.
    ancestors: Vec<Vec<u64>>,
    /// Decisive events applied so far: (position, id, resulting status).
    decisive: Vec<(usize, EventId, Status)>,
    /// Amendments applied so far, per field: (position, id, value fingerprint).
    amended: BTreeMap<Field, Vec<(usize, EventId, String)>>,
    /// Conflicts and skips, settled or not: (settled, ...).
    conflicts: Vec<(bool, Conflict, usize, usize)>,
    skipped: Vec<(bool, Skipped, usize)>,
}

/// Puts events in fold order, `(hlc, id)`, and drops repeated ids (only a faulty writer
/// repeats one; the first in order is kept).
pub fn order(events: &mut Vec<Event>) {
    events.sort_by_key(|e| (e.hlc, e.id));
    events.dedup_by_key(|e| e.id);
}
