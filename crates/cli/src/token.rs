//! `tessera token ...`: list, show, PIN, enable/disable, remove, reset, resync (`add` is in
//! `token_add.rs`).

use super::output::{self, Table};
use super::{input, token_add, CliResult, Failure};
use crate::args::TokenCmd;
use serde::Serialize;
use tessera_engine::auth::{self, Clock, SystemClock};
use tessera_engine::config::{Config, LockScope};
use tessera_engine::crypto;
use tessera_engine::store::{ClassFailures, SourceFailures, TokenRecord};
use tessera_engine::tokens::{self, CheckContext, TokenType};

pub fn run(cfg: &Config, cmd: TokenCmd) -> CliResult<()> {
    match cmd {
        TokenCmd::Add(a) if a.group.is_some() => crate::rollout::issue(cfg, &a),
        TokenCmd::Add(a) => token_add::add(cfg, &a),
        TokenCmd::List { user, kind, json } => list(cfg, user.as_deref(), kind, json),
        TokenCmd::Show { serial, json } => show(cfg, &serial, json),
        TokenCmd::SetPin {
            serial,
            pin,
            no_pin,
        } => set_pin(cfg, &serial, pin.pin.as_deref(), pin.pin_stdin, no_pin),
        TokenCmd::Enable { serial } => {
            auth::open_store(cfg)?.set_active(&serial, true)?;
            outln!("token {serial} enabled")
        }
        TokenCmd::Disable { serial } => {
            auth::open_store(cfg)?.set_active(&serial, false)?;
            outln!("token {serial} disabled")
        }
        TokenCmd::Remove { serial } => {
            auth::open_store(cfg)?.remove_token(&serial)?;
            outln!("token {serial} removed")
        }
        TokenCmd::Reset { serial } => {
            let store = auth::open_store(cfg)?;
            let t = store.get_token(&serial)?;
            store.reset_failures(&serial)?;
            // The failures of its user's sources and their sums too: the user is let in
            // again from anywhere.
            let n = store.clear_source_failures_of(&t.user, &t.realm)?;
            let c = store.clear_class_failures_of(&t.user, &t.realm)?;
            outln!(
                "token {serial}: fail counter cleared, and the failures of {n} source{} of {} \
                 and their sums for {c} class{} of sources",
                if n == 1 { "" } else { "s" },
                t.user,
                if c == 1 { "" } else { "es" },
            )
        }
        TokenCmd::Resync { serial, otp1, otp2 } => resync(cfg, &serial, &otp1, &otp2),
    }
}

/// A token as listed: the stored fields (never the PIN hash or the key) and two derived ones.
#[derive(Serialize)]
struct TokenView<'a> {
    #[serde(flatten)]
    token: &'a TokenRecord,
    has_pin: bool,
    /// The fail counter has reached `max_fail` (and `fail_clear_timeout` has not cleared it).
    locked: bool,
    /// tan: the recovery codes not used yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    codes_left: Option<u32>,
    /// `token show`: the failures counted on its user's sources (`lock_scope = "source"`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sources: Vec<SourceView>,
    /// `token show`: its user's failures summed per class of sources (`account_max_fail`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    classes: Vec<ClassView>,
    /// registration: the token enrolled with the code, once used.
    #[serde(skip_serializing_if = "Option::is_none")]
    enrolled_token: Option<String>,
}

/// One class's sum of failures, as shown.
#[derive(Serialize)]
struct ClassView {
    #[serde(flatten)]
    failures: ClassFailures,
    /// It refuses the user's logins from every source of the class now.
    locked: bool,
    /// When it opens by itself (`account_clear_timeout`), if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<u64>,
}

fn class_view(cfg: &Config, f: ClassFailures, now: u64) -> ClassView {
    ClassView {
        locked: cfg.auth.class_locks(f.count, f.last_fail, now),
        until: cfg.auth.class_opens_at(f.last_fail),
        failures: f,
    }
}

/// How a lock reads: ` locked until T`, ` locked (tessera token reset)`, or nothing.
fn lock_state(locked: bool, until: Option<u64>) -> String {
    match (locked, until) {
        (true, Some(u)) => format!(" locked until {}", output::time(u)),
        (true, None) => " locked (tessera token reset)".into(),
        (false, _) => String::new(),
    }
}

/// One source's failures, as shown.
#[derive(Serialize)]
struct SourceView {
    #[serde(flatten)]
    failures: SourceFailures,
    /// It refuses the user's logins from there now.
    locked: bool,
    /// When it opens by itself (`fail_clear_timeout`), if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<u64>,
}

fn source_view(cfg: &Config, f: SourceFailures, now: u64) -> SourceView {
    SourceView {
        locked: cfg.auth.locks(f.count, Some(f.last_fail), now),
        until: cfg.auth.lock_opens_at(f.last_fail),
        failures: f,
    }
}

/// A token as `--json` shows it: a registration code has no OTP algorithm, period or drift.
fn json_of(v: &TokenView) -> serde_json::Value {
    let mut j = serde_json::to_value(v).unwrap_or_default();
    if v.token.kind == TokenType::Registration {
        if let Some(o) = j.as_object_mut() {
            for k in ["algorithm", "period", "drift"] {
                o.remove(k);
            }
        }
    }
    j
}

