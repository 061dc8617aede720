//! The module and its daemon: what a login does when tesserad is absent, hung, talking
//! garbage, killed or restarted in the middle, and who may ask through it. Every case ends in a
//! bounded time with PAM_AUTHINFO_UNAVAIL and one log line, never a hang of the caller.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::remote;
use support::*;

/// A fake daemon on `socket`: each connection gets `answer` after the login frame arrives
/// (nothing at all when `None`), then stays open.
fn fake_daemon(socket: &Path, answer: Option<Vec<u8>>) {
    let l = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            let mut s = s;
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            if let Some(a) = &answer {
                let _ = s.write_all(a);
            }
            held.push(s);
        }
    });
}

/// pamtester for alice, run as alice (uid 10001 in tests/nss/passwd, as a screen locker runs):
/// it must fail; its stderr (the syslog lines under pam_wrapper).
fn refused_as_alice(fx: &Fixture) -> String {
    let _lock = pam_wrapper_lock();
    let out = pamtester_command(&fx.services, "alice")
        .env("PAM_WRAPPER_DEBUGLEVEL", "2")
        .uid(10001)
        .gid(10001)
        .output()
        .unwrap();
    assert!(!out.status.success(), "alice was let in");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The stack of `fx` pointed at another socket, with `timeout=`.
fn point_at(fx: &Fixture, socket: &Path, args: &str) {
    fx.set_stack(&[&format!(
        "auth required {} socket={} {args}",
        module_path().display(),
        socket.display()
    )]);
}

#[test]
fn a_hung_daemon_gives_unavailable_within_the_timeout() {
    let fx = Fixture::new("");
    let sock = fx.dir.path().join("hung.sock");
    fake_daemon(&sock, None);
    point_at(&fx, &sock, "timeout=2");
    let start = Instant::now();
    let (status, err) = pamtester(&fx, "alice", &[]);
    assert!(!status.success());
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    assert!(err.contains("cannot retrieve authentication info"), "{err}");
    let lines = syslog_lines(&err);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("tesserad: no answer within 2 s")),
        "{lines:?}"
    );
}

#[test]
fn a_daemon_that_talks_garbage_gives_unavailable() {
    let fx = Fixture::new("");
    let sock = fx.dir.path().join("garbage.sock");
    fake_daemon(&sock, Some(b"\x00\x00\x00\x05HTTP/".to_vec()));
    point_at(&fx, &sock, "timeout=2");
    let (status, err) = pamtester(&fx, "alice", &[]);
    assert!(!status.success());
    let lines = syslog_lines(&err);
    assert!(
        lines.iter().any(|l| l.contains("not a tessera message")),
        "{lines:?}"
    );
    // A length prefix of 4 GiB is refused before anything is read.
    let sock = fx.dir.path().join("huge.sock");
    fake_daemon(&sock, Some(vec![0xff; 16]));
    point_at(&fx, &sock, "timeout=2");
    let (status, err) = pamtester(&fx, "alice", &[]);
    assert!(!status.success());
    assert!(
        syslog_lines(&err).iter().any(|l| l.contains("a frame of")),
        "{err}"
    );
}

/// No daemon: a root caller spawns one (`tesserad --stdio`); any other caller fails closed and
/// the log says what to do.
#[test]
fn without_a_daemon_root_spawns_one_and_others_fail_closed() {
    let fx = Fixture::new("");
    // The spawned daemon runs with an empty environment, so without the tests' nss_wrapper:
    // its user must be a real account, root.
    let t = Tok::hotp("H1", "root", "1234");
    fx.add(&t);
    let none = fx.dir.path().join("none.sock");
    point_at(
        &fx,
        &none,
        &format!(
            "daemon={} config={}",
            bin_path("tesserad").display(),
            fx.config.display()
        ),
    );
    let pass = format!("1234{}", t.hotp_at(0));
    if tessera_engine::os::sys::euid() == 0 {
        let (status, err) = pamtester(&fx, "root", &[&pass]);
        assert!(status.success(), "spawned tesserad: {err}");
        // Not root: as alice. The admin's reason goes to the log, the user gets one line.
        let err = refused_as_alice(&fx);
        assert!(
            syslog_lines(&err)
                .iter()
                .any(|l| l.contains("no tesserad at") && l.contains("tesserad.socket")),
            "{err}"
        );
        assert!(
            err.contains(
                "two-factor login is not available on this host (the tessera service is not \
                 running)"
            ),
            "{err}"
        );
    } else {
        let (status, err) = pamtester(&fx, "root", &[&pass]);
        assert!(!status.success());
        assert!(
            syslog_lines(&err)
                .iter()
                .any(|l| l.contains("no tesserad at")),
            "{err}"
        );
    }
}

