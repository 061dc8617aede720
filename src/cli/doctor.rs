//! `tessera doctor`: checks, each on one line (`ok`, `warn` or `FAIL`), what a login needs: the
//! config, the modes of the config, store and key, the store's schema, that the key opens the
//! stored tokens, that each remote server answers (remote mode), where the PAM module is
//! installed and used, and the syslog socket. Exit 1 if anything failed.

use super::{CliResult, Failure};
use crate::config::{Config, Fallback, Mode};
use crate::engine;
use crate::store::SqliteStore;
use std::path::{Path, PathBuf};

#[derive(Default)]
struct Report {
    failed: bool,
}

impl Report {
    fn ok(&mut self, what: &str) -> CliResult<()> {
        outln!("ok    {what}")
    }
    fn warn(&mut self, what: &str) -> CliResult<()> {
        outln!("warn  {what}")
    }
    fn fail(&mut self, what: &str) -> CliResult<()> {
        self.failed = true;
        outln!("FAIL  {what}")
    }
}

pub fn run(config_path: &Path) -> CliResult<()> {
    let mut r = Report::default();
    check_all(&mut r, config_path)?;
    if r.failed {
        return Err(Failure::Reported);
    }
    Ok(())
}

fn check_all(r: &mut Report, config_path: &Path) -> CliResult<()> {
    let cfg = match crate::pam::load_config(Some(config_path)) {
        Ok(c) => {
            r.ok(&format!("config {}: parsed", config_path.display()))?;
            c
        }
        Err(e) => return r.fail(&e.to_string()),
    };
    check_transport(r, &cfg)?;
    if cfg.auth.mode == Mode::Remote {
        check_remote(r, &cfg)?;
        if cfg.remote.fallback == Fallback::Fail && !cfg.store.path.exists() {
            // A remote-only host: no store, no key; logins are logged to syslog only.
            r.ok(&format!(
                "no local store {}: remote only, audit in syslog",
                cfg.store.path.display()
            ))?;
            check_pam(r)?;
            return check_syslog(r);
        }
    }
    let key = match engine::load_key(&cfg) {
        Ok(k) => {
            r.ok(&format!(
                "key {}: mode and format",
                cfg.store.key_file.display()
            ))?;
            Some(k)
        }
        Err(e) => {
            r.fail(&e.to_string())?;
            None
        }
    };
    let store = match engine::open_store(&cfg) {
        Ok(s) => {
            r.ok(&format!(
                "store {}: opens, schema up to date",
                cfg.store.path.display()
            ))?;
            Some(s)
        }
        Err(e) => {
            r.fail(&e.to_string())?;
            None
        }
    };
    if let (Some(store), Some(key)) = (&store, &key) {
        check_tokens(r, store, key)?;
    }
    check_store_dir(r, &cfg)?;
    check_pam(r)?;
    check_syslog(r)
}

fn check_syslog(r: &mut Report) -> CliResult<()> {
    if Path::new("/dev/log").exists() {
        r.ok("syslog socket /dev/log")
    } else {
        r.warn("no syslog socket /dev/log: logins are recorded in the audit table only")
    }
}

/// Plain-HTTP URLs that the config allows, and proxies: each is a choice an admin should see.
fn check_transport(r: &mut Report, cfg: &Config) -> CliResult<()> {
    for u in cfg.remote.url.iter().filter(|u| u.starts_with("http://")) {
        r.warn(&format!(
            "[remote] url {u}: plain http (allow_plain_http = true), PINs and OTPs travel unencrypted"
        ))?;
    }
    if let Some(u) = cfg.sms.url.as_deref().filter(|u| u.starts_with("http://")) {
        let host = u.split_once("://").map_or(u, |(_, r)| r);
        let host = host.split(['/', '?']).next().unwrap_or("");
        r.warn(&format!(
            "[sms] url http://{host}: plain http (allow_plain_http = true), OTPs travel unencrypted"
        ))?;
    }
    for (section, proxy) in [("[remote]", &cfg.remote.proxy), ("[sms]", &cfg.sms.proxy)] {
        if let Some(p) = proxy {
            r.ok(&format!(
                "{section} proxy {p} (from the config; the environment is never read)"
            ))?;
        }
    }
    Ok(())
}

