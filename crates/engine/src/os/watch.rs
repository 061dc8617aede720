//! The checks a long-lived host makes before every login (the store and its `-wal` and `-shm`,
//! the key file, the directories above them: see `fsperm`), made again only when something
//! they looked at changed. inotify tells: each file and each directory up to `/` is watched for
//! a change of mode or owner, a rename, a removal or (in a directory) a new entry, and a login
//! first reads the inotify queue (one `read`, EAGAIN when nothing happened). An event of a
//! watched file, of a directory itself, or of the one entry of a directory that leads to a
//! watched file (not the other files that come and go in `/tmp` or `/run`), or any failure of
//! inotify, means the whole check runs again, as it did for every login before: a store or key
//! made writable by others is refused at the next login either way.
//!
//! A check that fails is never kept: the next login checks again.

use crate::error::Result;
use crate::os::sys::{Inotify, InotifyEvent, WatchDescriptor};
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// A file's own events: its mode or owner changed, it was removed or renamed away.
const FILE_EVENTS: u32 = libc::IN_ATTRIB | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF;
/// A file whose content is read once and kept (the key): also a write to it.
const CONTENT_EVENTS: u32 = FILE_EVENTS | libc::IN_MODIFY | libc::IN_CLOSE_WRITE;
/// A directory's events: its own mode or owner (or an entry's) changed, an entry came, went
/// or was renamed, the directory itself was removed or renamed.
const DIR_EVENTS: u32 = libc::IN_ATTRIB
    | libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF;

/// What a check looks at: files (the ones that may not exist yet are watched through their
/// directory), and whether their content is what is kept.
pub struct Watched {
    pub files: Vec<PathBuf>,
    pub content: bool,
}

impl Watched {
    /// The store and the files SQLite keeps beside it.
    pub fn store(path: &Path) -> Watched {
        Watched {
            files: vec![
                path.to_path_buf(),
                crate::os::fsperm::with_suffix(path, "-wal"),
                crate::os::fsperm::with_suffix(path, "-shm"),
            ],
            content: false,
        }
    }

    /// A file read once and kept (the key).
    pub fn content(path: &Path) -> Watched {
        Watched {
            files: vec![path.to_path_buf()],
            content: true,
        }
    }

    /// Watches every file and every directory above them on a new inotify descriptor; `None`
    /// if any watch can't be set (then nothing is kept).
    fn arm(&self) -> Option<Armed> {
        let fd = crate::os::sys::inotify_new().ok()?;
        let file_mask = if self.content {
            CONTENT_EVENTS
        } else {
            FILE_EVENTS
        };
        // Each directory and the names in it that lead to a watched file (`None`: any name).
        let mut dirs: Vec<(PathBuf, Option<Vec<OsString>>)> = Vec::new();
        for f in &self.files {
            match crate::os::sys::inotify_watch(&fd, f, file_mask) {
                Ok(_) => {}
                // Not there yet (SQLite's -wal and -shm): its directory's events tell when
                // it comes.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => return None,
            }
            // The directories the file checks look at.
            for d in crate::os::fsperm::dirs_above(f).ok()? {
                // The entry of `d` on the way to `f`; a directory reached through a link
                // (`f` is not below it as written) counts every entry.
                let next = f
                    .strip_prefix(&d)
                    .ok()
                    .and_then(|rest| rest.components().next())
                    .map(|c| c.as_os_str().to_os_string());
                match dirs.iter_mut().find(|(p, _)| *p == d) {
                    Some((_, names)) => match (names.as_mut(), next) {
                        (Some(list), Some(n)) if !list.contains(&n) => list.push(n),
                        (Some(_), None) => *names = None,
                        _ => {}
                    },
                    None => dirs.push((d, next.map(|n| vec![n]))),
                }
            }
        }
        let mut names = HashMap::new();
        for (d, which) in dirs {
            let wd = crate::os::sys::inotify_watch(&fd, &d, DIR_EVENTS).ok()?;
            names.insert(wd, which);
        }
        Some(Armed { fd, names })
    }
}

/// An inotify instance with its watches, and for each directory watch the entries whose events
/// count.
struct Armed {
    fd: Inotify,
    names: HashMap<WatchDescriptor, Option<Vec<OsString>>>,
}

impl Armed {
    /// Whether anything the check looked at may have changed since the watches were set.
    fn changed(&self) -> bool {
        match crate::os::sys::inotify_events(&self.fd) {
            Ok(events) => events.iter().any(|e| self.counts(e)),
            Err(_) => true,
        }
    }

    fn counts(&self, e: &InotifyEvent) -> bool {
        match (self.names.get(&e.wd), &e.name) {
            // A watched file, a directory itself, an overflow of the queue (no watch): yes.
            (None, _) | (Some(_), None) | (Some(None), Some(_)) => true,
            (Some(Some(names)), Some(name)) => names.contains(name),
        }
    }
}

