#!/usr/bin/python3
"""A host without systemd, as a container runs one: its entrypoint starts `tesserad &` as root
and then sshd, and a user logs in over ssh with PIN and OTP through that daemon; then the
sysvinit-style recipe of docs/admin.md (start-stop-daemon) starts and stops it.

The store's directory belongs to a system user of its own (as `_tessera` in the package). Run
as root, tesserad makes its socket's directory (0755), binds, and becomes that user before it
opens anything; the module's `daemon=` names no file, so every login below went through the
socket and none through a spawned `tesserad --stdio`. Run as root: tests/e2e/container.py
"""

import os
import re
import shutil
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import (  # noqa: E402
    CLEANUP, ROOT, Results, World, add_user, kbd_interactive, require_root, run,
    sshd_with_stack,
)


require_root()
R = Results("container")
tag = os.getpid() % 100000
owner = add_user(f"tsv{tag}", shell="/usr/sbin/nologin")  # the daemon's user
OWNER_UID = int(subprocess.run(["id", "-u", owner], capture_output=True, text=True).stdout)


def store_of_owner(w):
    """Before `tessera init`: the store's directory is the daemon user's, and the work
    directory open enough for that user to reach it."""
    os.chmod(w.dir, 0o755)
    os.makedirs(f"{w.dir}/store", mode=0o700)
    shutil.chown(f"{w.dir}/store", owner, owner)


W = World("ctr", before_init=store_of_owner)
alice = add_user(f"tca{tag}")
otp = W.hotp_token(alice, "123490", f"CTR-{tag}")
socket = f"{W.dir}/run/tessera/tessera.sock"

# The entrypoint: `tesserad --log-file ... &` as root, nothing prepared (its socket's directory
# is missing), no syslog daemon needed: its lines go to the file, nothing to its stderr.
logf = open(f"{W.dir}/tesserad.stderr", "w")
daemon = subprocess.Popen([W.daemon, "--config", W.config, "--socket", socket,
                           "--log-file", f"{W.dir}/tesserad.log"],
                          stdout=logf, stderr=logf)
CLEANUP.add(f"stop tesserad {daemon.pid}", lambda: (daemon.terminate(), daemon.wait(10)))
# It binds as root, then changes user and says so.
def logged(name="tesserad.log"):
    try:
        return open(f"{W.dir}/{name}").read()
    except OSError:
        return ""


for _ in range(200):
    if "listening on" in logged() or daemon.poll() is not None:
        break
    time.sleep(0.05)
said = logged()
run_dir = os.path.dirname(socket)
R.check("tesserad started as root makes its socket's directory (0755) and listens",
        os.path.exists(socket) and stat.S_IMODE(os.stat(run_dir).st_mode) == 0o755, said)
status = open(f"/proc/{daemon.pid}/status").read() if daemon.poll() is None else ""
uids = next((ln.split()[1:] for ln in status.splitlines() if ln.startswith("Uid:")), [])
R.check("and serves as the store's owner (real, effective, saved and fs uid)",
        uids == [str(OWNER_UID)] * 4 and f"serving as uid {OWNER_UID}" in said,
        f"{uids} {said}")
R.check("its lines are in its --log-file, each with its time, and none on stderr",
        said and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ tesserad: ", x)
                     for x in said.splitlines())
        and open(logf.name).read() == "", said + open(logf.name).read())

# sshd with the shipped pam.d/sshd, its module pointed at that socket and at no daemon binary.
with open(os.path.join(ROOT, "pam.d", "sshd")) as f:
    stack = f.read().replace(
        "pam_tessera.so",
        f"{W.module} socket={socket} daemon=/nonexistent/tesserad",
    )
port = sshd_with_stack(W, f"tessera-e2e-ctr-{tag}", stack, {
    "AuthenticationMethods": "keyboard-interactive",
    "PasswordAuthentication": "no",
    "PubkeyAuthentication": "no",
}, (alice,))


def ssh_login(*answers):
    """keyboard-interactive as alice over a real SSH connection: (in?, prompts asked)."""
    left = list(answers)
    ok, seen = kbd_interactive(port, alice, lambda _p, _s: left.pop(0) if left else "")
    return ok, [prompt for _, prompt in seen]


ok, asked = ssh_login("123490", otp.next())
R.check("ssh as alice: PIN, then the OTP, through the daemon: logged in",
        ok and asked == ["PIN: ", "Please enter your otp value: "], str(asked))
ok, asked = ssh_login("123490" + otp.wrong())
R.check("a wrong OTP over ssh is refused", not ok, str(asked))
files = sorted(os.listdir(f"{W.dir}/store"))
owned = all(os.stat(f"{W.dir}/store/{f}").st_uid == OWNER_UID for f in files)
R.check("the store, its -wal and -shm stay the daemon user's", owned and "tessera.db-wal" in files,
        str(files))
R.check("the logins are in the audit table", "accept" in W.audit(alice), W.audit(alice))

# The daemon's counters, as root asks for them, count those two logins.
metrics = run([W.binary, "metrics", "--socket", socket])
R.check("tessera metrics: one success and one denied login of the ssh service",
        metrics.returncode == 0
        and f'tessera_logins_total{{service="tessera-e2e-ctr-{tag}",result="success"}} 1' in metrics.stdout
        and f'tessera_logins_total{{service="tessera-e2e-ctr-{tag}",result="denied"}} 1' in metrics.stdout,
        metrics.stdout + metrics.stderr)

# The sysvinit-style recipe of docs/admin.md, as written there (with this world's paths after
# `--`): start-stop-daemon starts it in the background, a login goes through it, and the
# documented stop ends it.
daemon.terminate()
daemon.wait(10)
pidfile = f"{W.dir}/tesserad.pid"
started = run(["start-stop-daemon", "--start", "--background", "--make-pidfile",
               "--pidfile", pidfile, "--exec", W.daemon, "--",
               "--config", W.config, "--socket", socket,
               "--log-file", f"{W.dir}/tesserad.sysv.log"])
pid = 0
for _ in range(200):
    try:
        pid = int(open(pidfile).read().strip() or 0)
    except (OSError, ValueError):
        pid = 0
    if pid and os.path.exists(socket):
        try:
            import socket as sockmod
            c = sockmod.socket(sockmod.AF_UNIX)
            c.connect(socket)
            c.close()
            break
        except OSError:
            pass
    time.sleep(0.05)
# The socket answers once it listens; its line about that is written just after: waited for.
for _ in range(100):
    if f"tesserad: listening on {socket}" in logged("tesserad.sysv.log"):
        break
    time.sleep(0.05)
R.check("start-stop-daemon --start --background: tesserad runs, listens, and says so in its "
        "--log-file", started.returncode == 0 and pid > 0 and os.path.exists(f"/proc/{pid}")
        and f"tesserad: listening on {socket}" in logged("tesserad.sysv.log"),
        started.stdout + started.stderr + logged("tesserad.sysv.log"))
ok, asked = ssh_login("123490", otp.next())
R.check("ssh as alice through the daemon that start-stop-daemon started: logged in", ok,
        str(asked))
stopped = run(["start-stop-daemon", "--stop", "--pidfile", pidfile, "--retry", "5"])
R.check("start-stop-daemon --stop --retry 5 ends it (SIGTERM)",
        stopped.returncode == 0 and not os.path.exists(f"/proc/{pid}"),
        stopped.stdout + stopped.stderr)
R.finish()
