//! The local engine's own tests: locks, challenges, TOTP steps, recovery codes, send limits,
//! and two logins at once with one code.

use super::*;
use crate::auth::{Login, Options, Verdict};
use crate::crypto::hash_pin;
use crate::delivery::OutOfBand;
use crate::error::Error;
use crate::store::SqliteStore;
use crate::testing::{FixedClock, ScriptedConv};
use crate::tokens::tan;

struct Alice;
impl Accounts for Alice {
    fn canonical(&self, name: &str) -> Option<String> {
        (name == "alice").then(|| name.to_string())
    }
}

struct Tans {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    key: StoreKey,
    codes: Vec<String>,
}

/// A store with alice's tan token T1 (PIN 1234, 10 codes of 8 digits).
fn tans() -> Tans {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tessera.db");
    let store = SqliteStore::create(&db, 2000).unwrap();
    let key = StoreKey::generate();
    let g = tan::generate(10, 8, &mut rand::rngs::OsRng).unwrap();
    let mut t = TokenRecord::new(
        "T1",
        "alice",
        "default",
        TokenType::Tan,
        key.seal("T1", &g.key),
    );
    t.digits = 8;
    t.pin_hash = Some(hash_pin(b"1234", &key.pepper()).unwrap());
    t.info.count = Some(10);
    store.insert_token(&t).unwrap();
    let codes = g
        .codes
        .iter()
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    Tans {
        _dir: dir,
        db,
        key,
        codes,
    }
}

fn login(cfg: &Config, fx: &Tans, pass: &str) -> Outcome {
    let store = SqliteStore::open(&fx.db, 5000).unwrap();
    let clock = FixedClock::at(1_000_000);
    let engine = LocalEngine::new(cfg, &store, &fx.key, &clock).with_accounts(&Alice);
    let login = Login {
        service: "test".into(),
        user: "alice".into(),
        ..Login::default()
    };
    let mut conv = ScriptedConv::passes(&[pass]);
    engine.decide(&login, &Options::default(), &mut conv)
}

fn reasons(o: &Outcome) -> Vec<String> {
    o.events.iter().map(|e| e.reason.clone()).collect()
}

/// The RFC 4226 key's HOTP (and, for TOTP, RFC 6238's SHA-1 key: the same bytes).
const RFC_KEY: &[u8] = b"12345678901234567890";

/// A store with alice's token `serial` of `kind` on the RFC key (PIN 1234, 6 digits),
/// and a login through it at the clock's time.
struct Timed {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    key: StoreKey,
    clock: FixedClock,
    cfg: Config,
}

impl Timed {
    fn new(kind: TokenType, cfg: Config, now: u64) -> Timed {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::create(&dir.path().join("tessera.db"), 2000).unwrap();
        let key = StoreKey::generate();
        let mut t = TokenRecord::new("K1", "alice", "default", kind, key.seal("K1", RFC_KEY));
        t.pin_hash = Some(hash_pin(b"1234", &key.pepper()).unwrap());
        store.insert_token(&t).unwrap();
        Timed {
            _dir: dir,
            store,
            key,
            clock: FixedClock::at(now),
            cfg,
        }
    }

    fn login(&self, conv: &mut impl Conversation) -> Outcome {
        self.login_from("", 0, conv)
    }

    /// A login from remote host `rhost`, asked for by uid `caller`.
    fn login_from(&self, rhost: &str, caller: u32, conv: &mut impl Conversation) -> Outcome {
        let login = Login {
            service: "test".into(),
            user: "alice".into(),
            rhost: rhost.into(),
            caller,
            ..Login::default()
        };
        LocalEngine::new(&self.cfg, &self.store, &self.key, &self.clock)
            .with_accounts(&Alice)
            .decide(&login, &Options::default(), conv)
    }

    fn pass(&self, pass: &str) -> Outcome {
        self.login(&mut ScriptedConv::passes(&[pass]))
    }

    fn pass_from(&self, rhost: &str, caller: u32, pass: &str) -> Outcome {
        self.login_from(rhost, caller, &mut ScriptedConv::passes(&[pass]))
    }

    /// A login that must be refused before any prompt.
    fn refused_unasked(&self) -> Outcome {
        self.refused_unasked_from("", 0)
    }

