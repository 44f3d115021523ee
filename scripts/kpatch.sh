#!/bin/bash
# Write kernel/patches/NAME from the working tree's edits to FILES, against
# the pristine tree.  The message (subject line, blank line, body) is read
# from kernel/patches/NAME if it exists, else from standard input.
#
#   scripts/kpatch.sh 0002-foo.patch mm/memory.c include/linux/mm.h
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
name=$1; shift
out=$top/kernel/patches/$name
msg=$(mktemp)
trap 'rm -f "$msg"' EXIT
if [ -f "$out" ]; then
	sed '/^---$/,$d' "$out" >"$msg"
else
	cat >"$msg"
fi
{
	cat "$msg"
	echo "---"
	for f in "$@"; do
		a=$build/linux-pristine/$f b=$build/linux${KERNEL_VARIANT:+-$KERNEL_VARIANT}/$f
		[ -e "$a" ] || a=/dev/null
		diff -u --label "a/$f" --label "b/$f" "$a" "$b" || [ $? = 1 ]
	done
} >"$out"
grep -qx "$name" "$top/kernel/patches/series" 2>/dev/null || echo "$name" >>"$top/kernel/patches/series"
echo "wrote $out"
