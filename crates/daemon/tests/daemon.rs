//! tesserad through its protocol: a real daemon process on a temporary socket (and `--stdio`),
//! a client that speaks the frames the module will speak, a real store. The accounts are those
//! of tests/nss (the cargo runner puts nss_wrapper under the test and the daemon it starts).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use tessera_proto::{read_frame, write_frame, Reply, Request, Verdict};
use zeroize::Zeroizing;

mod common;
use common::*;

/// A tesserad started the way systemd's socket activation starts it: a python3 wrapper
/// binds and listens on `socket`, puts it on fd 3, sets LISTEN_PID (its own pid, which
/// exec keeps) and LISTEN_FDS=1 and execs tesserad, whose own `--socket` names a path it
/// could not bind (under a file, which is no directory).
fn start_activated(w: &World, listen_pid: Option<&str>) -> Daemon {
    let socket = w.dir.path().join("activated.sock");
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(PY_ACTIVATE)
        .arg(&socket)
        .arg(listen_pid.unwrap_or("self"))
        .arg(env!("CARGO_BIN_EXE_tesserad"))
        .arg("--config")
        .arg(&w.config)
        .arg("--socket")
        .arg(w.config.join("tessera.sock"));
    Daemon::spawn(cmd, &socket)
}

#[test]
fn a_login_through_the_socket_pin_challenge_otp_and_no_replay() {
    let w = World::new("");
    let d = start(&w);
    let seen = dialogue(
        &mut d.connect(),
        login("alice"),
        &[b"1234", otp(0).as_bytes()],
    );
    assert_eq!(seen.verdict, Some(Verdict::Success), "{seen:?}");
    assert_eq!(seen.prompts, ["PIN: ", "Please enter your otp value: "]);
    assert!(
        seen.logs.iter().any(|l| l.starts_with("result=accept")),
        "{seen:?}"
    );
    // The same OTP again, in one pass.
    let seen = dialogue(
        &mut d.connect(),
        login("alice"),
        &[format!("1234{}", otp(0)).as_bytes()],
    );
    assert_eq!(seen.verdict, Some(Verdict::AuthErr), "{seen:?}");
    // An unknown user is prompted and refused like anyone.
    let seen = dialogue(&mut d.connect(), login("mallory"), &[b"1234000000"]);
    assert_eq!(seen.verdict, Some(Verdict::AuthErr));
    assert_eq!(seen.prompts, ["PIN: "]);
}

#[test]
fn stdio_serves_one_login() {
    let w = World::new("");
    let seen = stdio_login(&w);
    assert_eq!(seen.verdict, Some(Verdict::Success), "{seen:?}");
}

/// The files of the store's directory: each `owner`'s; their names.
fn store_files_of(w: &World, owner: u32) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut names = Vec::new();
    for e in std::fs::read_dir(w.db.parent().unwrap()).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        assert_eq!((m.uid(), m.gid()), (owner, owner), "{:?}", e.path());
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    names
}

/// `tesserad --stdio` spawned by a root login becomes the owner of the store's directory (the
/// package's _tessera) before it opens anything: the login works, and what SQLite creates
/// beside the store is that owner's. Needs root (as in CI).
#[test]
fn stdio_run_by_root_becomes_the_owner_of_the_store_directory() {
    if tessera_engine::os::sys::euid() != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    const OWNER: u32 = 4242;
    let w = store_owned_by(OWNER);

    let seen = stdio_login(&w);
    // As root the engine would refuse these files (owned by neither root nor the effective
    // uid): the login shows that tesserad became OWNER, and the caller is still root (the
    // uid that started it), who may ask for alice.
    assert_eq!(seen.verdict, Some(Verdict::Success), "{seen:?}");
    assert_eq!(
        store_files_of(&w, OWNER),
        ["tessera.db", "tessera.db-shm", "tessera.db-wal"]
    );
}

