//! Issue 3's token types through the real libpam, each with the two-step flow: PIN first, the
//! challenge (and for e-mail/SMS the OTP sent out of band to a real SMTP server or a local HTTP
//! gateway), then the OTP alone.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::remote::{fake, free_port, test_ca, Act, Fake, Seen};
use support::*;
use tessera_engine::tokens::ocra::{hash_pin_for, Suite};
use tessera_engine::tokens::{Algorithm, TokenType};

const ADDRESS: &str = "alice@example.org";
const PHONE: &str = "+49 170 1234567";

// ---- peers ----

/// aiosmtpd (Debian's python3-aiosmtpd) on 127.0.0.1, writing each accepted message to a file.
struct SmtpServer {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl SmtpServer {
    fn start(args: &[&str]) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/smtp_server.py");
        // Debian's python3, where python3-aiosmtpd is installed (not a python3 of a pyenv).
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("/usr/bin/python3 (apt-get install python3-aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("smtp_server.py did not start: {line:?}"))
            .parse()
            .unwrap();
        SmtpServer { child, dir, port }
    }

    /// The messages received so far, oldest first.
    fn mails(&self) -> Vec<String> {
        mails_in(self.dir.path())
    }

    fn config(&self, extra: &str) -> String {
        format!(
            "[email]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\nfrom = \"otp@example.org\"\n{extra}\n",
            self.port
        )
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The OTP in a captured mail: the first run of `n` digits in the body.
fn otp_in(mail: &str, n: usize) -> String {
    let body = mail.split("\r\n\r\n").nth(1).unwrap_or("");
    digits_in(body, n).unwrap_or_else(|| panic!("no {n}-digit OTP in {mail:?}"))
}

/// The messages the SMTP peer stored in `dir` (`*.eml`, named in order), oldest first.
fn mails_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// The 6-digit OTP of the newest mail the SMTP peer stored in `dir` (the closures of
/// `answer_with` can't borrow the server, so they take its directory).
fn mailed_otp(dir: &Path) -> String {
    otp_in(mails_in(dir).last().expect("a mail"), 6)
}

fn digits_in(text: &str, n: usize) -> Option<String> {
    text.as_bytes()
        .split(|b| !b.is_ascii_digit())
        .find(|w| w.len() == n)
        .map(|w| String::from_utf8(w.to_vec()).unwrap())
}

/// The recording SMS gateway: the fake HTTP server answering every request with `status` and
/// `text`.
fn gateway(status: u16, text: &'static str) -> Fake {
    fake(move |_, _| Act::Reply(status, text.into()))
}

/// A field of a request the gateway saw.
fn field(r: &Seen, name: &str) -> String {
    r.field(name)
        .unwrap_or_else(|| panic!("no field {name} in {r:?}"))
        .to_string()
}

// ---- tokens ----

fn email_tok(serial: &str, user: &str, pin: &str) -> Tok {
    Tok::new(TokenType::Email, serial, user, pin, b"").info(serde_json::json!({ "email": ADDRESS }))
}

fn sms_tok(serial: &str, user: &str, pin: &str) -> Tok {
    Tok::new(TokenType::Sms, serial, user, pin, b"").info(serde_json::json!({ "phone": PHONE }))
}

fn ocra_tok(serial: &str, user: &str, pin: &str, suite: &str, key: &[u8]) -> Tok {
    let s = Suite::parse(suite).unwrap();
    Tok::new(TokenType::Ocra, serial, user, pin, key)
        .digits(s.digits)
        .algorithm(s.algorithm)
        .info(serde_json::json!({ "ocra_suite": suite }))
}

fn open_challenges(fx: &Fixture) -> usize {
    fx.challenges().iter().filter(|c| c.state == "open").count()
}

fn errors(out: &Outcome) -> Vec<&str> {
    out.messages
        .iter()
        .filter(|m| m.style == PAM_ERROR_MSG)
        .map(|m| m.text.as_str())
        .collect()
}

// ---- e-mail ----

/// An SMTP peer, and a fixture that mails through it (no TLS; `extra`: more `[email]` keys) with
/// alice's e-mail token E1 (PIN 1234).
fn email_fixture(extra: &str) -> (SmtpServer, Fixture) {
    let smtp = SmtpServer::start(&[]);
    let fx = Fixture::new(&smtp.config(&format!("tls = \"none\"\n{extra}")));
    fx.add(&email_tok("E1", "alice", "1234"));
    (smtp, fx)
}

/// `max_per_hour`'s message to the user.
const TOO_MANY: &str =
    "Too many codes sent in the last hour; try again later or use another token.";

/// PIN 1234, then a wrong OTP to the "sent to" prompt: one code sent.
fn pin_then_wrong_otp(fx: &Fixture, user: &str) -> Outcome {
    fx.login(user)
        .answer("PIN", "1234")
        .answer("sent to", "000000")
        .run()
}

/// PIN 1234 of a user over the send limit: PAM_AUTH_ERR, [`TOO_MANY`], no OTP prompt.
fn assert_over_limit(fx: &Fixture, user: &str) {
    let out = fx.login(user).answer("PIN", "1234").run();
    assert_eq!(out.code, PAM_AUTH_ERR, "{out:?}");
    assert_eq!(errors(&out), [TOO_MANY]);
    assert_eq!(out.prompts(), ["PIN: "], "no OTP prompt");
}

#[test]
fn email_pin_sends_the_otp_through_smtp_and_the_mailed_otp_answers_once() {
    let (smtp, fx) = email_fixture("subject = \"OTP for {user}\"");
    let mails = smtp.dir.path().to_path_buf();
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer_with(
            "Please enter the OTP sent to a****@example.org: ",
            move |_| {
                let m = std::fs::read_dir(&mails).unwrap().count();
                assert_eq!(m, 1, "the mail is there before the prompt");
                let path = std::fs::read_dir(&mails)
                    .unwrap()
                    .next()
                    .unwrap()
                    .unwrap()
                    .path();
                otp_in(&std::fs::read_to_string(path).unwrap(), 6)
            },
        )
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(mail.contains("X-Envelope-From: otp@example.org"), "{mail}");
    assert!(
        mail.contains(&format!("X-Envelope-To: {ADDRESS}")),
        "{mail}"
    );
    assert!(mail.contains(&format!("To: {ADDRESS}\r\n")), "{mail}");
    assert!(mail.contains("Subject: OTP for alice\r\n"), "{mail}");
    assert!(mail.contains("It is valid for 300 seconds."), "{mail}");
    let otp = otp_in(mail, 6);
    // The challenge is closed, its sealed OTP dropped; the OTP is in no audit row.
    let ch = fx.challenges();
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].state, "answered");
    assert!(ch[0].data.is_none());
    assert!(ch[0].expires >= ch[0].created + 300);
    assert!(fx.audit().iter().all(|e| !e.reason.contains(&otp)));

