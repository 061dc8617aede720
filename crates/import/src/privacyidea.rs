//! privacyIDEA's token CSV, the file its "Import Tokens" dialog (`/token/load`, type
//! `OATH CSV`) reads, one token a line:
//!
//! ```text
//! # version: 2
//! alice, resolver1, realm1, HOTP0001, 3132333435363738393031323334353637383930, hotp, 6, 0
//! bob,   resolver1, realm1, TOTP0001, 3132333435363738393031323334353637383930, totp, 8, 30
//! carol, resolver1, realm1, TAN0001,  00, tan, 1234567 2345678 3456789
//! ```
//!
//! Version 1 (no `# version: 2` first line) has no user columns: serial, key (hex), type
//! (default `hotp`), then per type: hotp `[digits], [counter]`, totp `[digits], [period]`, tan
//! the codes separated by spaces. Other lines starting with `#` are comments. A user column
//! that is empty leaves the token to `--user`; the resolver is privacyIDEA's and not kept.

use crate::{check_digits, check_key, err, ImportError, Imported, Kind, Result};
use tessera_engine::crypto::{decode_hex, secret};
use tessera_engine::tokens::Algorithm;

pub fn read(text: &str) -> Result<Vec<Imported>> {
    let mut lines = text.lines().enumerate().peekable();
    let with_users = match lines.peek() {
        Some((_, first)) => version(first) == Some("2"),
        None => false,
    };
    let mut out = Vec::new();
    for (i, line) in lines {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(read_line(i + 1, line, with_users)?);
    }
    Ok(out)
}

/// The version a `# version: N` line names.
fn version(line: &str) -> Option<&str> {
    let rest = line.trim().strip_prefix('#')?.trim_start();
    rest.strip_prefix("version:").map(str::trim)
}

fn read_line(n: usize, line: &str, with_users: bool) -> Result<Imported> {
    let at = format!("line {n}");
    let mut cols: Vec<&str> = line.split(',').map(str::trim).collect();
    let (user, realm) = if with_users {
        if cols.len() < 5 {
            return err(format!(
                "{at}: a version 2 line is USER, RESOLVER, REALM, SERIAL, KEY[, TYPE, ...]"
            ));
        }
        let user_cols: Vec<&str> = cols.drain(..3).collect();
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        (some(user_cols[0]), some(user_cols[2]))
    } else {
        (None, None)
    };
    let (serial, key_hex) = match cols.as_slice() {
        [s, k, ..] if !s.is_empty() => (s.to_string(), *k),
        _ => return err(format!("{at}: a line is SERIAL, KEY[, TYPE, ...]")),
    };
    let kind_name = cols.get(2).copied().unwrap_or("hotp").to_ascii_lowercase();
    let num = |i: usize, what: &str| -> Result<Option<u64>> {
        match cols.get(i).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| ImportError(format!("{at}: the {what} is not a number"))),
        }
    };
    let key = || -> Result<_> {
        let k =
            decode_hex(key_hex).ok_or_else(|| ImportError(format!("{at}: the key is not hex")))?;
        check_key(k, &at)
    };
    let digits = |d: Option<u64>| -> Result<u32> {
        check_digits(u32::try_from(d.unwrap_or(6)).unwrap_or(0), &at)
    };
    let kind = match kind_name.as_str() {
        "hotp" => Kind::Hotp {
            key: key()?,
            digits: digits(num(3, "OTP length")?)?,
            algorithm: Algorithm::Sha1,
            counter: num(4, "counter")?.unwrap_or(0),
        },
        "totp" => {
            let period = num(4, "time step")?.unwrap_or(30);
            if !matches!(period, 30 | 60) {
                return err(format!(
                    "{at}: time step {period}; tessera's TOTP steps are 30 or 60 seconds"
                ));
            }
            Kind::Totp {
                key: key()?,
                digits: digits(num(3, "OTP length")?)?,
                algorithm: Algorithm::Sha1,
                period,
                drift: 0,
                next_step: 0,
            }
        }
        "tan" => {
            let codes: Vec<_> = cols
                .get(3)
                .unwrap_or(&"")
                .split_ascii_whitespace()
                .map(|c| secret(c.as_bytes()))
                .collect();
            if codes.is_empty() {
                return err(format!(
                    "{at}: a tan line lists its codes in the 4th column"
                ));
            }
            Kind::Tan { codes }
        }
        other => {
            return err(format!(
                "{at}: type {other:?}; tessera imports hotp, totp and tan tokens"
            ))
        }
    };
    Ok(Imported {
        serial: Some(serial),
        user,
        realm,
        kind,
        pin: None,
        origin: at,
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "3132333435363738393031323334353637383930";

    #[test]
    fn version_1_lines() {
        let text = format!(
            "# tokens\nH1, {KEY}\nH2, {KEY}, hotp, 8, 12\nT1, {KEY}, TOTP, 6, 60\nN1, 00, tan, 1234567 7654321\n"
        );
        let t = read(&text).unwrap();
        assert_eq!(t.len(), 4);
        assert!(matches!(
            t[0].kind,
            Kind::Hotp {
                digits: 6,
                counter: 0,
                ..
            }
        ));
        assert!(matches!(
            t[1].kind,
            Kind::Hotp {
                digits: 8,
                counter: 12,
                ..
            }
        ));
        assert!(matches!(
            t[2].kind,
            Kind::Totp {
                digits: 6,
                period: 60,
                ..
            }
        ));
        match &t[3].kind {
            Kind::Tan { codes } => assert_eq!(&codes[1][..], b"7654321"),
            _ => panic!("not tan"),
        }
        assert_eq!(t[1].serial.as_deref(), Some("H2"));
        assert!(t.iter().all(|i| i.user.is_none()));
    }

    #[test]
    fn version_2_lines_name_user_and_realm() {
        let text = format!("# version: 2\nalice, r1, realm1, H1, {KEY}, hotp\n, r1, , H2, {KEY}\n");
        let t = read(&text).unwrap();
        assert_eq!(t[0].user.as_deref(), Some("alice"));
        assert_eq!(t[0].realm.as_deref(), Some("realm1"));
        assert_eq!(t[1].user, None);
        assert_eq!(t[1].realm, None);
        assert_eq!(t[1].origin, "line 3");
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        for (text, needle) in [
            ("H1\n".to_string(), "line 1: a line is SERIAL, KEY"),
            (format!("H1, {KEY}, sms\n"), "type \"sms\""),
            ("H1, zz\n".to_string(), "not hex"),
            (format!("H1, {KEY}, hotp, 7\n"), "7-digit"),
            (format!("H1, {KEY}, totp, 6, 45\n"), "time step 45"),
            (
                format!("H1, {KEY}, hotp, 6, -1\n"),
                "counter is not a number",
            ),
            ("N1, 00, tan\n".to_string(), "4th column"),
            (
                format!("# version: 2\nH1, {KEY}\n"),
                "line 2: a version 2 line",
            ),
        ] {
            let e = read(&text).err().unwrap_or_else(|| panic!("{text:?} read"));
            assert!(e.0.contains(needle), "{text:?}: {e}");
        }
    }
}