/// Without a daemon and with none to start, the user is told in one line (PAM_ERROR_MSG), not
/// under PAM_SILENT; the reason is the admin's, in the log.
#[test]
fn without_a_daemon_the_user_is_told_in_one_line() {
    let fx = Fixture::new("");
    fx.add(&Tok::hotp("H1", "alice", "1234"));
    point_at(
        &fx,
        &fx.dir.path().join("none.sock"),
        "daemon=/nonexistent/tesserad",
    );
    let out = fx.login("alice").run();
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{out:?}");
    assert_told_unavailable(&out, "no daemon");
    assert!(out.messages[0].text.contains("is not running"), "{out:?}");
    let out = fx.login("alice").silent().run();
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{out:?}");
    assert!(out.messages.is_empty(), "PAM_SILENT: {out:?}");
}

/// `tessera doctor` asks the running daemon how it is: its user, its config, its store and
/// key as the daemon opens them, its load. A daemon that answers but can't serve (here: its key
/// is gone) is a failure that says why, not "answers".
#[test]
fn doctor_asks_the_daemon_and_fails_when_it_cannot_serve() {
    let fx = Fixture::new("");
    fx.add(&Tok::hotp("H1", "alice", "1234"));
    let socket = fx.socket.display().to_string();
    let doctor = || {
        let out = fx.tessera(&["doctor", "--socket", &socket], "");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = doctor();
    for line in [
        "ok    tesserad: its config loads".to_string(),
        format!("ok    tesserad: it opens the store {}", fx.db.display()),
        format!("ok    tesserad: it reads the key {}", fx.key_file.display()),
        format!("ok    tesserad answers on {socket} (screen lockers work)"),
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} in:\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("ok    tesserad: 0 logins under way")),
        "its own request is no login under way: {out}"
    );
    std::fs::rename(&fx.key_file, fx.dir.path().join("moved.key")).unwrap();
    let out = doctor();
    assert!(
        out.lines()
            .any(|l| l.starts_with("FAIL  tesserad: it can't read the key")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with(&format!(
            "FAIL  tesserad answers on {socket} but can't serve logins"
        ))),
        "{out}"
    );
    assert!(!out.contains("(screen lockers work)"), "{out}");
}

/// The same for a store the daemon can't open (here: others may write it, which the daemon's
/// file checks refuse): a failure line that says why, not "answers".
#[test]
fn doctor_fails_when_the_daemon_cannot_open_its_store() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new("");
    fx.add(&Tok::hotp("H1", "alice", "1234"));
    let socket = fx.socket.display().to_string();
    drop(fx.store());
    std::fs::set_permissions(&fx.db, std::fs::Permissions::from_mode(0o666)).unwrap();
    // (fx.tessera would open the store first, and fail on the same mode.)
    let out = tessera(&fx.config, &["doctor", "--socket", &socket], "");
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = out
        .lines()
        .find(|l| l.starts_with("FAIL  tesserad: it can't open the store"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains(&fx.db.display().to_string()), "{line}");
    assert!(
        out.lines().any(|l| l.starts_with(&format!(
            "FAIL  tesserad answers on {socket} but can't serve logins"
        ))),
        "{out}"
    );
}

