//! The operating-system calls that std does not offer, each behind a plain function: account
//! lookups (NSS), who is at the other end of a socket, inotify, opening a file in a directory
//! held open (`openat`), the file system a file is on (`fstatfs`), the user and file-system
//! ids (becoming the store's owner, reading as another user), the socket systemd passed, and a
//! clean start for a daemon (umask, signals, inherited descriptors, its stderr).
//!
//! No `unsafe` here: the calls go through `nix` (and `listenfd`, `signal-hook`), so the only
//! `unsafe` of tessera is the PAM module's own FFI (`src/ffi/`). nix rather than rustix:
//! rustix has no NSS lookups at all (`getpwnam_r`, `getgrouplist`, `getgrgid_r` are libc's,
//! not system calls) and keeps `setuid`/`setgroups` behind its `thread` module as raw,
//! per-thread system calls, where a process-wide change through libc is what is wanted; nix
//! has all of them as safe functions, built on the `libc` crate we already link, with the
//! features picked below (user, socket, fs, inotify, signal, process).

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags};
pub use nix::sys::inotify::{Inotify, InotifyEvent, WatchDescriptor};
use nix::sys::socket::{getsockopt, setsockopt, sockopt};
use nix::unistd::{self, Gid, Group, Uid, User};
use std::ffi::CString;

/// The signals the hosts keep from [`undo_ignored_signals`].
pub use libc::{SIGHUP, SIGPIPE};
use std::path::Path;

/// The account name NSS gives for `name` (`getpwnam_r`'s `pw_name`): the canonical spelling,
/// which differs from the name typed where NSS matches loosely (SSSD and AD are
/// case-insensitive, and may take `user@domain`). `None`: no such account, or a lookup error
/// (which must look the same: an unknown user).
pub fn account_name(name: &str) -> Option<String> {
    account(name).map(|a| a.name)
}

/// The names of the groups `user` is in, its primary group first (`getgrouplist`, then
/// `getgrgid_r` for each): `[[policy]] group`. Empty for no such account or a lookup error.
pub fn group_names(user: &str) -> Vec<String> {
    let Some(acct) = account(user) else {
        return Vec::new();
    };
    let Ok(c_user) = CString::new(user) else {
        return Vec::new();
    };
    let Ok(gids) = nss(|| unistd::getgrouplist(&c_user, Gid::from_raw(acct.gid))) else {
        return Vec::new();
    };
    gids.into_iter()
        .filter_map(|g| nss(|| Group::from_gid(g)).ok().flatten())
        .filter_map(|g| valid_name(g.name))
        .collect()
}

/// The members of the group `name` as NSS lists them (`getgrnam_r`'s `gr_mem`: `getent group
/// NAME`); `None` for no such group. Accounts whose primary group it is are not listed there.
pub fn group_members(name: &str) -> Option<Vec<String>> {
    let g = nss(|| Group::from_name(name)).ok().flatten()?;
    Some(g.mem.into_iter().filter_map(valid_name).collect())
}

/// Runs one NSS lookup; one at a time while cwrap's nss_wrapper is loaded (the tests' and
/// benches' accounts, `tests/nss/run`). nss_wrapper 1.1.12 keeps its user and group lists
/// without locks: threads that look up at once read a list another is reloading (a crash
/// of tesserad in a bench: a use after free in `getpwnam_r`) and share one position in
/// `getgrouplist` (groups missing or twice). glibc's own lookups, SSSD's and LDAP's are
/// thread-safe and stay parallel: a slow directory must not make every login wait.
fn nss<T>(lookup: impl FnOnce() -> T) -> T {
    static WRAPPED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let wrapped = *WRAPPED.get_or_init(|| {
        std::fs::read_to_string("/proc/self/maps").is_ok_and(|m| m.contains("libnss_wrapper"))
    });
    if !wrapped {
        return lookup();
    }
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    lookup()
}

/// An account of this host, as NSS has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The canonical name (`pw_name`).
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl Account {
    fn of(u: User) -> Option<Account> {
        Some(Account {
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            name: valid_name(u.name)?,
        })
    }
}

