//! Change rules: what a signed change may do to a record.
//!
//! A signature proves who wrote a change. These rules decide whether the change is one a
//! valid command could have written, before it touches the record. They run on every path a
//! change takes into a document: sync sessions, bundles, rebuilding a document from its
//! changes, and (as an assertion) a node's own commands.
//!
//! Allowed, and nothing else:
//! - **The first change** (no dependencies, on an empty document) creates the record: the
//!   root fields of the layout (`record.rs`) and nothing more, exactly one intake event
//!   authored by the signer's node, parties that read as parties, and everything within
//!   the record's bounds.
//! - **Every later change** inserts exactly one new event into the event list, anywhere
//!   (concurrent inserts land mid-list), and may add one party under a key the record does
//!   not hold yet, named by the event (an amend `party_added`). Its operations write only
//!   into the objects it creates itself: no operation on the root (so `id`, `kind`,
//!   `schema`, `jurisdictions`, `created_ms`, the intake values and `restricted` are
//!   written once), none on an existing event, party or the summary, no delete, and no
//!   overwrite of anything it did not write itself. The new event is authored by the
//!   signer's node, reads as an event, passes the event's own field checks, is stamped no
//!   earlier than the change was made, and leaves the record within its bounds.
//! - **Sequence**: a change's sequence number follows its actor's last change in the
//!   record, which it must descend from, and its operation numbers start above everything
//!   it depends on. Automerge assumes this; a change that breaks it could make Automerge
//!   panic or give two operations one id.
//!
//! Everything Automerge does with a received change here runs with its panics caught: a
//! panic is a refusal like any other. After any refusal the document may hold part of the
//! change, so the caller discards it and loads the record again.
//!
//! The rules know the schema version a record was created with; a record of a version this
//! build does not know is held, not refused (see [`RuleError::is_temporary`]).

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::legacy::{ElementId, Key, ObjectId, OpId, OpType};
use automerge::{ActorId, Automerge, Change, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, Value};

use crate::id::NodeId;

/// The longest change accepted, in bytes. A record's first change, the largest, holds at
/// most a 20,000-character summary and 64 parties: well under this.
pub const CHANGE_BYTES_MAX: usize = 256 * 1024;

/// Operations in one change. An event has a few dozen; a first change with every party and
/// a long summary has some tens of thousands (one per character of the summary).
pub const OPS_MAX: usize = 64 * 1024;

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
    /// after it.
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
}

impl RuleError {
    /// Whether the change may be acceptable later (a newer schema this build will learn on
    /// upgrade), so it is held rather than quarantined.
    pub fn is_temporary(&self) -> bool {
        matches!(self, RuleError::Schema(_))
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
        }
    }
}

/// What the rules need of a record's change history: each change's actor, sequence number,
/// highest operation and dependencies, and each actor's last change. Built once per record
/// and kept up to date as changes are applied, so a batch of changes costs one walk.
#[derive(Debug, Clone, Default)]
pub struct History {
    changes: BTreeMap<ChangeHash, Meta>,
    last: BTreeMap<ActorId, (u64, ChangeHash)>,
}

#[derive(Debug, Clone)]
struct Meta {
    max_op: u64,
    deps: Vec<ChangeHash>,
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

