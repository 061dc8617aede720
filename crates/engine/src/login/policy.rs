//! What `[[policy]]` makes of a login, before any prompt: the first rule whose criteria all
//! match ([`decide`]; the rules as written are [`crate::config::policy`]), and the step that
//! applies it: skip, deny, `enforce` (no `nullok`), or a grace window that still holds.

use super::Resources;
use crate::accounts::{Accounts, SystemAccounts};
use crate::auth::{Clock, Login, Outcome, Verdict};
use crate::config::policy::{glob, Action, Network, Rule};
use crate::config::Config;
use crate::store::{AuditEntry, AuditResult, Store};
use std::net::IpAddr;

/// Who is logging in, as the rules see it.
pub struct Who<'a> {
    pub service: &'a str,
    /// The account's own name where there is one, else the name given.
    pub user: String,
    pub rhost: &'a str,
    pub tty: &'a str,
    /// The Unix time of the login (for rules with `from`).
    pub now: u64,
}

impl<'a> Who<'a> {
    /// A login as PAM gives it: the user name resolved to its account's own name (NSS), as
    /// the rules and the audit table name users.
    pub fn of(
        service: &'a str,
        user: &str,
        rhost: &'a str,
        tty: &'a str,
        now: u64,
        accounts: &dyn Accounts,
    ) -> Who<'a> {
        Who {
            service,
            user: accounts.canonical(user).unwrap_or_else(|| user.to_string()),
            rhost,
            tty,
            now,
        }
    }
}

/// What the rules say for a login, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The rule that matched (0-based), or `None`: no rule matched.
    pub rule: Option<usize>,
    pub action: Action,
    pub grace: u64,
    /// The criteria that matched, for the audit row and `tessera policy test`.
    pub why: String,
}

impl Decision {
    /// "rule 2 (service sshd, rhost 10.0.0.0/8)" or "no rule".
    pub fn describe(&self) -> String {
        match self.rule {
            Some(i) if self.why.is_empty() => {
                format!("policy rule {} (matches every login)", i + 1)
            }
            Some(i) => format!("policy rule {} ({})", i + 1, self.why),
            None => "no policy rule matches".into(),
        }
    }
}

/// The first rule that matches `who`.
pub fn decide(rules: &[Rule], who: &Who<'_>, accounts: &dyn Accounts) -> Decision {
    // Groups are looked up only if a rule asks, and once.
    let mut groups: Option<Vec<String>> = None;
    for (i, r) in rules.iter().enumerate() {
        let mut why = Vec::new();
        if !r.service.is_empty() {
            match r.service.iter().find(|p| glob(p, who.service)) {
                Some(p) => why.push(format!("service {p}")),
                None => continue,
            }
        }
        if !r.user.is_empty() {
            match r.user.iter().find(|p| glob(p, &who.user)) {
                Some(p) => why.push(format!("user {p}")),
                None => continue,
            }
        }
        if !r.group.is_empty() {
            let mine = groups.get_or_insert_with(|| accounts.groups(&who.user));
            match r.group.iter().find(|g| mine.iter().any(|m| m == *g)) {
                Some(g) => why.push(format!("group {g}")),
                None => continue,
            }
        }
        if !r.rhost.is_empty() {
            let Ok(addr) = who.rhost.parse::<IpAddr>() else {
                continue; // no address (a local login) or a host name: no network contains it
            };
            match r
                .rhost
                .iter()
                .find(|n| Network::parse(n).is_some_and(|net| net.contains(addr)))
            {
                Some(n) => why.push(format!("rhost {n}")),
                None => continue,
            }
        }
        if !r.tty.is_empty() {
            match r.tty.iter().find(|p| glob(p, who.tty)) {
                Some(p) => why.push(format!("tty {p}")),
                None => continue,
            }
        }
        if let Some(day) = &r.from {
            if who.now < day.start {
                continue;
            }
            why.push(format!("from {}", day.text));
        }
        return Decision {
            rule: Some(i),
            action: r.action,
            grace: r.grace,
            why: why.join(", "),
        };
    }
    Decision {
        rule: None,
        action: Action::Require,
        grace: 0,
        why: String::new(),
    }
}

/// What `[[policy]]` makes of a login.
pub(super) enum Applied {
    /// Decided without a second factor (skipped, denied, within a grace window).
    Decided(Outcome),
    /// The second factor is asked, with the module's options.
    Asks,
    /// The second factor is asked, and `nullok` does not apply (`enforce`).
    AsksWithoutNullok,
}