    // The same OTP does not answer the next challenge (which mails a new one).
    let again = otp.clone();
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer_with("sent to", move |_| again.clone())
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(smtp.mails().len(), 2);
    assert_eq!(open_challenges(&fx), 0);
}

#[test]
fn email_with_a_wrong_otp_fails_and_closes_the_challenge() {
    let (_smtp, fx) = email_fixture("");
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer_with("sent to", |_| "000000x".into())
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(fx.challenges()[0].state, "failed");
    assert_eq!(fx.token("E1").fail_count, 1);
}

#[test]
fn email_goes_over_starttls_with_smtp_auth() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_ca("tessera test CA").write_localhost(certs.path());
    let smtp = SmtpServer::start(&[
        "--tls",
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        "--auth",
        "mailer",
        "s3cret",
    ]);
    let pwfile = certs.path().join("smtp.password");
    tessera_engine::os::fsperm::create_private_file(&pwfile, b"s3cret\n").unwrap();
    let fx = Fixture::new(&smtp.config(&format!(
        "tls = \"starttls\"\nca_file = \"{}\"\nusername = \"mailer\"\npassword_file = \"{}\"",
        ca.display(),
        pwfile.display()
    )));
    fx.add(&email_tok("E1", "alice", "1234"));
    let dir = smtp.dir.path().to_path_buf();
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer_with("sent to", move |_| mailed_otp(&dir))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    let mail = &smtp.mails()[0];
    assert!(
        mail.contains("X-TLS: yes") && mail.contains("X-Auth: yes"),
        "{mail}"
    );

    // A wrong password: the relay refuses, nothing is sent, the reason names AUTH.
    let badpw = certs.path().join("bad.password");
    tessera_engine::os::fsperm::create_private_file(&badpw, b"wrong\n").unwrap();
    let fx3 = Fixture::new(&smtp.config(&format!(
        "tls = \"starttls\"\nca_file = \"{}\"\nusername = \"mailer\"\npassword_file = \"{}\"",
        ca.display(),
        badpw.display()
    )));
    fx3.add(&email_tok("E1", "alice", "1234"));
    let out = fx3.login("alice").answer("PIN", "1234").run();
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL);
    let reason = fx3.audit().last().unwrap().reason.clone();
    assert!(reason.contains("AUTH PLAIN answered 535"), "{reason}");
    assert!(
        !reason.contains("wrong"),
        "no password in the log: {reason}"
    );
    assert_eq!(smtp.mails().len(), 1);

    // The same relay without its CA: the certificate is refused, nothing is sent.
    let fx2 = Fixture::new(&smtp.config("tls = \"starttls\""));
    fx2.add(&email_tok("E1", "alice", "1234"));
    let out = fx2.login("alice").answer("PIN", "1234").run();
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL);
    assert_eq!(smtp.mails().len(), 1);
    let reason = fx2.audit().last().unwrap().reason.clone();
    assert!(reason.contains("TLS handshake"), "{reason}");
}

