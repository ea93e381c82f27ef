// SPDX-License-Identifier: MIT
/* VMs and guest memory regions: the checks every backend shares. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
	if (cfg->flags & ~VCPU_VM_SYSTEM_SUSPEND)
		return hv_fail(hv, -EINVAL, "unknown vcpu_vm_config flags 0x%x",
			       cfg->flags & ~VCPU_VM_SYSTEM_SUSPEND);

	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return hv_fail(hv, -ENOMEM, "cannot allocate a VM handle");
	vm->hv = hv;
	vm->fd = -1;
	vm->irqchip_fd = -1;
	vm->flags = cfg->flags;
	r = pthread_mutex_init(&vm->lock, NULL);
	if (r) {
		free(vm);
		return hv_fail(hv, -r, "cannot initialise the VM lock");
	}
	r = hv->ops->vm_create(vm, cfg);
	if (r < 0) {
		/* The backend wrote its detail into the VM; keep it on the hv. */
		memcpy(hv->err, vm->err, sizeof(hv->err));
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

VCPU_API int vcpu_vm_destroy(struct vcpu_vm **pvm)
{
	struct vcpu_vm *vm;
	struct vcpu_hv *hv;
	unsigned n;

	if (!pvm || !*pvm)
		return -EINVAL;
	vm = *pvm;
	hv = vm->hv;
	pthread_mutex_lock(&vm->lock);
	n = vm->nr_vcpus;
	pthread_mutex_unlock(&vm->lock);
	if (n)
		return vm_fail(vm, -EBUSY, "cannot destroy the VM: %u vCPU(s) still exist", n);
	hv->ops->vm_destroy(vm);
	pthread_mutex_destroy(&vm->lock);
	free(vm->regions);
	free(vm);
	pthread_mutex_lock(&hv->lock);
	hv->nr_vms--;
	pthread_mutex_unlock(&hv->lock);
	*pvm = NULL;
	return 0;
}

VCPU_API int vcpu_vm_check(struct vcpu_vm *vm, enum vcpu_cap cap, uint64_t *value)
{
	if (!vm)
		return -EINVAL;
	if (!value)
		return vm_fail(vm, -EINVAL, "vcpu_vm_check: NULL value pointer");
	return vm->hv->ops->check(vm->hv, vm->fd, cap, value, vm->err);
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
			     uint32_t flags)
{
	uint64_t page = vm->hv->page_size;

	if (flags & ~(VCPU_MEM_READONLY | VCPU_MEM_LOG_DIRTY))
		return vm_fail(vm, -EINVAL, "unknown memory flags 0x%x",
			       flags & ~(VCPU_MEM_READONLY | VCPU_MEM_LOG_DIRTY));
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

VCPU_API int vcpu_vm_map(struct vcpu_vm *vm, uint64_t gpa, void *host, uint64_t size,
			 uint32_t flags)
{
	struct vcpu_region reg;
	int r;

	if (!vm)
		return -EINVAL;
	r = check_region_args(vm, gpa, host, size, flags);
	if (r < 0)
		return r;

	pthread_mutex_lock(&vm->lock);
	for (unsigned i = 0; i < vm->nr_regions; i++) {
		const struct vcpu_region *o = &vm->regions[i];
		if (overlaps(o, gpa, size)) {
			r = vm_fail(vm, -EEXIST, "region 0x%llx+0x%llx overlaps 0x%llx+0x%llx",
				    (unsigned long long)gpa, (unsigned long long)size,
				    (unsigned long long)o->gpa, (unsigned long long)o->size);
			goto out;
		}
	}
	if (vm->nr_regions >= vm->max_regions) {
		r = vm_fail(vm, -ENOSPC, "all %u memory slots of the driver are in use",
			    vm->max_regions);
		goto out;
	}
	if (vm->nr_regions == vm->cap_regions) {
		unsigned ncap = vm->cap_regions ? 2 * vm->cap_regions : 8;
		void *n = realloc(vm->regions, ncap * sizeof(*vm->regions));
		if (!n) {
			r = vm_fail(vm, -ENOMEM, "cannot grow the region table");
			goto out;
		}
		vm->regions = n;
		vm->cap_regions = ncap;
	}
	reg = (struct vcpu_region){ .gpa = gpa, .size = size, .host = host, .flags = flags,
				    .slot = free_slot(vm) };
	r = vm->hv->ops->vm_map(vm, &reg, false);
	if (r == 0)
		vm->regions[vm->nr_regions++] = reg;
out:
	pthread_mutex_unlock(&vm->lock);
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
		if (r == 0)
			vm->regions[i] = vm->regions[--vm->nr_regions];
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
	return vm->hv->ops->vm_gic_v3(vm, dist_base, redist_base, nr_irqs);
}

VCPU_API int vcpu_vm_forward_hypercalls(struct vcpu_vm *vm, uint32_t base, uint32_t count)
{
	if (!vm)
		return -EINVAL;
	if (vm->hv->arch != VCPU_ARCH_ARM64)
		return vm_fail(vm, -EINVAL, "SMCCC forwarding needs an arm64 VM");
	if (count == 0 || (uint64_t)base + count > 0x100000000ull)
		return vm_fail(vm, -EINVAL, "SMCCC range 0x%x+0x%x is empty or wraps", base, count);
	if (!vm->hv->ops->vm_forward_hypercalls)
		return vm_fail(vm, -EOPNOTSUPP, "the %s backend cannot forward hypercalls",
			       vm->hv->ops->name);
	return vm->hv->ops->vm_forward_hypercalls(vm, base, count);
}
