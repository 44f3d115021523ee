// SPDX-License-Identifier: GPL-2.0
/*
 * mshare stress: many processes attach, touch, write and verify, fork,
 * remap sub-ranges, detach and exit, at random, against a few regions.
 *
 * Every 64-bit word written into a region is a tag naming the region,
 * page and word it was written to, its writer and the writer's sequence
 * number.  A reader accepts only 0 (never written), or a tag for exactly
 * that place whose writer has issued that sequence number: stale,
 * foreign or corrupt data fails.  Each writer also owns one word per page
 * of a stable area (its lane) and records what it last wrote there in a
 * ledger outside the regions; on every attach and at the end the lane
 * must hold exactly that, so no write is ever lost.
 *
 * With every sharer gone and the regions unlinked, msharefs entries,
 * PageTables, live mm_structs (/proc/slabinfo) and free memory (MemFree
 * plus the per-CPU page lists) must be back where they were.
 *
 * Scale (environment): MSHARE_STRESS_PROCS (default 16, at most 64),
 * MSHARE_STRESS_CYCLES (per process, default 1000), MSHARE_STRESS_SEED
 * (default: from the clock; printed as "# seed: N").
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/mshare.h>

#include "../kselftest_harness.h"
#include "mshare_util.h"

#define BASE		(4UL << 40)	/* region r at BASE + r * UNIT */
#define WORDS		(PAGE / sizeof(__u64))

#define NREGIONS	3
#define MAX_PROCS	64
/* The stable area is never remapped: lanes and shared words live there. */
#define STABLE_PAGES	1024
/* The churn area, in another PUD entry, is remapped all the time. */
#define CHURN_OFFSET	(1024 * MiB)
#define CHURN_PAGES	2048
#define CHURN_MAX_RUN	64
/*
 * Free memory moves by this much with nothing leaked (slab caches grow;
 * more on a KASAN kernel); one region's stable area alone is 4 MiB.
 */
#define MEM_NOISE_KIB	(2048 + kasan_slack_kib())
/*
 * PageTables counts every page table: other processes' (a page more if
 * one grows, by its stack or heap reaching a new 2 MiB) and the kernel's
 * own PMD and PUD tables (pmd_alloc_one() and pud_alloc_one() run the
 * constructor for init_mm too).  It may end up to two pages above the
 * baseline; the tables no process owns must come back exactly.
 */
#define PT_NOISE_KIB	8
/*
 * The least a region's host holds in tables: one PUD table, the stable
 * area's PMD table and its two PTE tables.
 */
#define REGION_MIN_TABLES_KIB	((long)(4 * PAGE / 1024))

/* Tag layout: region 4 bits, page 12, word 9, writer 7, sequence 32. */
#define TAG(r, pg, w, who, seq)					\
	((__u64)(r) << 60 | (__u64)(pg) << 48 |			\
	 (__u64)(w) << 39 | (__u64)(who) << 32 | (__u32)(seq))
#define TAG_REGION(t)	((unsigned int)((t) >> 60))
#define TAG_PAGE(t)	((unsigned int)((t) >> 48) & 0xfff)
#define TAG_WORD(t)	((unsigned int)((t) >> 39) & 0x1ff)
#define TAG_WRITER(t)	((unsigned int)((t) >> 32) & 0x7f)
#define TAG_SEQ(t)	((__u32)(t))

enum op {
	OP_ATTACH, OP_DETACH, OP_TOUCH, OP_WRITE_VERIFY, OP_CHURN,
	OP_CHURN_WRITE, OP_FORK, OP_EXIT, NR_OPS
};

/* Shared by every process of the test, outside the regions. */
struct ledger {
	__u64 seq[MAX_PROCS];	/* last sequence number issued */
	__u64 lane[MAX_PROCS][NREGIONS][STABLE_PAGES];
	long cycles_left[MAX_PROCS];
	unsigned long incarnation[MAX_PROCS];
	unsigned long ops[NR_OPS];
	unsigned long checked;		/* words read and verified */
	unsigned long ro_attaches, segv_seen, bus_seen;
	int stop;
	int failed;
	char failure[512];
};

