//! Criterion benchmarks of the daemon's part of one login, as its socket server serves it:
//! `session::serve` on one end of a socketpair with a kept `Host` (pooled store connections,
//! the group writer, the key), the module's frames written up front on the other end. The OTP
//! alone (`otppin = "none"`), as bench/pam-bench.sh compares with the peers: a reject (a wrong
//! code: the failure and its audit row written) and an accept (the next HOTP code: the counter
//! synced before the verdict). What the module and libpam cost on top is bench/pam-bench.sh's.
//!
//! Run: `cargo bench -p tesserad --bench session`.

// A benchmark measures real time.
#![allow(clippy::disallowed_methods)]

use criterion::{criterion_group, criterion_main, Criterion};
use std::cell::Cell;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;
use tessera_engine::config::{Config, OtpPin};
use tessera_engine::crypto::StoreKey;
use tessera_engine::login::Host;
use tessera_engine::store::{SqliteStore, TokenRecord};
use tessera_engine::tokens::{hotp_code, Algorithm, TokenType};
use tessera_proto::{FrameReader, Login, Reply, Request, Verdict, MAX_REPLY_FRAME, VERSION};
use tesserad::session::{self, Caller, Counters};
use zeroize::Zeroizing;

/// RFC 4226's test key.
const KEY: &[u8] = b"12345678901234567890";
/// Not an HOTP code of KEY at any counter the benches reach (checked in `wrong_is_wrong`).
const WRONG: &[u8] = b"000000";

/// A store with root's HOTP token (root: an account on any host, without nss_wrapper), in
/// its own directory, and the config that points at it.
fn fixture() -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.store.path = dir.path().join("tessera.db");
    cfg.store.key_file = dir.path().join("secret.key");
    cfg.auth.otppin = OtpPin::None;
    // Thousands of rejects: neither the token nor the source may lock.
    cfg.auth.max_fail = u32::MAX;
    cfg.auth.account_max_fail = u32::MAX;
    let key = StoreKey::generate();
    tessera_engine::os::fsperm::create_private_file(&cfg.store.key_file, key.to_hex().as_bytes())
        .unwrap();
    let store = SqliteStore::create(&cfg.store.path, 5000).unwrap();
    store
        .insert_token(&TokenRecord::new(
            "HOTP0001",
            "root",
            "default",
            TokenType::Hotp,
            key.seal("HOTP0001", KEY),
        ))
        .unwrap();
    (dir, cfg)
}

/// One login through `session::serve` as a root caller (sshd), answering its prompt with
/// `pass`; the verdict.
fn one(host: &Host, cfg: &Config, counters: &Counters, pass: &[u8]) -> Verdict {
    let (mut module, mut daemon) = UnixStream::pair().unwrap();
    let login = Login {
        version: VERSION,
        service: "sshd".into(),
        rhost: "192.0.2.1".into(),
        user: b"root".to_vec(),
        ..Login::default()
    };
    let mut frames = Request::Authenticate(login).encode().to_vec();
    frames.extend_from_slice(&Request::Answer(Some(Zeroizing::new(pass.to_vec()))).encode());
    module.write_all(&frames).unwrap();
    let caller = Caller {
        uid: 0,
        may_choose_config: false,
    };
    session::serve(&mut daemon, &caller, Ok(cfg), host, counters).unwrap();
    drop(daemon);
    let mut replies = FrameReader::new(MAX_REPLY_FRAME);
    loop {
        if let Reply::Verdict(v) = Reply::decode(&replies.read(&mut module).unwrap()).unwrap() {
            return v;
        }
    }
}

fn code(counter: u64) -> Vec<u8> {
    hotp_code(Algorithm::Sha1, KEY, counter, 6).to_vec()
}

fn bench(c: &mut Criterion) {
    assert!((0..100_000).all(|i| code(i) != WRONG), "WRONG is a code");
    let (_dir, cfg) = fixture();
    let host = Host::default();
    let counters = Counters::default();
    let mut g = c.benchmark_group("tesserad");
    g.sample_size(50).measurement_time(Duration::from_secs(5));
    g.bench_function("reject, OTP alone", |b| {
        b.iter(|| assert_eq!(one(&host, &cfg, &counters, WRONG), Verdict::AuthErr))
    });
    let next = Cell::new(0u64);
    g.bench_function("accept, OTP alone (counter synced)", |b| {
        b.iter(|| {
            let c = next.get();
            next.set(c + 1);
            assert_eq!(one(&host, &cfg, &counters, &code(c)), Verdict::Success);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
