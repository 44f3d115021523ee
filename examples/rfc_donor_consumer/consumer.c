// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The consumer of the original mshare proposal: learn where a region is
 * from its msharefs file, attach it there, print what the donor wrote and
 * remove the region. Written on the raw system calls (mshare/syscall.h).
 *
 *   rfc_consumer [NAME]     NAME defaults to "testregion"
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <mshare/syscall.h>

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "testregion";
	struct mshare_info mshare_info;
	char path[512];
	ssize_t count;
	char *addr;
	int fd;

	if (argc > 2) {
		fprintf(stderr, "usage: rfc_consumer [NAME]\n");
		return 2;
	}
	if (!mshare_supported()) {
		fprintf(stderr, "rfc_consumer: no msharefs at %s: not an mshare kernel\n",
			MSHARE_MOUNT_POINT);
		return 4;
	}

	snprintf(path, sizeof(path), "%s/%s", MSHARE_MOUNT_POINT, name);
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		perror("rfc_consumer: open failed");
		return 1;
	}
	count = read(fd, &mshare_info, sizeof(mshare_info));
	close(fd);
	if (count != (ssize_t)sizeof(mshare_info)) {
		if (count < 0)
			perror("rfc_consumer: read failed");
		else
			fprintf(stderr, "rfc_consumer: short read of %s\n", path);
		return 1;
	}
	printf("INFO: %llu bytes shared at addr %#llx\n",
	       (unsigned long long)mshare_info.size,
	       (unsigned long long)mshare_info.start);

	/* Start and size must be the region's; the mode is not used here. */
	addr = (char *)(unsigned long)mshare_info.start;
	if (mshare(name, mshare_info.start, mshare_info.size, O_RDWR, 0) < 0) {
		perror("rfc_consumer: mshare() syscall failed");
		return 1;
	}

	printf("Guest mmap at %p:\n", (void *)addr);
	printf("%s\n", addr);
	printf("\nDone\n");

	/* The name goes now; the memory goes with the last sharer (us). */
	if (mshare_unlink(name) < 0) {
		perror("rfc_consumer: mshare_unlink() failed");
		return 1;
	}
	return 0;
}
