//! The PAM shell: read the items, parse the arguments, call the engine, log, map the verdict
//! to a return code. No decision is taken here.

pub mod args;
mod conv;
pub mod ffi;

use tessera_engine::config::{Config, DEFAULT_PATH};
use tessera_engine::engine::{self, Login, SystemClock, Verdict};
use tessera_engine::error::Error;

use pam::constants::{PamFlag, PamResultCode, PAM_SILENT};
use pam::items::{AuthTok, RHost, Service, User};
use pam::module::{PamHandle, PamHooks};
use std::ffi::CStr;
use std::path::Path;

pub use conv::PamConversation;

pub struct TesseraPam;
pam::pam_hooks!(TesseraPam);

const LOG_ERR: i32 = 3;

impl PamHooks for TesseraPam {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        let args = match args::parse(args.iter().map(|a| a.to_bytes())) {
            Ok(a) => a,
            Err(e) => {
                ffi::syslog(pamh, LOG_ERR, &format!("refusing: {e}"));
                return PamResultCode::PAM_AUTHINFO_UNAVAIL;
            }
        };
        let cfg = match load_config(args.config.as_deref()) {
            Ok(c) => c,
            Err(e) => {
                ffi::syslog(pamh, LOG_ERR, &format!("refusing: {e}"));
                return PamResultCode::PAM_AUTHINFO_UNAVAIL;
            }
        };
        let user = match user_name(pamh) {
            Ok(u) => u,
            Err(code) => {
                ffi::syslog(pamh, LOG_ERR, "could not get the user name");
                return code;
            }
        };
        let login = Login {
            service: item_string::<Service>(pamh),
            rhost: item_string::<RHost>(pamh),
            user,
            authtok: pamh
                .get_item::<AuthTok>()
                .ok()
                .flatten()
                .map(|t| tessera_engine::crypto::secret(t.as_bytes())),
        };
        let outcome = {
            let conv = pamh.get_item::<pam::conv::Conv>().ok().flatten();
            let mut conv = PamConversation::new(conv, flags & PAM_SILENT != 0);
            engine::authenticate(&cfg, &args.options, &login, &mut conv, &SystemClock)
        };
        for e in &outcome.events {
            ffi::syslog(pamh, i32::from(e.priority()), &e.log_line());
        }
        if let Verdict::Unavailable(e) = &outcome.verdict {
            if outcome.events.is_empty() {
                ffi::syslog(pamh, LOG_ERR, &format!("unavailable: {e}"));
            }
        }
        pam_code(&outcome.verdict)
    }

    fn sm_setcred(_: &mut PamHandle, _: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }

    fn acct_mgmt(_: &mut PamHandle, _: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }
}

/// The one place where verdicts become PAM return codes.
pub fn pam_code(v: &Verdict) -> PamResultCode {
    match v {
        Verdict::Accept { .. } | Verdict::PassOnNoToken => PamResultCode::PAM_SUCCESS,
        Verdict::Reject { .. } => PamResultCode::PAM_AUTH_ERR,
        Verdict::Locked { .. } => PamResultCode::PAM_MAXTRIES,
        Verdict::NoToken => PamResultCode::PAM_IGNORE,
        Verdict::Unavailable(_) => PamResultCode::PAM_AUTHINFO_UNAVAIL,
        Verdict::ConversationFailed(_) => PamResultCode::PAM_CONV_ERR,
    }
}

/// Loads the config named on the PAM line (or the default), refusing a link, or one that
/// group or others can write or that sits in a directory they can write. The text is read
/// from the descriptor that was checked, never from the path again.
pub fn load_config(path: Option<&Path>) -> Result<Config, Error> {
    Config::load(path.unwrap_or(Path::new(DEFAULT_PATH)))
}

/// The user name, raw bytes made into a string; bytes that are not UTF-8 become U+FFFD, which
/// no account has, so such a login is treated as an unknown user (also when the name was typed
/// at libpam's own user prompt).
fn user_name(pamh: &mut PamHandle) -> Result<String, PamResultCode> {
    if let Ok(Some(u)) = pamh.get_item::<User>() {
        return Ok(String::from_utf8_lossy(u.to_bytes()).into_owned());
    }
    match ffi::user_bytes(pamh) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(code) => Err(PamResultCode::try_from(code).unwrap_or(PamResultCode::PAM_SYSTEM_ERR)),
    }
}

fn item_string<'a, T: pam::items::Item<'a> + std::ops::Deref<Target = &'a CStr>>(
    pamh: &'a PamHandle,
) -> String {
    match pamh.get_item::<T>() {
        Ok(Some(v)) => String::from_utf8_lossy(v.to_bytes()).into_owned(),
        _ => String::new(),
    }
}
