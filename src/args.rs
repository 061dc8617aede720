//! Module arguments from the PAM line. An unknown argument is an error: a typo such as
//! `nulok` must not silently change who gets in. The values borrow libpam's argv strings.

use core::ffi::CStr;
use tessera_proto::Flags;

/// Where the daemon listens (systemd's socket unit in the package).
pub const DEFAULT_SOCKET: &CStr = c"/run/tessera/tessera.sock";
/// The daemon spawned for one login when no socket answers and the caller is root.
pub const DEFAULT_DAEMON: &CStr = c"/usr/sbin/tesserad";
/// The longest wait for the daemon's next message, unless it announces a longer one.
pub const DEFAULT_TIMEOUT_SECS: u32 = 30;

#[derive(Debug, Clone)]
pub struct ModuleArgs<'a> {
    /// `config=`: passed to a spawned daemon (the system daemon serves its own).
    pub config: Option<&'a CStr>,
    pub socket: &'a CStr,
    pub daemon: &'a CStr,
    pub timeout_secs: u32,
    pub flags: Flags,
    pub prompt: Option<&'a str>,
}

impl Default for ModuleArgs<'_> {
    fn default() -> Self {
        ModuleArgs {
            config: None,
            socket: DEFAULT_SOCKET,
            daemon: DEFAULT_DAEMON,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            flags: Flags::default(),
            prompt: None,
        }
    }
}

/// Why the PAM line's arguments are refused; each names the argument as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgError<'a> {
    NotUtf8(&'a [u8]),
    Unknown(&'a str),
    Timeout(&'a str),
    BothFirstPass,
}

impl ArgError<'_> {
    /// The log line, in pieces.
    pub fn pieces(&self) -> [&[u8]; 3] {
        match self {
            ArgError::NotUtf8(a) => [b"module argument is not UTF-8: \"", a, b"\""],
            ArgError::Unknown(a) => [b"unknown module argument \"", a.as_bytes(), b"\""],
            ArgError::Timeout(a) => [b"timeout=\"", a.as_bytes(), b"\": 1 to 600 seconds"],
            ArgError::BothFirstPass => [
                b"use_first_pass and try_first_pass exclude each other",
                b"",
                b"",
            ],
        }
    }
}

/// The value after `key=` in `arg`, still NUL-terminated.
fn value<'a>(arg: &'a CStr, key: &str) -> Option<&'a CStr> {
    let rest = arg.to_bytes_with_nul().strip_prefix(key.as_bytes())?;
    CStr::from_bytes_with_nul(rest.strip_prefix(b"=")?).ok()
}

pub fn parse<'a>(args: impl IntoIterator<Item = &'a CStr>) -> Result<ModuleArgs<'a>, ArgError<'a>> {
    let mut out = ModuleArgs::default();
    for raw in args {
        let arg = raw
            .to_str()
            .map_err(|_| ArgError::NotUtf8(raw.to_bytes()))?;
        let unknown = ArgError::Unknown(arg);
        match arg.split_once('=') {
            None => match arg {
                "debug" => out.flags.debug = true,
                "use_first_pass" => out.flags.use_first_pass = true,
                "try_first_pass" => out.flags.try_first_pass = true,
                "nullok" => out.flags.nullok = true,
                _ => return Err(unknown),
            },
            Some((key @ ("config" | "socket" | "daemon"), path)) => {
                let v = value(raw, key).ok_or(unknown)?;
                match key {
                    "config" if !path.is_empty() => out.config = Some(v),
                    "socket" if !path.is_empty() => out.socket = v,
                    "daemon" if path.starts_with('/') => out.daemon = v,
                    _ => return Err(unknown),
                }
            }
            Some(("timeout", secs)) => {
                out.timeout_secs = secs
                    .parse()
                    .ok()
                    .filter(|s| (1..=600).contains(s) && secs.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or(ArgError::Timeout(secs))?;
            }
            Some(("prompt", text)) => out.prompt = Some(text),
            Some(_) => return Err(unknown),
        }
    }
    if out.flags.use_first_pass && out.flags.try_first_pass {
        return Err(ArgError::BothFirstPass);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p<'a>(a: &[&'a CStr]) -> Result<ModuleArgs<'a>, ArgError<'a>> {
        parse(a.iter().copied())
    }

    #[test]
    fn known_arguments() {
        let a = p(&[
            c"config=/x.toml",
            c"debug",
            c"nullok",
            c"try_first_pass",
            c"prompt=Your PIN: ",
            c"socket=/run/t.sock",
            c"daemon=/opt/tesserad",
            c"timeout=5",
        ])
        .unwrap();
        assert_eq!(a.config.unwrap(), c"/x.toml");
        assert!(a.flags.debug && a.flags.nullok && a.flags.try_first_pass);
        assert_eq!(a.prompt, Some("Your PIN: "));
        assert_eq!(a.socket, c"/run/t.sock");
        assert_eq!(a.daemon, c"/opt/tesserad");
        assert_eq!(a.timeout_secs, 5);
        let d = p(&[]).unwrap();
        assert_eq!(d.socket, DEFAULT_SOCKET);
        assert_eq!(d.timeout_secs, DEFAULT_TIMEOUT_SECS);
    }

    #[test]
    fn unknown_arguments_are_refused() {
        assert_eq!(p(&[c"nulok"]).unwrap_err(), ArgError::Unknown("nulok"));
        assert!(p(&[c"config="]).is_err());
        assert!(p(&[c"colour=red"]).is_err());
        assert!(p(&[c"configx=/a"]).is_err());
        assert_eq!(
            p(&[c"use_first_pass", c"try_first_pass"]).unwrap_err(),
            ArgError::BothFirstPass
        );
        assert!(p(&[c"daemon=tesserad"]).is_err(), "an absolute path only");
        assert_eq!(
            p(&[c"debug\xff"]).unwrap_err(),
            ArgError::NotUtf8(b"debug\xff")
        );
        for t in [
            c"timeout=0",
            c"timeout=601",
            c"timeout=+5",
            c"timeout=x",
            c"timeout=",
        ] {
            assert!(
                matches!(p(&[t]).unwrap_err(), ArgError::Timeout(_)),
                "{t:?}"
            );
        }
    }
}
