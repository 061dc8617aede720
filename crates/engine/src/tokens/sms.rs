//! `sms`: like `email`, but the OTP goes to the token's phone number through the HTTP gateway
//! of `[sms]` (the logic is [`super::SentOtp`]'s). This file: the phone number.

/// A phone number: an optional `+`, then 4 to 20 digits, spaces and dashes allowed between.
pub fn valid_phone(p: &str) -> bool {
    let body = p.strip_prefix('+').unwrap_or(p);
    let digits = body.chars().filter(char::is_ascii_digit).count();
    (4..=20).contains(&digits)
        && body.starts_with(|c: char| c.is_ascii_digit())
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
}

/// The number as a challenge message shows it: all but the last 4 digits starred.
pub fn mask_phone(p: &str) -> String {
    let total = p.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    p.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen + 4 <= total {
                    return '*';
                }
            }
            c
        })
        .collect()
}

pub(super) const SPEC: super::Spec = super::Spec {
    name: "sms",
    always_challenges: true,
    pin_is_pass: false,
    pass_of_others: false,
    four_eyes_member: false,
    starts_enrollment: false,
    sends: Some(super::Sends::Sms),
    prompt: super::spec::ChallengePrompt::Sms,
    add_options: &["--phone"],
    add_required: &["--phone"],
    logic: |p| {
        Ok(Box::new(super::SentOtp {
            otp_length: p.digits,
        }))
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers() {
        assert!(valid_phone("+49 170 1234567"));
        assert!(valid_phone("0170-1234567"));
        for bad in [
            "",
            "+",
            "12",
            "+49 170 abc",
            "+49\n170",
            "1234567890123456789012",
        ] {
            assert!(!valid_phone(bad), "{bad:?}");
        }
        assert_eq!(mask_phone("+491701234567"), "+********4567");
        assert_eq!(mask_phone("+49 170 1234567"), "+** *** ***4567");
    }
}
