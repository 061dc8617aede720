//! Shared support of the integration tests: fixtures built with the library API (store, key,
//! config, a PAM service directory) and a driver of the real libpam through
//! `pam_start_confdir`, with a scripted conversation that records every message.
//!
//! One rule follows from running the module inside the test process: the module and the test
//! each link their own copy of SQLite, and POSIX locks are per process, so the two copies must
//! never hold the store open at the same time. The helpers here open the store, do one thing and
//! close it again; tests that need a lock held elsewhere take it from another process.
#![allow(dead_code)] // each test crate uses a part of this module

use std::collections::VecDeque;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tessera_engine::crypto::{hash_pin, StoreKey};
use tessera_engine::store::{AuditEntry, ChallengeRecord, SqliteStore, TokenRecord};
use tessera_engine::tokens::{hotp_code, Algorithm, TokenType};

mod pam_wrapper;
pub use pam_wrapper::*;
pub use tessera_test_support::Daemon;
/// The privacyIDEA peer of `../shared` (remote_pi.rs).
pub mod pi;
/// Remote mode and the fake HTTP(S) server.
pub mod remote;

// ---- PAM constants (security/_pam_types.h) ----
pub const PAM_SUCCESS: i32 = 0;
pub const PAM_PERM_DENIED: i32 = 6;
pub const PAM_AUTH_ERR: i32 = 7;
pub const PAM_AUTHINFO_UNAVAIL: i32 = 9;
pub const PAM_MAXTRIES: i32 = 11;
pub const PAM_CONV_ERR: i32 = 19;
pub const PAM_IGNORE: i32 = 25;
pub const PAM_ABORT: i32 = 26;

pub const PAM_PROMPT_ECHO_OFF: i32 = 1;
pub const PAM_PROMPT_ECHO_ON: i32 = 2;
pub const PAM_ERROR_MSG: i32 = 3;
pub const PAM_TEXT_INFO: i32 = 4;

const PAM_RHOST: c_int = 4;
const PAM_RUSER: c_int = 8;

/// An earlier module that sets PAM_AUTHTOK (only modules may): pam_unix prompts "Password: "
/// for any user, keeps the answer as PAM_AUTHTOK, and fails for the test users, who have no
/// Unix account; `optional` leaves the decision to the modules after it.
pub const UNIX_FIRST: &str = "auth optional pam_unix.so nodelay";

/// The RFC 4226 test key, and others of the lengths RFC 6238 uses per hash.
/// KEY20 is also the key the test privacyIDEA gives alice's HOTP_ALICE.
pub const KEY20: &[u8] = b"12345678901234567890";
pub const KEY32: &[u8] = b"12345678901234567890123456789012";
pub const KEY64: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

/// The module under test: `$TESSERA_MODULE` (scripts/test.sh runs the libpam tests again on
/// the shipped build, `cargo module`), else the cdylib that `cargo test` built next to this test
/// executable (`target/debug/deps/`; `cargo build` also copies it to `target/debug/`, but
/// `cargo test` does not refresh that copy, so the one in `deps` comes first).
pub fn module_path() -> PathBuf {
    if let Some(m) = std::env::var_os("TESSERA_MODULE") {
        return PathBuf::from(m);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    let candidates = [
        deps.join("libpam_tessera.so"),
        deps.parent().expect("target dir").join("libpam_tessera.so"),
    ];
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| panic!("libpam_tessera.so not found next to {}", exe.display()))
}

/// A 6-digit HOTP value (SHA-1) of `key` at `counter`.
pub fn hotp(key: &[u8], counter: u64) -> String {
    String::from_utf8(hotp_code(Algorithm::Sha1, key, counter, 6).to_vec()).unwrap()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A target-directory binary of this build (`tesserad`, `tessera`), next to the `deps` folder
/// of this test executable: the workspace's `cargo test` builds them.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let target = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = target.join(name);
    assert!(bin.exists(), "{} not built (cargo build)", bin.display());
    bin
}

/// A PSKC file of RFC 6030's figures (`crates/import/tests/pskc`).
pub fn pskc_figure(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/import/tests/pskc")
        .join(name)
}

