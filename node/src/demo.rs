//! `guihe demo`: a small county of real nodes on this machine.
//!
//! It makes a county root and seven nodes (the county, two townships, four villages) in one
//! folder, each with its own key, certificate, sled store and configuration, listening on
//! loopback. Village workers' cases and a petition are recorded with the same commands the
//! offices use. Then seven `guihe run` processes start and sync over libp2p until the county
//! holds everything. A link outage is staged: while the nodes are stopped, the village
//! resolves a case that the township refers upward; after they sync again, the county sees
//! the record flagged for review. Finally the demo prints where everything is and how to
//! look at it.

// `dirs` and `ports` are built in step with the fixed `NODES` table, so indexing them by a
// node's position cannot go out of bounds.
#![allow(clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use guihe_protocol::cert::{Keypair, Role, Root};
use guihe_protocol::division::Division;
use guihe_protocol::event::{Acceptance, Body, Note, Refer, ReferLevel, Session};
use guihe_protocol::id::RecordId;
use guihe_protocol::model::Kind;
use guihe_protocol::record::Command as RecordCommand;
use guihe_protocol::store::Store;
use guihe_protocol::workload;

use crate::config::Config;
use crate::local::{self, Local, LocalError};

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Setting up a node failed.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// A folder or process could not be made.
    #[error("{0}")]
    Io(String),
    /// The nodes did not converge in time.
    #[error("the nodes did not sync within {0} seconds; see the logs in {1}")]
    Timeout(u64, String),
}

struct NodeSpec {
    name: &'static str,
    label: &'static str,
    role: Role,
    division: &'static str,
    bootstrap: Option<usize>,
}

const NODES: &[NodeSpec] = &[
    NodeSpec {
        name: "county",
        label: "石柱县综治中心 county",
        role: Role::County,
        division: "500240000000",
        bootstrap: None,
    },
    NodeSpec {
        name: "nanbin",
        label: "南宾街道 township",
        role: Role::Township,
        division: "500240001000",
        bootstrap: Some(0),
    },
    NodeSpec {
        name: "xituo",
        label: "西沱镇 township",
        role: Role::Township,
        division: "500240004000",
        bootstrap: Some(0),
    },
    NodeSpec {
        name: "village-1",
        label: "示例一村 village",
        role: Role::Village,
        division: "500240001201",
        bootstrap: Some(1),
    },
    NodeSpec {
        name: "village-2",
        label: "示例二村 village",
        role: Role::Village,
        division: "500240001202",
        bootstrap: Some(1),
    },
    NodeSpec {
        name: "village-3",
        label: "示例三村 village",
        role: Role::Village,
        division: "500240004201",
        bootstrap: Some(2),
    },
    NodeSpec {
        name: "village-4",
        label: "示例四村 village",
        role: Role::Village,
        division: "500240004202",
        bootstrap: Some(2),
    },
];

fn io(e: impl std::fmt::Display) -> DemoError {
    DemoError::Io(e.to_string())
}

/// A port free now for a node to listen on. It is chosen below the range the system hands
/// out for outgoing connections (32768 and up on Linux): a port from that range, free when
/// chosen, could be taken by one of the other nodes' connections before its node binds it.
fn free_port() -> Result<u16, DemoError> {
    use rand::Rng;
    let mut rng = rand::rng();
    for _ in 0..200 {
        let port = rng.random_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io)?;
    Ok(listener.local_addr().map_err(io)?.port())
}

