//! Reading frames through a buffer: one `read` of the socket usually brings a whole frame, often
//! several (a daemon's log lines and its verdict), where [`read_frame`](crate::read_frame) makes
//! two reads per frame. Every read is a syscall, and on a login's path those add up.
//!
//! The buffer is allocated once, as large as the largest frame it may hold, and never grows:
//! a vector that grew would leave the bytes it held (an answer, a pass) in a freed allocation
//! that nobody wipes. A peer can't make it allocate more than that, whatever it sends.

use crate::{body_len, ProtoError, Secret};
use std::io::Read;
use std::vec::Vec;
use zeroize::{Zeroize, Zeroizing};

/// How much one read asks for at most (answers are short; a longer frame is read on in more
/// reads).
const CHUNK: usize = 8 * 1024;

/// A frame reader for one connection. What it buffers may hold answers: it is wiped as it is
/// consumed and when dropped.
pub struct FrameReader {
    /// Allocated once; its length is as far as reads have ever filled it (what must be wiped),
    /// which spares a wipe of the whole capacity (64 KiB in the module) at every frame.
    buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// The longest frame body taken now (at most what the buffer was sized for).
    max: usize,
}

impl FrameReader {
    /// A reader of frames of at most `max` bytes (the body, without its length prefix); its
    /// buffer is allocated here, once.
    pub fn new(max: usize) -> FrameReader {
        FrameReader {
            buf: Vec::with_capacity(4 + max),
            start: 0,
            end: 0,
            max,
        }
    }

    /// Lowers (or raises, up to the size the buffer was made for) the longest frame taken
    /// from now on: the daemon takes a long first frame, then only short answers.
    pub fn set_max(&mut self, max: usize) {
        self.max = max.min(self.buf.capacity() - 4);
    }

    /// The next frame's body, read from `r` as far as needed (the length is checked against
    /// the reader's maximum before the body is waited for). Timeouts are `r`'s.
    pub fn read(&mut self, r: &mut impl Read) -> Result<Secret, ProtoError> {
        loop {
            if let Some(frame) = self.take()? {
                return Ok(frame);
            }
            self.fill(r)?;
        }
    }

    /// A whole frame from the buffer, if there is one.
    fn take(&mut self) -> Result<Option<Secret>, ProtoError> {
        let unread = &self.buf[self.start..self.end];
        let Some(len) = unread.get(..4) else {
            return Ok(None);
        };
        let n = body_len([len[0], len[1], len[2], len[3]], self.max)
            .map_err(|len| ProtoError::TooLong { len, max: self.max })?;
        let Some(body) = unread.get(4..4 + n) else {
            return Ok(None);
        };
        let frame = Zeroizing::new(body.to_vec());
        self.start += 4 + n;
        if self.start == self.end {
            self.buf[..self.end].zeroize();
            self.start = 0;
            self.end = 0;
        }
        Ok(Some(frame))
    }

