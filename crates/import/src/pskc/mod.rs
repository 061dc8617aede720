//! PSKC, the Portable Symmetric Key Container (RFC 6030): the XML file token vendors ship
//! HOTP and TOTP seeds in, plain or encrypted (AES-CBC under a pre-shared key or a
//! password-derived one, with an HMAC over each encrypted value).
//!
//! The XML is parsed without DTDs (no entities to expand) and up to [`MAX_SIZE`] bytes.

mod crypt;

use crate::{check_digits, check_key, err, ImportError, Imported, Kind, Result};
use base64ct::Encoding;
use crypt::{clip, Crypt};
use roxmltree::{Document, Node, ParsingOptions};
use tessera_engine::crypto::Secret;
use tessera_engine::tokens::Algorithm;
use zeroize::Zeroizing;

/// How an encrypted PSKC file is opened: a password (PBKDF2-derived key, RFC 6030 6.2) or a
/// pre-shared AES key (6.1).
pub enum Protection {
    Password(Secret),
    Key(Secret),
}

/// Largest file read: a PSKC file of a few thousand tokens is a few MiB.
pub const MAX_SIZE: usize = 16 << 20;

const PSKC: &str = "urn:ietf:params:xml:ns:keyprov:pskc";

/// The HOTP and TOTP tokens of the PSKC file `text`; `protection` opens encrypted secrets.
pub fn read(text: &str, protection: Option<&Protection>) -> Result<Vec<Imported>> {
    if text.len() > MAX_SIZE {
        return err(format!("the file is larger than {} MiB", MAX_SIZE >> 20));
    }
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: 4_000_000,
    };
    let doc = Document::parse_with_options(text, options)
        .map_err(|e| ImportError(format!("not a PSKC file: {}", clip(&e.to_string()))))?;
    let root = doc.root_element();
    if !is(root, PSKC, "KeyContainer") {
        return err("not a PSKC file: the root element is not a PSKC KeyContainer");
    }
    // The keys are needed (and a password asked for) only if some value is encrypted.
    let encrypted = root.descendants().any(|n| is(n, PSKC, "EncryptedValue"));
    let crypt = if encrypted {
        Some(Crypt::open(root, protection)?)
    } else {
        None
    };
    let packages: Vec<_> = root
        .children()
        .filter(|n| is(*n, PSKC, "KeyPackage"))
        .collect();
    if packages.is_empty() {
        return err("the file holds no KeyPackage");
    }
    packages
        .into_iter()
        .enumerate()
        .map(|(i, p)| package(p, &format!("KeyPackage {}", i + 1), crypt.as_ref()))
        .collect()
}

