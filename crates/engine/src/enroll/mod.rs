//! Making a new token: its serial and key, the `otpauth://` URI and QR code an authenticator
//! app scans, the checks of a new PIN. `tessera token add` (root, for anyone) and the
//! enrollment dialogue (a user for themselves: [`dialogue`]) share them. Who may enroll, and
//! when, is the host's to decide (`crate::login::self_enroll`).

pub mod dialogue;
pub mod qr;

pub use crate::pin_rule::{PinContents, PinProblem, PinRule, MAX_PIN};
pub use dialogue::{Enrolled, Enrollee, Enrollment, Wanted};

use crate::crypto::{self, Secret};
use crate::tokens::{Algorithm, TokenType};
use rand::RngCore;

/// What the URI of a new HOTP or TOTP token says.
pub struct KeyUri<'a> {
    pub kind: TokenType,
    pub key: &'a [u8],
    pub algorithm: Algorithm,
    pub digits: u32,
    pub period: u64,
    pub counter: u64,
}

/// The Key URI of authenticator apps:
/// `otpauth://TYPE/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER[&algorithm=..][&digits=..][&period=..]`
/// with `counter=N` always for HOTP (the format requires it). Parameters at the format's defaults
/// (SHA1, 6 digits, 30 s) are left out: a shorter URI makes a smaller QR code.
pub fn otpauth_uri(issuer: &str, account: &str, k: &KeyUri<'_>) -> String {
    let mut uri = format!(
        "otpauth://{}/{}:{}?secret={}&issuer={}",
        k.kind.name(),
        crate::http::percent_encode(issuer),
        crate::http::percent_encode(account),
        crypto::encode_base32(k.key),
        crate::http::percent_encode(issuer),
    );
    if k.algorithm != Algorithm::Sha1 {
        uri.push_str(&format!(
            "&algorithm={}",
            k.algorithm.name().to_ascii_uppercase()
        ));
    }
    if k.digits != 6 {
        uri.push_str(&format!("&digits={}", k.digits));
    }
    match k.kind {
        TokenType::Hotp => uri.push_str(&format!("&counter={}", k.counter)),
        _ if k.period != 30 => uri.push_str(&format!("&period={}", k.period)),
        _ => {}
    }
    uri
}

/// A random OTP key as long as the hash output, like the RFC 6238 seeds.
pub fn random_key(alg: Algorithm) -> Secret {
    let len = match alg {
        Algorithm::Sha1 => 20,
        Algorithm::Sha256 => 32,
        Algorithm::Sha512 => 64,
    };
    let mut key = zeroize::Zeroizing::new(vec![0u8; len]);
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

/// The type in capitals and 8 random hex digits, e.g. `HOTP1A2B3C4D`.
pub fn new_serial(kind: TokenType) -> String {
    let mut b = [0u8; 4];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!(
        "{}{}",
        kind.name().to_ascii_uppercase(),
        crypto::encode_hex(&b).to_ascii_uppercase()
    )
}

/// The name the user logs in with: `user<sep>realm` for a realm other than the default.
pub fn login_name(cfg: &crate::config::Config, user: &str, realm: &str) -> String {
    match cfg.auth.realm_separator.as_deref() {
        Some(sep) if realm != cfg.auth.default_realm => format!("{user}{sep}{realm}"),
        _ => user.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(
        kind: TokenType,
        digits: u32,
        counter: u64,
        algorithm: Algorithm,
        period: u64,
    ) -> String {
        let k = KeyUri {
            kind,
            key: b"12345678901234567890",
            algorithm,
            digits,
            period,
            counter,
        };
        otpauth_uri(
            if kind == TokenType::Hotp {
                "ACME Co"
            } else {
                "tessera"
            },
            if kind == TokenType::Hotp {
                "bob@it"
            } else {
                "alice"
            },
            &k,
        )
    }

    #[test]
    fn otpauth_uris_follow_the_key_uri_format() {
        assert_eq!(
            uri(TokenType::Totp, 6, 0, Algorithm::Sha1, 30),
            "otpauth://totp/tessera:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=tessera"
        );
        assert_eq!(
            uri(TokenType::Hotp, 8, 5, Algorithm::Sha1, 30),
            "otpauth://hotp/ACME%20Co:bob%40it?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=ACME%20Co&digits=8&counter=5"
        );
        assert_eq!(
            uri(TokenType::Totp, 6, 0, Algorithm::Sha256, 60),
            "otpauth://totp/tessera:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=tessera&algorithm=SHA256&period=60"
        );
    }

    #[test]
    fn generated_serials_name_the_type_and_keys_the_hash() {
        let s = new_serial(TokenType::Hotp);
        assert!(s.starts_with("HOTP") && s.len() == 12, "{s}");
        assert_ne!(new_serial(TokenType::Hotp), s);
        assert_eq!(random_key(Algorithm::Sha1).len(), 20);
        assert_eq!(random_key(Algorithm::Sha512).len(), 64);
    }
}