/// A name NSS gave, if it is one: nix turns a name that is not UTF-8 into one with U+FFFD in
/// place of the odd bytes, and two such accounts would then share one name (and one set of
/// tokens). Such names, and empty ones, are no account for tessera.
fn valid_name(name: String) -> Option<String> {
    (!name.is_empty() && !name.contains(char::REPLACEMENT_CHARACTER)).then_some(name)
}

/// The account `name` stands for (`getpwnam_r`); see [`account_name`]. A name with a NUL byte
/// is none.
pub fn account(name: &str) -> Option<Account> {
    nss(|| User::from_name(name))
        .ok()
        .flatten()
        .and_then(Account::of)
}

/// The account with the user id `uid` (`getpwuid_r`): the owner of a file, by name.
pub fn account_of_uid(uid: u32) -> Option<Account> {
    nss(|| User::from_uid(Uid::from_raw(uid)))
        .ok()
        .flatten()
        .and_then(Account::of)
}

/// Who is at the other end of a Unix socket (`SO_PEERCRED`): the process's uid, as the kernel
/// recorded it at connect time (not forgeable by the peer).
pub fn peer_uid(sock: &impl std::os::fd::AsFd) -> std::io::Result<u32> {
    let cred = getsockopt(sock, sockopt::PeerCredentials).map_err(io)?;
    Ok(cred.uid())
}

/// A new inotify instance, non-blocking and close-on-exec (see `crate::os::watch`).
pub fn inotify_new() -> std::io::Result<Inotify> {
    Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).map_err(io)
}

/// Watches `path` (not following a link at its end) for the events of `mask` (`IN_*` bits).
pub fn inotify_watch(fd: &Inotify, path: &Path, mask: u32) -> std::io::Result<WatchDescriptor> {
    let flags = AddWatchFlags::from_bits_truncate(mask) | AddWatchFlags::IN_DONT_FOLLOW;
    fd.add_watch(path, flags).map_err(io)
}

/// The events queued on the inotify instance, all of them (reads until EAGAIN); none when
/// nothing happened.
pub fn inotify_events(fd: &Inotify) -> std::io::Result<Vec<InotifyEvent>> {
    let mut all = Vec::new();
    loop {
        match fd.read_events() {
            Ok(events) if events.is_empty() => return Ok(all),
            Ok(mut events) => all.append(&mut events),
            Err(Errno::EAGAIN) => return Ok(all),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(io(e)),
        }
    }
}

/// How long `accept(2)` on `listener` waits before it fails with `WouldBlock`
/// (`SO_RCVTIMEO`): a thread that waits for connections can then end when it is not needed.
pub fn set_accept_timeout(
    listener: &impl std::os::fd::AsFd,
    wait: std::time::Duration,
) -> std::io::Result<()> {
    let tv = nix::sys::time::TimeVal::from(libc::timeval {
        tv_sec: wait.as_secs().try_into().unwrap_or(libc::time_t::MAX),
        tv_usec: wait.subsec_micros().into(),
    });
    setsockopt(listener, sockopt::ReceiveTimeout, &tv).map_err(io)
}

/// The listening socket systemd passed by socket activation (`sd_listen_fds(3)`), as a
/// `UnixListener`, taken by the `listenfd` crate: `Ok(None)` when this process was not socket
/// activated (no `LISTEN_FDS`, or a `LISTEN_PID` that is not its pid); an error when it was but
/// the passed descriptors are not exactly one listening Unix stream socket. listenfd checks the
/// socket's family and type, marks it close-on-exec (children we start must not inherit it)
/// and takes `LISTEN_PID` and `LISTEN_FDS` out of the environment; whether it listens is
/// checked here. It takes the descriptor at most once per process.
///
/// Call it early, before other threads run (the environment is changed).
pub fn activated_listener() -> std::io::Result<Option<std::os::unix::net::UnixListener>> {
    let fds = std::env::var("LISTEN_FDS").ok();
    // listenfd also takes a passed socket without LISTEN_PID (for proxies such as
    // systemfd); tesserad does not: the descriptors must be passed to this very process.
    let ours = std::env::var("LISTEN_PID").ok().as_deref().map(str::trim)
        == Some(&std::process::id().to_string());
    // listenfd would also take the descriptors from another number than 3 if told so; the
    // descriptors main keeps open are 3 and up (SD_LISTEN_FDS_START), so that is where they are.
    std::env::remove_var("LISTEN_FDS_FIRST_FD");
    let mut passed = listenfd::ListenFd::from_env();
    std::env::remove_var("LISTEN_FDNAMES");
    if !ours || fds.is_none() {
        return Ok(None);
    }
    if passed.len() != 1 {
        return Err(std::io::Error::other(format!(
            "socket activation passed LISTEN_FDS={} descriptors; exactly 1 is supported",
            fds.as_deref().unwrap_or("(unset)")
        )));
    }
    let Some(listener) = passed.take_unix_listener(0)? else {
        return Ok(None);
    };
    if !getsockopt(&listener, sockopt::AcceptConn).map_err(io)? {
        return Err(std::io::Error::other(
            "socket activation: fd 3 is not a listening Unix stream socket",
        ));
    }
    Ok(Some(listener))
}

