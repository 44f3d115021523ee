#!/bin/bash
# make mm-selftests: the kernel's own tools/testing/selftests/mm programs,
# built static, run in the guest on a pristine 6.12 kernel (our config
# without CONFIG_MSHARE) and on ours; every result must be the same.
#
#   scripts/mm-selftests.sh [--only "NAME..."] [--list] [--build-only]
#                           [--reuse-pristine]
#
# --reuse-pristine compares against the pristine kernel's results of the
# previous run (build/mm-selftests/pristine.*) instead of booting it again
# (they change only with the program list or the programs), --only runs a subset, --list prints the programs with their time limits
# and arguments, --build-only stops once build/mm-selftests/initrd.cpio is
# made (boot it with scripts/qemu-run.sh --initrd ... --append
# hugepages=128 -- /opt/mm/run).
#
# Results in build/mm-selftests/: results.md (the table), <kernel>.log
# (console of each boot), <kernel>/<program>.log (each program's output),
# <kernel>.results (one line per program and per subtest).  Exits non-zero
# when any result differs between the two kernels, or a boot did not get
# through the whole list.  Tests failing (or skipped) on both are listed in
# the table, not hidden; they do not fail the target.
#
# The pristine kernel is build/pristine-bzImage (also made by make
# check-patchset); when missing it is built here from a copy of
# build/linux-pristine in build/linux-base.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
# shellcheck source=/dev/null
. "$top/kernel/VERSION"
out=$build/mm-selftests
bin=$out/bin
ksrc=$build/linux
mmsrc=$ksrc/tools/testing/selftests/mm
hdr=$build/headers/include
ours=$ksrc/arch/x86/boot/bzImage
pristine=$build/pristine-bzImage
only=""
list_only=0 build_only=0 reuse=0
while [ $# -gt 0 ]; do
	case $1 in
	--only) only=$2; shift 2 ;;
	--list) list_only=1; shift ;;
	--build-only) build_only=1; shift ;;
	--reuse-pristine) reuse=1; shift ;;
	*) echo "usage: $0 [--only \"NAME...\"] [--list] [--build-only] [--reuse-pristine]" >&2; exit 2 ;;
	esac
done
log() { printf 'mm-selftests: %s\n' "$*"; }
die() { printf 'mm-selftests: error: %s\n' "$*" >&2; exit 1; }

