//! How many logins the daemon serves at once, and for whom. The socket is open to every local
//! user, so no uid but root may take the daemon from the others: each non-root uid has a few
//! sessions, all non-root uids together a few more, and root callers (sshd, sudo, su, login)
//! are never refused for capacity: past their own bound the daemon says it is busy, and a root
//! caller's module serves that login with a daemon of its own (`tesserad --stdio`).
//!
//! A session's place is a [`Slot`], given back when it is dropped: also when the session's
//! job panics, or returns early on any path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Logins at once for one non-root uid (a screen locker needs one).
pub const PER_UID: usize = 4;
/// Logins at once for all non-root uids together.
pub const NON_ROOT: usize = 64;
/// Logins at once for root callers; past it a root caller's module spawns its own daemon.
pub const ROOT: usize = 256;

#[derive(Default)]
pub struct Capacity {
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    per_uid: HashMap<u32, usize>,
    non_root: usize,
    root: usize,
    /// Connections refused for capacity since the daemon started.
    refused: u64,
}

/// Why a connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// This uid has [`PER_UID`] logins under way.
    Uid(u32),
    /// Non-root uids have [`NON_ROOT`] logins under way.
    NonRoot,
    /// Root callers have [`ROOT`] logins under way.
    Root,
}

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Full::Uid(uid) => write!(f, "uid {uid} has {PER_UID} logins under way already"),
            Full::NonRoot => write!(f, "users other than root have {NON_ROOT} logins under way"),
            Full::Root => write!(f, "root callers have {ROOT} logins under way"),
        }
    }
}

/// The daemon's load at one moment (`tessera doctor`, `tessera metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    /// Logins of root callers under way.
    pub root: usize,
    /// Logins of all other callers under way.
    pub others: usize,
    /// Connections refused for capacity since the daemon started.
    pub refused: u64,
}

impl Load {
    /// The load without the asking connection's own place (a status or metrics request of
    /// `uid` is no login under way).
    pub fn without_request_of(mut self, uid: u32) -> Load {
        match uid {
            0 => self.root = self.root.saturating_sub(1),
            _ => self.others = self.others.saturating_sub(1),
        }
        self
    }
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} logins under way (root callers {} of {ROOT}, others {} of {NON_ROOT}), {} \
             connections refused for capacity since the start",
            self.root + self.others,
            self.root,
            self.others,
            self.refused
        )
    }
}

/// One session's place; dropping it gives the place back.
pub struct Slot {
    capacity: Arc<Capacity>,
    uid: u32,
}

impl Capacity {
    /// A place for a login of `uid`, if there is one.
    pub fn take(self: &Arc<Self>, uid: u32) -> Result<Slot, Full> {
        let mut c = self.lock();
        let taken = Self::place(&mut c, uid);
        if taken.is_err() {
            c.refused += 1;
        }
        taken.map(|()| Slot {
            capacity: Arc::clone(self),
            uid,
        })
    }

    /// Logins under way and connections refused since the start.
    pub fn load(&self) -> Load {
        let c = self.lock();
        Load {
            root: c.root,
            others: c.non_root,
            refused: c.refused,
        }
    }

    /// Counts a place for `uid` in `c`, if there is one.
    fn place(c: &mut Counts, uid: u32) -> Result<(), Full> {
        if uid == 0 {
            if c.root >= ROOT {
                return Err(Full::Root);
            }
            c.root += 1;
        } else {
            let mine = c.per_uid.get(&uid).copied().unwrap_or(0);
            if mine >= PER_UID {
                return Err(Full::Uid(uid));
            }
            if c.non_root >= NON_ROOT {
                return Err(Full::NonRoot);
            }
            c.non_root += 1;
            *c.per_uid.entry(uid).or_insert(0) += 1;
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // A panic never happens while the lock is held; if one did, the counts are still whole.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.capacity.lock();
        if self.uid == 0 {
            c.root = c.root.saturating_sub(1);
            return;
        }
        c.non_root = c.non_root.saturating_sub(1);
        if let Some(n) = c.per_uid.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_uid.remove(&self.uid);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    impl Capacity {
        /// Logins under way: (root callers, all other callers).
        fn in_use(&self) -> (usize, usize) {
            let l = self.load();
            (l.root, l.others)
        }
    }

    #[test]
    fn a_uid_has_four_places_all_users_sixty_four_and_root_its_own() {
        let cap = Arc::new(Capacity::default());
        let mine: Vec<Slot> = (0..PER_UID).map(|_| cap.take(1000).unwrap()).collect();
        assert_eq!(cap.take(1000).err(), Some(Full::Uid(1000)));
        let others: Vec<Slot> = (0..NON_ROOT - PER_UID)
            .map(|i| cap.take(2000 + i as u32).unwrap())
            .collect();
        assert_eq!(cap.take(5000).err(), Some(Full::NonRoot));
        // Root is not counted with the others.
        let root: Vec<Slot> = (0..ROOT).map(|_| cap.take(0).unwrap()).collect();
        assert_eq!(cap.take(0).err(), Some(Full::Root));
        assert_eq!(cap.in_use(), (ROOT, NON_ROOT));
        assert_eq!(cap.load().refused, 3, "each refusal counted");
        drop((mine, others, root));
        assert_eq!(cap.in_use(), (0, 0));
        assert!(cap.lock().per_uid.is_empty(), "no uid left behind");
    }

    #[test]
    fn a_place_comes_back_when_its_job_panics() {
        let cap = Arc::new(Capacity::default());
        for _ in 0..2 * PER_UID {
            let slot = cap.take(1000).unwrap();
            let job = std::thread::spawn(move || {
                let _slot = slot;
                panic!("a bug in a session");
            });
            assert!(job.join().is_err());
        }
        assert_eq!(cap.in_use(), (0, 0));
        assert!(cap.take(1000).is_ok());
    }
}
