//! Out-of-band delivery of OTPs: e-mail through an SMTP relay ([`smtp`]) or a sendmail-style
//! command ([`sendmail`]), SMS through an HTTP gateway ([`sms`]). The engine sees only
//! [`Courier`]; errors name the peer and what went wrong, never the OTP.

pub mod sendmail;
pub mod sms;
pub mod smtp;

use crate::config::Config;
use crate::crypto::Secret;
use crate::error::{Error, Kind, Result};
use zeroize::Zeroizing;

/// Where an OTP goes.
#[derive(Debug, Clone, Copy)]
pub enum Channel<'a> {
    Email { address: &'a str },
    Sms { phone: &'a str },
}

/// One OTP to send.
pub struct OutOfBand<'a> {
    pub channel: Channel<'a>,
    pub otp: &'a [u8],
    pub user: &'a str,
    pub serial: &'a str,
    /// Seconds the OTP answers its challenge.
    pub validity: u64,
    /// Unix time, for the mail's Date header.
    pub now: u64,
}

/// Sends OTPs. The engine holds one; tests may give their own.
pub trait Courier {
    fn send(&self, m: &OutOfBand<'_>) -> Result<()>;
}

/// The courier the config describes.
pub struct Configured<'a>(pub &'a Config);

impl Courier for Configured<'_> {
    fn send(&self, m: &OutOfBand<'_>) -> Result<()> {
        let r = match m.channel {
            Channel::Email { address } => {
                let e = &self.0.email;
                let msg = build_mail(e, address, m)?;
                match &e.sendmail {
                    Some(cmd) => sendmail::send(cmd, &msg, e.timeout),
                    None => smtp::send(e, address, &msg),
                }
            }
            Channel::Sms { phone } => sms::send(&self.0.sms, phone, m),
        };
        // Whatever a peer echoed back, the OTP does not reach a log line.
        r.map_err(|e| match e.kind() {
            Kind::Delivery => e.map_message(|msg| scrub(msg, m.otp)),
            _ => e,
        })
    }
}

/// Replaces every occurrence of the OTP in a message.
pub fn scrub(msg: &str, otp: &[u8]) -> String {
    match std::str::from_utf8(otp) {
        Ok(o) if !o.is_empty() => msg.replace(o, "******"),
        _ => msg.to_string(),
    }
}

