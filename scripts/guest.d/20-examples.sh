# shellcheck shell=bash
# Sourced by scripts/guest-build.sh.
# The examples (examples/*/) and their GoogleTest suites, static, against
# our kernel headers. Each suite finds the programs it runs beside itself.
if [ -f "$top/examples/CMakeLists.txt" ] && [ "${MSHARE_GUEST_GTEST:-1}" = 1 ]; then
	ex=$build/examples-guest
	if [ ! -f "$ex/CMakeCache.txt" ]; then
		cmake -S "$top/examples" -B "$ex" -DMSHARE_EXAMPLES_STATIC=ON \
			-DMSHARE_KERNEL_HEADERS="$hdr" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	fi
	cmake --build "$ex" -j"$(nproc)" >/dev/null
	for f in "$ex"/bin/*; do
		cmp -s "$f" "$out/$(basename "$f")" || cp "$f" "$out/"
	done
	for example in queue_prealloc growing_pool persistent_arena rfc_donor_consumer; do
		if [ -x "$out/${example}_test" ]; then
			echo "examples_$example 900 ${example}_test --gtest_color=no" >>"$list"
		fi
	done
fi
