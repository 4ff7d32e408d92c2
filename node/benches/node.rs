//! Node benchmarks: durable local writes, ingest over real libp2p on loopback, and a
//! village node's memory.
//!
//! `cargo bench -p guihe-node --bench node -- [--cases N] [--rebuild] [--json]`
//!
//! - Durable write latency: commands through the node's sled store (each flushed before it
//!   returns), beside the same commands on the in-memory store in the same run.
//! - Ingest: a village holding N cases' changes meets a township over libp2p (two
//!   `guihe run` processes); the rate is changes over the time from the township verifying
//!   the village to its last received batch, read from the township's log.
//! - Memory: the resident set of both `guihe run` processes once they have settled.
//!
//! With `--rebuild`, the N cases are the township's own (recorded at the township for one
//! of its villages) and the node that meets it is a county whose store is empty: a county
//! rebuilt from nothing from its township, timed the same way. The page timings are left
//! out.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use guihe_node::config::Config;
use guihe_node::local::{self, Local};
use guihe_protocol::cert::{Keypair, Role, Root};
use guihe_protocol::deadline::Deadlines;
use guihe_protocol::division::{Division, VillageCode};
use guihe_protocol::model::Kind;
use guihe_protocol::replica::Replica;
use guihe_protocol::store::{MemStore, Store};
use guihe_protocol::workload;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

const VILLAGE: &str = "500240001201";

fn village() -> VillageCode {
    VILLAGE.parse().expect("village code")
}

fn node(
    dir: &Path,
    root: &Root,
    role: Role,
    division: &str,
    port: u16,
    bootstrap: Option<u16>,
) -> PathBuf {
    let data = dir.to_path_buf();
    local::init_enrolled(
        &data,
        root,
        u64::from(port),
        role,
        division.parse().expect("division"),
        30,
    )
    .expect("enrol");
    let mut config = Config::load(&data).expect("config");
    config.listen = vec![format!("/ip4/127.0.0.1/tcp/{port}")];
    config.bootstrap = bootstrap
        .map(|b| format!("/ip4/127.0.0.1/tcp/{b}"))
        .into_iter()
        .collect();
    config.mdns = false;
    config.http = "127.0.0.1:0".into();
    config.save(&data).expect("save");
    data
}

