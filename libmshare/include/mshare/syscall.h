/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Thin C wrappers over the mshare system calls.
 *
 *   int mshare(const char *name, unsigned long addr, unsigned long len,
 *              int oflags, mode_t mode);
 *   int mshare_unlink(const char *name);
 *   int mshare_supported(void);
 *   unsigned long mshare_unit(void);
 *
 * Support is detected through statfs(MSHARE_MOUNT_POINT) reporting
 * MSHARE_MAGIC, never by calling a syscall number: a stock kernel may use
 * the same number for a different call.
 */
#ifndef MSHARE_SYSCALL_H
#define MSHARE_SYSCALL_H

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <linux/mshare.h>

/*
 * The numbers come from <asm/unistd.h> when the headers of an mshare
 * kernel are on the include path; otherwise these are the numbers the
 * mshare kernel assigns.
 */
#ifndef __NR_mshare
#if defined(__x86_64__)
#define __NR_mshare 490
#else
#error "__NR_mshare unknown: build against the headers of an mshare kernel"
#endif
#endif

#ifndef __NR_mshare_unlink
#if defined(__x86_64__)
#define __NR_mshare_unlink 491
#else
#error "__NR_mshare_unlink unknown: build against the headers of an mshare kernel"
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Returns 0, or -1 with errno set. */
static inline int mshare(const char *name, unsigned long addr,
                         unsigned long len, int oflags, mode_t mode) {
  return (int)syscall(__NR_mshare, name, addr, len, oflags, mode);
}

/* Returns 0, or -1 with errno set. */
static inline int mshare_unlink(const char *name) {
  return (int)syscall(__NR_mshare_unlink, name);
}

/* Returns 1 if msharefs is mounted at MSHARE_MOUNT_POINT, else 0. */
static inline int mshare_supported(void) {
  struct statfs sfs;

  if (statfs(MSHARE_MOUNT_POINT, &sfs) != 0) return 0;
  return (unsigned long)sfs.f_type == (unsigned long)MSHARE_MAGIC;
}

/*
 * Returns the unit (bytes) that region addresses and lengths must be
 * multiples of, read from MSHARE_MOUNT_POINT/MSHARE_INFO_FILE; or 0 with
 * errno set.
 */
static inline unsigned long mshare_unit(void) {
  char text[32];
  char *end;
  ssize_t len;
  unsigned long unit;
  int fd;

  fd = open(MSHARE_MOUNT_POINT "/" MSHARE_INFO_FILE, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  len = read(fd, text, sizeof(text) - 1);
  close(fd);
  if (len <= 0) {
    if (len == 0) errno = EIO;
    return 0;
  }
  text[len] = '\0';
  errno = 0;
  unit = strtoul(text, &end, 10);
  if (errno != 0 || end == text || (*end != '\0' && *end != '\n') ||
      unit == 0 || (unit & (unit - 1)) != 0) {
    errno = EIO;
    return 0;
  }
  return unit;
}

#ifdef __cplusplus
}
#endif

#endif /* MSHARE_SYSCALL_H */
