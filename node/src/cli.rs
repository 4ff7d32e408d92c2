//! The command line's work, apart from parsing: each function runs one command and returns
//! what to print.

use std::path::Path;

use guihe_protocol::cert::{CertBody, RevocationBody, Revoked, Role, Root};
use guihe_protocol::division::Division;
use guihe_protocol::id::RecordId;
use guihe_protocol::model::Kind;
use guihe_protocol::store::Store;
use guihe_protocol::view::View;

use crate::api::{Call, NewForm, PartyForm, Reply};
use crate::client::Node;
use crate::keys;
use crate::local::{Local, now_ms};

/// A command's failure, as a message for the person at the keyboard.
pub type CliResult<T> = Result<T, String>;

fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// `guihe county init`: makes the county root key.
pub fn county_init(out: &Path, code: Option<&str>) -> CliResult<String> {
    let code = code
        .map(|c| match c.trim().parse::<Division>() {
            Ok(d @ Division::County(_)) => Ok(d),
            _ => Err(format!(
                "--code {c:?}: 县代码应为12位、以000000结尾 the county code is 12 digits ending in 000000 (for example 500240000000)"
            )),
        })
        .transpose()?;
    std::fs::create_dir_all(out).map_err(s)?;
    let path = out.join("county.key");
    let mut lines = Vec::new();
    if let (true, Some(_)) = (path.exists(), code) {
        lines.push(format!(
            "县根密钥已存在，未改动 the county root key in {} exists already and was kept",
            path.display()
        ));
    } else {
        let key = guihe_protocol::cert::Keypair::generate(&mut rand::rng());
        keys::write_key(&path, &key).map_err(s)?;
        let public = keys::public_hex(&key.public());
        std::fs::write(out.join("county.pub"), format!("{public}\n")).map_err(s)?;
        lines.push(format!(
            "县根密钥已生成 county root key written to {}\n公钥 public key (give this to every node): {public}\nKeep county.key offline.",
            path.display()
        ));
    }
    if let Some(code) = code {
        let key = out.join("county.key");
        if let Some(held) = county_code(&key)?
            && held != code
        {
            return Err(format!(
                "{}: 本县代码已记录为 {held}，未改动 the county code recorded is {held}; it was not changed (a county's code does not change)",
                out.join(COUNTY_CODE).display()
            ));
        }
        std::fs::write(out.join(COUNTY_CODE), format!("{code}\n")).map_err(s)?;
        lines.push(format!(
            "本县代码 county code {code}: `guihe enroll` refuses divisions outside it"
        ));
    }
    Ok(lines.join("\n"))
}

/// The file beside `county.key` that names the county's code.
const COUNTY_CODE: &str = "county.code";

