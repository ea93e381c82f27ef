// SPDX-License-Identifier: MIT
/*
 * The GenieZone backend (/dev/gzvm, MediaTek, arm64 only): VMs, memory
 * slots, the vGICv3 devices, irqfd/ioeventfd, the device-tree location,
 * vCPUs with their run buffer, ONE_REG, and the exit decoder.
 *
 * The run structure is not mapped (doc/abi/geniezone.md §5): each vCPU owns one
 * persistent page-aligned buffer whose address every GZVM_RUN passes.  The
 * kernel copies it in at entry (so completion data the VMM wrote reaches the
 * hypervisor) and out at exit (so the exit reaches us).  padding1 must stay
 * zero or the kernel refuses the entry; only the kernel's copy-out and this
 * file write the buffer, and each copy-out is checked.
 *
 * Kicks (§7): the kernel reads immediate_exit once, at entry, from its copy;
 * a flag set during the call is lost in the copy-out.  The core's kick
 * protocol does not rely on the flag surviving: kick_pending is checked
 * before every entry, the signal (no SA_RESTART) ends a call in progress,
 * and the flag only covers the window between that check and the entry.
 * See gz_run_once() for the two EINTR subtleties.
 *
 * Everything in the buffer after an exit is kernel-written: each field is
 * read once, validated, and only then used.
 */
#define _GNU_SOURCE
#include "../core/internal.h"
#include "geniezone_abi.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* SMCCC: a function id in w0 and arguments in x1..x7. */
#define SMCCC_NARGS 7
/* GICv3 SPIs a VMM may drive: INTID 32..1019. */
#define SPI_FIRST 32u
#define SPI_LAST 1019u

struct gz_vm_priv {
	bool gic;             /* both vGICv3 devices exist (vm->lock) */
	uint32_t nr_irqs;     /* the VMM's GIC size, checked before injection */
	uint8_t used[GZVM_MAX_VCPUS]; /* ids ever created: they stay taken (vm->lock) */
	atomic_bool ran;      /* a vCPU entered GZVM_RUN */
};

static struct gz_vm_priv *vm_priv(const struct vcpu_vm *vm)
{
	return vm->priv;
}

/* ------------------------------------------------------------------------ */
/* Capabilities                                                               */

/* GZVM_CHECK_EXTENSION takes a pointer to a u64: in = capability, out = value. */
static int check_ext(struct vcpu_hv *hv, int fd, uint64_t cap, uint64_t *value)
{
	uint64_t v = cap;
	int r = sys_ioctl(hv, fd, GZVM_CHECK_EXTENSION, (unsigned long)(uintptr_t)&v);

	if (r < 0)
		return r;
	*value = v;
	return 0;
}

static int gz_hv_init(struct vcpu_hv *hv)
{
	uint64_t bits = 0;
	int r;

	if (hv->arch != VCPU_ARCH_ARM64)
		return hv_fail(hv, -EOPNOTSUPP, "GenieZone runs arm64 guests only");
	/* An ioctl every posted series answers: ENOTTY means this is not gzvm. */
	r = check_ext(hv, hv->fd, GZVM_CAP_VM_GPA_SIZE, &bits);
	if (r == -ENOTTY)
		return hv_fail(hv, -EPROTO, "the device does not answer GZVM_CHECK_EXTENSION");
	if (r < 0 && r != -EOPNOTSUPP)
		return hv_fail(hv, r, "GZVM_CHECK_EXTENSION(GPA_SIZE) failed");
	/* The VM boots from the device tree it is given; ONE_REG can only set. */
	hv->dtb_required = true;
	hv->regs_set = true;
	hv->system_events = VCPU_EVENTS_PSCI;
	return 0;
}

/*
 * Only the guest-physical address width is a driver query.  The rest are
 * facts of the ABI (doc/abi/geniezone.md), the same for every gzvm driver, because
 * GenieZone has no capability numbers for them.
 */
