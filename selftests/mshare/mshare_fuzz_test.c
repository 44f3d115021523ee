// SPDX-License-Identifier: GPL-2.0
/*
 * mshare fuzzer: a seeded random sequence of calls on the API and in and
 * around its windows -- mshare() create/open/attach with random and edge
 * arguments, mshare_unlink(), the msharefs files (open, read, lseek,
 * write, chmod, unlink), mmap/munmap/mprotect/madvise/mremap, reads and
 * writes through GUP (read(2), process_vm_writev, /proc/self/mem), plain
 * loads and stores, fork (sometimes as another user), exit, and signals.
 *
 * Every result is checked: it must be in the errno set documented for
 * that call (docs/mshare.md; the man page for the standard calls) and,
 * where the process's own state decides it (/proc/self/maps, the
 * msharefs entry), exactly the documented outcome: creating over a
 * window is EINVAL, a read-only sharer's mprotect is EACCES, its stores
 * raise SIGSEGV, and so on.  A crash of the fuzzer or a kernel splat
 * (caught by the test harness) is a failure too.
 *
 *   mshare_fuzz_test [--seed N] [--ops N] [--verbose] [kselftest options]
 *
 * MSHARE_FUZZ_SEED and MSHARE_FUZZ_OPS give the defaults (10,000 ops,
 * seed from the clock).  The seed is printed as "# seed: N"; the same
 * seed replays the same sequence of calls.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/mshare.h>

#include "../kselftest_harness.h"
#include "mshare_util.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE		25
#endif
#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED	24
#endif
#ifndef MAP_SYNC
#define MAP_SYNC		0x080000
#endif
#ifndef MAP_UNINITIALIZED
#define MAP_UNINITIALIZED	0x4000000
#endif

#define SLOT(i)		((4UL + (i)) * UNIT)	/* 2 TiB, 2.5 TiB, 3 TiB */
#define NSLOTS		3
#define SPACE_START	(SLOT(0) - UNIT)
#define SPACE_END	(SLOT(NSLOTS) + 2 * UNIT)
/* Plain mappings for mremap to move, away from the slots. */
#define SCRATCH		(16UL << 40)
#define TOUCH_SPAN	(64 * MiB)	/* loads and stores stay in here */
#define NNAMES		6
#define NOBODY		65534
#define RESET_EVERY	2000		/* detach and unlink all: bounds memory */

/* Sets of outcomes: bit 0 success, bit e errno e. */
#define OK		((__uint128_t)1)
#define E(e)		((__uint128_t)1 << (e))

static const __uint128_t mshare_errnos = E(EINVAL) | E(EEXIST) | E(ENOENT) |
	E(EACCES) | E(ENAMETOOLONG) | E(EFAULT) | E(EBUSY) | E(ENOMEM);
static const __uint128_t unlink_errnos = E(EINVAL) | E(ENOENT) | E(EPERM) |
	E(ENAMETOOLONG) | E(EFAULT);
/* mmap(2), plus EACCES in a read-only window (docs/mshare.md). */
static const __uint128_t mmap_errnos = E(EACCES) | E(EAGAIN) | E(EBADF) |
	E(EEXIST) | E(EINVAL) | E(ENFILE) | E(ENODEV) | E(ENOMEM) |
	E(EOVERFLOW) | E(EPERM) | E(ETXTBSY) | E(EOPNOTSUPP);
static const __uint128_t munmap_errnos = E(EINVAL) | E(ENOMEM) | E(EACCES);
static const __uint128_t mprotect_errnos = E(EACCES) | E(EINVAL) | E(ENOMEM);
static const __uint128_t madvise_errnos = E(EACCES) | E(EAGAIN) | E(EBADF) |
	E(EFAULT) | E(EINVAL) | E(EIO) | E(ENOMEM) | E(EPERM);
static const __uint128_t mremap_errnos = E(EAGAIN) | E(EFAULT) | E(EINVAL) |
	E(ENOMEM);
static const __uint128_t open_errnos = E(EACCES) | E(EEXIST) | E(EINVAL) |
	E(EISDIR) | E(ENOENT) | E(ENOTDIR) | E(EPERM) | E(ENAMETOOLONG) |
	E(EFAULT) | E(EROFS) | E(ENXIO) | E(EOPNOTSUPP);
static const __uint128_t rw_errnos = E(EBADF) | E(EFAULT) | E(EINVAL) |
	E(EIO) | E(EISDIR) | E(EAGAIN);
static const __uint128_t attr_errnos = E(EPERM) | E(EACCES) | E(EINVAL) |
	E(ENOENT) | E(EROFS) | E(EBADF);
static const __uint128_t pvm_errnos = E(EFAULT) | E(EINVAL) | E(ENOMEM) |
	E(EPERM) | E(ESRCH);

enum fuzz_op {
	OP_MSHARE, OP_UNLINK, OP_FILE, OP_MMAP, OP_MUNMAP, OP_MPROTECT,
	OP_MADVISE, OP_MREMAP, OP_TOUCH, OP_GUP, OP_FORK, OP_FORK_SIGNALLED,
	OP_OWN_TEXT, NR_OPS
};

static const char *const op_names[NR_OPS] = {
	"mshare", "mshare_unlink", "msharefs file", "mmap", "munmap",
	"mprotect", "madvise", "mremap", "load/store", "gup", "fork",
	"fork+signals", "create over own text",
};

/* Percent of each operation; forks and the like are rare. */
static const unsigned char op_weight[NR_OPS] = {
	[OP_MSHARE] = 22, [OP_UNLINK] = 6, [OP_FILE] = 6, [OP_MMAP] = 12,
	[OP_MUNMAP] = 9, [OP_MPROTECT] = 8, [OP_MADVISE] = 8, [OP_MREMAP] = 4,
	[OP_TOUCH] = 16, [OP_GUP] = 6, [OP_FORK] = 1, [OP_FORK_SIGNALLED] = 1,
	[OP_OWN_TEXT] = 1,
};

/* Shared by every process of one run. */
#define MAX_ERRNO 134

struct shared {
	unsigned long failures;
	unsigned long calls[NR_OPS];
	unsigned long errors[NR_OPS];
	unsigned long outcome[NR_OPS][MAX_ERRNO];
	unsigned long signals_seen, children_killed;
};

struct fuzz {
	__u64 rng;
	unsigned long done, ops;
	bool deterministic;	/* no asynchronous signals: replayable */
	bool child;
	uid_t uid;
	__u64 trace;		/* hash of what was called and what came back */
	struct shared *sh;
	char names[NNAMES][NAME_MAX + 1];
	char long_name[NAME_MAX + 1];	/* exactly NAME_MAX: valid */
	char too_long[NAME_MAX + 2];
	char *unterminated;	/* a name running into an unmapped page */
	int memfd, rofd, filefd;
	char recent[8][200];	/* the last calls, shown with a failure */
	unsigned int nrecent;
};

static unsigned long opt_seed, opt_ops = 10000;
static int opt_verbose;

/* Randomness ----------------------------------------------------------- */

