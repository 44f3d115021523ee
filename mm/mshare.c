// SPDX-License-Identifier: GPL-2.0
/*
 * mshare: processes that share the page tables of a range of their address
 * spaces.
 *
 * A region is a range aligned to MSHARE_UNIT (the span of one P4D entry,
 * 512 GiB on x86_64) with a name in msharefs.  It owns a host mm: an
 * mm_struct that runs on no CPU and holds the region's VMAs and the page
 * tables below the top level.  Every sharer maps the range through one
 * VMA, a window (VM_MSHARE), whose P4D entries point at the host's PUD
 * tables, so a page faulted in by one sharer is mapped in all of them.
 *
 * Read top to bottom: the region and its host mm, windows, create,
 * attach, faults, calls that change mappings, teardown, the syscalls.
 */
#define pr_fmt(fmt) "mshare: " fmt

#include <linux/completion.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/hashtable.h>
#include <linux/hugetlb.h>
#include <linux/mm.h>
#include <linux/huge_mm.h>
#include <linux/ksm.h>
#include <linux/memcontrol.h>
#include <linux/mman.h>
#include <linux/mmu_notifier.h>
#include <linux/mshare.h>
#include <linux/pagewalk.h>
#include <linux/sched/mm.h>
#include <linux/sched/sysctl.h>
#include <linux/security.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/swap.h>
#include <linux/swapops.h>
#include <linux/syscalls.h>
#include <linux/uaccess.h>
#include <linux/userfaultfd_k.h>
#include <asm/tlb.h>
#include <asm/tlbflush.h>

#include "internal.h"

#define MSHARE_VALID_OFLAGS	(O_ACCMODE | O_CREAT | O_EXCL)

/* VMAs that cannot move into a host mm. */
#define MSHARE_REFUSED_VMFLAGS	(VM_SPECIAL | VM_HUGETLB | VM_GROWSDOWN | \
				 VM_GROWSUP | VM_MSHARE)

struct mshare_region {
	struct mm_struct *mm;		/* host: owns the VMAs and tables */
	unsigned long start;
	unsigned long size;
	/* One for the msharefs inode, one per window, one per user. */
	refcount_t refs;
	/*
	 * The name exists before the creator has moved its mappings in:
	 * attachers wait for that, and fail as if there were no such name
	 * if it failed (create_err).
	 */
	struct completion created;
	int create_err;
	/*
	 * The memory cgroup of the creator, charged for every page of the
	 * region and its host's page tables, whoever faults them in; its
	 * nearest online ancestor once it goes offline.
	 */
	struct mem_cgroup *memcg;
	struct hlist_node host_node;	/* in mshare_hosts, by host mm */
	struct rcu_head rcu;
	char label[];			/* "[mshare:NAME]" */
};

/* Sharer's mmap_lock before host's: give hosts their own lockdep class. */
static struct lock_class_key mshare_host_lock_key;

/* Regions alive, named or not: /sys/kernel/debug/mshare/regions. */
static atomic_t mshare_nr_regions = ATOMIC_INIT(0);

/* Every region by its host mm, for the memory cgroup of a host's charges. */
static DEFINE_HASHTABLE(mshare_hosts, 6);
static DEFINE_SPINLOCK(mshare_hosts_lock);

static inline unsigned long region_end(const struct mshare_region *region)
{
	return region->start + region->size;
}

struct mshare_region *mshare_region_get(struct mshare_region *region)
{
	refcount_inc(&region->refs);
	return region;
}

void mshare_region_info(const struct mshare_region *region,
			struct mshare_info *info)
{
	info->start = region->start;
	info->size = region->size;
}

static struct mshare_region *region_alloc(const char *name,
					  unsigned long start,
					  unsigned long size)
{
	struct mshare_region *region;
	struct mm_struct *host;

	region = kzalloc(struct_size(region, label, strlen(name) + 11),
			 GFP_KERNEL);
	if (!region)
		return NULL;
	host = mm_alloc();
	if (!host) {
		kfree(region);
		return NULL;
	}
	lockdep_set_class(&host->mmap_lock, &mshare_host_lock_key);
	host->task_size = current->mm->task_size;
	set_bit(MMF_MSHARE_HOST, &host->flags);
	/* KSM would merge behind the sharers' backs: never in a host. */
	clear_bit(MMF_VM_MERGE_ANY, &host->flags);
#ifdef CONFIG_MEMCG
	/*
	 * The creator may exit long before the region goes: do not point
	 * at it.  Charges follow region->memcg instead.
	 */
	host->owner = NULL;
#endif
	region->mm = host;
	region->start = start;
	region->size = size;
	refcount_set(&region->refs, 1);
	init_completion(&region->created);
	region->memcg = get_mem_cgroup_from_mm(current->mm);
	sprintf(region->label, "[mshare:%s]", name);
	spin_lock(&mshare_hosts_lock);
	hash_add_rcu(mshare_hosts, &region->host_node, (unsigned long)host);
	spin_unlock(&mshare_hosts_lock);
	atomic_inc(&mshare_nr_regions);
	return region;
}

/*
 * The last user is gone: no sharer points at the host's tables any more.
 * Zap every mapping, then free every table of the range, down from the
 * P4D table under 5-level paging, including the PUD tables that the host
 * keeps while it has no VMA there.  As in exit_mmap(), nothing here
 * allocates, so nothing can fail; mmput() then closes the VMAs and frees
 * the host.
 */
