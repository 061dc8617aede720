#!/usr/bin/python3
"""A real OpenSSH sshd on 127.0.0.1 with tessera's shipped PAM stacks, and real clients.

Two sshd instances, each with its own config, host key and PAM service (sshd started through
a symlink named after the service, so /etc/pam.d/sshd is never touched):
  A: pam.d/sshd,           AuthenticationMethods "keyboard-interactive password"
  B: pam.d/sshd-publickey, AuthenticationMethods publickey,keyboard-interactive
Clients: paramiko (keyboard-interactive, password, publickey) and OpenSSH ssh through
SSH_ASKPASS (no TTY). Run as root: tests/e2e/sshd.py
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import (  # noqa: E402
    CLEANUP, Results, World, add_user, askpass_ssh, log, require_root, run, sshd_with_stack,
)

import paramiko  # noqa: E402

PIN_PROMPT = "PIN: "
OTP_PROMPT = "Please enter your otp value: "

require_root()
R = Results("sshd")
W = World("ssh")
tag = os.getpid() % 100000
alice = add_user(f"tsa{tag}")  # keyboard-interactive / password, HOTP token
bob = add_user(f"tsb{tag}")  # publickey + keyboard-interactive, HOTP token
carol = add_user(f"tsc{tag}")  # publickey, no token (nullok in the publickey stack)
otp_a = W.hotp_token(alice, "123490", f"SSH-A-{tag}")
otp_b = W.hotp_token(bob, "567890", f"SSH-B-{tag}")

os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{W.dir}/hostkey"], check=True)
run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{W.dir}/userkey"], check=True)
user_key = paramiko.Ed25519Key.from_private_key_file(f"{W.dir}/userkey")
for u in (bob, carol):
    home = os.path.expanduser(f"~{u}")
    os.makedirs(f"{home}/.ssh", mode=0o700, exist_ok=True)
    with open(f"{W.dir}/userkey.pub") as src, open(f"{home}/.ssh/authorized_keys", "w") as dst:
        dst.write(src.read())
    run(["chown", "-R", f"{u}:{u}", f"{home}/.ssh"], check=True)


def start_sshd(name, stack, settings):
    """sshd with PAM service tessera-e2e-NAME-TAG running the shipped stack `stack`."""
    service = f"tessera-e2e-{name}-{tag}"
    port = sshd_with_stack(W, service, W.stack(stack), settings, (alice, bob, carol))
    return port, service


port_a, svc_a = start_sshd(
    "sshd", "sshd",
    {
        "AuthenticationMethods": "keyboard-interactive password",
        "PasswordAuthentication": "yes",
        "PubkeyAuthentication": "no",
    },
)
port_b, svc_b = start_sshd(
    "sshdpk", "sshd-publickey",
    {
        "AuthenticationMethods": "publickey,keyboard-interactive",
        "PasswordAuthentication": "no",
        "PubkeyAuthentication": "yes",
    },
)


class Login:
    """One paramiko connection: what was asked, whether it got in, who it is."""

    def __init__(self, port, user):
        self.t = paramiko.Transport(("127.0.0.1", port))
        self.t.start_client(timeout=10)
        self.user = user
        self.prompts = []
        self.remaining = None

    def publickey(self, key):
        try:
            self.remaining = self.t.auth_publickey(self.user, key)
        except paramiko.AuthenticationException as e:
            self.remaining = e
        return self

    def interactive(self, *answers):
        queue = list(answers)

        def handler(_title, _instructions, prompts):
            out = []
            for text, _echo in prompts:
                self.prompts.append(text)
                out.append(queue.pop(0) if queue else "")
            return out

        try:
            self.t.auth_interactive(self.user, handler)
        except paramiko.AuthenticationException:
            pass
        return self

    def password(self, pw):
        try:
            self.t.auth_password(self.user, pw, fallback=False)
        except paramiko.AuthenticationException:
            pass
        return self

    def whoami(self):
        """`id -un` in a session when authenticated, else None."""
        try:
            if not self.t.is_authenticated():
                return None
            ch = self.t.open_session(timeout=10)
            ch.exec_command("id -un")
            return ch.makefile().read().decode().strip()
        finally:
            self.t.close()


def audit_last(user):
    rows = json.loads(W.tessera("audit", "--user", user, "--limit", "1", "--json"))
    return rows[-1] if rows else {}


def openssh(port, user, answers, extra=()):
    """OpenSSH's ssh through askpass (e2elib.askpass_ssh), one keyboard-interactive round."""
    return askpass_ssh(W, port, user, answers,
                       ["-o", "LogLevel=ERROR", "-o", "NumberOfPasswordPrompts=1", *extra])


# --- A: keyboard-interactive (and password) with pam.d/sshd -------------------------------
t0 = time.monotonic()
otp = otp_a.next()
lg = Login(port_a, alice).interactive("123490", otp)
who = lg.whoami()
R.check("kbd-int: PIN, then the challenge, then the OTP logs in",
        lg.prompts == [PIN_PROMPT, OTP_PROMPT] and who == alice, f"{lg.prompts} {who!r}")
a = audit_last(alice)
R.check("kbd-int: audit row names the sshd service, 127.0.0.1 and the serial",
        a.get("result") == "accept" and a.get("service") == svc_a
        and a.get("rhost") == "127.0.0.1" and a.get("serial") == f"SSH-A-{tag}", str(a))

