//! What the engine and `tessera token add` know of a token type besides its OTP check: one
//! [`Spec`] in each type's file, found through [`TokenType::spec`](super::TokenType::spec).
//! A new type is its file (the [`Token`](super::Token) logic and its `SPEC`), a variant of
//! `TokenType`, and one line in `spec()`; the engine asks the spec, never the variant.

use super::{Token, TokenParams};
use crate::error::Result;

/// Which of `[prompts]`' messages a type's challenge shows; the config maps it to its text
/// (`Prompts::challenge`), so that a type names its message without knowing the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengePrompt {
    /// The generic OTP message, for types without one of their own.
    Otp,
    Hotp,
    Totp,
    Email,
    Sms,
    Ocra,
    Tan,
}

/// How a type's OTP reaches its user, when it is not shown on a device of theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sends {
    Email,
    Sms,
}

pub struct Spec {
    /// The name in the store, the config and on the command line.
    pub name: &'static str,
    /// A PIN-only pass opens a challenge whatever `[auth] challenge_response` says.
    pub always_challenges: bool,
    /// The PIN alone is the whole pass (`spass`): it takes no OTP.
    pub pin_is_pass: bool,
    /// The pass is other users' PIN+OTPs (`4eyes`), not a PIN of its own.
    pub pass_of_others: bool,
    /// May stand for its user in a `4eyes` pass.
    pub four_eyes_member: bool,
    /// Its accepted pass starts the enrollment of a new token of its user instead of letting
    /// the login in (`registration`).
    pub starts_enrollment: bool,
    /// Its OTP is sent out of band at a PIN-only pass.
    pub sends: Option<Sends>,
    /// The message of its challenge, from `[prompts]`.
    pub prompt: ChallengePrompt,
    /// The options of `tessera token add` that apply to it (besides user, serial, PIN, realm).
    pub add_options: &'static [&'static str],
    /// Those of them it can't do without.
    pub add_required: &'static [&'static str],
    /// Its logic, from the parameters the store keeps.
    pub logic: fn(&TokenParams) -> Result<Box<dyn Token>>,
}