static void region_free(struct mshare_region *region)
{
	MA_STATE(mas, &region->mm->mm_mt, 0, 0);
	struct mm_struct *host = region->mm;
	struct vm_area_struct *vma;
	struct mmu_gather tlb;

	mmap_write_lock(host);
	tlb_gather_mmu_fullmm(&tlb, host);
	vma = mas_find(&mas, ULONG_MAX);
	if (vma)
		unmap_vmas(&tlb, &mas, vma, 0, ULONG_MAX, ULONG_MAX, true);
	/* No floor and no ceiling: the host maps nothing else. */
	free_pgd_range(&tlb, region->start, region_end(region), 0, 0);
	tlb_finish_mmu(&tlb);
	mmap_write_unlock(host);
	mmput(host);
	spin_lock(&mshare_hosts_lock);
	hash_del_rcu(&region->host_node);
	spin_unlock(&mshare_hosts_lock);
	mem_cgroup_put(region->memcg);
	kfree_rcu(region, rcu);
	atomic_dec(&mshare_nr_regions);
}

/*
 * The memory cgroup that @host's memory is charged to (NULL: the root's),
 * for get_mem_cgroup_from_mm().  Caller holds rcu_read_lock().
 */
struct mem_cgroup *mshare_host_memcg(struct mm_struct *host)
{
	struct mshare_region *region;

	hash_for_each_possible_rcu(mshare_hosts, region, host_node,
				   (unsigned long)host)
		if (region->mm == host)
			return region->memcg;
	return NULL;
}

/*
 * Work in the host on the region's behalf: kernel memory allocated with
 * __GFP_ACCOUNT (page tables, VMAs) is charged to the region's cgroup
 * too, not to whichever sharer's task does it.  Returns what to restore.
 */
static struct mem_cgroup *charge_region(struct mshare_region *region)
{
	return set_active_memcg(region->memcg);
}

void mshare_region_put(struct mshare_region *region)
{
	if (refcount_dec_and_test(&region->refs))
		region_free(region);
}

/* Windows */

/*
 * The host's P4D entry for @addr.  Its P4D table (with 5-level paging; the
 * PGD itself with 4 levels) exists from create on: prepare_tables().
 */
static p4d_t *host_p4d(struct mshare_region *region, unsigned long addr)
{
	pgd_t *pgd = pgd_offset(region->mm, addr);

	VM_WARN_ON_ONCE(pgd_none(*pgd));
	return p4d_offset(pgd, addr);
}

/*
 * A user P4D entry for the PUD table @pud, made from the table's address,
 * never copied from another entry: with 4-level paging a P4D entry is a
 * PGD entry, and under PTI the kernel's copy of a user PGD entry is NX
 * (pti_set_user_pgtbl()), which copied into a sharer would forbid
 * execution in the whole window.
 *
 * x86 ANDs the R/W bits of every paging level: a read-only sharer's own
 * P4D entries make the shared tables below them read-only for it.
 */
static p4d_t table_entry(pud_t *pud, bool writable)
{
	pteval_t flags = _PAGE_TABLE;

	if (!writable)
		flags &= ~_PAGE_RW;
	return __p4d(__pa(pud) | flags);
}

static p4d_t window_entry(struct vm_area_struct *vma, p4d_t *hp4d)
{
	return table_entry(p4d_pgtable(READ_ONCE(*hp4d)),
			   vma->vm_flags & VM_WRITE);
}

/* Point the window's P4D entry for the unit at @addr at the host's table. */
static int link_unit(struct vm_area_struct *vma, unsigned long addr)
{
	struct mshare_region *region = vma->vm_private_data;
	struct mm_struct *mm = vma->vm_mm;
	p4d_t *p4d;

	p4d = p4d_alloc(mm, pgd_offset(mm, addr), addr);
	if (!p4d)
		return -ENOMEM;
	/* Linked already: the common case on the fault path, lock-free. */
	if (!p4d_none(READ_ONCE(*p4d)))
		return 0;
	spin_lock(&mm->page_table_lock);
	if (p4d_none(*p4d))
		set_p4d(p4d, window_entry(vma, host_p4d(region, addr)));
	spin_unlock(&mm->page_table_lock);
	return 0;
}

void mshare_unmap_window(struct vm_area_struct *vma)
{
	struct mm_struct *mm = vma->vm_mm;
	unsigned long addr;

	spin_lock(&mm->page_table_lock);
	for (addr = vma->vm_start; addr < vma->vm_end; addr += MSHARE_UNIT) {
		pgd_t *pgd = pgd_offset(mm, addr);

		if (!pgd_none(*pgd))
			p4d_clear(p4d_offset(pgd, addr));
	}
	spin_unlock(&mm->page_table_lock);
	/*
	 * No CPU may reach the region's tables through this mm any more,
	 * cached paging-structure entries included.
	 */
	flush_tlb_mm(mm);
}

/*
 * GUP-fast walks an mm's tables with interrupts off and without looking at
 * VMAs; it leaves an mm with MMF_HAS_MSHARE to the slow path.  Set the flag
 * before the first window entry appears, and wait for every walk that may
 * have read it clear to finish: none of them can then reach the region's
 * tables, in particular not through a read-only window for writing.
 */
static void mark_has_mshare(struct mm_struct *mm)
{
	if (mm_has_mshare(mm))
		return;
	set_bit(MMF_HAS_MSHARE, &mm->flags);
	/* An IPI to every CPU waits for its interrupts-off section to end. */
	kick_all_cpus_sync();
}

