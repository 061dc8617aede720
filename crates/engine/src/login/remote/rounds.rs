//! The exchanges of one login with the servers once a pass is in hand: the check request,
//! the challenge rounds it leads to (a typed answer, or a push polled for), and the server's
//! text made fit to show. Apart from `mod.rs`, which starts and ends a login (first pass,
//! fallback, audit rows), as this is the conversation in between.

use super::client::{Client, Request, Unreachable};
use super::dialect::{error_is_rejection, parse_check, parse_poll};
use super::{offline, Challenge, PollState, RemoteAnswer, Run, MAX_ROUNDS, POLL_INTERVAL};
use crate::auth::{ask, Clock, Conversation, Verdict, MAX_PASS_LEN};
use crate::config::Dialect;
use crate::error::{Error, Result};
use crate::store::{AuditResult, Store};

/// What a challenge round led to.
enum Step {
    Answer(RemoteAnswer),
    Done(Verdict),
}

impl<K: Clock, S: Store> Run<'_, K, S> {
    /// One check request: the first pass, an answer to `transaction`, or (empty pass) the
    /// finishing request after a confirmed push.
    pub(super) fn check(
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
    pub(super) fn follow(
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
                    return Ok(Verdict::Unavailable(Error::remote(reason)));
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
                    return Ok(Step::Done(Verdict::Unavailable(Error::remote(why))));
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
                Step::Done(Verdict::Unavailable(Error::remote(why)))
            }
        }
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
pub(super) fn clean(s: &str) -> String {
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
    use super::*;

    #[test]
    fn server_text_loses_controls_and_bidi_overrides() {
        assert_eq!(
            super::clean("Enter\u{202E}PTO\u{200B} code\n"),
            "Enter PTO  code "
        );
    }

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
}
