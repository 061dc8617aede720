//! Files that root reads on a user's behalf (`tessera import` of `~/.google_authenticator`,
//! a users file, a PSKC file and its password): whoever can write the file, or the directory
//! holding it, chooses what root reads, so [`read`] reads only a file that its user could have
//! given root anyway, and says whose it is.
//!
//! The file is judged by what is opened, as [`crate::os::fsperm`] judges tessera's own files: the
//! directory holding it is opened without following a link (`O_NOFOLLOW | O_DIRECTORY`), the
//! file is opened in that open directory (`openat`) as the directory's owner (`setfsuid`, when
//! run as root: root's right to read every file is not used), without following a link and
//! without blocking (`O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC`), and the open
//! descriptor must be
//!
//! - a regular file (`fstat`): no FIFO (which would hang the read), device or directory;
//! - with exactly one link: a hard link in a user's directory to another user's file (or to a
//!   root file) has two;
//! - on a real file system (`fstatfs`): not procfs, where `/proc/PID/environ` of a setuid
//!   process is root's file with the user's content, nor sysfs, debugfs and the like
//!   ([`PSEUDO_FS`]);
//! - at most `max` bytes;
//! - owned by the owner of the directory holding it: a user's file in a user's home.
//!
//! Whom a file of root or of a system account belongs to, the caller must be told (`--user`).

use crate::error::{Error, Kind, Result};
use crate::os::{fsperm, sys};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use zeroize::Zeroizing;

/// File systems whose files are no user's files, by `fstatfs` magic number
/// (`linux/magic.h`), and their names for a message. devtmpfs reports tmpfs's number (it is a
/// tmpfs) and is not told apart: its entries are devices, which are no regular files.
pub const PSEUDO_FS: &[(u32, &str)] = &[
    (0x0000_9fa0, "procfs"),
    (0x6265_6572, "sysfs"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0x0027_e0eb, "cgroupfs"),
    (0x6367_7270, "cgroup2fs"),
    (0x0765_5821, "resctrl"),
    (0xcafe_4a11, "bpffs"),
    (0x0000_1cd1, "devpts"),
    (0x6165_676c, "pstore"),
    (0xde5e_81e4, "efivarfs"),
    (0x6265_6570, "configfs"),
    (0x6573_5543, "fusectl"),
    (0xf97c_ff8c, "selinuxfs"),
    (0x4341_5d53, "smackfs"),
    (0x5a3c_69f0, "apparmorfs"),
    (0x4249_4e4d, "binfmt_misc"),
    (0x6e73_6673, "nsfs"),
    (0x1980_0202, "mqueue"),
    (0x0000_9fa2, "usbdevfs"),
    (0x5049_5045, "pipefs"),
    (0x534f_434b, "sockfs"),
    (0x0904_1934, "anon_inodefs"),
];

/// What [`read`] read.
pub struct UserFile {
    /// The content, wiped from memory when dropped.
    pub bytes: Zeroizing<Vec<u8>>,
    /// The file's owner, who also owns the directory holding it.
    pub owner: u32,
}

