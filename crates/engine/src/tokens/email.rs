//! `email`: a PIN-only pass makes a random OTP that is mailed to the token's address; the OTP
//! answers that one challenge (the logic is [`super::SentOtp`]'s). This file: the address.

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

pub(super) const SPEC: super::Spec = super::Spec {
    name: "email",
    always_challenges: true,
    pin_is_pass: false,
    pass_of_others: false,
    four_eyes_member: false,
    starts_enrollment: false,
    sends: Some(super::Sends::Email),
    prompt: super::spec::ChallengePrompt::Email,
    add_options: &["--email"],
    add_required: &["--email"],
    // The length of the OTP it sends is kept in `digits` (the engine sets it from the config).
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
}
