#!/usr/bin/env bash
# Installs the Debian packages that tessera's build, demo and tests use, when any is missing.
# Needs root for apt-get; without root it names what is missing and stops.
set -euo pipefail
want=(pamtester libpam-wrapper libpam0g-dev oathtool openssh-server openssh-client sudo
      libpam-google-authenticator libpam-oath python3-paramiko python3-venv binutils
      sqlite3 util-linux passwd python3-aiosmtpd python3-prometheus-client openssl debhelper lintian dpkg-dev man-db
      libnss-wrapper systemd curl)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "tessera: missing packages: ${missing[*]} (run: sudo apt-get install -y ${missing[*]})" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq "${missing[@]}" >&2
