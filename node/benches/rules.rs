//! What the change rules cost a node's ingest: the protocol's ingest benchmark
//! (`protocol/benches/shared/rules.rs`) into the node's own sled store, durable after each
//! batch as a session's batch is.
//!
//! `cargo bench -p guihe-node --features bench-baseline --bench rules -- [--cases N] [--rounds R] [--json]`
//!
//! Target (issue 13): the rules cost at most 10% of ingest.

#[path = "../../protocol/benches/shared/rules.rs"]
mod shared;

use guihe_node::store::{Options, SledStore};

fn main() {
    shared::run("the node's sled store", &|| {
        let dir = tempfile::tempdir().expect("temporary folder");
        let store = SledStore::open(dir.path(), &Options::default()).expect("store");
        (store, dir)
    });
}