static struct ledger *ledger;
static int nprocs;
static unsigned long seed;
static char names[NREGIONS][64];

static long env_long(const char *name, long fallback)
{
	const char *text = getenv(name);

	return text && *text ? strtol(text, NULL, 0) : fallback;
}

static inline unsigned long region_base(int r)
{
	return BASE + r * UNIT;
}

static inline __u64 *stable_word(int r, int page, int word)
{
	return (__u64 *)(region_base(r) + page * PAGE) + word;
}

static inline __u64 *churn_word(int r, int page, int word)
{
	return (__u64 *)(region_base(r) + CHURN_OFFSET + page * PAGE) + word;
}

/* xorshift64*: each process its own stream, derived from the seed. */
static __u64 rng_state;

static __u64 rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static unsigned int below(unsigned int n)
{
	return rnd() % n;
}

/* Record the first failure for the supervisor and stop this process. */
static __noreturn __printf(1, 2) void fail(const char *fmt, ...)
{
	va_list ap;

	if (!__atomic_exchange_n(&ledger->failed, 1, __ATOMIC_SEQ_CST)) {
		va_start(ap, fmt);
		vsnprintf(ledger->failure, sizeof(ledger->failure), fmt, ap);
		va_end(ap);
	}
	__atomic_store_n(&ledger->stop, 1, __ATOMIC_RELEASE);
	_exit(1);
}

/* How check_value()'s failures begin. */
#define HOLDS "%s: region %d page %d word %d holds %#llx"

/*
 * Is @v a value some process wrote at (@r, @page, @word)?  0 is a page
 * nobody wrote yet.  @lane_owner >= 0: only that writer may write there.
 */
static void check_value(__u64 v, int r, int page, int word, int lane_owner,
			const char *what)
{
	unsigned int who;

	__atomic_fetch_add(&ledger->checked, 1, __ATOMIC_RELAXED);
	if (!v)
		return;
	who = TAG_WRITER(v);
	if (TAG_REGION(v) != (unsigned int)r || TAG_PAGE(v) != (unsigned int)page ||
	    TAG_WORD(v) != (unsigned int)word)
		fail(HOLDS ", written for region %u page %u word %u (foreign data)",
		     what, r, page, word, (unsigned long long)v, TAG_REGION(v),
		     TAG_PAGE(v), TAG_WORD(v));
	if (who >= (unsigned int)nprocs ||
	    (lane_owner >= 0 && who != (unsigned int)lane_owner))
		fail(HOLDS " from writer %u, who never writes there",
		     what, r, page, word, (unsigned long long)v, who);
	if (!TAG_SEQ(v) ||
	    TAG_SEQ(v) > __atomic_load_n(&ledger->seq[who], __ATOMIC_ACQUIRE))
		fail(HOLDS ": writer %u never issued sequence %u",
		     what, r, page, word, (unsigned long long)v, who, TAG_SEQ(v));
}

/* A new tag from writer @me, announced in the ledger before it is used. */
static __u64 next_tag(int me, int r, int page, int word)
{
	__u64 seq = __atomic_add_fetch(&ledger->seq[me], 1, __ATOMIC_RELEASE);

	return TAG(r, page, word, me, seq);
}

/* 0: detached, else O_RDONLY + 1 or O_RDWR + 1. */
static int attached[NREGIONS];

static bool writable(int r)
{
	return attached[r] == O_RDWR + 1;
}

#define LANE_LOST "%s: writer %d's lane in region %d page %d holds %#llx, it last wrote %#llx (lost or stale write)"

/* The lane of @me in region @r holds exactly what @me last wrote. */
static void verify_lane(int me, int r, const char *when)
{
	int page;

	for (page = 0; page < STABLE_PAGES; page++) {
		__u64 v = peek(stable_word(r, page, me));
		__u64 want = ledger->lane[me][r][page];

		__atomic_fetch_add(&ledger->checked, 1, __ATOMIC_RELAXED);
		if (v != want)
			fail(LANE_LOST, when, me, r, page, (unsigned long long)v,
			     (unsigned long long)want);
	}
}

