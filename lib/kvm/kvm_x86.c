// SPDX-License-Identifier: MIT
/* KVM on x86_64: VM setup, CPUID, kvm_regs/kvm_sregs access, hypercall exits. */
#define _GNU_SOURCE
#include "kvm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * Intel needs a TSS region for real-mode guests; this is the address QEMU and
 * kvmtool use, three pages just below the 4 GiB BIOS area.
 */
#define X86_TSS_ADDR 0xfffbd000ul

static int x86_vm_type(struct vcpu_vm *vm, const struct vcpu_vm_config *cfg, unsigned long *type)
{
	if (cfg->ipa_bits)
		return vm_fail(vm, -EINVAL, "ipa_bits is an arm64 setting");
	if (cfg->flags & VCPU_VM_SYSTEM_SUSPEND)
		return vm_fail(vm, -EINVAL, "VCPU_VM_SYSTEM_SUSPEND is an arm64 setting");
	*type = 0;
	return 0;
}

static int x86_vm_setup(struct vcpu_vm *vm)
{
	int r = sys_ioctl(vm->hv, vm->fd, KVM_SET_TSS_ADDR, X86_TSS_ADDR);

	return r < 0 ? vm_fail(vm, r, "KVM_SET_TSS_ADDR failed") : 0;
}

/* Give the vCPU every CPUID leaf the host's KVM supports, as QEMU's -cpu host does. */
static int setup_cpuid(struct vcpu *cpu)
{
	struct vcpu_hv *hv = cpu->vm->hv;
	struct kvm_cpuid2 *c = NULL;
	uint32_t n = 64;
	int r;

	for (;;) {
		free(c);
		c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return cpu_fail(cpu, -ENOMEM, "cannot allocate %u CPUID entries", n);
		c->nent = n;
		r = sys_ioctl(hv, hv->fd, KVM_GET_SUPPORTED_CPUID, (unsigned long)c);
		if (r != -E2BIG || n >= 4096)
			break;
		n *= 2;
	}
	if (r < 0) {
		free(c);
		return cpu_fail(cpu, r, "KVM_GET_SUPPORTED_CPUID failed");
	}
	if (c->nent > n) {
		uint32_t nent = c->nent;
		free(c);
		return cpu_fail(cpu, -EPROTO, "KVM_GET_SUPPORTED_CPUID reported %u entries in %u",
				nent, n);
	}
	r = sys_ioctl(hv, cpu->fd, KVM_SET_CPUID2, (unsigned long)c);
	free(c);
	return r < 0 ? cpu_fail(cpu, r, "KVM_SET_CPUID2 on vCPU %u failed", cpu->id) : 0;
}

static int x86_vcpu_setup(struct vcpu *cpu, uint32_t flags)
{
	(void)flags;
	return setup_cpuid(cpu);
}

static int get_regs(struct vcpu *cpu, struct kvm_regs_x86 *regs)
{
	int r = sys_ioctl(cpu->vm->hv, cpu->fd, KVM_GET_REGS_X86, (unsigned long)regs);

	return r < 0 ? cpu_fail(cpu, r, "KVM_GET_REGS on vCPU %u failed", cpu->id) : 0;
}

static int get_sregs(struct vcpu *cpu, struct kvm_sregs *sregs)
{
	int r = sys_ioctl(cpu->vm->hv, cpu->fd, KVM_GET_SREGS, (unsigned long)sregs);

	return r < 0 ? cpu_fail(cpu, r, "KVM_GET_SREGS on vCPU %u failed", cpu->id) : 0;
}

static int set_sregs(struct vcpu *cpu, const struct kvm_sregs *sregs)
{
	int r = sys_ioctl(cpu->vm->hv, cpu->fd, KVM_SET_SREGS, (unsigned long)sregs);

	return r < 0 ? cpu_fail(cpu, r, "KVM_SET_SREGS on vCPU %u failed", cpu->id) : 0;
}

