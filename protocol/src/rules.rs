//! Change rules: what a signed change may do to a record.
//!
//! A signature proves who wrote a change. These rules decide whether the change is one a
//! valid command could have written, before it touches the record. They run on every path a
//! change takes into a document: sync sessions, bundles, rebuilding a document from its
//! changes, and (as an assertion) a node's own commands.
//!
//! Allowed, and nothing else:
//! - **The first change** (no dependencies, on an empty document) creates the record: the
//!   root fields of the layout (`record.rs`) and nothing more, of a schema this build
//!   knows, within the record's bounds, with exactly one intake event authored by the
//!   signer's node.
//! - **Every later change** inserts exactly one new event into the event list, anywhere
//!   (concurrent inserts land mid-list), and may add one party under a key the record does
//!   not hold yet, named by the event (an amend `party_added`). Its other operations write
//!   only into objects it makes itself: no operation on the root (so `id`, `kind`, `schema`,
//!   `jurisdictions`, `created_ms`, the intake values and `restricted` are written once),
//!   none on an existing event, party or the summary, no delete, and no overwrite of
//!   anything it did not write itself. The new event is authored by the signer's node,
//!   reads as an event, passes the event's own field checks, is stamped no earlier than
//!   the change was made, happened no earlier than the record was received, and leaves
//!   the record within its bounds.
//! - **Sequence**: a change's sequence number follows its actor's last change in the
//!   record, which it must descend from, and its operation numbers start above everything
//!   it depends on. Automerge assumes this; a change that breaks it could make Automerge
//!   panic or give two operations one id.
//!
//! A change is checked in two steps. [`read`] needs only the change and its signer: it
//! decodes the operations, reads the record or the event and party they write, and checks
//! everything that does not depend on the record. It is most of the work, so verification
//! runs it beside the signature checks, on every core. [`apply`] then checks the change
//! against the record's document and history (which objects it writes into, the sequence,
//! the bounds) and applies it.
//!
//! Everything Automerge does with a received change here runs with its panics caught: a
//! panic is a refusal like any other. After a refusal from [`apply`] the document may hold
//! part of the change, so the caller discards it and loads the record again.
//!
//! The rules know the schema version a record was created with; a record of a version this
//! build does not know is held, not refused (see [`RuleError::is_temporary`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::{
    ActorId, Automerge, Change, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value,
};

use crate::division::Division;
use crate::event::Event;
use crate::id::{NodeId, RecordId};
use crate::model::Party;
use crate::ops::{Action, KeyRef, OpRef, Ops};

/// The longest change accepted, in bytes. A record's first change, the largest, holds at
/// most a 20,000-character summary and 64 parties: well under this.
pub const CHANGE_BYTES_MAX: usize = 256 * 1024;

/// Operations in one change. An event has a few dozen; a first change with every party and
/// a long summary has some tens of thousands (one per character of the summary).
pub const OPS_MAX: usize = 64 * 1024;

/// How deep the objects a change makes may nest. An event nests four deep.
const DEPTH_MAX: usize = 16;

/// Why a change was refused. Every variant but [`RuleError::Schema`] is permanent: the
/// change is quarantined, never applied and never relayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// Longer than [`CHANGE_BYTES_MAX`] or with more than [`OPS_MAX`] operations.
    #[error("the change is larger than any command writes ({0})")]
    TooLarge(String),
    /// A change without dependencies for a record that already exists: a second root,
    /// which would let its writer replace the record's fields.
    #[error("a second first change for a record that already exists")]
    SecondRoot,
    /// A change with dependencies for a record this node does not hold at all.
    #[error("a later change for a record that does not exist here")]
    NoRecord,
    /// The sequence number does not follow the actor's last change in the record, or the
    /// change does not descend from that change.
    #[error("sequence number {found} does not follow the actor's last change ({last})")]
    Sequence {
        /// The actor's last sequence number in the record.
        last: u64,
        /// The change's.
        found: u64,
    },
    /// The change's operation numbers do not start above everything it depends on.
    #[error("operations start at {start_op}, not above {max_op}")]
    StartOp {
        /// Where they start.
        start_op: u64,
        /// The highest operation number the change depends on.
        max_op: u64,
    },
    /// A dependency is not in the record.
    #[error("depends on a change the record does not hold")]
    MissingDependency,
    /// An operation on the root of a record after its first change.
    #[error("writes the record field {0:?} after intake")]
    RootWrite(String),
    /// An operation on an object the change did not create and may not touch (an event,
    /// a party, the summary, the villages).
    #[error("writes into an existing part of the record")]
    ExistingObject,
    /// An operation on an object that does not exist, or before it was made.
    #[error("an operation on an object that does not exist")]
    UnknownObject,
    /// A delete.
    #[error("deletes part of the record")]
    Delete,
    /// An operation that overwrites something the change did not write itself.
    #[error("overwrites part of the record")]
    Overwrite,
    /// An insert after a list element that does not exist.
    #[error("inserts after an element that does not exist")]
    MissingElement,
    /// An operation the record never uses (counters, marks, tables).
    #[error("an operation the record never uses")]
    Operation,
    /// Not exactly one new event, more than one new party, or a party no event names.
    #[error("a change adds exactly one event (and at most the one party it names): {0}")]
    Shape(String),
    /// A party key the record already holds.
    #[error("the party {0} already exists")]
    PartyExists(String),
    /// The new event, party or record does not read as one, or breaks its field checks.
    #[error("malformed content: {0}")]
    Content(String),
    /// The new event is authored by another node than the change's signer.
    #[error("the event names another node as its author")]
    Author,
    /// The new event's clock stamp is earlier than the change, or its business time lies
    /// after it or before the record was received.
    #[error("the event's times disagree with the change's: {0}")]
    Time(String),
    /// The record would be past its bounds.
    #[error("the record would be past its bounds: {0}")]
    Bounds(String),
    /// Automerge refused the change, or panicked on it.
    #[error("Automerge cannot apply the change: {0}")]
    Apply(String),
    /// The record's schema version is newer than this build knows: the change waits until
    /// this node is upgraded.
    #[error("record schema version {0} is newer than this build knows")]
    Schema(u64),
    /// The change's actor is not one a node writes as (its key and a store incarnation,
    /// nothing more): another actor would start its own sequence beside the key's.
    #[error("the change's actor is not its signer's")]
    Actor,
    /// The new event takes the id of an event the record holds.
    #[error("an event with the id of one the record holds")]
    DuplicateEvent,
}

