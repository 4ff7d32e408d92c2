//! The command line's work, apart from parsing: each function runs one command and returns
//! what to print.

use std::path::Path;

use guihe_protocol::cert::{CertBody, Role, Root};
use guihe_protocol::division::{Division, VillageCode};
use guihe_protocol::event::Body;
use guihe_protocol::id::RecordId;
use guihe_protocol::model::{Category, Channel, Kind, Party, PartyRole, Risk};
use guihe_protocol::record::{Command, NewRecord};
use guihe_protocol::store::Store;
use guihe_protocol::view::View;

use crate::keys;
use crate::local::{Local, now_ms};

/// A command's failure, as a message for the person at the keyboard.
pub type CliResult<T> = Result<T, String>;

fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// `guihe county init`: makes the county root key.
pub fn county_init(out: &Path) -> CliResult<String> {
    std::fs::create_dir_all(out).map_err(s)?;
    let key = guihe_protocol::cert::Keypair::generate(&mut rand::rng());
    let path = out.join("county.key");
    keys::write_key(&path, &key).map_err(s)?;
    let public = keys::public_hex(&key.public());
    std::fs::write(out.join("county.pub"), format!("{public}\n")).map_err(s)?;
    Ok(format!(
        "县根密钥已生成 county root key written to {}\n公钥 public key (give this to every node): {public}\nKeep county.key offline.",
        path.display()
    ))
}

/// `guihe enroll`: issues a certificate.
pub fn enroll(
    county_key: &Path,
    node: &str,
    role: Role,
    division: &str,
    days: u32,
    serial: Option<u64>,
    out: &Path,
) -> CliResult<String> {
    let root = Root::new(keys::read_key(county_key).map_err(s)?);
    let node =
        keys::parse_public(node).ok_or("the node key must be 64 hex digits (from `guihe init`)")?;
    let division: Division = division.parse().map_err(s)?;
    let now = now_ms();
    let cert = root
        .issue(CertBody {
            serial: serial.unwrap_or(now),
            node,
            role,
            division,
            not_before_ms: now.saturating_sub(86_400_000),
            not_after_ms: now.saturating_add(u64::from(days) * 86_400_000),
        })
        .map_err(s)?;
    keys::write_cert(out, &cert).map_err(s)?;
    Ok(format!(
        "证书已签发 certificate {} for {:?} of {division} written to {}",
        cert.body.serial,
        role,
        out.display()
    ))
}

