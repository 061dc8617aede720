//! The PAM side: where `pam_tessera.so` is installed, every line of /etc/pam.d that names it
//! (and whether the module file it names exists), services where pam_tessera is the only factor
//! or runs with `otppin = "system"` and no password before it, policy rules whose PAM_IGNORE
//! nothing else can grant, and whether `tessera init` was done where a service names the
//! module. Apart because these read the PAM stack, not tessera's own files or store.

use super::files::Init;
use super::report::Report;
use crate::pamstack::{auth_entries, pam_entries, PamEntry, PASSWORD_MODULES};
use crate::CliResult;
use std::path::{Path, PathBuf};
use tessera_engine::config::{Config, OtpPin};

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
pub(super) fn check_pam(r: &mut Report, init: Init, cfg: &Config) -> CliResult<Vec<String>> {
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
        let what = if rule.action == tessera_engine::config::policy::Action::Skip {
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
