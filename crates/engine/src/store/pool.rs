//! The store as a long-lived host (tesserad) keeps it: connections that stay open from one login
//! to the next, reading connections for the logins' reads and one [`GroupWriter`] for all their
//! writes.
//!
//! Opening SQLite (the file, the schema, the pragmas) costs more than a login's own queries, so
//! a one-login process pays it every time; a daemon pays it once. The file checks of
//! [`SqliteStore::open`] are still made before every login, and a store put in place of the
//! open one (a restored backup) is opened afresh instead of served from the old file.

use super::group::GroupWriter;
use super::{SqliteStore, Store, StoreTx, TokenRecord};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Idle reading connections kept for the next logins; more are opened when more logins run at
/// once, and closed when they end.
const MAX_IDLE: usize = 16;

pub struct StorePool {
    path: PathBuf,
    busy_timeout_ms: u64,
    keep_audit_days: u64,
    state: Mutex<PoolState>,
}

#[derive(Default)]
struct PoolState {
    /// The store file (device, inode) the connections below belong to.
    identity: Option<(u64, u64)>,
    idle: Vec<SqliteStore>,
    writer: Option<Arc<GroupWriter>>,
}

impl StorePool {
    pub fn new(path: &Path, busy_timeout_ms: u64, keep_audit_days: u64) -> StorePool {
        StorePool {
            path: path.to_path_buf(),
            busy_timeout_ms,
            keep_audit_days,
            state: Mutex::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store for one login: the file checks made again, then an idle connection (or a new
    /// one) to read and the shared writer.
    pub fn checkout(self: &Arc<Self>) -> Result<PooledStore> {
        let identity = SqliteStore::check_files(&self.path)?.identity;
        let (reader, writer) = {
            let mut st = self.lock();
            if st.identity != Some(identity) {
                *st = PoolState {
                    identity: Some(identity),
                    ..PoolState::default()
                };
            }
            (st.idle.pop(), st.writer.clone())
        };
        let reader = match reader {
            Some(r) => r,
            None => self.open()?,
        };
        let writer = match writer {
            Some(w) => w,
            None => {
                let w = Arc::new(GroupWriter::new(self.open()?)?);
                let mut st = self.lock();
                if st.identity == Some(identity) {
                    // Two first logins at once: both use the one that was kept.
                    Arc::clone(st.writer.get_or_insert(w))
                } else {
                    w
                }
            }
        };
        Ok(PooledStore {
            pool: Arc::clone(self),
            reader: Some(reader),
            writer,
            identity,
        })
    }

    fn open(&self) -> Result<SqliteStore> {
        Ok(SqliteStore::open(&self.path, self.busy_timeout_ms)?
            .keep_audit_days(self.keep_audit_days))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One login's use of a [`StorePool`]; its reading connection goes back to the pool at the end.
pub struct PooledStore {
    pool: Arc<StorePool>,
    reader: Option<SqliteStore>,
    writer: Arc<GroupWriter>,
    identity: (u64, u64),
}

impl PooledStore {
    fn reader(&self) -> Result<&SqliteStore> {
        // Taken only by `drop`.
        self.reader
            .as_ref()
            .ok_or_else(|| Error::Store("the connection was given back".into()))
    }
}

impl Store for PooledStore {
    fn tokens_of(&self, user: &str, realm: &str) -> Result<Vec<TokenRecord>> {
        self.reader()?.tokens_of(user, realm)
    }

    fn tokens_in_realm(&self, realm: &str) -> Result<Vec<TokenRecord>> {
        self.reader()?.tokens_in_realm(realm)
    }

    fn write<R>(&self, f: impl FnOnce(&dyn StoreTx) -> Result<R>) -> Result<R> {
        self.writer.write(f)
    }

    fn accepted_since(&self, user: &str, service: &str, rhost: &str, since: u64) -> Result<bool> {
        self.reader()?.accepted_since(user, service, rhost, since)
    }

    fn offline_values(&self, user: &str, realm: &str) -> Result<Vec<super::OfflineValue>> {
        self.reader()?.offline_values(user, realm)
    }

    fn source_failures(&self, user: &str, realm: &str, source: &str) -> Result<Option<(u32, u64)>> {
        self.reader()?.source_failures(user, realm, source)
    }
}

impl Drop for PooledStore {
    fn drop(&mut self) {
        let Some(reader) = self.reader.take() else {
            return;
        };
        let mut st = self.pool.lock();
        if st.identity == Some(self.identity) && st.idle.len() < MAX_IDLE {
            st.idle.push(reader);
        }
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
            assert_eq!(pool.lock().idle.len(), 0, "the idle reader was taken");
        }
        assert_eq!(pool.lock().idle.len(), 1, "and given back");

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
}
