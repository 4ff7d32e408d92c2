//! Read models materialised from a record, for lists and dashboards.
//!
//! A view is a pure function of the record's events and header, so every replica that holds
//! the same changes builds the same view. Nothing in it depends on the reader's clock:
//! whether a deadline is overdue is asked with `now_ms` at read time.

use serde::{Deserialize, Serialize};

use crate::deadline::Deadline;
use crate::division::VillageCode;
use crate::event::{CaseNumber, Refer};
use crate::fold::{AgreementState, Conflict, CourtState, Fold, Skipped};
use crate::id::{CaseId, NodeId, PartyId, PetitionId, RecordId, StaffId};
use crate::model::{Category, Channel, Kind, Matter, Particulars, Party, PartyRole, Risk};
use crate::workflow::Status;

/// A party as shown in lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyView {
    /// The party id.
    pub id: PartyId,
    /// The name.
    pub name: String,
    /// The role.
    pub role: PartyRole,
    /// A minor.
    pub minor: bool,
    /// How to reach them (a phone number), if recorded.
    #[serde(default)]
    pub contact: Option<String>,
    /// Their particulars (record schema 2), the ID number masked ([`Particulars::id_masked`]).
    /// Nothing else of the number is kept in a view: no digest, which the masked digits and
    /// the age would let anyone reverse.
    #[serde(default)]
    pub details: Option<Particulars>,
}

impl PartyView {
    /// A party as lists show it: the ID number masked.
    pub fn of(id: PartyId, party: &Party) -> PartyView {
        PartyView {
            id,
            name: party.name.clone(),
            role: party.role,
            minor: party.minor,
            contact: party.contact.clone(),
            details: party.details.as_ref().map(|d| Particulars {
                id_number: d.id_masked(),
                ..d.clone()
            }),
        }
    }
}

impl PartyView {
    /// Whether `needle` finds this person: part of the name, or at least four digits of
    /// the contact (spaces and dashes ignored).
    pub fn found_by(&self, needle: &str) -> bool {
        let needle = needle.trim();
        if needle.is_empty() {
            return false;
        }
        if self.name.contains(needle) {
            return true;
        }
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        let wanted = digits(needle);
        wanted.len() >= 4
            && wanted.len() == needle.chars().filter(|c| !matches!(c, ' ' | '-')).count()
            && self
                .contact
                .as_deref()
                .is_some_and(|c| digits(c).contains(&wanted))
    }

    /// Whether the person may hold the ID number `id` (as [`crate::model::id_needle`]
    /// reads it): their masked number is its masked form. A candidate only: the caller
    /// confirms against the record's parties, which hold the whole number.
    pub fn may_have_id(&self, id: &str) -> bool {
        self.details
            .as_ref()
            .is_some_and(|d| !d.id_number.is_empty() && d.id_number == crate::model::mask_id(id))
    }

    /// Whether this and `other` are the same person as far as the records tell: the same
    /// name, the same contact when both have one, and the same masked ID number when both
    /// have one.
    pub fn same_person(&self, other: &PartyView) -> bool {
        let id = |p: &PartyView| {
            p.details
                .as_ref()
                .map(|d| d.id_number.clone())
                .filter(|n| !n.is_empty())
        };
        if let (Some(a), Some(b)) = (id(self), id(other))
            && a != b
        {
            return false;
        }
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        self.name.trim() == other.name.trim()
            && match (&self.contact, &other.contact) {
                (Some(a), Some(b)) => digits(a) == digits(b),
                _ => true,
            }
    }
}

/// The form of a view, raised whenever a view gains a field that is read from its record:
/// a node makes again every view an older build stored (and a view a newer daemon sends an
/// older command line takes the new fields' defaults).
pub const VIEW_FORM: u32 = 4;

