//! `email`: a PIN-only pass makes a random OTP that is mailed to the token's address; the OTP
//! answers that one challenge. The OTP is kept only sealed in the challenge row.

use super::{oob_challenge, oob_check, Challenge, CheckContext, Token};
use crate::error::Result;

pub struct Email {
    /// Digits of the OTP sent (`[email].otp_length`).
    pub otp_length: u32,
}

impl Token for Email {
    fn otp_len(&self) -> usize {
        // The first pass is the PIN alone: the OTP only exists once it was sent.
        0
    }

    fn check(&self, _key: &[u8], _otp: &[u8], _counter: u64, _ctx: &CheckContext) -> Option<u64> {
        None
    }

    fn challenge(&self, _pin: &[u8], rng: &mut dyn rand::RngCore) -> Result<Option<Challenge>> {
        Ok(Some(oob_challenge(self.otp_length, rng)))
    }

    fn check_challenge(
        &self,
        _key: &[u8],
        data: Option<&[u8]>,
        answer: &[u8],
        counter: u64,
        _ctx: &CheckContext,
    ) -> Option<u64> {
        oob_check(data, answer, counter)
    }
}

/// A plain `local@domain` address: no display name, no spaces, no characters that could end a
/// mail header or an SMTP command.
pub fn valid_address(a: &str) -> bool {
    let Some((local, domain)) = a.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && a.len() <= 254
        && !local.contains('@')
        && domain.contains('.') | (domain == "localhost")
        && a.chars()
            .all(|c| c.is_ascii_graphic() && !"<>()[]\\,;:\"".contains(c))
}

/// The address as a challenge message shows it: `a****@example.org`.
pub fn mask_address(a: &str) -> String {
    match a.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}****@{domain}")
        }
        None => "****".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(valid_address("alice@example.org"));
        assert!(valid_address("a.b+c@mail.example.org"));
        assert!(valid_address("root@localhost"));
        for bad in [
            "alice",
            "@example.org",
            "alice@",
            "alice@example.org\r\nBcc: x@y.z",
            "Alice <alice@example.org>",
            "a lice@example.org",
            "alice@nodot",
        ] {
            assert!(!valid_address(bad), "{bad:?}");
        }
        assert_eq!(mask_address("alice@example.org"), "a****@example.org");
    }

    #[test]
    fn the_sent_otp_answers_once_per_challenge_data() {
        let t = Email { otp_length: 8 };
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
}
