//! The daemon's HTTP server: the JSON API under `/api/v1` and Prometheus metrics at
//! `/metrics`, bound to localhost unless the configuration says otherwise.
//!
//! The API's calls go to the daemon's core task, which owns the store, so a write made
//! over HTTP is pushed to the connected peers at once. For now the API has one credential:
//! the token the daemon writes to `api.json` (mode 0600) in its data folder, which the
//! command line on the same machine reads. Staff accounts come with the web app.
//!
//! Routes:
//! - `GET /api/v1/cases`, `GET /api/v1/petitions`, `GET /api/v1/records`: views;
//! - `POST /api/v1/cases`, `POST /api/v1/petitions`: intake ([`NewForm`]), 201 with the id;
//! - `GET /api/v1/records/{id}`: one record with its timeline;
//! - `POST /api/v1/records/{id}/events`: append an event (`{"type": "session", …}`);
//! - `GET /api/v1/status`: the node and its peers;
//! - `GET /api/v1/stats?division=CODE`: dashboard figures (default: the node's division);
//! - `POST /api/v1/revocations`: install a newer county revocation list;
//! - `POST /api/v1/staff`: make or replace a local staff account (for the web app);
//! - `GET /metrics`, `GET /healthz`, `GET /api/v1/openapi.json` (this list, as OpenAPI):
//!   no token needed.
//!
//! The header `X-Guihe-Staff` names the staff member a write is recorded as. Errors are
//! JSON ([`ErrorBody`]) with a 4xx or 5xx status; nothing is written when a call fails.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Request as HttpRequest, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use guihe_protocol::model::Kind;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::api::{ApiError, Call, ErrorBody, NewForm, Reply, StatusReport};
use crate::app::{AppState, CALL_TIMEOUT, Request, Sessions, call, error};
use crate::metrics::{Metrics, Route};

/// The largest request body taken.
const BODY_BYTES_MAX: usize = 256 * 1024;
/// The header naming who records a write.
pub const STAFF_HEADER: &str = "x-guihe-staff";

/// Where a running daemon's API is, for the command line: written to `api.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    /// The base URL, `http://127.0.0.1:8710`.
    pub url: String,
    /// The bearer token.
    pub token: String,
}

/// The API's router.
pub(crate) fn router(
    node: guihe_protocol::id::NodeId,
    division: guihe_protocol::division::Division,
    core: mpsc::Sender<Request>,
    failed: crate::core::Failed,
    token: String,
    registry: Arc<Registry>,
    metrics: Metrics,
) -> Router {
    let state = AppState {
        node,
        division,
        core,
        failed,
        token: token.into(),
        registry,
        metrics,
        web: Sessions::default(),
    };
    let api = Router::new()
        .route("/cases", get(list_cases).post(create_case))
        .route("/petitions", get(list_petitions).post(create_petition))
        .route("/records", get(list_all))
        .route("/records/{id}", get(show))
        .route("/records/{id}/events", post(append))
        .route("/status", get(status))
        .route("/stats", get(stats))
        .route("/todo", get(todo))
        .route("/staff", post(add_staff))
        .route("/revocations", post(revocations))
        .route("/frontier", post(frontier))
        .route("/settings", post(settings))
        .route("/clock/accept", post(accept_clock))
        .route("/frontier/compute", post(frontier_of))
        .fallback(not_found)
        .route_layer(middleware::from_fn_with_state(state.clone(), authorise));
    Router::new()
        .nest("/api/v1", api)
        .merge(crate::web::routes())
        .route("/metrics", get(serve_metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        crate::app::error_zh(status, self.code(), self.to_string(), self.zh())
    }
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authorise(State(state): State<AppState>, request: HttpRequest, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same(given.as_bytes(), state.token.as_bytes()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorised",
            "a valid token is needed (Authorization: Bearer …, from api.json in the data folder)",
        );
    }
    next.run(request).await
}

async fn count(State(state): State<AppState>, request: HttpRequest, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "other".into());
    let response = next.run(request).await;
    state
        .metrics
        .api_requests
        .get_or_create(&Route {
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// The API's OpenAPI document, generated from the handlers above.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "guihe node API", description = "The JSON API every guihe node serves on its HTTP port. Authorization: Bearer <token from api.json>."),
    paths(list_cases, list_petitions, list_all, create_case, create_petition, show, append, add_staff, todo, stats, revocations, frontier, settings, frontier_of, accept_clock, status, serve_metrics),
    components(schemas(NewForm, crate::api::PartyForm, ErrorBody, StatusReport, crate::api::PeerReport, crate::api::Freshness, crate::api::QuarantineReport, crate::api::ReportedRefusal, crate::api::RefusedUpstream, StaffForm)),
    modifiers(&TokenScheme)
)]
#[derive(Debug)]
pub struct ApiDoc;

struct TokenScheme;

impl utoipa::Modify for TokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

async fn openapi() -> Response {
    axum::Json(<ApiDoc as utoipa::OpenApi>::openapi()).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "unknown", "no such API route")
}

