//! Remote mode against a small local fake server, for what a real privacyIDEA won't do: hang,
//! garbage, HTTP 500, closed connections, refused connections, TLS name mismatch; and for the
//! flows the test server has no token for (push) or can't speak (LinOTP).

mod support;

use std::time::{Duration, Instant};
use support::remote::*;
use support::{hotp, KEY20};
use tessera_engine::auth::{Options, Verdict};

const TIMEOUT: u64 = 2;

fn accept_json() -> Act {
    json(
        200,
        r#"{"result":{"status":true,"value":true,"authentication":"ACCEPT"},"detail":{"serial":"FAKE1","type":"hotp","message":"matching 1 tokens"}}"#,
    )
}
fn reject_json(msg: &str) -> Act {
    json(
        200,
        &format!(
            r#"{{"result":{{"status":true,"value":false,"authentication":"REJECT"}},"detail":{{"message":"{msg}"}}}}"#
        ),
    )
}
fn challenge_json(tx: &str, modes: &[(&str, &str)]) -> Act {
    let multi: Vec<String> = modes
        .iter()
        .map(|(mode, msg)| {
            format!(
                r#"{{"transaction_id":"{tx}","message":"{msg}","client_mode":"{mode}","serial":"S-{mode}","type":"{}"}}"#,
                if *mode == "poll" { "push" } else { "hotp" }
            )
        })
        .collect();
    json(
        200,
        &format!(
            r#"{{"result":{{"status":true,"value":false,"authentication":"CHALLENGE"}},"detail":{{"transaction_id":"{tx}","message":"x","multi_challenge":[{}]}}}}"#,
            multi.join(",")
        ),
    )
}
fn poll_json(value: bool, status: &str) -> Act {
    json(
        200,
        &format!(
            r#"{{"result":{{"status":true,"value":{value}}},"detail":{{"challenge_status":"{status}"}}}}"#
        ),
    )
}

fn cfg_for(urls: &[&str], extra: &str) -> (tempfile::TempDir, tessera_engine::config::Config) {
    remote_config_tmp(urls, TIMEOUT, extra)
}

/// The fault rule: PAM_AUTHINFO_UNAVAIL within `timeout` + 1 s.
fn assert_unavailable_in_time(url: &str, extra: &str) -> String {
    let (_d, cfg) = cfg_for(&[url], extra);
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin755224")]);
    let t = Instant::now();
    let out = run(&cfg, "alice", &mut conv);
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(TIMEOUT + 1),
        "took {took:?} (timeout {TIMEOUT} s)"
    );
    let Verdict::Unavailable(e) = &out.verdict else {
        panic!("expected Unavailable, got {:?}", out.verdict)
    };
    assert!(
        out.events.iter().any(|e| e.result == "error"),
        "{:?}",
        out.events
    );
    e.to_string()
}

#[test]
fn a_hanging_server_is_unavailable_within_the_timeout() {
    let f = fake(|_, _| Act::Hang);
    let why = assert_unavailable_in_time(&f.url(), "");
    assert!(why.contains("no answer within"), "{why}");
    assert_eq!(f.requests().len(), 1);
}