/* Where a portable id lives in kvm_regs or kvm_sregs; NULL if not x86. */
static uint64_t *x86_slot(uint64_t reg, struct kvm_regs_x86 *regs, struct kvm_sregs *sregs)
{
	uint64_t *gprs = &regs->rax; /* kvm_regs is 18 consecutive u64s */

	if (reg >= VCPU_REG_X86_RAX && reg <= VCPU_REG_X86_RFLAGS)
		return gprs + (reg - VCPU_REG_X86_RAX);
	switch (reg) {
	case VCPU_REG_X86_CR0: return &sregs->cr0;
	case VCPU_REG_X86_CR2: return &sregs->cr2;
	case VCPU_REG_X86_CR3: return &sregs->cr3;
	case VCPU_REG_X86_CR4: return &sregs->cr4;
	case VCPU_REG_X86_CR8: return &sregs->cr8;
	case VCPU_REG_X86_EFER: return &sregs->efer;
	case VCPU_REG_X86_APIC_BASE: return &sregs->apic_base;
	default: return NULL;
	}
}

static int x86_reg(struct vcpu *cpu, uint64_t reg, uint64_t *value, bool set)
{
	struct kvm_regs_x86 regs;
	struct kvm_sregs sregs;
	uint64_t *slot = x86_slot(reg, &regs, &sregs);
	bool gpr = reg <= VCPU_REG_X86_RFLAGS;
	int r;

	if (!slot)
		return cpu_fail(cpu, -EINVAL, "register 0x%llx is not an x86_64 register",
				(unsigned long long)reg);
	r = gpr ? get_regs(cpu, &regs) : get_sregs(cpu, &sregs);
	if (r < 0)
		return r;
	if (!set) {
		*value = *slot;
		return 0;
	}
	*slot = *value;
	if (!gpr)
		return set_sregs(cpu, &sregs);
	r = sys_ioctl(cpu->vm->hv, cpu->fd, KVM_SET_REGS_X86, (unsigned long)&regs);
	return r < 0 ? cpu_fail(cpu, r, "KVM_SET_REGS on vCPU %u failed", cpu->id) : 0;
}

static int x86_get_reg(struct vcpu *cpu, uint64_t reg, uint64_t *value)
{
	return x86_reg(cpu, reg, value, false);
}

static int x86_set_reg(struct vcpu *cpu, uint64_t reg, uint64_t value)
{
	return x86_reg(cpu, reg, &value, true);
}

static struct kvm_segment *seg_slot(struct kvm_sregs *s, enum vcpu_x86_seg seg)
{
	struct kvm_segment *segs[] = { &s->cs, &s->ds, &s->es, &s->fs,
				       &s->gs, &s->ss, &s->tr, &s->ldt };
	return (unsigned)seg < sizeof(segs) / sizeof(segs[0]) ? segs[seg] : NULL;
}

int kvm_x86_get_segment(struct vcpu *cpu, enum vcpu_x86_seg seg, struct vcpu_x86_segment *out)
{
	struct kvm_sregs s;
	const struct kvm_segment *k;
	int r = get_sregs(cpu, &s);

	if (r < 0)
		return r;
	memset(out, 0, sizeof(*out));
	if (seg == VCPU_X86_GDT || seg == VCPU_X86_IDT) {
		const struct kvm_dtable *t = seg == VCPU_X86_GDT ? &s.gdt : &s.idt;
		out->base = t->base;
		out->limit = t->limit;
		return 0;
	}
	k = seg_slot(&s, seg);
	*out = (struct vcpu_x86_segment){ .base = k->base, .limit = k->limit,
					  .selector = k->selector, .type = k->type,
					  .present = k->present, .dpl = k->dpl, .db = k->db,
					  .s = k->s, .l = k->l, .g = k->g, .avl = k->avl,
					  .unusable = k->unusable };
	return 0;
}

int kvm_x86_set_segment(struct vcpu *cpu, enum vcpu_x86_seg seg, const struct vcpu_x86_segment *in)
{
	struct kvm_sregs s;
	struct kvm_segment *k;
	int r = get_sregs(cpu, &s);

	if (r < 0)
		return r;
	if (seg == VCPU_X86_GDT || seg == VCPU_X86_IDT) {
		struct kvm_dtable *t = seg == VCPU_X86_GDT ? &s.gdt : &s.idt;
		if (in->limit > 0xffff)
			return cpu_fail(cpu, -EINVAL, "descriptor-table limit 0x%x exceeds 16 bits",
					in->limit);
		t->base = in->base;
		t->limit = (uint16_t)in->limit;
		return set_sregs(cpu, &s);
	}
	k = seg_slot(&s, seg);
	*k = (struct kvm_segment){ .base = in->base, .limit = in->limit,
				   .selector = in->selector, .type = in->type,
				   .present = in->present, .dpl = in->dpl, .db = in->db,
				   .s = in->s, .l = in->l, .g = in->g, .avl = in->avl,
				   .unusable = in->unusable };
	return set_sregs(cpu, &s);
}

