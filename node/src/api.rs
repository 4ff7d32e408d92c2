//! What a node does for the people who use it, in one place for every way in: the command
//! line working on a stopped node's store, the command line talking to a running daemon,
//! and the HTTP API. Each request is a [`Call`]; [`execute`] carries it out on a [`Local`]
//! and returns a [`Reply`] or a typed [`ApiError`] that says which field was wrong.

use guihe_protocol::cert::RevocationList;
use guihe_protocol::event::{Body, Event};
use guihe_protocol::id::RecordId;
use guihe_protocol::model::{
    AGE_MAX, Category, Channel, Kind, Matter, Particulars, Party, PartyRole, PetitionType, Risk,
    Sex, Source,
};
use guihe_protocol::record::{Command, CommandError, NewRecord};
use guihe_protocol::replica::ReplicaError;
use guihe_protocol::store::{Store, StoredChange};
use guihe_protocol::view::View;
use serde::{Deserialize, Serialize};

use crate::local::{Local, LocalError};

/// One party on an intake form.
#[derive(Default, Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartyForm {
    /// The name.
    pub name: String,
    /// The role code (`applicant`, `respondent`, `petitioner`, …); by default the
    /// applicant of a case or the petitioner of a petition.
    #[serde(default)]
    pub role: Option<String>,
    /// A minor: the record becomes restricted.
    #[serde(default)]
    pub minor: bool,
    /// A telephone number or address.
    #[serde(default)]
    pub contact: Option<String>,
    /// Sex code (`male`, `female`); record schema 2, as are the fields below.
    #[serde(default)]
    pub sex: Option<String>,
    /// Age in years.
    #[serde(default)]
    pub age: Option<u32>,
    /// Ethnicity (民族), as the party states it.
    #[serde(default)]
    pub ethnicity: Option<String>,
    /// Occupation or employer.
    #[serde(default)]
    pub occupation: Option<String>,
    /// Address.
    #[serde(default)]
    pub address: Option<String>,
    /// Citizen ID number (18 characters, or the old 15 digits).
    #[serde(default)]
    pub id_number: Option<String>,
}

impl PartyForm {
    /// The particulars given, if any (record schema 2).
    fn particulars(&self, i: usize) -> Result<Option<Particulars>, ApiError> {
        let text = |t: &Option<String>| t.as_deref().map(str::trim).unwrap_or("").to_string();
        let sex = match self.sex.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(code) => Some(code.parse::<Sex>().map_err(|e| {
                ApiError::invalid(
                    &format!("parties[{i}].sex"),
                    e,
                    format!("第{}位当事人的性别无效。", i + 1),
                )
            })?),
        };
        let age = match self.age {
            None => None,
            Some(age) => Some(
                u8::try_from(age)
                    .ok()
                    .filter(|a| *a <= AGE_MAX)
                    .ok_or_else(|| {
                        ApiError::invalid(
                            &format!("parties[{i}].age"),
                            format!("age {age} is out of range"),
                            format!("第{}位当事人的年龄应在0到{AGE_MAX}之间。", i + 1),
                        )
                    })?,
            ),
        };
        let details = Particulars {
            sex,
            age,
            ethnicity: text(&self.ethnicity),
            occupation: text(&self.occupation),
            address: text(&self.address),
            id_number: text(&self.id_number).to_ascii_uppercase(),
        };
        Ok((!details.is_blank()).then_some(details))
    }
}

/// The matter's particulars on an intake form (record schema 2).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatterForm {
    /// Source code (`applied`, `screening`, `grid`, `police`, `court`, `department`,
    /// `other`).
    #[serde(default)]
    pub source: Option<String>,
    /// Where it happened.
    #[serde(default)]
    pub place: Option<String>,
    /// The amount at stake, in whole yuan.
    #[serde(default)]
    pub amount_yuan: Option<u64>,
    /// How many people it involves.
    #[serde(default)]
    pub people: Option<u32>,
    /// A petition's type code (`suggestion`, `accusation`, `appeal`).
    #[serde(default)]
    pub petition_type: Option<String>,
    /// 集体访.
    #[serde(default)]
    pub collective: bool,
    /// 越级访.
    #[serde(default)]
    pub skip_level: bool,
}

impl MatterForm {
    fn into_matter(self, kind: Kind) -> Result<Option<Matter>, ApiError> {
        let code = |t: &Option<String>| {
            t.as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
        };
        let source = code(&self.source)
            .map(|c| c.parse::<Source>())
            .transpose()
            .map_err(|e| ApiError::invalid("matter.source", e, "请选择纠纷来源。".into()))?;
        let petition_type = code(&self.petition_type)
            .filter(|_| kind == Kind::Petition)
            .map(|c| c.parse::<PetitionType>())
            .transpose()
            .map_err(|e| ApiError::invalid("matter.petition_type", e, "请选择信访类型。".into()))?;
        let matter = Matter {
            source,
            place: self
                .place
                .as_deref()
                .map(str::trim)
                .unwrap_or("")
                .to_string(),
            amount_yuan: self.amount_yuan,
            people: self.people,
            petition_type,
            collective: self.collective && kind == Kind::Petition,
            skip_level: self.skip_level && kind == Kind::Petition,
        };
        matter.check_for(kind).map_err(|e| {
            let zh = e.zh();
            ApiError::invalid("matter", e, zh)
        })?;
        Ok((matter != Matter::default()).then_some(matter))
    }
}

