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
    Category, FieldError, Matter, Party, Risk, check_text, coded, limits, limits::NOTE_CHARS_MAX,
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
    /// Their display name as their office knows it (谭德明), for the offices their account
    /// never reaches (record schema 2); absent when none was given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[autosurgeon(missing = "String::new")]
    pub by: String,
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
    Intake(Intake),
    /// 受理: the office takes the matter on.
    #[autosurgeon(rename = "accept")]
    Accept(Acceptance),
    /// 不予受理: the matter is not accepted (petitions; cases from record schema 2).
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
    /// 接收: the office a record was referred to takes it on (record schema 2); it may
    /// number the case as its own.
    #[autosurgeon(rename = "receive")]
    Receive(Acceptance),
    /// 复核申请: the petitioner asks the level above to review the re-examination (petitions
    /// only, record schema 2).
    #[autosurgeon(rename = "recheck_request")]
    RecheckRequest(Note),
    /// 复核意见: the level above answers (petitions only, record schema 2).
    #[autosurgeon(rename = "recheck_answer")]
    RecheckAnswer(Note),
}

/// A free-text note.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Note {
    /// The note; may be empty.
    #[serde(default)]
    pub note: String,
}

/// What intake records beside the parties and the summary.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Intake {
    /// The note; may be empty.
    #[serde(default)]
    pub note: String,
    /// The matter's particulars (record schema 2); absent from the document when none were
    /// taken, so a schema 1 intake reads as it was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[autosurgeon(missing = "Option::default")]
    pub matter: Option<Matter>,
}

/// A case's number, as its office issued it on acceptance: the `seq`th case the office of
/// division `office` accepted in `year` (（2026）……调字第7号). Each office numbers its own,
/// so numbers are unique without coordination; the office is its division, not its node's
/// key, so a replaced PC goes on from the office's highest number.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    Reconcile,
    Hydrate,
)]
pub struct CaseNumber {
    /// The office's division code (12 digits).
    pub office: u64,
    /// The year of acceptance (Beijing time).
    pub year: u16,
    /// The number within the office and the year, from 1.
    pub seq: u32,
}

/// 受理: the office takes the matter on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Acceptance {
    /// The note; may be empty.
    #[serde(default)]
    pub note: String,
    /// The case's number (record schema 2, cases only): the node fills it in from the
    /// numbers its records hold (`crate::numbering`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[autosurgeon(missing = "Option::default")]
    pub number: Option<CaseNumber>,
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
    Receive,
    RecheckRequest,
    RecheckAnswer,
}

impl EventType {
    /// The type's code in an event's JSON form (`{"type": code, …}`).
    pub fn code(self) -> &'static str {
        match self {
            EventType::Intake => "intake",
            EventType::Accept => "accept",
            EventType::NotAccept => "not_accept",
            EventType::Assign => "assign",
            EventType::Session => "session",
            EventType::Agreement => "agreement",
            EventType::JudicialRequest => "judicial_request",
            EventType::JudicialResult => "judicial_result",
            EventType::ProtectionRequest => "protection_request",
            EventType::ProtectionResult => "protection_result",
            EventType::Refer => "refer",
            EventType::Resolve => "resolve",
            EventType::Fail => "fail",
            EventType::Extend => "extend",
            EventType::Reply => "reply",
            EventType::ReexamRequest => "reexam_request",
            EventType::ReexamAnswer => "reexam_answer",
            EventType::FollowUp => "follow_up",
            EventType::Satisfaction => "satisfaction",
            EventType::Close => "close",
            EventType::Reopen => "reopen",
            EventType::Amend => "amend",
            EventType::Review => "review",
            EventType::Receive => "receive",
            EventType::RecheckRequest => "recheck_request",
            EventType::RecheckAnswer => "recheck_answer",
        }
    }

    /// English label, for the English view.
    pub fn label_en(self) -> &'static str {
        match self {
            EventType::Intake => "intake",
            EventType::Accept => "accept",
            EventType::NotAccept => "not accepted",
            EventType::Assign => "assign",
            EventType::Session => "mediation session",
            EventType::Agreement => "agreement",
            EventType::JudicialRequest => "judicial confirmation request",
            EventType::JudicialResult => "judicial confirmation result",
            EventType::ProtectionRequest => "protection order request",
            EventType::ProtectionResult => "protection order decision",
            EventType::Refer => "refer",
            EventType::Resolve => "resolved",
            EventType::Fail => "mediation failed",
            EventType::Extend => "extend",
            EventType::Reply => "reply",
            EventType::ReexamRequest => "re-examination request",
            EventType::ReexamAnswer => "re-examination answer",
            EventType::FollowUp => "follow-up",
            EventType::Satisfaction => "satisfaction rating",
            EventType::Close => "close",
            EventType::Reopen => "reopen",
            EventType::Amend => "correction",
            EventType::Review => "review",
            EventType::Receive => "take on a referral",
            EventType::RecheckRequest => "request for review by the level above",
            EventType::RecheckAnswer => "review opinion of the level above",
        }
    }
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
            EventType::Receive => "接收移交",
            EventType::RecheckRequest => "申请复核",
            EventType::RecheckAnswer => "复核意见",
        }
    }
}

