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

/*
 * KVM_GET_SUPPORTED_CPUID describes the host, not a vCPU: its APIC ids are
 * 0.  KVM gives vCPU n the local APIC id n (kvm_lapic: the vcpu_id), and a
 * guest that reads another id from CPUID takes every CPU for the boot CPU
 * (Linux's SMP bring-up matches CPUID against the MADT), so each vCPU's
 * leaves say its own id, as QEMU's do: leaf 1 EBX[31:24] (initial APIC id)
 * and EDX of the topology leaves 0xB and 0x1F (x2APIC id).
 */
static void cpuid_for_vcpu(struct kvm_cpuid2 *c, uint32_t id)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 1) {
			e->ebx = (e->ebx & 0x00ffffffu) | (id & 0xffu) << 24;
			/*
			 * The "hypervisor present" bit, which KVM leaves to the
			 * VMM: a guest looks for KVM's leaves at 0x40000000 only
			 * when it is set (Documentation/virt/kvm/x86/cpuid.rst),
			 * and without them runs without kvmclock.
			 */
			e->ecx |= 1u << 31;
		}
		else if (e->function == 0xb || e->function == 0x1f)
			e->edx = id;
	}
}

/*
 * The driver's table (KVM_GET_SUPPORTED_CPUID), in a buffer of the caller's
 * to free; NULL with *@r the error and @err the detail.  KVM writes nent
 * back only on success: on E2BIG (too small) the count stays unknown and
 * the call is retried with room for twice as many (api.rst:
 * KVM_GET_SUPPORTED_CPUID).  KVM_MAX_CPUID_ENTRIES
 * (arch/x86/include/asm/kvm_host.h) is 256: the first call suffices.
 */
static struct kvm_cpuid2 *supported_cpuid(struct vcpu_hv *hv, int *r, char *err)
{
	struct kvm_cpuid2 *c = NULL;
	uint32_t n = 256;

	for (;;) {
		free(c);
		c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c) {
			*r = vcpu_fail(err, -ENOMEM, "cannot allocate %u CPUID entries", n);
			return NULL;
		}
		c->nent = n;
		*r = sys_ioctl(hv, hv->fd, KVM_GET_SUPPORTED_CPUID, (unsigned long)c);
		if (*r != -E2BIG || n >= 4096)
			break;
		n *= 2;
	}
	if (*r < 0) {
		free(c);
		*r = vcpu_fail(err, *r, "KVM_GET_SUPPORTED_CPUID failed");
		return NULL;
	}
	if (c->nent > n) {
		uint32_t nent = c->nent;
		free(c);
		*r = vcpu_fail(err, -EPROTO, "KVM_GET_SUPPORTED_CPUID reported %u entries in %u",
			       nent, n);
		return NULL;
	}
	return c;
}

/* Give the vCPU every CPUID leaf the host's KVM supports, as QEMU's -cpu host does. */
static int setup_cpuid(struct vcpu *cpu)
{
	struct vcpu_hv *hv = cpu->vm->hv;
	struct kvm_cpuid2 *c;
	int r;

	c = supported_cpuid(hv, &r, cpu->err);
	if (!c)
		return r;
	cpuid_for_vcpu(c, cpu->id);
	r = sys_ioctl(hv, cpu->fd, KVM_SET_CPUID2, (unsigned long)c);
	free(c);
	return r < 0 ? cpu_fail(cpu, r, "KVM_SET_CPUID2 on vCPU %u failed", cpu->id) : 0;
}

/* The public entry is our own type with kvm_cpuid_entry2's layout, copied as bytes. */
_Static_assert(sizeof(struct vcpu_x86_cpuid_entry) == sizeof(struct kvm_cpuid_entry2),
	       "vcpu_x86_cpuid_entry is kvm_cpuid_entry2 (doc/abi/kvm.md 4.5)");
_Static_assert(offsetof(struct vcpu_x86_cpuid_entry, flags) ==
			       offsetof(struct kvm_cpuid_entry2, flags) &&
		       offsetof(struct vcpu_x86_cpuid_entry, eax) ==
			       offsetof(struct kvm_cpuid_entry2, eax) &&
		       offsetof(struct vcpu_x86_cpuid_entry, edx) ==
			       offsetof(struct kvm_cpuid_entry2, edx) &&
		       offsetof(struct vcpu_x86_cpuid_entry, padding) ==
			       offsetof(struct kvm_cpuid_entry2, padding),
	       "vcpu_x86_cpuid_entry field offsets");
