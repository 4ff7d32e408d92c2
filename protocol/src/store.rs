//! What the protocol needs from storage, and an in-memory store for tests and the
//! simulator. The node's sled store implements the same trait.
//!
//! A store holds: change records by hash (with their record, villages, time and
//! signature), the current Automerge document of each record, the reconciliation index of
//! change keys `(time, hash)` per village, the changes whose dependencies have not arrived
//! yet, the certificates it has verified and the newest revocation list. Every `put_*` is
//! durable when it returns: a store that acknowledges a write keeps it through a crash.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{Automerge, ChangeHash};

use crate::cert::{CertLookup, Certificate, Frontier, RevocationList, Revocations, Settings};
use crate::division::Division;
use crate::id::{NodeId, RecordId};
use crate::quarantine::{OWN_REFUSED_MAX, OwnRefused, Quarantined};
use crate::signed::SignedChange;

/// A change as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChange {
    /// Its hash.
    pub hash: ChangeHash,
    /// When it was made (the reconciliation key's first part).
    pub time_ms: u64,
    /// The hashes it depends on.
    pub deps: Vec<ChangeHash>,
    /// The node that made and signed it.
    pub signer: NodeId,
    /// The change and its signature, as they travel.
    pub signed: SignedChange,
}

/// A key in the reconciliation index.
pub type Key = (u64, ChangeHash);

/// Storage for the protocol.
pub trait Store {
    /// The store's error (IO, corruption).
    type Error: std::error::Error + Send + Sync + 'static;

    /// A change by hash.
    fn change(&self, hash: &ChangeHash) -> Result<Option<StoredChange>, Self::Error>;
    /// Whether the store holds a change.
    fn has_change(&self, hash: &ChangeHash) -> Result<bool, Self::Error>;
    /// Stores changes and indexes them under every division of their record (its villages,
    /// or the owner of a division's own record), all or none.
    fn put_changes(&mut self, changes: &[StoredChange]) -> Result<(), Self::Error>;
    /// The keys of the changes of records that belong to a division inside `division` and
    /// that `also` accepts (given the record's divisions), in key order.
    fn keys(
        &self,
        division: Division,
        also: &dyn Fn(&[Division]) -> bool,
    ) -> Result<Vec<Key>, Self::Error>;

    /// A record's current document.
    fn doc(&self, record: RecordId) -> Result<Option<Automerge>, Self::Error>;
    /// Stores a record's document and the changes still waiting for their dependencies.
    fn put_doc(
        &mut self,
        record: RecordId,
        doc: &Automerge,
        pending: &BTreeSet<ChangeHash>,
    ) -> Result<(), Self::Error>;
    /// Stores several records' documents and pending sets at once (durable when it
    /// returns). Stores that can make one batch durable in one step override this.
    fn put_docs(
        &mut self,
        docs: &[(RecordId, Automerge, BTreeSet<ChangeHash>)],
    ) -> Result<(), Self::Error> {
        for (record, doc, pending) in docs {
            self.put_doc(*record, doc, pending)?;
        }
        Ok(())
    }
    /// Stores changes without indexing them: changes waiting for their dependencies, which
    /// are neither announced nor served until they are applied.
    fn put_waiting(&mut self, changes: &[StoredChange]) -> Result<(), Self::Error>;
    /// Stores changes that arrived (or that waited and are applied now) and the documents
    /// they brought up to date, all durable when it returns; a crash may keep the changes
    /// without the documents, never the reverse. A change that one of the documents'
    /// pending sets holds is stored but not indexed (see [`Store::put_waiting`]); it is
    /// indexed when it comes again here with its record's document, applied. Stores that
    /// can make all of it durable in one step override this.
    fn put_ingested(
        &mut self,
        changes: &[StoredChange],
        docs: &[(RecordId, Automerge, BTreeSet<ChangeHash>)],
    ) -> Result<(), Self::Error> {
        let (waiting, ready) = split_waiting(changes, docs);
        self.put_waiting(&waiting)?;
        self.put_changes(&ready)?;
        self.put_docs(docs)
    }
    /// The changes of a record still waiting for their dependencies.
    fn pending(&self, record: RecordId) -> Result<BTreeSet<ChangeHash>, Self::Error>;
    /// Every record with changes waiting, and those changes.
    fn all_pending(&self) -> Result<Vec<(RecordId, BTreeSet<ChangeHash>)>, Self::Error>;
    /// How many changes waiting for their dependencies each signer has.
    fn waiting_per_signer(&self) -> Result<BTreeMap<NodeId, usize>, Self::Error> {
        let mut counts = BTreeMap::new();
        for (_, hashes) in self.all_pending()? {
            for h in hashes {
                if let Some(c) = self.change(&h)? {
                    *counts.entry(c.signer).or_default() += 1;
                }
            }
        }
        Ok(counts)
    }
    /// Forgets changes that waited too long for their dependencies (`ingest::expire`): out
    /// of the store and of their record's pending set, so that they can be fetched again.
    fn forget_waiting(
        &mut self,
        record: RecordId,
        hashes: &BTreeSet<ChangeHash>,
    ) -> Result<(), Self::Error>;
    /// All records held.
    fn records(&self) -> Result<Vec<RecordId>, Self::Error>;

