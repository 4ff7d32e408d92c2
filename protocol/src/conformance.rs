//! The contract every `Store` keeps, as a check any implementation can run against
//! itself (the node runs it on its sled store, the protocol on `MemStore`).

// The check indexes only its own fixed sample, never input.
#![allow(clippy::indexing_slicing)]

use std::collections::BTreeSet;

use automerge::ChangeHash;

use crate::cert::{CertBody, Identity, Keypair, RevocationBody, Role, Root};
use crate::deadline::Deadlines;
use crate::division::{Division, VillageCode};
use crate::model::Kind;
use crate::replica::Replica;
use crate::store::MemStore;
use crate::store::{Store, StoredChange};
use crate::workload;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

struct Seq(u64);
impl rand_core::RngCore for Seq {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        // splitmix64: deterministic and good enough for ids in a check.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or(&[]));
        }
    }
}

/// Changes of records in two villages of one township and one of another, written
/// through a replica, for the check.
fn sample() -> Result<(Vec<StoredChange>, Vec<VillageCode>, Identity), String> {
    let mut rng = Seq(7);
    let root = Root::new(Keypair::generate(&mut rng));
    let key = Keypair::generate(&mut rng);
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let cert = root
        .issue(CertBody {
            serial: 1,
            node: key.public(),
            role: Role::County,
            division: "500240000000".parse().map_err(|e| err(&e))?,
            not_before_ms: 0,
            not_after_ms: u64::MAX,
        })
        .map_err(|e| err(&e))?;
    let identity = Identity { key, cert };
    let staff = "check".parse().map_err(|e| err(&e))?;
    let mut replica = Replica::new(identity.clone(), MemStore::new(), staff, 1);
    let villages: Vec<VillageCode> = ["500240001201", "500240001202", "500240002201"]
        .iter()
        .map(|v| v.parse())
        .collect::<Result<_, _>>()
        .map_err(|e| err(&e))?;
    let rules = Deadlines::default();
    let mut changes = Vec::new();
    for (i, jurisdictions) in [
        vec![villages[0]],
        vec![villages[1]],
        vec![villages[2]],
        vec![villages[0], villages[1]],
    ]
    .into_iter()
    .enumerate()
    {
        let new = workload::new_record(&mut rng, Kind::Case, &jurisdictions);
        let (_, c) = replica
            .create(1_000 + i as u64 * 10, &mut rng, &rules, new)
            .map_err(|e| err(&e))?;
        changes.extend(c);
    }
    Ok((changes, villages, identity))
}