    /// Whether `ancestor` is `from` or reachable from it through dependencies.
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

/// The operations of a change, decoded with Automerge's panics caught.
fn decode(change: &Change) -> Result<automerge::ExpandedChange, RuleError> {
    catch_unwind(AssertUnwindSafe(|| change.decode()))
        .map_err(|_| RuleError::Apply("its operations could not be decoded".into()))
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

fn ex(op: &OpId) -> ObjId {
    ObjId::Id(op.counter(), op.actor().clone(), 0)
}

fn object(doc: &Automerge, key: &str, ty: ObjType) -> Option<ObjId> {
    match doc.get(ROOT, key) {
        Ok(Some((Value::Object(t), id))) if t == ty => Some(id),
        _ => None,
    }
}

/// What a later change adds, found from its operations.
struct Added {
    /// The object of the new event.
    event: ObjId,
    /// The new party, if any: its key and object.
    party: Option<(String, ObjId)>,
}

/// Checks a later change's operations against the record as it stands.
fn check_ops(doc: &Automerge, change: &Change) -> Result<Added, RuleError> {
    let expanded = decode(change)?;
    if expanded.operations.len() > OPS_MAX {
        return Err(RuleError::TooLarge(format!(
            "{} operations",
            expanded.operations.len()
        )));
    }
    let events = object(doc, "events", ObjType::List)
        .ok_or_else(|| RuleError::Content("the record has no event list".into()))?;
    let parties = object(doc, "parties", ObjType::Map)
        .ok_or_else(|| RuleError::Content("the record has no party map".into()))?;
    // The event list's elements: insert positions a new event may follow.
    let existing: BTreeSet<ObjId> = doc.list_range(&events, ..).map(|item| item.id()).collect();
    let actor = change.actor_id().clone();
    let start = change.start_op().get();
    // Objects made by this change, with their types; list elements it inserted, by list.
    let mut made: BTreeMap<u64, ObjType> = BTreeMap::new();
    let mut elements: BTreeSet<(u64, u64)> = BTreeSet::new();
    let mut new_events: Vec<ObjId> = Vec::new();
    let mut new_parties: Vec<(String, ObjId)> = Vec::new();
    let own = |op: &OpId, before: u64| {
        op.actor() == &actor && op.counter() >= start && op.counter() < before
    };
    for (i, op) in expanded.operations.iter().enumerate() {
        let id = start.saturating_add(i as u64);
        if matches!(op.action, OpType::Delete) {
            return Err(RuleError::Delete);
        }
        let obj = match &op.obj {
            ObjectId::Root => {
                return Err(RuleError::RootWrite(match &op.key {
                    Key::Map(k) => k.to_string(),
                    Key::Seq(_) => String::new(),
                }));
            }
            ObjectId::Id(o) => o,
        };
        if !matches!(op.action, OpType::Make(_) | OpType::Put(_))
            || matches!(op.action, OpType::Make(ObjType::Table))
        {
            return Err(RuleError::Operation);
        }
        let here = ex(obj);
        let made_here = own(obj, id) && made.contains_key(&obj.counter());
        if !made_here && here != events && here != parties {
            return Err(if doc.object_type(&here).is_ok() {
                RuleError::ExistingObject
            } else {
                RuleError::UnknownObject
            });
        }
        if !op.pred.iter().all(|p| own(p, id)) {
            return Err(RuleError::Overwrite);
        }
        if here == events {
            // A new event: inserted (never put over an element) after the head, an
            // element that exists, or one this change inserted before.
            let after_ok = match &op.key {
                Key::Seq(ElementId::Head) => true,
                Key::Seq(ElementId::Id(e)) => {
                    existing.contains(&ex(e)) || (own(e, id) && new_events.contains(&ex(e)))
                }
                Key::Map(_) => false,
            };
            if !op.insert || !after_ok {
                return Err(RuleError::MissingElement);
            }
            if !matches!(op.action, OpType::Make(ObjType::Map)) {
                return Err(RuleError::Content("an event that is not a map".into()));
            }
            made.insert(id, ObjType::Map);
            new_events.push(ObjId::Id(id, actor.clone(), 0));
            continue;
        }
        if here == parties {
            let Key::Map(key) = &op.key else {
                return Err(RuleError::UnknownObject);
            };
            if op.insert || !matches!(op.action, OpType::Make(ObjType::Map)) {
                return Err(RuleError::Content("a party that is not a map".into()));
            }
            if !matches!(doc.get(&parties, key.as_str()), Ok(None))
                || new_parties.iter().any(|(k, _)| k == key.as_str())
            {
                return Err(RuleError::PartyExists(key.to_string()));
            }
            made.insert(id, ObjType::Map);
            new_parties.push((key.to_string(), ObjId::Id(id, actor.clone(), 0)));
            continue;
        }
        // Anything else is an object this change made, earlier in the change.
        let Some(ty) = made.get(&obj.counter()).copied() else {
            return Err(RuleError::UnknownObject);
        };
        match (&op.key, ty) {
            (Key::Map(_), ObjType::Map) => {
                if op.insert {
                    return Err(RuleError::Operation);
                }
            }
            (Key::Seq(elem), ObjType::List | ObjType::Text) => {
                let ok = match elem {
                    ElementId::Head => true,
                    ElementId::Id(e) => {
                        own(e, id) && elements.contains(&(obj.counter(), e.counter()))
                    }
                };
                if !ok {
                    return Err(RuleError::MissingElement);
                }
                if !op.insert && op.pred.is_empty() {
                    return Err(RuleError::MissingElement);
                }
                if op.insert {
                    elements.insert((obj.counter(), id));
                }
            }
            _ => return Err(RuleError::UnknownObject),
        }
        if let OpType::Make(t) = op.action {
            made.insert(id, t);
        }
    }
    if new_events.len() != 1 {
        return Err(RuleError::Shape(format!("{} new events", new_events.len())));
    }
    if new_parties.len() > 1 {
        return Err(RuleError::Shape(format!(
            "{} new parties",
            new_parties.len()
        )));
    }
    Ok(Added {
        event: new_events.swap_remove(0),
        party: new_parties.pop(),
    })
}

/// Applies `change`, signed by `signer`, to a record's document under the rules. `history`
/// must be the document's (see [`History::of`]) and is kept up to date.
///
/// On an error the document may hold part of the change: discard it.
pub fn apply(
    doc: &mut Automerge,
    history: &mut History,
    change: &Change,
    signer: NodeId,
) -> Result<(), RuleError> {
    let bytes = change.raw_bytes().len();
    if bytes > CHANGE_BYTES_MAX {
        return Err(RuleError::TooLarge(format!("{bytes} bytes")));
    }
    if change.len() > OPS_MAX {
        return Err(RuleError::TooLarge(format!("{} operations", change.len())));
    }
    check_sequence(history, change)?;
    let time_ms = u64::try_from(change.timestamp()).unwrap_or(0);
    if history.is_empty() {
        apply_guarded(doc, change)?;
        crate::record::check_created(doc, signer, time_ms)?;
    } else {
        let added = check_ops(doc, change)?;
        apply_guarded(doc, change)?;
        crate::record::check_added(doc, &added.event, added.party.as_ref(), signer, time_ms)?;
    }
    history.note_change(change);
    Ok(())
}

/// Checks a first change on its own: the document it makes, as [`apply`] would on an empty
/// record. Returns that document.
pub fn create(change: &Change, signer: NodeId) -> Result<Automerge, RuleError> {
    let mut doc = Automerge::new();
    apply(&mut doc, &mut History::default(), change, signer)?;
    Ok(doc)
}