/// The intake form of a case or a petition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewForm {
    /// The village codes (12 digits) the record belongs to.
    pub villages: Vec<String>,
    /// The category code.
    pub category: String,
    /// The risk code.
    pub risk: String,
    /// How a petition came in (petitions only).
    #[serde(default)]
    pub channel: Option<String>,
    /// What the matter is about.
    pub summary: String,
    /// The parties.
    #[serde(default)]
    pub parties: Vec<PartyForm>,
    /// Restricted by hand (it is restricted anyway when a party is a minor).
    #[serde(default)]
    pub restricted: bool,
    /// When it was received, if not now (milliseconds since the epoch).
    #[serde(default)]
    pub received_ms: Option<u64>,
    /// The matter's particulars (record schema 2).
    #[serde(default)]
    pub matter: Option<Box<MatterForm>>,
}

/// What to ask of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Call {
    /// Take in a new case or petition.
    Create {
        /// Case or petition.
        kind: Kind,
        /// The form.
        form: NewForm,
    },
    /// Append an event. `event` is the event's JSON form: `{"type": "session", "place":
    /// …}`, with an optional `at_ms` for when it happened.
    Event {
        /// The record.
        id: String,
        /// The event.
        event: serde_json::Value,
    },
    /// The records of one kind, or all.
    List {
        /// Only this kind.
        kind: Option<Kind>,
    },
    /// One record with its timeline.
    Show {
        /// The record.
        id: String,
    },
    /// Make or replace a local staff account.
    AddStaff {
        /// The sign-in name (a staff id).
        name: String,
        /// The name shown.
        display: String,
        /// The role code.
        role: String,
        /// The password (at least 8 characters).
        password: String,
    },
    /// A local staff account, for signing in (never sent over the API).
    Account {
        /// The sign-in name.
        name: String,
    },
    /// The other records of the same people: every record one of whose parties is a
    /// party of this one (same name, and same contact when both have one).
    Related {
        /// The record.
        id: String,
    },
    /// The record's parties as corrected, with their particulars unmasked (ID numbers
    /// included): for the papers that must name them (the application and the agreement),
    /// never for lists or exports.
    Parties {
        /// The record.
        id: String,
    },
    /// 我的待办: what is due from the staff member the call is made as, most urgent first.
    Todo {
        /// They review for the township.
        reviewer: bool,
    },
    /// Dashboard figures for a division (by default the node's own).
    Stats {
        /// A county, township or village code inside the node's division.
        division: Option<String>,
        /// The period: `2026-11`, `2026-Q3`, `2026` or `2018-01-01..`; every record held
        /// when none.
        #[serde(default)]
        period: Option<String>,
    },
    /// Install a newer county revocation list. Peers it revokes are refused from now on
    /// and the list travels to every peer at its next hello.
    Revocations {
        /// The list, signed by the county root.
        list: RevocationList,
    },
    /// The frontier of these keys in this node's store: what it holds of each (see
    /// `guihe_protocol::revoke`). Made on the county node when a key is revoked, then
    /// signed with the county key.
    FrontierOf {
        /// The revoked keys.
        nodes: Vec<guihe_protocol::id::NodeId>,
        /// The version to give it.
        version: u64,
    },
    /// Install a newer county-signed frontier of revoked keys.
    Frontier {
        /// The frontier.
        frontier: guihe_protocol::cert::Frontier,
    },
    /// Install newer county-signed settings (which record schema nodes may write).
    Settings {
        /// The settings.
        settings: guihe_protocol::cert::Settings,
    },
    /// The operator's override after a clock that was fast has been put right: the node
    /// writes again from now on (see `Replica::check_clock`).
    AcceptClock,
}

/// One record with its events in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Detail {
    /// The record's view.
    pub view: View,
    /// Its events, in the order the fold reads them.
    pub timeline: Vec<Event>,
    /// An office above refused a change this node made to the record, so this node
    /// writes no more to it: the reason's code (see `quarantine::label`).
    #[serde(default)]
    pub refused_upstream: Option<String>,
    /// The steps that may be recorded next (the record page offers these only).
    #[serde(default)]
    pub next_steps: Vec<guihe_protocol::event::EventType>,
    /// The display names of this node's staff who recorded its events, by account
    /// (accounts never leave their node: another office's entries show their account).
    #[serde(default)]
    pub display_names: std::collections::BTreeMap<String, String>,
    /// Another record this node holds has the same case number (`numbering::duplicates`).
    #[serde(default)]
    pub duplicate_number: bool,
    /// The record schema this node writes (what the county's settings allow).
    #[serde(default)]
    pub schema: u64,
    /// The number this office gave the case, if it did (another office's is not its own
    /// to print).
    #[serde(default)]
    pub own_number: Option<guihe_protocol::event::CaseNumber>,
}