struct Running(Vec<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start(dirs: &[PathBuf]) -> Result<Running, DemoError> {
    start_for(dirs, 600)
}

fn start_for(dirs: &[PathBuf], seconds: u64) -> Result<Running, DemoError> {
    let exe = std::env::current_exe().map_err(io)?;
    let mut children = Vec::new();
    for d in dirs {
        // Where a node's API is comes from this run alone: a node stopped hard leaves its
        // last api.json behind, with a port it no longer listens on.
        let _ = std::fs::remove_file(d.join("api.json"));
        let log = std::fs::File::create(d.join("run.log")).map_err(io)?;
        let child = Command::new(&exe)
            .args(["run", "--data"])
            .arg(d)
            .args(["--for-seconds", &seconds.to_string()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(io)?;
        children.push(child);
    }
    Ok(Running(children))
}

fn changes_in_status(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("status.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["changes"].as_u64())
        .unwrap_or(0) as usize
}

/// Every change any node holds: what the county must end up with.
fn all_changes(dirs: &[PathBuf]) -> Result<usize, DemoError> {
    let mut all = BTreeSet::new();
    for d in dirs {
        let local = Local::open(d)?;
        let division = local.replica.identity.cert.body.division;
        for (_, h) in local
            .replica
            .store
            .keys(division, &|_| true)
            .map_err(|e| DemoError::Io(e.to_string()))?
        {
            all.insert(h);
        }
    }
    Ok(all.len())
}

fn sync_all(dirs: &[PathBuf], out: &Path) -> Result<Duration, DemoError> {
    let want = all_changes(dirs)?;
    let started = Instant::now();
    let running = start(dirs)?;
    let county = dirs.first().ok_or_else(|| io("no county"))?;
    while changes_in_status(county) < want {
        if started.elapsed() > Duration::from_secs(90) {
            return Err(DemoError::Timeout(90, out.display().to_string()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let the townships' last acknowledgements land before stopping.
    std::thread::sleep(Duration::from_millis(500));
    drop(running);
    Ok(started.elapsed())
}

/// The demo accounts' password.
const DEMO_PASSWORD: &str = "guihe-demo";

/// Runs the demo in `out` (made fresh). With `serve`, the nodes keep running afterwards
/// for a person to look at them in a browser, until Ctrl-C.
pub fn run(out: &Path, serve: bool) -> Result<(), DemoError> {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).map_err(io)?;
    println!(
        "贵和 guihe 演示 demo: 1 county, 2 townships, 4 villages, as real nodes on this machine"
    );
    println!(
        "县 500240 石柱土家族自治县 · 乡镇 南宾街道, 西沱镇 · 村 villages: synthetic names and codes\n"
    );

    // The county root and the nodes, enrolled as an operator would.
    let root = Root::new(Keypair::generate(&mut rand::rng()));
    let mut dirs = Vec::new();
    let mut ports = Vec::new();
    for spec in NODES {
        ports.push(free_port()?);
        let dir = out.join(spec.name);
        let division: Division = spec.division.parse().map_err(io)?;
        local::init_enrolled(&dir, &root, dirs.len() as u64 + 1, spec.role, division, 365)?;
        dirs.push(dir);
    }
    for (i, spec) in NODES.iter().enumerate() {
        let dir = &dirs[i];
        let mut config = Config::load(dir).map_err(io)?;
        config.listen = vec![format!("/ip4/127.0.0.1/tcp/{}", ports[i])];
        config.bootstrap = spec
            .bootstrap
            .and_then(|b| ports.get(b))
            .map(|p| format!("/ip4/127.0.0.1/tcp/{p}"))
            .into_iter()
            .collect();
        config.mdns = false;
        // The node picks its own HTTP port and says which in api.json.
        config.http = "127.0.0.1:0".into();
        config.staff = if spec.role == Role::Village {
            "mediator".into()
        } else {
            "reviewer".into()
        };
        config.save(dir).map_err(io)?;
        // A web account for each office, to look around with.
        let (name, role) = match spec.role {
            Role::Village => ("mediator", "mediator"),
            Role::Township => ("reviewer", "township_reviewer"),
            _ => ("analyst", "county_analyst"),
        };
        crate::api::execute(
            &mut Local::open(dir)?,
            None,
            crate::api::Call::AddStaff {
                name: name.into(),
                display: format!("演示 {}", spec.label),
                role: role.into(),
                password: DEMO_PASSWORD.into(),
            },
        )
        .map_err(io)?;
    }

    // Every office runs this release, so the county allows the newest record schema (the
    // parties' particulars, the matter's, case numbers) from the start: its settings, as
    // `guihe settings --record-schema` installs them and sync carries them.
    let settings = root
        .settings(guihe_protocol::cert::SettingsBody {
            version: 1,
            record_schema: guihe_protocol::record::SCHEMA_VERSION,
            issued_ms: local::now_ms(),
        })
        .map_err(io)?;
    for dir in &dirs {
        crate::api::execute(
            &mut Local::open(dir)?,
            None,
            crate::api::Call::Settings {
                settings: settings.clone(),
            },
        )
        .map_err(io)?;
    }

    // Village workers record their cases.
    let mut rng = rand::rng();
    let mut contested = None;
    for (i, spec) in NODES
        .iter()
        .enumerate()
        .filter(|(_, s)| s.role == Role::Village)
    {
        let mut local = Local::open(&dirs[i])?;
        let village = spec.division.parse().map_err(io)?;
        for n in 0..3 {
            let mut new = workload::new_record(&mut rng, Kind::Case, &[village]);
            workload::with_particulars(
                &mut rng,
                &mut new,
                spec.label.split(' ').next().unwrap_or(""),
            );
            let (id, _) = local.create(new)?;
            for _ in 0..(2 + n) {
                let fold = local
                    .replica
                    .record(id)
                    .map_err(LocalError::from)?
                    .fold(&local.config.deadlines)
                    .map_err(io)?;
                if let Some(cmd) = workload::next_command(&mut rng, &fold) {
                    local.apply(id, cmd)?;
                }
            }
        }
        if spec.name == "village-1" {
            let mut petition = workload::new_record(&mut rng, Kind::Petition, &[village]);
            workload::with_particulars(
                &mut rng,
                &mut petition,
                spec.label.split(' ').next().unwrap_or(""),
            );
            local.create(petition)?;
            let mut new = workload::new_record(&mut rng, Kind::Case, &[village]);
            workload::with_particulars(
                &mut rng,
                &mut new,
                spec.label.split(' ').next().unwrap_or(""),
            );
            new.summary = "两户因山林边界争执，村调解员已介入。".into();
            let (id, _) = local.create(new)?;
            local.apply(
                id,
                RecordCommand::Event {
                    at_ms: None,
                    body: Body::Accept(Acceptance::default()),
                },
            )?;
            local.apply(
                id,
                RecordCommand::Event {
                    at_ms: None,
                    body: Body::Session(Session {
                        place: "田间现场".into(),
                        note: "双方各执一词。".into(),
                    }),
                },
            )?;
            contested = Some(id);
        }
    }
    let contested: RecordId = contested.ok_or_else(|| io("no contested case"))?;

    let took = sync_all(&dirs, out)?;
    println!(
        "第一次同步 first sync over libp2p: the county holds every record ({:.1} s)",
        took.as_secs_f64()
    );

    // A link outage: apart, the village resolves the case while the township refers it.
    Local::open(&dirs[3])?.apply(
        contested,
        RecordCommand::Event {
            at_ms: None,
            body: Body::Resolve(Note {
                note: "双方当场和解".into(),
            }),
        },
    )?;
    Local::open(&dirs[1])?.apply(
        contested,
        RecordCommand::Event {
            at_ms: None,
            body: Body::Refer(Refer {
                level: ReferLevel::County,
                to: "县矛盾纠纷调处中心".into(),
                reason: "涉及山林确权，上报县级".into(),
            }),
        },
    )?;
    let took = sync_all(&dirs, out)?;
    let mut county = Local::open(&dirs[0])?;
    let view = county.view(contested)?;
    println!(
        "断网期间的冲突 contradiction while apart: village resolved {} and the township referred it; after syncing ({:.1} s) the county shows 待审核 needs review: {}\n",
        contested,
        took.as_secs_f64(),
        view.common().needs_review
    );

    println!("{:<26} {:>8}  data folder", "office 办公室", "records");
    for (i, spec) in NODES.iter().enumerate() {
        let local = if i == 0 {
            None
        } else {
            Some(Local::open(&dirs[i])?)
        };
        let records = match &local {
            Some(l) => l.replica.store.records().map(|r| r.len()).unwrap_or(0),
            None => county.replica.store.records().map(|r| r.len()).unwrap_or(0),
        };
        println!("{:<26} {:>8}  {}", spec.label, records, dirs[i].display());
    }
    let views = county.views()?;
    let figures = guihe_protocol::stats::compute(
        &views,
        county.replica.identity.cert.body.division,
        crate::local::now_ms(),
    );
    println!(
        "\n县级汇总 county: {} records · 调解成功 {} of {} mediations ended (调解成功率 {}) · {} need review",
        views.len(),
        figures.total.resolved,
        figures.total.mediated,
        figures
            .total
            .resolution_rate()
            .map_or("–".to_string(), |r| format!("{:.2}%", r * 100.0)),
        views.iter().filter(|v| v.common().needs_review).count()
    );
    let county_dir = dirs[0].display();
    println!("\n查看 where to look:");
    println!("  guihe case list --data {county_dir}");
    println!("  guihe case show --data {county_dir} {contested}");
    println!("  guihe status --data {county_dir}");
    println!(
        "  guihe run --data {county_dir}      (and the same for each folder, to run the county again)"
    );
    println!("  logs of the runs: <folder>/run.log");
    println!(
        "  while a node runs, its HTTP API and token are in <folder>/api.json, for example:\n    curl -H \"Authorization: Bearer $(jq -r .token {county_dir}/api.json)\" $(jq -r .url {county_dir}/api.json)/api/v1/cases"
    );
    if !serve {
        println!(
            "\n网页 web pages: run `guihe demo` in a terminal to keep the nodes running and browse them"
        );
        return Ok(());
    }
    drop(county);
    let running = start_for(&dirs, 24 * 3600)?;
    let started = Instant::now();
    while !dirs.iter().all(|d| d.join("api.json").exists()) {
        if started.elapsed() > Duration::from_secs(30) {
            return Err(DemoError::Timeout(30, out.display().to_string()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("\n网页 in a browser (password 密码 {DEMO_PASSWORD}):");
    for (i, spec) in NODES.iter().enumerate() {
        let url = std::fs::read_to_string(dirs[i].join("api.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["url"].as_str().map(str::to_string))
            .unwrap_or_default();
        let user = match spec.role {
            Role::Village => "mediator",
            Role::Township => "reviewer",
            _ => "analyst",
        };
        println!("  {:<26} {url}   user 用户 {user}", spec.label);
    }
    println!("\n节点运行中 the nodes keep running; press Ctrl-C to stop them.");
    let mut running = running;
    for child in &mut running.0 {
        let _ = child.wait();
    }
    Ok(())
}
