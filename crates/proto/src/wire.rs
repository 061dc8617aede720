//! The frame layout itself, without an allocator: borrowed fields in, borrowed fields out.
//! The module is built without std (see `src/lib.rs` of the root package) and writes its
//! frames and reads the daemon's through these; the owned messages of `owned.rs` are built on
//! the same functions, so the layout is written once.
//!
//! Nothing here can panic: lengths are checked with `get`, never by indexing, so that the
//! module's build proves at link time that no panic path is left.

/// Why a body is not a message of this protocol. Never holds the frame's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Garbage(pub &'static str);

pub(crate) const T_AUTHENTICATE: u8 = 1;
pub(crate) const T_ANSWER: u8 = 2;
pub(crate) const T_CONV_FAILED: u8 = 3;
// The requests of `tessera doctor` and `tessera metrics`: the module never sends them.
#[cfg(feature = "std")]
pub(crate) const T_STATUS: u8 = 4;
#[cfg(feature = "std")]
pub(crate) const T_METRICS: u8 = 5;
// `tessera enroll`.
#[cfg(feature = "std")]
pub(crate) const T_ENROLL: u8 = 6;
pub(crate) const T_PROMPT: u8 = 16;
pub(crate) const T_INFO: u8 = 17;
pub(crate) const T_ERROR: u8 = 18;
pub(crate) const T_WAIT: u8 = 19;
pub(crate) const T_LOG: u8 = 20;
pub(crate) const T_VERDICT: u8 = 21;
pub(crate) const T_BUSY: u8 = 22;

/// The module arguments that change what the engine does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    pub use_first_pass: bool,
    pub try_first_pass: bool,
    pub nullok: bool,
    pub debug: bool,
    /// PAM_SILENT: informational messages are not shown.
    pub silent: bool,
}

/// The outcome of a login, as the module returns it to libpam.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Success,
    AuthErr,
    MaxTries,
    AuthinfoUnavail,
    Ignore,
    ConvErr,
}

impl Verdict {
    fn code(self) -> u8 {
        match self {
            Verdict::Success => 0,
            Verdict::AuthErr => 1,
            Verdict::MaxTries => 2,
            Verdict::AuthinfoUnavail => 3,
            Verdict::Ignore => 4,
            Verdict::ConvErr => 5,
        }
    }
    fn from_code(c: u8) -> Result<Verdict, Garbage> {
        Ok(match c {
            0 => Verdict::Success,
            1 => Verdict::AuthErr,
            2 => Verdict::MaxTries,
            3 => Verdict::AuthinfoUnavail,
            4 => Verdict::Ignore,
            5 => Verdict::ConvErr,
            _ => return Err(Garbage("an unknown verdict")),
        })
    }
}

/// Where a frame's bytes go: a buffer sized up front for the frame's [`LoginFields::frame_len`]
/// (or the like), so that a pass is never left behind in a buffer that grew.
pub trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

fn put_u32(s: &mut impl Sink, n: u32) {
    s.put(&n.to_be_bytes());
}

fn put_bytes(s: &mut impl Sink, b: &[u8]) {
    // Lengths above u32 never occur: every field is capped far below (MAX_ANSWER).
    let n = u32::try_from(b.len()).unwrap_or(u32::MAX);
    put_u32(s, n);
    s.put(b.get(..n as usize).unwrap_or(b));
}

pub(crate) fn put_opt(s: &mut impl Sink, b: Option<&[u8]>) {
    match b {
        None => s.put(&[0]),
        Some(b) => {
            s.put(&[1]);
            put_bytes(s, b);
        }
    }
}

/// The length prefix of a body of `body` bytes, and its tag.
pub(crate) fn put_head(s: &mut impl Sink, body: usize, tag: u8) {
    put_u32(s, u32::try_from(body).unwrap_or(u32::MAX));
    s.put(&[tag]);
}

/// The length of a byte-string field of `n` bytes.
const fn field(n: usize) -> usize {
    4 + n
}

pub(crate) fn opt_field(b: Option<&[u8]>) -> usize {
    1 + b.map_or(0, |b| field(b.len()))
}

