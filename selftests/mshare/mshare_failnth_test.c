// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation failures at every step of mshare(): create, attach, the fault
 * path, fork of a sharer, mmap() through a window and the last detach of
 * an unlinked region, which tears the region down.  Each operation is
 * run with its n-th allocation failed (/proc/thread-self/fail-nth, with
 * failslab and fail_page_alloc armed for every kind of allocation), for
 * n = 1, 2, ... until it completes without reaching the n-th one.  After
 * every injected failure the call must have failed cleanly with ENOMEM
 * (or succeeded, when the failed allocation had a fallback), the caller's
 * memory and every existing sharer's view must be intact, and at the end
 * nothing may be left behind: live regions (debugfs), msharefs entries and
 * free memory are back to their baseline.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/mshare.h>

#include "../kselftest_harness.h"
#include "mshare_util.h"

#define BASE		(2UL << 40)
/* No operation here makes more allocations than this. */
#define MAX_NTH		2000

#define DEBUGFS		"/sys/kernel/debug/"
#define LIVE_REGIONS	DEBUGFS "mshare/regions"

/*
 * /proc/thread-self/fail-nth, kept open: no allocation of ours may come
 * between arming and the operation, nor between it and disarming.
 */
static int nth_fd = -1;

/* Fail any allocation, quietly: no message, no stack dump. */
static int setup_fault_injection(void)
{
	static const char *const knobs[][2] = {
		{ "failslab/ignore-gfp-wait", "N" },
		{ "failslab/verbose", "0" },
		{ "fail_page_alloc/ignore-gfp-wait", "N" },
		{ "fail_page_alloc/ignore-gfp-highmem", "N" },
		{ "fail_page_alloc/min-order", "0" },
		{ "fail_page_alloc/verbose", "0" },
	};
	char path[128];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(knobs); i++) {
		snprintf(path, sizeof(path), DEBUGFS "%s", knobs[i][0]);
		if (write_file(path, knobs[i][1]))
			return -1;
	}
	nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
	return nth_fd < 0 ? -1 : 0;
}

/* Fail the @nth allocation this thread makes from now on. */
static void arm(int nth)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%d", nth);

	if (pwrite(nth_fd, buf, len, 0) != len)
		abort();
}

/* Disarm; true if the failure was injected since arm(). */
static bool disarm(void)
{
	char buf[16] = "";
	ssize_t n = pread(nth_fd, buf, sizeof(buf) - 1, 0);

	if (pwrite(nth_fd, "0", 1, 0) != 1 || n <= 0)
		abort();
	return atol(buf) == 0;
}

/* A sharer in another process: checks @off holds @val, then exits. */
static int check_in_child(const char *name, unsigned long off, char val)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		munmap((void *)BASE, UNIT);
		if (sys_mshare(name, BASE, UNIT, O_RDONLY, 0))
			_exit(1);
		_exit(peek((char *)(BASE + off)) == val ? 0 : 2);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

FIXTURE(failnth) {
	long regions;
	int entries;
	long free;
	int injected;
	char name[64];
};

FIXTURE_SETUP(failnth)
{
	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (setup_fault_injection())
		SKIP(return, "kernel without fail-nth fault injection");
	/*
	 * Failed allocations without __GFP_NOWARN print a stack dump: mark
	 * where they are expected, for the harness's splat scan.
	 */
	write_file("/dev/kmsg", "mshare: fault injection begins\n");
	self->regions = read_long(LIVE_REGIONS);
	ASSERT_LE(0, self->regions);
	self->entries = msharefs_entries();
	self->free = free_kib();
	self->injected = 0;
	snprintf(self->name, sizeof(self->name), "failnth.%d", getpid());
}

/* Whatever failed on the way, nothing is left behind. */
FIXTURE_TEARDOWN(failnth)
{
	long free;

	write_file("/dev/kmsg", "mshare: fault injection ends\n");
	if (self->free <= 0)
		return;
	free = free_kib();
	TH_LOG("%d failures injected; free %ld kB before, %ld kB after",
	       self->injected, self->free, free);
	EXPECT_LT(0, self->injected);
	EXPECT_EQ(self->regions, read_long(LIVE_REGIONS));
	EXPECT_EQ(self->entries, msharefs_entries());
	/* Noise: slab caches grow while failures are retried. */
	EXPECT_GT(free + 2048 + kasan_slack_kib(), self->free);
}