/// Opens `name`, one component of a path (no `/`), in the directory `dir` (`openat(2)`), with
/// `flags` (`O_RDONLY` and the caller's `O_NOFOLLOW`, `O_NONBLOCK`, ...): the file is looked up in
/// the very directory that `dir` holds open, whatever its path names by now.
pub fn open_at(
    dir: &std::fs::File,
    name: &std::ffi::OsStr,
    flags: libc::c_int,
) -> std::io::Result<std::fs::File> {
    use nix::fcntl::OFlag;
    use std::os::unix::ffi::OsStrExt;
    if name.as_bytes().contains(&b'/') {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    // No O_CREAT: the mode is not used.
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(dir, name, flags, nix::sys::stat::Mode::empty()).map_err(io)?;
    Ok(std::fs::File::from(fd))
}

/// The type of the file system an open file is on (`fstatfs(2)`'s `f_type`): the kernel's magic
/// number of that file system (`PROC_SUPER_MAGIC`, ...; `linux/magic.h`), in 32 bits.
pub fn fs_magic(file: &std::fs::File) -> std::io::Result<u32> {
    let st = nix::sys::statfs::fstatfs(file).map_err(io)?;
    // The magic numbers are 32-bit values; f_type is a signed word that may carry them
    // sign-extended (BPF_FS_MAGIC, 0xcafe4a11): the low 32 bits are the number.
    Ok(st.filesystem_type().0 as u32)
}

/// Runs `f` with the file-system user and group ids `uid` and `gid` of this thread
/// (`setfsuid(2)`, `setfsgid(2)`), then puts root's back: the kernel checks every file access
/// of `f` as that user would be checked, and a file-system uid other than 0 also leaves
/// root's capabilities to override file modes (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, ...) out
/// of use meanwhile. The real, effective and saved ids stay root's, so the user can neither
/// signal nor trace this process. For a process whose effective uid is 0 only.
pub fn with_fs_ids<T>(uid: u32, gid: u32, f: impl FnOnce() -> T) -> std::io::Result<T> {
    use unistd::{setfsgid, setfsuid};
    // (uid_t)-1 changes nothing: the call only returns the current id.
    let query_uid = || setfsuid(Uid::from_raw(u32::MAX)).as_raw();
    let query_gid = || setfsgid(Gid::from_raw(u32::MAX)).as_raw();
    if euid() != 0 {
        return Err(std::io::Error::from_raw_os_error(libc::EPERM));
    }
    // An id the kernel refuses leaves the current one in place, which the queries find out.
    let old_gid = setfsgid(Gid::from_raw(gid)).as_raw();
    let old_uid = setfsuid(Uid::from_raw(uid)).as_raw();
    let took = query_gid() == gid && query_uid() == uid;
    let out = took.then(f);
    // Back in the opposite order: the uid first, so that root's capabilities return before
    // the group changes.
    setfsuid(Uid::from_raw(old_uid));
    setfsgid(Gid::from_raw(old_gid));
    if query_uid() != old_uid || query_gid() != old_gid {
        return Err(std::io::Error::other(format!(
            "can't take back the file-system ids {old_uid}:{old_gid} after using {uid}:{gid}"
        )));
    }
    out.ok_or_else(|| std::io::Error::other(format!("can't take the file-system ids {uid}:{gid}")))
}

/// The real user id of this process.
/// Whether `ip` is an address of one of this host's interfaces (`getifaddrs`). A host whose
/// interfaces can't be listed has none but loopback. The list is kept for a few seconds: a
/// login from a remote address asks, and listing the interfaces (a netlink dump) costs more
/// than the rest of a refused attempt.
pub fn is_own_address(ip: std::net::IpAddr) -> bool {
    use std::sync::{Mutex, PoisonError};
    type Kept = Option<(std::time::Instant, Vec<std::net::IpAddr>)>;
    static KEPT: Mutex<Kept> = Mutex::new(None);
    const FRESH: std::time::Duration = std::time::Duration::from_secs(5);
    let now = crate::os::io_time::now();
    let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
    let stale = !kept
        .as_ref()
        .is_some_and(|(at, _)| now.saturating_duration_since(*at) <= FRESH);
    if stale {
        let addrs = nix::ifaddrs::getifaddrs()
            .map(|all| {
                all.filter_map(|a| a.address)
                    .filter_map(|a| {
                        a.as_sockaddr_in()
                            .map(|v4| std::net::IpAddr::V4(v4.ip()))
                            .or_else(|| a.as_sockaddr_in6().map(|v6| std::net::IpAddr::V6(v6.ip())))
                    })
                    .collect()
            })
            .unwrap_or_default();
        *kept = Some((now, addrs));
    }
    kept.as_ref().is_some_and(|(_, addrs)| addrs.contains(&ip))
}

/// The memory this process may use, from its control group (cgroup v2's `memory.max`, v1's
/// `memory.limit_in_bytes`); `None` where there is no limit or none can be read.
pub fn memory_limit() -> Option<u64> {
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in groups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let files = if controllers.is_empty() {
            vec![
                format!("/sys/fs/cgroup{path}/memory.max"),
                format!("/sys/fs/cgroup/unified{path}/memory.max"),
            ]
        } else if controllers.split(',').any(|c| c == "memory") {
            vec![format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")]
        } else {
            continue;
        };
        for f in files {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            // "max", or v1's way of saying no limit (a page-rounded i64::MAX).
            match text.trim().parse::<u64>() {
                Ok(n) if n < 1 << 60 => return Some(n),
                _ => {}
            }
        }
    }
    None
}

/// Whether this process may write `path` (`faccessat` with the effective ids): refused for a
/// file marked immutable even to root, and on a read-only mount. Nothing is opened (closing a
/// descriptor of a file would drop the process's POSIX locks on it: SQLite's).
pub fn may_write(path: &Path) -> std::io::Result<()> {
    unistd::faccessat(
        nix::fcntl::AT_FDCWD,
        path,
        unistd::AccessFlags::W_OK,
        nix::fcntl::AtFlags::AT_EACCESS,
    )
    .map_err(io)
}

pub fn uid() -> u32 {
    unistd::getuid().as_raw()
}

/// The effective user id of this process.
pub fn euid() -> u32 {
    unistd::geteuid().as_raw()
}

/// Gives up root for good: no supplementary groups, then `gid`, then `uid` (in that order: a
/// process that has left root can no longer change its groups). Checked afterwards.
pub fn drop_to(uid: u32, gid: u32) -> std::io::Result<()> {
    unistd::setgroups(&[]).map_err(io)?;
    unistd::setgid(Gid::from_raw(gid)).map_err(io)?;
    unistd::setuid(Uid::from_raw(uid)).map_err(io)?;
    if self::uid() != uid || euid() != uid {
        return Err(std::io::Error::other("the user id did not change"));
    }
    Ok(())
}

/// Who the store at `store` belongs to, for a process running as root: the owner (uid, gid) of
/// the store's directory when that directory exists and is not root's (the package gives
/// `/var/lib/tessera` to `_tessera`, the user tesserad runs as). `None` when this process is
/// not root, when the directory is missing (nothing to hand over: the engine creates the store
/// as whoever runs it) or root's (a store root keeps for itself, as in the tests).
///
/// Whatever root does to such a store must be done as that user: the engine accepts only
/// files of root or of the effective uid, and a `-wal` or `-shm` that SQLite created as root
/// would lock the daemon out of its own store.
pub fn store_owner(store: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    if euid() != 0 {
        return None;
    }
    let meta = std::fs::metadata(store_dir(store)).ok()?;
    (meta.uid() != 0).then_some((meta.uid(), meta.gid()))
}

/// The directory that holds the store (`.` for a bare file name).
fn store_dir(store: &Path) -> &Path {
    store
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Becomes the [`store_owner`] for good, if there is one: `tesserad --stdio` spawned by a root
/// login, and the `tessera` command run by root, once each has loaded its config. Returns the
/// uid it became, or `None` when it stays who it is.
pub fn become_store_owner(store: &Path) -> std::io::Result<Option<u32>> {
    let Some((uid, gid)) = store_owner(store) else {
        return Ok(None);
    };
    drop_to(uid, gid).map_err(|e| cant_become(uid, store, e))?;
    Ok(Some(uid))
}

/// Runs `f` as the [`store_owner`] `owner` (effective uid and gid; no supplementary groups from
/// here on), then becomes root again. For root's work on both sides of a hand-over, such as
/// `tessera init`: the store as its owner, then the key in a directory only root may write.
/// The real and saved ids stay root's meanwhile, so the owner can neither signal nor trace
/// this process (and the kernel marks it undumpable when the effective uid changes).
pub fn as_store_owner<T>(
    store: &Path,
    owner: (u32, u32),
    f: impl FnOnce() -> T,
) -> std::io::Result<T> {
    let (uid, gid) = owner;
    let cant = |e: Errno| cant_become(uid, store, io(e));
    let old_gid = unistd::getegid();
    unistd::setgroups(&[]).map_err(cant)?;
    unistd::setegid(Gid::from_raw(gid)).map_err(cant)?;
    if let Err(e) = unistd::seteuid(Uid::from_raw(uid)) {
        // Still root: only the group changed.
        let _ = unistd::setegid(old_gid);
        return Err(cant(e));
    }
    let out = f();
    // Back in the opposite order: only root may change its group ids.
    let back = unistd::seteuid(Uid::from_raw(0)).and_then(|()| unistd::setegid(old_gid));
    if let Err(e) = back.map_err(io).and_then(|()| match euid() {
        0 => Ok(()),
        _ => Err(std::io::Error::other("the effective uid is not 0")),
    }) {
        return Err(std::io::Error::other(format!(
            "can't become root again after working as uid {uid}: {e}"
        )));
    }
    Ok(out)
}

fn cant_become(uid: u32, store: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(
        e.kind(),
        format!(
            "can't become uid {uid}, the owner of {}: {e}",
            store_dir(store).display()
        ),
    )
}

/// Sets the file mode creation mask to `mask`; returns the one before.
pub fn set_umask(mask: u32) -> u32 {
    let mode = nix::sys::stat::Mode::from_bits_truncate(mask as libc::mode_t);
    nix::sys::stat::umask(mode).bits()
}

/// Undoes the signals a parent left ignored (SIG_IGN survives exec), but those in `keep`: a
/// process started by a caller that ignores SIGTERM or SIGCHLD would otherwise ignore them
/// too (and a SIGCHLD ignored makes the kernel reap our children before we can wait for them).
///
/// Which signals are ignored is read from `/proc/self/status` (`SigIgn`); each of them but
/// those signal-hook can't take (SIGKILL, SIGSTOP, SIGILL, SIGFPE, SIGSEGV) and the C
/// library's own gets a handler, on whose signals a thread does what the default would
/// (`signal_hook::low_level::emulate_default_handler`: end the process, stop it, or nothing);
/// the children we start get the default disposition, as exec gives every caught signal.
/// Standard signals only (1 to 31): a realtime one left ignored stays so. Returns the signals
/// it took over; none, and no thread, when nothing was ignored (the usual case).
pub fn undo_ignored_signals(keep: &[libc::c_int]) -> Vec<libc::c_int> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let ignored = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .unwrap_or(0);
    let wanted: Vec<libc::c_int> = (1..32)
        .filter(|&sig| ignored & (1u64 << (sig - 1)) != 0)
        .filter(|sig| !keep.contains(sig) && !signal_hook::consts::FORBIDDEN.contains(sig))
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let Ok(mut signals) = signal_hook::iterator::Signals::new(&wanted) else {
        return Vec::new();
    };
    let spawned = std::thread::Builder::new()
        .name("default-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let _ = signal_hook::low_level::emulate_default_handler(sig);
            }
        });
    if spawned.is_err() {
        return Vec::new();
    }
    wanted
}

