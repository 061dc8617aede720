//! A host process that ignores SIGCHLD (some daemons do) still gets its mail sent through the
//! sendmail command, and keeps its SIGCHLD disposition. A test binary of its own: the
//! disposition is process-wide and would disturb other tests waiting for children.

fn sigchld_handler() -> libc::sighandler_t {
    // SAFETY: all-zero is a valid `sigaction`; a null `act` only reads the current one.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: SIGCHLD is a valid signal; `old` is a live, writable struct.
    let rc = unsafe { libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut old) };
    assert_eq!(rc, 0);
    old.sa_sigaction
}

#[test]
fn sendmail_works_and_sigchld_stays_ignored_when_the_host_ignores_it() {
    // SAFETY: installs no handler code, only the kernel's "ignore" disposition.
    let prev = unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    assert_ne!(prev, libc::SIG_ERR);
    assert_eq!(sigchld_handler(), libc::SIG_IGN);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mail");
    let cmd = format!("/usr/bin/tee {}", out.display());
    tessera_engine::delivery::sendmail::send(&cmd, b"To: a@b.org\r\n\r\nbody\r\n", 5)
        .expect("a delivery that worked is a success");
    assert_eq!(std::fs::read(&out).unwrap(), b"To: a@b.org\n\nbody\n");
    assert_eq!(
        sigchld_handler(),
        libc::SIG_IGN,
        "the host's disposition is back after the delivery"
    );

    // And a command that fails is still told apart (its status is read, not lost).
    let e = tessera_engine::delivery::sendmail::send("/bin/false", b"x", 5).unwrap_err();
    assert!(e.to_string().contains("exit status: 1"), "{e}");
    assert_eq!(sigchld_handler(), libc::SIG_IGN);
}
