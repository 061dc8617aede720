//! privacyIDEA's offline values (`[remote] offline`): for a remote HOTP token, the server
//! hands out salted hashes of PIN+OTP for its next counters (and moves its own counter past
//! them), so that a laptop can log in without the server. Each value opens once: taking one
//! deletes it and every value of a lower counter, in the transaction that accepts it.

use super::ExecuteCached;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

/// One value: the hash of PIN+OTP for one counter of a remote token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineValue {
    pub serial: String,
    pub counter: u64,
    /// passlib's `$pbkdf2-sha512$ROUNDS$SALT$CHECKSUM`.
    pub hash: String,
}

/// What a server handed out for one token: its values, and the token a refill must show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineBatch {
    pub serial: String,
    pub user: String,
    pub realm: String,
    pub refill_token: String,
    pub values: Vec<(u64, String)>,
}

/// The values of a user's tokens, lowest counter first.
pub(super) fn values(conn: &Connection, user: &str, realm: &str) -> Result<Vec<OfflineValue>> {
    let mut st = conn.prepare_cached(
        "SELECT serial, counter, hash FROM offline WHERE user = ?1 AND realm = ?2 \
         ORDER BY serial, counter",
    )?;
    let rows = st.query_map(params![user, realm], |r| {
        Ok(OfflineValue {
            serial: r.get(0)?,
            counter: r.get::<_, i64>(1)? as u64,
            hash: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn refill_token(conn: &Connection, serial: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT refilltoken FROM offline_refill WHERE serial = ?1")?
        .query_row(params![serial], |r| r.get(0))
        .optional()?)
}

/// Takes the value of `counter` and drops those below it; `false` if it was gone already
/// (taken by another login meanwhile).
pub(super) fn consume(conn: &Connection, serial: &str, counter: u64) -> Result<bool> {
    let c = counter as i64;
    let taken = conn.execute_cached(
        "DELETE FROM offline WHERE serial = ?1 AND counter = ?2",
        params![serial, c],
    )?;
    conn.execute_cached(
        "DELETE FROM offline WHERE serial = ?1 AND counter < ?2",
        params![serial, c],
    )?;
    Ok(taken == 1)
}

/// Stores a batch: in place of the token's values (`replace`, the answer to a login) or
/// beside them (a refill), and its refill token in place of the old one.
pub(super) fn put(conn: &Connection, b: &OfflineBatch, replace: bool) -> Result<()> {
    if replace {
        conn.execute_cached("DELETE FROM offline WHERE serial = ?1", params![b.serial])?;
    }
    let mut st = conn.prepare_cached(
        "INSERT OR REPLACE INTO offline (serial, counter, user, realm, hash) VALUES (?1,?2,?3,?4,?5)",
    )?;
    for (counter, hash) in &b.values {
        let c = i64::try_from(*counter).map_err(|_| {
            crate::error::Error::invalid(format!(
                "offline counter {counter} of {} too large",
                b.serial
            ))
        })?;
        st.execute(params![b.serial, c, b.user, b.realm, hash])?;
    }
    conn.execute_cached(
        "INSERT OR REPLACE INTO offline_refill (serial, refilltoken) VALUES (?1, ?2)",
        params![b.serial, b.refill_token],
    )?;
    Ok(())
}
