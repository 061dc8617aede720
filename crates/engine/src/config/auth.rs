//! `[auth]`: how a login is checked (mode, PIN, windows) and what failures lock, with the
//! rules built on these keys (`locks`, `class_locks`, `pin_rule`, `pin_hashes_at_once`).
//! Apart from `mod.rs` so that each section's keys, defaults and checks read in one place.

use super::Invalid;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Local,
    Remote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtpPin {
    /// The pass is the token PIN followed by the OTP.
    Token,
    /// The pass is the OTP alone.
    None,
    /// The PIN is the Unix password, checked by an earlier module: only the OTP is asked.
    System,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: Mode,
    pub otppin: OtpPin,
    pub challenge_response: Vec<String>,
    pub challenge_validity: u64,
    pub max_fail: u32,
    pub fail_clear_timeout: u64,
    /// What `max_fail` failures in a row lock.
    pub lock_scope: LockScope,
    /// Failures in a row from one class of sources (familiar or unfamiliar), summed for a
    /// user, that refuse that class for the user.
    pub account_max_fail: u32,
    /// How long a class refused by `account_max_fail` stays refused after its last failure
    /// (seconds; 0: until `tessera token reset`).
    pub account_clear_timeout: u64,
    /// A source is familiar to a user for this many days after a second factor passed from
    /// it (the user's own uid always is).
    pub familiar_days: u64,
    /// The IPv6 network a remote address is counted as (a host picks its address from its
    /// /64).
    pub source_prefix_v6: u8,
    /// PIN hashes (Argon2id) run at most this many at a time; `None`: the CPUs the daemon may
    /// use.
    pub pin_hash_parallel: Option<u32>,
    /// The fewest characters of a new PIN.
    pub pin_min_length: usize,
    /// The characters a new PIN must have.
    pub pin_contents: crate::pin_rule::PinContents,
    pub pass_on_no_token: bool,
    pub hotp_window: u64,
    pub totp_window: u64,
    pub realm_separator: Option<String>,
    pub default_realm: String,
}

/// What failures lock (`[auth] lock_scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockScope {
    /// The source the failures came from (a remote host, a local user, a caller): a stranger
    /// can lock only itself out, never the owner.
    Source,
    /// The token, for every source: privacyIDEA's rule.
    Token,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: Mode::Local,
            otppin: OtpPin::Token,
            challenge_response: vec!["hotp".into(), "totp".into()],
            challenge_validity: 120,
            max_fail: 10,
            fail_clear_timeout: 600,
            lock_scope: LockScope::Source,
            account_max_fail: 50,
            account_clear_timeout: 86_400,
            familiar_days: 90,
            source_prefix_v6: 64,
            pin_hash_parallel: None,
            pin_min_length: 6,
            pin_contents: crate::pin_rule::PinContents::Any,
            pass_on_no_token: false,
            hotp_window: 10,
            totp_window: 1,
            realm_separator: None,
            default_realm: "default".into(),
        }
    }
}

impl AuthConfig {
    /// When failures whose last was at `last_fail` stop locking by themselves
    /// (`fail_clear_timeout` later); `None` when only an admin opens them (a timeout of 0).
    pub fn lock_opens_at(&self, last_fail: u64) -> Option<u64> {
        (self.fail_clear_timeout > 0).then(|| last_fail.saturating_add(self.fail_clear_timeout))
    }

    /// Whether `fail_clear_timeout` has passed since a last failure at `last_fail`.
    pub fn lock_expired(&self, last_fail: u64, now: u64) -> bool {
        self.lock_opens_at(last_fail).is_some_and(|at| at <= now)
    }

    /// Whether `count` failures in a row, the last at `last_fail`, lock now (of a source or,
    /// with `lock_scope = "token"`, of a token): the one rule of the engine, `tessera token`
    /// and `doctor`.
    pub fn locks(&self, count: u32, last_fail: Option<u64>, now: u64) -> bool {
        count >= self.max_fail && !last_fail.is_some_and(|l| self.lock_expired(l, now))
    }