/// The token of one `KeyPackage` (`at`: "KeyPackage N").
fn package(pkg: Node, at: &str, crypt: Option<&Crypt>) -> Result<Imported> {
    let Some(key) = child(pkg, PSKC, "Key") else {
        return err(format!("{at}: no Key"));
    };
    let uri = attr(key, "Algorithm").unwrap_or("");
    let totp = if uri.ends_with(":hotp") || uri.ends_with("#hotp") {
        false
    } else if uri.ends_with(":totp") || uri.ends_with("#totp") {
        true
    } else {
        return err(format!(
            "{at}: algorithm \"{}\" is not HOTP or TOTP",
            clip(uri)
        ));
    };
    let mut notes = Vec::new();

    let params = child(key, PSKC, "AlgorithmParameters");
    let algorithm = match params
        .and_then(|p| child(p, PSKC, "Suite"))
        .map(|s| text(s).trim())
    {
        None => Algorithm::Sha1,
        Some(s) if s.eq_ignore_ascii_case("HMAC-SHA1") => Algorithm::Sha1,
        Some(s) if s.eq_ignore_ascii_case("HMAC-SHA256") => Algorithm::Sha256,
        Some(s) if s.eq_ignore_ascii_case("HMAC-SHA512") => Algorithm::Sha512,
        Some(s) => {
            return err(format!(
                "{at}: Suite \"{}\" is not HMAC-SHA1, -SHA256 or -SHA512",
                clip(s)
            ))
        }
    };
    let format = params.and_then(|p| child(p, PSKC, "ResponseFormat"));
    if let Some(enc) = format.and_then(|f| attr(f, "Encoding")) {
        if !enc.eq_ignore_ascii_case("DECIMAL") {
            return err(format!("{at}: {} codes; tessera's are DECIMAL", clip(enc)));
        }
    }
    let digits = match format.and_then(|f| attr(f, "Length")) {
        None => 6,
        Some(l) => l
            .trim()
            .parse()
            .or_else(|_| err(format!("{at}: Length \"{}\" is not a number", clip(l))))?,
    };
    let digits = check_digits(digits, at)?;

    let data = child(key, PSKC, "Data");
    let Some(secret) = data.and_then(|d| child(d, PSKC, "Secret")) else {
        return err(format!("{at}: the Key has no Data/Secret"));
    };
    let secret_key = if let Some(plain) = child(secret, PSKC, "PlainValue") {
        base64(text(plain)).map_err(|_| ImportError(format!("{at}: the secret is not base64")))?
    } else if let Some(value) = child(secret, PSKC, "EncryptedValue") {
        let Some(crypt) = crypt else {
            return err(format!("{at}: the secret is encrypted"));
        };
        if !crypt.has_mac() {
            notes.push("no MACMethod: the secret's integrity is unchecked".to_string());
        }
        crypt.secret(secret, value, at)?
    } else {
        return err(format!(
            "{at}: the Secret has no PlainValue or EncryptedValue"
        ));
    };
    let secret_key = check_key(secret_key, at)?;

    let kind = if totp {
        let period = number(data, "TimeInterval", at)?.unwrap_or(30u64);
        if !matches!(period, 30 | 60) {
            return err(format!(
                "{at}: a TimeInterval of {period} s; tessera takes 30 or 60"
            ));
        }
        if number::<u64>(data, "Time", at)?.unwrap_or(0) != 0 {
            return err(format!(
                "{at}: Time (T0) is not 0; tessera counts time steps from the epoch"
            ));
        }
        let drift = number(data, "TimeDrift", at)?.unwrap_or(0i64);
        Kind::Totp {
            key: secret_key,
            digits,
            algorithm,
            period,
            drift,
            next_step: 0,
        }
    } else {
        let counter = number(data, "Counter", at)?.unwrap_or(0u64);
        Kind::Hotp {
            key: secret_key,
            digits,
            algorithm,
            counter,
        }
    };

    let device = child(pkg, PSKC, "DeviceInfo");
    let serial = device
        .and_then(|d| child(d, PSKC, "SerialNo"))
        .map(|s| text(s).trim())
        .or_else(|| attr(key, "Id"))
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let user_id =
        child(key, PSKC, "UserId").or_else(|| device.and_then(|d| child(d, PSKC, "UserId")));
    let user = user_id.and_then(|u| user(text(u).trim(), &mut notes));

    if let Some(issuer) = child(key, PSKC, "Issuer") {
        notes.push(format!("Issuer {}", clip(text(issuer).trim())));
    }
    let policy = child(key, PSKC, "Policy");
    if policy.and_then(|p| child(p, PSKC, "PINPolicy")).is_some() {
        notes.push("PINPolicy not carried over".to_string());
    }
    if let Some(expiry) = policy.and_then(|p| child(p, PSKC, "ExpiryDate")) {
        notes.push(format!(
            "expires {} (not enforced)",
            clip(text(expiry).trim())
        ));
    }
    Ok(Imported {
        serial,
        user,
        realm: None,
        kind,
        pin: None,
        origin: at.to_string(),
        notes,
    })
}

