//! The SMS gateway: one HTTP request (ureq over rustls) whose URL, parameters and headers are
//! templates with `{phone}` and `{otp}`. Success is a 2xx status, and if configured, a body that
//! contains `success_contains` and not `fail_contains`.

use super::{fill, vars, OutOfBand};
use crate::config::{HttpMethod, SmsBody, SmsConfig};
use crate::error::{Error, Result};
use crate::http::percent_encode;
use std::sync::Arc;
use std::time::Duration;
use ureq::tls::{RootCerts, TlsConfig};
use zeroize::Zeroizing;

/// The most of a gateway's answer that is read.
const MAX_BODY: u64 = 64 * 1024;

pub fn send(cfg: &SmsConfig, phone: &str, m: &OutOfBand<'_>) -> Result<()> {
    let url_t = cfg
        .url
        .as_deref()
        .ok_or_else(|| Error::delivery("SMS gateway: [sms] url is not set"))?;
    if !crate::tokens::sms::valid_phone(phone) {
        return Err(Error::delivery(format!(
            "token {}: \"{phone}\" is not a phone number",
            m.serial
        )));
    }
    let otp = std::str::from_utf8(m.otp).map_err(|_| Error::delivery("the OTP is not text"))?;
    let validity = m.validity.to_string();
    let vars = vars(m, otp, &validity);
    // Every copy of the OTP made here is a wiped buffer (Zeroizing) built at its final size, so
    // no growth leaves a stale copy in freed memory. What ureq copies (the URL it parses, the
    // headers, the body in its send buffer) is out of our reach and not wiped.
    // In the URL, values are percent-encoded (an OTP is unreserved characters: no growth).
    let enc_otp = Zeroizing::new(percent_encode(otp));
    let enc_phone = percent_encode(phone);
    let url = fill(
        url_t,
        &[
            ("otp", enc_otp.as_str()),
            ("phone", &enc_phone),
            ("serial", &percent_encode(m.serial)),
            ("user", &percent_encode(m.user)),
        ],
    );
    let host = gateway_host(url_t);
    let fail = |what: String| Error::delivery(format!("SMS gateway {host}: {what}"));
    let params: Vec<(String, Zeroizing<String>)> = cfg
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), fill(v, &vars)))
        .collect();
    let agent = agent(cfg, url.starts_with("https://"))?;
    let timeout = Duration::from_secs(cfg.timeout);
    let result = match cfg.method {
        HttpMethod::GET => {
            let query = form(&params);
            let mut u = Zeroizing::new(String::with_capacity(url.len() + 1 + query.len()));
            u.push_str(&url);
            if !params.is_empty() {
                let sep = if u.contains('?') { '&' } else { '?' };
                u.push(sep);
                u.push_str(&query);
            }
            let mut req = agent.get(u.as_str());
            for (k, v) in &cfg.headers {
                req = req.header(k.as_str(), fill(v, &vars).as_str());
            }
            req.call()
        }
        HttpMethod::POST => {
            let (ctype, body) = match cfg.body {
                SmsBody::Form => {
                    let mut f = form(&params);
                    // Moved, not copied: the String's buffer becomes the body's.
                    let bytes = Zeroizing::new(std::mem::take(&mut *f).into_bytes());
                    ("application/x-www-form-urlencoded", bytes)
                }
                SmsBody::Json => {
                    // Written straight into one wiped buffer (a serde_json::Value would hold
                    // unwiped copies of the values). An escaped byte is at most 6 ("\u00XX"),
                    // so this capacity is never outgrown. `params` come from a BTreeMap: keys
                    // sorted and unique, as serde_json's Map wrote them.
                    let cap = 2 + params
                        .iter()
                        .map(|(k, v)| 6 * (k.len() + v.len()) + 6)
                        .sum::<usize>();
                    let mut json = Zeroizing::new(Vec::with_capacity(cap));
                    json.push(b'{');
                    for (i, (k, v)) in params.iter().enumerate() {
                        if i > 0 {
                            json.push(b',');
                        }
                        serde_json::to_writer(&mut *json, k.as_str())
                            .map_err(|e| fail(format!("JSON body: {e}")))?;
                        json.push(b':');
                        serde_json::to_writer(&mut *json, v.as_str())
                            .map_err(|e| fail(format!("JSON body: {e}")))?;
                    }
                    json.push(b'}');
                    ("application/json", json)
                }
            };
            let mut req = agent.post(url.as_str()).content_type(ctype);
            for (k, v) in &cfg.headers {
                req = req.header(k.as_str(), fill(v, &vars).as_str());
            }
            req.send(&body[..])
        }
    };
    let mut resp = result.map_err(|e| fail(describe(&e, timeout)))?;
    let status = resp.status().as_u16();
    // Gateways may echo the message they were given: the answer is wiped too, and the snippet
    // that errors (and so the logs) quote has the OTP blanked out.
    let body = Zeroizing::new(
        resp.body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| fail(describe(&e, timeout)))?,
    );
    let mut shown = Zeroizing::new(body.chars().filter(|c| !c.is_control()).collect::<String>());
    for secret in [otp, enc_otp.as_str()] {
        if !secret.is_empty() && shown.contains(secret) {
            shown = Zeroizing::new(shown.replace(secret, "***"));
        }
    }
    let snippet: String = shown.chars().take(80).collect();
    if !(200..300).contains(&status) {
        return Err(fail(format!("answered HTTP {status} \"{snippet}\"")));
    }
    if let Some(f) = cfg.fail_contains.as_deref().filter(|f| body.contains(f)) {
        return Err(fail(format!("answer contains \"{f}\": \"{snippet}\"")));
    }
    if let Some(s) = cfg
        .success_contains
        .as_deref()
        .filter(|s| !body.contains(s))
    {
        return Err(fail(format!("answer lacks \"{s}\": \"{snippet}\"")));
    }
    Ok(())
}

