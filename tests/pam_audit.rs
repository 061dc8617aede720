//! Every attempt leaves an audit row and a syslog line, and none of them holds a PIN or an OTP.

mod support;

use support::*;

const RHOST: &str = "198.51.100.7";

#[test]
fn every_attempt_writes_an_audit_row() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let start = now();
    let mut expected = 0;
    let mut attempt = |login: PamLogin, code: i32, rows: &[(&str, &str, &str, &str)]| {
        let out = login.rhost(RHOST).run();
        assert_eq!(out.code, code, "{out:?}");
        let all = fx.audit();
        let new = &all[expected..];
        expected = all.len();
        assert_eq!(new.len(), rows.len(), "{new:#?}");
        for (e, (user, serial, result, reason)) in new.iter().zip(rows) {
            assert_eq!(e.service, SERVICE);
            assert_eq!(e.rhost, RHOST);
            assert!(e.time >= start && e.time <= now(), "{e:?}");
            assert_eq!(e.user, *user, "{e:?}");
            assert_eq!(e.serial, *serial, "{e:?}");
            assert_eq!(e.kind, if serial.is_empty() { "" } else { "hotp" }, "{e:?}");
            assert_eq!(e.result, *result, "{e:?}");
            assert!(e.reason.contains(reason), "{e:?} should say {reason}");
        }
    };
    let ok = format!("1234{}", t.hotp_at(0));
    attempt(
        fx.login("alice").answer("PIN", &ok),
        PAM_SUCCESS,
        &[("alice", "H1", "accept", "PIN and OTP")],
    );
    // The same code again: a replay, and the audit says so (not just "wrong OTP").
    attempt(
        fx.login("alice").answer("PIN", &ok),
        PAM_AUTH_ERR,
        &[("alice", "H1", "reject", "OTP already used (replayed)")],
    );
    attempt(
        fx.login("alice").answer("PIN", "1234000000"),
        PAM_AUTH_ERR,
        &[("alice", "H1", "reject", "wrong OTP")],
    );
    attempt(
        fx.login("alice")
            .answer("PIN", &format!("9999{}", t.hotp_at(1))),
        PAM_AUTH_ERR,
        &[("alice", "", "reject", "wrong PIN")],
    );
    attempt(
        fx.login("mallory").answer("PIN", &ok),
        PAM_AUTH_ERR,
        &[("mallory", "", "reject", "wrong PIN or unknown user")],
    );
    attempt(
        fx.login("alice")
            .answer("PIN", "1234")
            .answer("otp value", &t.hotp_at(1)),
        PAM_SUCCESS,
        &[
            ("alice", "H1", "challenge", "challenge opened"),
            ("alice", "H1", "accept", "challenge answered"),
        ],
    );
    attempt(
        fx.login("alice").reply("PIN", Reply::Null),
        PAM_CONV_ERR,
        &[("alice", "", "error", "conversation")],
    );
    attempt(
        fx.login("alice").reply("PIN", Reply::ConvErr),
        PAM_CONV_ERR,
        &[("alice", "", "error", "conversation")],
    );
}

#[test]
fn no_audit_row_or_syslog_line_holds_the_pin_or_the_otp() {
    let pin = "Pq7-secret-pin";
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", pin);
    fx.add(&t);
    let otps: Vec<String> = (0..4).map(|c| t.hotp_at(c)).collect();
    let mut syslog = Vec::new();
    let mut run = |user: &str, lines: &[&str], success: bool| {
        let (status, stderr) = pamtester(&fx, user, lines);
        assert_eq!(status.success(), success, "{user} {lines:?}: {stderr}");
        let lines = syslog_lines(&stderr);
        assert!(
            !lines.is_empty(),
            "pam_wrapper shows the module's syslog lines: {stderr}"
        );
        syslog.extend(lines.into_iter().map(String::from));
    };
    run("alice", &[&format!("{pin}{}", otps[0])], true);
    run("alice", &[&format!("{pin}{}", otps[0])], false);
    run("alice", &[&format!("x{pin}{}", otps[1])], false);
    run("alice", &[pin, &otps[1]], true);
    run("alice", &[pin, &otps[3][..5]], false);
    run("mallory", &[&format!("{pin}{}", otps[2])], false);
    run("alice", &[&otps[2]], false);
    assert!(
        syslog
            .iter()
            .any(|l| l.contains("result=accept") && l.contains("serial=\"H1\"")),
        "{syslog:#?}"
    );
    let audit = serde_json::to_string(&fx.audit()).unwrap();
    assert!(
        audit.contains("accept") && audit.contains("reject"),
        "{audit}"
    );
    for secret in [pin, "secret-pin"]
        .iter()
        .copied()
        .chain(otps.iter().map(|s| s.as_str()))
    {
        assert!(!audit.contains(secret), "audit holds {secret}: {audit}");
        for l in &syslog {
            assert!(!l.contains(secret), "syslog holds {secret}: {l}");
        }
    }
}
