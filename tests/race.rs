//! An OTP is accepted at most once even when several processes check it at the same instant,
//! as sshd does with one process per login: 8 real processes (pamtester under pam_wrapper,
//! each with its own libpam and its own copy of the module) get the same valid PIN+OTP at the
//! same moment, 50 times with a new OTP each time.

mod support;

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use support::*;

const PROCESSES: usize = 8;
const ROUNDS: u64 = 50;

/// Reads the child's stderr until the prompt is there: it then blocks reading stdin.
fn wait_for_prompt(child: &mut Child, prompt: &str) -> String {
    let err = child.stderr.as_mut().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&seen).contains(prompt) {
        let n = err.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "exited before the prompt: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn eight_processes_with_the_same_otp_at_the_same_instant_succeed_exactly_once() {
    let fx = Fixture::new("busy_timeout_ms = 10000\n[auth]\nmax_fail = 1000\n");
    let t = Tok::hotp("H1", "alice", "1234");
    fx.add(&t);
    let start = Instant::now();
    let mut counter = fx.token("H1").counter;
    for round in 0..ROUNDS {
        let line = format!("1234{}\n", t.hotp_at(round));
        let mut children: Vec<Child> = (0..PROCESSES)
            .map(|_| {
                pamtester_command(&fx.services, "alice")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("pamtester (apt-get install pamtester libpam-wrapper)")
            })
            .collect();
        let mut stderr: Vec<String> = children
            .iter_mut()
            .map(|c| wait_for_prompt(c, "PIN: "))
            .collect();
        // All eight wait at the prompt: answer them back to back.
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
        let now = fx.token("H1").counter;
        assert!(now >= counter, "round {round}: the counter moved back");
        assert_eq!(now, round + 1, "round {round}");
        counter = now;
    }
    let elapsed = start.elapsed();
    let audit = fx.audit();
    let accepts = audit.iter().filter(|e| e.result == "accept").count();
    let rejects = audit.iter().filter(|e| e.result == "reject").count();
    assert_eq!(accepts as u64, ROUNDS);
    assert_eq!(rejects as u64, ROUNDS * (PROCESSES as u64 - 1));
    eprintln!("{ROUNDS} rounds of {PROCESSES} processes in {elapsed:?}");
    assert!(elapsed < Duration::from_secs(120), "{elapsed:?}");
}