    fn refused_unasked_from(&self, rhost: &str, caller: u32) -> Outcome {
        let mut conv = ScriptedConv::passes(&["1234000000"]).unasked_ok();
        let out = self.login_from(rhost, caller, &mut conv);
        assert!(conv.prompts.is_empty(), "prompted: {:?}", conv.prompts);
        out
    }
}

fn hotp(counter: u64) -> String {
    String::from_utf8(tokens::hotp_code(tokens::Algorithm::Sha1, RFC_KEY, counter, 6).to_vec())
        .unwrap()
}

/// (Moved from tests/pam_failures.rs, where it slept 3.1 s of real time.)
/// `lock_scope = "token"`: a token whose every token is locked is refused before any
/// prompt, whatever would have been typed.
#[test]
fn a_lock_clears_after_fail_clear_timeout() {
    let mut cfg = Config::default();
    cfg.auth.max_fail = 2;
    cfg.auth.fail_clear_timeout = 2;
    cfg.auth.lock_scope = LockScope::Token;
    let fx = Timed::new(TokenType::Hotp, cfg, 1_000_000);
    for _ in 0..2 {
        assert!(matches!(
            fx.pass("1234000000").verdict,
            Verdict::Reject { .. }
        ));
    }
    let locked = fx.refused_unasked();
    assert!(
        matches!(locked.verdict, Verdict::Locked { .. }),
        "{locked:?}"
    );
    // One second after the last failure the lock still holds; two seconds after, it clears.
    fx.clock.advance(1);
    assert!(matches!(
        fx.refused_unasked().verdict,
        Verdict::Locked { .. }
    ));
    fx.clock.advance(1);
    let out = fx.pass(&format!("1234{}", hotp(0)));
    assert!(out.verdict.is_accept(), "{out:?}");
    assert_eq!(fx.store.get_token("K1").unwrap().fail_count, 0);
}

/// `lock_scope = "source"` (the default): a stranger's failures lock the stranger's source,
/// before any prompt and whatever it would type, while the owner from elsewhere logs in;
/// `fail_clear_timeout` opens the source again.
#[test]
fn a_strangers_failures_lock_the_stranger_not_the_owner() {
    let mut cfg = Config::default();
    cfg.auth.max_fail = 3;
    cfg.auth.fail_clear_timeout = 600;
    let fx = Timed::new(TokenType::Hotp, cfg, 1_000_000);
    let stranger = "203.0.113.9";
    for _ in 0..3 {
        let out = fx.pass_from(stranger, 0, "1234000000");
        assert!(matches!(out.verdict, Verdict::Reject { .. }), "{out:?}");
    }
    let out = fx.refused_unasked_from(stranger, 0);
    assert!(
        matches!(out.verdict, Verdict::SourceLocked { ref source, .. } if source == "rhost=203.0.113.9"),
        "{out:?}"
    );
    assert_eq!(out.events[0].result, AuditResult::Locked);
    // The owner, from another host: the right code logs in, and was not used up above.
    let owner = fx.pass_from("192.0.2.1", 0, &format!("1234{}", hotp(0)));
    assert!(owner.verdict.is_accept(), "{owner:?}");
    // The token's own counter counted the stranger's failures, but locks nothing.
    assert_eq!(fx.store.source_failures_of(Some("alice")).unwrap().len(), 1);
    // Still locked 599 s on, open at 600 s; then the right code passes from there too.
    fx.clock.advance(599);
    assert!(matches!(
        fx.refused_unasked_from(stranger, 0).verdict,
        Verdict::SourceLocked { .. }
    ));
    fx.clock.advance(1);
    let out = fx.pass_from(stranger, 0, &format!("1234{}", hotp(1)));
    assert!(out.verdict.is_accept(), "{out:?}");
    assert!(fx
        .store
        .source_failures_of(Some("alice"))
        .unwrap()
        .is_empty());
}

