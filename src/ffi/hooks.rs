//! The service functions libpam calls, and the shipped build's panic handler.

use super::{Pam, PamHandle, PAM_IGNORE, PAM_SUCCESS};
use core::ffi::{c_char, c_int, CStr};

/// libpam's arguments from the PAM line, as C strings borrowed for the hook's call.
///
/// # Safety
/// `argv` holds `argc` pointers, each NULL or a NUL-terminated string that outlives `'a`.
unsafe fn args<'a>(argc: c_int, argv: *const *const c_char) -> impl Iterator<Item = &'a CStr> {
    let n = if argv.is_null() {
        0
    } else {
        argc.max(0) as usize
    };
    (0..n).filter_map(move |i| {
        // SAFETY: `i < argc`, inside the array, as the caller promises.
        let p = unsafe { *argv.add(i) };
        // SAFETY: a non-NULL entry is a NUL-terminated string that outlives the call.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) })
    })
}

// The six service functions libpam looks up (and nothing else is exported: the version script
// rustc writes for a cdylib keeps only these). Each runs its body under `crate::guard`.

/// # Safety
/// Called by libpam with a live handle and its argv.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_authenticate(
    pamh: *mut PamHandle,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    crate::guard(|| {
        // SAFETY: libpam's handle and argv for this call, used only within it.
        let (pam, args) = unsafe { (Pam::new(pamh), args(argc, argv)) };
        crate::login_from_pam(&pam, args, flags)
    })
}

/// A service function that reads nothing and always says the same.
macro_rules! constant_hook {
    ($name:ident, $code:expr) => {
        /// # Safety
        /// Called by libpam; nothing is read.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            _: *mut PamHandle,
            _: c_int,
            _: c_int,
            _: *const *const c_char,
        ) -> c_int {
            $code
        }
    };
}

// Credentials and accounts are other modules' business; tessera only authenticates.
constant_hook!(pam_sm_setcred, PAM_SUCCESS);
constant_hook!(pam_sm_acct_mgmt, PAM_SUCCESS);
constant_hook!(pam_sm_chauthtok, PAM_IGNORE);
constant_hook!(pam_sm_open_session, PAM_IGNORE);
constant_hook!(pam_sm_close_session, PAM_IGNORE);

/// The shipped build's panic handler: a call to a function that no library defines, so that a
/// path to a panic left in the module fails the link (`-Wl,--no-undefined`, see build.rs)
/// instead of ever aborting sshd or a screen locker.
#[cfg(all(panic = "abort", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    extern "C" {
        fn pam_tessera_has_a_path_to_a_panic__see_src_lib_rs() -> !;
    }
    // SAFETY: never runs: the module does not link while this call is reachable.
    unsafe { pam_tessera_has_a_path_to_a_panic__see_src_lib_rs() }
}
