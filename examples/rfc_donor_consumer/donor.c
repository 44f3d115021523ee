// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The donor of the original mshare proposal (linux-mm, January 2022):
 * map 512 GiB of shared anonymous memory at 2 TiB, declare it a region
 * and write a string into it. Written on the raw system calls
 * (mshare/syscall.h), not on libmshare's Region.
 *
 *   rfc_donor [NAME]        NAME defaults to "testregion"
 *
 * The region outlives the donor: a consumer attaches it later.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <mshare/syscall.h>

#define TB(x) ((unsigned long)(x) << 40)
#define GB(x) ((unsigned long)(x) << 30)

static const char text[] = "Some random shared text";

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "testregion";
	char *addr;

	if (argc > 2) {
		fprintf(stderr, "usage: rfc_donor [NAME]\n");
		return 2;
	}
	if (!mshare_supported()) {
		fprintf(stderr, "rfc_donor: no msharefs at %s: not an mshare kernel\n",
			MSHARE_MOUNT_POINT);
		return 4;
	}

	/*
	 * MAP_NORESERVE: the proposal's example commits 512 GiB of swap-backed
	 * memory, more than most machines could promise. MAP_FIXED_NOREPLACE:
	 * fail rather than replace anything already at 2 TiB.
	 */
	addr = mmap((void *)TB(2), GB(512), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE |
		    MAP_FIXED_NOREPLACE, -1, 0);
	if (addr == MAP_FAILED) {
		perror("rfc_donor: mmap failed");
		return 1;
	}

	/* 0600, not the proposal's 600 (decimal: mode 01130). */
	if (mshare(name, TB(2), GB(512), O_CREAT | O_RDWR | O_EXCL, 0600) < 0) {
		perror("rfc_donor: mshare() syscall failed");
		return 1;
	}

	/* The memory now belongs to the region; writing it needs no call. */
	memcpy(addr, text, sizeof(text));
	printf("donor: region %s at %#lx, %lu bytes: wrote \"%s\"\n", name,
	       TB(2), GB(512), addr);
	return 0;
}
