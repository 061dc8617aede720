//! The module's only `unsafe`: libpam calls that pam-bindings does not wrap, and two libc calls.
//! (The daemon's raw OS calls are in `tessera_engine::sys`.)

use pam::module::PamHandle;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
    fn pam_get_user(pamh: *mut PamHandle, user: *mut *const c_char, prompt: *const c_char)
        -> c_int;
}

/// The user name as libpam has it, asking through the conversation when no name was given
/// (`pam_get_user`), as raw bytes: pam-bindings' `get_user` fails on bytes that are not UTF-8
/// (PAM_SYSTEM_ERR, no prompt for the pass, no audit row), and such a name must fail like
/// any unknown user instead. `Err` is libpam's own code (e.g. PAM_CONV_ERR).
pub fn user_bytes(pamh: &mut PamHandle) -> Result<Vec<u8>, c_int> {
    let mut ptr: *const c_char = std::ptr::null();
    // SAFETY: `pamh` is the live handle libpam passed to this hook; `ptr` is a valid out
    // pointer; a NULL prompt makes libpam use its own (or PAM_USER_PROMPT).
    let rc = unsafe { pam_get_user(pamh, &mut ptr, std::ptr::null()) };
    if rc != 0 {
        return Err(rc);
    }
    if ptr.is_null() {
        return Err(4); // PAM_SYSTEM_ERR
    }
    // SAFETY: on success libpam points `ptr` at its NUL-terminated copy of the name, which
    // lives as long as the handle; it is copied out before this hook returns.
    Ok(unsafe { CStr::from_ptr(ptr) }.to_bytes().to_vec())
}

/// Logs one line through libpam's `pam_syslog` (facility authpriv, prefixed with the module
/// and service name). NUL bytes in `line` are replaced so the line is never cut or dropped.
pub fn syslog(pamh: &PamHandle, priority: c_int, line: &str) {
    let Ok(text) = CString::new(line.replace('\0', "\\0")) else {
        return;
    };
    // SAFETY: `pamh` is the live handle libpam passed to this hook; the format is a literal
    // "%s" with exactly one NUL-terminated string argument that outlives the call.
    unsafe { pam_syslog(pamh, priority, c"%s".as_ptr(), text.as_ptr()) }
}

/// `send(2)` with MSG_NOSIGNAL: a peer that closed gives EPIPE, never SIGPIPE.
pub fn send_nosignal(sock: &std::os::unix::net::UnixStream, buf: &[u8]) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: the descriptor is the open socket `sock` borrows for the call; `buf` is a
        // valid slice of `buf.len()` readable bytes.
        let n = unsafe {
            libc::send(
                sock.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The effective user id of this process: root callers may spawn a daemon of their own.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
