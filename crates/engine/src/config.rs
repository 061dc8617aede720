//! `/etc/tessera/tessera.toml`: every key has a default; an unknown key or a bad value is an
//! error that names the file, the line and the key.

use crate::error::{Error, Kind, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const DEFAULT_PATH: &str = "/etc/tessera/tessera.toml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub store: StoreConfig,
    pub auth: AuthConfig,
    pub prompts: Prompts,
    pub remote: RemoteConfig,
    pub sms: SmsConfig,
    pub email: EmailConfig,
    pub audit: AuditConfig,
    /// `[enroll]`: who may enroll a token for themselves (`tessera enroll`).
    pub enroll: EnrollConfig,
    /// `[[policy]]`: who needs a second factor, where (see [`crate::policy`]).
    pub policy: Vec<crate::policy::Rule>,
    /// The file this was read from, for messages; not a key.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub key_file: PathBuf,
    /// How long a login waits for a store held by another writer, in milliseconds.
    pub busy_timeout_ms: u64,
    /// No longer used: every attempt's counts are committed before its reply, so that no
    /// crash of the daemon gives a guess back. Still read, so that a config of an older
    /// version loads; `tessera doctor` says it can go.
    pub commit_behind_ms: Option<u64>,
}

/// The audit table: how long its rows are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Rows older than this many days are pruned as new attempts are written; 0 keeps all.
    pub keep_days: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig { keep_days: 180 }
    }
}

/// Self-service enrollment (`tessera enroll`, through the daemon).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrollConfig {
    /// The groups whose members may enroll themselves; empty (the default): nobody.
    pub groups: Vec<String>,
    /// The token types they may make: `totp`, `hotp` (the types an authenticator app holds).
    pub types: Vec<String>,
    /// The issuer an authenticator app shows for the new token (the otpauth URI's `issuer`).
    pub issuer: String,
}

impl Default for EnrollConfig {
    fn default() -> Self {
        EnrollConfig {
            groups: Vec::new(),
            types: vec!["totp".into()],
            issuer: "tessera".into(),
        }
    }
}

/// The token types a user may enroll for themselves: those whose key an app takes from a QR
/// code.
pub const SELF_ENROLL_TYPES: [crate::tokens::TokenType; 2] = [
    crate::tokens::TokenType::Totp,
    crate::tokens::TokenType::Hotp,
];

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Prompts {
    /// The first prompt when the pass starts with the token PIN.
    pub pin: String,
    /// The first prompt when only an OTP is asked (`otppin` = none or system).
    pub otp: String,
    pub hotp: String,
    pub totp: String,
    pub email: String,
    pub sms: String,
    pub ocra: String,
    /// Asked when `tan` is in `challenge_response` and the PIN alone was typed.
    pub tan: String,
    /// Shown when one PIN opened challenges on several tokens.
    pub multi: String,
}

