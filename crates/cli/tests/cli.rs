//! The `tessera` command as users and scripts see it: the built binary, run against a config
//! and store in a temporary directory. Exit codes (0 ok, 1 failure, 2 usage), one-line errors,
//! JSON that parses, and logins through `tessera check` (the same engine as the PAM module).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tessera_engine::crypto::{decode_base32, encode_hex};

mod common;

use common::*;

#[test]
fn init_creates_private_files_and_never_replaces_the_key() {
    let env = Env::new();
    let first = env.ok(&["init"]);
    assert!(first.contains("created"), "{first}");
    let key = std::fs::read(env.path("secret.key")).unwrap();
    assert_eq!(key.len(), 65, "64 hex digits and a newline");
    assert_eq!(mode(&env.path("secret.key")), 0o600);
    assert_eq!(mode(&env.path("db/tessera.db")), 0o600);
    assert_eq!(mode(&env.path("db")), 0o700);

    let again = env.ok(&["init"]);
    assert!(again.contains("exists, kept"), "{again}");
    assert_eq!(std::fs::read(env.path("secret.key")).unwrap(), key);
    assert_eq!(mode(&env.path("secret.key")), 0o600);
}

#[test]
fn init_refuses_a_new_key_for_a_store_with_tokens() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    std::fs::remove_file(env.path("secret.key")).unwrap();
    let out = env.run(&["init"], "");
    let err = assert_one_line_error(&out, 1);
    assert!(err.contains("restore the key file"), "{err}");
    assert!(!env.path("secret.key").exists());
}

/// Run by root for a store whose directory belongs to another user (the package gives
/// /var/lib/tessera to _tessera, the user tesserad runs as), the command works as that user:
/// `init` makes the store and the key that user's (the key by root, in a directory of root's
/// that the user can't write), and no command leaves a file of root's in the store's directory
/// (SQLite's -wal and -shm included), which would lock the daemon out. Needs root (CI runs the
/// tests as root); run by anyone else there is nobody to become.
#[test]
fn run_by_root_the_command_works_as_the_owner_of_the_store_directory() {
    use std::os::unix::fs::{chown, MetadataExt};
    if tessera_engine::os::sys::euid() != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    const OWNER: u32 = 4242; // no account needed: only files are handed over
    let env = Env::new();
    // The temporary directory stands for /etc/tessera: root's, with the config (root's, 0600:
    // read before the command changes user) and the key; the owner may pass through it.
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let db_dir = env.path("db");
    std::fs::create_dir(&db_dir).unwrap();
    std::fs::set_permissions(&db_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    chown(&db_dir, Some(OWNER), Some(OWNER)).unwrap();
    let owner_and_mode = |p: &Path| {
        let m = std::fs::symlink_metadata(p).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };

    let out = env.ok(&["init"]);
    assert!(out.contains("store") && out.contains("key"), "{out}");
    assert_eq!(
        owner_and_mode(&env.path("secret.key")),
        (OWNER, OWNER, 0o600)
    );
    assert_eq!(
        owner_and_mode(&env.path("db/tessera.db")),
        (OWNER, OWNER, 0o600)
    );
    assert_eq!(
        owner_and_mode(env.dir.path()),
        (0, 0, 0o755),
        "the key's directory stays"
    );
    let again = env.ok(&["init"]);
    assert!(again.contains("exists, kept"), "{again}");

    // Every command that opens the store, writing (enroll, a login, a reset) and reading.
    env.add_rfc_hotp("H1");
    assert_eq!(
        env.check("alice", "PIN755224\n"),
        (0, "ACCEPT (serial H1)\n".into())
    );
    env.ok(&["token", "set-pin", "H1", "--pin", "NEWPIN"]);
    env.ok(&["token", "disable", "H1"]);
    env.ok(&["token", "enable", "H1"]);
    env.ok(&["token", "reset", "H1"]);
    env.ok(&[
        "token",
        "resync",
        "H1",
        &hotp(b"12345678901234567890", 5),
        &hotp(b"12345678901234567890", 6),
    ]);
    env.ok(&["token", "list", "--json"]);
    env.ok(&["token", "show", "H1"]);
    env.ok(&["challenge", "list", "--all"]);
    env.ok(&["audit", "--user", "alice"]);
    let doctor = env.run(&["doctor"], "");
    let report = text(&doctor.stdout);
    assert_eq!(code(&doctor), 0, "{report}");
    assert!(
        report.contains(&format!(
            "ok    checking as uid {OWNER}, the owner of the store's directory"
        )),
        "{report}"
    );
    env.ok(&["token", "remove", "H1"]);

    let mut names = Vec::new();
    for e in std::fs::read_dir(&db_dir).unwrap() {
        let e = e.unwrap();
        names.push(e.file_name().to_string_lossy().into_owned());
        assert_eq!(
            owner_and_mode(&e.path()),
            (OWNER, OWNER, 0o600),
            "{:?}",
            e.path()
        );
    }
    names.sort();
    assert_eq!(names, ["tessera.db", "tessera.db-shm", "tessera.db-wal"]);

    // A key still root's (as the in-process module's installations have it) can't be read by
    // the store's owner: a one-line error that says so, not a file created as root.
    chown(env.path("secret.key"), Some(0), Some(0)).unwrap();
    let out = env.run(
        &[
            "token", "add", "--user", "alice", "--type", "hotp", "--genkey",
        ],
        "",
    );
    let err = assert_one_line_error(&out, 1);
    assert!(err.contains(&format!("read as uid {OWNER}")), "{err}");
}

#[test]
fn pin_plus_otp_accepts_once() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    assert_eq!(
        env.check("alice", "PIN755224\n"),
        (0, "ACCEPT (serial H1)\n".into())
    );
    let (rc, out) = env.check("alice", "PIN755224\n");
    assert_eq!(rc, 1, "a replayed OTP is refused");
    assert!(out.starts_with("REJECT: "), "{out}");
}

#[test]
fn pin_alone_opens_a_challenge_answered_by_the_otp() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    let out = env.run(&["check", "alice"], "PIN\n755224\n");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Please enter your otp value"));
    let ch: serde_json::Value =
        serde_json::from_str(&env.ok(&["challenge", "list", "--all", "--json"])).unwrap();
    assert_eq!(ch[0]["serial"], "H1");
    assert_eq!(ch[0]["state"], "answered");
    assert_eq!(ch[0]["transaction_id"].as_str().unwrap().len(), 20);
    let open: serde_json::Value =
        serde_json::from_str(&env.ok(&["challenge", "list", "--json"])).unwrap();
    assert_eq!(open, serde_json::json!([]), "no open challenge left");
}

