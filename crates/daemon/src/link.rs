//! A connection ([`Channel`]: the socket, or stdin/stdout under `--stdio`) as a session uses it
//! ([`Link`]: frames in through a buffer, replies out in batches; [`refuse`] ends one that can't
//! be served) and the PAM conversation carried over it ([`SocketConversation`]): the client (the
//! module, or `tessera enroll`) shows each prompt and message and sends the answer back. The
//! login, enrollment and report handlers all talk through it.

use std::io::{Read, Write};
use std::time::{Duration, Instant};
use tessera_engine::auth::Conversation;
use tessera_engine::crypto::{secret, Secret};
use tessera_engine::error::Error;
use tessera_proto::{self as proto, write_frame, FrameReader, Reply, Request};
use zeroize::Zeroizing;

/// A connection: a Unix socket, or stdin/stdout under `--stdio`. Timeouts are set through
/// `set_read_timeout`, which stdin can't do: there the module's own deadline ends the child.
pub trait Channel: Read + Write {
    fn set_read_timeout(&self, t: Duration);
}

impl Channel for std::os::unix::net::UnixStream {
    fn set_read_timeout(&self, t: Duration) {
        let _ = std::os::unix::net::UnixStream::set_read_timeout(self, Some(t));
    }
}

/// Ends a session that can't be served: one log line, PAM_AUTHINFO_UNAVAIL.
pub(crate) fn refuse<C: Channel>(
    chan: &mut Link<'_, C>,
    why: &str,
) -> std::result::Result<(), proto::ProtoError> {
    chan.queue(&log_err(&format!("refusing: {why}")));
    chan.queue(&Reply::Verdict(proto::Verdict::AuthinfoUnavail));
    chan.flush()
}

pub(crate) fn log_err(line: &str) -> Reply {
    Reply::Log {
        priority: 3,
        line: line.to_string(),
    }
}

/// A connection as a session uses it: frames read through a buffer, and replies gathered until
/// the module must see them (a prompt it answers, a wait it must know of, the verdict), so that
/// log lines and the verdict go out in one write.
pub struct Link<'c, C: Channel> {
    chan: &'c mut C,
    reader: FrameReader,
    out: Zeroizing<Vec<u8>>,
}

impl<'c, C: Channel> Link<'c, C> {
    pub(crate) fn new(chan: &'c mut C) -> Self {
        Link {
            chan,
            reader: FrameReader::new(proto::MAX_LOGIN_FRAME),
            out: Zeroizing::new(Vec::new()),
        }
    }

    /// The next frame, of at most `max` bytes, whole by `deadline`.
    pub(crate) fn recv(
        &mut self,
        deadline: Instant,
        max: usize,
    ) -> std::result::Result<Secret, proto::ProtoError> {
        self.reader.set_max(max);
        self.reader.read(&mut ByDeadline {
            chan: self.chan,
            deadline,
        })
    }

    /// Queues `r`; it goes out with the next prompt, wait or verdict ([`Link::flush`]).
    pub(crate) fn queue(&mut self, r: &Reply) {
        // An enrollment's information lines carry the new key (its URI): the buffer is wiped
        // when it is sent, as each encoded frame is.
        self.out.extend_from_slice(&r.encode());
    }

    pub(crate) fn flush(&mut self) -> std::result::Result<(), proto::ProtoError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        write_frame(self.chan, &out)
    }
}

/// A channel's reads against one deadline: each read may wait only for what is left of it.
struct ByDeadline<'a, C: Channel> {
    chan: &'a mut C,
    deadline: Instant,
}

impl<C: Channel> Read for ByDeadline<'_, C> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.chan.set_read_timeout(left);
        self.chan.read(buf)
    }
}

/// The PAM conversation, carried over the connection: the module asks libpam's conversation
/// and sends the answer back.
pub(crate) struct SocketConversation<'l, 'c, C: Channel> {
    pub(crate) link: &'l mut Link<'c, C>,
    /// The longest wait for one answer.
    pub(crate) wait: Duration,
}

impl<C: Channel> SocketConversation<'_, '_, C> {
    /// Sends `r` with what was queued before it, now.
    fn send(&mut self, r: &Reply) -> Result<(), Error> {
        self.link.queue(r);
        self.link
            .flush()
            .map_err(|e| Error::conversation(format!("the module is gone: {e}")))
    }
}

impl<C: Channel> Conversation for SocketConversation<'_, '_, C> {
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Option<Secret>, Error> {
        self.send(&Reply::Prompt {
            echo,
            text: text.to_string(),
        })?;
        let body = self
            .link
            .recv(Instant::now() + self.wait, proto::MAX_ANSWER_FRAME)
            .map_err(|e| Error::conversation(format!("no answer from the module: {e}")))?;
        match Request::decode(&body) {
            Ok(Request::Answer(a)) => Ok(a.map(|a| secret(&a))),
            Ok(Request::ConversationFailed(code)) => Err(Error::conversation(format!(
                "the PAM conversation failed ({code})"
            ))),
            Ok(
                Request::Authenticate(_) | Request::Status | Request::Metrics | Request::Enroll(_),
            ) => Err(Error::conversation(
                "the module sent another request instead of an answer",
            )),
            Err(e) => Err(Error::conversation(format!("a bad answer frame: {e}"))),
        }
    }

    /// Queued: it reaches the user with the next prompt or the verdict.
    fn info(&mut self, text: &str) -> Result<(), Error> {
        self.link.queue(&Reply::Info(text.to_string()));
        Ok(())
    }

    fn error(&mut self, text: &str) -> Result<(), Error> {
        self.link.queue(&Reply::Error(text.to_string()));
        Ok(())
    }

    fn waiting(&mut self, seconds: u64) -> Result<(), Error> {
        self.send(&Reply::Wait(u32::try_from(seconds).unwrap_or(u32::MAX)))
    }
}
