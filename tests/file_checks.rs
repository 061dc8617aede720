//! The module judges the files it opens, not names: a config, key or store that is a symbolic
//! link is refused, so is a store in a directory others can write, and a `-wal` or `-shm` next
//! to the store that is a link or that others can write (SQLite would replay such a WAL into
//! the store). Each refusal is PAM_AUTHINFO_UNAVAIL before any prompt, with a log line that
//! names the file.

mod support;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use support::*;

fn fixture_with_token() -> Fixture {
    let fx = Fixture::new("");
    fx.add(&Tok::hotp("H1", "alice", "1234"));
    fx
}

fn assert_unavailable(fx: &Fixture, what: &str) {
    let out = fx.login("alice").run();
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{what}: {out:?}");
    assert_told_unavailable(&out, what);
}

/// A login through pamtester under pam_wrapper: refused, and the module's syslog lines.
fn refused_with_log(fx: &Fixture) -> Vec<String> {
    let (status, stderr) = pamtester(fx, "alice", &[]);
    assert!(!status.success(), "{stderr}");
    syslog_lines(&stderr)
        .into_iter()
        .map(String::from)
        .collect()
}

fn assert_logged(lines: &[String], needles: &[&str]) {
    assert!(
        lines.iter().any(|l| needles.iter().all(|n| l.contains(n))),
        "no log line with {needles:?}: {lines:#?}"
    );
}

/// Moves `file` to `file.real` and puts a symbolic link to it in its place.
fn replace_with_link(file: &Path) -> PathBuf {
    let real = PathBuf::from(format!("{}.real", file.display()));
    std::fs::rename(file, &real).unwrap();
    symlink(&real, file).unwrap();
    real
}

fn sidecar(fx: &Fixture, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", fx.db.display()))
}

/// A successful login, after which the store's `-wal` and `-shm` exist.
fn login_once(fx: &Fixture) {
    let t = Tok::hotp("H1", "alice", "1234");
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    for suffix in ["-wal", "-shm"] {
        assert!(sidecar(fx, suffix).exists(), "{suffix} after a login");
    }
}

#[test]
fn a_symlinked_config_is_refused() {
    let fx = fixture_with_token();
    replace_with_link(&fx.config);
    fx.reload();
    assert_unavailable(&fx, "config is a link");
    assert_logged(&refused_with_log(&fx), &["tessera.toml is a symbolic link"]);
}

#[test]
fn a_symlinked_key_is_refused() {
    let fx = fixture_with_token();
    replace_with_link(&fx.key_file);
    assert_unavailable(&fx, "key is a link");
    assert_logged(&refused_with_log(&fx), &["secret.key is a symbolic link"]);
}

/// The daemon keeps the key in memory and the file checks' outcome between logins; a key made
/// readable by others, or replaced, after a login is still seen at the next one.
#[test]
fn a_key_changed_after_a_login_is_seen_at_the_next() {
    let fx = fixture_with_token();
    login_once(&fx);
    std::fs::set_permissions(&fx.key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_unavailable(&fx, "key readable by others");
    assert_logged(
        &refused_with_log(&fx),
        &["secret.key", "accessible by group or others"],
    );
    std::fs::set_permissions(&fx.key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let t = Tok::hotp("H1", "alice", "1234");
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(1)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "works again at 0600: {out:?}");
    // Another key written over it: the token's key no longer opens, so no OTP is accepted.
    std::fs::write(&fx.key_file, format!("{}\n", "ab".repeat(32))).unwrap();
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(2)))
        .run();
    assert_ne!(out.code, PAM_SUCCESS, "the new key is read: {out:?}");
}

#[test]
fn a_symlinked_store_is_refused() {
    let fx = fixture_with_token();
    replace_with_link(&fx.db);
    assert_unavailable(&fx, "store is a link");
    assert_logged(&refused_with_log(&fx), &["tessera.db is a symbolic link"]);
}

/// Moves the store into `dir/sub` (mode 0700, like `tessera init` makes it) and points the
/// config there. Returns the subdirectory.
fn store_in_subdir(fx: &Fixture) -> PathBuf {
    let sub = fx.dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
    let db = sub.join("tessera.db");
    std::fs::rename(&fx.db, &db).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::rename(sidecar(fx, suffix), format!("{}{suffix}", db.display()));
    }
    std::fs::remove_file(&fx.config).unwrap();
    let text = format!(
        "[store]\npath = \"{}\"\nkey_file = \"{}\"\n",
        db.display(),
        fx.key_file.display()
    );
    tessera_engine::os::fsperm::create_private_file(&fx.config, text.as_bytes()).unwrap();
    fx.reload();
    sub
}