    /// Certificates known for a node.
    fn certificates_of(&self, node: &NodeId) -> Result<Vec<Certificate>, Self::Error>;
    /// Keeps a certificate already verified against the county root.
    fn put_certificate(&mut self, cert: &Certificate) -> Result<(), Self::Error>;
    /// The newest revocation list, if any.
    fn revocations(&self) -> Result<Option<RevocationList>, Self::Error>;
    /// Keeps a newer revocation list already verified against the county root.
    fn put_revocations(&mut self, list: &RevocationList) -> Result<(), Self::Error>;
    /// The newest frontier of revoked keys, if any.
    fn frontier(&self) -> Result<Option<Frontier>, Self::Error>;
    /// Keeps a newer frontier already verified against the county root.
    fn put_frontier(&mut self, frontier: &Frontier) -> Result<(), Self::Error>;
    /// What a verifier needs of revocations: the newest list and frontier.
    fn revocation_state(&self) -> Result<Revocations, Self::Error> {
        Ok(Revocations {
            list: self.revocations()?.map(|l| l.body).unwrap_or_default(),
            frontier: self.frontier()?.map(|f| f.body),
        })
    }

    /// Keeps refused changes aside (`quarantine`): never applied, indexed, served or
    /// relayed. A change among them that is stored (as pending) is removed from the
    /// changes and the index. Durable when it returns.
    fn put_quarantined(&mut self, refused: &[Quarantined]) -> Result<(), Self::Error>;
    /// Whether a change was refused and is kept aside.
    fn is_quarantined(&self, hash: &ChangeHash) -> Result<bool, Self::Error>;
    /// Every change kept aside.
    fn quarantined(&self) -> Result<Vec<Quarantined>, Self::Error>;
    /// Keeps changes stamped too far in the future aside until their time comes
    /// (`ingest::retry_held`): never applied, indexed, served or relayed before.
    fn put_held(&mut self, held: &[StoredChange]) -> Result<(), Self::Error>;
    /// Whether a change is held for its time to come.
    fn is_held(&self, hash: &ChangeHash) -> Result<bool, Self::Error>;
    /// Every change held for its time to come.
    fn held(&self) -> Result<Vec<StoredChange>, Self::Error>;
    /// Stops holding these changes (their time came).
    fn remove_held(&mut self, hashes: &[ChangeHash]) -> Result<(), Self::Error>;
    /// The newest county settings held (`cert::Settings`).
    fn settings(&self) -> Result<Option<Settings>, Self::Error>;
    /// Stores county settings (already verified and newer). Durable when it returns.
    fn put_settings(&mut self, settings: &Settings) -> Result<(), Self::Error>;
    /// Keeps what an office above said it refused of this node's own changes: the first
    /// per record, at most [`crate::quarantine::OWN_REFUSED_MAX`] (see
    /// [`merge_own_refused`]). Durable when it returns.
    fn put_own_refused(&mut self, refused: &[OwnRefused]) -> Result<(), Self::Error>;
    /// Changes of this node's own that an office above said it refused, one per record.
    fn own_refused(&self) -> Result<Vec<OwnRefused>, Self::Error>;

