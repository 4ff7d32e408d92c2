//! The protocol's `Store` over the sled trees.

use super::*;

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
