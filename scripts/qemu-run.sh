#!/bin/bash
# Boot the test kernel in QEMU (TCG: KVM hangs on our machines), run a
# command in the guest and carry its exit status out.
#
#   scripts/qemu-run.sh [options] -- COMMAND...
#   scripts/qemu-run.sh [options] --shell
#
# Options: --name NAME (log prefix), --timeout SECONDS, --mem SIZE,
# --smp N, --add FILE (copied into the guest's /work; repeatable),
# --initrd BASE.cpio, --kernel BZIMAGE, --append ARGS (added to the kernel
# command line, e.g. hugepages=128; repeatable).
#
# The run fails, whatever the command returned, when QEMU exits without a
# status, the time limit passes, the guest boots fewer CPUs than asked for,
# or the console log holds a kernel splat.  The log is kept in build/logs/.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}

# A kernel variant's directories under kernel/config/ may hold qemu.conf:
# QEMU_CPU, QEMU_SMP_DEFAULT, QEMU_NUMA_NODES, QEMU_APPEND and
# EXPECT_PAGING_LEVELS for the guest that boots it.
QEMU_CPU=max QEMU_SMP_DEFAULT=2 QEMU_NUMA_NODES=0 QEMU_APPEND="" EXPECT_PAGING_LEVELS=""
variant=${KERNEL_VARIANT:-}
for part in ${variant//-/ }; do
	conf=$top/kernel/config/$part/qemu.conf
	# shellcheck source=/dev/null
	[ -f "$conf" ] && . "$conf"
done

name=run timeout=${QEMU_TIMEOUT:-600} mem=${GUEST_MEM:-2G} smp=${GUEST_SMP:-$QEMU_SMP_DEFAULT}
ktree=$build/linux${variant:+-$variant}
kernel=$ktree/arch/x86/boot/bzImage initrd=$build/initramfs.cpio
shell=0 adds=() append=""
while [ $# -gt 0 ]; do
	case $1 in
	--name) name=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--add) adds+=("$2"); shift 2 ;;
	--kernel) kernel=$2; shift 2 ;;
	--initrd) initrd=$2; shift 2 ;;
	--append) append="$append $2"; shift 2 ;;
	--shell) shell=1; shift ;;
	--) shift; break ;;
	*) echo "qemu-run: unknown option $1" >&2; exit 2 ;;
	esac
done
[ $shell = 1 ] || [ $# -gt 0 ] || { echo "qemu-run: no command" >&2; exit 2; }
for f in "$kernel" "$initrd"; do
	[ -f "$f" ] || { echo "qemu-run: $f missing (make kernel initramfs)" >&2; exit 2; }
done

mkdir -p "$build/logs"
log=$build/logs/$name-$(date +%Y%m%d-%H%M%S).log
work=$(mktemp -d "$build/qemu-run.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Per-run files go in a second cpio archive appended to the base one; the
# kernel unpacks both.
spec=$work/spec
: >"$spec"
if [ $shell = 0 ]; then
	{
		# MSHARE_TESTS (run-tests' suite filter) follows the command in.
		[ -n "${MSHARE_TESTS:-}" ] && printf "export MSHARE_TESTS='%s'\n" "$MSHARE_TESTS"
		printf '%s\n' "$*"
	} >"$work/cmd"
	echo "file /etc/mshare/cmd $work/cmd 0644 0 0" >>"$spec"
fi
for f in "${adds[@]}"; do
	[ -f "$f" ] || { echo "qemu-run: --add $f: no such file" >&2; exit 2; }
	echo "file /work/$(basename "$f") $(realpath "$f") 0755 0 0" >>"$spec"
done
cp "$initrd" "$work/initrd.cpio"
if [ -s "$spec" ]; then
	"$ktree/usr/gen_init_cpio" "$spec" >>"$work/initrd.cpio"
fi

# Memory in MiB, split evenly over the NUMA nodes (QEMU wants a backend
# per node for the pc machine).
case $mem in
*G) mem_mb=$((${mem%G} * 1024)) ;;
*M) mem_mb=${mem%M} ;;
*) mem_mb=$mem ;;
esac
numa=()
if [ "$QEMU_NUMA_NODES" -gt 0 ]; then
	for ((n = 0; n < QEMU_NUMA_NODES; n++)); do
		numa+=(-object "memory-backend-ram,id=mem$n,size=$((mem_mb / QEMU_NUMA_NODES))M"
			-numa "node,nodeid=$n,memdev=mem$n")
	done
	mem_mb=$(((mem_mb / QEMU_NUMA_NODES) * QEMU_NUMA_NODES))
