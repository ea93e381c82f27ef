// SPDX-License-Identifier: MIT
/*
 * The KVM backend, architecture-independent part: /dev/kvm, VMs, memory
 * slots, vCPUs and their mmapped kvm_run, and the exit decoder.
 *
 * Everything in kvm_run is written by the kernel on behalf of the guest, so
 * each field is read once into a local, validated, and only then used.
 */
#define _GNU_SOURCE
#include "kvm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct kvm_hv_priv {
	size_t mmap_size;
	bool immediate_exit; /* KVM_CAP_IMMEDIATE_EXIT */
};

static size_t run_mmap_size(const struct vcpu_hv *hv)
{
	return ((const struct kvm_hv_priv *)hv->priv)->mmap_size;
}

static int kvm_hv_init(struct vcpu_hv *hv)
{
	struct kvm_hv_priv *p;
	int r;

	r = sys_ioctl(hv, hv->fd, KVM_GET_API_VERSION, 0);
	if (r < 0)
		return hv_fail(hv, r, "KVM_GET_API_VERSION failed");
	if (r != KVM_API_VERSION_EXPECTED)
		return hv_fail(hv, -EPROTO, "KVM API version %d, libvcpu speaks %d", r,
			       KVM_API_VERSION_EXPECTED);
	r = sys_ioctl(hv, hv->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r < 0)
		return hv_fail(hv, r, "KVM_GET_VCPU_MMAP_SIZE failed");
	/* The decoder relies on the whole kvm_run being mapped. */
	if ((size_t)r < sizeof(struct kvm_run))
		return hv_fail(hv, -EPROTO, "kvm_run mapping of %d bytes is smaller than %zu", r,
			       sizeof(struct kvm_run));
	p = calloc(1, sizeof(*p));
	if (!p)
		return hv_fail(hv, -ENOMEM, "cannot allocate KVM state");
	p->mmap_size = (size_t)r;
	/*
	 * Without immediate_exit a kick can be lost (vcpu_kick()); a failed
	 * question must not quietly choose that path.
	 */
	r = sys_ioctl(hv, hv->fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT);
	if (r < 0) {
		free(p);
		return hv_fail(hv, r, "KVM_CHECK_EXTENSION(KVM_CAP_IMMEDIATE_EXIT) failed");
	}
	p->immediate_exit = r > 0;
	hv->priv = p;
	hv->regs_set = hv->regs_get = true;
	/* arm64: KVM_ARM_VCPU_POWER_OFF; PSCI calls end in KVM_EXIT_SYSTEM_EVENT.
	 * x86: reset and power-off are port writes of the VMM's own devices. */
	hv->power_off_create = hv->arch == VCPU_ARCH_ARM64;
	hv->system_events = hv->arch == VCPU_ARCH_ARM64 ? VCPU_EVENTS_PSCI : 0;
	hv->dirty_log = true; /* KVM_GET_DIRTY_LOG: every KVM */
	return 0;
}

static void kvm_hv_fini(struct vcpu_hv *hv)
{
	free(hv->priv);
	hv->priv = NULL;
}

static int check_ext(struct vcpu_hv *hv, int fd, unsigned long cap, uint64_t *value, char *err)
{
	int r = sys_ioctl(hv, fd, KVM_CHECK_EXTENSION, cap);

	if (r < 0)
		return vcpu_fail(err, r, "KVM_CHECK_EXTENSION(%lu) failed", cap);
	*value = (uint64_t)r;
	return 0;
}

static int smccc_filter_present(struct vcpu_hv *hv, int fd, uint64_t *value, char *err)
{
	struct kvm_device_attr attr = { .group = KVM_ARM_VM_SMCCC_CTRL,
					.attr = KVM_ARM_VM_SMCCC_FILTER };
	int r;

	if (fd == hv->fd)
		return vcpu_fail(err, -EOPNOTSUPP,
				 "the SMCCC filter is a VM attribute: ask with vcpu_vm_check()");
	*value = 0;
	if (hv->arch != VCPU_ARCH_ARM64)
		return 0;
	r = sys_ioctl(hv, fd, KVM_HAS_DEVICE_ATTR, (unsigned long)&attr);
	if (r == 0)
		*value = 1;
	else if (r != -ENXIO && r != -ENOTTY && r != -EINVAL)
		return vcpu_fail(err, r, "KVM_HAS_DEVICE_ATTR(SMCCC filter) failed");
	return 0;
}