_Static_assert(VCPU_X86_CPUID_SIGNIFICANT_INDEX == KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
	       "the significant-index flag");

int kvm_x86_supported_cpuid(struct vcpu_hv *hv, struct vcpu_x86_cpuid_entry *entries, uint32_t *n)
{
	char err[VCPU_ERRLEN] = "";
	struct kvm_cpuid2 *c;
	uint32_t room = *n;
	int r;

	c = supported_cpuid(hv, &r, err);
	if (!c) {
		vcpu_err_set(&hv->err_busy, hv->err, err);
		return r;
	}
	*n = c->nent;
	if (c->nent > room) {
		free(c);
		return hv_fail(hv, -ENOSPC, "the driver has %u CPUID leaves, room for %u", *n, room);
	}
	for (uint32_t i = 0; i < c->nent; i++) {
		memcpy(&entries[i], &c->entries[i], sizeof(entries[i]));
		memset(entries[i].padding, 0, sizeof(entries[i].padding));
	}
	free(c);
	return 0;
}

/* The VMM's table as it is: no APIC id or hypervisor bit of libvcpu's (cpuid_for_vcpu()). */
int kvm_x86_set_cpuid(struct vcpu *cpu, const struct vcpu_x86_cpuid_entry *entries, uint32_t n)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (size_t)n * sizeof(c->entries[0]));
	int r;

	if (!c)
		return cpu_fail(cpu, -ENOMEM, "cannot allocate %u CPUID entries", n);
	c->nent = n;
	if (n)
		memcpy(c->entries, entries, (size_t)n * sizeof(c->entries[0]));
	r = sys_ioctl(cpu->vm->hv, cpu->fd, KVM_SET_CPUID2, (unsigned long)c);
	free(c);
	if (r == -EINVAL)
		return cpu_fail(cpu, r, "KVM_SET_CPUID2 of %u leaves on vCPU %u refused: a table "
				"KVM finds inconsistent, or, once the vCPU has run, one other than "
				"the table it has (Linux 5.16+)", n, cpu->id);
	return r < 0 ? cpu_fail(cpu, r, "KVM_SET_CPUID2 of %u leaves on vCPU %u failed", n,
				cpu->id)
		     : 0;
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

/* kvm_sregs -> portable segment (the callers checked @seg). */
static void seg_get(struct kvm_sregs *s, enum vcpu_x86_seg seg, struct vcpu_x86_segment *out)
{
	const struct kvm_segment *k;

	memset(out, 0, sizeof(*out));
	if (seg == VCPU_X86_GDT || seg == VCPU_X86_IDT) {
		const struct kvm_dtable *t = seg == VCPU_X86_GDT ? &s->gdt : &s->idt;
		out->base = t->base;
		out->limit = t->limit;
		return;
	}
	k = seg_slot(s, seg);
	*out = (struct vcpu_x86_segment){ .base = k->base, .limit = k->limit,
					  .selector = k->selector, .type = k->type,
					  .present = k->present, .dpl = k->dpl, .db = k->db,
					  .s = k->s, .l = k->l, .g = k->g, .avl = k->avl,
					  .unusable = k->unusable };
}

/* Portable segment -> kvm_sregs (the core refused descriptor-table limits over 16 bits). */
static void seg_put(struct kvm_sregs *s, enum vcpu_x86_seg seg, const struct vcpu_x86_segment *in)
{
	struct kvm_segment *k;

	if (seg == VCPU_X86_GDT || seg == VCPU_X86_IDT) {
		struct kvm_dtable *t = seg == VCPU_X86_GDT ? &s->gdt : &s->idt;
		t->base = in->base;
		t->limit = (uint16_t)in->limit;
		return;
	}
	k = seg_slot(s, seg);
	*k = (struct kvm_segment){ .base = in->base, .limit = in->limit,
				   .selector = in->selector, .type = in->type,
				   .present = in->present, .dpl = in->dpl, .db = in->db,
				   .s = in->s, .l = in->l, .g = in->g, .avl = in->avl,
				   .unusable = in->unusable };
}

