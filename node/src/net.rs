//! The daemon: the node's protocol sessions over libp2p.
//!
//! Transports: TCP and QUIC, with Noise and Yamux; identify, ping, and mDNS for offices on
//! one LAN. Each connection the node dialled carries one sync stream (`/guihe/sync/1`) that
//! the dialler opens; the other side accepts it. Messages on the stream are framed with a
//! 4-byte big-endian length, never more than the wire bound. A peer whose libp2p identity
//! is not the key in its certificate is dropped. Bootstrap peers are redialled with capped,
//! jittered backoff.
//!
//! One task owns the store and every session; stream readers and writers are tasks of
//! their own that pass whole frames through bounded channels. While it runs, the daemon
//! writes `status.json` in the data folder for `guihe status` and the demo.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use guihe_protocol::store::{Store, StoredChange};
use guihe_protocol::sync::{Config as SessionConfig, Event, Session};
use guihe_protocol::wire::MESSAGE_BYTES_MAX;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, identify, mdns, noise, ping, tcp, yamux};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::local::{Local, now_ms};

const PROTOCOL: StreamProtocol = StreamProtocol::new("/guihe/sync/1");
/// Frames waiting in one stream's outgoing queue before its session is slowed.
const STREAM_QUEUE: usize = 64;
/// Events waiting for the core task.
const CORE_QUEUE: usize = 1024;
/// Idle connections close after this; slow links need patience.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// The longest wait between two dials of a bootstrap peer.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Why the daemon stopped.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// libp2p could not be set up.
    #[error("network setup: {0}")]
    Setup(String),
    /// An address in the configuration is not a multiaddr.
    #[error("address {0:?}: {1}")]
    Address(String, String),
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
}

#[derive(NetworkBehaviour)]
struct Behaviour {
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
    },
    Frame {
        id: u64,
        bytes: Vec<u8>,
    },
    Closed {
        id: u64,
    },
    /// The sync stream to a peer could not be opened: drop the connection so that the
    /// redial (with backoff) starts afresh.
    NoStream {
        peer: PeerId,
    },
}

/// Attempts to open the sync stream on a new connection before giving up on it.
const OPEN_ATTEMPTS: u32 = 5;

struct Open {
    peer: PeerId,
    session: Session,
    out: mpsc::Sender<Vec<u8>>,
}

/// What the daemon writes to `status.json`.
#[derive(Debug, Serialize)]
struct Status {
    node: String,
    updated_ms: u64,
    records: usize,
    changes: usize,
    peers: Vec<PeerStatus>,
}

#[derive(Debug, Serialize)]
struct PeerStatus {
    peer: String,
    division: Option<String>,
    reconciled: bool,
}

fn expected_peer(node: &guihe_protocol::id::NodeId) -> Option<PeerId> {
    let key = libp2p::identity::ed25519::PublicKey::try_from_bytes(node.as_bytes()).ok()?;
    Some(libp2p::identity::PublicKey::from(key).to_peer_id())
}

