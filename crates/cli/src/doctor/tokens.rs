//! What the store holds: that the key opens every token's key, tokens without a PIN where
//! pam_tessera is the only factor, PINs set under another PIN rule, sources and tokens locked by
//! failures, and registration codes waiting or expired. Apart because these read the store's
//! tokens and failure counts, once the files and the PAM stack are checked.

use super::report::Report;
use crate::CliResult;
use tessera_engine::config::Config;
use tessera_engine::store::{SqliteStore, TokenRecord};
use tessera_engine::tokens::TokenType;

/// Every stored key must open with the key file: a wrong key file locks everyone out.
pub(super) fn check_tokens(
    r: &mut Report,
    listed: &tessera_engine::error::Result<Vec<TokenRecord>>,
    key: &tessera_engine::crypto::StoreKey,
) -> CliResult<()> {
    let tokens = match listed {
        Ok(t) => t,
        Err(e) => return r.fail(&e.to_string()),
    };
    let bad: Vec<&str> = tokens
        .iter()
        .filter(|t| key.open(&t.serial, &t.sealed_key).is_err())
        .map(|t| t.serial.as_str())
        .collect();
    if tokens.is_empty() {
        r.warn("no tokens enrolled yet (tessera token add)")
    } else if bad.is_empty() {
        r.ok(&format!("key opens all {} token key(s)", tokens.len()))
    } else {
        r.fail(&format!(
            "the key file does not open the keys of {} token(s): {}",
            bad.len(),
            bad.join(", ")
        ))
    }
}

/// Sources (or, with `lock_scope = "token"`, tokens) that failures lock now: a warning naming
/// the first few, and how to open them. `tokens`: as listed, or `None` where that failed (read
/// again here, so that the error ends the command as before).
pub(super) fn check_locks(
    r: &mut Report,
    store: &SqliteStore,
    tokens: Option<&Vec<TokenRecord>>,
    cfg: &Config,
) -> CliResult<()> {
    use tessera_engine::auth::Clock;
    let now = tessera_engine::auth::SystemClock.now();
    let auth = &cfg.auth;
    let mut locked: Vec<String> = match auth.lock_scope {
        tessera_engine::config::LockScope::Source => store
            .source_failures_of(None)?
            .into_iter()
            .filter(|f| auth.locks(f.count, Some(f.last_fail), now))
            .map(|f| format!("{} from {}", f.user, f.source))
            .collect(),
        tessera_engine::config::LockScope::Token => match tokens {
            Some(t) => std::borrow::Cow::Borrowed(t),
            None => std::borrow::Cow::Owned(store.list_tokens(None)?),
        }
        .iter()
        .filter(|t| auth.locks(t.fail_count, t.last_fail, now))
        .map(|t| format!("{}/{}", t.user, t.serial))
        .collect(),
    };
    // A user's class of sources refused by the sum of its failures (`account_max_fail`).
    locked.extend(
        store
            .class_failures_of(None)?
            .into_iter()
            .filter(|f| auth.class_locks(f.count, f.last_fail, now))
            .map(|f| format!("{} from every {} source", f.user, f.class)),
    );
    if locked.is_empty() {
        return r.ok("no source or token is locked by failures");
    }
    let shown: Vec<&str> = locked.iter().take(10).map(String::as_str).collect();
    let more = locked.len().saturating_sub(shown.len());
    r.warn(&format!(
        "{} locked by failures: {}{} (tessera token show SERIAL; tessera token reset SERIAL \
         opens them)",
        locked.len(),
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ))
}
/// Tokens without a PIN, where a service has pam_tessera alone with `otppin = "token"`
/// (`alone`, from [`check_pam`](super::pam::check_pam)): their code alone logs in there.
/// Nothing to say otherwise.
pub(super) fn check_pinless(
    r: &mut Report,
    tokens: &[TokenRecord],
    alone: &[String],
) -> CliResult<()> {
    if alone.is_empty() {
        return Ok(());
    }
    // Not every token without a PIN hash is a token without a PIN: a registration code is a
    // one-time secret that enrolls a token (with a PIN) at its user's first login, and a 4eyes
    // token's pass is the other users' PIN+OTPs.
    let has_no_pin = |t: &&TokenRecord| {
        t.active
            && t.pin_hash.is_none()
            && !matches!(t.kind, TokenType::Registration | TokenType::FourEyes)
    };
    let pinless: Vec<(&str, &str)> = tokens
        .iter()
        .filter(has_no_pin)
        .map(|t| (t.user.as_str(), t.serial.as_str()))
        .collect();
    if pinless.is_empty() {
        return Ok(());
    }
    r.warn(&format!(
        "{} token(s) without a PIN ({}): in {}, pam_tessera.so is the only auth factor and \
         otppin = \"token\", so the code alone logs in; {}",
        pinless.len(),
        crate::output::clean(&crate::output::some_tokens(&pinless)),
        alone.join(", "),
        crate::import::PIN_FIX
    ))
}