/// `tessera import` arguments of RFC 6030's figure 7 (PBKDF2, "qwerty") for alice, with its
/// password in the file `password`.
pub fn pskc_figure7_args(password: &Path) -> Vec<String> {
    vec![
        "--format".into(),
        "pskc".into(),
        "--user".into(),
        "alice".into(),
        "--password-file".into(),
        password.display().to_string(),
        pskc_figure("rfc6030-figure7.xml").display().to_string(),
    ]
}

/// The `tessera` command of this build on `config`, `stdin` as its input.
pub fn tessera(config: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut cmd = std::process::Command::new(bin_path("tessera"));
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("TESSERA_CONFIG");
    output_with_stdin(&mut cmd, stdin.as_bytes())
}

/// Runs `cmd` with `stdin` written to its standard input; its output.
pub fn output_with_stdin(cmd: &mut std::process::Command, stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// A token to put in the store.
#[derive(Clone)]
pub struct Tok {
    pub serial: String,
    pub user: String,
    pub realm: String,
    pub kind: TokenType,
    pub pin: Option<String>,
    pub key: Vec<u8>,
    pub digits: u32,
    pub algorithm: Algorithm,
    pub period: u64,
    pub counter: u64,
    pub active: bool,
    /// Type-specific settings (email, phone, ocra_suite, 4eyes).
    pub info: serde_json::Value,
}

impl Tok {
    pub fn new(kind: TokenType, serial: &str, user: &str, pin: &str, key: &[u8]) -> Tok {
        Tok {
            serial: serial.into(),
            user: user.into(),
            realm: "default".into(),
            kind,
            pin: Some(pin.into()),
            key: key.to_vec(),
            digits: 6,
            algorithm: Algorithm::Sha1,
            period: 30,
            counter: 0,
            active: true,
            info: serde_json::json!({}),
        }
    }
    pub fn hotp(serial: &str, user: &str, pin: &str) -> Tok {
        Tok::new(TokenType::Hotp, serial, user, pin, KEY20)
    }
    pub fn totp(serial: &str, user: &str, pin: &str) -> Tok {
        Tok::new(TokenType::Totp, serial, user, pin, KEY20)
    }
    pub fn spass(serial: &str, user: &str, pin: &str) -> Tok {
        Tok::new(TokenType::Spass, serial, user, pin, b"")
    }
    /// A `pw` token: the static password is the key, its length is kept in `digits`.
    pub fn pw(serial: &str, user: &str, pin: &str, password: &str) -> Tok {
        let mut t = Tok::new(TokenType::Pw, serial, user, pin, password.as_bytes());
        t.digits = password.len() as u32;
        t
    }
    /// A `tan` token of `count` recovery codes of 8 digits, as `tessera token add --type tan`
    /// makes it, and its codes.
    pub fn tan(serial: &str, user: &str, pin: &str, count: u32) -> (Tok, Vec<String>) {
        let g = tessera_engine::tokens::tan::new_codes(count, 8).unwrap();
        let codes = g
            .codes
            .iter()
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        let t = Tok::new(TokenType::Tan, serial, user, pin, &g.key)
            .digits(8)
            .info(serde_json::json!({ "count": count }));
        (t, codes)
    }
    pub fn key(mut self, key: &[u8]) -> Tok {
        self.key = key.to_vec();
        self
    }
    pub fn digits(mut self, d: u32) -> Tok {
        self.digits = d;
        self
    }
    pub fn algorithm(mut self, a: Algorithm) -> Tok {
        self.algorithm = a;
        self
    }
    pub fn period(mut self, p: u64) -> Tok {
        self.period = p;
        self
    }
    pub fn counter(mut self, c: u64) -> Tok {
        self.counter = c;
        self
    }
    pub fn no_pin(mut self) -> Tok {
        self.pin = None;
        self
    }
    pub fn info(mut self, info: serde_json::Value) -> Tok {
        self.info = info;
        self
    }
    pub fn realm(mut self, realm: &str) -> Tok {
        self.realm = realm.into();
        self
    }
    pub fn disabled(mut self) -> Tok {
        self.active = false;
        self
    }

    /// The HOTP value of this token at `counter`.
    pub fn hotp_at(&self, counter: u64) -> String {
        String::from_utf8(hotp_code(self.algorithm, &self.key, counter, self.digits).to_vec())
            .unwrap()
    }
}

/// A store, key, config and PAM service directory in a fresh temporary directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub db: PathBuf,
    pub key_file: PathBuf,
    pub services: PathBuf,
    /// The socket of this fixture's tesserad, named on the PAM line.
    pub socket: PathBuf,
    key: StoreKey,
    daemon: Option<Daemon>,
}

