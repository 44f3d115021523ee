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
ksft=$build/linux${KERNEL_VARIANT:+-$KERNEL_VARIANT}/tools/testing/selftests
mkdir -p "$out"
# One guest build at a time (several make targets may run at once).
exec 9>"$build/.guest.lock"
flock 9

CC=${CC:-gcc}
cflags=(-static -O2 -g -Wall -Werror -isystem "$hdr")

# Rebuild a program when its source, a header next to it or any installed
# header is newer.
build_c() {
	local bin=$1 src=$2 h stale=; shift 2
	for h in "$(dirname "$src")"/*.h; do
		if [ "$h" -nt "$bin" ]; then stale=1; fi
	done
	if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ] || [ "$hdr/linux/mshare.h" -nt "$bin" ] ||
		[ "$ksft/kselftest_harness.h" -nt "$bin" ] || [ -n "$stale" ]; then
		echo "guest: cc $(basename "$bin")"
		$CC "${cflags[@]}" -o "$bin" "$src" "$@"
	fi
}

build_c "$out/qemu-exit" "$top/scripts/guest/qemu-exit.c"
build_c "$out/paging-levels" "$top/scripts/guest/paging-levels.c"

list=$build/guest/tests.list.new
: >"$list"
# The selftests are built from their copy in the kernel tree, where
# kselftest_harness.h is found as in the kselftest build.
for src in "$top"/selftests/mshare/*_test.c; do
	name=$(basename "$src" .c)
	build_c "$out/$name" "$ksft/mshare/$name.c" -pthread -luring
	echo "$name 900 $name" >>"$list"
done
build_c "$out/mshare_demo" "$top/examples/demo/mshare_demo.c"

# Further programs and suites come from scripts/guest.d/*.sh, sourced in
# name order with $top, $build, $out, $hdr, $list and build_c available.
# Each appends its suites to $list ("name time-limit command").
for frag in "$top"/scripts/guest.d/*.sh; do
	[ -f "$frag" ] || continue
	# shellcheck source=/dev/null
	. "$frag"
done
mv "$list" "$build/guest/tests.list"
