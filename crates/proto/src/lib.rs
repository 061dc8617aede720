//! The wire protocol between `pam_tessera.so` and `tesserad`: one Unix stream connection per
//! `pam_authenticate`, on which the daemon leads the dialogue. The module sends the login
//! ([`Request::Authenticate`]); the daemon answers with prompts, information lines, log lines
//! and at last a [`Verdict`]; the module answers each prompt ([`Request::Answer`]).
//!
//! Framing: a frame is a 4-byte big-endian length, then that many bytes: one tag byte and the
//! fields of the message. A field is a byte (`u8`, `bool`), a 4-byte big-endian `u32`, or a
//! byte string (a `u32` length, then the bytes). Nothing else: no serde, no allocation beyond
//! the frame, so that the module stays small and a peer that talks garbage costs one bounded
//! read and a clear error. Frames that carry passes or answers live in wiped buffers.
//!
//! The layout is in `wire` (no allocator, no std: the module's side); the owned messages the
//! daemon and the tests use (`owned`, feature `std`, on by default) are built on it.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
// Without the `std` feature only the layout is built: the module links this and nothing of std.
#![no_std]

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "std")]
mod buffered;
#[cfg(feature = "std")]
mod owned;
mod wire;

#[cfg(feature = "std")]
pub use buffered::FrameReader;
#[cfg(feature = "std")]
pub use owned::*;
pub use wire::*;

/// The protocol version the module announces; a daemon that speaks another one refuses.
/// (3: the login carries PAM_RUSER; a full daemon may answer [`Reply::Busy`]. 4: and the
/// calling process's real uid.)
pub const VERSION: u32 = 4;

/// The largest first frame (the login) the daemon reads. The socket is open to every local
/// user, and this is read before the daemon knows whether the caller may ask at all: it must
/// cost little. The module keeps its logins below it (see [`MAX_FIELD`], [`MAX_ANSWER`]).
pub const MAX_LOGIN_FRAME: usize = 16 * 1024;

/// The largest answer frame the daemon reads.
pub const MAX_ANSWER_FRAME: usize = 4 * 1024;

/// The largest frame the module reads from the daemon (prompts, information lines such as a
/// QR code, log lines).
pub const MAX_REPLY_FRAME: usize = 64 * 1024;

/// The largest frame any reader here takes ([`read_frame`]).
pub const MAX_FRAME: usize = MAX_REPLY_FRAME;

/// The longest answer (or PAM_AUTHTOK) the module sends: its frame then fits
/// [`MAX_ANSWER_FRAME`]. The engine refuses passes longer than 1 KiB before any work; the cap
/// only bounds memory and the socket.
pub const MAX_ANSWER: usize = MAX_ANSWER_FRAME - 16;

/// The longest text field of a login the module sends (service, rhost, ruser, tty, prompt,
/// config path, user name): seven of them and a pass stay below [`MAX_LOGIN_FRAME`].
pub const MAX_FIELD: usize = 1024;
