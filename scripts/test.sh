#!/bin/bash
# make test: host suites, then every guest suite in one boot of the test
# kernel.  Prints a line per suite and a closing "N passed, N failed,
# N skipped"; exits non-zero on any failure, including a kernel splat.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
out=$build/test-results
rm -rf "$out"
mkdir -p "$out"

if [ -x "$top/libmshare/run-host-tests.sh" ]; then
	echo "test: host suites (libmshare, fallback backend)"
	{
		echo "### SUITE libmshare-host ctest"
		"$top/libmshare/run-host-tests.sh" 2>&1
		echo "### END libmshare-host rc=$?"
	} | tee "$out/host.log"
fi

if [ -x "$top/examples/run-host-tests.sh" ]; then
	echo "test: host suites (examples, fallback backend)"
	{
		echo "### SUITE examples-host"
		"$top/examples/run-host-tests.sh" 2>&1
		echo "### END examples-host rc=$?"
	} | tee "$out/host-examples.log"
fi

echo "test: guest suites (QEMU, kernel ${KERNEL_VARIANT:-test})"
"$top/scripts/qemu-run.sh" --name test --timeout "${TEST_TIMEOUT:-2400}" -- run-tests \
	| tee "$out/guest.log"
guest_rc=${PIPESTATUS[0]}

echo
echo "test: results"
cat "$out"/*.log | awk -f "$top/scripts/summarize.awk" >"$out/summary"
"$top/scripts/verdict.sh" test "$out/summary" "$out/guest.log" "$guest_rc"
