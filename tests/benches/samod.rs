//! samod (the Rust automerge-repo) reconnecting over an in-memory connection: the bytes it
//! sends for the same cases as `cargo bench -p guihe-protocol --bench sync`.
//!
//! `cargo bench -p guihe-tests --bench samod -- [--sizes 1000,10000] [--json]`
//!
//! Two repos hold the same N documents (made by guihe's workload, one per case). They
//! connect once so the second holds every document, disconnect, then reconnect: the bytes
//! of the reconnection are counted in both directions until the connection has been quiet
//! for a second. Then K documents change on one side while apart and they reconnect again.
//! samod runs on its own tasks, so round trips are not counted here.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use futures::{SinkExt, StreamExt};
use guihe_protocol::deadline::Deadlines;
use guihe_protocol::hlc::Clock;
use guihe_protocol::model::Kind;
use guihe_protocol::record::{Author, Ctx, Record, actor_id};
use guihe_protocol::workload;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use samod::{AcceptorHandle, BackoffConfig, DialError, Dialer, DocHandle, PeerId, Repo, Transport};
use url::Url;

#[derive(Debug)]
struct Closed;
impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("closed")
    }
}
impl std::error::Error for Closed {}

/// Dials the acceptor over in-memory channels, counting every byte both ways.
struct CountingDialer {
    url: Url,
    acceptor: AcceptorHandle,
    bytes: Arc<AtomicU64>,
}

impl Dialer for CountingDialer {
    type Error = Infallible;

    fn url(&self) -> Url {
        self.url.clone()
    }

    fn connect(
        &self,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<Transport, DialError<Infallible>>> + Send>>
    {
        let (a_tx, b_rx) = futures::channel::mpsc::unbounded::<Vec<u8>>();
        let (b_tx, a_rx) = futures::channel::mpsc::unbounded::<Vec<u8>>();
        let count = |bytes: Arc<AtomicU64>| {
            move |m: Vec<u8>| {
                bytes.fetch_add(m.len() as u64, Ordering::SeqCst);
                Ok::<Vec<u8>, Closed>(m)
            }
        };
        let acceptor_side = Transport::new(
            b_rx.map(count(self.bytes.clone())),
            b_tx.sink_map_err(|_| Closed),
        );
        let dialer_side = Transport::new(
            a_rx.map(count(self.bytes.clone())),
            a_tx.sink_map_err(|_| Closed),
        );
        let acceptor = self.acceptor.clone();
        Box::pin(async move {
            acceptor
                .accept(acceptor_side)
                .map_err(DialError::transient)?;
            Ok(dialer_side)
        })
    }
}

/// Waits until no byte moved for `quiet`, at most `limit`; returns the bytes counted.
async fn settle(bytes: &AtomicU64, quiet: Duration, limit: Duration) -> u64 {
    let started = Instant::now();
    let mut last = bytes.load(Ordering::SeqCst);
    let mut last_change = Instant::now();
    while started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = bytes.load(Ordering::SeqCst);
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() >= quiet {
            break;
        }
    }
    last
}

fn documents(n: usize) -> Vec<automerge::Automerge> {
    let rules = Deadlines::default();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut clock = Clock::new();
    let node = guihe_protocol::id::NodeId::from_bytes([3; 32]);
    let actor = actor_id(node, 1);
    let author = Author {
        node,
        staff: "bench".parse().expect("staff"),
        display: String::new(),
        division: None,
    };
    let village = "500240101201".parse().expect("village");
    (0..n)
        .map(|i| {
            let new = workload::new_record(&mut rng, Kind::Case, &[village]);
            let mut ctx = Ctx {
                now_ms: 1_772_323_200_000 + i as u64,
                clock: &mut clock,
                rng: &mut rng,
                actor: &actor,
                author: &author,
                rules: &rules,
                schema: guihe_protocol::record::SCHEMA_VERSION,
            };
            Record::create(&mut ctx, new)
                .expect("create")
                .0
                .doc()
                .clone()
        })
        .collect()
}