static __u64 rnd(struct fuzz *fz)
{
	/* splitmix64: any seed, 0 included, gives a good stream. */
	__u64 z = (fz->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned int below(struct fuzz *fz, unsigned int n)
{
	return rnd(fz) % n;
}

static bool chance(struct fuzz *fz, unsigned int percent)
{
	return below(fz, 100) < percent;
}

static void hash(struct fuzz *fz, __u64 v)
{
	fz->trace = (fz->trace ^ v) * 0x100000001b3ULL;
}

/* Reporting ------------------------------------------------------------ */

static __printf(2, 3) void note(struct fuzz *fz, const char *fmt, ...)
{
	char *line = fz->recent[fz->nrecent++ % 8];
	int n = snprintf(line, 200, "%s[%lu] ", fz->child ? "child " : "",
			 fz->done);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line + n, 200 - n, fmt, ap);
	va_end(ap);
	if (opt_verbose)
		printf("# %s\n", line);
}

static const char *outcome_name(int outcome)
{
	static char text[32];

	if (!outcome)
		return "success";
	snprintf(text, sizeof(text), "%s", strerrorname_np(outcome) ?: "?");
	return text;
}

static void describe_set(__uint128_t set, char *buf, size_t len)
{
	size_t n = 0;
	int e;

	buf[0] = '\0';
	for (e = 0; e < 128 && n < len; e++)
		if (set & ((__uint128_t)1 << e))
			n += snprintf(buf + n, len - n, "%s%s", n ? " " : "",
				      e ? strerrorname_np(e) ?: "?" : "success");
}

static __printf(2, 3) void failed(struct fuzz *fz, const char *fmt, ...)
{
	unsigned int i, first;
	va_list ap;

	__atomic_fetch_add(&fz->sh->failures, 1, __ATOMIC_RELAXED);
	printf("# FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n#   the last calls, oldest first:\n");
	first = fz->nrecent > 8 ? fz->nrecent - 8 : 0;
	for (i = first; i < fz->nrecent; i++)
		printf("#   %s\n", fz->recent[i % 8]);
	fflush(stdout);
}

/*
 * Checks @outcome (0 or an errno) of the call last noted against the
 * documented set for the call and the exact set the state predicts.
 */
static void check(struct fuzz *fz, enum fuzz_op op, int outcome, __uint128_t documented,
		  __uint128_t expected)
{
	__uint128_t bit = outcome < 128 ? (__uint128_t)1 << outcome : 0;
	char want[256];

	__atomic_fetch_add(&fz->sh->calls[op], 1, __ATOMIC_RELAXED);
	if (outcome)
		__atomic_fetch_add(&fz->sh->errors[op], 1, __ATOMIC_RELAXED);
	if (outcome >= 0 && outcome < MAX_ERRNO)
		__atomic_fetch_add(&fz->sh->outcome[op][outcome], 1,
				   __ATOMIC_RELAXED);
	hash(fz, op * 1000 + outcome);
	if (opt_verbose)
		printf("#   -> %s\n", outcome_name(outcome));
	if (!(bit & (documented | OK))) {
		describe_set(documented | OK, want, sizeof(want));
		failed(fz, "%s: %s is not documented for it (documented: %s)",
		       op_names[op], outcome_name(outcome), want);
	} else if (expected && !(bit & expected)) {
		describe_set(expected, want, sizeof(want));
		failed(fz, "%s: %s, but this state calls for %s", op_names[op],
		       outcome_name(outcome), want);
	}
}

static int outcome_of(long ret)
{
	return ret == -1 ? errno : 0;
}

/* The process's mappings near the slots ------------------------------- */

struct mapping {
	unsigned long start, end;
	bool window, writable;
	char name[48];
};

#define MAX_MAPPINGS 8192

struct maps {
	struct mapping m[MAX_MAPPINGS];
	int n;
};

/* /proc/self/maps: the ground truth the expectations are computed from. */
static void read_maps(struct maps *maps)
{
	char line[512], perms[8], path[256];
	unsigned long start, end;
	FILE *f = fopen("/proc/self/maps", "r");

	maps->n = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f) && maps->n < MAX_MAPPINGS) {
		struct mapping *m = &maps->m[maps->n];

		path[0] = '\0';
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &start, &end,
			   perms, path) < 3)
			continue;
		m->start = start;
		m->end = end;
		m->window = !strncmp(path, "[mshare:", 8);
		m->writable = perms[1] == 'w';
		snprintf(m->name, sizeof(m->name), "%s", path);
		maps->n++;
	}
	fclose(f);
}

static bool overlaps(const struct mapping *m, unsigned long start,
		     unsigned long end)
{
	return m->start < end && start < m->end;
}

/* The lowest window meeting [start, end), or NULL. */
static const struct mapping *first_window(const struct maps *maps,
					  unsigned long start, unsigned long end)
{
	int i;

	for (i = 0; i < maps->n; i++)
		if (maps->m[i].window && overlaps(&maps->m[i], start, end))
			return &maps->m[i];
	return NULL;
}

static const struct mapping *window_at(const struct maps *maps,
				       unsigned long addr)
{
	return first_window(maps, addr, addr + 1);
}

static bool mapped_at(const struct maps *maps, unsigned long addr)
{
	int i;

	for (i = 0; i < maps->n; i++)
		if (maps->m[i].start <= addr && addr < maps->m[i].end)
			return true;
	return false;
}

/* VmFlags that mshare() refuses to move into a region. */
static bool refused_flags(const char *flags)
{
	static const char *const refused[] = { "gd", "ht", "io", "de", "pf",
					       "mm", "um", "uw", "ui" };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(refused); i++) {
		const char *p = flags;
		size_t n = strlen(refused[i]);

		while ((p = strstr(p, refused[i]))) {
			if ((p == flags || p[-1] == ' ') &&
			    (p[n] == ' ' || p[n] == '\n' || !p[n]))
				return true;
			p += n;
		}
	}
	return false;
}

static bool range_has_refused_mapping(unsigned long start, unsigned long end)
{
	char line[512];
	unsigned long s, e;
	bool inside = false, refused = false;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') &&
		    line[0] != 'V') {
			inside = s < end && start < e;
			continue;
		}
		if (inside && !strncmp(line, "VmFlags:", 8) &&
		    refused_flags(line + 8))
			refused = true;
	}
	fclose(f);
	return refused;
}

/* Names ------------------------------------------------------------------ */

enum name_kind {
	NK_POOL, NK_LONG, NK_TOO_LONG, NK_EMPTY, NK_DOT, NK_DOTDOT, NK_SLASH,
	NK_INFO, NK_NULL, NK_LOW, NK_UNTERMINATED, NK_IN_WINDOW, NR_NAME_KINDS
};

struct name {
	enum name_kind kind;
	int pool;		/* NK_POOL, NK_IN_WINDOW: which name */
	const char *ptr;
	const char *text;	/* what it says, for ours */
	__uint128_t defect;	/* the errno its defect gives, 0 if valid */
};

/* Copies @text into a writable window; NULL if it did not land there. */
static const char *name_in_window(struct fuzz *fz, const char *text)
{
	static struct maps maps;
	char *dst;
	int i, sig;

	read_maps(&maps);
	for (i = 0; i < maps.n; i++) {
		if (!maps.m[i].window || !maps.m[i].writable || chance(fz, 50))
			continue;
		dst = (char *)(maps.m[i].start + below(fz, TOUCH_SPAN / PAGE) *
			       PAGE + PAGE - strlen(text) - 1);
		sig = GUARDED(memcpy(dst, text, strlen(text) + 1));
		if (!sig && !strcmp(dst, text))
			return dst;
	}
	return NULL;
}

