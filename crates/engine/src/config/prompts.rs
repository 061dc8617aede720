//! `[prompts]`: the texts a login is asked with, one for each kind of challenge.
//! Apart from `mod.rs` so that each section's keys and defaults read in one place.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Prompts {
    /// The first prompt when the pass starts with the token PIN.
    pub pin: String,
    /// The first prompt when only an OTP is asked (`otppin` = none or system).
    pub otp: String,
    pub hotp: String,
    pub totp: String,
    pub email: String,
    pub sms: String,
    pub ocra: String,
    /// Asked when `tan` is in `challenge_response` and the PIN alone was typed.
    pub tan: String,
    /// Shown when one PIN opened challenges on several tokens.
    pub multi: String,
}

impl Prompts {
    /// The message of a challenge of the kind a token type names.
    pub fn challenge(&self, kind: crate::tokens::ChallengePrompt) -> &str {
        use crate::tokens::ChallengePrompt as P;
        match kind {
            P::Otp => &self.otp,
            P::Hotp => &self.hotp,
            P::Totp => &self.totp,
            P::Email => &self.email,
            P::Sms => &self.sms,
            P::Ocra => &self.ocra,
            P::Tan => &self.tan,
        }
    }
}

impl Default for Prompts {
    fn default() -> Self {
        Prompts {
            pin: "PIN: ".into(),
            otp: "OTP: ".into(),
            hotp: "Please enter your otp value: ".into(),
            totp: "Please enter your otp value: ".into(),
            email: "Please enter the OTP sent to {email}: ".into(),
            sms: "Please enter the OTP sent to {phone}: ".into(),
            ocra: "Please answer the challenge {question}: ".into(),
            tan: "Please enter one of your recovery codes: ".into(),
            multi: "Please enter the OTP of one of your tokens: ".into(),
        }
    }
}
