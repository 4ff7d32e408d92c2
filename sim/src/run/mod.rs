//! One simulated run: a county of real protocol replicas over links that come and go,
//! driven by a discrete-event loop on virtual time.
//!
//! Phase one runs the workload with faults: links flap, nodes crash and restart, scheduled
//! partitions cut townships off, forgers try to inject changes. Phase two heals every
//! link, stops new work and requires convergence within the scenario's bound. Then the
//! checks run (see [`crate::check`]).
//!
//! Everything comes from the seed, through one ChaCha stream, and all maps are ordered, so
//! a seed replays byte for byte.

// Node and link indices are the simulator's own, made in `Sim::new` and never taken from
// input, so indexing by them cannot go out of bounds.
#![allow(clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};

use automerge::ChangeHash;
use guihe_protocol::cert::{CertBody, Identity, Keypair, Role, Root};
use guihe_protocol::deadline::Deadlines;
use guihe_protocol::division::{CountyCode, Division, TownshipCode, VillageCode};
use guihe_protocol::host::{Close, ConnId, Direction, Event as HostEvent, Host};
use guihe_protocol::id::RecordId;
use guihe_protocol::model::Kind;
use guihe_protocol::record::Record;
use guihe_protocol::replica::Replica;
use guihe_protocol::store::{MemStore, Store, StoredChange};
use guihe_protocol::wire::{Message, PROTOCOL_VERSION};
use guihe_protocol::workload;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::scenario::{LinkClass, Scenario};

mod faults;
mod links;
mod work;

/// Virtual start: 2026-01-01 00:00 UTC, in ms.
pub const START_MS: u64 = 1_767_225_600_000;
const HOUR_MS: f64 = 3_600_000.0;
const DAY_MS: f64 = 86_400_000.0;
/// Bound on events processed in one run, so a bug cannot loop forever.
pub const EVENTS_MAX: u64 = 50_000_000;

/// The hosts' bounds and timers: the daemon's, but for maintenance, which runs hourly
/// rather than every minute (the simulator pays an event for each, on every node).
pub(crate) fn host_config() -> guihe_protocol::host::Config {
    guihe_protocol::host::Config {
        maintenance_ms: 3_600_000,
        ..guihe_protocol::host::Config::default()
    }
}

/// A deliberately broken variant, to prove the checks catch a faulty protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sabotage {
    /// Every batch of changes that carries a petition's change is silently dropped.
    DropPetitionBatches,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The seed.
    pub seed: u64,
    /// Days of the faulty phase.
    pub days: f64,
    /// A deliberate fault in the protocol, for testing the checks.
    pub sabotage: Option<Sabotage>,
}

/// What a node is in the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeKind {
    /// The county node.
    County,
    /// A township aggregator (index into the scenario's townships).
    Township(usize),
    /// A village office.
    Village(usize),
    /// A forger: a foreign root, or a real certificate writing another village's records.
    Forger,
}

pub(crate) struct SimNode {
    pub(crate) name: String,
    pub(crate) kind: NodeKind,
    pub(crate) replica: Replica<MemStore>,
    pub(crate) running: bool,
    pub(crate) links: Vec<usize>,
    /// The node's sessions: the protocol's own host. A crash loses it, as a restart does.
    pub(crate) host: Host,
    /// The link of each open connection.
    conns: BTreeMap<ConnId, usize>,
    /// The host's timeout as scheduled.
    timer_at: Option<u64>,
    /// Hosts started so far (each restart starts a new one).
    incarnation: u64,
}

/// Which class a link belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// Village (or forger) to township.
    Village,
    /// Township to county.
    Township,
}

pub(crate) struct Link {
    /// The dialler (the lower tier).
    pub(crate) a: usize,
    pub(crate) b: usize,
    pub(crate) kind: LinkKind,
    pub(crate) up: bool,
    /// Increases whenever the connection drops; deliveries of an older epoch are lost.
    pub(crate) epoch: u64,
    /// When each direction is free to send again: [a→b, b→a].
    pub(crate) busy_until: [u64; 2],
    /// The open connection: its name at `a` and at `b`.
    pub(crate) sessions: Option<(ConnId, ConnId)>,
    /// Up intervals (start, end), for the foremost-journey bound.
    pub(crate) up_since: Option<u64>,
    pub(crate) intervals: Vec<(u64, u64)>,
    pub(crate) bytes: u64,
    pub(crate) messages: u64,
    /// Connections opened (each a session at both ends).
    pub(crate) sessions_opened: u64,
    /// Wire bytes by kind of message.
    pub(crate) bytes_by_kind: BTreeMap<&'static str, u64>,
    /// Everything from `b` to `a` is lost (a half-dead link).
    pub(crate) half_dead: bool,
}

