//! The words of an authentication decision, below the login wing (`crate::login`) and the
//! enrollment: the [`Conversation`] (how we talk to the user), the [`Clock`] (the source of
//! time), a [`Login`] and its [`Options`], the [`Verdict`] and [`Outcome`]; the failure counts
//! an attempt takes its place in (`lockout`) and where it comes from ([`Source`]). Nothing
//! here knows about PAM. The entry point that picks local or remote mode is
//! [`crate::login::authenticate`].

pub(crate) mod lockout;
mod source;
/// Test doubles of the engine's seams (a fixed clock, a scripted conversation): built for
/// tests and with the `testing` feature only.
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use lockout::{locked_message, missed_message, Lockout};
pub use source::Source;
// The accounts seam has its own room below the engine (the policy rules take it too); its
// names stay reachable here.
pub use crate::accounts::{Accounts, SystemAccounts};

use crate::config::{Config, OtpPin};
use crate::crypto::{Secret, StoreKey};
use crate::error::Error;
use crate::store::{AuditEntry, AuditResult, SqliteStore};

/// How the engine talks to the user.
pub trait Conversation {
    /// Asks for input. `Ok(None)` is an answer of NULL (the user gave nothing at all).
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Option<Secret>, Error>;
    /// Shows a line of information.
    fn info(&mut self, text: &str) -> Result<(), Error>;
    /// Shows an error line.
    fn error(&mut self, text: &str) -> Result<(), Error>;
    /// Says that the next message may take up to `seconds` (push polling), so that a client
    /// with a shorter timeout (the PAM module talking to the daemon) waits that long.
    fn waiting(&mut self, _seconds: u64) -> Result<(), Error> {
        Ok(())
    }
}

/// Longer passes (and, in remote mode, challenge answers) are refused before any work: no
/// PIN+OTP is this long, hashing megabytes per token would let one login hold the store, and a
/// remote server is not asked. The local and the remote engine refuse alike.
pub const MAX_PASS_LEN: usize = 1024;

/// A hidden prompt whose NULL answer is an error: a login can't go on without a pass.
pub(crate) fn ask(conv: &mut impl Conversation, text: &str) -> Result<Secret, Error> {
    answer(conv, text, false)
}

/// A prompt (echoed or not) whose NULL answer is an error: the user closed the dialogue.
pub(crate) fn answer(
    conv: &mut impl Conversation,
    text: &str,
    echo: bool,
) -> Result<Secret, Error> {
    conv.prompt(text, echo)?
        .ok_or_else(|| Error::conversation("the conversation answered NULL"))
}

/// The first prompt: the service's `prompt=`, else the PIN prompt when the pass starts with the
/// token PIN (`otppin = token`), else the OTP prompt. The local and the remote engine ask alike.
pub(crate) fn first_prompt<'a>(cfg: &'a Config, opts: &'a Options) -> &'a str {
    match (&opts.prompt, cfg.auth.otppin) {
        (Some(p), _) => p,
        (None, OtpPin::Token) => &cfg.prompts.pin,
        (None, _) => &cfg.prompts.otp,
    }
}

/// The source of time, in Unix seconds. Read when a step starts, never deep inside a check.
///
/// The engine waits on it too (push polling): a test clock (`testing::FixedClock`, built for
/// tests only) makes a wait take no time. Outside this trait's implementations the engine reads no
/// time and sleeps not (`crates/engine/clippy.toml`); I/O deadlines are [`crate::os::io_time`]'s.
pub trait Clock {
    fn now(&self) -> u64;
    /// Waits `d` (a real clock sleeps; a test clock moves on).
    fn sleep(&self, d: std::time::Duration);
}

pub struct SystemClock;

#[allow(clippy::disallowed_methods)] // the clock of the real world
impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn sleep(&self, d: std::time::Duration) {
        std::thread::sleep(d)
    }
}

