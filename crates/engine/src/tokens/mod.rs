//! Token types behind one trait. Each type is one file; the engine only sees [`Token`].
//!
//! A token's mutable state is one number, `counter`: the next acceptable HOTP counter, or for
//! TOTP the next acceptable time step (the last used step + 1). Because every accepted OTP moves
//! it strictly forward inside one store transaction, an OTP value is accepted at most once.

pub mod email;
pub mod four_eyes;
mod hotp;
mod info;
mod oath;
pub mod ocra;
mod pw;
pub mod registration;
mod sent;
pub mod sms;
mod spass;
mod spec;
pub mod tan;
mod totp;

pub use four_eyes::FourEyes;
pub use hotp::Hotp;
pub use info::{FourEyesInfo, Origin, TokenInfo};
pub use oath::{hotp_code, Algorithm};
pub use ocra::Ocra;
pub use pw::Pw;
pub use sent::SentOtp;
pub use spass::Spass;
pub use spec::{ChallengePrompt, Sends, Spec};
pub use tan::Tan;
pub use totp::Totp;

use crate::crypto::Secret;
use crate::error::{Error, Result};

/// The largest counter (or TOTP step) a token may hold: SQLite's integers are signed 64-bit, and
/// a counter that wrapped to 0 (or compared as negative) would make used OTPs valid again. A
/// token whose counter reaches it accepts nothing more.
pub const MAX_COUNTER: u64 = i64::MAX as u64;

/// The counter that follows `c`, if it is within [`MAX_COUNTER`].
pub fn next_counter(c: u64) -> Option<u64> {
    c.checked_add(1).filter(|n| *n <= MAX_COUNTER)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenType {
    Hotp,
    Totp,
    Pw,
    Spass,
    Email,
    Sms,
    Ocra,
    FourEyes,
    Tan,
    Registration,
}

impl TokenType {
    pub const ALL: [TokenType; 10] = [
        TokenType::Hotp,
        TokenType::Totp,
        TokenType::Pw,
        TokenType::Spass,
        TokenType::Email,
        TokenType::Sms,
        TokenType::Ocra,
        TokenType::FourEyes,
        TokenType::Tan,
        TokenType::Registration,
    ];

    /// What the engine and `tessera token add` know of the type: one line per type.
    pub fn spec(self) -> &'static Spec {
        match self {
            TokenType::Hotp => &hotp::SPEC,
            TokenType::Totp => &totp::SPEC,
            TokenType::Pw => &pw::SPEC,
            TokenType::Spass => &spass::SPEC,
            TokenType::Email => &email::SPEC,
            TokenType::Sms => &sms::SPEC,
            TokenType::Ocra => &ocra::SPEC,
            TokenType::FourEyes => &four_eyes::SPEC,
            TokenType::Tan => &tan::SPEC,
            TokenType::Registration => &registration::SPEC,
        }
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn parse(s: &str) -> Result<TokenType> {
        TokenType::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| Error::invalid(format!("unknown token type \"{s}\"")))
    }

    /// Types whose PIN-only pass always opens a challenge, whatever `challenge_response` says.
    pub fn always_challenges(self) -> bool {
        self.spec().always_challenges
    }
}

/// The parameters of a token that its OTP check needs, as stored.
#[derive(Debug, Clone)]
pub struct TokenParams {
    pub kind: TokenType,
    pub digits: u32,
    pub algorithm: Algorithm,
    /// TOTP period in seconds.
    pub period: u64,
    /// TOTP clock drift in steps, set by resync.
    pub drift: i64,
    /// The OCRA suite of an `ocra` token (from the token's `info`).
    pub ocra_suite: Option<String>,
    /// When a `registration` code is refused from (Unix seconds).
    pub expires: Option<u64>,
}

