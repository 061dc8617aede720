//! Where a login stands while the local engine decides it ([`Attempt`]): who it is for and
//! where it comes from, its place in the counts, and the audit events said so far (published
//! only once their transaction commits); why a token is passed over; a PIN hash to renew.

use super::*;

/// Where a login stands while it is decided: who, and what was said so far.
pub(super) struct Attempt<'a> {
    pub(super) login: &'a Login,
    /// The account's name (or, for an unknown user, the name as given).
    pub(super) user: String,
    pub(super) realm: String,
    /// The name is an account of this host; an unknown user has no tokens to look up.
    pub(super) known: bool,
    /// PINs that matched an outdated hash: rehashed once the login is accepted.
    pub(super) rehash: Vec<OutdatedPin>,
    /// What happened, as far as it was committed (or, for errors, as far as it was seen).
    pub(super) events: Vec<AuditEntry>,
    /// Events of the store transaction under way: they become events once it commits, and are
    /// dropped if it fails (syslog must not say "accept" of an attempt whose commit failed).
    pub(super) pending: Vec<AuditEntry>,
    /// Checking an earlier module's pass under `try_first_pass`: a pass that matches no PIN
    /// falls through to the prompt without counting a failure.
    pub(super) probing_first_pass: bool,
    /// Where it comes from, as failures are counted ([`Source`]).
    pub(super) source: Source,
    /// The source is the account's own uid (familiar to it whatever the store says).
    pub(super) own_uid: bool,
    /// Its place in the counts of its source and class, taken before anything typed is
    /// compared ([`lockout::take`]), as far as it was committed.
    pub(super) place: Option<Place>,
    /// The place taken in the store transaction under way: its place once that commits.
    pub(super) pending_place: Option<Place>,
    /// Checked in the transaction under way, which compares an OTP itself: counted there if
    /// it refuses ([`lockout::check`]).
    pub(super) open: Option<lockout::Open>,
    /// A refusal that is no guess (a send held back by `max_per_hour`, an OTP that could not
    /// be sent, no pass from an earlier module under `use_first_pass`): its place is given back.
    pub(super) no_failure: bool,
    /// The failures since the user's last success, taken by the accepting transaction: the
    /// user is told of them once the login is in.
    pub(super) missed: Option<Missed>,
}

impl Attempt<'_> {
    /// Who the attempt is for and where it comes from, as its counts are kept.
    pub(super) fn guesser(&self) -> Guesser<'_> {
        Guesser {
            user: &self.user,
            realm: &self.realm,
            source: &self.source,
            known: self.known,
            own_uid: self.own_uid,
        }
    }

    pub(super) fn accept(&mut self, now: u64, token: &TokenRecord, reason: &str) -> AuditEntry {
        self.event(now, Some(token), AuditResult::Accept, reason)
    }

    pub(super) fn reject(
        &mut self,
        now: u64,
        token: Option<&TokenRecord>,
        reason: &str,
    ) -> AuditEntry {
        self.event(now, token, AuditResult::Reject, reason)
    }

    /// An error is told whatever becomes of the transaction it happened in.
    pub(super) fn error(
        &mut self,
        now: u64,
        token: Option<&TokenRecord>,
        reason: &str,
    ) -> AuditEntry {
        let e = self.entry(now, token, AuditResult::Error, reason);
        self.events.push(e.clone());
        e
    }

    /// The events of a store transaction that committed (`true`) or failed.
    pub(super) fn end_transaction(&mut self, committed: bool) {
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
    pub(super) fn placed(&self) -> bool {
        self.place.is_some() || self.pending_place.is_some() || self.open.is_some()
    }

    pub(super) fn challenge(&mut self, now: u64, token: &TokenRecord, reason: &str) -> AuditEntry {
        self.event(now, Some(token), AuditResult::Challenge, reason)
    }

    pub(super) fn passed_over(
        &mut self,
        now: u64,
        token: &TokenRecord,
        why: PassedOver,
    ) -> AuditEntry {
        self.event(now, Some(token), why.result(), why.reason())
    }

    /// An event of the store transaction under way (told once it commits).
    pub(super) fn event(
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
    pub(super) fn entry(
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
pub(super) enum PassedOver {
    Disabled,
    /// Its fail counter reached `max_fail` (and `fail_clear_timeout` has not passed).
    Locked,
}

impl PassedOver {
    /// The reason in the audit row (and the verdict's).
    pub(super) fn reason(self) -> &'static str {
        match self {
            PassedOver::Disabled => "token disabled",
            PassedOver::Locked => "token locked: too many failures",
        }
    }

    pub(super) fn result(self) -> AuditResult {
        match self {
            PassedOver::Locked => AuditResult::Locked,
            PassedOver::Disabled => AuditResult::Reject,
        }
    }
}

/// A PIN that matched a hash with older parameters (or no pepper).
pub(super) struct OutdatedPin {
    pub(super) serial: String,
    /// The stored hash it matched: replaced only if it is still the stored one.
    pub(super) hash: String,
    pub(super) pin: Secret,
}
