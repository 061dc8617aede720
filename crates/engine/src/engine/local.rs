//! The local decision: PIN (+OTP) against the user's tokens, challenges, fail counters.
//!
//! Every step that reads and then changes a token (an OTP check, a fail count, a challenge
//! answer) runs inside one store write transaction that re-reads the token under the lock.

use super::{
    ask, first_prompt, new_transaction_id, resolve_user, Accounts, Clock, Conversation, Login,
    Options, Outcome, SystemAccounts, Verdict,
};
use crate::config::{Config, OtpPin};
use crate::crypto::{
    burn_pin_check, check_pin, ct_eq, hash_pin, Pepper, PinCheck, Secret, StoreKey,
};
use crate::delivery::{Channel, Configured, Courier, OutOfBand};
use crate::error::{Error, Kind, Result};
use crate::store::{AuditEntry, ChallengeRecord, Store, StoreTx, TokenRecord};
use crate::tokens::{self, foureyes, CheckContext, Token, TokenType};

/// Longer passes are refused before any work: no PIN+OTP is this long, and hashing megabytes
/// per token would let one login hold the store.
pub const MAX_PASS_LEN: usize = 1024;

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

/// A challenge about to be opened: the token, the sealed data, what the message shows.
struct Opened {
    token: TokenRecord,
    data: Option<Vec<u8>>,
    question: Option<String>,
    expires: u64,
}

/// The associated data that binds a challenge's sealed data to its transaction and token.
fn challenge_aad(transaction_id: &str, serial: &str) -> String {
    format!("challenge\n{transaction_id}\n{serial}")
}

/// Where a login stands while it is decided: who, and what was said so far.
struct Attempt<'a> {
    login: &'a Login,
    /// The account's name (or, for an unknown user, the name as given).
    user: String,
    realm: String,
    /// The name is an account of this host; an unknown user has no tokens to look up.
    known: bool,
    /// PINs that matched an outdated hash: rehashed once the login is accepted.
    rehash: Vec<OutdatedPin>,
    events: Vec<AuditEntry>,
    /// Checking an earlier module's pass under `try_first_pass`: a pass that matches no PIN
    /// falls through to the prompt without counting a failure.
    probing_first_pass: bool,
}

impl Attempt<'_> {
    fn event(
        &mut self,
        now: u64,
        token: Option<&TokenRecord>,
        result: &str,
        reason: &str,
    ) -> AuditEntry {
        let e = AuditEntry {
            time: now,
            service: self.login.service.clone(),
            rhost: self.login.rhost.clone(),
            user: self.user.clone(),
            realm: self.realm.clone(),
            serial: token.map(|t| t.serial.clone()).unwrap_or_default(),
            kind: token.map(|t| t.kind.name().to_string()).unwrap_or_default(),
            result: result.into(),
            reason: reason.into(),
        };
        self.events.push(e.clone());
        e
    }
}

/// A PIN that matched a hash with older parameters (or no pepper).
struct OutdatedPin {
    serial: String,
    /// The stored hash it matched: replaced only if it is still the stored one.
    hash: String,
    pin: Secret,
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
        let (user, realm) = resolved.unwrap_or_else(|| super::split_realm(self.cfg, &login.user));
        Attempt {
            login,
            user,
            realm,
            known,
            rehash: Vec::new(),
            events: Vec::new(),
            probing_first_pass: false,
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
        match t.kind {
            TokenType::Email => p.digits = self.cfg.email.otp_length,
            TokenType::Sms => p.digits = self.cfg.sms.otp_length,
            _ => {}
        }
        tokens::for_params(&p)
    }

    pub fn authenticate(
        &self,
        login: &Login,
        opts: &Options,
        conv: &mut impl Conversation,
    ) -> Outcome {
        let mut at = self.attempt(login);
        let verdict = match self.run(&mut at, opts, conv) {
            Ok(v) => v,
            Err(Error::Conversation(m)) => {
                let e = at.event(
                    self.clock.now(),
                    None,
                    "error",
                    &format!("conversation: {m}"),
                );
                self.audit_error(&e);
                Verdict::ConversationFailed(m)
            }
            Err(err) => {
                let e = at.event(self.clock.now(), None, "error", &err.to_string());
                // A store that failed (busy, corrupt, full) can't take the row either.
                if err.kind() != Kind::Store {
                    self.audit_error(&e);
                }
                Verdict::Unavailable(err)
            }
        };
        if verdict.is_accept() {
            self.rehash_pins(&at.rehash);
        }
        Outcome {
            verdict,
            events: at.events,
        }
    }

    /// Replaces PIN hashes made with older parameters (or before the pepper) after a good
    /// login, unless an admin changed the PIN meanwhile. Best effort: the old hash still works.
    fn rehash_pins(&self, outdated: &[OutdatedPin]) {
        for o in outdated {
            if let Ok(new) = hash_pin(&o.pin, &self.pepper) {
                let _ = self
                    .store
                    .write(|tx| tx.replace_pin_hash(&o.serial, &o.hash, &new));
            }
        }
    }

    /// Whether `pin` is the PIN of `t`.
    fn pin_check(&self, t: &TokenRecord, pin: &[u8]) -> PinCheck {
        match &t.pin_hash {
            Some(h) => check_pin(pin, h, &self.pepper),
            // A token without a PIN: the pass is the OTP alone. The check is still paid, so
            // timing does not tell a PIN-less token from one with a PIN.
            None => {
                burn_pin_check(pin, &self.pepper);
                if ct_eq(pin, b"") {
                    PinCheck::Right
                } else {
                    PinCheck::Wrong
                }
            }
        }
    }

