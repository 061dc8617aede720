//! The socket server (kept threads that each accept and serve, the config swapped on SIGHUP) and
//! the one-login `--stdio` mode.

use crate::capacity::{Capacity, Full, Slot};

use crate::session::{self, Caller, Channel, Counters, WRITE_TIMEOUT};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tessera_engine::config::Config;
use tessera_engine::login::{Host, OneLogin};
use tessera_proto::{write_frame, Reply};

pub const DEFAULT_SOCKET: &str = "/run/tessera/tessera.sock";

/// The config as loaded, or why it could not be (each login then fails closed with that line,
/// and a fixed config is taken up on the next SIGHUP).
type Loaded = Result<Arc<Config>, String>;

/// What SIGHUP replaces: the config, and the host that keeps the store's connections and the
/// servers' HTTP agents for the logins under it (new CA files and settings take effect).
#[derive(Clone)]
struct Generation {
    config: Loaded,
    host: Arc<Host>,
}

impl Generation {
    fn load(path: &Path) -> Generation {
        Generation {
            config: load(path),
            host: Arc::default(),
        }
    }
}

fn load(path: &Path) -> Loaded {
    Config::load(path).map(Arc::new).map_err(|e| e.to_string())
}

/// A loaded config as a session takes it.
fn borrowed(l: &Loaded) -> Result<&Config, &str> {
    l.as_deref().map_err(String::as_str)
}

/// Serves the socket systemd passed (socket activation), or else binds `socket`, until killed.
pub fn listen(config: &Path, socket: &Path) -> Result<(), String> {
    // First, before the threads that serve logins run: it takes LISTEN_* out of the
    // environment. (The one thread before it, main's signal thread, reads no environment.)
    let activated = tessera_engine::os::sys::activated_listener()
        .map_err(|e| format!("socket activation: {e}"))?;
    let current = Arc::new(RwLock::new(Generation::load(config)));
    if let Ok(Generation { config: Err(e), .. }) = current.read().as_deref() {
        crate::say!("tesserad: {e} (logins fail until it is fixed and tesserad gets SIGHUP)");
    }
    let (listener, listening) = match activated {
        Some(l) => {
            let path = l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(Path::to_path_buf));
            let shown = path.as_deref().unwrap_or(Path::new("(unnamed)")).display();
            let said = format!("tesserad: listening on {shown} (socket activation)");
            (l, said)
        }
        None => (
            bind(socket)?,
            format!("tesserad: listening on {}", socket.display()),
        ),
    };
    serve_as_store_owner(&current)?;
    let capacity = Arc::new(Capacity::default());
    let counters = Counters {
        capacity: Some(Arc::clone(&capacity)),
        ..Counters::default()
    };
    reload_on_sighup(
        config.to_path_buf(),
        current.clone(),
        Arc::clone(&counters.failed_reload),
    )?;
    // Said once everything is set up (its user, the SIGHUP thread): what comes next is logins.
    crate::say!("{listening}");
    // Who asks is known before anything is read: a place is counted against the caller's uid
    // (see `capacity`), and a caller without one is refused at once.
    let admit = move |mut stream: UnixStream| {
        let uid = tessera_engine::os::sys::peer_uid(&stream).ok()?;
        match capacity.take(uid) {
            Ok(slot) => Some((stream, uid, slot)),
            Err(full) => {
                refuse_full(&mut stream, full);
                None
            }
        }
    };
    // The slot is given back when the login ends, however it ends (a panic too).
    let serve = move |(mut stream, uid, _slot): (UnixStream, u32, Slot)| {
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let generation = current
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        // A root caller's PAM line may name its own config (per-service prompts, realms,
        // otppin), as the in-process module allowed; root can read any config anyway. Any
        // other caller gets the daemon's.
        let caller = Caller {
            uid,
            may_choose_config: uid == 0,
        };
        let cfg = borrowed(&generation.config);
        if let Err(e) = session::serve(&mut stream, &caller, cfg, &*generation.host, &counters) {
            crate::say!("tesserad: a session of uid {uid} ended early: {e}");
        }
    };
    crate::acceptors::serve(listener, admit, serve).map_err(|e| format!("the socket: {e}"))
}