#[test]
fn a_store_in_a_directory_writable_by_others_is_refused() {
    let fx = fixture_with_token();
    let sub = store_in_subdir(&fx);
    let t = Tok::hotp("H1", "alice", "1234");
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "the moved store works: {out:?}");

    for mode in [0o777, 0o770, 0o757] {
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(mode)).unwrap();
        assert_unavailable(&fx, &format!("store directory mode {mode:o}"));
    }
    assert_logged(
        &refused_with_log(&fx),
        &["directory", "/sub", "writable by group or others"],
    );
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(1)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "works again at 0700: {out:?}");
}

/// A sticky directory writable by all is only safe when root owns it (as /tmp): its owner can
/// remove anyone's entries. Run as root, the directory is given to another uid; run as a user,
/// it is the user's own, not root's. Either way it is refused.
#[test]
fn a_store_in_a_sticky_directory_not_owned_by_root_is_refused() {
    let fx = fixture_with_token();
    let sub = store_in_subdir(&fx);
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o1777)).unwrap();
    if tessera_engine::os::sys::euid() == 0 {
        std::os::unix::fs::chown(&sub, Some(4242), None).unwrap();
    }
    assert_unavailable(&fx, "sticky directory not owned by root");
    assert_logged(&refused_with_log(&fx), &["directory", "/sub"]);
}

#[test]
fn a_wal_or_shm_writable_by_others_is_refused_and_named_in_the_log() {
    for suffix in ["-wal", "-shm"] {
        let fx = fixture_with_token();
        login_once(&fx);
        let file = sidecar(&fx, suffix);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_unavailable(&fx, &format!("{suffix} mode 0666"));
        assert_logged(
            &refused_with_log(&fx),
            &[
                &format!("tessera.db{suffix} is writable by group or others"),
                "chmod go-w",
            ],
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let t = Tok::hotp("H1", "alice", "1234");
        let out = fx
            .login("alice")
            .answer("PIN", &format!("1234{}", t.hotp_at(1)))
            .run();
        assert_eq!(out.code, PAM_SUCCESS, "{suffix} back at 0600: {out:?}");
    }
}

#[test]
fn a_symlinked_wal_or_shm_is_refused_and_named_in_the_log() {
    for suffix in ["-wal", "-shm"] {
        let fx = fixture_with_token();
        login_once(&fx);
        replace_with_link(&sidecar(&fx, suffix));
        assert_unavailable(&fx, &format!("{suffix} is a link"));
        assert_logged(
            &refused_with_log(&fx),
            &[&format!("tessera.db{suffix} is a symbolic link")],
        );
    }
}

#[test]
fn a_fifo_as_config_is_refused_without_hanging() {
    let fx = fixture_with_token();
    std::fs::remove_file(&fx.config).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg("-m")
        .arg("600")
        .arg(&fx.config)
        .status()
        .unwrap();
    assert!(status.success());
    // The daemon's reload must come back (a FIFO is refused, not opened and waited on).
    fx.reload();
    // In a thread: an `open` that blocks on the FIFO (no writer will come) fails the test
    // instead of hanging it.
    let login = fx.login("alice");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(login.run());
    });
    let out = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("the login returns, not blocked opening the FIFO");
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{out:?}");
    assert_told_unavailable(&out, "a FIFO as config");
}

/// The store's three files marked immutable (`chattr +i`) under a running tesserad: SQLite
/// writes to its shared-memory mapping of the `-shm` file, and a write to a page of a file
/// that can't be written killed the daemon with SIGBUS at the next login. Now that login is
/// refused as unavailable, naming the `-shm` in the log; the daemon lives, and once the files
/// can be written again its next login works.
#[test]
fn an_immutable_shm_is_refused_without_killing_the_daemon() {
    if tessera_engine::os::sys::euid() != 0 {
        eprintln!("an_immutable_shm_is_refused: needs root (chattr +i); not run");
        return;
    }
    let fx = fixture_with_token();
    login_once(&fx);
    let files = [fx.db.clone(), sidecar(&fx, "-wal"), sidecar(&fx, "-shm")];
    let chattr = |flag: &str| {
        let ok = std::process::Command::new("chattr")
            .arg(flag)
            .args(&files)
            .status()
            .unwrap()
            .success();
        assert!(ok, "chattr {flag}");
    };
    let pid = fx.daemon_pid();
    chattr("+i");
    let lines = refused_with_log(&fx);
    chattr("-i");
    assert_logged(&lines, &["-shm"]);
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the daemon lives"
    );
    let t = Tok::hotp("H1", "alice", "1234");
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(1)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(fx.daemon_pid(), pid);
}