/// What every record's view has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Common {
    /// The villages it belongs to.
    pub jurisdictions: Vec<VillageCode>,
    /// When it was received.
    pub received_ms: u64,
    /// Category.
    pub category: Category,
    /// Risk level.
    pub risk: Risk,
    /// Restricted: a minor is among the parties, or it was restricted by hand. Later
    /// layers show such records only to their handlers and leave them out of exports and
    /// dashboards by name.
    pub restricted: bool,
    /// Status.
    pub status: Status,
    /// Unsettled contradictions or entries that could not be applied.
    pub needs_review: bool,
    /// The staff member in charge.
    pub handler: Option<StaffId>,
    /// The parties.
    pub parties: Vec<PartyView>,
    /// The summary.
    pub summary: String,
    /// Follow-up visits.
    pub follow_ups: u32,
    /// The latest satisfaction rating.
    pub satisfaction: Option<u8>,
    /// The latest referral.
    pub referral: Option<Refer>,
    /// When it was last resolved or replied to.
    pub resolved_ms: Option<u64>,
    /// When it was closed.
    pub closed_ms: Option<u64>,
    /// The latest business time of any event.
    pub last_at_ms: u64,
    /// Events applied.
    pub events: u32,
    /// Contradictions awaiting review.
    pub conflicts: Vec<Conflict>,
    /// Entries kept but not applied, awaiting review.
    pub skipped: Vec<Skipped>,
    /// Unreadable entries.
    pub malformed: u32,
    /// Deadlines.
    pub deadlines: Vec<Deadline>,
    /// A protection order, if one was requested.
    pub protection: Option<CourtState>,
    /// Everyone who recorded an entry, and the handler: who may see the record when it is
    /// restricted.
    #[serde(default)]
    pub staff: Vec<StaffId>,
    /// Who may see the record when it is restricted: each person who recorded an entry or
    /// was assigned it, with their office. (A node drops the views an older build stored
    /// and makes them again from their records: [`VIEW_FORM`].)
    #[serde(default)]
    pub handlers: Vec<Handler>,
    /// The person assigned last, at the office that assigned them.
    #[serde(default)]
    pub assigned: Option<Handler>,
    /// When it was entered on a node (its intake's clock stamp).
    #[serde(default)]
    pub entered_ms: u64,
    /// When it was last referred.
    #[serde(default)]
    pub referred_ms: Option<u64>,
    /// How the matter last ended (see `Fold::outcome`).
    #[serde(default)]
    pub outcome: Option<Status>,
    /// It holds entries of a revoked key beyond what the county held when it revoked it
    /// (applied here before the revocation arrived): up for review. Set by the node that
    /// holds them (see `revoke::beyond_frontier`); it implies `needs_review`.
    #[serde(default)]
    pub revoked_entries: bool,
    /// The matter's particulars taken at intake (record schema 2).
    #[serde(default)]
    pub matter: Option<Matter>,
    /// The level that took it on by referral (接收), if one did (see `Fold::taken_on_at`).
    #[serde(default)]
    pub taken_on_at: Option<crate::event::ReferLevel>,
    /// The case's numbers (record schema 2): its acceptance's, and that of each office that
    /// took it on by referral.
    #[serde(default)]
    pub numbers: Vec<CaseNumber>,
}

/// A person who handles a record, at their office.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Handler {
    /// The office's node.
    pub node: NodeId,
    /// The person's account there.
    pub staff: StaffId,
}

/// Who is looking at a record: a person signed in at an office, and whether they review
/// for the township.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    /// The office's node.
    pub node: &'a NodeId,
    /// The person's account there.
    pub staff: &'a StaffId,
    /// The township this person reviews for: a township reviewer signed in at that
    /// township's node (`None` for everyone else, and for a reviewer's account on any
    /// other node). They see its villages' restricted records that need review or are
    /// referred to the township.
    pub reviews_for: Option<crate::division::Division>,
}

impl Common {
    /// The case's number as the office of division `office` prints it: the number it
    /// issued, if it did (another office's number is not its own to print).
    pub fn number_at(&self, office: crate::division::Division) -> Option<CaseNumber> {
        self.numbers
            .iter()
            .find(|n| n.office == office.as_u64())
            .copied()
    }

    /// Whether the person at the office is in charge of the record: assigned it, or, when
    /// nobody is assigned, one of those who recorded on it.
    pub fn in_charge(&self, node: &NodeId, staff: &StaffId) -> bool {
        match &self.assigned {
            Some(a) => a.node == *node && a.staff == *staff,
            None => self
                .handlers
                .iter()
                .any(|h| h.node == *node && h.staff == *staff),
        }
    }

    /// Whether a party of this record is a party of `other` too (see
    /// [`PartyView::same_person`]): a returning party, whose earlier disputes a mediator
    /// must see.
    pub fn shares_party_with(&self, other: &Common) -> bool {
        self.parties
            .iter()
            .any(|p| other.parties.iter().any(|q| p.same_person(q)))
    }

    /// The deadlines that are overdue at `now_ms`.
    pub fn overdue(&self, now_ms: u64) -> impl Iterator<Item = &Deadline> {
        self.deadlines.iter().filter(move |d| d.is_overdue(now_ms))
    }

    /// Whether `viewer` may see the record: anyone when it is not restricted; when it is,
    /// its handlers (the person at the office, not a login name that another office may
    /// also have), and the reviewer of its township at the township's node while it needs
    /// review or stands referred to the township.
    pub fn visible_to(&self, viewer: &Viewer<'_>) -> bool {
        !self.restricted
            || self
                .handlers
                .iter()
                .any(|h| h.node == *viewer.node && h.staff == *viewer.staff)
            || (viewer.reviews_for.is_some_and(|t| {
                matches!(t, crate::division::Division::Township(_))
                    && self.jurisdictions.iter().any(|v| t.covers(*v))
            }) && (self.needs_review
                || (self.status == Status::Referred
                    && self
                        .referral
                        .as_ref()
                        .is_some_and(|r| r.level == crate::event::ReferLevel::Township))))
    }

    /// Whether any deadline is overdue at `now_ms`.
    pub fn is_overdue(&self, now_ms: u64) -> bool {
        self.overdue(now_ms).next().is_some()
    }

    /// A major-risk matter that is still open and was not passed to the township: the
    /// method says such a matter goes up at once.
    pub fn major_risk_unreported(&self) -> bool {
        self.risk == Risk::Major && self.status.is_open() && self.referral.is_none()
    }
}

