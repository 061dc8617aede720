//! Raw OS calls that std does not offer, each behind a safe function: account lookup (NSS),
//! the effective uid, becoming the store's owner, opening a file in a directory held open
//! (`openat`), the file system a file is on (`fstatfs`), reading as another user
//! (`setfsuid`), the process-wide SIGCHLD disposition around a child we wait for, a clean start
//! for a spawned daemon (umask, signals, inherited descriptors), and keeping this module mapped
//! while a helper thread of ours may still run. Like `pam::ffi`, this is part of the thin FFI
//! layer: every `unsafe` of tessera lives
//! there or here, each with a `// SAFETY:` comment.

use std::ffi::{CStr, CString};
use std::os::raw::c_void;
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
    let mut gids: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut n = gids.len() as libc::c_int;
        // SAFETY: `c_user` is NUL-terminated, `gids` holds `n` writable gid_t's and `n` is
        // a valid int to write the needed count to, which is all getgrouplist touches.
        let rc =
            unsafe { libc::getgrouplist(c_user.as_ptr(), acct.gid, gids.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            gids.truncate(usize::try_from(n).unwrap_or(0));
            break;
        }
        // Too small: `n` says how many there are.
        let want = usize::try_from(n).unwrap_or(0).max(gids.len() * 2);
        if want > 65_536 {
            return Vec::new();
        }
        gids.resize(want, 0);
    }
    gids.iter().filter_map(|&g| group_name(g)).collect()
}

/// The name of group `gid` (`getgrgid_r`).
fn group_name(gid: u32) -> Option<String> {
    nss_lookup(|buf| {
        // SAFETY: `group` is plain old data that getgrgid_r fills in; all-zero is a valid
        // value of it.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: `grp`, `buf` (with its true length) and `result` are valid for writes for
        // the duration of the call.
        let rc = unsafe {
            libc::getgrgid_r(
                gid,
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc != 0 || result.is_null() || grp.gr_name.is_null() {
            return (rc, None);
        }
        // SAFETY: on success `gr_name` points to a NUL-terminated string inside `buf`.
        let name = unsafe { CStr::from_ptr(grp.gr_name) };
        (rc, name.to_str().ok().map(str::to_string))
    })
}

/// An account of this host, as NSS has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The canonical name (`pw_name`).
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// The account `name` stands for (`getpwnam_r`); see [`account_name`].
pub fn account(name: &str) -> Option<Account> {
    let c_name = CString::new(name).ok()?;
    passwd_lookup(|pwd, buf, result| {
        // SAFETY: `c_name` is NUL-terminated; `pwd`, `buf` (with its true length) and `result`
        // are valid for writes for the duration of the call, which is all getpwnam_r needs.
        unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                result,
            )
        }
    })
}

/// The account with the user id `uid` (`getpwuid_r`): the owner of a file, by name.
pub fn account_of_uid(uid: u32) -> Option<Account> {
    passwd_lookup(|pwd, buf, result| {
        // SAFETY: `pwd`, `buf` (with its true length) and `result` are valid for writes for the
        // duration of the call, which is all getpwuid_r needs.
        unsafe { libc::getpwuid_r(uid, pwd, buf.as_mut_ptr().cast(), buf.len(), result) }
    })
}

/// One `getpw*_r` call through [`nss_lookup`]: `call` fills the record, and the name and ids
/// are copied out of the buffer before it is reused.
fn passwd_lookup(
    mut call: impl FnMut(&mut libc::passwd, &mut [u8], &mut *mut libc::passwd) -> libc::c_int,
) -> Option<Account> {
    nss_lookup(|buf| {
        // SAFETY: `passwd` is plain old data that getpw*_r fills in; all-zero is a valid
        // value of it (null pointers, zero ids).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = call(&mut pwd, buf, &mut result);
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return (rc, None);
        }
        // SAFETY: on success `pw_name` points to a NUL-terminated string inside `buf`, which
        // is alive and unchanged here.
        let canonical = unsafe { CStr::from_ptr(pwd.pw_name) };
        let account = canonical.to_str().ok().map(|n| Account {
            name: n.to_string(),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
        });
        (rc, account)
    })
}

/// Runs one NSS `get*_r` lookup with a buffer that grows while the call says ERANGE (up to 1
/// MiB). `call` makes the call on the buffer it is given and copies out what it found, before
/// the buffer is reused or dropped; its return code decides whether to try again.
fn nss_lookup<T>(mut call: impl FnMut(&mut [u8]) -> (libc::c_int, Option<T>)) -> Option<T> {
    let mut buf = vec![0u8; 1024];
    loop {
        let (rc, found) = call(&mut buf);
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            let bigger = buf.len() * 4;
            buf.resize(bigger, 0);
            continue;
        }
        return found;
    }
}

