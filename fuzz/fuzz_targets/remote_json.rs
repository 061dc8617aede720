//! The readers of a validation server's answers (`remote::dialect`): `parse_check` for both
//! dialects and both endpoints, and `parse_poll`, on any HTTP status and body; and the offline
//! values of privacyIDEA's answers (`remote::offline::items`, `refill_answer`, and `verify` on
//! each hash they keep). The server is
//! outside input (and may be an attacker's, or a proxy's error page): a panic would take the
//! daemon down mid-login.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tessera_engine::config::Dialect;
use tessera_engine::login::remote::dialect::{parse_check, parse_poll, Endpoint, PollState};
use tessera_engine::login::remote::{offline, RemoteAnswer};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    linotp: bool,
    simple: bool,
    /// Mostly 200, the status servers answer with; any other value otherwise.
    status: Option<u16>,
    body: &'a [u8],
}

fuzz_target!(|i: Input<'_>| {
    let dialect = if i.linotp {
        Dialect::Linotp
    } else {
        Dialect::Privacyidea
    };
    let endpoint = if i.simple {
        Endpoint::SimpleCheck
    } else {
        Endpoint::Check
    };
    let status = i.status.unwrap_or(200);
    match parse_check(dialect, endpoint, status, i.body) {
        // A verdict or a challenge is only believed with HTTP 200.
        Ok(RemoteAnswer::Accept { .. } | RemoteAnswer::Reject { .. }) => assert_eq!(status, 200),
        Ok(RemoteAnswer::Challenge(ch)) => {
            assert_eq!(status, 200);
            // The id goes back to the server with the answer: never empty.
            assert!(!ch.transaction_id.is_empty());
            for list in [
                &ch.input_messages,
                &ch.poll_messages,
                &ch.serials,
                &ch.kinds,
            ] {
                for (n, m) in list.iter().enumerate() {
                    assert!(!m.is_empty() && m.trim() == m);
                    assert!(!list[..n].contains(m), "duplicate {m:?}");
                }
            }
        }
        Ok(RemoteAnswer::Error { .. }) => assert!(status < 500),
        Err(_) => {}
    }
    match parse_poll(status, i.body) {
        Ok(PollState::Accepted) => assert_eq!(status, 200),
        Ok(_) => assert!(status < 500),
        Err(_) => {}
    }
    // Offline values: only pbkdf2-sha512 hashes are kept, sorted, within the caps; checking a
    // pass against each costs at most MAX_ROUNDS rounds.
    let items = offline::items(i.body);
    let refill = offline::refill_answer(status, i.body);
    for item in items.iter().chain(refill.as_ref().ok()) {
        assert!(!item.serial.is_empty() && !item.refill_token.is_empty());
        assert!(item.values.len() <= offline::MAX_VALUES);
        assert!(item.values.windows(2).all(|w| w[0].0 <= w[1].0));
        for (_, hash) in item.values.iter().take(2) {
            assert!(hash.starts_with("$pbkdf2-sha512$"));
            let _ = offline::verify(b"1234", hash);
        }
    }
});