static int kvm_check(struct vcpu_hv *hv, int fd, enum vcpu_cap cap, uint64_t *value, char *err)
{
	static const struct {
		enum vcpu_cap cap;
		unsigned long kvm_cap;
		bool arm64_only;
	} map[] = {
		{ VCPU_CAP_MAX_VCPUS, KVM_CAP_MAX_VCPUS, false },
		{ VCPU_CAP_MAX_VCPU_ID, KVM_CAP_MAX_VCPU_ID, false },
		{ VCPU_CAP_NR_MEMSLOTS, KVM_CAP_NR_MEMSLOTS, false },
		{ VCPU_CAP_IMMEDIATE_EXIT, KVM_CAP_IMMEDIATE_EXIT, false },
		{ VCPU_CAP_READONLY_MEM, KVM_CAP_READONLY_MEM, false },
		{ VCPU_CAP_IRQFD, KVM_CAP_IRQFD, false },
		{ VCPU_CAP_IOEVENTFD, KVM_CAP_IOEVENTFD, false },
		{ VCPU_CAP_IRQCHIP, KVM_CAP_IRQCHIP, false },
		{ VCPU_CAP_ONE_REG, KVM_CAP_ONE_REG, false },
		{ VCPU_CAP_SYSTEM_EVENT_DATA, KVM_CAP_SYSTEM_EVENT_DATA, false },
		{ VCPU_CAP_ARM_PSCI_0_2, KVM_CAP_ARM_PSCI_0_2, true },
		{ VCPU_CAP_ARM_IPA_BITS, KVM_CAP_ARM_VM_IPA_SIZE, true },
		{ VCPU_CAP_ARM_SYSTEM_SUSPEND, KVM_CAP_ARM_SYSTEM_SUSPEND, true },
		{ VCPU_CAP_ARM_SVE, KVM_CAP_ARM_SVE, true },
		{ VCPU_CAP_ARM_PMU, KVM_CAP_ARM_PMU_V3, true },
	};

	if (cap == VCPU_CAP_ARM_SMCCC_FILTER)
		return smccc_filter_present(hv, fd, value, err);
	if (cap == VCPU_CAP_ARM_PTRAUTH) {
		/* VCPU_CREATE_ARM64_PTRAUTH asks for both kinds: KVM takes both or neither. */
		uint64_t addr = 0, generic = 0;
		int r = 0;

		if (hv->arch == VCPU_ARCH_ARM64)
			r = check_ext(hv, fd, KVM_CAP_ARM_PTRAUTH_ADDRESS, &addr, err);
		if (r == 0 && addr)
			r = check_ext(hv, fd, KVM_CAP_ARM_PTRAUTH_GENERIC, &generic, err);
		if (r == 0)
			*value = addr && generic;
		return r;
	}
	if (cap == VCPU_CAP_HYPERCALLS) {
		/* arm64: the SMCCC filter (a VM attribute); x86: KVM_CAP_EXIT_HYPERCALL's mask. */
		int r = hv->arch == VCPU_ARCH_ARM64
				? smccc_filter_present(hv, fd, value, err)
				: check_ext(hv, fd, KVM_CAP_EXIT_HYPERCALL, value, err);

		if (r == 0)
			*value = *value ? VCPU_HYPERCALLS_ON_REQUEST : VCPU_HYPERCALLS_NONE;
		return r;
	}
	for (unsigned i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (map[i].cap != cap)
			continue;
		if (map[i].arm64_only && hv->arch != VCPU_ARCH_ARM64) {
			*value = 0;
			return 0;
		}
		return check_ext(hv, fd, map[i].kvm_cap, value, err);
	}
	return vcpu_fail(err, -EINVAL, "unknown capability %d", (int)cap);
}

/*
 * The dirty log with manual protection where KVM has it (api.rst,
 * KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2): KVM_GET_DIRTY_LOG then only copies
 * the bitmap, and KVM_CLEAR_DIRTY_LOG write-protects again exactly the
 * pages it reported, so a page the guest dirties between the two calls is
 * reported by the next one rather than lost, and KVM does not hold its MMU
 * lock over the whole slot to protect it all at once.  Not INITIALLY_SET:
 * vcpu_vm_get_dirty_log() reports what the guest wrote, from the mapping on.
 */
static int enable_manual_protect(struct vcpu_vm *vm)
{
	struct kvm_vm_priv *p = vm->priv;
	struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
				      .args = { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE } };
	int r = sys_ioctl(vm->hv, vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);

	if (r < 0)
		return vm_fail(vm, r, "KVM_CHECK_EXTENSION(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) failed");
	if (!(r & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE))
		return 0;
	r = sys_ioctl(vm->hv, vm->fd, KVM_ENABLE_CAP, (unsigned long)&cap);
	if (r < 0)
		return vm_fail(vm, r, "KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) failed");
	p->manual_protect = true;
	return 0;
}

static int kvm_vm_create(struct vcpu_vm *vm, const struct vcpu_vm_config *cfg)
{
	struct vcpu_hv *hv = vm->hv;
	const struct kvm_arch_ops *arch = kvm_arch(hv);
	unsigned long type = 0;
	uint64_t slots = 0;
	int r;

	r = arch->vm_type(vm, cfg, &type);
	if (r < 0)
		return r;
	vm->priv = calloc(1, sizeof(struct kvm_vm_priv));
	if (!vm->priv)
		return vm_fail(vm, -ENOMEM, "cannot allocate KVM VM state");
	((struct kvm_vm_priv *)vm->priv)->gic_fd = -1;
	r = sys_ioctl(hv, hv->fd, KVM_CREATE_VM, type);
	if (r < 0) {
		vm_fail(vm, r, "KVM_CREATE_VM(type 0x%lx) failed", type);
		goto fail_priv;
	}
	vm->fd = r;
	r = check_ext(hv, vm->fd, KVM_CAP_NR_MEMSLOTS, &slots, vm->err);
	if (r < 0)
		goto fail;
	/* Slot ids are 16 bits wide; more is a driver we do not understand. */
	vm->max_regions = slots > 0xffff ? 0xffff : (unsigned)slots;
	r = enable_manual_protect(vm);
	if (r < 0)
		goto fail;
	r = arch->vm_setup(vm);
	if (r < 0)
		goto fail;
	return 0;
fail:
	sys_close(hv, vm->fd);
	vm->fd = -1;
fail_priv:
	free(vm->priv);
	vm->priv = NULL;
	return r;
}

static int kvm_vm_destroy(struct vcpu_vm *vm)
{
	const struct kvm_vm_priv *p = vm->priv;

	if (p->gic_fd >= 0)
		sys_close(vm->hv, p->gic_fd);
	sys_close(vm->hv, vm->fd);
	free(vm->priv);
	vm->priv = NULL;
	return 0;
}

