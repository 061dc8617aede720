//! A user enrolls a token for themselves: a PIN is set, the new key is shown (the `otpauth://`
//! URI and its QR code, as information lines of the conversation), and the token is saved only
//! once the user types a right code from it. A wrong code, a closed conversation or an error
//! leaves nothing behind. Who may do this, and the token a user who has one must pass first,
//! are decided before (`login::self_enroll`).
//!
//! The key and the URI are secrets: they go to the user through the conversation only, never
//! to an audit row or a log line, and are wiped from memory after use.

use super::qr::{self, Background};
use super::{login_name, new_serial, otpauth_uri, random_key, KeyUri};
use crate::auth::{answer, Clock, Conversation};
use crate::config::{Config, OtpPin};
use crate::crypto::{self, Secret, StoreKey};
use crate::error::Error;
use crate::store::{AuditEntry, AuditResult, Store, TokenRecord};
use crate::tokens::{self, Algorithm, CheckContext, TokenParams, TokenType};

/// The service an enrollment is audited under.
pub const SERVICE: &str = "tessera-enroll";
/// Codes a user may type before the new token is given up.
pub const CODE_TRIES: usize = 3;
/// New PINs a user may type (refused by the PIN rule, or not repeated alike) before the
/// enrollment is given up.
pub const PIN_TRIES: usize = 3;
/// The longest code answer read (anything longer is wrong anyway).
const MAX_CODE: usize = 64;

/// Who enrolls: an account of this host, named by the daemon from the caller's uid (never by
/// the caller's word), or the owner of a registration code.
#[derive(Debug, Clone)]
pub struct Enrollee {
    /// The account's own name (NSS's `pw_name`).
    pub user: String,
    pub realm: String,
    /// The uid of the process that asks (audited as the caller).
    pub uid: u32,
    /// The service and remote host the audit rows name.
    pub service: String,
    pub rhost: String,
}

/// The token to make.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub kind: TokenType,
    /// The terminal the QR code is drawn for.
    pub qr: Background,
    /// The user had no token when the dialogue began: the new one is then saved only if that
    /// is still so (two enrollments at once make one token, not two without a check of either).
    pub first: bool,
    /// The registration token whose code started the dialogue: used up in the transaction
    /// that saves the new token, which is saved only if the code is still unused then (two
    /// logins with one code make one token).
    pub spend: Option<String>,
}

/// How an enrollment ended.
#[derive(Debug)]
pub enum Enrolled {
    /// The token is saved.
    Saved { serial: String },
    /// Refused or given up; the text is what the user is told.
    Refused(String),
    /// The store, the key or the conversation failed; nothing was saved.
    Failed(Error),
}

/// An enrollment's end and its audit events (already written where the store could be used; the
/// caller sends them to syslog).
#[derive(Debug)]
pub struct Enrollment {
    pub outcome: Enrolled,
    pub events: Vec<AuditEntry>,
}

impl Enrollment {
    /// An enrollment refused before any token was made: the reason goes to the audit table (when
    /// `store` can be written) and to the user.
    /// An enrollment refused before any work: `told` to the user, `reason` in its audit row
    /// (which the host writes: `Resources::audit_refusal`).
    pub fn refused(who: &Enrollee, now: u64, told: &str, reason: &str) -> Enrollment {
        let e = event(who, now, None, AuditResult::Reject, reason);
        Enrollment {
            outcome: Enrolled::Refused(told.into()),
            events: vec![e],
        }
    }
}

/// One audit row of an enrollment; `serial` and `kind` are the new token's.
fn event(
    who: &Enrollee,
    now: u64,
    token: Option<(&str, TokenType)>,
    result: AuditResult,
    reason: &str,
) -> AuditEntry {
    AuditEntry {
        time: now,
        service: who.service.clone(),
        rhost: who.rhost.clone(),
        user: who.user.clone(),
        realm: who.realm.clone(),
        serial: token.map(|t| t.0.to_string()).unwrap_or_default(),
        kind: token.map(|t| t.1.name().to_string()).unwrap_or_default(),
        result,
        reason: reason.into(),
        caller: Some(who.uid),
        ..AuditEntry::default()
    }
}

