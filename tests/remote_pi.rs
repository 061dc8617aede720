//! Remote mode against a real privacyIDEA (started once for this test binary, see
//! `support/pi.rs`): PIN+OTP, replay, PIN → challenge → OTP, wrong PIN, unknown user, two
//! challenge tokens, spass, a locked token, HTTPS with the script's CA and refused with
//! another, fail-over between URLs, and the same flows through real libpam (pamtester under
//! pam_wrapper).

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::pi::{next, servers};
use support::remote::*;
use support::{bin_path, hotp, module_path, now, pamtester_command, run_pamtester, KEY20, SERVICE};
use tessera_engine::auth::Verdict;
use tessera_engine::config::Config;

const TIMEOUT: u64 = 5;
const ERIN_HOTP_KEY: &[u8] = b"abcdefghijklmnopqrst";
const BOB_TOTP_KEY: &[u8] = b"ABCDEFGHIJKLMNOPQRST";

fn http_cfg(extra: &str) -> (tempfile::TempDir, Config) {
    remote_config_tmp(&[&servers().http.url], TIMEOUT, extra)
}

fn tls_cfg(ca: &Path) -> (tempfile::TempDir, Config) {
    remote_config_tmp(&[&servers().tls.url], TIMEOUT, &format!("ca_file = {ca:?}"))
}

fn reject_reason(out: &tessera_engine::auth::Outcome) -> String {
    match &out.verdict {
        Verdict::Reject { reason } => reason.clone(),
        v => panic!("expected Reject, got {v:?} ({:?})", out.events),
    }
}

#[test]
fn pin_plus_otp_is_accepted_and_its_replay_refused() {
    let s = servers();
    let mut alice = s.http.alice();
    let c = next(&mut alice);
    let pass = format!("alicepin{}", hotp(KEY20, c));
    let (_d, cfg) = http_cfg("");
    let mut conv = ScriptedConv::answers(&[("PIN: ", &pass)]);
    let out = run(&cfg, "alice", &mut conv);
    assert!(
        matches!(out.verdict, Verdict::Accept { ref serial } if serial == "HOTP_ALICE"),
        "{:?} {:?}",
        out.verdict,
        out.events
    );
    assert_eq!(out.events.last().unwrap().kind, "hotp");
    let mut conv = ScriptedConv::answers(&[("PIN: ", &pass)]);
    let out = run(&cfg, "alice", &mut conv);
    reject_reason(&out);
}

#[test]
fn pin_alone_opens_a_challenge_answered_with_the_otp() {
    let s = servers();
    let mut alice = s.http.alice();
    let c = next(&mut alice);
    let (_d, cfg) = http_cfg("");
    let mut conv =
        ScriptedConv::answers(&[("PIN: ", "alicepin"), ("please enter otp", &hotp(KEY20, c))]);
    let out = run(&cfg, "alice", &mut conv);
    assert!(
        out.verdict.is_accept(),
        "{:?} {:?}",
        out.verdict,
        out.events
    );
    let results: Vec<&str> = out.events.iter().map(|e| e.result.as_str()).collect();
    assert_eq!(results, ["challenge", "accept"]);
    assert_eq!(out.events[0].serial, "HOTP_ALICE");
    // A wrong answer to a new challenge fails.
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin"), ("please enter otp", "000000")]);
    reject_reason(&run(&cfg, "alice", &mut conv));
}

#[test]
fn a_wrong_pin_is_refused() {
    let s = servers();
    let mut alice = s.http.alice();
    let c = next(&mut alice);
    let (_d, cfg) = http_cfg("");
    let mut conv = ScriptedConv::answers(&[("PIN: ", &format!("wrongpin{}", hotp(KEY20, c)))]);
    let out = run(&cfg, "alice", &mut conv);
    let why = reject_reason(&out);
    assert!(why.contains("wrong otp pin"), "{why}");
}

#[test]
fn an_unknown_user_fails_like_a_wrong_pin() {
    let (_d, cfg) = http_cfg("");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "whatever123456")]);
    let out = run(&cfg, "mallory", &mut conv);
    let why = reject_reason(&out);
    assert!(why.contains("error 904"), "{why}");
    assert_eq!(conv.prompts, ["PIN: "]);
    // Same verdict (PAM_AUTH_ERR for the caller) as a wrong PIN.
    assert!(
        matches!(out.verdict, Verdict::Reject { .. }),
        "{:?}",
        out.verdict
    );
}

#[test]
fn a_user_without_token_is_refused() {
    let (_d, cfg) = http_cfg("");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "davepw")]);
    reject_reason(&run(&cfg, "dave", &mut conv));
}