static int random_attached(void)
{
	int r = below(NREGIONS), i;

	for (i = 0; i < NREGIONS; i++, r = (r + 1) % NREGIONS)
		if (attached[r])
			return r;
	return -1;
}

static void do_attach(int me)
{
	int r = below(NREGIONS);
	int oflags = below(8) ? O_RDWR : O_RDONLY;

	if (attached[r])
		return;
	if (sys_mshare(names[r], region_base(r), UNIT, oflags, 0))
		fail("attach %s %s: %s", names[r],
		     oflags == O_RDWR ? "O_RDWR" : "O_RDONLY", strerror(errno));
	attached[r] = oflags + 1;
	if (oflags == O_RDONLY)
		__atomic_fetch_add(&ledger->ro_attaches, 1, __ATOMIC_RELAXED);
	verify_lane(me, r, "after attach");
}

static void do_detach(void)
{
	int r = random_attached();

	if (r < 0)
		return;
	if (munmap((void *)region_base(r), UNIT))
		fail("detach %s: %s", names[r], strerror(errno));
	attached[r] = 0;
}

static void do_touch(int me)
{
	int r = random_attached(), i, sig;

	if (r < 0)
		return;
	for (i = 0; i < 8; i++) {
		int page = below(STABLE_PAGES), word = below(WORDS);

		check_value(peek(stable_word(r, page, word)), r, page, word,
			    word < MAX_PROCS ? word : -1, "touch");
	}
	i = below(STABLE_PAGES);
	if (peek(stable_word(r, i, me)) != ledger->lane[me][r][i])
		fail("touch: writer %d's lane in region %d page %d holds %#llx, not %#llx",
		     me, r, i, (unsigned long long)peek(stable_word(r, i, me)),
		     (unsigned long long)ledger->lane[me][r][i]);
	for (i = 0; i < 4; i++) {
		int page = below(CHURN_PAGES), word = below(WORDS);
		__u64 v = 0;

		sig = GUARDED(v = peek(churn_word(r, page, word)));
		if (sig == SIGBUS)
			__atomic_fetch_add(&ledger->bus_seen, 1, __ATOMIC_RELAXED);
		else if (sig == SIGSEGV)
			__atomic_fetch_add(&ledger->segv_seen, 1, __ATOMIC_RELAXED);
		else
			check_value(v, r, STABLE_PAGES + page, word, -1,
				    "churn read");
	}
}

static void do_write_verify(int me)
{
	int r = random_attached(), page, word, sig;
	__u64 v;

	if (r < 0)
		return;
	page = below(STABLE_PAGES);
	if (!writable(r)) {
		/* Writing back the same value: harmless if it wrongly works. */
		v = ledger->lane[me][r][page];
		sig = GUARDED(poke(stable_word(r, page, me), v));
		if (sig != SIGSEGV)
			fail("read-only sharer wrote region %d page %d (signal %d)",
			     r, page, sig);
		return;
	}
	v = next_tag(me, r, page, me);
	poke(stable_word(r, page, me), v);
	ledger->lane[me][r][page] = v;
	if (peek(stable_word(r, page, me)) != v)
		fail("write-verify: region %d page %d lane %d reads %#llx after writing %#llx",
		     r, page, me, (unsigned long long)peek(stable_word(r, page, me)),
		     (unsigned long long)v);
	/* A shared word: anyone may overwrite it, but only with a tag. */
	word = MAX_PROCS + below(WORDS - MAX_PROCS);
	poke(stable_word(r, page, word), next_tag(me, r, page, word));
	check_value(peek(stable_word(r, page, word)), r, page, word, -1,
		    "shared word");
}

