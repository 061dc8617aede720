//! One error type for the whole crate. (A verdict's PAM code is the module's `pam_code`: an
//! error reaches it as `Verdict::Unavailable`.)

use std::fmt;
use std::path::{Path, PathBuf};

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
    /// An error of one of the kinds above that an I/O or SQLite error caused, kept whole as the
    /// [`source`](std::error::Error::source) (as ripgrep's `ignore::Error::WithPath` keeps
    /// the path and the error apart) instead of flattened into a string. It displays as the
    /// string variants do: `store: /var/lib/tessera/store.db: Permission denied (os error 13)`.
    /// Boxed: `Result<T>` stays as small as with the string variants.
    Caused(Box<Caused>),
}

/// The kind of an [`Error`], whichever variant carries it: match on
/// [`Error::kind`] rather than on the string variants, which miss a [`Error::Caused`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Config,
    Store,
    Key,
    Permissions,
    Conversation,
    Remote,
    Delivery,
    Invalid,
}

impl Kind {
    /// What the messages of this kind start with.
    fn prefix(self) -> &'static str {
        match self {
            Kind::Config => "config: ",
            Kind::Store => "store: ",
            Kind::Key => "key: ",
            Kind::Permissions => "permissions: ",
            Kind::Conversation => "conversation: ",
            Kind::Remote => "remote: ",
            Kind::Delivery => "delivery: ",
            Kind::Invalid => "",
        }
    }
}

/// The parts of an [`Error::Caused`]; displayed as `{kind}{what} {path}: {cause}{hint}`.
#[derive(Debug)]
pub struct Caused {
    kind: Kind,
    /// What the path is, where the message says so (`[email] password_file`), else empty.
    what: String,
    path: Option<PathBuf>,
    cause: Cause,
    /// Said after the cause: what to do about it (` (run `tessera init`)`), else empty.
    hint: String,
}

/// The underlying error of an [`Error::Caused`].
#[derive(Debug)]
pub enum Cause {
    Io(std::io::Error),
    Sqlite(rusqlite::Error),
}

impl Error {
    /// `{path}: {e}` as an error of `kind`, with `e` kept as the source.
    pub fn io(kind: Kind, path: &Path, e: std::io::Error) -> Error {
        Error::caused(kind, Some(path), Cause::Io(e))
    }

    /// `{path}: {describe_sqlite(e)}` as a store error, with `e` kept as the source.
    pub fn sqlite(path: &Path, e: rusqlite::Error) -> Error {
        Error::caused(Kind::Store, Some(path), Cause::Sqlite(e))
    }

    fn caused(kind: Kind, path: Option<&Path>, cause: Cause) -> Error {
        Error::Caused(Box::new(Caused {
            kind,
            what: String::new(),
            path: path.map(Path::to_path_buf),
            cause,
            hint: String::new(),
        }))
    }

    /// Says what the path of the error is: `[email] password_file /etc/…: …`. On a string
    /// variant it is put in front of the message.
    pub fn what(self, what: impl Into<String>) -> Error {
        let what = what.into();
        match self {
            Error::Caused(mut c) => {
                c.what = what;
                Error::Caused(c)
            }
            other => other.map_message(|m| format!("{what} {m}")),
        }
    }

    /// Adds a hint after the message, such as ` (run `tessera init`)` (with its leading space).
    pub fn hint(self, hint: impl Into<String>) -> Error {
        let hint = hint.into();
        match self {
            Error::Caused(mut c) => {
                c.hint.push_str(&hint);
                Error::Caused(c)
            }
            other => other.map_message(|m| m + &hint),
        }
    }

