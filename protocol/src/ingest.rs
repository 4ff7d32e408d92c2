//! Storing changes and applying them to their records, under the change rules.
//!
//! A change is stored durably first, then applied to its record once every change it
//! depends on is there. Changes that arrive before their dependencies wait in the store's
//! pending set and are applied when the dependencies come, from any peer, in any order.
//!
//! Every change is applied through `rules::apply`, on every path: sync sessions, bundles,
//! rebuilding a document from its changes, and (as an assertion) local commands. A change
//! the rules refuse is quarantined (`quarantine`) and the record's document is loaded again
//! as it was before it: never kept half-applied. A change whose record has a schema this
//! build does not know yet is held with the pending changes and tried again later.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{Automerge, Change, ChangeHash, ReadDoc};

use crate::cert::Keypair;
use crate::id::RecordId;
use crate::quarantine::{PER_SIGNER_MAX, Quarantined};
use crate::record::jurisdictions_of;
use crate::rules::{self, History, RuleError};
use crate::signed::{Checked, Refused, Verified, VerifyError, parse_change, sign_new};
use crate::store::{Store, StoredChange};

/// How far in the future a received change may be stamped and still be taken now. Office
/// PCs without time sync drift; a change stamped later than this is held until its time
/// comes (`retry_held`), never applied early and never relayed.
pub const FUTURE_HOLD_MS: u64 = 86_400_000;

/// Changes of one signer waiting for their dependencies, at most. Beyond it, a new one is
/// not kept (it comes again from its sender once what it depends on is here), so that one
/// certified node cannot fill a peer's disk with changes that never complete.
pub const PENDING_PER_SIGNER_MAX: usize = 4_096;

/// A change that has waited for its dependencies this long after it was made is forgotten
/// (`expire`); it is fetched again if it is ever wanted.
pub const PENDING_EXPIRY_MS: u64 = 30 * 86_400_000;

/// What an ingest did.
#[derive(Debug, Clone, Default)]
pub struct Ingested {
    /// Changes new to this store and stored: applied, or waiting for their dependencies.
    pub stored: Vec<StoredChange>,
    /// Changes applied to their records by this call, new ones and ones that had waited,
    /// in the order they were applied: what a node passes on to its other peers. A change
    /// still waiting is never passed on.
    pub applied: Vec<StoredChange>,
    /// Changes refused and kept aside.
    pub quarantined: Vec<Quarantined>,
    /// Changes refused and dropped because their signer's quarantine is full.
    pub dropped: usize,
    /// Changes stamped more than [`FUTURE_HOLD_MS`] ahead of this node's clock, held until
    /// their time comes.
    pub held: usize,
    /// New changes that would have waited for their dependencies and were not kept, their
    /// signer's waiting changes being at [`PENDING_PER_SIGNER_MAX`].
    pub not_kept: usize,
}

