//! The frames of the module-daemon protocol, from either side: arbitrary bytes as a frame
//! (length prefix and body) never panic, and whatever decodes encodes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_proto::{read_frame, Reply, Request};

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = read_frame(&mut &data[..]) {
        if let Ok(r) = Request::decode(&body) {
            assert_eq!(&r.encode()[4..], &body[..], "request round trip");
        }
        if let Ok(r) = Reply::decode(&body) {
            assert_eq!(&r.encode()[4..], &body[..], "reply round trip");
        }
    }
    // The body alone, without a length prefix.
    let _ = Request::decode(data);
    let _ = Reply::decode(data);
});
