//! libpam: the handle's items, the user, syslog, the conversation.

use super::Buf;
use core::ffi::{c_char, c_int, c_void, CStr};
use core::marker::PhantomData;
use core::ptr;
use tessera_proto::Sink;

/// libpam's handle (opaque).
pub enum PamHandle {}

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = unsafe extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int;

#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
extern "C" {
    fn pam_get_item(pamh: *const PamHandle, item_type: c_int, item: *mut *const c_void) -> c_int;
    fn pam_get_user(pamh: *mut PamHandle, user: *mut *const c_char, prompt: *const c_char)
        -> c_int;
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
}

/// libpam's codes (`_pam_types.h`).
pub const PAM_SUCCESS: c_int = 0;
pub const PAM_SYSTEM_ERR: c_int = 4;
pub const PAM_BUF_ERR: c_int = 5;
pub const PAM_AUTH_ERR: c_int = 7;
pub const PAM_AUTHINFO_UNAVAIL: c_int = 9;
pub const PAM_MAXTRIES: c_int = 11;
pub const PAM_CONV_ERR: c_int = 19;
pub const PAM_IGNORE: c_int = 25;
#[cfg(panic = "unwind")]
pub const PAM_ABORT: c_int = 26;
/// The application's PAM_SILENT flag.
pub const PAM_SILENT: c_int = 0x8000;

/// The PAM items the module reads (`_pam_types.h`).
#[derive(Clone, Copy)]
pub enum Item {
    Service = 1,
    Tty = 3,
    RHost = 4,
    AuthTok = 6,
    RUser = 8,
}
const PAM_CONV: c_int = 5;

/// The live handle of one hook call: everything read through it is borrowed for the call.
pub struct Pam<'h> {
    h: *mut PamHandle,
    _call: PhantomData<&'h mut PamHandle>,
}

