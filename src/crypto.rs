//! Secrets at rest and in memory: the store key (AEAD over OTP keys), PIN hashes (Argon2id),
//! constant-time comparison, and zeroizing containers.

use crate::error::{Error, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use std::path::Path;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Bytes that are wiped when dropped: PINs, passes, OTPs, token keys.
pub type Secret = Zeroizing<Vec<u8>>;

/// Wraps bytes as a [`Secret`].
pub fn secret(bytes: &[u8]) -> Secret {
    Zeroizing::new(bytes.to_vec())
}

/// Constant-time equality of two byte strings (lengths are not secret here: OTP lengths are
/// public token parameters).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The 256-bit key that encrypts OTP keys in the store.
pub struct StoreKey(Zeroizing<[u8; 32]>);

impl StoreKey {
    pub fn generate() -> StoreKey {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(k.as_mut());
        StoreKey(k)
    }

    /// Reads a key file: 64 hex digits and an optional newline.
    pub fn load(path: &Path) -> Result<StoreKey> {
        let mut text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| Error::Key(format!("{}: {e}", path.display())))?,
        );
        // `decode_hex` gives a `Secret`: the decoded copy is wiped when `bytes` drops, as is a
        // wrong-length one dropped by the filter.
        let bytes = decode_hex(text.trim())
            .filter(|b| b.len() == 32)
            .ok_or_else(|| Error::Key(format!("{}: not 64 hex digits", path.display())))?;
        text.zeroize();
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(&bytes);
        Ok(StoreKey(k))
    }

    /// The key file's content.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(encode_hex(self.0.as_ref()))
    }

    /// Encrypts a token key; `serial` is bound as associated data so that a ciphertext moved to
    /// another token's row does not decrypt.
    pub fn seal(&self, serial: &str, plain: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new(self.0.as_ref().into());
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: serial.as_bytes(),
                },
            )
            .unwrap_or_default(); // encryption of an in-memory buffer does not fail
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts a token key sealed by [`StoreKey::seal`].
    pub fn open(&self, serial: &str, sealed: &[u8]) -> Result<Secret> {
        if sealed.len() < 24 + 16 {
            return Err(Error::Key(format!("token {serial}: sealed key too short")));
        }
        let cipher = XChaCha20Poly1305::new(self.0.as_ref().into());
        let (nonce, ct) = sealed.split_at(24);
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: serial.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                Error::Key(format!(
                    "token {serial}: key does not decrypt (wrong key file?)"
                ))
            })
    }
}

/// Argon2id parameters for PINs: 8 MiB, 2 passes, 1 lane. One check costs about 10 ms on this
/// machine (the bench prints it), well under the 50 ms budget, while a GPU guesser still pays
/// 8 MiB of memory per guess. Stored in the PHC string, so they can be raised later without
/// invalidating existing hashes.
fn argon2() -> argon2::Argon2<'static> {
    let params = argon2::Params::new(8 * 1024, 2, 1, None).unwrap_or_default();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Hashes a PIN to a PHC string (`$argon2id$...`).
pub fn hash_pin(pin: &[u8]) -> Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()
        .hash_password(pin, &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Invalid(format!("PIN hashing failed: {e}")))
}

/// Checks a PIN against a stored PHC string. An unparsable hash never matches.
pub fn verify_pin(pin: &[u8], phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => argon2().verify_password(pin, &h).is_ok(),
        Err(_) => false,
    }
}

/// Work equal to one PIN check, for users and tokens that don't exist, so that timing does not
/// tell them apart from a wrong PIN.
pub fn burn_pin_check(pin: &[u8]) {
    let _ = verify_pin(pin, DUMMY_PIN_HASH);
}

/// A PHC string made once by `hash_pin` (same parameters; a test keeps them in step). A
/// constant rather than hashed at first use: a fresh sshd child would otherwise pay one extra
/// Argon2 run for an unknown user only.
const DUMMY_PIN_HASH: &str =
    "$argon2id$v=19$m=8192,t=2,p=1$73vR8yhihozNPp/yPJOE9w$Ub6spAHJZpvUM5MRuXf8fjvxBkeE1r8gPMltUFQ9gQM";

pub fn encode_hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

