//! `tan`: single-use recovery codes (privacyIDEA's TAN list), the way in when the phone is lost.
//!
//! `tessera token add --type tan --count N` draws N distinct codes of `digits` decimal digits
//! from the OS RNG and prints them once. What is kept is the token's "key" (sealed with the store
//! key like every OTP key): a random 32-byte HMAC key followed by HMAC-SHA256(key, code) of each
//! code, in the order drawn. The codes themselves are never stored.
//!
//! Why numeric: privacyIDEA's tan tokens use numeric OTPs of the token's digit length, a code is
//! typed after the PIN like any OTP (the last `digits` characters of the pass), and digits can
//! be read out over a phone. Eight digits by default (as google-authenticator's scratch codes):
//! 26.6 bits per code; with the fail counter locking after `max_fail` tries, an online guess
//! against 10 codes succeeds with odds of about max_fail × 10 / 10^8.
//!
//! Why a keyed HMAC and not Argon2: the codes are random, not chosen by people, so a slow hash
//! adds little, and a login compares a typed code with every code of the token (ten or more
//! Argon2 runs per login would cost a quarter of a second). One HMAC per login, then one
//! constant-time comparison per stored hash, used or not, so the time does not tell which
//! code matched.
//!
//! Which codes are used is the token's `counter`, as a bit set: bit i is set once code i is
//! accepted. Setting a bit always makes the counter larger, so it moves only forward like an
//! HOTP counter, and the engine stores it in the same write transaction that accepts the code,
//! after re-reading the token under the lock: a code is accepted at most once, even by two
//! logins at the same instant. The bits of a signed 64-bit counter limit a token to
//! [`MAX_CODES`] codes.

use super::{is_digits, random_digits, CheckContext, Token};
use crate::crypto::{ct_eq, Secret};
use crate::error::{Error, Result};
use hmac::{Hmac, Mac};

/// The most codes one token holds: one bit of the counter each, within `MAX_COUNTER` (2^63 - 1).
pub const MAX_CODES: u32 = 63;
/// Code lengths accepted, in digits.
pub const MIN_DIGITS: u32 = 6;
pub const MAX_DIGITS: u32 = 10;
/// The default code length.
pub const DEFAULT_DIGITS: u32 = 8;

pub(super) const HMAC_KEY_LEN: usize = 32;
pub(super) const HASH_LEN: usize = 32;

pub struct Tan {
    pub digits: u32,
}

/// What a refused code was, for the audit row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Used,
    NoneLeft,
    Wrong,
}

/// HMAC-SHA256(key, code). HMAC takes keys of any length, so this is never `None`; if it were,
/// enrolment fails and a login matches nothing. (Registration codes are kept the same way.)
pub(super) fn hash(key: &[u8], code: &[u8]) -> Option<[u8; HASH_LEN]> {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).ok()?;
    mac.update(code);
    Some(mac.finalize().into_bytes().into())
}

/// The HMAC key and the stored hashes of a token's key blob; `None` for a blob of another shape.
fn split(blob: &[u8]) -> Option<(&[u8], &[u8])> {
    if blob.len() < HMAC_KEY_LEN + HASH_LEN || (blob.len() - HMAC_KEY_LEN) % HASH_LEN != 0 {
        return None;
    }
    let (k, hashes) = blob.split_at(HMAC_KEY_LEN);
    (hashes.len() / HASH_LEN <= MAX_CODES as usize).then_some((k, hashes))
}

/// The codes of a new token, to print once, and the key blob to seal and store.
pub struct Generated {
    pub codes: Vec<Secret>,
    pub key: Secret,
}

/// Draws `count` distinct codes of `digits` digits from the OS RNG.
pub fn new_codes(count: u32, digits: u32) -> Result<Generated> {
    generate(count, digits, &mut rand::rngs::OsRng)
}

