// SPDX-License-Identifier: MIT
/*
 * The vGICv3's register state as userspace sees it through the device fd
 * (Documentation/virt/kvm/devices/arm-vgic-v3.rst; Linux 6.1
 * arch/arm64/kvm/vgic/vgic-kvm-device.c, vgic-mmio-v3.c,
 * vgic-sys-reg-v3.c): groups DIST_REGS, REDIST_REGS, CPU_SYSREGS and
 * LEVEL_INFO, what a VMM saves and restores.
 *
 * Rules kept: EBUSY before CTRL_INIT or while any vCPU is in an ioctl
 * (the kernel's lock_all_vcpus() takes each vCPU's mutex with a trylock);
 * EINVAL for an mpidr no vCPU has, a LEVEL_INFO INTID not a multiple of 32
 * or an info field other than LINE_LEVEL, an ICC_APxR<n> beyond the
 * priority bits, an ICC_CTLR_EL1 whose read-only fields differ, an
 * ICC_SRE_EL1 without SRE; ENXIO for any other offset or group.  The
 * distributor and redistributor registers are 32-bit (64-bit ones by
 * halves), the CPU interface registers 64-bit.  SPIs past nr_irqs, and the
 * distributor's SGI/PPI words (ARE is always on), read as zero and ignore
 * writes.  Not modelled: LPIs (no ITS), the interrupts' effect on the guest.
 */
#include "mock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* GICv3 register offsets (Arm IHI 0069, 12.9 and 12.11). */
#define GICD_CTLR 0x0000u
#define GICD_TYPER 0x0004u
#define GICD_IIDR 0x0008u
#define GICD_IGROUPR 0x0080u
#define GICD_ISENABLER 0x0100u
#define GICD_ICENABLER 0x0180u
#define GICD_ISPENDR 0x0200u
#define GICD_ICPENDR 0x0280u
#define GICD_ISACTIVER 0x0300u
#define GICD_ICACTIVER 0x0380u
#define GICD_IPRIORITYR 0x0400u
#define GICD_ICFGR 0x0c00u
#define GICD_IGRPMODR 0x0d00u
#define GICD_IROUTER 0x6000u
#define GICR_CTLR 0x0000u
#define GICR_TYPER 0x0008u
#define GICR_PROPBASER 0x0070u
#define GICR_PENDBASER 0x0078u
#define GICR_SGI 0x10000u
/* KVM's GICD_CTLR: ARE_NS and DS always set, EnableGrp1 the one writable bit. */
#define CTLR_ENABLE_G1 (1u << 1)
#define CTLR_ARE_DS ((1u << 4) | (1u << 6))
/* CPU interface: 5 priority bits (KVM's vgic_v3_cpu num_pri_bits on most hosts). */
#define PRI_BITS 5u
#define ICC_CTLR_RO ((PRI_BITS - 1) << 8 | 1u << 15) /* PRIbits, A3V */
#define ICC_CTLR_RW 0x3u                               /* CBPR, EOImode */

enum icc { ICC_PMR, ICC_BPR0, ICC_AP0R0, ICC_AP1R0, ICC_BPR1, ICC_CTLR, ICC_SRE, ICC_IGRPEN0,
	   ICC_IGRPEN1, ICC_NONE };

/* The KVM_REG_ARM64_SYSREG-style encoding of attr's low 16 bits. */
#define SYSREG(op0, op1, crn, crm, op2) \
	((uint32_t)((op0) << 14 | (op1) << 11 | (crn) << 7 | (crm) << 3 | (op2)))

