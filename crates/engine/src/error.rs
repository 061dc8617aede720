//! One error type for the whole crate, of one shape: the [`Kind`] that callers match on, the
//! words, and the I/O or SQLite error that caused it kept as the source. (A verdict's PAM code
//! is the module's `pam_code`: an error reaches it as `Verdict::Unavailable`.)

use std::fmt;
use std::path::{Path, PathBuf};

/// Why something could not be done: an error of a [`Kind`], made from words
/// ([`Error::config`], [`Error::store`], …) or from the I/O or SQLite error that caused it
/// ([`Error::io`], [`Error::sqlite`]). A cause is kept whole as the
/// [`source`](std::error::Error::source) (as ripgrep's `ignore::Error::WithPath` keeps the path
/// and the error apart) instead of flattened into a string. The message names the file, key or
/// serial it is about, and never carries a PIN, an OTP or a key. Match on [`Error::kind`].
///
/// Displayed as `{kind}{what} {path}: {words or cause}{hint}`, each part only where there is
/// one: `store: /var/lib/tessera/store.db: Permission denied (os error 13)`. Boxed:
/// `Result<()>` is one pointer wide.
#[derive(Debug)]
pub struct Error(Box<Inner>);

#[derive(Debug)]
struct Inner {
    kind: Kind,
    /// The words of an error made from words; empty for one made from a cause.
    message: String,
    /// What the path is, where the message says so (`[email] password_file`), else empty.
    what: String,
    path: Option<PathBuf>,
    source: Option<Cause>,
    /// Said after the rest: what to do about it (` (run `tessera init`)`), else empty.
    hint: String,
}

/// The error that caused an [`Error`].
#[derive(Debug)]
enum Cause {
    Io(std::io::Error),
    Sqlite(rusqlite::Error),
}

/// The kind of an [`Error`]: what callers match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The configuration file is missing, unreadable or invalid.
    Config,
    /// The store is missing, corrupt, locked or on a full disk.
    Store,
    /// The secret-encryption key is missing, unreadable or wrong.
    Key,
    /// A file has modes that let group or others change it (or read a key).
    Permissions,
    /// The conversation with the user failed (no conversation, NULL answer, error return).
    Conversation,
    /// The remote validation server could not be used.
    Remote,
    /// An OTP could not be sent out of band (SMTP relay, sendmail command, SMS gateway).
    Delivery,
    /// A request of an admin that makes no sense (unknown serial, bad option value).
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

impl Error {
    /// An error of `kind` in words.
    pub fn new(kind: Kind, message: impl Into<String>) -> Error {
        Error::build(kind, message.into(), None, None)
    }

    /// A [`Kind::Config`] error: `config: {message}`.
    pub fn config(message: impl Into<String>) -> Error {
        Error::new(Kind::Config, message)
    }

    /// A [`Kind::Store`] error: `store: {message}`.
    pub fn store(message: impl Into<String>) -> Error {
        Error::new(Kind::Store, message)
    }

    /// A [`Kind::Key`] error: `key: {message}`.
    pub fn key(message: impl Into<String>) -> Error {
        Error::new(Kind::Key, message)
    }

    /// A [`Kind::Permissions`] error: `permissions: {message}`.
    pub fn permissions(message: impl Into<String>) -> Error {
        Error::new(Kind::Permissions, message)
    }

    /// A [`Kind::Conversation`] error: `conversation: {message}`.
    pub fn conversation(message: impl Into<String>) -> Error {
        Error::new(Kind::Conversation, message)
    }

    /// A [`Kind::Remote`] error: `remote: {message}`.
    pub fn remote(message: impl Into<String>) -> Error {
        Error::new(Kind::Remote, message)
    }

    /// A [`Kind::Delivery`] error: `delivery: {message}`.
    pub fn delivery(message: impl Into<String>) -> Error {
        Error::new(Kind::Delivery, message)
    }

