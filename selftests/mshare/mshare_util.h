/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the mshare selftests share: the system calls, whether the kernel
 * has mshare, small file and /proc readers, and accesses that may fault.
 */
#ifndef __MSHARE_UTIL_H
#define __MSHARE_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>
#include <linux/mshare.h>

#define UNIT		(512UL << 30)	/* x86_64: one P4D entry */
#define PAGE		4096UL
#define MiB		(1024UL * 1024)

/*
 * One real load or store of shared memory each, where it is written: the
 * tests check what an access does (the value, a fault, the faults and TLB
 * flushes it causes), so none may be elided, merged or hoisted out of a
 * loop, and none may read a value the compiler kept.
 */
#define peek(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define poke(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)

static inline long sys_mshare(const char *name, unsigned long addr,
			      unsigned long len, int oflags, mode_t mode)
{
	return syscall(__NR_mshare, name, addr, len, oflags, mode);
}

static inline long sys_mshare_unlink(const char *name)
{
	return syscall(__NR_mshare_unlink, name);
}

/*
 * The end of the user address space (TASK_SIZE): 47 bits less a page with
 * 4-level paging, 56 bits less a page with 5-level paging, where an
 * address above the 47-bit limit can be mapped when asked for explicitly.
 */
static inline unsigned long user_space_end(void)
{
	static unsigned long end;
	void *probe = (void *)(1UL << 47), *p;

	if (end)
		return end;
	p = mmap(probe, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
		 MAP_FIXED_NOREPLACE, -1, 0);
	if (p == probe) {
		munmap(p, 4096);
		end = (1UL << 56) - 4096;
	} else {
		end = (1UL << 47) - 4096;
	}
	return end;
}

/* True if msharefs is mounted at its mount point. */
static inline bool mshare_present(void)
{
	struct statfs st;

	return statfs(MSHARE_MOUNT_POINT, &st) == 0 && st.f_type == MSHARE_MAGIC;
}

/* Regions in msharefs, not counting the info file nor hidden names. */
static inline int msharefs_entries(void)
{
	DIR *dir = opendir(MSHARE_MOUNT_POINT);
	struct dirent *e;
	int n = 0;

	if (!dir)
		return -1;
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.' && strcmp(e->d_name, MSHARE_INFO_FILE);
	closedir(dir);
	return n;
}

/*
 * Map @size bytes of anonymous memory (@flags: MAP_SHARED or MAP_PRIVATE)
 * at @addr, filled with @fill unless it is negative.
 */
static inline void *map_fixed(unsigned long addr, size_t size, int flags,
			      int fill)
{
	void *p = mmap((void *)addr, size, PROT_READ | PROT_WRITE,
		       flags | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p != MAP_FAILED && fill >= 0)
		memset(p, fill, size);
	return p;
}

/* Write @val to a sysfs or procfs file; 0 on success. */
static inline int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), ret = -1;

	if (fd < 0)
		return -1;
	if (write(fd, val, strlen(val)) == (ssize_t)strlen(val))
		ret = 0;
	close(fd);
	return ret;
}

/* Read @path into @buf as a string; 0 on success. */
static inline int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* The number @path holds, or -1 if it cannot be read or is empty. */
static inline long read_long(const char *path)
{
	char buf[32];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return atol(buf);
}

/*
 * The number on the first line of @path that starts with @field followed
 * by @sep (": " in /proc/meminfo, " " in /proc/vmstat), or -1.
 */
static inline long proc_field(const char *path, const char *field,
			      const char *sep)
{
	char line[256], fmt[64];
	long val = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	snprintf(fmt, sizeof(fmt), "%s%s%%ld", field, sep);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, fmt, &val) == 1)
			break;
	fclose(f);
	return val;
}

/* A /proc/meminfo field in KiB, with the per-CPU deltas folded. */
static inline long meminfo_kib(const char *field)
{
	write_file("/proc/sys/vm/stat_refresh", "1");
	return proc_field("/proc/meminfo", field, ": ");
}

/* The same after a pause, for memory just freed to reach the counters. */
static inline long settled_meminfo_kib(const char *field)
{
	usleep(300000);
	return meminfo_kib(field);
}

/* A counter from /proc/vmstat, or -1. */
static inline long vm_event(const char *field)
{
	return proc_field("/proc/vmstat", field, " ");
}

/* A field of /proc/self/status in KiB, or -1. */
static inline long status_kib(const char *field)
{
	return proc_field("/proc/self/status", field, ": ");
}

/*
 * Free pages on the per-CPU lists ("count:" in /proc/zoneinfo), in KiB:
 * MemFree leaves them out, and freed pages go there first, several MiB of
 * them, as many as the load at the time decides.  0 if unknown.
 */