#[derive(Debug, Clone)]
enum Ev {
    Toggle(usize),
    Deliver {
        link: usize,
        epoch: u64,
        to_b: bool,
        bytes: Vec<u8>,
    },
    NewRecord,
    Work {
        record: RecordId,
        origin: usize,
        done: u32,
    },
    Crash(usize),
    /// A node's host named this time for its timeout.
    Timer {
        node: usize,
        at: u64,
    },
    Restart(usize),
    Partition {
        township: usize,
        on: bool,
    },
    Theft,
    /// A village link turns half-dead (it loses what the township sends) or recovers.
    HalfDead {
        link: usize,
        on: bool,
    },
    /// The thief writes on the stolen PC, every hour until the county's links heal.
    ThiefWrites,
    Heal,
}

/// What a compromised village does to its own record in one change.
type Attack =
    fn(&mut automerge::transaction::Transaction<'_>) -> Result<(), automerge::AutomergeError>;

/// A change written during the run.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub(crate) time: u64,
    pub(crate) origin: usize,
    pub(crate) record: RecordId,
    pub(crate) bytes: usize,
}

/// A village link that lost what its township sent, for an hour.
#[derive(Debug, Clone)]
pub(crate) struct HalfDead {
    pub(crate) link: usize,
    pub(crate) start: u64,
    /// The village's session waited for its peer when the link turned half-dead.
    pub(crate) expecting: bool,
    /// When the village's host dropped the session as stalled.
    pub(crate) stalled_at: Option<u64>,
    /// When the connection dropped otherwise first (the link went down, a node crashed).
    pub(crate) lost_at: Option<u64>,
}

/// The state of a run.
pub struct Sim {
    pub(crate) scenario: Scenario,
    pub(crate) config: Config,
    rng: ChaCha8Rng,
    pub(crate) now: u64,
    queue: BTreeMap<(u64, u64), Ev>,
    seq: u64,
    pub(crate) nodes: Vec<SimNode>,
    pub(crate) links: Vec<Link>,
    pub(crate) root: Root,
    pub(crate) rules: Deadlines,
    pub(crate) healing: bool,
    pub(crate) heal_at: u64,
    pub(crate) last_delivery: u64,
    partitioned: BTreeSet<usize>,
    pub(crate) written: BTreeMap<ChangeHash, Written>,
    pub(crate) arrived: BTreeMap<(ChangeHash, usize), u64>,
    pub(crate) forged: BTreeSet<ChangeHash>,
    /// Rule-breaking changes signed by compromised villages, and their signers.
    pub(crate) bad: BTreeMap<ChangeHash, usize>,
    /// The stolen village node and when the county revoked it, with the frontier.
    pub(crate) stolen: Option<(usize, u64, guihe_protocol::cert::FrontierBody)>,
    /// Whether this run has a stolen PC (the scenario's, unless the seed turned it off).
    theft: bool,
    pub(crate) records: BTreeMap<RecordId, usize>,
    pub(crate) session_errors: u64,
    /// Sessions closed because their peer stopped answering.
    pub(crate) stalls: u64,
    /// Sessions closed because a revocation list revoked their peer.
    pub(crate) revoked_closes: u64,
    /// Verified sessions with the stolen office found open at a node that already knew
    /// of its revocation (each time a node's host had finished an input): none may be.
    pub(crate) revoked_left_open: u64,
    /// The half-dead episodes.
    pub(crate) half_dead: Vec<HalfDead>,
    /// When each node learnt of the stolen office's revocation.
    pub(crate) revoked_at: BTreeMap<usize, u64>,
    pub(crate) events: u64,
    crash_rate_per_ms: f64,
    down_scale: f64,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("scenario", &self.scenario.name)
            .field("seed", &self.config.seed)
            .field("now", &self.now)
            .field("nodes", &self.nodes.len())
            .field("records", &self.records.len())
            .finish()
    }
}

fn exp(rng: &mut ChaCha8Rng, mean: f64) -> u64 {
    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let x = -mean * (1.0 - u).ln();
    if x.is_finite() && x > 0.0 {
        x as u64
    } else {
        0
    }
}

fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
}

fn pick(rng: &mut ChaCha8Rng, n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (rng.next_u64() % n as u64) as usize
    }
}

/// Why a run could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A code of the scenario's layout is invalid.
    #[error("layout: {0}")]
    Layout(String),
}

