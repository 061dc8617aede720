#!/usr/bin/python3
"""Wrong PINs at once over a real sshd: 16 keyboard-interactive logins (paramiko) answer a wrong
PIN at the same moment through one tesserad, which runs (where the host lets root make a memory
cgroup) under the unit's MemoryMax of 256 MiB. Each PIN check is an Argon2 run of 19 MiB; when
they ran all at once, 16 such logins got tesserad killed for memory. Now they wait for one of
`pin_hash_parallel` places: tesserad lives, no OOM kill, every login is refused, and the owner
logs in after. Run as root: tests/e2e/flood.py
"""

import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import (  # noqa: E402
    CLEANUP, ROOT, Results, World, add_user, kbd_interactive, log, require_root,
    sshd_with_stack,
)

require_root()
R = Results("flood")
tag = os.getpid() % 100000
W = World("fld")
alice = add_user(f"tfa{tag}")
otp = W.hotp_token(alice, "123490", f"FLD-{tag}")
socket = f"{W.dir}/tesserad.sock"

logf = open(f"{W.dir}/tesserad.log", "w")
daemon = subprocess.Popen([W.daemon, "--config", W.config, "--socket", socket],
                          stdout=logf, stderr=logf)
CLEANUP.add(f"stop tesserad {daemon.pid}", lambda: (daemon.terminate(), daemon.wait(10)))
for _ in range(200):
    if os.path.exists(socket) or daemon.poll() is not None:
        break
    time.sleep(0.05)


def memory_cgroup(pid, limit):
    """cgroup v1's memory controller: a group of `limit` bytes holding pid, or None."""
    group = f"/sys/fs/cgroup/memory/tessera-e2e-{tag}"
    try:
        os.mkdir(group)
    except OSError as e:
        log(f"no memory cgroup here ({e}): the 256 MiB run is not made")
        return None

    def remove():
        try:
            with open(f"{group}/cgroup.procs") as f:
                for p in f.read().split():
                    with open("/sys/fs/cgroup/memory/cgroup.procs", "w") as root:
                        root.write(p)
        except OSError:
            pass
        os.rmdir(group)
    CLEANUP.add(f"rmdir {group}", remove)
    with open(f"{group}/memory.limit_in_bytes", "w") as f:
        f.write(str(limit))
    with open(f"{group}/cgroup.procs", "w") as f:
        f.write(str(pid))
    return group


def oom_kills(group):
    with open(f"{group}/memory.oom_control") as f:
        for line in f:
            if line.startswith("oom_kill "):
                return int(line.split()[1])
    return 0


group = memory_cgroup(daemon.pid, 256 << 20)

with open(os.path.join(ROOT, "pam.d", "sshd")) as f:
    stack = f.read().replace(
        "pam_tessera.so", f"{W.module} socket={socket} daemon=/nonexistent/tesserad")
port = sshd_with_stack(W, f"tessera-e2e-fld-{tag}", stack, {
    "AuthenticationMethods": "keyboard-interactive",
    "PasswordAuthentication": "no",
    "PubkeyAuthentication": "no",
    # sshd's own limit of unauthenticated connections must let all 16 reach PAM.
    "MaxStartups": "100",
}, (alice,))

# All 16 reach the PIN prompt, then answer at the same moment.
barrier = threading.Barrier(16)
results = []


def wrong(i):
    def answer(prompt, _shown):
        if prompt.startswith("PIN"):
            try:
                barrier.wait(timeout=30)
            except threading.BrokenBarrierError:
                pass
            return f"99{i:02d}"
        return "000000"
    ok, seen = kbd_interactive(port, alice, answer)
    results.append((ok, [p for _, p in seen]))


threads = [threading.Thread(target=wrong, args=(i,)) for i in range(16)]
started = time.time()
for t in threads:
    t.start()
for t in threads:
    t.join()
took = time.time() - started
asked = sum(1 for _, prompts in results if prompts and prompts[0].startswith("PIN"))
R.check(f"16 keyboard-interactive logins reach the PIN prompt and are refused ({took:.1f} s)",
        len(results) == 16 and asked == 16 and not any(ok for ok, _ in results), str(results))
R.check("tesserad lives", daemon.poll() is None, open(logf.name).read())
if group:
    kills = oom_kills(group)
    R.check(f"no OOM kill under a 256 MiB memory cgroup ({kills})", kills == 0)
ok, seen = kbd_interactive(port, alice,
                           lambda p, _s: "123490" + otp.next() if p.startswith("PIN") else "")
R.check("then alice logs in through the same daemon", ok and daemon.poll() is None,
        str(seen))
R.finish()
