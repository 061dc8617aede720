//! `otppin`, `use_first_pass` / `try_first_pass`, `nullok` and `prompt=` through the real libpam,
//! in the stacks they are meant for.

mod support;

use support::*;

const PERMIT: &str = "auth required pam_permit.so";
const DENY: &str = "auth required pam_deny.so";

// ---- otppin ----

#[test]
fn otppin_none_asks_for_the_otp_alone() {
    let fx = Fixture::new("[auth]\notppin = \"none\"\n");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let out = fx.login("alice").answer("OTP", &t.hotp_at(0)).run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(out.messages, [Msg::prompt("OTP: ")]);
    let out = fx
        .login("alice")
        .answer("OTP", &format!("1234{}", t.hotp_at(1)))
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR, "the PIN is not part of the pass");
    let out = fx.login("alice").answer("OTP", "1234").run();
    assert_eq!(out.code, PAM_AUTH_ERR, "the PIN alone opens no challenge");
    assert!(fx.challenges().is_empty());
}

#[test]
fn otppin_none_refuses_and_audits_an_unknown_user_like_a_wrong_otp() {
    let fx = Fixture::new("[auth]\notppin = \"none\"\n");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let out = fx.login("nobody").answer("OTP", &t.hotp_at(0)).run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(out.messages, [Msg::prompt("OTP: ")], "prompted like alice");
    let rows: Vec<_> = fx
        .audit()
        .into_iter()
        .filter(|e| e.user == "nobody")
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].result, "reject");
    assert_eq!(rows[0].reason, "wrong OTP or unknown user");
    assert_eq!(fx.token("H1").counter, 0);
}

#[test]
fn otppin_system_asks_only_the_otp_after_the_unix_password_module() {
    let fx = Fixture::new("[auth]\notppin = \"system\"\n");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    // PAM_AUTHTOK holds the Unix password pam_unix asked for, which is not the OTP: the module
    // asks for the OTP even with try_first_pass / use_first_pass.
    for args in ["", "try_first_pass", "use_first_pass"] {
        fx.set_stack(&[UNIX_FIRST, &fx.tessera_line("required", args)]);
        let c = fx.token("H1").counter;
        let out = fx
            .login("alice")
            .answer("Password", "unix-password")
            .answer("OTP", &t.hotp_at(c))
            .run();
        assert_eq!(out.code, PAM_SUCCESS, "{args}: {out:?}");
        assert_eq!(out.prompts(), ["Password: ", "OTP: "], "{args}");
    }
    fx.set_args("");
    let out = fx
        .login("alice")
        .answer("OTP", &format!("1234{}", t.hotp_at(3)))
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR, "the PIN is not part of the pass");
}

// ---- use_first_pass / try_first_pass ----

#[test]
fn use_first_pass_takes_the_pass_of_an_earlier_module_without_prompting() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    fx.set_stack(&[UNIX_FIRST, &fx.tessera_line("required", "use_first_pass")]);
    let pass = format!("1234{}", t.hotp_at(0));
    let out = fx.login("alice").answer("Password", &pass).run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(out.prompts(), ["Password: "], "tessera did not prompt");
    let out = fx.login("alice").answer("Password", &pass).run();
    assert_eq!(out.code, PAM_AUTH_ERR, "replayed");
    assert_eq!(out.prompts(), ["Password: "], "and never prompted");
    let out = fx.login("alice").answer("Password", "unix-password").run();
    assert_eq!(out.code, PAM_AUTH_ERR, "a pass that does not match");
    assert_eq!(out.prompts(), ["Password: "], "is not asked again");
}

#[test]
fn use_first_pass_without_an_earlier_pass_fails_without_prompting() {
    let fx = Fixture::new("");
    fx.add(&Tok::hotp("H1", "alice", "1234"));
    fx.set_args("use_first_pass");
    let out = fx.login("alice").run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert!(out.messages.is_empty());
}

#[test]
fn use_first_pass_with_the_pin_alone_still_sends_the_challenge() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    fx.set_stack(&[UNIX_FIRST, &fx.tessera_line("required", "use_first_pass")]);
    let out = fx
        .login("alice")
        .answer("Password", "1234")
        .answer("otp value", &t.hotp_at(0))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(
        out.prompts(),
        ["Password: ", "Please enter your otp value: "]
    );
}

