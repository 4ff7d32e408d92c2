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

/// What [`SledStore::repair`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Repair {
    /// Corrupt changes dropped, to be fetched again from peers.
    pub changes_dropped: usize,
    /// Documents rebuilt from their records' changes.
    pub docs_rebuilt: usize,
    /// Other entries dropped (certificates, watermarks, the revocation list, unreadable
    /// keys), which peers send again.
    pub other_dropped: usize,
}

impl Repair {
    /// Whether anything was repaired.
    pub fn is_empty(&self) -> bool {
        *self == Repair::default()
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

/// The hash of the last change made durable, in a small file in sled's folder
/// (`guihe.mark`), written after each flush that stored changes. sled reads a damaged log
/// only up to the damage and may open without a word; a store whose last change is
/// missing is then known to be damaged. The file is written after sled's flush, never
/// before, so it never names a change that was not made durable.
#[derive(Debug, Clone)]
struct Mark(std::path::PathBuf);

impl Mark {
    fn of(dir: &Path) -> Mark {
        Mark(dir.join("guihe.mark"))
    }

    fn read(&self) -> Option<[u8; 32]> {
        let bytes = std::fs::read(&self.0).ok()?;
        bytes.get(..32)?.try_into().ok()
    }

    fn write(&self, hash: &ChangeHash) {
        // Not flushed to disk on its own: after a power cut it may name an older change,
        // which weakens the check but never makes it wrong.
        let tmp = self.0.with_extension("new");
        if std::fs::write(&tmp, hash.0).is_ok() {
            let _ = std::fs::rename(&tmp, &self.0);
        }
    }

    fn forget(&self) {
        let _ = std::fs::remove_file(&self.0);
    }

    /// The changes named leave the store on purpose (kept aside, or forgotten after
    /// waiting too long): a mark naming one of them would make the store look damaged at
    /// its next opening, so it is forgotten until the next change is stored.
    fn leaving(&self, hashes: impl IntoIterator<Item = ChangeHash>) {
        if let Some(marked) = self.read()
            && hashes.into_iter().any(|h| h.0 == marked)
        {
            self.forget();
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

#[derive(Serialize, Deserialize)]
struct ChangeValue {
    time_ms: u64,
    deps: Vec<[u8; 32]>,
    signer: NodeId,
    signed: SignedChange,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn seal(body: &[u8]) -> Vec<u8> {
    let mut out = crc32fast::hash(body).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn open<'a>(tree: &'static str, key: &[u8], value: &'a [u8]) -> Result<&'a [u8], StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        tree,
        key: hex(key),
        reason: reason.to_string(),
    };
    let (crc, body) = value
        .split_at_checked(4)
        .ok_or_else(|| corrupt("shorter than its checksum"))?;
    let expected = u32::from_be_bytes(crc.try_into().map_err(|_| corrupt("checksum"))?);
    if crc32fast::hash(body) != expected {
        return Err(corrupt("checksum mismatch"));
    }
    Ok(body)
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(value)
        .map(|b| seal(&b))
        .map_err(|e| StoreError::Encode(e.to_string()))
}

fn decode<T: for<'de> Deserialize<'de>>(
    tree: &'static str,
    key: &[u8],
    value: &[u8],
) -> Result<T, StoreError> {
    postcard::from_bytes(open(tree, key, value)?).map_err(|e| StoreError::Corrupt {
        tree,
        key: hex(key),
        reason: e.to_string(),
    })
}

fn record_key(record: RecordId) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(&record).map_err(|e| StoreError::Encode(e.to_string()))
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

    /// Checks every value's checksum; returns the corrupt ones found.
    pub fn verify(&self) -> Vec<StoreError> {
        let mut bad = Vec::new();
        for (name, tree) in [
            ("changes", &self.changes),
            ("docs", &self.docs),
            ("pending", &self.pending),
            ("certs", &self.certs),
            ("meta", &self.meta),
            ("accounts", &self.accounts),
            ("quarantine", &self.quarantine),
            ("held", &self.held),
        ] {
            for item in tree.iter() {
                match item {
                    Ok((k, v)) => {
                        if let Err(e) = open(name, &k, &v) {
                            bad.push(e);
                        }
                    }
                    Err(e) => bad.push(e.into()),
                }
            }
        }
        bad
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

    /// Repairs what [`SledStore::verify`] finds, losing nothing that can be had again:
    /// - a corrupt change is dropped with its index entries, and every peer watermark is
    ///   cleared, so that the next session with each peer reconciles everything and
    ///   fetches the change again;
    /// - a corrupt or unreadable document, or a corrupt pending set, is rebuilt from the
    ///   record's changes;
    /// - a corrupt certificate, watermark or revocation list is dropped; peers send them
    ///   again at the next hello.
    ///
    /// Nothing corrupt is ever served meanwhile: reads check every value.
    pub fn repair(&mut self) -> Result<Repair, StoreError> {
        let mut report = Repair::default();
        // Changes kept aside or held for their time: a damaged one is dropped (it comes
        // again from its sender, and is judged again).
        for (name, tree) in [("quarantine", &self.quarantine), ("held", &self.held)] {
            let mut bad = Vec::new();
            for item in tree.iter() {
                let (k, v) = item?;
                let readable = match name {
                    "quarantine" => decode::<Quarantined>(name, &k, &v).is_ok(),
                    _ => decode::<ChangeValue>(name, &k, &v).is_ok(),
                };
                if !readable {
                    bad.push(k);
                }
            }
            for k in bad {
                tree.remove(k)?;
                report.other_dropped += 1;
            }
        }
        let mut rebuild: BTreeSet<RecordId> = BTreeSet::new();
        let mut drop_docs = Vec::new();
        for item in self.docs.iter() {
            let (k, v) = item?;
            let Ok(record) = postcard::from_bytes::<RecordId>(&k) else {
                drop_docs.push(k);
                continue;
            };
            let readable = open("docs", &k, &v)
                .ok()
                .is_some_and(|body| Automerge::load(body).is_ok());
            if !readable {
                rebuild.insert(record);
            }
        }
        let mut drop_pending = Vec::new();
        for item in self.pending.iter() {
            let (k, v) = item?;
            if decode::<Vec<[u8; 32]>>("pending", &k, &v).is_err() {
                match postcard::from_bytes::<RecordId>(&k) {
                    Ok(record) => {
                        rebuild.insert(record);
                    }
                    Err(_) => drop_pending.push(k),
                }
            }
        }
        let mut bad_changes: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut of_rebuilt: Vec<StoredChange> = Vec::new();
        for item in self.changes.iter() {
            let (k, v) = item?;
            let Ok(hash) = <[u8; 32]>::try_from(k.as_ref()) else {
                bad_changes.insert(k.to_vec());
                continue;
            };
            match decode::<ChangeValue>("changes", &k, &v) {
                Err(_) => {
                    bad_changes.insert(k.to_vec());
                }
                Ok(c) if rebuild.contains(&c.signed.record) => of_rebuilt.push(StoredChange {
                    hash: ChangeHash(hash),
                    time_ms: c.time_ms,
                    deps: c.deps.into_iter().map(ChangeHash).collect(),
                    signer: c.signer,
                    signed: c.signed,
                }),
                Ok(_) => {}
            }
        }
        // Changes: drop the corrupt ones and their index entries; forget the watermarks.
        if !bad_changes.is_empty() {
            let mut index_batch = sled::Batch::default();
            for item in self.index.iter().keys() {
                let k = item?;
                if k.get(16..).is_some_and(|hash| bad_changes.contains(hash)) {
                    index_batch.remove(k);
                }
            }
            let mut change_batch = sled::Batch::default();
            for k in &bad_changes {
                change_batch.remove(k.as_slice());
            }
            // The index entries first: an index entry must never point at a change that
            // is not there.
            self.index.apply_batch(index_batch)?;
            self.changes.apply_batch(change_batch)?;
            for item in self.meta.scan_prefix(b"wm/").keys() {
                self.meta.remove(item?)?;
            }
            report.changes_dropped = bad_changes.len();
        }
        // Documents: rebuild from the changes.
        let mut docs = Vec::with_capacity(rebuild.len());
        for record in &rebuild {
            let (doc, pending) = guihe_protocol::ingest::rebuild(*record, &of_rebuilt);
            docs.push((*record, doc, pending));
        }
        self.write_docs(&docs)?;
        report.docs_rebuilt = docs.len();
        if report.changes_dropped > 0 {
            self.mark.forget();
        }
        for k in drop_docs {
            self.docs.remove(k)?;
            report.other_dropped += 1;
        }
        for k in drop_pending {
            self.pending.remove(k)?;
            report.other_dropped += 1;
        }
        for (name, tree) in [("certs", &self.certs), ("meta", &self.meta)] {
            let mut bad = Vec::new();
            for item in tree.iter() {
                let (k, v) = item?;
                if open(name, &k, &v).is_err() {
                    bad.push(k);
                }
            }
            for k in bad {
                tree.remove(k)?;
                report.other_dropped += 1;
            }
        }
        self.flush()?;
        Ok(report)
    }

    /// Rebuilds everything derived from the changes, after sled's files were damaged and
    /// only part of them could be read: corrupt values are dropped as in [`repair`], then
    /// the index is made again from the changes held, every document is rebuilt from its
    /// changes, and the watermarks are forgotten, so that the next sync with each peer
    /// reconciles everything and brings back what was lost.
    ///
    /// [`repair`]: SledStore::repair
    pub fn rebuild_all(&mut self) -> Result<Repair, StoreError> {
        let mut report = self.repair()?;
        let mut by_record: BTreeMap<RecordId, Vec<StoredChange>> = BTreeMap::new();
        for item in self.changes.iter() {
            let (k, v) = item?;
            let (Ok(hash), Ok(c)) = (
                <[u8; 32]>::try_from(k.as_ref()),
                decode::<ChangeValue>("changes", &k, &v),
            ) else {
                continue;
            };
            by_record
                .entry(c.signed.record)
                .or_default()
                .push(StoredChange {
                    hash: ChangeHash(hash),
                    time_ms: c.time_ms,
                    deps: c.deps.into_iter().map(ChangeHash).collect(),
                    signer: c.signer,
                    signed: c.signed,
                });
        }
        self.index.clear()?;
        let mut index_batch = sled::Batch::default();
        for c in by_record.values().flatten() {
            let value = index_value(&c.signed.jurisdictions)?;
            for v in &c.signed.jurisdictions {
                index_batch.insert(index_key(*v, c.time_ms, &c.hash), value.as_slice());
            }
        }
        self.index.apply_batch(index_batch)?;
        let mut stale_docs = Vec::new();
        for k in self.docs.iter().keys() {
            let k = k?;
            let held = postcard::from_bytes::<RecordId>(&k)
                .ok()
                .is_some_and(|r| by_record.contains_key(&r));
            if !held {
                stale_docs.push(k);
            }
        }
        for k in stale_docs {
            self.views.remove(&k)?;
            self.docs.remove(&k)?;
            self.pending.remove(&k)?;
            report.other_dropped += 1;
        }
        let mut docs = Vec::with_capacity(by_record.len());
        for (record, changes) in &by_record {
            let (doc, pending) = guihe_protocol::ingest::rebuild(*record, changes);
            docs.push((*record, doc, pending));
        }
        self.write_docs(&docs)?;
        self.mark_dirty(by_record.keys().copied());
        report.docs_rebuilt = docs.len();
        for item in self.meta.scan_prefix(b"wm/").keys() {
            self.meta.remove(item?)?;
        }
        self.flush()?;
        // The mark named a change that is gone; the next change stored writes it again.
        self.mark.forget();
        Ok(report)
    }

    /// The size of the store on disk, in bytes.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

impl Store for SledStore {
    type Error = StoreError;

    fn change(&self, hash: &ChangeHash) -> Result<Option<StoredChange>, StoreError> {
        let Some(v) = self.changes.get(hash.0)? else {
            return Ok(None);
        };
        let c: ChangeValue = decode("changes", &hash.0, &v)?;
        Ok(Some(StoredChange {
            hash: *hash,
            time_ms: c.time_ms,
            deps: c.deps.into_iter().map(ChangeHash).collect(),
            signer: c.signer,
            signed: c.signed,
        }))
    }

    fn has_change(&self, hash: &ChangeHash) -> Result<bool, StoreError> {
        Ok(self.changes.contains_key(hash.0)?)
    }

    fn put_changes(&mut self, changes: &[StoredChange]) -> Result<(), StoreError> {
        self.write_changes(changes, true)?;
        self.flush()?;
        if let Some(last) = changes.last() {
            self.mark.write(&last.hash);
        }
        Ok(())
    }

    fn put_ingested(
        &mut self,
        changes: &[StoredChange],
        docs: &[(RecordId, Automerge, BTreeSet<ChangeHash>)],
    ) -> Result<(), StoreError> {
        // sled recovers a prefix of its log after a crash, so with the changes written
        // before the documents one flush makes both durable, and never a document
        // without its changes.
        let (waiting, ready) = guihe_protocol::store::split_waiting(changes, docs);
        self.write_changes(&waiting, false)?;
        self.write_changes(&ready, true)?;
        self.write_docs(docs)?;
        self.flush()?;
        if let Some(last) = changes.last() {
            self.mark.write(&last.hash);
        }
        Ok(())
    }

    fn put_waiting(&mut self, changes: &[StoredChange]) -> Result<(), StoreError> {
        self.write_changes(changes, false)?;
        self.flush()
    }

    fn keys(
        &self,
        division: Division,
        also: &dyn Fn(&[Division]) -> bool,
    ) -> Result<Vec<Key>, StoreError> {
        let (from, to) = match division {
            Division::Village(v) => (v.as_u64(), v.as_u64()),
            Division::Township(t) => (t.as_u64(), t.as_u64() + 999),
            Division::County(c) => (c.as_u64(), c.as_u64() + 999_999),
        };
        let mut out = Vec::new();
        // Whether `out` is more than one ordered run (several divisions' keys).
        let mut runs = 0;
        let mut division_of_last = None;
        // The last verdict, by the index value it was given for: most entries in a
        // division's range name that division alone, so `also` runs about once a division.
        let mut verdict: Option<(sled::IVec, bool)> = None;
        let start = from.to_be_bytes();
        let end = (to + 1).to_be_bytes();
        for item in self.index.range(start.as_slice()..end.as_slice()) {
            let (k, value) = item?;
            let Some((time, hash)) = parse_index_key(&k) else {
                return Err(StoreError::Corrupt {
                    tree: "index",
                    key: hex(&k),
                    reason: "malformed key".into(),
                });
            };
            let accepted = match &verdict {
                Some((last, accepted)) if *last == value => *accepted,
                _ => {
                    let divisions = open("index", &k, &value)
                        .ok()
                        .and_then(|body| postcard::from_bytes::<Vec<Division>>(body).ok());
                    match divisions {
                        Some(divisions) => {
                            let accepted = also(&divisions);
                            verdict = Some((value, accepted));
                            accepted
                        }
                        // Written before the index held divisions (empty), or damaged: the
                        // change itself says.
                        None => self
                            .change(&hash)?
                            .is_some_and(|c| also(&c.signed.jurisdictions)),
                    }
                }
            };
            if accepted {
                let division: Option<[u8; 8]> = k.get(..8).and_then(|d| d.try_into().ok());
                if division_of_last != division {
                    runs += 1;
                    division_of_last = division;
                }
                out.push((time, hash));
            }
        }
        // A record of several villages is indexed under each.
        if runs > 1 {
            out.sort_unstable();
            out.dedup();
        }
        Ok(out)
    }

    fn doc(&self, record: RecordId) -> Result<Option<Automerge>, StoreError> {
        let key = record_key(record)?;
        let Some(v) = self.docs.get(&key)? else {
            return Ok(None);
        };
        let body = open("docs", &key, &v)?;
        Automerge::load(body)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                tree: "docs",
                key: hex(&key),
                reason: e.to_string(),
            })
    }

    fn put_doc(
        &mut self,
        record: RecordId,
        doc: &Automerge,
        pending: &BTreeSet<ChangeHash>,
    ) -> Result<(), StoreError> {
        self.put_docs(&[(record, doc.clone(), pending.clone())])
    }

    fn put_docs(
        &mut self,
        docs: &[(RecordId, Automerge, BTreeSet<ChangeHash>)],
    ) -> Result<(), StoreError> {
        self.write_docs(docs)?;
        self.flush()
    }

    fn pending(&self, record: RecordId) -> Result<BTreeSet<ChangeHash>, StoreError> {
        let key = record_key(record)?;
        let Some(v) = self.pending.get(&key)? else {
            return Ok(BTreeSet::new());
        };
        let hashes: Vec<[u8; 32]> = decode("pending", &key, &v)?;
        Ok(hashes.into_iter().map(ChangeHash).collect())
    }

    fn all_pending(&self) -> Result<Vec<(RecordId, BTreeSet<ChangeHash>)>, StoreError> {
        let mut out = Vec::new();
        for item in self.pending.iter() {
            let (k, v) = item?;
            let record: RecordId = postcard::from_bytes(&k).map_err(|e| StoreError::Corrupt {
                tree: "pending",
                key: hex(&k),
                reason: e.to_string(),
            })?;
            let hashes: Vec<[u8; 32]> = decode("pending", &k, &v)?;
            out.push((record, hashes.into_iter().map(ChangeHash).collect()));
        }
        Ok(out)
    }

    fn forget_waiting(
        &mut self,
        record: RecordId,
        hashes: &BTreeSet<ChangeHash>,
    ) -> Result<(), StoreError> {
        let key = record_key(record)?;
        let left: Vec<[u8; 32]> = self
            .pending(record)?
            .into_iter()
            .filter(|h| !hashes.contains(h))
            .map(|h| h.0)
            .collect();
        if left.is_empty() {
            self.pending.remove(&key)?;
        } else {
            self.pending.insert(key, encode(&left)?)?;
        }
        // A change waiting is not indexed, unless a repair or rebuild indexed it before it
        // was found waiting: its index entries go first (an index entry must never point
        // at a change that is not there), so that peers offer it again.
        let mut index = sled::Batch::default();
        let mut batch = sled::Batch::default();
        for h in hashes {
            if let Some(c) = self.change(h)? {
                for v in &c.signed.jurisdictions {
                    index.remove(index_key(*v, c.time_ms, h));
                }
            }
            batch.remove(&h.0);
        }
        self.index.apply_batch(index)?;
        self.changes.apply_batch(batch)?;
        self.flush()?;
        self.mark.leaving(hashes.iter().copied());
        Ok(())
    }

    fn records(&self) -> Result<Vec<RecordId>, StoreError> {
        let mut out = BTreeSet::new();
        for tree in [&self.docs, &self.pending] {
            for k in tree.iter().keys() {
                let k = k?;
                let id: RecordId = postcard::from_bytes(&k).map_err(|e| StoreError::Corrupt {
                    tree: "docs",
                    key: hex(&k),
                    reason: e.to_string(),
                })?;
                out.insert(id);
            }
        }
        Ok(out.into_iter().collect())
    }

    fn certificates_of(&self, node: &NodeId) -> Result<Vec<Certificate>, StoreError> {
        match self.certs.get(node.as_bytes())? {
            Some(v) => decode("certs", node.as_bytes(), &v),
            None => Ok(Vec::new()),
        }
    }

    fn put_certificate(&mut self, cert: &Certificate) -> Result<(), StoreError> {
        let mut list = self.certificates_of(&cert.node())?;
        if list.contains(cert) {
            return Ok(());
        }
        list.push(cert.clone());
        self.certs.insert(cert.node().as_bytes(), encode(&list)?)?;
        self.flush()
    }

    fn revocations(&self) -> Result<Option<RevocationList>, StoreError> {
        match self.meta.get(b"revocations")? {
            Some(v) => decode("meta", b"revocations", &v).map(Some),
            None => Ok(None),
        }
    }

    fn put_revocations(&mut self, list: &RevocationList) -> Result<(), StoreError> {
        self.meta.insert(b"revocations", encode(list)?)?;
        self.flush()
    }

    fn frontier(&self) -> Result<Option<Frontier>, StoreError> {
        match self.meta.get(b"frontier")? {
            Some(v) => decode("meta", b"frontier", &v).map(Some),
            None => Ok(None),
        }
    }

    fn put_frontier(&mut self, frontier: &Frontier) -> Result<(), StoreError> {
        self.meta.insert(b"frontier", encode(frontier)?)?;
        self.flush()
    }

    fn put_own_refused(&mut self, refused: &[OwnRefused]) -> Result<(), StoreError> {
        let kept = guihe_protocol::store::merge_own_refused(self.own_refused()?, refused);
        self.meta.insert(b"own_refused", encode(&kept)?)?;
        self.flush()
    }

    fn settings(&self) -> Result<Option<Settings>, StoreError> {
        match self.meta.get(b"settings")? {
            Some(v) => decode("meta", b"settings", &v).map(Some),
            None => Ok(None),
        }
    }

    fn put_settings(&mut self, settings: &Settings) -> Result<(), StoreError> {
        self.meta.insert(b"settings", encode(settings)?)?;
        self.flush()
    }

    fn own_refused(&self) -> Result<Vec<OwnRefused>, StoreError> {
        match self.meta.get(b"own_refused")? {
            Some(v) => decode("meta", b"own_refused", &v),
            None => Ok(Vec::new()),
        }
    }

    fn put_quarantined(&mut self, refused: &[Quarantined]) -> Result<(), StoreError> {
        let mut quarantine = sled::Batch::default();
        let mut changes = sled::Batch::default();
        let mut index = sled::Batch::default();
        for q in refused {
            quarantine.insert(&q.hash, encode(q)?);
            changes.remove(&q.hash);
            for v in &q.signed.jurisdictions {
                index.remove(index_key(*v, q.time_ms, &q.change_hash()));
            }
        }
        // Kept aside first, then out of the index, then out of the changes: a crash in
        // between leaves a change both kept aside and stored, which the next ingest of its
        // record refuses again, never an index entry without its change.
        self.quarantine.apply_batch(quarantine)?;
        self.index.apply_batch(index)?;
        self.changes.apply_batch(changes)?;
        self.flush()?;
        self.mark
            .leaving(refused.iter().map(Quarantined::change_hash));
        Ok(())
    }

    fn is_quarantined(&self, hash: &ChangeHash) -> Result<bool, StoreError> {
        Ok(self.quarantine.contains_key(hash.0)?)
    }

    fn put_held(&mut self, held: &[StoredChange]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for c in held {
            batch.insert(
                &c.hash.0,
                encode(&ChangeValue {
                    time_ms: c.time_ms,
                    deps: c.deps.iter().map(|d| d.0).collect(),
                    signer: c.signer,
                    signed: c.signed.clone(),
                })?,
            );
        }
        self.held.apply_batch(batch)?;
        self.flush()
    }

    fn is_held(&self, hash: &ChangeHash) -> Result<bool, StoreError> {
        Ok(self.held.contains_key(hash.0)?)
    }

    fn held(&self) -> Result<Vec<StoredChange>, StoreError> {
        self.held
            .iter()
            .map(|item| {
                let (k, v) = item?;
                let c: ChangeValue = decode("held", &k, &v)?;
                let hash: [u8; 32] = k.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    tree: "held",
                    key: hex(&k),
                    reason: "not a change hash".into(),
                })?;
                Ok(StoredChange {
                    hash: ChangeHash(hash),
                    time_ms: c.time_ms,
                    deps: c.deps.into_iter().map(ChangeHash).collect(),
                    signer: c.signer,
                    signed: c.signed,
                })
            })
            .collect()
    }

    fn remove_held(&mut self, hashes: &[ChangeHash]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for h in hashes {
            batch.remove(&h.0);
        }
        self.held.apply_batch(batch)?;
        self.flush()
    }

    fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError> {
        self.quarantine
            .iter()
            .map(|item| {
                let (k, v) = item?;
                decode("quarantine", &k, &v)
            })
            .collect()
    }

    fn watermark(&self, peer: &NodeId) -> Result<Option<u64>, StoreError> {
        let key = watermark_key(peer);
        match self.meta.get(&key)? {
            Some(v) => decode("meta", &key, &v).map(Some),
            None => Ok(None),
        }
    }

    fn put_watermark(&mut self, peer: &NodeId, time_ms: u64) -> Result<(), StoreError> {
        self.meta.insert(watermark_key(peer), encode(&time_ms)?)?;
        self.flush()
    }
}

fn watermark_key(peer: &NodeId) -> Vec<u8> {
    let mut k = b"wm/".to_vec();
    k.extend_from_slice(peer.as_bytes());
    k
}

/// A key of the reconciliation index: the division's 12-digit code (a village, or the owner
/// of a division's own record, so that a range over a township's codes holds its villages
/// and its own records), the change's time and its hash.
fn index_key(division: Division, time: u64, hash: &ChangeHash) -> Vec<u8> {
    let mut k = Vec::with_capacity(48);
    k.extend_from_slice(&division.as_u64().to_be_bytes());
    k.extend_from_slice(&time.to_be_bytes());
    k.extend_from_slice(&hash.0);
    k
}

/// An index entry's value: the record's divisions, so that a session's scope is decided
/// without reading the change. (Stores written before this hold empty values; `keys`
/// reads the change for those.)
fn index_value(divisions: &[Division]) -> Result<Vec<u8>, StoreError> {
    encode(&divisions)
}

fn parse_index_key(k: &[u8]) -> Option<(u64, ChangeHash)> {
    let time = u64::from_be_bytes(k.get(8..16)?.try_into().ok()?);
    let hash: [u8; 32] = k.get(16..48)?.try_into().ok()?;
    Some((time, ChangeHash(hash)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens the store at `path` once the store just dropped there has let go of its lock:
    /// sled's flusher thread can hold it a moment after the drop on a busy machine.
    fn open_when_released(path: &std::path::Path) -> Result<SledStore, StoreError> {
        let mut tries = 0;
        loop {
            match SledStore::open(path, &Options::default()) {
                Err(e) if tries < 100 && e.to_string().contains("could not acquire lock") => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    /// The index keeps each record's divisions beside its keys, so that a session's scope
    /// is decided without reading the changes. A store written before that (empty index
    /// values), or with a damaged value, gives the same keys: the change says.
    #[test]
    fn scope_keys_are_the_same_from_an_index_written_before_it_held_divisions() {
        use guihe_protocol::store::MemStore;
        use rand_core::SeedableRng;
        let (mut changes, _) = guihe_protocol::workload::village_history(
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(3),
            30,
            1_772_323_200_000,
        )
        .unwrap();
        // Every third record shared with a village of another township.
        let other: Division = "500240202201".parse().unwrap();
        for c in changes.iter_mut() {
            if c.signed.record.to_string().ends_with(['0', '3', '6', '9']) {
                c.signed.jurisdictions.push(other);
            }
        }
        assert!(changes.iter().any(|c| c.signed.jurisdictions.len() == 2));
        let dir = tempfile::tempdir().unwrap();
        let mut sled = SledStore::open(&dir.path().join("store"), &Options::default()).unwrap();
        let mut mem = MemStore::new();
        sled.put_changes(&changes).unwrap();
        mem.put_changes(&changes).unwrap();
        let township_1: Division = "500240101000".parse().unwrap();
        let township_2: Division = "500240202000".parse().unwrap();
        type Filter = Box<dyn Fn(&[Division]) -> bool>;
        let county: Division = "500240000000".parse().unwrap();
        let scopes: Vec<(Division, Filter)> = vec![
            (county, Box::new(|_| true)),
            (county, Box::new(|d| d.len() == 1)),
            (
                county,
                Box::new(move |d| d.iter().any(|d| township_2.contains(*d))),
            ),
            (
                township_1,
                Box::new(move |d| d.iter().any(|d| township_1.contains(*d))),
            ),
            (other, Box::new(|_| true)),
        ];
        fn keys<S: Store>(store: &S, scopes: &[(Division, Filter)]) -> Vec<Vec<Key>> {
            scopes
                .iter()
                .map(|(d, f)| store.keys(*d, f).unwrap())
                .collect()
        }
        let from_mem = keys(&mem, &scopes);
        let from_sled = keys(&sled, &scopes);
        assert_eq!(from_sled, from_mem);
        assert_eq!(from_mem[0].len(), changes.len());
        assert!(from_mem.iter().all(|k| k.windows(2).all(|w| w[0] < w[1])));
        assert!(from_mem[2].len() < from_mem[0].len() && !from_mem[2].is_empty());
        // As an older build wrote the index: empty values. Then one damaged value.
        let entries: Vec<sled::IVec> = sled.index.iter().keys().map(Result::unwrap).collect();
        for k in &entries {
            sled.index.insert(k, &[] as &[u8]).unwrap();
        }
        assert_eq!(keys(&sled, &scopes), from_mem);
        sled.index.insert(&entries[0], &[1, 2, 3][..]).unwrap();
        assert_eq!(keys(&sled, &scopes), from_mem);
    }

    #[test]
    fn sled_store_keeps_the_store_contract_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let p1 = path.clone();
        let p2 = path.clone();
        let mut reopen = move |s: SledStore| {
            drop(s);
            open_when_released(&p2).unwrap()
        };
        guihe_protocol::conformance::check(
            move || SledStore::open(&p1, &Options::default()).unwrap(),
            Some(&mut reopen),
        )
        .unwrap();
    }

    /// Regression: a change that leaves the store on purpose (kept aside, or forgotten
    /// after waiting too long) while the mark names it must not make the store look damaged
    /// at its next opening.
    #[test]
    fn a_change_kept_aside_or_forgotten_does_not_make_the_store_look_damaged() {
        use guihe_protocol::cert::{CertBody, Keypair, Role, Root};
        use guihe_protocol::model::Kind;
        use guihe_protocol::quarantine::Quarantined;
        use guihe_protocol::replica::Replica;
        use guihe_protocol::rules::RuleError;
        use guihe_protocol::signed::VerifyError;
        use rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        let root = Root::new(Keypair::generate(&mut rng));
        let key = Keypair::generate(&mut rng);
        let cert = root
            .issue(CertBody {
                serial: 1,
                node: key.public(),
                role: Role::Village,
                division: "500240001201".parse().unwrap(),
                not_before_ms: 0,
                not_after_ms: u64::MAX,
            })
            .unwrap();
        let identity = guihe_protocol::cert::Identity { key, cert };
        let mut writer = Replica::new(
            identity,
            guihe_protocol::store::MemStore::new(),
            "tan".parse().unwrap(),
            1,
        );
        let code: VillageCode = "500240001201".parse().unwrap();
        let mut made = Vec::new();
        for i in 0..2 {
            let new = guihe_protocol::workload::new_record(&mut rng, Kind::Case, &[code]);
            let (id, changes) = writer
                .create(1_800_000_000_000 + i, &mut rng, &Default::default(), new)
                .unwrap();
            made.push((id, changes[0].clone()));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let reopen = |s: SledStore| {
            drop(s);
            open_when_released(&path)
        };
        let mut store = SledStore::open(&path, &Options::default()).unwrap();
        // Kept aside.
        let (_, first) = &made[0];
        store.put_changes(std::slice::from_ref(first)).unwrap();
        let q = Quarantined::new(
            first.signed.clone(),
            first.hash,
            first.signer,
            first.time_ms,
            0,
            &VerifyError::Rule(RuleError::Delete),
        );
        store.put_quarantined(&[q]).unwrap();
        let mut store = reopen(store).expect("not damaged after a change was kept aside");
        // Forgotten after waiting.
        let (id, second) = &made[1];
        store.put_waiting(std::slice::from_ref(second)).unwrap();
        store
            .put_docs(&[(*id, Automerge::new(), [second.hash].into_iter().collect())])
            .unwrap();
        store.mark.write(&second.hash);
        store
            .forget_waiting(*id, &[second.hash].into_iter().collect())
            .unwrap();
        reopen(store).expect("not damaged after a waiting change was forgotten");
    }

    #[test]
    fn a_corrupt_record_is_reported_and_never_served() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), &Options::default()).unwrap();
        let hash = ChangeHash([7; 32]);
        // A value whose checksum does not match, as a torn write or a flipped bit leaves.
        let mut value = seal(b"not a change");
        if let Some(b) = value.last_mut() {
            *b ^= 0x40;
        }
        store.changes.insert(hash.0, value).unwrap();
        assert!(matches!(
            store.change(&hash),
            Err(StoreError::Corrupt {
                tree: "changes",
                ..
            })
        ));
        let found = store.verify();
        assert_eq!(found.len(), 1, "{found:?}");
        // A value too short to hold its checksum.
        store.meta.insert(b"revocations", &[1u8][..]).unwrap();
        assert!(matches!(
            store.revocations(),
            Err(StoreError::Corrupt { .. })
        ));
    }

    /// Connects two replicas through their hosts until neither has anything to send.
    fn sync<A: Store, B: Store>(
        root: NodeId,
        a: &mut guihe_protocol::replica::Replica<A>,
        b: &mut guihe_protocol::replica::Replica<B>,
        now: u64,
    ) {
        use guihe_protocol::host::{Config, loopback};
        loopback(&Config::default(), root, a, b, now, usize::MAX).unwrap();
    }

    #[test]
    fn a_corrupt_document_is_rebuilt_and_a_corrupt_change_fetched_again_from_a_peer() {
        use guihe_protocol::cert::{CertBody, Identity, Keypair, Role, Root};
        use guihe_protocol::model::Kind;
        use guihe_protocol::replica::Replica;
        use guihe_protocol::store::MemStore;
        use guihe_protocol::workload;
        use rand_core::SeedableRng;

        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let root = Root::new(Keypair::generate(&mut rng));
        let now = 1_800_000_000_000u64;
        let mut identity = |role, division: &str, serial| {
            let key = Keypair::generate(&mut rng);
            let cert = root
                .issue(CertBody {
                    serial,
                    node: key.public(),
                    role,
                    division: division.parse().unwrap(),
                    not_before_ms: 0,
                    not_after_ms: u64::MAX,
                })
                .unwrap();
            Identity { key, cert }
        };
        let village_id = identity(Role::Village, "500240001201", 1);
        let township_id = identity(Role::Township, "500240001000", 2);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let mut village = Replica::new(
            village_id,
            SledStore::open(&path, &Options::default()).unwrap(),
            "tan".parse().unwrap(),
            1,
        );
        let mut township = Replica::new(township_id, MemStore::new(), "ran".parse().unwrap(), 1);
        let rules = Default::default();
        let code: VillageCode = "500240001201".parse().unwrap();
        let mut ids = Vec::new();
        for i in 0..6 {
            let new = workload::new_record(&mut rng, Kind::Case, &[code]);
            let (id, _) = village.create(now + i, &mut rng, &rules, new).unwrap();
            ids.push(id);
        }
        sync(root.public(), &mut village, &mut township, now + 10);
        for id in &ids {
            assert!(township.store.doc(*id).unwrap().is_some());
        }

        // Bit rot: one record's document, another record's change.
        let store = &mut village.store;
        let doc_key = record_key(ids[0]).unwrap();
        let mut doc = store.docs.get(&doc_key).unwrap().unwrap().to_vec();
        let middle = doc.len() / 2;
        doc[middle] ^= 0x10;
        store.docs.insert(&doc_key, doc).unwrap();
        let lost = store.doc(ids[1]).unwrap().unwrap().get_heads()[0];
        let mut change = store.changes.get(lost.0).unwrap().unwrap().to_vec();
        let middle = change.len() / 2;
        change[middle] ^= 0x10;
        store.changes.insert(lost.0, change).unwrap();
        assert!(matches!(store.doc(ids[0]), Err(StoreError::Corrupt { .. })));
        assert!(matches!(
            store.change(&lost),
            Err(StoreError::Corrupt { .. })
        ));
        assert_eq!(store.verify().len(), 2);

        let report = store.repair().unwrap();
        assert_eq!(report.changes_dropped, 1, "{report:?}");
        assert_eq!(report.docs_rebuilt, 1, "{report:?}");
        assert!(store.verify().is_empty());
        // The rebuilt document is the one the peer holds.
        assert_eq!(
            store.doc(ids[0]).unwrap().unwrap().get_heads(),
            township.store.doc(ids[0]).unwrap().unwrap().get_heads()
        );
        // The lost change is gone from the store and from the index, so reconciliation
        // asks for it again.
        assert!(!store.has_change(&lost).unwrap());
        let listed = store
            .keys(Division::Village(code), &|_| true)
            .unwrap()
            .iter()
            .any(|(_, h)| *h == lost);
        assert!(!listed);
        let village_identity = village.identity.clone();
        drop(village);

        // Reopened and synced with the township, the village holds everything again.
        let store = SledStore::open(&path, &Options::default()).unwrap();
        let mut village = Replica::new(village_identity, store, "tan".parse().unwrap(), 2);
        sync(root.public(), &mut township, &mut village, now + 20);
        assert!(village.store.has_change(&lost).unwrap());
        for id in &ids {
            assert_eq!(
                village.store.doc(*id).unwrap().unwrap().get_heads(),
                township.store.doc(*id).unwrap().unwrap().get_heads()
            );
        }
    }
}