async fn connect(
    alice: &Repo,
    acceptor: &AcceptorHandle,
    url: &Url,
    bytes: Arc<AtomicU64>,
) -> samod::DialerHandle<Infallible> {
    let dialer = CountingDialer {
        url: url.clone(),
        acceptor: acceptor.clone(),
        bytes,
    };
    let handle = alice
        .dial(BackoffConfig::default(), Arc::new(dialer))
        .expect("dial");
    tokio::time::timeout(Duration::from_secs(30), handle.established())
        .await
        .expect("established in time")
        .expect("established");
    handle
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let sizes: Vec<usize> = args
        .iter()
        .position(|a| a == "--sizes")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000]);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for n in sizes {
        let alice = Repo::build_tokio()
            .with_peer_id(PeerId::from("village"))
            .load()
            .await;
        let bob = Repo::build_tokio()
            .with_peer_id(PeerId::from("township"))
            .load()
            .await;
        let url = Url::parse("ws://localhost:1").expect("url");
        let acceptor = bob.make_acceptor(url.clone()).expect("acceptor");
        let mut handles: Vec<DocHandle> = Vec::with_capacity(n);
        for doc in documents(n) {
            handles.push(alice.create(doc).await.expect("create"));
        }
        // First contact: bob learns every document.
        let setup = Arc::new(AtomicU64::new(0));
        let first = connect(&alice, &acceptor, &url, setup.clone()).await;
        let mut bob_handles = Vec::with_capacity(n);
        for h in &handles {
            let found = tokio::time::timeout(Duration::from_secs(60), async {
                loop {
                    if let Some(d) = bob.find(h.document_id().clone()).await.expect("find") {
                        return d;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .expect("bob finds the document");
            bob_handles.push(found);
        }
        settle(&setup, Duration::from_secs(1), Duration::from_secs(120)).await;
        first.close();
        tokio::time::sleep(Duration::from_millis(500)).await;

        // Reconnect with nothing changed.
        let bytes = Arc::new(AtomicU64::new(0));
        let again = connect(&alice, &acceptor, &url, bytes.clone()).await;
        let nothing = settle(&bytes, Duration::from_secs(1), Duration::from_secs(120)).await;
        again.close();
        tokio::time::sleep(Duration::from_millis(500)).await;
        print(json, &format!("nothing_changed/{n}"), nothing, 0);

        // K changes on one side while apart, then reconnect.
        for k in [1usize, 10, 1_000] {
            if k > n {
                continue;
            }
            let mut change_bytes = 0u64;
            for _ in 0..k {
                let h = &handles[(rng.next_u32() as usize) % handles.len()];
                change_bytes += h.with_document(|doc| {
                    doc.transact_with::<_, _, automerge::AutomergeError, _>(
                        |_| {
                            automerge::transaction::CommitOptions::default()
                                .with_time(1_772_400_000_000)
                        },
                        |tx| {
                            tx.put(automerge::ROOT, "risk", "significant")?;
                            Ok(())
                        },
                    )
                    .expect("change");
                    doc.get_last_local_change()
                        .map_or(0, |c| c.raw_bytes().len() as u64)
                });
            }
            let bytes = Arc::new(AtomicU64::new(0));
            let conn = connect(&alice, &acceptor, &url, bytes.clone()).await;
            let total = settle(&bytes, Duration::from_secs(1), Duration::from_secs(120)).await;
            conn.close();
            tokio::time::sleep(Duration::from_millis(500)).await;
            print(json, &format!("{k}_new_changes/{n}"), total, change_bytes);
        }
        drop(bob_handles);
        alice.stop().await;
        bob.stop().await;
    }
}

fn print(json: bool, case: &str, bytes: u64, change_bytes: u64) {
    if json {
        println!(
            "{{\"bench\":\"sync\",\"case\":\"{case}\",\"system\":\"samod\",\"bytes\":{bytes},\"change_bytes\":{change_bytes}}}"
        );
    } else {
        println!("{case:<28} samod {bytes:>12} bytes   change bytes {change_bytes:>10}");
    }
}