/// The check before the prompt is made outside any transaction: a failure of another login
/// from the same source that lands while this one types must still stop it. The pass takes
/// its place under the write lock, so `max_fail` guesses at once are `max_fail` guesses.
#[test]
fn a_source_locked_while_the_user_typed_refuses_the_right_code() {
    let mut cfg = Config::default();
    cfg.auth.max_fail = 3;
    let fx = Timed::new(TokenType::Hotp, cfg, 1_000_000);
    for _ in 0..2 {
        fx.pass_from("203.0.113.9", 0, "1234000000");
    }
    // Another login from the same host fails while this one waits at its prompt.
    struct Racing<'a>(&'a Timed, ScriptedConv);
    impl Conversation for Racing<'_> {
        fn prompt(&mut self, text: &str, echo: bool) -> Result<Option<Secret>> {
            self.0
                .store
                .write(|tx| {
                    tx.record_source_failure("alice", "default", "rhost=203.0.113.9", 1_000_000, 3)
                })
                .unwrap();
            self.1.prompt(text, echo)
        }
        fn info(&mut self, text: &str) -> Result<()> {
            self.1.info(text)
        }
        fn error(&mut self, text: &str) -> Result<()> {
            self.1.error(text)
        }
    }
    let right = format!("1234{}", hotp(0));
    let mut conv = Racing(&fx, ScriptedConv::passes(&[&right]));
    let out = fx.login_from("203.0.113.9", 0, &mut conv);
    assert!(
        matches!(out.verdict, Verdict::SourceLocked { .. }),
        "{out:?}"
    );
    // The code was not used up: the owner takes it from elsewhere.
    let owner = fx.pass_from("192.0.2.1", 0, &right);
    assert!(owner.verdict.is_accept(), "{owner:?}");
    // Each refusal counted in its own transaction: 2 + 1, and the locked one adds none.
    let rows = fx.store.source_failures_of(Some("alice")).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].count, 3, "{rows:?}");
}

/// buy fresh tries by naming new hosts.
#[test]
fn a_non_root_caller_is_counted_on_its_uid_whatever_host_it_names() {
    let mut cfg = Config::default();
    cfg.auth.max_fail = 2;
    let fx = Timed::new(TokenType::Hotp, cfg, 1_000_000);
    fx.pass_from("198.51.100.1", 1000, "1234000000");
    fx.pass_from("198.51.100.2", 1000, "1234000000");
    let out = fx.refused_unasked_from("198.51.100.3", 1000);
    assert!(
        matches!(out.verdict, Verdict::SourceLocked { ref source, .. } if source == "uid=1000"),
        "{out:?}"
    );
    // Root's sshd for the same host is another source.
    let out = fx.pass_from("198.51.100.3", 0, &format!("1234{}", hotp(0)));
    assert!(out.verdict.is_accept(), "{out:?}");
}

/// With `lock_scope = "token"`, a locked token among others answers a right PIN as it
/// answers a wrong one: no PIN oracle on a locked token.
#[test]
fn a_locked_token_answers_a_right_pin_as_a_wrong_one() {
    let mut cfg = Config::default();
    cfg.auth.max_fail = 2;
    cfg.auth.lock_scope = LockScope::Token;
    let fx = Timed::new(TokenType::Hotp, cfg, 1_000_000);
    // A second token with another PIN keeps the user from being all locked.
    let mut t2 = TokenRecord::new(
        "K2",
        "alice",
        "default",
        TokenType::Hotp,
        fx.key.seal("K2", RFC_KEY),
    );
    t2.pin_hash = Some(hash_pin(b"9999", &fx.key.pepper()).unwrap());
    fx.store.insert_token(&t2).unwrap();
    fx.store
        .write(|tx| {
            tx.record_failure("K1", 1_000_000)?;
            tx.record_failure("K1", 1_000_000)
        })
        .unwrap();
    let right = fx.pass(&format!("1234{}", hotp(0)));
    let wrong = fx.pass("5555000000");
    assert!(matches!(right.verdict, Verdict::Reject { .. }), "{right:?}");
    assert!(matches!(wrong.verdict, Verdict::Reject { .. }), "{wrong:?}");
    // The audit row still says why.
    assert!(right.events.iter().any(|e| e.result == AuditResult::Locked));
}