/// Times the township's pages over HTTP, as a browser would ask for them: the case list
/// (every case, rendered), the dashboard, and the JSON they are built from as the baseline.
fn pages(dir: &Path, cases: usize, lines: &mut Vec<(String, f64, String)>) {
    let endpoint: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("api.json")).expect("api.json"))
            .expect("json");
    let url = endpoint["url"].as_str().expect("url").to_string();
    let token = endpoint["token"].as_str().expect("token").to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let r = agent
        .post(format!("{url}/login"))
        .send_form([("name", "bench"), ("password", "bench-password")])
        .expect("login");
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("cookie")
        .to_string();
    let time = |path: &str, auth: bool| -> (f64, f64, usize) {
        let mut t = Vec::new();
        let mut bytes = 0;
        // The first request also brings the views up to date after the ingest.
        for i in 0..21 {
            let started = Instant::now();
            let request = agent.get(format!("{url}{path}"));
            let request = if auth {
                request.header("Authorization", &format!("Bearer {token}"))
            } else {
                request.header("Cookie", &cookie)
            };
            let mut r = request.call().expect("get");
            bytes = r.body_mut().read_to_vec().map(|b| b.len()).unwrap_or(0);
            if i > 0 {
                t.push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
        (percentile(&mut t, 0.5), percentile(&mut t, 0.95), bytes)
    };
    // The first request brings the views up to date after the ingest; not timed.
    let _ = time("/api/v1/stats", true);
    let (list50, list95, list_bytes) = time("/cases", false);
    let (json50, json95, _) = time("/api/v1/cases", true);
    let (dash50, dash95, _) = time("/dashboard", false);
    let (stats50, stats95, _) = time("/api/v1/stats", true);
    lines.push((
        "case_list_page_p50_ms".into(),
        list50,
        format!(
            "/cases over {cases} cases, {} KiB of HTML",
            list_bytes / 1024
        ),
    ));
    lines.push(("case_list_page_p95_ms".into(), list95, String::new()));
    lines.push((
        "case_list_json_p50_ms".into(),
        json50,
        "baseline: /api/v1/cases, the same views as JSON".into(),
    ));
    lines.push(("case_list_json_p95_ms".into(), json95, String::new()));
    lines.push((
        "dashboard_page_p50_ms".into(),
        dash50,
        "/dashboard, with its chart".into(),
    ));
    lines.push(("dashboard_page_p95_ms".into(), dash95, String::new()));
    lines.push((
        "stats_api_p50_ms".into(),
        stats50,
        "baseline: /api/v1/stats, the figures alone".into(),
    ));
    lines.push(("stats_api_p95_ms".into(), stats95, String::new()));
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(((v.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

/// Seconds within the day of a log line's timestamp (`2026-11-28T13:43:10.421012Z ...`).
fn log_time(line: &str) -> Option<f64> {
    let t = line.split_whitespace().next()?;
    let time = t.split('T').nth(1)?.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn status_changes(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("status.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["changes"].as_u64())
        .unwrap_or(0) as usize
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let rebuild = args.iter().any(|a| a == "--rebuild");
    let cases: usize = args
        .iter()
        .position(|a| a == "--cases")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let tmp = std::env::temp_dir().join(format!("guihe-bench-node-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let root = Root::new(Keypair::generate(&mut rng));
    let rules = Deadlines::default();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port")
    };
    let (tp, vp) = (free(), free());
    // The node that receives (`township_dir`: a township, or a county being rebuilt) and
    // the node that holds the cases and dials it (`village_dir`: a village, or the
    // township whose villages the county rebuilds from).
    let (receiver, holder) = if rebuild {
        (
            (Role::County, "500240000000", "county"),
            (Role::Township, "500240001000", "township"),
        )
    } else {
        (
            (Role::Township, "500240001000", "township"),
            (Role::Village, VILLAGE, "village"),
        )
    };
    let township_dir = node(
        &tmp.join(receiver.2),
        &root,
        receiver.0,
        receiver.1,
        tp,
        None,
    );
    let village_dir = node(&tmp.join(holder.2), &root, holder.0, holder.1, vp, Some(tp));
    let mut lines: Vec<(String, f64, String)> = Vec::new();

    // 1. Durable write latency, beside the in-memory store.
    let writes = 500usize.min(cases);
    let mut local = Local::open(&village_dir).expect("open");
    let mut mem = Replica::new(
        local.replica.identity.clone(),
        MemStore::new(),
        "bench".parse().expect("staff"),
        2,
    );
    let mut durable = Vec::with_capacity(writes);
    let mut in_memory = Vec::with_capacity(writes);
    for i in 0..writes {
        let new = workload::new_record(&mut rng, Kind::Case, &[village()]);
        let started = Instant::now();
        let _ = mem.create(local::now_ms() + i as u64, &mut rng, &rules, new.clone());
        in_memory.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        local.create(new).expect("create");
        durable.push(started.elapsed().as_secs_f64() * 1e3);
    }
    lines.push((
        "durable_write_p50_ms".into(),
        percentile(&mut durable, 0.5),
        "new case, sled, flushed".into(),
    ));
    lines.push((
        "durable_write_p99_ms".into(),
        percentile(&mut durable, 0.99),
        "new case, sled, flushed".into(),
    ));
    lines.push((
        "memory_write_p50_ms".into(),
        percentile(&mut in_memory, 0.5),
        "baseline: the same on MemStore".into(),
    ));
    lines.push((
        "memory_write_p99_ms".into(),
        percentile(&mut in_memory, 0.99),
        "baseline: the same on MemStore".into(),
    ));

    // 2. Fill the village up to N cases (half with a second event), written in memory and
    // stored in one batch: this benchmark measures sync, not the workload.
    let mut fill = Replica::new(
        local.replica.identity.clone(),
        MemStore::new(),
        "bench".parse().expect("staff"),
        3,
    );
    let mut t = local::now_ms();
    let mut ids = Vec::new();
    for _ in 0..cases.saturating_sub(writes) {
        t += 1;
        let new = workload::new_record(&mut rng, Kind::Case, &[village()]);
        let (id, _) = fill.create(t, &mut rng, &rules, new).expect("create");
        ids.push(id);
    }
    for (n, id) in ids.iter().enumerate() {
        if n % 2 == 0 {
            let fold = fill
                .record(*id)
                .expect("record")
                .fold(&rules)
                .expect("fold");
            if let Some(cmd) = workload::next_command(&mut rng, &fold) {
                let _ = fill.apply(*id, t + n as u64, &mut rng, &rules, cmd);
            }
        }
    }
    let keys = fill
        .store
        .keys(Division::Village(village()), &|_| true)
        .expect("keys");
    let changes: Vec<_> = keys
        .iter()
        .filter_map(|(_, h)| fill.store.change(h).ok().flatten())
        .collect();
    local.replica.store.put_changes(&changes).expect("put");

    // Baseline for ingest: the same changes verified and ingested in this process into the
    // in-memory store, in batches of 400 as a session would carry them: no network, no
    // disk.
    {
        let mut mem = MemStore::new();
        mem.put_certificate(&local.replica.identity.cert)
            .expect("cert");
        let started = Instant::now();
        for batch in changes.chunks(400) {
            let signed = batch.iter().map(|c| c.signed.clone()).collect();
            let verified = guihe_protocol::signed::verify_batch_with(
                signed,
                &guihe_protocol::store::StoreCerts(&mem),
                &Default::default(),
                &guihe_node::threads::Threads::of_machine(),
            )
            .expect("verify");
            guihe_protocol::ingest::ingest(&mut mem, verified, 0).expect("ingest");
        }
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        lines.push((
            "ingest_in_memory_changes_per_s".into(),
            changes.len() as f64 / secs,
            format!(
                "baseline: the same {} changes verified and ingested in-process, MemStore",
                changes.len()
            ),
        ));
    }
    for id in &ids {
        if let Ok(Some(doc)) = fill.store.doc(*id) {
            local
                .replica
                .store
                .put_doc(*id, &doc, &Default::default())
                .expect("doc");
        }
    }
    let total = local.replica.store.change_count();
    drop(local);

    // 3. Ingest over libp2p, and memory.
    let bin = env!("CARGO_BIN_EXE_guihe");
    let spawn = |dir: &Path| {
        let log = std::fs::File::create(dir.join("run.log")).expect("log");
        Command::new(bin)
            .args(["run", "--data"])
            .arg(dir)
            .args(["--for-seconds", "300"])
            // (The core logs each verified peer and each received batch.)
            .env(
                "RUST_LOG",
                "warn,guihe_node::net=info,guihe_node::core=info",
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn")
    };
    // A web account on the township, for the page timings below.
    if !rebuild {
        guihe_node::api::execute(
            &mut Local::open(&township_dir).expect("open"),
            None,
            guihe_node::api::Call::AddStaff {
                name: "bench".into(),
                display: "bench".into(),
                role: "township_reviewer".into(),
                password: "bench-password".into(),
            },
        )
        .expect("staff");
    }
    let mut township = spawn(&township_dir);
    let mut village_node = spawn(&village_dir);
    let started = Instant::now();
    while status_changes(&township_dir) < total && started.elapsed() < Duration::from_secs(280) {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let village_rss = rss_kib(village_node.id());
    let township_rss = rss_kib(township.id());
    if !rebuild {
        pages(&township_dir, cases, &mut lines);
    }
    for child in [&mut township, &mut village_node] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let log = std::fs::read_to_string(township_dir.join("run.log")).unwrap_or_default();
    let first = log
        .lines()
        .find(|l| l.contains("peer verified"))
        .and_then(log_time);
    let last = log
        .lines()
        .filter(|l| l.contains("received"))
        .filter_map(log_time)
        .next_back();
    let received: usize = log
        .lines()
        .filter(|l| l.contains("received"))
        .filter_map(|l| {
            l.split("changes=")
                .nth(1)
                .and_then(|n| n.trim().parse::<usize>().ok())
        })
        .sum();
    let (Some(a), Some(b)) = (first, last) else {
        panic!(
            "the receiving node's log names no verified peer or no received batch: the ingest rate \
             cannot be measured (log: {})",
            township_dir.join("run.log").display()
        );
    };
    let secs = (b - a).max(1e-3);
    lines.push((
        "ingest_changes_per_s".into(),
        received as f64 / secs,
        format!(
            "{received} of {total} changes in {secs:.2} s, libp2p over TCP loopback{}",
            if rebuild {
                ", a county rebuilt from its township"
            } else {
                ""
            }
        ),
    ));
    lines.push((
        format!("{}_rss_mib", holder.2),
        village_rss as f64 / 1024.0,
        format!("the {} holding {cases} cases ({total} changes)", holder.2),
    ));
    lines.push((
        format!("{}_rss_mib", receiver.2),
        township_rss as f64 / 1024.0,
        format!("the {} after ingesting them", receiver.2),
    ));
    let _ = std::fs::remove_dir_all(&tmp);

    for (name, value, note) in &lines {
        if json {
            println!(
                "{{\"bench\":\"node\",\"name\":\"{name}\",\"value\":{value:.3},\"note\":\"{note}\"}}"
            );
        } else {
            println!("{name:<24} {value:>12.3}  {note}");
        }
    }
}