#[test]
fn garbage_json_is_unavailable() {
    let f = fake(|_, _| json(200, "{\"result\": tru"));
    let why = assert_unavailable_in_time(&f.url(), "");
    assert!(why.contains("bad answer"), "{why}");
    let f = fake(|_, _| json(200, "<html>hello</html>"));
    assert_unavailable_in_time(&f.url(), "");
    let f = fake(|_, _| json(200, r#"{"result":{"status":true}}"#));
    assert_unavailable_in_time(&f.url(), "");
}

#[test]
fn http_500_is_unavailable() {
    let f = fake(|_, _| {
        json(
            500,
            r#"{"result":{"status":false,"error":{"code":903,"message":"boom"}}}"#,
        )
    });
    let why = assert_unavailable_in_time(&f.url(), "");
    assert!(why.contains("HTTP 500"), "{why}");
}

#[test]
fn a_closed_connection_is_unavailable() {
    let f = fake(|_, _| Act::Close);
    assert_unavailable_in_time(&f.url(), "");
}

#[test]
fn a_refused_connection_is_unavailable() {
    assert_unavailable_in_time(&refused_url(), "");
}

#[test]
fn a_server_that_never_says_hello_over_tls_is_unavailable_in_time() {
    let s = silent();
    assert_unavailable_in_time(&s.https_url(), "");
}

#[test]
fn a_tls_name_mismatch_is_unavailable() {
    let ca = test_ca("tessera test CA");
    let f = fake_tls(server_tls(&ca, &["wrong.example"]), |_, _| accept_json());
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write_file(dir.path(), "ca.pem", &ca.cert_pem);
    let why = assert_unavailable_in_time(&f.https_url(), &format!("ca_file = {ca_file:?}"));
    assert!(
        why.to_lowercase().contains("not valid for name") || why.contains("NotValidForName"),
        "{why}"
    );
    assert!(
        f.requests().is_empty(),
        "nothing may be sent to a server with the wrong name"
    );
}

#[test]
fn tls_with_the_right_name_and_ca_succeeds() {
    let ca = test_ca("tessera test CA");
    let f = fake_tls(server_tls(&ca, &["127.0.0.1", "localhost"]), |_, _| {
        accept_json()
    });
    let d = tempfile::tempdir().unwrap();
    let ca_file = write_file(d.path(), "ca.pem", &ca.cert_pem);
    let (_d2, cfg) = cfg_for(&[&f.https_url()], &format!("ca_file = {ca_file:?}"));
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin755224")]);
    let out = run(&cfg, "alice", &mut conv);
    assert!(
        matches!(out.verdict, Verdict::Accept { ref serial } if serial == "FAKE1"),
        "{:?}",
        out.verdict
    );
    assert!(!out.events.iter().any(|e| e.result == "warning"));
    // Another CA: refused.
    let other = test_ca("someone else");
    let other_file = write_file(d.path(), "other.pem", &other.cert_pem);
    assert_unavailable_in_time(&f.https_url(), &format!("ca_file = {other_file:?}"));
}

#[test]
fn verify_tls_false_accepts_any_certificate_and_warns_every_time() {
    let ca = test_ca("tessera test CA");
    let f = fake_tls(server_tls(&ca, &["wrong.example"]), |_, _| accept_json());
    let (_d, cfg) = cfg_for(&[&f.https_url()], "verify_tls = false");
    for _ in 0..2 {
        let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin755224")]);
        let out = run(&cfg, "alice", &mut conv);
        assert!(out.verdict.is_accept(), "{:?}", out.verdict);
        let w: Vec<_> = out
            .events
            .iter()
            .filter(|e| e.result == "warning")
            .collect();
        assert_eq!(w.len(), 1, "{:?}", out.events);
        assert!(
            w[0].reason.contains("verify_tls = false"),
            "{}",
            w[0].reason
        );
    }
}

#[test]
fn servers_are_tried_in_order_when_one_cant_be_reached() {
    let good = fake(|_, _| accept_json());
    let (_d, cfg) = cfg_for(&[&refused_url(), &good.url()], "");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin755224")]);
    assert!(run(&cfg, "alice", &mut conv).verdict.is_accept());

    // A hanging first server takes its share of the timeout, not all of it.
    let hang = fake(|_, _| Act::Hang);
    let (_d, cfg) = cfg_for(&[&hang.url(), &good.url()], "");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin755224")]);
    let t = Instant::now();
    let out = run(&cfg, "alice", &mut conv);
    assert!(out.verdict.is_accept(), "{:?}", out.verdict);
    assert!(
        t.elapsed() < Duration::from_secs(TIMEOUT),
        "{:?}",
        t.elapsed()
    );

    // Garbage from the first: the second decides.
    let bad = fake(|_, _| json(502, "bad gateway"));
    let (_d, cfg) = cfg_for(&[&bad.url(), &good.url()], "");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin755224")]);
    assert!(run(&cfg, "alice", &mut conv).verdict.is_accept());
}

#[test]
fn all_servers_down_stay_within_one_timeout() {
    let a = fake(|_, _| Act::Hang);
    let b = fake(|_, _| Act::Hang);
    let (_d, cfg) = cfg_for(&[&a.url(), &b.url(), &refused_url()], "");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "x")]);
    let t = Instant::now();
    let out = run(&cfg, "alice", &mut conv);
    assert!(matches!(out.verdict, Verdict::Unavailable(_)));
    assert!(
        t.elapsed() < Duration::from_secs(TIMEOUT + 1),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn the_request_carries_user_realm_pass_client_address_and_service() {
    let f = fake(|_, _| accept_json());
    let (_d, cfg) = cfg_for(&[&f.url()], "realm = \"realm1\"");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "pin &=+ 123456")]);
    assert!(run(&cfg, "alice", &mut conv).verdict.is_accept());
    let r = &f.requests()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/validate/check");
    assert_eq!(r.field("user"), Some("alice"));
    assert_eq!(r.field("realm"), Some("realm1"));
    assert_eq!(r.field("pass"), Some("pin &=+ 123456"));
    assert_eq!(r.field("client"), Some("192.0.2.7"));
    assert!(
        r.header("user-agent")
            .unwrap()
            .starts_with("tessera-tessera-test/"),
        "{:?}",
        r.headers
    );
    // A host name as rhost is not an address privacyIDEA could use: not sent.
    let mut l = login("alice");
    l.rhost = "client.example.org".into();
    let mut conv = ScriptedConv::answers(&[("PIN: ", "x")]);
    run_with(&cfg, &Options::default(), &l, &mut conv);
    assert_eq!(f.requests()[1].field("client"), None);
}

