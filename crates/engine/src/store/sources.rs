//! Failures counted per source (`[auth] lock_scope = "source"`): a user's failed attempts from
//! one place (a remote host, a local user on a terminal, a caller's uid) lock that place only,
//! so that a stranger's wrong passes can't lock the owner out.

use super::Result;
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
