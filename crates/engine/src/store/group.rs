//! Group commit: the write transactions of logins running at once share one SQLite
//! transaction and one fsync, and each still returns only once the durability contract of
//! [`Store::write`](super::Store::write) holds for it.
//!
//! Writers that arrive while a commit is syncing wait for the connection; the first one then
//! opens a batch, each runs its closure inside a savepoint of it, and the last one in line
//! commits (and syncs, when a member needs it) for all. Members of a batch run one after the
//! other on one connection and see what the earlier ones wrote: two logins with the same OTP
//! are still serialized, and the second finds the counter moved. A closure that fails is
//! rolled back to its savepoint alone; a commit that fails fails every member of its batch.

use super::tx::SqliteTx;
use super::{ExecuteCached, SqliteStore, StoreTx};
use crate::error::{Error, Result};
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

/// The most writers one batch takes, so that a steady stream of logins still commits.
const MAX_BATCH: usize = 64;

/// What a batch's commit gave: every member returns it.
type BatchResult = Arc<OnceLock<std::result::Result<(), String>>>;

/// The one writing connection of a long-lived host, shared by its threads.
pub struct GroupWriter {
    state: Mutex<State>,
    committed: Condvar,
    /// Writers waiting for `state`: while there are any, a member leaves the commit to them.
    queued: AtomicUsize,
    commits: AtomicU64,
    /// A write failed for a reason that can pass ([`Error::can_pass`]): the connection may
    /// stay broken after it has (one opened on a read-only file system stays read-only), so
    /// its pool opens a new one.
    broken: AtomicBool,
}

struct State {
    store: SqliteStore,
    open: Option<OpenBatch>,
}

struct OpenBatch {
    result: BatchResult,
    members: usize,
    /// A member wrote something that must be synced before its verdict.
    durable: bool,
}

impl GroupWriter {
    pub fn new(store: SqliteStore) -> Result<GroupWriter> {
        // Commits are synced by hand where they must be (see `Store::write`); this connection runs
        // nothing but engine transactions.
        store.conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(GroupWriter {
            state: Mutex::new(State { store, open: None }),
            committed: Condvar::new(),
            queued: AtomicUsize::new(0),
            commits: AtomicU64::new(0),
            broken: AtomicBool::new(false),
        })
    }

    /// Runs `f` as a member of the open batch (or of a new one), and returns once the batch is
    /// committed.
    pub fn write<R>(&self, f: impl FnOnce(&dyn StoreTx) -> Result<R>) -> Result<R> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let mut st = self.lock();
        self.queued.fetch_sub(1, Ordering::SeqCst);
        if st.open.is_none() {
            // IMMEDIATE takes the write lock up front (the admin command may hold it for a
            // moment: busy_timeout applies).
            if let Err(e) = st.store.conn.execute_cached("BEGIN IMMEDIATE", []) {
                let e = Error::from(e);
                self.note(&e);
                return Err(e);
            }
        }
        let (out, durable) = match run_member(&st.store, f) {
            Ok(v) => v,
            Err(broken) => {
                self.note(&broken);
                // The savepoint could not be taken or ended: what the batch holds is in doubt.
                self.abort(&mut st, &broken);
                return Err(broken);
            }
        };
        let batch = st.open.get_or_insert_with(|| OpenBatch {
            result: BatchResult::default(),
            members: 0,
            durable: false,
        });
        batch.members += 1;
        batch.durable |= durable;
        let result = Arc::clone(&batch.result);
        let others_follow = self.queued.load(Ordering::SeqCst) > 0 && batch.members < MAX_BATCH;
        let value = match out {
            Member::Done(Ok(v)) => v,
            Member::Done(Err(e)) => {
                self.note(&e);
                // Rolled back to its savepoint: nothing of it awaits the commit, but the batch
                // still needs its committer.
                if !others_follow {
                    self.commit(&mut st);
                }
                return Err(e);
            }
            Member::Panicked(p) => {
                if !others_follow {
                    self.commit(&mut st);
                }
                drop(st);
                panic::resume_unwind(p);
            }
        };
        if others_follow {
            // The next writer in line commits for this one.
            while result.get().is_none() {
                st = self
                    .committed
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        } else {
            self.commit(&mut st);
        }
        drop(st);
        match result.get() {
            Some(Ok(())) => Ok(value),
            Some(Err(why)) => Err(Error::store(why.clone())),
            None => Err(Error::store("a write batch ended without a commit")),
        }
    }

