//! The owned messages (feature `std`): what the daemon reads and writes, and the tests.

use crate::wire::{
    opt_field, put_head, put_opt, Parser, T_ANSWER, T_AUTHENTICATE, T_CONV_FAILED, T_ENROLL,
    T_METRICS, T_STATUS,
};
use crate::{
    answer_frame_len, body_len, write_answer, write_conversation_failed, Flags, Garbage,
    LoginFields, ReplyView, Sink, Verdict, CONV_FAILED_FRAME_LEN, MAX_FRAME, VERSION,
};
use std::fmt;
use std::io::{Read, Write};
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;
use zeroize::Zeroizing;

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
    /// Audited, never a source: any setuid helper (polkit's) sets it to whom it likes.
    pub ruser: String,
    /// The real uid of the process that calls PAM (`getuid()`): who ran `sudo` or `su`, or a
    /// setuid helper. A root caller's login without PAM_RHOST counts its failures on it.
    pub uid: u32,
}

/// Module → daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Authenticate(Login),
    /// The answer to the last [`Reply::Prompt`]; `None` is a NULL answer.
    Answer(Option<Secret>),
    /// The conversation failed (libpam's return code), or there was none.
    ConversationFailed(i32),
    /// `tessera doctor` asks a running daemon how it is (root only, instead of a login): the
    /// daemon answers with [`Reply::Info`] lines, `ok ...` or `fail ...`, then a verdict
    /// (success when it can serve logins).
    Status,
    /// `tessera metrics` asks for the daemon's counters (root or the daemon's user): the
    /// OpenMetrics text, one [`Reply::Info`] a line, then a success verdict.
    Metrics,
    /// `tessera enroll`: the caller (SO_PEERCRED names it) enrolls a token for itself. The
    /// dialogue goes on as a login's does (prompts, answers, information lines, a verdict).
    Enroll(EnrollRequest),
}

/// What `tessera enroll` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnrollRequest {
    /// The token type (`--type`); `None`: the first the config allows.
    pub kind: Option<String>,
    /// Draw the QR code for a light terminal.
    pub light: bool,
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

/// A frame being built in a buffer sized up front: a buffer that grew would leave an unwiped
/// copy of the pass it already held.
struct Frame(Secret);

impl Frame {
    fn with(len: usize, write: impl FnOnce(&mut Frame)) -> Secret {
        let mut f = Frame(Zeroizing::new(Vec::with_capacity(len)));
        write(&mut f);
        debug_assert_eq!(f.0.len(), len, "a frame's length and its bytes disagree");
        f.0
    }
}

impl Sink for Frame {
    fn put(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
}

impl From<Garbage> for ProtoError {
    fn from(g: Garbage) -> Self {
        ProtoError::Garbage(g.0)
    }
}

impl Login {
    /// The login as the borrowed fields its frame is written from.
    pub fn fields(&self) -> LoginFields<'_> {
        LoginFields {
            version: self.version,
            service: &self.service,
            rhost: &self.rhost,
            user: &self.user,
            authtok: self.authtok.as_ref().map(|t| &t[..]),
            flags: &self.flags,
            prompt: self.prompt.as_deref(),
            config: self.config.as_deref(),
            tty: &self.tty,
            ruser: &self.ruser,
            uid: self.uid,
        }
    }
}

impl Request {
    /// The whole frame, length prefix included.
    pub fn encode(&self) -> Secret {
        match self {
            Request::Authenticate(l) => {
                let l = l.fields();
                Frame::with(l.frame_len(), |f| l.write(f))
            }
            Request::Answer(a) => {
                let a = a.as_ref().map(|a| &a[..]);
                Frame::with(answer_frame_len(a), |f| write_answer(a, f))
            }
            Request::Status | Request::Metrics => {
                let tag = match self {
                    Request::Status => T_STATUS,
                    _ => T_METRICS,
                };
                let mut f = Frame(Zeroizing::new(Vec::with_capacity(5)));
                f.put(&[0, 0, 0, 1, tag]);
                f.0
            }
            Request::Enroll(e) => {
                let kind = e.kind.as_deref().map(str::as_bytes);
                let body = 1 + 1 + opt_field(kind);
                Frame::with(4 + body, |f| {
                    put_head(f, body, T_ENROLL);
                    f.put(&[u8::from(e.light)]);
                    put_opt(f, kind);
                })
            }
            Request::ConversationFailed(code) => Frame::with(CONV_FAILED_FRAME_LEN, |f| {
                write_conversation_failed(*code, f)
            }),
        }
    }

