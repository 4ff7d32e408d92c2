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
