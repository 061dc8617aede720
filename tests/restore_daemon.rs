//! `tessera restore` under a running tesserad: the daemon keeps its connections to the store
//! (crates/engine/src/store/pool.rs), and the restore writes through SQLite into that same
//! store, so the daemon's very next login sees the restored tokens, and no code used through
//! the daemon becomes valid again.

mod support;

use std::process::Output;
use support::*;

fn tessera(fx: &Fixture, args: &[&str]) -> Output {
    fx.tessera(args, "")
}

fn ok(fx: &Fixture, args: &[&str]) -> String {
    let out = tessera(fx, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_running_daemon_serves_the_restored_store_and_used_codes_stay_refused() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let backup = fx.dir.path().join("before.db");
    ok(&fx, &["backup", backup.to_str().unwrap()]);
    let pid = fx.daemon_pid();
    let login = |counter: u64| {
        fx.login("alice")
            .answer("PIN", &format!("1234{}", t.hotp_at(counter)))
            .run()
            .code
    };

    // Since the backup, through the daemon: code 0 used, the token disabled, a token added.
    assert_eq!(login(0), PAM_SUCCESS);
    ok(&fx, &["token", "disable", "H1"]);
    assert_eq!(login(1), PAM_AUTH_ERR, "disabled");
    let b = Tok::hotp("B1", "bob", "5678");
    fx.add(&b);
    let bob = |counter: u64| {
        fx.login("bob")
            .answer("PIN", &format!("5678{}", b.hotp_at(counter)))
            .run()
            .code
    };
    assert_eq!(bob(0), PAM_SUCCESS);

    let refused = tessera(&fx, &["restore", backup.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("H1 (live 1, backup 0)"), "{err}");
    assert_eq!(login(1), PAM_AUTH_ERR, "nothing changed: still disabled");

    let out = ok(
        &fx,
        &["restore", "--keep-counters", backup.to_str().unwrap()],
    );
    assert!(out.contains("B1: removed"), "{out}");
    // The same daemon, its pooled connections: the restored store at once.
    assert_eq!(fx.daemon_pid(), pid);
    assert_eq!(login(0), PAM_AUTH_ERR, "the used code stays refused");
    assert_eq!(login(1), PAM_SUCCESS, "enabled again by the restore");
    assert_eq!(bob(1), PAM_AUTH_ERR, "bob's token is gone");
}
