//! Replicas that apply random valid commands concurrently and merge in random orders and
//! groupings end identical: same heads, same view, same fold; no event is lost.

mod common;

use std::collections::BTreeSet;

use common::*;
use guihe_protocol::id::EventId;
use guihe_protocol::model::Kind;
use guihe_protocol::record::{CommandError, Record};
use guihe_protocol::workload;
use proptest::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// What one step of a run does.
#[derive(Debug, Clone)]
enum Step {
    /// Replica `r` records what a worker would do next, `minutes` after its last step.
    Work { r: usize, minutes: u32 },
    /// Replica `to` merges replica `from`.
    Merge { from: usize, to: usize },
}

fn step(replicas: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..replicas, 0u32..3_000).prop_map(|(r, minutes)| Step::Work { r, minutes }),
        1 => (0..replicas, 0..replicas).prop_map(|(from, to)| Step::Merge { from, to }),
    ]
}

fn scenario() -> impl Strategy<Value = (bool, usize, Vec<Step>, u64)> {
    (2usize..=5).prop_flat_map(|n| {
        (
            any::<bool>(),
            Just(n),
            prop::collection::vec(step(n), 1..40),
            any::<u64>(),
        )
    })
}

struct Run {
    offices: Vec<Office>,
    replicas: Vec<Record>,
    written: BTreeSet<EventId>,
}

fn run(petition: bool, n: usize, steps: &[Step], seed: u64) -> Run {
    let mut offices: Vec<Office> = (0..n)
        .map(|i| Office::new(u8::try_from(i + 1).unwrap(), "worker"))
        .collect();
    let mut work_rng = ChaCha8Rng::seed_from_u64(seed);
    let kind = if petition { Kind::Petition } else { Kind::Case };
    let new = workload::new_record(&mut work_rng, kind, &[village("500240101201")]);
    let first = offices[0].create(new);
    let mut replicas: Vec<Record> = offices.iter().map(|o| o.replica(&first)).collect();
    let mut written: BTreeSet<EventId> = first
        .events()
        .unwrap()
        .events
        .iter()
        .map(|e| e.id)
        .collect();

    for s in steps {
        match *s {
            Step::Work { r, minutes } => {
                let office = &mut offices[r];
                office.now_ms += u64::from(minutes) * 60_000;
                let fold = replicas[r].fold(&office.rules).unwrap();
                let Some(command) = workload::next_command(&mut work_rng, &fold) else {
                    continue;
                };
                let before = replicas[r].heads();
                match replicas[r].apply(&mut office.ctx(), command) {
                    Ok(id) => {
                        written.insert(id);
                    }
                    // The workload proposes what the rules allow in the author's own
                    // view, so only a workflow refusal may happen, and it writes nothing.
                    Err(CommandError::Refused(_)) => {
                        assert_eq!(replicas[r].heads(), before, "a refused command wrote")
                    }
                    Err(e) => panic!("the workload's command failed: {e}"),
                }
            }
            Step::Merge { from, to } => {
                if from != to {
                    let other = replicas[from].clone();
                    replicas[to].merge(&other).unwrap();
                }
            }
        }
    }
    Run {
        offices,
        replicas,
        written,
    }
}

/// Merges every replica into every other in an order and grouping drawn from `seed`.
fn heal(replicas: &mut [Record], seed: u64) {
    let n = replicas.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Random pairwise merges first (groupings), then one sweep that is sure to connect all.
    for _ in 0..n * n {
        let from = rng.next_u32() as usize % n;
        let to = rng.next_u32() as usize % n;
        if from != to {
            let other = replicas[from].clone();
            replicas[to].merge(&other).unwrap();
        }
    }
    let hub = rng.next_u32() as usize % n;
    for i in 0..n {
        let other = replicas[i].clone();
        replicas[hub].merge(&other).unwrap();
    }
    let all = replicas[hub].clone();
    for r in replicas.iter_mut() {
        r.merge(&all).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_whatever_the_merge_order(
        (petition, n, steps, seed) in scenario(),
        heal_a in any::<u64>(),
        heal_b in any::<u64>(),
    ) {
        let Run { offices, mut replicas, written } = run(petition, n, &steps, seed);
        let rules = &offices[0].rules;
        let mut other_order = replicas.clone();
        heal(&mut replicas, heal_a);
        heal(&mut other_order, heal_b);

        let heads = replicas[0].heads();
        let view = replicas[0].view(rules).unwrap();
        let fold = replicas[0].fold(rules).unwrap();
        for r in replicas.iter().chain(other_order.iter()) {
            prop_assert_eq!(r.heads(), heads.clone());
            prop_assert_eq!(r.view(rules).unwrap(), view.clone());
            prop_assert_eq!(r.fold(rules).unwrap(), fold.clone());
        }
        // Saved and loaded, the record folds the same.
        let reloaded = Record::load(&replicas[0].save()).unwrap();
        prop_assert_eq!(reloaded.view(rules).unwrap(), view.clone());

        // No event lost: every event any replica wrote is in the merged record, once.
        let events = replicas[0].events().unwrap();
        prop_assert_eq!(events.malformed, 0);
        let held: BTreeSet<EventId> = events.events.iter().map(|e| e.id).collect();
        prop_assert_eq!(held.len(), events.events.len());
        prop_assert_eq!(&held, &written);
        // Every event is either applied or listed for review (or settled by a review).
        prop_assert!(fold.applied as usize <= written.len());
    }
}

#[test]
fn the_same_seed_gives_the_same_record() {
    let steps: Vec<Step> = (0..30)
        .map(|i| {
            if i % 4 == 3 {
                Step::Merge {
                    from: i % 3,
                    to: (i + 1) % 3,
                }
            } else {
                Step::Work {
                    r: i % 3,
                    minutes: 90,
                }
            }
        })
        .collect();
    let a = run(false, 3, &steps, 42);
    let b = run(false, 3, &steps, 42);
    for (x, y) in a.replicas.iter().zip(&b.replicas) {
        assert_eq!(x.save(), y.save());
    }
}

#[test]
fn the_workload_exercises_contradictions_and_reviews() {
    // The property above is only as strong as the work it runs: over a spread of seeds the
    // workload must produce concurrent contradictions, and reviews that settle some.
    let mut contradicted = 0;
    let mut reviewed = 0;
    for seed in 0..40u64 {
        let steps: Vec<Step> = (0..24)
            .map(|i| Step::Work {
                r: i % 3,
                minutes: 30,
            })
            .chain((0..3).map(|i| Step::Merge {
                from: i,
                to: (i + 1) % 3,
            }))
            .chain((0..12).map(|i| Step::Work {
                r: i % 3,
                minutes: 30,
            }))
            .collect();
        let mut run = run(seed % 2 == 0, 3, &steps, seed);
        heal(&mut run.replicas, seed);
        let rules = &run.offices[0].rules;
        let events = run.replicas[0].events().unwrap().events;
        if events
            .iter()
            .any(|e| matches!(e.body, guihe_protocol::event::Body::Review(_)))
        {
            reviewed += 1;
        }
        let fold = run.replicas[0].fold(rules).unwrap();
        if fold.needs_review() {
            contradicted += 1;
        }
    }
    assert!(contradicted > 0, "no run ended with a contradiction");
    assert!(reviewed > 0, "no run recorded a review");
}
