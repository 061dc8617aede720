//! Refusals, locks and broken setups through the real libpam: each ends in the right return
//! code, without a panic or a hang, and uses up nothing it should not.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};
use support::*;

fn pin_otp(t: &Tok, counter: u64) -> String {
    format!("1234{}", t.hotp_at(counter))
}

/// A six-digit value that is not the token's OTP at `counter`.
fn wrong_otp(t: &Tok, counter: u64) -> String {
    let right = t.hotp_at(counter);
    if right == "000000" {
        "111111"
    } else {
        "000000"
    }
    .to_string()
}

// ---- wrong PIN, unknown user, disabled token ----

#[test]
fn a_wrong_pin_fails_and_does_not_use_up_the_otp() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let out = fx
        .login("alice")
        .answer("PIN", &format!("4321{}", t.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(fx.token("H1").counter, 0);
    assert_eq!(
        fx.token("H1").fail_count,
        1,
        "the failure counts on the token"
    );
    let out = fx.login("alice").answer("PIN", &pin_otp(&t, 0)).run();
    assert_eq!(out.code, PAM_SUCCESS, "the same OTP with the right PIN");
    assert_eq!(fx.token("H1").fail_count, 0);
}

#[test]
fn an_unknown_user_is_prompted_like_a_known_one_and_fails() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    for pass in ["4321123456", "4321", "1234"] {
        let known = fx.login("alice").answer("PIN", &format!("x{pass}")).run();
        let unknown = fx.login("mallory").answer("PIN", pass).run();
        assert_eq!(known.code, PAM_AUTH_ERR);
        assert_eq!(unknown.code, PAM_AUTH_ERR, "pass {pass}");
        assert_eq!(unknown.messages, known.messages, "pass {pass}");
        assert_eq!(unknown.messages, [Msg::prompt("PIN: ")]);
    }
    let rows = fx.audit();
    assert!(rows
        .iter()
        .any(|e| e.user == "mallory" && e.result == "reject"));
}

#[test]
fn a_disabled_token_fails() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234").disabled();
    fx.add(&t);
    let out = fx.login("alice").answer("PIN", &pin_otp(&t, 0)).run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    let out = fx.login("alice").answer("PIN", "1234").run();
    assert_eq!(out.code, PAM_AUTH_ERR, "no challenge for a disabled token");
    assert_eq!(out.messages, [Msg::prompt("PIN: ")]);
    assert!(fx.challenges().is_empty());
    assert_eq!(fx.token("H1").counter, 0);
    assert!(fx
        .audit()
        .iter()
        .any(|e| e.serial == "H1" && e.reason.contains("disabled")));
    fx.set_active("H1", true);
    let out = fx.login("alice").answer("PIN", &pin_otp(&t, 0)).run();
    assert_eq!(out.code, PAM_SUCCESS, "enabled again");
}

// ---- fail counter ----

#[test]
fn max_fail_failures_lock_the_source_until_an_admin_resets_it() {
    let fx = Fixture::new("[auth]\nmax_fail = 3\n");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    for i in 1..=3 {
        let out = fx
            .login("alice")
            .answer("PIN", &format!("1234{}", wrong_otp(&t, 0)))
            .run();
        assert_eq!(out.code, PAM_AUTH_ERR);
        assert_eq!(fx.token("H1").fail_count, i);
    }
    // Refused before any prompt: nothing typed (a right PIN and OTP, a PIN alone) is looked
    // at, and no challenge is opened. The user is told, as an error line, when to try again
    // (the same words for any name from here: engine lockout tests).
    for _ in 0..2 {
        let out = fx.login("alice").run();
        assert_eq!(out.code, PAM_MAXTRIES, "locked before any prompt: {out:?}");
        assert_eq!(out.messages.len(), 1, "{out:?}");
        let told = &out.messages[0];
        assert_eq!(told.style, 3, "PAM_ERROR_MSG: {out:?}");
        assert!(
            told.text
                .starts_with("too many failed attempts from here; try again after ")
                && told.text.ends_with(" UTC, or ask an administrator"),
            "{out:?}"
        );
    }
    assert!(fx.challenges().is_empty());
    assert_eq!(fx.token("H1").counter, 0, "the OTP was not used up");
    assert!(fx.audit().iter().any(|e| e.result == "locked"));
    // `tessera token show` lists the locked source, `doctor` warns of it.
    let out = fx.tessera(&["token", "show", "H1"], "");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("source") && shown.contains("3/3 locked until"),
        "{shown}"
    );
    let out = fx.tessera(&["doctor"], "");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("1 locked by failures: alice from "), "{said}");
    // `tessera token reset` clears the token's count and its user's sources.
    let out = fx.tessera(&["token", "reset", "H1"], "");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("1 source of alice"),
        "{said}"
    );
    let out = fx.login("alice").answer("PIN", &pin_otp(&t, 0)).run();
    assert_eq!(out.code, PAM_SUCCESS);
}