/// The body length a frame's length prefix announces, if it is at most `max`; else `Err` with
/// that length (checked before anything of the body is read or allocated).
pub fn body_len(prefix: [u8; 4], max: usize) -> Result<usize, usize> {
    let n = u32::from_be_bytes(prefix) as usize;
    if n > max {
        Err(n)
    } else {
        Ok(n)
    }
}

/// One login, as borrowed fields: the module builds its frame straight from libpam's strings.
#[derive(Debug, Clone, Copy)]
pub struct LoginFields<'a> {
    pub version: u32,
    pub service: &'a str,
    pub rhost: &'a str,
    pub user: &'a [u8],
    pub authtok: Option<&'a [u8]>,
    pub flags: &'a Flags,
    pub prompt: Option<&'a str>,
    pub config: Option<&'a str>,
    pub tty: &'a str,
    pub ruser: &'a str,
    /// The real uid of the process that calls PAM (`getuid()`).
    pub uid: u32,
}

impl LoginFields<'_> {
    /// The whole frame's length, prefix included.
    pub fn frame_len(&self) -> usize {
        4 + 1
            + 4
            + field(self.service.len())
            + field(self.rhost.len())
            + field(self.user.len())
            + opt_field(self.authtok)
            + 5
            + opt_field(self.prompt.map(str::as_bytes))
            + opt_field(self.config.map(str::as_bytes))
            + field(self.tty.len())
            + field(self.ruser.len())
            + 4
    }

    /// Writes the whole frame ([`LoginFields::frame_len`] bytes).
    pub fn write(&self, s: &mut impl Sink) {
        put_head(s, self.frame_len() - 4, T_AUTHENTICATE);
        put_u32(s, self.version);
        put_bytes(s, self.service.as_bytes());
        put_bytes(s, self.rhost.as_bytes());
        put_bytes(s, self.user);
        put_opt(s, self.authtok);
        let f = self.flags;
        s.put(&[
            u8::from(f.use_first_pass),
            u8::from(f.try_first_pass),
            u8::from(f.nullok),
            u8::from(f.debug),
            u8::from(f.silent),
        ]);
        put_opt(s, self.prompt.map(str::as_bytes));
        put_opt(s, self.config.map(str::as_bytes));
        put_bytes(s, self.tty.as_bytes());
        put_bytes(s, self.ruser.as_bytes());
        put_u32(s, self.uid);
    }
}

/// The answer to a prompt (`None`: a NULL answer): the whole frame's length.
pub fn answer_frame_len(answer: Option<&[u8]>) -> usize {
    4 + 1 + opt_field(answer)
}

/// Writes an answer frame ([`answer_frame_len`] bytes).
pub fn write_answer(answer: Option<&[u8]>, s: &mut impl Sink) {
    put_head(s, answer_frame_len(answer) - 4, T_ANSWER);
    put_opt(s, answer);
}

/// The length of a frame that says the conversation failed.
pub const CONV_FAILED_FRAME_LEN: usize = 4 + 1 + 4;

/// Writes the frame that says the conversation failed with libpam's `code`.
pub fn write_conversation_failed(code: i32, s: &mut impl Sink) {
    put_head(s, CONV_FAILED_FRAME_LEN - 4, T_CONV_FAILED);
    put_u32(s, code as u32);
}