#[test]
fn listings_print_json_that_parses_and_holds_no_secret() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    env.check("alice", "PIN755224\n");
    let list: serde_json::Value =
        serde_json::from_str(&env.ok(&["token", "list", "--json"])).unwrap();
    let t = &list[0];
    assert_eq!(t["serial"], "H1");
    assert_eq!(t["type"], "hotp");
    assert_eq!(t["counter"], 1);
    assert_eq!(t["has_pin"], true);
    assert_eq!(t["locked"], false);
    let only_bob: serde_json::Value =
        serde_json::from_str(&env.ok(&["token", "list", "--user", "bob", "--json"])).unwrap();
    assert_eq!(only_bob, serde_json::json!([]));
    let audit: serde_json::Value =
        serde_json::from_str(&env.ok(&["audit", "--user", "alice", "--json"])).unwrap();
    assert_eq!(audit[0]["result"], "accept");
    assert_eq!(audit[0]["serial"], "H1");
    for args in [
        &["token", "list", "--json"][..],
        &["token", "show", "H1", "--json"],
        &["token", "list"],
        &["token", "show", "H1"],
        &["audit"],
        &["audit", "--json"],
    ] {
        let out = env.ok(args);
        for secret in [
            RFC_KEY,
            "12345678901234567890",
            "GEZDGNBV",
            "argon2",
            "755224",
        ] {
            assert!(!out.contains(secret), "{args:?} shows {secret}: {out}");
        }
    }
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let env = Env::init();
    for args in [
        &[][..],
        &["token"],
        &["--bogus", "init"],
        &["token", "add", "--user", "x"],
        &["token", "add", "--user", "x", "--type", "yubikey"],
        &[
            "token", "add", "--user", "x", "--type", "hotp", "--digits", "six",
        ],
        &[
            "token", "add", "--user", "x", "--type", "hotp", "--digits", "7", "--genkey",
        ],
        &[
            "token", "add", "--user", "x", "--type", "totp", "--period", "45", "--genkey",
        ],
        &[
            "token", "add", "--user", "x", "--type", "hotp", "--key", "xyz",
        ],
        &[
            "token", "add", "--user", "x", "--type", "hotp", "--key", "00", "--genkey",
        ],
        &["token", "add", "--user", "x", "--type", "hotp"],
        &[
            "token", "add", "--user", "x", "--type", "totp", "--qr", "--key", "00",
        ],
        &["token", "add", "--user", "x", "--type", "spass"],
        &[
            "token", "add", "--user", "x", "--type", "hotp", "--genkey", "--email", "a@b",
        ],
        &["token", "resync", "H1", "123456"],
        &["audit", "--limit", "-1"],
        // A counter beyond i64 wrapped to 0 after one login (used codes valid again).
        &[
            "token",
            "add",
            "--user",
            "alice",
            "--type",
            "hotp",
            "--genkey",
            "--counter",
            "18446744073709551615",
        ],
        // i64::MAX: stored, but a token there can never log in (an accept moves past it).
        &[
            "token",
            "add",
            "--user",
            "alice",
            "--type",
            "hotp",
            "--genkey",
            "--counter",
            "9223372036854775807",
        ],
    ] {
        let out = env.run(args, "");
        assert_one_line_error(&out, 2);
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(code(&env.run(&["--help"], "")), 0);
    assert_eq!(code(&env.run(&["token", "add", "--help"], "")), 0);
}

/// The highest counter `--counter` takes is one a login can still move past: the code at
/// 2^63 - 2 is accepted once (the counter then stands at 2^63 - 1), and nothing after it.
#[test]
fn the_highest_counter_taken_still_logs_in_once() {
    let env = Env::init();
    let top = tessera_engine::tokens::MAX_COUNTER - 1;
    let out = env.ok(&[
        "token",
        "add",
        "--user",
        "alice",
        "--type",
        "hotp",
        "--key",
        "3132333435363738393031323334353637383930",
        "--counter",
        &top.to_string(),
    ]);
    let serial = out.lines().next().unwrap().to_string();
    let otp = oathtool(&[
        "-c",
        &top.to_string(),
        "3132333435363738393031323334353637383930",
    ]);
    assert_eq!(
        env.check("alice", &format!("{otp}\n")),
        (0, format!("ACCEPT (serial {serial})\n"))
    );
    let next = oathtool(&[
        "-c",
        &(top + 1).to_string(),
        "3132333435363738393031323334353637383930",
    ]);
    assert_ne!(env.check("alice", &format!("{next}\n")).0, 0);
}

#[test]
fn unknown_serial_is_a_one_line_failure() {
    let env = Env::init();
    for args in [
        &["token", "show", "NOPE"][..],
        &["token", "enable", "NOPE"],
        &["token", "disable", "NOPE"],
        &["token", "remove", "NOPE"],
        &["token", "reset", "NOPE"],
        &["token", "set-pin", "NOPE", "--pin", "1"],
        &["token", "resync", "NOPE", "1", "2"],
    ] {
        let err = assert_one_line_error(&env.run(args, ""), 1);
        assert!(err.contains("NOPE"), "{err}");
    }
}

#[test]
fn a_missing_config_is_an_error_naming_it() {
    let env = Env::new();
    let missing = env.path("nope.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("--config")
        .arg(&missing)
        .arg("init")
        .output()
        .unwrap();
    let err = assert_one_line_error(&out, 1);
    assert!(err.contains(&missing.display().to_string()), "{err}");
    // TESSERA_CONFIG is used when --config is not given.
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .env("TESSERA_CONFIG", &env.config)
        .arg("init")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(env.path("secret.key").exists());
}

#[test]
fn a_config_others_can_write_is_refused() {
    let env = Env::init();
    std::fs::set_permissions(&env.config, std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = assert_one_line_error(&env.run(&["token", "list"], ""), 1);
    assert!(err.contains("writable by group or others"), "{err}");
}

#[test]
fn resync_moves_the_counter_past_two_consecutive_codes() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    let key = b"12345678901234567890";
    // Far beyond the login window of 10: refused.
    assert_eq!(env.check("alice", &format!("PIN{}\n", hotp(key, 50))).0, 1);
    let err = assert_one_line_error(
        &env.run(
            &["token", "resync", "H1", &hotp(key, 50), &hotp(key, 52)],
            "",
        ),
        1,
    );
    assert!(err.contains("not consecutive"), "{err}");
    let out = env.ok(&["token", "resync", "H1", &hotp(key, 50), &hotp(key, 51)]);
    assert!(out.contains("next counter 52"), "{out}");
    let t = env.token_json("H1");
    assert_eq!(
        (t["counter"].as_u64(), t["fail_count"].as_u64()),
        (Some(52), Some(0))
    );
    assert_eq!(env.check("alice", &format!("PIN{}\n", hotp(key, 51))).0, 1);
    assert_eq!(env.check("alice", &format!("PIN{}\n", hotp(key, 52))).0, 0);
}

#[test]
fn resync_sets_the_drift_of_a_totp_token_whose_clock_runs_ahead() {
    let env = Env::init();
    env.ok(&[
        "token", "add", "--user", "alice", "--type", "totp", "--pin", "PIN", "--key", RFC_KEY,
        "--serial", "T1",
    ]);
    let key = b"12345678901234567890";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let s = now / 30 + 100; // the device is 100 steps (50 minutes) ahead
    assert_eq!(env.check("alice", &format!("PIN{}\n", hotp(key, s))).0, 1);
    let out = env.ok(&["token", "resync", "T1", &hotp(key, s), &hotp(key, s + 1)]);
    assert!(out.contains("resynchronised"), "{out}");
    let drift = env.token_json("T1")["drift"].as_i64().unwrap();
    assert!((100..=101).contains(&drift), "drift {drift}");
    assert_eq!(
        env.check("alice", &format!("PIN{}\n", hotp(key, s + 1))).0,
        1,
        "used in resync"
    );
    assert_eq!(
        env.check("alice", &format!("PIN{}\n", hotp(key, s + 2))).0,
        0
    );
}

#[test]
fn disabled_tokens_fail_and_enabled_ones_work_again() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    env.ok(&["token", "disable", "H1"]);
    assert_eq!(env.token_json("H1")["active"], false);
    let (rc, out) = env.check("alice", "PIN755224\n");
    assert_eq!((rc, out.as_str()), (1, "REJECT: token disabled\n"));
    env.ok(&["token", "enable", "H1"]);
    assert_eq!(env.check("alice", "PIN755224\n").0, 0);
}

