#!/bin/sh
# Installs libmshare into a temporary prefix, then builds and runs the
# example program against it twice: with find_package(libmshare CONFIG) and
# with pkg-config.
#
#   MSHARE_PACKAGE_BUILD_DIR  an existing libmshare build tree to install
#                             from (default: configure a fresh one)
#   MSHARE_KERNEL_HEADERS     passed on when configuring a fresh tree
set -eu

here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/libmshare-package.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
prefix="$work/prefix"

step() { printf '== package check: %s\n' "$*"; }

build=${MSHARE_PACKAGE_BUILD_DIR:-}
if [ -z "$build" ]; then
	build="$work/build"
	step "configuring libmshare in $build"
	cmake -S "$source_dir" -B "$build" -DMSHARE_BUILD_TESTS=OFF \
		${MSHARE_KERNEL_HEADERS:+-DMSHARE_KERNEL_HEADERS="$MSHARE_KERNEL_HEADERS"} \
		>/dev/null
fi
step "building and installing into $prefix"
cmake --build "$build" -j2 >/dev/null
cmake --install "$build" --prefix "$prefix" >/dev/null

step "find_package(libmshare CONFIG)"
cmake -S "$here" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/consumer" -j2 >/dev/null
"$work/consumer/example"
"$work/consumer/example_static"

step "pkg-config libmshare"
pcdir=$(dirname "$(find "$prefix" -name libmshare.pc | head -n 1)")
export PKG_CONFIG_PATH="$pcdir"
libdir=$(pkg-config --variable=libdir libmshare)
# shellcheck disable=SC2046 # word splitting of the flags is intended
c++ -std=c++17 -Wall -Wextra -Werror "$here/example.cpp" \
	$(pkg-config --cflags --libs libmshare) -Wl,-rpath,"$libdir" \
	-o "$work/example-pkgconfig"
"$work/example-pkgconfig"

step "ok"
