// SPDX-License-Identifier: MIT
/* ACRN vCPU handles and the register file (see acrn.c for the model). */
#define _GNU_SOURCE
#include "acrn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* vCPUs and registers                                                        */

/*
 * The shadow starts in the architectural reset state (Intel SDM vol. 3
 * "Processor state following power-up, reset or INIT"): the first
 * vcpu_set_reg() sends it whole, so registers never set are those of a
 * freshly reset CPU, not zeros the hypervisor would reject (CR0.ET) or a
 * CS that cannot fetch.
 */
static void regs_reset_state(struct acrn_vcpu_regs *v, uint32_t id)
{
	struct acrn_regs *r = &v->vcpu_regs;

	memset(v, 0, sizeof(*v));
	v->vcpu_id = (uint16_t)id;
	r->rip = 0xfff0;
	r->rflags = 0x2;
	r->cr0 = 0x60000010; /* CD | NW | ET */
	r->cs_sel = 0xf000;
	r->cs_base = 0xffff0000;
	r->cs_limit = 0xffff;
	r->cs_ar = 0x9b; /* present, code execute/read accessed */
	r->gdt.limit = 0xffff;
	r->idt.limit = 0xffff;
}

int acrn_vcpu_create(struct vcpu *cpu, uint32_t flags)
{
	struct acrn_vm_priv *p = vm_priv(cpu->vm);
	struct acrn_vcpu_priv *cp;

	(void)flags;
	/* vCPUs exist since CREATE_VM; a handle just names one (vm->lock held). */
	if (cpu->id >= p->vcpu_num)
		return cpu_fail(cpu, -EINVAL, "the ACRN VM has %u vCPUs: no vCPU %u", p->vcpu_num,
				cpu->id);
	if (p->bound & (1u << cpu->id))
		return cpu_fail(cpu, -EEXIST, "vCPU %u already has a handle", cpu->id);
	cp = calloc(1, sizeof(*cp));
	if (!cp)
		return cpu_fail(cpu, -ENOMEM, "cannot allocate vCPU %u state", cpu->id);
	regs_reset_state(&cp->regs, cpu->id);
	p->bound |= 1u << cpu->id;
	cpu->priv = cp;
	cpu->fd = -1;
	return 0;
}

void acrn_vcpu_destroy(struct vcpu *cpu)
{
	struct vcpu_vm *vm = cpu->vm;
	struct acrn_vm_priv *p = vm_priv(vm);
	struct vcpu *self = cpu;

	pthread_mutex_lock(&vm->lock);
	p->bound &= ~(1u << cpu->id);
	atomic_compare_exchange_strong(&p->server, &self, NULL);
	pthread_mutex_unlock(&vm->lock);
	/* A kicker that read .server before it was cleared may still look at us. */
	while (atomic_load(&p->kickers))
		sched_yield();
	free(cpu->priv);
	cpu->priv = NULL;
}

/* Where a portable id lives in acrn_regs; *absent for x86 registers ACRN does not carry. */
static uint64_t *reg_slot(struct acrn_regs *r, uint64_t reg, bool *absent)
{
	static const uint8_t gpr[] = {
		/* VCPU_REG_X86_RAX.. in enum order -> ACRN's encoding order */
		ACRN_RAX, ACRN_RBX, ACRN_RCX, ACRN_RDX, ACRN_RSI, ACRN_RDI, ACRN_RSP, ACRN_RBP,
	};

	*absent = false;
	if (reg >= VCPU_REG_X86_RAX && reg <= VCPU_REG_X86_RBP)
		return &r->gprs[gpr[reg - VCPU_REG_X86_RAX]];
	if (reg >= VCPU_REG_X86_R8 && reg <= VCPU_REG_X86_R15)
		return &r->gprs[8 + (reg - VCPU_REG_X86_R8)];
	switch (reg) {
	case VCPU_REG_X86_RIP: return &r->rip;
	case VCPU_REG_X86_RFLAGS: return &r->rflags;
	case VCPU_REG_X86_CR0: return &r->cr0;
	case VCPU_REG_X86_CR3: return &r->cr3;
	case VCPU_REG_X86_CR4: return &r->cr4;
	case VCPU_REG_X86_EFER: return &r->ia32_efer;
	case VCPU_REG_X86_CR2:
	case VCPU_REG_X86_CR8:
	case VCPU_REG_X86_APIC_BASE:
		*absent = true;
		return NULL;
	default:
		return NULL;
	}
}

/* Send the whole register file; the shadow changes only when the hypervisor took it. */
static int send_regs(struct vcpu *cpu, const struct acrn_vcpu_regs *regs)
{
	struct acrn_vcpu_priv *cp = cpu->priv;
	int r = sys_ioctl(cpu->vm->hv, cpu->vm->fd, ACRN_IOCTL_SET_VCPU_REGS, (unsigned long)regs);

	if (r < 0)
		return cpu_fail(cpu, r,
				"ACRN_IOCTL_SET_VCPU_REGS on vCPU %u failed (the hypervisor takes "
				"registers only while the VM is not running)",
				cpu->id);
	cp->regs = *regs;
	return 0;
}

int acrn_get_reg(struct vcpu *cpu, uint64_t reg, uint64_t *value)
{
	(void)value;
	return cpu_fail(cpu, -EOPNOTSUPP,
			"ACRN cannot read registers (only ACRN_IOCTL_SET_VCPU_REGS exists): "
			"register 0x%llx of vCPU %u",
			(unsigned long long)reg, cpu->id);
}

