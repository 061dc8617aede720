//! `tessera check USER`: the LinOTP test page in a terminal. The login goes through the same
//! [`authenticate`] as the PAM module, with a terminal conversation (prompts on stderr,
//! answers from the terminal with echo off, or one line each from a piped stdin). The outcome is
//! written to the audit table by the engine and to syslog (authpriv) here, in the module's format.

use super::input::Terminal;
use super::{CliResult, Failure};
use crate::args::CheckArgs;
use tessera_engine::auth::{Login, Options, SystemClock, Verdict};
use tessera_engine::config::Config;
use tessera_engine::error::Error;
use tessera_engine::login::{authenticate, OneLogin};

/// A verdict line nobody reads any more (stdout closed) leaves the verdict's exit code as it is.
fn shown(printed: CliResult<()>) -> CliResult<()> {
    match printed {
        Err(Failure::OutputClosed) => Ok(()),
        other => other,
    }
}

pub fn run(cfg: &Config, a: &CheckArgs) -> CliResult<()> {
    let login = Login {
        service: a.service.clone(),
        rhost: a.rhost.clone(),
        user: a.user.clone(),
        authtok: None,
        tty: String::new(),
        ruser: String::new(),
        // Whoever runs the command: the failures of `tessera check` are counted on its uid.
        caller: tessera_engine::os::sys::uid(),
        uid: tessera_engine::os::sys::uid(),
    };
    let outcome = authenticate(
        &OneLogin,
        cfg,
        &Options::default(),
        &login,
        &mut Terminal::default(),
        &SystemClock,
    );
    tessera_engine::syslog::send("tessera", &outcome.events);
    match outcome.verdict {
        Verdict::Accept { serial } => outln!("ACCEPT (serial {serial})"),
        Verdict::PassOnNoToken => outln!("ACCEPT (no token, pass_on_no_token)"),
        Verdict::Reject { reason } => {
            shown(outln!("REJECT: {reason}"))?;
            Err(Failure::Reported)
        }
        // The host runs the enrollment a registration code starts; never seen here.
        Verdict::Enroll { .. } => {
            shown(outln!("REJECT: the enrollment did not run"))?;
            Err(Failure::Reported)
        }
        Verdict::Locked { serial } => {
            shown(outln!(
                "LOCKED: token {serial} is locked by its fail counter (tessera token reset)"
            ))?;
            Err(Failure::Reported)
        }
        Verdict::SourceLocked { source, .. } => {
            shown(outln!(
                "LOCKED: too many failures from {source} (tessera token reset clears it)"
            ))?;
            Err(Failure::Reported)
        }
        Verdict::ClassLocked { class, .. } => {
            shown(outln!(
                "LOCKED: too many failures from {class} sources for this user (tessera token \
                 reset clears it)"
            ))?;
            Err(Failure::Reported)
        }
        Verdict::Skipped { reason } => {
            shown(outln!("IGNORE: {reason}"))?;
            Err(Failure::Reported)
        }
        Verdict::NoToken => {
            shown(outln!("IGNORE: no token"))?;
            Err(Failure::Reported)
        }
        Verdict::Unavailable(e) => Err(Failure::Error(Error::invalid(format!("unavailable: {e}")))),
        Verdict::ConversationFailed(m) => Err(Failure::Error(Error::conversation(m))),
    }
}