    /// Reads what the socket has (at least one byte, or the error: end of stream mid-frame is
    /// `UnexpectedEof`, as `read_exact` gives), into the buffer's spare room only.
    fn fill(&mut self, r: &mut impl Read) -> Result<(), ProtoError> {
        if self.start > 0 {
            // Move the unread part to the front; what was consumed is overwritten or wiped.
            let (start, end) = (self.start, self.end);
            self.buf.copy_within(start..end, 0);
            self.buf[end - start..end].zeroize();
            self.end = end - start;
            self.start = 0;
        }
        // Unread bytes here are less than one whole frame of at most `max` (else `take` had
        // found it), so there is room; the buffer never grows past its capacity.
        let room = (self.buf.capacity() - self.end).min(CHUNK);
        if room == 0 {
            return Err(ProtoError::Garbage("a frame longer than the buffer"));
        }
        let want = self.end + room;
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let got = loop {
            match r.read(&mut self.buf[self.end..want]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match got {
            Ok(0) => Err(ProtoError::Io(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => {
                // Outside `start..end` the buffer holds zeros only.
                self.buf[self.end + n..want].zeroize();
                self.end += n;
                Ok(())
            }
            Err(e) => Err(ProtoError::Io(e)),
        }
    }
}

impl Drop for FrameReader {
    fn drop(&mut self) {
        // Only what reads filled (the length): the rest of the allocation was never written.
        // (`Vec::zeroize` would wipe the whole capacity, 64 KiB in the module.)
        self.buf.as_mut_slice().zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{read_frame, Reply, Request, Verdict, MAX_ANSWER, MAX_FRAME};
    use std::vec;

    /// A reader that gives at most `step` bytes per read.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
        reads: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.reads += 1;
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn frames() -> Vec<u8> {
        let mut all = Vec::new();
        all.extend_from_slice(&Reply::Info("one".into()).encode());
        all.extend_from_slice(&Reply::Error("x".repeat(20_000)).encode()); // longer than a chunk
        all.extend_from_slice(&Reply::Verdict(Verdict::AuthErr).encode());
        all
    }

    #[test]
    fn gives_the_frames_read_frame_gives_in_fewer_reads() {
        let all = frames();
        let mut expected = Vec::new();
        let mut plain = &all[..];
        while !plain.is_empty() {
            expected.push(read_frame(&mut plain).unwrap().to_vec());
        }
        for step in [1, 3, 4, 5, 100, 1 << 20] {
            let mut src = Trickle {
                data: &all,
                step,
                reads: 0,
            };
            let mut fr = FrameReader::new(MAX_FRAME);
            let got: Vec<Vec<u8>> = (0..3)
                .map(|_| fr.read(&mut src).unwrap().to_vec())
                .collect();
            assert_eq!(got, expected, "step {step}");
            if step == 1 << 20 {
                // One read for the first frame (and the start of the second), three for the
                // 20 KB one, none more for the verdict already buffered.
                assert!(src.reads <= 4, "{} reads", src.reads);
            }
            assert!(
                matches!(fr.read(&mut src), Err(ProtoError::Io(_))),
                "end of stream"
            );
        }
    }

    #[test]
    fn a_length_beyond_max_frame_is_refused_before_its_body_is_read() {
        let mut data = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        data.push(0);
        let mut fr = FrameReader::new(MAX_FRAME);
        assert!(matches!(
            fr.read(&mut &data[..]),
            Err(ProtoError::TooLong { .. })
        ));
    }

    /// An answer longer than one read's chunk is read into the buffer made at the start: no
    /// reallocation leaves a copy of it behind, and a longer one than the reader takes is
    /// refused by its length alone.
    #[test]
    fn the_buffer_never_grows_and_a_long_answer_is_refused_by_its_length() {
        let mut fr = FrameReader::new(16 * 1024);
        let at_start = fr.buf.as_ptr();
        let answer = Request::Answer(Some(Zeroizing::new(vec![b'7'; 12 * 1024]))).encode();
        let mut src = Trickle {
            data: &answer,
            step: 5000,
            reads: 0,
        };
        let body = fr.read(&mut src).unwrap();
        assert_eq!(body.len(), answer.len() - 4);
        assert_eq!(fr.buf.as_ptr(), at_start, "the buffer was reallocated");
        // Everything the reads filled is wiped once the frame is taken.
        assert!(fr.buf.len() >= answer.len(), "{}", fr.buf.len());
        assert!(fr.buf.iter().all(|&b| b == 0), "what was read is wiped");
        fr.set_max(4 * 1024);
        let long = Request::Answer(Some(Zeroizing::new(vec![b'7'; MAX_ANSWER + 100]))).encode();
        let e = fr.read(&mut &long[..]).unwrap_err();
        assert!(matches!(e, ProtoError::TooLong { max: 4096, .. }), "{e}");
    }

    #[test]
    fn a_stream_cut_mid_frame_is_an_error() {
        let all = Reply::Info("cut".into()).encode();
        let mut fr = FrameReader::new(MAX_FRAME);
        let e = fr.read(&mut &all[..all.len() - 1]).unwrap_err();
        assert!(
            matches!(e, ProtoError::Io(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof),
            "{e}"
        );
    }
}
