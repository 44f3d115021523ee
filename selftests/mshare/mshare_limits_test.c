// SPDX-License-Identifier: GPL-2.0
/*
 * Containment of a region's memory: memory cgroups, RLIMIT_AS, msharefs
 * limits and per-process reporting (smaps).
 *
 * A region's memory is charged to its creator's memory cgroup.  The rest
 * describes behaviour the kernel does not have yet: a window counts
 * 512 GiB in a sharer's address-space size, msharefs takes no size= or
 * nr_regions=, and smaps gives every sharer the whole of a window's Rss
 * as its Pss.  Those tests (fixture "pending") skip unless
 * MSHARE_PENDING=1 is set; with it, they show what is missing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "mshare_util.h"

#define BASE		(2UL << 40)
#define CGROUP_ROOT	"/sys/fs/cgroup"
#define CGROUP		CGROUP_ROOT "/mshare-limits"

/* Pending behaviour: skipped unless MSHARE_PENDING=1. */
FIXTURE(pending) {};

FIXTURE_SETUP(pending)
{
	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (!getenv("MSHARE_PENDING"))
		SKIP(return, "containment not implemented yet (MSHARE_PENDING=1 runs it)");
}

FIXTURE_TEARDOWN(pending) {}

static int reap(pid_t pid)
{
	int status;

	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A cgroup v2 group with the memory controller and @max bytes. */
static int make_memory_cgroup(const char *max)
{
	struct statfs st;

	mkdir(CGROUP_ROOT, 0755);
	if (statfs(CGROUP_ROOT, &st) || st.f_type != 0x63677270 /* cgroup2 */)
		if (mount("none", CGROUP_ROOT, "cgroup2", 0, NULL))
			return -1;
	if (write_file(CGROUP_ROOT "/cgroup.subtree_control", "+memory"))
		return -1;
	rmdir(CGROUP);
	if (mkdir(CGROUP, 0755))
		return -1;
	if (write_file(CGROUP "/memory.max", max))
		return -1;
	write_file(CGROUP "/memory.swap.max", "0");
	return 0;
}

/*
 * Runs in the cgroup: creates a region over a 512 GiB mapping and writes
 * 256 MiB into it.  Exits 0 if every write went through.
 */
static int fill_region_in_cgroup(void)
{
	char pid[16], name[64], *p;
	size_t off;

	snprintf(pid, sizeof(pid), "%d", getpid());
	if (write_file(CGROUP "/cgroup.procs", pid))
		return 1;
	snprintf(name, sizeof(name), "memcg.%d", getpid());
	p = mmap((void *)BASE, UNIT, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE |
		 MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return 2;
	if (sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR, 0600))
		return 3;
	/* Dies with its last user. */
	sys_mshare_unlink(name);
	for (off = 0; off < 256 * MiB; off += PAGE)
		poke(&p[off], 1);
	return 0;
}

/*
 * A region created in a cgroup with memory.max=64M holds its creator to
 * 64 MiB: writing 256 MiB into it gets the writer OOM-killed inside the
 * cgroup.  When the last user of the unlinked region is gone, so is the
 * charge.
 */
TEST(region_memory_is_held_to_the_creators_memory_max)
{
	long peak, current;
	int status;
	pid_t pid;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (make_memory_cgroup("64M"))
		SKIP(return, "no cgroup v2 memory controller");
	/* The OOM killer's report dumps a stack: tell the harness. */
	write_file("/dev/kmsg", "mshare: expected OOM kill begins\n");
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(fill_region_in_cgroup());
	status = reap(pid);
	write_file("/dev/kmsg", "mshare: expected OOM kill ends\n");
	peak = read_long(CGROUP "/memory.peak");
	usleep(300000);
	current = read_long(CGROUP "/memory.current");
	TH_LOG("writer's status %d; memory.peak %ld KiB, memory.current %ld KiB after its exit",
	       status, peak / 1024, current / 1024);
	/* Killed by the cgroup's OOM killer at its limit. */
	EXPECT_EQ(128 + SIGKILL, status);
	EXPECT_LE(60 * MiB, peak);
	/* The region went with its last user, and its charge with it. */
	EXPECT_GT(MiB, current);
	EXPECT_EQ(0, rmdir(CGROUP));
}

/* A window counts the region's mappings, not its 512 GiB, in RLIMIT_AS. */
TEST_F(pending, a_window_leaves_room_under_rlimit_as)
{
	struct rlimit lim = { 1UL << 30, 1UL << 30 };
	char name[64];
	pid_t pid;

	snprintf(name, sizeof(name), "rlimit.%d", getpid());
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, MiB, MAP_SHARED, 'r'));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		void *p;

		if (setrlimit(RLIMIT_AS, &lim))
			_exit(1);
		p = mmap(NULL, MiB, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		_exit(p == MAP_FAILED ? 100 + errno : 0);
	}
	EXPECT_EQ(0, reap(pid)) TH_LOG("100 + errno of mmap(1 MiB) under RLIMIT_AS=1G");
	EXPECT_EQ(0, sys_mshare_unlink(name));
	EXPECT_EQ(0, munmap((void *)BASE, UNIT));
}

