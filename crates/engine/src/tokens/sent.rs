//! The logic of `email` and `sms` tokens: a PIN-only pass makes a random OTP that is sent out
//! of band (by [`crate::delivery`]); that OTP, kept only sealed in the challenge row, answers
//! that one challenge.

use super::{random_digits, Challenge, CheckContext, Token};
use crate::error::Result;

pub struct SentOtp {
    /// Digits of the OTP sent (`[email].otp_length` or `[sms].otp_length`).
    pub otp_length: u32,
}

impl Token for SentOtp {
    fn otp_len(&self) -> usize {
        // The first pass is the PIN alone: the OTP only exists once it was sent.
        0
    }

    fn check(&self, _key: &[u8], _otp: &[u8], _counter: u64, _ctx: &CheckContext) -> Option<u64> {
        None
    }

    /// The data kept is the OTP itself (sealed by the engine), and the same OTP is sent.
    fn challenge(&self, _pin: &[u8], rng: &mut dyn rand::RngCore) -> Result<Option<Challenge>> {
        let otp = random_digits(self.otp_length, rng);
        Ok(Some(Challenge {
            data: otp.clone(),
            otp: Some(otp),
            question: None,
        }))
    }

    /// The answer: the OTP that was sent, compared in constant time.
    fn check_challenge(
        &self,
        _key: &[u8],
        data: Option<&[u8]>,
        answer: &[u8],
        counter: u64,
        _ctx: &CheckContext,
    ) -> Option<u64> {
        let sent = data?;
        (!sent.is_empty() && crate::crypto::ct_eq(sent, answer)).then_some(counter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sent_otp_answers_once_per_challenge_data() {
        let t = SentOtp { otp_length: 8 };
        let c = t.challenge(b"", &mut rand::rngs::OsRng).unwrap().unwrap();
        let otp = c.otp.clone().unwrap();
        assert_eq!(otp.len(), 8);
        assert!(otp.iter().all(u8::is_ascii_digit));
        let ctx = CheckContext {
            now: 0,
            hotp_window: 10,
            totp_window: 1,
        };
        assert_eq!(
            t.check_challenge(b"", Some(&c.data), &otp, 4, &ctx),
            Some(4)
        );
        assert_eq!(
            t.check_challenge(b"", Some(&c.data), b"1234567", 4, &ctx),
            None
        );
        assert_eq!(t.check_challenge(b"", None, &otp, 4, &ctx), None);
        assert_eq!(
            t.check(b"", &otp, 4, &ctx),
            None,
            "no OTP without a challenge"
        );
    }

    #[test]
    fn otp_length_comes_from_the_token() {
        let t = SentOtp { otp_length: 6 };
        let c = t.challenge(b"", &mut rand::rngs::OsRng).unwrap().unwrap();
        assert_eq!(c.otp.unwrap().len(), 6);
        assert!(c.question.is_none());
    }
}
