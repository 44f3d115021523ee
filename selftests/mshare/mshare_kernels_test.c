// SPDX-License-Identifier: GPL-2.0
/*
 * mshare on the kernels users run, and the generic code that walks or keys
 * a process's memory without going through its VMAs' page-table walkers:
 * 5-level paging, NUMA balancing, secondary MMUs (KVM), futexes, killable
 * faults, populating, madvise by read-only sharers, mlock.  Most tests run
 * on any kernel; those that need a feature of the distribution-like test
 * kernel (LA57, NUMA, KVM) skip without it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "mshare_util.h"

#define BASE		(2UL << 40)	/* 2 TiB */
/* Above the 47-bit user limit of 4-level paging: needs 5 levels. */
#define HIGH_BASE	(256UL << 40)
#define NUMA_KNOBS	"/sys/kernel/debug/sched/numa_balancing/"

static void region_name(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "%s.%d", tag, getpid());
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long minor_faults(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/* Exit status of @pid (128 + signal if killed), or -1. */
static int reap(pid_t pid)
{
	int status;

	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Reap @pid if it has exited within @seconds; its status, or -1. */
static int reap_within(pid_t pid, double seconds)
{
	double end = now() + seconds;
	int status;

	do {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) :
						   128 + WTERMSIG(status);
		usleep(10000);
	} while (now() < end);
	return -1;
}

static bool still_running(pid_t pid)
{
	int status;

	return waitpid(pid, &status, WNOHANG) == 0;
}

/* Detach what fork() inherited, then attach by name. */
static int attach_by_name(const char *name, unsigned long base, int oflags)
{
	munmap((void *)base, UNIT);
	return sys_mshare(name, base, UNIT, oflags, 0) ? -1 : 0;
}

static int paging_levels(void)
{
	return user_space_end() > (1UL << 47) ? 5 : 4;
}

/* 5-level paging -------------------------------------------------------- */

/*
 * Create a region at @base from one 1 GiB mapping, write through the
 * window, attach a second sharer, then replace the region's only mapping:
 * unmapping it leaves the host with no VMA at all, which must not free the
 * tables every sharer's top-level entry points at.  The second sharer
 * reads what the first writes after that, and the other way round.
 */
static void replace_only_mapping(struct __test_metadata *_metadata,
				 unsigned long base, const char *tag)
{
	char *p = (char *)base, name[64], c;
	int ready[2], go[2];
	pid_t pid;

	region_name(name, sizeof(name), tag);
	ASSERT_EQ(p, mmap(p, 1UL << 30, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE |
			  MAP_NORESERVE, -1, 0));
	ASSERT_EQ(0, sys_mshare(name, base, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	/* The first write after creating the region. */
	poke(&p[16], 'w');
	EXPECT_EQ('w', peek(&p[16]));

	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (attach_by_name(name, base, O_RDWR))
			_exit(1);
		if (peek(&p[16]) != 'w')
			_exit(2);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(3);
		/* A sharer that spins on faults is killed here. */
		alarm(5);
		if (peek(&p[0]) != 'A')
			_exit(4);
		poke(&p[PAGE], 'B');
		_exit(0);
	}
	ASSERT_EQ(1, read(ready[0], &c, 1));
	ASSERT_EQ(0, munmap(p, 1UL << 30));
	EXPECT_EQ(SIGBUS, touch_signal(p, false));
	ASSERT_EQ(p, mmap(p, 1UL << 30, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
			  -1, 0));
	poke(&p[0], 'A');
	ASSERT_EQ(1, write(go[1], "g", 1));
	EXPECT_EQ(0, reap(pid));
	EXPECT_EQ('B', peek(&p[PAGE]));
	EXPECT_EQ(0, sys_mshare_unlink(name));
	EXPECT_EQ(0, munmap(p, UNIT));
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
}

TEST(first_write_after_create_and_a_replaced_only_mapping)
{
	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	TH_LOG("%d-level paging", paging_levels());
	replace_only_mapping(_metadata, BASE, "onlymap");
}

/* A creator with nothing mapped under the region's top-level entry. */
TEST(region_above_the_four_level_limit)
{
	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (paging_levels() != 5)
		SKIP(return, "4-level paging: no user addresses above 128 TiB");
	replace_only_mapping(_metadata, HIGH_BASE, "high");
}

/* NUMA balancing ---------------------------------------------------------- */

static int numa_nodes(void)
{
	char path[64];
	int n = 0;

	for (;;) {
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", n);
		if (access(path, F_OK))
			return n;
		n++;
	}
}

/* Read every page of @size bytes at @p until @seconds have passed. */
static void touch_for(const char *p, size_t size, double seconds)
{
	double end = now() + seconds;
	size_t off;

	while (now() < end)
		for (off = 0; off < size; off += PAGE)
			(void)peek(&p[off]);
}

/* numa_pte_updates while a child reads @size bytes at @p for 3 s. */
static long numa_updates_while_touching(const char *p, size_t size)
{
	long before = vm_event("numa_pte_updates");
	pid_t pid = fork();

	if (pid == 0) {
		touch_for(p, size, 3);
		_exit(0);
	}
	if (reap(pid))
		return -1;
	return vm_event("numa_pte_updates") - before;
}

struct numa_knob {
	const char *name, *value;
	char saved[32];
};

FIXTURE(numa) {
	struct numa_knob knobs[3];
	bool set;
};

FIXTURE_SETUP(numa)
{
	static const struct numa_knob knobs[] = {
		{ "scan_delay_ms", "0" },
		{ "scan_period_min_ms", "100" },
		{ "scan_size_mb", "256" },
	};
	char path[128];
	unsigned int i;

	self->set = false;
	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (read_long("/proc/sys/kernel/numa_balancing") != 1 || numa_nodes() < 2)
		SKIP(return, "no automatic NUMA balancing over two nodes");
	memcpy(self->knobs, knobs, sizeof(knobs));
	for (i = 0; i < ARRAY_SIZE(knobs); i++) {
		snprintf(path, sizeof(path), NUMA_KNOBS "%s", knobs[i].name);
		ASSERT_EQ(0, read_file(path, self->knobs[i].saved,
				       sizeof(self->knobs[i].saved)));
		ASSERT_EQ(0, write_file(path, knobs[i].value));
	}
	self->set = true;
}

FIXTURE_TEARDOWN(numa)
{
	char path[128];
	unsigned int i;

	for (i = 0; self->set && i < ARRAY_SIZE(self->knobs); i++) {
		snprintf(path, sizeof(path), NUMA_KNOBS "%s", self->knobs[i].name);
		write_file(path, self->knobs[i].saved);
	}
}

/*
 * The NUMA scanner makes a task's own PTEs PROT_NONE under its own lock.
 * Through a window they are the region's, under the host's lock and shared
 * with every sharer: the scanner must leave windows alone.  A control run
 * on plain shared memory shows the scanner at work.
 */
TEST_F_TIMEOUT(numa, balancing_leaves_windows_alone, 300)
{
	const size_t size = 64 * MiB;
	long plain, window;
	char name[64], *p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 1, size);
	plain = numa_updates_while_touching(p, size);
	munmap(p, size);

	region_name(name, sizeof(name), "numa");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, size, MAP_SHARED, 1));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	window = numa_updates_while_touching((char *)BASE, size);
	TH_LOG("numa_pte_updates in 3 s: %ld on plain memory, %ld through a window",
	       plain, window);
	ASSERT_LE(size / PAGE, plain) TH_LOG("the scanner did not run");
	EXPECT_GT(plain / 4, window);
	EXPECT_EQ(0, sys_mshare_unlink(name));
	EXPECT_EQ(0, munmap((void *)BASE, UNIT));
}