static enum icc icc_of(uint32_t enc, int *apr_beyond)
{
	*apr_beyond = 0;
	switch (enc) {
	case SYSREG(3, 0, 4, 6, 0): return ICC_PMR;
	case SYSREG(3, 0, 12, 8, 3): return ICC_BPR0;
	case SYSREG(3, 0, 12, 8, 4): return ICC_AP0R0;
	case SYSREG(3, 0, 12, 9, 0): return ICC_AP1R0;
	case SYSREG(3, 0, 12, 12, 3): return ICC_BPR1;
	case SYSREG(3, 0, 12, 12, 4): return ICC_CTLR;
	case SYSREG(3, 0, 12, 12, 5): return ICC_SRE;
	case SYSREG(3, 0, 12, 12, 6): return ICC_IGRPEN0;
	case SYSREG(3, 0, 12, 12, 7): return ICC_IGRPEN1;
	case SYSREG(3, 0, 12, 8, 5): case SYSREG(3, 0, 12, 8, 6): case SYSREG(3, 0, 12, 8, 7):
	case SYSREG(3, 0, 12, 9, 1): case SYSREG(3, 0, 12, 9, 2): case SYSREG(3, 0, 12, 9, 3):
		*apr_beyond = 1; /* AP0R1-3, AP1R1-3: only with 6 or 7 priority bits */
		return ICC_NONE;
	default:
		return ICC_NONE;
	}
}

/* The vCPU whose compressed MPIDR (Aff3.Aff2.Aff1.Aff0) is @aff, or -1. */
static int vcpu_by_mpidr(const struct mock_vm *vm, uint32_t aff)
{
	for (unsigned i = 0; i < vm->mock->cfg.max_vcpus; i++) {
		uint64_t mpidr = 0;

		if (!vm->vcpus[i] || mock_reg_get(vm->vcpus[i], VCPU_REG_ARM64_MPIDR_EL1, &mpidr))
			continue;
		if ((uint32_t)(((mpidr >> 32) & 0xff) << 24 | (mpidr & 0xffffff)) == aff)
			return (int)i;
	}
	return -1;
}

/* One bit per INTID in words (IGROUPR, I[SC]ENABLER, ...): set, clear or plain write. */
static void bits_write(uint32_t *w, uint32_t v, int how)
{
	if (how > 0)
		*w |= v;
	else if (how < 0)
		*w &= ~v;
	else
		*w = v;
}

/*
 * A 32-bit access to the registers of INTIDs [base, base + 32) held in
 * @s (SGIs/PPIs of a redistributor, or SPIs of the distributor).
 * @off: offset from the register block's start (0x80 IGROUPR...).
 * Return 0, or -ENXIO for an offset that is no such register.
 */
struct irqs {
	uint32_t *group, *grpmod, *enabled, *pending, *active, *cfg;
	uint8_t *prio;
	uint32_t nwords; /* 32-INTID words held */
};

static int irq_regs(struct irqs *s, uint32_t off, uint32_t *val, bool set)
{
	static const struct {
		uint32_t base;
		int how; /* 0 plain, 1 set, -1 clear */
		int which;
	} bitregs[] = {
		{ GICD_IGROUPR, 0, 0 }, { GICD_ISENABLER, 1, 1 }, { GICD_ICENABLER, -1, 1 },
		{ GICD_ISPENDR, 1, 2 }, { GICD_ICPENDR, -1, 2 }, { GICD_ISACTIVER, 1, 3 },
		{ GICD_ICACTIVER, -1, 3 }, { GICD_IGRPMODR, 0, 4 },
	};

	for (size_t k = 0; k < sizeof(bitregs) / sizeof(bitregs[0]); k++) {
		uint32_t *arr, n;

		if (off < bitregs[k].base || off >= bitregs[k].base + 0x80)
			continue;
		n = (off - bitregs[k].base) / 4;
		arr = (uint32_t *[]){ s->group, s->enabled, s->pending, s->active, s->grpmod }[bitregs[k].which];
		if (n >= s->nwords) {
			if (!set)
				*val = 0;
			return 0;
		}
		if (set)
			bits_write(&arr[n], *val, bitregs[k].how);
		else
			*val = arr[n];
		return 0;
	}
	if (off >= GICD_IPRIORITYR && off < GICD_IPRIORITYR + 0x400) {
		uint32_t irq = off - GICD_IPRIORITYR;

		for (uint32_t i = 0; i < 4; i++) {
			if (irq + i >= s->nwords * 32) {
				if (!set && i == 0)
					*val = 0;
				break;
			}
			if (set)
				s->prio[irq + i] = (uint8_t)(*val >> (8 * i)) & (uint8_t)(0xff << (8 - PRI_BITS));
			else
				*val = (i ? *val : 0) | (uint32_t)s->prio[irq + i] << (8 * i);
		}
		return 0;
	}
	if (off >= GICD_ICFGR && off < GICD_ICFGR + 0x100) {
		uint32_t n = (off - GICD_ICFGR) / 4;

		if (n >= 2 * s->nwords) {
			if (!set)
				*val = 0;
		} else if (set) {
			s->cfg[n] = *val & 0xaaaaaaaau; /* Int_config[1] of each field; [0] is RES0 */
		} else {
			*val = s->cfg[n];
		}
		return 0;
	}
	return -ENXIO;
}

