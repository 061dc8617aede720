//! One login on one connection: read the login, check who may ask for it, run the engine with
//! the conversation carried over the socket, send the log lines and the verdict.

use crate::capacity::Load;
use crate::metrics::{LoginResult, Metrics, Now};
use crate::refusals::{Refusals, RowUpdate};
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use tessera_engine::config::Config;
use tessera_engine::crypto::{secret, Secret};
use tessera_engine::engine::{self, Conversation, Login, Options, SystemClock, Verdict};
use tessera_engine::error::Error;
use tessera_engine::host::{self, Resources};
use tessera_engine::remote::breaker::ServerHealth;
use tessera_engine::store::{AuditEntry, Store};
use tessera_proto::{self as proto, write_frame, FrameReader, Reply, Request};

/// How long a client may take to send its whole login after connecting (not per read: a
/// client that trickles a byte at a time is cut off all the same).
pub const FIRST_FRAME_DEADLINE: Duration = Duration::from_secs(5);
/// How long a root caller's user may take to answer one prompt (typing a PIN, finding the
/// phone).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);
/// How long any other caller's user may: a screen locker's user is at the screen, and a
/// caller that leaves its prompt open must not hold a place of the daemon for long.
pub const NON_ROOT_ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one frame may take to be written (a client that stopped reading).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection: a Unix socket, or stdin/stdout under `--stdio`. Timeouts are set through
/// `set_read_timeout`, which stdin can't do: there the module's own deadline ends the child.
pub trait Channel: Read + Write {
    fn set_read_timeout(&self, t: Duration);
}

impl Channel for std::os::unix::net::UnixStream {
    fn set_read_timeout(&self, t: Duration) {
        let _ = std::os::unix::net::UnixStream::set_read_timeout(self, Some(t));
    }
}

/// What the daemon knows of the caller.
pub struct Caller {
    /// The peer's uid (SO_PEERCRED), or this process's real uid for a pipe.
    pub uid: u32,
    /// `config=` of the PAM line is honoured: for a child the module spawned for this login,
    /// and for root callers of the socket.
    pub may_choose_config: bool,
    /// The socket server's load, for a status or metrics request (root or the daemon's user).
    pub load: Option<Load>,
}

/// What the sessions of one daemon count together.
#[derive(Default)]
pub struct Counters {
    /// Requests for other accounts (the audit rows they take).
    pub refusals: Refusals,
    /// `tessera metrics`.
    pub metrics: Metrics,
}

impl Caller {
    /// The longest wait for one answer.
    fn answer_wait(&self) -> Duration {
        if self.uid == 0 {
            ANSWER_TIMEOUT
        } else {
            NON_ROOT_ANSWER_TIMEOUT
        }
    }
}

