//! A sync session: one per connection between two nodes.
//!
//! 1. Both sides send `Hello` (protocol version, certificate, revocation list version) and
//!    verify the other's certificate against the county root and the newest revocation
//!    list; the side with the newer list passes it on. From version 4 the responder waits
//!    for the dialler's hello and answers in kind: a dialler that completed a session with
//!    this peer before sends `HelloKnown`, naming its certificate by a short hash, since
//!    the peer holds it. A side that does not hold the named certificate answers
//!    `CertWanted` and drops what comes before the whole `Hello`; the other side sends it,
//!    and everything it had sent after its hello again.
//! 2. The scope is the set of records both may read. Nothing outside it is sent or even
//!    announced: the reconciliation only ever covers keys inside it.
//! 3. The initiator (the side that dialled) runs negentropy range-based set reconciliation
//!    over the change keys `(time, hash)` in scope. It learns which changes it has that the
//!    peer lacks (it sends them) and which the peer has that it lacks (it asks with `Want`).
//! 4. Changes travel in batches bounded in bytes, in causal order per record, with the
//!    certificates of their signers. The receiver verifies the whole batch, stores it
//!    durably, applies what it can under the change rules (`rules`) and acknowledges. A
//!    change that is not a change, or whose signature does not verify, refuses the batch
//!    and ends the session, and nothing of it is stored. A validly signed change that its
//!    signer may not write or that breaks the rules is quarantined (`quarantine`): kept
//!    aside, never applied or passed on, while the rest of the batch and the session go on.
//!    At most `in_flight_max` batches are unacknowledged at a time.
//! 5. While connected, new changes (made here, or received from another peer and applied)
//!    are pushed with [`Session::offer`].
//!
//! A session can break at any point. Nothing depends on it finishing: the next session
//! reconciles again, so a broken session costs at most its unacknowledged batches.
//!
//! # Driving contract
//!
//! The session does no IO. After creating it and after every call to [`Session::handle`]
//! or [`Session::offer`], drain [`Session::poll_transmit`] (messages to send, in order) and
//! [`Session::poll_event`] until both return `None`. An error from `handle` ends the
//! session: drop it and close the connection.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use automerge::ChangeHash;
use negentropy::{Id, Negentropy, NegentropyStorageVector};

use crate::cert::{CertError, Certificate, Identity, RevocationList};
use crate::division::Division;
use crate::id::NodeId;
use crate::ingest::ingest;
use crate::quarantine::{OwnRefused, Quarantined};
use crate::signed::{InOrder, Parallel, VerifyError, verify_batch_with};
use crate::store::{Store, StoreCerts, StoredChange};
use crate::wire::{MESSAGE_BYTES_MAX, Message, PROTOCOL_VERSION, REFUSALS_MAX, Refusal, WireError};

/// The bounds of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest negentropy frame, in bytes (0 for no limit, else at least 4,096).
    pub frame_bytes_max: u64,
    /// Largest batch of changes, in bytes of change data.
    pub batch_bytes_max: usize,
    /// Batches sent and not yet acknowledged.
    pub in_flight_max: usize,
    /// Hashes in one `Want`.
    pub want_max: usize,
    /// Changes waiting to be sent on this session; offers beyond are dropped (the next
    /// reconciliation finds them).
    pub queue_max: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            frame_bytes_max: 64 * 1024,
            batch_bytes_max: 256 * 1024,
            in_flight_max: 4,
            want_max: 8 * 1024,
            queue_max: 1_000_000,
        }
    }
}