/// What the COUNTER column says: an HOTP token's next counter; a TOTP token's last used step
/// as its time (UTC; its raw step number tells nobody anything); a tan token's codes left; a
/// registration code's state.
fn counter_column(v: &TokenView, now: u64) -> String {
    let t = v.token;
    if let Some((left, count)) = tan_codes(t) {
        return format!("{left}/{count} left");
    }
    if let Some(expires) = t.expires() {
        return registration_state(v, expires, now);
    }
    match t.kind {
        TokenType::Totp if t.counter == 0 => "-".into(),
        TokenType::Totp => {
            // The counter is the step after the last one used, on the device's clock.
            let step = (t.counter - 1) as i64 - t.drift;
            let at = u64::try_from(step).unwrap_or(0).saturating_mul(t.period);
            format!("used {}", output::minute(at))
        }
        _ => t.counter.to_string(),
    }
}

/// Where a registration code stands: used, expired (since when), or good until when.
fn registration_state(v: &TokenView, expires: u64, now: u64) -> String {
    let t = v.token;
    if t.counter >= tokens::registration::USED {
        match &v.enrolled_token {
            Some(serial) => format!("used: {serial}"),
            None => "used".into(),
        }
    } else if now >= expires {
        format!("expired {}", output::minute(expires))
    } else {
        format!("unused, expires {}", output::minute(expires))
    }
}

/// A tan token's codes (from its info) and how many of them are left.
fn tan_codes(t: &TokenRecord) -> Option<(u32, u32)> {
    if t.kind != TokenType::Tan {
        return None;
    }
    let count = t.info.count.unwrap_or(0).min(tokens::tan::MAX_CODES);
    Some((tokens::tan::left(count, t.counter), count))
}

fn view<'a>(cfg: &Config, t: &'a TokenRecord, now: u64) -> TokenView<'a> {
    TokenView {
        token: t,
        has_pin: t.has_pin(),
        // With lock_scope = "source" a token's count is shown, but locks nothing.
        locked: cfg.auth.lock_scope == LockScope::Token
            && cfg.auth.locks(t.fail_count, t.last_fail, now),
        codes_left: tan_codes(t).map(|(left, _)| left),
        sources: Vec::new(),
        classes: Vec::new(),
        enrolled_token: None,
    }
}

/// The tokens enrolled with a registration code, by the code's serial.
fn enrolled_with(tokens: &[TokenRecord]) -> std::collections::HashMap<String, String> {
    tokens
        .iter()
        .filter_map(|t| Some((t.info.registration.clone()?, t.serial.clone())))
        .collect()
}

fn fails(cfg: &Config, v: &TokenView) -> String {
    let lock = if v.locked { " locked" } else { "" };
    format!("{}/{}{lock}", v.token.fail_count, cfg.auth.max_fail)
}

fn list(cfg: &Config, user: Option<&str>, kind: Option<TokenType>, json: bool) -> CliResult<()> {
    let mut tokens = auth::open_store(cfg)?.list_tokens(user)?;
    let made = enrolled_with(&tokens);
    tokens.retain(|t| !kind.is_some_and(|k| t.kind != k));
    let now = SystemClock.now();
    let views: Vec<TokenView> = tokens
        .iter()
        .map(|t| TokenView {
            enrolled_token: made.get(&t.serial).cloned(),
            ..view(cfg, t, now)
        })
        .collect();
    if json {
        let views: Vec<serde_json::Value> = views.iter().map(json_of).collect();
        return output::json(&views);
    }
    let mut table = Table::new(&[
        "SERIAL",
        "TYPE",
        "USER",
        "REALM",
        "ACTIVE",
        "PIN",
        "FAILS",
        "COUNTER",
        "ENROLLED",
        "DESCRIPTION",
    ]);
    for v in &views {
        let t = v.token;
        table.row(vec![
            t.serial.clone(),
            t.kind.name().into(),
            t.user.clone(),
            t.realm.clone(),
            output::yes_no(t.active),
            output::yes_no(v.has_pin),
            fails(cfg, v),
            counter_column(v, now),
            t.info.origin.map_or("-", |o| o.name()).into(),
            t.description.clone(),
        ]);
    }
    table.print()
}

