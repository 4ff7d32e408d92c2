//! The web app: the village workers' pages and the township and county dashboards, in
//! Chinese with an English switch, served by the node itself.
//!
//! Pages are rendered on the server (maud) with no script and nothing loaded from
//! outside, so they work on an old PC with no internet. Charts are SVG drawn by plotters.
//! Staff sign in with a local account (argon2 hash); the session is a random token in an
//! HttpOnly, SameSite=Strict cookie, and every form carries the session's CSRF token.
//! Restricted records (a minor among the parties, or restricted by hand) are shown only
//! to their handlers, and left out by name everywhere else.
//!
//! The pages live one idea per module: sign-in (`session`), the frame (`layout`), lists,
//! intake, the record page, the sync page, the dashboard and export.

// A handler's early exit is the page it answers with; boxing it would only add a step.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use guihe_protocol::model::{Category, Channel, Kind, Risk};
use guihe_protocol::view::View;
use guihe_protocol::workflow::Status;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use crate::accounts::StaffRole;
use crate::api::{Call, MatterForm, NewForm, PartyForm, Reply};
use crate::app::{AppState, SESSION_TTL, WebSession, call, status_report};
use crate::local::now_ms;

mod dashboard;
mod export;
mod intake;
mod layout;
mod lists;
mod print;
mod reassign;
mod record;
mod session;
mod sync;
mod todo;

use dashboard::*;
use export::*;
use intake::*;
use layout::*;
use lists::*;
use print::*;
use reassign::*;
use record::*;
use session::*;
use sync::*;
use todo::*;

/// The web routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/todo") }))
        .route("/todo", get(todo_page))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/lang/{lang}", get(set_lang))
        .route("/cases", get(cases))
        .route("/petitions", get(petitions))
        .route("/search", get(search))
        .route("/review", get(review))
        .route("/new", get(new_form).post(new_record))
        .route("/records/{id}", get(record_page))
        .route("/records/{id}/events", post(add_event))
        .route("/records/{id}/print/{paper}", get(print_paper))
        .route("/reassign", get(reassign_form).post(reassign))
        .route("/sync", get(sync_page))
        .route("/dashboard", get(dashboard))
        .route("/export.csv", get(export_csv))
        .route("/export.xlsx", get(export_xlsx))
}