lg = Login(port_a, alice).interactive("123490" + otp_a.next())
who = lg.whoami()
R.check("kbd-int: PIN+OTP in one answer logs in with a single prompt",
        lg.prompts == [PIN_PROMPT] and who == alice, f"{lg.prompts} {who!r}")

lg = Login(port_a, alice).interactive("123490", otp_a.wrong())
who = lg.whoami()
R.check("kbd-int: a wrong OTP after the challenge is refused",
        lg.prompts == [PIN_PROMPT, OTP_PROMPT] and who is None, f"{lg.prompts} {who!r}")

lg = Login(port_a, alice).interactive("123490", otp)
R.check("kbd-int: an OTP used before is refused (replay)",
        lg.whoami() is None and audit_last(alice).get("result") == "reject")

lg = Login(port_a, alice).interactive("9999" + otp_a.peek())
R.check("kbd-int: a wrong PIN with the right OTP is refused, no challenge",
        lg.prompts == [PIN_PROMPT] and lg.whoami() is None, str(lg.prompts))

lg = Login(port_a, bob).interactive("567890" + otp_b.peek())
R.check("kbd-int: a second user logs in with his own PIN and token",
        lg.whoami() == bob)
otp_b.next()

p, prompts = openssh(port_a, alice, {"PIN": "123490", "otp value": otp_a.next()},
                         ["-o", "PreferredAuthentications=keyboard-interactive"])
R.check("OpenSSH ssh (askpass): PIN, then OTP, runs the command",
        p.returncode == 0 and p.stdout.strip() == alice and len(prompts) == 2
        and "PIN" in prompts[0] and "otp value" in prompts[1],
        f"rc={p.returncode} out={p.stdout!r} err={p.stderr.strip()!r} prompts={prompts}")

p, prompts = openssh(port_a, alice, {"PIN": "123490", "otp value": otp_a.wrong()},
                         ["-o", "PreferredAuthentications=keyboard-interactive"])
R.check("OpenSSH ssh (askpass): a wrong OTP is refused",
        p.returncode == 255 and p.stdout == "" and len(prompts) == 2,
        f"rc={p.returncode} out={p.stdout!r} prompts={prompts}")

lg = Login(port_a, alice).password("123490" + otp_a.next())
R.check("password auth: PIN+OTP in one string logs in", lg.whoami() == alice)

lg = Login(port_a, alice).password("123490")
R.check("password auth: the PIN alone is refused (sshd answers the challenge with it)",
        lg.whoami() is None)

p, prompts = openssh(port_a, alice, {"password": "123490" + otp_a.next()},
                         ["-o", "PreferredAuthentications=password"])
R.check("OpenSSH ssh password auth: PIN+OTP in one string",
        p.returncode == 0 and p.stdout.strip() == alice,
        f"rc={p.returncode} err={p.stderr.strip()!r} prompts={prompts}")

lg = Login(port_a, f"nosuch{tag}").interactive("123490", "123456")
R.check("kbd-int: an unknown user gets the same PIN prompt and is refused",
        lg.prompts[:1] == [PIN_PROMPT] and lg.whoami() is None, str(lg.prompts))
log(f"      (stack A: {time.monotonic() - t0:.1f}s)")

# --- B: publickey, then keyboard-interactive with pam.d/sshd-publickey ----------------------
t0 = time.monotonic()
lg = Login(port_b, bob).publickey(user_key)
partial = lg.remaining
lg.interactive("567890", otp_b.next())
who = lg.whoami()
R.check("publickey is accepted as a partial success, keyboard-interactive remains",
        partial == ["keyboard-interactive"], str(partial))
R.check("publickey, then PIN, challenge and OTP logs in",
        lg.prompts == [PIN_PROMPT, OTP_PROMPT] and who == bob, f"{lg.prompts} {who!r}")

lg = Login(port_b, bob).publickey(user_key).interactive("567890", otp_b.wrong())
R.check("publickey, then a wrong OTP is refused", lg.whoami() is None)

lg = Login(port_b, bob).interactive("567890" + otp_b.peek())
R.check("keyboard-interactive without the key first is refused, nothing asked",
        lg.prompts == [] and lg.whoami() is None, str(lg.prompts))

lg = Login(port_b, carol).publickey(user_key).interactive()
who = lg.whoami()
R.check("nullok: a user without a token gets in with the key alone, tessera asks nothing",
        lg.prompts == [] and who == carol, f"{lg.prompts} {who!r}")

lg = Login(port_b, bob).publickey(user_key).interactive("")
R.check("nullok does not help a user who has a token (empty answer refused)",
        lg.whoami() is None)

p, prompts = openssh(port_b, bob, {"PIN": "567890", "otp value": otp_b.next()},
                         ["-i", f"{W.dir}/userkey", "-o", "IdentitiesOnly=yes"])
R.check("OpenSSH ssh: publickey, then PIN and OTP through askpass",
        p.returncode == 0 and p.stdout.strip() == bob and len(prompts) == 2,
        f"rc={p.returncode} out={p.stdout!r} err={p.stderr.strip()!r} prompts={prompts}")
log(f"      (stack B: {time.monotonic() - t0:.1f}s)")

R.finish()
