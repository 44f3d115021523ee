#!/bin/bash
# Prepare and build the test kernel.
#
#   scripts/kernel.sh tree      extract, overlay our files, apply the series
#   scripts/kernel.sh config    tree + tinyconfig + fragments, verified
#   scripts/kernel.sh build     config + bzImage (ccache)
#   scripts/kernel.sh headers   build + headers_install into build/headers
#
# build/linux-pristine is the untouched Debian source (kept for the patch
# series); build/linux is the working tree.  Every step only redoes what
# changed, so editing one of our files rebuilds incrementally.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$top/kernel/VERSION"
build=${BUILD_DIR:-$top/build}
pristine=$build/linux-pristine
# KERNEL_VARIANT=distro, kasan or distro-kasan builds build/linux-VARIANT
# with the fragments of each named directory under kernel/config/ (in that
# order) on top of the usual ones.
variant=${KERNEL_VARIANT:-}
tree=$build/linux${variant:+-$variant}
state=$build/kernel-state${variant:+-$variant}
jobs=${JOBS:-$(nproc)}
series=$top/kernel/patches/series

fragments=("$top"/kernel/config/*.config)
for part in ${variant//-/ }; do
	[ -d "$top/kernel/config/$part" ] || { echo "kernel: no kernel/config/$part/" >&2; exit 1; }
	fragments+=("$top/kernel/config/$part"/*.config)
done

log() { printf 'kernel: %s\n' "$*" >&2; }
die() { printf 'kernel: error: %s\n' "$*" >&2; exit 1; }

# Reproducible strings in init/version.c keep ccache hits across trees.
export KBUILD_BUILD_USER=mshare KBUILD_BUILD_HOST=qemu
export KBUILD_BUILD_TIMESTAMP='Thu Jan  1 00:00:00 UTC 2026'
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache-mshare}
export CCACHE_BASEDIR=$build CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-4G}
kmake() { make -C "$tree" -j"$jobs" CC="ccache gcc" HOSTCC="ccache gcc" "$@"; }

extract() {
	local dest=$1 tmp
	[ -f "$KERNEL_TARBALL" ] || die "$KERNEL_TARBALL missing (make deps installs $KERNEL_PACKAGE)"
	tmp=$(mktemp -d "$build/extract.XXXXXX")
	log "extracting $KERNEL_TARBALL into $dest"
	tar -xf "$KERNEL_TARBALL" -C "$tmp"
	check_version "$tmp"/linux-source-*
	mv "$tmp"/linux-source-* "$dest"
	rmdir "$tmp"
}

# The pin (kernel/VERSION) names the 6.12 release the series was made
# against.  Debian ships newer stable point releases of 6.12 under the same
# package name: accept those, deliberately, and say which one is built;
# refuse another series or an older release.
check_version() {
	local src=$1 v p s have pkg
	v=$(sed -n 's/^VERSION = //p' "$src/Makefile")
	p=$(sed -n 's/^PATCHLEVEL = //p' "$src/Makefile")
	s=$(sed -n 's/^SUBLEVEL = //p' "$src/Makefile")
	have=$v.$p.$s
	pkg=$(dpkg-query -W -f='${Version}' "$KERNEL_PACKAGE" 2>/dev/null || echo unknown)
	if [ "$v.$p" != "$KERNEL_SERIES" ] || [ "$s" -lt "${KERNEL_VERSION##*.}" ]; then
		die "$KERNEL_TARBALL is Linux $have ($KERNEL_PACKAGE $pkg); this project needs $KERNEL_SERIES.x with x >= ${KERNEL_VERSION##*.} (kernel/VERSION)"
	fi
	if [ "$have" != "$KERNEL_VERSION" ]; then
		log "note: building Linux $have ($KERNEL_PACKAGE $pkg), a newer stable release than the pinned $KERNEL_VERSION"
	else
		log "building Linux $have ($KERNEL_PACKAGE $pkg), as pinned"
	fi
	mkdir -p "$state"
	echo "Linux $have ($KERNEL_PACKAGE $pkg); pinned $KERNEL_VERSION" >"$state/version"
}

# Files a patch series touches, one per line.
series_files() {
	local dir=$1 p
	[ -f "$dir/series" ] || return 0
	while read -r p; do
		case $p in ''|'#'*) continue ;; esac
		sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$dir/$p"
	done <"$dir/series" | sort -u
}

# Our new files, as "repo path:tree path" pairs.
overlay_map() {
	echo "mm/mshare.c:mm/mshare.c"
	echo "fs/msharefs:fs/msharefs"
	echo "uapi/linux:include/uapi/linux"
	echo "selftests/mshare:tools/testing/selftests/mshare"
	echo "kernel/include/linux/mshare.h:include/linux/mshare.h"
	echo "kernel/Documentation:Documentation"
}

overlay() {
	local pair src dst
	while read -r pair; do
		src=$top/${pair%%:*} dst=$tree/${pair#*:}
		[ -e "$src" ] || continue
		if [ -d "$src" ]; then
			mkdir -p "$dst"
			# -c: compare contents, so unchanged files keep their mtime.
			rsync -rc --exclude '*.o' "$src/" "$dst/"
		else
			rsync -c "$src" "$dst"
		fi
	done < <(overlay_map)
}

apply_series() {
	local applied=$state/applied f p
	if [ -d "$applied" ] && diff -rq "$applied" "$top/kernel/patches" >/dev/null 2>&1; then
		return 0
	fi
	# Restore what the old and the new series touch, then apply anew.
	while read -r f; do
		if [ -e "$pristine/$f" ]; then
			cmp -s "$pristine/$f" "$tree/$f" || cp "$pristine/$f" "$tree/$f"
		else
			rm -f "$tree/$f"
		fi
	done < <({ [ -d "$applied" ] && series_files "$applied"; series_files "$top/kernel/patches"; } | sort -u)
	rm -rf "$applied"
	if [ -f "$series" ]; then
		while read -r p; do
			case $p in ''|'#'*) continue ;; esac
			[ -f "$top/kernel/patches/$p" ] || die "series names $p, which does not exist"
			log "applying $p"
			patch -d "$tree" -p1 --forward --quiet --no-backup-if-mismatch \
				<"$top/kernel/patches/$p" >/dev/null ||
				die "patch $p does not apply (restore with: rm -rf $tree $state)"
		done <"$series"
	fi
	mkdir -p "$state"
	cp -r "$top/kernel/patches" "$applied"
}

do_tree() {
	mkdir -p "$build" "$state"
	[ -d "$pristine" ] || extract "$pristine"
	[ -d "$tree" ] || { extract "$tree"; rm -rf "$state/applied" "$state/config.sum"; }
	apply_series
	overlay
}

# Value of a symbol in a config file: y, n, m, a number or string.
config_value() {
	local sym=$1 file=$2 line
	line=$(grep -E "^(# )?$sym[= ]" "$file" | head -n1) || true
	case $line in
	"# $sym is not set") echo n ;;
	"$sym="*) echo "${line#*=}" ;;
	*) echo "" ;;
	esac
}

verify_config() {
	local frag line sym want have bad=0
	declare -A wanted from
	# A later fragment overrides an earlier one: check the last value.
	for frag in "${fragments[@]}"; do
		while read -r line; do
			case $line in CONFIG_*=*) ;; *) continue ;; esac
			wanted[${line%%=*}]=${line#*=}
			from[${line%%=*}]=$(basename "$frag")
		done <"$frag"
	done
	for sym in "${!wanted[@]}"; do
		want=${wanted[$sym]}
		have=$(config_value "$sym" "$tree/.config")
		[ -n "$have" ] || have=n
		if [ "$have" != "$want" ]; then
			log "${from[$sym]}: $sym=$want did not stick (final .config: ${have})"
			bad=1
		fi
	done
	[ $bad = 0 ] || die "config fragments not satisfied; fix the dependencies above"
}

do_config() {
	do_tree
	local sum
	sum=$({ cat "${fragments[@]}"; cat "$state"/applied/* 2>/dev/null || true; } | sha256sum)
	if [ -f "$tree/.config" ] && [ "$(cat "$state/config.sum" 2>/dev/null)" = "$sum" ]; then
		return 0
	fi
	log "configuring: tinyconfig + $(for f in "${fragments[@]}"; do basename "$f"; done | tr '\n' ' ')"
	cp "$tree/.config" "$state/config.old" 2>/dev/null || true
	kmake -s tinyconfig >/dev/null
	"$tree/scripts/kconfig/merge_config.sh" -m -O "$tree" "$tree/.config" \
		"${fragments[@]}" >"$state/merge.log"
	kmake -s olddefconfig
	verify_config
	# Keep the old .config (and its mtime) when nothing changed.
	if [ -f "$state/config.old" ] && cmp -s "$state/config.old" "$tree/.config"; then
		cp -p "$state/config.old" "$tree/.config"
	fi
	echo "$sum" >"$state/config.sum"
}

do_build() {
	do_config
	log "building bzImage (-j$jobs, ccache)"
	local t0=$SECONDS
	kmake -s bzImage
	log "bzImage ready in $((SECONDS - t0)) s: $tree/arch/x86/boot/bzImage"
}

do_headers() {
	do_build
	kmake -s headers_install INSTALL_HDR_PATH="$build/headers"
}

# One kernel step at a time: two builds of the same tree would corrupt it
# (and two at once do not fit on a small machine anyway).
mkdir -p "$build"
exec 9>"$build/.kernel${variant:+-$variant}.lock"
flock 9

case ${1:-build} in
tree) do_tree ;;
config) do_config ;;
build) do_build ;;
headers) do_headers ;;
*) die "unknown step ${1}" ;;
esac