/// An event is told (syslog) only once its transaction committed: an accept whose audit
/// row can't be written is no "accept" line, but an error.
#[test]
fn an_accept_whose_commit_fails_is_not_told_as_an_accept() {
    let fx = Timed::new(TokenType::Hotp, Config::default(), 1_000_000);
    let conn = rusqlite::Connection::open(fx.store.path()).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER no_accept BEFORE INSERT ON audit WHEN NEW.result = 'accept' \
         BEGIN SELECT RAISE(ABORT, 'disk I/O error (injected)'); END;",
    )
    .unwrap();
    let out = fx.pass(&format!("1234{}", hotp(0)));
    assert!(matches!(out.verdict, Verdict::Unavailable(_)), "{out:?}");
    assert!(
        out.events.iter().all(|e| e.result != AuditResult::Accept),
        "{:?}",
        out.events
    );
    assert!(out.events.iter().any(|e| e.result == AuditResult::Error));
    // Nothing was committed: the code is still good once the fault is gone.
    conn.execute_batch("DROP TRIGGER no_accept").unwrap();
    assert!(fx.pass(&format!("1234{}", hotp(0))).verdict.is_accept());
}

#[test]
fn a_challenge_answered_after_its_validity_is_refused_and_closed() {
    let mut cfg = Config::default();
    cfg.auth.challenge_response.push("hotp".into());
    cfg.auth.challenge_validity = 60;
    let fx = Timed::new(TokenType::Hotp, cfg, 1_000_000);
    // The answer comes 61 s after the challenge opened: the clock moves while the user types.
    struct Slow<'a>(&'a FixedClock, ScriptedConv);
    impl Conversation for Slow<'_> {
        fn prompt(&mut self, text: &str, echo: bool) -> Result<Option<Secret>> {
            if !self.1.prompts.is_empty() {
                self.0.advance(61);
            }
            self.1.prompt(text, echo)
        }
        fn info(&mut self, text: &str) -> Result<()> {
            self.1.info(text)
        }
        fn error(&mut self, text: &str) -> Result<()> {
            self.1.error(text)
        }
    }
    let h0 = hotp(0);
    let mut slow = Slow(&fx.clock, ScriptedConv::passes(&["1234", &h0]));
    let out = fx.login(&mut slow);
    assert!(
        matches!(out.verdict, Verdict::Reject { ref reason } if reason == "challenge expired"),
        "{out:?}"
    );
    let rows = fx.store.list_challenges(true).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, ChallengeState::Expired);
    // Refused before any check: the code was not used up.
    assert!(fx.pass(&format!("1234{h0}")).verdict.is_accept());
}

#[test]
fn a_totp_code_is_good_in_its_step_and_the_window_and_once() {
    // RFC 6238: at 59 s (step 1) the SHA-1 key's 8-digit code is 94287082; 6 digits: 287082.
    let fx = Timed::new(TokenType::Totp, Config::default(), 59);
    assert_eq!(hotp(1), "287082");
    assert!(fx.pass("1234287082").verdict.is_accept());
    assert!(!fx.pass("1234287082").verdict.is_accept(), "once");
    // At 60 s, step 2: its code is good (the used step 1 stays used).
    fx.clock.advance(1);
    assert!(fx.pass(&format!("1234{}", hotp(2))).verdict.is_accept());
    // Five steps on (step 7), step 3's code is out of the window.
    fx.clock.advance(150);
    assert!(!fx.pass(&format!("1234{}", hotp(3))).verdict.is_accept());
}

#[test]
fn each_recovery_code_is_accepted_once_in_any_order() {
    let cfg = Config::default();
    let fx = tans();
    for i in [4, 0, 9] {
        let out = login(&cfg, &fx, &format!("1234{}", fx.codes[i]));
        assert!(out.verdict.is_accept(), "{:?}", out.verdict);
        let out = login(&cfg, &fx, &format!("1234{}", fx.codes[i]));
        assert!(matches!(out.verdict, Verdict::Reject { .. }));
        assert_eq!(reasons(&out), ["recovery code already used"]);
        assert_eq!(out.events[0].kind, "tan");
    }
    let store = SqliteStore::open(&fx.db, 2000).unwrap();
    let t = store.get_token("T1").unwrap();
    assert_eq!(t.counter, 1 << 4 | 1 | 1 << 9);
    assert_eq!(tan::left(10, t.counter), 7);
    // The replays counted as failures; a success clears them.
    assert_eq!(t.fail_count, 1);
    let out = login(&cfg, &fx, &format!("1234{}", fx.codes[1]));
    assert!(out.verdict.is_accept());
    let audit = store.audit_entries(Some("alice"), 100).unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.reason == "recovery code already used")
            .count(),
        3
    );
    // No code appears in the audit table.
    for e in &audit {
        assert!(!fx.codes.iter().any(|c| e.reason.contains(c.as_str())));
    }
}

