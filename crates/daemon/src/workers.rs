//! The threads that serve connections. A thread is kept after its login and takes the next one:
//! starting a thread per login costs a clone, a stack mapping and its teardown every time, a
//! good part of a login's cost here. New threads start when all are busy (the number of logins
//! at once is bounded by the caller); idle ones end after a while.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long an idle thread waits for a login before it ends.
const IDLE_END: Duration = Duration::from_secs(60);

type Job = Box<dyn FnOnce() + Send + 'static>;

pub struct Workers {
    jobs: Sender<Job>,
    queue: Arc<Mutex<Receiver<Job>>>,
    /// Threads waiting for a job, less the jobs already handed to them.
    idle: Arc<AtomicUsize>,
}

impl Default for Workers {
    fn default() -> Self {
        Workers::new()
    }
}

impl Workers {
    pub fn new() -> Workers {
        let (jobs, queue) = mpsc::channel();
        Workers {
            jobs,
            queue: Arc::new(Mutex::new(queue)),
            idle: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs `job` on an idle thread, or on a new one if none is idle.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) {
        let job: Job = Box::new(job);
        // Claim an idle thread; it takes the job from the queue.
        let job = if take_one(&self.idle) {
            match self.jobs.send(job) {
                Ok(()) => return,
                Err(mpsc::SendError(job)) => job, // no receiver: can't happen while `self` lives
            }
        } else {
            job
        };
        let (queue, idle) = (Arc::clone(&self.queue), Arc::clone(&self.idle));
        std::thread::spawn(move || {
            run_job(job);
            serve_queue(&queue, &idle);
        });
    }
}

/// Runs a job; a job that panics (a bug) ends its session, not the thread that serves the next
/// one. What the job held (its place, its connection) is dropped as it unwinds.
fn run_job(job: Job) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
        eprintln!("tesserad: a session ended with a panic (a bug); the daemon goes on");
    }
}

/// Takes one from `n` unless it is 0.
fn take_one(n: &AtomicUsize) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

/// A thread's life after its first job: wait for the next, until idle for [`IDLE_END`].
fn serve_queue(queue: &Mutex<Receiver<Job>>, idle: &AtomicUsize) {
    let mut counted = false;
    loop {
        if !counted {
            idle.fetch_add(1, Ordering::SeqCst);
            counted = true;
        }
        let next = queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv_timeout(IDLE_END);
        match next {
            // The sender took this thread's count when it handed the job over.
            Ok(job) => {
                counted = false;
                run_job(job);
            }
            // End, unless every idle count is taken: then a job is on its way to a waiting
            // thread, and this one must stay to take it.
            Err(RecvTimeoutError::Timeout) => {
                if take_one(idle) {
                    return;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::mpsc::channel;

    #[test]
    fn logins_one_after_another_are_served_by_one_kept_thread() {
        let w = Workers::new();
        let (tx, rx) = channel();
        let mut threads = HashSet::new();
        for _ in 0..20 {
            let tx = tx.clone();
            w.run(move || tx.send(std::thread::current().id()).unwrap());
            threads.insert(rx.recv().unwrap());
            // The thread goes back to waiting once its job has returned.
            while w.idle.load(Ordering::SeqCst) == 0 {
                std::thread::yield_now();
            }
        }
        assert_eq!(threads.len(), 1, "{threads:?}");
    }

    #[test]
    fn sixteen_blocked_jobs_each_get_a_thread() {
        let w = Workers::new();
        let gate = Arc::new(std::sync::Barrier::new(17));
        let (tx, rx) = channel();
        for _ in 0..16 {
            let (gate, tx) = (Arc::clone(&gate), tx.clone());
            w.run(move || {
                gate.wait(); // all 16 must run at once to pass
                tx.send(()).unwrap();
            });
        }
        gate.wait();
        for _ in 0..16 {
            rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
    }
}