/// What a session reports to its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The peer's certificate verified; the scope is set.
    Peer(Certificate),
    /// A newer revocation list was received, verified and stored.
    Revocations(u64),
    /// A newer frontier of revoked keys was received, verified and stored.
    Frontier(u64),
    /// The peer greeted: its clock is this many milliseconds ahead of this node's
    /// (negative: behind), as far as one message's travel allows to tell.
    Clock(i64),
    /// Received changes were applied to their records (new ones, and ones that had waited
    /// for them): what the driver passes on to its other sessions. Changes stored to wait
    /// for their dependencies are not in it until they are applied.
    Received(Vec<StoredChange>),
    /// Received changes were refused and kept aside (`quarantine`); the session goes on.
    /// `dropped` more were refused and not kept, their signer's quarantine being full.
    Quarantined {
        /// The changes kept aside.
        changes: Vec<Quarantined>,
        /// Refused and not kept.
        dropped: usize,
    },
    /// The initiator finished reconciling: everything either side lacked is asked for or
    /// queued.
    Reconciled,
    /// This node, which the peer dialled, answered the peer's reconciliation: the link
    /// synced, seen from the side that accepted it. Once per session.
    Answered,
    /// Newer county settings were received, verified and stored.
    Settings(u64),
    /// The peer, an office above this node, refused changes this node signed: stored
    /// (`Store::put_own_refused`), so this node writes no more to those records.
    RefusedByPeer(Vec<OwnRefused>),
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// A message could not be decoded.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The peer speaks another protocol version.
    #[error("peer speaks protocol version {0}, this node {PROTOCOL_VERSION}")]
    Version(u16),
    /// A message came before `Hello`, or a second `Hello`.
    #[error("unexpected {0} message")]
    Unexpected(&'static str),
    /// The peer's certificate or revocation list was refused.
    #[error("peer certificate: {0}")]
    Certificate(#[from] CertError),
    /// A received change was refused; nothing of its batch was stored.
    #[error("refused change: {0}")]
    Change(#[from] VerifyError),
    /// The peer sent or asked for something outside the scope.
    #[error("out of scope: {0}")]
    Scope(String),
    /// The reconciliation failed.
    #[error("reconciliation: {0}")]
    Reconcile(String),
    /// A bound was exceeded.
    #[error("bound exceeded: {0}")]
    Bound(&'static str),
    /// The peer's certificate is not for the key the transport authenticated.
    #[error("the peer's certificate is for another key than the one it connected with")]
    Impostor,
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
}

fn store_err<E: std::error::Error>(e: E) -> SessionError {
    SessionError::Store(e.to_string())
}

/// Bytes and messages a session moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes sent.
    pub bytes_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Messages sent.
    pub messages_out: u64,
    /// Messages received.
    pub messages_in: u64,
    /// Changes sent.
    pub changes_out: u64,
    /// Changes received (new or not).
    pub changes_in: u64,
}

/// One sync session. See the module documentation for the protocol and the driving
/// contract.
pub struct Session {
    config: Config,
    root: NodeId,
    me: Identity,
    initiator: bool,
    /// The protocol version this connection speaks (see `wire::PROTOCOL_VERSION`).
    version: u16,
    /// The key the transport authenticated the peer with, when the driver knows it.
    peer_key: Option<NodeId>,
    /// How far the peer's clock was ahead of ours when it greeted (version 2).
    skew_ms: Option<i64>,
    peer: Option<Certificate>,
    negentropy: Option<Negentropy<'static, NegentropyStorageVector>>,
    outbox: VecDeque<Message>,
    events: VecDeque<Event>,
    queue: VecDeque<ChangeHash>,
    /// Changes queued or sent in this session, or received from this peer: never sent
    /// (again).
    /// Changes this node signed that this session sent: the only ones a `Refused` from
    /// the peer may name.
    sent_own: BTreeSet<ChangeHash>,
    known: BTreeSet<ChangeHash>,
    certs_sent: BTreeSet<NodeId>,
    /// Certificates (by short hash) the peer is known to hold: acknowledged in an earlier
    /// session (`peer_holds`), or in this one. They are not sent again.
    peer_certs: BTreeSet<[u8; 8]>,
    /// The certificates each unacknowledged batch carried.
    batch_certs: BTreeMap<u64, Vec<[u8; 8]>>,
    next_batch: u64,
    in_flight: BTreeSet<u64>,
    reconciled: bool,
    /// The responder answered a reconciliation (`Event::Answered` was raised).
    answered: bool,
    /// The initiator's watermark for this peer, when the tail alone is reconciled.
    tail_from: Option<u64>,
    /// The latest key time in scope when the session started (initiator).
    scope_max_ms: u64,
    /// Changes asked for with `Want` and not yet received.
    wants: BTreeSet<ChangeHash>,
    watermark_saved: bool,
    stats: Stats,
    /// Whether this side's hello is queued or sent. The responder of a version 4 session
    /// answers the initiator's hello in kind, so it waits for it.
    hello_sent: bool,
    /// This side named its certificate by its short hash (`HelloKnown`).
    sent_known: bool,
    /// This side sent its whole certificate after the peer asked (`CertWanted`).
    resent_whole: bool,
    /// The peer holds this side's certificate (it said so with `HelloKnown`).
    peer_knows_me: bool,
    /// This side asked for the peer's certificate: everything before it is dropped.
    awaiting_cert: bool,
    /// Messages dropped while awaiting it.
    dropped: usize,
    /// The revocation list version the peer said it holds.
    their_revocations: u64,
    /// The revocation list version this side held when the session began.
    my_revocations: u64,
    /// Who checks received batches' signatures (`verifying_with`).
    parallel: std::sync::Arc<dyn Parallel>,
}

/// Messages dropped while waiting for a peer's whole certificate, beyond which the session
/// ends (the peer re-sends what it sent in the meantime).
const DROPPED_MAX: usize = 64;

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("me", &self.me.cert.node())
            .field("peer", &self.peer.as_ref().map(Certificate::node))
            .field("initiator", &self.initiator)
            .field("queue", &self.queue.len())
            .field("in_flight", &self.in_flight.len())
            .field("reconciled", &self.reconciled)
            .finish()
    }
}

impl Session {
    /// A new session; `initiator` is the side that dialled. Queues `Hello`.
    pub fn new<S: Store>(
        config: Config,
        root: NodeId,
        me: Identity,
        initiator: bool,
        store: &S,
    ) -> Result<Session, SessionError> {
        let revocations = store
            .revocations()
            .map_err(store_err)?
            .map_or(0, |l| l.body.version);
        let mut session = Session {
            config,
            root,
            me,
            initiator,
            version: PROTOCOL_VERSION,
            peer_key: None,
            skew_ms: None,
            peer: None,
            negentropy: None,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            queue: VecDeque::new(),
            sent_own: BTreeSet::new(),
            known: BTreeSet::new(),
            certs_sent: BTreeSet::new(),
            peer_certs: BTreeSet::new(),
            batch_certs: BTreeMap::new(),
            next_batch: 0,
            in_flight: BTreeSet::new(),
            reconciled: false,
            answered: false,
            tail_from: None,
            scope_max_ms: 0,
            wants: BTreeSet::new(),
            watermark_saved: false,
            stats: Stats::default(),
            hello_sent: false,
            sent_known: false,
            resent_whole: false,
            peer_knows_me: false,
            awaiting_cert: false,
            dropped: 0,
            their_revocations: 0,
            my_revocations: revocations,
            parallel: std::sync::Arc::new(InOrder),
        };
        // The responder answers the initiator's hello in kind (version 4; `speaking` queues
        // it at once for an older version).
        if initiator {
            session.outbox.push_back(Message::Hello {
                version: PROTOCOL_VERSION,
                cert: session.me.cert.clone(),
                revocations,
            });
            session.hello_sent = true;
        }
        Ok(session)
    }

