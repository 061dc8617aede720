//! Waiting on the operating system: the deadlines of network exchanges, SMTP sessions and
//! child processes, and the short pauses while polling them. This is not the login's time
//! (that is [`crate::auth::Clock`]'s, which tests fix): a server that hangs must cost real
//! seconds at most, whatever a test clock says. These are the engine's only reads of the
//! monotonic clock and its only sleeps outside the `Clock`: `crates/engine/clippy.toml`
//! forbids the std calls everywhere else.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

/// Now, on the monotonic clock.
pub fn now() -> Instant {
    Instant::now()
}

/// `d` from now, on the monotonic clock.
pub fn deadline(d: Duration) -> Instant {
    Instant::now() + d
}

/// A short pause while polling something the operating system will finish (a child process,
/// a busy SQLite database).
pub fn pause(d: Duration) {
    std::thread::sleep(d)
}
