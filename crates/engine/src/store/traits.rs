//! The seams through which the engine reaches the store: [`Store`] for reads outside a
//! transaction and [`StoreTx`] for what a write transaction may do. The SQLite store, its pool
//! and the daemon's group writer implement them; the engine's tests put fakes behind them.

use super::{
    AuditEntry, ChallengeRecord, ChallengeState, Missed, OfflineBatch, OfflineValue, SourceClass,
    Standing, TokenRecord,
};
use crate::error::Result;

/// What the engine reads outside a transaction.
pub trait Store {
    /// All tokens of a user in a realm, active or not.
    fn tokens_of(&self, user: &str, realm: &str) -> Result<Vec<TokenRecord>>;
    /// All tokens of a realm, of every user (the members a 4eyes token counts).
    fn tokens_in_realm(&self, realm: &str) -> Result<Vec<TokenRecord>>;
    /// Runs `f` in one write transaction; commits when it returns `Ok`, rolls back on `Err`.
    ///
    /// **The durability contract** (every host keeps it, whether it writes alone or in a group
    /// commit): `write` returns only once `f`'s writes are committed, and a caller answers nothing
    /// (no prompt, no verdict) about them before it returns. A commit reaches the store file
    /// without a sync (SQLite's WAL under `synchronous = NORMAL`), which only a power cut can lose,
    /// never a killed daemon: so a rejected attempt's failure counts and audit row, and an
    /// attempt's place in the counts, are there before its reply, and no crash gives a guess back.
    /// A transaction that makes something used (moves a counter, closes a challenge, takes or
    /// stores offline values, adds a token) is also synced (fsync of the WAL) before `write`
    /// returns, so that no power cut makes a used OTP valid again.
    fn write<R>(&self, f: impl FnOnce(&dyn StoreTx) -> Result<R>) -> Result<R>;
    /// Whether a second factor of `user` was accepted for `service` from `rhost` at or after
    /// `since` (an audit row of a token's accept: a policy's grace window).
    fn accepted_since(&self, user: &str, service: &str, rhost: &str, since: u64) -> Result<bool>;
    /// The offline values a privacyIDEA server handed out for a user's tokens (`[remote]
    /// offline`), lowest counter first.
    fn offline_values(&self, user: &str, realm: &str) -> Result<Vec<OfflineValue>>;
    /// What counts against an attempt of `user` from `source` (see [`Standing`]); a second
    /// factor passed at or after `passed_since` makes the source familiar.
    fn standing(
        &self,
        user: &str,
        realm: &str,
        source: &str,
        passed_since: u64,
    ) -> Result<Standing>;
}