impl Fixture {
    /// `extra` is appended to the config right after the `[store]` keys `path` and `key_file`:
    /// lines before its first section header are more `[store]` keys.
    pub fn new(extra: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("tessera.toml");
        let db = dir.path().join("tessera.db");
        let key_file = dir.path().join("secret.key");
        let services = dir.path().join("pam.d");
        std::fs::create_dir(&services).unwrap();
        let key = StoreKey::generate();
        tessera_engine::os::fsperm::create_private_file(&key_file, key.to_hex().as_bytes())
            .unwrap();
        drop(SqliteStore::create(&db, 2000).unwrap());
        let socket = dir.path().join("tessera.sock");
        let mut fx = Fixture {
            dir,
            config,
            db,
            key_file,
            services,
            socket,
            key,
            daemon: None,
        };
        fx.write_config(extra);
        fx.daemon = Some(Daemon::start(&bin_path("tesserad"), &fx.config, &fx.socket));
        std::fs::write(fx.services.join("other"), "auth required pam_deny.so\n").unwrap();
        fx.set_stack(&[&fx.tessera_line("required", "")]);
        fx
    }

    /// (Re)writes the config, mode 0600.
    pub fn write_config(&self, extra: &str) {
        let text = format!(
            "[store]\npath = \"{}\"\nkey_file = \"{}\"\n{extra}\n",
            self.db.display(),
            self.key_file.display()
        );
        let _ = std::fs::remove_file(&self.config);
        tessera_engine::os::fsperm::create_private_file(&self.config, text.as_bytes()).unwrap();
        self.reload();
    }

    /// The pid of this fixture's tesserad.
    pub fn daemon_pid(&self) -> u32 {
        self.daemon.as_ref().map(Daemon::pid).unwrap_or(0)
    }

    /// Makes the daemon load the config again (SIGHUP) and waits until it has: after a test
    /// changed the config file, its mode or its place.
    pub fn reload(&self) {
        if let Some(d) = &self.daemon {
            d.reload();
        }
    }

    /// The `tessera` command on this fixture's config, `stdin` as its input (once the daemon
    /// has committed what it wrote behind its last reply).
    pub fn tessera(&self, args: &[&str], stdin: &str) -> std::process::Output {
        drop(self.store());
        tessera(&self.config, args, stdin)
    }

    /// The `auth` line of tessera with `control` and extra module arguments.
    pub fn tessera_line(&self, control: &str, args: &str) -> String {
        format!(
            "auth {control} {} socket={} config={} {args}",
            module_path().display(),
            self.socket.display(),
            self.config.display()
        )
    }

    /// Writes the service file `tessera-test` with these lines.
    pub fn set_stack(&self, lines: &[&str]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(self.services.join(SERVICE), text).unwrap();
    }

    /// The stack `auth required pam_tessera.so config=... ARGS`.
    pub fn set_args(&self, args: &str) {
        self.set_stack(&[&self.tessera_line("required", args)]);
    }

    /// Opens the store (every attempt the daemon answered is committed); drop it before the
    /// module runs (see the module comment).
    pub fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.db, 2000).unwrap()
    }

    pub fn add(&self, t: &Tok) {
        let rec = TokenRecord {
            active: t.active,
            pin_hash: t
                .pin
                .as_ref()
                .map(|p| hash_pin(p.as_bytes(), &self.key.pepper()).unwrap()),
            digits: t.digits,
            algorithm: t.algorithm,
            period: t.period,
            counter: t.counter,
            info: serde_json::from_value(t.info.clone()).expect("a TokenInfo"),
            created: now(),
            ..TokenRecord::new(
                &t.serial,
                &t.user,
                &t.realm,
                t.kind,
                self.key.seal(&t.serial, &t.key),
            )
        };
        self.store().insert_token(&rec).unwrap();
    }

    pub fn token(&self, serial: &str) -> TokenRecord {
        self.store().get_token(serial).unwrap()
    }

    pub fn audit(&self) -> Vec<AuditEntry> {
        self.store().audit_entries(None, 100_000).unwrap()
    }

    pub fn challenges(&self) -> Vec<ChallengeRecord> {
        self.store().list_challenges(true).unwrap()
    }

    pub fn set_active(&self, serial: &str, active: bool) {
        self.store().set_active(serial, active).unwrap()
    }

    /// A login through libpam to the service `tessera-test` of this fixture.
    pub fn login(&self, user: &str) -> PamLogin {
        PamLogin::new(&self.services, user.as_bytes())
    }

    pub fn login_raw(&self, user: &[u8]) -> PamLogin {
        PamLogin::new(&self.services, user)
    }
}

