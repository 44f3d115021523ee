// SPDX-License-Identifier: GPL-2.0
/*
 * Print the number of page-table levels the running kernel uses for user
 * space: 5 when an address above the 47-bit user limit of 4-level paging
 * can be mapped (only asked for explicitly, as x86 requires), else 4.
 */
#include <stdio.h>
#include <sys/mman.h>

#define FOUR_LEVEL_LIMIT (1UL << 47)

int main(void)
{
	void *want = (void *)(FOUR_LEVEL_LIMIT + (1UL << 30));
	void *p = mmap(want, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS |
		       MAP_FIXED_NOREPLACE, -1, 0);

	if (p == want) {
		munmap(p, 4096);
		puts("5");
	} else {
		puts("4");
	}
	return 0;
}