static void do_churn(void)
{
	static const int prots[] = { PROT_READ | PROT_WRITE, PROT_READ,
				     PROT_NONE };
	int r = random_attached(), start, len, ret, kind;
	unsigned long addr;
	void *p;

	if (r < 0)
		return;
	len = 1 + below(CHURN_MAX_RUN);
	start = below(CHURN_PAGES - len + 1);
	addr = region_base(r) + CHURN_OFFSET + start * PAGE;
	kind = below(5);
	errno = 0;
	switch (kind) {
	case 0:
		ret = munmap((void *)addr, len * PAGE);
		break;
	case 1:
	case 2:
		p = mmap((void *)addr, len * PAGE, PROT_READ | PROT_WRITE,
			 (kind == 1 ? MAP_SHARED : MAP_PRIVATE) |
			 MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		ret = p == MAP_FAILED ? -1 : 0;
		if (!ret && p != (void *)addr)
			fail("mmap(MAP_FIXED, %#lx) returned %p", addr, p);
		break;
	case 3:
		ret = mprotect((void *)addr, len * PAGE, prots[below(3)]);
		/* A hole in the range: ENOMEM, as anywhere. */
		if (ret && errno == ENOMEM && writable(r))
			ret = 0;
		break;
	default:
		ret = madvise((void *)addr, len * PAGE, MADV_DONTNEED);
		if (ret && errno == ENOMEM && writable(r))
			ret = 0;
		break;
	}
	if (writable(r) && ret)
		fail("remap kind %d of region %d pages %d+%d: %s", kind, r,
		     start, len, strerror(errno));
	if (!writable(r) && (ret != -1 || errno != EACCES))
		fail("read-only sharer's remap kind %d of region %d: ret %d errno %d, want EACCES",
		     kind, r, ret, errno);
}

static void do_churn_write(int me)
{
	int r = random_attached(), i, sig;

	if (r < 0 || !writable(r))
		return;
	for (i = 0; i < 4; i++) {
		int page = below(CHURN_PAGES), word = below(WORDS);
		__u64 v = next_tag(me, r, STABLE_PAGES + page, word);

		sig = GUARDED(poke(churn_word(r, page, word), v));
		if (sig == SIGBUS)
			__atomic_fetch_add(&ledger->bus_seen, 1, __ATOMIC_RELAXED);
		else if (sig == SIGSEGV)
			__atomic_fetch_add(&ledger->segv_seen, 1, __ATOMIC_RELAXED);
	}
}

static void run_ops(int me, long count, bool child);

/* The child shares every window by inheritance, works a little, exits. */
static void do_fork(int me)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		int r;

		rng_state ^= 0x9e3779b97f4a7c15ULL;
		for (r = 0; r < NREGIONS; r++)
			if (attached[r])
				verify_lane(me, r, "in a forked child");
		run_ops(me, 1 + below(16), true);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		fail("waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail("forked child of writer %d: status %#x", me, status);
}

static enum op pick_op(bool child)
{
	/* Cheap operations dominate; fork and exit are rare. */
	static const unsigned char weight[NR_OPS] = {
		[OP_ATTACH] = 14, [OP_DETACH] = 8, [OP_TOUCH] = 24,
		[OP_WRITE_VERIFY] = 24, [OP_CHURN] = 14, [OP_CHURN_WRITE] = 10,
		[OP_FORK] = 3, [OP_EXIT] = 3,
	};
	unsigned int n = below(100);
	int op;

	for (op = 0; op < NR_OPS; op++) {
		if (n < weight[op])
			break;
		n -= weight[op];
	}
	if (op >= NR_OPS || (child && (op == OP_FORK || op == OP_EXIT)))
		op = OP_TOUCH;
	return op;
}

static void run_ops(int me, long count, bool child)
{
	while (count-- > 0) {
		enum op op;

		if (__atomic_load_n(&ledger->stop, __ATOMIC_ACQUIRE))
			_exit(0);
		if (!child &&
		    __atomic_sub_fetch(&ledger->cycles_left[me], 1,
				       __ATOMIC_RELAXED) < 0)
			_exit(0);
		op = pick_op(child);
		__atomic_fetch_add(&ledger->ops[op], 1, __ATOMIC_RELAXED);
		switch (op) {
		case OP_ATTACH:
			do_attach(me);
			break;
		case OP_DETACH:
			do_detach();
			break;
		case OP_TOUCH:
			do_touch(me);
			break;
		case OP_WRITE_VERIFY:
			do_write_verify(me);
			break;
		case OP_CHURN:
			do_churn();
			break;
		case OP_CHURN_WRITE:
			do_churn_write(me);
			break;
		case OP_FORK:
			do_fork(me);
			break;
		default:
			/* Exit with whatever is attached: exit detaches. */
			_exit(0);
		}
	}
}

static pid_t spawn_worker(int me)
{
	pid_t pid = fork();

	if (pid == 0) {
		rng_state = seed ^ (0x9e3779b97f4a7c15ULL * (me + 1)) ^
			    (ledger->incarnation[me] << 32);
		rnd();
		install_fault_handlers();
		memset(attached, 0, sizeof(attached));
		run_ops(me, ledger->cycles_left[me], false);
		_exit(0);
	}
	ledger->incarnation[me]++;
	return pid;
}

/* Runs every worker to the end of its cycles; false on any failure. */
static bool supervise(void)
{
	pid_t pids[MAX_PROCS];
	int live = 0, me, status;
	bool ok = true;

	for (me = 0; me < nprocs; me++) {
		pids[me] = spawn_worker(me);
		if (pids[me] < 0)
			return false;
		live++;
	}
	while (live > 0) {
		pid_t pid = wait(&status);

		if (pid < 0)
			return false;
		for (me = 0; me < nprocs && pids[me] != pid; me++)
			;
		if (me == nprocs)
			continue;
		live--;
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			if (!ledger->failed)
				snprintf(ledger->failure, sizeof(ledger->failure),
					 "writer %d ended with status %#x", me,
					 status);
			ledger->stop = 1;
			ok = false;
			continue;
		}
		if (ledger->cycles_left[me] > 0 && !ledger->stop) {
			pids[me] = spawn_worker(me);
			if (pids[me] > 0)
				live++;
		}
	}
	return ok && !ledger->failed;
}