fn show(cfg: &Config, serial: &str, json: bool) -> CliResult<()> {
    let store = auth::open_store(cfg)?;
    let t = store.get_token(serial)?;
    let now = SystemClock.now();
    let mut v = view(cfg, &t, now);
    v.sources = store
        .source_failures_of(Some(&t.user))?
        .into_iter()
        .filter(|f| f.realm == t.realm)
        .map(|f| source_view(cfg, f, now))
        .collect();
    v.classes = store
        .class_failures_of(Some(&t.user))?
        .into_iter()
        .filter(|f| f.realm == t.realm)
        .map(|f| class_view(cfg, f, now))
        .collect();
    if t.kind == TokenType::Registration {
        v.enrolled_token = enrolled_with(&store.list_tokens(Some(&t.user))?).remove(serial);
    }
    if json {
        return output::json(&json_of(&v));
    }
    let mut f = vec![
        ("serial", t.serial.clone()),
        ("type", t.kind.name().into()),
        ("user", t.user.clone()),
        ("realm", t.realm.clone()),
        ("active", output::yes_no(t.active)),
        ("pin", if v.has_pin { "set" } else { "none" }.into()),
    ];
    match t.kind {
        TokenType::Hotp => f.extend([
            ("digits", t.digits.to_string()),
            ("algorithm", t.algorithm.name().into()),
            ("counter", t.counter.to_string()),
        ]),
        TokenType::Registration => f.push(("state", counter_column(&v, now))),
        TokenType::Totp => f.extend([
            ("digits", t.digits.to_string()),
            ("algorithm", t.algorithm.name().into()),
            ("period", t.period.to_string()),
            ("drift", t.drift.to_string()),
            ("next step", t.counter.to_string()),
        ]),
        TokenType::Pw => f.push(("length", t.digits.to_string())),
        TokenType::Tan => {
            let (left, count) = tan_codes(&t).unwrap_or_default();
            f.extend([
                ("digits", t.digits.to_string()),
                ("codes left", format!("{left} of {count}")),
            ]);
        }
        _ => {}
    }
    f.extend([
        ("fails", fails(cfg, &v)),
        ("last fail", t.last_fail.map_or("-".into(), output::time)),
        ("description", t.description.clone()),
        ("info", t.info.to_json()),
        ("created", output::time(t.created)),
    ]);
    for s in &v.sources {
        let state = lock_state(s.locked, s.until);
        f.push((
            "source",
            format!(
                "{}: {}/{}{state}, last {}",
                s.failures.source,
                s.failures.count,
                cfg.auth.max_fail,
                output::time(s.failures.last_fail)
            ),
        ));
    }
    for c in &v.classes {
        f.push((
            "class",
            format!(
                "{} sources: {}/{}{} in a row, last {}",
                c.failures.class,
                c.failures.count,
                cfg.auth.account_max_fail,
                lock_state(c.locked, c.until),
                output::time(c.failures.last_fail)
            ),
        ));
    }
    output::fields(&f)
}

fn set_pin(
    cfg: &Config,
    serial: &str,
    pin: Option<&str>,
    pin_stdin: bool,
    no_pin: bool,
) -> CliResult<()> {
    let store = auth::open_store(cfg)?;
    let rule = cfg.auth.pin_rule();
    // Fails on an unknown serial before anything is asked.
    let t = store.get_token(serial)?;
    if t.kind == TokenType::Registration {
        return Err(Failure::usage(format!(
            "token {serial} is a registration code: it has no PIN (the code is a one-time \
             secret; its user sets the new token's PIN when enrolling with it)"
        )));
    }
    if no_pin {
        if t.kind == TokenType::Spass {
            return Err(Failure::usage(
                "a spass token needs its PIN: its pass is the PIN alone",
            ));
        }
        store.set_pin_hash(serial, None, &rule)?;
        return outln!("token {serial}: PIN removed");
    }
    let pin = match input::pin_from_args(pin, pin_stdin, &rule)? {
        Some(p) => p,
        None => input::new_pin_interactive(&rule)?,
    };
    // The pepper comes from the key file: a PIN hash is bound to it.
    let hash = crypto::hash_pin(&pin, &auth::load_key(cfg)?.pepper())?;
    store.set_pin_hash(serial, Some(&hash), &rule)?;
    outln!("token {serial}: PIN set")
}

/// Finds two consecutive OTPs beyond the login window and moves the HOTP counter (or sets the
/// TOTP drift) past them.
fn resync(cfg: &Config, serial: &str, otp1: &str, otp2: &str) -> CliResult<()> {
    let store = auth::open_store(cfg)?;
    let t = store.get_token(serial)?;
    if !matches!(t.kind, TokenType::Hotp | TokenType::Totp) {
        return Err(Failure::invalid(format!(
            "token {serial} is a {} token; only hotp and totp tokens can be resynchronised",
            t.kind.name()
        )));
    }
    let key = auth::load_key(cfg)?.open(&t.serial, &t.sealed_key)?;
    let ctx = CheckContext {
        now: SystemClock.now(),
        hotp_window: cfg.auth.hotp_window,
        totp_window: cfg.auth.totp_window,
    };
    let logic = tokens::for_params(&t.params())?;
    let found = logic.resync(&key, otp1.as_bytes(), otp2.as_bytes(), t.counter, &ctx);
    let Some((counter, drift)) = found else {
        return Err(Failure::invalid(format!(
            "token {serial}: the two OTPs are not consecutive values within the resync window; \
             nothing changed"
        )));
    };
    store.set_counter_and_drift(serial, counter, drift)?;
    match t.kind {
        TokenType::Totp => outln!("token {serial} resynchronised: drift {drift} steps"),
        _ => outln!("token {serial} resynchronised: next counter {counter}"),
    }
}
