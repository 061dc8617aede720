//! Secrets at rest and in memory: the store key (AEAD over OTP keys), PIN hashes (Argon2id),
//! constant-time comparison, and zeroizing containers.

use crate::error::{Error, Kind, Result};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use std::io::Read;
use std::path::Path;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

mod pin;

#[cfg(test)]
pub(crate) use pin::pin_checks;
pub use pin::{check_pin, hash_pin, verify_pin, Gate, PinCheck, PinHasher, Turn, PIN_HASH_MEMORY};

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

    /// Reads a key file: 64 hex digits and an optional newline. The file is opened and
    /// checked by [`crate::os::fsperm::open_checked`] (no link, owner only, safe directories), and
    /// the key is read from that descriptor.
    pub fn load(path: &Path) -> Result<StoreKey> {
        let file = crate::os::fsperm::open_checked(path, crate::os::fsperm::Access::Secret, |e| {
            let hint = match e.kind() {
                std::io::ErrorKind::PermissionDenied => format!(
                    " (read as uid {}: the key must belong to the user tesserad runs as, \
                     the owner of the store's directory)",
                    crate::os::sys::euid()
                ),
                _ => " (run `tessera init`)".to_string(),
            };
            Error::io(Kind::Key, path, e).hint(hint)
        })?;
        StoreKey::from_reader(file, path)
    }

    /// Reads a key (64 hex digits and an optional newline) from `reader`, an open key file;
    /// `path` is only used in messages. At most 4 KiB are read, into a wiped buffer.
    pub fn from_reader(reader: impl Read, path: &Path) -> Result<StoreKey> {
        // Room for the whole read up front: a buffer that grew would leave unwiped copies.
        let mut raw = Zeroizing::new(Vec::with_capacity(4097));
        reader
            .take(4096)
            .read_to_end(&mut raw)
            .map_err(|e| Error::io(Kind::Key, path, e))?;
        let bad = || Error::key(format!("{}: not 64 hex digits", path.display()));
        let text = std::str::from_utf8(&raw).map_err(|_| bad())?;
        // `decode_hex` gives a `Secret`: the decoded copy is wiped when `bytes` drops, as is a
        // wrong-length one dropped by the filter.
        let bytes = decode_hex(text.trim())
            .filter(|b| b.len() == 32)
            .ok_or_else(bad)?;
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
            return Err(Error::key(format!("token {serial}: sealed key too short")));
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
                Error::key(format!(
                    "token {serial}: key does not decrypt (wrong key file?)"
                ))
            })
    }
}

/// A secret mixed into every PIN hash (Argon2's secret input), derived from the store key: a
/// stolen store without the key file is then useless for guessing PINs, however short they are.
pub struct Pepper(Zeroizing<[u8; 32]>);

impl StoreKey {
    /// The PIN pepper of this key: HMAC-SHA256(key, a fixed label), so that the key that seals
    /// OTP keys is never used directly as a second kind of secret.
    pub fn pepper(&self) -> Pepper {
        use hmac::{Hmac, Mac};
        let mut out = Zeroizing::new([0u8; 32]);
        if let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(self.0.as_ref()) {
            mac.update(b"tessera PIN pepper v1");
            out.copy_from_slice(&mac.finalize().into_bytes());
        }
        Pepper(out)
    }
}

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
}