static int link_window(struct vm_area_struct *vma)
{
	unsigned long addr;
	int err;

	mark_has_mshare(vma->vm_mm);
	for (addr = vma->vm_start; addr < vma->vm_end; addr += MSHARE_UNIT) {
		err = link_unit(vma, addr);
		if (err) {
			mshare_unmap_window(vma);
			return err;
		}
	}
	return 0;
}

int mshare_copy_window(struct vm_area_struct *dst_vma,
		       struct vm_area_struct *src_vma)
{
	return link_window(dst_vma);
}

struct mm_struct *mshare_window_host_mm(struct vm_area_struct *vma)
{
	struct mshare_region *region = vma->vm_private_data;

	return region->mm;
}

static void mshare_window_open(struct vm_area_struct *vma)
{
	mshare_region_get(vma->vm_private_data);
}

static void mshare_window_close(struct vm_area_struct *vma)
{
	mshare_region_put(vma->vm_private_data);
}

/* A window is detached whole or not at all. */
static int mshare_window_may_split(struct vm_area_struct *vma,
				   unsigned long addr)
{
	return -EINVAL;
}

static int mshare_window_mremap(struct vm_area_struct *vma)
{
	return -EINVAL;
}

static const char *mshare_window_name(struct vm_area_struct *vma)
{
	struct mshare_region *region = vma->vm_private_data;

	return region->label;
}

static const struct vm_operations_struct mshare_window_vm_ops = {
	.open		= mshare_window_open,
	.close		= mshare_window_close,
	.may_split	= mshare_window_may_split,
	.mremap		= mshare_window_mremap,
	.name		= mshare_window_name,
};

static struct vm_area_struct *window_alloc(struct mm_struct *mm,
					   struct mshare_region *region,
					   bool writable)
{
	/*
	 * VM_SHARED keeps COW, the OOM reaper and KSM away; VM_DONTEXPAND
	 * keeps mlock and merging away; VM_DONTDUMP keeps core dumps from
	 * reading 512 GiB of holes.
	 */
	vm_flags_t flags = VM_READ | VM_MAYREAD | VM_SHARED | VM_MAYSHARE |
			   VM_DONTEXPAND | VM_DONTDUMP | VM_MSHARE;
	struct vm_area_struct *vma;

	if (writable)
		flags |= VM_WRITE | VM_MAYWRITE;
	vma = vm_area_alloc(mm);
	if (!vma)
		return NULL;
	vma->vm_start = region->start;
	vma->vm_end = region_end(region);
	vm_flags_init(vma, flags);
	vma->vm_page_prot = vm_get_page_prot(flags);
	vma->vm_ops = &mshare_window_vm_ops;
	vma->vm_private_data = region;
	return vma;
}

/* Create: the caller's mappings in the range become the region's. */

struct mshare_move {
	unsigned long rss[NR_MM_COUNTERS];
	unsigned long ptes, pmds, puds;
	unsigned long nr_vmas;
};

/* Counts a huge PMD, under its lock; false if the entry is not one. */
static bool count_rss_huge_pmd(pmd_t *pmd, unsigned long addr,
			       struct mm_walk *walk)
{
	struct mshare_move *mv = walk->private;
	spinlock_t *ptl = pmd_lock(walk->mm, pmd);
	pmd_t val = *pmd;
	struct folio *folio = NULL;
	bool huge = true;

	if (is_huge_zero_pmd(val)) {
		mv->ptes++;	/* its deposited table */
	} else if (pmd_trans_huge(val) || pmd_devmap(val)) {
		struct page *page = vm_normal_page_pmd(walk->vma, addr, val);

		if (page)
			folio = page_folio(page);
	} else if (is_swap_pmd(val)) {
		if (is_pmd_migration_entry(val))
			folio = pfn_swap_entry_folio(pmd_to_swp_entry(val));
	} else {
		huge = false;
	}
	if (folio) {
		mv->rss[mm_counter(folio)] += HPAGE_PMD_NR;
		if (folio_test_anon(folio))
			mv->ptes++;	/* its deposited table */
	}
	spin_unlock(ptl);
	return huge;
}

static int count_rss_pmd(pmd_t *pmd, unsigned long addr, unsigned long end,
			 struct mm_walk *walk)
{
	struct mshare_move *mv = walk->private;
	struct vm_area_struct *vma = walk->vma;
	spinlock_t *ptl;	/* of the PTE table */
	pte_t *start_pte, *pte;

	/*
	 * pmd_lock() rather than pmd_trans_huge_lock(): the same, taken
	 * unconditionally, which sparse can follow.
	 */
	if (count_rss_huge_pmd(pmd, addr, walk))
		return 0;

	start_pte = pte_offset_map_lock(walk->mm, pmd, addr, &ptl);
	if (!start_pte) {
		walk->action = ACTION_AGAIN;
		return 0;
	}
	for (pte = start_pte; addr < end; pte++, addr += PAGE_SIZE) {
		pte_t ptent = ptep_get(pte);
		swp_entry_t entry;

		if (pte_none(ptent))
			continue;
		if (pte_present(ptent)) {
			struct page *page = vm_normal_page(vma, addr, ptent);

			if (page)
				mv->rss[mm_counter(page_folio(page))]++;
			continue;
		}
		entry = pte_to_swp_entry(ptent);
		if (!non_swap_entry(entry))
			mv->rss[MM_SWAPENTS]++;
		else if (is_pfn_swap_entry(entry))
			mv->rss[mm_counter(pfn_swap_entry_folio(entry))]++;
	}
	pte_unmap_unlock(start_pte, ptl);
	return 0;
}

