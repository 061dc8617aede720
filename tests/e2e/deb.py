#!/usr/bin/python3
"""The Debian package, end to end: build (or take) libpam-tessera's .deb, run lintian, install
it (tesserad and its systemd units, tesserad.socket enabled, the _tessera user created and given
/var/lib/tessera), `tessera init` (store and key _tessera's), enroll a token, run tesserad the
way tesserad.socket does (systemd-socket-activate, as _tessera) and log in with pamtester
through the installed module and the socket, as root and as the user itself (a screen locker);
then with the daemon stopped through the `tesserad --stdio` the module spawns; an upgrade from
the in-process module's layout (store, key and directory root's, the socket disabled); try the
pam-auth-update profile (in a private mount namespace, so the real /etc/pam.d/common-* never
change; postinst warns when it is enabled before `tessera init`); a removal refused while a
copied file in /etc/pam.d loads the module, then forced with TESSERA_FORCE_REMOVE=1; a purge
that keeps the store, the key and _tessera (installed again, the same token logs in); a purge
with TESSERA_PURGE_STORE=1, and check that nothing of the package is left (the _tessera user
neither).

There is no systemd as PID 1 here (nor in CI): the maintainer scripts only create and remove
the units' enable links, which is what is checked; the socket unit is emulated with
systemd-socket-activate and setpriv, as its settings say (ListenStream, SocketMode, User).
Without systemd postinst starts /etc/init.d/tesserad instead, and says so in one line: where a
policy-rc.d forbids it (a container's, as here) it says how to start it; installed once as on
a sysvinit host (the policy hidden, a runlevel: debinit.py), it starts it. The daemon it started serves the store `tessera
init` makes afterwards (a non-root login through the socket); the init script's status,
reload (SIGHUP), restart and stop work on its pidfile, and its log file gets the daemon's lines
with their time, without /dev/log. It is stopped before the emulated socket unit takes the
socket; the removal stops the daemon of its pidfile (whatever the policy) and the one started
by hand, and the purge removes the log.

Usage (as root): tests/e2e/deb.py [PATH.deb]
Without a path it builds the package from a copy of this tree with `dpkg-buildpackage -b -us
-uc` (cargo's target/ of this tree is reused as the build cache).
Refuses to run when libpam-tessera is installed or /etc/tessera or /var/lib/tessera exist: it
would not purge an administrator's real setup. What a run killed half way left (marked by
/var/lib/tessera-e2e-deb.in-progress) is purged by the next run; a run still under way (the
mark's pid is a live deb.py) is left alone, and this one stops.
"""

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import (  # noqa: E402
    CLEANUP, KEY, ROOT, Hotp, Results, add_user, log, pamtester, require_root, run,
)
import debinit  # noqa: E402

PKG = "libpam-tessera"
OTP_PROMPT = "Please enter your otp value: "
MULTIARCH = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True,
                           text=True).stdout.strip() or "x86_64-linux-gnu"
MODULE = f"/usr/lib/{MULTIARCH}/security/pam_tessera.so"

require_root()
R = Results("deb")
tag = os.getpid() % 100000


def installed():
    p = run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", PKG])
    return p.returncode == 0 and p.stdout.strip() not in ("", "un", "pn")


# This run's mark: present from before the install until everything is purged again. Found at
# the start, it says that what is installed is what a run of this test left when it was killed
# half way (no cleanup runs then), not an administrator's setup: it is purged before going on.
MARK = "/var/lib/tessera-e2e-deb.in-progress"


def run_under_way():
    """The pid of the run that made the mark, if it still runs (two runs share one host's dpkg
    database: the second must not purge the first's package)."""
    try:
        m = re.search(r"pid (\d+)", open(MARK).read())
        pid = int(m.group(1))
        alive = pid != os.getpid() and "deb.py" in open(f"/proc/{pid}/cmdline").read()
    except (OSError, AttributeError, ValueError):
        return None
    return pid if alive else None


def purge_leftovers_of_a_killed_run():
    log(f"{MARK} exists: purging what an interrupted run of this test left")
    for pid in os.listdir("/proc"):
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        if exe.startswith("/usr/sbin/tesserad") or exe.startswith("/tmp/tessera-e2e.deb."):
            run(["kill", "-9", pid])
    run(["env", "TESSERA_FORCE_REMOVE=1", "TESSERA_PURGE_STORE=1", "dpkg", "-P", PKG],
        timeout=300)
    for leftover in glob.glob("/etc/pam.d/tessera-*") + glob.glob("/tmp/tessera-e2e.deb.*") + [
            "/etc/tessera", "/var/lib/tessera", "/run/tessera", "/run/tessera-e2e-hand",
            debinit.PIDFILE, debinit.LOG]:
        if os.path.isdir(leftover):
            shutil.rmtree(leftover, ignore_errors=True)
        elif os.path.exists(leftover):
            os.remove(leftover)
    os.remove(MARK)


if os.path.exists(MARK) and run_under_way():
    log(f"another run of this test (pid {run_under_way()}) is under way: not touching it")
    sys.exit(1)
if os.path.exists(MARK):
    purge_leftovers_of_a_killed_run()
if installed() or os.path.exists("/etc/tessera") or os.path.exists("/var/lib/tessera"):
    log(f"{PKG} is installed or /etc/tessera or /var/lib/tessera exist: not touching them")
    sys.exit(1)
with open(MARK, "w") as f:
    f.write(f"tests/e2e/deb.py pid {os.getpid()}: removed when its cleanup has run\n")
# Registered first, so run last: after the purge below.
CLEANUP.add(f"rm {MARK}", lambda: os.path.exists(MARK) and os.remove(MARK))

work = tempfile.mkdtemp(prefix="tessera-e2e.deb.")
CLEANUP.add(f"rm -r {work}", lambda: shutil.rmtree(work, ignore_errors=True))