TEST_F_TIMEOUT(failnth, create, 600)
{
	int nth;

	for (nth = 1; nth < MAX_NTH; nth++) {
		bool injected;
		long ret;

		ASSERT_NE(MAP_FAILED, map_fixed(BASE, MiB, MAP_SHARED, 'c'));
		arm(nth);
		ret = sys_mshare(self->name, BASE, UNIT,
				 O_CREAT | O_EXCL | O_RDWR, 0600);
		injected = disarm();
		self->injected += injected;
		if (ret) {
			ASSERT_TRUE(injected);
			ASSERT_EQ(ENOMEM, errno);
			/* The name is not there; the memory is still ours. */
			EXPECT_EQ(-1, sys_mshare(self->name, BASE, UNIT, O_RDWR, 0));
			EXPECT_EQ(ENOENT, errno);
		} else {
			EXPECT_EQ(0, check_in_child(self->name, PAGE, 'c'));
			EXPECT_EQ(0, sys_mshare_unlink(self->name));
		}
		EXPECT_EQ('c', *(char *)(BASE + MiB - 1));
		*(char *)BASE = 'd';
		EXPECT_EQ('d', *(char *)BASE);
		ASSERT_EQ(0, munmap((void *)BASE, UNIT));
		if (!injected)
			break;
	}
	EXPECT_GT(MAX_NTH, nth);
}

static int create_and_exit(const char *name)
{
	if (map_fixed(BASE, 4 * MiB, MAP_SHARED, 'a') == MAP_FAILED)
		return 1;
	return sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR, 0600) ? 2 : 0;
}

static void create_in_child(struct __test_metadata *_metadata, const char *name)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(create_and_exit(name));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_F_TIMEOUT(failnth, attach, 600)
{
	int nth;

	create_in_child(_metadata, self->name);
	for (nth = 1; nth < MAX_NTH; nth++) {
		bool injected;
		long ret;

		arm(nth);
		ret = sys_mshare(self->name, BASE, UNIT, O_RDWR, 0);
		injected = disarm();
		self->injected += injected;
		if (ret) {
			ASSERT_TRUE(injected);
			ASSERT_EQ(ENOMEM, errno);
			/* Nothing was mapped. */
			EXPECT_EQ(SIGSEGV, touch_signal((char *)BASE, false));
		} else {
			EXPECT_EQ('a', peek((char *)(BASE + 3 * MiB)));
			ASSERT_EQ(0, munmap((void *)BASE, UNIT));
		}
		/* The region itself never notices. */
		EXPECT_EQ(0, check_in_child(self->name, MiB, 'a'));
		if (!injected)
			break;
	}
	EXPECT_GT(MAX_NTH, nth);
	EXPECT_EQ(0, sys_mshare_unlink(self->name));
}

/*
 * A fault whose allocation fails returns VM_FAULT_OOM, which the x86
 * fault handler retries: the access completes.  Every round touches a new
 * 2 MiB span, so page, page-table and shmem allocations all fail in turn.
 */
