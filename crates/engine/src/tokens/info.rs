//! The type-specific settings of a token (the store's `info` column, JSON): the address of an
//! e-mail token, the phone of an SMS token, an OCRA suite, the number of tan codes, a 4eyes
//! rule. Each type uses its own field; the others stay empty and are not written.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenInfo {
    /// `email`: where the OTP is sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `sms`: where the OTP is sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// `ocra`: the suite (RFC 6287), as given on enrolment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocra_suite: Option<String>,
    /// `tan`: how many codes were made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// `4eyes`: the rule, checked when it is read ([`super::four_eyes::Policy::from_info`]).
    #[serde(rename = "4eyes", skip_serializing_if = "Option::is_none")]
    pub four_eyes: Option<FourEyesInfo>,
    /// How the token came to be (any type); `None` for tokens of versions before it was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// `registration`: the code is refused from this time on (Unix seconds). Codes of
    /// versions before it was kept expire [`super::registration::DEFAULT_VALID_FOR`] after
    /// they were made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// The PIN rule the token's PIN was set under ([`crate::pin_rule::PinRule::id`], e.g.
    /// `6:any`); `None` for a token without a PIN, or whose PIN was set before rules were kept
    /// or came from an import.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin_rule: Option<String>,
    /// The registration code (its serial) the token was enrolled with, at its user's login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration: Option<String>,
}

/// How a token was enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `tessera token add`, by root.
    Admin,
    /// `tessera enroll`, by its user.
    #[serde(rename = "self")]
    SelfService,
    /// At a login, with a registration code.
    Registration,
    /// `tessera import`.
    Import,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Admin => "admin",
            Origin::SelfService => "self",
            Origin::Registration => "registration",
            Origin::Import => "import",
        }
    }
}

/// A 4eyes rule as stored: N users of a realm, their parts joined by the separator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FourEyesInfo {
    pub realm: String,
    pub count: u32,
    #[serde(default = "space")]
    pub separator: String,
}

fn space() -> String {
    " ".into()
}

impl TokenInfo {
    /// The JSON of the `info` column (`{}` when no field is set).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_json_reads_back_and_unset_fields_are_left_out() {
        let i = TokenInfo {
            email: Some("alice@example.org".into()),
            ..TokenInfo::default()
        };
        assert_eq!(i.to_json(), r#"{"email":"alice@example.org"}"#);
        assert_eq!(TokenInfo::default().to_json(), "{}");
        let f: TokenInfo =
            serde_json::from_str(r#"{"4eyes":{"realm":"admins","count":2}}"#).unwrap();
        let rule = f.four_eyes.unwrap();
        assert_eq!(
            (rule.realm.as_str(), rule.count, rule.separator.as_str()),
            ("admins", 2, " ")
        );
        // Rows of older builds, and fields this build does not know, still read.
        let old: TokenInfo = serde_json::from_str(r#"{"count":10,"note":"x"}"#).unwrap();
        assert_eq!((old.count, old.origin), (Some(10), None));
        let own = TokenInfo {
            origin: Some(Origin::SelfService),
            ..TokenInfo::default()
        };
        assert_eq!(own.to_json(), r#"{"origin":"self"}"#);
        let back: TokenInfo = serde_json::from_str(&own.to_json()).unwrap();
        assert_eq!(back, own);
    }
}
