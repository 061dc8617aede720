//! `tesserad --log-file PATH`, for hosts without systemd and without a syslog daemon: a real
//! tesserad appends its lines to the file, each with its time, opened once as root before it
//! becomes the store's owner; links and anything but a regular file are refused; logrotate's
//! copytruncate leaves no hole.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tessera_proto::Verdict;

mod common;
use common::*;

/// A tesserad on `w` with `--log-file log`, its stderr collected (it should say nothing there).
fn start_logging(w: &World, log: &Path) -> (Daemon, PathBuf) {
    let socket = w.dir.path().join("log.sock");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tesserad"));
    cmd.arg("--config")
        .arg(&w.config)
        .arg("--socket")
        .arg(&socket)
        .arg("--log-file")
        .arg(log);
    let d = Daemon::spawn(cmd, &socket);
    wait_in(log, "listening on");
    (d, socket)
}

/// The file's text once it holds `what` (10 s at most).
fn wait_in(log: &Path, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(what) || Instant::now() > deadline {
            assert!(text.contains(what), "{what:?} not in {log:?}: {text}");
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `2025-01-31T23:59:59Z tesserad: ...`
fn timed(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 21
        && b[..20].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
        && line[21..].starts_with("tesserad: ")
}

#[test]
fn the_daemon_s_lines_go_to_the_log_file_with_their_time_and_survive_copytruncate() {
    let w = World::new("");
    let log = w.dir.path().join("tesserad.log");
    let (d, _) = start_logging(&w, &log);
    let text = wait_in(&log, "listening on");
    assert!(text.lines().all(timed), "{text}");
    // Created 0640 whatever the umask (the daemon's is 077).
    assert_eq!(std::fs::metadata(&log).unwrap().mode() & 0o7777, 0o640);
    let seen = dialogue(
        &mut d.connect(),
        login("alice"),
        &[b"1234", otp(0).as_bytes()],
    );
    assert_eq!(seen.verdict, Some(Verdict::Success), "{seen:?}");
    d.sighup();
    wait_in(&log, "config reloaded");
    assert!(d.stderr_so_far().is_empty(), "nothing on stderr");
    // logrotate's copytruncate: the file emptied in place. The next line lands at its start
    // (O_APPEND), not after a hole of zero bytes as long as what was there.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    d.sighup();
    let after = wait_in(&log, "config reloaded");
    assert!(after.starts_with(|c: char| c.is_ascii_digit()), "{after:?}");
    assert_eq!(after.lines().count(), 1, "{after:?}");
}

#[test]
fn an_existing_log_is_appended_to() {
    let w = World::new("");
    let log = w.dir.path().join("tesserad.log");
    std::fs::write(&log, "kept\n").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
    let _d = start_logging(&w, &log);
    let text = wait_in(&log, "listening on");
    assert!(text.starts_with("kept\n"), "{text}");
    // The administrator's mode stays.
    assert_eq!(std::fs::metadata(&log).unwrap().mode() & 0o7777, 0o600);
}

/// A link is refused (root must not append to whatever file it names), and so are a FIFO (it
/// would block the daemon) and a directory; the daemon says why on stderr and exits 1.
#[test]
fn a_link_a_fifo_or_a_directory_is_refused() {
    let w = World::new("");
    let target = w.dir.path().join("target");
    std::fs::write(&target, "untouched\n").unwrap();
    let link = w.dir.path().join("link.log");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let fifo = w.dir.path().join("fifo.log");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // With a reader, so that the open succeeds and the type is what refuses it (without one,
    // the open fails at once, ENXIO, as O_NONBLOCK makes it).
    let _reader = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(tessera_engine::os::sys::O_NONBLOCK)
            .open(&fifo)
            .unwrap()
    };
    let dir = w.dir.path().join("dir.log");
    std::fs::create_dir(&dir).unwrap();
    for (path, why) in [
        (&link, "Too many levels of symbolic links"),
        (&fifo, "not a regular file"),
        (&dir, "Is a directory"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tesserad"))
            .arg("--config")
            .arg(&w.config)
            .arg("--socket")
            .arg(w.dir.path().join("refused.sock"))
            .arg("--log-file")
            .arg(path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{path:?}: {said}");
        assert!(said.contains("--log-file") && said.contains(why), "{said}");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched\n");
    assert!(!w.dir.path().join("refused.sock").exists());
}

/// Started as root (an init script), tesserad opens the log as root, then becomes the store's
/// owner: the file stays root's, and the lines after the change of user still reach it.
#[test]
fn started_by_root_it_keeps_writing_a_log_of_root_s_after_it_becomes_the_store_owner() {
    if tessera_engine::os::sys::euid() != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    const OWNER: u32 = 4244;
    let w = store_owned_by(OWNER);
    // Readable by the store's owner for the reload, as the package's config is (0644).
    std::fs::set_permissions(&w.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = w.dir.path().join("tesserad.log");
    let (d, _) = start_logging(&w, &log);
    wait_in(&log, &format!("serving as uid {OWNER}"));
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    assert!(
        status.contains(&format!("Uid:\t{OWNER}\t{OWNER}\t{OWNER}\t{OWNER}")),
        "{status}"
    );
    d.sighup();
    wait_in(&log, "config reloaded");
    let meta = std::fs::metadata(&log).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o640));
}
