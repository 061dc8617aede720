//! `tessera doctor`: checks, each on one line (`ok`, `warn` or `FAIL`), what a login needs: the
//! config; for the config, key, store, the store's `-wal` and `-shm` and the SMTP password file,
//! the file itself (no link, a regular file, owner and mode) and the directories above it, by the
//! rules the module applies ([`tessera_engine::os::fsperm`]); the store's schema, that the key opens
//! the stored tokens, that each remote server answers (remote mode), where the PAM module is
//! installed, every line of /etc/pam.d that names it (and whether the module file it names exists),
//! whether `tessera init` was done, tokens without a PIN where a service has pam_tessera as its
//! only factor, and the syslog socket. Exit 1 if anything failed.

//!
//! This file runs the checks in their order; each group is a file of its own: [`files`] (the
//! config, key, store and password file on disk, `tessera init`), [`network`] (plain HTTP,
//! proxies, remote servers), [`pam`] (the module and the PAM stack), [`tokens`] (what the store
//! holds: keys, PINs, locks, registration codes) and [`daemon`] (tesserad and syslog), all
//! writing to one [`report::Report`].

mod daemon;
mod files;
mod network;
mod pam;
mod report;
mod tokens;

use crate::{CliResult, Failure};
use files::{check_file, check_readable, Init};
use report::Report;
use std::path::Path;
use tessera_engine::config::{Fallback, Mode};
use tessera_engine::os::fsperm::Access;

pub fn run(config_path: &Path, socket: &Path) -> CliResult<()> {
    let mut r = Report::default();
    match check_all(&mut r, config_path, socket) {
        // `doctor | head`: the reader stopped; a failure seen so far still sets the exit code.
        Err(Failure::OutputClosed) if r.failed => return Err(Failure::Reported),
        other => other?,
    }
    if r.failed {
        return Err(Failure::Reported);
    }
    Ok(())
}

fn check_all(r: &mut Report, config_path: &Path, socket: &Path) -> CliResult<()> {
    if !check_file(r, "config", config_path, Access::Readable)? {
        return Ok(()); // the lines above say why; nothing below can be trusted to the config
    }
    let cfg = match tessera_engine::config::Config::load(config_path) {
        Ok(c) => {
            r.ok(&format!("config {}: parsed", config_path.display()))?;
            c
        }
        Err(e) => return r.fail(&e.to_string()),
    };
    // The rest is checked as tesserad sees it: run by root, as the owner of the store's
    // directory (the package's _tessera), like the other commands.
    match crate::become_store_owner(&cfg) {
        Ok(Some(uid)) => r.ok(&format!(
            "checking as uid {uid}, the owner of the store's directory, as tesserad runs"
        ))?,
        Ok(None) => {}
        Err(Failure::Error(e)) => return r.fail(&e.to_string()),
        Err(other) => return Err(other),
    }
    network::check_transport(r, &cfg)?;
    if let Some(p) = &cfg.email.password_file {
        if check_file(r, "[email] password_file", p, Access::Secret)? {
            check_readable(r, "[email] password_file", p)?;
        }
    }
    if cfg.auth.mode == Mode::Remote {
        network::check_remote(r, &cfg)?;
        if cfg.remote.fallback == Fallback::Fail && !cfg.store.path.exists() {
            // A remote-only host: no store, no key; logins are logged to syslog only.
            r.ok(&format!(
                "no local store {}: remote only, audit in syslog",
                cfg.store.path.display()
            ))?;
            pam::check_pam(r, Init::NotNeeded, &cfg)?;
            daemon::check_daemon(r, config_path, socket)?;
            return daemon::check_syslog(r);
        }
    }
    let init = Init::of(&cfg);
    // A key or store that failed its file checks fails to load for the same reason: said once.
    let key = files::load_key(r, &cfg)?;
    let store = files::open_store(r, &cfg)?;
    // The tokens are read once for every check of them.
    let listed = store.as_ref().map(|s| s.list_tokens(None));
    if let (Some(listed), Some(key)) = (&listed, &key) {
        tokens::check_tokens(r, listed, key)?;
    }
    let alone = pam::check_pam(r, init, &cfg)?;
    if let Some(store) = &store {
        // Where they could not be read, check_tokens said why.
        let tokens = listed.as_ref().and_then(|l| l.as_ref().ok());
        if let Some(tokens) = tokens {
            tokens::check_pinless(r, tokens, &alone)?;
            tokens::check_pin_rule(r, tokens, &cfg)?;
        }
        tokens::check_locks(r, store, tokens, &cfg)?;
        if let Some(tokens) = tokens {
            tokens::check_registrations(r, tokens)?;
        }
    }
    daemon::check_daemon(r, config_path, socket)?;
    daemon::check_syslog(r)
}
