//! `tessera token add`: check the options against the type, hash the PIN, seal the key under the
//! serial, insert. Prints the serial, and for a generated key its `otpauth://` URI.

use super::{input, CliResult, Failure};
use crate::args::AddArgs;
use tessera_engine::auth::{self, Clock, SystemClock};
use tessera_engine::config::Config;
use tessera_engine::crypto::{self, Secret};
pub(crate) use tessera_engine::enroll::new_serial;
use tessera_engine::enroll::{login_name, otpauth_uri, qr, random_key, KeyUri};
use tessera_engine::error::Kind;
use tessera_engine::store::TokenRecord;
use tessera_engine::tokens::{tan, Algorithm, TokenInfo, TokenType};

/// Longest static password of a `pw` token, in bytes (a PAM pass holds PIN + password).
const MAX_PW: usize = 256;
/// Recovery codes of a tan token without `--count` (Google and privacyIDEA's default is 10).
const DEFAULT_TAN_COUNT: u32 = 10;
/// Longest OTP key accepted, in bytes (HMAC hashes longer keys anyway).
const MAX_KEY: usize = 128;

/// A token about to be enrolled, its options checked.
pub(crate) struct Plan {
    kind: TokenType,
    pub(crate) realm: String,
    digits: u32,
    algorithm: Algorithm,
    period: u64,
    counter: u64,
    key: Secret,
    generated: bool,
    /// Type-specific settings: email, phone, ocra_suite, 4eyes, the number of tan codes.
    pub(crate) info: TokenInfo,
    /// The recovery codes of a tan token, shown once.
    pub(crate) codes: Vec<Secret>,
}

/// `token add --user U`: one token. (With `--group` instead, [`crate::rollout`] issues
/// registration codes.)
pub fn add(cfg: &Config, a: &AddArgs) -> CliResult<()> {
    let Some(user) = a.user.as_deref() else {
        return Err(Failure::usage("--user names the token's owner"));
    };
    let plan = plan(cfg, a)?;
    if let Some(s) = &a.serial {
        check_serial(s)?;
    }
    let user = account_of(user);
    // What is shown once and never again (a generated key, its URI and QR code) is made before
    // anything is written: a QR code too large for the URI must not leave a saved token whose
    // key nobody saw.
    let shown = if matches!(plan.kind, TokenType::Tan | TokenType::Registration) {
        // The recovery codes (or the registration code), one a line: printed here once,
        // stored only as keyed hashes.
        let mut s = String::with_capacity(plan.codes.len() * (plan.digits as usize + 1));
        for c in &plan.codes {
            s.push_str(std::str::from_utf8(c).unwrap_or_default());
            s.push('\n');
        }
        s
    } else if plan.generated && plan.kind == TokenType::Ocra {
        // No otpauth:// form exists for OCRA: the key goes to the device in hex.
        format!("{}\n", crypto::encode_hex(&plan.key))
    } else if plan.generated {
        let key_uri = KeyUri {
            kind: plan.kind,
            key: &plan.key,
            algorithm: plan.algorithm,
            digits: plan.digits,
            period: plan.period,
            counter: plan.counter,
        };
        let uri = otpauth_uri(&a.issuer, &login_name(cfg, &user, &plan.realm), &key_uri);
        let qr = match a.qr {
            Some(bg) => format!("{}\n", qr::render(&uri, bg.into())?),
            None => String::new(),
        };
        format!("{uri}\n{qr}")
    } else {
        String::new()
    };
    let shown = zeroize::Zeroizing::new(shown);
    let rule = cfg.auth.pin_rule();
    let pin = input::pin_from_args(a.pin.pin.as_deref(), a.pin.pin_stdin, &rule)?;
    let store = auth::open_store(cfg)?;
    let store_key = auth::load_key(cfg)?;
    let pin_hash = pin
        .map(|p| crypto::hash_pin(&p, &store_key.pepper()))
        .transpose()?;
    let pin_rule = pin_hash.as_ref().map(|_| rule.id());
    let record = TokenRecord {
        pin_hash,
        info: TokenInfo {
            pin_rule,
            ..plan.info.clone()
        },
        ..record_of(a, &plan, &user)
    };
    let record = save(&store, &store_key, a.serial.as_deref(), record, &plan)?;
    // The note first (stderr, wrapped at 80 columns): on a terminal too short for everything,
    // it is what scrolls away, not the serial, the URI or the code.
    if let Some(note) = next_code_note(&plan) {
        eprintln!("{}", crate::output::wrapped("tessera: ", &note, 80));
    }
    // Printed in one write; if it fails (a closed pipe, a full disk) the token is taken back:
    // a generated key that was never shown must not stay enrolled.
    let printed = {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        out.write_all(format!("{}\n", record.serial).as_bytes())
            .and_then(|()| out.write_all(shown.as_bytes()))
            .and_then(|()| out.flush())
    };
    if let Err(e) = printed {
        store.remove_token(&record.serial)?;
        return Err(Failure::invalid(format!(
            "stdout: {e}; token {} was not enrolled",
            record.serial
        )));
    }
    Ok(())
}

