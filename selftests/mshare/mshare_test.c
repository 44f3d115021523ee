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
#include <sys/uio.h>
#include <liburing.h>
#include <linux/mshare.h>

#include "../kselftest_harness.h"

#define UNIT		(512UL << 30)
#define BASE		(2UL << 40)	/* 2 TiB, as in the original proposal */
#define PAGE		4096UL
#define MiB		(1UL << 20)

static long sys_mshare(const char *name, unsigned long addr, unsigned long len,
		       int oflags, mode_t mode)
{
	return syscall(__NR_mshare, name, addr, len, oflags, mode);
}

static long sys_mshare_unlink(const char *name)
{
	return syscall(__NR_mshare_unlink, name);
}

static bool mshare_present(void)
{
	struct statfs st;

	return statfs(MSHARE_MOUNT_POINT, &st) == 0 && st.f_type == MSHARE_MAGIC;
}

#define REQUIRE_MSHARE()						\
	do {								\
		if (!mshare_present())					\
			SKIP(return, "kernel without mshare");		\
	} while (0)

static void region_name(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "%s.%d", tag, getpid());
}

/* Map @size bytes of shared anonymous memory at @addr, filled with @fill. */
static void *map_fixed(unsigned long addr, size_t size, int flags, int fill)
{
	void *p = mmap((void *)addr, size, PROT_READ | PROT_WRITE,
		       flags | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p != MAP_FAILED && fill >= 0)
		memset(p, fill, size);
	return p;
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

static unsigned long read_every_page(const volatile char *p, size_t size)
{
	unsigned long sum = 0;
	size_t off;

	for (off = 0; off < size; off += PAGE)
		sum += p[off];
	return sum;
}

/* PageTables from /proc/meminfo, in KiB, with per-CPU deltas folded. */
static long page_tables_kib(void)
{
	char line[128];
	long kib = -1;
	FILE *f;
	int fd;

	usleep(300000);
	fd = open("/proc/sys/vm/stat_refresh", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0)
			kib = -1;
		close(fd);
	}
	f = fopen("/proc/meminfo", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "PageTables: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
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

static sigjmp_buf fault_jmp;

static void on_fault(int sig)
{
	siglongjmp(fault_jmp, sig);
}

/* The signal that touching @p raises (0 if none). */
static int touch_signal(volatile char *p, bool write)
{
	struct sigaction sa = { .sa_handler = on_fault }, old_segv, old_bus;
	int sig;

	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
	sig = sigsetjmp(fault_jmp, 1);
	if (!sig) {
		if (write)
			*p = 1;
		else
			(void)*p;
	}
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	return sig;
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

	REQUIRE_MSHARE();
	region_name(name, sizeof(name), "rfc");
	/* NORESERVE: 512 GiB is more than the test guest could commit. */
	addr = mmap((void *)BASE, UNIT, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE |
		    MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, addr);
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_RDWR | O_EXCL,
				0600));
	strcpy(addr, text);

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

TEST(attacher_reads_populated_region_without_faults)
{
	const size_t size = 256 * MiB;
	char name[64], shm[64];
	long before, mshare_faults, shm_faults;
	unsigned long sum;
	char *p;
	int fd;

	REQUIRE_MSHARE();
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

FIXTURE(slow) {};
FIXTURE_SETUP(slow) {}
FIXTURE_TEARDOWN(slow) {}

/* 128 processes under TCG: more than the default 30 s. */
TEST_F_TIMEOUT(slow, page_tables_stay_flat_as_sharers_grow, 600)
{
	/* One process's page tables for 64 MiB of 4 KiB pages. */
	const long one_kib = 64 * MiB / 512 / 1024;
	long mshare_kib, shm_kib;
	char name[64];

	REQUIRE_MSHARE();
	region_name(name, sizeof(name), "flat");
	ASSERT_EQ(0, in_child(populate_and_exit, name));
	mshare_kib = page_tables_of(attach_and_wait, name);
	shared_memfd = memfd_create("flat", 0);
	ASSERT_LE(0, shared_memfd);
	ASSERT_EQ(0, ftruncate(shared_memfd, 64 * MiB));
	shm_kib = page_tables_of(map_memfd_and_wait, NULL);
	close(shared_memfd);
	TH_LOG("%d sharers add %ld KiB of page tables with mshare, %ld KiB with shared memfd (one process: %ld KiB)",
	       SHARERS, mshare_kib, shm_kib, one_kib);
	EXPECT_GT(2 * one_kib, mshare_kib);
	EXPECT_LT(SHARERS / 2 * one_kib, shm_kib);
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

TEST(writes_are_seen_both_ways_and_private_memory_is_shared)
{
	volatile char *shared = (char *)BASE;
	volatile char *private = (char *)(BASE + 64 * MiB);
	char name[64];
	int status;
	pid_t pid;

	REQUIRE_MSHARE();
	region_name(name, sizeof(name), "rw");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, 4 * PAGE, MAP_SHARED, 0));
	ASSERT_NE(MAP_FAILED, map_fixed(BASE + 64 * MiB, 4 * PAGE,
					MAP_PRIVATE, 0));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	shared[0] = 'a';
	private[0] = 'p';

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* Not a sharer by inheritance: attach by name. */
		munmap((void *)BASE, UNIT);
		if (sys_mshare(name, BASE, UNIT, O_RDWR, 0))
			_exit(1);
		if (shared[0] != 'a' || private[0] != 'p')
			_exit(2);
		shared[PAGE] = 'b';
		private[PAGE] = 'q';	/* not a COW copy: seen by all */
		while (shared[0] != 'c')
			usleep(1000);
		_exit(0);
	}
	while (shared[PAGE] != 'b')
		usleep(1000);
	EXPECT_EQ('q', private[PAGE]);
	shared[0] = 'c';
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

TEST(new_mapping_by_one_sharer_appears_in_the_others)
{
	volatile char *late = (char *)(BASE + 128 * MiB);
	char name[64], c = 0;
	int go[2], done[2], status;
	pid_t pid;

	REQUIRE_MSHARE();
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
		_exit(late[0] == 'n' && late[PAGE] == 'm' ? 0 : 3);
	}
	ASSERT_EQ(1, read(done[0], &c, 1));
	ASSERT_EQ(late, mmap((void *)late, 2 * PAGE, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	late[0] = 'n';
	late[PAGE] = 'm';
	ASSERT_EQ(1, write(go[1], &c, 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

TEST(hole_gives_sigbus)
{
	char name[64];

	REQUIRE_MSHARE();
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
	volatile char *p = (char *)BASE;

	if (sys_mshare(name, BASE, UNIT, O_RDONLY, 0))
		return 1;
	if (p[0] != 'r' || touch_signal(p, false))
		return 2;
	if (touch_signal(p, true) != SIGSEGV)
		return 3;
	if (mmap((void *)(BASE + MiB), PAGE, PROT_READ,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED ||
	    errno != EACCES)
		return 4;
	if (munmap((void *)BASE, PAGE) != -1 || errno != EACCES)
		return 5;
	if (mprotect((void *)BASE, PAGE, PROT_READ | PROT_WRITE) != -1 ||
	    errno != EACCES)
		return 6;
	if (p[0] != 'r')
		return 7;
	return 0;
}

TEST(read_only_sharer_can_read_but_not_write_or_change_the_range)
{
	char name[64];

	REQUIRE_MSHARE();
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
	volatile char *p = (char *)BASE;
	char name[64];
	int status;
	pid_t pid;

	REQUIRE_MSHARE();
	region_name(name, sizeof(name), "fork");
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, 2 * PAGE, MAP_SHARED, 'f'));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (p[0] != 'f')
			_exit(1);
		p[PAGE] = 'k';
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ('k', p[PAGE]);
	EXPECT_EQ('f', p[0]);
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

TEST(unlink_keeps_sharers_working_and_frees_with_the_last)
{
	volatile char *p = (char *)BASE;
	char name[64], path[128];
	long before, after;

	REQUIRE_MSHARE();
	region_name(name, sizeof(name), "unlink");
	snprintf(path, sizeof(path), MSHARE_MOUNT_POINT "/%s", name);
	before = page_tables_kib();
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, 32 * MiB, MAP_SHARED, 'u'));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	ASSERT_EQ(0, sys_mshare_unlink(name));
	EXPECT_EQ(-1, sys_mshare(name, BASE, UNIT, O_RDWR, 0));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, access(path, F_OK));
	EXPECT_EQ('u', p[0]);
	p[0] = 'v';
	EXPECT_EQ('v', p[0]);
	ASSERT_EQ(0, munmap((void *)BASE, UNIT));
	after = page_tables_kib();
	TH_LOG("PageTables: %ld kB before, %ld kB after", before, after);
	/* 32 MiB of PTEs is 64 KiB: nothing of it may stay behind. */
	EXPECT_GT(before + 16, after);
}

TEST(bad_arguments_get_their_errno)
{
	char name[64], longname[NAME_MAX + 2];

	REQUIRE_MSHARE();
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
	EXPECT_EQ(MAP_FAILED, mremap((void *)BASE, PAGE, 2 * PAGE, MREMAP_MAYMOVE));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

TEST(mode_forbids_other_users)
{
	char name[64];
	int status;
	pid_t pid;

	REQUIRE_MSHARE();
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

	REQUIRE_MSHARE();
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

/* A region with a control page at BASE and a target page 64 MiB in. */
static int create_control_and_target(const char *name)
{
	if (map_fixed(BASE, PAGE, MAP_SHARED, 0) == MAP_FAILED ||
	    map_fixed(BASE + 64 * MiB, PAGE, MAP_SHARED, 0) == MAP_FAILED)
		return -1;
	return sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR, 0600);
}

#define TLB_ROUNDS 500

/*
 * B spins on CPU 1 reading a page while A, on CPU 0, unmaps it and maps a
 * new page with the next value there.  Once A has published that round,
 * B may see the new value or a hole, never the old page: every flush of
 * the region's tables must reach B's CPU.
 */
TEST_F_TIMEOUT(slow, tlb_flushes_reach_every_sharer_cpu, 600)
{
	volatile unsigned long *done = (unsigned long *)BASE;
	volatile unsigned long *target = (unsigned long *)(BASE + 64 * MiB);
	unsigned long round;
	char name[64];
	int status;
	pid_t pid;

	REQUIRE_MSHARE();
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "needs two CPUs");
	region_name(name, sizeof(name), "tlb");
	ASSERT_EQ(0, create_control_and_target(name));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct sigaction sa = { .sa_handler = on_fault };
		unsigned long seen, published;

		pin_to_cpu(1);
		sigaction(SIGBUS, &sa, NULL);
		for (;;) {
			published = __atomic_load_n(done, __ATOMIC_ACQUIRE);
			if (published == TLB_ROUNDS)
				_exit(0);
			if (sigsetjmp(fault_jmp, 1))
				continue;	/* the hole between the two */
			seen = *target;
			/* 0: the new page before A writes it. */
			if (seen && seen < published)
				_exit(1);	/* a stale translation */
		}
	}
	pin_to_cpu(0);
	for (round = 1; round <= TLB_ROUNDS; round++) {
		ASSERT_EQ(0, munmap((void *)target, PAGE));
		ASSERT_EQ(target, mmap((void *)target, PAGE,
				       PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
				       -1, 0));
		*target = round;
		__atomic_store_n(done, round, __ATOMIC_RELEASE);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

/*
 * The same for mprotect(): once A has published that the page is
 * read-only, a write by B on the other CPU must fault.
 */
TEST_F_TIMEOUT(slow, mprotect_reaches_every_sharer_cpu, 600)
{
	volatile unsigned long *state = (unsigned long *)BASE;
	volatile unsigned long *target = (unsigned long *)(BASE + 64 * MiB);
	unsigned long round;
	char name[64];
	int status;
	pid_t pid;

	REQUIRE_MSHARE();
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "needs two CPUs");
	region_name(name, sizeof(name), "tlbro");
	ASSERT_EQ(0, create_control_and_target(name));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct sigaction sa = { .sa_handler = on_fault };
		unsigned long before, after;

		pin_to_cpu(1);
		sigaction(SIGSEGV, &sa, NULL);
		for (;;) {
			before = __atomic_load_n(state, __ATOMIC_ACQUIRE);
			if (before == 2 * TLB_ROUNDS)
				_exit(0);
			if (sigsetjmp(fault_jmp, 1))
				continue;	/* read-only: as it must be */
			*target = before;
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

TEST_HARNESS_MAIN