static const struct mm_walk_ops count_rss_ops = {
	.pmd_entry	= count_rss_pmd,
	.walk_lock	= PGWALK_WRLOCK,
};

/* Every table below the P4D level in the range, inside VMAs or not. */
static void count_tables(struct mm_struct *mm, unsigned long start,
			 unsigned long end, struct mshare_move *mv)
{
	unsigned long addr;
	int i, j;

	for (addr = start; addr < end; addr += MSHARE_UNIT) {
		pgd_t *pgd = pgd_offset(mm, addr);
		p4d_t *p4d;
		pud_t *pud;

		if (pgd_none(*pgd))
			continue;
		p4d = p4d_offset(pgd, addr);
		if (p4d_none(*p4d))
			continue;
		mv->puds++;
		pud = pud_offset(p4d, addr);
		for (i = 0; i < PTRS_PER_PUD; i++) {
			pmd_t *pmd;

			if (pud_none(pud[i]) || pud_leaf(pud[i]))
				continue;
			mv->pmds++;
			pmd = pmd_offset(&pud[i], 0);
			for (j = 0; j < PTRS_PER_PMD; j++) {
				pmd_t val = pmdp_get_lockless(&pmd[j]);

				if (pmd_none(val) || !pmd_present(val) ||
				    pmd_leaf(val))
					continue;
				mv->ptes++;
			}
		}
	}
}

static long table_bytes(const struct mshare_move *mv)
{
	return mv->ptes * PTRS_PER_PTE * sizeof(pte_t) +
	       mv->pmds * PTRS_PER_PMD * sizeof(pmd_t) +
	       mv->puds * PTRS_PER_PUD * sizeof(pud_t);
}

static int check_movable(struct mm_struct *mm, unsigned long start,
			 unsigned long end)
{
	VMA_ITERATOR(vmi, mm, start);
	struct vm_area_struct *vma;

	if (mm_has_notifiers(mm))
		return -EBUSY;	/* a secondary MMU follows this mm */
	for_each_vma_range(vmi, vma, end) {
		if (vma->vm_start < start || vma->vm_end > end)
			return -EINVAL;
		if ((vma->vm_flags & MSHARE_REFUSED_VMFLAGS) ||
		    userfaultfd_armed(vma))
			return -EINVAL;
	}
	return 0;
}

/*
 * KSM merges pages of the mms it scans, and the host is not one of them:
 * break the creator's merged pages up and drop its advice before the VMAs
 * move, so that no KSM page is ever mapped in a region.
 */
static int unmerge_ksm(struct mm_struct *mm, unsigned long start,
		       unsigned long end)
{
	VMA_ITERATOR(vmi, mm, start);
	struct vm_area_struct *vma;

	for_each_vma_range(vmi, vma, end) {
		unsigned long flags = vma->vm_flags;
		int err;

		if (!(flags & VM_MERGEABLE))
			continue;
		err = ksm_madvise(vma, vma->vm_start, vma->vm_end,
				  MADV_UNMERGEABLE, &flags);
		if (err)
			return err;
		vma_start_write(vma);
		vm_flags_reset(vma, flags);
	}
	return 0;
}

/*
 * Everything commit_create() needs, allocated while failing is still
 * possible: the creator's and the host's P4D tables (real tables with
 * 5-level paging, where the creator may have nothing mapped under a PGD
 * entry; the PGDs themselves with 4 levels), and a host PUD table for
 * every unit the creator has none for.  What the creator has, it hands
 * over.
 */
static int prepare_tables(struct mm_struct *mm, struct mm_struct *host,
			  unsigned long start, unsigned long end)
{
	unsigned long addr;

	for (addr = start; addr < end; addr += MSHARE_UNIT) {
		p4d_t *p4d = p4d_alloc(mm, pgd_offset(mm, addr), addr);
		p4d_t *hp4d = p4d_alloc(host, pgd_offset(host, addr), addr);

		if (!p4d || !hp4d)
			return -ENOMEM;
		if (p4d_none(*p4d) && !pud_alloc(host, hp4d, addr))
			return -ENOMEM;
	}
	return 0;
}

/* Enter the creator's VMAs in the host's tree; they stay in the creator's. */
static int host_insert_vmas(struct mm_struct *mm, struct mm_struct *host,
			    unsigned long start, unsigned long end,
			    struct mshare_move *mv)
{
	VMA_ITERATOR(vmi, mm, start);
	struct vm_area_struct *vma;

	for_each_vma_range(vmi, vma, end) {
		MA_STATE(mas, &host->mm_mt, vma->vm_start, vma->vm_end - 1);
		int err;

		vma_start_write(vma);
		err = mas_store_gfp(&mas, vma, GFP_KERNEL);
		if (err)
			return err;
		mv->nr_vmas++;
	}
	return 0;
}

/*
 * The creator's NUMA scanner may have left PROT_NONE hinting entries in
 * the tables it hands over.  Nothing scans a region, and each would cost
 * the first sharer to touch the page a fault: restore every entry to its
 * VMA's protection, as an mprotect() to the same protection would.
 */
static void clear_numa_hints(struct mm_struct *host, unsigned long start,
			     unsigned long end)
{
	VMA_ITERATOR(vmi, host, start);
	struct vm_area_struct *vma;
	struct mmu_gather tlb;

	if (!sysctl_numa_balancing_mode)
		return;
	tlb_gather_mmu(&tlb, host);
	for_each_vma_range(vmi, vma, end) {
		if (!vma_is_accessible(vma))
			continue;
		change_protection(&tlb, vma, vma->vm_start, vma->vm_end,
				  vma_wants_manual_pte_write_upgrade(vma) ?
				  MM_CP_TRY_CHANGE_WRITABLE : 0);
	}
	tlb_finish_mmu(&tlb);
}