int kvm_x86_get_segment(struct vcpu *cpu, enum vcpu_x86_seg seg, struct vcpu_x86_segment *out)
{
	struct kvm_sregs s;
	int r = get_sregs(cpu, &s);

	if (r < 0)
		return r;
	seg_get(&s, seg, out);
	return 0;
}

int kvm_x86_set_segment(struct vcpu *cpu, enum vcpu_x86_seg seg, const struct vcpu_x86_segment *in)
{
	struct kvm_sregs s;
	int r = get_sregs(cpu, &s);

	if (r < 0)
		return r;
	seg_put(&s, seg, in);
	return set_sregs(cpu, &s);
}

/*
 * Batches: kvm_regs and kvm_sregs are each read at most once and written at
 * most once, so a mode switch (CR0, CR4, EFER, CS) reaches KVM_SET_SREGS
 * whole: kvm_is_valid_sregs() in arch/x86/kvm/x86.c judges the combination,
 * and a driver may refuse the states in between.
 */
struct x86_batch {
	struct kvm_regs_x86 regs;
	struct kvm_sregs sregs;
	bool need_regs, need_sregs;
};

static int batch_read(struct vcpu *cpu, struct x86_batch *b, const struct vcpu_reg *regs,
		      uint32_t n)
{
	int r = 0;

	b->need_regs = b->need_sregs = false;
	for (uint32_t i = 0; i < n; i++) {
		if (regs[i].id <= VCPU_REG_X86_RFLAGS)
			b->need_regs = true;
		else
			b->need_sregs = true;
	}
	if (b->need_regs)
		r = get_regs(cpu, &b->regs);
	if (r == 0 && b->need_sregs)
		r = get_sregs(cpu, &b->sregs);
	return r;
}

static int x86_get_regs(struct vcpu *cpu, struct vcpu_reg *regs, uint32_t n)
{
	struct x86_batch b;
	int r = batch_read(cpu, &b, regs, n);

	for (uint32_t i = 0; i < n && r == 0; i++) {
		if (vcpu_reg_is_segment(regs[i].id))
			seg_get(&b.sregs, (enum vcpu_x86_seg)(regs[i].id - VCPU_REG_X86_SEG(0)),
				&regs[i].seg);
		else
			regs[i].value = *x86_slot(regs[i].id, &b.regs, &b.sregs);
	}
	return r;
}

static int x86_set_regs(struct vcpu *cpu, const struct vcpu_reg *regs, uint32_t n)
{
	struct x86_batch b;
	struct kvm_sregs old;
	int r = batch_read(cpu, &b, regs, n);

	if (r < 0)
		return r;
	old = b.sregs;
	for (uint32_t i = 0; i < n; i++) {
		if (vcpu_reg_is_segment(regs[i].id))
			seg_put(&b.sregs, (enum vcpu_x86_seg)(regs[i].id - VCPU_REG_X86_SEG(0)),
				&regs[i].seg);
		else
			*x86_slot(regs[i].id, &b.regs, &b.sregs) = regs[i].value;
	}
	if (b.need_sregs && (r = set_sregs(cpu, &b.sregs)) < 0)
		return r;
	if (!b.need_regs)
		return 0;
	r = sys_ioctl(cpu->vm->hv, cpu->fd, KVM_SET_REGS_X86, (unsigned long)&b.regs);
	if (r == 0)
		return 0;
	/* All or nothing where the ABI lets us: put the old kvm_sregs back. */
	if (b.need_sregs && sys_ioctl(cpu->vm->hv, cpu->fd, KVM_SET_SREGS, (unsigned long)&old) < 0)
		return cpu_fail(cpu, r, "KVM_SET_REGS on vCPU %u failed, after KVM_SET_SREGS "
				"took the batch's control and segment registers (restoring "
				"them failed too)", cpu->id);
	return cpu_fail(cpu, r, "KVM_SET_REGS on vCPU %u failed%s", cpu->id,
			b.need_sregs ? " (the control and segment registers were restored)" : "");
}

