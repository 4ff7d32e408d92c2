//! `guihe-sim`: runs the simulator from the command line.

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use guihe_sim::replicas;

/// The guihe simulator: the real protocol code, driven deterministically from one seed.
#[derive(Debug, Parser)]
#[command(name = "guihe-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Offices edit one record concurrently and merge in seeded orders; then heal and check
    /// that every replica converged and no event was lost. Prints a JSON report.
    Replicas {
        /// The seed that drives the run.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// How many seeds to run, starting at --seed.
        #[arg(long, default_value_t = 1)]
        seeds: u64,
        /// Offices holding the record.
        #[arg(long, default_value_t = 4)]
        replicas: usize,
        /// Steps of work and merges.
        #[arg(long, default_value_t = 80)]
        steps: usize,
        /// Percentage of steps that are merges.
        #[arg(long, default_value_t = 20)]
        merge_percent: u32,
        /// Run the seed twice and compare the reports.
        #[arg(long)]
        check_determinism: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replicas {
            seed,
            seeds,
            replicas: n,
            steps,
            merge_percent,
            check_determinism,
        } => {
            for seed in seed..seed.saturating_add(seeds) {
                let config = replicas::Config {
                    seed,
                    replicas: n,
                    steps,
                    merge_percent,
                    petition: seed % 2 == 1,
                };
                let replay = format!(
                    "guihe-sim replicas --seed {seed} --replicas {n} --steps {steps} --merge-percent {merge_percent}"
                );
                let report = match replicas::run(&config) {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("seed {seed} failed: {e}\nreplay: {replay}");
                        return ExitCode::FAILURE;
                    }
                };
                if check_determinism && replicas::run(&config).ok().as_ref() != Some(&report) {
                    eprintln!(
                        "seed {seed} is not deterministic\nreplay: {replay} --check-determinism"
                    );
                    return ExitCode::FAILURE;
                }
                match serde_json::to_string(&report) {
                    Ok(line) => println!("{line}"),
                    Err(e) => {
                        eprintln!("encoding the report: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
    }
}