impl RuleError {
    /// Whether the change may be acceptable later (a newer schema this build will learn on
    /// upgrade), so it is held rather than quarantined.
    pub fn is_temporary(&self) -> bool {
        matches!(self, RuleError::Schema(_))
    }

    /// Whether the refusal came after Automerge was asked to apply the change, so that
    /// the document may hold part of it. Every other refusal leaves it untouched.
    pub fn touched_document(&self) -> bool {
        matches!(self, RuleError::Apply(_) | RuleError::MissingDependency)
    }

    /// A short stable code for reports and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            RuleError::TooLarge(_) => "too_large",
            RuleError::SecondRoot => "second_root",
            RuleError::NoRecord => "no_record",
            RuleError::Sequence { .. } => "sequence",
            RuleError::StartOp { .. } => "start_op",
            RuleError::MissingDependency => "missing_dependency",
            RuleError::RootWrite(_) => "root_write",
            RuleError::ExistingObject => "existing_object",
            RuleError::UnknownObject => "unknown_object",
            RuleError::Delete => "delete",
            RuleError::Overwrite => "overwrite",
            RuleError::MissingElement => "missing_element",
            RuleError::Operation => "operation",
            RuleError::Shape(_) => "shape",
            RuleError::PartyExists(_) => "party_exists",
            RuleError::Content(_) => "content",
            RuleError::Author => "author",
            RuleError::Time(_) => "time",
            RuleError::Bounds(_) => "bounds",
            RuleError::Apply(_) => "apply",
            RuleError::Schema(_) => "schema",
            RuleError::Actor => "actor",
            RuleError::DuplicateEvent => "duplicate_event",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reading a change without its document
// ---------------------------------------------------------------------------------------

/// What a change writes, read from its own operations by [`read`].
#[derive(Debug, Clone)]
pub struct Read {
    writes: Writes,
}

#[derive(Debug, Clone)]
enum Writes {
    /// A first change: the record it makes.
    Record {
        id: RecordId,
        villages: Vec<Division>,
        /// What the rules hold later changes against, as the record will read once the
        /// change is applied (a case or petition; a division's own record is read from its
        /// document): a session usually brings a new record's later changes with it.
        shape: Option<Box<Shape>>,
    },
    /// A later change: one event inserted into a list after `after` (`None`: at the head),
    /// and perhaps one party put into a map under a key; both objects the change did not
    /// make, which [`apply`] holds against the record's event list and party map.
    Entry(Box<Entry>),
    /// A later change that writes into an object it did not make, other than to add an
    /// event or a party: refused by [`apply`] as a write into an existing part of the
    /// record, or into one that does not exist.
    Stray(ObjId),
}

impl Read {
    /// For a first change, the record and the villages it makes.
    pub fn record(&self) -> Option<(RecordId, &[Division])> {
        match &self.writes {
            Writes::Record { id, villages, .. } => Some((*id, villages)),
            _ => None,
        }
    }
}

/// One event, and perhaps one party, that a later change adds.
#[derive(Debug, Clone)]
struct Entry {
    list: ObjId,
    after: Option<ObjId>,
    item: Item,
    event_obj: ObjId,
    party: Option<(ObjId, String, Party)>,
}

/// What a later change inserts into a record's list: an event of a case or petition, or an
/// entry of a division's own record (`owned`).
#[derive(Debug, Clone)]
enum Item {
    Event(Box<Event>),
    Owned(crate::owned::Entry),
}

impl Item {
    fn id(&self) -> String {
        match self {
            Item::Event(e) => e.id.to_string(),
            Item::Owned(e) => e.id.to_string(),
        }
    }

    fn at_ms(&self) -> u64 {
        match self {
            Item::Event(e) => e.at_ms,
            Item::Owned(e) => e.at_ms,
        }
    }
}

/// A value written by a change into an object it made.
#[derive(Debug, Clone)]
enum Val {
    Scalar(ScalarValue),
    Obj(u64),
}

/// An object a change made, by the counter of the operation that made it (0 for the
/// root, in a first change).
#[derive(Debug, Clone)]
enum Obj<'a> {
    /// Each key's value, with the counter of the operation that wrote it.
    Map(BTreeMap<Cow<'a, str>, (u64, Val)>),
    /// A list, or (`text`) a text of one-character strings: each element's id, the counter
    /// of the operation that wrote its value, and the value.
    List {
        items: Vec<(u64, u64, Val)>,
        text: bool,
    },
}

/// The objects a change made, as it wrote them: enough to read a record, an event or a
/// party without asking the document, whose lookups cost far more.
#[derive(Debug, Default)]
struct Made<'a> {
    objs: BTreeMap<u64, Obj<'a>>,
}