# The programs, in run order: "name time-limit sysctls command...".
# sysctls ("-" for none) are set for that program and restored after it,
# e.g. vm.nr_hugepages=1 as run_vmtests.sh does.  Limits are in the
# guest's clock, which runs slow on a loaded host: keep them several
# times the idle run time so that no result depends on the load.  The
# guest boots with 128 2 MiB huge pages reserved (hugepages=128).
# Arguments follow run_vmtests.sh except where docs/reliability.md says.
tests() {
	cat <<'EOF'
hugepage-mmap            60  -                    hugepage-mmap
hugepage-shm             60  -                    hugepage-shm
map_hugetlb              60  -                    map_hugetlb
hugepage-mremap          60  -                    hugepage-mremap
hugepage-vmemmap         60  -                    hugepage-vmemmap
hugetlb-madvise          60  -                    hugetlb-madvise
hugetlb_dio              60  -                    hugetlb_dio
hugetlb_madv_vs_map      60  vm.nr_hugepages=1    hugetlb_madv_vs_map
map_fixed_noreplace      60  -                    map_fixed_noreplace
gup_test                 60  -                    gup_test -u
gup_longterm             120 -                    gup_longterm
uffd-unit-register       300 -                    uffd-unit-tests -f register-ioctls
uffd-unit-zeropage       300 -                    uffd-unit-tests -f zeropage
uffd-unit-move           600 -                    uffd-unit-tests -f move
uffd-unit-wp-fork        600 -                    uffd-unit-tests -f wp-fork
uffd-unit-wp-unpopulated 120 -                    uffd-unit-tests -f wp-unpopulated
uffd-unit-minor          600 -                    uffd-unit-tests -f minor
uffd-unit-sigbus         600 -                    uffd-unit-tests -f sigbus
uffd-unit-events         1200 -                    uffd-unit-tests -f events
uffd-unit-poison         600 -                    uffd-unit-tests -f poison
uffd-stress-anon         120 -                    uffd-stress anon 16 4
uffd-stress-hugetlb      120 -                    uffd-stress hugetlb 32 4
uffd-stress-shmem        120 -                    uffd-stress shmem 16 4
compaction_test          120 -                    compaction_test
on-fault-limit           60  -                    su -s /bin/sh nobody -c /opt/mm/bin/on-fault-limit
mlock-random-test        60  -                    mlock-random-test
mlock2-tests             60  -                    mlock2-tests
mrelease_test            60  -                    mrelease_test
mremap_test              120 vm.overcommit_memory=1 mremap_test
mremap_dontunmap         60  -                    mremap_dontunmap
madv_populate            60  -                    madv_populate
memfd_secret             60  -                    memfd_secret
ksm_tests-H              300 -                    ksm_tests -H -s 20
ksm_tests-P              300 -                    ksm_tests -P -s 20
ksm_tests-M              120 -                    ksm_tests -M -p 10
ksm_tests-U              120 -                    ksm_tests -U
ksm_tests-Z0             120 -                    ksm_tests -Z -p 10 -z 0
ksm_tests-Z1             120 -                    ksm_tests -Z -p 10 -z 1
ksm_functional_tests     600 -                    ksm_functional_tests
protection_keys_64       120 -                    protection_keys_64
pkey_sighandler_tests_64 60  -                    pkey_sighandler_tests_64
soft-dirty               60  -                    soft-dirty
pagemap_ioctl            600 -                    pagemap_ioctl
cow                      600 -                    cow
khugepaged               600 -                    khugepaged
khugepaged-s2            600 -                    khugepaged -s 2
transhuge-stress         60  -                    transhuge-stress -d 5
split_huge_page_test     120 -                    split_huge_page_test /nonexistent
migration                60  -                    migration
mkdirty                  60  -                    mkdirty
mdwe_test                60  -                    mdwe_test
mseal_test               60  -                    mseal_test
seal_elf                 60  -                    seal_elf
droppable                120 -                    droppable
EOF
}

# Selected lines of tests(): all, or the names given with --only.
selected() {
	tests | while read -r name rest; do
		if [ -z "$only" ] || [[ " $only " == *" $name "* ]]; then
			echo "$name $rest"
		fi
	done
}

if [ $list_only = 1 ]; then
	selected
	exit 0
fi