static void pick_name(struct fuzz *fz, struct name *nm)
{
	static const char *const fixed[] = {
		[NK_EMPTY] = "", [NK_DOT] = ".", [NK_DOTDOT] = "..",
		[NK_SLASH] = "a/b", [NK_INFO] = MSHARE_INFO_FILE,
	};
	unsigned int n = below(fz, 100);

	memset(nm, 0, sizeof(*nm));
	nm->pool = below(fz, NNAMES);
	/* Mostly names of ours, so that state builds up. */
	nm->kind = n < 80 ? NK_POOL : n < 84 ? NK_IN_WINDOW :
		   (enum name_kind)(1 + below(fz, NK_IN_WINDOW - 1));
	switch (nm->kind) {
	case NK_POOL:
		nm->text = fz->names[nm->pool];
		nm->ptr = nm->text;
		break;
	case NK_IN_WINDOW:
		nm->text = fz->names[nm->pool];
		nm->ptr = name_in_window(fz, nm->text);
		if (!nm->ptr) {
			nm->kind = NK_POOL;
			nm->ptr = nm->text;
		}
		break;
	case NK_LONG:
		nm->text = fz->long_name;
		nm->ptr = nm->text;
		break;
	case NK_TOO_LONG:
		nm->ptr = fz->too_long;
		nm->defect = E(ENAMETOOLONG);
		break;
	case NK_EMPTY:
	case NK_DOT:
	case NK_DOTDOT:
	case NK_SLASH:
		nm->ptr = fixed[nm->kind];
		nm->defect = E(EINVAL);
		break;
	case NK_INFO:
		nm->text = fixed[nm->kind];
		nm->ptr = nm->text;
		break;
	case NK_NULL:
		nm->ptr = NULL;
		nm->defect = E(EFAULT);
		break;
	case NK_LOW:
		nm->ptr = (const char *)8;
		nm->defect = E(EFAULT);
		break;
	default:
		nm->ptr = fz->unterminated;
		nm->defect = E(EFAULT);
		break;
	}
	hash(fz, nm->kind * 16 + nm->pool);
}

static const char *name_label(const struct name *nm)
{
	static const char *const labels[NR_NAME_KINDS] = {
		"pool", "255-byte", "256-byte", "\"\"", "\".\"", "\"..\"",
		"\"a/b\"", "mshare_info", "NULL", "(char *)8", "unterminated",
		"in a window",
	};

	return labels[nm->kind];
}

/* An msharefs entry as stat(2) and read(2) show it. */
struct entry {
	bool exists, readable;
	struct stat st;
	struct mshare_info info;
};

static void look_up(const char *text, struct entry *en)
{
	char path[NAME_MAX + 32];
	int fd;

	memset(en, 0, sizeof(*en));
	snprintf(path, sizeof(path), MSHARE_MOUNT_POINT "/%s", text);
	en->exists = stat(path, &en->st) == 0;
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		en->readable = read(fd, &en->info, sizeof(en->info)) ==
			       sizeof(en->info);
		close(fd);
	}
}

/* Would a caller with our uid pass open()'s permission check? */
static bool permitted(const struct fuzz *fz, const struct stat *st, int mask)
{
	mode_t mode = st->st_mode;
	int bits;

	if (fz->uid == 0)
		return true;
	if (st->st_uid == fz->uid)
		bits = mode >> 6;
	else if (st->st_gid == getgid())
		bits = mode >> 3;
	else
		bits = mode;
	return (bits & mask) == mask;
}

/* Arguments -------------------------------------------------------------- */

static unsigned long pick_region_addr(struct fuzz *fz)
{
	switch (below(fz, 24)) {
	case 0:
		return SLOT(0) + PAGE;
	case 1:
		return SLOT(1) + UNIT / 2;
	case 2:
		return 0;
	case 3:
		/* The last unit below 128 TiB: past TASK_SIZE with 4 levels. */
		return 0x7f8000000000UL;
	case 4:
		return -UNIT;
	case 5:
		return rnd(fz);
	default:
		return SLOT(below(fz, NSLOTS));
	}
}

static unsigned long pick_region_len(struct fuzz *fz)
{
	switch (below(fz, 20)) {
	case 0:
		return 0;
	case 1:
		return PAGE;
	case 2:
		return UNIT + PAGE;
	case 3:
		return -UNIT;
	case 4:
	case 5:
		return 2 * UNIT;
	case 6:
		return rnd(fz) & ~(PAGE - 1);
	default:
		return UNIT;
	}
}

static int pick_oflags(struct fuzz *fz)
{
	static const int junk[] = { O_TRUNC, O_APPEND, O_NONBLOCK, O_CLOEXEC,
				    O_DIRECTORY, O_NOFOLLOW, O_SYNC, 1 << 30 };
	int oflags = chance(fz, 50) ? O_RDWR : O_RDONLY;

	if (chance(fz, 3))
		oflags = chance(fz, 50) ? O_WRONLY : O_ACCMODE;
	if (chance(fz, 45))
		oflags |= O_CREAT;
	if (chance(fz, 20))
		oflags |= O_EXCL;
	if (chance(fz, 4))
		oflags |= junk[below(fz, 8)];
	return oflags;
}

static mode_t pick_mode(struct fuzz *fz)
{
	static const mode_t modes[] = { 0600, 0644, 0666, 0640, 0604, 0400,
					0, 0777, 07777, 0xffffffff };

	return modes[below(fz, 10)];
}

/* A range in or around a window or slot, with edge cases. */
static void pick_range(struct fuzz *fz, const struct maps *maps,
		       unsigned long *addr, unsigned long *len)
{
	unsigned long base = SLOT(below(fz, NSLOTS));
	int i, n = 0;

	/* Prefer a window of ours when there is one. */
	for (i = 0; i < maps->n; i++)
		if (maps->m[i].window && below(fz, ++n) == 0)
			base = maps->m[i].start;
	switch (below(fz, 12)) {
	case 0:
		*addr = base - PAGE;
		break;
	case 1:
		*addr = base + UNIT - PAGE;
		break;
	case 2:
		*addr = base + UNIT;
		break;
	case 3:
		*addr = base + 1 + below(fz, PAGE - 1);	/* misaligned */
		break;
	case 4:
		*addr = base;
		break;
	case 5:
		*addr = base + UNIT / 2;
		break;
	default:
		*addr = base + below(fz, TOUCH_SPAN / PAGE) * PAGE;
		break;
	}
	switch (below(fz, 12)) {
	case 0:
		*len = 0;
		break;
	case 1:
		*len = UNIT;
		break;
	case 2:
		*len = 2 * PAGE;
		break;
	case 3:
		*len = 1 + below(fz, 3 * PAGE);
		break;
	case 4:
		*len = 64 * MiB;
		break;
	case 5:
		*len = -PAGE;
		break;
	default:
		*len = (1 + below(fz, 256)) * PAGE;
		break;
	}
	hash(fz, *addr ^ *len);
}

/* The range [addr, addr + len) as the kernel rounds it; 0 if it wraps. */
static unsigned long range_end(unsigned long addr, unsigned long len)
{
	unsigned long end = addr + ((len + PAGE - 1) & ~(PAGE - 1));

	return len && end > addr ? end : 0;
}

/* Operations --------------------------------------------------------------- */

/*
 * mshare(): the defects in the arguments, else what the entry and this
 * process's mappings call for.
 */