static int gz_check(struct vcpu_hv *hv, int fd, enum vcpu_cap cap, uint64_t *value, char *err)
{
	int r;

	switch (cap) {
	case VCPU_CAP_ARM_IPA_BITS:
		r = check_ext(hv, fd, GZVM_CAP_VM_GPA_SIZE, value);
		if (r == -EOPNOTSUPP) {
			*value = 0;
			return 0;
		}
		return r < 0 ? vcpu_fail(err, r, "GZVM_CHECK_EXTENSION(GPA_SIZE) failed") : 0;
	case VCPU_CAP_MAX_VCPUS:
	case VCPU_CAP_MAX_VCPU_ID:
		*value = GZVM_MAX_VCPUS; /* the kernel's GZVM_MAX_VCPUS: ids 0..7 */
		return 0;
	case VCPU_CAP_NR_MEMSLOTS:
		*value = GZVM_MAX_MEM_REGION;
		return 0;
	case VCPU_CAP_IMMEDIATE_EXIT:    /* in gzvm_vcpu_run since the first series */
	case VCPU_CAP_IRQFD:
	case VCPU_CAP_IOEVENTFD:
	case VCPU_CAP_IRQCHIP:           /* the hypervisor's vGICv3 (GZVM_CREATE_DEVICE) */
	case VCPU_CAP_ONE_REG:           /* SET only: GET is EOPNOTSUPP in every series */
	case VCPU_CAP_SYSTEM_EVENT_DATA: /* system_event.ndata/data[16] in every series */
		*value = 1;
		return 0;
	case VCPU_CAP_READONLY_MEM:      /* slot flags are purposes, not protections */
	case VCPU_CAP_ARM_PSCI_0_2:      /* not documented for the hypervisor: not claimed */
	case VCPU_CAP_ARM_SYSTEM_SUSPEND: /* no switch to enable it */
	case VCPU_CAP_ARM_SVE:           /* GZVM_CREATE_VCPU takes no features (gz_vcpu_create()) */
	case VCPU_CAP_ARM_PTRAUTH:
	case VCPU_CAP_ARM_PMU:
		*value = 0;
		return 0;
	case VCPU_CAP_ARM_SMCCC_FILTER:
		if (fd == hv->fd)
			return vcpu_fail(err, -EOPNOTSUPP,
					 "the SMCCC filter is a VM attribute: ask with vcpu_vm_check()");
		*value = 0; /* no filter: every hypercall the kernel does not handle exits */
		return 0;
	case VCPU_CAP_HYPERCALLS:
		*value = VCPU_HYPERCALLS_ALL;
		return 0;
	default:
		return vcpu_fail(err, -EINVAL, "unknown capability %d", (int)cap);
	}
}

/* ------------------------------------------------------------------------ */
/* VMs                                                                        */

static int gz_vm_create(struct vcpu_vm *vm, const struct vcpu_vm_config *cfg)
{
	struct vcpu_hv *hv = vm->hv;
	uint64_t bits = 0;
	int r;

	/* Every VM gets the driver's width (VM type 0): only that width can be honoured. */
	if (cfg->ipa_bits) {
		r = check_ext(hv, hv->fd, GZVM_CAP_VM_GPA_SIZE, &bits);
		if (r < 0)
			return vm_fail(vm, r, "GZVM_CHECK_EXTENSION(GPA_SIZE) failed");
		if (cfg->ipa_bits != bits)
			return vm_fail(vm, -EINVAL,
				       "ipa_bits %u: GenieZone VMs have the driver's %llu bits",
				       cfg->ipa_bits, (unsigned long long)bits);
	}
	vm->priv = calloc(1, sizeof(struct gz_vm_priv));
	if (!vm->priv)
		return vm_fail(vm, -ENOMEM, "cannot allocate GenieZone VM state");
	r = sys_ioctl(hv, hv->fd, GZVM_CREATE_VM, 0);
	if (r < 0) {
		free(vm->priv);
		vm->priv = NULL;
		return vm_fail(vm, r, "GZVM_CREATE_VM(type 0) failed");
	}
	vm->fd = r;
	vm->max_regions = GZVM_MAX_MEM_REGION;
	return 0;
}

static int gz_vm_destroy(struct vcpu_vm *vm)
{
	sys_close(vm->hv, vm->fd);
	free(vm->priv);
	vm->priv = NULL;
	return 0;
}

/*
 * The kernel takes memory_size only when it equals the size of the VMA at
 * userspace_addr (doc/abi/geniezone.md §1), so a region must be one whole mapping:
 * vcpu_vm_alloc()'s shared anonymous mapping always is.  There is no delete:
 * a size of 0 can never match a VMA.
 */
