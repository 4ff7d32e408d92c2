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
use crate::id::{EventId, PartyId, StaffId};
use crate::model::{Category, Kind, Party, Risk};
use crate::workflow::{Next, Status, decisive_outcome, transition};

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
    /// The summary as last corrected by an amend event; `None` keeps the summary taken in
    /// at intake.
    #[serde(default)]
    pub summary: Option<String>,
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

/// A field an amendment can change, for detecting concurrent amendments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    Category,
    Risk,
    Restricted,
    Party(PartyId),
    Summary,
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

fn bit(set: &[u64], i: usize) -> bool {
    set.get(i / 64).is_some_and(|w| w & (1u64 << (i % 64)) != 0)
}

fn set_bit(set: &mut [u64], i: usize) {
    if let Some(w) = set.get_mut(i / 64) {
        *w |= 1u64 << (i % 64);
    }
}

impl<'a> Folder<'a> {
    /// Starts a fold from the record's header.
    pub fn new(start: Start, rules: &'a Deadlines) -> Self {
        Self {
            rules,
            state: Fold {
                kind: start.kind,
                status: Status::Registered,
                category: start.category,
                risk: start.risk,
                restricted_flag: start.restricted,
                parties: start.parties,
                handler: None,
                received_ms: start.received_ms,
                accepted_ms: None,
                decided_ms: None,
                sessions: 0,
                follow_ups: 0,
                agreement: None,
                judicial: None,
                protection: None,
                extension_days: None,
                reply_ms: None,
                reexam_requested_ms: None,
                reexam_answered_ms: None,
                referral: None,
                referred_ms: None,
                resolved_ms: None,
                closed_ms: None,
                satisfaction: None,
                applied: 0,
                last_at_ms: start.received_ms,
                skipped: Vec::new(),
                conflicts: Vec::new(),
                malformed: 0,
                deadlines: Vec::new(),
                staff: BTreeSet::new(),
                summary: None,
            },
            position: BTreeMap::new(),
            ancestors: Vec::new(),
            decisive: Vec::new(),
            amended: BTreeMap::new(),
            conflicts: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// The current status, for command validation.
    pub fn status(&self) -> Status {
        self.state.status
    }

    /// Whether the record holds an event with this id.
    pub fn has_event(&self, id: EventId) -> bool {
        self.position.contains_key(&id)
    }

    /// Checks whether `body` may be applied now, without applying it.
    pub fn check(&self, body: &Body, at_ms: u64) -> Result<Option<Status>, Refusal> {
        let s = &self.state;
        let ty = body.event_type();
        if ty == EventType::Intake {
            return Err(Refusal::SecondIntake);
        }
        let next = transition(s.kind, s.status, ty).ok_or(Refusal::NotAllowed {
            kind: s.kind,
            status: s.status,
            event: ty,
        })?;
        match body {
            Body::JudicialRequest(_) => {
                if s.agreement.is_none() {
                    return Err(Refusal::NoAgreement);
                }
                if pending(&s.judicial) {
                    return Err(Refusal::JudicialPending);
                }
            }
            Body::JudicialResult(_) if !pending(&s.judicial) => {
                return Err(Refusal::NoJudicialRequest);
            }
            Body::ProtectionRequest(_) if pending(&s.protection) => {
                return Err(Refusal::ProtectionPending);
            }
            Body::ProtectionResult(_) if !pending(&s.protection) => {
                return Err(Refusal::NoProtectionRequest);
            }
            Body::Extend(e) => {
                if s.extension_days.is_some() {
                    return Err(Refusal::AlreadyExtended);
                }
                let max = self.rules.petition_extension_days_max;
                if e.days == 0 || e.days > max {
                    return Err(Refusal::ExtensionLength { days: e.days, max });
                }
            }
            Body::ReexamRequest(_) => {
                if s.reexam_requested_ms.is_some() {
                    return Err(Refusal::ReexamAlreadyRequested);
                }
                if let Some(reply) = s.reply_ms {
                    let due_ms = days_after(reply, self.rules.petition_reexam_request_days);
                    if at_ms > due_ms {
                        return Err(Refusal::ReexamWindowClosed { due_ms });
                    }
                }
            }
            Body::Review(r) => {
                if let Some(outcome) = r.outcome
                    && !outcome.applies_to(s.kind)
                {
                    return Err(Refusal::OutcomeNotForKind {
                        kind: s.kind,
                        status: outcome,
                    });
                }
            }
            Body::Amend(a) => {
                if let Some(target) = a.target
                    && !self.position.contains_key(&target)
                {
                    return Err(Refusal::UnknownEvent(target));
                }
                match &a.change {
                    Change::PartyAdded(id) | Change::Party(crate::event::PartyFix { id, .. })
                        if !s.parties.contains_key(id) =>
                    {
                        return Err(Refusal::UnknownParty(*id));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(match next {
            Next::Stay => match body {
                Body::Review(r) => r.outcome,
                _ => None,
            },
            Next::To(s) => Some(s),
        })
    }

    /// Adds the party map entry a `PartyAdded` amendment refers to. The party map is
    /// written before the event in the same change, so the fold sees it in the header.
    pub fn note_party(&mut self, id: PartyId, party: Party) {
        self.state.parties.entry(id).or_insert(party);
    }

    /// Folds one more event. Events must come in `(hlc, id)` order.
    pub fn push(&mut self, event: &Event) {
        let pos = self.ancestors.len();
        let mut anc = vec![0u64; pos / 64 + 1];
        for parent in &event.after {
            if let Some(&p) = self.position.get(parent) {
                // A parent that sorts later would mean a clock that broke causality; such a
                // link is ignored rather than trusted.
                if p < pos {
                    set_bit(&mut anc, p);
                    if let Some(pa) = self.ancestors.get(p) {
                        for (w, pw) in anc.iter_mut().zip(pa) {
                            *w |= pw;
                        }
                    }
                }
            }
        }
        self.ancestors.push(anc);
        self.position.insert(event.id, pos);
        self.state.last_at_ms = self.state.last_at_ms.max(event.at_ms);
        self.state.staff.insert(event.staff.clone());

        if pos == 0 && matches!(event.body, Body::Intake(_)) {
            self.state.applied += 1;
            return;
        }
        match self.check(&event.body, event.at_ms) {
            Err(refusal) => {
                // A decisive event refused because a concurrent decisive event sorts before
                // it is a contradiction when their outcomes differ, and a harmless repeat
                // (two offices closing the same case) when they agree.
                if let Some(outcome) = decisive_outcome(event.body.event_type()) {
                    let concurrent = self.concurrent_decisive(pos);
                    if !concurrent.is_empty() {
                        self.record_outcome_conflicts(pos, event.id, outcome, &concurrent);
                        return;
                    }
                }
                self.skipped.push((
                    false,
                    Skipped {
                        event: event.id,
                        refusal,
                    },
                    pos,
                ));
            }
            Ok(next) => {
                self.detect_conflicts(pos, event);
                self.apply(event, next);
                self.state.applied += 1;
            }
        }
    }

    fn record_outcome_conflicts(
        &mut self,
        pos: usize,
        id: EventId,
        outcome: Status,
        concurrent: &[(usize, EventId, Status)],
    ) {
        for &(p, earlier, earlier_outcome) in concurrent {
            if earlier_outcome != outcome {
                self.conflict((p, earlier), (pos, id), ConflictAbout::Outcome);
            }
        }
    }

    /// The decisive events applied so far that the event at `pos` had not seen.
    fn concurrent_decisive(&self, pos: usize) -> Vec<(usize, EventId, Status)> {
        self.decisive
            .iter()
            .copied()
            .filter(|(p, ..)| !self.is_ancestor(pos, *p))
            .collect()
    }

    /// Notes an unsettled conflict between two events, given as (position, id).
    fn conflict(
        &mut self,
        first: (usize, EventId),
        second: (usize, EventId),
        about: ConflictAbout,
    ) {
        self.conflicts.push((
            false,
            Conflict {
                first: first.1,
                second: second.1,
                about,
            },
            first.0,
            second.0,
        ));
    }

    fn is_ancestor(&self, of: usize, candidate: usize) -> bool {
        self.ancestors.get(of).is_some_and(|a| bit(a, candidate))
    }

    fn detect_conflicts(&mut self, pos: usize, event: &Event) {
        if let Some(outcome) = decisive_outcome(event.body.event_type()) {
            let concurrent = self.concurrent_decisive(pos);
            self.record_outcome_conflicts(pos, event.id, outcome, &concurrent);
            self.decisive.push((pos, event.id, outcome));
        }
        if let Body::Amend(a) = &event.body {
            let (field, value) = match &a.change {
                Change::Category(c) => (Field::Category, c.code().to_string()),
                Change::Risk(r) => (Field::Risk, r.code().to_string()),
                Change::Restricted(b) => (Field::Restricted, b.to_string()),
                Change::Party(fix) => (Field::Party(fix.id), format!("{:?}", fix.party)),
                // Release 0.1 edited the summary text in place and wrote an empty note.
                Change::Summary(n) if !n.note.is_empty() => (Field::Summary, n.note.clone()),
                Change::PartyAdded(_) | Change::Summary(_) | Change::Note(_) => return,
            };
            let earlier = self.amended.get(&field).cloned().unwrap_or_default();
            for (p, id, v) in &earlier {
                if *v != value && !self.is_ancestor(pos, *p) {
                    self.conflict((*p, *id), (pos, event.id), ConflictAbout::Field);
                }
            }
            self.amended
                .entry(field)
                .or_default()
                .push((pos, event.id, value));
        }
    }

    fn apply(&mut self, event: &Event, next: Option<Status>) {
        let at = event.at_ms;
        let s = &mut self.state;
        match &event.body {
            Body::Intake(_) => {}
            Body::Accept(_) => {
                s.accepted_ms = Some(at);
                s.decided_ms.get_or_insert(at);
            }
            Body::NotAccept(_) => {
                s.decided_ms.get_or_insert(at);
            }
            Body::Assign(a) => s.handler = Some(a.to.clone()),
            Body::Session(_) => s.sessions += 1,
            Body::Agreement(a) => {
                s.agreement = Some(AgreementState {
                    event: event.id,
                    at_ms: at,
                    form: a.form,
                    seek_confirmation: a.seek_confirmation,
                });
                s.resolved_ms = Some(at);
            }
            Body::JudicialRequest(_) => {
                s.judicial = Some(CourtState {
                    requested_ms: at,
                    urgent: false,
                    decided: None,
                });
            }
            Body::JudicialResult(o) => {
                if let Some(j) = &mut s.judicial {
                    j.decided = Some((at, o.granted));
                }
            }
            Body::ProtectionRequest(p) => {
                s.protection = Some(CourtState {
                    requested_ms: at,
                    urgent: p.urgent,
                    decided: None,
                });
            }
            Body::ProtectionResult(o) => {
                if let Some(p) = &mut s.protection {
                    p.decided = Some((at, o.granted));
                }
            }
            Body::Refer(r) => {
                s.referral = Some(r.clone());
                s.referred_ms = Some(at);
                s.decided_ms.get_or_insert(at);
            }
            Body::Resolve(_) => s.resolved_ms = Some(at),
            Body::Fail(_) => {}
            Body::Extend(e) => s.extension_days = Some(e.days),
            Body::Reply(_) => {
                s.reply_ms = Some(at);
                s.resolved_ms = Some(at);
            }
            Body::ReexamRequest(_) => s.reexam_requested_ms = Some(at),
            Body::ReexamAnswer(_) => s.reexam_answered_ms = Some(at),
            Body::FollowUp(_) => s.follow_ups += 1,
            Body::Satisfaction(r) => s.satisfaction = Some(r.rating),
            Body::Close(_) => s.closed_ms = Some(at),
            Body::Reopen(_) => {
                if s.kind == Kind::Petition {
                    // A reopened petition is handled afresh: a new handling period, and the
                    // earlier reply and re-examination no longer stand.
                    s.accepted_ms = Some(at);
                    s.extension_days = None;
                    s.reply_ms = None;
                    s.reexam_requested_ms = None;
                    s.reexam_answered_ms = None;
                }
                s.closed_ms = None;
            }
            Body::Amend(a) => match &a.change {
                Change::Category(c) => s.category = *c,
                Change::Risk(r) => s.risk = *r,
                Change::Restricted(b) => s.restricted_flag = *b,
                Change::Party(fix) => {
                    s.parties.insert(fix.id, fix.party.clone());
                }
                Change::Summary(n) if !n.note.is_empty() => s.summary = Some(n.note.clone()),
                Change::PartyAdded(_) | Change::Summary(_) | Change::Note(_) => {}
            },
            Body::Review(_) => {
                let pos = self.ancestors.len().saturating_sub(1);
                let ancestors = self.ancestors.get(pos).cloned().unwrap_or_default();
                for (settled, _, a, b) in &mut self.conflicts {
                    if bit(&ancestors, *a) && bit(&ancestors, *b) {
                        *settled = true;
                    }
                }
                for (settled, _, p) in &mut self.skipped {
                    if bit(&ancestors, *p) {
                        *settled = true;
                    }
                }
            }
        }
        if let Some(status) = next {
            self.state.status = status;
        }
    }

    /// Ends the fold: open contradictions and deadlines.
    pub fn finish(mut self) -> Fold {
        self.state.conflicts = self
            .conflicts
            .into_iter()
            .filter(|(settled, ..)| !settled)
            .map(|(_, c, ..)| c)
            .collect();
        self.state.skipped = self
            .skipped
            .into_iter()
            .filter(|(settled, ..)| !settled)
            .map(|(_, s, _)| s)
            .collect();
        self.state.deadlines = deadlines(&self.state, self.rules);
        self.state
    }
}

fn deadlines(s: &Fold, rules: &Deadlines) -> Vec<Deadline> {
    let mut out = Vec::new();
    match s.kind {
        Kind::Petition => {
            out.push(Deadline {
                kind: DeadlineKind::PetitionAccept,
                due_ms: days_after(s.received_ms, rules.petition_accept_days),
                met_ms: s.decided_ms,
            });
            if let Some(accepted) = s.accepted_ms {
                let days = rules
                    .petition_handle_days
                    .saturating_add(s.extension_days.unwrap_or(0));
                let met = match (s.reply_ms, s.referred_ms) {
                    (Some(r), _) => Some(r),
                    (None, Some(r)) if r >= accepted => Some(r),
                    _ => None,
                };
                out.push(Deadline {
                    kind: DeadlineKind::PetitionHandle,
                    due_ms: days_after(accepted, days),
                    met_ms: met,
                });
            }
            if let Some(reply) = s.reply_ms {
                out.push(Deadline {
                    kind: DeadlineKind::ReexamRequestWindow,
                    due_ms: days_after(reply, rules.petition_reexam_request_days),
                    met_ms: s.reexam_requested_ms,
                });
            }
            if let Some(requested) = s.reexam_requested_ms {
                out.push(Deadline {
                    kind: DeadlineKind::ReexamAnswer,
                    due_ms: days_after(requested, rules.petition_reexam_answer_days),
                    met_ms: s.reexam_answered_ms,
                });
            }
        }
        Kind::Case => {
            if let Some(a) = &s.agreement
                && a.seek_confirmation
            {
                out.push(Deadline {
                    kind: DeadlineKind::JudicialConfirmation,
                    due_ms: days_after(a.at_ms, rules.judicial_confirmation_days),
                    met_ms: s.judicial.as_ref().map(|j| j.requested_ms),
                });
            }
        }
    }
    if let Some(p) = &s.protection {
        let hours = if p.urgent {
            rules.protection_order_urgent_hours
        } else {
            rules.protection_order_hours
        };
        out.push(Deadline {
            kind: DeadlineKind::ProtectionOrder,
            due_ms: hours_after(p.requested_ms, hours),
            met_ms: p.decided.map(|(at, _)| at),
        });
    }
    out
}
