#!/usr/bin/env bash
# tessera's whole test suite: formatting, lints, unit and libpam integration tests
# (`cargo test`), then the end-to-end tests (sshd, sudo, the Debian package) when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
# A line per phase, with what it takes on 2 cores (first run / with a warm build cache).
phase() { echo "== $(date +%T) $*"; }
phase "packages the tests need (scripts/deps.sh)"
scripts/deps.sh
export CARGO_TERM_COLOR=never
phase "cargo fmt and clippy (first run ~4 min, then seconds)"
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
phase "cargo test: unit and libpam integration tests (first run ~8 min, then ~3)"
cargo test --all-targets
# The module as it ships (`cargo module`: no std, no unwinding; it links only without a path to
# a panic) through real libpam again, and in the sshd/sudo/su tests below.
phase "the shipped module through libpam again (~1 min)"
cargo module --quiet
TESSERA_MODULE=$PWD/target/module/libpam_tessera.so
export TESSERA_MODULE
if nm -D --undefined-only "$TESSERA_MODULE" | grep -q pam_tessera_has_a_path_to_a_panic; then
  echo "the shipped module has a path to a panic (see src/lib.rs)" >&2
  exit 1
fi
cargo test --quiet --test pam_flows --test pam_failures --test pam_options --test daemon_link \
  --test security --test exported_symbols --test sigchld
# The README's other command must keep working: the demo, on a debug build.
phase "the demo (seconds)"
DEMO_PROFILE=debug scripts/demo.sh >/tmp/tessera-demo.log 2>&1 || { cat /tmp/tessera-demo.log; exit 1; }
grep -c 'successfully authenticated' /tmp/tessera-demo.log | grep -qx 2 \
  || { cat /tmp/tessera-demo.log; echo "demo: expected 2 successful logins" >&2; exit 1; }
echo "demo: 2 logins accepted, the replay refused"
if [ -x tests/e2e/run-all.sh ]; then
  if [ "$(id -u)" = 0 ]; then
    phase "end-to-end: sshd, sudo, su/login, a full disk, the .deb (~4 min)"
    tests/e2e/run-all.sh
  else
    echo "end-to-end tests (sshd, sudo, .deb) need root: skipped in this non-root run" >&2
  fi
fi
