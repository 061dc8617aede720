//! HOTP (RFC 4226): the counter only moves forward; a look-ahead window absorbs button presses
//! that never reached a login.

use super::{hotp_code, is_digits, next_counter, Algorithm, CheckContext, Token, REPLAYED, WRONG};
use crate::crypto::ct_eq;

pub struct Hotp {
    pub digits: u32,
    pub algorithm: Algorithm,
}

impl Token for Hotp {
    fn otp_len(&self) -> usize {
        self.digits as usize
    }

    fn check(&self, key: &[u8], otp: &[u8], counter: u64, ctx: &CheckContext) -> Option<u64> {
        if !is_digits(otp, self.digits) {
            return None;
        }
        // Every counter in the window is computed and compared, so the time taken does not tell
        // how far ahead the match was.
        let mut found = None;
        for c in counter..=counter.saturating_add(ctx.hotp_window) {
            if ct_eq(&hotp_code(self.algorithm, key, c, self.digits), otp) && found.is_none() {
                // At the top of the range there is no next counter to store: no match.
                found = next_counter(c);
            }
        }
        found
    }

    /// A code of one of the `hotp_window` counters just below the current one was accepted
    /// before: a replay (or a second login with the code the first one used).
    fn refusal_reason(
        &self,
        key: &[u8],
        otp: &[u8],
        counter: u64,
        ctx: &CheckContext,
    ) -> Option<&'static str> {
        let used = (counter.saturating_sub(ctx.hotp_window)..counter)
            .any(|c| ct_eq(&hotp_code(self.algorithm, key, c, self.digits), otp));
        Some(if used { REPLAYED } else { WRONG })
    }

    fn resync(
        &self,
        key: &[u8],
        otp1: &[u8],
        otp2: &[u8],
        counter: u64,
        _ctx: &CheckContext,
    ) -> Option<(u64, i64)> {
        const RESYNC_WINDOW: u64 = 1000;
        if !is_digits(otp1, self.digits) || !is_digits(otp2, self.digits) {
            return None;
        }
        (counter..counter.saturating_add(RESYNC_WINDOW))
            .find(|&c| {
                let Some(c1) = next_counter(c) else {
                    return false;
                };
                ct_eq(&hotp_code(self.algorithm, key, c, self.digits), otp1)
                    && ct_eq(&hotp_code(self.algorithm, key, c1, self.digits), otp2)
            })
            .and_then(|c| Some((next_counter(next_counter(c)?)?, 0)))
    }
}

pub(super) const SPEC: super::Spec = super::Spec {
    name: "hotp",
    always_challenges: false,
    pin_is_pass: false,
    pass_of_others: false,
    four_eyes_member: true,
    starts_enrollment: false,
    sends: None,
    prompt: super::spec::ChallengePrompt::Hotp,
    add_options: &["--key", "--genkey", "--digits", "--algorithm", "--counter"],
    add_required: &[],
    logic: |p| {
        Ok(Box::new(Hotp {
            digits: p.digits,
            algorithm: p.algorithm,
        }))
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"12345678901234567890";
    const CTX: CheckContext = CheckContext {
        now: 0,
        hotp_window: 10,
        totp_window: 1,
    };

    fn t() -> Hotp {
        Hotp {
            digits: 6,
            algorithm: Algorithm::Sha1,
        }
    }

    #[test]
    fn accepts_inside_window_and_moves_past_it() {
        assert_eq!(t().check(KEY, b"755224", 0, &CTX), Some(1));
        assert_eq!(t().check(KEY, b"520489", 0, &CTX), Some(10)); // counter 9
    }

    /// RFC 4226's codes: 755224 is counter 0, 287082 counter 1, 359152 counter 2.
    #[test]
    fn a_used_code_is_told_apart_from_a_wrong_one() {
        let t = t();
        assert_eq!(t.refusal_reason(KEY, b"755224", 3, &CTX), Some(REPLAYED));
        assert_eq!(t.refusal_reason(KEY, b"359152", 3, &CTX), Some(REPLAYED));
        assert_eq!(t.refusal_reason(KEY, b"000000", 3, &CTX), Some(WRONG));
        // Further back than the window: no longer told apart.
        let narrow = CheckContext {
            hotp_window: 1,
            ..CTX
        };
        assert_eq!(t.refusal_reason(KEY, b"755224", 3, &narrow), Some(WRONG));
        assert_eq!(t.refusal_reason(KEY, b"359152", 3, &narrow), Some(REPLAYED));
    }

    #[test]
    fn refuses_behind_counter_and_beyond_window() {
        assert_eq!(t().check(KEY, b"755224", 1, &CTX), None);
        let narrow = CheckContext {
            hotp_window: 3,
            ..CTX
        };
        assert_eq!(t().check(KEY, b"520489", 0, &narrow), None);
        assert_eq!(t().check(KEY, b"75522", 0, &CTX), None);
        assert_eq!(t().check(KEY, b"75522x", 0, &CTX), None);
    }

    #[test]
    fn the_counter_never_wraps() {
        // Near the top, the window is cut and a match there has no next counter to store.
        let top = crate::tokens::MAX_COUNTER;
        let code = hotp_code(Algorithm::Sha1, KEY, top, 6);
        assert_eq!(t().check(KEY, &code, top, &CTX), None);
        let code = hotp_code(Algorithm::Sha1, KEY, top - 1, 6);
        assert_eq!(t().check(KEY, &code, top - 1, &CTX), Some(top));
        let code = hotp_code(Algorithm::Sha1, KEY, u64::MAX, 6);
        assert_eq!(t().check(KEY, &code, u64::MAX, &CTX), None);
        assert_eq!(t().resync(KEY, &code, &code, u64::MAX - 1, &CTX), None);
    }

    #[test]
    fn resync_finds_two_consecutive_codes() {
        assert_eq!(
            t().resync(KEY, b"399871", b"520489", 0, &CTX),
            Some((10, 0))
        );
        assert_eq!(t().resync(KEY, b"399871", b"755224", 0, &CTX), None);
    }
}