static int gz_vm_map(struct vcpu_vm *vm, const struct vcpu_region *reg, bool remove)
{
	struct gzvm_userspace_memory_region m = {
		.slot = reg->slot,
		.flags = GZVM_USER_MEM_REGION_GUEST_MEM,
		.guest_phys_addr = reg->gpa,
		.memory_size = reg->size,
		.userspace_addr = (uint64_t)(uintptr_t)reg->host,
	};
	int r;

	if (remove)
		return vm_fail(vm, -EOPNOTSUPP,
			       "GenieZone cannot remove memory slot %u (0x%llx+0x%llx): destroy the VM",
			       reg->slot, (unsigned long long)reg->gpa,
			       (unsigned long long)reg->size);
	if (reg->flags)
		return vm_fail(vm, -EINVAL,
			       "GenieZone has no read-only or dirty-logged memory (flags 0x%x)",
			       reg->flags);
	r = sys_ioctl(vm->hv, vm->fd, GZVM_SET_USER_MEMORY_REGION, (unsigned long)(uintptr_t)&m);
	if (r == -EINVAL)
		return vm_fail(vm, r,
			       "GZVM_SET_USER_MEMORY_REGION(slot %u, 0x%llx+0x%llx): the host range "
			       "must be exactly one mapping (use vcpu_vm_alloc())",
			       reg->slot, (unsigned long long)reg->gpa,
			       (unsigned long long)reg->size);
	if (r < 0)
		return vm_fail(vm, r, "GZVM_SET_USER_MEMORY_REGION(slot %u, 0x%llx+0x%llx) failed",
			       reg->slot, (unsigned long long)reg->gpa,
			       (unsigned long long)reg->size);
	return 0;
}

static int gz_vm_set_dtb(struct vcpu_vm *vm, uint64_t gpa, uint64_t size)
{
	struct gzvm_dtb_config c = { .dtb_addr = gpa, .dtb_size = size };
	int r = sys_ioctl(vm->hv, vm->fd, GZVM_SET_DTB_CONFIG, (unsigned long)(uintptr_t)&c);

	return r < 0 ? vm_fail(vm, r, "GZVM_SET_DTB_CONFIG(0x%llx+0x%llx) failed",
			       (unsigned long long)gpa, (unsigned long long)size)
		     : 0;
}

/* ------------------------------------------------------------------------ */
/* Interrupts                                                                 */

static int create_device(struct vcpu_vm *vm, uint32_t type, uint64_t addr, uint64_t size,
			 const char *what)
{
	struct gzvm_create_device d = { .dev_type = type, .dev_addr = addr, .dev_reg_size = size };
	int r = sys_ioctl(vm->hv, vm->fd, GZVM_CREATE_DEVICE, (unsigned long)(uintptr_t)&d);

	return r < 0 ? vm_fail(vm, r, "GZVM_CREATE_DEVICE(%s at 0x%llx+0x%llx) failed", what,
			       (unsigned long long)addr, (unsigned long long)size)
		     : 0;
}

/*
 * The hypervisor's vGICv3, set up as crosvm does: a distributor device, then
 * a redistributor device sized for the vCPUs.  GenieZone takes no line
 * count; @nr_irqs is kept to refuse lines past the VMM's own GIC layout.
 */
static int gz_vm_gic_v3(struct vcpu_vm *vm, uint64_t dist, uint64_t redist, uint32_t nr_irqs)
{
	struct gz_vm_priv *p = vm_priv(vm);
	int r;

	pthread_mutex_lock(&vm->lock);
	if (p->gic) {
		r = vm_fail(vm, -EEXIST, "the VM already has a vGICv3");
	} else if (!vm->nr_vcpus) {
		r = vm_fail(vm, -EINVAL, "create the vCPUs before the GICv3 (redistributors are per vCPU)");
	} else if (atomic_load(&p->ran)) {
		r = vm_fail(vm, -EBUSY, "a vCPU has already run: the vGICv3 must exist before");
	} else if (redist + (uint64_t)vm->nr_vcpus * VCPU_GIC_V3_REDIST_SIZE_PER_CPU < redist ||
		   dist + VCPU_GIC_V3_DIST_SIZE < dist) {
		r = vm_fail(vm, -EINVAL, "GICv3 frames wrap the address space");
	} else {
		r = create_device(vm, GZVM_DEV_TYPE_ARM_VGIC_V3_DIST, dist, VCPU_GIC_V3_DIST_SIZE,
				  "vGICv3 distributor");
		if (r == 0)
			r = create_device(vm, GZVM_DEV_TYPE_ARM_VGIC_V3_REDIST, redist,
					  (uint64_t)vm->nr_vcpus * VCPU_GIC_V3_REDIST_SIZE_PER_CPU,
					  "vGICv3 redistributors");
		/* A distributor alone cannot be removed: the VM stays without a usable GIC. */
		if (r == 0) {
			p->gic = true;
			p->nr_irqs = nr_irqs;
		}
	}
	pthread_mutex_unlock(&vm->lock);
	return r;
}

