//! The daemon's counters, as `tessera metrics` prints them: the OpenMetrics text format
//! (<https://prometheus.io/docs/specs/om/open_metrics_spec/>), for node_exporter's textfile
//! collector or a scrape.
//!
//! What a caller sends is hostile: the PAM service name comes from the caller (any local user
//! may connect), so only root callers' names make series (the others' logins count under
//! `(user)`), and those are capped in length, stripped of control bytes, escaped, and only the
//! first [`MAX_SERVICES`] names get series of their own; the rest count under `(other)`. The
//! counters are a fixed size however many logins come.

use crate::capacity::Load;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tessera_engine::login::remote::breaker::ServerHealth;
use tessera_engine::store::{AuditEntry, AuditResult};
use tessera_proto::Verdict;

/// Service names with series of their own; later ones count under [`OTHER_SERVICE`].
pub const MAX_SERVICES: usize = 32;
/// The label of the services past [`MAX_SERVICES`].
pub const OTHER_SERVICE: &str = "(other)";
/// The label of every login a caller other than root asked for (a screen locker), whatever
/// service it named.
pub const USER_SERVICE: &str = "(user)";
/// The longest service name kept (in characters); a longer one is cut.
const SERVICE_CHARS: usize = 64;
/// Upper bounds of the login-duration buckets, in seconds: a reject or a PIN+OTP login takes
/// milliseconds, a challenge the user's time to find the phone (up to the answer timeout).
pub const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0,
];

/// How a login ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LoginResult {
    Success,
    /// A wrong pass or OTP, an unknown user, a denying policy.
    Denied,
    /// Too many failures: the token or the source is locked.
    MaxTries,
    /// The store, key, config or remote servers could not be used.
    Unavailable,
    /// PAM_IGNORE (a `skip` policy, `nullok` for a user without tokens).
    Ignored,
    /// The conversation failed (the user closed the prompt).
    ConversationFailed,
    /// A caller asked for an account not its own.
    Refused,
}

impl LoginResult {
    pub fn of(v: Verdict) -> LoginResult {
        match v {
            Verdict::Success => LoginResult::Success,
            Verdict::AuthErr => LoginResult::Denied,
            Verdict::MaxTries => LoginResult::MaxTries,
            Verdict::AuthinfoUnavail => LoginResult::Unavailable,
            Verdict::Ignore => LoginResult::Ignored,
            Verdict::ConvErr => LoginResult::ConversationFailed,
        }
    }

    fn label(self) -> &'static str {
        match self {
            LoginResult::Success => "success",
            LoginResult::Denied => "denied",
            LoginResult::MaxTries => "maxtries",
            LoginResult::Unavailable => "unavailable",
            LoginResult::Ignored => "ignored",
            LoginResult::ConversationFailed => "conversation_failed",
            LoginResult::Refused => "refused",
        }
    }
}

/// The token types that send their OTP, as the audit rows name them.
const SENDING_TYPES: [&str; 2] = ["email", "sms"];

#[derive(Default)]
pub struct Metrics {
    figures: Mutex<Figures>,
}

#[derive(Default)]
struct Figures {
    /// Per service (at most [`MAX_SERVICES`] and `(other)`), per result.
    logins: BTreeMap<String, BTreeMap<LoginResult, u64>>,
    /// Logins per bucket of [`DURATION_BUCKETS`] (not cumulative), and past the last one.
    buckets: [u64; DURATION_BUCKETS.len() + 1],
    duration_sum: f64,
    /// Per sending type: (OTPs sent, sends or challenges that failed).
    sends: [(u64, u64); SENDING_TYPES.len()],
}

/// What the daemon knows besides its counters when it is asked.
pub struct Now<'a> {
    /// Whether the config the daemon serves with loaded.
    pub config_loaded: bool,
    pub load: Load,
    /// Each remote server of the config and its health (empty in local mode).
    pub remote: &'a [(String, ServerHealth)],
}

impl Metrics {
    /// Counts a login: its service, how it ended, how long it took, and the OTPs sent for it
    /// (its audit events of e-mail and SMS tokens).
    pub fn login(&self, service: &str, result: LoginResult, took: Duration, events: &[AuditEntry]) {
        let mut f = self.lock();
        let service = service_label(service);
        let service = if f.logins.contains_key(&service) || f.logins.len() < MAX_SERVICES {
            service
        } else {
            OTHER_SERVICE.to_string()
        };
        *f.logins
            .entry(service)
            .or_default()
            .entry(result)
            .or_insert(0) += 1;
        let secs = took.as_secs_f64();
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(DURATION_BUCKETS.len());
        f.buckets[bucket] += 1;
        f.duration_sum += secs;
        for e in events {
            let Some(i) = SENDING_TYPES.iter().position(|t| *t == e.kind) else {
                continue;
            };
            match e.result {
                AuditResult::Challenge => f.sends[i].0 += 1,
                AuditResult::Error => f.sends[i].1 += 1,
                _ => {}
            }
        }
    }