/// Tokens whose PIN was set under another PIN rule than the config's, or before rules were kept
/// (older versions, imports): a PIN is kept only as a hash, so the rule can't be checked
/// against it; their owners set a new one.
pub(super) fn check_pin_rule(
    r: &mut Report,
    tokens: &[TokenRecord],
    cfg: &Config,
) -> CliResult<()> {
    let rule = cfg.auth.pin_rule();
    let with_pin: Vec<&TokenRecord> = tokens.iter().filter(|t| t.pin_hash.is_some()).collect();
    let older: Vec<(&str, &str)> = with_pin
        .iter()
        .filter(|t| t.info.pin_rule.as_deref() != Some(rule.id().as_str()))
        .map(|t| (t.user.as_str(), t.serial.as_str()))
        .collect();
    if with_pin.is_empty() {
        return Ok(());
    }
    if older.is_empty() {
        return r.ok(&format!(
            "PIN rule: every PIN was set under the current one ({})",
            rule.describe()
        ));
    }
    r.warn(&format!(
        "{} token PIN(s) set before the current PIN rule ({}) or under another: {}; a PIN is \
         kept only as a hash, so the rule can't be checked against it: have their owners set a \
         new one (`tessera token set-pin SERIAL`)",
        older.len(),
        rule.describe(),
        crate::output::clean(&crate::output::some_tokens(&older)),
    ))
}

/// Registration codes not used yet: those waiting (said, so that they are not taken for tokens
/// without a PIN), and those that expired unused: the users they were for have not enrolled.
/// (A code is refused once expired, like a wrong one; `token remove` tidies it away.)
pub(super) fn check_registrations(r: &mut Report, tokens: &[TokenRecord]) -> CliResult<()> {
    use tessera_engine::auth::Clock;
    let now = tessera_engine::auth::SystemClock.now();
    // Only a registration code has an expiry.
    let (mut expired, mut waiting) = (Vec::new(), Vec::new());
    for t in tokens {
        let Some(expires) = t.expires() else { continue };
        if t.counter >= tessera_engine::tokens::registration::USED {
            continue;
        }
        let named = (t.user.as_str(), t.serial.as_str());
        if now >= expires {
            expired.push(named);
        } else {
            waiting.push(named);
        }
    }
    if !waiting.is_empty() {
        // Said, so that an admin who sees these tokens without a PIN hash in `token list`
        // knows they are not tokens without a PIN.
        r.ok(&format!(
            "{} registration code(s) not used yet ({}): each is a one-time secret that enrolls \
             a token, with a PIN, at its user's first login; not a token without a PIN",
            waiting.len(),
            crate::output::clean(&crate::output::some_tokens(&waiting)),
        ))?;
    }
    if expired.is_empty() {
        return Ok(());
    }
    r.warn(&format!(
        "{} registration code(s) expired unused ({}): those users have not enrolled; issue a \
         new code (tessera token add --type registration) and remove the old one",
        expired.len(),
        crate::output::clean(&crate::output::some_tokens(&expired)),
    ))
}
