//! The module's side of a login: reach tesserad (its socket, or for a root caller without one a
//! child `tesserad --stdio` on a socketpair), send the login, carry the conversation, return the
//! verdict. Every wait is bounded: a dead, hung or garbage-talking daemon gives
//! PAM_AUTHINFO_UNAVAIL with one log line, never a hang of the caller.

use crate::args::ModuleArgs;
use crate::conv::PamConversation;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tessera_proto::{
    write_frame, FrameReader, Login, Reply, Request, Verdict, MAX_ANSWER, MAX_FIELD,
    MAX_REPLY_FRAME,
};
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
    let first = connect(args);
    match first.and_then(|c| run(c, args, login, conv, log)) {
        Ok(Ended::Verdict(v)) => v,
        // The daemon takes no more logins. Root's are never refused for that: a root caller
        // (sshd, sudo, su, login) serves this one with a daemon of its own.
        Ok(Ended::Busy) if crate::ffi::euid() == 0 => {
            match spawn(args).and_then(|c| run(c, args, login, conv, log)) {
                Ok(Ended::Verdict(v)) => v,
                Ok(Ended::Busy) => unavailable(log, "tesserad --stdio said it was full".into()),
                Err(why) => unavailable(log, format!("tesserad is full, and {why}")),
            }
        }
        Ok(Ended::Busy) => unavailable(
            log,
            "tesserad serves as many logins of this user (or of all users but root) as it \
             takes; try again"
                .into(),
        ),
        Err(why) => unavailable(log, why),
    }
}

fn unavailable(log: &mut LogFn<'_>, why: String) -> Verdict {
    log(LOG_ERR, &why);
    Verdict::AuthinfoUnavail
}

/// How a dialogue ended.
enum Ended {
    Verdict(Verdict),
    /// The daemon was full and read nothing.
    Busy,
}

/// One dialogue on a connection (the socket, or a child's socketpair), and the child's end.
fn run(
    (mut sock, child): (UnixStream, Option<Child>),
    args: &ModuleArgs,
    login: &Login,
    conv: &mut PamConversation<'_>,
    log: &mut LogFn<'_>,
) -> Result<Ended, String> {
    let ended = dialogue(&mut sock, args.timeout, login, conv, log)
        .map_err(|why| format!("tesserad: {why}"));
    drop(sock);
    if let Some(child) = child {
        reap(child, args.timeout);
    }
    ended
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
) -> Result<Ended, String> {
    let _ = sock.set_write_timeout(Some(timeout));
    // A full daemon may have closed before the login was written: what it said first (Busy)
    // is read before a failed write is reported.
    let unsent = write_frame(
        &mut NoSigPipe(sock),
        &Request::Authenticate(login.clone()).encode(),
    )
    .err()
    .map(|e| format!("sending the login: {e}"));
    let mut wait = timeout;
    let mut timeout_set = None;
    let mut frames = FrameReader::new(MAX_REPLY_FRAME);
    let mut prompted = false;
    loop {
        if timeout_set != Some(wait) {
            sock.set_read_timeout(Some(wait))
                .map_err(|e| e.to_string())?;
            timeout_set = Some(wait);
        }
        let body = match frames.read(sock) {
            Ok(b) => b,
            Err(e) => return Err(unsent.unwrap_or_else(|| read_failed(e, wait))),
        };
        wait = timeout;
        let reply = Reply::decode(&body).map_err(|e| e.to_string())?;
        if let (Some(why), false) = (&unsent, reply == Reply::Busy) {
            return Err(why.clone());
        }
        match reply {
            Reply::Busy if !prompted => return Ok(Ended::Busy),
            Reply::Busy => return Err("a daemon that was busy after it had prompted".into()),
            Reply::Prompt { echo, text } => {
                prompted = true;
                let answer = match conv.prompt(&text, echo) {
                    Ok(Some(mut a)) => {
                        // The engine refuses passes over 1 KiB anyway; this bounds the frame.
                        a.truncate(MAX_ANSWER);
                        Request::Answer(Some(a))
                    }
                    Ok(None) => Request::Answer(None),
                    Err(code) => Request::ConversationFailed(code),
                };
                write_frame(&mut NoSigPipe(sock), &answer.encode())
                    .map_err(|e| format!("sending an answer: {e}"))?;
            }
            Reply::Info(t) => conv.info(&t),
            Reply::Error(t) => conv.error(&t),
            Reply::Wait(s) => wait = timeout.max(Duration::from_secs(u64::from(s))),
            Reply::Log { priority, line } => log(priority, &line),
            Reply::Verdict(v) => return Ok(Ended::Verdict(v)),
        }
    }
}

/// What a failed read of the daemon's next frame says.
fn read_failed(e: tessera_proto::ProtoError, wait: Duration) -> String {
    match e {
        tessera_proto::ProtoError::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            format!("no answer within {} s", wait.as_secs())
        }
        other => other.to_string(),
    }
}

/// Writes to the socket without SIGPIPE: a daemon that closed its end must give an error
/// here, not a signal that ends the calling service (sshd, a screen locker) unless it
/// happens to ignore it.
struct NoSigPipe<'s>(&'s UnixStream);

impl std::io::Write for NoSigPipe<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::ffi::send_nosignal(self.0, buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `s` cut to `max` bytes.
fn capped(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The user name as sent: a name longer than any account's is cut, and marked with a newline
/// so that what is left can't be another account's name (the daemon treats a name with a
/// control character as an unknown user, prompted and refused like any).
fn user_field(mut user: Vec<u8>) -> Vec<u8> {
    if user.len() > MAX_FIELD {
        user.truncate(MAX_FIELD - 1);
        user.push(b'\n');
    }
    user
}

/// The PAM items the daemon is told of, as the application set them ("" when it set none).
pub struct Items {
    pub service: String,
    pub rhost: String,
    pub tty: String,
    pub ruser: String,
}

/// The login as the daemon needs it.
pub fn login(
    args: &ModuleArgs,
    items: Items,
    user: Vec<u8>,
    authtok: Option<Zeroizing<Vec<u8>>>,
    silent: bool,
) -> Login {
    let Items {
        service,
        rhost,
        tty,
        ruser,
    } = items;
    let mut flags = args.flags.clone();
    flags.silent = silent;
    // Every field is bounded, so that the login fits the daemon's first frame whatever the
    // application set (a 10 MB PAM_RHOST must not make the daemon refuse the login unread).
    Login {
        version: tessera_proto::VERSION,
        service: capped(service, MAX_FIELD),
        rhost: capped(rhost, MAX_FIELD),
        user: user_field(user),
        authtok: authtok.map(|mut t| {
            t.truncate(MAX_ANSWER);
            t
        }),
        flags,
        tty: capped(tty, MAX_FIELD),
        ruser: capped(ruser, MAX_FIELD),
        prompt: args.prompt.clone().map(|p| capped(p, MAX_FIELD)),
        config: args
            .config
            .as_ref()
            .map(|p| capped(p.to_string_lossy().into_owned(), MAX_FIELD)),
    }
}
