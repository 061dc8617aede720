#!/usr/bin/python3
"""su and login on a pseudo-terminal through tessera's shipped pam.d/su and pam.d/login.

Neither program lets you pick its PAM service, so each runs in a private mount namespace
(unshare -m) where the test stack is bind-mounted over /etc/pam.d/su or /etc/pam.d/login:
the real files are never changed, and the mount disappears with the process.
Run as root: tests/e2e/su_login.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import Pty, Results, World, add_user, require_root  # noqa: E402

OTP_PROMPT = "Please enter your otp value: "

require_root()
R = Results("su/login")
W = World("su")
tag = os.getpid() % 100000
erin = add_user(f"tse{tag}")  # the target, with a token
frank = add_user(f"tsf{tag}")  # who runs su, no token
otp = W.hotp_token(erin, "246802", f"SU-{tag}")

stacks = {}
for name in ("su", "login"):
    stacks[name] = f"{W.dir}/{name}.pam"
    with open(stacks[name], "w") as f:
        f.write(W.stack(name))


def in_namespace(service, argv):
    """argv run with the test stack over /etc/pam.d/SERVICE, in a private mount namespace."""
    script = f'mount --bind "$0" /etc/pam.d/{service} && exec "$@"'
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script,
            stacks[service], *argv]


def su(*answers):
    """frank runs `su erin -c 'id -un'` on a pty; returns (exit status, transcript, prompts ok)."""
    t = Pty(in_namespace("su", ["setpriv", f"--reuid={frank}", f"--regid={frank}",
                                "--init-groups", "su", erin, "-c", "id -un"]))
    ok = t.expect(r"PIN: ") is not None
    for i, a in enumerate(answers):
        if not ok:
            break
        t.send(a)
        if i + 1 < len(answers):
            ok = t.expect(OTP_PROMPT) is not None
    rc = t.wait()
    return rc, t.transcript, ok


rc, out, ok = su("246802", otp.next())
R.check("su: PIN, challenge, OTP switches to the target user",
        ok and rc == 0 and out.rstrip().endswith(erin), f"rc={rc} {out!r}")

rc, out, ok = su("246802" + otp.next())
R.check("su: PIN+OTP in one answer", ok and rc == 0 and out.rstrip().endswith(erin),
        f"rc={rc} {out!r}")

rc, out, ok = su("246802", otp.wrong())
R.check("su: a wrong OTP is refused", ok and rc not in (0, None)
        and "Authentication failure" in out and not out.rstrip().endswith(erin),
        f"rc={rc} {out!r}")


def login(pin, code):
    """`login ERIN` on a pty; returns (logged in, transcript)."""
    t = Pty(in_namespace("login", ["login", erin]))
    ok = t.expect(r"PIN: ", timeout=20) is not None
    if ok:
        t.send(pin)
        ok = t.expect(OTP_PROMPT) is not None
    if ok:
        t.send(code)
        # On success login starts erin's shell (/bin/sh); ask it who it is.
        m = t.expect(r"(\$ |Login incorrect)", timeout=20)
        ok = bool(m) and m.group(1) == "$ "
        if ok:
            t.send("id -un; exit")
            ok = t.expect(rf"\n{erin}\r?\n") is not None
    t.kill()
    return ok, t.transcript


ok, out = login("246802", otp.next())
R.check("login: PIN, challenge, OTP opens erin's shell", ok, repr(out))

ok, out = login("246802", otp.wrong())
R.check("login: a wrong OTP gives 'Login incorrect'",
        not ok and "Login incorrect" in out, repr(out))

R.finish()