#[test]
fn an_spass_pin_is_accepted() {
    let (_d, cfg) = http_cfg("");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "carolpin")]);
    let out = run(&cfg, "carol", &mut conv);
    assert!(
        matches!(out.verdict, Verdict::Accept { ref serial } if serial == "SPASS_CAROL"),
        "{:?}",
        out.verdict
    );
}

#[test]
fn one_pin_two_challenge_tokens_one_prompt() {
    let (_d, cfg) = http_cfg("");
    let mut conv = ScriptedConv::answers(&[
        ("PIN: ", "erinpin"),
        ("please enter otp", &hotp(ERIN_HOTP_KEY, 0)),
    ]);
    let out = run(&cfg, "erin", &mut conv);
    assert!(
        matches!(out.verdict, Verdict::Accept { ref serial } if serial == "HOTP_ERIN"),
        "{:?} {:?}",
        out.verdict,
        out.events
    );
    let ch = &out.events[0];
    assert_eq!(ch.result, "challenge");
    assert!(
        ch.serial.contains("HOTP_ERIN") && ch.serial.contains("TOTP_ERIN"),
        "{}",
        ch.serial
    );
}

#[test]
fn a_token_locked_by_its_fail_counter_gives_maxtries() {
    let (_d, cfg) = http_cfg("");
    // 10 wrong PINs lock bob's token on this server (max fail 10).
    for _ in 0..10 {
        let mut conv = ScriptedConv::answers(&[("PIN: ", "wrong000000")]);
        reject_reason(&run(&cfg, "bob", &mut conv));
    }
    let now = now();
    let otp = tessera_engine::tokens::hotp_code(
        tessera_engine::tokens::Algorithm::Sha1,
        BOB_TOTP_KEY,
        now / 30,
        6,
    );
    let pass = format!("bobpin{}", String::from_utf8_lossy(&otp));
    let mut conv = ScriptedConv::answers(&[("PIN: ", &pass)]);
    let out = run(&cfg, "bob", &mut conv);
    assert!(
        matches!(out.verdict, Verdict::Locked { .. }),
        "{:?} {:?}",
        out.verdict,
        out.events
    );
}

#[test]
fn https_with_the_servers_ca_in_ca_file() {
    let s = servers();
    let ca = s.tls.ca.clone().unwrap();
    assert!(s.tls.url.starts_with("https://"), "{}", s.tls.url);
    let (_d, cfg) = tls_cfg(&ca);
    let mut conv = ScriptedConv::answers(&[("PIN: ", "carolpin")]);
    let out = run(&cfg, "carol", &mut conv);
    assert!(
        out.verdict.is_accept(),
        "{:?} {:?}",
        out.verdict,
        out.events
    );
    // The challenge flow over TLS too (one kept-alive connection).
    let mut alice = s.tls.alice();
    let c = next(&mut alice);
    let mut conv =
        ScriptedConv::answers(&[("PIN: ", "alicepin"), ("please enter otp", &hotp(KEY20, c))]);
    let out = run(&cfg, "alice", &mut conv);
    assert!(
        out.verdict.is_accept(),
        "{:?} {:?}",
        out.verdict,
        out.events
    );
}

#[test]
fn the_same_https_server_is_refused_with_a_wrong_ca() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let other = test_ca("not the privacyIDEA test CA");
    let wrong = write_file(dir.path(), "wrong-ca.pem", &other.cert_pem);
    let (_d, cfg) = tls_cfg(&wrong);
    let mut conv = ScriptedConv::answers(&[("PIN: ", "carolpin")]);
    let t = Instant::now();
    let out = run(&cfg, "carol", &mut conv);
    let Verdict::Unavailable(e) = &out.verdict else {
        panic!("expected Unavailable, got {:?}", out.verdict)
    };
    assert!(t.elapsed() < Duration::from_secs(TIMEOUT + 1));
    let msg = e.to_string();
    assert!(
        msg.contains("UnknownIssuer") || msg.to_lowercase().contains("issuer"),
        "{msg}"
    );
    // Without ca_file the system roots don't know the test CA either.
    let (_d2, cfg) = remote_config_tmp(&[&s.tls.url], TIMEOUT, "");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "carolpin")]);
    assert!(matches!(
        run(&cfg, "carol", &mut conv).verdict,
        Verdict::Unavailable(_)
    ));
}

#[test]
fn an_unreachable_first_url_fails_over_to_the_real_server() {
    let s = servers();
    let (_d, cfg) = remote_config_tmp(&[&refused_url(), &s.http.url], TIMEOUT, "");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "carolpin")]);
    let out = run(&cfg, "carol", &mut conv);
    assert!(
        out.verdict.is_accept(),
        "{:?} {:?}",
        out.verdict,
        out.events
    );
    assert!(out.events.last().unwrap().reason.contains(&s.http.url));
}

