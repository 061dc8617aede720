//! The wire protocol between `pam_tessera.so` and `tesserad`: one Unix stream connection per
//! `pam_authenticate`, on which the daemon leads the dialogue. The module sends the login
//! ([`Request::Authenticate`]); the daemon answers with prompts, information lines, log lines
//! and at last a [`Verdict`]; the module answers each prompt ([`Request::Answer`]).
//!
//! Framing: a frame is a 4-byte big-endian length, then that many bytes: one tag byte and the
//! fields of the message. A field is a byte (`u8`, `bool`), a 4-byte big-endian `u32`, or a
//! byte string (a `u32` length, then the bytes). Nothing else: no serde, no allocation beyond
//! the frame, so that the module stays small and a peer that talks garbage costs one bounded
//! read and a clear error. Frames that carry passes or answers live in wiped buffers.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod buffered;

pub use buffered::FrameReader;

use std::fmt;
use std::io::{Read, Write};
use zeroize::Zeroizing;

/// The protocol version the module announces; a daemon that speaks another one refuses.
/// (3: the login carries PAM_RUSER; a full daemon may answer [`Reply::Busy`].)
pub const VERSION: u32 = 3;

/// The largest first frame (the login) the daemon reads. The socket is open to every local
/// user, and this is read before the daemon knows whether the caller may ask at all: it must
/// cost little. The module keeps its logins below it (see [`MAX_FIELD`], [`MAX_ANSWER`]).
pub const MAX_LOGIN_FRAME: usize = 16 * 1024;

/// The largest answer frame the daemon reads.
pub const MAX_ANSWER_FRAME: usize = 4 * 1024;

/// The largest frame the module reads from the daemon (prompts, information lines such as a
/// QR code, log lines).
pub const MAX_REPLY_FRAME: usize = 64 * 1024;

/// The largest frame any reader here takes ([`read_frame`]).
pub const MAX_FRAME: usize = MAX_REPLY_FRAME;

/// The longest answer (or PAM_AUTHTOK) the module sends: its frame then fits
/// [`MAX_ANSWER_FRAME`]. The engine refuses passes longer than 1 KiB before any work; the cap
/// only bounds memory and the socket.
pub const MAX_ANSWER: usize = MAX_ANSWER_FRAME - 16;

/// The longest text field of a login the module sends (service, rhost, ruser, tty, prompt,
/// config path, user name): seven of them and a pass stay below [`MAX_LOGIN_FRAME`].
pub const MAX_FIELD: usize = 1024;

/// Bytes that are wiped when dropped.
pub type Secret = Zeroizing<Vec<u8>>;

/// Why a frame could not be read or understood. Never holds the frame's content.
#[derive(Debug)]
pub enum ProtoError {
    /// The socket failed or closed (a daemon that died, a timeout).
    Io(std::io::Error),
    /// A frame longer than the reader takes (`max`).
    TooLong { len: usize, max: usize },
    /// A frame that is not a message of this protocol.
    Garbage(&'static str),
    /// A login of another protocol version (a module and daemon of different releases).
    Version(u32),
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::Io(e) => write!(f, "{e}"),
            ProtoError::TooLong { len, max } => {
                write!(f, "a frame of {len} bytes (at most {max})")
            }
            ProtoError::Garbage(what) => write!(f, "not a tessera message: {what}"),
            ProtoError::Version(v) => write!(f, "a login of protocol version {v}, not {VERSION}"),
        }
    }
}

impl std::error::Error for ProtoError {}

impl From<std::io::Error> for ProtoError {
    fn from(e: std::io::Error) -> Self {
        ProtoError::Io(e)
    }
}

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

