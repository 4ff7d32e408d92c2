//! Arbitrary bytes fed to the decoder and to a live session give typed errors, never a
//! panic, and change nothing in the store.

mod common;

use common::mesh::*;
use guihe_protocol::cert::Role;
use guihe_protocol::store::Store;
use guihe_protocol::sync::{Config, Session};
use guihe_protocol::wire::Message;
use proptest::prelude::*;

fn snapshot(
    n: &Node,
) -> (
    usize,
    Vec<guihe_protocol::id::RecordId>,
    Vec<Vec<automerge::ChangeHash>>,
) {
    let records = n.store.records().unwrap();
    let heads = records
        .iter()
        .map(|r| n.store.doc(*r).unwrap().unwrap().get_heads())
        .collect();
    (n.store.change_count(), records, heads)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = Message::decode(&bytes);
        let mut versioned = vec![1u8];
        versioned.extend_from_slice(&bytes);
        let _ = Message::decode(&versioned);
    }

    #[test]
    fn a_live_session_fed_garbage_errs_and_changes_nothing(
        garbage in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..512), 1..6),
        after_hello in any::<bool>(),
        tag in 0u8..8,
    ) {
        let mut county = County::new(21);
        let mut township = county.node(Role::Township, "500240101000");
        let village = county.node(Role::Village, "500240101201");
        county.case(&mut township, &["500240101201"], 2);
        let before = snapshot(&township);
        let mut session = Session::new(
            Config::default(),
            county.root.public(),
            township.identity.clone(),
            false,
            &township.store,
        )
        .unwrap();
        if after_hello {
            let hello = Message::Hello {
                version: guihe_protocol::wire::PROTOCOL_VERSION,
                cert: village.identity.cert.clone(),
                revocations: 0,
            };
            session.handle(&hello.encode().unwrap(), &mut township.store, county.now_ms).unwrap();
        }
        for g in garbage {
            // Half the time, make it look like a message of a real variant.
            let mut bytes = vec![1u8, tag];
            bytes.extend_from_slice(&g);
            if session.handle(&bytes, &mut township.store, county.now_ms).is_err() {
                break;
            }
        }
        prop_assert_eq!(snapshot(&township), before);
    }
}

#[test]
fn mem_store_keeps_the_store_contract() {
    guihe_protocol::conformance::check(guihe_protocol::store::MemStore::new, None).unwrap();
}

/// A batch long enough to be checked on several threads gives what checking each change
/// alone gives, and when changes are bad, the first bad one in the batch's order is named.
#[test]
fn a_batch_verified_in_parallel_matches_one_by_one() {
    use guihe_protocol::signed::{verify_batch, verify_change};
    use guihe_protocol::store::StoreCerts;
    let mut county = County::new(33);
    let mut village = county.node(Role::Village, "500240101201");
    let mut township = county.node(Role::Township, "500240101000");
    township
        .store
        .put_certificate(&village.identity.cert)
        .unwrap();
    for _ in 0..30 {
        county.case(&mut village, &["500240101201"], 2);
    }
    let keys = village
        .store
        .keys(
            guihe_protocol::division::Division::Village("500240101201".parse().unwrap()),
            &|_| true,
        )
        .unwrap();
    let batch: Vec<_> = keys
        .iter()
        .map(|(_, h)| village.store.change(h).unwrap().unwrap().signed)
        .collect();
    assert!(batch.len() >= 64, "{}", batch.len());
    let certs = StoreCerts(&township.store);
    let revocations = Default::default();
    let one_by_one: Vec<_> = batch
        .iter()
        .map(|s| verify_change(s.clone(), &certs, &revocations).unwrap().hash)
        .collect();
    let together: Vec<_> = verify_batch(batch.clone(), &certs, &revocations)
        .unwrap()
        .into_iter()
        .map(|v| v.unwrap().hash)
        .collect();
    assert_eq!(together, one_by_one);

    // Two bad changes, one in each half: the earlier one is named.
    let mut bad = batch.clone();
    let early = 20;
    let late = bad.len() - 3;
    bad[early].signature[0] ^= 1;
    bad[late].bytes.truncate(10);
    let expected = verify_change(bad[early].clone(), &certs, &revocations).unwrap_err();
    assert_eq!(
        verify_batch(bad, &certs, &revocations).unwrap_err(),
        expected
    );
}
