//! What the HTTP API and the web app share: the state every handler holds (the core's
//! channel, the token, the metrics, the signed-in sessions) and the one way a handler
//! asks the core for something.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use guihe_protocol::id::StaffId;
use prometheus_client::registry::Registry;
use rand::RngCore;
use tokio::sync::{mpsc, oneshot};

use crate::accounts::{Account, StaffRole};
use crate::api::{ApiError, Call, ErrorBody, Reply, StatusReport};
use crate::metrics::Metrics;

/// How long a call may wait for the core.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A request for the core task.
#[derive(Debug)]
pub(crate) enum Request {
    /// Carry out a call.
    Call {
        staff: Option<String>,
        call: Box<Call>,
        reply: oneshot::Sender<Result<Reply, ApiError>>,
    },
    /// Report the status.
    Status {
        reply: oneshot::Sender<StatusReport>,
    },
}

#[derive(Clone)]
pub(crate) struct AppState {
    /// This office's node: with a signed-in person's account, who they are.
    pub(crate) node: guihe_protocol::id::NodeId,
    /// This office's division (its certificate's).
    pub(crate) division: guihe_protocol::division::Division,
    pub(crate) core: mpsc::Sender<Request>,
    /// Set once the store has failed; every call is answered with it.
    pub(crate) failed: crate::core::Failed,
    pub(crate) token: Arc<str>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) metrics: Metrics,
    pub(crate) web: Sessions,
}

/// How long a sign-in lasts.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// A signed-in staff member.
#[derive(Debug, Clone)]
pub(crate) struct WebSession {
    pub(crate) staff: StaffId,
    pub(crate) display: String,
    pub(crate) role: StaffRole,
    pub(crate) csrf: String,
    pub(crate) expires: Instant,
}

/// The signed-in sessions of this node.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sessions(Arc<Mutex<HashMap<String, WebSession>>>);

impl Sessions {
    pub(crate) fn get(&self, token: &str) -> Option<WebSession> {
        let mut map = self.0.lock().ok()?;
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        map.get(token).cloned()
    }

    pub(crate) fn open(&self, account: &Account) -> String {
        let token = random_hex();
        if let Ok(mut map) = self.0.lock() {
            map.insert(
                token.clone(),
                WebSession {
                    staff: account.name.clone(),
                    display: account.display.clone(),
                    role: account.role,
                    csrf: random_hex(),
                    expires: Instant::now() + SESSION_TTL,
                },
            );
        }
        token
    }

    pub(crate) fn close(&self, token: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(token);
        }
    }
}

pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    error_zh(status, code, message, None)
}

/// An error answer with its message in Chinese too, for the web pages.
pub(crate) fn error_zh(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    zh: Option<String>,
) -> Response {
    (
        status,
        axum::Json(ErrorBody {
            error: code.into(),
            message: message.into(),
            message_zh: zh,
        }),
    )
        .into_response()
}

pub(crate) async fn call(
    state: &AppState,
    staff: Option<String>,
    call: Call,
) -> Result<Reply, Response> {
    let (reply, rx) = oneshot::channel();
    // Once the store has failed, the reason, not "busy": the daemon is stopping and a
    // queued call would only be dropped.
    let writes = call.writes();
    let busy = || match state.failed.error(writes) {
        Some(e) => e.into_response(),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "节点正忙或正在停止，请稍后再试 the node is busy or stopping; try again",
        ),
    };
    if state.failed.is_set() {
        return Err(busy());
    }
    state
        .core
        .send_timeout(
            Request::Call {
                staff,
                call: Box::new(call),
                reply,
            },
            CALL_TIMEOUT,
        )
        .await
        .map_err(|_| busy())?;
    match tokio::time::timeout(CALL_TIMEOUT, rx).await {
        Ok(Ok(result)) => result.map_err(IntoResponse::into_response),
        _ => Err(busy()),
    }
}

/// The node's status report, for the web app.
pub(crate) async fn status_report(state: &AppState) -> Option<StatusReport> {
    let (reply, rx) = oneshot::channel();
    state
        .core
        .send_timeout(Request::Status { reply }, CALL_TIMEOUT)
        .await
        .ok()?;
    tokio::time::timeout(CALL_TIMEOUT, rx).await.ok()?.ok()
}