/// The township a person reviews for: a township reviewer's account on a township's
/// node reviews for that township; on any other node it reviews nothing.
pub fn reviews_for(
    reviewer: bool,
    division: guihe_protocol::division::Division,
) -> Option<guihe_protocol::division::Division> {
    (reviewer && matches!(division, guihe_protocol::division::Division::Township(_)))
        .then_some(division)
}

/// One line of a to-do list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TodoLine {
    /// What is due.
    pub item: guihe_protocol::todo::Item,
    /// The record's view.
    pub view: View,
}

/// What a call returns.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    /// A new record.
    Created {
        /// Its id.
        id: RecordId,
    },
    /// The record after an event.
    Recorded {
        /// Its view.
        view: Box<View>,
    },
    /// Views.
    Views(Vec<View>),
    /// One record.
    Detail(Box<Detail>),
    /// A staff account was made.
    StaffAdded {
        /// Its name.
        name: String,
    },
    /// A staff account, or none by that name.
    Account(Option<Box<crate::accounts::Account>>),
    /// Dashboard figures.
    Stats(Box<guihe_protocol::stats::Stats>),
    /// A record's parties, unmasked, by party id.
    Parties(Vec<(guihe_protocol::id::PartyId, Party)>),
    /// A to-do list: each item with its record's view.
    Todo(Vec<TodoLine>),
    /// The revocation list (or frontier) held now.
    Installed {
        /// Its version.
        version: u64,
    },
    /// A frontier, not signed yet.
    FrontierBody(Box<guihe_protocol::cert::FrontierBody>),
    /// The node writes again from this time on.
    ClockAccepted {
        /// The time accepted (ms since the epoch).
        from_ms: u64,
    },
}

/// Why a call failed. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field is missing or wrong; the message names it.
    #[error("{field}: {message}")]
    Field {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No such record here.
    #[error("本节点没有记录 {0} no record {0} on this node")]
    Unknown(String),
    /// This node may not do that.
    #[error("{0}")]
    Forbidden(String),
    /// The workflow refuses it (an event that does not fit the record's state).
    #[error("{0}")]
    Refused(String),
    /// The node failed (its store, a corrupt record).
    #[error("{0}")]
    Internal(String),
    /// The disk is full, or nearly: the write was not saved. Reads still work.
    #[error("{0}")]
    DiskFull(String),
    /// A field of a command is wrong, with the refusal in Chinese for the forms.
    #[error("{field}: {en}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong, in English.
        en: String,
        /// What is wrong, in Chinese.
        zh: String,
    },
    /// This node may not do that, with the refusal in Chinese.
    #[error("{en}")]
    Denied {
        /// Why, in English.
        en: String,
        /// Why, in Chinese.
        zh: String,
    },
    /// The record's state or rules refuse the command, with the refusal in Chinese.
    #[error("{en}")]
    Declined {
        /// Why, in English.
        en: String,
        /// Why, in Chinese.
        zh: String,
    },
}

impl ApiError {
    /// The error a client rebuilds from a 404 answer's message (which already reads as
    /// [`ApiError::Unknown`] does), so it is not wrapped twice.
    pub fn unknown_from_message(message: &str) -> ApiError {
        let id = message
            .split_whitespace()
            .find(|w| w.parse::<RecordId>().is_ok())
            .unwrap_or(message);
        ApiError::Unknown(id.to_string())
    }

    /// A wrong field, with what the form's worker reads in Chinese.
    fn invalid(field: &str, e: impl std::fmt::Display, zh: String) -> ApiError {
        ApiError::Invalid {
            field: field.into(),
            en: e.to_string(),
            zh,
        }
    }

    fn field(field: &str, e: impl std::fmt::Display) -> ApiError {
        ApiError::Field {
            field: field.into(),
            message: e.to_string(),
        }
    }

    /// The disk is full; `cause` says where it was found.
    pub fn disk_full(cause: &dyn std::fmt::Display) -> ApiError {
        ApiError::DiskFull(format!(
            "磁盘已满，本条记录未保存 the disk is full: this entry was NOT saved. Free disk space on this PC, then enter it again ({cause})"
        ))
    }

    /// The HTTP status that goes with the error.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Field { .. } | ApiError::Invalid { .. } => 400,
            ApiError::Declined { .. } => 409,
            ApiError::Forbidden(_) | ApiError::Denied { .. } => 403,
            ApiError::Unknown(_) => 404,
            ApiError::Refused(_) => 409,
            ApiError::Internal(_) => 500,
            ApiError::DiskFull(_) => 507,
        }
    }

    /// The message in Chinese, where the error has its own (the English is `Display`).
    pub fn zh(&self) -> Option<String> {
        match self {
            ApiError::Invalid { zh, .. }
            | ApiError::Declined { zh, .. }
            | ApiError::Denied { zh, .. } => Some(zh.clone()),
            ApiError::Unknown(id) => Some(format!("本节点没有记录 {id}。")),
            ApiError::DiskFull(_) => {
                Some("磁盘已满，本条记录未保存。请清理本机磁盘空间后重新录入。".into())
            }
            _ => None,
        }
    }

    /// A short code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Field { .. } | ApiError::Invalid { .. } => "field",
            ApiError::Declined { .. } => "refused",
            ApiError::Forbidden(_) | ApiError::Denied { .. } => "forbidden",
            ApiError::Unknown(_) => "unknown",
            ApiError::Refused(_) => "refused",
            ApiError::Internal(_) => "internal",
            ApiError::DiskFull(_) => "disk_full",
        }
    }
}