static void do_mshare(struct fuzz *fz)
{
	unsigned long addr = pick_region_addr(fz), len = pick_region_len(fz);
	int oflags = pick_oflags(fz), acc = oflags & O_ACCMODE, outcome;
	mode_t mode = pick_mode(fz);
	__uint128_t expected = 0, defects = 0;
	struct entry en;
	static struct maps maps;
	struct name nm;
	int i;

	pick_name(fz, &nm);
	if ((oflags & ~(O_ACCMODE | O_CREAT | O_EXCL)) ||
	    (acc != O_RDONLY && acc != O_RDWR))
		defects |= E(EINVAL);
	if (nm.defect)
		defects |= nm.defect;
	if (!len || addr % UNIT || len % UNIT || addr + len < addr ||
	    addr + len > user_space_end())
		defects |= E(EINVAL);
	read_maps(&maps);

	if (!defects && nm.text) {
		unsigned long end;
		bool busy = false, refused = false;

		look_up(nm.text, &en);
		/*
		 * Often the arguments that can work: the region's own range,
		 * or a free slot to create in.
		 */
		if (en.exists && en.readable && chance(fz, 60)) {
			addr = en.info.start;
			len = en.info.size;
		} else if (!en.exists && chance(fz, 60)) {
			for (i = 0; i < NSLOTS; i++)
				if (!first_window(&maps, SLOT(i), SLOT(i) + UNIT))
					break;
			if (i < NSLOTS) {
				addr = SLOT(i);
				len = UNIT;
			}
		}
		hash(fz, addr ^ len);
		end = addr + len;
		for (i = 0; i < maps.n; i++) {
			const struct mapping *m = &maps.m[i];

			if (!overlaps(m, addr, end))
				continue;
			busy = true;
			if (m->window || m->start < addr || m->end > end)
				refused = true;
			/* Never move this program into a region. */
			if (m->start < SPACE_START || m->end > SPACE_END)
				addr = SLOT(0) + UNIT / 2;	/* now EINVAL */
		}
		if (addr != SLOT(0) + UNIT / 2 && busy && !refused)
			refused = range_has_refused_mapping(addr, end);
		if (addr == SLOT(0) + UNIT / 2) {
			expected = E(EINVAL);
		} else if (nm.kind == NK_INFO) {
			/* Not a region: no attach, no create. */
			expected = E(EINVAL) | E(EEXIST) | E(EACCES);
		} else if (en.exists && (oflags & (O_CREAT | O_EXCL)) ==
					      (O_CREAT | O_EXCL)) {
			expected = E(EEXIST);
		} else if (en.exists && !en.readable && fz->uid) {
			expected = E(EACCES);
		} else if (en.exists) {
			if (!permitted(fz, &en.st, acc == O_RDWR ? 6 : 4))
				expected |= E(EACCES);
			if (en.info.start != addr || en.info.size != len)
				expected |= E(EINVAL);
			if (busy)
				expected |= E(EEXIST);
			if (!expected)
				expected = OK;
		} else if (!(oflags & O_CREAT)) {
			expected = E(ENOENT);
		} else {
			expected = refused ? E(EINVAL) : OK;
		}
		expected |= E(ENOMEM);
	} else if (defects) {
		/* The checks' order is not documented: any of the defects. */
		expected = defects;
	}
	note(fz, "mshare(%s%s%s, %#lx, %#lx, %#o, %#o)", name_label(&nm),
	     nm.text ? " " : "", nm.kind == NK_POOL || nm.kind == NK_IN_WINDOW ?
	     nm.text : "", addr, len, oflags, mode);
	outcome = outcome_of(sys_mshare(nm.ptr, addr, len, oflags, mode));
	check(fz, OP_MSHARE, outcome, mshare_errnos, expected);
	if (!outcome && (oflags & O_CREAT) && nm.kind != NK_POOL &&
	    nm.kind != NK_IN_WINDOW && nm.kind != NK_LONG)
		failed(fz, "mshare created a region named by a %s name",
		       name_label(&nm));
}

static void do_unlink(struct fuzz *fz)
{
	__uint128_t expected = 0;
	struct entry en;
	struct name nm;
	int outcome;

	pick_name(fz, &nm);
	if (nm.defect) {
		expected = nm.defect;
	} else if (nm.kind == NK_INFO) {
		expected = E(EPERM);
	} else if (nm.text) {
		look_up(nm.text, &en);
		/* The root directory is sticky: owner or root only. */
		expected = !en.exists ? E(ENOENT) :
			   fz->uid && en.st.st_uid != fz->uid ? E(EPERM) : OK;
	}
	note(fz, "mshare_unlink(%s %s)", name_label(&nm), nm.text ?: "");
	outcome = outcome_of(sys_mshare_unlink(nm.ptr));
	check(fz, OP_UNLINK, outcome, unlink_errnos, expected);
}

/* The msharefs files: open, read, lseek, write, chmod, chown, unlink. */
static void do_file(struct fuzz *fz)
{
	static const int flag_choices[] = { O_RDONLY, O_RDONLY, O_RDWR,
					    O_WRONLY, O_RDONLY | O_CREAT,
					    O_RDWR | O_TRUNC, O_CREAT | O_EXCL,
					    O_RDONLY | O_DIRECTORY };
	char path[NAME_MAX + 32], buf[64];
	const char *text;
	struct entry en;
	int fd, flags, outcome, which = below(fz, 10);
	__uint128_t expected = 0;
	ssize_t n;

	text = which < 7 ? fz->names[below(fz, NNAMES)] :
	       which == 7 ? MSHARE_INFO_FILE : which == 8 ? "not.a.region" : "";
	snprintf(path, sizeof(path), MSHARE_MOUNT_POINT "/%s", text);
	look_up(text, &en);
	flags = flag_choices[below(fz, 8)];
	/* Root could change the directory's and mshare_info's modes for good. */
	switch (which < 7 || which == 8 ? below(fz, 5) : 4) {
	case 0:
		note(fz, "chmod(%s)", path);
		outcome = outcome_of(chmod(path, pick_mode(fz) & 0777));
		if (!en.exists && *text)
			expected = E(ENOENT);
		else if (*text && fz->uid && en.st.st_uid != fz->uid)
			expected = E(EPERM);
		check(fz, OP_FILE, outcome, attr_errnos, expected);
		return;
	case 1:
		note(fz, "unlink(%s)", path);
		outcome = outcome_of(unlink(path));
		if (*text && !en.exists)
			expected = E(ENOENT);
		else if (!strcmp(text, MSHARE_INFO_FILE) ||
			 (*text && fz->uid && en.st.st_uid != fz->uid))
			expected = E(EPERM);
		check(fz, OP_FILE, outcome,
		      attr_errnos | E(EISDIR) | E(EBUSY), expected);
		return;
	}
	note(fz, "open(%s, %#o)", path, flags);
	fd = open(path, flags, 0600);
	outcome = outcome_of(fd);
	/* Nothing can be created in msharefs by hand. */
	if (*text && !en.exists && (flags & O_CREAT))
		expected = E(EACCES);
	else if (*text && !en.exists)
		expected = E(ENOENT);
	check(fz, OP_FILE, outcome, open_errnos, expected);
	if (fd < 0)
		return;
	if (*text && (flags & O_CREAT) && !en.exists)
		failed(fz, "open(O_CREAT) created %s", path);
	if (chance(fz, 30))
		lseek(fd, below(fz, 24), SEEK_SET);
	n = read(fd, buf, below(fz, sizeof(buf)));
	outcome = outcome_of(n);
	check(fz, OP_FILE, outcome, rw_errnos, 0);
	/* A region's file: struct mshare_info, aligned and non-empty. */
	if (n == sizeof(struct mshare_info) && *text && en.exists &&
	    strcmp(text, MSHARE_INFO_FILE)) {
		struct mshare_info *info = (struct mshare_info *)buf;

		if (info->start % UNIT || !info->size || info->size % UNIT)
			failed(fz, "read(%s) gave start %#llx size %#llx", path,
			       (unsigned long long)info->start,
			       (unsigned long long)info->size);
	}
	n = write(fd, buf, 1 + below(fz, 16));
	check(fz, OP_FILE, outcome_of(n), rw_errnos, 0);
	if (n >= 0)
		failed(fz, "write(%s) succeeded", path);
	if (chance(fz, 30)) {
		void *p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);

		check(fz, OP_MMAP, p == MAP_FAILED ? errno : 0, mmap_errnos, 0);
		if (p != MAP_FAILED)
			munmap(p, PAGE);
	}
	close(fd);
}