/*
 * One sharer reads while another maps and unmaps 2 MiB inside the window
 * over and over, freeing the host's page tables under the scanner, if it
 * walked them.  KASAN and DEBUG_VM watch.
 */
TEST_F_TIMEOUT(numa, balancing_with_host_munmap_in_a_loop, 300)
{
	char *p = (char *)BASE, *churn = (char *)(BASE + 64 * MiB), name[64];
	pid_t reader, mapper;

	region_name(name, sizeof(name), "numarace");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, 32 * MiB, MAP_SHARED, 7));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	reader = fork();
	ASSERT_LE(0, reader);
	if (reader == 0) {
		touch_for(p, 32 * MiB, 5);
		_exit(peek(&p[PAGE]) == 7 ? 0 : 1);
	}
	mapper = fork();
	ASSERT_LE(0, mapper);
	if (mapper == 0) {
		double end = now() + 5;

		while (now() < end) {
			if (mmap(churn, 2 * MiB, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
				 -1, 0) != churn)
				_exit(2);
			memset(churn, 3, 2 * MiB);
			if (munmap(churn, 2 * MiB))
				_exit(3);
		}
		_exit(0);
	}
	EXPECT_EQ(0, reap(reader));
	EXPECT_EQ(0, reap(mapper));
	EXPECT_EQ(7, peek(p + 31 * MiB));
	EXPECT_EQ(0, sys_mshare_unlink(name));
	EXPECT_EQ(0, munmap((void *)BASE, UNIT));
}

