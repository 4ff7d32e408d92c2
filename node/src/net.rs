//! The daemon: the node's protocol sessions over libp2p, and its HTTP API.
//!
//! Transports: TCP and QUIC, with Noise and Yamux; identify, ping, and mDNS for offices on
//! one LAN. Each connection the node dialled carries one sync stream (`/guihe/sync/4`, or an
//! older version the peer speaks) that the dialler opens; the other side accepts it. Messages on the stream are framed with a
//! 4-byte big-endian length, never more than the wire bound. A peer whose libp2p identity
//! is not the key in its certificate is dropped. Bootstrap peers are redialled with capped,
//! jittered backoff. Incoming connections are capped in number, per peer, and while the
//! process's memory is over its limit (`[limits]` in the configuration).
//!
//! One task, the core, owns the store and every session; stream readers and writers are
//! tasks of their own that pass whole frames through bounded channels, and the HTTP
//! server's calls come to the core through a channel too. A write made over HTTP is durable
//! before it is acknowledged and is pushed to every open session at once. While it runs,
//! the daemon writes `status.json` (its last report) and `api.json` (where its API is, and
//! the token, mode 0600) in the data folder.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use guihe_protocol::id::NodeId;
use guihe_protocol::store::{Store, StoredChange};
use guihe_protocol::sync::{Config as SessionConfig, Event, Session, Stats};
use guihe_protocol::wire::MESSAGE_BYTES_MAX;
use libp2p::metrics::Recorder;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, connection_limits, identify, mdns, memory_connection_limits,
    noise, ping, tcp, yamux,
};
use prometheus_client::registry::Registry;
use rand::RngCore;
use tokio::sync::mpsc;

use crate::api::{self, PeerReport, StatusReport};
use crate::http::{self, Endpoint, Request};
use crate::local::{Local, now_ms};
use crate::metrics::{self, Metrics};

/// The sync stream protocol of each protocol version this build speaks, newest first: a
/// dialler asks for the newest and falls back, so that offices upgrade one by one.
static PROTOCOLS: [(u16, StreamProtocol); 4] = [
    (4, StreamProtocol::new("/guihe/sync/4")),
    (3, StreamProtocol::new("/guihe/sync/3")),
    (2, StreamProtocol::new("/guihe/sync/2")),
    (1, StreamProtocol::new("/guihe/sync/1")),
];
/// A peer's clock this far from ours is shown on the status and sync pages.
pub const SKEW_WARN_MS: i64 = 5 * 60_000;
/// Frames waiting in one stream's outgoing queue before its session is slowed.
const STREAM_QUEUE: usize = 8;
/// Events waiting for the core task.
const CORE_QUEUE: usize = 1024;
/// Frames one stream may have read and not yet had handled by the core: a fast peer
/// cannot fill the core's queue, and each stream holds at most this many frames.
const FRAMES_IN_FLIGHT: usize = 2;
/// The longest frame read from a peer that has not yet shown a valid certificate. A
/// `Hello` is a few hundred bytes; everything else waits for it.
const UNVERIFIED_FRAME_MAX: usize = 64 * 1024;
/// API calls waiting for the core task.
const API_QUEUE: usize = 64;
/// The longest wait between two dials of a bootstrap peer.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Attempts to open the sync stream on a new connection before giving up on it.
const OPEN_ATTEMPTS: u32 = 5;
/// Peers remembered (those that showed a valid certificate), with their last sync.
const KNOWN_MAX: usize = 256;
/// A peer not heard from for this long is forgotten.
const KNOWN_FOR_MS: u64 = 90 * 86_400_000;
/// How often changes held for their time are looked at again.
const RETRY_HELD_EVERY_MS: u64 = 60_000;
/// How often `status.json` and the gauges are refreshed.
const STATUS_EVERY_MS: u64 = 2_000;

/// Why the daemon stopped.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// libp2p could not be set up.
    #[error("network setup: {0}")]
    Setup(String),
    /// An address in the configuration is not a multiaddr.
    #[error("address {0:?}: {1}")]
    Address(String, String),
    /// The HTTP address could not be bound.
    #[error("HTTP address {0}: {1}")]
    Http(String, std::io::Error),
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    memory: memory_connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    mdns: libp2p::swarm::behaviour::toggle::Toggle<mdns::tokio::Behaviour>,
    stream: libp2p_stream::Behaviour,
}

enum CoreMsg {
    Stream {
        peer: PeerId,
        stream: libp2p::Stream,
        initiator: bool,
        version: u16,
    },
    Frame {
        id: u64,
        bytes: Vec<u8>,
    },
    Closed {
        id: u64,
    },
    /// A stream's writer took frames from a full queue: the core may move its backlog.
    Drained {
        id: u64,
    },
    /// The sync stream to a peer could not be opened: drop the connection so that the
    /// redial (with backoff) starts afresh.
    NoStream {
        peer: PeerId,
    },
}

struct Open {
    peer: PeerId,
    session: Session,
    out: Outbox,
    /// The session's counters as last added to the metrics.
    counted: Stats,
    /// This side opened the stream.
    initiator: bool,
    /// When a frame last arrived.
    heard: tokio::time::Instant,
    /// The stream reader's credit: one permit per frame it may read ahead.
    credit: Arc<tokio::sync::Semaphore>,
    /// Set once the peer showed a valid certificate; until then frames are small.
    verified: Arc<AtomicBool>,
}

