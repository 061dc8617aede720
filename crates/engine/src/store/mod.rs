//! The SQLite store. It owns all SQL. The engine sees it through [`Store`] and [`StoreTx`]:
//! reads of a user's tokens, and write transactions taken with `BEGIN IMMEDIATE`, so that the
//! check of an OTP and the move of the counter are one step that no other process can split.

mod backup;
mod group;
mod offline;
mod pool;
mod schema;
mod sources;
mod states;

pub use backup::{
    BackupReader, BackupSummary, BackupTarget, RestoreMode, RestoreReport, TokenChange,
};
pub use group::GroupWriter;
pub use offline::{OfflineBatch, OfflineValue};
pub use pool::{PooledStore, StorePool};
pub use sources::{ClassFailures, Missed, SourceFailures, Standing};
pub use states::{AuditResult, ChallengeState, SourceClass};

use crate::error::{Error, Kind, Result};
use crate::tokens::{Algorithm, TokenInfo, TokenParams, TokenType, MAX_COUNTER};
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;
use std::cell::Cell;
use std::path::{Path, PathBuf};

/// `execute` through the connection's statement cache: a login's transactions run the same
/// few statements every time, and parsing and compiling each anew cost more than running it.
pub(crate) trait ExecuteCached {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
}

impl ExecuteCached for Connection {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
}
use std::time::Duration;

/// A token as stored. The key stays sealed until the engine needs it.
#[derive(Debug, Clone, Serialize)]
pub struct TokenRecord {
    pub serial: String,
    pub user: String,
    pub realm: String,
    #[serde(rename = "type", serialize_with = "ser_type")]
    pub kind: TokenType,
    pub active: bool,
    #[serde(skip)]
    pub pin_hash: Option<String>,
    #[serde(skip)]
    pub sealed_key: Vec<u8>,
    pub digits: u32,
    #[serde(serialize_with = "ser_alg")]
    pub algorithm: Algorithm,
    pub period: u64,
    pub drift: i64,
    pub counter: u64,
    pub fail_count: u32,
    pub last_fail: Option<u64>,
    /// Type-specific settings (e-mail address, phone, OCRA suite, tan count, 4eyes rule).
    pub info: TokenInfo,
    pub description: String,
    pub created: u64,
}

fn ser_type<S: serde::Serializer>(t: &TokenType, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(t.name())
}
fn ser_alg<S: serde::Serializer>(a: &Algorithm, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(a.name())
}

impl TokenRecord {
    /// A freshly enrolled token: active, 6 digits, SHA-1, 30 s, counter 0, no PIN, no failures,
    /// no type settings. Callers set what differs with `..TokenRecord::new(...)`.
    pub fn new(
        serial: &str,
        user: &str,
        realm: &str,
        kind: TokenType,
        sealed_key: Vec<u8>,
    ) -> Self {
        TokenRecord {
            serial: serial.into(),
            user: user.into(),
            realm: realm.into(),
            kind,
            active: true,
            pin_hash: None,
            sealed_key,
            digits: 6,
            algorithm: Algorithm::Sha1,
            period: 30,
            drift: 0,
            counter: 0,
            fail_count: 0,
            last_fail: None,
            info: TokenInfo::default(),
            description: String::new(),
            created: 0,
        }
    }

    pub fn params(&self) -> TokenParams {
        TokenParams {
            kind: self.kind,
            digits: self.digits,
            algorithm: self.algorithm,
            period: self.period,
            drift: self.drift,
            ocra_suite: self.info.ocra_suite.clone(),
            expires: self.expires(),
        }
    }

    /// When a registration code is refused from: as kept, or (a code of an older version)
    /// [`registration::DEFAULT_VALID_FOR`](crate::tokens::registration::DEFAULT_VALID_FOR)
    /// after it was made. `None` for other types.
    pub fn expires(&self) -> Option<u64> {
        (self.kind == TokenType::Registration).then(|| {
            self.info.expires.unwrap_or_else(|| {
                self.created
                    .saturating_add(crate::tokens::registration::DEFAULT_VALID_FOR)
            })
        })
    }

    pub fn has_pin(&self) -> bool {
        self.pin_hash.is_some()
    }
}

/// One token's part of a transaction: a PIN-only pass opens one row per token.
#[derive(Debug, Clone, Serialize)]
pub struct ChallengeRecord {
    pub transaction_id: String,
    pub serial: String,
    pub user: String,
    pub realm: String,
    pub created: u64,
    pub expires: u64,
    pub state: ChallengeState,
    #[serde(skip)]
    pub data: Option<Vec<u8>>,
}