static int kvm_vm_map(struct vcpu_vm *vm, const struct vcpu_region *reg, bool remove)
{
	struct kvm_userspace_memory_region m = {
		.slot = reg->slot,
		.flags = (reg->flags & VCPU_MEM_READONLY ? KVM_MEM_READONLY : 0) |
			 (reg->flags & VCPU_MEM_LOG_DIRTY ? KVM_MEM_LOG_DIRTY_PAGES : 0),
		.guest_phys_addr = reg->gpa,
		.memory_size = remove ? 0 : reg->size,
		.userspace_addr = (uint64_t)(uintptr_t)reg->host,
	};
	int r = sys_ioctl(vm->hv, vm->fd, KVM_SET_USER_MEMORY_REGION, (unsigned long)&m);

	if (r < 0)
		return vm_fail(vm, r, "KVM_SET_USER_MEMORY_REGION(slot %u, 0x%llx+0x%llx%s) failed",
			       reg->slot, (unsigned long long)reg->gpa,
			       (unsigned long long)reg->size, remove ? ", delete" : "");
	return 0;
}

static int kvm_vm_irq_line(struct vcpu_vm *vm, uint32_t irq, int level)
{
	int ok = 1;
	struct kvm_irq_level l = { .irq = kvm_arch(vm->hv)->irq_encode(irq, &ok),
				   .level = (uint32_t)level };
	int r;

	if (!ok)
		return vm_fail(vm, -EINVAL, "interrupt %u is out of range for this architecture (%s)",
			       irq, vm->hv->arch == VCPU_ARCH_ARM64 ? "SPIs are 32..1019"
								 : "the default routing has GSIs 0..23");
	r = sys_ioctl(vm->hv, vm->fd, KVM_IRQ_LINE, (unsigned long)&l);
	if (r == -ENXIO)
		return vm_fail(vm, r, "KVM_IRQ_LINE(%u): the VM has no in-kernel irqchip (%s)", irq,
			       vm->hv->arch == VCPU_ARCH_ARM64 ? "vcpu_vm_create_gic_v3()"
							 : "vcpu_x86_create_irqchip()");
	if (r < 0)
		return vm_fail(vm, r, "KVM_IRQ_LINE(%u, %d) failed", irq, level);
	return 0;
}

/*
 * KVM routes irqfds by GSI.  x86: the portable irq is the GSI.  arm64: the
 * default routing maps GSI n to SPI INTID n + 32.
 */
static int irqfd_gsi(struct vcpu_vm *vm, uint32_t irq, uint32_t *gsi)
{
	if (vm->hv->arch == VCPU_ARCH_ARM64) {
		if (irq < 32 || irq > 1019)
			return vm_fail(vm, -EINVAL, "irqfd: INTID %u is not a shared peripheral "
				       "interrupt (32..1019)", irq);
		*gsi = irq - 32;
	} else {
		/* An irqfd on a GSI without a route would never fire: libvcpu adds none. */
		if (irq >= KVM_X86_DEFAULT_GSIS)
			return vm_fail(vm, -EINVAL, "irqfd: GSI %u has no route (the default "
				       "routing has GSIs 0..23)", irq);
		*gsi = irq;
	}
	return 0;
}

static int kvm_vm_irqfd(struct vcpu_vm *vm, const struct vcpu_irqfd *in)
{
	struct kvm_irqfd a = { .fd = (uint32_t)in->fd };
	int r;

	if (in->flags & VCPU_IRQFD_MSI)
		return vm_fail(vm, -EINVAL, "KVM irqfds inject a GSI; MSIs need GSI routing, "
			       "which libvcpu does not set up (use vcpu_vm_signal_msi)");
	r = irqfd_gsi(vm, in->irq, &a.gsi);
	if (r < 0)
		return r;
	if (in->flags & VCPU_IRQFD_DEASSIGN) {
		a.flags = KVM_IRQFD_FLAG_DEASSIGN;
	} else if (in->flags & VCPU_IRQFD_LEVEL) {
		/* A level interrupt stays asserted until the resample eventfd says the guest EOId it. */
		if (in->resample_fd < 0)
			return vm_fail(vm, -EINVAL, "a level-triggered KVM irqfd needs resample_fd");
		a.flags = KVM_IRQFD_FLAG_RESAMPLE;
		a.resamplefd = (uint32_t)in->resample_fd;
	}
	r = sys_ioctl(vm->hv, vm->fd, KVM_IRQFD, (unsigned long)&a);
	if (r == -EINVAL && !(in->flags & VCPU_IRQFD_DEASSIGN) && vm->hv->arch == VCPU_ARCH_X86_64)
		return vm_fail(vm, r, "KVM_IRQFD(fd %d, GSI %u) failed: x86 irqfds need an "
			       "in-kernel irqchip (vcpu_x86_create_irqchip()), or the fd is not an "
			       "eventfd", in->fd, a.gsi);
	if (r < 0)
		return vm_fail(vm, r, "KVM_IRQFD(fd %d, GSI %u%s) failed", in->fd, a.gsi,
			       (in->flags & VCPU_IRQFD_DEASSIGN) ? ", deassign" : "");
	return 0;
}

static int kvm_vm_ioeventfd(struct vcpu_vm *vm, const struct vcpu_ioeventfd *in)
{
	struct kvm_ioeventfd a = { .datamatch = in->datamatch, .addr = in->addr, .len = in->len,
				   .fd = in->fd };
	int r;

	if (in->flags & VCPU_IOEVENTFD_DATAMATCH)
		a.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
	if (in->flags & VCPU_IOEVENTFD_PIO)
		a.flags |= KVM_IOEVENTFD_FLAG_PIO;
	if (in->flags & VCPU_IOEVENTFD_DEASSIGN)
		a.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
	r = sys_ioctl(vm->hv, vm->fd, KVM_IOEVENTFD, (unsigned long)&a);
	if (r < 0)
		return vm_fail(vm, r, "KVM_IOEVENTFD(%s 0x%llx, len %u%s) failed",
			       (in->flags & VCPU_IOEVENTFD_PIO) ? "port" : "MMIO",
			       (unsigned long long)in->addr, in->len,
			       (in->flags & VCPU_IOEVENTFD_DEASSIGN) ? ", deassign" : "");
	return 0;
}