/// The outcome of a check, kept while nothing it looked at changes.
pub struct Checked<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    /// Watches set before the kept value's check ran.
    inotify: Option<Armed>,
    value: Option<T>,
    /// Checks run (for the tests: how many logins were spared one).
    checks: u64,
}

impl<T> Default for Checked<T> {
    fn default() -> Self {
        Checked {
            state: Mutex::new(State {
                inotify: None,
                value: None,
                checks: 0,
            }),
        }
    }
}

impl<T: Clone> Checked<T> {
    /// The kept value if nothing in `watched` changed since its check, else `check` run again
    /// (and its value kept if it passed and the files could be watched).
    pub fn get(
        &self,
        watched: impl FnOnce() -> Watched,
        check: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let (Some(armed), Some(v)) = (&st.inotify, &st.value) {
            if !armed.changed() {
                return Ok(v.clone());
            }
        }
        st.value = None;
        // Watches first: a change made while the check runs is seen by the next login.
        st.inotify = watched().arm();
        st.checks += 1;
        let v = check()?;
        if st.inotify.is_some() {
            st.value = Some(v.clone());
        }
        Ok(v)
    }

    /// How many times the check ran.
    pub fn checks(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .checks
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A kept check: `Ok(n)` where n counts the checks run.
    fn get(c: &Checked<u64>, file: &Path, content: bool) -> Result<u64> {
        let n = c.checks() + 1;
        c.get(
            || Watched {
                files: vec![file.to_path_buf()],
                content,
            },
            || {
                let m = std::fs::symlink_metadata(file)
                    .map_err(|e| crate::error::Error::permissions(e.to_string()))?;
                crate::os::fsperm::check_file(file, &m, crate::os::fsperm::Access::Readable)?;
                crate::os::fsperm::check_dirs(file, 0)?;
                Ok(n)
            },
        )
    }

    #[test]
    fn a_check_is_kept_until_a_file_or_directory_changes() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        chmod(&sub, 0o755);
        let f = sub.join("store.db");
        std::fs::write(&f, b"x").unwrap();
        chmod(&f, 0o600);
        let c = Checked::default();
        assert_eq!(get(&c, &f, false).unwrap(), 1);
        for _ in 0..10 {
            assert_eq!(get(&c, &f, false).unwrap(), 1, "nothing changed: kept");
        }
        // Other files that come and go beside it, or in a directory above (as in /tmp or
        // /run): nothing the check looks at.
        for d in [&sub, &dir.path().to_path_buf()] {
            let other = d.join("unrelated");
            std::fs::write(&other, b"o").unwrap();
            chmod(&other, 0o666);
            std::fs::remove_file(&other).unwrap();
        }
        assert_eq!(get(&c, &f, false).unwrap(), 1, "kept");
        // The file made writable by others: refused at the next login.
        chmod(&f, 0o666);
        assert!(get(&c, &f, false).is_err());
        assert!(get(&c, &f, false).is_err(), "a failed check is not kept");
        chmod(&f, 0o600);
        assert_eq!(get(&c, &f, false).unwrap(), 4);
        // Its directory made writable by others.
        chmod(&sub, 0o777);
        assert!(get(&c, &f, false).is_err());
        chmod(&sub, 0o755);
        assert_eq!(get(&c, &f, false).unwrap(), 6);
        // Another file renamed in its place.
        let other = sub.join("new.db");
        std::fs::write(&other, b"y").unwrap();
        chmod(&other, 0o600);
        let before = c.checks();
        std::fs::rename(&other, &f).unwrap();
        assert_eq!(get(&c, &f, false).unwrap(), before + 1);
        // A write to the file itself is no change of what is checked (the store is written
        // at every login), unless its content is what is kept (the key).
        std::fs::write(&f, b"z").unwrap();
        assert_eq!(get(&c, &f, false).unwrap(), before + 1);
        let key = Checked::default();
        assert_eq!(get(&key, &f, true).unwrap(), 1);
        std::fs::write(&f, b"w").unwrap();
        assert_eq!(get(&key, &f, true).unwrap(), 2);
        assert_eq!(get(&key, &f, true).unwrap(), 2);
    }

    #[test]
    fn a_directory_far_above_is_watched_too() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = a.join("b");
        std::fs::create_dir_all(&b).unwrap();
        chmod(&a, 0o755);
        chmod(&b, 0o755);
        let f = b.join("key");
        std::fs::write(&f, b"x").unwrap();
        chmod(&f, 0o600);
        let c = Checked::default();
        assert_eq!(get(&c, &f, true).unwrap(), 1);
        assert_eq!(get(&c, &f, true).unwrap(), 1);
        chmod(&a, 0o777);
        assert!(get(&c, &f, true).is_err(), "a directory two levels up");
    }
}
