#!/usr/bin/python3
"""The Unix password, then a one-time code, over a real sshd (issue 26, point 9).

The stack google-authenticator-libpam users expect: pam.d/sshd-password-otp (pam_unix, then
pam_tessera with otppin = "system") on a real OpenSSH sshd on 127.0.0.1, for real local users
with real Unix passwords (chpasswd), checked by the real pam_unix. Clients: paramiko
(keyboard-interactive, which records every prompt) and OpenSSH ssh through SSH_ASKPASS. Then
the same choice through the pam-auth-update profile (debian/pam-configs/tessera, composed by
the real pam-auth-update on copies of its files) with otppin = "system" in tessera.toml.
sshd runs through a symlink named after its own PAM service: /etc/pam.d/sshd is never touched.
Run as root: tests/e2e/sshd_password.py
"""

import json
import os
import re
import secrets
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import (  # noqa: E402
    KEY, ROOT, Results, World, add_user, askpass_ssh, log, require_root, run,
    sshd_with_stack,
)

import paramiko  # noqa: E402

PASSWORD_PROMPT = "Password: "  # pam_unix's
OTP_PROMPT = "OTP: "  # [prompts] otp: the first prompt when otppin is "system"
TOKEN_PIN = "123490"  # alice's token has a PIN: otppin = "system" must never ask for it


def system_otppin(w):
    # World's config ends with its [auth] table: the line lands there.
    with open(w.config, "a") as f:
        f.write('otppin = "system"\n')


require_root()
R = Results("sshd_password")
W = World("sshpw", before_init=system_otppin)
tag = os.getpid() % 100000
alice = add_user(f"tpa{tag}")  # password + HOTP token (with a token PIN)
bob = add_user(f"tpb{tag}")  # password + TOTP token, as an authenticator app holds it
carol = add_user(f"tpc{tag}")  # password, no token
# Real Unix passwords, random per run; they are never printed.
passwords = {u: secrets.token_urlsafe(12) for u in (alice, bob, carol)}
run(["chpasswd"], input="".join(f"{u}:{p}\n" for u, p in passwords.items()), check=True)
otp_a = W.hotp_token(alice, TOKEN_PIN, f"PW-A-{tag}")
W.tessera("token", "add", "--user", bob, "--type", "totp", "--key", KEY,
          "--serial", f"PW-B-{tag}")

service = f"tessera-e2e-sshpw-{tag}"
port = sshd_with_stack(
    W, service, W.stack("sshd-password-otp"),
    {
        "AuthenticationMethods": "keyboard-interactive",
        "PasswordAuthentication": "no",
        "PubkeyAuthentication": "no",
    },
    (alice, bob, carol),
)
used = []  # every code typed in this run, to look for in the logs at the end


def login(user, *answers):
    """keyboard-interactive with paramiko, answering the prompts in turn; then `id -un` in a
    session if it got in. Returns (the prompts shown, id's output or None)."""
    used.extend(a for a in answers if a.isdigit() and len(a) >= 6)  # codes, not the PIN
    queue = list(answers)
    prompts = []

    def handler(_title, _instructions, asked):
        out = []
        for text, _echo in asked:
            prompts.append(text)
            out.append(queue.pop(0) if queue else "")
        return out

    t = paramiko.Transport(("127.0.0.1", port))
    try:
        t.start_client(timeout=10)
        try:
            t.auth_interactive(user, handler)
        except paramiko.AuthenticationException:
            pass
        if not t.is_authenticated():
            return prompts, None
        ch = t.open_session(timeout=10)
        ch.exec_command("id -un")
        return prompts, ch.makefile().read().decode().strip()
    finally:
        t.close()


def audit_rows(user, limit=200):
    return json.loads(W.tessera("audit", "--user", user, "--limit", str(limit), "--json"))


def openssh(user, password, code):
    """OpenSSH's ssh without a TTY (e2elib.askpass_ssh): the password prompt and the OTP
    prompt answered by their text; (the run, the prompts asked)."""
    used.append(code)
    return askpass_ssh(W, port, user, {"Password:": password, "OTP:": code},
                       ["-o", "LogLevel=ERROR",
                        "-o", "PreferredAuthentications=keyboard-interactive",
                        "-o", "NumberOfPasswordPrompts=1"])


pw = passwords[alice]