impl Made<'_> {
    /// The JSON form of an object the change made, taken out of `self` (each object is
    /// the value of one operation, so it is read once).
    fn json(&mut self, id: u64, depth: usize) -> Result<serde_json::Value, RuleError> {
        use serde_json::Value as J;
        if depth > DEPTH_MAX {
            return Err(RuleError::Content("nested too deep".into()));
        }
        let taken = self.objs.remove(&id);
        let mut val = |v: &Val| -> Result<J, RuleError> {
            match v {
                Val::Obj(o) => self.json(*o, depth + 1),
                Val::Scalar(s) => scalar(s),
            }
        };
        match taken {
            Some(Obj::Map(m)) => m
                .into_iter()
                .map(|(k, (_, v))| Ok((k.into_owned(), val(&v)?)))
                .collect::<Result<serde_json::Map<_, _>, _>>()
                .map(J::Object),
            Some(Obj::List { items, text: false }) => items
                .iter()
                .map(|(_, _, v)| val(v))
                .collect::<Result<_, _>>()
                .map(J::Array),
            Some(Obj::List { items, text: true }) => items
                .iter()
                .map(|(_, _, v)| match v {
                    Val::Scalar(ScalarValue::Str(c)) => Ok(c.as_str()),
                    _ => Err(RuleError::Content("text that is not characters".into())),
                })
                .collect::<Result<String, _>>()
                .map(J::String),
            None => Err(RuleError::UnknownObject),
        }
    }
}

impl Made<'_> {
    /// The shape of the record a first change makes (see [`Shape::of`], which reads the
    /// same from the document): its event list and elements, the events' ids, its party
    /// map and number of parties, and its time of receipt.
    fn shape(&self, actor: &ActorId) -> Option<Shape> {
        let Some(Obj::Map(root)) = self.objs.get(&0) else {
            return None;
        };
        let made = |key: &str| match root.get(key) {
            Some((_, Val::Obj(o))) => Some(*o),
            _ => None,
        };
        let id = |counter: u64| ObjId::Id(counter, actor.clone(), 0);
        let (events, parties) = (made("events")?, made("parties")?);
        let Some(Obj::List { items, text: false }) = self.objs.get(&events) else {
            return None;
        };
        let Some(Obj::Map(party_map)) = self.objs.get(&parties) else {
            return None;
        };
        let Some((_, Val::Scalar(ScalarValue::Uint(created_ms)))) = root.get("created_ms") else {
            return None;
        };
        let mut shape = Shape {
            events: id(events),
            parties: Some(id(parties)),
            owned: None,
            elements: BTreeSet::new(),
            ids: BTreeSet::new(),
            party_keys: party_map.keys().map(|k| k.to_string()).collect(),
            created_ms: *created_ms,
        };
        for (element, _, value) in items {
            shape.elements.insert(id(*element));
            if let Val::Obj(o) = value
                && let Some(Obj::Map(event)) = self.objs.get(o)
                && let Some((_, Val::Scalar(ScalarValue::Str(event_id)))) = event.get("id")
            {
                shape.ids.insert(event_id.to_string());
            }
        }
        Some(shape)
    }
}

fn scalar(s: &ScalarValue) -> Result<serde_json::Value, RuleError> {
    use serde_json::Value as J;
    Ok(match s {
        ScalarValue::Str(t) => J::String(t.to_string()),
        // Every number of the record is unsigned, and the reader reads it so only.
        ScalarValue::Uint(u) => J::from(*u),
        ScalarValue::Boolean(b) => J::Bool(*b),
        ScalarValue::Null => J::Null,
        _ => return Err(RuleError::Content("a value the record never holds".into())),
    })
}

/// Turns an enum as autosurgeon writes it, `{variant: value}`, into serde's form: the
/// variant under `tag`, and the value's fields beside it (`content` none) or the value
/// under `content`. Returns the variant. A value that already holds a field named `tag`
/// is refused, so that the two forms map one to one.
fn retag(
    value: &mut serde_json::Value,
    tag: &str,
    content: Option<&str>,
) -> Result<String, RuleError> {
    let shape = || RuleError::Content("an entry of no known type".into());
    let map = value.as_object_mut().ok_or_else(shape)?;
    if map.len() != 1 {
        return Err(shape());
    }
    let (variant, inner) = std::mem::take(map).into_iter().next().ok_or_else(shape)?;
    let mut out = match content {
        Some(content) => {
            let mut out = serde_json::Map::new();
            out.insert(content.to_string(), inner);
            out
        }
        None => match inner {
            serde_json::Value::Object(fields) if !fields.contains_key(tag) => fields,
            _ => return Err(shape()),
        },
    };
    out.insert(tag.to_string(), serde_json::Value::String(variant.clone()));
    *value = serde_json::Value::Object(out);
    Ok(variant)
}

/// An event as the record stores it (autosurgeon's form), read as the record reads it.
/// The record's reader asks for every field (an absent option too), so the event must hold
/// exactly the fields it reads back as: it is turned into serde's form (a one-to-one
/// mapping, see [`retag`]), read with serde, and written back, which must give what was
/// read.
pub(crate) fn event_of(mut value: serde_json::Value) -> Result<Event, RuleError> {
    use serde::Deserialize;
    let content = |e: &dyn std::fmt::Display| RuleError::Content(e.to_string());
    let body = value
        .get_mut("body")
        .ok_or_else(|| RuleError::Content("an event without a body".into()))?;
    if retag(body, "type", None)? == "amend"
        && let Some(change) = body.get_mut("change")
    {
        retag(change, "field", Some("value"))?;
    }
    let event = Event::deserialize(&value).map_err(|e| content(&e))?;
    if !crate::same::same(&value, &event) {
        return Err(RuleError::Content(
            "an event with fields missing or added".into(),
        ));
    }
    Ok(event)
}

