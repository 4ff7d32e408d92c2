//! A change's operations, read for the change rules (`rules::read`).
//!
//! Automerge's own decoding (`Change::decode`) expands every operation: each object,
//! element and predecessor id gets a copy of its actor's id, each key a string of its own.
//! That was two fifths of what the rules cost a change. [`Ops::of`] reads the columns of
//! the change's bytes straight into a compact form instead, and only for the plain form
//! that Automerge writes for the operations a record uses (maps, lists, texts, puts of
//! nulls, booleans, unsigned integers and strings, deletes): anything else (another column,
//! another value type, a counter, a mark, an id form Automerge would read some other way)
//! is read through Automerge's decoding into the same compact form. Either way, Automerge
//! has already read the whole change once (a `Change` is only made from bytes whose
//! operations decode), so this reader only ever sees bytes Automerge reads; the
//! differential tests below hold the two readings equal on every change they try.

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::legacy::{ElementId, Key, ObjectId, OpType};
use automerge::{ActorId, Change, ObjType, ScalarValue};

/// An operation id: its counter, and its actor as an index into [`Ops::actors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpRef {
    pub(crate) counter: u64,
    pub(crate) actor: usize,
}

/// Where an operation writes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KeyRef<'a> {
    /// A map's key.
    Map(Cow<'a, str>),
    /// The head of a list or text.
    Head,
    /// After an element of a list or text.
    Elem(OpRef),
}

/// What an operation does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    Make(ObjType),
    Put(ScalarValue),
    Delete,
    /// Anything a record never holds (counters, marks).
    Other,
}

/// One operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Op<'a> {
    /// The object written into; `None` for the root.
    pub(crate) obj: Option<OpRef>,
    pub(crate) key: KeyRef<'a>,
    pub(crate) insert: bool,
    pub(crate) action: Action,
    /// The operations this one overwrites, in increasing order.
    pub(crate) pred: Vec<OpRef>,
}

/// A change's operations and the actors their ids name (the change's own first).
#[derive(Debug)]
pub(crate) struct Ops<'a> {
    pub(crate) actors: Vec<ActorId>,
    pub(crate) ops: Vec<Op<'a>>,
}

impl<'a> Ops<'a> {
    /// The operations of `change`; `None` if Automerge cannot decode them (it panics).
    pub(crate) fn of(change: &'a Change) -> Option<Ops<'a>> {
        fast(change).or_else(|| slow(change))
    }

    /// Whether an id's actor is the change's own.
    pub(crate) fn is_own(&self, id: &OpRef) -> bool {
        self.actors.get(id.actor) == self.actors.first()
    }
}

/// Through Automerge's decoding, for whatever [`fast`] does not read.
fn slow(change: &Change) -> Option<Ops<'static>> {
    let expanded = catch_unwind(AssertUnwindSafe(|| change.decode())).ok()?;
    let mut actors: Vec<ActorId> = std::iter::once(change.actor_id().clone())
        .chain(change.other_actor_ids().iter().cloned())
        .collect();
    let mut index = |actor: &ActorId| match actors.iter().position(|a| a == actor) {
        Some(i) => i,
        None => {
            actors.push(actor.clone());
            actors.len() - 1
        }
    };
    let mut ops = Vec::with_capacity(expanded.operations.len());
    for op in expanded.operations {
        let mut id = |o: &automerge::legacy::OpId| OpRef {
            counter: o.counter(),
            actor: index(o.actor()),
        };
        let obj = match &op.obj {
            ObjectId::Root => None,
            ObjectId::Id(o) => Some(id(o)),
        };
        let key = match &op.key {
            Key::Map(k) => KeyRef::Map(Cow::Owned(k.to_string())),
            Key::Seq(ElementId::Head) => KeyRef::Head,
            Key::Seq(ElementId::Id(e)) => KeyRef::Elem(id(e)),
        };
        let mut pred: Vec<OpRef> = op.pred.iter().map(&mut id).collect();
        pred.sort_by_key(|p| (p.counter, p.actor));
        let action = match op.action {
            OpType::Make(t) => Action::Make(t),
            OpType::Put(v) => Action::Put(v),
            OpType::Delete => Action::Delete,
            _ => Action::Other,
        };
        ops.push(Op {
            obj,
            key,
            insert: op.insert,
            action,
            pred,
        });
    }
    Some(Ops { actors, ops })
}

