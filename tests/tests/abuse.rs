//! Hostile peers against a real `guihe run` township: a peer whose libp2p key is not its
//! certificate's, a peer that opens many streams, one that sends a byte a second, and a
//! certified village that floods changes without reading the answers. Beside each, an
//! honest village keeps writing, and its cases must reach the township; the township's
//! memory must stay bounded.
//!
//! The hostile peers are real libp2p peers (TCP, Noise, Yamux) in the test process that
//! speak the sync protocol's framing by hand.

use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use guihe_protocol::wire::{Message, PROTOCOL_VERSION};
use guihe_tests::Lab;
use libp2p::{PeerId, StreamProtocol, Swarm, identity, noise, tcp, yamux};
use rand_core::SeedableRng;

const TOWNSHIP: &str = "500240001000";
const HONEST: &str = "500240001201";
const OTHER: &str = "500240001202";
/// The newest sync protocol, whose version the hello below speaks.
const PROTOCOL: StreamProtocol = StreamProtocol::new("/guihe/sync/4");

/// A township with an honest village dialling it, and a second village enrolled (its
/// identity is the hostile peers' to use) but never started.
fn county(name: &str, limits: &[(&str, u64)]) -> Lab {
    let mut lab = Lab::new(name);
    lab.add("township", "township", TOWNSHIP, None);
    for (key, value) in limits {
        lab.limit("township", key, *value);
    }
    lab.add("honest", "village", HONEST, Some("township"));
    lab.add("other", "village", OTHER, Some("township"));
    lab.start("township");
    lab.start("honest");
    lab
}

/// The libp2p key of an enrolled node, from its key file.
fn node_keypair(lab: &Lab, name: &str) -> identity::Keypair {
    let key = guihe_node::keys::read_key(&lab.data(name).join("node.key")).unwrap();
    identity::Keypair::ed25519_from_bytes(key.secret()).unwrap()
}

fn hello(lab: &Lab, name: &str) -> Vec<u8> {
    let cert = guihe_node::keys::read_cert(&lab.data(name).join("node.cert")).unwrap();
    Message::Hello {
        version: PROTOCOL_VERSION,
        cert,
        revocations: 0,
    }
    .encode()
    .unwrap()
}

fn frame(bytes: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// Reads one frame, or None when the stream ends or `limit` passes.
async fn read_frame(stream: &mut libp2p::Stream, limit: Duration) -> Option<Vec<u8>> {
    tokio::time::timeout(limit, async {
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).await.ok()?;
        let mut bytes = vec![0u8; u32::from_be_bytes(len) as usize];
        stream.read_exact(&mut bytes).await.ok()?;
        Some(bytes)
    })
    .await
    .ok()
    .flatten()
}

