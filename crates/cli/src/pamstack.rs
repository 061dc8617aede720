//! A PAM service's auth stack as libpam reads it (a plain reading, not libpam's jumps): what
//! `tessera doctor` and `tessera policy test` say about the stacks that load pam_tessera.

use std::path::{Path, PathBuf};

/// Reads the PAM service files from this directory instead of /etc/pam.d (for tests; it only
/// changes what doctor and `policy test` report).
pub const PAM_DIR_ENV: &str = "TESSERA_PAM_DIR";

/// The directory of the PAM service files: /etc/pam.d, or `$TESSERA_PAM_DIR`.
pub(crate) fn pam_dir() -> PathBuf {
    std::env::var_os(PAM_DIR_ENV).map_or_else(|| PathBuf::from("/etc/pam.d"), PathBuf::from)
}

/// What PAM_IGNORE from pam_tessera (a `skip`, a grace window) does on the service `name`'s
/// auth stack, in words for the admin.
pub(crate) fn what_ignore_does(name: &str) -> String {
    let dir = pam_dir();
    let file = dir.join(name);
    match others_that_may_grant(&dir, name) {
        None => format!(
            "PAM_IGNORE leaves the login to the rest of the service's auth stack (no {} here \
             to read)",
            file.display()
        ),
        Some(others) if others.is_empty() => format!(
            "on {} nothing but tessera can let a login in, so PAM_IGNORE there is a DENIED \
             login (put the password module before tessera, or use deny)",
            file.display()
        ),
        Some(others) => format!(
            "the rest of {}'s auth stack decides ({})",
            file.display(),
            others.join(", ")
        ),
    }
}

/// One line of a PAM service file, as libpam reads it.
pub(crate) struct PamEntry {
    pub(crate) number: usize,
    /// The line without its comment, blanks squeezed.
    pub(crate) text: String,
    /// `auth`, `account`, `password`, `session` (without a leading `-`); empty for `@include`,
    /// which includes every type.
    pub(crate) kind: String,
    /// The type starts with `-`: libpam skips the line silently if the module is missing.
    pub(crate) optional_module: bool,
    /// The control, blanks squeezed: `required`, `[success=1 default=ignore]`.
    pub(crate) control: String,
    /// `@include FILE`, or a control of `include` or `substack`: `module` is that service.
    pub(crate) include: bool,
    pub(crate) module: String,
    pub(crate) args: Vec<String>,
}

impl PamEntry {
    /// The module's name without directory and `.so`: `pam_unix`.
    pub(crate) fn module_name(&self) -> String {
        let name = Path::new(&self.module)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        name.strip_suffix(".so").unwrap_or(&name).to_string()
    }
}

/// The lines of `text` (a PAM service file), as libpam reads them: `#` starts a comment, a
/// backslash at the end of a line continues it, a control may be a `[value=action ...]` list
/// with blanks, `@include FILE` includes another service's lines of every type.
pub(crate) fn pam_entries(text: &str) -> Vec<PamEntry> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut first = 0;
    for (i, raw) in text.lines().enumerate() {
        if pending.is_empty() {
            first = i + 1;
        }
        let raw = raw.split('#').next().unwrap_or("");
        if let Some(cont) = raw.strip_suffix('\\') {
            pending.push_str(cont);
            pending.push(' ');
            continue;
        }
        pending.push_str(raw);
        let line = std::mem::take(&mut pending);
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() == 2 && words[0] == "@include" {
            out.push(PamEntry {
                number: first,
                text: words.join(" "),
                kind: String::new(),
                optional_module: false,
                control: String::new(),
                include: true,
                module: words[1].to_string(),
                args: Vec::new(),
            });
            continue;
        }
        if words.len() < 3 || words[0].starts_with('@') {
            continue;
        }
        // The control: one word, or a bracketed list that may span several.
        let mut m = 2;
        if words[1].starts_with('[') {
            m = 1 + words[1..]
                .iter()
                .position(|w| w.ends_with(']'))
                .map_or(words.len(), |p| p + 1);
        }
        let Some(module) = words.get(m) else { continue };
        out.push(PamEntry {
            number: first,
            text: words.join(" "),
            kind: words[0].trim_start_matches('-').to_ascii_lowercase(),
            optional_module: words[0].starts_with('-'),
            control: words[1..m].join(" "),
            include: m == 2 && matches!(words[1], "include" | "substack"),
            module: (*module).to_string(),
            args: words[m + 1..].iter().map(|w| w.to_string()).collect(),
        });
    }
    out
}