/// Parses `name[:role[:minor]]`.
pub fn parse_party(text: &str, default_role: PartyRole) -> CliResult<Party> {
    let mut parts = text.split(':');
    let name = parts.next().unwrap_or("").trim().to_string();
    let role = match parts.next() {
        Some(r) if !r.is_empty() => r.parse().map_err(s)?,
        _ => default_role,
    };
    let minor = match parts.next() {
        None | Some("") => false,
        Some("minor") => true,
        Some(other) => {
            return Err(format!(
                "party {text:?}: the third part is `minor` or nothing, not {other:?}"
            ));
        }
    };
    let party = Party {
        name,
        role,
        minor,
        contact: None,
    };
    party.check().map_err(s)?;
    Ok(party)
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
pub fn new_record(local: &mut Local, args: NewArgs) -> CliResult<RecordId> {
    let villages: Vec<VillageCode> = args
        .villages
        .iter()
        .map(|v| v.parse().map_err(s))
        .collect::<Result<_, _>>()?;
    let default_role = if args.kind == Kind::Petition {
        PartyRole::Petitioner
    } else {
        PartyRole::Applicant
    };
    let parties = args
        .parties
        .iter()
        .map(|p| parse_party(p, default_role))
        .collect::<Result<Vec<_>, _>>()?;
    let channel: Option<Channel> = args
        .channel
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(s)?;
    if !local.replica.identity.cert.may_write(&villages) {
        return Err(format!(
            "this node ({}) may not write a record of {}",
            local.replica.identity.cert.body.division,
            villages
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let new = NewRecord {
        kind: args.kind,
        jurisdictions: villages,
        received_ms: None,
        category: args.category.parse::<Category>().map_err(s)?,
        risk: args.risk.parse::<Risk>().map_err(s)?,
        channel,
        restricted: args.restricted,
        parties,
        summary: args.summary,
        note: String::new(),
    };
    local.create(new).map_err(s)
}

/// The optional fields of `guihe case event`, turned into an event body through its JSON
/// form so that a missing or wrong field gets serde's message naming it.
#[derive(Debug, Clone, Default)]
pub struct EventArgs {
    /// The event type (`accept`, `session`, `agreement`, …).
    pub kind: String,
    /// Named fields given on the command line.
    pub fields: Vec<(&'static str, serde_json::Value)>,
}

/// `guihe case event` and `guihe petition event`.
pub fn event(local: &mut Local, id: &str, args: EventArgs) -> CliResult<String> {
    let id: RecordId = id.parse().map_err(s)?;
    let mut map = serde_json::Map::new();
    map.insert(
        "type".into(),
        serde_json::Value::String(args.kind.replace('-', "_")),
    );
    for (k, v) in args.fields {
        map.insert(k.into(), v);
    }
    let body: Body = serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| format!("event fields: {e}"))?;
    local
        .apply(id, Command::Event { at_ms: None, body })
        .map_err(s)?;
    let view = local.view(id).map_err(s)?;
    Ok(format!(
        "已记录 recorded; status 状态: {} {}",
        view.common().status.label_zh(),
        view.common().status.label_en()
    ))
}

fn days_left(ms: i128) -> String {
    let days = ms as f64 / 86_400_000.0;
    if days >= 0.0 {
        format!("{days:.1} 天 days left")
    } else {
        format!("逾期 overdue {:.1} 天 days", -days)
    }
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
pub fn list(local: &Local, kind: Kind, json: bool) -> CliResult<String> {
    let views: Vec<View> = local
        .views()
        .map_err(s)?
        .into_iter()
        .filter(|v| v.kind() == kind)
        .collect();
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
pub fn show(local: &Local, id: &str, json: bool) -> CliResult<String> {
    let id: RecordId = id.parse().map_err(s)?;
    let view = local.view(id).map_err(s)?;
    if json {
        return serde_json::to_string_pretty(&view).map_err(s);
    }
    let c = view.common();
    let now = now_ms();
    let mut out = vec![
        line(&view, now),
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
        let state = match (d.met_ms, d.remaining_ms(now)) {
            (Some(_), _) if d.was_late() => "已办结（逾期）met late".to_string(),
            (Some(_), _) => "已办结 met".to_string(),
            (None, Some(ms)) => days_left(ms),
            (None, None) => String::new(),
        };
        out.push(format!(
            "期限 {} {}: {state}",
            d.kind.label_zh(),
            d.kind.label_en()
        ));
    }
    let record = local.replica.record(id).map_err(s)?;
    let mut events = record.events().map_err(s)?.events;
    guihe_protocol::fold::order(&mut events);
    out.push("时间线 timeline:".into());
    for e in events {
        out.push(format!(
            "  {}  {}  {}",
            e.at_ms,
            e.body.event_type().label_zh(),
            e.staff
        ));
    }
    Ok(out.join("\n"))
}

/// `guihe status`.
pub fn status(local: &Local) -> CliResult<String> {
    let store = &local.replica.store;
    let records = store.records().map_err(s)?;
    let pending: usize = records
        .iter()
        .map(|r| store.pending(*r).map(|p| p.len()).unwrap_or(0))
        .sum();
    let cert = &local.replica.identity.cert;
    let corrupt = store.verify();
    Ok(format!(
        "节点 node {}\n角色 role {:?} · 辖区 division {}\n证书有效期至 certificate valid until {} (ms)\n记录 records {} · 变更 changes {} · 待补依赖 waiting for dependencies {}\n存储 store {} bytes · 校验 checksums: {}",
        keys::public_hex(&cert.node()),
        cert.body.role,
        cert.body.division,
        cert.body.not_after_ms,
        records.len(),
        store.change_count(),
        pending,
        store.size_on_disk(),
        if corrupt.is_empty() {
            "ok".to_string()
        } else {
            format!(
                "{} corrupt records: {}",
                corrupt.len(),
                corrupt.first().map(ToString::to_string).unwrap_or_default()
            )
        }
    ))
}