/*
 * Nothing can fail from here on.  The window replaces the creator's VMAs,
 * which now belong to the host with their tables and counters.
 */
static void commit_create(struct mm_struct *mm, struct mshare_region *region,
			  struct vm_area_struct *window, struct vma_iterator *wvmi,
			  struct mshare_move *mv)
{
	MA_STATE(mas, &region->mm->mm_mt, region->start, region->start);
	struct mm_struct *host = region->mm;
	unsigned long start = region->start, end = region_end(region);
	struct vm_area_struct *vma;
	unsigned long addr;
	long bytes;
	int i;

	walk_page_range(mm, start, end, &count_rss_ops, mv);
	count_tables(mm, start, end, mv);

	vma_iter_store(wvmi, window);
	mas_for_each(&mas, vma, end - 1) {
		vm_stat_account(mm, vma->vm_flags, -vma_pages(vma));
		vm_stat_account(host, vma->vm_flags, vma_pages(vma));
		if (vma->vm_flags & VM_LOCKED) {
			mm->locked_vm -= vma_pages(vma);
			host->locked_vm += vma_pages(vma);
		}
		vma->vm_mm = host;
		vma_start_write(vma);
	}
	mm->map_count -= mv->nr_vmas;
	host->map_count += mv->nr_vmas;

	/*
	 * Hand the creator's tables over, or point it at the host's.  No
	 * other CPU can use the creator's GUP-fast path from here on.
	 */
	mark_has_mshare(mm);
	for (addr = start; addr < end; addr += MSHARE_UNIT) {
		p4d_t *p4d = p4d_offset(pgd_offset(mm, addr), addr);
		p4d_t *hp4d = host_p4d(region, addr);

		spin_lock(&mm->page_table_lock);
		if (p4d_none(*hp4d))
			set_p4d(hp4d, table_entry(p4d_pgtable(*p4d), true));
		set_p4d(p4d, window_entry(window, hp4d));
		spin_unlock(&mm->page_table_lock);
	}

	for (i = 0; i < NR_MM_COUNTERS; i++) {
		add_mm_counter(mm, i, -(long)mv->rss[i]);
		add_mm_counter(host, i, mv->rss[i]);
	}
	bytes = table_bytes(mv);
	atomic_long_sub(bytes, &mm->pgtables_bytes);
	atomic_long_add(bytes, &host->pgtables_bytes);
	if (test_bit(MMF_HUGE_ZERO_PAGE, &mm->flags))
		mm_get_huge_zero_folio(host);
	clear_numa_hints(host, start, end);

	mm->map_count++;
	vm_stat_account(mm, window->vm_flags, vma_pages(window));
	mshare_region_get(region);
	if (!(window->vm_flags & VM_WRITE))
		flush_tlb_mm(mm);
}

/*
 * Move the caller's mappings in [region->start, region_end) into the
 * region, which has a name already but no sharer: nobody else touches the
 * host until region->created completes.
 */
static int mshare_create(struct mshare_region *region, bool writable)
{
	VMA_ITERATOR(wvmi, current->mm, region->start);
	unsigned long start = region->start, end = region_end(region);
	struct mm_struct *mm = current->mm;
	struct mm_struct *host = region->mm;
	struct mshare_move mv = {};
	struct vm_area_struct *window;
	int err;

	window = window_alloc(mm, region, writable);
	if (!window)
		return -ENOMEM;
	if (mmap_write_lock_killable(mm)) {
		err = -EINTR;
		goto free;
	}
	err = check_movable(mm, start, end);
	if (!err)
		err = unmerge_ksm(mm, start, end);
	if (err) {
		mmap_write_unlock(mm);
		goto free;
	}
	mmap_write_lock(host);
	err = prepare_tables(mm, host, start, end);
	if (err)
		goto unlock;
	err = host_insert_vmas(mm, host, start, end, &mv);
	if (err)
		goto forget_vmas;
	vma_iter_config(&wvmi, start, end);
	err = vma_iter_prealloc(&wvmi, window);
	if (err)
		goto forget_vmas;

	commit_create(mm, region, window, &wvmi, &mv);
	mmap_write_unlock(host);
	mmap_write_unlock(mm);
	return 0;

forget_vmas:
	/* The VMAs are still the creator's: the host must not free them. */
	__mt_destroy(&host->mm_mt);
unlock:
	mmap_write_unlock(host);
	mmap_write_unlock(mm);
free:
	vm_area_free(window);
	return err;
}

/*
 * Wait for the region's creator to finish.  ENOENT if creating it failed:
 * as if the name had not been there.
 */
static int wait_created(struct mshare_region *region)
{
	if (wait_for_completion_killable(&region->created))
		return -EINTR;
	return region->create_err ? -ENOENT : 0;
}

/* Attach: the caller's range must be empty. */