#[test]
fn a_challenge_is_shown_and_its_answer_sent_with_the_transaction_id() {
    let f = fake(|req, _| match req.field("transaction_id") {
        None => challenge_json(
            "01234567890123456789",
            &[("interactive", "please enter otp: ")],
        ),
        Some("01234567890123456789") if req.field("pass") == Some("287082") => accept_json(),
        Some(_) => reject_json("wrong otp value"),
    });
    let (_d, cfg) = cfg_for(&[&f.url()], "");
    let mut conv =
        ScriptedConv::answers(&[("PIN: ", "alicepin"), ("please enter otp: ", "287082")]);
    let out = run(&cfg, "alice", &mut conv);
    assert!(out.verdict.is_accept(), "{:?}", out.verdict);
    let results: Vec<&str> = out.events.iter().map(|e| e.result.as_str()).collect();
    assert_eq!(results, ["challenge", "accept"]);
    assert!(out.events[0].reason.contains("01234567890123456789"));
}

#[test]
fn a_server_that_keeps_challenging_is_refused_after_bounded_rounds() {
    let f = fake(|_, n| challenge_json(&format!("{n:020}"), &[("interactive", "again: ")]));
    let (_d, cfg) = cfg_for(&[&f.url()], "");
    let mut steps = vec![("PIN: ", "alicepin")];
    steps.extend(
        std::iter::repeat(("again: ", "1")).take(tessera_engine::login::remote::MAX_ROUNDS),
    );
    let mut conv = ScriptedConv::answers(&steps);
    let out = run(&cfg, "alice", &mut conv);
    assert!(
        matches!(out.verdict, Verdict::Reject { ref reason } if reason.contains("still challenging"))
    );
    assert_eq!(
        f.requests().len(),
        tessera_engine::login::remote::MAX_ROUNDS + 1
    );
}

#[test]
fn a_push_challenge_is_polled_until_confirmed_then_finished() {
    let polls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let p = polls.clone();
    let f = fake(move |req, _| {
        if req.path == "/validate/polltransaction" {
            assert_eq!(req.method, "GET");
            assert_eq!(req.field("transaction_id"), Some("55"));
            let n = p.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return if n < 2 {
                poll_json(false, "pending")
            } else {
                poll_json(true, "accept")
            };
        }
        match (req.field("transaction_id"), req.field("pass")) {
            (None, _) => challenge_json("55", &[("poll", "Please confirm on your phone")]),
            (Some("55"), Some("")) => accept_json(),
            _ => reject_json("no"),
        }
    });
    let (_d, cfg) = cfg_for(&[&f.url()], "push_timeout = 10");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin")]);
    let out = run(&cfg, "alice", &mut conv);
    assert!(out.verdict.is_accept(), "{:?}", out.verdict);
    assert_eq!(conv.infos, ["Please confirm on your phone"]);
    assert_eq!(polls.load(std::sync::atomic::Ordering::SeqCst), 3);
    let last = f.requests().pop().unwrap();
    assert_eq!(last.path, "/validate/check");
    assert_eq!(last.field("pass"), Some(""));
}