/// The inverse of [`retag`]: serde's form (the variant under `tag`, beside the fields or
/// with the value under `content`) back into the form the record stores, `{variant: value}`.
fn untag(
    value: &mut serde_json::Value,
    tag: &str,
    content: Option<&str>,
) -> Result<String, RuleError> {
    let shape = || RuleError::Content("an entry of no known type".into());
    let map = value.as_object_mut().ok_or_else(shape)?;
    let Some(serde_json::Value::String(variant)) = map.remove(tag) else {
        return Err(shape());
    };
    let inner = match content {
        Some(content) => {
            let inner = map.remove(content).ok_or_else(shape)?;
            if !map.is_empty() {
                return Err(shape());
            }
            inner
        }
        None => serde_json::Value::Object(std::mem::take(map)),
    };
    let mut out = serde_json::Map::new();
    out.insert(variant.clone(), inner);
    *value = serde_json::Value::Object(out);
    Ok(variant)
}

/// An event in the form the record stores it, as Automerge's hydrate value: what
/// [`event_of`] reads back as the same event. Commands write it in one batch
/// (`Transactable::batch_create_object`), which costs Automerge two splices of its columns
/// instead of one per field.
pub(crate) fn event_value(event: &Event) -> Result<automerge::hydrate::Value, RuleError> {
    let content = |e: &dyn std::fmt::Display| RuleError::Content(e.to_string());
    let mut value = serde_json::to_value(event).map_err(|e| content(&e))?;
    let body = value
        .get_mut("body")
        .ok_or_else(|| RuleError::Content("an event without a body".into()))?;
    if body.get("type").and_then(serde_json::Value::as_str) == Some("amend")
        && let Some(change) = body.get_mut("change")
    {
        untag(change, "field", Some("value"))?;
    }
    untag(body, "type", None)?;
    json_value(value, 0)
}

/// A party in the form the record stores it, as Automerge's hydrate value (see
/// [`party_of`]).
pub(crate) fn party_value(party: &Party) -> Result<automerge::hydrate::Value, RuleError> {
    let value = serde_json::to_value(party).map_err(|e| RuleError::Content(e.to_string()))?;
    json_value(value, 0)
}

/// A JSON value as Automerge's hydrate value, every number unsigned (see [`scalar`]).
pub(crate) fn json_value(
    value: serde_json::Value,
    depth: usize,
) -> Result<automerge::hydrate::Value, RuleError> {
    use automerge::hydrate::Value as H;
    use serde_json::Value as J;
    if depth > DEPTH_MAX {
        return Err(RuleError::Content("nested too deep".into()));
    }
    Ok(match value {
        J::Null => H::Scalar(ScalarValue::Null),
        J::Bool(b) => H::Scalar(ScalarValue::Boolean(b)),
        J::Number(n) => {
            H::Scalar(ScalarValue::Uint(n.as_u64().ok_or_else(|| {
                RuleError::Content("a number the record never holds".into())
            })?))
        }
        J::String(s) => H::Scalar(ScalarValue::Str(s.into())),
        J::Array(items) => H::from(
            items
                .into_iter()
                .map(|v| json_value(v, depth + 1))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        J::Object(map) => H::Map(automerge::hydrate::Map::from(
            map.into_iter()
                .map(|(k, v)| Ok((k, json_value(v, depth + 1)?)))
                .collect::<Result<std::collections::HashMap<String, H>, RuleError>>()?,
        )),
    })
}

/// An event of a record's document, as Automerge's `hydrate` gives it, read as [`read`]
/// reads a new one; `None` if it does not read so.
pub(crate) fn event_hydrated(value: &automerge::hydrate::Value) -> Option<Event> {
    event_of(hydrated_json(value, 0).ok()?).ok()
}

/// The JSON form of a hydrated value, as [`Made::json`] gives a change's objects.
pub(crate) fn hydrated_json(
    value: &automerge::hydrate::Value,
    depth: usize,
) -> Result<serde_json::Value, RuleError> {
    use automerge::hydrate::Value as H;
    if depth > DEPTH_MAX {
        return Err(RuleError::Content("nested too deep".into()));
    }
    match value {
        H::Scalar(s) => scalar(s),
        H::Map(m) => m
            .iter()
            .map(|(k, v)| Ok((k.clone(), hydrated_json(&v.value, depth + 1)?)))
            .collect::<Result<serde_json::Map<_, _>, _>>()
            .map(serde_json::Value::Object),
        H::List(l) => l
            .iter()
            .map(|v| hydrated_json(&v.value, depth + 1))
            .collect::<Result<_, _>>()
            .map(serde_json::Value::Array),
        H::Text(t) => Ok(serde_json::Value::String(t.to_string())),
    }
}

/// A party as the record stores it, read as the record reads it (every field present).
pub(crate) fn party_of(value: &serde_json::Value) -> Result<Party, RuleError> {
    use serde::Deserialize;
    let party = Party::deserialize(value).map_err(|e| RuleError::Content(e.to_string()))?;
    if !crate::same::same(value, &party) {
        return Err(RuleError::Content(
            "a party with fields missing or added".into(),
        ));
    }
    Ok(party)
}

/// The operations of a change (Automerge's panics caught).
fn decode(change: &Change) -> Result<Ops<'_>, RuleError> {
    Ops::of(change).ok_or_else(|| RuleError::Apply("its operations could not be decoded".into()))
}

