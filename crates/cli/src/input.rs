//! Reading PINs and passes. On a terminal the input is read with echo off (through `rpassword`,
//! which owns the termios calls, so no `unsafe` here); otherwise one line is read from stdin, so
//! scripts and tests can pipe answers in.

use super::{CliResult, Failure};
use std::io::{BufRead, IsTerminal, Read, Write};
use tessera_engine::auth::Conversation;
use tessera_engine::crypto::Secret;
use tessera_engine::enroll::{PinProblem, PinRule};
use tessera_engine::error::Error;
use zeroize::Zeroizing;

/// Longest line read; the engine refuses passes past 1024 bytes anyway.
const MAX_LINE: u64 = 4096;

pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Shows `prompt` on stderr and reads one answer. With `echo` false and a terminal on stdin, the
/// answer is not echoed. `Ok(None)` at end of input.
pub fn ask(prompt: &str, echo: bool) -> std::io::Result<Option<Secret>> {
    let mut err = std::io::stderr();
    if stdin_is_terminal() {
        err.write_all(prompt.as_bytes())?;
        err.flush()?;
        if !echo {
            let line = Zeroizing::new(rpassword::read_password()?);
            return Ok(Some(Zeroizing::new(line.as_bytes().to_vec())));
        }
    } else if !prompt.is_empty() {
        // Nobody types after it: one prompt per line keeps a log of the dialogue readable.
        writeln!(err, "{prompt}")?;
    }
    read_line()
}

/// One line of stdin without its line end; `None` at end of input.
pub fn read_line() -> std::io::Result<Option<Secret>> {
    let mut buf = Zeroizing::new(Vec::new());
    let n = std::io::stdin()
        .lock()
        .take(MAX_LINE)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(buf))
}

/// A new PIN given on the command line, or read from stdin with `--pin-stdin`; `None` if
/// neither. Refused unless `rule` takes it.
pub fn pin_from_args(
    pin: Option<&str>,
    pin_stdin: bool,
    rule: &PinRule,
) -> CliResult<Option<Secret>> {
    let pin = match (pin, pin_stdin) {
        (Some(p), _) => tessera_engine::crypto::secret(p.as_bytes()),
        (None, true) => {
            let prompt = if stdin_is_terminal() { "PIN: " } else { "" };
            ask(prompt, false)
                .map_err(|e| Failure::invalid(format!("reading the PIN from stdin: {e}")))?
                .ok_or_else(|| Failure::invalid("no PIN on stdin"))?
        }
        (None, false) => return Ok(None),
    };
    check_pin(&pin, rule)?;
    Ok(Some(pin))
}

/// Asks for a new PIN: twice with echo off on a terminal, else one line of stdin.
pub fn new_pin_interactive(rule: &PinRule) -> CliResult<Secret> {
    let read_err = |e: std::io::Error| Failure::invalid(format!("reading the PIN: {e}"));
    if !stdin_is_terminal() {
        let pin = read_line()
            .map_err(read_err)?
            .ok_or_else(|| Failure::invalid("no PIN on stdin"))?;
        check_pin(&pin, rule)?;
        return Ok(pin);
    }
    let first = ask("New PIN: ", false)
        .map_err(read_err)?
        .ok_or_else(|| Failure::invalid("no PIN given"))?;
    check_pin(&first, rule)?;
    let again = ask("Repeat PIN: ", false)
        .map_err(read_err)?
        .ok_or_else(|| Failure::invalid("no PIN given"))?;
    if !tessera_engine::crypto::ct_eq(&first, &again) {
        return Err(Failure::invalid("the two PINs differ; nothing changed"));
    }
    Ok(first)
}

/// A PIN must be something a user can type into a PAM prompt, and what the config's PIN rule
/// asks for.
fn check_pin(pin: &[u8], rule: &PinRule) -> CliResult<()> {
    match rule.problem(pin) {
        None => Ok(()),
        Some(why @ PinProblem::Empty) => Err(Failure::usage(format!(
            "{why} (leave the PIN out for a token without one)"
        ))),
        Some(why @ PinProblem::AgainstRule(_)) => Err(Failure::usage(format!(
            "{why} (the config's [auth] pin_min_length and pin_contents)"
        ))),
        Some(why) => Err(Failure::usage(why.to_string())),
    }
}

/// The conversation of a terminal: prompts and error lines on stderr, answers from the terminal
/// (echo off where asked) or one line each from a piped stdin. Information lines go to stderr
/// too, so that stdout holds only the verdict (`tessera check`), or to stdout where they are
/// the output (`tessera enroll`: the URI and the QR code).
#[derive(Default)]
pub struct Terminal {
    pub info_on_stdout: bool,
}

impl Conversation for Terminal {
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Option<Secret>, Error> {
        match ask(text, echo) {
            Ok(Some(answer)) => Ok(Some(answer)),
            Ok(None) => Err(Error::conversation("no answer: end of input")),
            Err(e) => Err(Error::conversation(e.to_string())),
        }
    }

    fn info(&mut self, text: &str) -> Result<(), Error> {
        let written = if self.info_on_stdout {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{text}").and_then(|()| out.flush())
        } else {
            writeln!(std::io::stderr(), "{text}")
        };
        written.map_err(|e| Error::conversation(e.to_string()))
    }

    fn error(&mut self, text: &str) -> Result<(), Error> {
        writeln!(std::io::stderr(), "{text}").map_err(|e| Error::conversation(e.to_string()))
    }
}
