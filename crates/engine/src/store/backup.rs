//! `tessera backup` and `tessera restore`: a consistent copy of the live store, and the way
//! back that never makes a used OTP valid again.
//!
//! A backup is made with SQLite's online backup API from a connection to the live store: it
//! copies every page in one read transaction, so it holds everything committed (also what is
//! only in the WAL) and nothing half-written, while logins go on writing (WAL readers do not
//! block writers). A copy of `tessera.db` by `cp` misses what the WAL holds.
//!
//! The copy is written through a connection to the destination that was opened before the
//! command changed user ([`BackupTarget::create`]), in `journal_mode = MEMORY`, so that no file
//! is opened by name meanwhile: root can make a backup into a directory only root may write,
//! while the store is read as its owner. Finished, the copy is turned into a plain rollback
//! journal database (no `-wal` needed to read it) and checked (`PRAGMA integrity_check`).
//!
//! The way back, `tessera restore`, is in `restore.rs`; it takes from here the check that a
//! file is a tessera store of a schema this build reads (`check_tessera`), `at` and `identity`.

use super::rows::TOKEN_COLS;
use super::SqliteStore;
use crate::error::{describe_sqlite, Error, Kind, Result};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The destination of a backup: a new file (0600, never an existing one), and a connection to
/// it. Dropped unfinished, the file is removed again.
pub struct BackupTarget {
    conn: Option<Connection>,
    file: File,
    path: PathBuf,
    done: bool,
}

/// What [`BackupTarget::finish`] checked.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    pub tokens: u64,
    pub schema_version: i64,
    pub bytes: u64,
}

pub(super) fn at(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::sqlite(path, e)
}

pub(super) fn identity(m: &std::fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

impl BackupTarget {
    /// Creates `path` (`O_EXCL`, mode 0600, not through a link) as whoever runs this, and opens
    /// it as an SQLite database. Fails if `path` exists: a backup never replaces a file.
    pub fn create(path: &Path) -> Result<BackupTarget> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Error::store(format!(
                        "{}: exists; a backup never replaces a file (remove it or name another)",
                        path.display()
                    ))
                } else {
                    io_at(path, e)
                }
            })?;
        let mut target = BackupTarget {
            conn: None,
            file,
            path: path.to_path_buf(),
            done: false,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(at(path))?;
        // SQLite opened the file we created, not one put in its place meanwhile.
        let ours = identity(&target.file.metadata().map_err(|e| io_at(path, e))?);
        let named = std::fs::symlink_metadata(path).map_err(|e| io_at(path, e))?;
        if identity(&named) != ours {
            // What is at `path` now is not ours: leave it be.
            target.done = true;
            return Err(Error::store(format!(
                "{}: replaced while the backup was being made",
                path.display()
            )));
        }
        // No rollback journal file: the copy is written through the descriptor opened here,
        // also once this process works as the store's owner (see the module comment). A copy
        // that fails half-way is removed, so there is nothing to roll back.
        conn.pragma_update_and_check(None, "journal_mode", "MEMORY", |_| Ok(()))
            .map_err(at(path))?;
        target.conn = Some(conn);
        Ok(target)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns the copy into a rollback-journal database (the copied header says WAL), checks it
    /// (`integrity_check`, a tessera store), and syncs it and its directory. Run by whoever
    /// created the target.
    pub fn finish(mut self) -> Result<BackupSummary> {
        let path = self.path.clone();
        let conn = self.conn.take().ok_or_else(|| closed(&path))?;
        let ctx = at(&path);
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get(0))
            .map_err(&ctx)?;
        if !mode.eq_ignore_ascii_case("delete") {
            return Err(Error::store(format!(
                "{}: journal mode stays {mode}",
                path.display()
            )));
        }
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(&ctx)?;
        if check != "ok" {
            return Err(Error::store(format!(
                "{}: the copy fails its integrity check: {check}",
                path.display()
            )));
        }
        let (schema_version, tokens) = check_tessera(&conn, &path)?;
        conn.close().map_err(|(_, e)| ctx(e))?;
        self.file.sync_all().map_err(|e| io_at(&path, e))?;
        sync_parent(&path)?;
        let bytes = self.file.metadata().map_err(|e| io_at(&path, e))?.len();
        self.done = true;
        Ok(BackupSummary {
            tokens,
            schema_version,
            bytes,
        })
    }
}

impl Drop for BackupTarget {
    fn drop(&mut self) {
        if !self.done {
            drop(self.conn.take());
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_file(super::sqlite::wal_path(&self.path));
            let _ = std::fs::remove_file(crate::os::fsperm::with_suffix(&self.path, "-shm"));
        }
    }
}

fn closed(path: &Path) -> Error {
    Error::store(format!(
        "{}: the backup is already finished",
        path.display()
    ))
}

fn io_at(path: &Path, e: std::io::Error) -> Error {
    Error::io(Kind::Store, path, e)
}

fn sync_parent(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_at(dir, e))
}

