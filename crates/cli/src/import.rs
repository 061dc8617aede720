//! `tessera import --format F FILE...`: tokens from the files other OTP systems write (the
//! readers are in `tessera_import`), enrolled all at once or not at all.
//!
//! The files are read first, by [`tessera_engine::os::userfile`]'s rules: root reads each file for
//! the user whose directory holds it, as that user, and refuses links, FIFOs, hard links,
//! procfs and files of another owner than their directory's; a google-authenticator file of
//! root or a system account needs `--user` (its owner would be the tokens' user). Only then
//! does the command become the store's owner, as every other command does. Each token keeps
//! its state, so a code used before the move stays used: see the readers for what that is in
//! each format. Tokens without a PIN are named after the table: where tessera is the only
//! factor of a PAM stack, their code alone logs in.

use super::{token_add, CliResult, Failure};
use crate::args::{ImportArgs, ImportFormat};
use serde::Serialize;
use std::path::Path;
use tessera_engine::auth::{self, Clock, SystemClock};
use tessera_engine::config::Config;
use tessera_engine::crypto::{self, Secret};
use tessera_engine::store::TokenRecord;
use tessera_engine::tokens::{tan, Algorithm, TokenType};
use tessera_import::{pskc, Imported, Kind};

/// The largest file read (a users file of many thousands of lines is far below).
const MAX_FILE: u64 = 16 << 20;

/// What to do about tokens without a PIN (`import` and `doctor` say it).
pub const PIN_FIX: &str = "give each a PIN with `tessera token set-pin SERIAL`, or keep pam_unix \
     in front of pam_tessera with otppin = \"system\"";

/// What a token without a PIN means.
const ONE_FACTOR: &str =
    "where tessera is the only factor of a PAM stack (otppin = \"token\"), the code alone logs in";

/// The overflow uid: `nobody`, the owner of what belongs to no one.
const NOBODY: u32 = 65534;

/// The lowest uid of a person's account: `UID_MIN` of /etc/login.defs (what useradd gives
/// people from), 1000 where the file does not say.
fn uid_min() -> u32 {
    std::fs::read_to_string("/etc/login.defs")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some("UID_MIN"))
                    .then(|| words.next()?.parse().ok())
                    .flatten()
            })
        })
        .unwrap_or(1000)
}

/// One token read, with the file it came from.
struct Found {
    file: String,
    /// The file's owner, for a google-authenticator file (it lives in its user's home).
    owner: Option<String>,
    token: Imported,
}

/// What the summary says of a token.
#[derive(Serialize)]
struct Row {
    serial: String,
    #[serde(rename = "type")]
    kind: &'static str,
    user: String,
    realm: String,
    file: String,
    origin: String,
    pin: bool,
    notes: Vec<String>,
    /// What an admin must act on: a token without a PIN is one factor where tessera is alone.
    warnings: Vec<String>,
}

pub fn run(cfg: &Config, a: &ImportArgs) -> CliResult<()> {
    let protection = protection(a)?;
    let mut found = Vec::new();
    for path in &a.files {
        found.extend(read_file(path, a, protection.as_ref())?);
    }
    if found.is_empty() {
        return Err(Failure::invalid("no tokens in the files given"));
    }
    super::become_store_owner(cfg)?;
    let store_key = auth::load_key(cfg)?;
    let mut records = Vec::with_capacity(found.len());
    let mut rows = Vec::with_capacity(found.len());
    for f in &found {
        let (record, row) = plan(cfg, a, f, &store_key)?;
        if records
            .iter()
            .any(|r: &TokenRecord| r.serial == record.serial)
        {
            return Err(Failure::invalid(format!(
                "{}: {}: serial {} appears twice in the import",
                f.file, f.token.origin, record.serial
            )));
        }
        records.push(record);
        rows.push(row);
    }
    let store = auth::open_store(cfg)?;
    for r in &records {
        if store.get_token(&r.serial).is_ok() {
            return Err(Failure::invalid(format!(
                "token {} already exists; nothing was imported",
                r.serial
            )));
        }
    }
    if !a.dry_run {
        store.insert_tokens(&records)?;
    }
    print(&rows, a)
}

