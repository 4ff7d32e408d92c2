//! After a run: the checks that must hold, and the figures that describe the run.
//!
//! Checks:
//! - every replica of every record at a node that may read it has identical heads and an
//!   identical view (convergence);
//! - every change written reached every node that may read its record (delivery ratio 1);
//! - no node holds a record it may not read;
//! - no forged change was accepted anywhere;
//! - the heal phase went quiet within the scenario's bound.

#![allow(clippy::indexing_slicing)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use automerge::ChangeHash;
use guihe_protocol::store::Store;
use serde::Serialize;

use crate::run::{LinkKind, NodeKind, START_MS, Sim};

/// Percentiles of a distribution, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    fn of(mut v: Vec<u64>) -> Percentiles {
        v.sort_unstable();
        let at = |q: f64| {
            v.get(((v.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        Percentiles {
            count: v.len(),
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: v.last().copied().unwrap_or(0),
        }
    }
}

/// Bytes and messages on one class of link.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Traffic {
    /// Bytes on the wire.
    pub bytes: u64,
    /// Messages.
    pub messages: u64,
    /// Connections opened on links of the class.
    pub sessions: u64,
    /// The bytes the changes had to cross on this class: for each change, its size times
    /// the links of this class on the paths (along the tree) from its writer to every
    /// office that may read its record. No protocol sends less.
    pub needed_bytes: u64,
    /// Wire bytes per needed byte (the floor is 1.0).
    pub wire_per_needed_byte: f64,
    /// Issue 14's budget for the class: 1.3 times the needed bytes, plus 160 bytes per
    /// session.
    pub budget_bytes: u64,
    /// Wire bytes by kind of message (`wire::Message::kind_of`).
    pub bytes_by_message: BTreeMap<String, u64>,
}

/// How the county's revocation of a stolen office went through the hosts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Revocation {
    /// Honest offices (the stolen one aside) that learnt of it, and how many there are.
    pub learnt_by: usize,
    /// Honest offices.
    pub offices: usize,
    /// Hours from the revocation until the last of them learnt of it.
    pub reached_all_hours: Option<f64>,
    /// Sessions the hosts closed because their peer was revoked.
    pub sessions_closed: u64,
    /// Verified sessions with the stolen office found open at an office that knew of the
    /// revocation (after each input its host handled): must be 0.
    pub sessions_left_open: u64,
}

/// One half-dead village link: it lost what its township sent, for an hour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HalfDeadLink {
    /// The village.
    pub village: String,
    /// Whether its session was waiting for its peer when the link turned half-dead.
    pub expecting: bool,
    /// How long until the village's host dropped the session as stalled.
    pub stalled_after_ms: Option<u64>,
    /// How long until the connection dropped otherwise first (the link went down, a node
    /// crashed), if it did.
    pub lost_after_ms: Option<u64>,
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Scenario.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Days of the faulty phase.
    pub days: f64,
    /// Nodes (honest and forgers).
    pub nodes: usize,
    /// Records written.
    pub records: usize,
    /// Changes written.
    pub changes: usize,
    /// Bytes of those changes.
    pub change_bytes: u64,
    /// Deliveries that reached their reader / deliveries due.
    pub delivery_ratio: f64,
    /// Time from a change's writing to its arrival at each reader.
    pub latency_ms: Percentiles,
    /// Latency divided by the foremost-journey bound (×100, so 100 means as fast as any
    /// protocol could have been), for every arrival of a sample of the changes drawn
    /// uniformly over the whole run with the seed.
    pub stretch_percent: Percentiles,
    /// The same, by the class of the last link a delivery crossed.
    pub stretch_by_class: BTreeMap<String, Percentiles>,
    /// The same, by the kind of record (case, petition, a division's own record).
    pub stretch_by_kind: BTreeMap<String, Percentiles>,
    /// Traffic per link class.
    pub traffic: BTreeMap<String, Traffic>,
    /// Messages per change written.
    pub messages_per_change: f64,
    /// Wire bytes per byte of change written.
    pub wire_per_change_byte: f64,
    /// Sessions ended by an error (forgers, revoked or broken peers).
    pub session_errors: u64,
    /// Sessions dropped because the peer stopped answering (the stall timeout).
    pub stalls: u64,
    /// The stolen office's revocation, when the run has one.
    pub revocation: Option<Revocation>,
    /// The half-dead links.
    pub half_dead: Vec<HalfDeadLink>,
    /// Changes forgers wrote (and every node must have refused).
    pub forged: usize,
    /// Rule-breaking changes signed by compromised villages.
    pub rule_breaking: usize,
    /// Changes kept aside (quarantined), summed over the nodes.
    pub quarantined: usize,
    /// Refusals in the quarantine reports the county holds (its own and the townships').
    pub reported_at_county: usize,
    /// Time from heal to the last delivery.
    pub heal_ms: u64,
    /// Events processed.
    pub events: u64,
    /// Convergence over time: (hours since start, share of the deliveries due by then that
    /// had arrived), for the plot.
    pub convergence: Vec<(f64, f64)>,
    /// Distribution of delivery latency in the faulty phase: (hours, fraction ≤).
    pub latency_cdf: Vec<(f64, f64)>,
    /// The same for the foremost-journey bound over the sampled changes.
    pub bound_cdf: Vec<(f64, f64)>,
    /// Check failures; empty when the run passed.
    pub failures: Vec<String>,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Checks a finished run and computes its figures.
