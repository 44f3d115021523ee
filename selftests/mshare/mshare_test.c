// SPDX-License-Identifier: GPL-2.0
/*
 * mshare(): processes that share page tables.  These tests prove sharing,
 * not just mapping: an attacher reads a populated region without faults,
 * page-table memory stays flat as sharers grow, and mappings made by one
 * sharer appear in the others.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <liburing.h>
#include <linux/mshare.h>
#include <linux/userfaultfd.h>

#include "../kselftest_harness.h"
#include "mshare_util.h"

#define BASE		(2UL << 40)	/* 2 TiB, as in the original proposal */

static void region_name(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "%s.%d", tag, getpid());
}

/* Create a region at BASE whose first @size bytes are populated. */
static int create_populated(const char *name, size_t size, int fill)
{
	if (map_fixed(BASE, size, MAP_SHARED, fill) == MAP_FAILED)
		return -1;
	return sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR, 0600);
}

/* Run @fn in a child and return its exit status (or 128 + signal). */
static int in_child(int (*fn)(const char *), const char *arg)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn(arg));
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static long minor_faults(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static unsigned long read_every_page(const char *p, size_t size)
{
	unsigned long sum = 0;
	size_t off;

	for (off = 0; off < size; off += PAGE)
		sum += peek(&p[off]);
	return sum;
}

static long page_tables_kib(void)
{
	return settled_meminfo_kib("PageTables");
}

/* Read faults on shmem map 16 pages at a time: count each page instead. */
static void set_fault_around(const char *bytes)
{
	int fd = open("/sys/kernel/debug/fault_around_bytes", O_WRONLY);

	if (fd >= 0) {
		if (write(fd, bytes, strlen(bytes)) < 0)
			perror("fault_around_bytes");
		close(fd);
	}
}

static int populate_and_exit(const char *name)
{
	return create_populated(name, 256 * MiB, 0x5a) ? 1 : 0;
}

TEST(rfc_donor_consumer_flow)
{
	static const char text[] = "Some random shared text";
	struct mshare_info info;
	char name[64], path[128];
	int fd, status;
	char *addr;
	pid_t pid;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	region_name(name, sizeof(name), "rfc");
	/* NORESERVE: 512 GiB is more than the test guest could commit. */
	addr = mmap((void *)BASE, UNIT, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE |
		    MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, addr);
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_RDWR | O_EXCL,
				0600));
	memcpy(addr, text, sizeof(text));

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* The consumer: a process without the region. */
		munmap((void *)BASE, UNIT);
		snprintf(path, sizeof(path), MSHARE_MOUNT_POINT "/%s", name);
		fd = open(path, O_RDONLY);
		if (fd < 0 || read(fd, &info, sizeof(info)) != sizeof(info))
			_exit(10);
		close(fd);
		if (info.start != BASE || info.size != UNIT)
			_exit(11);
		if (sys_mshare(name, info.start, info.size, O_RDWR, 0))
			_exit(12);
		if (strcmp((char *)info.start, text))
			_exit(13);
		_exit(sys_mshare_unlink(name) ? 14 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	snprintf(path, sizeof(path), MSHARE_MOUNT_POINT "/%s", name);
	EXPECT_EQ(-1, access(path, F_OK));
	EXPECT_STREQ(text, addr);
}

/* Tests that take minutes under emulation. */
FIXTURE(slow) {};
FIXTURE_SETUP(slow) {}
FIXTURE_TEARDOWN(slow) {}

TEST_F_TIMEOUT(slow, attacher_reads_populated_region_without_faults, 600)
{
	const size_t size = 256 * MiB;
	char name[64], shm[64];
	long before, mshare_faults, shm_faults;
	unsigned long sum;
	char *p;
	int fd;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	region_name(name, sizeof(name), "nofault");
	/* The creator populates the region and exits: the region stays. */
	ASSERT_EQ(0, in_child(populate_and_exit, name));

	before = minor_faults();
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_RDONLY, 0));
	sum = read_every_page((char *)BASE, size);
	mshare_faults = minor_faults() - before;
	EXPECT_EQ(0x5aUL * (size / PAGE), sum);
	EXPECT_GT(16, mshare_faults);
	TH_LOG("mshare: %ld minor faults to read %zu MiB", mshare_faults,
	       size / MiB);
	EXPECT_EQ(0, munmap((void *)BASE, UNIT));
	EXPECT_EQ(0, sys_mshare_unlink(name));

	/* The same reads on POSIX shm populated by another process. */
	snprintf(shm, sizeof(shm), "/nofault.%d", getpid());
	fd = shm_open(shm, O_CREAT | O_EXCL | O_RDWR, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, size));
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x5a, size);
	munmap(p, size);
	set_fault_around("4096");
	p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	before = minor_faults();
	sum = read_every_page(p, size);
	shm_faults = minor_faults() - before;
	set_fault_around("65536");
	TH_LOG("POSIX shm: %ld minor faults to read %zu MiB", shm_faults,
	       size / MiB);
	EXPECT_LE(65536, shm_faults);
	munmap(p, size);
	close(fd);
	shm_unlink(shm);
}

static int attacher_fds[2];

/* Attach, read everything, report, wait to be killed. */
static int attach_and_wait(const char *name)
{
	char c = 0;

	if (sys_mshare(name, BASE, UNIT, O_RDONLY, 0))
		return 1;
	read_every_page((char *)BASE, 64 * MiB);
	if (write(attacher_fds[1], &c, 1) != 1)
		return 2;
	pause();
	return 0;
}

static int shared_memfd = -1;

