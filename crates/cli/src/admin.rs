//! `tessera init`, `challenge list` and `audit`.

use super::output::{self, Table};
use super::{CliResult, Failure};
use tessera_engine::auth::{self, Clock, SystemClock};
use tessera_engine::config::Config;
use tessera_engine::crypto::StoreKey;
use tessera_engine::error::{Error, Kind};
use tessera_engine::os::fsperm;
use tessera_engine::os::sys;
use tessera_engine::store::{AuditEntry, ChallengeState, SqliteStore};

/// Creates what is missing: the store (0600, its directory 0700, schema migrated) and the key
/// file (0600). An existing key is never replaced; an existing store is only migrated.
///
/// Run by root for a store whose directory belongs to another user (the package's `_tessera`,
/// see [`sys::store_owner`]), the store is made as that user and the key is made by root and
/// given to that user: the key's directory (`/etc/tessera`) is root's, and whether a key may be
/// made at all depends on what the store holds. So the store part runs with that user's
/// effective ids ([`sys::as_store_owner`]), and root then creates the key (0600, never over an
/// existing one) and hands it over before writing it.
pub fn init(cfg: &Config) -> CliResult<()> {
    let owner = sys::store_owner(&cfg.store.path);
    let need_key = match owner {
        Some(o) => sys::as_store_owner(&cfg.store.path, o, || init_store(cfg))
            .map_err(|e| Error::permissions(e.to_string()))??,
        None => init_store(cfg)?,
    };
    if need_key {
        create_key(cfg, owner)?;
    }
    Ok(())
}

/// The store part of [`init`]; true if a key must be made.
fn init_store(cfg: &Config) -> CliResult<bool> {
    let store_path = &cfg.store.path;
    let key_path = &cfg.store.key_file;
    let store_existed = store_path.exists();
    let store = SqliteStore::create(store_path, cfg.store.busy_timeout_ms)?;
    outln!(
        "store {}: {}",
        store_path.display(),
        if store_existed {
            "exists, schema up to date"
        } else {
            "created"
        }
    )?;

    if key_path.exists() || key_path.is_symlink() {
        // Only checked: the mode and the format. Tokens sealed with it must stay readable.
        auth::load_key(cfg)?;
        outln!("key {}: exists, kept", key_path.display())?;
        return Ok(false);
    }
    let sealed = store.list_tokens(None)?.len();
    if sealed > 0 {
        return Err(Error::key(format!(
            "{}: missing, but the store holds {sealed} token(s) sealed with it; restore the key \
             file (a new key could not open them)",
            key_path.display()
        ))
        .into());
    }
    Ok(true)
}

/// A new key file (0600; its directory 0700 if missing), given to `owner` if there is one.
fn create_key(cfg: &Config, owner: Option<(u32, u32)>) -> CliResult<()> {
    let key_path = &cfg.store.key_file;
    if let Some(dir) = key_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let existed = dir.is_dir();
        fsperm::create_private_dir(dir)?;
        if let (false, Some((uid, gid))) = (existed, owner) {
            // A directory made here for the key alone: the owner must reach its key.
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                .map_err(|e| Error::io(Kind::Key, dir, e))?;
        }
    }
    let key = StoreKey::generate();
    let mut text = key.to_hex();
    text.push('\n');
    fsperm::create_private_file_for(key_path, text.as_bytes(), owner).map_err(|e| {
        match e.kind() {
            Kind::Store => e.as_kind(Kind::Key),
            _ => e,
        }
    })?;
    outln!("key {}: created", key_path.display())
}

pub fn challenge_list(cfg: &Config, all: bool, json: bool) -> CliResult<()> {
    let store = auth::open_store(cfg)?;
    let rows = store.list_challenges(all)?;
    if json {
        return output::json(&rows);
    }
    let now = SystemClock.now();
    let mut t = Table::new(&[
        "TRANSACTION",
        "SERIAL",
        "USER",
        "REALM",
        "CREATED (UTC)",
        "EXPIRES (UTC)",
        "STATE",
    ]);
    for c in rows {
        let state = if c.state == ChallengeState::Open && c.expires <= now {
            "open, expired".to_string()
        } else {
            c.state.to_string()
        };
        t.row(vec![
            c.transaction_id,
            c.serial,
            c.user,
            c.realm,
            output::time(c.created),
            output::time(c.expires),
            state,
        ]);
    }
    t.print()
}

pub fn audit(cfg: &Config, user: Option<&str>, limit: u32, json: bool) -> CliResult<()> {
    let store = auth::open_store(cfg)?;
    let rows = store.audit_entries(user, limit)?;
    if json {
        return output::json(&rows);
    }
    let mut t = Table::new(&[
        "TIME (UTC)",
        "RESULT",
        "USER",
        "REALM",
        "SERIAL",
        "TYPE",
        "SERVICE",
        "RHOST",
        "REASON",
    ]);
    let dash = |s: String| if s.is_empty() { "-".to_string() } else { s };
    for e in rows {
        t.row(vec![
            output::time(e.time),
            e.result.to_string(),
            e.user,
            dash(e.realm),
            dash(e.serial),
            dash(e.kind),
            dash(e.service),
            dash(e.rhost),
            e.reason,
        ]);
    }
    t.print()
}

/// How often `audit --follow` looks for new rows: a row shows within this. A look is one indexed
/// query; nothing is held open between looks, so the daemon's writes and checkpoints never wait for
/// it.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// `tessera audit --follow`: the newest `limit` rows, then each new row as it is written, as
/// one JSON object a line (`--json`) or one text line, until interrupted or stdout is closed.
pub fn audit_follow(cfg: &Config, user: Option<&str>, limit: u32, json: bool) -> CliResult<()> {
    let store = auth::open_store(cfg)?;
    let mut last = store.last_audit_id()?;
    let backlog = store.audit_entries(user, limit)?;
    for e in &backlog {
        print_followed(e, json)?;
    }
    const BATCH: u32 = 1000;
    loop {
        // One look a poll while nothing is written: the newest row's id.
        let newest = store.last_audit_id()?;
        if newest < last {
            // A store put back from a backup may have fewer rows: go on from its newest.
            last = newest;
        }
        if newest == last {
            std::thread::sleep(FOLLOW_EVERY);
            continue;
        }
        let rows = store.audit_after(last, user, BATCH)?;
        for (id, e) in &rows {
            print_followed(e, json)?;
            last = *id;
        }
        if rows.len() < BATCH as usize {
            // Every row up to `newest` was read, other users' too (with --user): the next
            // look starts there, not again over rows it skipped.
            last = last.max(newest);
        }
    }
}

fn print_followed(e: &AuditEntry, json: bool) -> CliResult<()> {
    use std::io::Write as _;
    let line = if json {
        serde_json::to_string(e)
            .map_err(|err| Failure::Error(Error::invalid(format!("JSON: {err}"))))?
    } else {
        format!("{} {}", output::time(e.time), e.log_line())
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").map_err(output::stdout_failed)?;
    // Each row as it comes, also into a pipe (`| jq`, a log shipper).
    out.flush().map_err(output::stdout_failed)
}