pub fn check(sim: &Sim) -> Report {
    let mut failures = Vec::new();
    // A stolen village's records diverge by design: the thief's entries, and the office's
    // that had not reached the county when it revoked the key, stay where they were taken
    // and are refused at the county. They are checked for that below, not for convergence.
    let stolen_records: BTreeSet<guihe_protocol::id::RecordId> = match &sim.stolen {
        Some((v, ..)) => sim
            .records
            .iter()
            .filter(|(_, origin)| *origin == v)
            .map(|(r, _)| *r)
            .collect(),
        None => BTreeSet::new(),
    };
    let mut readers_of = BTreeMap::new();
    for &record in sim.records.keys() {
        if stolen_records.contains(&record) {
            continue;
        }
        let mut readers = sim.readers(&sim.villages_of_record(record));
        // The stolen PC is revoked: it reads nothing more.
        if let Some((v, ..)) = &sim.stolen {
            readers.retain(|n| n != v);
        }
        readers_of.insert(record, readers);
    }

    // Convergence and authorisation.
    for (&record, readers) in &readers_of {
        let mut reference: Option<(Vec<ChangeHash>, Option<guihe_protocol::view::View>)> = None;
        for &n in readers {
            let doc = sim.nodes[n].replica.store.doc(record).ok().flatten();
            let Some(doc) = doc else {
                failures.push(format!("{} lacks {record}", sim.nodes[n].name));
                continue;
            };
            let heads = doc.get_heads();
            let view = guihe_protocol::record::Record::from_doc(doc)
                .ok()
                .and_then(|r| r.view(&sim.rules).ok());
            match &reference {
                None => reference = Some((heads, view)),
                Some((h, v)) => {
                    if *h != heads {
                        failures.push(format!(
                            "{} has other heads for {record}",
                            sim.nodes[n].name
                        ));
                    } else if *v != view {
                        failures.push(format!(
                            "{} has another view of {record}",
                            sim.nodes[n].name
                        ));
                    }
                }
            }
        }
        let stolen = sim.stolen.as_ref().map(|(v, ..)| *v);
        for (n, node) in sim.nodes.iter().enumerate() {
            if node.kind != NodeKind::Forger
                && Some(n) != stolen
                && !readers.contains(&n)
                && node.replica.store.doc(record).ok().flatten().is_some()
            {
                failures.push(format!(
                    "{} holds {record}, which it may not read",
                    node.name
                ));
            }
        }
    }

    // Delivery and latency.
    let mut due = 0u64;
    let mut delivered = 0u64;
    let mut latencies = Vec::new();
    let mut stretches = Vec::new();
    let mut sampled_actual = Vec::new();
    let mut sampled_bound = Vec::new();
    let mut arrivals = Vec::new();
    let mut due_times = Vec::new();
    let tree = Tree::of(sim);
    let sampled = stretch_sample(sim.written.len(), sim.config.seed);
    let mut needed: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut by_class: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut by_kind: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (i, (hash, w)) in sim.written.iter().enumerate() {
        let Some(readers) = readers_of.get(&w.record) else {
            continue;
        };
        for (class, links) in tree.needed(w.origin, readers) {
            *needed.entry(class).or_default() += links * w.bytes as u64;
        }
        let bound = sampled
            .contains(&i)
            .then(|| foremost(sim, w.origin, w.time, readers));
        for &n in readers {
            due += 1;
            let holds = sim.nodes[n].replica.store.has_change(hash).unwrap_or(false);
            if holds {
                delivered += 1;
            } else {
                continue;
            }
            if n == w.origin {
                continue;
            }
            due_times.push(w.time);
            if let Some(&t) = sim.arrived.get(&(*hash, n)) {
                latencies.push(t.saturating_sub(w.time));
                arrivals.push(t);
                if let Some(bound) = &bound
                    && let Some(&b) = bound.get(&n)
                {
                    let ideal = b.saturating_sub(w.time).max(1);
                    let stretch = t.saturating_sub(w.time) * 100 / ideal;
                    stretches.push(stretch);
                    by_class
                        .entry(tree.last_class(w.origin, n).to_string())
                        .or_default()
                        .push(stretch);
                    by_kind
                        .entry(kind_name(w.record).to_string())
                        .or_default()
                        .push(stretch);
                    sampled_actual.push(t.saturating_sub(w.time));
                    sampled_bound.push(ideal);
                }
            }
        }
    }
    let delivery_ratio = if due == 0 {
        1.0
    } else {
        delivered as f64 / due as f64
    };
    if delivered != due {
        failures.push(format!(
            "delivery ratio {delivery_ratio:.6}: {} of {due} deliveries missing",
            due - delivered
        ));
    }

    // Forgeries.
    for (n, node) in sim.nodes.iter().enumerate() {
        if node.kind == NodeKind::Forger {
            continue;
        }
        for hash in &sim.forged {
            if node.replica.store.has_change(hash).unwrap_or(false) {
                failures.push(format!(
                    "{} accepted forged change {hash} (node {n})",
                    node.name
                ));
            }
        }
    }

    // Rule-breaking changes of compromised villages: applied nowhere but at their signer,
    // and refused (kept aside) where they were offered.
    for (n, node) in sim.nodes.iter().enumerate() {
        for (hash, &signer) in &sim.bad {
            if n != signer && node.replica.store.has_change(hash).unwrap_or(false) {
                failures.push(format!(
                    "{} accepted rule-breaking change {hash} (node {n})",
                    node.name
                ));
            }
        }
    }
    for (hash, &signer) in &sim.bad {
        // The signer's township met it after healing at the latest: it kept them aside.
        let township = sim.nodes[signer]
            .links
            .first()
            .map(|&l| sim.links[l].b)
            .filter(|&t| matches!(sim.nodes[t].kind, NodeKind::Township(_)));
        if let Some(t) = township
            && !sim.nodes[t]
                .replica
                .store
                .is_quarantined(hash)
                .unwrap_or(false)
        {
            failures.push(format!(
                "{} did not keep rule-breaking change {hash} aside",
                sim.nodes[t].name
            ));
        }
    }

    // Quarantine reports: every change a township kept aside is in a report of that
    // township's that the county holds; no village holds any report.
    let county_reported = reported(&sim.nodes[0].replica.store);
    for node in &sim.nodes {
        let division = node.replica.identity.cert.body.division;
        match node.kind {
            NodeKind::Township(_) => {
                for q in node.replica.store.quarantined().unwrap_or_default() {
                    if !county_reported.contains(&(division, q.change_hash().to_string())) {
                        failures.push(format!(
                            "the county has no report from {} of refused change {}",
                            node.name,
                            q.change_hash()
                        ));
                    }
                }
            }
            NodeKind::Village(_) => {
                if !reported(&node.replica.store).is_empty() {
                    failures.push(format!("{} holds a quarantine report", node.name));
                }
            }
            NodeKind::County | NodeKind::Forger => {}
        }
    }

    // A stolen PC: the county holds no change of the revoked key beyond its frontier,
    // whatever time it claims.
    if let Some((v, _, frontier)) = &sim.stolen {
        let key = sim.nodes[*v].replica.identity.key.public();
        let county = &sim.nodes[0].replica.store;
        let division = sim.nodes[0].replica.identity.cert.body.division;
        for (_, hash) in county.keys(division, &|_| true).unwrap_or_default() {
            let Ok(Some(c)) = county.change(&hash) else {
                continue;
            };
            if c.signer != key {
                continue;
            }
            let Ok(change) = automerge::Change::from_bytes(c.signed.bytes.clone()) else {
                continue;
            };
            let incarnation =
                guihe_protocol::record::actor_parts(change.actor_id()).map_or(0, |(_, i)| i);
            if frontier.allows(&key, c.signed.record, incarnation, change.seq()) != Some(true) {
                failures.push(format!(
                    "the county holds {hash} of the stolen PC, beyond its frontier"
                ));
            }
        }
    }

    // The revocation reaches every office through the hosts, and each closes the stolen
    // office's sessions the moment it learns of it.
    let revocation = sim.stolen.as_ref().map(|(v, at, _)| {
        let honest: Vec<usize> = (0..sim.nodes.len())
            .filter(|&n| sim.nodes[n].kind != NodeKind::Forger && n != *v)
            .collect();
        let learnt: Vec<u64> = honest
            .iter()
            .filter_map(|n| sim.revoked_at.get(n).copied())
            .collect();
        let r = Revocation {
            learnt_by: learnt.len(),
            offices: honest.len(),
            reached_all_hours: (learnt.len() == honest.len()).then(|| {
                learnt.iter().max().map_or(0, |m| m.saturating_sub(*at)) as f64 / 3_600_000.0
            }),
            sessions_closed: sim.revoked_closes,
            sessions_left_open: sim.revoked_left_open,
        };
        if r.sessions_left_open > 0 {
            failures.push(format!(
                "{} verified sessions with the revoked office stayed open where its revocation was known",
                r.sessions_left_open
            ));
        }
        if r.learnt_by < r.offices {
            failures.push(format!(
                "the revocation reached {} of {} offices",
                r.learnt_by, r.offices
            ));
        }
        r
    });
    // A half-dead link: the village's host drops the session once the township has been
    // silent for the stall timeout (plus the time its last frame took to leave).
    let stall_ms = crate::run::host_config().stall_ms;
    let half_dead: Vec<HalfDeadLink> = sim
        .half_dead
        .iter()
        .map(|e| HalfDeadLink {
            village: sim.nodes[sim.links[e.link].a].name.clone(),
            expecting: e.expecting,
            stalled_after_ms: e.stalled_at.map(|t| t - e.start),
            lost_after_ms: e.lost_at.map(|t| t - e.start),
        })
        .collect();
    for h in &half_dead {
        if !h.expecting {
            continue;
        }
        match (h.stalled_after_ms, h.lost_after_ms) {
            (Some(ms), _) if ms >= stall_ms && ms <= stall_ms + 600_000 => {}
            (None, Some(ms)) if ms <= stall_ms + 600_000 => {}
            (other, _) => failures.push(format!(
                "{}: a half-dead link's session was dropped after {other:?} ms, not once the stall timeout ({stall_ms} ms) passed",
                h.village
            )),
        }
    }

    let heal_ms = sim.last_delivery.saturating_sub(sim.heal_at);
    let bound_ms = (sim.scenario.heal_bound_hours * 3_600_000.0) as u64;
    if sim.last_delivery > sim.heal_at + bound_ms {
        failures.push(format!(
            "not quiet within {} hours of healing",
            sim.scenario.heal_bound_hours
        ));
    }

    let mut traffic: BTreeMap<String, Traffic> = BTreeMap::new();
    for l in &sim.links {
        let t = traffic.entry(class_name(l.kind).to_string()).or_default();
        t.bytes += l.bytes;
        t.messages += l.messages;
        t.sessions += l.sessions_opened;
        for (kind, bytes) in &l.bytes_by_kind {
            *t.bytes_by_message.entry(kind.to_string()).or_default() += bytes;
        }
    }
    for (class, t) in &mut traffic {
        t.needed_bytes = needed.get(class.as_str()).copied().unwrap_or(0);
        t.wire_per_needed_byte = t.bytes as f64 / t.needed_bytes.max(1) as f64;
        t.budget_bytes = t.needed_bytes * 13 / 10 + 160 * t.sessions;
    }
    let wire: u64 = traffic.values().map(|t| t.bytes).sum();
    let messages: u64 = traffic.values().map(|t| t.messages).sum();
    let change_bytes: u64 = sim.written.values().map(|w| w.bytes as u64).sum();
    let changes = sim.written.len();

    // Convergence over time: of the deliveries due by then (changes written to a remote
    // reader), the share that had arrived.
    arrivals.sort_unstable();
    due_times.sort_unstable();
    let end = sim.last_delivery.max(sim.heal_at);
    let steps = 120u64;
    let convergence = (0..=steps)
        .map(|i| {
            let t = START_MS + (end - START_MS) * i / steps;
            let due = due_times.partition_point(|&d| d <= t);
            let done = arrivals.partition_point(|&a| a <= t);
            let share = if due == 0 {
                1.0
            } else {
                (done as f64 / due as f64).min(1.0)
            };
            ((t - START_MS) as f64 / 3_600_000.0, share)
        })
        .collect();

    Report {
        scenario: sim.scenario.name.clone(),
        seed: sim.config.seed,
        days: sim.config.days,
        nodes: sim.nodes.len(),
        records: sim.records.len(),
        changes,
        change_bytes,
        delivery_ratio,
        latency_ms: Percentiles::of(latencies),
        stretch_percent: Percentiles::of(stretches),
        stretch_by_class: by_class
            .into_iter()
            .map(|(k, v)| (k, Percentiles::of(v)))
            .collect(),
        stretch_by_kind: by_kind
            .into_iter()
            .map(|(k, v)| (k, Percentiles::of(v)))
            .collect(),
        traffic,
        messages_per_change: messages as f64 / changes.max(1) as f64,
        wire_per_change_byte: wire as f64 / change_bytes.max(1) as f64,
        session_errors: sim.session_errors,
        stalls: sim.stalls,
        revocation,
        half_dead,
        forged: sim.forged.len(),
        rule_breaking: sim.bad.len(),
        quarantined: sim
            .nodes
            .iter()
            .map(|n| n.replica.store.quarantined().map_or(0, |q| q.len()))
            .sum(),
        reported_at_county: county_reported.len(),
        heal_ms,
        events: sim.events,
        convergence,
        latency_cdf: cdf(sampled_actual),
        bound_cdf: cdf(sampled_bound),
        failures,
    }
}

