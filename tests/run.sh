#!/bin/sh
# Runs each test binary given, shows its output, and ends with one summary
# line "N passed, N failed, N skipped" counted from cmocka's per-binary
# summaries (a skipped test is never silent).  A
# binary that crashes or prints no summary counts as one failed test, so a
# run that tested nothing is visible.  Exit status 1 if anything failed.
passed=0
failed=0
skipped=0
log=$(mktemp)
for t in "$@"; do
	echo "== $t"
	"$t" >"$log" 2>&1
	rc=$?
	cat "$log"
	# a binary may run several cmocka groups: add up every summary
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{n += $1} END {if (NR) print n}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{n += $1} END {if (NR) print n}')
	s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | awk '{n += $1} END {if (NR) print n}')
	passed=$((passed + ${p:-0}))
	skipped=$((skipped + ${s:-0}))
	failed=$((failed + ${f:-0}))
	if [ -z "$p$f" ] || { [ $rc -ne 0 ] && [ -z "$f" ]; }; then
		echo "!! $t exited with status $rc without a test summary"
		failed=$((failed + 1))
	fi
done
rm -f "$log"
echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