impl Sim {
    /// Builds the county of the scenario with the run's seed.
    pub fn new(scenario: Scenario, config: Config) -> Result<Sim, SetupError> {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let root = Root::new(Keypair::generate(&mut rng));
        let layout = |e: guihe_protocol::division::CodeError| SetupError::Layout(e.to_string());
        let county =
            CountyCode::from_u64(u64::from(scenario.county) * 1_000_000).map_err(layout)?;
        let not_after = START_MS + ((config.days + 3650.0) * DAY_MS) as u64;
        let mut serial = 0u64;
        let mut identity = |rng: &mut ChaCha8Rng, root: &Root, role: Role, division: Division| {
            serial += 1;
            let key = Keypair::generate(rng);
            let cert = root.issue(CertBody {
                serial,
                node: key.public(),
                role,
                division,
                not_before_ms: START_MS - 1,
                not_after_ms: not_after,
            });
            cert.map(|cert| Identity { key, cert })
                .map_err(|e| SetupError::Layout(e.to_string()))
        };
        let staff: guihe_protocol::id::StaffId = "sim"
            .parse()
            .map_err(|e: guihe_protocol::id::IdError| SetupError::Layout(e.to_string()))?;
        let root_key = root.public();
        let node = |identity: Identity, name: String, kind: NodeKind| SimNode {
            name,
            kind,
            replica: Replica::new(identity, MemStore::new(), staff.clone(), 1),
            running: true,
            links: Vec::new(),
            host: Host::new(
                host_config(),
                root_key,
                Box::new(ChaCha8Rng::seed_from_u64(0)),
            ),
            conns: BTreeMap::new(),
            timer_at: None,
            incarnation: 0,
        };
        let mut nodes = vec![node(
            identity(&mut rng, &root, Role::County, Division::County(county))?,
            "county".into(),
            NodeKind::County,
        )];
        let mut links: Vec<Link> = Vec::new();
        let mut villages = Vec::new();
        for (ti, t) in scenario.townships.iter().enumerate() {
            let tcode = TownshipCode::from_u64(county.as_u64() + (ti as u64 + 1) * 1_000)
                .map_err(layout)?;
            let tnode = nodes.len();
            nodes.push(node(
                identity(&mut rng, &root, Role::Township, Division::Township(tcode))?,
                t.name.clone(),
                NodeKind::Township(ti),
            ));
            links.push(Link::new(tnode, 0, LinkKind::Township));
            for vi in 0..t.villages {
                let vcode = tcode.village(200 + vi).map_err(layout)?;
                let vnode = nodes.len();
                villages.push(vcode);
                nodes.push(node(
                    identity(&mut rng, &root, Role::Village, Division::Village(vcode))?,
                    format!("{}-{}", t.name, vi + 1),
                    NodeKind::Village(ti),
                ));
                links.push(Link::new(vnode, tnode, LinkKind::Village));
            }
        }
        // Swarm testing: the seed may turn faults down, off or up.
        let (mut crash_scale, mut down_scale, mut forgers) = (1.0, 1.0, scenario.faults.forgers);
        let mut compromised = scenario.faults.compromised;
        let mut theft = scenario.faults.stolen;
        if scenario.faults.swarm {
            crash_scale = [0.0, 1.0, 3.0][pick(&mut rng, 3)];
            down_scale = [0.5, 1.0, 2.0][pick(&mut rng, 3)];
            if chance(&mut rng, 0.3) {
                forgers = 0;
            }
            if chance(&mut rng, 0.3) {
                compromised = 0;
            }
            if chance(&mut rng, 0.3) {
                theft = false;
            }
        }
        for f in 0..forgers {
            let ti = pick(&mut rng, scenario.townships.len());
            let tnode = nodes
                .iter()
                .position(|n| n.kind == NodeKind::Township(ti))
                .unwrap_or(0);
            let tcode = TownshipCode::from_u64(county.as_u64() + (ti as u64 + 1) * 1_000)
                .map_err(layout)?;
            // Even forgers carry a foreign root's certificate; odd ones a real village
            // certificate that they use to write a neighbouring village's records.
            let identity = if f % 2 == 0 {
                let foreign = Root::new(Keypair::generate(&mut rng));
                identity(
                    &mut rng,
                    &foreign,
                    Role::Township,
                    Division::Township(tcode),
                )?
            } else {
                identity(
                    &mut rng,
                    &root,
                    Role::Village,
                    Division::Village(tcode.village(900).map_err(layout)?),
                )?
            };
            let fnode = nodes.len();
            nodes.push(node(identity, format!("forger-{f}"), NodeKind::Forger));
            links.push(Link::new(fnode, tnode, LinkKind::Village));
        }
        for (i, l) in links.iter().enumerate() {
            if let Some(n) = nodes.get_mut(l.a) {
                n.links.push(i);
            }
            if let Some(n) = nodes.get_mut(l.b) {
                n.links.push(i);
            }
        }
        let crash_rate_per_ms =
            scenario.faults.crashes_per_node_per_year * crash_scale / (365.0 * DAY_MS);
        let _ = villages;
        let mut sim = Sim {
            scenario,
            config,
            rng,
            now: START_MS,
            queue: BTreeMap::new(),
            seq: 0,
            nodes,
            links,
            root,
            rules: Deadlines::default(),
            healing: false,
            heal_at: 0,
            last_delivery: START_MS,
            partitioned: BTreeSet::new(),
            written: BTreeMap::new(),
            arrived: BTreeMap::new(),
            forged: BTreeSet::new(),
            bad: BTreeMap::new(),
            stolen: None,
            theft,
            records: BTreeMap::new(),
            session_errors: 0,
            stalls: 0,
            revoked_closes: 0,
            revoked_left_open: 0,
            half_dead: Vec::new(),
            revoked_at: BTreeMap::new(),
            events: 0,
            crash_rate_per_ms,
            down_scale,
        };
        for n in 0..sim.nodes.len() {
            sim.nodes[n].host = sim.fresh_host(n);
        }
        sim.plant_forgeries();
        sim.plant_rule_breakers(compromised);
        Ok(sim)
    }