/// How many changes the stretch is measured on.
const STRETCH_SAMPLE: usize = 400;

/// Which of `changes` changes (in the order they are held) the stretch is measured on:
/// [`STRETCH_SAMPLE`] of them, drawn uniformly over the whole run with the seed.
fn stretch_sample(changes: usize, seed: u64) -> BTreeSet<usize> {
    use rand::seq::index::sample;
    use rand_core::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5354_5245_5443_4821);
    sample(&mut rng, changes, STRETCH_SAMPLE.min(changes))
        .into_iter()
        .collect()
}

fn class_name(kind: LinkKind) -> &'static str {
    match kind {
        LinkKind::Village => "village_township",
        LinkKind::Township => "township_county",
    }
}

fn kind_name(record: guihe_protocol::id::RecordId) -> &'static str {
    use guihe_protocol::id::RecordId;
    match record {
        RecordId::Case(_) => "case",
        RecordId::Petition(_) => "petition",
        RecordId::Owned(_) => "division",
    }
}

/// The division tree the links make: each node's link up to its township or county.
struct Tree {
    /// Each node's link up and the node above, `None` for the county.
    up: Vec<Option<(usize, usize)>>,
    kinds: Vec<LinkKind>,
}

impl Tree {
    fn of(sim: &Sim) -> Tree {
        let mut up = vec![None; sim.nodes.len()];
        for (l, link) in sim.links.iter().enumerate() {
            // The dialler is the lower tier.
            up[link.a] = Some((l, link.b));
        }
        Tree {
            up,
            kinds: sim.links.iter().map(|l| l.kind).collect(),
        }
    }

