//! `4eyes`: the two-man rule of privacyIDEA. The token names a realm, a count N and a
//! separator; one pass carries N users' PIN+OTP joined by the separator, and it succeeds only
//! when N distinct other users' tokens of that realm accept their parts. The token itself has
//! no OTP; the engine checks the parts against the realm's tokens
//! (`login/local/four_eyes_pass.rs`).

use super::{CheckContext, Token};
use crate::error::{Error, Result};

/// More parts than this are refused before any PIN check (each part costs one per token).
pub const MAX_PARTS: usize = 16;

pub struct FourEyes;

impl Token for FourEyes {
    fn otp_len(&self) -> usize {
        0
    }

    fn check(&self, _key: &[u8], _otp: &[u8], _counter: u64, _ctx: &CheckContext) -> Option<u64> {
        None
    }
}

/// What a 4eyes token requires, from its `info` (`{"4eyes": {"realm", "count", "separator"}}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub realm: String,
    pub count: u32,
    pub separator: String,
}

impl Policy {
    pub fn from_info(serial: &str, info: &super::TokenInfo) -> Result<Policy> {
        let rule = info.four_eyes.as_ref().ok_or_else(|| {
            Error::invalid(format!("4eyes token {serial}: no valid \"4eyes\" info"))
        })?;
        let p = Policy {
            realm: rule.realm.clone(),
            count: rule.count,
            separator: rule.separator.clone(),
        };
        p.validate()
            .map_err(|e| Error::invalid(format!("4eyes token {serial}: {e}")))?;
        Ok(p)
    }

    /// Reads `REALM:N` as given to `tessera token add --4eyes`.
    pub fn parse(spec: &str, separator: &str) -> Result<Policy> {
        let (realm, n) = spec.rsplit_once(':').ok_or_else(|| {
            Error::invalid(format!(
                "--4eyes \"{spec}\": expected REALM:N, e.g. admins:2"
            ))
        })?;
        let count = n
            .parse()
            .map_err(|_| Error::invalid(format!("--4eyes \"{spec}\": N must be a number")))?;
        let p = Policy {
            realm: realm.into(),
            count,
            separator: separator.into(),
        };
        p.validate()
            .map_err(|e| Error::invalid(format!("--4eyes \"{spec}\": {e}")))?;
        Ok(p)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.realm.is_empty() || self.realm.chars().any(char::is_control) {
            return Err("the realm name is empty or has control characters".into());
        }
        if self.count == 0 || self.count as usize > MAX_PARTS {
            return Err(format!("N must be 1 to {MAX_PARTS}"));
        }
        if self.separator.chars().count() != 1 || self.separator.chars().any(char::is_control) {
            return Err("the separator must be one printable character".into());
        }
        Ok(())
    }

    pub fn to_info(&self) -> super::TokenInfo {
        super::TokenInfo {
            four_eyes: Some(super::FourEyesInfo {
                realm: self.realm.clone(),
                count: self.count,
                separator: self.separator.clone(),
            }),
            ..super::TokenInfo::default()
        }
    }

    /// The parts of a pass, or `None` when there are more than [`MAX_PARTS`].
    pub fn split<'a>(&self, pass: &'a [u8]) -> Option<Vec<&'a [u8]>> {
        let sep = self.separator.as_bytes();
        let mut parts = Vec::new();
        let mut rest = pass;
        while let Some(i) = rest.windows(sep.len()).position(|w| w == sep) {
            parts.push(&rest[..i]);
            rest = &rest[i + sep.len()..];
            if parts.len() > MAX_PARTS {
                return None;
            }
        }
        parts.push(rest);
        (parts.len() <= MAX_PARTS).then_some(parts)
    }

    /// privacyIDEA's message when too few users' tokens accepted their parts.
    pub fn shortfall(&self, found: usize) -> String {
        format!("Only found {found} tokens in realm {}", self.realm)
    }
}

pub(super) const SPEC: super::Spec = super::Spec {
    name: "4eyes",
    always_challenges: false,
    pin_is_pass: false,
    pass_of_others: true,
    four_eyes_member: false,
    starts_enrollment: false,
    sends: None,
    prompt: super::spec::ChallengePrompt::Otp,
    add_options: &["--4eyes"],
    add_required: &["--4eyes"],
    logic: |_| Ok(Box::new(FourEyes)),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_from_spec_and_info() {
        let p = Policy::parse("admins:2", " ").unwrap();
        assert_eq!(p.realm, "admins");
        assert_eq!(p.count, 2);
        assert_eq!(Policy::from_info("S", &p.to_info()).unwrap(), p);
        assert!(Policy::parse("admins", " ").is_err());
        assert!(Policy::parse("admins:0", " ").is_err());
        assert!(Policy::parse("admins:x", " ").is_err());
        assert!(Policy::parse("admins:2", "").is_err());
        assert!(Policy::parse("admins:2", "ab").is_err());
        assert!(Policy::from_info("S", &super::super::TokenInfo::default()).is_err());
        // A stored rule is checked again when read (a hand-edited row).
        let mut bad = p.to_info();
        bad.four_eyes.as_mut().unwrap().count = 0;
        assert!(Policy::from_info("S", &bad).is_err());
    }

    #[test]
    fn split_on_the_separator() {
        let p = Policy::parse("r:2", "|").unwrap();
        assert_eq!(
            p.split(b"1234111111|5678222222").unwrap(),
            [&b"1234111111"[..], b"5678222222"]
        );
        assert_eq!(p.split(b"abc").unwrap(), [&b"abc"[..]]);
        assert_eq!(p.split(b"").unwrap(), [&b""[..]]);
        assert!(p.split("|".repeat(MAX_PARTS).as_bytes()).is_none());
        assert_eq!(p.shortfall(1), "Only found 1 tokens in realm r");
    }
}