/// Daemon → module, borrowed from the frame's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyView<'a> {
    /// Ask the user; the module answers with an answer frame.
    Prompt { echo: bool, text: &'a str },
    /// A line of information (PAM_TEXT_INFO).
    Info(&'a str),
    /// An error line (PAM_ERROR_MSG).
    Error(&'a str),
    /// The next message may take up to this many seconds (push polling): the module waits that
    /// long instead of its `timeout=`.
    Wait(u32),
    /// A line for syslog, sent by the module through `pam_syslog` (authpriv, with the service).
    Log { priority: u8, line: &'a str },
    /// The end of the dialogue.
    Verdict(Verdict),
    /// The daemon serves as many logins as it takes (sent at once, before the login is read):
    /// a root caller's module serves this login with a daemon of its own (`tesserad --stdio`),
    /// any other caller fails with PAM_AUTHINFO_UNAVAIL.
    Busy,
}

impl<'a> ReplyView<'a> {
    /// Reads a frame's body (tag and fields, without the length prefix).
    pub fn decode(body: &'a [u8]) -> Result<ReplyView<'a>, Garbage> {
        let (tag, rest) = body.split_first().ok_or(Garbage("an empty frame"))?;
        let mut p = Parser { rest };
        let r = match *tag {
            T_PROMPT => ReplyView::Prompt {
                echo: p.bool()?,
                text: p.text()?,
            },
            T_INFO => ReplyView::Info(p.text()?),
            T_ERROR => ReplyView::Error(p.text()?),
            T_WAIT => ReplyView::Wait(p.u32()?),
            T_LOG => ReplyView::Log {
                priority: p.u8()?,
                line: p.text()?,
            },
            T_VERDICT => ReplyView::Verdict(Verdict::from_code(p.u8()?)?),
            T_BUSY => ReplyView::Busy,
            _ => return Err(Garbage("an unknown reply")),
        };
        p.end()?;
        Ok(r)
    }

    /// The whole frame's length, prefix included.
    pub fn frame_len(&self) -> usize {
        4 + 1
            + match self {
                ReplyView::Prompt { text, .. } => 1 + field(text.len()),
                ReplyView::Info(t) | ReplyView::Error(t) => field(t.len()),
                ReplyView::Wait(_) => 4,
                ReplyView::Log { line, .. } => 1 + field(line.len()),
                ReplyView::Verdict(_) => 1,
                ReplyView::Busy => 0,
            }
    }

    /// Writes the whole frame ([`ReplyView::frame_len`] bytes).
    pub fn write(&self, s: &mut impl Sink) {
        let body = self.frame_len() - 4;
        match self {
            ReplyView::Prompt { echo, text } => {
                put_head(s, body, T_PROMPT);
                s.put(&[u8::from(*echo)]);
                put_bytes(s, text.as_bytes());
            }
            ReplyView::Info(t) => {
                put_head(s, body, T_INFO);
                put_bytes(s, t.as_bytes());
            }
            ReplyView::Error(t) => {
                put_head(s, body, T_ERROR);
                put_bytes(s, t.as_bytes());
            }
            ReplyView::Wait(secs) => {
                put_head(s, body, T_WAIT);
                put_u32(s, *secs);
            }
            ReplyView::Log { priority, line } => {
                put_head(s, body, T_LOG);
                s.put(&[*priority]);
                put_bytes(s, line.as_bytes());
            }
            ReplyView::Verdict(v) => {
                put_head(s, body, T_VERDICT);
                s.put(&[v.code()]);
            }
            ReplyView::Busy => put_head(s, body, T_BUSY),
        }
    }
}

/// Reads the fields of a body in order.
pub(crate) struct Parser<'a> {
    pub(crate) rest: &'a [u8],
}

impl<'a> Parser<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Garbage> {
        if self.rest.len() < n {
            return Err(Garbage("a field runs past the end of the frame"));
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, Garbage> {
        match self.take(1)? {
            [b] => Ok(*b),
            _ => Err(Garbage("a field runs past the end of the frame")),
        }
    }
    pub(crate) fn bool(&mut self) -> Result<bool, Garbage> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Garbage("a flag that is neither 0 nor 1")),
        }
    }
    pub(crate) fn u32(&mut self) -> Result<u32, Garbage> {
        match self.take(4)? {
            [a, b, c, d] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => Err(Garbage("a field runs past the end of the frame")),
        }
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], Garbage> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub(crate) fn text(&mut self) -> Result<&'a str, Garbage> {
        core::str::from_utf8(self.bytes()?).map_err(|_| Garbage("a text field that is not UTF-8"))
    }
    /// An optional field: a flag, then the field when the flag is 1.
    #[cfg(feature = "std")]
    pub(crate) fn opt<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, Garbage>,
    ) -> Result<Option<T>, Garbage> {
        if self.bool()? {
            f(self).map(Some)
        } else {
            Ok(None)
        }
    }
    pub(crate) fn end(self) -> Result<(), Garbage> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Garbage("bytes after the last field"))
        }
    }
}