#[test]
fn reset_unlocks_a_token_locked_by_its_fail_counter() {
    let env = Env::with_config("[auth]\nmax_fail = 2\nlock_scope = \"token\"\n");
    env.ok(&["init"]);
    env.add_rfc_hotp("H1");
    for _ in 0..2 {
        assert_eq!(env.check("alice", "PIN000000\n").0, 1);
    }
    let t = env.token_json("H1");
    assert_eq!(
        (t["fail_count"].as_u64(), &t["locked"]),
        (Some(2), &serde_json::json!(true))
    );
    let (rc, out) = env.check("alice", "PIN755224\n");
    assert_eq!(rc, 1);
    assert!(out.starts_with("LOCKED: token H1"), "{out}");
    env.ok(&["token", "reset", "H1"]);
    assert_eq!(env.token_json("H1")["locked"], false);
    assert_eq!(env.check("alice", "PIN755224\n").0, 0);
}

#[test]
fn set_pin_from_stdin_replaces_the_pin_and_no_pin_removes_it() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    let out = env.run(&["token", "set-pin", "H1", "--pin-stdin"], "s3cret\n");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(env.check("alice", "PIN755224\n").0, 1, "old PIN");
    assert_eq!(env.check("alice", "s3cret287082\n").0, 0, "new PIN");
    // Without a flag and with a pipe, the PIN is the first line of stdin.
    let out = env.run(&["token", "set-pin", "H1"], "other\n");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(env.check("alice", "other359152\n").0, 0);
    env.ok(&["token", "set-pin", "H1", "--no-pin"]);
    assert_eq!(env.token_json("H1")["has_pin"], false);
    assert_eq!(env.check("alice", "969429\n").0, 0, "the OTP alone");
    assert_one_line_error(&env.run(&["token", "set-pin", "H1", "--pin-stdin"], ""), 1);
}

#[test]
fn remove_deletes_the_token() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    env.ok(&["token", "remove", "H1"]);
    assert_eq!(env.ok(&["token", "list", "--json"]).trim(), "[]");
    assert_eq!(env.check("alice", "PIN755224\n").0, 1);
}

#[test]
fn duplicate_serials_are_refused() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    let out = env.run(
        &[
            "token", "add", "--user", "bob", "--type", "hotp", "--genkey", "--serial", "H1",
        ],
        "",
    );
    let err = assert_one_line_error(&out, 1);
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn pw_and_spass_tokens() {
    let env = Env::init();
    let pw = encode_hex(b"horse-staple");
    let serial = env.ok(&[
        "token", "add", "--user", "carol", "--type", "pw", "--pin", "12", "--key", &pw,
    ]);
    assert!(
        serial.starts_with("PW") && serial.trim().len() == 10,
        "{serial}"
    );
    assert_eq!(env.token_json(serial.trim())["digits"], 12);
    assert_eq!(env.check("carol", "12horse-staple\n").0, 0);
    assert_eq!(
        env.check("carol", "12horse-staple\n").0,
        0,
        "a static password is reusable"
    );
    assert_eq!(env.check("carol", "12horse-stapl\n").0, 1);

    let serial = env.ok(&[
        "token", "add", "--user", "dave", "--type", "spass", "--pin", "only-pin",
    ]);
    assert!(serial.starts_with("SPASS"), "{serial}");
    assert_eq!(
        env.check("dave", "only-pin\n"),
        (0, format!("ACCEPT (serial {})\n", serial.trim()))
    );
    assert_eq!(env.check("dave", "\n").0, 1);
}

