//! A sendmail-style command: the whole message on stdin, exit status 0 means accepted. The
//! command line is split on spaces (no shell), runs with a minimal environment, and is killed
//! when it takes longer than the timeout. The engine's hosts (tesserad, the tessera command)
//! undo a SIGCHLD their parent left ignored when they start ([`crate::os::sys::undo_ignored_signals`]),
//! so the kernel does not reap the child before we read its status.

use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

pub fn send(command: &str, message: &[u8], timeout_secs: u64) -> Result<()> {
    let mut words = command.split_whitespace();
    let program = words
        .next()
        .ok_or_else(|| Error::config("[email] sendmail is empty"))?;
    let fail = |what: String| Error::delivery(format!("sendmail command {program}: {what}"));
    let mut child = Command::new(program)
        .args(words)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("can't start: {e}")))?;
    // Unix line ends for a local mailer.
    let lf: zeroize::Zeroizing<Vec<u8>> = zeroize::Zeroizing::new(
        message
            .split_inclusive(|&b| b == b'\n')
            .flat_map(|l| {
                let l = l.strip_suffix(b"\r\n").unwrap_or(l);
                let l = l.strip_suffix(b"\n").unwrap_or(l);
                l.iter().copied().chain(std::iter::once(b'\n'))
            })
            .collect(),
    );
    let written = child.stdin.take().map(|mut i| i.write_all(&lf));
    let deadline = crate::os::io_time::deadline(Duration::from_secs(timeout_secs));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if crate::os::io_time::now() < deadline => {
                crate::os::io_time::pause(Duration::from_millis(10))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "did not finish within {timeout_secs} s (killed)"
                )));
            }
            Err(e) => return Err(fail(e.to_string())),
        }
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.by_ref().take(4096).read_to_string(&mut stderr);
    }
    let first: String = stderr
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if !status.success() {
        return Err(fail(format!(
            "{status}{}",
            if first.is_empty() {
                String::new()
            } else {
                format!(": {first}")
            }
        )));
    }
    if let Some(Err(e)) = written {
        return Err(fail(format!("could not take the message: {e}")));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // timing the real child process
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn the_command_gets_the_message_with_unix_line_ends() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("mail");
        let cmd = format!("/usr/bin/tee {}", out.display());
        send(&cmd, b"To: a@b.org\r\n\r\nbody\r\n", 5).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"To: a@b.org\n\nbody\n");
    }

    #[test]
    fn failures_and_timeouts_are_errors() {
        let e = send("/bin/false", b"x", 5).unwrap_err().to_string();
        assert!(
            e.contains("/bin/false") && e.contains("exit status: 1"),
            "{e}"
        );
        let e = send("/nonexistent/sendmail", b"x", 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("can't start"), "{e}");
        let t = Instant::now();
        let e = send("/bin/sleep 5", b"", 1).unwrap_err().to_string();
        assert!(e.contains("within 1 s"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(4));
    }
}
