//! guihe's sans-IO core.
//!
//! Everything the node and the simulator share lives here: the mediation domain as
//! Automerge documents (`record`, `event`, `fold`, `view`), typed ids and division codes,
//! the hybrid logical clock, identity and authority (`cert`, `signed`), storage (`store`,
//! `ingest`, `replica`) and the sync protocol (`wire`, `sync`). This crate never does IO: no clock, no randomness, no
//! threads, no sockets, no files. Time and randomness come from the caller, so the
//! simulator can drive the same code deterministically.

// Shipped code never panics on input: no unwrap, expect, panic or unchecked indexing.
// Tests, benches and integration tests are separate crates and may.
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod bundle;
pub mod cert;
pub mod conformance;
pub mod deadline;
pub mod division;
pub mod event;
pub mod fold;
pub mod hlc;
pub mod host;
pub mod id;
pub mod ingest;
pub mod ledger;
mod mapping;
pub mod messages;
pub mod model;
pub mod numbering;
mod ops;
pub mod owned;
pub mod quarantine;
pub mod record;
pub mod replica;
pub mod revoke;
pub mod rules;
mod same;
pub mod signed;
pub mod stats;
pub mod status;
pub mod store;
pub mod sync;
pub mod todo;
pub mod view;
pub mod wire;
pub mod workflow;
pub mod workload;
