//! Events: the truth of a record. Status, deadlines and flags are folded from them.
//!
//! Events are appended, never changed or removed; a correction is an `Amend` event. Each
//! event names the events its author had seen (`after`), so the fold can tell events that
//! were recorded concurrently at different offices from events recorded one after another.

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use crate::hlc;
use crate::id::{EventId, NodeId, PartyId, StaffId};
use crate::model::{
    Category, FieldError, Party, Risk, check_text, coded, limits, limits::NOTE_CHARS_MAX,
};
use crate::status::Status;

/// One entry in a record's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Event {
    /// Unique id of the event.
    pub id: EventId,
    /// Orders events; later than every event the author had seen.
    pub hlc: hlc::Timestamp,
    /// When it happened, as the person recording it said (milliseconds since the epoch).
    /// Deadlines count from this.
    pub at_ms: u64,
    /// The node it was recorded on.
    pub node: NodeId,
    /// The staff member who recorded it.
    pub staff: StaffId,
    /// The events of the record that had no successor when this one was recorded.
    pub after: Vec<EventId>,
    /// What happened.
    pub body: Body,
}

coded!(
    /// Whether an agreement was written down or only spoken.
    AgreementForm, "agreement form", {
        /// 书面调解协议书.
        Written = "written", "书面", "written";
        /// 口头协议.
        Oral = "oral", "口头", "oral";
    }
);

coded!(
    /// Where a record is referred or escalated to.
    ReferLevel, "referral level", {
        /// 乡镇（街道）.
        Township = "township", "乡镇", "township";
        /// 县级.
        County = "county", "县级", "county";
        /// 人民法院.
        Court = "court", "法院", "court";
        /// A named mediation or administrative organisation.
        Organisation = "organisation", "其他组织", "organisation";
    }
);

/// What an event records. The variant names are stable codes in the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    /// 登记: the record was taken in. Always the first event, written at creation.
    #[autosurgeon(rename = "intake")]
    Intake(Note),
    /// 受理: the office takes the matter on.
    #[autosurgeon(rename = "accept")]
    Accept(Note),
    /// 不予受理: a petition is not accepted (petitions only).
    #[autosurgeon(rename = "not_accept")]
    NotAccept(Note),
    /// 指派: a staff member is put in charge.
    #[autosurgeon(rename = "assign")]
    Assign(Assign),
    /// 调解记录: a mediation session was held (cases only).
    #[autosurgeon(rename = "session")]
    Session(Session),
    /// 调解协议: the parties agreed (cases only).
    #[autosurgeon(rename = "agreement")]
    Agreement(Agreement),
    /// 司法确认申请: the parties applied to a court to confirm the agreement.
    #[autosurgeon(rename = "judicial_request")]
    JudicialRequest(Court),
    /// 司法确认结果.
    #[autosurgeon(rename = "judicial_result")]
    JudicialResult(Outcome),
    /// 人身安全保护令申请.
    #[autosurgeon(rename = "protection_request")]
    ProtectionRequest(ProtectionRequest),
    /// 人身安全保护令裁定.
    #[autosurgeon(rename = "protection_result")]
    ProtectionResult(Outcome),
    /// 移交 / 上报: referred to another level or organisation.
    #[autosurgeon(rename = "refer")]
    Refer(Refer),
    /// 调解成功 without a formal agreement (for example the applicant withdrew after
    /// reconciling).
    #[autosurgeon(rename = "resolve")]
    Resolve(Note),
    /// 调解不成.
    #[autosurgeon(rename = "fail")]
    Fail(Note),
    /// 延期: a petition's handling period is extended (once, petitions only).
    #[autosurgeon(rename = "extend")]
    Extend(Extend),
    /// 答复: the office's reply to a petition (petitions only).
    #[autosurgeon(rename = "reply")]
    Reply(Note),
    /// 复查申请: the petitioner asks for a re-examination of the reply (petitions only).
    #[autosurgeon(rename = "reexam_request")]
    ReexamRequest(Note),
    /// 复查意见: the re-examination is answered (petitions only).
    #[autosurgeon(rename = "reexam_answer")]
    ReexamAnswer(Note),
    /// 回访: a follow-up visit.
    #[autosurgeon(rename = "follow_up")]
    FollowUp(Note),
    /// 满意度评价: the parties rate the service, 1 to 5.
    #[autosurgeon(rename = "satisfaction")]
    Satisfaction(Satisfaction),
    /// 结案.
    #[autosurgeon(rename = "close")]
    Close(Note),
    /// 重新办理.
    #[autosurgeon(rename = "reopen")]
    Reopen(Note),
    /// 更正: a correction of an earlier entry or of the record's header.
    #[autosurgeon(rename = "amend")]
    Amend(Amend),
    /// 审核: settles contradictions that concurrent entries caused.
    #[autosurgeon(rename = "review")]
    Review(Review),
}