impl From<LocalError> for ApiError {
    fn from(e: LocalError) -> ApiError {
        match e {
            LocalError::Replica(ReplicaError::Unknown(id)) => ApiError::Unknown(id.to_string()),
            LocalError::Replica(ReplicaError::Command(c)) => match c {
                CommandError::Document(d) => ApiError::Internal(d.to_string()),
                CommandError::Refused(r) => ApiError::Declined {
                    en: r.to_string(),
                    zh: r.zh(),
                },
                forbidden @ CommandError::NotAuthorised { .. } => ApiError::Denied {
                    en: forbidden.to_string(),
                    zh: forbidden.zh(),
                },
                clock @ (CommandError::ClockOutsideCertificate { .. }
                | CommandError::ClockBehind { .. }
                | CommandError::RefusedUpstream { .. }) => ApiError::Declined {
                    en: clock.to_string(),
                    zh: clock.zh(),
                },
                other => ApiError::Invalid {
                    field: "event".into(),
                    en: other.to_string(),
                    zh: other.zh(),
                },
            },
            LocalError::Staff(m) => ApiError::Field {
                field: "staff".into(),
                message: m,
            },
            other if other.is_disk_full() => ApiError::disk_full(&other),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl Call {
    /// Whether the call writes to the store.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Call::Create { .. }
                | Call::Event { .. }
                | Call::AddStaff { .. }
                | Call::Revocations { .. }
                | Call::Frontier { .. }
                | Call::Settings { .. }
        )
    }
}

/// The body of an error reply.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A short code: field, forbidden, unknown, refused, internal, unauthorised.
    pub error: String,
    /// What went wrong, for a person.
    pub message: String,
    /// The same in Chinese, where the node has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_zh: Option<String>,
}

fn parse_record_id(id: &str) -> Result<RecordId, ApiError> {
    id.parse().map_err(|e| ApiError::field("id", e))
}