/// The ceiling from everywhere together, through libpam: with `account_max_fail = 3`, three
/// wrong passes from three hosts lock every unfamiliar source for alice (a fourth host is
/// refused before any prompt), while alice from her own uid (a screen locker) gets in;
/// `token show` and `doctor` show the class's sum and its lock, `token reset` clears it.
#[test]
fn unfamiliar_sources_together_reach_the_ceiling_and_reset_opens_it() {
    let fx = Fixture::new("[auth]\naccount_max_fail = 3\n");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    for host in ["203.0.113.1", "203.0.113.2", "2001:db8::1"] {
        let out = fx
            .login("alice")
            .rhost(host)
            .answer("PIN", &format!("1234{}", wrong_otp(&t, 0)))
            .run();
        assert_eq!(out.code, PAM_AUTH_ERR, "{host}: {out:?}");
    }
    let out = fx.login("alice").rhost("198.51.100.9").run();
    assert_eq!(out.code, PAM_MAXTRIES, "refused before any prompt: {out:?}");
    let shown = fx.tessera(&["token", "show", "H1"], "");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("unfamiliar sources: 3/3 locked until"),
        "{shown}"
    );
    let said = fx.tessera(&["doctor"], "");
    let said = String::from_utf8_lossy(&said.stdout);
    assert!(
        said.contains("alice from every unfamiliar source"),
        "{said}"
    );
    let out = fx.tessera(&["token", "reset", "H1"], "");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("1 class of sources"), "{said}");
    let out = fx
        .login("alice")
        .rhost("198.51.100.9")
        .answer("PIN", &pin_otp(&t, 0))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
}

/// After a passed second factor, the owner is told of the failures since her last success in
/// one information message (PAM_TEXT_INFO), once; not under PAM_SILENT.
#[test]
fn the_owner_is_told_of_failures_since_her_last_login() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let fail = || {
        let out = fx
            .login("alice")
            .rhost("198.51.100.7")
            .answer("PIN", &format!("1234{}", wrong_otp(&t, 0)))
            .run();
        assert_eq!(out.code, PAM_AUTH_ERR);
    };
    fail();
    fail();
    let out = fx.login("alice").answer("PIN", &pin_otp(&t, 0)).run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    let told = format!("{:?}", out.messages);
    assert!(
        told.contains("2 failed attempts since your last login, the last from 198.51.100.7 at "),
        "{told}"
    );
    let out = fx.login("alice").answer("PIN", &pin_otp(&t, 1)).run();
    assert_eq!(out.code, PAM_SUCCESS);
    assert!(
        !format!("{:?}", out.messages).contains("failed attempt"),
        "once"
    );
    fail();
    let out = fx
        .login("alice")
        .silent()
        .answer("PIN", &pin_otp(&t, 2))
        .run();
    assert_eq!(out.code, PAM_SUCCESS);
    assert!(
        !format!("{:?}", out.messages).contains("failed attempt"),
        "not under PAM_SILENT: {out:?}"
    );
}