    /// Speaks an older protocol version (see `wire::OLDEST_PROTOCOL_VERSION`), as the
    /// transport agreed with a peer that has not been upgraded. Set it before anything is
    /// sent.
    pub fn speaking(mut self, version: u16) -> Session {
        self.version = version;
        for m in std::mem::take(&mut self.outbox) {
            let m = match m {
                Message::Hello { revocations, .. } => self.whole_hello(revocations),
                Message::HelloKnown {
                    cert, revocations, ..
                } if version >= 4 => Message::HelloKnown {
                    version,
                    cert,
                    revocations,
                },
                Message::HelloKnown { revocations, .. } => {
                    self.sent_known = false;
                    self.whole_hello(revocations)
                }
                m => m,
            };
            self.outbox.push_back(m);
        }
        if version < 4 && !self.hello_sent {
            // Before version 4 both sides send their hello at once.
            self.outbox
                .push_front(self.whole_hello(self.my_revocations));
            self.hello_sent = true;
        }
        self
    }

    /// This side's hello with its whole certificate.
    fn whole_hello(&self, revocations: u64) -> Message {
        Message::Hello {
            version: self.version,
            cert: self.me.cert.clone(),
            revocations,
        }
    }

    /// Checks received batches' signatures in parts that `parallel` runs (by default in
    /// order, on the caller's thread): the driver chooses the threads.
    pub fn verifying_with(mut self, parallel: std::sync::Arc<dyn Parallel>) -> Session {
        self.parallel = parallel;
        self
    }

    /// The protocol version this session speaks.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// How far the peer's clock was ahead of this node's (negative: behind) when it
    /// greeted, in milliseconds; `None` before that, or with a peer of version 1.
    pub fn skew_ms(&self) -> Option<i64> {
        self.skew_ms
    }

    /// The key the transport authenticated the peer with (its libp2p identity): the
    /// peer's certificate must be for it, and nothing derived from the store is sent
    /// before that is checked. Set it before handling the first message.
    ///
    /// An initiator that completed a session with this peer before (it holds a watermark
    /// for it) names its certificate by its short hash instead of sending it
    /// (`HelloKnown`, version 4); a peer that has lost it asks for it.
    pub fn expecting<S: Store>(mut self, key: NodeId, store: &S) -> Session {
        self.peer_key = Some(key);
        let met = store.watermark(&key).ok().flatten().is_some();
        if self.initiator && self.version >= 4 && met {
            for m in &mut self.outbox {
                if let Message::Hello {
                    version,
                    cert,
                    revocations,
                } = m
                {
                    *m = Message::HelloKnown {
                        version: *version,
                        cert: cert.short_hash(),
                        revocations: *revocations,
                    };
                    self.sent_known = true;
                }
            }
        }
        self
    }

    /// Certificates (by `Certificate::short_hash`) the peer acknowledged in an earlier
    /// session with this node: batches leave them out. A peer that has lost one refuses a
    /// batch for an unknown signer; the driver then forgets what it knew of the peer, and
    /// the next session sends them all.
    pub fn peer_holds(mut self, certs: BTreeSet<[u8; 8]>) -> Session {
        self.peer_certs = certs;
        self
    }

    /// The certificates (by short hash) the peer is known to hold: those it held before,
    /// and those it acknowledged in this session.
    pub fn peer_certs(&self) -> &BTreeSet<[u8; 8]> {
        &self.peer_certs
    }

    /// The peer's certificate, once verified.
    pub fn peer(&self) -> Option<&Certificate> {
        self.peer.as_ref()
    }

    /// Whether the initial reconciliation finished (initiator side).
    pub fn is_reconciled(&self) -> bool {
        self.reconciled
    }

    /// Whether nothing is queued, unsent or unacknowledged.
    pub fn is_idle(&self) -> bool {
        self.outbox.is_empty() && self.queue.is_empty() && self.in_flight.is_empty()
    }