/// Stores verified changes and applies whatever can be applied under the change rules;
/// refused changes (those refused by verification and those the rules refuse here) are
/// quarantined, at `now_ms`. Changes already held or already quarantined are skipped.
pub fn ingest<S: Store>(
    store: &mut S,
    checked: Vec<Checked>,
    now_ms: u64,
) -> Result<Ingested, S::Error> {
    let mut new = Vec::with_capacity(checked.len());
    let mut refused: Vec<Refused> = Vec::new();
    // What verification already parsed and built, so nothing is parsed or applied twice.
    let mut parsed: BTreeMap<ChangeHash, Change> = BTreeMap::new();
    let mut reads: BTreeMap<ChangeHash, rules::Read> = BTreeMap::new();
    let mut firsts: BTreeMap<RecordId, Box<rules::Created>> = BTreeMap::new();
    let mut seen: BTreeSet<ChangeHash> = BTreeSet::new();
    let mut held: Vec<StoredChange> = Vec::new();
    for c in checked {
        let (hash, time_ms) = match &c {
            Ok(v) => (v.hash, v.time_ms),
            Err(r) => (r.hash, r.time_ms),
        };
        if !seen.insert(hash)
            || store.has_change(&hash)?
            || store.is_quarantined(&hash)?
            || store.is_held(&hash)?
        {
            continue;
        }
        if time_ms > now_ms.saturating_add(FUTURE_HOLD_MS) {
            // Judged when its time comes, by the rules and certificates of then.
            held.push(match c {
                Ok(v) => StoredChange {
                    hash,
                    time_ms,
                    deps: v.deps,
                    signer: v.signer,
                    signed: v.signed,
                },
                Err(r) => StoredChange {
                    hash,
                    time_ms,
                    deps: Vec::new(),
                    signer: r.signer,
                    signed: r.signed,
                },
            });
            continue;
        }
        match c {
            Err(r) => refused.push(r),
            Ok(v) => {
                let Verified {
                    signed,
                    hash,
                    signer,
                    deps,
                    time_ms,
                    change,
                    first,
                    read,
                } = v;
                parsed.insert(hash, change);
                if let Some(read) = read {
                    reads.insert(hash, read);
                }
                if let Some(created) = first {
                    firsts.insert(signed.record, created);
                }
                new.push(StoredChange {
                    hash,
                    time_ms,
                    deps,
                    signer,
                    signed,
                });
            }
        }
    }
    let mut out = Ingested::default();
    if !held.is_empty() {
        // At most `PER_SIGNER_MAX` held per signer, like the quarantine.
        let mut counts: BTreeMap<crate::id::NodeId, usize> = BTreeMap::new();
        for c in store.held()? {
            *counts.entry(c.signer).or_default() += 1;
        }
        held.retain(|c| {
            let n = counts.entry(c.signer).or_default();
            *n += 1;
            *n <= PER_SIGNER_MAX
        });
        out.held = held.len();
        store.put_held(&held)?;
    }
    if new.is_empty() && refused.is_empty() {
        return Ok(out);
    }
    let mut by_record: BTreeMap<RecordId, Vec<ChangeHash>> = BTreeMap::new();
    for c in &new {
        by_record.entry(c.signed.record).or_default().push(c.hash);
    }
    let arrived: BTreeMap<ChangeHash, &StoredChange> = new.iter().map(|c| (c.hash, c)).collect();
    let frontier = store.frontier()?.map(|f| f.body);
    let mut docs = Vec::with_capacity(by_record.len());
    let mut applied: Vec<ChangeHash> = Vec::new();
    let mut rule_refused: BTreeSet<ChangeHash> = BTreeSet::new();
    for (record, hashes) in by_record {
        let first = firsts.remove(&record);
        let ready = apply_ready(
            store,
            record,
            hashes,
            &mut Known {
                arrived: &arrived,
                parsed: &mut parsed,
                reads: &mut reads,
                frontier: frontier.clone(),
            },
            first,
        )?;
        applied.extend(ready.applied);
        for (hash, reason) in ready.refused {
            let stored = match arrived.get(&hash) {
                Some(c) => Some((*c).clone()),
                None => store.change(&hash)?,
            };
            if let Some(c) = stored {
                rule_refused.insert(hash);
                refused.push(Refused {
                    hash,
                    signer: c.signer,
                    time_ms: c.time_ms,
                    signed: c.signed,
                    reason,
                });
            }
        }
        docs.push((record, ready.doc, ready.pending));
    }
    out.applied = applied
        .iter()
        .filter_map(|h| match arrived.get(h) {
            Some(c) => Some(Ok((*c).clone())),
            None => store.change(h).transpose(),
        })
        .collect::<Result<_, _>>()?;
    let mut stored: Vec<StoredChange> = new
        .iter()
        .filter(|c| !rule_refused.contains(&c.hash))
        .cloned()
        .collect();
    // New changes left waiting: at most `PENDING_PER_SIGNER_MAX` per signer.
    let waiting_new: Vec<&StoredChange> = stored
        .iter()
        .filter(|c| {
            docs.iter()
                .any(|(r, _, p)| *r == c.signed.record && p.contains(&c.hash))
        })
        .collect();
    if !waiting_new.is_empty() {
        // (What is counted was stored before this batch: the new ones are not yet.)
        let mut counts = store.waiting_per_signer()?;
        let mut dropped: BTreeSet<ChangeHash> = BTreeSet::new();
        for c in waiting_new {
            let n = counts.entry(c.signer).or_default();
            *n += 1;
            if *n > PENDING_PER_SIGNER_MAX {
                dropped.insert(c.hash);
            }
        }
        if !dropped.is_empty() {
            out.not_kept = dropped.len();
            stored.retain(|c| !dropped.contains(&c.hash));
            for (_, _, pending) in &mut docs {
                pending.retain(|h| !dropped.contains(h));
            }
        }
    }
    // The documents were built from what is in memory; the changes and the documents
    // become durable together. Changes that waited and are applied now come again, to be
    // indexed: only applied changes are announced and served.
    let mut writes = stored.clone();
    writes.extend(
        out.applied
            .iter()
            .filter(|c| !arrived.contains_key(&c.hash))
            .cloned(),
    );
    // Refused changes are moved aside first: a crash in between leaves a waiting set
    // naming a change the store no longer holds, which the next ingest drops, never a
    // refused change among the changes.
    let quarantine = quarantine(store, refused, &rule_refused, &arrived, now_ms, &mut out)?;
    if !quarantine.is_empty() {
        store.put_quarantined(&quarantine)?;
    }
    out.quarantined = quarantine;
    store.put_ingested(&writes, &docs)?;
    out.stored = stored;
    Ok(out)
}

