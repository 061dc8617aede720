//! What a validation server answered, read into one shape for both dialects.
//!
//! privacyIDEA (`/validate/check`): `result.status`, `result.value`, `result.authentication`
//! (ACCEPT / REJECT / CHALLENGE), `detail.transaction_id`, `detail.message`,
//! `detail.multi_challenge[]` (`message`, `serial`, `type`, `client_mode`), and for errors
//! `result.error.code` / `.message`. `/validate/polltransaction`: `result.value` and
//! `detail.challenge_status` (accept / declined / cancelled / pending).
//!
//! LinOTP (`/validate/check`): `result.status`, `result.value`, and for a challenge
//! `detail.transactionid` (or `detail.state`) with `detail.message`. `/validate/simplecheck`
//! answers plain text: `:-)` success, `:-(` failure, `:-( TRANSACTIONID MESSAGE` a challenge,
//! `:-/` an error.
//!
//! Anything else is garbage: the caller treats it like a server that did not answer.

use crate::config::Dialect;
use serde_json::Value;

/// One answer of the server to a `/validate/check` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteAnswer {
    Accept {
        serial: String,
        kind: String,
        message: String,
    },
    Reject {
        serial: String,
        kind: String,
        message: String,
    },
    Challenge(Challenge),
    /// `result.status` false: the server could not handle the request.
    Error {
        code: Option<i64>,
        message: String,
    },
}

/// An open challenge: what to show, and how it is answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Challenge {
    pub transaction_id: String,
    /// The messages of challenges answered by typing a value, de-duplicated, in order.
    pub input_messages: Vec<String>,
    /// The messages of challenges answered on a phone (`client_mode` = `poll`).
    pub poll_messages: Vec<String>,
    pub serials: Vec<String>,
    pub kinds: Vec<String>,
}

impl Challenge {
    /// Some challenge is confirmed on a phone and polled for.
    pub fn poll(&self) -> bool {
        !self.poll_messages.is_empty()
    }
    /// Some challenge is answered by typing a value (also when the server said nothing about
    /// how: then a typed answer is all a PAM conversation can give).
    pub fn input(&self) -> bool {
        !self.input_messages.is_empty() || self.poll_messages.is_empty()
    }
}

/// Where the first pass and the answers are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/validate/check`, JSON answers (both dialects).
    Check,
    /// LinOTP's `/validate/simplecheck`, plain-text answers.
    SimpleCheck,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Check => "/validate/check",
            Endpoint::SimpleCheck => "/validate/simplecheck",
        }
    }
}

/// The state of a push challenge, from `/validate/polltransaction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollState {
    Accepted,
    /// Declined or cancelled on the phone; the status word is kept for the log.
    Refused(String),
    Pending,
}

/// Reads the answer to a check request. `Err` says why it is not an answer at all.
pub fn parse_check(
    dialect: Dialect,
    endpoint: Endpoint,
    http_status: u16,
    body: &[u8],
) -> Result<RemoteAnswer, String> {
    if http_status >= 500 {
        return Err(format!("HTTP {http_status}"));
    }
    match (dialect, endpoint) {
        (_, Endpoint::SimpleCheck) => parse_simplecheck(http_status, body),
        (Dialect::Privacyidea, Endpoint::Check) => parse_privacyidea(http_status, body),
        (Dialect::Linotp, Endpoint::Check) => parse_linotp(http_status, body),
    }
}

/// Reads privacyIDEA's answer to `/validate/polltransaction`.
pub fn parse_poll(http_status: u16, body: &[u8]) -> Result<PollState, String> {
    if http_status >= 500 {
        return Err(format!("HTTP {http_status}"));
    }
    let v = json_object(body)?;
    let result = v
        .get("result")
        .and_then(Value::as_object)
        .ok_or("no `result` object")?;
    if result.get("status").and_then(Value::as_bool) != Some(true) {
        let (code, message) = error_of(&v);
        return Err(format!(
            "poll failed: error {}: {message}",
            code.map_or("-".into(), |c| c.to_string())
        ));
    }
    if http_status != 200 {
        return Err(format!("HTTP {http_status} with status true"));
    }
    let status = v
        .pointer("/detail/challenge_status")
        .and_then(Value::as_str)
        .unwrap_or("");
    match (result.get("value").and_then(Value::as_bool), status) {
        (Some(true), _) => Ok(PollState::Accepted),
        (Some(false), "declined" | "cancelled") => Ok(PollState::Refused(status.into())),
        (Some(false), _) => Ok(PollState::Pending),
        (None, _) => Err("`result.value` is not a boolean".into()),
    }
}

