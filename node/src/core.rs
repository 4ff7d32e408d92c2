//! The core: the node's store and its `protocol::host::Host`, on a thread of its own.
//!
//! Every rule about sessions (which connections to take, relaying, revocation sweeps,
//! stall timeouts, quarantine reports, held changes) is the host's. The core drives it:
//! it feeds the host what the streams read, the API's writes and the clock, and carries
//! out what the host asks (frames to the stream writers, connections to drop). It also
//! keeps what an office is shown: the peers it met, the counts, `status.json`, metrics.
//!
//! The core runs on its own thread, not on the async runtime: every store write (an
//! fsync on sled) happens here, and the runtime's threads only move bytes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use guihe_protocol::host::{self, Close, ConnId, Direction, Event, Host};
use guihe_protocol::id::NodeId;
use guihe_protocol::store::Store;
use guihe_protocol::sync::Stats;
use libp2p::PeerId;
use tokio::sync::mpsc;

use crate::api::{self, PeerReport, StatusReport};
use crate::app::Request;
use crate::local::{Local, now_ms};
use crate::metrics::{self, Metrics};
use crate::net::SKEW_WARN_MS;
use crate::stream::{Queue, StreamEnd};

/// Peers remembered (those that showed a valid certificate), with their last sync.
const KNOWN_MAX: usize = 256;
/// Free space under which a failed store is taken to have failed for want of space.
const DISK_FULL_BELOW: u64 = 1024 * 1024;
/// A peer not heard from for this long is forgotten.
const KNOWN_FOR_MS: u64 = 90 * 86_400_000;
/// How often `status.json` and the gauges are refreshed.
const STATUS_EVERY_MS: u64 = 2_000;

/// What comes to the core.
pub(crate) enum CoreMsg {
    /// A sync stream was opened (by this node: `initiator`) with `peer`.
    Stream {
        peer: PeerId,
        stream: libp2p::Stream,
        initiator: bool,
        version: u16,
    },
    /// A frame was read from a stream.
    Frame { id: u64, bytes: Vec<u8> },
    /// A frame finished leaving on a stream.
    Sent { id: u64 },
    /// A stream ended.
    Closed { id: u64 },
    /// A stream's writer took frames from a full queue: the core may move its backlog.
    Drained { id: u64 },
    /// An API request.
    Api(Request),
    /// A second passed.
    Tick,
    /// The daemon stops.
    Stop,
}

/// What the core asks of the swarm.
pub(crate) enum ToSwarm {
    /// Drop every connection to the peer (its redial starts afresh).
    Disconnect(PeerId),
    /// The store failed so that the daemon must stop (sled refuses every operation after
    /// a failed write); why.
    Fatal(String),
}

/// Why the store failed, once it has: the HTTP side answers every call and the status
/// with it while the daemon stops, so that a worker's entry is refused with the reason and
/// not cut off.
#[derive(Debug, Clone, Default)]
pub(crate) struct Failed(Arc<std::sync::OnceLock<Failure>>);

#[derive(Debug)]
struct Failure {
    /// The disk had no space left when the store failed.
    disk_full: bool,
    /// What failed, without the words for the worker.
    why: String,
}

impl Failed {
    /// Whether the store has failed.
    pub(crate) fn is_set(&self) -> bool {
        self.0.get().is_some()
    }

    /// The error a call gets once the store has failed (`writes`: the call would have
    /// written); `None` while it has not.
    pub(crate) fn error(&self, writes: bool) -> Option<api::ApiError> {
        let Failure { disk_full, why } = self.0.get()?;
        Some(match (disk_full, writes) {
            (true, true) => api::ApiError::disk_full(why),
            (true, false) => api::ApiError::DiskFull(format!(
                "磁盘已满，本节点正在停止，腾出空间后会自动重启 the disk is full and the node is stopping; free disk space on this PC and it starts again ({why})"
            )),
            (false, true) => api::ApiError::Internal(format!(
                "本节点的存储出错，正在停止，本条记录未保存 the node's store failed and it is stopping: this entry was NOT saved ({why})"
            )),
            (false, false) => api::ApiError::Internal(format!(
                "本节点的存储出错，正在停止 the node's store failed and it is stopping ({why})"
            )),
        })
    }
}