/* Map the one shared memfd and touch every page of it. */
static int map_memfd_and_wait(const char *unused)
{
	char *p, c = 0;

	p = mmap(NULL, 64 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED,
		 shared_memfd, 0);
	if (p == MAP_FAILED)
		return 1;
	memset(p, 1, 64 * MiB);
	if (write(attacher_fds[1], &c, 1) != 1)
		return 2;
	pause();
	return 0;
}

static int idle_and_wait(const char *unused)
{
	char c = 0;

	if (write(attacher_fds[1], &c, 1) != 1)
		return 2;
	pause();
	return 0;
}

#define SHARERS 64

/* Page tables that SHARERS processes running @fn add over idle ones. */
static long page_tables_of(int (*fn)(const char *), const char *arg)
{
	pid_t pids[SHARERS];
	long idle, busy;
	char c;
	int i;

	for (i = 0; i < 2; i++) {
		int (*what)(const char *) = i ? fn : idle_and_wait;
		int n;

		if (pipe(attacher_fds))
			return -1;
		for (n = 0; n < SHARERS; n++) {
			pids[n] = fork();
			if (pids[n] == 0)
				_exit(what(arg));
		}
		for (n = 0; n < SHARERS; n++)
			if (read(attacher_fds[0], &c, 1) != 1)
				return -1;
		if (i)
			busy = page_tables_kib();
		else
			idle = page_tables_kib();
		for (n = 0; n < SHARERS; n++) {
			kill(pids[n], SIGKILL);
			waitpid(pids[n], NULL, 0);
		}
		close(attacher_fds[0]);
		close(attacher_fds[1]);
	}
	return busy - idle;
}

/* 128 processes under TCG: more than the default 30 s. */
TEST_F_TIMEOUT(slow, page_tables_stay_flat_as_sharers_grow, 600)
{
	/* One process's page tables for 64 MiB of 4 KiB pages. */
	const long one_kib = 64 * MiB / 512 / 1024;
	long mshare_kib, shm_kib;
	char name[64];

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	region_name(name, sizeof(name), "flat");
	ASSERT_EQ(0, in_child(populate_and_exit, name));
	mshare_kib = page_tables_of(attach_and_wait, name);
	shared_memfd = memfd_create("flat", 0);
	ASSERT_LE(0, shared_memfd);
	ASSERT_EQ(0, ftruncate(shared_memfd, 64 * MiB));
	shm_kib = page_tables_of(map_memfd_and_wait, NULL);
	close(shared_memfd);
	TH_LOG("%d sharers add page tables: %ld KiB with mshare, %ld KiB with memfd (one: %ld KiB)",
	       SHARERS, mshare_kib, shm_kib, one_kib);
	EXPECT_GT(2 * one_kib, mshare_kib);
	EXPECT_LT(SHARERS / 2 * one_kib, shm_kib);
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

TEST(writes_are_seen_both_ways_and_private_memory_is_shared)
{
	char *shared = (char *)BASE;
	char *private = (char *)(BASE + 64 * MiB);
	char name[64];
	int status;
	pid_t pid;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	region_name(name, sizeof(name), "rw");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, 4 * PAGE, MAP_SHARED, 0));
	ASSERT_NE(MAP_FAILED, map_fixed(BASE + 64 * MiB, 4 * PAGE,
					MAP_PRIVATE, 0));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	poke(&shared[0], 'a');
	poke(&private[0], 'p');

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* Not a sharer by inheritance: attach by name. */
		munmap((void *)BASE, UNIT);
		if (sys_mshare(name, BASE, UNIT, O_RDWR, 0))
			_exit(1);
		if (peek(&shared[0]) != 'a' || peek(&private[0]) != 'p')
			_exit(2);
		poke(&shared[PAGE], 'b');
		poke(&private[PAGE], 'q');	/* not a COW copy: seen by all */
		while (peek(&shared[0]) != 'c')
			usleep(1000);
		_exit(0);
	}
	while (peek(&shared[PAGE]) != 'b')
		usleep(1000);
	EXPECT_EQ('q', peek(&private[PAGE]));
	poke(&shared[0], 'c');
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

