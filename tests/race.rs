//! An OTP is accepted at most once even when several processes check it at the same instant,
//! as sshd does with one process per login: 8 real processes (pamtester under pam_wrapper,
//! each with its own libpam and its own copy of the module) get the same valid PIN+OTP at the
//! same moment, 25 times with a new HOTP value each time (and 10 times with TOTP, 20 times with
//! the recovery codes of a tan token, in a scrambled order).

mod support;

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use support::*;

const PROCESSES: usize = 8;
const ROUNDS: u64 = 25;

/// Reads the child's stderr until the prompt is there: it then blocks reading stdin. Returns
/// `None` when it exited first because pam_wrapper could not make its temporary directory
/// (it names it `/tmp/pam.<one character>` after the pid, so concurrent processes can collide);
/// any other early exit fails the test.
fn wait_for_prompt(child: &mut Child, prompt: &str) -> Option<String> {
    let err = child.stderr.as_mut().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&seen).contains(prompt) {
        let n = err.read(&mut buf).unwrap();
        if n == 0 {
            let text = String::from_utf8_lossy(&seen).into_owned();
            assert!(
                text.contains("Failed to create pam_wrapper config dir"),
                "exited before the prompt: {text}"
            );
            let _ = child.wait();
            return None;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    Some(String::from_utf8_lossy(&seen).into_owned())
}

/// Starts a pamtester that waits at the PIN prompt, retrying pam_wrapper's directory clashes.
fn waiting_pamtester(fx: &Fixture) -> (Child, String) {
    for _ in 0..10 {
        let mut c = pamtester_command(&fx.services, "alice")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pamtester (apt-get install pamtester libpam-wrapper)");
        if let Some(seen) = wait_for_prompt(&mut c, "PIN: ") {
            return (c, seen);
        }
    }
    panic!("pamtester could not start 10 times in a row");
}

/// Runs `rounds` rounds; in each, all processes get PIN + `otp(round)` at once. Returns the
/// time taken. `counter(round)` is where the token's counter must be after the round.
fn race(
    fx: &Fixture,
    serial: &str,
    rounds: u64,
    otp: impl Fn(u64) -> String,
    counter_after: impl Fn(u64) -> u64,
) -> Duration {
    // The processes of a round share this fixture's service files: they may share one
    // pam_wrapper directory, but no other test's pam_wrapper may run meanwhile.
    let _one = pam_wrapper_lock();
    let start = Instant::now();
    let mut counter = fx.token(serial).counter;
    for round in 0..rounds {
        let line = format!("1234{}\n", otp(round));
        let (mut children, mut stderr): (Vec<Child>, Vec<String>) =
            (0..PROCESSES).map(|_| waiting_pamtester(fx)).unzip();
        // All of them wait at the prompt: answer them back to back.
        let mut stdins: Vec<_> = children
            .iter_mut()
            .map(|c| c.stdin.take().unwrap())
            .collect();
        for s in &mut stdins {
            s.write_all(line.as_bytes()).unwrap();
        }
        drop(stdins);
        let mut successes = 0;
        for (c, err) in children.iter_mut().zip(&mut stderr) {
            c.stderr.as_mut().unwrap().read_to_string(err).unwrap();
            let status = c.wait().unwrap();
            if status.success() {
                successes += 1;
            } else {
                assert!(
                    err.contains("Authentication failure"),
                    "round {round}: a loser must fail as a replay, not as an error: {err}"
                );
            }
        }
        assert_eq!(successes, 1, "round {round}: {stderr:#?}");
        let now = fx.token(serial).counter;
        assert!(now >= counter, "round {round}: the counter moved back");
        assert_eq!(now, counter_after(round), "round {round}");
        counter = now;
    }
    let audit = fx.audit();
    let accepts = audit.iter().filter(|e| e.result == "accept").count();
    let rejects = audit.iter().filter(|e| e.result == "reject").count();
    assert_eq!(accepts as u64, rounds);
    assert_eq!(rejects as u64, rounds * (PROCESSES as u64 - 1));
    start.elapsed()
}

#[test]
fn eight_processes_with_the_same_hotp_at_the_same_instant_succeed_exactly_once() {
    let fx = Fixture::new("busy_timeout_ms = 10000\n[auth]\nmax_fail = 1000\n");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let took = race(&fx, "H1", ROUNDS, |r| t.hotp_at(r), |r| r + 1);
    eprintln!("HOTP: {ROUNDS} rounds of {PROCESSES} processes in {took:?}");
    assert!(took < Duration::from_secs(120), "{took:?}");
}

/// The same for TOTP: each round uses the code of a later time step inside the window.
#[test]
fn eight_processes_with_the_same_totp_at_the_same_instant_succeed_exactly_once() {
    let fx = Fixture::new("busy_timeout_ms = 10000\n[auth]\nmax_fail = 1000\ntotp_window = 10\n");
    let t = Tok::totp("T1", "alice", "1234");
    fx.add(&t);
    // Steps now-4 .. now+5: all inside the window for the next 30 s or more.
    let first = now() / 30 - 4;
    let took = race(&fx, "T1", 10, |r| t.hotp_at(first + r), |r| first + r + 1);
    eprintln!("TOTP: 10 rounds of {PROCESSES} processes in {took:?}");
}

/// The same for recovery codes: each round one code of a tan token, not in list order.
#[test]
fn eight_processes_with_the_same_recovery_code_at_the_same_instant_succeed_exactly_once() {
    let fx = Fixture::new("busy_timeout_ms = 10000\n[auth]\nmax_fail = 1000\n");
    let (t, codes) = Tok::tan("TAN1", "alice", "1234", 20);
    fx.add(&t);
    // 7 is prime to 20: rounds 0..20 visit every code once, out of order.
    let index = |r: u64| (r * 7 % 20) as usize;
    let took = race(
        &fx,
        "TAN1",
        20,
        |r| codes[index(r)].clone(),
        |r| (0..=r).fold(0, |bits, i| bits | 1 << index(i)),
    );
    eprintln!("tan: 20 rounds of {PROCESSES} processes in {took:?}");
    assert_eq!(fx.token("TAN1").counter, (1 << 20) - 1);
}