static int mshare_attach(struct mshare_region *region, unsigned long start,
			 unsigned long size, bool writable)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *window;
	int err;

	if (start != region->start || size != region->size)
		return -EINVAL;
	err = wait_created(region);
	if (err)
		return err;
	window = window_alloc(mm, region, writable);
	if (!window)
		return -ENOMEM;
	if (mmap_write_lock_killable(mm)) {
		err = -EINTR;
		goto free;
	}
	if (find_vma_intersection(mm, start, start + size)) {
		err = -EEXIST;
		goto unlock;
	}
	/* Its notifiers would not hear of the host's changes: see below. */
	if (mm_has_notifiers(mm)) {
		err = -EBUSY;
		goto unlock;
	}
	err = link_window(window);
	if (err)
		goto unlock;
	err = insert_vm_struct(mm, window);
	if (err) {
		mshare_unmap_window(window);
		goto unlock;
	}
	vm_stat_account(mm, window->vm_flags, vma_pages(window));
	mshare_region_get(region);
	mmap_write_unlock(mm);
	return 0;

unlock:
	mmap_write_unlock(mm);
free:
	vm_area_free(window);
	return err;
}

/*
 * Secondary MMUs (KVM, IOMMU SVA, ODP, HMM) follow an mm's tables through
 * its MMU notifiers.  Under a window the tables are the host's and change
 * under the host's lock, where no sharer's notifier hears of it: an mm has
 * either windows or notifiers, never both.  Called with the mmap_lock held
 * for writing, which attach holds too.
 */
bool mshare_mm_has_window(struct mm_struct *mm)
{
	VMA_ITERATOR(vmi, mm, 0);
	struct vm_area_struct *vma;

	mmap_assert_write_locked(mm);
	if (!mm_has_mshare(mm))
		return false;
	for_each_vma(vmi, vma)
		if (vma_is_mshare(vma))
			return true;
	return false;
}

/* Faults in a window are resolved in the host. */

static bool host_access_ok(struct vm_area_struct *hvma, unsigned int flags)
{
	if (flags & FAULT_FLAG_WRITE)
		return hvma->vm_flags & VM_WRITE;
	if (flags & FAULT_FLAG_INSTRUCTION)
		return hvma->vm_flags & VM_EXEC;
	return hvma->vm_flags & (VM_READ | VM_WRITE | VM_EXEC);
}

/*
 * Called from handle_mm_fault() with the sharer's mmap_lock held for
 * reading.  When the fault may be retried, waiting for the host's lock is
 * killable, and when the host's fault handler drops the host's lock
 * (VM_FAULT_RETRY, VM_FAULT_COMPLETED), the sharer's is dropped too, as
 * the caller expects of those returns.  Callers that cannot retry wait.
 */
vm_fault_t mshare_fault(struct vm_area_struct *vma, unsigned long address,
			unsigned int flags, struct pt_regs *regs)
{
	struct mshare_region *region = vma->vm_private_data;
	struct mm_struct *mm = vma->vm_mm, *host = region->mm;
	struct vm_area_struct *hvma;
	struct mem_cgroup *old;
	vm_fault_t ret;

	if ((flags & FAULT_FLAG_WRITE) && !(vma->vm_flags & VM_WRITE))
		return VM_FAULT_SIGSEGV;
	if (WARN_ON_ONCE(flags & FAULT_FLAG_VMA_LOCK))
		return VM_FAULT_SIGSEGV;
	/* Linked at attach and fork; relink if anything unlinked it. */
	if (link_unit(vma, ALIGN_DOWN(address, MSHARE_UNIT)))
		return VM_FAULT_OOM;

	/*
	 * RETRY_NOWAIT asks for the caller's lock to be kept on a retry,
	 * which the host's handler would not know to do: do not retry.
	 */
	if (flags & FAULT_FLAG_RETRY_NOWAIT)
		flags &= ~(FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_RETRY_NOWAIT);
	if (!(flags & FAULT_FLAG_ALLOW_RETRY)) {
		flags &= ~FAULT_FLAG_KILLABLE;
		mmap_read_lock(host);
	} else if (!(flags & FAULT_FLAG_KILLABLE)) {
		mmap_read_lock(host);
	} else if (mmap_read_lock_killable(host)) {
		/* The caller sees the fatal signal and gives up. */
		mmap_read_unlock(mm);
		return VM_FAULT_RETRY;
	}
	hvma = vma_lookup(host, address);
	if (!hvma) {
		ret = VM_FAULT_SIGBUS;		/* a hole in the region */
	} else if (!host_access_ok(hvma, flags)) {
		ret = VM_FAULT_SIGSEGV;
	} else {
		old = charge_region(region);
		ret = handle_mm_fault(hvma, address, flags, regs);
		set_active_memcg(old);
		if (ret & (VM_FAULT_RETRY | VM_FAULT_COMPLETED)) {
			/* The host's lock is gone already. */
			mmap_read_unlock(mm);
			return ret;
		}
	}
	mmap_read_unlock(host);
	return ret;
}

/* Calls that change mappings inside a window change the region. */

static struct vm_area_struct *window_meeting(struct mm_struct *mm,
					     unsigned long start,
					     unsigned long end)
{
	VMA_ITERATOR(vmi, mm, start);
	struct vm_area_struct *vma;

	for_each_vma_range(vmi, vma, end)
		if (vma_is_mshare(vma))
			return vma;
	return NULL;
}

bool mshare_range_touches_window(struct mm_struct *mm, unsigned long start,
				 unsigned long len)
{
	/* mremap() of 0 bytes names the page at start: check that page. */
	unsigned long end = start + max(PAGE_ALIGN(len), PAGE_SIZE);

	mmap_assert_locked(mm);
	if (!mm_has_mshare(mm) || end <= start)
		return false;
	return window_meeting(mm, start, end);
}

