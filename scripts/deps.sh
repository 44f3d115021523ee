#!/bin/bash
# Install the Debian packages the project needs, when any is missing.
# Idempotent and quiet when everything is present.
set -euo pipefail
packages=(
	linux-source-6.12 build-essential bc flex bison libelf-dev libssl-dev
	cpio rsync file ccache qemu-system-x86 busybox-static liburing-dev
	libgtest-dev cmake pkg-config sparse python3 python3-docutils man-db
	gnuplot-nox clang-format libnuma-dev libcap-dev
)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} = 0 ] && exit 0
echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