/* Measurements ---------------------------------------------------------- */

/*
 * An idle CPU keeps a reference to the mm it last ran (lazy TLB) until it
 * runs another: run this process on every CPU so that none pins a dead
 * process's mm_struct.
 */
static void visit_every_cpu(void)
{
	cpu_set_t all, one;
	int cpu;

	if (sched_getaffinity(0, sizeof(all), &all))
		return;
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &all))
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (!sched_setaffinity(0, sizeof(one), &one))
			sched_yield();
	}
	sched_setaffinity(0, sizeof(all), &all);
}

/*
 * Live mm_structs: /proc/slabinfo counts every object of the per-CPU
 * slabs as active, so flush those first (no fork in between).
 */
static long live_mm_structs(void)
{
	char line[256];
	long active = -1;
	FILE *f;

	visit_every_cpu();
	write_file("/sys/kernel/slab/mm_struct/shrink", "1");
	f = fopen("/proc/slabinfo", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "mm_struct %ld", &active) == 1)
			break;
	fclose(f);
	return active;
}

/*
 * Page tables no process owns: PageTables less every process's VmPTE
 * (its PTE, PMD and PUD tables; PGDs are in neither).  The regions' host
 * mms are not processes, so their tables count here, and so do the
 * kernel's; another process's tables growing or shrinking do not.
 */
static long unowned_page_tables_kib(long page_tables)
{
	char path[sizeof("/proc//status") + sizeof(((struct dirent *)0)->d_name)];
	struct dirent *d;
	long sum = 0, kib;
	DIR *dir;

	dir = opendir("/proc");
	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/status", d->d_name);
		kib = proc_field(path, "VmPTE", ": ");
		if (kib > 0)
			sum += kib;
	}
	closedir(dir);
	return page_tables - sum;
}

struct snapshot {
	long page_tables, unowned, mem_free, mm_structs;
	int entries;
};