/// Started by hand, by an init script or a container's entrypoint as root, the socket server
/// makes the socket's directory (0755), binds, and serves as the owner of the store's
/// directory, as the package's unit runs it: the store and key are that user's.
#[test]
fn a_socket_server_started_by_root_makes_its_directory_and_serves_as_the_store_owner() {
    use std::os::unix::fs::PermissionsExt;
    if tessera_engine::os::sys::euid() != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    const OWNER: u32 = 4243;
    let w = store_owned_by(OWNER);
    let run_dir = w.dir.path().join("run/tessera");
    let d = Daemon::start(
        Path::new(env!("CARGO_BIN_EXE_tesserad")),
        &w.config,
        &run_dir.join("tessera.sock"),
    );
    // It binds as root, changes user, and only then says "listening on" (Daemon::start waits
    // for that).
    let mode = std::fs::metadata(&run_dir).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755);
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let ids = |key: &str| -> Vec<u32> {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        line.split_whitespace()
            .skip(1)
            .map(|n| n.parse().unwrap())
            .collect()
    };
    assert_eq!(
        ids("Uid:"),
        [OWNER; 4],
        "real, effective, saved, fs: {status}"
    );
    assert_eq!(ids("Gid:"), [OWNER; 4], "{status}");
    let seen = dialogue(
        &mut d.connect(),
        login("alice"),
        &[b"1234", otp(0).as_bytes()],
    );
    assert_eq!(seen.verdict, Some(Verdict::Success), "{seen:?}");
    assert_eq!(
        store_files_of(&w, OWNER),
        ["tessera.db", "tessera.db-shm", "tessera.db-wal"]
    );
}

/// As root without a config that loads, tesserad can't tell whose store it serves: it stays up
/// and fails each login closed with the config's error, and says a restart is needed.
#[test]
fn started_by_root_without_a_config_that_loads_it_fails_closed_and_says_so() {
    if tessera_engine::os::sys::euid() != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let w = World::new("");
    w.write_config("[auth]\nbogus = 1");
    let socket = w.dir.path().join("tessera.sock");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tesserad"));
    cmd.arg("--config")
        .arg(&w.config)
        .arg("--socket")
        .arg(&socket);
    let d = Daemon::spawn(cmd, &socket);
    let said = d.wait_for(&["started as root with a config that does not load"]);
    assert!(said.contains("restart"), "{said}");
    d.wait_for(&["listening on"]);
    let seen = dialogue(&mut d.connect(), login("alice"), &[b"1234"]);
    assert_eq!(seen.verdict, Some(Verdict::AuthinfoUnavail), "{seen:?}");
    assert!(seen.prompts.is_empty(), "{seen:?}");
    assert!(seen.logs.iter().any(|l| l.contains("bogus")), "{seen:?}");
}

/// `cmd` (a `tesserad --stdio`, or a wrapper that execs one) with its stdin and stdout as one
/// channel.
fn piped(mut cmd: Command) -> (std::process::Child, Pipes) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let io = Pipes {
        r: child.stdout.take().unwrap(),
        w: child.stdin.take().unwrap(),
    };
    (child, io)
}

/// alice's PIN+OTP login through `tesserad --stdio` on `w`'s config; the child must end well.
fn stdio_login(w: &World) -> Seen {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tesserad"));
    cmd.arg("--stdio").arg("--config").arg(&w.config);
    let (mut child, mut io) = piped(cmd);
    let seen = dialogue(
        &mut io,
        login("alice"),
        &[format!("1234{}", otp(0)).as_bytes()],
    );
    drop(io);
    assert!(child.wait().unwrap().success(), "{seen:?}");
    seen
}

/// Starts argv[2:] the way a careless caller would: argv[1] open on fd 7 without
/// FD_CLOEXEC, umask 000, SIGINT, SIGTERM, SIGHUP, SIGCHLD and SIGUSR1 ignored, SIGTERM,
/// SIGUSR2 and SIGALRM blocked (all of which exec keeps).
const PY_CARELESS: &str = r#"
import os, signal, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.dup2(fd, 7)  # inheritable
os.close(fd)
os.umask(0)
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1):
    signal.signal(s, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR2, signal.SIGALRM})
os.execvp(sys.argv[2], sys.argv[2:])
"#;

