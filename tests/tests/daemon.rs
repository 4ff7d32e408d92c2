//! Real `guihe run` processes on loopback: writing while the daemons run, a township that
//! goes away and comes back, a node killed in the middle of a write burst, and nodes that
//! must get nothing.

use std::time::Duration;

use guihe_tests::{Lab, arg, enrolled_node, guihe, ok};

const COUNTY: &str = "500240000000";
const TOWNSHIP: &str = "500240001000";
const VILLAGE: &str = "500240001201";

fn new_case(lab: &Lab, node: &str, summary: &str) -> Result<String, String> {
    lab.guihe(
        node,
        &[
            "case",
            "new",
            "--village",
            VILLAGE,
            "--category",
            "neighbour",
            "--summary",
            summary,
            "--party",
            "冉光荣",
        ],
    )
}

fn records(lab: &Lab, node: &str) -> u64 {
    std::fs::read_to_string(lab.data(node).join("status.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["records"].as_u64())
        .unwrap_or(0)
}

/// Waits until every node in `nodes` shows the same JSON for each record.
fn converge(lab: &Lab, nodes: &[&str], ids: &[String], limit: Duration) {
    lab.wait_for("the nodes to converge", limit, || {
        ids.iter().all(|id| {
            let first = lab.show(nodes[0], id);
            first.is_some() && nodes.iter().all(|n| lab.show(n, id) == first)
        })
    });
}

#[test]
fn a_stopped_township_catches_up_and_every_node_converges() {
    let mut lab = Lab::new("stopped");
    lab.add("county", "county", COUNTY, None);
    lab.add("township", "township", TOWNSHIP, Some("county"));
    lab.add("village", "village", VILLAGE, Some("township"));
    for n in ["county", "township", "village"] {
        lab.start(n);
    }
    // Written through the running village's API, pushed up at once.
    let first = new_case(&lab, "village", "山林边界争议").unwrap();
    lab.ok("village", &["case", "event", &first, "--type", "accept"]);
    converge(
        &lab,
        &["village", "township", "county"],
        std::slice::from_ref(&first),
        Duration::from_secs(60),
    );

    // The township goes away. Both sides keep working.
    lab.kill("township");
    let second = new_case(&lab, "village", "宅基地滴水纠纷").unwrap();
    lab.ok(
        "village",
        &[
            "case",
            "event",
            &first,
            "--type",
            "session",
            "--place",
            "村委会",
            "--note",
            "双方同意再谈",
        ],
    );
    lab.ok(
        "county",
        &[
            "case",
            "event",
            &first,
            "--type",
            "assign",
            "--to",
            "tan-mediator",
            "--note",
            "县司法局指派",
            "--staff",
            "county-analyst",
        ],
    );
    // Nothing moves while the township is down.
    std::thread::sleep(Duration::from_secs(2));
    assert!(lab.show("county", &second).is_none());

    lab.start("township");
    converge(
        &lab,
        &["village", "township", "county"],
        &[first.clone(), second],
        Duration::from_secs(90),
    );
    // Both sides' events are in the merged timeline: intake, accept, the village's session
    // and the county's assignment.
    let timeline = lab.ok("village", &["case", "show", &first]);
    let events = timeline
        .split("时间线 timeline:")
        .nth(1)
        .unwrap_or_default();
    assert_eq!(
        events.lines().filter(|l| !l.trim().is_empty()).count(),
        4,
        "{timeline}"
    );
    assert!(events.contains("county-analyst"), "{timeline}");
    // The township's status: its peers with their last sync, and how fresh each village's
    // data is.
    let status = lab.ok("township", &["status"]);
    assert!(status.contains("运行中 running"), "{status}");
    assert!(
        status.contains(COUNTY) && status.contains("last sync"),
        "{status}"
    );
    let freshness = status.split("freshness").nth(1).unwrap_or_default();
    assert!(freshness.contains(VILLAGE), "{status}");
    // A record the running node does not hold: said once, in Chinese first.
    let e = lab
        .guihe(
            "township",
            &["case", "show", "case-00000000000000000000000000000000"],
        )
        .unwrap_err();
    assert!(
        e.contains("本节点没有记录") && e.matches("no record").count() == 1,
        "{e}"
    );
    // The village dialled the township: seen from the township, the link has synced too.
    let village_peer = status
        .lines()
        .find(|l| l.trim_start().starts_with(VILLAGE))
        .unwrap_or_else(|| panic!("no peer line for the village: {status}"));
    assert!(
        !village_peer.contains("从未") && village_peer.contains("前"),
        "{village_peer}"
    );
}

#[test]
fn a_node_killed_mid_burst_keeps_every_acknowledged_write() {
    let mut lab = Lab::new("sigkill");
    lab.add("township", "township", TOWNSHIP, None);
    lab.add("village", "village", VILLAGE, Some("township"));
    lab.start("township");
    let mut acknowledged: Vec<String> = Vec::new();
    for cycle in 0..3 {
        lab.start("village");
        // A burst of writes from another thread; the node is killed in the middle of it.
        let data = lab.data("village");
        let killed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = killed.clone();
        let burst = std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut failed = 0;
            for i in 0..400 {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let summary = format!("第{cycle}轮第{i}件");
                match guihe(&[
                    "case",
                    "new",
                    "--data",
                    arg(&data),
                    "--village",
                    VILLAGE,
                    "--summary",
                    &summary,
                ]) {
                    Ok(id) => acked.push(id),
                    Err(_) => {
                        failed += 1;
                        if failed > 20 {
                            break;
                        }
                    }
                }
            }
            acked
        });
        std::thread::sleep(Duration::from_millis(1_500 + 500 * cycle));
        lab.kill("village");
        killed.store(true, std::sync::atomic::Ordering::SeqCst);
        let acked = burst.join().unwrap();
        assert!(
            !acked.is_empty(),
            "no write was acknowledged before the kill"
        );
        acknowledged.extend(acked);
    }
    // After the last kill, the store opens cleanly and holds every acknowledged write.
    let held: Vec<serde_json::Value> =
        serde_json::from_str(&lab.ok("village", &["case", "list", "--json"])).unwrap();
    let held: std::collections::BTreeSet<&str> =
        held.iter().filter_map(|v| v["id"].as_str()).collect();
    for id in &acknowledged {
        assert!(
            held.contains(id.as_str()),
            "acknowledged {id} was lost\n{}",
            lab.logs()
        );
    }
    lab.ok("village", &["status"]);
    lab.start("village");
    lab.wait_for(
        "the township to hold every acknowledged write",
        Duration::from_secs(120),
        || records(&lab, "township") >= acknowledged.len() as u64,
    );
    converge(
        &lab,
        &["village", "township"],
        &acknowledged[..acknowledged.len().min(5)],
        Duration::from_secs(30),
    );
}

