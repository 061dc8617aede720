//! The local decision: PIN (+OTP) against the user's tokens, challenges, fail counters.
//!
//! Every step that reads and then changes a token (an OTP check, a fail count, a challenge
//! answer) runs inside one store write transaction that re-reads the token under the lock.
//!
//! Here: the run of one login and the OTP check. Beside it: `attempt` (where a login
//! stands), `places` (its place in the failure counts), `pin` (the PIN half of a pass),
//! `challenge` (challenges opened and answered), `four_eyes_pass` (a 4eyes pass), and the
//! tests in `tests.rs` and `lockout_tests.rs`.

use crate::auth::lockout::{self, Guesser, Lockout, Place};
use crate::auth::{
    ask, first_prompt, resolve_user, Accounts, Clock, Conversation, Login, Options, Outcome,
    Source, SystemAccounts, Verdict, MAX_PASS_LEN,
};
use crate::config::{Config, LockScope, OtpPin};
use crate::crypto::{ct_eq, Pepper, PinCheck, PinHasher, Secret, StoreKey, Turn};
use crate::delivery::Courier;
use crate::error::{Kind, Result};
use crate::store::{AuditEntry, AuditResult, ChallengeState, Missed, Store, StoreTx, TokenRecord};
use crate::tokens::{self, CheckContext, Sends, Token, TokenType};

mod attempt;
mod challenge;
mod four_eyes_pass;
mod pin;
mod places;

use attempt::{Attempt, OutdatedPin, PassedOver};

/// The window `[email]`/`[sms] max_per_hour` counts sends over.
const SEND_WINDOW: u64 = crate::store::SEND_RETENTION;

/// What the user is told when a PIN-only pass would send more e-mail or SMS OTPs than
/// `max_per_hour` allows.
pub const SEND_LIMIT_MESSAGE: &str =
    "Too many codes sent in the last hour; try again later or use another token.";

pub struct LocalEngine<'a, S: Store, C: Clock> {
    cfg: &'a Config,
    store: &'a S,
    key: &'a StoreKey,
    clock: &'a C,
    /// Sends e-mail and SMS OTPs; `None` is the courier the config describes.
    courier: Option<&'a dyn Courier>,
    /// Resolves PAM user names to accounts.
    accounts: &'a dyn Accounts,
    /// Mixed into PIN hashes (from the store key).
    pepper: Pepper,
}

/// One token an OTP is checked against: with the (unsealed) data of its challenge when the
/// OTP answers one.
struct Candidate<'c> {
    serial: &'c str,
    otp: &'c [u8],
    data: Option<Secret>,
}

/// The associated data that binds a challenge's sealed data to its transaction and token.
fn challenge_aad(transaction_id: &str, serial: &str) -> String {
    format!("challenge\n{transaction_id}\n{serial}")
}

