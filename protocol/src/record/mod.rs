//! A record (a dispute case or a petition) as one Automerge document.
//!
//! Layout of the document root:
//!
//! | key | value |
//! |---|---|
//! | `schema` | schema version, an unsigned integer |
//! | `kind` | `"case"` or `"petition"` |
//! | `id` | the record id |
//! | `jurisdictions` | list of village codes; written once at creation |
//! | `created_ms` | when the matter was received |
//! | `category`, `risk`, `restricted`, `channel` | the values at intake; amendments are events |
//! | `parties` | map from party id to party; entries are added, never overwritten |
//! | `summary` | Automerge Text, as taken in; corrections are amend events |
//! | `events` | the append-only event list |
//!
//! Every change a person makes after intake is an event, so nothing in a person's record is
//! decided by last-writer-wins and nothing is overwritten: the change rules (`rules`)
//! refuse any change that does more than append one event (and add the party it names).
//! Each command is one Automerge change, stamped with the caller's `now`.
//!
//! The mapping uses autosurgeon, except for the event list: events are hydrated one by one
//! so that one unreadable entry written by a faulty node is counted (and flags the record
//! for review) instead of making the whole record unreadable.

use std::collections::BTreeMap;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, Value};
use autosurgeon::{Hydrate, Reconcile};
use rand_core::RngCore;

use crate::deadline::Deadlines;
use crate::division::VillageCode;
use crate::event::{Amend, Body, Change, Event, Note, PartyFix};
use crate::fold::{Fold, Folder, Refusal, Start};
use crate::hlc;
use crate::id::{CaseId, EventId, NodeId, PartyId, PetitionId, RecordId, StaffId};
use crate::model::{
    Category, Channel, FieldError, Kind, Matter, Party, Risk, check_text,
    limits::{
        AFTER_MAX, EVENTS_MAX, JURISDICTIONS_MAX, NOTE_CHARS_MAX, PARTIES_MAX, SUMMARY_CHARS_MAX,
    },
};
use crate::rules::RuleError;
use crate::view::View;

mod check;
mod commands;

pub(crate) use check::{check_created, check_entry};
pub(crate) use commands::commit_options;
pub use commands::{Author, Chosen, Command, Ctx, NewRecord, Writer};

/// The schema version this code writes and reads.
///
/// | version | adds |
/// |---|---|
/// | 1 | the layout above |
/// | 2 | a party's particulars (`Party::details`), the matter's particulars at intake (`Intake::matter`), a case's number on acceptance (`Acceptance::number`) |
///
/// A record's `schema` is the version its first change was written in. Version 2's fields
/// are optional and absent from a record that does not use them, so a version 1 record is a
/// version 2 record as it stands; a node writes them only when the county's settings allow
/// version 2 (`cert::writable_schema`), once every office reads it.
pub const SCHEMA_VERSION: u64 = 2;

/// How far in the future an event's business time may lie, against the caller's `now`:
/// a few minutes of clock difference between the office PC and a phone.
pub const FUTURE_TOLERANCE_MS: u64 = 10 * 60 * 1_000;

/// Why a document could not be read as a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    /// The bytes are not an Automerge document.
    #[error("not a readable Automerge document: {0}")]
    Bytes(String),
    /// The document was written by a newer (or unknown) schema.
    #[error(
        "record schema version {found} is not supported (this build reads version {supported})"
    )]
    Schema {
        /// The version found.
        found: u64,
        /// The version this build reads.
        supported: u64,
    },
    /// A field is missing or of the wrong type.
    #[error("the document is not a guihe record: {0}")]
    Shape(String),
    /// More events than any record may hold.
    #[error("the record holds {0} events, more than the bound of {EVENTS_MAX}")]
    TooManyEvents(usize),
    /// Two different records were to be merged.
    #[error("cannot merge record {theirs} into record {ours}")]
    Mismatch {
        /// This record.
        ours: RecordId,
        /// The other record.
        theirs: RecordId,
    },
    /// Automerge refused an operation.
    #[error("automerge: {0}")]
    Automerge(String),
}

impl From<automerge::AutomergeError> for DocError {
    fn from(e: automerge::AutomergeError) -> Self {
        DocError::Automerge(e.to_string())
    }
}