#[test]
fn email_sms_ocra_and_4eyes_tokens_are_enrolled_with_their_info() {
    let env = Env::init();
    let add = |args: &[&str]| {
        let mut a = vec!["token", "add", "--user", "x"];
        a.extend_from_slice(args);
        env.run(&a, "")
    };
    let out = add(&[
        "--type",
        "email",
        "--email",
        "x@example.org",
        "--serial",
        "E1",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(env.token_json("E1")["info"]["email"], "x@example.org");
    assert_eq!(env.token_json("E1")["digits"], 6);
    let out = add(&[
        "--type",
        "sms",
        "--phone",
        "+49 170 1234567",
        "--serial",
        "S1",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(env.token_json("S1")["info"]["phone"], "+49 170 1234567");
    let out = add(&[
        "--type",
        "ocra",
        "--ocra-suite",
        "OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1",
        "--genkey",
        "--serial",
        "O1",
        "--pin",
        "1234",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert_eq!(lines[0], "O1");
    assert_eq!(
        lines[1].len(),
        64,
        "the generated SHA256 key in hex: {lines:?}"
    );
    let o = env.token_json("O1");
    assert_eq!(o["info"]["ocra_suite"], "OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1");
    assert_eq!(
        (o["digits"].clone(), o["algorithm"].clone()),
        (8.into(), "sha256".into())
    );
    let out = add(&[
        "--type",
        "4eyes",
        "--4eyes",
        "admins:2",
        "--separator",
        "|",
        "--serial",
        "F1",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        env.token_json("F1")["info"]["4eyes"],
        serde_json::json!({"realm": "admins", "count": 2, "separator": "|"})
    );
    for args in [
        &["--type", "email"][..],
        &["--type", "email", "--email", "not-an-address"],
        &[
            "--type", "email", "--email", "a@b.org", "--phone", "+4912345",
        ],
        &["--type", "sms", "--phone", "call me"],
        &[
            "--type",
            "ocra",
            "--ocra-suite",
            "OCRA-1:HOTP-MD5-6:QN08",
            "--genkey",
        ],
        &["--type", "ocra", "--ocra-suite", "OCRA-1:HOTP-SHA1-6:QN08"],
        &["--type", "4eyes", "--4eyes", "admins"],
        &["--type", "4eyes", "--4eyes", "admins:2", "--pin", "1"],
        &["--type", "hotp", "--genkey", "--separator", "|"],
    ] {
        assert_one_line_error(&add(args), 2);
    }
}

/// Splits an otpauth URI into its type, label and parameters.
fn parse_uri(uri: &str) -> (String, String, std::collections::HashMap<String, String>) {
    let rest = uri.strip_prefix("otpauth://").unwrap();
    let (path, query) = rest.split_once('?').unwrap();
    let (kind, label) = path.split_once('/').unwrap();
    let params = query
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    (kind.into(), label.into(), params)
}

#[test]
fn generated_totp_key_uri_works_with_oathtool() {
    let env = Env::init();
    let out = env.ok(&[
        "token", "add", "--user", "alice", "--type", "totp", "--genkey", "--pin", "PIN",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let serial = lines[0];
    assert!(serial.starts_with("TOTP"), "{out}");
    let (kind, label, p) = parse_uri(lines[1]);
    assert_eq!((kind.as_str(), label.as_str()), ("totp", "tessera:alice"));
    assert_eq!(p["issuer"], "tessera");
    // SHA1, 6 digits, 30 s are the Key URI format's defaults: left out of the URI.
    assert!(
        ["algorithm", "digits", "period"]
            .iter()
            .all(|k| !p.contains_key(*k)),
        "{p:?}"
    );
    assert_eq!(decode_base32(&p["secret"]).unwrap().len(), 20);
    let otp = oathtool(&["--totp", "-b", &p["secret"]]);
    assert_eq!(
        env.check("alice", &format!("PIN{otp}\n")),
        (0, format!("ACCEPT (serial {serial})\n"))
    );
}

#[test]
fn generated_hotp_key_uri_works_with_oathtool() {
    let env = Env::init();
    let out = env.ok(&[
        "token",
        "add",
        "--user",
        "alice",
        "--type",
        "hotp",
        "--genkey",
        "--digits",
        "8",
        "--counter",
        "5",
        "--issuer",
        "ACME",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    let (kind, label, p) = parse_uri(lines[1]);
    assert_eq!((kind.as_str(), label.as_str()), ("hotp", "ACME:alice"));
    assert_eq!((p["digits"].as_str(), p["counter"].as_str()), ("8", "5"));
    let key = encode_hex(&decode_base32(&p["secret"]).unwrap());
    // No PIN: the pass is the OTP alone. The token starts at counter 5.
    let otp = oathtool(&["-d", "8", "-c", "5", &key]);
    assert_eq!(
        env.check("alice", &format!("{otp}\n")),
        (0, format!("ACCEPT (serial {})\n", lines[0]))
    );
    let next = oathtool(&["-d", "8", "-c", "6", &key]);
    assert_eq!(env.check("alice", &format!("{next}\n")).0, 0);
}

#[test]
fn given_key_is_checked_like_oathtool_computes_it() {
    let env = Env::init();
    env.ok(&[
        "token",
        "add",
        "--user",
        "erin",
        "--type",
        "totp",
        "--pin",
        "p",
        "--key",
        RFC_KEY,
        "--algorithm",
        "sha256",
        "--digits",
        "8",
        "--period",
        "60",
    ]);
    let otp = oathtool(&["--totp=sha256", "-s", "60", "-d", "8", RFC_KEY]);
    assert_eq!(env.check("erin", &format!("p{otp}\n")).0, 0);
}

#[test]
fn check_logs_to_syslog_authpriv_without_secrets() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    let sock_path = env.path("log.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let out = env.run_with(
        &[
            "check",
            "alice",
            "--service",
            "sshd",
            "--rhost",
            "192.0.2.7",
        ],
        "PIN755224\n",
        &[("TESSERA_SYSLOG_SOCKET", &sock_path)],
    );
    assert_eq!(code(&out), 0);
    let mut buf = [0u8; 2048];
    let n = sock.recv(&mut buf).unwrap();
    let line = text(&buf[..n]);
    // authpriv (10) * 8 + info (6)
    assert!(line.starts_with("<86>"), "{line}");
    assert!(line.contains("tessera["), "{line}");
    assert!(
        line.contains("result=accept user=\"alice\" realm=\"default\" serial=\"H1\" type=hotp service=\"sshd\" rhost=\"192.0.2.7\""),
        "{line}"
    );
    assert!(!line.contains("755224") && !line.contains("PIN7"), "{line}");
}

#[test]
fn doctor_reports_each_check_and_fails_on_a_wrong_key() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    let out = env.run(&["doctor"], "");
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("ok    key opens all 1 token key(s)"));
    let daemon = text(&out.stdout);
    assert!(
        daemon.contains("ok    tesserad answers on /run/tessera/tessera.sock")
            || daemon.contains("warn  no tesserad on /run/tessera/tessera.sock"),
        "doctor checks the daemon: {daemon}"
    );
    // Another key file: the stored OTP keys no longer open.
    std::fs::remove_file(env.path("secret.key")).unwrap();
    std::fs::write(env.path("secret.key"), format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(
        env.path("secret.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = env.run(&["doctor"], "");
    assert_eq!(code(&out), 1);
    assert!(
        text(&out.stdout).contains("FAIL  the key file does not open the keys of 1 token(s): H1")
    );
}

/// Without a daemon, doctor says how to start one with the commands of this host's init:
/// systemctl where systemd runs, the package's init script where it is installed, else the
/// daemon's own command with this config and socket (never systemctl on a host without it).
#[test]
fn doctor_advises_the_start_command_of_this_host_s_init() {
    let env = Env::init();
    let socket = env.path("none.sock");
    let out = env.run(&["doctor", "--socket", socket.to_str().unwrap()], "");
    let stdout = text(&out.stdout);
    let warned = doctor_lines(&stdout, "warn  ", "no tesserad on");
    assert_eq!(warned.len(), 1, "{stdout}");
    let expected = if Path::new("/run/systemd/system").is_dir() {
        "`systemctl enable --now tesserad.socket`".to_string()
    } else if Path::new("/etc/init.d/tesserad").is_file() {
        "`service tesserad start`".to_string()
    } else {
        format!(
            "`tesserad --config {} --socket {} --log-file /var/log/tesserad.log &`",
            env.path("tessera.toml").display(),
            socket.display()
        )
    };
    assert!(warned[0].contains(&expected), "{expected} in {}", warned[0]);
}

/// The doctor's lines that start with `prefix` and contain `needle`.
fn doctor_lines<'a>(stdout: &'a str, prefix: &str, needle: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .filter(|l| l.starts_with(prefix) && l.contains(needle))
        .collect()
}

#[test]
fn doctor_reports_each_file_and_the_directories_above_it() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    let out = env.run(&["doctor"], "");
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "{stdout}");
    let db = env.path("db/tessera.db");
    for (what, path, rule) in [
        (
            "config",
            env.config.clone(),
            "not writable by group or others",
        ),
        ("key", env.path("secret.key"), "private to its owner"),
        ("store", db.clone(), "not writable by group or others"),
        (
            "store -wal",
            PathBuf::from(format!("{}-wal", db.display())),
            "not writable by group or others",
        ),
        (
            "store -shm",
            PathBuf::from(format!("{}-shm", db.display())),
            "not writable by group or others",
        ),
    ] {
        let file = format!("ok    {what} {}: regular file, owner uid ", path.display());
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&file) && l.contains(rule)),
            "{file}: {stdout}"
        );
    }
    for (what, path) in [
        ("config", env.config.clone()),
        ("key", env.path("secret.key")),
        ("store", db.clone()),
    ] {
        let dirs = format!(
            "ok    directories above {what} {}: owned by root or uid ",
            path.display()
        );
        assert!(
            stdout.lines().any(|l| l.starts_with(&dirs)),
            "{dirs}: {stdout}"
        );
    }

    // A -wal others can write, a -shm that is a link, a key that is a link, a store directory
    // others can write: one FAIL line each, naming the file.
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let shm = PathBuf::from(format!("{}-shm", db.display()));
    std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::rename(&shm, env.path("shm.real")).unwrap();
    std::os::unix::fs::symlink(env.path("shm.real"), &shm).unwrap();
    std::fs::rename(env.path("secret.key"), env.path("key.real")).unwrap();
    std::os::unix::fs::symlink(env.path("key.real"), env.path("secret.key")).unwrap();
    std::fs::set_permissions(env.path("db"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = env.run(&["doctor"], "");
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 1, "{stdout}");
    let fails = |needle: &str| doctor_lines(&stdout, "FAIL  ", needle).len();
    assert_eq!(
        fails(&format!(
            "{} is writable by group or others (mode 666)",
            wal.display()
        )),
        1,
        "{stdout}"
    );
    assert_eq!(
        fails(&format!("{} is a symbolic link", shm.display())),
        1,
        "{stdout}"
    );
    assert_eq!(
        fails(&format!(
            "{} is a symbolic link",
            env.path("secret.key").display()
        )),
        1,
        "{stdout}"
    );
    assert_eq!(
        fails(&format!(
            "directory {} (above {}) is writable by group or others (mode 777)",
            env.path("db").display(),
            db.display()
        )),
        1,
        "{stdout}"
    );
    assert!(
        !stdout.contains("opens, schema up to date"),
        "the store is not opened past a failed check: {stdout}"
    );
    assert!(
        stdout.contains(&format!("ok    config {}: parsed", env.config.display())),
        "{stdout}"
    );
}

#[test]
fn check_without_an_answer_fails_in_one_error_line() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    let out = env.run(&["check", "alice"], "");
    assert_eq!(code(&out), 1);
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("tessera: ")).collect();
    assert_eq!(
        errors,
        ["tessera: conversation: no answer: end of input"],
        "{err}"
    );
}

/// `tessera check` driven line by line: answers each prompt (one line on stderr, as on a pipe)
/// with what `answer` makes of it; returns (exit code, stdout, stderr).
fn check_interactive(
    env: &Env,
    user: &str,
    mut answer: impl FnMut(&str) -> Option<String>,
) -> (i32, String, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("--config")
        .arg(&env.config)
        .args(["check", user])
        .env_remove("TESSERA_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if let Some(a) = answer(line.trim_end()) {
            writeln!(stdin, "{a}").unwrap();
        }
        line.clear();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (code(&out), text(&out.stdout), seen)
}

#[test]
fn check_shows_the_ocra_question_and_takes_the_device_response() {
    use tessera_engine::tokens::ocra::Suite;
    let env = Env::init();
    let suite = "OCRA-1:HOTP-SHA1-6:QN08";
    env.ok(&[
        "token",
        "add",
        "--user",
        "alice",
        "--type",
        "ocra",
        "--ocra-suite",
        suite,
        "--key",
        RFC_KEY,
        "--pin",
        "1234",
        "--serial",
        "O1",
    ]);
    let s = Suite::parse(suite).unwrap();
    let (rc, stdout, stderr) = check_interactive(&env, "alice", |prompt| {
        if prompt == "PIN:" {
            return Some("1234".into());
        }
        let q = prompt.strip_prefix("Please answer the challenge ")?;
        let q = q.trim_end_matches(':');
        let r = s
            .compute(b"12345678901234567890", 0, q, b"", b"", 0)
            .unwrap();
        Some(String::from_utf8(r.to_vec()).unwrap())
    });
    assert_eq!(rc, 0, "{stderr}");
    assert_eq!(stdout.trim(), "ACCEPT (serial O1)");
}

#[test]
fn check_sends_the_email_otp_and_takes_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    let env = Env::with_config(&format!(
        "[email]\nsendmail = \"/usr/bin/tee {}\"\n",
        mail.display()
    ));
    env.ok(&["init"]);
    env.ok(&[
        "token",
        "add",
        "--user",
        "alice",
        "--type",
        "email",
        "--email",
        "alice@example.org",
        "--pin",
        "1234",
        "--serial",
        "E1",
    ]);
    let (rc, stdout, stderr) = check_interactive(&env, "alice", |prompt| match prompt {
        "PIN:" => Some("1234".into()),
        "Please enter the OTP sent to a****@example.org:" => {
            let m = std::fs::read_to_string(&mail).unwrap();
            let body = m.split("\n\n").nth(1).unwrap();
            Some(body.chars().filter(char::is_ascii_digit).take(6).collect())
        }
        _ => None,
    });
    assert_eq!(rc, 0, "{stderr}");
    assert_eq!(stdout.trim(), "ACCEPT (serial E1)");
    // A sendmail that fails: one clear line for the user, the verdict says unavailable.
    let env = Env::with_config("[email]\nsendmail = \"/bin/false\"\n");
    env.ok(&["init"]);
    env.ok(&[
        "token",
        "add",
        "--user",
        "alice",
        "--type",
        "email",
        "--email",
        "alice@example.org",
        "--pin",
        "1234",
    ]);
    let (rc, _, stderr) =
        check_interactive(&env, "alice", |p| (p == "PIN:").then(|| "1234".into()));
    assert_eq!(rc, 1);
    assert!(
        stderr.contains("The OTP could not be sent by e-mail."),
        "{stderr}"
    );
    assert!(stderr.contains("sendmail command /bin/false"), "{stderr}");
}

/// `token add` saved the token, then failed to print (QR code too large, a closed pipe), exit 1:
/// a generated key nobody saw stayed enrolled. Now nothing is saved unless it was shown.
#[test]
fn token_add_saves_nothing_it_could_not_show() {
    let env = Env::init();
    let issuer = "x".repeat(3000);
    let out = env.run(
        &[
            "token", "add", "--user", "alice", "--type", "totp", "--genkey", "--qr", "--issuer",
            &issuer,
        ],
        "",
    );
    assert_eq!(code(&out), 1, "{out:?}");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("--config")
        .arg(&env.config)
        .args([
            "token", "add", "--user", "alice", "--type", "hotp", "--genkey",
        ])
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("was not enrolled"), "{err}");
    let list = env.ok(&["token", "list", "--json"]);
    assert_eq!(list.trim(), "[]", "nothing enrolled: {list}");
}

/// `tessera doctor | head -2` and the like: a reader that closes the pipe ends a listing quietly,
/// not with "stdout: Broken pipe". (The pipe is closed before the command starts, so its very
/// first write fails.)
#[test]
fn a_closed_stdout_ends_a_listing_quietly() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    for args in [
        &["token", "list"][..],
        &["token", "list", "--json"],
        &["audit"],
        &["doctor"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("--config")
            .arg(&env.config)
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        if args[0] != "doctor" {
            assert_eq!(code(&out), 0, "{args:?}: {err}");
            assert_eq!(err, "", "{args:?}");
        }
    }
    // `token add` is no listing: a serial and key nobody saw are taken back, and said so.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("--config")
        .arg(&env.config)
        .args([
            "token", "add", "--user", "alice", "--type", "hotp", "--genkey", "--pin", "1",
        ])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("was not enrolled"),
        "{}",
        text(&out.stderr)
    );
}

/// `--qr` fits an 80x24 terminal (default parameters left out of the URI, half blocks, level L),
/// drawn for a dark terminal or with `--qr=light` for a light one; and `token add` says that a
/// code works once.
#[test]
fn the_qr_code_fits_a_terminal_and_comes_for_dark_or_light_backgrounds() {
    let env = Env::init();
    let add = |qr: &str| {
        let out = env.run(
            &[
                "token", "add", "--user", "alice", "--type", "totp", "--genkey", qr,
            ],
            "",
        );
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        // The rows it takes on an 80-column terminal: serial, URI and code within 24; the note
        // (stderr) comes first, wrapped at 80, so that it is what scrolls away.
        let rows: usize = stdout
            .lines()
            .map(|l| l.chars().count().max(1).div_ceil(80))
            .sum();
        assert!(rows <= 24, "{rows} rows:\n{stdout}");
        let note = text(&out.stderr);
        assert!(note.lines().all(|l| l.chars().count() <= 80), "{note}");
        let qr_rows: Vec<String> = stdout.lines().skip(2).map(str::to_string).collect();
        (qr_rows, note)
    };
    let (dark, note) = add("--qr");
    assert!(!dark.is_empty() && dark.len() <= 21, "{} rows", dark.len());
    assert!(dark.iter().all(|l| l.chars().count() <= 80));
    let note = note.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(note.contains("each code is accepted once"), "{note}");
    assert!(note.contains("every 30 s"), "{note}");
    // (Another key: the code may come out a version smaller or larger, never past 21 rows.)
    let (light, _) = add("--qr=light");
    assert!(
        !light.is_empty() && light.len() <= 21,
        "{} rows",
        light.len()
    );
    // The quiet zone is light: inked (full blocks) on a dark terminal, left blank on a light one.
    assert!(dark[0].chars().all(|c| c == '\u{2588}'), "{:?}", dark[0]);
    assert!(light[0].chars().all(|c| c == ' '), "{:?}", light[0]);
    let out = env.run(
        &[
            "token",
            "add",
            "--user",
            "alice",
            "--type",
            "totp",
            "--genkey",
            "--qr=sepia",
        ],
        "",
    );
    assert_one_line_error(&out, 2);
}

#[test]
fn tan_tokens_print_their_codes_once_and_count_what_is_left() {
    let env = Env::init();
    let out = env.ok(&[
        "token", "add", "--user", "alice", "--type", "tan", "--count", "10", "--pin", "12",
        "--serial", "TAN1",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 11, "the serial and 10 codes: {out}");
    let add = env.run(
        &[
            "token", "add", "--user", "carol", "--type", "tan", "--count", "3",
        ],
        "",
    );
    let note = text(&add.stderr);
    assert!(
        note.contains("3 recovery codes above are shown only now"),
        "{note}"
    );
    assert_eq!(text(&add.stdout).lines().count(), 4);
    assert_eq!(lines[0], "TAN1");
    let codes = &lines[1..];
    for (i, c) in codes.iter().enumerate() {
        assert!(c.len() == 8 && c.bytes().all(|b| b.is_ascii_digit()), "{c}");
        assert!(!codes[..i].contains(c), "distinct codes");
    }
    // Never stored in clear: not in the database file, nor shown again.
    let db = std::fs::read(env.path("db/tessera.db")).unwrap();
    for c in codes {
        assert!(
            !db.windows(8).any(|w| w == c.as_bytes()),
            "{c} in the store"
        );
    }
    let shown = env.ok(&["token", "show", "TAN1"]);
    assert!(shown.contains("10 of 10"), "{shown}");
    assert!(!codes.iter().any(|c| shown.contains(c)));
    let list = env.ok(&["token", "list"]);
    assert!(list.contains("10/10 left"), "{list}");
    assert_eq!(env.token_json("TAN1")["codes_left"], 10);

    // One code, any of them: accepted once; then 9 left.
    assert_eq!(
        env.check("alice", &format!("12{}\n", codes[6])),
        (0, "ACCEPT (serial TAN1)\n".into())
    );
    let (rc, out) = env.check("alice", &format!("12{}\n", codes[6]));
    assert_eq!(rc, 1, "a used code is refused: {out}");
    assert!(env.ok(&["token", "list"]).contains("9/10 left"));
    assert_eq!(env.token_json("TAN1")["codes_left"], 9);
    let list: serde_json::Value =
        serde_json::from_str(&env.ok(&["token", "list", "--user", "alice", "--json"])).unwrap();
    assert_eq!(list[0]["codes_left"], 9);
    assert_eq!(list[0]["info"]["count"], 10);
    assert!(env.ok(&["token", "show", "TAN1"]).contains("9 of 10"));
    let audit = env.ok(&["audit", "--json"]);
    assert!(audit.contains("recovery code already used"), "{audit}");
    assert!(!codes.iter().any(|c| audit.contains(c)), "no code audited");
    assert_eq!(env.check("alice", &format!("12{}\n", codes[0])).0, 0);
    assert_eq!(env.token_json("TAN1")["codes_left"], 8);

    // The default is 10 codes of 8 digits; --digits and --count are checked.
    let out = env.ok(&[
        "token", "add", "--user", "bob", "--type", "tan", "--digits", "6",
    ]);
    assert_eq!(out.lines().count(), 11);
    assert!(out.lines().skip(1).all(|c| c.len() == 6));
    for bad in [
        &["--count", "0"][..],
        &["--count", "64"],
        &["--digits", "5"],
        &["--digits", "11"],
        &["--genkey"],
        &["--key", "3132"],
    ] {
        let mut args = vec!["token", "add", "--user", "bob", "--type", "tan"];
        args.extend_from_slice(bad);
        assert_one_line_error(&env.run(&args, ""), 2);
    }
    let mut args = vec![
        "token", "add", "--user", "bob", "--type", "hotp", "--genkey",
    ];
    args.extend_from_slice(&["--count", "5"]);
    assert_one_line_error(&env.run(&args, ""), 2);
}

/// `tessera policy test` names the rule that decides and the criteria that matched.
#[test]
fn policy_test_names_the_rule_and_why() {
    let env = Env::with_config(
        "[[policy]]\nservice = \"sshd\"\nrhost = \"10.0.0.0/8\"\naction = \"skip\"\n\
         [[policy]]\ngroup = \"admins\"\ngrace = 60\n",
    );
    // What PAM_IGNORE then does is the stack's: tessera alone (the shipped pam.d/sshd)
    // denies; after a password module, that module decides.
    let dir = pam_dir(
        &env,
        &[
            (
                "sshd",
                "auth required pam_tessera.so\naccount required pam_unix.so\n",
            ),
            (
                "common-auth",
                "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\n\
                 auth required pam_permit.so\n",
            ),
            (
                "sudo",
                "@include common-auth\nauth required pam_tessera.so\n",
            ),
        ],
    );
    let policy_test = |service: &str, rhost: &str| {
        let out = env.run_with(
            &[
                "policy",
                "test",
                "--user",
                "alice",
                "--service",
                service,
                "--rhost",
                rhost,
            ],
            "",
            &[("TESSERA_PAM_DIR", &dir)],
        );
        assert_eq!(code(&out), 0);
        text(&out.stdout)
    };
    assert_eq!(
        policy_test("sshd", "10.2.3.4"),
        format!(
            "policy rule 1 (service sshd, rhost 10.0.0.0/8): skip: PAM_IGNORE, no second factor \
             asked\nthen: on {} nothing but tessera can let a login in, so PAM_IGNORE there is a \
             DENIED login (put the password module before tessera, or use deny)\n",
            dir.join("sshd").display()
        )
    );
    let out = env.ok(&[
        "policy",
        "test",
        "--user",
        "alice",
        "--service",
        "sshd",
        "--rhost",
        "10.2.3.4",
    ]);
    assert!(
        out.starts_with(
            "policy rule 1 (service sshd, rhost 10.0.0.0/8): skip: PAM_IGNORE, no second factor \
             asked\nthen: "
        ),
        "{out}"
    );
    let out = env.run_with(
        &["policy", "test", "--user", "bob", "--service", "sudo"],
        "",
        &[("TESSERA_PAM_DIR", &dir)],
    );
    let out = text(&out.stdout);
    assert!(
        out.starts_with("policy rule 2 (group admins): require") && out.contains("60 s"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "within the grace window: the rest of {}'s auth stack decides (pam_unix, pam_permit)",
            dir.join("sudo").display()
        )),
        "{out}"
    );
    let out = env.ok(&["policy", "test", "--user", "alice", "--service", "sudo"]);
    assert_eq!(
        out,
        "no policy rule matches: require: the second factor is asked\n"
    );
}

/// doctor warns of a `skip` rule (or a grace window) where PAM_IGNORE can let nobody in: a
/// stack that loads pam_tessera and nothing else that can grant a login.
#[test]
fn doctor_warns_of_a_skip_rule_on_a_stack_where_it_denies() {
    let env = Env::with_config(
        "[[policy]]\nservice = \"sshd\"\nrhost = \"10.0.0.0/8\"\naction = \"skip\"\n\
         [[policy]]\nservice = \"sudo\"\ngrace = 60\n",
    );
    env.ok(&["init"]);
    let dir = pam_dir(
        &env,
        &[
            ("sshd", "auth required pam_tessera.so\n"),
            (
                "sudo",
                "auth required pam_unix.so\nauth required pam_tessera.so\n",
            ),
        ],
    );
    let out = env.run_with(&["doctor"], "", &[("TESSERA_PAM_DIR", &dir)]);
    let stdout = text(&out.stdout);
    let warned: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("PAM_IGNORE"))
        .collect();
    assert_eq!(warned.len(), 1, "{stdout}");
    assert!(
        warned[0].starts_with("warn")
            && warned[0].contains("policy rule 1 skips the second factor")
            && warned[0].contains(&dir.join("sshd").display().to_string())
            && warned[0].contains("those logins are denied"),
        "{stdout}"
    );
}