fn push_server(poll: fn() -> Act) -> Fake {
    fake(move |req, _| {
        if req.path == "/validate/polltransaction" {
            return poll();
        }
        match (req.field("transaction_id"), req.field("pass")) {
            (None, _) => challenge_json("77", &[("poll", "Confirm on your phone")]),
            (Some("77"), Some("")) => accept_json(),
            _ => reject_json("no"),
        }
    })
}

#[test]
fn a_declined_push_fails() {
    let f = push_server(|| poll_json(false, "declined"));
    let (_d, cfg) = cfg_for(&[&f.url()], "push_timeout = 10");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin")]);
    let out = run(&cfg, "alice", &mut conv);
    assert!(
        matches!(out.verdict, Verdict::Reject { ref reason } if reason.contains("declined")),
        "{:?}",
        out.verdict
    );
    assert!(!f.requests().iter().any(|r| r.field("pass") == Some("")));
}

#[test]
fn an_unconfirmed_push_fails_at_push_timeout() {
    let f = push_server(|| poll_json(false, "pending"));
    let (_d, cfg) = cfg_for(&[&f.url()], "push_timeout = 2");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin")]);
    let t = Instant::now();
    let out = run(&cfg, "alice", &mut conv);
    assert!(
        matches!(out.verdict, Verdict::Reject { ref reason } if reason.contains("push_timeout")),
        "{:?}",
        out.verdict
    );
    assert!(
        t.elapsed() < Duration::from_secs(2 + 1),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn a_push_server_that_hangs_while_polled_is_unavailable_in_time() {
    let f = push_server(|| Act::Hang);
    let (_d, cfg) = cfg_for(&[&f.url()], "push_timeout = 30");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin")]);
    let t = Instant::now();
    let out = run(&cfg, "alice", &mut conv);
    assert!(
        matches!(out.verdict, Verdict::Unavailable(_)),
        "{:?}",
        out.verdict
    );
    assert!(
        t.elapsed() < Duration::from_secs(TIMEOUT + 1),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn otp_and_push_together_prompt_and_an_empty_answer_means_confirmed() {
    let server = || {
        fake(|req, _| {
            if req.path == "/validate/polltransaction" {
                return poll_json(true, "accept");
            }
            match (req.field("transaction_id"), req.field("pass")) {
                (None, _) => challenge_json(
                    "88",
                    &[
                        ("interactive", "please enter otp: "),
                        ("poll", "Confirm on your phone"),
                    ],
                ),
                (Some("88"), Some("")) | (Some("88"), Some("359152")) => accept_json(),
                _ => reject_json("no"),
            }
        })
    };
    // Empty answer: polled, then finished with an empty pass.
    let f = server();
    let (_d, cfg) = cfg_for(&[&f.url()], "push_timeout = 5");
    let mut conv = ScriptedConv::answers(&[
        ("PIN: ", "alicepin"),
        (
            "please enter otp (or press Enter after confirming on your phone): ",
            "",
        ),
    ]);
    assert!(run(&cfg, "alice", &mut conv).verdict.is_accept());
    assert_eq!(conv.infos, ["Confirm on your phone"]);
    let paths: Vec<String> = f.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/validate/check",
            "/validate/polltransaction",
            "/validate/check"
        ]
    );
    // A typed answer goes straight to the server, no polling.
    let f = server();
    let (_d, cfg) = cfg_for(&[&f.url()], "push_timeout = 5");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin"), ("please enter otp", "359152")]);
    assert!(run(&cfg, "alice", &mut conv).verdict.is_accept());
    assert!(!f
        .requests()
        .iter()
        .any(|r| r.path == "/validate/polltransaction"));
}

#[test]
fn unknown_user_error_904_is_a_plain_rejection() {
    let f = fake(|_, _| {
        json(
            400,
            r#"{"result":{"status":false,"error":{"code":904,"message":"ERR904: The user can not be found in any resolver in this realm!"}},"detail":null}"#,
        )
    });
    let (_d, cfg) = cfg_for(&[&f.url()], "fallback = \"local\"");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "whatever123456")]);
    let out = run(&cfg, "mallory", &mut conv);
    assert!(
        matches!(out.verdict, Verdict::Reject { .. }),
        "{:?}",
        out.verdict
    );
    assert!(out.events.iter().any(|e| e.reason.contains("error 904")));
}

