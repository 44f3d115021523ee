#!/bin/bash
# make stress: the stress and fuzz suites at full scale in one boot of the
# test kernel (docs/reliability.md): 64 processes x 10,000 random cycles,
# then 100,000 fuzzer operations.  About 25 minutes under TCG.  Prints a
# line per suite and "N passed, N failed, N skipped"; exits non-zero on
# any failure, including a kernel splat.
#
# Scale and seeds come from the environment (defaults in brackets):
#   MSHARE_STRESS_PROCS [64]  MSHARE_STRESS_CYCLES [10000]
#   MSHARE_FUZZ_OPS [100000]  MSHARE_STRESS_SEED, MSHARE_FUZZ_SEED [clock]
#   STRESS_TIMEOUT [3600] seconds for the whole boot
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
out=$build/stress-results
rm -rf "$out"
mkdir -p "$out"

# The guest side: each suite between the markers summarize.awk reads.
# run-tests is not used: its per-suite limit (900 s) is for `make test`.
guest=$out/stress-suites
{
	echo "export MSHARE_STRESS_PROCS=${MSHARE_STRESS_PROCS:-64}"
	echo "export MSHARE_STRESS_CYCLES=${MSHARE_STRESS_CYCLES:-10000}"
	echo "export MSHARE_FUZZ_OPS=${MSHARE_FUZZ_OPS:-100000}"
	[ -n "${MSHARE_STRESS_SEED:-}" ] && echo "export MSHARE_STRESS_SEED=$MSHARE_STRESS_SEED"
	[ -n "${MSHARE_FUZZ_SEED:-}" ] && echo "export MSHARE_FUZZ_SEED=$MSHARE_FUZZ_SEED"
	cat <<'EOF'
status=0
for suite in mshare_stress_test mshare_fuzz_test; do
	echo "### SUITE $suite"
	start=$(date +%s)
	$suite </dev/null
	rc=$?
	echo "# $suite took $(($(date +%s) - start)) s"
	echo "### END $suite rc=$rc"
	[ $rc = 0 ] || [ $rc = 4 ] || status=1
done
exit $status
EOF
} >"$guest"

echo "stress: ${MSHARE_STRESS_PROCS:-64} processes x ${MSHARE_STRESS_CYCLES:-10000} cycles, ${MSHARE_FUZZ_OPS:-100000} fuzzer operations"
start=$SECONDS
"$top/scripts/qemu-run.sh" --name stress --timeout "${STRESS_TIMEOUT:-3600}" \
	--add "$guest" -- sh /work/stress-suites | tee "$out/guest.log"
guest_rc=${PIPESTATUS[0]}

echo
echo "stress: results ($((SECONDS - start)) s)"
awk -f "$top/scripts/summarize.awk" "$out/guest.log" >"$out/summary"
"$top/scripts/verdict.sh" stress "$out/summary" "$out/guest.log" "$guest_rc"