TEST(new_mapping_by_one_sharer_appears_in_the_others)
{
	char *late = (char *)(BASE + 128 * MiB);
	char name[64], c = 0;
	int go[2], done[2], status;
	pid_t pid;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	region_name(name, sizeof(name), "late");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, PAGE, MAP_SHARED, 0));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		munmap((void *)BASE, UNIT);
		if (sys_mshare(name, BASE, UNIT, O_RDONLY, 0))
			_exit(1);
		if (write(done[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(2);
		/* No call of ours: the new mapping is simply there. */
		_exit(peek(&late[0]) == 'n' && peek(&late[PAGE]) == 'm' ? 0 : 3);
	}
	ASSERT_EQ(1, read(done[0], &c, 1));
	ASSERT_EQ(late, mmap((void *)late, 2 * PAGE, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	poke(&late[0], 'n');
	poke(&late[PAGE], 'm');
	ASSERT_EQ(1, write(go[1], &c, 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

TEST(hole_gives_sigbus)
{
	char name[64];

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	region_name(name, sizeof(name), "hole");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, PAGE, MAP_SHARED, 0));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	EXPECT_EQ(0, touch_signal((char *)BASE, false));
	EXPECT_EQ(SIGBUS, touch_signal((char *)(BASE + 16 * MiB), false));
	EXPECT_EQ(SIGBUS, touch_signal((char *)(BASE + UNIT - PAGE), true));
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

static int read_only_sharer(const char *name)
{
	char *p = (char *)BASE;

	if (sys_mshare(name, BASE, UNIT, O_RDONLY, 0))
		return 1;
	if (peek(&p[0]) != 'r' || touch_signal(p, false))
		return 2;
	if (touch_signal(p, true) != SIGSEGV)
		return 3;
	if (mmap((void *)(BASE + MiB), PAGE, PROT_READ,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED ||
	    errno != EACCES)
		return 4;
	if (munmap((void *)BASE, PAGE) != -1 || errno != EACCES)
		return 5;
	if (munmap((void *)(BASE + UNIT / 2), UNIT / 2) != -1 ||
	    errno != EACCES)
		return 5;
	if (mprotect((void *)BASE, PAGE, PROT_READ | PROT_WRITE) != -1 ||
	    errno != EACCES)
		return 6;
	if (peek(&p[0]) != 'r')
		return 7;
	return 0;
}

TEST(read_only_sharer_can_read_but_not_write_or_change_the_range)
{
	char name[64];

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	region_name(name, sizeof(name), "ro");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, PAGE, MAP_SHARED, 'r'));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0644));
	ASSERT_EQ(0, munmap((void *)BASE, UNIT));
	EXPECT_EQ(0, in_child(read_only_sharer, name));
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

TEST(fork_inherits_and_child_exit_leaves_others_intact)
{
	char *p = (char *)BASE;
	char name[64];
	int status;
	pid_t pid;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	region_name(name, sizeof(name), "fork");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, 2 * PAGE, MAP_SHARED, 'f'));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (peek(&p[0]) != 'f')
			_exit(1);
		poke(&p[PAGE], 'k');
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ('k', peek(&p[PAGE]));
	EXPECT_EQ('f', peek(&p[0]));
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

TEST(unlink_keeps_sharers_working_and_frees_with_the_last)
{
	char *p = (char *)BASE;
	long before, after, free_before, free_held, free_after;
	char name[64], path[128];

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	region_name(name, sizeof(name), "unlink");
	snprintf(path, sizeof(path), MSHARE_MOUNT_POINT "/%s", name);
	before = page_tables_kib();
	free_before = free_kib();
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, 64 * MiB, MAP_SHARED, 'u'));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	ASSERT_EQ(0, sys_mshare_unlink(name));
	EXPECT_EQ(-1, sys_mshare(name, BASE, UNIT, O_RDWR, 0));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, access(path, F_OK));
	EXPECT_EQ('u', peek(&p[0]));
	poke(&p[0], 'v');
	EXPECT_EQ('v', peek(&p[0]));
	free_held = free_kib();
	ASSERT_EQ(0, munmap((void *)BASE, UNIT));
	after = page_tables_kib();
	free_after = free_kib();
	TH_LOG("PageTables: %ld kB before, %ld kB after", before, after);
	TH_LOG("Free (MemFree + per-CPU lists): %ld kB before, %ld kB while shared, %ld kB after",
	       free_before, free_held, free_after);
	/* 64 MiB of PTEs is 128 KiB: nothing of it may stay behind. */
	EXPECT_GT(before + 16, after);
	/*
	 * The 64 MiB come back, within 1 MiB of noise (slab and the
	 * kernel's own allocations while the test runs; more on KASAN).
	 */
	EXPECT_GT(free_before - free_held, 63 * 1024);
	EXPECT_GT(free_after + 1024 + kasan_slack_kib(), free_before);
}

TEST(bad_arguments_get_their_errno)
{
	char name[64], longname[NAME_MAX + 2];
	void *outside;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	region_name(name, sizeof(name), "err");
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
#define EXPECT_ERRNO(err, call)			\
	do {					\
		errno = 0;			\
		EXPECT_EQ(-1, call);		\
		EXPECT_EQ(err, errno);		\
	} while (0)
	EXPECT_ERRNO(EINVAL, sys_mshare(name, BASE + PAGE, UNIT, O_CREAT | O_RDWR, 0600));
	EXPECT_ERRNO(EINVAL, sys_mshare(name, BASE, UNIT + PAGE, O_CREAT | O_RDWR, 0600));
	EXPECT_ERRNO(EINVAL, sys_mshare(name, BASE, 0, O_CREAT | O_RDWR, 0600));
	EXPECT_ERRNO(EINVAL, sys_mshare(name, 255 * UNIT, 2 * UNIT, O_CREAT | O_RDWR, 0600));
	EXPECT_ERRNO(EINVAL, sys_mshare(name, -UNIT, 2 * UNIT, O_CREAT | O_RDWR, 0600));
	EXPECT_ERRNO(EINVAL, sys_mshare(name, BASE, UNIT, O_CREAT | O_RDWR | O_TRUNC, 0600));
	EXPECT_ERRNO(EINVAL, sys_mshare(name, BASE, UNIT, O_CREAT | O_WRONLY, 0600));
	EXPECT_ERRNO(ENOENT, sys_mshare(name, BASE, UNIT, O_RDWR, 0));
	EXPECT_ERRNO(EINVAL, sys_mshare("", BASE, UNIT, O_CREAT | O_RDWR, 0600));
	EXPECT_ERRNO(EINVAL, sys_mshare("a/b", BASE, UNIT, O_CREAT | O_RDWR, 0600));
	EXPECT_ERRNO(ENAMETOOLONG, sys_mshare(longname, BASE, UNIT, O_CREAT | O_RDWR, 0600));
	EXPECT_ERRNO(EFAULT, sys_mshare(NULL, BASE, UNIT, O_CREAT | O_RDWR, 0600));
	EXPECT_ERRNO(EFAULT, sys_mshare((char *)8, BASE, UNIT, O_CREAT | O_RDWR, 0600));
	EXPECT_ERRNO(ENOENT, sys_mshare_unlink(name));

	ASSERT_NE(MAP_FAILED, map_fixed(BASE, PAGE, MAP_SHARED, 0));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR, 0600));
	EXPECT_ERRNO(EEXIST, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR, 0600));
	/* Attached already: the range holds a mapping. */
	EXPECT_ERRNO(EEXIST, sys_mshare(name, BASE, UNIT, O_RDWR, 0));
	EXPECT_ERRNO(EINVAL, sys_mshare(name, BASE + UNIT, UNIT, O_RDWR, 0));
	EXPECT_ERRNO(EINVAL, sys_mshare(name, BASE, 2 * UNIT, O_RDWR, 0));
	/* Partial munmap of a window reaching out of it. */
	EXPECT_ERRNO(EINVAL, munmap((void *)(BASE - PAGE), 2 * PAGE));
	/* mremap within, out of and into the window. */
	EXPECT_EQ(MAP_FAILED, mremap((void *)BASE, PAGE, 2 * PAGE, MREMAP_MAYMOVE));
	EXPECT_EQ(EINVAL, errno);
	outside = map_fixed(BASE - 2 * UNIT, PAGE, MAP_PRIVATE, 'o');
	ASSERT_NE(MAP_FAILED, outside);
	EXPECT_EQ(MAP_FAILED, mremap((void *)BASE, PAGE, PAGE,
				     MREMAP_MAYMOVE | MREMAP_FIXED,
				     (char *)outside + UNIT));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mremap(outside, PAGE, PAGE,
				     MREMAP_MAYMOVE | MREMAP_FIXED,
				     (void *)(BASE + MiB)));
	EXPECT_EQ(EINVAL, errno);
	/* Nothing moved: the window and the outside page are intact. */
	EXPECT_EQ('o', *(char *)outside);
	EXPECT_EQ(SIGBUS, touch_signal((char *)(BASE + MiB), false));
	EXPECT_EQ(0, touch_signal((char *)BASE, false));
	EXPECT_EQ(0, munmap(outside, PAGE));
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