/// Makes the token, shows it, sets its PIN, checks a code from it, saves it.
pub fn make_token<S: Store>(
    cfg: &Config,
    store: &S,
    key: &StoreKey,
    clock: &impl Clock,
    who: &Enrollee,
    wanted: Wanted,
    conv: &mut impl Conversation,
) -> Enrollment {
    let kind = wanted.kind;
    let bg = wanted.qr;
    let serial = new_serial(kind);
    let token = Some((serial.as_str(), kind));
    let params = TokenParams {
        kind,
        digits: 6,
        algorithm: Algorithm::Sha1,
        period: 30,
        drift: 0,
        ocra_suite: None,
        expires: None,
    };
    let otp_key = random_key(params.algorithm);
    let end = |result: AuditResult, reason: &str, outcome: Enrolled| {
        let e = event(who, clock.now(), token, result, reason);
        let _ = store.write(|tx| tx.audit(&e));
        Enrollment {
            outcome,
            events: vec![e],
        }
    };
    // What is made, then the PIN: the URI and its QR code come last, so that they stay on the
    // screen above the prompt for a code from the app (inside 80x24).
    let account = login_name(cfg, &who.user, &who.realm);
    let pin = conv
        .info(&format!(
            "New {} token {serial} for {account}.",
            kind.name().to_ascii_uppercase()
        ))
        .and_then(|()| new_pin(cfg, conv));
    let pin = match pin {
        Ok(Ok(pin)) => pin,
        Ok(Err(told)) => {
            return end(
                AuditResult::Reject,
                &format!("enrollment given up: {told}; nothing saved"),
                Enrolled::Refused(format!("{told}; nothing was saved")),
            )
        }
        Err(e) => {
            return end(
                AuditResult::Reject,
                &format!("enrollment not finished: {e}; nothing saved"),
                Enrolled::Failed(e),
            )
        }
    };
    let shown = show(cfg, &account, &otp_key, &params, bg, conv);
    let counter = match shown.and_then(|()| confirm(cfg, clock, &otp_key, &params, conv)) {
        Ok(Some(counter)) => counter,
        Ok(None) => {
            let told = format!("{CODE_TRIES} wrong codes from the new token");
            return end(
                AuditResult::Reject,
                &format!("enrollment given up: {told}; nothing saved"),
                Enrolled::Refused(format!(
                    "{told}; nothing was saved (is the phone's clock right?)"
                )),
            );
        }
        Err(e) => {
            return end(
                AuditResult::Reject,
                &format!("enrollment not finished: {e}; nothing saved"),
                Enrolled::Failed(e),
            )
        }
    };
    let pepper = key.pepper();
    // At the gate like a login's hashes, in the queue of the enrolling user's uid.
    let queue = format!("uid={}", who.uid);
    let hasher = crypto::PinHasher {
        pepper: &pepper,
        turn: crypto::Turn {
            queue: &queue,
            parallel: cfg.auth.pin_hashes_at_once(),
        },
    };
    let pin_hash = match pin.map(|p| hasher.hash(&p)).transpose() {
        Ok(h) => h,
        Err(e) => return end(AuditResult::Error, &e.to_string(), Enrolled::Failed(e)),
    };
    let pin_rule = pin_hash.as_ref().map(|_| cfg.auth.pin_rule().id());
    let record = TokenRecord {
        pin_hash,
        digits: params.digits,
        algorithm: params.algorithm,
        period: params.period,
        counter,
        description: match &wanted.spend {
            Some(reg) => format!("enrolled by its user with the registration code {reg}"),
            None => "enrolled by its user (tessera enroll)".into(),
        },
        info: tokens::TokenInfo {
            origin: Some(match wanted.spend {
                Some(_) => tokens::Origin::Registration,
                None => tokens::Origin::SelfService,
            }),
            pin_rule,
            registration: wanted.spend.clone(),
            ..tokens::TokenInfo::default()
        },
        created: clock.now(),
        ..TokenRecord::new(
            &serial,
            &who.user,
            &who.realm,
            kind,
            key.seal(&serial, &otp_key),
        )
    };
    let done = event(
        who,
        clock.now(),
        token,
        AuditResult::Enroll,
        "token enrolled by its user",
    );
    let saved = store.write(|tx| {
        if wanted.first && !tx.tokens_of(&who.user, &who.realm)?.is_empty() {
            return Ok(false);
        }
        if let Some(reg) = &wanted.spend {
            match tx.token(reg)? {
                Some(t) if t.active && t.counter < tokens::registration::USED => {
                    tx.record_success(reg, tokens::registration::USED)?
                }
                _ => return Ok(false),
            }
        }
        tx.insert_token(&record)?;
        tx.audit(&done)?;
        Ok(true)
    });
    match saved {
        Ok(true) => {
            let _ = conv.info(&format!(
                "Token {serial} is saved: log in with {}.",
                match cfg.auth.otppin {
                    OtpPin::Token => "its PIN followed by a code from the app",
                    _ => "a code from the app",
                }
            ));
            Enrollment {
                outcome: Enrolled::Saved { serial },
                events: vec![done],
            }
        }
        Ok(false) if wanted.spend.is_some() => end(
            AuditResult::Reject,
            "enrollment refused: the registration code was used meanwhile; nothing saved",
            Enrolled::Refused("the registration code was used meanwhile".into()),
        ),
        Ok(false) => end(
            AuditResult::Reject,
            "enrollment refused: a token was enrolled for the user meanwhile; nothing saved",
            Enrolled::Refused(
                "a token was enrolled for you meanwhile: enroll again, passing it first".into(),
            ),
        ),
        Err(e) => end(
            AuditResult::Error,
            &format!("enrollment not saved: {e}"),
            Enrolled::Failed(e),
        ),
    }
}

