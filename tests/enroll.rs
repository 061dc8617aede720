//! `tessera enroll`: users enroll a token for themselves through the running tesserad, run as
//! real unprivileged accounts (alice, bob, carol of tests/nss). The daemon knows them by the
//! connection (SO_PEERCRED); codes are computed from the printed URI by oathtool.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use support::*;
use tessera_engine::tokens::{Origin, TokenType};

/// What one run showed: the lines of the stream that carries the URI (stdout for `tessera
/// enroll`, stderr for `tessera check`), and all of the other stream.
struct Run {
    status: ExitStatus,
    lines: Vec<String>,
    other: String,
}

impl Run {
    fn uri(&self) -> Option<&str> {
        self.lines
            .iter()
            .find(|l| l.starts_with("otpauth://"))
            .map(String::as_str)
    }
}

/// Runs `tessera enroll ARGS` as `uid`: writes `first` (one answer a line) at once, then, once
/// the URI is printed, the answers `then` makes of it.
fn enroll_as(
    fx: &Fixture,
    uid: u32,
    args: &[&str],
    first: &[&str],
    then: impl FnOnce(&str) -> Vec<String>,
) -> Run {
    enroll_at(&fx.socket, uid, args, first, then)
}

/// `enroll_as` against the daemon on `socket`.
fn enroll_at(
    socket: &std::path::Path,
    uid: u32,
    args: &[&str],
    first: &[&str],
    then: impl FnOnce(&str) -> Vec<String>,
) -> Run {
    let mut cmd = Command::new(bin_path("tessera"));
    cmd.arg("enroll")
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env_clear()
        .uid(uid)
        .gid(uid);
    dialogue(cmd, false, first, then)
}

/// Runs `cmd`, writes `first` (one answer a line) at once, then, once a URI is printed (on
/// stdout, or on stderr where `tessera check` shows its messages), the answers `then` makes of
/// it.
fn dialogue(
    mut cmd: Command,
    uri_on_stderr: bool,
    first: &[&str],
    then: impl FnOnce(&str) -> Vec<String>,
) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let (out, mut err): (Box<dyn Read + Send>, Box<dyn Read + Send>) = if uri_on_stderr {
        let e = Box::new(child.stderr.take().unwrap());
        (e, Box::new(child.stdout.take().unwrap()))
    } else {
        let o = Box::new(child.stdout.take().unwrap());
        (o, Box::new(child.stderr.take().unwrap()))
    };
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    for a in first {
        let _ = writeln!(stdin, "{a}");
    }
    let mut stdout = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        let uri = line.starts_with("otpauth://").then(|| line.clone());
        stdout.push(line);
        if let Some(uri) = uri {
            for a in then(&uri) {
                let _ = writeln!(stdin, "{a}");
            }
            break;
        }
    }
    drop(stdin);
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        stdout.push(line);
    }
    let status = child.wait().unwrap();
    Run {
        status,
        lines: stdout,
        other: errors.join().unwrap(),
    }
}