    fn at(&mut self, time: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((time, self.seq), ev);
    }

    fn class(&self, kind: LinkKind) -> LinkClass {
        match kind {
            LinkKind::Village => self.scenario.links.village.clone(),
            LinkKind::Township => self.scenario.links.township.clone(),
        }
    }

    /// Runs both phases; returns when the heal phase is quiet or its bound has passed.
    pub fn run(&mut self) {
        let days = self.config.days;
        self.heal_at = START_MS + (days * DAY_MS) as u64;
        // Every host's first maintenance is due at once.
        for n in 0..self.nodes.len() {
            self.drain(n);
        }
        // Links start down and come up after a first random wait.
        for l in 0..self.links.len() {
            let class = self.class(self.links[l].kind);
            let t = START_MS
                + exp(
                    &mut self.rng,
                    class.down_mean_hours * HOUR_MS * self.down_scale,
                );
            self.at(t, Ev::Toggle(l));
        }
        let first = self.next_record_gap();
        self.at(START_MS + first, Ev::NewRecord);
        if self.crash_rate_per_ms > 0.0 {
            for n in 0..self.nodes.len() {
                let t = START_MS + exp(&mut self.rng, 1.0 / self.crash_rate_per_ms);
                self.at(t, Ev::Crash(n));
            }
        }
        for p in self.scenario.faults.partitions.clone() {
            if self.scenario.faults.swarm && chance(&mut self.rng, 0.5) {
                continue;
            }
            let from = START_MS + (p.from_day * DAY_MS) as u64;
            self.at(
                from,
                Ev::Partition {
                    township: p.township,
                    on: true,
                },
            );
            self.at(
                from + (p.days * DAY_MS) as u64,
                Ev::Partition {
                    township: p.township,
                    on: false,
                },
            );
        }
        if self.theft {
            self.at(START_MS + (days * DAY_MS / 3.0) as u64, Ev::Theft);
        }
        // Half-dead links draw from a stream of their own, so that the workload's draws
        // do not depend on them.
        let mut dead_rng = ChaCha8Rng::seed_from_u64(self.config.seed ^ 0x6861_6c66);
        let village_links: Vec<usize> = (0..self.links.len())
            .filter(|&l| {
                self.links[l].kind == LinkKind::Village
                    && matches!(self.nodes[self.links[l].a].kind, NodeKind::Village(_))
            })
            .collect();
        for _ in 0..self.scenario.faults.half_dead {
            let Some(&link) = village_links.get(pick(&mut dead_rng, village_links.len())) else {
                break;
            };
            let at = START_MS + (dead_rng.next_u64() % (days * DAY_MS).max(1.0) as u64);
            self.at(at, Ev::HalfDead { link, on: true });
            self.at(at + HOUR_MS as u64, Ev::HalfDead { link, on: false });
        }
        self.at(self.heal_at, Ev::Heal);
        let bound = self.heal_at + (self.scenario.heal_bound_hours * HOUR_MS) as u64;
        while let Some(((time, _), ev)) = self.queue.pop_first() {
            if time > bound || self.events >= EVENTS_MAX {
                break;
            }
            self.now = time;
            self.events += 1;
            self.step(ev);
        }
    }

