//! Criterion benchmarks of the engine's check against a real SQLite store in a temporary
//! directory: the accept path (PIN+OTP, HOTP counter moving forward), the reject paths (right
//! PIN and wrong OTP, wrong PIN, unknown user), the same with `otppin = "none"`, the whole
//! `login::authenticate` (store open and key load per login, as the PAM module does it), and
//! the primitives `crypto::verify_pin` (Argon2id) and `tokens::hotp_code`.
//!
//! Run: `cargo bench --bench engine` (add `-- --warm-up-time 1 --measurement-time 3` on a busy
//! machine). The sample size is kept small: one PIN check costs milliseconds.

// A benchmark measures real time.
#![allow(clippy::disallowed_methods)]

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use std::time::{Duration, Instant};
use tessera_engine::auth::{self, Login, Options, Verdict};
use tessera_engine::config::{Config, OtpPin};
use tessera_engine::crypto::{hash_pin, verify_pin, StoreKey};
use tessera_engine::login::LocalEngine;
use tessera_engine::store::{SqliteStore, TokenRecord};
use tessera_engine::testing::{FixedClock, ScriptedConv};
use tessera_engine::tokens::{hotp_code, Algorithm, TokenType};

/// RFC 4226's test key.
const KEY: &[u8] = b"12345678901234567890";
const PIN: &[u8] = b"1234";
/// Not an HOTP code of KEY at any counter the benches reach (checked before each reject bench).
const WRONG_OTP: &[u8] = b"000000";

/// A store with one HOTP token for `alice` (PIN 1234 unless `otppin` is none), in its own
/// temporary directory, and the config that points at it.
struct Fixture {
    dir: tempfile::TempDir,
    cfg: Config,
    key: StoreKey,
}

impl Fixture {
    fn new(otppin: OtpPin) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.store.path = dir.path().join("tessera.db");
        cfg.store.key_file = dir.path().join("secret.key");
        cfg.auth.otppin = otppin;
        // The reject benches fail thousands of times: keep the token from locking, so that
        // every iteration takes the same path (a locked token is refused before the OTP check).
        cfg.auth.max_fail = u32::MAX;
        cfg.auth.account_max_fail = u32::MAX;
        let key = StoreKey::generate();
        tessera_engine::os::fsperm::create_private_file(
            &cfg.store.key_file,
            key.to_hex().as_bytes(),
        )
        .unwrap();
        let store = SqliteStore::create(&cfg.store.path, 5000).unwrap();
        let pin_hash = match otppin {
            OtpPin::Token => Some(hash_pin(PIN, &key.pepper()).unwrap()),
            _ => None,
        };
        store
            .insert_token(&TokenRecord {
                pin_hash,
                description: "bench".into(),
                ..TokenRecord::new(
                    "HOTP0001",
                    "alice",
                    &cfg.auth.default_realm,
                    TokenType::Hotp,
                    key.seal("HOTP0001", KEY),
                )
            })
            .unwrap();
        Fixture { dir, cfg, key }
    }

    fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.cfg.store.path, 5000).unwrap()
    }

    /// The pass for HOTP counter `c`: PIN+OTP, or the OTP alone.
    fn pass(&self, c: u64) -> Vec<u8> {
        let mut p = match self.cfg.auth.otppin {
            OtpPin::Token => PIN.to_vec(),
            _ => Vec::new(),
        };
        p.extend_from_slice(&hotp_code(Algorithm::Sha1, KEY, c, 6));
        p
    }

    fn wrong_otp_pass(&self) -> Vec<u8> {
        let mut p = match self.cfg.auth.otppin {
            OtpPin::Token => PIN.to_vec(),
            _ => Vec::new(),
        };
        p.extend_from_slice(WRONG_OTP);
        p
    }
}

fn login(user: &str) -> Login {
    Login {
        service: "bench".into(),
        rhost: "127.0.0.1".into(),
        user: user.into(),
        authtok: None,
        tty: String::new(),
        ..Login::default()
    }
}

/// One check through the local engine with an already open store.
fn check(f: &Fixture, store: &SqliteStore, clock: &FixedClock, user: &str, pass: &[u8]) -> Verdict {
    let pass = std::str::from_utf8(pass).unwrap_or_default();
    LocalEngine::new(&f.cfg, store, &f.key, clock)
        .decide(
            &login(user),
            &Options::default(),
            &mut ScriptedConv::passes(&[pass]).unasked_ok(),
        )
        .verdict
}

/// Benches the accept path: each iteration gets the code of the next HOTP counter, computed
/// outside the timed part, so the counter moves forward as in real use.
fn bench_accept(c: &mut Criterion, name: &str, f: &Fixture, store: &SqliteStore) {
    let clock = FixedClock::at(1_700_000_000);
    let mut counter = 0u64;
    c.bench_function(name, |b| {
        b.iter_batched(
            || {
                let p = f.pass(counter);
                counter += 1;
                p
            },
            |pass| {
                let v = check(f, store, &clock, "alice", &pass);
                assert!(v.is_accept(), "{v:?}");
            },
            BatchSize::SmallInput,
        )
    });
}

