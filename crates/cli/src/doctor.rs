//! `tessera doctor`: checks, each on one line (`ok`, `warn` or `FAIL`), what a login needs: the
//! config; for the config, key, store, the store's `-wal` and `-shm` and the SMTP password
//! file, the file itself (no link, a regular file, owner and mode) and the directories above
//! it, by the rules the module applies ([`tessera_engine::fsperm`]); the store's schema, that the key
//! opens the stored tokens, that each remote server answers (remote mode), where the PAM module
//! is installed, every line of /etc/pam.d that names it (and whether the module file it names
//! exists), whether `tessera init` was done, tokens without a PIN where a service has
//! pam_tessera as its only factor, and the syslog socket. Exit 1 if anything failed.

use super::{CliResult, Failure};
use crate::initsys::{InitSystem, INIT_LOG};
use crate::pamstack::{auth_entries, pam_entries, PamEntry, PASSWORD_MODULES};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tessera_engine::config::{Config, Fallback, Mode, OtpPin};
use tessera_engine::engine;
use tessera_engine::fsperm::{self, Access};
use tessera_engine::store::{SqliteStore, TokenRecord};
use tessera_engine::tokens::TokenType;

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
    match super::become_store_owner(&cfg) {
        Ok(Some(uid)) => r.ok(&format!(
            "checking as uid {uid}, the owner of the store's directory, as tesserad runs"
        ))?,
        Ok(None) => {}
        Err(Failure::Error(e)) => return r.fail(&e.to_string()),
        Err(other) => return Err(other),
    }
    check_transport(r, &cfg)?;
    if let Some(p) = &cfg.email.password_file {
        if check_file(r, "[email] password_file", p, Access::Secret)? {
            check_readable(r, "[email] password_file", p)?;
        }
    }
    if cfg.auth.mode == Mode::Remote {
        check_remote(r, &cfg)?;
        if cfg.remote.fallback == Fallback::Fail && !cfg.store.path.exists() {
            // A remote-only host: no store, no key; logins are logged to syslog only.
            r.ok(&format!(
                "no local store {}: remote only, audit in syslog",
                cfg.store.path.display()
            ))?;
            check_pam(r, Init::NotNeeded, &cfg)?;
            check_daemon(r, config_path, socket)?;
            return check_syslog(r);
        }
    }
    let init = Init::of(&cfg);
    // A key or store that failed its file checks fails to load for the same reason: said once.
    let key = if check_file(r, "key", &cfg.store.key_file, Access::Secret)? {
        match engine::load_key(&cfg) {
            Ok(k) => {
                r.ok(&format!(
                    "key {}: 64 hex digits",
                    cfg.store.key_file.display()
                ))?;
                Some(k)
            }
            Err(e) => {
                r.fail(&e.to_string())?;
                None
            }
        }
    } else {
        None
    };
    let store_files_ok = check_file(r, "store", &cfg.store.path, Access::Readable)?;
    let wal_ok = check_beside(r, &cfg.store.path, "-wal")?;
    let shm_ok = check_beside(r, &cfg.store.path, "-shm")?;
    let store = if store_files_ok && wal_ok && shm_ok {
        match engine::open_store(&cfg) {
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
        }
    } else {
        None
    };
    if let (Some(store), Some(key)) = (&store, &key) {
        check_tokens(r, store, key)?;
    }
    let alone = check_pam(r, init, &cfg)?;
    if let Some(store) = &store {
        check_pinless(r, store, &alone)?;
        check_pin_rule(r, store, &cfg)?;
        check_locks(r, store, &cfg)?;
        check_registrations(r, store)?;
    }
    check_daemon(r, config_path, socket)?;
    check_syslog(r)
}