static int pick_prot(struct fuzz *fz)
{
	static const int prots[] = { PROT_READ | PROT_WRITE, PROT_READ,
				     PROT_NONE, PROT_READ | PROT_WRITE,
				     PROT_READ | PROT_EXEC, PROT_WRITE,
				     PROT_READ | PROT_GROWSDOWN, 0x80 };

	return prots[below(fz, 8)];
}

/*
 * What a call that changes mappings in [addr, end) must return given the
 * windows: EINVAL across a window's edge, EACCES inside a read-only one;
 * 0 if the windows do not decide it.
 */
static __uint128_t window_rule(const struct maps *maps, unsigned long addr,
			       unsigned long end, bool whole_detaches)
{
	const struct mapping *w;
	int i;

	if (!end)
		return 0;
	w = first_window(maps, addr, end);
	if (!w)
		return 0;
	if (whole_detaches && addr <= w->start && end >= w->end) {
		/* Detaches every window covered; one cut in two is EINVAL. */
		for (i = 0; i < maps->n; i++)
			if (maps->m[i].window && overlaps(&maps->m[i], addr, end) &&
			    (maps->m[i].start < addr || maps->m[i].end > end))
				return E(EINVAL);
		return OK;
	}
	if (addr < w->start || end > w->end)
		return E(EINVAL);
	if (!w->writable)
		return E(EACCES);
	return 0;
}

static void do_mmap(struct fuzz *fz)
{
	static const int extras[] = { MAP_NORESERVE, MAP_POPULATE, MAP_GROWSDOWN,
				      MAP_HUGETLB, MAP_LOCKED, MAP_STACK,
				      MAP_SYNC, MAP_UNINITIALIZED, MAP_32BIT,
				      MAP_NONBLOCK };
	unsigned long addr, len, end;
	int flags, prot = pick_prot(fz), fd = -1, outcome, i;
	__uint128_t expected = 0;
	static struct maps maps;
	void *p;

	read_maps(&maps);
	pick_range(fz, &maps, &addr, &len);
	flags = chance(fz, 50) ? MAP_SHARED : MAP_PRIVATE;
	if (chance(fz, 5))
		flags = MAP_SHARED_VALIDATE;
	switch (below(fz, 10)) {
	case 0:
		fd = fz->memfd;
		break;
	case 1:
		fd = fz->rofd;
		break;
	case 2:
		fd = 1000;	/* not open */
		break;
	default:
		flags |= MAP_ANONYMOUS;
	}
	switch (below(fz, 10)) {
	case 0:
	case 1:
		break;		/* a hint: never placed in a window */
	case 2:
		flags |= MAP_FIXED_NOREPLACE;
		break;
	default:
		flags |= MAP_FIXED;
	}
	if (chance(fz, 25))
		flags |= extras[below(fz, 10)];
	if (chance(fz, 60))
		flags |= MAP_NORESERVE;
	/* Never populate more than a little. */
	if ((flags & (MAP_POPULATE | MAP_LOCKED)) && len > MiB)
		len = MiB;
	end = range_end(addr, len);
	if ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && fd != 1000 &&
	    !(flags & MAP_HUGETLB)) {
		/* Checked before anything else about the mapping. */
		expected = window_rule(&maps, addr, end, false);
	}
	note(fz, "mmap(%#lx, %#lx, %#x, %#x, %d)", addr, len, prot, flags, fd);
	p = mmap((void *)addr, len, prot, flags, fd, 0);
	outcome = p == MAP_FAILED ? errno : 0;
	check(fz, OP_MMAP, outcome, mmap_errnos, expected);
	if (p == MAP_FAILED)
		return;
	if ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && p != (void *)addr)
		failed(fz, "mmap(MAP_FIXED %#lx) returned %p", addr, p);
	if (!(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))) {
		/* A hint address is never placed in a window. */
		for (i = 0; i < maps.n; i++)
			if (maps.m[i].window &&
			    overlaps(&maps.m[i], (unsigned long)p,
				     range_end((unsigned long)p, len)))
				failed(fz, "mmap without MAP_FIXED placed %p in window %s",
				       p, maps.m[i].name);
		/* Outside the slots: nothing else of ours to share it with. */
		munmap(p, len);
	}
}

static void do_munmap(struct fuzz *fz)
{
	unsigned long addr, len, end;
	__uint128_t expected;
	static struct maps maps;
	int outcome;

	read_maps(&maps);
	pick_range(fz, &maps, &addr, &len);
	/* Often a window exactly: detach it, so that slots free up. */
	if (chance(fz, 30)) {
		const struct mapping *w = first_window(&maps, SPACE_START,
						       SPACE_END);

		if (w) {
			addr = w->start;
			len = w->end - w->start;
		}
	}
	end = range_end(addr, len);
	expected = window_rule(&maps, addr, end, true);
	if (!expected && end && first_window(&maps, addr, end))
		expected = addr % PAGE ? E(EINVAL) : OK | E(ENOMEM);
	if (!end || (addr % PAGE && (expected == OK ||
				     !first_window(&maps, addr, end))))
		expected = E(EINVAL);
	note(fz, "munmap(%#lx, %#lx)", addr, len);
	outcome = outcome_of(munmap((void *)addr, len));
	check(fz, OP_MUNMAP, outcome, munmap_errnos, expected);
}

static void do_mprotect(struct fuzz *fz)
{
	unsigned long addr, len, end;
	int prot = pick_prot(fz), outcome;
	__uint128_t expected;
	static struct maps maps;

	read_maps(&maps);
	pick_range(fz, &maps, &addr, &len);
	end = range_end(addr, len);
	expected = window_rule(&maps, addr, end, false);
	note(fz, "mprotect(%#lx, %#lx, %#x)", addr, len, prot);
	outcome = outcome_of(mprotect((void *)addr, len, prot));
	check(fz, OP_MPROTECT, outcome, mprotect_errnos, expected);
}

static bool harmless_advice(int advice)
{
	switch (advice) {
	case MADV_NORMAL:
	case MADV_RANDOM:
	case MADV_SEQUENTIAL:
	case MADV_WILLNEED:
	case MADV_COLD:
	case MADV_PAGEOUT:
	case MADV_POPULATE_READ:
		return true;
	}
	return false;
}

