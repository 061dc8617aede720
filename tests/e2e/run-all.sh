#!/usr/bin/env bash
# tessera's end-to-end tests, as root: real sshd (token PIN and OTP; the Unix password and
# OTP), sudo, su/login, a store on a full disk (its own tmpfs) and the Debian package.
# Usage: tests/e2e/run-all.sh [PATH.deb]   (with a .deb the package test skips the build)
# Each script sets up and removes what it creates and prints `N passed, M failed`.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then
  echo "run-all.sh: the end-to-end tests need root" >&2
  exit 1
fi
# The module and command under test (debug build of this tree), unless given by
# TESSERA_MODULE / TESSERA_BIN.
cargo build --quiet || exit 1
py=/usr/bin/python3   # the system Python, which has paramiko from python3-paramiko
failed=()
tests=(sshd.py sshd_password.py sshd_lockout.py container.py flood.py registration.py rollout.py sudo.py
       su_login.py full_disk.py deb.py)
for t in "${tests[@]}"; do
  echo "== tests/e2e/$t"
  start=$SECONDS
  args=()
  [ "$t" = deb.py ] && [ $# -gt 0 ] && args=("$1")
  if "$py" "tests/e2e/$t" "${args[@]}"; then
    echo "== $t passed ($((SECONDS - start))s)"
  else
    echo "== $t FAILED ($((SECONDS - start))s)"
    failed+=("$t")
  fi
done
n=${#tests[@]}
echo "e2e: $((n - ${#failed[@]})) passed, ${#failed[@]} failed${failed:+ (${failed[*]})}"
[ ${#failed[@]} -eq 0 ]