def build():
    """dpkg-buildpackage -b -us -uc in a copy of the tree; returns (.deb, .changes)."""
    src = os.path.join(work, "src")
    os.mkdir(src)
    tar = subprocess.Popen(["tar", "-C", ROOT, "--exclude=./target", "--exclude=./.git",
                            "-cf", "-", "."], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-C", src, "-xf", "-"], stdin=tar.stdout, check=True)
    tar.wait()
    env = dict(os.environ, CARGO_TARGET_DIR=os.environ.get("CARGO_TARGET_DIR")
               or os.path.join(ROOT, "target"))
    t0 = time.monotonic()
    with open(os.path.join(work, "build.log"), "w") as logf:
        p = subprocess.run(["dpkg-buildpackage", "-b", "-us", "-uc"], cwd=src, env=env,
                           stdout=logf, stderr=subprocess.STDOUT, timeout=1800)
    log(f"      (dpkg-buildpackage: {time.monotonic() - t0:.0f}s, exit {p.returncode})")
    if p.returncode != 0:
        log(open(os.path.join(work, "build.log")).read()[-3000:])
        return None, None
    debs = glob.glob(os.path.join(work, f"{PKG}_*.deb"))
    changes = glob.glob(os.path.join(work, "tessera_*.changes"))
    return (debs[0] if debs else None), (changes[0] if changes else None)


if len(sys.argv) > 1:
    deb, changes = os.path.abspath(sys.argv[1]), None
else:
    deb, changes = build()
if not R.check("dpkg-buildpackage -b -us -uc builds the package", bool(deb)):
    R.finish()

lint = run(["lintian", "--pedantic", "-I", "--show-overrides", changes or deb], timeout=300)
log("      lintian output:\n" + "\n".join("      | " + line for line in
                                          lint.stdout.splitlines() + lint.stderr.splitlines()))
R.check("lintian: no errors, no warnings", not re.search(r"(?m)^[EW]: ", lint.stdout),
        lint.stdout)

# What exists with "tessera" in its name before: after the purge there must be nothing more.
# /var/cache/man: cat pages that `man` leaves whenever anyone reads an installed page during
# the test; man-db's cache, not the package's files (seen left for tesserad(8), tessera.toml(5)).
PRUNE = ["/proc", "/sys", "/dev", "/run", "/tmp", "/work", "/root", "/var/log", "/home",
         "/var/cache/man"]


def tessera_paths():
    cmd = ["find", "/", "-xdev"]
    for i, p in enumerate(PRUNE):
        cmd += (["-o"] if i else ["("]) + ["-path", p]
    cmd += [")", "-prune", "-o", "-iname", "*tessera*", "-print"]
    return set(run(cmd, timeout=300).stdout.split())


def digest(paths):
    out = {}
    for p in paths:
        with open(p, "rb") as f:
            out[p] = hashlib.sha256(f.read()).hexdigest()
    return out


COMMON = sorted(glob.glob("/etc/pam.d/common-*"))
PAM_STATE = sorted(glob.glob("/var/lib/pam/*"))  # pam-auth-update's own record
before_paths = tessera_paths()
before_common = digest(COMMON)
before_state = digest(PAM_STATE)


def purge_if_left():
    # A test that failed half way leaves no package behind, whatever /etc/pam.d holds then.
    if installed():
        run(["env", "TESSERA_FORCE_REMOVE=1", "TESSERA_PURGE_STORE=1", "dpkg", "-P", PKG])


CLEANUP.add(f"dpkg -P {PKG}", purge_if_left)

# --- install ----------------------------------------------------------------------------------
# /run/tessera is made by whichever tesserad binds the socket first: removed at the end if this
# run made it.
made_run_dir = not os.path.exists("/run/tessera")
POLICY_FORBIDS = debinit.policy_forbids_start()
p = run(["dpkg", "-i", deb], timeout=300)
R.check("dpkg -i installs the package", p.returncode == 0 and installed(), p.stdout + p.stderr)
said = debinit.said(p)
if POLICY_FORBIDS:
    R.check("postinst where a policy-rc.d forbids starting services (a container; no systemd): "
            "one line says tesserad was not started, and how to start it",
            len(said) == 1 and "not started" in said[0]
            and "service tesserad start" in said[0] and debinit.pid() is None,
            p.stdout + p.stderr)
else:
    R.check("postinst without systemd: /etc/init.d/tesserad started, said in one line",
            len(said) == 1 and "started by /etc/init.d/tesserad" in said[0]
            and debinit.pid() is not None, p.stdout + p.stderr)


def mode(path):
    try:
        return oct(os.stat(path).st_mode & 0o7777)
    except FileNotFoundError:
        return None


R.check(f"module installed as {MODULE}", mode(MODULE) == "0o644", str(mode(MODULE)))
R.check("tessera command in /usr/sbin", mode("/usr/sbin/tessera") == "0o755")
init_script = open(debinit.INIT).read() if os.path.exists(debinit.INIT) else ""
rc_links = sorted(os.path.basename(os.path.dirname(x)) + ":" + os.path.basename(x)[0]
                  for x in glob.glob("/etc/rc?.d/[SK]*tesserad"))
R.check("/etc/init.d/tesserad installed (0755, LSB header), started in runlevels 2-5 and "
        "stopped in 0, 1, 6 (update-rc.d); its logrotate file too",
        mode(debinit.INIT) == "0o755" and "### BEGIN INIT INFO" in init_script
        and re.search(r"(?m)^# Provides:\s+tesserad$", init_script) is not None
        and rc_links == ["rc0.d:K", "rc1.d:K", "rc2.d:S", "rc3.d:S", "rc4.d:S", "rc5.d:S",
                         "rc6.d:K"]
        and "copytruncate" in debinit.read("/etc/logrotate.d/libpam-tessera"),
        f"{mode(debinit.INIT)} {rc_links}")
p = run(["/usr/sbin/tesserad", "--version"])
R.check("tesserad in /usr/sbin runs: tesserad --version",
        mode("/usr/sbin/tesserad") == "0o755" and p.returncode == 0
        and re.fullmatch(r"tesserad \S+", p.stdout.strip()) is not None,
        f"{mode('/usr/sbin/tesserad')} {p.returncode} {p.stdout!r} {p.stderr!r}")
UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system")
units = {}
for name in ("tesserad.socket", "tesserad.service"):
    found = [os.path.join(d, name) for d in UNIT_DIRS if os.path.exists(os.path.join(d, name))]
    units[name] = found[0] if found else None
R.check("tesserad.socket and tesserad.service installed", all(units.values()), str(units))


def unit_settings(path):
    """KEY=VALUE lines of a unit file (a key given twice keeps its values in order)."""
    out = {}
    for line in open(path).read().splitlines() if path else []:
        m = re.match(r"^([A-Za-z]+)=(.*)$", line.strip())
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


sock, svc = unit_settings(units["tesserad.socket"]), unit_settings(units["tesserad.service"])
R.check("tesserad.socket: ListenStream=/run/tessera/tessera.sock, SocketMode=0666",
        sock.get("ListenStream") == ["/run/tessera/tessera.sock"]
        and sock.get("SocketMode") == ["0666"], str(sock))
R.check("tesserad.service: /usr/sbin/tesserad as _tessera, no capabilities, read-only system",
        any(v.startswith("/usr/sbin/tesserad") for v in svc.get("ExecStart", []))
        and svc.get("User") == ["_tessera"] and svc.get("CapabilityBoundingSet") == [""]
        and svc.get("ProtectSystem") == ["strict"] and svc.get("NoNewPrivileges") == ["yes"],
        str(svc))
WANTS = "/etc/systemd/system/sockets.target.wants/tesserad.socket"


def socket_enabled():
    return (os.path.islink(WANTS) and bool(units["tesserad.socket"])
            and os.path.realpath(WANTS) == os.path.realpath(units["tesserad.socket"]))


R.check("the install enables tesserad.socket (the link in sockets.target.wants), not the service "
        "on its own", socket_enabled()
        and glob.glob("/etc/systemd/system/*.wants/tesserad.*") == [WANTS],
        str(glob.glob("/etc/systemd/system/*/tesserad.*"))
        + (os.readlink(WANTS) if os.path.islink(WANTS) else ""))
if shutil.which("systemd-analyze"):
    p = run(["systemd-analyze", "verify", units["tesserad.socket"], units["tesserad.service"]],
            timeout=120)
    R.check("systemd-analyze verify: the installed units are clean",
            p.returncode == 0 and not p.stderr.strip(), p.stdout + p.stderr)
    p = run(["systemd-analyze", "security", "--offline=true", units["tesserad.service"]],
            timeout=120)
    m = re.search(r"Overall exposure level for tesserad\.service: ([0-9.]+)", p.stdout)
    R.check("systemd-analyze security: tesserad.service exposure at most 2.0",
            m is not None and float(m.group(1)) <= 2.0, (m and m.group(0)) or p.stdout[-500:])


def account(name):
    p = run(["getent", "passwd", name])
    return p.stdout.strip().split(":") if p.returncode == 0 else None


def group_exists(name):
    return run(["getent", "group", name]).returncode == 0


acct = account("_tessera")
R.check("postinst creates the system user _tessera (group _tessera, home /var/lib/tessera, "
        "no login shell)", acct is not None and int(acct[2]) < 1000 and group_exists("_tessera")
        and acct[5] == "/var/lib/tessera" and acct[6] in ("/usr/sbin/nologin", "/bin/false"),
        str(acct))
TUID, TGID = (int(acct[2]), int(acct[3])) if acct else (-1, -1)


def wait_for(cond, seconds=10):
    """Whether cond() became true within that time."""
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def owned(path):
    """(uid, gid, mode) of a path, not following a link; None if it is missing."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return st.st_uid, st.st_gid, oct(st.st_mode & 0o7777)


R.check("/var/lib/tessera belongs to _tessera, 0700",
        owned("/var/lib/tessera") == (TUID, TGID, "0o700"), str(owned("/var/lib/tessera")))
# As on a sysvinit host (a runlevel, no policy-rc.d): postinst starts the init script.
p = debinit.dpkg_as_sysvinit_host(work, "-i", deb)
R.check("installing again (postinst once more) keeps the same _tessera, its directory and the "
        "enabled socket", p.returncode == 0 and account("_tessera") == acct
        and owned("/var/lib/tessera") == (TUID, TGID, "0o700") and socket_enabled(),
        p.stdout + p.stderr)
R.check("postinst does not warn about tessera init while no PAM file names the module",
        "tessera init" not in p.stderr, p.stderr)
said, init_pid = debinit.said(p), debinit.pid()
SOCK = "/run/tessera/tessera.sock"
R.check("postinst without systemd (invoke-rc.d allowed): /etc/init.d/tesserad starts tesserad, "
        "as _tessera, on the socket; one line says so, with the pid and the log, and that it "
        "serves once tessera init is run",
        len(said) == 1 and init_pid is not None
        and f"started by /etc/init.d/tesserad (no systemd), pid {init_pid}, log {debinit.LOG}"
        in said[0] and "tessera init" in said[0]
        and debinit.uid_and_exe(init_pid) == (TUID, "/usr/sbin/tesserad")
        and os.path.exists(SOCK), p.stdout + p.stderr + str(debinit.uid_and_exe(init_pid)))
st = debinit.service("status")
R.check("service tesserad status: running, exit 0", st.returncode == 0
        and f"tesserad is running (pid {init_pid}" in st.stdout, st.stdout + st.stderr)

# --- the pam-auth-update profile, on copies of /etc/pam.d and /var/lib/pam --------------------
ns = os.path.join(work, "ns")
shutil.copytree("/etc/pam.d", f"{ns}/pam.d", symlinks=True)
shutil.copytree("/var/lib/pam", f"{ns}/var-lib-pam", symlinks=True)
with open(f"{ns}/pam.d/tessera-common", "w") as f:
    f.write("@include common-auth\n@include common-account\n")


def in_copy(*argv, input=None, timeout=120):
    """argv in a private mount namespace that sees the copies as /etc/pam.d and /var/lib/pam."""
    script = ('mount --bind "$0/pam.d" /etc/pam.d && '
              'mount --bind "$0/var-lib-pam" /var/lib/pam && exec "$@"')
    return run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, ns, *argv],
               input=input, timeout=timeout)


# Enabled before `tessera init`: every login through common-auth would fail. postinst (run
# again by installing the package once more, in the namespace) warns, and still succeeds.
p = in_copy("env", "DEBIAN_FRONTEND=noninteractive", "pam-auth-update", "--enable", "tessera")
p = in_copy("dpkg", "-i", deb, timeout=300)
R.check("profile enabled before tessera init: postinst warns, naming the common-auth line, "
        "and succeeds", p.returncode == 0 and installed()
        and re.search(r"/etc/pam\.d/common-auth:\d+: auth\s+required\s+pam_tessera\.so nullok",
                      p.stderr) is not None
        and "tessera init was not run" in p.stderr and "tessera-test" not in p.stderr,
        p.stdout + p.stderr)
conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", PKG]).stdout
R.check("/etc/tessera/tessera.toml and /etc/pam.d/tessera-test are conffiles",
        "/etc/tessera/tessera.toml " in conffiles and "/etc/pam.d/tessera-test " in conffiles,
        conffiles)
pages = [run(["man", "-w", sec, name]).stdout.strip()
         for sec, name in (("8", "pam_tessera"), ("8", "tessera"), ("5", "tessera.toml"),
                           ("8", "tesserad"))]
R.check("man pages pam_tessera(8), tessera(8), tessera.toml(5), tesserad(8) are found by man",
        all(pg.startswith("/usr/share/man/") for pg in pages), str(pages))
R.check("pam-auth-update profile installed, not enabled by the install",
        os.path.exists("/usr/share/pam-configs/tessera")
        and digest(COMMON) == before_common
        and not any("pam_tessera" in open(c).read() for c in COMMON))
syms = run(["nm", "-D", "--defined-only", MODULE]).stdout.split("\n")
exported = sorted({line.split()[-1] for line in syms if re.search(r" [TDBRW] ", line)})
R.check("the module exports only the pam_sm_* hooks",
        exported and all(s.startswith("pam_sm_") for s in exported), str(exported))

# --- init, enroll ------------------------------------------------------------------------------
STORE_DIR = "/var/lib/tessera"
KEYFILE = "/etc/tessera/secret.key"


def store_files_owned():
    """Every file in the store's directory, with (uid, gid, mode); and whether all are
    _tessera's and 0600 (no -wal or -shm of root's)."""
    files = {n: owned(os.path.join(STORE_DIR, n)) for n in sorted(os.listdir(STORE_DIR))}
    return files, bool(files) and all(v == (TUID, TGID, "0o600") for v in files.values())


p = run(["tessera", "init"])
files, ok = store_files_owned()
R.check("tessera init (as root) makes the key and the store _tessera's, 0600; /etc/tessera stays "
        "root's", p.returncode == 0 and owned(KEYFILE) == (TUID, TGID, "0o600")
        and files.get("tessera.db") == (TUID, TGID, "0o600") and ok
        and owned("/etc/tessera")[0] == 0,
        p.stdout + p.stderr + str((owned(KEYFILE), files)))
user = add_user(f"tsg{tag}")  # logins resolve to accounts: the user must exist
serial = run(["tessera", "token", "add", "--user", user, "--type", "hotp",
              "--pin-stdin", "--key", KEY], input="135790\n")
R.check("tessera token add prints the serial", serial.returncode == 0
        and re.fullmatch(r"\S+", serial.stdout.strip() or "-") is not None, serial.stderr)

otp = Hotp()
# Through the installed module's auth and account hooks, as a service would call them.
AUTH_AND_ACCOUNT = ("authenticate", "acct_mgmt")

# --- tesserad as /etc/init.d/tesserad runs it (no systemd) -----------------------------------
# The daemon postinst started before `tessera init` takes up the store made since, at its first
# login. A caller that is not root proves the socket served it (only the socket serves one).
p = run(["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups",
         "pamtester", "-v", "tessera-test", user, "authenticate"], input=f"135790{otp.next()}\n")
R.check("the tesserad postinst started before tessera init serves the store made since: a login "
        "as the user itself through the socket", p.returncode == 0 and debinit.pid() is not None,
        p.stderr)
before = debinit.pid()
p = debinit.service("reload")
R.check("service tesserad reload: the config checked, SIGHUP, the same daemon reloads it",
        p.returncode == 0 and debinit.pid() == before
        and wait_for(lambda: "config reloaded" in debinit.read(debinit.LOG)),
        p.stdout + p.stderr + debinit.read(debinit.LOG))
p = debinit.service("restart")
after = debinit.pid()
R.check("service tesserad restart: another daemon, of the package's binary, as _tessera",
        p.returncode == 0 and after is not None and after != before
        and debinit.uid_and_exe(after) == (TUID, "/usr/sbin/tesserad")
        and wait_for(lambda: os.path.exists(SOCK)), p.stdout + p.stderr)
p = pamtester("tessera-test", user, "135790" + otp.next(), ops=AUTH_AND_ACCOUNT)
R.check("a login as root through the restarted daemon", p.returncode == 0, p.stderr)
# The restarted daemon's "listening" line is written just after its socket answers: waited for.
wait_for(lambda: debinit.read(debinit.LOG).count(f"tesserad: listening on {SOCK}\n") >= 2)
logged = debinit.read(debinit.LOG)
st = os.stat(debinit.LOG) if logged else None
R.check(f"{debinit.LOG} gets the daemon's lines, each with its time ("
        + ("no /dev/log here" if not os.path.exists("/dev/log") else "/dev/log not needed")
        + "): its user, the socket, the reload; root's, 0640",
        logged and all(debinit.TIMED.match(x) for x in logged.splitlines())
        and f"tesserad: serving as uid {TUID}, the owner of /var/lib/tessera" in logged
        and logged.count(f"tesserad: listening on {SOCK}\n") >= 2
        and "tesserad: config reloaded from /etc/tessera/tessera.toml" in logged
        and (st.st_uid, oct(st.st_mode & 0o777)) == (0, "0o640"),
        logged + (str((st.st_uid, oct(st.st_mode))) if st else ""))
p = debinit.service("stop")
st = debinit.service("status")
R.check("service tesserad stop: the daemon ends, its pidfile and socket go; status then says "
        "not running (exit 3)",
        p.returncode == 0 and debinit.uid_and_exe(after) == (None, None)
        and not os.path.exists(debinit.PIDFILE) and not os.path.exists(SOCK)
        and st.returncode == 3 and "not running" in st.stdout,
        p.stdout + p.stderr + st.stdout)

# --- tesserad as tesserad.socket starts it ----------------------------------------------------
# systemd-socket-activate binds the socket, waits for the first connection and execs the rest
# in its own process, with the socket on fd 3 and LISTEN_PID its pid (setpriv execs too, so the
# pid stays tesserad's): the socket unit's ListenStream=, then the service's User=/Group=.
os.makedirs("/run/tessera", mode=0o755, exist_ok=True)
os.chmod("/run/tessera", 0o755)


def remove_run_dir():
    if os.path.lexists(SOCK):
        os.remove(SOCK)
    if made_run_dir and os.path.isdir("/run/tessera"):
        os.rmdir("/run/tessera")


CLEANUP.add("rm -r /run/tessera", remove_run_dir)
daemon_log = open(os.path.join(work, "tesserad.log"), "w")
daemon = subprocess.Popen(
    ["systemd-socket-activate", "-l", SOCK,
     "setpriv", "--reuid=_tessera", "--regid=_tessera", "--init-groups",
     "/usr/sbin/tesserad", "--config", "/etc/tessera/tessera.toml"],
    stdout=daemon_log, stderr=subprocess.STDOUT, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


def stop_daemon():
    if daemon.poll() is None:
        daemon.terminate()
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


CLEANUP.add(f"kill tesserad {daemon.pid}", stop_daemon)
deadline = time.monotonic() + 10
while not os.path.exists(SOCK) and daemon.poll() is None and time.monotonic() < deadline:
    time.sleep(0.05)
os.chmod(SOCK, 0o666)  # SocketMode=0666: any caller may connect (tesserad checks who asks)


def daemon_said():
    daemon_log.flush()
    return open(daemon_log.name).read()


# A service that only the socket can serve: the module's daemon= points nowhere, so a root
# login can't fall back to spawning tesserad.
SOCKET_ONLY = f"tessera-sock{tag}"
socket_only_path = f"/etc/pam.d/{SOCKET_ONLY}"
with open(socket_only_path, "w") as f:
    f.write("auth required pam_tessera.so daemon=/nonexistent/tesserad\n")


def remove_socket_only():
    if os.path.exists(socket_only_path):
        os.remove(socket_only_path)


CLEANUP.add(f"rm {socket_only_path}", remove_socket_only)

p = pamtester(SOCKET_ONLY, user, "135790", otp.next())
said = daemon_said()
R.check("pamtester as root through the installed module and the socket: PIN, challenge, OTP "
        "(tesserad socket-activated as _tessera)", p.returncode == 0 and OTP_PROMPT in p.stderr
        and "(socket activation)" in said, p.stderr + said)
pid_uid = None
try:
    with open(f"/proc/{daemon.pid}/status") as f:
        pid_uid = re.search(r"(?m)^Uid:\s+(\d+)\s+(\d+)", f.read()).groups()
    comm = open(f"/proc/{daemon.pid}/comm").read().strip()
except (FileNotFoundError, AttributeError):
    comm = None
R.check("the socket-activated tesserad runs as _tessera in the process that was started "
        "(LISTEN_PID kept through the execs)",
        comm == "tesserad" and pid_uid == (str(TUID), str(TUID)), f"{comm} {pid_uid}")
p = pamtester("tessera-test", user, "135790" + otp.next(), ops=AUTH_AND_ACCOUNT)
R.check("pamtester tessera-test: PIN+OTP in one answer", p.returncode == 0, p.stderr)
p = pamtester("tessera-test", user, "135790", otp.wrong(), ops=AUTH_AND_ACCOUNT)
R.check("pamtester tessera-test: a wrong OTP is refused",
        p.returncode != 0 and "Authentication failure" in p.stderr, p.stderr)
# A caller that is not root (a screen locker runs as the user): only the socket serves it,
# and only for its own account.
p = run(["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups",
         "pamtester", "-v", "tessera-test", user, "authenticate"],
        input=f"135790{otp.next()}\n")
R.check("pamtester as the user itself (a screen locker) logs in through the socket",
        p.returncode == 0, p.stderr)
# tessera import, run by root as an admin would: the user's own ~/.google_authenticator (0400,
# theirs) is read as root, then the store is written as _tessera; the file's owner is the user.
guser = add_user(f"tsi{tag}")
home = os.path.expanduser(f"~{guser}")
gfile = os.path.join(home, ".google_authenticator")
made = run(["setpriv", f"--reuid={guser}", f"--regid={guser}", "--init-groups",
            "env", f"HOME={home}", "google-authenticator", "-t", "-d", "-f", "-C", "-q", "-u",
            "-w", "3", "-e", "2", "-l", "deb"])
imp = run(["tessera", "import", "--format", "google-authenticator", gfile])
listing = run(["tessera", "token", "list", "--user", guser])
files, ok = store_files_owned()
R.check("tessera import (as root) reads a user's own 0400 ~/.google_authenticator and enrolls "
        "its totp and tan tokens for the file's owner; the store stays _tessera's, 0600",
        made.returncode == 0 and (owned(gfile) or (None,))[0] == int(account(guser)[2])
        and imp.returncode == 0
        and "imported 2 token(s)" in imp.stdout and "totp" in listing.stdout
        and f"warning: 2 token(s) without a PIN ({guser}/" in imp.stdout
        and "tan" in listing.stdout and ok,
        made.stderr + imp.stdout + imp.stderr + listing.stdout + str(files))
secret = open(gfile).readline().strip()
code = run(["oathtool", "--totp", "-b", secret]).stdout.strip()
p = pamtester("tessera-test", guser, code, ops=AUTH_AND_ACCOUNT)
R.check("the imported TOTP logs the user in through the socket", p.returncode == 0, p.stderr)
doctor = run(["tessera", "doctor"])
# A container without a syslog daemon has no /dev/log: doctor rightly warns about that, and
# only that is allowed here.
# The imported tokens have no PIN and tessera-test has tessera alone: doctor warns about that
# (checked below), which is no other warning.
pinless = [l for l in doctor.stdout.splitlines() if l.startswith("warn") and "without a PIN" in l]
doctor_warnings = [l for l in re.findall(r"(?m)^(?:warn|fail).*$", doctor.stdout, re.I)
                   if (os.path.exists("/dev/log") or "/dev/log" not in l) and l not in pinless]
R.check("tessera doctor warns of the imported tokens without a PIN, where /etc/pam.d/tessera-test "
        "has tessera alone",
        len(pinless) == 1 and pinless[0].startswith(f"warn  2 token(s) without a PIN ({guser}/")
        and "/etc/pam.d/tessera-test" in pinless[0], doctor.stdout)
R.check("tessera doctor: everything ok (checked as _tessera, module installed, a service uses "
        "it, tesserad answers on the socket)",
        doctor.returncode == 0
        and re.search(r"(?m)^ok    used by /etc/pam\.d: .*\btessera-test\b", doctor.stdout)
        and f"ok    checking as uid {TUID}" in doctor.stdout
        and f"ok    tesserad answers on {SOCK}" in doctor.stdout
        and not doctor_warnings,
        doctor.stdout + doctor.stderr)
R.check("tessera doctor: one line per PAM line that loads the module, with the module file, and "
        "tessera init done", re.search(r"(?m)^ok    /etc/pam\.d/tessera-test:\d+: auth required "
                                     rf"pam_tessera\.so: module {re.escape(MODULE)}$",
                                     doctor.stdout) is not None
        and re.search(rf"(?m)^ok    /etc/pam\.d/{SOCKET_ONLY}:1: auth required pam_tessera\.so "
                      r"daemon=/nonexistent/tesserad: module ", doctor.stdout) is not None
        and "ok    tessera init done: the key and the store exist" in doctor.stdout,
        doctor.stdout)
stop_daemon()
remove_run_dir()  # as RemoveOnStop=yes does
R.check("the emulated tesserad stops on SIGTERM", daemon.returncode is not None,
        daemon_said())

# --- no daemon: the module spawns tesserad --stdio, which becomes _tessera -------------------
p = pamtester("tessera-test", user, "135790", otp.next(), ops=AUTH_AND_ACCOUNT)
R.check("daemon stopped: pamtester tessera-test logs in through the tesserad --stdio the module "
        "spawns", p.returncode == 0 and OTP_PROMPT in p.stderr, p.stderr)
p = pamtester(SOCKET_ONLY, user, "135790" + otp.next())
R.check("daemon stopped: the service that may not spawn fails (so the logins above went "
        "through the socket)", p.returncode != 0, p.stderr)
otp.counter -= 1  # that OTP never reached the engine
remove_socket_only()
files, ok = store_files_owned()
R.check("everything in /var/lib/tessera is still _tessera's, 0600 (no -wal or -shm of root's)",
        ok and {"tessera.db", "tessera.db-wal", "tessera.db-shm"} <= set(files), str(files))

# --- upgrades ---------------------------------------------------------------------------------
# An administrator who disabled the socket keeps it disabled across an upgrade.
os.remove(WANTS)
p = run(["dpkg", "-i", deb], timeout=300)
R.check("upgrade: a socket the administrator disabled stays disabled",
        p.returncode == 0 and not os.path.lexists(WANTS), p.stdout + p.stderr)
# The in-process module's layout: the directory, the store and the key root's, and the socket
# recorded as disabled (its enable link absent, debhelper's state file present). Its postinst
# hands everything to _tessera and enables the socket once.
run(["chown", "-R", "root:root", STORE_DIR, KEYFILE], check=True)
p = run(["dpkg", "-i", deb], timeout=300)
files, ok = store_files_owned()
R.check("upgrade from the in-process module: the directory (0700), the store files and the key "
        "(0600) become _tessera's; the socket is enabled",
        p.returncode == 0 and owned(STORE_DIR) == (TUID, TGID, "0o700") and ok
        and owned(KEYFILE) == (TUID, TGID, "0o600") and socket_enabled(),
        p.stdout + p.stderr + str((owned(STORE_DIR), files, owned(KEYFILE))))
p = pamtester("tessera-test", user, "135790", otp.next(), ops=AUTH_AND_ACCOUNT)
R.check("after the upgrade a login works", p.returncode == 0, p.stderr)
p = run(["tessera", "token", "list"])
R.check("after the upgrade the tessera command works on the store", p.returncode == 0
        and user in p.stdout, p.stdout + p.stderr)

# --- the pam-auth-update profile, in the copies made above (enabled there already) ----------
p = in_copy("env", "DEBIAN_FRONTEND=noninteractive", "pam-auth-update", "--enable", "tessera")
auth = open(f"{ns}/pam.d/common-auth").read()
lines = [ln for ln in auth.splitlines() if ln.startswith("auth")]
tess = [i for i, ln in enumerate(lines) if "pam_tessera.so" in ln]
permit = [i for i, ln in enumerate(lines) if "pam_permit.so" in ln]
R.check("pam-auth-update --enable tessera adds 'required pam_tessera.so nullok' after the "
        "primary block", p.returncode == 0 and len(tess) == 1 and permit and tess[0] > permit[0]
        and re.search(r"required\s+pam_tessera\.so nullok", lines[tess[0]]) is not None,
        p.stderr + auth)

# Two real users with Unix passwords: one with a token, one without.
pat, nat = add_user(f"tsp{tag}"), add_user(f"tsn{tag}")
run(["chpasswd"], input=f"{pat}:pw-{tag}-a\n{nat}:pw-{tag}-n\n", check=True)
run(["tessera", "token", "add", "--user", pat, "--type", "hotp", "--pin", "864202",
     "--key", KEY, "--counter", "100"], check=True)
otp_p = Hotp()
otp_p.counter = 100


def via_common(who, *answers):
    return in_copy("pamtester", "-v", "tessera-common", who, "authenticate", "acct_mgmt",
                   input="".join(a + "\n" for a in answers))


p = via_common(pat, f"pw-{tag}-a", "864202", otp_p.next())
R.check("profile enabled: Unix password, then token PIN and OTP", p.returncode == 0, p.stderr)
p = via_common(pat, f"pw-{tag}-a", "864202", otp_p.wrong())
R.check("profile enabled: the right password and a wrong OTP are refused", p.returncode != 0,
        p.stderr)
p = via_common(nat, f"pw-{tag}-n")
R.check("profile enabled: a user without a token logs in with the password (nullok)",
        p.returncode == 0 and "PIN" not in p.stderr, p.stderr)
p = via_common(nat, "wrong")
R.check("profile enabled: a wrong Unix password is still refused", p.returncode != 0, p.stderr)
p = in_copy("pam-auth-update", "--package", "--remove", "tessera")
R.check("pam-auth-update --remove tessera (what prerm does) takes the line out again",
        p.returncode == 0 and "pam_tessera" not in open(f"{ns}/pam.d/common-auth").read(),
        p.stderr)
R.check("the real /etc/pam.d/common-* never changed",
        digest(glob.glob("/etc/pam.d/common-*")) == before_common)

# --- remove, purge ----------------------------------------------------------------------------
stop_daemon()
# A service file the administrator copied that loads the module (and one that only mentions it
# in comments): removing the module would lock that service out, so the removal is refused.
COPY, COMMENTED = "/etc/pam.d/tessera-copy", "/etc/pam.d/tessera-commented"
# And one that loads a module of that name from another path (a build of one's own): not the
# package's module, so not the package's business.
ELSEWHERE = "/etc/pam.d/tessera-elsewhere"


def remove_copies():
    for f in (COPY, COMMENTED, ELSEWHERE):
        if os.path.exists(f):
            os.remove(f)


CLEANUP.add(f"rm {COPY} {COMMENTED} {ELSEWHERE}", remove_copies)
with open(COPY, "w") as f:
    f.write("#%PAM-1.0\nauth required pam_tessera.so\naccount required pam_unix.so\n")
with open(COMMENTED, "w") as f:
    f.write("#auth required pam_tessera.so\nauth required pam_unix.so # was pam_tessera.so\n")
with open(ELSEWHERE, "w") as f:
    f.write(f"auth required {work}/build/libpam_tessera.so\nauth required /opt/x/pam_tessera.so\n")
p = run(["dpkg", "-r", PKG], timeout=300)
# dpkg leaves the selection at "remove" (r) and the package installed (i), no error flag.
status = run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", PKG]).stdout
R.check("dpkg -r refuses while a copied file in /etc/pam.d loads pam_tessera, naming its file "
        "and line (not a commented one) and TESSERA_FORCE_REMOVE; the package stays installed",
        p.returncode != 0 and status[1:3] == "i " and os.path.exists(MODULE)
        and f"{COPY}:2: auth required pam_tessera.so" in p.stderr
        and COMMENTED not in p.stderr and ELSEWHERE not in p.stderr
        and "TESSERA_FORCE_REMOVE=1" in p.stderr
        and socket_enabled(), status + p.stdout + p.stderr)
p = pamtester("tessera-test", user, "135790", otp.next(), ops=AUTH_AND_ACCOUNT)
R.check("after the refused removal a login still works", p.returncode == 0, p.stderr)
# A tesserad started by hand as root, outside systemd (it serves as _tessera): the removal
# stops it and says so.
hand = subprocess.Popen(["/usr/sbin/tesserad", "--socket", "/run/tessera-e2e-hand/t.sock"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
CLEANUP.add(f"kill tesserad {hand.pid}", lambda: hand.poll() is None and hand.kill())
CLEANUP.add("rm -r /run/tessera-e2e-hand",
            lambda: shutil.rmtree("/run/tessera-e2e-hand", ignore_errors=True))
for _ in range(100):
    if os.path.exists("/run/tessera-e2e-hand/t.sock"):
        break
    time.sleep(0.05)
R.check("a tesserad started by hand as root makes its socket's directory and serves as _tessera",
        os.path.exists("/run/tessera-e2e-hand/t.sock")
        and f"Uid:\t{TUID}\t{TUID}\t{TUID}\t{TUID}" in open(f"/proc/{hand.pid}/status").read(),
        open(f"/proc/{hand.pid}/status").read() if hand.poll() is None else "it ended")
# And a tesserad that is not this package's: the same binary copied elsewhere (as a container's
# or a build of one's own would be), on a socket of its own. The removal must leave it alone.
other_dir = os.path.join(work, "other")
os.makedirs(other_dir)
shutil.copy2("/usr/sbin/tesserad", f"{other_dir}/tesserad")
other = subprocess.Popen([f"{other_dir}/tesserad", "--config", "/etc/tessera/tessera.toml",
                          "--socket", f"{other_dir}/t.sock"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
CLEANUP.add(f"kill tesserad {other.pid}", lambda: other.poll() is None and other.kill())
for _ in range(100):
    if os.path.exists(f"{other_dir}/t.sock"):
        break
    time.sleep(0.05)
# And the init script's daemon (started here if the upgrades above did not: the policy).
started = debinit.service("start")
init_pid = debinit.pid()
R.check("service tesserad start (the admin's command where postinst could not start it)",
        started.returncode == 0 and init_pid is not None, started.stdout + started.stderr)
p = run(["env", "TESSERA_FORCE_REMOVE=1", "dpkg", "-r", PKG], timeout=300)
R.check("dpkg -r stops the init script's tesserad through its pidfile "
        + ("(said: invoke-rc.d may not, the policy forbids it)" if POLICY_FORBIDS
           else "(invoke-rc.d)") + ", and removes the pidfile and the socket",
        init_pid is not None and wait_for(lambda: debinit.uid_and_exe(init_pid) == (None, None))
        and not os.path.exists(debinit.PIDFILE) and not os.path.exists(SOCK)
        and (not POLICY_FORBIDS
             or f"stopped tesserad (pid {init_pid}) of /etc/init.d/tesserad" in p.stderr)
        and not re.search(rf"outside systemd \(pid [0-9 ]*\b{init_pid}\b", p.stderr),
        p.stderr)
try:
    hand.wait(10)
except subprocess.TimeoutExpired:
    pass
R.check("dpkg -r leaves a tesserad run from another path alone (not this package's)",
        os.path.exists(f"{other_dir}/t.sock") and other.poll() is None
        and str(other.pid) not in p.stderr, p.stderr)
# It serves as _tessera: stopped before the purge below removes that user.
other.terminate()
other.wait(10)
R.check("dpkg -r stops a tesserad started outside systemd, and says so",
        hand.poll() is not None
        and re.search(rf"stopping tesserad started outside systemd \(pid [0-9 ]*\b{hand.pid}\b",
                      p.stderr) is not None, p.stderr)
R.check("TESSERA_FORCE_REMOVE=1 dpkg -r removes the module, the command, the daemon and its "
        "units, keeps config and store, and warns about the copied file",
        p.returncode == 0 and not os.path.exists(MODULE)
        and not os.path.exists("/usr/sbin/tessera")
        and not os.path.exists("/usr/sbin/tesserad")
        and not any(os.path.exists(u) for u in units.values() if u)
        and os.path.exists("/etc/tessera/tessera.toml")
        and os.path.exists("/var/lib/tessera/tessera.db")
        and f"{COPY}:2: auth required pam_tessera.so" in p.stderr
        and "removing anyway" in p.stderr, p.stderr)
remove_copies()
p = run(["dpkg", "-P", PKG], timeout=300)
R.check("dpkg -P purges the config and the package's state but keeps the store, the key and "
        "their owner _tessera, and says where",
        p.returncode == 0 and not installed()
        and not os.path.exists("/etc/tessera/tessera.toml")
        and not os.path.exists("/etc/pam.d/tessera-test")
        and os.path.exists("/var/lib/tessera/tessera.db")
        and owned(STORE_DIR) == (TUID, TGID, "0o700")
        and owned(KEYFILE) == (TUID, TGID, "0o600") and account("_tessera") == acct
        and "kept the token store /var/lib/tessera, the key /etc/tessera/secret.key" in p.stderr
        and "TESSERA_PURGE_STORE=1" in p.stderr
        and not glob.glob("/etc/systemd/system/*/tesserad.*"), p.stdout + p.stderr)
p = run(["dpkg", "-i", deb], timeout=300)
tokens = run(["tessera", "token", "list"])
login = pamtester("tessera-test", user, "135790", otp.next(), ops=AUTH_AND_ACCOUNT)
R.check("installed again after that purge: the kept store and key serve the same tokens, a "
        "login works",
        p.returncode == 0 and account("_tessera") == acct and tokens.returncode == 0
        and user in tokens.stdout and login.returncode == 0 and "tessera init" not in p.stderr,
        p.stderr + tokens.stdout + tokens.stderr + login.stderr)
p = run(["env", "TESSERA_PURGE_STORE=1", "dpkg", "-P", PKG], timeout=300)
after = tessera_paths()
R.check("TESSERA_PURGE_STORE=1 dpkg -P purges config, key, store and state (no copied file "
        "names the module: not refused)",
        p.returncode == 0 and not installed() and not os.path.exists("/etc/tessera")
        and not os.path.exists("/var/lib/tessera")
        and not os.path.exists("/etc/pam.d/tessera-test"), p.stderr)
R.check("dpkg -P removes the _tessera user and group, and the socket's enable link",
        account("_tessera") is None and not group_exists("_tessera")
        and not glob.glob("/etc/systemd/system/*/tesserad.*"))
R.check("no tesserad of the package runs, and its pidfile, log and rc links are gone",
        not debinit.packaged_daemons() and not os.path.exists(debinit.PIDFILE)
        and not glob.glob(debinit.LOG + "*") and not glob.glob("/etc/rc?.d/*tesserad"),
        str((debinit.packaged_daemons(), glob.glob(debinit.LOG + "*"))))
R.check("nothing named tessera is left that was not there before",
        after <= before_paths, str(sorted(after - before_paths)))
R.check("/etc/pam.d/common-* and /var/lib/pam are as before the install",
        digest(glob.glob("/etc/pam.d/common-*")) == before_common
        and digest(glob.glob("/var/lib/pam/*")) == before_state)

R.finish()
