//! PSKC encryption (RFC 6030 §6): the key that opens a file's secrets (a pre-shared AES key,
//! or one PBKDF2 derives from a password), AES-CBC decryption, and the HMAC over each
//! encrypted value.

use super::{attr, base64, child, text, Protection, PSKC};
use crate::{err, ImportError, Result};
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, KeyIvInit};
use roxmltree::Node;
use tessera_engine::crypto::{ct_eq, Secret};
use tessera_engine::tokens::Algorithm;
use zeroize::Zeroizing;

const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
const XENC11: &str = "http://www.w3.org/2009/xmlenc11#";
const DS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// More PBKDF2 rounds than this are refused: a file must not hold the command for hours.
const MAX_ITERATIONS: u32 = 10_000_000;

const NO_PASSWORD: &str = "the file is encrypted with a password: give --password-file";
const NO_KEY: &str = "the file is encrypted with a pre-shared key: give --key-file";

/// The keys that open a file's encrypted values.
pub(super) struct Crypt {
    key: Secret,
    /// The MAC algorithm and key of `MACMethod`, if the file has one.
    mac: Option<(Algorithm, Secret)>,
}

impl Crypt {
    /// The keys of the `KeyContainer` `root`, under `protection`.
    pub(super) fn open(root: Node, protection: Option<&Protection>) -> Result<Crypt> {
        let key = match child(root, PSKC, "EncryptionKey") {
            Some(ek) => encryption_key(ek, protection)?,
            // No EncryptionKey: the key can only have been agreed on beforehand.
            None => match protection {
                Some(Protection::Key(k)) => k.clone(),
                _ => return err(NO_KEY),
            },
        };
        let mac = match child(root, PSKC, "MACMethod") {
            None => None,
            Some(method) => {
                let uri = attr(method, "Algorithm").unwrap_or("");
                let algorithm = mac_algorithm(uri).ok_or_else(|| {
                    bad(format!(
                        "MACMethod {}: not HMAC-SHA1 or HMAC-SHA256",
                        clip(uri)
                    ))
                })?;
                let Some(mac_key) = child(method, PSKC, "MACKey") else {
                    return err("MACMethod has no MACKey");
                };
                let (mac_key, _) = decrypt(mac_key, &key, "the MACKey")?;
                Some((algorithm, mac_key))
            }
        };
        Ok(Crypt { key, mac })
    }

    /// Whether the file's values carry MACs.
    pub(super) fn has_mac(&self) -> bool {
        self.mac.is_some()
    }

    /// The plaintext of `Secret/EncryptedValue` `value`, after the check of the `ValueMAC`
    /// of `secret` (`at`: "KeyPackage N").
    pub(super) fn secret(&self, secret: Node, value: Node, at: &str) -> Result<Secret> {
        let (plain, cipher) = decrypt(value, &self.key, &format!("{at}: the secret"))?;
        if let Some((algorithm, mac_key)) = &self.mac {
            let Some(given) = child(secret, PSKC, "ValueMAC") else {
                return err(format!("{at}: the secret has no ValueMAC"));
            };
            let given =
                base64(text(given)).map_err(|_| bad(format!("{at}: ValueMAC is not base64")))?;
            if !ct_eq(&algorithm.hmac(mac_key, &cipher), &given) {
                return err(format!(
                    "{at}: the MAC of the secret does not match (wrong password or key, or a damaged file)"
                ));
            }
        }
        Ok(plain)
    }
}

fn bad(msg: impl Into<String>) -> ImportError {
    ImportError(msg.into())
}

