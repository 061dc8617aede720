//! `/etc/tessera/tessera.toml`: every key has a default; an unknown key or a bad value is an
//! error that names the file, the line and the key.

use crate::error::{Error, Result};
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
}

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
    pub pass_on_no_token: bool,
    pub hotp_window: u64,
    pub totp_window: u64,
    pub realm_separator: Option<String>,
    pub default_realm: String,
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
    /// Shown when one PIN opened challenges on several tokens.
    pub multi: String,
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
    #[serde(deserialize_with = "one_or_many")]
    pub url: Vec<String>,
    pub realm: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub verify_tls: bool,
    pub timeout: u64,
    pub push_timeout: u64,
    pub fallback: Fallback,
    pub dialect: Dialect,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    pub url: Option<String>,
    pub method: Option<String>,
    pub parameters: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    pub sendmail: Option<String>,
    pub from: Option<String>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("/var/lib/tessera/tessera.db"),
            key_file: PathBuf::from("/etc/tessera/secret.key"),
            busy_timeout_ms: 5000,
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
            fail_clear_timeout: 0,
            pass_on_no_token: false,
            hotp_window: 10,
            totp_window: 1,
            realm_separator: None,
            default_realm: "default".into(),
        }
    }
}

impl Default for Prompts {
    fn default() -> Self {
        Prompts {
            pin: "PIN: ".into(),
            otp: "OTP: ".into(),
            hotp: "Please enter your otp value: ".into(),
            totp: "Please enter your otp value: ".into(),
            email: "Please enter the OTP sent to your e-mail: ".into(),
            sms: "Please enter the OTP sent by SMS: ".into(),
            ocra: "Please answer the challenge: ".into(),
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
        }
    }
}

impl Config {
    /// Reads and validates a config file. A missing file is an error: the module fails closed
    /// rather than guess where the store is.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
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
        Ok(cfg)
    }

    /// Checks of values that TOML types alone can't express.
    fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        let a = &self.auth;
        for t in &a.challenge_response {
            if !crate::tokens::TokenType::ALL.iter().any(|k| k.name() == t) {
                return Err(("challenge_response", format!("unknown token type \"{t}\"")));
            }
        }
        if a.challenge_validity == 0 {
            return Err(("challenge_validity", "must be at least 1 second".into()));
        }
        if a.max_fail == 0 {
            return Err(("max_fail", "must be at least 1".into()));
        }
        if a.hotp_window > 1000 {
            return Err(("hotp_window", "must be at most 1000".into()));
        }
        if a.totp_window > 10 {
            return Err(("totp_window", "must be at most 10 steps".into()));
        }
        if a.realm_separator.as_deref() == Some("") {
            return Err((
                "realm_separator",
                "must not be empty (leave it out instead)".into(),
            ));
        }
        if self.store.path.as_os_str().is_empty() {
            return Err(("path", "must not be empty".into()));
        }
        if a.mode == Mode::Remote && self.remote.url.is_empty() {
            return Err(("url", "mode = \"remote\" needs [remote] url".into()));
        }
        if self.remote.timeout == 0 || self.remote.timeout > 300 {
            return Err(("timeout", "must be between 1 and 300 seconds".into()));
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

/// The line on which `key` is set, for messages about values that parsed but are wrong.
fn find_key_line(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn shipped_default_config_parses_to_the_defaults() {
        let text = include_str!("../conf/tessera.toml");
        let c = parse(text).unwrap();
        let d = Config::default();
        assert_eq!(c.store.path, d.store.path);
        assert_eq!(c.auth.hotp_window, d.auth.hotp_window);
        assert_eq!(c.prompts.ocra, d.prompts.ocra);
        assert_eq!(c.remote.timeout, d.remote.timeout);
    }

    #[test]
    fn remote_url_may_be_one_or_many() {
        let c = parse("[remote]\nurl = \"https://a\"\n").unwrap();
        assert_eq!(c.remote.url, ["https://a"]);
        let c = parse("[remote]\nurl = [\"https://a\", \"https://b\"]\n").unwrap();
        assert_eq!(c.remote.url.len(), 2);
    }
}
