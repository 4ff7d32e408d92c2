//! A division's own records: documents that belong to a township or the county rather
//! than to villages.
//!
//! Cases and petitions belong to villages: a certificate reads one if its division holds
//! any of the record's villages. Some records belong to an office above the villages: the
//! quarantine reports a township or the county writes (here), and later its monthly
//! reports, audit trails and directory of names. They must never reach a village. The rule
//! is written once, in `cert`: such a record names its owner (a township or the county) as
//! its one division; it is read by the owner and the levels above, and written by the
//! owner alone. Stores index it under the owner's code and sessions reconcile it like any
//! record, so it reaches exactly the nodes that may read it.
//!
//! Layout of the document root (a document of its own kind, not a case or petition):
//!
//! | key | value |
//! |---|---|
//! | `schema` | [`SCHEMA_VERSION`] |
//! | `kind` | what the record is, for example `"quarantine_report"` ([`OwnedKind`]) |
//! | `id` | the record id (`div-…`) |
//! | `jurisdictions` | a list of one code: the owner, a township or the county |
//! | `created_ms` | when it was started |
//! | `events` | the append-only list of entries ([`Entry`]) |
//!
//! The change rules (`rules`) hold these records to the same discipline as cases: the first
//! change makes the root and nothing else is ever written to it; every later change inserts
//! exactly one entry authored by its signer; nothing is deleted or overwritten.
//!
//! A sync peer that speaks a protocol version older than 3 does not know these records:
//! sessions leave them out of its scope (`sync`).

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use rand_core::RngCore;
use serde::{Deserialize, Serialize};

use crate::division::{Division, Level};
use crate::id::{EventId, NodeId, OwnedId, RecordId};
use crate::model::limits::EVENTS_MAX;
use crate::record::{DocError, FUTURE_TOLERANCE_MS, commit_options};
use crate::rules::RuleError;

/// The schema version of a division's own records that this code writes and reads.
pub const SCHEMA_VERSION: u64 = 1;

/// How deep an entry nests (an entry and its body).
const DEPTH_MAX: usize = 4;

/// The longest text field of an entry, in characters.
const TEXT_CHARS_MAX: usize = 256;

/// What a division's own record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnedKind {
    /// The changes an office refused and kept aside (`quarantine`), reported to the levels
    /// above it.
    QuarantineReport,
}

impl OwnedKind {
    /// The kind as the document stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnedKind::QuarantineReport => "quarantine_report",
        }
    }

    fn parse(s: &str) -> Option<OwnedKind> {
        match s {
            "quarantine_report" => Some(OwnedKind::QuarantineReport),
            _ => None,
        }
    }
}

/// One entry of a division's own record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Unique id of the entry.
    pub id: EventId,
    /// The node that wrote it (the change's signer).
    pub node: NodeId,
    /// When it was written (ms since the epoch, the writer's clock).
    pub at_ms: u64,
    /// What it says.
    pub body: Body,
}

/// What an entry says. Each kind of record holds its own bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Body {
    /// A change this office refused and kept aside.
    Refusal {
        /// Who signed the change.
        signer: NodeId,
        /// The record it claimed.
        record: RecordId,
        /// The change's hash (hex).
        change: String,
        /// When the change says it was made.
        change_ms: u64,
        /// Why it was refused (`signed::VerifyError::code`).
        code: String,
    },
}

impl Body {
    /// The kind of record that holds this body.
    pub fn kind(&self) -> OwnedKind {
        match self {
            Body::Refusal { .. } => OwnedKind::QuarantineReport,
        }
    }

    fn check(&self) -> Result<(), String> {
        match self {
            Body::Refusal { change, code, .. } => {
                if change.len() != 64 || !change.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err("a change hash is 64 hexadecimal digits".into());
                }
                if code.is_empty()
                    || code.len() > TEXT_CHARS_MAX
                    || !code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                {
                    return Err("a refusal's code is a short lowercase word".into());
                }
                Ok(())
            }
        }
    }
}

