//! Issue 2's OTP and challenge-response flows through the real libpam: one test per rule.

mod support;

use std::time::Duration;
use support::*;
use tessera_engine::auth::{Login, SystemClock, Verdict};
use tessera_engine::config::Config;
use tessera_engine::crypto::StoreKey;
use tessera_engine::login::LocalEngine;
use tessera_engine::store::{ChallengeRecord, SqliteStore, Store};
use tessera_engine::tokens::Algorithm;

const CHALLENGE: &str = "Please enter your otp value: ";

// ---- PIN+OTP in one pass ----

#[test]
fn pin_and_otp_in_one_pass_succeeds() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(out.messages, [Msg::prompt("PIN: ")]);
    assert_eq!(fx.token("H1").counter, 1);
}

#[test]
fn the_same_hotp_value_is_accepted_once() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let pass = format!("1234{}", t.hotp_at(0));
    assert_eq!(
        fx.login("alice").answer("PIN", &pass).run().code,
        PAM_SUCCESS
    );
    assert_eq!(
        fx.login("alice").answer("PIN", &pass).run().code,
        PAM_AUTH_ERR
    );
    assert_eq!(fx.token("H1").counter, 1);
}

#[test]
fn a_later_hotp_inside_the_window_succeeds_and_moves_the_counter() {
    let fx = Fixture::new("[auth]\nhotp_window = 10\n");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(7)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS);
    assert_eq!(
        fx.token("H1").counter,
        8,
        "the counter moves past the OTP used"
    );
    // The presses skipped on the way are now behind the counter.
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(5)))
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    // The edge of the window from the new counter (8 + 10 = 18) still works.
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(18)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS);
    assert_eq!(fx.token("H1").counter, 19);
}

#[test]
fn an_hotp_behind_the_counter_or_beyond_the_window_fails() {
    let fx = Fixture::new("[auth]\nhotp_window = 3\n");
    let t = Tok::hotp("H1", "alice", "1234").counter(5);
    fx.add(&t);
    for c in [0, 4, 9, 20] {
        let out = fx
            .login("alice")
            .answer("PIN", &format!("1234{}", t.hotp_at(c)))
            .run();
        assert_eq!(out.code, PAM_AUTH_ERR, "counter {c}");
        assert_eq!(fx.token("H1").counter, 5, "a refused OTP moves nothing");
    }
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(8)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "5 + 3 is inside the window");
    assert_eq!(fx.token("H1").counter, 9);
}

#[test]
fn hotp_codes_of_oathtool_are_accepted() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234")
        .key(KEY32)
        .algorithm(Algorithm::Sha1)
        .digits(8);
    fx.add(&t);
    // oathtool prints the codes of counters 0..=2 (HOTP in oathtool is always SHA-1).
    let codes = oathtool(&["-d", "8", "-c", "0", "-w", "2", &hex(KEY32)]);
    let codes: Vec<&str> = codes.lines().collect();
    assert_eq!(codes.len(), 3);
    for (c, code) in codes.iter().enumerate() {
        assert_eq!(*code, t.hotp_at(c as u64), "engine and oathtool agree");
        let out = fx
            .login("alice")
            .answer("PIN", &format!("1234{code}"))
            .run();
        assert_eq!(out.code, PAM_SUCCESS, "counter {c}");
    }
}

/// TOTP in every supported shape, with codes computed by oathtool at the moment of the login;
/// each code is accepted once.
#[test]
fn totp_codes_of_oathtool_are_accepted_once() {
    let shapes: [(Algorithm, &str, &[u8], u32, u64); 6] = [
        (Algorithm::Sha1, "sha1", KEY20, 6, 30),
        (Algorithm::Sha1, "sha1", KEY20, 8, 60),
        (Algorithm::Sha256, "sha256", KEY32, 8, 60),
        (Algorithm::Sha256, "sha256", KEY32, 6, 30),
        (Algorithm::Sha512, "sha512", KEY64, 8, 30),
        (Algorithm::Sha512, "sha512", KEY64, 6, 60),
    ];
    for (alg, name, key, digits, period) in shapes {
        let what = format!("{name} {digits} digits {period} s");
        let fx = Fixture::new("");
        let t = Tok::totp("T1", "alice", "1234")
            .key(key)
            .algorithm(alg)
            .digits(digits)
            .period(period);
        fx.add(&t);
        let code = oathtool(&[
            &format!("--totp={name}"),
            "-d",
            &digits.to_string(),
            "-s",
            &period.to_string(),
            &hex(key),
        ]);
        assert_eq!(code.len(), digits as usize);
        let step = now() / period;
        assert!(
            (step.saturating_sub(1)..=step).any(|s| t.hotp_at(s) == code),
            "{what}: oathtool's code is the engine's code of this step"
        );
        let pass = format!("1234{code}");
        let out = fx.login("alice").answer("PIN", &pass).run();
        assert_eq!(out.code, PAM_SUCCESS, "{what}");
        let counter = fx.token("T1").counter;
        assert!(
            counter == step + 1 || counter == step,
            "{what}: counter {counter}"
        );
        let out = fx.login("alice").answer("PIN", &pass).run();
        assert_eq!(out.code, PAM_AUTH_ERR, "{what}: the same TOTP twice");
        assert_eq!(fx.token("T1").counter, counter);
    }
}