    /// The counters and `now` in the OpenMetrics text format, ending with `# EOF`.
    pub fn render(&self, now: &Now<'_>) -> String {
        let f = self.lock();
        let mut out = String::new();
        family(
            &mut out,
            "tessera_config_loaded",
            "gauge",
            None,
            "1 if the daemon's config loaded; 0 if every login fails closed until it is fixed.",
        );
        let _ = writeln!(out, "tessera_config_loaded {}", u8::from(now.config_loaded));
        family(
            &mut out,
            "tessera_logins",
            "counter",
            None,
            "Logins served since the daemon started, by PAM service and result.",
        );
        for (service, results) in &f.logins {
            for (result, n) in results {
                let _ = writeln!(
                    out,
                    "tessera_logins_total{{service=\"{}\",result=\"{}\"}} {n}",
                    escape(service),
                    result.label()
                );
            }
        }
        family(
            &mut out,
            "tessera_login_duration_seconds",
            "histogram",
            Some("seconds"),
            "Time from a login's request to its verdict, the user's typing included.",
        );
        let mut cumulative = 0;
        for (i, le) in DURATION_BUCKETS.iter().enumerate() {
            cumulative += f.buckets[i];
            let _ = writeln!(
                out,
                "tessera_login_duration_seconds_bucket{{le=\"{le:?}\"}} {cumulative}"
            );
        }
        cumulative += f.buckets[DURATION_BUCKETS.len()];
        let _ = writeln!(
            out,
            "tessera_login_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}\n\
             tessera_login_duration_seconds_count {cumulative}\n\
             tessera_login_duration_seconds_sum {:?}",
            f.duration_sum
        );
        family(
            &mut out,
            "tessera_sessions_in_use",
            "gauge",
            None,
            "Logins under way now, for root callers (sshd, sudo, su) and for others (screen lockers).",
        );
        let _ = writeln!(
            out,
            "tessera_sessions_in_use{{caller=\"root\"}} {}\n\
             tessera_sessions_in_use{{caller=\"other\"}} {}",
            now.load.root, now.load.others
        );
        family(
            &mut out,
            "tessera_sessions_refused",
            "counter",
            None,
            "Connections refused because the daemon had no place for the caller.",
        );
        let _ = writeln!(out, "tessera_sessions_refused_total {}", now.load.refused);
        family(
            &mut out,
            "tessera_remote_server_up",
            "gauge",
            None,
            "1 while logins use the remote server, 0 while the circuit breaker skips it.",
        );
        for (server, health) in now.remote {
            let _ = writeln!(
                out,
                "tessera_remote_server_up{{server=\"{}\"}} {}",
                escape(server),
                u8::from(health.is_up())
            );
        }
        family(
            &mut out,
            "tessera_otp_sends",
            "counter",
            None,
            "OTPs sent by e-mail or SMS, and sends or challenges of such tokens that failed.",
        );
        for (kind, (sent, failed)) in SENDING_TYPES.iter().zip(f.sends) {
            let _ = writeln!(
                out,
                "tessera_otp_sends_total{{type=\"{kind}\",result=\"sent\"}} {sent}\n\
                 tessera_otp_sends_total{{type=\"{kind}\",result=\"failed\"}} {failed}"
            );
        }
        out.push_str("# EOF\n");
        out
    }

