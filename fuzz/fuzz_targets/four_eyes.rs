//! 4eyes: `Policy::parse` of `--4eyes REALM:N` with any separator, `Policy::from_info` of the
//! stored info, and `Policy::split` of any pass (the pass is typed by whoever is at the prompt).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tessera_engine::tokens::four_eyes::{Policy, MAX_PARTS};
use tessera_engine::tokens::TokenInfo;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    spec: &'a str,
    separator: &'a str,
    pass: &'a [u8],
    info: &'a [u8],
}

fuzz_target!(|i: Input<'_>| {
    // The info column as the store reads it (a token's JSON, any bytes here).
    if let Ok(info) = serde_json::from_slice::<TokenInfo>(i.info) {
        if let Ok(p) = Policy::from_info("FUZZ", &info) {
            split(&p, i.pass);
        }
    }
    let Ok(p) = Policy::parse(i.spec, i.separator) else {
        return;
    };
    assert!(p.count >= 1 && p.count as usize <= MAX_PARTS);
    // What is stored reads back as the same policy.
    assert_eq!(
        Policy::from_info("FUZZ", &p.to_info()).ok(),
        Some(p.clone())
    );
    split(&p, i.pass);
});

fn split(p: &Policy, pass: &[u8]) {
    if let Some(parts) = p.split(pass) {
        assert!(!parts.is_empty() && parts.len() <= MAX_PARTS);
        // The parts joined by the separator are the pass.
        assert_eq!(parts.join(p.separator.as_bytes()), pass);
    }
}
