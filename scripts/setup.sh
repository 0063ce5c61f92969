#!/usr/bin/env bash
# Installs the Debian packages memscope needs to build, test and benchmark,
# skipping what is already there. Needs root (or sudo) only when something
# is missing.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/setup.sh [--help]
Installs (with apt-get) the Debian packages memscope builds and tests with:
cmake, gcc, g++, gdb, pkg-config, libcmocka-dev, libdwarf-dev, libelf-dev,
libunwind-dev, libzstd-dev, valgrind, heaptrack, python3, and clang with
libclang-rt-14-dev (libFuzzer, for scripts/fuzz-inspect.sh).
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

packages=(cmake make gcc g++ gdb pkg-config python3 libcmocka-dev libdwarf-dev
          libelf-dev libunwind-dev libzstd-dev valgrind heaptrack binutils clang libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
