"""Shared pieces of tessera's end-to-end tests (run as root, no TTY needed).

Each test script builds a throwaway world around the real programs (sshd, sudo, su, login,
pamtester, dpkg) and tears it down again, whatever happens:

- a private work directory /tmp/tessera-e2e.* (0700) with its own tessera.toml, store and key;
- PAM stacks made from the shipped files in pam.d/, with `pam_tessera.so` replaced by the
  module under test (absolute path) and `config=` pointing at the work directory's config;
- test users (useradd), sudoers drop-ins, /etc/pam.d files and processes, each registered for
  removal as it is created.

Results are counted with `check()`; `finish()` prints `N passed, M failed` and exits non-zero
when anything failed.
"""

import atexit
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# RFC 4226's test key: oathtool -c N gives its N-th code.
KEY = "3132333435363738393031323334353637383930"


def log(msg):
    print(msg, flush=True)


class Results:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0
        self.started = time.monotonic()

    def check(self, what, ok, detail=""):
        if ok:
            self.passed += 1
            log(f"ok    {what}")
        else:
            self.failed += 1
            log(f"FAIL  {what}" + (f"\n      {detail}" if detail else ""))
        return ok

    def finish(self):
        secs = time.monotonic() - self.started
        log(f"{self.name}: {self.passed} passed, {self.failed} failed ({secs:.1f}s)")
        sys.exit(1 if self.failed or not self.passed else 0)


class Cleanup:
    """Undo steps, run last-in first-out at exit, also on SIGTERM/SIGINT."""

    def __init__(self):
        self.steps = []
        atexit.register(self.run)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, _frame):
        self.run()
        sys.exit(128 + signum)

    def add(self, what, fn):
        self.steps.append((what, fn))

    def run(self):
        while self.steps:
            what, fn = self.steps.pop()
            try:
                fn()
            except Exception as e:  # keep tearing down the rest
                log(f"cleanup: {what}: {e}")


CLEANUP = Cleanup()


def run(cmd, input=None, check=False, env=None, timeout=60):
    """Runs a command; returns CompletedProcess with text stdout/stderr."""
    p = subprocess.run(
        cmd, input=input, capture_output=True, text=True, env=env, timeout=timeout
    )
    if check and p.returncode != 0:
        raise RuntimeError(f"{cmd!r} exited {p.returncode}: {p.stderr.strip()}")
    return p


def require_root():
    if os.geteuid() != 0:
        log("these tests need root")
        sys.exit(1)


def artefacts():
    """The module, the command and the daemon under test: $TESSERA_MODULE / $TESSERA_BIN /
    $TESSERA_DAEMON, else the debug build of this tree (built here if missing)."""
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    module = os.environ.get("TESSERA_MODULE") or os.path.join(target, "debug", "libpam_tessera.so")
    binary = os.environ.get("TESSERA_BIN") or os.path.join(target, "debug", "tessera")
    daemon = os.environ.get("TESSERA_DAEMON") or os.path.join(target, "debug", "tesserad")
    if not all(os.path.exists(p) for p in (module, binary, daemon)):
        subprocess.run(["cargo", "build", "--quiet"], cwd=ROOT, check=True)
    return os.path.abspath(module), os.path.abspath(binary), os.path.abspath(daemon)


class World:
    """A work directory with a config, an initialised store and key, and helpers."""

    def __init__(self, tag, max_fail=50, before_init=None):
        """before_init(world), if given, runs once the work directory and config exist and
        before `tessera init` creates the store under world.dir/store."""
        self.module, self.binary, self.daemon = artefacts()
        self.tag = f"{tag}{os.getpid() % 100000}"
        self.dir = tempfile.mkdtemp(prefix=f"tessera-e2e.{tag}.")
        os.chmod(self.dir, 0o700)
        CLEANUP.add(f"rm -r {self.dir}", lambda: shutil.rmtree(self.dir, ignore_errors=True))
        CLEANUP.add("rm our /tmp/pam.X", lambda: remove_pam_wrapper_leftovers(self.dir))
        self.config = os.path.join(self.dir, "tessera.toml")
        with open(self.config, "w") as f:
            f.write(
                f'[store]\npath = "{self.dir}/store/tessera.db"\n'
                f'key_file = "{self.dir}/secret.key"\n'
                f"[auth]\nmax_fail = {max_fail}\n"
            )
        os.chmod(self.config, 0o600)
        if before_init:
            before_init(self)
        self.tessera("init")

    def tessera(self, *args, input=None):
        p = run([self.binary, "--config", self.config, *args], input=input)
        if p.returncode != 0:
            raise RuntimeError(f"tessera {' '.join(args)}: {p.stderr.strip()}")
        return p.stdout.strip()

    def hotp_token(self, user, pin, serial):
        """Enrolls an HOTP token with the RFC 4226 key; returns an OTP source."""
        out = self.tessera(
            "token", "add", "--user", user, "--type", "hotp", "--pin", pin,
            "--key", KEY, "--serial", serial,
        )
        assert out.splitlines()[0] == serial, out
        return Hotp()

    def module_args(self):
        """The module under test and its arguments: no daemon listens at the socket named, so
        the module (run by root: sshd, sudo, su, login) spawns `tesserad --stdio` per login."""
        return (f"{self.module} socket={self.dir}/no-daemon.sock daemon={self.daemon} "
                f"config={self.config}")

    def stack(self, shipped):
        """The text of a shipped pam.d file, made to use the module under test and our config."""
        with open(os.path.join(ROOT, "pam.d", shipped)) as f:
            text = f.read()
        new, n = re.subn(
            r"(?m)^(\s*auth\s+\S+\s+)pam_tessera\.so\b",
            lambda m: f"{m.group(1)}{self.module_args()}",
            text,
        )
        new = re.sub(
            r"(?m)^(\s*account\s+\S+\s+)pam_tessera\.so\b",
            lambda m: f"{m.group(1)}{self.module_args()}",
            new,
        )
        assert n >= 1, f"pam.d/{shipped} has no auth line with pam_tessera.so"
        return new

    def install_service(self, name, text):
        """Writes /etc/pam.d/NAME (a name no one else uses), removed at exit."""
        path = f"/etc/pam.d/{name}"
        assert not os.path.exists(path), f"{path} exists already"
        with open(path, "w") as f:
            f.write(text)
        CLEANUP.add(f"rm {path}", lambda: os.remove(path))
        return path

    def audit(self, user):
        return self.tessera("audit", "--user", user, "--limit", "200")


