//! The circuit breaker: a server that failed `down_after` exchanges in a row is skipped for
//! `down_for` seconds, by every login of the host that keeps the breaker (tesserad), so a dead
//! server costs one timeout, not one per login. After that time the next login tries it again
//! (one probe); a success closes the breaker.
//!
//! Only a long-lived host shares one: a login run on its own (`tesserad --stdio`, `tessera
//! check`) has none and tries every server, as before.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Health {
    failures: u32,
    down_until: Option<Instant>,
}

/// A remote server as the breaker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerHealth {
    /// Its last exchange succeeded, or none failed yet.
    Up,
    /// Its last `failures` exchanges failed; it is still tried.
    Failing { failures: u32 },
    /// Skipped by every login for this much longer.
    Down { skipped_for: Duration },
}

impl ServerHealth {
    /// Whether logins use it now.
    pub fn is_up(&self) -> bool {
        !matches!(self, ServerHealth::Down { .. })
    }
}

impl std::fmt::Display for ServerHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerHealth::Up => f.write_str("up"),
            ServerHealth::Failing { failures } => {
                write!(f, "up, but its last {failures} exchanges failed")
            }
            ServerHealth::Down { skipped_for } => write!(
                f,
                "down: skipped for {} s more after failures in a row",
                skipped_for.as_secs().max(1)
            ),
        }
    }
}

pub struct Breaker {
    down_after: u32,
    down_for: Duration,
    servers: Mutex<HashMap<String, Health>>,
}

impl Breaker {
    /// `down_after` = 0 turns the breaker off.
    pub fn new(down_after: u32, down_for: Duration) -> Breaker {
        Breaker {
            down_after,
            down_for,
            servers: Mutex::default(),
        }
    }

    /// Until when `server` is skipped, if it is.
    pub fn skipped_until(&self, server: &str, now: Instant) -> Option<Instant> {
        let servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        servers
            .get(server)
            .and_then(|h| h.down_until)
            .filter(|&until| until > now)
    }

    /// What the breaker knows of `server`: no failure since its last success, failures that
    /// did not open it yet, or skipped for a while (`tessera doctor`, `tessera metrics`).
    pub fn health(&self, server: &str, now: Instant) -> ServerHealth {
        let servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        match servers.get(server) {
            None => ServerHealth::Up,
            Some(h) => match h.down_until.filter(|&until| until > now) {
                Some(until) => ServerHealth::Down {
                    skipped_for: until - now,
                },
                None => ServerHealth::Failing {
                    failures: h.failures,
                },
            },
        }
    }

    pub fn succeeded(&self, server: &str) {
        let mut servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        servers.remove(server);
    }

    /// Counts a failure; says whether it opened the breaker (the server is skipped from now).
    pub fn failed(&self, server: &str, now: Instant) -> bool {
        if self.down_after == 0 {
            return false;
        }
        let mut servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        let h = servers.entry(server.to_string()).or_default();
        h.failures = h.failures.saturating_add(1);
        // A probe after `down_for` that fails again opens it again at once.
        if h.failures >= self.down_after {
            h.down_until = Some(now + self.down_for);
            return true;
        }
        false
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a fixed point to count from
mod tests {
    use super::*;

    #[test]
    fn opens_after_n_failures_in_a_row_and_closes_on_success() {
        let b = Breaker::new(2, Duration::from_secs(30));
        let t = Instant::now();
        assert_eq!(b.health("a", t), ServerHealth::Up);
        assert!(!b.failed("a", t));
        assert_eq!(b.skipped_until("a", t), None);
        assert_eq!(b.health("a", t), ServerHealth::Failing { failures: 1 });
        assert!(b.health("a", t).is_up());
        assert!(b.failed("a", t));
        assert_eq!(b.skipped_until("a", t), Some(t + Duration::from_secs(30)));
        let down = b.health("a", t + Duration::from_secs(10));
        assert_eq!(
            down,
            ServerHealth::Down {
                skipped_for: Duration::from_secs(20)
            }
        );
        assert!(!down.is_up());
        assert_eq!(
            down.to_string(),
            "down: skipped for 20 s more after failures in a row"
        );
        assert_eq!(b.skipped_until("b", t), None, "per server");
        // Past the time: tried again; one more failure opens it at once.
        let later = t + Duration::from_secs(31);
        assert_eq!(b.skipped_until("a", later), None);
        assert!(b.failed("a", later));
        b.succeeded("a");
        assert_eq!(b.skipped_until("a", later), None);
        assert_eq!(b.health("a", later), ServerHealth::Up);
        assert!(!b.failed("a", later), "a success starts the count again");
    }

    #[test]
    fn zero_turns_it_off() {
        let b = Breaker::new(0, Duration::from_secs(30));
        let t = Instant::now();
        for _ in 0..10 {
            assert!(!b.failed("a", t));
        }
        assert_eq!(b.skipped_until("a", t), None);
    }
}