/// One login, as the module sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Login {
    pub version: u32,
    pub service: String,
    pub rhost: String,
    /// The PAM user as libpam has it: bytes, not always UTF-8.
    pub user: Vec<u8>,
    /// PAM_AUTHTOK of an earlier module, if any.
    pub authtok: Option<Secret>,
    pub flags: Flags,
    /// `prompt=` of the PAM line.
    pub prompt: Option<String>,
    /// `config=` of the PAM line: honoured for a root caller and by a daemon the module spawned
    /// for this login (`tesserad --stdio`); any other caller gets the daemon's own config.
    pub config: Option<String>,
    /// PAM_TTY (`[[policy]] tty`): "" when the application set none.
    pub tty: String,
    /// PAM_RUSER (the user who asks, for `su` and `sudo`): "" when the application set none.
    /// With PAM_TTY it names the source of a local login that failures are counted on.
    pub ruser: String,
}

/// Module → daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Authenticate(Login),
    /// The answer to the last [`Reply::Prompt`]; `None` is a NULL answer.
    Answer(Option<Secret>),
    /// The conversation failed (libpam's return code), or there was none.
    ConversationFailed(i32),
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

/// Daemon → module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Ask the user; the module answers with [`Request::Answer`].
    Prompt { echo: bool, text: String },
    /// A line of information (PAM_TEXT_INFO).
    Info(String),
    /// An error line (PAM_ERROR_MSG).
    Error(String),
    /// The next message may take up to this many seconds (push polling): the module waits that
    /// long instead of its `timeout=`.
    Wait(u32),
    /// A line for syslog, sent by the module through `pam_syslog` (authpriv, with the service).
    Log { priority: u8, line: String },
    /// The end of the dialogue.
    Verdict(Verdict),
    /// The daemon serves as many logins as it takes (sent at once, before the login is read):
    /// a root caller's module serves this login with a daemon of its own (`tesserad --stdio`),
    /// any other caller fails with PAM_AUTHINFO_UNAVAIL.
    Busy,
}

// ---- encoding ----

const T_AUTHENTICATE: u8 = 1;
const T_ANSWER: u8 = 2;
const T_CONV_FAILED: u8 = 3;
const T_PROMPT: u8 = 16;
const T_INFO: u8 = 17;
const T_ERROR: u8 = 18;
const T_WAIT: u8 = 19;
const T_LOG: u8 = 20;
const T_VERDICT: u8 = 21;
const T_BUSY: u8 = 22;

/// Builds one frame in a buffer sized up front: a buffer that grew would leave an unwiped copy
/// of the pass it already held.
struct Writer(Secret);

impl Writer {
    /// `fields` is the total length of the byte-string fields to come.
    fn new(tag: u8, fields: usize) -> Writer {
        let mut v = Zeroizing::new(Vec::with_capacity(64 + fields));
        v.extend_from_slice(&[0, 0, 0, 0, tag]);
        Writer(v)
    }
    fn u8(&mut self, b: u8) {
        self.0.push(b);
    }
    fn u32(&mut self, n: u32) {
        self.0.extend_from_slice(&n.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        // Lengths above u32 never occur: every field is capped far below (MAX_ANSWER).
        let n = u32::try_from(b.len()).unwrap_or(u32::MAX);
        self.u32(n);
        self.0.extend_from_slice(&b[..n as usize]);
    }
    fn opt(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.u8(0),
            Some(b) => {
                self.u8(1);
                self.bytes(b);
            }
        }
    }
    fn finish(mut self) -> Secret {
        let n = u32::try_from(self.0.len() - 4).unwrap_or(u32::MAX);
        self.0[..4].copy_from_slice(&n.to_be_bytes());
        self.0
    }
}

struct Parser<'a> {
    rest: &'a [u8],
}

impl<'a> Parser<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if self.rest.len() < n {
            return Err(ProtoError::Garbage(
                "a field runs past the end of the frame",
            ));
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, ProtoError> {
        Ok(self.take(1)?[0])
    }
    fn bool(&mut self) -> Result<bool, ProtoError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ProtoError::Garbage("a flag that is neither 0 nor 1")),
        }
    }
    fn u32(&mut self) -> Result<u32, ProtoError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn bytes(&mut self) -> Result<&'a [u8], ProtoError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, ProtoError> {
        std::str::from_utf8(self.bytes()?)
            .map(str::to_string)
            .map_err(|_| ProtoError::Garbage("a text field that is not UTF-8"))
    }
    fn secret(&mut self) -> Result<Secret, ProtoError> {
        Ok(Zeroizing::new(self.bytes()?.to_vec()))
    }
    fn opt<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ProtoError>,
    ) -> Result<Option<T>, ProtoError> {
        if self.bool()? {
            f(self).map(Some)
        } else {
            Ok(None)
        }
    }
    fn end(self) -> Result<(), ProtoError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ProtoError::Garbage("bytes after the last field"))
        }
    }
}