class Hotp:
    """Hands out the RFC 4226 key's OTPs in order; an OTP given out is spent for good."""

    def __init__(self):
        self.counter = 0

    def peek(self):
        return oathtool(self.counter)

    def next(self):
        code = oathtool(self.counter)
        self.counter += 1
        return code

    def wrong(self):
        """A 6-digit code that is none of the next window's codes."""
        window = {oathtool(c) for c in range(self.counter, self.counter + 12)}
        for n in range(1000000):
            code = f"{(123456 + n * 7919) % 1000000:06d}"
            if code not in window:
                return code
        raise RuntimeError("no wrong code")


def pamtester(service, user, *answers, ops=("authenticate",), env=None, timeout=60):
    """pamtester -v on SERVICE for USER, one line of stdin per prompt; prompts and libpam's
    messages are on stderr."""
    return run(["pamtester", "-v", service, user, *ops],
               input="".join(a + "\n" for a in answers), env=env, timeout=timeout)


def oathtool(counter):
    return run(["oathtool", "-c", str(counter), KEY], check=True).stdout.strip()


def add_user(name, shell="/bin/sh"):
    """A real local user with a home; removed (with home and mail spool) at exit."""
    run(["userdel", "-r", name])  # leftovers of an interrupted run
    run(["useradd", "-m", "-s", shell, name], check=True)
    # "*": no Unix password at all (tessera replaces it), but not a locked account.
    run(["usermod", "-p", "*", name], check=True)
    CLEANUP.add(f"userdel {name}", lambda: _userdel(name))
    return name


