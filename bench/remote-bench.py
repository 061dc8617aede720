#!/usr/bin/env python3
"""tessera's overhead in remote mode over the server's own answer time.

Starts the privacyIDEA peer (HTTPS, ../shared/peers/privacyidea), then alternates, ROUNDS times:
  direct   N POST /validate/check calls (PIN+OTP of alice's HOTP token) by curl, one process,
           one kept-alive TLS connection: the server's answer time and nothing else;
  tessera  N whole logins through libpam (pambench, fresh handle per login) with pam_tessera.so
           talking to a tesserad in remote mode, which forwards the same PIN+OTP to the server
           over its own kept-alive connection.
Each login uses the next HOTP code, so every call is an accepted, state-changing check on the
server in both halves. Prints a markdown table of the median round and the overhead
(tessera's mean time per login over the direct mean, minus one).

Called by bench/pam-bench.sh with: W PAMBENCH MODULE TESSERAD SETUP NSS_WRAPPER SHARED
(env: N_REMOTE logins per half, default 300; ROUNDS, default 3).
"""

import os
import statistics
import subprocess
import sys
import time

W, PAMBENCH, MODULE, TESSERAD, SETUP, NSS_WRAPPER, SHARED = sys.argv[1:8]
N = int(os.environ.get("N_REMOTE", "300"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
KEYHEX = "3132333435363738393031323334353637383930"  # HOTP_ALICE's key (RFC 4226)
PIN = "alicepin"
PEER = os.path.join(SHARED, "peers", "privacyidea")
PI_HOME = os.path.join(W, "pi")
PORT = int(os.environ.get("PI_PORT", "5391"))


def codes(start, n):
    out = subprocess.run(["oathtool", "-c", str(start), "-w", str(n - 1), KEYHEX],
                         capture_output=True, text=True, check=True).stdout.split()
    assert len(out) == n, out
    return out


def start_peer():
    env = dict(os.environ, PI_TLS="1", PI_FAST_HASH="1")
    p = subprocess.run(["bash", os.path.join(PEER, "start-privacyidea.sh"), PI_HOME, str(PORT)],
                       env=env, capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        sys.exit(f"remote-bench: privacyIDEA did not start: {p.stderr[-2000:]}")
    return p.stdout.strip().splitlines()[-1].rstrip("/")


def stop_peer():
    subprocess.run(["bash", os.path.join(PEER, "stop-privacyidea.sh"), PI_HOME],
                   capture_output=True)


def direct(url, ca, first):
    """N checks on one connection; the mean and p50 of curl's time_total per transfer (µs)."""
    cfg = os.path.join(W, "curl.cfg")
    with open(cfg, "w") as f:
        for i, code in enumerate(codes(first, N)):
            if i:
                f.write("next\n")
            # `next` resets every option: each transfer names the CA again.
            f.write(f'url = "{url}/validate/check"\ncacert = "{ca}"\n')
            f.write(f'data = "user=alice&pass={PIN}{code}"\n')
            f.write('write-out = "\\n%{time_total} %{num_connects}\\n"\n')
            f.write("silent\n")
    t0 = time.monotonic()
    p = subprocess.run(["curl", "-K", cfg], capture_output=True, text=True)
    wall = time.monotonic() - t0
    lines = [l.split() for l in p.stdout.splitlines() if l and l[0].isdigit() and " " in l]
    times = [float(t) * 1e6 for t, _ in lines]
    connects = sum(int(c) for _, c in lines)
    accepted = p.stdout.count('"authentication": "ACCEPT"') + p.stdout.count('"authentication":"ACCEPT"')
    if p.returncode != 0 or len(times) != N or accepted != N:
        sys.exit(f"remote-bench: direct run: rc {p.returncode}, {len(times)} answers, "
                 f"{accepted} accepted: {p.stdout[-1000:]} {p.stderr[-1000:]}")
    return {"mean": statistics.mean(times), "p50": statistics.median(times),
            "per_s": N / wall, "connects": connects}


def tessera(first):
    path = os.path.join(W, "remote-codes")
    with open(path, "w") as f:
        f.write("".join(f"{PIN}{c}\n" for c in codes(first, N)))
    p = subprocess.run([PAMBENCH, "-c", os.path.join(W, "pam.d"), "-s", "tessera-remote",
                        "-u", "alice", "-n", str(N), "-w", "0", "-m", "fresh", "-e", "success",
                        "-F", path, "-a", "@"], capture_output=True, text=True)
    line = next((l for l in p.stdout.splitlines() if l.startswith("RESULT")), "")
    if p.returncode != 0 or not line:
        sys.exit(f"remote-bench: tessera run failed: {p.stdout[-1000:]} {p.stderr[-1000:]}")
    kv = dict(f.split("=", 1) for f in line.split()[1:])
    # tesserad's connections to the server, open after the run: one kept alive, not one per login
    ss = subprocess.run(["ss", "-Htn", "state", "established", f"( dport = :{PORT} )"],
                        capture_output=True, text=True).stdout
    return {"mean": float(kv["mean_us"]), "p50": float(kv["p50_us"]),
            "per_s": float(kv["auths_per_s"]), "connections": len(ss.splitlines())}


def main():
    url = start_peer()
    ca = os.path.join(PI_HOME, "tls", "ca.crt")
    state = os.path.join(W, "state")
    store, key = os.path.join(state, "remote.db"), os.path.join(state, "remote.key")
    for f in (store, key):
        if os.path.exists(f):
            os.remove(f)
    # A local store for the audit rows, as a host in remote mode usually has.
    subprocess.run([SETUP, store, key, KEYHEX, "--total", "10", "nobody"], check=True)
    conf = os.path.join(state, "remote.toml")
    with open(conf, "w") as f:
        f.write(f'[store]\npath = "{store}"\nkey_file = "{key}"\n[auth]\nmode = "remote"\n'
                f'[remote]\nurl = "{url}"\nca_file = "{ca}"\n')
    os.chmod(conf, 0o600)
    sock = os.path.join(state, "remote.sock")
    with open(os.path.join(W, "pam.d", "tessera-remote"), "w") as f:
        f.write(f"auth required {MODULE} socket={sock}\n")
    log = open(os.path.join(state, "remote.log"), "w")
    env = {"LD_PRELOAD": NSS_WRAPPER, "NSS_WRAPPER_PASSWD": os.path.join(W, "passwd"),
           "NSS_WRAPPER_GROUP": os.path.join(W, "group")}
    daemon = subprocess.Popen([TESSERAD, "--config", conf, "--socket", sock], stderr=log, env=env)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        rows = []
        counter = 0
        for r in range(ROUNDS):
            order = ["direct", "tessera"] if r % 2 == 0 else ["tessera", "direct"]
            got = {}
            for which in order:
                got[which] = direct(url, ca, counter) if which == "direct" else tessera(counter)
                counter += N
            rows.append(got)
            over = got["tessera"]["mean"] / got["direct"]["mean"] - 1
            print(f"remote round {r + 1}: direct mean {got['direct']['mean']:,.0f} µs, "
                  f"tessera mean {got['tessera']['mean']:,.0f} µs, overhead {over:+.1%}",
                  flush=True)
        rows.sort(key=lambda g: g["tessera"]["mean"] / g["direct"]["mean"])
        med = rows[len(rows) // 2]
        d, t = med["direct"], med["tessera"]
        print()
        print(f"| remote mode (privacyIDEA peer over HTTPS, N = {N}) | per s | mean µs | p50 µs |")
        print("|---|---:|---:|---:|")
        print(f"| direct /validate/check, curl on one kept-alive connection | {d['per_s']:,.0f} "
              f"| {d['mean']:,.0f} | {d['p50']:,.0f} |")
        print(f"| tessera login through libpam → tesserad → server | {t['per_s']:,.0f} "
              f"| {t['mean']:,.0f} | {t['p50']:,.0f} |")
        print(f"\n(curl opened {d['connects']} connection(s) for its {N} checks; after tessera's "
              f"{N} logins tesserad held {t['connections']} connection(s) to the server)")
        print(f"tessera's overhead over the server's answer time (median round): "
              f"{t['mean'] / d['mean'] - 1:+.1%} (mean), {t['p50'] / d['p50'] - 1:+.1%} (p50)")
    finally:
        daemon.terminate()
        daemon.wait()
        stop_peer()


if __name__ == "__main__":
    main()