static inline long pcp_free_kib(void)
{
	char line[256];
	long count, pages = 0;
	FILE *f = fopen("/proc/zoneinfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " count: %ld", &count) == 1)
			pages += count;
	fclose(f);
	return pages * (PAGE / 1024);
}

/*
 * KiB of free memory a KASAN kernel may hold back with nothing leaked:
 * with KASAN_VMALLOC, the shadow of vmalloc areas freed lazily (kernel
 * stacks of processes that exited) stays until the next purge, which
 * waits for lazy_max_pages() of them (32 MiB times fls(online CPUs));
 * the shadow is an eighth of that.  0 on a kernel without it.
 */
static inline long kasan_slack_kib(void)
{
	static long slack = -1;
	char line[256];
	FILE *f;
	int cpus;

	if (slack >= 0)
		return slack;
	slack = 0;
	f = fopen("/proc/kallsyms", "r");
	if (!f)
		return slack;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, " kasan_populate_vmalloc\n")) {
			cpus = sysconf(_SC_NPROCESSORS_ONLN);
			slack = 32 * 1024 * (32 - __builtin_clz(cpus)) / 8;
			break;
		}
	fclose(f);
	return slack;
}

/*
 * Empty slabs the caches keep around are noise: release them.  Shrinking
 * a cache also empties KASAN's quarantine of its objects, which would
 * otherwise hold freed memory for a while.
 */
static inline void shrink_slab_caches(void)
{
	DIR *dir = opendir("/sys/kernel/slab");
	char path[320];
	struct dirent *e;

	if (!dir)
		return;
	while ((e = readdir(dir)))
		if (e->d_name[0] != '.') {
			snprintf(path, sizeof(path), "/sys/kernel/slab/%s/shrink",
				 e->d_name);
			write_file(path, "1");
		}
	closedir(dir);
}

/*
 * Free memory in KiB, settled: MemFree plus the per-CPU free lists, after
 * a pause for memory just freed to reach the counters, with the page
 * cache dropped and the slab caches shrunk.
 */
static inline long free_kib(void)
{
	usleep(300000);
	write_file("/proc/sys/vm/drop_caches", "3");
	shrink_slab_caches();
	return meminfo_kib("MemFree") + pcp_free_kib();
}

/*
 * Accesses that may meet a hole (SIGBUS) or a protected page (SIGSEGV).
 * on_fault() jumps back to fault_jmp while guarded is set; otherwise it
 * restores the default action, and the faulting access, run again, takes
 * the process down.
 */
static sigjmp_buf fault_jmp;
static int guarded;

static inline void on_fault(int sig)
{
	if (!peek(&guarded)) {
		signal(sig, SIG_DFL);
		return;
	}
	siglongjmp(fault_jmp, sig);
}

/* on_fault() for SIGSEGV and SIGBUS, which GUARDED() may raise again. */
static inline void install_fault_handlers(void)
{
	struct sigaction sa = { .sa_handler = on_fault,
				.sa_flags = SA_NODEFER };

	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

/*
 * Runs @stmt, accesses that may fault, with sigsetjmp(fault_jmp, @savemask):
 * the signal they raised, or 0.  The signal fences keep the flag's stores
 * on their side of the accesses, as seen by the handler.
 */
#define GUARDED_MASK(savemask, stmt) ({					\
	int __sig;							\
									\
	poke(&guarded, 1);						\
	__atomic_signal_fence(__ATOMIC_SEQ_CST);			\
	__sig = sigsetjmp(fault_jmp, savemask);				\
	if (!__sig) {							\
		stmt;							\
	}								\
	__atomic_signal_fence(__ATOMIC_SEQ_CST);			\
	poke(&guarded, 0);						\
	__sig;								\
})

/* The same with install_fault_handlers(): no mask to restore. */
#define GUARDED(stmt)	GUARDED_MASK(0, stmt)

/*
 * The signal that reading or writing @p raises (0 if none), with
 * on_fault() installed only for the access.
 */
static inline int touch_signal(char *p, bool write)
{
	struct sigaction sa = { .sa_handler = on_fault }, old_segv, old_bus;
	int sig;

	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
	if (write)
		sig = GUARDED_MASK(1, poke(p, 1));
	else
		sig = GUARDED_MASK(1, (void)peek(p));
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	return sig;
}

/* The signal that calling the code at @p raises (0 if it ran and returned). */
static inline int exec_signal(void *p)
{
	struct sigaction sa = { .sa_handler = on_fault }, old_segv, old_bus;
	int sig;

	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
	sig = GUARDED_MASK(1, ((void (*)(void))p)());
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	return sig;
}

#endif /* __MSHARE_UTIL_H */