static int kvm_vm_signal_msi(struct vcpu_vm *vm, uint64_t addr, uint64_t data)
{
	struct kvm_msi a = { .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32),
			     .data = (uint32_t)data };
	int r;

	if (data > UINT32_MAX)
		return vm_fail(vm, -EINVAL, "MSI data 0x%llx does not fit 32 bits",
			       (unsigned long long)data);
	r = sys_ioctl(vm->hv, vm->fd, KVM_SIGNAL_MSI, (unsigned long)&a);
	if (r < 0)
		return vm_fail(vm, r, "KVM_SIGNAL_MSI(0x%llx, 0x%llx) failed%s",
			       (unsigned long long)addr, (unsigned long long)data,
			       r == -EINVAL ? ": the VM needs an in-kernel irqchip" :
			       r == -ENODEV ? ": the GIC has no ITS" : "");
	/* 0 means the guest masked it: delivered as far as the VMM is concerned. */
	return 0;
}

/* KVM_GET_DIRTY_LOG copies ALIGN(npages, 64) / 8 bytes: the core saw to @bitmap's size. */
static int kvm_vm_get_dirty_log(struct vcpu_vm *vm, const struct vcpu_region *reg,
				uint64_t *bitmap)
{
	const struct kvm_vm_priv *p = vm->priv;
	struct kvm_dirty_log log = { .slot = reg->slot,
				     .dirty_bitmap = (uint64_t)(uintptr_t)bitmap };
	struct kvm_clear_dirty_log clear = { .slot = reg->slot,
					     .num_pages = (uint32_t)(reg->size / vm->hv->page_size),
					     .dirty_bitmap = (uint64_t)(uintptr_t)bitmap };
	int r = sys_ioctl(vm->hv, vm->fd, KVM_GET_DIRTY_LOG, (unsigned long)&log);

	if (r < 0)
		return vm_fail(vm, r, "KVM_GET_DIRTY_LOG(slot %u at 0x%llx) failed", reg->slot,
			       (unsigned long long)reg->gpa);
	if (!p->manual_protect)
		return 0;
	/* The pages just reported, and only those (see enable_manual_protect()). */
	if (reg->size / vm->hv->page_size > UINT32_MAX)
		return vm_fail(vm, -EOVERFLOW, "the region at 0x%llx has more pages than "
			       "KVM_CLEAR_DIRTY_LOG takes", (unsigned long long)reg->gpa);
	r = sys_ioctl(vm->hv, vm->fd, KVM_CLEAR_DIRTY_LOG, (unsigned long)&clear);
	return r < 0 ? vm_fail(vm, r, "KVM_CLEAR_DIRTY_LOG(slot %u at 0x%llx) failed", reg->slot,
			       (unsigned long long)reg->gpa)
		     : 0;
}

static int kvm_x86_run_once(struct vcpu *cpu);
static int kvm_arm64_run_once(struct vcpu *cpu);

static int kvm_vcpu_create(struct vcpu *cpu, uint32_t flags)
{
	struct vcpu_hv *hv = cpu->vm->hv;
	size_t size = run_mmap_size(hv);
	struct kvm_vcpu_priv *p;
	int r;

	p = cpu->priv = calloc(1, sizeof(struct kvm_vcpu_priv));
	if (!p)
		return cpu_fail(cpu, -ENOMEM, "cannot allocate vCPU %u state", cpu->id);
	p->x86 = kvm_arch(hv)->has_pio;
	cpu->run_once = p->x86 ? kvm_x86_run_once : kvm_arm64_run_once;
	if (!p->x86)
		kvm_arm64_vcpu_prepare(cpu);
	/* kvm_hv_init() saw to size >= sizeof(struct kvm_run). */
	p->pio_room = p->x86 ? size - sizeof(struct kvm_run) : 0;
	p->pio_fast_end = p->pio_room >= 4 ? p->pio_room - 3 : 0;
	if (kvm_arch(hv)->vcpu_check && (r = kvm_arch(hv)->vcpu_check(cpu, flags)) < 0)
		goto fail_priv;
	r = sys_ioctl(hv, cpu->vm->fd, KVM_CREATE_VCPU, cpu->id);
	if (r < 0) {
		cpu_fail(cpu, r, "KVM_CREATE_VCPU(%u) failed", cpu->id);
		goto fail_priv;
	}
	cpu->fd = r;
	/* The core holds vm->lock here.  The vCPU now exists even if the rest fails. */
	((struct kvm_vm_priv *)cpu->vm->priv)->vcpu_created = true;
	r = hv->sys->mmap(hv->sys_ctx, cpu->fd, size, PROT_READ | PROT_WRITE, 0, &cpu->run);
	if (r < 0) {
		cpu_fail(cpu, r, "mmap of vCPU %u's kvm_run (%zu bytes) failed", cpu->id, size);
		goto fail_fd;
	}
	cpu->run_size = size;
	r = kvm_arch(hv)->vcpu_setup(cpu, flags);
	if (r < 0)
		goto fail_map;
	return 0;

fail_map:
	hv->sys->munmap(hv->sys_ctx, cpu->run, size);
	cpu->run = NULL;
fail_fd:
	sys_close(hv, cpu->fd);
	cpu->fd = -1;
fail_priv:
	free(cpu->priv);
	cpu->priv = NULL;
	return r;
}

static void kvm_vcpu_destroy(struct vcpu *cpu)
{
	struct vcpu_hv *hv = cpu->vm->hv;

	hv->sys->munmap(hv->sys_ctx, cpu->run, cpu->run_size);
	sys_close(hv, cpu->fd);
	free(cpu->priv);
}

