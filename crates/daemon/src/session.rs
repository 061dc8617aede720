//! One login on one connection: read the login, check who may ask for it, run the engine with
//! the conversation carried over the socket, send the log lines and the verdict.

pub use crate::caller::{Caller, Counters, ANSWER_TIMEOUT, NON_ROOT_ANSWER_TIMEOUT};
pub use crate::link::Channel;
use crate::link::{log_err, refuse, Link, SocketConversation};
use crate::metrics::LoginResult;
use crate::refusals::Refusals;
use crate::reports;
use std::time::{Duration, Instant};
use tessera_engine::auth::{self, Login, Options, SystemClock, Verdict};
use tessera_engine::config::Config;
use tessera_engine::crypto::secret;
use tessera_engine::host::{self, Resources};
use tessera_engine::store::AuditEntry;
use tessera_proto::{self as proto, Reply, Request};

/// How long a client may take to send its whole login after connecting (not per read: a
/// client that trickles a byte at a time is cut off all the same).
pub const FIRST_FRAME_DEADLINE: Duration = Duration::from_secs(5);
/// How long one frame may take to be written (a client that stopped reading).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

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
        Ok(Request::Status) => return reports::status(chan, caller, config, res, counters),
        Ok(Request::Metrics) => return reports::metrics(chan, caller, config, res, counters),
        Ok(Request::Enroll(asked)) => {
            return crate::enroll::serve(chan, caller, config, res, &counters.refusals, &asked)
        }
        Ok(_) => return refuse(chan, "the first message was not a login"),
        Err(e) => return refuse(chan, &format!("a bad first message: {e}")),
    };
    // Only root callers name a series: any user may connect and name a service, and the
    // names of the first 32 would take the series sshd and sudo need.
    let service = match caller.uid {
        0 => login.service.as_str(),
        _ => crate::metrics::USER_SERVICE,
    };
    let count = |result, events: &[AuditEntry]| {
        let took = started.elapsed();
        counters.metrics.login(service, result, took, events);
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
        uid: login.uid,
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
    let mut conv = SocketConversation {
        link: chan,
        wait: caller.answer_wait(),
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
    chan.flush()
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
    let now = auth::Clock::now(&SystemClock);
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
    refusals.audit(login.caller, &e, || res.store(cfg).ok());
    chan.queue(&Reply::Log {
        priority: e.priority(),
        line: e.log_line(),
    });
    chan.queue(&Reply::Verdict(proto::Verdict::AuthErr));
    chan.flush()
}

/// The one place where engine verdicts become the module's return codes.
pub fn verdict(v: &Verdict) -> proto::Verdict {
    match v {
        Verdict::Accept { .. } | Verdict::PassOnNoToken => proto::Verdict::Success,
        // Enroll never leaves the host (it runs the enrollment): denied if it did.
        Verdict::Reject { .. } | Verdict::Enroll { .. } => proto::Verdict::AuthErr,
        Verdict::Locked { .. } | Verdict::SourceLocked { .. } | Verdict::ClassLocked { .. } => {
            proto::Verdict::MaxTries
        }
        Verdict::NoToken | Verdict::Skipped { .. } => proto::Verdict::Ignore,
        Verdict::Unavailable(_) => proto::Verdict::AuthinfoUnavail,
        Verdict::ConversationFailed(_) => proto::Verdict::ConvErr,
    }
}