#[test]
fn other_server_errors_are_unavailable_and_answered_servers_get_no_fallback() {
    let f = fake(|_, _| {
        json(
            400,
            r#"{"result":{"status":false,"error":{"code":907,"message":"ERR907: resolver failed"}}}"#,
        )
    });
    let (_d, cfg) = cfg_for(&[&f.url()], "fallback = \"local\"");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin755224")]);
    let out = run(&cfg, "alice", &mut conv);
    let Verdict::Unavailable(e) = &out.verdict else {
        panic!("{:?}", out.verdict)
    };
    assert!(e.to_string().contains("907"), "{e}");
}

#[test]
fn a_failcounter_rejection_is_reported_as_locked() {
    let f = fake(|_, _| reject_json("matching 1 tokens, Failcounter exceeded"));
    let (_d, cfg) = cfg_for(&[&f.url()], "");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin755224")]);
    assert!(matches!(
        run(&cfg, "alice", &mut conv).verdict,
        Verdict::Locked { .. }
    ));
}

#[test]
fn use_first_pass_and_try_first_pass_take_the_earlier_password() {
    let f = fake(|req, _| match req.field("pass") {
        Some("alicepin755224") => accept_json(),
        _ => reject_json("wrong otp pin"),
    });
    let (_d, cfg) = cfg_for(&[&f.url()], "");
    let mut l = login("alice");
    l.authtok = Some(tessera_engine::crypto::secret(b"alicepin755224"));
    let use_first = Options {
        use_first_pass: true,
        ..Options::default()
    };
    let mut conv = ScriptedConv::answers(&[]);
    assert!(run_with(&cfg, &use_first, &l, &mut conv)
        .verdict
        .is_accept());

    // try_first_pass: a refused PAM_AUTHTOK leads to the prompt.
    l.authtok = Some(tessera_engine::crypto::secret(b"unix-password"));
    let try_first = Options {
        try_first_pass: true,
        ..Options::default()
    };
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin755224")]);
    assert!(run_with(&cfg, &try_first, &l, &mut conv)
        .verdict
        .is_accept());
    // use_first_pass without one: refused, nothing asked, nothing sent.
    let before = f.requests().len();
    l.authtok = None;
    let mut conv = ScriptedConv::answers(&[]);
    assert!(matches!(
        run_with(&cfg, &use_first, &l, &mut conv).verdict,
        Verdict::Reject { .. }
    ));
    assert_eq!(f.requests().len(), before);
}

#[test]
fn a_null_answer_is_a_conversation_error() {
    let f = fake(|_, _| accept_json());
    let (_d, cfg) = cfg_for(&[&f.url()], "");
    let mut conv = ScriptedConv::new(&[("PIN: ", None)]);
    assert!(matches!(
        run(&cfg, "alice", &mut conv).verdict,
        Verdict::ConversationFailed(_)
    ));
    assert!(f.requests().is_empty());
}

// ------------------------------------------------------------------ fallback = "local"

