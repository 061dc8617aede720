//! Creates a store and key for `bench/pam-bench.sh` (which must not depend on the admin
//! command's flags): one HOTP token per user named, and as many tokens of other users as asked
//! for, so that a login's lookup is measured in a store of that size.
//!
//! Usage: `bench_store STORE KEYFILE KEYHEX [--pin PIN] [--total N] USER...`
//! Without `--pin` the tokens have none (for `otppin = "none"`). `--total N` fills the store up
//! to N tokens with tokens of users `filler<i>` (same kind of row, never logged in). The HOTP
//! counters start at 0, digits 6, SHA-1.

use std::path::Path;
use std::process::ExitCode;
use tessera_engine::crypto::{decode_hex, hash_pin, StoreKey};
use tessera_engine::store::{SqliteStore, TokenRecord};
use tessera_engine::tokens::TokenType;

const USAGE: &str = "usage: bench_store STORE KEYFILE KEYHEX [--pin PIN] [--total N] USER...";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_store: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(a: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let [store_path, key_path, keyhex, rest @ ..] = a else {
        return Err(USAGE.into());
    };
    let (mut pin, mut total, mut users) = (None, 0u64, Vec::new());
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--pin" => pin = Some(it.next().ok_or(USAGE)?.clone()),
            "--total" => total = it.next().ok_or(USAGE)?.parse()?,
            _ => users.push(arg.clone()),
        }
    }
    if users.is_empty() {
        return Err(USAGE.into());
    }
    let otp_key = decode_hex(keyhex).ok_or("KEYHEX is not hex")?;
    let key = StoreKey::generate();
    tessera_engine::os::fsperm::create_private_file(Path::new(key_path), key.to_hex().as_bytes())?;
    let store = SqliteStore::create(Path::new(store_path), 5000)?;
    let pin_hash = match &pin {
        Some(pin) => Some(hash_pin(pin.as_bytes(), &key.pepper())?),
        None => None,
    };
    for (i, user) in users.iter().enumerate() {
        let serial = format!("BENCH{:04}", i + 1);
        store.insert_token(&TokenRecord {
            pin_hash: pin_hash.clone(),
            description: "pam-bench".into(),
            ..TokenRecord::new(
                &serial,
                user,
                "default",
                TokenType::Hotp,
                key.seal(&serial, &otp_key),
            )
        })?;
    }
    drop(store);
    let fill = total.saturating_sub(users.len() as u64);
    if fill > 0 {
        // Copies of the first token's row under other serials and users, in one statement:
        // sealing a million keys one by one would take minutes and measure nothing more.
        let conn = rusqlite::Connection::open(store_path)?;
        conn.execute(
            "INSERT INTO tokens (serial, user, realm, type, active, pin_hash, sealed_key, digits, \
                 algorithm, period, drift, counter, fail_count, last_fail, info, description, created) \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
             SELECT 'FILL' || i, 'filler' || i, realm, type, active, pin_hash, sealed_key, digits, \
                 algorithm, period, drift, counter, fail_count, last_fail, info, 'filler', created \
             FROM n, (SELECT * FROM tokens WHERE serial = 'BENCH0001')",
            [fill as i64],
        )?;
    }
    Ok(())
}