impl Prompts {
    /// The message of a challenge of the kind a token type names.
    pub fn challenge(&self, kind: crate::tokens::ChallengePrompt) -> &str {
        use crate::tokens::ChallengePrompt as P;
        match kind {
            P::Otp => &self.otp,
            P::Hotp => &self.hotp,
            P::Totp => &self.totp,
            P::Email => &self.email,
            P::Sms => &self.sms,
            P::Ocra => &self.ocra,
            P::Tan => &self.tan,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    Fail,
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Privacyidea,
    Linotp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteConfig {
    #[serde(deserialize_with = "crate::text_list::one_or_many")]
    pub url: Vec<String>,
    pub realm: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub verify_tls: bool,
    pub timeout: u64,
    pub push_timeout: u64,
    pub fallback: Fallback,
    pub dialect: Dialect,
    /// The proxy for the validate requests (`http://`, `https://` or `socks5://` URL). Never
    /// taken from the environment: `su` runs the module with the invoking user's environment.
    pub proxy: Option<String>,
    /// Plain `http://` URLs carry PINs and OTPs unencrypted: refused unless set.
    pub allow_plain_http: bool,
    /// After this many failed exchanges in a row a server is skipped (0: never), for
    /// `down_for` seconds, by every login of the daemon.
    pub down_after: u32,
    pub down_for: u64,
    /// Keep the offline values a privacyIDEA server hands out with an accepted PIN+OTP (its
    /// `offline` machine application), and accept them first, without the server: a laptop
    /// logs in while the server is out of reach. Needs the local store.
    pub offline: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum HttpMethod {
    #[serde(alias = "get")]
    GET,
    #[serde(alias = "post")]
    POST,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsBody {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// A JSON object of the parameters (strings).
    Json,
}

/// The HTTP gateway that sends SMS: the parameters go in the query (GET) or the body (POST).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// The gateway URL; `{phone}` and `{otp}` may appear in it (percent-encoded).
    pub url: Option<String>,
    pub method: HttpMethod,
    /// How a POST carries the parameters.
    pub body: SmsBody,
    /// Name = value template; `{phone}`, `{otp}`, `{serial}`, `{user}` and `{validity}` are
    /// replaced.
    pub parameters: std::collections::BTreeMap<String, String>,
    /// Extra request headers, same placeholders.
    pub headers: std::collections::BTreeMap<String, String>,
    /// A 2xx answer is a success unless this is set and missing from the answer body.
    pub success_contains: Option<String>,
    /// A 2xx answer whose body contains this is a failure.
    pub fail_contains: Option<String>,
    /// Seconds for the whole request.
    pub timeout: u64,
    /// CA bundle for an https gateway; unset: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Digits of the OTP sent.
    pub otp_length: u32,
    /// Seconds the OTP answers its challenge.
    pub validity: u64,
    /// SMS sent per user (and realm) in any hour, all the user's SMS tokens together; past it a
    /// PIN-only pass sends none. 0: no limit.
    pub max_per_hour: u32,
    /// The proxy for the gateway request; never taken from the environment.
    pub proxy: Option<String>,
    /// A plain `http://` gateway URL carries the OTP unencrypted: refused unless set.
    pub allow_plain_http: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP, then STARTTLS, which the relay must offer.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS at all: only for a relay on this host.
    None,
}

/// How OTP mails leave: an SMTP relay, or a sendmail-style command.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: SmtpTls,
    /// CA bundle for the relay's certificate; unset: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// SMTP AUTH user; needs `password_file`.
    pub username: Option<String>,
    /// A file (not readable by group or others) holding the SMTP AUTH password.
    pub password_file: Option<PathBuf>,
    /// A sendmail-style command (e.g. "/usr/sbin/sendmail -t -i") that reads the whole
    /// message on stdin; set, it is used instead of SMTP.
    pub sendmail: Option<String>,
    pub from: String,
    /// Templates; `{otp}`, `{user}`, `{serial}`, `{email}` and `{validity}` are replaced.
    pub subject: String,
    pub body: String,
    /// Seconds for a whole delivery: name lookup, connect, TLS and every SMTP exchange (or for the
    /// command to finish).
    pub timeout: u64,
    pub otp_length: u32,
    pub validity: u64,
    /// Mails sent per user (and realm) in any hour, all the user's e-mail tokens together; past
    /// it a PIN-only pass sends none. 0: no limit.
    pub max_per_hour: u32,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            url: None,
            method: HttpMethod::POST,
            body: SmsBody::Form,
            parameters: [
                ("phone".to_string(), "{phone}".to_string()),
                (
                    "text".to_string(),
                    "Your one-time password is {otp}".to_string(),
                ),
            ]
            .into_iter()
            .collect(),
            headers: Default::default(),
            success_contains: None,
            fail_contains: None,
            timeout: 10,
            ca_file: None,
            otp_length: 6,
            validity: 300,
            max_per_hour: 10,
            proxy: None,
            allow_plain_http: false,
        }
    }
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            smtp_host: "localhost".into(),
            smtp_port: 25,
            tls: SmtpTls::Starttls,
            ca_file: None,
            username: None,
            password_file: None,
            sendmail: None,
            from: "tessera@localhost".into(),
            subject: "Your one-time password".into(),
            body: "Your one-time password is {otp}.\nIt is valid for {validity} seconds.\n".into(),
            timeout: 10,
            otp_length: 6,
            validity: 300,
            max_per_hour: 10,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("/var/lib/tessera/tessera.db"),
            key_file: PathBuf::from("/etc/tessera/secret.key"),
            busy_timeout_ms: 5000,
            commit_behind_ms: None,
        }
    }
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
                pin_hashes_that_fit(cpus, crate::sys::memory_limit())
            }),
        }
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