static void take_snapshot(struct snapshot *s)
{
	s->mem_free = free_kib();
	s->entries = msharefs_entries();
	s->page_tables = meminfo_kib("PageTables");
	s->unowned = unowned_page_tables_kib(s->page_tables);
	s->mm_structs = live_mm_structs();
}

/*
 * MemFree still rises for a few seconds after boot, and processes of an
 * earlier test may still be going away: wait until both are still.
 */
static void take_baseline(struct snapshot *s)
{
	struct snapshot previous;
	int i;

	take_snapshot(s);
	for (i = 0; i < 20; i++) {
		previous = *s;
		sleep(1);
		take_snapshot(s);
		if (labs(s->mem_free - previous.mem_free) < MEM_NOISE_KIB / 8 &&
		    s->mm_structs == previous.mm_structs &&
		    s->page_tables == previous.page_tables &&
		    s->unowned == previous.unowned)
			break;
	}
}

/* Waits up to 5 s for deferred frees (RCU, lazy TLB mm references). */
static void snapshot_after(struct snapshot *s, const struct snapshot *base)
{
	int i;

	for (i = 0; i < 10; i++) {
		take_snapshot(s);
		if (s->entries == base->entries &&
		    s->page_tables <= base->page_tables + PT_NOISE_KIB &&
		    s->unowned <= base->unowned &&
		    s->mm_structs <= base->mm_structs)
			break;
		usleep(200000);
	}
}

/* The test ------------------------------------------------------------ */

