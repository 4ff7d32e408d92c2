//! The host: everything a node does across its connections, as one sans-IO state machine.
//!
//! A [`sync::Session`] models one connection. The host holds a node's sessions and the
//! rules between them: which connections it takes (one key per certificate, at most
//! [`Config::sessions_per_peer`] sessions per peer), relaying what one session applied to
//! the others, closing the sessions of a peer a newer revocation list revokes and passing
//! the list on, dropping a peer that stopped answering, writing the office's quarantine
//! report when something was refused, and taking held changes whose time came. The daemon
//! (`node`) drives it over libp2p streams and the simulator (`sim`) over virtual links:
//! both run this code, and neither holds a rule of its own about sessions.
//!
//! # Driving contract
//!
//! The host does no IO, reads no clock and starts no threads; the driver owns the
//! transport, the store (in the [`Replica`] it passes to every input) and the time.
//!
//! 1. **Inputs.** Call [`Host::open`] when a connection is established (with the key the
//!    transport authenticated, and the protocol version it agreed), [`Host::frame`] for
//!    every frame received on it, [`Host::sent`] when a frame finished leaving on it,
//!    [`Host::closed`] when the transport lost it, [`Host::import`] with a bundle's bytes,
//!    [`Host::wrote`] with the changes the node made itself, [`Host::news`] after the node
//!    stored a newer revocation list, frontier or county settings, and
//!    [`Host::handle_timeout`] when the time [`Host::poll_timeout`] named has come.
//! 2. **Outputs.** After every input, drain [`Host::poll_transmit`] (frames to send on a
//!    connection, in order), [`Host::poll_close`] (connections to close, with the reason;
//!    the host has already forgotten them) and [`Host::poll_event`] (what the application
//!    shows or counts), then ask [`Host::poll_timeout`] again.
//! 3. A frame for a connection the host closed or never opened is ignored; so is a close
//!    of one it does not hold.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::cert::Certificate;
use crate::id::NodeId;
use crate::quarantine::{OwnRefused, Quarantined};
use crate::replica::{Replica, ReportError};
use crate::signed::{InOrder, Parallel};
use crate::store::{Store, StoredChange};
use crate::sync::{self, Session, SessionError, Stats};

/// Peers whose certificates a host remembers; past it, it forgets them all (each is sent
/// its certificates once more).
const PEERS_REMEMBERED_MAX: usize = 4_096;

/// The bounds and timers of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The bounds of each session.
    pub session: sync::Config,
    /// Sessions one peer may hold at a time; a further connection is refused.
    pub sessions_per_peer: usize,
    /// A session waiting for its peer (the handshake, a reconciliation, an acknowledgement)
    /// that hears nothing for this long is closed, so its peer is redialled.
    pub stall_ms: u64,
    /// How often held changes are retried, waiting ones expired, and a quarantine report
    /// that could not be written tried again.
    pub maintenance_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            session: sync::Config::default(),
            sessions_per_peer: 2,
            stall_ms: 120_000,
            maintenance_ms: 60_000,
        }
    }
}

/// A connection, as the host names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Who opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// This node dialled: it reconciles.
    Dialled,
    /// The peer dialled.
    Accepted,
}

/// Why the host closed a connection (or refused to open one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Close {
    /// The peer holds as many sessions as it may.
    #[error("the peer holds {0} sessions already")]
    Excess(usize),
    /// The transport's key is not a node key, or the peer's certificate is for another.
    #[error("the peer's certificate is not for the key it connected with")]
    Impostor,
    /// The session ended on an error: a refused message, certificate or change.
    #[error("{0}")]
    Refused(SessionError),
    /// The peer did not answer for [`Config::stall_ms`].
    #[error("no answer for {0} ms")]
    Stalled(u64),
    /// A revocation list held here revokes the peer's certificate.
    #[error("the peer's certificate is revoked")]
    Revoked,
}