impl Default for Prompts {
    fn default() -> Self {
        Prompts {
            pin: "PIN: ".into(),
            otp: "OTP: ".into(),
            hotp: "Please enter your otp value: ".into(),
            totp: "Please enter your otp value: ".into(),
            email: "Please enter the OTP sent to {email}: ".into(),
            sms: "Please enter the OTP sent to {phone}: ".into(),
            ocra: "Please answer the challenge {question}: ".into(),
            tan: "Please enter one of your recovery codes: ".into(),
            multi: "Please enter the OTP of one of your tokens: ".into(),
        }
    }
}

impl Default for RemoteConfig {
    fn default() -> Self {
        RemoteConfig {
            url: Vec::new(),
            realm: None,
            ca_file: None,
            verify_tls: true,
            timeout: 5,
            push_timeout: 60,
            fallback: Fallback::Fail,
            dialect: Dialect::Privacyidea,
            proxy: None,
            allow_plain_http: false,
            down_after: 3,
            down_for: 30,
            offline: false,
        }
    }
}

impl Config {
    /// Reads and validates a config file. A missing file is an error: the module fails closed
    /// rather than guess where the store is.
    pub fn load(path: &Path) -> Result<Config> {
        use std::io::Read;
        let config_error = |e: std::io::Error| Error::io(Kind::Config, path, e);
        // Read from the descriptor that was checked (no link, not writable by others, safe
        // directories): never opened a second time by name.
        let mut file =
            crate::fsperm::open_checked(path, crate::fsperm::Access::Readable, config_error)?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(config_error)?;
        let mut cfg = Config::parse(&text, path)?;
        cfg.source = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// Parses config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let msg = e.message().replace('\n', " ");
            match line {
                Some(l) => {
                    // Name the key on that line too: serde's message names only the value.
                    let key = text
                        .lines()
                        .nth(l - 1)
                        .and_then(|t| t.split_once('='))
                        .map(|(k, _)| format!("key `{}`: ", k.trim()))
                        .unwrap_or_default();
                    Error::Config(format!("{}:{l}: {key}{msg}", path.display()))
                }
                None => Error::Config(format!("{}: {msg}", path.display())),
            }
        })?;
        cfg.validate().map_err(|(key, msg)| {
            let line = find_key_line(text, key);
            Error::Config(format!("{}:{line}: key `{key}`: {msg}", path.display()))
        })?;
        for (i, rule) in cfg.policy.iter().enumerate() {
            rule.validate().map_err(|(key, msg)| {
                let line = find_policy_key_line(text, i, key);
                Error::Config(format!(
                    "{}:{line}: key `{key}` of [[policy]] rule {}: {msg}",
                    path.display(),
                    i + 1
                ))
            })?;
        }
        Ok(cfg)
    }

    /// Checks of values that TOML types alone can't express. The key of an error is named with
    /// its section, `remote.timeout`, so that its line is looked up in the right table.
    fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        let a = &self.auth;
        for t in &a.challenge_response {
            if !crate::tokens::TokenType::ALL.iter().any(|k| k.name() == t) {
                return Err((
                    "auth.challenge_response",
                    format!("unknown token type \"{t}\""),
                ));
            }
        }
        if a.challenge_validity == 0 {
            return Err((
                "auth.challenge_validity",
                "must be at least 1 second".into(),
            ));
        }
        if a.max_fail == 0 {
            return Err(("auth.max_fail", "must be at least 1".into()));
        }
        if a.account_max_fail == 0 || a.account_max_fail > 100_000 {
            return Err((
                "auth.account_max_fail",
                "must be between 1 and 100000".into(),
            ));
        }
        if a.source_prefix_v6 == 0 || a.source_prefix_v6 > 128 {
            return Err(("auth.source_prefix_v6", "must be between 1 and 128".into()));
        }
        if a.familiar_days > 3650 {
            return Err(("auth.familiar_days", "must be at most 3650".into()));
        }
        if a.pin_hash_parallel.is_some_and(|n| n == 0 || n > 256) {
            return Err(("auth.pin_hash_parallel", "must be between 1 and 256".into()));
        }
        if a.pin_min_length == 0 || a.pin_min_length > crate::pin_rule::MAX_PIN {
            return Err((
                "auth.pin_min_length",
                format!("must be between 1 and {}", crate::pin_rule::MAX_PIN),
            ));
        }
        if a.hotp_window > 1000 {
            return Err(("auth.hotp_window", "must be at most 1000".into()));
        }
        if a.totp_window > 10 {
            return Err(("auth.totp_window", "must be at most 10 steps".into()));
        }
        if a.realm_separator.as_deref() == Some("") {
            return Err((
                "auth.realm_separator",
                "must not be empty (leave it out instead)".into(),
            ));
        }
        if self.store.path.as_os_str().is_empty() {
            return Err(("store.path", "must not be empty".into()));
        }
        if a.mode == Mode::Remote && self.remote.url.is_empty() {
            return Err(("remote.url", "mode = \"remote\" needs [remote] url".into()));
        }
        if self.remote.timeout == 0 || self.remote.timeout > 300 {
            return Err(("remote.timeout", "must be between 1 and 300 seconds".into()));
        }
        if self.remote.down_after > 1000 {
            return Err((
                "remote.down_after",
                "must be at most 1000 (0 turns skipping off)".into(),
            ));
        }
        if self.remote.down_for == 0 || self.remote.down_for > 3600 {
            return Err((
                "remote.down_for",
                "must be between 1 and 3600 seconds".into(),
            ));
        }
        for t in &self.enroll.types {
            if !SELF_ENROLL_TYPES.iter().any(|k| k.name() == t) {
                return Err((
                    "enroll.types",
                    format!("\"{t}\" can't be enrolled by users (totp or hotp)"),
                ));
            }
        }
        if self.enroll.issuer.is_empty() || self.enroll.issuer.chars().any(char::is_control) {
            return Err((
                "enroll.issuer",
                "must be a name without control characters".into(),
            ));
        }
        let (e, m) = (&self.email, &self.sms);
        for (sec, len, validity, timeout) in [
            ("email", e.otp_length, e.validity, e.timeout),
            ("sms", m.otp_length, m.validity, m.timeout),
        ] {
            let key = |k: &'static str| -> &'static str {
                match (sec, k) {
                    ("email", "otp_length") => "email.otp_length",
                    ("email", "validity") => "email.validity",
                    ("email", _) => "email.timeout",
                    (_, "otp_length") => "sms.otp_length",
                    (_, "validity") => "sms.validity",
                    _ => "sms.timeout",
                }
            };
            if !(4..=10).contains(&len) {
                return Err((key("otp_length"), "must be 4 to 10 digits".into()));
            }
            if validity == 0 {
                return Err((key("validity"), "must be at least 1 second".into()));
            }
            if timeout == 0 || timeout > 300 {
                return Err((key("timeout"), "must be between 1 and 300 seconds".into()));
            }
        }
        if !crate::tokens::email::valid_address(&e.from) {
            return Err((
                "email.from",
                format!("\"{}\" is not a plain user@domain address", e.from),
            ));
        }
        if e.smtp_host.is_empty()
            || e.smtp_host
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(("email.smtp_host", "must be a host name or address".into()));
        }
        if e.smtp_port == 0 {
            return Err(("email.smtp_port", "must be 1 to 65535".into()));
        }
        if e.username.is_some() != e.password_file.is_some() {
            return Err((
                "email.username",
                "username and password_file go together".into(),
            ));
        }
        if e.sendmail
            .as_deref()
            .is_some_and(|c| c.split_whitespace().next().is_none())
        {
            return Err(("email.sendmail", "must name a command".into()));
        }
        for t in [&e.subject, &e.from] {
            if t.contains(['\r', '\n']) {
                return Err(("email.subject", "must be one line".into()));
            }
        }
        if let Some(u) = &m.url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err((
                    "sms.url",
                    "the SMS gateway URL must start with http:// or https://".into(),
                ));
            }
            if u.starts_with("http://") && !m.allow_plain_http {
                return Err(("sms.url", PLAIN_HTTP.replace("{what}", "the OTP")));
            }
        }
        if let Some(u) = self.remote.url.iter().find(|u| u.starts_with("http://")) {
            if !self.remote.allow_plain_http {
                let what = format!("`{u}` carries PINs and OTPs");
                return Err(("remote.url", PLAIN_HTTP.replace("{what}", &what)));
            }
        }
        for (key, proxy) in [
            ("remote.proxy", &self.remote.proxy),
            ("sms.proxy", &m.proxy),
        ] {
            if let Some(p) = proxy {
                proxy_of(p).map_err(|e| (key, e))?;
            }
        }
        Ok(())
    }

    /// Where this config came from, for messages.
    pub fn source_name(&self) -> String {
        self.source
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(built-in defaults)".into())
    }
}

