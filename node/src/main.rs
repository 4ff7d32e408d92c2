//! `guihe`: the program each mediation office runs.
//!
//! Commands that work on a node's data folder (`init`, `case`, `petition`, `status`,
//! `bundle`), that the county uses to set nodes up (`county init`, `enroll`), the daemon
//! (`run`) and `demo`. While the daemon runs it holds the store, and `case`, `petition` and
//! `status` go through its HTTP API instead.

#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use guihe_node::cli::{self, EventArgs, NewArgs};
use guihe_node::client::Node;
use guihe_node::local::{self, Local};
use guihe_node::{bundle, demo};
use guihe_protocol::cert::Role;
use guihe_protocol::model::Kind;

/// 贵和 guihe: records of dispute mediation and petitions, kept by every office and merged
/// across the county.
#[derive(Debug, Parser)]
#[command(name = "guihe", version, about)]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Village,
    Township,
    County,
    Observer,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// 县级: the county's root key.
    County {
        #[command(subcommand)]
        command: CountyCommand,
    },
    /// 签发证书: issues a node certificate with the county root key.
    Enroll {
        /// The county root key file.
        #[arg(long)]
        county_key: PathBuf,
        /// The node's public key (printed by `guihe init`).
        #[arg(long)]
        node: String,
        /// The node's role.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The 12-digit code of the division it serves.
        #[arg(long)]
        division: String,
        /// Days the certificate is valid.
        #[arg(long, default_value_t = 730)]
        days: u32,
        /// Serial number (default: the time of issue).
        #[arg(long)]
        serial: Option<u64>,
        /// Renew: the node's current certificate. The new one starts where it started, so
        /// no gap opens.
        #[arg(long)]
        renew: Option<PathBuf>,
        /// Where to write the certificate.
        #[arg(long)]
        out: PathBuf,
    },
    /// 初始化节点: creates a node's data folder and key, and installs its certificate.
    Init {
        /// The data folder.
        #[arg(long)]
        data: PathBuf,
        /// The county root's public key (from `guihe county init`).
        #[arg(long)]
        county_root: Option<String>,
        /// The node's certificate (from `guihe enroll`).
        #[arg(long)]
        cert: Option<PathBuf>,
        /// Addresses to listen on (replaces the configuration's; repeat for several).
        #[arg(long)]
        listen: Vec<String>,
        /// Peers to dial, such as the township's address (repeat for several).
        #[arg(long)]
        bootstrap: Vec<String>,
        /// Look for offices on the LAN with mDNS (off unless asked for).
        #[arg(long, conflicts_with = "no_mdns")]
        mdns: bool,
        /// Do not look for offices on the LAN with mDNS.
        #[arg(long)]
        no_mdns: bool,
        /// Where the web pages and API listen, such as 127.0.0.1:8710 (port 0: any free
        /// port; the daemon writes the one it took to api.json).
        #[arg(long)]
        http: Option<String>,
    },
    /// 工作人员: staff accounts for the web app on this node.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// 修复存储: checks every stored value and repairs what is corrupt (the node must be
    /// stopped; `guihe run` does this by itself when it starts). Documents are rebuilt from
    /// their changes; corrupt changes are dropped and fetched again from peers.
    Repair {
        /// The data folder.
        #[arg(long)]
        data: PathBuf,
    },
    /// 时钟: after this PC's clock was fast when it last wrote and has been put right,
    /// lets the node write again from now on (running or not).
    Clock {
        /// The data folder.
        #[arg(long)]
        data: PathBuf,
        /// Accept the clock as it is now.
        #[arg(long)]
        accept: bool,
    },
    /// 安装吊销名单: installs a county revocation list on this node (running or not).
    /// On the county node, with the county key, it also makes the frontier of every key
    /// the list revokes from what this node holds, signs it and installs it: beyond the
    /// frontier, a revoked key's changes are refused whatever time they claim.
    Revocations {
        /// The data folder.
        #[arg(long)]
        data: PathBuf,
        /// The list from `guihe county revoke`.
        #[arg(long)]
        list: PathBuf,
        /// The county root key file: make, sign and install the frontier too (on the
        /// county node).
        #[arg(long)]
        county_key: Option<PathBuf>,
    },
    /// 县级设置: on the county node, with the county key, signs and installs the county's
    /// settings, which every node receives when it syncs: the newest record schema nodes
    /// may write. Raise it only once every office runs a release that reads that schema.
    Settings {
        /// The data folder.
        #[arg(long)]
        data: PathBuf,
        /// The county root key file.
        #[arg(long)]
        county_key: PathBuf,
        /// The newest record schema nodes may write.
        #[arg(long)]
        record_schema: u64,
    },
    /// 纠纷: dispute cases on this node.
    Case {
        #[command(subcommand)]
        command: RecordCommand,
    },
    /// 信访: petitions on this node.
    Petition {
        #[command(subcommand)]
        command: RecordCommand,
    },
    /// 运行: runs the node, syncing with its peers until Ctrl-C.
    Run {
        /// The data folder.
        #[arg(long)]
        data: PathBuf,
        /// Stop after this many seconds (for tests and the demo).
        #[arg(long)]
        for_seconds: Option<u64>,
    },
    /// 状态: this node's identity, records and store.
    Status {
        /// The data folder.
        #[arg(long)]
        data: PathBuf,
    },
    /// U盘同步: signed change bundles for carrying records by hand.
    Bundle {
        #[command(subcommand)]
        command: BundleCommand,
    },
    /// 演示: a small county (1 county, 2 townships, 4 villages) run in one process.
    Demo {
        /// Where to write the records and their views.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Stop the nodes at the end even in a terminal (by default they keep running
        /// there, to be browsed, until Ctrl-C; elsewhere they stop).
        #[arg(long)]
        no_serve: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CountyCommand {
    /// Makes the county root key (keep it offline).
    Init {
        /// Folder for county.key and county.pub.
        #[arg(long)]
        out: PathBuf,
        /// The county's 12-digit code (ending in 000000), kept beside the key as
        /// county.code so that `guihe enroll` refuses divisions of other counties. Given
        /// for a folder that has its key already, only the code is recorded.
        #[arg(long)]
        code: Option<String>,
    },
    /// 吊销证书: adds a node's certificate to the county revocation list (a lost or
    /// stolen machine). Install the list on the county node with `guihe revocations`; it
    /// reaches every node from there.
    Revoke {
        /// The county root key file.
        #[arg(long)]
        county_key: PathBuf,
        /// The certificate to revoke.
        #[arg(long)]
        cert: PathBuf,
        /// Refuse its changes stamped from this time on (milliseconds since the epoch;
        /// default now). What the office recorded before stays valid.
        #[arg(long)]
        from_ms: Option<u64>,
        /// The revocation list file: read if it exists, then written with the addition.
        #[arg(long)]
        list: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum StaffCommand {
    /// Makes (or replaces) an account. The password is read from the first line of
    /// standard input, at least 8 characters.
    Add {
        /// The data folder.
        #[arg(long)]
        data: PathBuf,
        /// The sign-in name, also written on every entry the person records.
        #[arg(long)]
        name: String,
        /// mediator, village_cadre, police_officer, legal_adviser, township_reviewer,
        /// county_analyst or admin.
        #[arg(long)]
        role: String,
        /// The name shown (for example 谭德明).
        #[arg(long, default_value = "")]
        display: String,
    },
}

#[derive(Debug, Subcommand)]
enum BundleCommand {
    /// Writes this node's changes to a file.
    Export {
        /// The data folder.
        #[arg(long)]
        data: PathBuf,
        /// The bundle file.
        #[arg(long)]
        out: PathBuf,
        /// Only records this division may read (for example the village the stick goes
        /// to).
        #[arg(long = "for")]
        target: Option<String>,
    },
    /// Verifies a bundle and imports what this node may read.
    Import {
        /// The data folder.
        #[arg(long)]
        data: PathBuf,
        /// The bundle file.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
struct Data {
    /// The data folder.
    #[arg(long)]
    data: PathBuf,
    /// The staff member recording (default: the configuration's).
    #[arg(long)]
    staff: Option<String>,
}

#[derive(Debug, Subcommand)]
enum RecordCommand {
    /// 登记: takes in a new record.
    New {
        #[command(flatten)]
        data: Data,
        /// Village code(s) it belongs to.
        #[arg(long = "village", required = true)]
        villages: Vec<String>,
        /// Category code (neighbour, housing_homestead, forest_land, …).
        #[arg(long, default_value = "other")]
        category: String,
        /// Risk: general, significant or major.
        #[arg(long, default_value = "general")]
        risk: String,
        /// How a petition arrived: letter, visit, phone, online.
        #[arg(long)]
        channel: Option<String>,
        /// Summary of the matter.
        #[arg(long)]
        summary: String,
        /// A party, as name[:role[:minor]]; repeat for each.
        #[arg(long = "party")]
        parties: Vec<String>,
        /// Restrict the record to its handlers.
        #[arg(long)]
        restricted: bool,
    },
    /// Lists the records this node holds.
    List {
        /// The data folder.
        #[arg(long)]
        data: PathBuf,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Shows one record with its deadlines and timeline.
    Show {
        /// The data folder.
        #[arg(long)]
        data: PathBuf,
        /// The record id.
        id: String,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Records an event: accept, session, agreement, resolve, fail, refer, follow-up,
    /// satisfaction, close, reopen, assign, judicial-request, judicial-result,
    /// protection-request, protection-result, extend, reply, reexam-request,
    /// reexam-answer, not-accept, review.
    Event {
        #[command(flatten)]
        data: Data,
        /// The record id.
        id: String,
        /// The event type.
        #[arg(long = "type")]
        kind: String,
        /// A note (most events).
        #[arg(long)]
        note: Option<String>,
        /// Where a session was held.
        #[arg(long)]
        place: Option<String>,
        /// Agreement terms.
        #[arg(long)]
        terms: Option<String>,
        /// Agreement form: written or oral.
        #[arg(long)]
        form: Option<String>,
        /// The parties will seek judicial confirmation.
        #[arg(long)]
        seek_confirmation: bool,
        /// A court.
        #[arg(long)]
        court: Option<String>,
        /// Urgent protection order.
        #[arg(long)]
        urgent: bool,
        /// The court granted (results).
        #[arg(long)]
        granted: bool,
        /// Referral level: township, county, court, organisation.
        #[arg(long)]
        level: Option<String>,
        /// Referred to / assigned to.
        #[arg(long)]
        to: Option<String>,
        /// A reason.
        #[arg(long)]
        reason: Option<String>,
        /// Extension days.
        #[arg(long)]
        days: Option<u32>,
        /// Satisfaction rating, 1 to 5.
        #[arg(long)]
        rating: Option<u8>,
        /// Review outcome status.
        #[arg(long)]
        outcome: Option<String>,
    },
}

fn run(command: Command) -> Result<String, String> {
    let s = |e: &dyn std::fmt::Display| e.to_string();
    match command {
        Command::County {
            command: CountyCommand::Init { out, code },
        } => cli::county_init(&out, code.as_deref()),
        Command::Enroll {
            county_key,
            node,
            role,
            division,
            days,
            serial,
            renew,
            out,
        } => {
            let role = match role {
                RoleArg::Village => Role::Village,
                RoleArg::Township => Role::Township,
                RoleArg::County => Role::County,
                RoleArg::Observer => Role::Observer,
            };
            cli::enroll(
                &county_key,
                &node,
                role,
                &division,
                days,
                serial,
                renew.as_deref(),
                &out,
            )
        }
        Command::Init {
            data,
            county_root,
            cert,
            listen,
            bootstrap,
            mdns,
            no_mdns,
            http,
        } => {
            let mut out = Vec::new();
            if let Some(root) = county_root {
                let init = local::init(&data, &root).map_err(|e| s(&e))?;
                out.push(format!(
                    "{} {}\n节点公钥 node public key (enrol it with `guihe enroll --node`): {}",
                    if init.fresh {
                        "节点已初始化 node initialised in"
                    } else {
                        "节点已存在，沿用原有密钥 the node exists already and keeps its key, in"
                    },
                    data.display(),
                    guihe_node::keys::public_hex(&init.node)
                ));
            }
            if let Some(cert) = cert {
                local::install_cert(&data, &cert).map_err(|e| s(&e))?;
                out.push("证书已安装 certificate installed".into());
            }
            if !listen.is_empty() || !bootstrap.is_empty() || mdns || no_mdns || http.is_some() {
                let mut config = guihe_node::config::Config::load(&data).map_err(|e| s(&e))?;
                if !listen.is_empty() {
                    config.listen = listen;
                }
                if !bootstrap.is_empty() {
                    config.bootstrap = bootstrap;
                }
                if mdns || no_mdns {
                    config.mdns = mdns;
                }
                if let Some(http) = http {
                    http.parse::<std::net::SocketAddr>().map_err(|e| {
                        format!(
                            "--http {http:?}: {e} (give an address and port such as 127.0.0.1:8710)"
                        )
                    })?;
                    config.http = http;
                }
                config.save(&data).map_err(|e| s(&e))?;
                out.push("配置已更新 configuration updated".into());
            }
            if out.is_empty() {
                return Err("give --county-root to create the node, --cert to install its certificate, or both".into());
            }
            Ok(out.join("\n"))
        }
        Command::County {
            command:
                CountyCommand::Revoke {
                    county_key,
                    cert,
                    from_ms,
                    list,
                },
        } => cli::revoke(&county_key, &cert, from_ms, &list),
        Command::Staff {
            command:
                StaffCommand::Add {
                    data,
                    name,
                    role,
                    display,
                },
        } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .map_err(|e| format!("reading the password from standard input: {e}"))?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            match open(&data)?
                .call(
                    None,
                    guihe_node::api::Call::AddStaff {
                        name,
                        display,
                        role,
                        password,
                    },
                )
                .map_err(|e| s(&e))?
            {
                guihe_node::api::Reply::StaffAdded { name } => {
                    Ok(format!("账号已保存 account {name} saved"))
                }
                other => Err(format!("unexpected reply {other:?}")),
            }
        }
        Command::Repair { data } => {
            let recovery = guihe_node::local::recover(&data).map_err(|e| s(&e))?;
            Ok(recovery.to_string())
        }
        Command::Clock { data, accept } => {
            if !accept {
                return Err(
                    "guihe clock: nothing asked; --accept lets the node write from now on".into(),
                );
            }
            match open(&data)?
                .call(None, guihe_node::api::Call::AcceptClock)
                .map_err(|e| s(&e))?
            {
                guihe_node::api::Reply::ClockAccepted { from_ms } => Ok(format!(
                    "已接受本机时钟 the clock is accepted: entries are taken from {} on",
                    guihe_protocol::stats::date_of(from_ms)
                )),
                other => Err(format!("unexpected reply {other:?}")),
            }
        }
        Command::Revocations {
            data,
            list,
            county_key,
        } => {
            use guihe_node::api::{Call, Reply};
            let list = guihe_node::keys::read_revocations(&list).map_err(|e| s(&e))?;
            let mut node = open(&data)?;
            let mut out = Vec::new();
            if let Some(key) = county_key {
                let root = guihe_protocol::cert::Root::new(
                    guihe_node::keys::read_key(&key).map_err(|e| s(&e))?,
                );
                let nodes = list.body.revoked.iter().map(|r| r.node).collect();
                let version = list.body.version;
                let body = match node
                    .call(None, Call::FrontierOf { nodes, version })
                    .map_err(|e| s(&e))?
                {
                    Reply::FrontierBody(b) => *b,
                    other => return Err(format!("unexpected reply {other:?}")),
                };
                let records: usize = body.keys.iter().map(|k| k.records.len()).sum();
                let frontier = root.frontier(body).map_err(|e| s(&e))?;
                match node
                    .call(None, Call::Frontier { frontier })
                    .map_err(|e| s(&e))?
                {
                    Reply::Installed { version } => out.push(format!(
                        "前沿已安装 frontier version {version} installed: {records} records of the revoked keys are held here; their changes beyond what is held are refused everywhere"
                    )),
                    other => return Err(format!("unexpected reply {other:?}")),
                }
            }
            match node
                .call(None, Call::Revocations { list })
                .map_err(|e| s(&e))?
            {
                Reply::Installed { version } => out.insert(
                    0,
                    format!("吊销名单已安装 revocation list version {version} installed"),
                ),
                other => return Err(format!("unexpected reply {other:?}")),
            }
            Ok(out.join("\n"))
        }
        Command::Settings {
            data,
            county_key,
            record_schema,
        } => {
            use guihe_node::api::{Call, Reply};
            let root = guihe_protocol::cert::Root::new(
                guihe_node::keys::read_key(&county_key).map_err(|e| s(&e))?,
            );
            let now = guihe_node::local::now_ms();
            // A county issues settings rarely: its clock orders them.
            let settings = root
                .settings(guihe_protocol::cert::SettingsBody {
                    version: now,
                    record_schema,
                    issued_ms: now,
                })
                .map_err(|e| s(&e))?;
            match open(&data)?
                .call(None, Call::Settings { settings })
                .map_err(|e| s(&e))?
            {
                Reply::Installed { .. } => Ok(format!(
                    "县级设置已安装：各节点下次同步时收到，此后可写入至第 {record_schema} 版记录格式。County settings installed: every node receives them when it next syncs, and may then write record schema up to {record_schema}. ({})",
                    guihe_protocol::stats::date_of(now)
                )),
                other => Err(format!("unexpected reply {other:?}")),
            }
        }
        Command::Case { command } => record(Kind::Case, command),
        Command::Petition { command } => record(Kind::Petition, command),
        Command::Run { data, for_seconds } => {
            // A power cut or a failing disk may have left damage: find it before serving
            // anything, and repair what can be repaired.
            // A command run by hand as the service starts may hold the store for a moment.
            let patience = std::time::Duration::from_secs(30);
            let recovery =
                guihe_node::local::when_free(patience, || guihe_node::local::recover(&data))
                    .map_err(|e| s(&e))?;
            if !recovery.is_sound() {
                tracing::error!(%recovery, "the store was damaged");
                let _ = writeln!(std::io::stderr(), "{recovery}");
            }
            let local =
                guihe_node::local::when_free(patience, || Local::open(&data)).map_err(|e| s(&e))?;
            let runtime = tokio::runtime::Runtime::new().map_err(|e| s(&e))?;
            runtime
                .block_on(guihe_node::net::run(
                    local,
                    for_seconds.map(std::time::Duration::from_secs),
                ))
                .map_err(|e| s(&e))?;
            Ok(String::new())
        }
        Command::Status { data } => cli::status(&open(&data)?),
        Command::Bundle {
            command: BundleCommand::Export { data, out, target },
        } => {
            let local = Local::open(&data).map_err(|e| s(&e))?;
            let target = target.map(|t| t.parse()).transpose().map_err(|e| s(&e))?;
            let n = bundle::export(&local, target, &out).map_err(|e| s(&e))?;
            Ok(format!("已导出 exported {n} changes to {}", out.display()))
        }
        Command::Bundle {
            command: BundleCommand::Import { data, file },
        } => {
            let mut local = Local::open(&data).map_err(|e| s(&e))?;
            let r = bundle::import(&mut local, &file).map_err(|e| s(&e))?;
            let mut out = format!(
                "已导入 imported: {} changes in the bundle, {} new, {} not for this node",
                r.changes, r.new, r.skipped
            );
            if r.quarantined > 0 {
                out.push_str(&format!(
                    "\n已隔离 {} 条不合规则的变更（未采用，见 guihe status） {} changes refused and kept aside (not applied; see guihe status)",
                    r.quarantined, r.quarantined
                ));
            }
            Ok(out)
        }
        Command::Demo { out, no_serve } => {
            let serve = !no_serve && std::io::IsTerminal::is_terminal(&std::io::stdout());
            let out = out.unwrap_or_else(|| std::env::temp_dir().join("guihe-demo"));
            demo::run(&out, serve).map_err(|e| s(&e))?;
            Ok(String::new())
        }
    }
}

fn open(data: &std::path::Path) -> Result<Node, String> {
    Node::open(data).map_err(|e| e.to_string())
}

fn record(kind: Kind, command: RecordCommand) -> Result<String, String> {
    match command {
        RecordCommand::New {
            data,
            villages,
            category,
            risk,
            channel,
            summary,
            parties,
            restricted,
        } => {
            let id = cli::new_record(
                &mut open(&data.data)?,
                data.staff.as_deref(),
                NewArgs {
                    kind,
                    villages,
                    category,
                    risk,
                    channel,
                    summary,
                    parties,
                    restricted,
                },
            )?;
            Ok(id.to_string())
        }
        RecordCommand::List { data, json } => cli::list(&mut open(&data)?, kind, json),
        RecordCommand::Show { data, id, json } => cli::show(&mut open(&data)?, &id, json),
        RecordCommand::Event {
            data,
            id,
            kind: ty,
            note,
            place,
            terms,
            form,
            seek_confirmation,
            court,
            urgent,
            granted,
            level,
            to,
            reason,
            days,
            rating,
            outcome,
        } => {
            use serde_json::Value;
            let t = ty.replace('-', "_");
            let mut fields: Vec<(&'static str, Value)> = Vec::new();
            for (k, v) in [
                ("note", note),
                ("place", place),
                ("terms", terms),
                ("form", form),
                ("court", court),
                ("level", level),
                ("to", to),
                ("reason", reason),
                ("outcome", outcome),
            ] {
                if let Some(v) = v {
                    fields.push((k, Value::String(v)));
                }
            }
            if seek_confirmation {
                fields.push(("seek_confirmation", Value::Bool(true)));
            }
            if urgent {
                fields.push(("urgent", Value::Bool(true)));
            }
            // A court's result is granted or not; on the command line, not unless
            // --granted is given.
            if t == "judicial_result" || t == "protection_result" {
                fields.push(("granted", Value::Bool(granted)));
            }
            if let Some(d) = days {
                fields.push(("days", Value::from(d)));
            }
            if let Some(r) = rating {
                fields.push(("rating", Value::from(r)));
            }
            cli::event(
                &mut open(&data.data)?,
                data.staff.as_deref(),
                &id,
                EventArgs { kind: t, fields },
            )
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colours only on a terminal: log files (systemd, the demo's run.log) stay plain.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        // A log on a full disk fails to write; reporting that with `eprintln!` would
        // panic the thread that logged (the HTTP task answering "disk full", say).
        .log_internal_errors(false);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    match run(cli.command) {
        Ok(out) => {
            if !out.is_empty() {
                // Not `println!`: standard output may be a file on a full disk.
                let _ = writeln!(std::io::stdout(), "{out}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "guihe: {e}");
            ExitCode::FAILURE
        }
    }
}
