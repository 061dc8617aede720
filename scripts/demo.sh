#!/usr/bin/env bash
# The tessera demo: builds the module, the daemon and the command, makes a throwaway store in a temporary
# directory, enrolls an HOTP token for you (the account running it: tessera resolves every
# login to an account of this host), and logs in through real libpam (pamtester under
# pam_wrapper, so no root and no change to /etc/pam.d) with the PIN -> challenge -> OTP flow,
# then shows that the same OTP is refused a second time, and the audit trail.
# Usage: scripts/demo.sh            (DEMO_PROFILE=debug for a faster, unoptimised build)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
profile=${DEMO_PROFILE:-release}
bin=$PWD/target/$profile
module=$bin/libpam_tessera.so
if [ "$profile" = release ]; then
  echo "== building tessera, tesserad and pam_tessera.so (release; the first build takes about"
  echo "   7 minutes on 2 cores, later ones seconds)"
  cargo build --release
  cargo module                      # the module as it ships: target/module/
  module=$PWD/target/module/libpam_tessera.so
else
  echo "== building (debug; the first build takes about 3 minutes on 2 cores)"
  cargo build
fi
work=$(mktemp -d /tmp/tessera-demo.XXXXXX)
daemon_pid=
# pam_wrapper copies the service directory to /tmp/pam.X for each process and removes it at
# exit; a copy left by a process that was killed is removed here if it is ours (it holds our
# service file, which names $work): never another user's or another run's.
own_pam_copies() {
  for d in /tmp/pam.[0-9A-Za-z]; do
    [ -d "$d" ] && [ -O "$d" ] && grep -qs -- "$work" "$d"/* && echo "$d"
  done
}
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null
  own_pam_copies | while read -r d; do rm -rf "$d"; done
  rm -rf "$work"
}
trap 'cleanup 2>/dev/null || true' EXIT
chmod 700 "$work"

cat >"$work/tessera.toml" <<TOML
[store]
path = "$work/store/tessera.db"
key_file = "$work/secret.key"
TOML
chmod 600 "$work/tessera.toml"
tessera() { "$bin/tessera" --config "$work/tessera.toml" "$@"; }
me=$(id -un)

mkdir -p "$work/pam.d"
printf 'auth required %s socket=%s/tessera.sock\naccount required pam_permit.so\n' \
  "$module" "$work" >"$work/pam.d/tessera-demo"
printf 'auth required pam_deny.so\naccount required pam_deny.so\n' >"$work/pam.d/other"

login() { # login ANSWER... : one answer per prompt, through real libpam
  printf '%s\n' "$@" | LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 \
    PAM_WRAPPER_SERVICE_DIR="$work/pam.d" pamtester -v tessera-demo "$me" authenticate 2>&1 \
    | sed -e '/^PAMWRAP/d' -e 's/^/    | /'
}

key=3132333435363738393031323334353637383930   # the RFC 4226 test key
echo "== tessera init (store and key in $work, both 0600)"
tessera init
echo "== tesserad in the foreground on $work/tessera.sock (the module is its thin client)"
"$bin/tesserad" --config "$work/tessera.toml" --socket "$work/tessera.sock" 2>"$work/tesserad.log" &
daemon_pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/tesserad.log" 2>/dev/null && break; sleep 0.05; done
sed 's/^/    | /' "$work/tesserad.log"
echo "== enroll an HOTP token for $me with PIN 135790"
serial=$(tessera token add --user "$me" --type hotp --pin 135790 --key "$key" --serial DEMO-HOTP)
echo "    serial: $serial"
tessera token list

otp=$(oathtool -c 0 "$key")
echo "== login 1: PIN alone opens a challenge, then the OTP ($otp) alone"
login 135790 "$otp"
echo "== login 2: the same OTP again is refused (it was used)"
login 135790 "$otp" || true
otp=$(oathtool -c 1 "$key")
echo "== login 3: PIN+OTP in one pass (135790$otp)"
login "135790$otp"
echo "== audit trail (no PIN or OTP is ever stored)"
tessera audit
