// SPDX-License-Identifier: GPL-2.0
/*
 * Leave QEMU with a status: writing byte N to the isa-debug-exit port makes
 * QEMU exit with (N << 1) | 1, so the host can tell a status from a crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/io.h>

#define DEBUG_EXIT_PORT 0xf4

int main(int argc, char **argv)
{
	int status = argc > 1 ? atoi(argv[1]) : 0;

	if (ioperm(DEBUG_EXIT_PORT, 4, 1)) {
		perror("qemu-exit: ioperm");
		return 1;
	}
	outb(status & 0xff, DEBUG_EXIT_PORT);
	perror("qemu-exit: still running after writing the exit port");
	return 1;
}