/// The county's code, from `county.code` beside the key file, if it was recorded.
fn county_code(county_key: &Path) -> CliResult<Option<Division>> {
    let path = county_key.with_file_name(COUNTY_CODE);
    match std::fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse::<Division>() {
            Ok(d @ Division::County(_)) => Ok(Some(d)),
            _ => Err(format!(
                "{}: 不是县代码 not a county code ({:?})",
                path.display(),
                text.trim()
            )),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// `guihe enroll`: issues a certificate. `renew` is the node's current certificate when it
/// is renewed: the new one starts where that one started, so that no gap opens in which
/// the node's own changes could be refused.
#[allow(clippy::too_many_arguments)]
pub fn enroll(
    county_key: &Path,
    node: &str,
    role: Role,
    division: &str,
    days: u32,
    serial: Option<u64>,
    renew: Option<&Path>,
    out: &Path,
) -> CliResult<String> {
    if days == 0 {
        return Err(
            "--days 0: 证书有效天数至少为1天 a certificate must be valid for at least one day"
                .into(),
        );
    }
    let root = Root::new(keys::read_key(county_key).map_err(s)?);
    let node = keys::parse_public(node).ok_or(
        "--node: 节点公钥应为64位十六进制 the node key must be 64 hex digits (from `guihe init`)",
    )?;
    let division: Division = division.parse().map_err(|e| format!("--division: {e}"))?;
    let county = county_code(county_key)?;
    if let Some(county) = county
        && !county.contains(division)
    {
        return Err(format!(
            "--division {division}: 不在本县 {county} 内，未签发 is not inside this county ({county}); no certificate was issued"
        ));
    }
    let now = now_ms();
    let starts = match renew {
        Some(path) => {
            let old = keys::read_cert(path).map_err(s)?;
            old.verify(&root.public())
                .map_err(|e| format!("{}: not this county's certificate: {e}", path.display()))?;
            if old.node() != node {
                return Err(format!(
                    "{} is the certificate of another node: a renewal is for the same key",
                    path.display()
                ));
            }
            old.body.not_before_ms
        }
        None => now.saturating_sub(86_400_000),
    };
    let cert = root
        .issue(CertBody {
            serial: serial.unwrap_or(now),
            node,
            role,
            division,
            not_before_ms: starts,
            not_after_ms: now.saturating_add(u64::from(days) * 86_400_000),
        })
        .map_err(s)?;
    keys::write_cert(out, &cert).map_err(s)?;
    let role_name = format!("{role:?}");
    let mut text = format!(
        "证书已签发 certificate issued: {} {} · {division} · 有效期至 valid until {} · 序号 serial {} · written to {}",
        crate::words::role(&role_name, true),
        crate::words::role(&role_name, false),
        crate::words::date_zh(cert.body.not_after_ms),
        cert.body.serial,
        out.display()
    );
    if county.is_none() {
        text.push_str(&format!(
            "\n注意 note: 未记录本县代码，无法核对辖区是否在本县 no county code is recorded beside the key, so the division was not checked against the county: run `guihe county init --out {} --code <county code>` once",
            county_key.parent().map(|p| p.display().to_string()).unwrap_or_default()
        ));
    }
    Ok(text)
}

/// `guihe county revoke`: adds a certificate to the revocation list file.
pub fn revoke(
    county_key: &Path,
    cert: &Path,
    from_ms: Option<u64>,
    list_path: &Path,
) -> CliResult<String> {
    let root = Root::new(keys::read_key(county_key).map_err(s)?);
    let cert = keys::read_cert(cert).map_err(s)?;
    cert.verify(&root.public())
        .map_err(|e| format!("the certificate is not this county's: {e}"))?;
    let mut body = if list_path.exists() {
        let list = keys::read_revocations(list_path).map_err(s)?;
        list.verify(&root.public())
            .map_err(|e| format!("{}: not this county's list: {e}", list_path.display()))?;
        list.body
    } else {
        RevocationBody::default()
    };
    let from_ms = from_ms.unwrap_or_else(now_ms);
    body.revoked.retain(|r| r.serial != cert.body.serial);
    body.revoked.push(Revoked {
        serial: cert.body.serial,
        node: cert.node(),
        from_ms,
    });
    body.version += 1;
    let list = root.revocations(body).map_err(s)?;
    keys::write_revocations(list_path, &list).map_err(s)?;
    Ok(format!(
        "已吊销 revoked certificate {} of {} from {from_ms}; revocation list version {} written to {}\nInstall it on the county node: guihe revocations --data DIR --list {}",
        cert.body.serial,
        cert.body.division,
        list.body.version,
        list_path.display(),
        list_path.display()
    ))
}

/// Parses `name[:role[:minor]]`.
pub fn parse_party(text: &str) -> CliResult<PartyForm> {
    let mut parts = text.split(':');
    let name = parts.next().unwrap_or("").trim().to_string();
    let role = parts.next().filter(|r| !r.is_empty()).map(str::to_string);
    let minor = match parts.next() {
        None | Some("") => false,
        Some("minor") => true,
        Some(other) => {
            return Err(format!(
                "party {text:?}: the third part is `minor` or nothing, not {other:?}"
            ));
        }
    };
    Ok(PartyForm {
        name,
        role,
        minor,
        ..PartyForm::default()
    })
}

/// The fields of `guihe case new` / `guihe petition new`.
#[derive(Debug, Clone)]
pub struct NewArgs {
    /// Case or petition.
    pub kind: Kind,
    /// Village codes.
    pub villages: Vec<String>,
    /// Category code.
    pub category: String,
    /// Risk code.
    pub risk: String,
    /// Petition channel code.
    pub channel: Option<String>,
    /// Summary.
    pub summary: String,
    /// Parties, as `name[:role[:minor]]`.
    pub parties: Vec<String>,
    /// Restricted by hand.
    pub restricted: bool,
}

/// `guihe case new` and `guihe petition new`.
pub fn new_record(node: &mut Node, staff: Option<&str>, args: NewArgs) -> CliResult<RecordId> {
    let form = NewForm {
        villages: args.villages,
        category: args.category,
        risk: args.risk,
        channel: args.channel,
        summary: args.summary,
        parties: args
            .parties
            .iter()
            .map(|p| parse_party(p))
            .collect::<Result<_, _>>()?,
        restricted: args.restricted,
        received_ms: None,
        matter: None,
    };
    match node
        .call(
            staff,
            Call::Create {
                kind: args.kind,
                form,
            },
        )
        .map_err(s)?
    {
        Reply::Created { id } => Ok(id),
        other => Err(format!("unexpected reply {other:?}")),
    }
}

/// The fields of `guihe case event` given on the command line, turned into the event's
/// JSON form so that a missing or wrong field gets serde's message naming it.
#[derive(Debug, Clone, Default)]
pub struct EventArgs {
    /// The event type (`accept`, `session`, `agreement`, …).
    pub kind: String,
    /// Named fields given on the command line.
    pub fields: Vec<(&'static str, serde_json::Value)>,
}

/// `guihe case event` and `guihe petition event`.
pub fn event(node: &mut Node, staff: Option<&str>, id: &str, args: EventArgs) -> CliResult<String> {
    let mut map = serde_json::Map::new();
    map.insert("type".into(), serde_json::Value::String(args.kind));
    for (k, v) in args.fields {
        map.insert(k.into(), v);
    }
    let reply = node
        .call(
            staff,
            Call::Event {
                id: id.to_string(),
                event: serde_json::Value::Object(map),
            },
        )
        .map_err(s)?;
    let Reply::Recorded { view } = reply else {
        return Err(format!("unexpected reply {reply:?}"));
    };
    Ok(format!(
        "已记录 recorded; status 状态: {} {}",
        view.common().status.label_zh(),
        view.common().status.label_en()
    ))
}

/// One line of a list.
pub fn line(v: &View, now: u64) -> String {
    let c = v.common();
    let villages: Vec<String> = c.jurisdictions.iter().map(ToString::to_string).collect();
    let mut flags = Vec::new();
    if c.needs_review {
        flags.push("待审核 needs review".to_string());
    }
    if c.is_overdue(now) {
        flags.push("逾期 overdue".to_string());
    }
    if c.restricted {
        flags.push("限制 restricted".to_string());
    }
    format!(
        "{}  {:<6} {:<8} {:<4} {}  {}",
        v.id(),
        c.status.label_zh(),
        c.category.label_zh(),
        c.risk.label_zh(),
        villages.join(","),
        flags.join(" ")
    )
}

/// `guihe case list` and `guihe petition list`.
pub fn list(node: &mut Node, kind: Kind, json: bool) -> CliResult<String> {
    let Reply::Views(views) = node
        .call(None, Call::List { kind: Some(kind) })
        .map_err(s)?
    else {
        return Err("unexpected reply".into());
    };
    if json {
        return serde_json::to_string_pretty(&views).map_err(s);
    }
    let now = now_ms();
    let mut out: Vec<String> = views.iter().map(|v| line(v, now)).collect();
    out.push(format!(
        "{} {}",
        views.len(),
        if kind == Kind::Case {
            "件纠纷 cases"
        } else {
            "件信访 petitions"
        }
    ));
    Ok(out.join("\n"))
}

/// `guihe case show`.
pub fn show(node: &mut Node, id: &str, json: bool) -> CliResult<String> {
    let Reply::Detail(detail) = node
        .call(None, Call::Show { id: id.to_string() })
        .map_err(s)?
    else {
        return Err("unexpected reply".into());
    };
    if json {
        return serde_json::to_string_pretty(&detail.view).map_err(s);
    }
    let view = &detail.view;
    let c = view.common();
    let now = now_ms();
    let mut out = vec![
        line(view, now),
        format!("摘要 summary: {}", c.summary),
        format!(
            "当事人 parties: {}",
            c.parties
                .iter()
                .map(|p| format!("{}({})", p.name, p.role.label_zh()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ];
    for d in &c.deadlines {
        let state = format!(
            "{} {}",
            crate::words::deadline(d.state(now), true),
            crate::words::deadline(d.state(now), false)
        );
        out.push(format!(
            "期限 {} {}: {state}",
            d.kind.label_zh(),
            d.kind.label_en()
        ));
    }
    if !c.conflicts.is_empty() || !c.skipped.is_empty() {
        out.push("待审核的原因 why it needs review:".into());
        for x in &c.conflicts {
            out.push(format!(
                "  {}",
                crate::words::contradiction(&detail, None, x, true)
            ));
        }
        for x in &c.skipped {
            out.push(format!(
                "  {}",
                crate::words::not_applied(&detail, None, x, true)
            ));
        }
    }
    out.push("时间线 timeline:".into());
    for e in &detail.timeline {
        out.push(format!(
            "  {}{}  {}  {}  {}",
            crate::words::date_zh(e.at_ms),
            if e.entered_late() { "（补录）" } else { "" },
            e.body.event_type().label_zh(),
            e.staff,
            crate::words::sentence(&e.body, true)
        ));
    }
    Ok(out.join("\n"))
}

/// `guihe status`.
pub fn status(node: &Node) -> CliResult<String> {
    match node {
        Node::Local(local) => status_local(local),
        Node::Remote(remote) => {
            let r = remote.status().map_err(s)?;
            let now = now_ms();
            let ago = |t: Option<u64>| match t {
                Some(t) => {
                    let age = now.saturating_sub(t);
                    format!(
                        "{}前 {} ago",
                        crate::words::span(age, true),
                        crate::words::span(age, false)
                    )
                }
                None => "从未 never".into(),
            };
            let mut out = vec![
                format!("运行中 running · 节点 node {}", r.node),
                format!(
                    "角色 role {} {} · 辖区 division {}",
                    crate::words::role(&r.role, true),
                    crate::words::role(&r.role, false),
                    r.division
                ),
                format!(
                    "记录 records {} · 变更 changes {} · 待补依赖 waiting for dependencies {}",
                    r.records, r.changes, r.pending
                ),
                format!("对等节点 peers {}:", r.peers.len()),
            ];
            out.push(
                crate::api::SettingsLine {
                    version: r.settings_version,
                    issued_ms: r.settings_issued_ms,
                    record_schema: r.record_schema,
                }
                .text(),
            );
            if r.disk_low {
                out.insert(
                    1,
                    "磁盘将满 the disk is nearly full: no new entries and no sync until space is freed".into(),
                );
            }
            for p in &r.peers {
                out.push(format!(
                    "  {} {} {} · last sync 上次同步 {} · changes in 收到 {}",
                    p.division.as_deref().unwrap_or("?"),
                    if p.connected {
                        "connected 已连接"
                    } else {
                        "disconnected 未连接"
                    },
                    if p.reconciled {
                        "in sync 已同步"
                    } else {
                        ""
                    },
                    ago(p.last_reconciled_ms),
                    p.changes_in
                ));
            }
            quarantine_lines(&r.quarantined, &mut out);
            for q in &r.refused_upstream {
                out.push(format!(
                    "上级拒收了本机对记录 {} 的修改（{}），本机不能再修改该记录 the office above refused this office's change to record {} ({}): it can no longer be changed here",
                    q.record, q.reason_zh, q.record, q.reason_en
                ));
            }
            if !r.reported.is_empty() {
                out.push(format!(
                    "下级上报 {} 条被拒收的变更 {} refused changes reported from offices below (see the sync page)",
                    r.reported.len(),
                    r.reported.len()
                ));
            }
            if r.held > 0 {
                out.push(format!(
                    "暂存 {} 条时间戳在未来的变更 {} changes stamped in the future are held until their time comes",
                    r.held, r.held
                ));
            }
            for p in &r.peers {
                if let Some(ms) = p
                    .clock_skew_ms
                    .filter(|ms| ms.abs() > crate::net::SKEW_WARN_MS)
                {
                    out.push(format!(
                        "时钟不一致 clock apart: {} is {:.0} min {} this node",
                        p.division.as_deref().unwrap_or("?"),
                        (ms.unsigned_abs() as f64) / 60_000.0,
                        if ms > 0 {
                            "ahead of 快于"
                        } else {
                            "behind 慢于"
                        }
                    ));
                }
            }
            if !r.freshness.is_empty() {
                out.push("数据新鲜度 freshness (newest change held, per village):".into());
                for f in &r.freshness {
                    out.push(format!("  {} {}", f.village, ago(Some(f.newest_ms))));
                }
            }
            Ok(out.join("\n"))
        }
    }
}

/// The refused changes kept aside, for `guihe status`.
fn quarantine_lines(kept: &[crate::api::QuarantineReport], out: &mut Vec<String>) {
    if kept.is_empty() {
        return;
    }
    out.push(format!(
        "已隔离的变更 refused changes kept aside (not applied, not passed on): {}",
        kept.len()
    ));
    for q in kept {
        out.push(format!(
            "  {} {} · 记录 record {} · {} {} ({})",
            q.signer_division.as_deref().unwrap_or("?"),
            q.signer.chars().take(12).collect::<String>(),
            q.record,
            q.reason_zh,
            q.reason_en,
            q.detail
        ));
    }
}

fn status_local(local: &Local) -> CliResult<String> {
    let store = &local.replica.store;
    let records = store.records().map_err(s)?;
    let cert = &local.replica.identity.cert;
    let corrupt = store.verify();
    let mut kept = Vec::new();
    quarantine_lines(&crate::api::quarantine_reports(store), &mut kept);
    kept.push(crate::api::SettingsLine::of(store).text());
    let kept = kept.iter().map(|l| format!("\n{l}")).collect::<String>();
    Ok(format!(
        "节点 node {}\n角色 role {} · 辖区 division {}\n证书有效期至 certificate valid until {}\n记录 records {} · 变更 changes {} · 待补依赖 waiting for dependencies {}\n存储 store {} bytes · 校验 checksums: {}{}",
        keys::public_hex(&cert.node()),
        crate::words::role(&format!("{:?}", cert.body.role), true),
        cert.body.division,
        crate::words::date_zh(cert.body.not_after_ms),
        records.len(),
        store.change_count(),
        store.pending_count(),
        store.size_on_disk(),
        if corrupt.is_empty() {
            "ok".to_string()
        } else {
            format!(
                "{} corrupt records: {}",
                corrupt.len(),
                corrupt.first().map(ToString::to_string).unwrap_or_default()
            )
        },
        kept
    ))
}
