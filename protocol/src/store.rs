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

use crate::cert::{CertLookup, Certificate, RevocationList};
use crate::division::{Division, VillageCode};
use crate::id::{NodeId, RecordId};
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
    /// Stores changes and indexes them under every village of their record, all or none.
    fn put_changes(&mut self, changes: &[StoredChange]) -> Result<(), Self::Error>;
    /// The keys of the changes of records that touch a village `division` covers and that
    /// `also` accepts (given the record's villages), in key order.
    fn keys(
        &self,
        division: Division,
        also: &dyn Fn(&[VillageCode]) -> bool,
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
    /// The changes of a record still waiting for their dependencies.
    fn pending(&self, record: RecordId) -> Result<BTreeSet<ChangeHash>, Self::Error>;
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

    /// The time below which this node and `peer` held the same changes at their last
    /// complete session, if there was one.
    fn watermark(&self, peer: &NodeId) -> Result<Option<u64>, Self::Error>;
    /// Records the watermark after a complete session with `peer`.
    fn put_watermark(&mut self, peer: &NodeId, time_ms: u64) -> Result<(), Self::Error>;
}

/// A store in memory. Everything put is "durable" for as long as the value lives; the
/// simulator models a crash by keeping or dropping whole stores.
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    changes: BTreeMap<ChangeHash, StoredChange>,
    index: BTreeMap<VillageCode, BTreeSet<Key>>,
    docs: BTreeMap<RecordId, Automerge>,
    pending: BTreeMap<RecordId, BTreeSet<ChangeHash>>,
    certs: BTreeMap<NodeId, Vec<Certificate>>,
    revocations: Option<RevocationList>,
    watermarks: BTreeMap<NodeId, u64>,
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
                self.index
                    .entry(*v)
                    .or_default()
                    .insert((c.time_ms, c.hash));
            }
            self.changes.insert(c.hash, c.clone());
        }
        Ok(())
    }

    fn keys(
        &self,
        division: Division,
        also: &dyn Fn(&[VillageCode]) -> bool,
    ) -> Result<Vec<Key>, Infallible> {
        let mut out = BTreeSet::new();
        for (village, keys) in &self.index {
            if !division.covers(*village) {
                continue;
            }
            for key in keys {
                if let Some(c) = self.changes.get(&key.1)
                    && also(&c.signed.jurisdictions)
                {
                    out.insert(*key);
                }
            }
        }
        Ok(out.into_iter().collect())
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

    fn watermark(&self, peer: &NodeId) -> Result<Option<u64>, Infallible> {
        Ok(self.watermarks.get(peer).copied())
    }

    fn put_watermark(&mut self, peer: &NodeId, time_ms: u64) -> Result<(), Infallible> {
        self.watermarks.insert(*peer, time_ms);
        Ok(())
    }
}

/// Looks certificates up in a store, treating a store error as "none known".
#[derive(Debug)]
pub struct StoreCerts<'a, S: Store>(pub &'a S);

impl<S: Store> CertLookup for StoreCerts<'_, S> {
    fn certificates(&self, node: &NodeId) -> Vec<Certificate> {
        self.0.certificates_of(node).unwrap_or_default()
    }
}