/// Who is logging in, from where, through what.
#[derive(Debug, Clone, Default)]
pub struct Login {
    pub service: String,
    pub rhost: String,
    /// The user name as given. A name that is not valid UTF-8 or has control characters never
    /// matches a token, but goes through the same prompts as any unknown user.
    pub user: String,
    /// PAM_AUTHTOK set by an earlier module, if any.
    pub authtok: Option<Secret>,
    /// PAM_TTY, "" when none was set.
    pub tty: String,
    /// PAM_RUSER (who asks, under `su` and `sudo`), "" when none was set.
    pub ruser: String,
    /// The uid of the process that asks (the daemon's caller, SO_PEERCRED; whoever runs
    /// `tessera check`). Only root may set the service, remote host and user it asks for
    /// freely: for any other caller those are its own words, and it is its own source.
    pub caller: u32,
    /// The real uid of the process that called PAM, as the module sends it (`getuid()`): who
    /// ran `sudo` or `su`, or a setuid helper. Where no remote host is named, a root caller's
    /// failures count on it ([`Source`]).
    pub uid: u32,
}

/// Per-service switches, from the PAM line (or the command's flags).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub use_first_pass: bool,
    pub try_first_pass: bool,
    /// A user without active tokens gets [`Verdict::NoToken`] instead of a failure.
    pub nullok: bool,
    /// Overrides the first prompt.
    pub prompt: Option<String>,
    pub debug: bool,
}

/// The outcome of one authentication.
#[derive(Debug)]
pub enum Verdict {
    Accept {
        serial: String,
    },
    /// Wrong PIN or OTP, replay, expired or answered challenge, unknown user, disabled token.
    Reject {
        reason: String,
    },
    /// Every token of the user is locked by its fail counter (`lock_scope = "token"`).
    Locked {
        serial: String,
    },
    /// The attempt's source is locked by its failures (`lock_scope = "source"`), until
    /// `opens_at` (`None`: until an admin opens it).
    SourceLocked {
        source: String,
        opens_at: Option<u64>,
    },
    /// The attempt's class of sources is locked for the user by its failures summed
    /// (`account_max_fail`), until `opens_at`.
    ClassLocked {
        class: crate::store::SourceClass,
        opens_at: Option<u64>,
    },
    /// The user has no token and `nullok` is set.
    NoToken,
    /// The user has no token and `pass_on_no_token` is set.
    PassOnNoToken,
    /// A `[[policy]]` rule says no second factor here (`skip`, or a grace window): PAM_IGNORE.
    Skipped {
        reason: String,
    },
    /// The store, key, config or server could not be used.
    Unavailable(Error),
    /// The conversation failed or answered NULL.
    ConversationFailed(String),
    /// A registration code matched: the login goes on with the enrollment of the user's new
    /// token ([`crate::login::authenticate`] runs it and gives the verdict of that).
    Enroll {
        /// The registration token, used up once the new token is saved.
        registration: String,
        user: String,
        realm: String,
    },
}

impl Verdict {
    pub fn is_accept(&self) -> bool {
        matches!(self, Verdict::Accept { .. } | Verdict::PassOnNoToken)
    }

    /// For a refusal by a locked source or class: what the user is told.
    pub fn locked_message(&self, now: u64) -> Option<String> {
        match self {
            Verdict::SourceLocked { opens_at, .. } | Verdict::ClassLocked { opens_at, .. } => {
                Some(locked_message(*opens_at, now))
            }
            _ => None,
        }
    }
}

/// A verdict and the audit events of the attempts that led to it (already written to the
/// audit table where the store could be used; the caller sends them to syslog).
#[derive(Debug)]
pub struct Outcome {
    pub verdict: Verdict,
    pub events: Vec<AuditEntry>,
}

impl Outcome {
    pub fn unavailable(e: Error, login: &Login, now: u64) -> Outcome {
        let event = AuditEntry {
            time: now,
            service: login.service.clone(),
            rhost: login.rhost.clone(),
            user: login.user.clone(),
            result: AuditResult::Error,
            reason: e.to_string(),
            caller: Some(login.caller),
            ..AuditEntry::default()
        };
        Outcome {
            verdict: Verdict::Unavailable(e),
            events: vec![event],
        }
    }
}

/// Opens the store named by the config.
pub fn open_store(cfg: &Config) -> Result<SqliteStore, Error> {
    Ok(
        SqliteStore::open(&cfg.store.path, cfg.store.busy_timeout_ms)?
            .keep_audit_days(cfg.audit.keep_days),
    )
}