/// How long after the time it gives an entry may be made before it counts as entered
/// afterwards (补录): two days. A form dates an earlier day from its start, so an entry
/// made on the day itself or the next (the evening's or next morning's notes of a day's
/// visits) is timely, and one made any later is marked.
pub const LATE_ENTRY_MS: u64 = 2 * 24 * 60 * 60 * 1_000;

impl Event {
    /// The entry as pages and the API show it: a party correction's ID number masked, as
    /// views hold it (only the printed application and agreement name it in full).
    pub fn masked(mut self) -> Event {
        if let Body::Amend(Amend {
            change: Change::Party(fix),
            ..
        }) = &mut self.body
            && let Some(details) = &mut fix.party.details
        {
            details.id_number = details.id_masked();
        }
        self
    }

    /// Whether the entry was made well after the time it gives for what happened (补录):
    /// its clock stamp is more than [`LATE_ENTRY_MS`] after `at_ms`. A ledger copied in
    /// afterwards shows so wherever it appears, so a backdated date cannot pass for a
    /// timely one.
    pub fn entered_late(&self) -> bool {
        self.hlc.wall_ms > self.at_ms.saturating_add(LATE_ENTRY_MS)
    }
}

/// What a form field of an event takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// One line of text.
    Line,
    /// Several lines of text.
    Text,
    /// Yes or no.
    Flag,
    /// A whole number.
    Number,
    /// One of a coded list (the agreement's form, the referral's level).
    Choice,
}

/// One field of an event's form: its name in the event's JSON form, what it takes, and
/// whether [`Body::check`] refuses the event without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormField {
    /// The field's name in the event's JSON form (`{"type": …, name: value}`).
    pub name: &'static str,
    /// What it takes.
    pub kind: FieldKind,
    /// Whether the event is refused without it.
    pub required: bool,
}

impl EventType {
    /// The fields a person fills in to record an event of this type, in the order a form
    /// shows them (`Intake` and `Amend` have forms of their own and list none here).
    pub fn form_fields(self) -> &'static [FormField] {
        const fn f(name: &'static str, kind: FieldKind, required: bool) -> FormField {
            FormField {
                name,
                kind,
                required,
            }
        }
        use FieldKind::*;
        const NOTE: FormField = f("note", Text, false);
        const NOTE_REQUIRED: FormField = f("note", Text, true);
        const COURT: FormField = f("court", Line, true);
        const REASON: FormField = f("reason", Text, true);
        const ASSIGN: &[FormField] = &[f("to", Line, true), NOTE];
        const SESSION: &[FormField] = &[f("place", Line, false), NOTE_REQUIRED];
        const AGREEMENT: &[FormField] = &[
            f("form", Choice, true),
            f("terms", Text, true),
            f("seek_confirmation", Flag, false),
        ];
        const PROTECTION: &[FormField] = &[COURT, f("urgent", Flag, false), NOTE];
        const RESULT: &[FormField] = &[f("granted", Flag, false), NOTE];
        const REFER: &[FormField] = &[f("level", Choice, true), f("to", Line, true), REASON];
        const EXTEND: &[FormField] = &[f("days", Number, true), REASON];
        const RATING: &[FormField] = &[f("rating", Number, true), NOTE];
        const REVIEW: &[FormField] = &[f("outcome", Choice, false), NOTE_REQUIRED];
        match self {
            EventType::Intake | EventType::Amend => &[],
            EventType::Accept
            | EventType::Resolve
            | EventType::FollowUp
            | EventType::Close
            | EventType::ReexamRequest
            | EventType::Receive
            | EventType::RecheckRequest => &[NOTE],
            EventType::NotAccept
            | EventType::Fail
            | EventType::Reopen
            | EventType::Reply
            | EventType::ReexamAnswer
            | EventType::RecheckAnswer => &[NOTE_REQUIRED],
            EventType::Review => REVIEW,
            EventType::Assign => ASSIGN,
            EventType::Session => SESSION,
            EventType::Agreement => AGREEMENT,
            EventType::JudicialRequest => &[COURT, NOTE],
            EventType::ProtectionRequest => PROTECTION,
            EventType::JudicialResult | EventType::ProtectionResult => RESULT,
            EventType::Refer => REFER,
            EventType::Extend => EXTEND,
            EventType::Satisfaction => RATING,
        }
    }
}