impl Request {
    /// The whole frame, length prefix included.
    pub fn encode(&self) -> Secret {
        match self {
            Request::Authenticate(l) => {
                let len = |o: Option<&[u8]>| o.map_or(0, <[u8]>::len);
                let fields = l.service.len()
                    + l.rhost.len()
                    + l.user.len()
                    + len(l.authtok.as_ref().map(|t| &t[..]))
                    + len(l.prompt.as_ref().map(|p| p.as_bytes()))
                    + len(l.config.as_ref().map(|p| p.as_bytes()))
                    + l.tty.len()
                    + l.ruser.len();
                let mut w = Writer::new(T_AUTHENTICATE, fields);
                w.u32(l.version);
                w.bytes(l.service.as_bytes());
                w.bytes(l.rhost.as_bytes());
                w.bytes(&l.user);
                w.opt(l.authtok.as_ref().map(|t| &t[..]));
                let f = &l.flags;
                for b in [
                    f.use_first_pass,
                    f.try_first_pass,
                    f.nullok,
                    f.debug,
                    f.silent,
                ] {
                    w.u8(u8::from(b));
                }
                w.opt(l.prompt.as_ref().map(|p| p.as_bytes()));
                w.opt(l.config.as_ref().map(|p| p.as_bytes()));
                w.bytes(l.tty.as_bytes());
                w.bytes(l.ruser.as_bytes());
                w.finish()
            }
            Request::Answer(a) => {
                let mut w = Writer::new(T_ANSWER, a.as_ref().map_or(0, |a| a.len()));
                w.opt(a.as_ref().map(|a| &a[..]));
                w.finish()
            }
            Request::ConversationFailed(code) => {
                let mut w = Writer::new(T_CONV_FAILED, 0);
                w.u32(*code as u32);
                w.finish()
            }
        }
    }

    /// Reads a frame's body (tag and fields, without the length prefix).
    pub fn decode(body: &[u8]) -> Result<Request, ProtoError> {
        let (tag, rest) = body
            .split_first()
            .ok_or(ProtoError::Garbage("an empty frame"))?;
        let mut p = Parser { rest };
        let r = match *tag {
            T_AUTHENTICATE => {
                let version = p.u32()?;
                if version != VERSION {
                    // The rest of another version's login may be laid out otherwise.
                    return Err(ProtoError::Version(version));
                }
                let service = p.string()?;
                let rhost = p.string()?;
                let user = p.bytes()?.to_vec();
                let authtok = p.opt(Parser::secret)?;
                let flags = Flags {
                    use_first_pass: p.bool()?,
                    try_first_pass: p.bool()?,
                    nullok: p.bool()?,
                    debug: p.bool()?,
                    silent: p.bool()?,
                };
                let prompt = p.opt(Parser::string)?;
                let config = p.opt(Parser::string)?;
                let tty = p.string()?;
                let ruser = p.string()?;
                Request::Authenticate(Login {
                    version,
                    service,
                    rhost,
                    user,
                    authtok,
                    flags,
                    prompt,
                    config,
                    tty,
                    ruser,
                })
            }
            T_ANSWER => Request::Answer(p.opt(Parser::secret)?),
            T_CONV_FAILED => Request::ConversationFailed(p.u32()? as i32),
            _ => return Err(ProtoError::Garbage("an unknown request")),
        };
        p.end()?;
        Ok(r)
    }
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
    fn from_code(c: u8) -> Result<Verdict, ProtoError> {
        Ok(match c {
            0 => Verdict::Success,
            1 => Verdict::AuthErr,
            2 => Verdict::MaxTries,
            3 => Verdict::AuthinfoUnavail,
            4 => Verdict::Ignore,
            5 => Verdict::ConvErr,
            _ => return Err(ProtoError::Garbage("an unknown verdict")),
        })
    }
}