/// Loads the key that seals OTP keys, refusing a link, a key file others can read or write,
/// or one in a directory they can write ([`StoreKey::load`]).
pub fn load_key(cfg: &Config) -> Result<StoreKey, Error> {
    StoreKey::load(&cfg.store.key_file)
}

/// The (user, realm) whose tokens a PAM user name stands for, or `None` for a name that is no
/// account of this host (an unknown user: prompted and refused like any other, never waved
/// through by `nullok`).
///
/// Tokens are looked up by the account's own name, not the name typed: with SSSD or AD `ALICE`
/// and `alice` are one account, and a byte-for-byte lookup of `ALICE` would find no token.
/// With `[auth].realm_separator`, a name that is an account as a whole (SSSD's
/// `alice@ad.example`) is split after it is resolved; otherwise the part before the separator
/// must be an account and the part after it is the realm.
pub fn resolve_user(cfg: &Config, accounts: &dyn Accounts, name: &str) -> Option<(String, String)> {
    if !valid_user_name(name) {
        return None;
    }
    if let Some(canonical) = accounts.canonical(name) {
        return Some(split_realm(cfg, &canonical));
    }
    let (user, realm) = split_realm(cfg, name);
    if user == name {
        return None;
    }
    let canonical = accounts.canonical(&user)?;
    Some((canonical, realm))
}

/// User names that can be looked up. Others are treated as unknown users.
pub fn valid_user_name(u: &str) -> bool {
    // U+FFFD stands for bytes that were not UTF-8 in the name PAM gave us.
    !u.is_empty() && u.len() <= 256 && !u.chars().any(|c| c.is_control() || c == '\u{fffd}')
}

/// Splits `user@realm` when `[auth].realm_separator` is set; otherwise the default realm.
pub fn split_realm(cfg: &Config, user: &str) -> (String, String) {
    if let Some(sep) = cfg.auth.realm_separator.as_deref() {
        if let Some((u, r)) = user.rsplit_once(sep) {
            if !u.is_empty() && !r.is_empty() {
                return (u.to_string(), r.to_string());
            }
        }
    }
    (user.to_string(), cfg.auth.default_realm.clone())
}

/// A new transaction id: 20 random decimal digits, as privacyIDEA makes them.
pub fn new_transaction_id() -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An NSS that matches names case-insensitively, as SSSD with AD does.
    struct CaseInsensitive(&'static [&'static str]);

    impl Accounts for CaseInsensitive {
        fn canonical(&self, name: &str) -> Option<String> {
            self.0
                .iter()
                .find(|a| a.eq_ignore_ascii_case(name))
                .map(|a| a.to_string())
        }
    }

    #[test]
    fn users_are_resolved_to_their_accounts() {
        let nss = CaseInsensitive(&["alice", "bob@ad.example"]);
        let mut cfg = Config::default();
        let d = |u: &str| Some((u.to_string(), "default".to_string()));
        assert_eq!(resolve_user(&cfg, &nss, "ALICE"), d("alice"));
        assert_eq!(resolve_user(&cfg, &nss, "alice"), d("alice"));
        assert_eq!(resolve_user(&cfg, &nss, "mallory"), None);
        assert_eq!(
            resolve_user(&cfg, &nss, "alice@corp"),
            None,
            "no separator set"
        );
        assert_eq!(
            resolve_user(&cfg, &nss, "BOB@AD.example"),
            d("bob@ad.example")
        );
        assert_eq!(resolve_user(&cfg, &nss, "ali\u{fffd}ce"), None);
        assert_eq!(resolve_user(&cfg, &nss, ""), None);

        cfg.auth.realm_separator = Some("@".into());
        let r = |u: &str, r: &str| Some((u.to_string(), r.to_string()));
        assert_eq!(resolve_user(&cfg, &nss, "Alice@corp"), r("alice", "corp"));
        assert_eq!(resolve_user(&cfg, &nss, "mallory@corp"), None);
        // A whole name that is an account is resolved first, then split.
        assert_eq!(
            resolve_user(&cfg, &nss, "BOB@AD.EXAMPLE"),
            r("bob", "ad.example")
        );
        assert_eq!(resolve_user(&cfg, &nss, "alice"), r("alice", "default"));
    }
}