int kvm_one_reg(struct vcpu *cpu, bool set, uint64_t id, void *value)
{
	struct kvm_one_reg one = { .id = id, .addr = (uint64_t)(uintptr_t)value };
	int r = sys_ioctl(cpu->vm->hv, cpu->fd, set ? KVM_SET_ONE_REG : KVM_GET_ONE_REG,
			  (unsigned long)&one);

	if (r < 0)
		return cpu_fail(cpu, r, "KVM_%s_ONE_REG(0x%llx) on vCPU %u failed",
				set ? "SET" : "GET", (unsigned long long)id, cpu->id);
	return 0;
}

static int kvm_get_reg(struct vcpu *cpu, uint64_t reg, uint64_t *value)
{
	return kvm_arch(cpu->vm->hv)->get_reg(cpu, reg, value);
}

static int kvm_set_reg(struct vcpu *cpu, uint64_t reg, uint64_t value)
{
	return kvm_arch(cpu->vm->hv)->set_reg(cpu, reg, value);
}

static int kvm_forward_hypercalls(struct vcpu_vm *vm, uint32_t base, uint32_t count)
{
	return kvm_arch(vm->hv)->forward_hypercalls(vm, base, count);
}

static int kvm_get_regs(struct vcpu *cpu, struct vcpu_reg *regs, uint32_t n)
{
	const struct kvm_arch_ops *a = kvm_arch(cpu->vm->hv);

	return a->get_regs ? a->get_regs(cpu, regs, n) : vcpu_regs_each(cpu, regs, NULL, n);
}

static int kvm_set_regs(struct vcpu *cpu, const struct vcpu_reg *regs, uint32_t n)
{
	const struct kvm_arch_ops *a = kvm_arch(cpu->vm->hv);

	return a->set_regs ? a->set_regs(cpu, regs, n) : vcpu_regs_each(cpu, NULL, regs, n);
}

/* ------------------------------------------------------------------------ */
/* Exit decoding                                                              */

/*
 * Write-backs, chosen per exit by the decoders (struct vcpu.complete).  The
 * response is always HANDLED by now: KVM can neither fault nor retry an
 * access (hv->io_responses is 0), the core saw to it.  An MMIO write, a
 * single OUT and rep port I/O (the core stored those reads in place, item
 * by item) have nothing to write.
 */
static int complete_mmio_read(struct vcpu *cpu, int result)
{
	struct kvm_run *run = cpu->run;
	const struct vcpu_io *io = &cpu->exit.u.io;

	(void)result;
	memcpy(run->u.mmio.data, io->data, cpu->acc.len);
	return 0;
}

/* A single IN: the value goes where the exit's data_offset pointed (decode_pio()). */
static int complete_pio_in(struct vcpu *cpu, int result)
{
	const struct kvm_vcpu_priv *p = cpu->priv;
	const struct vcpu_io *io = &cpu->exit.u.io;

	(void)result;
	memcpy(p->pio_data, io->data, cpu->acc.len);
	return 0;
}

/* Which field of an MMIO exit is out of range: only for the detail, so out of line. */
static __attribute__((noinline, cold)) int mmio_malformed(struct vcpu *cpu, const struct kvm_run *run)
{
	return run->u.mmio.len - 1 < 8 ? vcpu_malformed(cpu, "mmio.phys_addr", run->u.mmio.phys_addr)
				       : vcpu_malformed(cpu, "mmio.len", run->u.mmio.len);
}

static __attribute__((noinline)) int decode_mmio(struct vcpu *cpu, const struct kvm_run *run)
{
	struct vcpu_io *io = &cpu->exit.u.io;
	uint32_t len = run->u.mmio.len;

	if (__builtin_expect(!vcpu_mmio_ok(run->u.mmio.phys_addr, len), 0))
		return mmio_malformed(cpu, run);
	/* The whole member: a read's data[] and response start at zero. */
	*io = (struct vcpu_io){ .addr = run->u.mmio.phys_addr, .len = len,
				.is_write = run->u.mmio.is_write != 0, .vcpu_id = cpu->id };
	if (io->is_write) {
		/* Constant sizes copy in one move; a variable one costs a loop. */
		switch (len) {
		case 8: memcpy(io->data, run->u.mmio.data, 8); break;
		case 4: memcpy(io->data, run->u.mmio.data, 4); break;
		case 2: memcpy(io->data, run->u.mmio.data, 2); break;
		case 1: io->data[0] = run->u.mmio.data[0]; break;
		default: memcpy(io->data, run->u.mmio.data, len); break;
		}
	}
	cpu->exit.kind = VCPU_EXIT_MMIO;
	cpu->complete = io->is_write ? NULL : complete_mmio_read;
	cpu->finish_pending = true;
	return 0;
}

/*
 * Port I/O, every case (decode_pio() takes the usual one): each field
 * checked, rep ins/outs (count > 1) set up for the core's item loop, and a
 * port exit on an architecture without ports refused (pio_room 0).
 */
