//! The node's store: protocol's `Store` over sled.
//!
//! Trees:
//! - `changes`: change hash → stored change;
//! - `index`: village code (8 bytes) ‖ time (8 bytes) ‖ hash → empty, the reconciliation
//!   index per village;
//! - `docs`: record id → saved Automerge document;
//! - `pending`: record id → hashes waiting for their dependencies;
//! - `certs`: node key → its certificates;
//! - `meta`: the revocation list, the per-peer watermarks and the peers' last syncs;
//! - `views`: record id → its view as JSON, the materialised read model for lists and
//!   dashboards. A view is removed in the same transaction that writes its document, and
//!   the record is marked dirty, so a view is never older than its document: the node
//!   recomputes dirty views when they are next read.
//!
//! Every value starts with a CRC-32 of the rest, checked on every read: a torn or
//! bit-flipped record is reported as `StoreError::Corrupt` and never served. Every write
//! is flushed before it returns, so what the store acknowledges survives a crash.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use automerge::{Automerge, ChangeHash};
use guihe_protocol::cert::{Certificate, Frontier, RevocationList, Settings};
use guihe_protocol::division::{Division, VillageCode};
use guihe_protocol::id::{NodeId, RecordId};
use guihe_protocol::quarantine::{OwnRefused, Quarantined};
use guihe_protocol::signed::SignedChange;
use guihe_protocol::store::{Key, Store, StoredChange};
use serde::{Deserialize, Serialize};
use sled::Transactional;

mod keys;
mod protocol;
mod repair;
#[cfg(test)]
mod tests;

use keys::*;
use repair::Mark;
pub use repair::Repair;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (IO, a full disk).
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    /// A value failed its checksum or did not decode.
    #[error("corrupt {tree} record {key}: {reason}")]
    Corrupt {
        /// The tree.
        tree: &'static str,
        /// The key, in hex.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// A value could not be encoded.
    #[error("encoding: {0}")]
    Encode(String),
    /// sled opened, but its log ends before the last change this store made durable: a
    /// damaged log that sled read only up to the damage.
    #[error(
        "the log ends before the last change stored ({0}); records written after the damage are missing"
    )]
    Truncated(String),
}

impl StoreError {
    /// Whether the disk is full (sled could not write).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Sled(sled::Error::Io(e))
            if e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28))
    }

    /// Whether another process (a command run by hand, say) holds the store's lock.
    pub fn is_locked(&self) -> bool {
        matches!(self, StoreError::Sled(sled::Error::Io(e))
            if e.to_string().contains("could not acquire lock"))
    }

    /// Whether sled found its own files damaged (a failed checksum in its log or
    /// snapshot), so that it will not open them.
    pub fn is_damaged(&self) -> bool {
        matches!(
            self,
            StoreError::Sled(sled::Error::Corruption { .. } | sled::Error::ReportableBug(_))
                | StoreError::Truncated(_)
        )
    }
}

/// Store settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// sled's page cache, in bytes. sled's default (1 GiB) is far too much for a village
    /// PC.
    pub cache_bytes: u64,
    /// Check at opening that the last change made durable is there (see [`Mark`]).
    pub check_mark: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cache_bytes: 32 * 1024 * 1024,
            check_mark: true,
        }
    }
}

