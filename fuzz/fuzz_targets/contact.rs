//! The checks of e-mail addresses and phone numbers given to `tessera token add` or found in
//! imports, and their masked forms shown in challenge messages. An address that passes ends up
//! in a mail header and an SMTP `RCPT TO`; a phone number in a gateway request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_engine::tokens::email::{mask_address, valid_address};
use tessera_engine::tokens::sms::{mask_phone, valid_phone};

fuzz_target!(|s: &str| {
    if valid_address(s) {
        // Nothing that could end a header line or an SMTP command, or add a recipient.
        assert!(s.bytes().all(|b| b.is_ascii_graphic()));
        assert!(!s.contains(['<', '>', ',', ';', ':', '"', '\\']));
        assert_eq!(s.matches('@').count(), 1);
    }
    let _ = mask_address(s);
    if valid_phone(s) {
        assert!(s.bytes().all(|b| b.is_ascii_digit() || b"+ -".contains(&b)));
        let masked = mask_phone(s);
        assert_eq!(masked.len(), s.len());
    } else {
        let _ = mask_phone(s);
    }
});
