//! A real privacyIDEA for the tests, started once per test binary by the shared script
//! `peers/privacyidea/start-privacyidea.sh` (installs privacyIDEA from PyPI into a venv,
//! SQLite, known users and tokens). Two instances: plain HTTP and HTTPS with the script's CA.
//!
//! Where: `$TESSERA_PI_HOME` (default `/tmp/tessera-pi`), so the venv survives between runs;
//! the HTTPS instance shares the HTTP one's venv. Ports: `$TESSERA_PI_PORT` (default 5391)
//! and the next one. The shared folder: `$TESSERA_SHARED`, else `../shared` beside the
//! repository. A lock file keeps two test runs from restarting each other's servers, and a
//! watchdog stops both servers when the test process ends.
//!
//! A server that can't be started fails the tests that need it: nothing is skipped.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

pub struct Pi {
    pub url: String,
    pub home: PathBuf,
    /// The CA to trust (HTTPS instance only).
    pub ca: Option<PathBuf>,
    /// HOTP_ALICE's next counter on this instance (every start resets it to 0).
    alice: Mutex<u64>,
}

pub struct Servers {
    pub http: Pi,
    pub tls: Pi,
    /// Seconds the start took (printed for the record).
    pub start_secs: f64,
    _lock: std::fs::File,
    _watchdog: std::process::Child,
}

impl Pi {
    /// One call of the admin API, as the script's admin (through curl): the JSON answer.
    pub fn admin(&self, method: &str, path: &str, fields: &[(&str, &str)]) -> serde_json::Value {
        let auth = self.curl(
            "POST",
            "/auth",
            &[("username", "admin"), ("password", "adminpw")],
            None,
        );
        let token = auth
            .pointer("/result/value/token")
            .and_then(|t| t.as_str())
            .unwrap_or_else(|| panic!("admin login at {}: {auth}", self.url))
            .to_string();
        self.curl(method, path, fields, Some(&token))
    }

    fn curl(
        &self,
        method: &str,
        path: &str,
        fields: &[(&str, &str)],
        token: Option<&str>,
    ) -> serde_json::Value {
        let mut c = Command::new("curl");
        c.args(["-s", "-m", "30", "-X", method]);
        if let Some(ca) = &self.ca {
            c.arg("--cacert").arg(ca);
        }
        if let Some(t) = token {
            c.arg("-H").arg(format!("Authorization: {t}"));
        }
        for (k, v) in fields {
            c.arg("--data-urlencode").arg(format!("{k}={v}"));
        }
        let out = c
            .arg(format!("{}{path}", self.url))
            .output()
            .expect("curl (apt-get install curl)");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "{method} {path}: not JSON: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Holds alice's counter for the whole test: her HOTP codes are used in order.
    pub fn alice(&self) -> MutexGuard<'_, u64> {
        self.alice.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Takes the next counter and moves it on first, so that a failed test never leaves a used
/// counter behind for the next one.
pub fn next(counter: &mut u64) -> u64 {
    let c = *counter;
    *counter += 1;
    c
}

pub fn servers() -> &'static Servers {
    static S: OnceLock<Servers> = OnceLock::new();
    S.get_or_init(start)
}

fn shared_dir() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(d) = std::env::var_os("TESSERA_SHARED") {
        candidates.push(PathBuf::from(d));
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    candidates.push(manifest.join("../shared"));
    candidates.push(PathBuf::from("/work/shared"));
    for c in &candidates {
        if c.join("peers/privacyidea/start-privacyidea.sh").is_file() {
            return c.clone();
        }
    }
    panic!(
        "peers/privacyidea/start-privacyidea.sh not found in any of {candidates:?}; \
         set TESSERA_SHARED to the shared folder"
    );
}

fn start() -> Servers {
    let t0 = Instant::now();
    let script_dir = shared_dir().join("peers/privacyidea");
    let root = PathBuf::from(
        std::env::var_os("TESSERA_PI_HOME").unwrap_or_else(|| "/tmp/tessera-pi".into()),
    );
    std::fs::create_dir_all(&root).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join(".lock"))
        .unwrap();
    // SAFETY: flock on a file descriptor this function owns (kept open in `Servers` for the
    // life of the process); no memory is shared with the call.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {}", root.join(".lock").display());

    let port: u16 = std::env::var("TESSERA_PI_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(5391);
    let http_home = root.join("http");
    let tls_home = root.join("tls");
    std::fs::create_dir_all(&tls_home).unwrap();

    // Stops both servers when this process is gone, however it ends.
    let stop = script_dir.join("stop-privacyidea.sh");
    // It takes the lock first, so it can't stop the servers of a run that came after this one.
    let watchdog = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         exec flock {lock:?} sh -c '{stop:?} {http:?}; {stop:?} {tls:?}'",
        pid = std::process::id(),
        lock = root.join(".lock"),
        http = http_home,
        tls = tls_home,
    );
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(watchdog)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("watchdog");
    // Never waited for: it outlives this process on purpose (kept here, never dropped).

    let start = script_dir.join("start-privacyidea.sh");
    let run = |home: &Path, port: u16, tls: bool| -> String {
        let t = Instant::now();
        let out = Command::new("bash")
            .arg(&start)
            .arg(home)
            .arg(port.to_string())
            .env("PI_FAST_HASH", "1")
            .env("PI_TLS", if tls { "1" } else { "0" })
            .stdin(Stdio::null())
            .output()
            .expect("run start-privacyidea.sh");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "start-privacyidea.sh {} {port} failed ({}):\n{err}",
            home.display(),
            out.status
        );
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        eprintln!(
            "privacyIDEA at {url} ready in {:.1} s (PI_HOME {})",
            t.elapsed().as_secs_f64(),
            home.display()
        );
        url
    };

    // A complete install of the version the script wants (it reinstalls otherwise, and the
    // HTTPS instance must not start on a venv that is being replaced).
    let version = std::env::var("PI_VERSION").unwrap_or_else(|_| "3.14".into());
    let venv_ready = Command::new(http_home.join("venv/bin/python"))
        .arg("-c")
        .arg(format!(
            "import importlib.metadata as m; assert m.version('privacyidea') == '{version}'; \
             m.version('gunicorn')"
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let share_venv = || {
        let link = tls_home.join("venv");
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(http_home.join("venv"), &link).unwrap();
        }
    };
    let (http_url, tls_url) = if venv_ready {
        share_venv();
        std::thread::scope(|s| {
            let h = s.spawn(|| run(&http_home, port, false));
            let t = s.spawn(|| run(&tls_home, port + 1, true));
            (h.join().unwrap(), t.join().unwrap())
        })
    } else {
        // First run: one install, then the HTTPS instance uses the same venv.
        let h = run(&http_home, port, false);
        share_venv();
        (h, run(&tls_home, port + 1, true))
    };
    let start_secs = t0.elapsed().as_secs_f64();
    eprintln!("both privacyIDEA instances ready in {start_secs:.1} s");
    Servers {
        http: Pi {
            url: http_url,
            home: http_home,
            ca: None,
            alice: Mutex::new(0),
        },
        tls: Pi {
            url: tls_url,
            ca: Some(tls_home.join("tls/ca.crt")),
            home: tls_home,
            alice: Mutex::new(0),
        },
        start_secs,
        _lock: lock,
        _watchdog: watchdog,
    }
}