impl NewForm {
    /// Checks the form and turns it into a record to create.
    pub fn into_new(self, kind: Kind) -> Result<NewRecord, ApiError> {
        let jurisdictions = self
            .villages
            .iter()
            .map(|v| {
                v.parse().map_err(|e| {
                    ApiError::invalid(
                        "villages",
                        e,
                        format!("村代码应为12位数字（如500240001201），填的是“{v}”。"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let default_role = if kind == Kind::Petition {
            PartyRole::Petitioner
        } else {
            PartyRole::Applicant
        };
        let parties = self
            .parties
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let role = match p.role.as_deref() {
                    None | Some("") => default_role,
                    Some(r) => r.parse().map_err(|e| {
                        ApiError::invalid(
                            &format!("parties[{i}].role"),
                            e,
                            format!("请为第{}位当事人选择身份。", i + 1),
                        )
                    })?,
                };
                let details = p.particulars(i)?;
                let party = Party {
                    name: p.name.trim().to_string(),
                    role,
                    minor: p.minor,
                    contact: p.contact.filter(|c| !c.trim().is_empty()),
                    details,
                };
                party.check().map_err(|e| {
                    let zh = format!("第{}位当事人：{}", i + 1, e.zh());
                    ApiError::invalid(&format!("parties[{i}]"), e, zh)
                })?;
                Ok(party)
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let channel: Option<Channel> = self
            .channel
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(str::parse)
            .transpose()
            .map_err(|e| ApiError::invalid("channel", e, "请选择信访来源。".into()))?;
        Ok(NewRecord {
            kind,
            jurisdictions,
            received_ms: self.received_ms,
            category: self
                .category
                .parse::<Category>()
                .map_err(|e| ApiError::invalid("category", e, "请选择纠纷类别。".into()))?,
            risk: self
                .risk
                .parse::<Risk>()
                .map_err(|e| ApiError::invalid("risk", e, "请选择风险等级。".into()))?,
            channel,
            restricted: self.restricted,
            parties,
            summary: self.summary,
            note: String::new(),
            matter: self
                .matter
                .map(|m| (*m).into_matter(kind))
                .transpose()?
                .flatten(),
        })
    }
}

/// Turns an event's JSON form into a command. Hyphens in the type are read as
/// underscores (`follow-up` is `follow_up`).
pub fn event_command(event: serde_json::Value) -> Result<Command, ApiError> {
    let serde_json::Value::Object(mut map) = event else {
        return Err(ApiError::field("event", "must be a JSON object"));
    };
    let at_ms = match map.remove("at_ms") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| ApiError::field("at_ms", "must be milliseconds since the epoch"))?,
        ),
    };
    if let Some(serde_json::Value::String(t)) = map.get_mut("type") {
        *t = t.replace('-', "_");
    }
    let step = map
        .get("type")
        .and_then(serde_json::Value::as_str)
        .and_then(|t| {
            guihe_protocol::workflow::ALL_EVENT_TYPES
                .iter()
                .copied()
                .find(|s| s.code() == t)
        });
    let body: Body = serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| {
        // serde names a missing field in backticks; the form's worker reads its label. (A
        // word in backticks that is no field of the step is a value, and not named.)
        let text = e.to_string();
        let named = text
            .split('`')
            .nth(1)
            .filter(|w| step.is_some_and(|s| s.form_fields().iter().any(|f| f.name == *w)))
            .map(|w| match (step, w) {
                (Some(guihe_protocol::event::EventType::Assign), "to") => "承办人账号",
                _ => guihe_protocol::messages::field_zh(w),
            });
        let zh = match named {
            Some(name) if text.starts_with("missing field") => format!("请填写“{name}”。"),
            Some(name) => format!("“{name}”填写有误。"),
            None => "所填内容格式不对，请检查各项后再保存。".to_string(),
        };
        ApiError::invalid("event", e, zh)
    })?;
    // A case's number is the office's to give (`numbering`), never the caller's.
    let mut body = body;
    if let Body::Accept(a) | Body::Receive(a) = &mut body {
        a.number = None;
    }
    Ok(Command::Event { at_ms, body })
}

/// Carries out a call, recorded as `staff` if given (else the configured staff). A write
/// is durable when this returns; its changes come back so that a running daemon can push
/// them to its peers at once.
pub fn execute(
    local: &mut Local,
    staff: Option<&str>,
    call: Call,
) -> Result<(Reply, Vec<StoredChange>), ApiError> {
    let Some(staff) = staff else {
        return run(local, call);
    };
    let before = local.replica.writer.author.clone();
    local.as_staff(staff)?;
    let result = run(local, call);
    local.replica.writer.author = before;
    result
}

fn run(local: &mut Local, call: Call) -> Result<(Reply, Vec<StoredChange>), ApiError> {
    match call {
        Call::Create { kind, form } => {
            let new = form.into_new(kind)?;
            // The replica refuses what this node may not write (`NotAuthorised`).
            let (id, changes) = local.create(new)?;
            Ok((Reply::Created { id }, changes))
        }
        Call::Event { id, event } => {
            let id = parse_record_id(&id)?;
            let command = event_command(event)?;
            let changes = local.apply(id, command)?;
            let view = local.view(id)?;
            Ok((
                Reply::Recorded {
                    view: Box::new(view),
                },
                changes,
            ))
        }
        Call::List { kind } => {
            let views = local
                .views()?
                .into_iter()
                .filter(|v| kind.is_none_or(|k| v.kind() == k))
                .collect();
            Ok((Reply::Views(views), Vec::new()))
        }
        Call::Show { id } => {
            let id = parse_record_id(&id)?;
            let view = local.view(id)?;
            let record = local.replica.record(id).map_err(LocalError::from)?;
            let mut timeline: Vec<Event> = record
                .events()
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .events
                .into_iter()
                .map(Event::masked)
                .collect();
            guihe_protocol::fold::order(&mut timeline);
            let here = local.replica.identity.cert.node();
            let mut display_names = std::collections::BTreeMap::new();
            // Authors, and the colleagues they assigned (at the same office).
            let names = timeline
                .iter()
                .filter(|e| e.node == here)
                .flat_map(|e| {
                    let assigned = match &e.body {
                        guihe_protocol::event::Body::Assign(a) => Some(a.to.to_string()),
                        _ => None,
                    };
                    std::iter::once(e.staff.to_string()).chain(assigned)
                })
                .collect::<std::collections::BTreeSet<String>>();
            for name in names {
                if display_names.contains_key(&name) {
                    continue;
                }
                if let Some(display) = local.display_name(&name) {
                    display_names.insert(name, display);
                }
            }
            let next_steps = record
                .next_steps(
                    &local.config.deadlines,
                    crate::local::now_ms(),
                    local.replica.identity.cert.body.division,
                    local.writable_schema()?,
                )
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let refused_upstream = local
                .replica
                .store
                .own_refused()
                .map_err(LocalError::from)?
                .into_iter()
                .find(|r| r.record == id)
                .map(|r| r.code);
            let numbers = &view.common().numbers;
            let duplicate_number = !numbers.is_empty() && {
                let same: Vec<_> = local
                    .fresh()?
                    .iter()
                    .flat_map(|(other, (v, _))| {
                        v.common()
                            .numbers
                            .iter()
                            .filter(|n| numbers.contains(n))
                            .map(|n| (*other, *n))
                    })
                    .collect();
                guihe_protocol::numbering::duplicates(same).contains(&id)
            };
            let own_number = view
                .common()
                .number_at(local.replica.identity.cert.body.division);
            Ok((
                Reply::Detail(Box::new(Detail {
                    view,
                    timeline,
                    refused_upstream,
                    next_steps,
                    display_names,
                    duplicate_number,
                    own_number,
                    schema: local.writable_schema()?,
                })),
                Vec::new(),
            ))
        }
        Call::AddStaff {
            name,
            display,
            role,
            password,
        } => {
            let staff: guihe_protocol::id::StaffId =
                name.parse().map_err(|e| ApiError::field("name", e))?;
            let role: crate::accounts::StaffRole = role
                .parse()
                .map_err(|e: String| ApiError::field("role", e))?;
            let display = if display.trim().is_empty() {
                staff.to_string()
            } else {
                display.trim().to_string()
            };
            let account = crate::accounts::new_account(staff.clone(), display, role, &password)
                .map_err(|e| ApiError::field("password", e))?;
            let json =
                serde_json::to_vec(&account).map_err(|e| ApiError::Internal(e.to_string()))?;
            local
                .replica
                .store
                .put_account(&staff.to_string(), &json)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok((
                Reply::StaffAdded {
                    name: staff.to_string(),
                },
                Vec::new(),
            ))
        }
        Call::Account { name } => {
            let account = local
                .replica
                .store
                .account(&name)
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .and_then(|json| serde_json::from_slice(&json).ok())
                .map(Box::new);
            Ok((Reply::Account(account), Vec::new()))
        }
        Call::Related { id } => {
            let id = parse_record_id(&id)?;
            let fresh = local.fresh()?;
            let Some((this, _)) = fresh.get(&id) else {
                return Err(ApiError::Unknown(id.to_string()));
            };
            let mut related: Vec<View> = fresh
                .iter()
                .filter(|(other, (v, _))| {
                    **other != id && this.common().shares_party_with(v.common())
                })
                .map(|(_, (v, _))| v.clone())
                .collect();
            related.sort_by_key(|v| std::cmp::Reverse(v.common().received_ms));
            Ok((Reply::Views(related), Vec::new()))
        }
        Call::Parties { id } => {
            let id = parse_record_id(&id)?;
            let record = local.replica.record(id).map_err(LocalError::from)?;
            let fold = record
                .fold(&local.config.deadlines)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok((
                Reply::Parties(fold.parties.into_iter().collect()),
                Vec::new(),
            ))
        }
        Call::Todo { reviewer } => {
            let node = local.replica.identity.cert.node();
            let division = local.replica.identity.cert.body.division;
            let staff = local.replica.writer.author.staff.clone();
            let rules = local.config.deadlines.clone();
            let now = crate::local::now_ms();
            let fresh = local.fresh()?;
            let desk = guihe_protocol::todo::Desk {
                node: &node,
                division,
                staff: &staff,
                reviews_for: reviews_for(reviewer, division),
            };
            let items =
                guihe_protocol::todo::todo(fresh.values().map(|(v, _)| v), &desk, &rules, now);
            let lines = items
                .into_iter()
                .filter_map(|item| {
                    let view = fresh.get(&item.record)?.0.clone();
                    Some(TodoLine { item, view })
                })
                .collect();
            Ok((Reply::Todo(lines), Vec::new()))
        }
        Call::Stats { division, period } => {
            let own = local.replica.identity.cert.body.division;
            let division: guihe_protocol::division::Division = match division.as_deref() {
                None | Some("") => own,
                Some(d) => d.parse().map_err(|e| ApiError::field("division", e))?,
            };
            let inside = own.contains(division);
            if !inside {
                return Err(ApiError::Forbidden(format!(
                    "{division} is outside this node's division {own}"
                )));
            }
            let now = crate::local::now_ms();
            let period = match period.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(p) => Some(guihe_protocol::stats::Period::parse(p, now).ok_or_else(|| {
                    ApiError::invalid(
                        "period",
                        format!("{p:?} is not a month (2026-11), a quarter (2026-Q3), a year (2026) or a start day (2018-01-01..)"),
                        "统计期间应为月份（如2026-11）、季度（如2026-Q3）、年份（如2026）或起始日期（如2018-01-01..）。".into(),
                    )
                })?),
            };
            let rows = local.fresh()?.values().map(|(_, r)| r);
            let stats = match period {
                Some(period) => guihe_protocol::stats::compute_period(rows, division, period, now),
                None => guihe_protocol::stats::compute_rows(rows, division, now),
            };
            Ok((Reply::Stats(Box::new(stats)), Vec::new()))
        }
        Call::Revocations { list } => {
            list.verify(&local.root)
                .map_err(|e| ApiError::field("list", e))?;
            let store = &mut local.replica.store;
            let held = store
                .revocations()
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            match held {
                Some(h) if h.body.version > list.body.version => {
                    return Err(ApiError::Refused(format!(
                        "this node holds revocation list version {}, newer than {}",
                        h.body.version, list.body.version
                    )));
                }
                Some(h) if h.body.version == list.body.version => {
                    if h != list {
                        return Err(ApiError::Refused(format!(
                            "this node holds another revocation list of version {}",
                            h.body.version
                        )));
                    }
                }
                _ => store
                    .put_revocations(&list)
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
            }
            Ok((
                Reply::Installed {
                    version: list.body.version,
                },
                Vec::new(),
            ))
        }
        Call::AcceptClock => {
            let from_ms = local.accept_clock()?;
            Ok((Reply::ClockAccepted { from_ms }, Vec::new()))
        }
        Call::FrontierOf { nodes, version } => {
            let body = guihe_protocol::revoke::frontier(&local.replica.store, version, &nodes)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok((Reply::FrontierBody(Box::new(body)), Vec::new()))
        }
        Call::Settings { settings } => {
            settings
                .verify(&local.root)
                .map_err(|e| ApiError::field("settings", e))?;
            let store = &mut local.replica.store;
            let held = store
                .settings()
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            if let Some(h) = held
                && h.body.version >= settings.body.version
            {
                let (held, given) = (
                    guihe_protocol::stats::date_of(h.body.issued_ms),
                    guihe_protocol::stats::date_of(settings.body.issued_ms),
                );
                return Err(ApiError::Refused(format!(
                    "本节点已有 {held} 签发的县级设置，不早于这份（{given} 签发）：无需安装。This node holds county settings issued {held}, not older than these (issued {given}): nothing to install."
                )));
            }
            store
                .put_settings(&settings)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok((
                Reply::Installed {
                    version: settings.body.version,
                },
                Vec::new(),
            ))
        }
        Call::Frontier { frontier } => {
            frontier
                .verify(&local.root)
                .map_err(|e| ApiError::field("frontier", e))?;
            let store = &mut local.replica.store;
            let held = store
                .frontier()
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            if let Some(h) = held
                && h.body.version > frontier.body.version
            {
                return Err(ApiError::Refused(format!(
                    "this node holds frontier version {}, newer than {}",
                    h.body.version, frontier.body.version
                )));
            }
            store
                .put_frontier(&frontier)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            local.flag_beyond_frontier()?;
            Ok((
                Reply::Installed {
                    version: frontier.body.version,
                },
                Vec::new(),
            ))
        }
    }
}

/// What a running daemon reports about itself and its peers.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusReport {
    /// The node's key.
    pub node: String,
    /// Its role.
    pub role: String,
    /// Its division.
    pub division: String,
    /// When the report was made.
    pub updated_ms: u64,
    /// Records held.
    pub records: usize,
    /// Changes held.
    pub changes: usize,
    /// Changes waiting for their dependencies.
    pub pending: usize,
    /// Every peer met, with its last sync (kept across restarts).
    pub peers: Vec<PeerReport>,
    /// How fresh each village's data is here.
    #[serde(default)]
    pub freshness: Vec<Freshness>,
    /// Free disk space is below the reserve: no new entries are taken and the node does
    /// not sync until space is freed.
    #[serde(default)]
    pub disk_low: bool,
    /// Validly signed changes this node refused and keeps aside, newest first.
    #[serde(default)]
    pub quarantined: Vec<QuarantineReport>,
    /// Changes stamped too far in the future, held until their time comes.
    #[serde(default)]
    pub held: usize,
    /// Changes the offices below refused, from their quarantine reports, newest first (at
    /// most [`REPORTED_MAX`]). Empty at a village, which reads no such report.
    #[serde(default)]
    pub reported: Vec<ReportedRefusal>,
    /// Changes of this node's own that an office above refused: their records can no
    /// longer be written here.
    #[serde(default)]
    pub refused_upstream: Vec<RefusedUpstream>,
    /// The version of the county settings held (0: none).
    #[serde(default)]
    pub settings_version: u64,
    /// When the county issued them (ms since the epoch; 0: none).
    #[serde(default)]
    pub settings_issued_ms: u64,
    /// The record schema this node writes new records in: the newest it knows that the
    /// county's settings allow.
    #[serde(default)]
    pub record_schema: u64,
}

