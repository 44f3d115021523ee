#!/bin/bash
# Build the guest's base initramfs: busybox with its applets, /init, the
# test runner and every static test program staged in build/guest/.
#
#   scripts/initramfs.sh OUT.cpio
#
# build/guest/bin/*      installed as /opt/mshare/bin/*
# build/guest/tests.list installed as /opt/mshare/tests.list
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
out=$1
ktree=$build/linux${KERNEL_VARIANT:+-$KERNEL_VARIANT}
gen=$ktree/usr/gen_init_cpio
guest=$build/guest
busybox=${BUSYBOX:-/bin/busybox}

[ -x "$gen" ] || make -C "$ktree" -s usr/gen_init_cpio
file "$busybox" | grep -q 'statically linked' ||
	{ echo "initramfs: $busybox is not static (install busybox-static)" >&2; exit 1; }

exec 9>"$build/.initramfs.lock"
flock 9
spec=$(mktemp)
trap 'rm -f "$spec"' EXIT
{
	for d in bin sbin usr usr/bin usr/sbin proc sys dev tmp work root etc \
		etc/mshare opt opt/mshare opt/mshare/bin; do
		echo "dir /$d 0755 0 0"
	done
	echo "nod /dev/console 0600 0 0 c 5 1"
	echo "nod /dev/null 0666 0 0 c 1 3"
	echo "file /bin/busybox $busybox 0755 0 0"
	"$busybox" --list-full | while read -r applet; do
		[ "$applet" = bin/busybox ] || echo "slink /$applet /bin/busybox 0777 0 0"
	done
	echo "file /init $top/scripts/guest/init 0755 0 0"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' >"$guest/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$guest/group"
	echo "file /etc/passwd $guest/passwd 0644 0 0"
	echo "file /etc/group $guest/group 0644 0 0"
	for s in run-tests demo; do
		echo "file /opt/mshare/bin/$s $top/scripts/guest/$s 0755 0 0"
	done
	[ -f "$guest/tests.list" ] && echo "file /opt/mshare/tests.list $guest/tests.list 0644 0 0"
	for f in "$guest"/bin/*; do
		[ -f "$f" ] && echo "file /opt/mshare/bin/$(basename "$f") $f 0755 0 0"
	done
} >"$spec"
"$gen" "$spec" >"$out.tmp"
mv "$out.tmp" "$out"
echo "initramfs: $out ($(du -h "$out" | cut -f1))"