TEST(mode_forbids_other_users)
{
	char name[64];
	int status;
	pid_t pid;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (geteuid() != 0)
		SKIP(return, "needs root to switch to an unprivileged uid");
	region_name(name, sizeof(name), "perm");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, PAGE, MAP_SHARED, 0));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR, 0600));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		munmap((void *)BASE, UNIT);
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(1);
		if (sys_mshare(name, BASE, UNIT, O_RDONLY, 0) != -1 || errno != EACCES)
			_exit(2);
		if (sys_mshare_unlink(name) != -1 || errno != EPERM)
			_exit(3);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

static int populate_1m_and_exit(const char *name)
{
	return create_populated(name, MiB, 'g') ? 1 : 0;
}

/* A sharer that never touched the pages: every access goes through GUP. */
TEST(gup_paths_work_on_an_untouched_window)
{
	char name[64], buf[PAGE], path[64], data[2 * PAGE];
	struct io_uring ring;
	struct iovec iov;
	int status, fd, i;
	pid_t pid;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	region_name(name, sizeof(name), "gup");
	ASSERT_EQ(0, in_child(populate_1m_and_exit, name));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_RDWR, 0));

	/* process_vm_readv() and /proc/PID/mem from a third process. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct iovec local = { buf, PAGE };
		struct iovec remote = { (void *)(BASE + PAGE), PAGE };
		pid_t parent = getppid();

		if (process_vm_readv(parent, &local, 1, &remote, 1, 0) != PAGE ||
		    buf[0] != 'g' || buf[PAGE - 1] != 'g')
			_exit(1);
		snprintf(path, sizeof(path), "/proc/%d/mem", parent);
		fd = open(path, O_RDONLY);
		if (fd < 0 || pread(fd, buf, PAGE, BASE + 2 * PAGE) != PAGE ||
		    buf[7] != 'g')
			_exit(2);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* io_uring: read a file into the region, then write it back out. */
	for (i = 0; i < (int)sizeof(data); i++)
		data[i] = 'a' + i % 26;
	fd = open("/tmp/mshare-gup", O_CREAT | O_TRUNC | O_RDWR, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(sizeof(data), write(fd, data, sizeof(data)));
	ASSERT_EQ(0, io_uring_queue_init(4, &ring, 0));
	for (i = 0; i < 2; i++) {
		char *dst = (char *)(BASE + (4 + 2 * i) * PAGE);
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		struct io_uring_cqe *cqe;

		if (i == 0) {
			io_uring_prep_read(sqe, fd, dst, sizeof(data), 0);
		} else {
			/* Registered buffers are pinned long-term. */
			iov.iov_base = dst;
			iov.iov_len = sizeof(data);
			ASSERT_EQ(0, io_uring_register_buffers(&ring, &iov, 1));
			io_uring_prep_read_fixed(sqe, fd, dst, sizeof(data), 0, 0);
		}
		ASSERT_EQ(1, io_uring_submit(&ring));
		ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
		EXPECT_EQ((int)sizeof(data), cqe->res);
		io_uring_cqe_seen(&ring, cqe);
		EXPECT_EQ(0, memcmp(dst, data, sizeof(data)));
		if (i == 1)
			io_uring_unregister_buffers(&ring);
	}
	/*
	 * Write pages this process never touched back out to the file, with
	 * a plain and with a registered buffer, and read the file back.
	 */
	for (i = 0; i < 2; i++) {
		char *src = (char *)(BASE + (16 + 2 * i) * PAGE);
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		struct io_uring_cqe *cqe;

		memset(data, 'z', sizeof(data));
		ASSERT_EQ(sizeof(data), pwrite(fd, data, sizeof(data), 0));
		if (i == 0) {
			io_uring_prep_write(sqe, fd, src, sizeof(data), 0);
		} else {
			iov.iov_base = src;
			iov.iov_len = sizeof(data);
			ASSERT_EQ(0, io_uring_register_buffers(&ring, &iov, 1));
			io_uring_prep_write_fixed(sqe, fd, src, sizeof(data),
						  0, 0);
		}
		ASSERT_EQ(1, io_uring_submit(&ring));
		ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
		EXPECT_EQ((int)sizeof(data), cqe->res);
		io_uring_cqe_seen(&ring, cqe);
		if (i == 1)
			io_uring_unregister_buffers(&ring);
		memset(data, 0, sizeof(data));
		ASSERT_EQ(sizeof(data), pread(fd, data, sizeof(data), 0));
		EXPECT_EQ('g', data[0]);
		EXPECT_EQ('g', data[sizeof(data) - 1]);
	}
	io_uring_queue_exit(&ring);
	close(fd);
	unlink("/tmp/mshare-gup");
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

static void pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/*
 * A region with a control page at BASE and a target page 64 MiB in, with a
 * neighbour after it that stays mapped: unmapping the target then frees
 * no page table, and only the TLB flush can take its translation away.
 */
static int create_control_and_target(const char *name)
{
	if (map_fixed(BASE, PAGE, MAP_SHARED, 0) == MAP_FAILED ||
	    map_fixed(BASE + 64 * MiB, 2 * PAGE, MAP_SHARED, 0) == MAP_FAILED)
		return -1;
	return sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR, 0600);
}

