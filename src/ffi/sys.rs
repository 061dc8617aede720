//! libc: errno, the daemon's socket, a spawned daemon.

use core::ffi::{c_char, c_int, CStr};
use core::ptr;

/// The calling thread's errno.
pub fn errno() -> c_int {
    // SAFETY: glibc's thread-local errno, read right after the failed call.
    unsafe { *libc::__errno_location() }
}

/// What an errno says (glibc's text, e.g. "No such file or directory").
pub fn strerror(e: c_int) -> &'static [u8] {
    // SAFETY: glibc returns a static string for known codes; for others a thread-local buffer
    // that the caller copies (into its log line) before anything else calls strerror.
    let p = unsafe { libc::strerror(e) };
    if p.is_null() {
        return b"unknown error";
    }
    // SAFETY: strerror's result is a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

/// The effective user id of this process: root callers may spawn a daemon of their own.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The real user id of this process: who ran `sudo` or `su`, or a setuid helper (the daemon
/// counts a root caller's failures without PAM_RHOST on it).
pub fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// A connected Unix stream socket, closed when dropped.
pub struct Socket(c_int);

impl Socket {
    /// Connects to the daemon's socket at `path`. `Err` is errno.
    pub fn connect(path: &[u8]) -> Result<Socket, c_int> {
        // SAFETY: all-zero is a valid sockaddr_un.
        let mut addr: libc::sockaddr_un = unsafe { core::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        if path.is_empty() || path.len() >= addr.sun_path.len() {
            return Err(libc::ENAMETOOLONG);
        }
        for (d, s) in addr.sun_path.iter_mut().zip(path) {
            *d = *s as c_char;
        }
        // SAFETY: plain socket creation.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(errno());
        }
        let sock = Socket(fd);
        let len = core::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        loop {
            // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
            let rc = unsafe { libc::connect(fd, ptr::addr_of!(addr).cast(), len) };
            if rc == 0 {
                return Ok(sock);
            }
            let e = errno();
            if e != libc::EINTR {
                return Err(e);
            }
        }
    }