/// One row of the audit table. Never holds a PIN, an OTP or a key.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditEntry {
    pub time: u64,
    pub service: String,
    pub rhost: String,
    pub user: String,
    pub realm: String,
    pub serial: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub result: AuditResult,
    pub reason: String,
    /// The uid of the process that asked for this attempt (the daemon's caller, or whoever
    /// runs `tessera check`); `None` in rows of older versions.
    pub caller: Option<u32>,
    /// Where the attempt came from, as its failures are counted ("" in rows of older
    /// versions, and where no source was named).
    pub source: String,
    /// PAM_RUSER as the application set it ("" for none): kept, never a source.
    pub ruser: String,
}

/// A row built field by field (`..AuditEntry::default()`) says what it is; until then, an error.
impl Default for AuditResult {
    fn default() -> Self {
        AuditResult::Error
    }
}

impl AuditEntry {
    /// Its syslog priority (see [`AuditResult::priority`]).
    pub fn priority(&self) -> u8 {
        self.result.priority()
    }

    /// The entry as one syslog line; every field capped and escaped, so odd bytes can't forge
    /// lines.
    pub fn log_line(&self) -> String {
        format!(
            "result={} user=\"{}\" realm=\"{}\" serial=\"{}\" type={} service=\"{}\" rhost=\"{}\" source=\"{}\" ruser=\"{}\" reason=\"{}\"",
            self.result,
            cap(&self.user).escape_debug(),
            cap(&self.realm).escape_debug(),
            cap(&self.serial).escape_debug(),
            if self.kind.is_empty() { "-" } else { &self.kind },
            cap(&self.service).escape_debug(),
            cap(&self.rhost).escape_debug(),
            cap(&self.source).escape_debug(),
            cap(&self.ruser).escape_debug(),
            cap(&self.reason).escape_debug()
        )
    }
}

/// What the engine reads outside a transaction.
pub trait Store {
    /// All tokens of a user in a realm, active or not.
    fn tokens_of(&self, user: &str, realm: &str) -> Result<Vec<TokenRecord>>;
    /// All tokens of a realm, of every user (the members a 4eyes token counts).
    fn tokens_in_realm(&self, realm: &str) -> Result<Vec<TokenRecord>>;
    /// Runs `f` in one write transaction; commits when it returns `Ok`, rolls back on `Err`.
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

/// What the engine does inside a write transaction.
///
/// A transaction that moves a counter ([`record_success`](StoreTx::record_success)) or closes a
/// challenge is synced to disk before [`Store::write`] returns, so a power cut can't make a
/// used OTP or an answered challenge valid again. One that only counts failures and writes
/// audit rows (every rejected attempt) is not synced on its own: it reaches the disk with the
/// next synced commit or checkpoint, and a power cut may lose it.
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
    /// row's id for [`StoreTx::forget_send`]. Rows older than [`SEND_RETENTION`] are dropped.
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

/// How long a closed challenge stays listed by `tessera challenge list --all` (seconds past its
/// expiry); the audit table keeps the history.
const CLOSED_CHALLENGE_RETENTION: u64 = 86_400;

pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Audit rows older than this many seconds are pruned as new ones come; `None` keeps all.
    audit_keep: Option<u64>,
}

/// The most of any string from outside (user name, service, remote host, reason) that an audit
/// row keeps: a 120 KB user name must not add 120 KB per attempt. Longer ones are cut, and the
/// cut is marked.
pub const AUDIT_FIELD_MAX: usize = 256;

/// `s` cut to [`AUDIT_FIELD_MAX`] bytes at a character boundary, with the original length.
pub fn cap(s: &str) -> std::borrow::Cow<'_, str> {
    cap_to(s, AUDIT_FIELD_MAX)
}

/// `s` cut to `max` bytes at a character boundary, with the original length.
pub fn cap_to(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}...({} bytes)", &s[..end], s.len()))
}

/// Prune old audit rows once every this many rows written (pruning is one indexed DELETE).
const AUDIT_PRUNE_EVERY: i64 = 64;

/// The WAL size from which an engine transaction, once committed, checkpoints the WAL into the
/// database and truncates it. A login that opens the store alone (the usual case: one login per
/// process) rebuilds the WAL index by reading every frame since the last truncation, so the
/// WAL is kept short; a login adds about three frames of 4 KiB. (SQLite's own automatic
/// checkpoints never restart the WAL here: the index that records them dies with each login's
/// connection, so the WAL would only grow.)
const WAL_TRUNCATE_BYTES: u64 = 256 * 1024;