impl Close {
    /// A short label, for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Close::Excess(_) => "excess",
            Close::Impostor | Close::Refused(SessionError::Impostor) => "impostor",
            Close::Refused(_) => "refused",
            Close::Stalled(_) => "stalled",
            Close::Revoked => "revoked",
        }
    }
}

/// What the host reports to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The peer on `conn` showed a valid certificate for its key.
    Peer {
        /// The connection.
        conn: ConnId,
        /// Its certificate.
        cert: Certificate,
    },
    /// The reconciliation on `conn` (dialled here) finished.
    Reconciled {
        /// The connection.
        conn: ConnId,
    },
    /// The peer on `conn`, which dialled this node, reconciled with it (this node
    /// answered).
    Answered {
        /// The connection.
        conn: ConnId,
    },
    /// The peer's clock is this far ahead of this node's (negative: behind).
    Clock {
        /// The connection.
        conn: ConnId,
        /// Milliseconds.
        skew_ms: i64,
    },
    /// Changes were applied here and passed on to the other sessions: received on `conn`,
    /// or (`None`) held changes whose time came.
    Received {
        /// Where they came from.
        conn: Option<ConnId>,
        /// The changes, in the order they were applied.
        changes: Vec<StoredChange>,
    },
    /// Changes were refused and kept aside (`dropped` more were not kept).
    Quarantined {
        /// Where they came from (`None`: held changes whose time came).
        conn: Option<ConnId>,
        /// The changes kept aside.
        changes: Vec<Quarantined>,
        /// Refused and not kept: their signer's quarantine is full.
        dropped: usize,
    },
    /// The office above refused changes this node signed: no more writes to those records.
    RefusedByPeer {
        /// The connection.
        conn: ConnId,
        /// What was refused.
        refused: Vec<OwnRefused>,
    },
    /// A newer revocation list was received and stored.
    Revocations(u64),
    /// A newer frontier of revoked keys was received and stored.
    Frontier(u64),
    /// Newer county settings were received and stored.
    Settings(u64),
    /// The office's quarantine report took what was refused here: these changes were
    /// written, stored and offered to every session.
    Reported(Vec<StoredChange>),
    /// The quarantine report could not be written; it is tried again at the next
    /// maintenance.
    ReportFailed(String),
    /// Changes that waited too long for their dependencies were forgotten.
    Expired(usize),
    /// The store failed: the driver should stop (what was acknowledged is stored).
    StoreFailed(String),
}

/// One open connection.
struct Conn {
    key: NodeId,
    session: Session,
    initiator: bool,
    /// When a frame last arrived or finished leaving (or the connection opened).
    heard_ms: u64,
}

impl Conn {
    /// Whether the session waits for something from its peer.
    fn expecting(&self) -> bool {
        !self.session.is_idle()
            || self.session.peer().is_none()
            || (self.initiator && !self.session.is_reconciled())
    }
}

/// A node's sessions. See the module documentation for the driving contract.
pub struct Host {
    config: Config,
    root: NodeId,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: u64,
    transmits: VecDeque<(ConnId, Vec<u8>)>,
    closes: VecDeque<(ConnId, Close)>,
    events: VecDeque<Event>,
    next_maintenance_ms: u64,
    /// Something was refused since the quarantine report was last written.
    report_due: bool,
    /// Writing the report failed: it is tried again at the next maintenance.
    report_retry: bool,
    /// Draws the ids of quarantine report entries.
    rng: Box<dyn rand_core::RngCore + Send>,
    /// Who checks signatures (`verifying_with`).
    parallel: std::sync::Arc<dyn Parallel>,
    /// Certificates (by short hash) each peer acknowledged in a session with this host:
    /// later sessions leave them out of their batches.
    peer_certs: BTreeMap<NodeId, BTreeSet<[u8; 8]>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("conns", &self.conns.len())
            .field("next_maintenance_ms", &self.next_maintenance_ms)
            .finish()
    }
}