#[test]
fn a_revoked_node_and_another_countys_node_get_nothing() {
    let mut lab = Lab::new("revoked");
    lab.add("county", "county", COUNTY, None);
    lab.add("township", "township", TOWNSHIP, Some("county"));
    lab.add("village", "village", VILLAGE, Some("township"));
    // The village's old PC, stolen: same village, its own certificate, soon revoked.
    let stolen = lab.add("stolen", "village", VILLAGE, Some("township"));

    // A node of another county's root, for the same village code.
    let foreign_dir = lab.dir.join("elsewhere");
    std::fs::create_dir_all(&foreign_dir).unwrap();
    ok(&["county", "init", "--out", arg(&foreign_dir.join("county"))]);
    let foreign = enrolled_node(&foreign_dir, "foreign", "village", VILLAGE, &[]);
    lab.adopt("foreign", &foreign, "township");

    let list = lab.dir.join("revocations.list");
    let out = ok(&[
        "county",
        "revoke",
        "--county-key",
        arg(&lab.dir.join("county/county.key")),
        "--cert",
        arg(&lab.dir.join("stolen.cert")),
        "--list",
        arg(&list),
    ]);
    assert!(out.contains("version 1"), "{out}");
    for n in ["county", "township", "village"] {
        lab.start(n);
    }
    // Installed on the running county; it passes the list on to the township at once.
    lab.ok("county", &["revocations", "--list", arg(&list)]);
    let secret = new_case(&lab, "village", "未成年人抚养纠纷").unwrap();
    converge(
        &lab,
        &["village", "township", "county"],
        std::slice::from_ref(&secret),
        Duration::from_secs(60),
    );
    lab.wait_for(
        "the township to take the revocation list",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(lab.data("township").join("run.log"))
                .unwrap_or_default()
                .contains("revocation list updated")
        },
    );

    lab.start("stolen");
    lab.start("foreign");
    // Give them time to dial and be refused (a legitimate village syncs in about a second).
    std::thread::sleep(Duration::from_secs(8));
    for n in ["stolen", "foreign"] {
        assert_eq!(records(&lab, n), 0, "{n} got records\n{}", lab.logs());
        assert!(lab.show(n, &secret).is_none());
    }
    let township_log = std::fs::read_to_string(lab.data("township").join("run.log")).unwrap();
    assert!(
        township_log.contains("session ended"),
        "the township never refused anyone\n{township_log}"
    );
    drop(stolen);
}
