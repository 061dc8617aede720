//! tesserad's own lines (listening, its user, reloads, enrollments, errors): on stderr, which
//! is the journal under systemd; or, with `--log-file PATH`, appended to that file, each line
//! with its time, for a host with neither systemd nor a syslog daemon (`/dev/log`): a
//! sysvinit host (the package's init script passes it), a container.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether stderr is a log file of `--log-file`: then each line starts with its time (the
/// journal, or whoever reads a plain stderr, keeps its own).
static TIMED: AtomicBool = AtomicBool::new(false);

/// One line of the daemon's log, as `format!` takes it.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::log::line(format_args!($($arg)*))
    };
}

/// Writes one line (a newline is added) to stderr in a single write: lines of threads that log
/// at once don't interleave, and an `O_APPEND` file takes each whole. Best effort: a full disk
/// loses the line, never a login.
pub fn line(args: std::fmt::Arguments) {
    let mut text = String::new();
    if TIMED.load(Ordering::Relaxed) {
        use tessera_engine::auth::{Clock, SystemClock};
        text.push_str(&timestamp(SystemClock.now()));
        text.push(' ');
    }
    text.push_str(&args.to_string());
    text.push('\n');
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Unix seconds as RFC 3339 in UTC (`2025-01-31T23:59:59Z`): sorts as text, and says its zone.
fn timestamp(t: u64) -> String {
    format!(
        "{}Z",
        tessera_engine::calendar::utc_time(t).replacen(' ', "T", 1)
    )
}

/// Makes `path` tesserad's stderr, appended to, with the time on each line. Called as root,
/// before tesserad becomes the store's owner: the file may stay root's (0640), since it is
/// written only through the descriptor opened here and never opened again (a reload does not
/// reopen it; logrotate's `copytruncate` rotates it, and `O_APPEND` writes go on at the
/// truncated end). A symbolic link is refused (root must not append to the file a link names),
/// and so is anything but a regular file: a FIFO would block the daemon, a device is no log.
pub fn to_file(path: &Path) -> Result<(), String> {
    let shown = path.display();
    let file = open_append(path).map_err(|e| format!("--log-file {shown}: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("--log-file {shown}: {e}"))?;
    if !meta.file_type().is_file() {
        return Err(format!("--log-file {shown}: not a regular file"));
    }
    tessera_engine::os::sys::stderr_to(&file).map_err(|e| format!("--log-file {shown}: {e}"))?;
    TIMED.store(true, Ordering::Relaxed);
    Ok(())
}

/// Opens `path` to append, creating it 0640 if it is missing (whatever the umask: the
/// administrator's group, adm on Debian, may be given it to read).
fn open_append(path: &Path) -> std::io::Result<File> {
    use tessera_engine::os::sys::{O_NOFOLLOW, O_NONBLOCK};
    let open = |create: bool| {
        OpenOptions::new()
            .append(true)
            .create_new(create)
            .mode(0o640)
            .custom_flags(O_NOFOLLOW | O_NONBLOCK)
            .open(path)
    };
    match open(true) {
        Ok(made) => {
            // The umask (tesserad's is 077) took the group's bits off at the creation.
            made.set_permissions(std::fs::Permissions::from_mode(0o640))?;
            Ok(made)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => open(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::timestamp;

    #[test]
    fn the_time_is_rfc_3339_in_utc() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(1_738_367_999), "2025-01-31T23:59:59Z");
    }
}