    /// Bytes and messages so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The next message to send, encoded.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        while let Some(message) = self.outbox.pop_front() {
            // Messages are built within the bounds, so encoding cannot fail; a message that
            // somehow did is dropped rather than sent half.
            if let Ok(bytes) = message.encode() {
                self.stats.bytes_out += bytes.len() as u64;
                self.stats.messages_out += 1;
                return Some(bytes);
            }
        }
        None
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Handles one received message.
    pub fn handle<S: Store>(
        &mut self,
        bytes: &[u8],
        store: &mut S,
        now_ms: u64,
    ) -> Result<(), SessionError> {
        self.stats.bytes_in += bytes.len() as u64;
        self.stats.messages_in += 1;
        let message = Message::decode(bytes)?;
        if self.awaiting_cert && !matches!(message, Message::Hello { .. }) {
            // Sent before the peer learnt that this side lacks its certificate: it sends
            // them again after it.
            self.dropped += 1;
            if self.dropped > DROPPED_MAX {
                return Err(SessionError::Bound("messages before the certificate"));
            }
            return Ok(());
        }
        match message {
            Message::Hello {
                version,
                cert,
                revocations,
            } => {
                self.awaiting_cert = false;
                self.on_hello(version, cert, false, revocations, store, now_ms)?
            }
            Message::HelloKnown {
                version,
                cert,
                revocations,
            } => {
                if self.version < 4 {
                    return Err(SessionError::Unexpected("hello known"));
                }
                if self.peer.is_some() || self.awaiting_cert {
                    return Err(SessionError::Unexpected("second hello"));
                }
                if version != self.version {
                    return Err(SessionError::Version(version));
                }
                // Only the initiator names its certificate, and only to a peer it met.
                if !self.initiator {
                    self.peer_knows_me = true;
                }
                let found = match self.peer_key {
                    Some(key) => store
                        .certificates_of(&key)
                        .map_err(store_err)?
                        .into_iter()
                        .find(|c| c.short_hash() == cert),
                    None => None,
                };
                match found {
                    // Checked against the root when it was stored (every way into the
                    // store checks it first); its dates and revocation are checked below.
                    Some(found) => {
                        self.on_hello(version, found, true, revocations, store, now_ms)?
                    }
                    None => {
                        self.awaiting_cert = true;
                        self.outbox.push_back(Message::CertWanted);
                    }
                }
            }
            Message::CertWanted => {
                if self.version < 4 || !self.sent_known || self.resent_whole {
                    return Err(SessionError::Unexpected("cert wanted"));
                }
                self.resent_whole = true;
                self.outbox.push_back(self.whole_hello(self.my_revocations));
                // A peer that lost this node's certificate may have lost others.
                self.peer_certs.clear();
                if self.peer.is_some() {
                    // The peer dropped everything sent after the hello: nothing of it was
                    // received, so it is all sent again.
                    self.queue.clear();
                    self.in_flight.clear();
                    self.known.clear();
                    self.certs_sent.clear();
                    self.batch_certs.clear();
                    self.sent_own.clear();
                    self.announce(store, now_ms)?;
                }
            }
            Message::Revocations(list) => {
                self.require_peer("revocations")?;
                list.verify(&self.root)?;
                let ours = store.revocations().map_err(store_err)?;
                if ours
                    .as_ref()
                    .is_none_or(|o| o.body.version < list.body.version)
                {
                    store.put_revocations(&list).map_err(store_err)?;
                    self.events.push_back(Event::Revocations(list.body.version));
                    if let Some(peer) = &self.peer {
                        peer.valid_at(now_ms, &list.body)?;
                    }
                }
            }
            Message::Greeting { clock_ms, frontier } => {
                self.require_peer("greeting")?;
                if self.version < 2 || self.skew_ms.is_some() {
                    return Err(SessionError::Unexpected("greeting"));
                }
                let skew = i128::from(clock_ms) - i128::from(now_ms);
                let skew =
                    i64::try_from(skew).unwrap_or(if skew < 0 { i64::MIN } else { i64::MAX });
                self.skew_ms = Some(skew);
                self.events.push_back(Event::Clock(skew));
                if let Some(ours) = store.frontier().map_err(store_err)?
                    && ours.body.version > frontier
                {
                    self.outbox.push_back(Message::Frontier(ours));
                }
            }
            Message::Frontier(frontier) => {
                self.require_peer("frontier")?;
                if self.version < 2 {
                    return Err(SessionError::Unexpected("frontier"));
                }
                frontier.verify(&self.root)?;
                let ours = store.frontier().map_err(store_err)?;
                if ours
                    .as_ref()
                    .is_none_or(|o| o.body.version < frontier.body.version)
                {
                    store.put_frontier(&frontier).map_err(store_err)?;
                    self.events
                        .push_back(Event::Frontier(frontier.body.version));
                }
            }
            Message::Refused(list) => self.on_refused(list, store, now_ms)?,
            Message::Settings(settings) => {
                self.require_peer("settings")?;
                if self.version < 3 {
                    return Err(SessionError::Unexpected("settings"));
                }
                settings.verify(&self.root)?;
                let ours = store.settings().map_err(store_err)?;
                if ours
                    .as_ref()
                    .is_none_or(|o| o.body.version < settings.body.version)
                {
                    store.put_settings(&settings).map_err(store_err)?;
                    self.events
                        .push_back(Event::Settings(settings.body.version));
                }
            }
            Message::Reconcile(frame) => self.on_reconcile(&frame, store)?,
            Message::Tail {
                below_ms,
                count,
                fingerprint,
                frame,
            } => self.on_tail(below_ms, count, &fingerprint, &frame, store)?,
            Message::TailShort {
                below_ms,
                count,
                fingerprint,
                frame,
            } => {
                if self.version < 4 {
                    return Err(SessionError::Unexpected("short tail"));
                }
                self.on_tail(below_ms, count, &fingerprint, &frame, store)?
            }
            Message::FullReconcile => {
                if !self.initiator || self.tail_from.is_none() || self.reconciled {
                    return Err(SessionError::Unexpected("full reconcile"));
                }
                self.tail_from = None;
                let keys = self.scope_keys(store)?;
                let mut negentropy = negentropy_over(&keys, None, &self.config)?;
                let first = negentropy
                    .initiate()
                    .map_err(|e| SessionError::Reconcile(e.to_string()))?;
                self.negentropy = Some(negentropy);
                self.outbox.push_back(Message::Reconcile(first));
            }
            Message::Want(hashes) => {
                let peer = self.require_peer("want")?.clone();
                if hashes.len() > self.config.want_max {
                    return Err(SessionError::Bound("hashes in one want"));
                }
                let mut wanted = Vec::with_capacity(hashes.len());
                for h in hashes {
                    let hash = ChangeHash(h);
                    // A hash this node does not hold and one the peer may not read get the
                    // same answer, nothing, so a want cannot probe what lies outside the
                    // scope.
                    let Some(c) = store.change(&hash).map_err(store_err)? else {
                        continue;
                    };
                    // A change still waiting for its dependencies is not passed on: it has
                    // not been held against the rules yet.
                    if self.in_scope(&peer, &c.signed.jurisdictions)
                        && !store
                            .pending(c.signed.record)
                            .map_err(store_err)?
                            .contains(&hash)
                    {
                        wanted.push(hash);
                    }
                }
                self.enqueue(wanted, store)?;
            }
            Message::Changes {
                batch,
                certs,
                changes,
            } => self.on_changes(batch, certs, changes, store, now_ms)?,
            Message::Ack { batch } => {
                if !self.in_flight.remove(&batch) {
                    return Err(SessionError::Unexpected("ack"));
                }
                // The peer stored the batch, and the certificates it carried with it.
                self.peer_certs
                    .extend(self.batch_certs.remove(&batch).unwrap_or_default());
            }
        }
        self.pump(store)?;
        self.save_watermark(store)
    }

    /// After a complete session (reconciled, everything asked for received, everything
    /// sent acknowledged) the initiator remembers up to when both sides held the same keys.
    fn save_watermark<S: Store>(&mut self, store: &mut S) -> Result<(), SessionError> {
        if self.initiator
            && self.reconciled
            && !self.watermark_saved
            && self.wants.is_empty()
            && self.is_idle()
            && let Some(peer) = &self.peer
        {
            store
                .put_watermark(&peer.node(), self.scope_max_ms)
                .map_err(store_err)?;
            self.watermark_saved = true;
        }
        Ok(())
    }

    /// Offers changes new to this node (made here or received from another peer) for live
    /// push. Those the peer may not read, or that this session already carried, are left
    /// out.
    pub fn offer<S: Store>(
        &mut self,
        changes: &[StoredChange],
        store: &S,
    ) -> Result<(), SessionError> {
        let Some(peer) = self.peer.clone() else {
            // Before the handshake the reconciliation will find them.
            return Ok(());
        };
        let hashes: Vec<ChangeHash> = changes
            .iter()
            .filter(|c| self.in_scope(&peer, &c.signed.jurisdictions))
            .map(|c| c.hash)
            .collect();
        self.enqueue(hashes, store)?;
        self.pump(store)
    }

    /// Passes a newer revocation list, installed here or received from another peer, to
    /// the peer now rather than at its next hello. The peer keeps it only if it is newer
    /// than its own.
    pub fn offer_revocations(&mut self, list: &RevocationList) {
        if self.peer.is_some() {
            self.outbox.push_back(Message::Revocations(list.clone()));
        }
    }

    /// Passes a newer frontier of revoked keys, installed here or received from another
    /// peer, to the peer now (version 2 only; the peer keeps it only if it is newer).
    pub fn offer_frontier(&mut self, frontier: &crate::cert::Frontier) {
        if self.peer.is_some() && self.version >= 2 {
            self.outbox.push_back(Message::Frontier(frontier.clone()));
        }
    }

    /// Passes newer county settings, installed here or received from another peer, to the
    /// peer now (version 3 only; the peer keeps them only if they are newer).
    pub fn offer_settings(&mut self, settings: &crate::cert::Settings) {
        if self.peer.is_some() && self.version >= 3 {
            self.outbox.push_back(Message::Settings(settings.clone()));
        }
    }

    fn require_peer(&self, what: &'static str) -> Result<&Certificate, SessionError> {
        self.peer.as_ref().ok_or(SessionError::Unexpected(what))
    }

    fn in_scope(&self, peer: &Certificate, villages: &[Division]) -> bool {
        in_scope(&self.me.cert, peer, self.version, villages)
    }

    /// `stored`: the certificate came from the store, which holds only certificates
    /// checked against the root; its dates and revocation are checked all the same.
    fn on_hello<S: Store>(
        &mut self,
        version: u16,
        cert: Certificate,
        stored: bool,
        their_revocations: u64,
        store: &mut S,
        now_ms: u64,
    ) -> Result<(), SessionError> {
        if self.peer.is_some() {
            return Err(SessionError::Unexpected("second hello"));
        }
        if version != self.version {
            return Err(SessionError::Version(version));
        }
        if self.peer_key.is_some_and(|k| k != cert.node()) {
            return Err(SessionError::Impostor);
        }
        if !stored {
            cert.verify(&self.root)?;
        }
        let ours = store.revocations().map_err(store_err)?;
        let body = ours.as_ref().map(|l| l.body.clone()).unwrap_or_default();
        cert.valid_at(now_ms, &body)?;
        store.put_certificate(&cert).map_err(store_err)?;
        self.peer = Some(cert.clone());
        self.events.push_back(Event::Peer(cert));
        self.their_revocations = their_revocations;
        if !self.hello_sent {
            // The responder answers in kind: by the short hash to a peer that holds its
            // certificate, whole otherwise.
            self.hello_sent = true;
            let hello = if self.peer_knows_me {
                self.sent_known = true;
                Message::HelloKnown {
                    version: self.version,
                    cert: self.me.cert.short_hash(),
                    revocations: self.my_revocations,
                }
            } else {
                self.whole_hello(self.my_revocations)
            };
            self.outbox.push_back(hello);
        }
        self.announce(store, now_ms)?;
        if self.initiator {
            let keys = self.scope_keys(store)?;
            self.scope_max_ms = keys.last().map_or(0, |k| k.0);
            let watermark = store
                .watermark(&self.require_peer("hello")?.node())
                .map_err(store_err)?;
            let mut negentropy = negentropy_over(&keys, watermark, &self.config)?;
            let frame = negentropy
                .initiate()
                .map_err(|e| SessionError::Reconcile(e.to_string()))?;
            self.negentropy = Some(negentropy);
            match watermark {
                Some(below_ms) => {
                    self.tail_from = Some(below_ms);
                    let (count, fingerprint) = summary(&keys, below_ms);
                    self.outbox.push_back(if self.version >= 4 {
                        let mut short = [0u8; 16];
                        short.copy_from_slice(fingerprint.get(..16).unwrap_or(&[0; 16]));
                        Message::TailShort {
                            below_ms,
                            count,
                            fingerprint: short,
                            frame,
                        }
                    } else {
                        Message::Tail {
                            below_ms,
                            count,
                            fingerprint,
                            frame,
                        }
                    });
                }
                None => self.outbox.push_back(Message::Reconcile(frame)),
            }
        }
        Ok(())
    }

    /// The initiator's tail (`Tail`, or `TailShort` with the fingerprint's first 16 bytes):
    /// if the keys below the watermark agree, only the tail is reconciled.
    fn on_tail<S: Store>(
        &mut self,
        below_ms: u64,
        count: u64,
        fingerprint: &[u8],
        frame: &[u8],
        store: &S,
    ) -> Result<(), SessionError> {
        self.require_peer("tail")?;
        if self.initiator || self.negentropy.is_some() {
            return Err(SessionError::Unexpected("tail"));
        }
        let keys = self.scope_keys(store)?;
        let (ours, full) = summary(&keys, below_ms);
        if ours == count && full.get(..fingerprint.len()) == Some(fingerprint) {
            self.tail_from = Some(below_ms);
            let mut negentropy = negentropy_over(&keys, Some(below_ms), &self.config)?;
            let reply = negentropy
                .reconcile(frame)
                .map_err(|e| SessionError::Reconcile(e.to_string()))?;
            self.negentropy = Some(negentropy);
            self.outbox.push_back(Message::Reconcile(reply));
            self.note_answered();
        } else {
            self.outbox.push_back(Message::FullReconcile);
        }
        Ok(())
    }

    /// What each side tells the peer once its hello verified: a newer revocation list,
    /// its clock and frontier version, its county settings.
    fn announce<S: Store>(&mut self, store: &S, now_ms: u64) -> Result<(), SessionError> {
        if let Some(list) = store.revocations().map_err(store_err)?
            && list.body.version > self.their_revocations
        {
            self.outbox.push_back(Message::Revocations(list));
        }
        if self.version >= 2 {
            let frontier = store.frontier().map_err(store_err)?;
            self.outbox.push_back(Message::Greeting {
                clock_ms: now_ms,
                frontier: frontier.map_or(0, |f| f.body.version),
            });
        }
        if self.version >= 3
            && let Some(settings) = store.settings().map_err(store_err)?
        {
            self.outbox.push_back(Message::Settings(settings));
        }
        Ok(())
    }

    fn scope_keys<S: Store>(&self, store: &S) -> Result<Vec<crate::store::Key>, SessionError> {
        let peer = self.require_peer("reconcile")?.clone();
        let me = self.me.cert.clone();
        let version = self.version;
        // A record in scope has a division inside each side's (`in_scope`), and the store
        // indexes it under each of its divisions: when one side's division holds the
        // other's, the smaller is where to look (a county meeting a township lists that
        // township's records, not the county's).
        let (mine, theirs) = (me.body.division, peer.body.division);
        let division = if mine.contains(theirs) { theirs } else { mine };
        store
            .keys(division, &|v| in_scope(&me, &peer, version, v))
            .map_err(store_err)
    }

    fn on_reconcile<S: Store>(&mut self, frame: &[u8], store: &mut S) -> Result<(), SessionError> {
        self.require_peer("reconcile")?;
        let reconcile_err = |e: negentropy::Error| SessionError::Reconcile(e.to_string());
        if self.initiator {
            let Some(negentropy) = self.negentropy.as_mut() else {
                return Err(SessionError::Unexpected("reconcile"));
            };
            let mut have = Vec::new();
            let mut need = Vec::new();
            let next = negentropy
                .reconcile_with_ids(frame, &mut have, &mut need)
                .map_err(reconcile_err)?;
            // negentropy reports them in the order of a hash set: sorted, a session sends
            // the same messages every time.
            have.sort_unstable();
            need.sort_unstable();
            self.wants
                .extend(need.iter().map(|id| ChangeHash(*id.as_bytes())));
            for chunk in need.chunks(self.config.want_max.max(1)) {
                self.outbox.push_back(Message::Want(
                    chunk.iter().map(|id| *id.as_bytes()).collect(),
                ));
            }
            let have: Vec<ChangeHash> = have.iter().map(|id| ChangeHash(*id.as_bytes())).collect();
            self.enqueue(have, store)?;
            match next {
                Some(next) => self.outbox.push_back(Message::Reconcile(next)),
                None => {
                    self.reconciled = true;
                    self.negentropy = None;
                    self.events.push_back(Event::Reconciled);
                }
            }
        } else {
            if self.negentropy.is_none() {
                let keys = self.scope_keys(store)?;
                self.negentropy = Some(negentropy_over(&keys, None, &self.config)?);
            }
            let Some(negentropy) = self.negentropy.as_mut() else {
                return Err(SessionError::Unexpected("reconcile"));
            };
            let reply = negentropy.reconcile(frame).map_err(reconcile_err)?;
            self.outbox.push_back(Message::Reconcile(reply));
            self.note_answered();
        }
        Ok(())
    }

    /// The responder answered a round of the peer's reconciliation.
    fn note_answered(&mut self) {
        if !self.answered {
            self.answered = true;
            self.events.push_back(Event::Answered);
        }
    }

    fn on_changes<S: Store>(
        &mut self,
        batch: u64,
        certs: Vec<Certificate>,
        changes: Vec<crate::signed::SignedChange>,
        store: &mut S,
        now_ms: u64,
    ) -> Result<(), SessionError> {
        let peer = self.require_peer("changes")?.clone();
        for cert in &certs {
            cert.verify(&self.root)?;
        }
        for cert in &certs {
            store.put_certificate(cert).map_err(store_err)?;
        }
        let revocations = store.revocation_state().map_err(store_err)?;
        for signed in &changes {
            if !self.in_scope(&peer, &signed.jurisdictions) {
                return Err(SessionError::Scope(format!(
                    "sent a change of {}",
                    signed.record
                )));
            }
        }
        let checked =
            verify_batch_with(changes, &StoreCerts(&*store), &revocations, &*self.parallel)?;
        self.stats.changes_in += checked.len() as u64;
        // Changes of the peer's own that were refused before and come again: the peer is
        // told again (it may not have heard).
        let mut again = Vec::new();
        if self.version >= 3 {
            for c in &checked {
                let (hash, signer) = match c {
                    Ok(v) => (v.hash, v.signer),
                    Err(r) => (r.hash, r.signer),
                };
                if signer == peer.node() && store.is_quarantined(&hash).map_err(store_err)? {
                    again.push(hash);
                }
            }
        }
        for c in &checked {
            let hash = match c {
                Ok(v) => v.hash,
                Err(r) => r.hash,
            };
            self.known.insert(hash);
            self.wants.remove(&hash);
        }
        let ingested = ingest(store, checked, now_ms).map_err(store_err)?;
        if !ingested.applied.is_empty() {
            self.events.push_back(Event::Received(ingested.applied));
        }
        if self.version >= 3 {
            // Tell the signer what of its own was refused, so that it stops writing to
            // those records.
            let mut refusals: Vec<Refusal> = ingested
                .quarantined
                .iter()
                .filter(|q| q.signer == peer.node())
                .map(|q| Refusal {
                    hash: q.hash,
                    code: q.code.clone(),
                })
                .collect();
            if !again.is_empty() {
                for q in store.quarantined().map_err(store_err)? {
                    if again.contains(&q.change_hash()) {
                        refusals.push(Refusal {
                            hash: q.hash,
                            code: q.code,
                        });
                    }
                }
            }
            refusals.truncate(REFUSALS_MAX);
            if !refusals.is_empty() {
                self.outbox.push_back(Message::Refused(refusals));
            }
        }
        if !ingested.quarantined.is_empty() || ingested.dropped > 0 {
            self.events.push_back(Event::Quarantined {
                changes: ingested.quarantined,
                dropped: ingested.dropped,
            });
        }
        self.outbox.push_back(Message::Ack { batch });
        Ok(())
    }

    /// The peer refused changes of this node's own. Only a township or county node above
    /// this node is heeded (not an observer, and a village cannot stop its township
    /// writing), and only for changes this node signed and sent it in this session;
    /// anything else in the list is ignored.
    fn on_refused<S: Store>(
        &mut self,
        list: Vec<Refusal>,
        store: &mut S,
        now_ms: u64,
    ) -> Result<(), SessionError> {
        let peer = self.require_peer("refused")?.clone();
        if self.version < 3 || list.len() > REFUSALS_MAX {
            return Err(SessionError::Unexpected("refused"));
        }
        let mine = self.me.cert.body.division;
        let office = matches!(
            peer.body.role,
            crate::cert::Role::Township | crate::cert::Role::County
        );
        if !office || peer.body.division == mine || !peer.body.division.contains(mine) {
            return Ok(());
        }
        let me = self.me.cert.node();
        let mut own = Vec::new();
        for r in list {
            if !crate::quarantine::is_code(&r.code) || !self.sent_own.contains(&ChangeHash(r.hash))
            {
                continue;
            }
            let Some(c) = store.change(&ChangeHash(r.hash)).map_err(store_err)? else {
                continue;
            };
            if c.signer == me {
                own.push(OwnRefused {
                    record: c.signed.record,
                    hash: r.hash,
                    code: r.code,
                    by: peer.node(),
                    at_ms: now_ms,
                });
            }
        }
        if !own.is_empty() {
            store.put_own_refused(&own).map_err(store_err)?;
            self.events.push_back(Event::RefusedByPeer(own));
        }
        Ok(())
    }

    /// Queues changes to send, in causal order, skipping those already carried.
    fn enqueue<S: Store>(
        &mut self,
        hashes: Vec<ChangeHash>,
        store: &S,
    ) -> Result<(), SessionError> {
        let fresh: Vec<ChangeHash> = hashes
            .into_iter()
            .filter(|h| !self.known.contains(h))
            .collect();
        if self.queue.len() + fresh.len() > self.config.queue_max {
            // Dropped offers are found by the next reconciliation.
            return Ok(());
        }
        for hash in causal_order(fresh, store)? {
            if self.known.insert(hash) {
                self.queue.push_back(hash);
            }
        }
        Ok(())
    }

    /// Sends batches while fewer than `in_flight_max` are unacknowledged.
    fn pump<S: Store>(&mut self, store: &S) -> Result<(), SessionError> {
        while self.in_flight.len() < self.config.in_flight_max && !self.queue.is_empty() {
            let mut changes = Vec::new();
            let mut certs = Vec::new();
            let mut carried = Vec::new();
            let mut bytes = 0usize;
            while let Some(&hash) = self.queue.front() {
                let Some(stored) = store.change(&hash).map_err(store_err)? else {
                    self.queue.pop_front();
                    continue;
                };
                let size = stored.signed.bytes.len() + stored.signed.signature.len() + 64;
                if !changes.is_empty() && bytes + size > self.config.batch_bytes_max {
                    break;
                }
                if size > MESSAGE_BYTES_MAX / 2 {
                    // Larger than any record allows; it cannot travel and is skipped.
                    self.queue.pop_front();
                    continue;
                }
                self.queue.pop_front();
                bytes += size;
                let signer = stored.signer;
                if signer == self.me.cert.node() {
                    self.sent_own.insert(hash);
                }
                if self.certs_sent.insert(signer) {
                    for cert in store.certificates_of(&signer).map_err(store_err)? {
                        let short = cert.short_hash();
                        if !self.peer_certs.contains(&short) {
                            carried.push(short);
                            certs.push(cert);
                        }
                    }
                }
                changes.push(stored.signed);
            }
            if changes.is_empty() {
                break;
            }
            self.stats.changes_out += changes.len() as u64;
            let batch = self.next_batch;
            self.next_batch += 1;
            self.in_flight.insert(batch);
            if !carried.is_empty() {
                self.batch_certs.insert(batch, carried);
            }
            self.outbox.push_back(Message::Changes {
                batch,
                certs,
                changes,
            });
        }
        Ok(())
    }
}