/// Decides `login` by the rules: an outcome when they decide (skip, deny, a grace window that
/// holds, each audited), else whether the second factor is asked with or without `nullok`.
pub(super) fn apply_policy<R: Resources>(
    res: &R,
    cfg: &Config,
    login: &Login,
    clock: &impl Clock,
) -> Applied {
    if cfg.policy.is_empty() {
        return Applied::Asks;
    }
    let accounts = SystemAccounts;
    let now = clock.now();
    let who = Who::of(
        &login.service,
        &login.user,
        &login.rhost,
        &login.tty,
        now,
        &accounts,
    );
    let d = decide(&cfg.policy, &who, &accounts);
    match (d.action, d.grace) {
        (Action::Require, 0) => return Applied::Asks,
        (Action::Enforce, _) => return Applied::AsksWithoutNullok,
        _ => {}
    }
    // One store for the grace window's look-up and the audit row (absent on a remote-only
    // host: no grace window there, and the row goes to syslog only).
    let store = res.store(cfg).ok();
    let (result, reason) = match d.action {
        Action::Require | Action::Enforce => {
            let since = now.saturating_sub(d.grace);
            let recent = store.as_ref().is_some_and(|s| {
                s.accepted_since(&who.user, &login.service, &login.rhost, since)
                    .unwrap_or(false)
            });
            if !recent {
                return Applied::Asks;
            }
            let why = format!(
                "skipped: a second factor within the last {} s ({})",
                d.grace,
                d.describe()
            );
            (AuditResult::Skip, why)
        }
        Action::Skip => (AuditResult::Skip, format!("skipped by {}", d.describe())),
        Action::Deny => (AuditResult::Reject, format!("denied by {}", d.describe())),
    };
    let verdict = match d.action {
        Action::Deny => Verdict::Reject {
            reason: reason.clone(),
        },
        _ => Verdict::Skipped {
            reason: reason.clone(),
        },
    };
    let event = AuditEntry {
        time: now,
        service: login.service.clone(),
        rhost: login.rhost.clone(),
        user: who.user,
        result,
        reason,
        caller: Some(login.caller),
        ..AuditEntry::default()
    };
    if let Some(store) = &store {
        let _ = store.write(|tx| tx.audit(&event));
    }
    Applied::Decided(Outcome {
        verdict,
        events: vec![event],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::policy::tests::rules;
    use crate::config::policy::Day;

    struct Fixed;
    impl Accounts for Fixed {
        fn canonical(&self, name: &str) -> Option<String> {
            Some(name.to_string())
        }
        fn groups(&self, user: &str) -> Vec<String> {
            match user {
                "alice" => vec!["alice".into(), "admins".into()],
                _ => vec![user.into()],
            }
        }
    }

    fn who<'a>(service: &'a str, user: &'a str, rhost: &'a str, tty: &'a str) -> Who<'a> {
        Who::of(service, user, rhost, tty, 0, &Fixed)
    }

    #[test]
    fn a_rule_with_from_applies_from_that_day_on() {
        let r = rules(
            r#"
            [[policy]]
            group = "admins"
            action = "enforce"
            from = "2027-01-15"
            "#,
        );
        let day = Day::parse("2027-01-15").unwrap().start;
        let mut w = who("sshd", "alice", "", "");
        w.now = day - 1;
        assert_eq!(decide(&r, &w, &Fixed).rule, None, "the day before");
        w.now = day;
        let d = decide(&r, &w, &Fixed);
        assert_eq!((d.rule, d.action), (Some(0), Action::Enforce));
        assert_eq!(d.why, "group admins, from 2027-01-15");
        w.user = "bob".into();
        assert_eq!(decide(&r, &w, &Fixed).rule, None, "not in the group");
    }

    #[test]
    fn the_first_matching_rule_decides_and_no_rule_means_require() {
        let r = rules(
            r#"
            [[policy]]
            service = "sshd"
            rhost = ["10.0.0.0/8", "2001:db8::/32"]
            action = "skip"
            [[policy]]
            group = "admins"
            action = "require"
            grace = 300
            [[policy]]
            user = ["guest*", "temp?"]
            action = "deny"
            [[policy]]
            tty = ":*"
            action = "skip"
            "#,
        );
        let d = decide(&r, &who("sshd", "bob", "10.1.2.3", ""), &Fixed);
        assert_eq!((d.rule, d.action), (Some(0), Action::Skip));
        assert_eq!(
            d.describe(),
            "policy rule 1 (service sshd, rhost 10.0.0.0/8)"
        );
        let d = decide(&r, &who("sshd", "bob", "2001:db8:1::5", ""), &Fixed);
        assert_eq!(d.rule, Some(0));
        let d = decide(&r, &who("sshd", "bob", "::ffff:10.9.9.9", ""), &Fixed);
        assert_eq!(d.rule, Some(0), "IPv4-mapped IPv6 is the IPv4 address");
        // Outside the networks, a host name, no rhost: the next rules.
        for rhost in ["192.0.2.7", "host.example.org", ""] {
            let d = decide(&r, &who("sshd", "bob", rhost, ""), &Fixed);
            assert_eq!((d.rule, d.action), (None, Action::Require), "{rhost}");
        }
        let d = decide(&r, &who("sudo", "alice", "", ""), &Fixed);
        assert_eq!((d.rule, d.action, d.grace), (Some(1), Action::Require, 300));
        assert_eq!(d.why, "group admins");
        let d = decide(&r, &who("sudo", "guest7", "", ""), &Fixed);
        assert_eq!((d.rule, d.action), (Some(2), Action::Deny));
        let d = decide(&r, &who("sudo", "temp12", "", ""), &Fixed);
        assert_eq!(d.rule, None, "? is one character");
        let d = decide(&r, &who("gdm", "bob", "", ":0"), &Fixed);
        assert_eq!((d.rule, d.action), (Some(3), Action::Skip));
        assert_eq!(
            decide(&[], &who("sshd", "bob", "", ""), &Fixed).describe(),
            "no policy rule matches"
        );
    }
}
