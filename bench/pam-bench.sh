#!/usr/bin/env bash
# Whole logins through real libpam: tessera (its module talking to a running tesserad) next to
# Debian's pam_google_authenticator and pam_oath, in the same run, with the shared harness
# pambench.c (pam_start + pam_authenticate + pam_end per login, "-m fresh": the cost sshd and
# sudo pay per login).
#
# All three modules use HOTP with replay protection: the counter moves forward on every accepted
# code (tessera's is synced to disk before the verdict), and the accept path feeds successive
# codes from a file. The reject path answers a wrong code. tessera's rows:
#   OTP-only accept/reject   `otppin = "none"` (the OTP alone, like the peers: the fair
#                            comparison), a store of 10 tokens
#   1,000,000 tokens         the same accept in a store of a million tokens
#   16 processes             16 pambench processes at once, each logging in its own user with
#                            its own token (logins/s of all 16 together; group commit)
#   spawned, no daemon       no socket: the module runs `tesserad --stdio` for each login (the
#                            path of a root caller on a host without the socket unit)
#   PIN+OTP                  the default: one Argon2id PIN check per login, reported apart
# With REMOTE=1 (the default when the privacyIDEA peer's scripts are found), bench/remote-bench.py
# then compares tessera in remote mode with direct /validate/check calls on one kept-alive
# connection to the same privacyIDEA server.
#
# Usage: bench/pam-bench.sh  (env: N, N_PIN, N_SPAWN, ROUNDS, SHARED, MODULE, TESSERAD, WORKDIR,
#                             KEEP, REMOTE, N_REMOTE)
#   N       logins per run for the OTP-only rows (default 2000)
#   N_PIN   logins per run for tessera's PIN+OTP rows (default 200; each costs ~12-25 ms)
#   N_SPAWN logins per run for the spawned row (default 500)
#   ROUNDS  runs of every row, in a shuffled order each round; the table shows the median run
#           (default 3)
#   SHARED  the shared folder with bench/pambench.c (default: ../shared next to the repository)
#   MODULE  a pam_tessera.so to measure (default: this checkout as it ships, `cargo module`)
#   TESSERAD the daemon (default: this checkout's release build)
#   WORKDIR where stores and secret files live (default: a new directory under /var/tmp, which
#           is on disk: fsync costs what it costs in production; /tmp may be tmpfs)
#   KEEP=1  keep WORKDIR
# Needs: cc, libpam0g-dev, oathtool, libpam-google-authenticator, libpam-oath, libnss-wrapper
# (the 16 users of the concurrent row), python3; root (the module spawns tesserad only for root).
# If /dev/log is missing (containers), a sink is bound there for the run: without one, every
# syslog() of every module falls back to a slow console write and the figures measure that.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ROOT=$(git -C "$here" rev-parse --show-toplevel)
SHARED=${SHARED:-$ROOT/../shared}
N=${N:-2000}
N_PIN=${N_PIN:-200}
N_SPAWN=${N_SPAWN:-500}
PROCS=16
BIG=1000000
ROUNDS=${ROUNDS:-3}
WARMUP=10
KEYHEX=3132333435363738393031323334353637383930   # RFC 4226's test key
KEYB32=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
PIN=1234
WRONG=000000                                       # not a code of KEYHEX at counters 0..2020+
BENCH_USER=$(id -un)
SECDIR=/lib/x86_64-linux-gnu/security
[ -d "$SECDIR" ] || SECDIR=/lib/$(gcc -print-multiarch 2>/dev/null)/security

die() { echo "pam-bench: $*" >&2; exit 1; }
[ -f "$SHARED/bench/pambench.c" ] || die "no $SHARED/bench/pambench.c (set SHARED)"
for m in pam_google_authenticator.so pam_oath.so; do
    [ -f "$SECDIR/$m" ] || die "missing $SECDIR/$m (apt-get install libpam-google-authenticator libpam-oath)"
