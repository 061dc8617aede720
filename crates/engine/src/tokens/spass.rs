//! `spass`: the simple pass token. The whole pass is the PIN; there is no OTP part.

use super::{CheckContext, Token};

pub struct Spass;

impl Token for Spass {
    fn otp_len(&self) -> usize {
        0
    }

    fn check(&self, _key: &[u8], otp: &[u8], counter: u64, _ctx: &CheckContext) -> Option<u64> {
        otp.is_empty().then_some(counter)
    }
}

pub(super) const SPEC: super::Spec = super::Spec {
    name: "spass",
    always_challenges: false,
    pin_is_pass: true,
    pass_of_others: false,
    four_eyes_member: true,
    starts_enrollment: false,
    sends: None,
    prompt: super::spec::ChallengePrompt::Otp,
    add_options: &[],
    add_required: &[],
    logic: |_| Ok(Box::new(Spass)),
};
