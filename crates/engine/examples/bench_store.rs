//! Creates a store and key with one HOTP token, for `bench/pam-bench.sh` (which must not depend
//! on the admin command's flags).
//!
//! Usage: `bench_store STORE KEYFILE USER KEYHEX [PIN]` — without PIN the token has none (for
//! `otppin = "none"`). The HOTP counter starts at 0, digits 6, SHA-1.

use std::path::Path;
use std::process::ExitCode;
use tessera_engine::crypto::{decode_hex, hash_pin, StoreKey};
use tessera_engine::store::{SqliteStore, TokenRecord};
use tessera_engine::tokens::TokenType;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(4..=5).contains(&args.len()) {
        eprintln!("usage: bench_store STORE KEYFILE USER KEYHEX [PIN]");
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_store: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(a: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let (store_path, key_path, user) = (Path::new(&a[0]), Path::new(&a[1]), &a[2]);
    let otp_key = decode_hex(&a[3]).ok_or("KEYHEX is not hex")?;
    let key = StoreKey::generate();
    tessera_engine::fsperm::create_private_file(key_path, key.to_hex().as_bytes())?;
    let store = SqliteStore::create(store_path, 5000)?;
    let pin_hash = match a.get(4) {
        Some(pin) => Some(hash_pin(pin.as_bytes(), &key.pepper())?),
        None => None,
    };
    store.insert_token(&TokenRecord {
        pin_hash,
        description: "pam-bench".into(),
        ..TokenRecord::new(
            "BENCH0001",
            user,
            "default",
            TokenType::Hotp,
            key.seal("BENCH0001", &otp_key),
        )
    })?;
    Ok(())
}