done
command -v oathtool >/dev/null || die "missing oathtool"
command -v python3 >/dev/null || die "missing python3"
[ "$(id -u)" = 0 ] || die "run as root (the spawned row: the module spawns tesserad only for root)"
NSS_WRAPPER=$(ldconfig -p | awk '/libnss_wrapper\.so /{print $NF; exit}')
[ -n "$NSS_WRAPPER" ] || die "missing libnss_wrapper.so (apt-get install libnss-wrapper)"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
# The store set-up tool: a debug build (a release build of the package would rebuild the lib as
# cdylib+rlib over the LTO module below, and the other way round, on every run).
(cd "$ROOT" && cargo build --quiet -p tessera-engine --example bench_store)
SETUP=$CARGO_TARGET_DIR/debug/examples/bench_store
if [ -z "${MODULE:-}" ]; then
    # The module as it ships: the `module` profile (no std, no unwinding, LTO).
    (cd "$ROOT" && cargo module --quiet)
    MODULE=$CARGO_TARGET_DIR/module/libpam_tessera.so
fi
[ -f "$MODULE" ] || die "no module at $MODULE"
if [ -z "${TESSERAD:-}" ]; then
    # The daemon the module talks to: the release build (engine with LTO).
    (cd "$ROOT" && cargo build --quiet --release -p tesserad)
    TESSERAD=$CARGO_TARGET_DIR/release/tesserad
fi

WORKDIR=${WORKDIR:-$(mktemp -d /var/tmp/pam-bench.XXXXXX)}
mkdir -p "$WORKDIR"
W=$(cd "$WORKDIR" && pwd)
sink_pid=
daemon_pid=
cleanup() {
    if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; fi
    if [ -n "$sink_pid" ]; then kill "$sink_pid" 2>/dev/null || true; rm -f /dev/log; fi
    [ "${KEEP:-0}" = 1 ] || rm -rf "$W"
}
trap cleanup EXIT

if [ ! -S /dev/log ]; then
    [ -w /dev ] || die "/dev/log is missing and /dev is not writable: run as root or start a syslog daemon"
    python3 - /dev/log <<'EOF' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
while True:
    s.recv(65536)
EOF
    sink_pid=$!
    for _ in $(seq 50); do [ -S /dev/log ] && break; sleep 0.1; done
    echo "(no /dev/log here: bound a syslog sink there for this run)"
fi

cc -O2 -Wall -o "$W/pambench" "$SHARED/bench/pambench.c" -lpam

# PAM services, loaded with pam_start_confdir from $W/pam.d.
mkdir -p "$W/pam.d" "$W/state"
echo "auth required pam_deny.so" > "$W/pam.d/other"
echo "auth required pam_permit.so" > "$W/pam.d/permit"
echo "auth required $SECDIR/pam_google_authenticator.so secret=$W/state/ga user=$BENCH_USER no_increment_hotp noskewadj" \
    > "$W/pam.d/ga"
echo "auth required $SECDIR/pam_oath.so usersfile=$W/state/oath window=10" > "$W/pam.d/oath"
# tessera: the module talks to a tesserad running for the whole case (started by reset_state),
# except in the spawned case, whose socket never exists.
for svc in tessera-otp tessera-pin tessera-big tessera-par; do
    echo "auth required $MODULE socket=$W/state/$svc.sock" > "$W/pam.d/$svc"
done
echo "auth required $MODULE socket=$W/state/none.sock daemon=$TESSERAD config=$W/state/tessera-spawn.toml" \
    > "$W/pam.d/tessera-spawn"
# The accounts of the concurrent row (for its daemon's nss_wrapper).
{ getent passwd root; echo "alice:x:20100:20100::/nonexistent:/usr/sbin/nologin"; for i in $(seq 0 $((PROCS - 1))); do echo "bench$i:x:$((20000 + i)):$((20000 + i))::/nonexistent:/usr/sbin/nologin"; done; } > "$W/passwd"
{ getent group root; echo "alice:x:20100:"; for i in $(seq 0 $((PROCS - 1))); do echo "bench$i:x:$((20000 + i)):"; done; } > "$W/group"
# The million-token store, made once and copied for each run.
"$SETUP" "$W/big.db" "$W/big.key" "$KEYHEX" --total $BIG "$BENCH_USER"

