// SPDX-License-Identifier: MIT
/* VMs and guest memory regions: the checks every backend shares. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* A setting the backend does not have is refused, not ignored (vcpu.h). */
static int check_config(struct vcpu_hv *hv, const struct vcpu_vm_config *cfg)
{
	const struct {
		uint32_t bit;
		bool set;
		const char *what;
	} fields[] = {
		{ VCFG_IPA_BITS, cfg->ipa_bits != 0, "ipa_bits" },
		{ VCFG_SUSPEND, (cfg->flags & VCPU_VM_SYSTEM_SUSPEND) != 0, "VCPU_VM_SYSTEM_SUSPEND" },
		{ VCFG_CPU_AFFINITY, cfg->cpu_affinity != 0, "cpu_affinity" },
		{ VCFG_PM1A_PORT, cfg->x86_pm1a_cnt_port != 0, "x86_pm1a_cnt_port" },
		{ VCFG_NAME, cfg->name[0] != '\0', "name" },
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (fields[i].set && !(hv->ops->vm_config & fields[i].bit))
			return hv_fail(hv, -EINVAL, "vcpu_vm_config.%s is not a setting of the %s "
				       "backend: leave it 0", fields[i].what, hv->ops->name);
	return 0;
}

VCPU_API int vcpu_vm_create(struct vcpu_hv *hv, const struct vcpu_vm_config *cfg,
			    struct vcpu_vm **out)
{
	static const struct vcpu_vm_config defaults;
	struct vcpu_vm *vm;
	int r;

	if (!hv)
		return -EINVAL;
	if (!out)
		return hv_fail(hv, -EINVAL, "vcpu_vm_create: NULL out pointer");
	*out = NULL;
	if (!cfg)
		cfg = &defaults;
	for (unsigned i = 0; i < sizeof(cfg->reserved) / sizeof(cfg->reserved[0]); i++)
		if (cfg->reserved[i])
			return hv_fail(hv, -EINVAL, "vcpu_vm_config.reserved[%u] must be 0", i);
	if (cfg->reserved32)
		return hv_fail(hv, -EINVAL, "vcpu_vm_config.reserved32 must be 0");
	if (cfg->flags & ~(VCPU_VM_SYSTEM_SUSPEND | VCPU_VM_LAZY_HYPERCALL_ARGS))
		return hv_fail(hv, -EINVAL, "unknown vcpu_vm_config flags 0x%x",
			       cfg->flags & ~(VCPU_VM_SYSTEM_SUSPEND | VCPU_VM_LAZY_HYPERCALL_ARGS));
	r = check_config(hv, cfg);
	if (r < 0)
		return r;

	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return hv_fail(hv, -ENOMEM, "cannot allocate a VM handle");
	vm->hv = hv;
	atomic_flag_clear(&vm->err_busy);
	vm->fd = -1;
	vm->flags = cfg->flags;
	r = pthread_mutex_init(&vm->lock, NULL);
	if (r) {
		free(vm);
		return hv_fail(hv, -r, "cannot initialise the VM lock");
	}
	r = hv->ops->vm_create(vm, cfg);
	if (r < 0) {
		/* The backend wrote its detail into the VM; keep it on the hv. */
		vcpu_err_set(&hv->err_busy, hv->err, vm->err);
		pthread_mutex_destroy(&vm->lock);
		free(vm);
		return r;
	}
	pthread_mutex_lock(&hv->lock);
	hv->nr_vms++;
	pthread_mutex_unlock(&hv->lock);
	*out = vm;
	return 0;
}

static void free_owned(struct vcpu_vm *vm, struct vcpu_region *r)
{
	if (vm->hv->ops->vm_free)
		vm->hv->ops->vm_free(vm, r);
	else
		munmap(r->host, r->size);
	r->host = NULL;
}

VCPU_API int vcpu_vm_destroy(struct vcpu_vm **pvm)
{
	struct vcpu_vm *vm;
	struct vcpu_hv *hv;
	unsigned n;
	int r;

	if (!pvm || !*pvm)
		return -EINVAL;
	vm = *pvm;
	hv = vm->hv;
	pthread_mutex_lock(&vm->lock);
	n = vm->nr_vcpus;
	pthread_mutex_unlock(&vm->lock);
	if (n)
		return vm_fail(vm, -EBUSY, "cannot destroy the VM: %u vCPU(s) still exist", n);
	r = hv->ops->vm_destroy(vm);
	if (r < 0)
		return r; /* the handle stays valid: the caller may try again */
	/* The driver no longer uses the memory: free what vcpu_vm_alloc() made. */
	for (unsigned i = 0; i < vm->nr_regions; i++)
		if (vm->regions[i].owned)
			free_owned(vm, &vm->regions[i]);
	pthread_mutex_destroy(&vm->lock);
	free(vm->regions);
	free(vm->cpus);
	free(vm);
	pthread_mutex_lock(&hv->lock);
	hv->nr_vms--;
	pthread_mutex_unlock(&hv->lock);
	*pvm = NULL;
	return 0;
}

VCPU_API int vcpu_vm_check(struct vcpu_vm *vm, enum vcpu_cap cap, uint64_t *value)
{
	char err[VCPU_ERRLEN] = "";
	int r;

	if (!vm)
		return -EINVAL;
	if (!value)
		return vm_fail(vm, -EINVAL, "vcpu_vm_check: NULL value pointer");
	if (vcpu_core_check(vm->hv, cap, value))
		return 0;
	/* The backend formats into a buffer of this call's; the VM's is shared. */
	r = vm->hv->ops->check(vm->hv, vm->fd, cap, value, err);
	if (r < 0)
		vcpu_err_set(&vm->err_busy, vm->err, err);
	return r;
}

static bool overlaps(const struct vcpu_region *r, uint64_t gpa, uint64_t size)
{
	return gpa < r->gpa + r->size && r->gpa < gpa + size;
}

/* The lowest slot number no region uses: slots are reused after unmap. */
static uint32_t free_slot(const struct vcpu_vm *vm)
{
	uint32_t slot = 0;

	for (;;) {
		bool used = false;
		for (unsigned i = 0; i < vm->nr_regions; i++)
			if (vm->regions[i].slot == slot)
				used = true;
		if (!used)
			return slot;
		slot++;
	}
}

static int check_region_args(struct vcpu_vm *vm, uint64_t gpa, const void *host, uint64_t size,
			     uint32_t flags, uint32_t allowed)
{
	uint64_t page = vm->hv->page_size;

	if (flags & ~allowed)
		return vm_fail(vm, -EINVAL, "unknown memory flags 0x%x%s", flags & ~allowed,
			       flags & ~allowed & VCPU_MEM_SHARED ?
				       " (VCPU_MEM_SHARED is for vcpu_vm_alloc())" : "");
	if (!host)
		return vm_fail(vm, -EINVAL, "NULL host address");
	if (size == 0)
		return vm_fail(vm, -EINVAL, "zero-sized region at 0x%llx", (unsigned long long)gpa);
	if ((gpa | size) & (page - 1))
		return vm_fail(vm, -EINVAL,
			       "region 0x%llx+0x%llx is not aligned to the %llu-byte page size",
			       (unsigned long long)gpa, (unsigned long long)size,
			       (unsigned long long)page);
	if ((uintptr_t)host & (page - 1))
		return vm_fail(vm, -EINVAL, "host address %p is not page aligned", host);
	if (gpa + size < gpa)
		return vm_fail(vm, -EINVAL, "region 0x%llx+0x%llx wraps the address space",
			       (unsigned long long)gpa, (unsigned long long)size);
	if ((uintptr_t)host + size < (uintptr_t)host)
		return vm_fail(vm, -EINVAL, "host range %p+0x%llx wraps", host,
			       (unsigned long long)size);
	return 0;
}

#define HUGE_2M (2ull << 20)

/*
 * Guest RAM the way QEMU and kvmtool make it: private anonymous memory
 * (shared only when asked for: another process must see it), placed on a
 * 2 MiB boundary and advised for transparent huge pages, so the guest's
 * accesses fault in 2 MiB at a time and the driver can map them with large
 * stage-2 / EPT / NPT pages (Documentation/admin-guide/mm/transhuge.rst).
 * NULL on failure.
 */
static void *alloc_ram(uint64_t size, bool shared)
{
	const int flags = (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_NORESERVE;
	const uint64_t extra = size >= HUGE_2M ? HUGE_2M : 0;
	uint8_t *p, *start;
	uintptr_t head;

	if (size + extra < size)
		return NULL;
	p = mmap(NULL, size + extra, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Trim the over-allocation to a 2 MiB-aligned start. */
	head = extra ? (HUGE_2M - ((uintptr_t)p & (HUGE_2M - 1))) & (HUGE_2M - 1) : 0;
	start = p + head;
	if (head)
		munmap(p, head);
	if (extra - head)
		munmap(start + size, extra - head);
	/* Only a hint: THP may be off ("never") or unavailable for shared memory. */
	madvise(start, size, MADV_HUGEPAGE);
	return start;
}

/* Called with vm->lock held; @reg->host is NULL for vcpu_vm_alloc(). */
static int add_region(struct vcpu_vm *vm, struct vcpu_region *reg)
{
	int r;

	for (unsigned i = 0; i < vm->nr_regions; i++) {
		const struct vcpu_region *o = &vm->regions[i];
		if (overlaps(o, reg->gpa, reg->size))
			return vm_fail(vm, -EEXIST, "region 0x%llx+0x%llx overlaps 0x%llx+0x%llx",
				       (unsigned long long)reg->gpa, (unsigned long long)reg->size,
				       (unsigned long long)o->gpa, (unsigned long long)o->size);
	}
	if (vm->nr_regions >= vm->max_regions)
		return vm_fail(vm, -ENOSPC, "all %u memory slots of the driver are in use",
			       vm->max_regions);
	if (vm->nr_regions == vm->cap_regions) {
		unsigned ncap = vm->cap_regions ? 2 * vm->cap_regions : 8;
		void *n = realloc(vm->regions, ncap * sizeof(*vm->regions));
		if (!n)
			return vm_fail(vm, -ENOMEM, "cannot grow the region table");
		vm->regions = n;
		vm->cap_regions = ncap;
	}
	reg->slot = free_slot(vm);
	reg->mem_fd = -1;
	if (!reg->owned) {
		r = vm->hv->ops->vm_map(vm, reg, false);
	} else if (vm->hv->ops->vm_alloc) {
		r = vm->hv->ops->vm_alloc(vm, reg);
	} else {
		void *p = alloc_ram(reg->size, reg->shared || vm->hv->ops->ram_shared);

		if (!p)
			return vm_fail(vm, -ENOMEM, "cannot allocate 0x%llx bytes of guest RAM",
				       (unsigned long long)reg->size);
		reg->host = p;
		r = vm->hv->ops->vm_map(vm, reg, false);
		if (r < 0) {
			munmap(p, reg->size);
			reg->host = NULL;
		}
	}
	if (r == 0)
		vm->regions[vm->nr_regions++] = *reg;
	return r;
}

VCPU_API int vcpu_vm_map(struct vcpu_vm *vm, uint64_t gpa, void *host, uint64_t size,
			 uint32_t flags)
{
	struct vcpu_region reg = { .gpa = gpa, .size = size, .host = host, .flags = flags };
	int r;

	if (!vm)
		return -EINVAL;
	r = check_region_args(vm, gpa, host, size, flags, VCPU_MEM_READONLY | VCPU_MEM_LOG_DIRTY);
	if (r < 0)
		return r;
	pthread_mutex_lock(&vm->lock);
	r = add_region(vm, &reg);
	pthread_mutex_unlock(&vm->lock);
	return r;
}

VCPU_API int vcpu_vm_alloc(struct vcpu_vm *vm, uint64_t gpa, uint64_t size, uint32_t flags,
			   void **host)
{
	struct vcpu_region reg = { .gpa = gpa, .size = size, .flags = flags, .owned = true };
	int r;

	if (!vm)
		return -EINVAL;
	if (!host)
		return vm_fail(vm, -EINVAL, "vcpu_vm_alloc: NULL host pointer");
	*host = NULL;
	/* Any aligned non-NULL address passes the host checks; the real one comes later. */
	r = check_region_args(vm, gpa, (void *)(uintptr_t)vm->hv->page_size, size, flags,
			      VCPU_MEM_READONLY | VCPU_MEM_LOG_DIRTY | VCPU_MEM_SHARED);
	if (r < 0)
		return r;
	/* How to allocate is not the driver's business: it sees the slot flags only. */
	reg.flags = flags & ~VCPU_MEM_SHARED;
	reg.shared = flags & VCPU_MEM_SHARED;
	pthread_mutex_lock(&vm->lock);
	r = add_region(vm, &reg);
	pthread_mutex_unlock(&vm->lock);
	if (r == 0)
		*host = reg.host;
	return r;
}

VCPU_API int vcpu_vm_unmap(struct vcpu_vm *vm, uint64_t gpa, uint64_t size)
{
	unsigned i;
	int r;

	if (!vm)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	for (i = 0; i < vm->nr_regions; i++)
		if (vm->regions[i].gpa == gpa && vm->regions[i].size == size)
			break;
	if (i == vm->nr_regions) {
		r = vm_fail(vm, -ENOENT, "no region 0x%llx+0x%llx is mapped",
			    (unsigned long long)gpa, (unsigned long long)size);
	} else {
		r = vm->hv->ops->vm_map(vm, &vm->regions[i], true);
		if (r == 0) {
			if (vm->regions[i].owned)
				free_owned(vm, &vm->regions[i]);
			vm->regions[i] = vm->regions[--vm->nr_regions];
		}
	}
	pthread_mutex_unlock(&vm->lock);
	return r;
}

VCPU_API int vcpu_vm_set_irq_line(struct vcpu_vm *vm, uint32_t irq, int level)
{
	if (!vm)
		return -EINVAL;
	if (level != 0 && level != 1)
		return vm_fail(vm, -EINVAL, "irq level must be 0 or 1, not %d", level);
	return vm->hv->ops->vm_irq_line(vm, irq, level);
}

VCPU_API int vcpu_vm_create_gic_v3(struct vcpu_vm *vm, uint64_t dist_base, uint64_t redist_base,
				   uint32_t nr_irqs)
{
	if (!vm)
		return -EINVAL;
	if (vm->hv->arch != VCPU_ARCH_ARM64)
		return vm_fail(vm, -EINVAL, "a GICv3 needs an arm64 VM");
	if (!vm->hv->ops->vm_gic_v3)
		return vm_fail(vm, -EOPNOTSUPP, "the %s backend has no in-kernel GICv3",
			       vm->hv->ops->name);
	/* The GIC architecture's, whoever emulates it (vcpu_vm_create_gic_v3(3)). */
	if ((dist_base | redist_base) & (VCPU_GIC_V3_DIST_SIZE - 1))
		return vm_fail(vm, -EINVAL, "GICv3 bases 0x%llx/0x%llx must be 64 KiB aligned",
			       (unsigned long long)dist_base, (unsigned long long)redist_base);
	if (nr_irqs < 64 || nr_irqs > 1024 || nr_irqs % 32)
		return vm_fail(vm, -EINVAL, "GICv3 nr_irqs %u must be a multiple of 32 in 64..1024",
			       nr_irqs);
	return vm->hv->ops->vm_gic_v3(vm, dist_base, redist_base, nr_irqs);
}

VCPU_API int vcpu_x86_create_irqchip(struct vcpu_vm *vm, uint32_t flags)
{
	if (!vm)
		return -EINVAL;
	if (vm->hv->arch != VCPU_ARCH_X86_64)
		return vm_fail(vm, -EINVAL, "the PIC/IOAPIC/LAPIC irqchip needs an x86_64 VM "
			       "(arm64: vcpu_vm_create_gic_v3())");
	if (flags & ~VCPU_X86_IRQCHIP_PIT)
		return vm_fail(vm, -EINVAL, "unknown vcpu_x86_create_irqchip flags 0x%x",
			       flags & ~VCPU_X86_IRQCHIP_PIT);
	if (!vm->hv->ops->vm_x86_irqchip)
		return vm_fail(vm, -EOPNOTSUPP, "the %s backend has no call to create an x86 "
			       "irqchip%s", vm->hv->ops->name,
			       vm->hv->backend == VCPU_BACKEND_ACRN ?
				       " (the hypervisor's vPIC, vIOAPIC and vLAPIC always exist)" : "");
	return vm->hv->ops->vm_x86_irqchip(vm, flags);
}

VCPU_API int vcpu_vm_forward_hypercalls(struct vcpu_vm *vm, uint32_t base, uint32_t count)
{
	if (!vm)
		return -EINVAL;
	if (count == 0 || (uint64_t)base + count > 0x100000000ull)
		return vm_fail(vm, -EINVAL, "hypercall range 0x%x+0x%x is empty or wraps", base,
			       count);
	if (!vm->hv->ops->vm_forward_hypercalls)
		return vm_fail(vm, -EOPNOTSUPP, "the %s backend cannot forward hypercalls",
			       vm->hv->ops->name);
	return vm->hv->ops->vm_forward_hypercalls(vm, base, count);
}

static int unsupported(struct vcpu_vm *vm, const char *what)
{
	return vm_fail(vm, -EOPNOTSUPP, "the %s backend has no %s", vm->hv->ops->name, what);
}

VCPU_API int vcpu_vm_set_dtb(struct vcpu_vm *vm, uint64_t gpa, uint64_t size)
{
	if (!vm)
		return -EINVAL;
	if (size == 0 || gpa + size < gpa)
		return vm_fail(vm, -EINVAL, "device-tree range 0x%llx+0x%llx is empty or wraps",
			       (unsigned long long)gpa, (unsigned long long)size);
	if (!vm->hv->ops->vm_set_dtb)
		return unsupported(vm, "device-tree configuration (boot registers point at it)");
	return vm->hv->ops->vm_set_dtb(vm, gpa, size);
}

VCPU_API int vcpu_vm_get_dirty_log(struct vcpu_vm *vm, uint64_t gpa, uint64_t *bitmap,
				   uint64_t words)
{
	const struct vcpu_region *reg = NULL;
	uint64_t pages;
	int r;

	if (!vm)
		return -EINVAL;
	if (!bitmap)
		return vm_fail(vm, -EINVAL, "vcpu_vm_get_dirty_log: NULL bitmap");
	if (!vm->hv->ops->vm_get_dirty_log)
		return unsupported(vm, "dirty-page log");
	/* Under the lock: the region cannot be unmapped while the driver copies. */
	pthread_mutex_lock(&vm->lock);
	for (unsigned i = 0; i < vm->nr_regions; i++)
		if (vm->regions[i].gpa == gpa)
			reg = &vm->regions[i];
	if (!reg) {
		r = vm_fail(vm, -EINVAL, "no region starts at 0x%llx", (unsigned long long)gpa);
	} else if (!(reg->flags & VCPU_MEM_LOG_DIRTY)) {
		r = vm_fail(vm, -EINVAL, "the region at 0x%llx was mapped without "
			    "VCPU_MEM_LOG_DIRTY", (unsigned long long)gpa);
	} else {
		pages = reg->size / vm->hv->page_size;
		if (words < (pages + 63) / 64)
			r = vm_fail(vm, -EINVAL, "the region at 0x%llx has %llu pages: the bitmap "
				    "needs %llu words, not %llu", (unsigned long long)gpa,
				    (unsigned long long)pages, (unsigned long long)((pages + 63) / 64),
				    (unsigned long long)words);
		else
			r = vm->hv->ops->vm_get_dirty_log(vm, reg, bitmap);
	}
	pthread_mutex_unlock(&vm->lock);
	return r;
}

VCPU_API int vcpu_vm_start(struct vcpu_vm *vm)
{
	if (!vm)
		return -EINVAL;
	/* Drivers without a start call start each vCPU at its first run. */
	return vm->hv->ops->vm_start ? vm->hv->ops->vm_start(vm) : 0;
}

VCPU_API int vcpu_vm_pause(struct vcpu_vm *vm)
{
	if (!vm)
		return -EINVAL;
	if (!vm->hv->ops->vm_pause)
		return unsupported(vm, "VM-wide pause (kick the vCPU threads)");
	return vm->hv->ops->vm_pause(vm);
}

VCPU_API int vcpu_vm_reset(struct vcpu_vm *vm)
{
	if (!vm)
		return -EINVAL;
	if (!vm->hv->ops->vm_reset)
		return unsupported(vm, "VM reset");
	return vm->hv->ops->vm_reset(vm);
}

static bool zero64(const uint64_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

VCPU_API int vcpu_vm_irqfd(struct vcpu_vm *vm, const struct vcpu_irqfd *irqfd)
{
	const uint32_t known = VCPU_IRQFD_DEASSIGN | VCPU_IRQFD_LEVEL | VCPU_IRQFD_MSI;

	if (!vm)
		return -EINVAL;
	if (!irqfd)
		return vm_fail(vm, -EINVAL, "vcpu_vm_irqfd: NULL irqfd");
	if (irqfd->flags & ~known)
		return vm_fail(vm, -EINVAL, "unknown irqfd flags 0x%x", irqfd->flags & ~known);
	if (!zero64(irqfd->reserved, 2))
		return vm_fail(vm, -EINVAL, "vcpu_irqfd.reserved must be 0");
	if (!(irqfd->flags & VCPU_IRQFD_MSI) && (irqfd->msi_addr || irqfd->msi_data))
		return vm_fail(vm, -EINVAL, "irqfd: msi_addr/msi_data are only for VCPU_IRQFD_MSI");
	if (irqfd->fd < 0)
		return vm_fail(vm, -EBADF, "irqfd: %d is not an eventfd", irqfd->fd);
	if (!vm->hv->ops->vm_irqfd)
		return unsupported(vm, "irqfd");
	return vm->hv->ops->vm_irqfd(vm, irqfd);
}

VCPU_API int vcpu_vm_ioeventfd(struct vcpu_vm *vm, const struct vcpu_ioeventfd *io)
{
	const uint32_t known = VCPU_IOEVENTFD_DEASSIGN | VCPU_IOEVENTFD_PIO |
			       VCPU_IOEVENTFD_DATAMATCH;

	if (!vm)
		return -EINVAL;
	if (!io)
		return vm_fail(vm, -EINVAL, "vcpu_vm_ioeventfd: NULL ioeventfd");
	if (io->flags & ~known)
		return vm_fail(vm, -EINVAL, "unknown ioeventfd flags 0x%x", io->flags & ~known);
	if (io->reserved32 || !zero64(io->reserved, 2))
		return vm_fail(vm, -EINVAL, "vcpu_ioeventfd reserved fields must be 0");
	if (io->len != 0 && io->len != 1 && io->len != 2 && io->len != 4 && io->len != 8)
		return vm_fail(vm, -EINVAL, "ioeventfd length %u is not 0, 1, 2, 4 or 8", io->len);
	if (io->len == 0 && (io->flags & VCPU_IOEVENTFD_DATAMATCH))
		return vm_fail(vm, -EINVAL, "ioeventfd: DATAMATCH needs a length");
	if (io->addr + (io->len ? io->len : 1) < io->addr)
		return vm_fail(vm, -EINVAL, "ioeventfd address 0x%llx wraps",
			       (unsigned long long)io->addr);
	if ((io->flags & VCPU_IOEVENTFD_PIO) && vm->hv->arch != VCPU_ARCH_X86_64)
		return vm_fail(vm, -EINVAL, "port I/O ioeventfds exist only on x86_64");
	if (io->fd < 0)
		return vm_fail(vm, -EBADF, "ioeventfd: %d is not an eventfd", io->fd);
	if (!vm->hv->ops->vm_ioeventfd)
		return unsupported(vm, "ioeventfd");
	return vm->hv->ops->vm_ioeventfd(vm, io);
}

VCPU_API int vcpu_vm_signal_msi(struct vcpu_vm *vm, uint64_t addr, uint64_t data)
{
	if (!vm)
		return -EINVAL;
	if (!vm->hv->ops->vm_signal_msi)
		return unsupported(vm, "MSI injection");
	return vm->hv->ops->vm_signal_msi(vm, addr, data);
}
