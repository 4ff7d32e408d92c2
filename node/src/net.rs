//! The daemon: the node's protocol sessions over libp2p, and its HTTP API.
//!
//! Transports: TCP and QUIC, with Noise and Yamux; identify, ping, and mDNS for offices on
//! one LAN. Each connection the node dialled carries one sync stream (`/guihe/sync/4`, or an
//! older version the peer speaks) that the dialler opens; the other side accepts it. Messages
//! on the stream are framed with a 4-byte big-endian length, never more than the wire bound. A peer whose libp2p identity
//! is not the key in its certificate is dropped. Bootstrap peers are redialled with capped,
//! jittered backoff. Incoming connections are capped in number, per peer, and while the
//! process's memory is over its limit (`[limits]` in the configuration).
//!
//! This file is transport only: the swarm, dialling, and opening streams. Sessions and
//! every rule about them are `protocol::host`'s, driven by the core (`core.rs`), a thread
//! that owns the store; stream readers and writers (`stream.rs`) are tasks that pass whole
//! frames through bounded channels, and the HTTP server's calls come to the core through a
//! channel too. A write made over HTTP is durable before it is acknowledged and is pushed
//! to every open session at once. While it runs, the daemon writes `status.json` (its last
//! report) and `api.json` (where its API is, and the token, mode 0600) in the data folder.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use guihe_protocol::host;
use libp2p::metrics::Recorder;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, connection_limits, identify, mdns, memory_connection_limits,
    noise, ping, tcp, yamux,
};
use prometheus_client::registry::Registry;
use rand::RngCore;
use tokio::sync::mpsc;

use crate::app::Request;
use crate::core::{self, Core, CoreMsg, ToSwarm};
use crate::http::{self, Endpoint};
use crate::local::Local;
use crate::metrics::Metrics;

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
/// How long answers already given may take to reach their callers when the daemon stops.
const HTTP_DRAIN: Duration = Duration::from_secs(3);
/// How long the API goes on answering with the reason after the store failed.
const FAILED_LINGER: Duration = Duration::from_secs(2);
/// Messages waiting for the core.
const CORE_QUEUE: usize = 1024;
/// API calls waiting for the core.
const API_QUEUE: usize = 64;
/// The longest wait between two dials of a bootstrap peer.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Attempts to open the sync stream on a new connection before giving up on it.
const OPEN_ATTEMPTS: u32 = 5;

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

