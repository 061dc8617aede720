//! Readers of the token files other OTP systems write, for `tessera import`: each turns a file's
//! text into [`Imported`] tokens (key, parameters and the state that keeps used codes used), or
//! a one-line [`ImportError`] naming the line or element at fault. Nothing here touches the
//! store: the command enrolls what a reader returns, or only lists it (`--dry-run`).
//!
//! Every reader takes outside input and has a fuzz target (`fuzz/fuzz_targets/import.rs`).
// The only `unsafe` of tessera is the PAM module's FFI (`src/ffi/`); system calls go through nix.
#![forbid(unsafe_code)]

use tessera_engine::crypto::Secret;
use tessera_engine::tokens::Algorithm;

pub mod google_authenticator;
pub mod oath;
pub mod privacyidea;
pub mod pskc;

/// One token read from a file.
pub struct Imported {
    /// The serial the file gives the token, if any (the command draws one otherwise).
    pub serial: Option<String>,
    /// The owner as the file names it, if it does (the command's `--user` otherwise).
    pub user: Option<String>,
    pub realm: Option<String>,
    pub kind: Kind,
    /// A PIN the file holds in clear (a pam_oath users file), to be hashed on enrolment.
    pub pin: Option<Secret>,
    /// Where in the file the token is, for the summary and errors: "line 3", "KeyPackage 2".
    pub origin: String,
    /// What the file says that tessera does not carry over, in a few words each.
    pub notes: Vec<String>,
}

/// The token and its state, as tessera's token types hold them.
pub enum Kind {
    /// `counter`: the next counter a code is accepted for (codes below it are used).
    Hotp {
        key: Secret,
        digits: u32,
        algorithm: Algorithm,
        counter: u64,
    },
    /// `next_step`: the first time step a code is accepted for (codes of earlier steps are
    /// used, or too old); `drift`: steps the token's clock is off.
    Totp {
        key: Secret,
        digits: u32,
        algorithm: Algorithm,
        period: u64,
        drift: i64,
        next_step: u64,
    },
    /// Single-use recovery codes (google-authenticator's scratch codes, privacyIDEA's TANs).
    Tan { codes: Vec<Secret> },
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Hotp { .. } => "hotp",
            Kind::Totp { .. } => "totp",
            Kind::Tan { .. } => "tan",
        }
    }
}

/// Why a file could not be read: one line, naming the place in the file. Never holds a key,
/// PIN or code from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError(pub String);

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ImportError {}

pub type Result<T> = std::result::Result<T, ImportError>;

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(ImportError(msg.into()))
}

/// Digits of an OTP a file may ask for (tessera's HOTP and TOTP take 6 or 8).
pub(crate) fn check_digits(digits: u32, at: &str) -> Result<u32> {
    if matches!(digits, 6 | 8) {
        Ok(digits)
    } else {
        err(format!("{at}: {digits}-digit codes; tessera takes 6 or 8"))
    }
}

/// An OTP key as tessera accepts one: 1 to 128 bytes.
pub(crate) fn check_key(key: Secret, at: &str) -> Result<Secret> {
    if key.is_empty() || key.len() > MAX_KEY {
        return err(format!("{at}: the key must be 1 to {MAX_KEY} bytes"));
    }
    Ok(key)
}

/// Longest OTP key taken (the command's `token add --key` limit).
pub const MAX_KEY: usize = 128;
