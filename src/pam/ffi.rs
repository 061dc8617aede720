//! libpam calls that pam-bindings does not wrap (the other half of the thin FFI layer is
//! `crate::sys`).

use pam::module::PamHandle;
use std::ffi::CString;
use std::os::raw::{c_char, c_int};

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
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

pub use crate::sys::euid;
