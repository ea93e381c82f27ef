// SPDX-License-Identifier: MIT
/*
 * The Gunyah backend: /dev/gunyah, speaking the v17 `GUNYAH_` ABI or, when the
 * probe at open finds an older driver, the v8 `GH_` ABI (doc/abi/gunyah.md
 * parts A and B; "[PATCH v17 15/35]" and "[PATCH v8 25/28] virt: gunyah: Add
 * proxy-scheduled vCPUs").
 *
 * How Gunyah differs from KVM, and what libvcpu makes of it:
 *  - vCPUs are VM *functions* (GUNYAH_VM_ADD_FUNCTION type VCPU); the
 *    hypervisor creates the vCPU resources at GUNYAH_VM_START and hands them
 *    to the functions that exist, so every vCPU is created before
 *    vcpu_vm_start() (afterwards vcpu_create() says -EBUSY).
 *  - vcpu_run() does not start the VM: on v17 a run before GUNYAH_VM_START
 *    fails with -ENODEV and a detail that says to call vcpu_vm_start().  A
 *    hidden start from one vCPU thread would race with the VMM still adding
 *    vCPUs and boot registers on another.  (v8's kernel starts the VM in its
 *    run call by itself; that is the driver's doing, not libvcpu's.)
 *  - v17 guest RAM is a guest_memfd (GUNYAH_CREATE_GUEST_MEM + MAP_MEM), so
 *    only vcpu_vm_alloc() works there; vcpu_vm_map() of arbitrary host memory
 *    is -EOPNOTSUPP.  v8 maps host memory (GH_VM_SET_USER_MEM_REGION).
 *  - Registers: only the VM's boot context (x0-x30, PC, SP) before start,
 *    through vCPU 0's vcpu_set_reg(); nothing can be read back.
 *  - Exits: MMIO (with a resume action: handled, fault, retry), STATUS (the
 *    VM exited, crashed or failed to load) and PAGE_FAULT.  Guest PSCI and
 *    WFI never reach userspace.
 *
 * Everything in the run page is written by the kernel on behalf of the guest
 * (and may be scribbled on by the VMM), so each field is read once into a
 * local, validated, and only then used.
 */
#define _GNU_SOURCE
#include "../core/internal.h"
#include "gunyah_abi.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The driver keeps bindings in a tree, without a slot limit: ours. */
#define GUNYAH_MAX_REGIONS 4096u

struct gunyah_hv_priv {
	bool v8; /* the driver speaks the v8 GH_ ABI (probed at open) */
};

struct gunyah_vm_priv {
	atomic_int started; /* vcpu_vm_start() succeeded (v8: or a run started it) */
};

static bool is_v8(const struct vcpu_hv *hv)
{
	return ((const struct gunyah_hv_priv *)hv->priv)->v8;
}

static bool vm_started(const struct vcpu_vm *vm)
{
	return atomic_load(&((struct gunyah_vm_priv *)vm->priv)->started) != 0;
}

/*
 * Which revision?  v17 moved guest memory creation onto the device fd
 * (GUNYAH_CREATE_GUEST_MEM); v8's device fd knows only GH_CREATE_VM and
 * answers anything else with ENOTTY.  The probe asks for a 1-byte guest
 * memory, which v17 refuses (EINVAL: size not page aligned) before it
 * creates anything, so the probe has no side effect on either.
 */
static int gunyah_hv_init(struct vcpu_hv *hv)
{
	struct gunyah_create_mem_args probe = { .flags = GHMF_CLOEXEC, .size = 1 };
	struct gunyah_hv_priv *p;
	int r;

	if (hv->arch != VCPU_ARCH_ARM64)
		return hv_fail(hv, -EOPNOTSUPP, "Gunyah runs arm64 guests only");
	r = sys_ioctl(hv, hv->fd, GUNYAH_CREATE_GUEST_MEM, (unsigned long)&probe);
	if (r >= 0) {
		/* A driver that accepts a 1-byte guest memory is not one we know. */
		sys_close(hv, r);
		return hv_fail(hv, -EPROTO, "GUNYAH_CREATE_GUEST_MEM accepted an unaligned size");
	}
	if (r != -EINVAL && r != -ENOTTY)
		return hv_fail(hv, r, "probing the Gunyah ABI revision failed");
	p = calloc(1, sizeof(*p));
	if (!p)
		return hv_fail(hv, -ENOMEM, "cannot allocate Gunyah state");
	p->v8 = r == -ENOTTY;
	hv->priv = p;
	/* v17's resume_action can fault or retry an access; v8 has none. */
	hv->io_responses = p->v8 ? 0 : 1u << VCPU_IO_FAULT | 1u << VCPU_IO_RETRY;
	hv->driver = p->v8 ? "gunyah (v8 ABI)" : "gunyah (v17 ABI)";
	/*
	 * The VM boots from its device tree; v17 sets vCPU 0's boot context
	 * (vcpu_set_reg()), v8 nothing; no register reads back.  A VM that
	 * powers off or resets (PSCI, answered by the hypervisor) ends in a
	 * STATUS exit, reported as a system event.
	 */
	hv->dtb_required = true;
	hv->regs_set = !p->v8;
	hv->system_events = VCPU_EVENTS_PSCI;
	return 0;
}