/// Two lines for a file the module opens: the file itself, and the directories above it. The
/// file is looked at with `lstat`, which sees what the module's `O_NOFOLLOW` open and `fstat`
/// see, without opening it. True if both are ok.
fn check_file(r: &mut Report, what: &str, path: &Path, access: Access) -> CliResult<bool> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => {
            let hint = match what {
                "key" | "store" if e.kind() == std::io::ErrorKind::NotFound => {
                    " (run `tessera init`)"
                }
                _ => "",
            };
            r.fail(&format!("{what} {}: {e}{hint}", path.display()))?;
            return Ok(false);
        }
    };
    let readers = match access {
        Access::Readable => "not writable by group or others",
        Access::Secret => "private to its owner",
    };
    let file_ok = match fsperm::check_file(path, &meta, access) {
        Ok(()) => {
            r.ok(&format!(
                "{what} {}: regular file, owner uid {}, mode {:o}, {readers}",
                path.display(),
                meta.uid(),
                meta.mode() & 0o7777
            ))?;
            true
        }
        Err(e) => {
            r.fail(&e.to_string())?;
            false
        }
    };
    let dirs_ok = match fsperm::check_dirs(path, meta.uid()) {
        Ok(()) => {
            r.ok(&format!(
                "directories above {what} {}: owned by root or uid {}, not writable by others",
                path.display(),
                meta.uid()
            ))?;
            true
        }
        Err(e) => {
            r.fail(&e.to_string())?;
            false
        }
    };
    Ok(file_ok && dirs_ok)
}

/// Whether this process (tesserad's user when doctor runs as root, see above) can open a file
/// that passed [`check_file`]: a root-owned 0600 file passes the mode check, but the daemon
/// can't read it. One line only when it can't.
fn check_readable(r: &mut Report, what: &str, path: &Path) -> CliResult<()> {
    match std::fs::File::open(path) {
        Ok(_) => Ok(()),
        Err(e) => r.fail(&format!(
            "{what} {}: {e}: tesserad runs as uid {} and must read it (chown it to that user, \
             mode 0600)",
            path.display(),
            tessera_engine::sys::euid()
        )),
    }
}

/// One line for the store's `-wal` or `-shm`: SQLite replays a WAL into the store and maps the
/// `-shm`, so either must be as safe as the store. True if ok (also when there is none yet).
fn check_beside(r: &mut Report, store: &Path, suffix: &str) -> CliResult<bool> {
    let path = fsperm::with_suffix(store, suffix);
    match fsperm::check_beside(&path) {
        Ok(Some(meta)) => r.ok(&format!(
            "store {suffix} {}: regular file, owner uid {}, mode {:o}, not writable by group or others",
            path.display(),
            meta.uid(),
            meta.mode() & 0o7777
        ))?,
        Ok(None) => r.ok(&format!(
            "store {suffix} {}: none yet (SQLite creates it with the store's owner and mode)",
            path.display()
        ))?,
        Err(e) => {
            r.fail(&e.to_string())?;
            return Ok(false);
        }
    }
    Ok(true)
}