/// The same bound for a long-lived writer (tesserad's group writer). Its connection keeps the
/// WAL index, so SQLite's automatic checkpoints (every 1000 pages) copy the WAL into the
/// database and start it again from its beginning: later commits overwrite pages the file
/// already has, and syncing them costs no metadata of a growing file. Truncating at
/// [`WAL_TRUNCATE_BYTES`] instead threw that away every ten or so logins, with two fsyncs on
/// a login's path each time (measured: `cargo bench -p tesserad`, reject 230 → 119 µs, accept
/// 442 → 273 µs). The bound stays, so that what a one-login process that opens the store
/// after the daemon has stopped reads once stays small.
pub(super) const DAEMON_WAL_TRUNCATE_BYTES: u64 = 4 << 20;

const TOKEN_COLS: &str = "serial, user, realm, type, active, pin_hash, sealed_key, digits, \
    algorithm, period, drift, counter, fail_count, last_fail, info, description, created";

fn token_from_row(r: &Row<'_>) -> rusqlite::Result<TokenRecord> {
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

/// A column that holds one of a closed set of words ([`states`]).
fn word<T>(r: &Row<'_>, i: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    parse(&text).ok_or_else(|| {
        let m = format!("unknown word {text:?}");
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, m.into())
    })
}

fn challenge_from_row(r: &Row<'_>) -> rusqlite::Result<ChallengeRecord> {
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

/// What [`SqliteStore::check_files`] found.
#[derive(Clone, Copy)]
pub struct CheckedFiles {
    /// The store file's device and inode: another file put in its place (a restored backup)
    /// has another identity, and connections to the old one must not serve it.
    pub identity: (u64, u64),
    wal_exists: bool,
}

const CHALLENGE_COLS: &str = "transaction_id, serial, user, realm, created, expires, state, data";

impl SqliteStore {
    /// Opens an existing store, refusing a link, one that group or others may write, one in a
    /// directory they may write, and a `-wal` or `-shm` beside it that is a link or that they
    /// may write (SQLite would replay such a WAL into the store). Pending migrations are
    /// applied; a store newer than this build is refused.
    pub fn open(path: &Path, busy_timeout_ms: u64) -> Result<SqliteStore> {
        let checked = Self::check_files(path)?;
        let wal_is_new = !checked.wal_exists;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| Error::sqlite(path, e))?;
        let store = Self::setup(conn, path, busy_timeout_ms)?;
        if wal_is_new {
            // SQLite (built with SQLITE_DISABLE_DIRSYNC, see .cargo/config.toml) does not sync
            // the directory after creating the WAL; do it once here, so that the WAL survives a
            // power cut together with the commits synced into it. The WAL then stays for good.
            store.sync_dir()?;
        }
        Ok(store)
    }

    /// The checks [`open`](Self::open) makes before SQLite opens the files by name: by `lstat`
    /// (see `check_in_place`), a handful of syscalls and no file read. A host that keeps the
    /// store open (tesserad) makes them again before every login.
    pub fn check_files(path: &Path) -> Result<CheckedFiles> {
        let meta = crate::fsperm::check_in_place(path, crate::fsperm::Access::Readable, |e| {
            Error::io(Kind::Store, path, e).hint(" (run `tessera init`)")
        })?;
        let wal_exists = crate::fsperm::check_beside(&wal_path(path))?.is_some();
        let shm = crate::fsperm::with_suffix(path, "-shm");
        if crate::fsperm::check_beside(&shm)?.is_some() {
            // SQLite maps the -shm file shared and writes to the mapping: once the file can't
            // be written (marked immutable, a read-only mount), a write to a page of it kills
            // the process with SIGBUS. Refused here, before a connection touches it.
            crate::sys::may_write(&shm).map_err(|e| {
                Error::io(Kind::Store, &shm, e).hint(
                    " (SQLite's shared memory must be writable: chattr -i, or a writable mount)",
                )
            })?;
        }
        use std::os::unix::fs::MetadataExt;
        Ok(CheckedFiles {
            identity: (meta.dev(), meta.ino()),
            wal_exists,
        })
    }

    /// Creates a store (0600) if there is none, and opens it.
    pub fn create(path: &Path, busy_timeout_ms: u64) -> Result<SqliteStore> {
        if !path.exists() {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                crate::fsperm::create_private_dir(dir)?;
            }
            crate::fsperm::create_private_file(path, b"")?;
        }
        Self::open(path, busy_timeout_ms)
    }

    fn setup(conn: Connection, path: &Path, busy_timeout_ms: u64) -> Result<SqliteStore> {
        let ctx = |e: rusqlite::Error| Error::sqlite(path, e);
        conn.busy_timeout(Duration::from_millis(busy_timeout_ms))
            .map_err(ctx)?;
        // A login runs some 30 distinct statements (its reads, its counts, its audit row):
        // each parsed once per connection and kept. rusqlite keeps 16 by default, and a
        // statement evicted is parsed again at its next use.
        conn.set_prepared_statement_cache_capacity(64);
        // The query planner's stability guarantee: a plan does not depend on the values bound
        // to it. Without it, SQLite marks a statement whose plan looked at a bound value (an
        // ORDER BY after `user = ?1`, a join on `?1`) as expired at every new binding, and
        // parses and plans it again at each use: every read of a login, every time.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(ctx)?;
        // Every login runs alone in its process, so its connection is the last one to close:
        // by default SQLite would then checkpoint, delete the WAL and its index, and the next
        // login would create both again: three more fsyncs and two file creations per login.
        // The WAL stays instead, and is checkpointed when it grows (`checkpoint_if_long`).
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(ctx)?;
        // WAL lets readers go on while one login writes. The mode is stored in the file: set
        // it only once, not on every open.
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .map_err(ctx)?;
        if !mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(ctx)?;
        }
        // FULL syncs each commit, because a counter lost in a power cut would make a used OTP
        // valid again. (Engine transactions sync only what needs it: see `Store::write`.)
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(ctx)?;
        let mut store = SqliteStore {
            conn,
            path: path.to_path_buf(),
            audit_keep: None,
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let ctx = |e: rusqlite::Error| Error::sqlite(&path, e);
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(ctx)?;
        let known = schema::MIGRATIONS.len() as i64;
        if version > known {
            return Err(Error::Store(format!(
                "{}: schema version {version} is newer than this tessera ({known})",
                path.display()
            )));
        }
        if version == known {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(ctx)?;
        // Re-read under the lock: another process may have migrated meanwhile.
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(ctx)?;
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql).map_err(ctx)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(ctx)?;
        }
        tx.commit().map_err(ctx)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps audit rows `days` days (`[audit] keep_days`); 0 keeps them all.
    pub fn keep_audit_days(mut self, days: u64) -> Self {
        self.audit_keep = (days > 0).then(|| days.saturating_mul(86_400));
        self
    }

    /// Makes every commit so far durable: syncs the WAL.
    fn sync_wal(&self) -> Result<()> {
        let wal = wal_path(&self.path);
        let io = |e: std::io::Error| Error::io(Kind::Store, &wal, e);
        match std::fs::File::open(&wal) {
            Ok(f) => f.sync_data().map_err(io),
            // Checkpointed and removed by another connection, which synced the database first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    /// Syncs the directory of the store, so that files created in it survive a power cut.
    fn sync_dir(&self) -> Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(Kind::Store, dir, e))
    }

    /// Checkpoints the WAL into the database and truncates it once it has grown past
    /// [`WAL_TRUNCATE_BYTES`]. Maintenance only: the commits are already durable in the WAL, so
    /// a checkpoint that fails or finds readers in the way is left to a later login.
    fn checkpoint_if_long(&self) {
        self.checkpoint_if_longer_than(WAL_TRUNCATE_BYTES)
    }

    fn checkpoint_if_longer_than(&self, bound: u64) {
        let long = std::fs::metadata(wal_path(&self.path)).is_ok_and(|m| m.len() > bound);
        if long {
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }

    // ---- admin operations (the `tessera` command) ----

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
            .ok_or_else(|| Error::Invalid(format!("no token with serial {serial}")))
    }

    fn update_one(&self, serial: &str, sql: &str, p: &[&dyn rusqlite::ToSql]) -> Result<()> {
        let mut all: Vec<&dyn rusqlite::ToSql> = vec![&serial];
        all.extend_from_slice(p);
        let n = self.conn.execute(sql, all.as_slice())?;
        if n == 0 {
            return Err(Error::Invalid(format!("no token with serial {serial}")));
        }
        Ok(())
    }

    /// Sets (or with `None` removes) a token's PIN, and keeps in its `info` the PIN rule it was
    /// set under (`tessera doctor` counts the PINs set under another rule).
    pub fn set_pin_hash(
        &self,
        serial: &str,
        pin_hash: Option<&str>,
        rule: &crate::enroll::PinRule,
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

/// All tokens of a user in a realm, active or not.
fn tokens_of(conn: &Connection, user: &str, realm: &str) -> Result<Vec<TokenRecord>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {TOKEN_COLS} FROM tokens WHERE user = ?1 AND realm = ?2 ORDER BY serial"
    ))?;
    let rows = st.query_map(params![user, realm], token_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Adds a new token; a serial that exists already is refused (`Kind::Invalid`).
fn insert_token(conn: &Connection, t: &TokenRecord) -> Result<()> {
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
        return Err(Error::Invalid(format!("token {} already exists", t.serial)));
    }
    Ok(())
}