static int check_spi(struct vcpu_vm *vm, uint32_t irq, const char *what)
{
	struct gz_vm_priv *p = vm_priv(vm);
	bool gic;
	uint32_t n;

	pthread_mutex_lock(&vm->lock);
	gic = p->gic;
	n = p->nr_irqs;
	pthread_mutex_unlock(&vm->lock);
	if (irq < SPI_FIRST || irq > SPI_LAST)
		return vm_fail(vm, -EINVAL, "%s: INTID %u is not an SPI (32..1019)", what, irq);
	if (!gic)
		return vm_fail(vm, -ENXIO, "%s: the VM has no vGICv3 (vcpu_vm_create_gic_v3())", what);
	if (irq >= n)
		return vm_fail(vm, -EINVAL, "%s: INTID %u is past the GIC's %u lines", what, irq, n);
	return 0;
}

/* §9: the hypervisor injects NUM as INTID NUM + 32, whatever TYPE says. */
static int gz_vm_irq_line(struct vcpu_vm *vm, uint32_t irq, int level)
{
	struct gzvm_irq_level l;
	int r = check_spi(vm, irq, "GZVM_IRQ_LINE");

	if (r < 0)
		return r;
	l.irq = (GZVM_IRQ_TYPE_SPI << GZVM_IRQ_LINE_TYPE_SHIFT) | (irq - GZVM_SPI_INTID_BASE);
	l.level = (uint32_t)level;
	r = sys_ioctl(vm->hv, vm->fd, GZVM_IRQ_LINE, (unsigned long)(uintptr_t)&l);
	return r < 0 ? vm_fail(vm, r, "GZVM_IRQ_LINE(INTID %u, %d) failed", irq, level) : 0;
}

static int gz_vm_irqfd(struct vcpu_vm *vm, const struct vcpu_irqfd *in)
{
	struct gzvm_irqfd a;
	int r;

	if (in->flags & VCPU_IRQFD_MSI)
		return vm_fail(vm, -EINVAL, "GenieZone irqfds inject SPIs only (no MSI flag)");
	/* resample_fd counts only with LEVEL: a zeroed struct must not mean fd 0. */
	if ((in->flags & VCPU_IRQFD_LEVEL) && !(in->flags & VCPU_IRQFD_DEASSIGN) &&
	    in->resample_fd < 0)
		return vm_fail(vm, -EINVAL, "a level-triggered irqfd needs resample_fd");
	if (in->msi_addr || in->msi_data)
		return vm_fail(vm, -EINVAL, "msi_addr/msi_data need VCPU_IRQFD_MSI");
	if (!(in->flags & VCPU_IRQFD_DEASSIGN)) {
		r = check_spi(vm, in->irq, "irqfd");
		if (r < 0)
			return r;
	}
	memset(&a, 0, sizeof(a));
	a.fd = (uint32_t)in->fd;
	/* The gsi is an SPI index: INTID - 32 (§9); deassignment only matches the fd. */
	a.gsi = in->irq >= GZVM_SPI_INTID_BASE ? in->irq - GZVM_SPI_INTID_BASE : 0;
	if (in->flags & VCPU_IRQFD_DEASSIGN)
		a.flags |= GZVM_IRQFD_FLAG_DEASSIGN;
	if ((in->flags & VCPU_IRQFD_LEVEL) && !(in->flags & VCPU_IRQFD_DEASSIGN)) {
		a.flags |= GZVM_IRQFD_FLAG_RESAMPLE;
		a.resamplefd = (uint32_t)in->resample_fd;
	}
	r = sys_ioctl(vm->hv, vm->fd, GZVM_IRQFD, (unsigned long)(uintptr_t)&a);
	return r < 0 ? vm_fail(vm, r, "GZVM_IRQFD(fd %d, INTID %u%s) failed", in->fd, in->irq,
			       in->flags & VCPU_IRQFD_DEASSIGN ? ", deassign" : "")
		     : 0;
}

static int gz_vm_ioeventfd(struct vcpu_vm *vm, const struct vcpu_ioeventfd *in)
{
	struct gzvm_ioeventfd a;
	int r;

	memset(&a, 0, sizeof(a));
	a.datamatch = in->datamatch;
	a.addr = in->addr;
	a.len = in->len;
	a.fd = in->fd;
	if (in->flags & VCPU_IOEVENTFD_DATAMATCH)
		a.flags |= GZVM_IOEVENTFD_FLAG_DATAMATCH;
	if (in->flags & VCPU_IOEVENTFD_DEASSIGN)
		a.flags |= GZVM_IOEVENTFD_FLAG_DEASSIGN;
	/* VCPU_IOEVENTFD_PIO was refused by the core: arm64 has no ports. */
	r = sys_ioctl(vm->hv, vm->fd, GZVM_IOEVENTFD, (unsigned long)(uintptr_t)&a);
	return r < 0 ? vm_fail(vm, r, "GZVM_IOEVENTFD(fd %d, 0x%llx, len %u%s) failed", in->fd,
			       (unsigned long long)in->addr, in->len,
			       in->flags & VCPU_IOEVENTFD_DEASSIGN ? ", deassign" : "")
		     : 0;
}

