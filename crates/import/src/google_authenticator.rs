//! `~/.google_authenticator` as google-authenticator-libpam writes it: the base32 secret on the
//! first line, option lines starting with `" `, then the scratch codes, one a line.
//!
//! ```text
//! JBSWY3DPEHPK3PXP
//! " RATE_LIMIT 3 30
//! " WINDOW_SIZE 17
//! " DISALLOW_REUSE 59343170
//! " TOTP_AUTH
//! 12345678
//! ```
//!
//! What keeps a used code used: `DISALLOW_REUSE` lists the time steps already accepted (with
//! `TIME_SKEW` added, as tessera's drift is), so the next step allowed is the largest plus one;
//! `HOTP_COUNTER` is already the next counter allowed. Codes are always 6 digits, HMAC-SHA1.
//! The scratch codes become a `tan` token of their own.

use crate::{check_key, err, Imported, Kind, Result};
use tessera_engine::crypto::{decode_base32, secret};
use tessera_engine::tokens::Algorithm;

/// Reads one file. The file names no user: the command takes `--user` or the file's owner.
pub fn read(text: &str) -> Result<Vec<Imported>> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end()));
    let first = lines.next().map(|(_, l)| l).unwrap_or_default();
    if first.is_empty() || first.starts_with('"') {
        return err("line 1: no secret (the first line of a google-authenticator file is the base32 secret)");
    }
    let key = decode_base32(first)
        .ok_or_else(|| crate::ImportError("line 1: the secret is not base32".into()))?;
    let key = check_key(key, "line 1")?;
    let mut opts = Options::default();
    let mut codes = Vec::new();
    let mut codes_from = 0;
    for (n, line) in lines {
        if line.is_empty() {
            continue;
        }
        if let Some(opt) = line.strip_prefix('"') {
            opts.read(n, opt.trim())?;
        } else if (6..=10).contains(&line.len()) && line.bytes().all(|b| b.is_ascii_digit()) {
            if codes.is_empty() {
                codes_from = n;
            }
            codes.push(secret(line.as_bytes()));
        } else {
            return err(format!(
                "line {n}: neither an option (\" NAME ...) nor a scratch code (6 to 10 digits)"
            ));
        }
    }
    let kind = match opts.hotp_counter {
        Some(_) if opts.totp => {
            return err("the file has both TOTP_AUTH and HOTP_COUNTER");
        }
        Some(counter) => Kind::Hotp {
            key,
            digits: 6,
            algorithm: Algorithm::Sha1,
            counter,
        },
        None => Kind::Totp {
            key,
            digits: 6,
            algorithm: Algorithm::Sha1,
            period: opts.step_size,
            drift: opts.time_skew,
            next_step: opts.used_steps.iter().max().map_or(0, |s| s + 1),
        },
    };
    let mut out = vec![Imported {
        serial: None,
        user: None,
        realm: None,
        kind,
        pin: None,
        origin: "line 1".into(),
        notes: opts.notes,
    }];
    if !codes.is_empty() {
        out.push(Imported {
            serial: None,
            user: None,
            realm: None,
            kind: Kind::Tan { codes },
            pin: None,
            origin: format!("line {codes_from} (scratch codes)"),
            notes: Vec::new(),
        });
    }
    Ok(out)
}

struct Options {
    totp: bool,
    hotp_counter: Option<u64>,
    step_size: u64,
    time_skew: i64,
    used_steps: Vec<u64>,
    notes: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            totp: false,
            hotp_counter: None,
            step_size: 30,
            time_skew: 0,
            used_steps: Vec::new(),
            notes: Vec::new(),
        }
    }
}