    /// The node and the nodes above it, nearest first.
    fn chain(&self, mut n: usize) -> Vec<usize> {
        let mut out = vec![n];
        while let Some((_, above)) = self.up[n] {
            if out.contains(&above) {
                break;
            }
            out.push(above);
            n = above;
        }
        out
    }

    /// The links of each class on the least subtree that joins `origin` to every reader.
    fn needed(&self, origin: usize, readers: &[usize]) -> BTreeMap<&'static str, u64> {
        let origin_chain = self.chain(origin);
        let mut links = BTreeSet::new();
        for &r in readers {
            // Up from the reader to the first node it shares with the origin's chain,
            // then up from the origin to that node.
            let mut meet = r;
            for n in self.chain(r) {
                meet = n;
                if origin_chain.contains(&n) {
                    break;
                }
                if let Some((l, _)) = self.up[n] {
                    links.insert(l);
                }
            }
            for &n in &origin_chain {
                if n == meet {
                    break;
                }
                if let Some((l, _)) = self.up[n] {
                    links.insert(l);
                }
            }
        }
        let mut out = BTreeMap::new();
        for l in links {
            *out.entry(class_name(self.kinds[l])).or_default() += 1;
        }
        out
    }

    /// The class of the last link on the tree path from `origin` to `reader`.
    fn last_class(&self, origin: usize, reader: usize) -> &'static str {
        let origin_chain = self.chain(origin);
        match origin_chain.iter().position(|&n| n == reader) {
            // The reader is above the origin: the link up into it.
            Some(at) if at > 0 => {
                self.up[origin_chain[at - 1]].map_or("none", |(l, _)| class_name(self.kinds[l]))
            }
            Some(_) => "none",
            // Otherwise the last link comes down into the reader.
            None => self.up[reader].map_or("none", |(l, _)| class_name(self.kinds[l])),
        }
    }
}

