/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * mshare: named regions of an address space whose page tables are shared
 * by every process that attaches them.
 *
 * int mshare(const char *name, unsigned long addr, unsigned long len,
 *            int oflags, mode_t mode);
 * int mshare_unlink(const char *name);
 *
 * The syscall numbers are __NR_mshare and __NR_mshare_unlink in
 * <asm/unistd.h>.  Userspace must not detect support by calling those
 * numbers (another kernel may give them to other calls): check that
 * statfs(MSHARE_MOUNT_POINT) reports f_type == MSHARE_MAGIC instead.
 */
#ifndef _UAPI_LINUX_MSHARE_H
#define _UAPI_LINUX_MSHARE_H

#include <linux/types.h>

/* f_type reported by statfs() on msharefs. */
#define MSHARE_MAGIC		0x4d534852	/* "MSHR" */

/* Where the kernel creates the mount point for msharefs. */
#define MSHARE_MOUNT_POINT	"/sys/fs/mshare"

/*
 * A file at the root of msharefs holding, as decimal text, the unit
 * (in bytes) that a region's address and length must be multiples of.
 */
#define MSHARE_INFO_FILE	"mshare_info"

/* What read() returns for the msharefs file of a region. */
struct mshare_info {
	__u64 start;	/* first address of the region */
	__u64 size;	/* length of the region in bytes */
};

#endif /* _UAPI_LINUX_MSHARE_H */