#[test]
fn remote_attempts_are_audited_in_the_local_store_when_there_is_one() {
    let (_d, cfg) = http_cfg("");
    local_store_with_hotp(&cfg, "carol", "LOCAL_UNUSED", "x");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "carolpin")]);
    assert!(run(&cfg, "carol", &mut conv).verdict.is_accept());
    let audit = audit_of(&cfg, "carol");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].result, "accept");
    assert_eq!(audit[0].serial, "SPASS_CAROL");
    assert!(!audit[0].reason.contains("carolpin"));
}

/// privacyIDEA's offline mode against the real server: a HOTP token of its `offline` machine
/// application (4 values). The accepted PIN+OTP brings the hashed values of the next 4 codes;
/// with the server out of reach they open logins, each once and the lower ones with it; back
/// online, an offline login is checked locally first (the server has moved past those codes)
/// and refills what it used.
#[test]
fn offline_values_open_logins_without_the_server_and_are_refilled() {
    // The HTTPS instance: its dave has no token in any other test.
    let pi = &servers().tls;
    const SERIAL: &str = "OFFLINE_DAVE";
    pi.admin("DELETE", &format!("/token/{SERIAL}"), &[]);
    let init = pi.admin(
        "POST",
        "/token/init",
        &[
            ("serial", SERIAL),
            ("type", "hotp"),
            ("otpkey", "3132333435363738393031323334353637383930"),
            ("user", "dave"),
            ("pin", "davepin"),
        ],
    );
    assert_eq!(init.pointer("/result/status"), Some(&true.into()), "{init}");
    let attach = pi.admin(
        "POST",
        "/machine/token",
        &[
            ("serial", SERIAL),
            ("application", "offline"),
            ("count", "4"),
            ("rounds", "1000"),
        ],
    );
    assert_eq!(
        attach.pointer("/result/status"),
        Some(&true.into()),
        "{attach}"
    );

    let dir = tempfile::tempdir().unwrap();
    let ca = pi.ca.clone().unwrap();
    let online = remote_config(
        &[&pi.url],
        &format!("timeout = {TIMEOUT}\nca_file = {ca:?}\noffline = true"),
        dir.path(),
    );
    local_store_with_hotp(&online, "nobody", "LOCAL_UNUSED", "x");
    let offline = remote_config(
        &[&refused_url()],
        &format!("timeout = {TIMEOUT}\noffline = true"),
        dir.path(),
    );
    let login = |cfg: &Config, counter: u64| {
        let pass = format!("davepin{}", hotp(KEY20, counter));
        run(cfg, "dave", &mut ScriptedConv::answers(&[("PIN: ", &pass)]))
    };
    let accepted = |out: &tessera_engine::auth::Outcome, reason: &str| {
        assert!(
            out.verdict.is_accept(),
            "{:?} {:?}",
            out.verdict,
            out.events
        );
        assert!(
            out.events.iter().any(|e| e.reason.starts_with(reason)),
            "no event {reason:?}: {:?}",
            out.events
        );
    };
    let counters = || -> Vec<u64> {
        let store = tessera_engine::store::SqliteStore::open(&online.store.path, 2000).unwrap();
        use tessera_engine::store::Store;
        let values = store.offline_values("dave", "").unwrap();
        assert!(values.iter().all(|v| v.serial == SERIAL));
        values.iter().map(|v| v.counter).collect()
    };

    accepted(&login(&online, 0), "4 offline values kept");
    assert_eq!(counters(), [1, 2, 3, 4]);

    // No server: counter 2 opens (1 was skipped on the device, within the window).
    let out = login(&offline, 2);
    accepted(&out, "accepted offline (counter 2");
    accepted(&out, "offline values not refilled");
    assert_eq!(counters(), [3, 4]);
    // Neither it nor the skipped 1 opens again; without a server that is no login at all.
    for c in [2, 1] {
        let out = login(&offline, c);
        assert!(!out.verdict.is_accept(), "counter {c}: {:?}", out.events);
    }

    // Back online: counter 3 is checked here first, then the server refills the 2 used.
    accepted(&login(&online, 3), "3 offline values refilled");
    assert_eq!(counters(), [4, 5, 6, 7]);
    // The server agrees: its counter is past the values it handed out.
    let answer = pi.admin("GET", &format!("/token/?serial={SERIAL}"), &[]);
    let count = answer
        .pointer("/result/value/tokens/0/count")
        .and_then(|c| c.as_u64());
    assert_eq!(count, Some(8), "{answer}");
    pi.admin("DELETE", &format!("/token/{SERIAL}"), &[]);
}

// ------------------------------------------------------------------ through real libpam

