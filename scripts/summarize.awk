# Count results per suite in a guest console log (or host test output).
#
# Suites are delimited by "### SUITE name" / "### END name rc=N".  Inside,
# kselftest TAP ("ok N name", "not ok N name", "# SKIP") and GoogleTest
# ("[       OK ]", "[  FAILED  ]", "[  SKIPPED ]" with timings) are counted;
# in a suite marked "### SUITE name ctest" only CTest's per-test lines are
# (the GoogleTest output it shows for a failure would count twice).
# A suite that ends with a bad status, or prints fewer TAP results than it
# planned, has the difference counted as failures: a crash or a hang is a
# failure, never a missing test.
#
# Output: one line per suite, then "TOTAL pass fail skip".
function finish(rc,   missing) {
	if (suite == "")
		return
	missing = plan - (pass + fail + skip)
	if (plan > 0 && missing > 0) {
		fail += missing
		notes = notes sprintf(" (%d planned tests never reported)", missing)
	}
	if (rc == "") {
		fail++
		notes = notes " (never finished: the guest died or hung)"
	} else if (rc != 0 && rc != 4 && fail == 0) {
		fail = 1
		notes = notes sprintf(" (exited with status %d)", rc)
	}
	printf "suite %-28s %4d passed, %d failed, %d skipped%s\n", suite, pass, fail, skip, notes
	for (i = 1; i <= nfailed; i++)
		printf "    failed: %s\n", failed[i]
	tp += pass; tf += fail; ts += skip
	suite = ""
}
{ sub(/\r$/, "") }
/^### SUITE / {
	finish("")
	suite = $3; ctest = ($4 == "ctest")
	pass = fail = skip = plan = nfailed = 0; notes = ""
	next
}
/^### END / {
	rc = $0; sub(/.*rc=/, "", rc)
	finish(rc + 0)
	next
}
suite == "" { next }
ctest && /Test +#[0-9]+: / {
	if ($0 ~ /\*\*\*Skipped/) skip++
	else if ($0 ~ / Passed +[0-9.]+ sec/) pass++
	else { fail++; failed[++nfailed] = $0 }
	next
}
ctest { next }
/^1\.\.[0-9]+$/ { plan += substr($0, 4) + 0; next }
/^ok [0-9]+ / {
	if ($0 ~ /# [Ss][Kk][Ii][Pp]/) skip++; else pass++
	next
}
/^not ok [0-9]+ / {
	if ($0 ~ /# [Ss][Kk][Ii][Pp]/) { skip++; next }
	fail++; failed[++nfailed] = $0; next
}
/^\[       OK \] .*\([0-9]+ ms\)$/ { pass++; next }
/^\[  FAILED  \] .*\([0-9]+ ms\)$/ { fail++; failed[++nfailed] = $0; next }
/^\[  SKIPPED \] .*\([0-9]+ ms\)$/ { skip++; next }
END {
	finish("")
	printf "TOTAL %d %d %d\n", tp, tf, ts
}