/// Reads what a change signed by `signer` writes, from its operations alone, and checks
/// everything about it that does not depend on the record it is applied to.
pub fn read(change: &Change, signer: NodeId) -> Result<Read, RuleError> {
    #[cfg(feature = "bench-baseline")]
    if BASELINE.load(std::sync::atomic::Ordering::Relaxed) {
        // The baseline reads nothing; `apply` applies without looking.
        return Ok(Read {
            writes: Writes::Stray(ObjId::Root),
        });
    }
    let bytes = change.raw_bytes().len();
    if bytes > CHANGE_BYTES_MAX {
        return Err(RuleError::TooLarge(format!("{bytes} bytes")));
    }
    if change.len() > OPS_MAX {
        return Err(RuleError::TooLarge(format!("{} operations", change.len())));
    }
    let time_ms = u64::try_from(change.timestamp()).unwrap_or(0);
    let first = change.deps().is_empty();
    let writer = crate::record::actor_parts(change.actor_id());
    if writer.map(|(node, _)| node) != Some(signer) || change.actor_id().to_bytes().len() != 40 {
        return Err(RuleError::Actor);
    }
    let ops = decode(change)?;
    let actor = change.actor_id().clone();
    let start = change.start_op().get();
    let own =
        |op: &OpRef, before: u64| ops.is_own(op) && op.counter >= start && op.counter < before;
    let ex = |op: &OpRef| {
        let actor = ops
            .actors
            .get(op.actor)
            .cloned()
            .unwrap_or_else(|| actor.clone());
        ObjId::Id(op.counter, actor, 0)
    };
    let mut made = Made::default();
    if first {
        made.objs.insert(0, Obj::Map(BTreeMap::new()));
    }
    // A later change's writes into objects it did not make.
    let mut events: Vec<(ObjId, Option<ObjId>, u64)> = Vec::new();
    let mut parties: Vec<(ObjId, String, u64)> = Vec::new();
    let mut stray: Option<ObjId> = None;
    for (i, op) in ops.ops.iter().enumerate() {
        let id = start.saturating_add(i as u64);
        if matches!(op.action, Action::Delete) && !first {
            return Err(RuleError::Delete);
        }
        let (obj, here) = match &op.obj {
            None if first => (0, None),
            None => {
                return Err(RuleError::RootWrite(match &op.key {
                    KeyRef::Map(k) => k.to_string(),
                    KeyRef::Head | KeyRef::Elem(_) => String::new(),
                }));
            }
            Some(o) if own(o, id) => (o.counter, None),
            // A first change makes every object it writes into.
            Some(_) if first => return Err(RuleError::UnknownObject),
            Some(o) => (0, Some(o)),
        };
        let value = match &op.action {
            Action::Make(ObjType::Map) => Val::Obj(id),
            Action::Make(ObjType::List) => Val::Obj(id),
            // The one text of a record is its summary, made by the first change.
            Action::Make(ObjType::Text)
                if first
                    && op.obj.is_none()
                    && matches!(&op.key, KeyRef::Map(k) if k == "summary") =>
            {
                Val::Obj(id)
            }
            Action::Put(v) => Val::Scalar(v.clone()),
            _ => return Err(RuleError::Operation),
        };
        if !op.pred.iter().all(|p| own(p, id)) {
            return Err(RuleError::Overwrite);
        }
        // What the operation overwrites (see below): never anything in an object the
        // change did not make, and nothing an insert writes. (All the change's own.)
        let pred: BTreeSet<u64> = op.pred.iter().map(|p| p.counter).collect();
        if let Some(foreign) = here {
            if !pred.is_empty() {
                return Err(RuleError::Overwrite);
            }
            // An object the change did not make: only an event inserted into a list, or a
            // party put into a map, each a new map; [`apply`] checks which objects.
            let is_map = matches!(op.action, Action::Make(ObjType::Map));
            match &op.key {
                KeyRef::Head if op.insert && is_map && !first => {
                    events.push((ex(foreign), None, id));
                }
                KeyRef::Elem(e) if op.insert && is_map && !first => {
                    events.push((ex(foreign), Some(ex(e)), id));
                }
                KeyRef::Map(key) if !op.insert && is_map && !first => {
                    parties.push((ex(foreign), key.to_string(), id));
                }
                _ => {
                    stray.get_or_insert_with(|| ex(foreign));
                }
            }
            if let Val::Obj(_) = value {
                made.objs.insert(id, Obj::Map(BTreeMap::new()));
            }
            continue;
        }
        if let Action::Make(t) = op.action {
            made.objs.insert(
                id,
                match t {
                    ObjType::List => Obj::List {
                        items: Vec::new(),
                        text: false,
                    },
                    ObjType::Text => Obj::List {
                        items: Vec::new(),
                        text: true,
                    },
                    _ => Obj::Map(BTreeMap::new()),
                },
            );
        }
        let Some(target) = made.objs.get_mut(&obj) else {
            return Err(RuleError::UnknownObject);
        };
        match (target, &op.key) {
            (Obj::Map(m), KeyRef::Map(k)) if !op.insert => {
                // A predecessor names exactly the value the key holds: Automerge hides
                // whatever operation a predecessor names, wherever it is.
                let held: BTreeSet<u64> = m.get(k.as_ref()).map(|(w, _)| *w).into_iter().collect();
                if pred != held {
                    return Err(RuleError::Overwrite);
                }
                m.insert(k.clone(), (id, value));
            }
            (Obj::List { items, .. }, KeyRef::Head) => {
                seq_op(items, None, op.insert, id, value, &pred, &own)?;
            }
            (Obj::List { items, .. }, KeyRef::Elem(e)) => {
                seq_op(items, Some(e), op.insert, id, value, &pred, &own)?;
            }
            _ => return Err(RuleError::UnknownObject),
        }
    }
    if first {
        // The summary is a text, not a string.
        let summary_is_text = match made.objs.get(&0) {
            Some(Obj::Map(root)) => match root.get("summary") {
                Some((_, Val::Obj(o))) => {
                    matches!(made.objs.get(o), Some(Obj::List { text: true, .. }))
                }
                _ => false,
            },
            _ => false,
        };
        let shape = made.shape(&actor).map(Box::new);
        let root = made.json(0, 0)?;
        if crate::owned::is_owned_root(&root) {
            let (id, owner) = crate::owned::check_created(root, signer, time_ms)?;
            return Ok(Read {
                writes: Writes::Record {
                    id,
                    villages: vec![owner],
                    shape: None,
                },
            });
        }
        if !summary_is_text {
            return Err(RuleError::Content("the summary is not a text".into()));
        }
        let (id, villages) = crate::record::check_created(root, signer, time_ms)?;
        return Ok(Read {
            writes: Writes::Record {
                id,
                villages: villages.into_iter().map(Division::from).collect(),
                shape,
            },
        });
    }
    if let Some(obj) = stray {
        return Ok(Read {
            writes: Writes::Stray(obj),
        });
    }
    let [(list, after, event_id)] = events.as_slice() else {
        return Err(RuleError::Shape(format!("{} new events", events.len())));
    };
    if parties.len() > 1 {
        return Err(RuleError::Shape(format!("{} new parties", parties.len())));
    }
    let json = made.json(*event_id, 0)?;
    // A division's own record holds entries, which have no clock stamp, and no parties.
    let item = if json.get("hlc").is_some() || !parties.is_empty() {
        Item::Event(Box::new(event_of(json)?))
    } else {
        Item::Owned(crate::owned::entry_of(json)?)
    };
    let party = match parties.pop() {
        Some((map, key, obj)) => Some((map, key, party_of(&made.json(obj, 0)?)?)),
        None => None,
    };
    match &item {
        Item::Event(event) => crate::record::check_entry(
            event,
            party.as_ref().map(|(_, k, p)| (k, p)),
            signer,
            time_ms,
        )?,
        Item::Owned(entry) => crate::owned::check_entry(entry, signer, time_ms)?,
    }
    Ok(Read {
        writes: Writes::Entry(Box::new(Entry {
            list: list.clone(),
            after: after.clone(),
            item,
            event_obj: ObjId::Id(*event_id, actor.clone(), 0),
            party,
        })),
    })
}

