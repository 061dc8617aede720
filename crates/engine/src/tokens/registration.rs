//! `registration`: privacyIDEA's registration code. An admin gives a user a one-time code
//! (`tessera token add --user U --type registration` prints it once); typed at a login's first
//! prompt, it starts the enrollment of the user's own token in the PAM conversation, and it is
//! used up once that token is saved (see `login::authenticate` and `enroll::dialogue`).
//!
//! The code is [`CODE_LEN`] characters of an alphabet without look-alikes (no 0/o, 1/l/i),
//! drawn from the OS RNG: 79 bits, typed case-insensitively. As for `tan` codes, only a keyed
//! hash is kept: the token's sealed "key" is a random 32-byte HMAC key followed by
//! HMAC-SHA256(key, code). Whether it is used is the token's `counter`: 0 unused, 1 used (it
//! only moves forward, in the transaction that saves the new token).

use super::{CheckContext, Token};
use crate::crypto::{ct_eq, Secret};
use crate::error::{Error, Result};

/// The characters of a code: lower-case letters and digits without the look-alikes.
pub const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
/// The length of a code.
pub const CODE_LEN: u32 = 16;
/// The counter of a used code.
pub const USED: u64 = 1;
/// How long a code is good for unless `--valid-for` says otherwise: a week (seconds).
pub const DEFAULT_VALID_FOR: u64 = 7 * 86_400;

use super::tan::{HASH_LEN, HMAC_KEY_LEN};

pub struct Registration {
    pub len: u32,
    /// Refused from this time on (Unix seconds).
    pub expires: Option<u64>,
}

impl Registration {
    fn expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|e| now >= e)
    }
}

/// A new code, to print once, and the key blob to seal and store.
pub struct Generated {
    pub code: Secret,
    pub key: Secret,
}

/// Draws a code from `rng` (rejection sampling: each character uniform).
pub fn generate(rng: &mut dyn rand::RngCore) -> Result<Generated> {
    let n = ALPHABET.len() as u8;
    let limit = 256 - 256 % u16::from(n);
    let mut code = zeroize::Zeroizing::new(Vec::with_capacity(CODE_LEN as usize));
    while code.len() < CODE_LEN as usize {
        let mut b = [0u8; 1];
        rng.fill_bytes(&mut b);
        if u16::from(b[0]) < limit {
            code.push(ALPHABET[usize::from(b[0] % n)]);
        }
    }
    let mut key = zeroize::Zeroizing::new(vec![0u8; HMAC_KEY_LEN]);
    rng.fill_bytes(&mut key);
    let h = hash(&key, &code).ok_or_else(|| Error::invalid("HMAC-SHA256 failed"))?;
    key.extend_from_slice(&h);
    Ok(Generated { code, key })
}

/// The keyed hash of `tan` codes, of the code in lower case.
fn hash(key: &[u8], code: &[u8]) -> Option<[u8; HASH_LEN]> {
    let lower = zeroize::Zeroizing::new(code.to_ascii_lowercase());
    super::tan::hash(key, &lower)
}

impl Token for Registration {
    fn otp_len(&self) -> usize {
        self.len as usize
    }

    /// The code, if unused and not expired: its counter stays where it is (used up only when
    /// the enrollment it starts saves a token).
    fn check(&self, key: &[u8], otp: &[u8], counter: u64, ctx: &CheckContext) -> Option<u64> {
        if key.len() != HMAC_KEY_LEN + HASH_LEN || otp.len() != self.len as usize {
            return None;
        }
        let (k, stored) = key.split_at(HMAC_KEY_LEN);
        let matched = hash(k, otp).is_some_and(|typed| ct_eq(stored, &typed));
        (matched && counter < USED && !self.expired(ctx.now)).then_some(counter)
    }

    fn refusal_reason(
        &self,
        key: &[u8],
        otp: &[u8],
        counter: u64,
        ctx: &CheckContext,
    ) -> Option<&'static str> {
        let open = Registration {
            len: self.len,
            expires: None,
        };
        let right = open.check(key, otp, 0, ctx).is_some();
        Some(if right && counter >= USED {
            "registration code already used"
        } else if right && self.expired(ctx.now) {
            "registration code expired"
        } else {
            "wrong registration code"
        })
    }
}

pub(super) const SPEC: super::Spec = super::Spec {
    name: "registration",
    always_challenges: false,
    pin_is_pass: false,
    pass_of_others: false,
    four_eyes_member: false,
    starts_enrollment: true,
    sends: None,
    prompt: super::spec::ChallengePrompt::Otp,
    add_options: &["--valid-for"],
    add_required: &[],
    // The code's length is kept in `digits`; whether it is used, in `counter`.
    logic: |p| {
        Ok(Box::new(Registration {
            len: p.digits,
            expires: p.expires,
        }))
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const CTX: CheckContext = CheckContext {
        now: 0,
        hotp_window: 10,
        totp_window: 1,
    };

    #[test]
    fn a_code_of_the_alphabet_matches_once_in_any_case() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let g = generate(&mut rng).unwrap();
        assert_eq!(g.code.len(), CODE_LEN as usize);
        assert!(g.code.iter().all(|c| ALPHABET.contains(c)));
        assert!(
            !g.key.windows(g.code.len()).any(|w| w == &g.code[..]),
            "only a hash kept"
        );
        let r = Registration {
            len: CODE_LEN,
            expires: None,
        };
        assert_eq!(
            r.check(&g.key, &g.code, 0, &CTX),
            Some(0),
            "counter unchanged"
        );
        let upper = g.code.to_ascii_uppercase();
        assert_eq!(r.check(&g.key, &upper, 0, &CTX), Some(0));
        assert_eq!(r.check(&g.key, &g.code, USED, &CTX), None, "used");
        assert_eq!(
            r.refusal_reason(&g.key, &g.code, USED, &CTX),
            Some("registration code already used")
        );
        let mut wrong = g.code.to_vec();
        wrong[0] = if wrong[0] == b'2' { b'3' } else { b'2' };
        assert_eq!(r.check(&g.key, &wrong, 0, &CTX), None);
        assert_eq!(
            r.refusal_reason(&g.key, &wrong, 0, &CTX),
            Some("wrong registration code")
        );
        assert_eq!(r.check(&g.key, &g.code[1..], 0, &CTX), None, "short");
        // Good until the second it expires; then refused like a wrong code, and told apart
        // in the audit only.
        let r = Registration {
            len: CODE_LEN,
            expires: Some(1000),
        };
        let at = |now| CheckContext { now, ..CTX };
        assert_eq!(r.check(&g.key, &g.code, 0, &at(999)), Some(0));
        assert_eq!(r.check(&g.key, &g.code, 0, &at(1000)), None);
        assert_eq!(
            r.refusal_reason(&g.key, &g.code, 0, &at(1000)),
            Some("registration code expired")
        );
        assert_eq!(
            r.refusal_reason(&g.key, &wrong, 0, &at(1000)),
            Some("wrong registration code")
        );
    }

    #[test]
    fn two_codes_differ() {
        let a = generate(&mut rand::rngs::OsRng).unwrap();
        let b = generate(&mut rand::rngs::OsRng).unwrap();
        assert_ne!(a.code, b.code);
    }
}
