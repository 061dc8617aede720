//! The daemon watched as a service: `tessera metrics` (its counters in the OpenMetrics text
//! format, read by a real OpenMetrics parser) and `tessera audit --follow --json` (a login's
//! row as one JSON line, as it is written).

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::remote;
use support::*;

/// `tessera metrics` against the fixture's daemon: (exit status, stdout, stderr).
fn metrics(fx: &Fixture) -> (bool, String, String) {
    let socket = fx.socket.display().to_string();
    let out = fx.tessera(&["metrics", "--socket", &socket], "");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The Python `prometheus_client` package's OpenMetrics parser (Debian's
/// python3-prometheus-client) reads `text`: one `family type samples` line a family, or the
/// parser's error.
fn parse_openmetrics(text: &str) -> Result<String, String> {
    const SCRIPT: &str = "\
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for f in text_string_to_metric_families(sys.stdin.read()):
    total = sum(s.value for s in f.samples if not s.name.endswith(('_bucket', '_created')))
    print(f.name, f.type, len(f.samples), '%g' % total)
";
    let out = output_with_stdin(
        Command::new("/usr/bin/python3").args(["-c", SCRIPT]),
        text.as_bytes(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn metrics_count_the_logins_and_a_real_openmetrics_parser_reads_them() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let ok = format!("1234{}", t.hotp_at(0));
    assert_eq!(fx.login("alice").answer("PIN", &ok).run().code, PAM_SUCCESS);
    for _ in 0..2 {
        let out = fx.login("alice").answer("PIN", "1234000000").run();
        assert_eq!(out.code, PAM_AUTH_ERR);
    }
    let (ok, text, err) = metrics(&fx);
    assert!(ok, "{err}");
    for want in [
        format!("tessera_logins_total{{service=\"{SERVICE}\",result=\"success\"}} 1"),
        format!("tessera_logins_total{{service=\"{SERVICE}\",result=\"denied\"}} 2"),
        "tessera_login_duration_seconds_count 3".into(),
        "tessera_login_duration_seconds_bucket{le=\"+Inf\"} 3".into(),
        "tessera_config_loaded 1".into(),
        // Its own request is no login under way (it counted as one before).
        "tessera_sessions_in_use{caller=\"root\"} 0".into(),
        "tessera_sessions_refused_total 0".into(),
        "tessera_otp_sends_total{type=\"email\",result=\"sent\"} 0".into(),
    ] {
        let in_use = want.starts_with("tessera_sessions_in_use{caller=\"root\"}");
        if in_use && tessera_engine::os::sys::euid() != 0 {
            continue;
        }
        assert!(text.lines().any(|l| l == want), "{want} in:\n{text}");
    }
    let parsed = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for want in [
        "tessera_logins counter 2 3\n",
        "tessera_login_duration_seconds histogram 17 ",
        "tessera_sessions_in_use gauge 2 ",
        "tessera_sessions_refused counter 1 0\n",
        "tessera_remote_server_up gauge 0 0\n",
        "tessera_otp_sends counter 4 0\n",
        "tessera_config_loaded gauge 1 1\n",
    ] {
        assert!(
            parsed.lines().any(|l| format!("{l}\n").starts_with(want)),
            "{want:?} in:\n{parsed}"
        );
    }
    // The parser is not lenient: the same text cut before `# EOF` is refused.
    let cut = text.trim_end().trim_end_matches("# EOF");
    assert!(parse_openmetrics(cut).is_err(), "a text without # EOF");
}

/// The counters are for root and the daemon's user: alice (uid 10001) is refused, is told so
/// in one line, and gets no figure.
#[test]
fn metrics_are_refused_to_another_user() {
    if tessera_engine::os::sys::euid() != 0 {
        eprintln!("needs root to run as alice: checked in CI");
        return;
    }
    let fx = Fixture::new("");
    let out = Command::new(bin_path("tessera"))
        .args(["metrics", "--socket"])
        .arg(&fx.socket)
        .env_clear()
        .uid(10001)
        .gid(10001)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(stdout, "", "no figure for alice");
    assert!(
        stderr.contains("a metrics request is for root or the daemon's user only"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // The daemon goes on serving root.
    let (ok, text, err) = metrics(&fx);
    assert!(ok, "{err}");
    assert!(text.ends_with("# EOF\n"));
}

/// `tessera audit --follow --json` prints the row of a login as one JSON line within a second
/// of the login's end, and only new rows when no `--limit` is given.
#[test]
fn audit_follow_prints_a_login_as_one_json_line_within_a_second() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    // A row from before: with --limit 1 it comes first, which says the follower is running.
    let out = fx.login("alice").answer("PIN", "1234000000").run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    drop(fx.store());
    let mut child = Command::new(bin_path("tessera"))
        .arg("--config")
        .arg(&fx.config)
        .args(["audit", "--follow", "--json", "--limit", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let row = |line: &str| -> serde_json::Value {
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    let first = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(row(&first)["reason"].as_str(), Some("wrong OTP"), "{first}");
    let ok = format!("1234{}", t.hotp_at(0));
    assert_eq!(fx.login("alice").answer("PIN", &ok).run().code, PAM_SUCCESS);
    let ended = Instant::now();
    let line = rx.recv_timeout(Duration::from_secs(1));
    let took = ended.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    let line = line.unwrap_or_else(|e| panic!("no line within a second ({e:?})"));
    eprintln!("the row came {took:?} after the login ended");
    let v = row(&line);
    assert_eq!(v["user"].as_str(), Some("alice"));
    assert_eq!(v["serial"].as_str(), Some("H1"));
    assert_eq!(v["result"].as_str(), Some("accept"));
    assert_eq!(v["service"].as_str(), Some(SERVICE));
    assert!(
        !line.contains('\n') && !line.contains(&ok),
        "one line, no code: {line}"
    );
    assert!(rx.try_recv().is_err(), "one row, once");
}

/// A remote server the daemon's circuit breaker skips is down in the metrics (0) and a failure
/// of `tessera doctor` (no server is up, so no login can be served); a server that answers is up.
#[test]
fn a_remote_server_the_breaker_skips_is_down_in_metrics_and_doctor() {
    let dead = remote::fake(|_, _| remote::Act::Close);
    let serving = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let on = serving.clone();
    let alive = remote::fake(move |_, _| {
        if !on.load(std::sync::atomic::Ordering::SeqCst) {
            return remote::Act::Close;
        }
        remote::json(
            200,
            r#"{"result":{"status":true,"value":true,"authentication":"ACCEPT"},"detail":{"serial":"R1","type":"totp"}}"#,
        )
    });
    let fx = Fixture::new(&format!(
        "[auth]\nmode = \"remote\"\n[remote]\nurl = [\"{}\", \"{}\"]\nallow_plain_http = true\n\
         timeout = 2\ndown_after = 1\ndown_for = 600\n",
        dead.url(),
        alive.url()
    ));
    let port = |url: &str| {
        url.rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches('/')
            .to_string()
    };
    let (dead_port, alive_port) = (port(&dead.url()), port(&alive.url()));
    let up_line = |text: &str, p: &str| {
        text.lines()
            .find(|l| l.starts_with("tessera_remote_server_up{") && l.contains(&format!(":{p}")))
            .map(str::to_string)
    };
    let (ok, text, err) = metrics(&fx);
    assert!(ok, "{err}");
    assert!(
        up_line(&text, &dead_port).unwrap().ends_with(" 1"),
        "{text}"
    );
    // The dead server fails once (down_after = 1): skipped from then on; the other accepts.
    let out = fx.login("alice").answer("PIN", "alicepin123456").run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    let (ok, text, err) = metrics(&fx);
    assert!(ok, "{err}");
    assert!(
        up_line(&text, &dead_port).unwrap().ends_with(" 0"),
        "{text}"
    );
    assert!(
        up_line(&text, &alive_port).unwrap().ends_with(" 1"),
        "{text}"
    );
    let socket = fx.socket.display().to_string();
    let doctor = String::from_utf8_lossy(&fx.tessera(&["doctor", "--socket", &socket], "").stdout)
        .into_owned();
    let down = doctor
        .lines()
        .find(|l| l.contains(&format!(":{dead_port}: down")))
        .unwrap_or_else(|| panic!("{doctor}"));
    assert!(
        down.starts_with("warn  tesserad: remote server") && down.contains("skipped for"),
        "one of two down is a warning: {down}"
    );
    assert!(
        doctor.contains("(screen lockers work)"),
        "it still serves: {doctor}"
    );
    serving.store(false, std::sync::atomic::Ordering::SeqCst);
    let out = fx.login("alice").answer("PIN", "alicepin123456").run();
    assert_ne!(out.code, PAM_SUCCESS, "{out:?}");
    let doctor = String::from_utf8_lossy(&fx.tessera(&["doctor", "--socket", &socket], "").stdout)
        .into_owned();
    assert!(
        doctor
            .lines()
            .any(|l| l.starts_with("FAIL  tesserad: remote server")
                && l.ends_with("no server is up")),
        "{doctor}"
    );
}