// ---- the conversation script ----

/// What the scripted user does when a prompt comes.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Answers these bytes.
    Text(Vec<u8>),
    /// Waits, then answers.
    After(Duration, Vec<u8>),
    /// Answers with a response whose text is NULL.
    Null,
    /// Returns PAM_SUCCESS but no response array at all.
    NoResponse,
    /// Returns PAM_CONV_ERR.
    ConvErr,
    /// Answers what the function makes of the prompt (e.g. an OTP read from a captured mail).
    Compute(Compute),
}

/// What a [`Compute`] reply runs: the prompt's text and every message of the dialogue so far
/// (information lines too) in, answer out.
pub type ComputeFn = dyn Fn(&str, &[Msg]) -> Vec<u8> + Send + Sync;

/// A function of the prompt (and what was shown before it) that gives the answer.
#[derive(Clone)]
pub struct Compute(pub std::sync::Arc<ComputeFn>);

impl std::fmt::Debug for Compute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Compute(..)")
    }
}

#[derive(Clone, Debug)]
struct Step {
    expect: String,
    reply: Reply,
}

/// One message the module sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub style: i32,
    pub text: String,
}

impl Msg {
    pub fn prompt(text: &str) -> Msg {
        Msg {
            style: PAM_PROMPT_ECHO_OFF,
            text: text.into(),
        }
    }
}

struct ConvState {
    steps: VecDeque<Step>,
    messages: Vec<Msg>,
    /// Prompts that the script did not expect (the test fails on these).
    unexpected: Vec<String>,
}

/// The outcome of one `pam_authenticate`.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub messages: Vec<Msg>,
}

impl Outcome {
    /// The texts of the prompts, in order.
    pub fn prompts(&self) -> Vec<&str> {
        self.messages
            .iter()
            .filter(|m| m.style == PAM_PROMPT_ECHO_OFF || m.style == PAM_PROMPT_ECHO_ON)
            .map(|m| m.text.as_str())
            .collect()
    }
}

/// Not prompted; told in one line that two-factor login is not available (the reason is the
/// admin's, in the log).
pub fn assert_told_unavailable(out: &Outcome, what: &str) {
    assert!(out.prompts().is_empty(), "{what}: not prompted: {out:?}");
    assert_eq!(out.messages.len(), 1, "{what}: one line: {out:?}");
    assert_eq!(out.messages[0].style, PAM_ERROR_MSG, "{what}: {out:?}");
    assert!(
        out.messages[0]
            .text
            .starts_with("two-factor login is not available on this host"),
        "{what}: {out:?}"
    );
}

pub struct PamLogin {
    confdir: PathBuf,
    service: String,
    /// `None` starts libpam without a user: the module asks for it (`pam_get_user`).
    user: Option<Vec<u8>>,
    rhost: Option<String>,
    ruser: Option<String>,
    steps: VecDeque<Step>,
    /// `pam_authenticate`'s flags.
    flags: c_int,
}