# The right password and the right code: in, asked for exactly these two (no token PIN).
code = otp_a.next()
prompts, who = login(alice, pw, code)
R.check("right password, then the right code: logged in, `id -un` runs as the user",
        prompts == [PASSWORD_PROMPT, OTP_PROMPT] and who == alice, f"{prompts} {who!r}")
rows = audit_rows(alice, 1)
last = rows[-1] if rows else {}
R.check("the audit has the accept: this sshd service, 127.0.0.1, alice's token",
        last.get("result") == "accept" and last.get("service") == service
        and last.get("rhost") == "127.0.0.1" and last.get("serial") == f"PW-A-{tag}",
        str(last))

prompts, who = login(alice, pw, code)
R.check("the same code a second time (replay): refused after both prompts",
        prompts == [PASSWORD_PROMPT, OTP_PROMPT] and who is None, f"{prompts} {who!r}")

prompts, who = login(alice, pw, otp_a.wrong())
R.check("right password, wrong code: refused after both prompts",
        prompts == [PASSWORD_PROMPT, OTP_PROMPT] and who is None, f"{prompts} {who!r}")

# A wrong password ends the login at pam_unix (requisite): tessera never runs, so the code
# is neither asked nor judged nor used up, and nothing is written to tessera's audit.
before = len(audit_rows(alice))
prompts, who = login(alice, "not-" + pw, otp_a.peek())
R.check("wrong password with the right code at hand: refused, the code is not asked",
        prompts == [PASSWORD_PROMPT] and who is None, f"{prompts} {who!r}")
R.check("a wrong password leaves tessera's audit alone (tessera did not run)",
        len(audit_rows(alice)) == before, f"{before} -> {len(audit_rows(alice))} rows")
prompts, who = login(alice, pw, otp_a.next())
R.check("that code was not used up: with the right password it logs in afterwards",
        prompts == [PASSWORD_PROMPT, OTP_PROMPT] and who == alice, f"{prompts} {who!r}")

prompts, who = login(alice, TOKEN_PIN, otp_a.peek())
R.check("the token PIN is no stand-in for the Unix password: refused at the password",
        prompts == [PASSWORD_PROMPT] and who is None, f"{prompts} {who!r}")

prompts, who = login(alice, pw, TOKEN_PIN + otp_a.peek())
R.check("token PIN + code at the OTP prompt: refused (the code alone is asked for)",
        prompts == [PASSWORD_PROMPT, OTP_PROMPT] and who is None, f"{prompts} {who!r}")

prompts, who = login(carol, passwords[carol], "123456")
R.check("a user without a token: the right password is not enough (no nullok)",
        prompts == [PASSWORD_PROMPT, OTP_PROMPT] and who is None, f"{prompts} {who!r}")

code_b = run(["oathtool", "--totp", KEY], check=True).stdout.strip()
prompts, who = login(bob, passwords[bob], code_b)
R.check("a TOTP code from an authenticator app (oathtool --totp) with the password logs in",
        prompts == [PASSWORD_PROMPT, OTP_PROMPT] and who == bob, f"{prompts} {who!r}")

p, asked = openssh(alice, pw, otp_a.next())
R.check("OpenSSH ssh (askpass): the password, then the code, runs the command",
        p.returncode == 0 and p.stdout.strip() == alice and len(asked) == 2
        and "Password:" in asked[0] and "OTP:" in asked[1]
        and not any("PIN" in a for a in asked),
        f"rc={p.returncode} out={p.stdout!r} err={p.stderr.strip()!r} prompts={asked}")

p, asked = openssh(alice, "not-" + pw, otp_a.peek())
R.check("OpenSSH ssh (askpass): a wrong password is refused, the code is not asked",
        p.returncode == 255 and p.stdout == "" and len(asked) == 1 and "Password:" in asked[0],
        f"rc={p.returncode} out={p.stdout!r} prompts={asked}")
p, asked = openssh(alice, pw, otp_a.next())
R.check("OpenSSH ssh (askpass): that code still logs in with the right password",
        p.returncode == 0 and p.stdout.strip() == alice and len(asked) == 2,
        f"rc={p.returncode} out={p.stdout!r} err={p.stderr.strip()!r} prompts={asked}")