/// What one session did, gathered while its events are drained.
#[derive(Default)]
struct Drained {
    received: Vec<StoredChange>,
    news: bool,
}

impl Host {
    /// A host for a node of the county whose root key is `root`. `rng` draws the ids of
    /// the entries this node writes into its quarantine report. The first maintenance is
    /// due at once: what waited across a restart is taken first.
    pub fn new(config: Config, root: NodeId, rng: Box<dyn rand_core::RngCore + Send>) -> Host {
        Host {
            config,
            root,
            conns: BTreeMap::new(),
            next_conn: 0,
            transmits: VecDeque::new(),
            closes: VecDeque::new(),
            events: VecDeque::new(),
            next_maintenance_ms: 0,
            report_due: true,
            report_retry: false,
            rng,
            parallel: std::sync::Arc::new(InOrder),
            peer_certs: BTreeMap::new(),
        }
    }

    /// Checks received batches' signatures in parts that `parallel` runs: the degree of
    /// parallelism is the driver's (by default none, [`InOrder`]).
    pub fn verifying_with(mut self, parallel: std::sync::Arc<dyn Parallel>) -> Host {
        self.parallel = parallel;
        self
    }

    /// The host's bounds.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A connection was established with the peer whose key the transport authenticated
    /// (`None`: a key no certificate can be for), speaking protocol `version`. Returns the
    /// connection's name, or why it is refused: the driver then drops it.
    pub fn open<S: Store>(
        &mut self,
        direction: Direction,
        peer_key: Option<NodeId>,
        version: u16,
        now_ms: u64,
        replica: &mut Replica<S>,
    ) -> Result<ConnId, Close> {
        let Some(key) = peer_key else {
            return Err(Close::Impostor);
        };
        let held = self.conns.values().filter(|c| c.key == key).count();
        if held >= self.config.sessions_per_peer {
            return Err(Close::Excess(held));
        }
        let initiator = direction == Direction::Dialled;
        let session = Session::new(
            self.config.session.clone(),
            self.root,
            replica.identity.clone(),
            initiator,
            &replica.store,
        )
        .map_err(Close::Refused)?
        .expecting(key, &replica.store)
        .speaking(version)
        .verifying_with(self.parallel.clone())
        .peer_holds(self.peer_certs.get(&key).cloned().unwrap_or_default());
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(
            conn,
            Conn {
                key,
                session,
                initiator,
                heard_ms: now_ms,
            },
        );
        // Nothing can be received before the hello: draining sends it.
        self.drain(conn);
        Ok(conn)
    }

    /// A frame arrived on `conn`.
    pub fn frame<S: Store>(
        &mut self,
        conn: ConnId,
        bytes: &[u8],
        now_ms: u64,
        replica: &mut Replica<S>,
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.heard_ms = now_ms;
        if let Err(e) = c.session.handle(bytes, &mut replica.store, now_ms) {
            // What the session reported before the error (a verified peer, changes
            // applied from an earlier batch) still counts.
            let drained = self.drain(conn);
            self.remove(conn, Close::Refused(e));
            self.after(Some(conn), drained, now_ms, replica);
            return;
        }
        let drained = self.drain(conn);
        self.after(Some(conn), drained, now_ms, replica);
    }

