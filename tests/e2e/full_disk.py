#!/usr/bin/python3
"""A store on a full disk: logins and admin writes fail cleanly, and nothing is lost.

The store lives on its own small tmpfs (a real file system that runs out of space), mounted over
the work directory's store/ before `tessera init`. Logins go through real libpam with pamtester
under pam_wrapper (no /etc/pam.d file). With the disk full:
- PIN+OTP, a PIN alone (which would open a challenge) and a wrong OTP all fail with
  PAM_AUTHINFO_UNAVAIL, quickly, with one clear log line;
- `tessera token add` exits 1 with a one-line error;
and once space is freed, the OTP that was refused still works (it was not used up), it is then
refused as a replay, no challenge was left open, no half-enrolled token exists, and SQLite's
integrity check passes.
Run as root: tests/e2e/full_disk.py
"""

import errno
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import (  # noqa: E402
    CLEANUP, Results, World, add_user, pamtester, require_root, run,
)

UNAVAIL = "Authentication service cannot retrieve authentication info"

require_root()
R = Results("full disk")


def mount_small_tmpfs(world):
    store = os.path.join(world.dir, "store")
    os.mkdir(store, 0o700)
    run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tessera-e2e-full", store],
        check=True)
    CLEANUP.add(f"umount {store}", lambda: run(["umount", "-l", store]))
    world.store_dir = store


W = World("full", before_init=mount_small_tmpfs)
tag = os.getpid() % 100000
user = add_user(f"tsfull{tag}")  # logins resolve to accounts: the user must exist
serial = f"FULL-{tag}"
otp = W.hotp_token(user, "135790", serial)

svc_dir = os.path.join(W.dir, "pam.d")
os.mkdir(svc_dir)
with open(os.path.join(svc_dir, "other"), "w") as f:
    f.write("auth required pam_deny.so\n")
with open(os.path.join(svc_dir, "tessera-full"), "w") as f:
    f.write(f"auth required {W.module_args()}\n")
env = dict(os.environ, LD_PRELOAD="libpam_wrapper.so", PAM_WRAPPER="1",
           PAM_WRAPPER_SERVICE_DIR=svc_dir)


def login(*answers):
    """pamtester on the test service; returns (exit code, stderr, seconds)."""
    start = time.monotonic()
    p = pamtester("tessera-full", user, *answers, env=env, timeout=30)
    return p.returncode, p.stderr, time.monotonic() - start


rc, err, _ = login("135790" + otp.next())
R.check("with space: PIN+OTP succeeds", rc == 0, err)

# Fill the file system to the last byte.
filler = os.path.join(W.store_dir, "filler")
with open(filler, "wb", buffering=0) as f:
    for chunk in (65536, 4096, 512, 1):
        try:
            while True:
                f.write(b"\0" * chunk)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
st = os.statvfs(W.store_dir)
R.check("the store's file system is full", st.f_bavail == 0, f"{st.f_bavail} blocks free")

held_back = otp.peek()  # the OTP refused while the disk is full, tried again afterwards
rc, err, secs = login("135790" + held_back)
R.check("full disk: PIN+OTP is PAM_AUTHINFO_UNAVAIL, promptly",
        rc != 0 and UNAVAIL in err and secs < 10, f"rc={rc} {secs:.1f}s {err}")
lines = [ln for ln in err.splitlines() if "disk is full" in ln]
R.check("full disk: one log line says the disk is full, without the OTP or PIN",
        len(lines) == 1 and held_back not in lines[0] and "135790" not in lines[0], err)

rc, err, _ = login("135790", held_back)
R.check("full disk: a PIN alone (which would open a challenge) is PAM_AUTHINFO_UNAVAIL",
        rc != 0 and UNAVAIL in err and "otp value" not in err, f"rc={rc} {err}")

rc, err, _ = login("135790" + otp.wrong())
R.check("full disk: a wrong OTP fails too (no fail count can be written)",
        rc != 0 and UNAVAIL in err, f"rc={rc} {err}")

p = run([W.binary, "--config", W.config, "token", "add", "--user", user, "--type", "hotp",
         "--pin", "246802", "--genkey", "--serial", f"FULL2-{tag}"])
R.check("full disk: `tessera token add` exits 1 with a one-line error",
        p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1
        and "full" in p.stderr, f"rc={p.returncode} {p.stderr!r}")

os.remove(filler)

rc, err, _ = login("135790" + otp.next())
R.check("space freed: the OTP refused on the full disk was not used up", rc == 0, err)
assert otp.peek() != held_back
rc, err, _ = login("135790" + held_back)
R.check("space freed: that OTP is now refused as a replay", rc != 0 and UNAVAIL not in err, err)

serials = W.tessera("token", "list", "--json")
R.check("space freed: no half-enrolled token", f"FULL2-{tag}" not in serials
        and serial in serials, serials)
challenges = W.tessera("challenge", "list")
R.check("space freed: no challenge was left open", serial not in challenges, challenges)
p = run(["sqlite3", os.path.join(W.store_dir, "tessera.db"), "PRAGMA integrity_check;"])
R.check("space freed: SQLite's integrity check passes", p.stdout.strip() == "ok",
        p.stdout + p.stderr)

R.finish()