static __attribute__((noinline, cold)) int decode_pio_any(struct vcpu *cpu, struct kvm_run *run)
{
	struct kvm_vcpu_priv *p = cpu->priv;
	struct vcpu_io *io = &cpu->exit.u.io;
	const uint8_t size = run->u.io.size, dir = run->u.io.direction;
	const uint32_t count = run->u.io.count;
	const uint64_t off = run->u.io.data_offset;
	const uint64_t total = (uint64_t)count * size; /* at most 2^34: no overflow */

	if (!p->x86)
		return vcpu_malformed(cpu, "port I/O exit on an architecture without ports, port",
				      run->u.io.port);
	if (size != 1 && size != 2 && size != 4)
		return vcpu_malformed(cpu, "io.size", size);
	if (dir > KVM_EXIT_IO_OUT)
		return vcpu_malformed(cpu, "io.direction", dir);
	if (count == 0)
		return vcpu_malformed(cpu, "io.count", 0);
	/* The data must lie inside the mapping and past the kvm_run header. */
	if (off < sizeof(struct kvm_run) || off - sizeof(struct kvm_run) > p->pio_room ||
	    total > p->pio_room - (off - sizeof(struct kvm_run)))
		return vcpu_malformed(cpu, "io.data_offset", off);
	*io = (struct vcpu_io){ .addr = run->u.io.port, .len = size,
				.is_write = dir == KVM_EXIT_IO_OUT, .vcpu_id = cpu->id };
	cpu->exit.kind = VCPU_EXIT_PIO;
	cpu->finish_pending = true;
	cpu->complete = NULL;
	p->pio_data = (uint8_t *)run + off;
	if (count == 1) {
		if (io->is_write)
			memcpy(io->data, p->pio_data, size);
		else
			cpu->complete = complete_pio_in;
		return 0;
	}
	/* rep ins/outs: the core calls the handler per item, reads stored in place. */
	cpu->io_buf = p->pio_data;
	cpu->io_count = count;
	if (!io->is_write)
		memset(cpu->io_buf, 0, total); /* unhandled reads complete as zeros */
	return 0;
}

/*
 * The usual port access: one item whose data (at most 4 bytes) lies in the
 * mapping past the kvm_run header, checked in four tests; anything else
 * goes to decode_pio_any().  It goes through io->data like MMIO.
 */
static __attribute__((noinline)) int decode_pio(struct vcpu *cpu, struct kvm_run *run)
{
	struct kvm_vcpu_priv *p = cpu->priv;
	struct vcpu_io *io = &cpu->exit.u.io;
	const uint8_t size = run->u.io.size, dir = run->u.io.direction;
	const uint64_t rel = run->u.io.data_offset - sizeof(struct kvm_run); /* wraps in the header */

	if (__builtin_expect(run->u.io.count != 1 || dir > KVM_EXIT_IO_OUT ||
			     (size != 1 && size != 2 && size != 4) || rel >= p->pio_fast_end, 0))
		return decode_pio_any(cpu, run);
	uint8_t *data = (uint8_t *)run + sizeof(struct kvm_run) + rel;

	*io = (struct vcpu_io){ .addr = run->u.io.port, .len = size, .is_write = dir,
				.vcpu_id = cpu->id };
	cpu->exit.kind = VCPU_EXIT_PIO;
	cpu->finish_pending = true;
	p->pio_data = data;
	if (dir != KVM_EXIT_IO_OUT) {
		cpu->complete = complete_pio_in;
		return 0;
	}
	cpu->complete = NULL;
	/* Constant sizes copy in one move. */
	if (size == 4)
		memcpy(io->data, data, 4);
	else if (size == 2)
		memcpy(io->data, data, 2);
	else
		io->data[0] = data[0];
	return 0;
}

static __attribute__((noinline)) int decode_system_event(struct vcpu *cpu, const struct kvm_run *run)
{
	uint32_t raw = run->u.system_event.type, type;

	switch (raw) {
	case KVM_SYSTEM_EVENT_SHUTDOWN: type = VCPU_SYSTEM_EVENT_SHUTDOWN; break;
	case KVM_SYSTEM_EVENT_RESET: type = VCPU_SYSTEM_EVENT_RESET; break;
	case KVM_SYSTEM_EVENT_CRASH:
	case KVM_SYSTEM_EVENT_SEV_TERM:
	case KVM_SYSTEM_EVENT_TDX_FATAL: type = VCPU_SYSTEM_EVENT_CRASH; break;
	case KVM_SYSTEM_EVENT_WAKEUP: type = VCPU_SYSTEM_EVENT_WAKEUP; break;
	case KVM_SYSTEM_EVENT_SUSPEND: type = VCPU_SYSTEM_EVENT_SUSPEND; break;
	default: return vcpu_malformed(cpu, "system_event.type", raw);
	}
	cpu->complete = NULL;
	cpu->finish_pending = false;
	/* Kernels before KVM_CAP_SYSTEM_EVENT_DATA only set the legacy flags word. */
	return vcpu_decode_system_event(cpu, type, raw, run->u.system_event.ndata,
					run->u.system_event.data, true);
}

static int decode_memory_fault(struct vcpu *cpu, struct kvm_run *run)
{
	struct vcpu_exit *e = &cpu->exit;

	cpu->complete = NULL;
	cpu->finish_pending = false;
	memset(&e->u, 0, sizeof(e->u));
	e->raw_reason = KVM_EXIT_MEMORY_FAULT;
	e->kind = VCPU_EXIT_MEMORY_FAULT;
	e->u.fault.flags = run->u.memory_fault.flags;
	e->u.fault.gpa = run->u.memory_fault.gpa;
	e->u.fault.size = run->u.memory_fault.size;
	/*
	 * A failed entry leaves exit_reason alone, so this MEMORY_FAULT must
	 * not be mistaken for a new one after the next failure.  Only this
	 * reason is cleared: arm64 completes an MMIO read only while
	 * exit_reason still says KVM_EXIT_MMIO (else the guest silently
	 * re-executes the access), and KVM reads no other on entry.
	 */
	run->exit_reason = KVM_EXIT_UNKNOWN;
	return 0;
}