fn print(rows: &[Row], a: &ImportArgs) -> CliResult<()> {
    if a.json {
        return super::output::json(rows);
    }
    let mut t = super::output::Table::new(&["SERIAL", "TYPE", "USER", "REALM", "PIN", "FROM"]);
    for r in rows {
        t.row(vec![
            r.serial.clone(),
            r.kind.to_string(),
            r.user.clone(),
            r.realm.clone(),
            super::output::yes_no(r.pin),
            format!("{} {}", r.file, r.origin),
        ]);
    }
    t.print()?;
    for r in rows {
        for n in &r.notes {
            outln!("note: {}: {}", r.serial, super::output::clean(n))?;
        }
    }
    let pinless: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| !r.pin)
        .map(|r| (r.user.as_str(), r.serial.as_str()))
        .collect();
    if !pinless.is_empty() {
        outln!(
            "warning: {} token(s) without a PIN ({}): {ONE_FACTOR}; {PIN_FIX}",
            pinless.len(),
            super::output::clean(&super::output::some_tokens(&pinless))
        )?;
    }
    if a.dry_run {
        outln!(
            "dry run: {} token(s) would be imported; nothing was written",
            rows.len()
        )
    } else {
        outln!("imported {} token(s)", rows.len())
    }
}

/// `--password-file` or `--key-file`, read before anything else.
fn protection(a: &ImportArgs) -> CliResult<Option<pskc::Protection>> {
    if (a.password_file.is_some() || a.key_file.is_some()) && a.format != ImportFormat::Pskc {
        return Err(Failure::usage(
            "--password-file and --key-file are for --format pskc",
        ));
    }
    let first_line = |p: &Path| -> CliResult<Secret> {
        let (text, _) = read_text(p)?;
        Ok(crypto::secret(
            text.lines().next().unwrap_or_default().as_bytes(),
        ))
    };
    if let Some(p) = &a.password_file {
        return Ok(Some(pskc::Protection::Password(first_line(p)?)));
    }
    if let Some(p) = &a.key_file {
        let line = first_line(p)?;
        let hex = std::str::from_utf8(&line).unwrap_or_default();
        let key = crypto::decode_hex(hex.trim())
            .ok_or_else(|| Failure::invalid(format!("{}: not a key in hex", p.display())))?;
        return Ok(Some(pskc::Protection::Key(key)));
    }
    Ok(None)
}

/// The file at `path`, read as [`tessera_engine::os::userfile`] reads a user's file (no link, a
/// regular file with one link on a real file system, owned by its directory's owner, at most
/// [`MAX_FILE`] bytes), as UTF-8 text; and its owner.
fn read_text(path: &Path) -> CliResult<(zeroize::Zeroizing<String>, u32)> {
    let file = tessera_engine::os::userfile::read(path, MAX_FILE)?;
    let text = std::str::from_utf8(&file.bytes)
        .map_err(|_| Failure::invalid(format!("{}: not UTF-8 text", path.display())))?;
    Ok((zeroize::Zeroizing::new(text.to_string()), file.owner))
}

fn read_file(
    path: &Path,
    a: &ImportArgs,
    protection: Option<&pskc::Protection>,
) -> CliResult<Vec<Found>> {
    let format = a.format;
    let (text, uid) = read_text(path)?;
    // A google-authenticator file's owner is the user its tokens are enrolled for: a file of
    // root or of a system account is nobody's to log in with unless the admin says whose.
    if format == ImportFormat::GoogleAuthenticator && a.user.is_none() {
        if uid == 0 {
            return Err(Failure::invalid(format!(
                "{} belongs to uid 0 (root): pass --user to say whose it is",
                path.display()
            )));
        }
        let min = uid_min();
        if uid < min || uid == NOBODY {
            return Err(Failure::invalid(format!(
                "{} belongs to {}, a system account (uid below UID_MIN {min}, or nobody): pass \
                 --user to say whose it is",
                path.display(),
                tessera_engine::os::userfile::who(uid)
            )));
        }
    }
    let tokens = match format {
        ImportFormat::GoogleAuthenticator => tessera_import::google_authenticator::read(&text),
        ImportFormat::Oath => tessera_import::oath::read(&text, SystemClock.now()),
        ImportFormat::Pskc => pskc::read(&text, protection),
        ImportFormat::Privacyidea => tessera_import::privacyidea::read(&text),
    }
    .map_err(|e| Failure::invalid(format!("{}: {e}", path.display())))?;
    let owner = (format == ImportFormat::GoogleAuthenticator)
        .then(|| tessera_engine::os::sys::account_of_uid(uid).map(|a| a.name))
        .flatten();
    let file = super::output::clean(&path.display().to_string());
    Ok(tokens
        .into_iter()
        .map(|token| Found {
            file: file.clone(),
            owner: owner.clone(),
            token,
        })
        .collect())
}