/* ------------------------------------------------------------------------ */
/* vCPUs and registers                                                        */

/* Called with vm->lock held. */
static int gz_vcpu_create(struct vcpu *cpu, uint32_t flags)
{
	struct vcpu_vm *vm = cpu->vm;
	struct gz_vm_priv *p = vm_priv(vm);
	size_t page = vm->hv->page_size;
	void *run = NULL;
	int r;

	if (flags & VCPU_CREATE_POWER_OFF)
		return cpu_fail(cpu, -EOPNOTSUPP, "GenieZone cannot create a vCPU powered off");
	if (flags & VCPU_CREATE_ARM64_FEATURES)
		return cpu_fail(cpu, -EOPNOTSUPP, "GenieZone vCPUs have the CPU features the "
				"hypervisor gives them: GZVM_CREATE_VCPU takes no SVE, pointer "
				"authentication or PMU choice");
	if (cpu->id >= GZVM_MAX_VCPUS)
		return cpu_fail(cpu, -EINVAL, "vCPU id %u: GenieZone ids are 0..%u", cpu->id,
				GZVM_MAX_VCPUS - 1);
	/*
	 * The kernel keeps a vCPU until the VM dies (closing its fd frees
	 * nothing) and does not check a second create of an id, which would
	 * overwrite and leak the first: refuse here, also after vcpu_destroy().
	 */
	if (p->used[cpu->id])
		return cpu_fail(cpu, -EEXIST,
				"vCPU %u was already created in this VM (GenieZone frees vCPUs only "
				"with their VM)", cpu->id);
	/* One page, so the 264-byte struct never straddles a page the kernel copies. */
	if (posix_memalign(&run, page, page) != 0)
		return cpu_fail(cpu, -ENOMEM, "cannot allocate vCPU %u's run buffer", cpu->id);
	memset(run, 0, page);
	r = sys_ioctl(vm->hv, vm->fd, GZVM_CREATE_VCPU, cpu->id);
	if (r < 0) {
		free(run);
		return cpu_fail(cpu, r, "GZVM_CREATE_VCPU(%u) failed", cpu->id);
	}
	cpu->fd = r;
	cpu->run = run;
	cpu->run_size = page;
	p->used[cpu->id] = 1;
	return 0;
}

static void gz_vcpu_destroy(struct vcpu *cpu)
{
	sys_close(cpu->vm->hv, cpu->fd);
	free(cpu->run);
	cpu->run = NULL;
}

/* Portable id -> GenieZone ONE_REG id (the KVM core encoding); 0 if none. */
static uint64_t core_reg_id(uint64_t reg)
{
	if (reg >= VCPU_REG_ARM64_X(0) && reg <= VCPU_REG_ARM64_X(30))
		return GZVM_REG_CORE(GZVM_CORE_OFF_X(reg - VCPU_REG_ARM64_X(0)));
	switch (reg) {
	case VCPU_REG_ARM64_SP: return GZVM_REG_CORE(GZVM_CORE_OFF_SP);
	case VCPU_REG_ARM64_PC: return GZVM_REG_CORE(GZVM_CORE_OFF_PC);
	case VCPU_REG_ARM64_PSTATE: return GZVM_REG_CORE(GZVM_CORE_OFF_PSTATE);
	case VCPU_REG_ARM64_SP_EL1: return GZVM_REG_CORE(GZVM_CORE_OFF_SP_EL1);
	case VCPU_REG_ARM64_ELR_EL1: return GZVM_REG_CORE(GZVM_CORE_OFF_ELR_EL1);
	default: return 0;
	}
}

static bool is_sysreg(uint64_t reg)
{
	return (reg & ~(uint64_t)0xffff) == VCPU_REG_ARM64_SYSREG(0, 0, 0, 0, 0);
}

static int reg_id(struct vcpu *cpu, uint64_t reg, uint64_t *id)
{
	*id = core_reg_id(reg);
	if (*id)
		return 0;
	if (is_sysreg(reg))
		return cpu_fail(cpu, -EOPNOTSUPP,
				"GenieZone documents no ONE_REG encoding for system register 0x%llx",
				(unsigned long long)reg);
	return cpu_fail(cpu, -EINVAL, "register 0x%llx is not an arm64 register",
			(unsigned long long)reg);
}

/*
 * Asked of the driver, so a later driver that implements GET works; every
 * posted series answers EOPNOTSUPP (gzvm_vcpu_ioctl() of the v9 series).
 */
