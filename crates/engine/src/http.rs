//! What the engine's network clients share: the CA certificates they trust (the remote
//! validate client, the SMS gateway and the SMTP relay) and URL encoding (those clients and the
//! `otpauth://` URI of `tessera token add`).

use crate::error::{Error, Kind, Result};
use std::path::Path;
use ureq::tls::{Certificate, PemItem};
use zeroize::Zeroizing;

/// Where the system's trusted roots live, by distribution.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The certificates to trust: those of `ca_file`, else the system bundle. `section` names the
/// config section in errors (`[remote]`, `[sms]`, `[email]`).
pub fn trusted_roots(ca_file: Option<&Path>, section: &str) -> Result<Vec<Certificate<'static>>> {
    let path = match ca_file {
        Some(p) => p,
        None => SYSTEM_BUNDLES
            .iter()
            .map(Path::new)
            .find(|p| p.exists())
            .ok_or_else(|| {
                Error::config(format!(
                    "no system CA bundle found (looked at {}); set {section} ca_file",
                    SYSTEM_BUNDLES.join(", ")
                ))
            })?,
    };
    let pem = std::fs::read(path)
        .map_err(|e| Error::io(Kind::Config, path, e).what(format!("{section} ca_file")))?;
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(Error::config(format!(
            "{section} ca_file {}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

/// Percent-encoding of every byte but RFC 3986's unreserved characters: for values put in a
/// URL (query parameters, the labels of an `otpauth://` URI).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `application/x-www-form-urlencoded`, byte by byte, into a buffer wiped after use (the
/// values are passes and OTPs).
pub fn form_encode(fields: &[(&str, &[u8])]) -> Zeroizing<Vec<u8>> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Zeroizing::new(Vec::with_capacity(
        fields.iter().map(|(k, v)| k.len() + 3 * v.len() + 2).sum(),
    ));
    for (n, (k, v)) in fields.iter().enumerate() {
        if n > 0 {
            out.push(b'&');
        }
        for (i, part) in [k.as_bytes(), v].into_iter().enumerate() {
            if i == 1 {
                out.push(b'=');
            }
            for &b in part {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*') {
                    out.push(b);
                } else if b == b' ' {
                    out.push(b'+');
                } else {
                    out.extend_from_slice(&[
                        b'%',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 15)],
                    ]);
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
        assert_eq!(percent_encode("+49 170/é"), "%2B49%20170%2F%C3%A9");
        let f = form_encode(&[("user", b"al ice"), ("pass", b"p&w=%\xff1")]);
        assert_eq!(&f[..], b"user=al+ice&pass=p%26w%3D%25%FF1");
    }

    #[test]
    fn roots_from_a_file_without_certificates_are_an_error_naming_the_section() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not a certificate\n").unwrap();
        let e = trusted_roots(Some(&p), "[sms]").unwrap_err().to_string();
        assert!(
            e.contains("[sms] ca_file") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = trusted_roots(Some(&dir.path().join("missing")), "[remote]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[remote] ca_file"), "{e}");
    }
}
