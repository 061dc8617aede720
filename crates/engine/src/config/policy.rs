//! `[[policy]]` as written: who needs a second factor, where. Ordered rules; the first whose
//! every given criterion matches decides ([`crate::login::policy`] applies them to a login). A
//! criterion is a list (any entry may match): `service`, `user` and `tty` are names with `*` and
//! `?` wildcards, `group` the names of groups the account is in (primary or supplementary,
//! through NSS), `rhost` addresses or CIDR networks (IPv4, IPv6) that PAM_RHOST must be in. No
//! rule matching: `require`.
//!
//! `from` (a date, `YYYY-MM-DD`) makes a rule apply from 00:00 UTC of that day on.
//!
//! `skip` gives PAM_IGNORE, never PAM_SUCCESS: a `sufficient` line can't turn a skipped factor
//! into a login. `deny` refuses without a prompt. `enforce` is `require` where the module's
//! `nullok` does not apply: a user without a token is refused (the end of a rollout). A
//! `require` rule may have a grace window: after a second factor accepted for the same account,
//! service and remote host, the next logins within `grace` seconds are skipped like `skip` (and
//! audited as such).

use serde::Deserialize;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    #[default]
    Require,
    Skip,
    Deny,
    /// `require`, and `nullok` on the PAM line no longer lets a user without a token in.
    Enforce,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Require => "require",
            Action::Skip => "skip",
            Action::Deny => "deny",
            Action::Enforce => "enforce",
        }
    }
}

/// One `[[policy]]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rule {
    #[serde(deserialize_with = "crate::text_list::one_or_many")]
    pub service: Vec<String>,
    #[serde(deserialize_with = "crate::text_list::one_or_many")]
    pub user: Vec<String>,
    #[serde(deserialize_with = "crate::text_list::one_or_many")]
    pub group: Vec<String>,
    #[serde(deserialize_with = "crate::text_list::one_or_many")]
    pub rhost: Vec<String>,
    #[serde(deserialize_with = "crate::text_list::one_or_many")]
    pub tty: Vec<String>,
    pub action: Action,
    /// Seconds; 0 (the default) is no grace window.
    pub grace: u64,
    /// The rule applies from this day on (`YYYY-MM-DD`, from 00:00 UTC); unset: always.
    #[serde(deserialize_with = "day")]
    pub from: Option<Day>,
}

/// A day, as the Unix time of its 00:00 UTC, and as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    pub start: u64,
    pub text: String,
}

impl Day {
    /// `YYYY-MM-DD` (a real date of the Gregorian calendar, year 1970 to 9999).
    pub fn parse(text: &str) -> Option<Day> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u64> {
            let part = text.get(r)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let days_in = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if y < 1970 || !(1..=12).contains(&m) || d == 0 || d > days_in[(m - 1) as usize] {
            return None;
        }
        let days = crate::calendar::days_from_civil(y as i64, m as u32, d as u32) as u64;
        Some(Day {
            start: days * 86_400,
            text: text.to_string(),
        })
    }
}

fn day<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Day>, D::Error> {
    let text = String::deserialize(d)?;
    Day::parse(&text).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "\"{}\" is not a date YYYY-MM-DD",
            text.escape_debug()
        ))
    })
}

/// The longest grace window: a day.
pub const MAX_GRACE: u64 = 86_400;

impl Rule {
    /// Whether the rule can decide logins of `service`: it names no service, or one that
    /// matches.
    pub fn covers_service(&self, service: &str) -> bool {
        self.service.is_empty() || self.service.iter().any(|p| glob(p, service))
    }

    /// Whether the rule can leave a login to the rest of the PAM stack (PAM_IGNORE): a
    /// `skip`, or a grace window.
    pub fn may_ignore(&self) -> bool {
        self.action == Action::Skip || self.grace > 0
    }