/// Replaces `{name}` placeholders; unknown ones stay as written.
pub fn fill(template: &str, vars: &[(&str, &str)]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(template.len() + 16));
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        match after.find('}').and_then(|j| {
            let name = &after[1..j];
            vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (j, *v))
        }) {
            Some((j, v)) => {
                out.push_str(v);
                rest = &after[j + 1..];
            }
            None => {
                out.push('{');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The placeholders of subjects, bodies and gateway parameters.
fn vars<'a>(m: &'a OutOfBand<'_>, otp: &'a str, validity: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![
        ("otp", otp),
        ("user", m.user),
        ("serial", m.serial),
        ("validity", validity),
    ];
    match m.channel {
        Channel::Email { address } => v.push(("email", address)),
        Channel::Sms { phone } => v.push(("phone", phone)),
    }
    v
}

/// The whole mail, CRLF line ends, ready for SMTP's DATA (before dot-stuffing) or sendmail.
pub fn build_mail(cfg: &crate::config::EmailConfig, to: &str, m: &OutOfBand<'_>) -> Result<Secret> {
    if !crate::tokens::email::valid_address(to) {
        return Err(Error::delivery(format!(
            "token {}: \"{to}\" is not a plain user@domain address",
            m.serial
        )));
    }
    let otp = std::str::from_utf8(m.otp).map_err(|_| Error::delivery("the OTP is not text"))?;
    let validity = m.validity.to_string();
    let vars = vars(m, otp, &validity);
    let subject = fill(&cfg.subject, &vars);
    let body = fill(&cfg.body, &vars);
    let mut msg = Zeroizing::new(Vec::with_capacity(512 + body.len()));
    let mut header = |name: &str, value: &str| {
        msg.extend_from_slice(name.as_bytes());
        msg.extend_from_slice(b": ");
        msg.extend_from_slice(value.as_bytes());
        msg.extend_from_slice(b"\r\n");
    };
    header("From", &cfg.from);
    header("To", to);
    header(
        "Subject",
        &encode_header(&subject.replace(['\r', '\n'], " ")),
    );
    header("Date", &rfc5322_date(m.now));
    header("Message-ID", &message_id(&cfg.from));
    header("MIME-Version", "1.0");
    header("Content-Type", "text/plain; charset=utf-8");
    header("Auto-Submitted", "auto-generated");
    let normalized = Zeroizing::new(body.replace("\r\n", "\n"));
    if normalized.is_ascii() {
        header("Content-Transfer-Encoding", "7bit");
        msg.extend_from_slice(b"\r\n");
        for line in normalized.split_inclusive('\n') {
            msg.extend_from_slice(line.trim_end_matches('\n').as_bytes());
            msg.extend_from_slice(b"\r\n");
        }
    } else {
        header("Content-Transfer-Encoding", "base64");
        msg.extend_from_slice(b"\r\n");
        let b64 = Zeroizing::new(base64(normalized.as_bytes()));
        for chunk in b64.as_bytes().chunks(76) {
            msg.extend_from_slice(chunk);
            msg.extend_from_slice(b"\r\n");
        }
    }
    Ok(msg)
}

/// RFC 2047 for a header value that is not plain ASCII.
fn encode_header(v: &str) -> String {
    if v.is_ascii() {
        v.to_string()
    } else {
        format!("=?utf-8?B?{}?=", base64(v.as_bytes()))
    }
}

fn message_id(from: &str) -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut b);
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    format!("<{}.tessera@{domain}>", crate::crypto::encode_hex(&b))
}

/// `Thu, 01 Jan 1970 00:00:00 +0000`.
pub fn rfc5322_date(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (y, m, d) = crate::calendar::civil_from_days(days as i64);
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Standard base64 with padding (SMTP AUTH, mail bodies, encoded words).
pub fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_of_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_700_000_000),
            "Tue, 14 Nov 2023 22:13:20 +0000"
        );
    }

    #[test]
    fn placeholders() {
        let v = [("otp", "123456"), ("user", "alice")];
        assert_eq!(
            &*fill("{user}: {otp} {other} {", &v),
            "alice: 123456 {other} {"
        );
        assert_eq!(scrub("bad 123456 x", b"123456"), "bad ****** x");
    }

    fn oob<'a>(address: &'a str) -> OutOfBand<'a> {
        OutOfBand {
            channel: Channel::Email { address },
            otp: b"123456",
            user: "alice",
            serial: "EM1",
            validity: 300,
            now: 0,
        }
    }

    #[test]
    fn mails_have_crlf_lines_and_encoded_non_ascii() {
        let mut cfg = crate::config::EmailConfig::default();
        let m = build_mail(&cfg, "alice@example.org", &oob("alice@example.org")).unwrap();
        let text = String::from_utf8(m.to_vec()).unwrap();
        assert!(text.contains("To: alice@example.org\r\n"), "{text}");
        assert!(
            text.contains(
                "\r\n\r\nYour one-time password is 123456.\r\nIt is valid for 300 seconds.\r\n"
            ),
            "{text}"
        );
        assert!(!text.replace("\r\n", "").contains('\n'));
        cfg.subject = "Ihr Einmalpasswort für {user}".into();
        cfg.body = "Gültig: {otp}".into();
        let m = build_mail(&cfg, "alice@example.org", &oob("alice@example.org")).unwrap();
        let text = String::from_utf8(m.to_vec()).unwrap();
        assert!(text.contains("Subject: =?utf-8?B?"), "{text}");
        assert!(text.contains("base64") && text.contains(&base64("Gültig: 123456".as_bytes())));
        assert!(build_mail(&cfg, "x\r\nBcc: y@z.org", &oob("x")).is_err());
    }
}
