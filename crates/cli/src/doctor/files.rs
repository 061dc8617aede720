//! The files a login opens: the config, the key, the store with its `-wal` and `-shm`, and the
//! SMTP password file, each checked as the module checks it ([`tessera_engine::os::fsperm`]: no link,
//! a regular file, owner and mode, the directories above it); whether the key loads and the
//! store opens; and whether `tessera init` was done. Apart because these are about files on
//! disk, before anything in them is read.

use super::report::Report;
use crate::CliResult;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tessera_engine::auth;
use tessera_engine::config::Config;
use tessera_engine::crypto::StoreKey;
use tessera_engine::os::fsperm::{self, Access};
use tessera_engine::store::SqliteStore;

/// The key file's lines ([`check_file`]), then whether it loads; `None` if either failed (a key
/// that failed its file checks fails to load for the same reason: said once).
pub(super) fn load_key(r: &mut Report, cfg: &Config) -> CliResult<Option<StoreKey>> {
    if !check_file(r, "key", &cfg.store.key_file, Access::Secret)? {
        return Ok(None);
    }
    match auth::load_key(cfg) {
        Ok(k) => {
            r.ok(&format!(
                "key {}: 64 hex digits",
                cfg.store.key_file.display()
            ))?;
            Ok(Some(k))
        }
        Err(e) => {
            r.fail(&e.to_string())?;
            Ok(None)
        }
    }
}

/// The store's lines, with its `-wal` and `-shm` ([`check_file`], [`check_beside`]), then
/// whether it opens with its schema up to date; `None` if any failed.
pub(super) fn open_store(r: &mut Report, cfg: &Config) -> CliResult<Option<SqliteStore>> {
    let store_files_ok = check_file(r, "store", &cfg.store.path, Access::Readable)?;
    let wal_ok = check_beside(r, &cfg.store.path, "-wal")?;
    let shm_ok = check_beside(r, &cfg.store.path, "-shm")?;
    if !(store_files_ok && wal_ok && shm_ok) {
        return Ok(None);
    }
    match auth::open_store(cfg) {
        Ok(s) => {
            r.ok(&format!(
                "store {}: opens, schema up to date",
                cfg.store.path.display()
            ))?;
            Ok(Some(s))
        }
        Err(e) => {
            r.fail(&e.to_string())?;
            Ok(None)
        }
    }
}

/// Two lines for a file the module opens: the file itself, and the directories above it. The
/// file is looked at with `lstat`, which sees what the module's `O_NOFOLLOW` open and `fstat`
/// see, without opening it. True if both are ok.
pub(super) fn check_file(
    r: &mut Report,
    what: &str,
    path: &Path,
    access: Access,
) -> CliResult<bool> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => {
            let hint = match what {
                "key" | "store" if e.kind() == std::io::ErrorKind::NotFound => {
                    " (run `tessera init`)"
                }
                _ => "",
            };
            r.fail(&format!("{what} {}: {e}{hint}", path.display()))?;
            return Ok(false);
        }
    };
    let readers = match access {
        Access::Readable => "not writable by group or others",
        Access::Secret => "private to its owner",
    };
    let file_ok = match fsperm::check_file(path, &meta, access) {
        Ok(()) => {
            r.ok(&format!(
                "{what} {}: regular file, owner uid {}, mode {:o}, {readers}",
                path.display(),
                meta.uid(),
                meta.mode() & 0o7777
            ))?;
            true
        }
        Err(e) => {
            r.fail(&e.to_string())?;
            false
        }
    };
    let dirs_ok = match fsperm::check_dirs(path, meta.uid()) {
        Ok(()) => {
            r.ok(&format!(
                "directories above {what} {}: owned by root or uid {}, not writable by others",
                path.display(),
                meta.uid()
            ))?;
            true
        }
        Err(e) => {
            r.fail(&e.to_string())?;
            false
        }
    };
    Ok(file_ok && dirs_ok)
}

/// Whether this process (tesserad's user when doctor runs as root, see above) can open a file
/// that passed [`check_file`]: a root-owned 0600 file passes the mode check, but the daemon
/// can't read it. One line only when it can't.
pub(super) fn check_readable(r: &mut Report, what: &str, path: &Path) -> CliResult<()> {
    match std::fs::File::open(path) {
        Ok(_) => Ok(()),
        Err(e) => r.fail(&format!(
            "{what} {}: {e}: tesserad runs as uid {} and must read it (chown it to that user, \
             mode 0600)",
            path.display(),
            tessera_engine::os::sys::euid()
        )),
    }
}

/// One line for the store's `-wal` or `-shm`: SQLite replays a WAL into the store and maps the
/// `-shm`, so either must be as safe as the store. True if ok (also when there is none yet).
fn check_beside(r: &mut Report, store: &Path, suffix: &str) -> CliResult<bool> {
    let path = fsperm::with_suffix(store, suffix);
    match fsperm::check_beside(&path) {
        Ok(Some(meta)) => r.ok(&format!(
            "store {suffix} {}: regular file, owner uid {}, mode {:o}, not writable by group or others",
            path.display(),
            meta.uid(),
            meta.mode() & 0o7777
        ))?,
        Ok(None) => r.ok(&format!(
            "store {suffix} {}: none yet (SQLite creates it with the store's owner and mode)",
            path.display()
        ))?,
        Err(e) => {
            r.fail(&e.to_string())?;
            return Ok(false);
        }
    }
    Ok(true)
}
/// Whether `tessera init` was done: the key and the store exist (the lines above check them).
pub(super) enum Init {
    Done,
    /// What is missing: the key file, the store, or both.
    Missing(Vec<PathBuf>),
    /// A remote-only host (`fallback = "fail"`, no store): nothing to initialise.
    NotNeeded,
}

impl Init {
    pub(super) fn of(cfg: &Config) -> Init {
        let missing: Vec<PathBuf> = [&cfg.store.key_file, &cfg.store.path]
            .into_iter()
            .filter(|p| {
                matches!(std::fs::symlink_metadata(p),
                         Err(e) if e.kind() == std::io::ErrorKind::NotFound)
            })
            .cloned()
            .collect();
        if missing.is_empty() {
            Init::Done
        } else {
            Init::Missing(missing)
        }
    }
}