/// An operation on a list or text the change made: an insert after `elem` (`None`: at
/// the head), overwriting nothing.
fn seq_op(
    list: &mut Vec<(u64, u64, Val)>,
    elem: Option<&OpRef>,
    insert: bool,
    id: u64,
    value: Val,
    pred: &BTreeSet<u64>,
    own: &dyn Fn(&OpRef, u64) -> bool,
) -> Result<(), RuleError> {
    let at = match elem {
        None => Some(0),
        // Text and lists are written front to back: look at the end first.
        Some(e) if own(e, id) => list
            .iter()
            .rposition(|(el, _, _)| *el == e.counter)
            .map(|p| p + 1),
        Some(_) => None,
    };
    let Some(at) = at else {
        return Err(RuleError::MissingElement);
    };
    // Commands only ever insert into the lists and texts they make: a value put over an
    // element would also change which id the element's value carries.
    if !insert || !pred.is_empty() {
        return Err(RuleError::Overwrite);
    }
    list.insert(at.min(list.len()), (id, id, value));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Applying a change to its record
// ---------------------------------------------------------------------------------------

/// What the rules need of a record's change history: each change's highest operation and
/// dependencies, and each actor's last change. Built once per record and kept up to date
/// as changes are applied, so a batch of changes costs one walk.
#[derive(Debug, Clone, Default)]
pub struct History {
    changes: BTreeMap<ChangeHash, Meta>,
    last: BTreeMap<ActorId, (u64, ChangeHash)>,
    /// What the rules read of the record itself, once, at its first later change.
    record: Option<Shape>,
}

#[derive(Debug, Clone)]
struct Meta {
    max_op: u64,
    deps: Vec<ChangeHash>,
}

/// The parts of a record the rules hold later changes against, read from the document
/// once and kept up to date as changes apply.
#[derive(Debug, Clone, PartialEq)]
struct Shape {
    events: ObjId,
    /// The party map; `None` for a division's own record, which has none.
    parties: Option<ObjId>,
    /// The kind of entry the list holds: a division's own record's (`owned`), or events.
    owned: Option<crate::owned::OwnedKind>,
    /// The event list's elements: where a new event may be inserted.
    elements: BTreeSet<ObjId>,
    /// The ids of the events (the fold tells events apart by them).
    ids: BTreeSet<String>,
    /// The keys of the party map (a party is added under a new key, never overwritten).
    party_keys: BTreeSet<String>,
    created_ms: u64,
}

fn object(doc: &Automerge, key: &str, ty: ObjType) -> Option<ObjId> {
    match doc.get(ROOT, key) {
        Ok(Some((Value::Object(t), id))) if t == ty => Some(id),
        _ => None,
    }
}

impl Shape {
    fn of(doc: &Automerge) -> Result<Shape, RuleError> {
        let events = object(doc, "events", ObjType::List)
            .ok_or_else(|| RuleError::Content("the record has no event list".into()))?;
        let owned = crate::owned::kind_of(doc)?;
        let parties = match owned {
            Some(_) => None,
            None => Some(
                object(doc, "parties", ObjType::Map)
                    .ok_or_else(|| RuleError::Content("the record has no party map".into()))?,
            ),
        };
        let created_ms = match doc.get(ROOT, "created_ms") {
            Ok(Some((Value::Scalar(v), _))) => v.as_u64(),
            _ => None,
        }
        .ok_or_else(|| RuleError::Content("the record has no time of receipt".into()))?;
        let mut elements = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for item in doc.list_range(&events, ..) {
            let element = item.id();
            if let Ok(Some((Value::Scalar(id), _))) = doc.get(&element, "id")
                && let Some(id) = id.as_str()
            {
                ids.insert(id.to_string());
            }
            elements.insert(element);
        }
        Ok(Shape {
            elements,
            ids,
            party_keys: parties
                .as_ref()
                .map(|p| doc.keys(p).collect())
                .unwrap_or_default(),
            events,
            parties,
            owned,
            created_ms,
        })
    }
}

impl History {
    /// The history of a document.
    pub fn of(doc: &Automerge) -> History {
        let mut history = History::default();
        for meta in doc.get_changes_meta(&[]) {
            history.note(
                meta.actor.as_ref(),
                meta.seq,
                meta.max_op,
                meta.hash,
                meta.deps,
            );
        }
        history
    }

    fn note(
        &mut self,
        actor: &ActorId,
        seq: u64,
        max_op: u64,
        hash: ChangeHash,
        deps: Vec<ChangeHash>,
    ) {
        self.changes.insert(hash, Meta { max_op, deps });
        let last = self.last.entry(actor.clone()).or_insert((seq, hash));
        if seq >= last.0 {
            *last = (seq, hash);
        }
    }

    fn note_change(&mut self, change: &Change) {
        self.note(
            change.actor_id(),
            change.seq(),
            change.max_op(),
            change.hash(),
            change.deps().to_vec(),
        );
    }

    /// Whether the history holds no change: the record does not exist yet.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Whether `ancestor` is among `from` or reachable from them through dependencies.
    fn reaches(&self, from: &[ChangeHash], ancestor: &ChangeHash) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<ChangeHash> = from.to_vec();
        while let Some(h) = stack.pop() {
            if h == *ancestor {
                return true;
            }
            if !seen.insert(h) {
                continue;
            }
            if let Some(meta) = self.changes.get(&h) {
                stack.extend(meta.deps.iter().copied());
            }
        }
        false
    }
}

