//! `tesserad`'s command line: arguments, a clean start, then the socket server or one login
//! over stdin/stdout (see the library, `src/lib.rs`).
// The only `unsafe` of tessera is the PAM module's FFI (`src/ffi/`); system calls go through nix.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented
)]

use tesserad::server;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: tesserad [--config PATH] [--socket PATH] [--log-file PATH]
       tesserad --stdio [--config PATH] [--log-file PATH]
       tesserad --check-config [--config PATH]
  --config PATH    the config (default /etc/tessera/tessera.toml)
  --socket PATH    the socket to bind when systemd passes none (default /run/tessera/tessera.sock)
  --log-file PATH  append the daemon's lines to PATH, each with its time, instead of stderr
                   (for hosts without systemd: opened once as root; rotate it with copytruncate)
  --stdio          serve one login on stdin/stdout (the module spawns this)
  --check-config   say whether the config loads (before a reload), then exit
See tesserad(8).";

/// What the command line asked for.
struct Args {
    config: PathBuf,
    socket: PathBuf,
    stdio: bool,
    /// Only say whether the config loads (before a reload).
    check_config: bool,
    /// Where the daemon's lines go instead of stderr (a host without systemd).
    log_file: Option<PathBuf>,
}

fn parse_args(mut it: impl Iterator<Item = std::ffi::OsString>) -> Result<Option<Args>, String> {
    let mut a = Args {
        config: PathBuf::from(tessera_engine::config::DEFAULT_PATH),
        socket: PathBuf::from(server::DEFAULT_SOCKET),
        stdio: false,
        check_config: false,
        log_file: None,
    };
    while let Some(arg) = it.next() {
        match arg.to_str() {
            Some("--config") => a.config = it.next().ok_or("--config needs a path")?.into(),
            Some("--socket") => a.socket = it.next().ok_or("--socket needs a path")?.into(),
            Some("--log-file") => {
                a.log_file = Some(it.next().ok_or("--log-file needs a path")?.into())
            }
            Some("--stdio") => a.stdio = true,
            Some("--check-config") => a.check_config = true,
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

/// Undoes what a spawning parent leaves to this process, before anything else runs. The module
/// spawns `tesserad --stdio` with std's `Command`, which passes on the caller's umask, the
/// signals it ignores or blocks (both survive exec) and its descriptors that lack
/// FD_CLOEXEC: an sshd's or sudo's, opened for anything. The socket server gets the same
/// (whoever starts it by hand), but keeps the sockets systemd passed.
fn clean_start(stdio: bool) {
    use tessera_engine::os::sys;
    // First: the descriptors are closed by number, so nothing of ours may be open yet (the
    // signal thread below has a socket pair of its own).
    if let Some(first) = first_fd_to_close(stdio, |k| std::env::var(k).ok()) {
        sys::close_fds_from(first);
    }
    // What tesserad creates is its owner's alone. (The socket is made 0666 on purpose after
    // `bind`; SQLite gives the -wal and -shm the store's own mode.)
    sys::set_umask(0o077);
    // SIGPIPE stays ignored: the standard library ignores it before `main` on purpose, and
    // tesserad writes to sockets whose peer may be gone, where a write must fail with EPIPE
    // instead of killing the daemon (and every login it serves). The socket server handles
    // SIGHUP itself (a reload), so its default (the end) is not put back there.
    // Unblocked first: the signal thread starts with this thread's mask.
    // (Fails only for an invalid argument, which this is not.)
    let _ = sys::unblock_all_signals();
    use sys::{SIGHUP, SIGPIPE};
    let keep: &[i32] = if stdio {
        &[SIGPIPE]
    } else {
        &[SIGPIPE, SIGHUP]
    };
    sys::undo_ignored_signals(keep);
}

/// From which descriptor on the inherited ones are closed: all but stdin, stdout and stderr
/// (`--stdio` passes nothing else), except the sockets systemd passed by socket activation
/// (`LISTEN_FDS` from fd 3, when `LISTEN_PID` is this process). `None`: closes nothing
/// (`LISTEN_FDS` for this process that is not a number).
fn first_fd_to_close(stdio: bool, env: impl Fn(&str) -> Option<String>) -> Option<u32> {
    const FIRST: u32 = 3; // SD_LISTEN_FDS_START
    if stdio {
        return Some(FIRST);
    }
    let ours =
        env("LISTEN_PID").and_then(|p| p.trim().parse::<u32>().ok()) == Some(std::process::id());
    if !ours {
        return Some(FIRST);
    }
    let passed: u32 = env("LISTEN_FDS")?.trim().parse().ok()?;
    FIRST.checked_add(passed)
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
    if args.check_config {
        // As the daemon would load it on SIGHUP: the file's checks, every key and value.
        return match tessera_engine::config::Config::load(&args.config) {
            Ok(_) => {
                println!("tesserad: {}: the config loads", args.config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tesserad: {e}");
                ExitCode::FAILURE
            }
        };
    }
    clean_start(args.stdio);
    // Opened after the inherited descriptors are closed (it becomes descriptor 2) and before
    // the server becomes the store's owner: the file may be root's.
    if let Some(path) = &args.log_file {
        if let Err(e) = tesserad::log::to_file(path) {
            eprintln!("tesserad: {e}");
            return ExitCode::FAILURE;
        }
    }
    let result = if args.stdio {
        server::stdio(&args.config)
    } else {
        server::listen(&args.config, &args.socket)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tesserad::say!("tesserad: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::first_fd_to_close;

    #[test]
    fn only_the_sockets_passed_to_this_process_are_kept() {
        let me = std::process::id().to_string();
        let env = |pid: &str, fds: &str| {
            let (pid, fds) = (pid.to_string(), fds.to_string());
            move |k: &str| match k {
                "LISTEN_PID" => Some(pid.clone()),
                "LISTEN_FDS" => Some(fds.clone()),
                _ => None,
            }
        };
        assert_eq!(first_fd_to_close(true, env(&me, "1")), Some(3), "--stdio");
        assert_eq!(first_fd_to_close(false, |_| None), Some(3));
        assert_eq!(first_fd_to_close(false, env(&me, "1")), Some(4));
        assert_eq!(first_fd_to_close(false, env(&me, "2")), Some(5));
        assert_eq!(first_fd_to_close(false, env("1", "1")), Some(3), "not ours");
        assert_eq!(first_fd_to_close(false, env(&me, "x")), None);
    }
}