/// Up to 100 points of a distribution's CDF, in hours.
fn cdf(mut v: Vec<u64>) -> Vec<(f64, f64)> {
    v.sort_unstable();
    let n = v.len();
    if n == 0 {
        return Vec::new();
    }
    let points = n.min(100);
    (1..=points)
        .map(|i| {
            let idx = (n * i / points).saturating_sub(1);
            (v[idx] as f64 / 3_600_000.0, (idx + 1) as f64 / n as f64)
        })
        .collect()
}

/// The foremost journey: the earliest time any protocol could have brought a change
/// written at `origin` at `start` to each reader, moving only between nodes that may read
/// it, over links while they were up (latency counted, bandwidth not).
fn foremost(sim: &Sim, origin: usize, start: u64, readers: &[usize]) -> BTreeMap<usize, u64> {
    let allowed: BTreeSet<usize> = readers.iter().copied().collect();
    let mut best: BTreeMap<usize, u64> = BTreeMap::new();
    let mut heap = BinaryHeap::new();
    best.insert(origin, start);
    heap.push(Reverse((start, origin)));
    while let Some(Reverse((t, u))) = heap.pop() {
        if best.get(&u).is_some_and(|&b| b < t) {
            continue;
        }
        for &l in &sim.nodes[u].links {
            let link = &sim.links[l];
            let v = if link.a == u { link.b } else { link.a };
            if !allowed.contains(&v) {
                continue;
            }
            let latency = match link.kind {
                LinkKind::Village => sim.scenario.links.village.latency_ms,
                LinkKind::Township => sim.scenario.links.township.latency_ms,
            };
            let open_now = link.up_since.map(|s| (s, u64::MAX));
            let arrival = link
                .intervals
                .iter()
                .copied()
                .chain(open_now)
                .filter_map(|(s, e)| {
                    let go = t.max(s);
                    (go + latency <= e).then_some(go + latency)
                })
                .min();
            if let Some(a) = arrival
                && best.get(&v).is_none_or(|&b| a < b)
            {
                best.insert(v, a);
                heap.push(Reverse((a, v)));
            }
        }
    }
    best
}

/// The refusals in the quarantine reports a store holds: (reporting office, change hash).
fn reported(
    store: &guihe_protocol::store::MemStore,
) -> BTreeSet<(guihe_protocol::division::Division, String)> {
    use guihe_protocol::owned::{Body, OwnedKind, all_of};
    let mut out = BTreeSet::new();
    for report in all_of(store, OwnedKind::QuarantineReport).unwrap_or_default() {
        for e in report.entries().0 {
            let Body::Refusal { change, .. } = e.body;
            out.insert((report.owner(), change));
        }
    }
    out
}