impl From<autosurgeon::HydrateError> for DocError {
    fn from(e: autosurgeon::HydrateError) -> Self {
        DocError::Shape(e.to_string())
    }
}

/// Why a command was not carried out. Nothing is written when a command fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// A field of the command is out of bounds.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The workflow rules refuse the event.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The event's time lies in the future.
    #[error("the event time {at_ms} is later than now ({now_ms})")]
    InFuture {
        /// The time given.
        at_ms: u64,
        /// The caller's now.
        now_ms: u64,
    },
    /// The event's time lies before the record was received.
    #[error("the event time {at_ms} is before the record was received ({received_ms})")]
    BeforeReceived {
        /// The time given.
        at_ms: u64,
        /// When the record was received.
        received_ms: u64,
    },
    /// A record needs at least one village.
    #[error("a record belongs to at least one village")]
    NoJurisdiction,
    /// Too many villages.
    #[error("a record belongs to at most {JURISDICTIONS_MAX} villages")]
    TooManyJurisdictions,
    /// The same village twice.
    #[error("village {0} is listed twice")]
    DuplicateJurisdiction(VillageCode),
    /// Too many parties.
    #[error("a record has at most {PARTIES_MAX} parties")]
    TooManyParties,
    /// The record is full.
    #[error("the record already holds {EVENTS_MAX} events")]
    TooManyEvents,
    /// What the command writes needs a newer record schema than the county's settings allow:
    /// offices not yet upgraded could not read it.
    #[error(
        "this needs record schema {needed}, and the county's settings allow schema {allowed} so far"
    )]
    SchemaNotAllowed {
        /// The schema the command needs.
        needed: u64,
        /// The newest the settings allow.
        allowed: u64,
    },
    /// A petition needs the channel it arrived by; a case has none.
    #[error("a petition needs a channel (letter, visit, phone, online) and a case has none")]
    Channel,
    /// The document could not be read or written.
    #[error(transparent)]
    Document(#[from] DocError),
    /// The command wrote a change that the change rules refuse. This is a bug in the
    /// command, caught before anything was stored: every peer would refuse the change.
    #[error("the command broke the change rules: {0}")]
    Rules(RuleError),
    /// The node's clock is outside its certificate's validity: the PC's date is wrong, and
    /// every peer would refuse what it wrote.
    #[error(
        "本机时钟显示 {now}，不在本节点证书的有效期（{from} 至 {to}）内：请校正电脑的日期和时间后再录入。This PC's clock says {now}, outside its certificate's validity ({from} to {to}): set the date and time right, then enter it again.",
        now = crate::stats::date_of(*now_ms),
        from = crate::stats::date_of(*not_before_ms),
        to = crate::stats::date_of(*not_after_ms)
    )]
    ClockOutsideCertificate {
        /// The node's clock.
        now_ms: u64,
        /// The certificate's start.
        not_before_ms: u64,
        /// The certificate's end.
        not_after_ms: u64,
    },
    /// The node's clock is earlier than its own latest entry by more than the tolerance:
    /// the clock was set back, and entries would sort before what was already recorded.
    #[error(
        "本机时钟显示 {now}，早于本机上一次录入的时间 {last}：请校正电脑的日期和时间。若上次录入时时钟偏快、现已校正，请运营人员执行 guihe clock --data <数据目录> --accept。This PC's clock says {now}, before this node's last entry ({last}): set the date and time right; if the clock was fast then and is right now, the operator runs guihe clock --accept.",
        now = crate::stats::date_of(*now_ms),
        last = crate::stats::date_of(*last_ms)
    )]
    ClockBehind {
        /// The node's clock.
        now_ms: u64,
        /// The node's latest entry.
        last_ms: u64,
    },
    /// An office above refused a change this node made to the record (`quarantine`):
    /// nothing this node writes to it can reach that office any more.
    #[error(
        "此记录的一项修改已被上级节点拒收（{zh}），本机此后对该记录的修改都无法同步，因此不能再修改。请联系乡镇（街道）调解办公室，由上级重新登记需要补充的内容。A change this office made to the record was refused by the office above ({en}); nothing more this office writes to it could reach them, so it can no longer be changed here. Ask the township office to record what is needed.",
        zh = crate::quarantine::label(code).0,
        en = crate::quarantine::label(code).1
    )]
    RefusedUpstream {
        /// Why the office above refused the change.
        code: String,
    },
    /// This node's certificate may not write a record of these villages: every office
    /// would refuse the change.
    #[error(
        "本机（{division}）无权修改属于 {places} 的记录：请由有权限的调解办公室登记。This node ({division}) may not write a record of {places}: the office that may should record it.",
        places = jurisdictions.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    NotAuthorised {
        /// The node's division.
        division: crate::division::Division,
        /// The record's villages.
        jurisdictions: Vec<VillageCode>,
    },
}