static int dist_access(struct mock_vm *vm, uint32_t off, uint32_t *val, bool set)
{
	struct mock_vgic *g = &vm->gic;
	uint32_t words = g->nr_irqs / 32;
	struct irqs s = { g->group, g->grpmod, g->enabled, g->pending, g->active, g->cfg,
			  g->prio, words };

	if (off == GICD_CTLR) {
		if (set)
			g->enabled_g1 = (*val & CTLR_ENABLE_G1) != 0;
		else
			*val = (g->enabled_g1 ? CTLR_ENABLE_G1 : 0) | CTLR_ARE_DS;
		return 0;
	}
	if (off == GICD_TYPER || off == GICD_IIDR) {
		/* Read-only: ITLinesNumber from nr_irqs, IDbits 16; the IIDR of KVM. */
		if (!set)
			*val = off == GICD_TYPER ? (words - 1) | (15u << 19) : 0x3000043bu;
		return 0;
	}
	if (off >= GICD_IROUTER + 8 * 32 && off < GICD_IROUTER + 8 * 1020) {
		uint32_t irq = (off - GICD_IROUTER) / 8, hi = (off % 8) == 4;

		if (off % 4)
			return -ENXIO;
		if (irq >= g->nr_irqs) {
			if (!set)
				*val = 0;
		} else if (set) {
			g->irouter[irq] = hi ? (g->irouter[irq] & 0xffffffffull) | (uint64_t)(*val & 0xffu) << 32
					     : (g->irouter[irq] & ~0xffffffffull) | (*val & 0x80ffffffu);
		} else {
			*val = hi ? (uint32_t)(g->irouter[irq] >> 32) : (uint32_t)g->irouter[irq];
		}
		return 0;
	}
	/* The SGI/PPI word and bytes of the distributor are RAZ/WI with ARE set. */
	if ((off >= GICD_IGROUPR && off < GICD_IPRIORITYR && off % 0x80 == 0) ||
	    (off >= GICD_IPRIORITYR && off < GICD_IPRIORITYR + 32) ||
	    (off >= GICD_ICFGR && off < GICD_ICFGR + 8) || off == GICD_IGRPMODR) {
		if (off % 4)
			return -ENXIO;
		if (!set)
			*val = 0;
		return 0;
	}
	if (off % 4)
		return -ENXIO;
	return irq_regs(&s, off, val, set);
}

