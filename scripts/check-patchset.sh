#!/bin/bash
# make check-patchset: apply build/patchset/ with `git am` onto a fresh
# pristine tree, build the kernel after every patch, run checkpatch.pl
# --strict on every patch, sparse on mm/mshare.c and fs/msharefs/, and
# the kselftest build of tools/testing/selftests/mshare.
#
# Prints one line per patch and a summary; exits non-zero if any patch
# fails to apply or build, or checkpatch reports an error or a warning.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
# shellcheck source=/dev/null
. "$top/kernel/VERSION"
work=$build/check-patchset
tree=$work/linux
out=$work/results
jobs=${JOBS:-$(nproc)}
export KBUILD_BUILD_USER=mshare KBUILD_BUILD_HOST=qemu
export KBUILD_BUILD_TIMESTAMP='Thu Jan  1 00:00:00 UTC 2026'
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache-mshare}
export CCACHE_BASEDIR=$build CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-4G}
kmake() { make -C "$tree" -j"$jobs" CC="ccache gcc" HOSTCC="ccache gcc" "$@"; }
log() { printf 'check-patchset: %s\n' "$*"; }

# Its own tree, so its own lock: one check at a time.
mkdir -p "$build"
exec 9>"$build/.check-patchset.lock"
flock 9

/usr/bin/python3 "$top/scripts/patchset.py" || exit 1
patches=("$build"/patchset/0*.patch)
series=("${patches[@]:1}")	# 0000 is the cover letter

rm -rf "$work"
mkdir -p "$work" "$out"
log "fresh tree from $KERNEL_TARBALL"
tar -xf "$KERNEL_TARBALL" -C "$work"
mv "$work"/linux-source-* "$tree"
(
	cd "$tree" &&
	git init -q &&
	git config user.name "$(git -C "$top" config user.name)" &&
	git config user.email "$(git -C "$top" config user.email)" &&
	# -f: Debian's source package ignores everything at the top level.
	git add -A -f &&
	git commit -q -m "base: Linux $KERNEL_VERSION ($KERNEL_PACKAGE $KERNEL_PACKAGE_VERSION)"
) || { log "could not make the base repository"; exit 1; }

configure() {
	kmake -s tinyconfig >/dev/null &&
		"$tree/scripts/kconfig/merge_config.sh" -m -O "$tree" "$tree/.config" \
			"$top"/kernel/config/*.config >/dev/null &&
		kmake -s olddefconfig >/dev/null
}

# checkpatch counts for one patch file: "errors warnings checks".
checkpatch_counts() {
	local report=$1
	local e w c
	e=$(grep -c '^ERROR:' "$report")
	w=$(grep -c '^WARNING:' "$report")
	c=$(grep -c '^CHECK:' "$report")
	echo "$e $w $c"
}

fail=0
total_e=0 total_w=0 total_c=0
start=$SECONDS
# The base builds too; its kernel (our config without CONFIG_MSHARE) is
# kept for comparisons: build/pristine-bzImage.
t0=$SECONDS
if configure && kmake -s bzImage >"$out/base.build" 2>&1; then
	cp "$tree/arch/x86/boot/bzImage" "$build/pristine-bzImage"
	log "base: ok in $((SECONDS - t0)) s (kept as $build/pristine-bzImage)"
else
	log "base: the pristine tree does not build (see $out/base.build)"
	exit 1
fi
printf '%-3s %-70s %-6s %6s %s\n' "#" "patch" "build" "time" "checkpatch E/W/C" | tee "$out/summary"
i=0
for p in "${series[@]}"; do
	i=$((i + 1))
	name=$(basename "$p")
	if ! git -C "$tree" am -q "$p" >"$out/$name.am" 2>&1; then
		log "$name does not apply:"
		cat "$out/$name.am"
		exit 1
	fi
	t0=$SECONDS
	if configure && kmake -s bzImage >"$out/$name.build" 2>&1; then
		result=ok
	else
		result=FAIL
		fail=1
	fi
	# Compiler warnings in the files this patch touches count as failures.
	if grep -E 'warning:' "$out/$name.build" >/dev/null 2>&1; then
		result="$result+warn"
		fail=1
	fi
	secs=$((SECONDS - t0))
	(cd "$tree" && ./scripts/checkpatch.pl --strict -q "$p" >"$out/$name.checkpatch" 2>&1)
	read -r e w c < <(checkpatch_counts "$out/$name.checkpatch")
	total_e=$((total_e + e)) total_w=$((total_w + w)) total_c=$((total_c + c))
	[ "$e" = 0 ] && [ "$w" = 0 ] || fail=1
	printf '%-3s %-70s %-6s %5ss %s/%s/%s\n' "$i" "${name:0:70}" "$result" "$secs" "$e" "$w" "$c" |
		tee -a "$out/summary"
done

log "sparse (make C=2) on mm/mshare.o and fs/msharefs/"
kmake C=2 mm/mshare.o fs/msharefs/inode.o >"$out/sparse.log" 2>&1
# Every warning met while checking our two objects, in our files or in the
# headers they include.  One kind is known to be false: pte_unmap()'s
# rcu_read_unlock() after pte_offset_map_lock(), whose rcu_read_lock()
# sparse cannot see; every user of that pair in mm/ gets it (e.g.
# madvise_free_pte_range(), mincore_pte_range()).
grep -E ': (warning|error):' "$out/sparse.log" >"$out/sparse.warnings"
known='^\./include/linux/rcupdate\.h:[0-9]+:[0-9]+: warning: context imbalance in .* - unexpected unlock$'
sparse_all=$(wc -l <"$out/sparse.warnings")
sparse_known=$(grep -cE "$known" "$out/sparse.warnings")
sparse_new=$((sparse_all - sparse_known))
log "sparse: $sparse_new warnings or errors; $sparse_known known false positives (pte_unmap() after pte_offset_map_lock())"
sed 's/^/  /' "$out/sparse.warnings"
[ "$sparse_new" = 0 ] || fail=1

log "kselftest build: make -C tools/testing/selftests TARGETS=mshare"
if kmake -s headers >/dev/null 2>&1 &&
	make -C "$tree/tools/testing/selftests" TARGETS=mshare >"$out/kselftest.log" 2>&1; then
	log "kselftest build: ok ($(ls "$tree"/tools/testing/selftests/mshare/*_test 2>/dev/null | wc -l) programs)"
else
	log "kselftest build: FAIL (see $out/kselftest.log)"
	fail=1
fi

for p in "${series[@]}"; do
	name=$(basename "$p")
	[ -s "$out/$name.checkpatch" ] && { echo "== $name"; cat "$out/$name.checkpatch"; }
done >"$out/checkpatch.log"
log "checkpatch --strict: $total_e errors, $total_w warnings, $total_c checks ($out/checkpatch.log)"
log "${#series[@]} patches, each built; $((SECONDS - start)) s in all"
[ $fail = 0 ] && log "PASS" || log "FAIL"
exit $fail