/// Draws `count` distinct codes of `digits` digits from `rng`.
pub fn generate(count: u32, digits: u32, rng: &mut dyn rand::RngCore) -> Result<Generated> {
    if count == 0 || count > MAX_CODES {
        return Err(Error::invalid(format!(
            "a tan token holds 1 to {MAX_CODES} codes"
        )));
    }
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits) {
        return Err(Error::invalid(format!(
            "tan codes have {MIN_DIGITS} to {MAX_DIGITS} digits"
        )));
    }
    let mut codes: Vec<Secret> = Vec::with_capacity(count as usize);
    while codes.len() < count as usize {
        let c = random_digits(digits, rng);
        // Distinct codes: a code that stood in two slots could be used twice.
        if !codes.iter().any(|o| o[..] == c[..]) {
            codes.push(c);
        }
    }
    let key = seal(&codes, rng)?;
    Ok(Generated { codes, key })
}

/// The key blob of a token holding `codes` (codes made elsewhere: google-authenticator's
/// scratch codes, privacyIDEA's TANs): a fresh HMAC key from `rng` and each code's hash. The
/// codes must be distinct, of one length of [`MIN_DIGITS`] to [`MAX_DIGITS`] digits, and at
/// most [`MAX_CODES`]; returns the blob and that length (the token's `digits`).
pub fn from_codes(codes: &[Secret], rng: &mut dyn rand::RngCore) -> Result<(Secret, u32)> {
    let digits = codes.first().map_or(0, |c| c.len());
    if codes.is_empty() || codes.len() > MAX_CODES as usize {
        return Err(Error::invalid(format!(
            "a tan token holds 1 to {MAX_CODES} codes, not {}",
            codes.len()
        )));
    }
    let digits = u32::try_from(digits).unwrap_or(u32::MAX);
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits) || codes.iter().any(|c| !is_digits(c, digits)) {
        return Err(Error::invalid(format!(
            "tan codes are {MIN_DIGITS} to {MAX_DIGITS} digits, all of one length"
        )));
    }
    for (i, c) in codes.iter().enumerate() {
        if codes[..i].iter().any(|o| o[..] == c[..]) {
            return Err(Error::invalid(format!(
                "code {} is listed twice; a tan token's codes are distinct",
                i + 1
            )));
        }
    }
    Ok((seal(codes, rng)?, digits))
}

/// A fresh HMAC key and the hash of each code under it.
fn seal(codes: &[Secret], rng: &mut dyn rand::RngCore) -> Result<Secret> {
    let mut key = zeroize::Zeroizing::new(vec![0u8; HMAC_KEY_LEN]);
    rng.fill_bytes(&mut key);
    let hmac_key = key.clone();
    for c in codes {
        let h = hash(&hmac_key, c).ok_or_else(|| Error::invalid("HMAC-SHA256 failed"))?;
        key.extend_from_slice(&h);
    }
    Ok(key)
}

/// How many codes a blob of `count` codes has left, given the token's counter.
pub fn left(count: u32, counter: u64) -> u32 {
    let mask = if count >= 64 {
        u64::MAX
    } else {
        (1u64 << count) - 1
    };
    count.saturating_sub((counter & mask).count_ones())
}

impl Tan {
    /// Compares `otp` with every stored hash (used or not, no early exit); the index of the
    /// first unused match, and whether a used one matched.
    fn find(&self, key: &[u8], otp: &[u8], counter: u64) -> (Option<usize>, bool, usize) {
        let Some((k, hashes)) = split(key) else {
            return (None, false, 0);
        };
        let n = hashes.len() / HASH_LEN;
        if !is_digits(otp, self.digits) {
            return (None, false, n);
        }
        let Some(typed) = hash(k, otp) else {
            return (None, false, n);
        };
        let (mut unused, mut used) = (None, false);
        for (i, stored) in hashes.chunks_exact(HASH_LEN).enumerate() {
            let matched = ct_eq(stored, &typed);
            let is_used = counter >> i & 1 == 1;
            if matched && is_used {
                used = true;
            }
            if matched && !is_used && unused.is_none() {
                unused = Some(i);
            }
        }
        (unused, used, n)
    }

