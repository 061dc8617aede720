//! The PIN half of a pass: which tokens' PINs a pass starts with (each check at the Argon2
//! gate, in the queue of the attempt's source, and at the same cost whatever matched), and the
//! replacement of hashes made with older parameters after a good login.

use super::*;

impl<S: Store, C: Clock> LocalEngine<'_, S, C> {
    /// Compares the pass with each token's PIN: as PIN+OTP (one PIN check), and as the PIN
    /// alone (a second) only where the PIN alone does something (a challenge, `spass`) and
    /// the first did not match. Where it does nothing, a right PIN with a wrong OTP and a
    /// wrong PIN cost the same: time does not tell the PIN. (Where it opens a challenge, the
    /// challenge tells the PIN anyway, as privacyIDEA's does.) A user without tokens pays what
    /// a wrong PIN of one TOTP token costs, so time does not tell an unknown user from a
    /// one-token one; it does show how many tokens a user has, as privacyIDEA's does.
    pub(super) fn match_pin<'t>(
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
    pub(super) fn pin_alone_counts(&self, kind: TokenType) -> bool {
        kind.spec().pin_is_pass || self.does_challenge(kind)
    }

    /// The PIN checks a wrong pass costs on a token of this type.
    pub(super) fn pin_checks_of(&self, kind: TokenType) -> u32 {
        let otp = u32::from(!kind.spec().pin_is_pass);
        otp + u32::from(self.pin_alone_counts(kind))
    }

    /// PIN hashing with this store's pepper, waiting at the gate in the queue of the
    /// attempt's source (`crate::crypto::Gate`).
    pub(super) fn hasher<'h>(&'h self, at: &'h Attempt) -> PinHasher<'h> {
        PinHasher {
            pepper: &self.pepper,
            turn: Turn {
                queue: at.source.as_str(),
                parallel: self.cfg.auth.pin_hashes_at_once(),
            },
        }
    }

    /// Whether `pin` is the PIN of `t`.
    pub(super) fn pin_check(&self, at: &Attempt, t: &TokenRecord, pin: &[u8]) -> PinCheck {
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
    pub(super) fn pin_matches(&self, at: &mut Attempt, t: &TokenRecord, pin: &[u8]) -> bool {
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

    /// Replaces PIN hashes made with older parameters (or before the pepper) after a good
    /// login, unless an admin changed the PIN meanwhile. Best effort: the old hash still works.
    pub(super) fn rehash_pins(&self, at: &Attempt) {
        for o in &at.rehash {
            if let Ok(new) = self.hasher(at).hash(&o.pin) {
                let _ = self
                    .store
                    .write(|tx| tx.replace_pin_hash(&o.serial, &o.hash, &new));
            }
        }
    }
}