/// A directory of PAM service files for doctor (`TESSERA_PAM_DIR`), from (name, text) pairs.
fn pam_dir(env: &Env, files: &[(&str, &str)]) -> PathBuf {
    let dir = env.path("pam.d");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

#[test]
fn doctor_reports_every_pam_line_that_names_the_module() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    let module = env.path("security/pam_tessera.so");
    std::fs::create_dir_all(module.parent().unwrap()).unwrap();
    std::fs::write(&module, "").unwrap();
    let copied = format!(
        "#%PAM-1.0\n# auth required pam_tessera.so (a comment)\n@include common-auth\n\
         auth [success=1 default=ignore] {} debug # mine\n",
        module.display()
    );
    let dir = pam_dir(
        &env,
        &[
            ("common-auth", "auth\trequired\tpam_unix.so\n"),
            ("commented", "#auth required pam_tessera.so\n"),
            ("copied", &copied),
            (
                "gone",
                "auth required pam_unix.so\n\
                 auth  required  /nonexistent/security/pam_tessera.so  nullok\n",
            ),
            (
                "maybe",
                "-auth optional /nonexistent/security/pam_tessera.so\n",
            ),
        ],
    );
    let out = env.run_with(&["doctor"], "", &[("TESSERA_PAM_DIR", &dir)]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 1, "the missing module fails: {stdout}");
    let line = |f: &str, n: usize| format!("{}:{n}: ", dir.join(f).display());
    assert_eq!(
        doctor_lines(&stdout, "ok    ", &line("copied", 4)),
        [format!(
            "ok    {}auth [success=1 default=ignore] {} debug: module {}",
            line("copied", 4),
            module.display(),
            module.display()
        )],
        "{stdout}"
    );
    assert_eq!(
        doctor_lines(&stdout, "FAIL  ", &line("gone", 2)),
        [format!(
            "FAIL  {}auth required /nonexistent/security/pam_tessera.so nullok: module \
             /nonexistent/security/pam_tessera.so does not exist: every login through this \
             service fails; remove the line or reinstall libpam-tessera",
            line("gone", 2)
        )],
        "{stdout}"
    );
    assert_eq!(
        doctor_lines(&stdout, "warn  ", &line("maybe", 1)).len(),
        1,
        "a '-' line is skipped by libpam when the module is missing: {stdout}"
    );
    assert!(
        !stdout.contains(&dir.join("commented").display().to_string())
            && !stdout.contains(&dir.join("common-auth").display().to_string()),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "ok    used by {}: copied, gone, maybe\n",
            dir.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok    tessera init done: the key and the store exist"),
        "{stdout}"
    );
    assert_eq!(doctor_lines(&stdout, "FAIL  ", "").len(), 1, "{stdout}");
}

