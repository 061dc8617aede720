//! `[email]` and `[sms]`: how the OTPs of e-mail and SMS tokens are sent. One file, as their
//! checks share one loop (OTP length, validity, timeout of both sections).
//! Apart from `mod.rs` so that each section's keys, defaults and checks read in one place.

use super::{proxy_of, Invalid, PLAIN_HTTP};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum HttpMethod {
    #[serde(alias = "get")]
    GET,
    #[serde(alias = "post")]
    POST,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsBody {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// A JSON object of the parameters (strings).
    Json,
}

/// The HTTP gateway that sends SMS: the parameters go in the query (GET) or the body (POST).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// The gateway URL; `{phone}` and `{otp}` may appear in it (percent-encoded).
    pub url: Option<String>,
    pub method: HttpMethod,
    /// How a POST carries the parameters.
    pub body: SmsBody,
    /// Name = value template; `{phone}`, `{otp}`, `{serial}`, `{user}` and `{validity}` are
    /// replaced.
    pub parameters: std::collections::BTreeMap<String, String>,
    /// Extra request headers, same placeholders.
    pub headers: std::collections::BTreeMap<String, String>,
    /// A 2xx answer is a success unless this is set and missing from the answer body.
    pub success_contains: Option<String>,
    /// A 2xx answer whose body contains this is a failure.
    pub fail_contains: Option<String>,
    /// Seconds for the whole request.
    pub timeout: u64,
    /// CA bundle for an https gateway; unset: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Digits of the OTP sent.
    pub otp_length: u32,
    /// Seconds the OTP answers its challenge.
    pub validity: u64,
    /// SMS sent per user (and realm) in any hour, all the user's SMS tokens together; past it a
    /// PIN-only pass sends none. 0: no limit.
    pub max_per_hour: u32,
    /// The proxy for the gateway request; never taken from the environment.
    pub proxy: Option<String>,
    /// A plain `http://` gateway URL carries the OTP unencrypted: refused unless set.
    pub allow_plain_http: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP, then STARTTLS, which the relay must offer.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS at all: only for a relay on this host.
    None,
}

/// How OTP mails leave: an SMTP relay, or a sendmail-style command.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: SmtpTls,
    /// CA bundle for the relay's certificate; unset: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// SMTP AUTH user; needs `password_file`.
    pub username: Option<String>,
    /// A file (not readable by group or others) holding the SMTP AUTH password.
    pub password_file: Option<PathBuf>,
    /// A sendmail-style command (e.g. "/usr/sbin/sendmail -t -i") that reads the whole
    /// message on stdin; set, it is used instead of SMTP.
    pub sendmail: Option<String>,
    pub from: String,
    /// Templates; `{otp}`, `{user}`, `{serial}`, `{email}` and `{validity}` are replaced.
    pub subject: String,
    pub body: String,
    /// Seconds for a whole delivery: name lookup, connect, TLS and every SMTP exchange (or for the
    /// command to finish).
    pub timeout: u64,
    pub otp_length: u32,
    pub validity: u64,
    /// Mails sent per user (and realm) in any hour, all the user's e-mail tokens together; past
    /// it a PIN-only pass sends none. 0: no limit.
    pub max_per_hour: u32,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            url: None,
            method: HttpMethod::POST,
            body: SmsBody::Form,
            parameters: [
                ("phone".to_string(), "{phone}".to_string()),
                (
                    "text".to_string(),
                    "Your one-time password is {otp}".to_string(),
                ),
            ]
            .into_iter()
            .collect(),
            headers: Default::default(),
            success_contains: None,
            fail_contains: None,
            timeout: 10,
            ca_file: None,
            otp_length: 6,
            validity: 300,
            max_per_hour: 10,
            proxy: None,
            allow_plain_http: false,
        }
    }
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            smtp_host: "localhost".into(),
            smtp_port: 25,
            tls: SmtpTls::Starttls,
            ca_file: None,
            username: None,
            password_file: None,
            sendmail: None,
            from: "tessera@localhost".into(),
            subject: "Your one-time password".into(),
            body: "Your one-time password is {otp}.\nIt is valid for {validity} seconds.\n".into(),
            timeout: 10,
            otp_length: 6,
            validity: 300,
            max_per_hour: 10,
        }
    }
}

/// The checks of `[email]` and `[sms]` (but `sms.proxy`: [`SmsConfig::validate_proxy`]).
pub(super) fn validate(e: &EmailConfig, m: &SmsConfig) -> std::result::Result<(), Invalid> {
    for (sec, len, validity, timeout) in [
        ("email", e.otp_length, e.validity, e.timeout),
        ("sms", m.otp_length, m.validity, m.timeout),
    ] {
        let key = |k: &'static str| -> &'static str {
            match (sec, k) {
                ("email", "otp_length") => "email.otp_length",
                ("email", "validity") => "email.validity",
                ("email", _) => "email.timeout",
                (_, "otp_length") => "sms.otp_length",
                (_, "validity") => "sms.validity",
                _ => "sms.timeout",
            }
        };
        if !(4..=10).contains(&len) {
            return Err((key("otp_length"), "must be 4 to 10 digits".into()));
        }
        if validity == 0 {
            return Err((key("validity"), "must be at least 1 second".into()));
        }
        if timeout == 0 || timeout > 300 {
            return Err((key("timeout"), "must be between 1 and 300 seconds".into()));
        }
    }
    if !crate::tokens::email::valid_address(&e.from) {
        return Err((
            "email.from",
            format!("\"{}\" is not a plain user@domain address", e.from),
        ));
    }
    if e.smtp_host.is_empty()
        || e.smtp_host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(("email.smtp_host", "must be a host name or address".into()));
    }
    if e.smtp_port == 0 {
        return Err(("email.smtp_port", "must be 1 to 65535".into()));
    }
    if e.username.is_some() != e.password_file.is_some() {
        return Err((
            "email.username",
            "username and password_file go together".into(),
        ));
    }
    if e.sendmail
        .as_deref()
        .is_some_and(|c| c.split_whitespace().next().is_none())
    {
        return Err(("email.sendmail", "must name a command".into()));
    }
    for t in [&e.subject, &e.from] {
        if t.contains(['\r', '\n']) {
            return Err(("email.subject", "must be one line".into()));
        }
    }
    if let Some(u) = &m.url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err((
                "sms.url",
                "the SMS gateway URL must start with http:// or https://".into(),
            ));
        }
        if u.starts_with("http://") && !m.allow_plain_http {
            return Err(("sms.url", PLAIN_HTTP.replace("{what}", "the OTP")));
        }
    }
    Ok(())
}

impl SmsConfig {
    /// The check of `sms.proxy`, the last of all (see `Config::validate`).
    pub(super) fn validate_proxy(&self) -> std::result::Result<(), Invalid> {
        if let Some(p) = &self.proxy {
            proxy_of(p).map_err(|e| ("sms.proxy", e))?;
        }
        Ok(())
    }
}