/// The Automerge actor id of a node: its 32-byte public key followed by an 8-byte
/// incarnation number that changes whenever the node's store is rebuilt, so a node restored
/// from its peers never reuses one of its own sequence numbers.
pub fn actor_id(node: NodeId, incarnation: u64) -> ActorId {
    let mut bytes = Vec::with_capacity(40);
    bytes.extend_from_slice(node.as_bytes());
    bytes.extend_from_slice(&incarnation.to_be_bytes());
    ActorId::from(bytes)
}

/// The node and store incarnation an Automerge actor id names (see [`actor_id`]); `None`
/// for an actor no node's writer makes.
pub fn actor_parts(actor: &ActorId) -> Option<(NodeId, u64)> {
    let bytes = actor.to_bytes();
    let key: [u8; 32] = bytes.get(..32)?.try_into().ok()?;
    let incarnation: [u8; 8] = bytes.get(32..40)?.try_into().ok()?;
    Some((NodeId::from_bytes(key), u64::from_be_bytes(incarnation)))
}

/// The fields of a record's header that say what it is, read on their own when a record
/// is loaded (the whole [`Header`] is read with its events).
#[derive(Debug, Clone, Hydrate)]
struct Identity {
    kind: Kind,
    id: RecordId,
    jurisdictions: Vec<VillageCode>,
    created_ms: u64,
}

/// The header as the fold and the view read it (see [`Record::whole`]).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct HeaderRead {
    created_ms: u64,
    category: Category,
    risk: Risk,
    restricted: bool,
    channel: Option<Channel>,
    parties: BTreeMap<String, Party>,
    summary: String,
}

/// The header read with serde from the root as Automerge's `hydrate` gives it (the event
/// list taken out); `None` if it does not read so.
fn header_hydrated(root: &automerge::hydrate::Map) -> Option<HeaderRead> {
    let json: Result<serde_json::Map<String, serde_json::Value>, RuleError> = root
        .iter()
        .map(|(k, v)| Ok((k.clone(), crate::rules::hydrated_json(&v.value, 0)?)))
        .collect();
    serde_json::from_value(serde_json::Value::Object(json.ok()?)).ok()
}

impl From<Header> for HeaderRead {
    fn from(h: Header) -> HeaderRead {
        HeaderRead {
            created_ms: h.created_ms,
            category: h.category,
            risk: h.risk,
            restricted: h.restricted,
            channel: h.channel,
            parties: h.parties,
            summary: h.summary.as_str().to_string(),
        }
    }
}

#[derive(Debug, Clone, Reconcile, Hydrate)]
struct Header {
    schema: u64,
    kind: Kind,
    id: RecordId,
    jurisdictions: Vec<VillageCode>,
    created_ms: u64,
    category: Category,
    risk: Risk,
    restricted: bool,
    channel: Option<Channel>,
    parties: BTreeMap<String, Party>,
    summary: autosurgeon::Text,
}