/// The base32 key of an otpauth URI.
fn secret_of(uri: &str) -> String {
    uri.split("secret=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .unwrap()
        .to_string()
}

/// oathtool's code for the key: TOTP now, or HOTP at `counter`.
fn oathtool(uri: &str, counter: Option<u64>) -> String {
    let key = secret_of(uri);
    let mut cmd = Command::new("oathtool");
    cmd.arg("--base32");
    match counter {
        Some(c) => cmd.args(["--counter", &c.to_string()]),
        None => cmd.arg("--totp"),
    };
    let out = cmd.arg(&key).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn needs_root() -> bool {
    if tessera_engine::os::sys::euid() != 0 {
        eprintln!("needs root to run as alice, bob and carol: checked in CI");
        return true;
    }
    false
}

const CONFIG: &str = "[enroll]\ngroups = [\"staff\"]\ntypes = [\"totp\", \"hotp\"]\n";

#[test]
fn alice_enrolls_a_totp_token_shown_as_uri_and_qr_inside_80x24() {
    if needs_root() {
        return;
    }
    let fx = Fixture::new(CONFIG);
    let run = enroll_as(&fx, 10001, &[], &["432109", "432109"], |uri| {
        vec![oathtool(uri, None)]
    });
    assert!(run.status.success(), "{}\n{:?}", run.other, run.lines);
    let uri = run.uri().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/tessera:alice?secret="),
        "{uri}"
    );
    // The URI and the QR code, and the prompt for a code below them, inside 80x24 (the URI
    // wraps: it counts as the rows it takes); the serial before, and in the last line.
    assert!(
        run.lines[0].starts_with("New TOTP token TOTP"),
        "{:?}",
        run.lines
    );
    let shown: Vec<&String> = run
        .lines
        .iter()
        .skip_while(|l| !l.starts_with("otpauth://"))
        .take_while(|l| !l.contains(" is saved"))
        .collect();
    let rows: usize = shown
        .iter()
        .map(|l| l.chars().count().div_ceil(80).max(1))
        .sum();
    assert!(rows < 24, "{rows} rows: {:#?}", run.lines);
    assert!(
        shown[1..].iter().all(|l| l.chars().count() <= 80),
        "{:#?}",
        run.lines
    );
    let serial = run.lines[0]
        .split(' ')
        .nth(3)
        .unwrap()
        .trim_end_matches('.');
    assert!(
        run.lines.last().unwrap().contains(serial),
        "{:?}",
        run.lines
    );
    let tokens = fx.store().list_tokens(Some("alice")).unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].kind.name(), "totp");
    assert!(tokens[0].has_pin());
    assert_eq!(tokens[0].info.origin, Some(Origin::SelfService));
    // token list says how it was enrolled.
    let listed = fx.tessera(&["token", "list", "--user", "alice"], "");
    let listed = String::from_utf8(listed.stdout).unwrap();
    let header = listed.lines().next().unwrap();
    let row = listed.lines().nth(1).unwrap();
    let at = header.find("ENROLLED").unwrap();
    assert_eq!(
        row[at..].split_whitespace().next(),
        Some("self"),
        "{listed}"
    );
    let row = fx.audit().into_iter().last().unwrap();
    assert_eq!(
        (row.result.as_str(), row.service.as_str()),
        ("enroll", "tessera-enroll")
    );
    assert_eq!(row.serial, tokens[0].serial);
    assert!(!row.reason.contains(&secret_of(uri)));
}

/// `tessera enroll` through the daemon by a user whose only token is a registration code: the
/// code, typed at the PIN prompt, enrolls her token, once (before, a second enrollment began
/// right after the first was saved).
#[test]
fn tessera_enroll_with_only_a_registration_code_enrolls_once() {
    if needs_root() {
        return;
    }
    let fx = Fixture::new(CONFIG);
    let out = fx.tessera(
        &["token", "add", "--user", "alice", "--type", "registration"],
        "",
    );
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    let (reg, code) = (
        printed.lines().next().unwrap().to_string(),
        printed.lines().nth(1).unwrap().to_string(),
    );
    let run = enroll_as(&fx, 10001, &[], &[&code, "432109", "432109"], |uri| {
        vec![oathtool(uri, None)]
    });
    assert!(run.status.success(), "{}\n{:?}", run.other, run.lines);
    let all = format!("{}\n{}", run.lines.join("\n"), run.other);
    assert!(
        all.contains("You have a registration code: type it at the PIN prompt"),
        "{all}"
    );
    assert_eq!(
        all.matches("otpauth://").count(),
        1,
        "one token shown: {all}"
    );
    let tokens = fx.store().list_tokens(Some("alice")).unwrap();
    assert_eq!(tokens.len(), 2, "the code and one token: {tokens:?}");
    let made = tokens.iter().find(|t| t.serial != reg).unwrap();
    assert_eq!(made.info.registration.as_deref(), Some(reg.as_str()));
    assert_eq!(made.info.origin, Some(Origin::Registration));
    let spent = tokens.iter().find(|t| t.serial == reg).unwrap();
    assert_eq!(spent.counter, 1, "used up");
}