impl Reply {
    /// The whole frame, length prefix included.
    pub fn encode(&self) -> Secret {
        match self {
            Reply::Prompt { echo, text } => {
                let mut w = Writer::new(T_PROMPT, text.len());
                w.u8(u8::from(*echo));
                w.bytes(text.as_bytes());
                w.finish()
            }
            Reply::Info(t) | Reply::Error(t) => {
                let tag = if matches!(self, Reply::Info(_)) {
                    T_INFO
                } else {
                    T_ERROR
                };
                let mut w = Writer::new(tag, t.len());
                w.bytes(t.as_bytes());
                w.finish()
            }
            Reply::Wait(s) => {
                let mut w = Writer::new(T_WAIT, 0);
                w.u32(*s);
                w.finish()
            }
            Reply::Log { priority, line } => {
                let mut w = Writer::new(T_LOG, line.len());
                w.u8(*priority);
                w.bytes(line.as_bytes());
                w.finish()
            }
            Reply::Verdict(v) => {
                let mut w = Writer::new(T_VERDICT, 0);
                w.u8(v.code());
                w.finish()
            }
            Reply::Busy => Writer::new(T_BUSY, 0).finish(),
        }
    }

    /// Reads a frame's body (tag and fields, without the length prefix).
    pub fn decode(body: &[u8]) -> Result<Reply, ProtoError> {
        let (tag, rest) = body
            .split_first()
            .ok_or(ProtoError::Garbage("an empty frame"))?;
        let mut p = Parser { rest };
        let r = match *tag {
            T_PROMPT => Reply::Prompt {
                echo: p.bool()?,
                text: p.string()?,
            },
            T_INFO => Reply::Info(p.string()?),
            T_ERROR => Reply::Error(p.string()?),
            T_WAIT => Reply::Wait(p.u32()?),
            T_LOG => Reply::Log {
                priority: p.u8()?,
                line: p.string()?,
            },
            T_VERDICT => Reply::Verdict(Verdict::from_code(p.u8()?)?),
            T_BUSY => Reply::Busy,
            _ => return Err(ProtoError::Garbage("an unknown reply")),
        };
        p.end()?;
        Ok(r)
    }
}