/// Why a division's own record could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnedError {
    /// The owner is a village: villages own no records of their own.
    #[error("a division's own record belongs to a township or the county, not {0}")]
    Owner(Division),
    /// The record holds as many entries as it may.
    #[error("the record is full ({EVENTS_MAX} entries)")]
    Full,
    /// An entry of another kind of record.
    #[error("an entry of another kind of record")]
    Kind,
    /// An entry that breaks its own checks.
    #[error("entry: {0}")]
    Entry(String),
    /// The document could not be written.
    #[error("document: {0}")]
    Document(String),
}

/// A division's own record and its Automerge document.
#[derive(Debug, Clone)]
pub struct Owned {
    doc: Automerge,
    id: RecordId,
    kind: OwnedKind,
    owner: Division,
    created_ms: u64,
}

/// Writes a JSON value (an entry as serde writes it) into a new map under `obj`.
fn put_json<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    map: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), automerge::AutomergeError> {
    use serde_json::Value as J;
    for (key, value) in map {
        match value {
            J::String(s) => tx.put(obj, key.as_str(), s.as_str())?,
            J::Bool(b) => tx.put(obj, key.as_str(), *b)?,
            J::Number(n) => {
                // Every number of an entry is unsigned.
                tx.put(
                    obj,
                    key.as_str(),
                    ScalarValue::Uint(n.as_u64().unwrap_or(0)),
                )?
            }
            J::Object(inner) => {
                let child = tx.put_object(obj, key.as_str(), ObjType::Map)?;
                put_json(tx, &child, inner)?;
            }
            J::Null | J::Array(_) => {}
        }
    }
    Ok(())
}

fn insert_entry<T: Transactable>(
    tx: &mut T,
    list: &ObjId,
    at: usize,
    entry: &Entry,
) -> Result<(), OwnedError> {
    let document = |e: &dyn std::fmt::Display| OwnedError::Document(e.to_string());
    let serde_json::Value::Object(map) = serde_json::to_value(entry).map_err(|e| document(&e))?
    else {
        return Err(OwnedError::Document("an entry is not a map".into()));
    };
    let obj = tx
        .insert_object(list, at, ObjType::Map)
        .map_err(|e| document(&e))?;
    put_json(tx, &obj, &map).map_err(|e| document(&e))
}

/// The JSON form of a map in the document (scalars and maps only), for reading an entry
/// with serde. `None` for anything an entry never holds.
fn json_of(doc: &Automerge, obj: &ObjId, depth: usize) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    if depth > DEPTH_MAX {
        return None;
    }
    let mut out = serde_json::Map::new();
    for item in doc.map_range(obj, ..) {
        let value = match item.value {
            automerge::ValueRef::Object(ObjType::Map) => json_of(doc, &item.id(), depth + 1)?,
            automerge::ValueRef::Scalar(s) => match s {
                automerge::ScalarValueRef::Str(t) => J::String(t.to_string()),
                automerge::ScalarValueRef::Uint(u) => J::from(u),
                automerge::ScalarValueRef::Boolean(b) => J::Bool(b),
                _ => return None,
            },
            _ => return None,
        };
        out.insert(item.key.to_string(), value);
    }
    Some(J::Object(out))
}

