#!/usr/bin/python3
"""A registration code over a real sshd and a real SSH client (paramiko, keyboard-interactive).

The admin gives alice a one-time code (`tessera token add --type registration`). At her first
ssh login she types it at the PIN prompt: the enrollment runs in the PAM conversation (sshd
carries the information messages, the otpauth URI and the QR code, as the instructions of the
next prompt), she sets a PIN, types the code her app shows (oathtool here), and is logged in.
Then a normal login with the new token works, and the registration code is refused the
second time. Run as root: tests/e2e/registration.py
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import (  # noqa: E402
    Results, World, add_user, kbd_interactive, require_root, secret_of, sshd_with_stack, totp,
)

require_root()
R = Results("registration")
W = World("reg")
tag = os.getpid() % 100000
alice = add_user(f"tra{tag}")
added = W.tessera("token", "add", "--user", alice, "--type", "registration")
serial, code = added.splitlines()[:2]
R.check("token add --type registration prints the serial and a 16-character code",
        re.fullmatch(r"[2-9a-hj-km-np-z]{16}", code) is not None, added)

port = sshd_with_stack(W, f"tessera-e2e-reg-{tag}", W.stack("sshd"), {
    "AuthenticationMethods": "keyboard-interactive",
    "PasswordAuthentication": "no",
    "PubkeyAuthentication": "no",
}, (alice,))

BLOCKS = set(" \u2580\u2584\u2588")


def ssh(answer):
    """keyboard-interactive as alice: (logged in?, [(shown, prompt)])."""
    return kbd_interactive(port, alice, answer)


state = {}


def enrolling(prompt, instructions):
    if prompt == "PIN: ":
        return code
    if prompt.startswith("New PIN") or prompt.startswith("Repeat"):
        return "432109"
    if prompt.startswith("Code from the app"):
        uri = next((ln for ln in instructions.splitlines() if ln.startswith("otpauth://")), "")
        state["uri"], state["instructions"] = uri, instructions
        return totp(secret_of(uri)) if uri else ""
    return ""


ok, seen = ssh(enrolling)
prompts = [p for _, p in seen]
R.check("ssh with the registration code: PIN prompt, new PIN twice, a code from the app, in",
        ok and prompts == ["PIN: ", "New PIN for the token: ", "Repeat the PIN: ",
                           "Code from the app: "], str(prompts))
uri = state.get("uri", "")
R.check("the otpauth URI arrives with sshd's prompt",
        uri.startswith(f"otpauth://totp/tessera:{alice}?secret="), state.get("instructions", ""))
lines = state.get("instructions", "").splitlines()
qr = [ln for ln in lines if ln and set(ln) <= BLOCKS]
R.check("the QR code arrives intact: 19 to 21 rows of half blocks, all of one width",
        19 <= len(qr) <= 21 and len({len(ln) for ln in qr}) == 1
        and any("\u2584" in ln for ln in qr), "\n".join(lines))
tokens = W.tessera("token", "list", "--user", alice)
R.check("the new TOTP token is saved", "totp" in tokens, tokens)

# A normal login with the new token: its PIN and the app's next code.
ok, seen = ssh(lambda p, _i: "432109" + totp(secret_of(uri or "secret=A"), 30) if p == "PIN: " else "")
R.check("then a normal login with the new token's PIN and code", ok, str(seen))

# The registration code again: refused, no new key shown.
ok, seen = ssh(lambda p, _i: code if p == "PIN: " else "")
R.check("the registration code is refused the second time, nothing shown",
        not ok and all("otpauth://" not in i for i, _ in seen), str(seen))
audit = W.audit(alice)
R.check("the audit has the enrollment and the refused code",
        "enroll" in audit and "registration code already used" in audit, audit)
R.finish()