/// Checks that `change` continues its actor's sequence in the record and starts its
/// operations above everything it depends on.
fn check_sequence(history: &History, change: &Change) -> Result<(), RuleError> {
    let seq = change.seq();
    let start_op = change.start_op().get();
    if history.is_empty() {
        // The first change of the record.
        if !change.deps().is_empty() {
            return Err(RuleError::NoRecord);
        }
        if seq != 1 || start_op != 1 {
            return Err(RuleError::Sequence {
                last: 0,
                found: seq,
            });
        }
        return Ok(());
    }
    if change.deps().is_empty() {
        return Err(RuleError::SecondRoot);
    }
    let mut max_op = 0;
    for d in change.deps() {
        let meta = history.changes.get(d).ok_or(RuleError::MissingDependency)?;
        max_op = max_op.max(meta.max_op);
    }
    if start_op <= max_op {
        return Err(RuleError::StartOp { start_op, max_op });
    }
    match history.last.get(change.actor_id()) {
        None if seq == 1 => Ok(()),
        None => Err(RuleError::Sequence {
            last: 0,
            found: seq,
        }),
        Some((last, hash)) => {
            if seq != last.saturating_add(1) || !history.reaches(change.deps(), hash) {
                return Err(RuleError::Sequence {
                    last: *last,
                    found: seq,
                });
            }
            Ok(())
        }
    }
}

/// Applies a change with Automerge's panics caught, and checks it was applied rather than
/// queued for a missing dependency.
fn apply_guarded(doc: &mut Automerge, change: &Change) -> Result<(), RuleError> {
    let hash = change.hash();
    catch_unwind(AssertUnwindSafe(|| doc.apply_changes([change.clone()])))
        .map_err(|_| RuleError::Apply("Automerge failed while applying it".into()))?
        .map_err(|e| RuleError::Apply(e.to_string()))?;
    if !doc.get_missing_deps(std::slice::from_ref(&hash)).is_empty() {
        return Err(RuleError::MissingDependency);
    }
    Ok(())
}

/// A write into an object that is not the one the rules allow: into an existing part of
/// the record, or into one that does not exist.
fn misplaced(doc: &Automerge, obj: &ObjId) -> RuleError {
    if doc.object_type(obj).is_ok() {
        RuleError::ExistingObject
    } else {
        RuleError::UnknownObject
    }
}

/// The ingest benchmark's baseline, and nothing else: with the `bench-baseline` feature
/// (never in a build that ships) and this set, [`apply`] applies changes as Automerge alone
/// would, so that the benchmark measures what the rules cost in the same run.
#[cfg(feature = "bench-baseline")]
pub static BASELINE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Applies `change`, signed by `signer`, to a record's document under the rules. `history`
/// must be the document's (see [`History::of`]) and is kept up to date. `read` is what
/// [`read`] made of the change, if it was read already (verification reads every change).
///
/// On an error the document may hold part of the change: discard it.
pub fn apply(
    doc: &mut Automerge,
    history: &mut History,
    change: &Change,
    signer: NodeId,
    read_already: Option<Read>,
) -> Result<(), RuleError> {
    #[cfg(feature = "bench-baseline")]
    if BASELINE.load(std::sync::atomic::Ordering::Relaxed) {
        apply_guarded(doc, change)?;
        history.note_change(change);
        return Ok(());
    }
    let admitted = admit(doc, history, change, signer, read_already)?;
    apply_guarded(doc, change)?;
    admitted.note(history, change, doc);
    Ok(())
}

/// Holds a change this node wrote to the rules, as [`apply`] would, without applying it:
/// `before` is the record's document before the change, and `after` the command's own
/// document, which already holds it (Automerge made the change from it). Local commands
/// run the rules as an assertion (`ingest::commit_local`), and applying the change a second
/// time would only repeat Automerge's work.
pub fn check_local(
    before: &Automerge,
    after: &Automerge,
    history: &mut History,
    change: &Change,
    signer: NodeId,
) -> Result<(), RuleError> {
    #[cfg(feature = "bench-baseline")]
    if BASELINE.load(std::sync::atomic::Ordering::Relaxed) {
        history.note_change(change);
        return Ok(());
    }
    admit(before, history, change, signer, None)?.note(history, change, after);
    Ok(())
}

