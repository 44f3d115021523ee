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
harness_fail=0

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

echo "test: guest suites (QEMU, ${GUEST_SMP:-2} CPUs)"
"$top/scripts/qemu-run.sh" --name test --timeout "${TEST_TIMEOUT:-2400}" -- run-tests \
	| tee "$out/guest.log"
guest_rc=${PIPESTATUS[0]}
guest_problem=$(grep -a '^qemu-run: FAIL' "$out/guest.log")

echo
echo "test: results"
cat "$out"/*.log | awk -f "$top/scripts/summarize.awk" >"$out/summary"
grep -v '^TOTAL' "$out/summary"
read -r _ passed failed skipped < <(grep '^TOTAL' "$out/summary")
if [ -n "$guest_problem" ]; then
	# A splat or a broken boot fails the run even if every test passed.
	echo "$guest_problem"
	failed=$((failed + 1))
elif [ "$guest_rc" != 0 ] && [ "$failed" = 0 ]; then
	echo "test: the guest run exited with status $guest_rc"
	failed=$((failed + 1))
fi
[ "$passed" -gt 0 ] || { echo "test: no test passed"; failed=$((failed + 1)); }
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
