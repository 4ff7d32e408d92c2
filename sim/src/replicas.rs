//! One record, several offices, seeded concurrent work and merges, then heal and check.
//!
//! Everything comes from the seed: node keys, ids, the work, the merge order and the
//! virtual clock. The same seed gives the same report, byte for byte.

use std::collections::BTreeSet;

use guihe_protocol::deadline::Deadlines;
use guihe_protocol::division::VillageCode;
use guihe_protocol::id::{EventId, NodeId};
use guihe_protocol::model::Kind;
use guihe_protocol::record::{CommandError, DocError, Record, Writer};
use guihe_protocol::workload;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::Serialize;

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The seed that drives everything.
    pub seed: u64,
    /// Number of offices holding the record (at least 1).
    pub replicas: usize,
    /// Number of steps (a step is one office's work or one merge between two offices).
    pub steps: usize,
    /// Percentage of steps that are merges.
    pub merge_percent: u32,
    /// Petition instead of dispute case.
    pub petition: bool,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The run's configuration cannot be run.
    #[error("bad configuration: {0}")]
    Config(&'static str),
    /// A document operation failed.
    #[error(transparent)]
    Doc(#[from] DocError),
    /// A command the workload proposed failed other than by a workflow refusal.
    #[error("command failed: {0}")]
    Command(CommandError),
    /// A check failed after healing.
    #[error("check failed: {0}")]
    Check(String),
}

/// What a run did and found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Offices.
    pub replicas: usize,
    /// Events written by the offices (after intake).
    pub events_written: usize,
    /// Commands refused by the workflow rules (they wrote nothing).
    pub refused: usize,
    /// Merges during the faulty phase.
    pub merges: usize,
    /// Whether the healed record needs review.
    pub needs_review: bool,
    /// The heads every replica ended with, hex.
    pub heads: Vec<String>,
    /// The final status.
    pub status: String,
}

struct Office {
    writer: Writer,
    now_ms: u64,
}

/// Virtual start time: 2026-01-01.
const START_MS: u64 = 1_767_225_600_000;

/// Runs one seed.
pub fn run(config: &Config) -> Result<Report, SimError> {
    if config.replicas == 0 {
        return Err(SimError::Config("at least one replica"));
    }
    let rules = Deadlines::default();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut offices = Vec::with_capacity(config.replicas);
    for _ in 0..config.replicas {
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        let node = NodeId::from_bytes(key);
        offices.push(Office {
            writer: Writer::new(
                node,
                1,
                "sim".parse().map_err(|_| SimError::Config("staff id"))?,
            ),
            now_ms: START_MS,
        });
    }
    let village: VillageCode = "500240101201"
        .parse()
        .map_err(|_| SimError::Config("village code"))?;
    let kind = if config.petition {
        Kind::Petition
    } else {
        Kind::Case
    };
    let new = workload::new_record(&mut rng, kind, &[village]);
    let first = offices.first_mut().ok_or(SimError::Config("no office"))?;
    let (record, _) = Record::create(&mut first.writer.ctx(first.now_ms, &mut rng, &rules), new)
        .map_err(SimError::Command)?;
    let mut replicas: Vec<Record> = offices
        .iter()
        .map(|o| record.fork(o.writer.actor.clone()))
        .collect();
    let mut written: BTreeSet<EventId> = BTreeSet::new();
    let (mut refused, mut merges) = (0, 0);

    let n = config.replicas;
    for _ in 0..config.steps {
        let r = rng.next_u32() as usize % n;
        if rng.next_u32() % 100 < config.merge_percent {
            let from = rng.next_u32() as usize % n;
            if from != r
                && let Some(other) = replicas.get(from).cloned()
                && let Some(to) = replicas.get_mut(r)
            {
                to.merge(&other)?;
                merges += 1;
            }
            continue;
        }
        let (Some(office), Some(replica)) = (offices.get_mut(r), replicas.get_mut(r)) else {
            continue;
        };
        office.now_ms += u64::from(rng.next_u32() % 48) * 3_600_000;
        let fold = replica.fold(&rules)?;
        let Some(command) = workload::next_command(&mut rng, &fold) else {
            continue;
        };
        let before = replica.heads();
        match replica.apply(
            &mut office.writer.ctx(office.now_ms, &mut rng, &rules),
            command,
        ) {
            Ok(id) => {
                written.insert(id);
            }
            Err(CommandError::Refused(_)) => {
                refused += 1;
                if replica.heads() != before {
                    return Err(SimError::Check("a refused command wrote".into()));
                }
            }
            Err(e) => return Err(SimError::Command(e)),
        }
    }

    // Heal: everyone merges everyone through a seeded hub.
    let hub = rng.next_u32() as usize % n;
    let mut merged = replicas.get(hub).cloned().ok_or(SimError::Config("hub"))?;
    for r in &replicas {
        merged.merge(r)?;
    }
    for r in replicas.iter_mut() {
        r.merge(&merged)?;
    }

    let heads = merged.heads();
    let view = merged.view(&rules)?;
    for (i, r) in replicas.iter().enumerate() {
        if r.heads() != heads {
            return Err(SimError::Check(format!("replica {i} has other heads")));
        }
        if r.view(&rules)? != view {
            return Err(SimError::Check(format!("replica {i} has another view")));
        }
    }
    let held: BTreeSet<EventId> = merged.events()?.events.iter().map(|e| e.id).collect();
    if let Some(lost) = written.difference(&held).next() {
        return Err(SimError::Check(format!("event {lost} was lost")));
    }
    Ok(Report {
        seed: config.seed,
        replicas: n,
        events_written: written.len(),
        refused,
        merges,
        needs_review: view.common().needs_review,
        heads: heads.iter().map(|h| h.to_string()).collect(),
        status: view.common().status.code().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> Config {
        Config {
            seed,
            replicas: 4,
            steps: 80,
            merge_percent: 20,
            petition: seed % 2 == 1,
        }
    }

    #[test]
    fn a_seed_replays_byte_for_byte() {
        for seed in 0..5 {
            assert_eq!(run(&config(seed)).unwrap(), run(&config(seed)).unwrap());
        }
    }

    #[test]
    fn many_seeds_converge_without_loss() {
        for seed in 0..30 {
            let report = run(&config(seed)).unwrap_or_else(|e| {
                panic!("seed {seed} failed: {e}; replay: guihe-sim replicas --seed {seed} --replicas 4 --steps 80")
            });
            assert!(report.events_written > 0);
        }
    }
}