/// Decodes hex (either case). The bytes are key material (token keys, the store key), so they
/// come back as a [`Secret`], written into one allocation of the final size: no reallocation
/// leaves an unwiped copy behind, and a string that turns out not to be hex halfway drops (and
/// wipes) what was decoded so far.
pub fn decode_hex(s: &str) -> Option<Secret> {
    let s = s.as_bytes();
    if s.len() % 2 != 0 {
        return None;
    }
    fn nib(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Zeroizing::new(Vec::with_capacity(s.len() / 2));
    for p in s.chunks_exact(2) {
        out.push(nib(p[0])? << 4 | nib(p[1])?);
    }
    Some(out)
}

/// Base32 (RFC 4648, no padding) for `otpauth://` URIs.
pub fn encode_base32(b: &[u8]) -> String {
    const A: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &x in b {
        buf = (buf << 8) | x as u32;
        bits += 8;
        while bits >= 5 {
            out.push(A[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(A[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes base32 (case-insensitive, spaces, dashes and padding ignored), for imports. Like
/// [`decode_hex`], a [`Secret`] allocated once at its largest possible size (5 bits a
/// character), and the bit buffer is wiped too.
pub fn decode_base32(s: &str) -> Option<Secret> {
    let mut out = Zeroizing::new(Vec::with_capacity(s.len() * 5 / 8));
    // Zeroizing: on every return, also the early one, the last key bits in the buffer are wiped.
    let mut buf = Zeroizing::new(0u32);
    let mut bits = 0u32;
    for c in s.bytes().filter(|c| !matches!(c, b' ' | b'=' | b'-')) {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        // Only the bits not yet output are kept (at most 12), so nothing is shifted out.
        *buf = ((*buf << 5) | v as u32) & 0xfff;
        bits += 5;
        if bits >= 8 {
            out.push((*buf >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_and_binding() {
        let k = StoreKey::generate();
        let s = k.seal("HOTP1", b"secret");
        assert_eq!(&k.open("HOTP1", &s).unwrap()[..], b"secret");
        assert!(
            k.open("HOTP2", &s).is_err(),
            "ciphertext bound to its serial"
        );
        assert!(
            StoreKey::generate().open("HOTP1", &s).is_err(),
            "other key fails"
        );
    }

    #[test]
    fn pin_hash_verifies_only_the_pin() {
        let h = hash_pin(b"1234").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_pin(b"1234", &h));
        assert!(!verify_pin(b"12345", &h));
        assert!(!verify_pin(b"1234", "garbage"));
    }

    #[test]
    fn hex_and_base32() {
        assert_eq!(&decode_hex("00ff10").unwrap()[..], [0, 255, 16]);
        assert!(decode_hex("0g").is_none());
        assert_eq!(
            encode_base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        assert_eq!(
            &decode_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap()[..],
            b"12345678901234567890"
        );
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"ab", b"abc"));
    }

    /// Decoded keys are `Secret`s (wiped on drop), not plain vectors; this does not compile
    /// while the decoders return `Vec<u8>`.
    #[test]
    fn decoded_keys_are_secrets() {
        let hex: Secret = decode_hex("3132").unwrap();
        let b32: Secret = decode_base32("GEZA").unwrap();
        assert_eq!((&hex[..], &b32[..]), (&b"12"[..], &b"12"[..]));
        // Decoding happens in one allocation of the final size: no reallocation copies.
        assert_eq!(decode_hex(&"ab".repeat(64)).unwrap().capacity(), 64);
    }

    #[test]
    fn hex_and_base32_edge_cases() {
        assert_eq!(&decode_hex("").unwrap()[..], b"");
        assert!(decode_hex("abc").is_none());
        assert!(decode_hex("é0").is_none(), "non-ASCII is not hex");
        assert_eq!(&decode_hex("AbCd").unwrap()[..], [0xab, 0xcd]);
        // Padding, spaces, dashes and case are ignored; anything else is not base32.
        assert_eq!(&decode_base32("gezd-gnbv gy======").unwrap()[..], b"123456");
        assert!(decode_base32("GEZ1").is_none());
        assert!(decode_base32("GEZé").is_none());
        // Long inputs keep every bit (the bit buffer must not overflow or drop bits).
        let key: Vec<u8> = (0..=255).collect();
        assert_eq!(&decode_base32(&encode_base32(&key)).unwrap()[..], &key[..]);
        assert_eq!(&decode_hex(&encode_hex(&key)).unwrap()[..], &key[..]);
    }

    #[test]
    fn the_dummy_pin_hash_costs_what_a_real_one_does() {
        // Same algorithm and parameters as hash_pin, so burning a check takes as long as one.
        let real = hash_pin(b"1234").unwrap();
        let params = |phc: &str| phc.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(params(DUMMY_PIN_HASH), params(&real));
        assert!(verify_pin(b"tessera-dummy-pin", DUMMY_PIN_HASH));
    }
}
