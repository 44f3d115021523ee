#!/bin/sh
# Builds the examples against libmshare in build/examples and runs their
# GoogleTest suites on this host, on the POSIX shm fallback
# (MSHARE_BACKEND=posix); kernel-backend cases skip without msharefs.
# Exits non-zero if anything failed.
#
#   MSHARE_BUILD_ROOT  where the build tree goes (default: <repo>/build)
set -u

here=$(cd "$(dirname "$0")" && pwd)
build_root=${MSHARE_BUILD_ROOT:-$(cd "$here/.." && pwd)/build}
dir=$build_root/examples
log=$dir.build.log
failed=""

printf '==== build %s\n' "$dir"
if ! { cmake -S "$here" -B "$dir" -DMSHARE_EXAMPLES_STATIC=OFF &&
	cmake --build "$dir" -j2; } >"$log" 2>&1; then
	cat "$log"
	printf '\nexamples: build FAILED\n'
	exit 1
fi

for example in queue_prealloc growing_pool persistent_arena rfc_donor_consumer; do
	printf '\n==== %s\n' "$example"
	if ! MSHARE_BACKEND=posix timeout 600 "$dir/bin/${example}_test" --gtest_color=no; then
		failed="$failed $example"
	fi
done

if [ -n "$failed" ]; then
	printf '\nexamples host tests FAILED:%s\n' "$failed"
	exit 1
fi
printf '\nexamples host tests passed\n'
