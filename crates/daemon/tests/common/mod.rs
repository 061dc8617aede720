//! What the daemon's tests share: a store with alice's HOTP token, a tesserad on it, and a
//! client that speaks the module's frames.
#![allow(dead_code)] // each test binary uses its part

use std::io::Write;
use std::path::{Path, PathBuf};
use tessera_engine::crypto::{hash_pin, StoreKey};
use tessera_engine::store::{SqliteStore, TokenRecord};
use tessera_engine::tokens::{hotp_code, Algorithm, TokenType};
use tessera_proto::{read_frame, write_frame, Login, Reply, Request, Verdict, VERSION};
use zeroize::Zeroizing;

pub use tessera_test_support::Daemon;

pub const KEY20: &[u8] = b"12345678901234567890";

pub fn otp(counter: u64) -> String {
    String::from_utf8(hotp_code(Algorithm::Sha1, KEY20, counter, 6).to_vec()).unwrap()
}

/// A store with one HOTP token (PIN 1234) for alice, and its config.
pub struct World {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub db: PathBuf,
}

impl World {
    pub fn new(extra: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tessera.db");
        let key_file = dir.path().join("secret.key");
        let key = StoreKey::generate();
        tessera_engine::os::fsperm::create_private_file(&key_file, key.to_hex().as_bytes())
            .unwrap();
        let store = SqliteStore::create(&db, 2000).unwrap();
        store
            .insert_token(&TokenRecord {
                pin_hash: Some(hash_pin(b"1234", &key.pepper()).unwrap()),
                ..TokenRecord::new(
                    "H1",
                    "alice",
                    "default",
                    TokenType::Hotp,
                    key.seal("H1", KEY20),
                )
            })
            .unwrap();
        drop(store);
        let config = dir.path().join("tessera.toml");
        let w = World { dir, config, db };
        w.write_config(extra);
        w
    }

    pub fn write_config(&self, extra: &str) {
        let text = format!(
            "[store]\npath = {:?}\nkey_file = {:?}\n{extra}\n",
            self.db,
            self.dir.path().join("secret.key")
        );
        let _ = std::fs::remove_file(&self.config);
        tessera_engine::os::fsperm::create_private_file(&self.config, text.as_bytes()).unwrap();
    }

    /// The audit rows (every attempt the daemon answered is committed).
    pub fn audit(&self) -> Vec<tessera_engine::store::AuditEntry> {
        let store = SqliteStore::open(&self.db, 2000).unwrap();
        store.audit_entries(None, 1000).unwrap()
    }
}

/// A tesserad on a socket of its own; its stderr lines are collected.
/// tesserad on the world's config and socket `tessera.sock`.
pub fn start(w: &World) -> Daemon {
    Daemon::start(
        Path::new(env!("CARGO_BIN_EXE_tesserad")),
        &w.config,
        &w.dir.path().join("tessera.sock"),
    )
}

pub fn login(user: &str) -> Login {
    Login {
        version: VERSION,
        service: "tessera-test".into(),
        rhost: "192.0.2.7".into(),
        user: user.as_bytes().to_vec(),
        ..Login::default()
    }
}

/// What one dialogue showed and how it ended.
#[derive(Debug, Default)]
pub struct Seen {
    pub prompts: Vec<String>,
    pub infos: Vec<String>,
    pub logs: Vec<String>,
    pub verdict: Option<Verdict>,
    /// The daemon said it was full.
    pub busy: bool,
}

/// Sends `l`, answers each prompt with the next of `answers`, reads to the verdict.
pub fn dialogue(conn: &mut (impl std::io::Read + Write), l: Login, answers: &[&[u8]]) -> Seen {
    write_frame(conn, &Request::Authenticate(l).encode()).unwrap();
    let mut answers = answers.iter();
    let mut seen = Seen::default();
    loop {
        let body = read_frame(conn).unwrap();
        match Reply::decode(&body).unwrap() {
            Reply::Prompt { text, .. } => {
                seen.prompts.push(text);
                let a = answers.next().map(|a| Zeroizing::new(a.to_vec()));
                write_frame(conn, &Request::Answer(a).encode()).unwrap();
            }
            Reply::Info(t) | Reply::Error(t) => seen.infos.push(t),
            Reply::Wait(_) => {}
            Reply::Log { line, .. } => seen.logs.push(line),
            Reply::Verdict(v) => {
                seen.verdict = Some(v);
                return seen;
            }
            Reply::Busy => {
                seen.busy = true;
                return seen;
            }
        }
    }
}

/// The world's store moved into a directory of its own that `owner` owns, with the key; the
/// config stays root's (read before the change of user), as the package has them.
pub fn store_owned_by(owner: u32) -> World {
    use std::os::unix::fs::{chown, PermissionsExt};
    let w = World::new("");
    let store_dir = w.dir.path().join("store");
    std::fs::create_dir(&store_dir).unwrap();
    std::fs::set_permissions(&store_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", w.db.display()));
        if from.exists() {
            std::fs::rename(&from, store_dir.join(format!("tessera.db{suffix}"))).unwrap();
        }
    }
    for p in std::fs::read_dir(&store_dir).unwrap() {
        chown(p.unwrap().path(), Some(owner), Some(owner)).unwrap();
    }
    chown(&store_dir, Some(owner), Some(owner)).unwrap();
    chown(w.dir.path().join("secret.key"), Some(owner), Some(owner)).unwrap();
    std::fs::set_permissions(w.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let w = World {
        db: store_dir.join("tessera.db"),
        ..w
    };
    w.write_config("");
    w
}
