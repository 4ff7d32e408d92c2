//! The guihe simulator: the real protocol code, driven deterministically from one seed.
//!
//! A run builds a county from a scenario file (`sim/scenarios/`): a county node, its
//! townships and villages, each a `guihe_protocol::replica::Replica` over an in-memory
//! store, joined by links that come and go. The workload writes records through the same
//! commands the node uses, and the nodes sync with the protocol's own `sync::Session`s over
//! virtual links with latency and bandwidth. Phase one runs with faults; phase two heals
//! and must converge; then `check` verifies convergence, delivery, authorisation and
//! forgery, and measures latency against the foremost-journey bound.
//!
//! The simulator never does network IO and never reads the clock: virtual time only.

#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod check;
pub mod replicas;
pub mod report;
pub mod run;
pub mod scenario;

use check::Report;
use run::{Config, SetupError, Sim};
use scenario::Scenario;

/// Runs one seed of a scenario to the end and checks it.
pub fn run_and_check(scenario: &Scenario, config: Config) -> Result<Report, SetupError> {
    let mut sim = Sim::new(scenario.clone(), config)?;
    sim.run();
    Ok(check::check(&sim))
}
