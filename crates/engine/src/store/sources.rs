//! Failures counted per source (`[auth] lock_scope = "source"`): a user's failed attempts from
//! one place (a remote host, a local user on a terminal, a caller's uid) lock that place only,
//! so that a stranger's wrong passes can't lock the owner out. Summed per class of source too
//! (`[auth] account_max_fail`): the ceiling of guesses at one user from everywhere together.
//! The rules are `crate::auth::lockout`'s; this is their SQL.

use super::SourceClass;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// The failures of one user from one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceFailures {
    pub user: String,
    pub realm: String,
    pub source: String,
    /// Failures in a row (a success from this source clears them).
    pub count: u32,
    /// When the last one was (Unix seconds).
    pub last_fail: u64,
}

/// Rows of sources that never reached a lock are dropped this long after their last failure
/// (they can lock nothing any more once `fail_clear_timeout` has passed; with a timeout of 0
/// only a lock stays until an admin clears it).
pub const IDLE_RETENTION: u64 = 86_400;

/// Counts one failure, and drops the rows that can lock nothing any more.
pub(super) fn record(
    conn: &Connection,
    user: &str,
    realm: &str,
    source: &str,
    now: u64,
    max_fail: u32,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO source_fails (user, realm, source, count, last_fail) VALUES (?1,?2,?3,1,?4) \
         ON CONFLICT (user, realm, source) DO UPDATE SET count = count + 1, last_fail = ?4",
    )?
    .execute(params![user, realm, source, now as i64])?;
    // By the time index: usually no row is old enough, and this costs one index probe.
    conn.prepare_cached("DELETE FROM source_fails WHERE last_fail < ?1 AND count < ?2")?
        .execute(params![
            now.saturating_sub(IDLE_RETENTION) as i64,
            i64::from(max_fail)
        ])?;
    Ok(())
}

/// Takes back one failure counted on a source (an attempt that turned out to be no guess).
pub(super) fn take_back(conn: &Connection, user: &str, realm: &str, source: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE source_fails SET count = count - 1 \
         WHERE user = ?1 AND realm = ?2 AND source = ?3 AND count > 0",
    )?
    .execute(params![user, realm, source])?;
    Ok(())
}

pub(super) fn clear(
    conn: &Connection,
    user: &str,
    realm: &str,
    source: Option<&str>,
) -> Result<u64> {
    let n = conn
        .prepare_cached(
            "DELETE FROM source_fails WHERE user = ?1 AND realm = ?2 AND (?3 IS NULL OR source = ?3)",
        )?
        .execute(params![user, realm, source])?;
    Ok(n as u64)
}

