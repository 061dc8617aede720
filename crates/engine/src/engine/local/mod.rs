//! The local decision: PIN (+OTP) against the user's tokens, challenges, fail counters.
//!
//! Every step that reads and then changes a token (an OTP check, a fail count, a challenge
//! answer) runs inside one store write transaction that re-reads the token under the lock.

use super::lockout::{self, Lockout, Place, Who};
use super::{
    ask, first_prompt, resolve_user, Accounts, Clock, Conversation, Login, Options, Outcome,
    Source, SystemAccounts, Verdict, MAX_PASS_LEN,
};
use crate::config::{Config, LockScope, OtpPin};
use crate::crypto::{ct_eq, Pepper, PinCheck, PinHasher, Secret, StoreKey, Turn};
use crate::delivery::Courier;
use crate::error::{Error, Kind, Result};
use crate::store::{AuditEntry, AuditResult, ChallengeState, Missed, Store, StoreTx, TokenRecord};
use crate::tokens::{self, CheckContext, Sends, Token, TokenType};

mod challenge;
mod foureyes_pass;

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
    /// What happened, as far as it was committed (or, for errors, as far as it was seen).
    events: Vec<AuditEntry>,
    /// Events of the store transaction under way: they become events once it commits, and are
    /// dropped if it fails (syslog must not say "accept" of an attempt whose commit failed).
    pending: Vec<AuditEntry>,
    /// Checking an earlier module's pass under `try_first_pass`: a pass that matches no PIN
    /// falls through to the prompt without counting a failure.
    probing_first_pass: bool,
    /// Where it comes from, as failures are counted ([`Source`]).
    source: Source,
    /// The source is the account's own uid (familiar to it whatever the store says).
    own_uid: bool,
    /// Its place in the counts of its source and class, taken before anything typed is
    /// compared ([`lockout::take`]), as far as it was committed.
    place: Option<Place>,
    /// The place taken in the store transaction under way: its place once that commits.
    pending_place: Option<Place>,
    /// Checked in the transaction under way, which compares an OTP itself: counted there if
    /// it refuses ([`lockout::check`]).
    open: Option<lockout::Open>,
    /// A refusal that is no guess (a send held back by `max_per_hour`, an OTP that could not
    /// be sent, no pass from an earlier module under `use_first_pass`): its place is given back.
    no_failure: bool,
    /// The failures since the user's last success, taken by the accepting transaction: the
    /// user is told of them once the login is in.
    missed: Option<Missed>,
}

impl Attempt<'_> {
    /// Who the attempt is for and where it comes from, as its counts are kept.
    fn who(&self) -> Who<'_> {
        Who {
            user: &self.user,
            realm: &self.realm,
            source: &self.source,
            known: self.known,
            own_uid: self.own_uid,
        }
    }

    fn accept(&mut self, now: u64, token: &TokenRecord, reason: &str) -> AuditEntry {
        self.event(now, Some(token), AuditResult::Accept, reason)
    }

    fn reject(&mut self, now: u64, token: Option<&TokenRecord>, reason: &str) -> AuditEntry {
        self.event(now, token, AuditResult::Reject, reason)
    }

    /// An error is told whatever becomes of the transaction it happened in.
    fn error(&mut self, now: u64, token: Option<&TokenRecord>, reason: &str) -> AuditEntry {
        let e = self.entry(now, token, AuditResult::Error, reason);
        self.events.push(e.clone());
        e
    }

    /// The events of a store transaction that committed (`true`) or failed.
    fn settle(&mut self, committed: bool) {
        if committed {
            self.events.append(&mut self.pending);
            if let Some(p) = self.pending_place.take() {
                self.place = Some(p);
            }
        } else {
            self.pending.clear();
            self.pending_place = None;
        }
        self.open = None;
    }

    /// Whether it holds a place (committed, or in the transaction under way), or was let in
    /// by the transaction under way to be counted there.
    fn placed(&self) -> bool {
        self.place.is_some() || self.pending_place.is_some() || self.open.is_some()
    }

    fn challenge(&mut self, now: u64, token: &TokenRecord, reason: &str) -> AuditEntry {
        self.event(now, Some(token), AuditResult::Challenge, reason)
    }

    fn passed_over(&mut self, now: u64, token: &TokenRecord, why: PassedOver) -> AuditEntry {
        self.event(now, Some(token), why.result(), why.reason())
    }

    /// An event of the store transaction under way (told once it commits).
    fn event(
        &mut self,
        now: u64,
        token: Option<&TokenRecord>,
        result: AuditResult,
        reason: &str,
    ) -> AuditEntry {
        let e = self.entry(now, token, result, reason);
        self.pending.push(e.clone());
        e
    }

    /// The audit row of this attempt's step.
    fn entry(
        &self,
        now: u64,
        token: Option<&TokenRecord>,
        result: AuditResult,
        reason: &str,
    ) -> AuditEntry {
        AuditEntry {
            time: now,
            service: self.login.service.clone(),
            rhost: self.login.rhost.clone(),
            user: self.user.clone(),
            realm: self.realm.clone(),
            serial: token.map(|t| t.serial.clone()).unwrap_or_default(),
            kind: token.map(|t| t.kind.name().to_string()).unwrap_or_default(),
            result,
            reason: reason.into(),
            caller: Some(self.login.caller),
            source: self.source.to_string(),
            ruser: self.login.ruser.clone(),
        }
    }
}

