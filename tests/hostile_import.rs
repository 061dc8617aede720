//! A hostile user against `tessera import`, which root runs over files that users control
//! (`sudo tessera import --format google-authenticator /home/*/.google_authenticator`): a link
//! to a root file with the user's content, a procfs file, a FIFO, a hard link to another user's
//! file, a file in someone else's directory. Each is refused in one line that names the file,
//! and nothing is imported. The files are real, chown'd to the test accounts of tests/nss
//! (alice 10001, bob 10002, carol 10003): these tests need root, and are skipped without it.

mod support;

use std::os::unix::fs::{chown, lchown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::*;
use tessera_engine::tokens::TokenType;

const ALICE: u32 = 10001;
const BOB: u32 = 10002;
const CAROL: u32 = 10003;

/// A google-authenticator file: a TOTP key and two scratch codes (two tokens).
const GA: &str = "JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n11223344\n55667788\n";

fn root() -> bool {
    if tessera_engine::os::sys::euid() == 0 {
        return true;
    }
    eprintln!("skipped: chown'd files of other users need root");
    false
}

/// `dir/home/NAME`, owned by `uid`, mode 0700: a user's home directory.
fn home(fx: &Fixture, name: &str, uid: u32) -> PathBuf {
    let h = fx.dir.path().join("home").join(name);
    std::fs::create_dir_all(&h).unwrap();
    chown(&h, Some(uid), Some(uid)).unwrap();
    std::fs::set_permissions(&h, std::fs::Permissions::from_mode(0o700)).unwrap();
    h
}

/// A file with `text`, owned by `uid`, mode 0600.
fn put(path: &Path, text: &str, uid: u32) {
    std::fs::write(path, text).unwrap();
    chown(path, Some(uid), Some(uid)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// `tessera import ARGS`, killed after 10 s if it has not ended; with how long it ran.
fn run_import(fx: &Fixture, args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = Command::new(bin_path("tessera"))
        .arg("--config")
        .arg(&fx.config)
        .arg("import")
        .args(args)
        .env_remove("TESSERA_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    (out, start.elapsed())
}

fn tokens(fx: &Fixture) -> usize {
    fx.store().list_tokens(None).unwrap().len()
}

/// A refused import: within 5 s, exit 1, one line on stderr (returned), nothing imported.
fn refused(fx: &Fixture, args: &[&str]) -> String {
    let (out, took) = run_import(fx, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(took < Duration::from_secs(5), "{args:?} took {took:?}");
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(tokens(fx), 0, "{args:?}: nothing may be imported");
    stderr
}

fn ga(file: &Path) -> Vec<&str> {
    vec!["--format", "google-authenticator", file.to_str().unwrap()]
}

#[test]
fn a_link_to_a_root_file_is_refused() {
    if !root() {
        return;
    }
    let fx = Fixture::new("");
    // Root's file, with content alice chose (as a setuid program's output or environment is).
    let root_dir = fx.dir.path().join("root");
    std::fs::create_dir(&root_dir).unwrap();
    let target = root_dir.join("file");
    put(&target, GA, 0);
    let link = alices_link_to(&fx, &target);
    assert_eq!(refused(&fx, &ga(&link)), is_a_link(&link));
}

/// `~alice/.google_authenticator` made a link to `target`, owned by alice as she would make it.
fn alices_link_to(fx: &Fixture, target: &Path) -> PathBuf {
    let link = home(fx, "alice", ALICE).join(".google_authenticator");
    symlink(target, &link).unwrap();
    lchown(&link, Some(ALICE), Some(ALICE)).unwrap();
    link
}

/// The error line for a link named as a file.
fn is_a_link(link: &Path) -> String {
    format!(
        "tessera: {} is a symbolic link; name the file itself\n",
        link.display()
    )
}

#[test]
fn procfs_is_refused_through_a_link_and_by_name() {
    if !root() {
        return;
    }
    let fx = Fixture::new("");
    let link = alices_link_to(&fx, Path::new("/proc/self/environ"));
    assert_eq!(refused(&fx, &ga(&link)), is_a_link(&link));
    // Named directly: a process's environment is root's file (here: this test's) with
    // content its user chose.
    let environ = PathBuf::from(format!("/proc/{}/environ", std::process::id()));
    for args in [ga(&environ), {
        let mut a = ga(&environ);
        a.extend(["--user", "alice"]);
        a
    }] {
        assert_eq!(
            refused(&fx, &args),
            format!(
                "tessera: {} is on procfs, not a real file system\n",
                environ.display()
            )
        );
    }
}

#[test]
fn a_fifo_is_refused_at_once() {
    if !root() {
        return;
    }
    let fx = Fixture::new("");
    let fifo = home(&fx, "alice", ALICE).join(".google_authenticator");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    chown(&fifo, Some(ALICE), Some(ALICE)).unwrap();
    // No writer ever opens it: an open that blocks would hang the import (refused() allows 5 s).
    assert_eq!(
        refused(&fx, &ga(&fifo)),
        format!(
            "tessera: {} is a FIFO, not a regular file\n",
            fifo.display()
        )
    );
}

#[test]
fn a_hard_link_to_another_users_file_is_refused_and_nothing_is_imported() {
    if !root() {
        return;
    }
    let fx = Fixture::new("");
    let bobs = home(&fx, "bob", BOB).join(".google_authenticator");
    put(&bobs, GA, BOB);
    let alices = home(&fx, "alice", ALICE).join(".google_authenticator");
    std::fs::hard_link(&bobs, &alices).unwrap();
    // carol's own file is fine, but the import is all or nothing.
    let carols = home(&fx, "carol", CAROL).join(".google_authenticator");
    put(&carols, GA, CAROL);
    let err = refused(
        &fx,
        &[
            "--format",
            "google-authenticator",
            carols.to_str().unwrap(),
            alices.to_str().unwrap(),
        ],
    );
    assert_eq!(
        err,
        format!(
            "tessera: {} has 2 links: one of them may be another user's; copy the file instead \
             of linking it\n",
            alices.display()
        )
    );
}

#[test]
fn a_root_or_system_file_needs_user() {
    if !root() {
        return;
    }
    let fx = Fixture::new("");
    let root_dir = fx.dir.path().join("root");
    std::fs::create_dir(&root_dir).unwrap();
    let file = root_dir.join("google_authenticator");
    put(&file, GA, 0);
    assert_eq!(
        refused(&fx, &ga(&file)),
        format!(
            "tessera: {} belongs to uid 0 (root): pass --user to say whose it is\n",
            file.display()
        )
    );
    // A system account's file in its own directory (uid 999: no account in tests/nss).
    let sys_dir = home(&fx, "daemon", 999);
    let sys_file = sys_dir.join("google_authenticator");
    put(&sys_file, GA, 999);
    let err = refused(&fx, &ga(&sys_file));
    assert!(
        err.starts_with(&format!(
            "tessera: {} belongs to uid 999, a system account",
            sys_file.display()
        )) && err.ends_with(": pass --user to say whose it is\n"),
        "{err}"
    );
    // The admin says whose it is.
    let mut args = ga(&file);
    args.extend(["--user", "alice"]);
    let (out, _) = run_import(&fx, &args);
    assert!(out.status.success(), "{out:?}");
    let users: Vec<String> = fx
        .store()
        .list_tokens(None)
        .unwrap()
        .into_iter()
        .map(|t| t.user)
        .collect();
    assert_eq!(users, ["alice", "alice"]);
}

#[test]
fn a_file_of_one_user_in_anothers_directory_is_refused() {
    if !root() {
        return;
    }
    let fx = Fixture::new("");
    let bobs_home = home(&fx, "bob", BOB);
    let file = bobs_home.join(".google_authenticator");
    put(&file, GA, ALICE);
    assert_eq!(
        refused(&fx, &ga(&file)),
        format!(
            "tessera: {} belongs to uid 10001 (alice) but its directory {} to uid 10002 (bob)\n",
            file.display(),
            bobs_home.display()
        )
    );
}

#[test]
fn a_password_file_is_read_by_the_same_rules() {
    if !root() {
        return;
    }
    let fx = Fixture::new("");
    let password = fx.dir.path().join("password");
    put(&password, "qwerty\n", 0);
    let link = fx.dir.path().join("password-link");
    symlink(&password, &link).unwrap();
    let with_link = pskc_figure7_args(&link);
    let err = refused(
        &fx,
        &with_link.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(err, is_a_link(&link));
    let direct = pskc_figure7_args(&password);
    let (out, _) = run_import(&fx, &direct.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{out:?}");
    assert_eq!(tokens(&fx), 1);
}

#[test]
fn a_users_own_file_imports_for_them_and_names_the_tokens_without_a_pin() {
    if !root() {
        return;
    }
    let fx = Fixture::new("");
    let file = home(&fx, "alice", ALICE).join(".google_authenticator");
    put(&file, GA, ALICE);
    // --json: each token without a PIN carries the warning.
    let mut args = ga(&file);
    args.extend(["--dry-run", "--json"]);
    let (out, _) = run_import(&fx, &args);
    assert!(out.status.success(), "{out:?}");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for row in rows.as_array().unwrap() {
        assert_eq!(row["user"], "alice");
        assert_eq!(row["pin"], false);
        let w = row["warnings"][0].as_str().unwrap();
        assert!(
            w.starts_with("no PIN: where tessera is the only factor of a PAM stack")
                && w.contains("tessera token set-pin SERIAL"),
            "{row}"
        );
    }
    assert_eq!(tokens(&fx), 0);

    let (out, _) = run_import(&fx, &ga(&file));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    let imported = fx.store().list_tokens(None).unwrap();
    assert_eq!(imported.len(), 2);
    assert!(imported
        .iter()
        .all(|t| t.user == "alice" && t.pin_hash.is_none()));
    let serial = |kind: TokenType| {
        imported
            .iter()
            .find(|t| t.kind == kind)
            .map(|t| t.serial.clone())
            .unwrap()
    };
    // In the order of the table: the TOTP, then the scratch codes.
    let warning = format!(
        "warning: 2 token(s) without a PIN (alice/{}, alice/{}): where tessera is the only \
         factor of a PAM stack (otppin = \"token\"), the code alone logs in; give each a PIN \
         with `tessera token set-pin SERIAL`, or keep pam_unix in front of pam_tessera with \
         otppin = \"system\"",
        serial(TokenType::Totp),
        serial(TokenType::Tan)
    );
    assert!(
        stdout.lines().any(|l| l == warning),
        "{warning}\nnot in:\n{stdout}"
    );
    // Which is true on the fixture's stack (tessera alone): the scratch code alone logs in.
    assert_eq!(
        fx.login("alice").answer("PIN", "55667788").run().code,
        PAM_SUCCESS
    );
}