/* msharefs takes size= and nr_regions= as tmpfs takes size=, and df works. */
TEST_F(pending, msharefs_has_size_and_region_limits)
{
	struct statfs st;
	int ret;

	ret = mount("none", MSHARE_MOUNT_POINT, "msharefs", MS_REMOUNT,
		    "size=64M,nr_regions=16");
	EXPECT_EQ(0, ret) TH_LOG("remount with size=, nr_regions=: %s",
				 ret ? strerror(errno) : "ok");
	ASSERT_EQ(0, statfs(MSHARE_MOUNT_POINT, &st));
	TH_LOG("statfs: %lu blocks of %ld bytes, %lu files",
	       (unsigned long)st.f_blocks, (long)st.f_bsize,
	       (unsigned long)st.f_files);
	EXPECT_EQ(64 * MiB, st.f_blocks * st.f_bsize);
	EXPECT_EQ(16, st.f_files);
}

/* Rss and Pss of the window in this process's smaps, in KiB. */
static int window_smaps(long *rss, long *pss)
{
	char line[256];
	bool in = false;
	FILE *f = fopen("/proc/self/smaps", "r");

	*rss = *pss = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start;

		if (sscanf(line, "%lx-", &start) == 1 && strchr(line, ' '))
			in = start == BASE;
		else if (in && sscanf(line, "Rss: %ld", rss) != 1)
			sscanf(line, "Pss: %ld", pss);
	}
	fclose(f);
	return 0;
}

/*
 * Each of N sharers of 16 MiB of resident region memory shows Rss 16 MiB
 * and Pss 16 MiB / N for its window.
 */
TEST_F(pending, smaps_shows_a_windows_rss_and_pss_share)
{
	static const int sharers[] = { 1, 2, 4 };
	char name[64];
	unsigned int i;

	snprintf(name, sizeof(name), "smaps.%d", getpid());
	ASSERT_NE(MAP_FAILED, map_fixed(BASE, 16 * MiB, MAP_SHARED, 's'));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	for (i = 0; i < ARRAY_SIZE(sharers); i++) {
		int n, pipes[2];
		pid_t pids[4];
		long rss, pss;
		char c;

		ASSERT_EQ(0, pipe(pipes));
		/* This process and n - 1 children share the region. */
		for (n = 1; n < sharers[i]; n++) {
			pids[n] = fork();
			if (pids[n] == 0) {
				if (read(pipes[0], &c, 1) < 0)
					_exit(1);
				_exit(0);
			}
		}
		usleep(100000);
		window_smaps(&rss, &pss);
		TH_LOG("%d sharers: Rss %ld kB, Pss %ld kB", sharers[i], rss, pss);
		EXPECT_EQ(16 * 1024, rss);
		EXPECT_GE(16 * 1024 / sharers[i] + 8, pss);
		EXPECT_LE(16 * 1024 / sharers[i] - 8, pss);
		close(pipes[1]);
		for (n = 1; n < sharers[i]; n++)
			reap(pids[n]);
		close(pipes[0]);
	}
	EXPECT_EQ(0, sys_mshare_unlink(name));
	EXPECT_EQ(0, munmap((void *)BASE, UNIT));
}

TEST_HARNESS_MAIN