/// Who is at the other end of a Unix socket (`SO_PEERCRED`): the process's uid, as the kernel
/// recorded it at connect time (not forgeable by the peer).
pub fn peer_uid(sock: &impl std::os::fd::AsRawFd) -> std::io::Result<u32> {
    // SAFETY: all-zero is a valid `ucred`; getsockopt writes at most `len` bytes into it.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the descriptor is open for the lifetime of `sock`; `cred` and `len` are valid
    // for writes and `len` holds the true size of `cred`.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// A new inotify instance, non-blocking and close-on-exec (see `crate::watch`).
pub fn inotify_new() -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain descriptor creation; the result is checked.
    let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor just created and owned by nothing else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Watches `path` (not following a link at its end) for the events of `mask`.
pub fn inotify_watch(fd: &std::os::fd::OwnedFd, path: &Path, mask: u32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: an open inotify descriptor and a NUL-terminated path that outlives the call.
    let wd =
        unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), mask | libc::IN_DONT_FOLLOW) };
    if wd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether any event is queued on the inotify descriptor (all of them are read and dropped):
/// one `read` that fails with EAGAIN when nothing happened.
pub fn inotify_drain(fd: &std::os::fd::OwnedFd) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 4096];
    let mut any = false;
    loop {
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            any = true;
            continue;
        }
        let e = std::io::Error::last_os_error();
        return match e.kind() {
            std::io::ErrorKind::WouldBlock => Ok(any),
            std::io::ErrorKind::Interrupted => continue,
            _ if n == 0 => Ok(any),
            _ => Err(e),
        };
    }
}

