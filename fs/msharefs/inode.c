// SPDX-License-Identifier: GPL-2.0
/*
 * msharefs: the namespace of mshare regions.
 *
 * One instance exists, mounted by the kernel internally and by userspace at
 * /sys/fs/mshare.  Its root holds mshare_info, the alignment unit of a
 * region as decimal text, and one file per region, created by mshare()
 * with the caller's fsuid/fsgid and the mode it gave.  Reading a region's
 * file returns struct mshare_info; unlinking it is mshare_unlink().  The
 * root is sticky and world-writable, like /dev/shm: anyone may name a
 * region, only its owner (or a privileged caller) may remove it.
 *
 * The file's inode holds a reference on the region: a region outlives its
 * sharers until it is unlinked, and its name until the last sharer goes.
 */
#define pr_fmt(fmt) "msharefs: " fmt

#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/init.h>
#include <linux/kobject.h>
#include <linux/mount.h>
#include <linux/mshare.h>
#include <linux/namei.h>
#include <linux/sysfs.h>

static struct vfsmount *msharefs_mnt __ro_after_init;

static struct inode *msharefs_root_inode(void)
{
	return d_inode(msharefs_mnt->mnt_root);
}

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

static ssize_t msharefs_region_read(struct file *file, char __user *buf,
				    size_t len, loff_t *ppos)
{
	struct mshare_info info;

	mshare_region_info(file_inode(file)->i_private, &info);
	return simple_read_from_buffer(buf, len, ppos, &info, sizeof(info));
}

static const struct file_operations msharefs_region_fops = {
	.read	= msharefs_region_read,
	.llseek	= default_llseek,
};

/* A region file's size is that of struct mshare_info: no truncate. */
static int msharefs_region_setattr(struct mnt_idmap *idmap,
				   struct dentry *dentry, struct iattr *attr)
{
	if (attr->ia_valid & ATTR_SIZE)
		return -EPERM;
	return simple_setattr(idmap, dentry, attr);
}

static const struct inode_operations msharefs_region_inode_ops = {
	.setattr	= msharefs_region_setattr,
};

/* Creating, finding and removing names: under msharefs_lock(). */

void msharefs_lock(void)
{
	inode_lock_nested(msharefs_root_inode(), I_MUTEX_PARENT);
}

void msharefs_unlock(void)
{
	inode_unlock(msharefs_root_inode());
}

static struct dentry *msharefs_lookup_locked(const char *name)
{
	return lookup_one_len(name, msharefs_mnt->mnt_root, strlen(name));
}

/*
 * The region named @name, with a reference, if the caller may open it for
 * @mask (0: no check).  ENOENT if there is none; EINVAL for mshare_info.
 */
struct mshare_region *msharefs_find_locked(const char *name, int mask)
{
	struct mshare_region *region;
	struct dentry *dentry;
	struct inode *inode;
	int err = 0;

	dentry = msharefs_lookup_locked(name);
	if (IS_ERR(dentry))
		return ERR_CAST(dentry);
	inode = d_inode(dentry);
	if (!inode)
		err = -ENOENT;
	else if (!inode->i_private)
		err = -EINVAL;
	else if (mask)
		err = inode_permission(&nop_mnt_idmap, inode, mask);
	region = err ? ERR_PTR(err) : mshare_region_get(inode->i_private);
	dput(dentry);
	return region;
}

/* Name @region; the file takes over one reference the caller holds. */
int msharefs_add_locked(const char *name, umode_t mode,
			struct mshare_region *region)
{
	struct dentry *dentry;
	struct inode *inode;
	int err;

