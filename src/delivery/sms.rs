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
        .ok_or_else(|| Error::Delivery("SMS gateway: [sms] url is not set".into()))?;
    if !crate::tokens::sms::valid_phone(phone) {
        return Err(Error::Delivery(format!(
            "token {}: \"{phone}\" is not a phone number",
            m.serial
        )));
    }
    let otp =
        std::str::from_utf8(m.otp).map_err(|_| Error::Delivery("the OTP is not text".into()))?;
    let validity = m.validity.to_string();
    let vars = vars(m, otp, &validity);
    // In the URL, values are percent-encoded.
    let enc_otp = percent_encode(otp);
    let enc_phone = percent_encode(phone);
    let url = fill(
        url_t,
        &[
            ("otp", &enc_otp),
            ("phone", &enc_phone),
            ("serial", &percent_encode(m.serial)),
            ("user", &percent_encode(m.user)),
        ],
    );
    let host = gateway_host(url_t);
    let fail = |what: String| Error::Delivery(format!("SMS gateway {host}: {what}"));
    let params: Vec<(String, Zeroizing<String>)> = cfg
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), fill(v, &vars)))
        .collect();
    let agent = agent(cfg, url.starts_with("https://"))?;
    let timeout = Duration::from_secs(cfg.timeout);
    let result = match cfg.method {
        HttpMethod::GET => {
            let mut u = Zeroizing::new(url.to_string());
            if !params.is_empty() {
                let sep = if u.contains('?') { '&' } else { '?' };
                u.push(sep);
                u.push_str(&form(&params));
            }
            let mut req = agent.get(u.as_str());
            for (k, v) in &cfg.headers {
                req = req.header(k.as_str(), fill(v, &vars).as_str());
            }
            req.call()
        }
        HttpMethod::POST => {
            let (ctype, body) = match cfg.body {
                SmsBody::Form => ("application/x-www-form-urlencoded", form(&params)),
                SmsBody::Json => {
                    let obj: serde_json::Map<String, serde_json::Value> = params
                        .iter()
                        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.to_string())))
                        .collect();
                    (
                        "application/json",
                        Zeroizing::new(serde_json::Value::Object(obj).to_string()),
                    )
                }
            };
            let mut req = agent.post(url.as_str()).content_type(ctype);
            for (k, v) in &cfg.headers {
                req = req.header(k.as_str(), fill(v, &vars).as_str());
            }
            req.send(body.as_bytes())
        }
    };
    let mut resp = result.map_err(|e| fail(describe(&e, timeout)))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()
        .map_err(|e| fail(describe(&e, timeout)))?;
    let snippet: String = body.chars().filter(|c| !c.is_control()).take(80).collect();
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
        .map_err(|e| Error::Config(format!("[sms] {e}")))?;
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

fn form(params: &[(String, Zeroizing<String>)]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&percent_encode(k));
        out.push('=');
        out.push_str(&percent_encode(v));
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
}