/// At most 80 characters of a value from the file, for a one-line error.
pub(super) fn clip(s: &str) -> String {
    // Control characters escaped: an error or note is one line.
    let mut out = String::new();
    for c in s.chars().take(80) {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

fn mac_algorithm(uri: &str) -> Option<Algorithm> {
    if uri.ends_with("#hmac-sha1") {
        Some(Algorithm::Sha1)
    } else if uri.ends_with("#hmac-sha256") {
        Some(Algorithm::Sha256)
    } else {
        None
    }
}

/// The AES key of `EncryptionKey` `ek`.
fn encryption_key(ek: Node, protection: Option<&Protection>) -> Result<Secret> {
    if let Some(derived) = child(ek, XENC11, "DerivedKey") {
        let Some(Protection::Password(password)) = protection else {
            return err(NO_PASSWORD);
        };
        return derive(derived, password);
    }
    if child(ek, DS, "KeyName").is_some() {
        let Some(Protection::Key(key)) = protection else {
            return err(NO_KEY);
        };
        return Ok(key.clone());
    }
    let what = ek
        .children()
        .find(|n| n.is_element())
        .map_or("nothing", |n| n.tag_name().name());
    err(format!(
        "EncryptionKey holds {}; tessera opens files under a password or a pre-shared key only",
        clip(what)
    ))
}

/// The key PBKDF2 derives from `password` as `DerivedKey` `derived` says (RFC 6030 §6.2).
fn derive(derived: Node, password: &[u8]) -> Result<Secret> {
    let method = child(derived, XENC11, "KeyDerivationMethod");
    let uri = method.and_then(|m| attr(m, "Algorithm")).unwrap_or("");
    if !uri.ends_with("pkcs-5v2-0#pbkdf2") {
        return err(format!("KeyDerivationMethod {}: not PBKDF2", clip(uri)));
    }
    let params = method
        .and_then(|m| {
            m.children()
                .find(|n| n.is_element() && n.tag_name().name() == "PBKDF2-params")
        })
        .ok_or_else(|| bad("KeyDerivationMethod has no PBKDF2-params"))?;
    let param = |name: &str| {
        params
            .children()
            .find(|n| n.is_element() && n.tag_name().name() == name)
    };
    let salt = param("Salt")
        .and_then(|s| {
            s.children()
                .find(|n| n.is_element() && n.tag_name().name() == "Specified")
        })
        .ok_or_else(|| bad("PBKDF2-params has no Salt/Specified"))?;
    let salt = base64(text(salt)).map_err(|_| bad("the PBKDF2 Salt is not base64"))?;
    let iterations: u32 = param("IterationCount")
        .and_then(|n| text(n).trim().parse().ok())
        .filter(|i| (1..=MAX_ITERATIONS).contains(i))
        .ok_or_else(|| {
            bad(format!(
                "the PBKDF2 IterationCount must be 1 to {MAX_ITERATIONS}"
            ))
        })?;
    let length: usize = match param("KeyLength") {
        None => 16,
        Some(n) => text(n).trim().parse().unwrap_or(0),
    };
    if !matches!(length, 16 | 24 | 32) {
        return err("the PBKDF2 KeyLength must be 16, 24 or 32 (an AES key)");
    }
    if let Some(prf) = param("PRF") {
        let uri = attr(prf, "Algorithm").unwrap_or_else(|| text(prf).trim());
        if !(uri.is_empty() || uri.ends_with("hmac-sha1")) {
            return err(format!("the PBKDF2 PRF {} is not HMAC-SHA1", clip(uri)));
        }
    }
    Ok(pbkdf2(password, &salt, iterations, length))
}

pub(super) fn pbkdf2(password: &[u8], salt: &[u8], iterations: u32, length: usize) -> Secret {
    let mut key = Zeroizing::new(vec![0u8; length]);
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, iterations, &mut key);
    key
}

/// The plaintext of an encrypted value `el` (`xenc:EncryptionMethod` and
/// `xenc:CipherData/xenc:CipherValue` children) under `key`, and its raw CipherValue (IV and
/// ciphertext, what the MAC covers). `what` names it in errors.
fn decrypt(el: Node, key: &[u8], what: &str) -> Result<(Secret, Vec<u8>)> {
    let uri = child(el, XENC, "EncryptionMethod")
        .and_then(|m| attr(m, "Algorithm"))
        .unwrap_or("");
    let bits = match uri.strip_prefix(XENC) {
        Some("aes128-cbc") => 128,
        Some("aes192-cbc") => 192,
        Some("aes256-cbc") => 256,
        _ => return err(format!("{what}: encryption {} is not AES-CBC", clip(uri))),
    };
    if key.len() * 8 != bits {
        return err(format!(
            "{what}: the key is {} bits, and the encryption is AES-{bits}",
            key.len() * 8
        ));
    }
    let value = child(el, XENC, "CipherData")
        .and_then(|d| child(d, XENC, "CipherValue"))
        .ok_or_else(|| bad(format!("{what} has no CipherData/CipherValue")))?;
    let cipher =
        base64(text(value)).map_err(|_| bad(format!("{what}: the CipherValue is not base64")))?;
    let (Some(iv), Some(body)) = (cipher.get(..16), cipher.get(16..)) else {
        return err(format!("{what}: the CipherValue is too short"));
    };
    if body.is_empty() || body.len() % 16 != 0 {
        return err(format!("{what}: the CipherValue is not whole AES blocks"));
    }
    let mut buf = Zeroizing::new(body.to_vec());
    let plain = match bits {
        128 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .ok()
            .and_then(|d| d.decrypt_padded_mut::<Pkcs7>(&mut buf).ok()),
        192 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .ok()
            .and_then(|d| d.decrypt_padded_mut::<Pkcs7>(&mut buf).ok()),
        _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()
            .and_then(|d| d.decrypt_padded_mut::<Pkcs7>(&mut buf).ok()),
    }
    .map(|p| Zeroizing::new(p.to_vec()))
    .ok_or_else(|| {
        bad(format!(
            "{what} does not decrypt (wrong password or key, or a damaged file)"
        ))
    })?;
    Ok((plain, cipher.to_vec()))
}