// The lock that clears after `fail_clear_timeout` is tested on the engine's fixed clock
// (crates/engine/src/login/local/tests.rs, `a_lock_clears_after_fail_clear_timeout`).

#[test]
fn a_success_below_max_fail_resets_the_fail_counter() {
    let fx = Fixture::new("[auth]\nmax_fail = 3\n");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    for round in 0..3u64 {
        for _ in 0..2 {
            let out = fx
                .login("alice")
                .answer("PIN", &format!("1234{}", wrong_otp(&t, round)))
                .run();
            assert_eq!(out.code, PAM_AUTH_ERR);
        }
        assert_eq!(fx.token("H1").fail_count, 2);
        let out = fx.login("alice").answer("PIN", &pin_otp(&t, round)).run();
        assert_eq!(out.code, PAM_SUCCESS, "round {round}");
        assert_eq!(fx.token("H1").fail_count, 0);
    }
}

#[test]
fn a_wrong_pin_counts_on_every_token_of_the_user() {
    // privacyIDEA's rule: the tokens lock, for every source.
    let fx = Fixture::new("[auth]\nmax_fail = 2\nlock_scope = \"token\"\n");
    let a = Tok::hotp("H1", "alice", "1234");
    let b = Tok::hotp("H2", "alice", "5678").key(KEY32);
    fx.add(&a);
    fx.add(&b);
    for _ in 0..2 {
        let out = fx.login("alice").answer("PIN", "0000123456").run();
        assert_eq!(out.code, PAM_AUTH_ERR);
    }
    assert_eq!(fx.token("H1").fail_count, 2);
    assert_eq!(fx.token("H2").fail_count, 2);
    // Every token locked: refused before any prompt.
    let out = fx.login("alice").run();
    assert_eq!(out.code, PAM_MAXTRIES, "{out:?}");
}

#[test]
fn a_wrong_otp_counts_only_on_the_token_whose_pin_matched() {
    let fx = Fixture::new("");
    let a = Tok::hotp("H1", "alice", "1234");
    let b = Tok::hotp("H2", "alice", "5678").key(KEY32);
    fx.add(&a);
    fx.add(&b);
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", wrong_otp(&a, 0)))
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(fx.token("H1").fail_count, 1);
    assert_eq!(fx.token("H2").fail_count, 0);
}

// ---- broken setups: PAM_AUTHINFO_UNAVAIL before any prompt, quickly ----

fn assert_unavailable(fx: &Fixture, what: &str) {
    let start = Instant::now();
    let out = fx.login("alice").run();
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{what}: {out:?}");
    assert_told_unavailable(&out, what);
    assert!(start.elapsed() < Duration::from_secs(3), "{what}: quick");
}

fn fixture_with_token() -> Fixture {
    let fx = Fixture::new("");
    fx.add(&Tok::hotp("H1", "alice", "1234"));
    fx
}

#[test]
fn a_missing_store_is_unavailable() {
    let fx = fixture_with_token();
    std::fs::remove_file(&fx.db).unwrap();
    assert_unavailable(&fx, "missing store");
    assert!(!fx.db.exists(), "the module does not create a store");
}

#[test]
fn a_corrupt_store_is_unavailable() {
    let fx = fixture_with_token();
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", fx.db.display()));
    }
    std::fs::write(
        &fx.db,
        b"this is no SQLite file \x00\x01\x02 at all".repeat(200),
    )
    .unwrap();
    assert_unavailable(&fx, "corrupt store");
}

#[test]
fn a_store_writable_by_group_is_unavailable() {
    let fx = fixture_with_token();
    std::fs::set_permissions(&fx.db, std::fs::Permissions::from_mode(0o620)).unwrap();
    assert_unavailable(&fx, "store mode 0620");
}

