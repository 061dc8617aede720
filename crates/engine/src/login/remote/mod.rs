//! Remote mode: every step is forwarded to a privacyIDEA-compatible `/validate/check` (or
//! LinOTP's), and the server decides. The HTTP exchanges are [`client`]'s, the reading of the
//! answers [`dialect`]'s, privacyIDEA's offline values [`offline`]'s, and the challenge rounds
//! of a login (`rounds`) are apart from this start and end of it.
//!
//! The flow mirrors the local engine: the first prompt (or PAM_AUTHTOK with
//! `use_first_pass`/`try_first_pass`), then as many challenge rounds as the server asks for
//! (bounded), with push challenges polled on `/validate/polltransaction`. A server that can't be
//! reached, hangs or answers garbage ends in [`Verdict::Unavailable`] within `[remote].timeout`
//! per exchange — or, with `fallback = "local"` and no server answering the first pass, in the
//! local engine's decision on the same pass.

pub mod breaker;
pub mod client;
pub mod dialect;
pub mod offline;
mod rounds;

pub use crate::http::form_encode;
pub use dialect::{Challenge, PollState, RemoteAnswer};

use crate::auth::{
    ask, first_prompt, Clock, Conversation, Login, Options, Outcome, Verdict, MAX_PASS_LEN,
};
use crate::config::{Config, Dialect, Fallback, OtpPin};
use crate::crypto::Secret;
use crate::error::{Error, Kind, Result};
use crate::store::{AuditEntry, AuditResult, Store};
use client::{Client, Unreachable};
use rounds::clean;
use std::time::Duration;

/// A server that keeps challenging is refused after this many answers.
pub const MAX_ROUNDS: usize = 5;
/// How often a push challenge is polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(1000);

/// Authenticates `login` against the configured servers. `store` (absent on a host without a
/// local store) receives the audit rows and serves `fallback = "local"`.
///
/// `link` is the HTTP agent (and a daemon's circuit breaker) for the servers, or the error
/// building it gave.
pub fn ask_servers<C: Conversation, K: Clock, S: Store>(
    cfg: &Config,
    opts: &Options,
    login: &Login,
    conv: &mut C,
    clock: &K,
    store: Option<&S>,
    link: Result<client::ServerLink>,
) -> Outcome {
    let (user, realm) = remote_user(cfg, &login.user);
    let mut run = Run {
        cfg,
        login,
        user,
        realm,
        clock,
        store,
        offline_items: Vec::new(),
        source: crate::auth::Source::on_this_host(login, cfg.auth.source_prefix_v6),
        place: None,
        events: Vec::new(),
        written: 0,
    };
    let end = match link.and_then(|l| Client::new(&cfg.remote, &login.service, l)) {
        Ok(mut client) => {
            run.warn_about_transport(&client);
            match run.start(&mut client, opts, conv) {
                Ok(end) => end,
                Err(e) if e.kind() == Kind::Conversation => {
                    let m = e.message();
                    run.event(AuditResult::Error, &format!("conversation: {m}"), "", "");
                    End::Verdict(Verdict::ConversationFailed(m.to_owned()))
                }
                Err(e) => {
                    run.event(AuditResult::Error, &e.to_string(), "", "");
                    End::Verdict(Verdict::Unavailable(e))
                }
            }
        }
        Err(e) => {
            run.event(AuditResult::Error, &e.to_string(), "", "");
            End::Verdict(Verdict::Unavailable(e))
        }
    };
    let verdict = match end {
        End::Verdict(v) => v,
        End::Unreachable {
            pass,
            from_authtok,
            why,
        } => match cfg.remote.fallback {
            Fallback::Fail => {
                run.event(
                    AuditResult::Error,
                    &format!("no server answered: {why}"),
                    "",
                    "",
                );
                Verdict::Unavailable(Error::remote(format!("no server answered: {why}")))
            }
            Fallback::Local => {
                run.event(
                    AuditResult::Error,
                    &format!("no server answered: {why}; falling back to the local store"),
                    "",
                    "",
                );
                run.flush(store);
                let local = run.fallback_local(store, opts, conv, pass, from_authtok);
                let mut events = run.events;
                events.extend(local.events);
                return Outcome {
                    verdict: local.verdict,
                    events,
                };
            }
        },
    };
    run.offline_outcome(&verdict);
    run.flush(store);
    if let Some(told) = verdict.locked_message(clock.now()) {
        let _ = conv.error(&told);
    }
    Outcome {
        verdict,
        events: run.events,
    }
}