TEST_F_TIMEOUT(failnth, fault, 600)
{
	char *p = (char *)(BASE + 64 * MiB);
	int nth;

	create_in_child(_metadata, self->name);
	ASSERT_EQ(0, sys_mshare(self->name, BASE, UNIT, O_RDWR, 0));
	ASSERT_EQ(p, mmap((void *)p, 512 * MiB, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	for (nth = 1; nth < 200; nth++) {
		unsigned long off = nth * 2 * MiB;
		bool injected;

		arm(nth);
		poke(&p[off], (char)nth);
		injected = disarm();
		self->injected += injected;
		EXPECT_EQ((char)nth, peek(&p[off]));
		EXPECT_EQ(0, check_in_child(self->name, 64 * MiB + off,
					    (char)nth));
		if (!injected)
			break;
	}
	EXPECT_GT(200, nth);
	ASSERT_EQ(0, munmap((void *)BASE, UNIT));
	EXPECT_EQ(0, sys_mshare_unlink(self->name));
}

TEST_F_TIMEOUT(failnth, fork_of_a_sharer, 600)
{
	int nth, status;

	create_in_child(_metadata, self->name);
	ASSERT_EQ(0, sys_mshare(self->name, BASE, UNIT, O_RDWR, 0));
	for (nth = 1; nth < MAX_NTH; nth++) {
		bool injected;
		pid_t pid;

		arm(nth);
		pid = fork();
		if (pid == 0) {
			/* The child sees the region and writes to it. */
			if (peek((char *)(BASE + MiB)) != 'a')
				_exit(1);
			poke((char *)(BASE + 2 * MiB), 'k');
			_exit(0);
		}
		injected = disarm();
		self->injected += injected;
		if (pid < 0) {
			ASSERT_TRUE(injected);
			ASSERT_TRUE(errno == ENOMEM || errno == EAGAIN);
		} else {
			ASSERT_EQ(pid, waitpid(pid, &status, 0));
			EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
			EXPECT_EQ('k', peek((char *)(BASE + 2 * MiB)));
			poke((char *)(BASE + 2 * MiB), 'a');
		}
		EXPECT_EQ('a', peek((char *)(BASE + 3 * MiB)));
		if (!injected)
			break;
	}
	EXPECT_GT(MAX_NTH, nth);
	ASSERT_EQ(0, munmap((void *)BASE, UNIT));
	EXPECT_EQ(0, sys_mshare_unlink(self->name));
}

TEST_F_TIMEOUT(failnth, mmap_through_a_window, 600)
{
	void *p = (void *)(BASE + 256 * MiB);
	int nth;

	create_in_child(_metadata, self->name);
	ASSERT_EQ(0, sys_mshare(self->name, BASE, UNIT, O_RDWR, 0));
	for (nth = 1; nth < MAX_NTH; nth++) {
		bool injected;
		void *ret;

		arm(nth);
		ret = mmap(p, 2 * MiB, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE,
			   -1, 0);
		injected = disarm();
		self->injected += injected;
		if (ret == MAP_FAILED) {
			ASSERT_TRUE(injected);
			/*
			 * ENOSPC: shared anonymous memory needs a shmem inode,
			 * and shmem reports failing to get one so, in or out
			 * of a window.
			 */
			ASSERT_TRUE(errno == ENOMEM || errno == ENOSPC);
			EXPECT_EQ(SIGBUS, touch_signal(p, false));
		} else {
			ASSERT_EQ(p, ret);
			poke((char *)p, 'm');
			EXPECT_EQ(0, check_in_child(self->name, 256 * MiB, 'm'));
			ASSERT_EQ(0, munmap(p, 2 * MiB));
		}
		EXPECT_EQ('a', peek((char *)(BASE + MiB)));
		if (!injected)
			break;
	}
	EXPECT_GT(MAX_NTH, nth);
	ASSERT_EQ(0, munmap((void *)BASE, UNIT));
	EXPECT_EQ(0, sys_mshare_unlink(self->name));
}

/*
 * The last detach of an unlinked region frees the region.  Tearing it down
 * must not depend on an allocation: if the munmap() fails it fails before
 * the window goes, and if the window goes, all of the region goes with it,
 * its pages unmapped before their tables are freed.
 */
TEST_F_TIMEOUT(failnth, last_detach_of_an_unlinked_region, 600)
{
	int nth;

	for (nth = 1; nth < MAX_NTH; nth++) {
		bool injected;
		long ret;

		create_in_child(_metadata, self->name);
		ASSERT_EQ(0, sys_mshare(self->name, BASE, UNIT, O_RDWR, 0));
		ASSERT_EQ(0, sys_mshare_unlink(self->name));
		/* Populated by the creator; this one maps more. */
		EXPECT_EQ('a', peek((char *)(BASE + 2 * MiB)));
		ASSERT_NE(MAP_FAILED, map_fixed(BASE + 64 * MiB, 2 * MiB,
						MAP_PRIVATE, 'p'));
		arm(nth);
		ret = munmap((void *)BASE, UNIT);
		injected = disarm();
		self->injected += injected;
		if (ret) {
			ASSERT_TRUE(injected);
			ASSERT_EQ(ENOMEM, errno);
			/* Still attached, with everything in place. */
			EXPECT_EQ('a', peek((char *)(BASE + 3 * MiB)));
			EXPECT_EQ('p', peek((char *)(BASE + 65 * MiB)));
			ASSERT_EQ(0, munmap((void *)BASE, UNIT));
		}
		/* The region is gone, whatever failed on the way. */
		EXPECT_EQ(self->regions, read_long(LIVE_REGIONS));
		EXPECT_EQ(SIGSEGV, touch_signal((char *)BASE, false));
		if (!injected)
			break;
	}
	EXPECT_GT(MAX_NTH, nth);
}

TEST_HARNESS_MAIN
