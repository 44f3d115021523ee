/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mshare/syscall.h must build as C and agree with statfs() about support.
 * Exit 0: consistent; 1: inconsistent.
 */
#include <stdio.h>
#include <sys/statfs.h>

#include "mshare/syscall.h"

int main(void) {
  struct statfs sfs;
  int mounted = statfs(MSHARE_MOUNT_POINT, &sfs) == 0 &&
                (unsigned long)sfs.f_type == (unsigned long)MSHARE_MAGIC;
  unsigned long unit;

  if (mshare_supported() != mounted) {
    fprintf(stderr, "mshare_supported() disagrees with statfs\n");
    return 1;
  }
  unit = mshare_unit();
  if (mounted && unit == 0) {
    fprintf(stderr, "msharefs mounted but no unit in %s\n", MSHARE_INFO_FILE);
    return 1;
  }
  printf("mshare %s, __NR_mshare %d, __NR_mshare_unlink %d, unit %lu\n",
         mounted ? "supported" : "not supported", __NR_mshare,
         __NR_mshare_unlink, unit);
  return 0;
}
