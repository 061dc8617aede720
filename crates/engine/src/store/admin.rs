//! The admin queries of the `tessera` command (and `tessera import`): listing, adding, changing
//! and removing tokens, the failures counted per source, challenges and the audit trail. Outside
//! the engine's transactions: each is its own statement, committed with SQLite's FULL sync.

use super::rows::{
    audit_from_row, challenge_from_row, counter_sql, insert_token, token_from_row, AUDIT_COLS,
    CHALLENGE_COLS, TOKEN_COLS,
};
use super::{
    sources, AuditEntry, ChallengeRecord, ClassFailures, SourceFailures, SqliteStore, TokenRecord,
};
use crate::error::{Error, Result};
use rusqlite::{params, OptionalExtension};

impl SqliteStore {
    pub fn insert_token(&self, t: &TokenRecord) -> Result<()> {
        insert_token(&self.conn, t)
    }

    /// Inserts `tokens` in one transaction: all of them or none (`tessera import`). A serial
    /// that exists already refuses the whole set.
    pub fn insert_tokens(&self, tokens: &[TokenRecord]) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        for t in tokens {
            self.insert_token(t)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenRecord>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {TOKEN_COLS} FROM tokens WHERE ?1 IS NULL OR user = ?1 ORDER BY user, serial"
        ))?;
        let rows = st.query_map(params![user], token_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn get_token(&self, serial: &str) -> Result<TokenRecord> {
        self.conn
            .query_row(
                &format!("SELECT {TOKEN_COLS} FROM tokens WHERE serial = ?1"),
                params![serial],
                token_from_row,
            )
            .optional()?
            .ok_or_else(|| Error::invalid(format!("no token with serial {serial}")))
    }

    fn update_one(&self, serial: &str, sql: &str, p: &[&dyn rusqlite::ToSql]) -> Result<()> {
        let mut all: Vec<&dyn rusqlite::ToSql> = vec![&serial];
        all.extend_from_slice(p);
        let n = self.conn.execute(sql, all.as_slice())?;
        if n == 0 {
            return Err(Error::invalid(format!("no token with serial {serial}")));
        }
        Ok(())
    }

    /// Sets (or with `None` removes) a token's PIN, and keeps in its `info` the PIN rule it was
    /// set under (`tessera doctor` counts the PINs set under another rule).
    pub fn set_pin_hash(
        &self,
        serial: &str,
        pin_hash: Option<&str>,
        rule: &crate::pin_rule::PinRule,
    ) -> Result<()> {
        let mut info = self.get_token(serial)?.info;
        info.pin_rule = pin_hash.map(|_| rule.id());
        self.update_one(
            serial,
            "UPDATE tokens SET pin_hash = ?2, info = ?3 WHERE serial = ?1",
            &[&pin_hash, &info.to_json()],
        )
    }

    pub fn set_active(&self, serial: &str, active: bool) -> Result<()> {
        self.update_one(
            serial,
            "UPDATE tokens SET active = ?2 WHERE serial = ?1",
            &[&active],
        )
    }

    pub fn reset_failures(&self, serial: &str) -> Result<()> {
        self.update_one(
            serial,
            "UPDATE tokens SET fail_count = 0, last_fail = NULL WHERE serial = ?1",
            &[],
        )
    }

    /// Sets the drift and moves the counter forward to `counter` (never back: a used HOTP
    /// counter or TOTP step stays used whatever a resync found, also one into the past).
    pub fn set_counter_and_drift(&self, serial: &str, counter: u64, drift: i64) -> Result<()> {
        self.update_one(
            serial,
            "UPDATE tokens SET counter = MAX(counter, ?2), drift = ?3, fail_count = 0 \
             WHERE serial = ?1",
            &[&counter_sql(serial, counter)?, &drift],
        )
    }

    /// Failures counted per source, of one user or all.
    pub fn source_failures_of(&self, user: Option<&str>) -> Result<Vec<SourceFailures>> {
        sources::list(&self.conn, user)
    }

    /// Clears the failures of every source of a user (`tessera token reset`); the count of
    /// sources cleared.
    pub fn clear_source_failures_of(&self, user: &str, realm: &str) -> Result<u64> {
        sources::clear(&self.conn, user, realm, None)
    }

    /// Clears a user's sums of both classes of sources (`tessera token reset`); the count of
    /// classes that had failures.
    pub fn clear_class_failures_of(&self, user: &str, realm: &str) -> Result<u64> {
        sources::class_clear(&self.conn, user, realm, None)
    }

    /// The failures summed per class of sources, of one user or all.
    pub fn class_failures_of(&self, user: Option<&str>) -> Result<Vec<ClassFailures>> {
        sources::class_list(&self.conn, user)
    }

    pub fn remove_token(&self, serial: &str) -> Result<()> {
        self.update_one(serial, "DELETE FROM tokens WHERE serial = ?1", &[])?;
        self.conn
            .execute("DELETE FROM challenges WHERE serial = ?1", params![serial])?;
        Ok(())
    }

    pub fn list_challenges(&self, include_closed: bool) -> Result<Vec<ChallengeRecord>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {CHALLENGE_COLS} FROM challenges WHERE ?1 OR state = 'open' \
             ORDER BY created, transaction_id, serial"
        ))?;
        let rows = st.query_map(params![include_closed], challenge_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn audit_entries(&self, user: Option<&str>, limit: u32) -> Result<Vec<AuditEntry>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {AUDIT_COLS} FROM audit WHERE ?1 IS NULL OR user = ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = st.query_map(params![user, limit], |r| Ok(audit_from_row(r)?.1))?;
        let mut v: Vec<AuditEntry> = rows.collect::<rusqlite::Result<_>>()?;
        v.reverse();
        Ok(v)
    }

    /// The audit rows written after row `after`, oldest first, at most `limit`, with their
    /// ids (`tessera audit --follow`). Rows are only added and pruned from the oldest, so the
    /// ids grow: the last id seen is where the next look starts.
    pub fn audit_after(
        &self,
        after: i64,
        user: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(i64, AuditEntry)>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {AUDIT_COLS} FROM audit WHERE id > ?1 AND (?2 IS NULL OR user = ?2) \
             ORDER BY id LIMIT ?3"
        ))?;
        let rows = st.query_map(params![after, user, limit], audit_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The id of the newest audit row; 0 when there is none.
    pub fn last_audit_id(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM audit", [], |r| r.get(0))?)
    }
}