/// What [`admit`] found a change to do, for [`Admitted::note`] once it is applied.
enum Admitted {
    /// The record's first change, and the shape it gives the record.
    First(Option<Box<Shape>>),
    /// A later change: the record's shape with the change's event (and party) added.
    Later(Shape),
}

impl Admitted {
    /// Notes the applied change in the record's history; `doc` holds the change.
    fn note(self, history: &mut History, change: &Change, doc: &Automerge) {
        history.note_change(change);
        history.record = match self {
            Admitted::First(shape) => {
                // (Every test and fuzz target runs with this check: the shape read from
                // the change is the one the document gives.)
                debug_assert!(
                    shape
                        .as_deref()
                        .is_none_or(|s| Shape::of(doc).as_ref() == Ok(s)),
                    "a first change's shape read from its operations differs from its document's"
                );
                let _ = doc;
                shape.map(|s| *s)
            }
            Admitted::Later(shape) => Some(shape),
        };
    }
}

/// Checks `change` against the rules on `doc`, the record as it stands before the change.
/// Leaves `history` as it was, but for the record's shape, which it takes.
fn admit(
    doc: &Automerge,
    history: &mut History,
    change: &Change,
    signer: NodeId,
    read_already: Option<Read>,
) -> Result<Admitted, RuleError> {
    check_sequence(history, change)?;
    let read = match read_already {
        Some(r) => r,
        None => read(change, signer)?,
    };
    if history.is_empty() {
        let Writes::Record { shape, .. } = read.writes else {
            return Err(RuleError::NoRecord);
        };
        return Ok(Admitted::First(shape));
    }
    let Entry {
        list,
        after,
        item,
        event_obj,
        party,
    } = match read.writes {
        Writes::Record { .. } => return Err(RuleError::SecondRoot),
        Writes::Stray(obj) => return Err(misplaced(doc, &obj)),
        Writes::Entry(entry) => *entry,
    };
    let mut shape = match history.record.take() {
        Some(shape) => shape,
        None => Shape::of(doc)?,
    };
    let refused = |shape: Shape, history: &mut History, e: RuleError| {
        history.record = Some(shape);
        Err(e)
    };
    if list != shape.events {
        return refused(shape, history, misplaced(doc, &list));
    }
    if after.as_ref().is_some_and(|a| !shape.elements.contains(a)) {
        return refused(shape, history, RuleError::MissingElement);
    }
    let kind_agrees = match (&item, shape.owned) {
        (Item::Event(_), None) => true,
        (Item::Owned(entry), Some(kind)) => entry.body.kind() == kind,
        _ => false,
    };
    if !kind_agrees {
        let e = RuleError::Content("an entry of another kind of record".into());
        return refused(shape, history, e);
    }
    let event_id = item.id();
    if shape.ids.contains(&event_id) {
        return refused(shape, history, RuleError::DuplicateEvent);
    }
    if item.at_ms() < shape.created_ms {
        let e = RuleError::Time("the event happened before the record was received".into());
        return refused(shape, history, e);
    }
    if shape.elements.len() >= crate::model::limits::EVENTS_MAX {
        return refused(shape, history, RuleError::Bounds("events".into()));
    }
    if let Some((map, key, _)) = &party {
        if shape.parties.as_ref() != Some(map) {
            let e = misplaced(doc, map);
            return refused(shape, history, e);
        }
        if shape.party_keys.contains(key) {
            let e = RuleError::PartyExists(key.clone());
            return refused(shape, history, e);
        }
        if shape.party_keys.len() >= crate::model::limits::PARTIES_MAX {
            return refused(shape, history, RuleError::Bounds("parties".into()));
        }
    }
    shape.elements.insert(event_obj);
    shape.ids.insert(event_id);
    if let Some((_, key, _)) = party {
        shape.party_keys.insert(key);
    }
    Ok(Admitted::Later(shape))
}

/// A record made by its first change, checked on its own (see [`create`]).
#[derive(Debug, Clone)]
pub struct Created {
    /// The record's document.
    pub doc: Automerge,
    /// The document's history, to apply the record's later changes with.
    pub history: History,
    /// The record.
    pub id: RecordId,
    /// Its villages (or the owner of a division's own record).
    pub villages: Vec<Division>,
}

/// Checks a first change on its own, as [`apply`] would on an empty record: returns the
/// document it makes and its history, and the record and villages it makes.
pub fn create(change: &Change, signer: NodeId) -> Result<Created, RuleError> {
    #[cfg(feature = "bench-baseline")]
    if BASELINE.load(std::sync::atomic::Ordering::Relaxed) {
        // As verification did before the rules: build the document, read the claim.
        let mut doc = Automerge::new();
        apply_guarded(&mut doc, change)?;
        let id = crate::record::id_of(&doc).ok_or(RuleError::NoRecord)?;
        let villages = crate::record::jurisdictions_of(&doc).ok_or(RuleError::NoRecord)?;
        let mut history = History::default();
        history.note_change(change);
        return Ok(Created {
            doc,
            history,
            id,
            villages,
        });
    }
    let read = read(change, signer)?;
    let Some((id, villages)) = read.record().map(|(id, v)| (id, v.to_vec())) else {
        return Err(RuleError::NoRecord);
    };
    let mut doc = Automerge::new();
    let mut history = History::default();
    apply(&mut doc, &mut history, change, signer, Some(read))?;
    Ok(Created {
        doc,
        history,
        id,
        villages,
    })
}