impl PamLogin {
    pub fn new(confdir: &Path, user: &[u8]) -> PamLogin {
        PamLogin {
            confdir: confdir.to_path_buf(),
            service: SERVICE.into(),
            user: Some(user.to_vec()),
            rhost: None,
            ruser: None,
            steps: VecDeque::new(),
            flags: 0,
        }
    }
    /// `pam_authenticate` with PAM_SILENT.
    pub fn silent(mut self) -> Self {
        self.flags |= 0x8000;
        self
    }
    /// Starts libpam with no user name, so that the module asks for one.
    pub fn without_user(mut self) -> Self {
        self.user = None;
        self
    }
    pub fn rhost(mut self, h: &str) -> Self {
        self.rhost = Some(h.into());
        self
    }
    /// PAM_RUSER, as `su` and `sudo` set it (the user who asks).
    pub fn ruser(mut self, u: &str) -> Self {
        self.ruser = Some(u.into());
        self
    }
    /// Expects a prompt containing `expect` and answers `answer`.
    pub fn answer(self, expect: &str, answer: &str) -> Self {
        self.reply(expect, Reply::Text(answer.as_bytes().to_vec()))
    }
    /// Expects a prompt containing `expect` and answers what `f` makes of the prompt.
    pub fn answer_with(
        self,
        expect: &str,
        f: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> Self {
        self.reply(
            expect,
            Reply::Compute(Compute(std::sync::Arc::new(move |p, _| f(p).into_bytes()))),
        )
    }
    /// Expects a prompt containing `expect` and answers what `f` makes of the messages shown
    /// so far (an enrollment's URI, say).
    pub fn answer_seeing(
        self,
        expect: &str,
        f: impl Fn(&[Msg]) -> String + Send + Sync + 'static,
    ) -> Self {
        self.reply(
            expect,
            Reply::Compute(Compute(std::sync::Arc::new(move |_, m| f(m).into_bytes()))),
        )
    }
    pub fn reply(mut self, expect: &str, reply: Reply) -> Self {
        self.steps.push_back(Step {
            expect: expect.into(),
            reply,
        });
        self
    }

    /// Runs `pam_start_confdir`, `pam_authenticate`, `pam_end`. Fails the test if a prompt
    /// came that the script did not expect, or a scripted prompt never came.
    pub fn run(self) -> Outcome {
        let (out, state) = self.run_raw();
        assert!(
            state.unexpected.is_empty(),
            "unexpected prompts {:?}; all messages {:?}",
            state.unexpected,
            out.messages
        );
        assert!(
            state.steps.is_empty(),
            "scripted prompts never came: {:?}; messages {:?}, code {}",
            state.steps,
            out.messages,
            out.code
        );
        out
    }

    fn run_raw(self) -> (Outcome, ConvState) {
        let mut state = Box::new(ConvState {
            steps: self.steps,
            messages: Vec::new(),
            unexpected: Vec::new(),
        });
        let conv = PamConv {
            conv: Some(converse),
            appdata_ptr: (&mut *state as *mut ConvState).cast(),
        };
        let service = CString::new(self.service).unwrap();
        let user = self.user.map(|u| CString::new(u).unwrap());
        let confdir = CString::new(self.confdir.as_os_str().as_encoded_bytes()).unwrap();
        let mut pamh: *mut c_void = std::ptr::null_mut();
        // SAFETY: all pointers are valid NUL-terminated strings or live structs for the call;
        // libpam copies service, user and confdir, and keeps `conv` by pointer, which lives
        // (with `state`) until after pam_end below.
        let rc = unsafe {
            pam_start_confdir(
                service.as_ptr(),
                user.as_ref().map_or(std::ptr::null(), |u| u.as_ptr()),
                &conv,
                confdir.as_ptr(),
                &mut pamh,
            )
        };
        assert_eq!(rc, PAM_SUCCESS, "pam_start_confdir");
        if let Some(rhost) = self.rhost {
            let v = CString::new(rhost).unwrap();
            // SAFETY: `pamh` is the live handle from pam_start_confdir; string items are
            // copied by libpam, so `v` may be dropped after the call.
            let rc = unsafe { pam_set_item(pamh, PAM_RHOST, v.as_ptr().cast()) };
            assert_eq!(rc, PAM_SUCCESS, "pam_set_item PAM_RHOST");
        }
        if let Some(ruser) = self.ruser {
            let v = CString::new(ruser).unwrap();
            // SAFETY: as for PAM_RHOST above.
            let rc = unsafe { pam_set_item(pamh, PAM_RUSER, v.as_ptr().cast()) };
            assert_eq!(rc, PAM_SUCCESS, "pam_set_item PAM_RUSER");
        }
        // SAFETY: `pamh` is live; the conversation it calls gets `state`, alive until the end.
        let code = unsafe { pam_authenticate(pamh, self.flags) };
        // SAFETY: ends the handle started above; it is not used after this.
        unsafe { pam_end(pamh, code) };
        let out = Outcome {
            code,
            messages: std::mem::take(&mut state.messages),
        };
        (out, *state)
    }
}

// ---- the FFI to libpam (the application side) ----

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn =
    extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int;

#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
extern "C" {
    fn pam_start_confdir(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        confdir: *const c_char,
        pamh: *mut *mut c_void,
    ) -> c_int;
    fn pam_authenticate(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
    fn pam_set_item(pamh: *mut c_void, item_type: c_int, item: *const c_void) -> c_int;
}

/// A copy of `bytes` in malloc'd memory, NUL-terminated, for libpam to free.
fn malloc_string(bytes: &[u8]) -> *mut c_char {
    // SAFETY: calloc of len+1 bytes; checked for NULL; the copy stays inside the allocation and
    // the last byte stays 0.
    unsafe {
        let p = libc::calloc(bytes.len() + 1, 1).cast::<u8>();
        assert!(!p.is_null());
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        p.cast()
    }
}

extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    // No panic may unwind into libpam.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: libpam passes `num_msg` valid message pointers (Linux-PAM layout: an array of
        // pointers), a valid `resp` out-pointer, and back the `appdata_ptr` we gave, which
        // points to the live `ConvState` of `run_raw`.
        unsafe { converse_inner(num_msg, msg, resp, &mut *appdata.cast::<ConvState>()) }
    }))
    .unwrap_or(PAM_CONV_ERR)
}

