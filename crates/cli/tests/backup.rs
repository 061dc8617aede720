//! `tessera backup` and `tessera restore`, through the built binary: a consistent copy while a
//! writer commits, the file's mode and ownership, and restores that never make a used OTP
//! valid again unless forced.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tessera_engine::store::{SqliteStore, Store};
use tessera_engine::tokens::{hotp_code, Algorithm};

mod common;

use common::*;

/// What these tests need beyond the shared helper.
impl Env {
    fn store(&self) -> PathBuf {
        self.path("db/tessera.db")
    }

    /// `tessera check alice` with PIN+OTP: (exit code, stdout).
    fn login(&self, counter: u64) -> (i32, String) {
        let otp = text(&hotp_code(
            Algorithm::Sha1,
            b"12345678901234567890",
            counter,
            6,
        ));
        let out = self.run(&["check", "alice"], &format!("PIN{otp}\n"));
        (code(&out), text(&out.stdout))
    }
}

fn one_line_error(o: &Output) -> String {
    assert_one_line_error(o, 1)
}

/// A backup read with SQLite alone: integrity_check, a rollback journal, and H1's counter.
fn backup_counter(p: &Path) -> u64 {
    assert_eq!(
        journal_mode(p),
        "delete",
        "a backup needs no -wal to be read"
    );
    counter_in(p)
}