    fn lock(&self) -> MutexGuard<'_, Figures> {
        // No panic happens while it is held; if one did, the counts are still whole numbers.
        self.figures.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A metric family's descriptors; its samples follow.
fn family(out: &mut String, name: &str, kind: &str, unit: Option<&str>, help: &str) {
    let _ = writeln!(out, "# TYPE {name} {kind}");
    if let Some(u) = unit {
        let _ = writeln!(out, "# UNIT {name} {u}");
    }
    let _ = writeln!(out, "# HELP {name} {help}");
}

/// A caller's service name as a label: at most [`SERVICE_CHARS`] characters, control
/// characters replaced, `-` for none.
fn service_label(service: &str) -> String {
    if service.is_empty() {
        return "-".into();
    }
    service
        .chars()
        .take(SERVICE_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A label value escaped as OpenMetrics says: backslash, double quote and line feed.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn now() -> Now<'static> {
        Now {
            config_loaded: true,
            load: Load::default(),
            remote: &[],
        }
    }

    #[test]
    fn a_hostile_service_name_is_one_escaped_capped_label() {
        let m = Metrics::default();
        let evil = format!("a\"b\\c\nd}} 99\n# EOF\n{}", "x".repeat(10_000));
        m.login(&evil, LoginResult::Denied, Duration::ZERO, &[]);
        let text = m.render(&now());
        let line = text
            .lines()
            .find(|l| l.starts_with("tessera_logins_total"))
            .unwrap();
        assert!(line.starts_with(r#"tessera_logins_total{service="a\"b\\c?d} 99?# EOF?xx"#));
        assert!(line.ends_with(r#"",result="denied"} 1"#), "{line}");
        assert!(line.len() < 150, "capped: {} bytes", line.len());
        assert_eq!(text.lines().filter(|l| *l == "# EOF").count(), 1, "{text}");
        let benign = Metrics::default();
        benign.login("sshd", LoginResult::Denied, Duration::ZERO, &[]);
        let lines = benign.render(&now()).lines().count();
        assert_eq!(text.lines().count(), lines, "no line added: {text}");
    }

    #[test]
    fn services_past_the_cap_count_together() {
        let m = Metrics::default();
        for i in 0..MAX_SERVICES + 50 {
            m.login(&format!("s{i}"), LoginResult::Success, Duration::ZERO, &[]);
        }
        m.login("s0", LoginResult::Success, Duration::ZERO, &[]);
        let text = m.render(&now());
        let series = text
            .lines()
            .filter(|l| l.starts_with("tessera_logins_total"))
            .count();
        assert_eq!(series, MAX_SERVICES + 1);
        assert!(text.contains("tessera_logins_total{service=\"s0\",result=\"success\"} 2"));
        assert!(text.contains("tessera_logins_total{service=\"(other)\",result=\"success\"} 50"));
    }

    #[test]
    fn the_histogram_is_cumulative_and_sums_the_durations() {
        let m = Metrics::default();
        for ms in [0, 3, 40, 2_000, 400_000] {
            m.login("sshd", LoginResult::Success, Duration::from_millis(ms), &[]);
        }
        let text = m.render(&now());
        for (le, n) in [
            ("0.001", 1),
            ("0.005", 2),
            ("0.05", 3),
            ("5.0", 4),
            ("300.0", 4),
        ] {
            let want = format!("tessera_login_duration_seconds_bucket{{le=\"{le}\"}} {n}\n");
            assert!(text.contains(&want), "{want} in {text}");
        }
        assert!(text.contains("tessera_login_duration_seconds_bucket{le=\"+Inf\"} 5\n"));
        assert!(text.contains("tessera_login_duration_seconds_count 5\n"));
        let sum: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("tessera_login_duration_seconds_sum "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 402.043).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn sends_are_read_from_the_events_of_email_and_sms_tokens() {
        let m = Metrics::default();
        let event = |kind: &str, result| AuditEntry {
            kind: kind.into(),
            result,
            ..AuditEntry::default()
        };
        let events = [
            event("email", AuditResult::Challenge),
            event("sms", AuditResult::Error),
            event("hotp", AuditResult::Challenge),
            event("email", AuditResult::Accept),
        ];
        m.login("sshd", LoginResult::Success, Duration::ZERO, &events);
        let text = m.render(&Now {
            config_loaded: false,
            load: Load {
                root: 2,
                others: 1,
                refused: 7,
            },
            remote: &[
                ("https://a".into(), ServerHealth::Up),
                (
                    "https://b".into(),
                    ServerHealth::Down {
                        skipped_for: Duration::from_secs(3),
                    },
                ),
            ],
        });
        for want in [
            "tessera_otp_sends_total{type=\"email\",result=\"sent\"} 1",
            "tessera_otp_sends_total{type=\"email\",result=\"failed\"} 0",
            "tessera_otp_sends_total{type=\"sms\",result=\"sent\"} 0",
            "tessera_otp_sends_total{type=\"sms\",result=\"failed\"} 1",
            "tessera_config_loaded 0",
            "tessera_sessions_in_use{caller=\"root\"} 2",
            "tessera_sessions_in_use{caller=\"other\"} 1",
            "tessera_sessions_refused_total 7",
            "tessera_remote_server_up{server=\"https://a\"} 1",
            "tessera_remote_server_up{server=\"https://b\"} 0",
        ] {
            assert!(text.contains(&format!("{want}\n")), "{want} in {text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