/// What a process inherited, as /proc shows it: its `Umask`, `SigIgn` (but the C library's own
/// signals) and `SigBlk` lines, and the descriptors open on `file`.
fn inherited(pid: u32, file: &Path) -> (String, String, String, Vec<String>) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .unwrap_or_else(|| panic!("no {name} in {status}"))
            .trim()
            .to_string()
    };
    let mut on_file = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let e = e.unwrap();
        if std::fs::read_link(e.path()).ok().as_deref() == Some(file) {
            on_file.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    // Signals 32 to 34 are the C library's (glibc: 32 and 33, musl: 32 to 34): its
    // sigaction refuses them, and glibc's posix_spawn (std's Command) leaves them ignored in
    // every child on purpose.
    let libc_own: u64 = 0b111 << 31;
    let ignored = u64::from_str_radix(&field("SigIgn"), 16).unwrap() & !libc_own;
    (
        field("Umask"),
        format!("{ignored:016x}"),
        field("SigBlk"),
        on_file,
    )
}

/// SigIgn with SIGPIPE (13) alone: the one signal tesserad keeps ignored.
const SIGPIPE_ONLY: &str = "0000000000001000";

/// `tesserad --stdio` as the module spawns it from a caller that left it an open descriptor,
/// umask 000, ignored and blocked signals: at its first prompt none of that is left, but
/// SIGPIPE ignored. The login then ends as usual.
#[test]
fn stdio_starts_without_what_its_caller_left_it() {
    let w = World::new("");
    let file = w.dir.path().join("inherited");
    std::fs::write(&file, b"not for tesserad").unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(PY_CARELESS)
        .arg(&file)
        .arg(env!("CARGO_BIN_EXE_tesserad"))
        .arg("--stdio")
        .arg("--config")
        .arg(&w.config);
    let (mut child, mut io) = piped(cmd);
    write_frame(&mut io, &Request::Authenticate(login("alice")).encode()).unwrap();
    // At the PIN prompt tesserad (python3 exec'ed it: the same pid) is well past its start.
    loop {
        match Reply::decode(&read_frame(&mut io).unwrap()).unwrap() {
            Reply::Prompt { .. } => break,
            Reply::Verdict(v) => panic!("no prompt: {v:?}"),
            _ => {}
        }
    }
    let (umask, ignored, blocked, on_file) = inherited(child.id(), &file);
    assert_eq!(umask, "0077");
    assert_eq!(ignored, SIGPIPE_ONLY, "SigIgn");
    assert_eq!(blocked, "0000000000000000", "SigBlk");
    assert!(on_file.is_empty(), "{file:?} still open on fds {on_file:?}");

    let pass = Zeroizing::new(format!("1234{}", otp(0)).into_bytes());
    write_frame(&mut io, &Request::Answer(Some(pass)).encode()).unwrap();
    let verdict = loop {
        if let Reply::Verdict(v) = Reply::decode(&read_frame(&mut io).unwrap()).unwrap() {
            break v;
        }
    };
    assert_eq!(verdict, Verdict::Success);
    drop(io);
    assert!(child.wait().unwrap().success());
}

/// The socket server started the same way under socket activation: what it inherited is
/// gone, but the socket systemd passed on fd 3, which it serves.
#[test]
fn an_activated_server_keeps_fd_3_and_drops_the_rest() {
    let w = World::new("");
    let file = w.dir.path().join("inherited");
    std::fs::write(&file, b"not for tesserad").unwrap();
    let socket = w.dir.path().join("activated.sock");
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(PY_CARELESS)
        .arg(&file)
        .arg("python3")
        .arg("-c")
        .arg(PY_ACTIVATE)
        .arg(&socket)
        .arg("self")
        .arg(env!("CARGO_BIN_EXE_tesserad"))
        .arg("--config")
        .arg(&w.config)
        .arg("--socket")
        .arg(w.config.join("tessera.sock"));
    let d = Daemon::spawn(cmd, &socket);
    d.wait_for(&["listening on"]);
    let (umask, ignored, blocked, on_file) = inherited(d.pid(), &file);
    assert_eq!(umask, "0077");
    assert_eq!(ignored, SIGPIPE_ONLY, "SigIgn");
    assert_eq!(blocked, "0000000000000000", "SigBlk");
    assert!(on_file.is_empty(), "{file:?} still open on fds {on_file:?}");
    let seen = dialogue(
        &mut d.connect(),
        login("alice"),
        &[format!("1234{}", otp(0)).as_bytes()],
    );
    assert_eq!(seen.verdict, Some(Verdict::Success), "{seen:?}");
    // A reload (SIGHUP, which the parent ignored too) still reloads and does not end it.
    d.reload();
    // SIGTERM, which the parent ignored, ends it as the default does: killed by the signal.
    let mut d = d;
    let killed = Command::new("kill")
        .args(["-TERM", &d.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(s) = d.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tesserad still runs 10 s after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(15), "{status:?}");
}

struct Pipes {
    r: std::process::ChildStdout,
    w: std::process::ChildStdin,
}

impl std::io::Read for Pipes {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        self.r.read(b)
    }
}