/// Why a token is passed over before its OTP (or its PIN alone) is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PassedOver {
    Disabled,
    /// Its fail counter reached `max_fail` (and `fail_clear_timeout` has not passed).
    Locked,
}

impl PassedOver {
    /// The reason in the audit row (and the verdict's).
    fn reason(self) -> &'static str {
        match self {
            PassedOver::Disabled => "token disabled",
            PassedOver::Locked => "token locked: too many failures",
        }
    }

    fn result(self) -> AuditResult {
        match self {
            PassedOver::Locked => AuditResult::Locked,
            PassedOver::Disabled => AuditResult::Reject,
        }
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

    pub fn authenticate(
        &self,
        login: &Login,
        opts: &Options,
        conv: &mut impl Conversation,
    ) -> Outcome {
        let mut at = self.attempt(login);
        let verdict = match self.run(&mut at, opts, conv) {
            Ok(v) => self.settle_place(&mut at, v),
            Err(Error::Conversation(m)) => {
                let e = at.error(self.clock.now(), None, &format!("conversation: {m}"));
                self.audit_error(&e);
                Verdict::ConversationFailed(m)
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
                let _ = conv.info(&super::missed_message(m));
            }
        }
        if let Some(told) = verdict.locked_message(self.clock.now()) {
            let _ = conv.error(&told);
        }
        at.settle(false);
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
        at.settle(r.is_ok());
        r
    }

    /// An attempt's place once its verdict is known: given back by a refusal that was no
    /// guess. The net under [`Self::take_place`]: a rejected attempt that took no place (a
    /// path that compared without taking one) takes it now, so that no refusal is a free
    /// guess. A count that can't be written makes the attempt fail (unavailable).
    fn settle_place(&self, at: &mut Attempt, v: Verdict) -> Verdict {
        let now = self.clock.now();
        let written = match (&at.place, at.no_failure) {
            (Some(_), true) => self.write(at, |tx, at| match &at.place {
                Some(p) => lockout::give_back(tx, &at.who(), p),
                None => Ok(()),
            }),
            (None, false) if matches!(v, Verdict::Reject { .. }) && !at.probing_first_pass => {
                self.take_place(at).map(drop)
            }
            _ => Ok(()),
        };
        match written {
            Ok(()) => v,
            Err(e) => {
                at.error(now, None, &format!("the failure could not be counted: {e}"));
                Verdict::Unavailable(e)
            }
        }
    }

    /// Takes the attempt's place in the counts of its source and class in a transaction of
    /// its own, committed before a PIN is compared (PIN hashes run outside any transaction);
    /// or refuses a locked source or class, whatever was typed. (A login takes one place,
    /// however many passes it compares.)
    fn take_place(&self, at: &mut Attempt) -> Result<Option<Verdict>> {
        if at.placed() {
            return Ok(None);
        }
        let now = self.clock.now();
        self.write(at, |tx, at| self.place_in(tx, at, now))
    }

    /// Takes the attempt's place in `tx`, unless it has one; `Some` refuses a locked source or
    /// class.
    fn place_in(&self, tx: &dyn StoreTx, at: &mut Attempt, now: u64) -> Result<Option<Verdict>> {
        if at.placed() {
            return Ok(None);
        }
        match lockout::take(tx, &self.cfg.auth, &at.who(), now)? {
            Ok(place) => {
                at.pending_place = Some(place);
                Ok(None)
            }
            Err(l) => self.refuse_locked(tx, at, now, l).map(Some),
        }
    }

    /// In the transaction that checks an OTP (the first thing this attempt compares, with
    /// `otppin` none or system, or outside a PAM conversation): refuses a locked source or
    /// class; else the attempt is counted there if that transaction refuses it
    /// ([`Self::failed`]). Its place and its verdict are one commit, so nothing can come
    /// between them, and an accept writes no counts.
    fn check_in(&self, tx: &dyn StoreTx, at: &mut Attempt, now: u64) -> Result<Option<Verdict>> {
        if at.placed() {
            return Ok(None);
        }
        match lockout::check(tx, &self.cfg.auth, &at.who(), now)? {
            Ok(open) => {
                at.open = Some(open);
                Ok(None)
            }
            Err(l) => self.refuse_locked(tx, at, now, l).map(Some),
        }
    }

    /// In a refusing transaction: counts the attempt where the transaction let it in
    /// ([`Self::check_in`]), and notes the failure for the user's next success. (An attempt
    /// that took its place before has its counts already.)
    fn failed(&self, tx: &dyn StoreTx, at: &mut Attempt, now: u64) -> Result<()> {
        if let Some(open) = at.open.take() {
            at.pending_place = Some(lockout::count(tx, &self.cfg.auth, &at.who(), &open, now)?);
        }
        if at.no_failure || at.probing_first_pass {
            return Ok(());
        }
        lockout::failed(tx, &at.who(), now)
    }

    /// In an accepting transaction: the source's count and its class's sum start again, and
    /// the failures since the last success are taken to be told.
    fn passed(&self, tx: &dyn StoreTx, at: &mut Attempt, now: u64) -> Result<()> {
        let place = at.place.as_ref().or(at.pending_place.as_ref());
        let class = place.map(|p| p.class).or(at.open.take().map(|o| o.class));
        at.missed = lockout::passed(tx, &self.cfg.auth, &at.who(), class, now)?;
        Ok(())
    }

    /// The refusal of a locked source or class, audited in `tx`.
    fn refuse_locked(
        &self,
        tx: &dyn StoreTx,
        at: &mut Attempt,
        now: u64,
        lockout: Lockout,
    ) -> Result<Verdict> {
        let why = lockout.reason(&at.source);
        tx.audit(&at.event(now, None, AuditResult::Locked, &why))?;
        lockout::failed(tx, &at.who(), now)?;
        Ok(match lockout {
            Lockout::Source { opens_at, .. } => Verdict::SourceLocked {
                source: at.source.to_string(),
                opens_at,
            },
            Lockout::Class {
                class, opens_at, ..
            } => Verdict::ClassLocked { class, opens_at },
        })
    }

    /// Whether this attempt is refused before any prompt: its source or its class of sources
    /// is locked for the user (read before the prompt; [`Self::take_place`] decides again
    /// under the write lock), or with `lock_scope = "token"` every active token of the user is
    /// locked.
    fn refused_for_failures(
        &self,
        at: &mut Attempt,
        tokens: &[TokenRecord],
        now: u64,
    ) -> Result<Option<Verdict>> {
        let auth = &self.cfg.auth;
        let since = lockout::familiar_since(auth, now);
        let standing = self
            .store
            .standing(&at.user, &at.realm, at.source.as_str(), since)?;
        let class = lockout::class_of(&at.who(), &standing);
        if let Some(l) = lockout::lockout(auth, &at.who(), &standing, class, now) {
            return self
                .write(at, |tx, at| self.refuse_locked(tx, at, now, l))
                .map(Some);
        }
        if auth.lock_scope == LockScope::Token {
            let active: Vec<&TokenRecord> = tokens.iter().filter(|t| t.active).collect();
            let locked = |t: &&TokenRecord| auth.locks(t.fail_count, t.last_fail, now);
            if active.is_empty() || !active.iter().all(locked) {
                return Ok(None);
            }
            let first = active[0];
            self.write(at, |tx, at| {
                tx.audit(&at.passed_over(now, first, PassedOver::Locked))
            })?;
            return Ok(Some(Verdict::Locked {
                serial: first.serial.clone(),
            }));
        }
        Ok(None)
    }

    /// Replaces PIN hashes made with older parameters (or before the pepper) after a good
    /// login, unless an admin changed the PIN meanwhile. Best effort: the old hash still works.
    fn rehash_pins(&self, at: &Attempt) {
        for o in &at.rehash {
            if let Ok(new) = self.hasher(at).hash(&o.pin) {
                let _ = self
                    .store
                    .write(|tx| tx.replace_pin_hash(&o.serial, &o.hash, &new));
            }
        }
    }

    /// Whether `pin` is the PIN of `t`.
    fn pin_check(&self, at: &Attempt, t: &TokenRecord, pin: &[u8]) -> PinCheck {
        let hasher = self.hasher(at);
        match &t.pin_hash {
            Some(h) => hasher.check(pin, h),
            // A token without a PIN: the pass is the OTP alone. The check is still paid, so
            // timing does not tell a PIN-less token from one with a PIN.
            None => {
                hasher.burn(pin);
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
        let check = self.pin_check(at, t, pin);
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

    /// Compares the pass with each token's PIN: as PIN+OTP (one PIN check), and as the PIN
    /// alone (a second) only where the PIN alone does something (a challenge, `spass`) and
    /// the first did not match. Where it does nothing, a right PIN with a wrong OTP and a
    /// wrong PIN cost the same: time does not tell the PIN. (Where it opens a challenge, the
    /// challenge tells the PIN anyway, as privacyIDEA's does.) A user without tokens pays what
    /// a wrong PIN of one TOTP token costs, so time does not tell an unknown user from a
    /// one-token one; it does show how many tokens a user has, as privacyIDEA's does.
    fn match_pin<'t>(
        &self,
        at: &mut Attempt,
        tokens: &'t [TokenRecord],
        pass: &[u8],
    ) -> PassMatch<'t> {
        if tokens.is_empty() {
            for _ in 0..self.pin_checks_of(TokenType::Totp) {
                self.hasher(at).burn(pass);
            }
            return PassMatch::Nothing;
        }
        let mut with_otp = Vec::new();
        let mut pin_only = Vec::new();
        for t in tokens {
            if t.kind.spec().pass_of_others {
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
                    let row = at.error(self.clock.now(), Some(t), &why);
                    self.audit_error(&row);
                    for _ in 0..self.pin_checks_of(t.kind) {
                        self.hasher(at).burn(pass);
                    }
                    continue;
                }
            };
            let n = logic.otp_len();
            if n > 0 {
                if pass.len() >= n {
                    let (pin, tail) = pass.split_at(pass.len() - n);
                    if self.pin_matches(at, t, pin) {
                        with_otp.push((t, crate::crypto::secret(tail)));
                        continue;
                    }
                } else {
                    // A short pass costs what a long one does.
                    self.hasher(at).burn(pass);
                }
            }
            if self.pin_alone_counts(t.kind) && self.pin_matches(at, t, pass) {
                pin_only.push(t);
            }
        }
        match (with_otp.is_empty(), pin_only.is_empty()) {
            (false, _) => PassMatch::Otp(with_otp),
            (true, false) => PassMatch::PinOnly(pin_only),
            (true, true) => PassMatch::Nothing,
        }
    }

    /// Whether the PIN alone does something for a token of this type: opens a challenge, or
    /// is its whole pass (`spass`).
    fn pin_alone_counts(&self, kind: TokenType) -> bool {
        kind.spec().pin_is_pass || self.does_challenge(kind)
    }

    /// The PIN checks a wrong pass costs on a token of this type.
    fn pin_checks_of(&self, kind: TokenType) -> u32 {
        let otp = u32::from(!kind.spec().pin_is_pass);
        otp + u32::from(self.pin_alone_counts(kind))
    }

    /// PIN hashing with this store's pepper, waiting at the gate in the queue of the
    /// attempt's source (`crate::crypto::Gate`).
    fn hasher<'h>(&'h self, at: &'h Attempt) -> PinHasher<'h> {
        PinHasher {
            pepper: &self.pepper,
            turn: Turn {
                queue: at.source.as_str(),
                parallel: self.cfg.auth.pin_hashes_at_once(),
            },
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
            Ok(v) => self.settle_place(&mut at, v),
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
mod tests {
    use super::*;
    use crate::crypto::hash_pin;
    use crate::delivery::OutOfBand;
    use crate::engine::{Login, Options, Verdict};
    use crate::store::SqliteStore;
    use crate::testing::{FixedClock, ScriptedConv};
    use crate::tokens::tan;

    struct Alice;
    impl Accounts for Alice {
        fn canonical(&self, name: &str) -> Option<String> {
            (name == "alice").then(|| name.to_string())
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
        t.info.count = Some(10);
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
        let clock = FixedClock::at(1_000_000);
        let engine = LocalEngine::new(cfg, &store, &fx.key, &clock).with_accounts(&Alice);
        let login = Login {
            service: "test".into(),
            user: "alice".into(),
            ..Login::default()
        };
        let mut conv = ScriptedConv::passes(&[pass]);
        engine.authenticate(&login, &Options::default(), &mut conv)
    }

    fn reasons(o: &Outcome) -> Vec<String> {
        o.events.iter().map(|e| e.reason.clone()).collect()
    }

    /// The RFC 4226 key's HOTP (and, for TOTP, RFC 6238's SHA-1 key: the same bytes).
    const RFC_KEY: &[u8] = b"12345678901234567890";

    /// A store with alice's token `serial` of `kind` on the RFC key (PIN 1234, 6 digits),
    /// and a login through it at the clock's time.
    struct Timed {
        _dir: tempfile::TempDir,
        store: SqliteStore,
        key: StoreKey,
        clock: FixedClock,
        cfg: Config,
    }

    impl Timed {
        fn new(kind: TokenType, cfg: Config, now: u64) -> Timed {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::create(&dir.path().join("tessera.db"), 2000).unwrap();
            let key = StoreKey::generate();
            let mut t = TokenRecord::new("K1", "alice", "default", kind, key.seal("K1", RFC_KEY));
            t.pin_hash = Some(hash_pin(b"1234", &key.pepper()).unwrap());
            store.insert_token(&t).unwrap();
            Timed {
                _dir: dir,
                store,
                key,
                clock: FixedClock::at(now),
                cfg,
            }
        }

        fn login(&self, conv: &mut impl Conversation) -> Outcome {
            self.login_from("", 0, conv)
        }

        /// A login from remote host `rhost`, asked for by uid `caller`.
        fn login_from(&self, rhost: &str, caller: u32, conv: &mut impl Conversation) -> Outcome {
            let login = Login {
                service: "test".into(),
                user: "alice".into(),
                rhost: rhost.into(),
                caller,
                ..Login::default()
            };
            LocalEngine::new(&self.cfg, &self.store, &self.key, &self.clock)
                .with_accounts(&Alice)
                .authenticate(&login, &Options::default(), conv)
        }

        fn pass(&self, pass: &str) -> Outcome {
            self.login(&mut ScriptedConv::passes(&[pass]))
        }

        fn pass_from(&self, rhost: &str, caller: u32, pass: &str) -> Outcome {
            self.login_from(rhost, caller, &mut ScriptedConv::passes(&[pass]))
        }

        /// A login that must be refused before any prompt.
        fn refused_unasked(&self) -> Outcome {
            self.refused_unasked_from("", 0)
        }

        fn refused_unasked_from(&self, rhost: &str, caller: u32) -> Outcome {
            let mut conv = ScriptedConv::passes(&["1234000000"]).unasked_ok();
            let out = self.login_from(rhost, caller, &mut conv);
            assert!(conv.prompts.is_empty(), "prompted: {:?}", conv.prompts);
            out
        }
    }

    fn hotp(counter: u64) -> String {
        String::from_utf8(tokens::hotp_code(tokens::Algorithm::Sha1, RFC_KEY, counter, 6).to_vec())
            .unwrap()
    }

    /// (Moved from tests/pam_failures.rs, where it slept 3.1 s of real time.)
    /// `lock_scope = "token"`: a token whose every token is locked is refused before any
    /// prompt, whatever would have been typed.
    #[test]
    fn a_lock_clears_after_fail_clear_timeout() {
        let mut cfg = Config::default();
        cfg.auth.max_fail = 2;
        cfg.auth.fail_clear_timeout = 2;
        cfg.auth.lock_scope = LockScope::Token;
        let fx = Timed::new(TokenType::Hotp, cfg, 1_000_000);
        for _ in 0..2 {
            assert!(matches!(
                fx.pass("1234000000").verdict,
                Verdict::Reject { .. }
            ));
        }
        let locked = fx.refused_unasked();
        assert!(
            matches!(locked.verdict, Verdict::Locked { .. }),
            "{locked:?}"
        );
        // One second after the last failure the lock still holds; two seconds after, it clears.
        fx.clock.advance(1);
        assert!(matches!(
            fx.refused_unasked().verdict,
            Verdict::Locked { .. }
        ));
        fx.clock.advance(1);
        let out = fx.pass(&format!("1234{}", hotp(0)));
        assert!(out.verdict.is_accept(), "{out:?}");
        assert_eq!(fx.store.get_token("K1").unwrap().fail_count, 0);
    }

    /// `lock_scope = "source"` (the default): a stranger's failures lock the stranger's source,
    /// before any prompt and whatever it would type, while the owner from elsewhere logs in;
    /// `fail_clear_timeout` opens the source again.
    #[test]
    fn a_strangers_failures_lock_the_stranger_not_the_owner() {
        let mut cfg = Config::default();
        cfg.auth.max_fail = 3;
        cfg.auth.fail_clear_timeout = 600;
        let fx = Timed::new(TokenType::Hotp, cfg, 1_000_000);
        let stranger = "203.0.113.9";
        for _ in 0..3 {
            let out = fx.pass_from(stranger, 0, "1234000000");
            assert!(matches!(out.verdict, Verdict::Reject { .. }), "{out:?}");
        }
        let out = fx.refused_unasked_from(stranger, 0);
        assert!(
            matches!(out.verdict, Verdict::SourceLocked { ref source, .. } if source == "rhost=203.0.113.9"),
            "{out:?}"
        );
        assert_eq!(out.events[0].result, AuditResult::Locked);
        // The owner, from another host: the right code logs in, and was not used up above.
        let owner = fx.pass_from("192.0.2.1", 0, &format!("1234{}", hotp(0)));
        assert!(owner.verdict.is_accept(), "{owner:?}");
        // The token's own counter counted the stranger's failures, but locks nothing.
        assert_eq!(fx.store.source_failures_of(Some("alice")).unwrap().len(), 1);
        // Still locked 599 s on, open at 600 s; then the right code passes from there too.
        fx.clock.advance(599);
        assert!(matches!(
            fx.refused_unasked_from(stranger, 0).verdict,
            Verdict::SourceLocked { .. }
        ));
        fx.clock.advance(1);
        let out = fx.pass_from(stranger, 0, &format!("1234{}", hotp(1)));
        assert!(out.verdict.is_accept(), "{out:?}");
        assert!(fx
            .store
            .source_failures_of(Some("alice"))
            .unwrap()
            .is_empty());
    }

    /// The check before the prompt is made outside any transaction: a failure of another login
    /// from the same source that lands while this one types must still stop it. The pass takes
    /// its place under the write lock, so `max_fail` guesses at once are `max_fail` guesses.
    #[test]
    fn a_source_locked_while_the_user_typed_refuses_the_right_code() {
        let mut cfg = Config::default();
        cfg.auth.max_fail = 3;
        let fx = Timed::new(TokenType::Hotp, cfg, 1_000_000);
        for _ in 0..2 {
            fx.pass_from("203.0.113.9", 0, "1234000000");
        }
        // Another login from the same host fails while this one waits at its prompt.
        struct Racing<'a>(&'a Timed, ScriptedConv);
        impl Conversation for Racing<'_> {
            fn prompt(&mut self, text: &str, echo: bool) -> Result<Option<Secret>> {
                self.0
                    .store
                    .write(|tx| {
                        tx.record_source_failure(
                            "alice",
                            "default",
                            "rhost=203.0.113.9",
                            1_000_000,
                            3,
                        )
                    })
                    .unwrap();
                self.1.prompt(text, echo)
            }
            fn info(&mut self, text: &str) -> Result<()> {
                self.1.info(text)
            }
            fn error(&mut self, text: &str) -> Result<()> {
                self.1.error(text)
            }
        }
        let right = format!("1234{}", hotp(0));
        let mut conv = Racing(&fx, ScriptedConv::passes(&[&right]));
        let out = fx.login_from("203.0.113.9", 0, &mut conv);
        assert!(
            matches!(out.verdict, Verdict::SourceLocked { .. }),
            "{out:?}"
        );
        // The code was not used up: the owner takes it from elsewhere.
        let owner = fx.pass_from("192.0.2.1", 0, &right);
        assert!(owner.verdict.is_accept(), "{owner:?}");
        // Each refusal counted in its own transaction: 2 + 1, and the locked one adds none.
        let rows = fx.store.source_failures_of(Some("alice")).unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].count, 3, "{rows:?}");
    }

    /// buy fresh tries by naming new hosts.
    #[test]
    fn a_non_root_caller_is_counted_on_its_uid_whatever_host_it_names() {
        let mut cfg = Config::default();
        cfg.auth.max_fail = 2;
        let fx = Timed::new(TokenType::Hotp, cfg, 1_000_000);
        fx.pass_from("198.51.100.1", 1000, "1234000000");
        fx.pass_from("198.51.100.2", 1000, "1234000000");
        let out = fx.refused_unasked_from("198.51.100.3", 1000);
        assert!(
            matches!(out.verdict, Verdict::SourceLocked { ref source, .. } if source == "uid=1000"),
            "{out:?}"
        );
        // Root's sshd for the same host is another source.
        let out = fx.pass_from("198.51.100.3", 0, &format!("1234{}", hotp(0)));
        assert!(out.verdict.is_accept(), "{out:?}");
    }

    /// With `lock_scope = "token"`, a locked token among others answers a right PIN as it
    /// answers a wrong one: no PIN oracle on a locked token.
    #[test]
    fn a_locked_token_answers_a_right_pin_as_a_wrong_one() {
        let mut cfg = Config::default();
        cfg.auth.max_fail = 2;
        cfg.auth.lock_scope = LockScope::Token;
        let fx = Timed::new(TokenType::Hotp, cfg, 1_000_000);
        // A second token with another PIN keeps the user from being all locked.
        let mut t2 = TokenRecord::new(
            "K2",
            "alice",
            "default",
            TokenType::Hotp,
            fx.key.seal("K2", RFC_KEY),
        );
        t2.pin_hash = Some(hash_pin(b"9999", &fx.key.pepper()).unwrap());
        fx.store.insert_token(&t2).unwrap();
        fx.store
            .write(|tx| {
                tx.record_failure("K1", 1_000_000)?;
                tx.record_failure("K1", 1_000_000)
            })
            .unwrap();
        let right = fx.pass(&format!("1234{}", hotp(0)));
        let wrong = fx.pass("5555000000");
        assert!(matches!(right.verdict, Verdict::Reject { .. }), "{right:?}");
        assert!(matches!(wrong.verdict, Verdict::Reject { .. }), "{wrong:?}");
        // The audit row still says why.
        assert!(right.events.iter().any(|e| e.result == AuditResult::Locked));
    }

    /// An event is told (syslog) only once its transaction committed: an accept whose audit
    /// row can't be written is no "accept" line, but an error.
    #[test]
    fn an_accept_whose_commit_fails_is_not_told_as_an_accept() {
        let fx = Timed::new(TokenType::Hotp, Config::default(), 1_000_000);
        let conn = rusqlite::Connection::open(fx.store.path()).unwrap();
        conn.execute_batch(
            "CREATE TRIGGER no_accept BEFORE INSERT ON audit WHEN NEW.result = 'accept' \
             BEGIN SELECT RAISE(ABORT, 'disk I/O error (injected)'); END;",
        )
        .unwrap();
        let out = fx.pass(&format!("1234{}", hotp(0)));
        assert!(matches!(out.verdict, Verdict::Unavailable(_)), "{out:?}");
        assert!(
            out.events.iter().all(|e| e.result != AuditResult::Accept),
            "{:?}",
            out.events
        );
        assert!(out.events.iter().any(|e| e.result == AuditResult::Error));
        // Nothing was committed: the code is still good once the fault is gone.
        conn.execute_batch("DROP TRIGGER no_accept").unwrap();
        assert!(fx.pass(&format!("1234{}", hotp(0))).verdict.is_accept());
    }

    #[test]
    fn a_challenge_answered_after_its_validity_is_refused_and_closed() {
        let mut cfg = Config::default();
        cfg.auth.challenge_response.push("hotp".into());
        cfg.auth.challenge_validity = 60;
        let fx = Timed::new(TokenType::Hotp, cfg, 1_000_000);
        // The answer comes 61 s after the challenge opened: the clock moves while the user types.
        struct Slow<'a>(&'a FixedClock, ScriptedConv);
        impl Conversation for Slow<'_> {
            fn prompt(&mut self, text: &str, echo: bool) -> Result<Option<Secret>> {
                if !self.1.prompts.is_empty() {
                    self.0.advance(61);
                }
                self.1.prompt(text, echo)
            }
            fn info(&mut self, text: &str) -> Result<()> {
                self.1.info(text)
            }
            fn error(&mut self, text: &str) -> Result<()> {
                self.1.error(text)
            }
        }
        let h0 = hotp(0);
        let mut slow = Slow(&fx.clock, ScriptedConv::passes(&["1234", &h0]));
        let out = fx.login(&mut slow);
        assert!(
            matches!(out.verdict, Verdict::Reject { ref reason } if reason == "challenge expired"),
            "{out:?}"
        );
        let rows = fx.store.list_challenges(true).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, ChallengeState::Expired);
        // Refused before any check: the code was not used up.
        assert!(fx.pass(&format!("1234{h0}")).verdict.is_accept());
    }

    #[test]
    fn a_totp_code_is_good_in_its_step_and_the_window_and_once() {
        // RFC 6238: at 59 s (step 1) the SHA-1 key's 8-digit code is 94287082; 6 digits: 287082.
        let fx = Timed::new(TokenType::Totp, Config::default(), 59);
        assert_eq!(hotp(1), "287082");
        assert!(fx.pass("1234287082").verdict.is_accept());
        assert!(!fx.pass("1234287082").verdict.is_accept(), "once");
        // At 60 s, step 2: its code is good (the used step 1 stays used).
        fx.clock.advance(1);
        assert!(fx.pass(&format!("1234{}", hotp(2))).verdict.is_accept());
        // Five steps on (step 7), step 3's code is out of the window.
        fx.clock.advance(150);
        assert!(!fx.pass(&format!("1234{}", hotp(3))).verdict.is_accept());
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
        // The PIN alone does nothing for a tan token here: it is not even compared (a right
        // PIN then costs what a wrong one does), and is refused as a wrong pass.
        let before = crate::crypto::pin_checks();
        let out = login(&Config::default(), &fx, "1234");
        assert!(matches!(out.verdict, Verdict::Reject { .. }));
        assert_eq!(reasons(&out), ["wrong PIN or unknown user"]);
        assert_eq!(crate::crypto::pin_checks() - before, 1);
        // With tan in challenge_response, the code answers the challenge.
        let mut cfg = Config::default();
        cfg.auth.challenge_response.push("tan".into());
        let store = SqliteStore::open(&fx.db, 5000).unwrap();
        let clock = FixedClock::at(1_000_000);
        let engine = LocalEngine::new(&cfg, &store, &fx.key, &clock).with_accounts(&Alice);
        let login = Login {
            service: "test".into(),
            user: "alice".into(),
            ..Login::default()
        };
        let mut conv = ScriptedConv::passes(&["1234", &fx.codes[3]]);
        let out = engine.authenticate(&login, &Options::default(), &mut conv);
        assert!(out.verdict.is_accept(), "{:?}", out.verdict);
        assert_eq!(
            conv.prompts,
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
            t.info.email = Some("alice@example.org".into());
            t.info.phone = Some("+15551234567".into());
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
    ) -> (Outcome, ScriptedConv) {
        let store = SqliteStore::open(&fx.db, 5000).unwrap();
        let clock = FixedClock::at(now);
        let engine = LocalEngine::new(cfg, &store, &fx.key, &clock)
            .with_accounts(&AliceAndBob)
            .with_courier(outbox);
        let login = Login {
            service: "test".into(),
            user: user.into(),
            ..Login::default()
        };
        // The PIN, then a wrong OTP if a challenge was opened.
        let mut seen = ScriptedConv::passes(&["1234", "000000"]).unasked_ok();
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