/// Serves one login. `config` is the daemon's config (or the error loading it gave).
/// `res` keeps the store and the servers' connections (the socket) or opens them for this login
/// (`--stdio`).
/// `counters` are the daemon's (or this login's alone, under `--stdio`).
pub fn serve<C: Channel, R: Resources>(
    chan: &mut C,
    caller: &Caller,
    config: std::result::Result<&Config, &str>,
    res: &R,
    counters: &Counters,
) -> std::result::Result<(), proto::ProtoError> {
    let started = Instant::now();
    let mut link = Link::new(chan);
    let body = link.recv(
        Instant::now() + FIRST_FRAME_DEADLINE,
        proto::MAX_LOGIN_FRAME,
    )?;
    let chan = &mut link;
    let login = match Request::decode(&body) {
        Ok(Request::Authenticate(l)) => l,
        Err(proto::ProtoError::Version(v)) => {
            return refuse(
                chan,
                &format!(
                    "the module speaks protocol {v}, this tesserad {}: install matching versions",
                    proto::VERSION
                ),
            )
        }
        Ok(Request::Status) => return status(chan, caller, config, res),
        Ok(Request::Metrics) => return metrics(chan, caller, config, res, &counters.metrics),
        Ok(_) => return refuse(chan, "the first message was not a login"),
        Err(e) => return refuse(chan, &format!("a bad first message: {e}")),
    };
    let count = |result, events: &[AuditEntry]| {
        let took = started.elapsed();
        counters.metrics.login(&login.service, result, took, events);
    };
    let own;
    let cfg = match (&login.config, caller.may_choose_config) {
        (Some(path), true) => match Config::load(std::path::Path::new(path)) {
            Ok(c) => {
                own = c;
                &own
            }
            Err(e) => {
                count(LoginResult::Unavailable, &[]);
                return refuse(chan, &e.to_string());
            }
        },
        _ => match config {
            Ok(c) => c,
            Err(e) => {
                count(LoginResult::Unavailable, &[]);
                return refuse(chan, e);
            }
        },
    };
    let user = String::from_utf8_lossy(&login.user).into_owned();
    let engine_login = Login {
        service: login.service.clone(),
        rhost: login.rhost.clone(),
        user,
        authtok: login.authtok.as_ref().map(|t| secret(t)),
        tty: login.tty.clone(),
        ruser: login.ruser.clone(),
        caller: caller.uid,
    };
    if let Err(why) = may_ask(caller, &engine_login.user) {
        count(LoginResult::Refused, &[]);
        return refuse_caller(chan, cfg, res, &engine_login, &why, &counters.refusals);
    }
    let opts = Options {
        use_first_pass: login.flags.use_first_pass,
        try_first_pass: login.flags.try_first_pass,
        nullok: login.flags.nullok,
        prompt: login.prompt.clone(),
        debug: login.flags.debug,
    };
    let settle = || res.settle();
    let mut conv = SocketConversation {
        link: chan,
        wait: caller.answer_wait(),
        settle: &settle,
    };
    let outcome = host::authenticate(res, cfg, &opts, &engine_login, &mut conv, &SystemClock);
    let chan = conv.link;
    for e in &outcome.events {
        chan.queue(&Reply::Log {
            priority: e.priority(),
            line: e.log_line(),
        });
    }
    if let (Verdict::Unavailable(e), true) = (&outcome.verdict, outcome.events.is_empty()) {
        chan.queue(&log_err(&format!("unavailable: {e}")));
    }
    let v = verdict(&outcome.verdict);
    count(LoginResult::of(v), &outcome.events);
    chan.queue(&Reply::Verdict(v));
    let sent = chan.flush();
    // A reject's rows were written behind the reply: commit them now that it is sent.
    res.settle();
    sent
}

/// A status request (`tessera doctor`; root or the daemon's user): one `ok ...` or `fail ...` line per thing
/// a login needs, checked as the daemon (its user, its config, its store and key), then a
/// verdict: success when it can serve logins, unavailable when it can't.
fn status<C: Channel, R: Resources>(
    chan: &mut Link<'_, C>,
    caller: &Caller,
    config: std::result::Result<&Config, &str>,
    res: &R,
) -> std::result::Result<(), proto::ProtoError> {
    if !may_watch(caller) {
        return refuse(
            chan,
            "a status request is for root or the daemon's user only",
        );
    }
    let mut lines = vec![format!(
        "ok    tesserad runs as uid {}",
        tessera_engine::sys::euid()
    )];
    let mut serves = true;
    // "ok", "warn" (worth a look, logins are served) or "fail" (logins are not).
    let mut say = |mark: &str, text: String| {
        serves &= mark != "fail";
        lines.push(format!("{mark:<5} {text}"));
    };
    match config {
        Err(e) => say("fail", format!("its config does not load: {e}")),
        Ok(cfg) => {
            say("ok", "its config loads".into());
            let local = cfg.auth.mode == tessera_engine::config::Mode::Local;
            if local || cfg.store.path.exists() {
                match res.store(cfg) {
                    Ok(_) => say(
                        "ok",
                        format!("it opens the store {}", cfg.store.path.display()),
                    ),
                    Err(e) => say("fail", format!("it can't open the store: {e}")),
                }
            }
            if local {
                match res.key(cfg) {
                    Ok(_) => say(
                        "ok",
                        format!("it reads the key {}", cfg.store.key_file.display()),
                    ),
                    Err(e) => say("fail", format!("it can't read the key: {e}")),
                }
            } else {
                say("ok", format!("remote mode: {}", cfg.remote.url.join(", ")));
            }
            let servers = remote_health(cfg, res);
            let any_up = servers.iter().any(|(_, h)| h.is_up());
            for (server, health) in &servers {
                let text = format!("remote server {server}: {health}");
                match (health.is_up(), any_up) {
                    (true, _) => say("ok", text),
                    // Logins go to the others.
                    (false, true) => say("warn", text),
                    (false, false) => say("fail", format!("{text}; no server is up")),
                }
            }
        }
    }
    if let Some(load) = &caller.load {
        say("ok", load.to_string());
    }
    for l in lines {
        chan.queue(&Reply::Info(l));
    }
    chan.queue(&Reply::Verdict(if serves {
        proto::Verdict::Success
    } else {
        proto::Verdict::AuthinfoUnavail
    }));
    chan.flush()
}