static int redist_access(struct mock_vgic_cpu *c, uint32_t off, uint32_t *val, bool set)
{
	struct irqs s = { &c->group, &c->grpmod, &c->enabled, &c->pending, &c->active, c->cfg,
			  c->prio, 1 };
	uint64_t *reg64 = NULL;

	if (off % 4)
		return -ENXIO;
	switch (off) {
	case GICR_CTLR:
		/* EnableLPIs needs an ITS; without one KVM keeps it clear. */
		if (!set)
			*val = 0;
		return 0;
	case GICR_TYPER:
	case GICR_TYPER + 4:
		if (!set)
			*val = 0; /* read-only; its contents are not part of any saved state */
		return 0;
	case GICR_PROPBASER:
	case GICR_PROPBASER + 4:
		reg64 = &c->propbaser;
		break;
	case GICR_PENDBASER:
	case GICR_PENDBASER + 4:
		reg64 = &c->pendbaser;
		break;
	default:
		break;
	}
	if (reg64) {
		unsigned sh = (off % 8) ? 32 : 0;

		if (set)
			*reg64 = (*reg64 & ~(0xffffffffull << sh)) | (uint64_t)*val << sh;
		else
			*val = (uint32_t)(*reg64 >> sh);
		return 0;
	}
	if (off < GICR_SGI || off >= GICR_SGI + 0x1000)
		return -ENXIO;
	off -= GICR_SGI;
	if (off == GICD_ICFGR && set)
		return 0; /* SGIs are edge-triggered: ICFGR0 is read-only */
	if (off == GICD_ICFGR && !set) {
		*val = 0xaaaaaaaau;
		return 0;
	}
	if (off == GICD_ICFGR + 4) {
		if (set)
			c->cfg[1] = *val & 0xaaaaaaaau;
		else
			*val = c->cfg[1];
		return 0;
	}
	if ((off >= GICD_IPRIORITYR + 32 && off < GICD_IPRIORITYR + 0x400) ||
	    (off > GICD_IGROUPR && off < GICD_IPRIORITYR && off % 0x80 != 0))
		return -ENXIO; /* only word 0 of each bit register exists in a redistributor */
	return irq_regs(&s, off, val, set);
}

static int icc_access(struct mock_vgic_cpu *c, uint32_t enc, uint64_t *val, bool set)
{
	int beyond;
	enum icc r = icc_of(enc, &beyond);

	if (r == ICC_NONE)
		return beyond ? -EINVAL : -ENXIO;
	if (!set) {
		*val = r == ICC_CTLR ? ICC_CTLR_RO | (c->icc[r] & ICC_CTLR_RW)
		     : r == ICC_SRE  ? 0x7 /* SRE, DFB, DIB */
				     : c->icc[r];
		return 0;
	}
	switch (r) {
	case ICC_CTLR:
		/* vgic-sys-reg-v3.c set_gic_ctlr(): PRIbits, IDbits, SEIS, A3V must match. */
		if ((*val & ~(uint64_t)ICC_CTLR_RW) != ICC_CTLR_RO)
			return -EINVAL;
		c->icc[r] = *val & ICC_CTLR_RW;
		return 0;
	case ICC_SRE:
		return (*val & 1) ? 0 : -EINVAL;
	case ICC_PMR:
		c->icc[r] = *val & (0xffu << (8 - PRI_BITS)) & 0xffu;
		return 0;
	case ICC_BPR0:
	case ICC_BPR1:
		c->icc[r] = *val & 7;
		return 0;
	case ICC_IGRPEN0:
	case ICC_IGRPEN1:
		c->icc[r] = *val & 1;
		return 0;
	default: /* AP0R0, AP1R0 */
		c->icc[r] = *val & 0xffffffffull;
		return 0;
	}
}

/* LEVEL_INFO: the line levels of 32 SPIs (the PPIs' levels are not modelled: RAZ/WI). */
static int level_access(struct mock_vm *vm, uint64_t attr, uint32_t *val, bool set)
{
	uint32_t intid = (uint32_t)attr & 0x3ffu, info = ((uint32_t)attr >> 10) & 0x3fffffu;

	if (intid % 32 || info != 0)
		return -EINVAL;
	for (uint32_t i = 0; i < 32; i++) {
		uint32_t irq = intid + i;
		bool ok = irq >= 32 && irq < vm->gic.nr_irqs && irq < MOCK_MAX_IRQS;

		if (set && ok)
			vm->irq_level[irq] = (*val >> i) & 1;
		else if (!set)
			*val = (i ? *val : 0) | (ok && vm->irq_level[irq] ? 1u << i : 0);
	}
	return 0;
}