fi

qemu=(qemu-system-x86_64 -accel tcg -cpu "$QEMU_CPU" -smp "$smp,sockets=$smp" -m "${mem_mb}M"
	"${numa[@]}"
	-nographic -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04
	-kernel "$kernel" -initrd "$work/initrd.cpio"
	-append "console=ttyS0 panic=-1 oops=panic rdinit=/init${QEMU_APPEND:+ $QEMU_APPEND}$append")

if [ $shell = 1 ]; then
	"${qemu[@]}" | tee "$log"
	exit 0
fi

start=$SECONDS
timeout -k 10 "$timeout" "${qemu[@]}" </dev/null 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
elapsed=$((SECONDS - start))

fail=""
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	fail="timed out after ${timeout}s"
	status=1
elif [ $((rc % 2)) = 1 ]; then
	status=$(((rc - 1) / 2))
else
	fail="QEMU exited without a status (rc=$rc): the guest crashed, panicked or /init died"
	status=1
fi

booted=$(sed -n 's/.*mshare-guest: cpus=\([0-9]*\).*/\1/p' "$log" | head -n1)
if [ -z "$fail" ] && [ "$booted" != "$smp" ]; then
	fail="guest booted ${booted:-no} CPUs, $smp requested"
fi
levels=$(sed -n 's/.*mshare-guest: .*paging=\([0-9]*\).*/\1/p' "$log" | head -n1)
if [ -z "$fail" ] && [ -n "$EXPECT_PAGING_LEVELS" ] && [ "$levels" != "$EXPECT_PAGING_LEVELS" ]; then
	fail="guest runs ${levels:-unknown}-level paging, $EXPECT_PAGING_LEVELS-level expected"
fi
nodes=$(sed -n 's/.*mshare-guest: .*numa_nodes=\([0-9]*\).*/\1/p' "$log" | head -n1)
if [ -z "$fail" ] && [ "$QEMU_NUMA_NODES" -gt 0 ] && [ "$nodes" != "$QEMU_NUMA_NODES" ]; then
	fail="guest sees ${nodes:-no} NUMA nodes, $QEMU_NUMA_NODES expected"
fi

# Kernel lines carry a [seconds.micro] stamp; user output never does.
splat='\[ *[0-9]+\.[0-9]+\] .*(BUG:|WARNING:|Oops|general protection fault|Kernel panic|Call Trace:|kernel BUG at|possible recursive locking|possible circular locking|circular locking dependency|inconsistent lock state|suspicious RCU usage|sleeping function called from invalid context|list_add corruption|list_del corruption|Bad page|KASAN|UBSAN|refcount_t:|Unable to handle|page allocation failure|soft lockup|hung task|rcu_sched detected stalls|RCU detected stall)'
# Between the kernel-log markers the fault-injection tests write, failed
# allocations are expected, and warn_alloc() dumps a stack for those that
# lack __GFP_NOWARN; between those of tests that provoke an OOM kill on
# purpose, the OOM killer dumps one too.  There, and only there, a bare
# "Call Trace:" or "page allocation failure" is not a splat (BUG, WARNING,
# lockdep and the rest still are).
splats=$(awk '/\] mshare: (fault injection|expected OOM kill) begins/ { inj = 1 }
	/\] mshare: (fault injection|expected OOM kill) ends/ { inj = 0 }
	inj && /(Call Trace:|page allocation failure)/ { next }
	{ print }' "$log" | grep -aE "$splat" | head -n 40)

echo "qemu-run: log $log (${elapsed}s)"
if [ -n "$splats" ]; then
	echo "qemu-run: FAIL: kernel splat in the console log:"
	printf '%s\n' "$splats" | sed 's/^/qemu-run:   /'
	[ "$status" = 0 ] && status=1
fi
if [ -n "$fail" ]; then
	echo "qemu-run: FAIL: $fail"
	[ "$status" = 0 ] && status=1
fi
exit "$status"
