//! `guihe`: the program each mediation office runs.
//!
//! This build has one command, `demo`, which runs the domain model of guihe-protocol for a
//! small county in one process. The daemon (sled store, libp2p mesh, web UI) comes with the
//! node issue; the demo says so rather than pretend.

#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use guihe_node::demo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// 贵和 guihe: records of dispute mediation and petitions, kept by every office and merged
/// across the county.
#[derive(Debug, Parser)]
#[command(name = "guihe", version, about)]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// 演示: build a small county (1 county, 2 townships, 4 villages), record realistic
    /// cases, merge the offices' records and show the result.
    Demo {
        /// Where to write the records and their views (default: a `guihe-demo` folder in
        /// the system's temporary directory).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let result = match cli.command {
        Command::Demo { out } => {
            let out = out.unwrap_or_else(|| std::env::temp_dir().join("guihe-demo"));
            demo::run(&out)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("guihe: {e}");
            ExitCode::FAILURE
        }
    }
}
