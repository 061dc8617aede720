//! `[store]` and `[audit]`: where the token store lives and how long its audit rows stay.
//! Apart from `mod.rs` so that each section's keys, defaults and checks read in one place.

use super::Invalid;
use serde::Deserialize;
use std::path::PathBuf;

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

impl StoreConfig {
    /// The checks of `[store]`.
    pub(super) fn validate(&self) -> std::result::Result<(), Invalid> {
        if self.path.as_os_str().is_empty() {
            return Err(("store.path", "must not be empty".into()));
        }
        Ok(())
    }
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
