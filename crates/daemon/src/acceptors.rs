//! The threads that take connections and serve them. A connection is taken by a thread that
//! then serves it to the end: there is no accepting thread that hands each login to a worker,
//! which cost a wakeup and two context switches per login (in a VM, each is several
//! microseconds of scheduler work). A thread is kept after its login and takes the next one,
//! since starting a thread per login costs a clone, a stack mapping and its teardown.
//!
//! One thread at a time holds the turn to accept: it takes connections and runs `admit` on each
//! (who asks, is there room) until one is admitted; it then gives the turn to the next idle
//! thread and serves that login. Connections that are refused are refused by that one thread,
//! one after the other, as by a single accepting thread: a flood of them by one user costs one
//! thread's share of the CPU, and the threads serving logins keep theirs.
//!
//! When a thread takes a login and no other is idle, it starts another, so that one always
//! waits (the number of threads is bounded by the logins at once, which `capacity` bounds).
//! Idle threads beyond one end after a minute without a connection.

use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long an idle thread waits for a connection before it ends (if another one waits too).
const IDLE_END: Duration = Duration::from_secs(60);

struct Shared<A, S> {
    listener: UnixListener,
    /// Held by the thread whose turn it is to accept.
    turn: Mutex<()>,
    /// Threads waiting for the turn or in `accept`.
    idle: AtomicUsize,
    admit: A,
    serve: S,
}

/// Serves `listener` for good: `admit` runs for each connection, in turn; a connection it
/// admits is then served by `serve` on the thread that took it.
pub fn serve<T, A, S>(listener: UnixListener, admit: A, serve: S) -> std::io::Result<()>
where
    A: Fn(UnixStream) -> Option<T> + Send + Sync + 'static,
    S: Fn(T) + Send + Sync + 'static,
{
    tessera_engine::os::sys::set_accept_timeout(&listener, IDLE_END)?;
    let shared = Arc::new(Shared {
        listener,
        turn: Mutex::new(()),
        idle: AtomicUsize::new(0),
        admit,
        serve,
    });
    accept_loop(&shared, true);
    Ok(())
}

/// Takes connections and serves them; `keep`: the thread never ends (the first one).
fn accept_loop<T, A, S>(shared: &Arc<Shared<A, S>>, keep: bool)
where
    A: Fn(UnixStream) -> Option<T> + Send + Sync + 'static,
    S: Fn(T) + Send + Sync + 'static,
{
    loop {
        shared.idle.fetch_add(1, Ordering::SeqCst);
        let Some(login) = next_login(shared, keep) else {
            return;
        };
        if shared.idle.fetch_sub(1, Ordering::SeqCst) == 1 {
            // No other thread waits for the next connection: start one.
            start(shared);
        }
        let run = std::panic::AssertUnwindSafe(|| (shared.serve)(login));
        if std::panic::catch_unwind(run).is_err() {
            crate::say!("tesserad: a session ended with a panic (a bug); the daemon goes on");
        }
    }
}

/// Waits for the turn, then accepts until a connection is admitted. `None`: this thread ends
/// (it waited a minute for a connection, and another thread waits too); it is then no longer
/// counted idle.
fn next_login<T, A, S>(shared: &Shared<A, S>, keep: bool) -> Option<T>
where
    A: Fn(UnixStream) -> Option<T>,
{
    let _turn = shared.turn.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        match shared.listener.accept() {
            Ok((stream, _)) => {
                let admitted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    (shared.admit)(stream)
                }));
                if let Ok(Some(login)) = admitted {
                    return Some(login);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if !keep && take_one_if_others_wait(&shared.idle) {
                    return None;
                }
            }
            Err(e) => {
                // Out of descriptors or memory: wait a moment instead of spinning on it.
                crate::say!("tesserad: accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// A new waiting thread. If none can be started, the ones there take the connections when
/// their logins end.
fn start<T, A, S>(shared: &Arc<Shared<A, S>>)
where
    A: Fn(UnixStream) -> Option<T> + Send + Sync + 'static,
    S: Fn(T) + Send + Sync + 'static,
{
    let s = Arc::clone(shared);
    let started = std::thread::Builder::new().spawn(move || accept_loop(&s, false));
    if let Err(e) = started {
        crate::say!("tesserad: no thread for the next connection ({e}); it waits for one");
    }
}

/// Counts this thread out of the waiting ones, if at least one other waits.
fn take_one_if_others_wait(idle: &AtomicUsize) -> bool {
    idle.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
        (v >= 2).then(|| v - 1)
    })
    .is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::io::{Read, Write};
    use std::sync::mpsc::channel;

    /// A server on a new socket whose handler sends its thread's id on `tx`, then echoes one
    /// byte (after `gate`, if any).
    fn server(
        dir: &std::path::Path,
        gate: Option<Arc<std::sync::Barrier>>,
    ) -> (
        std::path::PathBuf,
        std::sync::mpsc::Receiver<std::thread::ThreadId>,
    ) {
        let path = dir.join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let (tx, rx) = channel();
        let tx = std::sync::Mutex::new(tx);
        std::thread::spawn(move || {
            serve(listener, Some, move |mut s: UnixStream| {
                tx.lock()
                    .unwrap()
                    .send(std::thread::current().id())
                    .unwrap();
                if let Some(g) = &gate {
                    g.wait();
                }
                let mut b = [0u8; 1];
                s.read_exact(&mut b).unwrap();
                s.write_all(&b).unwrap();
            })
        });
        (path, rx)
    }

    fn ask(path: &std::path::Path) -> UnixStream {
        let mut c = UnixStream::connect(path).unwrap();
        c.write_all(b"x").unwrap();
        c
    }

    #[test]
    fn logins_one_after_another_are_served_by_the_threads_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (path, rx) = server(dir.path(), None);
        let mut threads = HashSet::new();
        for _ in 0..60 {
            let mut c = ask(&path);
            let mut b = [0u8; 1];
            c.read_exact(&mut b).unwrap();
            threads.insert(rx.recv().unwrap());
        }
        // The first thread, the one it started when it took the first connection, and more
        // started only when a login came before the thread of the last one was counted idle
        // again (it has replied, but not yet returned): a few, which then stay, and far from
        // one thread per login however loaded the machine is (seen: 2 to 7 of 20).
        assert!(
            threads.len() <= 20,
            "{} threads: {threads:?}",
            threads.len()
        );
    }

    #[test]
    fn sixteen_logins_at_once_each_get_a_thread() {
        let dir = tempfile::tempdir().unwrap();
        let gate = Arc::new(std::sync::Barrier::new(17));
        let (path, rx) = server(dir.path(), Some(Arc::clone(&gate)));
        let clients: Vec<UnixStream> = (0..16).map(|_| ask(&path)).collect();
        gate.wait(); // all 16 must be in their handlers at once to pass
        let threads: HashSet<_> = (0..16)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        assert_eq!(threads.len(), 16);
        for mut c in clients {
            let mut b = [0u8; 1];
            c.read_exact(&mut b).unwrap();
        }
    }

    #[test]
    fn a_waiting_thread_ends_only_if_another_waits() {
        let idle = AtomicUsize::new(1);
        assert!(!take_one_if_others_wait(&idle));
        assert_eq!(idle.load(Ordering::SeqCst), 1);
        idle.store(3, Ordering::SeqCst);
        assert!(take_one_if_others_wait(&idle));
        assert_eq!(idle.load(Ordering::SeqCst), 2);
    }
}
