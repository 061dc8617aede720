//! pam_tessera: the PAM module, a thin client of `tesserad`. It reads the PAM items and the
//! module arguments, carries the conversation between libpam and the daemon, logs what the
//! daemon says, and returns its verdict. No decision is taken here, and nothing of the engine
//! (SQLite, TLS, Argon2, TOML) is linked in.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod args;
mod client;
mod conv;
mod ffi;

use pam::constants::{PamFlag, PamResultCode, PAM_SILENT};
use pam::items::{AuthTok, RHost, RUser, Service, Tty, User};
use pam::module::{PamHandle, PamHooks};
use std::ffi::CStr;
use tessera_proto::Verdict;

pub use conv::PamConversation;

pub struct TesseraPam;
pam::pam_hooks!(TesseraPam);

impl PamHooks for TesseraPam {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        let args = match args::parse(args.iter().map(|a| a.to_bytes())) {
            Ok(a) => a,
            Err(e) => {
                ffi::syslog(pamh, i32::from(client::LOG_ERR), &format!("refusing: {e}"));
                return PamResultCode::PAM_AUTHINFO_UNAVAIL;
            }
        };
        let user = match user_name(pamh) {
            Ok(u) => u,
            Err(code) => {
                ffi::syslog(
                    pamh,
                    i32::from(client::LOG_ERR),
                    "could not get the user name",
                );
                return code;
            }
        };
        let authtok = pamh.get_item::<AuthTok>().ok().flatten().map(|t| {
            let b = t.as_bytes();
            // An earlier module's pass over the protocol's cap is cut (the engine refuses
            // passes over 1 KiB anyway), before it is copied.
            zeroize::Zeroizing::new(b[..b.len().min(tessera_proto::MAX_ANSWER)].to_vec())
        });
        let items = client::Items {
            service: item_string::<Service>(pamh),
            rhost: item_string::<RHost>(pamh),
            tty: item_string::<Tty>(pamh),
            ruser: item_string::<RUser>(pamh),
        };
        let login = client::login(&args, items, user, authtok, flags & PAM_SILENT != 0);
        let mut lines: Vec<(u8, String)> = Vec::new();
        let verdict = {
            let conv = pamh.get_item::<pam::conv::Conv>().ok().flatten();
            let mut conv = PamConversation::new(conv, flags & PAM_SILENT != 0);
            let mut log = |prio: u8, line: &str| lines.push((prio, line.to_string()));
            client::authenticate(&args, &login, &mut conv, &mut log)
        };
        for (prio, line) in &lines {
            ffi::syslog(pamh, i32::from(*prio), line);
        }
        pam_code(verdict)
    }

    fn sm_setcred(_: &mut PamHandle, _: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }

    fn acct_mgmt(_: &mut PamHandle, _: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }
}

/// The one place where verdicts become PAM return codes.
pub fn pam_code(v: Verdict) -> PamResultCode {
    match v {
        Verdict::Success => PamResultCode::PAM_SUCCESS,
        Verdict::AuthErr => PamResultCode::PAM_AUTH_ERR,
        Verdict::MaxTries => PamResultCode::PAM_MAXTRIES,
        Verdict::AuthinfoUnavail => PamResultCode::PAM_AUTHINFO_UNAVAIL,
        Verdict::Ignore => PamResultCode::PAM_IGNORE,
        Verdict::ConvErr => PamResultCode::PAM_CONV_ERR,
    }
}

/// The user name as raw bytes (the daemon treats bytes that are not UTF-8 as an unknown user),
/// asked through the conversation when the application gave none.
fn user_name(pamh: &mut PamHandle) -> Result<Vec<u8>, PamResultCode> {
    if let Ok(Some(u)) = pamh.get_item::<User>() {
        return Ok(u.to_bytes().to_vec());
    }
    ffi::user_bytes(pamh)
        .map_err(|code| PamResultCode::try_from(code).unwrap_or(PamResultCode::PAM_SYSTEM_ERR))
}

fn item_string<'a, T: pam::items::Item<'a> + std::ops::Deref<Target = &'a CStr>>(
    pamh: &'a PamHandle,
) -> String {
    match pamh.get_item::<T>() {
        Ok(Some(v)) => String::from_utf8_lossy(v.to_bytes()).into_owned(),
        _ => String::new(),
    }
}