/// A dispute case for lists and dashboards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseView {
    /// The case id.
    pub id: CaseId,
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
    /// Mediation sessions held.
    pub sessions: u32,
    /// The agreement.
    pub agreement: Option<AgreementState>,
    /// Judicial confirmation.
    pub judicial: Option<CourtState>,
}

/// A petition for lists and dashboards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PetitionView {
    /// The petition id.
    pub id: PetitionId,
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
    /// How it arrived.
    pub channel: Channel,
    /// When it was accepted (or its handling restarted).
    pub accepted_ms: Option<u64>,
    /// Days the handling period was extended by.
    pub extension_days: Option<u32>,
    /// When it was replied to.
    pub reply_ms: Option<u64>,
    /// When re-examination was requested.
    pub reexam_requested_ms: Option<u64>,
    /// When re-examination was answered.
    pub reexam_answered_ms: Option<u64>,
}

/// Either view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum View {
    /// A case.
    Case(CaseView),
    /// A petition.
    Petition(PetitionView),
}

impl View {
    pub(crate) fn build(
        id: RecordId,
        jurisdictions: &[VillageCode],
        channel: Option<Channel>,
        summary: String,
        fold: Fold,
    ) -> Result<View, crate::record::DocError> {
        let restricted = fold.restricted_flag || fold.parties.values().any(|p| p.minor);
        let needs_review = fold.needs_review();
        let common = Common {
            jurisdictions: jurisdictions.to_vec(),
            received_ms: fold.received_ms,
            category: fold.category,
            risk: fold.risk,
            restricted,
            status: fold.status,
            needs_review,
            handler: fold.handler.clone(),
            parties: fold
                .parties
                .iter()
                .map(|(id, p)| PartyView::of(*id, p))
                .collect(),
            summary,
            follow_ups: fold.follow_ups,
            satisfaction: fold.satisfaction,
            referral: fold.referral,
            resolved_ms: fold.resolved_ms,
            closed_ms: fold.closed_ms,
            last_at_ms: fold.last_at_ms,
            events: fold.applied,
            conflicts: fold.conflicts,
            skipped: fold.skipped,
            malformed: fold.malformed,
            deadlines: fold.deadlines,
            protection: fold.protection,
            staff: {
                let mut staff = fold.staff;
                staff.extend(fold.handler);
                staff.into_iter().collect()
            },
            handlers: fold
                .handlers
                .into_iter()
                .map(|(node, staff)| Handler { node, staff })
                .collect(),
            assigned: fold.assigned.map(|(node, staff)| Handler { node, staff }),
            entered_ms: fold.entered_ms,
            referred_ms: fold.referred_ms,
            outcome: fold.outcome,
            revoked_entries: false,
            matter: fold.matter,
            numbers: fold.numbers,
            taken_on_at: fold.taken_on_at,
        };
        Ok(match id {
            RecordId::Owned(_) => {
                return Err(crate::record::DocError::Shape(
                    "a division's own record is not a case or petition".into(),
                ));
            }
            RecordId::Case(id) => View::Case(CaseView {
                id,
                common,
                sessions: fold.sessions,
                agreement: fold.agreement,
                judicial: fold.judicial,
            }),
            RecordId::Petition(id) => View::Petition(PetitionView {
                id,
                common,
                // A petition always has a channel: creation refuses one without.
                channel: channel.unwrap_or(Channel::Visit),
                accepted_ms: fold.accepted_ms,
                extension_days: fold.extension_days,
                reply_ms: fold.reply_ms,
                reexam_requested_ms: fold.reexam_requested_ms,
                reexam_answered_ms: fold.reexam_answered_ms,
            }),
        })
    }

    /// Marks the record as holding entries of a revoked key beyond its frontier: up for
    /// review.
    pub fn flag_revoked_entries(&mut self) {
        let common = match self {
            View::Case(c) => &mut c.common,
            View::Petition(p) => &mut p.common,
        };
        common.revoked_entries = true;
        common.needs_review = true;
    }

    /// The view as an office writing record schema `schema` shows it: without the
    /// deadlines of steps it cannot record (the 复核 request window, at a county that has
    /// not allowed schema 2, names a step nobody there can take).
    pub fn at_schema(mut self, schema: u64) -> View {
        let common = match &mut self {
            View::Case(c) => &mut c.common,
            View::Petition(p) => &mut p.common,
        };
        common.deadlines.retain(|d| d.kind.schema() <= schema);
        self
    }

    /// The fields both kinds share.
    pub fn common(&self) -> &Common {
        match self {
            View::Case(c) => &c.common,
            View::Petition(p) => &p.common,
        }
    }

    /// The record id.
    pub fn id(&self) -> RecordId {
        match self {
            View::Case(c) => RecordId::Case(c.id),
            View::Petition(p) => RecordId::Petition(p.id),
        }
    }

    /// The record kind.
    pub fn kind(&self) -> Kind {
        match self {
            View::Case(_) => Kind::Case,
            View::Petition(_) => Kind::Petition,
        }
    }
}
