//! Regression tests of the security review (issue 10), each through real libpam: what an
//! attacker on the host could do with today's module must fail.

mod support;

use support::remote::refused_url;
use support::*;
use tessera_engine::store::Store;

/// The root escalation: `su` authenticates with the invoking user's environment, and the module
/// let ureq take HTTP_PROXY & co. from it. A proxy of the attacker's that answers "accepted"
/// then decided the login, whatever the PIN.
#[test]
fn a_proxy_in_the_callers_environment_decides_nothing() {
    let proxy = FakeProxy::start();
    let fx = Fixture::new(&format!(
        "[auth]\nmode = \"remote\"\n[remote]\nurl = \"{}\"\nallow_plain_http = true\ntimeout = 2\n",
        refused_url()
    ));
    let (status, err) = pamtester_env(&fx, "root", &["wrong-pin"], &proxy.env());
    assert!(!status.success(), "a wrong PIN was accepted: {err}");
    assert!(
        err.contains("cannot retrieve authentication info"),
        "the server is down: PAM_AUTHINFO_UNAVAIL, not the proxy's answer: {err}"
    );
    assert_eq!(proxy.seen(), Vec::<String>::new(), "the proxy saw the pass");

    // Over https, the proxy could force "no server answered" and so the local fallback.
    let fx = Fixture::new(&format!(
        "[auth]\nmode = \"remote\"\n[remote]\nurl = \"{}\"\ntimeout = 2\n",
        refused_url().replace("http://", "https://")
    ));
    let (status, err) = pamtester_env(&fx, "root", &["wrong-pin"], &proxy.env());
    assert!(!status.success(), "{err}");
    assert_eq!(
        proxy.seen(),
        Vec::<String>::new(),
        "the proxy saw the TLS connection"
    );
}

/// `[remote] proxy` is the one way to reach the server through a proxy.
#[test]
fn the_remote_proxy_comes_from_the_config() {
    let proxy = FakeProxy::start();
    let fx = Fixture::new(&format!(
        "[auth]\nmode = \"remote\"\n[remote]\nurl = \"http://pi.invalid\"\nallow_plain_http = true\n\
         proxy = \"{}\"\ntimeout = 2\n",
        proxy.url()
    ));
    let out = fx.login("alice").answer("PIN", "1234123456").run();
    let seen = proxy.seen();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?} {seen:?} {:?}", fx.audit());
    assert_eq!(seen[0], "CONNECT pi.invalid:80 HTTP/1.1", "{seen:?}");
    assert!(seen[1].starts_with("POST /validate/check"), "{seen:?}");
}

/// Plain http:// is refused unless the config says so: the module fails closed.
#[test]
fn plain_http_needs_allow_plain_http() {
    let fx = Fixture::new(&format!(
        "[auth]\nmode = \"remote\"\n[remote]\nurl = \"{}\"\ntimeout = 2\n",
        refused_url()
    ));
    let (status, err) = pamtester(&fx, "root", &["1234"]);
    assert!(!status.success(), "{err}");
    assert!(
        syslog_lines(&err)
            .iter()
            .any(|l| l.contains("allow_plain_http")),
        "the log says why: {err}"
    );
}

/// A lost token that the admin disabled must not turn its user into one "without tokens":
/// under `nullok` that was PAM_IGNORE (no second factor), under `pass_on_no_token` a success.
#[test]
fn a_disabled_token_is_not_no_token() {
    // lock_scope = "token": a token locked by its counter is one more case of "not no token".
    for (config, args) in [
        ("[auth]\nlock_scope = \"token\"\n", "nullok"),
        (
            "[auth]\nlock_scope = \"token\"\npass_on_no_token = true\n",
            "",
        ),
    ] {
        let fx = Fixture::new(config);
        let t = Tok::hotp("H1", "alice", "1234");
        fx.add(&t.clone().disabled());
        fx.set_stack(&[
            &fx.tessera_line("required", args),
            "auth required pam_permit.so",
        ]);
        let pass = format!("1234{}", t.hotp_at(0));
        let out = fx.login("alice").answer("PIN", &pass).run();
        assert_eq!(out.code, PAM_AUTH_ERR, "{config}{args}: {out:?}");
        let audit = fx.audit();
        assert!(
            audit
                .iter()
                .any(|e| e.serial == "H1" && e.result == "reject" && e.reason == "token disabled"),
            "{audit:?}"
        );
        // A locked token counts as well.
        fx.set_active("H1", true);
        let store = fx.store();
        for _ in 0..10 {
            store.write(|tx| tx.record_failure("H1", now())).unwrap();
        }
        drop(store);
        // Every token locked: refused before any prompt.
        let out = fx.login("alice").run();
        assert_eq!(out.code, PAM_MAXTRIES, "{config}{args}: {out:?}");
    }
}

