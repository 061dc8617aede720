//! A write transaction as the engine sees it: [`SqliteTx`], the [`StoreTx`] steps of a login
//! (counters, failures, challenges, sends, offline values, audit rows) inside `BEGIN IMMEDIATE`
//! or a group commit's savepoint, and which of them must be synced before the verdict.

use super::rows::{
    challenge_from_row, counter_sql, insert_token, token_from_row, tokens_of, CHALLENGE_COLS,
    TOKEN_COLS,
};
use super::{
    cap, offline, sources, AuditEntry, ChallengeRecord, ChallengeState, ExecuteCached, Missed,
    OfflineBatch, SourceClass, Standing, StoreTx, TokenRecord,
};
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};
use std::cell::Cell;

/// How long a closed challenge stays listed by `tessera challenge list --all` (seconds past its
/// expiry); the audit table keeps the history.
const CLOSED_CHALLENGE_RETENTION: u64 = 86_400;

/// Prune old audit rows once every this many rows written (pruning is one indexed DELETE).
const AUDIT_PRUNE_EVERY: i64 = 64;

/// A write transaction as the engine sees it: the connection, inside `BEGIN IMMEDIATE` (or a
/// savepoint of a group commit, see [`group`](super::group)).
pub(crate) struct SqliteTx<'a> {
    pub(super) tx: &'a Connection,
    /// Something was written that must be synced before `write` returns (see
    /// [`Store::write`](super::Store::write)).
    pub(super) durable: Cell<bool>,
    pub(super) audit_keep: Option<u64>,
}

/// Seconds a row of the `sends` table is kept: the longest window a limit counts over.
pub const SEND_RETENTION: u64 = 3600;