/// Why a plain `http://` URL is refused; `{what}` names what it would carry.
const PLAIN_HTTP: &str = "plain http:// sends {what} unencrypted; use https://, or set \
    allow_plain_http = true in this section if that is really wanted (e.g. a server on this host)";

/// The proxy of a `proxy` key, checked: only the schemes ureq speaks, and a host.
pub fn proxy_of(url: &str) -> std::result::Result<ureq::Proxy, String> {
    const SCHEMES: [&str; 5] = [
        "http://",
        "https://",
        "socks4://",
        "socks4a://",
        "socks5://",
    ];
    if !SCHEMES.iter().any(|s| url.starts_with(s)) {
        return Err(format!(
            "proxy \"{}\" must start with http://, https://, socks4://, socks4a:// or socks5://",
            url.escape_debug()
        ));
    }
    ureq::Proxy::new(url).map_err(|e| format!("proxy \"{}\": {e}", url.escape_debug()))
}

/// The line of `key` in the `n`-th (0-based) `[[policy]]` table, or 0.
fn find_policy_key_line(text: &str, n: usize, key: &str) -> usize {
    let mut seen = 0;
    let mut inside = false;
    for (i, l) in text.lines().enumerate() {
        let l = l.trim_start();
        if l.starts_with('[') {
            inside = l.starts_with("[[policy]]") && {
                seen += 1;
                seen == n + 1
            };
            continue;
        }
        if inside
            && l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return i + 1;
        }
    }
    0
}

