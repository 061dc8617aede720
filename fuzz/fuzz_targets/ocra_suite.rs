//! `ocra::Suite::parse` on any string (`--ocra-suite`, imports), and for a suite that parses,
//! `compute` on fuzzer-chosen key, counter, question, PIN hash, session data and time: errors
//! are fine (a question that does not fit the suite), panics are not.
//!
//! Input: the suite text up to the first NUL (so that plain suite strings are seeds and
//! dictionary words work), then the other arguments drawn from the rest.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use tessera_engine::tokens::ocra::{Ocra, Suite};

#[derive(Arbitrary, Debug)]
struct Args<'a> {
    key: &'a [u8],
    counter: u64,
    question: &'a str,
    pin_hash: &'a [u8],
    session: &'a [u8],
    time: u64,
}

fuzz_target!(|data: &[u8]| {
    let (text, rest) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let Ok(suite) = Suite::parse(text) else {
        assert!(Ocra::new(text).is_err());
        return;
    };
    // A parsed suite keeps its text and parses to the same thing again.
    assert_eq!(suite.as_str(), text);
    assert_eq!(Suite::parse(suite.as_str()).ok().as_ref(), Some(&suite));
    // RFC 6287 suites are ASCII, and numbers are plain digits (no `+6`, `QN+8`).
    assert!(text.is_ascii() && !text.contains(['+', ' ']));
    assert!((4..=10).contains(&suite.digits));
    assert!((4..=64).contains(&suite.question_len));
    let _ = Ocra::new(text);
    let Ok(a) = Args::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    if let Ok(v) = suite.compute(a.key, a.counter, a.question, a.pin_hash, a.session, a.time) {
        assert_eq!(v.len(), suite.digits as usize);
        assert!(v.iter().all(u8::is_ascii_digit));
    }
    // A question of the suite's own making always fits it.
    let q = suite.random_question(&mut rand_from(a.counter));
    assert_eq!(q.len(), suite.question_len);
    assert!(suite
        .compute(a.key, a.counter, &q, b"", b"", a.time)
        .is_ok());
});

/// A deterministic generator (the fuzzer must replay inputs exactly).
fn rand_from(seed: u64) -> impl rand::RngCore {
    use rand::SeedableRng;
    rand::rngs::StdRng::seed_from_u64(seed)
}