#[test]
fn email_relay_down_tells_the_user_logs_the_reason_and_leaves_no_challenge() {
    // A port nothing listens on.
    let port = free_port();
    let fx = Fixture::new(&format!(
        "[email]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\ntls = \"none\"\n"
    ));
    fx.add(&email_tok("E1", "alice", "1234"));
    let out = fx.login("alice").answer("PIN", "1234").run();
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{out:?}");
    assert_eq!(
        errors(&out),
        ["The OTP could not be sent by e-mail. Please try again later or contact your administrator."]
    );
    assert_eq!(out.prompts(), ["PIN: "], "no OTP prompt");
    assert!(fx.challenges().is_empty(), "no challenge row at all");
    let e = fx.audit().last().unwrap().clone();
    assert_eq!((e.result.as_str(), e.serial.as_str()), ("error", "E1"));
    assert!(
        e.reason.contains("SMTP relay 127.0.0.1") && e.reason.contains("connect"),
        "{}",
        e.reason
    );
    assert_eq!(
        fx.token("E1").fail_count,
        0,
        "a delivery failure is not the user's"
    );
}

#[test]
fn email_through_a_sendmail_command() {
    let out_dir = tempfile::tempdir().unwrap();
    let mail = out_dir.path().join("mail.eml");
    let fx = Fixture::new(&format!(
        "[email]\nsendmail = \"/usr/bin/tee {}\"\n",
        mail.display()
    ));
    fx.add(&email_tok("E1", "alice", "1234"));
    let m = mail.clone();
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer_with("sent to", move |_| {
            otp_in(
                &std::fs::read_to_string(&m).unwrap().replace('\n', "\r\n"),
                6,
            )
        })
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert!(std::fs::read_to_string(&mail)
        .unwrap()
        .contains("To: alice@example.org\n"));
}

/// Issue 12.6: `[email] max_per_hour` counts the mails each user was sent in the last hour.
#[test]
fn email_sends_stop_at_max_per_hour_with_a_message_and_an_audit_row() {
    let (smtp, fx) = email_fixture("max_per_hour = 2");
    fx.add(&email_tok("E2", "bob", "1234"));
    for n in 1..=2 {
        let out = pin_then_wrong_otp(&fx, "alice");
        assert_eq!(out.code, PAM_AUTH_ERR, "{out:?}");
        assert!(errors(&out).is_empty(), "{out:?}");
        assert_eq!(smtp.mails().len(), n);
    }
    assert_over_limit(&fx, "alice");
    assert_eq!(smtp.mails().len(), 2, "no third mail");
    assert_eq!(open_challenges(&fx), 0);
    let e = fx.audit().last().unwrap().clone();
    assert_eq!(
        (
            e.user.as_str(),
            e.serial.as_str(),
            e.result.as_str(),
            e.reason.as_str()
        ),
        (
            "alice",
            "E1",
            "reject",
            "e-mail not sent: 2 sent in the last hour (max_per_hour)"
        )
    );
    assert_eq!(fx.token("E1").fail_count, 2, "only the two wrong OTPs");

    // Bob, under his own limit, gets his mail and logs in with it.
    let dir = smtp.dir.path().to_path_buf();
    let out = fx
        .login("bob")
        .answer("PIN", "1234")
        .answer_with("sent to", move |_| mailed_otp(&dir))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(smtp.mails().len(), 3);
}