/*
 * Find the window that [*startp, *startp + len) lies in, with the address
 * untagged as the generic code would (LAM): *startp is updated.  Returns 0
 * when the range meets no window (or, with @whole_is_local, covers a window
 * whole: that detaches it), 1 with a reference on the region in *regionp,
 * or an error: EINVAL when the range straddles a window's edge, EACCES
 * when @write and the window is read-only.
 */
static int window_target(struct mm_struct *mm, unsigned long *startp,
			 unsigned long len, bool write, bool whole_is_local,
			 struct mshare_region **regionp)
{
	struct vm_area_struct *vma;
	unsigned long start, end;
	int ret;

	if (!mm || !mm_has_mshare(mm) || !len)
		return 0;
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	start = untagged_addr_remote(mm, *startp);
	end = start + PAGE_ALIGN(len);
	vma = end > start ? window_meeting(mm, start, end) : NULL;
	if (!vma) {
		ret = 0;
	} else if (whole_is_local && start <= vma->vm_start &&
		   end >= vma->vm_end) {
		ret = 0;
	} else if (start < vma->vm_start || end > vma->vm_end) {
		ret = -EINVAL;
	} else if (write && !(vma->vm_flags & VM_WRITE)) {
		ret = -EACCES;
	} else {
		*regionp = mshare_region_get(vma->vm_private_data);
		*startp = start;
		ret = 1;
	}
	mmap_read_unlock(mm);
	return ret;
}

bool mshare_mmap(struct file *file, unsigned long addr, unsigned long len,
		 unsigned long prot, unsigned long flags, unsigned long pgoff,
		 unsigned long *ret)
{
	struct mshare_region *region;
	unsigned long populate = 0;
	struct mm_struct *host;
	LIST_HEAD(uf);
	int found;

	/* Only a fixed address lands in a window; a hint never does. */
	if (!(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)))
		return false;
	found = window_target(current->mm, &addr, len, true, false, &region);
	if (found <= 0) {
		*ret = found;
		return found < 0;
	}
	host = region->mm;
	if ((flags & (MAP_HUGETLB | MAP_GROWSDOWN)) ||
	    (file && is_file_hugepages(file))) {
		*ret = -EINVAL;
	} else if (mmap_write_lock_killable(host)) {
		*ret = -EINTR;
	} else {
		struct mem_cgroup *old = charge_region(region);

		*ret = __do_mmap(host, file, addr, len, prot, flags, 0, pgoff,
				 &populate, &uf);
		mmap_write_unlock(host);
		/*
		 * In the host, whose VMA's flags decide how: a private mapping
		 * gets pages it can write, not the zero page.
		 */
		if (populate && !IS_ERR_VALUE(*ret))
			mm_populate_range(host, *ret, populate, 1);
		set_active_memcg(old);
	}
	mshare_region_put(region);
	return true;
}

bool mshare_munmap(unsigned long start, size_t len, int *ret)
{
	struct mshare_region *region;
	int found;

	found = window_target(current->mm, &start, len, true, true, &region);
	if (found <= 0) {
		*ret = found;
		return found < 0;
	}
	if (mmap_write_lock_killable(region->mm)) {
		*ret = -EINTR;
	} else {
		struct mem_cgroup *old = charge_region(region);

		*ret = do_munmap(region->mm, start, len, NULL);
		set_active_memcg(old);
		mmap_write_unlock(region->mm);
	}
	mshare_region_put(region);
	return true;
}

bool mshare_mprotect(unsigned long start, size_t len, unsigned long prot,
		     int pkey, int *ret)
{
	struct mshare_region *region;
	struct mem_cgroup *old;
	int found;

	found = window_target(current->mm, &start, len, true, false, &region);
	if (found <= 0) {
		*ret = found;
		return found < 0;
	}
	/* Protection keys are per process: they have no meaning here. */
	old = charge_region(region);
	*ret = pkey == -1 ? do_mprotect_mm(region->mm, start, len, prot) :
			    -EINVAL;
	set_active_memcg(old);
	mshare_region_put(region);
	return true;
}

/*
 * Advice a read-only sharer may give: reading pages in.  Everything else
 * changes the region for every sharer: its VMAs (NORMAL, RANDOM, ... split
 * them), or what is resident (COLD and PAGEOUT evict every sharer's pages).
 */
static bool madvise_is_harmless(int behavior)
{
	switch (behavior) {
	case MADV_WILLNEED:
	case MADV_POPULATE_READ:
		return true;
	}
	return false;
}

bool mshare_madvise(struct mm_struct *mm, unsigned long start, size_t len,
		    int behavior, int *ret)
{
	struct mshare_region *region;
	struct mem_cgroup *old;
	int found;

	found = window_target(mm, &start, len, !madvise_is_harmless(behavior),
			      false, &region);
	if (found <= 0) {
		*ret = found;
		return found < 0;
	}
	old = charge_region(region);
	/* KSM would merge pages that every sharer writes to. */
	if (behavior == MADV_MERGEABLE || behavior == MADV_UNMERGEABLE)
		*ret = -EINVAL;
	else
		*ret = do_madvise(region->mm, start, len, behavior);
	set_active_memcg(old);
	mshare_region_put(region);
	return true;
}

/*
 * mlock() and munlock() in a window lock the region's mappings, for every
 * sharer; the region's locked_vm counts them, against the caller's
 * RLIMIT_MEMLOCK.  mlock() then faults the range in, in the host, as
 * do_mlock() does (errors as mlock(2) reports them).
 */