/// Writes one frame made by `encode`.
pub fn write_frame(w: &mut impl Write, frame: &[u8]) -> Result<(), ProtoError> {
    w.write_all(frame)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame's body (the length prefix checked against [`MAX_FRAME`] before anything is
/// allocated). Timeouts are the socket's: set them before calling.
pub fn read_frame(r: &mut impl Read) -> Result<Secret, ProtoError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(ProtoError::TooLong {
            len: n,
            max: MAX_FRAME,
        });
    }
    let mut body = Zeroizing::new(vec![0u8; n]);
    r.read_exact(&mut body)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> Login {
        Login {
            version: VERSION,
            service: "sshd".into(),
            rhost: "192.0.2.7".into(),
            user: b"al\xffice".to_vec(),
            authtok: Some(Zeroizing::new(b"1234".to_vec())),
            flags: Flags {
                nullok: true,
                silent: true,
                ..Flags::default()
            },
            prompt: Some("Token PIN: ".into()),
            config: None,
            tty: "pts/3".into(),
            ruser: "bob".into(),
        }
    }

    #[test]
    fn a_login_of_another_version_is_named_as_such() {
        let old = Login {
            version: 1,
            ..login()
        };
        let frame = Request::Authenticate(old).encode();
        match Request::decode(&frame[4..]) {
            Err(ProtoError::Version(1)) => {}
            other => panic!("{other:?}"),
        }
    }

    fn roundtrip_request(r: Request) {
        let frame = r.encode();
        let body = read_frame(&mut &frame[..]).unwrap();
        assert_eq!(Request::decode(&body).unwrap(), r);
    }

    fn roundtrip_reply(r: Reply) {
        let frame = r.encode();
        let body = read_frame(&mut &frame[..]).unwrap();
        assert_eq!(Reply::decode(&body).unwrap(), r);
    }

    #[test]
    fn every_message_survives_the_wire() {
        roundtrip_request(Request::Authenticate(login()));
        roundtrip_request(Request::Authenticate(Login {
            version: VERSION,
            ..Login::default()
        }));
        roundtrip_request(Request::Answer(Some(Zeroizing::new(vec![0, 255, 10]))));
        roundtrip_request(Request::Answer(None));
        roundtrip_request(Request::ConversationFailed(19));
        roundtrip_reply(Reply::Prompt {
            echo: false,
            text: "PIN: ".into(),
        });
        roundtrip_reply(Reply::Info("Challenge: 12345678".into()));
        roundtrip_reply(Reply::Error("The OTP could not be sent".into()));
        roundtrip_reply(Reply::Wait(60));
        roundtrip_reply(Reply::Busy);
        roundtrip_reply(Reply::Log {
            priority: 6,
            line: "result=accept".into(),
        });
        for v in [
            Verdict::Success,
            Verdict::AuthErr,
            Verdict::MaxTries,
            Verdict::AuthinfoUnavail,
            Verdict::Ignore,
            Verdict::ConvErr,
        ] {
            roundtrip_reply(Reply::Verdict(v));
        }
    }

    #[test]
    fn the_longest_answer_fits_an_answer_frame_built_without_growing() {
        let r = Request::Answer(Some(Zeroizing::new(vec![b'7'; MAX_ANSWER])));
        let frame = r.encode();
        assert!(frame.capacity() >= frame.len() && frame.capacity() <= frame.len() + 64);
        assert!(frame.len() - 4 <= MAX_ANSWER_FRAME, "{}", frame.len());
        roundtrip_request(r);
        let l = Request::Authenticate(login()).encode();
        assert!(l.capacity() <= l.len() + 64, "sized up front");
    }

    #[test]
    fn a_login_of_the_longest_fields_fits_a_login_frame() {
        let field = "f".repeat(MAX_FIELD);
        let l = Login {
            version: VERSION,
            service: field.clone(),
            rhost: field.clone(),
            user: field.clone().into_bytes(),
            authtok: Some(Zeroizing::new(vec![b'7'; MAX_ANSWER])),
            flags: Flags::default(),
            prompt: Some(field.clone()),
            config: Some(field.clone()),
            tty: field.clone(),
            ruser: field,
        };
        let frame = Request::Authenticate(l).encode();
        assert!(frame.len() - 4 <= MAX_LOGIN_FRAME, "{}", frame.len());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Request::decode(&[]).is_err());
        assert!(Request::decode(&[99]).is_err());
        assert!(Reply::decode(&[T_VERDICT, 9]).is_err());
        assert!(Reply::decode(&[T_VERDICT, 0, 0]).is_err(), "trailing bytes");
        assert!(Reply::decode(&[T_PROMPT, 2, 0, 0, 0, 0]).is_err(), "flag 2");
        // A field whose length runs past the frame.
        assert!(Reply::decode(&[T_INFO, 0, 0, 0, 9, b'a']).is_err());
        assert!(
            Reply::decode(&[T_INFO, 0, 0, 0, 2, 0xff, 0xfe]).is_err(),
            "not UTF-8"
        );
        // A length prefix over the cap is refused before anything is allocated.
        let huge = (MAX_FRAME as u32 + 1).to_be_bytes();
        assert!(matches!(
            read_frame(&mut &huge[..]),
            Err(ProtoError::TooLong { .. })
        ));
        // A frame cut short is an I/O error (the peer closed).
        let mut short = Reply::Info("hello".into()).encode().to_vec();
        short.truncate(6);
        assert!(matches!(
            read_frame(&mut &short[..]),
            Err(ProtoError::Io(_))
        ));
    }
}
