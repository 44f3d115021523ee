#!/bin/bash
# make bench [QUICK=1]: run mshare_bench in the guest and turn what it
# prints on the console into files in build/bench/:
#
#   console.log   the whole guest console
#   results.csv   one row per (backend, size, N), environment in # lines
#   table.txt     the table, ratios.txt the ratios against POSIX shm,
#   targets.txt   the issue's targets, paired.txt the paired runs,
#   env.txt       host and guest environment
#   pagetables-<MiB>M.png, read-<MiB>M.png   plots per populated size
#   report.md     all of the above in one page (docs/benchmarks.md quotes it)
#
# The full run boots a guest with BENCH_MEM (default 8G) and gives the
# benchmark a deadline so that the whole target stays under 30 minutes
# under TCG; --quick is a small grid of a few minutes in a default guest.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
out=$build/bench

quick=0 from_log=""
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1; shift ;;
	--from-log) from_log=$2; shift 2 ;;  # redo the files from a saved console log
	*) echo "usage: $0 [--quick] [--from-log CONSOLE.LOG]" >&2; exit 2 ;;
	esac
done

# The guest's TSC is QEMU's host-based counter: give the guest the host's
# rate (the guest kernel's own calibration fails now and then under TCG).
tsc_mhz=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Refined TSC clocksource calibration: \([0-9.]*\) MHz.*/\1/p' | tail -n1)
[ -n "$tsc_mhz" ] || tsc_mhz=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Detected \([0-9.]*\) MHz.*/\1/p' | tail -n1)
[ -n "$tsc_mhz" ] || tsc_mhz=$(awk -F': *' '/^cpu MHz/ { print $2; exit }' /proc/cpuinfo)

if [ $quick = 1 ]; then
	mode=quick mem=${BENCH_MEM:-${GUEST_MEM:-2G}} timeout=900
	args="--procs=1,4,16,64 --sizes=64,256 --samples=3 --timed=8 --paired=3 --cell-budget=8 --deadline=300"
else
	# Cells of the 4 KiB-page POSIX backends cost seconds per attacher under
	# TCG: the cell budget stops them at the N the time allows (the output
	# names every cell left out and why).
	mode=full mem=${BENCH_MEM:-8G} timeout=1650
	args="--samples=3 --timed=16 --paired=5 --cell-budget=30 --deadline=1440"
fi
[ -n "$tsc_mhz" ] && args="$args --tsc-mhz=$tsc_mhz"

mkdir -p "$out"
if [ -n "$from_log" ]; then
	cp "$from_log" "$out/console.log.new"
	mv "$out/console.log.new" "$out/console.log"
	status=0
	elapsed=$(sed -n 's/^qemu-run: log .* (\([0-9]*\)s)$/\1/p' "$out/console.log" | tail -n1)
	echo "bench: files from $from_log"
else
	rm -f "$out"/console.log
	echo "bench: $mode run, guest memory $mem, mshare_bench $args"
	start=$SECONDS
	"$top/scripts/qemu-run.sh" --name "bench-$mode" --mem "$mem" --timeout "$timeout" \
		-- "mshare_bench $args" | tee "$out/console.log"
	status=${PIPESTATUS[0]}
	elapsed=$((SECONDS - start))