#[test]
fn a_totp_of_a_step_before_the_last_used_one_fails() {
    let fx = Fixture::new("[auth]\ntotp_window = 1\n");
    let t = Tok::totp("T1", "alice", "1234");
    fx.add(&t);
    let step = now() / 30;
    // The code of the next step is inside the window; once used, the current step is behind.
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(step + 1)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS);
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(step)))
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    // Three steps ahead is outside the window.
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(step + 4)))
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR);
}

// ---- challenge response ----

#[test]
fn pin_alone_of_a_challenge_response_token_sends_a_challenge_and_the_otp_alone_answers_it() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer(CHALLENGE, &t.hotp_at(0))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(out.messages, [Msg::prompt("PIN: "), Msg::prompt(CHALLENGE)]);
    assert_eq!(fx.token("H1").counter, 1);
    let ch = fx.challenges();
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].serial, "H1");
    assert_eq!(ch[0].state, "answered");
    assert_eq!(ch[0].transaction_id.len(), 20);
    assert!(ch[0].transaction_id.bytes().all(|b| b.is_ascii_digit()));
}

#[test]
fn a_totp_token_answers_a_challenge_too() {
    let fx = Fixture::new("");
    let t = Tok::totp("T1", "alice", "1234");
    fx.add(&t);
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer(CHALLENGE, &t.hotp_at(now() / 30))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
}

#[test]
fn a_wrong_answer_to_a_challenge_fails() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let wrong = if t.hotp_at(0) == "000000" {
        "000001"
    } else {
        "000000"
    };
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer(CHALLENGE, wrong)
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(fx.token("H1").counter, 0);
    assert_eq!(fx.token("H1").fail_count, 1);
    assert_eq!(fx.challenges()[0].state, "failed");
    // The PIN+OTP pass typed as the answer is not the OTP alone either.
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer(CHALLENGE, &format!("1234{}", t.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR);
}

#[test]
fn an_expired_challenge_fails() {
    let fx = Fixture::new("[auth]\nchallenge_validity = 1\n");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let late = Reply::After(Duration::from_millis(2100), t.hotp_at(0).into_bytes());
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .reply(CHALLENGE, late)
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(fx.challenges()[0].state, "expired");
    assert_eq!(fx.token("H1").counter, 0, "a late answer uses up nothing");
    assert!(fx
        .audit()
        .iter()
        .any(|e| e.result == "reject" && e.reason.contains("expired")));
}

#[test]
fn a_challenge_left_open_by_a_cut_off_login_is_expired_by_the_next_one() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    // What a login killed between the challenge and its answer leaves behind.
    let stale = ChallengeRecord {
        transaction_id: "00000000000000000001".into(),
        serial: "H1".into(),
        user: "alice".into(),
        realm: fx.token("H1").realm,
        created: now() - 600,
        expires: now() - 480,
        state: tessera_engine::store::ChallengeState::Open,
        data: None,
    };
    fx.store().write(|tx| tx.insert_challenge(&stale)).unwrap();
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer(CHALLENGE, &t.hotp_at(0))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    let states: Vec<(String, String)> = fx
        .challenges()
        .into_iter()
        .map(|c| (c.transaction_id, c.state.to_string()))
        .collect();
    assert!(
        states.contains(&("00000000000000000001".into(), "expired".into())),
        "{states:?}"
    );
    assert!(fx.store().list_challenges(false).unwrap().is_empty());
}

#[test]
fn an_answered_challenge_cannot_be_answered_again() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer(CHALLENGE, &t.hotp_at(0))
        .run();
    assert_eq!(out.code, PAM_SUCCESS);
    let ch = fx.challenges();
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].state, "answered");
    assert!(fx.store().list_challenges(false).unwrap().is_empty());

    // A second answer to the same transaction, through the engine, with a fresh valid OTP.
    let cfg = Config::load(&fx.config).unwrap();
    let store = SqliteStore::open(&fx.db, 2000).unwrap();
    let key = StoreKey::load(&fx.key_file).unwrap();
    let engine = LocalEngine::new(&cfg, &store, &key, &SystemClock);
    let login = Login {
        service: "engine".into(),
        user: "alice".into(),
        ..Login::default()
    };
    for otp in [t.hotp_at(1), t.hotp_at(0)] {
        let out = engine.answer(&login, &ch[0].transaction_id, otp.as_bytes());
        assert!(
            matches!(out.verdict, Verdict::Reject { .. }),
            "{:?}",
            out.verdict
        );
    }
    assert_eq!(store.get_token("H1").unwrap().counter, 1);
}

