//! Audit events to syslog (facility authpriv), for the hosts that log for themselves: `tessera
//! check`, and tesserad for what no PAM module logs (`tessera enroll`). A login's events reach
//! syslog through the module instead (`pam_syslog`, with the service).

use crate::store::AuditEntry;
use syslog::{Facility, Formatter3164};

/// Sends the lines to this Unix datagram socket instead of `/dev/log` (for tests). Read from
/// the environment of the host itself (root's shell, the service manager), never a caller's.
pub const SOCKET_ENV: &str = "TESSERA_SYSLOG_SOCKET";

/// One line per event (its [`AuditEntry::log_line`]) at the event's priority, as `process`;
/// best effort: no syslog socket, no line.
pub fn send(process: &str, events: &[AuditEntry]) {
    let formatter = Formatter3164 {
        facility: Facility::LOG_AUTHPRIV,
        hostname: None,
        process: process.into(),
        pid: std::process::id(),
    };
    let logger = match std::env::var_os(SOCKET_ENV) {
        Some(path) => syslog::unix_custom(formatter, path),
        None => syslog::unix(formatter),
    };
    let Ok(mut logger) = logger else { return };
    for e in events {
        let line = e.log_line();
        // The module's priorities (`AuditResult::priority`).
        let _ = match e.priority() {
            3 => logger.err(line),
            4 => logger.warning(line),
            6 => logger.info(line),
            _ => logger.notice(line),
        };
    }
}
