//! The guihe simulator: the real protocol code, driven deterministically from one seed.
//!
//! So far it holds the first of its runs, `replicas`: several offices edit one record
//! concurrently with virtual time and merge in seeded orders, then heal, and the run checks
//! that every replica converged and that no written event was lost. The modelled county
//! with intermittent links and sync sessions builds on this.

#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod replicas;