    /// Why `otp` was refused, for the audit row (a used code, no codes left, a wrong code).
    pub fn refusal(&self, key: &[u8], otp: &[u8], counter: u64) -> Refusal {
        let (_, used, n) = self.find(key, otp, counter);
        if used {
            Refusal::Used
        } else if n > 0 && left(n as u32, counter) == 0 {
            Refusal::NoneLeft
        } else {
            Refusal::Wrong
        }
    }
}

impl Token for Tan {
    fn otp_len(&self) -> usize {
        self.digits as usize
    }

    fn check(&self, key: &[u8], otp: &[u8], counter: u64, _ctx: &CheckContext) -> Option<u64> {
        let (found, _, _) = self.find(key, otp, counter);
        // Bit i < 63: the new counter stays within MAX_COUNTER and is above the old one.
        found.map(|i| counter | 1u64 << i)
    }

    fn refusal_reason(
        &self,
        key: &[u8],
        otp: &[u8],
        counter: u64,
        _ctx: &CheckContext,
    ) -> Option<&'static str> {
        Some(match self.refusal(key, otp, counter) {
            Refusal::Used => "recovery code already used",
            Refusal::NoneLeft => "no recovery codes left",
            Refusal::Wrong => "wrong recovery code",
        })
    }
}

pub(super) const SPEC: super::Spec = super::Spec {
    name: "tan",
    always_challenges: false,
    pin_is_pass: false,
    pass_of_others: false,
    four_eyes_member: false,
    starts_enrollment: false,
    sends: None,
    prompt: super::spec::ChallengePrompt::Tan,
    add_options: &["--digits", "--count"],
    add_required: &[],
    // The length of its codes is kept in `digits`; which are used, in `counter`.
    logic: |p| Ok(Box::new(Tan { digits: p.digits })),
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

    fn ten() -> Generated {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        generate(10, 8, &mut rng).unwrap()
    }

    #[test]
    fn generates_distinct_codes_of_the_length_and_keeps_only_hashes() {
        let g = ten();
        assert_eq!(g.codes.len(), 10);
        for (i, c) in g.codes.iter().enumerate() {
            assert!(is_digits(c, 8));
            assert!(!g.codes[..i].iter().any(|o| o[..] == c[..]));
            // The blob holds no code in clear.
            assert!(!g.key.windows(8).any(|w| w == &c[..]));
        }
        assert_eq!(g.key.len(), 32 + 10 * 32);
        assert!(generate(0, 8, &mut rand::rngs::OsRng).is_err());
        assert!(generate(64, 8, &mut rand::rngs::OsRng).is_err());
        assert!(generate(10, 5, &mut rand::rngs::OsRng).is_err());
        assert!(generate(10, 11, &mut rand::rngs::OsRng).is_err());
        assert_eq!(
            generate(63, 6, &mut rand::rngs::OsRng).unwrap().codes.len(),
            63
        );
    }

    #[test]
    fn each_code_once_in_any_order() {
        let g = ten();
        let t = Tan { digits: 8 };
        let mut counter = 0;
        for i in [7, 2, 9, 0, 5, 1, 8, 3, 6, 4] {
            let next = t.check(&g.key, &g.codes[i], counter, &CTX).unwrap();
            assert!(next > counter, "the counter only moves forward");
            assert!(next <= crate::tokens::MAX_COUNTER);
            counter = next;
            // The same code again: refused, and audited as used.
            assert_eq!(t.check(&g.key, &g.codes[i], counter, &CTX), None);
            assert_eq!(t.refusal(&g.key, &g.codes[i], counter), Refusal::Used);
        }
        assert_eq!(left(10, counter), 0);
        assert_eq!(t.refusal(&g.key, b"00000000", counter), Refusal::NoneLeft);
        assert_eq!(
            t.refusal_reason(&g.key, &g.codes[3], counter, &CTX),
            Some("recovery code already used")
        );
    }

    #[test]
    fn codes_made_elsewhere_are_sealed_and_accepted_once() {
        let codes: Vec<Secret> = ["48151623", "42424242", "10203040"]
            .iter()
            .map(|c| crate::crypto::secret(c.as_bytes()))
            .collect();
        let (key, digits) = from_codes(&codes, &mut rand::rngs::OsRng).unwrap();
        assert_eq!(digits, 8);
        assert!(!key.windows(8).any(|w| codes.iter().any(|c| w == &c[..])));
        let t = Tan { digits };
        let after = t.check(&key, b"42424242", 0, &CTX).unwrap();
        assert_eq!(t.check(&key, b"42424242", after, &CTX), None);
        assert!(t.check(&key, b"10203040", after, &CTX).is_some());
        let refused = |list: &[&str]| {
            let c: Vec<Secret> = list
                .iter()
                .map(|c| crate::crypto::secret(c.as_bytes()))
                .collect();
            from_codes(&c, &mut rand::rngs::OsRng)
                .err()
                .unwrap()
                .to_string()
        };
        assert!(refused(&["12345678", "12345678"]).contains("listed twice"));
        assert!(refused(&["12345678", "1234567"]).contains("one length"));
        assert!(refused(&["12345"]).contains("6 to 10 digits"));
        assert!(refused(&["1234567a"]).contains("digits"));
        assert!(refused(&[]).contains("1 to 63 codes"));
    }

    #[test]
    fn wrong_codes_are_refused() {
        let g = ten();
        let t = Tan { digits: 8 };
        let mut wrong = g.codes[0].to_vec();
        wrong[7] = if wrong[7] == b'9' { b'0' } else { wrong[7] + 1 };
        if !g.codes.iter().any(|c| c[..] == wrong[..]) {
            assert_eq!(t.check(&g.key, &wrong, 0, &CTX), None);
            assert_eq!(t.refusal(&g.key, &wrong, 0), Refusal::Wrong);
        }
        // Not digits, or not the length: never matches.
        assert_eq!(t.check(&g.key, &g.codes[0][..7], 0, &CTX), None);
        let mut longer = g.codes[0].to_vec();
        longer.push(b'1');
        assert_eq!(t.check(&g.key, &longer, 0, &CTX), None);
        assert_eq!(t.check(&g.key, b"abcdefgh", 0, &CTX), None);
        // A blob of another shape accepts nothing.
        assert_eq!(t.check(&g.key[..40], &g.codes[0], 0, &CTX), None);
        assert_eq!(t.check(b"", &g.codes[0], 0, &CTX), None);
    }

    #[test]
    fn the_comparison_visits_every_stored_hash() {
        // The constant-time path: the typed code is hashed once and compared with each stored
        // hash, used or not; a match in the first slot finds the same as one in the last,
        // and a used match does not hide a later unused copy (there is none: codes are
        // distinct, but the search must not stop early).
        let g = ten();
        let t = Tan { digits: 8 };
        let (found, used, n) = t.find(&g.key, &g.codes[9], 0);
        assert_eq!((found, used, n), (Some(9), false, 10));
        let (found, used, n) = t.find(&g.key, &g.codes[0], 1);
        assert_eq!((found, used, n), (None, true, 10));
        let (found, used, n) = t.find(&g.key, b"12345678", 0);
        assert_eq!(n, 10);
        assert!(!used);
        assert!(found.is_none() || g.codes.iter().any(|c| &c[..] == b"12345678"));
    }

    #[test]
    fn sixty_three_codes_fill_the_counter_without_passing_its_top() {
        let g = generate(63, 6, &mut rand::rngs::OsRng).unwrap();
        let t = Tan { digits: 6 };
        let mut counter = 0;
        for c in g.codes.iter().rev() {
            counter = t.check(&g.key, c, counter, &CTX).unwrap();
        }
        assert_eq!(counter, crate::tokens::MAX_COUNTER);
        assert_eq!(left(63, counter), 0);
    }

    #[test]
    fn left_counts_unused_codes() {
        assert_eq!(left(10, 0), 10);
        assert_eq!(left(10, 0b1000_0001), 8);
        // Bits beyond the token's codes are not codes.
        assert_eq!(left(10, 1 << 20), 10);
    }
}
