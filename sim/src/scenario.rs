//! Scenarios: a county's layout, its links, its workload and its faults, read from a TOML
//! file in `sim/scenarios/`. Everything random in a run is drawn from the run's seed; the
//! scenario only gives the distributions.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Why a scenario could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("scenario {name}: {message}")]
    Invalid {
        /// The scenario's name or path.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// A township and how many village-level units it has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Township {
    /// Its name.
    pub name: String,
    /// Number of village-level units.
    pub villages: u16,
}

/// How one class of link behaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkClass {
    /// Mean length of an up period (exponentially distributed), in hours.
    pub up_mean_hours: f64,
    /// Mean length of a down period, in hours.
    pub down_mean_hours: f64,
    /// One-way latency.
    pub latency_ms: u64,
    /// Bytes per second each way.
    pub bandwidth_bytes_per_s: u64,
}

/// Both classes of link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Links {
    /// Village office to township: mountain links, down more than up.
    pub village: LinkClass,
    /// Township to county: better.
    pub township: LinkClass,
}

/// The work the offices do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// New disputes and petitions per year, county-wide.
    pub records_per_year: f64,
    /// Share of new records that are petitions.
    pub petition_share: f64,
    /// Share of new records that concern two villages (taken in by the township).
    pub cross_village_share: f64,
    /// Mean days between two pieces of work on an open record.
    pub work_mean_days: f64,
    /// Most commands on one record after intake.
    pub commands_per_record_max: u32,
    /// Share of work on a village record that township staff do at the township, on
    /// their own replica, concurrently with the village.
    pub township_share: f64,
}

/// One scheduled partition: a township cut off from everything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// Index of the township in the scenario's list.
    pub township: usize,
    /// Start, in days from the start of the run.
    pub from_day: f64,
    /// Length in days.
    pub days: f64,
}

/// Faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Crashes per node per year (a crash drops the node's connections; its store keeps
    /// what it acknowledged).
    pub crashes_per_node_per_year: f64,
    /// Mean time a crashed node stays down.
    pub restart_mean_hours: f64,
    /// Forging nodes that try to inject changes (with a foreign root, or with a real
    /// village certificate writing another village's records).
    pub forgers: u32,
    /// Compromised villages: real, certified offices that sign rule-breaking changes to
    /// their own records (jurisdictions rewritten, events deleted, the restriction lifted)
    /// among their honest work.
    #[serde(default)]
    pub compromised: u32,
    /// A village PC stolen a third of the way into the run: the county revokes its key
    /// with a frontier, and the thief keeps writing with the clock set back.
    #[serde(default)]
    pub stolen: bool,
    /// Half-dead village links: at a random time, a village link stays up but loses
    /// everything the township sends for an hour, and the village has just written. The
    /// village's host must drop the session once its peer has been silent for the stall
    /// timeout, and dial again when the link recovers.
    #[serde(default)]
    pub half_dead: u32,
    /// Let the seed choose a mix of faults (some seeds turn faults up or off).
    pub swarm: bool,
    /// Scheduled partitions.
    #[serde(default)]
    pub partitions: Vec<Partition>,
}

/// A scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// What it models.
    pub description: String,
    /// The six-digit county code.
    pub county: u32,
    /// Days simulated when the command line does not say.
    pub days: f64,
    /// After the faulty phase: all links up, no new work; the run must converge within
    /// this many simulated hours.
    pub heal_bound_hours: f64,
    /// The townships, in order; codes are assigned from 001.
    pub townships: Vec<Township>,
    /// Link behaviour.
    pub links: Links,
    /// The work.
    pub workload: Workload,
    /// The faults.
    pub faults: Faults,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::parse(&text, &path.display().to_string())
    }

    /// A scenario by name from the scenarios folder shipped with the simulator.
    pub fn named(name: &str) -> Result<Scenario, ScenarioError> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        Scenario::load(&dir.join(format!("{name}.toml")))
    }

    /// Parses and checks scenario text.
    pub fn parse(text: &str, name: &str) -> Result<Scenario, ScenarioError> {
        let invalid = |message: String| ScenarioError::Invalid {
            name: name.to_string(),
            message,
        };
        let s: Scenario = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if !(100_000..1_000_000).contains(&s.county) {
            return Err(invalid(format!(
                "county {} is not a six-digit code",
                s.county
            )));
        }
        if s.townships.is_empty() || s.townships.len() > 999 {
            return Err(invalid("a county has 1 to 999 townships".into()));
        }
        if s.townships
            .iter()
            .any(|t| t.villages == 0 || t.villages > 999)
        {
            return Err(invalid("a township has 1 to 999 villages".into()));
        }
        for (what, v) in [
            ("petition_share", s.workload.petition_share),
            ("cross_village_share", s.workload.cross_village_share),
            ("township_share", s.workload.township_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(invalid(format!("{what} must be between 0 and 1")));
            }
        }
        let positive = [
            s.days,
            s.heal_bound_hours,
            s.workload.work_mean_days,
            s.links.village.up_mean_hours,
            s.links.village.down_mean_hours,
            s.links.township.up_mean_hours,
            s.links.township.down_mean_hours,
            s.faults.restart_mean_hours,
        ];
        if positive.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(invalid("durations must be positive".into()));
        }
        if s.links.village.bandwidth_bytes_per_s == 0 || s.links.township.bandwidth_bytes_per_s == 0
        {
            return Err(invalid("bandwidth must be positive".into()));
        }
        if let Some(p) = s
            .faults
            .partitions
            .iter()
            .find(|p| p.township >= s.townships.len())
        {
            return Err(invalid(format!(
                "partition names township {} of {}",
                p.township,
                s.townships.len()
            )));
        }
        Ok(s)
    }

    /// Number of village-level units.
    pub fn villages(&self) -> usize {
        self.townships.iter().map(|t| usize::from(t.villages)).sum()
    }
}