static void do_madvise(struct fuzz *fz)
{
	/* Not MADV_HWPOISON / MADV_SOFT_OFFLINE: root would poison pages. */
	static const int advice[] = {
		MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED,
		MADV_DONTNEED, MADV_FREE, MADV_REMOVE, MADV_DONTFORK,
		MADV_DOFORK, MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_HUGEPAGE,
		MADV_NOHUGEPAGE, MADV_DONTDUMP, MADV_DODUMP, MADV_WIPEONFORK,
		MADV_KEEPONFORK, MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ,
		MADV_POPULATE_WRITE, MADV_DONTNEED_LOCKED, MADV_COLLAPSE, 1234,
	};
	unsigned long addr, len, end;
	int adv = advice[below(fz, ARRAY_SIZE(advice))];
	__uint128_t expected = 0;
	static struct maps maps;
	int outcome;

	read_maps(&maps);
	pick_range(fz, &maps, &addr, &len);
	/* These fault in or collapse what the range holds: keep it small. */
	if ((adv == MADV_POPULATE_READ || adv == MADV_POPULATE_WRITE ||
	     adv == MADV_WILLNEED || adv == MADV_COLLAPSE) && len > 4 * MiB)
		len = 4 * MiB;
	end = range_end(addr, len);
	if (adv == 1234 || addr % PAGE) {
		expected = E(EINVAL);
	} else {
		const struct mapping *w = end ? first_window(&maps, addr, end) :
					  NULL;

		if (w && (addr < w->start || end > w->end))
			expected = E(EINVAL);
		else if (w && !w->writable && !harmless_advice(adv))
			expected = E(EACCES);
		else if (w && (adv == MADV_MERGEABLE ||
			       adv == MADV_UNMERGEABLE))
			expected = E(EINVAL);
	}
	note(fz, "madvise(%#lx, %#lx, %d)", addr, len, adv);
	outcome = outcome_of(madvise((void *)addr, len, adv));
	check(fz, OP_MADVISE, outcome, madvise_errnos, expected);
}

static void do_mremap(struct fuzz *fz)
{
	unsigned long addr, len, new_addr, new_len, end, before;
	int flags = 0, outcome, i;
	__uint128_t expected = 0;
	static struct maps maps;
	void *p;

	read_maps(&maps);
	if (chance(fz, 40)) {
		/* A plain mapping to move: into a window, or across one. */
		addr = SCRATCH + below(fz, 64) * PAGE;
		len = (1 + below(fz, 4)) * PAGE;
		if (mmap((void *)addr, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
		    MAP_FAILED)
			return;
		read_maps(&maps);
	} else {
		pick_range(fz, &maps, &addr, &len);
		if (chance(fz, 20))
			len = 0;	/* "duplicate a shared mapping" */
	}
	pick_range(fz, &maps, &new_addr, &new_len);
	if (!new_len || chance(fz, 30))
		new_len = len ? len : PAGE;
	if (chance(fz, 70))
		flags |= MREMAP_MAYMOVE;
	if (chance(fz, 40))
		flags |= MREMAP_FIXED;
	if (chance(fz, 10))
		flags |= MREMAP_DONTUNMAP;
	end = range_end(addr, len);
	/* Nothing moves into, out of or inside a window. */
	if (!(flags & MREMAP_FIXED && !(flags & MREMAP_MAYMOVE)) &&
	    !(addr % PAGE) && (new_len + PAGE - 1) / PAGE &&
	    !((flags & MREMAP_DONTUNMAP) && (!(flags & MREMAP_MAYMOVE) ||
					      len != new_len))) {
		if (!mapped_at(&maps, addr))
			expected = E(EFAULT);
		else if (len && !end)
			;	/* wraps: no range to check, as in mainline */
		else if (window_at(&maps, addr) ||
			 (end && first_window(&maps, addr, end)))
			expected = E(EINVAL);
		else if ((flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) &&
			 range_end(new_addr, new_len) &&
			 first_window(&maps, new_addr,
				      range_end(new_addr, new_len)))
			expected = E(EINVAL);
	}
	note(fz, "mremap(%#lx, %#lx, %#lx, %#x, %#lx)", addr, len, new_len,
	     flags, new_addr);
	p = mremap((void *)addr, len, new_len, flags, (void *)new_addr);
	outcome = p == MAP_FAILED ? errno : 0;
	before = fz->sh->failures;
	check(fz, OP_MREMAP, outcome, mremap_errnos, expected);
	if (fz->sh->failures != before)
		for (i = 0; i < maps.n; i++)
			if (overlaps(&maps.m[i], addr, addr + 1) ||
			    overlaps(&maps.m[i], new_addr,
				     range_end(new_addr, new_len) ?: -1UL))
				printf("#   mapped before: %lx-%lx %s%s\n",
				       maps.m[i].start, maps.m[i].end,
				       maps.m[i].writable ? "rw " : "ro ",
				       maps.m[i].name);
	if (p == MAP_FAILED)
		return;
	for (i = 0; i < maps.n; i++)
		if (maps.m[i].window &&
		    overlaps(&maps.m[i], (unsigned long)p,
			     range_end((unsigned long)p, new_len)))
			failed(fz, "mremap moved %#lx to %p, in window %s", addr,
			       p, maps.m[i].name);
	if ((unsigned long)p < SPACE_START || (unsigned long)p >= SPACE_END)
		munmap(p, new_len);
}

/* Loads and stores in a window: what happens is what the window allows. */
static void do_touch(struct fuzz *fz)
{
	const struct mapping *w = NULL;
	unsigned char *p;
	static struct maps maps;
	unsigned char v = 1 + below(fz, 255), seen = 0;
	int i, n = 0, sig;
	bool store = chance(fz, 50);

	read_maps(&maps);
	for (i = 0; i < maps.n; i++)
		if (maps.m[i].window && below(fz, ++n) == 0)
			w = &maps.m[i];
	if (!w)
		return;
	p = (unsigned char *)(w->start + below(fz, TOUCH_SPAN));
	if (chance(fz, 5))
		p = (unsigned char *)(w->end - 1);
	note(fz, "%s %p in %s window %s", store ? "store" : "load", p,
	     w->writable ? "read-write" : "read-only", w->name);
	if (store) {
		sig = GUARDED(poke(p, v); seen = peek(p));
		if (!w->writable && sig != SIGSEGV)
			failed(fz, "a store to read-only window %s at %p raised %d, not SIGSEGV",
			       w->name, p, sig);
		else if (!sig && seen != v)
			failed(fz, "stored %u at %p, loaded %u", v, p, seen);
	} else {
		sig = GUARDED(seen = peek(p));
	}
	(void)seen;
	if (sig && sig != SIGSEGV && sig != SIGBUS)
		failed(fz, "access at %p raised signal %d", p, sig);
	if (sig)
		__atomic_fetch_add(&fz->sh->signals_seen, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&fz->sh->calls[OP_TOUCH], 1, __ATOMIC_RELAXED);
	hash(fz, sig);
}

/* Writes into a window by the kernel on our behalf. */
static void do_gup(struct fuzz *fz)
{
	const struct mapping *w = NULL;
	static struct maps maps;
	char buf[2 * PAGE];
	struct iovec local = { buf, 0 }, remote;
	unsigned long addr, len = 1 + below(fz, 2 * PAGE);
	int i, n = 0, how = below(fz, 4), outcome, fd;
	__uint128_t expected = 0;
	ssize_t ret;

	read_maps(&maps);
	for (i = 0; i < maps.n; i++)
		if (maps.m[i].window && below(fz, ++n) == 0)
			w = &maps.m[i];
	if (!w)
		return;
	addr = w->start + below(fz, TOUCH_SPAN - 2 * PAGE);
	memset(buf, 'g', sizeof(buf));
	/* Into a read-only window: refused, whatever is mapped there. */
	if (!w->writable && how != 3)
		expected = how == 2 ? E(EIO) | E(EFAULT) : E(EFAULT);
	note(fz, "gup %d %#lx+%lu in %s window", how, addr, len,
	     w->writable ? "read-write" : "read-only");
	switch (how) {
	case 0:
		ret = pread(fz->filefd, (void *)addr, len, 0);
		break;
	case 1:
		local.iov_len = len;
		remote.iov_base = (void *)addr;
		remote.iov_len = len;
		ret = process_vm_writev(getpid(), &local, 1, &remote, 1, 0);
		break;
	case 2:
		fd = open("/proc/self/mem", O_RDWR);
		ret = fd < 0 ? -1 : pwrite(fd, buf, len, addr);
		if (fd >= 0)
			close(fd);
		break;
	default:
		/* Out of the window, into a file. */
		ret = pwrite(fz->filefd, (void *)addr, len, 0);
		break;
	}
	outcome = outcome_of(ret);
	/* A short transfer stops at a hole; fine. */
	check(fz, OP_GUP, outcome, rw_errnos | pvm_errnos, expected);
	if (!w->writable && how != 3 && ret > 0)
		failed(fz, "gup %d wrote %zd bytes into read-only window %s", how,
		       ret, w->name);
}

static void become_nobody(void)
{
	if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		_exit(90);
	/* Changing uids made us undumpable: keep /proc/self/mem ours. */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

static void run(struct fuzz *fz);

/* A child: a sharer of every window by inheritance. */
static pid_t fork_child(struct fuzz *fz, unsigned long ops, bool as_nobody)
{
	__u64 child_rng = rnd(fz);
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct itimerval off = { 0 };

		setitimer(ITIMER_REAL, &off, NULL);
		fz->rng = child_rng;
		fz->child = true;
		fz->ops = fz->done + ops;
		if (as_nobody) {
			become_nobody();
			fz->uid = NOBODY;
		}
		run(fz);
		fflush(stdout);
		_exit(0);
	}
	return pid;
}

static void do_fork(struct fuzz *fz)
{
	bool as_nobody = chance(fz, 30);
	int status;
	pid_t pid;

	note(fz, "fork (child %s)", as_nobody ? "as nobody" : "as root");
	pid = fork_child(fz, 5 + below(fz, 40), as_nobody);
	if (pid < 0 || waitpid(pid, &status, 0) != pid) {
		failed(fz, "fork/waitpid: %s", strerror(errno));
		return;
	}
	__atomic_fetch_add(&fz->sh->calls[OP_FORK], 1, __ATOMIC_RELAXED);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		failed(fz, "forked child ended with status %#x", status);
}

/* A child works while this process stops, continues, signals and kills it. */
static void do_fork_signalled(struct fuzz *fz)
{
	static const int sigs[] = { SIGSTOP, SIGCONT, SIGUSR1, SIGALRM };
	struct timespec pause = { 0, 0 };
	int i, n, status;
	pid_t pid;

	if (fz->deterministic)
		return;
	note(fz, "fork, signals, SIGKILL");
	pid = fork_child(fz, 200, chance(fz, 30));
	if (pid < 0)
		return;
	n = below(fz, 8);
	for (i = 0; i < n; i++) {
		pause.tv_nsec = below(fz, 3000000);
		nanosleep(&pause, NULL);
		kill(pid, sigs[below(fz, 4)]);
	}
	kill(pid, SIGCONT);
	if (chance(fz, 70))
		kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) != pid)
		return;
	__atomic_fetch_add(&fz->sh->calls[OP_FORK_SIGNALLED], 1,
			   __ATOMIC_RELAXED);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		__atomic_fetch_add(&fz->sh->children_killed, 1,
				   __ATOMIC_RELAXED);
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		failed(fz, "signalled child ended with status %#x", status);
}