/* Put one register into a copy of the register file (nothing is sent). */
static int put_reg(struct vcpu *cpu, struct acrn_vcpu_regs *regs, uint64_t reg, uint64_t value)
{
	bool absent;
	uint64_t *slot = reg_slot(&regs->vcpu_regs, reg, &absent);

	if (absent)
		return cpu_fail(cpu, -ENOENT, "ACRN's vCPU registers have no register 0x%llx",
				(unsigned long long)reg);
	if (!slot)
		return cpu_fail(cpu, -EINVAL, "0x%llx is not an x86_64 register id",
				(unsigned long long)reg);
	*slot = value;
	return 0;
}

int acrn_set_reg(struct vcpu *cpu, uint64_t reg, uint64_t value)
{
	struct acrn_vcpu_priv *cp = cpu->priv;
	struct acrn_vcpu_regs regs = cp->regs;
	int r = put_reg(cpu, &regs, reg, value);

	return r < 0 ? r : send_regs(cpu, &regs);
}

int acrn_get_segment(struct vcpu *cpu, enum vcpu_x86_seg seg, struct vcpu_x86_segment *s)
{
	(void)s;
	return cpu_fail(cpu, -EOPNOTSUPP,
			"ACRN cannot read registers (only ACRN_IOCTL_SET_VCPU_REGS exists): "
			"segment %d of vCPU %u",
			(int)seg, cpu->id);
}

/*
 * acrn_regs carries CS whole (base, limit, VMX access rights), a selector
 * for the other segments, and GDT/IDT base and limit.  The hypervisor loads
 * those other segments flat (base 0, limit and rights from CR0.PE), so a
 * base it would drop is refused rather than lost.
 */
static int put_segment(struct vcpu *cpu, struct acrn_vcpu_regs *regs, enum vcpu_x86_seg seg,
		       const struct vcpu_x86_segment *s)
{
	struct acrn_regs *r = &regs->vcpu_regs;
	uint16_t *sel = NULL;

	switch (seg) {
	case VCPU_X86_CS:
		if (s->type > 15 || s->dpl > 3 || s->present > 1 || s->s > 1 || s->l > 1 ||
		    s->db > 1 || s->g > 1 || s->avl > 1 || s->unusable > 1)
			return cpu_fail(cpu, -EINVAL, "CS attributes out of range");
		r->cs_base = s->base;
		r->cs_limit = s->limit;
		r->cs_sel = s->selector;
		r->cs_ar = (uint32_t)s->type | (uint32_t)s->s << 4 | (uint32_t)s->dpl << 5 |
			   (uint32_t)s->present << 7 | (uint32_t)s->avl << 12 |
			   (uint32_t)s->l << 13 | (uint32_t)s->db << 14 | (uint32_t)s->g << 15 |
			   (uint32_t)s->unusable << 16;
		break;
	case VCPU_X86_GDT:
	case VCPU_X86_IDT:
		/* The core refused limits over 16 bits. */
		if (seg == VCPU_X86_GDT) {
			r->gdt.base = s->base;
			r->gdt.limit = (uint16_t)s->limit;
		} else {
			r->idt.base = s->base;
			r->idt.limit = (uint16_t)s->limit;
		}
		break;
	case VCPU_X86_DS: sel = &r->ds_sel; break;
	case VCPU_X86_ES: sel = &r->es_sel; break;
	case VCPU_X86_FS: sel = &r->fs_sel; break;
	case VCPU_X86_GS: sel = &r->gs_sel; break;
	case VCPU_X86_SS: sel = &r->ss_sel; break;
	case VCPU_X86_TR: sel = &r->tr_sel; break;
	case VCPU_X86_LDT: sel = &r->ldt_sel; break;
	default:
		return cpu_fail(cpu, -EINVAL, "unknown x86 segment %d", (int)seg);
	}
	if (sel) {
		if (s->base)
			return cpu_fail(cpu, -EOPNOTSUPP,
					"ACRN loads segment %d flat: base 0x%llx cannot be set "
					"(only CS has a base)",
					(int)seg, (unsigned long long)s->base);
		*sel = s->selector;
	}
	return 0;
}

int acrn_set_segment(struct vcpu *cpu, enum vcpu_x86_seg seg, const struct vcpu_x86_segment *s)
{
	struct acrn_vcpu_priv *cp = cpu->priv;
	struct acrn_vcpu_regs regs = cp->regs;
	int r = put_segment(cpu, &regs, seg, s);

	return r < 0 ? r : send_regs(cpu, &regs);
}

/* A batch is one ACRN_IOCTL_SET_VCPU_REGS: all of it is taken, or none. */
int acrn_set_regs(struct vcpu *cpu, const struct vcpu_reg *regs, uint32_t n)
{
	struct acrn_vcpu_priv *cp = cpu->priv;
	struct acrn_vcpu_regs file = cp->regs;
	int r = 0;

	for (uint32_t i = 0; i < n && r == 0; i++) {
		if (vcpu_reg_is_segment(regs[i].id))
			r = put_segment(cpu, &file,
					(enum vcpu_x86_seg)(regs[i].id - VCPU_REG_X86_SEG(0)),
					&regs[i].seg);
		else
			r = put_reg(cpu, &file, regs[i].id, regs[i].value);
		if (r < 0)
			return vcpu_regs_entry_failed(cpu, i, r);
	}
	return send_regs(cpu, &file);
}

