//! The PIN rule (`[auth] pin_min_length`, default 6, and `pin_contents`) where root sets a PIN:
//! `tessera token add` and `token set-pin`; and `tessera doctor` counting the PINs set under
//! another rule. (A user's own enrollment asks again: engine `login::self_enroll` tests and
//! tests/e2e/registration.py.)

mod common;

use common::*;

fn token_info(env: &Env, serial: &str) -> serde_json::Value {
    env.token_json(serial)["info"].clone()
}

#[test]
fn new_pins_follow_the_pin_rule_and_doctor_counts_older_ones() {
    // The defaults: at least 6 characters of any kind.
    let env = Env::with_exact_config("");
    env.ok(&["init"]);
    let add = |pin: &str| {
        env.run(
            &[
                "token", "add", "--user", "alice", "--type", "hotp", "--key", RFC_KEY, "--serial",
                "H1", "--pin", pin,
            ],
            "",
        )
    };
    for short in ["1", "12345"] {
        let err = assert_one_line_error(&add(short), 2);
        assert_eq!(
            err.trim_end(),
            "tessera: a PIN must have at least 6 characters (the config's [auth] pin_min_length \
             and pin_contents)"
        );
    }
    let out = env.run(
        &[
            "token",
            "add",
            "--user",
            "alice",
            "--type",
            "hotp",
            "--key",
            RFC_KEY,
            "--serial",
            "H1",
            "--pin-stdin",
        ],
        "12345\n",
    );
    assert_one_line_error(&out, 2);
    assert!(
        env.ok(&["token", "list"]).trim().lines().count() <= 1,
        "nothing enrolled"
    );
    assert_eq!(code(&add("123456")), 0);
    assert_eq!(token_info(&env, "H1")["pin_rule"], "6:any");
    // 755224 is the RFC 4226 code for counter 0.
    assert_eq!(env.check("alice", "123456755224\n").0, 0);

    // set-pin: a short one is refused and the PIN stays as it was.
    let err = assert_one_line_error(&env.run(&["token", "set-pin", "H1", "--pin", "99"], ""), 2);
    assert!(err.contains("at least 6 characters"), "{err}");
    assert_eq!(env.check("alice", &format!("123456{}\n", hotp_rfc(1))).0, 0);

    // doctor: every PIN under the rule of the config.
    let no_pam = env.path("pam.d");
    std::fs::create_dir_all(&no_pam).unwrap();
    let doctor = || {
        text(
            &env.run_with(&["doctor"], "", &[("TESSERA_PAM_DIR", &no_pam)])
                .stdout,
        )
    };
    let out = doctor();
    assert!(
        out.contains(
            "ok    PIN rule: every PIN was set under the current one (at least 6 characters)"
        ),
        "{out}"
    );

    // The rule made stricter: the PIN set before is counted (it can't be checked: only its
    // hash is kept), and set again under the new rule it is not.
    env.rewrite_config("[auth]\npin_contents = \"digits\"\n");
    let out = doctor();
    let warned: Vec<&str> = out.lines().filter(|l| l.contains("PIN rule")).collect();
    assert_eq!(
        warned,
        [
            "warn  1 token PIN(s) set before the current PIN rule (at least 6 characters, digits \
          only) or under another: alice/H1; a PIN is kept only as a hash, so the rule can't be \
          checked against it: have their owners set a new one (`tessera token set-pin SERIAL`)"
        ],
        "{out}"
    );
    let err = assert_one_line_error(
        &env.run(&["token", "set-pin", "H1", "--pin-stdin"], "abcdef\n"),
        2,
    );
    assert!(err.contains("at least 6 characters, digits only"), "{err}");
    env.run(&["token", "set-pin", "H1", "--pin-stdin"], "246810\n");
    assert_eq!(token_info(&env, "H1")["pin_rule"], "6:digits");
    assert_eq!(env.check("alice", &format!("246810{}\n", hotp_rfc(2))).0, 0);
    assert!(doctor().contains("ok    PIN rule: every PIN was set under the current one"));

    // A PIN removed leaves nothing to count; a bad rule in the config is refused by name.
    env.ok(&["token", "set-pin", "H1", "--no-pin"]);
    assert!(token_info(&env, "H1").get("pin_rule").is_none());
    env.rewrite_config("[auth]\npin_min_length = 0\n");
    let err = assert_one_line_error(&env.run(&["token", "list"], ""), 1);
    assert!(
        err.contains("pin_min_length") && err.contains("between 1 and 256"),
        "{err}"
    );
}

#[test]
fn a_registration_code_has_no_pin_to_set() {
    let env = Env::with_exact_config("");
    env.ok(&["init"]);
    let out = env.ok(&[
        "token",
        "add",
        "--user",
        "bob",
        "--type",
        "registration",
        "--serial",
        "REG1",
    ]);
    assert!(out.starts_with("REG1"), "{out}");
    let err = assert_one_line_error(
        &env.run(&["token", "set-pin", "REG1", "--pin", "123456"], ""),
        2,
    );
    assert!(
        err.contains("token REG1 is a registration code: it has no PIN"),
        "{err}"
    );
    assert!(env.token_json("REG1")["info"].get("pin_rule").is_none());

    // doctor, where pam_tessera.so is the only factor: a token without a PIN is warned of, a
    // registration code is not one (it is said what it is).
    env.ok(&[
        "token", "add", "--user", "carol", "--type", "hotp", "--key", RFC_KEY, "--serial", "H2",
    ]);
    let module = env.path("pam_tessera.so");
    std::fs::write(&module, "").unwrap();
    let pam = env.path("pam.d");
    std::fs::create_dir_all(&pam).unwrap();
    std::fs::write(
        pam.join("sshd"),
        format!("auth required {}\n", module.display()),
    )
    .unwrap();
    let out = text(
        &env.run_with(&["doctor"], "", &[("TESSERA_PAM_DIR", &pam)])
            .stdout,
    );
    let pinless: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("without a PIN ("))
        .collect();
    assert_eq!(pinless.len(), 1, "{out}");
    assert!(
        pinless[0].starts_with("warn  1 token(s) without a PIN (carol/H2)"),
        "{out}"
    );
    assert!(
        out.contains(
            "ok    1 registration code(s) not used yet (bob/REG1): each is a one-time secret"
        ),
        "{out}"
    );
}

fn hotp_rfc(counter: u64) -> String {
    hotp(b"12345678901234567890", counter)
}
