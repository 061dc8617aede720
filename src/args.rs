//! Module arguments from the PAM line. An unknown argument is an error: a typo such as
//! `nulok` must not silently change who gets in.

use std::path::PathBuf;
use std::time::Duration;
use tessera_proto::Flags;

/// Where the daemon listens (systemd's socket unit in the package).
pub const DEFAULT_SOCKET: &str = "/run/tessera/tessera.sock";
/// The daemon spawned for one login when no socket answers and the caller is root.
pub const DEFAULT_DAEMON: &str = "/usr/sbin/tesserad";
/// The longest wait for the daemon's next message, unless it announces a longer one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct ModuleArgs {
    /// `config=`: passed to a spawned daemon (the system daemon serves its own).
    pub config: Option<PathBuf>,
    pub socket: PathBuf,
    pub daemon: PathBuf,
    pub timeout: Duration,
    pub flags: Flags,
    pub prompt: Option<String>,
}

impl Default for ModuleArgs {
    fn default() -> Self {
        ModuleArgs {
            config: None,
            socket: PathBuf::from(DEFAULT_SOCKET),
            daemon: PathBuf::from(DEFAULT_DAEMON),
            timeout: DEFAULT_TIMEOUT,
            flags: Flags::default(),
            prompt: None,
        }
    }
}

pub fn parse<'a>(args: impl IntoIterator<Item = &'a [u8]>) -> Result<ModuleArgs, String> {
    let mut out = ModuleArgs::default();
    for raw in args {
        let arg = std::str::from_utf8(raw)
            .map_err(|_| format!("module argument is not UTF-8: {}", raw.escape_ascii()))?;
        let unknown = || format!("unknown module argument \"{}\"", arg.escape_debug());
        match arg.split_once('=') {
            None => match arg {
                "debug" => out.flags.debug = true,
                "use_first_pass" => out.flags.use_first_pass = true,
                "try_first_pass" => out.flags.try_first_pass = true,
                "nullok" => out.flags.nullok = true,
                _ => return Err(unknown()),
            },
            Some(("config", path)) if !path.is_empty() => out.config = Some(PathBuf::from(path)),
            Some(("socket", path)) if !path.is_empty() => out.socket = PathBuf::from(path),
            Some(("daemon", path)) if path.starts_with('/') => out.daemon = PathBuf::from(path),
            Some(("timeout", secs)) => {
                let s: u64 = secs
                    .parse()
                    .ok()
                    .filter(|s| (1..=600).contains(s) && secs.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| {
                        format!("timeout=\"{}\": 1 to 600 seconds", secs.escape_debug())
                    })?;
                out.timeout = Duration::from_secs(s);
            }
            Some(("prompt", text)) => out.prompt = Some(text.to_string()),
            Some(_) => return Err(unknown()),
        }
    }
    if out.flags.use_first_pass && out.flags.try_first_pass {
        return Err("use_first_pass and try_first_pass exclude each other".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<ModuleArgs, String> {
        parse(a.iter().map(|s| s.as_bytes()))
    }

    #[test]
    fn known_arguments() {
        let a = p(&[
            "config=/x.toml",
            "debug",
            "nullok",
            "try_first_pass",
            "prompt=Your PIN: ",
            "socket=/run/t.sock",
            "daemon=/opt/tesserad",
            "timeout=5",
        ])
        .unwrap();
        assert_eq!(a.config.unwrap(), PathBuf::from("/x.toml"));
        assert!(a.flags.debug && a.flags.nullok && a.flags.try_first_pass);
        assert_eq!(a.prompt.as_deref(), Some("Your PIN: "));
        assert_eq!(a.socket, PathBuf::from("/run/t.sock"));
        assert_eq!(a.daemon, PathBuf::from("/opt/tesserad"));
        assert_eq!(a.timeout, Duration::from_secs(5));
        let d = p(&[]).unwrap();
        assert_eq!(d.socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(d.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn unknown_arguments_are_refused() {
        assert!(p(&["nulok"]).unwrap_err().contains("nulok"));
        assert!(p(&["config="]).is_err());
        assert!(p(&["colour=red"]).is_err());
        assert!(p(&["use_first_pass", "try_first_pass"]).is_err());
        assert!(p(&["daemon=tesserad"]).is_err(), "an absolute path only");
        for t in [
            "timeout=0",
            "timeout=601",
            "timeout=+5",
            "timeout=x",
            "timeout=",
        ] {
            assert!(p(&[t]).is_err(), "{t}");
        }
    }
}