/// Unblocks every signal of the calling thread; threads it starts later inherit the empty
/// mask. A blocked signal stays blocked across exec, so a process started with SIGTERM
/// blocked would otherwise never see one.
pub fn unblock_all_signals() -> std::io::Result<()> {
    nix::sys::signal::SigSet::empty()
        .thread_set_mask()
        .map_err(io)
}

/// Closes every file descriptor from `first` up: those a parent left open without
/// FD_CLOEXEC. Each descriptor `/proc/self/fd` lists, else each number below the descriptor
/// limit.
///
/// Call it first thing in `main`, before this process opens anything and before any other
/// thread runs: it closes descriptors by number, so each one of them must be an inherited
/// one that nothing in the process owns.
pub fn close_fds_from(first: u32) {
    let first = libc::c_int::try_from(first).unwrap_or(libc::c_int::MAX);
    // The directory's own descriptor is listed too; it is closed when the listing ends, so
    // closing it again below gives EBADF (no other thread can have opened one in its place).
    let listed: Option<Vec<libc::c_int>> = std::fs::read_dir("/proc/self/fd").ok().map(|dir| {
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    });
    let fds = listed.unwrap_or_else(|| {
        let max = unistd::sysconf(unistd::SysconfVar::OPEN_MAX)
            .ok()
            .flatten()
            .unwrap_or(1 << 20)
            .clamp(0, 1 << 20);
        (first..libc::c_int::try_from(max).unwrap_or(1 << 20)).collect()
    });
    for fd in fds.into_iter().filter(|fd| *fd >= first) {
        // By number: one that is not open gives EBADF, which is ignored.
        let _ = unistd::close(fd);
    }
}

