//! The command line's way to a node: its store directly when the node is stopped, or the
//! running daemon's HTTP API (found through `api.json` in the data folder) while it runs,
//! since the daemon holds the store. Either way a call is the same [`Call`].

use std::path::Path;
use std::time::Duration;

use guihe_protocol::id::RecordId;
use guihe_protocol::model::Kind;
use serde::de::DeserializeOwned;

use crate::api::{self, ApiError, Call, Detail, ErrorBody, Reply, StatusReport};
use crate::http::{Endpoint, STAFF_HEADER};
use crate::local::{Local, LocalError};

/// How long the command line waits for a running daemon.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A node to work on.
#[derive(Debug)]
pub enum Node {
    /// A stopped node: its store, opened here.
    Local(Box<Local>),
    /// A running daemon.
    Remote(Remote),
}

/// A running daemon's API.
#[derive(Debug)]
pub struct Remote {
    endpoint: Endpoint,
    agent: ureq::Agent,
}

/// Why a call through the command line failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node refused the call or failed; nothing was written.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The node could not be opened.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// The running daemon could not be reached or answered oddly.
    #[error("the running node at {url}: {message}")]
    Remote {
        /// Its API.
        url: String,
        /// What went wrong.
        message: String,
    },
}

impl Node {
    /// Opens the node in `data`: its store, or, while `guihe run` holds the store, the
    /// daemon's API.
    pub fn open(data: &Path) -> Result<Node, ClientError> {
        match Local::open(data) {
            Ok(local) => Ok(Node::Local(Box::new(local))),
            // The store is locked by a running daemon, or failed: a daemon that answers
            // takes the call; otherwise the store's own error says what is wrong (a
            // full disk, say), not a stale `api.json`.
            Err(e @ LocalError::Store(_)) => match Remote::find(data) {
                Some(remote) if remote.alive() => Ok(Node::Remote(remote)),
                _ => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Carries out a call, recorded as `staff` if given.
    pub fn call(&mut self, staff: Option<&str>, call: Call) -> Result<Reply, ClientError> {
        match self {
            Node::Local(local) => Ok(api::execute(local, staff, call)?.0),
            Node::Remote(remote) => remote.call(staff, call),
        }
    }
}

impl Remote {
    /// The daemon's API if `api.json` says where it is.
    pub fn find(data: &Path) -> Option<Remote> {
        let text = std::fs::read(data.join("api.json")).ok()?;
        let endpoint: Endpoint = serde_json::from_slice(&text).ok()?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .build();
        Some(Remote {
            endpoint,
            agent: config.into(),
        })
    }

    /// Whether the daemon answers.
    fn alive(&self) -> bool {
        self.agent
            .get(format!("{}/healthz", self.endpoint.url))
            .call()
            .is_ok_and(|r| r.status().is_success())
    }

    fn fail(&self, message: impl std::fmt::Display) -> ClientError {
        ClientError::Remote {
            url: self.endpoint.url.clone(),
            message: message.to_string(),
        }
    }

    fn request<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        staff: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<T, ClientError> {
        let url = format!("{}/api/v1{path}", self.endpoint.url);
        let auth = format!("Bearer {}", self.endpoint.token);
        let response = if method == "POST" {
            let mut request = self.agent.post(&url).header("Authorization", &auth);
            if let Some(staff) = staff {
                request = request.header(STAFF_HEADER, staff);
            }
            request.send_json(body.unwrap_or(&serde_json::Value::Null))
        } else {
            self.agent.get(&url).header("Authorization", &auth).call()
        };
        let mut response = response.map_err(|e| {
            let refused = matches!(&e, ureq::Error::ConnectionFailed)
                || matches!(&e, ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused);
            if method == "POST" && !refused {
                // The entry may have been taken before the connection broke: entering it
                // again blindly could record it twice.
                self.fail(format_args!(
                    "与节点的连接中断，本次提交可能已保存也可能未保存，请先查看记录列表再决定是否重新录入 the connection to the node broke off: what was sent may or may not be saved; check the list before entering it again ({e})"
                ))
            } else {
                self.fail(format_args!("无法连接运行中的节点 could not reach the running node ({e})"))
            }
        })?;
        let status = response.status().as_u16();
        if status >= 400 {
            let body: ErrorBody = response
                .body_mut()
                .read_json()
                .map_err(|e| self.fail(format!("status {status}: {e}")))?;
            return Err(match (status, body.error.as_str()) {
                (400, _) => {
                    let (field, message) = body
                        .message
                        .split_once(": ")
                        .map(|(f, m)| (f.to_string(), m.to_string()))
                        .unwrap_or_else(|| ("request".into(), body.message.clone()));
                    ApiError::Field { field, message }.into()
                }
                (403, _) => ApiError::Forbidden(body.message).into(),
                (404, "unknown") => ApiError::unknown_from_message(&body.message).into(),
                (409, _) => ApiError::Refused(body.message).into(),
                (507, _) => ApiError::DiskFull(body.message).into(),
                _ => self.fail(format!("status {status}: {}", body.message)),
            });
        }
        response.body_mut().read_json().map_err(|e| self.fail(e))
    }

    /// Carries out a call on the daemon.
    pub fn call(&self, staff: Option<&str>, call: Call) -> Result<Reply, ClientError> {
        match call.clone() {
            Call::Create { kind, form } => {
                let path = if kind == Kind::Case {
                    "/cases"
                } else {
                    "/petitions"
                };
                #[derive(serde::Deserialize)]
                struct Created {
                    id: RecordId,
                }
                let c: Created = self.request(
                    "POST",
                    path,
                    staff,
                    Some(&serde_json::to_value(&form).map_err(|e| self.fail(e))?),
                )?;
                Ok(Reply::Created { id: c.id })
            }
            Call::Event { id, event } => {
                #[derive(serde::Deserialize)]
                struct Recorded {
                    view: Box<guihe_protocol::view::View>,
                }
                let path = format!("/records/{id}/events");
                let r: Recorded = self.request("POST", &path, staff, Some(&event))?;
                Ok(Reply::Recorded { view: r.view })
            }
            Call::List { kind } => {
                let path = match kind {
                    Some(Kind::Case) => "/cases",
                    Some(Kind::Petition) => "/petitions",
                    None => "/records",
                };
                Ok(Reply::Views(self.request("GET", path, None, None)?))
            }
            Call::AddStaff { .. } => {
                let body = serde_json::to_value(call_body(&call)).map_err(|e| self.fail(e))?;
                #[derive(serde::Deserialize)]
                struct Added {
                    name: String,
                }
                let a: Added = self.request("POST", "/staff", None, Some(&body))?;
                Ok(Reply::StaffAdded { name: a.name })
            }
            Call::Account { .. } => Err(self.fail("accounts are read by the node itself")),
            Call::Related { .. } => Err(self.fail("related records are shown on the record page")),
            Call::Parties { .. } => {
                Err(self.fail("the parties' particulars are printed from the record page"))
            }
            Call::Todo { reviewer } => Ok(Reply::Todo(self.request(
                "GET",
                &format!("/todo?reviewer={reviewer}"),
                staff,
                None,
            )?)),
            Call::Stats { division, period } => {
                let query = serde_urlencoded::to_string([
                    ("division", division.unwrap_or_default()),
                    ("period", period.unwrap_or_default()),
                ])
                .map_err(|e| self.fail(e))?;
                let path = format!("/stats?{query}");
                Ok(Reply::Stats(Box::new(
                    self.request("GET", &path, None, None)?,
                )))
            }
            Call::AcceptClock => {
                #[derive(serde::Deserialize)]
                struct Accepted {
                    from_ms: u64,
                }
                let a: Accepted = self.request("POST", "/clock/accept", None, None)?;
                Ok(Reply::ClockAccepted { from_ms: a.from_ms })
            }
            Call::FrontierOf { nodes, version } => {
                let body = serde_json::json!({ "nodes": nodes, "version": version });
                let f: guihe_protocol::cert::FrontierBody =
                    self.request("POST", "/frontier/compute", None, Some(&body))?;
                Ok(Reply::FrontierBody(Box::new(f)))
            }
            Call::Frontier { frontier } => {
                #[derive(serde::Deserialize)]
                struct Installed {
                    version: u64,
                }
                let body = serde_json::to_value(&frontier).map_err(|e| self.fail(e))?;
                let i: Installed = self.request("POST", "/frontier", None, Some(&body))?;
                Ok(Reply::Installed { version: i.version })
            }
            Call::Settings { settings } => {
                #[derive(serde::Deserialize)]
                struct Installed {
                    version: u64,
                }
                let body = serde_json::to_value(&settings).map_err(|e| self.fail(e))?;
                let i: Installed = self.request("POST", "/settings", None, Some(&body))?;
                Ok(Reply::Installed { version: i.version })
            }
            Call::Revocations { list } => {
                #[derive(serde::Deserialize)]
                struct Installed {
                    version: u64,
                }
                let body = serde_json::to_value(&list).map_err(|e| self.fail(e))?;
                let i: Installed = self.request("POST", "/revocations", None, Some(&body))?;
                Ok(Reply::Installed { version: i.version })
            }
            Call::Show { id } => {
                let d: Detail = self.request("GET", &format!("/records/{id}"), None, None)?;
                Ok(Reply::Detail(Box::new(d)))
            }
        }
    }

    /// The daemon's status.
    pub fn status(&self) -> Result<StatusReport, ClientError> {
        self.request("GET", "/status", None, None)
    }
}

/// The JSON body of a call that is sent whole.
fn call_body(call: &Call) -> serde_json::Value {
    match call {
        Call::AddStaff {
            name,
            display,
            role,
            password,
        } => {
            serde_json::json!({"name": name, "display": display, "role": role, "password": password})
        }
        _ => serde_json::Value::Null,
    }
}