/// The record to insert for one token, and its summary row.
fn plan(
    cfg: &Config,
    a: &ImportArgs,
    f: &Found,
    store_key: &crypto::StoreKey,
) -> CliResult<(TokenRecord, Row)> {
    let t = &f.token;
    let at = |msg: String| Failure::invalid(format!("{}: {}: {msg}", f.file, t.origin));
    let user = t
        .user
        .clone()
        .or_else(|| a.user.clone())
        .or_else(|| f.owner.clone())
        .ok_or_else(|| at("the file names no user: give --user".into()))?;
    let realm = t
        .realm
        .clone()
        .or_else(|| a.realm.clone())
        .unwrap_or_else(|| cfg.auth.default_realm.clone());
    token_add::check_name("user", &user)
        .map_err(|_| at(format!("user name {user:?} is not one tessera takes")))?;
    token_add::check_name("realm", &realm)
        .map_err(|_| at(format!("realm {realm:?} is not one tessera takes")))?;
    let user = token_add::account_of(&user);
    let kind = match &t.kind {
        Kind::Hotp { .. } => TokenType::Hotp,
        Kind::Totp { .. } => TokenType::Totp,
        Kind::Tan { .. } => TokenType::Tan,
    };
    let serial = match &t.serial {
        Some(s) => {
            token_add::check_serial(s).map_err(|_| {
                at(format!(
                    "serial {:?} is not 1 to 64 characters of A-Z, a-z, 0-9, '-', '_', '.', ':'",
                    s
                ))
            })?;
            s.clone()
        }
        None => token_add::new_serial(kind),
    };
    let pin_hash = t
        .pin
        .as_ref()
        .map(|p| crypto::hash_pin(p, &store_key.pepper()))
        .transpose()?;
    let mut record = TokenRecord {
        pin_hash,
        description: format!("imported from {}", f.file),
        created: SystemClock.now(),
        info: tessera_engine::tokens::TokenInfo {
            origin: Some(tessera_engine::tokens::Origin::Import),
            ..Default::default()
        },
        ..TokenRecord::new(&serial, &user, &realm, kind, Vec::new())
    };
    let key: Secret = match &t.kind {
        Kind::Hotp {
            key,
            digits,
            algorithm,
            counter,
        } => {
            record.digits = *digits;
            record.algorithm = *algorithm;
            record.counter = counter_in_range(*counter).map_err(at)?;
            key.clone()
        }
        Kind::Totp {
            key,
            digits,
            algorithm,
            period,
            drift,
            next_step,
        } => {
            record.digits = *digits;
            record.algorithm = *algorithm;
            record.period = *period;
            record.drift = *drift;
            record.counter = counter_in_range(*next_step).map_err(at)?;
            key.clone()
        }
        Kind::Tan { codes } => {
            let (blob, digits) =
                tan::from_codes(codes, &mut rand::rngs::OsRng).map_err(|e| at(e.to_string()))?;
            record.digits = digits;
            record.algorithm = Algorithm::Sha1;
            record.info.count = Some(codes.len() as u32);
            blob
        }
    };
    record.sealed_key = store_key.seal(&record.serial, &key);
    let row = Row {
        serial: record.serial.clone(),
        kind: kind.name(),
        user: record.user.clone(),
        realm: record.realm.clone(),
        file: f.file.clone(),
        origin: t.origin.clone(),
        pin: record.pin_hash.is_some(),
        notes: t.notes.clone(),
        warnings: if record.pin_hash.is_some() {
            Vec::new()
        } else {
            vec![format!("no PIN: {ONE_FACTOR}; {PIN_FIX}")]
        },
    };
    Ok((record, row))
}

fn counter_in_range(c: u64) -> Result<u64, String> {
    if c > tessera_engine::tokens::MAX_COUNTER {
        return Err(format!(
            "counter {c} is beyond the largest tessera stores ({})",
            tessera_engine::tokens::MAX_COUNTER
        ));
    }
    Ok(c)
}