static void gunyah_hv_fini(struct vcpu_hv *hv)
{
	free(hv->priv);
	hv->priv = NULL;
}

/*
 * Gunyah has no capability query: the answers are what each ABI revision
 * offers.  Limits that the VM's device tree decides (vCPUs, IPA width) are
 * not known to the driver before the VM runs.
 */
static int gunyah_check(struct vcpu_hv *hv, int fd, enum vcpu_cap cap, uint64_t *value, char *err)
{
	const bool v8 = is_v8(hv);

	(void)fd;
	switch (cap) {
	case VCPU_CAP_MAX_VCPUS:
	case VCPU_CAP_MAX_VCPU_ID:
	case VCPU_CAP_ARM_IPA_BITS:
		return vcpu_fail(err, -EOPNOTSUPP,
				 "Gunyah has no such query: the VM's device tree decides (capability %d)",
				 (int)cap);
	case VCPU_CAP_NR_MEMSLOTS:
		*value = GUNYAH_MAX_REGIONS;
		return 0;
	case VCPU_CAP_IMMEDIATE_EXIT:
	case VCPU_CAP_READONLY_MEM:
	case VCPU_CAP_ARM_PSCI_0_2: /* the hypervisor answers PSCI itself */
		*value = 1;
		return 0;
	case VCPU_CAP_IRQFD:
	case VCPU_CAP_IOEVENTFD:
	case VCPU_CAP_SYSTEM_EVENT_DATA:
		*value = v8 ? 0 : 1;
		return 0;
	case VCPU_CAP_IRQCHIP:
	case VCPU_CAP_ONE_REG:
	case VCPU_CAP_ARM_SMCCC_FILTER:
	case VCPU_CAP_ARM_SYSTEM_SUSPEND:
	case VCPU_CAP_ARM_SVE:     /* the VMM cannot choose CPU features (gunyah_vcpu_create()) */
	case VCPU_CAP_ARM_PTRAUTH:
	case VCPU_CAP_ARM_PMU:
		*value = 0;
		return 0;
	case VCPU_CAP_HYPERCALLS:
		*value = VCPU_HYPERCALLS_NONE;
		return 0;
	default:
		return vcpu_fail(err, -EINVAL, "unknown capability %d", (int)cap);
	}
}

static int gunyah_vm_create(struct vcpu_vm *vm, const struct vcpu_vm_config *cfg)
{
	struct vcpu_hv *hv = vm->hv;
	struct gunyah_vm_priv *p;
	int r;

	/* No setting of vcpu_vm_config is Gunyah's: the IPA width comes from the device tree. */
	(void)cfg;
	p = calloc(1, sizeof(*p));
	if (!p)
		return vm_fail(vm, -ENOMEM, "cannot allocate Gunyah VM state");
	atomic_init(&p->started, 0);
	/* Both revisions: _IO(0x47, 0), arg reserved (must be 0). */
	r = sys_ioctl(hv, hv->fd, is_v8(hv) ? GH_CREATE_VM : GUNYAH_CREATE_VM, 0);
	if (r < 0) {
		free(p);
		return vm_fail(vm, r, "%s failed", is_v8(hv) ? "GH_CREATE_VM" : "GUNYAH_CREATE_VM");
	}
	vm->fd = r;
	vm->priv = p;
	vm->max_regions = GUNYAH_MAX_REGIONS;
	return 0;
}