/// The token `plan` makes for `user`, without a PIN, serial or key yet.
pub(crate) fn record_of(a: &AddArgs, plan: &Plan, user: &str) -> TokenRecord {
    TokenRecord {
        digits: plan.digits,
        algorithm: plan.algorithm,
        period: plan.period,
        counter: plan.counter,
        info: plan.info.clone(),
        description: a.description.clone().unwrap_or_default(),
        created: SystemClock.now(),
        ..TokenRecord::new("", user, &plan.realm, plan.kind, Vec::new())
    }
}

/// Inserts `record` under `serial`, or a generated one (drawn again on the unlikely clash with
/// an existing one), its key sealed under it. Returns what was saved.
pub(crate) fn save(
    store: &tessera_engine::store::SqliteStore,
    store_key: &crypto::StoreKey,
    serial: Option<&str>,
    mut record: TokenRecord,
    plan: &Plan,
) -> CliResult<TokenRecord> {
    let mut tries = if serial.is_some() { 1 } else { 5 };
    loop {
        record.serial = serial.map_or_else(|| new_serial(plan.kind), str::to_string);
        record.sealed_key = store_key.seal(&record.serial, &plan.key);
        tries -= 1;
        match store.insert_token(&record) {
            Ok(()) => return Ok(record),
            Err(e) if e.kind() == Kind::Invalid && tries > 0 => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// What a user trying the new token trips over: a code is accepted once, so the login right
/// after a test login fails with the same code (audited as "replayed").
fn next_code_note(p: &Plan) -> Option<String> {
    match p.kind {
        TokenType::Totp => Some(format!(
            "each code is accepted once: after a test login, wait for the app's next code (a new \
             one every {} s) before you log in again",
            p.period
        )),
        TokenType::Hotp => {
            Some("each code is accepted once: take a new code from the app for every login".into())
        }
        TokenType::Tan => Some(format!(
            "the {} recovery codes above are shown only now: keep them safe; each is accepted \
             once, typed after the PIN",
            p.codes.len()
        )),
        TokenType::Registration => Some(format!(
            "the registration code above is shown only now: give it to the user, who types it \
             at a login's first prompt to enroll a token of their own before {} UTC; it is used \
             up once that token is saved",
            p.info
                .expires
                .map_or_else(String::new, crate::output::minute)
        )),
        _ => None,
    }
}

/// Checks the options against the type and works out the token's parameters.
pub(crate) fn plan(cfg: &Config, a: &AddArgs) -> CliResult<Plan> {
    let kind = a.kind;
    check_options(kind, a)?;
    let realm = check_names(cfg, a)?;
    if a.qr.is_some() && !matches!(kind, TokenType::Hotp | TokenType::Totp) {
        return Err(Failure::usage("--qr is for hotp and totp tokens"));
    }
    if a.qr.is_some() && !a.genkey {
        // Only a generated key is ever shown.
        return Err(Failure::usage("--qr needs --genkey"));
    }
    let has_pin = a.pin.pin.is_some() || a.pin.pin_stdin;
    let algorithm = a.algorithm.unwrap_or(Algorithm::Sha1);
    let mut plan = Plan {
        kind,
        realm,
        digits: 0,
        algorithm,
        period: 30,
        counter: 0,
        key: crypto::secret(b""),
        generated: false,
        info: TokenInfo::default(),
        codes: Vec::new(),
    };
    settings(cfg, a, &mut plan, has_pin)?;
    plan.info.origin = Some(tessera_engine::tokens::Origin::Admin);
    Ok(plan)
}

/// The type-specific options of `token add`, against the type's spec: an option of another
/// type is refused, and an option the type can't do without must be there.
fn check_options(kind: TokenType, a: &AddArgs) -> CliResult<()> {
    let given = [
        ("--email", a.email.is_some()),
        ("--phone", a.phone.is_some()),
        ("--ocra-suite", a.ocra_suite.is_some()),
        ("--4eyes", a.four_eyes.is_some()),
        ("--key", a.key.is_some()),
        ("--genkey", a.genkey),
        ("--digits", a.digits.is_some()),
        ("--algorithm", a.algorithm.is_some()),
        ("--period", a.period.is_some()),
        ("--counter", a.counter.is_some()),
        ("--count", a.count.is_some()),
        ("--valid-for", a.valid_for.is_some()),
    ];
    let spec = kind.spec();
    if let Some((flag, _)) = given
        .iter()
        .find(|(f, g)| *g && !spec.add_options.contains(f))
    {
        return Err(Failure::usage(format!(
            "{flag} does not apply to {} tokens",
            kind.name()
        )));
    }
    if let Some(flag) = spec
        .add_required
        .iter()
        .find(|r| !given.iter().any(|(f, g)| f == *r && *g))
    {
        return Err(Failure::usage(format!(
            "a {} token needs {flag}",
            kind.name()
        )));
    }
    Ok(())
}

/// A user name the engine can look up, without the realm separator.
pub(crate) fn check_user(cfg: &Config, user: &str) -> CliResult<()> {
    check_name("user", user)?;
    if let Some(sep) = cfg.auth.realm_separator.as_deref() {
        if user.contains(sep) {
            return Err(Failure::usage(format!(
                "the user name contains the realm separator \"{sep}\"; give the realm with --realm"
            )));
        }
    }
    Ok(())
}

/// The user, realm and description as given: names the engine can look up. Returns the realm.
fn check_names(cfg: &Config, a: &AddArgs) -> CliResult<String> {
    if let Some(user) = a.user.as_deref() {
        check_user(cfg, user)?;
    }
    let realm = a
        .realm
        .clone()
        .unwrap_or_else(|| cfg.auth.default_realm.clone());
    check_name("realm", &realm)?;
    if let Some(d) = &a.description {
        if d.chars().any(char::is_control) {
            return Err(Failure::usage(
                "the description contains control characters",
            ));
        }
    }
    Ok(realm)
}

/// The settings of the type: digits, key (given or generated), counter, its info.
fn settings(cfg: &Config, a: &AddArgs, plan: &mut Plan, has_pin: bool) -> CliResult<()> {
    let (kind, algorithm) = (plan.kind, plan.algorithm);
    match kind {
        TokenType::Hotp | TokenType::Totp => {
            plan.digits = a.digits.unwrap_or(6);
            if !matches!(plan.digits, 6 | 8) {
                return Err(Failure::usage("--digits must be 6 or 8"));
            }
            plan.period = a.period.unwrap_or(30);
            if !matches!(plan.period, 30 | 60) {
                return Err(Failure::usage("--period must be 30 or 60"));
            }
            plan.counter = counter_arg(a.counter)?;
            plan.key = match &a.key {
                Some(hex) => otp_key(hex)?,
                None if a.genkey => {
                    plan.generated = true;
                    random_key(algorithm)
                }
                None => {
                    return Err(Failure::usage(format!(
                        "a {} token needs --key HEX or --genkey",
                        kind.name()
                    )))
                }
            };
        }
        TokenType::Pw => {
            let hex = a.key.as_deref().ok_or_else(|| {
                Failure::usage("a pw token needs its static password in hex: --key HEX")
            })?;
            plan.key = static_password(hex)?;
            plan.digits = plan.key.len() as u32;
        }
        TokenType::Email => {
            let address = a.email.as_deref().unwrap_or_default();
            if !tessera_engine::tokens::email::valid_address(address) {
                return Err(Failure::usage(format!(
                    "--email \"{address}\" is not a plain user@domain address"
                )));
            }
            plan.digits = cfg.email.otp_length;
            plan.info = TokenInfo {
                email: Some(address.to_string()),
                ..TokenInfo::default()
            };
        }
        TokenType::Sms => {
            let phone = a.phone.as_deref().unwrap_or_default();
            if !tessera_engine::tokens::sms::valid_phone(phone) {
                return Err(Failure::usage(format!(
                    "--phone \"{phone}\" is not a phone number (+, then 4 to 20 digits)"
                )));
            }
            plan.digits = cfg.sms.otp_length;
            plan.info = TokenInfo {
                phone: Some(phone.to_string()),
                ..TokenInfo::default()
            };
        }
        TokenType::Ocra => {
            let text = a.ocra_suite.as_deref().unwrap_or_default();
            let suite = tessera_engine::tokens::Ocra::new(text)
                .map_err(|e| Failure::usage(format!("--ocra-suite: {e}")))?
                .suite;
            plan.digits = suite.digits;
            plan.algorithm = suite.algorithm;
            plan.counter = counter_arg(a.counter)?;
            plan.key = match &a.key {
                Some(hex) => otp_key(hex)?,
                None if a.genkey => {
                    plan.generated = true;
                    random_key(suite.algorithm)
                }
                None => return Err(Failure::usage("an ocra token needs --key HEX or --genkey")),
            };
            plan.info = TokenInfo {
                ocra_suite: Some(text.to_string()),
                ..TokenInfo::default()
            };
        }
        TokenType::Tan => {
            plan.digits = a.digits.unwrap_or(tan::DEFAULT_DIGITS);
            if !(tan::MIN_DIGITS..=tan::MAX_DIGITS).contains(&plan.digits) {
                return Err(Failure::usage(format!(
                    "--digits must be {} to {} for tan codes",
                    tan::MIN_DIGITS,
                    tan::MAX_DIGITS
                )));
            }
            let count = a.count.unwrap_or(DEFAULT_TAN_COUNT);
            if count == 0 || count > tan::MAX_CODES {
                return Err(Failure::usage(format!(
                    "--count must be 1 to {}",
                    tan::MAX_CODES
                )));
            }
            let g = tan::new_codes(count, plan.digits)?;
            plan.key = g.key;
            plan.codes = g.codes;
            plan.generated = true;
            plan.info = TokenInfo {
                count: Some(count),
                ..TokenInfo::default()
            };
        }
        TokenType::Registration => {
            if has_pin {
                return Err(Failure::usage(
                    "a registration token has no PIN: its code is the whole pass",
                ));
            }
            use tessera_engine::tokens::registration;
            let g = registration::generate(&mut rand::rngs::OsRng)?;
            plan.digits = registration::CODE_LEN;
            plan.key = g.key;
            plan.codes = vec![g.code];
            plan.generated = true;
            let valid_for = a.valid_for.unwrap_or(registration::DEFAULT_VALID_FOR);
            plan.info.expires = Some(SystemClock.now().saturating_add(valid_for));
        }
        TokenType::FourEyes => {
            if has_pin {
                return Err(Failure::usage(
                    "a 4eyes token has no PIN of its own: its pass is the other users' PIN+OTPs",
                ));
            }
            let spec = a.four_eyes.as_deref().unwrap_or_default();
            let sep = a.separator.as_deref().unwrap_or(" ");
            let policy = tessera_engine::tokens::four_eyes::Policy::parse(spec, sep)
                .map_err(|e| Failure::usage(e.to_string()))?;
            check_name("realm", &policy.realm)?;
            plan.info = policy.to_info();
        }
        _ => {
            if !has_pin {
                return Err(Failure::usage(
                    "a spass token needs a PIN (--pin or --pin-stdin): its pass is the PIN alone",
                ));
            }
        }
    }
    Ok(())
}

fn decode_key(hex: &str) -> CliResult<Secret> {
    crypto::decode_hex(hex.trim())
        .ok_or_else(|| Failure::usage("--key is not hex (an even number of digits 0-9, a-f)"))
}

fn otp_key(hex: &str) -> CliResult<Secret> {
    let key = decode_key(hex)?;
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(Failure::usage(format!(
            "--key must be 1 to {MAX_KEY} bytes"
        )));
    }
    if key.len() < 16 {
        super::warn(&format!(
            "the key has only {} bits; RFC 4226 asks for at least 128",
            key.len() * 8
        ));
    }
    Ok(key)
}

fn static_password(hex: &str) -> CliResult<Secret> {
    let pw = decode_key(hex)?;
    if pw.is_empty() || pw.len() > MAX_PW {
        return Err(Failure::usage(format!(
            "the static password must be 1 to {MAX_PW} bytes"
        )));
    }
    if pw.iter().any(|b| b.is_ascii_control()) {
        return Err(Failure::usage(
            "the static password contains control characters, which can't be typed",
        ));
    }
    Ok(pw)
}

pub(crate) fn check_serial(s: &str) -> CliResult<()> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(Failure::usage(
            "--serial must be 1 to 64 characters of A-Z, a-z, 0-9, '-', '_', '.', ':'",
        ))
    }
}

