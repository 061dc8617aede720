//! The readers of `tessera import` (google-authenticator files, pam_oath users files, PSKC,
//! privacyIDEA CSV): any text is read or refused in one line, without a panic, and what is read
//! is a token tessera can hold (a key of 1 to 128 bytes, 6 or 8 digits, a TOTP period of 30 or
//! 60 s, tan codes of digits).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tessera_engine::crypto::secret;
use tessera_import::{pskc, Imported, Kind, MAX_KEY};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    format: u8,
    text: &'a str,
    now: u64,
    password: Option<&'a [u8]>,
}

fn check(tokens: &[Imported]) {
    for t in tokens {
        match &t.kind {
            Kind::Hotp { key, digits, .. } => {
                assert!(!key.is_empty() && key.len() <= MAX_KEY);
                assert!(matches!(digits, 6 | 8));
            }
            Kind::Totp {
                key,
                digits,
                period,
                ..
            } => {
                assert!(!key.is_empty() && key.len() <= MAX_KEY);
                assert!(matches!(digits, 6 | 8));
                assert!(matches!(period, 30 | 60));
            }
            Kind::Tan { codes } => {
                assert!(!codes.is_empty());
                assert!(codes.iter().all(|c| c.iter().all(u8::is_ascii_digit)));
            }
        }
        assert!(!t.origin.is_empty());
    }
}

fuzz_target!(|i: Input<'_>| {
    let read = match i.format % 4 {
        0 => tessera_import::google_authenticator::read(i.text),
        1 => tessera_import::oath::read(i.text, i.now),
        2 => tessera_import::privacyidea::read(i.text),
        _ => {
            // A few PBKDF2 rounds at most: the reader caps the count, the fuzzer keeps it low.
            let p = i.password.map(|p| pskc::Protection::Password(secret(p)));
            pskc::read(i.text, p.as_ref())
        }
    };
    match read {
        Ok(tokens) => check(&tokens),
        Err(e) => assert!(!e.to_string().contains('\n'), "one line: {e}"),
    }
});