    /// How many changes of `signer` are kept aside.
    fn quarantined_count(&self, signer: &NodeId) -> Result<usize, Self::Error> {
        Ok(self
            .quarantined()?
            .iter()
            .filter(|q| q.signer == *signer)
            .count())
    }

    /// The time below which this node and `peer` held the same changes at their last
    /// complete session, if there was one.
    fn watermark(&self, peer: &NodeId) -> Result<Option<u64>, Self::Error>;
    /// Records the watermark after a complete session with `peer`.
    fn put_watermark(&mut self, peer: &NodeId, time_ms: u64) -> Result<(), Self::Error>;
}

/// Splits changes into those the documents' pending sets hold (waiting) and the rest.
pub fn split_waiting(
    changes: &[StoredChange],
    docs: &[(RecordId, Automerge, BTreeSet<ChangeHash>)],
) -> (Vec<StoredChange>, Vec<StoredChange>) {
    changes.iter().cloned().partition(|c| {
        docs.iter()
            .any(|(record, _, pending)| *record == c.signed.record && pending.contains(&c.hash))
    })
}

/// A store in memory. Everything put is "durable" for as long as the value lives; the
/// simulator models a crash by keeping or dropping whole stores.
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    changes: BTreeMap<ChangeHash, StoredChange>,
    index: BTreeMap<Division, Bucket>,
    docs: BTreeMap<RecordId, Automerge>,
    pending: BTreeMap<RecordId, BTreeSet<ChangeHash>>,
    certs: BTreeMap<NodeId, Vec<Certificate>>,
    revocations: Option<RevocationList>,
    frontier: Option<Frontier>,
    watermarks: BTreeMap<NodeId, u64>,
    quarantine: BTreeMap<ChangeHash, Quarantined>,
    held: BTreeMap<ChangeHash, StoredChange>,
    own_refused: Vec<OwnRefused>,
    settings: Option<Settings>,
}

/// The keys indexed under one division. Most records belong to that division alone; the
/// others keep their divisions beside their keys, so that a scope is decided once per
/// division for the first and once per key only for the second (a session asks for its
/// scope's keys at every contact).
#[derive(Debug, Clone, Default)]
struct Bucket {
    alone: BTreeSet<Key>,
    shared: BTreeMap<Key, Vec<Division>>,
}

impl Bucket {
    fn insert(&mut self, here: Division, key: Key, divisions: &[Division]) {
        if divisions == [here] {
            self.alone.insert(key);
        } else {
            self.shared.insert(key, divisions.to_vec());
        }
    }

    fn remove(&mut self, key: &Key) {
        self.alone.remove(key);
        self.shared.remove(key);
    }
}

/// The in-memory store cannot fail.
#[derive(Debug, thiserror::Error)]
#[error("the in-memory store cannot fail")]
pub enum Infallible {}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// Number of changes held.
    pub fn change_count(&self) -> usize {
        self.changes.len()
    }

    /// Bytes of all changes held (the changes themselves, not their signatures).
    pub fn change_bytes(&self) -> usize {
        self.changes.values().map(|c| c.signed.bytes.len()).sum()
    }
}

impl Store for MemStore {
    type Error = Infallible;

    fn change(&self, hash: &ChangeHash) -> Result<Option<StoredChange>, Infallible> {
        Ok(self.changes.get(hash).cloned())
    }

    fn has_change(&self, hash: &ChangeHash) -> Result<bool, Infallible> {
        Ok(self.changes.contains_key(hash))
    }

    fn put_changes(&mut self, changes: &[StoredChange]) -> Result<(), Infallible> {
        for c in changes {
            for v in &c.signed.jurisdictions {
                self.index.entry(*v).or_default().insert(
                    *v,
                    (c.time_ms, c.hash),
                    &c.signed.jurisdictions,
                );
            }
            self.changes.insert(c.hash, c.clone());
        }
        Ok(())
    }

