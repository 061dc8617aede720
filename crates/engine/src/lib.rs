//! tessera's engine: the authentication decision and everything it stands on, with no PAM and
//! no terminal in it. `tesserad` (which the thin PAM module asks) and the `tessera` command are
//! its two users.
//!
//! Layers, from the outside in: [`login`] (a login's decision: the policy rules, the local
//! engine, the remote servers) over [`auth`] (the words of a decision: `Conversation`, `Clock`,
//! `Login`, `Verdict`) and [`enroll`], over [`store`] (SQLite), [`tokens`] (one module per token
//! type), [`delivery`] (e-mail and SMS) and [`config`]. docs/architecture.md draws the rooms.
// The only `unsafe` of tessera is the PAM module's FFI (`src/ffi/`); system calls go through nix.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod accounts;
pub mod auth;
pub mod calendar;
pub mod config;
pub mod crypto;
pub mod delivery;
pub mod enroll;
pub mod error;
pub mod http;
pub mod login;
pub mod os;
pub mod pin_rule;
pub mod store;
pub mod syslog;
/// Test doubles (a fixed clock, a scripted conversation): built for the engine's own tests and,
/// through the `testing` feature, for the benches and the workspace's tests, never into the
/// binaries.
#[cfg(any(test, feature = "testing"))]
pub use auth::testing;
mod text_list;
pub mod tokens;