    /// A [`Kind::Invalid`] error: the message alone, without a prefix.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(Kind::Invalid, message)
    }

    /// `{path}: {e}` as an error of `kind`, with `e` kept as the source.
    pub fn io(kind: Kind, path: &Path, e: std::io::Error) -> Error {
        Error::build(kind, String::new(), Some(path), Some(Cause::Io(e)))
    }

    /// `{path}: {describe_sqlite(e)}` as a store error, with `e` kept as the source.
    pub fn sqlite(path: &Path, e: rusqlite::Error) -> Error {
        Error::build(
            Kind::Store,
            String::new(),
            Some(path),
            Some(Cause::Sqlite(e)),
        )
    }

    fn build(kind: Kind, message: String, path: Option<&Path>, source: Option<Cause>) -> Error {
        Error(Box::new(Inner {
            kind,
            message,
            what: String::new(),
            path: path.map(Path::to_path_buf),
            source,
            hint: String::new(),
        }))
    }

    /// Says what the path (or the message) is about: `[email] password_file /etc/…: …`. A
    /// second call replaces the first.
    pub fn what(mut self, what: impl Into<String>) -> Error {
        self.0.what = what.into();
        self
    }

    /// Adds a hint after the message, such as ` (run `tessera init`)` (with its leading space).
    pub fn hint(mut self, hint: impl Into<String>) -> Error {
        self.0.hint.push_str(&hint.into());
        self
    }

    /// The same error as another kind (a store helper's failure reported as the key's), with
    /// its message and cause kept.
    pub fn as_kind(mut self, kind: Kind) -> Error {
        self.0.kind = kind;
        self
    }

    pub fn kind(&self) -> Kind {
        self.0.kind
    }

    /// The words the error was made from, without its kind's prefix, `what` or hint (what a
    /// conversation's failure hands on); empty for an error made from a cause.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The same error with its words rewritten (an OTP a peer echoed scrubbed out of them).
    pub(crate) fn map_message(mut self, f: impl FnOnce(&str) -> String) -> Error {
        self.0.message = f(&self.0.message);
        self
    }

    /// A failure of the store's files that can pass without anyone touching tessera: a
    /// read-only file system, an I/O error, a full disk or quota, a file that could not be
    /// opened (SQLite's READONLY, IOERR, FULL and CANTOPEN, or the same errno from a sync).
    /// A connection opened meanwhile may stay broken after the cause is gone (SQLite opens a
    /// file it can't write read-only, for good), so a host that keeps connections opens them
    /// afresh after one. BUSY is not one: it is contention between writers.
    pub fn can_pass(&self) -> bool {
        use rusqlite::ErrorCode as C;
        match &self.0.source {
            Some(Cause::Sqlite(rusqlite::Error::SqliteFailure(e, _))) => matches!(
                e.code,
                C::ReadOnly | C::SystemIoFailure | C::DiskFull | C::CannotOpen
            ),
            Some(Cause::Io(e)) => matches!(
                e.raw_os_error(),
                Some(libc::EROFS | libc::EIO | libc::ENOSPC | libc::EDQUOT)
            ),
            Some(Cause::Sqlite(_)) | None => false,
        }
    }

    /// The path the error is about, where it was built with one.
    pub fn path(&self) -> Option<&Path> {
        self.0.path.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.0;
        f.write_str(e.kind.prefix())?;
        if !e.what.is_empty() {
            write!(f, "{} ", e.what)?;
        }
        if let Some(p) = &e.path {
            write!(f, "{}: ", p.display())?;
        }
        f.write_str(&e.message)?;
        match &e.source {
            Some(Cause::Io(c)) => write!(f, "{c}")?,
            Some(Cause::Sqlite(c)) => f.write_str(&describe_sqlite(c))?,
            None => {}
        }
        f.write_str(&e.hint)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0.source {
            Some(Cause::Io(e)) => Some(e),
            Some(Cause::Sqlite(e)) => Some(e),
            None => None,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::build(Kind::Store, String::new(), None, Some(Cause::Sqlite(e)))
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
    fn each_kind_has_its_prefix_and_an_error_is_one_pointer_wide() {
        for (e, kind, text) in [
            (Error::config("m"), Kind::Config, "config: m"),
            (Error::store("m"), Kind::Store, "store: m"),
            (Error::key("m"), Kind::Key, "key: m"),
            (Error::permissions("m"), Kind::Permissions, "permissions: m"),
            (
                Error::conversation("m"),
                Kind::Conversation,
                "conversation: m",
            ),
            (Error::remote("m"), Kind::Remote, "remote: m"),
            (Error::delivery("m"), Kind::Delivery, "delivery: m"),
            (Error::invalid("m"), Kind::Invalid, "m"),
            (Error::new(Kind::Remote, "m"), Kind::Remote, "remote: m"),
        ] {
            assert_eq!((e.kind(), e.to_string().as_str()), (kind, text));
            assert_eq!(e.message(), "m");
            assert!(e.source().is_none() && e.path().is_none());
        }
        assert_eq!(size_of::<Result<()>>(), size_of::<usize>());
    }

    #[test]
    fn an_io_error_is_kept_as_the_source_and_displays_as_before() {
        let path = Path::new("/var/lib/tessera/store.db");
        let e = Error::io(Kind::Store, path, not_found());
        // The text of the same words without the cause: `Error::store(format!("{}: {e}", …))`.
        let before = Error::store(format!("{}: {}", path.display(), not_found()));
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
        // On an error made from words they go around the words.
        let e = Error::store("x").hint(" (y)").what("w");
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
        let e = Error::store("m").as_kind(Kind::Key);
        assert!(e.kind() == Kind::Key && e.message() == "m", "{e}");
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
        assert!(!Error::store("disk I/O error").can_pass());
    }
}
