//! tessera's engine: the authentication decision and everything it stands on, with no PAM and
//! no terminal in it. `tesserad` (which the thin PAM module asks) and the `tessera` command are
//! its two users.
//!
//! Layers, from the outside in: [`engine`] (every decision, generic over a conversation, a
//! clock and a store) → [`store`] (SQLite), [`tokens`] (one module per token type), [`remote`]
//! (the validate client) and [`delivery`] (e-mail and SMS).
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
pub mod fsperm;
pub mod login;
/// The entry of a login under its older name (the daemon, the command and the tests use it).
pub use login as host;
pub use login::remote;
pub mod http;
pub mod io_time;
pub mod pin_rule;
pub mod store;
pub mod sys;
pub mod syslog;
/// Test doubles (a fixed clock, a scripted conversation): built for the engine's own tests and,
/// through the `testing` feature, for the benches and the workspace's tests, never into the
/// binaries.
#[cfg(any(test, feature = "testing"))]
pub use auth::testing;
mod text_list;
pub mod tokens;
pub mod userfile;
pub mod watch;