/// Writes a file by renaming a finished temporary one into place, so a reader never sees
/// half of it. `private` makes it readable by the owner only.
pub(crate) fn write_atomic(
    path: &std::path::Path,
    bytes: &[u8],
    private: bool,
) -> std::io::Result<()> {
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
    let store_failed = core::Failed::default();
    let app = http::router(
        local.replica.identity.cert.node(),
        local.replica.identity.cert.body.division,
        api_tx,
        store_failed.clone(),
        endpoint.token.clone(),
        Arc::new(registry),
        metrics.clone(),
    );
    // Stopped gracefully at the end, so that an answer the core already gave (a write
    // refused because the disk is full, say) reaches its caller before the process exits.
    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let stopped = async {
            let _ = http_stopped.await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!(%e, "HTTP server stopped");
        }
    });
    tracing::info!(url = %endpoint.url, "API listening");
    // Not `println!`, here and below: standard output may be a log file on a full disk.
    let _ = writeln!(std::io::stdout(), "api on {}", endpoint.url);

    let mut control = swarm.behaviour().stream.new_control();
    let (core_tx, core_rx) = mpsc::channel::<CoreMsg>(CORE_QUEUE);
    let (swarm_tx, mut swarm_rx) = mpsc::unbounded_channel::<ToSwarm>();
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
    // The API's requests and a clock tick go to the core like everything else.
    {
        let api_core = core_tx.clone();
        tokio::spawn(async move {
            while let Some(request) = api_rx.recv().await {
                if api_core.send(CoreMsg::Api(request)).await.is_err() {
                    break;
                }
            }
        });
        let tick_core = core_tx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                // A core busy enough to fill its queue gets the next tick.
                if let Err(mpsc::error::TrySendError::Closed(_)) = tick_core.try_send(CoreMsg::Tick)
                {
                    break;
                }
            }
        });
    }
    let setup_core = core::Setup {
        host: host::Config {
            session: guihe_protocol::sync::Config::default(),
            sessions_per_peer: usize::try_from(config.limits.sessions_per_peer)
                .unwrap_or(usize::MAX)
                .max(1),
            stall_ms: config.limits.stall_seconds.max(1).saturating_mul(1000),
            ..host::Config::default()
        },
        backlog_max: usize::try_from(config.limits.backlog_mib.saturating_mul(1024 * 1024))
            .unwrap_or(usize::MAX),
        disk_reserve: config.limits.disk_reserve_mib.saturating_mul(1024 * 1024),
    };
    let core = Core::new(
        local,
        setup_core,
        metrics,
        core_tx.clone(),
        swarm_tx.clone(),
        tokio::runtime::Handle::current(),
        store_failed,
    );
    // The core owns the store: its writes (fsyncs) never run on the runtime's threads.
    let core_thread = std::thread::Builder::new()
        .name("guihe-core".into())
        .spawn(move || core.run(core_rx))
        .map_err(|e| setup(&e))?;
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
    let mut failed = None;

    loop {
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break;
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            Some(order) = swarm_rx.recv() => match order {
                ToSwarm::Disconnect(peer) => {
                    let _ = swarm.disconnect_peer_id(peer);
                }
                ToSwarm::Fatal(why) => {
                    failed = Some(why);
                    break;
                }
            },
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
                        tokio::spawn(open_sync_stream(peer_id, control.clone(), core_tx.clone(), swarm_tx.clone()));
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                        for (peer, addr) in found {
                            if !swarm.is_connected(&peer) && swarm.local_peer_id() < &peer {
                                let _ = swarm.dial(addr);
                            }
                        }
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => p2p_metrics.record(&e),
                    SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => {
                        p2p_metrics.record(&e);
                        // A ping that timed out or failed means the path is gone (a NAT
                        // that dropped an idle connection, say): the connection is closed,
                        // and the side that dialled redials. (A peer that does not speak
                        // ping is left alone.)
                        if let Err(failure @ (ping::Failure::Timeout | ping::Failure::Other { .. })) = &e.result {
                            tracing::info!(peer = %e.peer, %failure, "ping failed: closing the connection");
                            swarm.close_connection(e.connection);
                        }
                    }
                    SwarmEvent::OutgoingConnectionError { error, .. } => {
                        tracing::info!(%error, "could not connect");
                    }
                    SwarmEvent::IncomingConnectionError { error, .. } => {
                        tracing::info!(%error, "refused an incoming connection");
                    }
                    SwarmEvent::NewListenAddr { address, .. } => {
                        tracing::info!(%address, "listening");
                        let _ = writeln!(std::io::stdout(), "listening on {address}/p2p/{}", swarm.local_peer_id());
                    }
                    _ => {}
                }
            }
        }
    }
    // The core writes its last status and stops; wait for it off the runtime.
    let _ = core_tx.send(CoreMsg::Stop).await;
    let _ = tokio::task::spawn_blocking(move || core_thread.join()).await;
    if failed.is_some() {
        // A caller that reached the API just now is answered with the reason (the
        // disk is full, say) rather than cut off by the stop.
        tokio::time::sleep(FAILED_LINGER).await;
    }
    let _ = http_stop.send(());
    let _ = tokio::time::timeout(HTTP_DRAIN, server).await;
    let _ = std::fs::remove_file(&api_file);
    match failed {
        Some(why) => Err(NetError::Store(why)),
        None => Ok(()),
    }
}

/// Opens the sync stream on a connection this node dialled, in the newest protocol
/// version the peer speaks; gives up after `OPEN_ATTEMPTS` and drops the connection, so
/// that the redial (with backoff) starts afresh.
async fn open_sync_stream(
    peer: PeerId,
    mut control: libp2p_stream::Control,
    core_tx: mpsc::Sender<CoreMsg>,
    swarm_tx: mpsc::UnboundedSender<ToSwarm>,
) {
    let mut versions = PROTOCOLS.iter().peekable();
    let mut attempt = 0;
    while let Some((version, protocol)) = versions.peek() {
        attempt += 1;
        if attempt > OPEN_ATTEMPTS {
            break;
        }
        match control.open_stream(peer, protocol.clone()).await {
            Ok(stream) => {
                let _ = core_tx
                    .send(CoreMsg::Stream {
                        peer,
                        stream,
                        initiator: true,
                        version: *version,
                    })
                    .await;
                return;
            }
            Err(libp2p_stream::OpenStreamError::UnsupportedProtocol(_)) => {
                // A peer not upgraded yet: speak its version.
                versions.next();
            }
            Err(e) => {
                tracing::info!(%peer, attempt, %e, "could not open the sync stream");
                tokio::time::sleep(Duration::from_millis(300 * u64::from(attempt))).await;
            }
        }
    }
    let _ = swarm_tx.send(ToSwarm::Disconnect(peer));
}