#define TLB_ROUNDS 500

/*
 * fork(); the child runs on CPU 1 and takes every @sig its loop raises as
 * one it expects (on_fault() jumps back to its sigsetjmp()).
 */
static pid_t fork_reader_on_cpu1(int sig)
{
	struct sigaction sa = { .sa_handler = on_fault };
	pid_t pid = fork();

	if (pid == 0) {
		pin_to_cpu(1);
		poke(&guarded, 1);
		sigaction(sig, &sa, NULL);
	}
	return pid;
}

/*
 * B spins on CPU 1 reading a page while A, on CPU 0, unmaps it and maps a
 * different page holding the next value there.  Once A has published that
 * round, B may see the new value or a hole, never the old page: every
 * flush of the region's tables must reach B's CPU.  The two pages come
 * from a memfd and stay allocated, so a stale translation reads a value
 * that is really old, not a freed page that was just reused.
 */
TEST_F_TIMEOUT(slow, tlb_flushes_reach_every_sharer_cpu, 600)
{
	unsigned long *done = (unsigned long *)BASE;
	unsigned long *target = (unsigned long *)(BASE + 64 * MiB);
	unsigned long *pages;
	unsigned long round;
	char name[64];
	int status, fd;
	pid_t pid;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "needs two CPUs");
	region_name(name, sizeof(name), "tlb");
	fd = memfd_create("tlb-pages", 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 2 * PAGE));
	/* Our own view of the two pages, outside the region. */
	pages = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, pages);
	ASSERT_EQ(0, create_control_and_target(name));
	pid = fork_reader_on_cpu1(SIGBUS);
	ASSERT_LE(0, pid);
	if (pid == 0) {
		unsigned long seen, published;

		for (;;) {
			published = __atomic_load_n(done, __ATOMIC_ACQUIRE);
			if (published == TLB_ROUNDS)
				_exit(0);
			if (sigsetjmp(fault_jmp, 1))
				continue;	/* the hole between the two */
			seen = peek(target);
			if (seen < published)
				_exit(1);	/* a stale translation */
		}
	}
	pin_to_cpu(0);
	for (round = 1; round <= TLB_ROUNDS; round++) {
		unsigned long page = round % 2;

		poke(&pages[page * PAGE / sizeof(*pages)], round);
		ASSERT_EQ(0, munmap((void *)target, PAGE));
		ASSERT_EQ(target, mmap((void *)target, PAGE,
				       PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_FIXED, fd,
				       page * PAGE));
		__atomic_store_n(done, round, __ATOMIC_RELEASE);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, sys_mshare_unlink(name));
	munmap((void *)pages, 2 * PAGE);
	close(fd);
}

/*
 * The same for mprotect(): once A has published that the page is
 * read-only, a write by B on the other CPU must fault.
 */
