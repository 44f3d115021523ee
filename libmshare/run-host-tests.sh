#!/bin/sh
# Builds libmshare twice (normal, and with ASan+UBSan), runs both test
# suites with ctest on this host (POSIX shm backend; kernel-backend tests
# skip without msharefs) and checks the installed package. Exits non-zero
# if anything failed.
#
#   MSHARE_BUILD_ROOT  where the build trees go (default: <repo>/build)
set -u

here=$(cd "$(dirname "$0")" && pwd)
build_root=${MSHARE_BUILD_ROOT:-$(cd "$here/.." && pwd)/build}
failed=""

run() {
	name=$1
	shift
	printf '\n==== %s\n' "$name"
	if ! "$@"; then
		failed="$failed $name"
	fi
}

build_and_test() {
	dir=$1
	shift
	cmake -S "$here" -B "$dir" "$@" >/dev/null &&
		cmake --build "$dir" -j2 &&
		(cd "$dir" && ctest -j2 --output-on-failure --timeout 120)
}

run "host tests" build_and_test "$build_root/libmshare" \
	-DMSHARE_SANITIZE=OFF -DMSHARE_STATIC_TESTS=OFF
run "sanitizer tests" build_and_test "$build_root/libmshare-asan" \
	-DMSHARE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
run "package check" env MSHARE_PACKAGE_BUILD_DIR="$build_root/libmshare" \
	"$here/tests/package/check.sh"

if [ -n "$failed" ]; then
	printf '\nlibmshare host tests FAILED:%s\n' "$failed"
	exit 1
fi
printf '\nlibmshare host tests passed\n'