fn check_syslog(r: &mut Report) -> CliResult<()> {
    if Path::new("/dev/log").exists() {
        r.ok("syslog socket /dev/log")
    } else if InitSystem::of_this_host() == InitSystem::SysV {
        r.warn(&format!(
            "no syslog socket /dev/log: logins are recorded in the audit table only (tesserad's \
             own lines: {INIT_LOG})"
        ))
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
    match tessera_engine::remote::probe(cfg) {
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
    key: &tessera_engine::crypto::StoreKey,
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

/// Sources (or, with `lock_scope = "token"`, tokens) that failures lock now: a warning naming
/// the first few, and how to open them.
fn check_locks(r: &mut Report, store: &SqliteStore, cfg: &Config) -> CliResult<()> {
    use tessera_engine::engine::Clock;
    let now = tessera_engine::engine::SystemClock.now();
    let auth = &cfg.auth;
    let mut locked: Vec<String> = match auth.lock_scope {
        tessera_engine::config::LockScope::Source => store
            .source_failures_of(None)?
            .into_iter()
            .filter(|f| auth.locks(f.count, Some(f.last_fail), now))
            .map(|f| format!("{} from {}", f.user, f.source))
            .collect(),
        tessera_engine::config::LockScope::Token => store
            .list_tokens(None)?
            .into_iter()
            .filter(|t| auth.locks(t.fail_count, t.last_fail, now))
            .map(|t| format!("{}/{}", t.user, t.serial))
            .collect(),
    };
    // A user's class of sources refused by the sum of its failures (`account_max_fail`).
    locked.extend(
        store
            .class_failures_of(None)?
            .into_iter()
            .filter(|f| auth.class_locks(f.count, f.last_fail, now))
            .map(|f| format!("{} from every {} source", f.user, f.class)),
    );
    if locked.is_empty() {
        return r.ok("no source or token is locked by failures");
    }
    let shown: Vec<&str> = locked.iter().take(10).map(String::as_str).collect();
    let more = locked.len().saturating_sub(shown.len());
    r.warn(&format!(
        "{} locked by failures: {}{} (tessera token show SERIAL; tessera token reset SERIAL \
         opens them)",
        locked.len(),
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ))
}

/// Whether tesserad answers on its socket, which the package's tesserad.socket provides
/// (enabled and started on install), or its init script where systemd does not run. Without it
/// root callers spawn a tesserad per login, and every other caller (screen lockers) fails
/// closed: a warning, logins still work. The advice names the commands of this host's init.
fn check_daemon(r: &mut Report, config: &Path, socket: &Path) -> CliResult<()> {
    let init = InitSystem::of_this_host();
    let mut conn = match std::os::unix::net::UnixStream::connect(socket) {
        Ok(c) => c,
        Err(e) => {
            return r.warn(&format!(
                "no tesserad on {} ({e}): start it with `{}` (until then root logins spawn a \
                 tesserad each, slower, and screen lockers fail)",
                socket.display(),
                init.start(config, socket)
            ))
        }
    };
    // How it is, as the daemon sees it: its user, its config, its store and key.
    match crate::daemon::ask(&mut conn, &tessera_proto::Request::Status) {
        Ok((lines, serves)) => {
            for line in lines {
                match line.split_once(' ') {
                    Some(("fail", text)) => r.fail(&format!("tesserad: {}", text.trim()))?,
                    Some(("warn", text)) => r.warn(&format!("tesserad: {}", text.trim()))?,
                    Some((_, text)) => r.ok(&format!("tesserad: {}", text.trim()))?,
                    None => r.ok(&format!("tesserad: {line}"))?,
                }
            }
            if serves {
                r.ok(&format!(
                    "tesserad answers on {} (screen lockers work)",
                    socket.display()
                ))
            } else {
                r.fail(&format!(
                    "tesserad answers on {} but can't serve logins (the lines above say why): \
                     fix that, then restart it (`{}`); until then every login through it fails",
                    socket.display(),
                    init.restart(config, socket)
                ))
            }
        }
        Err(why) => r.warn(&format!(
            "tesserad answers on {} but gave no status ({why})",
            socket.display()
        )),
    }
}

/// Whether `tessera init` was done: the key and the store exist (the lines above check them).
enum Init {
    Done,
    /// What is missing: the key file, the store, or both.
    Missing(Vec<PathBuf>),
    /// A remote-only host (`fallback = "fail"`, no store): nothing to initialise.
    NotNeeded,
}

impl Init {
    fn of(cfg: &Config) -> Init {
        let missing: Vec<PathBuf> = [&cfg.store.key_file, &cfg.store.path]
            .into_iter()
            .filter(|p| {
                matches!(std::fs::symlink_metadata(p),
                         Err(e) if e.kind() == std::io::ErrorKind::NotFound)
            })
            .cloned()
            .collect();
        if missing.is_empty() {
            Init::Done
        } else {
            Init::Missing(missing)
        }
    }
}

/// A line of a PAM service file that names pam_tessera: `[-]type control module [args]`.
struct PamLine {
    file: PathBuf,
    number: usize,
    /// The line without its comment, blanks squeezed: type, control, module, arguments.
    text: String,
    /// The line starts with `-`: libpam skips it silently if the module is missing.
    optional_module: bool,
    module: String,
}

/// The lines of `text` (a PAM service file) whose module is pam_tessera ([`pam_entries`]).
/// `@include` lines name no module.
fn pam_lines(file: &Path, text: &str) -> Vec<PamLine> {
    pam_entries(text)
        .into_iter()
        .filter(|e| !e.include && e.module_name().starts_with("pam_tessera"))
        .map(|e| PamLine {
            file: file.to_path_buf(),
            number: e.number,
            text: e.text,
            optional_module: e.optional_module,
            module: e.module,
        })
        .collect()
}

/// Whether pam_tessera is the only factor of the service `name`'s auth stack, so that a token
/// without a PIN passes with its code alone: no password module ([`PASSWORD_MODULES`]) comes
/// before the first pam_tessera line, nor after it unless that line ends the stack on success
/// (`sufficient`, `success=done`); and the config it runs with (its `config=`, or `cfg`) has
/// `otppin = "token"`. (A plain reading of the stack, not libpam's jumps.)
fn tessera_alone(dir: &Path, name: &str, cfg: &Config) -> bool {
    let mut entries = Vec::new();
    auth_entries(dir, name, 0, &mut entries);
    let is_password = |e: &PamEntry| PASSWORD_MODULES.contains(&e.module_name().as_str());
    let Some(at) = entries
        .iter()
        .position(|e| is_password(e) || e.module_name().starts_with("pam_tessera"))
    else {
        return false;
    };
    let tessera = &entries[at];
    if is_password(tessera) {
        return false;
    }
    let ends_stack = tessera.control == "sufficient" || tessera.control.contains("success=done");
    if !ends_stack && entries[at + 1..].iter().any(is_password) {
        return false;
    }
    line_otppin(tessera, cfg) == OtpPin::Token
}

/// The `otppin` a pam_tessera line runs with: that of its `config=`, else `cfg`'s.
fn line_otppin(line: &PamEntry, cfg: &Config) -> OtpPin {
    match line.args.iter().find_map(|a| a.strip_prefix("config=")) {
        // A config that does not load fails the login anyway: judged by the default.
        Some(path) => Config::load(Path::new(path)).map_or(OtpPin::Token, |c| c.auth.otppin),
        None => cfg.auth.otppin,
    }
}

/// Whether the service `name`'s first pam_tessera auth line runs with `otppin = "system"`
/// (the password is taken as checked, so only the code is asked) while no password module
/// ([`PASSWORD_MODULES`]) comes before it: then nothing checked a password, and the code
/// alone logs in, whatever the token's PIN. (A plain reading of the stack, as
/// [`tessera_alone`].)
fn system_without_password(dir: &Path, name: &str, cfg: &Config) -> bool {
    let mut entries = Vec::new();
    auth_entries(dir, name, 0, &mut entries);
    let Some(at) = entries
        .iter()
        .position(|e| e.module_name().starts_with("pam_tessera"))
    else {
        return false;
    };
    line_otppin(&entries[at], cfg) == OtpPin::System
        && !entries[..at]
            .iter()
            .any(|e| PASSWORD_MODULES.contains(&e.module_name().as_str()))
}

/// Where `pam_tessera.so` is installed, every line of the PAM service files that names it (and
/// whether the module file it names exists), and whether `tessera init` was done: a service
/// that names the module before then fails every login.
///
/// Returns the services (file names) whose auth stack has pam_tessera as its only factor
/// ([`tessera_alone`]).
fn check_pam(r: &mut Report, init: Init, cfg: &Config) -> CliResult<Vec<String>> {
    let modules = installed_modules();
    if modules.is_empty() {
        r.warn("pam_tessera.so is not installed in a PAM module directory")?;
    } else {
        let names: Vec<String> = modules.iter().map(|p| p.display().to_string()).collect();
        r.ok(&format!("module installed: {}", names.join(", ")))?;
    }
    let dir = crate::pamstack::pam_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut services = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let lines = pam_lines(file, &text);
        if lines.is_empty() {
            continue;
        }
        services.push(
            file.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        );
        for l in lines {
            check_pam_line(r, &l)?;
        }
    }
    let alone: Vec<String> = services
        .iter()
        .filter(|s| tessera_alone(&dir, s, cfg))
        .cloned()
        .collect();
    for s in services
        .iter()
        .filter(|s| system_without_password(&dir, s, cfg))
    {
        r.warn(&format!(
            "{}: pam_tessera.so runs with otppin = \"system\" but no password module comes \
             before it, so the code alone logs in; put `auth requisite pam_unix.so` in front \
             (as pam.d/sshd-password-otp does), or give that line a config with \
             otppin = \"token\"",
            dir.join(s).display()
        ))?;
    }
    check_ignore_rules(r, &dir, &services, cfg)?;
    if services.is_empty() {
        r.warn(&format!(
            "no service in {} uses pam_tessera.so",
            dir.display()
        ))?;
    } else {
        r.ok(&format!(
            "used by {}: {}",
            dir.display(),
            services.join(", ")
        ))?;
    }
    match init {
        Init::NotNeeded => {}
        Init::Done => r.ok("tessera init done: the key and the store exist")?,
        Init::Missing(missing) => {
            let missing: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
            if services.is_empty() {
                r.warn(&format!(
                    "tessera init not done (no {}): run `tessera init` before any PAM service \
                     uses pam_tessera.so",
                    missing.join(", no ")
                ))?
            } else {
                r.fail(&format!(
                    "tessera init not done (no {}) but {} name pam_tessera.so: every login \
                     through them fails; run `tessera init`",
                    missing.join(", no "),
                    services
                        .iter()
                        .map(|s| dir.join(s).display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))?
            }
        }
    }
    Ok(alone
        .iter()
        .map(|s| dir.join(s).display().to_string())
        .collect())
}

/// `skip` rules and grace windows return PAM_IGNORE, which lets a login in only if another
/// module of the stack grants it: a warning for each rule and service that uses pam_tessera
/// where nothing else can, since those logins are denied.
fn check_ignore_rules(
    r: &mut Report,
    dir: &Path,
    services: &[String],
    cfg: &Config,
) -> CliResult<()> {
    for (i, rule) in cfg.policy.iter().enumerate() {
        if !rule.may_ignore() {
            continue;
        }
        let what = if rule.action == tessera_engine::policy::Action::Skip {
            "skips the second factor"
        } else {
            "has a grace window"
        };
        for s in services.iter().filter(|s| rule.covers_service(s)) {
            if crate::pamstack::others_that_may_grant(dir, s).is_some_and(|o| o.is_empty()) {
                r.warn(&format!(
                    "policy rule {} {what} (PAM_IGNORE), but on {} nothing but tessera can let \
                     a login in: those logins are denied; put the password module before \
                     tessera there, or use action = \"deny\"",
                    i + 1,
                    dir.join(s).display()
                ))?;
            }
        }
    }
    Ok(())
}

/// Tokens without a PIN, where a service has pam_tessera alone with `otppin = "token"`
/// (`alone`, from [`check_pam`]): their code alone logs in there. Nothing to say otherwise.
fn check_pinless(r: &mut Report, store: &SqliteStore, alone: &[String]) -> CliResult<()> {
    if alone.is_empty() {
        return Ok(());
    }
    let Ok(tokens) = store.list_tokens(None) else {
        return Ok(()); // check_tokens said why
    };
    // Not every token without a PIN hash is a token without a PIN: a registration code is a
    // one-time secret that enrolls a token (with a PIN) at its user's first login, and a 4eyes
    // token's pass is the other users' PIN+OTPs.
    let has_no_pin = |t: &&TokenRecord| {
        t.active
            && t.pin_hash.is_none()
            && !matches!(t.kind, TokenType::Registration | TokenType::FourEyes)
    };
    let pinless: Vec<(&str, &str)> = tokens
        .iter()
        .filter(has_no_pin)
        .map(|t| (t.user.as_str(), t.serial.as_str()))
        .collect();
    if pinless.is_empty() {
        return Ok(());
    }
    r.warn(&format!(
        "{} token(s) without a PIN ({}): in {}, pam_tessera.so is the only auth factor and \
         otppin = \"token\", so the code alone logs in; {}",
        pinless.len(),
        super::output::clean(&super::output::some_tokens(&pinless)),
        alone.join(", "),
        super::import::PIN_FIX
    ))
}

/// Tokens whose PIN was set under another PIN rule than the config's, or before rules were kept
/// (older versions, imports): a PIN is kept only as a hash, so the rule can't be checked
/// against it; their owners set a new one.
fn check_pin_rule(r: &mut Report, store: &SqliteStore, cfg: &Config) -> CliResult<()> {
    let Ok(tokens) = store.list_tokens(None) else {
        return Ok(()); // check_tokens said why
    };
    let rule = cfg.auth.pin_rule();
    let with_pin: Vec<&TokenRecord> = tokens.iter().filter(|t| t.pin_hash.is_some()).collect();
    let older: Vec<(&str, &str)> = with_pin
        .iter()
        .filter(|t| t.info.pin_rule.as_deref() != Some(rule.id().as_str()))
        .map(|t| (t.user.as_str(), t.serial.as_str()))
        .collect();
    if with_pin.is_empty() {
        return Ok(());
    }
    if older.is_empty() {
        return r.ok(&format!(
            "PIN rule: every PIN was set under the current one ({})",
            rule.describe()
        ));
    }
    r.warn(&format!(
        "{} token PIN(s) set before the current PIN rule ({}) or under another: {}; a PIN is \
         kept only as a hash, so the rule can't be checked against it: have their owners set a \
         new one (`tessera token set-pin SERIAL`)",
        older.len(),
        rule.describe(),
        super::output::clean(&super::output::some_tokens(&older)),
    ))
}

/// Registration codes that expired unused: the users they were for have not enrolled. (A code
/// is refused once expired, like a wrong one; `token remove` tidies it away.)
fn check_registrations(r: &mut Report, store: &SqliteStore) -> CliResult<()> {
    use tessera_engine::engine::Clock;
    let now = tessera_engine::engine::SystemClock.now();
    let Ok(tokens) = store.list_tokens(None) else {
        return Ok(()); // check_tokens said why
    };
    let expired: Vec<(&str, &str)> = tokens
        .iter()
        .filter(|t| {
            t.counter < tessera_engine::tokens::registration::USED
                && t.expires().is_some_and(|e| now >= e)
        })
        .map(|t| (t.user.as_str(), t.serial.as_str()))
        .collect();
    let waiting: Vec<(&str, &str)> = tokens
        .iter()
        .filter(|t| {
            t.kind == TokenType::Registration
                && t.counter < tessera_engine::tokens::registration::USED
                && !t.expires().is_some_and(|e| now >= e)
        })
        .map(|t| (t.user.as_str(), t.serial.as_str()))
        .collect();
    if !waiting.is_empty() {
        // Said, so that an admin who sees these tokens without a PIN hash in `token list`
        // knows they are not tokens without a PIN.
        r.ok(&format!(
            "{} registration code(s) not used yet ({}): each is a one-time secret that enrolls \
             a token, with a PIN, at its user's first login; not a token without a PIN",
            waiting.len(),
            super::output::clean(&super::output::some_tokens(&waiting)),
        ))?;
    }
    if expired.is_empty() {
        return Ok(());
    }
    r.warn(&format!(
        "{} registration code(s) expired unused ({}): those users have not enrolled; issue a \
         new code (tessera token add --type registration) and remove the old one",
        expired.len(),
        super::output::clean(&super::output::some_tokens(&expired)),
    ))
}

/// One line for a PAM line that names the module: ok with the module file it loads, or a
/// failure when that file does not exist (libpam then fails the stack: every login fails).
fn check_pam_line(r: &mut Report, l: &PamLine) -> CliResult<()> {
    let at = format!("{}:{}: {}", l.file.display(), l.number, l.text);
    let found: Vec<PathBuf> = if Path::new(&l.module).is_absolute() {
        Some(PathBuf::from(&l.module))
            .filter(|p| p.is_file())
            .into_iter()
            .collect()
    } else {
        module_dirs()
            .into_iter()
            .map(|d| d.join(&l.module))
            .filter(|p| p.is_file())
            .filter_map(|p| p.canonicalize().ok())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    if let Some(m) = found.first() {
        r.ok(&format!("{at}: module {}", m.display()))
    } else if l.optional_module {
        r.warn(&format!(
            "{at}: module {} does not exist (the line starts with '-': libpam skips it)",
            l.module
        ))
    } else {
        r.fail(&format!(
            "{at}: module {} does not exist: every login through this service fails; remove \
             the line or reinstall libpam-tessera",
            l.module
        ))
    }
}

/// The directories libpam may load modules from, by distribution.
fn module_dirs() -> Vec<PathBuf> {
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
    dirs
}

fn installed_modules() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = module_dirs()
        .into_iter()
        .map(|d| d.join("pam_tessera.so"))
        .filter(|p| p.is_file())
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pam_lines_reads_lines_as_libpam_does() {
        let text = "#%PAM-1.0\n\
                    # auth required pam_tessera.so\n\
                    @include common-auth\n\
                    auth required pam_unix.so # not pam_tessera.so\n\
                    auth [success=done new_authtok_reqd=done \\\n\
                    \tdefault=die] pam_tessera.so nullok debug\n\
                    -auth optional /usr/lib/security/pam_tessera.so # mine\n\
                    account required pam_permit.so pam_tessera.so\n\
                    session\n";
        let lines = pam_lines(Path::new("/etc/pam.d/x"), text);
        let got: Vec<(usize, &str, bool, &str)> = lines
            .iter()
            .map(|l| {
                (
                    l.number,
                    l.text.as_str(),
                    l.optional_module,
                    l.module.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    5,
                    "auth [success=done new_authtok_reqd=done default=die] pam_tessera.so nullok debug",
                    false,
                    "pam_tessera.so"
                ),
                (
                    7,
                    "-auth optional /usr/lib/security/pam_tessera.so",
                    true,
                    "/usr/lib/security/pam_tessera.so"
                ),
            ]
        );
    }
}
