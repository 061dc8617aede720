#!/usr/bin/python3
"""A locked-out user over a real sshd and a real OpenSSH client: after max_fail (3 here) wrong
codes from 127.0.0.1, the next connection is told, once, "too many failed attempts from here;
try again after HH:MM UTC, or ask an administrator", is asked nothing, and ends (PAM_MAXTRIES
makes sshd stop keyboard-interactive on that connection, where OpenSSH would otherwise try 3
times); the right code is refused there too and not used up. Run as root:
tests/e2e/sshd_lockout.py
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import (  # noqa: E402
    Results, World, add_user, askpass_ssh, kbd_interactive, require_root, sshd_with_stack,
)

require_root()
R = Results("sshd lockout")
W = World("lck", max_fail=3)
tag = os.getpid() % 100000
alice = add_user(f"tla{tag}")
otp = W.hotp_token(alice, "123490", f"LCK-{tag}")
port = sshd_with_stack(
    W, f"tessera-e2e-lock-{tag}", W.stack("sshd"),
    {"AuthenticationMethods": "keyboard-interactive", "PasswordAuthentication": "no",
     "PubkeyAuthentication": "no"},
    (alice,),
)
TOLD = "too many failed attempts from here"

for _ in range(3):
    wrong = "123490" + otp.wrong()
    ok, seen = kbd_interactive(port, alice, lambda _prompt, _shown: wrong)
    prompts, shown = [prompt for _, prompt in seen], [info for info, _ in seen]
R.check("three wrong codes from 127.0.0.1 are refused, each asked for its PIN",
        not ok and prompts == ["PIN: "] and not any(TOLD in s for s in shown), str(shown))

# OpenSSH, as a user types: it would try keyboard-interactive 3 times (NumberOfPasswordPrompts).
right = otp.peek()
start = time.monotonic()
p, asked = askpass_ssh(W, port, alice, {"": "123490" + right}, timeout=60)
secs = time.monotonic() - start
told = [line for line in p.stderr.splitlines() if TOLD in line]
rows = json.loads(W.tessera("audit", "--user", alice, "--limit", "10", "--json"))
# sshd then lists no method at all; OpenSSH's client, given an empty list, falls back to its
# own (publickey, keyboard-interactive, password) and asks its password prompt, which sshd
# refuses without running PAM: no PIN prompt, and one audit row (the refusal) for it all.
R.check("OpenSSH from the locked source: told once, asked for no PIN, refused, PAM run once",
        p.returncode != 0 and len(told) == 1 and not any("PIN" in a for a in asked)
        and p.stdout.strip() == "" and [r["result"] for r in rows].count("locked") == 1,
        f"rc={p.returncode} told={told} asked={asked} err={p.stderr!r}")

last_fail = max((r["time"] for r in rows if r["result"] == "reject"), default=0)
# The lock opens fail_clear_timeout (600 s) after the last failure: the minute after is said.
opens = time.strftime("%H:%M", time.gmtime(last_fail + 600 + 59))
R.check("the line says when to try again (HH:MM UTC) and to ask an administrator",
        len(told) == 1 and told[0].endswith(
            f"too many failed attempts from here; try again after {opens} UTC, or ask an "
            "administrator"),
        f"{told} (expected after {opens}; last failure {last_fail})")
R.check("refused in under 10 s (no retries, nothing hashed)", secs < 10, f"{secs:.1f}s")
R.check("the right code typed after it was not used up",
        json.loads(W.tessera("token", "show", f"LCK-{tag}", "--json"))["counter"] == 0)

R.finish()