#[test]
fn an_enrolled_hotp_token_opens_a_pam_login_and_a_second_enroll_needs_it() {
    if needs_root() {
        return;
    }
    let fx = Fixture::new(CONFIG);
    let run = enroll_as(
        &fx,
        10001,
        &["--type", "hotp"],
        &["432109", "432109"],
        |uri| vec![oathtool(uri, Some(0))],
    );
    assert!(run.status.success(), "{}", run.other);
    let uri = run.uri().unwrap().to_string();
    // The new token opens a login through libpam (the confirmation used code 0).
    let out = fx
        .login("alice")
        .answer("PIN", &format!("432109{}", oathtool(&uri, Some(1))))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    // Another enrollment without passing it: refused, no new key shown, nothing saved.
    let run = enroll_as(&fx, 10001, &[], &["432109000000"], |_| Vec::new());
    assert_eq!(run.status.code(), Some(1), "{}", run.other);
    assert!(run.uri().is_none(), "{:?}", run.lines);
    assert!(run.other.contains("not passed"), "{}", run.other);
    assert_eq!(fx.store().list_tokens(Some("alice")).unwrap().len(), 1);
    // Passing it (PIN and its next code): a second token.
    let pass = format!("432109{}", oathtool(&uri, Some(2)));
    let run = enroll_as(
        &fx,
        10001,
        &["--type", "hotp"],
        &[&pass, "111111", "111111"],
        |uri| vec![oathtool(uri, Some(0))],
    );
    assert!(run.status.success(), "{}", run.other);
    assert_eq!(fx.store().list_tokens(Some("alice")).unwrap().len(), 2);
}

#[test]
fn bob_outside_the_groups_is_refused_in_one_line() {
    if needs_root() {
        return;
    }
    let fx = Fixture::new(CONFIG);
    let run = enroll_as(&fx, 10002, &[], &[], |_| Vec::new());
    assert_eq!(run.status.code(), Some(1));
    assert!(run.lines.is_empty(), "{:?}", run.lines);
    assert_eq!(
        run.other.trim(),
        "tessera: you may not enroll a token yourself here: ask your administrator"
    );
    assert!(fx.store().list_tokens(Some("bob")).unwrap().is_empty());
    let row = fx.audit().into_iter().last().unwrap();
    assert_eq!(row.user, "bob");
    assert_eq!(row.result.as_str(), "reject");

    // No PAM module logs this dialogue: the daemon sends the syslog line itself (authpriv).
    let log = fx.dir.path().join("syslog.sock");
    let syslog = std::os::unix::net::UnixDatagram::bind(&log).unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let socket = fx.dir.path().join("logging.sock");
    let mut cmd = Command::new(bin_path("tesserad"));
    cmd.arg("--config")
        .arg(&fx.config)
        .arg("--socket")
        .arg(&socket)
        .env("TESSERA_SYSLOG_SOCKET", &log);
    let daemon = Daemon::spawn(cmd, &socket);
    daemon.wait_for(&["listening on"]);
    let run = enroll_at(&socket, 10002, &[], &[], |_| Vec::new());
    assert_eq!(run.status.code(), Some(1));
    let mut buf = [0u8; 2048];
    let n = syslog.recv(&mut buf).unwrap();
    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
    // <85>: facility authpriv (10), priority notice (5).
    assert!(
        line.starts_with("<85>") && line.contains("tesserad"),
        "{line}"
    );
    assert!(
        line.contains("result=reject user=\"bob\"")
            && line.contains("enrollment refused: not in [enroll] groups"),
        "{line}"
    );
    daemon.wait_for(&["tessera-enroll: result=reject"]);
}

#[test]
fn wrong_codes_or_an_end_of_input_save_nothing() {
    if needs_root() {
        return;
    }
    let fx = Fixture::new(CONFIG);
    let run = enroll_as(&fx, 10003, &[], &["432109", "432109"], |_| {
        vec!["000000".into(), "111111".into(), "222222".into()]
    });
    assert_eq!(run.status.code(), Some(1), "{}", run.other);
    assert!(run.other.contains("3 wrong codes"), "{}", run.other);
    // Input ends after the PIN (Ctrl-D): given up.
    let run = enroll_as(&fx, 10003, &[], &["432109", "432109"], |_| Vec::new());
    assert_ne!(run.status.code(), Some(0), "{}", run.other);
    assert!(fx.store().list_tokens(Some("carol")).unwrap().is_empty());
    let rows: Vec<_> = fx
        .audit()
        .into_iter()
        .filter(|r| r.user == "carol")
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter().all(|r| r.result.as_str() == "reject"),
        "{rows:?}"
    );
}

