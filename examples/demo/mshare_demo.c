// SPDX-License-Identifier: GPL-2.0
/*
 * mshare_demo: what sharing page tables saves.  A creator populates a
 * region; N processes attach it and read every page.  The same is done
 * with POSIX shm, and the page-table memory (PageTables in /proc/meminfo)
 * and minor faults per process are printed side by side.
 *
 *   mshare_demo [-n PROCESSES] [-s MIB]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/mshare.h>

#define UNIT	(512UL << 30)
#define BASE	(2UL << 40)
#define PAGE	4096UL

enum backend { MSHARE, POSIX_SHM };

static size_t size = 256UL << 20;
static int nproc_attach = 32;
static const char *name = "demo";

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
			perror("stat_refresh");
		close(fd);
	}
	f = fopen("/proc/meminfo", "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "PageTables: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* One attacher: map, read every page, report faults, wait. */
static void attacher(enum backend b, int report)
{
	struct rusage before, after;
	volatile char *p;
	unsigned long sum = 0;
	long faults;
	size_t off;
	int fd;

	getrusage(RUSAGE_SELF, &before);
	if (b == MSHARE) {
		if (syscall(__NR_mshare, name, BASE, UNIT, O_RDONLY, 0))
			die("mshare attach");
		p = (char *)BASE;
	} else {
		fd = shm_open("/mshare-demo", O_RDONLY, 0);
		if (fd < 0)
			die("shm_open");
		p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			die("mmap");
	}
	for (off = 0; off < size; off += PAGE)
		sum += p[off];
	getrusage(RUSAGE_SELF, &after);
	faults = after.ru_minflt - before.ru_minflt;
	if (write(report, &faults, sizeof(faults)) != sizeof(faults))
		exit(2);
	pause();
	exit(sum == 0x11UL * (size / PAGE) ? 0 : 3);
}

static void populate(enum backend b)
{
	char *p;
	int fd;

	if (b == MSHARE) {
		p = mmap((void *)BASE, size, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (p == MAP_FAILED)
			die("mmap");
		memset(p, 0x11, size);
		if (syscall(__NR_mshare, name, BASE, UNIT,
			    O_CREAT | O_EXCL | O_RDWR, 0644))
			die("mshare create");
		/* The region outlives its creator until it is unlinked. */
		munmap(p, UNIT);
	} else {
		fd = shm_open("/mshare-demo", O_CREAT | O_EXCL | O_RDWR, 0644);
		if (fd < 0 || ftruncate(fd, size))
			die("shm_open");
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			die("mmap");
		memset(p, 0x11, size);
		munmap(p, size);
		close(fd);
	}
}

/* Idle processes of the same kind, to subtract their own page tables. */
static void idler(enum backend b, int report)
{
	long none = 0;

	if (write(report, &none, sizeof(none)) != sizeof(none))
		exit(2);
	pause();
	exit(0);
}

/* PageTables added by nproc_attach processes running @fn; their faults. */
static long spawn(void (*fn)(enum backend, int), enum backend b, long *faults)
{
	pid_t *pids = calloc(nproc_attach, sizeof(*pids));
	long base, added, f, total = 0;
	int fds[2], i;

	base = page_tables_kib();
	if (!pids || pipe(fds))
		die("pipe");
	for (i = 0; i < nproc_attach; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			fn(b, fds[1]);
	}
	for (i = 0; i < nproc_attach; i++) {
		if (read(fds[0], &f, sizeof(f)) != sizeof(f))
			die("read");
		total += f;
	}
	added = page_tables_kib() - base;
	for (i = 0; i < nproc_attach; i++) {
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
	close(fds[0]);
	close(fds[1]);
	free(pids);
	*faults = total / nproc_attach;
	return added;
}

static void run(enum backend b, long *pt_kib, long *faults)
{
	long idle_faults;

	populate(b);
	*pt_kib = spawn(attacher, b, faults) - spawn(idler, b, &idle_faults);
	if (b == MSHARE)
		syscall(__NR_mshare_unlink, name);
	else
		shm_unlink("/mshare-demo");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "processes", required_argument, NULL, 'n' },
		{ "size-mib", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	long m_pt, m_faults, s_pt, s_faults;
	struct statfs st;
	int c;

	while ((c = getopt_long(argc, argv, "n:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			nproc_attach = atoi(optarg);
			break;
		case 's':
			size = strtoul(optarg, NULL, 0) << 20;
			break;
		default:
			printf("usage: %s [-n PROCESSES] [-s MIB]\n", argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	if (statfs(MSHARE_MOUNT_POINT, &st) || st.f_type != MSHARE_MAGIC) {
		fprintf(stderr, "this kernel has no mshare\n");
		return 1;
	}
	printf("%d processes attach a %zu MiB region populated by another process and read every page\n\n",
	       nproc_attach, size >> 20);
	run(MSHARE, &m_pt, &m_faults);
	run(POSIX_SHM, &s_pt, &s_faults);
	printf("%-12s %28s %26s\n", "", "page tables for the mapping",
	       "minor faults per process");
	printf("%-12s %24ld KiB %26ld\n", "mshare", m_pt, m_faults);
	printf("%-12s %24ld KiB %26ld\n", "POSIX shm", s_pt, s_faults);
	printf("\n(beyond what %d idle processes cost; one process's PTEs for %zu MiB: %zu KiB)\n",
	       nproc_attach, size >> 20, (size >> 12) * 8 >> 10);
	if (m_pt > 0)
		printf("mshare used %.0fx less page-table memory\n",
		       (double)s_pt / m_pt);
	else
		printf("mshare: the %d sharers added no page-table memory at all\n",
		       nproc_attach);
	return 0;
}
