//! `tessera import` with files the peers' own tools wrote: a `~/.google_authenticator` from the
//! `google-authenticator` command, used once through pam_google_authenticator; a pam_oath users
//! file after logins through pam_oath; the RFC 6030 figures; a privacyIDEA token CSV. Each
//! import keeps what was used there used here: the code a peer accepted last is refused through
//! pam_tessera (real libpam), the next one is accepted.

mod support;

use support::*;
use tessera_engine::crypto::decode_base32;
use tessera_engine::tokens::{hotp_code, Algorithm};

const SECURITY: &str = "/usr/lib/x86_64-linux-gnu/security";
const RFC_KEY: &[u8] = b"12345678901234567890";

fn code(key: &[u8], counter: u64, digits: u32) -> String {
    String::from_utf8(hotp_code(Algorithm::Sha1, key, counter, digits).to_vec()).unwrap()
}

/// The name of whoever runs the tests (root in CI): the owner of the files written here.
fn me() -> String {
    tessera_engine::os::sys::account_of_uid(tessera_engine::os::sys::euid())
        .expect("the test user has an account")
        .name
}

/// One login through a peer's PAM module (service file `name` holding `line`), answering the
/// prompt with `answer`. Returns whether it succeeded, and pamtester's stderr.
fn peer_login(fx: &Fixture, name: &str, line: &str, user: &str, answer: &str) -> (bool, String) {
    std::fs::write(fx.services.join(name), format!("{line}\n")).unwrap();
    let out = run_pamtester(&mut pamtester_service(&fx.services, name, user), &[answer]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn import(fx: &Fixture, args: &[&str]) -> String {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    let out = fx.tessera(&all, "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{all:?}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A refused import: exit 1, one line on stderr, nothing written.
fn import_refused(fx: &Fixture, args: &[&str]) -> String {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    let out = fx.tessera(&all, "");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{all:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(fx.store().list_tokens(None).unwrap().is_empty());
    stderr
}

fn login(fx: &Fixture, user: &str, pass: &str) -> i32 {
    fx.login(user).answer("PIN", pass).run().code
}

fn last_reason(fx: &Fixture) -> String {
    fx.audit()
        .last()
        .map(|a| a.reason.clone())
        .unwrap_or_default()
}

#[test]
fn a_google_authenticator_file_keeps_its_used_code_and_scratch_codes() {
    let fx = Fixture::new("");
    let file = fx.dir.path().join("google_authenticator");
    let out = std::process::Command::new("google-authenticator")
        .args([
            "-t", "-d", "-f", "-C", "-q", "-u", "-w", "3", "-e", "3", "-l", "test",
        ])
        .arg("-s")
        .arg(&file)
        .output()
        .expect("google-authenticator (apt-get install libpam-google-authenticator)");
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    let key = decode_base32(text.lines().next().unwrap()).unwrap();
    let scratch: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('"'))
        .skip(1)
        .collect();
    assert_eq!(scratch.len(), 3, "{text}");

    // A login through pam_google_authenticator: the file now lists this step as used.
    let step = now() / 30;
    let used = code(&key, step, 6);
    let ga = format!(
        "auth required {SECURITY}/pam_google_authenticator.so secret={} user={}",
        file.display(),
        me()
    );
    let (ok, err) = peer_login(&fx, "ga", &ga, "alice", &used);
    assert!(ok, "pam_google_authenticator: {err}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\" DISALLOW_REUSE "), "{text}");

    // The file's owner would be the user: a file of root's must say whose it is (--user).
    let none = fx.tessera(&["import", "--format", "google-authenticator"], "");
    assert_eq!(none.status.code(), Some(2), "a file is required");
    let dry_run = |user: &[&'static str]| -> Vec<&str> {
        let mut args = vec!["--format", "google-authenticator", "--dry-run", "--json"];
        args.extend_from_slice(user);
        args.push(file.to_str().unwrap());
        args
    };
    if tessera_engine::os::sys::euid() == 0 {
        let err = import_refused(&fx, &dry_run(&[]));
        assert_eq!(
            err,
            format!(
                "tessera: {} belongs to uid 0 (root): pass --user to say whose it is\n",
                file.display()
            )
        );
    }
    // A dry run writes nothing, and names the user.
    let rows: serde_json::Value =
        serde_json::from_str(&import(&fx, &dry_run(&["--user", "alice"]))).unwrap();
    assert_eq!(rows[0]["type"], "totp");
    assert_eq!(rows[0]["user"], "alice");
    assert_eq!(rows[1]["type"], "tan");
    assert!(fx.store().list_tokens(None).unwrap().is_empty());

    let out = import(
        &fx,
        &[
            "--format",
            "google-authenticator",
            "--user",
            "alice",
            file.to_str().unwrap(),
        ],
    );
    assert!(out.contains("imported 2 token(s)"), "{out}");
    // The code pam_google_authenticator accepted is refused here as replayed; the next is not.
    assert_eq!(login(&fx, "alice", &used), PAM_AUTH_ERR);
    assert!(last_reason(&fx).contains("replayed"), "{:?}", fx.audit());
    assert_eq!(login(&fx, "alice", &code(&key, step + 1, 6)), PAM_SUCCESS);
    // A scratch code opens once.
    assert_eq!(login(&fx, "alice", scratch[1]), PAM_SUCCESS);
    assert_eq!(login(&fx, "alice", scratch[1]), PAM_AUTH_ERR);
    assert_eq!(login(&fx, "alice", scratch[0]), PAM_SUCCESS);
}

#[test]
fn a_pam_oath_users_file_keeps_counters_pins_and_the_last_totp_code() {
    let fx = Fixture::new("");
    let file = fx.dir.path().join("users.oath");
    let hex_key = hex(RFC_KEY);
    let bob_key = b"bob's own key, 20 b.";
    std::fs::write(
        &file,
        format!(
            "# pam_oath users\nHOTP alice 1234 {hex_key}\nHOTP/T30/8 bob - {}\n",
            hex(bob_key)
        ),
    )
    .unwrap();
    let oath = format!(
        "auth required {SECURITY}/pam_oath.so usersfile={} window=10 digits=6",
        file.display()
    );
    // alice types her password before the code (`digits=` tells pam_oath where the code
    // starts); pam_oath looks ahead to counter 2.
    let (ok, err) = peer_login(
        &fx,
        "oath",
        &oath,
        "alice",
        &format!("1234{}", code(RFC_KEY, 2, 6)),
    );
    assert!(ok, "pam_oath alice: {err}");
    let step = now() / 30;
    let bob_used = code(bob_key, step, 8);
    let oath8 = oath.replace("digits=6", "digits=8");
    let (ok, err) = peer_login(&fx, "oath8", &oath8, "bob", &bob_used);
    assert!(ok, "pam_oath bob: {err}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(&bob_used),
        "liboath wrote the last code back: {text}"
    );

    // The codes used below are oathtool's.
    assert_eq!(
        code(RFC_KEY, 3, 6),
        oathtool(&["--hotp", "-c", "3", &hex_key])
    );
    let at = format!("@{}", (step + 1) * 30);
    assert_eq!(
        code(bob_key, step + 1, 8),
        oathtool(&["--totp", "-d", "8", "-N", &at, &hex(bob_key)])
    );
    let out = import(&fx, &["--format", "oath", file.to_str().unwrap()]);
    assert!(out.contains("imported 2 token(s)"), "{out}");
    assert!(fx.store().list_tokens(Some("alice")).unwrap()[0]
        .pin_hash
        .is_some());
    // alice: counter 2 was used at pam_oath; 3 is next, behind her PIN.
    assert_eq!(
        login(&fx, "alice", &format!("1234{}", code(RFC_KEY, 2, 6))),
        PAM_AUTH_ERR
    );
    assert_eq!(login(&fx, "alice", &code(RFC_KEY, 3, 6)), PAM_AUTH_ERR);
    assert_eq!(
        login(&fx, "alice", &format!("1234{}", code(RFC_KEY, 3, 6))),
        PAM_SUCCESS
    );
    // bob: the code pam_oath took is refused, the next step's is accepted.
    assert_eq!(login(&fx, "bob", &bob_used), PAM_AUTH_ERR);
    assert!(last_reason(&fx).contains("replayed"), "{:?}", fx.audit());
    assert_eq!(login(&fx, "bob", &code(bob_key, step + 1, 8)), PAM_SUCCESS);
}

const PSKC_FIGURE_3: &str = "rfc6030-figure3.xml";

#[test]
fn pskc_files_of_rfc_6030_plain_and_with_a_password() {
    let fx = Fixture::new("");
    // Figure 3: plain, the user named in the file (the UID of its DN).
    let out = import(
        &fx,
        &[
            "--format",
            "pskc",
            pskc_figure(PSKC_FIGURE_3).to_str().unwrap(),
            "--dry-run",
            "--json",
        ],
    );
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows[0]["user"], "jsmith");
    assert_eq!(rows[0]["serial"], "987654321");
    let password = fx.dir.path().join("password");
    std::fs::write(&password, "not it\n").unwrap();
    let wrong = pskc_figure7_args(&password);
    let err = import_refused(&fx, &wrong.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("wrong password or key"), "{err}");
    std::fs::write(&password, "qwerty\n").unwrap();
    let right = pskc_figure7_args(&password);
    let out = import(&fx, &right.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("987654321"), "{out}");
    let t = fx.token("987654321");
    assert_eq!((t.user.as_str(), t.digits, t.counter), ("alice", 8, 0));
    assert_eq!(t.info.origin, Some(tessera_engine::tokens::Origin::Import));
    assert_eq!(login(&fx, "alice", &code(RFC_KEY, 0, 8)), PAM_SUCCESS);
    assert_eq!(login(&fx, "alice", &code(RFC_KEY, 0, 8)), PAM_AUTH_ERR);

    // The same serial again: refused as a whole, also in a dry run.
    let mut again: Vec<&str> = right.iter().map(String::as_str).collect();
    again.push("--dry-run");
    let out = fx.tessera(&[&["import"][..], &again].concat(), "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("987654321 already exists"));
}

#[test]
fn a_privacyidea_token_csv() {
    let fx = Fixture::new("");
    let file = fx.dir.path().join("tokens.csv");
    std::fs::write(
        &file,
        format!(
            "# version: 2\nalice, users, , PIHOTP1, {}, hotp, 6, 5\n, , , PITAN1, 00, tan, 48151623 42424242\n",
            hex(RFC_KEY)
        ),
    )
    .unwrap();
    // A password is for PSKC only: a usage error.
    let out = fx.tessera(
        &[
            "import",
            "--format",
            "privacyidea",
            "--password-file",
            "/dev/null",
            file.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // The tan line names no user: without --user nothing is imported.
    let err = import_refused(&fx, &["--format", "privacyidea", file.to_str().unwrap()]);
    assert!(err.contains("line 3: the file names no user"), "{err}");
    let out = import(
        &fx,
        &[
            "--format",
            "privacyidea",
            "--user",
            "alice",
            file.to_str().unwrap(),
        ],
    );
    assert!(out.contains("PIHOTP1") && out.contains("PITAN1"), "{out}");
    assert_eq!(login(&fx, "alice", &code(RFC_KEY, 4, 6)), PAM_AUTH_ERR);
    assert_eq!(login(&fx, "alice", &code(RFC_KEY, 5, 6)), PAM_SUCCESS);
    assert_eq!(login(&fx, "alice", "42424242"), PAM_SUCCESS);
    assert_eq!(login(&fx, "alice", "42424242"), PAM_AUTH_ERR);
    // Importing the same file again is refused whole: the serials exist.
    let out = fx.tessera(
        &[
            "import",
            "--format",
            "privacyidea",
            "--user",
            "alice",
            file.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(fx.store().list_tokens(None).unwrap().len(), 2);
}
