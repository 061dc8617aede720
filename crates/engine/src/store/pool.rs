//! The store as a long-lived host (tesserad) keeps it: connections that stay open from one login
//! to the next, reading connections for the logins' reads and one [`GroupWriter`] for all their
//! writes.
//!
//! Opening SQLite (the file, the schema, the pragmas) costs more than a login's own queries, so
//! a one-login process pays it every time; a daemon pays it once. The file checks of
//! [`SqliteStore::open`] still hold for every login: they are made again whenever inotify says
//! a file or directory they looked at changed (`crate::os::watch`), and a store put in place of
//! the open one (a restored backup) is opened afresh instead of served from the old file.
//!
//! A write or an open that fails for a reason that can pass ([`Error::can_pass`]: a read-only
//! file system, a full disk, an I/O error, a file that could not be opened) drops the writer and
//! the idle readers, and the next login opens them afresh: a connection SQLite opened on a
//! read-only file system stays read-only, and would otherwise refuse every login until a
//! SIGHUP, long after the file system is writable again.

use super::group::GroupWriter;
use super::{CheckedFiles, SqliteStore, Store, StoreTx, TokenRecord};
use crate::error::Result;
use crate::os::watch::{Checked, Watched};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Idle reading connections kept; more are opened when more reads run at once, and closed
/// after. A login takes one for each read only (not while it waits for a hash or its user), so
/// a hundred logins at once hold a few, not a hundred.
const MAX_IDLE: usize = 8;

pub struct StorePool {
    path: PathBuf,
    busy_timeout_ms: u64,
    keep_audit_days: u64,
    state: Mutex<PoolState>,
    /// The file checks, made again only when something they looked at changed.
    checked: Checked<CheckedFiles>,
}

#[derive(Default)]
struct PoolState {
    /// The store file (device, inode) the connections below belong to.
    identity: Option<(u64, u64)>,
    /// Counts the times the connections were dropped: a reader of an older generation is not
    /// taken back.
    generation: u64,
    idle: Vec<SqliteStore>,
    writer: Option<Arc<GroupWriter>>,
}

impl PoolState {
    /// Drops the connections: the next checkout opens new ones.
    fn start_over(&mut self) {
        self.generation += 1;
        self.idle.clear();
        self.writer = None;
    }
}