/// Modules that check a password (the Unix one, or a directory's): one of them in the auth
/// stack with pam_tessera makes the PIN-less code a second factor.
pub(crate) const PASSWORD_MODULES: &[&str] = &[
    "pam_unix",
    "pam_unix2",
    "pam_sss",
    "pam_ldap",
    "pam_krb5",
    "pam_winbind",
    "pam_pwdfile",
    "pam_userdb",
    "pam_systemd_home",
];

/// The `auth` lines of the service `name` in `dir`, with `@include`, `include` and `substack`
/// expanded (as deep as libpam goes, and no deeper than 8), in the order libpam runs them.
pub(crate) fn auth_entries(dir: &Path, name: &str, depth: u32, out: &mut Vec<PamEntry>) {
    if depth > 8 || name.contains('/') {
        return;
    }
    let Ok(text) = std::fs::read_to_string(dir.join(name)) else {
        return;
    };
    for e in pam_entries(&text) {
        if e.include && (e.kind.is_empty() || e.kind == "auth") {
            auth_entries(dir, &e.module, depth + 1, out);
        } else if !e.include && e.kind == "auth" {
            out.push(e);
        }
    }
}

/// Modules whose auth step never grants a login: they return PAM_IGNORE or a failure (the
/// environment, a delay, `/etc/nologin`, groups, a deny, a log line), and tessera itself.
const NEVER_GRANT: &[&str] = &[
    "pam_env",
    "pam_faildelay",
    "pam_nologin",
    "pam_group",
    "pam_deny",
    "pam_warn",
    "pam_echo",
    "pam_tessera",
];

/// The auth modules of the service `name` (in `dir`) that could make its stack succeed when
/// pam_tessera returns PAM_IGNORE (a `skip` rule, a grace window): every auth module but the
/// ones that never grant. `None`: there is no such service file. Empty: PAM_IGNORE from
/// tessera can let nobody in, the login is denied.
pub(crate) fn others_that_may_grant(dir: &Path, name: &str) -> Option<Vec<String>> {
    if name.contains('/') || !dir.join(name).is_file() {
        return None;
    }
    let mut entries = Vec::new();
    auth_entries(dir, name, 0, &mut entries);
    let mut out: Vec<String> = Vec::new();
    for e in entries {
        let m = e.module_name();
        if !NEVER_GRANT.iter().any(|n| m.starts_with(n)) && !out.contains(&m) {
            out.push(m);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(d.path().join(name), text).unwrap();
        }
        d
    }

    #[test]
    fn ignore_from_tessera_lets_in_only_where_another_module_may_grant() {
        let d = stack(&[
            (
                "alone",
                "auth required pam_tessera.so\naccount required pam_unix.so\n",
            ),
            (
                "guarded",
                "auth requisite pam_nologin.so\nauth required pam_faildelay.so delay=2000000\n\
                 auth required pam_tessera.so\n",
            ),
            (
                "common-auth",
                "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\n\
                 auth required pam_permit.so\n",
            ),
            (
                "with-password",
                "@include common-auth\nauth required pam_tessera.so\n",
            ),
        ]);
        assert_eq!(others_that_may_grant(d.path(), "alone"), Some(vec![]));
        assert_eq!(others_that_may_grant(d.path(), "guarded"), Some(vec![]));
        assert_eq!(
            others_that_may_grant(d.path(), "with-password"),
            Some(vec!["pam_unix".to_string(), "pam_permit".to_string()])
        );
        assert_eq!(others_that_may_grant(d.path(), "nonesuch"), None);
    }
}