/* The exits no decoder of the exit path takes (decode_exit()). */
static __attribute__((noinline)) int decode_rest(struct vcpu *cpu, struct kvm_run *run)
{
	struct vcpu_exit *e = &cpu->exit;
	uint32_t reason = run->exit_reason;

	e->kind = VCPU_EXIT_NONE;
	/* Nothing to write back or finish for these. */
	cpu->complete = NULL;
	cpu->finish_pending = false;
	if (reason == KVM_EXIT_IO)
		return decode_pio_any(cpu, run); /* arm64: refused there, with the detail */
	memset(&e->u, 0, sizeof(e->u));
	switch (reason) {
	case KVM_EXIT_INTERNAL_ERROR:
		return vcpu_decode_internal(cpu, VCPU_EXIT_INTERNAL_ERROR, run->u.internal.suberror,
					    run->u.internal.ndata, run->u.internal.data);
	case KVM_EXIT_FAIL_ENTRY:
		e->kind = VCPU_EXIT_FAIL_ENTRY;
		e->u.internal.code = run->u.fail_entry.hardware_entry_failure_reason;
		e->u.internal.ndata = 1;
		e->u.internal.data[0] = run->u.fail_entry.cpu;
		return 0;
	case KVM_EXIT_UNKNOWN:
		e->kind = VCPU_EXIT_UNKNOWN;
		e->u.internal.code = run->u.hw.hardware_exit_reason;
		return 0;
	case KVM_EXIT_HLT:
		e->kind = VCPU_EXIT_HALT;
		return 0;
	case KVM_EXIT_SHUTDOWN:
		e->kind = VCPU_EXIT_SHUTDOWN;
		return 0;
	case KVM_EXIT_INTR:
		return -EINTR;
	case KVM_EXIT_DEBUG:
	case KVM_EXIT_EXCEPTION:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_SET_TPR:
	case KVM_EXIT_TPR_ACCESS:
	case KVM_EXIT_NMI:
	case KVM_EXIT_IOAPIC_EOI:
	case KVM_EXIT_HYPERV:
	case KVM_EXIT_ARM_NISV:
	case KVM_EXIT_X86_RDMSR:
	case KVM_EXIT_X86_WRMSR:
	case KVM_EXIT_DIRTY_RING_FULL:
	case KVM_EXIT_AP_RESET_HOLD:
	case KVM_EXIT_X86_BUS_LOCK:
	case KVM_EXIT_XEN:
	case KVM_EXIT_NOTIFY:
	case KVM_EXIT_TDX:
	case KVM_EXIT_ARM_SEA:
		/* Known, without a portable meaning: the VMM's .other sees the bytes. */
		e->kind = reason == KVM_EXIT_DEBUG ? VCPU_EXIT_DEBUG : VCPU_EXIT_OTHER;
		memcpy(e->u.raw, &run->u, sizeof(e->u.raw));
		return 0;
	default:
		return cpu_fail(cpu, -EPROTO, "vCPU %u: unknown KVM exit reason %u", cpu->id, reason);
	}
}

/* KVM_RUN failed: a signal, a vCPU to run again, a memory fault, or an error. */
static __attribute__((noinline, cold)) int run_failed(struct vcpu *cpu, int r)
{
	struct kvm_run *run = cpu->run;
	uint8_t pmu;

	/*
	 * The guest may have run: a hypercall's registers are no longer its
	 * arguments (vcpu_hypercall_arg() says -ESTALE, kvm_arm64.c reads them).
	 */
	cpu->hc_known = VCPU_HC_WRITTEN;
	/*
	 * EAGAIN: an x86 vCPU that waited for INIT/SIPI (an application
	 * processor with the in-kernel LAPIC) changed state and must simply be
	 * run again; like a signal, it is no exit.
	 */
	if (r == -EINTR || r == -EAGAIN)
		return -EINTR;
	/* KVM_CAP_MEMORY_FAULT_INFO: the failure itself is the exit. */
	if ((r == -EFAULT || r == -EHWPOISON) && run->exit_reason == KVM_EXIT_MEMORY_FAULT)
		return decode_memory_fault(cpu, run);
	cpu->exit.kind = VCPU_EXIT_NONE;
	/* kvm_arm_pmu_v3_enable(): a PMU vCPU runs only once its PMU is initialised. */
	pmu = __atomic_load_n(&((struct kvm_vcpu_priv *)cpu->priv)->arm64_pmu, __ATOMIC_RELAXED);
	if (r == -EINVAL && pmu && pmu != KVM_ARM_PMU_READY)
		return cpu_fail(cpu, r, "KVM_RUN on vCPU %u failed: its PMU (VCPU_CREATE_ARM64_PMU) "
				"is not initialised; vcpu_vm_create_gic_v3() does that", cpu->id);
	return cpu_fail(cpu, r, "KVM_RUN on vCPU %u failed", cpu->id);
}

/*
 * One KVM_RUN and the exit decoded.  The frequent exits, tested in order
 * of frequency, reach their decoders (leaves, noinline) by tail calls and
 * clear only the member they fill: clearing the 256-byte union cost more
 * than the rest of an MMIO exit's dispatch, and inlined decoders made this
 * function save registers on every exit (bench/dispatch.sh).  Nothing is
 * kept across the run call but @cpu.  Specialised per architecture
 * (kvm_vcpu_create() chooses): x86 has port I/O and its own hypercalls.
 */
static inline __attribute__((always_inline)) int kvm_enter(struct vcpu *cpu, bool x86)
{
	int r = vcpu_ioctl(cpu, KVM_RUN, 0);

	if (__builtin_expect(r < 0, 0))
		return run_failed(cpu, r);
	struct kvm_run *run = cpu->run;
	const uint32_t reason = run->exit_reason;

	cpu->exit.raw_reason = reason;
	if (__builtin_expect(reason == KVM_EXIT_MMIO, 1))
		return decode_mmio(cpu, run);
	if (x86 && reason == KVM_EXIT_IO)
		return decode_pio(cpu, run);
	if (reason == KVM_EXIT_HYPERCALL) {
		cpu->finish_pending = true;
		return x86 ? kvm_x86_hypercall_decode(cpu, run) : kvm_arm64_hypercall_decode(cpu, run);
	}
	if (reason == KVM_EXIT_SYSTEM_EVENT)
		return decode_system_event(cpu, run);
	return decode_rest(cpu, run);
}

