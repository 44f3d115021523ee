// SPDX-License-Identifier: GPL-2.0
/*
 * msharefs: the filesystem that names mshare regions, at /sys/fs/mshare.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/mshare.h>

#include "../kselftest_harness.h"
#include "mshare_util.h"

/* x86_64: one P4D entry, with 4-level and with 5-level paging. */
#define EXPECTED_UNIT (512UL << 30)

TEST(kernel_creates_the_mount_point)
{
	struct stat st;

	if (stat(MSHARE_MOUNT_POINT, &st) && errno == ENOENT)
		SKIP(return, "kernel without msharefs");
	ASSERT_TRUE(S_ISDIR(st.st_mode));
}

TEST(statfs_reports_mshare_magic)
{
	struct statfs st;

	if (!mshare_present())
		SKIP(return, "msharefs is not mounted at " MSHARE_MOUNT_POINT);
	ASSERT_EQ(0, statfs(MSHARE_MOUNT_POINT, &st));
	EXPECT_EQ(MSHARE_MAGIC, st.f_type);
}

TEST(mshare_info_holds_the_sharing_unit)
{
	char text[64], *end;
	unsigned long unit;

	if (!mshare_present())
		SKIP(return, "msharefs is not mounted at " MSHARE_MOUNT_POINT);
	ASSERT_EQ(0, read_file(MSHARE_MOUNT_POINT "/" MSHARE_INFO_FILE,
			       text, sizeof(text)));
	errno = 0;
	unit = strtoul(text, &end, 10);
	ASSERT_EQ(0, errno);
	EXPECT_STREQ("\n", end);
	EXPECT_EQ(EXPECTED_UNIT, unit);
}

TEST(mshare_info_is_read_only_for_everyone)
{
	struct stat st;

	if (!mshare_present())
		SKIP(return, "msharefs is not mounted at " MSHARE_MOUNT_POINT);
	ASSERT_EQ(0, stat(MSHARE_MOUNT_POINT "/" MSHARE_INFO_FILE, &st));
	EXPECT_EQ(0444, st.st_mode & 07777);
	EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST(every_mount_shows_the_same_instance)
{
	char dir[] = "/tmp/msharefs.XXXXXX";
	char path[64], text[64], expected[64];
	struct stat a, b;

	if (!mshare_present())
		SKIP(return, "msharefs is not mounted at " MSHARE_MOUNT_POINT);
	if (geteuid() != 0)
		SKIP(return, "mounting needs root");
	ASSERT_NE(NULL, mkdtemp(dir));
	ASSERT_EQ(0, mount("none", dir, "msharefs", 0, NULL));
	snprintf(path, sizeof(path), "%s/%s", dir, MSHARE_INFO_FILE);
	EXPECT_EQ(0, read_file(path, text, sizeof(text)));
	EXPECT_EQ(0, read_file(MSHARE_MOUNT_POINT "/" MSHARE_INFO_FILE,
			       expected, sizeof(expected)));
	EXPECT_STREQ(expected, text);
	/* One superblock: the same inode under both mount points. */
	EXPECT_EQ(0, stat(path, &a));
	EXPECT_EQ(0, stat(MSHARE_MOUNT_POINT "/" MSHARE_INFO_FILE, &b));
	EXPECT_EQ(b.st_dev, a.st_dev);
	EXPECT_EQ(b.st_ino, a.st_ino);
	EXPECT_EQ(0, umount(dir));
	rmdir(dir);
}

TEST(files_cannot_be_created_by_hand)
{
	int fd;

	if (!mshare_present())
		SKIP(return, "msharefs is not mounted at " MSHARE_MOUNT_POINT);
	fd = open(MSHARE_MOUNT_POINT "/by_hand", O_CREAT | O_RDWR, 0600);
	EXPECT_EQ(-1, fd);
	if (fd >= 0)
		close(fd);
	EXPECT_NE(0, mkdir(MSHARE_MOUNT_POINT "/dir", 0700));
}

TEST_HARNESS_MAIN
