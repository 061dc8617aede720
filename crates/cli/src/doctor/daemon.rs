//! What runs beside the module: tesserad on its socket (and what it says of itself), with the
//! advice in the commands of this host's init, and the syslog socket. Apart because these look
//! at running services, not at files or the store.

use super::report::Report;
use crate::initsys::{InitSystem, INIT_LOG};
use crate::CliResult;
use std::path::Path;

pub(super) fn check_syslog(r: &mut Report) -> CliResult<()> {
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
/// Whether tesserad answers on its socket, which the package's tesserad.socket provides
/// (enabled and started on install), or its init script where systemd does not run. Without it
/// root callers spawn a tesserad per login, and every other caller (screen lockers) fails
/// closed: a warning, logins still work. The advice names the commands of this host's init.
pub(super) fn check_daemon(r: &mut Report, config: &Path, socket: &Path) -> CliResult<()> {
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