/*
 * Hostile: a child makes a region of the unit holding its own program
 * (text, data, heap).  They move into the region, which keeps their
 * protections, so the child runs on from it and exits -- and nothing else
 * is affected.
 */
static void do_own_text(struct fuzz *fz)
{
	const char *name = fz->names[below(fz, NNAMES)];
	int status;
	pid_t pid;

	note(fz, "child creates %s over its own text", name);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		long ret = sys_mshare(name, 0, UNIT, O_CREAT | O_EXCL | O_RDWR,
				      0600);

		/* Still running from the region, or refused. */
		if (ret == 0)
			_exit(2);
		_exit(errno == EEXIST || errno == EINVAL ? 0 : 100 + errno);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return;
	__atomic_fetch_add(&fz->sh->calls[OP_OWN_TEXT], 1, __ATOMIC_RELAXED);
	/*
	 * Execution follows the region's mappings: having moved its text into
	 * the region, the child runs on (2); or mshare() refused (0).
	 */
	if (!(WIFEXITED(status) && (WEXITSTATUS(status) == 2 ||
				    WEXITSTATUS(status) == 0)))
		failed(fz, "child creating over its own text: status %#x",
		       status);
	hash(fz, status);
}

/* Detach every window, unmap the slots, unlink every name of ours. */
static void reset(struct fuzz *fz)
{
	int i;

	/* Covering windows whole, munmap detaches them. */
	if (munmap((void *)SPACE_START, SPACE_END - SPACE_START))
		failed(fz, "unmapping the slots: %s", strerror(errno));
	for (i = 0; i < NNAMES; i++)
		sys_mshare_unlink(fz->names[i]);
	sys_mshare_unlink(fz->long_name);
	munmap((void *)SCRATCH, 64 * PAGE + 4 * PAGE);
}

static void run(struct fuzz *fz)
{
	while (fz->done < fz->ops) {
		unsigned int n = below(fz, 100);
		int op;

		for (op = 0; op < NR_OPS - 1 && n >= op_weight[op]; op++)
			n -= op_weight[op];
		fz->done++;
		if (!fz->child && !(fz->done % RESET_EVERY))
			reset(fz);
		switch (op) {
		case OP_MSHARE:
			do_mshare(fz);
			break;
		case OP_UNLINK:
			do_unlink(fz);
			break;
		case OP_FILE:
			do_file(fz);
			break;
		case OP_MMAP:
			do_mmap(fz);
			break;
		case OP_MUNMAP:
			do_munmap(fz);
			break;
		case OP_MPROTECT:
			do_mprotect(fz);
			break;
		case OP_MADVISE:
			do_madvise(fz);
			break;
		case OP_MREMAP:
			do_mremap(fz);
			break;
		case OP_TOUCH:
			do_touch(fz);
			break;
		case OP_GUP:
			do_gup(fz);
			break;
		case OP_FORK:
			if (!fz->child)
				do_fork(fz);
			break;
		case OP_FORK_SIGNALLED:
			if (!fz->child)
				do_fork_signalled(fz);
			break;
		default:
			if (!fz->child)
				do_own_text(fz);
			break;
		}
	}
}

/* Setup -------------------------------------------------------------------- */

static void on_alarm(int sig)
{
}

static int setup(struct fuzz *fz, unsigned long seed, unsigned long ops,
		 bool deterministic, struct shared *sh)
{
	char path[64];
	char *pages;
	int i;

	memset(fz, 0, sizeof(*fz));
	fz->rng = seed;
	fz->ops = ops;
	fz->deterministic = deterministic;
	fz->uid = geteuid();
	fz->sh = sh;
	for (i = 0; i < NNAMES; i++)
		snprintf(fz->names[i], sizeof(fz->names[i]), "fz.%d.%d",
			 getpid(), i);
	snprintf(fz->long_name, sizeof(fz->long_name), "fz.%d.", getpid());
	memset(fz->long_name + strlen(fz->long_name), 'l',
	       NAME_MAX - strlen(fz->long_name));
	fz->long_name[NAME_MAX] = '\0';
	memset(fz->too_long, 'x', NAME_MAX + 1);
	fz->too_long[NAME_MAX + 1] = '\0';
	/* A name filling a page, with nothing mapped after it. */
	pages = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pages == MAP_FAILED)
		return -1;
	memset(pages, 'u', PAGE);
	munmap(pages + PAGE, PAGE);
	fz->unterminated = pages + PAGE - 100;
	fz->memfd = memfd_create("fuzz", 0);
	if (fz->memfd < 0 || ftruncate(fz->memfd, 16 * MiB))
		return -1;
	snprintf(path, sizeof(path), "/tmp/mshare-fuzz.%d", getpid());
	fz->filefd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	if (fz->filefd < 0 || ftruncate(fz->filefd, 4 * PAGE))
		return -1;
	fz->rofd = open(path, O_RDONLY);
	unlink(path);
	install_fault_handlers();
	return fz->rofd < 0 ? -1 : 0;
}

