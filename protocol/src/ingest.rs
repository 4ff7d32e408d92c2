//! Storing changes and applying them to their records.
//!
//! A change is stored durably first, then applied to its record once every change it
//! depends on is there. Changes that arrive before their dependencies wait in the store's
//! pending set and are applied when the dependencies come, from any peer, in any order.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{Automerge, Change, ChangeHash, ReadDoc};

use crate::cert::Keypair;
use crate::id::RecordId;
use crate::record::{Record, jurisdictions_of};
use crate::signed::{Verified, sign_new};
use crate::store::{Store, StoredChange};

/// Stores verified changes (all or none) and applies whatever can be applied. Returns the
/// changes that were new to the store, in the order given.
pub fn ingest<S: Store>(
    store: &mut S,
    verified: Vec<Verified>,
) -> Result<Vec<StoredChange>, S::Error> {
    let mut new = Vec::with_capacity(verified.len());
    let mut seen = BTreeSet::new();
    for v in verified {
        if seen.insert(v.hash) && !store.has_change(&v.hash)? {
            new.push(StoredChange {
                hash: v.hash,
                time_ms: v.time_ms,
                deps: v.deps,
                signer: v.signer,
                signed: v.signed,
            });
        }
    }
    if new.is_empty() {
        return Ok(new);
    }
    store.put_changes(&new)?;
    let mut by_record: BTreeMap<RecordId, Vec<ChangeHash>> = BTreeMap::new();
    for c in &new {
        by_record.entry(c.signed.record).or_default().push(c.hash);
    }
    let mut docs = Vec::with_capacity(by_record.len());
    for (record, hashes) in by_record {
        docs.push(apply_ready(store, record, hashes)?);
    }
    // The changes are durable already; the documents follow in one step.
    store.put_docs(&docs)?;
    Ok(new)
}

/// Applies the record's pending changes plus `arrived` in dependency order, as far as their
/// dependencies allow; returns the document and what is still pending, for storing.
fn apply_ready<S: Store>(
    store: &S,
    record: RecordId,
    arrived: Vec<ChangeHash>,
) -> Result<(RecordId, Automerge, BTreeSet<ChangeHash>), S::Error> {
    let mut doc = store.doc(record)?.unwrap_or_else(Automerge::new);
    let mut pending = store.pending(record)?;
    pending.extend(arrived);
    let mut villages = Record::from_doc(doc.clone())
        .ok()
        .map(|r| r.jurisdictions().to_vec());
    // Each pass applies at least one change or stops; so at most `pending.len()` passes.
    let passes = pending.len();
    for _ in 0..=passes {
        let mut progress = false;
        for hash in pending.clone() {
            let Some(stored) = store.change(&hash)? else {
                pending.remove(&hash);
                continue;
            };
            if doc.get_change_by_hash(&hash).is_some() {
                pending.remove(&hash);
                continue;
            }
            if !stored
                .deps
                .iter()
                .all(|d| doc.get_change_by_hash(d).is_some())
            {
                continue;
            }
            pending.remove(&hash);
            // A change whose claimed villages are not its record's would have been
            // authorised for the wrong villages: it is kept in the store but never applied.
            if villages
                .as_ref()
                .is_some_and(|v| *v != stored.signed.jurisdictions)
            {
                continue;
            }
            let Ok(change) = Change::from_bytes(stored.signed.bytes.clone()) else {
                continue;
            };
            if doc.apply_changes([change]).is_ok() {
                progress = true;
                if villages.is_none() {
                    villages = jurisdictions_of(&doc);
                }
            }
        }
        if !progress {
            break;
        }
    }
    Ok((record, doc, pending))
}

/// Signs and stores what a local command just wrote to `record` (every change not an
/// ancestor of `before`), and stores the record's document. Returns the new changes, for
/// the sync sessions to push.
pub fn commit_local<S: Store>(
    store: &mut S,
    key: &Keypair,
    record: &Record,
    before: &[ChangeHash],
) -> Result<Vec<StoredChange>, S::Error> {
    let mut stored = Vec::new();
    for signed in sign_new(key, record, before) {
        let Ok(change) = Change::from_bytes(signed.bytes.clone()) else {
            continue;
        };
        stored.push(StoredChange {
            hash: change.hash(),
            time_ms: u64::try_from(change.timestamp()).unwrap_or(0),
            deps: change.deps().to_vec(),
            signer: key.public(),
            signed,
        });
    }
    store.put_changes(&stored)?;
    let pending = store.pending(record.id())?;
    store.put_doc(record.id(), record.doc(), &pending)?;
    Ok(stored)
}