/// Runs the contract against a fresh, empty store from `make`. `reopen` (if given)
/// closes and reopens the same store, to check durability.
pub fn check<S: Store>(
    mut make: impl FnMut() -> S,
    mut reopen: Option<&mut dyn FnMut(S) -> S>,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let (changes, villages, identity) = sample()?;
    let mut store = make();
    ensure!(
        store.records().map_err(|e| err(&e))?.is_empty(),
        "a new store is empty"
    );
    // The last record arrives the way ingest stores it: its changes and its document
    // in one call. Then every change, twice: storing is idempotent.
    let last = changes.last().ok_or("no sample")?.signed.record;
    let arrived: Vec<StoredChange> = changes
        .iter()
        .filter(|c| c.signed.record == last)
        .cloned()
        .collect();
    let mut last_doc = automerge::Automerge::new();
    for c in &arrived {
        let change = automerge::Change::from_bytes(c.signed.bytes.clone()).map_err(|e| err(&e))?;
        last_doc.apply_changes([change]).map_err(|e| err(&e))?;
    }
    store
        .put_ingested(&arrived, &[(last, last_doc.clone(), BTreeSet::new())])
        .map_err(|e| err(&e))?;
    for c in &arrived {
        ensure!(
            store.has_change(&c.hash).map_err(|e| err(&e))?,
            "an ingested change {} is kept",
            c.hash
        );
    }
    ensure!(
        store.doc(last).map_err(|e| err(&e))?.map(|d| d.get_heads()) == Some(last_doc.get_heads()),
        "an ingested document is kept"
    );
    store.put_changes(&changes).map_err(|e| err(&e))?;
    store.put_changes(&changes).map_err(|e| err(&e))?;
    for c in &changes {
        ensure!(
            store.has_change(&c.hash).map_err(|e| err(&e))?,
            "change {} kept",
            c.hash
        );
        let back = store.change(&c.hash).map_err(|e| err(&e))?;
        ensure!(
            back.as_ref() == Some(c),
            "change {} reads back as written",
            c.hash
        );
    }
    ensure!(
        !store
            .has_change(&ChangeHash([9; 32]))
            .map_err(|e| err(&e))?,
        "an unknown change is not there"
    );
    let keys_of = |store: &S, d: &str| -> Result<Vec<(u64, ChangeHash)>, String> {
        let d: Division = d.parse().map_err(|e| err(&e))?;
        store.keys(d, &|_| true).map_err(|e| err(&e))
    };
    let all = keys_of(&store, "500240000000")?;
    ensure!(
        all.len() == changes.len(),
        "the county sees every change once ({} of {})",
        all.len(),
        changes.len()
    );
    ensure!(all.windows(2).all(|w| w[0] < w[1]), "keys come in order");
    let t1 = keys_of(&store, "500240001000")?;
    ensure!(
        t1.len() == 3,
        "township 1 sees its three records' changes, got {}",
        t1.len()
    );
    let v2 = keys_of(&store, "500240002201")?;
    ensure!(v2.len() == 1, "village 2201 sees its own record only");
    let only_single: Vec<_> = store
        .keys("500240000000".parse().map_err(|e| err(&e))?, &|v| {
            v.len() == 1
        })
        .map_err(|e| err(&e))?;
    ensure!(only_single.len() == 3, "the filter is applied");
    let _ = villages;

    // Documents and pending sets.
    let mut doc = automerge::Automerge::new();
    let first = changes.first().ok_or("no sample")?;
    let change = automerge::Change::from_bytes(first.signed.bytes.clone()).map_err(|e| err(&e))?;
    doc.apply_changes([change]).map_err(|e| err(&e))?;
    let waiting: BTreeSet<ChangeHash> = [ChangeHash([5; 32])].into_iter().collect();
    store
        .put_doc(first.signed.record, &doc, &waiting)
        .map_err(|e| err(&e))?;
    let back = store
        .doc(first.signed.record)
        .map_err(|e| err(&e))?
        .ok_or("doc kept")?;
    ensure!(
        back.get_heads() == doc.get_heads(),
        "a document reads back with its heads"
    );
    ensure!(
        store.pending(first.signed.record).map_err(|e| err(&e))? == waiting,
        "pending kept"
    );
    let mut both = vec![first.signed.record, last];
    both.sort();
    both.dedup();
    ensure!(
        store.records().map_err(|e| err(&e))? == both,
        "records lists the documents held"
    );
    store
        .put_doc(first.signed.record, &doc, &BTreeSet::new())
        .map_err(|e| err(&e))?;
    ensure!(
        store
            .pending(first.signed.record)
            .map_err(|e| err(&e))?
            .is_empty(),
        "pending cleared"
    );

    // Certificates, revocations, watermarks.
    store.put_certificate(&identity.cert).map_err(|e| err(&e))?;
    store.put_certificate(&identity.cert).map_err(|e| err(&e))?;
    ensure!(
        store
            .certificates_of(&identity.key.public())
            .map_err(|e| err(&e))?
            == vec![identity.cert.clone()],
        "a certificate is kept once"
    );
    let root = Root::new(Keypair::from_secret([3; 32]));
    let list = root
        .revocations(RevocationBody {
            version: 4,
            revoked: vec![],
        })
        .map_err(|e| err(&e))?;
    store.put_revocations(&list).map_err(|e| err(&e))?;
    store
        .put_watermark(&identity.key.public(), 1234)
        .map_err(|e| err(&e))?;

    // A change kept aside leaves the changes and the index, and is known as refused.
    let refused = changes.get(1).ok_or("no sample")?;
    let q = crate::quarantine::Quarantined::new(
        refused.signed.clone(),
        refused.hash,
        refused.signer,
        refused.time_ms,
        5_000,
        &crate::signed::VerifyError::Rule(crate::rules::RuleError::Delete),
    );
    store
        .put_quarantined(std::slice::from_ref(&q))
        .map_err(|e| err(&e))?;
    ensure!(
        !store.has_change(&refused.hash).map_err(|e| err(&e))?,
        "a change kept aside is no longer among the changes"
    );
    ensure!(
        store.is_quarantined(&refused.hash).map_err(|e| err(&e))?,
        "a change kept aside is known as refused"
    );
    ensure!(
        keys_of(&store, "500240000000")?.len() == changes.len() - 1,
        "a change kept aside leaves the index"
    );
    ensure!(
        store
            .quarantined_count(&refused.signer)
            .map_err(|e| err(&e))?
            == 1,
        "kept aside per signer"
    );

    if let Some(reopen) = reopen.as_mut() {
        store = reopen(store);
    }
    ensure!(
        store.quarantined().map_err(|e| err(&e))? == vec![q],
        "the quarantine survives reopening"
    );
    ensure!(
        store.revocations().map_err(|e| err(&e))? == Some(list),
        "revocations kept"
    );
    ensure!(
        store
            .watermark(&identity.key.public())
            .map_err(|e| err(&e))?
            == Some(1234),
        "watermark kept"
    );
    ensure!(
        keys_of(&store, "500240000000")?.len() == changes.len() - 1,
        "the index survives reopening"
    );
    ensure!(
        store
            .doc(first.signed.record)
            .map_err(|e| err(&e))?
            .is_some(),
        "documents survive reopening"
    );
    ensure!(
        store.doc(last).map_err(|e| err(&e))?.map(|d| d.get_heads()) == Some(last_doc.get_heads()),
        "ingested documents survive reopening"
    );

    // A change forgotten after waiting too long leaves the index too, even one a repair
    // had indexed: peers must offer it again.
    let indexed = keys_of(&store, "500240000000")?;
    let (time_ms, hash) = *indexed.last().ok_or("an indexed change")?;
    let record = store
        .change(&hash)
        .map_err(|e| err(&e))?
        .ok_or("an indexed change is held")?
        .signed
        .record;
    store
        .forget_waiting(record, &[hash].into_iter().collect())
        .map_err(|e| err(&e))?;
    ensure!(
        !store.has_change(&hash).map_err(|e| err(&e))?,
        "a forgotten change is gone"
    );
    ensure!(
        !keys_of(&store, "500240000000")?.contains(&(time_ms, hash))
            && keys_of(&store, "500240000000")?.len() == indexed.len() - 1,
        "a forgotten change leaves the index"
    );
    Ok(())
}