    fn put_waiting(&mut self, changes: &[StoredChange]) -> Result<(), Infallible> {
        for c in changes {
            self.changes.insert(c.hash, c.clone());
        }
        Ok(())
    }

    fn keys(
        &self,
        division: Division,
        also: &dyn Fn(&[Division]) -> bool,
    ) -> Result<Vec<Key>, Infallible> {
        let mut out = Vec::new();
        // Whether `out` is more than one ordered run: keys of several divisions, or of
        // records shared with other divisions (indexed under each of them).
        let mut runs = 0;
        for (here, bucket) in &self.index {
            if !division.contains(*here) {
                continue;
            }
            if also(&[*here]) && !bucket.alone.is_empty() {
                out.extend(bucket.alone.iter().copied());
                runs += 1;
            }
            let before = out.len();
            out.extend(
                bucket
                    .shared
                    .iter()
                    .filter(|(_, divisions)| also(divisions))
                    .map(|(key, _)| *key),
            );
            runs += usize::from(out.len() > before);
        }
        if runs > 1 {
            out.sort_unstable();
            out.dedup();
        }
        Ok(out)
    }

    fn doc(&self, record: RecordId) -> Result<Option<Automerge>, Infallible> {
        Ok(self.docs.get(&record).cloned())
    }

    fn put_doc(
        &mut self,
        record: RecordId,
        doc: &Automerge,
        pending: &BTreeSet<ChangeHash>,
    ) -> Result<(), Infallible> {
        self.docs.insert(record, doc.clone());
        if pending.is_empty() {
            self.pending.remove(&record);
        } else {
            self.pending.insert(record, pending.clone());
        }
        Ok(())
    }

    fn pending(&self, record: RecordId) -> Result<BTreeSet<ChangeHash>, Infallible> {
        Ok(self.pending.get(&record).cloned().unwrap_or_default())
    }

    fn waiting_per_signer(&self) -> Result<BTreeMap<NodeId, usize>, Infallible> {
        let mut counts = BTreeMap::new();
        for hashes in self.pending.values() {
            for h in hashes {
                if let Some(c) = self.changes.get(h) {
                    *counts.entry(c.signer).or_default() += 1;
                }
            }
        }
        Ok(counts)
    }

    fn all_pending(&self) -> Result<Vec<(RecordId, BTreeSet<ChangeHash>)>, Infallible> {
        Ok(self.pending.iter().map(|(r, p)| (*r, p.clone())).collect())
    }

    fn forget_waiting(
        &mut self,
        record: RecordId,
        hashes: &BTreeSet<ChangeHash>,
    ) -> Result<(), Infallible> {
        for h in hashes {
            // (A change waiting is not indexed, unless a repair indexed it before it was
            // found waiting: it leaves the index too, so that peers offer it again.)
            if let Some(c) = self.changes.remove(h) {
                for v in &c.signed.jurisdictions {
                    if let Some(bucket) = self.index.get_mut(v) {
                        bucket.remove(&(c.time_ms, *h));
                    }
                }
            }
        }
        if let Some(p) = self.pending.get_mut(&record) {
            p.retain(|h| !hashes.contains(h));
            if p.is_empty() {
                self.pending.remove(&record);
            }
        }
        Ok(())
    }

    fn records(&self) -> Result<Vec<RecordId>, Infallible> {
        let mut ids: BTreeSet<RecordId> = self.docs.keys().copied().collect();
        ids.extend(self.pending.keys().copied());
        Ok(ids.into_iter().collect())
    }

    fn certificates_of(&self, node: &NodeId) -> Result<Vec<Certificate>, Infallible> {
        Ok(self.certs.get(node).cloned().unwrap_or_default())
    }

    fn put_certificate(&mut self, cert: &Certificate) -> Result<(), Infallible> {
        let list = self.certs.entry(cert.node()).or_default();
        if !list.contains(cert) {
            list.push(cert.clone());
        }
        Ok(())
    }