static int x86_hypercall_decode(struct vcpu *cpu, const struct kvm_run *run)
{
	struct vcpu_hypercall *hc = &cpu->exit.u.hypercall;

	hc->nr = run->u.hypercall.nr;
	memcpy(hc->args, run->u.hypercall.args, sizeof(run->u.hypercall.args));
	hc->nargs = 6;
	hc->flags = run->u.hypercall.flags & KVM_HYPERCALL_LONGMODE ? VCPU_HYPERCALL_LONGMODE : 0;
	hc->ret[0] = run->u.hypercall.ret;
	cpu->exit.kind = VCPU_EXIT_HYPERCALL;
	return 0;
}

static int x86_hypercall_complete(struct vcpu *cpu, struct kvm_run *run)
{
	/* KVM copies hypercall.ret into RAX on the next entry. */
	run->u.hypercall.ret = cpu->exit.u.hypercall.ret[0];
	return 0;
}

static uint32_t x86_irq_encode(uint32_t irq, int *ok)
{
	/* KVM ignores a GSI without a route; libvcpu only ever has the default ones. */
	*ok = irq < KVM_X86_DEFAULT_GSIS;
	return irq;
}

/*
 * kvm_arch_vm_ioctl(): KVM_CREATE_IRQCHIP is EEXIST when there is one and
 * EINVAL once any vCPU was created (kvm->created_vcpus, which closing a vCPU
 * fd does not lower); KVM_CREATE_PIT2 is EEXIST for a second PIT and ENOENT
 * without the PIC.  The library says so itself, with the reason.
 */
int kvm_x86_create_irqchip(struct vcpu_vm *vm, uint32_t flags)
{
	struct kvm_vm_priv *p = vm->priv;
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	const bool want_pit = flags & VCPU_X86_IRQCHIP_PIT;
	int r = 0;

	pthread_mutex_lock(&vm->lock);
	if (p->x86_irqchip && (p->x86_pit || !want_pit)) {
		r = vm_fail(vm, -EEXIST, "the VM already has an in-kernel irqchip%s",
			    p->x86_pit ? " and PIT" : "");
		goto out;
	}
	if (!p->x86_irqchip) {
		if (p->vcpu_created) {
			r = vm_fail(vm, -EINVAL, "create the in-kernel irqchip before the first vCPU "
				    "(KVM gives each vCPU its local APIC when it is created)");
			goto out;
		}
		r = sys_ioctl(vm->hv, vm->fd, KVM_CREATE_IRQCHIP, 0);
		if (r < 0) {
			r = vm_fail(vm, r, "KVM_CREATE_IRQCHIP failed");
			goto out;
		}
		p->x86_irqchip = true;
	}
	if (want_pit) {
		r = sys_ioctl(vm->hv, vm->fd, KVM_CREATE_PIT2, (unsigned long)&pit);
		if (r < 0) {
			/* The irqchip cannot be taken back: a second call makes only the PIT. */
			r = vm_fail(vm, r, "KVM_CREATE_PIT2 failed (the irqchip exists; calling "
				    "again creates only the PIT)");
			goto out;
		}
		p->x86_pit = true;
	}
	r = 0;
out:
	pthread_mutex_unlock(&vm->lock);
	return r;
}

const struct kvm_arch_ops kvm_x86_ops = {
	.vm_type = x86_vm_type,
	.vm_setup = x86_vm_setup,
	.vcpu_setup = x86_vcpu_setup,
	.get_reg = x86_get_reg,
	.set_reg = x86_set_reg,
	.hypercall_decode = x86_hypercall_decode,
	.hypercall_complete = x86_hypercall_complete,
	.irq_encode = x86_irq_encode,
	.has_pio = true,
};
