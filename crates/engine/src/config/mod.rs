//! `/etc/tessera/tessera.toml`: every key has a default; an unknown key or a bad value is an
//! error that names the file, the line and the key.
//!
//! Each section's struct, defaults and checks are in a file of its own (`auth`, `store`,
//! `remote`, `delivery`, `enroll`, `prompts`); here: the whole [`Config`], reading it,
//! and the message naming the file, line and key of a bad value.

use crate::error::{Error, Kind, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

mod auth;
mod delivery;
mod enroll;
pub mod policy;
mod prompts;
mod remote;
mod store;
#[cfg(test)]
mod tests;

pub use auth::{pin_hashes_that_fit, AuthConfig, LockScope, Mode, OtpPin, DAEMON_BASE_MEMORY};
pub use delivery::{EmailConfig, HttpMethod, SmsBody, SmsConfig, SmtpTls};
pub use enroll::{EnrollConfig, SELF_ENROLL_TYPES};
pub use prompts::Prompts;
pub use remote::{Dialect, Fallback, RemoteConfig};
pub use store::{AuditConfig, StoreConfig};

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
    /// `[[policy]]`: who needs a second factor, where (see [`policy`]).
    pub policy: Vec<policy::Rule>,
    /// The file this was read from, for messages; not a key.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// A bad value found by a section's check: its key, with its section (`remote.timeout`), and
/// what is wrong.
type Invalid = (&'static str, String);

impl Config {
    /// Reads and validates a config file. A missing file is an error: the module fails closed
    /// rather than guess where the store is.
    pub fn load(path: &Path) -> Result<Config> {
        use std::io::Read;
        let config_error = |e: std::io::Error| Error::io(Kind::Config, path, e);
        // Read from the descriptor that was checked (no link, not writable by others, safe
        // directories): never opened a second time by name.
        let mut file = crate::os::fsperm::open_checked(
            path,
            crate::os::fsperm::Access::Readable,
            config_error,
        )?;
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
                    Error::config(format!("{}:{l}: {key}{msg}", path.display()))
                }
                None => Error::config(format!("{}: {msg}", path.display())),
            }
        })?;
        cfg.validate().map_err(|(key, msg)| {
            let line = find_key_line(text, key);
            Error::config(format!("{}:{line}: key `{key}`: {msg}", path.display()))
        })?;
        for (i, rule) in cfg.policy.iter().enumerate() {
            rule.validate().map_err(|(key, msg)| {
                let line = find_policy_key_line(text, i, key);
                Error::config(format!(
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
    fn validate(&self) -> std::result::Result<(), Invalid> {
        // The order is that of the one function these checks were split from: a file with
        // several bad values reports the same first one.
        self.auth.validate()?;
        self.store.validate()?;
        self.remote.validate(self.auth.mode)?;
        self.enroll.validate()?;
        delivery::validate(&self.email, &self.sms)?;
        self.remote.validate_transport()?;
        self.sms.validate_proxy()
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