/// What a check may look at besides the key and the OTP.
/// The audit reasons of a refused HOTP or TOTP code.
pub const REPLAYED: &str = "OTP already used (replayed)";
pub const WRONG: &str = "wrong OTP";
/// A TOTP code of a step that was passed over: a later step was used, one ahead of this host's
/// clock (a device whose clock is fast had its code accepted; until this host's clock reaches
/// that step, every current code is one that was passed over).
pub const PASSED_OVER_AHEAD: &str = "OTP of a time step passed over: a later code was used, \
     ahead of this host's clock (is that device's clock fast? current codes work again once \
     this host's time reaches the step used)";

#[derive(Debug, Clone, Copy)]
pub struct CheckContext {
    /// Unix time in seconds, read once per login.
    pub now: u64,
    pub hotp_window: u64,
    pub totp_window: u64,
}

/// What a PIN-only pass makes for a token whose answer is not simply its next OTP.
pub struct Challenge {
    /// Kept (sealed) in the challenge row and given back to [`Token::check_challenge`].
    pub data: Secret,
    /// The OTP to send out of band (e-mail, SMS).
    pub otp: Option<Secret>,
    /// What the user needs to see to answer (the OCRA question).
    pub question: Option<String>,
}

/// One token type's OTP logic. Pure: no I/O, no clock; the store applies the returned state.
pub trait Token {
    /// How many trailing characters of a PIN+OTP pass are the OTP; 0 when the pass is the PIN
    /// alone (`spass`).
    fn otp_len(&self) -> usize;

    /// Checks `otp` against the key, given the current `counter`. On success returns the new
    /// counter to store (which is never below the old one).
    fn check(&self, key: &[u8], otp: &[u8], counter: u64, ctx: &CheckContext) -> Option<u64>;

    /// Why `otp` was refused, for the audit row, when the type can say more than "wrong OTP
    /// or OTP already used" (a replayed HOTP/TOTP code, a used recovery code). Called only after
    /// [`Token::check`] refused, so its cost is no timing signal of a match.
    fn refusal_reason(
        &self,
        _key: &[u8],
        _otp: &[u8],
        _counter: u64,
        _ctx: &CheckContext,
    ) -> Option<&'static str> {
        None
    }

    /// Finds two consecutive OTPs far outside the normal window; returns (new counter, new drift).
    fn resync(
        &self,
        _key: &[u8],
        _otp1: &[u8],
        _otp2: &[u8],
        _counter: u64,
        _ctx: &CheckContext,
    ) -> Option<(u64, i64)> {
        None
    }

    /// Makes the data of a challenge opened by a PIN-only pass: `None` for tokens whose answer
    /// is their next OTP (HOTP, TOTP). `pin` is the PIN just typed (OCRA `P` suites hash it).
    fn challenge(&self, _pin: &[u8], _rng: &mut dyn rand::RngCore) -> Result<Option<Challenge>> {
        Ok(None)
    }

    /// Checks the answer to a challenge of this token, given the data [`Token::challenge`]
    /// made. On success returns the new counter (never below the old one).
    fn check_challenge(
        &self,
        key: &[u8],
        _data: Option<&[u8]>,
        answer: &[u8],
        counter: u64,
        ctx: &CheckContext,
    ) -> Option<u64> {
        self.check(key, answer, counter, ctx)
    }
}

/// The logic of one token, chosen by its type.
pub fn for_params(p: &TokenParams) -> Result<Box<dyn Token>> {
    (p.kind.spec().logic)(p)
}

/// `n` random decimal digits, for OTPs sent out of band.
pub(crate) fn random_digits(n: u32, rng: &mut dyn rand::RngCore) -> Secret {
    // Rejection sampling keeps the digits uniform (256 is not a multiple of 10).
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(n as usize));
    while out.len() < n as usize {
        let mut b = [0u8; 1];
        rng.fill_bytes(&mut b);
        if b[0] < 250 {
            out.push(b'0' + b[0] % 10);
        }
    }
    out
}

/// Reads an OTP typed by a user as ASCII digits; anything else never matches.
pub(crate) fn is_digits(otp: &[u8], n: u32) -> bool {
    otp.len() == n as usize && otp.iter().all(u8::is_ascii_digit)
}