/// The count is in the store: a send through `tessera check` (its own engine, no daemon) and one
/// through the daemon make two, whichever process asks next.
#[test]
fn the_email_limit_holds_across_the_daemon_and_tessera_check() {
    let (smtp, fx) = email_fixture("max_per_hour = 2");
    let check = || {
        let out = fx.tessera(&["check", "alice"], "1234\n000000\n");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (stdout, stderr) = check();
    assert!(stdout.contains("REJECT"), "{stdout} {stderr}");
    assert_eq!(smtp.mails().len(), 1, "{stderr}");
    let out = pin_then_wrong_otp(&fx, "alice");
    assert_eq!(out.code, PAM_AUTH_ERR, "{out:?}");
    assert_eq!(smtp.mails().len(), 2);
    let (stdout, stderr) = check();
    assert!(
        stdout.contains("REJECT: e-mail not sent: 2 sent in the last hour (max_per_hour)"),
        "{stdout} {stderr}"
    );
    assert!(
        stderr.contains("Too many codes sent in the last hour"),
        "{stderr}"
    );
    assert_eq!(smtp.mails().len(), 2);
    let out = fx.login("alice").answer("PIN", "1234").run();
    assert_eq!(out.code, PAM_AUTH_ERR, "{out:?}");
    assert_eq!(smtp.mails().len(), 2);
}

/// Like a failed mail (`a_failed_email_still_opens_the_hotp_challenge`): the user's other token
/// still opens its challenge when the e-mail limit is reached.
#[test]
fn an_email_over_its_limit_still_opens_the_hotp_challenge() {
    let (smtp, fx) = email_fixture("max_per_hour = 1");
    let h = Tok::hotp("H1", "alice", "1234");
    fx.add(&h);
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer(
            "a****@example.org or Please enter your otp value: ",
            &h.hotp_at(0),
        )
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(smtp.mails().len(), 1);
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer("Please enter your otp value: ", &h.hotp_at(1))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(errors(&out), [TOO_MANY]);
    assert_eq!(out.prompts()[1], "Please enter your otp value: ");
    assert_eq!(smtp.mails().len(), 1);
    // Challenges (any order): E1 and H1 the first time, H1 alone the second.
    let ch = fx.challenges();
    let of = |serial: &str| ch.iter().filter(|c| c.serial == serial).count();
    assert_eq!(
        (of("H1"), of("E1")),
        (2, 1),
        "no E1 challenge the second time: {ch:?}"
    );
}

// ---- SMS ----

/// A fixture whose SMS gateway is `gw` at `path` (`extra`: more `[sms]` keys), with alice's SMS
/// token S1 (PIN 1234).
fn sms_fixture(gw: &Fake, path: &str, extra: &str) -> Fixture {
    let fx = Fixture::new(&sms_config(&format!("{}{path}", gw.url()), extra));
    fx.add(&sms_tok("S1", "alice", "1234"));
    fx
}

fn sms_config(url: &str, extra: &str) -> String {
    // The recording gateway listens on 127.0.0.1 without TLS.
    format!("[sms]\nurl = \"{url}\"\nallow_plain_http = true\n{extra}\n")
}

fn sms_login_with_recorded_otp(fx: &Fixture, gw: &Fake, pick: fn(&Seen) -> String) -> Outcome {
    let reqs = gw.seen.clone();
    fx.login("alice")
        .answer("PIN", "1234")
        .answer_with(
            "Please enter the OTP sent to +** *** ***4567: ",
            move |_| {
                let r = reqs.lock().unwrap();
                assert_eq!(r.len(), 1, "the gateway had the request before the prompt");
                digits_in(&pick(&r[0]), 6).unwrap()
            },
        )
        .run()
}

/// Security review: the module took HTTP_PROXY & co. from the caller's environment (under `su`,
/// the invoking user's), so a local user could read SMS OTPs sent to a plain-http gateway.
#[test]
fn an_sms_otp_never_goes_to_a_proxy_from_the_environment() {
    let gw = gateway(200, "OK");
    let proxy = FakeProxy::start();
    let fx = sms_fixture(&gw, "/send", "");
    let (status, err) = pamtester_env(&fx, "alice", &["1234", "000000"], &proxy.env());
    assert!(!status.success(), "{err}");
    assert_eq!(
        proxy.seen(),
        Vec::<String>::new(),
        "the proxy saw the OTP: {err}"
    );
    assert_eq!(
        gw.requests().len(),
        1,
        "the gateway got the OTP directly: {err}"
    );
}

/// `[sms] proxy`, set in the config, is the one way to send through a proxy.
#[test]
fn the_sms_proxy_comes_from_the_config() {
    let proxy = FakeProxy::start();
    // The gateway's host does not resolve: only a proxy can take the request.
    let fx = Fixture::new(&sms_config(
        "http://sms-gateway.invalid/send",
        &format!("proxy = \"{}\"\n", proxy.url()),
    ));
    fx.add(&sms_tok("S1", "alice", "1234"));
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer("Please enter the OTP sent to", "000000")
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR, "{out:?}");
    let seen = proxy.seen();
    assert_eq!(
        seen[0], "CONNECT sms-gateway.invalid:80 HTTP/1.1",
        "{seen:?}"
    );
    assert!(seen[1].starts_with("POST /send"), "{seen:?}");
}

