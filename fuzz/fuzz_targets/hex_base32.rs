//! The key decoders (`--key HEX`, the store key file, base32 secrets of imports): any string is
//! decoded or refused without a panic, and encoding then decoding gives the bytes back.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tessera_engine::crypto::{decode_base32, decode_hex, encode_base32, encode_hex};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    text: &'a str,
    bytes: &'a [u8],
}

fuzz_target!(|i: Input<'_>| {
    // Arbitrary text: decoded or refused; what decodes re-encodes to the same hex (lowercase).
    if let Some(b) = decode_hex(i.text) {
        assert_eq!(b.len() * 2, i.text.len());
        assert_eq!(encode_hex(&b), i.text.to_ascii_lowercase());
    }
    if let Some(b) = decode_base32(i.text) {
        // 5 bits a significant character, trailing bits short of a byte dropped; re-encoding
        // gives the characters back (upper case) except the last one, whose unused low bits
        // are written as zeros.
        let kept: String = i
            .text
            .chars()
            .filter(|c| !matches!(c, ' ' | '=' | '-'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        assert_eq!(b.len(), kept.len() * 5 / 8);
        let enc = encode_base32(&b);
        assert!(enc.len() <= kept.len());
        assert!(kept.starts_with(&enc[..enc.len().saturating_sub(1)]));
        assert_eq!(decode_base32(&enc).as_deref().map(|v| &v[..]), Some(&b[..]));
    }
    // Round trips of arbitrary bytes.
    let hex = encode_hex(i.bytes);
    assert_eq!(decode_hex(&hex).as_deref().map(|v| &v[..]), Some(i.bytes));
    assert_eq!(
        decode_hex(&hex.to_ascii_uppercase())
            .as_deref()
            .map(|v| &v[..]),
        Some(i.bytes)
    );
    let b32 = encode_base32(i.bytes);
    assert_eq!(
        decode_base32(&b32).as_deref().map(|v| &v[..]),
        Some(i.bytes)
    );
    assert_eq!(
        decode_base32(&b32.to_ascii_lowercase())
            .as_deref()
            .map(|v| &v[..]),
        Some(i.bytes)
    );
});
