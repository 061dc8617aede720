//! The one test helper of the `tessera` command's tests (cli.rs, backup.rs): a config and store
//! in a temporary directory, and the built binary run against it.
#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tessera_engine::tokens::{hotp_code, Algorithm};

/// The RFC 4226 test key ("12345678901234567890") and its first codes.
pub const RFC_KEY: &str = "3132333435363738393031323334353637383930";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

/// `extra` with `[auth] pin_min_length = 1`: these tests' tokens have PINs like `PIN` from
/// before the PIN rule (default 6); the rule itself is tested with the default config
/// (cli.rs `new_pins_follow_the_pin_rule_and_doctor_counts_older_ones`).
pub fn short_pins_allowed(extra: &str) -> String {
    if extra.contains("pin_min_length") {
        extra.to_string()
    } else if extra.contains("[auth]\n") {
        extra.replacen("[auth]\n", "[auth]\npin_min_length = 1\n", 1)
    } else {
        format!("{extra}\n[auth]\npin_min_length = 1\n")
    }
}

impl Env {
    /// A config pointing the store and key into a fresh directory; nothing created yet.
    pub fn new() -> Env {
        Env::with_config("")
    }

    pub fn with_config(extra: &str) -> Env {
        Env::with_exact_config(&short_pins_allowed(extra))
    }

    /// The store and key's lines and `extra`, nothing else: the defaults of the PIN rule.
    pub fn with_exact_config(extra: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("tessera.toml");
        let env = Env { dir, config };
        env.rewrite_config(extra);
        env
    }

    /// Replaces what follows the store and key's lines.
    pub fn rewrite_config(&self, extra: &str) {
        std::fs::write(
            &self.config,
            format!(
                "[store]\npath = \"{}\"\nkey_file = \"{}\"\n{extra}",
                self.path("db/tessera.db").display(),
                self.path("secret.key").display(),
            ),
        )
        .unwrap();
        std::fs::set_permissions(&self.config, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// An initialised store.
    pub fn init() -> Env {
        let env = Env::new();
        env.ok(&["init"]);
        env
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn run_with(&self, args: &[&str], stdin: &str, envs: &[(&str, &Path)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("TESSERA_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        self.run_with(args, stdin, &[])
    }

    /// Runs and insists on exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, "");
        assert_eq!(code(&out), 0, "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    /// `tessera check USER` with the answers on stdin; returns (exit code, stdout).
    pub fn check(&self, user: &str, answers: &str) -> (i32, String) {
        let out = self.run(&["check", user], answers);
        (code(&out), text(&out.stdout))
    }

    pub fn add_rfc_hotp(&self, serial: &str) {
        self.ok(&[
            "token", "add", "--user", "alice", "--type", "hotp", "--pin", "PIN", "--key", RFC_KEY,
            "--serial", serial,
        ]);
    }

    pub fn token_json(&self, serial: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["token", "show", serial, "--json"])).unwrap()
    }
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A failure or usage error: the given exit code and exactly one `tessera: ...` line on stderr.
pub fn assert_one_line_error(o: &Output, want: i32) -> String {
    let err = text(&o.stderr);
    assert_eq!(code(o), want, "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("tessera: "), "{err:?}");
    err
}

pub fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

pub fn hotp(key: &[u8], counter: u64) -> String {
    text(&hotp_code(Algorithm::Sha1, key, counter, 6))
}

pub fn oathtool(args: &[&str]) -> String {
    let out = Command::new("oathtool").args(args).output().unwrap();
    assert!(out.status.success(), "oathtool {args:?}");
    text(&out.stdout).trim().to_string()
}