# --- The pristine kernel ---------------------------------------------------
build_pristine() {
	local base=$build/linux-base t0=$SECONDS
	export KBUILD_BUILD_USER=mshare KBUILD_BUILD_HOST=qemu
	export KBUILD_BUILD_TIMESTAMP='Thu Jan  1 00:00:00 UTC 2026'
	export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache-mshare}
	export CCACHE_BASEDIR=$build CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-4G}
	local kmake=(make -C "$base" -j"${JOBS:-$(nproc)}" CC="ccache gcc" HOSTCC="ccache gcc")
	exec 8>"$build/.kernel-base.lock"
	flock 8
	[ -f "$pristine" ] && return 0	# built while we waited
	if [ ! -d "$base" ]; then
		if [ -d "$build/linux-pristine" ]; then
			log "copying build/linux-pristine to build/linux-base"
			cp -a "$build/linux-pristine" "$base.tmp" && mv "$base.tmp" "$base" || return 1
		else
			[ -f "$KERNEL_TARBALL" ] || die "$KERNEL_TARBALL missing (make deps)"
			log "extracting $KERNEL_TARBALL into build/linux-base"
			rm -rf "$base.tmp" && mkdir -p "$base.tmp" &&
				tar -xf "$KERNEL_TARBALL" -C "$base.tmp" &&
				mv "$base.tmp"/linux-source-* "$base" && rmdir "$base.tmp" || return 1
		fi
	fi
	# Our fragments; CONFIG_MSHARE does not exist in this tree, so
	# olddefconfig drops it and everything else is as in build/linux.
	log "building the pristine kernel in build/linux-base (tinyconfig + kernel/config/*.config)"
	"${kmake[@]}" -s tinyconfig >/dev/null &&
		"$base/scripts/kconfig/merge_config.sh" -m -O "$base" "$base/.config" \
			"$top"/kernel/config/*.config >/dev/null &&
		"${kmake[@]}" -s olddefconfig >/dev/null &&
		"${kmake[@]}" -s bzImage >"$out/pristine-build.log" 2>&1 || {
		tail -n 30 "$out/pristine-build.log"
		return 1
	}
	cp "$base/arch/x86/boot/bzImage" "$pristine.tmp" && mv "$pristine.tmp" "$pristine"
	log "pristine kernel built in $((SECONDS - t0)) s: $pristine"
}

mkdir -p "$out" "$bin"
[ -f "$ours" ] || die "$ours missing (make kernel)"
[ -d "$hdr" ] || die "$hdr missing (make headers)"
[ -f "$build/initramfs.cpio" ] || die "build/initramfs.cpio missing (make initramfs)"
[ -f "$pristine" ] || [ $build_only = 1 ] || build_pristine || die "could not build the pristine kernel"

# --- The programs ------------------------------------------------------------
# As the mm Makefile builds them, but static, against our installed uapi
# headers; local_config.h (liburing present) goes in our own include dir
# so the kernel tree stays untouched.
inc=$out/include
mkdir -p "$inc"
echo '#define LOCAL_CONFIG_HAVE_LIBURING 1' >"$inc/local_config.h.new"
cmp -s "$inc/local_config.h.new" "$inc/local_config.h" || mv "$inc/local_config.h.new" "$inc/local_config.h"
rm -f "$inc/local_config.h.new"
cflags=(-static -Wall -O2 -U_FORTIFY_SOURCE -I "$inc" -I "$ksrc" -isystem "$hdr"
	-isystem "$ksrc/tools/include/uapi" -I "$mmsrc/..")
build_prog() {
	local prog=$1 src=$1 extra=() libs=(-lrt -lpthread -lm) f
	case $prog in
	uffd-*) extra=(uffd-common.c) ;;
	esac
	case $prog in
	cow | gup_longterm) libs+=(-luring) ;;
	mlock-random-test | memfd_secret) libs+=(-lcap) ;;
	ksm_tests | migration) libs+=(-lnuma) ;;
	# 6.12.117's khugepaged.c uses KSFT_SKIP without including
	# kselftest.h (a stable-backport slip; upstream includes it).
	khugepaged) extra=(-include "$mmsrc/../kselftest.h") ;;
	protection_keys_64 | pkey_sighandler_tests_64)
		src=${prog%_64}
		extra=(-m64 -mxsave)
		libs+=(-ldl) ;;
	esac
	if [ -x "$bin/$prog" ]; then
		local newer=0
		for f in "$mmsrc/$src.c" "$mmsrc"/*.h "$mmsrc"/vm_util.c "$mmsrc"/thp_settings.c \
			"$mmsrc"/uffd-common.c "$mmsrc/../kselftest.h" "$hdr/linux/mman.h"; do
			[ "$f" -nt "$bin/$prog" ] && newer=1
		done
		[ $newer = 0 ] && return 0
	fi
	(cd "$mmsrc" && gcc "${cflags[@]}" "${extra[@]}" -o "$bin/$prog" "$src.c" \
		vm_util.c thp_settings.c "${libs[@]}") >"$out/build-$prog.log" 2>&1
}
progs=$(selected | awk '{ p = $4; if (p == "su") { p = $NF; sub(/.*\//, "", p) } print p }' | sort -u)
nbuilt=0
for p in $progs; do
	build_prog "$p" || { cat "$out/build-$p.log"; die "$p does not build (see $out/build-$p.log)"; }
	nbuilt=$((nbuilt + 1))
done
log "$nbuilt programs built in $bin"

# --- The guest side ------------------------------------------------------------
selected >"$out/list"
cat >"$out/run" <<'EOF'
#!/bin/sh
# Runs /opt/mm/list in the guest; the host reads the markers.
export PATH=/opt/mm/bin:$PATH
cd /tmp
# As run_vmtests.sh: SysV shm big enough for hugepage-shm.
echo 268435456 >/proc/sys/kernel/shmmax
echo 4194304 >/proc/sys/kernel/shmall
echo "mm-selftests: kernel $(uname -r), $(grep HugePages_Total /proc/meminfo)"
while read -r name limit sysctls cmd; do
	restore=""
	if [ "$sysctls" != - ]; then
		for kv in $(echo "$sysctls" | tr , ' '); do
			k=${kv%%=*}
			restore="$restore $k=$(sysctl -n "$k")"
			sysctl -q -w "$kv"
		done
	fi
	echo "### MM-BEGIN $name: $cmd"
	start=$(date +%s)
	# shellcheck disable=SC2086
	timeout -k 5 "$limit" $cmd </dev/null 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	[ "$secs" -ge "$limit" ] && rc=timeout
	prog=${cmd%% *}
	[ "$prog" = su ] && prog=${cmd##*/}
	killall -9 "$prog" 2>/dev/null
	for kv in $restore; do sysctl -q -w "$kv"; done
	echo "### MM-END $name rc=$rc secs=$secs"