#[test]
fn doctor_fails_when_a_pam_file_names_the_module_before_init() {
    let env = Env::new();
    let key = env.path("secret.key");
    let db = env.path("db/tessera.db");
    // No service names the module yet: not done is a warning (the key and store lines fail).
    let empty = pam_dir(&env, &[("other", "auth required pam_unix.so\n")]);
    let out = env.run_with(&["doctor"], "", &[("TESSERA_PAM_DIR", &empty)]);
    let stdout = text(&out.stdout);
    assert_eq!(
        doctor_lines(&stdout, "warn  ", "tessera init not done"),
        [format!(
            "warn  tessera init not done (no {}, no {}): run `tessera init` before any PAM \
             service uses pam_tessera.so",
            key.display(),
            db.display()
        )],
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("warn  no service in {} uses", empty.display())),
        "{stdout}"
    );
    // A service names it: every login through it would fail. (The module is given by its path,
    // so that the line does not fail for a module not installed on this host.)
    let module = env.path("pam_tessera.so");
    std::fs::write(&module, "").unwrap();
    let sshd = format!("auth required {}\n", module.display());
    let dir = pam_dir(&env, &[("sshd", &sshd)]);
    let out = env.run_with(&["doctor"], "", &[("TESSERA_PAM_DIR", &dir)]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 1, "{stdout}");
    assert_eq!(
        doctor_lines(&stdout, "FAIL  ", "tessera init not done"),
        [format!(
            "FAIL  tessera init not done (no {}, no {}) but {} name pam_tessera.so: every login \
             through them fails; run `tessera init`",
            key.display(),
            db.display(),
            dir.join("sshd").display()
        )],
        "{stdout}"
    );
    // After init it is done.
    env.ok(&["init"]);
    let out = env.run_with(&["doctor"], "", &[("TESSERA_PAM_DIR", &dir)]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("ok    tessera init done: the key and the store exist"),
        "{stdout}"
    );
    assert!(doctor_lines(&stdout, "FAIL  ", "").is_empty(), "{stdout}");
}