impl Write for Pipes {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.w.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

#[test]
fn garbage_silence_and_a_megabyte_answer_harm_no_other_login() {
    let w = World::new("");
    let d = start(&w);
    // A client that connects and says nothing holds only its own connection.
    let _silent = d.connect();
    // Garbage: a frame that is no message.
    let mut g = d.connect();
    g.write_all(&[0, 0, 0, 3, 0xde, 0xad, 0xbe]).unwrap();
    let body = read_frame(&mut g).unwrap();
    assert!(matches!(Reply::decode(&body).unwrap(), Reply::Log { .. }));
    let body = read_frame(&mut g).unwrap();
    assert_eq!(
        Reply::decode(&body).unwrap(),
        Reply::Verdict(Verdict::AuthinfoUnavail)
    );
    // A length prefix of 4 GiB.
    let mut g = d.connect();
    g.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut g, &mut rest);
    // The longest answer: refused as a wrong pass, the OTP after it still good.
    let huge = vec![b'1'; tessera_proto::MAX_ANSWER];
    let seen = dialogue(&mut d.connect(), login("alice"), &[&huge]);
    assert_eq!(seen.verdict, Some(Verdict::AuthErr), "{seen:?}");
    let seen = dialogue(
        &mut d.connect(),
        login("alice"),
        &[format!("1234{}", otp(0)).as_bytes()],
    );
    assert_eq!(seen.verdict, Some(Verdict::Success), "{seen:?}");
}

#[test]
fn sighup_reloads_the_config_for_the_next_login() {
    let w = World::new("");
    let d = start(&w);
    w.write_config("[prompts]\npin = \"Token PIN: \"\n");
    d.sighup();
    d.wait_for(&["config reloaded"]);
    let seen = dialogue(&mut d.connect(), login("alice"), &[b"0000"]);
    assert_eq!(seen.prompts, ["Token PIN: "], "{seen:?}");
}

/// A typo and SIGHUP: the daemon says loudly that the config was not reloaded and goes on
/// with the one it had (as sshd and nginx do; before, every login failed as unavailable until
/// the next good reload). The status (`tessera doctor`) warns with the reason and the metrics
/// say `tessera_config_loaded 0`, until a reload works. `tesserad --check-config` tells the
/// two configs apart beforehand.
#[test]
fn a_reload_whose_config_does_not_load_keeps_the_last_good_one() {
    let w = World::new("[prompts]\npin = \"Token PIN: \"\n");
    let d = start(&w);
    let check = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tesserad"))
            .args(["--check-config", "--config"])
            .arg(&w.config)
            .output()
            .unwrap()
    };
    let ok = check();
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("the config loads"));
    w.write_config("[prompts]\npin = \"Token PIN: \"\n[auth]\nmax_fial = 3\n");
    let bad = check();
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(
        said.contains("max_fial") && said.lines().count() == 1,
        "{said}"
    );
    d.sighup();
    let line = d.wait_for(&["config not reloaded"]);
    assert!(
        line.contains("ERROR") && line.contains("still serving") && line.contains("max_fial"),
        "{line}"
    );
    // Logins go on with the config loaded before.
    let ok = format!("1234{}", otp(0));
    let seen = dialogue(&mut d.connect(), login("alice"), &[ok.as_bytes()]);
    assert_eq!(seen.verdict, Some(Verdict::Success), "{seen:?}");
    assert_eq!(seen.prompts, ["Token PIN: "], "{seen:?}");
    let status = ask(&d, tessera_proto::Request::Status);
    assert!(
        status.iter().any(|l| l.starts_with("warn")
            && l.contains("did not reload")
            && l.contains("max_fial")),
        "{status:?}"
    );
    let metrics = ask(&d, tessera_proto::Request::Metrics);
    assert!(
        metrics.iter().any(|l| l == "tessera_config_loaded 0"),
        "{metrics:?}"
    );
    // Fixed and reloaded: all is well again.
    w.write_config("");
    d.reload();
    let metrics = ask(&d, tessera_proto::Request::Metrics);
    assert!(
        metrics.iter().any(|l| l == "tessera_config_loaded 1"),
        "{metrics:?}"
    );
    let seen = dialogue(&mut d.connect(), login("alice"), &[b"0000"]);
    assert_eq!(seen.prompts, ["PIN: "], "{seen:?}");
}