/// The columns [`audit_from_row`] reads.
const AUDIT_COLS: &str =
    "id, time, service, rhost, user, realm, serial, type, result, reason, caller, source, ruser";

fn audit_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, AuditEntry)> {
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

impl Store for SqliteStore {
    fn tokens_of(&self, user: &str, realm: &str) -> Result<Vec<TokenRecord>> {
        tokens_of(&self.conn, user, realm)
    }

    fn tokens_in_realm(&self, realm: &str) -> Result<Vec<TokenRecord>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {TOKEN_COLS} FROM tokens WHERE realm = ?1 ORDER BY user, serial"
        ))?;
        let rows = st.query_map(params![realm], token_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn offline_values(&self, user: &str, realm: &str) -> Result<Vec<OfflineValue>> {
        offline::values(&self.conn, user, realm)
    }

    fn standing(
        &self,
        user: &str,
        realm: &str,
        source: &str,
        passed_since: u64,
    ) -> Result<Standing> {
        sources::standing(&self.conn, user, realm, source, passed_since)
    }

    fn accepted_since(&self, user: &str, service: &str, rhost: &str, since: u64) -> Result<bool> {
        // By the time index: only the rows of the window are looked at. A token's accept has
        // its serial; pass_on_no_token's has none, and a skip is no accept. Only a root
        // caller's row counts: any other caller (a screen locker) sets the service, rhost and
        // tty of its login itself, and could name those of the login it wants let in.
        let mut st = self.conn.prepare_cached(
            "SELECT 1 FROM audit WHERE time >= ?1 AND user = ?2 AND service = ?3 AND rhost = ?4 \
             AND result = 'accept' AND serial != '' AND caller = 0 LIMIT 1",
        )?;
        Ok(st.exists(params![since as i64, user, service, rhost])?)
    }

    fn write<R>(&self, f: impl FnOnce(&dyn StoreTx) -> Result<R>) -> Result<R> {
        // The commit itself is not synced (NORMAL); what must be durable is synced right after
        // it, before the caller sees the result (see `StoreTx`). A rejected attempt thus costs
        // no fsync. The connection goes back to FULL for everything else.
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let out = self.write_tx(f);
        let restored = self.conn.pragma_update(None, "synchronous", "FULL");
        let out = out?;
        restored?;
        Ok(out)
    }
}