#[test]
fn try_first_pass_uses_a_good_earlier_pass_without_prompting() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    fx.set_stack(&[UNIX_FIRST, &fx.tessera_line("required", "try_first_pass")]);
    let out = fx
        .login("alice")
        .answer("Password", &format!("1234{}", t.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(out.prompts(), ["Password: "]);
}

#[test]
fn try_first_pass_prompts_when_the_earlier_pass_does_not_match() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    fx.set_stack(&[UNIX_FIRST, &fx.tessera_line("required", "try_first_pass")]);
    let out = fx
        .login("alice")
        .answer("Password", "unix-password")
        .answer("PIN", &format!("1234{}", t.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(out.prompts(), ["Password: ", "PIN: "]);
    // The Unix password matched no PIN: that is no failed attempt, only the prompt's answer is.
    let out = fx
        .login("alice")
        .answer("Password", "unix-password")
        .answer("PIN", "1234000000")
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(fx.token("H1").fail_count, 1, "one failure, not two");
    let out = fx
        .login("nobody")
        .answer("Password", "unix-password")
        .answer("PIN", "1234000000")
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(
        out.prompts(),
        ["Password: ", "PIN: "],
        "an unknown user too"
    );
    // Without an earlier pass it simply prompts.
    fx.set_args("try_first_pass");
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(1)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS);
}

// ---- nullok ----

#[test]
fn nullok_ignores_a_user_without_tokens() {
    // (A disabled token is a token: tests/security.rs.)
    let fx = Fixture::new("");
    fx.add(&Tok::hotp("H1", "alice", "1234"));
    {
        let user = "bob";
        // PAM_IGNORE leaves the decision to the rest of a `required` stack...
        fx.set_stack(&[&fx.tessera_line("required", "nullok"), PERMIT]);
        let out = fx.login(user).run();
        assert_eq!(out.code, PAM_SUCCESS, "{user}: {out:?}");
        assert!(out.messages.is_empty(), "{user}: no prompt");
        // ...and is not a success: as `sufficient` it does not end the stack.
        fx.set_stack(&[&fx.tessera_line("sufficient", "nullok"), DENY]);
        assert_eq!(fx.login(user).run().code, PAM_AUTH_ERR, "{user}");
        // Alone, libpam turns a stack where no module decided into a denial.
        fx.set_stack(&[&fx.tessera_line("required", "nullok")]);
        assert_eq!(fx.login(user).run().code, PAM_PERM_DENIED, "{user}");
    }
    assert!(fx
        .audit()
        .iter()
        .any(|e| e.user == "bob" && e.result == "ignore"));
}

#[test]
fn nullok_prompts_a_user_with_tokens_as_usual() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    fx.set_stack(&[&fx.tessera_line("required", "nullok"), PERMIT]);
    let out = fx.login("alice").answer("PIN", "1234000000").run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(out.messages, [Msg::prompt("PIN: ")]);
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS);
}

#[test]
fn without_nullok_a_user_without_tokens_is_prompted_and_fails() {
    let fx = Fixture::new("");
    fx.add(&Tok::hotp("H1", "alice", "1234"));
    fx.set_stack(&[&fx.tessera_line("required", ""), PERMIT]);
    let out = fx.login("bob").answer("PIN", "1234").run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(out.messages, [Msg::prompt("PIN: ")]);
}

#[test]
fn pass_on_no_token_lets_a_user_without_tokens_in() {
    let fx = Fixture::new("[auth]\npass_on_no_token = true\n");
    fx.add(&Tok::hotp("H1", "alice", "1234"));
    let out = fx.login("bob").run();
    assert_eq!(out.code, PAM_SUCCESS);
    assert!(out.messages.is_empty());
    let out = fx.login("alice").answer("PIN", "1234000000").run();
    assert_eq!(out.code, PAM_AUTH_ERR, "a user with tokens must use them");
}

// ---- prompt= ----

#[test]
fn the_prompt_argument_sets_the_first_prompt() {
    let fx = Fixture::new("[prompts]\nhotp = \"Code from your key fob: \"\n");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    fx.set_args("prompt=Token-PIN:");
    let out = fx
        .login("alice")
        .answer("Token-PIN:", "1234")
        .answer("key fob", &t.hotp_at(0))
        .run();
    assert_eq!(out.code, PAM_SUCCESS);
    assert_eq!(
        out.messages,
        [
            Msg::prompt("Token-PIN:"),
            Msg::prompt("Code from your key fob: ")
        ]
    );
}