TEST_F_TIMEOUT(slow, mprotect_reaches_every_sharer_cpu, 600)
{
	unsigned long *state = (unsigned long *)BASE;
	unsigned long *target = (unsigned long *)(BASE + 64 * MiB);
	unsigned long round;
	char name[64];
	int status;
	pid_t pid;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "needs two CPUs");
	region_name(name, sizeof(name), "tlbro");
	ASSERT_EQ(0, create_control_and_target(name));
	pid = fork_reader_on_cpu1(SIGSEGV);
	ASSERT_LE(0, pid);
	if (pid == 0) {
		unsigned long before, after;

		for (;;) {
			before = __atomic_load_n(state, __ATOMIC_ACQUIRE);
			if (before == 2 * TLB_ROUNDS)
				_exit(0);
			if (sigsetjmp(fault_jmp, 1))
				continue;	/* read-only: as it must be */
			poke(target, before);
			after = __atomic_load_n(state, __ATOMIC_ACQUIRE);
			/* Odd: published read-only, and still so after. */
			if ((before & 1) && before == after)
				_exit(1);
		}
	}
	pin_to_cpu(0);
	for (round = 0; round < TLB_ROUNDS; round++) {
		ASSERT_EQ(0, mprotect((void *)target, PAGE, PROT_READ));
		__atomic_store_n(state, 2 * round + 1, __ATOMIC_RELEASE);
		usleep(100);
		/* Say "writable" before it is: B must never be misled. */
		__atomic_store_n(state, 2 * round + 2, __ATOMIC_RELEASE);
		ASSERT_EQ(0, mprotect((void *)target, PAGE,
				      PROT_READ | PROT_WRITE));
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

#define THP_ENABLED "/sys/kernel/mm/transparent_hugepage/enabled"
#define HPAGE (2 * MiB)

static int read_thp_without_faults(const char *name)
{
	char *p = (char *)(BASE + 1024 * MiB);
	long faults;
	size_t off;

	/* Forked with the parent's window: leave it and attach anew. */
	if (munmap((void *)BASE, UNIT) || sys_mshare(name, BASE, UNIT, O_RDONLY, 0))
		return 1;
	faults = minor_faults();
	for (off = 0; off < 4 * HPAGE; off += PAGE)
		if (peek(&p[off]) != (char)('h' + off / HPAGE))
			return 2;
	return minor_faults() - faults < 16 ? 0 : 3;
}

/*
 * Sets transparent huge pages to "madvise" and returns the mode to put
 * back, found in old (the file as read); NULL if it is not there or the
 * new mode cannot be set.
 */
static const char *thp_set_madvise(char *old)
{
	char *mode = strchr(old, '['), *end;

	end = mode ? strchr(mode, ']') : NULL;
	if (!end || write_file(THP_ENABLED, "madvise"))
		return NULL;
	*end = '\0';
	return mode + 1;
}

/* Four huge pages at p, filled with 'h', 'i', 'j' and 'k'. */
static int fill_huge_pages(char *p)
{
	int i;

	if (madvise(p, 4 * HPAGE, MADV_HUGEPAGE))
		return -1;
	for (i = 0; i < 4; i++)
		memset(p + i * HPAGE, 'h' + i, HPAGE);
	return 0;
}

/*
 * Huge pages faulted in through a window are the region's: PMD mappings
 * in the shared tables that every sharer reads without a fault.  Splitting
 * one with a partial munmap keeps the rest intact.
 */
TEST(transparent_huge_pages_are_shared)
{
	char *p = (char *)(BASE + 1024 * MiB), name[64], old[128];
	const char *mode;
	long before, after;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (read_file(THP_ENABLED, old, sizeof(old)))
		SKIP(return, "kernel without transparent huge pages");
	mode = thp_set_madvise(old);
	ASSERT_NE(NULL, mode);
	region_name(name, sizeof(name), "thp");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, PAGE, MAP_SHARED, 0));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	before = settled_meminfo_kib("AnonHugePages");
	/* Made through the window after creation: it lands in the region. */
	ASSERT_EQ(p, mmap(p, 4 * HPAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	ASSERT_EQ(0, fill_huge_pages(p));
	after = settled_meminfo_kib("AnonHugePages");
	TH_LOG("AnonHugePages: %ld kB before, %ld kB after", before, after);
	EXPECT_LE(before + 4 * HPAGE / 1024, after);
	EXPECT_EQ(0, in_child(read_thp_without_faults, name));

	/* Split the second huge page: the rest stays, the hole is a hole. */
	ASSERT_EQ(0, munmap(p + HPAGE + 64 * PAGE, PAGE));
	EXPECT_EQ(SIGBUS, touch_signal(p + HPAGE + 64 * PAGE, false));
	EXPECT_EQ('i', p[HPAGE]);
	EXPECT_EQ('i', p[HPAGE + 65 * PAGE]);
	EXPECT_EQ('k', p[3 * HPAGE + 5]);
	/* MADV_DONTNEED drops private anonymous memory for every sharer. */
	ASSERT_EQ(0, madvise(p + 2 * HPAGE, HPAGE, MADV_DONTNEED));
	EXPECT_EQ(0, p[2 * HPAGE]);
	EXPECT_EQ(0, sys_mshare_unlink(name));
	ASSERT_EQ(0, munmap((void *)BASE, UNIT));
	write_file(THP_ENABLED, mode);
}

/*
 * Huge pages the creator had before mshare() move into the region with
 * its tables: still PMD mappings, counted out of the creator's RSS, and
 * read by another sharer without faults.  The host's counters must add
 * up when it is torn down (DEBUG_VM reports a bad rss-counter state or
 * leftover pgtables_bytes, which the harness catches).
 */
TEST(creators_huge_pages_move_into_the_region)
{
	char *p = (char *)(BASE + 1024 * MiB), name[64], old[128];
	long huge_before, huge_after, rss_before, rss_after;
	const char *mode;
	int i;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (read_file(THP_ENABLED, old, sizeof(old)))
		SKIP(return, "kernel without transparent huge pages");
	mode = thp_set_madvise(old);
	ASSERT_NE(NULL, mode);
	region_name(name, sizeof(name), "thpmove");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, PAGE, MAP_SHARED, 0));
	ASSERT_EQ(p, mmap(p, 4 * HPAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			  -1, 0));
	ASSERT_EQ(0, fill_huge_pages(p));
	huge_before = settled_meminfo_kib("AnonHugePages");
	rss_before = status_kib("RssAnon");
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	huge_after = settled_meminfo_kib("AnonHugePages");
	rss_after = status_kib("RssAnon");
	TH_LOG("AnonHugePages %ld -> %ld kB, creator's RssAnon %ld -> %ld kB",
	       huge_before, huge_after, rss_before, rss_after);
	EXPECT_LE(4 * HPAGE / 1024, huge_before);
	EXPECT_EQ(huge_before, huge_after);
	EXPECT_GE(rss_before - 4 * (long)(HPAGE / 1024), rss_after);
	for (i = 0; i < 4; i++)
		EXPECT_EQ('h' + i, p[i * HPAGE + 4095]);
	EXPECT_EQ(0, in_child(read_thp_without_faults, name));
	EXPECT_EQ(0, sys_mshare_unlink(name));
	ASSERT_EQ(0, munmap((void *)BASE, UNIT));
	write_file(THP_ENABLED, mode);
}