/// A registration code from `tessera token add --type registration`, typed to `tessera check`:
/// the enrollment runs in the check's dialogue, the new token is saved, the code is used up.
#[test]
fn a_registration_code_enrolls_a_token_in_tessera_check() {
    let fx = Fixture::new("");
    let out = fx.tessera(
        &["token", "add", "--user", "alice", "--type", "registration"],
        "",
    );
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    let mut lines = printed.lines();
    let serial = lines.next().unwrap().to_string();
    let code = lines.next().unwrap().to_string();
    assert_eq!(code.len(), 16, "{printed}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("shown only now"));
    let check = || {
        let mut cmd = Command::new(bin_path("tessera"));
        cmd.arg("--config").arg(&fx.config).args(["check", "alice"]);
        cmd
    };
    drop(fx.store());
    // A wrong code is a failure like a wrong OTP: the fail counter counts it.
    let wrong: String = code.chars().rev().collect();
    let run = dialogue(check(), true, &[&wrong], |_| Vec::new());
    assert_eq!(run.status.code(), Some(1), "{}", run.other);
    let reg = fx.token(&serial);
    assert_eq!((reg.fail_count, reg.counter), (1, 0), "counted, not used");
    let run = dialogue(check(), true, &[&code, "432109", "432109"], |uri| {
        vec![oathtool(uri, None)]
    });
    assert!(run.status.success(), "{}\n{:?}", run.other, run.lines);
    assert!(
        run.other.starts_with("ACCEPT (serial TOTP"),
        "{}",
        run.other
    );
    let tokens = fx.store().list_tokens(Some("alice")).unwrap();
    assert_eq!(tokens.len(), 2);
    let reg = tokens.iter().find(|t| t.serial == serial).unwrap();
    assert_eq!(reg.counter, 1, "used up");
    assert_eq!(reg.info.origin, Some(Origin::Admin));
    let new = tokens.iter().find(|t| t.serial != serial).unwrap();
    assert_eq!(new.info.origin, Some(Origin::Registration));
    assert_eq!(new.info.registration.as_deref(), Some(serial.as_str()));
    // The listing says the code is used, and which token it made.
    let listed = fx.tessera(&["token", "list", "--type", "registration"], "");
    let listed = String::from_utf8(listed.stdout).unwrap();
    let row = listed.lines().find(|l| l.starts_with(&serial)).unwrap();
    assert!(row.contains(&format!("used: {}", new.serial)), "{listed}");
    let shown = fx.tessera(&["token", "show", &serial, "--json"], "");
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["enrolled_token"], new.serial.as_str());
    // The code again: refused, nothing shown.
    let run = dialogue(check(), true, &[&code], |_| Vec::new());
    assert_eq!(run.status.code(), Some(1));
    assert!(run.uri().is_none(), "{:?}", run.lines);
    assert_eq!(fx.store().list_tokens(Some("alice")).unwrap().len(), 2);
}