def _userdel(name):
    p = run(["userdel", "-r", "-f", name])
    if p.returncode not in (0, 12):  # 12: home already gone
        log(f"cleanup: userdel {name}: {p.stderr.strip()}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def remove_pam_wrapper_leftovers(ours):
    """pam_wrapper's per-process copies of a service directory (/tmp/pam.X) that a killed process
    left: only those holding a service file that names `ours` (this world's directory), never
    another user's or another run's."""
    for n in os.listdir("/tmp"):
        d = os.path.join("/tmp", n)
        if not re.fullmatch(r"pam\.[0-9A-Za-z]", n) or not os.path.isdir(d):
            continue
        try:
            mine = any(ours in open(os.path.join(d, f), errors="replace").read()
                       for f in os.listdir(d))
        except OSError:
            continue
        if mine:
            shutil.rmtree(d, ignore_errors=True)


class Pty:
    """A program on a fresh pseudo-terminal (its controlling terminal), driven by expect()."""

    def __init__(self, argv, env=None):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.execvpe(argv[0], argv, env or os.environ)
            finally:
                os._exit(127)
        self.buf = ""  # output not yet consumed by expect()
        self.transcript = ""  # everything, for failure messages
        self.eof = False
        CLEANUP.add(f"kill pty child {self.pid}", self.kill)

    def _fill(self, timeout):
        """Reads what arrives within `timeout`; False at end of output or on timeout."""
        if self.eof:
            return False
        r, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not r:
            return False
        try:
            data = os.read(self.fd, 4096)
        except OSError:  # EIO: the other side closed
            data = b""
        if not data:
            self.eof = True
            return False
        text = data.decode(errors="replace")
        self.buf += text
        self.transcript += text
        return True

    def expect(self, pattern, timeout=15):
        """Waits until `pattern` (regex) appears in the unread output; returns the match (the
        output up to its end is consumed) or None on timeout or end of output."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            if not self._fill(deadline - time.monotonic()) and (
                self.eof or time.monotonic() >= deadline
            ):
                return None

    def send(self, line):
        os.write(self.fd, (line + "\n").encode())

    def wait(self, timeout=15):
        """Reads to the end and returns the exit status (None if it did not end in time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.pid = 0
                while self._fill(0.05):
                    pass
                return os.waitstatus_to_exitcode(status)
            self._fill(0.1)
        return None

    def kill(self):
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.pid = 0
        try:
            os.close(self.fd)
        except OSError:
            pass


def sshd_with_stack(w, service, stack_text, settings, users):
    """A real sshd on 127.0.0.1 for `users` whose PAM service is SERVICE (installed with
    `stack_text`; sshd runs through a symlink of that name, so /etc/pam.d/sshd is never
    touched), with `settings` added to its config; stopped at exit. Returns its port."""
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
    if not os.path.exists(f"{w.dir}/hostkey"):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{w.dir}/hostkey"], check=True)
    w.install_service(service, stack_text)
    os.makedirs(f"{w.dir}/bin", exist_ok=True)
    exe = f"{w.dir}/bin/{service}"
    os.symlink("/usr/sbin/sshd", exe)
    port = free_port()
    conf = f"{w.dir}/{service}_config"
    with open(conf, "w") as f:
        f.write(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {w.dir}/hostkey\nPidFile none\n"
            "UsePAM yes\nKbdInteractiveAuthentication yes\nPermitRootLogin no\nUseDNS no\n"
            f"AllowUsers {' '.join(users)}\nMaxAuthTries 20\nLogLevel VERBOSE\n"
            + "".join(f"{k} {v}\n" for k, v in settings.items())
        )
    p = run([exe, "-t", "-f", conf])
    if p.returncode != 0:
        raise RuntimeError(f"sshd -t: {p.stderr}")
    logf = open(f"{w.dir}/{service}.log", "w")
    proc = subprocess.Popen([exe, "-D", "-e", "-f", conf], stdout=logf, stderr=logf)
    CLEANUP.add(f"stop sshd {proc.pid}", lambda: (proc.terminate(), proc.wait(10)))
    if not wait_port(port, proc):
        raise RuntimeError(f"sshd {service} did not start: {open(logf.name).read()}")
    return port


def kbd_interactive(port, user, answer):
    """keyboard-interactive as `user` over a real SSH connection (paramiko) to 127.0.0.1:port.
    answer(prompt, shown) gives each answer, where `shown` is what came with the prompt: sshd
    puts PAM's information messages before the prompt's last line (and in the instructions,
    where a client reads them). Returns (logged in?, [(shown, prompt)])."""
    import paramiko
    seen = []
    t = paramiko.Transport(("127.0.0.1", port))
    try:
        t.start_client(timeout=10)

        def handler(_title, instructions, prompts):
            out = []
            for text, _echo in prompts:
                *info, prompt = text.split("\n")
                shown = "\n".join(filter(None, [instructions, *info]))
                seen.append((shown, prompt))
                out.append(answer(prompt, shown))
            return out

        try:
            t.auth_interactive(user, handler)
        except paramiko.AuthenticationException:
            pass
        return t.is_authenticated(), seen
    finally:
        t.close()


def askpass_ssh(w, port, user, answers, options=(), timeout=30):
    """OpenSSH's ssh as `user` to 127.0.0.1:port, running `id -un`, without a TTY: every
    prompt goes to an askpass script that answers by the prompt's text (answers:
    {substring: answer}; "" matches any prompt) and logs the prompt, never the answer.
    `options` are more ssh arguments (`-o ...`). The script holds the answers and is removed
    after the run. Returns (the CompletedProcess, the prompts asked)."""
    script, plog = f"{w.dir}/askpass", f"{w.dir}/askpass.log"
    with open(script, "w") as f:
        f.write(f"#!/bin/sh\nprintf '%s\\n' \"$1\" >> {plog}\n")
        f.write('case "$1" in\n')
        for sub, ans in answers.items():
            f.write(f"  *'{sub}'*) printf '%s\\n' '{ans}' ;;\n")
        f.write("  *) exit 1 ;;\nesac\n")
    os.chmod(script, 0o700)
    if os.path.exists(plog):
        os.remove(plog)
    env = dict(os.environ, SSH_ASKPASS=script, SSH_ASKPASS_REQUIRE="force", DISPLAY="none")
    cmd = [
        "ssh", "-F", "/dev/null", "-p", str(port), "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", *options, f"{user}@127.0.0.1", "id", "-un",
    ]
    try:
        p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout, start_new_session=True)
    finally:
        os.remove(script)
    prompts = open(plog).read().splitlines() if os.path.exists(plog) else []
    return p, prompts


def secret_of(uri):
    """The base32 key of an otpauth:// URI."""
    return re.search(r"secret=([A-Z2-7]+)", uri).group(1)


def totp(secret, later=0):
    """oathtool's TOTP code for the base32 secret, `later` seconds from now."""
    p = run(["oathtool", "--totp", "--base32", "-N", f"@{int(time.time()) + later}", secret])
    return p.stdout.strip()
