//! Failures counted per source (`[auth] lock_scope = "source"`): a user's failed attempts from
//! one place (a remote host, a local user on a terminal, a caller's uid) lock that place only,
//! so that a stranger's wrong passes can't lock the owner out. Summed per class of source too
//! (`[auth] account_max_fail`): the ceiling of guesses at one user from everywhere together.
//! The rules are `crate::engine::lockout`'s; this is their SQL.

use super::{Result, SourceClass};
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

pub(super) fn get(
    conn: &Connection,
    user: &str,
    realm: &str,
    source: &str,
) -> Result<Option<(u32, u64)>> {
    let mut st = conn.prepare_cached(
        "SELECT count, last_fail FROM source_fails WHERE user = ?1 AND realm = ?2 AND source = ?3",
    )?;
    Ok(st
        .query_row(params![user, realm, source], |r| {
            Ok((r.get::<_, i64>(0)? as u32, r.get::<_, i64>(1)? as u64))
        })
        .optional()?)
}

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

pub(super) fn class_get(
    conn: &Connection,
    user: &str,
    realm: &str,
    class: SourceClass,
) -> Result<Option<(u32, u64)>> {
    let mut st = conn.prepare_cached(
        "SELECT count, last_fail FROM class_fails WHERE user = ?1 AND realm = ?2 AND class = ?3",
    )?;
    Ok(st
        .query_row(params![user, realm, class.as_str()], |r| {
            Ok((r.get::<_, i64>(0)? as u32, r.get::<_, i64>(1)? as u64))
        })
        .optional()?)
}

pub(super) fn class_record(
    conn: &Connection,
    user: &str,
    realm: &str,
    class: SourceClass,
    now: u64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO class_fails (user, realm, class, count, last_fail) VALUES (?1,?2,?3,1,?4) \
         ON CONFLICT (user, realm, class) DO UPDATE SET count = count + 1, last_fail = ?4",
    )?
    .execute(params![user, realm, class.as_str(), now as i64])?;
    Ok(())
}

pub(super) fn class_take_back(
    conn: &Connection,
    user: &str,
    realm: &str,
    class: SourceClass,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE class_fails SET count = count - 1 \
         WHERE user = ?1 AND realm = ?2 AND class = ?3 AND count > 0",
    )?
    .execute(params![user, realm, class.as_str()])?;
    Ok(())
}

/// Clears one class's sum for a user, or both (`None`); the count of rows cleared.
pub(super) fn class_clear(
    conn: &Connection,
    user: &str,
    realm: &str,
    class: Option<SourceClass>,
) -> Result<u64> {
    let n = conn
        .prepare_cached(
            "DELETE FROM class_fails WHERE user = ?1 AND realm = ?2 AND (?3 IS NULL OR class = ?3)",
        )?
        .execute(params![user, realm, class.map(SourceClass::as_str)])?;
    Ok(n as u64)
}

pub(super) fn class_list(conn: &Connection, user: Option<&str>) -> Result<Vec<ClassFailures>> {
    let mut st = conn.prepare(
        "SELECT user, realm, class, count, last_fail FROM class_fails \
         WHERE (?1 IS NULL OR user = ?1) AND count > 0 ORDER BY user, realm, class",
    )?;
    let rows = st.query_map(params![user], |r| {
        let class: String = r.get(2)?;
        Ok(ClassFailures {
            user: r.get(0)?,
            realm: r.get(1)?,
            class: SourceClass::parse(&class).unwrap_or(SourceClass::Unfamiliar),
            count: r.get::<_, i64>(3)? as u32,
            last_fail: r.get::<_, i64>(4)? as u64,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Whether `user` passed the second factor from `source` at or after `since`.
pub(super) fn familiar(
    conn: &Connection,
    user: &str,
    realm: &str,
    source: &str,
    since: u64,
) -> Result<bool> {
    let mut st = conn.prepare_cached(
        "SELECT 1 FROM familiar_sources \
         WHERE user = ?1 AND realm = ?2 AND source = ?3 AND last_pass >= ?4",
    )?;
    Ok(st.exists(params![user, realm, source, since as i64])?)
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
    conn.prepare_cached(
        "INSERT INTO familiar_sources (user, realm, source, last_pass) VALUES (?1,?2,?3,?4) \
         ON CONFLICT (user, realm, source) DO UPDATE SET last_pass = ?4",
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
        "INSERT INTO missed_fails (user, realm, count, last_fail, last_source) \
         VALUES (?1,?2,1,?3,?4) ON CONFLICT (user, realm) \
         DO UPDATE SET count = count + 1, last_fail = ?3, last_source = ?4",
    )?
    .execute(params![user, realm, now as i64, source])?;
    Ok(())
}

/// The failures since the last success, taken (the row is gone after).
pub(super) fn take_missed(conn: &Connection, user: &str, realm: &str) -> Result<Option<Missed>> {
    let missed = conn
        .prepare_cached(
            "SELECT count, last_fail, last_source FROM missed_fails WHERE user = ?1 AND realm = ?2",
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
        conn.prepare_cached("DELETE FROM missed_fails WHERE user = ?1 AND realm = ?2")?
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
    Ok(Standing {
        source: get(conn, user, realm, source)?,
        passed_lately: familiar(conn, user, realm, source, passed_since)?,
        familiar: class_get(conn, user, realm, SourceClass::Familiar)?,
        unfamiliar: class_get(conn, user, realm, SourceClass::Unfamiliar)?,
    })
}