#[test]
fn doctor_warns_of_tokens_without_a_pin_where_tessera_is_the_only_factor() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    env.add_rfc_hotp("H2");
    env.ok(&["token", "set-pin", "H2", "--no-pin"]);
    let module = env.path("pam_tessera.so");
    std::fs::write(&module, "").unwrap();
    // A config of its own with otppin = "system", for a line that has tessera alone.
    let system = env.path("otp-only.toml");
    std::fs::write(&system, "[auth]\notppin = \"system\"\n").unwrap();
    std::fs::set_permissions(&system, std::fs::Permissions::from_mode(0o644)).unwrap();
    let behind_unix = format!("@include common-auth\nauth required {}\n", module.display());
    let password_after = format!(
        "auth required {}\nauth required pam_unix.so\n",
        module.display()
    );
    let own_config = format!(
        "auth required {} config={}\n",
        module.display(),
        system.display()
    );
    let dir = pam_dir(
        &env,
        &[
            (
                "common-auth",
                "auth [success=1 default=ignore] pam_unix.so nullok\n\
                 auth requisite pam_deny.so\nauth required pam_permit.so\n",
            ),
            ("sudo", &behind_unix),
            ("otp-only", &own_config),
            ("password-after", &password_after),
        ],
    );
    let warnings = |stdout: &str| doctor_lines(stdout, "warn  ", "without a PIN").join("\n");
    // pam_unix in front or behind, or otppin = "system": the PIN-less token is one factor of
    // two.
    let out = env.run_with(&["doctor"], "", &[("TESSERA_PAM_DIR", &dir)]);
    let stdout = text(&out.stdout);
    assert_eq!(warnings(&stdout), "", "{stdout}");
    // sshd as shipped: tessera alone (the account lines do not count).
    let sshd = format!(
        "#%PAM-1.0\nauth required {}\naccount required pam_unix.so\n",
        module.display()
    );
    // A sufficient tessera line ends the stack before the password is asked.
    let sufficient = format!(
        "auth sufficient {}\nauth required pam_unix.so\n",
        module.display()
    );
    pam_dir(&env, &[("sshd", &sshd), ("quick", &sufficient)]);
    let out = env.run_with(&["doctor"], "", &[("TESSERA_PAM_DIR", &dir)]);
    let stdout = text(&out.stdout);
    assert_eq!(
        warnings(&stdout),
        format!(
            "warn  1 token(s) without a PIN (alice/H2): in {}, {}, pam_tessera.so is the only \
             auth factor and otppin = \"token\", so the code alone logs in; give each a PIN \
             with `tessera token set-pin SERIAL`, or keep pam_unix in front of pam_tessera with \
             otppin = \"system\"",
            dir.join("quick").display(),
            dir.join("sshd").display()
        ),
        "{stdout}"
    );
    // Every token has a PIN: nothing to say.
    env.ok(&["token", "set-pin", "H2", "--pin", "2468"]);
    let out = env.run_with(&["doctor"], "", &[("TESSERA_PAM_DIR", &dir)]);
    let stdout = text(&out.stdout);
    assert_eq!(warnings(&stdout), "", "{stdout}");
    assert_eq!(code(&out), 0, "{stdout}");
}

