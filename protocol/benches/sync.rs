//! Sync benchmark: bytes and round trips to reconnect, guihe's sessions against per-document
//! automerge sync (one `sync::State` per document, as automerge-repo keeps them), in the
//! same run.
//!
//! `cargo bench -p guihe-protocol --bench sync -- [--sizes 1000,10000,100000] [--json]`
//!
//! Cases:
//! - reconnect when nothing changed, for each size;
//! - reconnect after K = 1, 10 and 1,000 new changes on one side (over 10,000 records),
//!   against the bytes of the changes themselves. The two sides met before, so the
//!   dialler holds a watermark for the other and reconciles only the tail.

use std::collections::BTreeMap;
use std::time::Instant;

use automerge::Automerge;
use automerge::sync::{State, SyncDoc};
use guihe_protocol::cert::{CertBody, Identity, Keypair, Role, Root};
use guihe_protocol::deadline::Deadlines;
use guihe_protocol::host::{Config as HostConfig, loopback};
use guihe_protocol::id::RecordId;
use guihe_protocol::model::Kind;
use guihe_protocol::replica::Replica;
use guihe_protocol::store::{MemStore, Store, StoredChange};
use guihe_protocol::workload;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

const T0: u64 = 1_772_323_200_000;
const VILLAGE: &str = "500240101201";

type Node = Replica<MemStore>;

struct Line {
    case: String,
    system: &'static str,
    bytes: u64,
    round_trips: u32,
    change_bytes: u64,
    ms: f64,
}

fn identity(
    root: &Root,
    rng: &mut ChaCha8Rng,
    serial: u64,
    role: Role,
    division: &str,
) -> Identity {
    let key = Keypair::generate(rng);
    let cert = root
        .issue(CertBody {
            serial,
            node: key.public(),
            role,
            division: division.parse().expect("division"),
            not_before_ms: 0,
            not_after_ms: u64::MAX,
        })
        .expect("issue");
    Identity { key, cert }
}

/// Runs one connection through two hosts until both sides are quiet (`host::loopback`);
/// returns (bytes, round trips).
fn guihe_sync(root: &Root, a: &mut Node, b: &mut Node) -> (u64, u32) {
    let run = loopback(&HostConfig::default(), root.public(), a, b, T0, usize::MAX)
        .expect("the connection settles");
    // The hello flight is shared with the first reconciliation flight in a real
    // connection (both are sent at once), so a round trip is two flights.
    (run.a.bytes_out + run.b.bytes_out, run.flights.div_ceil(2))
}

/// Per-document automerge sync with fresh states (a reconnect); all documents sync in
/// parallel, so round trips are the most any document needed.
fn automerge_sync(
    a: &BTreeMap<RecordId, Automerge>,
    b: &BTreeMap<RecordId, Automerge>,
) -> (u64, u32) {
    let mut bytes = 0u64;
    let mut rounds_max = 0u32;
    for (id, doc_a) in a {
        let mut doc_a = doc_a.clone();
        let mut doc_b = b.get(id).cloned().unwrap_or_default();
        let (mut sa, mut sb) = (State::new(), State::new());
        let mut flights = 0u32;
        for _ in 0..100 {
            let mut moved = false;
            if let Some(m) = doc_a.generate_sync_message(&mut sa) {
                let enc = m.encode();
                bytes += enc.len() as u64;
                let m = automerge::sync::Message::decode(&enc).expect("decode");
                doc_b.receive_sync_message(&mut sb, m).expect("receive");
                moved = true;
            }
            if let Some(m) = doc_b.generate_sync_message(&mut sb) {
                let enc = m.encode();
                bytes += enc.len() as u64;
                let m = automerge::sync::Message::decode(&enc).expect("decode");
                doc_a.receive_sync_message(&mut sa, m).expect("receive");
                moved = true;
            }
            if !moved {
                break;
            }
            flights += 1;
        }
        rounds_max = rounds_max.max(flights);
    }
    (bytes, rounds_max)
}

fn docs(n: &Node) -> BTreeMap<RecordId, Automerge> {
    n.store
        .records()
        .expect("records")
        .into_iter()
        .filter_map(|id| n.store.doc(id).expect("doc").map(|d| (id, d)))
        .collect()
}

