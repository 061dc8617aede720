//! The store's own tests: the WAL across logins, audit rows capped and pruned, counters that
//! never move back, a write's sync and rollback, the sends table, and the statement cache.

use super::rows::TOKEN_COLS;
use super::sqlite::WAL_TRUNCATE_BYTES;
use super::*;
use crate::error::{Error, Result};
use crate::tokens::{TokenType, MAX_COUNTER};
use std::path::Path;

fn token(serial: &str) -> TokenRecord {
    TokenRecord::new(serial, "alice", "default", TokenType::Hotp, vec![0; 40])
}

/// One login: open alone, one write transaction, close (as each PAM login does).
fn login(path: &Path, counter: u64) {
    let s = SqliteStore::open(path, 1000).unwrap();
    s.write(|tx| {
        tx.record_failure("T1", counter)?;
        tx.record_success("T1", counter)?;
        tx.audit(&AuditEntry {
            time: counter,
            result: AuditResult::Accept,
            reason: "x".repeat(200),
            ..AuditEntry::default()
        })
    })
    .unwrap();
}

#[test]
fn wal_is_kept_across_logins_and_truncated_when_long() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    SqliteStore::create(&path, 1000)
        .unwrap()
        .insert_token(&token("T1"))
        .unwrap();
    let wal = dir.path().join("t.db-wal");
    let mut truncated = false;
    let mut last = 0;
    for c in 1..=200u64 {
        login(&path, c);
        // Nothing was checkpointed on close: the WAL is still there, and what it holds
        // is what the next connection reads.
        let len = std::fs::metadata(&wal).unwrap().len();
        truncated |= len < last;
        last = len;
        assert!(
            len <= WAL_TRUNCATE_BYTES + 64 * 1024,
            "WAL grew to {len} bytes"
        );
        let s = SqliteStore::open(&path, 1000).unwrap();
        let t = s.get_token("T1").unwrap();
        assert_eq!((t.counter, t.fail_count), (c, 0));
        assert_eq!(s.audit_entries(None, 1000).unwrap().len(), c as usize);
    }
    assert!(truncated, "the WAL was never checkpointed and truncated");
}

#[test]
fn audit_rows_are_capped_and_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::create(&dir.path().join("t.db"), 1000)
        .unwrap()
        .keep_audit_days(1);
    let huge = "\u{e9}".repeat(60_000);
    for i in 0..200u64 {
        s.write(|tx| {
            tx.audit(&AuditEntry {
                time: i * 3600,
                user: huge.clone(),
                rhost: huge.clone(),
                result: AuditResult::Reject,
                ..AuditEntry::default()
            })
        })
        .unwrap();
    }
    let rows = s.audit_entries(None, 1000).unwrap();
    let last = rows.last().unwrap();
    assert!(
        last.user.len() <= AUDIT_FIELD_MAX + 32,
        "{}",
        last.user.len()
    );
    assert!(last.user.ends_with("...(120000 bytes)"), "{}", last.user);
    // Rows older than a day are gone (pruning runs every 64 rows, so some may linger).
    assert!(rows
        .iter()
        .all(|r| r.time + 86_400 + 64 * 3600 >= 199 * 3600));
    assert!(rows.len() < 100, "{}", rows.len());
}

#[test]
fn counters_never_move_back_or_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::create(&dir.path().join("t.db"), 1000).unwrap();
    s.insert_token(&token("T1")).unwrap();
    s.write(|tx| tx.record_success("T1", 50)).unwrap();
    // A resync into the past sets the drift but leaves the counter where it was.
    s.set_counter_and_drift("T1", 10, -40).unwrap();
    let t = s.get_token("T1").unwrap();
    assert_eq!((t.counter, t.drift), (50, -40));
    s.set_counter_and_drift("T1", 60, 0).unwrap();
    assert_eq!(s.get_token("T1").unwrap().counter, 60);
    // Beyond i64 a counter would be stored negative and compare below every other.
    assert!(s.write(|tx| tx.record_success("T1", u64::MAX)).is_err());
    assert!(s.set_counter_and_drift("T1", u64::MAX, 0).is_err());
    let mut big = token("T2");
    big.counter = u64::MAX;
    assert!(s.insert_token(&big).is_err());
    assert_eq!(s.get_token("T1").unwrap().counter, 60);
    s.write(|tx| tx.record_success("T1", MAX_COUNTER)).unwrap();
    assert_eq!(s.get_token("T1").unwrap().counter, MAX_COUNTER);
}

#[test]
fn write_goes_back_to_full_sync_and_rolls_back_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let s = SqliteStore::create(&path, 1000).unwrap();
    s.insert_token(&token("T1")).unwrap();
    let sync = |s: &SqliteStore| -> i64 {
        s.conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap()
    };
    assert_eq!(sync(&s), 2);
    let r: Result<()> = s.write(|tx| {
        tx.record_success("T1", 5)?;
        Err(Error::invalid("no"))
    });
    assert!(r.is_err());
    assert_eq!(sync(&s), 2, "FULL again for admin writes");
    assert_eq!(s.get_token("T1").unwrap().counter, 0, "rolled back");
    s.write(|tx| tx.record_success("T1", 5)).unwrap();
    assert_eq!(sync(&s), 2);
    assert_eq!(s.get_token("T1").unwrap().counter, 5);
}

#[test]
fn sends_are_counted_per_user_realm_and_type_and_dropped_after_an_hour() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::create(&dir.path().join("t.db"), 1000).unwrap();
    let t0 = 10_000;
    let first = s
        .write(|tx| tx.record_send("alice", "default", "email", "E1", t0))
        .unwrap();
    s.write(|tx| {
        tx.record_send("alice", "default", "email", "E2", t0 + 10)?;
        tx.record_send("alice", "default", "sms", "S1", t0 + 10)?;
        tx.record_send("alice", "other", "email", "E3", t0 + 10)?;
        tx.record_send("bob", "default", "email", "E4", t0 + 10)?;
        Ok(())
    })
    .unwrap();
    let count = |kind: &str, since: u64| {
        s.write(|tx| tx.sends_since("alice", "default", kind, since))
            .unwrap()
    };
    assert_eq!(count("email", t0 - 1), 2);
    assert_eq!(count("email", t0), 1, "since is exclusive");
    assert_eq!(count("sms", 0), 1);
    s.write(|tx| tx.forget_send(first)).unwrap();
    assert_eq!(count("email", 0), 1);
    // A send an hour later drops the rows of an hour ago and more.
    s.write(|tx| tx.record_send("bob", "default", "sms", "S2", t0 + 10 + SEND_RETENTION))
        .unwrap();
    let rows: i64 = s
        .conn
        .query_row("SELECT COUNT(*) FROM sends", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
}

/// A cached statement is planned once: a login's reads are not parsed again at each use
/// (a query planned on its bound values was, every time, before the stability guarantee).
#[test]
fn cached_statements_are_not_prepared_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::create(&dir.path().join("t.db"), 5000).unwrap();
    for i in 0..50 {
        s.tokens_of(&format!("user{}", i % 3), "default").unwrap();
        s.standing(&format!("user{}", i % 3), "default", "local", i)
            .unwrap();
    }
    let sql =
        format!("SELECT {TOKEN_COLS} FROM tokens WHERE user = ?1 AND realm = ?2 ORDER BY serial");
    let st = s.conn.prepare_cached(&sql).unwrap();
    assert_eq!(st.get_status(rusqlite::StatementStatus::Run), 50);
    assert_eq!(st.get_status(rusqlite::StatementStatus::RePrepare), 0);
}