/// The login of a `UserId`: the UID of an LDAP DN (`UID=jsmith,DC=example-bank,DC=net`), or
/// the name as it is; none for a DN without a UID.
fn user(id: &str, notes: &mut Vec<String>) -> Option<String> {
    if id.is_empty() {
        return None;
    }
    if !id.contains('=') {
        return Some(id.to_string());
    }
    let uid = id.split(',').find_map(|part| {
        let (name, value) = part.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("uid")
            .then(|| value.trim().to_string())
    });
    if uid.is_none() {
        notes.push(format!("UserId {} names no UID", clip(id)));
    }
    uid.filter(|u| !u.is_empty())
}

/// The number in `Data/<name>/PlainValue`, if the element is there.
fn number<T: std::str::FromStr>(data: Option<Node>, name: &str, at: &str) -> Result<Option<T>> {
    let Some(el) = data.and_then(|d| child(d, PSKC, name)) else {
        return Ok(None);
    };
    let Some(plain) = child(el, PSKC, "PlainValue") else {
        return err(format!(
            "{at}: {name} has no PlainValue (encrypted {name} values are not read)"
        ));
    };
    let value = text(plain).trim();
    match value.parse() {
        Ok(n) => Ok(Some(n)),
        Err(_) => err(format!("{at}: {name} \"{}\" is not a number", clip(value))),
    }
}

fn is(node: Node, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(ns)
}

fn child<'a, 'i>(node: Node<'a, 'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|n| is(*n, ns, name))
}

fn attr<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.attribute(name)
}

fn text<'a>(node: Node<'a, '_>) -> &'a str {
    node.text().unwrap_or("")
}