impl Owned {
    /// Starts a record of `kind` owned by `owner`, holding `entries`: one Automerge
    /// change made by `actor` at `now_ms`.
    pub fn create(
        actor: ActorId,
        now_ms: u64,
        rng: &mut dyn RngCore,
        owner: Division,
        kind: OwnedKind,
        entries: &[Entry],
    ) -> Result<Owned, OwnedError> {
        if owner.level() == Level::Village {
            return Err(OwnedError::Owner(owner));
        }
        if entries.len() > EVENTS_MAX {
            return Err(OwnedError::Full);
        }
        for e in entries {
            if e.body.kind() != kind {
                return Err(OwnedError::Kind);
            }
            e.body.check().map_err(OwnedError::Entry)?;
        }
        let id = RecordId::Owned(OwnedId::random(rng));
        let mut doc = Automerge::new().with_actor(actor);
        doc.transact_with(
            |_| commit_options(now_ms, "start"),
            |tx| -> Result<(), OwnedError> {
                let document = |e: &dyn std::fmt::Display| OwnedError::Document(e.to_string());
                tx.put(ROOT, "schema", ScalarValue::Uint(SCHEMA_VERSION))
                    .map_err(|e| document(&e))?;
                tx.put(ROOT, "kind", kind.as_str())
                    .map_err(|e| document(&e))?;
                tx.put(ROOT, "id", id.to_string())
                    .map_err(|e| document(&e))?;
                let places = tx
                    .put_object(ROOT, "jurisdictions", ObjType::List)
                    .map_err(|e| document(&e))?;
                tx.insert(&places, 0, owner.to_string())
                    .map_err(|e| document(&e))?;
                tx.put(ROOT, "created_ms", ScalarValue::Uint(now_ms))
                    .map_err(|e| document(&e))?;
                let list = tx
                    .put_object(ROOT, "events", ObjType::List)
                    .map_err(|e| document(&e))?;
                for (i, e) in entries.iter().enumerate() {
                    insert_entry(tx, &list, i, e)?;
                }
                Ok(())
            },
        )
        .map_err(|failure| failure.error)?;
        Ok(Owned {
            doc,
            id,
            kind,
            owner,
            created_ms: now_ms,
        })
    }