    /// Whether a write failed for a reason that can pass: the connection should be replaced
    /// by a new one (see [`StorePool`](super::StorePool)).
    pub fn broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    fn note(&self, e: &Error) {
        if e.can_pass() {
            self.broken.store(true, Ordering::SeqCst);
        }
    }

    /// Commits made so far (each with at most one sync): fewer than writes when logins shared.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    #[cfg(test)]
    fn lock_is_held(&self) -> bool {
        self.state.try_lock().is_err()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Closures run under catch_unwind and nothing else here panics; if something did, the
        // state is still consistent between SQL statements.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Commits the open batch, syncs the WAL if a member needs it, and wakes the members.
    fn commit(&self, st: &mut State) {
        let Some(batch) = st.open.take() else { return };
        let mut res = st
            .store
            .conn
            .execute_cached("COMMIT", [])
            .map(drop)
            .map_err(Error::from);
        if res.is_ok() && batch.durable {
            res = st.store.sync_wal();
        }
        if !st.store.conn.is_autocommit() {
            let _ = st.store.conn.execute_batch("ROLLBACK");
        }
        if let Err(e) = &res {
            self.note(e);
        }
        st.store
            .checkpoint_if_longer_than(super::sqlite::DAEMON_WAL_TRUNCATE_BYTES);
        self.commits.fetch_add(1, Ordering::SeqCst);
        let _ = batch.result.set(res.map_err(|e| e.to_string()));
        self.committed.notify_all();
    }

    /// Rolls the open batch back and fails its members.
    fn abort(&self, st: &mut State, why: &Error) {
        if !st.store.conn.is_autocommit() {
            let _ = st.store.conn.execute_batch("ROLLBACK");
        }
        if let Some(batch) = st.open.take() {
            let _ = batch
                .result
                .set(Err(format!("the transaction was rolled back: {why}")));
            self.committed.notify_all();
        }
    }
}

/// How a member's closure ended.
enum Member<R> {
    Done(Result<R>),
    /// Its panic, carried past the batch's bookkeeping and resumed after.
    Panicked(Box<dyn std::any::Any + Send>),
}

/// Runs `f` inside a savepoint: kept when `f` succeeds, rolled back when it fails. `Err` only
/// when the savepoint itself failed. Gives whether `f` wrote something to be synced.
fn run_member<R>(
    store: &SqliteStore,
    f: impl FnOnce(&dyn StoreTx) -> Result<R>,
) -> Result<(Member<R>, bool)> {
    let conn = &store.conn;
    conn.execute_cached("SAVEPOINT member", [])?;
    let tx = SqliteTx {
        tx: conn,
        durable: Cell::new(false),
        audit_keep: store.audit_keep,
    };
    let out = match panic::catch_unwind(AssertUnwindSafe(|| f(&tx))) {
        Ok(out) => Member::Done(out),
        Err(p) => Member::Panicked(p),
    };
    let kept = matches!(out, Member::Done(Ok(_)));
    if kept {
        conn.execute_cached("RELEASE member", [])?;
    } else {
        conn.execute_cached("ROLLBACK TO member", [])?;
        conn.execute_cached("RELEASE member", [])?;
    }
    Ok((out, kept && tx.durable.get()))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // threads racing for the writer, in real time
mod tests {
    use super::*;
    use crate::store::{Store, StorePool, TokenRecord};
    use crate::tokens::TokenType;
    use std::path::Path;
    use std::sync::mpsc;
    use std::time::Duration;

    fn store_with_tokens(path: &Path, n: usize) {
        let s = SqliteStore::create(path, 5000).unwrap();
        for i in 0..n {
            let t = TokenRecord::new(
                &format!("T{i}"),
                "alice",
                "default",
                TokenType::Hotp,
                vec![0; 40],
            );
            s.insert_token(&t).unwrap();
        }
    }

    /// A new store of `n` tokens in a temporary directory (kept alive by the caller), and a
    /// group writer on it.
    fn writer_with_tokens(n: usize) -> (tempfile::TempDir, std::path::PathBuf, GroupWriter) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        store_with_tokens(&path, n);
        let w = GroupWriter::new(SqliteStore::open(&path, 5000).unwrap()).unwrap();
        (dir, path, w)
    }

    fn counter(path: &Path, serial: &str) -> u64 {
        SqliteStore::open(path, 5000)
            .unwrap()
            .get_token(serial)
            .unwrap()
            .counter
    }

    /// Waits until a writer holds the connection (the first one, blocked in its closure).
    fn wait_until_held(w: &GroupWriter) {
        for _ in 0..2000 {
            if w.lock_is_held() {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("no writer took the connection");
    }

    /// Waits until `n` writers queue for the connection (they can't get it while a member runs).
    fn wait_for_queue(w: &GroupWriter, n: usize) {
        for _ in 0..2000 {
            if w.queued.load(Ordering::SeqCst) >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("{n} writers never queued");
    }

    fn fails(path: &Path, serial: &str) -> u32 {
        SqliteStore::open(path, 5000)
            .unwrap()
            .get_token(serial)
            .unwrap()
            .fail_count
    }

    /// A reject (nothing to sync) is in the store file when its write returns: another
    /// connection (a daemon started after this one was killed) sees it.
    #[test]
    fn a_reject_is_committed_before_its_write_returns() {
        let (_dir, path, w) = writer_with_tokens(1);
        w.write(|tx| tx.record_failure("T0", 100)).unwrap();
        assert_eq!(fails(&path, "T0"), 1);
        assert_eq!(w.commits(), 1);
    }

    #[test]
    fn writers_that_queue_during_a_write_share_one_commit() {
        let (_dir, path, w) = writer_with_tokens(3);
        let (go, wait) = mpsc::channel::<()>();
        std::thread::scope(|s| {
            let w = &w;
            let first = s.spawn(move || {
                w.write(|tx| {
                    wait.recv().unwrap(); // hold the connection until the others queue
                    tx.record_success("T0", 10)
                })
            });
            // The first writer holds the connection: the other two must queue behind it.
            wait_until_held(w);
            let others: Vec<_> = (1..3)
                .map(|i| s.spawn(move || w.write(|tx| tx.record_success(&format!("T{i}"), 10 + i))))
                .collect();
            wait_for_queue(w, 2);
            go.send(()).unwrap();
            first.join().unwrap().unwrap();
            for o in others {
                o.join().unwrap().unwrap();
            }
        });
        // Three durable writes, one commit (one sync), and each returned after it.
        assert_eq!(w.commits(), 1);
        assert_eq!(counter(&path, "T0"), 10);
        assert_eq!(counter(&path, "T1"), 11);
        assert_eq!(counter(&path, "T2"), 12);
    }

    #[test]
    fn a_failing_member_is_rolled_back_alone() {
        let (_dir, path, w) = writer_with_tokens(2);
        let (go, wait) = mpsc::channel::<()>();
        std::thread::scope(|s| {
            let w = &w;
            let first = s.spawn(move || {
                w.write(|tx| {
                    wait.recv().unwrap();
                    tx.record_success("T0", 7)?;
                    Err::<(), _>(Error::invalid("this member fails"))
                })
            });
            wait_until_held(w);
            let second = s.spawn(|| w.write(|tx| tx.record_success("T1", 8)));
            wait_for_queue(w, 1);
            go.send(()).unwrap();
            assert!(first.join().unwrap().is_err());
            second.join().unwrap().unwrap();
        });
        assert_eq!(
            counter(&path, "T0"),
            0,
            "the failed member's write was rolled back"
        );
        assert_eq!(
            counter(&path, "T1"),
            8,
            "the other member's write was committed"
        );
    }

    /// The same OTP in two logins at once: the members run one after the other on one
    /// connection, and the second sees the counter the first moved.
    #[test]
    fn two_members_using_one_counter_value_accept_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        store_with_tokens(&path, 1);
        let pool = Arc::new(StorePool::new(&path, 5000, 0));
        let accepted: Vec<bool> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..16)
                .map(|_| {
                    let pool = Arc::clone(&pool);
                    s.spawn(move || {
                        let store = pool.checkout().unwrap();
                        store
                            .write(|tx| {
                                let t = tx.token("T0")?.unwrap();
                                if t.counter >= 5 {
                                    return Ok(false); // used already
                                }
                                tx.record_success("T0", 5)?;
                                Ok(true)
                            })
                            .unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(accepted.iter().filter(|a| **a).count(), 1, "{accepted:?}");
        assert_eq!(counter(&path, "T0"), 5);
    }

    #[test]
    fn a_panicking_member_leaves_the_writer_usable() {
        let (_dir, path, w) = writer_with_tokens(1);
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            w.write(|tx| -> Result<()> {
                tx.record_success("T0", 3)?;
                panic!("a bug in a closure")
            })
        }));
        assert!(r.is_err(), "the panic reaches its own thread");
        w.write(|tx| tx.record_success("T0", 4)).unwrap();
        assert_eq!(counter(&path, "T0"), 4);
    }
}