/// What `tessera doctor` learns about each configured server: whether it answers (TLS
/// verified as for a login) within `timeout`. privacyIDEA is asked for `/healthz/`, LinOTP
/// for `/validate/ok`; any answer below 500 shows that the server is there.
pub fn probe(cfg: &Config) -> Result<Vec<(String, std::result::Result<String, String>)>> {
    let client = Client::new(
        &cfg.remote,
        "doctor",
        client::ServerLink::one_login(&cfg.remote)?,
    )?;
    let path = match cfg.remote.dialect {
        Dialect::Privacyidea => "/healthz/",
        Dialect::Linotp => "/validate/ok",
    };
    Ok(client
        .probe(path)
        .into_iter()
        .map(|(url, r)| {
            let r = match r {
                Ok(s) if s < 500 => Ok(format!("answers (HTTP {s} on {path})")),
                Ok(s) => Err(format!("HTTP {s} on {path}")),
                Err(e) => Err(e),
            };
            (url, r)
        })
        .collect())
}

/// The user name and realm sent to the server: `user@realm` when `[auth].realm_separator` is
/// set and used, else `[remote].realm` (or none: the server's default realm).
fn remote_user(cfg: &Config, name: &str) -> (String, Option<String>) {
    if let Some(sep) = cfg.auth.realm_separator.as_deref() {
        if let Some((u, r)) = name.rsplit_once(sep) {
            if !u.is_empty() && !r.is_empty() {
                return (u.to_string(), Some(r.to_string()));
            }
        }
    }
    (name.to_string(), cfg.remote.realm.clone())
}

/// How the remote part ended.
enum End {
    Verdict(Verdict),
    /// No server answered the first pass: the local fallback may take `pass` over.
    Unreachable {
        pass: Secret,
        from_authtok: bool,
        why: String,
    },
}

struct Run<'a, K: Clock, S: Store> {
    cfg: &'a Config,
    login: &'a Login,
    user: String,
    realm: Option<String>,
    clock: &'a K,
    /// The local store, where there is one: audit rows, offline values, the fallback.
    store: Option<&'a S>,
    /// The offline values in the server's last answer (`[remote] offline`).
    offline_items: Vec<offline::Item>,
    /// Where the login comes from, as guesses at offline values are counted.
    source: crate::auth::Source,
    /// The login's place in the counts of its source and class, taken before a pass is
    /// compared with the offline values.
    place: Option<crate::auth::lockout::Place>,
    events: Vec<AuditEntry>,
    /// How many of `events` are already in the audit table.
    written: usize,
}

