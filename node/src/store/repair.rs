//! Repair: what the store does with damage it finds at opening (`verify`, `repair`,
//! `rebuild_all`), and the mark that tells a store whose log was cut short.

use super::*;

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

/// The hash of the last change made durable, in a small file in sled's folder
/// (`guihe.mark`), written after each flush that stored changes. sled reads a damaged log
/// only up to the damage and may open without a word; a store whose last change is
/// missing is then known to be damaged. The file is written after sled's flush, never
/// before, so it never names a change that was not made durable.
#[derive(Debug, Clone)]
pub(super) struct Mark(pub(super) std::path::PathBuf);

impl Mark {
    pub(super) fn of(dir: &Path) -> Mark {
        Mark(dir.join("guihe.mark"))
    }

    pub(super) fn read(&self) -> Option<[u8; 32]> {
        let bytes = std::fs::read(&self.0).ok()?;
        bytes.get(..32)?.try_into().ok()
    }

    pub(super) fn write(&self, hash: &ChangeHash) {
        // Not flushed to disk on its own: after a power cut it may name an older change,
        // which weakens the check but never makes it wrong.
        let tmp = self.0.with_extension("new");
        if std::fs::write(&tmp, hash.0).is_ok() {
            let _ = std::fs::rename(&tmp, &self.0);
        }
    }

    pub(super) fn forget(&self) {
        let _ = std::fs::remove_file(&self.0);
    }

    /// The changes named leave the store on purpose (kept aside, or forgotten after
    /// waiting too long): a mark naming one of them would make the store look damaged at
    /// its next opening, so it is forgotten until the next change is stored.
    pub(super) fn leaving(&self, hashes: impl IntoIterator<Item = ChangeHash>) {
        if let Some(marked) = self.read()
            && hashes.into_iter().any(|h| h.0 == marked)
        {
            self.forget();
        }
    }
}

impl SledStore {
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
}