    /// Checks what TOML types can't: the networks parse, grace only on `require`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for net in &self.rhost {
            Network::parse(net).ok_or_else(|| {
                (
                    "rhost",
                    format!(
                        "\"{}\" is no IP address or CIDR network",
                        net.escape_debug()
                    ),
                )
            })?;
        }
        if self.grace > MAX_GRACE {
            return Err(("grace", format!("must be at most {MAX_GRACE} seconds")));
        }
        if self.grace > 0 && self.action != Action::Require {
            return Err((
                "grace",
                "a grace window is for action = \"require\" rules only".into(),
            ));
        }
        Ok(())
    }
}

/// `*` (any run, also empty) and `?` (one character); everything else literal.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative matching with one backtrack point: linear enough for names.
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// An address and prefix length.
pub(crate) struct Network {
    addr: IpAddr,
    prefix: u32,
}

impl Network {
    pub(crate) fn parse(s: &str) -> Option<Network> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 3 => {
                p.parse().ok()?
            }
            Some(_) => return None,
            None => max,
        };
        (prefix <= max).then_some(Network { addr, prefix })
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 address seen as IPv6 (::ffff:a.b.c.d) is the IPv4 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn rules(toml: &str) -> Vec<Rule> {
        #[derive(Deserialize)]
        struct P {
            policy: Vec<Rule>,
        }
        toml::from_str::<P>(toml).unwrap().policy
    }

    #[test]
    fn days_are_dates_of_the_calendar_from_their_midnight_utc() {
        let start = |t: &str| Day::parse(t).map(|d| d.start);
        assert_eq!(start("1970-01-01"), Some(0));
        assert_eq!(start("2000-03-01"), Some(951_868_800));
        assert_eq!(start("2024-02-29"), Some(1_709_164_800));
        assert_eq!(start("2027-01-15"), Some(1_799_971_200));
        for bad in [
            "2023-02-29",
            "2027-13-01",
            "2027-00-10",
            "2027-1-5",
            " 2027-01-05",
            "2027-01-32",
            "1969-12-31",
            "2027/01/05",
            "+027-01-05",
            "",
        ] {
            assert_eq!(start(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_from_that_is_no_date_is_refused() {
        let bad = toml::from_str::<toml::Value>("from = \"2027-02-30\"").unwrap();
        let e = Rule::deserialize(bad).unwrap_err().to_string();
        assert!(e.contains("\"2027-02-30\" is not a date YYYY-MM-DD"), "{e}");
    }

    #[test]
    fn networks_and_globs() {
        let n = |s: &str| Network::parse(s).unwrap();
        assert!(n("192.0.2.0/24").contains("192.0.2.200".parse().unwrap()));
        assert!(!n("192.0.2.0/24").contains("192.0.3.1".parse().unwrap()));
        assert!(n("0.0.0.0/0").contains("203.0.113.9".parse().unwrap()));
        assert!(n("192.0.2.7").contains("192.0.2.7".parse().unwrap()));
        assert!(!n("192.0.2.7").contains("192.0.2.8".parse().unwrap()));
        assert!(n("::/0").contains("::1".parse().unwrap()));
        assert!(!n("10.0.0.0/8").contains("::1".parse().unwrap()));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "example.org",
            "10/8",
        ] {
            assert!(Network::parse(bad).is_none(), "{bad}");
        }
        assert!(
            glob("*", "") && glob("ssh*", "sshd") && glob("*d", "sshd") && glob("s?hd", "sshd")
        );
        assert!(!glob("ssh", "sshd") && !glob("?", "") && !glob("a*b", "ac"));
        assert!(glob("a*b*c", "aXbYbZc"));
    }

    #[test]
    fn bad_rules_are_refused() {
        let bad = |t: &str| rules(t)[0].validate().unwrap_err().0;
        assert_eq!(bad("[[policy]]\nrhost = \"10.0.0.0/40\"\n"), "rhost");
        assert_eq!(bad("[[policy]]\naction = \"skip\"\ngrace = 60\n"), "grace");
        assert_eq!(bad("[[policy]]\ngrace = 100000\n"), "grace");
    }
}