fn json_object(body: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if !v.is_object() {
        return Err("JSON answer is not an object".into());
    }
    Ok(v)
}

fn error_of(v: &Value) -> (Option<i64>, String) {
    let err = v.pointer("/result/error");
    let code = err.and_then(|e| e.get("code")).and_then(|c| {
        c.as_i64()
            .or_else(|| c.as_str().and_then(|s| s.trim().parse().ok()))
    });
    let message = err
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    (code, message)
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A transaction id as a string; privacyIDEA sends strings (that may start with 0), but a
/// number is taken as written.
fn transaction_id(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn push_unique(list: &mut Vec<String>, s: &str) {
    let s = s.trim();
    if !s.is_empty() && !list.iter().any(|m| m == s) {
        list.push(s.to_string());
    }
}

/// What both dialects' `/validate/check` JSON share: a `result` object whose `status` false is
/// the server's error answer (`Ok(Err(..))`, whatever the HTTP status) and whose `status` true
/// is only believed with HTTP 200. `Ok(Ok(document))` is for the dialect to read on.
fn check_document(http_status: u16, body: &[u8]) -> Result<Result<Value, RemoteAnswer>, String> {
    let v = json_object(body)?;
    let result = v
        .get("result")
        .and_then(Value::as_object)
        .ok_or("no `result` object")?;
    match result.get("status").and_then(Value::as_bool) {
        Some(false) => {
            let (code, message) = error_of(&v);
            return Ok(Err(RemoteAnswer::Error { code, message }));
        }
        Some(true) => {}
        None => return Err("`result.status` is not a boolean".into()),
    }
    if http_status != 200 {
        return Err(format!("HTTP {http_status} with status true"));
    }
    Ok(Ok(v))
}

fn parse_privacyidea(http_status: u16, body: &[u8]) -> Result<RemoteAnswer, String> {
    let v = match check_document(http_status, body)? {
        Ok(v) => v,
        Err(server_error) => return Ok(server_error),
    };
    let result = &v["result"];
    let value = result.get("value").and_then(Value::as_bool);
    let auth = result.get("authentication").and_then(Value::as_str);
    let tx = transaction_id(v.pointer("/detail/transaction_id"));
    let serial = str_at(&v, "/detail/serial").to_string();
    let kind = str_at(&v, "/detail/type").to_string();
    let message = str_at(&v, "/detail/message").to_string();
    // The two ways of saying it must agree; a server that contradicts itself is not believed.
    match (auth, value, tx) {
        (Some("ACCEPT"), Some(true) | None, _) | (None, Some(true), _) => {
            Ok(RemoteAnswer::Accept {
                serial,
                kind,
                message,
            })
        }
        (Some("CHALLENGE"), Some(false) | None, Some(tx)) | (None, Some(false), Some(tx)) => {
            Ok(RemoteAnswer::Challenge(privacyidea_challenge(&v, tx)))
        }
        (Some("REJECT"), Some(false) | None, _) | (None, Some(false), None) => {
            Ok(RemoteAnswer::Reject {
                serial,
                kind,
                message,
            })
        }
        (a, val, tx) => Err(format!(
            "contradictory answer: authentication {a:?}, value {val:?}, transaction id {}",
            if tx.is_some() { "present" } else { "absent" }
        )),
    }
}

fn privacyidea_challenge(v: &Value, transaction_id: String) -> Challenge {
    let mut ch = Challenge {
        transaction_id,
        ..Challenge::default()
    };
    let multi = v
        .pointer("/detail/multi_challenge")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty());
    match multi {
        Some(list) => {
            for c in list {
                let msg = c.get("message").and_then(Value::as_str).unwrap_or("");
                match c.get("client_mode").and_then(Value::as_str) {
                    Some("poll") => push_unique(&mut ch.poll_messages, msg),
                    // WebAuthn and U2F need a browser; a PAM conversation can't answer them.
                    Some("webauthn" | "u2f") => {}
                    _ => push_unique(&mut ch.input_messages, msg),
                }
                if let Some(s) = c.get("serial").and_then(Value::as_str) {
                    push_unique(&mut ch.serials, s);
                }
                if let Some(t) = c.get("type").and_then(Value::as_str) {
                    push_unique(&mut ch.kinds, t);
                }
            }
        }
        None => {
            push_unique(&mut ch.input_messages, str_at(v, "/detail/message"));
            push_unique(&mut ch.serials, str_at(v, "/detail/serial"));
            push_unique(&mut ch.kinds, str_at(v, "/detail/type"));
        }
    }
    ch
}

fn parse_linotp(http_status: u16, body: &[u8]) -> Result<RemoteAnswer, String> {
    let v = match check_document(http_status, body)? {
        Ok(v) => v,
        Err(server_error) => return Ok(server_error),
    };
    let result = &v["result"];
    let serial = str_at(&v, "/detail/serial").to_string();
    let kind = str_at(&v, "/detail/tokentype").to_string();
    let message = str_at(&v, "/detail/message").to_string();
    let tx = transaction_id(v.pointer("/detail/transactionid"))
        .or_else(|| transaction_id(v.pointer("/detail/state")));
    match (result.get("value").and_then(Value::as_bool), tx) {
        (Some(true), _) => Ok(RemoteAnswer::Accept {
            serial,
            kind,
            message,
        }),
        (Some(false), Some(tx)) => {
            let mut ch = Challenge {
                transaction_id: tx,
                ..Challenge::default()
            };
            push_unique(&mut ch.input_messages, &message);
            push_unique(&mut ch.serials, &serial);
            push_unique(&mut ch.kinds, &kind);
            Ok(RemoteAnswer::Challenge(ch))
        }
        (Some(false), None) => Ok(RemoteAnswer::Reject {
            serial,
            kind,
            message,
        }),
        (None, _) => Err("`result.value` is not a boolean".into()),
    }
}

fn parse_simplecheck(http_status: u16, body: &[u8]) -> Result<RemoteAnswer, String> {
    if http_status != 200 {
        return Err(format!("HTTP {http_status}"));
    }
    let text = std::str::from_utf8(body).map_err(|_| "answer is not UTF-8")?;
    let text = text.trim();
    let none = String::new;
    if text == ":-)" {
        return Ok(RemoteAnswer::Accept {
            serial: none(),
            kind: none(),
            message: none(),
        });
    }
    if let Some(rest) = text.strip_prefix(":-(") {
        let rest = rest.trim();
        if rest.is_empty() {
            return Ok(RemoteAnswer::Reject {
                serial: none(),
                kind: none(),
                message: none(),
            });
        }
        // ":-( TRANSACTIONID MESSAGE": a challenge was opened.
        let (tx, msg) = rest.split_once(' ').unwrap_or((rest, ""));
        if !tx.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err("`:-(` followed by something that is not a transaction id".into());
        }
        let mut ch = Challenge {
            transaction_id: tx.to_string(),
            ..Challenge::default()
        };
        push_unique(&mut ch.input_messages, msg);
        return Ok(RemoteAnswer::Challenge(ch));
    }
    if text.starts_with(":-/") {
        return Ok(RemoteAnswer::Error {
            code: None,
            message: "simplecheck answered :-/ (server error)".into(),
        });
    }
    Err("not a simplecheck answer".into())
}