#[test]
fn fallback_local_decides_on_the_same_pass_when_no_server_answers() {
    let (_d, cfg) = cfg_for(&[&refused_url()], "fallback = \"local\"");
    local_store_with_hotp(&cfg, "alice", "LOCAL_ALICE", "alicepin");
    // PIN+OTP typed once: the local engine checks it without asking again.
    let mut conv = ScriptedConv::answers(&[("PIN: ", &format!("alicepin{}", hotp(KEY20, 0)))]);
    let out = run(&cfg, "alice", &mut conv);
    assert!(
        matches!(out.verdict, Verdict::Accept { ref serial } if serial == "LOCAL_ALICE"),
        "{:?}",
        out.verdict
    );
    // Both the remote failure and the local decision are audited, in that order.
    let audit = audit_of(&cfg, "alice");
    let reasons: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e.result.as_str(), e.reason.as_str()))
        .collect();
    assert!(
        reasons[0].0 == "error" && reasons[0].1.contains("falling back"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1].0, "accept", "{reasons:?}");

    // The PIN alone: the local challenge follows.
    let mut conv = ScriptedConv::answers(&[
        ("PIN: ", "alicepin"),
        ("Please enter your otp value: ", &hotp(KEY20, 1)),
    ]);
    assert!(run(&cfg, "alice", &mut conv).verdict.is_accept());
    // A wrong one fails like a local failure.
    let mut conv = ScriptedConv::answers(&[("PIN: ", &format!("wrongpin{}", hotp(KEY20, 2)))]);
    assert!(matches!(
        run(&cfg, "alice", &mut conv).verdict,
        Verdict::Reject { .. }
    ));
}

#[test]
fn fallback_local_after_a_hang_stays_in_time() {
    let f = fake(|_, _| Act::Hang);
    let (_d, cfg) = cfg_for(&[&f.url()], "fallback = \"local\"");
    local_store_with_hotp(&cfg, "alice", "LOCAL_ALICE", "alicepin");
    let mut conv = ScriptedConv::answers(&[("PIN: ", &format!("alicepin{}", hotp(KEY20, 0)))]);
    let t = Instant::now();
    let out = run(&cfg, "alice", &mut conv);
    assert!(out.verdict.is_accept(), "{:?}", out.verdict);
    assert!(
        t.elapsed() < Duration::from_secs(TIMEOUT + 1),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn fallback_local_without_a_local_store_is_unavailable() {
    let (_d, cfg) = cfg_for(&[&refused_url()], "fallback = \"local\"");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin755224")]);
    assert!(matches!(
        run(&cfg, "alice", &mut conv).verdict,
        Verdict::Unavailable(_)
    ));
}

#[test]
fn remote_attempts_are_written_to_the_local_audit_table_when_there_is_one() {
    let f = fake(|_, _| reject_json("wrong otp pin"));
    let (_d, cfg) = cfg_for(&[&f.url()], "");
    local_store_with_hotp(&cfg, "alice", "LOCAL_ALICE", "alicepin");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "nope123456")]);
    let out = run(&cfg, "alice", &mut conv);
    assert!(matches!(out.verdict, Verdict::Reject { .. }));
    let audit = audit_of(&cfg, "alice");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].result, "reject");
    assert!(audit[0].reason.contains("wrong otp pin") && audit[0].reason.contains(&f.url()));
    assert_eq!(audit[0].service, "tessera-test");
    assert_eq!(audit[0].rhost, "192.0.2.7");
    assert!(!audit[0].reason.contains("nope123456"));
}

// ------------------------------------------------------------------ LinOTP

