//! The module's side of a login: reach tesserad (its socket, or for a root caller without one a
//! child `tesserad --stdio` on a socketpair), send the login, carry the conversation, return the
//! verdict. Every wait is bounded: a dead, hung or garbage-talking daemon gives
//! PAM_AUTHINFO_UNAVAIL with one log line, never a hang of the caller.

use crate::args::ModuleArgs;
use crate::conv::PamConversation;
use crate::ffi::{self, Buf, Child, Pam, Socket};
use crate::LOG_ERR;
use core::ffi::c_int;
use tessera_proto::{
    answer_frame_len, body_len, write_answer, write_conversation_failed, LoginFields, ReplyView,
    Verdict, CONV_FAILED_FRAME_LEN, MAX_ANSWER, MAX_REPLY_FRAME,
};

/// Runs one login against the daemon.
pub fn ask_daemon(
    pam: &Pam<'_>,
    args: &ModuleArgs<'_>,
    login: &LoginFields<'_>,
    conv: &mut PamConversation<'_, '_>,
) -> Verdict {
    let Some(frame) = build_frame(login.frame_len(), |f| login.write(f)) else {
        return unavailable(pam, args, conv, Trouble::OutOfMemory);
    };
    let first = connect(args).and_then(|c| c.run(pam, args, &frame, conv));
    let trouble = match first {
        Ok(Ended::Verdict(v)) => return v,
        // The daemon takes no more logins. Root's are never refused for that: a root caller
        // (sshd, sudo, su, login) serves this one with a daemon of its own.
        Ok(Ended::Busy) if ffi::euid() == 0 => {
            match spawn(args)
                .map_err(Trouble::BusyAndNoSpawn)
                .and_then(|c| c.run(pam, args, &frame, conv))
            {
                Ok(Ended::Verdict(v)) => return v,
                Ok(Ended::Busy) => Trouble::StdioBusy,
                Err(t) => t,
            }
        }
        Ok(Ended::Busy) => Trouble::Busy,
        Err(t) => t,
    };
    unavailable(pam, args, conv, trouble)
}

/// What the user is told when the daemon can't be reached or used (the admin's reason is in
/// the log): one line, PAM_ERROR_MSG, not under PAM_SILENT.
const NOT_RUNNING: &str =
    "two-factor login is not available on this host (the tessera service is not running)";
const BUSY: &str =
    "two-factor login is not available on this host right now (the tessera service is busy)";
const NO_ANSWER: &str =
    "two-factor login is not available on this host (the tessera service did not answer)";
/// The module's arguments on the PAM line are wrong (the log names the argument).
pub const BAD_PAM_LINE: &str =
    "two-factor login is not available on this host (its PAM configuration is wrong)";
/// The daemon answered, but could not check the login (its store, its key, a remote server)
/// and said nothing to the user.
const NOT_CHECKED: &str =
    "two-factor login is not available on this host (the tessera service could not check it)";

/// How a dialogue ended.
enum Ended {
    Verdict(Verdict),
    /// The daemon was full and read nothing.
    Busy,
}

/// Why no verdict came: each is one log line, and PAM_AUTHINFO_UNAVAIL.
enum Trouble {
    /// No socket, and a caller that is not root may not start a daemon.
    NoSocket(c_int),
    /// No socket, and the daemon could not be started (errno of each).
    NoSocketNoSpawn(c_int, c_int),
    /// The daemon was full, and one of our own could not be started.
    BusyAndNoSpawn(c_int),
    Busy,
    StdioBusy,
    Dialogue(Broken),
    OutOfMemory,
}