fn staff(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get(STAFF_HEADER) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.to_string()))
            .map_err(|_| ApiError::Field {
                field: "staff".into(),
                message: "the staff header must be ASCII".into(),
            }),
    }
}

fn json<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::Field {
        field: "body".into(),
        message: e.to_string(),
    })
}

fn respond(result: Result<Reply, Response>, ok: StatusCode) -> Response {
    match result {
        Ok(reply) => (ok, axum::Json(reply)).into_response(),
        Err(response) => response,
    }
}

async fn list(state: AppState, kind: Option<Kind>) -> Response {
    respond(
        call(&state, None, Call::List { kind }).await,
        StatusCode::OK,
    )
}

#[utoipa::path(get, path = "/api/v1/cases", tag = "records", responses((status = 200, description = "Every case this node holds, as views", body = [Object])), security(("token" = [])))]
async fn list_cases(State(state): State<AppState>) -> Response {
    list(state, Some(Kind::Case)).await
}

#[utoipa::path(get, path = "/api/v1/petitions", tag = "records", responses((status = 200, description = "Every petition this node holds, as views", body = [Object])), security(("token" = [])))]
async fn list_petitions(State(state): State<AppState>) -> Response {
    list(state, Some(Kind::Petition)).await
}

#[utoipa::path(get, path = "/api/v1/records", tag = "records", responses((status = 200, description = "Every record this node holds, as views", body = [Object])), security(("token" = [])))]
async fn list_all(State(state): State<AppState>) -> Response {
    list(state, None).await
}

async fn create(state: AppState, headers: HeaderMap, kind: Kind, body: Bytes) -> Response {
    let form: NewForm = match json(&body) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let staff = match staff(&headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    respond(
        call(&state, staff, Call::Create { kind, form }).await,
        StatusCode::CREATED,
    )
}

#[utoipa::path(post, path = "/api/v1/cases", tag = "records", request_body = NewForm, params(("X-Guihe-Staff" = Option<String>, Header, description = "Who records it")), responses((status = 201, description = "Taken in; the new id", body = Object), (status = 400, description = "A field is wrong", body = ErrorBody), (status = 403, description = "Not this node's village", body = ErrorBody)), security(("token" = [])))]
async fn create_case(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    create(state, headers, Kind::Case, body).await
}

#[utoipa::path(post, path = "/api/v1/petitions", tag = "records", request_body = NewForm, params(("X-Guihe-Staff" = Option<String>, Header, description = "Who records it")), responses((status = 201, description = "Taken in; the new id", body = Object), (status = 400, description = "A field is wrong", body = ErrorBody), (status = 403, description = "Not this node's village", body = ErrorBody)), security(("token" = [])))]
async fn create_petition(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create(state, headers, Kind::Petition, body).await
}

#[utoipa::path(get, path = "/api/v1/records/{id}", tag = "records", params(("id" = String, Path, description = "case-… or pet-…")), responses((status = 200, description = "The view and the timeline", body = Object), (status = 400, description = "Malformed id", body = ErrorBody), (status = 404, description = "No such record here", body = ErrorBody)), security(("token" = [])))]
async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    respond(call(&state, None, Call::Show { id }).await, StatusCode::OK)
}

#[utoipa::path(post, path = "/api/v1/records/{id}/events", tag = "records", params(("id" = String, Path, description = "case-… or pet-…"), ("X-Guihe-Staff" = Option<String>, Header, description = "Who records it")), request_body(content = Object, description = "The event: {\"type\": \"session\", \"place\": …, \"note\": …}, optional at_ms"), responses((status = 200, description = "Recorded; the record's view", body = Object), (status = 400, description = "A field is wrong", body = ErrorBody), (status = 404, description = "No such record here", body = ErrorBody), (status = 409, description = "The workflow refuses it", body = ErrorBody)), security(("token" = [])))]
async fn append(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let event: serde_json::Value = match json(&body) {
        Ok(e) => e,
        Err(e) => return e.into_response(),
    };
    let staff = match staff(&headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    respond(
        call(&state, staff, Call::Event { id, event }).await,
        StatusCode::OK,
    )
}

/// A staff account to make.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StaffForm {
    name: String,
    #[serde(default)]
    display: String,
    role: String,
    password: String,
}

#[utoipa::path(post, path = "/api/v1/staff", tag = "node", request_body = StaffForm, responses((status = 201, description = "Saved", body = Object), (status = 400, description = "A field is wrong", body = ErrorBody)), security(("token" = [])))]
async fn add_staff(State(state): State<AppState>, body: Bytes) -> Response {
    let form: StaffForm = match json(&body) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    respond(
        call(
            &state,
            None,
            Call::AddStaff {
                name: form.name,
                display: form.display,
                role: form.role,
                password: form.password,
            },
        )
        .await,
        StatusCode::CREATED,
    )
}

