# shellcheck shell=bash
# Sourced by scripts/guest-build.sh.
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
		[ -x "$out/$t" ] && echo "$t 900 MSHARE_TEST_BIN_DIR=/opt/mshare/bin $t --gtest_color=no" >>"$list"
	done
fi