/// The new token's URI and QR code, as information lines.
fn show(
    cfg: &Config,
    account: &str,
    otp_key: &[u8],
    p: &TokenParams,
    bg: Background,
    conv: &mut impl Conversation,
) -> Result<(), Error> {
    let uri = zeroize::Zeroizing::new(otpauth_uri(
        &cfg.enroll.issuer,
        account,
        &KeyUri {
            kind: p.kind,
            key: otp_key,
            algorithm: p.algorithm,
            digits: p.digits,
            period: p.period,
            counter: 0,
        },
    ));
    let art = zeroize::Zeroizing::new(qr::render(&uri, bg)?);
    conv.info(&uri)?;
    for line in art.lines() {
        conv.info(line)?;
    }
    Ok(())
}

/// The PIN of the new token, typed twice, hidden: `Ok(Ok(None))` where the config's `otppin`
/// needs no token PIN. A PIN the rule refuses, or two that differ, is said (with the rule) and
/// asked again, [`PIN_TRIES`] times in all: then `Ok(Err(why))`.
fn new_pin(
    cfg: &Config,
    conv: &mut impl Conversation,
) -> Result<std::result::Result<Option<Secret>, String>, Error> {
    if cfg.auth.otppin != OtpPin::Token {
        return Ok(Ok(None));
    }
    let rule = cfg.auth.pin_rule();
    let mut why = String::new();
    for n in 1..=PIN_TRIES {
        let first = answer(conv, "New PIN for the token: ", false)?;
        why = match rule.problem(&first) {
            Some(problem) => problem.to_string(),
            None => {
                let again = answer(conv, "Repeat the PIN: ", false)?;
                if crypto::ct_eq(&first, &again) {
                    return Ok(Ok(Some(first)));
                }
                "the two PINs differ".into()
            }
        };
        if n < PIN_TRIES {
            conv.error(&format!("{why}; try again."))?;
        }
    }
    Ok(Err(why))
}

/// Asks for a code of the new token up to [`CODE_TRIES`] times: the counter to store once one
/// is right (the code just typed is then used up), `None` after as many wrong ones.
fn confirm(
    cfg: &Config,
    clock: &impl Clock,
    otp_key: &[u8],
    p: &TokenParams,
    conv: &mut impl Conversation,
) -> Result<Option<u64>, Error> {
    let logic = tokens::for_params(p)?;
    for n in 1..=CODE_TRIES {
        let code = answer(conv, "Code from the app: ", true)?;
        let code: Vec<u8> = code
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .take(MAX_CODE)
            .collect();
        let code = zeroize::Zeroizing::new(code);
        let ctx = CheckContext {
            now: clock.now(),
            hotp_window: cfg.auth.hotp_window,
            totp_window: cfg.auth.totp_window,
        };
        if let Some(counter) = logic.check(otp_key, &code, 0, &ctx) {
            return Ok(Some(counter));
        }
        if n < CODE_TRIES {
            conv.error("That code is not right; try the current one.")?;
        }
    }
    Ok(None)
}