/// How long `accept(2)` on `listener` waits before it fails with `WouldBlock`
/// (`SO_RCVTIMEO`): a thread that waits for connections can then end when it is not needed.
pub fn set_accept_timeout(
    listener: &impl std::os::fd::AsRawFd,
    wait: std::time::Duration,
) -> std::io::Result<()> {
    let tv = libc::timeval {
        tv_sec: wait.as_secs().try_into().unwrap_or(libc::time_t::MAX),
        tv_usec: wait.subsec_micros().into(),
    };
    // SAFETY: a valid timeval of the size given, on a descriptor open for `listener`'s life.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The listening socket systemd passed by socket activation (`sd_listen_fds(3)`), as a
/// `UnixListener`: `Ok(None)` when this process was not socket activated (`LISTEN_PID` is not
/// its pid); an error when it was but the passed descriptors are not exactly one listening
/// Unix stream socket on fd 3. Takes the descriptor at most once per process (a second call
/// gives `Ok(None)`), and removes `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` from the
/// environment so that no child of ours takes them for its own.
///
/// Call it early, before other threads run (the environment is changed).
pub fn activated_listener() -> std::io::Result<Option<std::os::unix::net::UnixListener>> {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::sync::atomic::{AtomicBool, Ordering};
    static TAKEN: AtomicBool = AtomicBool::new(false);
    const FD: libc::c_int = 3; // SD_LISTEN_FDS_START
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    if pid.as_deref().and_then(|p| p.trim().parse::<u32>().ok()) != Some(std::process::id()) {
        return Ok(None);
    }
    if fds.as_deref().map(str::trim) != Some("1") {
        return Err(std::io::Error::other(format!(
            "socket activation passed LISTEN_FDS={} descriptors; exactly 1 is supported",
            fds.as_deref().unwrap_or("(unset)")
        )));
    }
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(None);
    }
    // SAFETY: fcntl on any descriptor number is defined; it fails with EBADF if it is not open.
    if unsafe { libc::fcntl(FD, libc::F_GETFD) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let int_opt = |opt: libc::c_int| -> std::io::Result<libc::c_int> {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: FD is open (checked above); `v` and `len` are valid for writes and `len`
        // holds the true size of `v`.
        let rc = unsafe {
            libc::getsockopt(
                FD,
                libc::SOL_SOCKET,
                opt,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(v)
    };
    let ok = int_opt(libc::SO_DOMAIN)? == libc::AF_UNIX
        && int_opt(libc::SO_TYPE)? == libc::SOCK_STREAM
        && int_opt(libc::SO_ACCEPTCONN)? == 1;
    if !ok {
        return Err(std::io::Error::other(
            "socket activation: fd 3 is not a listening Unix stream socket",
        ));
    }
    // SAFETY: FD_CLOEXEC on an open descriptor; children we start must not inherit it.
    if unsafe { libc::fcntl(FD, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd 3 is open (checked above) and is the listening socket that the service
    // manager passed to this process for it to own (LISTEN_PID is our pid). Nothing else in
    // the process owns it: the standard library opens nothing at fd 3 on its own before
    // main, and `TAKEN` makes sure this function wraps it only once.
    let owned = unsafe { OwnedFd::from_raw_fd(FD) };
    Ok(Some(std::os::unix::net::UnixListener::from(owned)))
}

/// Opens `name`, one component of a path (no `/`), in the directory `dir` (`openat(2)`), with
/// `flags` (`O_RDONLY` and the caller's `O_NOFOLLOW`, `O_NONBLOCK`, ...): the file is looked up in
/// the very directory that `dir` holds open, whatever its path names by now.
pub fn open_at(
    dir: &std::fs::File,
    name: &std::ffi::OsStr,
    flags: libc::c_int,
) -> std::io::Result<std::fs::File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::ffi::OsStrExt;
    if name.as_bytes().contains(&b'/') {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    let c_name = CString::new(name.as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `dir` is an open descriptor for the duration of the call and `c_name` is
    // NUL-terminated; openat creates nothing without O_CREAT, so no mode argument is read.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c_name.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat, is open, and nothing else owns it.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// The type of the file system an open file is on (`fstatfs(2)`'s `f_type`): the kernel's magic
/// number of that file system (`PROC_SUPER_MAGIC`, ...; `linux/magic.h`), in 32 bits.
pub fn fs_magic(file: &std::fs::File) -> std::io::Result<u32> {
    use std::os::fd::AsRawFd;
    // SAFETY: `statfs` is plain old data; all-zero is a valid value that fstatfs overwrites.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the descriptor is open for the lifetime of `file`; `st` is a live, writable
    // `statfs` of the size fstatfs writes.
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The magic numbers are 32-bit values; f_type is a signed word that may carry them
    // sign-extended (BPF_FS_MAGIC, 0xcafe4a11): the low 32 bits are the number.
    Ok(st.f_type as u32)
}

/// Runs `f` with the file-system user and group ids `uid` and `gid` of this thread
/// (`setfsuid(2)`, `setfsgid(2)`), then puts root's back: the kernel checks every file access
/// of `f` as that user would be checked, and a file-system uid other than 0 also leaves
/// root's capabilities to override file modes (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, ...) out
/// of use meanwhile. The real, effective and saved ids stay root's, so the user can neither
/// signal nor trace this process. For a process whose effective uid is 0 only.
pub fn with_fs_ids<T>(uid: u32, gid: u32, f: impl FnOnce() -> T) -> std::io::Result<T> {
    const QUERY: u32 = u32::MAX; // (uid_t)-1: no change, the call returns the current id
    if euid() != 0 {
        return Err(std::io::Error::from_raw_os_error(libc::EPERM));
    }
    // SAFETY: setfsgid/setfsuid take plain ids and touch no memory; an id they refuse leaves
    // the current one in place, which the QUERY calls below find out.
    let old_gid = unsafe { libc::setfsgid(gid) } as u32;
    // SAFETY: as above.
    let old_uid = unsafe { libc::setfsuid(uid) } as u32;
    // SAFETY: as above.
    let took =
        unsafe { libc::setfsgid(QUERY) as u32 == gid && libc::setfsuid(QUERY) as u32 == uid };
    let out = took.then(f);
    // Back in the opposite order: the uid first, so that root's capabilities return before
    // the group changes.
    // SAFETY: as above.
    let back = unsafe {
        libc::setfsuid(old_uid);
        libc::setfsgid(old_gid);
        libc::setfsuid(QUERY) as u32 == old_uid && libc::setfsgid(QUERY) as u32 == old_gid
    };
    if !back {
        return Err(std::io::Error::other(format!(
            "can't take back the file-system ids {old_uid}:{old_gid} after using {uid}:{gid}"
        )));
    }
    out.ok_or_else(|| std::io::Error::other(format!("can't take the file-system ids {uid}:{gid}")))
}

/// The real user id of this process.
pub fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Gives up root for good: no supplementary groups, then `gid`, then `uid` (in that order: a
/// process that has left root can no longer change its groups). Checked afterwards.
pub fn drop_to(uid: u32, gid: u32) -> std::io::Result<()> {
    // SAFETY: setgroups with a count of 0 reads no memory; setgid/setuid take plain ids.
    let rc = unsafe { libc::setgroups(0, std::ptr::null()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::setgid(gid) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::setuid(uid) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: getters without preconditions.
    let (now_uid, now_euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    if now_uid != uid || now_euid != uid {
        return Err(std::io::Error::other("the user id did not change"));
    }
    Ok(())
}

/// The effective user id of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
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
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(cant_become(uid, store, std::io::Error::last_os_error()))
        }
    };
    // SAFETY: getegid has no preconditions and cannot fail.
    let old_gid = unsafe { libc::getegid() };
    // SAFETY: setgroups with a count of 0 reads no memory.
    check(unsafe { libc::setgroups(0, std::ptr::null()) })?;
    // SAFETY: setegid and seteuid take plain ids.
    check(unsafe { libc::setegid(gid) })?;
    // SAFETY: as above.
    if let Err(e) = check(unsafe { libc::seteuid(uid) }) {
        // SAFETY: as above (still root: only the group changed).
        unsafe { libc::setegid(old_gid) };
        return Err(e);
    }
    let out = f();
    // Back in the opposite order: only root may change its group ids.
    // SAFETY: as above.
    let back = unsafe { libc::seteuid(0) == 0 && libc::setegid(old_gid) == 0 };
    if !back || euid() != 0 {
        return Err(std::io::Error::other(format!(
            "can't become root again after working as uid {uid}: {}",
            std::io::Error::last_os_error()
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

/// Runs `f` with SIGCHLD set to its default disposition, then restores the one before.
///
/// A host process that ignores SIGCHLD (SIG_IGN, as some daemons do) makes the kernel reap
/// every child at exit, so waiting for ours fails with ECHILD and a delivery that worked
/// looks failed; and a host's own SIGCHLD handler could reap our child before we do. pam_unix
/// does the same around its helper binary. The disposition is process-wide, so another
/// thread of the host that forks meanwhile sees SIG_DFL too: for a child of its own that
/// only means it must wait for it, which is what SIG_DFL asks of every program anyway.
///
/// If the disposition can't be read or set (it can for SIGCHLD), `f` runs unchanged.
pub fn with_default_sigchld<T>(f: impl FnOnce() -> T) -> T {
    let _restore = SigchldDefault::set();
    f()
}

/// The disposition before [`with_default_sigchld`]; put back on drop, also when `f` panics.
struct SigchldDefault {
    old: Option<libc::sigaction>,
}

impl SigchldDefault {
    fn set() -> SigchldDefault {
        // SAFETY: `sigaction` is a plain C struct for which all-zero bytes are a valid value
        // (no handler pointer dereferenced: SIG_DFL is 0, empty flags, mask set just below).
        let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
        new.sa_sigaction = libc::SIG_DFL;
        // SAFETY: `new.sa_mask` is a valid, writable sigset_t owned by this frame.
        unsafe { libc::sigemptyset(&mut new.sa_mask) };
        // SAFETY: as above, all-zero is a valid `sigaction`; the kernel overwrites it.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: SIGCHLD is a valid signal number; both pointers point to live structs of
        // the right type for the duration of the call, and `new` installs no handler code.
        let rc = unsafe { libc::sigaction(libc::SIGCHLD, &new, &mut old) };
        SigchldDefault {
            old: (rc == 0).then_some(old),
        }
    }
}

impl Drop for SigchldDefault {
    fn drop(&mut self) {
        if let Some(old) = &self.old {
            // SAFETY: `old` is exactly what the kernel gave back for SIGCHLD, so restoring it
            // reinstalls the host's own disposition (handler, mask and flags) unchanged.
            unsafe { libc::sigaction(libc::SIGCHLD, old, std::ptr::null_mut()) };
        }
    }
}

/// Sets the file mode creation mask to `mask`; returns the one before.
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask only replaces a per-process value; it cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// Puts back the default disposition (SIG_DFL) of every signal that is ignored (SIG_IGN),
/// but those in `keep`; SIGKILL and SIGSTOP can be neither. An ignored signal stays ignored
/// across exec, so a process started by a caller that ignores SIGTERM or SIGCHLD would
/// otherwise ignore them too. Handlers are left alone (exec resets those anyway). Returns the
/// signals it reset.
pub fn reset_ignored_signals(keep: &[libc::c_int]) -> Vec<libc::c_int> {
    let mut reset = Vec::new();
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || keep.contains(&sig) {
            continue;
        }
        // SAFETY: all-zero is a valid `sigaction` (SIG_DFL, no flags, empty mask); the kernel
        // overwrites it.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: with a null new action, sigaction only writes the current one into `old`, a
        // live struct of the right type. The signals the C library keeps for itself (glibc's
        // 32 and 33, which its posix_spawn leaves ignored in every child on purpose; it
        // installs its handlers when it needs them) are refused with EINVAL, and skipped.
        if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } != 0 {
            continue;
        }
        if old.sa_sigaction != libc::SIG_IGN {
            continue;
        }
        // SAFETY: as above, all-zero is a valid `sigaction`: SIG_DFL, no flags.
        let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
        new.sa_sigaction = libc::SIG_DFL;
        // SAFETY: `new.sa_mask` is a valid, writable sigset_t owned by this frame.
        unsafe { libc::sigemptyset(&mut new.sa_mask) };
        // SAFETY: `sig` is a valid signal number (sigaction just read it); `new` is a live
        // struct that installs no handler code.
        if unsafe { libc::sigaction(sig, &new, std::ptr::null_mut()) } == 0 {
            reset.push(sig);
        }
    }
    reset
}

/// Unblocks every signal of the calling thread; threads it starts later inherit the empty
/// mask. A blocked signal stays blocked across exec, so a process started with SIGTERM
/// blocked would otherwise never see one.
pub fn unblock_all_signals() -> std::io::Result<()> {
    // SAFETY: all-zero is a valid `sigset_t`, emptied properly just below.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t owned by this frame.
    unsafe { libc::sigemptyset(&mut set) };
    // SAFETY: `set` is an initialised sigset_t; a null old set asks for nothing back.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Closes every file descriptor from `first` up: those a parent left open without
/// FD_CLOEXEC. `close_range(2)` (Linux 5.9), else each descriptor `/proc/self/fd` lists, else
/// each number below the descriptor limit.
///
/// Call it first thing in `main`, before this process opens anything and before any other
/// thread runs: it closes descriptors by number, so each one of them must be an inherited
/// one that nothing in the process owns.
pub fn close_fds_from(first: u32) {
    // SAFETY: close_range takes plain numbers and reads no memory; the descriptors it closes
    // are owned by nothing in this process (see above).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            libc::c_uint::from(first),
            libc::c_uint::MAX,
            0 as libc::c_uint,
        )
    };
    if rc == 0 {
        return;
    }
    // An older kernel, or a seccomp filter that refuses the call. The directory's own
    // descriptor is listed too; it is closed when the listing ends, so closing it again below
    // gives EBADF (no other thread can have opened one in its place).
    let listed: Option<Vec<libc::c_int>> = std::fs::read_dir("/proc/self/fd").ok().map(|dir| {
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    });
    let first = libc::c_int::try_from(first).unwrap_or(libc::c_int::MAX);
    let fds = match listed {
        Some(fds) => fds,
        None => {
            // SAFETY: sysconf takes a plain name and reads no memory.
            let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) };
            let max = libc::c_int::try_from(max.clamp(0, 1 << 20)).unwrap_or(1 << 20);
            (first..max).collect()
        }
    };
    for fd in fds.into_iter().filter(|fd| *fd >= first) {
        // SAFETY: `fd` is closed by number and owned by nothing in this process (see above);
        // one that is not open gives EBADF, which is ignored.
        unsafe { libc::close(fd) };
    }
}

/// Keeps the shared object holding this code loaded until the process exits.
///
/// Called when a helper thread is left running past the call that started it (a name lookup
/// that missed its deadline): libpam unloads the module at `pam_end` (dlclose), and a thread
/// that later returns into unmapped code would crash the host. Promoting the already loaded
/// object to RTLD_NODELETE (glibc, musl: a no-op there as musl never unloads) avoids that.
/// Returns whether the object is pinned; false when this code is not in a shared object (a
/// test binary, a static link), where there is nothing to unload.
pub fn pin_this_module() -> bool {
    let here = pin_this_module as *const c_void;
    // SAFETY: all-zero is a valid `Dl_info` (null pointers); dladdr only writes to it.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: `here` is the address of a function of this object; `info` is a live, writable
    // `Dl_info`. dladdr reads no memory through `here`.
    if unsafe { libc::dladdr(here, &mut info) } == 0 || info.dli_fname.is_null() {
        return false;
    }
    // SAFETY: on success `dli_fname` is a NUL-terminated path owned by the loader, valid while
    // the object is loaded (it is: this code runs from it). RTLD_NOLOAD never loads anything
    // new, it only takes another reference to the object already mapped, which is leaked
    // on purpose together with the NODELETE flag.
    let handle = unsafe {
        libc::dlopen(
            info.dli_fname,
            libc::RTLD_LAZY | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
        )
    };
    !handle.is_null()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_of_f_is_returned() {
        assert_eq!(with_default_sigchld(|| 7), 7);
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
}
