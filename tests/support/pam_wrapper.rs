//! Running `pamtester` under cwrap's pam_wrapper: service files from a directory of the
//! test's, libpam's syslog lines on stderr.

use std::path::Path;

/// The PAM service name the tests' service files are written for.
pub const SERVICE: &str = "tessera-test";

/// The syslog lines in pam_wrapper's debug output.
pub fn syslog_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter_map(|l| l.split_once("SYSLOG(").map(|(_, rest)| rest))
        .collect()
}

/// Held while a pam_wrapper process runs. pam_wrapper copies the service files into a
/// directory `/tmp/pam.?` that it picks by `lstat` then `mkdir`, and it removes a directory
/// whose pid file names a process it cannot signal (the pid cut to 16 bits): two pam_wrapper
/// processes started at once with different service directories can share one, and one then
/// reads the other's service file (a test's login judged by another test's config). A file
/// lock, so that it holds across the threads of a test binary and across binaries. Processes
/// that share one service directory may run together under one lock (tests/race.rs).
pub struct PamWrapperLock(#[allow(dead_code)] std::fs::File);

pub fn pam_wrapper_lock() -> PamWrapperLock {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join(format!(
            "tessera-tests-pam-wrapper-{}.lock",
            tessera_engine::os::sys::euid()
        )))
        .expect("the pam_wrapper lock file");
    // SAFETY: flock on a descriptor we own; it is released when the file is closed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
    PamWrapperLock(file)
}

/// `pamtester -v tessera-test USER authenticate` under pam_wrapper with the service files in
/// `services`. Hold [`pam_wrapper_lock`] while it runs.
pub fn pamtester_command(services: &Path, user: &str) -> std::process::Command {
    pamtester_service(services, SERVICE, user)
}

/// Runs `cmd` (a [`pamtester_command`]) under [`pam_wrapper_lock`] with `lines` on its stdin,
/// one per prompt; its stdout and stderr are captured.
pub fn run_pamtester(cmd: &mut std::process::Command, lines: &[&str]) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let _lock = pam_wrapper_lock();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pamtester (apt-get install pamtester libpam-wrapper)");
    {
        // pamtester may end before it read every line.
        let mut stdin = child.stdin.take().unwrap();
        for l in lines {
            let _ = writeln!(stdin, "{l}");
        }
    }
    child.wait_with_output().unwrap()
}

/// [`pamtester_command`] for another service file of `services` (a peer's stack).
pub fn pamtester_service(services: &Path, service: &str, user: &str) -> std::process::Command {
    pamtester_items(services, service, user, &[])
}

/// [`pamtester_service`] with PAM items set before `pam_authenticate` (`-I rhost=...`).
pub fn pamtester_items(
    services: &Path,
    service: &str,
    user: &str,
    items: &[(&str, &str)],
) -> std::process::Command {
    let mut c = std::process::Command::new("pamtester");
    c.arg("-v");
    for (item, value) in items {
        c.arg("-I").arg(format!("{item}={value}"));
    }
    // Keeps what the test runner preloads (nss_wrapper with the test accounts, tests/nss/run).
    let preload = match std::env::var("LD_PRELOAD") {
        Ok(p) if !p.is_empty() => format!("libpam_wrapper.so {p}"),
        _ => "libpam_wrapper.so".to_string(),
    };
    c.args([service, user, "authenticate"])
        .env("LD_PRELOAD", preload)
        .env("PAM_WRAPPER", "1")
        .env("PAM_WRAPPER_SERVICE_DIR", services);
    c
}