/// Whether the stream ends (the other side closed or reset it) within `limit`.
async fn ends_within(stream: &mut libp2p::Stream, limit: Duration) -> bool {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match tokio::time::timeout(limit - started.elapsed(), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
    false
}

/// A hostile peer: a libp2p swarm connected to the township, driven by its own task.
struct Rogue {
    control: libp2p_stream::Control,
    township: PeerId,
}

impl Rogue {
    async fn connect(lab: &Lab, key: identity::Keypair) -> Rogue {
        let mut swarm: Swarm<libp2p_stream::Behaviour> =
            libp2p::SwarmBuilder::with_existing_identity(key)
                .with_tokio()
                .with_tcp(
                    tcp::Config::default(),
                    noise::Config::new,
                    yamux::Config::default,
                )
                .unwrap()
                .with_behaviour(|_| libp2p_stream::Behaviour::new())
                .unwrap()
                .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
                .build();
        let township = node_keypair(lab, "township").public().to_peer_id();
        let addr: libp2p::Multiaddr =
            format!("/ip4/127.0.0.1/tcp/{}/p2p/{township}", lab.port("township"))
                .parse()
                .unwrap();
        swarm.dial(addr).unwrap();
        let control = swarm.behaviour().new_control();
        tokio::spawn(async move {
            loop {
                swarm.select_next_some().await;
            }
        });
        Rogue { control, township }
    }

    async fn stream(&mut self) -> Option<libp2p::Stream> {
        self.stream_of(PROTOCOL).await
    }

    /// A stream of another sync protocol version.
    async fn stream_of(&mut self, protocol: StreamProtocol) -> Option<libp2p::Stream> {
        for _ in 0..50 {
            match self
                .control
                .open_stream(self.township, protocol.clone())
                .await
            {
                Ok(s) => return Some(s),
                Err(libp2p_stream::OpenStreamError::UnsupportedProtocol(_)) => return None,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        None
    }
}

/// The township's count of sessions that ended with `outcome`, from its metrics.
fn sessions(lab: &Lab, outcome: &str) -> u64 {
    let endpoint: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(lab.data("township").join("api.json")).unwrap(),
    )
    .unwrap();
    let url = format!("{}/metrics", endpoint["url"].as_str().unwrap());
    let text = ureq::get(&url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let label = format!("guihe_sessions_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&label))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// The honest village records a case; it must reach the township within `limit`.
fn honest_case_arrives(lab: &Lab, summary: &str, limit: Duration) -> Duration {
    let id = lab.ok(
        "honest",
        &[
            "case",
            "new",
            "--village",
            HONEST,
            "--category",
            "neighbour",
            "--summary",
            summary,
        ],
    );
    let started = Instant::now();
    lab.wait_for(
        &format!("the honest case {id} at the township"),
        limit,
        || lab.show("township", &id).is_some(),
    );
    started.elapsed()
}

#[test]
fn a_peer_whose_libp2p_key_is_not_its_certificates_is_dropped() {
    let lab = county("abuse-impostor", &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // The impostor has the other village's certificate, but a key of its own.
        let mut impostor = Rogue::connect(&lab, identity::Keypair::generate_ed25519()).await;
        let mut stream = impostor.stream().await.expect("a stream");
        stream
            .write_all(&frame(&hello(&lab, "other")))
            .await
            .unwrap();
        stream.flush().await.unwrap();
        // (Since protocol version 4 the township answers a hello only once it verified
        // it: the impostor gets nothing at all.)
        assert!(
            read_frame(&mut stream, Duration::from_secs(10))
                .await
                .is_none(),
            "the township sends an impostor nothing and closes its session"
        );

        // The same certificate with its own key is a village like any other: its session
        // stays open, waiting for it to reconcile.
        let mut genuine = Rogue::connect(&lab, node_keypair(&lab, "other")).await;
        let mut stream = genuine.stream().await.expect("a stream");
        stream
            .write_all(&frame(&hello(&lab, "other")))
            .await
            .unwrap();
        stream.flush().await.unwrap();
        let first = read_frame(&mut stream, Duration::from_secs(10)).await;
        assert!(first.is_some(), "the township greets the genuine village");
        assert!(
            !ends_within(&mut stream, Duration::from_secs(3)).await,
            "the genuine village's session stays open"
        );

        // A village not yet upgraded speaks protocol version 1 on its own stream protocol:
        // it is served as before.
        let mut old = Rogue::connect(&lab, node_keypair(&lab, "other")).await;
        let mut stream = old
            .stream_of(StreamProtocol::new("/guihe/sync/1"))
            .await
            .expect("a version 1 stream");
        let cert = guihe_node::keys::read_cert(&lab.data("other").join("node.cert")).unwrap();
        let hello_v1 = Message::Hello {
            version: 1,
            cert,
            revocations: 0,
        }
        .encode()
        .unwrap();
        stream.write_all(&frame(&hello_v1)).await.unwrap();
        stream.flush().await.unwrap();
        let first = read_frame(&mut stream, Duration::from_secs(10)).await;
        assert!(
            matches!(
                first.as_deref().map(Message::decode),
                Some(Ok(Message::Hello { version: 1, .. }))
            ),
            "the township greets a version 1 peer in version 1"
        );
        assert!(
            !ends_within(&mut stream, Duration::from_secs(3)).await,
            "the version 1 village's session stays open"
        );
    });
    assert_eq!(sessions(&lab, "impostor"), 1, "{}", lab.logs());
    honest_case_arrives(&lab, "冒名节点之后", Duration::from_secs(30));
}

#[test]
fn a_peer_opening_many_streams_gets_two_sessions_and_the_honest_village_syncs() {
    let lab = county("abuse-streams", &[]);
    let before = lab.rss_kib("township").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (greeted, refused) = rt.block_on(async {
        let mut rogue = Rogue::connect(&lab, identity::Keypair::generate_ed25519()).await;
        let mut streams = Vec::new();
        let mut refused = 0;
        for _ in 0..300 {
            match rogue.stream().await {
                Some(s) => streams.push(s),
                None => refused += 1,
            }
        }
        // Every stream that stays open was greeted: count them.
        let mut greeted = 0;
        for s in &mut streams {
            if read_frame(s, Duration::from_millis(500)).await.is_some() {
                greeted += 1;
            }
        }
        (greeted, refused)
    });
    assert!(
        greeted <= 2,
        "at most sessions_per_peer (2) sessions for one peer, got {greeted} ({refused} streams refused outright)"
    );
    assert!(sessions(&lab, "excess") >= 250, "{}", lab.logs());
    let took = honest_case_arrives(&lab, "多流之后", Duration::from_secs(30));
    let after = lab.rss_kib("township").unwrap();
    eprintln!(
        "300 streams: {greeted} greeted; township RSS {before} → {after} KiB; honest case in {took:?}"
    );
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    drop(rt);
}

#[test]
fn slow_drip_peers_are_closed_and_hold_only_what_they_sent() {
    // A stall timeout of 4 s, so the test need not wait two minutes.
    let lab = county("abuse-drip", &[("stall_seconds", 4)]);
    let before = lab.rss_kib("township").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (closed, total) = rt.block_on(async {
        // 20 peers with 2 streams each announce a 60 KiB message, then send a byte a
        // second: announced, 2.4 MiB; held, what they sent.
        let mut streams = Vec::new();
        for _ in 0..20 {
            let mut rogue = Rogue::connect(&lab, identity::Keypair::generate_ed25519()).await;
            for _ in 0..2 {
                if let Some(mut s) = rogue.stream().await {
                    let header = (60u32 * 1024).to_be_bytes();
                    // Under load the township may find an early peer stalled before the
                    // last is connected; the drip loop sees those streams closed.
                    let _ = s.write_all(&header).await;
                    streams.push(s);
                }
            }
            std::mem::forget(rogue);
        }
        let total = streams.len();
        // A peer that announces a full 1 MiB message before it has shown a certificate is
        // closed at once: only a `Hello` may come first, and it is small.
        let mut big = Rogue::connect(&lab, identity::Keypair::generate_ed25519()).await;
        let mut s = big.stream().await.expect("a stream");
        s.write_all(&(1u32 << 20).to_be_bytes()).await.unwrap();
        s.write_all(&[0; 1024]).await.unwrap();
        s.flush().await.unwrap();
        assert!(
            ends_within(&mut s, Duration::from_secs(2)).await,
            "a 1 MiB frame before Hello closes the stream"
        );
        let started = Instant::now();
        let mut open: Vec<bool> = vec![true; total];
        while started.elapsed() < Duration::from_secs(12) && open.iter().any(|o| *o) {
            for (s, o) in streams.iter_mut().zip(open.iter_mut()) {
                if *o && (s.write_all(&[7]).await.is_err() || s.flush().await.is_err()) {
                    *o = false;
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        (open.iter().filter(|o| !**o).count(), total)
    });
    let after = lab.rss_kib("township").unwrap();
    eprintln!("{closed} of {total} dripping streams closed; township RSS {before} → {after} KiB");
    assert_eq!(total, 40, "every dripping stream was opened");
    assert_eq!(closed, total, "every dripping stream was closed");
    // Closing a stalled session drops its peer's connection, which may take the peer's
    // other session with it before that one is found stalled.
    assert!(
        sessions(&lab, "stalled") >= 20,
        "every dripping peer is closed as stalled\n{}",
        lab.logs()
    );
    assert!(
        after < before + 32 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    honest_case_arrives(&lab, "慢速节点之后", Duration::from_secs(30));
    drop(rt);
}

#[test]
fn a_village_flooding_changes_does_not_starve_an_honest_one() {
    let lab = county("abuse-flood", &[]);
    // The flooding village's changes: 40 real cases, signed with its own key.
    let mut changes = Vec::new();
    {
        let mut local = guihe_node::local::Local::open(&lab.data("other")).unwrap();
        let village = OTHER.parse().unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..40 {
            let (_, stored) = local
                .create(guihe_protocol::workload::new_record(
                    &mut rng,
                    guihe_protocol::model::Kind::Case,
                    &[village],
                ))
                .unwrap();
            changes.extend(stored.into_iter().map(|c| c.signed));
        }
    }
    let cert = guihe_node::keys::read_cert(&lab.data("other").join("node.cert")).unwrap();
    let batches: Vec<Vec<u8>> = changes
        .chunks(10)
        .enumerate()
        .map(|(i, c)| {
            frame(
                &Message::Changes {
                    batch: i as u64,
                    certs: vec![cert.clone()],
                    changes: c.to_vec(),
                }
                .encode()
                .unwrap(),
            )
        })
        .collect();
    let before = lab.rss_kib("township").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The flood: the same batches again and again for 20 s, never reading the answers.
    let (rogue, mut stream) = rt.block_on(async {
        let mut rogue = Rogue::connect(&lab, node_keypair(&lab, "other")).await;
        let mut stream = rogue.stream().await.expect("a stream");
        stream
            .write_all(&frame(&hello(&lab, "other")))
            .await
            .unwrap();
        (rogue, stream)
    });
    let flood = rt.spawn(async move {
        let _rogue = rogue;
        let started = Instant::now();
        let (mut sent, mut bytes) = (0u64, 0usize);
        while started.elapsed() < Duration::from_secs(20) {
            for b in &batches {
                if stream.write_all(b).await.is_err() {
                    return (sent, bytes, true);
                }
                sent += 1;
                bytes += b.len();
            }
        }
        (sent, bytes, false)
    });
    let mut took = Vec::new();
    let mut peak = before;
    for i in 0..5 {
        took.push(honest_case_arrives(
            &lab,
            &format!("洪水中的诚实案件 {i}"),
            Duration::from_secs(15),
        ));
        peak = peak.max(lab.rss_kib("township").unwrap());
    }
    let (sent, bytes, cut) = rt.block_on(flood).unwrap();
    eprintln!(
        "flood: {sent} batches ({bytes} bytes), cut off: {cut}; honest cases arrived in {took:?}; township RSS {before} → peak {peak} KiB"
    );
    assert!(sent >= 100, "the flood was a flood: {sent} batches");
    assert!(
        peak < before + 128 * 1024,
        "RSS grew from {before} to {peak} KiB"
    );
    // The flood's cases are stored once each, beside the honest ones.
    lab.wait_for(
        "the flooded cases at the township",
        Duration::from_secs(20),
        || {
            lab.guihe("township", &["case", "list", "--json"])
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v.as_array().map(Vec::len))
                == Some(45)
        },
    );
    drop(rt);
}