/// A free-text note.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Note {
    /// The note; may be empty.
    #[serde(default)]
    pub note: String,
}

/// Who is put in charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Assign {
    /// The staff member in charge from now on.
    pub to: StaffId,
    /// Why, if anyone said.
    #[serde(default)]
    pub note: String,
}

/// A mediation session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Session {
    /// Where it was held.
    #[serde(default)]
    pub place: String,
    /// What was said and agreed to try next.
    #[serde(default)]
    pub note: String,
}

/// A mediation agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Agreement {
    /// Written or oral.
    pub form: AgreementForm,
    /// The terms.
    pub terms: String,
    /// Whether the parties intend to apply for judicial confirmation. If so, the 30-day
    /// window after the agreement takes effect is watched.
    #[serde(default)]
    pub seek_confirmation: bool,
}

/// A court application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Court {
    /// The court applied to.
    pub court: String,
    /// A note.
    #[serde(default)]
    pub note: String,
}

/// A protection-order application (反家庭暴力法).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct ProtectionRequest {
    /// The court applied to.
    pub court: String,
    /// Urgent: the court decides within 24 hours instead of 72.
    #[serde(default)]
    pub urgent: bool,
    /// A note.
    #[serde(default)]
    pub note: String,
}

/// A court's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Outcome {
    /// Granted or confirmed.
    pub granted: bool,
    /// The ruling's number or a note.
    #[serde(default)]
    pub note: String,
}

/// A referral or escalation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Refer {
    /// The level referred to.
    pub level: ReferLevel,
    /// The named body (a township office, a court, one of the county's mediation
    /// organisations).
    pub to: String,
    /// Why.
    pub reason: String,
}

/// An extension of a petition's handling period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Extend {
    /// Days added, at most the configured maximum (30 by default).
    pub days: u32,
    /// Why.
    pub reason: String,
}

/// A satisfaction rating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Satisfaction {
    /// 1 (very dissatisfied) to 5 (very satisfied).
    pub rating: u8,
    /// What the party said.
    #[serde(default)]
    pub note: String,
}

/// A correction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Amend {
    /// The entry being corrected, if it is one entry.
    pub target: Option<EventId>,
    /// What changes.
    pub change: Change,
    /// Why.
    pub reason: String,
}

/// What an amendment changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(tag = "field", content = "value", rename_all = "snake_case")]
pub enum Change {
    /// The dispute category.
    #[autosurgeon(rename = "category")]
    Category(Category),
    /// The risk level.
    #[autosurgeon(rename = "risk")]
    Risk(Risk),
    /// The restricted flag, set by hand (a minor among the parties sets it regardless).
    #[autosurgeon(rename = "restricted")]
    Restricted(bool),
    /// A party was added to the record's party map.
    #[autosurgeon(rename = "party_added")]
    PartyAdded(PartyId),
    /// A party's details are corrected.
    #[autosurgeon(rename = "party")]
    Party(PartyFix),
    /// The summary is corrected: the note holds the whole new summary. (Release 0.1 edited
    /// the summary text in place and wrote an empty note here; such events change nothing.)
    #[autosurgeon(rename = "summary")]
    Summary(Note),
    /// Only a note on the target entry (for example "session date was wrong").
    #[autosurgeon(rename = "note")]
    Note(Note),
}

/// A correction of one party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct PartyFix {
    /// The party corrected.
    pub id: PartyId,
    /// The party's details from now on.
    pub party: Party,
}

/// A review that settles contradictions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Review {
    /// The status the reviewer settles on; `None` keeps the folded status.
    #[serde(default)]
    pub outcome: Option<Status>,
    /// The reviewer's reasons.
    #[serde(default)]
    pub note: String,
}

/// The type of an event, without its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum EventType {
    Intake,
    Accept,
    NotAccept,
    Assign,
    Session,
    Agreement,
    JudicialRequest,
    JudicialResult,
    ProtectionRequest,
    ProtectionResult,
    Refer,
    Resolve,
    Fail,
    Extend,
    Reply,
    ReexamRequest,
    ReexamAnswer,
    FollowUp,
    Satisfaction,
    Close,
    Reopen,
    Amend,
    Review,
}