static int gz_get_reg(struct vcpu *cpu, uint64_t reg, uint64_t *value)
{
	struct gzvm_one_reg one;
	uint64_t id, v = 0;
	int r = reg_id(cpu, reg, &id);

	if (r < 0)
		return r;
	one.id = id;
	one.addr = (uint64_t)(uintptr_t)&v;
	r = sys_ioctl(cpu->vm->hv, cpu->fd, GZVM_GET_ONE_REG, (unsigned long)(uintptr_t)&one);
	if (r == -EOPNOTSUPP)
		return cpu_fail(cpu, r,
				"GenieZone cannot read registers (GZVM_GET_ONE_REG is not implemented "
				"by the driver): keep the values the VMM set");
	if (r < 0)
		return cpu_fail(cpu, r, "GZVM_GET_ONE_REG(0x%llx) on vCPU %u failed",
				(unsigned long long)id, cpu->id);
	*value = v;
	return 0;
}

static int gz_set_reg(struct vcpu *cpu, uint64_t reg, uint64_t value)
{
	struct gzvm_one_reg one;
	uint64_t id;
	int r = reg_id(cpu, reg, &id);

	if (r < 0)
		return r;
	one.id = id;
	one.addr = (uint64_t)(uintptr_t)&value;
	r = sys_ioctl(cpu->vm->hv, cpu->fd, GZVM_SET_ONE_REG, (unsigned long)(uintptr_t)&one);
	if (r < 0)
		return cpu_fail(cpu, r, "GZVM_SET_ONE_REG(0x%llx) on vCPU %u failed",
				(unsigned long long)id, cpu->id);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Exit decoding                                                              */

static int decode_mmio(struct vcpu *cpu, const struct gzvm_vcpu_run *run)
{
	struct vcpu_io *io = &cpu->exit.u.io;
	uint64_t size = run->u.mmio.size;

	/* arm64 data aborts are 1, 2, 4 or 8 bytes wide (ESR_ELx.SAS). */
	if (size != 1 && size != 2 && size != 4 && size != 8)
		return vcpu_malformed(cpu, "mmio.size", size);
	if (!vcpu_mmio_ok(run->u.mmio.phys_addr, size))
		return vcpu_malformed(cpu, "mmio.phys_addr", run->u.mmio.phys_addr);
	io->vcpu_id = cpu->id;
	io->addr = run->u.mmio.phys_addr;
	io->len = (uint32_t)size;
	io->is_write = run->u.mmio.is_write != 0;
	if (io->is_write)
		memcpy(io->data, run->u.mmio.data, io->len);
	cpu->exit.kind = VCPU_EXIT_MMIO;
	return 0;
}

/*
 * SMCCC over hypercall.args[] (in/out, x0..x7): nr = w0, args[0..6] =
 * x1..x7, read whether the VM is lazy or not (they cost nothing here).
 * ret[0..nret-1] go back to args[0..nret-1] (x0..); the rest of args[]
 * keeps the caller's registers.
 */
static int decode_hypercall(struct vcpu *cpu, const struct gzvm_vcpu_run *run)
{
	struct vcpu_hypercall *hc = &cpu->exit.u.hypercall;

	hc->nr = (uint32_t)run->u.hypercall.args[0];
	memcpy(hc->args, &run->u.hypercall.args[1], SMCCC_NARGS * sizeof(uint64_t));
	hc->nargs = SMCCC_NARGS;
	hc->flags = 0; /* an HVC: the exit is the guest-HVC path (crosvm: GZVM_EXIT_HVC) */
	vcpu_smccc_results_init(cpu, hc, true);
	cpu->exit.kind = VCPU_EXIT_HYPERCALL;
	return 0;
}

/* GenieZone types 1-5 are KVM's; 6 SEV_TERM is a crash, 7 S2IDLE a suspend (doc/abi/exits.md). */
static int decode_system_event(struct vcpu *cpu, const struct gzvm_vcpu_run *run)
{
	uint32_t raw = run->u.system_event.type, type;

	switch (raw) {
	case GZVM_SYSTEM_EVENT_SHUTDOWN: type = VCPU_SYSTEM_EVENT_SHUTDOWN; break;
	case GZVM_SYSTEM_EVENT_RESET: type = VCPU_SYSTEM_EVENT_RESET; break;
	case GZVM_SYSTEM_EVENT_CRASH:
	case GZVM_SYSTEM_EVENT_SEV_TERM: type = VCPU_SYSTEM_EVENT_CRASH; break;
	case GZVM_SYSTEM_EVENT_WAKEUP: type = VCPU_SYSTEM_EVENT_WAKEUP; break;
	case GZVM_SYSTEM_EVENT_SUSPEND:
	case GZVM_SYSTEM_EVENT_S2IDLE: type = VCPU_SYSTEM_EVENT_SUSPEND; break;
	default: return vcpu_malformed(cpu, "system_event.type", raw);
	}
	return vcpu_decode_system_event(cpu, type, raw, run->u.system_event.ndata,
					run->u.system_event.data, false);
}

/*
 * A page fault reaches user space only when the kernel could not back the
 * address (v13 demand-pages the rest): a memory fault the VMM may fix by
 * adding memory.  Any other exception is the guest's own problem.
 */
static int decode_exception(struct vcpu *cpu, const struct gzvm_vcpu_run *run)
{
	struct vcpu_exit *e = &cpu->exit;
	uint32_t exc = run->u.exception.exception, code = run->u.exception.error_code;

	if (exc == GZVM_EXCEPTION_PAGE_FAULT) {
		e->kind = VCPU_EXIT_MEMORY_FAULT;
		e->u.fault.gpa = run->u.exception.fault_gpa;
		e->u.fault.size = 0; /* not reported */
		e->u.fault.flags = code;
		return 0;
	}
	e->kind = VCPU_EXIT_EXCEPTION;
	e->u.internal.code = exc;
	e->u.internal.ndata = 2;
	e->u.internal.data[0] = code;
	e->u.internal.data[1] = run->u.exception.fault_gpa;
	return 0;
}

/* The exits the kernel consumes itself and re-enters (§3 "reaches userspace? no"). */
static bool kernel_internal(uint32_t reason)
{
	return reason == GZVM_EXIT_IRQ || reason == GZVM_EXIT_GZ || reason == GZVM_EXIT_IDLE ||
	       reason == GZVM_EXIT_IPI;
}

static int decode_exit(struct vcpu *cpu, const struct gzvm_vcpu_run *run, uint32_t reason)
{
	struct vcpu_exit *e = &cpu->exit;

	memset(&e->u, 0, sizeof(e->u));
	e->raw_reason = reason;
	e->kind = VCPU_EXIT_NONE;
	switch (reason) {
	case GZVM_EXIT_MMIO:
		return decode_mmio(cpu, run);
	case GZVM_EXIT_HYPERCALL:
		return decode_hypercall(cpu, run);
	case GZVM_EXIT_SYSTEM_EVENT:
		return decode_system_event(cpu, run);
	case GZVM_EXIT_EXCEPTION:
		return decode_exception(cpu, run);
	case GZVM_EXIT_INTERNAL_ERROR:
		return vcpu_decode_internal(cpu, VCPU_EXIT_INTERNAL_ERROR, run->u.internal.suberror,
					    run->u.internal.ndata, run->u.internal.data);
	case GZVM_EXIT_FAIL_ENTRY:
		e->kind = VCPU_EXIT_FAIL_ENTRY;
		e->u.internal.code = run->u.fail_entry.hardware_entry_failure_reason;
		e->u.internal.ndata = 1;
		e->u.internal.data[0] = run->u.fail_entry.cpu;
		return 0;
	case GZVM_EXIT_SHUTDOWN:
		/* The guest powered off: what a VMM expects as a shutdown event. */
		e->kind = VCPU_EXIT_SYSTEM_EVENT;
		e->u.system_event.type = VCPU_SYSTEM_EVENT_SHUTDOWN;
		e->u.system_event.raw_type = 0; /* no event code: raw_reason says SHUTDOWN */
		return 0;
	case GZVM_EXIT_DEBUG:
	case GZVM_EXIT_UNKNOWN:
		e->kind = reason == GZVM_EXIT_DEBUG ? VCPU_EXIT_DEBUG : VCPU_EXIT_UNKNOWN;
		memcpy(e->u.raw, &run->u, sizeof(e->u.raw));
		return 0;
	case GZVM_EXIT_IRQ:
	case GZVM_EXIT_GZ:
	case GZVM_EXIT_IDLE:
	case GZVM_EXIT_IPI:
		/*
		 * A well-behaved kernel never returns these.  If one does, the
		 * VMM's .other hears of it (-ENOSYS without one, the vCPU still
		 * resumable): nothing about the guest is lost, so not -EIO.
		 */
		e->kind = VCPU_EXIT_OTHER;
		memcpy(e->u.raw, &run->u, sizeof(e->u.raw));
		return 0;
	default:
		return cpu_fail(cpu, -EPROTO, "vCPU %u: unknown GenieZone exit reason 0x%x",
				cpu->id, reason);
	}
}

static void gz_set_immediate_exit(struct vcpu *cpu, int value)
{
	struct gzvm_vcpu_run *run = cpu->run;

	__atomic_store_n(&run->immediate_exit, (uint8_t)value, __ATOMIC_SEQ_CST);
}

static int gz_run_once(struct vcpu *cpu)
{
	struct gz_vm_priv *p = vm_priv(cpu->vm);
	struct gzvm_vcpu_run *run = cpu->run;
	uint32_t reason;
	int r;

	if (!atomic_load_explicit(&p->ran, memory_order_relaxed))
		atomic_store(&p->ran, true);
	/* Output-only field: a value no exit uses tells whether the guest exited (below). */
	run->exit_reason = GZVM_EXIT_NONE_SENTINEL;
	r = sys_ioctl(cpu->vm->hv, cpu->fd, GZVM_RUN, (unsigned long)(uintptr_t)run);
	if (r == -GZVM_ERESTARTSYS)
		r = -EINTR;
	if (r < 0 && r != -EINTR) {
		cpu->exit.kind = VCPU_EXIT_NONE;
		return cpu_fail(cpu, r, "GZVM_RUN on vCPU %u failed", cpu->id);
	}
	if (run->padding1[0] | run->padding1[1] | run->padding1[2])
		return cpu_fail(cpu, -EPROTO,
				"vCPU %u: the driver returned non-zero padding1 (the next entry would fail)",
				cpu->id);
	reason = run->exit_reason;
	if (r == -EINTR) {
		/*
		 * 1. The flag may be a kicker's 1 that the core already
		 *    consumed through kick_pending (or one that a racing kick
		 *    set after take_kick); left set, every entry would return
		 *    EINTR at once.  Clearing is safe: a kick sets kick_pending
		 *    first, and the core checks it before the next entry.
		 * 2. The kernel returns ERESTARTSYS whenever a signal is
		 *    pending after the hypervisor returned, even when that
		 *    return was a real exit it copied out.  That exit (an MMIO
		 *    read the hypervisor waits to complete) must be handled,
		 *    not dropped; without one, exit_reason is still the
		 *    sentinel or a kernel-internal code.
		 */
		gz_set_immediate_exit(cpu, 0);
		if (reason == GZVM_EXIT_NONE_SENTINEL || kernel_internal(reason))
			return -EINTR;
	}
	return decode_exit(cpu, run, reason);
}

static int gz_complete(struct vcpu *cpu, int result)
{
	(void)result;
	struct gzvm_vcpu_run *run = cpu->run;
	const struct vcpu_io *io = &cpu->exit.u.io;
	const struct vcpu_hypercall *hc = &cpu->exit.u.hypercall;

	switch (cpu->exit.kind) {
	case VCPU_EXIT_MMIO:
		/* Always HANDLED: GenieZone can neither fault nor retry (hv->io_responses 0). */
		/* The next GZVM_RUN copies it in; the hypervisor loads register reg_nr. */
		if (!cpu->acc.is_write)
			memcpy(run->u.mmio.data, io->data, cpu->acc.len);
		return 0;
	case VCPU_EXIT_HYPERCALL:
		/* The core saw to nret <= 4 (vcpu.c, bad_nret()). */
		memcpy(run->u.hypercall.args, hc->ret, hc->nret * sizeof(hc->ret[0]));
		return 0;
	case VCPU_EXIT_MEMORY_FAULT:
		/* Nothing to write: the core ends the run unless RETRY (vcpu.c, unbacked()). */
		return 0;
	default:
		return 0;
	}
}

/*
 * No .finish: GenieZone cannot complete an exit without running the guest
 * (immediate_exit returns before the hypervisor sees the buffer).  Nothing
 * is lost: the completion stays in the buffer for the next GZVM_RUN, and no
 * register can be read back in between (GET_ONE_REG does not exist).
 */
const struct vcpu_backend_ops vcpu_geniezone_ops = {
	.name = "geniezone",
	.vm_config = VCFG_IPA_BITS, /* only the driver's own width */
	/* gzvm_vm_ioctl_set_memory_region(): memory_size must be the VMA's size. */
	.ram_shared = true,
	.hv_init = gz_hv_init,
	.check = gz_check,
	.vm_create = gz_vm_create,
	.vm_destroy = gz_vm_destroy,
	.vm_map = gz_vm_map,
	.vm_irq_line = gz_vm_irq_line,
	.vm_gic_v3 = gz_vm_gic_v3,
	.vm_set_dtb = gz_vm_set_dtb,
	.vm_irqfd = gz_vm_irqfd,
	.vm_ioeventfd = gz_vm_ioeventfd,
	.vcpu_create = gz_vcpu_create,
	.vcpu_destroy = gz_vcpu_destroy,
	.get_reg = gz_get_reg,
	.set_reg = gz_set_reg,
	.run_once = gz_run_once,
	.complete = gz_complete,
	.set_immediate_exit = gz_set_immediate_exit,
};