/// A full daemon says "busy" before it reads anything: a root caller's module then serves the
/// login with a daemon of its own (`tesserad --stdio`), so root is never refused for capacity;
/// any other caller fails closed, and the log says why.
#[test]
fn a_full_daemon_sends_root_to_a_daemon_of_its_own() {
    let fx = Fixture::new("");
    // The spawned daemon has no nss_wrapper (an empty environment): its user is root.
    let t = Tok::hotp("H1", "root", "1234");
    fx.add(&t);
    let sock = fx.dir.path().join("full.sock");
    let mut busy = tessera_proto::Reply::Log {
        priority: 4,
        line: "tesserad is full: a test".into(),
    }
    .encode()
    .to_vec();
    busy.extend_from_slice(&tessera_proto::Reply::Busy.encode());
    fake_daemon(&sock, Some(busy));
    // Open to every local user, as tesserad's socket is.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    point_at(
        &fx,
        &sock,
        &format!(
            "daemon={} config={}",
            bin_path("tesserad").display(),
            fx.config.display()
        ),
    );
    if tessera_engine::os::sys::euid() != 0 {
        let (status, err) = pamtester(&fx, "alice", &["1234"]);
        assert!(!status.success());
        assert!(
            syslog_lines(&err).iter().any(|l| l.contains("try again")),
            "{err}"
        );
        return;
    }
    let (status, err) = pamtester(&fx, "root", &[&format!("1234{}", t.hotp_at(0))]);
    assert!(status.success(), "served by a spawned tesserad: {err}");
    assert_eq!(
        fx.token("H1").counter,
        1,
        "the spawned daemon took the code"
    );
    let err = refused_as_alice(&fx);
    let lines = syslog_lines(&err);
    assert!(
        lines.iter().any(|l| l.contains("tesserad is full: a test")),
        "{err}"
    );
    assert!(lines.iter().any(|l| l.contains("try again")), "{err}");
}

/// The daemon dies (or is restarted) while the user reads the challenge: the login ends with
/// PAM_AUTHINFO_UNAVAIL, and the next login through the new daemon works.
#[test]
fn a_daemon_killed_or_restarted_mid_login() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let pid = fx.daemon_pid();
    let (config, socket) = (fx.config.clone(), fx.socket.clone());
    let restarted: Arc<Mutex<Option<Daemon>>> = Arc::default();
    let keep = restarted.clone();
    let otp = t.hotp_at(0);
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer_with("otp value", move |_| {
            let ok = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .unwrap()
                .success();
            assert!(ok);
            std::thread::sleep(Duration::from_millis(100));
            *keep.lock().unwrap() = Some(Daemon::start(&bin_path("tesserad"), &config, &socket));
            otp.clone()
        })
        .run();
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{out:?}");
    assert!(restarted.lock().unwrap().is_some());
    // The OTP was not used up; the new daemon takes it.
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
}

/// Every attempt's failure counts and audit row are committed before its reply: a daemon
/// killed (kill -9) right after it refused two guesses gives neither back, and an accepted
/// OTP's counter, committed and synced before its reply, is never lost.
#[test]
fn a_daemon_killed_right_after_its_rejects_gives_no_guess_back() {
    let fx = Fixture::new("[auth]\nmax_fail = 2");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let login = |otp: &str| {
        fx.login("alice")
            .answer("PIN", &format!("1234{otp}"))
            .run()
            .code
    };
    let rows = || fx.store().audit_entries(None, 1000).unwrap().len();
    let token = || fx.store().get_token("H1").unwrap();
    assert_eq!(login(&t.hotp_at(0)), PAM_SUCCESS);
    let accepted_rows = rows();
    assert_eq!(token().counter, 1, "the accept is on disk before its reply");
    for _ in 0..2 {
        assert_eq!(login("000000"), PAM_AUTH_ERR);
    }
    let pid = fx.daemon_pid();
    assert!(std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(200));
    let sources = fx.store().source_failures_of(None).unwrap();
    eprintln!(
        "after kill -9: counter {}, {} audit rows of 2 refused attempts, sources {sources:?}",
        token().counter,
        rows() - accepted_rows,
    );
    assert_eq!(token().counter, 1);
    assert_eq!(rows(), accepted_rows + 2, "both refusals are on disk");
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].count, 2);

    // A new daemon: the source stays locked (the right code too), the used code stays used.
    let _new = Daemon::start(&bin_path("tesserad"), &fx.config, &fx.socket);
    // Refused before the prompt, whatever would be typed.
    let out = fx.login("alice").run();
    assert_eq!(out.code, PAM_MAXTRIES, "no guess given back: {out:?}");
    assert_eq!(
        token().counter,
        1,
        "the code refused at the lock is not used up"
    );
}