    /// Two connected sockets (one for a spawned daemon), both close-on-exec.
    pub fn pair() -> Result<(Socket, Socket), c_int> {
        let mut fds = [-1 as c_int; 2];
        // SAFETY: `fds` has room for the two descriptors.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(errno());
        }
        let [a, b] = fds;
        Ok((Socket(a), Socket(b)))
    }

    /// How long one `recv` or `send` may wait (SO_RCVTIMEO / SO_SNDTIMEO).
    pub fn set_timeout(&self, send: bool, secs: u32) -> Result<(), c_int> {
        let tv = libc::timeval {
            tv_sec: libc::time_t::from(secs),
            tv_usec: 0,
        };
        let opt = if send {
            libc::SO_SNDTIMEO
        } else {
            libc::SO_RCVTIMEO
        };
        // SAFETY: a valid timeval of the size given, on an open socket.
        let rc = unsafe {
            libc::setsockopt(
                self.0,
                libc::SOL_SOCKET,
                opt,
                ptr::addr_of!(tv).cast(),
                core::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(errno())
        }
    }

    /// Sends all of `buf`, with MSG_NOSIGNAL: a peer that closed gives EPIPE, never a SIGPIPE
    /// that ends the calling service (sshd, a screen locker) unless it happens to ignore it.
    pub fn send_all(&self, mut buf: &[u8]) -> Result<(), c_int> {
        while !buf.is_empty() {
            // SAFETY: `buf` is a live slice of `buf.len()` readable bytes.
            let n =
                unsafe { libc::send(self.0, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
            if n < 0 {
                match errno() {
                    libc::EINTR => continue,
                    e => return Err(e),
                }
            }
            buf = buf.get(n as usize..).unwrap_or_default();
        }
        Ok(())
    }

    /// Receives exactly `len` bytes into `to` (MSG_WAITALL), or fails: `Ok(n)` short of `len`
    /// means the peer closed; EAGAIN means the timeout passed.
    ///
    /// # Safety
    /// `to` is valid for writes of `len` bytes.
    pub(super) unsafe fn recv_exact(&self, to: *mut u8, len: usize) -> Result<usize, c_int> {
        let mut got = 0;
        while got < len {
            let n = libc::recv(self.0, to.add(got).cast(), len - got, libc::MSG_WAITALL);
            match n {
                0 => break,
                n if n > 0 => got += n as usize,
                _ => match errno() {
                    libc::EINTR => continue,
                    e => return Err(e),
                },
            }
        }
        Ok(got)
    }

    /// The descriptor, at 3 or above: a spawned daemon gets it as its stdin and stdout, and a
    /// descriptor already at 0 or 1 would keep its close-on-exec flag through the dup.
    fn above_stdio(self) -> Result<Socket, c_int> {
        if self.0 > 2 {
            return Ok(self);
        }
        // SAFETY: duplicates an open descriptor to the lowest free one at 3 or above.
        let fd = unsafe { libc::fcntl(self.0, libc::F_DUPFD_CLOEXEC, 3) };
        if fd < 0 {
            Err(errno())
        } else {
            Ok(Socket(fd))
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: the descriptor this owner opened, closed once.
        unsafe { libc::close(self.0) };
    }
}

/// A spawned daemon's process id.
pub struct Child(libc::pid_t);

/// Starts `daemon --stdio [--config CONFIG]` with `theirs` as its stdin and stdout, stderr on
/// /dev/null, in `/`, with an empty environment, an empty signal mask and SIGPIPE at its
/// default: nothing of the caller's reaches the engine. `Err` is errno.
pub fn spawn(daemon: &CStr, config: Option<&CStr>, theirs: Socket) -> Result<Child, c_int> {
    let theirs = theirs.above_stdio()?;
    let argv: [*const c_char; 5] = match config {
        Some(c) => [
            daemon.as_ptr(),
            c"--stdio".as_ptr(),
            c"--config".as_ptr(),
            c.as_ptr(),
            ptr::null(),
        ],
        None => [
            daemon.as_ptr(),
            c"--stdio".as_ptr(),
            ptr::null(),
            ptr::null(),
            ptr::null(),
        ],
    };
    let envp: [*const c_char; 1] = [ptr::null()];
    // SAFETY: the actions and attributes are initialised before use and destroyed after;
    // every pointer passed (argv, envp, paths) is a NUL-terminated string or array that
    // outlives the call; `pid` is a valid out pointer.
    unsafe {
        let mut actions: libc::posix_spawn_file_actions_t = core::mem::zeroed();
        let mut attr: libc::posix_spawnattr_t = core::mem::zeroed();
        if libc::posix_spawn_file_actions_init(&mut actions) != 0 {
            return Err(libc::ENOMEM);
        }
        if libc::posix_spawnattr_init(&mut attr) != 0 {
            libc::posix_spawn_file_actions_destroy(&mut actions);
            return Err(libc::ENOMEM);
        }
        let mut none: libc::sigset_t = core::mem::zeroed();
        let mut pipe: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        let steps = [
            libc::posix_spawn_file_actions_adddup2(&mut actions, theirs.0, 0),
            libc::posix_spawn_file_actions_adddup2(&mut actions, theirs.0, 1),
            libc::posix_spawn_file_actions_addopen(
                &mut actions,
                2,
                c"/dev/null".as_ptr(),
                libc::O_WRONLY,
                0,
            ),
            libc::posix_spawn_file_actions_addchdir_np(&mut actions, c"/".as_ptr()),
            libc::posix_spawnattr_setsigmask(&mut attr, &none),
            libc::posix_spawnattr_setsigdefault(&mut attr, &pipe),
            libc::posix_spawnattr_setflags(
                &mut attr,
                (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as _,
            ),
        ];
        let mut pid: libc::pid_t = 0;
        let rc = match steps.iter().find(|&&rc| rc != 0) {
            Some(&rc) => rc,
            None => libc::posix_spawn(
                &mut pid,
                daemon.as_ptr(),
                &actions,
                &attr,
                argv.as_ptr().cast(),
                envp.as_ptr().cast(),
            ),
        };
        libc::posix_spawnattr_destroy(&mut attr);
        libc::posix_spawn_file_actions_destroy(&mut actions);
        if rc != 0 {
            return Err(rc);
        }
        Ok(Child(pid))
    }
}

impl Child {
    /// Waits for the daemon to end (it does once its socket closes), killing it after
    /// `timeout_secs`. A host that ignores SIGCHLD has reaped it already (ECHILD).
    pub fn reap(self, timeout_secs: u32) {
        let mut waited_us: u64 = 0;
        let mut step_us: u64 = 100;
        loop {
            let mut status: c_int = 0;
            // SAFETY: our own child's pid; `status` is a valid out pointer.
            let rc = unsafe { libc::waitpid(self.0, &mut status, libc::WNOHANG) };
            if rc != 0 {
                if rc < 0 && errno() == libc::EINTR {
                    continue;
                }
                return; // ended, or already reaped (ECHILD)
            }
            if waited_us >= u64::from(timeout_secs) * 1_000_000 {
                // SAFETY: our own child, not yet reaped, so the pid is still its.
                unsafe {
                    libc::kill(self.0, libc::SIGKILL);
                    libc::waitpid(self.0, &mut status, 0);
                }
                return;
            }
            sleep_us(step_us);
            waited_us += step_us;
            step_us = (step_us * 2).min(2_000);
        }
    }
}

fn sleep_us(us: u64) {
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: (us * 1_000) as libc::c_long,
    };
    // SAFETY: a valid timespec; an interrupted sleep only ends early.
    unsafe { libc::nanosleep(&ts, ptr::null_mut()) };
}