# --- the same through the pam-auth-update profile ------------------------------------------
# The documented one-line switch: otppin = "system" in tessera.toml (this world's config has
# it) with debian/pam-configs/tessera enabled. The real pam-auth-update composes common-auth on
# copies of /etc/pam.d, /var/lib/pam and /usr/share/pam-configs (a private mount namespace:
# the real files never change); its auth lines become a second sshd's stack.
ns = f"{W.dir}/ns"
for src, dst in (("/etc/pam.d", "pam.d"), ("/var/lib/pam", "var-lib-pam"),
                 ("/usr/share/pam-configs", "pam-configs")):
    shutil.copytree(src, f"{ns}/{dst}", symlinks=True)
shutil.copy(os.path.join(ROOT, "debian", "pam-configs", "tessera"), f"{ns}/pam-configs/tessera")
mounts = ('mount --bind "$0/pam.d" /etc/pam.d && mount --bind "$0/var-lib-pam" /var/lib/pam && '
          'mount --bind "$0/pam-configs" /usr/share/pam-configs && exec "$@"')
p = run(["unshare", "-m", "--propagation", "private", "sh", "-c", mounts, ns,
         "env", "DEBIAN_FRONTEND=noninteractive", "pam-auth-update", "--enable", "tessera"])
common = [ln for ln in open(f"{ns}/pam.d/common-auth").read().splitlines()
          if re.match(r"auth\s", ln)]
unix = [i for i, ln in enumerate(common) if re.search(r"\spam_unix\.so\b", ln)]
tess = [i for i, ln in enumerate(common) if re.search(r"\spam_tessera\.so\b", ln)]
R.check("pam-auth-update --enable tessera puts tessera after pam_unix in common-auth",
        p.returncode == 0 and len(unix) == 1 and len(tess) == 1 and unix[0] < tess[0],
        p.stderr + "\n".join(common))
example = open(os.path.join(ROOT, "pam.d", "sshd-password-otp")).read()
stack = "\n".join(common + [ln for ln in example.splitlines() if not re.match(r"auth\s", ln)])
stack = re.sub(r"(?m)^(auth\s+.*?\s)pam_tessera\.so\b",
               lambda m: m.group(1) + W.module_args(), stack) + "\n"
service_p = f"tessera-e2e-sshpwp-{tag}"
port = sshd_with_stack(
    W, service_p, stack,
    {"AuthenticationMethods": "keyboard-interactive", "PasswordAuthentication": "no",
     "PubkeyAuthentication": "no"},
    (alice, bob, carol),
)
prompts, who = login(alice, pw, otp_a.next())
R.check("profile: right password, then the code alone: logged in",
        prompts == [PASSWORD_PROMPT, OTP_PROMPT] and who == alice, f"{prompts} {who!r}")
prompts, who = login(alice, "not-" + pw, otp_a.peek())
R.check("profile: a wrong password is refused before the code is asked",
        prompts == [PASSWORD_PROMPT] and who is None, f"{prompts} {who!r}")
prompts, who = login(alice, pw, otp_a.next())
R.check("profile: that code was not used up",
        prompts == [PASSWORD_PROMPT, OTP_PROMPT] and who == alice, f"{prompts} {who!r}")
prompts, who = login(alice, pw, otp_a.wrong())
R.check("profile: right password, wrong code: refused",
        prompts == [PASSWORD_PROMPT, OTP_PROMPT] and who is None, f"{prompts} {who!r}")
prompts, who = login(carol, passwords[carol])
R.check("profile: a user without a token logs in with the password alone (its nullok)",
        prompts == [PASSWORD_PROMPT] and who == carol, f"{prompts} {who!r}")

# No secret in what is kept: the audit (every row of every user) and sshd's own logs.
audit_text = "".join(W.tessera("audit", "--user", u, "--limit", "200", "--json")
                     for u in (alice, bob, carol))
sshd_logs = "".join(open(f"{W.dir}/{n}.log").read() for n in (service, service_p))
for what, text in (("the audit", audit_text), ("sshd's logs", sshd_logs)):
    pw_found = [u for u, p in passwords.items() if p in text]
    codes_found = sorted({c for c in used if re.search(rf"(?<!\d){c}(?!\d)", text)})
    R.check(f"{what}: no password and no code typed",
            bool(text) and not pw_found and not codes_found,
            f"passwords of {pw_found}, codes {codes_found}")
log(f"      ({len(audit_rows(alice))} audit rows for alice)")

R.finish()
