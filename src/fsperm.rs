//! File modes: the store, key and config are private to their owner, and the module refuses
//! files that group or others could change.

use crate::error::{Error, Result};
use std::fs::{self, Metadata, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Refuses a file writable by group or others, or owned by someone other than root or us.
pub fn refuse_writable_by_others(path: &Path, meta: &Metadata) -> Result<()> {
    if meta.mode() & 0o022 != 0 {
        return Err(Error::Permissions(format!(
            "{} is writable by group or others (mode {:o}); chmod go-w it",
            path.display(),
            meta.mode() & 0o7777
        )));
    }
    let euid = crate::pam::ffi::euid();
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(Error::Permissions(format!(
            "{} is owned by uid {}, not root or the running user",
            path.display(),
            meta.uid()
        )));
    }
    Ok(())
}

/// Refuses a key file that anyone but its owner can read or write.
pub fn refuse_readable_by_others(path: &Path, meta: &Metadata) -> Result<()> {
    if meta.mode() & 0o077 != 0 {
        return Err(Error::Permissions(format!(
            "{} is accessible by group or others (mode {:o}); chmod 600 it",
            path.display(),
            meta.mode() & 0o7777
        )));
    }
    refuse_writable_by_others(path, meta)
}

/// Creates `dir` (and parents) with mode 0700 if missing.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| Error::Store(format!("{}: {e}", dir.display())))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::Store(format!("{}: {e}", dir.display())))
}

/// Creates a new file with mode 0600 and `content`; fails if it exists (never overwrites).
pub fn create_private_file(path: &Path, content: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::Store(format!("{}: {e}", path.display())))?;
    f.write_all(content)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::Store(format!("{}: {e}", path.display())))
}
