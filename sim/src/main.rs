//! `guihe-sim`: runs the simulator from the command line.
//!
//! ```text
//! guihe-sim run --scenario shizhu --seed 7 --days 365 --out report/
//! guihe-sim sweep --scenario small --seeds 1..=500
//! ```
//!
//! On a failure it prints the seed and the command that replays it.

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use guihe_sim::check::Report;
use guihe_sim::run::{Config, Sabotage};
use guihe_sim::scenario::Scenario;
use guihe_sim::{replicas, report, run_and_check};

/// The guihe simulator: the real protocol code over a modelled county, driven
/// deterministically from one seed.
#[derive(Debug, Parser)]
#[command(name = "guihe-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SabotageArg {
    /// Drop every batch that carries a petition's change (the checks must catch it).
    DropPetitionBatches,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one seed of a scenario and writes its report and plots.
    Run {
        /// A scenario name from sim/scenarios (small, shizhu, province, offices10k) or a file path.
        #[arg(long)]
        scenario: String,
        /// The seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Days of the faulty phase (default: the scenario's).
        #[arg(long)]
        days: Option<f64>,
        /// Where to write report.json and the plots.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run a deliberately broken protocol (for checking the checks).
        #[arg(long, value_enum)]
        sabotage: Option<SabotageArg>,
    },
    /// Runs many seeds of a scenario in parallel and checks each.
    Sweep {
        /// A scenario name or path.
        #[arg(long)]
        scenario: String,
        /// Seeds, as A..B (B excluded) or A..=B.
        #[arg(long, default_value = "1..=200")]
        seeds: String,
        /// Days of the faulty phase (default: the scenario's).
        #[arg(long)]
        days: Option<f64>,
        /// Worker threads (default: the machine's cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Also run the first seed twice and compare the reports byte for byte.
        #[arg(long)]
        check_determinism: bool,
    },
    /// One record, several offices merging in seeded orders (the smallest check).
    Replicas {
        /// The seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// How many seeds, from --seed.
        #[arg(long, default_value_t = 1)]
        seeds: u64,
        /// Offices.
        #[arg(long, default_value_t = 4)]
        replicas: usize,
        /// Steps of work and merges.
        #[arg(long, default_value_t = 80)]
        steps: usize,
        /// Share of steps that are merges, in percent.
        #[arg(long, default_value_t = 20)]
        merge_percent: u32,
    },
}

fn load(scenario: &str) -> Result<Scenario, String> {
    let path = Path::new(scenario);
    let loaded = if path.extension().is_some_and(|e| e == "toml") {
        Scenario::load(path)
    } else {
        Scenario::named(scenario)
    };
    loaded.map_err(|e| e.to_string())
}

fn parse_seeds(s: &str) -> Result<std::ops::RangeInclusive<u64>, String> {
    let bad = || format!("seeds must look like 1..500 or 1..=500, got {s:?}");
    if let Some((a, b)) = s.split_once("..=") {
        let (a, b) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        return Ok(a..=b);
    }
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let (a, b): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if b <= a {
        return Err(bad());
    }
    Ok(a..=b - 1)
}

fn summary(r: &Report) -> String {
    format!(
        "seed {:>5}: {} nodes, {} records, {} changes, delivery {:.4}, latency p50 {:.1} h p99 {:.1} h, stretch p50 {}% p99 {}%, {:.1} wire bytes per change byte ({}), healed in {:.1} s{}",
        r.seed,
        r.nodes,
        r.records,
        r.changes,
        r.delivery_ratio,
        r.latency_ms.p50 as f64 / 3.6e6,
        r.latency_ms.p99 as f64 / 3.6e6,
        r.stretch_percent.p50,
        r.stretch_percent.p99,
        r.wire_per_change_byte,
        r.traffic
            .iter()
            .map(|(class, t)| format!(
                "{class}: {:.2} per needed byte, {} sessions",
                t.wire_per_needed_byte, t.sessions
            ))
            .collect::<Vec<_>>()
            .join("; "),
        r.heal_ms as f64 / 1e3,
        if r.passed() { "" } else { " — FAILED" }
    )
}