#[test]
fn sms_pin_posts_the_otp_to_the_gateway_as_a_form() {
    let gw = gateway(200, "OK");
    let fx = sms_fixture(
        &gw,
        "/send",
        "[sms.headers]\nAuthorization = \"Bearer t0ken\"\n",
    );
    let out = sms_login_with_recorded_otp(&fx, &gw, |r| field(r, "text"));
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    let r = &gw.requests()[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/send"));
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(r.header("authorization"), Some("Bearer t0ken"));
    assert_eq!(field(r, "phone"), PHONE);
    assert!(field(r, "text").starts_with("Your one-time password is "));
    assert_eq!(fx.challenges()[0].state, "answered");
}

#[test]
fn sms_by_get_with_placeholders_in_url_and_query() {
    let gw = gateway(200, "queued");
    let fx = sms_fixture(
        &gw,
        "/api?to={phone}",
        "method = \"GET\"\nsuccess_contains = \"queued\"\n[sms.parameters]\nmsg = \"code {otp}\"\n",
    );
    let out = sms_login_with_recorded_otp(&fx, &gw, |r| field(r, "msg"));
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    let r = &gw.requests()[0];
    assert_eq!(r.method, "GET");
    assert_eq!(r.path, "/api");
    assert_eq!(field(r, "to"), PHONE);
    assert!(field(r, "msg").starts_with("code "));
}

#[test]
fn sms_as_json_body() {
    let gw = gateway(201, "{}");
    let fx = sms_fixture(
        &gw,
        "/json",
        "body = \"json\"\n[sms.parameters]\nnumber = \"{phone}\"\ncontent = \"{otp}\"\n",
    );
    let out = sms_login_with_recorded_otp(&fx, &gw, |r| r.body.clone());
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    let r = &gw.requests()[0];
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["number"], PHONE);
    assert_eq!(v["content"].as_str().unwrap().len(), 6);
}

/// Issue 12.6: `[sms] max_per_hour`, through the recording gateway.
#[test]
fn sms_sends_stop_at_max_per_hour() {
    let gw = gateway(200, "OK");
    let fx = sms_fixture(&gw, "/send", "max_per_hour = 1");
    fx.add(&sms_tok("S2", "bob", "1234"));
    let out = pin_then_wrong_otp(&fx, "alice");
    assert_eq!(out.code, PAM_AUTH_ERR, "{out:?}");
    assert_eq!(gw.requests().len(), 1);
    assert_over_limit(&fx, "alice");
    assert_eq!(gw.requests().len(), 1, "no second SMS");
    let e = fx.audit().last().unwrap().clone();
    assert_eq!(
        (e.serial.as_str(), e.result.as_str(), e.reason.as_str()),
        (
            "S1",
            "reject",
            "SMS not sent: 1 sent in the last hour (max_per_hour)"
        )
    );
    // Bob's first SMS goes out.
    let out = pin_then_wrong_otp(&fx, "bob");
    assert!(errors(&out).is_empty(), "{out:?}");
    assert_eq!(gw.requests().len(), 2);
}

fn assert_failed_sms(fx: &Fixture, out: &Outcome, reason_has: &str) {
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{out:?}");
    assert_eq!(
        errors(out),
        ["The OTP could not be sent by SMS. Please try again later or contact your administrator."]
    );
    assert_eq!(out.prompts(), ["PIN: "]);
    assert!(fx.challenges().is_empty(), "no challenge left open");
    let e = fx.audit().last().unwrap().clone();
    assert_eq!((e.result.as_str(), e.serial.as_str()), ("error", "S1"));
    assert!(e.reason.contains("SMS gateway 127.0.0.1"), "{}", e.reason);
    assert!(e.reason.contains(reason_has), "{}", e.reason);
}

#[test]
fn sms_gateway_error_status_is_a_clear_failure_without_challenge() {
    let gw = gateway(500, "boom");
    let fx = sms_fixture(&gw, "/send", "");
    let out = fx.login("alice").answer("PIN", "1234").run();
    assert_failed_sms(&fx, &out, "HTTP 500");
    assert_eq!(gw.requests().len(), 1);
}

#[test]
fn sms_gateway_answer_with_the_fail_marker_is_a_failure() {
    let gw = gateway(200, "ERROR: no credit");
    let fx = sms_fixture(&gw, "/send", "fail_contains = \"ERROR\"");
    let out = fx.login("alice").answer("PIN", "1234").run();
    assert_failed_sms(&fx, &out, "no credit");
}

#[test]
fn sms_gateway_that_hangs_times_out() {
    let gw = fake(|_, _| Act::Hang);
    let fx = sms_fixture(&gw, "/send", "timeout = 1");
    let started = std::time::Instant::now();
    let out = fx.login("alice").answer("PIN", "1234").run();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_failed_sms(&fx, &out, "timeout");
}