#[test]
fn pin_alone_of_a_token_type_without_challenge_response_fails() {
    let fx = Fixture::new("[auth]\nchallenge_response = [\"totp\"]\n");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let out = fx.login("alice").answer("PIN", "1234").run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(out.messages, [Msg::prompt("PIN: ")], "no challenge");
    assert!(fx.challenges().is_empty());
    // PIN+OTP still works for this token.
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(0)))
        .run();
    assert_eq!(out.code, PAM_SUCCESS);
}

#[test]
fn pin_alone_of_a_pw_token_fails() {
    let fx = Fixture::new("");
    fx.add(&Tok::pw("P1", "alice", "1234", "static-pw"));
    let out = fx.login("alice").answer("PIN", "1234").run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert!(fx.challenges().is_empty());
    let out = fx.login("alice").answer("PIN", "1234static-pw").run();
    assert_eq!(out.code, PAM_SUCCESS, "PIN + static password");
    let out = fx.login("alice").answer("PIN", "1234static-pw").run();
    assert_eq!(out.code, PAM_SUCCESS, "a static password may be used again");
}

#[test]
fn spass_pin_alone_succeeds() {
    let fx = Fixture::new("");
    fx.add(&Tok::spass("S1", "alice", "simple-pass"));
    let out = fx.login("alice").answer("PIN", "simple-pass").run();
    assert_eq!(out.code, PAM_SUCCESS);
    assert_eq!(out.messages, [Msg::prompt("PIN: ")]);
    let out = fx.login("alice").answer("PIN", "simple-pas").run();
    assert_eq!(out.code, PAM_AUTH_ERR);
}

/// Two challenge-response tokens with one PIN: one transaction, one row per token, and the
/// OTP of either answers it.
fn two_tokens_one_pin(answer_with_second: bool) {
    let fx = Fixture::new("");
    let a = Tok::hotp("H1", "alice", "1234");
    let b = Tok::hotp("H2", "alice", "1234").key(KEY32);
    fx.add(&a);
    fx.add(&b);
    let (answering, other) = if answer_with_second {
        (&b, &a)
    } else {
        (&a, &b)
    };
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer(CHALLENGE, &answering.hotp_at(0))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    let ch = fx.challenges();
    assert_eq!(ch.len(), 2, "{ch:?}");
    assert_eq!(ch[0].transaction_id, ch[1].transaction_id);
    let mut serials: Vec<&str> = ch.iter().map(|c| c.serial.as_str()).collect();
    serials.sort();
    assert_eq!(serials, ["H1", "H2"]);
    assert!(ch.iter().all(|c| c.state == "answered"), "{ch:?}");
    assert_eq!(fx.token(&answering.serial).counter, 1);
    assert_eq!(fx.token(&other.serial).counter, 0);
    assert_eq!(fx.token(&other.serial).fail_count, 0);
}

#[test]
fn two_challenge_tokens_with_one_pin_share_a_transaction_the_first_answers() {
    two_tokens_one_pin(false);
}

#[test]
fn two_challenge_tokens_with_one_pin_share_a_transaction_the_second_answers() {
    two_tokens_one_pin(true);
}

#[test]
fn the_otp_of_a_token_outside_the_transaction_does_not_answer_it() {
    let fx = Fixture::new("");
    let a = Tok::hotp("H1", "alice", "1234");
    let b = Tok::hotp("H2", "alice", "9999").key(KEY32);
    fx.add(&a);
    fx.add(&b);
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer(CHALLENGE, &b.hotp_at(0))
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR);
    assert_eq!(fx.token("H2").counter, 0);
}

#[test]
fn one_pin_of_tokens_of_two_types_asks_for_either_in_one_message() {
    let fx = Fixture::new("[prompts]\nhotp = \"Key fob code: \"\ntotp = \"App code: \"\n");
    let h = Tok::hotp("H1", "alice", "1234");
    let t = Tok::totp("T1", "alice", "1234").key(KEY32);
    fx.add(&h);
    fx.add(&t);
    let out = fx
        .login("alice")
        .answer("PIN", "1234")
        .answer("Key fob code or App code: ", &t.hotp_at(now() / 30))
        .run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    assert_eq!(out.prompts(), ["PIN: ", "Key fob code or App code: "]);
}

#[test]
fn a_token_without_a_pin_takes_the_otp_alone() {
    let fx = Fixture::new("");
    let t = Tok::hotp("H1", "alice", "").no_pin();
    fx.add(&t);
    let out = fx.login("alice").answer("PIN", &t.hotp_at(0)).run();
    assert_eq!(out.code, PAM_SUCCESS, "{out:?}");
    let out = fx
        .login("alice")
        .answer("PIN", &format!("1234{}", t.hotp_at(1)))
        .run();
    assert_eq!(out.code, PAM_AUTH_ERR, "no PIN means no PIN, not any PIN");
}