/// The simulator allocates and frees millions of small values (documents, events,
/// frames); mimalloc runs a county year about 15% faster than the system allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run {
            scenario,
            seed,
            days,
            out,
            sabotage,
        } => {
            let s = match load(&scenario) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("guihe-sim: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let days = days.unwrap_or(s.days);
            let config = Config {
                seed,
                days,
                sabotage: sabotage
                    .map(|SabotageArg::DropPetitionBatches| Sabotage::DropPetitionBatches),
            };
            let report = match run_and_check(&s, config) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("guihe-sim: {e}");
                    return ExitCode::FAILURE;
                }
            };
            println!("{}", summary(&report));
            if let Some(out) = out {
                if let Err(e) = report::write(&report, &out) {
                    eprintln!("guihe-sim: {e}");
                    return ExitCode::FAILURE;
                }
                println!("report and plots in {}", out.display());
            }
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                for f in report.failures.iter().take(20) {
                    eprintln!("  {f}");
                }
                eprintln!(
                    "replay: guihe-sim run --scenario {scenario} --seed {seed} --days {days}"
                );
                ExitCode::FAILURE
            }
        }
        Command::Sweep {
            scenario,
            seeds,
            days,
            jobs,
            check_determinism,
        } => {
            let s = match load(&scenario) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("guihe-sim: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let seeds = match parse_seeds(&seeds) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("guihe-sim: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let days = days.unwrap_or(s.days);
            let jobs = jobs
                .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
                .unwrap_or(1)
                .max(1);
            let all: Vec<u64> = seeds.collect();
            if check_determinism && let Some(&first) = all.first() {
                let config = Config {
                    seed: first,
                    days,
                    sabotage: None,
                };
                let a = run_and_check(&s, config.clone())
                    .ok()
                    .map(|r| serde_json::to_string(&r).ok());
                let b = run_and_check(&s, config)
                    .ok()
                    .map(|r| serde_json::to_string(&r).ok());
                if a != b || a.is_none() {
                    eprintln!(
                        "seed {first} is not deterministic\nreplay: guihe-sim run --scenario {scenario} --seed {first} --days {days}"
                    );
                    return ExitCode::FAILURE;
                }
                println!("determinism: seed {first} gave the same report twice");
            }
            let chunks: Vec<Vec<u64>> = (0..jobs)
                .map(|j| all.iter().copied().skip(j).step_by(jobs).collect())
                .collect();
            let results: Vec<(u64, Result<Report, String>)> = std::thread::scope(|scope| {
                let handles: Vec<_> = chunks
                    .into_iter()
                    .map(|chunk| {
                        let s = &s;
                        scope.spawn(move || {
                            chunk
                                .into_iter()
                                .map(|seed| {
                                    let config = Config {
                                        seed,
                                        days,
                                        sabotage: None,
                                    };
                                    (seed, run_and_check(s, config).map_err(|e| e.to_string()))
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_default())
                    .collect()
            });
            let mut results = results;
            results.sort_by_key(|(seed, _)| *seed);
            let mut failed = Vec::new();
            for (seed, r) in &results {
                match r {
                    Ok(r) => {
                        println!("{}", summary(r));
                        if !r.passed() {
                            for f in r.failures.iter().take(5) {
                                eprintln!("  {f}");
                            }
                            failed.push(*seed);
                        }
                    }
                    Err(e) => {
                        eprintln!("seed {seed}: {e}");
                        failed.push(*seed);
                    }
                }
            }
            if results.len() != all.len() {
                eprintln!(
                    "guihe-sim: a worker thread died; {} of {} seeds ran",
                    results.len(),
                    all.len()
                );
                return ExitCode::FAILURE;
            }
            println!(
                "{} passed, {} failed",
                results.len() - failed.len(),
                failed.len()
            );
            if failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                for seed in failed {
                    eprintln!(
                        "replay: guihe-sim run --scenario {scenario} --seed {seed} --days {days}"
                    );
                }
                ExitCode::FAILURE
            }
        }
        Command::Replicas {
            seed,
            seeds,
            replicas: n,
            steps,
            merge_percent,
        } => {
            for seed in seed..seed.saturating_add(seeds) {
                let config = replicas::Config {
                    seed,
                    replicas: n,
                    steps,
                    merge_percent,
                    petition: seed % 2 == 1,
                };
                match replicas::run(&config) {
                    Ok(r) => match serde_json::to_string(&r) {
                        Ok(line) => println!("{line}"),
                        Err(e) => {
                            eprintln!("encoding the report: {e}");
                            return ExitCode::FAILURE;
                        }
                    },
                    Err(e) => {
                        eprintln!(
                            "seed {seed} failed: {e}\nreplay: guihe-sim replicas --seed {seed} --replicas {n} --steps {steps} --merge-percent {merge_percent}"
                        );
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
    }
}