/// The county settings a store holds, as the status shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingsLine {
    /// Their version (0: none).
    pub version: u64,
    /// When the county issued them (0: none).
    pub issued_ms: u64,
    /// The record schema this build writes under them.
    pub record_schema: u64,
}

impl SettingsLine {
    /// What a store holds.
    pub fn of<S: guihe_protocol::store::Store>(store: &S) -> SettingsLine {
        let settings = store.settings().ok().flatten();
        let body = settings.as_ref().map(|s| &s.body);
        SettingsLine {
            version: body.map_or(0, |b| b.version),
            issued_ms: body.map_or(0, |b| b.issued_ms),
            record_schema: guihe_protocol::cert::writable_schema(
                body,
                guihe_protocol::record::SCHEMA_VERSION,
            ),
        }
    }

    /// The status line, Chinese first.
    pub fn text(&self) -> String {
        format!(
            "写入的记录格式 record schema written: {}{}",
            self.record_schema,
            if self.version == 0 {
                " · 尚无县级设置 no county settings yet".to_string()
            } else {
                format!(
                    " · 县级设置 {} 签发 county settings issued {}",
                    guihe_protocol::stats::date_of(self.issued_ms),
                    guihe_protocol::stats::date_of(self.issued_ms)
                )
            }
        )
    }
}