#[test]
fn linotp_challenge_uses_transactionid() {
    let f = fake(|req, _| match req.field("transactionid") {
        None => json(
            200,
            r#"{"version":"LinOTP 2.12","jsonrpc":"2.0802","detail":{"transactionid":"675478473928","message":"sms submitted","state":"675478473928"},"result":{"status":true,"value":false},"id":0}"#,
        ),
        Some("675478473928") if req.field("pass") == Some("969429") => json(
            200,
            r#"{"version":"LinOTP 2.12","jsonrpc":"2.0802","result":{"status":true,"value":true},"id":0}"#,
        ),
        _ => json(
            200,
            r#"{"version":"LinOTP 2.12","jsonrpc":"2.0802","result":{"status":true,"value":false},"id":0}"#,
        ),
    });
    let (_d, cfg) = cfg_for(&[&f.url()], "dialect = \"linotp\"");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin"), ("sms submitted: ", "969429")]);
    assert!(run(&cfg, "alice", &mut conv).verdict.is_accept());
    assert_eq!(f.requests()[1].field("transaction_id"), None);
    // A LinOTP error (status false) is a server fault.
    let f = fake(|_, _| {
        json(
            200,
            r#"{"version":"LinOTP 2.12","jsonrpc":"2.0802","result":{"status":false,"error":{"code":-311,"message":"no license"}},"id":0}"#,
        )
    });
    let (_d, cfg) = cfg_for(&[&f.url()], "dialect = \"linotp\"");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin755224")]);
    assert!(matches!(
        run(&cfg, "alice", &mut conv).verdict,
        Verdict::Unavailable(_)
    ));
}

#[test]
fn linotp_simplecheck_smileys() {
    let f = fake(|req, _| {
        assert_eq!(req.path, "/linotp/validate/simplecheck");
        match (req.field("transactionid"), req.field("pass")) {
            (None, Some("alicepin")) => Act::Reply(200, ":-( 123456789012 sms submitted".into()),
            (None, Some("alicepin755224")) => Act::Reply(200, ":-)".into()),
            (Some("123456789012"), Some("287082")) => Act::Reply(200, ":-)".into()),
            _ => Act::Reply(200, ":-(".into()),
        }
    });
    let url = format!("{}/linotp/validate/simplecheck", f.url());
    let (_d, cfg) = cfg_for(&[&url], "dialect = \"linotp\"");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin755224")]);
    assert!(run(&cfg, "alice", &mut conv).verdict.is_accept());
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin"), ("sms submitted", "287082")]);
    assert!(run(&cfg, "alice", &mut conv).verdict.is_accept());
    let mut conv = ScriptedConv::answers(&[("PIN: ", "bad")]);
    assert!(matches!(
        run(&cfg, "alice", &mut conv).verdict,
        Verdict::Reject { .. }
    ));
}

#[test]
fn a_server_that_hangs_on_the_challenge_answer_is_unavailable_in_time() {
    let f = fake(|req, _| match req.field("transaction_id") {
        None => challenge_json("66", &[("interactive", "please enter otp: ")]),
        Some(_) => Act::Hang,
    });
    let (_d, cfg) = cfg_for(&[&f.url()], "fallback = \"local\"");
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin"), ("please enter otp", "123456")]);
    let t = Instant::now();
    let out = run(&cfg, "alice", &mut conv);
    // The answer belonged to the server's challenge: no local fallback, just unavailable.
    assert!(
        matches!(out.verdict, Verdict::Unavailable(_)),
        "{:?}",
        out.verdict
    );
    assert!(
        t.elapsed() < Duration::from_secs(TIMEOUT + 1),
        "{:?}",
        t.elapsed()
    );
}

/// The circuit breaker: a server that hangs costs one timeout, then the daemon's next logins
/// skip it (the next server answers at once) for `down_for` seconds, after which one login tries
/// it again. A login without the daemon's state (`OneLogin`) tries it every time.
#[test]
fn a_dead_server_costs_one_timeout_then_is_skipped_for_a_while() {
    let dead = fake(|_, _| Act::Hang);
    let alive = fake(|_, _| accept_json());
    let (_d, cfg) = cfg_for(&[&dead.url(), &alive.url()], "down_after = 1\ndown_for = 2");
    let host = tessera_engine::login::Host::default();
    let login = |host: Option<&tessera_engine::login::Host>| {
        let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin755224")]);
        let t = Instant::now();
        let out = match host {
            Some(h) => run_hosted(h, &cfg, "alice", &mut conv),
            None => run(&cfg, "alice", &mut conv),
        };
        assert!(out.verdict.is_accept(), "{:?}", out.verdict);
        t.elapsed()
    };
    // First login: the dead server takes its share of the timeout, the second one accepts.
    assert!(login(Some(&host)) >= Duration::from_millis(900));
    assert_eq!(dead.requests().len(), 1);
    // Skipped now: at once, and the dead server sees nothing.
    let took = login(Some(&host));
    assert!(took < Duration::from_millis(500), "{took:?}");
    assert_eq!(dead.requests().len(), 1);
    // A login on its own has no breaker: it tries the dead server again.
    login(None);
    assert_eq!(dead.requests().len(), 2);
    // After down_for, the daemon's next login tries it once more.
    std::thread::sleep(Duration::from_millis(2100));
    login(Some(&host));
    assert_eq!(dead.requests().len(), 3);
}