/// How a dialogue with a daemon broke.
enum Broken {
    SendLogin(c_int),
    SendAnswer(c_int),
    /// No frame within this many seconds.
    Silent(u32),
    Closed,
    Recv(c_int),
    TooLong(usize),
    Garbage(&'static str),
    BusyAfterPrompt,
    Socket(c_int),
}

fn unavailable(
    pam: &Pam<'_>,
    args: &ModuleArgs<'_>,
    conv: &mut PamConversation<'_, '_>,
    t: Trouble,
) -> Verdict {
    conv.error(match t {
        Trouble::NoSocket(_) | Trouble::NoSocketNoSpawn(..) | Trouble::BusyAndNoSpawn(_) => {
            NOT_RUNNING
        }
        Trouble::Busy | Trouble::StdioBusy => BUSY,
        Trouble::Dialogue(_) | Trouble::OutOfMemory => NO_ANSWER,
    });
    let socket = args.socket.to_bytes();
    let mut n = [0u8; 20];
    match t {
        Trouble::NoSocket(e) => pam.syslog(
            LOG_ERR,
            &[
                b"no tesserad at ",
                socket,
                b" (",
                ffi::strerror(e),
                b"): start it (systemctl enable --now tesserad.socket, or service tesserad start \
                  without systemd); without it only root callers can authenticate",
            ],
        ),
        Trouble::NoSocketNoSpawn(c, s) => pam.syslog(
            LOG_ERR,
            &[
                b"no tesserad at ",
                socket,
                b" (",
                ffi::strerror(c),
                b"), and ",
                args.daemon.to_bytes(),
                b" could not be started: ",
                ffi::strerror(s),
            ],
        ),
        Trouble::BusyAndNoSpawn(e) => pam.syslog(
            LOG_ERR,
            &[
                b"tesserad is full, and ",
                args.daemon.to_bytes(),
                b" could not be started: ",
                ffi::strerror(e),
            ],
        ),
        Trouble::Busy => pam.syslog(
            LOG_ERR,
            &[
                b"tesserad serves as many logins of this user (or of all users but root) as it \
                takes; try again",
            ],
        ),
        Trouble::StdioBusy => pam.syslog(LOG_ERR, &[b"tesserad --stdio said it was full"]),
        Trouble::OutOfMemory => pam.syslog(LOG_ERR, &[b"out of memory"]),
        Trouble::Dialogue(b) => {
            let (what, detail): (&[u8], &[u8]) = match b {
                Broken::SendLogin(e) => (b"sending the login: ", ffi::strerror(e)),
                Broken::SendAnswer(e) => (b"sending an answer: ", ffi::strerror(e)),
                Broken::Silent(secs) => (b"no answer within ", decimal(secs as usize, &mut n)),
                Broken::Closed => (b"the connection closed before the verdict", b""),
                Broken::Recv(e) | Broken::Socket(e) => (b"", ffi::strerror(e)),
                Broken::TooLong(len) => (b"a frame of ", decimal(len, &mut n)),
                Broken::Garbage(why) => (b"not a tessera message: ", why.as_bytes()),
                Broken::BusyAfterPrompt => (b"a daemon that was busy after it had prompted", b""),
            };
            let mut m = [0u8; 20];
            let unit: [&[u8]; 3] = match b {
                Broken::Silent(_) => [b" s", b"", b""],
                Broken::TooLong(_) => [b" bytes (at most ", decimal(MAX_REPLY_FRAME, &mut m), b")"],
                _ => [b"", b"", b""],
            };
            let [u1, u2, u3] = unit;
            pam.syslog(LOG_ERR, &[b"tesserad: ", what, detail, u1, u2, u3]);
        }
    }
    Verdict::AuthinfoUnavail
}

/// `n` in decimal, written at the end of `buf`.
fn decimal(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        at -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.get(at..).unwrap_or_default()
}

/// A frame of `len` bytes, written by `write`.
fn build_frame(len: usize, write: impl FnOnce(&mut Buf)) -> Option<Buf> {
    let mut f = Buf::with_capacity(len)?;
    write(&mut f);
    Some(f)
}

/// A connection to a daemon: the socket, or a child's socketpair and the child.
struct Connection {
    sock: Socket,
    child: Option<Child>,
}

impl Connection {
    /// One dialogue, then the child's end.
    fn run(
        self,
        pam: &Pam<'_>,
        args: &ModuleArgs<'_>,
        login: &Buf,
        conv: &mut PamConversation<'_, '_>,
    ) -> Result<Ended, Trouble> {
        let ended = dialogue(&self.sock, pam, args.timeout_secs, login, conv);
        drop(self.sock);
        if let Some(child) = self.child {
            child.reap(args.timeout_secs);
        }
        ended.map_err(Trouble::Dialogue)
    }
}

/// The daemon's socket, or a child daemon for this login.
fn connect(args: &ModuleArgs<'_>) -> Result<Connection, Trouble> {
    match Socket::connect(args.socket.to_bytes()) {
        Ok(sock) => Ok(Connection { sock, child: None }),
        Err(c) if ffi::euid() == 0 => spawn(args).map_err(|s| Trouble::NoSocketNoSpawn(c, s)),
        Err(c) => Err(Trouble::NoSocket(c)),
    }
}

/// `tesserad --stdio` on one end of a socketpair (see [`ffi::spawn`]).
fn spawn(args: &ModuleArgs<'_>) -> Result<Connection, c_int> {
    let (ours, theirs) = Socket::pair()?;
    let child = ffi::spawn(args.daemon, args.config, theirs)?;
    Ok(Connection {
        sock: ours,
        child: Some(child),
    })
}

/// The dialogue: the daemon leads, the module asks the conversation and answers.
fn dialogue(
    sock: &Socket,
    pam: &Pam<'_>,
    timeout: u32,
    login: &Buf,
    conv: &mut PamConversation<'_, '_>,
) -> Result<Ended, Broken> {
    let _ = sock.set_timeout(true, timeout);
    // A full daemon may have closed before the login was written: what it said first (Busy)
    // is read before a failed write is reported.
    let unsent = sock.send_all(login.as_slice()).err();
    let mut frame = Buf::with_capacity(MAX_REPLY_FRAME).ok_or(Broken::Recv(libc::ENOMEM))?;
    let mut wait = timeout;
    let mut wait_set = None;
    let mut prompted = false;
    // Whether the user was shown anything (a prompt, a line).
    let mut told = false;
    loop {
        if wait_set != Some(wait) {
            sock.set_timeout(false, wait).map_err(Broken::Socket)?;
            wait_set = Some(wait);
        }
        if let Err(e) = read_frame(sock, &mut frame, wait) {
            return Err(unsent.map_or(e, Broken::SendLogin));
        }
        wait = timeout;
        let reply = ReplyView::decode(frame.as_slice()).map_err(|g| Broken::Garbage(g.0))?;
        if let (Some(e), false) = (unsent, reply == ReplyView::Busy) {
            return Err(Broken::SendLogin(e));
        }
        match reply {
            ReplyView::Busy if !prompted => return Ok(Ended::Busy),
            ReplyView::Busy => return Err(Broken::BusyAfterPrompt),
            ReplyView::Prompt { echo, text } => {
                prompted = true;
                told = true;
                let answer = match conv.prompt(text, echo, |a| {
                    // The engine refuses passes over 1 KiB anyway; this bounds the frame.
                    let a = a.map(|a| a.get(..MAX_ANSWER).unwrap_or(a));
                    frame_of_answer(a)
                }) {
                    Ok(f) => f,
                    Err(code) => build_frame(CONV_FAILED_FRAME_LEN, |f| {
                        write_conversation_failed(code, f)
                    }),
                };
                let answer = answer.ok_or(Broken::SendAnswer(libc::ENOMEM))?;
                sock.send_all(answer.as_slice())
                    .map_err(Broken::SendAnswer)?;
            }
            ReplyView::Info(t) => {
                told = true;
                conv.info(t)
            }
            ReplyView::Error(t) => {
                told = true;
                conv.error(t)
            }
            ReplyView::Wait(s) => wait = timeout.max(s),
            ReplyView::Log { priority, line } => pam.syslog(priority, &[line.as_bytes()]),
            ReplyView::Verdict(v) => {
                if v == Verdict::AuthinfoUnavail && !told {
                    conv.error(NOT_CHECKED);
                }
                return Ok(Ended::Verdict(v));
            }
        }
    }
}

fn frame_of_answer(a: Option<&[u8]>) -> Option<Buf> {
    build_frame(answer_frame_len(a), |f| write_answer(a, f))
}

/// Reads the next frame's body into `frame` (its length checked before the body is read).
fn read_frame(sock: &Socket, frame: &mut Buf, wait: u32) -> Result<(), Broken> {
    let recv = |frame: &mut Buf, len: usize| match frame.recv_exact(sock, len) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Broken::Closed),
        Err(libc::EAGAIN) => Err(Broken::Silent(wait)),
        Err(e) => Err(Broken::Recv(e)),
    };
    frame.clear();
    recv(frame, 4)?;
    let prefix = <[u8; 4]>::try_from(frame.as_slice()).map_err(|_| Broken::Closed)?;
    let len = body_len(prefix, MAX_REPLY_FRAME).map_err(Broken::TooLong)?;
    frame.clear();
    recv(frame, len)
}