/// A screen locker runs PAM as the logged-in user: through the daemon it may authenticate its
/// own account, not another. (Run as root, pamtester runs as alice, uid 10001.)
#[test]
fn a_non_root_caller_through_the_daemon() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    fx.add(&Tok::hotp("B1", "bob", "1234"));
    let as_alice = |user: &str, line: &str| {
        let mut cmd = pamtester_command(&fx.services, user);
        cmd.env("PAM_WRAPPER_DEBUGLEVEL", "2");
        if tessera_engine::os::sys::euid() == 0 {
            cmd.uid(10001).gid(10001);
        }
        let out = run_pamtester(&mut cmd, &[line]);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    if tessera_engine::os::sys::euid() != 0 {
        // Not root: the test accounts have the test's own uid (tests/nss/run); root's is
        // another's.
        let (ok, err) = as_alice("alice", &format!("1234{}", t.hotp_at(0)));
        assert!(ok, "own account: {err}");
        let (ok, err) = as_alice("root", "1234");
        assert!(!ok && !err.contains("PIN:"), "root's account: {err}");
        return;
    }
    let (ok, err) = as_alice("alice", &format!("1234{}", t.hotp_at(0)));
    assert!(ok, "alice for alice: {err}");
    let (ok, err) = as_alice("bob", "1234");
    assert!(!ok, "alice for bob: {err}");
    assert!(!err.contains("PIN:"), "refused before any prompt: {err}");
    assert!(
        fx.audit()
            .iter()
            .any(|e| e.user == "bob" && e.reason.contains("may only authenticate its own account")),
        "{:?}",
        fx.audit()
    );
}

/// The module is a thin client: it needs libpam and libc only (and the dynamic loader, which
/// provides the thread-local storage of Rust's std and is in every process already), and
/// carries none of the engine.
#[test]
fn the_module_links_nothing_of_the_engine() {
    let so = module_path();
    let out = std::process::Command::new("readelf")
        .arg("-d")
        .arg(&so)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let needed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    for n in &needed {
        assert!(
            ["libpam.so.0", "libc.so.6"].contains(n) || n.starts_with("ld-linux"),
            "{n} in {needed:?}"
        );
    }
    let syms = std::process::Command::new("nm")
        .arg("-C")
        .arg(&so)
        .output()
        .unwrap();
    let syms = String::from_utf8_lossy(&syms.stdout);
    for engine_part in ["sqlite3_open", "rustls::", "argon2::", "toml::", "ureq::"] {
        assert!(
            !syms.contains(engine_part),
            "{engine_part} linked into the module"
        );
    }
}

/// Push polling takes longer than the module's `timeout=`: the daemon announces the wait
/// (`Reply::Wait`: push_timeout plus the HTTP timeout) and the module waits for it instead of
/// giving up. Here the phone confirms after ~3 s of polling, against `timeout=1`.
#[test]
fn a_push_wait_longer_than_the_module_timeout_is_announced_and_waited_for() {
    let first_poll: Arc<Mutex<Option<Instant>>> = Arc::default();
    let seen = first_poll.clone();
    let server = remote::fake(move |req, _| {
        let body = if req.path == "/validate/polltransaction" {
            let since = *seen.lock().unwrap().get_or_insert_with(Instant::now);
            let confirmed = since.elapsed() >= Duration::from_millis(2500);
            format!(
                r#"{{"result":{{"status":true,"value":{confirmed}}},"detail":{{"challenge_status":"{}"}}}}"#,
                if confirmed { "accept" } else { "pending" }
            )
        } else if req.field("transaction_id").is_none() {
            r#"{"result":{"status":true,"value":false,"authentication":"CHALLENGE"},"detail":{"transaction_id":"31","message":"x","multi_challenge":[{"transaction_id":"31","serial":"PUSH1","type":"push","client_mode":"poll","message":"Confirm on your phone"}]}}"#.to_string()
        } else {
            r#"{"result":{"status":true,"value":true,"authentication":"ACCEPT"},"detail":{"serial":"PUSH1","type":"push"}}"#.to_string()
        };
        remote::json(200, &body)
    });
    let fx = Fixture::new(&format!(
        "[auth]\nmode = \"remote\"\n[remote]\nurl = \"{}\"\nallow_plain_http = true\ntimeout = 1\npush_timeout = 10\n",
        server.url()
    ));
    fx.set_args("timeout=1");
    let t0 = Instant::now();
    let out = fx.login("alice").answer("PIN", "alicepin").run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert!(
        t0.elapsed() >= Duration::from_millis(2500),
        "{:?}",
        t0.elapsed()
    );
    assert!(first_poll.lock().unwrap().is_some(), "the push was polled");
}
