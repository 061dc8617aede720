//! TOTP (RFC 6238): HOTP over the time step; each step is accepted once, because the stored
//! counter is the next step allowed.

use super::{
    hotp_code, is_digits, Algorithm, CheckContext, Token, PASSED_OVER_AHEAD, REPLAYED, WRONG,
};
use crate::crypto::ct_eq;

pub struct Totp {
    pub digits: u32,
    pub algorithm: Algorithm,
    pub period: u64,
    pub drift: i64,
}

impl Totp {
    fn step_now(&self, now: u64) -> i64 {
        (now / self.period) as i64 + self.drift
    }
}

impl Token for Totp {
    fn otp_len(&self) -> usize {
        self.digits as usize
    }

    fn check(&self, key: &[u8], otp: &[u8], counter: u64, ctx: &CheckContext) -> Option<u64> {
        if !is_digits(otp, self.digits) {
            return None;
        }
        let now = self.step_now(ctx.now);
        let w = ctx.totp_window as i64;
        let mut found = None;
        for step in (now - w)..=(now + w) {
            if step < 0 {
                continue;
            }
            let matches = ct_eq(
                &hotp_code(self.algorithm, key, step as u64, self.digits),
                otp,
            );
            if matches && step as u64 >= counter && found.is_none() {
                found = Some(step as u64 + 1);
            }
        }
        found
    }

    /// A code of a step in the window below the stored counter (the last used step plus one):
    /// the last used step's is a replay; an earlier one was passed over, and when the step used
    /// is ahead of this host's clock that is said (a device with a fast clock), since every
    /// current code is refused until the clock gets there.
    fn refusal_reason(
        &self,
        key: &[u8],
        otp: &[u8],
        counter: u64,
        ctx: &CheckContext,
    ) -> Option<&'static str> {
        let now = self.step_now(ctx.now);
        let w = ctx.totp_window as i64;
        let step = ((now - w)..=(now + w))
            .filter(|s| *s >= 0 && (*s as u64) < counter)
            .find(|s| ct_eq(&hotp_code(self.algorithm, key, *s as u64, self.digits), otp));
        let last_used = counter.checked_sub(1);
        Some(match step {
            None => WRONG,
            Some(s) if Some(s as u64) != last_used && last_used > Some(now.max(0) as u64) => {
                PASSED_OVER_AHEAD
            }
            Some(_) => REPLAYED,
        })
    }

    fn resync(
        &self,
        key: &[u8],
        otp1: &[u8],
        otp2: &[u8],
        _counter: u64,
        ctx: &CheckContext,
    ) -> Option<(u64, i64)> {
        // Up to a day either way, like privacyIDEA's default sync window.
        let span = (86_400 / self.period) as i64;
        let base = (ctx.now / self.period) as i64;
        ((base - span)..=(base + span))
            .filter(|s| *s >= 0)
            .find_map(|s| {
                let a = ct_eq(&hotp_code(self.algorithm, key, s as u64, self.digits), otp1);
                let b = ct_eq(
                    &hotp_code(self.algorithm, key, s as u64 + 1, self.digits),
                    otp2,
                );
                (a && b).then_some((s as u64 + 2, s + 1 - base))
            })
    }
}