#[test]
fn sms_without_a_gateway_url_is_a_clear_failure() {
    let fx = Fixture::new("");
    fx.add(&sms_tok("S1", "alice", "1234"));
    let out = fx.login("alice").answer("PIN", "1234").run();
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL);
    assert!(fx.challenges().is_empty());
    assert!(fx
        .audit()
        .last()
        .unwrap()
        .reason
        .contains("[sms] url is not set"));
}

// ---- OCRA ----

/// The question at the end of "Please answer the challenge 12345678: ".
fn question_in(prompt: &str) -> String {
    prompt
        .trim_end()
        .trim_end_matches(':')
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string()
}

fn ocra_login(fx: &Fixture, suite: &str, key: &[u8], counter: u64, pin: &str) -> Outcome {
    let s = Suite::parse(suite).unwrap();
    let key = key.to_vec();
    let p = s
        .pin_hash
        .map(|h| hash_pin_for(h, pin.as_bytes()).to_vec())
        .unwrap_or_default();
    fx.login("alice")
        .answer("PIN", pin)
        .answer_with("Please answer the challenge ", move |prompt| {
            let q = question_in(prompt);
            assert_eq!(q.len(), s.question_len, "{prompt}");
            let t = now() / s.time_step.unwrap_or(1);
            String::from_utf8(s.compute(&key, counter, &q, &p, b"", t).unwrap().to_vec()).unwrap()
        })
        .run()
}

#[test]
fn ocra_suites_answer_their_question() {
    for (suite, key) in [
        ("OCRA-1:HOTP-SHA1-6:QN08", KEY20),
        ("OCRA-1:HOTP-SHA256-8:QA08", KEY32),
        ("OCRA-1:HOTP-SHA512-8:QN08-T1M", KEY64),
        ("OCRA-1:HOTP-SHA256-8:QH10-T30S", KEY32),
        ("OCRA-1:HOTP-SHA256-8:QN08-PSHA1", KEY32),
        ("OCRA-1:HOTP-SHA512-8:QA10-PSHA256-T1M", KEY64),
    ] {
        let fx = Fixture::new("");
        fx.add(&ocra_tok("O1", "alice", "1234", suite, key));
        let out = ocra_login(&fx, suite, key, 0, "1234");
        assert_eq!(out.code, PAM_SUCCESS, "{suite}: {out:?}");
        assert_eq!(out.prompts()[0], "PIN: ");
        assert_eq!(fx.challenges()[0].state, "answered", "{suite}");
    }
}

#[test]
fn ocra_counter_suite_moves_the_counter_and_refuses_an_old_one() {
    let suite = "OCRA-1:HOTP-SHA512-8:C-QN08";
    let fx = Fixture::new("");
    fx.add(&ocra_tok("O1", "alice", "1234", suite, KEY64).counter(3));
    let out = ocra_login(&fx, suite, KEY64, 5, "1234");
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(fx.token("O1").counter, 6);
    let out = ocra_login(&fx, suite, KEY64, 5, "1234");
    assert_eq!(
        out.code, PAM_AUTH_ERR,
        "a counter behind the token's is refused"
    );
}

#[test]
fn ocra_wrong_response_fails() {
    let suite = "OCRA-1:HOTP-SHA1-6:QN08";
    let fx = Fixture::new("");
    fx.add(&ocra_tok("O1", "alice", "1234", suite, KEY20));
    // The response of another key.
    let out = ocra_login(&fx, suite, KEY32, 0, "1234");
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(fx.challenges()[0].state, "failed");
}

#[test]
fn ocra_question_gets_its_own_line_when_the_message_has_no_placeholder() {
    let suite = "OCRA-1:HOTP-SHA1-6:QN08";
    let fx = Fixture::new("[prompts]\nocra = \"Response: \"\n");
    fx.add(&ocra_tok("O1", "alice", "1234", suite, KEY20));
    let s = Suite::parse(suite).unwrap();
    // The answer can't be computed from this prompt: the question came in the line before.
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer("Response: ", "")
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    let info: Vec<&Msg> = out
        .messages
        .iter()
        .filter(|m| m.style == PAM_TEXT_INFO)
        .collect();
    assert_eq!(info.len(), 1, "{out:?}");
    let q = info[0].text.strip_prefix("Challenge: ").unwrap();
    assert_eq!(q.len(), 8);
    assert!(s.compute(KEY20, 0, q, b"", b"", 0).is_ok());
}

// ---- 4eyes ----

