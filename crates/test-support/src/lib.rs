//! What the integration tests of the workspace's crates share: a tesserad process for a test,
//! killed on drop, whose stderr lines arrive on a channel (startup, reloads). The root tests
//! (`tests/support`) and the daemon crate's (`crates/daemon/tests/common`) both use it.

use std::io::BufRead;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Daemon {
    pub child: Child,
    /// Where it serves.
    pub socket: PathBuf,
    stderr: Mutex<Receiver<String>>,
}

impl Daemon {
    /// `exe` (a tesserad) on `config`, serving `socket`; returns once it says it listens.
    pub fn start(exe: &Path, config: &Path, socket: &Path) -> Daemon {
        let mut cmd = Command::new(exe);
        cmd.arg("--config").arg(config).arg("--socket").arg(socket);
        let d = Daemon::spawn(cmd, socket);
        d.wait_for(&["listening on"]);
        d
    }

    /// Runs `cmd` (a tesserad, or a wrapper that execs one), which will serve `socket`.
    pub fn spawn(mut cmd: Command, socket: &Path) -> Daemon {
        let mut child = cmd.stderr(Stdio::piped()).spawn().expect("tesserad");
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Daemon {
            child,
            socket: socket.to_path_buf(),
            stderr: Mutex::new(rx),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn sighup(&self) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -HUP tesserad");
    }

    /// SIGHUP, then waits for the daemon to say it reloaded (or could not).
    pub fn reload(&self) {
        self.sighup();
        self.wait_for(&["config reloaded", "config not reloaded"]);
    }

    /// Waits (at most 10 s) for a stderr line containing one of `what`.
    pub fn wait_for(&self, what: &[&str]) -> String {
        let rx = self.stderr.lock().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(l) if what.iter().any(|w| l.contains(w)) => return l,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("tesserad never said any of {what:?}");
    }

    /// The stderr lines it wrote so far and not yet read, without waiting for more.
    pub fn stderr_so_far(&self) -> Vec<String> {
        self.stderr.lock().unwrap().try_iter().collect()
    }

    /// The stderr lines not yet read, up to its end (once the process is gone).
    pub fn rest_of_stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().iter().collect()
    }

    /// A connection to its socket (reads time out after 30 s).
    pub fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