    /// A frame of `conn` finished leaving this node. A peer cannot answer what it has not
    /// received, so its stall clock starts again here: a large batch on a slow link does not
    /// count against it.
    pub fn sent(&mut self, conn: ConnId, now_ms: u64) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.heard_ms = c.heard_ms.max(now_ms);
        }
    }

    /// The transport lost `conn` (or the driver dropped it: a peer that does not read).
    pub fn closed(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            self.learn_certs(&c, true);
        }
    }

    /// The node wrote these changes itself (stored already): they are offered to every
    /// session whose peer may read them.
    pub fn wrote<S: Store>(&mut self, changes: &[StoredChange], replica: &mut Replica<S>) {
        self.relay(changes, None, replica);
    }

    /// The node stored a newer revocation list, frontier of revoked keys or county
    /// settings (from the county's operator): the sessions of peers it revokes close, and
    /// every other peer is given it.
    pub fn news<S: Store>(&mut self, now_ms: u64, replica: &mut Replica<S>) {
        self.sweep(now_ms, replica);
    }

    /// Takes in a bundle's bytes (`bundle::accept`), as a session takes a batch: what it
    /// applied goes to every session, what it refused to the office's quarantine report, and
    /// a newer revocation list or frontier to the sweep. A refused bundle changes nothing.
    pub fn import<S: Store>(
        &mut self,
        bytes: &[u8],
        now_ms: u64,
        replica: &mut Replica<S>,
    ) -> Result<crate::bundle::Imported, crate::bundle::BundleError> {
        let me = replica.identity.cert.clone();
        let accepted = crate::bundle::accept(
            bytes,
            &self.root,
            &me,
            &mut replica.store,
            now_ms,
            &*self.parallel,
        )?;
        let ingested = accepted.ingested;
        if !ingested.applied.is_empty() {
            self.relay(&ingested.applied, None, replica);
            self.events.push_back(Event::Received {
                conn: None,
                changes: ingested.applied,
            });
        }
        if !ingested.quarantined.is_empty() || ingested.dropped > 0 {
            self.report_due |= !ingested.quarantined.is_empty();
            self.events.push_back(Event::Quarantined {
                conn: None,
                changes: ingested.quarantined,
                dropped: ingested.dropped,
            });
        }
        let store = &replica.store;
        if accepted.newer_revocations
            && let Ok(Some(list)) = store.revocations()
        {
            self.events.push_back(Event::Revocations(list.body.version));
        }
        if accepted.newer_frontier
            && let Ok(Some(frontier)) = store.frontier()
        {
            self.events
                .push_back(Event::Frontier(frontier.body.version));
        }
        if accepted.newer_revocations || accepted.newer_frontier {
            self.sweep(now_ms, replica);
        }
        self.report(now_ms, replica);
        Ok(accepted.imported)
    }

    /// Forgets every connection (the node cannot store anything, say) and returns them, for
    /// the driver to close; they are not queued in [`Host::poll_close`].
    pub fn close_all(&mut self) -> Vec<ConnId> {
        let all: Vec<ConnId> = self.conns.keys().copied().collect();
        self.conns.clear();
        all
    }

    /// The time named by [`Host::poll_timeout`] came (or any later time): stalled
    /// sessions close, and maintenance runs when it is due.
    pub fn handle_timeout<S: Store>(&mut self, now_ms: u64, replica: &mut Replica<S>) {
        let stall = self.config.stall_ms;
        let stalled: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.expecting() && now_ms.saturating_sub(c.heard_ms) >= stall)
            .map(|(id, _)| *id)
            .collect();
        for conn in stalled {
            self.remove(conn, Close::Stalled(stall));
        }
        if now_ms >= self.next_maintenance_ms {
            self.next_maintenance_ms = now_ms.saturating_add(self.config.maintenance_ms.max(1));
            self.maintain(now_ms, replica);
        }
    }

    /// When [`Host::handle_timeout`] is next due: the earliest stall deadline of a session
    /// that waits for its peer, or the next maintenance.
    pub fn poll_timeout(&self) -> u64 {
        let stall = self.config.stall_ms;
        self.conns
            .values()
            .filter(|c| c.expecting())
            .map(|c| c.heard_ms.saturating_add(stall))
            .fold(self.next_maintenance_ms, u64::min)
    }

    /// The next frame to send, and its connection.
    pub fn poll_transmit(&mut self) -> Option<(ConnId, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// The next connection to close, and why. The host holds it no more.
    pub fn poll_close(&mut self) -> Option<(ConnId, Close)> {
        self.closes.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The open connections.
    pub fn conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.conns.keys().copied()
    }

    /// The session on `conn`: its peer, counters, state.
    pub fn session(&self, conn: ConnId) -> Option<&Session> {
        self.conns.get(&conn).map(|c| &c.session)
    }

    /// The key `conn`'s peer connected with.
    pub fn peer_key(&self, conn: ConnId) -> Option<NodeId> {
        self.conns.get(&conn).map(|c| c.key)
    }

    /// The counters of `conn`'s session.
    pub fn stats(&self, conn: ConnId) -> Option<Stats> {
        self.conns.get(&conn).map(|c| c.session.stats())
    }

    /// Whether `conn` waits for its peer (and so may stall).
    pub fn is_expecting(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(Conn::expecting)
    }

    fn remove(&mut self, conn: ConnId, why: Close) {
        if let Some(c) = self.conns.remove(&conn) {
            self.learn_certs(&c, !matches!(why, Close::Refused(_)));
            self.closes.push_back((conn, why));
        }
    }

    /// Keeps what an ended session learnt of the certificates its peer holds, if it ended
    /// well: idle, and not refused. Otherwise the peer may have refused a batch for a
    /// certificate it lost, so what was known of it is forgotten, and the next session
    /// sends every certificate again.
    fn learn_certs(&mut self, c: &Conn, well: bool) {
        if !(well && c.session.is_idle()) {
            self.peer_certs.remove(&c.key);
            return;
        }
        let known = c.session.peer_certs();
        if !known.is_empty() {
            if self.peer_certs.len() >= PEERS_REMEMBERED_MAX
                && !self.peer_certs.contains_key(&c.key)
            {
                // More peers than a county has offices: start again rather than grow.
                self.peer_certs.clear();
            }
            self.peer_certs
                .entry(c.key)
                .or_default()
                .extend(known.iter().copied());
        }
    }

    /// Moves a session's messages to the transmit queue and its events to the host's.
    fn drain(&mut self, conn: ConnId) -> Drained {
        let mut out = Drained::default();
        let Some(c) = self.conns.get_mut(&conn) else {
            return out;
        };
        while let Some(bytes) = c.session.poll_transmit() {
            self.transmits.push_back((conn, bytes));
        }
        while let Some(event) = c.session.poll_event() {
            match event {
                sync::Event::Peer(cert) => self.events.push_back(Event::Peer { conn, cert }),
                sync::Event::Reconciled => self.events.push_back(Event::Reconciled { conn }),
                sync::Event::Answered => self.events.push_back(Event::Answered { conn }),
                sync::Event::Clock(skew_ms) => {
                    self.events.push_back(Event::Clock { conn, skew_ms });
                }
                sync::Event::Received(changes) => {
                    out.received.extend(changes.iter().cloned());
                    self.events.push_back(Event::Received {
                        conn: Some(conn),
                        changes,
                    });
                }
                sync::Event::Quarantined { changes, dropped } => {
                    self.report_due |= !changes.is_empty();
                    self.events.push_back(Event::Quarantined {
                        conn: Some(conn),
                        changes,
                        dropped,
                    });
                }
                sync::Event::RefusedByPeer(refused) => {
                    self.events
                        .push_back(Event::RefusedByPeer { conn, refused });
                }
                sync::Event::Revocations(v) => {
                    out.news = true;
                    self.events.push_back(Event::Revocations(v));
                }
                sync::Event::Frontier(v) => {
                    out.news = true;
                    self.events.push_back(Event::Frontier(v));
                }
                sync::Event::Settings(v) => {
                    out.news = true;
                    self.events.push_back(Event::Settings(v));
                }
            }
        }
        out
    }

    /// What follows a session's input: what it applied goes to the other sessions, news
    /// from the county is acted on, and what was refused is reported.
    fn after<S: Store>(
        &mut self,
        from: Option<ConnId>,
        drained: Drained,
        now_ms: u64,
        replica: &mut Replica<S>,
    ) {
        if !drained.received.is_empty() {
            self.relay(&drained.received, from, replica);
        }
        if drained.news {
            self.sweep(now_ms, replica);
        }
        self.report(now_ms, replica);
    }

    /// Offers changes new here to every session but `except`'s (where they came from).
    fn relay<S: Store>(
        &mut self,
        changes: &[StoredChange],
        except: Option<ConnId>,
        replica: &mut Replica<S>,
    ) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in ids {
            if Some(conn) == except {
                continue;
            }
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            if let Err(e) = c.session.offer(changes, &replica.store) {
                self.remove(conn, Close::Refused(e));
                continue;
            }
            // An offer only sends: it reports nothing to act on.
            let _ = self.drain(conn);
        }
    }

    /// Closes the sessions of peers the held revocation list revokes at `now_ms`, and
    /// gives the list, the frontier and the settings to every other peer (each keeps only
    /// what is newer than its own).
    fn sweep<S: Store>(&mut self, now_ms: u64, replica: &mut Replica<S>) {
        let store = &replica.store;
        let list = store.revocations().ok().flatten();
        let frontier = store.frontier().ok().flatten();
        let settings = store.settings().ok().flatten();
        if let Some(list) = &list {
            let revoked: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, c)| {
                    c.session
                        .peer()
                        .is_some_and(|cert| cert.valid_at(now_ms, &list.body).is_err())
                })
                .map(|(id, _)| *id)
                .collect();
            for conn in revoked {
                self.remove(conn, Close::Revoked);
            }
        }
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in ids {
            if let Some(c) = self.conns.get_mut(&conn) {
                if let Some(list) = &list {
                    c.session.offer_revocations(list);
                }
                if let Some(f) = &frontier {
                    c.session.offer_frontier(f);
                }
                if let Some(s) = &settings {
                    c.session.offer_settings(s);
                }
            }
            let _ = self.drain(conn);
        }
    }

    /// Writes what was refused here into the office's quarantine report
    /// (`Replica::report_quarantined`), when something was, and offers the report's new
    /// changes to every session.
    fn report<S: Store>(&mut self, now_ms: u64, replica: &mut Replica<S>) {
        if !std::mem::take(&mut self.report_due) {
            return;
        }
        match replica.report_quarantined(now_ms, &mut *self.rng) {
            Ok(changes) if changes.is_empty() => {}
            Ok(changes) => {
                self.relay(&changes, None, replica);
                self.events.push_back(Event::Reported(changes));
            }
            Err(ReportError::Store(e)) => self.events.push_back(Event::StoreFailed(e.to_string())),
            Err(e) => {
                self.report_retry = true;
                self.events.push_back(Event::ReportFailed(e.to_string()));
            }
        }
    }

    /// Takes the held changes whose time came (`ingest::retry_held`) and passes on what
    /// they applied; forgets changes that waited too long (`ingest::expire`); writes the
    /// quarantine report if something is left to report.
    fn maintain<S: Store>(&mut self, now_ms: u64, replica: &mut Replica<S>) {
        match crate::ingest::retry_held_with(&mut replica.store, now_ms, &*self.parallel) {
            Ok(done) => {
                if !done.applied.is_empty() {
                    self.relay(&done.applied, None, replica);
                    self.events.push_back(Event::Received {
                        conn: None,
                        changes: done.applied,
                    });
                }
                if !done.quarantined.is_empty() || done.dropped > 0 {
                    self.report_due |= !done.quarantined.is_empty();
                    self.events.push_back(Event::Quarantined {
                        conn: None,
                        changes: done.quarantined,
                        dropped: done.dropped,
                    });
                }
            }
            Err(e) => self.events.push_back(Event::StoreFailed(e.to_string())),
        }
        match crate::ingest::expire(&mut replica.store, now_ms) {
            Ok(0) => {}
            Ok(n) => self.events.push_back(Event::Expired(n)),
            Err(e) => self.events.push_back(Event::StoreFailed(e.to_string())),
        }
        // What is quarantined and not yet reported is found again by reading the store,
        // so a report that failed is simply written again.
        self.report_due |= std::mem::take(&mut self.report_retry);
        self.report(now_ms, replica);
    }
}