/// The sled store.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    changes: sled::Tree,
    index: sled::Tree,
    docs: sled::Tree,
    pending: sled::Tree,
    certs: sled::Tree,
    meta: sled::Tree,
    views: sled::Tree,
    accounts: sled::Tree,
    /// Refused changes kept aside, by hash (`guihe_protocol::quarantine`).
    quarantine: sled::Tree,
    /// Changes stamped too far in the future, held until their time comes, by hash.
    held: sled::Tree,
    /// Records whose document changed since their view was last stored.
    dirty: std::sync::Arc<std::sync::Mutex<BTreeSet<RecordId>>>,
    mark: Mark,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path, options: &Options) -> Result<SledStore, StoreError> {
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(options.cache_bytes);
        // sled reads its files with checksums and reports damage as an error; should some
        // damage make it panic instead, that is reported as damage too, never a crash.
        let db = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()))
            .map_err(|_| {
                StoreError::Sled(sled::Error::ReportableBug(
                    "sled failed while reading its files".into(),
                ))
            })??;
        let store = SledStore {
            changes: db.open_tree("changes")?,
            index: db.open_tree("index")?,
            docs: db.open_tree("docs")?,
            pending: db.open_tree("pending")?,
            certs: db.open_tree("certs")?,
            meta: db.open_tree("meta")?,
            views: db.open_tree("views")?,
            accounts: db.open_tree("accounts")?,
            quarantine: db.open_tree("quarantine")?,
            held: db.open_tree("held")?,
            dirty: Default::default(),
            mark: Mark::of(dir),
            db,
        };
        // (A mark not synced to disk may name a change kept aside since, after a power
        // cut: that change was durable, so the store is whole.)
        if options.check_mark
            && let Some(hash) = store.mark.read()
            && !store.changes.contains_key(hash)?
            && !store.quarantine.contains_key(hash)?
        {
            return Err(StoreError::Truncated(
                hash.iter().take(8).map(|b| format!("{b:02x}")).collect(),
            ));
        }
        // Documents without a stored view (a crash between the two, or a store from before
        // views were kept) have theirs computed when next read.
        let mut dirty = BTreeSet::new();
        for k in store.docs.iter().keys() {
            let k = k?;
            if !store.views.contains_key(&k)?
                && let Ok(record) = postcard::from_bytes::<RecordId>(&k)
            {
                dirty.insert(record);
            }
        }
        store.mark_dirty(dirty);
        Ok(store)
    }

    /// Makes everything written so far durable; fails once sled has failed a write.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Writes changes, and their index entries if `index`, without flushing.
    fn write_changes(&self, changes: &[StoredChange], index: bool) -> Result<(), StoreError> {
        let mut change_batch = sled::Batch::default();
        let mut index_batch = sled::Batch::default();
        for c in changes {
            let value = encode(&ChangeValue {
                time_ms: c.time_ms,
                deps: c.deps.iter().map(|d| d.0).collect(),
                signer: c.signer,
                signed: c.signed.clone(),
            })?;
            change_batch.insert(&c.hash.0, value);
            if index {
                let value = index_value(&c.signed.jurisdictions)?;
                for v in &c.signed.jurisdictions {
                    index_batch.insert(index_key(*v, c.time_ms, &c.hash), value.as_slice());
                }
            }
        }
        // The changes first: an index entry must never point at a change that is not
        // there. A crash between the two leaves changes that the index does not list yet;
        // they are found again when a peer offers them and `put_changes` runs once more.
        self.changes.apply_batch(change_batch)?;
        self.index.apply_batch(index_batch)?;
        Ok(())
    }

    /// Writes documents and their pending sets, without flushing.
    fn write_docs(
        &self,
        docs: &[(RecordId, Automerge, BTreeSet<ChangeHash>)],
    ) -> Result<(), StoreError> {
        let mut values = Vec::with_capacity(docs.len());
        for (record, doc, pending) in docs {
            let pending_value: Vec<[u8; 32]> = pending.iter().map(|h| h.0).collect();
            values.push((
                record_key(*record)?,
                seal(&doc.save_nocompress()),
                encode(&pending_value)?,
                pending.is_empty(),
            ));
        }
        // The views go first: sled recovers a prefix of its log, so a document is never
        // durable while the view made from its older self survives.
        let mut stale = sled::Batch::default();
        for (key, _, _, _) in &values {
            stale.remove(key.as_slice());
        }
        self.views.apply_batch(stale)?;
        // One transaction over both trees: a document and its pending set never disagree
        // after a crash.
        (&self.docs, &self.pending)
            .transaction(|(docs, pend)| {
                for (key, doc, pending, empty) in &values {
                    docs.insert(key.as_slice(), doc.as_slice())?;
                    if *empty {
                        pend.remove(key.as_slice())?;
                    } else {
                        pend.insert(key.as_slice(), pending.as_slice())?;
                    }
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
                sled::transaction::TransactionError::Abort(()) => {
                    StoreError::Encode("aborted".into())
                }
            })?;
        self.mark_dirty(docs.iter().map(|(r, _, _)| *r));
        Ok(())
    }

    /// Stores a staff account (JSON), replacing one of the same name; flushed.
    pub fn put_account(&self, name: &str, json: &[u8]) -> Result<(), StoreError> {
        self.accounts.insert(name.as_bytes(), seal(json))?;
        self.flush()
    }

    /// A staff account (JSON) by name.
    pub fn account(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.accounts.get(name.as_bytes())? {
            None => Ok(None),
            Some(v) => Ok(Some(open("accounts", name.as_bytes(), &v)?.to_vec())),
        }
    }

    /// Number of staff accounts.
    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    /// Marks a record's stored view as not to be trusted: it is computed again.
    pub fn mark_stale(&self, record: RecordId) {
        self.mark_dirty([record]);
    }

    fn mark_dirty(&self, records: impl IntoIterator<Item = RecordId>) {
        if let Ok(mut dirty) = self.dirty.lock() {
            dirty.extend(records);
        }
    }

    /// The records whose view must be computed again, emptying the set.
    pub fn take_dirty(&self) -> BTreeSet<RecordId> {
        self.dirty
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default()
    }

    /// Stores a record's view (JSON). Not flushed: a lost view is computed again.
    pub fn put_view(&self, record: RecordId, json: &[u8]) -> Result<(), StoreError> {
        self.views.insert(record_key(record)?, seal(json))?;
        Ok(())
    }

    /// Every stored view (JSON) with its record; corrupt ones are dropped and their
    /// records marked dirty.
    pub fn stored_views(&self) -> Result<Vec<(RecordId, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for item in self.views.iter() {
            let (k, v) = item?;
            let record = postcard::from_bytes::<RecordId>(&k).ok();
            match (record, open("views", &k, &v)) {
                (Some(r), Ok(body)) => out.push((r, body.to_vec())),
                (record, _) => {
                    bad.push(k);
                    self.mark_dirty(record);
                }
            }
        }
        for k in bad {
            self.views.remove(k)?;
        }
        Ok(out)
    }

    /// Drops every stored view unless they were made under `rules` (the deadline rules as
    /// text): views depend on them.
    pub fn views_made_under(&self, rules: &str) -> Result<(), StoreError> {
        let held = self
            .meta
            .get(b"views-rules")?
            .and_then(|v| open("meta", b"views-rules", &v).ok().map(<[u8]>::to_vec));
        if held.as_deref() != Some(rules.as_bytes()) {
            self.views.clear()?;
            let mut all = BTreeSet::new();
            for k in self.docs.iter().keys() {
                if let Ok(r) = postcard::from_bytes::<RecordId>(&k?) {
                    all.insert(r);
                }
            }
            self.mark_dirty(all);
            self.meta.insert(b"views-rules", seal(rules.as_bytes()))?;
        }
        Ok(())
    }

    /// Number of changes held.
    pub fn change_count(&self) -> usize {
        self.changes.len()
    }

    /// Number of records whose document is held.
    pub fn record_count(&self) -> usize {
        self.docs.len()
    }

    /// Number of changes waiting for their dependencies. Only the few records with
    /// waiting changes are read, so this is cheap on a county's store.
    pub fn pending_count(&self) -> usize {
        self.pending
            .iter()
            .filter_map(Result::ok)
            .map(|(k, v)| {
                decode::<Vec<[u8; 32]>>("pending", &k, &v)
                    .map(|h| h.len())
                    .unwrap_or(0)
            })
            .sum()
    }

    /// The newest change held for each village, by the change's own time: how fresh
    /// each office's data is here. Two index reads per village.
    pub fn freshness(&self) -> Result<Vec<(VillageCode, u64)>, StoreError> {
        let mut out = Vec::new();
        let mut from = 0u64;
        while let Some(first) = self
            .index
            .range(from.to_be_bytes().as_slice()..)
            .keys()
            .next()
        {
            let first = first?;
            let Some(village) = first
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
            else {
                break;
            };
            let next = village.saturating_add(1);
            let newest = self
                .index
                .range(village.to_be_bytes().as_slice()..next.to_be_bytes().as_slice())
                .keys()
                .next_back()
                .transpose()?
                .and_then(|k| parse_index_key(&k))
                .map(|(time, _)| time);
            if let (Ok(code), Some(time)) = (VillageCode::from_u64(village), newest) {
                out.push((code, time));
            }
            if next == 0 {
                break;
            }
            from = next;
        }
        Ok(out)
    }

    /// Records holding entries of a revoked key beyond its frontier, applied here before
    /// the frontier arrived: shown for review (`guihe_protocol::revoke::beyond_frontier`).
    pub fn flagged(&self) -> BTreeSet<RecordId> {
        self.meta
            .get(b"flagged")
            .ok()
            .flatten()
            .and_then(|v| decode::<Vec<RecordId>>("meta", b"flagged", &v).ok())
            .map(|v| v.into_iter().collect())
            .unwrap_or_default()
    }

    /// Adds records to those shown for review, and has their views made again.
    pub fn flag(&self, records: &[RecordId]) -> Result<(), StoreError> {
        let mut all = self.flagged();
        all.extend(records.iter().copied());
        let list: Vec<RecordId> = all.into_iter().collect();
        self.meta.insert(b"flagged", encode(&list)?)?;
        self.flush()?;
        for r in records {
            self.mark_stale(*r);
        }
        Ok(())
    }

    /// When this node last wrote (by its own clock), kept across restarts so that a
    /// clock set back is caught (`Replica::check_clock`).
    pub fn last_write_ms(&self) -> u64 {
        self.meta
            .get(b"last_write_ms")
            .ok()
            .flatten()
            .and_then(|v| decode::<u64>("meta", b"last_write_ms", &v).ok())
            .unwrap_or(0)
    }

    /// Keeps when this node last wrote; flushed with the write that follows it.
    pub fn put_last_write_ms(&self, ms: u64) -> Result<(), StoreError> {
        self.meta.insert(b"last_write_ms", encode(&ms)?)?;
        Ok(())
    }

    /// Keeps what the daemon knows of a peer (its last sync), so that it survives a
    /// restart. Not flushed: it is a report, not a record.
    pub fn put_peer(&self, peer: &str, report: &[u8]) -> Result<(), StoreError> {
        let mut key = b"peer/".to_vec();
        key.extend_from_slice(peer.as_bytes());
        self.meta.insert(key, seal(report))?;
        Ok(())
    }

    /// The peer reports kept by [`SledStore::put_peer`]; corrupt ones are skipped.
    pub fn peers(&self) -> Vec<Vec<u8>> {
        self.meta
            .scan_prefix(b"peer/")
            .filter_map(Result::ok)
            .filter_map(|(k, v)| open("meta", &k, &v).ok().map(<[u8]>::to_vec))
            .collect()
    }

    /// The size of the store on disk, in bytes.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}