/// The refused changes to keep aside: at most `PER_SIGNER_MAX` per signer. A refused
/// change that was stored while it waited is always moved aside, so that it leaves the
/// changes; the others beyond the bound are dropped (and counted in `out`).
fn quarantine<S: Store>(
    store: &S,
    refused: Vec<Refused>,
    rule_refused: &BTreeSet<ChangeHash>,
    arrived: &BTreeMap<ChangeHash, &StoredChange>,
    now_ms: u64,
    out: &mut Ingested,
) -> Result<Vec<Quarantined>, S::Error> {
    let mut kept = Vec::new();
    let mut counts: BTreeMap<crate::id::NodeId, usize> = BTreeMap::new();
    for r in refused {
        let count = match counts.get(&r.signer) {
            Some(n) => *n,
            None => store.quarantined_count(&r.signer)?,
        };
        let was_stored = rule_refused.contains(&r.hash) && !arrived.contains_key(&r.hash);
        if count >= PER_SIGNER_MAX && !was_stored {
            out.dropped += 1;
            continue;
        }
        counts.insert(r.signer, count + 1);
        kept.push(r.quarantined(now_ms));
    }
    Ok(kept)
}

/// Takes the held changes whose time has come (within [`FUTURE_HOLD_MS`] of `now_ms`),
/// verifies them afresh with the certificates and revocations held now, and ingests them.
/// A node calls this now and then; what it returns is passed on like any ingest's.
pub fn retry_held<S: Store>(store: &mut S, now_ms: u64) -> Result<Ingested, S::Error> {
    retry_held_with(store, now_ms, &crate::signed::InOrder)
}

/// [`retry_held`], checking signatures in parts that `parallel` runs.
pub fn retry_held_with<S: Store>(
    store: &mut S,
    now_ms: u64,
    parallel: &dyn crate::signed::Parallel,
) -> Result<Ingested, S::Error> {
    let due: Vec<StoredChange> = store
        .held()?
        .into_iter()
        .filter(|c| c.time_ms <= now_ms.saturating_add(FUTURE_HOLD_MS))
        .collect();
    if due.is_empty() {
        return Ok(Ingested::default());
    }
    let hashes: Vec<ChangeHash> = due.iter().map(|c| c.hash).collect();
    let revocations = store.revocation_state()?;
    let checked = crate::signed::verify_batch_with(
        due.into_iter().map(|c| c.signed).collect(),
        &crate::store::StoreCerts(&*store),
        &revocations,
        parallel,
    );
    store.remove_held(&hashes)?;
    match checked {
        Ok(checked) => ingest(store, checked, now_ms),
        // They verified when they arrived; a batch that no longer does is dropped, and
        // comes again from its sender if it is good.
        Err(_) => Ok(Ingested::default()),
    }
}

/// Forgets the changes that have waited for their dependencies longer than
/// [`PENDING_EXPIRY_MS`] since they were made, at `now_ms`; returns how many. They leave
/// the store, and come again from a peer that holds them if they are ever wanted.
pub fn expire<S: Store>(store: &mut S, now_ms: u64) -> Result<usize, S::Error> {
    let mut forgotten = 0;
    for (record, hashes) in store.all_pending()? {
        let mut old = BTreeSet::new();
        for h in hashes {
            let stale = match store.change(&h)? {
                Some(c) => now_ms.saturating_sub(c.time_ms) > PENDING_EXPIRY_MS,
                None => true,
            };
            if stale {
                old.insert(h);
            }
        }
        if !old.is_empty() {
            forgotten += old.len();
            store.forget_waiting(record, &old)?;
        }
    }
    Ok(forgotten)
}