/// The transport side of one connection.
struct Link {
    peer: PeerId,
    stream: StreamEnd,
    /// The session's counters as last added to the metrics.
    counted: Stats,
}

/// The node key of a libp2p peer: its Ed25519 public key, which an Ed25519 peer id holds
/// whole.
pub(crate) fn node_of(peer: &PeerId) -> Option<NodeId> {
    let key = libp2p::identity::PublicKey::try_decode_protobuf(peer.as_ref().digest()).ok()?;
    let key: [u8; 32] = key.try_into_ed25519().ok()?.to_bytes();
    Some(NodeId::from_bytes(key))
}

/// What the status report counts in the store.
#[derive(Debug, Clone, Default)]
struct Counts {
    generation: u64,
    records: usize,
    changes: usize,
    pending: usize,
    freshness: Vec<api::Freshness>,
    quarantined: Vec<api::QuarantineReport>,
    held: usize,
    reported: Vec<api::ReportedRefusal>,
    refused_upstream: Vec<api::RefusedUpstream>,
}

/// How the core is set up, from `[limits]`.
pub(crate) struct Setup {
    pub(crate) host: host::Config,
    /// Bytes a peer that does not read may have waiting.
    pub(crate) backlog_max: usize,
    /// Free disk space kept in reserve.
    pub(crate) disk_reserve: u64,
}

/// The core's state.
pub(crate) struct Core {
    local: Local,
    host: Host,
    links: BTreeMap<ConnId, Link>,
    /// Every peer met (kept across restarts in the store).
    known: BTreeMap<PeerId, PeerReport>,
    metrics: Metrics,
    core_tx: mpsc::Sender<CoreMsg>,
    swarm: mpsc::UnboundedSender<ToSwarm>,
    runtime: tokio::runtime::Handle,
    /// Bumped whenever something is stored, so counts are redone only then.
    generation: u64,
    /// The last counts: when, what counting cost, and the counts.
    counted: Option<(std::time::Instant, Duration, Counts)>,
    backlog_max: usize,
    disk_reserve: u64,
    /// The disk is below the reserve: no sessions, no entries.
    disk_low: bool,
    last_status_ms: u64,
    failed: Failed,
}

impl Core {
    pub(crate) fn new(
        local: Local,
        setup: Setup,
        metrics: Metrics,
        core_tx: mpsc::Sender<CoreMsg>,
        swarm: mpsc::UnboundedSender<ToSwarm>,
        runtime: tokio::runtime::Handle,
        failed: Failed,
    ) -> Core {
        // What the node knew of its peers before it stopped: last syncs survive a restart.
        let known = local
            .replica
            .store
            .peers()
            .iter()
            .filter_map(|bytes| serde_json::from_slice::<PeerReport>(bytes).ok())
            .filter_map(|mut p| {
                p.connected = false;
                p.reconciled = false;
                Some((p.peer.parse::<PeerId>().ok()?, p))
            })
            .collect();
        let host = Host::new(
            setup.host,
            local.root,
            Box::new(<rand::rngs::StdRng as rand::SeedableRng>::from_os_rng()),
        )
        .verifying_with(std::sync::Arc::new(crate::threads::Threads::of_machine()));
        Core {
            local,
            host,
            links: BTreeMap::new(),
            known,
            metrics,
            core_tx,
            swarm,
            runtime,
            generation: 1,
            counted: None,
            backlog_max: setup.backlog_max,
            disk_reserve: setup.disk_reserve,
            disk_low: false,
            last_status_ms: 0,
            failed,
        }
    }