/// # Safety
/// As for `converse`.
unsafe fn converse_inner(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    state: &mut ConvState,
) -> c_int {
    let n = num_msg.max(0) as usize;
    // SAFETY: an array of n zeroed responses, freed by the module (or below on error).
    let replies =
        unsafe { libc::calloc(n.max(1), std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
    assert!(!replies.is_null());
    for i in 0..n {
        // SAFETY: i < num_msg; each message and its text are valid for this call.
        let (style, text) = unsafe {
            let m = &**msg.add(i);
            (
                m.msg_style,
                CStr::from_ptr(m.msg).to_string_lossy().into_owned(),
            )
        };
        state.messages.push(Msg {
            style,
            text: text.clone(),
        });
        if style != PAM_PROMPT_ECHO_OFF && style != PAM_PROMPT_ECHO_ON {
            continue;
        }
        let step = match state.steps.pop_front() {
            Some(s) if text.contains(&s.expect) => s,
            other => {
                state
                    .unexpected
                    .push(format!("{text:?} (script: {other:?})"));
                // SAFETY: frees what this call allocated; nothing was handed out yet.
                unsafe { free_replies(replies, n) };
                return PAM_CONV_ERR;
            }
        };
        let answer = match step.reply {
            Reply::Text(t) => t,
            Reply::After(d, t) => {
                std::thread::sleep(d);
                t
            }
            Reply::Compute(f) => (f.0)(&text, &state.messages),
            Reply::Null => continue,
            Reply::NoResponse => {
                // SAFETY: as above; `resp` is a valid out-pointer.
                unsafe {
                    free_replies(replies, n);
                    *resp = std::ptr::null_mut();
                }
                return PAM_SUCCESS;
            }
            Reply::ConvErr => {
                // SAFETY: as above.
                unsafe { free_replies(replies, n) };
                return PAM_CONV_ERR;
            }
        };
        // SAFETY: i < n, inside the array allocated above.
        unsafe { (*replies.add(i)).resp = malloc_string(&answer) };
    }
    // SAFETY: `resp` is a valid out-pointer; the module frees the array and the strings.
    unsafe { *resp = replies };
    PAM_SUCCESS
}

/// # Safety
/// `replies` is an array of `n` responses allocated by `converse_inner`, not handed out.
unsafe fn free_replies(replies: *mut PamResponse, n: usize) {
    for i in 0..n {
        // SAFETY: i < n; each resp is NULL or a string from malloc_string.
        unsafe { libc::free((*replies.add(i)).resp.cast()) };
    }
    // SAFETY: allocated by calloc in converse_inner.
    unsafe { libc::free(replies.cast()) };
}

// ---- other processes ----

/// Computes an OTP with oathtool (the reference implementation the engine is checked against).
pub fn oathtool(args: &[&str]) -> String {
    let out = std::process::Command::new("oathtool")
        .args(args)
        .output()
        .expect("oathtool (apt-get install oathtool)");
    assert!(out.status.success(), "oathtool {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub fn hex(b: &[u8]) -> String {
    tessera_engine::crypto::encode_hex(b)
}

/// Another process that holds the store's write lock (`BEGIN EXCLUSIVE`) until dropped.
pub struct LockHolder(std::process::Child);

impl LockHolder {
    pub fn new(db: &Path) -> LockHolder {
        use std::io::BufRead;
        let script = "import sqlite3, sys\n\
            c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
            c.execute('BEGIN EXCLUSIVE')\n\
            print('locked', flush=True)\n\
            sys.stdin.read()\n";
        let mut child = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(db)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
        LockHolder(child)
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// Runs `pamtester -v tessera-test USER authenticate` under pam_wrapper with this fixture's
/// service directory, feeding `lines` (one per prompt). Returns the exit status and stderr,
/// which holds the prompts and, at debug level, every line the module sent to syslog.
pub fn pamtester(fx: &Fixture, user: &str, lines: &[&str]) -> (std::process::ExitStatus, String) {
    pamtester_env(fx, user, lines, &[])
}

/// What a login by a setuid helper showed, and its PAM code.
#[derive(Debug)]
pub struct HelperLogin {
    pub code: i32,
    pub prompts: Vec<String>,
    pub messages: Vec<String>,
}

/// A login through real libpam (`pam_start_confdir` on the fixture's stack) by a process with
/// the effective uid root and the real uid `ruid`, as a setuid-root helper started by that
/// account runs (polkit-agent-helper-1, sudo, su): `tests/support/pam_as.py`. `items` are
/// PAM items (`ruser`, `rhost`, `tty`); each prompt gets the next of `answers`.
pub fn pam_as_setuid_helper(
    fx: &Fixture,
    ruid: u32,
    user: &str,
    items: &[(&str, &str)],
    answers: &[&str],
) -> HelperLogin {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/pam_as.py");
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(script)
        .arg(&fx.services)
        .arg(SERVICE)
        .arg(user)
        .arg(ruid.to_string());
    for (k, v) in items {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.arg("--").args(answers);
    let out = cmd.output().expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut seen = HelperLogin {
        code: -1,
        prompts: Vec::new(),
        messages: Vec::new(),
    };
    for line in stdout.lines() {
        if let Some(p) = line.strip_prefix("prompt ") {
            seen.prompts.push(p.to_string());
        } else if let Some(c) = line.strip_prefix("code ") {
            seen.code = c.parse().unwrap_or(-1);
        } else {
            seen.messages.push(line.to_string());
        }
    }
    assert!(
        seen.code >= 0,
        "pam_as.py: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    seen
}

/// A proxy that an attacker would run: it records every request and answers every one, proxied
/// or not, with privacyIDEA's "accepted" (a `CONNECT` with "established", then what comes
/// through the tunnel). A login that reaches it is a login the attacker decided. The fake HTTP
/// server of [`remote`].
pub struct FakeProxy(remote::Fake);

impl FakeProxy {
    pub fn start() -> FakeProxy {
        FakeProxy(remote::fake(|req, _| {
            if req.method == "CONNECT" {
                return remote::Act::Reply(200, String::new());
            }
            remote::json(
                200,
                r#"{"id":1,"jsonrpc":"2.0","result":{"status":true,"value":true},"detail":{"message":"matching 1 tokens"},"version":"privacyIDEA 3.14"}"#,
            )
        }))
    }

    pub fn url(&self) -> String {
        self.0.url()
    }

    /// The request line of each request that reached the proxy.
    pub fn seen(&self) -> Vec<String> {
        self.0.requests().into_iter().map(|r| r.line).collect()
    }

    /// Every variable through which a proxy can be named in the environment.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ]
        .into_iter()
        .map(|k| (k, self.url()))
        .collect()
    }
}

/// `pamtester` as [`pamtester`] runs it, with extra environment variables.
pub fn pamtester_env(
    fx: &Fixture,
    user: &str,
    lines: &[&str],
    env: &[(&str, String)],
) -> (std::process::ExitStatus, String) {
    let mut cmd = pamtester_command(&fx.services, user);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env("PAM_WRAPPER_DEBUGLEVEL", "2")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
    let out = run_pamtester(&mut cmd, lines);
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
