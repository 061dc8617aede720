//! A pam_oath users file (liboath's `UsersFile` format), one token a line:
//!
//! ```text
//! HOTP      alice  -     3132333435363738393031323334353637383930
//! HOTP/T30  bob    1234  3132333435363738393031323334353637383930  0  755224  2026-11-30T06:15:25L
//! ```
//!
//! Fields: type (`HOTP`, `HOTP/E[/D]` for events, `HOTP/T30[/D]` and `HOTP/T60[/D]` for time, D
//! the digits), user, password (`-` none, `+` checked by another module, else the password typed
//! before the OTP, as tessera's PIN is), the key in hex, and what liboath writes back after a
//! login: the counter of the last accepted code, that code, and when (local time).
//!
//! What keeps a used code used: for HOTP the counter written is the one of the accepted code,
//! so when a last code is there the next counter allowed is one more. For TOTP liboath keeps the
//! code only; its step is found by computing the codes around the time stamp (taken as UTC,
//! widened by a day for the time zone, and never past `now` plus the window), and the next
//! step allowed is the latest step with that code plus one.

use crate::{check_digits, check_key, err, ImportError, Imported, Kind, Result};
use tessera_engine::crypto::{ct_eq, decode_hex, secret};
use tessera_engine::tokens::{hotp_code, Algorithm};

/// Steps searched beyond `now` for a TOTP last code (more than any `totp_window` allows).
const AHEAD: u64 = 10;
/// The widest a local time stamp is off UTC (UTC+14, UTC-12), in seconds.
const ZONE: u64 = 14 * 3600;

/// Reads a users file; `now` is the time (seconds since the epoch) for TOTP last codes.
pub fn read(text: &str, now: u64) -> Result<Vec<Imported>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        match fields.first() {
            None => continue,
            Some(f) if f.starts_with('#') => continue,
            Some(_) => out.push(read_line(n, &fields, now)?),
        }
    }
    Ok(out)
}

fn read_line(n: usize, fields: &[&str], now: u64) -> Result<Imported> {
    let at = format!("line {n}");
    let (type_field, user, password, key_hex) = match fields {
        [t, u, p, k, ..] => (*t, *u, *p, *k),
        _ => {
            return err(format!(
                "{at}: a users file line is TYPE USER PASSWORD KEY [COUNTER [LAST-OTP TIME]]"
            ))
        }
    };
    let (digits, period) = parse_type(type_field).ok_or_else(|| {
        ImportError(format!(
            "{at}: type {type_field:?} is not one pam_oath reads"
        ))
    })?;
    let digits = check_digits(digits, &at)?;
    let key =
        decode_hex(key_hex).ok_or_else(|| ImportError(format!("{at}: the key is not hex")))?;
    let key = check_key(key, &at)?;
    let counter: u64 = match fields.get(4) {
        Some(c) => c
            .parse()
            .map_err(|_| ImportError(format!("{at}: the counter is not a number")))?,
        None => 0,
    };
    let last_otp = fields.get(5).copied();
    let mut notes = Vec::new();
    let pin = match password {
        "-" => None,
        "+" => {
            notes.push("password \"+\" (checked by another module): no PIN set".into());
            None
        }
        p => Some(secret(p.as_bytes())),
    };
    let kind = match period {
        None => Kind::Hotp {
            counter: if last_otp.is_some() {
                counter.saturating_add(1)
            } else {
                counter
            },
            key,
            digits,
            algorithm: Algorithm::Sha1,
        },
        Some(period) => {
            let next_step = match last_otp {
                None => 0,
                Some(otp) => {
                    let when = fields.get(6).and_then(|t| parse_time(t)).ok_or_else(|| {
                        ImportError(format!(
                            "{at}: a last OTP without a time stamp (YYYY-MM-DDTHH:MM:SSL)"
                        ))
                    })?;
                    step_of(&key, digits, period, otp.as_bytes(), when, now).ok_or_else(|| {
                        ImportError(format!(
                            "{at}: the last OTP is not a code of this key near its time stamp"
                        ))
                    })? + 1
                }
            };
            Kind::Totp {
                key,
                digits,
                algorithm: Algorithm::Sha1,
                period,
                drift: 0,
                next_step,
            }
        }
    };
    Ok(Imported {
        serial: None,
        user: Some(user.to_string()),
        realm: None,
        kind,
        pin,
        origin: at,
        notes,
    })
}

/// liboath's token types: (digits, TOTP period or `None` for HOTP).
fn parse_type(t: &str) -> Option<(u32, Option<u64>)> {
    let rest = t.strip_prefix("HOTP")?;
    let (period, rest) = if rest.is_empty() {
        return Some((6, None));
    } else if let Some(r) = rest.strip_prefix("/E") {
        (None, r)
    } else if let Some(r) = rest.strip_prefix("/T30") {
        (Some(30), r)
    } else if let Some(r) = rest.strip_prefix("/T60") {
        (Some(60), r)
    } else {
        return None;
    };
    let digits = match rest {
        "" | "/6" => 6,
        "/7" => 7,
        "/8" => 8,
        _ => return None,
    };
    Some((digits, period))
}

