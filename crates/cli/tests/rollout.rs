//! A rollout by group: `tessera token add --type registration --group G` issues one code per
//! member without a token, skips (and names) the others, and run again issues only what is
//! missing; `token list --type registration` shows who has enrolled. The accounts and groups
//! are tests/nss's (nss_wrapper): `admins` lists bob, carol and dave.

mod common;

use common::*;

#[test]
fn registration_codes_for_a_group_go_to_the_members_without_a_token() {
    let env = Env::init();
    // carol has a token, dave a code already: only bob gets one.
    env.ok(&[
        "token", "add", "--user", "carol", "--type", "hotp", "--key", RFC_KEY, "--pin", "carol1",
    ]);
    env.ok(&["token", "add", "--user", "dave", "--type", "registration"]);
    let out = env.run(
        &[
            "token",
            "add",
            "--type",
            "registration",
            "--group",
            "admins",
            "--valid-for",
            "2d",
            "--json",
        ],
        "",
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let issued: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let issued = issued.as_array().unwrap();
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0]["user"], "bob");
    let serial = issued[0]["serial"].as_str().unwrap();
    let code_given = issued[0]["code"].as_str().unwrap();
    assert_eq!(code_given.len(), 16, "{code_given}");
    assert_eq!(issued[0]["expires"].as_str().unwrap().len(), 16);
    let said = text(&out.stderr);
    assert_eq!(
        said.split_whitespace().collect::<Vec<_>>().join(" "),
        "tessera: no code for 2 of 3 members of admins: carol (has a token), dave (has a \
         registration code)"
    );
    // The code works as any registration code: it is bob's, unused, good for 2 days.
    let shown = env.token_json(serial);
    assert_eq!(
        (shown["user"].as_str(), shown["counter"].as_u64()),
        (Some("bob"), Some(0))
    );
    let listed = env.ok(&["token", "list", "--type", "registration"]);
    let bob_row = listed.lines().find(|l| l.starts_with(serial)).unwrap();
    assert!(bob_row.contains("unused, expires"), "{listed}");
    assert_eq!(
        listed.lines().count(),
        3,
        "header, bob's and dave's: {listed}"
    );

    // Run again: everyone is covered, nothing issued, the table has its header only.
    let out = env.run(
        &[
            "token",
            "add",
            "--type",
            "registration",
            "--group",
            "admins",
        ],
        "",
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).lines().count(),
        1,
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stderr).contains("no code for 3 of 3 members"));
    assert!(text(&out.stderr).contains("bob (has a registration code)"));
}

#[test]
fn a_group_rollout_refuses_what_it_cannot_do_in_one_line() {
    let env = Env::init();
    for (args, says) in [
        (
            &[
                "token",
                "add",
                "--type",
                "registration",
                "--group",
                "nosuchgroup",
            ][..],
            "no group \"nosuchgroup\"",
        ),
        (
            &["token", "add", "--type", "totp", "--group", "admins"][..],
            "--group issues registration codes",
        ),
        (
            &[
                "token",
                "add",
                "--type",
                "registration",
                "--group",
                "admins",
                "--serial",
                "R1",
            ][..],
            "--serial names one token",
        ),
    ] {
        let err = assert_one_line_error(&env.run(args, ""), 2);
        assert!(err.contains(says), "{err}");
    }
    // --user and --group are one or the other.
    let out = env.run(
        &[
            "token",
            "add",
            "--type",
            "registration",
            "--group",
            "admins",
            "--user",
            "bob",
        ],
        "",
    );
    assert_eq!(code(&out), 2);
    assert!(
        env.ok(&["token", "list"]).lines().count() <= 1,
        "nothing issued"
    );
}
