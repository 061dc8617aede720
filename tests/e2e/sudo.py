#!/usr/bin/python3
"""Real sudo through tessera's shipped pam.d/sudo stack, for a test user.

/etc/pam.d/sudo is not touched: the stack is installed as its own PAM service, and a sudoers
drop-in (checked with visudo) points the test user's sudo at it with `pam_service=`.
Run as root: tests/e2e/sudo.py
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import CLEANUP, Pty, Results, World, add_user, require_root, run  # noqa: E402

PIN_PROMPT = "PIN: "
OTP_PROMPT = "Please enter your otp value: "

require_root()
R = Results("sudo")
W = World("sudo")
tag = os.getpid() % 100000
dave = add_user(f"tsd{tag}")
otp = W.hotp_token(dave, "432109", f"SUDO-{tag}")
service = f"tessera-e2e-sudo-{tag}"
W.install_service(service, W.stack("sudo"))

dropin = f"/etc/sudoers.d/tessera-e2e-{tag}"  # no dot in the name: sudo would skip it
text = (
    f"Defaults:{dave} pam_service={service}, timestamp_timeout=0, passwd_tries=1, "
    "lecture=never, !mail_badpass\n"
    f"{dave} ALL=(root) /usr/bin/id\n"
)
with open(f"{W.dir}/sudoers", "w") as f:
    f.write(text)
run(["visudo", "-cqf", f"{W.dir}/sudoers"], check=True)
with open(dropin, "w") as f:
    f.write(text)
os.chmod(dropin, 0o440)
CLEANUP.add(f"rm {dropin}", lambda: os.remove(dropin))
run(["visudo", "-cq"], check=True)

as_dave = ["setpriv", f"--reuid={dave}", f"--regid={dave}", "--init-groups"]


def sudo_s(*answers):
    """sudo -S (answers on stdin, one line per prompt, prompts on stderr)."""
    return run([*as_dave, "sudo", "-S", "-k", "/usr/bin/id", "-un"],
               input="".join(a + "\n" for a in answers))


p = sudo_s("432109", otp.next())
R.check("sudo -S: PIN, then the challenge prompt, then the OTP gives root",
        p.returncode == 0 and p.stdout.strip() == "root"
        and PIN_PROMPT in p.stderr and OTP_PROMPT in p.stderr
        and p.stderr.index(PIN_PROMPT) < p.stderr.index(OTP_PROMPT),
        f"rc={p.returncode} out={p.stdout!r} err={p.stderr!r}")

p = sudo_s("432109" + otp.next())
R.check("sudo -S: PIN+OTP in one answer gives root, no challenge",
        p.returncode == 0 and p.stdout.strip() == "root" and OTP_PROMPT not in p.stderr,
        f"rc={p.returncode} out={p.stdout!r} err={p.stderr!r}")

used = otp.peek()
p = sudo_s("432109", otp.wrong())
R.check("sudo -S: a wrong OTP after the challenge is refused",
        p.returncode != 0 and p.stdout == "" and OTP_PROMPT in p.stderr,
        f"rc={p.returncode} out={p.stdout!r} err={p.stderr!r}")

p = sudo_s("0000", used)
R.check("sudo -S: a wrong PIN is refused without a challenge",
        p.returncode != 0 and p.stdout == "" and OTP_PROMPT not in p.stderr,
        f"rc={p.returncode} err={p.stderr!r}")

last = otp.next()
p = sudo_s("432109" + last)
p2 = sudo_s("432109" + last)
R.check("sudo -S: the same OTP is accepted once, refused the second time",
        p.returncode == 0 and p2.returncode != 0 and p2.stdout == "",
        f"first rc={p.returncode} second rc={p2.returncode}")

# The way a person uses it: sudo on a terminal, reading from /dev/tty.
t = Pty([*as_dave, "sudo", "-k", "/usr/bin/id", "-un"])
ok = t.expect(r"PIN: ") is not None
if ok:
    t.send("432109")
    ok = t.expect(r"Please enter your otp value: ") is not None
if ok:
    t.send(otp.next())
    ok = t.expect(r"\broot\b") is not None
rc = t.wait()
R.check("sudo on a pty: PIN, challenge, OTP gives root", ok and rc == 0,
        f"rc={rc} transcript={t.transcript!r}")

t = Pty([*as_dave, "sudo", "-k", "/usr/bin/id", "-un"])
ok = t.expect(r"PIN: ") is not None
if ok:
    t.send("432109")
    ok = t.expect(r"Please enter your otp value: ") is not None
if ok:
    t.send(otp.wrong())
rc = t.wait()
R.check("sudo on a pty: a wrong OTP is refused",
        ok and rc not in (0, None) and "root" not in t.transcript.split(OTP_PROMPT)[-1],
        f"rc={rc} transcript={t.transcript!r}")

rows = json.loads(W.tessera("audit", "--user", dave, "--limit", "100", "--json"))
said = " ".join(f"{r['service']} {r['rhost']} {r['result']} {r['reason']}" for r in rows)
R.check("audit trail: every attempt under the sudo service, no PIN or OTP in it",
        len(rows) >= 9 and all(r["service"] == service for r in rows)
        and "432109" not in said and used not in said, said)

R.finish()