impl<'h> Pam<'h> {
    /// # Safety
    /// `h` is the handle libpam passed to the hook now running, and the `Pam` does not outlive
    /// that call.
    pub unsafe fn new(h: *mut PamHandle) -> Pam<'h> {
        Pam {
            h,
            _call: PhantomData,
        }
    }

    /// A string item's bytes, `None` when the application set none.
    pub fn item(&self, item: Item) -> Option<&'h [u8]> {
        let mut p: *const c_void = ptr::null();
        // SAFETY: a live handle and a valid out pointer; libpam only writes `p`.
        let rc = unsafe { pam_get_item(self.h, item as c_int, &mut p) };
        if rc != PAM_SUCCESS || p.is_null() {
            return None;
        }
        // SAFETY: string items are NUL-terminated strings libpam owns; they stay as they are
        // during this hook (only this module could change them, and it does not).
        Some(unsafe { CStr::from_ptr(p.cast()) }.to_bytes())
    }

    /// The user name as raw bytes, asked through the conversation when the application gave
    /// none (`pam_get_user`). `Err` is libpam's own code (e.g. PAM_CONV_ERR). Names that are
    /// not UTF-8 are passed on: the daemon fails them like any unknown user.
    pub fn user(&self) -> Result<&'h [u8], c_int> {
        let mut p: *const c_char = ptr::null();
        // SAFETY: a live handle, a valid out pointer; a NULL prompt makes libpam use its own.
        let rc = unsafe { pam_get_user(self.h, &mut p, ptr::null()) };
        if rc != PAM_SUCCESS {
            return Err(rc);
        }
        if p.is_null() {
            return Err(PAM_SYSTEM_ERR);
        }
        // SAFETY: on success libpam points `p` at its NUL-terminated copy of the name, which
        // lives as long as the handle's PAM_USER item is not changed (not during this hook).
        Ok(unsafe { CStr::from_ptr(p) }.to_bytes())
    }

    /// Logs one line through `pam_syslog` (facility authpriv, prefixed with the module and
    /// service name). The pieces are joined; a NUL byte in them is written as `\0`, so that a
    /// line is never cut. Nothing is logged if the line can't be allocated.
    pub fn syslog(&self, priority: u8, pieces: &[&[u8]]) {
        let len: usize = pieces.iter().map(|p| p.len()).sum();
        let Some(mut line) = Buf::with_capacity(len.saturating_mul(2).saturating_add(1)) else {
            return;
        };
        for piece in pieces {
            for part in piece.split(|&b| b == 0).enumerate() {
                if part.0 > 0 {
                    line.put(b"\\0");
                }
                line.put(part.1);
            }
        }
        line.put(&[0]);
        // SAFETY: a live handle; the format is a literal "%s" with one NUL-terminated string
        // (`line` ends with the NUL just put, and has no other) that outlives the call.
        unsafe {
            pam_syslog(
                self.h,
                c_int::from(priority),
                c"%s".as_ptr(),
                line.as_slice().as_ptr(),
            )
        }
    }

    /// Sends one message through the application's conversation. `answer` gets the user's
    /// reply (`None` for a NULL one) while libpam's copy still exists; that copy is wiped and
    /// freed afterwards. `Err` is libpam's code (the conversation failed, or there is none).
    pub fn converse<R>(
        &self,
        style: c_int,
        text: &[u8],
        answer: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R, c_int> {
        let mut conv: *const c_void = ptr::null();
        // SAFETY: a live handle and a valid out pointer.
        let rc = unsafe { pam_get_item(self.h, PAM_CONV, &mut conv) };
        if rc != PAM_SUCCESS || conv.is_null() {
            return Err(PAM_CONV_ERR);
        }
        // SAFETY: PAM_CONV is a `struct pam_conv` that libpam owns for the handle's life.
        let conv = unsafe { &*conv.cast::<PamConv>() };
        let Some(f) = conv.conv else {
            return Err(PAM_CONV_ERR);
        };
        // The text as a C string; a NUL inside would only cut it short.
        let mut c_text = Buf::with_capacity(text.len().saturating_add(1)).ok_or(PAM_CONV_ERR)?;
        c_text.put(text);
        c_text.put(&[0]);
        let msg = PamMessage {
            msg_style: style,
            msg: c_text.as_slice().as_ptr().cast(),
        };
        let mut msgs: [*const PamMessage; 1] = [&msg];
        let mut resp: *mut PamResponse = ptr::null_mut();
        // SAFETY: the application's conversation function, called as libpam specifies: one
        // message, a valid out pointer for the responses, the application's own data.
        let rc = unsafe { f(1, msgs.as_mut_ptr(), &mut resp, conv.appdata_ptr) };
        if rc != PAM_SUCCESS {
            // SAFETY: on failure a conforming application returns no responses, but some
            // do; what is there was allocated with malloc as for a success.
            unsafe { free_responses(resp) };
            return Err(rc);
        }
        let text = if resp.is_null() {
            None
        } else {
            // SAFETY: a non-NULL `resp` is the application's array of one response.
            let r = unsafe { (*resp).resp };
            // SAFETY: a non-NULL `resp` is a NUL-terminated string allocated with malloc.
            (!r.is_null()).then(|| unsafe { CStr::from_ptr(r) }.to_bytes())
        };
        let out = answer(text);
        // SAFETY: `resp` (if any) and its string are the application's malloc'd response,
        // not used after this.
        unsafe { free_responses(resp) };
        Ok(out)
    }
}

/// Wipes and frees the response array of a one-message conversation.
///
/// # Safety
/// `resp` is NULL or a malloc'd `pam_response` whose `resp` is NULL or a malloc'd C string.
unsafe fn free_responses(resp: *mut PamResponse) {
    if resp.is_null() {
        return;
    }
    let r = (*resp).resp;
    if !r.is_null() {
        let n = libc::strlen(r);
        libc::explicit_bzero(r.cast(), n);
        libc::free(r.cast());
    }
    libc::free(resp.cast());
}
