//! `tesserad`: the one host of tessera's engine. It serves `pam_tessera.so` over a Unix stream
//! socket, one connection per `pam_authenticate`, or one login over stdin/stdout (`--stdio`)
//! when the module spawns it because no socket answers.
//!
//! Started by systemd's `tesserad.socket`, it serves the socket passed to it (socket
//! activation: fd 3 with `LISTEN_PID`/`LISTEN_FDS`) instead of binding `--socket`.
//!
//! It reads nothing from its callers: no environment (it has its own), no config path from a
//! caller of the system socket. It checks who asks (SO_PEERCRED): root for any user, anyone
//! else only for its own account.
//!
//! The daemon is this library and a small `main` (arguments, a clean start): the benches in
//! `benches/` drive [`session::serve`] as the socket server does.
// The only `unsafe` of tessera is the PAM module's FFI (`src/ffi/`); system calls go through nix.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented
)]

pub mod acceptors;
pub mod caller;
pub mod capacity;
mod link;
pub mod log;
mod login;
pub mod metrics;
pub mod refusals;
mod reports;
mod self_enroll;
pub mod server;
pub mod session;