/* Secondary MMUs ------------------------------------------------------------ */

/*
 * KVM follows its process's page tables through an MMU notifier; nothing
 * would tell it when a region's host changes them.  A process cannot have
 * both: KVM_CREATE_VM fails with EBUSY while the process has a window, and
 * attaching (or creating) fails with EBUSY while it has a VM.
 */
TEST(secondary_mmus_and_windows_exclude_each_other)
{
	char name[64];
	int kvm, vm;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	kvm = open("/dev/kvm", O_RDWR);
	if (kvm < 0)
		SKIP(return, "no /dev/kvm in this machine");
	region_name(name, sizeof(name), "kvm");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, MiB, MAP_SHARED, 'k'));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));

	/* With a window, no VM. */
	EXPECT_EQ(-1, ioctl(kvm, KVM_CREATE_VM, 0));
	EXPECT_EQ(EBUSY, errno);
	/* Without it, a VM; then no window. */
	ASSERT_EQ(0, munmap((void *)BASE, UNIT));
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	ASSERT_LE(0, vm);
	EXPECT_EQ(-1, sys_mshare(name, BASE, UNIT, O_RDWR, 0));
	EXPECT_EQ(EBUSY, errno);
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, MiB, MAP_SHARED, 'n'));
	EXPECT_EQ(-1, sys_mshare("kvm-new", BASE, UNIT,
				 O_CREAT | O_EXCL | O_RDWR, 0600));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ('n', peek((char *)BASE));
	close(vm);
	close(kvm);
	munmap((void *)BASE, MiB);
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

/* Killable waits and the msharefs lock ------------------------------------------ */

#define HUGE_SPAN	(64UL << 30)

/*
 * Maps the zero page at every address of a 64 GiB private mapping while
 * holding its mm's mmap_lock for reading: tens of seconds under emulation.
 * Without THP, which would map 2 MiB at a time.
 */
static int long_populate(void *p)
{
	if (madvise(p, HUGE_SPAN, MADV_NOHUGEPAGE))
		return 1;
	return madvise(p, HUGE_SPAN, MADV_POPULATE_READ) ? 2 : 0;
}

static pid_t start_long_populate(void *p)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(long_populate(p));
	return pid;
}

/*
 * Three sharers: one holds the host's lock for reading for a long time, a
 * second waits to write-lock it (an mmap() in the window), a third faults
 * and queues behind the writer.  SIGKILL must end the third at once.
 */