done </opt/mm/list
echo "### MM-ALL-DONE"
EOF
# One extra cpio holds everything; appended to the standard initramfs.
spec=$out/spec
{
	echo "dir /opt/mm 0755 0 0"
	echo "dir /opt/mm/bin 0755 0 0"
	echo "file /opt/mm/run $out/run 0755 0 0"
	echo "file /opt/mm/list $out/list 0644 0 0"
	for p in $progs; do echo "file /opt/mm/bin/$p $bin/$p 0755 0 0"; done
} >"$spec"
cp "$build/initramfs.cpio" "$out/initrd.cpio"
"$ksrc/usr/gen_init_cpio" "$spec" >>"$out/initrd.cpio" || die "gen_init_cpio failed"
[ $build_only = 1 ] && { log "$out/initrd.cpio ready"; exit 0; }

# --- Runs ----------------------------------------------------------------------
total_limit=$(selected | awk '{ s += $2 } END { print s + 300 }')
declare -A secs
run_kernel() {
	local kname=$1 kernel=$2 t0=$SECONDS
	log "booting $kname kernel ($kernel)"
	"$top/scripts/qemu-run.sh" --name "mm-selftests-$kname" --kernel "$kernel" \
		--initrd "$out/initrd.cpio" --append "hugepages=128" \
		--timeout "$total_limit" -- /opt/mm/run 2>&1 |
		tee "$out/$kname.log" | grep -a --line-buffered '### MM-' |
		# Host time: the guest's clock runs slow under a loaded TCG.
		while IFS= read -r line; do echo "$SECONDS ${line%$'\r'}"; done >"$out/$kname.marks"
	echo "${PIPESTATUS[0]}" >"$out/$kname.status"
	secs[$kname]=$((SECONDS - t0))
	log "$kname: $((SECONDS - t0)) s, qemu-run status $(cat "$out/$kname.status")"
	grep -a '^qemu-run: ' "$out/$kname.log" | sed 's/^/  /'
}
if [ $reuse = 1 ] && [ -f "$out/pristine.log" ]; then
	log "pristine: reusing the results of the previous run ($out/pristine.log)"
	secs[pristine]=$(cat "$out/pristine.secs" 2>/dev/null || echo reused)
else
	run_kernel pristine "$pristine"
	echo "${secs[pristine]}" >"$out/pristine.secs"
fi
run_kernel mshare "$ours"
printf 'pristine %s\nmshare %s\n' "${secs[pristine]}" "${secs[mshare]}" >"$out/times"

# --- Compare -----------------------------------------------------------------
/usr/bin/python3 - "$out" <<'EOF'
import collections, os, re, sys