/// A registration code expires: `token add --valid-for` sets when (default a week; `token list`
/// shows it); from then on the code is refused like a wrong pass (counted as a failure, the
/// audit says "expired"), and `doctor` lists it. (Before, a code never expired.)
#[test]
fn an_expired_registration_code_is_refused_like_a_wrong_pass() {
    use tessera_engine::tokens::registration;
    let fx = Fixture::new("");
    let out = fx.tessera(
        &[
            "token",
            "add",
            "--user",
            "bob",
            "--type",
            "registration",
            "--valid-for",
            "12h",
        ],
        "",
    );
    assert!(out.status.success(), "{out:?}");
    let serial = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let t = fx.token(&serial);
    let expires = t.info.expires.unwrap();
    assert!(expires.abs_diff(t.created + 12 * 3600) <= 2, "{t:?}");
    let list = fx.tessera(&["token", "list"], "");
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("unused, expires 20"), "{list}");
    // A code that expired a second ago, as an older one would have after its week.
    let g = registration::generate(&mut rand::rngs::OsRng).unwrap();
    let code = String::from_utf8(g.code.to_vec()).unwrap();
    let mut tok = Tok::new(TokenType::Registration, "REG9", "alice", "", &g.key);
    tok.pin = None;
    tok.digits = registration::CODE_LEN;
    tok.info = serde_json::json!({ "expires": now() - 1 });
    fx.add(&tok);
    let out = fx.login("alice").answer("PIN", &code).run();
    assert_eq!(out.code, PAM_AUTH_ERR, "{out:?}");
    let t = fx.token("REG9");
    assert_eq!((t.fail_count, t.counter), (1, 0), "counted, not used");
    assert!(
        fx.audit()
            .iter()
            .any(|e| e.serial == "REG9" && e.reason == "registration code expired"),
        "{:?}",
        fx.audit()
    );
    assert!(
        fx.store().list_tokens(Some("alice")).unwrap().len() == 1,
        "nothing enrolled"
    );
    let list = fx.tessera(&["token", "list"], "");
    assert!(String::from_utf8_lossy(&list.stdout).contains("expired 20"));
    let doctor = fx.tessera(&["doctor"], "");
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        said.contains("1 registration code(s) expired unused (alice/REG9)"),
        "{said}"
    );
}

/// A client killed in the middle (at the prompt for a code, the key already shown): the daemon
/// gives the enrollment up, saves nothing and audits it.
#[test]
fn a_client_killed_mid_dialogue_leaves_nothing() {
    if needs_root() {
        return;
    }
    let fx = Fixture::new(CONFIG);
    let mut child = Command::new(bin_path("tessera"))
        .arg("enroll")
        .arg("--socket")
        .arg(&fx.socket)
        .env_clear()
        .uid(10003)
        .gid(10003)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "432109\n432109").unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    for line in out.lines() {
        if line.unwrap().starts_with("otpauth://") {
            break;
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let row = loop {
        let rows: Vec<_> = fx
            .audit()
            .into_iter()
            .filter(|r| r.user == "carol")
            .collect();
        if let Some(r) = rows.last() {
            break r.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no audit row for carol"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(row.result.as_str(), "reject", "{row:?}");
    assert!(row.reason.starts_with("enrollment not finished"), "{row:?}");
    assert!(fx.store().list_tokens(Some("carol")).unwrap().is_empty());
}

/// The registration code in one pass: an earlier module's password (PAM_AUTHTOK, here
/// pam_unix's) with `use_first_pass` starts the enrollment like the code typed at tessera's own
/// prompt; the rest of the dialogue goes through libpam's conversation (information messages
/// with the URI and QR code, then the prompts), and the login succeeds once the token is saved.
#[test]
fn a_registration_code_in_one_pass_through_libpam() {
    let fx = Fixture::new("");
    let out = fx.tessera(
        &["token", "add", "--user", "alice", "--type", "registration"],
        "",
    );
    assert!(out.status.success(), "{out:?}");
    let code = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    fx.set_stack(&[UNIX_FIRST, &fx.tessera_line("required", "use_first_pass")]);
    let out = fx
        .login("alice")
        .answer("Password", &code)
        .answer("New PIN", "432109")
        .answer("Repeat", "432109")
        .answer_seeing("Code from the app", |shown| {
            let uri = shown
                .iter()
                .find(|m| m.text.starts_with("otpauth://"))
                .map(|m| m.text.clone())
                .unwrap_or_default();
            oathtool(&uri, None)
        })
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(
        out.prompts(),
        [
            "Password: ",
            "New PIN for the token: ",
            "Repeat the PIN: ",
            "Code from the app: "
        ]
    );
    let qr_rows = out
        .messages
        .iter()
        .filter(|m| {
            !m.text.is_empty()
                && m.text
                    .chars()
                    .all(|c| " \u{2580}\u{2584}\u{2588}".contains(c))
        })
        .count();
    assert!((19..=21).contains(&qr_rows), "{out:?}");
    let tokens = fx.store().list_tokens(Some("alice")).unwrap();
    assert_eq!(tokens.len(), 2);
    assert!(tokens
        .iter()
        .any(|t| t.info.origin == Some(Origin::Registration)));
}
