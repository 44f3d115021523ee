#!/bin/bash
# The end of make test and make stress: prints each suite's line from a
# summarize.awk summary and "N passed, N failed, N skipped", and exits
# non-zero if any test failed, none passed, the guest splatted or broke
# (qemu-run's "FAIL" line) or exited non-zero with no test failing.
#
#   verdict.sh LABEL SUMMARY GUEST_LOG GUEST_RC
set -uo pipefail
label=$1 summary=$2 guest_log=$3 guest_rc=$4

grep -v '^TOTAL' "$summary"
read -r _ passed failed skipped < <(grep '^TOTAL' "$summary")
guest_problem=$(grep -a '^qemu-run: FAIL' "$guest_log")
if [ -n "$guest_problem" ]; then
	# A splat or a broken boot fails the run even if every test passed.
	echo "$guest_problem"
	failed=$((failed + 1))
elif [ "$guest_rc" != 0 ] && [ "$failed" = 0 ]; then
	echo "$label: the guest run exited with status $guest_rc"
	failed=$((failed + 1))
fi
[ "$passed" -gt 0 ] || { echo "$label: no test passed"; failed=$((failed + 1)); }
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