static int gunyah_vm_destroy(struct vcpu_vm *vm)
{
	sys_close(vm->hv, vm->fd);
	free(vm->priv);
	vm->priv = NULL;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Guest memory                                                               */

static int check_mem_flags(struct vcpu_vm *vm, uint32_t flags)
{
	if (flags & VCPU_MEM_LOG_DIRTY)
		return vm_fail(vm, -EOPNOTSUPP, "Gunyah has no dirty-page tracking");
	return 0;
}

/* v8: a label per region (our slot number); size 0 deletes it. */
static int gh_v8_region(struct vcpu_vm *vm, const struct vcpu_region *reg, bool remove)
{
	struct gh_userspace_memory_region m = {
		.label = reg->slot,
		.flags = GH_MEM_ALLOW_READ | GH_MEM_ALLOW_EXEC |
			 (reg->flags & VCPU_MEM_READONLY ? 0 : GH_MEM_ALLOW_WRITE),
		.guest_phys_addr = reg->gpa,
		.memory_size = remove ? 0 : reg->size,
		.userspace_addr = (uint64_t)(uintptr_t)reg->host,
	};
	int r = sys_ioctl(vm->hv, vm->fd, GH_VM_SET_USER_MEM_REGION, (unsigned long)&m);

	if (r < 0)
		return vm_fail(vm, r, "GH_VM_SET_USER_MEM_REGION(label %u, 0x%llx+0x%llx%s) failed",
			       reg->slot, (unsigned long long)reg->gpa,
			       (unsigned long long)reg->size, remove ? ", delete" : "");
	return 0;
}

/* v17: the binding's flags; an unmap must repeat them exactly (the driver matches them). */
static uint32_t map_flags(const struct vcpu_region *reg)
{
	/* DEFAULT_ACCESS: the resource manager lends memory to protected VMs. */
	return GUNYAH_MEM_DEFAULT_ACCESS |
	       (reg->flags & VCPU_MEM_READONLY ? GUNYAH_MEM_ALLOW_READ | GUNYAH_MEM_ALLOW_EXEC
					       : GUNYAH_MEM_ALLOW_RWX);
}

static int gh_v17_bind(struct vcpu_vm *vm, const struct vcpu_region *reg, bool remove)
{
	struct gunyah_map_mem_args m = {
		.guest_addr = reg->gpa,
		.flags = map_flags(reg) | (remove ? GUNYAH_MEM_UNMAP : 0),
		.guest_mem_fd = (uint32_t)reg->mem_fd,
		.offset = 0,
		.size = reg->size,
	};
	int r = sys_ioctl(vm->hv, vm->fd, GUNYAH_VM_MAP_MEM, (unsigned long)&m);

	if (r < 0)
		return vm_fail(vm, r, "GUNYAH_VM_MAP_MEM(0x%llx+0x%llx%s) failed",
			       (unsigned long long)reg->gpa, (unsigned long long)reg->size,
			       remove ? ", unmap" : "");
	return 0;
}

static int gunyah_vm_map(struct vcpu_vm *vm, const struct vcpu_region *reg, bool remove)
{
	int r = remove ? 0 : check_mem_flags(vm, reg->flags);

	if (r < 0)
		return r;
	if (is_v8(vm->hv))
		return gh_v8_region(vm, reg, remove);
	if (!reg->owned)
		return vm_fail(vm, -EOPNOTSUPP,
			       "Gunyah v17 guest RAM must be a guest_memfd: allocate it with "
			       "vcpu_vm_alloc() instead of mapping host memory");
	return gh_v17_bind(vm, reg, remove);
}

static int gunyah_vm_alloc(struct vcpu_vm *vm, struct vcpu_region *reg)
{
	struct vcpu_hv *hv = vm->hv;
	struct gunyah_create_mem_args a = { .flags = GHMF_CLOEXEC, .size = reg->size };
	void *p = NULL;
	int fd, r;

	r = check_mem_flags(vm, reg->flags);
	if (r < 0)
		return r;
	if (is_v8(hv)) {
		/* Shared, so the pages the driver pins are the ones the VMM sees. */
		p = mmap(NULL, reg->size, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return vm_fail(vm, -ENOMEM, "cannot allocate 0x%llx bytes of guest RAM",
				       (unsigned long long)reg->size);
		reg->host = p;
		r = gh_v8_region(vm, reg, false);
		if (r < 0) {
			munmap(p, reg->size);
			reg->host = NULL;
		}
		return r;
	}
	fd = sys_ioctl(hv, hv->fd, GUNYAH_CREATE_GUEST_MEM, (unsigned long)&a);
	if (fd < 0)
		return vm_fail(vm, fd, "GUNYAH_CREATE_GUEST_MEM(0x%llx bytes) failed",
			       (unsigned long long)reg->size);
	/* The driver refuses private mappings of a guest_memfd. */
	r = hv->sys->mmap(hv->sys_ctx, fd, reg->size, PROT_READ | PROT_WRITE, 0, &p);
	if (r < 0) {
		sys_close(hv, fd);
		return vm_fail(vm, r, "mmap of a 0x%llx-byte guest_memfd failed",
			       (unsigned long long)reg->size);
	}
	reg->host = p;
	reg->mem_fd = fd;
	r = gh_v17_bind(vm, reg, false);
	if (r < 0) {
		hv->sys->munmap(hv->sys_ctx, p, reg->size);
		sys_close(hv, fd);
		reg->host = NULL;
		reg->mem_fd = -1;
	}
	return r;
}

static void gunyah_vm_free(struct vcpu_vm *vm, struct vcpu_region *reg)
{
	struct vcpu_hv *hv = vm->hv;

	if (reg->mem_fd < 0) {
		munmap(reg->host, reg->size);
		return;
	}
	hv->sys->munmap(hv->sys_ctx, reg->host, reg->size);
	sys_close(hv, reg->mem_fd);
	reg->mem_fd = -1;
}

/* ------------------------------------------------------------------------ */
/* VM-level calls                                                             */

static int gunyah_vm_set_dtb(struct vcpu_vm *vm, uint64_t gpa, uint64_t size)
{
	struct gunyah_vm_dtb_config c = { .guest_phys_addr = gpa, .size = size };
	struct gh_vm_dtb_config c8 = { .gpa = gpa, .size = size };
	const bool v8 = is_v8(vm->hv);
	int r = sys_ioctl(vm->hv, vm->fd, v8 ? GH_VM_SET_DTB_CONFIG : GUNYAH_VM_SET_DTB_CONFIG,
			  v8 ? (unsigned long)&c8 : (unsigned long)&c);

	if (r < 0)
		return vm_fail(vm, r, "%s(0x%llx+0x%llx) failed",
			       v8 ? "GH_VM_SET_DTB_CONFIG" : "GUNYAH_VM_SET_DTB_CONFIG",
			       (unsigned long long)gpa, (unsigned long long)size);
	return 0;
}

static int gunyah_vm_start(struct vcpu_vm *vm)
{
	struct gunyah_vm_priv *p = vm->priv;
	int r = sys_ioctl(vm->hv, vm->fd, is_v8(vm->hv) ? GH_VM_START : GUNYAH_VM_START, 0);

	if (r == -ENODEV)
		return vm_fail(vm, r, "the VM is not running after GUNYAH_VM_START: an earlier start "
				      "failed (a Gunyah VM cannot be started twice; re-create it)");
	if (r < 0)
		return vm_fail(vm, r, "GUNYAH_VM_START failed (the device tree must lie in guest "
				      "RAM set with vcpu_vm_set_dtb())");
	atomic_store(&p->started, 1);
	return 0;
}

static int gunyah_vm_irq_line(struct vcpu_vm *vm, uint32_t irq, int level)
{
	(void)level;
	return vm_fail(vm, -ENXIO, "interrupt %u: Gunyah has no irqchip line to drive; bind a "
				   "doorbell eventfd with vcpu_vm_irqfd()", irq);
}

static int fn_call(struct vcpu_vm *vm, bool remove, uint32_t type, const void *arg, uint32_t size)
{
	struct gunyah_fn_desc d = { .type = type, .arg_size = size,
				    .arg = (uint64_t)(uintptr_t)arg };

	return sys_ioctl(vm->hv, vm->fd, remove ? GUNYAH_VM_REMOVE_FUNCTION : GUNYAH_VM_ADD_FUNCTION,
			 (unsigned long)&d);
}

static int gunyah_vm_irqfd(struct vcpu_vm *vm, const struct vcpu_irqfd *in)
{
	const bool remove = in->flags & VCPU_IRQFD_DEASSIGN;
	struct gunyah_fn_irqfd_arg a = {
		.fd = (uint32_t)in->fd,
		.label = in->irq,
		.flags = in->flags & VCPU_IRQFD_LEVEL ? GUNYAH_IRQFD_FLAGS_LEVEL : 0,
	};
	int r;

	if (is_v8(vm->hv))
		return vm_fail(vm, -EOPNOTSUPP, "the v8 Gunyah ABI has no irqfd function");
	if (in->flags & VCPU_IRQFD_MSI)
		return vm_fail(vm, -EINVAL, "Gunyah doorbells are not MSIs: irqfd irq is the "
					    "doorbell label");
	r = fn_call(vm, remove, GUNYAH_FN_IRQFD, &a, sizeof(a));
	if (r < 0)
		return vm_fail(vm, r, "GUNYAH_VM_%s_FUNCTION(irqfd %d, doorbell %u) failed",
			       remove ? "REMOVE" : "ADD", in->fd, in->irq);
	return 0;
}

static int gunyah_vm_ioeventfd(struct vcpu_vm *vm, const struct vcpu_ioeventfd *in)
{
	const bool remove = in->flags & VCPU_IOEVENTFD_DEASSIGN;
	struct gunyah_fn_ioeventfd_arg a = {
		.datamatch = in->flags & VCPU_IOEVENTFD_DATAMATCH ? in->datamatch : 0,
		.addr = in->addr,
		.len = in->len,
		.fd = in->fd,
		.flags = in->flags & VCPU_IOEVENTFD_DATAMATCH ? GUNYAH_IOEVENTFD_FLAGS_DATAMATCH : 0,
	};
	int r;

	if (is_v8(vm->hv))
		return vm_fail(vm, -EOPNOTSUPP, "the v8 Gunyah ABI has no ioeventfd function");
	if (in->flags & VCPU_IOEVENTFD_PIO)
		return vm_fail(vm, -EINVAL, "Gunyah ioeventfds are MMIO only");
	r = fn_call(vm, remove, GUNYAH_FN_IOEVENTFD, &a, sizeof(a));
	if (r < 0)
		return vm_fail(vm, r, "GUNYAH_VM_%s_FUNCTION(ioeventfd %d at 0x%llx) failed",
			       remove ? "REMOVE" : "ADD", in->fd, (unsigned long long)in->addr);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* vCPUs                                                                      */

static int add_vcpu_function(struct vcpu *cpu)
{
	struct vcpu_vm *vm = cpu->vm;
	struct gunyah_fn_vcpu_arg a = { .id = cpu->id };
	struct gh_vm_function f8;
	int r;

	if (!is_v8(vm->hv)) {
		r = fn_call(vm, false, GUNYAH_FN_VCPU, &a, sizeof(a));
		if (r < 0)
			return cpu_fail(cpu, r, "GUNYAH_VM_ADD_FUNCTION(vCPU %u) failed%s", cpu->id,
					r == -EEXIST ? ": the id is in use" : "");
		return r;
	}
	memset(&f8, 0, sizeof(f8));
	memcpy(f8.name, "vcpu", sizeof("vcpu"));
	f8.vcpu.vcpu_id = cpu->id;
	r = sys_ioctl(vm->hv, vm->fd, GH_VM_ADD_FUNCTION, (unsigned long)&f8);
	if (r < 0)
		return cpu_fail(cpu, r, "GH_VM_ADD_FUNCTION(\"vcpu\" %u) failed%s", cpu->id,
				r == -EEXIST ? ": the id is in use (v8 cannot remove functions)" : "");
	return r;
}

static void remove_vcpu_function(struct vcpu *cpu)
{
	struct gunyah_fn_vcpu_arg a = { .id = cpu->id };

	/* v8 has no GH_VM_REMOVE_FUNCTION (added in v9): the id stays taken. */
	if (!is_v8(cpu->vm->hv))
		fn_call(cpu->vm, true, GUNYAH_FN_VCPU, &a, sizeof(a));
}

static int gunyah_vcpu_create(struct vcpu *cpu, uint32_t flags)
{
	struct vcpu_hv *hv = cpu->vm->hv;
	const bool v8 = is_v8(hv);
	size_t size;
	int r;

	if (flags & VCPU_CREATE_POWER_OFF)
		return cpu_fail(cpu, -EOPNOTSUPP,
				"Gunyah has no power-off creation: the hypervisor boots the boot "
				"vCPU and the guest powers the others on with PSCI CPU_ON");
	if (flags & VCPU_CREATE_ARM64_FEATURES)
		return cpu_fail(cpu, -EOPNOTSUPP,
				"Gunyah vCPUs have the CPU features the hypervisor gives them: the "
				"driver takes no SVE, pointer authentication or PMU choice");
	if (vm_started(cpu->vm))
		return cpu_fail(cpu, -EBUSY,
				"vCPU %u: Gunyah vCPUs must all exist before vcpu_vm_start()", cpu->id);
	r = add_vcpu_function(cpu);
	if (r < 0)
		return r;
	cpu->fd = r;
	r = sys_ioctl(hv, cpu->fd, v8 ? GH_VCPU_MMAP_SIZE : GUNYAH_VCPU_MMAP_SIZE, 0);
	if (r < 0) {
		cpu_fail(cpu, r, "GUNYAH_VCPU_MMAP_SIZE on vCPU %u failed", cpu->id);
		goto fail_fn;
	}
	/* The decoder relies on the whole run structure being mapped. */
	if ((size_t)r < sizeof(struct gunyah_vcpu_run)) {
		r = cpu_fail(cpu, -EPROTO, "vCPU run mapping of %d bytes is smaller than %zu", r,
			     sizeof(struct gunyah_vcpu_run));
		goto fail_fn;
	}
	size = (size_t)r;
	r = hv->sys->mmap(hv->sys_ctx, cpu->fd, size, PROT_READ | PROT_WRITE, 0, &cpu->run);
	if (r < 0) {
		cpu_fail(cpu, r, "mmap of vCPU %u's run page (%zu bytes) failed", cpu->id, size);
		goto fail_fn;
	}
	cpu->run_size = size;
	return 0;

fail_fn:
	/* Closing the fd leaves the function in the VM: remove it so the id is free again. */
	remove_vcpu_function(cpu);
	sys_close(hv, cpu->fd);
	cpu->fd = -1;
	return r;
}

static void gunyah_vcpu_destroy(struct vcpu *cpu)
{
	struct vcpu_hv *hv = cpu->vm->hv;

	hv->sys->munmap(hv->sys_ctx, cpu->run, cpu->run_size);
	remove_vcpu_function(cpu);
	sys_close(hv, cpu->fd);
}

/* The boot-context register id of @reg, or -EINVAL/-EOPNOTSUPP. */
static int boot_reg(struct vcpu *cpu, uint64_t reg, uint32_t *id)
{
	if (reg >= VCPU_REG_ARM64_X(0) && reg <= VCPU_REG_ARM64_X(30)) {
		*id = GUNYAH_VM_BOOT_CONTEXT_REG(GUNYAH_REG_SET_X, reg - VCPU_REG_ARM64_X(0));
		return 0;
	}
	switch (reg) {
	case VCPU_REG_ARM64_PC:
		*id = GUNYAH_VM_BOOT_CONTEXT_REG(GUNYAH_REG_SET_PC, 0);
		return 0;
	/*
	 * REG_SET_SP takes indexes 0-2 whose meaning the series never spells
	 * out; libvcpu takes them as SP_EL0, SP_EL1 (and SP_EL2, not offered).
	 */
	case VCPU_REG_ARM64_SP:
		*id = GUNYAH_VM_BOOT_CONTEXT_REG(GUNYAH_REG_SET_SP, 0);
		return 0;
	case VCPU_REG_ARM64_SP_EL1:
		*id = GUNYAH_VM_BOOT_CONTEXT_REG(GUNYAH_REG_SET_SP, 1);
		return 0;
	case VCPU_REG_ARM64_PSTATE:
	case VCPU_REG_ARM64_ELR_EL1:
		break;
	default:
		if ((reg & ~(uint64_t)0xffff) != 0x20000)
			return cpu_fail(cpu, -EINVAL, "register id 0x%llx is not an arm64 register",
					(unsigned long long)reg);
		break;
	}
	return cpu_fail(cpu, -EOPNOTSUPP,
			"Gunyah's boot context holds only x0-x30, PC, SP and SP_EL1 (not 0x%llx)",
			(unsigned long long)reg);
}

static int gunyah_set_reg(struct vcpu *cpu, uint64_t reg, uint64_t value)
{
	struct gunyah_vm_boot_context b = { .value = value };
	int r;

	r = boot_reg(cpu, reg, &b.reg);
	if (r < 0)
		return r;
	if (is_v8(cpu->vm->hv))
		return cpu_fail(cpu, -EOPNOTSUPP, "the v8 Gunyah ABI has no register access "
						  "(the boot state comes from the VM image)");
	if (cpu->id != 0)
		return cpu_fail(cpu, -EOPNOTSUPP,
				"Gunyah's boot context is VM-wide and sets the boot vCPU: set it on "
				"vCPU 0 (vCPU %u starts through the guest's PSCI CPU_ON)", cpu->id);
	if (vm_started(cpu->vm))
		return cpu_fail(cpu, -EOPNOTSUPP,
				"Gunyah sets registers only through the boot context, before "
				"vcpu_vm_start()");
	r = sys_ioctl(cpu->vm->hv, cpu->vm->fd, GUNYAH_VM_SET_BOOT_CONTEXT, (unsigned long)&b);
	if (r < 0)
		return cpu_fail(cpu, r, "GUNYAH_VM_SET_BOOT_CONTEXT(0x%x) failed%s", b.reg,
				r == -EINVAL ? " (the VM has started, or the register is unknown)" : "");
	return 0;
}

static int gunyah_get_reg(struct vcpu *cpu, uint64_t reg, uint64_t *value)
{
	uint32_t id;
	int r = boot_reg(cpu, reg, &id);

	(void)value;
	if (r < 0)
		return r;
	return cpu_fail(cpu, -EOPNOTSUPP, "Gunyah offers no register read-back (0x%llx)",
			(unsigned long long)reg);
}

/* ------------------------------------------------------------------------ */
/* Exit decoding                                                              */

/* Both revisions lay mmio out alike (v8 without resume_action). */
static int decode_mmio(struct vcpu *cpu, uint64_t addr, uint32_t len, uint8_t is_write,
		       const uint8_t *data)
{
	struct vcpu_io *io = &cpu->exit.u.io;

	if (len == 0 || len > sizeof(io->data))
		return vcpu_malformed(cpu, "mmio.len", len);
	if (!vcpu_mmio_ok(addr, len))
		return vcpu_malformed(cpu, "mmio.phys_addr", addr);
	if (is_write > 1)
		return vcpu_malformed(cpu, "mmio.is_write", is_write);
	io->vcpu_id = cpu->id;
	io->addr = addr;
	io->len = len;
	io->is_write = is_write;
	if (is_write)
		memcpy(io->data, data, len);
	io->response = VCPU_IO_HANDLED;
	cpu->exit.kind = VCPU_EXIT_MMIO;
	/* The next run call takes the resume before it looks at kicks (vcpu_kick()). */
	cpu->resume_at_entry = true;
	return 0;
}

/*
 * STATUS: the VM is no longer runnable.  data[0] = flags
 * (VCPU_SYSTEM_EVENT_RESET2), data[1] = the resource manager's reason bytes
 * (little-endian), data[2] = their count, data[3] = gunyah_vm_status;
 * raw_type = exit_info.type.
 */
static int decode_status(struct vcpu *cpu, const struct gunyah_vcpu_run *run)
{
	struct vcpu_exit *e = &cpu->exit;
	struct vcpu_system_event *ev = &e->u.system_event;
	uint32_t status = run->status.status;
	uint16_t type = run->status.exit_info.type;
	uint32_t rsize = run->status.exit_info.reason_size;
	uint8_t reason[GUNYAH_VM_MAX_EXIT_REASON_SIZE];
	uint64_t r = 0;

	if (rsize > GUNYAH_VM_MAX_EXIT_REASON_SIZE)
		return vcpu_malformed(cpu, "status.exit_info.reason_size", rsize);
	memcpy(reason, run->status.exit_info.reason, sizeof(reason));
	for (uint32_t i = 0; i < rsize; i++)
		r |= (uint64_t)reason[i] << (8 * i);
	switch (status) {
	case GUNYAH_VM_STATUS_LOAD_FAILED:
		e->kind = VCPU_EXIT_FAIL_ENTRY;
		e->u.internal.code = status;
		return 0;
	case GUNYAH_VM_STATUS_CRASHED:
		ev->type = VCPU_SYSTEM_EVENT_CRASH;
		break;
	case GUNYAH_VM_STATUS_EXITED:
		switch (type) {
		case GUNYAH_RM_EXIT_VM_EXIT:
		case GUNYAH_RM_EXIT_PSCI_POWER_OFF:
		case GUNYAH_RM_EXIT_VM_FORCE_STOPPED:
			ev->type = VCPU_SYSTEM_EVENT_SHUTDOWN;
			break;
		case GUNYAH_RM_EXIT_PSCI_SYSTEM_RESET:
		case GUNYAH_RM_EXIT_PSCI_SYSTEM_RESET2:
			ev->type = VCPU_SYSTEM_EVENT_RESET;
			if (type == GUNYAH_RM_EXIT_PSCI_SYSTEM_RESET2)
				ev->data[0] = VCPU_SYSTEM_EVENT_RESET2;
			break;
		case GUNYAH_RM_EXIT_WDT_BITE:
		case GUNYAH_RM_EXIT_HYP_ERROR:
		case GUNYAH_RM_EXIT_ASYNC_EXT_ABORT:
			ev->type = VCPU_SYSTEM_EVENT_CRASH;
			break;
		default:
			return vcpu_malformed(cpu, "status.exit_info.type", type);
		}
		break;
	default:
		return vcpu_malformed(cpu, "status.status", status);
	}
	ev->raw_type = type;
	ev->ndata = 4;
	ev->data[1] = r;
	ev->data[2] = rsize;
	ev->data[3] = status;
	e->kind = VCPU_EXIT_SYSTEM_EVENT;
	return 0;
}

static int decode_v17(struct vcpu *cpu, const struct gunyah_vcpu_run *run)
{
	struct vcpu_exit *e = &cpu->exit;
	uint32_t reason = run->exit_reason;

	memset(&e->u, 0, sizeof(e->u));
	e->raw_reason = reason;
	e->kind = VCPU_EXIT_NONE;
	switch (reason) {
	case GUNYAH_VCPU_EXIT_MMIO:
		return decode_mmio(cpu, run->mmio.phys_addr, run->mmio.len, run->mmio.is_write,
				   run->mmio.data);
	case GUNYAH_VCPU_EXIT_STATUS:
		return decode_status(cpu, run);
	case GUNYAH_VCPU_EXIT_PAGE_FAULT:
		e->kind = VCPU_EXIT_MEMORY_FAULT;
		e->u.fault.gpa = run->page_fault.phys_addr;
		e->u.fault.size = cpu->vm->hv->page_size;
		e->u.fault.error = run->page_fault.attempt;
		e->u.fault.response = VCPU_IO_FAULT;
		return 0;
	default:
		/* UNKNOWN is "not used" (status != 0) in the ABI: a driver we do not understand. */
		memcpy(e->u.raw, &run->mmio, sizeof(run->mmio));
		return cpu_fail(cpu, -EPROTO, "vCPU %u: unknown Gunyah exit reason %u", cpu->id,
				reason);
	}
}

static int decode_v8(struct vcpu *cpu, const struct gh_vcpu_run *run8)
{
	struct vcpu_exit *e = &cpu->exit;
	uint32_t reason = run8->exit_reason;
	uint8_t ie = __atomic_load_n(&run8->immediate_exit, __ATOMIC_ACQUIRE);

	memset(&e->u, 0, sizeof(e->u));
	e->raw_reason = reason;
	e->kind = VCPU_EXIT_NONE;
	if (reason == GH_VM_EXIT_MMIO)
		return decode_mmio(cpu, run8->mmio.phys_addr, run8->mmio.len, run8->mmio.is_write,
				   run8->mmio.data);
	/*
	 * v8 answers immediate_exit by returning 0 without running, leaving
	 * exit_reason as we cleared it.
	 */
	if (reason == GH_VM_EXIT_UNKNOWN && ie)
		return -EINTR;
	return cpu_fail(cpu, -EPROTO, "vCPU %u: Gunyah v8 run returned exit reason %u%s", cpu->id,
			reason, reason == GH_VM_EXIT_UNKNOWN ? " without an exit" : "");
}

static int gunyah_run_once(struct vcpu *cpu)
{
	struct vcpu_vm *vm = cpu->vm;
	const bool v8 = is_v8(vm->hv);
	int r;

	if (v8)
		/* See decode_v8(): a run that only saw immediate_exit must not look like an exit. */
		((struct gh_vcpu_run *)cpu->run)->exit_reason = GH_VM_EXIT_UNKNOWN;
	r = sys_ioctl(vm->hv, cpu->fd, v8 ? GH_VCPU_RUN : GUNYAH_VCPU_RUN, 0);
	/* ERESTARTSYS is turned into EINTR by the kernel; take it as such if it ever leaks. */
	if (r == -EINTR || r == -GUNYAH_ERESTARTSYS)
		return -EINTR;
	if (r < 0) {
		cpu->exit.kind = VCPU_EXIT_NONE;
		if (r == -ENODEV && !vm_started(vm) && !v8)
			return cpu_fail(cpu, r, "vCPU %u: the Gunyah VM is not started: call "
						"vcpu_vm_start() once every vCPU exists", cpu->id);
		if (r == -ENODEV)
			return cpu_fail(cpu, r, "vCPU %u has no Gunyah vCPU resource (not in the VM's "
						"configuration, or the VM is going away)", cpu->id);
		if (r == -EINVAL && !v8)
			return cpu_fail(cpu, r, "GUNYAH_VCPU_RUN on vCPU %u refused the resume action "
						"left in the run page", cpu->id);
		return cpu_fail(cpu, r, "%s on vCPU %u failed", v8 ? "GH_VCPU_RUN" : "GUNYAH_VCPU_RUN",
				cpu->id);
	}
	if (v8 && !vm_started(vm))
		/* The v8 run call started the VM: no more vCPUs can be added. */
		atomic_store(&((struct gunyah_vm_priv *)vm->priv)->started, 1);
	/* The call returned without a signal: it took any completion; decode_mmio() sets a new one. */
	cpu->resume_at_entry = false;
	return v8 ? decode_v8(cpu, cpu->run) : decode_v17(cpu, cpu->run);
}

static int gunyah_complete(struct vcpu *cpu, int result)
{
	const struct vcpu_io *io = &cpu->exit.u.io;
	const bool v8 = is_v8(cpu->vm->hv);
	struct gunyah_vcpu_run *run = cpu->run;
	struct gh_vcpu_run *run8 = cpu->run;

	switch (cpu->exit.kind) {
	case VCPU_EXIT_MMIO:
		/* v8 has no resume action: hv->io_responses is 0 there, HANDLED only. */
		/* mmio.len stays as the kernel wrote it: v8 copies that many bytes back. */
		if (!cpu->acc.is_write && io->response == VCPU_IO_HANDLED)
			memcpy(v8 ? run8->mmio.data : run->mmio.data, io->data, cpu->acc.len);
		if (!v8)
			run->mmio.resume_action = (uint8_t)io->response; /* 0, 1, 2 = the ABI's values */
		return 0;
	case VCPU_EXIT_MEMORY_FAULT:
		/* Nothing to write: the core ends the run unless RETRY (vcpu.c, unbacked()). */
		return 0;
	case VCPU_EXIT_SYSTEM_EVENT:
	case VCPU_EXIT_FAIL_ENTRY:
		/*
		 * Every later run reports the same status without running the
		 * guest: a handler that continues would loop.  One that stops
		 * gets its stop code, and a later vcpu_run() the status again.
		 */
		if (result != 0)
			return 0;
		return cpu_fail(cpu, -EIO, "vCPU %u: the Gunyah VM is no longer runnable; destroy "
					   "and re-create it", cpu->id);
	default:
		return 0;
	}
}

static void gunyah_set_immediate_exit(struct vcpu *cpu, int value)
{
	struct gunyah_vcpu_run *run = cpu->run;

	__atomic_store_n(&run->immediate_exit, (uint8_t)value, __ATOMIC_SEQ_CST);
}

const struct vcpu_backend_ops vcpu_gunyah_ops = {
	.name = "gunyah",
	.hv_init = gunyah_hv_init,
	.hv_fini = gunyah_hv_fini,
	.check = gunyah_check,
	.vm_create = gunyah_vm_create,
	.vm_destroy = gunyah_vm_destroy,
	.vm_map = gunyah_vm_map,
	.vm_irq_line = gunyah_vm_irq_line,
	.vm_alloc = gunyah_vm_alloc,
	.vm_free = gunyah_vm_free,
	.vm_set_dtb = gunyah_vm_set_dtb,
	.vm_start = gunyah_vm_start,
	.vm_irqfd = gunyah_vm_irqfd,
	.vm_ioeventfd = gunyah_vm_ioeventfd,
	.vcpu_create = gunyah_vcpu_create,
	.vcpu_destroy = gunyah_vcpu_destroy,
	.get_reg = gunyah_get_reg,
	.set_reg = gunyah_set_reg,
	.run_once = gunyah_run_once,
	.complete = gunyah_complete,
	/* No .finish: an interrupted v17/v8 run drops a pending MMIO completion. */
	.set_immediate_exit = gunyah_set_immediate_exit,
	/* gunyah_vcpu_run(): the resume is taken, then immediate_exit and signals are checked. */
	.resume_before_kick = true,
};