static struct shared *new_shared(void)
{
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return sh == MAP_FAILED ? NULL : sh;
}

FIXTURE(fuzz) {};
FIXTURE_SETUP(fuzz) {}
FIXTURE_TEARDOWN(fuzz) {}

TEST_F_TIMEOUT(fuzz, random_calls_get_documented_results, 3600)
{
	struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
	struct itimerval tick = { { 0, 5000 }, { 0, 5000 } }, off = { 0 };
	struct timespec t0, t1;
	struct shared *sh;
	struct fuzz fz;
	int before, op;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	printf("# seed: %lu\n# ops: %lu\n", opt_seed, opt_ops);
	printf("# replay: mshare_fuzz_test --seed %lu --ops %lu", opt_seed, opt_ops);
	printf(" (or MSHARE_FUZZ_SEED=%lu MSHARE_FUZZ_OPS=%lu)\n", opt_seed, opt_ops);
	fflush(stdout);
	before = msharefs_entries();
	sh = new_shared();
	ASSERT_NE(NULL, sh);
	ASSERT_EQ(0, setup(&fz, opt_seed, opt_ops, false, sh));
	/* A signal every 5 ms interrupts calls and faults alike. */
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	setitimer(ITIMER_REAL, &tick, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	run(&fz);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	setitimer(ITIMER_REAL, &off, NULL);
	reset(&fz);

	TH_LOG("%lu operations in %.1f s, trace %016llx", fz.done,
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
	       (unsigned long long)fz.trace);
	for (op = 0; op < NR_OPS; op++) {
		char text[512];
		size_t n = 0;
		int e;

		text[0] = '\0';
		for (e = 0; e < MAX_ERRNO && n < sizeof(text); e++)
			if (sh->outcome[op][e])
				n += snprintf(text + n, sizeof(text) - n, " %s %lu",
					      e ? strerrorname_np(e) ?: "?" : "ok",
					      sh->outcome[op][e]);
		TH_LOG("  %-22s %6lu calls:%s", op_names[op], sh->calls[op],
		       text);
	}
	TH_LOG("  %lu SIGSEGV/SIGBUS from loads and stores, %lu children killed by SIGKILL",
	       sh->signals_seen, sh->children_killed);
	EXPECT_EQ(0, sh->failures);
	EXPECT_EQ(before, msharefs_entries());
	munmap(sh, sizeof(*sh));
}

/* The trace hash of @ops deterministic operations from @seed. */
static __u64 replay(unsigned long seed, unsigned long ops,
		    unsigned long *failures)
{
	struct shared *sh = new_shared();
	int fds[2], status;
	__u64 trace = 0;
	pid_t pid;

	if (!sh || pipe(fds))
		return 0;
	pid = fork();
	if (pid == 0) {
		struct fuzz fz;

		if (setup(&fz, seed, ops, true, sh))
			_exit(1);
		run(&fz);
		reset(&fz);
		_exit(write(fds[1], &fz.trace, sizeof(fz.trace)) !=
		      sizeof(fz.trace));
	}
	close(fds[1]);
	if (read(fds[0], &trace, sizeof(trace)) != sizeof(trace))
		trace = 0;
	close(fds[0]);
	waitpid(pid, &status, 0);
	*failures += sh->failures;
	munmap(sh, sizeof(*sh));
	return trace;
}

TEST_F_TIMEOUT(fuzz, a_seed_replays_the_same_sequence, 600)
{
	unsigned long failures = 0;
	__u64 first, again, other;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	first = replay(opt_seed, 400, &failures);
	again = replay(opt_seed, 400, &failures);
	other = replay(opt_seed + 1, 400, &failures);
	TH_LOG("seed %lu: trace %016llx twice %016llx; seed %lu: %016llx",
	       opt_seed, (unsigned long long)first, (unsigned long long)again,
	       opt_seed + 1, (unsigned long long)other);
	EXPECT_NE(0, first);
	EXPECT_EQ(first, again);
	EXPECT_NE(first, other);
	EXPECT_EQ(0, failures);
}

/*
 * mremap() inside a window is EINVAL, also with an old length of 0
 * ("duplicate a shared mapping"), which once slipped past the window
 * check and failed later with EFAULT.
 */
TEST(mremap_of_zero_bytes_in_a_window_is_einval)
{
	unsigned long base = SLOT(0);
	char name[64];
	void *p;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");

	snprintf(name, sizeof(name), "mremap0.%d", getpid());
	ASSERT_NE(MAP_FAILED, mmap((void *)base, PAGE, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS |
				   MAP_FIXED_NOREPLACE, -1, 0));
	ASSERT_EQ(0, sys_mshare(name, base, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	p = mremap((void *)base, 0, PAGE, MREMAP_MAYMOVE);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

/*
 * Our options, then the harness's (-t NAME and friends) passed on to it.
 */
int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "ops", required_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'V' + 256 },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	char **harness_argv = calloc(2 * argc + 1, sizeof(char *));
	const char *env;
	int harness_argc = 1, opt;

	if (!harness_argv)
		return KSFT_FAIL;
	harness_argv[0] = argv[0];
	env = getenv("MSHARE_FUZZ_SEED");
	opt_seed = env && *env ? strtoul(env, NULL, 0) :
		   (unsigned long)time(NULL) ^ ((unsigned long)getpid() << 20);
	env = getenv("MSHARE_FUZZ_OPS");
	if (env && *env)
		opt_ops = strtoul(env, NULL, 0);
	while ((opt = getopt_long(argc, argv, "+hlF:f:V:v:t:T:r:", options,
				  NULL)) != -1) {
		switch (opt) {
		case 's':
			opt_seed = strtoul(optarg, NULL, 0);
			break;
		case 'n':
			opt_ops = strtoul(optarg, NULL, 0);
			break;
		case 'V' + 256:
			opt_verbose = 1;
			break;
		case 'H':
			printf("usage: %s [--seed N] [--ops N] [--verbose] [-l] [-t TEST]...\n"
			       "  --seed N   the sequence to run (default: MSHARE_FUZZ_SEED, else the clock)\n"
			       "  --ops N    operations to run (default: MSHARE_FUZZ_OPS, else 10000)\n"
			       "  --verbose  print every call\n", argv[0]);
			return 0;
		case '?':
			return KSFT_FAIL;
		default:
			/* A kselftest harness option: hand it on. */
			harness_argv[harness_argc] = malloc(3);
			if (!harness_argv[harness_argc])
				return KSFT_FAIL;
			snprintf(harness_argv[harness_argc++], 3, "-%c", opt);
			if (optarg)
				harness_argv[harness_argc++] = optarg;
			break;
		}
	}
	optind = 0;	/* the harness parses its options again */
	return test_harness_run(harness_argc, harness_argv);
}
