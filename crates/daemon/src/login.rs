//! A login on a connection: who may ask for it, the config it runs on, the engine with the
//! conversation carried over the socket, then the log lines and the verdict.

use crate::caller::{Caller, Counters};
use crate::link::{log_err, refuse, Channel, Link, SocketConversation};
use crate::metrics::LoginResult;
use crate::refusals::Refusals;
use std::time::Instant;
use tessera_engine::auth::{self, Login, Options, SystemClock, Verdict};
use tessera_engine::config::Config;
use tessera_engine::login::{authenticate, Resources};
use tessera_engine::store::AuditEntry;
use tessera_proto::{self as proto, Reply};

/// Serves the login `wire` that the connection opened with (at `started`).
pub(crate) fn serve<C: Channel, R: Resources>(
    chan: &mut Link<'_, C>,
    caller: &Caller,
    config: std::result::Result<&Config, &str>,
    res: &R,
    counters: &Counters,
    mut wire: proto::Login,
    started: Instant,
) -> std::result::Result<(), proto::ProtoError> {
    // `config=` of the PAM line: honoured for some callers only (below).
    let asked_config = wire.config.take();
    let (login, opts) = engine_login(wire, caller);
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
    let cfg = match (&asked_config, caller.may_choose_config) {
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
    if let Err(why) = may_ask(caller, &login.user) {
        count(LoginResult::Refused, &[]);
        return refuse_caller(chan, cfg, res, &login, &why, &counters.refusals);
    }
    let mut conv = SocketConversation {
        link: chan,
        wait: caller.answer_wait(),
    };
    let outcome = authenticate(res, cfg, &opts, &login, &mut conv, &SystemClock);
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

/// The login as the engine takes it: the one crossing from the wire's shape to the engine's.
/// The name's bytes become text (a name that is not UTF-8 matches no token), the PAM line's
/// switches become [`Options`], and the caller is who the socket says it is. (`config=` is the
/// daemon's to weigh, not the engine's.)
fn engine_login(wire: proto::Login, caller: &Caller) -> (Login, Options) {
    let opts = Options {
        use_first_pass: wire.flags.use_first_pass,
        try_first_pass: wire.flags.try_first_pass,
        nullok: wire.flags.nullok,
        prompt: wire.prompt,
        debug: wire.flags.debug,
    };
    let login = Login {
        user: String::from_utf8_lossy(&wire.user).into_owned(),
        authtok: wire.authtok,
        service: wire.service,
        rhost: wire.rhost,
        tty: wire.tty,
        ruser: wire.ruser,
        caller: caller.uid,
        uid: wire.uid,
    };
    (login, opts)
}

/// Who may ask (as unix_chkpwd decides for pam_unix): root for any user, anyone else only for
/// the account of its own uid (a screen locker unlocking its user's session).
fn may_ask(caller: &Caller, user: &str) -> std::result::Result<(), String> {
    if caller.uid == 0 {
        return Ok(());
    }
    match tessera_engine::os::sys::account(user) {
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
fn verdict(v: &Verdict) -> proto::Verdict {
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