/// Rebuilds a record's document from its stored changes, as ingesting them one by one
/// would have built it: for a store that lost the document (a corrupt value) but kept the
/// changes. Returns the document and the changes still waiting for dependencies; changes
/// the rules refuse are left out of both.
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
    let mut reads = BTreeMap::new();
    match apply_ready(
        &scratch,
        record,
        hashes,
        &mut Known {
            arrived: &arrived,
            parsed: &mut parsed,
            reads: &mut reads,
            frontier: None,
        },
        None,
    ) {
        Ok(ready) => (ready.doc, ready.pending),
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
    reads: &'a mut BTreeMap<ChangeHash, rules::Read>,
    /// The newest frontier of revoked keys: a change that waited may meet one that came
    /// after it was verified.
    frontier: Option<crate::cert::FrontierBody>,
}

impl Known<'_> {
    /// The parsed change, from verification or parsed now.
    fn change(&mut self, stored: &StoredChange) -> Result<Change, VerifyError> {
        match self.parsed.remove(&stored.hash) {
            Some(change) => Ok(change),
            None => parse_change(stored.signed.bytes.clone()),
        }
    }
}

/// One record after [`apply_ready`].
struct Ready {
    doc: Automerge,
    pending: BTreeSet<ChangeHash>,
    applied: Vec<ChangeHash>,
    refused: Vec<(ChangeHash, VerifyError)>,
}

/// The record's document as stored, with `good` applied again: after a refusal, the
/// document is never used half-applied.
fn reload<S: Store>(store: &S, record: RecordId, good: &[Change]) -> Result<Automerge, S::Error> {
    let mut doc = store.doc(record)?.unwrap_or_default();
    // These changes passed the rules onto this very document a moment ago.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        doc.apply_changes(good.iter().cloned())
    }));
    Ok(doc)
}

/// Applies the record's pending changes plus `arrived` in dependency order, as far as their
/// dependencies allow, each under the change rules; returns the document and what is still
/// pending, for storing, with what was applied and refused. `first` is the document (and
/// history) a first change made (checked by the rules in verification), for a record not
/// stored yet.
fn apply_ready<S: Store>(
    store: &S,
    record: RecordId,
    arrived: Vec<ChangeHash>,
    known: &mut Known<'_>,
    first: Option<Box<rules::Created>>,
) -> Result<Ready, S::Error> {
    let mut ready = Ready {
        doc: Automerge::new(),
        pending: store.pending(record)?,
        applied: Vec::new(),
        refused: Vec::new(),
    };
    // The changes applied in this call, in order, to load the document again after a
    // refusal.
    let mut good: Vec<Change> = Vec::new();
    let mut history = None;
    ready.doc = match (store.doc(record)?, first) {
        (Some(doc), _) => doc,
        (None, Some(created)) => {
            let rules::Created {
                doc, history: made, ..
            } = *created;
            history = Some(made);
            for hash in doc.get_heads() {
                if let Some(stored) = known.arrived.get(&hash)
                    && let Ok(change) = known.change(stored)
                {
                    good.push(change);
                    ready.applied.push(hash);
                }
            }
            doc
        }
        (None, None) => Automerge::new(),
    };
    let mut history = history.unwrap_or_else(|| History::of(&ready.doc));
    ready.pending.extend(arrived);
    let mut villages = jurisdictions_of(&ready.doc);
    let mut held: BTreeSet<ChangeHash> = BTreeSet::new();
    // Each pass applies at least one change or stops; so at most `pending.len()` passes.
    let passes = ready.pending.len();
    for _ in 0..=passes {
        let mut progress = false;
        for hash in ready.pending.clone() {
            if holds(&ready.doc, &hash) {
                ready.pending.remove(&hash);
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
                        ready.pending.remove(&hash);
                        continue;
                    }
                },
            };
            if !stored.deps.iter().all(|d| holds(&ready.doc, d)) {
                continue;
            }
            ready.pending.remove(&hash);
            // A change whose claimed villages are not its record's would have been
            // authorised for the wrong villages.
            if villages
                .as_ref()
                .is_some_and(|v| *v != stored.signed.jurisdictions)
            {
                ready
                    .refused
                    .push((hash, VerifyError::WrongClaim(stored.signed.record)));
                continue;
            }
            let change = match known.change(stored) {
                Ok(change) => change,
                Err(e) => {
                    ready
                        .refused
                        .push((hash, VerifyError::Rule(RuleError::Apply(e.to_string()))));
                    continue;
                }
            };
            let incarnation = crate::record::actor_parts(change.actor_id()).map_or(0, |(_, i)| i);
            if known.frontier.as_ref().is_some_and(|f| {
                f.allows(&stored.signer, record, incarnation, change.seq()) == Some(false)
            }) {
                // Verified before the frontier arrived, beyond it now.
                ready.refused.push((
                    hash,
                    VerifyError::Certificate {
                        signer: stored.signer,
                        error: crate::cert::CertError::Revoked {
                            serial: 0,
                            node: stored.signer,
                        },
                    },
                ));
                continue;
            }
            let read = known.reads.remove(&hash);
            match rules::apply(&mut ready.doc, &mut history, &change, stored.signer, read) {
                Ok(()) => {
                    if villages.is_none() {
                        // The record's first change: it must be the record and villages
                        // its signature claims (verification checks this too, unless the
                        // change waited for this build to know its schema).
                        let made = jurisdictions_of(&ready.doc);
                        let id = crate::record::id_of(&ready.doc);
                        if made.as_ref() != Some(&stored.signed.jurisdictions)
                            || id != Some(stored.signed.record)
                        {
                            ready
                                .refused
                                .push((hash, VerifyError::WrongClaim(stored.signed.record)));
                            ready.doc = reload(store, record, &good)?;
                            history = History::of(&ready.doc);
                            continue;
                        }
                        villages = made;
                    }
                    progress = true;
                    ready.applied.push(hash);
                    good.push(change);
                }
                Err(e) => {
                    let touched = e.touched_document();
                    if e.is_temporary() {
                        held.insert(hash);
                    } else {
                        ready.refused.push((hash, VerifyError::Rule(e)));
                    }
                    // Most refusals come before the document is touched.
                    if touched {
                        ready.doc = reload(store, record, &good)?;
                        history = History::of(&ready.doc);
                        villages = jurisdictions_of(&ready.doc);
                    }
                }
            }
        }
        if !progress {
            break;
        }
    }
    ready.pending.extend(held);
    Ok(ready)
}