/// liboath's `%Y-%m-%dT%H:%M:%SL` read as if it were UTC: seconds since the epoch.
fn parse_time(t: &str) -> Option<u64> {
    let t = t.strip_suffix('L')?;
    let (date, time) = t.split_once('T')?;
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let mut d = date.splitn(3, '-').map(num);
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut h = time.splitn(3, ':').map(num);
    let (hh, mm, ss) = (h.next()??, h.next()??, h.next()??);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    Some(days_from_civil(y, m, day) * 86400 + hh * 3600 + mm * 60 + ss)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (year >= 1970).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The latest step around `when` (± a day for the time zone, and not past `now` + [`AHEAD`]
/// steps) whose code is `otp`.
fn step_of(key: &[u8], digits: u32, period: u64, otp: &[u8], when: u64, now: u64) -> Option<u64> {
    let first = when.saturating_sub(ZONE) / period;
    let last = ((when + ZONE) / period).min(now / period + AHEAD);
    (first..=last)
        .rev()
        .find(|s| ct_eq(&hotp_code(Algorithm::Sha1, key, *s, digits), otp))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "3132333435363738393031323334353637383930";

    #[test]
    fn types_as_liboath_reads_them() {
        assert_eq!(parse_type("HOTP"), Some((6, None)));
        assert_eq!(parse_type("HOTP/E/8"), Some((8, None)));
        assert_eq!(parse_type("HOTP/T30"), Some((6, Some(30))));
        assert_eq!(parse_type("HOTP/T60/8"), Some((8, Some(60))));
        assert_eq!(parse_type("HOTP/T45"), None);
        assert_eq!(parse_type("TOTP"), None);
    }

    #[test]
    fn time_stamps_are_read_as_utc() {
        assert_eq!(parse_time("1970-01-01T00:00:00L"), Some(0));
        // RFC 6238's test time 1234567890 is 2009-02-13 23:31:30 UTC.
        assert_eq!(parse_time("2009-02-13T23:31:30L"), Some(1234567890));
        assert_eq!(parse_time("2009-02-13T23:31:30"), None);
        assert_eq!(parse_time("2009-13-13T23:31:30L"), None);
    }

    #[test]
    fn hotp_counters_and_pins() {
        let text = format!(
            "# a comment\n\nHOTP alice - {KEY}\nHOTP/E/8 bob 1234 {KEY} 7 12345678 2026-11-30T06:15:25L\nHOTP carol + {KEY} 3\n"
        );
        let t = read(&text, 0).unwrap();
        assert_eq!(t.len(), 3);
        assert!(matches!(
            t[0].kind,
            Kind::Hotp {
                counter: 0,
                digits: 6,
                ..
            }
        ));
        assert!(t[0].pin.is_none());
        // A last code at counter 7: 8 is the next allowed.
        assert!(matches!(
            t[1].kind,
            Kind::Hotp {
                counter: 8,
                digits: 8,
                ..
            }
        ));
        assert_eq!(t[1].pin.as_deref().map(|p| &p[..]), Some(&b"1234"[..]));
        assert_eq!(t[1].user.as_deref(), Some("bob"));
        // No last code: counter 3 was never used.
        assert!(matches!(t[2].kind, Kind::Hotp { counter: 3, .. }));
        assert_eq!(t[2].notes.len(), 1);
    }

    #[test]
    fn a_totp_last_code_is_found_at_its_step() {
        // RFC 6238: at 1234567890 (step 41152263) the SHA-1 key gives 89005924 (8 digits).
        let text = format!("HOTP/T30/8 alice - {KEY} 0 89005924 2009-02-13T23:31:30L\n");
        let t = read(&text, 1234567890 + 3600).unwrap();
        assert!(
            matches!(
                t[0].kind,
                Kind::Totp {
                    next_step: 41152264,
                    period: 30,
                    ..
                }
            ),
            "the step after the last code's"
        );
        // A code that is not this key's near its time stamp is refused.
        let text = format!("HOTP/T30/8 alice - {KEY} 0 00000000 2009-02-13T23:31:30L\n");
        let e = read(&text, 1234567890).err().unwrap();
        assert!(e.0.contains("line 1: the last OTP"), "{e}");
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        for (text, needle) in [
            ("HOTP alice -\n".to_string(), "line 1: a users file line"),
            (format!("\nTOTP alice - {KEY}\n"), "line 2: type \"TOTP\""),
            (format!("HOTP/E/7 alice - {KEY}\n"), "7-digit"),
            ("HOTP alice - xyz\n".to_string(), "not hex"),
            (format!("HOTP alice - {KEY} x\n"), "counter is not a number"),
            (
                format!("HOTP/T30 alice - {KEY} 0 123456\n"),
                "without a time stamp",
            ),
        ] {
            let e = read(&text, 0)
                .err()
                .unwrap_or_else(|| panic!("{text:?} read"));
            assert!(e.0.contains(needle), "{text:?}: {e}");
        }
    }
}