    fn revocations(&self) -> Result<Option<RevocationList>, Infallible> {
        Ok(self.revocations.clone())
    }

    fn put_revocations(&mut self, list: &RevocationList) -> Result<(), Infallible> {
        self.revocations = Some(list.clone());
        Ok(())
    }

    fn frontier(&self) -> Result<Option<Frontier>, Infallible> {
        Ok(self.frontier.clone())
    }

    fn put_frontier(&mut self, frontier: &Frontier) -> Result<(), Infallible> {
        self.frontier = Some(frontier.clone());
        Ok(())
    }

    fn put_quarantined(&mut self, refused: &[Quarantined]) -> Result<(), Infallible> {
        for q in refused {
            let hash = q.change_hash();
            if let Some(c) = self.changes.remove(&hash) {
                for v in &c.signed.jurisdictions {
                    if let Some(bucket) = self.index.get_mut(v) {
                        bucket.remove(&(c.time_ms, hash));
                    }
                }
            }
            self.quarantine.insert(hash, q.clone());
        }
        Ok(())
    }

    fn is_quarantined(&self, hash: &ChangeHash) -> Result<bool, Infallible> {
        Ok(self.quarantine.contains_key(hash))
    }

    fn put_held(&mut self, held: &[StoredChange]) -> Result<(), Infallible> {
        for c in held {
            self.held.insert(c.hash, c.clone());
        }
        Ok(())
    }

    fn is_held(&self, hash: &ChangeHash) -> Result<bool, Infallible> {
        Ok(self.held.contains_key(hash))
    }

    fn held(&self) -> Result<Vec<StoredChange>, Infallible> {
        Ok(self.held.values().cloned().collect())
    }

    fn remove_held(&mut self, hashes: &[ChangeHash]) -> Result<(), Infallible> {
        for h in hashes {
            self.held.remove(h);
        }
        Ok(())
    }

    fn quarantined(&self) -> Result<Vec<Quarantined>, Infallible> {
        Ok(self.quarantine.values().cloned().collect())
    }

    fn put_own_refused(&mut self, refused: &[OwnRefused]) -> Result<(), Infallible> {
        self.own_refused = merge_own_refused(std::mem::take(&mut self.own_refused), refused);
        Ok(())
    }

    fn own_refused(&self) -> Result<Vec<OwnRefused>, Infallible> {
        Ok(self.own_refused.clone())
    }

    fn settings(&self) -> Result<Option<Settings>, Infallible> {
        Ok(self.settings.clone())
    }

    fn put_settings(&mut self, settings: &Settings) -> Result<(), Infallible> {
        self.settings = Some(settings.clone());
        Ok(())
    }

    fn watermark(&self, peer: &NodeId) -> Result<Option<u64>, Infallible> {
        Ok(self.watermarks.get(peer).copied())
    }

    fn put_watermark(&mut self, peer: &NodeId, time_ms: u64) -> Result<(), Infallible> {
        self.watermarks.insert(*peer, time_ms);
        Ok(())
    }
}

/// What a store keeps of its own refused changes after `new` arrive: the first per record,
/// in arrival order, at most [`OWN_REFUSED_MAX`] (none is ever forgotten: beyond that, new
/// ones are not kept). Every store keeps them so.
pub fn merge_own_refused(mut kept: Vec<OwnRefused>, new: &[OwnRefused]) -> Vec<OwnRefused> {
    for r in new {
        if kept.len() < OWN_REFUSED_MAX && !kept.iter().any(|k| k.record == r.record) {
            kept.push(r.clone());
        }
    }
    kept
}

/// Looks certificates up in a store, treating a store error as "none known".
#[derive(Debug)]
pub struct StoreCerts<'a, S: Store>(pub &'a S);

impl<S: Store> CertLookup for StoreCerts<'_, S> {
    fn certificates(&self, node: &NodeId) -> Vec<Certificate> {
        self.0.certificates_of(node).unwrap_or_default()
    }
}