/// A status or metrics request's information lines.
fn ask(d: &Daemon, r: tessera_proto::Request) -> Vec<String> {
    let mut c = d.connect();
    write_frame(&mut c, &r.encode()).unwrap();
    let mut lines = Vec::new();
    loop {
        match Reply::decode(&read_frame(&mut c).unwrap()).unwrap() {
            Reply::Info(l) => lines.push(l),
            Reply::Verdict(_) => return lines,
            _ => {}
        }
    }
}

/// Who may ask: root for anyone; any other uid only for its own account (a screen locker).
/// Run as root (CI), the client runs as alice's uid (10001, tests/nss/passwd); run as another
/// user, that user asks for root's account.
#[test]
fn a_non_root_caller_may_ask_only_for_its_own_account() {
    let w = World::new("");
    // The daemon must be able to read the store when the test drops to alice below: the
    // directory and files stay the test's, and the daemon runs as the test's uid.
    let d = start(&w);
    let me = tessera_engine::os::sys::euid();
    if me == 0 {
        let ask = |user: &str, pass: &str| -> String {
            let out = Command::new("python3")
                .arg("-c")
                .arg(PY_CLIENT)
                .arg(&d.socket)
                .arg(user)
                .arg(pass)
                .uid(10001)
                .gid(10001)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let own = ask("alice", &format!("1234{}", otp(0)));
        assert!(
            own.contains("prompt PIN: ") && own.ends_with("verdict 0\n"),
            "{own}"
        );
        let other = ask("bob", "1234");
        assert!(
            !other.contains("prompt"),
            "refused before any prompt: {other}"
        );
        assert!(other.ends_with("verdict 1\n"), "{other}");
    } else {
        let seen = dialogue(&mut d.connect(), login("root"), &[b"1234"]);
        assert_eq!(seen.verdict, Some(Verdict::AuthErr));
        assert!(seen.prompts.is_empty(), "{seen:?}");
    }
    assert!(
        w.audit()
            .iter()
            .any(|e| e.result == "reject" && e.reason.contains("may only authenticate its own")),
        "audited: {:?}",
        w.audit()
    );
}

/// The protocol in Python, for a client under another uid: prints `prompt TEXT` per prompt
/// (answering the pass given), then `verdict N`.
/// A status request (`tessera doctor`) sent by a user who is neither root nor the daemon's:
/// refused with one log line and "unavailable", nothing of the daemon's state said.
#[test]
fn a_status_request_from_another_user_is_refused_and_says_nothing() {
    if tessera_engine::os::sys::euid() != 0 {
        eprintln!("skipped: needs root (to ask as alice)");
        return;
    }
    let w = World::new("");
    let d = start(&w);
    let out = Command::new("python3")
        .arg("-c")
        .arg(PY_STATUS)
        .arg(&d.socket)
        .uid(10001)
        .gid(10001)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    let tags: Vec<&str> = said.lines().collect();
    // Tags: 20 a log line, 21 the verdict (3: unavailable); no 17 (an information line).
    assert_eq!(
        tags,
        ["20", "21 3"],
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = dialogue(
        &mut d.connect(),
        login("alice"),
        &[b"1234", otp(0).as_bytes()],
    );
    assert_eq!(
        seen.verdict,
        Some(Verdict::Success),
        "the daemon goes on: {seen:?}"
    );
}

/// Sends a status request on argv[1]; prints each reply's tag (and a verdict's code).
const PY_STATUS: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(struct.pack(">I", 1) + bytes([4]))
def exact(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: sys.exit(0)
        b += c
    return b
while True:
    n = struct.unpack(">I", exact(4))[0]
    m = exact(n)
    print(f"{m[0]} {m[1]}" if m[0] == 21 else m[0], flush=True)
    if m[0] == 21: break
"#;

const PY_CLIENT: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
def frame(tag, body): s.sendall(struct.pack(">I", 1 + len(body)) + bytes([tag]) + body)
def field(b): return struct.pack(">I", len(b)) + b
def read():
    n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0]
    return s.recv(n, socket.MSG_WAITALL)
import os
login = struct.pack(">I", 4) + field(b"tessera-test") + field(b"") + field(sys.argv[2].encode())
login += b"\x00" + b"\x00" * 5 + b"\x00" + b"\x00" + field(b"") + field(b"")
login += struct.pack(">I", os.getuid())
frame(1, login)
while True:
    m = read()
    if m[0] == 16:
        print("prompt " + m[6:].decode()); frame(2, b"\x01" + field(sys.argv[3].encode()))
    elif m[0] == 21:
        print("verdict %d" % m[1]); break
"#;

/// Binds argv[1], listens, moves it to fd 3, sets LISTEN_FDS=1 and LISTEN_PID (argv[2]:
/// `self` for this pid, which exec keeps, else the value given) and execs argv[3:].
const PY_ACTIVATE: &str = r#"
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(16)
fd = s.detach()  # the socket may well be fd 3 already
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid()) if sys.argv[2] == "self" else sys.argv[2]
os.environ["LISTEN_FDNAMES"] = "tesserad.socket"
os.execv(sys.argv[3], sys.argv[3:])
"#;

#[test]
fn socket_activation_serves_the_socket_on_fd_3() {
    let w = World::new("");
    let d = start_activated(&w, None);
    let line = d.wait_for(&["listening on"]);
    assert!(line.contains("(socket activation)"), "{line}");
    assert!(line.contains("activated.sock"), "{line}");
    let seen = dialogue(
        &mut d.connect(),
        login("alice"),
        &[b"1234", otp(0).as_bytes()],
    );
    assert_eq!(seen.verdict, Some(Verdict::Success), "{seen:?}");
    // The listener stays: a second login on the same socket.
    let seen = dialogue(&mut d.connect(), login("alice"), &[b"1234000000"]);
    assert_eq!(seen.verdict, Some(Verdict::AuthErr), "{seen:?}");
}

#[test]
fn listen_fds_for_another_process_are_not_taken() {
    let w = World::new("");
    // LISTEN_PID of another process (pid 1): fd 3 is not ours, tesserad binds its --socket,
    // which here can't be bound.
    let mut d = start_activated(&w, Some("1"));
    let status = d.child.wait().unwrap();
    assert!(!status.success());
    let err = d.rest_of_stderr();
    assert!(
        err.iter().any(|l| l.contains("tessera.toml/tessera.sock")),
        "tesserad tried its own --socket: {err:?}"
    );
}

/// `config=` of the PAM line (per-service prompts, realms, otppin): honoured for a root
/// caller, ignored for any other, who gets the daemon's own config.
#[test]
fn a_config_named_by_the_caller_counts_only_for_root() {
    let w = World::new("");
    let d = start(&w);
    let other = w.dir.path().join("sudo.toml");
    let text = format!(
        "[store]\npath = {:?}\nkey_file = {:?}\n[prompts]\npin = \"sudo PIN: \"\n",
        w.db,
        w.dir.path().join("secret.key")
    );
    tessera_engine::os::fsperm::create_private_file(&other, text.as_bytes()).unwrap();
    let mut l = login("alice");
    l.config = Some(other.display().to_string());
    let seen = dialogue(&mut d.connect(), l, &[b"0000"]);
    let want = if tessera_engine::os::sys::euid() == 0 {
        "sudo PIN: "
    } else {
        "PIN: "
    };
    assert_eq!(seen.prompts, [want], "{seen:?}");
}
