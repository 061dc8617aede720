//! `tessera restore`: a backup opened and checked ([`BackupReader`]), and its tokens written
//! back into the live store ([`SqliteStore::restore_from`]) with what changed
//! ([`RestoreReport`]). Apart from `backup.rs`, which makes the copy: the two share only the
//! check that a file is a tessera store (`check_tessera`) and two small helpers (`at`,
//! `identity`).
//!
//! A restore reads a backup (opened `immutable`, read only: again no file by name later) and
//! writes its tokens into the live store in one write transaction, through SQLite, so a running
//! `tesserad` sees the restored tokens at its next login. It refuses, unless told otherwise, to
//! move any counter (HOTP/OCRA counter, TOTP's next step) below the live one.

use super::backup::{at, check_tessera, identity};
use super::rows::{counter_sql, token_from_row, TOKEN_COLS};
use super::{cap, SqliteStore, TokenRecord};
use crate::crypto::StoreKey;
use crate::error::{describe_sqlite, Error, Kind, Result};
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A backup opened for [`SqliteStore::restore_from`]: checked like the store (a regular file,
/// no link, not writable by group or others, owned by root or the running user), opened read
/// only and `immutable` (no lock, no file beside it opened later), and found to be a tessera
/// store.
pub struct BackupReader {
    conn: Connection,
    path: PathBuf,
    identity: (u64, u64),
    pub schema_version: i64,
    pub tokens: u64,
}

/// `path` as the path of an SQLite `file:` URI (RFC 3986: all but unreserved and `/` escaped).
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut s = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

impl BackupReader {
    /// Opens and checks the backup at `path`. `also_owner`: a uid whose files are accepted
    /// besides root's and the running user's (root restoring a backup that the store's owner
    /// made, `sudo -u _tessera tessera backup`).
    pub fn open(path: &Path, also_owner: Option<u32>) -> Result<BackupReader> {
        let not_found = |e: std::io::Error| Error::io(Kind::Invalid, path, e);
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) if also_owner == Some(m.uid()) && m.file_type().is_file() => {
                if m.mode() & 0o022 != 0 {
                    return Err(Error::permissions(format!(
                        "{} is writable by group or others (mode {:o}); chmod go-w it",
                        path.display(),
                        m.mode() & 0o7777
                    )));
                }
                crate::os::fsperm::check_dirs(path, m.uid())?;
                m
            }
            _ => crate::os::fsperm::check_in_place(
                path,
                crate::os::fsperm::Access::Readable,
                not_found,
            )?,
        };
        let wal = super::sqlite::wal_path(path);
        if std::fs::symlink_metadata(&wal).is_ok_and(|m| m.len() > 0) {
            return Err(Error::invalid(format!(
                "{}: a WAL ({}) lies beside it: that is a live store or a copy of one, which may \
                 miss what the WAL holds; restore a file made by `tessera backup`",
                path.display(),
                wal.display()
            )));
        }
        let not_a_backup = |e: rusqlite::Error| {
            Error::invalid(format!(
                "{}: not a tessera backup ({})",
                path.display(),
                describe_sqlite(&e)
            ))
        };
        let conn = Connection::open_with_flags(
            format!("file:{}?immutable=1", uri_path(path)),
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(not_a_backup)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(not_a_backup)?;
        if check != "ok" {
            return Err(Error::invalid(format!(
                "{}: damaged backup: {}",
                path.display(),
                cap(&check)
            )));
        }
        let (schema_version, tokens) = check_tessera(&conn, path)?;
        Ok(BackupReader {
            conn,
            // As the audit row names it: absolute.
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            identity: identity(&meta),
            schema_version,
            tokens,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {TOKEN_COLS} FROM tokens ORDER BY serial"))
            .map_err(at(&self.path))?;
        let rows = st.query_map([], token_from_row).map_err(at(&self.path))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(at(&self.path))
    }
}

/// What to do with a token whose counter in the backup is below the live one (an OTP used
/// since the backup was made would be accepted again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreMode {
    /// Refuse the whole restore, naming the tokens; nothing changes. The default.
    Refuse,
    /// Restore everything else, and keep the live counter of those tokens.
    KeepCounters,
    /// Move the counters back (`--force`): used OTPs of those tokens become valid again.
    Force,
}

/// One token the restore changed.
#[derive(Debug, Clone)]
pub struct TokenChange {
    pub serial: String,
    /// `added`, `removed` or `changed`.
    pub what: &'static str,
    /// For a changed token, each change in words (never a PIN, a hash or a key).
    pub details: Vec<String>,
}

/// What [`SqliteStore::restore_from`] did.
#[derive(Debug, Clone, Default)]
pub struct RestoreReport {
    pub changes: Vec<TokenChange>,
    pub unchanged: usize,
    /// Tokens whose live counter was kept (it was above the backup's).
    pub counters_kept: usize,
    /// Tokens whose counter was moved back (`--force`).
    pub counters_moved_back: usize,
    /// Open challenges closed (each could belong to a token the restore changed).
    pub challenges_closed: usize,
}

impl RestoreReport {
    pub fn count(&self, what: &str) -> usize {
        self.changes.iter().filter(|c| c.what == what).count()
    }

    /// One line: the counts.
    pub fn summary(&self) -> String {
        format!(
            "{} added, {} removed, {} changed, {} unchanged; counters kept: {}, moved back: {}; open challenges closed: {}",
            self.count("added"),
            self.count("removed"),
            self.count("changed"),
            self.unchanged,
            self.counters_kept,
            self.counters_moved_back,
            self.challenges_closed
        )
    }
}

/// The differences between a live token and its backup, in words (no secret: a PIN or key
/// is only said to differ).
fn differences(live: &TokenRecord, b: &TokenRecord) -> Vec<String> {
    let mut d = Vec::new();
    if live.active != b.active {
        d.push(
            if b.active {
                "enabled (live: disabled)"
            } else {
                "disabled (live: enabled)"
            }
            .into(),
        );
    }
    match (&live.pin_hash, &b.pin_hash) {
        (None, Some(_)) => d.push("PIN set".into()),
        (Some(_), None) => d.push("PIN removed".into()),
        (Some(l), Some(n)) if l != n => d.push("PIN changed".into()),
        _ => {}
    }
    if live.sealed_key != b.sealed_key {
        d.push("key changed".into());
    }
    if live.user != b.user || live.realm != b.realm {
        d.push(format!(
            "owner {}@{} (live: {}@{})",
            b.user, b.realm, live.user, live.realm
        ));
    }
    if live.kind != b.kind
        || live.digits != b.digits
        || live.algorithm != b.algorithm
        || live.period != b.period
        || live.info != b.info
        || live.description != b.description
    {
        d.push("settings changed".into());
    }
    if live.drift != b.drift {
        d.push(format!("drift {} (live: {})", b.drift, live.drift));
    }
    d
}

impl SqliteStore {
    /// Replaces the tokens of the live store by those of `backup`, in one write transaction:
    /// tokens only in the backup are added, tokens only in the live store removed (with their
    /// challenges), the others take the backup's row, except for their fail counter (the live
    /// one stays: a restore does not unlock a token) and, by `mode`, their counter. Every open
    /// challenge is closed. The audit table is kept, with one row for the restore.
    ///
    /// Every token of the backup must open with `key` (a backup of another key's store would
    /// leave tokens nobody can use). With [`RestoreMode::Refuse`], a counter below the live
    /// one refuses the whole restore and nothing changes.
    pub fn restore_from(
        &self,
        backup: &BackupReader,
        mode: RestoreMode,
        key: &StoreKey,
        now: u64,
    ) -> Result<RestoreReport> {
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if identity(&m) == backup.identity {
                return Err(Error::invalid(format!(
                    "{} is the live store itself",
                    backup.path.display()
                )));
            }
        }
        let wanted = backup.tokens()?;
        for t in &wanted {
            counter_sql(&t.serial, t.counter)?;
            if key.open(&t.serial, &t.sealed_key).is_err() {
                return Err(Error::key(format!(
                    "{}: token {} does not open with the store's key: a backup of a store with \
                     another key file (restore that key first); nothing changed",
                    backup.path.display(),
                    t.serial
                )));
            }
        }
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let mut live: BTreeMap<String, TokenRecord> = BTreeMap::new();
        {
            let mut st = tx.prepare(&format!("SELECT {TOKEN_COLS} FROM tokens"))?;
            for t in st.query_map([], token_from_row)? {
                let t = t?;
                live.insert(t.serial.clone(), t);
            }
        }
        let mut report = RestoreReport::default();
        let mut backwards = Vec::new();
        let mut rows = Vec::new();
        for b in wanted {
            let mut row = b.clone();
            match live.remove(&b.serial) {
                None => report.changes.push(TokenChange {
                    serial: b.serial.clone(),
                    what: "added",
                    details: Vec::new(),
                }),
                Some(l) => {
                    let mut d = differences(&l, &b);
                    if b.counter < l.counter {
                        match mode {
                            RestoreMode::Refuse => backwards.push(format!(
                                "{} (live {}, backup {})",
                                b.serial, l.counter, b.counter
                            )),
                            RestoreMode::KeepCounters => {
                                row.counter = l.counter;
                                report.counters_kept += 1;
                                d.push(format!(
                                    "counter kept at {} (backup: {})",
                                    l.counter, b.counter
                                ));
                            }
                            RestoreMode::Force => {
                                report.counters_moved_back += 1;
                                d.push(format!(
                                    "counter moved BACK from {} to {} (--force: OTPs used since the backup are valid again)",
                                    l.counter, b.counter
                                ));
                            }
                        }
                    } else if b.counter > l.counter {
                        d.push(format!("counter {} (live: {})", b.counter, l.counter));
                    }
                    row.fail_count = l.fail_count;
                    row.last_fail = l.last_fail;
                    if d.is_empty() {
                        report.unchanged += 1;
                    } else {
                        report.changes.push(TokenChange {
                            serial: b.serial.clone(),
                            what: "changed",
                            details: d,
                        });
                    }
                }
            }
            rows.push(row);
        }
        if !backwards.is_empty() {
            // Dropping `tx` rolls back; nothing was written yet anyway.
            return Err(Error::invalid(format!(
                "restore refused: it would move counters back (OTPs used since the backup would \
                 be accepted again) for {}; nothing changed (--keep-counters restores with the \
                 live counters, --force moves them back)",
                backwards.join(", ")
            )));
        }
        for serial in live.keys() {
            tx.execute("DELETE FROM tokens WHERE serial = ?1", params![serial])?;
            tx.execute("DELETE FROM challenges WHERE serial = ?1", params![serial])?;
            report.changes.push(TokenChange {
                serial: serial.clone(),
                what: "removed",
                details: Vec::new(),
            });
        }
        {
            let mut st = tx.prepare(&format!(
                "INSERT OR REPLACE INTO tokens ({TOKEN_COLS}) \
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)"
            ))?;
            for t in &rows {
                st.execute(params![
                    t.serial,
                    t.user,
                    t.realm,
                    t.kind.name(),
                    t.active,
                    t.pin_hash,
                    t.sealed_key,
                    t.digits,
                    t.algorithm.name(),
                    t.period as i64,
                    t.drift,
                    counter_sql(&t.serial, t.counter)?,
                    t.fail_count,
                    t.last_fail.map(|v| v as i64),
                    t.info.to_json(),
                    t.description,
                    t.created as i64
                ])?;
            }
        }
        report.challenges_closed = tx.execute(
            "UPDATE challenges SET state = 'expired', data = NULL WHERE state = 'open'",
            [],
        )?;
        report.changes.sort_by(|a, b| a.serial.cmp(&b.serial));
        let forced = if report.counters_moved_back > 0 {
            " (--force)"
        } else {
            ""
        };
        tx.execute(
            "INSERT INTO audit (time, service, rhost, user, realm, serial, type, result, reason) \
             VALUES (?1, 'tessera', '', '', '', '', '', ?3, ?2)",
            params![
                now as i64,
                cap(&format!(
                    "restored from {}{forced}: {}",
                    backup.path.display(),
                    report.summary()
                )),
                super::AuditResult::Restore.as_str(),
            ],
        )?;
        tx.commit()?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_paths_escape_what_a_uri_would_read() {
        assert_eq!(uri_path(Path::new("/a/b-c_d.db")), "/a/b-c_d.db");
        assert_eq!(uri_path(Path::new("/a b/x?y#z%")), "/a%20b/x%3Fy%23z%25");
    }
}
