//! The crash loop: a village node killed with SIGKILL at a random point of a write and sync
//! burst, cycle after cycle. After every restart, each acknowledged write is there: every
//! case whose creation was acknowledged, and the acceptance of every case whose `accept`
//! was acknowledged. At the end, the township holds it all.
//!
//! `GUIHE_CRASH_CYCLES` sets the number of cycles (10 by default, as tests/run runs it; the
//! long run in BENCHMARKS.md used 100).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use guihe_tests::{Lab, arg, guihe};

const TOWNSHIP: &str = "500240001000";
const VILLAGE: &str = "500240001201";

#[test]
fn a_node_killed_at_random_points_of_a_burst_loses_no_acknowledged_write() {
    let cycles: u64 = std::env::var("GUIHE_CRASH_CYCLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let mut lab = Lab::new("crash");
    lab.add("township", "township", TOWNSHIP, None);
    lab.add("village", "village", VILLAGE, Some("township"));
    lab.start("township");
    let mut created: BTreeSet<String> = BTreeSet::new();
    let mut accepted: BTreeSet<String> = BTreeSet::new();
    // A fixed sequence of kill points, so a failing run can be repeated.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for cycle in 0..cycles {
        lab.start("village");
        let data = lab.data("village");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let burst = std::thread::spawn(move || {
            let mut made = Vec::new();
            let mut took = Vec::new();
            for i in 0..1_000 {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let summary = format!("崩溃循环 {cycle}-{i}");
                let Ok(id) = guihe(&[
                    "case",
                    "new",
                    "--data",
                    arg(&data),
                    "--village",
                    VILLAGE,
                    "--summary",
                    &summary,
                ]) else {
                    continue;
                };
                made.push(id.clone());
                if guihe(&[
                    "case",
                    "event",
                    "--data",
                    arg(&data),
                    &id,
                    "--type",
                    "accept",
                ])
                .is_ok()
                {
                    took.push(id);
                }
            }
            (made, took)
        });
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let kill_after = Duration::from_millis(200 + (seed >> 33) % 1_500);
        std::thread::sleep(kill_after);
        lab.kill("village");
        stop.store(true, Ordering::SeqCst);
        let (made, took) = burst.join().unwrap();
        created.extend(made);
        accepted.extend(took);

        // After the crash the store opens, and holds every acknowledged write.
        let held: Vec<serde_json::Value> =
            serde_json::from_str(&lab.ok("village", &["case", "list", "--json"])).unwrap();
        let status: std::collections::BTreeMap<&str, &str> = held
            .iter()
            .filter_map(|v| Some((v["id"].as_str()?, v["status"].as_str()?)))
            .collect();
        for id in &created {
            assert!(
                status.contains_key(id.as_str()),
                "cycle {cycle} (killed after {kill_after:?}): acknowledged case {id} lost\n{}",
                lab.logs()
            );
        }
        for id in &accepted {
            assert_ne!(
                status.get(id.as_str()).copied(),
                Some("registered"),
                "cycle {cycle}: the acknowledged acceptance of {id} was lost"
            );
        }
    }
    assert!(!created.is_empty());
    eprintln!(
        "{cycles} cycles: {} cases and {} acceptances acknowledged, none lost",
        created.len(),
        accepted.len()
    );

    // Back up once more, it converges with the township.
    lab.start("village");
    let want = created.len() as u64;
    lab.wait_for(
        "the township to hold every acknowledged case",
        Duration::from_secs(120),
        || {
            std::fs::read_to_string(lab.data("township").join("status.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["records"].as_u64())
                .unwrap_or(0)
                >= want
        },
    );
}