/*
 * A guest's VMCALL/VMMCALL exits only for the numbers enabled here; KVM
 * answers every other one itself (kvm_emulate_hypercall(): -KVM_ENOSYS in
 * RAX for a number it does not know).  KVM_CHECK_EXTENSION says which
 * numbers it can forward: today only KVM_HC_MAP_GPA_RANGE, the page-state
 * changes of confidential guests.
 */
static int x86_forward_hypercalls(struct vcpu_vm *vm, uint32_t base, uint32_t count)
{
	struct kvm_vm_priv *p = vm->priv;
	struct kvm_enable_cap cap = { .cap = KVM_CAP_EXIT_HYPERCALL };
	uint64_t can, want;
	int r = sys_ioctl(vm->hv, vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_EXIT_HYPERCALL);

	if (r <= 0)
		return vm_fail(vm, -EOPNOTSUPP, "this KVM forwards no x86 hypercall to userspace "
			       "(no KVM_CAP_EXIT_HYPERCALL: Linux 5.15+)%s",
			       r < 0 ? ": asking failed" : "");
	can = (uint64_t)(uint32_t)r;
	if ((uint64_t)base + count > 64)
		return vm_fail(vm, -EOPNOTSUPP, "x86 KVM forwards only hypercalls in its mask "
			       "0x%llx, not 0x%x+0x%x (it answers the others itself)",
			       (unsigned long long)can, base, count);
	want = (count == 64 ? ~0ull : ((1ull << count) - 1)) << base;
	if (want & ~can)
		return vm_fail(vm, -EOPNOTSUPP, "x86 KVM forwards only hypercalls in its mask "
			       "0x%llx (KVM_HC_MAP_GPA_RANGE = 12), not 0x%x+0x%x",
			       (unsigned long long)can, base, count);
	pthread_mutex_lock(&vm->lock);
	if (want & p->x86_hc_exit) {
		r = vm_fail(vm, -EEXIST, "hypercalls 0x%x+0x%x overlap ones already forwarded",
			    base, count);
		goto out;
	}
	cap.args[0] = p->x86_hc_exit | want;
	r = sys_ioctl(vm->hv, vm->fd, KVM_ENABLE_CAP, (unsigned long)&cap);
	if (r < 0) {
		r = vm_fail(vm, r, "KVM_ENABLE_CAP(KVM_CAP_EXIT_HYPERCALL, 0x%llx) failed",
			    (unsigned long long)cap.args[0]);
		goto out;
	}
	p->x86_hc_exit = cap.args[0];
out:
	pthread_mutex_unlock(&vm->lock);
	return r;
}

static int x86_hypercall_complete(struct vcpu *cpu, int result)
{
	struct kvm_run *run = cpu->run;

	(void)result;
	/* KVM copies hypercall.ret into RAX on the next entry. */
	run->u.hypercall.ret = cpu->exit.u.hypercall.ret[0];
	return 0;
}

int kvm_x86_hypercall_decode(struct vcpu *cpu, const struct kvm_run *run)
{
	struct vcpu_hypercall *hc = &cpu->exit.u.hypercall;

	hc->nr = run->u.hypercall.nr;
	memcpy(hc->args, run->u.hypercall.args, sizeof(run->u.hypercall.args));
	hc->args[6] = hc->args[7] = 0;
	/* KVM fills the arguments of the call it forwards: MAP_GPA_RANGE has three. */
	hc->nargs = hc->nr == KVM_HC_MAP_GPA_RANGE ? 3 : 6;
	hc->flags = run->u.hypercall.flags & KVM_HYPERCALL_LONGMODE ? VCPU_HYPERCALL_LONGMODE : 0;
	hc->ret[0] = run->u.hypercall.ret;
	hc->ret[1] = hc->ret[2] = hc->ret[3] = 0;
	hc->nret = 1; /* RAX only */
	hc->reserved = 0;
	cpu->hc_known = 0xff; /* all in args[]; bits past nargs are never asked for */
	cpu->exit.kind = VCPU_EXIT_HYPERCALL;
	cpu->complete = x86_hypercall_complete;
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
	.get_regs = x86_get_regs,
	.set_regs = x86_set_regs,
	.irq_encode = x86_irq_encode,
	.forward_hypercalls = x86_forward_hypercalls,
	.has_pio = true,
};
