#!/bin/bash
# Check the documentation that goes upstream: every man page renders
# without a warning (groff and man-db), the example programs in the man
# pages compile with -Werror, and every kernel rst file parses without a
# warning in plain docutils.  Prints one line per check and fails on any
# problem.
#
#   scripts/check-docs.sh
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
python=/usr/bin/python3
failed=0 checked=0

fail() {
	echo "FAIL: $*"
	failed=$((failed + 1))
}

# $1: what was checked; $2: its output, which must be empty.
expect_silence() {
	checked=$((checked + 1))
	if [ -n "$2" ]; then
		fail "$1"
		printf '%s\n' "$2" | sed 's/^/    /'
	else
		echo "ok: $1"
	fi
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The example programs need <linux/mshare.h> and __NR_mshare*: the headers
# of the patched kernel when they are installed, else the repo's uapi
# header and the x86_64 numbers.
if [ -f "$build/headers/include/linux/mshare.h" ]; then
	cflags=(-I "$build/headers/include")
else
	cflags=(-I "$top/uapi" -D__NR_mshare=490 -D__NR_mshare_unlink=491)
fi

shopt -s nullglob
for page in "$top"/docs/man/man[1-8]/*.[1-8]; do
	rel=${page#"$top"/}
	expect_silence "groff -man -ww -z $rel" \
		"$(groff -man -ww -z "$page" 2>&1)"
	expect_silence "man -l --warnings=all $rel" \
		"$(MANWIDTH=80 man -l --warnings=all "$page" 2>&1 >/dev/null)"

	# Programs between '.\" SRC BEGIN (file.c)' and '.\" SRC END', as the
	# man-pages project marks them; undo the roff escapes used in them.
	awk -v dir="$work" '
		/^\.\\" SRC BEGIN \(/ {
			name = $0
			sub(/^.*\(/, "", name); sub(/\).*$/, "", name)
			out = dir "/" name; print name; next
		}
		/^\.\\" SRC END/ { out = ""; next }
		out != "" && !/^\.(EX|EE)$/ { print > out }
	' "$page" >"$work/sources"
	while read -r src; do
		sed -i -e 's/\\\[rs\]/\\/g' -e 's/\\-/-/g' -e 's/^\\&//' "$work/$src"
		expect_silence "example $src in $rel compiles" \
			"$(gcc -std=gnu11 -Wall -Wextra -Werror "${cflags[@]}" \
				-o "$work/a.out" "$work/$src" 2>&1)"
	done <"$work/sources"
done

# Plain docutils, warnings reported: the rst must not need Sphinx-only
# directives or roles to parse.
for rst in $(cd "$top" && find kernel/Documentation -name '*.rst' 2>/dev/null | sort); do
	expect_silence "docutils $rst" "$("$python" - "$top/$rst" 2>&1 <<'EOF'
import sys
import docutils.core

path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    docutils.core.publish_doctree(
        f.read(), source_path=path,
        settings_overrides={"report_level": 2, "halt_level": 5})
EOF
)"
done

if [ "$checked" = 0 ]; then
	echo "check-docs: nothing to check"
	exit 1
fi
echo "check-docs: $((checked - failed)) passed, $failed failed"
[ "$failed" = 0 ]
