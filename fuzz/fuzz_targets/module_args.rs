//! `args::parse` on any list of C strings, and `login::Text` on any bytes: the arguments of a
//! PAM line and the PAM items the module reads inside sshd or sudo. The shipped module has no
//! path to a panic at all (its link would fail); here a panic is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::ffi::CString;

fuzz_target!(|args: Vec<&[u8]>| {
    // PAM's argv holds C strings: no NUL inside.
    let owned: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.iter().copied().filter(|&b| b != 0).collect::<Vec<u8>>()).unwrap())
        .collect();
    if let Ok(a) = pam_tessera::args::parse(owned.iter().map(|c| c.as_c_str())) {
        assert!(!(a.flags.use_first_pass && a.flags.try_first_pass));
        // Every argument was UTF-8 and known.
        for raw in &owned {
            assert!(raw.to_str().is_ok());
        }
    }
    for raw in &args {
        let t = pam_tessera::login::Text::new(Some(raw)).unwrap();
        assert!(t.as_str().len() <= tessera_proto::MAX_FIELD);
        if let Ok(s) = std::str::from_utf8(raw) {
            assert!(
                s.starts_with(t.as_str()),
                "UTF-8 is only cut, never changed"
            );
        }
    }
});
