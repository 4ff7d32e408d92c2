//! Ingest benchmark: what the change rules cost, into the in-memory store (see
//! `shared/rules.rs`; the node's `rules` benchmark does the same into its sled store).
//!
//! `cargo bench -p guihe-protocol --features bench-baseline --bench ingest -- [--cases N] [--rounds R] [--json]`
//!
//! Target (issue 13): the rules cost at most 10% of ingest.

#[path = "shared/rules.rs"]
mod shared;

fn main() {
    shared::run("the in-memory store", &|| {
        (guihe_protocol::store::MemStore::new(), ())
    });
}