impl Header {
    /// The record's root as its first change stores it, with `intake` its one event, as
    /// Automerge's hydrate value: the form autosurgeon writes the header in, which the
    /// change rules read (`check_created`).
    fn stored(&self, intake: &Event) -> Result<automerge::hydrate::Map, RuleError> {
        use automerge::hydrate::Value as H;
        fn json<T: serde::Serialize>(v: &T) -> Result<H, RuleError> {
            serde_json::to_value(v)
                .map_err(|e| RuleError::Content(e.to_string()))
                .and_then(|v| crate::rules::json_value(v, 0))
        }
        let parties = self
            .parties
            .iter()
            .map(|(k, p)| Ok((k.clone(), crate::rules::party_value(p)?)))
            .collect::<Result<std::collections::HashMap<String, H>, RuleError>>()?;
        let root: std::collections::HashMap<String, H> = [
            ("schema", json(&self.schema)?),
            ("kind", json(&self.kind)?),
            ("id", json(&self.id)?),
            ("jurisdictions", json(&self.jurisdictions)?),
            ("created_ms", json(&self.created_ms)?),
            ("category", json(&self.category)?),
            ("risk", json(&self.risk)?),
            ("restricted", json(&self.restricted)?),
            ("channel", json(&self.channel)?),
            ("parties", H::Map(parties.into())),
            (
                "summary",
                H::text(
                    automerge::TextEncoding::platform_default(),
                    self.summary.as_str(),
                ),
            ),
            ("events", H::from(vec![crate::rules::event_value(intake)?])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Ok(root.into())
    }
}

/// One record and its Automerge document.
#[derive(Debug, Clone)]
pub struct Record {
    doc: Automerge,
    kind: Kind,
    id: RecordId,
    jurisdictions: Vec<VillageCode>,
    received_ms: u64,
}

/// A record's header and events, read once and folded.
struct Folded<'r> {
    folder: Folder<'r>,
    events: Vec<Event>,
    header: HeaderRead,
    malformed: u32,
}

/// The events of a record as read from the document.
#[derive(Debug, Clone)]
pub struct Events {
    /// Readable events, in list order.
    pub events: Vec<Event>,
    /// Entries that could not be read.
    pub malformed: u32,
}

impl Record {
    /// Reads a record from saved bytes.
    pub fn load(bytes: &[u8]) -> Result<Record, DocError> {
        let doc = Automerge::load(bytes).map_err(|e| DocError::Bytes(e.to_string()))?;
        Record::from_doc(doc)
    }