impl StoreTx for SqliteTx<'_> {
    fn insert_token(&self, t: &TokenRecord) -> Result<()> {
        self.durable.set(true);
        insert_token(self.tx, t)
    }

    fn tokens_of(&self, user: &str, realm: &str) -> Result<Vec<TokenRecord>> {
        tokens_of(self.tx, user, realm)
    }

    fn consume_offline(&self, serial: &str, counter: u64) -> Result<bool> {
        self.durable.set(true);
        offline::consume(self.tx, serial, counter)
    }

    fn put_offline(&self, batch: &OfflineBatch, replace: bool) -> Result<()> {
        self.durable.set(true);
        offline::put(self.tx, batch, replace)
    }

    fn offline_refill_token(&self, serial: &str) -> Result<Option<String>> {
        offline::refill_token(self.tx, serial)
    }

    fn sends_since(&self, user: &str, realm: &str, kind: &str, since: u64) -> Result<u64> {
        let n: i64 = self
            .tx
            .prepare_cached(
                "SELECT COUNT(*) FROM sends WHERE user = ?1 AND realm = ?2 AND type = ?3 AND time > ?4",
            )?
            .query_row(params![user, realm, kind, since as i64], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn record_send(
        &self,
        user: &str,
        realm: &str,
        kind: &str,
        serial: &str,
        now: u64,
    ) -> Result<i64> {
        self.tx.execute_cached(
            "DELETE FROM sends WHERE time <= ?1",
            params![now.saturating_sub(SEND_RETENTION) as i64],
        )?;
        self.tx.execute_cached(
            "INSERT INTO sends (time, user, realm, type, serial) VALUES (?1,?2,?3,?4,?5)",
            params![now as i64, user, realm, kind, serial],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    fn forget_send(&self, id: i64) -> Result<()> {
        self.tx
            .execute_cached("DELETE FROM sends WHERE id = ?1", params![id])?;
        Ok(())
    }

    fn token(&self, serial: &str) -> Result<Option<TokenRecord>> {
        Ok(self
            .tx
            .prepare_cached(&format!(
                "SELECT {TOKEN_COLS} FROM tokens WHERE serial = ?1"
            ))?
            .query_row(params![serial], token_from_row)
            .optional()?)
    }

    fn record_success(&self, serial: &str, counter: u64) -> Result<()> {
        self.durable.set(true);
        // MAX() keeps the counter from ever moving back, whatever the caller computed.
        self.tx.execute_cached(
            "UPDATE tokens SET counter = MAX(counter, ?2), fail_count = 0, last_fail = NULL \
             WHERE serial = ?1",
            params![serial, counter_sql(serial, counter)?],
        )?;
        Ok(())
    }

    fn record_failure(&self, serial: &str, now: u64) -> Result<()> {
        self.tx.execute_cached(
            "UPDATE tokens SET fail_count = fail_count + 1, last_fail = ?2 WHERE serial = ?1",
            params![serial, now as i64],
        )?;
        Ok(())
    }

    fn clear_failures(&self, serial: &str) -> Result<()> {
        self.tx.execute_cached(
            "UPDATE tokens SET fail_count = 0, last_fail = NULL WHERE serial = ?1",
            params![serial],
        )?;
        Ok(())
    }

    fn insert_challenge(&self, c: &ChallengeRecord) -> Result<()> {
        self.tx.execute_cached(
            &format!("INSERT INTO challenges ({CHALLENGE_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)"),
            params![
                c.transaction_id,
                c.serial,
                c.user,
                c.realm,
                c.created as i64,
                c.expires as i64,
                c.state.as_str(),
                c.data
            ],
        )?;
        Ok(())
    }

    fn open_challenges(&self, transaction_id: &str) -> Result<Vec<ChallengeRecord>> {
        let mut st = self.tx.prepare_cached(&format!(
            "SELECT {CHALLENGE_COLS} FROM challenges WHERE transaction_id = ?1 AND state = 'open' \
             ORDER BY serial"
        ))?;
        let rows = st.query_map(params![transaction_id], challenge_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn close_challenges(&self, transaction_id: &str, state: ChallengeState) -> Result<()> {
        self.durable.set(true);
        self.tx.execute_cached(
            // A closed challenge's data (a sealed OTP) is of no use any more: drop it.
            "UPDATE challenges SET state = ?2, data = NULL WHERE transaction_id = ?1 AND state = 'open'",
            params![transaction_id, state.as_str()],
        )?;
        Ok(())
    }

    fn expire_challenges(&self, now: u64) -> Result<()> {
        self.tx.execute_cached(
            "UPDATE challenges SET state = 'expired', data = NULL WHERE state = 'open' AND expires <= ?1",
            params![now as i64],
        )?;
        self.tx.execute_cached(
            "DELETE FROM challenges WHERE state IN ('answered', 'failed', 'expired') AND expires <= ?1",
            params![now.saturating_sub(CLOSED_CHALLENGE_RETENTION) as i64],
        )?;
        Ok(())
    }

    fn replace_pin_hash(&self, serial: &str, old: &str, new: &str) -> Result<()> {
        self.tx.execute_cached(
            "UPDATE tokens SET pin_hash = ?3 WHERE serial = ?1 AND pin_hash = ?2",
            params![serial, old, new],
        )?;
        Ok(())
    }

    fn standing(
        &self,
        user: &str,
        realm: &str,
        source: &str,
        passed_since: u64,
    ) -> Result<Standing> {
        sources::standing(self.tx, user, realm, source, passed_since)
    }

    fn take_back_source_failure(&self, user: &str, realm: &str, source: &str) -> Result<()> {
        sources::take_back(self.tx, user, realm, source)
    }

    fn record_class_failure(
        &self,
        user: &str,
        realm: &str,
        class: SourceClass,
        now: u64,
    ) -> Result<()> {
        sources::class_record(self.tx, user, realm, class, now)
    }

    fn take_back_class_failure(&self, user: &str, realm: &str, class: SourceClass) -> Result<()> {
        sources::class_take_back(self.tx, user, realm, class)
    }

    fn clear_class_failures(&self, user: &str, realm: &str, class: SourceClass) -> Result<()> {
        sources::class_clear(self.tx, user, realm, Some(class)).map(drop)
    }

    fn mark_familiar(
        &self,
        user: &str,
        realm: &str,
        source: &str,
        now: u64,
        forget_before: u64,
    ) -> Result<()> {
        sources::mark_familiar(self.tx, user, realm, source, now, forget_before)
    }

    fn note_missed(&self, user: &str, realm: &str, source: &str, now: u64) -> Result<()> {
        sources::note_missed(self.tx, user, realm, source, now)
    }

    fn take_missed(&self, user: &str, realm: &str) -> Result<Option<Missed>> {
        sources::take_missed(self.tx, user, realm)
    }

    fn record_source_failure(
        &self,
        user: &str,
        realm: &str,
        source: &str,
        now: u64,
        max_fail: u32,
    ) -> Result<()> {
        sources::record(self.tx, user, realm, source, now, max_fail)
    }

    fn clear_source_failures(&self, user: &str, realm: &str, source: Option<&str>) -> Result<u64> {
        sources::clear(self.tx, user, realm, source)
    }

    fn audit_row(&self, e: &AuditEntry, row: Option<i64>) -> Result<i64> {
        if let Some(id) = row {
            let n = self.tx.execute_cached(
                "UPDATE audit SET reason = ?2 WHERE id = ?1",
                params![id, cap(&e.reason)],
            )?;
            if n == 1 {
                return Ok(id);
            }
        }
        self.audit(e)?;
        Ok(self.tx.last_insert_rowid())
    }

    fn audit(&self, e: &AuditEntry) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO audit (time, service, rhost, user, realm, serial, type, result, \
                 reason, caller, source, ruser) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
            )?
            .execute(params![
                e.time as i64,
                cap(&e.service),
                cap(&e.rhost),
                cap(&e.user),
                cap(&e.realm),
                cap(&e.serial),
                cap(&e.kind),
                e.result.as_str(),
                cap(&e.reason),
                e.caller,
                cap(&e.source),
                cap(&e.ruser)
            ])?;
        if let Some(keep) = self.audit_keep {
            if self.tx.last_insert_rowid() % AUDIT_PRUNE_EVERY == 0 {
                self.tx.execute_cached(
                    "DELETE FROM audit WHERE time < ?1",
                    params![e.time.saturating_sub(keep) as i64],
                )?;
            }
        }
        Ok(())
    }
}