#define KSM "/sys/kernel/mm/ksm/"

static long ksm_pages_sharing(void)
{
	char buf[32];

	if (read_file(KSM "pages_sharing", buf, sizeof(buf)))
		return -1;
	return atol(buf);
}

/*
 * KSM does not scan regions: merged pages of the creator are broken up
 * when they move into one, and MADV_MERGEABLE in a window is refused.
 */
TEST(ksm_never_merges_region_pages)
{
	char *p = (char *)BASE, name[64];
	int waited;
	long cow;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (ksm_pages_sharing() < 0 || vm_event("cow_ksm") < 0)
		SKIP(return, "kernel without KSM or VM event counters");
	region_name(name, sizeof(name), "ksm");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, 64 * PAGE, MAP_PRIVATE, 'm'));
	ASSERT_EQ(0, madvise(p, 64 * PAGE, MADV_MERGEABLE));
	ASSERT_EQ(0, write_file(KSM "sleep_millisecs", "0"));
	ASSERT_EQ(0, write_file(KSM "pages_to_scan", "1000"));
	ASSERT_EQ(0, write_file(KSM "run", "1"));
	for (waited = 0; waited < 200 && ksm_pages_sharing() < 32; waited++)
		usleep(100000);
	if (ksm_pages_sharing() < 32) {
		write_file(KSM "run", "2");
		SKIP(return, "ksmd merged nothing in 20 s");
	}
	cow = vm_event("cow_ksm");
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	/* Each merged page was copied out of the KSM page by mshare(). */
	TH_LOG("cow_ksm: %ld before mshare(), %ld after", cow,
	       vm_event("cow_ksm"));
	EXPECT_LE(cow + 32, vm_event("cow_ksm"));
	p[PAGE] = 'n';
	EXPECT_EQ('m', p[0]);
	EXPECT_EQ('m', p[2 * PAGE]);
	errno = 0;
	EXPECT_EQ(-1, madvise(p, 64 * PAGE, MADV_MERGEABLE));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, write_file(KSM "run", "2"));
	EXPECT_EQ(0, sys_mshare_unlink(name));
	ASSERT_EQ(0, munmap((void *)BASE, UNIT));
}

static int uffd_register(void *addr, size_t len)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {
		.range = { (unsigned long)addr, len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	int fd = syscall(__NR_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);

	if (fd < 0 || ioctl(fd, UFFDIO_API, &api))
		return -2;
	if (ioctl(fd, UFFDIO_REGISTER, &reg)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * userfaultfd is per process; a region's faults are resolved in its host.
 * A window cannot be registered, and a registered range cannot become a
 * region.
 */
TEST(userfaultfd_and_regions_exclude_each_other)
{
	char name[64];
	int fd;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	region_name(name, sizeof(name), "uffd");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, 16 * PAGE, MAP_PRIVATE, 'u'));
	fd = uffd_register((void *)BASE, 16 * PAGE);
	if (fd == -2)
		SKIP(return, "kernel without userfaultfd");
	ASSERT_LE(0, fd);
	errno = 0;
	EXPECT_EQ(-1, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				 0600));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, sys_mshare(name, BASE, UNIT, O_RDWR, 0));
	EXPECT_EQ(ENOENT, errno);
	close(fd);
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	errno = 0;
	EXPECT_EQ(-1, uffd_register((void *)BASE, 16 * PAGE));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ('u', *(char *)BASE);
	EXPECT_EQ(0, sys_mshare_unlink(name));
	ASSERT_EQ(0, munmap((void *)BASE, UNIT));
}

/* A read-only sharer may not pin the region's memory either. */
static int mlock_read_only(const char *name)
{
	if (munmap((void *)BASE, UNIT) ||
	    sys_mshare(name, BASE, UNIT, O_RDONLY, 0))
		return 1;
	if (mlock((void *)(BASE + 1024 * MiB), PAGE) != -1 || errno != EACCES)
		return 2;
	return 0;
}

/*
 * mlock() in a window locks the region's mappings, for every sharer: the
 * pages count in Mlocked, and in the region's locked_vm, not in the
 * caller's VmLck.  munlock() undoes it; a hole gives ENOMEM as it does
 * outside; mlockall() leaves windows alone; MAP_LOCKED through a window
 * locks too.
 */
