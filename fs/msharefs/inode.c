// SPDX-License-Identifier: GPL-2.0
/*
 * msharefs: the namespace of mshare regions.
 *
 * One instance exists, mounted by the kernel internally and by userspace at
 * /sys/fs/mshare.  Its root holds mshare_info, the alignment unit of a
 * region as decimal text.
 */
#define pr_fmt(fmt) "msharefs: " fmt

#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/init.h>
#include <linux/kobject.h>
#include <linux/mount.h>
#include <linux/mshare.h>
#include <linux/sysfs.h>

static struct vfsmount *msharefs_mnt __ro_after_init;

static ssize_t msharefs_info_read(struct file *file, char __user *buf,
				  size_t len, loff_t *ppos)
{
	char text[24];
	int n = scnprintf(text, sizeof(text), "%lu\n", (unsigned long)MSHARE_UNIT);

	return simple_read_from_buffer(buf, len, ppos, text, n);
}

static const struct file_operations msharefs_info_fops = {
	.read	= msharefs_info_read,
	.llseek	= default_llseek,
};

static int msharefs_fill_super(struct super_block *sb, struct fs_context *fc)
{
	static const struct tree_descr files[] = {
		[2] = { MSHARE_INFO_FILE, &msharefs_info_fops, 0444 },
		{ "" },
	};

	return simple_fill_super(sb, MSHARE_MAGIC, files);
}

static int msharefs_get_tree(struct fs_context *fc)
{
	/* Names are global: every mount shows the one superblock. */
	return get_tree_single(fc, msharefs_fill_super);
}

static const struct fs_context_operations msharefs_context_ops = {
	.get_tree	= msharefs_get_tree,
};

static int msharefs_init_fs_context(struct fs_context *fc)
{
	fc->ops = &msharefs_context_ops;
	return 0;
}

static struct file_system_type msharefs_type = {
	.owner			= THIS_MODULE,
	.name			= "msharefs",
	.init_fs_context	= msharefs_init_fs_context,
	.kill_sb		= kill_litter_super,
};

static int __init msharefs_init(void)
{
	int err;

	err = sysfs_create_mount_point(fs_kobj, "mshare");
	if (err)
		return err;

	err = register_filesystem(&msharefs_type);
	if (err)
		goto remove_mount_point;

	/* Keep the superblock alive while userspace has it unmounted. */
	msharefs_mnt = kern_mount(&msharefs_type);
	if (IS_ERR(msharefs_mnt)) {
		err = PTR_ERR(msharefs_mnt);
		goto unregister;
	}
	return 0;

unregister:
	unregister_filesystem(&msharefs_type);
remove_mount_point:
	sysfs_remove_mount_point(fs_kobj, "mshare");
	pr_err("initialisation failed: %d\n", err);
	return err;
}
fs_initcall(msharefs_init);