fn clone_node(n: &Node, identity: Identity) -> Node {
    Replica::new(
        identity,
        n.store.clone(),
        "bench".parse().expect("staff"),
        2,
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let sizes: Vec<usize> = args
        .iter()
        .position(|a| a == "--sizes")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000]);
    let k_base = 10_000.min(sizes.iter().copied().max().unwrap_or(10_000));

    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let root = Root::new(Keypair::generate(&mut rng));
    let rules = Deadlines::default();
    let village_id = identity(&root, &mut rng, 1, Role::Village, VILLAGE);
    let township_id = identity(&root, &mut rng, 2, Role::Township, "500240101000");
    let mut village = Replica::new(
        village_id.clone(),
        MemStore::new(),
        "bench".parse().expect("staff"),
        1,
    );
    let mut lines = Vec::new();

    let largest = sizes.iter().copied().max().unwrap_or(0);
    let mut made = 0usize;
    let mut ids = Vec::new();
    for &size in &sizes {
        while made < size {
            let new =
                workload::new_record(&mut rng, Kind::Case, &[VILLAGE.parse().expect("village")]);
            let (id, _) = village
                .create(T0 + made as u64, &mut rng, &rules, new)
                .expect("create");
            ids.push(id);
            made += 1;
        }
        // Nothing changed: the township holds exactly what the village holds.
        let mut a = clone_node(&village, village_id.clone());
        let mut b = clone_node(&village, township_id.clone());
        let started = Instant::now();
        let (bytes, rtt) = guihe_sync(&root, &mut a, &mut b);
        lines.push(Line {
            case: format!("nothing_changed/{size}"),
            system: "guihe",
            bytes,
            round_trips: rtt,
            change_bytes: 0,
            ms: started.elapsed().as_secs_f64() * 1e3,
        });
        let da = docs(&a);
        let started = Instant::now();
        let (bytes, rtt) = automerge_sync(&da, &da);
        lines.push(Line {
            case: format!("nothing_changed/{size}"),
            system: "automerge_per_doc",
            bytes,
            round_trips: rtt,
            change_bytes: 0,
            ms: started.elapsed().as_secs_f64() * 1e3,
        });
        if size == k_base {
            for k in [1usize, 10, 1_000] {
                let mut a = clone_node(&village, village_id.clone());
                let mut b = clone_node(&village, township_id.clone());
                // They met before: the village keeps a watermark for the township.
                guihe_sync(&root, &mut a, &mut b);
                let before_b = docs(&b);
                let mut new: Vec<StoredChange> = Vec::new();
                for i in 0..k {
                    let id = ids[(rng.next_u32() as usize) % ids.len()];
                    let fold = a.record(id).expect("record").fold(&rules).expect("fold");
                    let Some(cmd) = workload::next_command(&mut rng, &fold) else {
                        continue;
                    };
                    if let Ok((_, c)) =
                        a.apply(id, T0 + (largest + i) as u64 * 1_000, &mut rng, &rules, cmd)
                    {
                        new.extend(c);
                    }
                }
                let change_bytes: u64 = new.iter().map(|c| c.signed.bytes.len() as u64).sum();
                let after_a = docs(&a);
                let started = Instant::now();
                let (bytes, rtt) = guihe_sync(&root, &mut a, &mut b);
                lines.push(Line {
                    case: format!("{}_new_changes/{size}", new.len()),
                    system: "guihe",
                    bytes,
                    round_trips: rtt,
                    change_bytes,
                    ms: started.elapsed().as_secs_f64() * 1e3,
                });
                let started = Instant::now();
                let (bytes, rtt) = automerge_sync(&after_a, &before_b);
                lines.push(Line {
                    case: format!("{}_new_changes/{size}", new.len()),
                    system: "automerge_per_doc",
                    bytes,
                    round_trips: rtt,
                    change_bytes,
                    ms: started.elapsed().as_secs_f64() * 1e3,
                });
                let _ = k;
            }
        }
    }

    if json {
        for l in &lines {
            println!(
                "{{\"bench\":\"sync\",\"case\":\"{}\",\"system\":\"{}\",\"bytes\":{},\"round_trips\":{},\"change_bytes\":{},\"ms\":{:.1}}}",
                l.case, l.system, l.bytes, l.round_trips, l.change_bytes, l.ms
            );
        }
    } else {
        println!(
            "{:<28} {:<18} {:>12} {:>6} {:>13} {:>10}",
            "case", "system", "bytes", "RTT", "change bytes", "ms"
        );
        for l in &lines {
            println!(
                "{:<28} {:<18} {:>12} {:>6} {:>13} {:>10.1}",
                l.case, l.system, l.bytes, l.round_trips, l.change_bytes, l.ms
            );
        }
    }
}
