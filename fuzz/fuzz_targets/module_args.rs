//! `args::parse` on any list of byte strings: the arguments of a PAM line, which the
//! module reads inside sshd or sudo, where a panic is caught but ends the login.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|args: Vec<&[u8]>| {
    if let Ok(a) = pam_tessera::args::parse(args.iter().copied()) {
        assert!(!(a.flags.use_first_pass && a.flags.try_first_pass));
        // Every argument was UTF-8 and known.
        for raw in &args {
            assert!(std::str::from_utf8(raw).is_ok());
        }
    }
});
