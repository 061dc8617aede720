//! The module's only `unsafe`: libpam, and the few libc calls a thin client needs (a socket,
//! a spawned daemon, a buffer). Built without std in the shipped module (see `lib.rs`), so
//! each wrapper hands the rest of the module safe values: slices, `Result`s with errno, and
//! owners that close, wipe and free on drop. (The daemon's raw OS calls are in
//! `tessera_engine::os::sys`.)

mod buf;
mod hooks;
mod pam;
mod sys;

pub use buf::Buf;
pub use pam::*;
pub use sys::{euid, spawn, strerror, uid, Child, Socket};
