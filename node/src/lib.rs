//! The guihe node: the program each mediation office runs. The library holds its parts
//! (the sled store, the demo, and in time the network and the HTTP server); `main.rs` is the
//! command line.

#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod accounts;
pub mod api;
mod app;
pub mod bundle;
pub mod cli;
pub mod client;
pub mod config;
mod core;
pub mod demo;
pub mod http;
pub mod keys;
pub mod local;
pub mod metrics;
pub mod net;
pub mod store;
mod stream;
pub mod threads;
pub mod views;
pub mod web;
pub mod words;
