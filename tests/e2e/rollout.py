#!/usr/bin/python3
"""A rollout of 20 accounts by group, as docs/admin.md writes it: a real group of 20 real
accounts (one of them already has a token), `tessera token add --type registration --group G
--valid-for 3d --json` issues a code to each of the 19 others; two of them enroll over a real
sshd (paramiko keyboard-interactive: the code at the PIN prompt, a new PIN twice, a code from
the app); `tessera token list --type registration` then shows those two codes used, with the
token each made, and 17 unused; the same command run again issues nothing. Run as root:
tests/e2e/rollout.py
"""

import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import (  # noqa: E402
    CLEANUP, Results, World, add_user, kbd_interactive, require_root, run, secret_of,
    sshd_with_stack, totp,
)

require_root()
R = Results("rollout")
W = World("rol")
tag = os.getpid() % 100000
group = f"trg{tag}"
run(["groupdel", group])  # leftovers of an interrupted run
run(["groupadd", group], check=True)
CLEANUP.add(f"groupdel {group}", lambda: run(["groupdel", group]))
users = [add_user(f"tr{tag}u{i:02}") for i in range(20)]
run(["gpasswd", "-M", ",".join(users), group], check=True)
W.hotp_token(users[0], "123490", f"ROL-{tag}")

add = [W.binary, "--config", W.config, "token", "add", "--type", "registration",
       "--group", group, "--valid-for", "3d"]
p = run(add + ["--json"])
issued = json.loads(p.stdout) if p.returncode == 0 else []
codes = {i["user"]: i for i in issued}
R.check("--group issues one code to each of the 19 members without a token, as JSON",
        p.returncode == 0 and sorted(codes) == sorted(users[1:])
        and len({i["code"] for i in issued}) == 19
        and all(re.fullmatch(r"[2-9a-hj-km-np-z]{16}", i["code"]) for i in issued),
        p.stdout[:300] + p.stderr)
R.check("the member who has a token is named on stderr and gets no code",
        f"{users[0]} (has a token)" in " ".join(p.stderr.split())
        and users[0] not in codes, p.stderr)
expires = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 3 * 86400))
R.check("each code expires in 3 days (UTC)",
        all(i["expires"].startswith(expires) for i in issued), str(issued[:2]))

port = sshd_with_stack(W, f"tessera-e2e-rol-{tag}", W.stack("sshd"), {
    "AuthenticationMethods": "keyboard-interactive",
    "PasswordAuthentication": "no",
    "PubkeyAuthentication": "no",
}, users)


def enroll_over_ssh(user):
    """The member's first ssh login with her code; (logged in?, prompts)."""
    def answer(prompt, shown):
        if prompt == "PIN: ":
            return codes[user]["code"]
        if prompt.startswith("New PIN") or prompt.startswith("Repeat"):
            return "246813"
        if prompt.startswith("Code from the app"):
            uri = next((ln for ln in shown.splitlines() if ln.startswith("otpauth://")), "")
            return totp(secret_of(uri)) if uri else ""
        return ""
    ok, seen = kbd_interactive(port, user, answer)
    return ok, [p for _, p in seen]


for u in users[1:3]:
    ok, prompts = enroll_over_ssh(u)
    R.check(f"{u} enrolls over ssh with the code: in",
            ok and prompts == ["PIN: ", "New PIN for the token: ", "Repeat the PIN: ",
                               "Code from the app: "], str(prompts))

listed = W.tessera("token", "list", "--type", "registration")
rows = {ln.split()[2]: ln for ln in listed.splitlines()[1:] if ln.strip()}
used = [u for u, ln in rows.items() if "used: TOTP" in ln]
unused = [u for u, ln in rows.items() if "unused, expires" in ln]
R.check("token list --type registration: the two used codes name the token each made, 17 "
        "unused", sorted(used) == sorted(users[1:3]) and len(unused) == 17, listed)
made = {t["user"]: t["serial"] for t in json.loads(W.tessera("token", "list", "--json"))
        if t["type"] == "totp"}
R.check("the token named is the one the member enrolled",
        all(f"used: {made.get(u)}" in rows[u] for u in users[1:3]), f"{made} {listed}")

p = run(add)
R.check("run again: nothing issued, all 20 members named as covered",
        p.returncode == 0 and len(p.stdout.strip().splitlines()) == 1
        and "no code for 20 of 20 members" in " ".join(p.stderr.split()), p.stdout + p.stderr)
R.finish()