impl SqliteStore {
    fn write_tx<R>(&self, f: impl FnOnce(&dyn StoreTx) -> Result<R>) -> Result<R> {
        // `unchecked_transaction` because the store is shared by `&self`; IMMEDIATE takes the
        // write lock up front, so two logins can't both read the old counter.
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let stx = SqliteTx {
            tx: &tx,
            durable: Cell::new(false),
            audit_keep: self.audit_keep,
        };
        let out = f(&stx)?;
        let durable = stx.durable.get();
        tx.commit()?;
        if durable {
            self.sync_wal()?;
        }
        self.checkpoint_if_long();
        Ok(out)
    }
}

/// A counter as SQLite stores it. Counters above [`MAX_COUNTER`] are refused: stored as `i64` they
/// would turn negative, and `MAX(counter, ?)` would then keep a wrapped value.
fn counter_sql(serial: &str, c: u64) -> Result<i64> {
    i64::try_from(c).map_err(|_| {
        Error::Invalid(format!(
            "token {serial}: counter {c} is beyond the largest counter {MAX_COUNTER}"
        ))
    })
}

/// The WAL file next to a database.
fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

/// A write transaction as the engine sees it: the connection, inside `BEGIN IMMEDIATE` (or a
/// savepoint of a group commit, see [`group`]).
pub(crate) struct SqliteTx<'a> {
    tx: &'a Connection,
    /// Something was written that must be synced before the verdict is given.
    durable: Cell<bool>,
    audit_keep: Option<u64>,
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
        // Synced before the verdict: a value taken must stay taken after a power cut.
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

#[cfg(test)]
mod tests {
    use super::*;

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
            Err(Error::Invalid("no".into()))
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
}

#[cfg(test)]
mod statement_tests {
    use super::*;

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
        let sql = format!(
            "SELECT {TOKEN_COLS} FROM tokens WHERE user = ?1 AND realm = ?2 ORDER BY serial"
        );
        let st = s.conn.prepare_cached(&sql).unwrap();
        assert_eq!(st.get_status(rusqlite::StatementStatus::Run), 50);
        assert_eq!(st.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }
}