/// `open(2)`'s flags: refuse a symbolic link as the last component, and never wait (a FIFO) (for
/// `OpenOptionsExt::custom_flags`).
pub use libc::{O_NOFOLLOW, O_NONBLOCK};

/// Makes `file` this process's stderr (`dup2(2)` onto descriptor 2): what is written there
/// from now on, by any thread (a panic's message too), goes to that file.
pub fn stderr_to(file: &std::fs::File) -> std::io::Result<()> {
    unistd::dup2_stderr(file).map_err(io)
}

/// A nix error as the `std::io::Error` the callers pass on.
fn io(e: Errno) -> std::io::Error {
    std::io::Error::from(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 16 threads resolving the test accounts and their groups at once (tests run under
    /// nss_wrapper, `tests/nss/run`) see what one thread sees, every time. Unserialised,
    /// nss_wrapper gave groups missing or twice in every run, and crashed one run in ten.
    #[test]
    fn lookups_at_once_see_what_one_sees() {
        let users = ["alice", "bob", "carol", "dave", "erin"];
        let alone: Vec<(Option<Account>, Vec<String>)> =
            users.iter().map(|u| (account(u), group_names(u))).collect();
        assert!(alone.iter().all(|(a, _)| a.is_some()), "{alone:?}");
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    for _ in 0..200 {
                        for (u, want) in users.iter().zip(&alone) {
                            assert_eq!(&(account(u), group_names(u)), want, "{u}");
                            assert_eq!(account(&format!("{u}x")), None);
                        }
                    }
                });
            }
        });
    }

    #[test]
    fn root_is_an_account_and_odd_names_are_not() {
        assert_eq!(account_name("root").as_deref(), Some("root"));
        assert_eq!(account_name("no-such-account-tessera"), None);
        assert_eq!(account_name("nul\0byte"), None);
        assert_eq!(account_of_uid(0).map(|a| a.name).as_deref(), Some("root"));
        assert_eq!(account_of_uid(4_000_000_000).map(|a| a.name), None);
        assert_eq!(account_name(""), None);
    }

    #[test]
    fn root_is_in_the_root_group() {
        assert_eq!(
            group_names("root").first().map(String::as_str),
            Some("root")
        );
        assert!(group_names("no-such-account-tessera").is_empty());
    }

    #[test]
    fn a_name_that_was_not_utf8_is_no_name() {
        assert_eq!(valid_name("al\u{FFFD}ce".into()), None);
        assert_eq!(valid_name(String::new()), None);
        assert_eq!(valid_name("alice".into()).as_deref(), Some("alice"));
    }

    #[test]
    fn a_socket_pair_peer_is_this_process_uid() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(peer_uid(&a).unwrap(), euid());
    }
}
