// SPDX-License-Identifier: GPL-2.0
/*
 * mshare security: who may open, change and remove a region, that a
 * read-only sharer gains write access by no path (mprotect, mmap,
 * madvise, /proc/PID/mem, process_vm_writev, read(2), io_uring, ptrace,
 * userfaultfd), and that sharers killed in the middle of a fault, by
 * SIGKILL or by the OOM killer, leave the others working with their data
 * intact.  Needs root, to act as uid 65534 ("nobody") and 65533.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <liburing.h>
#include <linux/mshare.h>
#include <linux/userfaultfd.h>

#include "../kselftest_harness.h"
#include "mshare_util.h"

#define BASE		(6UL << 40)
#define NOBODY		65534
#define STRANGER	65533
/* What the creator wrote: any change shows as a byte that is not this. */
#define PATTERN		'P'
#define DATA_SIZE	(4 * PAGE)

static void region_path(char *path, size_t len, const char *name)
{
	snprintf(path, len, MSHARE_MOUNT_POINT "/%s", name);
}

/*
 * A region at BASE whose first DATA_SIZE bytes hold PATTERN and whose
 * next page is a private page the tests may scribble on; the creator (this
 * process) detaches, so the region lives by its name only.
 */
static int create_region(char *name, size_t len, const char *tag, mode_t mode,
			 size_t extra)
{
	char *p;

	snprintf(name, len, "%s.%d", tag, getpid());
	p = map_fixed(BASE, DATA_SIZE + PAGE, MAP_SHARED, -1);
	if (p == MAP_FAILED)
		return -1;
	memset(p, PATTERN, DATA_SIZE);
	memset(p + DATA_SIZE, 0, PAGE);
	/* Room the kill tests fill: reserved, populated by the victims. */
	if (extra && mmap((void *)(BASE + (1UL << 30)), extra,
			  PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE |
			  MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED)
		return -1;
	if (sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR, mode))
		return -1;
	return munmap((void *)BASE, UNIT);
}

/* The data area as a fresh read-only sharer sees it: 0 if untouched. */
static int data_intact(const char *name)
{
	const char *p = (const char *)BASE;
	size_t i;
	int bad = 0;

	if (sys_mshare(name, BASE, UNIT, O_RDONLY, 0))
		return -errno;
	for (i = 0; i < DATA_SIZE; i++)
		if (p[i] != PATTERN) {
			bad = 1;
			break;
		}
	munmap((void *)BASE, UNIT);
	return bad;
}

static int become(uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) || setresgid(gid, gid, gid) ||
	    setresuid(uid, uid, uid))
		return -1;
	/* Changing uids made us undumpable: let our own child trace us. */
	return prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

/* Exit status of @pid, or 128 + signal. */
static int reap(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs @fn(@arg) in a child as @uid:@gid; its exit status. */
static int as_user(uid_t uid, gid_t gid, int (*fn)(const char *),
		   const char *arg)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (become(uid, gid))
			_exit(99);
		_exit(fn(arg));
	}
	return pid < 0 ? -1 : reap(pid);
}

/* -errno of a failed call, 0 on success. */
static int result(long ret)
{
	return ret == -1 ? -errno : 0;
}

/* Who may open --------------------------------------------------------- */

static int try_attach(const char *name, int oflags)
{
	int ret = result(sys_mshare(name, BASE, UNIT, oflags, 0));

	if (!ret)
		munmap((void *)BASE, UNIT);
	return ret;
}

struct open_case {
	mode_t mode;
	uid_t owner;
	gid_t group;
};

/*
 * Encodes what @name allowed nobody: bit 0 O_RDONLY attach, bit 1 O_RDWR
 * attach, bit 2 open(2) of the file for reading, bit 3 O_CREAT without
 * O_EXCL (an attach); 1 << 4 for any errno but EACCES.
 */