/// Checks that `conn` holds a tessera store this build can read: a known schema version and a
/// token table with every column. Returns (schema version, number of tokens).
pub(super) fn check_tessera(conn: &Connection, path: &Path) -> Result<(i64, u64)> {
    let not_ours = |why: String| {
        Error::invalid(format!(
            "{}: not a tessera store or backup ({why})",
            path.display()
        ))
    };
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| not_ours(describe_sqlite(&e)))?;
    let known = super::schema::MIGRATIONS.len() as i64;
    if version == 0 {
        return Err(not_ours("no tessera schema".into()));
    }
    if version > known {
        return Err(Error::invalid(format!(
            "{}: schema version {version} is newer than this tessera ({known})",
            path.display()
        )));
    }
    let tokens: i64 = conn
        .query_row(
            &format!("SELECT count(*) FROM (SELECT {TOKEN_COLS} FROM tokens)"),
            [],
            |r| r.get(0),
        )
        .map_err(|e| not_ours(describe_sqlite(&e)))?;
    Ok((version, tokens as u64))
}

impl SqliteStore {
    /// Copies the whole store into `target` with SQLite's online backup API, in one step (one
    /// read transaction: a consistent snapshot that includes what is only in the WAL). Logins
    /// go on meanwhile; a busy source is retried within the busy timeout.
    pub fn backup_to(&self, target: &mut BackupTarget) -> Result<()> {
        let path = target.path.clone();
        let dest = target.conn.as_mut().ok_or_else(|| closed(&path))?;
        let backup = Backup::new(&self.conn, dest).map_err(at(&path))?;
        let deadline = crate::os::io_time::deadline(Duration::from_secs(30));
        loop {
            match backup.step(-1).map_err(at(&path))? {
                StepResult::Done => return Ok(()),
                StepResult::More => continue,
                StepResult::Busy | StepResult::Locked if crate::os::io_time::now() < deadline => {
                    crate::os::io_time::pause(Duration::from_millis(20))
                }
                StepResult::Busy | StepResult::Locked => {
                    return Err(Error::store(format!(
                        "{}: the store stayed locked; try again",
                        self.path.display()
                    )))
                }
                _ => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::StoreKey;
    use crate::store::{BackupReader, RestoreMode, Store, TokenRecord};
    use crate::tokens::TokenType;

    fn store_with(dir: &Path, key: &StoreKey, serials: &[&str]) -> SqliteStore {
        let s = SqliteStore::create(&dir.join("live.db"), 1000).unwrap();
        for serial in serials {
            s.insert_token(&TokenRecord::new(
                serial,
                "alice",
                "default",
                TokenType::Hotp,
                key.seal(serial, b"12345678901234567890"),
            ))
            .unwrap();
        }
        s
    }

    fn backup(s: &SqliteStore, path: &Path) -> BackupReader {
        let mut t = BackupTarget::create(path).unwrap();
        s.backup_to(&mut t).unwrap();
        let summary = t.finish().unwrap();
        assert_eq!(
            summary.schema_version,
            super::super::schema::MIGRATIONS.len() as i64
        );
        BackupReader::open(path, None).unwrap()
    }

    #[test]
    fn counters_never_go_back_unless_forced_and_a_refusal_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let key = StoreKey::generate();
        let s = store_with(dir.path(), &key, &["A", "B"]);
        s.write(|tx| tx.record_success("B", 3)).unwrap();
        let b = backup(&s, &dir.path().join("b.db"));
        s.write(|tx| tx.record_success("A", 5)).unwrap();
        s.write(|tx| tx.record_failure("A", 9)).unwrap();
        s.set_active("B", false).unwrap();

        let e = s
            .restore_from(&b, RestoreMode::Refuse, &key, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("A (live 5, backup 0)"), "{e}");
        assert!(!s.get_token("B").unwrap().active, "nothing changed");

        let r = s
            .restore_from(&b, RestoreMode::KeepCounters, &key, 2)
            .unwrap();
        assert_eq!((r.counters_kept, r.counters_moved_back), (1, 0));
        let a = s.get_token("A").unwrap();
        assert_eq!(
            (a.counter, a.fail_count),
            (5, 1),
            "live counter and fails kept"
        );
        let bt = s.get_token("B").unwrap();
        assert!(bt.active && bt.counter == 3);

        let r = s.restore_from(&b, RestoreMode::Force, &key, 3).unwrap();
        assert_eq!(r.counters_moved_back, 1);
        assert_eq!(s.get_token("A").unwrap().counter, 0);
        let audit = s.audit_entries(None, 10).unwrap();
        assert_eq!(audit.iter().filter(|e| e.result == "restore").count(), 2);
    }

    #[test]
    fn a_backup_of_another_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = StoreKey::generate();
        let s = store_with(dir.path(), &key, &["A"]);
        let b = backup(&s, &dir.path().join("b.db"));
        let e = s
            .restore_from(&b, RestoreMode::Force, &StoreKey::generate(), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("token A does not open"), "{e}");
    }

    #[test]
    fn an_unfinished_backup_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        drop(BackupTarget::create(&path).unwrap());
        assert!(!path.exists());
        std::fs::write(&path, b"x").unwrap();
        assert!(BackupTarget::create(&path).is_err());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"x",
            "an existing file is kept"
        );
    }
}