/// Tokens belong to accounts. A name that is no account of this host (`ALICE` where NSS is
/// case-sensitive, `alice@corp` without a realm separator) used to find no token and, under
/// `nullok` (the shipped pam-auth-update profile), pass with PAM_IGNORE.
#[test]
fn a_name_that_is_no_account_is_prompted_and_refused() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    fx.set_stack(&[
        &fx.tessera_line("required", "nullok"),
        "auth required pam_permit.so",
    ]);
    for name in ["ALICE", "alice@corp", "no-such-account"] {
        let out = fx.login(name).answer("PIN", "1234000000").run();
        assert_eq!(out.code, PAM_AUTH_ERR, "{name}: {out:?}");
        assert_eq!(out.messages, [Msg::prompt("PIN: ")], "{name}");
    }
    // An account without tokens is still waved through by nullok, and alice logs in.
    let out = fx.login("bob").run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    let audit = fx.audit();
    for name in ["ALICE", "alice@corp", "no-such-account"] {
        assert!(
            audit.iter().any(|e| e.user == name && e.result == "reject"),
            "{name} audited: {audit:?}"
        );
    }
}

/// A name typed at libpam's own user prompt that is not UTF-8 returned PAM_SYSTEM_ERR before
/// the pass was even asked, unaudited: it must look like any unknown user.
#[test]
fn a_user_name_typed_at_the_user_prompt_that_is_not_utf8_is_an_unknown_user() {
    let fx = Fixture::new("");
    fx.add(&Tok::hotp("H1", "alice", "1234"));
    let out = fx
        .login("ignored")
        .without_user()
        .reply("", Reply::Text(b"al\xffice".to_vec()))
        .answer("PIN", "1234000000")
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR, "{out:?}");
    assert_eq!(
        out.prompts().len(),
        2,
        "the user prompt, then the PIN: {out:?}"
    );
    assert!(
        fx.audit()
            .iter()
            .any(|e| e.user == "al\u{fffd}ice" && e.result == "reject"),
        "{:?}",
        fx.audit()
    );
}

/// A token stored with an OCRA suite that doesn't parse (written before the parser was strict,
/// or by hand) made every login of its user PAM_ABORT (a panic), unaudited. It now matches
/// nothing, each login logs why, and the user's other tokens still work.
#[test]
fn a_bad_stored_ocra_suite_fails_with_a_logged_reason() {
    use tessera_engine::tokens::TokenType;
    let fx = Fixture::new("");
    for (serial, suite) in [
        ("O1", "OCRA-1:HOTP-SHA1-6:Q\u{e9}8"),
        ("O2", "OCRA-1:HOTP-SHA1-+6:QN08"),
    ] {
        fx.add(
            &Tok::new(TokenType::Ocra, serial, "alice", "1234", KEY20)
                .info(serde_json::json!({ "ocra_suite": suite })),
        );
    }
    let out = fx.login("alice").answer("PIN", "1234").run();
    assert_eq!(out.code, PAM_AUTH_ERR, "{out:?}");
    let audit = fx.audit();
    for serial in ["O1", "O2"] {
        assert!(
            audit.iter().any(|e| e.serial == serial
                && e.result == "error"
                && e.reason.contains("OCRA suite")),
            "{serial}: {audit:?}"
        );
    }
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
}

