//! Asking the running daemon over its socket: `tessera doctor` (its status) and `tessera
//! metrics` (its counters). Both are for root and the daemon's user; the daemon refuses others.

use crate::{CliResult, Failure};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;
use tessera_engine::error::Error;
use tessera_proto::{read_frame, Reply, Request, Verdict};

/// Where the package's tesserad.socket listens (the module's default `socket=`).
pub const DAEMON_SOCKET: &str = "/run/tessera/tessera.sock";

/// How long the daemon may take to answer (it answers from memory and one store open).
const WAIT: Duration = Duration::from_secs(5);

/// Sends `request` and reads the daemon's info lines and whether its verdict was success. A
/// refusal (a log line instead) or a broken answer is `Err` with the reason.
pub fn ask(conn: &mut UnixStream, request: &Request) -> Result<(Vec<String>, bool), String> {
    conn.set_read_timeout(Some(WAIT))
        .map_err(|e| e.to_string())?;
    conn.set_write_timeout(Some(WAIT))
        .map_err(|e| e.to_string())?;
    conn.write_all(&request.encode())
        .map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    loop {
        let body = read_frame(conn).map_err(|e| e.to_string())?;
        match Reply::decode(&body).map_err(|e| e.to_string())? {
            Reply::Info(l) => lines.push(l),
            Reply::Log { line, .. } => return Err(line),
            Reply::Verdict(v) => return Ok((lines, v == Verdict::Success)),
            _ => return Err("an unexpected reply".into()),
        }
    }
}

/// `tessera metrics`: the daemon's counters, as it sends them, on stdout.
pub fn metrics(config: &Path, socket: &Path) -> CliResult<()> {
    let fail = |why: String| Failure::Error(Error::invalid(why));
    let mut conn = UnixStream::connect(socket).map_err(|e| {
        fail(format!(
            "no tesserad on {} ({e}): start it with `{}`",
            socket.display(),
            crate::initsys::InitSystem::of_this_host().start(config, socket)
        ))
    })?;
    let (lines, ok) = ask(&mut conn, &Request::Metrics)
        .map_err(|why| fail(format!("tesserad on {}: {why}", socket.display())))?;
    if !ok || lines.last().map(String::as_str) != Some("# EOF") {
        return Err(fail(format!(
            "tesserad on {} sent no whole metrics (an older version?)",
            socket.display()
        )));
    }
    let mut out = std::io::stdout().lock();
    for l in &lines {
        writeln!(out, "{l}").map_err(crate::output::stdout_failed)?;
    }
    out.flush().map_err(crate::output::stdout_failed)
}

/// How long the daemon may take between two messages of an enrollment (a login with the token
/// the user has first, an e-mail sent for it).
const DIALOGUE_WAIT: Duration = Duration::from_secs(120);

/// `tessera enroll`: the user's own enrollment, through the daemon, which knows the user by the
/// connection (SO_PEERCRED), not by anything said here. The daemon's prompts are answered on
/// the terminal (hidden where it asks: the PIN), its information lines (the URI, the QR code)
/// go to stdout. Exit 0 once the token is saved.
pub fn enroll(socket: &Path, kind: Option<&str>, light: bool) -> CliResult<()> {
    use tessera_engine::auth::Conversation;
    let fail = |why: String| Failure::Error(Error::invalid(why));
    let mut conn = UnixStream::connect(socket).map_err(|e| {
        fail(format!(
            "no tesserad on {} ({e}): enrollment goes through the tessera service; ask your \
             administrator to start it",
            socket.display()
        ))
    })?;
    let io = |e: std::io::Error| fail(format!("tesserad on {}: {e}", socket.display()));
    conn.set_read_timeout(Some(DIALOGUE_WAIT)).map_err(io)?;
    conn.set_write_timeout(Some(WAIT)).map_err(io)?;
    let asked = tessera_proto::EnrollRequest {
        kind: kind.map(str::to_string),
        light,
    };
    conn.write_all(&Request::Enroll(asked).encode())
        .map_err(io)?;
    let mut term = crate::input::Terminal {
        info_on_stdout: true,
    };
    let broken = |e: tessera_proto::ProtoError| {
        fail(format!(
            "tesserad on {} broke off the enrollment: {e}",
            socket.display()
        ))
    };
    loop {
        let body = read_frame(&mut conn).map_err(broken)?;
        match Reply::decode(&body).map_err(broken)? {
            Reply::Prompt { echo, text } => {
                // No answer (end of input, a closed terminal) is a NULL answer: the daemon
                // gives the enrollment up and saves nothing.
                let answer = term.prompt(&text, echo).ok().flatten();
                conn.write_all(&Request::Answer(answer).encode())
                    .map_err(io)?;
            }
            Reply::Info(line) => {
                term.info(&line).map_err(|e| fail(format!("stdout: {e}")))?;
            }
            Reply::Error(line) => {
                let _ = term.error(&format!("tessera: {line}"));
            }
            Reply::Wait(_) | Reply::Log { .. } => {}
            Reply::Busy => {
                return Err(fail(
                    "tesserad is busy with other logins: try again in a moment".into(),
                ))
            }
            Reply::Verdict(Verdict::Success) => return Ok(()),
            Reply::Verdict(_) => return Err(Failure::Reported),
        }
    }
}