/// Each remote server must answer, with its certificate verified as a login would.
fn check_remote(r: &mut Report, cfg: &Config) -> CliResult<()> {
    match crate::remote::probe(cfg) {
        Err(e) => r.fail(&e.to_string()),
        Ok(results) => {
            if !cfg.remote.verify_tls {
                r.warn("[remote] verify_tls = false: server certificates are not checked")?;
            }
            for (url, res) in results {
                match res {
                    Ok(what) => r.ok(&format!("remote {url}: {what}"))?,
                    Err(why) => r.fail(&format!("remote {url}: {why}"))?,
                }
            }
            Ok(())
        }
    }
}

/// Every stored key must open with the key file: a wrong key file locks everyone out.
fn check_tokens(
    r: &mut Report,
    store: &SqliteStore,
    key: &crate::crypto::StoreKey,
) -> CliResult<()> {
    let tokens = match store.list_tokens(None) {
        Ok(t) => t,
        Err(e) => return r.fail(&e.to_string()),
    };
    let bad: Vec<&str> = tokens
        .iter()
        .filter(|t| key.open(&t.serial, &t.sealed_key).is_err())
        .map(|t| t.serial.as_str())
        .collect();
    if tokens.is_empty() {
        r.warn("no tokens enrolled yet (tessera token add)")
    } else if bad.is_empty() {
        r.ok(&format!("key opens all {} token key(s)", tokens.len()))
    } else {
        r.fail(&format!(
            "the key file does not open the keys of {} token(s): {}",
            bad.len(),
            bad.join(", ")
        ))
    }
}

/// The store's directory: others must not be able to replace the database.
fn check_store_dir(r: &mut Report, cfg: &Config) -> CliResult<()> {
    let Some(dir) = cfg.store.path.parent().filter(|d| d.is_dir()) else {
        return Ok(());
    };
    match std::fs::metadata(dir) {
        Ok(m) => match crate::fsperm::refuse_writable_by_others(dir, &m) {
            Ok(()) => r.ok(&format!("store directory {}: mode", dir.display())),
            Err(e) => r.fail(&e.to_string()),
        },
        Err(e) => r.fail(&format!("{}: {e}", dir.display())),
    }
}

/// Where `pam_tessera.so` is installed, and which services of /etc/pam.d use it.
fn check_pam(r: &mut Report) -> CliResult<()> {
    let modules = installed_modules();
    if modules.is_empty() {
        r.warn("pam_tessera.so is not installed in a PAM module directory")?;
    } else {
        let names: Vec<String> = modules.iter().map(|p| p.display().to_string()).collect();
        r.ok(&format!("module installed: {}", names.join(", ")))?;
    }
    let mut services: Vec<String> = std::fs::read_dir("/etc/pam.d")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path()).is_ok_and(|text| {
                text.lines()
                    .any(|l| !l.trim_start().starts_with('#') && l.contains("pam_tessera.so"))
            })
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    services.sort();
    if services.is_empty() {
        r.warn("no service in /etc/pam.d uses pam_tessera.so")
    } else {
        r.ok(&format!("used by /etc/pam.d: {}", services.join(", ")))
    }
}

fn installed_modules() -> Vec<PathBuf> {
    let mut dirs = vec![
        PathBuf::from("/lib/security"),
        PathBuf::from("/lib64/security"),
        PathBuf::from("/usr/lib/security"),
        PathBuf::from("/usr/lib64/security"),
    ];
    for base in ["/lib", "/usr/lib"] {
        for e in std::fs::read_dir(base).into_iter().flatten().flatten() {
            dirs.push(e.path().join("security"));
        }
    }
    let mut found: Vec<PathBuf> = dirs
        .into_iter()
        .map(|d| d.join("pam_tessera.so"))
        .filter(|p| p.is_file())
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    found.sort();
    found.dedup();
    found
}
