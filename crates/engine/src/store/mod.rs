//! The SQLite store. It owns all SQL. The engine sees it through [`Store`] and [`StoreTx`]:
//! reads of a user's tokens, and write transactions taken with `BEGIN IMMEDIATE`, so that the
//! check of an OTP and the move of the counter are one step that no other process can split.
//!
//! The rooms: `records` (the rows as data), `traits` (the seams), `sqlite` (open, migrate,
//! sync), `tx` (a write transaction's steps), `admin` (the `tessera` command's queries), `rows`
//! (the SQL columns and row readers), and beside them backups, the group writer and pool of the
//! daemon, offline values, the failures per source, and the schema.

mod admin;
mod backup;
mod group;
mod offline;
mod pool;
mod records;
mod restore;
mod rows;
mod schema;
mod sources;
mod sqlite;
mod states;
mod traits;
mod tx;

pub use backup::{BackupSummary, BackupTarget};
pub use group::GroupWriter;
pub use offline::{OfflineBatch, OfflineValue};
pub use pool::{PooledStore, StorePool};
pub use records::{cap, cap_to, AuditEntry, ChallengeRecord, TokenRecord, AUDIT_FIELD_MAX};
pub use restore::{BackupReader, RestoreMode, RestoreReport, TokenChange};
pub use sources::{ClassFailures, Missed, SourceFailures, Standing};
pub(crate) use sqlite::ExecuteCached;
pub use sqlite::{CheckedFiles, SqliteStore};
pub use states::{AuditResult, ChallengeState, SourceClass};
pub use traits::{Store, StoreTx};
pub use tx::SEND_RETENTION;

#[cfg(test)]
mod tests;