fn four_eyes_fixture(count: u32) -> (Fixture, Tok, Tok, Tok) {
    let fx = Fixture::new("");
    let bob = Tok::hotp("B1", "bob", "bpin").realm("admins");
    let carol = Tok::hotp("C1", "carol", "cpin").realm("admins").key(KEY32);
    // A token of bob's in another realm, and one of the vault user itself: neither counts.
    let bob2 = Tok::hotp("B2", "bob", "b2pin").realm("admins").key(KEY64);
    fx.add(&bob);
    fx.add(&carol);
    fx.add(&bob2);
    fx.add(
        &Tok::new(TokenType::FourEyes, "F1", "vault", "", b"")
            .no_pin()
            .info(
                serde_json::json!({"4eyes": {"realm": "admins", "count": count, "separator": " "}}),
            ),
    );
    (fx, bob, carol, bob2)
}

#[test]
fn four_eyes_succeeds_with_two_distinct_users_of_the_realm() {
    let (fx, bob, carol, _) = four_eyes_fixture(2);
    let pass = format!("bpin{} cpin{}", bob.hotp_at(0), carol.hotp_at(0));
    let out = fx.login("vault").answer("PIN", &pass).run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(fx.token("B1").counter, 1);
    assert_eq!(fx.token("C1").counter, 1);
    let e = fx.audit().last().unwrap().clone();
    assert_eq!((e.result.as_str(), e.serial.as_str()), ("accept", "F1"));
    // The OTPs are used up.
    let out = fx.login("vault").answer("PIN", &pass).run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert!(
        errors(&out).is_empty(),
        "a stranger learns nothing: {out:?}"
    );
    assert_eq!(
        fx.audit().last().unwrap().reason,
        "Only found 0 tokens in realm admins"
    );
}