/// The bytes of a change, read front to back.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn uleb(&mut self) -> Option<u64> {
        leb128::read::unsigned(&mut self.bytes).ok()
    }

    fn sleb(&mut self) -> Option<i64> {
        leb128::read::signed(&mut self.bytes).ok()
    }

    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        let (head, rest) = self.bytes.split_at_checked(n)?;
        self.bytes = rest;
        Some(head)
    }

    fn done(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// A run-length encoded column (Automerge's `RleDecoder`): a positive count and one value
/// repeated, a negative count and that many values, or zero and a count of nulls.
struct Rle<'a, T> {
    reader: Reader<'a>,
    read: fn(&mut Reader<'a>) -> Option<T>,
    left: u64,
    literal: bool,
    value: Option<T>,
}

impl<'a, T: Clone> Rle<'a, T> {
    fn new(bytes: &'a [u8], read: fn(&mut Reader<'a>) -> Option<T>) -> Self {
        Rle {
            reader: Reader { bytes },
            read,
            left: 0,
            literal: false,
            value: None,
        }
    }

    /// The next value: `Ok(None)` when the column is spent, `Ok(Some(None))` for a null,
    /// `Err` if malformed.
    fn next(&mut self) -> Result<Option<Option<T>>, Malformed> {
        while self.left == 0 {
            if self.reader.done() {
                return Ok(None);
            }
            let count = self.reader.sleb().ok_or(Malformed)?;
            if count > 0 {
                self.left = count.unsigned_abs();
                self.value = Some((self.read)(&mut self.reader).ok_or(Malformed)?);
                self.literal = false;
            } else if count < 0 {
                self.left = count.checked_neg().ok_or(Malformed)?.unsigned_abs();
                self.literal = true;
            } else {
                // (Automerge reads a null run's length as an `isize`.)
                self.left = self
                    .reader
                    .uleb()
                    .filter(|n| isize::try_from(*n).is_ok())
                    .ok_or(Malformed)?;
                self.value = None;
                self.literal = false;
            }
        }
        self.left -= 1;
        if self.literal {
            Ok(Some(Some((self.read)(&mut self.reader).ok_or(Malformed)?)))
        } else {
            Ok(Some(self.value.clone()))
        }
    }

    /// The next value, a spent column reading as nulls (as Automerge reads the columns of
    /// ids and keys).
    fn next_or_null(&mut self) -> Result<Option<T>, Malformed> {
        Ok(self.next()?.flatten())
    }
}

/// A column that does not read as Automerge wrote it: left to Automerge's decoding.
#[derive(Debug)]
struct Malformed;

/// A delta-encoded column: run-length encoded differences, summed.
struct Delta<'a> {
    rle: Rle<'a, i64>,
    sum: i64,
}

impl Delta<'_> {
    fn next(&mut self) -> Result<Option<Option<i64>>, Malformed> {
        Ok(self.rle.next()?.map(|value| {
            value.map(|d| {
                self.sum = self.sum.saturating_add(d);
                self.sum
            })
        }))
    }

    fn next_or_null(&mut self) -> Result<Option<i64>, Malformed> {
        Ok(self.next()?.flatten())
    }
}

/// A boolean column: alternating run lengths, starting with false.
struct Bools<'a> {
    reader: Reader<'a>,
    left: u64,
    value: bool,
}

impl Bools<'_> {
    fn next(&mut self) -> Option<bool> {
        while self.left == 0 {
            if self.reader.done() {
                return None;
            }
            self.left = self.reader.uleb()?;
            self.value = !self.value;
        }
        self.left -= 1;
        Some(self.value)
    }
}

fn read_uleb(r: &mut Reader<'_>) -> Option<u64> {
    r.uleb()
}

fn read_sleb(r: &mut Reader<'_>) -> Option<i64> {
    r.sleb()
}

fn read_str<'a>(r: &mut Reader<'a>) -> Option<&'a str> {
    let len = r.uleb()?;
    std::str::from_utf8(r.take(len)?).ok()
}

