//! Raw OS calls the engine needs and the standard library lacks. With `pam/ffi.rs`, the only
//! `unsafe` in tessera; each call has its SAFETY note.

use std::ffi::{CStr, CString};

/// The account name NSS gives for `name` (`getpwnam_r`'s `pw_name`): the canonical spelling,
/// which differs from the name typed where NSS matches loosely (SSSD and AD are
/// case-insensitive, and may take `user@domain`). `None`: no such account, or a lookup error
/// (which must look the same: an unknown user).
pub fn account_name(name: &str) -> Option<String> {
    let c_name = CString::new(name).ok()?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `passwd` is plain old data that getpwnam_r fills in; all-zero is a valid
        // value of it (null pointers, zero ids).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `c_name` is NUL-terminated; `pwd`, `buf` (with its true length) and `result`
        // are valid for writes for the duration of the call, which is all getpwnam_r needs.
        let rc = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success `pw_name` points to a NUL-terminated string inside `buf`, which
        // is alive and unchanged here.
        let canonical = unsafe { CStr::from_ptr(pwd.pw_name) };
        return canonical.to_str().ok().map(str::to_string);
    }
}

/// The effective user id of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_an_account_and_odd_names_are_not() {
        assert_eq!(account_name("root").as_deref(), Some("root"));
        assert_eq!(account_name("no-such-account-tessera"), None);
        assert_eq!(account_name("nul\0byte"), None);
        assert_eq!(account_name(""), None);
    }
}