impl EventType {
    /// Chinese label for the timeline.
    pub fn label_zh(self) -> &'static str {
        match self {
            EventType::Intake => "登记",
            EventType::Accept => "受理",
            EventType::NotAccept => "不予受理",
            EventType::Assign => "指派",
            EventType::Session => "调解记录",
            EventType::Agreement => "调解协议",
            EventType::JudicialRequest => "申请司法确认",
            EventType::JudicialResult => "司法确认结果",
            EventType::ProtectionRequest => "申请人身安全保护令",
            EventType::ProtectionResult => "保护令裁定",
            EventType::Refer => "移交上报",
            EventType::Resolve => "调解成功",
            EventType::Fail => "调解不成",
            EventType::Extend => "延期",
            EventType::Reply => "答复",
            EventType::ReexamRequest => "申请复查",
            EventType::ReexamAnswer => "复查意见",
            EventType::FollowUp => "回访",
            EventType::Satisfaction => "满意度评价",
            EventType::Close => "结案",
            EventType::Reopen => "重新办理",
            EventType::Amend => "更正",
            EventType::Review => "审核",
        }
    }
}

impl Body {
    /// The type of the event.
    pub fn event_type(&self) -> EventType {
        match self {
            Body::Intake(_) => EventType::Intake,
            Body::Accept(_) => EventType::Accept,
            Body::NotAccept(_) => EventType::NotAccept,
            Body::Assign(_) => EventType::Assign,
            Body::Session(_) => EventType::Session,
            Body::Agreement(_) => EventType::Agreement,
            Body::JudicialRequest(_) => EventType::JudicialRequest,
            Body::JudicialResult(_) => EventType::JudicialResult,
            Body::ProtectionRequest(_) => EventType::ProtectionRequest,
            Body::ProtectionResult(_) => EventType::ProtectionResult,
            Body::Refer(_) => EventType::Refer,
            Body::Resolve(_) => EventType::Resolve,
            Body::Fail(_) => EventType::Fail,
            Body::Extend(_) => EventType::Extend,
            Body::Reply(_) => EventType::Reply,
            Body::ReexamRequest(_) => EventType::ReexamRequest,
            Body::ReexamAnswer(_) => EventType::ReexamAnswer,
            Body::FollowUp(_) => EventType::FollowUp,
            Body::Satisfaction(_) => EventType::Satisfaction,
            Body::Close(_) => EventType::Close,
            Body::Reopen(_) => EventType::Reopen,
            Body::Amend(_) => EventType::Amend,
            Body::Review(_) => EventType::Review,
        }
    }

    /// Checks the payload's own fields (lengths, ranges). Workflow rules that depend on the
    /// record's state are checked by the fold.
    pub fn check(&self) -> Result<(), FieldError> {
        let note = |field, text: &str| check_text(field, text, NOTE_CHARS_MAX, false);
        let required = |field, text: &str| check_text(field, text, NOTE_CHARS_MAX, true);
        match self {
            Body::Intake(n)
            | Body::Accept(n)
            | Body::Resolve(n)
            | Body::FollowUp(n)
            | Body::Close(n)
            | Body::ReexamRequest(n) => note("note", &n.note),
            Body::NotAccept(n) | Body::Fail(n) | Body::Reopen(n) => required("reason", &n.note),
            Body::Reply(n) | Body::ReexamAnswer(n) => required("reply", &n.note),
            Body::Assign(a) => note("note", &a.note),
            Body::Session(s) => {
                note("place", &s.place)?;
                required("session record", &s.note)
            }
            Body::Agreement(a) => required("agreement terms", &a.terms),
            Body::JudicialRequest(c) => {
                required("court", &c.court)?;
                note("note", &c.note)
            }
            Body::JudicialResult(o) | Body::ProtectionResult(o) => note("note", &o.note),
            Body::ProtectionRequest(p) => {
                required("court", &p.court)?;
                note("note", &p.note)
            }
            Body::Refer(r) => {
                required("referred to", &r.to)?;
                required("reason", &r.reason)
            }
            Body::Extend(e) => required("reason", &e.reason),
            Body::Satisfaction(s) => {
                if !(1..=5).contains(&s.rating) {
                    return Err(FieldError::Range {
                        field: "rating",
                        value: i64::from(s.rating),
                        min: 1,
                        max: 5,
                    });
                }
                note("note", &s.note)
            }
            Body::Amend(a) => {
                required("reason", &a.reason)?;
                match &a.change {
                    Change::Party(fix) => fix.party.check(),
                    Change::Summary(n) => {
                        check_text("summary", &n.note, limits::SUMMARY_CHARS_MAX, true)
                    }
                    Change::Note(n) => note("note", &n.note),
                    Change::Category(_)
                    | Change::Risk(_)
                    | Change::Restricted(_)
                    | Change::PartyAdded(_) => Ok(()),
                }
            }
            Body::Review(r) => required("review note", &r.note),
        }
    }
}