impl<K: Clock, S: Store> Run<'_, K, S> {
    fn event(&mut self, result: AuditResult, reason: &str, serial: &str, kind: &str) {
        self.events.push(AuditEntry {
            time: self.clock.now(),
            service: self.login.service.clone(),
            rhost: self.login.rhost.clone(),
            user: self.user.clone(),
            realm: self.realm.clone().unwrap_or_default(),
            serial: serial.into(),
            kind: kind.into(),
            result,
            reason: reason.into(),
            caller: Some(self.login.caller),
            source: self.source.to_string(),
            ruser: self.login.ruser.clone(),
        });
    }

    /// Writes the events not yet written to the audit table, when there is a store. A failed
    /// write is reported as one more event (for syslog) and changes no verdict.
    fn flush(&mut self, store: Option<&impl Store>) {
        let Some(store) = store else { return };
        let pending = &self.events[self.written..];
        if pending.is_empty() {
            return;
        }
        let res = store.write(|tx| {
            for e in pending {
                tx.audit(e)?;
            }
            Ok(())
        });
        self.written = self.events.len();
        if let Err(e) = res {
            self.event(
                AuditResult::Error,
                &format!("audit rows not written: {e}"),
                "",
                "",
            );
            self.written = self.events.len();
        }
    }

    /// A warning on every use of a transport that doesn't protect the pass.
    fn warn_about_transport(&mut self, client: &Client) {
        let insecure: Vec<String> = client
            .servers()
            .iter()
            .filter(|s| s.tls && !self.cfg.remote.verify_tls)
            .map(|s| s.base.clone())
            .collect();
        if !insecure.is_empty() {
            self.event(
                AuditResult::Warning,
                &format!(
                    "[remote] verify_tls = false: the certificate of {} is not checked, \
                     anyone on the path can read PINs and OTPs",
                    insecure.join(", ")
                ),
                "",
                "",
            );
        }
        let clear: Vec<String> = client
            .servers()
            .iter()
            .filter(|s| s.cleartext_remote)
            .map(|s| s.base.clone())
            .collect();
        if !clear.is_empty() {
            self.event(
                AuditResult::Warning,
                &format!(
                    "PINs and OTPs go unencrypted (plain http) to {}",
                    clear.join(", ")
                ),
                "",
                "",
            );
        }
    }

    /// The first pass, from PAM_AUTHTOK or the first prompt, as the local engine takes it.
    fn start(
        &mut self,
        client: &mut Client,
        opts: &Options,
        conv: &mut impl Conversation,
    ) -> Result<End> {
        let system_pin = self.cfg.auth.otppin == OtpPin::System;
        let login = self.login;
        if (opts.use_first_pass || opts.try_first_pass) && !system_pin {
            match &login.authtok {
                Some(pass) => {
                    let end = self.first_pass(client, pass, true, conv)?;
                    if opts.use_first_pass || !matches!(end, End::Verdict(Verdict::Reject { .. })) {
                        return Ok(end);
                    }
                }
                None if opts.use_first_pass => {
                    let reason = "use_first_pass: no password from an earlier module";
                    self.event(AuditResult::Reject, reason, "", "");
                    return Ok(End::Verdict(Verdict::Reject {
                        reason: reason.into(),
                    }));
                }
                None => {}
            }
        }
        let pass = ask(conv, first_prompt(self.cfg, opts))?;
        self.first_pass(client, &pass, false, conv)
    }

    fn first_pass(
        &mut self,
        client: &mut Client,
        pass: &[u8],
        from_authtok: bool,
        conv: &mut impl Conversation,
    ) -> Result<End> {
        if !crate::auth::valid_user_name(&self.user) {
            // Not sent: no server has such a user. It fails like any unknown user.
            let reason = "user name can't be looked up (empty, too long or control characters)";
            self.event(AuditResult::Reject, reason, "", "");
            return Ok(End::Verdict(Verdict::Reject {
                reason: reason.into(),
            }));
        }
        if pass.len() > MAX_PASS_LEN {
            let reason = format!("pass longer than {MAX_PASS_LEN} bytes");
            self.event(AuditResult::Reject, &reason, "", "");
            return Ok(End::Verdict(Verdict::Reject { reason }));
        }
        if let Some(verdict) = self.offline_first(client, pass) {
            return Ok(End::Verdict(verdict));
        }
        match self.check(client, pass, None) {
            Ok(answer) => {
                // Offline values come with a PIN+OTP accepted at once (they are hashes of it).
                let at_once = matches!(answer, RemoteAnswer::Accept { .. });
                let verdict = self.follow(client, answer, conv)?;
                if at_once {
                    self.keep_offline();
                }
                Ok(End::Verdict(verdict))
            }
            Err(Unreachable(why)) => Ok(End::Unreachable {
                pass: crate::crypto::secret(pass),
                from_authtok,
                why,
            }),
        }
    }

    /// `fallback = "local"`: the local engine decides on the same pass, as if an earlier
    /// module had given it (so the user isn't asked twice).
    fn fallback_local(
        &mut self,
        store: Option<&impl Store>,
        opts: &Options,
        conv: &mut impl Conversation,
        pass: Secret,
        from_authtok: bool,
    ) -> Outcome {
        let Some(store) = store else {
            let e = Error::remote(
                "no server answered and the local store for fallback = \"local\" can't be opened",
            );
            return Outcome::unavailable(e, self.login, self.clock.now());
        };
        let key = match crate::auth::load_key(self.cfg) {
            Ok(k) => k,
            Err(e) => return Outcome::unavailable(e, self.login, self.clock.now()),
        };
        let login = Login {
            authtok: Some(pass),
            ..self.login.clone()
        };
        let opts = Options {
            use_first_pass: !from_authtok,
            try_first_pass: from_authtok,
            ..opts.clone()
        };
        super::LocalEngine::new(self.cfg, store, &key, self.clock).decide(&login, &opts, conv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_comes_from_the_login_or_the_config() {
        let mut cfg = Config::default();
        cfg.remote.realm = Some("r1".into());
        assert_eq!(remote_user(&cfg, "a@b"), ("a@b".into(), Some("r1".into())));
        cfg.auth.realm_separator = Some("@".into());
        assert_eq!(remote_user(&cfg, "a@b"), ("a".into(), Some("b".into())));
        assert_eq!(remote_user(&cfg, "a"), ("a".into(), Some("r1".into())));
    }
}