out = sys.argv[1]
kernels = ["pristine", "mshare"]
order = [l.split()[0] for l in open(os.path.join(out, "list")) if l.strip()]
stamp = re.compile(r"^\[ *\d+\.\d+\] ")
tap = re.compile(r"^(not ok|ok) (\d+)( [^#]*)?(#.*)?$")
uffd = re.compile(r"^Testing (.*?)\.\.\. (done|skipped|failed)")
ansi = re.compile(r"\x1b\[[0-9;]*m")
# khugepaged: "Run test: NAME (mode)" then "step... OK|Fail|Skip".
khp_run = re.compile(r"^Run test: (.*)")
khp = re.compile(r"^(.*?)\.\.\.+ *(OK|Fail|Skip)\s*$")


def status(rc):
    if rc == "0":
        return "pass"
    if rc == "4":
        return "skip"
    if rc == "timeout":
        return "timeout"
    return "fail(%s)" % rc


def parse(kname):
    """Per program: exit status, subtests (ordered dict key -> result), secs."""
    progs, cur, lines, done = {}, None, [], False
    os.makedirs(os.path.join(out, kname), exist_ok=True)
    splats = [l.rstrip() for l in open(os.path.join(out, kname + ".log"), errors="replace")
              if l.startswith("qemu-run:   ")]
    host_secs, begun = {}, {}
    marks = os.path.join(out, kname + ".marks")
    for l in open(marks) if os.path.exists(marks) else ():
        m = re.match(r"(\d+) ### MM-(BEGIN|END) ([^: ]+)", l)
        if m and m.group(2) == "BEGIN":
            begun[m.group(3)] = int(m.group(1))
        elif m and m.group(3) in begun:
            host_secs[m.group(3)] = int(m.group(1)) - begun[m.group(3)]
    for raw in open(os.path.join(out, kname + ".log"), errors="replace"):
        line = ansi.sub("", raw.rstrip("\r\n").replace("\r", ""))
        if line.startswith("### MM-BEGIN "):
            cur = line[len("### MM-BEGIN "):].split(":")[0]
            lines = [line]
            continue
        if line.startswith("### MM-ALL-DONE"):
            done = True
            continue
        if cur is None:
            continue
        if line.startswith("### MM-END "):
            m = re.match(r"### MM-END (\S+) rc=(\S+) secs=(\d+)", line)
            lines.append(line)
            sub = collections.OrderedDict()
            ctx, kctx, pending = "", "", None
            seen = collections.Counter()
            for l in lines:
                if stamp.match(l):
                    continue
                c = re.match(r"^# \[RUN\] (.*)", l)
                if c:
                    ctx = c.group(1).strip()
                t = tap.match(l)
                key = res = None
                if t:
                    desc = (t.group(3) or "").strip()
                    directive = (t.group(4) or "").lstrip("#").strip()
                    # Measured figures in a description (pagemap_ioctl's
                    # "Extra pages 149", mrelease_test's retry size) vary
                    # from run to run: the TAP number identifies the test.
                    key = "%s %s" % (t.group(2), re.sub(r"\d+", "N", desc or ctx))
                    if t.group(1) == "not ok":
                        res = "fail"
                    elif directive.upper().startswith("SKIP"):
                        res = "skip"
                    elif directive.upper().startswith("XFAIL"):
                        res = "xfail"
                    else:
                        res = "pass"
                k = khp_run.match(l)
                if k:
                    kctx = k.group(1).strip()
                k = khp.match(l)
                if k:
                    key = "%s: %s" % (kctx, k.group(1).strip()) if kctx else k.group(1).strip()
                    res = {"OK": "pass", "Fail": "fail", "Skip": "skip"}[k.group(2)]
                u = uffd.match(l)
                if u:
                    key = u.group(1)
                    res = {"done": "pass", "skipped": "skip", "failed": "fail"}[u.group(2)]
                else:
                    p = re.match(r"^Testing (.*?)\.\.\. *$", l)
                    if p:
                        pending = p.group(1)
                    elif pending:
                        r = re.match(r"^(done|skipped|failed)", l)
                        if r:
                            key = pending
                            res = {"done": "pass", "skipped": "skip", "failed": "fail"}[r.group(1)]
                            pending = None
                if key is not None:
                    seen[key] += 1
                    if seen[key] > 1:
                        key = "%s (#%d)" % (key, seen[key])
                    sub[key] = res
            progs[cur] = {"status": status(m.group(2)), "secs": host_secs.get(cur, int(m.group(3))), "sub": sub}
            with open(os.path.join(out, kname, cur + ".log"), "w") as f:
                f.write("\n".join(lines) + "\n")
            cur = None
            continue
        lines.append(line)
    if cur is not None:  # the boot ended inside a program
        progs[cur] = {"status": "incomplete", "secs": 0, "sub": {}}
        with open(os.path.join(out, kname, cur + ".log"), "w") as f:
            f.write("\n".join(lines) + "\n")
    with open(os.path.join(out, kname + ".results"), "w") as f:
        for name in order:
            p = progs.get(name)
            if not p:
                continue
            f.write("%s\t@exit\t%s\n" % (name, p["status"]))
            for k, v in p["sub"].items():
                f.write("%s\t%s\t%s\n" % (name, k, v))
    # Complete when every listed program ran to its end marker.
    done = all(n in progs and progs[n]["status"] != "incomplete" for n in order)
    return progs, done, splats