/// `otppin = "system"` takes the password as checked by an earlier module: where no password
/// module comes before pam_tessera, the code alone logs in, and doctor says so.
#[test]
fn doctor_warns_of_otppin_system_without_a_password_module_in_front() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    let module = env.path("pam_tessera.so");
    std::fs::write(&module, "").unwrap();
    let system = env.path("password-otp.toml");
    std::fs::write(&system, "[auth]\notppin = \"system\"\n").unwrap();
    std::fs::set_permissions(&system, std::fs::Permissions::from_mode(0o644)).unwrap();
    let line = format!("{} config={}", module.display(), system.display());
    // The shipped password+OTP stack: pam_unix, then tessera.
    let shipped = include_str!("../../../pam.d/sshd-password-otp").replace("pam_tessera.so", &line);
    assert!(shipped.contains(&line));
    let dir = pam_dir(
        &env,
        &[
            (
                "common-auth",
                "auth [success=1 default=ignore] pam_unix.so nullok\n\
                 auth requisite pam_deny.so\nauth required pam_permit.so\n",
            ),
            ("sshd-password-otp", &shipped),
            (
                "behind-common-auth",
                &format!("@include common-auth\nauth required {line}\n"),
            ),
            // The main config has otppin = "token": the shipped sshd is not concerned.
            ("sshd", &format!("auth required {}\n", module.display())),
        ],
    );
    let warnings = |stdout: &str| doctor_lines(stdout, "warn  ", "otppin = \"system\"").join("\n");
    let out = env.run_with(&["doctor"], "", &[("TESSERA_PAM_DIR", &dir)]);
    let stdout = text(&out.stdout);
    assert_eq!(warnings(&stdout), "", "{stdout}");
    // tessera alone, and a password module only behind it: nothing checked a password first.
    pam_dir(
        &env,
        &[
            ("otp-only", &format!("auth required {line}\n")),
            (
                "password-after",
                &format!("auth required {line}\nauth required pam_unix.so\n"),
            ),
        ],
    );
    let out = env.run_with(&["doctor"], "", &[("TESSERA_PAM_DIR", &dir)]);
    let stdout = text(&out.stdout);
    let warned = |name: &str| {
        format!(
            "warn  {}: pam_tessera.so runs with otppin = \"system\" but no password module \
             comes before it, so the code alone logs in; put `auth requisite pam_unix.so` in \
             front (as pam.d/sshd-password-otp does), or give that line a config with \
             otppin = \"token\"",
            dir.join(name).display()
        )
    };
    assert_eq!(
        warnings(&stdout),
        format!("{}\n{}", warned("otp-only"), warned("password-after")),
        "{stdout}"
    );
}

/// `tessera config check`: whether the config loads as tesserad would load it on a reload
/// (exit 0), or why not in one line (exit 1) — to run before `systemctl reload tesserad`.
#[test]
fn config_check_says_whether_the_config_loads() {
    let env = Env::new();
    let said = env.ok(&["config", "check"]);
    assert!(said.contains("the config loads"), "{said}");
    let typo = Env::with_config("[auth]\nmax_fial = 3\n");
    let out = typo.run(&["config", "check"], "");
    assert_eq!(code(&out), 1);
    let err = text(&out.stderr);
    assert!(
        err.contains("max_fial") && err.trim().lines().count() == 1,
        "{err}"
    );
}

/// `token list --type registration` lists the codes alone (who has enrolled and who hasn't),
/// and their `--json` carries no OTP algorithm, period or drift; a TOTP token's COUNTER column
/// shows when its last code was used (UTC), not a step number.
#[test]
fn token_list_by_type_and_what_each_type_shows() {
    use tessera_engine::tokens::{hotp_code, Algorithm};
    let env = Env::init();
    env.ok(&["token", "add", "--user", "alice", "--type", "registration"]);
    env.ok(&[
        "token", "add", "--user", "bob", "--type", "totp", "--key", RFC_KEY, "--serial", "T1",
    ]);
    let list = env.ok(&["token", "list", "--type", "registration"]);
    assert!(list.contains("alice") && !list.contains("bob"), "{list}");
    assert!(list.contains("unused, expires"), "{list}");
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["token", "list", "--type", "registration", "--json"]))
            .unwrap();
    let reg = &json.as_array().unwrap()[0];
    assert_eq!(reg["type"], "registration");
    for k in ["algorithm", "period", "drift"] {
        assert!(reg.get(k).is_none(), "{k} in {reg}");
    }
    let list = env.ok(&["token", "list", "--type", "totp"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("T1 ") && l.contains(" - ")),
        "{list}"
    );
    // A code of the current step, through `tessera check`.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = String::from_utf8(
        hotp_code(Algorithm::Sha1, b"12345678901234567890", now / 30, 6).to_vec(),
    )
    .unwrap();
    let (rc, out) = env.check("bob", &format!("{code}\n"));
    assert_eq!(rc, 0, "{out}");
    let list = env.ok(&["token", "list", "--type", "totp"]);
    let minute = |t: u64| {
        let out = std::process::Command::new("date")
            .args(["-u", "-d", &format!("@{t}"), "+%Y-%m-%d %H:%M"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let step_start = now / 30 * 30;
    assert!(
        list.contains(&format!("used {}", minute(step_start))),
        "{list}"
    );
}