/// What the first pass matched.
enum PassMatch<'t> {
    /// PIN+OTP (or the OTP alone with `otppin` none/system): each token with its OTP part.
    Otp(Vec<(&'t TokenRecord, Secret)>),
    /// The PIN alone, of these tokens.
    PinOnly(Vec<&'t TokenRecord>),
    Nothing,
}

impl<'a, S: Store, C: Clock> LocalEngine<'a, S, C> {
    pub fn new(cfg: &'a Config, store: &'a S, key: &'a StoreKey, clock: &'a C) -> Self {
        LocalEngine {
            cfg,
            store,
            key,
            clock,
            courier: None,
            accounts: &SystemAccounts,
            pepper: key.pepper(),
        }
    }

    /// Resolves user names with `accounts` instead of NSS.
    pub fn with_accounts(mut self, accounts: &'a dyn Accounts) -> Self {
        self.accounts = accounts;
        self
    }

    /// Where a login starts: the account the PAM user stands for, or an unknown user.
    fn attempt<'l>(&self, login: &'l Login) -> Attempt<'l> {
        let resolved = resolve_user(self.cfg, self.accounts, &login.user);
        let known = resolved.is_some();
        // An unknown user is audited under the name as given; no token is looked up for it.
        let (user, realm) =
            resolved.unwrap_or_else(|| crate::auth::split_realm(self.cfg, &login.user));
        let source = Source::on_this_host(login, self.cfg.auth.source_prefix_v6);
        let own_uid = known && source.uid().is_some() && self.accounts.uid(&user) == source.uid();
        Attempt {
            login,
            user,
            realm,
            known,
            rehash: Vec::new(),
            events: Vec::new(),
            pending: Vec::new(),
            probing_first_pass: false,
            source,
            own_uid,
            place: None,
            pending_place: None,
            open: None,
            no_failure: false,
            missed: None,
        }
    }

    /// Sends e-mail and SMS OTPs through `courier` instead of the configured relay/gateway.
    pub fn with_courier(mut self, courier: &'a dyn Courier) -> Self {
        self.courier = Some(courier);
        self
    }

    /// The logic of a token; e-mail and SMS OTP lengths come from the config.
    fn logic(&self, t: &TokenRecord) -> Result<Box<dyn Token>> {
        let mut p = t.params();
        match t.kind.spec().sends {
            Some(Sends::Email) => p.digits = self.cfg.email.otp_length,
            Some(Sends::Sms) => p.digits = self.cfg.sms.otp_length,
            None => {}
        }
        tokens::for_params(&p)
    }

    pub fn decide(&self, login: &Login, opts: &Options, conv: &mut impl Conversation) -> Outcome {
        let mut at = self.attempt(login);
        let verdict = match self.run(&mut at, opts, conv) {
            Ok(v) => self.place_after_verdict(&mut at, v),
            Err(err) if err.kind() == Kind::Conversation => {
                let m = err.message();
                let e = at.error(self.clock.now(), None, &format!("conversation: {m}"));
                self.audit_error(&e);
                Verdict::ConversationFailed(m.to_owned())
            }
            Err(err) => {
                let e = at.error(self.clock.now(), None, &err.to_string());
                // A store that failed (busy, corrupt, full) can't take the row either.
                if err.kind() != Kind::Store {
                    self.audit_error(&e);
                }
                Verdict::Unavailable(err)
            }
        };
        if verdict.is_accept() {
            self.rehash_pins(&at);
            if let Some(m) = &at.missed {
                let _ = conv.info(&crate::auth::missed_message(m));
            }
        }
        if let Some(told) = verdict.locked_message(self.clock.now()) {
            let _ = conv.error(&told);
        }
        at.end_transaction(false);
        Outcome {
            verdict,
            events: at.events,
        }
    }

    /// Runs `f` in one store transaction; the events it records are told once it commits.
    fn write<R>(
        &self,
        at: &mut Attempt,
        f: impl FnOnce(&dyn StoreTx, &mut Attempt) -> Result<R>,
    ) -> Result<R> {
        let r = self.store.write(|tx| f(tx, at));
        at.end_transaction(r.is_ok());
        r
    }

    /// Writes the row of an attempt that ended in an error: the transaction that would have
    /// written it was never reached or was rolled back. Best effort; syslog has the line anyway.
    fn audit_error(&self, e: &AuditEntry) {
        let _ = self.store.write(|tx| tx.audit(e));
    }

    fn run(
        &self,
        at: &mut Attempt,
        opts: &Options,
        conv: &mut impl Conversation,
    ) -> Result<Verdict> {
        let tokens = if at.known {
            self.store.tokens_of(&at.user, &at.realm)?
        } else {
            Vec::new()
        };
        // Every token counts, disabled and locked ones too: disabling a lost token must never
        // open the door (privacyIDEA's passOnNoToken counts them alike). An unknown user is
        // never "without tokens": it is prompted and refused like a wrong PIN.
        if at.known && tokens.is_empty() && (opts.nullok || self.cfg.auth.pass_on_no_token) {
            // Like google-authenticator's nullok: decided before any prompt.
            let now = self.clock.now();
            return self.write(at, |tx, at| {
                if self.cfg.auth.pass_on_no_token {
                    let why = "no token: pass_on_no_token";
                    tx.audit(&at.event(now, None, AuditResult::Accept, why))?;
                    Ok(Verdict::PassOnNoToken)
                } else {
                    tx.audit(&at.event(now, None, AuditResult::Ignore, "no token: nullok"))?;
                    Ok(Verdict::NoToken)
                }
            });
        }

        if let Some(refused) = self.refused_for_failures(at, &tokens, self.clock.now())? {
            return Ok(refused);
        }

        let system_pin = self.cfg.auth.otppin == OtpPin::System;
        if (opts.use_first_pass || opts.try_first_pass) && !system_pin {
            match &at.login.authtok {
                Some(pass) => {
                    at.probing_first_pass = opts.try_first_pass && !opts.use_first_pass;
                    let v = self.check_pass(at, &tokens, pass, conv);
                    at.probing_first_pass = false;
                    let v = v?;
                    if opts.use_first_pass || !matches!(v, Verdict::Reject { .. }) {
                        return Ok(v);
                    }
                }
                None if opts.use_first_pass => {
                    let now = self.clock.now();
                    at.no_failure = true;
                    return self.write(at, |tx, at| {
                        let reason = "use_first_pass: no password from an earlier module";
                        tx.audit(&at.reject(now, None, reason))?;
                        Ok(Verdict::Reject {
                            reason: reason.into(),
                        })
                    });
                }
                None => {}
            }
        }

        let pass = ask(conv, first_prompt(self.cfg, opts))?;
        self.check_pass(at, &tokens, &pass, conv)
    }

    fn context(&self, now: u64) -> CheckContext {
        CheckContext {
            now,
            hotp_window: self.cfg.auth.hotp_window,
            totp_window: self.cfg.auth.totp_window,
        }
    }

    /// The first pass: PIN+OTP, the PIN alone (which may open a challenge), or the OTP alone.
    fn check_pass(
        &self,
        at: &mut Attempt,
        tokens: &[TokenRecord],
        pass: &[u8],
        conv: &mut impl Conversation,
    ) -> Result<Verdict> {
        // A PIN is compared outside any transaction: the place is committed first. (With
        // `otppin` none or system the OTP is the first thing compared, in the transaction
        // that checks it, which takes the place itself.)
        if self.cfg.auth.otppin == OtpPin::Token {
            if let Some(refused) = self.take_place(at)? {
                return Ok(refused);
            }
        }
        if pass.len() > MAX_PASS_LEN {
            let now = self.clock.now();
            return self.fail(
                at,
                &[],
                now,
                &format!("pass longer than {MAX_PASS_LEN} bytes"),
            );
        }
        let matched = match self.cfg.auth.otppin {
            OtpPin::Token => self.match_pin(at, tokens, pass),
            OtpPin::None | OtpPin::System => {
                let with_otp = tokens
                    .iter()
                    .filter(|t| !t.kind.spec().pin_is_pass)
                    .map(|t| (t, crate::crypto::secret(pass)))
                    .collect();
                PassMatch::Otp(with_otp)
            }
        };
        let now = self.clock.now();
        match matched {
            PassMatch::Otp(candidates) if candidates.is_empty() => {
                // otppin none/system and no token that takes an OTP (an unknown user): refused
                // and audited like a wrong OTP.
                self.fail(at, &[], now, "wrong OTP or unknown user")
            }
            PassMatch::Otp(candidates) => {
                let c: Vec<Candidate> = candidates
                    .iter()
                    .map(|(t, otp)| Candidate {
                        serial: t.serial.as_str(),
                        otp: &otp[..],
                        data: None,
                    })
                    .collect();
                self.check_otp(at, &c, now, None)
            }
            PassMatch::PinOnly(candidates) => self.pin_only(at, &candidates, pass, now, conv),
            PassMatch::Nothing
                if self.cfg.auth.otppin == OtpPin::Token
                    && tokens.iter().any(|t| t.kind.spec().pass_of_others) =>
            {
                self.four_eyes(at, tokens, pass, now)
            }
            PassMatch::Nothing if at.probing_first_pass => {
                // try_first_pass: an earlier module's password that is no PIN of ours is not a
                // failed attempt; the prompt that follows decides and counts.
                Ok(Verdict::Reject {
                    reason: "the earlier pass matched no PIN".into(),
                })
            }
            PassMatch::Nothing => {
                let all: Vec<&TokenRecord> = tokens.iter().collect();
                self.fail(at, &all, now, "wrong PIN or unknown user")
            }
        }
    }

    /// Checks OTPs against candidate tokens (serial, OTP) in one write transaction that
    /// re-reads each token under the lock; the first that accepts moves its counter. With
    /// `transaction`, the challenge rows are closed in the same step.
    fn check_otp(
        &self,
        at: &mut Attempt,
        candidates: &[Candidate],
        now: u64,
        transaction: Option<&str>,
    ) -> Result<Verdict> {
        let ctx = self.context(now);
        self.write(at, |tx, at| {
            if let Some(refused) = self.check_in(tx, at, now)? {
                return Ok(refused);
            }
            let mut passed: Vec<(TokenRecord, PassedOver)> = Vec::new();
            let mut checked = Vec::new();
            for cand in candidates {
                let (serial, otp) = (cand.serial, cand.otp);
                let Some(t) = tx.token(serial)? else { continue };
                if t.user != at.user || t.realm != at.realm {
                    continue;
                }
                if let Some(why) = self.passed_over(tx, &t, now)? {
                    passed.push((t, why));
                    continue;
                }
                let logic = self.logic(&t)?;
                let key = self.key.open(&t.serial, &t.sealed_key)?;
                #[cfg(test)]
                OTP_CHECKS.with(|n| n.set(n.get() + 1));
                let result = match transaction {
                    Some(_) => logic.check_challenge(
                        &key,
                        cand.data.as_ref().map(|d| &d[..]),
                        otp,
                        t.counter,
                        &ctx,
                    ),
                    None => logic.check(&key, otp, t.counter, &ctx),
                };
                if let Some(counter) = result {
                    self.passed(tx, at, now)?;
                    tx.record_success(&t.serial, counter)?;
                    if let Some(id) = transaction {
                        tx.close_challenges(id, ChallengeState::Answered)?;
                    }
                    if t.kind.spec().starts_enrollment {
                        // Not in yet: the enrollment decides (the code is used up only once
                        // the new token is saved).
                        let why = "registration code matched: the enrollment of a token starts";
                        tx.audit(&at.challenge(now, &t, why))?;
                        return Ok(Verdict::Enroll {
                            registration: t.serial,
                            user: t.user,
                            realm: t.realm,
                        });
                    }
                    let reason = if transaction.is_some() {
                        "challenge answered"
                    } else {
                        "PIN and OTP matched"
                    };
                    tx.audit(&at.accept(now, &t, reason))?;
                    return Ok(Verdict::Accept { serial: t.serial });
                }
                // A type that can tell a used code from a wrong one says so in the audit.
                let why = logic
                    .refusal_reason(&key, otp, t.counter, &ctx)
                    .unwrap_or("wrong OTP or OTP already used");
                checked.push((t, why));
            }
            if let Some(id) = transaction {
                tx.close_challenges(id, ChallengeState::Failed)?;
            }
            self.failed(tx, at, now)?;
            for (t, why) in &checked {
                tx.record_failure(&t.serial, now)?;
                tx.audit(&at.reject(now, Some(t), why))?;
            }
            let locked = passed
                .iter()
                .find(|(_, why)| *why == PassedOver::Locked)
                .map(|(t, _)| t.serial.clone());
            for (t, why) in &passed {
                tx.audit(&at.passed_over(now, t, *why))?;
            }
            // A locked token whose PIN matched is refused like a wrong PIN (its audit row says
            // why): the answer must not tell a right PIN from a wrong one. (When every token
            // of the user is locked, the login was refused before any PIN check.)
            Ok(match (checked.is_empty(), locked) {
                (true, Some(_)) => Verdict::Reject {
                    reason: PassedOver::Locked.reason().into(),
                },
                (true, None) if !passed.is_empty() => Verdict::Reject {
                    reason: passed[0].1.reason().into(),
                },
                _ => Verdict::Reject {
                    reason: "wrong OTP or OTP already used".into(),
                },
            })
        })
    }

    /// Answers an open transaction outside a PAM conversation (the second step of a
    /// two-request client, and tests of "answered once").
    pub fn answer(&self, login: &Login, transaction_id: &str, otp: &[u8]) -> Outcome {
        let mut at = self.attempt(login);
        // The place is taken by the transaction that checks the OTP.
        let verdict = match self.answer_challenge(&mut at, transaction_id, otp) {
            Ok(v) => self.place_after_verdict(&mut at, v),
            Err(e) => Verdict::Unavailable(e),
        };
        Outcome {
            verdict,
            events: at.events,
        }
    }

    fn does_challenge(&self, kind: TokenType) -> bool {
        kind.always_challenges()
            || self
                .cfg
                .auth
                .challenge_response
                .iter()
                .any(|t| t == kind.name())
    }

    /// Why `t` is not looked at (disabled, or locked by its fail counter), if it is not.
    fn passed_over(
        &self,
        tx: &dyn StoreTx,
        t: &TokenRecord,
        now: u64,
    ) -> Result<Option<PassedOver>> {
        Ok(if !t.active {
            Some(PassedOver::Disabled)
        } else if self.locked(tx, t, now)? {
            Some(PassedOver::Locked)
        } else {
            None
        })
    }

    /// Whether the fail counter locks the token now; clears a counter whose
    /// `fail_clear_timeout` has passed.
    fn locked(&self, tx: &dyn StoreTx, t: &TokenRecord, now: u64) -> Result<bool> {
        // With `lock_scope = "source"` failures lock sources, not tokens: the token's count
        // is kept (and shown) only.
        let auth = &self.cfg.auth;
        if auth.lock_scope != LockScope::Token || t.fail_count < auth.max_fail {
            return Ok(false);
        }
        if auth.locks(t.fail_count, t.last_fail, now) {
            return Ok(true);
        }
        tx.clear_failures(&t.serial)?;
        Ok(false)
    }

    /// Counts a failure on each token and audits it; the PIN matched none of them, or the pass
    /// was refused before any check.
    fn fail(
        &self,
        at: &mut Attempt,
        tokens: &[&TokenRecord],
        now: u64,
        reason: &str,
    ) -> Result<Verdict> {
        self.write(at, |tx, at| {
            for t in tokens.iter().filter(|t| t.active) {
                tx.record_failure(&t.serial, now)?;
            }
            self.failed(tx, at, now)?;
            tx.audit(&at.reject(now, None, reason))?;
            Ok(Verdict::Reject {
                reason: reason.into(),
            })
        })
    }
}

#[cfg(test)]
thread_local! {
    /// The OTP checks of [`LocalEngine::check_otp`] on this thread, for tests of what a login
    /// compares (with [`crate::crypto::pin_checks`], the PIN checks).
    static OTP_CHECKS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many things typed this thread compared so far: PIN checks (burnt ones too) and OTP
/// checks.
#[cfg(test)]
fn comparisons() -> u64 {
    crate::crypto::pin_checks() + OTP_CHECKS.with(|n| n.get())
}

#[cfg(test)]
mod lockout_tests;

#[cfg(test)]
mod tests;
