//! The rows the store keeps, as the rest of the crate sees them: a token, one token's part of a
//! challenge, an audit entry, and how long a string from outside may grow in an audit row. Plain
//! data with no SQL, so that the engine, the admin command and the backup share one shape.

use super::{AuditResult, ChallengeState};
use crate::tokens::{Algorithm, TokenInfo, TokenParams, TokenType};
use serde::Serialize;

/// A token as stored. The key stays sealed until the engine needs it.
#[derive(Debug, Clone, Serialize)]
pub struct TokenRecord {
    pub serial: String,
    pub user: String,
    pub realm: String,
    #[serde(rename = "type", serialize_with = "ser_type")]
    pub kind: TokenType,
    pub active: bool,
    #[serde(skip)]
    pub pin_hash: Option<String>,
    #[serde(skip)]
    pub sealed_key: Vec<u8>,
    pub digits: u32,
    #[serde(serialize_with = "ser_alg")]
    pub algorithm: Algorithm,
    pub period: u64,
    pub drift: i64,
    pub counter: u64,
    pub fail_count: u32,
    pub last_fail: Option<u64>,
    /// Type-specific settings (e-mail address, phone, OCRA suite, tan count, 4eyes rule).
    pub info: TokenInfo,
    pub description: String,
    pub created: u64,
}

fn ser_type<S: serde::Serializer>(t: &TokenType, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(t.name())
}
fn ser_alg<S: serde::Serializer>(a: &Algorithm, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(a.name())
}

impl TokenRecord {
    /// A freshly enrolled token: active, 6 digits, SHA-1, 30 s, counter 0, no PIN, no failures,
    /// no type settings. Callers set what differs with `..TokenRecord::new(...)`.
    pub fn new(
        serial: &str,
        user: &str,
        realm: &str,
        kind: TokenType,
        sealed_key: Vec<u8>,
    ) -> Self {
        TokenRecord {
            serial: serial.into(),
            user: user.into(),
            realm: realm.into(),
            kind,
            active: true,
            pin_hash: None,
            sealed_key,
            digits: 6,
            algorithm: Algorithm::Sha1,
            period: 30,
            drift: 0,
            counter: 0,
            fail_count: 0,
            last_fail: None,
            info: TokenInfo::default(),
            description: String::new(),
            created: 0,
        }
    }

    pub fn params(&self) -> TokenParams {
        TokenParams {
            kind: self.kind,
            digits: self.digits,
            algorithm: self.algorithm,
            period: self.period,
            drift: self.drift,
            ocra_suite: self.info.ocra_suite.clone(),
            expires: self.expires(),
        }
    }

    /// When a registration code is refused from: as kept, or (a code of an older version)
    /// [`registration::DEFAULT_VALID_FOR`](crate::tokens::registration::DEFAULT_VALID_FOR)
    /// after it was made. `None` for other types.
    pub fn expires(&self) -> Option<u64> {
        (self.kind == TokenType::Registration).then(|| {
            self.info.expires.unwrap_or_else(|| {
                self.created
                    .saturating_add(crate::tokens::registration::DEFAULT_VALID_FOR)
            })
        })
    }

    pub fn has_pin(&self) -> bool {
        self.pin_hash.is_some()
    }
}

/// One token's part of a transaction: a PIN-only pass opens one row per token.
#[derive(Debug, Clone, Serialize)]
pub struct ChallengeRecord {
    pub transaction_id: String,
    pub serial: String,
    pub user: String,
    pub realm: String,
    pub created: u64,
    pub expires: u64,
    pub state: ChallengeState,
    #[serde(skip)]
    pub data: Option<Vec<u8>>,
}

/// One row of the audit table. Never holds a PIN, an OTP or a key.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditEntry {
    pub time: u64,
    pub service: String,
    pub rhost: String,
    pub user: String,
    pub realm: String,
    pub serial: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub result: AuditResult,
    pub reason: String,
    /// The uid of the process that asked for this attempt (the daemon's caller, or whoever
    /// runs `tessera check`); `None` in rows of older versions.
    pub caller: Option<u32>,
    /// Where the attempt came from, as its failures are counted ("" in rows of older
    /// versions, and where no source was named).
    pub source: String,
    /// PAM_RUSER as the application set it ("" for none): kept, never a source.
    pub ruser: String,
}

/// A row built field by field (`..AuditEntry::default()`) says what it is; until then, an error.
impl Default for AuditResult {
    fn default() -> Self {
        AuditResult::Error
    }
}

impl AuditEntry {
    /// Its syslog priority (see [`AuditResult::priority`]).
    pub fn priority(&self) -> u8 {
        self.result.priority()
    }

    /// The entry as one syslog line; every field capped and escaped, so odd bytes can't forge
    /// lines.
    pub fn log_line(&self) -> String {
        format!(
            "result={} user=\"{}\" realm=\"{}\" serial=\"{}\" type={} service=\"{}\" rhost=\"{}\" source=\"{}\" ruser=\"{}\" reason=\"{}\"",
            self.result,
            cap(&self.user).escape_debug(),
            cap(&self.realm).escape_debug(),
            cap(&self.serial).escape_debug(),
            if self.kind.is_empty() { "-" } else { &self.kind },
            cap(&self.service).escape_debug(),
            cap(&self.rhost).escape_debug(),
            cap(&self.source).escape_debug(),
            cap(&self.ruser).escape_debug(),
            cap(&self.reason).escape_debug()
        )
    }
}

/// The most of any string from outside (user name, service, remote host, reason) that an audit
/// row keeps: a 120 KB user name must not add 120 KB per attempt. Longer ones are cut, and the
/// cut is marked.
pub const AUDIT_FIELD_MAX: usize = 256;

/// `s` cut to [`AUDIT_FIELD_MAX`] bytes at a character boundary, with the original length.
pub fn cap(s: &str) -> std::borrow::Cow<'_, str> {
    cap_to(s, AUDIT_FIELD_MAX)
}

/// `s` cut to `max` bytes at a character boundary, with the original length.
pub fn cap_to(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}...({} bytes)", &s[..end], s.len()))
}
