//! Real `guihe run` processes syncing over libp2p on loopback.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use guihe_tests::{arg, enrolled_node, ok};

fn bin() -> PathBuf {
    guihe_tests::guihe_bin().unwrap()
}

fn p(path: &Path) -> &str {
    arg(path)
}

struct Nodes {
    dir: PathBuf,
    children: Vec<Child>,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn node(
    dir: &Path,
    name: &str,
    role: &str,
    division: &str,
    port: u16,
    bootstrap: Option<u16>,
) -> PathBuf {
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let boot = bootstrap.map(|b| format!("/ip4/127.0.0.1/tcp/{b}"));
    let mut extra = vec![
        "--listen",
        listen.as_str(),
        "--no-mdns",
        "--http",
        "127.0.0.1:0",
    ];
    if let Some(b) = &boot {
        extra.extend(["--bootstrap", b.as_str()]);
    }
    enrolled_node(dir, name, role, division, &extra)
}

fn start(data: &Path) -> Child {
    let log = std::fs::File::create(data.join("run.log")).unwrap();
    Command::new(bin())
        .args(["run", "--data", p(data), "--for-seconds", "120"])
        .env("RUST_LOG", "info,guihe_node=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn logs(dirs: &[&Path]) -> String {
    dirs.iter()
        .map(|d| {
            format!(
                "--- {}\n{}",
                d.display(),
                std::fs::read_to_string(d.join("run.log")).unwrap_or_default()
            )
        })
        .collect()
}

fn records(data: &Path) -> usize {
    std::fs::read_to_string(data.join("status.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["records"].as_u64())
        .unwrap_or(0) as usize
}

fn wait_for(what: &str, limit: Duration, logs: impl Fn() -> String, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while started.elapsed() < limit {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}\n{}", logs());
}

#[test]
fn a_case_recorded_at_a_village_reaches_its_township_and_the_county() {
    let dir = std::env::temp_dir().join(format!("guihe-mesh-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut nodes = Nodes {
        dir: dir.clone(),
        children: Vec::new(),
    };
    ok(&["county", "init", "--out", p(&dir.join("county"))]);
    let base = 20_000 + (std::process::id() % 20_000) as u16;
    let county = node(&dir, "county", "county", "500240000000", base, None);
    let township = node(
        &dir,
        "township",
        "township",
        "500240001000",
        base + 1,
        Some(base),
    );
    let village = node(
        &dir,
        "village",
        "village",
        "500240001201",
        base + 2,
        Some(base + 1),
    );
    let other = node(
        &dir,
        "other",
        "village",
        "500240002201",
        base + 3,
        Some(base),
    );

    let id = ok(&[
        "case",
        "new",
        "--data",
        p(&village),
        "--village",
        "500240001201",
        "--category",
        "neighbour",
        "--summary",
        "邻里排水沟纠纷",
        "--party",
        "谭德明",
    ]);
    ok(&[
        "case",
        "event",
        "--data",
        p(&village),
        &id,
        "--type",
        "accept",
    ]);
    ok(&[
        "case",
        "new",
        "--data",
        p(&other),
        "--village",
        "500240002201",
        "--summary",
        "另一乡镇的纠纷",
    ]);

    for data in [&county, &township, &village, &other] {
        nodes.children.push(start(data));
    }
    let all = [
        county.as_path(),
        township.as_path(),
        village.as_path(),
        other.as_path(),
    ];
    let show = || logs(&all);
    wait_for(
        "the county to hold both records",
        Duration::from_secs(90),
        show,
        || records(&county) == 2,
    );
    wait_for(
        "the township to hold the village's record",
        Duration::from_secs(30),
        show,
        || records(&township) == 1,
    );
    // Stop them, then compare the record where the stores can be opened again.
    for c in &mut nodes.children {
        let _ = c.kill();
        let _ = c.wait();
    }
    nodes.children.clear();
    let at_village = ok(&["case", "show", "--data", p(&village), &id, "--json"]);
    let at_county = ok(&["case", "show", "--data", p(&county), &id, "--json"]);
    let at_township = ok(&["case", "show", "--data", p(&township), &id, "--json"]);
    assert_eq!(at_village, at_county);
    assert_eq!(at_village, at_township);
    // The other township's village never saw the first village's case.
    assert!(ok(&["case", "list", "--data", p(&other)]).ends_with("1 件纠纷 cases"));
    let out = Command::new(bin())
        .args(["case", "show", "--data", p(&other), &id])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
