//! One connection, one request: the first frame (within [`FIRST_FRAME_DEADLINE`]) says what
//! is asked, and this is where it is routed: a login (`login.rs`), an enrollment, the
//! daemon's status or its metrics.

pub use crate::caller::{Caller, Counters, ANSWER_TIMEOUT, NON_ROOT_ANSWER_TIMEOUT};
pub use crate::link::Channel;
use crate::link::{refuse, Link};
use crate::reports;
use std::time::{Duration, Instant};
use tessera_engine::config::Config;
use tessera_engine::login::Resources;
use tessera_proto::{self as proto, Request};

/// How long a client may take to send its whole login after connecting (not per read: a
/// client that trickles a byte at a time is cut off all the same).
pub const FIRST_FRAME_DEADLINE: Duration = Duration::from_secs(5);
/// How long one frame may take to be written (a client that stopped reading).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one connection. `config` is the daemon's config (or the error loading it gave).
/// `res` keeps the store and the servers' connections (the socket) or opens them for this login
/// (`--stdio`).
/// `counters` are the daemon's (or this login's alone, under `--stdio`).
pub fn serve<C: Channel, R: Resources>(
    chan: &mut C,
    caller: &Caller,
    config: std::result::Result<&Config, &str>,
    res: &R,
    counters: &Counters,
) -> std::result::Result<(), proto::ProtoError> {
    let started = Instant::now();
    let mut link = Link::new(chan);
    let body = link.recv(
        Instant::now() + FIRST_FRAME_DEADLINE,
        proto::MAX_LOGIN_FRAME,
    )?;
    let chan = &mut link;
    match Request::decode(&body) {
        Ok(Request::Authenticate(wire)) => {
            crate::login::serve(chan, caller, config, res, counters, wire, started)
        }
        Err(proto::ProtoError::Version(v)) => refuse(
            chan,
            &format!(
                "the module speaks protocol {v}, this tesserad {}: install matching versions",
                proto::VERSION
            ),
        ),
        Ok(Request::Status) => reports::status(chan, caller, config, res, counters),
        Ok(Request::Metrics) => reports::metrics(chan, caller, config, res, counters),
        Ok(Request::Enroll(asked)) => {
            crate::self_enroll::serve(chan, caller, config, res, &counters.refusals, &asked)
        }
        Ok(_) => refuse(chan, "the first message was not a login"),
        Err(e) => refuse(chan, &format!("a bad first message: {e}")),
    }
}
