//! One error type for the whole crate, and its mapping to PAM codes in one place.

use std::fmt;

/// Why something could not be done. Each variant's message names the file, key or serial it is
/// about, and never carries a PIN, an OTP or a key.
#[derive(Debug)]
pub enum Error {
    /// The configuration file is missing, unreadable or invalid.
    Config(String),
    /// The store is missing, corrupt, locked or on a full disk.
    Store(String),
    /// The secret-encryption key is missing, unreadable or wrong.
    Key(String),
    /// A file has modes that let group or others change it (or read a key).
    Permissions(String),
    /// The conversation with the user failed (no conversation, NULL answer, error return).
    Conversation(String),
    /// The remote validation server could not be used.
    Remote(String),
    /// An OTP could not be sent out of band (SMTP relay, sendmail command, SMS gateway).
    Delivery(String),
    /// A request of an admin that makes no sense (unknown serial, bad option value).
    Invalid(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "config: {m}"),
            Error::Store(m) => write!(f, "store: {m}"),
            Error::Key(m) => write!(f, "key: {m}"),
            Error::Permissions(m) => write!(f, "permissions: {m}"),
            Error::Conversation(m) => write!(f, "conversation: {m}"),
            Error::Remote(m) => write!(f, "remote: {m}"),
            Error::Delivery(m) => write!(f, "delivery: {m}"),
            Error::Invalid(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Store(describe_sqlite(&e))
    }
}

/// SQLite's own words are good ("database is locked", "file is not a database", "database or
/// disk is full"); only the code name is added.
pub fn describe_sqlite(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(err, Some(msg)) => format!("{msg} ({:?})", err.code),
        rusqlite::Error::SqliteFailure(err, None) => format!("{err}"),
        other => other.to_string(),
    }
}

pub type Result<T> = std::result::Result<T, Error>;
