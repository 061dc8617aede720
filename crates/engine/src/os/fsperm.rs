//! File modes and ownership: the store, key and config are private to their owner, and the
//! engine refuses files, and directories above them, that anyone else could change.
//!
//! A file is judged by what is actually opened: [`open_checked`] opens without following a
//! symbolic link and checks the open descriptor (`fstat`), and its caller reads that very
//! descriptor, so nothing can be swapped in between a check by name and a read by name. The
//! directories from the file up to `/` are checked too ([`check_dirs`]): a file with a perfect
//! mode is worth nothing in a directory where someone else can replace it.

use crate::error::{Error, Kind, Result};
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Who besides its owner may read a file. Nobody else may ever write one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The config and the store: others may read them (the store holds only sealed keys and
    /// PIN hashes), but not write them.
    Readable,
    /// The key file and the SMTP password: owner only.
    Secret,
}

/// Opens `path` for reading after checking the file and its directories, and returns the open
/// file, which the caller must read (never the path again).
///
/// `O_NOFOLLOW` refuses a symbolic link as the last component (ELOOP), and the checks are made
/// on the open descriptor: a regular file, owned by root or the effective uid, not writable by
/// group or others (for [`Access::Secret`] not readable either); then every directory above it
/// ([`check_dirs`]). `O_NONBLOCK` keeps a FIFO planted at the path from hanging the login in
/// `open`; it is then refused as no regular file (reads of a regular file ignore the flag).
/// `on_error` words an error of `open` itself (a missing file, say) for the caller.
pub fn open_checked(
    path: &Path,
    access: Access,
    on_error: impl Fn(io::Error) -> Error,
) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            // ELOOP also comes from too many links further up the path: lstat tells which.
            let is_link = e.raw_os_error() == Some(libc::ELOOP)
                && fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            if is_link {
                symlink_error(path, NAME_THE_FILE)
            } else {
                on_error(e)
            }
        })?;
    let meta = file.metadata().map_err(&on_error)?;
    check_file(path, &meta, access)?;
    check_dirs(path, meta.uid())?;
    Ok(file)
}

/// Checks a file that another library opens by name (the SQLite store): `lstat` instead of
/// opening it, for two reasons. Opening and closing a descriptor of a database file drops
/// every POSIX lock this process holds on it (SQLite's own locks included), and a descriptor
/// we do not read proves nothing more than `lstat` does: what keeps the file from being
/// swapped before SQLite opens it is the directory check, and SQLite opens with `O_NOFOLLOW`.
/// Returns the file's metadata.
pub fn check_in_place(
    path: &Path,
    access: Access,
    on_error: impl Fn(io::Error) -> Error,
) -> Result<Metadata> {
    let meta = fs::symlink_metadata(path).map_err(on_error)?;
    check_file(path, &meta, access)?;
    check_dirs(path, meta.uid())?;
    Ok(meta)
}

/// Checks a file next to one that [`check_in_place`] checked (the store's `-wal` and `-shm`,
/// which SQLite opens by name and replays or maps): `None` when there is none yet (SQLite then
/// creates it with the store's owner and mode), the same rules as for the store when there is.
/// The directories are the store's, already checked. One `lstat`.
pub fn check_beside(path: &Path) -> Result<Option<Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(symlink_error(
            path,
            "put the file it points to in its place, or remove the link if the store is closed",
        )),
        Ok(meta) => check_file(path, &meta, Access::Readable).map(|()| Some(meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(Kind::Permissions, path, e)),
    }
}

/// Checks the metadata of a file (from `fstat` of the open file, or `lstat`): a regular file
/// (not a link, a directory, a FIFO or a device), owned by root or the effective uid, not
/// writable by group or others, and for [`Access::Secret`] not readable by them either.
pub fn check_file(path: &Path, meta: &Metadata, access: Access) -> Result<()> {
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Err(symlink_error(path, NAME_THE_FILE));
    }
    if !kind.is_file() {
        return Err(Error::permissions(format!(
            "{} is {}, not a regular file; put the file itself there",
            path.display(),
            kind_name(&kind)
        )));
    }
    match access {
        Access::Secret => refuse_readable_by_others(path, meta),
        Access::Readable => refuse_writable_by_others(path, meta),
    }
}

/// What a file that is not a regular file is, for a message: "a directory", "a FIFO", ...
pub fn kind_name(kind: &fs::FileType) -> &'static str {
    if kind.is_file() {
        "a regular file"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a device"
    }
}