/// What [`loopback`] moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loopback {
    /// The dialler's session counters.
    pub a: Stats,
    /// The other side's.
    pub b: Stats,
    /// Flights: each delivers everything one side had queued, both ways.
    pub flights: u32,
    /// Frames delivered.
    pub delivered: usize,
    /// The frames `a` sent, in order, and those `b` sent.
    pub sent_a: Vec<Vec<u8>>,
    /// The frames `b` sent.
    pub sent_b: Vec<Vec<u8>>,
}

/// Flights [`loopback`] runs at most, so that a protocol bug cannot loop forever.
pub const LOOPBACK_FLIGHTS_MAX: u32 = 10_000;

/// Connects two replicas through two fresh hosts over a lossless in-memory wire, `a`
/// dialling, at a fixed time, until both are quiet or `deliver_max` frames were delivered
/// (the wire then drops: what is in flight is lost). For tests, benchmarks and fuzzing:
/// the same host steps as the daemon and the simulator, with nothing of a transport.
/// A close by either host ends it with the reason.
pub fn loopback<SA: Store, SB: Store>(
    config: &Config,
    root: NodeId,
    a: &mut Replica<SA>,
    b: &mut Replica<SB>,
    now_ms: u64,
    deliver_max: usize,
) -> Result<Loopback, Close> {
    fn out(host: &mut Host, side: &mut Stats, conn: ConnId) -> Result<Vec<Vec<u8>>, Close> {
        while host.poll_event().is_some() {}
        if let Some(stats) = host.stats(conn) {
            *side = stats;
        }
        if let Some((_, why)) = host.poll_close() {
            return Err(why);
        }
        Ok(std::iter::from_fn(|| host.poll_transmit().map(|(_, m)| m)).collect())
    }
    let seeded = |seed: u64| -> Box<dyn rand_core::RngCore + Send> { Box::new(Seeded(seed)) };
    let mut ha = Host::new(config.clone(), root, seeded(1));
    let mut hb = Host::new(config.clone(), root, seeded(2));
    let (ka, kb) = (a.identity.key.public(), b.identity.key.public());
    let version = crate::wire::PROTOCOL_VERSION;
    let ca = ha.open(Direction::Dialled, Some(kb), version, now_ms, a)?;
    let cb = hb.open(Direction::Accepted, Some(ka), version, now_ms, b)?;
    let mut run = Loopback::default();
    let mut to_b = out(&mut ha, &mut run.a, ca)?;
    let mut to_a = out(&mut hb, &mut run.b, cb)?;
    while run.flights < LOOPBACK_FLIGHTS_MAX {
        if to_b.is_empty() && to_a.is_empty() {
            return Ok(run);
        }
        run.flights += 1;
        let (mut next_b, mut next_a) = (Vec::new(), Vec::new());
        for m in std::mem::take(&mut to_b) {
            if run.delivered >= deliver_max {
                return Ok(run);
            }
            run.delivered += 1;
            hb.frame(cb, &m, now_ms, b);
            run.sent_a.push(m);
            next_a.extend(out(&mut hb, &mut run.b, cb)?);
        }
        for m in std::mem::take(&mut to_a) {
            if run.delivered >= deliver_max {
                return Ok(run);
            }
            run.delivered += 1;
            ha.frame(ca, &m, now_ms, a);
            run.sent_b.push(m);
            next_b.extend(out(&mut ha, &mut run.a, ca)?);
        }
        to_a = next_a;
        to_b = next_b;
    }
    Err(Close::Refused(SessionError::Bound("loopback flights")))
}

/// A small deterministic generator (splitmix64) for the quarantine report ids a loopback's
/// hosts draw.
struct Seeded(u64);

impl rand_core::RngCore for Seeded {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or(&[]));
        }
    }
}
