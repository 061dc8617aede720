//! `tessera enroll`: a user enrolls a token for themselves over the socket. Who the user is
//! comes from the kernel (SO_PEERCRED: the caller's uid, and NSS's account of it), never from
//! the request; the dialogue is the engine's ([`tessera_engine::enroll`]), carried over the
//! connection like a login's conversation. Every enrollment, refused or done, is an audit row,
//! a syslog line (authpriv) and a line on the daemon's stderr; the new key goes to the user
//! only.

use crate::caller::Caller;
use crate::link::{refuse, Channel};
use crate::link::{Link, SocketConversation};
use crate::refusals::{Limited, Refusals};
use tessera_engine::auth::{SystemAccounts, SystemClock};
use tessera_engine::config::Config;
use tessera_engine::enroll::qr::Background;
use tessera_engine::enroll::{dialogue::SERVICE, Enrolled, Enrollee};
use tessera_engine::login::{enroll_self, Resources};
use tessera_proto::{self as proto, EnrollRequest, Reply};

pub(crate) fn serve<C: Channel, R: Resources>(
    chan: &mut Link<'_, C>,
    caller: &Caller,
    config: Result<&Config, &str>,
    res: &R,
    refusals: &Refusals,
    asked: &EnrollRequest,
) -> Result<(), proto::ProtoError> {
    let cfg = match config {
        Ok(c) => c,
        Err(e) => return refuse(chan, e),
    };
    let Some(account) = tessera_engine::os::sys::account_of_uid(caller.uid) else {
        crate::say!(
            "tesserad: enrollment refused: uid {} is no account",
            caller.uid
        );
        chan.queue(&Reply::Error(
            "your uid is no account of this host: nothing was enrolled".into(),
        ));
        chan.queue(&Reply::Verdict(proto::Verdict::AuthErr));
        return chan.flush();
    };
    let who = Enrollee {
        user: account.name,
        realm: cfg.auth.default_realm.clone(),
        uid: caller.uid,
        service: SERVICE.into(),
        rhost: String::new(),
    };
    let bg = if asked.light {
        Background::Light
    } else {
        Background::Dark
    };
    let mut conv = SocketConversation {
        link: chan,
        wait: caller.answer_wait(),
    };
    // A caller's refused enrollments take at most one audit row a minute.
    let limited = Limited {
        res,
        refusals,
        uid: caller.uid,
        counted_only: std::cell::Cell::new(false),
    };
    let out = enroll_self(
        &limited,
        cfg,
        &SystemAccounts,
        &who,
        asked.kind.as_deref(),
        bg,
        &mut conv,
        &SystemClock,
    );
    let chan = conv.link;
    // No PAM module logs this dialogue: the daemon does, to syslog and its stderr (the
    // journal, or the log file of a hand-started daemon). A refusal counted in its minute's
    // audit row (the caller's second and later that minute) is not logged again.
    let mut logged = &out.events[..];
    if matches!(out.outcome, Enrolled::Refused(_)) && limited.counted_only.get() {
        logged = &logged[..logged.len().saturating_sub(1)];
    }
    tessera_engine::syslog::send("tesserad", logged);
    for e in logged {
        crate::say!("tesserad: {SERVICE}: {}", e.log_line());
    }
    let verdict = match out.outcome {
        Enrolled::Saved { .. } => proto::Verdict::Success,
        Enrolled::Refused(told) => {
            chan.queue(&Reply::Error(told));
            proto::Verdict::AuthErr
        }
        Enrolled::Failed(e) => {
            crate::say!("tesserad: {SERVICE}: uid {}: {e}", caller.uid);
            chan.queue(&Reply::Error(
                "the enrollment could not be finished; nothing was saved (the daemon's log says \
                 why)"
                    .into(),
            ));
            proto::Verdict::AuthinfoUnavail
        }
    };
    chan.queue(&Reply::Verdict(verdict));
    chan.flush()
}
