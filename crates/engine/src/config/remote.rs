//! `[remote]`: the privacyIDEA or LinOTP servers a login is passed to in `mode = "remote"`.
//! Apart from `mod.rs` so that each section's keys, defaults and checks read in one place.

use super::{proxy_of, Invalid, Mode, PLAIN_HTTP};
use serde::Deserialize;
use std::path::PathBuf;

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

impl RemoteConfig {
    /// The checks of `[remote]`'s values; `mode` is `[auth] mode`, which needs a URL when it
    /// is `remote`.
    pub(super) fn validate(&self, mode: Mode) -> std::result::Result<(), Invalid> {
        if mode == Mode::Remote && self.url.is_empty() {
            return Err(("remote.url", "mode = \"remote\" needs [remote] url".into()));
        }
        if self.timeout == 0 || self.timeout > 300 {
            return Err(("remote.timeout", "must be between 1 and 300 seconds".into()));
        }
        if self.down_after > 1000 {
            return Err((
                "remote.down_after",
                "must be at most 1000 (0 turns skipping off)".into(),
            ));
        }
        if self.down_for == 0 || self.down_for > 3600 {
            return Err((
                "remote.down_for",
                "must be between 1 and 3600 seconds".into(),
            ));
        }
        Ok(())
    }

    /// The checks of how `[remote]`'s requests travel: no plain `http://` unless allowed, a
    /// proxy ureq speaks. Called after the other sections, in the order of the one
    /// `validate` these were split from (the first error is the one reported).
    pub(super) fn validate_transport(&self) -> std::result::Result<(), Invalid> {
        if let Some(u) = self.url.iter().find(|u| u.starts_with("http://")) {
            if !self.allow_plain_http {
                let what = format!("`{u}` carries PINs and OTPs");
                return Err(("remote.url", PLAIN_HTTP.replace("{what}", &what)));
            }
        }
        if let Some(p) = &self.proxy {
            proxy_of(p).map_err(|e| ("remote.proxy", e))?;
        }
        Ok(())
    }
}