bool mshare_mlock(unsigned long start, size_t len, vm_flags_t flags, int *ret)
{
	struct mshare_region *region;
	struct mem_cgroup *old;
	int found;

	found = window_target(current->mm, &start, len, true, false, &region);
	if (found <= 0) {
		*ret = found;
		return found < 0;
	}
	old = charge_region(region);
	*ret = mlock_range_mm(region->mm, start, len, flags);
	if (!*ret && (flags & VM_LOCKED) && !(flags & VM_LOCKONFAULT)) {
		*ret = mm_populate_range(region->mm, start, len, 0);
		if (*ret == -EFAULT)
			*ret = -ENOMEM;
		else if (*ret == -ENOMEM)
			*ret = -EAGAIN;
	}
	set_active_memcg(old);
	mshare_region_put(region);
	return true;
}

/*
 * Create a region named @name; called with msharefs locked, unlocks it.
 * The name goes in first, so that nobody else creates it meanwhile, and
 * the region's mappings after the lock is dropped.
 */
static int mshare_create_named(const char *name, unsigned long start,
			       unsigned long size, bool writable, umode_t mode)
{
	struct mshare_region *region;
	int err;

	region = region_alloc(name, start, size);
	if (!region) {
		msharefs_unlock();
		return -ENOMEM;
	}
	/* The name takes a reference; ours keeps it alive while creating. */
	err = msharefs_add_locked(name, mode, mshare_region_get(region));
	msharefs_unlock();
	if (err) {
		mshare_region_put(region);
		mshare_region_put(region);
		return err;
	}
	err = mshare_create(region, writable);
	region->create_err = err;
	complete_all(&region->created);
	if (err)
		msharefs_remove(name, region);
	mshare_region_put(region);
	return err;
}

/*
 * Futexes on private memory are keyed by mm and address.  Within a window
 * the sharers are as threads of one process, and the memory is the
 * region's: key it by the region's host, so that a wake in one sharer
 * reaches a waiter in another.  The key holds no reference on the host;
 * a stale key only ever gives a spurious wake-up, which futex users allow.
 */
struct mm_struct *mshare_futex_mm(struct mm_struct *mm, unsigned long address)
{
	struct mm_struct *key = mm;
	struct vm_area_struct *vma;

	if (!mm || !mm_has_mshare(mm))
		return mm;
	mmap_read_lock(mm);
	vma = vma_lookup(mm, address);
	if (vma && vma_is_mshare(vma))
		key = mshare_window_host_mm(vma);
	mmap_read_unlock(mm);
	return key;
}

/* The syscalls */

static int mshare_get_name(const char __user *uname, char *name)
{
	long n = strncpy_from_user(name, uname, NAME_MAX + 1);

	if (n < 0)
		return n;
	if (n == 0)
		return -EINVAL;
	if (n > NAME_MAX)
		return -ENAMETOOLONG;
	if (strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	return 0;
}

static int mshare_check_range(unsigned long addr, unsigned long len)
{
	if (!len || !IS_ALIGNED(addr, MSHARE_UNIT) ||
	    !IS_ALIGNED(len, MSHARE_UNIT))
		return -EINVAL;
	if (addr + len < addr || addr + len > TASK_SIZE)
		return -EINVAL;
	/* As mmap(): below mmap_min_addr only with CAP_SYS_RAWIO. */
	return security_mmap_addr(addr);
}

SYSCALL_DEFINE5(mshare, const char __user *, uname, unsigned long, addr,
		unsigned long, len, int, oflags, umode_t, mode)
{
	bool exclusive = (oflags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL);
	struct mshare_region *region;
	char name[NAME_MAX + 1];
	bool writable;
	int err;

	if (oflags & ~MSHARE_VALID_OFLAGS)
		return -EINVAL;
	switch (oflags & O_ACCMODE) {
	case O_RDONLY:
		writable = false;
		break;
	case O_RDWR:
		writable = true;
		break;
	default:
		return -EINVAL;
	}
	err = mshare_get_name(uname, name);
	if (err)
		return err;
	err = mshare_check_range(addr, len);
	if (err)
		return err;

	/*
	 * The msharefs lock covers looking the name up and entering it, never
	 * a wait for an mm's lock: a caller stalled on its own mm stalls no
	 * one else.  A name whose creation failed is gone; try again.
	 */
	do {
		msharefs_lock();
		region = msharefs_find_locked(name, exclusive ? 0 :
					      MAY_READ | (writable ? MAY_WRITE : 0));
		if (!IS_ERR(region)) {
			msharefs_unlock();
			err = exclusive ? -EEXIST :
					  mshare_attach(region, addr, len, writable);
			mshare_region_put(region);
		} else if (PTR_ERR(region) == -ENOENT && (oflags & O_CREAT)) {
			err = mshare_create_named(name, addr, len, writable,
						  mode & 0777);
		} else {
			msharefs_unlock();
			err = PTR_ERR(region);
		}
	} while (err == -ENOENT && (oflags & O_CREAT));
	return err;
}

SYSCALL_DEFINE1(mshare_unlink, const char __user *, uname)
{
	char name[NAME_MAX + 1];
	int err;

	err = mshare_get_name(uname, name);
	if (err)
		return err;
	return msharefs_unlink(name);
}

static int __init mshare_debugfs_init(void)
{
	struct dentry *dir = debugfs_create_dir("mshare", NULL);

	/* Tests compare it with its value before they ran: leaks show. */
	debugfs_create_atomic_t("regions", 0444, dir, &mshare_nr_regions);
	return 0;
}
late_initcall(mshare_debugfs_init);