    /// Wraps an Automerge document, checking that it is a record this build can read.
    pub fn from_doc(doc: Automerge) -> Result<Record, DocError> {
        match doc.get(ROOT, "schema")? {
            Some((Value::Scalar(s), _)) => match s.as_u64() {
                Some(1..=SCHEMA_VERSION) => {}
                Some(found) => {
                    return Err(DocError::Schema {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                None => return Err(DocError::Shape("schema is not a number".into())),
            },
            _ => return Err(DocError::Shape("no schema version".into())),
        }
        // (What it is, not what it holds: the parties and the summary are read when asked.)
        let header: Identity = autosurgeon::hydrate(&doc)?;
        if header.jurisdictions.is_empty() {
            return Err(DocError::Shape("no jurisdiction".into()));
        }
        let kind_matches = matches!(
            (header.kind, header.id),
            (Kind::Case, RecordId::Case(_)) | (Kind::Petition, RecordId::Petition(_))
        );
        if !kind_matches {
            return Err(DocError::Shape("kind and id disagree".into()));
        }
        let record = Record {
            doc,
            kind: header.kind,
            id: header.id,
            jurisdictions: header.jurisdictions,
            received_ms: header.created_ms,
        };
        let (_, len) = record.events_obj()?;
        if len > EVENTS_MAX {
            return Err(DocError::TooManyEvents(len));
        }
        Ok(record)
    }

    /// The whole document, compacted.
    pub fn save(&self) -> Vec<u8> {
        self.doc.save()
    }

    /// The Automerge document.
    pub fn doc(&self) -> &Automerge {
        &self.doc
    }

    /// The record id.
    pub fn id(&self) -> RecordId {
        self.id
    }

    /// Case or petition.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The villages the record belongs to.
    pub fn jurisdictions(&self) -> &[VillageCode] {
        &self.jurisdictions
    }

    /// The heads of the document's change graph.
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Merges another replica of the same record into this one.
    pub fn merge(&mut self, other: &Record) -> Result<(), DocError> {
        if other.id != self.id {
            return Err(DocError::Mismatch {
                ours: self.id,
                theirs: other.id,
            });
        }
        let mut theirs = other.doc.clone();
        self.doc.merge(&mut theirs)?;
        let (_, len) = self.events_obj()?;
        if len > EVENTS_MAX {
            return Err(DocError::TooManyEvents(len));
        }
        Ok(())
    }

    /// A copy of this record that writes as another actor (another node, or a test replica).
    pub fn fork(&self, actor: ActorId) -> Record {
        let mut copy = self.clone();
        copy.doc = self.doc.fork().with_actor(actor);
        copy
    }

    fn events_obj(&self) -> Result<(ObjId, usize), DocError> {
        match self.doc.get(ROOT, "events")? {
            Some((Value::Object(ObjType::List), obj)) => {
                let len = self.doc.length(&obj);
                Ok((obj, len))
            }
            _ => Err(DocError::Shape("no event list".into())),
        }
    }

    fn header(&self) -> Result<Header, DocError> {
        Ok(autosurgeon::hydrate(&self.doc)?)
    }

    /// The summary: as last corrected by an amend event (in fold order), else as taken
    /// in at intake.
    pub fn summary(&self) -> Result<String, DocError> {
        let mut events = self.events()?.events;
        crate::fold::order(&mut events);
        let corrected = events.into_iter().rev().find_map(|e| match e.body {
            Body::Amend(Amend {
                change: Change::Summary(Note { note }),
                ..
            }) if !note.is_empty() => Some(note),
            _ => None,
        });
        match corrected {
            Some(text) => Ok(text),
            None => {
                let text: autosurgeon::Text =
                    autosurgeon::hydrate_prop(&self.doc, ROOT, "summary")?;
                Ok(text.as_str().to_string())
            }
        }
    }

    /// The parties in the record's party map (before corrections; see the fold).
    pub fn parties(&self) -> Result<BTreeMap<PartyId, Party>, DocError> {
        parse_parties(self.header()?.parties)
    }

    /// The events, in list order; unreadable entries are counted.
    ///
    /// The list is read from the document in one pass (Automerge's `hydrate`) and each
    /// event as the change rules read a new one (`rules::event_hydrated`); an event that
    /// does not read so (written by an earlier version, say) is read field by field
    /// through autosurgeon, as every event was before: the same events either way.
    pub fn events(&self) -> Result<Events, DocError> {
        let (obj, _) = self.events_obj()?;
        match ReadDoc::hydrate(&self.doc, &obj, None) {
            Ok(automerge::hydrate::Value::List(list)) => self.events_hydrated(&list, Some(obj)),
            _ => self.events_by_field(),
        }
    }

    /// The events of the event list as Automerge's `hydrate` gave it, each read as the
    /// change rules read a new one, or else field by field through autosurgeon (`obj`: the
    /// list, looked up when first needed).
    fn events_hydrated(
        &self,
        list: &automerge::hydrate::List,
        mut obj: Option<ObjId>,
    ) -> Result<Events, DocError> {
        let mut out = Events {
            events: Vec::with_capacity(list.len().min(EVENTS_MAX)),
            malformed: 0,
        };
        for (i, item) in list.iter().take(EVENTS_MAX).enumerate() {
            let event = match crate::rules::event_hydrated(&item.value) {
                Some(e) => Some(e),
                None => {
                    if obj.is_none() {
                        obj = Some(self.events_obj()?.0);
                    }
                    obj.as_ref().and_then(|o| self.event_by_field(o, i))
                }
            };
            match event {
                Some(e) => out.events.push(e),
                None => out.malformed += 1,
            }
        }
        Ok(out)
    }

    /// The event at `i` of the event list `obj`, read field by field through autosurgeon.
    fn event_by_field(&self, obj: &ObjId, i: usize) -> Option<Event> {
        autosurgeon::hydrate_prop::<_, Event, _, _>(&self.doc, obj, i).ok()
    }

    /// The events read field by field through autosurgeon.
    fn events_by_field(&self) -> Result<Events, DocError> {
        let (obj, len) = self.events_obj()?;
        let mut out = Events {
            events: Vec::with_capacity(len),
            malformed: 0,
        };
        for i in 0..len.min(EVENTS_MAX) {
            match self.event_by_field(&obj, i) {
                Some(e) => out.events.push(e),
                None => out.malformed += 1,
            }
        }
        Ok(out)
    }

    /// The header and the events, read in one pass over the document (Automerge's
    /// `hydrate` of the root): the header with serde from its JSON form, each event as
    /// [`Record::events`] reads it. Whatever does not read so is read through autosurgeon,
    /// as before: the same header and events either way.
    fn whole(&self) -> Result<(HeaderRead, Events), DocError> {
        use automerge::hydrate::Value as H;
        let Ok(H::Map(mut root)) = ReadDoc::hydrate(&self.doc, &ROOT, None) else {
            return Ok((self.header()?.into(), self.events()?));
        };
        let list = match root.remove("events").map(|v| v.value) {
            Some(H::List(list)) => list,
            _ => return Ok((self.header()?.into(), self.events()?)),
        };
        let header = match header_hydrated(&root) {
            Some(header) => header,
            None => self.header()?.into(),
        };
        Ok((header, self.events_hydrated(&list, None)?))
    }

    /// Reads the header and the events once and folds them. Returns the folder (for
    /// command validation), the events in fold order, the header and the number of
    /// unreadable entries.
    fn folder<'r>(&self, rules: &'r Deadlines) -> Result<Folded<'r>, DocError> {
        let (header, read) = self.whole()?;
        let start = Start {
            kind: self.kind,
            received_ms: header.created_ms,
            category: header.category,
            risk: header.risk,
            restricted: header.restricted,
            parties: parse_parties(header.parties.clone())?,
        };
        let Events {
            mut events,
            malformed,
        } = read;
        crate::fold::order(&mut events);
        let mut folder = Folder::new(start, rules);
        for e in &events {
            folder.push(e);
        }
        Ok(Folded {
            folder,
            events,
            header,
            malformed,
        })
    }

    /// Folds the events into status, deadlines and review flags.
    pub fn fold(&self, rules: &Deadlines) -> Result<Fold, DocError> {
        let folded = self.folder(rules)?;
        let mut fold = folded.folder.finish();
        fold.malformed = folded.malformed;
        Ok(fold)
    }

    /// The steps a person at an office of `division`, writing record schema `schema` (what
    /// the county's settings allow), may record next at `now_ms` (see
    /// [`crate::fold::Folder::next_steps`], [`crate::workflow::may_receive`] and
    /// [`crate::workflow::schema_of`]).
    pub fn next_steps(
        &self,
        rules: &Deadlines,
        now_ms: u64,
        division: crate::division::Division,
        schema: u64,
    ) -> Result<Vec<crate::event::EventType>, DocError> {
        let folder = self.folder(rules)?.folder;
        let mut steps = folder.next_steps(now_ms);
        steps.retain(|ty| {
            (*ty != crate::event::EventType::Receive
                || crate::workflow::may_receive(folder.referral(), division))
                && crate::workflow::schema_of(self.kind, *ty) <= schema
        });
        Ok(steps)
    }

    /// The read model for lists and dashboards.
    pub fn view(&self, rules: &Deadlines) -> Result<View, DocError> {
        let Folded {
            folder,
            header,
            malformed,
            ..
        } = self.folder(rules)?;
        let mut fold = folder.finish();
        fold.malformed = malformed;
        let summary = fold
            .summary
            .clone()
            .unwrap_or_else(|| header.summary.clone());
        View::build(self.id, &self.jurisdictions, header.channel, summary, fold)
    }
}

/// The id of the record a document holds, read without hydrating anything else; `None`
/// until the document holds its first change.
pub fn id_of(doc: &Automerge) -> Option<RecordId> {
    autosurgeon::hydrate_prop(doc, ROOT, "id").ok()
}

/// The divisions the record a document holds belongs to (its villages, or the owner of a
/// division's own record), read without hydrating anything else; `None` until the
/// document holds its first change.
pub fn jurisdictions_of(doc: &Automerge) -> Option<Vec<crate::division::Division>> {
    autosurgeon::hydrate_prop(doc, ROOT, "jurisdictions").ok()
}

fn parse_parties(raw: BTreeMap<String, Party>) -> Result<BTreeMap<PartyId, Party>, DocError> {
    raw.into_iter()
        .map(|(k, v)| {
            k.parse::<PartyId>()
                .map(|id| (id, v))
                .map_err(|e| DocError::Shape(format!("party key: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events read in one pass are the events read field by field, for every kind of
    /// entry a village's year writes; and they are read in one pass, not by the fallback.
    #[test]
    fn events_read_in_one_pass_are_the_events_read_field_by_field() {
        use rand_core::SeedableRng;
        let (changes, _) = crate::workload::village_history(
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(17),
            200,
            1_772_323_200_000,
        )
        .unwrap();
        let mut by_record: BTreeMap<RecordId, Vec<crate::store::StoredChange>> = BTreeMap::new();
        for c in changes {
            by_record.entry(c.signed.record).or_default().push(c);
        }
        let mut events = 0;
        for (id, changes) in by_record {
            let (doc, _) = crate::ingest::rebuild(id, &changes);
            let record = Record::from_doc(doc).unwrap();
            let (fast, slow) = (record.events().unwrap(), record.events_by_field().unwrap());
            assert_eq!(fast.events, slow.events, "{id}");
            assert_eq!((fast.malformed, slow.malformed), (0, 0));
            let (obj, _) = record.events_obj().unwrap();
            let Ok(automerge::hydrate::Value::List(list)) =
                ReadDoc::hydrate(&record.doc, &obj, None)
            else {
                panic!("an event list");
            };
            assert!(
                list.iter()
                    .all(|e| crate::rules::event_hydrated(&e.value).is_some())
            );
            events += fast.events.len();
        }
        assert!(events > 400, "{events} events");
    }

    /// Schema 2's optional fields (a party's `details`, an intake's `matter`, an
    /// acceptance's `number`, an event's `by`) are left out when there are none, where
    /// autosurgeon writes a null or an empty text: both read back as none. This takes
    /// autosurgeon's nulls and empty texts for them out of `value`.
    fn without_absent_optionals(value: automerge::hydrate::Value) -> automerge::hydrate::Value {
        use automerge::hydrate::Value as H;
        match value {
            H::Map(map) => {
                let kept: std::collections::HashMap<String, H> = map
                    .iter()
                    .filter(|(k, v)| {
                        let none = match (k.as_str(), &v.value) {
                            (
                                "details" | "matter" | "number",
                                H::Scalar(automerge::ScalarValue::Null),
                            ) => true,
                            ("by", H::Scalar(automerge::ScalarValue::Str(s))) => s.is_empty(),
                            _ => false,
                        };
                        !none
                    })
                    .map(|(k, v)| (k.to_string(), without_absent_optionals(v.value.clone())))
                    .collect();
                H::Map(kept.into())
            }
            H::List(list) => H::from(
                list.iter()
                    .map(|v| without_absent_optionals(v.value.clone()))
                    .collect::<Vec<_>>(),
            ),
            other => other,
        }
    }

    /// A command writes an event and a party in one batch (`rules::event_value`,
    /// `party_value`): what it stores is exactly what autosurgeon stored before, for every
    /// event and party of a village's year, so readers of every version read it alike.
    #[test]
    fn events_and_parties_written_in_one_batch_are_stored_as_autosurgeon_stored_them() {
        use automerge::transaction::Transactable;
        use rand_core::SeedableRng;
        let (changes, _) = crate::workload::village_history(
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(19),
            200,
            1_772_323_200_000,
        )
        .unwrap();
        let mut by_record: BTreeMap<RecordId, Vec<crate::store::StoredChange>> = BTreeMap::new();
        for c in changes {
            by_record.entry(c.signed.record).or_default().push(c);
        }
        let written = |batch: bool,
                       write: &dyn Fn(
            &mut automerge::transaction::Transaction<'_>,
            ObjId,
            bool,
        )| {
            let mut doc = Automerge::new();
            let mut tx = doc.transaction();
            let list = tx.put_object(ROOT, "l", ObjType::List).unwrap();
            write(&mut tx, list.clone(), batch);
            tx.commit();
            without_absent_optionals(ReadDoc::hydrate(&doc, &list, None).unwrap())
        };
        let (mut events, mut parties) = (0, 0);
        for (id, changes) in by_record {
            let (doc, _) = crate::ingest::rebuild(id, &changes);
            let record = Record::from_doc(doc).unwrap();
            for event in record.events().unwrap().events {
                let write =
                    |tx: &mut automerge::transaction::Transaction<'_>, list: ObjId, batch: bool| {
                        if batch {
                            let value = crate::rules::event_value(&event).unwrap();
                            tx.batch_create_object(&list, 0, &value, true).unwrap();
                        } else {
                            autosurgeon::reconcile_insert(tx, list, 0, &event).unwrap();
                        }
                    };
                assert_eq!(written(true, &write), written(false, &write), "{event:?}");
                events += 1;
            }
            for party in record.parties().unwrap().values() {
                let write =
                    |tx: &mut automerge::transaction::Transaction<'_>, list: ObjId, batch: bool| {
                        if batch {
                            let value = crate::rules::party_value(party).unwrap();
                            tx.batch_create_object(&list, 0, &value, true).unwrap();
                        } else {
                            autosurgeon::reconcile_insert(tx, list, 0, party).unwrap();
                        }
                    };
                assert_eq!(written(true, &write), written(false, &write), "{party:?}");
                parties += 1;
            }
        }
        assert!(
            events > 400 && parties > 200,
            "{events} events, {parties} parties"
        );
    }

    /// A new record is written in one batch (`Header::stored`): its document holds what
    /// autosurgeon wrote before, for every record of a village's year (cases and
    /// petitions).
    #[test]
    fn a_record_created_in_one_batch_is_stored_as_autosurgeon_stored_it() {
        use automerge::transaction::Transactable;
        use rand_core::SeedableRng;
        let (changes, _) = crate::workload::village_history(
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(23),
            200,
            1_772_323_200_000,
        )
        .unwrap();
        let mut kinds = BTreeMap::new();
        for c in changes.iter().filter(|c| c.deps.is_empty()) {
            let (doc, _) = crate::ingest::rebuild(c.signed.record, std::slice::from_ref(c));
            let record = Record::from_doc(doc).unwrap();
            let read = record.header().unwrap();
            // (A text read from a document is tied to it: written afresh.)
            let header = Header {
                summary: autosurgeon::Text::with_value(read.summary.as_str()),
                ..read
            };
            let [intake] = <[Event; 1]>::try_from(record.events().unwrap().events).unwrap();
            let mut old = Automerge::new();
            old.transact::<_, _, DocError>(|tx| {
                autosurgeon::reconcile(tx, &header).unwrap();
                let events = tx.put_object(ROOT, "events", ObjType::List)?;
                autosurgeon::reconcile_insert(tx, events, 0, &intake).unwrap();
                Ok(())
            })
            .unwrap();
            assert_eq!(
                ReadDoc::hydrate(record.doc(), &ROOT, None).unwrap(),
                without_absent_optionals(ReadDoc::hydrate(&old, &ROOT, None).unwrap()),
                "{}",
                record.id()
            );
            *kinds
                .entry((
                    record.kind(),
                    header.channel.is_some(),
                    header.parties.is_empty(),
                ))
                .or_insert(0) += 1;
        }
        assert!(
            kinds.len() == 2 && kinds.values().sum::<usize>() == 200,
            "{kinds:?}"
        );
    }

    /// The header and events read in one pass over the root are those read through
    /// autosurgeon, for every record of a village's year, and the header reads so (not by
    /// the fallback).
    #[test]
    fn the_header_and_events_read_in_one_pass_are_those_read_field_by_field() {
        use rand_core::SeedableRng;
        let (changes, _) = crate::workload::village_history(
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(29),
            150,
            1_772_323_200_000,
        )
        .unwrap();
        let mut by_record: BTreeMap<RecordId, Vec<crate::store::StoredChange>> = BTreeMap::new();
        for c in changes {
            by_record.entry(c.signed.record).or_default().push(c);
        }
        for (id, changes) in by_record {
            let (doc, _) = crate::ingest::rebuild(id, &changes);
            let record = Record::from_doc(doc).unwrap();
            let (header, events) = record.whole().unwrap();
            assert_eq!(header, HeaderRead::from(record.header().unwrap()), "{id}");
            assert_eq!(
                events.events,
                record.events_by_field().unwrap().events,
                "{id}"
            );
            let Ok(automerge::hydrate::Value::Map(mut root)) =
                ReadDoc::hydrate(record.doc(), &ROOT, None)
            else {
                panic!("a root");
            };
            root.remove("events");
            assert_eq!(header_hydrated(&root), Some(header), "{id}");
        }
    }
}