/// A 120 KB user name was written whole into the audit table on each attempt (5 attempts:
/// +1 MB); now the module sends at most 1 KiB of it (marked, so it is no account's name), and
/// each field keeps at most 256 bytes, in the table and in the log.
#[test]
fn a_huge_user_name_is_capped_in_the_audit_table_and_the_log() {
    let fx = Fixture::new("");
    let name = "a".repeat(120 * 1024);
    let before = std::fs::metadata(&fx.db).unwrap().len();
    for _ in 0..5 {
        let out = fx.login(&name).answer("PIN", "1234000000").run();
        assert_eq!(out.code, PAM_AUTH_ERR);
    }
    let audit = fx.audit();
    assert_eq!(audit.len(), 5);
    assert!(audit.iter().all(|e| e.user.len() < 300), "capped");
    assert!(
        audit[0].user.ends_with("...(1024 bytes)"),
        "{}",
        &audit[0].user[250..]
    );
    let wal = fx.db.with_extension("db-wal");
    let grown = std::fs::metadata(&fx.db).unwrap().len()
        + std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0)
        - before;
    // Whole, the names alone would add 600 KB. Each attempt is two commits of a few pages to
    // the WAL (its place in the counts before the pass is compared, then its verdict).
    assert!(grown < 400 * 1024, "the store grew by {grown} bytes");
    let (_, err) = pamtester(&fx, &"b".repeat(120 * 1024), &["1234000000"]);
    let lines = syslog_lines(&err);
    assert!(
        !lines.is_empty() && lines.iter().all(|l| l.len() < 2048),
        "{lines:?}"
    );
}

/// PIN hashes were Argon2id at 8 MiB without a pepper: a stolen store gave up 4-6 digit PINs
/// in seconds. Hashes now cost 19 MiB and need the key file; an old hash still works and is
/// replaced on the next good login (not on a failed one).
#[test]
fn old_pin_hashes_are_replaced_on_the_next_good_login() {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let params = argon2::Params::new(8192, 2, 1, None).unwrap();
    let old = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(b"1234", &SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap())
        .unwrap()
        .to_string();
    let rule = tessera_engine::config::AuthConfig::default().pin_rule();
    fx.store().set_pin_hash("H1", Some(&old), &rule).unwrap();
    let out = fx.login("alice").answer("PIN", "1234000000").run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(
        fx.token("H1").pin_hash.as_deref(),
        Some(old.as_str()),
        "no rehash on a failure"
    );
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    let new = fx.token("H1").pin_hash.unwrap();
    assert!(
        new.starts_with("$argon2id$v=19$m=19456,t=2,p=1,keyid="),
        "{new}"
    );
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(1)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "the new hash verifies: {out:?}");
}

/// PAM items are the application's (a remote host name from DNS, a user's own PAM_RUSER under
/// `su`): 100 KB of each still makes a login of at most 16 KiB, which the daemon reads. The
/// module cuts each to 1 KiB, and the login goes on as any other (uncut, the frame would be past
/// the daemon's limit and refused unread). Through pamtester: in the in-process harness libpam
/// itself answers PAM_SYSTEM_ERR for a host name this long after the module has accepted
/// (its own audit record, most likely).
#[test]
fn huge_pam_items_are_cut_to_fit_the_daemons_first_frame() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let (rhost, ruser) = ("h".repeat(100 * 1024), "u".repeat(100 * 1024));
    let items = [("rhost", rhost.as_str()), ("ruser", ruser.as_str())];
    let mut cmd = pamtester_items(&fx.services, SERVICE, "alice", &items);
    let out = run_pamtester(&mut cmd, &[&format!("1234{}", t.hotp_at(0))]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = fx.audit().pop().unwrap();
    assert_eq!(row.result, "accept");
    // Cut by the module to 1 KiB, and by the audit table to 256 bytes and a mark.
    assert!(
        row.rhost.ends_with("...(1024 bytes)"),
        "{}",
        &row.rhost[250..]
    );
}