/// A change of this node's own that an office above refused, in a [`StatusReport`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefusedUpstream {
    /// The record, which this node no longer writes to.
    pub record: String,
    /// The reason's code.
    pub code: String,
    /// The reason, in Chinese.
    pub reason_zh: String,
    /// The reason, in English.
    pub reason_en: String,
    /// When this node learned of it (ms since the epoch).
    pub at_ms: u64,
}

/// What offices above refused of this node's own changes, newest first.
pub fn refused_upstream<S: guihe_protocol::store::Store>(store: &S) -> Vec<RefusedUpstream> {
    let mut out: Vec<RefusedUpstream> = store
        .own_refused()
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            let (zh, en) = guihe_protocol::quarantine::label(&r.code);
            RefusedUpstream {
                record: r.record.to_string(),
                code: r.code,
                reason_zh: zh.into(),
                reason_en: en.into(),
                at_ms: r.at_ms,
            }
        })
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse(r.at_ms));
    out
}

/// The most refusals reported from below that the status shows.
pub const REPORTED_MAX: usize = 500;

/// A change an office below refused, as its quarantine report says (`owned`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportedRefusal {
    /// The office that refused it: the report's owner (a township code, or the county's).
    pub office: String,
    /// The signer's key.
    pub signer: String,
    /// The signer's division, when its certificate is known here.
    pub signer_division: Option<String>,
    /// The record the change claims.
    pub record: String,
    /// The reason's code.
    pub code: String,
    /// The reason, in Chinese.
    pub reason_zh: String,
    /// The reason, in English.
    pub reason_en: String,
    /// When the office refused it (ms since the epoch, the office's clock).
    pub refused_ms: u64,
}