    /// Reads a frame's body (tag and fields, without the length prefix).
    pub fn decode(body: &[u8]) -> Result<Request, ProtoError> {
        let (tag, rest) = body
            .split_first()
            .ok_or(ProtoError::Garbage("an empty frame"))?;
        let mut p = Parser { rest };
        let string = |p: &mut Parser<'_>| p.text().map(str::to_string);
        let secret = |p: &mut Parser<'_>| p.bytes().map(|b| Zeroizing::new(b.to_vec()));
        let r = match *tag {
            T_AUTHENTICATE => {
                let version = p.u32()?;
                if version != VERSION {
                    // The rest of another version's login may be laid out otherwise.
                    return Err(ProtoError::Version(version));
                }
                let service = string(&mut p)?;
                let rhost = string(&mut p)?;
                let user = p.bytes()?.to_vec();
                let authtok = p.opt(secret)?;
                let flags = Flags {
                    use_first_pass: p.bool()?,
                    try_first_pass: p.bool()?,
                    nullok: p.bool()?,
                    debug: p.bool()?,
                    silent: p.bool()?,
                };
                let prompt = p.opt(string)?;
                let config = p.opt(string)?;
                let tty = string(&mut p)?;
                let ruser = string(&mut p)?;
                let uid = p.u32()?;
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
                    uid,
                })
            }
            T_ANSWER => Request::Answer(p.opt(secret)?),
            T_CONV_FAILED => Request::ConversationFailed(p.u32()? as i32),
            T_STATUS => Request::Status,
            T_METRICS => Request::Metrics,
            T_ENROLL => {
                let light = p.bool()?;
                let kind = p.opt(string)?;
                Request::Enroll(EnrollRequest { kind, light })
            }
            _ => return Err(ProtoError::Garbage("an unknown request")),
        };
        p.end()?;
        Ok(r)
    }
}

impl Reply {
    /// The reply as the borrowed fields its frame is written from.
    pub fn view(&self) -> ReplyView<'_> {
        match self {
            Reply::Prompt { echo, text } => ReplyView::Prompt { echo: *echo, text },
            Reply::Info(t) => ReplyView::Info(t),
            Reply::Error(t) => ReplyView::Error(t),
            Reply::Wait(s) => ReplyView::Wait(*s),
            Reply::Log { priority, line } => ReplyView::Log {
                priority: *priority,
                line,
            },
            Reply::Verdict(v) => ReplyView::Verdict(*v),
            Reply::Busy => ReplyView::Busy,
        }
    }

    /// The whole frame, length prefix included.
    pub fn encode(&self) -> Secret {
        let v = self.view();
        Frame::with(v.frame_len(), |f| v.write(f))
    }

    /// Reads a frame's body (tag and fields, without the length prefix).
    pub fn decode(body: &[u8]) -> Result<Reply, ProtoError> {
        Ok(match ReplyView::decode(body)? {
            ReplyView::Prompt { echo, text } => Reply::Prompt {
                echo,
                text: text.into(),
            },
            ReplyView::Info(t) => Reply::Info(t.into()),
            ReplyView::Error(t) => Reply::Error(t.into()),
            ReplyView::Wait(s) => Reply::Wait(s),
            ReplyView::Log { priority, line } => Reply::Log {
                priority,
                line: line.into(),
            },
            ReplyView::Verdict(v) => Reply::Verdict(v),
            ReplyView::Busy => Reply::Busy,
        })
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
    let n = body_len(len, MAX_FRAME).map_err(|len| ProtoError::TooLong {
        len,
        max: MAX_FRAME,
    })?;
    let mut body = Zeroizing::new(vec![0u8; n]);
    r.read_exact(&mut body)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{T_INFO, T_PROMPT, T_VERDICT};
    use crate::{MAX_ANSWER, MAX_ANSWER_FRAME, MAX_FIELD, MAX_LOGIN_FRAME};

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
            uid: 10002,
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
        roundtrip_request(Request::Status);
        roundtrip_request(Request::Metrics);
        roundtrip_request(Request::Enroll(EnrollRequest::default()));
        roundtrip_request(Request::Enroll(EnrollRequest {
            kind: Some("hotp".into()),
            light: true,
        }));
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
            uid: u32::MAX,
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