# Code files: successive HOTP codes, one per login (warm-up included).
oathtool -c 0 -w $((N + WARMUP)) "$KEYHEX" > "$W/codes0"
oathtool -c 1 -w $((N + WARMUP)) "$KEYHEX" > "$W/codes1"       # google-authenticator starts at 1
head -n $((N_PIN + WARMUP)) "$W/codes0" | sed "s/^/$PIN/" > "$W/codes-pin"

stop_daemon() {
    if [ -n "$daemon_pid" ]; then kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true; fi
    daemon_pid=
}

# Fresh state for one module before each run, so that every run starts at counter 0.
reset_state() {
    local s=$W/state
    case $1 in
    ga)
        rm -f "$s/ga"
        # HOTP, window 10 like the others; 0600 and owned by the user, as the module requires.
        printf '%s\n" HOTP_COUNTER 1\n" WINDOW_SIZE 10\n' "$KEYB32" > "$s/ga"
        chmod 600 "$s/ga" ;;
    oath)
        printf 'HOTP %s - %s\n' "$BENCH_USER" "$KEYHEX" > "$s/oath"
        chmod 600 "$s/oath" ;;
    tessera-*)
        rm -f "$s/$1".db* "$s/$1.key"
        local otppin=none pin=() users=("$BENCH_USER") env=()
        case $1 in
        tessera-pin) otppin=token pin=(--pin "$PIN") ;;
        tessera-par)
            users=()
            for i in $(seq 0 $((PROCS - 1))); do users+=("bench$i"); done
            # The daemon resolves every user to an account: the 16 exist for it alone.
            env=(LD_PRELOAD="$NSS_WRAPPER" NSS_WRAPPER_PASSWD="$W/passwd" NSS_WRAPPER_GROUP="$W/group") ;;
        esac
        if [ "$1" = tessera-big ]; then
            cp "$W/big.db" "$s/$1.db"; cp "$W/big.key" "$s/$1.key"
        else
            "$SETUP" "$s/$1.db" "$s/$1.key" "$KEYHEX" "${pin[@]}" --total 10 "${users[@]}"
        fi
        # max_fail, account_max_fail: the reject runs fail thousands of times in a row; a
        # locked source or class would be refused before its OTP check and so measure another
        # path.
        printf '[store]\npath = "%s"\nkey_file = "%s"\n[auth]\notppin = "%s"\nmax_fail = 4294967295\naccount_max_fail = 100000\n' \
            "$s/$1.db" "$s/$1.key" "$otppin" > "$s/$1.toml"
        chmod 600 "$s/$1.toml"
        stop_daemon
        [ "$1" = tessera-spawn ] && return
        env "${env[@]}" "$TESSERAD" --config "$s/$1.toml" --socket "$s/$1.sock" 2>"$s/$1.log" &
        daemon_pid=$!
        for _ in $(seq 100); do grep -q 'listening on' "$s/$1.log" 2>/dev/null && break; sleep 0.05; done
        ;;
    esac
}

# case name | service | logins (per process) | processes | handle | expected | answers...
# handle: "fresh" (pam_start + pam_authenticate + pam_end per login: libpam loads the module
# each time, as sshd and sudo do) or "reuse" (one handle, pam_authenticate alone): the
# difference is what loading the module costs.
CASES=(
    "pam_permit|permit|$N|1|fresh|success|-a x"
    "pam_permit, reused handle|permit|$N|1|reuse|success|-a x"
    "google-authenticator accept|ga|$N|1|fresh|success|-F $W/codes1 -a @"
    "google-authenticator reject|ga|$N|1|fresh|fail|-a $WRONG"
    "google-authenticator reject, reused handle|ga|$N|1|reuse|fail|-a $WRONG"
    "pam_oath accept|oath|$N|1|fresh|success|-F $W/codes0 -a @"
    "pam_oath reject|oath|$N|1|fresh|fail|-a $WRONG"
    "tessera OTP-only accept|tessera-otp|$N|1|fresh|success|-F $W/codes0 -a @"
    "tessera OTP-only reject|tessera-otp|$N|1|fresh|fail|-a $WRONG"
    "tessera OTP-only reject, reused handle|tessera-otp|$N|1|reuse|fail|-a $WRONG"
    "tessera OTP-only accept, 1,000,000 tokens|tessera-big|$N|1|fresh|success|-F $W/codes0 -a @"
    "tessera OTP-only accept, $PROCS processes|tessera-par|$((N / PROCS))|$PROCS|fresh|success|-F $W/codes0 -a @"
    "tessera OTP-only accept, spawned (no daemon)|tessera-spawn|$N_SPAWN|1|fresh|success|-F $W/codes0 -a @"
    "tessera PIN+OTP accept|tessera-pin|$N_PIN|1|fresh|success|-F $W/codes-pin -a @"
    "tessera PIN+OTP reject (right PIN, wrong OTP)|tessera-pin|$N_PIN|1|fresh|fail|-a $PIN$WRONG"
    "tessera PIN+OTP reject (wrong PIN)|tessera-pin|$N_PIN|1|fresh|fail|-a 9999$WRONG"
)

