//! The body of the bundle fuzz target: a fresh township node, over an in-memory store,
//! takes the input in as a bundle through its host (`Host::import`, as the daemon and the
//! command line do).
//!
//! Shared like `protocol.rs` beside it: the fuzz crate's library, and a module of
//! `protocol/tests/bundle.rs`, which replays the seed corpus and every crash found and
//! runs the same body under proptest. It needs the `protocol` module next to it (the
//! fixture's county root, nodes and stores).

#![allow(dead_code, unreachable_pub)]

use guihe_protocol::bundle::{Bundle, BundleError, Imported};
use guihe_protocol::cert::{Certificate, RevocationList};
use guihe_protocol::division::Division;
use guihe_protocol::host::{Config, Host};
use guihe_protocol::replica::Replica;
use guihe_protocol::store::{MemStore, Store};
use rand_core::SeedableRng;

use super::protocol::{COUNTY, NOW_MS, Snapshot, fixture, snapshot};

/// A fresh node of the fixture's township: its store holds its own certificate only.
pub fn fresh_node() -> Replica<MemStore> {
    let f = fixture();
    let mut store = MemStore::new();
    store
        .put_certificate(&f.township.cert)
        .expect("its certificate");
    Replica::new(f.township.clone(), store, "fuzz".parse().expect("staff"), 1)
}

/// Takes `data` in as a bundle at `node`, through a host of its own.
pub fn import(node: &mut Replica<MemStore>, data: &[u8]) -> Result<Imported, BundleError> {
    let mut host = Host::new(
        Config::default(),
        fixture().root.public(),
        Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(7)),
    );
    host.import(data, NOW_MS, node)
}

/// What a refused bundle must leave alone: the changes, records and pending sets, the
/// revocation list, and the certificates of every fixture node.
pub type NodeSnapshot = (Snapshot, Option<RevocationList>, Vec<Vec<Certificate>>);

/// The node's snapshot.
pub fn node_snapshot(node: &Replica<MemStore>) -> NodeSnapshot {
    let f = fixture();
    let store = &node.store;
    let certs = [&f.township, &f.village, &f.other, &f.county]
        .iter()
        .map(|i| store.certificates_of(&i.cert.node()).expect("certificates"))
        .collect();
    (
        snapshot(store),
        store.revocations().expect("the revocation list"),
        certs,
    )
}

/// Target `bundle`: the input is taken in by a fresh node. It is imported or refused
/// with a typed error; a refused bundle changes nothing in the store; an imported one
/// imports again with nothing new.
pub fn bundle(data: &[u8]) -> Result<Imported, String> {
    let mut node = fresh_node();
    let before = node_snapshot(&node);
    match import(&mut node, data) {
        Ok(imported) => {
            assert!(
                imported.new + imported.skipped <= imported.changes,
                "{imported:?}"
            );
            let again = import(&mut node, data).expect("an imported bundle imports again");
            assert_eq!(again.new, 0, "a second import brought something new");
            Ok(imported)
        }
        Err(e) => {
            assert_eq!(
                node_snapshot(&node),
                before,
                "a refused bundle changed the store"
            );
            Err(e.to_string())
        }
    }
}

/// Every change a store holds, in key order.
fn changes(store: &MemStore) -> Vec<guihe_protocol::signed::SignedChange> {
    let county: Division = COUNTY.parse().expect("the county");
    store
        .keys(county, &|_| true)
        .expect("keys")
        .into_iter()
        .map(|(_, h)| store.change(&h).expect("a change").expect("held").signed)
        .collect()
}

/// The seed corpus of the bundle target: `(file name, input)`, each a real bundle.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let f = fixture();
    let mut all = changes(&f.village_store);
    all.extend(changes(&f.township_store));
    all.extend(changes(&f.other_store));
    let bundles = [
        (
            "full",
            Bundle {
                revocations: Some(f.revocations.clone()),
                frontier: Some(f.frontier.clone()),
                certs: vec![
                    f.village.cert.clone(),
                    f.township.cert.clone(),
                    f.other.cert.clone(),
                ],
                changes: all,
            },
        ),
        (
            "village",
            Bundle {
                revocations: None,
                frontier: None,
                certs: vec![f.village.cert.clone()],
                changes: changes(&f.village_store),
            },
        ),
        (
            "revocations-only",
            Bundle {
                revocations: Some(f.revocations.clone()),
                frontier: None,
                certs: Vec::new(),
                changes: Vec::new(),
            },
        ),
        (
            "empty",
            Bundle {
                revocations: None,
                frontier: None,
                certs: Vec::new(),
                changes: Vec::new(),
            },
        ),
    ];
    bundles
        .into_iter()
        .map(|(name, b)| (name.to_string(), b.to_bytes().expect("a bundle encodes")))
        .collect()
}