fi
rm -f "$out"/*.png "$out"/*.txt "$out"/*.csv "$out"/report.md

# A section of the console between "### NAME BEGIN" and "### NAME END",
# without carriage returns and kernel messages.
section() {
	tr -d '\r' <"$out/console.log" |
		sed -n "/^### $1 BEGIN\$/,/^### $1 END\$/p" | sed '1d;$d' |
		grep -avE '^\[ *[0-9]+\.[0-9]+\] '
}

host_env() {
	echo "# host: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1), $(nproc) cores, shared with other work"
	echo "# emulator: $(qemu-system-x86_64 --version | head -n1), -accel tcg -cpu max, -m $mem, -smp ${GUEST_SMP:-2}"
	echo "# run: make bench$([ $quick = 1 ] && echo ' QUICK=1'), $(date -u '+%Y-%m-%d %H:%M UTC'), guest boot to exit ${elapsed} s"
}

section ENV >"$out/guest-env.txt"
if [ ! -s "$out/guest-env.txt" ] || [ -z "$(section CSV)" ]; then
	echo "bench: no results in the console log (status $status)" >&2
	exit 1
fi
{ host_env; cat "$out/guest-env.txt"; } >"$out/env.txt"
rm -f "$out/guest-env.txt"
{ host_env; section CSV; } >"$out/results.csv"
{ host_env; section TABLE; } >"$out/table.txt"
section RATIOS >"$out/ratios.txt"
section PAIRED >"$out/paired.txt"
section TARGETS >"$out/targets.txt"

# Plots: one series per backend, from the rows of one size.
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
grep -v '^#' "$out/results.csv" | awk -F, -v dir="$data" '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	{
		f = dir "/" $col["size_mib"] "-" $col["backend"] ".dat"
		print $col["n"], $col["total_pt_kib"], $col["read_ms_med"], $col["attach_pt_kib"] >f
		sizes[$col["size_mib"]] = 1
		if (!($col["backend"] in seen)) { seen[$col["backend"]] = 1; order[++nb] = $col["backend"] }
	}
	END {
		for (s in sizes) print s >dir "/sizes"
		for (i = 1; i <= nb; i++) print order[i] >dir "/backends"
	}'
title_env="$(sed -n 's/^# kernel: \([^ ]*\).*/kernel \1/p' "$out/env.txt"), QEMU TCG, $(sed -n 's/^# cpu: \([0-9]*\) x.*/\1 vCPUs/p' "$out/env.txt"), guest $(sed -n 's/^# guest memory: //p' "$out/env.txt")"
# The same colour and point for a backend in every plot.
style() {
	case $1 in
	mshare) echo "lw 3 pt 7 lc rgb '#c00000'" ;;
	libmshare-kernel) echo "lw 2 pt 5 lc rgb '#ff8c00'" ;;
	shm-4k) echo "lw 2 pt 9 lc rgb '#1f4fbf'" ;;
	shm-thp) echo "lw 2 pt 11 lc rgb '#2e8b57'" ;;
	hugetlb-2m) echo "lw 2 pt 13 lc rgb '#7b2fbf'" ;;
	libmshare-posix) echo "lw 2 pt 4 lc rgb '#20a0c0'" ;;
	*) echo "lw 2" ;;
	esac
}
for size in $(sort -n "$data/sizes"); do
	pt_plots="" read_plots=""
	while read -r b; do
		f=$data/$size-$b.dat
		[ -f "$f" ] || continue
		pt_plots="$pt_plots, '$f' using 1:(\$2 > 0 ? \$2 : 0.5) with linespoints $(style "$b") title '$b'"
		read_plots="$read_plots, '$f' using 1:3 with linespoints $(style "$b") title '$b'"
		if [ "$b" = shm-4k ]; then
			# Beyond the N measured: N x the per-attacher cost (dashed).
			last=$(tail -n1 "$f")
			read -r ln lpt _ lat <<<"$last"
			pt_plots="$pt_plots, [x=$ln:512] $lat / $ln * x + ($lpt - $lat) with lines dt 2 lw 2 lc rgb '#1f4fbf' title 'shm-4k, derived: N x per-attacher'"
		fi
	done <"$data/backends"
	gnuplot <<EOF
set terminal pngcairo size 1100,640 noenhanced
set datafile separator " "
set logscale x 2
set logscale y 10
set grid
set key outside right top
set xlabel "attaching processes N"
set xrange [0.8:700]
set output "$out/pagetables-${size}M.png"
set title "Page tables for a ${size} MiB populated region (PageTables growth; 0 drawn at 0.5 KiB)\n$title_env"
set ylabel "KiB of page tables, all processes"
plot ${pt_plots#, }
set output "$out/read-${size}M.png"
set title "First full read after attach, ${size} MiB, median per attacher\n$title_env: compare backends, not absolute times"
set ylabel "ms (QEMU TCG)"
plot ${read_plots#, }
EOF
done

{
	echo "# mshare_bench results ($mode run)"
	echo
	echo '```'
	cat "$out/env.txt"
	echo '```'
	echo
	echo "## Targets"
	echo
	echo '```'
	cat "$out/targets.txt"
	echo '```'
	echo
	echo "## Table"
	echo
	echo '```'
	sed '/^# \(host\|emulator\|run\|kernel\|cpu\|guest\|fault\|timer\|THP\)/d' "$out/table.txt"
	echo '```'
	echo
	echo "## Paired runs (mshare and POSIX shm 4 KiB in rotation)"
	echo
	echo '```'
	cat "$out/paired.txt"
	echo '```'
	echo
	echo "## Ratios: POSIX shm 4 KiB / backend"
	echo
	echo '```'
	cat "$out/ratios.txt"
	echo '```'
	echo
	for png in "$out"/pagetables-*M.png "$out"/read-*M.png; do
		[ -f "$png" ] && echo "![$(basename "$png" .png)]($(basename "$png"))"
	done
} >"$out/report.md"

echo
cat "$out/targets.txt"
echo "bench: $mode run took ${elapsed} s; results in $out (report.md, results.csv, table.txt, *.png)"
exit "$status"