#[test]
fn a_locked_store_is_unavailable_after_busy_timeout() {
    let fx = Fixture::new("busy_timeout_ms = 200\n");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let lock = LockHolder::new(&fx.db);
    let start = Instant::now();
    let out = fx.login("alice").answer("PIN", &pin_otp(&t, 0)).run();
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{out:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    drop(lock);
    assert_eq!(fx.token("H1").counter, 0);
    let out = fx.login("alice").answer("PIN", &pin_otp(&t, 0)).run();
    assert_eq!(out.code, PAM_SUCCESS, "works again once the lock is gone");
}

#[test]
fn a_missing_key_is_unavailable() {
    let fx = fixture_with_token();
    std::fs::remove_file(&fx.key_file).unwrap();
    assert_unavailable(&fx, "missing key");
    let rows = fx.audit();
    assert_eq!(
        rows.len(),
        1,
        "the store works, so the attempt is audited: {rows:?}"
    );
    assert_eq!(rows[0].result, "error");
    assert!(rows[0].reason.contains("secret.key"), "{rows:?}");
}

#[test]
fn a_key_readable_by_others_is_unavailable() {
    let fx = fixture_with_token();
    std::fs::set_permissions(&fx.key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_unavailable(&fx, "key mode 0644");
}

#[test]
fn a_config_with_an_unknown_key_is_unavailable() {
    let fx = fixture_with_token();
    fx.write_config("[auth]\nmax_fails = 3\n");
    assert_unavailable(&fx, "unknown key");
}

#[test]
fn a_config_with_a_bad_value_is_unavailable() {
    let fx = fixture_with_token();
    fx.write_config("[auth]\notppin = \"maybe\"\n");
    assert_unavailable(&fx, "bad value");
}

#[test]
fn a_config_writable_by_group_is_unavailable() {
    let fx = fixture_with_token();
    std::fs::set_permissions(&fx.config, std::fs::Permissions::from_mode(0o620)).unwrap();
    fx.reload();
    assert_unavailable(&fx, "config mode 0620");
}

#[test]
fn a_missing_config_is_unavailable() {
    let fx = fixture_with_token();
    std::fs::remove_file(&fx.config).unwrap();
    fx.reload();
    assert_unavailable(&fx, "missing config");
}

#[test]
fn an_unknown_module_argument_is_unavailable() {
    let fx = fixture_with_token();
    fx.set_args("nulok");
    assert_unavailable(&fx, "argument nulok");
    fx.set_args("use_first_pass try_first_pass");
    assert_unavailable(&fx, "conflicting arguments");
}

#[test]
fn a_remote_mode_without_a_server_is_unavailable() {
    // The pass is asked first (no server can be asked before there is something to send),
    // then a refused connection ends the login at once.
    let fx = fixture_with_token();
    fx.write_config(
        "[auth]\nmode = \"remote\"\n[remote]\nurl = \"http://127.0.0.1:1/\"\nallow_plain_http = true\ntimeout = 2\n",
    );
    let start = Instant::now();
    let out = fx.login("alice").answer("PIN", "1234").run();
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{out:?}");
    assert!(start.elapsed() < Duration::from_secs(3), "quick");
}

// ---- odd input ----

#[test]
fn a_one_or_ten_megabyte_answer_fails_cleanly() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    for size in [1 << 20, 10 << 20] {
        let start = Instant::now();
        let huge = format!("1234{}", "7".repeat(size));
        let out = fx.login("alice").answer("PIN", &huge).run();
        assert_eq!(out.code, PAM_AUTH_ERR, "{size} bytes");
        assert!(start.elapsed() < Duration::from_secs(3), "{size} bytes");
        // The PIN followed by a huge tail does not use up the OTP at its end either.
        let huge = format!("1234{}{}", "7".repeat(size), t.hotp_at(0));
        assert_eq!(
            fx.login("alice").answer("PIN", &huge).run().code,
            PAM_AUTH_ERR,
            "{size} bytes"
        );
        assert_eq!(fx.token("H1").counter, 0);
    }
}

#[test]
fn a_user_name_with_odd_bytes_fails_like_an_unknown_user() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    for user in [
        &b"al\xffice\x01"[..],
        b"alice\n",
        b"alice\x1b[2J",
        &[b'a'; 5000],
    ] {
        let out = fx.login_raw(user).answer("PIN", &pin_otp(&t, 0)).run();
        assert_eq!(out.code, PAM_AUTH_ERR, "{user:?}");
        assert_eq!(out.messages, [Msg::prompt("PIN: ")]);
    }
    assert_eq!(fx.token("H1").counter, 0);
}