/// User and realm names as the engine can look them up.
pub(crate) fn check_name(what: &str, s: &str) -> CliResult<()> {
    if s.is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
        return Err(Failure::usage(format!(
            "the {what} name must be 1 to 256 bytes without control characters"
        )));
    }
    Ok(())
}

/// `--counter`, below [`tessera_engine::tokens::MAX_COUNTER`] (the store's integers are
/// signed): an accepted code moves the counter one past it, so a token at the top could never
/// log in.
fn counter_arg(c: Option<u64>) -> CliResult<u64> {
    let c = c.unwrap_or(0);
    let top = tessera_engine::tokens::MAX_COUNTER - 1;
    if c > top {
        return Err(Failure::usage(format!(
            "--counter must be at most {top}: a login moves the counter one past the code it \
             accepts, and it can't go beyond {}",
            tessera_engine::tokens::MAX_COUNTER
        )));
    }
    Ok(c)
}

/// The account's own name for `--user` (logins look tokens up by it: see
/// `auth::resolve_user`); a name that is no account here is kept as given, with a warning,
/// since the account may come later (a directory not yet joined).
pub(crate) fn account_of(user: &str) -> String {
    match tessera_engine::os::sys::account_name(user) {
        Some(canonical) => {
            if canonical != user {
                eprintln!(
                    "tessera: \"{user}\" is the account \"{canonical}\": enrolled as {canonical}"
                );
            }
            canonical
        }
        None => {
            eprintln!(
                "tessera: warning: no account \"{}\" on this host: logins use this token only once it exists",
                user.escape_debug()
            );
            user.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_checked() {
        assert!(check_serial(&new_serial(TokenType::Hotp)).is_ok());
        assert!(check_serial("a b").is_err() && check_serial("").is_err());
    }
}
