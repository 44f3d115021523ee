# The upstream patch series, one logical change per patch, in order.
#
# scripts/patchset.py builds it from the pristine tree, our new files and
# the hunks of kernel/patches/*.patch.  Every hunk and every new file must
# be used exactly once; the last patch leaves the tree identical to
# build/linux.  Items:
#
#   ("hunks", PATH, REGEX)   hunks of PATH from kernel/patches whose text
#                            matches REGEX (None: all that are left)
#   ("new", SRC, DST)        our file SRC (repository path) added as DST
#   ("maint", LINES...)      F: lines added to the MAINTAINERS section
#   ("insert", PATH, AFTER, LINE)   LINE added after the line AFTER
#
# Hooks come before the code they call: with CONFIG_MSHARE not yet
# defined they compile to nothing (include/linux/mshare.h has stubs), so
# the tree builds and behaves as before at every step.  The syscalls are
# wired up last, when everything they need is in.

SERIES = [
    dict(
        subject="mm: add VM_MSHARE, the mshare mm flags and <linux/mshare.h>",
        items=[
            ("hunks", "include/linux/mm.h", None),
            ("hunks", "include/linux/sched/coredump.h", None),
            ("new", "kernel/include/linux/mshare.h", "include/linux/mshare.h"),
            ("new", "uapi/linux/mshare.h", "include/uapi/linux/mshare.h"),
            ("maint", "include/linux/mshare.h", "include/uapi/linux/mshare.h"),
        ],
        body="""\
A sharer of an mshare region maps the region's range through one VMA, a
window, whose page tables below the top-level entries belong to the
region's host mm.  Generic code has to recognise such a VMA cheaply to
keep away from tables it does not own: add VM_MSHARE for it.

The host mm runs on no CPU, so flushes of its TLB have to reach the CPUs
that run its sharers; MMF_MSHARE_HOST marks it.  MMF_HAS_MSHARE marks an
mm that has windows, so that the lockless GUP fast path, which does not
look at VMAs, can leave such an mm to the slow path.

<linux/mshare.h> declares the hooks the following patches add to the
generic code; without CONFIG_MSHARE (introduced later in the series)
they are stubs that compile away.  <uapi/linux/mshare.h> has what
userspace needs: the msharefs magic, mount point and struct mshare_info.
""",
    ),
    dict(
        subject="mm/memory: resolve faults in an mshare window in the host mm",
        items=[
            ("hunks", "mm/internal.h", r"#include <linux/mshare\.h>"),
            ("hunks", "mm/memory.c", r"mshare_fault|slow path"),
        ],
        body="""\
A window's page tables below its top-level entries are the region's,
owned by the region's host mm and changed under the host's mmap_lock.
A fault in a window is therefore resolved in the host: handle_mm_fault()
hands it to mshare_fault(), which looks the address up among the host's
VMAs under the host's mmap_lock and faults there.  The page then appears
in every sharer at once, since they all point at the same tables.

The per-VMA lock path cannot do that (it would need the host's VMA, not
the window): lock_vma_under_rcu() leaves windows to the mmap_lock path.
""",
    ),
    dict(
        subject="mm/memory: unmap, fork and free page tables around mshare windows",
        items=[
            ("hunks", "mm/memory.c", None),
        ],
        body="""\
Three places would otherwise treat the region's tables as the sharer's:

- unmap_single_vma() never zaps through a window; unmapping a window
  whole only clears this mm's top-level entries (and flushes its TLB),
  which is how a sharer detaches, at munmap() and at exit.
- copy_page_range() links a child's top-level entries to the region's
  tables at fork instead of copying anything: the child is a sharer.
- free_pud_range() leaves a host's PUD tables alone until the host is
  torn down, because every sharer's top-level entries point at them;
  free_p4d_range() does the same for its P4D table under 5-level
  paging, which holds the entries of those PUD tables.
""",
    ),
    dict(
        subject="mm/gup: look up pages of an mshare window in the host mm",
        items=[("hunks", "mm/gup.c", r"mshare")],
        body="""\
The tables under a window belong to the region's host mm and change
under the host's mmap_lock, which a GUP caller holding only its own does
not exclude.  Resolve a window's range with __get_user_pages_locked() on
the host mm instead, and keep the lockless fast path, which sees neither
VMAs nor the read-only top-level entries of a read-only sharer, away
from mms that have windows.  The fast path tests MMF_HAS_MSHARE with
interrupts off; mshare sets it and waits for an interrupt on every CPU
before it links a window, so no walk that read it clear can reach one.  io_uring fixed buffers, O_DIRECT,
process_vm_readv() and /proc/PID/mem all go through here.
""",
    ),
    dict(
        subject="mm/pagewalk: keep page-table walkers out of mshare windows",
        items=[
            ("hunks", "mm/pagewalk.c", None),
            ("hunks", "kernel/sched/fair.c", None),
            ("hunks", "mm/mprotect.c", r"VM_WARN_ON_ONCE\(vma_is_mshare"),
        ],
        body="""\
smaps, pagemap, mincore, mempolicy, madvise and others walk a process's
tables under its own mmap_lock.  In a window those are the host's tables,
which the host may change or free under its own lock: treat a window as
a hole, as VM_PFNMAP ranges are, and let folio_walk_start() find nothing.

NUMA balancing does not go through the page walker: task_numa_work()
calls change_protection() on each VMA, which would write PROT_NONE
entries into the region's tables under the sharer's lock only, flush
only the sharer, and race with the host freeing those tables.  Skip
windows there, and warn if change_protection() is ever given one.
Regions are not NUMA-balanced: the host runs on no CPU.
""",
    ),
    dict(
        subject="futex: key futexes in an mshare window by the region",
        items=[("hunks", "kernel/futex/core.c", None)],
        body="""\
Private futexes, and shared ones on anonymous memory, are keyed by the
mm and the address.  Within an mshare window the sharers are as threads
of one process and the memory is the region's, so a FUTEX_WAKE in one
sharer found no waiter in another, and PTHREAD_PROCESS_SHARED mutexes
and condition variables in private anonymous memory of a region lost
wake-ups.  Key such words by the region's host mm instead; the lookup
costs a VMA walk only in processes that have windows.
""",
    ),
    dict(
        subject="mm/mmu_notifier: no secondary MMU on an mm with mshare windows",
        items=[("hunks", "mm/mmu_notifier.c", None)],
        body="""\
KVM, IOMMU SVA, RDMA ODP and HMM follow a process's page tables through
its MMU notifiers.  Under a window the tables are the region's and
change under the host mm's lock; no notifier of the sharer would hear of
it, and the secondary MMU would keep pages the host has freed.  Refuse
the combination: registering a notifier on an mm that has a window
fails with EBUSY, as attaching a region to an mm with notifiers does.
""",
    ),
    dict(
        subject="mm/memcontrol: charge an mshare region to its creator's memory cgroup",
        items=[("hunks", "mm/memcontrol.c", None)],
        body="""\
A region's host mm belongs to no task: its mm->owner is NULL, and every
page a sharer faulted into a region, anonymous, shmem or swapped in, was
charged to the root memory cgroup.  A process in a cgroup with
memory.max=64M wrote 256 MiB into a region and its cgroup's memory.peak
stayed at 1,280 KiB.

Charge the region's memory cgroup instead: the creator's, held by a
reference for the region's life, or its nearest online ancestor once it
goes offline, as memory of a removed cgroup is reparented.  The host's
page tables and VMAs follow through set_active_memcg() while mshare
works in the host on a sharer's behalf.
""",
    ),
    dict(
        subject="x86/mm: flush an mshare host's TLB on every CPU",
        items=[
            ("hunks", "arch/x86/mm/tlb.c", None),
            ("hunks", "mm/rmap.c", None),
        ],
        body="""\
A host mm is loaded on no CPU, so a flush aimed at its mm_cpumask
reaches nobody, while its tables are cached by the CPUs of its sharers,
under their PCIDs, including ones that are not loaded at the moment.
Turn every flush of a host into flush_tlb_all(), and do not let reclaim
batch a host's flushes.  This is the simple, correct first step;
following the sharers' cpumasks can come later, measured.
""",
    ),
    dict(
        subject="mm: carry mapping calls in an mshare window out in the region",
        items=[
            ("hunks", "mm/internal.h", r"__do_mmap"),
            ("hunks", "mm/gup.c", None),
            ("hunks", "mm/mmap.c", None),
            ("hunks", "mm/util.c", None),
            ("hunks", "mm/mprotect.c", None),
            ("hunks", "mm/madvise.c", None),
            ("hunks", "mm/mremap.c", None),
            ("hunks", "mm/vma.c", None),
        ],
        body="""\
Inside a window, the range behaves as if all sharers were threads of one
process: mmap at a fixed address, munmap and mprotect of a sub-range and
madvise act on the region's host mm, for every sharer.  Read-only
sharers get EACCES for anything that would change the region; a range
that straddles a window's edge gets EINVAL, as does any mremap into, out
of or inside a window.

To do that, let do_mmap() and mmap_region() and the body of mprotect()
work on a given mm (__do_mmap(), mmap_region_mm(), do_mprotect_mm()),
and populating too (mm_populate_range()): MAP_POPULATE through a window
faults the range in in the host, as the host VMA's flags say, so that
private memory gets pages it can write rather than the zero page.
mprotect_fixup() walked current->mm for the L1TF check of a PFN mapping
made PROT_NONE; walk the VMA's own mm, which is the host's here.
vms_complete_munmap_vmas() took current->mm for the mm it unmaps from;
take it from the VMA iterator's tree instead, which is the same for
every existing caller and right for a host.
""",
    ),
    dict(
        subject="mm/mlock: lock an mshare region's memory through its windows",
        items=[
            ("hunks", "mm/internal.h", r"mlock_range_mm"),
            ("hunks", "mm/mlock.c", None),
        ],
        body="""\
The memory under an mshare window belongs to its region, which every
sharer maps.  Setting VM_LOCKED on one sharer's window would lock
nothing (faults are handled in the host's VMAs) and make mlock_fixup()
try to split a window, which it refuses.  Instead, mlock(), mlock2()
and munlock() of a range inside a window act on the region's host VMAs,
as mprotect() does: the pages are locked for every sharer and counted
in the region's locked_vm, against the caller's RLIMIT_MEMLOCK.  A
read-only sharer gets EACCES.  mlockall() leaves windows alone, as it
leaves VM_IO mappings: one process's "all" is not the region's.

Split the locking part of do_mlock() out as mlock_range_mm(), which
works on a given mm, for mshare_mlock() to call.  mlock() in a window
then faults the range in in the host with mm_populate_range(), as the
host VMAs' flags say (MLOCK_ONFAULT: not at all); outside windows
do_mlock() does exactly what it did before.
""",
    ),
    dict(
        subject="mm/mshare: regions of shared page tables, named in msharefs",
        items=[
            ("hunks", "mm/Kconfig", None),
            ("hunks", "fs/Makefile", None),
            ("hunks", "mm/Makefile", None),
            ("hunks", "include/linux/syscalls.h", None),
            ("hunks", "kernel/sys_ni.c", None),
            ("new", "mm/mshare.c", "mm/mshare.c"),
            ("new", "fs/msharefs/Makefile", "fs/msharefs/Makefile"),
            ("new", "fs/msharefs/inode.c", "fs/msharefs/inode.c"),
            ("maint", "fs/msharefs/", "mm/mshare.c"),
        ],
        body="""\
Processes that map the same large memory each pay for their own page
tables: 1,500 database clients mapping a 300 GB shared area need about
878 GB of PTEs.  mshare lets them share the page tables of a named range
aligned to the span of one top-level entry (512 GiB on x86_64) instead.

mshare(name, addr, len, oflags, mode) creates a region from the
caller's range (O_CREAT, O_EXCL) or attaches one (O_RDONLY, O_RDWR).
A region is a host mm that owns the range's VMAs and page tables; each
sharer maps it through a window VMA whose top-level entries point at
the host's tables, with the R/W bit cleared for a read-only sharer, so
that the hardware enforces it.  Creating moves the caller's VMAs, tables
and counters into the host.  The window's vm_ops keep the region alive,
refuse splits and mremap(), and name it [mshare:NAME] in
/proc/PID/maps.  mshare_unlink(name) removes the name; the region goes
with its last user, as a POSIX shm object does.

msharefs, mounted at /sys/fs/mshare, holds one file per region, owned
by its creator with the mode given; read() returns its start and size,
unlink(2) is mshare_unlink().  The root is sticky and world-writable,
like /dev/shm.

The calls are not wired up yet; that is the next patch.
""",
    ),
    dict(
        subject="x86: wire up mshare() and mshare_unlink()",
        items=[("hunks", "arch/x86/entry/syscalls/syscall_64.tbl", None)],
        body="""\
Give the two calls numbers far above the upstream range (490 and 491),
so that they cannot be taken by a future upstream call while this is
being discussed; they will move to the next free numbers when merged.
Userspace detects the feature through msharefs (statfs f_type ==
MSHARE_MAGIC), never by calling a number another kernel may give to
another call.
""",
    ),
    dict(
        subject="selftests/mshare: sharing, contract, TLB and fault-injection tests",
        items=[
            ("new", "selftests/mshare/Makefile", "tools/testing/selftests/mshare/Makefile"),
            ("new", "selftests/mshare/config", "tools/testing/selftests/mshare/config"),
            ("newglob", "selftests/mshare/*.c", "tools/testing/selftests/mshare/"),
            ("new", "selftests/mshare/mshare_util.h", "tools/testing/selftests/mshare/mshare_util.h"),
            ("insert", "tools/testing/selftests/Makefile", "TARGETS += mqueue", "TARGETS += mshare"),
            ("maint", "tools/testing/selftests/mshare/"),
        ],
        body="""\
The tests prove sharing, not just mapping: an attacher reads a 256 MiB
region populated by another process with no minor fault (POSIX shm
takes 65,536), 64 sharers add no page-table memory beyond what 64 idle
processes cost (a shared memfd adds 64 x 128 KiB), and a mapping made by
one sharer appears in the others.  Then the contract: write visibility
both ways, private anonymous memory shared and not COWed, SIGBUS in
holes, read-only sharers, fork, unlink, the proposal's own donor and
consumer flow, GUP from io_uring, process_vm_readv() and /proc/PID/mem,
TLB coherence across CPUs for munmap and mprotect, THP, KSM,
userfaultfd and mlock, every errno, msharefs permissions, and
allocation failures injected at every step of create, attach, fault,
fork and mmap.
""",
    ),
    dict(
        subject="Documentation: describe mshare and msharefs",
        items=[
            ("new", "kernel/Documentation/mm/mshare.rst", "Documentation/mm/mshare.rst"),
            ("new", "kernel/Documentation/filesystems/msharefs.rst",
             "Documentation/filesystems/msharefs.rst"),
            ("insert", "Documentation/mm/index.rst", "   mmu_notifier", "   mshare"),
            ("insert", "Documentation/filesystems/index.rst", "   isofs", "   msharefs"),
            ("maint", "Documentation/filesystems/msharefs.rst", "Documentation/mm/mshare.rst"),
        ],
        body="""\
Documentation/mm/mshare.rst is for mm developers: the mechanism, every
hook in the generic code and why it is there, TLB flushing, teardown,
locking order, reference counting, read-only enforcement and the known
limitations.  Documentation/filesystems/msharefs.rst describes the
filesystem userspace sees.
""",
    ),
]

MAINTAINERS_SECTION = "MEMORY MANAGEMENT - MSHARE (SHARED PAGE TABLES)"
MAINTAINERS_BEFORE = "MEMORY MAPPING"