fn journal_mode(p: &Path) -> String {
    let c = rusqlite::Connection::open_with_flags(p, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap()
}

/// H1's counter in a database file, after its integrity check.
fn counter_in(p: &Path) -> u64 {
    let c = rusqlite::Connection::open_with_flags(p, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    c.query_row("SELECT counter FROM tokens WHERE serial = 'H1'", [], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap() as u64
}

#[test]
fn backup_is_a_consistent_copy_while_a_writer_commits_and_holds_what_is_only_in_the_wal() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    // A writer that commits as logins do (counter moves and audit rows, through the engine's
    // own write transactions), from its own connection, the whole time.
    let writer = {
        let (stop, committed, store) = (stop.clone(), committed.clone(), env.store());
        std::thread::spawn(move || {
            let s = SqliteStore::open(&store, 5000).unwrap();
            let mut c = 0;
            while !stop.load(Ordering::SeqCst) {
                c += 1;
                s.write(|tx| tx.record_success("H1", c)).unwrap();
                committed.store(c, Ordering::SeqCst);
            }
        })
    };
    while committed.load(Ordering::SeqCst) < 20 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for i in 0..5 {
        let file = env.path(&format!("during-{i}.db"));
        let before = committed.load(Ordering::SeqCst);
        let out = env.ok(&["backup", file.to_str().unwrap()]);
        let after = committed.load(Ordering::SeqCst);
        assert!(
            out.contains("1 token(s)") && out.contains("integrity ok"),
            "{out}"
        );
        let got = backup_counter(&file);
        // `after` may miss the one commit in flight: the writer counts a commit once it has
        // returned, and the backup may already hold it.
        assert!(
            before <= got && got <= after + 1,
            "backup {i}: counter {got}, committed {before}..{after}"
        );
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();

    // The last commit only in the WAL: a copy of tessera.db alone misses it, a backup has it.
    let s = SqliteStore::open(&env.store(), 5000).unwrap();
    {
        let raw = rusqlite::Connection::open(env.store()).unwrap();
        raw.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    s.write(|tx| tx.record_success("H1", 999_999)).unwrap();
    assert!(
        std::fs::metadata(env.path("db/tessera.db-wal"))
            .unwrap()
            .len()
            > 0
    );
    std::fs::create_dir(env.path("cp")).unwrap();
    std::fs::copy(env.store(), env.path("cp/tessera.db")).unwrap();
    assert!(
        counter_in(&env.path("cp/tessera.db")) < 999_999,
        "cp is stale"
    );
    let file = env.path("last.db");
    env.ok(&["backup", file.to_str().unwrap()]);
    assert_eq!(backup_counter(&file), 999_999);
    drop(s);
}

#[test]
fn backup_is_0600_and_never_replaces_a_file() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    let file = env.path("b.db");
    env.ok(&["backup", file.to_str().unwrap()]);
    let m = std::fs::metadata(&file).unwrap();
    assert_eq!(m.mode() & 0o777, 0o600);
    assert_eq!(m.uid(), tessera_engine::os::sys::euid());
    let before = std::fs::read(&file).unwrap();
    let err = one_line_error(&env.run(&["backup", file.to_str().unwrap()], ""));
    assert!(err.contains("exists"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), before, "left as it was");
    // Nor through a link, nor into a missing directory (and nothing is left behind).
    let link = env.path("link.db");
    std::os::unix::fs::symlink(env.path("nowhere.db"), &link).unwrap();
    one_line_error(&env.run(&["backup", link.to_str().unwrap()], ""));
    assert!(!env.path("nowhere.db").exists());
    one_line_error(&env.run(&["backup", env.path("no/dir.db").to_str().unwrap()], ""));
}

#[test]
fn restore_never_makes_a_used_code_valid_again_unless_forced() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    let old = env.path("old.db");
    env.ok(&["backup", old.to_str().unwrap()]);
    // Since the backup: code 0 used, the token disabled (the scenario of issue 12).
    assert_eq!(env.login(0).0, 0);
    env.ok(&["token", "disable", "H1"]);

    let out = env.run(&["restore", old.to_str().unwrap()], "");
    let err = one_line_error(&out);
    assert!(
        err.contains("restore refused") && err.contains("H1 (live 1, backup 0)"),
        "{err}"
    );
    assert_eq!(env.token_json("H1")["active"], false, "nothing changed");
    assert_eq!(env.token_json("H1")["counter"], 1);

    // Keeping the live counters: the rest of the backup comes back (the token is enabled
    // again), the used code stays refused, the next one works.
    let out = env.ok(&["restore", "--keep-counters", old.to_str().unwrap()]);
    assert!(
        out.contains("H1: changed: enabled (live: disabled); counter kept at 1 (backup: 0)"),
        "{out}"
    );
    assert!(out.contains("counters kept: 1, moved back: 0"), "{out}");
    assert_eq!(env.token_json("H1")["active"], true);
    assert_eq!(env.login(0).0, 1, "the used code is still refused");
    assert_eq!(env.login(1).0, 0);

    // --force moves it back, and says so.
    let out = env.ok(&["restore", "--force", old.to_str().unwrap()]);
    assert!(
        out.contains("counter moved BACK from 2 to 0") && out.contains("warning: --force"),
        "{out}"
    );
    assert_eq!(env.token_json("H1")["counter"], 0);
    let audit = env.ok(&["audit", "--json"]);
    assert!(audit.contains("\"result\": \"restore\""), "{audit}");
    assert!(audit.contains("(--force)"), "{audit}");
}

#[test]
fn restore_reports_added_removed_and_changed_tokens_without_secrets() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    env.add_rfc_hotp("H2");
    let b = env.path("b.db");
    env.ok(&["backup", b.to_str().unwrap()]);
    env.ok(&["token", "remove", "H1"]);
    env.ok(&["token", "set-pin", "H2", "--pin", "OTHER"]);
    env.add_rfc_hotp("H3");
    // A failure counted since the backup stays counted (H2's PIN, a code far off).
    let wrong = text(&hotp_code(Algorithm::Sha1, b"12345678901234567890", 500, 6));
    assert_eq!(
        code(&env.run(&["check", "alice"], &format!("OTHER{wrong}\n"))),
        1
    );
    let out = env.ok(&["restore", b.to_str().unwrap()]);
    assert!(out.contains("  H1: added\n"), "{out}");
    assert!(out.contains("  H2: changed: PIN changed\n"), "{out}");
    assert!(out.contains("  H3: removed\n"), "{out}");
    assert!(
        out.contains("1 added, 1 removed, 1 changed, 0 unchanged"),
        "{out}"
    );
    assert!(!out.contains("argon2") && !out.contains(RFC_KEY), "{out}");
    let list: serde_json::Value =
        serde_json::from_str(&env.ok(&["token", "list", "--json"])).unwrap();
    let serials: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["serial"].as_str().unwrap())
        .collect();
    assert_eq!(serials, ["H1", "H2"]);
    assert_eq!(
        env.token_json("H2")["fail_count"],
        1,
        "live fail counter kept"
    );
    assert_eq!(env.login(0).0, 0, "H1 is back, with its key and PIN");
}

