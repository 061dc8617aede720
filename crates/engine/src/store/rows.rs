//! The SQL shape of the store's rows: the column lists and the functions that read a row into a
//! record or write a token, shared by the engine's transactions, the admin queries and the
//! backup, so that a column is named in one place.

use super::{AuditEntry, AuditResult, ChallengeRecord, ChallengeState, TokenRecord};
use crate::error::{Error, Result};
use crate::tokens::{Algorithm, TokenType, MAX_COUNTER};
use rusqlite::{params, Connection, Row};

pub(super) const TOKEN_COLS: &str =
    "serial, user, realm, type, active, pin_hash, sealed_key, digits, \
    algorithm, period, drift, counter, fail_count, last_fail, info, description, created";

pub(super) fn token_from_row(r: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    let kind: String = r.get(3)?;
    let alg: String = r.get(8)?;
    let info: String = r.get(14)?;
    let bad = |i, m: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, m.into())
    };
    Ok(TokenRecord {
        serial: r.get(0)?,
        user: r.get(1)?,
        realm: r.get(2)?,
        kind: TokenType::parse(&kind).map_err(|e| bad(3, e.to_string()))?,
        active: r.get(4)?,
        pin_hash: r.get(5)?,
        sealed_key: r.get(6)?,
        digits: r.get(7)?,
        algorithm: Algorithm::parse(&alg).map_err(|e| bad(8, e.to_string()))?,
        period: r.get::<_, i64>(9)? as u64,
        drift: r.get(10)?,
        counter: r.get::<_, i64>(11)? as u64,
        fail_count: r.get(12)?,
        last_fail: r.get::<_, Option<i64>>(13)?.map(|v| v as u64),
        info: serde_json::from_str(&info).map_err(|e| bad(14, e.to_string()))?,
        description: r.get(15)?,
        created: r.get::<_, i64>(16)? as u64,
    })
}

/// A column that holds one of a closed set of words ([`states`](super::states)).
pub(super) fn word<T>(r: &Row<'_>, i: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    parse(&text).ok_or_else(|| {
        let m = format!("unknown word {text:?}");
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, m.into())
    })
}

pub(super) fn challenge_from_row(r: &Row<'_>) -> rusqlite::Result<ChallengeRecord> {
    Ok(ChallengeRecord {
        transaction_id: r.get(0)?,
        serial: r.get(1)?,
        user: r.get(2)?,
        realm: r.get(3)?,
        created: r.get::<_, i64>(4)? as u64,
        expires: r.get::<_, i64>(5)? as u64,
        state: word(r, 6, ChallengeState::parse)?,
        data: r.get(7)?,
    })
}

pub(super) const CHALLENGE_COLS: &str =
    "transaction_id, serial, user, realm, created, expires, state, data";

/// All tokens of a user in a realm, active or not.
pub(super) fn tokens_of(conn: &Connection, user: &str, realm: &str) -> Result<Vec<TokenRecord>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {TOKEN_COLS} FROM tokens WHERE user = ?1 AND realm = ?2 ORDER BY serial"
    ))?;
    let rows = st.query_map(params![user, realm], token_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Adds a new token; a serial that exists already is refused (`Kind::Invalid`).
pub(super) fn insert_token(conn: &Connection, t: &TokenRecord) -> Result<()> {
    let counter = counter_sql(&t.serial, t.counter)?;
    let n = conn.execute(
        &format!("INSERT OR IGNORE INTO tokens ({TOKEN_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)"),
        params![
            t.serial, t.user, t.realm, t.kind.name(), t.active, t.pin_hash, t.sealed_key,
            t.digits, t.algorithm.name(), t.period as i64, t.drift, counter, t.fail_count,
            t.last_fail.map(|v| v as i64), t.info.to_json(), t.description, t.created as i64
        ],
    )?;
    if n == 0 {
        return Err(Error::invalid(format!("token {} already exists", t.serial)));
    }
    Ok(())
}

/// The columns [`audit_from_row`] reads.
pub(super) const AUDIT_COLS: &str =
    "id, time, service, rhost, user, realm, serial, type, result, reason, caller, source, ruser";

pub(super) fn audit_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, AuditEntry)> {
    Ok((
        r.get(0)?,
        AuditEntry {
            time: r.get::<_, i64>(1)? as u64,
            service: r.get(2)?,
            rhost: r.get(3)?,
            user: r.get(4)?,
            realm: r.get(5)?,
            serial: r.get(6)?,
            kind: r.get(7)?,
            result: word(r, 8, AuditResult::parse)?,
            reason: r.get(9)?,
            caller: r.get(10)?,
            source: r.get(11)?,
            ruser: r.get(12)?,
        },
    ))
}

/// A counter as SQLite stores it. Counters above [`MAX_COUNTER`] are refused: stored as `i64` they
/// would turn negative, and `MAX(counter, ?)` would then keep a wrapped value.
pub(super) fn counter_sql(serial: &str, c: u64) -> Result<i64> {
    i64::try_from(c).map_err(|_| {
        Error::invalid(format!(
            "token {serial}: counter {c} is beyond the largest counter {MAX_COUNTER}"
        ))
    })
}