#[test]
fn an_empty_answer_fails() {
    let fx = fixture_with_token();
    let out = fx.login("alice").answer("PIN", "").run();
    assert_eq!(out.code, PAM_AUTH_ERR);
}

// ---- conversation failures ----

#[test]
fn a_null_answer_is_a_conversation_error() {
    let fx = fixture_with_token();
    let out = fx.login("alice").reply("PIN", Reply::Null).run();
    assert_eq!(out.code, PAM_CONV_ERR);
    let out = fx.login("alice").reply("PIN", Reply::NoResponse).run();
    assert_eq!(out.code, PAM_CONV_ERR);
}

#[test]
fn a_failing_conversation_is_a_conversation_error() {
    let fx = fixture_with_token();
    let out = fx.login("alice").reply("PIN", Reply::ConvErr).run();
    assert_eq!(out.code, PAM_CONV_ERR);
}

#[test]
fn a_null_answer_to_a_challenge_is_a_conversation_error_and_closes_it() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .reply("otp value", Reply::Null)
        .run();
    assert_eq!(out.code, PAM_CONV_ERR);
    let ch = fx.challenges();
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].state, "failed");
    assert_eq!(fx.token("H1").counter, 0);
}

/// Through real libpam, as polkit-agent-helper-1 runs it: setuid root, PAM_RUSER set to the
/// account asked for (alice), not to who runs it. bob's failures through it count on bob's
/// real uid, which the module sends, never on PAM_RUSER: bob is refused, while alice's own
/// sudo (real uid alice, PAM_RUSER alice) and carol's helper go on. Before, PAM_RUSER was the
/// source, and bob locked alice's sudo.
#[test]
fn a_setuid_helpers_failures_count_on_the_real_uid_not_on_pam_ruser() {
    if tessera_engine::os::sys::euid() != 0 {
        eprintln!("a_setuid_helpers_failures_count_on_the_real_uid: needs root; not run");
        return;
    }
    let fx = Fixture::new("[auth]\nmax_fail = 2\n");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let (alice, bob, carol) = (10001, 10002, 10003);
    let as_alice = [("ruser", "alice")];
    for _ in 0..2 {
        let wrong = format!("1234{}", wrong_otp(&t, 0));
        let out = pam_as_setuid_helper(&fx, bob, "alice", &as_alice, &[&wrong]);
        assert_eq!(out.code, PAM_AUTH_ERR, "{out:?}");
    }
    let out = pam_as_setuid_helper(&fx, bob, "alice", &as_alice, &[]);
    assert_eq!(out.code, PAM_MAXTRIES, "{out:?}");
    assert!(out.prompts.is_empty(), "refused before any prompt: {out:?}");
    let sudo = [("ruser", "alice"), ("tty", "/dev/pts/1")];
    let out = pam_as_setuid_helper(&fx, alice, "alice", &sudo, &[&pin_otp(&t, 0)]);
    assert_eq!(out.code, PAM_SUCCESS, "alice's own sudo: {out:?}");
    let out = pam_as_setuid_helper(&fx, carol, "alice", &as_alice, &[&pin_otp(&t, 1)]);
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    let audit = fx.audit();
    let locked: Vec<_> = audit.iter().filter(|e| e.result == "locked").collect();
    assert_eq!(locked.len(), 1, "{audit:?}");
    assert!(locked[0].reason.contains("from uid=10002"), "{locked:?}");
    assert_eq!(locked[0].source, "uid=10002");
    assert_eq!(locked[0].ruser, "alice", "PAM_RUSER is kept in the row");
}