/// Started as root (by hand, an init script, a container's entrypoint) with the socket bound,
/// tesserad becomes the owner of the store's directory before it opens anything, as the
/// package's unit starts it (`User=_tessera`): the store, its `-wal` and `-shm` and the key are
/// that user's, and a daemon running as root could open none of them. A store in a directory
/// of root's (root's own store) is served as root. As root without a config that loads, it
/// can't tell whose store it serves: it stays root and fails every login closed with the
/// config's error (as any daemon with a broken config does), and says that a restart is needed
/// once the config is fixed.
fn serve_as_store_owner(current: &RwLock<Generation>) -> Result<(), String> {
    if tessera_engine::os::sys::euid() != 0 {
        return Ok(());
    }
    let store = match current.read().as_deref() {
        Ok(Generation { config: Ok(c), .. }) => c.store.path.clone(),
        Ok(Generation { config: Err(_), .. }) => {
            crate::say!(
                "tesserad: started as root with a config that does not load: it can't tell \
                 whose store it serves, so it stays root and fails every login; fix the \
                 config and restart it (a reload keeps it root)"
            );
            return Ok(());
        }
        Err(_) => return Err("the config lock is poisoned".into()),
    };
    match tessera_engine::os::sys::become_store_owner(&store) {
        Ok(Some(uid)) => {
            crate::say!(
                "tesserad: serving as uid {uid}, the owner of {}",
                store.parent().unwrap_or(Path::new(".")).display()
            );
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Says "busy" to a connection that gets no place, without reading from it, and without ever
/// blocking the loop that accepts (the socket is made non-blocking: two short frames fit any
/// socket buffer, and if they don't the caller just sees the connection close).
fn refuse_full(stream: &mut UnixStream, full: Full) {
    let _ = stream.set_nonblocking(true);
    let mut out = Reply::Log {
        priority: 4,
        line: format!("tesserad is full: {full}"),
    }
    .encode();
    out.extend_from_slice(&Reply::Busy.encode());
    let _ = write_frame(stream, &out);
}

/// Binds the socket: a stale socket file (no daemon answers on it) is replaced, a live one is
/// an error (two daemons must not share a store's socket). Anyone may connect; who may ask for
/// what is decided per connection from the peer's uid.
fn bind(socket: &Path) -> Result<UnixListener, String> {
    let shown = socket.display();
    if let Ok(meta) = std::fs::symlink_metadata(socket) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(format!("{shown} exists and is not a socket"));
        }
        if UnixStream::connect(socket).is_ok() {
            return Err(format!("{shown}: another tesserad is listening there"));
        }
        std::fs::remove_file(socket).map_err(|e| format!("{shown}: {e}"))?;
    }
    // The socket's directory (/run/tessera) is made if it is missing: /run is emptied at boot,
    // and without systemd's RuntimeDirectory nobody else makes it. Open to all (0755), like the
    // socket, whose callers are told apart by their uid.
    if let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .and_then(|()| {
                    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                })
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
    }
    let listener = UnixListener::bind(socket).map_err(|e| format!("{shown}: {e}"))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666))
        .map_err(|e| format!("{shown}: {e}"))?;
    Ok(listener)
}

/// A thread that waits for SIGHUP and loads the config again; logins already running keep the
/// config they started with. A config that does not load leaves the one serving in place, as
/// sshd and nginx do (a typo must not lock every login out); the daemon says so loudly, and
/// `tessera doctor` and `tessera_config_loaded 0` show it until a reload works. (One that
/// fails at the start fails closed: there is nothing to keep.)
fn reload_on_sighup(
    path: std::path::PathBuf,
    current: Arc<RwLock<Generation>>,
    failed: Arc<std::sync::Mutex<Option<String>>>,
) -> Result<(), String> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
        .map_err(|e| format!("SIGHUP: {e}"))?;
    std::thread::spawn(move || {
        for _ in signals.forever() {
            let loaded = Generation::load(&path);
            let mut failed = failed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut current = current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match (&loaded.config, current.config.is_ok()) {
                (Err(e), true) => {
                    crate::say!(
                        "tesserad: ERROR: config not reloaded, still serving with the config \
                         loaded before: {e} (check a config with tesserad --check-config before \
                         a reload)"
                    );
                    *failed = Some(e.clone());
                }
                // Swapped before it is said, so that a login after the line gets the new
                // config. (A daemon that started without a config that loads takes any: the
                // error of the new one is as good as the old.)
                (Err(e), false) => {
                    *current = loaded.clone();
                    crate::say!("tesserad: config not reloaded: {e}");
                }
                (Ok(_), _) => {
                    *current = loaded.clone();
                    *failed = None;
                    crate::say!("tesserad: config reloaded from {}", path.display());
                }
            }
        }
    });
    Ok(())
}

/// One login over stdin/stdout, for a module that found no socket (`tesserad --stdio`). Run by
/// root, it first becomes the owner of the store's directory, so that what it creates (the
/// WAL, `-shm`) stays the daemon's.
pub fn stdio(config: &Path) -> Result<(), String> {
    let cfg = load(config);
    // Who started this process, taken before it may change its user below.
    let invoker = tessera_engine::os::sys::uid();
    if let Ok(c) = &cfg {
        tessera_engine::os::sys::become_store_owner(&c.store.path).map_err(|e| e.to_string())?;
    }
    let stdin = std::io::stdin();
    let fd = std::os::fd::AsFd::as_fd(&stdin)
        .try_clone_to_owned()
        .map_err(|e| format!("stdin: {e}"))?;
    let sock = UnixStream::from(fd);
    let cfg_ref = borrowed(&cfg);
    let result = match tessera_engine::os::sys::peer_uid(&sock) {
        // A socketpair from the module: the peer is the calling process.
        Ok(uid) => {
            let mut sock = sock;
            let caller = Caller {
                uid,
                may_choose_config: true,
            };
            session::serve(&mut sock, &caller, cfg_ref, &OneLogin, &Counters::default())
        }
        // Pipes (a test, a shell): the caller is whoever started this process.
        Err(_) => {
            let caller = Caller {
                uid: invoker,
                may_choose_config: true,
            };
            session::serve(
                &mut Stdio,
                &caller,
                cfg_ref,
                &OneLogin,
                &Counters::default(),
            )
        }
    };
    result.map_err(|e| e.to_string())
}

/// stdin and stdout as one channel.
struct Stdio;

impl Read for Stdio {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::io::stdin().lock().read(buf)
    }
}

impl Write for Stdio {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stdout().lock().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().lock().flush()
    }
}

impl Channel for Stdio {
    /// Pipes have no timeout: the module's deadline (it kills the child) bounds the login.
    fn set_read_timeout(&self, _t: Duration) {}
}
