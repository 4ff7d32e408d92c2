//! What the change rules cost ingest, into any store: shared by the protocol's `ingest`
//! benchmark (in-memory store) and the node's `rules` benchmark (its sled store).
//!
//! A village's history (`workload::village_history`) is verified and ingested into a fresh
//! store in batches of 400, as a session carries them, with the rules on (as shipped) and
//! off (Automerge alone, the `bench-baseline` feature): two stores fed batch by batch in
//! turn, so that both see the same machine at the same moment.
//!
//! Target (issue 13): the rules cost at most 10% of ingest.

use std::time::{Duration, Instant};

use guihe_protocol::rules::BASELINE;
use guihe_protocol::signed::{Parallel, verify_batch_with};
use guihe_protocol::store::{Store, StoreCerts};
use guihe_protocol::workload;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

const T0: u64 = 1_772_323_200_000;
const BATCH: usize = 400;

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Runs the benchmark on the command line's `[--cases N] [--rounds R] [--json]`; `fresh`
/// opens an empty store (and whatever must live as long as it), and `store_name` says
/// which in the report.
pub(crate) fn run<S: Store, G>(store_name: &str, fresh: &dyn Fn() -> (S, G)) {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let cases = arg(&args, "--cases", 5_000);
    let rounds = arg(&args, "--rounds", 3).max(1);
    let (changes, identity) =
        workload::village_history(&mut ChaCha8Rng::seed_from_u64(13), cases, T0).expect("history");
    // One round: two fresh stores, one with the rules on and one with them off, fed the
    // same batches in turn (which goes first alternates by batch), each batch timed. The
    // machines this runs on change speed by tens of percent within seconds; timing each
    // batch beside its twin, milliseconds apart, keeps that out of the comparison.
    let round = || -> (Duration, Duration, [Duration; 2]) {
        let (mut on_store, _on_guard) = fresh();
        let (mut off_store, _off_guard) = fresh();
        on_store
            .put_certificate(&identity.cert)
            .expect("certificate");
        off_store
            .put_certificate(&identity.cert)
            .expect("certificate");
        let (mut on, mut off) = (Duration::ZERO, Duration::ZERO);
        // Of `on`, the part spent verifying (signatures and `rules::read`), and of `off`.
        let mut verifying = [Duration::ZERO; 2];
        for (i, batch) in changes.chunks(BATCH).enumerate() {
            for rules_on in [i % 2 == 0, i % 2 != 0] {
                BASELINE.store(!rules_on, std::sync::atomic::Ordering::Relaxed);
                let store = if rules_on {
                    &mut on_store
                } else {
                    &mut off_store
                };
                let signed = batch.iter().map(|c| c.signed.clone()).collect();
                let started = Instant::now();
                let checked =
                    verify_batch_with(signed, &StoreCerts(&*store), &Default::default(), &Cores)
                        .expect("verify");
                verifying[usize::from(!rules_on)] += started.elapsed();
                // (At the end of the village's year: nothing is stamped in the future.)
                let out = guihe_protocol::ingest::ingest(store, checked, T0 + 365 * 86_400_000)
                    .expect("ingest");
                let took = started.elapsed();
                assert!(out.quarantined.is_empty(), "an honest change was refused");
                *(if rules_on { &mut on } else { &mut off }) += took;
            }
        }
        for store in [&on_store, &off_store] {
            assert!(
                changes
                    .iter()
                    .all(|c| store.has_change(&c.hash).expect("store")),
                "every change is stored"
            );
        }
        (on, off, verifying)
    };
    let mut on = Vec::new();
    let mut off = Vec::new();
    for _ in 0..rounds {
        let (a, b, [va, vb]) = round();
        if !json {
            println!(
                "  round: rules on {:.2} s, off {:.2} s ({:+.1}%); verifying {:.2} s and {:.2} s of them",
                a.as_secs_f64(),
                b.as_secs_f64(),
                (a.as_secs_f64() / b.as_secs_f64().max(1e-9) - 1.0) * 100.0,
                va.as_secs_f64(),
                vb.as_secs_f64(),
            );
        }
        on.push(a);
        off.push(b);
    }
    let (on, off) = (median(on), median(off));
    let rate = |d: Duration| changes.len() as f64 / d.as_secs_f64().max(1e-9);
    let overhead = (on.as_secs_f64() / off.as_secs_f64().max(1e-9) - 1.0) * 100.0;
    if json {
        println!(
            "{{\"store\":\"{store_name}\",\"changes\":{},\"rules_on_per_s\":{:.0},\"rules_off_per_s\":{:.0},\"overhead_pct\":{:.1}}}",
            changes.len(),
            rate(on),
            rate(off),
            overhead
        );
    } else {
        println!(
            "ingest into {store_name} of {} changes ({} records), median of {} rounds, batches of {}:",
            changes.len(),
            cases,
            rounds,
            BATCH
        );
        println!("  rules on   {:>8.0} changes/s", rate(on));
        println!(
            "  rules off  {:>8.0} changes/s  (baseline: Automerge alone)",
            rate(off)
        );
        println!("  the rules cost {overhead:.1}% (target: at most 10%)");
    }
}

/// Signatures checked on the machine's cores, as the daemon checks them
/// (`guihe_node::threads`; the protocol starts no threads of its own).
struct Cores;

impl Parallel for Cores {
    fn width(&self) -> usize {
        std::thread::available_parallelism()
            .map(std::num::NonZeroUsize::get)
            .unwrap_or(1)
            .min(8)
    }

    fn run<'a>(&self, jobs: Vec<Box<dyn FnOnce() + Send + 'a>>) {
        std::thread::scope(|scope| {
            for job in jobs {
                scope.spawn(job);
            }
        });
    }
}
