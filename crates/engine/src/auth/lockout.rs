//! The counts an attempt takes its place in before anything it typed is compared: its
//! source's failures (`max_fail`, with `lock_scope = "source"`) and the sum of its class of
//! sources for the user (`account_max_fail`, familiar or unfamiliar sources).
//!
//! Why before: a count taken after the comparison can be overtaken. N attempts at once would
//! all be compared before the first count lands (a lock window is then worth the attacker's
//! concurrency), a right code could be told from a wrong one at the limit (one answered
//! "locked", the other "wrong"), and a daemon killed between the comparison and the count
//! would give the guess back. So [`take`] runs in a write transaction of its own, committed
//! before the comparison: it refuses a locked source or class whatever was typed, or counts
//! the attempt. The attempt then ends in one of three ways: [`passed`] (a success gives its
//! place back and starts its class's count again), [`give_back`] (a refusal that was no guess:
//! a send held back by `max_per_hour`), or nothing more (a failure: the place stays counted;
//! [`failed`] notes it for the owner's next success).
//!
//! The bound: `max_fail` per source and `fail_clear_timeout`; and from everywhere together at
//! most `account_max_fail` wrong attempts in a row per class of sources, so at most
//! 2 × `account_max_fail` per user within `account_clear_timeout`. One login takes one place,
//! however many things it compares (an earlier module's pass under `try_first_pass` and the
//! prompt's, or a PIN and its challenge's answer).

use super::Source;
use crate::config::{AuthConfig, LockScope};
use crate::error::Result;
use crate::store::{Missed, SourceClass, Standing, StoreTx};

/// Who guesses: the user an attempt is for and where it comes from, as its counts are kept.
#[derive(Debug, Clone)]
pub(crate) struct Guesser<'a> {
    pub user: &'a str,
    pub realm: &'a str,
    pub source: &'a Source,
    /// The name is an account of this host: its class sums are kept (an unknown user has no
    /// token to guess at, and its names would fill the table).
    pub known: bool,
    /// The source is the account's own uid (familiar whatever the store says).
    pub own_uid: bool,
}

/// A locked source or class: the attempt is refused whatever was typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lockout {
    /// The source's `max_fail` failures in a row; it opens by itself at `opens_at`
    /// (`fail_clear_timeout` after the last; `None`: only an admin opens it).
    Source { count: u32, opens_at: Option<u64> },
    /// The class's `account_max_fail` failures in a row, summed over its sources; it opens
    /// by itself at `opens_at` (`account_clear_timeout` after the last).
    Class {
        class: SourceClass,
        count: u32,
        opens_at: Option<u64>,
    },
}

impl Lockout {
    /// The audit row's reason.
    pub fn reason(&self, source: &Source) -> String {
        match self {
            Lockout::Source { count, .. } => {
                format!("source locked: {count} failures from {source}")
            }
            Lockout::Class { class, count, .. } => format!(
                "{class} sources locked for this user: {count} failures in a row from them \
                 (this one: {source})"
            ),
        }
    }

    /// The verdict of an attempt refused by this lock (local and offline logins alike).
    pub fn verdict(&self, source: &Source) -> super::Verdict {
        match *self {
            Lockout::Source { opens_at, .. } => super::Verdict::SourceLocked {
                source: source.to_string(),
                opens_at,
            },
            Lockout::Class {
                class, opens_at, ..
            } => super::Verdict::ClassLocked { class, opens_at },
        }
    }
}

/// An attempt's place in the counts, taken by [`take`].
#[derive(Debug, Clone)]
pub(crate) struct Place {
    pub class: SourceClass,
    /// The source's count was taken (`lock_scope = "source"`).
    source_counted: bool,
    /// The class's count was taken (a known user).
    class_counted: bool,
}

/// The class of `who`'s source, from what the store says of it.
pub(crate) fn class_of(who: &Guesser, standing: &Standing) -> SourceClass {
    if who.own_uid || standing.passed_lately {
        SourceClass::Familiar
    } else {
        SourceClass::Unfamiliar
    }
}

