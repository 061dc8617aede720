//! Who a session serves ([`Caller`]: the peer's uid, whether it may name a config) and what the
//! sessions of one daemon count together ([`Counters`]). Its own room: the login, enrollment and
//! report handlers all take them, and none of them reaches into another for them.

use crate::capacity::Capacity;
use crate::metrics::Metrics;
use crate::refusals::Refusals;
use std::sync::Arc;
use std::time::Duration;

/// How long a root caller's user may take to answer one prompt (typing a PIN, finding the
/// phone).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);
/// How long any other caller's user may: a screen locker's user is at the screen, and a
/// caller that leaves its prompt open must not hold a place of the daemon for long.
pub const NON_ROOT_ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// What the daemon knows of the caller.
pub struct Caller {
    /// The peer's uid (SO_PEERCRED), or this process's real uid for a pipe.
    pub uid: u32,
    /// `config=` of the PAM line is honoured: for a child the module spawned for this login,
    /// and for root callers of the socket.
    pub may_choose_config: bool,
}

/// What the sessions of one daemon count together.
#[derive(Default)]
pub struct Counters {
    /// Requests for other accounts (the audit rows they take).
    pub refusals: Refusals,
    /// `tessera metrics`.
    pub metrics: Metrics,
    /// The socket server's places, read by a status or metrics request; none under `--stdio`.
    pub capacity: Option<Arc<Capacity>>,
    /// Why the last SIGHUP's config did not load, while the daemon serves with the one before.
    pub failed_reload: Arc<std::sync::Mutex<Option<String>>>,
}

impl Counters {
    /// Why the last reload failed, if it did (the config before it still serves).
    pub fn failed_reload(&self) -> Option<String> {
        self.failed_reload
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Caller {
    /// The longest wait for one answer (of a login or an enrollment).
    pub(crate) fn answer_wait(&self) -> Duration {
        if self.uid == 0 {
            ANSWER_TIMEOUT
        } else {
            NON_ROOT_ANSWER_TIMEOUT
        }
    }
}