impl Body {
    /// An event of type `ty` with every field filled in as its form allows, to ask the
    /// fold whether a step may be taken now ([`crate::fold::Folder::next_steps`]).
    /// `Intake` and `Amend` are not steps a form offers: `None`.
    pub fn blank(ty: EventType) -> Option<Body> {
        let note = Note {
            note: "-".to_string(),
        };
        Some(match ty {
            EventType::Intake | EventType::Amend => return None,
            EventType::Accept => Body::Accept(Acceptance {
                note: note.note,
                number: None,
            }),
            EventType::Receive => Body::Receive(Acceptance {
                note: note.note,
                number: None,
            }),
            EventType::RecheckRequest => Body::RecheckRequest(note),
            EventType::RecheckAnswer => Body::RecheckAnswer(note),
            EventType::NotAccept => Body::NotAccept(note),
            EventType::Assign => Body::Assign(Assign {
                to: StaffId::from_str_unchecked("staff"),
                note: String::new(),
            }),
            EventType::Session => Body::Session(Session {
                place: String::new(),
                note: note.note,
            }),
            EventType::Agreement => Body::Agreement(Agreement {
                form: AgreementForm::Written,
                terms: note.note,
                seek_confirmation: false,
            }),
            EventType::JudicialRequest => Body::JudicialRequest(Court {
                court: note.note,
                note: String::new(),
            }),
            EventType::JudicialResult => Body::JudicialResult(Outcome {
                granted: true,
                note: String::new(),
            }),
            EventType::ProtectionRequest => Body::ProtectionRequest(ProtectionRequest {
                court: note.note,
                urgent: false,
                note: String::new(),
            }),
            EventType::ProtectionResult => Body::ProtectionResult(Outcome {
                granted: true,
                note: String::new(),
            }),
            EventType::Refer => Body::Refer(Refer {
                level: ReferLevel::Township,
                to: note.note.clone(),
                reason: note.note,
            }),
            EventType::Resolve => Body::Resolve(note),
            EventType::Fail => Body::Fail(note),
            EventType::Extend => Body::Extend(Extend {
                days: 1,
                reason: note.note,
            }),
            EventType::Reply => Body::Reply(note),
            EventType::ReexamRequest => Body::ReexamRequest(note),
            EventType::ReexamAnswer => Body::ReexamAnswer(note),
            EventType::FollowUp => Body::FollowUp(note),
            EventType::Satisfaction => Body::Satisfaction(Satisfaction {
                rating: 5,
                note: String::new(),
            }),
            EventType::Close => Body::Close(note),
            EventType::Reopen => Body::Reopen(note),
            EventType::Review => Body::Review(Review {
                outcome: None,
                note: note.note,
            }),
        })
    }

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
            Body::Receive(_) => EventType::Receive,
            Body::RecheckRequest(_) => EventType::RecheckRequest,
            Body::RecheckAnswer(_) => EventType::RecheckAnswer,
        }
    }

    /// Checks the payload's own fields (lengths, ranges). Workflow rules that depend on the
    /// record's state are checked by the fold.
    pub fn check(&self) -> Result<(), FieldError> {
        let note = |field, text: &str| check_text(field, text, NOTE_CHARS_MAX, false);
        let required = |field, text: &str| check_text(field, text, NOTE_CHARS_MAX, true);
        match self {
            Body::Intake(i) => {
                if let Some(matter) = &i.matter {
                    matter.check()?;
                }
                note("note", &i.note)
            }
            Body::Accept(a) | Body::Receive(a) => {
                if let Some(n) = a.number
                    && n.seq == 0
                {
                    return Err(FieldError::Range {
                        field: "case number",
                        value: 0,
                        min: 1,
                        max: i64::from(u32::MAX),
                    });
                }
                note("note", &a.note)
            }
            Body::Resolve(n)
            | Body::FollowUp(n)
            | Body::Close(n)
            | Body::ReexamRequest(n)
            | Body::RecheckRequest(n) => note("note", &n.note),
            Body::NotAccept(n) | Body::Fail(n) | Body::Reopen(n) => required("reason", &n.note),
            Body::Reply(n) | Body::ReexamAnswer(n) | Body::RecheckAnswer(n) => {
                required("reply", &n.note)
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_code_is_its_serde_name_and_every_step_has_a_blank_the_body_check_accepts() {
        for ty in crate::workflow::ALL_EVENT_TYPES {
            assert_eq!(
                serde_json::to_value(ty).ok(),
                Some(serde_json::Value::String(ty.code().into()))
            );
            if let Some(body) = Body::blank(*ty) {
                assert_eq!(body.event_type(), *ty);
                assert_eq!(body.check(), Ok(()), "{ty:?}");
                // The form's fields are the body's fields.
                let json = serde_json::to_value(&body).unwrap_or_default();
                let mut names: Vec<&str> = json
                    .as_object()
                    .map(|m| {
                        m.keys()
                            .map(String::as_str)
                            .filter(|k| *k != "type")
                            .collect()
                    })
                    .unwrap_or_default();
                let mut fields: Vec<&str> = ty.form_fields().iter().map(|f| f.name).collect();
                names.sort_unstable();
                fields.sort_unstable();
                assert_eq!(names, fields, "{ty:?}");
            }
        }
    }
}
