#!/bin/bash
# Build the static programs the guest runs and list its test suites.
#
# Output: build/guest/bin/ (installed in the guest as /opt/mshare/bin) and
# build/guest/tests.list ("name time-limit command" per suite).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
out=$build/guest/bin
hdr=$build/headers/include
ksft=$build/linux/tools/testing/selftests
mkdir -p "$out"

CC=${CC:-gcc}
cflags=(-static -O2 -g -Wall -Werror -isystem "$hdr")

# Rebuild a program when its source or any installed header is newer.
build_c() {
	local bin=$1 src=$2; shift 2
	if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ] || [ "$hdr/linux/mshare.h" -nt "$bin" ] ||
		[ "$ksft/kselftest_harness.h" -nt "$bin" ]; then
		echo "guest: cc $(basename "$bin")"
		$CC "${cflags[@]}" -o "$bin" "$src" "$@"
	fi
}

build_c "$out/qemu-exit" "$top/scripts/guest/qemu-exit.c"

list=$build/guest/tests.list.new
: >"$list"
# The selftests are built from their copy in the kernel tree, where
# kselftest_harness.h is found as in the kselftest build.
for src in "$top"/selftests/mshare/*_test.c; do
	name=$(basename "$src" .c)
	build_c "$out/$name" "$ksft/mshare/$name.c" -pthread -luring
	echo "$name 900 $name" >>"$list"
done
mv "$list" "$build/guest/tests.list"

# libmshare's GoogleTest suites, static, against our kernel headers.  The
# tests find their helper and the CLI beside themselves.
if [ -f "$top/libmshare/CMakeLists.txt" ] && [ "${MSHARE_GUEST_GTEST:-1}" = 1 ]; then
	lib=$build/libmshare-guest
	if [ ! -f "$lib/CMakeCache.txt" ]; then
		cmake -S "$top/libmshare" -B "$lib" -DMSHARE_STATIC_TESTS=ON \
			-DMSHARE_KERNEL_HEADERS="$hdr" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	fi
	cmake --build "$lib" -j"$(nproc)" >/dev/null
	for f in "$lib"/bin/*; do
		cmp -s "$f" "$out/$(basename "$f")" || cp "$f" "$out/"
	done
	for t in mshare_region_test mshare_multiprocess_test mshare_cli_test; do
		[ -x "$out/$t" ] && echo "$t 900 MSHARE_TEST_BIN_DIR=/opt/mshare/bin $t --gtest_color=no" >>"$build/guest/tests.list"
	done
fi

build_c "$out/mshare_demo" "$top/examples/demo/mshare_demo.c"