/// Refuses a file writable by group or others, or owned by someone other than root or us
/// (the effective uid). Judges `meta` only: see [`check_file`] for the type.
pub fn refuse_writable_by_others(path: &Path, meta: &Metadata) -> Result<()> {
    if meta.mode() & 0o022 != 0 {
        return Err(Error::permissions(format!(
            "{} is writable by group or others (mode {:o}); chmod go-w it",
            path.display(),
            meta.mode() & 0o7777
        )));
    }
    let euid = crate::os::sys::euid();
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(Error::permissions(format!(
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
        return Err(Error::permissions(format!(
            "{} is accessible by group or others (mode {:o}); chmod 600 it",
            path.display(),
            meta.mode() & 0o7777
        )));
    }
    refuse_writable_by_others(path, meta)
}

/// Checks every directory above `path` up to `/`, as sshd's StrictModes does for
/// `authorized_keys`: each must be owned by root or by `owner` (the file's owner), and must not
/// be writable by group or others, since whoever can write a directory can rename the file
/// away and put their own in its place, whatever the file's own mode.
///
/// One exception to sshd's rule: a directory owned by root with the sticky bit (`/tmp`, mode
/// 1777) may be writable by others. The sticky bit lets only an entry's owner, the directory's
/// owner (root) and root rename or remove the entry, so nobody else can replace ours; what they
/// can do is create a name that does not exist yet, and such a file is theirs and refused by
/// the owner check of [`check_file`]. (Test fixtures and `tempfile` directories live in /tmp.)
/// A sticky directory owned by anyone else is refused: its owner could replace our entries.
///
/// The directories are taken from the path as written and, when it differs (a symbolic link or
/// `..` on the way, a relative path), from its resolved form too: a link is only as safe as
/// the directory that holds it (the written path) and the directories it leads to (the
/// resolved one). Costs one `realpath` and one `stat` per directory: no file is read.
pub fn check_dirs(path: &Path, owner: u32) -> Result<()> {
    let dirs = dirs_above(path).map_err(|e| {
        Error::permissions(format!(
            "directory {} (above {}): {e}",
            parent_dir(path).display(),
            path.display()
        ))
    })?;
    dirs.iter().try_for_each(|dir| check_dir(dir, path, owner))
}

/// The directories [`check_dirs`] checks, from `path`'s parent up to `/`: as written and, when
/// that differs, as resolved (one `realpath`). `crate::os::watch` watches the same ones.
pub fn dirs_above(path: &Path) -> io::Result<Vec<PathBuf>> {
    let parent = parent_dir(path);
    let real = fs::canonicalize(parent)?;
    let mut dirs = Vec::new();
    if real.as_path() != parent {
        dirs.extend(
            parent
                .ancestors()
                .filter(|d| !d.as_os_str().is_empty())
                .map(Path::to_path_buf),
        );
    }
    dirs.extend(real.ancestors().map(Path::to_path_buf));
    Ok(dirs)
}

/// The directory that holds `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// One directory of [`check_dirs`] (`stat`, so a link is judged by the directory it leads to).
fn check_dir(dir: &Path, file: &Path, owner: u32) -> Result<()> {
    let meta = fs::metadata(dir).map_err(|e| {
        Error::permissions(format!(
            "directory {} (above {}): {e}",
            dir.display(),
            file.display()
        ))
    })?;
    if !meta.is_dir() {
        return Err(Error::permissions(format!(
            "{} (above {}) is not a directory",
            dir.display(),
            file.display()
        )));
    }
    if meta.uid() != 0 && meta.uid() != owner {
        return Err(Error::permissions(format!(
            "directory {} (above {}) is owned by uid {}, not root or the file's owner (uid {owner}); chown root {}",
            dir.display(),
            file.display(),
            meta.uid(),
            dir.display()
        )));
    }
    let sticky_root = meta.uid() == 0 && meta.mode() & 0o1000 != 0;
    if meta.mode() & 0o022 != 0 && !sticky_root {
        return Err(Error::permissions(format!(
            "directory {} (above {}) is writable by group or others (mode {:o}); chmod go-w {}",
            dir.display(),
            file.display(),
            meta.mode() & 0o7777,
            dir.display()
        )));
    }
    Ok(())
}

const NAME_THE_FILE: &str = "name the file itself, not a link";

/// A link is refused whatever it points to: whoever can change the link (or anything on the
/// way to its target) would choose the file.
fn symlink_error(path: &Path, fix: &str) -> Error {
    let target = fs::read_link(path)
        .map(|t| format!(" to {}", t.display()))
        .unwrap_or_default();
    Error::permissions(format!(
        "{} is a symbolic link{target}; {fix}",
        path.display()
    ))
}

/// `path` with `suffix` appended to its last component (`tessera.db` -> `tessera.db-wal`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Creates `dir` (and parents) with mode 0700 if missing.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(Kind::Store, dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io(Kind::Store, dir, e))
}

/// Creates a new file with mode 0600 and `content`; fails if it exists (never overwrites).
pub fn create_private_file(path: &Path, content: &[u8]) -> Result<()> {
    create_private_file_for(path, content, None)
}

/// [`create_private_file`], and with an `owner` (uid, gid) the file is given to that user
/// before anything is written into it: root creating a file for the user that will read it,
/// in a directory that user may not write (the key in `/etc/tessera` for `_tessera`). A file
/// that could not be given away is removed again.
pub fn create_private_file_for(
    path: &Path,
    content: &[u8],
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let err = |e: io::Error| Error::io(Kind::Store, path, e);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    if let Some((uid, gid)) = owner {
        if let Err(e) = std::os::unix::fs::fchown(&f, Some(uid), Some(gid)) {
            drop(f);
            let _ = fs::remove_file(path);
            return Err(err(e));
        }
    }
    f.write_all(content).and_then(|_| f.sync_all()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn refuse(e: io::Error) -> Error {
        Error::config(e.to_string())
    }

    #[test]
    fn open_checked_reads_the_checked_file_and_refuses_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        create_private_file(&f, b"text").unwrap();
        let mut text = String::new();
        io::Read::read_to_string(
            &mut open_checked(&f, Access::Secret, refuse).unwrap(),
            &mut text,
        )
        .unwrap();
        assert_eq!(text, "text");
        let link = dir.path().join("link");
        symlink(&f, &link).unwrap();
        let e = open_checked(&link, Access::Readable, refuse).unwrap_err();
        assert!(
            e.kind() == Kind::Permissions && e.message().contains("link is a symbolic link to"),
            "{e}"
        );
    }

    #[test]
    fn modes_by_access() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        create_private_file(&f, b"").unwrap();
        chmod(&f, 0o644);
        assert!(open_checked(&f, Access::Readable, refuse).is_ok());
        assert!(open_checked(&f, Access::Secret, refuse).is_err());
        chmod(&f, 0o620);
        assert!(open_checked(&f, Access::Readable, refuse).is_err());
    }

    #[test]
    fn a_directory_is_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = check_in_place(dir.path(), Access::Readable, refuse).unwrap_err();
        assert!(
            e.to_string().contains("is a directory, not a regular file"),
            "{e}"
        );
    }

    #[test]
    fn directories_writable_by_others_are_refused_unless_root_owned_and_sticky() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let f = sub.join("f");
        create_private_file(&f, b"").unwrap();
        let owner = crate::os::sys::euid();
        chmod(&sub, 0o755);
        assert!(check_dirs(&f, owner).is_ok());
        for mode in [0o775, 0o757, 0o777] {
            chmod(&sub, mode);
            let e = check_dirs(&f, owner).unwrap_err().to_string();
            assert!(e.contains("writable by group or others"), "{mode:o}: {e}");
        }
        // Sticky: accepted only when root owns it (run as root, the test directory is root's).
        chmod(&sub, 0o1777);
        assert_eq!(check_dirs(&f, owner).is_ok(), owner == 0);
        // /tmp itself, where tempfile puts its directories: root-owned and sticky.
        let tmp = fs::metadata(std::env::temp_dir()).unwrap();
        if tmp.uid() == 0 && tmp.mode() & 0o1000 != 0 {
            chmod(&sub, 0o700);
            assert!(check_dirs(&f, owner).is_ok());
        }
    }

    #[test]
    fn a_directory_of_another_owner_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        create_private_file(&f, b"").unwrap();
        // The file's owner is `owner`: a directory of neither root nor `owner` is refused.
        let me = crate::os::sys::euid();
        if me != 0 {
            let e = check_dirs(&f, me + 1).unwrap_err().to_string();
            assert!(e.contains("not root or the file's owner"), "{e}");
        } else {
            std::os::unix::fs::chown(dir.path(), Some(4242), None).unwrap();
            let e = check_dirs(&f, 0).unwrap_err().to_string();
            assert!(e.contains("owned by uid 4242"), "{e}");
        }
    }

    #[test]
    fn a_symlinked_directory_is_checked_where_it_leads() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        let f = real.join("f");
        create_private_file(&f, b"").unwrap();
        let via = dir.path().join("via");
        symlink(&real, &via).unwrap();
        let owner = crate::os::sys::euid();
        chmod(&real, 0o700);
        assert!(check_dirs(&via.join("f"), owner).is_ok());
        chmod(&real, 0o777);
        let e = check_dirs(&via.join("f"), owner).unwrap_err().to_string();
        assert!(e.contains("writable by group or others"), "{e}");
    }

    #[test]
    fn beside_files_absent_ok_link_refused() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("db-wal");
        assert!(check_beside(&wal).unwrap().is_none());
        create_private_file(&wal, b"").unwrap();
        assert!(check_beside(&wal).unwrap().is_some());
        chmod(&wal, 0o606);
        assert!(check_beside(&wal).is_err());
        fs::remove_file(&wal).unwrap();
        symlink("/nonexistent", &wal).unwrap();
        let e = check_beside(&wal).unwrap_err().to_string();
        assert!(e.contains("db-wal is a symbolic link"), "{e}");
    }
}
