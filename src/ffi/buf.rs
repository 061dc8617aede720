//! A fixed buffer on the C heap (the module has no Rust allocator).

use super::Socket;
use core::ffi::c_int;
use core::ptr::{self, NonNull};
use tessera_proto::Sink;
use zeroize::Zeroize;

/// A byte buffer of a fixed capacity on the C heap, wiped and freed when dropped: the module's
/// frames (which hold passes) and its log lines. It never grows, so it never leaves a copy.
pub struct Buf {
    ptr: NonNull<u8>,
    cap: usize,
    len: usize,
}

impl Buf {
    /// `None` when malloc fails.
    pub fn with_capacity(cap: usize) -> Option<Buf> {
        // SAFETY: malloc of at least one byte; the result is checked for NULL.
        let p = unsafe { libc::malloc(cap.max(1)) };
        Some(Buf {
            ptr: NonNull::new(p.cast())?,
            cap,
            len: 0,
        })
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `len <= cap` bytes at `ptr` were written by `put` or `fill`.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// Appends exactly `len` bytes received from `sock` (within the room left): `Ok(false)`
    /// if the peer closed first, errno (EAGAIN: the timeout passed) if the receive failed.
    pub fn recv_exact(&mut self, sock: &Socket, len: usize) -> Result<bool, c_int> {
        let room = len.min(self.cap - self.len);
        // SAFETY: `len + room <= cap`, so `room` bytes after `len` are inside the allocation.
        let got = unsafe { sock.recv_exact(self.ptr.as_ptr().add(self.len), room) }?;
        self.len += got.min(room);
        Ok(got == len)
    }

    /// Wipes what it holds and makes it empty.
    pub fn clear(&mut self) {
        // SAFETY: the `len` bytes written so far.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }.zeroize();
        self.len = 0;
    }
}

impl Sink for Buf {
    /// Copies as much as fits (the module sizes each buffer for what it writes).
    fn put(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.cap - self.len);
        // SAFETY: `n` bytes fit after `len` in the allocation, and `bytes` is a distinct
        // live slice of at least `n` bytes.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.as_ptr().add(self.len), n) };
        self.len += n;
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        self.clear();
        // SAFETY: allocated by malloc in `with_capacity`, freed once.
        unsafe { libc::free(self.ptr.as_ptr().cast()) };
    }
}
