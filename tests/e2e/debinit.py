"""deb.py's view of /etc/init.d/tesserad, the package's init script for hosts without systemd:
its pidfile, its log, and dpkg run where a policy-rc.d would keep invoke-rc.d from starting it.

A container's /usr/sbin/policy-rc.d (exit 101) forbids invoke-rc.d to start or stop services,
as on this test's hosts, and with no runlevel (no sysvinit, no utmp record) invoke-rc.d starts
nothing either; a sysvinit host has neither problem, and there postinst starts the init script.
`dpkg_as_sysvinit_host` runs dpkg as on such a host, in a private mount namespace: the policy
file hidden, and `runlevel` saying N 2 (here it is systemctl's alias: a script is bound over
the file it names, which nothing else in that namespace calls without systemd). The daemon
that postinst starts there lives on in that namespace; its pidfile (in /run, which both see)
finds it from here.
"""

import os
import re

from e2elib import run

INIT = "/etc/init.d/tesserad"
PIDFILE = "/run/tesserad.pid"
LOG = "/var/log/tesserad.log"
POLICY = "/usr/sbin/policy-rc.d"
# postinst's one line about who runs tesserad.
SAID = re.compile(r"(?m)^libpam-tessera: tesserad.*$")
# A line of --log-file: its time (RFC 3339, UTC), then the daemon's own words.
TIMED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ tesserad: ")


def policy_forbids_start():
    """Whether this host's policy-rc.d keeps invoke-rc.d from starting tesserad."""
    return os.access(POLICY, os.X_OK) and run([POLICY, "tesserad", "start"]).returncode == 101


def dpkg_as_sysvinit_host(work, *argv, timeout=300):
    """dpkg ARGV as on a sysvinit host in runlevel 2 without a policy-rc.d."""
    binds = []
    if os.path.exists(POLICY):
        hidden = os.path.join(work, "policy-rc.d.hidden")
        with open(hidden, "w") as f:
            f.write("# not executable: invoke-rc.d asks no policy\n")
        os.chmod(hidden, 0o644)
        binds.append((hidden, POLICY))
    runlevel = os.path.join(work, "runlevel")
    with open(runlevel, "w") as f:
        f.write("#!/bin/sh\necho N 2\n")
    os.chmod(runlevel, 0o755)
    binds.append((runlevel, os.path.realpath("/sbin/runlevel")))
    script = "".join(f"mount --bind '{a}' '{b}' && " for a, b in binds) + 'exec "$@"'
    return run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                "dpkg", *argv], timeout=timeout)


def said(p):
    """postinst's lines about who runs tesserad, from a dpkg run."""
    return SAID.findall(p.stdout + p.stderr)


def pid():
    """The pid in the init script's pidfile, if that process is alive."""
    try:
        with open(PIDFILE) as f:
            n = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return n if os.path.exists(f"/proc/{n}") else None


def uid_and_exe(n):
    """(real uid, executable) of process N; (None, None) once it is gone."""
    try:
        with open(f"/proc/{n}/status") as f:
            uid = int(re.search(r"(?m)^Uid:\s+(\d+)", f.read()).group(1))
        return uid, os.readlink(f"/proc/{n}/exe")
    except (OSError, AttributeError):
        return None, None


def service(action):
    """`service tesserad ACTION` (the init script run directly: no policy applies)."""
    return run(["service", "tesserad", action], timeout=60)


def read(path):
    """A file's text; "" if it is missing."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def packaged_daemons():
    """Every process running /usr/sbin/tesserad (the package's binary, or a replaced one)."""
    out = []
    for n in os.listdir("/proc"):
        try:
            if os.readlink(f"/proc/{n}/exe").startswith("/usr/sbin/tesserad"):
                out.append(int(n))
        except OSError:
            continue
    return out