/// Base64 with whitespace (line breaks, indentation) ignored.
fn base64(s: &str) -> std::result::Result<Secret, ()> {
    let compact = Zeroizing::new(
        s.chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect::<String>(),
    );
    base64ct::Base64::decode_vec(&compact)
        .map(Zeroizing::new)
        .map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_engine::crypto::{decode_hex, secret};
    use tessera_engine::tokens::hotp_code;

    const FIGURE3: &str = include_str!("../../tests/pskc/rfc6030-figure3.xml");
    const FIGURE5: &str = include_str!("../../tests/pskc/rfc6030-figure5.xml");
    const FIGURE6: &str = include_str!("../../tests/pskc/rfc6030-figure6.xml");
    const FIGURE7: &str = include_str!("../../tests/pskc/rfc6030-figure7.xml");
    /// The RFC's OTP key, "12345678901234567890" in ASCII.
    const RFC_KEY: &[u8] = b"12345678901234567890";

    fn pre_shared(hex: &str) -> Protection {
        Protection::Key(decode_hex(hex).unwrap())
    }

    fn password(p: &str) -> Protection {
        Protection::Password(secret(p.as_bytes()))
    }

    fn error(text: &str, protection: Option<&Protection>) -> String {
        match read(text, protection) {
            Ok(_) => panic!("read"),
            Err(e) => e.0,
        }
    }

    /// The one HOTP token of a file, as (key, digits, counter).
    fn hotp(tokens: &[Imported]) -> (&[u8], u32, u64) {
        match tokens {
            [Imported {
                kind:
                    Kind::Hotp {
                        key,
                        digits,
                        algorithm: Algorithm::Sha1,
                        counter,
                    },
                ..
            }] => (key, *digits, *counter),
            _ => panic!("not one HOTP-SHA1 token"),
        }
    }

    #[test]
    fn figure3_plain_hotp_with_the_user_of_the_dn() {
        let tokens = read(FIGURE3, None).unwrap();
        assert_eq!(hotp(&tokens), (RFC_KEY, 8, 0));
        let t = &tokens[0];
        assert_eq!(t.serial.as_deref(), Some("987654321"));
        assert_eq!(t.user.as_deref(), Some("jsmith"));
        assert_eq!(t.origin, "KeyPackage 1");
        assert_eq!(t.notes, ["Issuer Issuer"]);
        // RFC 4226 appendix D: the first code of the key.
        assert_eq!(&hotp_code(Algorithm::Sha1, RFC_KEY, 0, 8)[..], b"84755224");
    }

    #[test]
    fn figure6_pre_shared_key() {
        let key = pre_shared("12345678901234567890123456789012");
        let tokens = read(FIGURE6, Some(&key)).unwrap();
        let (secret, digits, _) = hotp(&tokens);
        assert_eq!(
            secret,
            &decode_hex("3132333435363738393031323334353637383930").unwrap()[..]
        );
        assert_eq!(digits, 8);
        assert_eq!(tokens[0].notes, ["Issuer Issuer"]);

        let wrong = pre_shared("12345678901234567890123456789013");
        assert!(error(FIGURE6, Some(&wrong)).contains("wrong password or key"));
        let short = pre_shared("1234567890123456");
        assert!(error(FIGURE6, Some(&short)).contains("the key is 64 bits"));
        assert_eq!(
            error(FIGURE6, None),
            "the file is encrypted with a pre-shared key: give --key-file"
        );
        assert_eq!(
            error(FIGURE6, Some(&password("qwerty"))),
            "the file is encrypted with a pre-shared key: give --key-file"
        );
    }

    #[test]
    fn figure6_tampered_mac_or_ciphertext() {
        let key = pre_shared("12345678901234567890123456789012");
        let tampered = FIGURE6.replace(
            "Su+NvtQfmvfJzF6bmQiJqoLRExc=",
            "Su+NvtQfmvfJzF6bmQiJqoLRExQ=",
        );
        let mac_error = "KeyPackage 1: the MAC of the secret does not match (wrong password or key, or a damaged file)";
        assert_eq!(error(&tampered, Some(&key)), mac_error);
        // A changed IV still decrypts (to another key): only the MAC catches it.
        let tampered = FIGURE6.replace("AAECAwQFBgcICQoLDA0OD+cI", "AAECAwQFBgcICQoLDA0OD+cJ");
        assert_eq!(error(&tampered, Some(&key)), mac_error);
        let no_mac = FIGURE6.replace(
            "<ValueMAC>Su+NvtQfmvfJzF6bmQiJqoLRExc=\n                    </ValueMAC>",
            "",
        );
        assert_eq!(
            error(&no_mac, Some(&key)),
            "KeyPackage 1: the secret has no ValueMAC"
        );
    }

    #[test]
    fn figure7_password() {
        let derived = crypt::pbkdf2(b"qwerty", &base64("Ej7/PEpyEpw=").unwrap(), 1000, 16);
        assert_eq!(
            &derived[..],
            &decode_hex("651e63cd57008476af1ff6422cd02e41").unwrap()[..]
        );

        let tokens = read(FIGURE7, Some(&password("qwerty"))).unwrap();
        assert_eq!(hotp(&tokens), (RFC_KEY, 8, 0));
        assert_eq!(tokens[0].serial.as_deref(), Some("987654321"));
        assert_eq!(tokens[0].user, None);
        assert_eq!(tokens[0].notes, ["Issuer Example-Issuer"]);

        assert!(error(FIGURE7, Some(&password("qwertz"))).contains("wrong password or key"));
        assert_eq!(
            error(FIGURE7, None),
            "the file is encrypted with a password: give --password-file"
        );
        let too_many = FIGURE7.replace("<IterationCount>1000<", "<IterationCount>4000000000<");
        assert!(error(&too_many, Some(&password("qwerty"))).contains("IterationCount must be 1 to"));
    }

    #[test]
    fn without_a_mac_the_secret_is_taken_with_a_note() {
        let key = pre_shared("12345678901234567890123456789012");
        let start = FIGURE6.find("<MACMethod").unwrap();
        let end = FIGURE6.find("</MACMethod>").unwrap() + "</MACMethod>".len();
        let no_mac = format!("{}{}", &FIGURE6[..start], &FIGURE6[end..]);
        let tokens = read(&no_mac, Some(&key)).unwrap();
        assert_eq!(hotp(&tokens).0, RFC_KEY);
        assert!(tokens[0]
            .notes
            .iter()
            .any(|n| n.starts_with("no MACMethod")));
    }

    const TOTP: &str = r#"<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">
  <KeyPackage>
    <Key Id="TOTP-7" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp">
      <AlgorithmParameters><Suite>hmac-sha256</Suite><ResponseFormat Length="6"/></AlgorithmParameters>
      <Data>
        <Secret><PlainValue>MTIzNDU2Nzg5MDEy
          MzQ1Njc4OTA=</PlainValue></Secret>
        <TimeInterval><PlainValue>30</PlainValue></TimeInterval>
        <TimeDrift><PlainValue>-2</PlainValue></TimeDrift>
      </Data>
      <UserId>alice</UserId>
    </Key>
  </KeyPackage>
</KeyContainer>"#;

    #[test]
    fn totp() {
        let tokens = read(TOTP, None).unwrap();
        let [t] = &tokens[..] else {
            panic!("one token")
        };
        let Kind::Totp {
            key,
            digits: 6,
            algorithm: Algorithm::Sha256,
            period: 30,
            drift: -2,
            next_step: 0,
        } = &t.kind
        else {
            panic!("not the TOTP token")
        };
        assert_eq!(&key[..], RFC_KEY);
        assert_eq!(t.serial.as_deref(), Some("TOTP-7"));
        assert_eq!(t.user.as_deref(), Some("alice"));

        let e = error(&TOTP.replace(">30<", ">45<"), None);
        assert_eq!(
            e,
            "KeyPackage 1: a TimeInterval of 45 s; tessera takes 30 or 60"
        );
        let t0 = TOTP.replace(
            "<TimeDrift>",
            "<Time><PlainValue>100</PlainValue></Time><TimeDrift>",
        );
        assert!(error(&t0, None).contains("Time (T0) is not 0"));
        assert!(
            error(&TOTP.replace("hmac-sha256", "HMAC-MD5"), None).contains("Suite \"HMAC-MD5\"")
        );
        assert!(error(&TOTP.replace("Length=\"6\"", "Length=\"7\""), None).contains("7-digit"));
    }

    #[test]
    fn a_dn_without_uid_gives_no_user() {
        let dn = TOTP.replace(
            "<UserId>alice</UserId>",
            "<UserId>CN=Alice,DC=example,DC=net</UserId>",
        );
        let tokens = read(&dn, None).unwrap();
        assert_eq!(tokens[0].user, None);
        assert!(tokens[0].notes.iter().any(|n| n.contains("names no UID")));
    }

    #[test]
    fn unsupported_algorithm_names_the_key_package() {
        assert_eq!(
            error(FIGURE5, None),
            "KeyPackage 2: algorithm \"urn:ietf:params:xml:ns:keyprov:pskc:pin\" is not HOTP or TOTP"
        );
    }

    #[test]
    fn dtds_garbage_and_empty_files_are_refused() {
        let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>
<KeyContainer xmlns="urn:ietf:params:xml:ns:keyprov:pskc">&lol2;</KeyContainer>"#;
        assert!(error(bomb, None).starts_with("not a PSKC file: "));
        assert!(error("", None).starts_with("not a PSKC file: "));
        assert!(error("\u{0}garbage<<", None).starts_with("not a PSKC file: "));
        assert!(error("<KeyContainer/>", None).contains("not a PSKC KeyContainer"));
        // The parser's message quotes the input: still one line (found by the fuzz target).
        let e = error("<TTTTT/\nT4", None);
        assert!(
            e.starts_with("not a PSKC file: ") && !e.contains('\n'),
            "{e:?}"
        );
        let empty = r#"<KeyContainer xmlns="urn:ietf:params:xml:ns:keyprov:pskc"/>"#;
        assert_eq!(error(empty, None), "the file holds no KeyPackage");
        let big = " ".repeat(MAX_SIZE + 1);
        assert_eq!(error(&big, None), "the file is larger than 16 MiB");
    }
}
