//! `pw`: a static password as the OTP part (privacyIDEA's registration/password token). The
//! password is the token key; it is compared in constant time and may be used again.

use super::{CheckContext, Token};
use crate::crypto::ct_eq;

pub struct Pw {
    /// Length of the static password in bytes.
    pub len: usize,
}

impl Token for Pw {
    fn otp_len(&self) -> usize {
        self.len
    }

    fn check(&self, key: &[u8], otp: &[u8], counter: u64, _ctx: &CheckContext) -> Option<u64> {
        ct_eq(key, otp).then_some(counter)
    }
}

pub(super) const SPEC: super::Spec = super::Spec {
    name: "pw",
    always_challenges: false,
    pin_is_pass: false,
    pass_of_others: false,
    four_eyes_member: true,
    starts_enrollment: false,
    sends: None,
    prompt: super::spec::ChallengePrompt::Otp,
    add_options: &["--key"],
    add_required: &[],
    // A pw token keeps the length of its static password in `digits`.
    logic: |p| {
        Ok(Box::new(Pw {
            len: p.digits as usize,
        }))
    },
};