/// Why a frame could not be queued for a peer.
enum Queue {
    /// The stream's writer is gone.
    Closed,
    /// The peer has not read what it was sent, past the backlog limit.
    Overflow,
}

/// A stream's outgoing frames: the writer's bounded queue, and behind it the frames the
/// queue had no room for. The core never waits for a peer: a peer that does not read gets
/// a backlog, and past the limit its session is closed.
struct Outbox {
    out: mpsc::Sender<Vec<u8>>,
    /// Oldest first, and their bytes.
    backlog: VecDeque<Vec<u8>>,
    backlog_bytes: usize,
    /// Set while there is a backlog: the writer tells the core when it makes room.
    wants_room: Arc<AtomicBool>,
}

impl Outbox {
    /// Queues a frame for the stream's writer without waiting: into the writer's queue if
    /// it has room and nothing is waiting before it, else into the backlog.
    fn send(&mut self, frame: Vec<u8>, backlog_max: usize) -> Result<(), Queue> {
        if self.backlog.is_empty() {
            match self.out.try_send(frame) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Queue::Closed),
                Err(mpsc::error::TrySendError::Full(frame)) => {
                    self.wants_room.store(true, Ordering::Release);
                    self.backlog_bytes += frame.len();
                    self.backlog.push_back(frame);
                }
            }
        } else {
            self.backlog_bytes += frame.len();
            self.backlog.push_back(frame);
        }
        if self.backlog_bytes > backlog_max {
            return Err(Queue::Overflow);
        }
        Ok(())
    }

    /// Moves what the writer's queue has room for from the backlog.
    fn drain(&mut self) -> Result<(), Queue> {
        while let Some(frame) = self.backlog.pop_front() {
            let len = frame.len();
            match self.out.try_send(frame) {
                Ok(()) => self.backlog_bytes -= len,
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Queue::Closed),
                Err(mpsc::error::TrySendError::Full(frame)) => {
                    self.backlog.push_front(frame);
                    self.wants_room.store(true, Ordering::Release);
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

impl Open {
    /// Whether the session is waiting for something from its peer.
    fn expecting(&self) -> bool {
        !self.session.is_idle()
            || self.session.peer().is_none()
            || (self.initiator && !self.session.is_reconciled())
    }
}

/// Whether two addresses are the same place, whether or not either pins a peer id
/// (`/p2p/...`).
fn same_place(a: &Multiaddr, b: &Multiaddr) -> bool {
    let place = |m: &Multiaddr| -> Vec<libp2p::multiaddr::Protocol<'static>> {
        m.iter()
            .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
            .map(|p| p.acquire())
            .collect()
    };
    place(a) == place(b)
}

/// The node key of a libp2p peer: its Ed25519 public key, which an Ed25519 peer id holds
/// whole.
fn node_of(peer: &PeerId) -> Option<NodeId> {
    let key = libp2p::identity::PublicKey::try_decode_protobuf(peer.as_ref().digest()).ok()?;
    let key: [u8; 32] = key.try_into_ed25519().ok()?.to_bytes();
    Some(NodeId::from_bytes(key))
}

/// The core task's state: the node and its sessions.
struct Core {
    local: Local,
    sessions: BTreeMap<u64, Open>,
    /// Every peer met since the daemon started.
    known: BTreeMap<PeerId, PeerReport>,
    metrics: Metrics,
    next_id: u64,
    core_tx: mpsc::Sender<CoreMsg>,
    /// A session took in a newer revocation list since the sessions were last checked.
    revocations_news: bool,
    /// Bumped whenever something is stored, so counts are redone only then.
    generation: u64,
    /// The last counts: when, what counting cost, and the counts.
    counted: Option<(std::time::Instant, Duration, Counts)>,
    /// From `[limits]`: sessions per peer, the stall timeout and the backlog bound.
    sessions_per_peer: usize,
    stall: Duration,
    backlog_max: usize,
    /// Free disk space kept in reserve (bytes), and whether the disk is below it.
    disk_reserve: u64,
    disk_low: bool,
    /// The store failed so that the daemon must stop (sled refuses every operation after
    /// a failed write); why.
    fatal: Option<String>,
    /// Something was refused since the quarantine report was last written (or the daemon
    /// just started): write it.
    report_due: bool,
    /// Writing the report failed: try again at the next minute's tick.
    report_retry: bool,
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

impl Core {
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

    /// Starts a session on a new stream.
    async fn open(&mut self, peer: PeerId, stream: libp2p::Stream, initiator: bool, version: u16) {
        if self.disk_low {
            // Nothing can be stored: sync again when there is room.
            self.metrics.session("disk_low");
            return;
        }
        let held = self.sessions.values().filter(|o| o.peer == peer).count();
        if held >= self.sessions_per_peer {
            // Dropping the stream closes it: a peer cannot pile up sessions.
            tracing::warn!(%peer, held, "too many sync streams from one peer; closing the new one");
            self.metrics.session("excess");
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        let Some(key) = node_of(&peer) else {
            // Not an Ed25519 identity: no certificate can be for it.
            self.metrics.session("impostor");
            return;
        };
        let session = match Session::new(
            SessionConfig::default(),
            self.local.root,
            self.local.replica.identity.clone(),
            initiator,
            &self.local.replica.store,
        ) {
            Ok(s) => s
                .expecting(key, &self.local.replica.store)
                .speaking(version),
            Err(e) => {
                tracing::warn!(%e, "session");
                return;
            }
        };
        let (out_tx, out_rx) = mpsc::channel(STREAM_QUEUE);
        let wants_room = Arc::new(AtomicBool::new(false));
        let credit = Arc::new(tokio::sync::Semaphore::new(FRAMES_IN_FLIGHT));
        let verified = Arc::new(AtomicBool::new(false));
        spawn_stream(
            id,
            stream,
            out_rx,
            self.core_tx.clone(),
            Shared {
                wants_room: wants_room.clone(),
                credit: credit.clone(),
                verified: verified.clone(),
            },
        );
        self.metrics.session("opened");
        self.sessions.insert(
            id,
            Open {
                peer,
                session,
                out: Outbox {
                    out: out_tx,
                    backlog: VecDeque::new(),
                    backlog_bytes: 0,
                    wants_room,
                },
                counted: Stats::default(),
                initiator,
                heard: tokio::time::Instant::now(),
                credit,
                verified,
            },
        );
        // The peer learns nothing before the session is set up, so nothing can be received
        // here, and a refusal only closes the stream.
        let _ = self.flush(id).await;
    }

    /// Handles a frame from a session's stream. Returns the peers to disconnect: the
    /// session's own when it ended, and any that a newly received revocation list revokes.
    async fn frame(&mut self, id: u64, bytes: &[u8]) -> Vec<PeerId> {
        let now = now_ms();
        let Some(open) = self.sessions.get_mut(&id) else {
            return Vec::new();
        };
        self.metrics.bytes_received.inc_by(bytes.len() as u64);
        open.heard = tokio::time::Instant::now();
        // The reader may read the next frame once this one is handled.
        open.credit.add_permits(1);
        let peer = open.peer;
        if let Err(e) = open
            .session
            .handle(bytes, &mut self.local.replica.store, now)
        {
            tracing::warn!(%peer, %e, "session ended");
            self.metrics.session(
                if matches!(e, guihe_protocol::sync::SessionError::Impostor) {
                    "impostor"
                } else {
                    "refused"
                },
            );
            self.close(id);
            if let Err(e) = self.local.replica.store.flush() {
                self.fail(&e);
            }
            // One session per connection: without it the connection is useless, and
            // closing it lets the redial start a fresh one.
            return vec![peer];
        }
        let mut disconnect = match self.flush(id).await {
            Err(peer) => vec![peer],
            Ok(received) => {
                if !received.is_empty() {
                    self.generation += 1;
                    self.push(&received, Some(id)).await;
                }
                self.report_refused().await;
                Vec::new()
            }
        };
        if std::mem::take(&mut self.revocations_news) {
            disconnect.extend(self.revoked().await);
        }
        disconnect
    }

    /// Closes the sessions that have waited too long for their peer; returns the peers to
    /// disconnect.
    fn stalled(&mut self) -> Vec<PeerId> {
        let now = tokio::time::Instant::now();
        let ids: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, o)| o.expecting() && now.duration_since(o.heard) > self.stall)
            .map(|(id, _)| *id)
            .collect();
        let mut peers = Vec::new();
        for id in ids {
            if let Some(open) = self.sessions.get(&id) {
                tracing::warn!(peer = %open.peer, "no answer for {} s; closing the session", self.stall.as_secs());
                peers.push(open.peer);
            }
            self.metrics.session("stalled");
            self.close(id);
        }
        peers
    }

    /// Moves every session's backlog on as far as its queue has room; returns the peers
    /// whose stream is gone.
    fn drain_all(&mut self) -> Vec<PeerId> {
        let gone: Vec<u64> = self
            .sessions
            .iter_mut()
            .filter(|(_, o)| !o.out.backlog.is_empty())
            .filter_map(|(id, o)| o.out.drain().is_err().then_some(*id))
            .collect();
        let mut peers = Vec::new();
        for id in gone {
            if let Some(open) = self.sessions.get(&id) {
                peers.push(open.peer);
            }
            self.close(id);
        }
        peers
    }

    fn close(&mut self, id: u64) {
        if let Some(open) = self.sessions.remove(&id) {
            let still = self.sessions.values().any(|o| o.peer == open.peer);
            if let Some(known) = self.known.get_mut(&open.peer) {
                known.connected = still;
                known.reconciled &= still;
            }
        }
    }

    /// Sends a session's pending messages and handles its events; returns the changes it
    /// received, or the peer to disconnect when the session was dropped.
    async fn flush(&mut self, id: u64) -> Result<Vec<StoredChange>, PeerId> {
        let mut received = Vec::new();
        let mut drop_it = false;
        let Some(open) = self.sessions.get_mut(&id) else {
            return Ok(received);
        };
        let peer = open.peer;
        while let Some(m) = open.session.poll_transmit() {
            match open.out.send(m, self.backlog_max) {
                Ok(()) => {}
                Err(Queue::Closed) => {
                    drop_it = true;
                    break;
                }
                Err(Queue::Overflow) => {
                    tracing::warn!(%peer, bytes = open.out.backlog_bytes, "the peer does not read what it is sent; closing the session");
                    self.metrics.session("backlog");
                    drop_it = true;
                    break;
                }
            }
        }
        let mut verified = None;
        let mut reconciled = false;
        let mut news = false;
        let mut skew = None;
        while let Some(event) = open.session.poll_event() {
            match event {
                Event::Peer(cert) => {
                    // The session checked the certificate is for the peer's key.
                    tracing::info!(%peer, division = %cert.body.division, "peer verified");
                    open.verified.store(true, Ordering::Release);
                    verified = Some(cert.body.division.to_string());
                }
                Event::Received(changes) => {
                    tracing::info!(%peer, changes = changes.len(), "received");
                    received.extend(changes);
                }
                Event::Reconciled => {
                    tracing::info!(%peer, "reconciled");
                    reconciled = true;
                }
                Event::Quarantined { changes, dropped } => {
                    for q in &changes {
                        tracing::warn!(%peer, signer = %q.signer, record = %q.record, reason = %q.detail, "refused a change and kept it aside");
                        self.metrics.quarantined(&q.code);
                    }
                    if !changes.is_empty() {
                        self.report_due = true;
                    }
                    if dropped > 0 {
                        tracing::warn!(%peer, dropped, "refused changes not kept: their signer's quarantine is full");
                        self.metrics
                            .quarantined
                            .get_or_create(&metrics::Outcome {
                                outcome: "dropped".into(),
                            })
                            .inc_by(dropped as u64);
                    }
                    self.generation += 1;
                }
                Event::RefusedByPeer(own) => {
                    for r in &own {
                        tracing::warn!(%peer, record = %r.record, code = %r.code, "an office above refused a change of this node's; no more writes to that record here");
                    }
                    self.generation += 1;
                }
                Event::Revocations(v) => {
                    tracing::info!(version = v, "revocation list updated");
                    news = true;
                }
                Event::Frontier(v) => {
                    tracing::info!(version = v, "frontier of revoked keys updated");
                    news = true;
                }
                Event::Settings(v) => {
                    tracing::info!(version = v, "county settings updated");
                    news = true;
                }
                Event::Clock(skew_ms) => {
                    if skew_ms.abs() > SKEW_WARN_MS {
                        tracing::warn!(%peer, skew_ms, "the peer's clock is far from this node's");
                    }
                    skew = Some(skew_ms);
                }
            }
        }
        let stats = open.session.stats();
        let counted = std::mem::replace(&mut open.counted, stats);
        self.revocations_news |= news;
        self.metrics
            .bytes_sent
            .inc_by(stats.bytes_out.saturating_sub(counted.bytes_out));
        self.metrics
            .changes_sent
            .inc_by(stats.changes_out.saturating_sub(counted.changes_out));
        self.metrics
            .changes_received
            .inc_by(stats.changes_in.saturating_sub(counted.changes_in));
        let now = now_ms();
        if drop_it || open.session.peer().is_none() {
            // Only a peer that showed a valid certificate is recorded.
            if drop_it {
                self.close(id);
                return Err(peer);
            }
            return Ok(received);
        }
        let known = self.known(peer);
        known.connected = true;
        known.last_seen_ms = Some(now);
        if skew.is_some() {
            known.clock_skew_ms = skew;
        }
        known.changes_in += stats.changes_in.saturating_sub(counted.changes_in);
        if verified.is_some() {
            known.division = verified;
        }
        if reconciled {
            known.reconciled = true;
            known.last_reconciled_ms = Some(now);
            self.metrics.session("reconciled");
        }
        if drop_it {
            self.close(id);
            return Err(peer);
        }
        Ok(received)
    }

    /// Writes what this node keeps aside and its office's quarantine reports do not hold
    /// yet into them (`Replica::report_quarantined`), when something was refused, and
    /// offers the reports' new changes to every session: they sync to the county (and the
    /// township's other nodes), never to a village.
    async fn report_refused(&mut self) {
        if !std::mem::take(&mut self.report_due) {
            return;
        }
        match self
            .local
            .replica
            .report_quarantined(now_ms(), &mut rand::rng())
        {
            Ok(changes) if changes.is_empty() => {}
            Ok(changes) => {
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
                    self.fail(&e);
                }
                self.generation += 1;
                self.push(&changes, None).await;
            }
            Err(guihe_protocol::replica::ReportError::Store(e)) => self.fail(&e),
            Err(e) => {
                tracing::warn!(%e, "could not write the quarantine report; trying again in a minute");
                self.report_retry = true;
            }
        }
    }

    /// Offers changes to every open session but `except` (the one they came from).
    async fn push(&mut self, changes: &[StoredChange], except: Option<u64>) {
        let ids: Vec<u64> = self.sessions.keys().copied().collect();
        for id in ids {
            if Some(id) == except {
                continue;
            }
            let Some(open) = self.sessions.get_mut(&id) else {
                continue;
            };
            if open
                .session
                .offer(changes, &self.local.replica.store)
                .is_err()
            {
                continue;
            }
            let _ = self.flush(id).await;
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
            p.reconciled = self
                .sessions
                .values()
                .any(|o| o.peer.to_string() == p.peer && o.session.is_reconciled());
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

    /// Carries out an API request; a write is pushed to the peers. Returns the peers to
    /// disconnect (those a new revocation list revokes).
    async fn api(&mut self, request: Request) -> Vec<PeerId> {
        match request {
            Request::Status { reply } => {
                let _ = reply.send(self.report());
            }
            Request::Call { staff, call, reply } => {
                let revoking = matches!(
                    call,
                    api::Call::Revocations { .. }
                        | api::Call::Frontier { .. }
                        | api::Call::Settings { .. }
                );
                if self.disk_low && call.writes() {
                    let _ = reply.send(Err(api::ApiError::disk_full(&format_args!(
                        "less than {} MiB free",
                        self.disk_reserve / (1024 * 1024)
                    ))));
                    return Vec::new();
                }
                match api::execute(&mut self.local, staff.as_deref(), call) {
                    Ok((answer, _)) if revoking => {
                        let _ = reply.send(Ok(answer));
                        return self.revoked().await;
                    }
                    Ok((answer, changes)) => {
                        if !changes.is_empty() {
                            self.metrics.local_writes.inc();
                            self.generation += 1;
                        }
                        // Acknowledge first: the write is durable already.
                        let _ = reply.send(Ok(answer));
                        if !changes.is_empty() {
                            self.push(&changes, None).await;
                        }
                    }
                    Err(e) => {
                        if matches!(e, api::ApiError::DiskFull(_)) {
                            self.fail(&e);
                        }
                        let _ = reply.send(Err(e));
                    }
                }
            }
        }
        Vec::new()
    }

    /// The store failed a write: sled refuses everything after that, so the daemon stops
    /// with the reason, and the service manager starts it again. What was acknowledged is
    /// on disk.
    fn fail(&mut self, e: &dyn std::fmt::Display) {
        tracing::error!(%e, "the store failed; stopping");
        self.fatal.get_or_insert_with(|| e.to_string());
    }

    /// Checks the free disk space against the reserve. Below it, every session is closed
    /// and no entry is taken; returns the peers to disconnect.
    fn check_disk(&mut self) -> Vec<PeerId> {
        let free = fs2::available_space(&self.local.data).unwrap_or(u64::MAX);
        let low = free < self.disk_reserve;
        if low == self.disk_low {
            return Vec::new();
        }
        self.disk_low = low;
        if !low {
            tracing::info!(
                free_mib = free / (1024 * 1024),
                "disk space is back; taking entries and syncing again"
            );
            return Vec::new();
        }
        tracing::error!(
            free_mib = free / (1024 * 1024),
            reserve_mib = self.disk_reserve / (1024 * 1024),
            "磁盘将满 the disk is nearly full: no new entries and no sync until space is freed"
        );
        let ids: Vec<u64> = self.sessions.keys().copied().collect();
        let mut peers = Vec::new();
        for id in ids {
            if let Some(open) = self.sessions.get(&id) {
                peers.push(open.peer);
            }
            self.metrics.session("disk_low");
            self.close(id);
        }
        peers
    }

    /// Closes the sessions whose peer the held revocation list revokes now, and passes the
    /// list to the others. Returns the peers to disconnect.
    async fn revoked(&mut self) -> Vec<PeerId> {
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
        let store = &self.local.replica.store;
        let list = store.revocations().ok().flatten();
        let frontier = store.frontier().ok().flatten();
        let settings = store.settings().ok().flatten();
        let mut peers = Vec::new();
        if let Some(list) = &list {
            let now = now_ms();
            let ids: Vec<u64> = self
                .sessions
                .iter()
                .filter(|(_, o)| {
                    o.session
                        .peer()
                        .is_some_and(|c| c.valid_at(now, &list.body).is_err())
                })
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                if let Some(open) = self.sessions.get(&id) {
                    tracing::warn!(peer = %open.peer, "revoked; closing its session");
                    peers.push(open.peer);
                }
                self.metrics.session("refused");
                self.close(id);
            }
        }
        // Every peer is given what the county signed (each keeps only what is newer).
        let ids: Vec<u64> = self.sessions.keys().copied().collect();
        for id in ids {
            if let Some(open) = self.sessions.get_mut(&id) {
                if let Some(list) = &list {
                    open.session.offer_revocations(list);
                }
                if let Some(f) = &frontier {
                    open.session.offer_frontier(f);
                }
                if let Some(s) = &settings {
                    open.session.offer_settings(s);
                }
            }
            if let Err(peer) = self.flush(id).await {
                peers.push(peer);
            }
        }
        // Every session has just been checked against the list and given it.
        self.revocations_news = false;
        peers
    }

    /// Takes the changes held for a time that has now come (`ingest::retry_held`), and
    /// passes on what they applied.
    async fn retry_held(&mut self) {
        match guihe_protocol::ingest::retry_held(&mut self.local.replica.store, now_ms()) {
            Ok(done) => {
                for q in &done.quarantined {
                    self.metrics.quarantined(&q.code);
                }
                if !done.applied.is_empty() || !done.quarantined.is_empty() {
                    tracing::info!(
                        applied = done.applied.len(),
                        refused = done.quarantined.len(),
                        "held changes whose time came"
                    );
                    self.generation += 1;
                }
                if !done.applied.is_empty() {
                    self.push(&done.applied, None).await;
                }
                if !done.quarantined.is_empty() {
                    self.report_due = true;
                }
                if std::mem::take(&mut self.report_retry) {
                    self.report_due = true;
                }
                self.report_refused().await;
            }
            Err(e) => self.fail(&e),
        }
        match guihe_protocol::ingest::expire(&mut self.local.replica.store, now_ms()) {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(
                    forgotten = n,
                    "changes that waited too long for their dependencies"
                );
                self.generation += 1;
            }
            Err(e) => self.fail(&e),
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
        metrics::set(&self.metrics.peers, self.sessions.len());
        if let Ok(json) = serde_json::to_vec_pretty(&report) {
            let _ = write_atomic(&self.local.data.join("status.json"), &json, false);
        }
        for p in self.known.values() {
            if let Ok(json) = serde_json::to_vec(p) {
                let _ = self.local.replica.store.put_peer(&p.peer, &json);
            }
        }
    }
}

/// Writes a file by renaming a finished temporary one into place, so a reader never sees
/// half of it. `private` makes it readable by the owner only.
fn write_atomic(path: &std::path::Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let _ = private;
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs the daemon until Ctrl-C (or `stop_after`, for tests and the demo).
pub async fn run(local: Local, stop_after: Option<Duration>) -> Result<(), NetError> {
    let setup = |e: &dyn std::fmt::Display| NetError::Setup(e.to_string());
    let config = local.config.clone();
    let mut registry = Registry::default();
    let metrics = Metrics::default();
    metrics.register(&mut registry);
    let p2p_metrics = libp2p::metrics::Metrics::new(&mut registry);
    let keypair =
        libp2p::identity::Keypair::ed25519_from_bytes(local.replica.identity.key.secret())
            .map_err(|e| setup(&e))?;
    let limits = &config.limits;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| setup(&e))?
        .with_quic()
        .with_behaviour(|key| {
            Ok(Behaviour {
                limits: connection_limits::Behaviour::new(
                    connection_limits::ConnectionLimits::default()
                        .with_max_established_incoming(Some(limits.connections_in))
                        .with_max_pending_incoming(Some(limits.connections_in))
                        .with_max_established_per_peer(Some(limits.connections_per_peer)),
                ),
                memory: memory_connection_limits::Behaviour::with_max_bytes(
                    usize::try_from(limits.memory_mib.saturating_mul(1024 * 1024))
                        .unwrap_or(usize::MAX),
                ),
                identify: identify::Behaviour::new(
                    identify::Config::new("/guihe/1".into(), key.public())
                        .with_interval(Duration::from_secs(limits.identify_seconds.max(1))),
                ),
                // Slow, metered links: a ping now and then, not every 15 s.
                ping: ping::Behaviour::new(
                    ping::Config::new()
                        .with_interval(Duration::from_secs(limits.ping_seconds.max(1))),
                ),
                mdns: if config.mdns {
                    Some(mdns::tokio::Behaviour::new(
                        mdns::Config::default(),
                        key.public().to_peer_id(),
                    )?)
                    .into()
                } else {
                    None.into()
                },
                stream: libp2p_stream::Behaviour::new(),
            })
        })
        .map_err(|e| setup(&e))?
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(Duration::from_secs(limits.idle_seconds))
        })
        .build();
    for addr in &config.listen {
        let ma: Multiaddr = addr.parse().map_err(|e: libp2p::multiaddr::Error| {
            NetError::Address(addr.clone(), e.to_string())
        })?;
        // libp2p's transport error says nothing by itself; its source says why (an
        // address in use, say).
        swarm.listen_on(ma).map_err(|e| {
            let why =
                std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string);
            NetError::Address(addr.clone(), why)
        })?;
    }
    let bootstrap: Vec<Multiaddr> = config
        .bootstrap
        .iter()
        .map(|a| {
            a.parse()
                .map_err(|e: libp2p::multiaddr::Error| NetError::Address(a.clone(), e.to_string()))
        })
        .collect::<Result<_, _>>()?;

    // The HTTP API.
    let (api_tx, mut api_rx) = mpsc::channel::<Request>(API_QUEUE);
    let listener = tokio::net::TcpListener::bind(&config.http)
        .await
        .map_err(|e| NetError::Http(config.http.clone(), e))?;
    let http_addr = listener
        .local_addr()
        .map_err(|e| NetError::Http(config.http.clone(), e))?;
    let endpoint = Endpoint {
        url: format!("http://{http_addr}"),
        token: token(),
    };
    let api_file = local.data.join("api.json");
    serde_json::to_vec_pretty(&endpoint)
        .map_err(std::io::Error::other)
        .and_then(|json| write_atomic(&api_file, &json, true))
        .map_err(|e| NetError::Http(api_file.display().to_string(), e))?;
    let app = http::router(
        api_tx,
        endpoint.token.clone(),
        Arc::new(registry),
        metrics.clone(),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(%e, "HTTP server stopped");
        }
    });
    tracing::info!(url = %endpoint.url, "API listening");
    println!("api on {}", endpoint.url);

    let mut control = swarm.behaviour().stream.new_control();
    let (core_tx, mut core_rx) = mpsc::channel::<CoreMsg>(CORE_QUEUE);
    for (version, protocol) in PROTOCOLS.iter().cloned() {
        let mut incoming = control.accept(protocol).map_err(|e| setup(&e))?;
        let core_tx = core_tx.clone();
        tokio::spawn(async move {
            while let Some((peer, stream)) = incoming.next().await {
                if core_tx
                    .send(CoreMsg::Stream {
                        peer,
                        stream,
                        initiator: false,
                        version,
                    })
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
    }
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
    let mut core = Core {
        local,
        sessions: BTreeMap::new(),
        known,
        metrics,
        next_id: 0,
        core_tx: core_tx.clone(),
        revocations_news: false,
        generation: 1,
        counted: None,
        sessions_per_peer: usize::try_from(config.limits.sessions_per_peer)
            .unwrap_or(usize::MAX)
            .max(1),
        stall: Duration::from_secs(config.limits.stall_seconds.max(1)),
        backlog_max: usize::try_from(config.limits.backlog_mib.saturating_mul(1024 * 1024))
            .unwrap_or(usize::MAX),
        disk_reserve: config.limits.disk_reserve_mib.saturating_mul(1024 * 1024),
        disk_low: false,
        fatal: None,
        report_due: true,
        report_retry: false,
    };
    for peer in core.check_disk() {
        let _ = swarm.disconnect_peer_id(peer);
    }
    // Per bootstrap address: the next wait, when to dial next, and the connection to it.
    let mut backoff: Vec<(
        Duration,
        tokio::time::Instant,
        Option<libp2p::swarm::ConnectionId>,
    )> = bootstrap
        .iter()
        .map(|_| (Duration::from_secs(1), tokio::time::Instant::now(), None))
        .collect();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let deadline = stop_after.map(|d| tokio::time::Instant::now() + d);
    let mut last_status = 0u64;
    let mut last_retry = 0u64;

    loop {
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break;
        }
        if let Some(why) = core.fatal.take() {
            let _ = std::fs::remove_file(&api_file);
            return Err(NetError::Store(why));
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                let now = tokio::time::Instant::now();
                for (i, addr) in bootstrap.iter().enumerate() {
                    let Some((wait, at, connected)) = backoff.get_mut(i) else { continue };
                    if connected.is_none() && now >= *at {
                        if let Err(e) = swarm.dial(addr.clone()) {
                            tracing::info!(%addr, %e, "dial failed");
                        } else {
                            tracing::debug!(%addr, "dialling");
                        }
                        // Capped exponential backoff with jitter, so 242 villages do not
                        // redial their township in step.
                        let jitter = Duration::from_millis(u64::from(rand::random::<u16>() % 1000));
                        *at = now + *wait + jitter;
                        *wait = (*wait * 2).min(BACKOFF_MAX);
                    }
                }
                for peer in core.stalled() {
                    let _ = swarm.disconnect_peer_id(peer);
                }
                for peer in core.check_disk() {
                    let _ = swarm.disconnect_peer_id(peer);
                }
                // In case a writer's news of room was lost to a full core queue.
                for peer in core.drain_all() {
                    let _ = swarm.disconnect_peer_id(peer);
                }
                if now_ms().saturating_sub(last_status) >= STATUS_EVERY_MS {
                    last_status = now_ms();
                    core.refresh();
                }
                if now_ms().saturating_sub(last_retry) >= RETRY_HELD_EVERY_MS {
                    last_retry = now_ms();
                    core.retry_held().await;
                }
            }
            Some(request) = api_rx.recv() => {
                for peer in core.api(request).await {
                    let _ = swarm.disconnect_peer_id(peer);
                }
            }
            event = swarm.select_next_some() => {
                p2p_metrics.record(&event);
                match event {
                    SwarmEvent::ConnectionClosed { connection_id, .. } => {
                        for b in backoff.iter_mut() {
                            if b.2 == Some(connection_id) {
                                b.2 = None;
                            }
                        }
                    }
                    SwarmEvent::ConnectionEstablished { peer_id, endpoint, connection_id, .. } if endpoint.is_dialer() => {
                            if let Some(i) = bootstrap.iter().position(|a| same_place(endpoint.get_remote_address(), a))
                                && let Some(b) = backoff.get_mut(i)
                            {
                                b.0 = Duration::from_secs(1);
                                b.2 = Some(connection_id);
                            }
                            let mut control = control.clone();
                            let core_tx = core_tx.clone();
                            tokio::spawn(async move {
                                let mut versions = PROTOCOLS.iter().peekable();
                                let mut attempt = 0;
                                while let Some((version, protocol)) = versions.peek() {
                                    attempt += 1;
                                    if attempt > OPEN_ATTEMPTS {
                                        break;
                                    }
                                    match control.open_stream(peer_id, protocol.clone()).await {
                                        Ok(stream) => {
                                            let _ = core_tx.send(CoreMsg::Stream { peer: peer_id, stream, initiator: true, version: *version }).await;
                                            return;
                                        }
                                        Err(libp2p_stream::OpenStreamError::UnsupportedProtocol(_)) => {
                                            // A peer not upgraded yet: speak its version.
                                            versions.next();
                                        }
                                        Err(e) => {
                                            tracing::info!(peer = %peer_id, attempt, %e, "could not open the sync stream");
                                            tokio::time::sleep(Duration::from_millis(300 * u64::from(attempt))).await;
                                        }
                                    }
                                }
                                let _ = core_tx.send(CoreMsg::NoStream { peer: peer_id }).await;
                            });
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                        for (peer, addr) in found {
                            if !swarm.is_connected(&peer) && swarm.local_peer_id() < &peer {
                                let _ = swarm.dial(addr);
                            }
                        }
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => p2p_metrics.record(&e),
                    SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => p2p_metrics.record(&e),
                    SwarmEvent::OutgoingConnectionError { error, .. } => {
                        tracing::info!(%error, "could not connect");
                    }
                    SwarmEvent::IncomingConnectionError { error, .. } => {
                        tracing::info!(%error, "refused an incoming connection");
                    }
                    SwarmEvent::NewListenAddr { address, .. } => {
                        tracing::info!(%address, "listening");
                        println!("listening on {address}/p2p/{}", swarm.local_peer_id());
                    }
                    _ => {}
                }
            }
            Some(msg) = core_rx.recv() => {
                match msg {
                    CoreMsg::Stream { peer, stream, initiator, version } => {
                        core.open(peer, stream, initiator, version).await;
                    }
                    CoreMsg::Frame { id, bytes } => {
                        for peer in core.frame(id, &bytes).await {
                            let _ = swarm.disconnect_peer_id(peer);
                        }
                    }
                    CoreMsg::Closed { id } => {
                        if let Some(open) = core.sessions.get(&id) {
                            let peer = open.peer;
                            core.metrics.session("closed");
                            core.close(id);
                            if !core.sessions.values().any(|o| o.peer == peer) {
                                let _ = swarm.disconnect_peer_id(peer);
                            }
                        }
                    }
                    CoreMsg::NoStream { peer } => {
                        let _ = swarm.disconnect_peer_id(peer);
                    }
                    CoreMsg::Drained { id } => {
                        if let Some(open) = core.sessions.get_mut(&id)
                            && open.out.drain().is_err()
                        {
                            let peer = open.peer;
                            core.close(id);
                            let _ = swarm.disconnect_peer_id(peer);
                        }
                    }
                }
            }
        }
    }
    core.refresh();
    let _ = std::fs::remove_file(&api_file);
    Ok(())
}
/// What a stream's tasks share with the core.
struct Shared {
    wants_room: Arc<AtomicBool>,
    credit: Arc<tokio::sync::Semaphore>,
    verified: Arc<AtomicBool>,
}

fn spawn_stream(
    id: u64,
    stream: libp2p::Stream,
    mut out: mpsc::Receiver<Vec<u8>>,
    core: mpsc::Sender<CoreMsg>,
    shared: Shared,
) {
    let Shared {
        wants_room,
        credit,
        verified,
    } = shared;
    let (mut reader, mut writer) = stream.split();
    let drained = core.clone();
    tokio::spawn(async move {
        while let Some(frame) = out.recv().await {
            if wants_room.swap(false, Ordering::AcqRel) {
                // Never wait on the core from here: if its queue is full, the flag is set
                // again and the next frame tells it.
                if drained.try_send(CoreMsg::Drained { id }).is_err() {
                    wants_room.store(true, Ordering::Release);
                }
            }
            let Ok(len) = u32::try_from(frame.len()) else {
                break;
            };
            if writer.write_all(&len.to_be_bytes()).await.is_err()
                || writer.write_all(&frame).await.is_err()
            {
                break;
            }
            if writer.flush().await.is_err() {
                break;
            }
        }
        let _ = writer.close().await;
    });
    tokio::spawn(async move {
        loop {
            let mut len = [0u8; 4];
            if reader.read_exact(&mut len).await.is_err() {
                break;
            }
            let len = u32::from_be_bytes(len) as usize;
            // The length comes from the wire: check it before reading. Until the peer is
            // verified, let the core handle every earlier frame first: one of them may be
            // the `Hello` that verifies it.
            if !verified.load(Ordering::Acquire) {
                match credit.acquire_many(FRAMES_IN_FLIGHT as u32).await {
                    Ok(all) => drop(all),
                    Err(_) => return,
                }
            }
            let max = if verified.load(Ordering::Acquire) {
                MESSAGE_BYTES_MAX
            } else {
                UNVERIFIED_FRAME_MAX
            };
            if len > max {
                tracing::warn!(len, max, "oversized frame; closing the stream");
                break;
            }
            // Grow the buffer with what arrives, not with what the peer announced: a peer
            // that announces 1 MiB and sends a byte a second holds only what it sent.
            let mut bytes = Vec::new();
            match (&mut reader).take(len as u64).read_to_end(&mut bytes).await {
                Ok(n) if n == len => {}
                _ => break,
            }
            // Wait until the core has handled enough of this stream's earlier frames.
            match credit.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => return,
            }
            if core.send(CoreMsg::Frame { id, bytes }).await.is_err() {
                return;
            }
        }
        let _ = core.send(CoreMsg::Closed { id }).await;
    });
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

    fn outbox(capacity: usize) -> (Outbox, mpsc::Receiver<Vec<u8>>) {
        let (out, rx) = mpsc::channel(capacity);
        let outbox = Outbox {
            out,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            wants_room: Arc::new(AtomicBool::new(false)),
        };
        (outbox, rx)
    }

    #[test]
    fn a_peer_that_does_not_read_fills_a_bounded_backlog_and_never_blocks() {
        let (mut outbox, mut rx) = outbox(2);
        // Two frames fill the writer's queue; two more wait in the backlog, in order.
        for i in 0..4u8 {
            assert!(outbox.send(vec![i; 100], 250).is_ok());
        }
        assert_eq!(outbox.backlog_bytes, 200);
        assert!(outbox.wants_room.load(Ordering::Acquire));
        // Past the bound the session must go.
        assert!(matches!(
            outbox.send(vec![4; 100], 250),
            Err(Queue::Overflow)
        ));
        // The writer takes one; the backlog moves on in order.
        assert_eq!(rx.try_recv().unwrap()[0], 0);
        outbox.backlog.pop_back();
        outbox.backlog_bytes -= 100;
        outbox.drain().ok().unwrap();
        assert_eq!(outbox.backlog_bytes, 100);
        assert_eq!(rx.try_recv().unwrap()[0], 1);
        assert_eq!(rx.try_recv().unwrap()[0], 2);
        outbox.drain().ok().unwrap();
        assert_eq!(rx.try_recv().unwrap()[0], 3);
        assert_eq!(outbox.backlog_bytes, 0);
        // A stream whose writer is gone is closed.
        drop(rx);
        assert!(matches!(outbox.send(vec![5], 250), Err(Queue::Closed)));
    }
}
