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
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented
)]

mod capacity;
mod refusals;
mod server;
mod session;
mod workers;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: tesserad [--config PATH] [--socket PATH] | tesserad --stdio [--config PATH]";

/// What the command line asked for.
struct Args {
    config: PathBuf,
    socket: PathBuf,
    stdio: bool,
}

fn parse_args(mut it: impl Iterator<Item = std::ffi::OsString>) -> Result<Option<Args>, String> {
    let mut a = Args {
        config: PathBuf::from(tessera_engine::config::DEFAULT_PATH),
        socket: PathBuf::from(server::DEFAULT_SOCKET),
        stdio: false,
    };
    while let Some(arg) = it.next() {
        match arg.to_str() {
            Some("--config") => a.config = it.next().ok_or("--config needs a path")?.into(),
            Some("--socket") => a.socket = it.next().ok_or("--socket needs a path")?.into(),
            Some("--stdio") => a.stdio = true,
            Some("--version") => {
                println!("tesserad {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            Some("--help" | "-h") => {
                println!("{USAGE}");
                return Ok(None);
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(Some(a))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args_os().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tesserad: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = if args.stdio {
        server::stdio(&args.config)
    } else {
        server::listen(&args.config, &args.socket)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tesserad: {e}");
            ExitCode::FAILURE
        }
    }
}
