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
    // What verification already parsed and built, so nothing is parsed or applied twice.
    let mut parsed: BTreeMap<ChangeHash, Change> = BTreeMap::new();
    let mut firsts: BTreeMap<RecordId, Automerge> = BTreeMap::new();
    for v in verified {
        if !parsed.contains_key(&v.hash) && !store.has_change(&v.hash)? {
            parsed.insert(v.hash, v.change);
            if let Some(doc) = v.first {
                firsts.insert(v.signed.record, doc);
            }
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
    let mut by_record: BTreeMap<RecordId, Vec<ChangeHash>> = BTreeMap::new();
    for c in &new {
        by_record.entry(c.signed.record).or_default().push(c.hash);
    }
    let arrived: BTreeMap<ChangeHash, &StoredChange> = new.iter().map(|c| (c.hash, c)).collect();
    let mut docs = Vec::with_capacity(by_record.len());
    for (record, hashes) in by_record {
        let first = firsts.remove(&record);
        docs.push(apply_ready(
            store,
            record,
            hashes,
            &mut Known {
                arrived: &arrived,
                parsed: &mut parsed,
            },
            first,
        )?);
    }
    // The documents were built from what is in memory; the changes and the documents
    // become durable together.
    store.put_ingested(&new, &docs)?;
    Ok(new)
}

/// Rebuilds a record's document from its stored changes, as ingesting them one by one
/// would have built it: for a store that lost the document (a corrupt value) but kept the
/// changes. Returns the document and the changes still waiting for dependencies.
pub fn rebuild(record: RecordId, changes: &[StoredChange]) -> (Automerge, BTreeSet<ChangeHash>) {
    let mut scratch = crate::store::MemStore::new();
    // The scratch store is in memory and cannot fail.
    let _ = scratch.put_changes(changes);
    let arrived: BTreeMap<ChangeHash, &StoredChange> =
        changes.iter().map(|c| (c.hash, c)).collect();
    let hashes = changes
        .iter()
        .filter(|c| c.signed.record == record)
        .map(|c| c.hash)
        .collect();
    let mut parsed = BTreeMap::new();
    match apply_ready(
        &scratch,
        record,
        hashes,
        &mut Known {
            arrived: &arrived,
            parsed: &mut parsed,
        },
        None,
    ) {
        Ok((_, doc, pending)) => (doc, pending),
        Err(never) => match never {},
    }
}

/// Whether the document holds a change. (`get_change_by_hash` would rebuild the change
/// from the document's columns just to say yes.)
fn holds(doc: &Automerge, hash: &ChangeHash) -> bool {
    doc.get_missing_deps(std::slice::from_ref(hash)).is_empty()
}

/// What an ingest already holds in memory: the changes that just arrived, and those of
/// them verification parsed.
struct Known<'a> {
    arrived: &'a BTreeMap<ChangeHash, &'a StoredChange>,
    parsed: &'a mut BTreeMap<ChangeHash, Change>,
}

/// Applies the record's pending changes plus `arrived` in dependency order, as far as their
/// dependencies allow; returns the document and what is still pending, for storing.
/// `first` is the document a first change made, for a record not stored yet.
fn apply_ready<S: Store>(
    store: &S,
    record: RecordId,
    arrived: Vec<ChangeHash>,
    known: &mut Known<'_>,
    first: Option<Automerge>,
) -> Result<(RecordId, Automerge, BTreeSet<ChangeHash>), S::Error> {
    let mut doc = match store.doc(record)? {
        Some(doc) => doc,
        None => first.unwrap_or_default(),
    };
    let mut pending = store.pending(record)?;
    pending.extend(arrived);
    let mut villages = jurisdictions_of(&doc);
    // Each pass applies at least one change or stops; so at most `pending.len()` passes.
    let passes = pending.len();
    for _ in 0..=passes {
        let mut progress = false;
        for hash in pending.clone() {
            if holds(&doc, &hash) {
                pending.remove(&hash);
                continue;
            }
            let from_store;
            let stored: &StoredChange = match known.arrived.get(&hash) {
                Some(c) => c,
                None => match store.change(&hash)? {
                    Some(c) => {
                        from_store = c;
                        &from_store
                    }
                    None => {
                        pending.remove(&hash);
                        continue;
                    }
                },
            };
            if !stored.deps.iter().all(|d| holds(&doc, d)) {
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
            let change = match known.parsed.remove(&hash) {
                Some(change) => change,
                None => match Change::from_bytes(stored.signed.bytes.clone()) {
                    Ok(change) => change,
                    Err(_) => continue,
                },
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
