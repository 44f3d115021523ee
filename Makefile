# mshare: page-table sharing between processes.  `make help` lists targets.
#
# Everything is built under build/; the kernel tree there is Debian's
# linux-source-6.12 with our files and kernel/patches/series applied.

SHELL := /bin/bash
BUILD := $(CURDIR)/build
export BUILD_DIR := $(BUILD)

# CMD reaches the guest through the environment, so the host shell never
# interprets it.
CMD ?=
ADD ?=
export CMD
# KERNEL=distro: build and boot build/linux-distro, the test kernel with
# what distribution kernels have (5-level paging, PTI, NUMA balancing,
# KVM, Landlock), booted with LA57, two NUMA nodes and four CPUs.
# KASAN=1: add generic, inline KASAN (build/linux-kasan, or
# build/linux-distro-kasan with KERNEL=distro).  The variant names the
# fragment directories under kernel/config/, joined by '-'.
KERNEL ?= test
ifneq ($(filter-out test distro,$(KERNEL)),)
$(error KERNEL=$(KERNEL): use KERNEL=test (default) or KERNEL=distro)
endif
KERNEL_VARIANT := $(patsubst -%,%,$(if $(filter distro,$(KERNEL)),distro)$(if $(filter 1,$(KASAN)),-kasan))
export KERNEL_VARIANT
GUEST_MEM ?= 2G
# Unset: 2 CPUs, or what the variant's qemu.conf asks for (distro: 4).
GUEST_SMP ?=
export GUEST_MEM GUEST_SMP

.PHONY: all help deps kernel headers guest initramfs run shell test stress demo bench check-docs patchset check-patchset mm-selftests clean distclean

all: initramfs

help:
	@echo "make demo        boot the patched kernel and show processes sharing page tables"
	@echo "make test        host tests + every guest test suite; closing line 'N passed, N failed'"
	@echo "make stress      stress (64 procs x 10,000 cycles) + fuzz (100,000 ops) suites, ~25 min"
	@echo "make bench       page tables, faults and times per backend and N (<30 min; QUICK=1: minutes)"
	@echo "make patchset    the upstream patch series with a cover letter, in build/patchset/"
	@echo "make check-patchset  git am + build after every patch, checkpatch --strict, sparse"
	@echo "make mm-selftests    kernel mm selftests on a pristine 6.12 and on ours: same results"
	@echo "make test KASAN=1    the same suites on a generic, inline KASAN kernel"
	@echo "make test KERNEL=distro  the same suites on a distribution-like kernel (la57, PTI, NUMA)"
	@echo "make deps        install the Debian packages the project needs"
	@echo "make kernel      extract, overlay, patch, configure (verified) and build bzImage"
	@echo "make headers     install the patched kernel's uapi headers into build/headers"
	@echo "make initramfs   busybox guest with every static test program"
	@echo "make run CMD=... [ADD='file...']   run CMD in the guest, exit with its status"
	@echo "make shell       interactive guest shell on the serial console (Ctrl-A x quits)"
	@echo "make check-docs  man pages and kernel rst render without a warning"
	@echo "Logs: build/logs/.  Guest size: GUEST_MEM=$(GUEST_MEM) GUEST_SMP=$(GUEST_SMP)."

deps:
	@scripts/deps.sh

kernel: deps
	@scripts/kernel.sh build

headers: deps
	@scripts/kernel.sh headers

guest: headers
	@scripts/guest-build.sh

initramfs: guest
	@scripts/initramfs.sh $(BUILD)/initramfs.cpio

run: initramfs
	@test -n "$$CMD" || { echo "usage: make run CMD='command' [ADD='file...']"; exit 2; }
	@scripts/qemu-run.sh --name run $(foreach f,$(ADD),--add $(f)) -- "$$CMD"

shell: initramfs
	@scripts/qemu-run.sh --name shell --shell

test: initramfs
	@scripts/test.sh

# Full-scale stress and fuzz suites (docs/reliability.md).
stress: initramfs
	@scripts/stress.sh

demo: initramfs
	@scripts/qemu-run.sh --name demo -- demo

# Results in build/bench/ (docs/benchmarks.md describes them).
bench: initramfs
	@scripts/bench.sh $(if $(filter-out 0,$(QUICK)),--quick)

check-docs: deps
	@scripts/check-docs.sh

# The upstream series: build/patchset/ (git format-patch, cover letter).
patchset: kernel
	@scripts/patchset.py

# git am onto a fresh tree, build after each patch, checkpatch, sparse.
check-patchset: kernel
	@scripts/check-patchset.sh

# tools/testing/selftests/mm on pristine 6.12 and on ours; results in
# build/mm-selftests/ (docs/reliability.md).
mm-selftests: initramfs
	@scripts/mm-selftests.sh

clean:
	rm -rf $(BUILD)/guest $(BUILD)/initramfs.cpio $(BUILD)/logs $(BUILD)/test-results

distclean:
	rm -rf $(BUILD)