fn agent(cfg: &SmsConfig, https: bool) -> Result<ureq::Agent> {
    let tls = if https {
        let certs = crate::http::trusted_roots(cfg.ca_file.as_deref(), "[sms]")?;
        TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(certs)))
            .build()
    } else {
        TlsConfig::builder().build()
    };
    // The proxy comes from the config or nowhere, never from the environment (see
    // `remote::client`).
    let proxy = cfg
        .proxy
        .as_deref()
        .map(crate::config::proxy_of)
        .transpose()
        .map_err(|e| Error::config(format!("[sms] {e}")))?;
    Ok(ureq::Agent::config_builder()
        .proxy(proxy)
        .tls_config(tls)
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(format!("tessera/{}", env!("CARGO_PKG_VERSION")))
        .timeout_global(Some(Duration::from_secs(cfg.timeout)))
        .build()
        .into())
}

/// An error of ureq in words; never the URL (it may hold the OTP).
fn describe(e: &ureq::Error, timeout: Duration) -> String {
    match e {
        ureq::Error::Timeout(_) => format!("no answer within {} s (timeout)", timeout.as_secs()),
        ureq::Error::BodyExceedsLimit(n) => format!("answer longer than {n} bytes"),
        ureq::Error::Io(io) => io.to_string(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        other => other.to_string(),
    }
}

/// The scheme and host of the URL template, for messages.
fn gateway_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or("").to_string()
}

/// The parameters as `k=v&...`, percent-encoded, in one wiped buffer of its final size: the
/// values hold the OTP, and neither a growing buffer nor a temporary encoding of a value may
/// leave an unwiped copy behind.
fn form(params: &[(String, Zeroizing<String>)]) -> Zeroizing<String> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    // The unreserved characters of RFC 3986, as `percent_encode` keeps them.
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    let encoded_len = |s: &str| {
        s.bytes()
            .map(|b| if plain(b) { 1 } else { 3 })
            .sum::<usize>()
    };
    let len = params
        .iter()
        .map(|(k, v)| encoded_len(k) + 1 + encoded_len(v) + 1)
        .sum::<usize>()
        .saturating_sub(1);
    let mut out = Zeroizing::new(String::with_capacity(len));
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        for (j, part) in [k.as_str(), v.as_str()].into_iter().enumerate() {
            if j == 1 {
                out.push('=');
            }
            for b in part.bytes() {
                if plain(b) {
                    out.push(char::from(b));
                } else {
                    out.push('%');
                    out.push(char::from(HEX[usize::from(b >> 4)]));
                    out.push(char::from(HEX[usize::from(b & 15)]));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(percent_encode("+49 170"), "%2B49%20170");
        assert_eq!(
            gateway_host("https://sms.example.org:8443/send?x={otp}"),
            "sms.example.org:8443"
        );
        let p = vec![("to".to_string(), Zeroizing::new("+49 1".to_string()))];
        assert_eq!(&*form(&p), "to=%2B49%201");
    }

    #[test]
    fn the_form_is_built_at_its_final_size_and_encoded_as_before() {
        // A buffer that grows leaves its old, unwiped allocations (with the OTP) in freed
        // memory; built at its final size, the one buffer there is gets wiped.
        let p = vec![
            (
                "to".to_string(),
                Zeroizing::new("+49 170 1234567".to_string()),
            ),
            (
                "text".to_string(),
                Zeroizing::new("Your code: 123456 (valid 300 s) ~ä".to_string()),
            ),
            ("e".to_string(), Zeroizing::new(String::new())),
        ];
        let f = form(&p);
        let want = p
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(*f, want);
        assert_eq!(f.capacity(), f.len(), "sized once, never grown");
    }

    #[test]
    fn a_gateway_that_echoes_the_otp_in_an_error_does_not_put_it_in_the_error() {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let gw = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            // The whole request (small), then an answer that quotes the message.
            c.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut req = Vec::new();
            let mut b = [0u8; 4096];
            while let Ok(n) = c.read(&mut b) {
                req.extend_from_slice(&b[..n]);
                if n == 0 || String::from_utf8_lossy(&req).contains("text=") {
                    break;
                }
            }
            let text = "rejected: Your code is 918273";
            let _ = write!(
                c,
                "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        });
        let cfg = SmsConfig {
            url: Some(format!("http://127.0.0.1:{port}/send")),
            parameters: [
                ("phone".to_string(), "{phone}".to_string()),
                ("text".to_string(), "Your code is {otp}".to_string()),
            ]
            .into(),
            timeout: 5,
            ..SmsConfig::default()
        };
        let m = OutOfBand {
            channel: super::super::Channel::Sms {
                phone: "+491701234567",
            },
            otp: b"918273",
            user: "alice",
            serial: "S1",
            validity: 300,
            now: 0,
        };
        let e = send(&cfg, "+491701234567", &m).unwrap_err().to_string();
        gw.join().unwrap();
        assert!(
            e.contains("HTTP 400") && e.contains("rejected: Your code is ***"),
            "{e}"
        );
        assert!(!e.contains("918273"), "{e}");
    }
}