#[test]
fn wrong_codes_and_wrong_pins_are_refused() {
    let cfg = Config::default();
    let fx = tans();
    let mut wrong = fx.codes[0].clone().into_bytes();
    wrong[0] = if wrong[0] == b'9' { b'0' } else { wrong[0] + 1 };
    let wrong = String::from_utf8(wrong).unwrap();
    if !fx.codes.contains(&wrong) {
        let out = login(&cfg, &fx, &format!("1234{wrong}"));
        assert!(matches!(out.verdict, Verdict::Reject { .. }));
        assert_eq!(reasons(&out), ["wrong recovery code"]);
    }
    let out = login(&cfg, &fx, &format!("9999{}", fx.codes[0]));
    assert!(matches!(out.verdict, Verdict::Reject { .. }));
    assert_eq!(reasons(&out), ["wrong PIN or unknown user"]);
    // The code was not spent by those attempts.
    let out = login(&cfg, &fx, &format!("1234{}", fx.codes[0]));
    assert!(out.verdict.is_accept(), "{:?}", out.verdict);
}

#[test]
fn a_pin_alone_opens_no_challenge_unless_configured() {
    let fx = tans();
    // The PIN alone does nothing for a tan token here: it is not even compared (a right
    // PIN then costs what a wrong one does), and is refused as a wrong pass.
    let before = crate::crypto::pin_checks();
    let out = login(&Config::default(), &fx, "1234");
    assert!(matches!(out.verdict, Verdict::Reject { .. }));
    assert_eq!(reasons(&out), ["wrong PIN or unknown user"]);
    assert_eq!(crate::crypto::pin_checks() - before, 1);
    // With tan in challenge_response, the code answers the challenge.
    let mut cfg = Config::default();
    cfg.auth.challenge_response.push("tan".into());
    let store = SqliteStore::open(&fx.db, 5000).unwrap();
    let clock = FixedClock::at(1_000_000);
    let engine = LocalEngine::new(&cfg, &store, &fx.key, &clock).with_accounts(&Alice);
    let login = Login {
        service: "test".into(),
        user: "alice".into(),
        ..Login::default()
    };
    let mut conv = ScriptedConv::passes(&["1234", &fx.codes[3]]);
    let out = engine.decide(&login, &Options::default(), &mut conv);
    assert!(out.verdict.is_accept(), "{:?}", out.verdict);
    assert_eq!(
        conv.prompts,
        ["PIN: ", "Please enter one of your recovery codes: "]
    );
    assert_eq!(tan::left(10, store.get_token("T1").unwrap().counter), 9);
}

#[test]
fn otppin_none_takes_the_code_alone() {
    let mut cfg = Config::default();
    cfg.auth.otppin = OtpPin::None;
    let fx = tans();
    assert!(login(&cfg, &fx, &fx.codes[2]).verdict.is_accept());
    assert!(!login(&cfg, &fx, &fx.codes[2]).verdict.is_accept());
}

#[test]
fn two_logins_at_once_with_one_code_accept_it_once() {
    let cfg = Config::default();
    let fx = tans();
    for round in 0..3 {
        let pass = format!("1234{}", fx.codes[round]);
        let accepted = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| login(&cfg, &fx, &pass).verdict.is_accept()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|a| *a)
                .count()
        });
        assert_eq!(accepted, 1, "round {round}");
    }
}

// ---- e-mail and SMS send limits ----

/// Records what would have been sent; fails each send while `down` is set.
#[derive(Default)]
struct Outbox {
    sent: std::sync::Mutex<Vec<String>>,
    down: std::sync::atomic::AtomicBool,
}
impl Courier for Outbox {
    fn send(&self, m: &OutOfBand<'_>) -> Result<()> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::delivery("relay down"));
        }
        self.sent.lock().unwrap().push(m.serial.to_string());
        Ok(())
    }
}
impl Outbox {
    fn count(&self) -> usize {
        self.sent.lock().unwrap().len()
    }
}