    /// Reads a record from its document.
    pub fn from_doc(doc: Automerge) -> Result<Owned, DocError> {
        let scalar = |key: &str| match doc.get(ROOT, key) {
            Ok(Some((Value::Scalar(s), _))) => Some(s.into_owned()),
            _ => None,
        };
        match scalar("schema").and_then(|s| s.as_u64()) {
            Some(SCHEMA_VERSION) => {}
            Some(found) => {
                return Err(DocError::Schema {
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            None => return Err(DocError::Shape("no schema version".into())),
        }
        let kind = match scalar("kind") {
            Some(ScalarValue::Str(s)) => OwnedKind::parse(&s),
            _ => None,
        }
        .ok_or_else(|| DocError::Shape("not a division's own record".into()))?;
        let id = crate::record::id_of(&doc)
            .filter(RecordId::is_owned)
            .ok_or_else(|| DocError::Shape("no record id".into()))?;
        let owner = match crate::record::jurisdictions_of(&doc).as_deref() {
            Some([owner]) if owner.level() != Level::Village => *owner,
            _ => return Err(DocError::Shape("no owner".into())),
        };
        let created_ms = scalar("created_ms")
            .and_then(|s| s.as_u64())
            .ok_or_else(|| DocError::Shape("no start time".into()))?;
        Ok(Owned {
            doc,
            id,
            kind,
            owner,
            created_ms,
        })
    }

    fn list(&self) -> Option<(ObjId, usize)> {
        match self.doc.get(ROOT, "events") {
            Ok(Some((Value::Object(ObjType::List), obj))) => {
                let len = self.doc.length(&obj);
                Some((obj, len))
            }
            _ => None,
        }
    }

    /// Appends an entry: one Automerge change made by `actor` at `now_ms`.
    pub fn append(
        &mut self,
        actor: &ActorId,
        now_ms: u64,
        entry: &Entry,
    ) -> Result<(), OwnedError> {
        if entry.body.kind() != self.kind {
            return Err(OwnedError::Kind);
        }
        entry.body.check().map_err(OwnedError::Entry)?;
        let (list, len) = self
            .list()
            .ok_or_else(|| OwnedError::Document("no entry list".into()))?;
        if len >= EVENTS_MAX {
            return Err(OwnedError::Full);
        }
        self.doc.set_actor(actor.clone());
        self.doc
            .transact_with(
                |_| commit_options(now_ms, "entry"),
                |tx| insert_entry(tx, &list, len, entry),
            )
            .map_err(|failure| failure.error)?;
        Ok(())
    }

    /// The record's entries that read as entries, in list order, and how many did not.
    pub fn entries(&self) -> (Vec<Entry>, usize) {
        let Some((list, _)) = self.list() else {
            return (Vec::new(), 0);
        };
        let mut out = Vec::new();
        let mut malformed = 0;
        for item in self.doc.list_range(&list, ..) {
            let entry = json_of(&self.doc, &item.id(), 0)
                .and_then(|json| serde_json::from_value::<Entry>(json).ok());
            match entry {
                Some(e) => out.push(e),
                None => malformed += 1,
            }
        }
        (out, malformed)
    }

    /// How many entries the record holds.
    pub fn len(&self) -> usize {
        self.list().map_or(0, |(_, len)| len)
    }

    /// Whether the record holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The record's id.
    pub fn id(&self) -> RecordId {
        self.id
    }

    /// What the record is.
    pub fn kind(&self) -> OwnedKind {
        self.kind
    }

    /// The township or county it belongs to.
    pub fn owner(&self) -> Division {
        self.owner
    }

    /// When it was started.
    pub fn created_ms(&self) -> u64 {
        self.created_ms
    }

    /// Its document.
    pub fn doc(&self) -> &Automerge {
        &self.doc
    }
}

/// Every division's own record of `kind` a store holds (those it cannot read are left out).
pub fn all_of<S: crate::store::Store>(store: &S, kind: OwnedKind) -> Result<Vec<Owned>, S::Error> {
    let mut out = Vec::new();
    for id in store.records()? {
        if !id.is_owned() {
            continue;
        }
        let Some(doc) = store.doc(id)? else {
            continue;
        };
        if let Ok(owned) = Owned::from_doc(doc)
            && owned.kind() == kind
        {
            out.push(owned);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// The change rules' part (see `rules`)
// ---------------------------------------------------------------------------------------

/// Whether a first change's root (as JSON) is a division's own record rather than a case
/// or petition.
pub(crate) fn is_owned_root(root: &serde_json::Value) -> bool {
    root.get("id")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|id| id.starts_with(OwnedId::PREFIX))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Created {
    #[serde(rename = "schema")]
    _schema: u64,
    kind: String,
    id: RecordId,
    jurisdictions: Vec<Division>,
    created_ms: u64,
    events: Vec<serde_json::Value>,
}

/// Checks a first change's root: a whole record of a known schema and kind, owned by a
/// township or the county, whose entries are all well formed and authored by `signer`.
/// Returns its id and owner.
pub(crate) fn check_created(
    root: serde_json::Value,
    signer: NodeId,
    time_ms: u64,
) -> Result<(RecordId, Division), RuleError> {
    match root.get("schema").and_then(serde_json::Value::as_u64) {
        Some(SCHEMA_VERSION) => {}
        Some(found) if found > SCHEMA_VERSION => return Err(RuleError::Schema(found)),
        _ => return Err(RuleError::Content("schema version".into())),
    }
    let created: Created =
        serde_json::from_value(root).map_err(|e| RuleError::Content(e.to_string()))?;
    let kind = OwnedKind::parse(&created.kind)
        .ok_or_else(|| RuleError::Content("a division's record of no known kind".into()))?;
    if !created.id.is_owned() {
        return Err(RuleError::Content("kind and id disagree".into()));
    }
    let owner = match created.jurisdictions.as_slice() {
        [owner] if owner.level() != Level::Village => *owner,
        _ => return Err(RuleError::Bounds("owner".into())),
    };
    if created.created_ms > time_ms.saturating_add(FUTURE_TOLERANCE_MS) {
        return Err(RuleError::Time("started after the change was made".into()));
    }
    if created.events.len() > EVENTS_MAX {
        return Err(RuleError::Bounds("entries".into()));
    }
    let mut ids = std::collections::BTreeSet::new();
    for value in created.events {
        let entry = entry_of(value)?;
        if entry.body.kind() != kind {
            return Err(RuleError::Content(
                "an entry of another kind of record".into(),
            ));
        }
        check_entry(&entry, signer, time_ms)?;
        if entry.at_ms < created.created_ms {
            return Err(RuleError::Time(
                "written before the record was started".into(),
            ));
        }
        if !ids.insert(entry.id) {
            return Err(RuleError::DuplicateEvent);
        }
    }
    Ok((created.id, owner))
}

/// An entry as the document stores it, read with serde; it must hold exactly the fields it
/// reads back as.
pub(crate) fn entry_of(value: serde_json::Value) -> Result<Entry, RuleError> {
    let entry: Entry =
        serde_json::from_value(value.clone()).map_err(|e| RuleError::Content(e.to_string()))?;
    if serde_json::to_value(&entry).ok() != Some(value) {
        return Err(RuleError::Content(
            "an entry with fields missing or added".into(),
        ));
    }
    Ok(entry)
}

/// The checks of one entry that need only the change: its author and time, and its
/// body's own checks.
pub(crate) fn check_entry(entry: &Entry, signer: NodeId, time_ms: u64) -> Result<(), RuleError> {
    if entry.node != signer {
        return Err(RuleError::Author);
    }
    entry.body.check().map_err(RuleError::Content)?;
    if entry.at_ms > time_ms.saturating_add(FUTURE_TOLERANCE_MS) {
        return Err(RuleError::Time("written after the change was made".into()));
    }
    Ok(())
}

/// The kind of a division's own record a document holds: `Ok(None)` for a case or
/// petition (or a document that is neither), an error for a division's own record of no
/// kind this build knows.
pub(crate) fn kind_of(doc: &Automerge) -> Result<Option<OwnedKind>, RuleError> {
    if !crate::record::id_of(doc).is_some_and(|id| id.is_owned()) {
        return Ok(None);
    }
    let kind = match doc.get(ROOT, "kind") {
        Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
            ScalarValue::Str(k) => OwnedKind::parse(k),
            _ => None,
        },
        _ => None,
    };
    kind.map(Some)
        .ok_or_else(|| RuleError::Content("a division's record of no known kind".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> impl RngCore {
        use rand_core::SeedableRng;
        rand_chacha::ChaCha8Rng::seed_from_u64(7)
    }

    fn refusal(node: NodeId, at_ms: u64) -> Entry {
        Entry {
            id: EventId::random(&mut rng()),
            node,
            at_ms,
            body: Body::Refusal {
                signer: node,
                record: "case-000102030405060708090a0b0c0d0e0f".parse().unwrap(),
                change: "ab".repeat(32),
                change_ms: at_ms,
                code: "root_write".into(),
            },
        }
    }

    #[test]
    fn a_village_owns_no_record() {
        let village: Division = "500240101201".parse().unwrap();
        let actor = crate::record::actor_id(NodeId::from_bytes([1; 32]), 0);
        assert!(matches!(
            Owned::create(
                actor,
                0,
                &mut rng(),
                village,
                OwnedKind::QuarantineReport,
                &[]
            ),
            Err(OwnedError::Owner(_))
        ));
    }

    #[test]
    fn entries_round_trip_through_the_document() {
        let node = NodeId::from_bytes([1; 32]);
        let owner: Division = "500240101000".parse().unwrap();
        let actor = crate::record::actor_id(node, 0);
        let first = refusal(node, 1_000);
        let mut owned = Owned::create(
            actor,
            1_000,
            &mut rng(),
            owner,
            OwnedKind::QuarantineReport,
            std::slice::from_ref(&first),
        )
        .unwrap();
        let mut second = refusal(node, 2_000);
        second.id = EventId::from_bytes([9; 16]);
        owned
            .append(&crate::record::actor_id(node, 0), 2_000, &second)
            .unwrap();
        let loaded = Owned::from_doc(Automerge::load(&owned.doc().save()).unwrap()).unwrap();
        assert_eq!(loaded.owner(), owner);
        assert_eq!(loaded.entries(), (vec![first, second], 0));
    }
}
