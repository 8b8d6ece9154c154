#!/usr/bin/env bash
# Install every Debian package kortvagt needs to build, test and run its lab.
# Idempotent; safe to run again. As root it installs; otherwise it prints the
# exact command to run.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git file
  clang libclang-rt-14-dev llvm clang-format
  libpcsclite-dev pcscd vsmartcard-vpcd pcsc-tools opensc
  libssl-dev openssl
  softhsm2 libp11-kit-dev
  libsqlite3-dev sqlite3
  libpq-dev postgresql
  libjansson-dev libmicrohttpd-dev libgnutls28-dev libinih-dev
  libcmocka-dev
  iproute2 procps psmisc python3 python3-cryptography curl wrk valgrind
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: run as root:" >&2
  echo "  sudo sh -c '$cmd'" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
