//! An attempt's place in the counts (`auth::lockout`), as the local engine takes and settles
//! it: refused before any prompt when its source or class is locked, counted before anything
//! typed is compared, given back by a refusal that was no guess, and the refusal of a locked
//! source or class.

use super::*;

impl<S: Store, C: Clock> LocalEngine<'_, S, C> {
    /// An attempt's place once its verdict is known: given back by a refusal that was no
    /// guess. The net under [`Self::take_place`]: a rejected attempt that took no place (a
    /// path that compared without taking one) takes it now, so that no refusal is a free
    /// guess. A count that can't be written makes the attempt fail (unavailable).
    pub(super) fn place_after_verdict(&self, at: &mut Attempt, v: Verdict) -> Verdict {
        let now = self.clock.now();
        let written = match (&at.place, at.no_failure) {
            (Some(_), true) => self.write(at, |tx, at| match &at.place {
                Some(p) => lockout::give_back(tx, &at.guesser(), p),
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
    pub(super) fn take_place(&self, at: &mut Attempt) -> Result<Option<Verdict>> {
        if at.placed() {
            return Ok(None);
        }
        let now = self.clock.now();
        self.write(at, |tx, at| self.place_in(tx, at, now))
    }

    /// Takes the attempt's place in `tx`, unless it has one; `Some` refuses a locked source or
    /// class.
    pub(super) fn place_in(
        &self,
        tx: &dyn StoreTx,
        at: &mut Attempt,
        now: u64,
    ) -> Result<Option<Verdict>> {
        if at.placed() {
            return Ok(None);
        }
        match lockout::take(tx, &self.cfg.auth, &at.guesser(), now)? {
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
    pub(super) fn check_in(
        &self,
        tx: &dyn StoreTx,
        at: &mut Attempt,
        now: u64,
    ) -> Result<Option<Verdict>> {
        if at.placed() {
            return Ok(None);
        }
        match lockout::check(tx, &self.cfg.auth, &at.guesser(), now)? {
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
    pub(super) fn failed(&self, tx: &dyn StoreTx, at: &mut Attempt, now: u64) -> Result<()> {
        if let Some(open) = at.open.take() {
            at.pending_place = Some(lockout::count(
                tx,
                &self.cfg.auth,
                &at.guesser(),
                &open,
                now,
            )?);
        }
        if at.no_failure || at.probing_first_pass {
            return Ok(());
        }
        lockout::failed(tx, &at.guesser(), now)
    }

    /// In an accepting transaction: the source's count and its class's sum start again, and
    /// the failures since the last success are taken to be told.
    pub(super) fn passed(&self, tx: &dyn StoreTx, at: &mut Attempt, now: u64) -> Result<()> {
        let place = at.place.as_ref().or(at.pending_place.as_ref());
        let class = place.map(|p| p.class).or(at.open.take().map(|o| o.class));
        at.missed = lockout::passed(tx, &self.cfg.auth, &at.guesser(), class, now)?;
        Ok(())
    }

    /// The refusal of a locked source or class, audited in `tx`.
    pub(super) fn refuse_locked(
        &self,
        tx: &dyn StoreTx,
        at: &mut Attempt,
        now: u64,
        lockout: Lockout,
    ) -> Result<Verdict> {
        let why = lockout.reason(&at.source);
        tx.audit(&at.event(now, None, AuditResult::Locked, &why))?;
        lockout::failed(tx, &at.guesser(), now)?;
        Ok(lockout.verdict(&at.source))
    }

    /// Whether this attempt is refused before any prompt: its source or its class of sources
    /// is locked for the user (read before the prompt; [`Self::take_place`] decides again
    /// under the write lock), or with `lock_scope = "token"` every active token of the user is
    /// locked.
    pub(super) fn refused_for_failures(
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
        let class = lockout::class_of(&at.guesser(), &standing);
        if let Some(l) = lockout::lockout(auth, &at.guesser(), &standing, class, now) {
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
}