TEST(mlock_in_a_window_locks_the_region)
{
	char *p = (char *)(BASE + 1024 * MiB), name[64];
	long before, locked, after;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	region_name(name, sizeof(name), "mlock");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, PAGE, MAP_SHARED, 'l'));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0644));
	ASSERT_EQ(p, mmap(p, 4 * MiB, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	before = settled_meminfo_kib("Mlocked");
	ASSERT_EQ(0, mlock(p, 4 * MiB));
	locked = settled_meminfo_kib("Mlocked");
	EXPECT_EQ(0, status_kib("VmLck"));
	EXPECT_EQ(0, in_child(mlock_read_only, name));
	EXPECT_EQ(0, munlock(p, 4 * MiB));
	after = settled_meminfo_kib("Mlocked");
	TH_LOG("Mlocked: %ld kB before, %ld kB after mlock, %ld kB after munlock",
	       before, locked, after);
	EXPECT_LE(before + 4096, locked);
	EXPECT_GT(before + 64, after);

	errno = 0;
	EXPECT_EQ(-1, mlock(p - MiB, 2 * MiB));
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_EQ(0, mlockall(MCL_CURRENT));
	EXPECT_EQ(0, munlockall());
	EXPECT_GT(before + 64, settled_meminfo_kib("Mlocked"));
	EXPECT_EQ(0, munmap(p, 4 * MiB));

	/* MLOCK_ONFAULT: locked as faulted in, not before. */
	ASSERT_EQ(p, mmap(p, 4 * MiB, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	ASSERT_EQ(0, mlock2(p, 4 * MiB, MLOCK_ONFAULT));
	EXPECT_GT(before + 64, settled_meminfo_kib("Mlocked"));
	memset(p, 1, MiB);
	EXPECT_LE(before + 1024, settled_meminfo_kib("Mlocked"));
	EXPECT_GT(before + 2048, settled_meminfo_kib("Mlocked"));
	EXPECT_EQ(0, munmap(p, 4 * MiB));

	ASSERT_EQ(p, mmap(p, 4 * MiB, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED | MAP_LOCKED,
			  -1, 0));
	EXPECT_LE(before + 4096, settled_meminfo_kib("Mlocked"));
	EXPECT_EQ(0, munmap(p, 4 * MiB));
	EXPECT_GT(before + 64, settled_meminfo_kib("Mlocked"));
	EXPECT_EQ('l', *(char *)BASE);
	EXPECT_EQ(0, sys_mshare_unlink(name));
	ASSERT_EQ(0, munmap((void *)BASE, UNIT));
}

static int as_nobody_in_child(int (*fn)(const char *), const char *arg)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		if (setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(100);
		_exit(fn(arg));
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Creating a name needs write permission on msharefs' root. */
static int create_in_readonly_root(const char *name)
{
	/* Forked with the parent's window: make room for a mapping. */
	if (munmap((void *)BASE, UNIT) ||
	    map_fixed(BASE, PAGE, MAP_SHARED, 0) == MAP_FAILED)
		return 1;
	if (sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR, 0600) != -1)
		return 2;
	return errno == EACCES ? 0 : 3;
}

/* Below mmap_min_addr, as for mmap(): EPERM. */
static int create_at_zero(const char *name)
{
	if (sys_mshare(name, 0, UNIT, O_CREAT | O_EXCL | O_RDWR, 0600) != -1)
		return 1;
	return errno == EPERM ? 0 : 2;
}

/* The owner may remove it, once root gave it away. */
static int unlink_as_owner(const char *name)
{
	return sys_mshare_unlink(name) ? 1 : 0;
}

/*
 * The region files: read() gives start and size, chmod and chown work,
 * the size cannot change, mshare_info cannot be removed, and creating a
 * name needs write permission on the root, as creat(2) does.
 */
TEST(msharefs_files_guard_their_regions)
{
	char name[64], path[128], minaddr[32];
	struct mshare_info info;
	struct stat st;
	int fd;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (geteuid() != 0)
		SKIP(return, "needs root to switch to an unprivileged uid");
	region_name(name, sizeof(name), "files");
	snprintf(path, sizeof(path), MSHARE_MOUNT_POINT "/%s", name);
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, PAGE, MAP_SHARED, 'f'));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0640));
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_EQ(0640, st.st_mode & 07777);
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(sizeof(info), read(fd, &info, sizeof(info)));
	close(fd);
	EXPECT_EQ(BASE, info.start);
	EXPECT_EQ(UNIT, info.size);

	EXPECT_EQ(-1, truncate(path, 0));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(0, stat(path, &st));
	EXPECT_EQ(sizeof(info), st.st_size);
	EXPECT_EQ(-1, unlink(MSHARE_MOUNT_POINT "/" MSHARE_INFO_FILE));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(0, access(MSHARE_MOUNT_POINT "/" MSHARE_INFO_FILE, R_OK));

	ASSERT_EQ(0, chmod(MSHARE_MOUNT_POINT, 0755));
	EXPECT_EQ(0, as_nobody_in_child(create_in_readonly_root, "files.ro"));
	ASSERT_EQ(0, chmod(MSHARE_MOUNT_POINT, 01777));
	if (!read_file("/proc/sys/vm/mmap_min_addr", minaddr, sizeof(minaddr)) &&
	    atol(minaddr) > 0)
		EXPECT_EQ(0, as_nobody_in_child(create_at_zero, "files.zero"));

	EXPECT_EQ(0, chmod(path, 0604));
	EXPECT_EQ(0, chown(path, 65534, 65534));
	EXPECT_EQ(0, stat(path, &st));
	EXPECT_EQ(0604, st.st_mode & 07777);
	EXPECT_EQ(65534, st.st_uid);
	EXPECT_EQ(0, as_nobody_in_child(unlink_as_owner, name));
	EXPECT_EQ(-1, access(path, F_OK));
	EXPECT_EQ('f', *(char *)BASE);
	ASSERT_EQ(0, munmap((void *)BASE, UNIT));
}

TEST_HARNESS_MAIN
