//! Where an attempt comes from, as its failures are counted (`[auth] lock_scope = "source"`).
//!
//! A source must not be cheap to multiply: every new source would bring `max_fail` new
//! guesses. So a source is what its caller can't choose freely:
//!
//! - a caller other than root: its uid (SO_PEERCRED), whatever it says;
//! - a root caller with PAM_RHOST: an IPv4 address as it is; an IPv6 address cut to its
//!   `/source_prefix_v6` network (a host has a /64 to pick from); a loopback address, one of
//!   this host's own, or `localhost` as the one source `local` (every local user can pick any
//!   of 127/8's 2^24 addresses); a name lowercased;
//! - a root caller without PAM_RHOST (sudo, su, a setuid helper): the real uid of the process
//!   that called PAM, which the module sends. PAM_RUSER is never a source: polkit's setuid
//!   helper sets it to the account being asked for, not to who asks. Real uid 0: PAM_TTY (a
//!   console login), else `root`.

use super::Login;
use std::net::{IpAddr, Ipv6Addr};

/// The longest part of a source's name kept (a remote host name from outside).
const NAME_MAX: usize = 128;

/// A source, by the name its failures are stored under (`rhost=192.0.2.7`,
/// `rhost=2001:db8:1:2::/64`, `local`, `uid=1000`, `tty=tty1`, `root`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source(String);

impl Source {
    /// The source of `login`; `own` says whether an address is one of this host's.
    pub fn of(login: &Login, prefix_v6: u8, own: impl Fn(IpAddr) -> bool) -> Source {
        let name = if login.caller != 0 {
            format!("uid={}", login.caller)
        } else if !login.rhost.is_empty() {
            remote(&login.rhost, prefix_v6, own)
        } else if login.uid != 0 {
            format!("uid={}", login.uid)
        } else if !login.tty.is_empty() {
            format!("tty={}", crate::store::cap_to(&login.tty, NAME_MAX))
        } else {
            "root".into()
        };
        Source(name)
    }

    /// The source of `login` on this host (its own addresses from `getifaddrs`).
    pub fn on_this_host(login: &Login, prefix_v6: u8) -> Source {
        Source::of(login, prefix_v6, crate::os::sys::is_own_address)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The uid this source is, if it is one.
    pub fn uid(&self) -> Option<u32> {
        self.0.strip_prefix("uid=")?.parse().ok()
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The source of a PAM_RHOST.
fn remote(rhost: &str, prefix_v6: u8, own: impl Fn(IpAddr) -> bool) -> String {
    let Some(ip) = parse_ip(rhost) else {
        let name = rhost.trim_end_matches('.').to_ascii_lowercase();
        if name == "localhost" || name.ends_with(".localhost") {
            return "local".into();
        }
        return format!("rhost={}", crate::store::cap_to(&name, NAME_MAX));
    };
    // An IPv4 address written as IPv6 (`::ffff:192.0.2.7`) is that IPv4 address.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if ip.is_loopback() || ip.is_unspecified() || own(ip) {
        return "local".into();
    }
    match ip {
        IpAddr::V4(v4) => format!("rhost={v4}"),
        IpAddr::V6(v6) => {
            let bits = u32::from(prefix_v6.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            let net = Ipv6Addr::from(u128::from(v6) & mask);
            format!("rhost={net}/{bits}")
        }
    }
}

/// An address as PAM_RHOST may carry one: bare, in brackets, with an IPv6 zone (`fe80::1%eth0`).
fn parse_ip(rhost: &str) -> Option<IpAddr> {
    let s = rhost.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    let s = s.split_once('%').map_or(s, |(addr, _zone)| addr);
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_from(rhost: &str) -> Login {
        Login {
            rhost: rhost.into(),
            ..Login::default()
        }
    }

    fn src(l: &Login) -> String {
        let own: IpAddr = "198.51.100.10".parse().unwrap();
        Source::of(l, 64, |ip| ip == own).0
    }

    #[test]
    fn loopback_and_own_addresses_are_one_source() {
        for rhost in [
            "127.0.0.1",
            "127.0.0.2",
            "127.9.8.7",
            "127.255.255.254",
            "::1",
            "[::1]",
            "::ffff:127.3.4.5",
            "0.0.0.0",
            "198.51.100.10",
            "localhost",
            "LOCALHOST.",
        ] {
            assert_eq!(src(&root_from(rhost)), "local", "{rhost}");
        }
    }

    #[test]
    fn an_ipv6_network_is_one_source() {
        let a = src(&root_from("2001:db8:1:2::1"));
        assert_eq!(a, "rhost=2001:db8:1:2::/64");
        for other in [
            "2001:db8:1:2:ffff:ffff:ffff:ffff",
            "2001:DB8:1:2:dead:beef:0:1",
            "[2001:db8:1:2::7]",
            "2001:db8:1:2::9%eth0",
        ] {
            assert_eq!(src(&root_from(other)), a, "{other}");
        }
        assert_ne!(src(&root_from("2001:db8:1:3::1")), a);
        let l = root_from("2001:db8:1:2::1");
        assert_eq!(Source::of(&l, 48, |_| false).0, "rhost=2001:db8:1::/48");
        assert_eq!(
            Source::of(&l, 128, |_| false).0,
            "rhost=2001:db8:1:2::1/128"
        );
        assert_eq!(Source::of(&l, 0, |_| false).0, "rhost=::/0");
    }

    #[test]
    fn ipv4_addresses_stay_as_they_are_and_names_are_lowercased() {
        assert_eq!(src(&root_from("192.0.2.7")), "rhost=192.0.2.7");
        assert_eq!(src(&root_from("::ffff:192.0.2.7")), "rhost=192.0.2.7");
        assert_eq!(src(&root_from("Host.Example.")), "rhost=host.example");
        let long = "a".repeat(1000);
        assert!(src(&root_from(&long)).len() < 200);
    }

    #[test]
    fn without_a_remote_host_the_real_uid_counts_never_pam_ruser() {
        // polkit-agent-helper-1: setuid root, PAM_RUSER the target account, real uid srb's.
        let polkit = Login {
            ruser: "sra".into(),
            uid: 1002,
            ..Login::default()
        };
        assert_eq!(src(&polkit), "uid=1002");
        let sudo_of_sra = Login {
            ruser: "sra".into(),
            uid: 1001,
            tty: "pts/1".into(),
            ..Login::default()
        };
        assert_eq!(src(&sudo_of_sra), "uid=1001");
        let console = Login {
            tty: "tty1".into(),
            ruser: "whoever".into(),
            ..Login::default()
        };
        assert_eq!(src(&console), "tty=tty1");
        assert_eq!(src(&Login::default()), "root");
        // A caller other than root is its uid, whatever it says.
        let locker = Login {
            caller: 1003,
            uid: 0,
            rhost: "192.0.2.7".into(),
            ..Login::default()
        };
        assert_eq!(src(&locker), "uid=1003");
        assert_eq!(Source::of(&locker, 64, |_| false).uid(), Some(1003));
    }
}
