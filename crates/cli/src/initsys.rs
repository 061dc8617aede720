//! Which init system runs tesserad on this host, and the commands that fit it: the advice of
//! `tessera doctor` and `tessera metrics` names the ones that work here, not systemctl on a host
//! without systemd.

use std::path::Path;

/// Where the package's init script for hosts without systemd is installed.
const INIT_SCRIPT: &str = "etc/init.d/tesserad";

/// The log file the init script gives tesserad (`--log-file`).
pub const INIT_LOG: &str = "/var/log/tesserad.log";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitSystem {
    /// systemd runs (`/run/systemd/system` exists, the test of sd_booted(3)): the package's
    /// tesserad.socket and tesserad.service.
    Systemd,
    /// No systemd, and the package's init script is there (sysvinit, or a container that runs
    /// `service`).
    SysV,
    /// Neither (a container's entrypoint, a daemon started by hand): the command itself.
    Plain,
}

impl InitSystem {
    pub fn of_this_host() -> InitSystem {
        InitSystem::under(Path::new("/"))
    }

    /// As seen in the tree at `root` (`/` but in the tests).
    fn under(root: &Path) -> InitSystem {
        if root.join("run/systemd/system").is_dir() {
            InitSystem::Systemd
        } else if root.join(INIT_SCRIPT).is_file() {
            InitSystem::SysV
        } else {
            InitSystem::Plain
        }
    }

    /// The command that starts tesserad (and keeps it started across boots where the init system
    /// can), run as root.
    pub fn start(self, config: &Path, socket: &Path) -> String {
        match self {
            InitSystem::Systemd => "systemctl enable --now tesserad.socket".into(),
            InitSystem::SysV => "service tesserad start".into(),
            InitSystem::Plain => format!(
                "tesserad --config {} --socket {} --log-file {INIT_LOG} &",
                config.display(),
                socket.display()
            ),
        }
    }

    /// The command that restarts a running tesserad.
    pub fn restart(self, config: &Path, socket: &Path) -> String {
        match self {
            InitSystem::Systemd => "systemctl restart tesserad.service".into(),
            InitSystem::SysV => "service tesserad restart".into(),
            InitSystem::Plain => format!(
                "stop it (kill PID) and start it again: {}",
                self.start(config, socket)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_first_then_the_init_script_then_the_plain_command() {
        let root = tempfile::tempdir().unwrap();
        let at = root.path();
        assert_eq!(InitSystem::under(at), InitSystem::Plain);
        std::fs::create_dir_all(at.join("etc/init.d")).unwrap();
        std::fs::write(at.join(INIT_SCRIPT), "#!/bin/sh\n").unwrap();
        assert_eq!(InitSystem::under(at), InitSystem::SysV);
        // The units serve where systemd runs, even with the init script installed.
        std::fs::create_dir_all(at.join("run/systemd/system")).unwrap();
        assert_eq!(InitSystem::under(at), InitSystem::Systemd);
    }

    #[test]
    fn each_gives_its_own_commands() {
        let (cfg, sock) = (Path::new("/etc/t.toml"), Path::new("/run/t/t.sock"));
        assert_eq!(
            InitSystem::Systemd.start(cfg, sock),
            "systemctl enable --now tesserad.socket"
        );
        assert_eq!(
            InitSystem::Systemd.restart(cfg, sock),
            "systemctl restart tesserad.service"
        );
        assert_eq!(InitSystem::SysV.start(cfg, sock), "service tesserad start");
        assert_eq!(
            InitSystem::SysV.restart(cfg, sock),
            "service tesserad restart"
        );
        let plain = InitSystem::Plain.start(cfg, sock);
        assert_eq!(
            plain,
            "tesserad --config /etc/t.toml --socket /run/t/t.sock --log-file \
             /var/log/tesserad.log &"
        );
        assert!(InitSystem::Plain.restart(cfg, sock).ends_with(&plain));
        assert!(!InitSystem::Plain.restart(cfg, sock).contains("systemctl"));
    }
}