fn bench_reject(
    c: &mut Criterion,
    name: &str,
    f: &Fixture,
    store: &SqliteStore,
    user: &str,
    pass: &[u8],
) {
    let clock = FixedClock::at(1_700_000_000);
    let v = check(f, store, &clock, user, pass);
    assert!(matches!(v, Verdict::Reject { .. }), "{v:?}");
    c.bench_function(name, |b| {
        b.iter(|| {
            let v = check(f, store, &clock, user, black_box(pass));
            assert!(matches!(v, Verdict::Reject { .. }), "{v:?}");
        })
    });
}

/// The local engine with the store opened once (the engine's own work, per login).
fn engine_paths(c: &mut Criterion) {
    let f = Fixture::new(OtpPin::Token);
    let store = f.store();
    bench_accept(c, "engine/pin+otp/accept", &f, &store);
    let wrong_otp = f.wrong_otp_pass();
    bench_reject(
        c,
        "engine/pin+otp/reject_wrong_otp",
        &f,
        &store,
        "alice",
        &wrong_otp,
    );
    bench_reject(
        c,
        "engine/pin+otp/reject_wrong_pin",
        &f,
        &store,
        "alice",
        b"9999000000",
    );
    bench_reject(
        c,
        "engine/pin+otp/reject_unknown_user",
        &f,
        &store,
        "mallory",
        b"1234000000",
    );

    let f = Fixture::new(OtpPin::None);
    let store = f.store();
    bench_accept(c, "engine/otp-only/accept", &f, &store);
    let wrong_otp = f.wrong_otp_pass();
    bench_reject(
        c,
        "engine/otp-only/reject_wrong_otp",
        &f,
        &store,
        "alice",
        &wrong_otp,
    );
    bench_reject(
        c,
        "engine/otp-only/reject_unknown_user",
        &f,
        &store,
        "mallory",
        WRONG_OTP,
    );
}

/// `login::authenticate` as the PAM module calls it: opens the store and loads the key on every
/// login. The difference to `engine/otp-only/*` is the per-login cost of opening.
fn whole_authenticate(c: &mut Criterion) {
    let f = Fixture::new(OtpPin::None);
    let clock = FixedClock::at(1_700_000_000);
    let run = |pass: &[u8]| {
        let pass = std::str::from_utf8(pass).unwrap_or_default();
        tessera_engine::login::authenticate(
            &tessera_engine::login::OneLogin,
            &f.cfg,
            &Options::default(),
            &login("alice"),
            &mut ScriptedConv::passes(&[pass]).unasked_ok(),
            &clock,
        )
        .verdict
    };
    let mut counter = 0u64;
    c.bench_function("authenticate/otp-only/accept", |b| {
        b.iter_batched(
            || {
                let p = f.pass(counter);
                counter += 1;
                p
            },
            |pass| assert!(run(&pass).is_accept()),
            BatchSize::SmallInput,
        )
    });
    c.bench_function("authenticate/otp-only/reject_wrong_otp", |b| {
        b.iter(|| assert!(matches!(run(WRONG_OTP), Verdict::Reject { .. })))
    });
    c.bench_function("store/open", |b| {
        b.iter(|| black_box(SqliteStore::open(&f.cfg.store.path, 5000).unwrap()))
    });
    c.bench_function("store/load_key", |b| {
        b.iter(|| black_box(auth::load_key(&f.cfg).unwrap()))
    });
    // The module parses its config on every login too.
    let conf = f.dir.path().join("tessera.toml");
    std::fs::write(
        &conf,
        format!(
            "[store]\npath = {:?}\nkey_file = {:?}\n[auth]\notppin = \"none\"\n",
            f.cfg.store.path, f.cfg.store.key_file
        ),
    )
    .unwrap();
    c.bench_function("config/load", |b| {
        b.iter(|| black_box(Config::load(&conf).unwrap()))
    });
}

fn primitives(c: &mut Criterion) {
    let pepper = StoreKey::generate().pepper();
    let phc = hash_pin(PIN, &pepper).unwrap();
    // The PIN hash cost in plain words, before criterion's own figures.
    let n = 10;
    let t = Instant::now();
    for _ in 0..n {
        assert!(verify_pin(black_box(PIN), &phc, &pepper));
    }
    let per = t.elapsed() / n;
    eprintln!(
        "Argon2id PIN check ({}): {:.2} ms per verify_pin (budget: 50 ms)",
        phc.split('$').nth(3).unwrap_or("?"),
        per.as_secs_f64() * 1e3
    );
    c.bench_function("crypto/verify_pin", |b| {
        b.iter(|| verify_pin(black_box(PIN), &phc, &pepper))
    });
    for (alg, name) in [
        (Algorithm::Sha1, "sha1"),
        (Algorithm::Sha256, "sha256"),
        (Algorithm::Sha512, "sha512"),
    ] {
        let mut counter = 0u64;
        c.bench_function(&format!("tokens/hotp_code/{name}"), |b| {
            b.iter(|| {
                counter += 1;
                hotp_code(alg, black_box(KEY), counter, 6)
            })
        });
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = primitives, engine_paths, whole_authenticate
}
criterion_main!(benches);