    /// When a class refused by `account_max_fail` failures, the last at `last_fail`, opens
    /// by itself: the first second past `account_clear_timeout` (so that no span of
    /// `account_clear_timeout` seconds holds more than `account_max_fail` of its failures);
    /// `None` when only an admin opens it.
    pub fn class_opens_at(&self, last_fail: u64) -> Option<u64> {
        (self.account_clear_timeout > 0)
            .then(|| last_fail.saturating_add(self.account_clear_timeout + 1))
    }

    /// Whether `count` failures in a row from one class of sources, the last at `last_fail`,
    /// refuse that class now.
    pub fn class_locks(&self, count: u32, last_fail: u64, now: u64) -> bool {
        count >= self.account_max_fail
            && !self.class_opens_at(last_fail).is_some_and(|at| now >= at)
    }

    /// What a new PIN must be.
    pub fn pin_rule(&self) -> crate::pin_rule::PinRule {
        crate::pin_rule::PinRule {
            min_length: self.pin_min_length,
            contents: self.pin_contents,
        }
    }

    /// How many PIN hashes run at once: `pin_hash_parallel`, else the CPUs this process may
    /// use (its affinity and cgroup quota, as the standard library reads them), and no more
    /// than fit in its memory limit (the unit's `MemoryMax`) beside the daemon's base.
    pub fn pin_hashes_at_once(&self) -> usize {
        static DEFAULT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        match self.pin_hash_parallel {
            Some(n) => n as usize,
            None => *DEFAULT.get_or_init(|| {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                pin_hashes_that_fit(cpus, crate::os::sys::memory_limit())
            }),
        }
    }

    /// The checks of `[auth]`.
    pub(super) fn validate(&self) -> std::result::Result<(), Invalid> {
        for t in &self.challenge_response {
            if !crate::tokens::TokenType::ALL.iter().any(|k| k.name() == t) {
                return Err((
                    "auth.challenge_response",
                    format!("unknown token type \"{t}\""),
                ));
            }
        }
        if self.challenge_validity == 0 {
            return Err((
                "auth.challenge_validity",
                "must be at least 1 second".into(),
            ));
        }
        if self.max_fail == 0 {
            return Err(("auth.max_fail", "must be at least 1".into()));
        }
        if self.account_max_fail == 0 || self.account_max_fail > 100_000 {
            return Err((
                "auth.account_max_fail",
                "must be between 1 and 100000".into(),
            ));
        }
        if self.source_prefix_v6 == 0 || self.source_prefix_v6 > 128 {
            return Err(("auth.source_prefix_v6", "must be between 1 and 128".into()));
        }
        if self.familiar_days > 3650 {
            return Err(("auth.familiar_days", "must be at most 3650".into()));
        }
        if self.pin_hash_parallel.is_some_and(|n| n == 0 || n > 256) {
            return Err(("auth.pin_hash_parallel", "must be between 1 and 256".into()));
        }
        if self.pin_min_length == 0 || self.pin_min_length > crate::pin_rule::MAX_PIN {
            return Err((
                "auth.pin_min_length",
                format!("must be between 1 and {}", crate::pin_rule::MAX_PIN),
            ));
        }
        if self.hotp_window > 1000 {
            return Err(("auth.hotp_window", "must be at most 1000".into()));
        }
        if self.totp_window > 10 {
            return Err(("auth.totp_window", "must be at most 10 steps".into()));
        }
        if self.realm_separator.as_deref() == Some("") {
            return Err((
                "auth.realm_separator",
                "must not be empty (leave it out instead)".into(),
            ));
        }
        Ok(())
    }
}

/// What tesserad holds besides its PIN hashes, at most: the program, the store's connections
/// and 320 sessions (measured: 61 MiB after 100 logins at once, debug build).
pub const DAEMON_BASE_MEMORY: u64 = 96 << 20;

/// PIN hashes at once on `cpus` CPUs within a memory limit of `limit` bytes: one a CPU, but
/// not more than fit beside [`DAEMON_BASE_MEMORY`] (at least one).
pub fn pin_hashes_that_fit(cpus: usize, limit: Option<u64>) -> usize {
    let fit = limit.map_or(usize::MAX, |l| {
        let room = l.saturating_sub(DAEMON_BASE_MEMORY) / crate::crypto::PIN_HASH_MEMORY as u64;
        usize::try_from(room).unwrap_or(usize::MAX)
    });
    cpus.min(fit).max(1)
}
