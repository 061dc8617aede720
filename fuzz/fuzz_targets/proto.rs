//! The frames of the module-daemon protocol, from either side: arbitrary bytes as a frame
//! (length prefix and body) never panic, whatever decodes encodes back to the same bytes, and
//! the buffered reader both ends use gives exactly the frames `read_frame` gives, however the
//! bytes arrive; the daemon's reader never gives a frame past its limits (16 KiB for the
//! login, 4 KiB for an answer).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Read;
use tessera_proto::{read_frame, FrameReader, Reply, Request, MAX_ANSWER_FRAME, MAX_LOGIN_FRAME};

/// Gives at most `step` bytes per read.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

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

    // Frame by frame: the buffered reader agrees with read_frame, for any read sizes.
    let step = 1 + data.first().copied().unwrap_or(0) as usize % 17;
    let mut plain = &data[..];
    let mut buffered = FrameReader::new(tessera_proto::MAX_FRAME);
    let mut src = Trickle { data, step };
    loop {
        match (read_frame(&mut plain), buffered.read(&mut src)) {
            (Ok(a), Ok(b)) => assert_eq!(&a[..], &b[..], "buffered frame differs"),
            (Err(_), Err(_)) => break,
            (a, b) => panic!("read_frame {:?} but FrameReader {:?}", a.is_ok(), b.is_ok()),
        }
    }

    // The daemon's reader: a login of at most MAX_LOGIN_FRAME, then answers of at most
    // MAX_ANSWER_FRAME; no longer frame ever comes out, whatever the peer sends.
    let mut daemon = FrameReader::new(MAX_LOGIN_FRAME);
    let mut src = Trickle { data, step };
    let mut max = MAX_LOGIN_FRAME;
    while let Ok(f) = daemon.read(&mut src) {
        assert!(f.len() <= max, "a frame of {} past {max}", f.len());
        max = MAX_ANSWER_FRAME;
        daemon.set_max(max);
    }
});