TEST(sigkill_reaches_a_sharer_waiting_for_the_region)
{
	char *p = (char *)BASE, *big = (char *)(BASE + (1UL << 30)), name[64];
	pid_t populater, writer, faulter;
	int ready[2], status;
	bool populating;
	double t0;
	char c;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	region_name(name, sizeof(name), "killable");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, 4 * MiB, MAP_SHARED, -1));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	ASSERT_EQ(big, mmap(big, HUGE_SPAN, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
			    MAP_FIXED, -1, 0));
	populater = start_long_populate(big);
	ASSERT_LE(0, populater);
	sleep(1);
	ASSERT_TRUE(still_running(populater));
	writer = fork();
	ASSERT_LE(0, writer);
	if (writer == 0)
		_exit(mmap(p + 512 * MiB, 2 * MiB, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
		      MAP_FAILED);
	usleep(300000);
	ASSERT_EQ(0, pipe(ready));
	faulter = fork();
	ASSERT_LE(0, faulter);
	if (faulter == 0) {
		if (write(ready[1], "f", 1) != 1)
			_exit(1);
		poke(p + 2 * MiB, 1);
		_exit(0);
	}
	ASSERT_EQ(1, read(ready[0], &c, 1));
	usleep(300000);
	t0 = now();
	kill(faulter, SIGKILL);
	status = reap_within(faulter, 5);
	populating = still_running(populater);
	TH_LOG("faulter gone %.2f s after SIGKILL (status %d); populate %s",
	       now() - t0, status, populating ? "still running" : "done");
	kill(populater, SIGKILL);
	reap(populater);
	EXPECT_EQ(0, reap(writer));
	if (status < 0)
		reap(faulter);
	EXPECT_EQ(128 + SIGKILL, status);
	/* Else the test proved nothing: the lock was free again. */
	EXPECT_TRUE(populating);
	close(ready[0]);
	close(ready[1]);
	EXPECT_EQ(0, sys_mshare_unlink(name));
	EXPECT_EQ(0, munmap((void *)BASE, UNIT));
}

static void *populate_thread(void *p)
{
	long_populate(p);
	return NULL;
}

/*
 * A process whose mmap_lock is held by one of its own threads stalls in
 * mshare(): that must stall no one else's mshare(), mshare_unlink() or
 * unlink in msharefs.
 */
