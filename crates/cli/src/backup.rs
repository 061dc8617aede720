//! `tessera backup FILE` and `tessera restore FILE`.
//!
//! Who owns what, run by root for a store of another user (the package's `_tessera`): the
//! backup file is root's. Root creates it (`O_EXCL`, 0600) and opens it as an SQLite database
//! before anything else, then reads the store as its owner ([`sys::as_store_owner`]) and copies
//! it through that open connection, then checks the copy as root again. So a backup can go into
//! a directory only root may write (`/root`, `/var/backups`), and the daemon's user can neither
//! read nor change the backups. A restore likewise opens the backup as root (read only), then
//! becomes the store's owner for good and writes into the live store through SQLite, as every
//! other command does: the store, its `-wal` and `-shm` stay the daemon's.

use super::{CliResult, Failure};
use std::path::Path;
use tessera_engine::auth::{self, Clock, SystemClock};
use tessera_engine::config::Config;
use tessera_engine::error::Error;
use tessera_engine::os::sys;
use tessera_engine::store::{BackupReader, BackupTarget, RestoreMode};

pub fn backup(cfg: &Config, file: &Path) -> CliResult<()> {
    let owner = sys::store_owner(&cfg.store.path);
    // As whoever runs the command (root): the file is theirs, in a directory of theirs.
    let mut target = BackupTarget::create(file)?;
    let copy = |target: &mut BackupTarget| -> Result<(), Error> {
        auth::open_store(cfg)?.backup_to(target)
    };
    match owner {
        Some(o) => sys::as_store_owner(&cfg.store.path, o, || copy(&mut target))
            .map_err(|e| Error::permissions(e.to_string()))??,
        None => copy(&mut target)?,
    }
    let s = target.finish()?;
    outln!(
        "backup {}: {} token(s), schema version {}, {} bytes, integrity ok (mode 0600)",
        file.display(),
        s.tokens,
        s.schema_version,
        s.bytes
    )?;
    outln!(
        "keep it with a copy of the key file {}, stored apart: the backup is useless without that key, and the two together give every token's secret",
        cfg.store.key_file.display()
    )
}

pub fn restore(cfg: &Config, file: &Path, mode: RestoreMode) -> CliResult<()> {
    // Opened (read only) as whoever runs the command: root's backup in root's directory.
    let owner = sys::store_owner(&cfg.store.path).map(|(uid, _)| uid);
    let reader = BackupReader::open(file, owner)?;
    super::become_store_owner(cfg)?;
    let store = auth::open_store(cfg)?;
    let key = auth::load_key(cfg)?;
    let report = store
        .restore_from(&reader, mode, &key, SystemClock.now())
        .map_err(Failure::Error)?;
    outln!(
        "restored {} into {}",
        file.display(),
        cfg.store.path.display()
    )?;
    for c in &report.changes {
        if c.details.is_empty() {
            outln!("  {}: {}", super::output::clean(&c.serial), c.what)?;
        } else {
            outln!(
                "  {}: {}: {}",
                super::output::clean(&c.serial),
                c.what,
                c.details.join("; ")
            )?;
        }
    }
    outln!("{}", report.summary())?;
    if report.counters_moved_back > 0 {
        outln!(
            "warning: --force moved {} counter(s) back: OTPs used since the backup are accepted again for those tokens",
            report.counters_moved_back
        )?;
    }
    Ok(())
}