// The columns of a change's operations, as Automerge writes them: (id << 4) | type.
const OBJ_ACTOR: u64 = 0x01;
const OBJ_CTR: u64 = 0x02;
const KEY_ACTOR: u64 = 0x11;
const KEY_CTR: u64 = 0x13;
const KEY_STR: u64 = 0x15;
const INSERT: u64 = 0x34;
const ACTION: u64 = 0x42;
const VAL_META: u64 = 0x56;
const VAL_RAW: u64 = 0x57;
const PRED_GROUP: u64 = 0x70;
const PRED_ACTOR: u64 = 0x71;
const PRED_CTR: u64 = 0x73;

/// Reads the plain form straight from the change's bytes; `None` for anything else.
fn fast(change: &Change) -> Option<Ops<'_>> {
    let mut r = Reader {
        bytes: change.raw_bytes(),
    };
    // The chunk's header: magic bytes, checksum, type (a change) and length.
    r.take(8)?;
    if r.take(1)? != [1] {
        return None;
    }
    let len = r.uleb()?;
    let body = r.take(len)?;
    if !r.done() {
        return None;
    }
    let mut r = Reader { bytes: body };
    let deps = r.uleb()?;
    r.take(deps.checked_mul(32)?)?;
    let len = r.uleb()?;
    if r.take(len)? != change.actor_id().to_bytes() {
        return None;
    }
    let _seq = r.uleb()?;
    let _start_op = r.uleb()?;
    let _time = r.sleb()?;
    let len = r.uleb()?;
    r.take(len)?;
    let others = r.uleb()?;
    if others != change.other_actor_ids().len() as u64 {
        return None;
    }
    for other in change.other_actor_ids() {
        let len = r.uleb()?;
        if r.take(len)? != other.to_bytes() {
            return None;
        }
    }
    let count = r.uleb()?;
    let mut specs = Vec::new();
    for _ in 0..count {
        let spec = r.uleb()?;
        let len = r.uleb()?;
        specs.push((spec, len));
    }
    // Each column Automerge writes, once, in order, uncompressed; nothing else.
    let mut columns: [&[u8]; 12] = [&[]; 12];
    let known = [
        OBJ_ACTOR, OBJ_CTR, KEY_ACTOR, KEY_CTR, KEY_STR, INSERT, ACTION, VAL_META, VAL_RAW,
        PRED_GROUP, PRED_ACTOR, PRED_CTR,
    ];
    let mut next = 0;
    for (spec, len) in specs {
        let at = known.iter().skip(next).position(|k| *k == spec)? + next;
        *columns.get_mut(at)? = r.take(len)?;
        next = at + 1;
    }
    let [
        obj_actor,
        obj_ctr,
        key_actor,
        key_ctr,
        key_str,
        insert,
        action,
        val_meta,
        val_raw,
        pred_group,
        pred_actor,
        pred_ctr,
    ] = columns;
    let actors: Vec<ActorId> = std::iter::once(change.actor_id().clone())
        .chain(change.other_actor_ids().iter().cloned())
        .collect();
    // An actor named twice (Automerge does not refuse it) would give one id two indices
    // here and one there.
    if actors
        .iter()
        .enumerate()
        .any(|(i, a)| actors.iter().take(i).any(|b| b == a))
    {
        return None;
    }
    let actor = |a: u64| usize::try_from(a).ok().filter(|a| *a < actors.len());
    let mut obj_actor = Rle::new(obj_actor, read_uleb);
    let mut obj_ctr = Rle::new(obj_ctr, read_uleb);
    let mut key_actor = Rle::new(key_actor, read_uleb);
    let mut key_ctr = Delta {
        rle: Rle::new(key_ctr, read_sleb),
        sum: 0,
    };
    let mut key_str = Rle::new(key_str, read_str);
    let mut insert = Bools {
        reader: Reader { bytes: insert },
        left: 0,
        value: true,
    };
    let mut action = Rle::new(action, read_uleb);
    let mut val_meta = Rle::new(val_meta, read_uleb);
    let mut val_raw = Reader { bytes: val_raw };
    let mut pred_group = Rle::new(pred_group, read_uleb);
    let mut pred_actor = Rle::new(pred_actor, read_uleb);
    let mut pred_ctr = Delta {
        rle: Rle::new(pred_ctr, read_sleb),
        sum: 0,
    };
    // A spent column reads as nulls, as Automerge reads it.
    let mut ops = Vec::with_capacity(change.len());
    for _ in 0..change.len() {
        let obj = match (obj_actor.next_or_null().ok()?, obj_ctr.next_or_null().ok()?) {
            (None, None) => None,
            (Some(a), Some(c)) if c > 0 => Some(OpRef {
                counter: c,
                actor: actor(a)?,
            }),
            _ => return None,
        };
        let key = match (
            key_actor.next_or_null().ok()?,
            key_ctr.next_or_null().ok()?,
            key_str.next_or_null().ok()?,
        ) {
            (None, None, Some(s)) => KeyRef::Map(Cow::Borrowed(s)),
            (None, Some(0), None) => KeyRef::Head,
            (Some(a), Some(c), None) if c > 0 => KeyRef::Elem(OpRef {
                counter: c.unsigned_abs(),
                actor: actor(a)?,
            }),
            _ => return None,
        };
        let insert = insert.next()?;
        let code = action.next().ok()???;
        let meta = val_meta.next().ok()???;
        let (kind, len) = (meta & 0x0f, meta >> 4);
        let value = match kind {
            0 if len == 0 => ScalarValue::Null,
            1 if len == 0 => ScalarValue::Boolean(false),
            2 if len == 0 => ScalarValue::Boolean(true),
            3 => {
                let mut raw = Reader {
                    bytes: val_raw.take(len)?,
                };
                let n = raw.uleb()?;
                if !raw.done() {
                    return None;
                }
                ScalarValue::Uint(n)
            }
            6 => ScalarValue::Str(std::str::from_utf8(val_raw.take(len)?).ok()?.into()),
            _ => return None,
        };
        let action = match (code, &value) {
            (0, ScalarValue::Null) => Action::Make(ObjType::Map),
            (1, _) => Action::Put(value),
            (2, ScalarValue::Null) => Action::Make(ObjType::List),
            (3, ScalarValue::Null) => Action::Delete,
            (4, ScalarValue::Null) => Action::Make(ObjType::Text),
            _ => return None,
        };
        let n = pred_group.next().ok()???;
        let mut pred = Vec::with_capacity(usize::try_from(n.min(16)).ok()?);
        for _ in 0..n {
            match (pred_actor.next().ok()??, pred_ctr.next().ok()??) {
                (Some(a), Some(c)) if c >= 0 => pred.push(OpRef {
                    counter: c.unsigned_abs(),
                    actor: actor(a)?,
                }),
                _ => return None,
            }
        }
        pred.sort_by_key(|p| (p.counter, p.actor));
        ops.push(Op {
            obj,
            key,
            insert,
            action,
            pred,
        });
    }
    Some(Ops { actors, ops })
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT, ReadDoc};
    use proptest::prelude::*;

    /// The two readings of a change agree, whenever the fast one reads it.
    fn agree(change: &Change) -> bool {
        match (fast(change), slow(change)) {
            (Some(a), Some(b)) => {
                assert_eq!(a.actors, b.actors);
                assert_eq!(a.ops, b.ops);
                true
            }
            (Some(_), None) => panic!("read what Automerge cannot decode"),
            (None, _) => false,
        }
    }

    #[test]
    fn every_change_of_a_village_year_is_read_as_automerge_reads_it() {
        use rand_core::SeedableRng;
        let (changes, _) = crate::workload::village_history(
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(21),
            300,
            1_772_323_200_000,
        )
        .unwrap();
        for c in &changes {
            let change = Change::from_bytes(c.signed.bytes.clone()).unwrap();
            assert!(agree(&change), "the plain form of a record's change");
        }
    }

    /// What a document of random writes gives: every change either read alike or left to
    /// Automerge.
    fn writes() -> impl Strategy<Value = Vec<(u8, u8, u64, String)>> {
        proptest::collection::vec(
            (
                any::<u8>(),
                any::<u8>(),
                any::<u64>(),
                "[a-z\u{4e00}-\u{4e0f}]{0,40}",
            ),
            1..40,
        )
    }

    /// Automerge does not refuse a change that names an actor twice (its own among the
    /// others); the fast reader leaves such a change to Automerge's decoding, which gives
    /// each id the first index of its actor.
    #[test]
    fn a_change_that_names_an_actor_twice_is_left_to_automerge() {
        let mut doc = AutoCommit::new();
        let map = doc.put_object(ROOT, "map", ObjType::Map).unwrap();
        doc.commit();
        let mut fork = doc.fork();
        fork.put(&map, "x", 1_u64).unwrap();
        fork.commit();
        doc.merge(&mut fork).unwrap();
        doc.put(&map, "x", 2_u64).unwrap();
        doc.commit();
        let last = doc.get_last_local_change().unwrap().clone();
        let (own, other) = (
            last.actor_id().to_bytes(),
            last.other_actor_ids()[0].to_bytes(),
        );
        assert_eq!(own.len(), other.len());
        let mut bytes = last.raw_bytes().to_vec();
        let at = bytes.windows(other.len()).position(|w| w == other).unwrap();
        bytes[at..at + other.len()].copy_from_slice(own);
        let twice = Change::from_bytes(bytes).unwrap();
        assert_eq!(twice.other_actor_ids()[0], *twice.actor_id());
        assert!(fast(&twice).is_none());
        let slow = slow(&twice).unwrap();
        assert!(
            slow.ops
                .iter()
                .all(|op| op.pred.iter().all(|p| p.actor == 0))
        );
        assert!(Ops::of(&twice).is_some());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn random_changes_are_read_as_automerge_reads_them(steps in writes(), other in any::<bool>()) {
            let mut doc = AutoCommit::new();
            let list = doc.put_object(ROOT, "list", ObjType::List).unwrap();
            let text = doc.put_object(ROOT, "text", ObjType::Text).unwrap();
            let map = doc.put_object(ROOT, "map", ObjType::Map).unwrap();
            doc.commit();
            if other {
                // Ids of another actor in the next changes.
                let mut fork = doc.fork();
                fork.put(&map, "x", 1_u64).unwrap();
                fork.insert(&list, 0, "y").unwrap();
                fork.commit();
                doc.merge(&mut fork).unwrap();
            }
            for (what, at, n, s) in steps {
                let len = doc.length(&list);
                match what % 9 {
                    0 => { doc.put(&map, s.as_str(), n).unwrap(); }
                    1 => { doc.put(&map, "k", s.as_str()).unwrap(); }
                    2 => { doc.insert(&list, usize::from(at) % (len + 1), s.as_str()).unwrap(); }
                    3 if len > 0 => { doc.delete(&list, usize::from(at) % len).unwrap(); }
                    4 => { doc.splice_text(&text, 0, 0, &s).unwrap(); }
                    5 => { doc.put(&map, "b", at % 2 == 0).unwrap(); }
                    6 => { doc.put(&map, "i", -(i64::from(at))).unwrap(); }
                    7 => { doc.insert_object(&list, 0, ObjType::Map).unwrap(); }
                    _ => { doc.put(&map, "z", ()).unwrap(); }
                }
                if at % 3 == 0 {
                    doc.commit();
                }
            }
            doc.commit();
            let read = doc.get_changes(&[]).iter().filter(|c| agree(c)).count();
            // At least the first, which makes the objects.
            prop_assert!(read >= 1);
        }

        #[test]
        fn altered_changes_are_read_as_automerge_reads_them_or_left_to_it(
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            use rand_core::SeedableRng;
            let (changes, _) = crate::workload::village_history(
                &mut rand_chacha::ChaCha8Rng::seed_from_u64(5),
                3,
                1_772_323_200_000,
            )
            .unwrap();
            for c in &changes {
                let mut bytes = c.signed.bytes.clone();
                let i = at.index(bytes.len());
                bytes[i] = byte;
                // (The checksum is not checked on parsing; the hash changes with it.)
                if let Ok(change) = Change::from_bytes(bytes) {
                    agree(&change);
                }
            }
        }
    }
}