/// Why a local command's changes were not stored.
#[derive(Debug, thiserror::Error)]
pub enum CommitError<E: std::error::Error> {
    /// The store failed.
    #[error("store: {0}")]
    Store(E),
    /// The command wrote a change the change rules refuse: a bug in the command, found
    /// before anything was stored.
    #[error("the command broke the change rules: {0}")]
    Rules(RuleError),
}

/// Signs and stores what a local command just wrote to `record` (every change not an
/// ancestor of `before`), and stores the record's document. Returns the new changes, for
/// the sync sessions to push.
///
/// Each change is held against the change rules on the document as stored, as any peer
/// will hold it: a command that breaks them stores nothing.
pub fn commit_local<S: Store>(
    store: &mut S,
    key: &Keypair,
    record: &dyn crate::signed::Document,
    before: &[ChangeHash],
) -> Result<Vec<StoredChange>, CommitError<S::Error>> {
    let id = record.record_id();
    let mut doc = store
        .doc(id)
        .map_err(CommitError::Store)?
        .unwrap_or_default();
    let mut history = History::of(&doc);
    let mut stored = Vec::new();
    let new = sign_new(key, record, before);
    let last = new.len().saturating_sub(1);
    for (i, signed) in new.into_iter().enumerate() {
        let change = parse_change(signed.bytes.clone())
            .map_err(|e| CommitError::Rules(RuleError::Apply(e.to_string())))?;
        // The command's document holds its changes already: the last one is checked
        // against the document before it, without being applied again.
        if i == last {
            rules::check_local(&doc, record.document(), &mut history, &change, key.public())
        } else {
            rules::apply(&mut doc, &mut history, &change, key.public(), None)
        }
        .map_err(CommitError::Rules)?;
        stored.push(StoredChange {
            hash: change.hash(),
            time_ms: u64::try_from(change.timestamp()).unwrap_or(0),
            deps: change.deps().to_vec(),
            signer: key.public(),
            signed,
        });
    }
    store.put_changes(&stored).map_err(CommitError::Store)?;
    let pending = store.pending(id).map_err(CommitError::Store)?;
    store
        .put_doc(id, record.document(), &pending)
        .map_err(CommitError::Store)?;
    Ok(stored)
}
