//! pam_tessera: the PAM module, a thin client of `tesserad`. It reads the PAM items and the
//! module arguments, carries the conversation between libpam and the daemon, logs what the
//! daemon says, and returns its verdict. No decision is taken here, and nothing of the engine
//! (SQLite, TLS, Argon2, TOML) is linked in.
//!
//! sshd, sudo and su load the module for every login, so what it costs to map counts. The
//! shipped build (`cargo module`, the `module` profile: panic = "abort") is `no_std`, links only
//! core, libc and libpam, and is small for that. No panic may cross into the caller: in that
//! build the panic handler calls a function that exists nowhere, so the module links only if
//! the optimiser removed every path to a panic (nothing here indexes, unwraps or allocates
//! through Rust's allocator). Builds that unwind (the tests' debug build) have std and catch
//! any panic at the hooks instead, as PAM_ABORT.
#![cfg_attr(panic = "abort", no_std)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented,
    clippy::indexing_slicing
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod args;
mod client;
mod conv;
mod ffi;
pub mod login;

use core::ffi::{c_int, CStr};
use ffi::{Item, Pam};
use tessera_proto::{LoginFields, Verdict, MAX_ANSWER, MAX_FIELD, VERSION};

/// syslog priorities of the module's own lines.
pub const LOG_ERR: u8 = 3;

/// One `pam_authenticate`: the arguments, the items, then the dialogue with the daemon.
fn login_from_pam<'h>(pam: &Pam<'h>, argv: impl Iterator<Item = &'h CStr>, flags: c_int) -> c_int {
    let silent = flags & ffi::PAM_SILENT != 0;
    let mut conv = conv::PamConversation::new(pam, silent);
    let args = match args::parse(argv) {
        Ok(a) => a,
        Err(e) => {
            let [a, b, c] = e.pieces();
            pam.syslog(LOG_ERR, &[b"refusing: ", a, b, c]);
            conv.error(client::BAD_PAM_LINE);
            return ffi::PAM_AUTHINFO_UNAVAIL;
        }
    };
    let user = match pam.user() {
        Ok(u) => u,
        Err(code) => {
            pam.syslog(LOG_ERR, &[b"could not get the user name"]);
            return code;
        }
    };
    let mut cut = [0u8; MAX_FIELD];
    let (Some(service), Some(rhost), Some(tty), Some(ruser)) = (
        login::Text::new(pam.item(Item::Service)),
        login::Text::new(pam.item(Item::RHost)),
        login::Text::new(pam.item(Item::Tty)),
        login::Text::new(pam.item(Item::RUser)),
    ) else {
        pam.syslog(LOG_ERR, &[b"out of memory"]);
        return ffi::PAM_BUF_ERR;
    };
    let mut login_flags = args.flags.clone();
    login_flags.silent = silent;
    let login = LoginFields {
        version: VERSION,
        service: service.as_str(),
        rhost: rhost.as_str(),
        user: login::user_field(user, &mut cut),
        // An earlier module's pass over the protocol's cap is cut (the engine refuses passes
        // over 1 KiB anyway).
        authtok: pam
            .item(Item::AuthTok)
            .map(|t| t.get(..MAX_ANSWER).unwrap_or(t)),
        flags: &login_flags,
        prompt: args.prompt.map(|p| login::capped(p, MAX_FIELD)),
        config: args
            .config
            .and_then(|c| c.to_str().ok())
            .map(|c| login::capped(c, MAX_FIELD)),
        tty: tty.as_str(),
        ruser: ruser.as_str(),
        uid: ffi::uid(),
    };
    pam_code(client::ask_daemon(pam, &args, &login, &mut conv))
}

/// The one place where verdicts become PAM return codes.
fn pam_code(v: Verdict) -> c_int {
    match v {
        Verdict::Success => ffi::PAM_SUCCESS,
        Verdict::AuthErr => ffi::PAM_AUTH_ERR,
        Verdict::MaxTries => ffi::PAM_MAXTRIES,
        Verdict::AuthinfoUnavail => ffi::PAM_AUTHINFO_UNAVAIL,
        Verdict::Ignore => ffi::PAM_IGNORE,
        Verdict::ConvErr => ffi::PAM_CONV_ERR,
    }
}

/// Runs a hook's body. With unwinding (debug and test builds) a panic becomes PAM_ABORT here
/// instead of unwinding into libpam's caller.
#[cfg(panic = "unwind")]
fn guard(body: impl FnOnce() -> c_int) -> c_int {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(ffi::PAM_ABORT)
}

/// Runs a hook's body. Without unwinding there is no panic to catch: see the handler below.
#[cfg(not(panic = "unwind"))]
fn guard(body: impl FnOnce() -> c_int) -> c_int {
    body()
}