#[test]
fn four_eyes_with_one_user_fails_with_privacyideas_reason_in_the_log() {
    let (fx, bob, _, bob2) = four_eyes_fixture(2);
    let out = fx
        .login("vault")
        .answer("PIN", &format!("bpin{}", bob.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(
        fx.audit().last().unwrap().reason,
        "Only found 1 tokens in realm admins"
    );
    // Two tokens of the same user are one pair of eyes.
    let pass = format!("bpin{} b2pin{}", bob.hotp_at(1), bob2.hotp_at(0));
    let out = fx.login("vault").answer("PIN", &pass).run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(
        fx.audit().last().unwrap().reason,
        "Only found 1 tokens in realm admins"
    );
    assert_eq!(fx.token("F1").fail_count, 2);
}

#[test]
fn four_eyes_with_a_wrong_otp_of_one_user_fails() {
    let (fx, bob, _, _) = four_eyes_fixture(2);
    let out = fx
        .login("vault")
        .answer("PIN", &format!("bpin{} cpin000000", bob.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(fx.token("C1").fail_count, 1);
}

// ---- realms and several challenges ----

#[test]
fn user_at_realm_selects_the_realm_when_a_separator_is_set() {
    let fx = Fixture::new("[auth]\nrealm_separator = \"@\"\n");
    let t = Tok::hotp("H1", "alice", "1234").realm("corp");
    fx.add(&t);
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(0)))
        .run();
    assert_eq!(
        out.code, PAM_AUTH_ERR,
        "alice alone is in the default realm"
    );
    let out = fx
        .login("alice@corp")
        .answer("PIN", &format!("1234{}", t.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    let e = fx.audit().last().unwrap().clone();
    assert_eq!((e.user.as_str(), e.realm.as_str()), ("alice", "corp"));
    // Without a separator, "alice@corp" is a user name of its own.
    let fx = Fixture::new("");
    fx.add(&t);
    let out = fx
        .login("alice@corp")
        .answer("PIN", &format!("1234{}", t.hotp_at(1)))
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR);
}

#[test]
fn one_pin_opens_hotp_and_email_challenges_and_either_otp_answers() {
    let (smtp, fx) = email_fixture("");
    let h = Tok::hotp("H1", "alice", "1234");
    fx.add(&h);
    // One message per token, in the order of their serials.
    let message = "Please enter the OTP sent to a****@example.org or Please enter your otp value: ";
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer(message, &h.hotp_at(0))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    let ch = fx.challenges();
    assert_eq!(ch.len(), 2);
    assert_eq!(
        ch[0].transaction_id, ch[1].transaction_id,
        "one transaction"
    );
    assert!(ch.iter().all(|c| c.state == "answered"));
    assert_eq!(smtp.mails().len(), 1);

    // Next time the mailed OTP answers.
    let dir = smtp.dir.path().to_path_buf();
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer_with(message, move |_| mailed_otp(&dir))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(fx.token("H1").counter, 1, "the HOTP was not used");
    let last = fx.audit().last().unwrap().clone();
    assert_eq!(
        (last.serial.as_str(), last.reason.as_str()),
        ("E1", "challenge answered")
    );
}

#[test]
fn a_failed_email_still_opens_the_hotp_challenge() {
    let port = free_port();
    let fx = Fixture::new(&format!(
        "[email]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\ntls = \"none\"\n"
    ));
    let h = Tok::hotp("H1", "alice", "1234");
    fx.add(&h);
    fx.add(&email_tok("E1", "alice", "1234"));
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer("Please enter your otp value: ", &h.hotp_at(0))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(errors(&out).len(), 1);
    let ch = fx.challenges();
    assert_eq!(ch.len(), 1, "only the HOTP challenge: {ch:?}");
    assert_eq!(ch[0].serial, "H1");
}

#[test]
fn sealed_challenge_data_holds_no_plaintext_otp() {
    let gw = gateway(200, "OK");
    let fx = sms_fixture(&gw, "/send", "");
    let seen: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
    let reqs = gw.seen.clone();
    let db = fx.db.clone();
    let s2 = seen.clone();
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer_with("sent to", move |_| {
            // While the challenge is open, its row holds only sealed bytes.
            let out = Command::new("sqlite3")
                .arg(&db)
                .arg("SELECT hex(data) FROM challenges WHERE state = 'open'")
                .output()
                .unwrap();
            *s2.lock().unwrap() = out.stdout;
            let r = reqs.lock().unwrap();
            digits_in(&field(&r[0], "text"), 6).unwrap()
        })
        .run();
    assert_eq!(out.code, PAM_SUCCESS);
    let hexdata = String::from_utf8(seen.lock().unwrap().clone()).unwrap();
    let hexdata = hexdata.trim();
    assert!(
        hexdata.len() > 2 * (24 + 16),
        "sealed: nonce + tag + OTP: {hexdata}"
    );
    let otp = digits_in(&field(&gw.requests()[0], "text"), 6).unwrap();
    let otp_hex: String = otp.bytes().map(|b| format!("{b:02X}")).collect();
    assert!(!hexdata.contains(&otp_hex));
}

#[test]
fn algorithms_of_ocra_match_the_token_record() {
    // The enrolled token carries the suite's hash and digits.
    let fx = Fixture::new("");
    fx.add(&ocra_tok(
        "O1",
        "alice",
        "1234",
        "OCRA-1:HOTP-SHA512-8:QN08",
        KEY64,
    ));
    let t = fx.token("O1");
    assert_eq!((t.digits, t.algorithm), (8, Algorithm::Sha512));
}

// ---- tan (recovery codes) ----

#[test]
fn tan_pin_and_code_is_accepted_once_and_another_code_works() {
    let fx = Fixture::new("");
    let (t, codes) = Tok::tan("T1", "alice", "1234", 10);
    fx.add(&t);
    let login = |code: &str| {
        fx.login("alice")
            .answer("PIN", &format!("1234{code}"))
            .run()
    };
    let out = login(&codes[3]);
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    // The same code again: refused, and the audit row says why.
    let out = login(&codes[3]);
    assert_eq!(out.code, PAM_AUTH_ERR);
    let e = fx.audit().last().unwrap().clone();
    assert_eq!(
        (e.result.as_str(), e.kind.as_str(), e.reason.as_str()),
        ("reject", "tan", "recovery code already used")
    );
    // Another code, from earlier in the list: accepted once.
    assert_eq!(login(&codes[0]).code, PAM_SUCCESS);
    assert_eq!(login(&codes[0]).code, PAM_AUTH_ERR);
    let counter = fx.token("T1").counter;
    assert_eq!(counter, 1 << 3 | 1);
    assert_eq!(tessera_engine::tokens::tan::left(10, counter), 8);
    // A wrong PIN with a good code spends nothing.
    assert_eq!(
        fx.login("alice")
            .answer("PIN", &format!("9999{}", codes[5]))
            .run()
            .code,
        PAM_AUTH_ERR
    );
    assert_eq!(login(&codes[5]).code, PAM_SUCCESS);
    // No code reaches the audit table.
    for e in fx.audit() {
        assert!(
            !codes.iter().any(|c| e.reason.contains(c.as_str())),
            "{e:?}"
        );
    }
}

#[test]
fn tan_pin_alone_opens_no_challenge_by_default() {
    let fx = Fixture::new("");
    let (t, codes) = Tok::tan("T1", "alice", "1234", 5);
    fx.add(&t);
    let out = fx.login("alice").answer("PIN", "1234").run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(out.prompts(), ["PIN: "], "no challenge: {out:?}");
    assert!(fx.challenges().is_empty());

    // With tan in challenge_response, the PIN asks for a code, which answers once.
    fx.write_config("[auth]\nchallenge_response = [\"hotp\", \"totp\", \"tan\"]\n");
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer("Please enter one of your recovery codes: ", &codes[2])
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer("recovery codes", &codes[2])
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR);
}