/// A metrics request (`tessera metrics`; root or the daemon's user): the counters in the
/// OpenMetrics text format, one info line a line, then success.
fn metrics<C: Channel, R: Resources>(
    chan: &mut Link<'_, C>,
    caller: &Caller,
    config: std::result::Result<&Config, &str>,
    res: &R,
    metrics: &Metrics,
) -> std::result::Result<(), proto::ProtoError> {
    if !may_watch(caller) {
        return refuse(
            chan,
            "a metrics request is for root or the daemon's user only",
        );
    }
    let remote = config.map(|c| remote_health(c, res)).unwrap_or_default();
    let text = metrics.render(&Now {
        config_loaded: config.is_ok(),
        load: caller.load.unwrap_or_default(),
        remote: &remote,
    });
    for line in text.lines() {
        chan.queue(&Reply::Info(line.to_string()));
    }
    chan.queue(&Reply::Verdict(proto::Verdict::Success));
    chan.flush()
}

/// Status and metrics are for root and the daemon's own user (`tessera doctor` run by root
/// asks as the store's owner); they say nothing to anyone else.
fn may_watch(caller: &Caller) -> bool {
    caller.uid == 0 || caller.uid == tessera_engine::sys::euid()
}

/// The remote servers of a remote-mode config and what the daemon's circuit breaker knows of
/// them; none in local mode.
fn remote_health<R: Resources>(cfg: &Config, res: &R) -> Vec<(String, ServerHealth)> {
    if cfg.auth.mode == tessera_engine::config::Mode::Local {
        return Vec::new();
    }
    match res.remote_link(&cfg.remote) {
        Ok(link) => tessera_engine::remote::client::health(&link, &cfg.remote),
        Err(_) => Vec::new(),
    }
}

/// Who may ask (as unix_chkpwd decides for pam_unix): root for any user, anyone else only for
/// the account of its own uid (a screen locker unlocking its user's session).
fn may_ask(caller: &Caller, user: &str) -> std::result::Result<(), String> {
    if caller.uid == 0 {
        return Ok(());
    }
    match tessera_engine::sys::account(user) {
        Some(a) if a.uid == caller.uid => Ok(()),
        _ => Err(format!(
            "refused: uid {} may only authenticate its own account",
            caller.uid
        )),
    }
}

/// A request for another account: refused like a wrong pass, without a prompt, and audited
/// where the store can be written: at most one row per uid and minute, with the count.
fn refuse_caller<C: Channel>(
    chan: &mut Link<'_, C>,
    cfg: &Config,
    res: &impl Resources,
    login: &Login,
    why: &str,
    refusals: &Refusals,
) -> std::result::Result<(), proto::ProtoError> {
    let now = engine::Clock::now(&SystemClock);
    let e = AuditEntry {
        time: now,
        service: login.service.clone(),
        rhost: login.rhost.clone(),
        user: login.user.clone(),
        result: tessera_engine::store::AuditResult::Reject,
        reason: why.into(),
        caller: Some(login.caller),
        ..AuditEntry::default()
    };
    // Opened only if a row is due, and once.
    let store = std::cell::OnceCell::new();
    refusals.count(login.caller, now, |u: RowUpdate| {
        let row = AuditEntry {
            reason: format!("{why} ({} requests in this minute)", u.count),
            ..e.clone()
        };
        let store = store.get_or_init(|| res.store(cfg).ok()).as_ref()?;
        store.write(|tx| tx.audit_row(&row, u.row)).ok()
    });
    chan.queue(&Reply::Log {
        priority: e.priority(),
        line: e.log_line(),
    });
    chan.queue(&Reply::Verdict(proto::Verdict::AuthErr));
    let sent = chan.flush();
    res.settle();
    sent
}

/// Ends a session that can't be served: one log line, PAM_AUTHINFO_UNAVAIL.
fn refuse<C: Channel>(
    chan: &mut Link<'_, C>,
    why: &str,
) -> std::result::Result<(), proto::ProtoError> {
    chan.queue(&log_err(&format!("refusing: {why}")));
    chan.queue(&Reply::Verdict(proto::Verdict::AuthinfoUnavail));
    chan.flush()
}

fn log_err(line: &str) -> Reply {
    Reply::Log {
        priority: 3,
        line: line.to_string(),
    }
}

/// A connection as a session uses it: frames read through a buffer, and replies gathered until
/// the module must see them (a prompt it answers, a wait it must know of, the verdict), so that
/// log lines and the verdict go out in one write.
pub struct Link<'c, C: Channel> {
    chan: &'c mut C,
    reader: FrameReader,
    out: Vec<u8>,
}