struct AliceAndBob;
impl Accounts for AliceAndBob {
    fn canonical(&self, name: &str) -> Option<String> {
        ["alice", "bob"].contains(&name).then(|| name.to_string())
    }
}

struct Senders {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    key: StoreKey,
}

/// A store with tokens (serial, user, type), each with PIN 1234.
fn senders(tokens: &[(&str, &str, TokenType)]) -> Senders {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tessera.db");
    let store = SqliteStore::create(&db, 2000).unwrap();
    let key = StoreKey::generate();
    for (serial, user, kind) in tokens {
        let mut t = TokenRecord::new(serial, user, "default", *kind, key.seal(serial, b""));
        t.pin_hash = Some(hash_pin(b"1234", &key.pepper()).unwrap());
        t.info.email = Some("alice@example.org".into());
        t.info.phone = Some("+15551234567".into());
        store.insert_token(&t).unwrap();
    }
    Senders { _dir: dir, db, key }
}

/// A PIN-only pass of `user` at `now`, then a wrong OTP if a challenge was opened.
fn pin_only_login(
    cfg: &Config,
    fx: &Senders,
    outbox: &Outbox,
    user: &str,
    now: u64,
) -> (Outcome, ScriptedConv) {
    let store = SqliteStore::open(&fx.db, 5000).unwrap();
    let clock = FixedClock::at(now);
    let engine = LocalEngine::new(cfg, &store, &fx.key, &clock)
        .with_accounts(&AliceAndBob)
        .with_courier(outbox);
    let login = Login {
        service: "test".into(),
        user: user.into(),
        ..Login::default()
    };
    // The PIN, then a wrong OTP if a challenge was opened.
    let mut seen = ScriptedConv::passes(&["1234", "000000"]).unasked_ok();
    let out = engine.decide(&login, &Options::default(), &mut seen);
    (out, seen)
}

fn limit(email: u32, sms: u32) -> Config {
    let mut cfg = Config::default();
    cfg.email.max_per_hour = email;
    cfg.sms.max_per_hour = sms;
    cfg
}

#[test]
fn email_sends_stop_at_max_per_hour_for_that_user_only() {
    let cfg = limit(2, 10);
    let fx = senders(&[
        ("E1", "alice", TokenType::Email),
        ("E2", "bob", TokenType::Email),
    ]);
    let outbox = Outbox::default();
    let t0 = 1_000_000;
    for i in 0..2 {
        let (out, seen) = pin_only_login(&cfg, &fx, &outbox, "alice", t0 + i);
        assert!(matches!(out.verdict, Verdict::Reject { .. }));
        assert_eq!(seen.prompts.len(), 2, "the OTP was asked");
        assert!(seen.errors.is_empty());
    }
    assert_eq!(outbox.count(), 2);
    let (out, seen) = pin_only_login(&cfg, &fx, &outbox, "alice", t0 + 2);
    assert_eq!(outbox.count(), 2, "no third mail");
    assert_eq!(seen.prompts, ["PIN: "], "no OTP prompt");
    assert_eq!(seen.errors, [SEND_LIMIT_MESSAGE]);
    let why = "e-mail not sent: 2 sent in the last hour (max_per_hour)";
    assert!(
        matches!(&out.verdict, Verdict::Reject { reason } if reason == why),
        "{:?}",
        out.verdict
    );
    assert_eq!(reasons(&out), [why]);
    assert_eq!(
        (out.events[0].serial.as_str(), out.events[0].result.as_str()),
        ("E1", "reject")
    );
    let store = SqliteStore::open(&fx.db, 2000).unwrap();
    assert_eq!(
        store.get_token("E1").unwrap().fail_count,
        2,
        "the refusal is no failure"
    );
    assert!(store
        .audit_entries(Some("alice"), 100)
        .unwrap()
        .iter()
        .any(|e| e.reason == why));

    // Bob's mails are his own count.
    let (_, seen) = pin_only_login(&cfg, &fx, &outbox, "bob", t0 + 3);
    assert_eq!(seen.prompts.len(), 2);
    assert_eq!(outbox.count(), 3);

    // An hour after the first send, one mail may go again; then the second's hour is not
    // over yet.
    let (_, seen) = pin_only_login(&cfg, &fx, &outbox, "alice", t0 + 3600);
    assert_eq!(seen.prompts.len(), 2);
    assert_eq!(outbox.count(), 4);
    let (_, seen) = pin_only_login(&cfg, &fx, &outbox, "alice", t0 + 3600);
    assert_eq!(seen.errors, [SEND_LIMIT_MESSAGE]);
    assert_eq!(outbox.count(), 4);
}

