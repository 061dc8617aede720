//! `[[policy]]` through the real libpam: rules on service, remote host and group decide whether
//! the second factor is asked (`require`), skipped (PAM_IGNORE, never PAM_SUCCESS) or refused
//! (`deny`), and a grace window after a good second factor. Accounts come from tests/nss
//! (bob, carol and dave are in `admins`).

mod support;

use support::*;

const PERMIT: &str = "auth required pam_permit.so";
const DENY: &str = "auth required pam_deny.so";

fn audit_reasons(fx: &Fixture) -> Vec<(String, String)> {
    fx.audit()
        .into_iter()
        .map(|e| (e.result.to_string(), e.reason))
        .collect()
}

#[test]
fn skip_from_a_trusted_network_is_pam_ignore_and_never_a_bypass() {
    let fx = Fixture::new(
        "[[policy]]\nservice = \"tessera-test\"\nrhost = [\"192.0.2.0/24\", \"2001:db8::/32\"]\naction = \"skip\"\n",
    );
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    // With a password module after it (pam_permit standing in): no prompt from tessera.
    fx.set_stack(&[&fx.tessera_line("required", ""), PERMIT]);
    let out = fx.login("alice").rhost("192.0.2.7").run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert!(out.messages.is_empty(), "no prompt: {out:?}");
    let rows = audit_reasons(&fx);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "skip");
    assert!(
        rows[0].1.contains("policy rule 1") && rows[0].1.contains("rhost 192.0.2.0/24"),
        "{rows:?}"
    );

    // `sufficient` can't turn the skip into a login: PAM_IGNORE, and pam_deny decides.
    fx.set_stack(&[&fx.tessera_line("sufficient", ""), DENY]);
    let out = fx.login("alice").rhost("192.0.2.7").run();
    assert_eq!(out.code, PAM_AUTH_ERR, "{out:?}");
    // Alone on the stack, a skip is no success either.
    fx.set_stack(&[&fx.tessera_line("required", "")]);
    let out = fx.login("alice").rhost("2001:db8::1").run();
    assert_ne!(out.code, PAM_SUCCESS, "{out:?}");

    // From elsewhere the second factor is asked.
    fx.set_stack(&[&fx.tessera_line("required", ""), PERMIT]);
    let out = fx
        .login("alice")
        .rhost("198.51.100.1")
        .answer("PIN", &format!("1234{}", t.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(out.prompts(), ["PIN: "]);
}

#[test]
fn deny_refuses_without_a_prompt_and_groups_come_from_nss() {
    let fx = Fixture::new(
        "[[policy]]\nuser = \"erin\"\naction = \"deny\"\n[[policy]]\ngroup = \"admins\"\naction = \"require\"\n[[policy]]\naction = \"skip\"\n",
    );
    fx.set_stack(&[&fx.tessera_line("required", ""), PERMIT]);
    let out = fx.login("erin").run();
    assert_eq!(out.code, PAM_AUTH_ERR, "{out:?}");
    assert!(out.messages.is_empty(), "{out:?}");
    assert!(
        audit_reasons(&fx)
            .iter()
            .any(|(r, why)| r == "reject" && why.contains("denied by policy rule 1 (user erin)")),
        "{:?}",
        audit_reasons(&fx)
    );
    // bob is in admins (a supplementary group, tests/nss/group): the second factor is asked.
    let t = Tok::hotp("B1", "bob", "1234");
    fx.add(&t);
    let out = fx
        .login("bob")
        .answer("PIN", &format!("1234{}", t.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(out.prompts(), ["PIN: "]);
    // alice is not: the last rule skips.
    let out = fx.login("alice").run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert!(out.messages.is_empty(), "{out:?}");
}

#[test]
fn a_grace_window_skips_the_next_logins_from_the_same_host_only() {
    let fx = Fixture::new("[[policy]]\nservice = \"tessera-test\"\ngrace = 300\n");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    fx.set_stack(&[&fx.tessera_line("required", ""), PERMIT]);
    // No second factor yet: asked.
    let out = fx
        .login("alice")
        .rhost("192.0.2.7")
        .answer("PIN", &format!("1234{}", t.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    // Within the window, same host: skipped, and audited as such.
    let out = fx.login("alice").rhost("192.0.2.7").run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert!(out.messages.is_empty(), "{out:?}");
    let last = fx.audit().pop().unwrap();
    assert_eq!(last.result, "skip");
    assert!(last.reason.contains("within the last 300 s"), "{last:?}");
    // Another host: asked again.
    let out = fx
        .login("alice")
        .rhost("192.0.2.8")
        .answer("PIN", &format!("1234{}", t.hotp_at(1)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(out.prompts(), ["PIN: "]);
    // A skip is no accept: under `sufficient`, the grace skip still can't log in alone.
    fx.set_stack(&[&fx.tessera_line("sufficient", ""), DENY]);
    let out = fx.login("alice").rhost("192.0.2.7").run();
    assert_eq!(out.code, PAM_AUTH_ERR, "{out:?}");
    // Another user from the same host: asked.
    let b = Tok::hotp("B1", "bob", "1234");
    fx.add(&b);
    fx.set_stack(&[&fx.tessera_line("required", ""), PERMIT]);
    let out = fx
        .login("bob")
        .rhost("192.0.2.7")
        .answer("PIN", &format!("1234{}", b.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
}

/// The end of a rollout: `enforce` from a day on takes `nullok` back for a group. Before the
/// day (a rule dated in the future) a member without a token is let through by nullok
/// (PAM_IGNORE, the next module decides); from it (a rule dated in the past) the member is
/// refused, and a member with a token logs in as before.
#[test]
fn enforce_from_a_day_on_takes_nullok_back_for_a_group() {
    let rule = |from: &str| {
        format!(
            "[[policy]]\nservice = \"tessera-test\"\ngroup = \"admins\"\naction = \"enforce\"\nfrom = \"{from}\"\n"
        )
    };
    let fx = Fixture::new(&rule("2999-01-01"));
    let t = Tok::hotp("H1", "bob", "1234");
    fx.add(&t);
    fx.set_stack(&[&fx.tessera_line("required", "nullok"), PERMIT]);
    // carol (admins) has no token: before the day, nullok lets the stack decide.
    let out = fx.login("carol").run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert!(out.messages.is_empty(), "{out:?}");
    fx.write_config(&rule("2020-01-01"));
    fx.reload();
    let out = fx.login("carol").answer("PIN", "whatever").run();
    assert_ne!(out.code, PAM_SUCCESS, "{out:?}");
    let rows = audit_reasons(&fx);
    assert!(rows.iter().any(|(r, _)| r == "reject"), "{rows:?}");
    // bob, with a token, logs in with it.
    let out = fx
        .login("bob")
        .answer("PIN", &format!("1234{}", t.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    // erin is in no such group: nullok still applies to her.
    let out = fx.login("erin").run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
}