TEST(a_stalled_caller_does_not_stall_other_callers)
{
	char name[64], other[64], path[128];
	pid_t stalled;
	double t0, took[3];
	int ready[2];
	char c;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	region_name(name, sizeof(name), "stalled");
	region_name(other, sizeof(other), "other");
	ASSERT_EQ(0, pipe(ready));
	stalled = fork();
	ASSERT_LE(0, stalled);
	if (stalled == 0) {
		void *big = mmap((void *)(8UL << 40), HUGE_SPAN, PROT_READ,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
				 MAP_FIXED_NOREPLACE, -1, 0);
		pthread_t t;

		if (big == MAP_FAILED ||
		    map_fixed(BASE, MiB, MAP_SHARED, 's') == MAP_FAILED ||
		    pthread_create(&t, NULL, populate_thread, big))
			_exit(1);
		usleep(500000);
		if (write(ready[1], "s", 1) != 1)
			_exit(2);
		/* Waits for the populating thread to drop the lock. */
		sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR, 0600);
		_exit(0);
	}
	ASSERT_EQ(1, read(ready[0], &c, 1));
	usleep(500000);
	ASSERT_TRUE(still_running(stalled));

	ASSERT_NE(MAP_FAILED, map_fixed(BASE, MiB, MAP_SHARED, 'o'));
	t0 = now();
	EXPECT_EQ(0, sys_mshare(other, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	took[0] = now() - t0;
	t0 = now();
	EXPECT_EQ(-1, sys_mshare_unlink("no-such-region"));
	EXPECT_EQ(ENOENT, errno);
	took[1] = now() - t0;
	snprintf(path, sizeof(path), MSHARE_MOUNT_POINT "/%s", other);
	t0 = now();
	EXPECT_EQ(0, unlink(path));
	took[2] = now() - t0;
	TH_LOG("while a caller stalls: mshare %.2f s, mshare_unlink %.2f s, unlink %.2f s",
	       took[0], took[1], took[2]);
	EXPECT_TRUE(still_running(stalled)) TH_LOG("the stall ended early");
	EXPECT_GT(1.0, took[0]);
	EXPECT_GT(1.0, took[1]);
	EXPECT_GT(1.0, took[2]);
	kill(stalled, SIGKILL);
	reap(stalled);
	/* The stalled create never completed, or completed and died. */
	sys_mshare_unlink(name);
	EXPECT_EQ(0, munmap((void *)BASE, UNIT));
	close(ready[0]);
	close(ready[1]);
}

/* Futexes ------------------------------------------------------------------- */

static long futex(unsigned int *uaddr, int op, unsigned int val,
		  const struct timespec *timeout)
{
	return syscall(SYS_futex, uaddr, op, val, timeout, NULL, 0);
}

/*
 * A sharer by name waits on @word; this process wakes it.  True if the
 * wake found the waiter and the waiter saw the wake.
 */
static bool wake_across(const char *name, unsigned int *word, int op_flags)
{
	struct timespec timeout = { .tv_sec = 3 };
	double end;
	long woken = 0;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		if (attach_by_name(name, BASE, O_RDWR))
			_exit(2);
		if (futex(word, FUTEX_WAIT | op_flags, 0, &timeout))
			_exit(errno == ETIMEDOUT ? 1 : 3);
		_exit(0);
	}
	for (end = now() + 2; woken < 1 && now() < end; usleep(10000))
		woken = futex(word, FUTEX_WAKE | op_flags, 1, NULL);
	return reap(pid) == 0 && woken == 1;
}

/*
 * Futex words in a region, in every kind of memory it can hold, wake
 * waiters in other sharers, through shared (PTHREAD_PROCESS_SHARED) and
 * private operations: within a region, sharers are as threads of one
 * process.
 */
TEST(futexes_wake_across_sharers)
{
	static const char *const kinds[] = {
		"private anonymous", "shared anonymous", "shared file"
	};
	unsigned int *words[3];
	char name[64];
	int fd, k;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	region_name(name, sizeof(name), "futex");
	words[0] = map_fixed(BASE, PAGE, MAP_PRIVATE, 0);
	words[1] = map_fixed(BASE + PAGE, PAGE, MAP_SHARED, 0);
	fd = memfd_create("futex", 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, PAGE));
	words[2] = mmap((void *)(BASE + 2 * PAGE), PAGE, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
	close(fd);
	for (k = 0; k < 3; k++) {
		ASSERT_NE(MAP_FAILED, words[k]);
		*words[k] = 0;
	}
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	for (k = 0; k < 3; k++) {
		bool shared = wake_across(name, words[k], 0);
		bool private = wake_across(name, words[k], FUTEX_PRIVATE_FLAG);

		TH_LOG("%s: shared op %s, private op %s", kinds[k],
		       shared ? "woke" : "lost", private ? "woke" : "lost");
		EXPECT_TRUE(shared);
		EXPECT_TRUE(private);
	}
	EXPECT_EQ(0, sys_mshare_unlink(name));
	EXPECT_EQ(0, munmap((void *)BASE, UNIT));
}

/* madvise, populate, mlock ------------------------------------------------------ */

/*
 * A read-only sharer may ask for pages to be read in, nothing else: no
 * eviction of every sharer's pages, no change to the region's VMAs.
 */