/// The refusals that offices other than `mine` reported in the quarantine reports this
/// store holds, newest first.
pub fn reported_refusals<S: guihe_protocol::store::Store>(
    store: &S,
    mine: guihe_protocol::division::Division,
) -> Vec<ReportedRefusal> {
    use guihe_protocol::owned::{Body, OwnedKind, all_of};
    let mut out = Vec::new();
    for report in all_of(store, OwnedKind::QuarantineReport).unwrap_or_default() {
        if report.owner() == mine {
            continue;
        }
        for entry in report.entries().0 {
            let Body::Refusal {
                signer,
                record,
                code,
                ..
            } = entry.body;
            let (zh, en) = guihe_protocol::quarantine::label(&code);
            out.push(ReportedRefusal {
                office: report.owner().to_string(),
                signer: crate::keys::public_hex(&signer),
                signer_division: division_of(store, &signer),
                record: record.to_string(),
                code,
                reason_zh: zh.into(),
                reason_en: en.into(),
                refused_ms: entry.at_ms,
            });
        }
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.refused_ms));
    out.truncate(REPORTED_MAX);
    out
}

/// One refused change in a [`StatusReport`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuarantineReport {
    /// The signer's key.
    pub signer: String,
    /// The signer's division, when its certificate is known here.
    pub signer_division: Option<String>,
    /// The record the change claims.
    pub record: String,
    /// The reason's code.
    pub code: String,
    /// The reason, in Chinese.
    pub reason_zh: String,
    /// The reason, in English.
    pub reason_en: String,
    /// The reason in detail, for the operator.
    pub detail: String,
    /// When this node refused it (ms since the epoch).
    pub refused_ms: u64,
}

/// A node's division, from its newest certificate the store knows.
fn division_of<S: guihe_protocol::store::Store>(
    store: &S,
    node: &guihe_protocol::id::NodeId,
) -> Option<String> {
    store
        .certificates_of(node)
        .ok()
        .and_then(|c| c.last().map(|c| c.body.division.to_string()))
}

/// The refused changes a store keeps aside, newest first, as the status report shows them.
pub fn quarantine_reports<S: guihe_protocol::store::Store>(store: &S) -> Vec<QuarantineReport> {
    let mut kept = store.quarantined().unwrap_or_default();
    kept.sort_by_key(|q| std::cmp::Reverse(q.refused_ms));
    kept.into_iter()
        .map(|q| {
            let (zh, en) = guihe_protocol::quarantine::label(&q.code);
            QuarantineReport {
                signer: crate::keys::public_hex(&q.signer),
                signer_division: division_of(store, &q.signer),
                record: q.record.to_string(),
                code: q.code,
                reason_zh: zh.into(),
                reason_en: en.into(),
                detail: q.detail,
                refused_ms: q.refused_ms,
            }
        })
        .collect()
}

/// The newest change held for one village.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Freshness {
    /// The village code.
    pub village: String,
    /// The time of its newest change held here (ms since the epoch).
    pub newest_ms: u64,
}

/// One peer in a [`StatusReport`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PeerReport {
    /// The peer's libp2p id.
    pub peer: String,
    /// Its division, once its certificate was verified.
    pub division: Option<String>,
    /// A session is open now.
    pub connected: bool,
    /// The open session has reconciled: both sides hold what the other had.
    pub reconciled: bool,
    /// When the last session with it reconciled.
    pub last_reconciled_ms: Option<u64>,
    /// When a message from it last arrived.
    pub last_seen_ms: Option<u64>,
    /// Changes received from it.
    pub changes_in: u64,
    /// How far its clock was ahead of this node's (negative: behind) when it last greeted,
    /// in milliseconds.
    #[serde(default)]
    pub clock_skew_ms: Option<i64>,
}