res = {k: parse(k) for k in kernels}
times = dict(l.split() for l in open(os.path.join(out, "times")))
rows, diffs, both_bad = [], [], []


def summary(p):
    if p is None:
        return "not run"
    c = collections.Counter(p["sub"].values())
    s = p["status"]
    if p["sub"]:
        s += " (" + ", ".join("%d %s" % (c[r], r) for r in ("pass", "fail", "skip", "xfail") if c[r]) + ")"
    return s


for name in order:
    a, b = res["pristine"][0].get(name), res["mshare"][0].get(name)
    same = a is not None and b is not None and a["status"] == b["status"] and a["sub"] == b["sub"]
    rows.append((name, summary(a), summary(b), "yes" if same else "**NO**",
                 "%s / %s" % (a["secs"] if a else "-", b["secs"] if b else "-")))
    if not same:
        keys = list((a or {"sub": {}})["sub"]) + [k for k in (b or {"sub": {}})["sub"] if k not in (a or {"sub": {}})["sub"]]
        d = ["%s: %s -> %s" % (name, a["status"] if a else "not run", b["status"] if b else "not run")]
        for k in keys:
            ra = a["sub"].get(k, "absent") if a else "absent"
            rb = b["sub"].get(k, "absent") if b else "absent"
            if ra != rb:
                d.append("  %s: %s -> %s" % (k, ra, rb))
        diffs.append(d)
    for p in (a,) if same else ():
        bad = [k for k, v in p["sub"].items() if v == "fail"]
        if p["status"] not in ("pass", "skip") or bad:
            both_bad.append("%s: %s%s" % (name, p["status"], "".join("\n  not ok: " + k for k in bad)))

lines = ["| program | pristine | mshare | same? | seconds (pristine / mshare) |",
         "|---|---|---|---|---|"]
lines += ["| %s | %s | %s | %s | %s |" % r for r in rows]
text = "\n".join(lines) + "\n\n"
text += "Boot time for the whole list: pristine %s s, mshare %s s.\n" % (times["pristine"], times["mshare"])
for k in kernels:
    progs, done, splats = res[k]
    if not done:
        text += "\n%s: the boot did not reach the end of the list.\n" % k
    if splats:
        text += "\n%s: kernel splat in the console log:\n%s\n" % (k, "\n".join(splats))
if both_bad:
    text += "\nFailing on both kernels (same result, listed):\n\n" + "\n".join("- " + x.replace("\n", "\n  ") for x in both_bad) + "\n"
if diffs:
    text += "\nDIFFERENCES:\n\n" + "\n".join("\n".join(d) for d in diffs) + "\n"
open(os.path.join(out, "results.md"), "w").write(text)
print(text)
ok = not diffs and all(res[k][1] for k in kernels) and (bool(res["pristine"][2]) == bool(res["mshare"][2]))
print("mm-selftests: %s: %d programs, %d differ" % ("PASS" if ok else "FAIL", len(order), len(diffs)))
sys.exit(0 if ok else 1)
EOF