TEST(read_only_sharer_may_only_prefetch)
{
	static const struct { int advice; const char *name; int err; } cases[] = {
		{ MADV_WILLNEED, "WILLNEED", 0 },
		{ MADV_POPULATE_READ, "POPULATE_READ", 0 },
		{ MADV_NORMAL, "NORMAL", EACCES },
		{ MADV_RANDOM, "RANDOM", EACCES },
		{ MADV_SEQUENTIAL, "SEQUENTIAL", EACCES },
		{ MADV_COLD, "COLD", EACCES },
		{ MADV_PAGEOUT, "PAGEOUT", EACCES },
		{ MADV_DONTNEED, "DONTNEED", EACCES },
	};
	char name[64];
	unsigned int i;
	pid_t pid;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	region_name(name, sizeof(name), "roadvice");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, 2 * MiB, MAP_SHARED, 'r'));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0644));
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			int ret;

			if (attach_by_name(name, BASE, O_RDONLY))
				_exit(100);
			ret = madvise((void *)BASE, 2 * MiB, cases[i].advice);
			_exit(ret ? errno : 0);
		}
		EXPECT_EQ(cases[i].err, reap(pid)) TH_LOG("MADV_%s", cases[i].name);
	}
	EXPECT_EQ('r', peek((char *)(BASE + MiB)));
	EXPECT_EQ(0, sys_mshare_unlink(name));
	EXPECT_EQ(0, munmap((void *)BASE, UNIT));
}

/* Minor faults taken writing one byte to each page of @size bytes at @p. */
static long write_faults(char *p, size_t size)
{
	long before = minor_faults();
	size_t off;

	for (off = 0; off < size; off += PAGE)
		poke(&p[off], 1);
	return minor_faults() - before;
}

/*
 * MAP_POPULATE and mlock() populate a private mapping in a window for
 * writing, as they do outside one: real pages, not the zero page, so the
 * writes that follow take no fault.
 */
TEST(populate_and_mlock_prepare_private_memory_for_writing)
{
	char *a = (char *)(BASE + 64 * MiB), *b = (char *)(BASE + 128 * MiB);
	const size_t size = 2 * MiB;
	long faults_populate, faults_mlock;
	char name[64];

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	region_name(name, sizeof(name), "populate");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, MiB, MAP_SHARED, 'p'));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	ASSERT_EQ(a, mmap(a, size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE,
			  -1, 0));
	faults_populate = write_faults(a, size);
	ASSERT_EQ(b, mmap(b, size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	ASSERT_EQ(0, mlock(b, size));
	faults_mlock = write_faults(b, size);
	TH_LOG("faults writing 512 pages: %ld after MAP_POPULATE, %ld after mlock",
	       faults_populate, faults_mlock);
	EXPECT_GT(16, faults_populate);
	EXPECT_GT(16, faults_mlock);
	EXPECT_EQ(0, munlock(b, size));
	EXPECT_EQ(0, sys_mshare_unlink(name));
	EXPECT_EQ(0, munmap((void *)BASE, UNIT));
}

/*
 * Not about mshare at all: mlock2(MLOCK_ONFAULT) of a range that cannot
 * be locked (hugetlb here) still faults it in, as it always has.  Processes
 * that never use mshare see no change.
 */
TEST(mlock_onfault_still_prefaults_what_cannot_be_locked)
{
	const char *nr = "/proc/sys/vm/nr_hugepages";
	long saved, free_before, free_after;
	char buf[24];
	void *p;

	saved = read_long(nr);
	if (saved < 0)
		SKIP(return, "kernel without hugetlb");
	snprintf(buf, sizeof(buf), "%ld", saved + 2);
	ASSERT_EQ(0, write_file(nr, buf));
	p = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	free_before = meminfo_kib("HugePages_Free");
	EXPECT_EQ(0, syscall(SYS_mlock2, p, 2 * MiB, MLOCK_ONFAULT));
	free_after = meminfo_kib("HugePages_Free");
	TH_LOG("HugePages_Free %ld before mlock2(MLOCK_ONFAULT), %ld after",
	       free_before, free_after);
	EXPECT_EQ(free_before - 1, free_after);
	munmap(p, 2 * MiB);
	snprintf(buf, sizeof(buf), "%ld", saved);
	write_file(nr, buf);
}

TEST_HARNESS_MAIN
