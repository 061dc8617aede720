//! The SQLite store itself: opening the file (after checking who may write it and what lies
//! beside it), the connection's settings, migrations, and making commits durable (syncing the
//! WAL, checkpointing it when it grows). Its reads and write transactions for the engine are the
//! [`Store`] implementation here; the admin queries are in `admin.rs`, a transaction's steps in
//! `tx.rs`.

use super::rows::{token_from_row, tokens_of, TOKEN_COLS};
use super::tx::SqliteTx;
use super::{offline, schema, sources, OfflineValue, Standing, Store, StoreTx, TokenRecord};
use crate::error::{Error, Kind, Result};
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

pub struct SqliteStore {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    /// Audit rows older than this many seconds are pruned as new ones come; `None` keeps all.
    pub(super) audit_keep: Option<u64>,
}

/// The WAL size from which an engine transaction, once committed, checkpoints the WAL into the
/// database and truncates it. A login that opens the store alone (the usual case: one login per
/// process) rebuilds the WAL index by reading every frame since the last truncation, so the
/// WAL is kept short; a login adds about three frames of 4 KiB. (SQLite's own automatic
/// checkpoints never restart the WAL here: the index that records them dies with each login's
/// connection, so the WAL would only grow.)
pub(super) const WAL_TRUNCATE_BYTES: u64 = 256 * 1024;

/// The same bound for a long-lived writer (tesserad's group writer). Its connection keeps the
/// WAL index, so SQLite's automatic checkpoints (every 1000 pages) copy the WAL into the
/// database and start it again from its beginning: later commits overwrite pages the file
/// already has, and syncing them costs no metadata of a growing file. Truncating at
/// [`WAL_TRUNCATE_BYTES`] instead threw that away every ten or so logins, with two fsyncs on
/// a login's path each time (measured: `cargo bench -p tesserad`, reject 230 → 119 µs, accept
/// 442 → 273 µs). The bound stays, so that what a one-login process that opens the store
/// after the daemon has stopped reads once stays small.
pub(super) const DAEMON_WAL_TRUNCATE_BYTES: u64 = 4 << 20;

/// What [`SqliteStore::check_files`] found.
#[derive(Clone, Copy)]
pub struct CheckedFiles {
    /// The store file's device and inode: another file put in its place (a restored backup)
    /// has another identity, and connections to the old one must not serve it.
    pub identity: (u64, u64),
    wal_exists: bool,
}

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
        let meta =
            crate::os::fsperm::check_in_place(path, crate::os::fsperm::Access::Readable, |e| {
                Error::io(Kind::Store, path, e).hint(" (run `tessera init`)")
            })?;
        let wal_exists = crate::os::fsperm::check_beside(&wal_path(path))?.is_some();
        let shm = crate::os::fsperm::with_suffix(path, "-shm");
        if crate::os::fsperm::check_beside(&shm)?.is_some() {
            // SQLite maps the -shm file shared and writes to the mapping: once the file can't
            // be written (marked immutable, a read-only mount), a write to a page of it kills
            // the process with SIGBUS. Refused here, before a connection touches it.
            crate::os::sys::may_write(&shm).map_err(|e| {
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
                crate::os::fsperm::create_private_dir(dir)?;
            }
            crate::os::fsperm::create_private_file(path, b"")?;
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
            return Err(Error::store(format!(
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
    pub(super) fn sync_wal(&self) -> Result<()> {
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

    pub(super) fn checkpoint_if_longer_than(&self, bound: u64) {
        let long = std::fs::metadata(wal_path(&self.path)).is_ok_and(|m| m.len() > bound);
        if long {
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }
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
        // `Store::write`'s contract: the commit itself is not synced (NORMAL), what must be
        // durable is synced right after it. The connection goes back to FULL for the rest.
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

/// The WAL file next to a database.
pub(super) fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}
