//! Remote mode: every step is forwarded to a privacyIDEA-compatible `/validate/check` (or
//! LinOTP's), and the server decides. The HTTP exchanges are [`client`]'s, the reading of the
//! answers [`dialect`]'s, and privacyIDEA's offline values [`offline`]'s.
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

pub use crate::http::form_encode;
pub use dialect::{Challenge, PollState, RemoteAnswer};

use crate::config::{Config, Dialect, Fallback, OtpPin};
use crate::crypto::Secret;
use crate::engine::{
    ask, first_prompt, Clock, Conversation, LocalEngine, Login, Options, Outcome, Verdict,
    MAX_PASS_LEN,
};
use crate::error::{Error, Result};
use crate::store::{AuditEntry, AuditResult, Store};
use client::{Client, Request, Unreachable};
use dialect::{error_is_rejection, parse_check, parse_poll};
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
pub fn authenticate<C: Conversation, K: Clock, S: Store>(
    cfg: &Config,
    opts: &Options,
    login: &Login,
    conv: &mut C,
    clock: &K,
    store: Option<&S>,
    link: Result<client::Link>,
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
        source: crate::engine::Source::on_this_host(login, cfg.auth.source_prefix_v6),
        place: None,
        events: Vec::new(),
        written: 0,
    };
    let end = match link.and_then(|l| Client::new(&cfg.remote, &login.service, l)) {
        Ok(mut client) => {
            run.warn_about_transport(&client);
            match run.start(&mut client, opts, conv) {
                Ok(end) => end,
                Err(Error::Conversation(m)) => {
                    run.event(AuditResult::Error, &format!("conversation: {m}"), "", "");
                    End::Verdict(Verdict::ConversationFailed(m))
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
                Verdict::Unavailable(Error::Remote(format!("no server answered: {why}")))
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
    let client = Client::new(&cfg.remote, "doctor", client::Link::one_login(&cfg.remote)?)?;
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

/// What a challenge round led to.
enum Step {
    Answer(RemoteAnswer),
    Done(Verdict),
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
    source: crate::engine::Source,
    /// The login's place in the counts of its source and class, taken before a pass is
    /// compared with the offline values.
    place: Option<crate::engine::lockout::Place>,
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
        if !crate::engine::valid_user_name(&self.user) {
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

    /// One check request: the first pass, an answer to `transaction`, or (empty pass) the
    /// finishing request after a confirmed push.
    fn check(
        &mut self,
        client: &mut Client,
        pass: &[u8],
        transaction: Option<&str>,
    ) -> std::result::Result<RemoteAnswer, Unreachable> {
        let dialect = self.cfg.remote.dialect;
        let mut fields: Vec<(&str, &[u8])> = vec![("user", self.user.as_bytes())];
        if let Some(r) = &self.realm {
            fields.push(("realm", r.as_bytes()));
        }
        fields.push(("pass", pass));
        if let Some(t) = transaction {
            let name = match dialect {
                Dialect::Privacyidea => "transaction_id",
                Dialect::Linotp => "transactionid",
            };
            fields.push((name, t.as_bytes()));
        }
        // The user's address, where the server is told to trust it (privacyIDEA's
        // OverrideAuthorizationClient, LinOTP's mayOverwriteClient); only an IP address is sent.
        let rhost = self.login.rhost.trim();
        if rhost.parse::<std::net::IpAddr>().is_ok() {
            fields.push(("client", rhost.as_bytes()));
        }
        let req = Request {
            path: None,
            get: false,
            fields: &fields,
        };
        let keep = self.cfg.remote.offline && dialect == Dialect::Privacyidea;
        let mut items = Vec::new();
        let answer = client.exchange(&req, |server, status, body| {
            let answer = parse_check(dialect, server.endpoint, status, body)?;
            if keep && matches!(answer, RemoteAnswer::Accept { .. }) {
                items = offline::items(body);
            }
            Ok(answer)
        });
        self.offline_items = items;
        answer
    }

    /// Follows the server's answers through challenge rounds to a verdict.
    fn follow(
        &mut self,
        client: &mut Client,
        first: RemoteAnswer,
        conv: &mut impl Conversation,
    ) -> Result<Verdict> {
        let mut answer = first;
        let mut rounds = 0;
        loop {
            let server = client.current().to_string();
            match answer {
                RemoteAnswer::Accept {
                    serial,
                    kind,
                    message,
                } => {
                    let reason = format!("accepted by {server}{}", detail(&message));
                    self.event(AuditResult::Accept, &reason, &serial, &kind);
                    return Ok(Verdict::Accept { serial });
                }
                RemoteAnswer::Reject {
                    serial,
                    kind,
                    message,
                } => {
                    let reason = format!("rejected by {server}{}", detail(&message));
                    if message
                        .to_ascii_lowercase()
                        .contains("failcounter exceeded")
                    {
                        self.event(AuditResult::Locked, &reason, &serial, &kind);
                        return Ok(Verdict::Locked { serial });
                    }
                    self.event(AuditResult::Reject, &reason, &serial, &kind);
                    return Ok(Verdict::Reject { reason });
                }
                RemoteAnswer::Error { code, message } => {
                    let code_text = code.map_or("-".to_string(), |c| c.to_string());
                    let reason = format!("{server} error {code_text}{}", detail(&message));
                    if error_is_rejection(self.cfg.remote.dialect, code) {
                        self.event(AuditResult::Reject, &reason, "", "");
                        return Ok(Verdict::Reject { reason });
                    }
                    self.event(AuditResult::Error, &reason, "", "");
                    return Ok(Verdict::Unavailable(Error::Remote(reason)));
                }
                RemoteAnswer::Challenge(ch) => {
                    let serials = ch.serials.join(",");
                    let kinds = ch.kinds.join(",");
                    if rounds >= MAX_ROUNDS {
                        let reason =
                            format!("{server} still challenging after {MAX_ROUNDS} answers");
                        self.event(AuditResult::Reject, &reason, &serials, &kinds);
                        return Ok(Verdict::Reject { reason });
                    }
                    rounds += 1;
                    self.event(
                        AuditResult::Challenge,
                        &format!(
                            "challenge from {server}, transaction {}{}",
                            ch.transaction_id,
                            if ch.poll() { " (push)" } else { "" }
                        ),
                        &serials,
                        &kinds,
                    );
                    answer = match self.respond(client, &ch, conv)? {
                        Step::Answer(a) => a,
                        Step::Done(v) => return Ok(v),
                    };
                }
            }
        }
    }

    /// Shows a challenge and gets its answer: a typed value, or a push confirmed on the phone
    /// (an empty answer when both are possible), polled for and then finished.
    fn respond(
        &mut self,
        client: &mut Client,
        ch: &Challenge,
        conv: &mut impl Conversation,
    ) -> Result<Step> {
        if ch.poll() {
            conv.info(&clean(&ch.poll_messages.join(" ")))?;
        }
        if ch.input() {
            let text = input_prompt(ch, &self.cfg.prompts.otp);
            let answer = ask(conv, &text)?;
            if !(ch.poll() && answer.is_empty()) {
                if answer.len() > MAX_PASS_LEN {
                    let reason = format!("answer longer than {MAX_PASS_LEN} bytes");
                    self.event(AuditResult::Reject, &reason, "", "");
                    return Ok(Step::Done(Verdict::Reject { reason }));
                }
                let r = self.check(client, &answer, Some(&ch.transaction_id));
                return Ok(self.reached(r));
            }
        }
        conv.waiting(self.cfg.remote.push_timeout + self.cfg.remote.timeout)?;
        let deadline = self.clock.now() + self.cfg.remote.push_timeout;
        loop {
            let req = Request {
                path: Some("/validate/polltransaction"),
                get: true,
                fields: &[("transaction_id", ch.transaction_id.as_bytes())],
            };
            match client.exchange(&req, |_, status, body| parse_poll(status, body)) {
                Err(Unreachable(why)) => {
                    self.event(AuditResult::Error, &format!("polling: {why}"), "", "");
                    return Ok(Step::Done(Verdict::Unavailable(Error::Remote(why))));
                }
                Ok(PollState::Accepted) => break,
                Ok(PollState::Refused(status)) => {
                    let reason = format!("push {status} on the phone");
                    self.event(AuditResult::Reject, &reason, &ch.serials.join(","), "push");
                    return Ok(Step::Done(Verdict::Reject { reason }));
                }
                Ok(PollState::Pending) => {
                    if self.clock.now() + POLL_INTERVAL.as_secs() > deadline {
                        let reason = format!(
                            "push not confirmed within push_timeout ({} s)",
                            self.cfg.remote.push_timeout
                        );
                        self.event(AuditResult::Reject, &reason, &ch.serials.join(","), "push");
                        return Ok(Step::Done(Verdict::Reject { reason }));
                    }
                    self.clock.sleep(POLL_INTERVAL);
                }
            }
        }
        // Confirmed: the server gives its verdict on the transaction with an empty pass.
        let r = self.check(client, b"", Some(&ch.transaction_id));
        Ok(self.reached(r))
    }

    /// A server that stopped answering in the middle of a login: no fallback, the user's
    /// answer belonged to the server's challenge.
    fn reached(&mut self, r: std::result::Result<RemoteAnswer, Unreachable>) -> Step {
        match r {
            Ok(a) => Step::Answer(a),
            Err(Unreachable(why)) => {
                let why = format!("no server answered: {why}");
                self.event(AuditResult::Error, &why, "", "");
                Step::Done(Verdict::Unavailable(Error::Remote(why)))
            }
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
            let e = Error::Remote(
                "no server answered and the local store for fallback = \"local\" can't be opened"
                    .into(),
            );
            return Outcome::unavailable(e, self.login, self.clock.now());
        };
        let key = match crate::engine::load_key(self.cfg) {
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
        LocalEngine::new(self.cfg, store, &key, self.clock).authenticate(&login, &opts, conv)
    }
}

/// The prompt of a challenge: the server's message(s), else the configured OTP prompt; with a
/// push challenge beside it, how to say "I confirmed on my phone".
fn input_prompt(ch: &Challenge, default: &str) -> String {
    let msgs: Vec<String> = ch
        .input_messages
        .iter()
        .map(|m| {
            clean(m)
                .trim_end()
                .trim_end_matches(':')
                .trim_end()
                .to_string()
        })
        .filter(|m| !m.is_empty())
        .collect();
    let base = if msgs.is_empty() {
        default
            .trim_end()
            .trim_end_matches(':')
            .trim_end()
            .to_string()
    } else {
        msgs.join(" or ")
    };
    if ch.poll() {
        format!("{base} (or press Enter after confirming on your phone): ")
    } else {
        format!("{base}: ")
    }
}

/// Server text shown to a user: no control characters (no terminal escapes), no bidi overrides.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || is_bidi_or_invisible(c) {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Unicode format characters that reorder or hide text (right-to-left override, zero-width
/// joiners, isolates): a server's message could otherwise make a prompt read other than it is.
fn is_bidi_or_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_text_loses_controls_and_bidi_overrides() {
        assert_eq!(
            super::clean("Enter\u{202E}PTO\u{200B} code\n"),
            "Enter PTO  code "
        );
    }

    use super::*;

    #[test]
    fn prompts_come_from_the_server_messages() {
        let ch = Challenge {
            transaction_id: "1".into(),
            input_messages: vec!["please enter otp: ".into(), "sms sent\x1b[2J".into()],
            ..Challenge::default()
        };
        assert_eq!(
            input_prompt(&ch, "OTP: "),
            "please enter otp or sms sent [2J: "
        );
        let none = Challenge::default();
        assert_eq!(input_prompt(&none, "OTP: "), "OTP: ");
        let mixed = Challenge {
            input_messages: vec!["please enter otp:".into()],
            poll_messages: vec!["confirm".into()],
            ..Challenge::default()
        };
        assert_eq!(
            input_prompt(&mixed, "OTP: "),
            "please enter otp (or press Enter after confirming on your phone): "
        );
    }

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