    /// [`Self::pin_check`], noting an outdated hash that matched for [`Self::rehash_pins`].
    fn pin_matches(&self, at: &mut Attempt, t: &TokenRecord, pin: &[u8]) -> bool {
        let check = self.pin_check(t, pin);
        if let (PinCheck::RightOutdated, Some(h)) = (check, &t.pin_hash) {
            at.rehash.push(OutdatedPin {
                serial: t.serial.clone(),
                hash: h.clone(),
                pin: crate::crypto::secret(pin),
            });
        }
        check.is_right()
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
            return self.store.write(|tx| {
                if self.cfg.auth.pass_on_no_token {
                    tx.audit(&at.event(now, None, "accept", "no token: pass_on_no_token"))?;
                    Ok(Verdict::PassOnNoToken)
                } else {
                    tx.audit(&at.event(now, None, "ignore", "no token: nullok"))?;
                    Ok(Verdict::NoToken)
                }
            });
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
                    return self.store.write(|tx| {
                        let reason = "use_first_pass: no password from an earlier module";
                        tx.audit(&at.event(now, None, "reject", reason))?;
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
                    .filter(|t| t.kind != TokenType::Spass)
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
                    && tokens.iter().any(|t| t.kind == TokenType::FourEyes) =>
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

    /// Compares the pass with each token's PIN, as PIN+OTP and as the PIN alone: two PIN checks
    /// per token, and two for a user with no tokens, so timing does not tell a one-token user
    /// from an unknown one. (It does show how many tokens a user has, as privacyIDEA's does.)
    fn match_pin<'t>(
        &self,
        at: &mut Attempt,
        tokens: &'t [TokenRecord],
        pass: &[u8],
    ) -> PassMatch<'t> {
        if tokens.is_empty() {
            burn_pin_check(pass, &self.pepper);
            burn_pin_check(pass, &self.pepper);
            return PassMatch::Nothing;
        }
        let mut with_otp = Vec::new();
        let mut pin_only = Vec::new();
        for t in tokens {
            if t.kind == TokenType::FourEyes {
                // Its pass is other users' PIN+OTPs: see `four_eyes`.
                continue;
            }
            let logic = match self.logic(t) {
                Ok(l) => l,
                Err(e) => {
                    // A token stored with parameters this build can't use (a bad OCRA suite
                    // written by an older version, a hand-edited row) matches nothing; the
                    // login goes on with the other tokens, and the reason is logged each time.
                    let why = format!("token {} can't be used: {e}", t.serial);
                    let row = at.event(self.clock.now(), Some(t), "error", &why);
                    self.audit_error(&row);
                    burn_pin_check(pass, &self.pepper);
                    burn_pin_check(pass, &self.pepper);
                    continue;
                }
            };
            let n = logic.otp_len();
            if n > 0 && pass.len() >= n {
                let (pin, tail) = pass.split_at(pass.len() - n);
                if self.pin_matches(at, t, pin) {
                    with_otp.push((t, crate::crypto::secret(tail)));
                    continue;
                }
            } else {
                // Every token costs two checks whatever the pass, like an unknown user does:
                // a short pass must not tell a one-token user from a user who doesn't exist.
                burn_pin_check(pass, &self.pepper);
            }
            if self.pin_matches(at, t, pass) {
                pin_only.push(t);
            }
        }
        match (with_otp.is_empty(), pin_only.is_empty()) {
            (false, _) => PassMatch::Otp(with_otp),
            (true, false) => PassMatch::PinOnly(pin_only),
            (true, true) => PassMatch::Nothing,
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
        self.store.write(|tx| {
            let mut refusals: Vec<(TokenRecord, &str)> = Vec::new();
            let mut checked = Vec::new();
            for cand in candidates {
                let (serial, otp) = (cand.serial, cand.otp);
                let Some(t) = tx.token(serial)? else { continue };
                if t.user != at.user || t.realm != at.realm {
                    continue;
                }
                if !t.active {
                    refusals.push((t, "token disabled"));
                    continue;
                }
                if self.locked(tx, &t, now)? {
                    refusals.push((t, "token locked: too many failures"));
                    continue;
                }
                let logic = self.logic(&t)?;
                let key = self.key.open(&t.serial, &t.sealed_key)?;
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
                    tx.record_success(&t.serial, counter)?;
                    if let Some(id) = transaction {
                        tx.close_challenges(id, "answered")?;
                    }
                    let reason = if transaction.is_some() {
                        "challenge answered"
                    } else {
                        "PIN and OTP matched"
                    };
                    tx.audit(&at.event(now, Some(&t), "accept", reason))?;
                    return Ok(Verdict::Accept { serial: t.serial });
                }
                // A type that can tell a used code from a wrong one says so in the audit.
                let why = logic
                    .refusal_reason(&key, otp, t.counter, &ctx)
                    .unwrap_or("wrong OTP or OTP already used");
                checked.push((t, why));
            }
            if let Some(id) = transaction {
                tx.close_challenges(id, "failed")?;
            }
            for (t, why) in &checked {
                tx.record_failure(&t.serial, now)?;
                tx.audit(&at.event(now, Some(t), "reject", why))?;
            }
            let locked = refusals
                .iter()
                .find(|(_, why)| why.starts_with("token locked"))
                .map(|(t, _)| t.serial.clone());
            for (t, why) in &refusals {
                let result = if why.starts_with("token locked") {
                    "locked"
                } else {
                    "reject"
                };
                tx.audit(&at.event(now, Some(t), result, why))?;
            }
            Ok(match (checked.is_empty(), locked) {
                (true, Some(serial)) => Verdict::Locked { serial },
                (true, None) if !refusals.is_empty() => Verdict::Reject {
                    reason: refusals[0].1.into(),
                },
                _ => Verdict::Reject {
                    reason: "wrong OTP or OTP already used".into(),
                },
            })
        })
    }

    /// The PIN alone: `spass` accepts; challenge-response tokens open one challenge each under
    /// one transaction id and ask for the OTP; other tokens fail. E-mail and SMS OTPs are sent
    /// before any challenge row is written: a failed delivery leaves no open challenge. A send
    /// past `[email]`/`[sms] max_per_hour` is not made: the user is told, the token opens no
    /// challenge (the others still do).
    fn pin_only(
        &self,
        at: &mut Attempt,
        candidates: &[&TokenRecord],
        pin: &[u8],
        now: u64,
        conv: &mut impl Conversation,
    ) -> Result<Verdict> {
        let transaction_id = new_transaction_id();
        // Which tokens open a challenge. An e-mail or SMS token's send is checked against the
        // user's hourly limit and recorded in this same transaction, so two logins at once
        // can't both send the one OTP that is left.
        let (chosen, limited) = self.store.write(|tx| {
            let mut opened: Vec<(TokenRecord, Option<i64>)> = Vec::new();
            let mut refused: Vec<(TokenRecord, &str)> = Vec::new();
            let mut limited: Vec<(TokenRecord, String)> = Vec::new();
            for cand in candidates {
                let Some(t) = tx.token(&cand.serial)? else {
                    continue;
                };
                if !t.active {
                    refused.push((t, "token disabled"));
                } else if self.locked(tx, &t, now)? {
                    refused.push((t, "token locked: too many failures"));
                } else if t.kind == TokenType::Spass {
                    // Accepted: nothing will be sent for the tokens looked at before.
                    for id in opened.iter().filter_map(|(_, send)| *send) {
                        tx.forget_send(id)?;
                    }
                    tx.record_success(&t.serial, t.counter)?;
                    tx.audit(&at.event(now, Some(&t), "accept", "PIN matched (spass)"))?;
                    return Ok((Err(Verdict::Accept { serial: t.serial }), false));
                } else if self.does_challenge(t.kind) {
                    match self.reserve_send(tx, &t, now)? {
                        Ok(send) => opened.push((t, send)),
                        Err(why) => limited.push((t, why)),
                    }
                } else {
                    refused.push((
                        t,
                        "PIN alone, but this token type does no challenge response",
                    ));
                }
            }
            // Not sent: no failure counted (the PIN was right), one row each.
            for (t, why) in &limited {
                tx.audit(&at.event(now, Some(t), "reject", why))?;
            }
            if opened.is_empty() {
                let locked = refused
                    .iter()
                    .find(|(_, w)| w.starts_with("token locked"))
                    .map(|(t, _)| t.serial.clone());
                for (t, why) in &refused {
                    if why.starts_with("PIN alone") {
                        tx.record_failure(&t.serial, now)?;
                    }
                    let result = if why.starts_with("token locked") {
                        "locked"
                    } else {
                        "reject"
                    };
                    tx.audit(&at.event(now, Some(t), result, why))?;
                }
                let reason = limited
                    .first()
                    .map(|(_, w)| w.clone())
                    .or_else(|| refused.first().map(|(_, w)| w.to_string()))
                    .unwrap_or_default();
                return Ok((
                    Err(match locked {
                        Some(serial) => Verdict::Locked { serial },
                        None => Verdict::Reject { reason },
                    }),
                    !limited.is_empty(),
                ));
            }
            Ok((Ok(opened), !limited.is_empty()))
        })?;
        if limited {
            let _ = conv.error(SEND_LIMIT_MESSAGE);
        }
        let chosen = match chosen {
            Ok(o) => o,
            Err(verdict) => return Ok(verdict),
        };

        // Challenge data and out-of-band delivery, outside any store transaction: a slow relay
        // must not hold the store's write lock.
        let mut opened: Vec<Opened> = Vec::new();
        let mut failed: Vec<(TokenRecord, Error, Option<i64>)> = Vec::new();
        for (t, send) in chosen {
            match self.make_challenge(&t, pin, &transaction_id, now) {
                Ok((data, question)) => {
                    let validity = match t.kind {
                        TokenType::Email => self.cfg.email.validity,
                        TokenType::Sms => self.cfg.sms.validity,
                        _ => self.cfg.auth.challenge_validity,
                    };
                    opened.push(Opened {
                        token: t,
                        data,
                        question,
                        expires: now + validity,
                    })
                }
                Err(e) => failed.push((t, e, send)),
            }
        }
        for (t, _, _) in &failed {
            // The user learns that the OTP did not go out; the reason goes to the log only.
            let how = match t.kind {
                TokenType::Sms => "by SMS",
                _ => "by e-mail",
            };
            let _ = conv.error(&format!(
                "The OTP could not be sent {how}. Please try again later or contact your administrator."
            ));
        }
        let committed = self.store.write(|tx| {
            tx.expire_challenges(now)?;
            for (t, e, send) in &failed {
                // Nothing went out: it does not count against the limit.
                if let Some(id) = send {
                    tx.forget_send(*id)?;
                }
                tx.audit(&at.event(now, Some(t), "error", &format!("challenge not opened: {e}")))?;
            }
            if opened.is_empty() {
                return Ok(false);
            }
            for o in &opened {
                tx.insert_challenge(&ChallengeRecord {
                    transaction_id: transaction_id.clone(),
                    serial: o.token.serial.clone(),
                    user: at.user.clone(),
                    realm: at.realm.clone(),
                    created: now,
                    expires: o.expires,
                    state: "open".into(),
                    data: o.data.clone(),
                })?;
                tx.audit(&at.event(
                    now,
                    Some(&o.token),
                    "challenge",
                    &format!("challenge opened, transaction {transaction_id}"),
                ))?;
            }
            Ok(true)
        })?;
        if !committed {
            let reason = failed
                .into_iter()
                .next()
                .map(|(_, e, _)| e)
                .unwrap_or_else(|| Error::Delivery("no challenge could be opened".into()));
            return Ok(Verdict::Unavailable(reason));
        }
        for o in &opened {
            let shown = self.prompt_of(&o.token);
            if let Some(q) = &o.question {
                if !shown.contains("{question}") {
                    let _ = conv.info(&format!("Challenge: {q}"));
                }
            }
        }
        let message = self.challenge_message(&opened);
        let answer = match ask(conv, &message) {
            Ok(a) => a,
            Err(e) => {
                // Nobody can answer this transaction any more: close it.
                self.store
                    .write(|tx| tx.close_challenges(&transaction_id, "failed"))?;
                return Err(e);
            }
        };
        self.answer_challenge(at, &transaction_id, &answer)
    }

    /// Checks an e-mail or SMS token's send against the user's `max_per_hour` (all the user's
    /// tokens of that type, in the last hour) and records it: `Ok(Some(id))` of the recorded
    /// send, `Ok(None)` for a type that sends nothing, `Err(why)` when the limit is reached.
    fn reserve_send(
        &self,
        tx: &dyn StoreTx,
        t: &TokenRecord,
        now: u64,
    ) -> Result<std::result::Result<Option<i64>, String>> {
        let (max, what) = match t.kind {
            TokenType::Email => (self.cfg.email.max_per_hour, "e-mail"),
            TokenType::Sms => (self.cfg.sms.max_per_hour, "SMS"),
            _ => return Ok(Ok(None)),
        };
        let kind = t.kind.name();
        if max > 0 {
            let since = now.saturating_sub(SEND_WINDOW);
            let sent = tx.sends_since(&t.user, &t.realm, kind, since)?;
            if sent >= u64::from(max) {
                return Ok(Err(format!(
                    "{what} not sent: {sent} sent in the last hour (max_per_hour)"
                )));
            }
        }
        Ok(Ok(Some(
            tx.record_send(&t.user, &t.realm, kind, &t.serial, now)?,
        )))
    }

    /// The data of one token's challenge, sealed, and the question to show; sends the OTP of
    /// e-mail and SMS tokens.
    fn make_challenge(
        &self,
        t: &TokenRecord,
        pin: &[u8],
        transaction_id: &str,
        now: u64,
    ) -> Result<(Option<Vec<u8>>, Option<String>)> {
        let logic = self.logic(t)?;
        let Some(ch) = logic.challenge(pin, &mut rand::rngs::OsRng)? else {
            return Ok((None, None));
        };
        if let Some(otp) = &ch.otp {
            let info = |k: &str| t.info.get(k).and_then(|v| v.as_str()).unwrap_or("");
            let (channel, validity) = match t.kind {
                TokenType::Sms => (
                    Channel::Sms {
                        phone: info("phone"),
                    },
                    self.cfg.sms.validity,
                ),
                _ => (
                    Channel::Email {
                        address: info("email"),
                    },
                    self.cfg.email.validity,
                ),
            };
            let m = OutOfBand {
                channel,
                otp,
                user: &t.user,
                serial: &t.serial,
                validity,
                now,
            };
            match self.courier {
                Some(c) => c.send(&m)?,
                None => Configured(self.cfg).send(&m)?,
            }
        }
        let sealed = self
            .key
            .seal(&challenge_aad(transaction_id, &t.serial), &ch.data);
        Ok((Some(sealed), ch.question))
    }

    /// The 4eyes rule: the pass is N other users' PIN+OTP joined by the token's separator; it
    /// succeeds when tokens of N distinct users of the token's realm accept their parts.
    fn four_eyes(
        &self,
        at: &mut Attempt,
        tokens: &[TokenRecord],
        pass: &[u8],
        now: u64,
    ) -> Result<Verdict> {
        let ctx = self.context(now);
        let mut last = Verdict::Reject {
            reason: "wrong PIN or unknown user".into(),
        };
        for t in tokens.iter().filter(|t| t.kind == TokenType::FourEyes) {
            let policy = foureyes::Policy::from_info(&t.serial, &t.info)?;
            let Some(parts) = policy.split(pass) else {
                return self.fail(at, &[t], now, "4eyes: too many parts in the pass");
            };
            // Each part against the realm's tokens of other users: the first whose PIN matches.
            let members: Vec<TokenRecord> = self
                .store
                .tokens_in_realm(&policy.realm)?
                .into_iter()
                .filter(|m| {
                    m.active
                        && m.user != at.user
                        && matches!(
                            m.kind,
                            TokenType::Hotp | TokenType::Totp | TokenType::Pw | TokenType::Spass
                        )
                })
                .collect();
            let mut pairs: Vec<(&TokenRecord, Secret)> = Vec::new();
            for part in &parts {
                for m in &members {
                    let Ok(logic) = self.logic(m) else { continue };
                    let n = logic.otp_len();
                    if part.len() < n {
                        continue;
                    }
                    let (pin, otp) = part.split_at(part.len() - n);
                    if self.pin_check(m, pin).is_right() {
                        pairs.push((m, crate::crypto::secret(otp)));
                        break;
                    }
                }
            }
            let verdict = self.store.write(|tx| {
                let Some(own) = tx.token(&t.serial)? else {
                    return Ok(None);
                };
                if !own.active {
                    tx.audit(&at.event(now, Some(&own), "reject", "token disabled"))?;
                    return Ok(Some(Verdict::Reject {
                        reason: "token disabled".into(),
                    }));
                }
                if self.locked(tx, &own, now)? {
                    tx.audit(&at.event(
                        now,
                        Some(&own),
                        "locked",
                        "token locked: too many failures",
                    ))?;
                    return Ok(Some(Verdict::Locked {
                        serial: own.serial.clone(),
                    }));
                }
                let mut users: Vec<String> = Vec::new();
                for (m, otp) in &pairs {
                    let Some(m) = tx.token(&m.serial)? else {
                        continue;
                    };
                    if !m.active || self.locked(tx, &m, now)? {
                        continue;
                    }
                    let logic = self.logic(&m)?;
                    let key = self.key.open(&m.serial, &m.sealed_key)?;
                    match logic.check(&key, otp, m.counter, &ctx) {
                        Some(counter) => {
                            tx.record_success(&m.serial, counter)?;
                            if !users.contains(&m.user) {
                                users.push(m.user.clone());
                            }
                        }
                        None => tx.record_failure(&m.serial, now)?,
                    }
                }
                if users.len() >= policy.count as usize {
                    tx.record_success(&own.serial, own.counter)?;
                    let why = format!(
                        "4eyes: tokens of {} users of realm {} matched",
                        users.len(),
                        policy.realm
                    );
                    tx.audit(&at.event(now, Some(&own), "accept", &why))?;
                    Ok(Some(Verdict::Accept { serial: own.serial }))
                } else {
                    tx.record_failure(&own.serial, now)?;
                    let why = policy.shortfall(users.len());
                    tx.audit(&at.event(now, Some(&own), "reject", &why))?;
                    Ok(Some(Verdict::Reject { reason: why }))
                }
            })?;
            match verdict {
                Some(v @ (Verdict::Accept { .. } | Verdict::Locked { .. })) => return Ok(v),
                Some(v) => last = v,
                None => {}
            }
        }
        // privacyIDEA shows its "Only found N tokens in realm R" to the user; that tells an
        // unauthenticated stranger who holds 4eyes tokens and names the realm. The reason goes
        // to the log and the audit table only: the user sees a failure like any other.
        Ok(last)
    }

    /// Checks the answer to an open transaction: the OTP alone, against its tokens only, within
    /// `challenge_validity`. A transaction is answered once, right or wrong.
    fn answer_challenge(
        &self,
        at: &mut Attempt,
        transaction_id: &str,
        otp: &[u8],
    ) -> Result<Verdict> {
        let now = self.clock.now();
        let rows = self.store.write(|tx| {
            let rows = tx.open_challenges(transaction_id)?;
            if rows.is_empty() {
                tx.audit(&at.event(
                    now,
                    None,
                    "reject",
                    "no open challenge with this transaction id",
                ))?;
                return Ok(Err(Verdict::Reject {
                    reason: "no open challenge".into(),
                }));
            }
            if rows.iter().all(|c| c.expires <= now) {
                tx.close_challenges(transaction_id, "expired")?;
                tx.audit(&at.event(now, None, "reject", "challenge expired"))?;
                return Ok(Err(Verdict::Reject {
                    reason: "challenge expired".into(),
                }));
            }
            Ok(Ok(rows))
        })?;
        let rows = match rows {
            Ok(r) => r,
            Err(v) => return Ok(v),
        };
        let candidates: Vec<Candidate> = rows
            .iter()
            .filter(|c| c.expires > now && c.user == at.user && c.realm == at.realm)
            .map(|c| Candidate {
                serial: c.serial.as_str(),
                otp,
                // Data that does not unseal (moved to another row, other key) answers nothing.
                data: c.data.as_deref().and_then(|d| {
                    self.key
                        .open(&challenge_aad(transaction_id, &c.serial), d)
                        .ok()
                }),
            })
            .collect();
        self.check_otp(at, &candidates, now, Some(transaction_id))
    }

    /// Answers an open transaction outside a PAM conversation (the second step of a
    /// two-request client, and tests of "answered once").
    pub fn answer(&self, login: &Login, transaction_id: &str, otp: &[u8]) -> Outcome {
        let mut at = self.attempt(login);
        let verdict = match self.answer_challenge(&mut at, transaction_id, otp) {
            Ok(v) => v,
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

    /// Whether the fail counter locks the token now; clears a counter whose
    /// `fail_clear_timeout` has passed.
    fn locked(&self, tx: &dyn StoreTx, t: &TokenRecord, now: u64) -> Result<bool> {
        if t.fail_count < self.cfg.auth.max_fail {
            return Ok(false);
        }
        let timeout = self.cfg.auth.fail_clear_timeout;
        if timeout > 0 && t.last_fail.is_some_and(|l| l + timeout <= now) {
            tx.clear_failures(&t.serial)?;
            return Ok(false);
        }
        Ok(true)
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
        self.store.write(|tx| {
            for t in tokens.iter().filter(|t| t.active) {
                tx.record_failure(&t.serial, now)?;
            }
            tx.audit(&at.event(now, None, "reject", reason))?;
            Ok(Verdict::Reject {
                reason: reason.into(),
            })
        })
    }

    /// The message template of a token's type.
    fn prompt_of(&self, t: &TokenRecord) -> &str {
        let p = &self.cfg.prompts;
        match t.kind {
            TokenType::Hotp => &p.hotp,
            TokenType::Totp => &p.totp,
            TokenType::Email => &p.email,
            TokenType::Sms => &p.sms,
            TokenType::Ocra => &p.ocra,
            TokenType::Tan => &p.tan,
            _ => &p.otp,
        }
    }

    /// The text of a challenge: the message of the token type with its placeholders filled, or
    /// each distinct message joined with " or " when one PIN opened challenges on several
    /// tokens.
    fn challenge_message(&self, opened: &[Opened]) -> String {
        let mut msgs: Vec<String> = Vec::new();
        for o in opened {
            let t = &o.token;
            let info = |k: &str| {
                t.info
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            let email = tokens::email::mask_address(&info("email"));
            let phone = tokens::sms::mask_phone(&info("phone"));
            let question = o.question.clone().unwrap_or_default();
            let vars = [
                ("serial", t.serial.as_str()),
                ("email", email.as_str()),
                ("phone", phone.as_str()),
                ("question", question.as_str()),
            ];
            let m = crate::delivery::fill(self.prompt_of(t), &vars).to_string();
            if !msgs.contains(&m) {
                msgs.push(m);
            }
        }
        match msgs.as_slice() {
            [one] => one.clone(),
            _ if msgs.len() > 1 => {
                let parts: Vec<&str> = msgs
                    .iter()
                    .map(|m| m.trim_end().trim_end_matches(':'))
                    .collect();
                format!("{}: ", parts.join(" or "))
            }
            _ => self.cfg.prompts.multi.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Login, Options, Verdict};
    use crate::store::SqliteStore;
    use crate::tokens::tan;

    struct Fixed(u64);
    impl Clock for Fixed {
        fn now(&self) -> u64 {
            self.0
        }
    }

    struct Alice;
    impl Accounts for Alice {
        fn canonical(&self, name: &str) -> Option<String> {
            (name == "alice").then(|| name.to_string())
        }
    }

    /// Answers each prompt with the next pass; fails on a prompt too many.
    struct Script(Vec<String>, Vec<String>);
    impl Conversation for Script {
        fn prompt(&mut self, text: &str, _echo: bool) -> Result<Option<Secret>> {
            self.1.push(text.to_string());
            if self.0.is_empty() {
                return Err(Error::Conversation(format!("unexpected prompt {text:?}")));
            }
            Ok(Some(crate::crypto::secret(self.0.remove(0).as_bytes())))
        }
        fn info(&mut self, _text: &str) -> Result<()> {
            Ok(())
        }
        fn error(&mut self, _text: &str) -> Result<()> {
            Ok(())
        }
    }

    struct Tans {
        _dir: tempfile::TempDir,
        db: std::path::PathBuf,
        key: StoreKey,
        codes: Vec<String>,
    }

    /// A store with alice's tan token T1 (PIN 1234, 10 codes of 8 digits).
    fn tans() -> Tans {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tessera.db");
        let store = SqliteStore::create(&db, 2000).unwrap();
        let key = StoreKey::generate();
        let g = tan::generate(10, 8, &mut rand::rngs::OsRng).unwrap();
        let mut t = TokenRecord::new(
            "T1",
            "alice",
            "default",
            TokenType::Tan,
            key.seal("T1", &g.key),
        );
        t.digits = 8;
        t.pin_hash = Some(hash_pin(b"1234", &key.pepper()).unwrap());
        t.info = serde_json::json!({ "count": 10 });
        store.insert_token(&t).unwrap();
        let codes = g
            .codes
            .iter()
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        Tans {
            _dir: dir,
            db,
            key,
            codes,
        }
    }

    fn login(cfg: &Config, fx: &Tans, pass: &str) -> Outcome {
        let store = SqliteStore::open(&fx.db, 5000).unwrap();
        let engine =
            LocalEngine::new(cfg, &store, &fx.key, &Fixed(1_000_000)).with_accounts(&Alice);
        let login = Login {
            service: "test".into(),
            user: "alice".into(),
            ..Login::default()
        };
        let mut conv = Script(vec![pass.to_string()], vec![]);
        engine.authenticate(&login, &Options::default(), &mut conv)
    }

    fn reasons(o: &Outcome) -> Vec<String> {
        o.events.iter().map(|e| e.reason.clone()).collect()
    }

    #[test]
    fn each_recovery_code_is_accepted_once_in_any_order() {
        let cfg = Config::default();
        let fx = tans();
        for i in [4, 0, 9] {
            let out = login(&cfg, &fx, &format!("1234{}", fx.codes[i]));
            assert!(out.verdict.is_accept(), "{:?}", out.verdict);
            let out = login(&cfg, &fx, &format!("1234{}", fx.codes[i]));
            assert!(matches!(out.verdict, Verdict::Reject { .. }));
            assert_eq!(reasons(&out), ["recovery code already used"]);
            assert_eq!(out.events[0].kind, "tan");
        }
        let store = SqliteStore::open(&fx.db, 2000).unwrap();
        let t = store.get_token("T1").unwrap();
        assert_eq!(t.counter, 1 << 4 | 1 | 1 << 9);
        assert_eq!(tan::left(10, t.counter), 7);
        // The replays counted as failures; a success clears them.
        assert_eq!(t.fail_count, 1);
        let out = login(&cfg, &fx, &format!("1234{}", fx.codes[1]));
        assert!(out.verdict.is_accept());
        let audit = store.audit_entries(Some("alice"), 100).unwrap();
        assert_eq!(
            audit
                .iter()
                .filter(|e| e.reason == "recovery code already used")
                .count(),
            3
        );
        // No code appears in the audit table.
        for e in &audit {
            assert!(!fx.codes.iter().any(|c| e.reason.contains(c.as_str())));
        }
    }

    #[test]
    fn wrong_codes_and_wrong_pins_are_refused() {
        let cfg = Config::default();
        let fx = tans();
        let mut wrong = fx.codes[0].clone().into_bytes();
        wrong[0] = if wrong[0] == b'9' { b'0' } else { wrong[0] + 1 };
        let wrong = String::from_utf8(wrong).unwrap();
        if !fx.codes.contains(&wrong) {
            let out = login(&cfg, &fx, &format!("1234{wrong}"));
            assert!(matches!(out.verdict, Verdict::Reject { .. }));
            assert_eq!(reasons(&out), ["wrong recovery code"]);
        }
        let out = login(&cfg, &fx, &format!("9999{}", fx.codes[0]));
        assert!(matches!(out.verdict, Verdict::Reject { .. }));
        assert_eq!(reasons(&out), ["wrong PIN or unknown user"]);
        // The code was not spent by those attempts.
        let out = login(&cfg, &fx, &format!("1234{}", fx.codes[0]));
        assert!(out.verdict.is_accept(), "{:?}", out.verdict);
    }

    #[test]
    fn a_pin_alone_opens_no_challenge_unless_configured() {
        let fx = tans();
        let out = login(&Config::default(), &fx, "1234");
        assert!(matches!(out.verdict, Verdict::Reject { .. }));
        assert_eq!(
            reasons(&out),
            ["PIN alone, but this token type does no challenge response"]
        );
        // With tan in challenge_response, the code answers the challenge.
        let mut cfg = Config::default();
        cfg.auth.challenge_response.push("tan".into());
        let store = SqliteStore::open(&fx.db, 5000).unwrap();
        let engine =
            LocalEngine::new(&cfg, &store, &fx.key, &Fixed(1_000_000)).with_accounts(&Alice);
        let login = Login {
            service: "test".into(),
            user: "alice".into(),
            ..Login::default()
        };
        let mut conv = Script(vec!["1234".into(), fx.codes[3].clone()], vec![]);
        let out = engine.authenticate(&login, &Options::default(), &mut conv);
        assert!(out.verdict.is_accept(), "{:?}", out.verdict);
        assert_eq!(
            conv.1,
            ["PIN: ", "Please enter one of your recovery codes: "]
        );
        assert_eq!(tan::left(10, store.get_token("T1").unwrap().counter), 9);
    }

    #[test]
    fn otppin_none_takes_the_code_alone() {
        let mut cfg = Config::default();
        cfg.auth.otppin = OtpPin::None;
        let fx = tans();
        assert!(login(&cfg, &fx, &fx.codes[2]).verdict.is_accept());
        assert!(!login(&cfg, &fx, &fx.codes[2]).verdict.is_accept());
    }

    #[test]
    fn two_logins_at_once_with_one_code_accept_it_once() {
        let cfg = Config::default();
        let fx = tans();
        for round in 0..3 {
            let pass = format!("1234{}", fx.codes[round]);
            let accepted = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|_| s.spawn(|| login(&cfg, &fx, &pass).verdict.is_accept()))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .filter(|a| *a)
                    .count()
            });
            assert_eq!(accepted, 1, "round {round}");
        }
    }

    // ---- e-mail and SMS send limits ----

    /// Records what would have been sent; fails each send while `down` is set.
    #[derive(Default)]
    struct Outbox {
        sent: std::sync::Mutex<Vec<String>>,
        down: std::sync::atomic::AtomicBool,
    }
    impl Courier for Outbox {
        fn send(&self, m: &OutOfBand<'_>) -> Result<()> {
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(Error::Delivery("relay down".into()));
            }
            self.sent.lock().unwrap().push(m.serial.to_string());
            Ok(())
        }
    }
    impl Outbox {
        fn count(&self) -> usize {
            self.sent.lock().unwrap().len()
        }
    }

    struct AliceAndBob;
    impl Accounts for AliceAndBob {
        fn canonical(&self, name: &str) -> Option<String> {
            ["alice", "bob"].contains(&name).then(|| name.to_string())
        }
    }

    /// Records prompts and error messages; answers the PIN, then a wrong OTP.
    #[derive(Default)]
    struct Seen {
        prompts: Vec<String>,
        errors: Vec<String>,
    }
    impl Conversation for Seen {
        fn prompt(&mut self, text: &str, _echo: bool) -> Result<Option<Secret>> {
            self.prompts.push(text.to_string());
            let answer: &[u8] = if self.prompts.len() == 1 {
                b"1234"
            } else {
                b"000000"
            };
            Ok(Some(crate::crypto::secret(answer)))
        }
        fn info(&mut self, _text: &str) -> Result<()> {
            Ok(())
        }
        fn error(&mut self, text: &str) -> Result<()> {
            self.errors.push(text.to_string());
            Ok(())
        }
    }

    struct Senders {
        _dir: tempfile::TempDir,
        db: std::path::PathBuf,
        key: StoreKey,
    }

    /// A store with tokens (serial, user, type), each with PIN 1234.
    fn senders(tokens: &[(&str, &str, TokenType)]) -> Senders {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tessera.db");
        let store = SqliteStore::create(&db, 2000).unwrap();
        let key = StoreKey::generate();
        for (serial, user, kind) in tokens {
            let mut t = TokenRecord::new(serial, user, "default", *kind, key.seal(serial, b""));
            t.pin_hash = Some(hash_pin(b"1234", &key.pepper()).unwrap());
            t.info = serde_json::json!({ "email": "alice@example.org", "phone": "+15551234567" });
            store.insert_token(&t).unwrap();
        }
        Senders { _dir: dir, db, key }
    }

    /// A PIN-only pass of `user` at `now`, then a wrong OTP if a challenge was opened.
    fn pin_only_login(
        cfg: &Config,
        fx: &Senders,
        outbox: &Outbox,
        user: &str,
        now: u64,
    ) -> (Outcome, Seen) {
        let store = SqliteStore::open(&fx.db, 5000).unwrap();
        let clock = Fixed(now);
        let engine = LocalEngine::new(cfg, &store, &fx.key, &clock)
            .with_accounts(&AliceAndBob)
            .with_courier(outbox);
        let login = Login {
            service: "test".into(),
            user: user.into(),
            ..Login::default()
        };
        let mut seen = Seen::default();
        let out = engine.authenticate(&login, &Options::default(), &mut seen);
        (out, seen)
    }

    fn limit(email: u32, sms: u32) -> Config {
        let mut cfg = Config::default();
        cfg.email.max_per_hour = email;
        cfg.sms.max_per_hour = sms;
        cfg
    }

    #[test]
    fn email_sends_stop_at_max_per_hour_for_that_user_only() {
        let cfg = limit(2, 10);
        let fx = senders(&[
            ("E1", "alice", TokenType::Email),
            ("E2", "bob", TokenType::Email),
        ]);
        let outbox = Outbox::default();
        let t0 = 1_000_000;
        for i in 0..2 {
            let (out, seen) = pin_only_login(&cfg, &fx, &outbox, "alice", t0 + i);
            assert!(matches!(out.verdict, Verdict::Reject { .. }));
            assert_eq!(seen.prompts.len(), 2, "the OTP was asked");
            assert!(seen.errors.is_empty());
        }
        assert_eq!(outbox.count(), 2);
        let (out, seen) = pin_only_login(&cfg, &fx, &outbox, "alice", t0 + 2);
        assert_eq!(outbox.count(), 2, "no third mail");
        assert_eq!(seen.prompts, ["PIN: "], "no OTP prompt");
        assert_eq!(seen.errors, [SEND_LIMIT_MESSAGE]);
        let why = "e-mail not sent: 2 sent in the last hour (max_per_hour)";
        assert!(
            matches!(&out.verdict, Verdict::Reject { reason } if reason == why),
            "{:?}",
            out.verdict
        );
        assert_eq!(reasons(&out), [why]);
        assert_eq!(
            (out.events[0].serial.as_str(), out.events[0].result.as_str()),
            ("E1", "reject")
        );
        let store = SqliteStore::open(&fx.db, 2000).unwrap();
        assert_eq!(
            store.get_token("E1").unwrap().fail_count,
            2,
            "the refusal is no failure"
        );
        assert!(store
            .audit_entries(Some("alice"), 100)
            .unwrap()
            .iter()
            .any(|e| e.reason == why));

        // Bob's mails are his own count.
        let (_, seen) = pin_only_login(&cfg, &fx, &outbox, "bob", t0 + 3);
        assert_eq!(seen.prompts.len(), 2);
        assert_eq!(outbox.count(), 3);

        // An hour after the first send, one mail may go again; then the second's hour is not
        // over yet.
        let (_, seen) = pin_only_login(&cfg, &fx, &outbox, "alice", t0 + 3600);
        assert_eq!(seen.prompts.len(), 2);
        assert_eq!(outbox.count(), 4);
        let (_, seen) = pin_only_login(&cfg, &fx, &outbox, "alice", t0 + 3600);
        assert_eq!(seen.errors, [SEND_LIMIT_MESSAGE]);
        assert_eq!(outbox.count(), 4);
    }

    #[test]
    fn the_limit_counts_all_tokens_of_a_type_and_each_type_apart() {
        let cfg = limit(3, 1);
        let fx = senders(&[
            ("E1", "alice", TokenType::Email),
            ("E2", "alice", TokenType::Email),
            ("S1", "alice", TokenType::Sms),
        ]);
        let outbox = Outbox::default();
        // One pass: E1, E2 and S1 each send (3 mails would be 2 + 1 SMS).
        let (_, seen) = pin_only_login(&cfg, &fx, &outbox, "alice", 1000);
        assert_eq!(outbox.count(), 3);
        assert!(seen.errors.is_empty());
        // The next pass: one mail left of three, no SMS left. E1 sends, E2 and S1 don't; the
        // challenge of E1 is still asked.
        let (out, seen) = pin_only_login(&cfg, &fx, &outbox, "alice", 1001);
        assert_eq!(outbox.sent.lock().unwrap()[3..], ["E1".to_string()]);
        assert_eq!(seen.errors, [SEND_LIMIT_MESSAGE], "said once");
        assert_eq!(seen.prompts.len(), 2);
        let r = reasons(&out);
        assert!(
            r.contains(&"e-mail not sent: 3 sent in the last hour (max_per_hour)".to_string()),
            "{r:?}"
        );
        assert!(
            r.contains(&"SMS not sent: 1 sent in the last hour (max_per_hour)".to_string()),
            "{r:?}"
        );
    }

    #[test]
    fn a_failed_delivery_does_not_count_and_zero_is_no_limit() {
        let fx = senders(&[("S1", "alice", TokenType::Sms)]);
        let outbox = Outbox::default();
        let cfg = limit(10, 1);
        outbox.down.store(true, std::sync::atomic::Ordering::SeqCst);
        for now in 0..3 {
            let (out, _) = pin_only_login(&cfg, &fx, &outbox, "alice", 1000 + now);
            assert!(matches!(out.verdict, Verdict::Unavailable(_)));
        }
        outbox
            .down
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let (_, seen) = pin_only_login(&cfg, &fx, &outbox, "alice", 1010);
        assert!(seen.errors.is_empty(), "{:?}", seen.errors);
        assert_eq!(outbox.count(), 1);
        let mut cfg = limit(10, 0);
        cfg.auth.max_fail = 100; // each pass answers a wrong OTP
        for now in 0..15 {
            pin_only_login(&cfg, &fx, &outbox, "alice", 1020 + now);
        }
        assert_eq!(outbox.count(), 16);
    }

    #[test]
    fn logins_at_once_never_send_past_the_limit() {
        let cfg = limit(3, 10);
        let fx = senders(&[("E1", "alice", TokenType::Email)]);
        let outbox = Outbox::default();
        std::thread::scope(|s| {
            for i in 0..8 {
                let (cfg, fx, outbox) = (&cfg, &fx, &outbox);
                s.spawn(move || pin_only_login(cfg, fx, outbox, "alice", 1000 + i));
            }
        });
        assert_eq!(outbox.count(), 3);
    }

    #[test]
    fn a_spass_accept_sends_nothing_and_counts_no_send() {
        let cfg = limit(1, 10);
        // E0 sorts before the spass token: its send was recorded before the spass matched.
        let fx = senders(&[
            ("E0", "alice", TokenType::Email),
            ("P1", "alice", TokenType::Spass),
        ]);
        let outbox = Outbox::default();
        let (out, _) = pin_only_login(&cfg, &fx, &outbox, "alice", 1000);
        assert!(out.verdict.is_accept(), "{:?}", out.verdict);
        assert_eq!(outbox.count(), 0);
        let store = SqliteStore::open(&fx.db, 2000).unwrap();
        let n = store
            .write(|tx| tx.sends_since("alice", "default", "email", 0))
            .unwrap();
        assert_eq!(n, 0);
    }
}