    /// The same error as another kind (a store helper's failure reported as the key's), with
    /// its message and cause kept.
    pub fn as_kind(self, kind: Kind) -> Error {
        match self {
            Error::Caused(mut c) => {
                c.kind = kind;
                Error::Caused(c)
            }
            other => match other.into_message() {
                Ok(m) => Error::from_message(kind, m),
                Err(other) => other,
            },
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Error::Config(_) => Kind::Config,
            Error::Store(_) => Kind::Store,
            Error::Key(_) => Kind::Key,
            Error::Permissions(_) => Kind::Permissions,
            Error::Conversation(_) => Kind::Conversation,
            Error::Remote(_) => Kind::Remote,
            Error::Delivery(_) => Kind::Delivery,
            Error::Invalid(_) => Kind::Invalid,
            Error::Caused(c) => c.kind,
        }
    }

    /// A failure of the store's files that can pass without anyone touching tessera: a
    /// read-only file system, an I/O error, a full disk or quota, a file that could not be
    /// opened (SQLite's READONLY, IOERR, FULL and CANTOPEN, or the same errno from a sync).
    /// A connection opened meanwhile may stay broken after the cause is gone (SQLite opens a
    /// file it can't write read-only, for good), so a host that keeps connections opens them
    /// afresh after one. BUSY is not one: it is contention between writers.
    pub fn can_pass(&self) -> bool {
        use rusqlite::ErrorCode as C;
        let Error::Caused(c) = self else {
            return false;
        };
        match &c.cause {
            Cause::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                C::ReadOnly | C::SystemIoFailure | C::DiskFull | C::CannotOpen
            ),
            Cause::Sqlite(_) => false,
            Cause::Io(e) => matches!(
                e.raw_os_error(),
                Some(libc::EROFS | libc::EIO | libc::ENOSPC | libc::EDQUOT)
            ),
        }
    }

    /// The path the error is about, where it was built with one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::Caused(c) => c.path.as_deref(),
            _ => None,
        }
    }

    fn from_message(kind: Kind, m: String) -> Error {
        match kind {
            Kind::Config => Error::Config(m),
            Kind::Store => Error::Store(m),
            Kind::Key => Error::Key(m),
            Kind::Permissions => Error::Permissions(m),
            Kind::Conversation => Error::Conversation(m),
            Kind::Remote => Error::Remote(m),
            Kind::Delivery => Error::Delivery(m),
            Kind::Invalid => Error::Invalid(m),
        }
    }

    /// The message of a string variant; a [`Error::Caused`] is given back.
    fn into_message(self) -> std::result::Result<String, Error> {
        match self {
            Error::Config(m)
            | Error::Store(m)
            | Error::Key(m)
            | Error::Permissions(m)
            | Error::Conversation(m)
            | Error::Remote(m)
            | Error::Delivery(m)
            | Error::Invalid(m) => Ok(m),
            caused @ Error::Caused(_) => Err(caused),
        }
    }

    fn map_message(self, f: impl FnOnce(String) -> String) -> Error {
        let kind = self.kind();
        match self.into_message() {
            Ok(m) => Error::from_message(kind, f(m)),
            Err(caused) => caused,
        }
    }
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
            Error::Caused(c) => {
                f.write_str(c.kind.prefix())?;
                if !c.what.is_empty() {
                    write!(f, "{} ", c.what)?;
                }
                if let Some(p) = &c.path {
                    write!(f, "{}: ", p.display())?;
                }
                match &c.cause {
                    Cause::Io(e) => write!(f, "{e}")?,
                    Cause::Sqlite(e) => f.write_str(&describe_sqlite(e))?,
                }
                f.write_str(&c.hint)
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Caused(c) => match &c.cause {
                Cause::Io(e) => Some(e),
                Cause::Sqlite(e) => Some(e),
            },
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::caused(Kind::Store, None, Cause::Sqlite(e))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::io;

    fn not_found() -> io::Error {
        io::Error::from_raw_os_error(libc::ENOENT)
    }

    #[test]
    fn an_io_error_is_kept_as_the_source_and_displays_as_before() {
        let path = Path::new("/var/lib/tessera/store.db");
        let e = Error::io(Kind::Store, path, not_found());
        // The text the string variant gave: `Error::Store(format!("{}: {e}", path.display()))`.
        let before = Error::Store(format!("{}: {}", path.display(), not_found()));
        assert_eq!(e.to_string(), before.to_string());
        assert_eq!(
            e.to_string(),
            "store: /var/lib/tessera/store.db: No such file or directory (os error 2)"
        );
        let source = e.source().expect("the io::Error is the source");
        let io = source.downcast_ref::<io::Error>().unwrap();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        assert_eq!(e.kind(), Kind::Store);
        assert_eq!(e.path(), Some(path));
        assert!(before.source().is_none());
    }

    #[test]
    fn what_and_hint_go_where_the_old_messages_had_them() {
        let path = Path::new("/etc/tessera/pw");
        let e = Error::io(Kind::Config, path, not_found()).what("[email] password_file");
        assert_eq!(
            e.to_string(),
            format!(
                "config: [email] password_file /etc/tessera/pw: {}",
                not_found()
            )
        );
        let e = Error::io(Kind::Key, path, not_found()).hint(" (run `tessera init`)");
        assert_eq!(
            e.to_string(),
            format!("key: /etc/tessera/pw: {} (run `tessera init`)", not_found())
        );
        assert!(e.source().is_some());
        // On a string variant the same words land in the message.
        let e = Error::Store("x".into()).hint(" (y)").what("w");
        assert_eq!(e.to_string(), "store: w x (y)");
    }

    #[test]
    fn as_kind_keeps_message_and_cause() {
        let path = Path::new("/etc/tessera/key");
        let e = Error::io(Kind::Store, path, not_found()).as_kind(Kind::Key);
        assert_eq!(e.kind(), Kind::Key);
        assert_eq!(
            e.to_string(),
            format!("key: /etc/tessera/key: {}", not_found())
        );
        assert!(e.source().is_some());
        let e = Error::Store("m".into()).as_kind(Kind::Key);
        assert!(matches!(&e, Error::Key(m) if m == "m"), "{e}");
    }

    #[test]
    fn a_sqlite_error_is_kept_as_the_source_with_its_described_text() {
        let failure = || {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                Some("database is locked".into()),
            )
        };
        let e = Error::from(failure());
        assert_eq!(
            e.to_string(),
            format!("store: {}", describe_sqlite(&failure()))
        );
        assert_eq!(e.to_string(), "store: database is locked (DatabaseBusy)");
        assert!(e.source().unwrap().is::<rusqlite::Error>());
        assert_eq!(e.kind(), Kind::Store);
        let e = Error::sqlite(Path::new("/s.db"), failure());
        assert_eq!(
            e.to_string(),
            "store: /s.db: database is locked (DatabaseBusy)"
        );
        assert!(e.source().is_some());
    }

    #[test]
    fn failures_that_can_pass_and_busy_which_is_none() {
        let sqlite = |code| {
            Error::from(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        use rusqlite::ffi;
        for code in [
            ffi::SQLITE_READONLY,
            ffi::SQLITE_IOERR,
            ffi::SQLITE_IOERR_WRITE,
            ffi::SQLITE_FULL,
            ffi::SQLITE_CANTOPEN,
        ] {
            assert!(sqlite(code).can_pass(), "{code}");
        }
        for code in [
            ffi::SQLITE_BUSY,
            ffi::SQLITE_CORRUPT,
            ffi::SQLITE_CONSTRAINT,
        ] {
            assert!(!sqlite(code).can_pass(), "{code}");
        }
        let io = |errno| {
            Error::io(
                Kind::Store,
                Path::new("/s.db-wal"),
                io::Error::from_raw_os_error(errno),
            )
        };
        assert!(
            io(libc::EROFS).can_pass() && io(libc::ENOSPC).can_pass() && io(libc::EIO).can_pass()
        );
        assert!(!io(libc::ENOENT).can_pass());
        assert!(!Error::Store("disk I/O error".into()).can_pass());
    }
}