static bool lock_all_vcpus(struct mock_vm *vm)
{
	unsigned n = vm->mock->cfg.max_vcpus, i;

	for (i = 0; i < n; i++)
		if (vm->vcpus[i] && pthread_mutex_trylock(&vm->vcpus[i]->ioctl_lock) != 0)
			break;
	if (i == n)
		return true;
	while (i--)
		if (vm->vcpus[i])
			pthread_mutex_unlock(&vm->vcpus[i]->ioctl_lock);
	return false;
}

static void unlock_all_vcpus(struct mock_vm *vm)
{
	for (unsigned i = 0; i < vm->mock->cfg.max_vcpus; i++)
		if (vm->vcpus[i])
			pthread_mutex_unlock(&vm->vcpus[i]->ioctl_lock);
}

bool mock_vgic_regs_group(uint32_t group)
{
	return group == KVM_DEV_ARM_VGIC_GRP_DIST_REGS || group == KVM_DEV_ARM_VGIC_GRP_REDIST_REGS ||
	       group == KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS || group == KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO;
}

int mock_vgic_regs(struct mock_vm *vm, const struct kvm_device_attr *a, enum mock_attr_op op)
{
	struct mock_vgic *g = &vm->gic;
	uint32_t aff = (uint32_t)(a->attr >> 32), off = (uint32_t)a->attr, v32 = 0;
	uint64_t v64 = 0;
	bool set = op == MOCK_ATTR_SET;
	int cpu = -1, r;

	if (!g->initialised)
		return op == MOCK_ATTR_HAS ? 0 : -EBUSY;
	if (a->group != KVM_DEV_ARM_VGIC_GRP_DIST_REGS && a->group != KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO) {
		cpu = vcpu_by_mpidr(vm, aff);
		if (cpu < 0)
			return -EINVAL;
	}
	if (op != MOCK_ATTR_HAS && !a->addr)
		return -EFAULT;
	if (set && a->group == KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS)
		mock_copy_in(&v64, a->addr, sizeof(v64));
	else if (set)
		mock_copy_in(&v32, a->addr, sizeof(v32));
	if (op != MOCK_ATTR_HAS && !lock_all_vcpus(vm))
		return -EBUSY;
	switch (a->group) {
	case KVM_DEV_ARM_VGIC_GRP_DIST_REGS:
		r = dist_access(vm, off, &v32, set);
		break;
	case KVM_DEV_ARM_VGIC_GRP_REDIST_REGS:
		r = redist_access(&g->cpus[cpu], off, &v32, set);
		break;
	case KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS:
		r = icc_access(&g->cpus[cpu], off & 0xffffu, &v64, set);
		break;
	default:
		r = level_access(vm, a->attr, &v32, set);
		break;
	}
	if (op == MOCK_ATTR_HAS) {
		/* vgic_v3_has_attr_regs(): the register exists; nothing was changed (set false). */
		return r == -EINVAL && a->group == KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO ? -EINVAL
		       : r ? -ENXIO : 0;
	}
	unlock_all_vcpus(vm);
	if (r == 0 && !set) {
		if (a->group == KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS)
			mock_copy_out(a->addr, &v64, sizeof(v64));
		else
			mock_copy_out(a->addr, &v32, sizeof(v32));
	}
	return r;
}

/* CTRL_INIT: the per-vCPU interfaces, in their reset state. */
int mock_vgic_init_cpus(struct mock_vm *vm)
{
	struct mock_vgic *g = &vm->gic;

	g->cpus = calloc(vm->mock->cfg.max_vcpus, sizeof(*g->cpus));
	if (!g->cpus)
		return -ENOMEM;
	for (unsigned i = 0; i < vm->mock->cfg.max_vcpus; i++)
		g->cpus[i].icc[ICC_CTLR] = 0;
	return 0;
}