/// The line on which `section.key` is set, or 0, for messages about values that parsed but are
/// wrong. Only lines inside `[section]` count: several sections have a key of the same name
/// (`timeout` in `[email]`, `[sms]` and `[remote]`, `url` in `[sms]` and `[remote]`), and the
/// first one in the file is not necessarily the wrong one.
fn find_key_line(text: &str, dotted: &str) -> usize {
    // `validate` names every key so; a bare one would have no line to be found on.
    let Some((section, key)) = dotted.split_once('.') else {
        return 0;
    };
    let mut current = "";
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            if let Some(h) = l.strip_prefix('[') {
                // `[remote]`, `[ remote ] # comment`; `[[policy]]` gives `[policy`, no match.
                current = h.split(']').next().unwrap_or("").trim();
                return false;
            }
            current == section
                && l.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_hashes_at_once_fit_the_memory_limit() {
        assert_eq!(pin_hashes_that_fit(2, None), 2);
        assert_eq!(pin_hashes_that_fit(16, None), 16);
        // The unit's MemoryMax=256M: 8 places beside the base, whatever the CPUs.
        assert_eq!(pin_hashes_that_fit(16, Some(256 << 20)), 8);
        assert_eq!(pin_hashes_that_fit(4, Some(256 << 20)), 4);
        assert_eq!(pin_hashes_that_fit(8, Some(64 << 20)), 1, "at least one");
    }

    fn parse(t: &str) -> Result<Config> {
        Config::parse(t, Path::new("/x/tessera.toml"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.auth.max_fail, 10);
        assert_eq!(c.auth.challenge_response, ["hotp", "totp"]);
        assert_eq!(c.prompts.pin, "PIN: ");
        assert_eq!(c.auth.otppin, OtpPin::Token);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = parse("[auth]\nmax_fail = 3\nmax_fails = 4\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/x/tessera.toml:3"), "{e}");
        assert!(e.contains("max_fails"), "{e}");
    }

    #[test]
    fn bad_value_names_file_line_and_key() {
        let e = parse("[auth]\n\nmax_fail = 0\n").unwrap_err().to_string();
        assert!(
            e.contains("/x/tessera.toml:3") && e.contains("max_fail"),
            "{e}"
        );
        let e = parse("[auth]\notppin = \"maybe\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":2") && e.contains("otppin"), "{e}");
        let e = parse("[auth]\nchallenge_response = [\"hotp\", \"yubikey\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("yubikey"), "{e}");
        let e = parse("[remote]\ndown_for = 0\n").unwrap_err().to_string();
        assert!(e.contains(":2") && e.contains("down_for"), "{e}");
        let e = parse("[[policy]]\nrhost = \"10.0.0.0/8\"\n[[policy]]\naction = \"skip\"\nrhost = \"10.0.0.0/99\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(":5") && e.contains("rhost") && e.contains("rule 2"),
            "{e}"
        );
        let e = parse("[[policy]]\naction = \"maybe\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":2") && e.contains("action"), "{e}");
    }

    #[test]
    fn a_bad_value_is_named_in_its_own_section() {
        // `timeout` is a key of [email] too: the line is the one of [remote].
        let e = parse("[email]\ntimeout = 5\n\n[remote]\ntimeout = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/x/tessera.toml:5: key `remote.timeout`: "),
            "{e}"
        );
        // `url` of [sms] comes first; the one mode = "remote" misses is [remote]'s.
        let text = "[sms]\nurl = \"https://gw.example/send\"\n\n[auth]\nmode = \"remote\"\n\n\
                    [remote]\nurl = []\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains("/x/tessera.toml:8: key `remote.url`: "), "{e}");
        // A header with spaces and a comment is still that section.
        let e = parse("[email]\ntimeout = 5\n[ remote ] # the server\ntimeout = 301\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/x/tessera.toml:4: "), "{e}");
    }

    #[test]
    fn shipped_default_config_parses_to_the_defaults() {
        let text = include_str!("../../../conf/tessera.toml");
        let c = parse(text).unwrap();
        let d = Config::default();
        assert_eq!(c.store.path, d.store.path);
        assert_eq!(c.auth.hotp_window, d.auth.hotp_window);
        assert_eq!(c.prompts.ocra, d.prompts.ocra);
        assert_eq!(c.remote.timeout, d.remote.timeout);
        assert_eq!(
            (c.remote.down_after, c.remote.down_for),
            (d.remote.down_after, d.remote.down_for)
        );
        assert_eq!(c.prompts.email, d.prompts.email);
        assert_eq!(c.prompts.sms, d.prompts.sms);
        assert_eq!(c.prompts.tan, d.prompts.tan);
        assert_eq!(c.email.smtp_host, d.email.smtp_host);
        assert_eq!(c.email.smtp_port, d.email.smtp_port);
        assert_eq!(c.email.tls, d.email.tls);
        assert_eq!(c.email.from, d.email.from);
        assert_eq!(c.email.subject, d.email.subject);
        assert_eq!(c.email.body, d.email.body);
        assert_eq!(c.email.timeout, d.email.timeout);
        assert_eq!(c.email.otp_length, d.email.otp_length);
        assert_eq!(c.email.validity, d.email.validity);
        assert_eq!(c.sms.method, d.sms.method);
        assert_eq!(c.sms.body, d.sms.body);
        assert_eq!(c.sms.parameters, d.sms.parameters);
        assert_eq!(c.sms.timeout, d.sms.timeout);
        assert_eq!(c.sms.otp_length, d.sms.otp_length);
        assert_eq!(c.sms.validity, d.sms.validity);
        assert_eq!(c.email.max_per_hour, d.email.max_per_hour);
        assert_eq!(c.sms.max_per_hour, d.sms.max_per_hour);
        assert_eq!(c.audit.keep_days, d.audit.keep_days);
    }

    #[test]
    fn email_and_sms_keys_are_checked() {
        let c = parse(
            "[email]\nsmtp_host = \"mail.example.org\"\nsmtp_port = 587\ntls = \"none\"\n\
                       [sms]\nurl = \"https://sms.example.org/send?to={phone}\"\nmethod = \"GET\"\n\
                       [sms.headers]\nAuthorization = \"Bearer x\"\n",
        )
        .unwrap();
        assert_eq!(c.email.tls, SmtpTls::None);
        assert_eq!(c.sms.method, HttpMethod::GET);
        assert_eq!(c.sms.headers["Authorization"], "Bearer x");
        for (text, key) in [
            ("[email]\notp_length = 3\n", "otp_length"),
            ("[sms]\nvalidity = 0\n", "validity"),
            ("[email]\nfrom = \"not an address\"\n", "from"),
            ("[email]\nusername = \"u\"\n", "username"),
            ("[sms]\nurl = \"ftp://x\"\n", "url"),
            ("[email]\ntls = \"maybe\"\n", "tls"),
            ("[sms]\nbody = \"xml\"\n", "body"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(":2"), "{text}: {e}");
        }
    }

    #[test]
    fn send_limits_default_to_ten_and_take_zero_for_none() {
        let c = parse("").unwrap();
        assert_eq!((c.email.max_per_hour, c.sms.max_per_hour), (10, 10));
        let c = parse("[email]\nmax_per_hour = 0\n[sms]\nmax_per_hour = 3\n").unwrap();
        assert_eq!((c.email.max_per_hour, c.sms.max_per_hour), (0, 3));
        for text in [
            "[email]\n\nmax_per_hour = -1\n",
            "[sms]\n\nmax_per_hour = \"ten\"\n",
            "[email]\n\nmax_per_hour = 1.5\n",
            "[sms]\n\nmax_per_hour = 4294967296\n",
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(
                e.contains("/x/tessera.toml:3: key `max_per_hour`: ") && !e.contains('\n'),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn plain_http_and_proxies_are_explicit() {
        for (text, key) in [
            ("[remote]\nurl = \"http://pi.example.org\"\n", "remote.url"),
            ("[sms]\nurl = \"http://sms.example.org/\"\n", "sms.url"),
            ("[remote]\nproxy = \"ftp://p\"\n", "remote.proxy"),
            ("[sms]\nproxy = \"proxy.example.org:3128\"\n", "sms.proxy"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(":2"), "{text}: {e}");
        }
        let e = parse("[remote]\nurl = \"http://127.0.0.1:5000\"\n").unwrap_err();
        assert!(e.to_string().contains("allow_plain_http"), "{e}");
        let c = parse(
            "[remote]\nurl = \"http://127.0.0.1:5000\"\nallow_plain_http = true\n\
             proxy = \"http://proxy.example.org:3128\"\n\
             [sms]\nurl = \"http://127.0.0.1/send\"\nallow_plain_http = true\n",
        )
        .unwrap();
        assert_eq!(
            c.remote.proxy.as_deref(),
            Some("http://proxy.example.org:3128")
        );
        assert!(c.sms.proxy.is_none() && c.sms.allow_plain_http);
    }

    #[test]
    fn remote_url_may_be_one_or_many() {
        let c = parse("[remote]\nurl = \"https://a\"\n").unwrap();
        assert_eq!(c.remote.url, ["https://a"]);
        let c = parse("[remote]\nurl = [\"https://a\", \"https://b\"]\n").unwrap();
        assert_eq!(c.remote.url.len(), 2);
    }
}