/// How a `result.status` false answer counts: as the server's refusal of this login, or as a
/// server that could not decide.
pub fn error_is_rejection(dialect: Dialect, code: Option<i64>) -> bool {
    match dialect {
        // privacyIDEA: 904 user not found, 9051 user missing (an unknown user must fail like a
        // wrong PIN); 303 a policy forbids this login; 401 validation refused (e.g. "not
        // authorized to authenticate under these conditions"); 1007 revoked token.
        Dialect::Privacyidea => matches!(code, Some(904 | 9051 | 303 | 401 | 1007)),
        // LinOTP answers refusals with value false; status false is always a server fault.
        Dialect::Linotp => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pi(status: u16, body: &str) -> Result<RemoteAnswer, String> {
        parse_check(
            Dialect::Privacyidea,
            Endpoint::Check,
            status,
            body.as_bytes(),
        )
    }
    fn lin(status: u16, body: &str) -> Result<RemoteAnswer, String> {
        parse_check(Dialect::Linotp, Endpoint::Check, status, body.as_bytes())
    }
    fn simple(body: &str) -> Result<RemoteAnswer, String> {
        parse_check(Dialect::Linotp, Endpoint::SimpleCheck, 200, body.as_bytes())
    }

    #[test]
    fn privacyidea_accept_reject_challenge() {
        let a = pi(200, r#"{"result":{"status":true,"value":true,"authentication":"ACCEPT"},"detail":{"serial":"HOTP1","type":"hotp","message":"matching 1 tokens"}}"#).unwrap();
        assert!(
            matches!(a, RemoteAnswer::Accept { ref serial, ref kind, .. } if serial == "HOTP1" && kind == "hotp")
        );
        let r = pi(200, r#"{"result":{"status":true,"value":false,"authentication":"REJECT"},"detail":{"message":"wrong otp pin"}}"#).unwrap();
        assert!(
            matches!(r, RemoteAnswer::Reject { ref message, .. } if message == "wrong otp pin")
        );
        let c = pi(200, r#"{"result":{"status":true,"value":false,"authentication":"CHALLENGE"},"detail":{"transaction_id":"01234567890123456789","message":"please enter otp: , please enter otp: ","multi_challenge":[{"transaction_id":"01234567890123456789","message":"please enter otp: ","serial":"H","type":"hotp","client_mode":"interactive"},{"transaction_id":"01234567890123456789","message":"please enter otp: ","serial":"T","type":"totp","client_mode":"interactive"}]}}"#).unwrap();
        let RemoteAnswer::Challenge(ch) = c else {
            panic!("{c:?}")
        };
        assert_eq!(ch.transaction_id, "01234567890123456789");
        assert_eq!(ch.input_messages, ["please enter otp:"]);
        assert_eq!(ch.serials, ["H", "T"]);
        assert!(ch.input() && !ch.poll());
    }

    #[test]
    fn privacyidea_without_authentication_field_uses_value() {
        assert!(matches!(
            pi(200, r#"{"result":{"status":true,"value":true}}"#).unwrap(),
            RemoteAnswer::Accept { .. }
        ));
        assert!(matches!(
            pi(200, r#"{"result":{"status":true,"value":false}}"#).unwrap(),
            RemoteAnswer::Reject { .. }
        ));
        assert!(matches!(
            pi(200, r#"{"result":{"status":true,"value":false},"detail":{"transaction_id":"123","message":"otp?"}}"#).unwrap(),
            RemoteAnswer::Challenge(_)
        ));
    }

    #[test]
    fn privacyidea_push_and_otp_challenges() {
        let c = pi(200, r#"{"result":{"status":true,"value":false,"authentication":"CHALLENGE"},"detail":{"transaction_id":"9","multi_challenge":[{"message":"please enter otp: ","client_mode":"interactive","serial":"H","type":"hotp"},{"message":"Please confirm the authentication on your mobile device!","client_mode":"poll","serial":"P","type":"push"},{"message":"Use your security key","client_mode":"webauthn","serial":"W","type":"webauthn"}]}}"#).unwrap();
        let RemoteAnswer::Challenge(ch) = c else {
            panic!()
        };
        assert!(ch.poll() && ch.input());
        assert_eq!(
            ch.poll_messages,
            ["Please confirm the authentication on your mobile device!"]
        );
        assert_eq!(ch.input_messages, ["please enter otp:"]);
        let only_push = pi(200, r#"{"result":{"status":true,"value":false,"authentication":"CHALLENGE"},"detail":{"transaction_id":"9","multi_challenge":[{"message":"confirm","client_mode":"poll"}]}}"#).unwrap();
        let RemoteAnswer::Challenge(ch) = only_push else {
            panic!()
        };
        assert!(ch.poll() && !ch.input());
    }

    #[test]
    fn privacyidea_error_answers() {
        let e = pi(400, r#"{"result":{"status":false,"error":{"code":904,"message":"ERR904: The user can not be found in any resolver in this realm!"}},"detail":null}"#).unwrap();
        assert!(
            matches!(e, RemoteAnswer::Error { code: Some(904), ref message } if message.starts_with("ERR904"))
        );
        assert!(error_is_rejection(Dialect::Privacyidea, Some(904)));
        assert!(!error_is_rejection(Dialect::Privacyidea, Some(902)));
        assert!(!error_is_rejection(Dialect::Privacyidea, None));
    }

    #[test]
    fn garbage_is_not_an_answer() {
        assert!(pi(200, "<html>502 bad gateway</html>").is_err());
        assert!(pi(200, "[1,2]").is_err());
        assert!(pi(200, r#"{"result":{"value":true}}"#).is_err());
        assert!(pi(500, r#"{"result":{"status":false,"error":{"code":903}}}"#).is_err());
        assert!(pi(404, r#"{"result":{"status":true,"value":true}}"#).is_err());
        // contradictions
        assert!(pi(
            200,
            r#"{"result":{"status":true,"value":true,"authentication":"REJECT"}}"#
        )
        .is_err());
        assert!(pi(
            200,
            r#"{"result":{"status":true,"value":false,"authentication":"ACCEPT"}}"#
        )
        .is_err());
        assert!(pi(
            200,
            r#"{"result":{"status":true,"value":false,"authentication":"CHALLENGE"}}"#
        )
        .is_err());
        assert!(simple("hello").is_err());
        assert!(simple(":-( <script>").is_err());
    }

    #[test]
    fn linotp_answers() {
        // Shapes of LinOTP 2/3 `sendResult` (version, jsonrpc, result, detail, id).
        assert!(matches!(
            lin(200, r#"{"version":"LinOTP 2.12","jsonrpc":"2.0802","result":{"status":true,"value":true},"id":0}"#).unwrap(),
            RemoteAnswer::Accept { .. }
        ));
        assert!(matches!(
            lin(200, r#"{"version":"LinOTP 2.12","jsonrpc":"2.0802","result":{"status":true,"value":false},"id":0}"#).unwrap(),
            RemoteAnswer::Reject { .. }
        ));
        let c = lin(200, r#"{"version":"LinOTP 2.12","jsonrpc":"2.0802","detail":{"transactionid":"675478473928","message":"sms submitted","state":"675478473928"},"result":{"status":true,"value":false},"id":0}"#).unwrap();
        let RemoteAnswer::Challenge(ch) = c else {
            panic!()
        };
        assert_eq!(ch.transaction_id, "675478473928");
        assert_eq!(ch.input_messages, ["sms submitted"]);
        let s = lin(
            200,
            r#"{"result":{"status":true,"value":false},"detail":{"state":"42","message":"x"}}"#,
        )
        .unwrap();
        assert!(matches!(s, RemoteAnswer::Challenge(ref c) if c.transaction_id == "42"));
        let e = lin(200, r#"{"version":"LinOTP 2.12","jsonrpc":"2.0802","result":{"status":false,"error":{"code":-311,"message":"validate/check failed"}},"id":0}"#).unwrap();
        assert!(matches!(
            e,
            RemoteAnswer::Error {
                code: Some(-311),
                ..
            }
        ));
        assert!(!error_is_rejection(Dialect::Linotp, Some(-311)));
    }

    #[test]
    fn linotp_simplecheck_answers() {
        assert!(matches!(
            simple(":-)\n").unwrap(),
            RemoteAnswer::Accept { .. }
        ));
        assert!(matches!(
            simple(":-(").unwrap(),
            RemoteAnswer::Reject { .. }
        ));
        let c = simple(":-( 123456789012 sms submitted").unwrap();
        assert!(
            matches!(c, RemoteAnswer::Challenge(ref ch) if ch.transaction_id == "123456789012" && ch.input_messages == ["sms submitted"])
        );
        assert!(matches!(simple(":-/").unwrap(), RemoteAnswer::Error { .. }));
    }

    #[test]
    fn poll_answers() {
        let p = |s| parse_poll(200, s);
        assert_eq!(
            p(br#"{"result":{"status":true,"value":true},"detail":{"challenge_status":"accept"}}"#).unwrap(),
            PollState::Accepted
        );
        assert_eq!(
            p(br#"{"result":{"status":true,"value":false},"detail":{"challenge_status":"pending"}}"#).unwrap(),
            PollState::Pending
        );
        assert_eq!(
            p(br#"{"result":{"status":true,"value":false},"detail":{"challenge_status":"declined"}}"#).unwrap(),
            PollState::Refused("declined".into())
        );
        assert_eq!(
            p(br#"{"result":{"status":true,"value":false}}"#).unwrap(),
            PollState::Pending
        );
        assert!(p(b"garbage").is_err());
        assert!(parse_poll(500, b"{}").is_err());
    }
}