results=$W/results.txt
: > "$results"
echo "module: $MODULE"
echo "N=$N N_PIN=$N_PIN ROUNDS=$ROUNDS workdir=$W ($(df -T "$W" | awk 'NR==2{print $2}'))"
for round in $(seq "$ROUNDS"); do
    while IFS= read -r i; do
        IFS='|' read -r name svc n procs mode expect args <<< "${CASES[$i]}"
        reset_state "$svc"
        user=$BENCH_USER
        [ "$procs" -gt 1 ] && user="bench%d"
        # shellcheck disable=SC2086 # args holds several options on purpose
        line=$("$W/pambench" -c "$W/pam.d" -s "$svc" -u "$user" -n "$n" -P "$procs" -w $WARMUP \
            -m "$mode" -e "$expect" $args) || die "$name: unexpected results: $line"
        echo "$name|$line" >> "$results"
        printf 'round %s  %-48s %s\n' "$round" "$name" "$(sed 's/.*auths_per_s=\([^ ]*\).*p50_us=\([^ ]*\).*/\1 auths\/s, p50 \2 µs/' <<< "$line")"
    done < <(seq 0 $((${#CASES[@]} - 1)) | shuf)
done

python3 - "$results" "${CASES[@]}" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, res = line.rstrip("\n").split("|", 1)
    kv = dict(f.split("=", 1) for f in res.split()[1:])
    rows.setdefault(name, []).append(kv)
print()
print("| module, path | logins | auths/s | p50 µs | p90 µs | p99 µs |")
print("|---|---:|---:|---:|---:|---:|")
for case in sys.argv[2:]:
    name = case.split("|")[0]
    runs = rows[name]
    # the median run by throughput, so that its percentiles belong together
    runs.sort(key=lambda r: float(r["auths_per_s"]))
    r = runs[len(runs) // 2]
    print(f"| {name} | {r['total']} | {float(r['auths_per_s']):,.0f} | {float(r['p50_us']):,.0f} "
          f"| {float(r['p90_us']):,.0f} | {float(r['p99_us']):,.0f} |")
# What loading the module costs per login: fresh handle minus reused handle (p50s of the
# median runs), for the reject path.
p50 = {name: float(sorted(runs, key=lambda r: float(r["auths_per_s"]))[len(runs) // 2]["p50_us"])
       for name, runs in rows.items()}
print()
print("| module (reject path) | fresh handle p50 µs | reused handle p50 µs | load (fresh − reused) µs |")
print("|---|---:|---:|---:|")
for fresh, label in [("pam_permit", "pam_permit"),
                     ("google-authenticator reject", "google-authenticator"),
                     ("tessera OTP-only reject", "tessera")]:
    reused = ("pam_permit" if fresh == "pam_permit" else fresh) + ", reused handle"
    if fresh in p50 and reused in p50:
        print(f"| {label} | {p50[fresh]:,.0f} | {p50[reused]:,.0f} | {p50[fresh] - p50[reused]:,.0f} |")
EOF

REMOTE=${REMOTE:-$([ -f "$SHARED/peers/privacyidea/start-privacyidea.sh" ] && echo 1 || echo 0)}
if [ "$REMOTE" = 1 ]; then
    stop_daemon
    echo
    python3 "$here/remote-bench.py" "$W" "$W/pambench" "$MODULE" "$TESSERAD" "$SETUP" \
        "$NSS_WRAPPER" "$SHARED"
fi