	dentry = msharefs_lookup_locked(name);
	if (IS_ERR(dentry))
		return PTR_ERR(dentry);
	if (d_really_is_positive(dentry)) {
		dput(dentry);
		return -EEXIST;
	}
	/* As creat(2) in the directory: write and search permission. */
	err = inode_permission(&nop_mnt_idmap, msharefs_root_inode(),
			       MAY_WRITE | MAY_EXEC);
	if (err) {
		dput(dentry);
		return err;
	}
	inode = new_inode(msharefs_mnt->mnt_sb);
	if (!inode) {
		dput(dentry);
		return -ENOMEM;
	}
	inode->i_ino = get_next_ino();
	inode->i_mode = S_IFREG | (mode & 0777);
	inode->i_uid = current_fsuid();
	inode->i_gid = current_fsgid();
	inode->i_size = sizeof(struct mshare_info);
	simple_inode_init_ts(inode);
	inode->i_op = &msharefs_region_inode_ops;
	inode->i_fop = &msharefs_region_fops;
	inode->i_private = region;
	/* The lookup's reference pins the name until it is unlinked. */
	d_instantiate(dentry, inode);
	return 0;
}

/*
 * Remove @name if it still names @region (0: whatever region it names), as
 * unlink(2) of its file does, with its checks when @check.
 */
static int msharefs_remove_name(const char *name,
				struct mshare_region *region, bool check)
{
	struct inode *dir = msharefs_root_inode(), *inode = NULL;
	struct dentry *dentry;
	int err;

	msharefs_lock();
	dentry = msharefs_lookup_locked(name);
	err = PTR_ERR_OR_ZERO(dentry);
	if (err)
		goto unlock;
	inode = d_inode(dentry);
	if (!inode || (region && inode->i_private != region)) {
		err = -ENOENT;
		inode = NULL;
	} else if (!inode->i_private) {
		err = -EPERM;
		inode = NULL;
	} else if (check) {
		/* As do_unlinkat(): the final iput() comes after unlocking. */
		ihold(inode);
		err = vfs_unlink(&nop_mnt_idmap, dir, dentry, NULL);
	} else {
		ihold(inode);
		simple_unlink(dir, dentry);
		d_delete(dentry);
	}
	dput(dentry);
unlock:
	msharefs_unlock();
	/* The last reference may free the region: not under the lock. */
	if (inode)
		iput(inode);
	return err;
}

/* mshare_unlink(): unlink(2) of the region's file, with its checks. */
int msharefs_unlink(const char *name)
{
	return msharefs_remove_name(name, NULL, true);
}

/*
 * Creating @region failed after it was named: take the name back, unless
 * it was unlinked (and maybe given to another region) meanwhile.
 */
void msharefs_remove(const char *name, struct mshare_region *region)
{
	msharefs_remove_name(name, region, false);
}

static void msharefs_evict_inode(struct inode *inode)
{
	struct mshare_region *region = inode->i_private;

	clear_inode(inode);
	if (region)
		mshare_region_put(region);
}

static const struct super_operations msharefs_super_ops = {
	.statfs		= simple_statfs,
	.drop_inode	= generic_delete_inode,
	.evict_inode	= msharefs_evict_inode,
};

/* unlink(2) in the root: regions only, mshare_info stays. */
static int msharefs_dir_unlink(struct inode *dir, struct dentry *dentry)
{
	if (!d_inode(dentry)->i_private)
		return -EPERM;
	return simple_unlink(dir, dentry);
}

static const struct inode_operations msharefs_dir_inode_ops = {
	.lookup		= simple_lookup,
	.unlink		= msharefs_dir_unlink,
};

static int msharefs_fill_super(struct super_block *sb, struct fs_context *fc)
{
	static const struct tree_descr files[] = {
		[2] = { MSHARE_INFO_FILE, &msharefs_info_fops, 0444 },
		{ "" },
	};
	struct inode *root;
	int err;

	err = simple_fill_super(sb, MSHARE_MAGIC, files);
	if (err)
		return err;
	sb->s_op = &msharefs_super_ops;
	root = d_inode(sb->s_root);
	root->i_mode = S_IFDIR | 01777;
	root->i_op = &msharefs_dir_inode_ops;
	return 0;
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