pub(super) const SPEC: super::Spec = super::Spec {
    name: "totp",
    always_challenges: false,
    pin_is_pass: false,
    pass_of_others: false,
    four_eyes_member: true,
    starts_enrollment: false,
    sends: None,
    prompt: super::spec::ChallengePrompt::Totp,
    add_options: &["--key", "--genkey", "--digits", "--algorithm", "--period"],
    add_required: &[],
    logic: |p| {
        Ok(Box::new(Totp {
            digits: p.digits,
            algorithm: p.algorithm,
            period: p.period,
            drift: p.drift,
        }))
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(now: u64) -> CheckContext {
        CheckContext {
            now,
            hotp_window: 10,
            totp_window: 1,
        }
    }

    /// The code of the step just used is a replay; a code that matches no step is wrong.
    #[test]
    fn a_used_code_is_told_apart_from_a_wrong_one() {
        let t = Totp {
            digits: 8,
            algorithm: Algorithm::Sha1,
            period: 30,
            drift: 0,
        };
        let key = b"12345678901234567890".as_slice();
        let c = ctx(59); // step 1: RFC 6238's 94287082
        let next = t.check(key, b"94287082", 0, &c).unwrap();
        assert_eq!(t.check(key, b"94287082", next, &c), None);
        assert_eq!(t.refusal_reason(key, b"94287082", next, &c), Some(REPLAYED));
        assert_eq!(t.refusal_reason(key, b"00000000", next, &c), Some(WRONG));
        // Not used yet (counter below the step): a refusal there is no replay.
        assert_eq!(t.refusal_reason(key, b"94287082", 0, &c), Some(WRONG));
    }

    /// A device 10 steps fast has its code accepted: the current codes, passed over, are
    /// refused with a reason that says the step used is ahead of this host's clock.
    #[test]
    fn current_codes_after_a_fast_devices_code_say_the_clock_is_ahead() {
        let t = Totp {
            digits: 6,
            algorithm: Algorithm::Sha1,
            period: 30,
            drift: 0,
        };
        let key = b"12345678901234567890".as_slice();
        let c = CheckContext {
            totp_window: 10,
            ..ctx(30 * 1000)
        };
        let code = |step: u64| hotp_code(Algorithm::Sha1, key, step, 6);
        let next = t.check(key, &code(1010), 0, &c).unwrap();
        assert_eq!(next, 1011);
        assert_eq!(
            t.refusal_reason(key, &code(1000), next, &c),
            Some(PASSED_OVER_AHEAD)
        );
        assert_eq!(t.refusal_reason(key, &code(1010), next, &c), Some(REPLAYED));
        assert_eq!(t.refusal_reason(key, b"000000", next, &c), Some(WRONG));
        // A step used at this host's time: an older code is a replay, not a clock matter.
        let next = t.check(key, &code(1000), 0, &c).unwrap();
        assert_eq!(t.refusal_reason(key, &code(995), next, &c), Some(REPLAYED));
    }

    /// RFC 6238 Appendix B, with the seeds of each hash length.
    #[test]
    fn rfc6238_vectors() {
        let k1 = b"12345678901234567890".as_slice();
        let k256 = b"12345678901234567890123456789012".as_slice();
        let k512 = b"1234567890123456789012345678901234567890123456789012345678901234".as_slice();
        let rows: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (time, s1, s256, s512) in rows {
            for (alg, key, want) in [
                (Algorithm::Sha1, k1, s1),
                (Algorithm::Sha256, k256, s256),
                (Algorithm::Sha512, k512, s512),
            ] {
                let t = Totp {
                    digits: 8,
                    algorithm: alg,
                    period: 30,
                    drift: 0,
                };
                assert_eq!(&hotp_code(alg, key, time / 30, 8)[..], want.as_bytes());
                let ctx = CheckContext {
                    totp_window: 0,
                    ..ctx(time)
                };
                assert_eq!(t.check(key, want.as_bytes(), 0, &ctx), Some(time / 30 + 1));
            }
        }
    }

    #[test]
    fn a_step_is_used_once() {
        let t = Totp {
            digits: 8,
            algorithm: Algorithm::Sha1,
            period: 30,
            drift: 0,
        };
        let key = b"12345678901234567890";
        let next = t.check(key, b"94287082", 0, &ctx(59)).unwrap();
        assert_eq!(t.check(key, b"94287082", next, &ctx(59)), None);
    }

    #[test]
    fn window_and_period() {
        let t = Totp {
            digits: 8,
            algorithm: Algorithm::Sha1,
            period: 30,
            drift: 0,
        };
        let key = b"12345678901234567890";
        assert!(
            t.check(key, b"94287082", 0, &ctx(59 + 30)).is_some(),
            "one step late"
        );
        assert!(
            t.check(key, b"94287082", 0, &ctx(59 + 90)).is_none(),
            "three steps late"
        );
        let t60 = Totp { period: 60, ..t };
        let code = hotp_code(Algorithm::Sha1, key, 1000 / 60, 8);
        assert!(t60.check(key, &code, 0, &ctx(1000)).is_some());
    }

    #[test]
    fn resync_sets_drift() {
        let t = Totp {
            digits: 6,
            algorithm: Algorithm::Sha1,
            period: 30,
            drift: 0,
        };
        let key = b"12345678901234567890";
        let now = 1_000_000 * 30;
        let s = 1_000_000 + 100; // device is 100 steps ahead
        let a = hotp_code(Algorithm::Sha1, key, s, 6);
        let b = hotp_code(Algorithm::Sha1, key, s + 1, 6);
        assert_eq!(t.resync(key, &a, &b, 0, &ctx(now)), Some((s + 2, 101)));
    }
}
