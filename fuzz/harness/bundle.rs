//! The body of the bundle fuzz target: a fresh node, in a temporary folder, imports the
//! input as a bundle's contents.
//!
//! Shared like `protocol.rs` beside it: the fuzz crate's library, and a module of
//! `node/tests/bundle.rs`, which replays the seed corpus and every crash found and runs
//! the same body under proptest. It needs the `protocol` module next to it (the fixture's
//! county root, nodes and stores).

#![allow(dead_code, unreachable_pub)]

use std::sync::OnceLock;

use guihe_node::bundle::{Bundle, Imported, import_bytes};
use guihe_node::local::{Local, init_enrolled};
use guihe_protocol::cert::{Certificate, RevocationList, Role};
use guihe_protocol::division::Division;
use guihe_protocol::store::{MemStore, Store};

use super::protocol::{COUNTY, Snapshot, TOWNSHIP, fixture, snapshot};

/// The files of a set-up township node (another node of [`TOWNSHIP`] than the fixture's):
/// made once per process in a temporary folder, kept in memory, and written out for each
/// fresh node.
fn template() -> &'static [(std::ffi::OsString, Vec<u8>)] {
    static TEMPLATE: OnceLock<Vec<(std::ffi::OsString, Vec<u8>)>> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("guihe-fuzz-template")
            .tempdir()
            .expect("a temporary folder");
        init_enrolled(
            dir.path(),
            &fixture().root,
            100,
            Role::Township,
            TOWNSHIP.parse().expect("the township"),
            3_650,
        )
        .expect("a node set up");
        std::fs::read_dir(dir.path())
            .expect("the template")
            .map(|e| e.expect("a template entry"))
            .filter(|e| e.file_type().expect("its type").is_file())
            .map(|e| {
                (
                    e.file_name(),
                    std::fs::read(e.path()).expect("a template file"),
                )
            })
            .collect()
    })
}

/// A fresh township node in its own temporary folder (removed when the folder is dropped).
pub fn fresh_node() -> (tempfile::TempDir, Local) {
    let dir = tempfile::Builder::new()
        .prefix("guihe-fuzz-node")
        .tempdir()
        .expect("a temporary folder");
    for (name, bytes) in template() {
        std::fs::write(dir.path().join(name), bytes).expect("a template file written");
    }
    let local = Local::open(dir.path()).expect("a fresh node opens");
    (dir, local)
}

/// What a refused bundle must leave alone: the changes, records and pending sets, the
/// revocation list, and the certificates of every fixture node.
pub type NodeSnapshot = (
    Snapshot,
    usize,
    Option<RevocationList>,
    Vec<Vec<Certificate>>,
);

/// The node's snapshot.
pub fn node_snapshot(local: &Local) -> NodeSnapshot {
    let f = fixture();
    let store = &local.replica.store;
    let certs = [&f.township, &f.village, &f.other, &f.county]
        .iter()
        .map(|i| store.certificates_of(&i.cert.node()).expect("certificates"))
        .collect();
    (
        snapshot(store),
        store.change_count(),
        store.revocations().expect("the revocation list"),
        certs,
    )
}

/// Target `bundle`: the input is imported into a fresh node. It is imported or refused
/// with a typed error; a refused bundle changes nothing in the store; an imported one
/// imports again with nothing new.
pub fn bundle(data: &[u8]) -> Result<Imported, String> {
    let (_dir, mut local) = fresh_node();
    let before = node_snapshot(&local);
    match import_bytes(&mut local, data) {
        Ok(imported) => {
            assert!(
                imported.new + imported.skipped <= imported.changes,
                "{imported:?}"
            );
            let again = import_bytes(&mut local, data).expect("an imported bundle imports again");
            assert_eq!(again.new, 0, "a second import brought something new");
            Ok(imported)
        }
        Err(e) => {
            assert_eq!(
                node_snapshot(&local),
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