static int probe_access(const char *name)
{
	char path[128];
	int allowed = 0, ret, fd;

	ret = try_attach(name, O_RDONLY);
	allowed |= !ret;
	if (ret && ret != -EACCES)
		allowed |= 16;
	ret = try_attach(name, O_RDWR);
	allowed |= !ret << 1;
	if (ret && ret != -EACCES)
		allowed |= 16;
	region_path(path, sizeof(path), name);
	fd = open(path, O_RDONLY);
	allowed |= (fd >= 0) << 2;
	if (fd >= 0)
		close(fd);
	else if (errno != EACCES)
		allowed |= 16;
	ret = try_attach(name, O_CREAT | O_RDWR);
	allowed |= !ret << 3;
	if (ret && ret != -EACCES)
		allowed |= 16;
	return allowed;
}

#define MODE_LOG "mode %04o, nobody as %s: allowed %#x, want %#x (1 ro, 2 rw, 4 open, 8 O_CREAT attach, 16 wrong errno)"

TEST(mode_decides_who_may_open_for_reading_or_writing)
{
	static const mode_t modes[] = { 0000, 0400, 0600, 0640, 0604, 0644,
					0660, 0606, 0666, 0044, 0066, 0777 };
	char name[64], path[128];
	unsigned int m, cls;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (geteuid() != 0)
		SKIP(return, "needs root to switch users");
	ASSERT_EQ(0, create_region(name, sizeof(name), "modes", 0600, 0));
	region_path(path, sizeof(path), name);
	for (m = 0; m < ARRAY_SIZE(modes); m++) {
		for (cls = 0; cls < 3; cls++) {
			/* nobody as the owner, as a group member, as other */
			uid_t owner = cls == 0 ? NOBODY : 0;
			gid_t group = cls == 1 ? NOBODY : 0;
			int shift = cls == 0 ? 6 : cls == 1 ? 3 : 0;
			int r = (modes[m] >> shift) & 4, w = (modes[m] >> shift) & 2;
			int want = (r ? 1 | 4 : 0) | (r && w ? 2 | 8 : 0);
			int got;

			ASSERT_EQ(0, chown(path, owner, group));
			ASSERT_EQ(0, chmod(path, modes[m]));
			got = as_user(NOBODY, NOBODY, probe_access, name);
			EXPECT_EQ(want, got)
				TH_LOG(MODE_LOG, modes[m], cls == 0 ? "owner" :
				       cls == 1 ? "group" : "other", got, want);
		}
	}
	/* root overrides the mode, as for any file. */
	ASSERT_EQ(0, chmod(path, 0));
	EXPECT_EQ(0, try_attach(name, O_RDWR));
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

/* Who may change and remove ----------------------------------------------- */

/* Everything a stranger may try on someone else's region: all EPERM. */
static int meddle(const char *name)
{
	char path[128];

	region_path(path, sizeof(path), name);
	if (chmod(path, 0666) != -1 || errno != EPERM)
		return 1;
	if (chown(path, getuid(), getgid()) != -1 || errno != EPERM)
		return 2;
	if (chown(path, -1, getgid()) != -1 || errno != EPERM)
		return 3;
	if (sys_mshare_unlink(name) != -1 || errno != EPERM)
		return 4;
	if (unlink(path) != -1 || errno != EPERM)
		return 5;
	if (rename(path, MSHARE_MOUNT_POINT "/stolen") != -1)
		return 6;
	if (sys_mshare_unlink(MSHARE_INFO_FILE) != -1 || errno != EPERM)
		return 7;
	if (chmod(MSHARE_MOUNT_POINT "/" MSHARE_INFO_FILE, 0666) != -1)
		return 8;
	if (open(MSHARE_MOUNT_POINT "/by_hand", O_CREAT | O_RDWR, 0600) != -1)
		return 9;
	return 0;
}

/* The owner may change its own region, and remove it. */
static int manage_own(const char *name)
{
	char path[128];

	region_path(path, sizeof(path), name);
	if (chmod(path, 0640))
		return 1;
	if (sys_mshare_unlink(name))
		return 2;
	return 0;
}

static int region_mode(const char *name, struct stat *st)
{
	char path[128];

	region_path(path, sizeof(path), name);
	return stat(path, st);
}

TEST(others_cannot_chmod_chown_or_unlink_a_region)
{
	char name[64], path[128];
	struct stat st;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (geteuid() != 0)
		SKIP(return, "needs root to switch users");
	/* World-writable: opening it is allowed, owning it is not. */
	ASSERT_EQ(0, create_region(name, sizeof(name), "meddle", 0666, 0));
	EXPECT_EQ(0, as_user(NOBODY, NOBODY, meddle, name));
	ASSERT_EQ(0, region_mode(name, &st));
	EXPECT_EQ(0666, st.st_mode & 07777);
	EXPECT_EQ(0, st.st_uid);
	EXPECT_EQ(0, st.st_gid);
	EXPECT_EQ(0, data_intact(name));

	/* Owned by nobody: a third user may not, nobody and root may. */
	region_path(path, sizeof(path), name);
	ASSERT_EQ(0, chown(path, NOBODY, NOBODY));
	EXPECT_EQ(0, as_user(STRANGER, STRANGER, meddle, name));
	ASSERT_EQ(0, region_mode(name, &st));
	EXPECT_EQ(NOBODY, st.st_uid);
	EXPECT_EQ(0, as_user(NOBODY, NOBODY, manage_own, name));
	EXPECT_EQ(-1, access(path, F_OK));

	ASSERT_EQ(0, create_region(name, sizeof(name), "rootrm", 0600, 0));
	region_path(path, sizeof(path), name);
	ASSERT_EQ(0, chown(path, NOBODY, NOBODY));
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

/* A read-only sharer's own calls ----------------------------------------- */

/* Reads and writes nothing but checks: 0 or the number of the failure. */
static int read_only_paths(const char *name)
{
	char *p = (char *)BASE;
	struct uffdio_register reg = {
		.range = { .start = BASE, .len = PAGE },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	struct uffdio_api api = { .api = UFFD_API };
	char buf[PAGE], path[64];
	struct io_uring ring;
	struct io_uring_cqe *cqe;
	struct iovec local, remote;
	int fd, uffd;

	memset(buf, 'X', sizeof(buf));
	if (sys_mshare(name, BASE, UNIT, O_RDONLY, 0))
		return 1;
	if (peek(&p[0]) != PATTERN)
		return 2;
	/* mprotect, mmap, munmap, madvise: refused in the range. */
	if (mprotect((void *)BASE, PAGE, PROT_READ | PROT_WRITE) != -1 ||
	    errno != EACCES)
		return 3;
	if (mprotect((void *)BASE, UNIT, PROT_READ | PROT_WRITE) != -1 ||
	    errno != EACCES)
		return 4;
	if (mmap((void *)BASE, PAGE, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED ||
	    errno != EACCES)
		return 5;
	if (munmap((void *)BASE, PAGE) != -1 || errno != EACCES)
		return 6;
	if (madvise((void *)BASE, PAGE, MADV_DONTNEED) != -1 || errno != EACCES)
		return 7;
	if (madvise((void *)BASE, PAGE, MADV_REMOVE) != -1 || errno != EACCES)
		return 8;
	if (madvise((void *)BASE, PAGE, MADV_POPULATE_WRITE) != -1 ||
	    errno != EACCES)
		return 9;
	/* Nor by attaching again for writing. */
	if (munmap((void *)BASE, UNIT))
		return 10;
	if (sys_mshare(name, BASE, UNIT, O_RDWR, 0) != -1 || errno != EACCES)
		return 11;
	if (sys_mshare(name, BASE, UNIT, O_RDONLY, 0))
		return 12;
	/* /proc/self/mem writes force their way into read-only mappings. */
	fd = open("/proc/self/mem", O_RDWR);
	if (fd < 0)
		return 13;
	if (pwrite(fd, buf, 8, BASE) != -1)
		return 14;
	/* The read path works: the failure above is about writing. */
	if (pread(fd, path, 8, BASE) != 8 || path[0] != PATTERN)
		return 15;
	close(fd);
	/* process_vm_writev into our own window. */
	local.iov_base = buf;
	local.iov_len = 8;
	remote.iov_base = (void *)BASE;
	remote.iov_len = 8;
	if (process_vm_writev(getpid(), &local, 1, &remote, 1, 0) != -1 ||
	    errno != EFAULT)
		return 16;
	/* read(2) from a file into the window. */
	snprintf(path, sizeof(path), "/tmp/mshare-ro.%d", getpid());
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	if (fd < 0 || write(fd, buf, sizeof(buf)) != sizeof(buf))
		return 17;
	if (pread(fd, (void *)BASE, PAGE, 0) != -1 || errno != EFAULT)
		return 18;
	/* io_uring: a plain read, then a registered (pinned) buffer. */
	if (io_uring_queue_init(4, &ring, 0))
		return 19;
	io_uring_prep_read(io_uring_get_sqe(&ring), fd, (void *)BASE, PAGE, 0);
	if (io_uring_submit(&ring) != 1 || io_uring_wait_cqe(&ring, &cqe))
		return 20;
	if (cqe->res != -EFAULT)
		return 21;
	io_uring_cqe_seen(&ring, cqe);
	local.iov_base = (void *)BASE;
	local.iov_len = PAGE;
	if (io_uring_register_buffers(&ring, &local, 1) == 0)
		return 22;
	io_uring_queue_exit(&ring);
	close(fd);
	unlink(path);
	/* userfaultfd could fill pages behind the region's back. */
	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	if (uffd >= 0) {
		if (ioctl(uffd, UFFDIO_API, &api))
			return 23;
		if (ioctl(uffd, UFFDIO_REGISTER, &reg) == 0)
			return 24;
		close(uffd);
	}
	if (peek(&p[0]) != PATTERN || peek(&p[DATA_SIZE - 1]) != PATTERN)
		return 25;
	return 0;
}

TEST(read_only_sharer_cannot_write_through_its_own_calls)
{
	char name[64];

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (geteuid() != 0)
		SKIP(return, "needs root to switch users");
	ASSERT_EQ(0, create_region(name, sizeof(name), "roself", 0644, 0));
	EXPECT_EQ(0, as_user(NOBODY, NOBODY, read_only_paths, name));
	EXPECT_EQ(0, data_intact(name));
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

/* Another process writing into a sharer ------------------------------------ */

/* A page of the sharer that is not in the region: the control. */
static alignas(PAGE) char private_page[PAGE];

/*
 * From outside @pid, try ptrace POKEDATA, /proc/PID/mem and
 * process_vm_writev on @addr.  Returns a bit per path that wrote (1, 2, 4)
 * and 8 if a path failed in a way that says nothing (e.g. no access).
 */
static int write_from_outside(pid_t pid, unsigned long addr, bool use_ptrace)
{
	long word = 0x5858585858585858L;	/* "XXXXXXXX" */
	struct iovec local = { &word, sizeof(word) };
	struct iovec remote = { (void *)addr, sizeof(word) };
	char path[64];
	int wrote = 0, fd;

	if (use_ptrace) {
		errno = 0;
		if (ptrace(PTRACE_POKEDATA, pid, addr, word) == 0)
			wrote |= 1;
		else if (errno != EIO && errno != EFAULT)
			wrote |= 8;
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, O_RDWR);
	if (fd < 0)
		return wrote | 8;
	if (pwrite(fd, &word, sizeof(word), addr) == sizeof(word))
		wrote |= 2;
	else if (errno != EIO && errno != EFAULT)
		wrote |= 8;
	close(fd);
	if (process_vm_writev(pid, &local, 1, &remote, 1, 0) == sizeof(word))
		wrote |= 4;
	else if (errno != EFAULT)
		wrote |= 8;
	return wrote;
}

static int stop_traced(void)
{
	if (ptrace(PTRACE_TRACEME, 0, 0, 0))
		return -1;
	return raise(SIGSTOP);
}

#define TRACER_LOG "%s sharer: tracer wrote its window by %#x (1 ptrace, 2 /proc/PID/mem, 4 process_vm_writev, 8 odd errno)"

/*
 * The sharer (nobody, @oflags) is traced by this root process; every
 * path must fail on the window if it is read-only and work on the private
 * page, and on both if it is read-write.
 */
static void tracer_writes(struct __test_metadata *_metadata, const char *name,
			  int oflags)
{
	int status, want_window = oflags == O_RDWR ? 7 : 0;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (become(NOBODY, NOBODY) ||
		    sys_mshare(name, BASE, UNIT, oflags, 0) || stop_traced())
			_exit(1);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSTOPPED(status));
	EXPECT_EQ(7, write_from_outside(pid, (unsigned long)private_page, true));
	EXPECT_EQ(want_window, write_from_outside(pid, BASE, true))
		TH_LOG(TRACER_LOG, oflags == O_RDWR ? "read-write" : "read-only",
		       write_from_outside(pid, BASE, true));
	/* The read path works on the window. */
	EXPECT_EQ(oflags == O_RDWR ? 0x5858585858585858L : 0x5050505050505050L,
		  ptrace(PTRACE_PEEKDATA, pid, BASE, 0));
	kill(pid, SIGKILL);
	ptrace(PTRACE_DETACH, pid, 0, 0);
	waitpid(pid, &status, 0);
}

TEST(read_only_sharer_cannot_be_written_by_its_tracer)
{
	char name[64];

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (geteuid() != 0)
		SKIP(return, "needs root to switch users");
	ASSERT_EQ(0, create_region(name, sizeof(name), "rotrace", 0666, 0));
	tracer_writes(_metadata, name, O_RDONLY);
	EXPECT_EQ(0, data_intact(name));
	/* Control: the same writes reach a read-write sharer's window. */
	tracer_writes(_metadata, name, O_RDWR);
	EXPECT_EQ(1, data_intact(name));
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

/*
 * nobody attaches read-only, forks, and its child (a sharer too, same
 * uid) attaches to it with ptrace and tries every path on the parent.
 */
static int child_writes_parent(const char *name)
{
	int status, wrote_private, wrote_window;
	pid_t parent = getpid(), pid;
	int go[2];
	char c;

	if (sys_mshare(name, BASE, UNIT, O_RDONLY, 0) || pipe(go))
		return 1;
	pid = fork();
	if (pid == 0) {
		if (ptrace(PTRACE_ATTACH, parent, 0, 0) ||
		    waitpid(parent, &status, 0) != parent)
			_exit(100);
		wrote_private = write_from_outside(parent,
						   (unsigned long)private_page,
						   true);
		wrote_window = write_from_outside(parent, BASE, true);
		ptrace(PTRACE_DETACH, parent, 0, 0);
		_exit(wrote_private != 7 ? 10 + wrote_private :
		      wrote_window ? 20 + wrote_window : 0);
	}
	/* Stay runnable (and stoppable) until the child is done. */
	close(go[1]);
	while (read(go[0], &c, 1) < 0 && errno == EINTR)
		;
	return reap(pid);
}

TEST(read_only_sharer_cannot_be_written_by_its_own_child)
{
	char name[64];

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (geteuid() != 0)
		SKIP(return, "needs root to switch users");
	ASSERT_EQ(0, create_region(name, sizeof(name), "rochild", 0644, 0));
	EXPECT_EQ(0, as_user(NOBODY, NOBODY, child_writes_parent, name));
	EXPECT_EQ(0, data_intact(name));
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

/*
 * Execution follows the region's mappings (docs/mshare.md): the window's
 * top-level entries do not set NX, the region's PTEs decide.  Code in a
 * PROT_EXEC mapping runs in every sharer, whether its entry came with the
 * creator's mapping or from a fault through another sharer's window; code
 * in a mapping without PROT_EXEC, or made non-executable by mprotect()
 * through a window, faults with SIGSEGV in every sharer.
 *
 * sharer_runs(): a second sharer, attached by name, calls into each of
 * @pages pages at @p after reading @read_first (if not NULL) through its window, and
 * returns a bit per page that ran, or -1.
 */
static int sharer_runs(const char *name, unsigned char *p, int pages,
		       unsigned char *read_first)
{
	int status, i, ran = 0;
	pid_t pid = fork();

	if (pid == 0) {
		munmap((void *)BASE, UNIT);
		if (sys_mshare(name, BASE, UNIT, O_RDWR, 0))
			_exit(255);
		if (read_first && peek(read_first) != 0xc3)
			_exit(254);
		for (i = 0; i < pages; i++)
			if (!exec_signal(p + i * PAGE))
				ran |= 1 << i;
		_exit(ran);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

TEST(execution_follows_the_regions_mappings)
{
	unsigned char *p, *q;
	char name[64];

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	snprintf(name, sizeof(name), "exec.%d", getpid());
	p = mmap((void *)BASE, 2 * PAGE, PROT_READ | PROT_WRITE | PROT_EXEC,
		 MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	poke(&p[0], 0xc3);		/* ret */
	poke(&p[PAGE], 0xc3);
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_CREAT | O_EXCL | O_RDWR,
				0600));
	/* Page 2: mapped through the window without PROT_EXEC. */
	q = mmap(p + 2 * PAGE, PAGE, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ(p + 2 * PAGE, q);
	poke(&q[0], 0xc3);

	/* Page 0's entry came with the creator's mapping. */
	EXPECT_EQ(0, exec_signal(p));
	EXPECT_EQ(SIGSEGV, exec_signal(q));
	/*
	 * Page 1's entry is zapped, then made again by another sharer's read
	 * fault (shared anonymous memory keeps its contents).
	 */
	ASSERT_EQ(0, madvise(p + PAGE, PAGE, MADV_DONTNEED));
	EXPECT_EQ(0x3, sharer_runs(name, p, 3, p + PAGE));
	EXPECT_EQ(0, exec_signal(p + PAGE));

	/* mprotect() through the window takes execution from every sharer... */
	ASSERT_EQ(0, mprotect(p, PAGE, PROT_READ | PROT_WRITE));
	EXPECT_EQ(SIGSEGV, exec_signal(p));
	EXPECT_EQ(0x2, sharer_runs(name, p, 3, NULL));
	/* ...and gives it back. */
	ASSERT_EQ(0, mprotect(p, PAGE, PROT_READ | PROT_EXEC));
	EXPECT_EQ(0, exec_signal(p));
	EXPECT_EQ(0x3, sharer_runs(name, p, 3, NULL));
	EXPECT_EQ(0, sys_mshare_unlink(name));
	EXPECT_EQ(0, munmap((void *)BASE, UNIT));
}

/* Killed sharers ----------------------------------------------------------- */

#define BIG		(512 * MiB)
#define BIG_ADDR	(BASE + (1UL << 30))

/*
 * A witness sharer that keeps writing and checking a page of its own
 * while others die: any lost or wrong value ends it with status 1.
 */
static pid_t start_witness(const char *name, int *stop)
{
	pid_t pid = fork();

	if (pid == 0) {
		unsigned long *slot = (unsigned long *)(BASE + DATA_SIZE);
		unsigned long n;

		/* A sharer by name, not by inheritance. */
		munmap((void *)BASE, UNIT);
		if (sys_mshare(name, BASE, UNIT, O_RDWR, 0))
			_exit(2);
		for (n = 1; !peek(stop); n++) {
			poke(slot, n);
			if (peek(slot) != n)
				_exit(1);
			if (peek((char *)BASE + (n * 97) % DATA_SIZE) != PATTERN)
				_exit(3);
			if (!(n % 1024))
				sched_yield();
		}
		_exit(0);
	}
	return pid;
}

/* Frees what a victim populated: unmap and map the area again. */
static int reset_big(void)
{
	if (munmap((void *)BIG_ADDR, BIG))
		return -1;
	return mmap((void *)BIG_ADDR, BIG, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
		    -1, 0) == (void *)BIG_ADDR ? 0 : -1;
}

/* After the deaths: this sharer writes, a new one attaches and reads. */
static int region_still_works(const char *name, char mark)
{
	/* Past the witness's word. */
	char *p = (char *)(BASE + DATA_SIZE + 64);
	pid_t pid;

	poke(&p[1], mark);
	pid = fork();
	if (pid == 0) {
		munmap((void *)BASE, UNIT);
		if (sys_mshare(name, BASE, UNIT, O_RDWR, 0))
			_exit(1);
		_exit(peek(&p[1]) == mark ? 0 : 2);
	}
	return reap(pid);
}

FIXTURE(slow) {};
FIXTURE_SETUP(slow) {}
FIXTURE_TEARDOWN(slow) {}

#define KILL_ROUNDS	8

/* The victim: attach, say so, populate 512 MiB of the region. */
static int populate_victim(const char *name, int ready_fd, int how)
{
	char *big = (char *)BIG_ADDR;
	unsigned long off;
	char c = 0;

	if (sys_mshare(name, BASE, UNIT, O_RDWR, 0))
		return 1;
	if (write(ready_fd, &c, 1) != 1)
		return 2;
	switch (how) {
	case 0:
		return madvise((void *)BIG_ADDR, BIG, MADV_POPULATE_WRITE) ? 3 : 0;
	case 1:
		for (off = 0; off < BIG; off += PAGE)
			poke(&big[off], 1);
		return 0;
	default:
		/* Faults on both sides of a remap of the same range. */
		for (off = 0; off < BIG; off += 64 * PAGE) {
			if (mmap((void *)(BIG_ADDR + off), 64 * PAGE,
				 PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
				 -1, 0) == MAP_FAILED)
				return 4;
			poke(&big[off], 1);
		}
		return 0;
	}
}

TEST_F_TIMEOUT(slow, sigkill_in_the_middle_of_a_fault_leaves_others_working, 600)
{
	int *stop;
	pid_t witness, victim;
	char name[64], c;
	int round, status, ready[2], killed = 0;
	struct timespec delay;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (geteuid() != 0)
		SKIP(return, "needs root to switch users");
	ASSERT_EQ(0, create_region(name, sizeof(name), "sigkill", 0600, BIG));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_RDWR, 0));
	stop = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, stop);
	witness = start_witness(name, stop);
	ASSERT_LE(0, witness);
	srand(getpid());
	for (round = 0; round < KILL_ROUNDS; round++) {
		ASSERT_EQ(0, pipe(ready));
		victim = fork();
		ASSERT_LE(0, victim);
		if (victim == 0) {
			munmap((void *)BASE, UNIT);
			_exit(populate_victim(name, ready[1], round % 3));
		}
		close(ready[1]);
		ASSERT_EQ(1, read(ready[0], &c, 1));
		close(ready[0]);
		/* 1 to 300 ms into populating 512 MiB: mid-fault. */
		delay.tv_sec = 0;
		delay.tv_nsec = (1 + rand() % 300) * 1000000L;
		nanosleep(&delay, NULL);
		kill(victim, SIGKILL);
		ASSERT_EQ(victim, waitpid(victim, &status, 0));
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
			killed++;
		else
			EXPECT_EQ(0, status);
		EXPECT_EQ(0, region_still_works(name, 'a' + round));
		ASSERT_EQ(0, reset_big());
	}
	TH_LOG("%d of %d victims killed before they finished", killed,
	       KILL_ROUNDS);
	EXPECT_LT(KILL_ROUNDS / 2, killed);
	poke(stop, 1);
	EXPECT_EQ(0, reap(witness));
	EXPECT_EQ(0, munmap((void *)BASE, UNIT));
	EXPECT_EQ(0, data_intact(name));
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

/*
 * The OOM killer's report includes a stack dump, which the test harness
 * takes for a kernel splat.  Keep it off the console while the victim
 * dies (the ring buffer has it), and scan what was logged meanwhile for
 * real splats ourselves: any outside the OOM report fails the test.
 */
static const char *const splat_marks[] = {
	"BUG:", "WARNING:", "Oops", "general protection fault", "Kernel panic",
	"kernel BUG at", "possible recursive locking",
	"possible circular locking", "circular locking dependency",
	"inconsistent lock state", "suspicious RCU usage",
	"sleeping function called from invalid context", "list_add corruption",
	"list_del corruption", "Bad page", "KASAN", "UBSAN", "refcount_t:",
	"Unable to handle", "page allocation failure", "soft lockup",
	"hung task", "detected stalls", "Call Trace:",
};

static int quiet_console(int *old_level)
{
	FILE *f = fopen("/proc/sys/kernel/printk", "r");
	int fd, ok;

	if (!f)
		return -1;
	ok = fscanf(f, "%d", old_level) == 1;
	fclose(f);
	fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	if (!ok || fd < 0)
		return -1;
	lseek(fd, 0, SEEK_END);
	/* Errors and worse still reach the console. */
	klogctl(8, NULL, 4);	/* SYSLOG_ACTION_CONSOLE_LEVEL */
	return fd;
}

/* Returns the number of splat lines outside the OOM report. */
static int restore_console(int fd, int old_level, int *oom_reports)
{
	char rec[1024];
	bool in_report = false;
	int splats = 0;
	unsigned int i;
	ssize_t n;

	klogctl(8, NULL, old_level);
	*oom_reports = 0;
	while ((n = read(fd, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		char *msg;

		if (n <= 0)
			continue;	/* overwritten records */
		rec[n] = '\0';
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		if (strstr(msg, "invoked oom-killer")) {
			in_report = true;
			(*oom_reports)++;
		}
		for (i = 0; i < ARRAY_SIZE(splat_marks); i++) {
			if (!strstr(msg, splat_marks[i]))
				continue;
			if (in_report && !strcmp(splat_marks[i], "Call Trace:"))
				continue;
			printf("# kmsg: %s", msg);
			splats++;
		}
		if (strstr(msg, "Out of memory: Killed process")) {
			printf("# kmsg: %s", msg);
			in_report = false;
		}
	}
	close(fd);
	return splats;
}

struct hammer {
	int stop;
};

/* The victim's second thread: faults in region pages all the time. */
static void *hammer_region(void *arg)
{
	struct hammer *h = arg;
	char *big = (char *)BIG_ADDR;
	unsigned long off = 0;

	while (!peek(&h->stop)) {
		poke(&big[off], 1);
		off = (off + 17 * PAGE) % (64 * MiB);
		if (!off)
			madvise((void *)BIG_ADDR, 64 * MiB, MADV_DONTNEED);
	}
	return NULL;
}

static int oom_victim(const char *name)
{
	struct hammer h = { 0 };
	pthread_t thread;
	char *p;
	int fd;

	if (sys_mshare(name, BASE, UNIT, O_RDWR, 0))
		return 1;
	fd = open("/proc/self/oom_score_adj", O_WRONLY);
	if (fd < 0 || write(fd, "1000", 4) != 4)
		return 2;
	close(fd);
	if (pthread_create(&thread, NULL, hammer_region, &h))
		return 3;
	/* Allocate and touch private memory until the OOM killer comes. */
	for (;;) {
		p = mmap(NULL, 32 * MiB, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			continue;
		memset(p, 1, 32 * MiB);
	}
}

TEST_F_TIMEOUT(slow, oom_killed_sharer_leaves_others_working, 600)
{
	int level, kmsg, splats, reports, fd;
	int *stop;
	long kills_before;
	pid_t witness, victim;
	char name[64];
	int status;

	if (!mshare_present())
		SKIP(return, "kernel without mshare");
	if (geteuid() != 0)
		SKIP(return, "needs root to switch users");
	ASSERT_EQ(0, create_region(name, sizeof(name), "oom", 0600, BIG));
	ASSERT_EQ(0, sys_mshare(name, BASE, UNIT, O_RDWR, 0));
	/* Neither this process nor the witness may be chosen. */
	fd = open("/proc/self/oom_score_adj", O_WRONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(5, write(fd, "-1000", 5));
	close(fd);
	stop = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, stop);
	witness = start_witness(name, stop);
	ASSERT_LE(0, witness);
	kills_before = vm_event("oom_kill");

	kmsg = quiet_console(&level);
	ASSERT_LE(0, kmsg);
	victim = fork();
	if (victim == 0) {
		munmap((void *)BASE, UNIT);
		_exit(oom_victim(name));
	}
	ASSERT_LE(0, victim);
	ASSERT_EQ(victim, waitpid(victim, &status, 0));
	splats = restore_console(kmsg, level, &reports);
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		TH_LOG("victim status %#x", status);
	/* Without VM_EVENT_COUNTERS there is no oom_kill count. */
	if (kills_before >= 0)
		EXPECT_EQ(kills_before + 1, vm_event("oom_kill"));
	EXPECT_LE(1, reports);
	EXPECT_EQ(0, splats);

	EXPECT_EQ(0, region_still_works(name, 'o'));
	poke(stop, 1);
	EXPECT_EQ(0, reap(witness));
	EXPECT_EQ(0, munmap((void *)BASE, UNIT));
	EXPECT_EQ(0, data_intact(name));
	EXPECT_EQ(0, sys_mshare_unlink(name));
}

TEST_HARNESS_MAIN