/// Reads the file at `path` for its user, by the rules of the module comment; every refusal is
/// one line that names the file and says what is wrong with it.
pub fn read(path: &Path, max: u64) -> Result<UserFile> {
    let refuse = |what: String| Error::invalid(format!("{} {what}", path.display()));
    let Some(name) = path.file_name() else {
        return Err(refuse("names no file".into()));
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(parent)
        .map_err(|e| {
            // A link refused by O_NOFOLLOW is ELOOP, or ENOTDIR with O_DIRECTORY: lstat tells
            // a link from a file (for the message only; nothing was opened).
            let link = std::fs::symlink_metadata(parent).is_ok_and(|m| m.file_type().is_symlink());
            match e.raw_os_error() {
                Some(libc::ELOOP | libc::ENOTDIR) if link => refuse(format!(
                    "is in {}, a symbolic link; name the file in the directory itself",
                    parent.display()
                )),
                Some(libc::ENOTDIR) => {
                    refuse(format!("is in {}, not a directory", parent.display()))
                }
                _ => Error::io(Kind::Invalid, parent, e),
            }
        })?;
    let dir_meta = dir
        .metadata()
        .map_err(|e| Error::io(Kind::Invalid, parent, e))?;
    let links = |n: u64| {
        refuse(format!(
            "has {n} links: one of them may be another user's; copy the file instead of linking it"
        ))
    };
    let not_the_dirs = |uid: u32| {
        refuse(format!(
            "belongs to {} but its directory {} to {}",
            who(uid),
            parent.display(),
            who(dir_meta.uid())
        ))
    };
    let file = open_as(&dir, name, dir_meta.uid(), dir_meta.gid()).map_err(|e| {
        match e.raw_os_error() {
            // O_NOFOLLOW on the one component there is: that component is a link.
            Some(libc::ELOOP) => refuse("is a symbolic link; name the file itself".into()),
            // The directory's owner may not read it: say why, from lstat (for the message
            // only; nothing is read).
            Some(libc::EACCES) => match std::fs::symlink_metadata(path) {
                Ok(m) if m.is_file() && m.nlink() != 1 => links(m.nlink()),
                Ok(m) if m.uid() != dir_meta.uid() => not_the_dirs(m.uid()),
                _ => refuse(format!(
                    "can't be read by {}, the owner of its directory {}",
                    who(dir_meta.uid()),
                    parent.display()
                )),
            },
            _ => Error::io(Kind::Invalid, path, e),
        }
    })?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(Kind::Invalid, path, e))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(refuse(format!(
            "is {}, not a regular file",
            fsperm::kind_name(&kind)
        )));
    }
    if meta.nlink() != 1 {
        return Err(links(meta.nlink()));
    }
    let magic = sys::fs_magic(&file).map_err(|e| Error::io(Kind::Invalid, path, e))?;
    if let Some((_, fs)) = PSEUDO_FS.iter().find(|(m, _)| *m == magic) {
        return Err(refuse(format!("is on {fs}, not a real file system")));
    }
    if meta.len() > max {
        return Err(refuse(format!("is larger than {} MiB", max >> 20)));
    }
    if meta.uid() != dir_meta.uid() {
        return Err(not_the_dirs(meta.uid()));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(Kind::Invalid, path, e))?;
    if bytes.len() as u64 > max {
        return Err(refuse(format!("is larger than {} MiB", max >> 20)));
    }
    Ok(UserFile {
        bytes,
        owner: meta.uid(),
    })
}

/// Opens `name` in `dir` for reading, as the directory's owner `uid` (group `gid`) when this
/// process is root and the directory is not root's.
fn open_as(dir: &File, name: &std::ffi::OsStr, uid: u32, gid: u32) -> io::Result<File> {
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
    if sys::euid() == 0 && uid != 0 {
        sys::with_fs_ids(uid, gid, || sys::open_at(dir, name, flags))?
    } else {
        sys::open_at(dir, name, flags)
    }
}

/// `uid 1000 (alice)`, or `uid 1000` for a uid no account has.
pub fn who(uid: u32) -> String {
    match sys::account_of_uid(uid) {
        Some(a) => format!("uid {uid} ({})", a.name),
        None => format!("uid {uid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const MAX: u64 = 1 << 20;

    fn refused(path: &Path) -> String {
        match read(path, MAX) {
            Ok(_) => panic!("{} was read", path.display()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_file_of_the_directory_owner_is_read_and_links_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "text").unwrap();
        let got = read(&f, MAX).unwrap();
        assert_eq!((&got.bytes[..], got.owner), (&b"text"[..], sys::euid()));
        let link = dir.path().join("link");
        symlink(&f, &link).unwrap();
        assert!(refused(&link).ends_with("link is a symbolic link; name the file itself"));
        let via = dir.path().join("via");
        symlink(dir.path(), &via).unwrap();
        let e = refused(&via.join("f"));
        assert!(e.contains("via, a symbolic link"), "{e}");
        let hard = dir.path().join("hard");
        std::fs::hard_link(&f, &hard).unwrap();
        assert!(refused(&hard).contains("hard has 2 links"));
        assert!(refused(&f).contains("f has 2 links"));
    }

    #[test]
    fn no_fifo_no_directory_no_procfs_no_large_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        // A FIFO without a writer: a blocking open would hang here.
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()));
        assert!(refused(&fifo).ends_with("fifo is a FIFO, not a regular file"));
        assert!(refused(dir.path()).contains("is a directory, not a regular file"));
        let e = refused(Path::new("/proc/version"));
        assert_eq!(e, "/proc/version is on procfs, not a real file system");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 2 << 20]).unwrap();
        assert!(refused(&big).ends_with("big is larger than 1 MiB"));
    }
}
