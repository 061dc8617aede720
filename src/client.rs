//! The module's side of a login: reach tesserad (its socket, or for a root caller without one a
//! child `tesserad --stdio` on a socketpair), send the login, carry the conversation, return the
//! verdict. Every wait is bounded: a dead, hung or garbage-talking daemon gives
//! PAM_AUTHINFO_UNAVAIL with one log line, never a hang of the caller.

use crate::args::ModuleArgs;
use crate::conv::PamConversation;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tessera_proto::{write_frame, FrameReader, Login, Reply, Request, Verdict, MAX_ANSWER};
use zeroize::Zeroizing;

/// syslog priorities of the module's own lines.
pub const LOG_ERR: u8 = 3;

/// A line for syslog: (priority, text).
pub type LogFn<'a> = dyn FnMut(u8, &str) + 'a;

/// Runs one login against the daemon.
pub fn authenticate(
    args: &ModuleArgs,
    login: &Login,
    conv: &mut PamConversation<'_>,
    log: &mut LogFn<'_>,
) -> Verdict {
    let (mut sock, child) = match connect(args) {
        Ok(c) => c,
        Err(why) => {
            log(LOG_ERR, &why);
            return Verdict::AuthinfoUnavail;
        }
    };
    let verdict = match dialogue(&mut sock, args.timeout, login, conv, log) {
        Ok(v) => v,
        Err(why) => {
            log(LOG_ERR, &format!("tesserad: {why}"));
            Verdict::AuthinfoUnavail
        }
    };
    drop(sock);
    if let Some(child) = child {
        reap(child, args.timeout);
    }
    verdict
}

/// The daemon's socket, or a child daemon for this login.
fn connect(args: &ModuleArgs) -> Result<(UnixStream, Option<Child>), String> {
    match UnixStream::connect(&args.socket) {
        Ok(s) => Ok((s, None)),
        Err(e) if crate::ffi::euid() == 0 => spawn(args).map_err(|s| {
            format!(
                "no tesserad at {} ({e}), and {} could not be started: {s}",
                args.socket.display(),
                args.daemon.display()
            )
        }),
        Err(e) => Err(format!(
            "no tesserad at {} ({e}): start it (systemctl enable --now tesserad.socket); \
             without it only root callers can authenticate",
            args.socket.display()
        )),
    }
}

/// `tesserad --stdio` on one end of a socketpair, with an empty environment: nothing of the
/// caller's reaches the engine. The child becomes the store's owner before it opens anything.
fn spawn(args: &ModuleArgs) -> Result<(UnixStream, Option<Child>), String> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
    let theirs_out = theirs.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&args.daemon);
    cmd.arg("--stdio");
    if let Some(c) = &args.config {
        cmd.arg("--config").arg(c);
    }
    let child = cmd
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs_out)))
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    Ok((ours, Some(child)))
}

/// Waits for a spawned daemon to end (it does once the socket closes), killing it after
/// `timeout`. A host that ignores SIGCHLD has reaped it already (ECHILD): nothing to do.
fn reap(mut child: Child, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
        }
    }
}

/// The dialogue: the daemon leads, the module asks the conversation and answers.
fn dialogue(
    sock: &mut UnixStream,
    timeout: Duration,
    login: &Login,
    conv: &mut PamConversation<'_>,
    log: &mut LogFn<'_>,
) -> Result<Verdict, String> {
    let _ = sock.set_write_timeout(Some(timeout));
    write_frame(sock, &Request::Authenticate(login.clone()).encode())
        .map_err(|e| format!("sending the login: {e}"))?;
    let mut wait = timeout;
    let mut timeout_set = None;
    let mut frames = FrameReader::new();
    loop {
        if timeout_set != Some(wait) {
            sock.set_read_timeout(Some(wait))
                .map_err(|e| e.to_string())?;
            timeout_set = Some(wait);
        }
        let body = frames.read(sock).map_err(|e| match e {
            tessera_proto::ProtoError::Io(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                format!("no answer within {} s", wait.as_secs())
            }
            other => other.to_string(),
        })?;
        wait = timeout;
        match Reply::decode(&body).map_err(|e| e.to_string())? {
            Reply::Prompt { echo, text } => {
                let answer = match conv.prompt(&text, echo) {
                    Ok(Some(mut a)) => {
                        // The engine refuses passes over 1 KiB anyway; this bounds the frame.
                        a.truncate(MAX_ANSWER);
                        Request::Answer(Some(a))
                    }
                    Ok(None) => Request::Answer(None),
                    Err(code) => Request::ConversationFailed(code),
                };
                write_frame(sock, &answer.encode())
                    .map_err(|e| format!("sending an answer: {e}"))?;
            }
            Reply::Info(t) => conv.info(&t),
            Reply::Error(t) => conv.error(&t),
            Reply::Wait(s) => wait = timeout.max(Duration::from_secs(u64::from(s))),
            Reply::Log { priority, line } => log(priority, &line),
            Reply::Verdict(v) => return Ok(v),
        }
    }
}

/// The login as the daemon needs it.
pub fn login(
    args: &ModuleArgs,
    service: String,
    rhost: String,
    tty: String,
    user: Vec<u8>,
    authtok: Option<Zeroizing<Vec<u8>>>,
    silent: bool,
) -> Login {
    let mut flags = args.flags.clone();
    flags.silent = silent;
    Login {
        version: tessera_proto::VERSION,
        service,
        rhost,
        user,
        authtok,
        flags,
        tty,
        prompt: args.prompt.clone(),
        config: args
            .config
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
    }
}