/// With the only server skipped, a login gets PAM_AUTHINFO_UNAVAIL (or the fallback) at once,
/// and the log says why.
#[test]
fn with_every_server_skipped_the_login_is_unavailable_at_once() {
    let dead = fake(|_, _| Act::Hang);
    let (_d, cfg) = cfg_for(&[&dead.url()], "down_after = 2\ndown_for = 30");
    let host = tessera_engine::login::Host::default();
    for _ in 0..2 {
        let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin755224")]);
        let out = run_hosted(&host, &cfg, "alice", &mut conv);
        assert!(
            matches!(out.verdict, Verdict::Unavailable(_)),
            "{:?}",
            out.verdict
        );
    }
    assert_eq!(dead.requests().len(), 2);
    let mut conv = ScriptedConv::answers(&[("PIN: ", "alicepin755224")]);
    let t = Instant::now();
    let out = run_hosted(&host, &cfg, "alice", &mut conv);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    match out.verdict {
        Verdict::Unavailable(e) => assert!(e.to_string().contains("skipped for"), "{e}"),
        v => panic!("{v:?}"),
    }
    assert_eq!(dead.requests().len(), 2, "not asked again");
}

/// Offline values are hashes anyone at the prompt could guess at while no server answers:
/// each pass that matches none counts a failure on its source, and at `max_fail` the source is
/// refused before any value is looked at, the right pass too. The owner from another source
/// still opens with a value. (passlib's hash of "davepin" + HOTP 287082, made by privacyIDEA.)
#[test]
fn guesses_at_offline_values_count_and_lock_their_source() {
    const DAVE_1: &str = "$pbkdf2-sha512$1000$7R2jNCYEoJSScg$B.NS8y855bIJdAyu2VfCWtq0tcjGzRE67KmcqKISYM3QyQgrgZebppxBYB.cSz9.Bkc6jTHqLdIu4N8CHNvZdA";
    // A port nothing listens on: every exchange is refused at once.
    let (_dir, cfg) = cfg_for(&["http://127.0.0.1:9"], "offline = true\n");
    let mut cfg = cfg;
    cfg.auth.max_fail = 3;
    let store = tessera_engine::store::SqliteStore::create(&cfg.store.path, 2000).unwrap();
    use tessera_engine::store::Store;
    store
        .write(|tx| {
            tx.put_offline(
                &tessera_engine::store::OfflineBatch {
                    serial: "OFF1".into(),
                    user: "dave".into(),
                    realm: String::new(),
                    refill_token: "r".into(),
                    values: vec![(1, DAVE_1.into())],
                },
                true,
            )
        })
        .unwrap();
    let from = |rhost: &str, pass: &str| {
        let mut l = login("dave");
        l.rhost = rhost.into();
        let mut conv = ScriptedConv::passes(&[pass]).unasked_ok();
        run_with(&cfg, &Options::default(), &l, &mut conv)
    };
    for _ in 0..3 {
        let out = from("203.0.113.9", "davepin000000");
        assert!(matches!(out.verdict, Verdict::Unavailable(_)), "{out:?}");
    }
    assert_eq!(
        store
            .standing("dave", "", "rhost=203.0.113.9", 0)
            .unwrap()
            .source
            .map(|c| c.0),
        Some(3)
    );
    let out = from("203.0.113.9", "davepin287082");
    assert!(
        matches!(out.verdict, Verdict::SourceLocked { .. }),
        "{out:?}"
    );
    let out = from("192.0.2.7", "davepin287082");
    assert!(out.verdict.is_accept(), "{out:?}");
}