impl<'c, C: Channel> Link<'c, C> {
    fn new(chan: &'c mut C) -> Self {
        Link {
            chan,
            reader: FrameReader::new(proto::MAX_LOGIN_FRAME),
            out: Vec::new(),
        }
    }

    /// The next frame, of at most `max` bytes, whole by `deadline`.
    fn recv(
        &mut self,
        deadline: Instant,
        max: usize,
    ) -> std::result::Result<Secret, proto::ProtoError> {
        self.reader.set_max(max);
        self.reader.read(&mut ByDeadline {
            chan: self.chan,
            deadline,
        })
    }

    /// Queues `r`; it goes out with the next prompt, wait or verdict ([`Link::flush`]).
    fn queue(&mut self, r: &Reply) {
        // Replies carry no secrets (prompts, messages, log lines, the verdict).
        self.out.extend_from_slice(&r.encode());
    }

    fn flush(&mut self) -> std::result::Result<(), proto::ProtoError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        write_frame(self.chan, &out)
    }
}

/// A channel's reads against one deadline: each read may wait only for what is left of it.
struct ByDeadline<'a, C: Channel> {
    chan: &'a mut C,
    deadline: Instant,
}

impl<C: Channel> Read for ByDeadline<'_, C> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.chan.set_read_timeout(left);
        self.chan.read(buf)
    }
}

/// The one place where engine verdicts become the module's return codes.
pub fn verdict(v: &Verdict) -> proto::Verdict {
    match v {
        Verdict::Accept { .. } | Verdict::PassOnNoToken => proto::Verdict::Success,
        Verdict::Reject { .. } => proto::Verdict::AuthErr,
        Verdict::Locked { .. } | Verdict::SourceLocked { .. } => proto::Verdict::MaxTries,
        Verdict::NoToken | Verdict::Skipped { .. } => proto::Verdict::Ignore,
        Verdict::Unavailable(_) => proto::Verdict::AuthinfoUnavail,
        Verdict::ConversationFailed(_) => proto::Verdict::ConvErr,
    }
}

/// The PAM conversation, carried over the connection: the module asks libpam's conversation
/// and sends the answer back.
struct SocketConversation<'l, 'c, C: Channel> {
    link: &'l mut Link<'c, C>,
    /// The longest wait for one answer.
    wait: Duration,
    /// Commits what the store holds behind the replies (see `Resources::settle`).
    settle: &'l dyn Fn(),
}

impl<C: Channel> SocketConversation<'_, '_, C> {
    /// Sends `r` with what was queued before it, now. What was written so far (a challenge,
    /// a send) is committed first: the user acts on a prompt, and may do so from elsewhere.
    fn send(&mut self, r: &Reply) -> Result<(), Error> {
        (self.settle)();
        self.link.queue(r);
        self.link
            .flush()
            .map_err(|e| Error::Conversation(format!("the module is gone: {e}")))
    }
}

impl<C: Channel> Conversation for SocketConversation<'_, '_, C> {
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Option<Secret>, Error> {
        self.send(&Reply::Prompt {
            echo,
            text: text.to_string(),
        })?;
        let body = self
            .link
            .recv(Instant::now() + self.wait, proto::MAX_ANSWER_FRAME)
            .map_err(|e| Error::Conversation(format!("no answer from the module: {e}")))?;
        match Request::decode(&body) {
            Ok(Request::Answer(a)) => Ok(a.map(|a| secret(&a))),
            Ok(Request::ConversationFailed(code)) => Err(Error::Conversation(format!(
                "the PAM conversation failed ({code})"
            ))),
            Ok(Request::Authenticate(_) | Request::Status | Request::Metrics) => Err(
                Error::Conversation("the module sent another request instead of an answer".into()),
            ),
            Err(e) => Err(Error::Conversation(format!("a bad answer frame: {e}"))),
        }
    }

    /// Queued: it reaches the user with the next prompt or the verdict.
    fn info(&mut self, text: &str) -> Result<(), Error> {
        self.link.queue(&Reply::Info(text.to_string()));
        Ok(())
    }

    fn error(&mut self, text: &str) -> Result<(), Error> {
        self.link.queue(&Reply::Error(text.to_string()));
        Ok(())
    }

    fn waiting(&mut self, seconds: u64) -> Result<(), Error> {
        self.send(&Reply::Wait(u32::try_from(seconds).unwrap_or(u32::MAX)))
    }
}