#[test]
fn restore_refuses_what_is_no_tessera_backup_in_one_line() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    let junk = env.path("junk");
    std::fs::write(&junk, "this is no database\n".repeat(100)).unwrap();
    std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = one_line_error(&env.run(&["restore", junk.to_str().unwrap()], ""));
    assert!(err.contains("not a tessera backup"), "{err}");
    // An SQLite database that is not tessera's.
    let other = env.path("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = one_line_error(&env.run(&["restore", other.to_str().unwrap()], ""));
    assert!(err.contains("not a tessera store or backup"), "{err}");
    // The live store itself, a missing file, a file others may write.
    one_line_error(&env.run(&["restore", env.store().to_str().unwrap()], ""));
    one_line_error(&env.run(&["restore", env.path("missing").to_str().unwrap()], ""));
    let b = env.path("b.db");
    env.ok(&["backup", b.to_str().unwrap()]);
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = one_line_error(&env.run(&["restore", b.to_str().unwrap()], ""));
    assert!(err.contains("writable by group or others"), "{err}");
    assert_eq!(env.token_json("H1")["counter"], 0);
}

#[test]
fn restore_refuses_a_backup_sealed_with_another_key() {
    let env = Env::init();
    env.add_rfc_hotp("H1");
    let other = Env::init();
    other.add_rfc_hotp("H9");
    let b = other.path("b.db");
    other.ok(&["backup", b.to_str().unwrap()]);
    let err = one_line_error(&env.run(&["restore", "--force", b.to_str().unwrap()], ""));
    assert!(
        err.contains("token H9 does not open with the store's key"),
        "{err}"
    );
    assert_eq!(env.token_json("H1")["serial"], "H1", "nothing changed");
}

#[test]
fn run_by_root_the_backup_is_roots_and_the_store_stays_its_owners() {
    use std::os::unix::fs::chown;
    if tessera_engine::os::sys::euid() != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    const OWNER: u32 = 4242;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let db_dir = dir.path().join("db");
    std::fs::create_dir(&db_dir).unwrap();
    std::fs::set_permissions(&db_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    chown(&db_dir, Some(OWNER), Some(OWNER)).unwrap();
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}\"\nkey_file = \"{}\"\n{}",
            db_dir.join("tessera.db").display(),
            dir.path().join("secret.key").display(),
            common::short_pins_allowed("")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env = Env { dir, config };
    env.ok(&["init"]);
    env.add_rfc_hotp("H1");
    // A directory only root may enter: the store's owner could not write there.
    let vault = env.path("vault");
    std::fs::create_dir(&vault).unwrap();
    std::fs::set_permissions(&vault, std::fs::Permissions::from_mode(0o700)).unwrap();
    let b = vault.join("b.db");
    env.ok(&["backup", b.to_str().unwrap()]);
    let m = std::fs::metadata(&b).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (0, 0o600));
    let names: Vec<String> = std::fs::read_dir(&vault)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["b.db"], "no journal or WAL left beside it");
    assert_eq!(env.login(0).0, 0);
    one_line_error(&env.run(&["restore", b.to_str().unwrap()], ""));
    let out = env.ok(&["restore", "--keep-counters", b.to_str().unwrap()]);
    assert!(out.contains("counter kept at 1"), "{out}");
    assert_eq!(env.login(0).0, 1);
    // A backup the store's owner made (sudo -u _tessera) is taken too; another user's is not.
    chown(&b, Some(OWNER), Some(OWNER)).unwrap();
    let out = env.ok(&["restore", "--keep-counters", b.to_str().unwrap()]);
    assert!(out.contains("counters kept: 1"), "{out}");
    chown(&b, Some(4343), Some(4343)).unwrap();
    let err = one_line_error(&env.run(&["restore", b.to_str().unwrap()], ""));
    assert!(err.contains("owned by uid 4343"), "{err}");
    for e in std::fs::read_dir(&db_dir).unwrap() {
        let m = e.unwrap().metadata().unwrap();
        assert_eq!((m.uid(), m.mode() & 0o777), (OWNER, 0o600));
    }
}