impl Options {
    fn read(&mut self, n: usize, opt: &str) -> Result<()> {
        let mut words = opt.split_ascii_whitespace();
        let name = words.next().unwrap_or_default();
        let values: Vec<&str> = words.collect();
        match name {
            "TOTP_AUTH" => self.totp = true,
            "HOTP_COUNTER" => self.hotp_counter = Some(number(n, name, &values)?),
            "STEP_SIZE" => {
                self.step_size = number(n, name, &values)?;
                if !matches!(self.step_size, 30 | 60) {
                    return err(format!(
                        "line {n}: STEP_SIZE {}; tessera's TOTP steps are 30 or 60 seconds",
                        self.step_size
                    ));
                }
            }
            "TIME_SKEW" => {
                self.time_skew = one(n, name, &values)?.parse().map_err(|_| {
                    crate::ImportError(format!("line {n}: TIME_SKEW is not a number"))
                })?
            }
            "DISALLOW_REUSE" => {
                for v in values {
                    let step = v.parse().map_err(|_| {
                        crate::ImportError(format!(
                            "line {n}: DISALLOW_REUSE {v:?} is not a time step"
                        ))
                    })?;
                    self.used_steps.push(step);
                }
            }
            "WINDOW_SIZE" => self.notes.push(format!(
                "WINDOW_SIZE {} not kept: tessera's window is [auth] totp_window / hotp_window",
                values.join(" ")
            )),
            "RATE_LIMIT" => self.notes.push(
                "RATE_LIMIT not kept: tessera locks a token after [auth] max_fail failures".into(),
            ),
            other => self.notes.push(format!("option {other} ignored")),
        }
        Ok(())
    }
}

fn one<'a>(n: usize, name: &str, values: &[&'a str]) -> Result<&'a str> {
    match values {
        [v] => Ok(v),
        _ => err(format!("line {n}: {name} takes one value")),
    }
}

fn number(n: usize, name: &str, values: &[&str]) -> Result<u64> {
    one(n, name, values)?
        .parse()
        .map_err(|_| crate::ImportError(format!("line {n}: {name} is not a number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_totp_file_with_used_steps_and_scratch_codes() {
        let text = "JBSWY3DPEHPK3PXP\n\" RATE_LIMIT 3 30 1700000000\n\" WINDOW_SIZE 17\n\
                    \" DISALLOW_REUSE 56666660 56666662\n\" TIME_SKEW -1\n\" TOTP_AUTH\n\
                    11111111\n22222222\n";
        let t = read(text).unwrap();
        assert_eq!(t.len(), 2);
        match &t[0].kind {
            Kind::Totp {
                key,
                digits,
                period,
                drift,
                next_step,
                ..
            } => {
                assert_eq!(&key[..], b"Hello!\xde\xad\xbe\xef");
                assert_eq!(
                    (*digits, *period, *drift, *next_step),
                    (6, 30, -1, 56666663)
                );
            }
            _ => panic!("not totp"),
        }
        assert_eq!(t[0].notes.len(), 2, "{:?}", t[0].notes);
        match &t[1].kind {
            Kind::Tan { codes } => {
                assert_eq!(codes.len(), 2);
                assert_eq!(&codes[1][..], b"22222222");
            }
            _ => panic!("not tan"),
        }
    }

    #[test]
    fn a_hotp_file_keeps_its_next_counter() {
        let t = read("JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 5\n").unwrap();
        assert_eq!(t.len(), 1, "no scratch codes, no tan token");
        assert!(matches!(t[0].kind, Kind::Hotp { counter: 5, .. }));
    }

    #[test]
    fn bad_files_are_refused_with_the_line() {
        for (text, needle) in [
            ("", "line 1: no secret"),
            ("\" TOTP_AUTH\n", "line 1: no secret"),
            ("not base32!\n", "not base32"),
            (
                "JBSWY3DPEHPK3PXP\n\" STEP_SIZE 45\n",
                "line 2: STEP_SIZE 45",
            ),
            (
                "JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER x\n",
                "line 2: HOTP_COUNTER",
            ),
            (
                "JBSWY3DPEHPK3PXP\n\" DISALLOW_REUSE 1 x\n",
                "line 2: DISALLOW_REUSE",
            ),
            ("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n1234\n", "line 3: neither"),
            (
                "JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" HOTP_COUNTER 1\n",
                "both TOTP_AUTH and HOTP_COUNTER",
            ),
        ] {
            let e = read(text).err().unwrap_or_else(|| panic!("{text:?} read"));
            assert!(e.0.contains(needle), "{text:?}: {e}");
        }
    }
}