    fn next_record_gap(&mut self) -> u64 {
        let per_ms = self.scenario.workload.records_per_year / (365.0 * DAY_MS);
        exp(&mut self.rng, 1.0 / per_ms.max(1e-12))
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::Toggle(l) => {
                if self.healing {
                    return;
                }
                let link = &mut self.links[l];
                link.up = !link.up;
                let up = link.up;
                let class = self.class(self.links[l].kind);
                let mean = if up {
                    class.up_mean_hours
                } else {
                    class.down_mean_hours * self.down_scale
                };
                let next = self.now + exp(&mut self.rng, mean * HOUR_MS).max(1);
                self.at(next, Ev::Toggle(l));
                self.refresh(l);
            }
            Ev::Deliver {
                link,
                epoch,
                to_b,
                bytes,
            } => self.deliver(link, epoch, to_b, &bytes),
            Ev::NewRecord => {
                if self.healing {
                    return;
                }
                self.new_record();
                let gap = self.next_record_gap();
                self.at(self.now + gap.max(1), Ev::NewRecord);
            }
            Ev::Work {
                record,
                origin,
                done,
            } => {
                if !self.healing {
                    self.work(record, origin, done);
                }
            }
            Ev::Timer { node, at } => self.timer(node, at),
            Ev::Crash(n) => {
                if self.healing {
                    return;
                }
                if self.nodes[n].running {
                    self.nodes[n].running = false;
                    self.refresh_node(n);
                    // What the host held in memory is lost; the store is not.
                    self.nodes[n].host = self.fresh_host(n);
                    self.nodes[n].timer_at = None;
                    let t = exp(
                        &mut self.rng,
                        self.scenario.faults.restart_mean_hours * HOUR_MS,
                    )
                    .max(1);
                    self.at(self.now + t, Ev::Restart(n));
                }
            }
            Ev::Restart(n) => {
                self.nodes[n].running = true;
                self.drain(n);
                self.refresh_node(n);
                if !self.healing && self.crash_rate_per_ms > 0.0 {
                    let t = exp(&mut self.rng, 1.0 / self.crash_rate_per_ms).max(1);
                    self.at(self.now + t, Ev::Crash(n));
                }
            }
            Ev::Partition { township, on } => {
                if self.healing {
                    return;
                }
                if on {
                    self.partitioned.insert(township);
                } else {
                    self.partitioned.remove(&township);
                }
                if let Some(t) = self
                    .nodes
                    .iter()
                    .position(|n| n.kind == NodeKind::Township(township))
                {
                    self.refresh_node(t);
                }
            }
            Ev::Theft => self.theft(),
            Ev::HalfDead { link, on } => self.half_dead(link, on),
            Ev::ThiefWrites => {
                if !self.healing {
                    self.thief_writes();
                    self.at(self.now + 3_600_000, Ev::ThiefWrites);
                }
            }
            Ev::Heal => {
                self.healing = true;
                self.partitioned.clear();
                for l in &mut self.links {
                    l.half_dead = false;
                }
                for n in &mut self.nodes {
                    n.running = true;
                }
                for l in 0..self.links.len() {
                    self.links[l].up = true;
                    self.refresh(l);
                }
            }
        }
    }

    fn usable(&self, l: usize) -> bool {
        let link = &self.links[l];
        let cut = |n: usize| matches!(self.nodes[n].kind, NodeKind::Township(t) if self.partitioned.contains(&t));
        link.up
            && self.nodes[link.a].running
            && self.nodes[link.b].running
            && !cut(link.a)
            && !cut(link.b)
    }

    /// A node's host as it starts: a restart loses what the last one held in memory.
    fn fresh_host(&mut self, n: usize) -> Host {
        self.nodes[n].incarnation += 1;
        let seed = self.config.seed
            ^ 0x7265_706f_7274
            ^ ((n as u64) << 24)
            ^ (self.nodes[n].incarnation << 48);
        Host::new(
            host_config(),
            self.root.public(),
            Box::new(ChaCha8Rng::seed_from_u64(seed)),
        )
    }

    fn refresh_node(&mut self, n: usize) {
        for l in self.nodes[n].links.clone() {
            self.refresh(l);
        }
    }

    /// Opens or closes the link's connection to match whether it is usable now.
    fn refresh(&mut self, l: usize) {
        let usable = self.usable(l);
        let open = self.links[l].sessions.is_some();
        if usable && !open {
            self.connect(l);
        } else if !usable && open {
            self.close(l);
        }
    }
}
