//! `delivery::fill` (the `{otp}`, `{phone}`, ... placeholders of `[sms]` and `[email]`
//! templates from the config) and `delivery::scrub` (OTPs removed from error messages) on any
//! template, values and OTP.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tessera_engine::delivery::{fill, scrub};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    template: &'a str,
    vars: Vec<(&'a str, &'a str)>,
    msg: &'a str,
    otp: &'a [u8],
}

fuzz_target!(|i: Input<'_>| {
    let out = fill(i.template, &i.vars);
    // Without placeholders there is nothing to fill.
    if !i.template.contains('{') {
        assert_eq!(out.as_str(), i.template);
    }
    let s = scrub(i.msg, i.otp);
    if let Ok(o) = std::str::from_utf8(i.otp) {
        // OTPs are digits; other strings can reappear next to the stars ("a*" in "aa*").
        if !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit()) {
            assert!(!s.contains(o), "{o:?} left in {s:?}");
        }
    }
});