/// When a second factor passed makes a source familiar: `familiar_days` before `now`.
pub(crate) fn familiar_since(auth: &AuthConfig, now: u64) -> u64 {
    now.saturating_sub(auth.familiar_days.saturating_mul(86_400))
}

/// Whether `standing` refuses an attempt of `who` now (the rule of [`take`], also read before
/// the prompt so that a locked source is not asked for anything).
pub(crate) fn lockout(
    auth: &AuthConfig,
    who: &Guesser,
    standing: &Standing,
    class: SourceClass,
    now: u64,
) -> Option<Lockout> {
    if auth.lock_scope == LockScope::Source {
        if let Some((count, last)) = standing.source {
            if auth.locks(count, Some(last), now) {
                return Some(Lockout::Source {
                    count,
                    opens_at: auth.lock_opens_at(last),
                });
            }
        }
    }
    if who.known {
        if let Some((count, last)) = standing.class(class) {
            if auth.class_locks(count, last, now) {
                return Some(Lockout::Class {
                    class,
                    count,
                    opens_at: auth.class_opens_at(last),
                });
            }
        }
    }
    None
}

/// In a write transaction committed before anything typed is compared: refuses a locked
/// source or class, or counts the attempt on its source and class.
pub(crate) fn take(
    tx: &dyn StoreTx,
    auth: &AuthConfig,
    who: &Guesser,
    now: u64,
) -> Result<std::result::Result<Place, Lockout>> {
    match check(tx, auth, who, now)? {
        Ok(open) => count(tx, auth, who, &open, now).map(Ok),
        Err(lockout) => Ok(Err(lockout)),
    }
}

/// Where an attempt that may go on stands: its class, and what the store said.
#[derive(Debug, Clone)]
pub(crate) struct Open {
    pub class: SourceClass,
    standing: Standing,
}

/// The first half of [`take`], under the write lock: refuses a locked source or class. For a
/// transaction that compares an OTP itself, which then counts the attempt ([`count`]) only if
/// it refuses it: its place and its verdict are one commit, so nothing can come between them,
/// and an accept writes no counts at all.
pub(crate) fn check(
    tx: &dyn StoreTx,
    auth: &AuthConfig,
    who: &Guesser,
    now: u64,
) -> Result<std::result::Result<Open, Lockout>> {
    let source = who.source.as_str();
    let standing = tx.standing(who.user, who.realm, source, familiar_since(auth, now))?;
    let class = class_of(who, &standing);
    Ok(match lockout(auth, who, &standing, class, now) {
        Some(l) => Err(l),
        None => Ok(Open { class, standing }),
    })
}

/// The second half of [`take`]: counts the attempt on its source and class.
pub(crate) fn count(
    tx: &dyn StoreTx,
    auth: &AuthConfig,
    who: &Guesser,
    open: &Open,
    now: u64,
) -> Result<Place> {
    let (source, standing, class) = (who.source.as_str(), &open.standing, open.class);
    let source_counted = auth.lock_scope == LockScope::Source;
    if source_counted {
        if standing.source.is_some_and(|(n, _)| n >= auth.max_fail) {
            // Its time has passed: this failure counts from one again.
            tx.clear_source_failures(who.user, who.realm, Some(source))?;
        }
        tx.record_source_failure(who.user, who.realm, source, now, auth.max_fail)?;
    }
    let class_counted = who.known;
    if class_counted {
        if standing
            .class(class)
            .is_some_and(|(n, _)| n >= auth.account_max_fail)
        {
            tx.clear_class_failures(who.user, who.realm, class)?;
        }
        tx.record_class_failure(who.user, who.realm, class, now)?;
    }
    Ok(Place {
        class,
        source_counted,
        class_counted,
    })
}

/// An attempt that turned out to be no guess gives its place back.
pub(crate) fn give_back(tx: &dyn StoreTx, who: &Guesser, place: &Place) -> Result<()> {
    if place.source_counted {
        tx.take_back_source_failure(who.user, who.realm, who.source.as_str())?;
    }
    if place.class_counted {
        tx.take_back_class_failure(who.user, who.realm, place.class)?;
    }
    Ok(())
}