impl StorePool {
    pub fn new(path: &Path, busy_timeout_ms: u64, keep_audit_days: u64) -> StorePool {
        StorePool {
            path: path.to_path_buf(),
            busy_timeout_ms,
            keep_audit_days,
            state: Mutex::default(),
            checked: Checked::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store for one login: the file checks (made again if anything they looked at
    /// changed), a reading connection that opens (kept idle for the login's reads) and the
    /// shared writer.
    pub fn checkout(self: &Arc<Self>) -> Result<PooledStore> {
        let identity = self
            .checked
            .get(
                || Watched::store(&self.path),
                || SqliteStore::check_files(&self.path),
            )?
            .identity;
        let (reader, writer, generation) = {
            let mut st = self.lock();
            // A writer that failed for a reason that can pass, in a login that has not
            // dropped the connections itself yet (see `PooledStore::write`).
            let broken = st.writer.as_ref().is_some_and(|w| w.broken());
            if st.identity != Some(identity) || broken {
                st.identity = Some(identity);
                st.start_over();
            }
            (st.idle.pop(), st.writer.clone(), st.generation)
        };
        let reader = match reader {
            Some(r) => r,
            None => self.failing(generation, self.open())?,
        };
        self.give_back(generation, reader);
        let writer = match writer {
            Some(w) => w,
            None => {
                let w = self.open().and_then(|s| GroupWriter::new(s).map(Arc::new));
                let w = self.failing(generation, w)?;
                let mut st = self.lock();
                if st.generation == generation {
                    // Two first logins at once: both use the one that was kept.
                    Arc::clone(st.writer.get_or_insert(w))
                } else {
                    w
                }
            }
        };
        Ok(PooledStore {
            pool: Arc::clone(self),
            writer,
            generation,
        })
    }

    /// An idle reading connection of `generation`, or a new one.
    fn reader(&self, generation: u64) -> Result<SqliteStore> {
        let idle = {
            let mut st = self.lock();
            if st.generation == generation {
                st.idle.pop()
            } else {
                None
            }
        };
        match idle {
            Some(r) => Ok(r),
            None => self.failing(generation, self.open()),
        }
    }

    /// Keeps a reading connection for the next read, if it is of the current generation and
    /// fewer than [`MAX_IDLE`] are kept.
    fn give_back(&self, generation: u64, reader: SqliteStore) {
        let mut st = self.lock();
        if st.generation == generation && st.idle.len() < MAX_IDLE {
            st.idle.push(reader);
        }
    }

    /// `result`, after dropping the connections of `generation` if it failed for a reason that
    /// can pass.
    fn failing<T>(&self, generation: u64, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if e.can_pass() {
                self.drop_connections(generation);
            }
        }
        result
    }

    /// Drops the connections, unless they were dropped (and maybe opened again) since
    /// `generation`.
    fn drop_connections(&self, generation: u64) {
        let mut st = self.lock();
        if st.generation == generation {
            st.start_over();
        }
    }

    fn open(&self) -> Result<SqliteStore> {
        Ok(SqliteStore::open(&self.path, self.busy_timeout_ms)?
            .keep_audit_days(self.keep_audit_days))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One login's use of a [`StorePool`]: each read borrows an idle connection of the pool.
pub struct PooledStore {
    pool: Arc<StorePool>,
    writer: Arc<GroupWriter>,
    /// The pool's generation the connections belong to.
    generation: u64,
}

impl PooledStore {
    /// Runs `read` on a reading connection of the pool.
    fn read<T>(&self, read: impl FnOnce(&SqliteStore) -> Result<T>) -> Result<T> {
        let reader = self.pool.reader(self.generation)?;
        let out = read(&reader);
        if out.is_ok() {
            self.pool.give_back(self.generation, reader);
        }
        self.pool.failing(self.generation, out)
    }
}

impl Store for PooledStore {
    fn tokens_of(&self, user: &str, realm: &str) -> Result<Vec<TokenRecord>> {
        self.read(|r| r.tokens_of(user, realm))
    }

    fn tokens_in_realm(&self, realm: &str) -> Result<Vec<TokenRecord>> {
        self.read(|r| r.tokens_in_realm(realm))
    }

    fn write<R>(&self, f: impl FnOnce(&dyn StoreTx) -> Result<R>) -> Result<R> {
        let result = self.writer.write(f);
        // The error of a batch's commit reaches each member as a message only: the writer
        // itself knows whether it failed for a reason that can pass.
        if result.is_err() && self.writer.broken() {
            self.pool.drop_connections(self.generation);
        }
        result
    }

    fn accepted_since(&self, user: &str, service: &str, rhost: &str, since: u64) -> Result<bool> {
        self.read(|r| r.accepted_since(user, service, rhost, since))
    }

    fn offline_values(&self, user: &str, realm: &str) -> Result<Vec<super::OfflineValue>> {
        self.read(|r| r.offline_values(user, realm))
    }

    fn standing(
        &self,
        user: &str,
        realm: &str,
        source: &str,
        passed_since: u64,
    ) -> Result<super::Standing> {
        self.read(|r| r.standing(user, realm, source, passed_since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::TokenType;

    fn new_store(path: &Path, serial: &str) {
        let s = SqliteStore::create(path, 5000).unwrap();
        let t = TokenRecord::new(serial, "alice", "default", TokenType::Hotp, vec![0; 40]);
        s.insert_token(&t).unwrap();
    }

    fn serials(s: &PooledStore) -> Vec<String> {
        s.tokens_of("alice", "default")
            .unwrap()
            .into_iter()
            .map(|t| t.serial)
            .collect()
    }

    #[test]
    fn connections_are_kept_and_a_store_put_in_place_is_opened_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        new_store(&path, "OLD");
        let pool = Arc::new(StorePool::new(&path, 5000, 0));
        let first = pool.checkout().unwrap();
        assert_eq!(serials(&first), ["OLD"]);
        let writer = Arc::clone(&first.writer);
        drop(first);
        {
            let s = pool.checkout().unwrap();
            assert!(Arc::ptr_eq(&s.writer, &writer), "the writer is kept");
            assert_eq!(
                pool.lock().idle.len(),
                1,
                "the reader is kept between reads"
            );
            assert_eq!(serials(&s), ["OLD"]);
        }
        assert_eq!(pool.lock().idle.len(), 1, "and still one");

        // A restored backup renamed over the store: the kept connections belong to the old
        // file and must not serve the new one.
        let other = dir.path().join("restored.db");
        new_store(&other, "NEW");
        std::fs::rename(&other, &path).unwrap();
        let _ = std::fs::remove_file(dir.path().join("t.db-wal"));
        let _ = std::fs::remove_file(dir.path().join("t.db-shm"));
        for ext in ["-wal", "-shm"] {
            let from = dir.path().join(format!("restored.db{ext}"));
            if from.exists() {
                std::fs::rename(from, dir.path().join(format!("t.db{ext}"))).unwrap();
            }
        }
        let s = pool.checkout().unwrap();
        assert_eq!(serials(&s), ["NEW"]);
        assert!(
            !Arc::ptr_eq(&s.writer, &writer),
            "a new writer for the new file"
        );
        s.write(|tx| tx.record_success("NEW", 9)).unwrap();
        assert!(s.write(|tx| tx.token("OLD")).unwrap().is_none());
    }

    #[test]
    fn the_file_checks_are_made_again_for_every_login() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        new_store(&path, "T");
        let pool = Arc::new(StorePool::new(&path, 5000, 0));
        drop(pool.checkout().unwrap());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = pool.checkout().err().unwrap().to_string();
        assert!(e.contains("t.db"), "{e}");
    }

    /// Files marked immutable (`chattr +i`) for as long as it lives: even root can't open
    /// them for writing nor write through a descriptor opened before, as on a file system
    /// mounted read-only.
    struct Immutable(Vec<PathBuf>);

    impl Immutable {
        fn set(files: &[PathBuf]) -> Immutable {
            chattr("+i", files);
            Immutable(files.to_vec())
        }
    }

    impl Drop for Immutable {
        fn drop(&mut self) {
            chattr("-i", &self.0);
        }
    }

    fn chattr(flag: &str, files: &[PathBuf]) {
        let st = std::process::Command::new("chattr")
            .arg(flag)
            .args(files)
            .status()
            .unwrap();
        assert!(
            st.success(),
            "chattr {flag}: needs root and a file system with the immutable flag (ext4, xfs, \
             btrfs, tmpfs since Linux 6.0)"
        );
    }

    /// A login's write: a counter moved and its audit row.
    fn login_write(s: &PooledStore, counter: u64) -> Result<()> {
        s.write(|tx| {
            tx.record_success("T", counter)?;
            tx.audit(&crate::store::AuditEntry {
                user: "alice".into(),
                reason: "a login".into(),
                ..crate::store::AuditEntry::default()
            })
        })
    }

    fn stored_counter(path: &Path) -> u64 {
        SqliteStore::open(path, 5000)
            .unwrap()
            .get_token("T")
            .unwrap()
            .counter
    }

    /// The store's files could not be written (a read-only file system, here files marked
    /// immutable): logins fail meanwhile, and once the files can be written again the next
    /// login works, with the same pool and no SIGHUP. Needs root (as in CI).
    #[test]
    fn a_store_that_could_not_be_written_is_opened_afresh_once_it_can() {
        if crate::os::sys::euid() != 0 {
            eprintln!("skipped: needs root (chattr +i)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        new_store(&path, "T");
        let wal = dir.path().join("t.db-wal");
        assert!(wal.exists());
        let pool = Arc::new(StorePool::new(&path, 5000, 0));

        // Opened while the store can't be written: SQLite opens it read-only, for good.
        let ro = Immutable::set(std::slice::from_ref(&path));
        for _ in 0..2 {
            let s = pool.checkout().unwrap();
            assert_eq!(serials(&s), ["T"], "reading works");
            let e = login_write(&s, 1).unwrap_err();
            assert!(e.can_pass(), "{e}");
        }
        drop(ro);
        let s = pool.checkout().unwrap();
        login_write(&s, 2).unwrap();
        drop(s);
        assert_eq!(stored_counter(&path), 2);

        // Connections that worked, then a write fails (an I/O error: the WAL can't be written):
        // the writer and the idle readers are dropped.
        let s = pool.checkout().unwrap();
        let writer = Arc::clone(&s.writer);
        drop(s);
        assert_eq!(pool.lock().idle.len(), 1);
        let ro = Immutable::set(&[path.clone(), wal.clone()]);
        let s = pool.checkout().unwrap();
        assert!(Arc::ptr_eq(&s.writer, &writer));
        let e = login_write(&s, 3).unwrap_err();
        drop(s);
        assert!(
            pool.lock().writer.is_none() && pool.lock().idle.is_empty(),
            "connections dropped after: {e}"
        );
        assert!(login_write(&pool.checkout().unwrap(), 3).is_err());
        drop(ro);
        let s = pool.checkout().unwrap();
        assert!(!Arc::ptr_eq(&s.writer, &writer));
        login_write(&s, 4).unwrap();
        drop(s);
        assert_eq!(stored_counter(&path), 4);
    }

    /// BUSY is contention, not a broken connection: the writer is kept.
    #[test]
    fn a_busy_store_keeps_its_connections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        new_store(&path, "T");
        let pool = Arc::new(StorePool::new(&path, 50, 0));
        let s = pool.checkout().unwrap();
        let writer = Arc::clone(&s.writer);
        // Another process's writer holds the lock.
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let e = login_write(&s, 1).unwrap_err();
        assert!(e.to_string().contains("locked"), "{e}");
        drop(s);
        other.execute_batch("ROLLBACK").unwrap();
        let s = pool.checkout().unwrap();
        assert!(Arc::ptr_eq(&s.writer, &writer), "kept after: {e}");
        login_write(&s, 1).unwrap();
    }
}
