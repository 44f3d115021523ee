/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _LINUX_MSHARE_H
#define _LINUX_MSHARE_H

/* VM_MSHARE and the VMA helpers below. */
#include <linux/mm.h>
#include <uapi/linux/mshare.h>

struct mem_cgroup;
struct mmu_gather;
struct pt_regs;

/*
 * A region's start and length are multiples of the span of one P4D entry:
 * the level whose entries each sharer owns while the tables below them are
 * shared.  With 4-level paging the P4D level is folded into the PGD, and
 * on x86_64 it spans 512 GiB with either paging depth.
 */
#define MSHARE_UNIT	P4D_SIZE

#ifdef CONFIG_MSHARE

static inline bool vma_is_mshare(const struct vm_area_struct *vma)
{
	return vma->vm_flags & VM_MSHARE;
}

static inline bool mm_is_mshare_host(const struct mm_struct *mm)
{
	return test_bit(MMF_MSHARE_HOST, &mm->flags);
}

static inline bool mm_has_mshare(const struct mm_struct *mm)
{
	return test_bit(MMF_HAS_MSHARE, &mm->flags);
}

/* Hooks of the generic mm code, for VMAs with VM_MSHARE. */
vm_fault_t mshare_fault(struct vm_area_struct *vma, unsigned long address,
			unsigned int flags, struct pt_regs *regs);
void mshare_unmap_window(struct vm_area_struct *vma);
int mshare_copy_window(struct vm_area_struct *dst_vma,
		       struct vm_area_struct *src_vma);
struct mm_struct *mshare_window_host_mm(struct vm_area_struct *vma);

/*
 * Calls that change mappings: when [start, start + len) meets a window of
 * the mm, these carry the change out in the region's host mm (or refuse
 * it), store the result in *ret and return true; otherwise they return
 * false and the caller goes on as usual.
 */
bool mshare_mmap(struct file *file, unsigned long addr, unsigned long len,
		 unsigned long prot, unsigned long flags, unsigned long pgoff,
		 unsigned long *ret);
bool mshare_munmap(unsigned long start, size_t len, int *ret);
bool mshare_mprotect(unsigned long start, size_t len, unsigned long prot,
		     int pkey, int *ret);
bool mshare_madvise(struct mm_struct *mm, unsigned long start, size_t len,
		    int behavior, int *ret);
bool mshare_mlock(unsigned long start, size_t len, vm_flags_t flags, int *ret);
/* Caller holds mm's mmap_lock. */
bool mshare_range_touches_window(struct mm_struct *mm, unsigned long start,
				 unsigned long len);
/* Caller holds mm's mmap_lock for writing. */
bool mshare_mm_has_window(struct mm_struct *mm);
/* A futex word in a window is keyed by the region's host mm. */
struct mm_struct *mshare_futex_mm(struct mm_struct *mm, unsigned long address);
/* The memory cgroup a host's memory is charged to; under rcu_read_lock(). */
struct mem_cgroup *mshare_host_memcg(struct mm_struct *host);

/* Between mm/mshare.c and fs/msharefs/. */
struct mshare_region;
struct mshare_region *mshare_region_get(struct mshare_region *region);
void mshare_region_put(struct mshare_region *region);
void mshare_region_info(const struct mshare_region *region,
			struct mshare_info *info);
void msharefs_lock(void);
void msharefs_unlock(void);
struct mshare_region *msharefs_find_locked(const char *name, int mask);
int msharefs_add_locked(const char *name, umode_t mode,
			struct mshare_region *region);
void msharefs_remove(const char *name, struct mshare_region *region);
int msharefs_unlink(const char *name);

#else /* !CONFIG_MSHARE */

static inline bool vma_is_mshare(const struct vm_area_struct *vma)
{
	return false;
}

static inline bool mm_is_mshare_host(const struct mm_struct *mm)
{
	return false;
}

static inline bool mm_has_mshare(const struct mm_struct *mm)
{
	return false;
}

static inline vm_fault_t mshare_fault(struct vm_area_struct *vma,
				      unsigned long address, unsigned int flags,
				      struct pt_regs *regs)
{
	return VM_FAULT_SIGBUS;
}

static inline void mshare_unmap_window(struct vm_area_struct *vma)
{
}

static inline int mshare_copy_window(struct vm_area_struct *dst_vma,
				     struct vm_area_struct *src_vma)
{
	return 0;
}

static inline struct mm_struct *mshare_window_host_mm(struct vm_area_struct *vma)
{
	return NULL;
}

static inline bool mshare_mmap(struct file *file, unsigned long addr,
			       unsigned long len, unsigned long prot,
			       unsigned long flags, unsigned long pgoff,
			       unsigned long *ret)
{
	return false;
}

static inline bool mshare_munmap(unsigned long start, size_t len, int *ret)
{
	return false;
}

static inline bool mshare_mprotect(unsigned long start, size_t len,
				   unsigned long prot, int pkey, int *ret)
{
	return false;
}

static inline bool mshare_madvise(struct mm_struct *mm, unsigned long start,
				  size_t len, int behavior, int *ret)
{
	return false;
}

static inline bool mshare_mlock(unsigned long start, size_t len,
				vm_flags_t flags, int *ret)
{
	return false;
}

static inline bool mshare_range_touches_window(struct mm_struct *mm,
					       unsigned long start,
					       unsigned long len)
{
	return false;
}

static inline bool mshare_mm_has_window(struct mm_struct *mm)
{
	return false;
}

static inline struct mm_struct *mshare_futex_mm(struct mm_struct *mm,
						unsigned long address)
{
	return mm;
}

static inline struct mem_cgroup *mshare_host_memcg(struct mm_struct *host)
{
	return NULL;
}

#endif /* CONFIG_MSHARE */

#endif /* _LINUX_MSHARE_H */