/// A passed second factor, in the transaction that accepts: the source's count and its class's
/// sum start again, the source becomes familiar, and the failures since the last success are
/// taken (the user is told of them).
pub(crate) fn passed(
    tx: &dyn StoreTx,
    auth: &AuthConfig,
    who: &Guesser,
    class: Option<SourceClass>,
    now: u64,
) -> Result<Option<Missed>> {
    let source = who.source.as_str();
    if auth.lock_scope == LockScope::Source {
        tx.clear_source_failures(who.user, who.realm, Some(source))?;
    }
    if !who.known {
        return Ok(None);
    }
    let class = match class {
        Some(c) => c,
        None => {
            let standing = tx.standing(who.user, who.realm, source, familiar_since(auth, now))?;
            class_of(who, &standing)
        }
    };
    tx.clear_class_failures(who.user, who.realm, class)?;
    if auth.familiar_days > 0 && !who.own_uid {
        tx.mark_familiar(who.user, who.realm, source, now, familiar_since(auth, now))?;
    }
    tx.take_missed(who.user, who.realm)
}

/// A failed or refused attempt of a known user, noted for the user's next success.
pub(crate) fn failed(tx: &dyn StoreTx, who: &Guesser, now: u64) -> Result<()> {
    if who.known {
        tx.note_missed(who.user, who.realm, who.source.as_str(), now)?;
    }
    Ok(())
}

/// What the user is told after a passed second factor, when there were failures since the
/// last success.
pub fn missed_message(m: &Missed) -> String {
    let attempts = if m.count == 1 { "attempt" } else { "attempts" };
    let from = m
        .last_source
        .strip_prefix("rhost=")
        .unwrap_or(&m.last_source);
    format!(
        "{} failed {attempts} since your last login, the last from {from} at {} UTC",
        m.count,
        crate::calendar::utc_minute(m.last_fail)
    )
}

/// What a user refused by a locked source or class is told: the same words for every name
/// from that source, an account or not (its failures are counted alike), so that they tell a
/// stranger nothing of the account. `opens_at`: when it opens by itself; shown as the minute
/// after (`HH:MM`, with the date when that is not today).
pub fn locked_message(opens_at: Option<u64>, now: u64) -> String {
    match opens_at {
        Some(at) => {
            let minute = crate::calendar::utc_minute(at.saturating_add(59));
            let when = if minute[..10] == crate::calendar::utc_minute(now)[..10] {
                &minute[11..]
            } else {
                &minute[..]
            };
            format!(
                "too many failed attempts from here; try again after {when} UTC, or ask an \
                 administrator"
            )
        }
        None => "too many failed attempts from here; ask an administrator".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_out_user_is_told_when_to_try_again() {
        // 2026-12-07 14:00:30 UTC, and the lock opens 10 min later.
        let now = 1_796_652_030;
        assert_eq!(
            locked_message(Some(now + 600), now),
            "too many failed attempts from here; try again after 14:11 UTC, or ask an \
             administrator"
        );
        assert_eq!(
            locked_message(Some(now + 86_401), now),
            "too many failed attempts from here; try again after 2026-12-08 14:01 UTC, or ask \
             an administrator"
        );
        assert_eq!(
            locked_message(None, now),
            "too many failed attempts from here; ask an administrator"
        );
    }

    #[test]
    fn the_owner_is_told_in_one_line() {
        let m = Missed {
            count: 3,
            last_fail: 1_796_637_720, // 2026-12-07 10:02 UTC
            last_source: "rhost=198.51.100.7".into(),
        };
        assert_eq!(
            missed_message(&m),
            "3 failed attempts since your last login, the last from 198.51.100.7 at \
             2026-12-07 10:02 UTC"
        );
        let one = Missed {
            count: 1,
            last_fail: 0,
            last_source: "uid=1002".into(),
        };
        assert_eq!(
            missed_message(&one),
            "1 failed attempt since your last login, the last from uid=1002 at 1970-01-01 00:00 UTC"
        );
        assert_eq!(crate::calendar::utc_minute(951_782_400), "2000-02-29 00:00");
        assert_eq!(
            crate::calendar::utc_minute(4_102_444_799),
            "2099-12-31 23:59"
        );
    }
}