/* Regions are populated: a leak of one shows in MemFree. */
static int create_region(int r)
{
	unsigned long base = region_base(r);
	char *p;

	p = mmap((void *)base, STABLE_PAGES * PAGE, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	memset(p, 0, STABLE_PAGES * PAGE);
	p = mmap((void *)(base + CHURN_OFFSET), CHURN_PAGES * PAGE,
		 PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	memset(p, 0, CHURN_PAGES * PAGE);
	if (sys_mshare(names[r], base, UNIT, O_CREAT | O_EXCL | O_RDWR, 0600))
		return -1;
	/* Detach: the region lives on, by its name. */
	return munmap((void *)base, UNIT);
}

/* Every lane and sampled word of every region, by a fresh sharer. */
static void verify_everything(void)
{
	int r, me, page, word;

	for (r = 0; r < NREGIONS; r++) {
		if (sys_mshare(names[r], region_base(r), UNIT, O_RDONLY, 0))
			fail("final attach %s: %s", names[r], strerror(errno));
		attached[r] = O_RDONLY + 1;
		for (me = 0; me < nprocs; me++)
			verify_lane(me, r, "at the end");
		for (page = 0; page < STABLE_PAGES; page++)
			for (word = 0; word < (int)WORDS; word++)
				check_value(peek(stable_word(r, page, word)), r, page,
					    word, word < MAX_PROCS ? word : -1,
					    "final scan");
		munmap((void *)region_base(r), UNIT);
		attached[r] = 0;
	}
}

FIXTURE(stress) {};
FIXTURE_SETUP(stress) {}
FIXTURE_TEARDOWN(stress) {}

TEST_F_TIMEOUT(stress, random_cycles_lose_nothing_and_leave_nothing, 3600)
{
	long cycles = env_long("MSHARE_STRESS_CYCLES", 1000);
	struct snapshot base, during, after;
	struct timespec t0, t1;
	bool ok;
	int r, me, status;
	pid_t pid;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	nprocs = env_long("MSHARE_STRESS_PROCS", 16);
	ASSERT_LT(0, nprocs);
	ASSERT_GE(MAX_PROCS, nprocs);
	seed = env_long("MSHARE_STRESS_SEED", 0);
	if (!seed)
		seed = time(NULL) ^ (getpid() << 16);
	printf("# seed: %lu (MSHARE_STRESS_SEED=%lu replays the random choices)\n",
	       seed, seed);
	printf("# %d processes x %ld cycles against %d regions\n", nprocs,
	       cycles, NREGIONS);
	fflush(stdout);

	ledger = mmap(NULL, sizeof(*ledger), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, ledger);
	for (me = 0; me < nprocs; me++)
		ledger->cycles_left[me] = cycles;
	for (r = 0; r < NREGIONS; r++)
		snprintf(names[r], sizeof(names[r]), "stress.%d.%d", getpid(),
			 r);

	take_baseline(&base);
	TH_LOG("baseline: %d entries, PageTables %ld kB (%ld unowned), free %ld kB, %ld mm_structs",
	       base.entries, base.page_tables, base.unowned, base.mem_free,
	       base.mm_structs);
	if (base.mm_structs < 0)
		TH_LOG("no /proc/slabinfo: live mm_structs are not checked");

	/* The regions are created by a process that then goes away. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		for (r = 0; r < NREGIONS; r++)
			if (create_region(r))
				_exit(1);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ok = supervise();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!ok)
		TH_LOG("FAILED: %s", ledger->failure);
	TH_LOG("%.1f s: attach %lu (%lu read-only), detach %lu, touch %lu, write-verify %lu,",
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
	       ledger->ops[OP_ATTACH], ledger->ro_attaches,
	       ledger->ops[OP_DETACH], ledger->ops[OP_TOUCH],
	       ledger->ops[OP_WRITE_VERIFY]);
	TH_LOG("remap %lu, churn-write %lu, fork %lu, exit %lu; %lu words verified;",
	       ledger->ops[OP_CHURN], ledger->ops[OP_CHURN_WRITE],
	       ledger->ops[OP_FORK], ledger->ops[OP_EXIT], ledger->checked);
	TH_LOG("%lu SIGBUS, %lu SIGSEGV in the churn area", ledger->bus_seen,
	       ledger->segv_seen);
	EXPECT_TRUE(ok);

	/* The final check runs in a child: a failure there exits. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		install_fault_handlers();
		verify_everything();
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("final verification: %s", ledger->failure);

	take_snapshot(&during);
	for (r = 0; r < NREGIONS; r++)
		EXPECT_EQ(0, sys_mshare_unlink(names[r]));
	snapshot_after(&after, &base);
	TH_LOG("regions unshared: %d entries, PageTables %ld kB (%ld unowned), free %ld kB,",
	       during.entries, during.page_tables, during.unowned,
	       during.mem_free);
	TH_LOG("%ld mm_structs", during.mm_structs);
	TH_LOG("after unlink: %d entries, PageTables %ld kB (%ld unowned), free %ld kB (%+ld),",
	       after.entries, after.page_tables, after.unowned, after.mem_free,
	       after.mem_free - base.mem_free);
	TH_LOG("%ld mm_structs", after.mm_structs);
	/* The regions hold memory: losing one would show in MemFree. */
	EXPECT_LE((long)(NREGIONS * STABLE_PAGES * PAGE / 1024) - MEM_NOISE_KIB,
		  base.mem_free - during.mem_free);
	EXPECT_EQ(base.entries + NREGIONS, during.entries);
	EXPECT_EQ(base.entries, after.entries);
	/*
	 * Back to the baseline or below (a process of an earlier suite may
	 * have finished going away since), and each region's tables and host
	 * mm were alive until the unlink and freed by it.
	 */
	EXPECT_LE(after.page_tables, base.page_tables + PT_NOISE_KIB);
	EXPECT_LE(after.unowned, base.unowned);
	EXPECT_LE(NREGIONS * REGION_MIN_TABLES_KIB,
		  during.unowned - after.unowned);
	/*
	 * The unlink freed the hosts: at least NREGIONS fewer mms.  More may
	 * go meanwhile: the verifying child's, kept by a CPU's lazy TLB
	 * reference when "during" was taken.
	 */
	if (base.mm_structs >= 0) {
		EXPECT_LE(after.mm_structs, base.mm_structs);
		EXPECT_LE(after.mm_structs + NREGIONS, during.mm_structs);
	}
	EXPECT_GE(MEM_NOISE_KIB, labs(after.mem_free - base.mem_free));
	munmap(ledger, sizeof(*ledger));
}

TEST_HARNESS_MAIN