pub(super) fn list(conn: &Connection, user: Option<&str>) -> Result<Vec<SourceFailures>> {
    let mut st = conn.prepare(
        "SELECT user, realm, source, count, last_fail FROM source_fails \
         WHERE ?1 IS NULL OR user = ?1 ORDER BY user, realm, last_fail DESC",
    )?;
    let rows = st.query_map(params![user], |r| {
        Ok(SourceFailures {
            user: r.get(0)?,
            realm: r.get(1)?,
            source: r.get(2)?,
            count: r.get::<_, i64>(3)? as u32,
            last_fail: r.get::<_, i64>(4)? as u64,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The failures of one user from one class of sources, summed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassFailures {
    pub user: String,
    pub realm: String,
    pub class: SourceClass,
    /// Failures in a row from the sources of this class (a success from one of them clears).
    pub count: u32,
    pub last_fail: u64,
}

/// The columns of a class's sum and its last failure in `account_fails`.
fn class_columns(class: SourceClass) -> (&'static str, &'static str) {
    match class {
        SourceClass::Familiar => ("familiar", "familiar_last"),
        SourceClass::Unfamiliar => ("unfamiliar", "unfamiliar_last"),
    }
}

pub(super) fn class_record(
    conn: &Connection,
    user: &str,
    realm: &str,
    class: SourceClass,
    now: u64,
) -> Result<()> {
    let sql = match class {
        SourceClass::Familiar => {
            "INSERT INTO account_fails (user, realm, familiar, familiar_last) VALUES (?1,?2,1,?3) \
             ON CONFLICT (user, realm) DO UPDATE SET familiar = familiar + 1, familiar_last = ?3"
        }
        SourceClass::Unfamiliar => {
            "INSERT INTO account_fails (user, realm, unfamiliar, unfamiliar_last) \
             VALUES (?1,?2,1,?3) ON CONFLICT (user, realm) \
             DO UPDATE SET unfamiliar = unfamiliar + 1, unfamiliar_last = ?3"
        }
    };
    conn.prepare_cached(sql)?
        .execute(params![user, realm, now as i64])?;
    Ok(())
}

pub(super) fn class_take_back(
    conn: &Connection,
    user: &str,
    realm: &str,
    class: SourceClass,
) -> Result<()> {
    let sql = match class {
        SourceClass::Familiar => {
            "UPDATE account_fails SET familiar = familiar - 1 \
             WHERE user = ?1 AND realm = ?2 AND familiar > 0"
        }
        SourceClass::Unfamiliar => {
            "UPDATE account_fails SET unfamiliar = unfamiliar - 1 \
             WHERE user = ?1 AND realm = ?2 AND unfamiliar > 0"
        }
    };
    conn.prepare_cached(sql)?.execute(params![user, realm])?;
    Ok(())
}

/// Clears one class's sum for a user, or both (`None`); the count of classes that had one.
pub(super) fn class_clear(
    conn: &Connection,
    user: &str,
    realm: &str,
    class: Option<SourceClass>,
) -> Result<u64> {
    let mut n = 0;
    for c in SourceClass::ALL
        .iter()
        .filter(|c| class.is_none() || class == Some(**c))
    {
        let (count, _) = class_columns(*c);
        // Only a row with a sum changes: an accept with none writes nothing here.
        let sql = format!(
            "UPDATE account_fails SET {count} = 0 WHERE user = ?1 AND realm = ?2 AND {count} > 0"
        );
        n += conn.prepare_cached(&sql)?.execute(params![user, realm])? as u64;
    }
    Ok(n)
}

pub(super) fn class_list(conn: &Connection, user: Option<&str>) -> Result<Vec<ClassFailures>> {
    let mut st = conn.prepare(
        "SELECT user, realm, familiar, familiar_last, unfamiliar, unfamiliar_last \
         FROM account_fails WHERE (?1 IS NULL OR user = ?1) ORDER BY user, realm",
    )?;
    let rows = st.query_map(params![user], |r| {
        let (user, realm): (String, String) = (r.get(0)?, r.get(1)?);
        let of = |class, count: i64, last: i64| {
            (count > 0).then(|| ClassFailures {
                user: user.clone(),
                realm: realm.clone(),
                class,
                count: count as u32,
                last_fail: last as u64,
            })
        };
        Ok([
            of(SourceClass::Familiar, r.get(2)?, r.get(3)?),
            of(SourceClass::Unfamiliar, r.get(4)?, r.get(5)?),
        ])
    })?;
    let mut out = Vec::new();
    for row in rows {
        out.extend(row?.into_iter().flatten());
    }
    Ok(out)
}

/// Notes a passed second factor of `user` from `source`, and drops the rows that are older
/// than `before` (no longer familiar).
pub(super) fn mark_familiar(
    conn: &Connection,
    user: &str,
    realm: &str,
    source: &str,
    now: u64,
    before: u64,
) -> Result<()> {
    // Brought up to date at most once an hour: familiarity is counted in days, and an
    // accept that changes no page of it writes less to the WAL it syncs.
    conn.prepare_cached(
        "INSERT INTO familiar_sources (user, realm, source, last_pass) VALUES (?1,?2,?3,?4) \
         ON CONFLICT (user, realm, source) DO UPDATE SET last_pass = ?4 \
         WHERE last_pass < ?4 - 3600",
    )?
    .execute(params![user, realm, source, now as i64])?;
    conn.prepare_cached("DELETE FROM familiar_sources WHERE last_pass < ?1")?
        .execute(params![before as i64])?;
    Ok(())
}

/// The failures of a user since the last success, as the user is told of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Missed {
    pub count: u32,
    pub last_fail: u64,
    pub last_source: String,
}

pub(super) fn note_missed(
    conn: &Connection,
    user: &str,
    realm: &str,
    source: &str,
    now: u64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO account_fails (user, realm, missed, missed_last, missed_source) \
         VALUES (?1,?2,1,?3,?4) ON CONFLICT (user, realm) \
         DO UPDATE SET missed = missed + 1, missed_last = ?3, missed_source = ?4",
    )?
    .execute(params![user, realm, now as i64, source])?;
    Ok(())
}

/// The failures since the last success, taken (counted from none again).
pub(super) fn take_missed(conn: &Connection, user: &str, realm: &str) -> Result<Option<Missed>> {
    let missed = conn
        .prepare_cached(
            "SELECT missed, missed_last, missed_source FROM account_fails \
             WHERE user = ?1 AND realm = ?2 AND missed > 0",
        )?
        .query_row(params![user, realm], |r| {
            Ok(Missed {
                count: r.get::<_, i64>(0)? as u32,
                last_fail: r.get::<_, i64>(1)? as u64,
                last_source: r.get(2)?,
            })
        })
        .optional()?;
    if missed.is_some() {
        conn.prepare_cached("UPDATE account_fails SET missed = 0 WHERE user = ?1 AND realm = ?2")?
            .execute(params![user, realm])?;
    }
    Ok(missed)
}

/// What counts against an attempt of a user from a source: the source's failures, whether
/// the user passed the second factor from it lately, and the sums of both classes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Standing {
    /// The source's failures in a row, and when the last was.
    pub source: Option<(u32, u64)>,
    /// A second factor of the user passed from this source at or after the time asked.
    pub passed_lately: bool,
    pub familiar: Option<(u32, u64)>,
    pub unfamiliar: Option<(u32, u64)>,
}

impl Standing {
    /// The sum of one class.
    pub fn class(&self, class: SourceClass) -> Option<(u32, u64)> {
        match class {
            SourceClass::Familiar => self.familiar,
            SourceClass::Unfamiliar => self.unfamiliar,
        }
    }
}

pub(super) fn standing(
    conn: &Connection,
    user: &str,
    realm: &str,
    source: &str,
    passed_since: u64,
) -> Result<Standing> {
    // One statement for the three tables: every attempt reads this, once before its prompt
    // and once under the write lock.
    let mut st = conn.prepare_cached(
        "SELECT s.count, s.last_fail, \
             EXISTS (SELECT 1 FROM familiar_sources f WHERE f.user = ?1 AND f.realm = ?2 \
                     AND f.source = ?3 AND f.last_pass >= ?4), \
             a.familiar, a.familiar_last, a.unfamiliar, a.unfamiliar_last \
         FROM (SELECT 1) \
         LEFT JOIN source_fails s ON s.user = ?1 AND s.realm = ?2 AND s.source = ?3 \
         LEFT JOIN account_fails a ON a.user = ?1 AND a.realm = ?2",
    )?;
    let sum = |count: Option<i64>, last: Option<i64>| match (count, last) {
        (Some(c), Some(l)) if c > 0 => Some((c as u32, l as u64)),
        _ => None,
    };
    Ok(
        st.query_row(params![user, realm, source, passed_since as i64], |r| {
            let source = match (r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?) {
                (Some(c), Some(l)) => Some((c as u32, l as u64)),
                _ => None,
            };
            Ok(Standing {
                source,
                passed_lately: r.get(2)?,
                familiar: sum(r.get(3)?, r.get(4)?),
                unfamiliar: sum(r.get(5)?, r.get(6)?),
            })
        })?,
    )
}