/// What the engine does inside a write transaction (which steps must be synced: see
/// [`Store::write`]).
pub trait StoreTx {
    /// A fresh read of one token, taken under the write lock.
    fn token(&self, serial: &str) -> Result<Option<TokenRecord>>;
    /// Stores the counter that an accepted OTP moved to and clears the fail counter.
    fn record_success(&self, serial: &str, counter: u64) -> Result<()>;
    /// Counts one failure on a token.
    fn record_failure(&self, serial: &str, now: u64) -> Result<()>;
    /// Clears a fail counter whose `fail_clear_timeout` has passed.
    fn clear_failures(&self, serial: &str) -> Result<()>;
    fn insert_challenge(&self, c: &ChallengeRecord) -> Result<()>;
    /// The rows of a transaction that are still open.
    fn open_challenges(&self, transaction_id: &str) -> Result<Vec<ChallengeRecord>>;
    /// Closes every row of a transaction with `state`.
    fn close_challenges(&self, transaction_id: &str, state: ChallengeState) -> Result<()>;
    /// Marks open challenges whose time has passed as expired (a login that was cut off leaves
    /// its challenge open) and deletes closed rows a day past their expiry.
    fn expire_challenges(&self, now: u64) -> Result<()>;
    fn audit(&self, e: &AuditEntry) -> Result<()>;
    /// How many e-mail (or SMS: `kind` is the token type's name) OTPs were sent to the user
    /// since `since`, all the user's tokens of that type together.
    fn sends_since(&self, user: &str, realm: &str, kind: &str, since: u64) -> Result<u64>;
    /// Records an OTP about to be sent, in the transaction that checked the count; returns the
    /// row's id for [`StoreTx::forget_send`]. Rows older than
    /// [`SEND_RETENTION`](super::SEND_RETENTION) are dropped.
    fn record_send(
        &self,
        user: &str,
        realm: &str,
        kind: &str,
        serial: &str,
        now: u64,
    ) -> Result<i64>;
    /// Takes back a recorded send whose delivery failed: no OTP went out.
    fn forget_send(&self, id: i64) -> Result<()>;
    /// Replaces a token's PIN hash `old` by `new` (a rehash); no change if the PIN was changed
    /// meanwhile.
    fn replace_pin_hash(&self, serial: &str, old: &str, new: &str) -> Result<()>;
    /// Takes the offline value of `counter` (and drops those below it); `false` if it is gone
    /// already: another login took it.
    fn consume_offline(&self, serial: &str, counter: u64) -> Result<bool>;
    /// Stores offline values a server handed out: in place of the token's (`replace`) or beside
    /// them (a refill).
    fn put_offline(&self, batch: &OfflineBatch, replace: bool) -> Result<()>;
    /// The token a refill of `serial`'s offline values must show.
    fn offline_refill_token(&self, serial: &str) -> Result<Option<String>>;
    /// [`Store::standing`], read under the write lock.
    fn standing(
        &self,
        user: &str,
        realm: &str,
        source: &str,
        passed_since: u64,
    ) -> Result<Standing>;
    /// Counts a failure of `user` from `source` (rows that can lock nothing any more, given
    /// `max_fail`, are dropped on the way).
    fn record_source_failure(
        &self,
        user: &str,
        realm: &str,
        source: &str,
        now: u64,
        max_fail: u32,
    ) -> Result<()>;
    /// Takes back one failure counted on `source` (an attempt that was no guess).
    fn take_back_source_failure(&self, user: &str, realm: &str, source: &str) -> Result<()>;
    /// Clears the failures of `user` from `source` (a success there, or a lock whose time has
    /// passed), or from every source (`None`).
    fn clear_source_failures(&self, user: &str, realm: &str, source: Option<&str>) -> Result<u64>;
    /// Counts a failure of `user` from a source of `class`.
    fn record_class_failure(
        &self,
        user: &str,
        realm: &str,
        class: SourceClass,
        now: u64,
    ) -> Result<()>;
    /// Takes back one failure counted on `class`.
    fn take_back_class_failure(&self, user: &str, realm: &str, class: SourceClass) -> Result<()>;
    /// Clears the sum of `class` (a success from it, or a lock whose time has passed).
    fn clear_class_failures(&self, user: &str, realm: &str, class: SourceClass) -> Result<()>;
    /// Notes that `user` passed the second factor from `source` now; sources passed from last
    /// before `forget_before` are forgotten.
    fn mark_familiar(
        &self,
        user: &str,
        realm: &str,
        source: &str,
        now: u64,
        forget_before: u64,
    ) -> Result<()>;
    /// Notes a failure the user is told of at the next success.
    fn note_missed(&self, user: &str, realm: &str, source: &str, now: u64) -> Result<()>;
    /// The failures since the last success, taken.
    fn take_missed(&self, user: &str, realm: &str) -> Result<Option<Missed>>;
    /// Writes an audit row, or with `row` rewrites that row's reason (a count that grew);
    /// returns the row's id.
    fn audit_row(&self, e: &AuditEntry, row: Option<i64>) -> Result<i64>;
    /// Adds a token a user enrolled for themselves (see [`crate::enroll::dialogue`]); a serial
    /// that exists already is refused.
    fn insert_token(&self, t: &TokenRecord) -> Result<()>;
    /// The tokens of a user in a realm, read under the write lock.
    fn tokens_of(&self, user: &str, realm: &str) -> Result<Vec<TokenRecord>>;
}