/// Runs the daemon until Ctrl-C (or `stop_after`, for tests and the demo).
pub async fn run(mut local: Local, stop_after: Option<Duration>) -> Result<(), NetError> {
    let setup = |e: &dyn std::fmt::Display| NetError::Setup(e.to_string());
    let use_mdns = local.config.mdns;
    let keypair =
        libp2p::identity::Keypair::ed25519_from_bytes(local.replica.identity.key.secret())
            .map_err(|e| setup(&e))?;
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
                identify: identify::Behaviour::new(identify::Config::new(
                    "/guihe/1".into(),
                    key.public(),
                )),
                ping: ping::Behaviour::default(),
                mdns: if use_mdns {
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
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
        .build();
    for addr in &local.config.listen {
        let ma: Multiaddr = addr.parse().map_err(|e: libp2p::multiaddr::Error| {
            NetError::Address(addr.clone(), e.to_string())
        })?;
        swarm.listen_on(ma).map_err(|e| setup(&e))?;
    }
    let bootstrap: Vec<Multiaddr> = local
        .config
        .bootstrap
        .iter()
        .map(|a| {
            a.parse()
                .map_err(|e: libp2p::multiaddr::Error| NetError::Address(a.clone(), e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let mut control = swarm.behaviour().stream.new_control();
    let mut incoming = control.accept(PROTOCOL).map_err(|e| setup(&e))?;
    let (core_tx, mut core_rx) = mpsc::channel::<CoreMsg>(CORE_QUEUE);
    {
        let core_tx = core_tx.clone();
        tokio::spawn(async move {
            while let Some((peer, stream)) = incoming.next().await {
                if core_tx
                    .send(CoreMsg::Stream {
                        peer,
                        stream,
                        initiator: false,
                    })
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
    }
    let root = local.root;
    let mut sessions: BTreeMap<u64, Open> = BTreeMap::new();
    let mut next_id = 0u64;
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

    loop {
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break;
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
                if now_ms().saturating_sub(last_status) >= 1_000 {
                    last_status = now_ms();
                    write_status(&local, &sessions);
                }
            }
            event = swarm.select_next_some() => {
                match event {
                    SwarmEvent::ConnectionClosed { connection_id, .. } => {
                        for b in backoff.iter_mut() {
                            if b.2 == Some(connection_id) {
                                b.2 = None;
                            }
                        }
                    }
                    SwarmEvent::ConnectionEstablished { peer_id, endpoint, connection_id, .. } if endpoint.is_dialer() => {
                            if let Some(i) = bootstrap.iter().position(|a| endpoint.get_remote_address() == a)
                                && let Some(b) = backoff.get_mut(i)
                            {
                                b.0 = Duration::from_secs(1);
                                b.2 = Some(connection_id);
                            }
                            let mut control = control.clone();
                            let core_tx = core_tx.clone();
                            tokio::spawn(async move {
                                for attempt in 1..=OPEN_ATTEMPTS {
                                    match control.open_stream(peer_id, PROTOCOL).await {
                                        Ok(stream) => {
                                            let _ = core_tx.send(CoreMsg::Stream { peer: peer_id, stream, initiator: true }).await;
                                            return;
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
                    SwarmEvent::OutgoingConnectionError { error, .. } => {
                        tracing::info!(%error, "could not connect");
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
                    CoreMsg::Stream { peer, stream, initiator } => {
                        let id = next_id;
                        next_id += 1;
                        let session = match Session::new(SessionConfig::default(), root, local.replica.identity.clone(), initiator, &local.replica.store) {
                            Ok(s) => s,
                            Err(e) => { tracing::warn!(%e, "session"); continue; }
                        };
                        let (out_tx, out_rx) = mpsc::channel(STREAM_QUEUE);
                        spawn_stream(id, stream, out_rx, core_tx.clone());
                        sessions.insert(id, Open { peer, session, out: out_tx });
                        flush(id, &mut sessions, &mut local).await;
                    }
                    CoreMsg::Frame { id, bytes } => {
                        let now = now_ms();
                        let Some(open) = sessions.get_mut(&id) else { continue };
                        if let Err(e) = open.session.handle(&bytes, &mut local.replica.store, now) {
                            tracing::warn!(peer = %open.peer, %e, "session ended");
                            let peer = open.peer;
                            sessions.remove(&id);
                            // One session per connection: without it the connection is
                            // useless, and closing it lets the redial start a fresh one.
                            let _ = swarm.disconnect_peer_id(peer);
                            continue;
                        }
                        let received = flush(id, &mut sessions, &mut local).await;
                        if !received.is_empty() {
                            for (other, open) in sessions.iter_mut() {
                                if *other == id { continue; }
                                if open.session.offer(&received, &local.replica.store).is_err() { continue; }
                                while let Some(m) = open.session.poll_transmit() {
                                    let _ = open.out.send(m).await;
                                }
                            }
                        }
                    }
                    CoreMsg::Closed { id } => {
                        if let Some(open) = sessions.remove(&id)
                            && !sessions.values().any(|o| o.peer == open.peer)
                        {
                            let _ = swarm.disconnect_peer_id(open.peer);
                        }
                    }
                    CoreMsg::NoStream { peer } => {
                        let _ = swarm.disconnect_peer_id(peer);
                    }
                }
            }
        }
    }
    write_status(&local, &sessions);
    Ok(())
}

/// Sends a session's pending messages and handles its events; returns changes received.
async fn flush(
    id: u64,
    sessions: &mut BTreeMap<u64, Open>,
    local: &mut Local,
) -> Vec<StoredChange> {
    let mut received = Vec::new();
    let mut drop_it = false;
    if let Some(open) = sessions.get_mut(&id) {
        while let Some(m) = open.session.poll_transmit() {
            if open.out.send(m).await.is_err() {
                drop_it = true;
                break;
            }
        }
        while let Some(event) = open.session.poll_event() {
            match event {
                Event::Peer(cert) => {
                    if expected_peer(&cert.node()) != Some(open.peer) {
                        tracing::warn!(peer = %open.peer, "certificate key is not the peer's libp2p key");
                        drop_it = true;
                    } else {
                        tracing::info!(peer = %open.peer, division = %cert.body.division, "peer verified");
                    }
                }
                Event::Received(changes) => {
                    tracing::info!(peer = %open.peer, changes = changes.len(), "received");
                    received.extend(changes);
                }
                Event::Reconciled => tracing::info!(peer = %open.peer, "reconciled"),
                Event::Revocations(v) => tracing::info!(version = v, "revocation list updated"),
            }
        }
    }
    if drop_it {
        sessions.remove(&id);
    }
    let _ = local;
    received
}

fn spawn_stream(
    id: u64,
    stream: libp2p::Stream,
    mut out: mpsc::Receiver<Vec<u8>>,
    core: mpsc::Sender<CoreMsg>,
) {
    let (mut reader, mut writer) = stream.split();
    tokio::spawn(async move {
        while let Some(frame) = out.recv().await {
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
            // The length comes from the wire: check it before allocating.
            if len > MESSAGE_BYTES_MAX {
                tracing::warn!(len, "oversized frame; closing the stream");
                break;
            }
            let mut bytes = vec![0u8; len];
            if reader.read_exact(&mut bytes).await.is_err() {
                break;
            }
            if core.send(CoreMsg::Frame { id, bytes }).await.is_err() {
                return;
            }
        }
        let _ = core.send(CoreMsg::Closed { id }).await;
    });
}

fn write_status(local: &Local, sessions: &BTreeMap<u64, Open>) {
    let store = &local.replica.store;
    let status = Status {
        node: crate::keys::public_hex(&local.replica.identity.key.public()),
        updated_ms: now_ms(),
        records: store.records().map(|r| r.len()).unwrap_or(0),
        changes: store.change_count(),
        peers: sessions
            .values()
            .map(|o| PeerStatus {
                peer: o.peer.to_string(),
                division: o.session.peer().map(|c| c.body.division.to_string()),
                reconciled: o.session.is_reconciled(),
            })
            .collect(),
    };
    if let Ok(json) = serde_json::to_vec_pretty(&status) {
        let tmp = local.data.join("status.json.tmp");
        if std::fs::write(&tmp, json).is_ok() {
            let _ = std::fs::rename(&tmp, local.data.join("status.json"));
        }
    }
}