#[test]
fn the_limit_counts_all_tokens_of_a_type_and_each_type_apart() {
    let cfg = limit(3, 1);
    let fx = senders(&[
        ("E1", "alice", TokenType::Email),
        ("E2", "alice", TokenType::Email),
        ("S1", "alice", TokenType::Sms),
    ]);
    let outbox = Outbox::default();
    // One pass: E1, E2 and S1 each send (3 mails would be 2 + 1 SMS).
    let (_, seen) = pin_only_login(&cfg, &fx, &outbox, "alice", 1000);
    assert_eq!(outbox.count(), 3);
    assert!(seen.errors.is_empty());
    // The next pass: one mail left of three, no SMS left. E1 sends, E2 and S1 don't; the
    // challenge of E1 is still asked.
    let (out, seen) = pin_only_login(&cfg, &fx, &outbox, "alice", 1001);
    assert_eq!(outbox.sent.lock().unwrap()[3..], ["E1".to_string()]);
    assert_eq!(seen.errors, [SEND_LIMIT_MESSAGE], "said once");
    assert_eq!(seen.prompts.len(), 2);
    let r = reasons(&out);
    assert!(
        r.contains(&"e-mail not sent: 3 sent in the last hour (max_per_hour)".to_string()),
        "{r:?}"
    );
    assert!(
        r.contains(&"SMS not sent: 1 sent in the last hour (max_per_hour)".to_string()),
        "{r:?}"
    );
}

#[test]
fn a_failed_delivery_does_not_count_and_zero_is_no_limit() {
    let fx = senders(&[("S1", "alice", TokenType::Sms)]);
    let outbox = Outbox::default();
    let cfg = limit(10, 1);
    outbox.down.store(true, std::sync::atomic::Ordering::SeqCst);
    for now in 0..3 {
        let (out, _) = pin_only_login(&cfg, &fx, &outbox, "alice", 1000 + now);
        assert!(matches!(out.verdict, Verdict::Unavailable(_)));
    }
    outbox
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let (_, seen) = pin_only_login(&cfg, &fx, &outbox, "alice", 1010);
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    assert_eq!(outbox.count(), 1);
    let mut cfg = limit(10, 0);
    cfg.auth.max_fail = 100; // each pass answers a wrong OTP
    for now in 0..15 {
        pin_only_login(&cfg, &fx, &outbox, "alice", 1020 + now);
    }
    assert_eq!(outbox.count(), 16);
}

#[test]
fn logins_at_once_never_send_past_the_limit() {
    let cfg = limit(3, 10);
    let fx = senders(&[("E1", "alice", TokenType::Email)]);
    let outbox = Outbox::default();
    std::thread::scope(|s| {
        for i in 0..8 {
            let (cfg, fx, outbox) = (&cfg, &fx, &outbox);
            s.spawn(move || pin_only_login(cfg, fx, outbox, "alice", 1000 + i));
        }
    });
    assert_eq!(outbox.count(), 3);
}

#[test]
fn a_spass_accept_sends_nothing_and_counts_no_send() {
    let cfg = limit(1, 10);
    // E0 sorts before the spass token: its send was recorded before the spass matched.
    let fx = senders(&[
        ("E0", "alice", TokenType::Email),
        ("P1", "alice", TokenType::Spass),
    ]);
    let outbox = Outbox::default();
    let (out, _) = pin_only_login(&cfg, &fx, &outbox, "alice", 1000);
    assert!(out.verdict.is_accept(), "{:?}", out.verdict);
    assert_eq!(outbox.count(), 0);
    let store = SqliteStore::open(&fx.db, 2000).unwrap();
    let n = store
        .write(|tx| tx.sends_since("alice", "default", "email", 0))
        .unwrap();
    assert_eq!(n, 0);
}