#[derive(Debug, Deserialize)]
struct StatsQuery {
    division: Option<String>,
    #[serde(default)]
    period: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TodoQuery {
    #[serde(default)]
    reviewer: bool,
}

#[utoipa::path(get, path = "/api/v1/todo", tag = "records", params(("reviewer" = Option<bool>, Query, description = "The staff member reviews for the township"), ("X-Guihe-Staff" = Option<String>, Header, description = "The staff member whose list it is")), responses((status = 200, description = "What is due from the staff member, most urgent first, each with its record's view", body = [Object])), security(("token" = [])))]
async fn todo(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<TodoQuery>,
) -> Response {
    let staff = match staff(&headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    respond(
        call(
            &state,
            staff,
            Call::Todo {
                reviewer: q.reviewer,
            },
        )
        .await,
        StatusCode::OK,
    )
}

#[utoipa::path(get, path = "/api/v1/stats", tag = "dashboards", params(("division" = Option<String>, Query, description = "County, township or village code inside this node's division")), responses((status = 200, description = "Dashboard figures", body = Object), (status = 400, description = "Malformed code", body = ErrorBody), (status = 403, description = "Outside this node's division", body = ErrorBody)), security(("token" = [])))]
async fn stats(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<StatsQuery>,
) -> Response {
    respond(
        call(
            &state,
            None,
            Call::Stats {
                division: q.division,
                period: q.period,
            },
        )
        .await,
        StatusCode::OK,
    )
}

#[utoipa::path(post, path = "/api/v1/revocations", tag = "node", request_body(content = Object, description = "A county-signed revocation list"), responses((status = 200, description = "Installed; its version", body = Object), (status = 400, description = "Not signed by this county", body = ErrorBody), (status = 409, description = "A newer list is held", body = ErrorBody)), security(("token" = [])))]
async fn revocations(State(state): State<AppState>, body: Bytes) -> Response {
    let list = match json(&body) {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    respond(
        call(&state, None, Call::Revocations { list }).await,
        StatusCode::OK,
    )
}

#[utoipa::path(post, path = "/api/v1/frontier", tag = "node", request_body(content = Object, description = "A county-signed frontier of revoked keys"), responses((status = 200, description = "Installed; its version", body = Object), (status = 400, description = "Not signed by this county", body = ErrorBody), (status = 409, description = "A newer frontier is held", body = ErrorBody)), security(("token" = [])))]
async fn frontier(State(state): State<AppState>, body: Bytes) -> Response {
    let frontier = match json(&body) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    respond(
        call(&state, None, Call::Frontier { frontier }).await,
        StatusCode::OK,
    )
}

#[utoipa::path(post, path = "/api/v1/settings", tag = "node", request_body(content = Object, description = "County-signed settings: the newest record schema nodes may write"), responses((status = 200, description = "Installed; their version", body = Object), (status = 400, description = "Not signed by this county", body = ErrorBody), (status = 409, description = "Settings as new or newer are held", body = ErrorBody)), security(("token" = [])))]
async fn settings(State(state): State<AppState>, body: Bytes) -> Response {
    let settings = match json(&body) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    respond(
        call(&state, None, Call::Settings { settings }).await,
        StatusCode::OK,
    )
}

#[utoipa::path(post, path = "/api/v1/clock/accept", tag = "node", responses((status = 200, description = "The node writes again from now on", body = Object)), security(("token" = [])))]
async fn accept_clock(State(state): State<AppState>) -> Response {
    respond(call(&state, None, Call::AcceptClock).await, StatusCode::OK)
}

/// What `POST /api/v1/frontier/compute` takes.
#[derive(Debug, serde::Deserialize)]
struct FrontierOf {
    nodes: Vec<guihe_protocol::id::NodeId>,
    version: u64,
}

#[utoipa::path(post, path = "/api/v1/frontier/compute", tag = "node", request_body(content = Object, description = "The revoked keys (hex) and the version to give the frontier"), responses((status = 200, description = "The frontier of those keys in this node's store, to be signed with the county key", body = Object)), security(("token" = [])))]
async fn frontier_of(State(state): State<AppState>, body: Bytes) -> Response {
    let f: FrontierOf = match json(&body) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    respond(
        call(
            &state,
            None,
            Call::FrontierOf {
                nodes: f.nodes,
                version: f.version,
            },
        )
        .await,
        StatusCode::OK,
    )
}

#[utoipa::path(get, path = "/api/v1/status", tag = "node", responses((status = 200, description = "The node, its peers and data freshness", body = StatusReport)), security(("token" = [])))]
async fn status(State(state): State<AppState>) -> Response {
    if let Some(e) = state.failed.error(false) {
        return e.into_response();
    }
    let (reply, rx) = oneshot::channel();
    if state
        .core
        .send_timeout(Request::Status { reply }, CALL_TIMEOUT)
        .await
        .is_err()
    {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the node is stopping",
        );
    }
    match tokio::time::timeout(CALL_TIMEOUT, rx).await {
        Ok(Ok(report)) => axum::Json(report).into_response(),
        _ => error(StatusCode::SERVICE_UNAVAILABLE, "busy", "the node is busy"),
    }
}

#[utoipa::path(get, path = "/metrics", tag = "node", responses((status = 200, description = "Prometheus text format")))]
async fn serve_metrics(State(state): State<AppState>) -> Response {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string());
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
