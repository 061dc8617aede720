//! `[enroll]`: who may enroll a token for themselves, which types, under which issuer.
//! Apart from `mod.rs` so that each section's keys, defaults and checks read in one place.

use super::Invalid;
use serde::Deserialize;

/// Self-service enrollment (`tessera enroll`, through the daemon).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrollConfig {
    /// The groups whose members may enroll themselves; empty (the default): nobody.
    pub groups: Vec<String>,
    /// The token types they may make: `totp`, `hotp` (the types an authenticator app holds).
    pub types: Vec<String>,
    /// The issuer an authenticator app shows for the new token (the otpauth URI's `issuer`).
    pub issuer: String,
}

impl Default for EnrollConfig {
    fn default() -> Self {
        EnrollConfig {
            groups: Vec::new(),
            types: vec!["totp".into()],
            issuer: "tessera".into(),
        }
    }
}

/// The token types a user may enroll for themselves: those whose key an app takes from a QR
/// code.
pub const SELF_ENROLL_TYPES: [crate::tokens::TokenType; 2] = [
    crate::tokens::TokenType::Totp,
    crate::tokens::TokenType::Hotp,
];

impl EnrollConfig {
    /// The checks of `[enroll]`.
    pub(super) fn validate(&self) -> std::result::Result<(), Invalid> {
        for t in &self.types {
            if !SELF_ENROLL_TYPES.iter().any(|k| k.name() == t) {
                return Err((
                    "enroll.types",
                    format!("\"{t}\" can't be enrolled by users (totp or hotp)"),
                ));
            }
        }
        if self.issuer.is_empty() || self.issuer.chars().any(char::is_control) {
            return Err((
                "enroll.issuer",
                "must be a name without control characters".into(),
            ));
        }
        Ok(())
    }
}
