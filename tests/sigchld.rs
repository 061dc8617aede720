//! A parent that ignores SIGCHLD (some daemons do, and SIG_IGN survives exec) does not break
//! the e-mail of an e-mail token sent through a sendmail command: the tessera command and
//! tesserad undo the ignored disposition when they start, so the kernel does not reap the
//! command before its exit status is read (a delivery that worked would look failed).

mod support;

use std::process::Command;
use support::*;
use tessera_engine::tokens::TokenType;

/// Runs argv[1:] with SIGCHLD ignored, as such a parent leaves it.
const PY_IGNORES_SIGCHLD: &str = "\
import os, signal, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
os.execvp(sys.argv[1], sys.argv[1:])
";

#[test]
fn an_email_goes_out_when_the_parent_ignores_sigchld() {
    let out_dir = tempfile::tempdir().unwrap();
    let mail = out_dir.path().join("mail.eml");
    let fx = Fixture::new(&format!(
        "[email]\nsendmail = \"/usr/bin/tee {}\"\n",
        mail.display()
    ));
    let t = Tok::new(TokenType::Email, "E1", "alice", "1234", b"")
        .info(serde_json::json!({ "email": "alice@example.org" }));
    fx.add(&t);
    drop(fx.store());
    // The PIN opens the challenge (the mail goes out); then no OTP: end of input.
    let out = output_with_stdin(
        Command::new("/usr/bin/python3")
            .args(["-c", PY_IGNORES_SIGCHLD])
            .arg(bin_path("tessera"))
            .arg("--config")
            .arg(&fx.config)
            .args(["check", "alice"]),
        b"1234\n",
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!said.contains("could not be sent"), "{said}");
    let sent = std::fs::read_to_string(&mail).unwrap_or_default();
    assert!(sent.contains("To: alice@example.org\n"), "{said}\n{sent}");
    let row = fx
        .audit()
        .into_iter()
        .find(|e| e.serial == "E1")
        .unwrap_or_else(|| panic!("no audit row: {said}"));
    assert_eq!(row.result, "challenge", "{row:?}");
}