/// A negentropy instance over `keys`, or over those at or above `from_ms`.
fn negentropy_over(
    keys: &[crate::store::Key],
    from_ms: Option<u64>,
    config: &Config,
) -> Result<Negentropy<'static, NegentropyStorageVector>, SessionError> {
    let reconcile_err = |e: negentropy::Error| SessionError::Reconcile(e.to_string());
    let from = from_ms.unwrap_or(0);
    let mut storage = NegentropyStorageVector::with_capacity(keys.len());
    for (time, hash) in keys.iter().filter(|k| k.0 >= from) {
        storage
            .insert(*time, Id::from_byte_array(hash.0))
            .map_err(reconcile_err)?;
    }
    storage.seal().map_err(reconcile_err)?;
    Negentropy::owned(storage, config.frame_bytes_max).map_err(reconcile_err)
}

/// The count and a fingerprint of the keys below `below_ms` (keys come sorted).
fn summary(keys: &[crate::store::Key], below_ms: u64) -> (u64, [u8; 32]) {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut count = 0u64;
    for (time, hash) in keys.iter().take_while(|k| k.0 < below_ms) {
        hasher.update(time.to_be_bytes());
        hasher.update(hash.0);
        count += 1;
    }
    (count, hasher.finalize().into())
}

/// Orders changes so every change comes after those of its dependencies that are in the
/// set; otherwise by (time, hash).
fn causal_order<S: Store>(
    hashes: Vec<ChangeHash>,
    store: &S,
) -> Result<Vec<ChangeHash>, SessionError> {
    let mut deps: BTreeMap<ChangeHash, (u64, Vec<ChangeHash>)> = BTreeMap::new();
    for h in &hashes {
        if let Some(c) = store.change(h).map_err(store_err)? {
            deps.insert(*h, (c.time_ms, c.deps));
        }
    }
    let mut roots: Vec<(u64, ChangeHash)> = deps.iter().map(|(h, (t, _))| (*t, *h)).collect();
    roots.sort();
    let mut out = Vec::with_capacity(deps.len());
    let mut done: BTreeSet<ChangeHash> = BTreeSet::new();
    let mut entered: BTreeSet<ChangeHash> = BTreeSet::new();
    // Iterative depth-first walk: a long chain of changes must not overflow the stack.
    for (_, root) in roots {
        let mut stack = vec![(root, false)];
        while let Some((h, expanded)) = stack.pop() {
            if done.contains(&h) {
                continue;
            }
            if expanded {
                done.insert(h);
                out.push(h);
                continue;
            }
            if !entered.insert(h) {
                // Already on the walk: only a dependency cycle gets here, and hashes make
                // cycles impossible; leaving it keeps the walk finite regardless.
                continue;
            }
            stack.push((h, true));
            if let Some((_, ds)) = deps.get(&h) {
                for d in ds {
                    if deps.contains_key(d) && !done.contains(d) {
                        stack.push((*d, false));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Whether a record of these divisions is in the scope of a session between `me` and
/// `peer` speaking `version`: both may read it, and a peer of a version before 3 is not
/// sent a division's own record, which it could not read.
fn in_scope(me: &Certificate, peer: &Certificate, version: u16, divisions: &[Division]) -> bool {
    me.may_read(divisions)
        && peer.may_read(divisions)
        && (version >= 3 || divisions.iter().all(|d| matches!(d, Division::Village(_))))
}
