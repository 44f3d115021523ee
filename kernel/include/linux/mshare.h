/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _LINUX_MSHARE_H
#define _LINUX_MSHARE_H

#include <linux/pgtable.h>
#include <uapi/linux/mshare.h>

/*
 * A region's start and length are multiples of the span of one P4D entry:
 * the level whose entries each sharer owns while the tables below them are
 * shared.  With 4-level paging the P4D level is folded into the PGD, and
 * on x86_64 it spans 512 GiB with either paging depth.
 */
#define MSHARE_UNIT	P4D_SIZE

#endif /* _LINUX_MSHARE_H */