/// Runs `pamtester` for `user` under pam_wrapper with a service that uses the module in
/// remote mode; `answers` go to the prompts one per line. Returns (success, stderr).
fn pamtester(config: &Path, user: &str, answers: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(SERVICE),
        format!(
            // No daemon listens: the module (run by root here) spawns `tesserad --stdio`.
            "auth required {} socket={} daemon={} config={}\naccount required pam_permit.so\n",
            module_path().display(),
            dir.path().join("no-daemon.sock").display(),
            bin_path("tesserad").display(),
            config.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("other"),
        "auth required pam_deny.so\naccount required pam_deny.so\n",
    )
    .unwrap();
    let out = run_pamtester(&mut pamtester_command(dir.path(), user), answers);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn pam_config(dir: &Path, url: &str) -> PathBuf {
    // A remote-only host: the store path does not exist.
    let p = dir.join("tessera.toml");
    std::fs::write(
        &p,
        format!(
            "[store]\npath = {:?}\nkey_file = {:?}\n[auth]\nmode = \"remote\"\n[remote]\nurl = {url:?}\nallow_plain_http = true\ntimeout = {TIMEOUT}\n",
            dir.join("absent.db"),
            dir.join("absent.key"),
        ),
    )
    .unwrap();
    p
}

#[test]
fn through_libpam_pin_challenge_otp_and_refusals() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let config = pam_config(dir.path(), &s.http.url);

    let (ok, log) = pamtester(&config, "carol", &["carolpin"]);
    assert!(ok, "{log}");
    assert!(log.contains("successfully authenticated"), "{log}");

    let mut alice = s.http.alice();
    let c = next(&mut alice);
    let (ok, log) = pamtester(&config, "alice", &["alicepin", &hotp(KEY20, c)]);
    assert!(ok, "{log}");
    assert!(
        log.contains("please enter otp"),
        "the server's challenge message is the prompt: {log}"
    );
    // The same OTP again: refused (PAM_AUTH_ERR).
    let (ok, log) = pamtester(&config, "alice", &["alicepin", &hotp(KEY20, c)]);
    assert!(!ok, "{log}");
    assert!(log.contains("Authentication failure"), "{log}");
    drop(alice);

    let (ok, log) = pamtester(&config, "mallory", &["whatever123456"]);
    assert!(!ok && log.contains("Authentication failure"), "{log}");
}

#[test]
fn through_libpam_an_unreachable_server_is_authinfo_unavail() {
    let dir = tempfile::tempdir().unwrap();
    let config = pam_config(dir.path(), &refused_url());
    let (ok, log) = pamtester(&config, "carol", &["carolpin"]);
    assert!(!ok, "{log}");
    assert!(
        log.contains("Authentication service cannot retrieve authentication info"),
        "{log}"
    );
}

// ------------------------------------------------------------------ the `tessera` command

fn tessera(config: &Path, args: &[&str], stdin: &str) -> (i32, String) {
    let out = support::tessera(config, args, stdin);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_and_doctor_use_the_remote_servers() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let config = pam_config(dir.path(), &s.http.url);
    let (code, out) = tessera(&config, &["check", "carol"], "carolpin\n");
    assert_eq!(code, 0, "{out}");
    let (code, out) = tessera(&config, &["check", "carol"], "wrongpin\n");
    assert_eq!(code, 1, "{out}");

    // doctor: each server answers (TLS verified with ca_file), remote only: no store needed.
    let ca = s.tls.ca.clone().unwrap();
    let text = format!(
        "[store]\npath = {:?}\nkey_file = {:?}\n[auth]\nmode = \"remote\"\n[remote]\nurl = [{:?}, {:?}]\nallow_plain_http = true\nca_file = {ca:?}\ntimeout = 5\n",
        dir.path().join("absent.db"),
        dir.path().join("absent.key"),
        s.http.url,
        s.tls.url,
    );
    let config = write_file(dir.path(), "doctor.toml", &text);
    let (code, out) = tessera(&config, &["doctor"], "");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("ok    remote {}: answers (HTTP 200", s.tls.url)),
        "{out}"
    );
    assert!(
        out.contains(&format!("ok    remote {}: answers (HTTP 200", s.http.url)),
        "{out}"
    );
    assert!(out.contains("remote only"), "{out}");
    assert!(
        out.contains(&format!("warn  [remote] url {}: plain http", s.http.url)),
        "doctor names the plain-http server: {out}"
    );

    let dead = refused_url();
    let text = text.replace(&s.http.url, &dead);
    let config = write_file(dir.path(), "doctor2.toml", &text);
    let (code, out) = tessera(&config, &["doctor"], "");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("FAIL  remote {dead}: ")), "{out}");
}