    /// Runs until told to stop or the store fails; blocks the thread.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<CoreMsg>) {
        self.check_disk();
        self.tick();
        while let Some(msg) = rx.blocking_recv() {
            match msg {
                CoreMsg::Stream {
                    peer,
                    stream,
                    initiator,
                    version,
                } => self.open(peer, stream, initiator, version),
                CoreMsg::Frame { id, bytes } => self.frame(ConnId(id), &bytes),
                CoreMsg::Sent { id } => self.host.sent(ConnId(id), now_ms()),
                CoreMsg::Closed { id } => {
                    let conn = ConnId(id);
                    if self.links.contains_key(&conn) {
                        self.metrics.session("closed");
                        self.host.closed(conn);
                        self.forget(conn, false);
                    }
                }
                CoreMsg::Drained { id } => {
                    let conn = ConnId(id);
                    if let Some(link) = self.links.get_mut(&conn)
                        && link.stream.out.drain().is_err()
                    {
                        self.host.closed(conn);
                        self.forget(conn, true);
                    }
                }
                CoreMsg::Api(request) => self.api(request),
                CoreMsg::Tick => self.tick(),
                CoreMsg::Stop => break,
            }
            if self.failed.is_set() {
                return;
            }
        }
        self.refresh();
    }

    /// The record of a peer that showed a valid certificate. At most `KNOWN_MAX` are kept:
    /// a new one pushes out the one heard from longest ago that is not connected.
    fn known(&mut self, peer: PeerId) -> &mut PeerReport {
        if !self.known.contains_key(&peer) && self.known.len() >= KNOWN_MAX {
            let oldest = self
                .known
                .iter()
                .filter(|(_, p)| !p.connected)
                .min_by_key(|(_, p)| p.last_seen_ms)
                .map(|(id, _)| *id);
            if let Some(oldest) = oldest {
                self.known.remove(&oldest);
            }
        }
        self.known.entry(peer).or_insert_with(|| PeerReport {
            peer: peer.to_string(),
            division: None,
            connected: false,
            reconciled: false,
            last_reconciled_ms: None,
            last_seen_ms: None,
            changes_in: 0,
            clock_skew_ms: None,
        })
    }

    /// A sync stream opened: the host takes it or refuses it (dropping the stream closes
    /// it).
    fn open(&mut self, peer: PeerId, stream: libp2p::Stream, initiator: bool, version: u16) {
        if self.disk_low {
            // Nothing can be stored: sync again when there is room.
            self.metrics.session("disk_low");
            return;
        }
        let direction = if initiator {
            Direction::Dialled
        } else {
            Direction::Accepted
        };
        let now = now_ms();
        match self.host.open(
            direction,
            node_of(&peer),
            version,
            now,
            &mut self.local.replica,
        ) {
            Ok(conn) => {
                let stream = StreamEnd::spawn(conn.0, stream, self.core_tx.clone(), &self.runtime);
                self.links.insert(
                    conn,
                    Link {
                        peer,
                        stream,
                        counted: Stats::default(),
                    },
                );
                self.metrics.session("opened");
                self.drain();
            }
            Err(why) => {
                tracing::warn!(%peer, %why, "sync stream refused");
                self.metrics.session(why.label());
            }
        }
    }

    /// A frame from a stream goes to the host.
    fn frame(&mut self, conn: ConnId, bytes: &[u8]) {
        let Some(link) = self.links.get(&conn) else {
            return;
        };
        self.metrics.bytes_received.inc_by(bytes.len() as u64);
        // The reader may read the next frame once this one is handled.
        link.stream.handled();
        let peer = link.peer;
        let now = now_ms();
        let known = self.known.get_mut(&peer);
        if let Some(known) = known {
            known.last_seen_ms = Some(now);
        }
        self.host.frame(conn, bytes, now, &mut self.local.replica);
        self.drain();
    }

    /// Forgets a connection the host no longer holds; `disconnect` drops the peer's
    /// connection too (one session per connection: without it the connection is useless,
    /// and closing it lets the redial start a fresh one).
    fn forget(&mut self, conn: ConnId, disconnect: bool) {
        let Some(link) = self.links.remove(&conn) else {
            return;
        };
        let still = self.links.values().any(|l| l.peer == link.peer);
        if let Some(known) = self.known.get_mut(&link.peer) {
            known.connected = still;
            known.reconciled &= still;
        }
        if disconnect || !still {
            let _ = self.swarm.send(ToSwarm::Disconnect(link.peer));
        }
    }

    /// Carries out what the host asks after an input: events, closes, frames.
    fn drain(&mut self) {
        while let Some(event) = self.host.poll_event() {
            self.event(event);
        }
        while let Some((conn, why)) = self.host.poll_close() {
            if let Some(link) = self.links.get(&conn) {
                tracing::warn!(peer = %link.peer, %why, "session ended");
            }
            self.metrics.session(why.label());
            if !matches!(why, Close::Stalled(_) | Close::Revoked) {
                // The store may hold part of what the session took.
                if let Err(e) = self.local.replica.store.flush() {
                    self.fail(&e, e.is_disk_full());
                }
            }
            self.forget(conn, true);
        }
        while let Some((conn, bytes)) = self.host.poll_transmit() {
            let Some(link) = self.links.get_mut(&conn) else {
                continue;
            };
            match link.stream.out.send(bytes, self.backlog_max) {
                Ok(()) => {}
                Err(Queue::Closed) => {
                    self.host.closed(conn);
                    self.forget(conn, true);
                }
                Err(Queue::Overflow) => {
                    tracing::warn!(peer = %link.peer, "the peer does not read what it is sent; closing the session");
                    self.metrics.session("backlog");
                    self.host.closed(conn);
                    self.forget(conn, true);
                }
            }
        }
        self.count();
    }

    /// Adds what each session moved since last time to the metrics and its peer's record.
    fn count(&mut self) {
        let now = now_ms();
        let conns: Vec<ConnId> = self.links.keys().copied().collect();
        for conn in conns {
            let Some(stats) = self.host.stats(conn) else {
                continue;
            };
            let Some(link) = self.links.get_mut(&conn) else {
                continue;
            };
            let counted = std::mem::replace(&mut link.counted, stats);
            if counted == stats {
                continue;
            }
            let peer = link.peer;
            self.metrics
                .bytes_sent
                .inc_by(stats.bytes_out.saturating_sub(counted.bytes_out));
            self.metrics
                .changes_sent
                .inc_by(stats.changes_out.saturating_sub(counted.changes_out));
            self.metrics
                .changes_received
                .inc_by(stats.changes_in.saturating_sub(counted.changes_in));
            // Only a peer that showed a valid certificate is recorded.
            if self.host.session(conn).is_some_and(|s| s.peer().is_some()) {
                let known = self.known(peer);
                known.connected = true;
                known.last_seen_ms = Some(now);
                known.changes_in += stats.changes_in.saturating_sub(counted.changes_in);
            }
        }
    }

    fn peer_of(&self, conn: ConnId) -> Option<PeerId> {
        self.links.get(&conn).map(|l| l.peer)
    }

    fn event(&mut self, event: Event) {
        let now = now_ms();
        match event {
            Event::Peer { conn, cert } => {
                let Some(peer) = self.peer_of(conn) else {
                    return;
                };
                // The session checked the certificate is for the peer's key.
                tracing::info!(%peer, division = %cert.body.division, "peer verified");
                if let Some(link) = self.links.get(&conn) {
                    link.stream.verified();
                }
                let known = self.known(peer);
                known.connected = true;
                known.last_seen_ms = Some(now);
                known.division = Some(cert.body.division.to_string());
            }
            Event::Reconciled { conn } => {
                let Some(peer) = self.peer_of(conn) else {
                    return;
                };
                tracing::info!(%peer, "reconciled");
                self.metrics.session("reconciled");
                let known = self.known(peer);
                known.reconciled = true;
                known.last_reconciled_ms = Some(now);
            }
            // The peer dialled and reconciled with this node: the link synced as much as
            // when this node dials (the sync page's 上次同步 on the accepting side).
            Event::Answered { conn } => {
                let Some(peer) = self.peer_of(conn) else {
                    return;
                };
                tracing::debug!(%peer, "answered the peer's reconciliation");
                let known = self.known(peer);
                known.reconciled = true;
                known.last_reconciled_ms = Some(now);
            }
            Event::Clock { conn, skew_ms } => {
                let Some(peer) = self.peer_of(conn) else {
                    return;
                };
                if skew_ms.abs() > SKEW_WARN_MS {
                    tracing::warn!(%peer, skew_ms, "the peer's clock is far from this node's");
                }
                self.known(peer).clock_skew_ms = Some(skew_ms);
            }
            Event::Received { conn, changes } => {
                let peer = conn.and_then(|c| self.peer_of(c));
                match peer {
                    Some(peer) => tracing::info!(%peer, changes = changes.len(), "received"),
                    None => {
                        tracing::info!(applied = changes.len(), "held changes whose time came");
                    }
                }
                self.generation += 1;
            }
            Event::Quarantined {
                conn,
                changes,
                dropped,
            } => {
                let peer = conn.and_then(|c| self.peer_of(c)).map(|p| p.to_string());
                for q in &changes {
                    tracing::warn!(peer = ?peer, signer = %q.signer, record = %q.record, reason = %q.detail, "refused a change and kept it aside");
                    self.metrics.quarantined(&q.code);
                }
                if dropped > 0 {
                    tracing::warn!(peer = ?peer, dropped, "refused changes not kept: their signer's quarantine is full");
                    self.metrics
                        .quarantined
                        .get_or_create(&metrics::Outcome {
                            outcome: "dropped".into(),
                        })
                        .inc_by(dropped as u64);
                }
                self.generation += 1;
            }
            Event::RefusedByPeer { conn, refused } => {
                let peer = self.peer_of(conn).map(|p| p.to_string());
                for r in &refused {
                    tracing::warn!(peer = ?peer, record = %r.record, code = %r.code, "an office above refused a change of this node's; no more writes to that record here");
                }
                self.generation += 1;
            }
            Event::Revocations(v) => tracing::info!(version = v, "revocation list updated"),
            Event::Frontier(v) => {
                tracing::info!(version = v, "frontier of revoked keys updated");
                self.flag_beyond_frontier();
            }
            Event::Settings(v) => tracing::info!(version = v, "county settings updated"),
            Event::Reported(changes) => {
                tracing::info!(
                    entries = changes.len(),
                    "quarantine report written for the levels above"
                );
                if let Err(e) = self
                    .local
                    .replica
                    .store
                    .put_last_write_ms(self.local.replica.last_write_ms)
                {
                    self.fail(&e, e.is_disk_full());
                }
                self.generation += 1;
            }
            Event::ReportFailed(why) => {
                tracing::warn!(%why, "could not write the quarantine report; trying again in a minute");
            }
            Event::Expired(n) => {
                tracing::info!(
                    forgotten = n,
                    "changes that waited too long for their dependencies"
                );
                self.generation += 1;
            }
            Event::StoreFailed(why) => self.fail(&why, false),
        }
    }

    /// Records holding entries of a revoked key beyond its frontier, applied here before
    /// it arrived, are put up for review.
    fn flag_beyond_frontier(&mut self) {
        match self.local.flag_beyond_frontier() {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(
                    records = n,
                    "records hold entries of a revoked key beyond its frontier; up for review"
                );
                self.generation += 1;
            }
            Err(e) => tracing::warn!(%e, "could not check records against the frontier"),
        }
    }

    /// Once a second: the host's timers, the disk, stuck backlogs, the status.
    fn tick(&mut self) {
        let now = now_ms();
        if self.host.poll_timeout() <= now {
            self.host.handle_timeout(now, &mut self.local.replica);
        }
        self.drain();
        self.check_disk();
        // In case a writer's news of room was lost to a full core queue.
        let stuck: Vec<ConnId> = self
            .links
            .iter_mut()
            .filter_map(|(conn, l)| l.stream.out.drain().is_err().then_some(*conn))
            .collect();
        for conn in stuck {
            self.host.closed(conn);
            self.forget(conn, true);
        }
        if now.saturating_sub(self.last_status_ms) >= STATUS_EVERY_MS {
            self.last_status_ms = now;
            self.refresh();
        }
    }

    /// The store's counts and freshness. Counting walks the store, so it is redone only
    /// after something was stored, and no more often than keeps it under 1% of the time.
    fn counts(&mut self) -> Counts {
        let due = self.counted.as_ref().is_none_or(|(at, cost, c)| {
            c.generation != self.generation
                && at.elapsed() >= (*cost * 100).max(Duration::from_secs(1))
        });
        if due {
            let started = std::time::Instant::now();
            let store = &self.local.replica.store;
            let counts = Counts {
                generation: self.generation,
                records: store.record_count(),
                changes: store.change_count(),
                pending: store.pending_count(),
                freshness: store
                    .freshness()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(village, newest_ms)| api::Freshness {
                        village: village.to_string(),
                        newest_ms,
                    })
                    .collect(),
                quarantined: api::quarantine_reports(store),
                held: store.held().map(|h| h.len()).unwrap_or(0),
                reported: api::reported_refusals(
                    store,
                    self.local.replica.identity.cert.body.division,
                ),
                refused_upstream: api::refused_upstream(store),
            };
            self.counted = Some((std::time::Instant::now(), started.elapsed(), counts));
        }
        self.counted
            .as_ref()
            .map(|(_, _, c)| c.clone())
            .unwrap_or_default()
    }

    fn report(&mut self) -> StatusReport {
        let counts = self.counts();
        let cert = &self.local.replica.identity.cert;
        let mut peers: Vec<PeerReport> = self.known.values().cloned().collect();
        for p in &mut peers {
            p.reconciled = self.links.iter().any(|(conn, l)| {
                l.peer.to_string() == p.peer
                    && self
                        .host
                        .session(*conn)
                        .is_some_and(guihe_protocol::sync::Session::is_reconciled)
            });
        }
        let settings = api::SettingsLine::of(&self.local.replica.store);
        StatusReport {
            node: crate::keys::public_hex(&cert.node()),
            role: format!("{:?}", cert.body.role),
            division: cert.body.division.to_string(),
            updated_ms: now_ms(),
            records: counts.records,
            changes: counts.changes,
            pending: counts.pending,
            peers,
            freshness: counts.freshness,
            disk_low: self.disk_low,
            quarantined: counts.quarantined,
            reported: counts.reported,
            settings_version: settings.version,
            settings_issued_ms: settings.issued_ms,
            record_schema: settings.record_schema,
            refused_upstream: counts.refused_upstream,
            held: counts.held,
        }
    }

    /// Carries out an API request; a write goes to the host, which offers it to every
    /// session.
    fn api(&mut self, request: Request) {
        match request {
            Request::Status { reply } => {
                let _ = reply.send(self.report());
            }
            Request::Call { staff, call, reply } => {
                let revoking = matches!(
                    *call,
                    api::Call::Revocations { .. }
                        | api::Call::Frontier { .. }
                        | api::Call::Settings { .. }
                );
                if self.disk_low && call.writes() {
                    let _ = reply.send(Err(api::ApiError::disk_full(&format_args!(
                        "less than {} MiB free",
                        self.disk_reserve / (1024 * 1024)
                    ))));
                    return;
                }
                match api::execute(&mut self.local, staff.as_deref(), *call) {
                    Ok((answer, _)) if revoking => {
                        let _ = reply.send(Ok(answer));
                        self.flag_beyond_frontier();
                        self.generation += 1;
                        self.host.news(now_ms(), &mut self.local.replica);
                        self.drain();
                    }
                    Ok((answer, changes)) => {
                        if !changes.is_empty() {
                            self.metrics.local_writes.inc();
                            self.generation += 1;
                        }
                        // Acknowledge first: the write is durable already.
                        let _ = reply.send(Ok(answer));
                        if !changes.is_empty() {
                            self.host.wrote(&changes, &mut self.local.replica);
                            self.drain();
                        }
                    }
                    Err(e) => {
                        if matches!(e, api::ApiError::DiskFull(_)) {
                            self.fail(&e, true);
                        }
                        let _ = reply.send(Err(e));
                    }
                }
            }
        }
    }

    /// The store failed a write: sled refuses everything after that, so the daemon stops
    /// with the reason, and the service manager starts it again. What was acknowledged is
    /// on disk.
    fn fail(&mut self, e: &dyn std::fmt::Display, disk_full: bool) {
        tracing::error!(%e, "the store failed; stopping");
        if !self.failed.is_set() {
            // A write that failed for want of space may leave a little behind it; what
            // is left then is far below any reserve.
            let free = fs2::available_space(&self.local.data).unwrap_or(u64::MAX);
            let disk_full = disk_full || free < DISK_FULL_BELOW;
            // (A refused write's error is already worded for the worker; the log above
            // keeps the detail.)
            let _ = self.failed.0.set(Failure {
                disk_full,
                why: if disk_full && free != u64::MAX {
                    format!("{} MiB free", free / (1024 * 1024))
                } else if disk_full {
                    "no space left on the disk".into()
                } else {
                    e.to_string()
                },
            });
            let _ = self.swarm.send(ToSwarm::Fatal(e.to_string()));
        }
    }

    /// Checks the free disk space against the reserve. Below it, every session is closed
    /// and no entry is taken.
    fn check_disk(&mut self) {
        let free = fs2::available_space(&self.local.data).unwrap_or(u64::MAX);
        let low = free < self.disk_reserve;
        if low == self.disk_low {
            return;
        }
        self.disk_low = low;
        if !low {
            tracing::info!(
                free_mib = free / (1024 * 1024),
                "disk space is back; taking entries and syncing again"
            );
            return;
        }
        tracing::error!(
            free_mib = free / (1024 * 1024),
            reserve_mib = self.disk_reserve / (1024 * 1024),
            "磁盘将满 the disk is nearly full: no new entries and no sync until space is freed"
        );
        for conn in self.host.close_all() {
            self.metrics.session("disk_low");
            self.forget(conn, true);
        }
    }

    /// Refreshes the gauges and `status.json`.
    fn refresh(&mut self) {
        let now = now_ms();
        self.known.retain(|_, p| {
            p.connected
                || p.last_seen_ms
                    .is_some_and(|t| now.saturating_sub(t) < KNOWN_FOR_MS)
        });
        let report = self.report();
        metrics::set(&self.metrics.records, report.records);
        metrics::set(&self.metrics.changes, report.changes);
        metrics::set(&self.metrics.pending, report.pending);
        metrics::set(&self.metrics.quarantine_held, report.quarantined.len());
        metrics::set(&self.metrics.peers, self.links.len());
        if let Ok(json) = serde_json::to_vec_pretty(&report) {
            let _ = crate::net::write_atomic(&self.local.data.join("status.json"), &json, false);
        }
        for p in self.known.values() {
            if let Ok(json) = serde_json::to_vec(p) {
                let _ = self.local.replica.store.put_peer(&p.peer, &json);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_node_key_is_the_key_its_peer_id_holds() {
        let secret = [7u8; 32];
        let ours = guihe_protocol::cert::Keypair::from_secret(secret).public();
        let peer = libp2p::identity::Keypair::ed25519_from_bytes(secret)
            .unwrap()
            .public()
            .to_peer_id();
        assert_eq!(node_of(&peer), Some(ours));
        assert_eq!(node_of(&PeerId::random()), None);
    }
}