static int kvm_x86_run_once(struct vcpu *cpu)
{
	return kvm_enter(cpu, true);
}

static int kvm_arm64_run_once(struct vcpu *cpu)
{
	return kvm_enter(cpu, false);
}

/* The table's entry; every vCPU gets its architecture's (kvm_vcpu_create()). */
static int kvm_run_once(struct vcpu *cpu)
{
	return ((struct kvm_vcpu_priv *)cpu->priv)->x86 ? kvm_x86_run_once(cpu)
							: kvm_arm64_run_once(cpu);
}

/*
 * KVM_SET_SIGNAL_MASK (api.rst 4.4): KVM_RUN swaps this mask in for the
 * thread's while it runs, so the kick signal, blocked everywhere else,
 * interrupts only the guest (a kick that came meanwhile makes the next
 * KVM_RUN fail with EINTR at once).  Asked again only when the thread's
 * mask changed since the last call.
 */
static int kvm_run_signal_mask(struct vcpu *cpu, const sigset_t *mask)
{
	struct kvm_vcpu_priv *p = cpu->priv;
	/* struct kvm_signal_mask and the kernel's 8-byte set after it. */
	_Alignas(struct kvm_signal_mask) uint8_t m[sizeof(struct kvm_signal_mask) + KVM_SIGSET_SIZE];
	const uint32_t len = KVM_SIGSET_SIZE;
	uint64_t bits = 0;
	int r;

	/* The kernel's 64-bit set: bit n-1 is signal n. */
	for (int n = 1; n <= 64; n++)
		if (sigismember(mask, n) == 1)
			bits |= 1ull << (n - 1);
	if (p->sigmask_set && p->sigmask == bits)
		return 0;
	memcpy(m, &len, sizeof(len));
	/* little-endian hosts (x86_64, arm64): the u64 is the kernel's byte order */
	memcpy(m + sizeof(struct kvm_signal_mask), &bits, KVM_SIGSET_SIZE);
	r = sys_ioctl(cpu->vm->hv, cpu->fd, KVM_SET_SIGNAL_MASK, (unsigned long)m);
	if (r < 0)
		return cpu_fail(cpu, r, "KVM_SET_SIGNAL_MASK on vCPU %u failed", cpu->id);
	p->sigmask = bits;
	p->sigmask_set = true;
	return 0;
}

static void kvm_set_immediate_exit(struct vcpu *cpu, int value)
{
	struct kvm_run *run = cpu->run;

	__atomic_store_n(&run->immediate_exit, (uint8_t)value, __ATOMIC_SEQ_CST);
}

/*
 * doc/abi/kvm.md §5: an MMIO/PIO/hypercall exit is only complete once KVM_RUN is
 * entered again; with immediate_exit set the kernel completes it and
 * returns EINTR without running the guest.  Without the capability that
 * KVM_RUN would run the guest, so the completion waits for the next run.
 */
static int kvm_finish(struct vcpu *cpu)
{
	const struct kvm_hv_priv *p = cpu->vm->hv->priv;
	int r;

	if (!p->immediate_exit)
		return 0;
	/* The registers may change (an MMIO read loads one): see run_failed(). */
	cpu->hc_known |= VCPU_HC_WRITTEN;
	kvm_set_immediate_exit(cpu, 1);
	r = sys_ioctl(cpu->vm->hv, cpu->fd, KVM_RUN, 0);
	if (r == -EINTR)
		return 0;
	if (r < 0)
		return cpu_fail(cpu, r, "KVM_RUN completing vCPU %u's last exit failed", cpu->id);
	return cpu_fail(cpu, -EPROTO, "vCPU %u ran the guest despite immediate_exit", cpu->id);
}

const struct vcpu_backend_ops vcpu_kvm_ops = {
	.name = "kvm",
	.vm_config = VCFG_IPA_BITS | VCFG_SUSPEND, /* arm64's: kvm_x86.c refuses them */
	.hv_init = kvm_hv_init,
	.hv_fini = kvm_hv_fini,
	.check = kvm_check,
	.vm_create = kvm_vm_create,
	.vm_destroy = kvm_vm_destroy,
	.vm_map = kvm_vm_map,
	.vm_get_dirty_log = kvm_vm_get_dirty_log,
	.get_state = kvm_get_state,
	.set_state = kvm_set_state,
	.vm_get_state = kvm_vm_get_state,
	.vm_set_state = kvm_vm_set_state,
	.vm_irq_line = kvm_vm_irq_line,
	.vm_gic_v3 = kvm_arm64_gic_v3,
	.vm_x86_irqchip = kvm_x86_create_irqchip,
	.vm_forward_hypercalls = kvm_forward_hypercalls,
	.vm_irqfd = kvm_vm_irqfd,
	.vm_ioeventfd = kvm_vm_ioeventfd,
	.vm_signal_msi = kvm_vm_signal_msi,
	.vcpu_create = kvm_vcpu_create,
	.vcpu_destroy = kvm_vcpu_destroy,
	.get_reg = kvm_get_reg,
	.set_reg = kvm_set_reg,
	.get_regs = kvm_get_regs,
	.set_regs = kvm_set_regs,
	.get_segment = kvm_x86_get_segment,
	.set_segment = kvm_x86_set_segment,
	.x86_supported_cpuid = kvm_x86_supported_cpuid,
	.x86_set_cpuid = kvm_x86_set_cpuid,
	.run_signal_mask = kvm_run_signal_mask,
	.run_once = kvm_run_once,
	.hypercall_arg = kvm_arm64_hypercall_arg,
	.finish = kvm_finish,
	.set_immediate_exit = kvm_set_immediate_exit,
};
