/* SPDX-License-Identifier: MIT */
/*
 * The KVM backend's internals: the part shared by both architectures
 * (kvm.c) and what each architecture supplies (kvm_x86.c, kvm_arm64.c).
 * Both architectures are always built so the mock can exercise each on any host.
 */
#ifndef VCPU_KVM_H
#define VCPU_KVM_H

#include "../core/internal.h"
#include "kvm_abi.h"

/* Per-vCPU state of the KVM backend, allocated at creation (never on exits). */
struct kvm_vcpu_priv {
	/* arm64: every hypercall's x0 write-back, prepared once (kvm_arm64.c) */
	struct kvm_one_reg one_x0;
	bool x86;            /* port I/O and x86 hypercall exits (kvm_arch_ops.has_pio) */
	/*
	 * Bytes of the run mapping past the kvm_run header, where port I/O
	 * data may lie; 0 where there are no ports (every port exit is then
	 * out of range).
	 */
	uint64_t pio_room;
	/* rel (data_offset - sizeof(struct kvm_run)) below this: 4 bytes fit (decode_pio()) */
	uint64_t pio_fast_end;
	bool sigmask_set;
	uint64_t sigmask;    /* the KVM_SET_SIGNAL_MASK set last, if sigmask_set */
	uint8_t *pio_data;   /* a single port access's data in the run mapping */
	/*
	 * arm64 VCPU_CREATE_ARM64_PMU: KVM_ARM_PMU_WANTED until the vGIC is
	 * made, then _IRQ_SET and _READY as kvm_arm64_gic_v3() sets its
	 * interrupt and initialises it (under vm->lock).  0: no PMU.
	 */
	uint8_t arm64_pmu;
	uint32_t arm64_features; /* the kvm_vcpu_init bits vcpu_check found the driver has */
};

enum { KVM_ARM_PMU_WANTED = 1, KVM_ARM_PMU_IRQ_SET = 2, KVM_ARM_PMU_READY = 3 };

/* Per-VM state of the KVM backend (vm->priv); guarded by vm->lock. */
struct kvm_vm_priv {
	bool vcpu_created; /* KVM_CREATE_VCPU succeeded once: KVM keeps that vCPU until the VM dies */
	bool x86_irqchip;  /* KVM_CREATE_IRQCHIP done */
	bool x86_pit;      /* KVM_CREATE_PIT2 done */
	int gic_fd;        /* arm64: the vGICv3 device, -1 until it exists */
	uint64_t x86_hc_exit; /* KVM_CAP_EXIT_HYPERCALL mask enabled so far */
	bool manual_protect;  /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 on: clear the log explicitly */
};

struct kvm_arch_ops {
	int (*vm_type)(struct vcpu_vm *vm, const struct vcpu_vm_config *cfg, unsigned long *type);
	int (*vm_setup)(struct vcpu_vm *vm);
	/* Optional: refuse @flags before the driver's vCPU exists (KVM keeps it for good). */
	int (*vcpu_check)(struct vcpu *cpu, uint32_t flags);
	int (*vcpu_setup)(struct vcpu *cpu, uint32_t flags);
	int (*get_reg)(struct vcpu *cpu, uint64_t reg, uint64_t *value);
	int (*set_reg)(struct vcpu *cpu, uint64_t reg, uint64_t value);
	/* Batches (vcpu_get_regs()); NULL: one register at a time (ONE_REG). */
	int (*get_regs)(struct vcpu *cpu, struct vcpu_reg *regs, uint32_t n);
	int (*set_regs)(struct vcpu *cpu, const struct vcpu_reg *regs, uint32_t n);
	uint32_t (*irq_encode)(uint32_t irq, int *ok);
	/* vcpu_vm_forward_hypercalls(): arm64 the SMCCC filter, x86 KVM_CAP_EXIT_HYPERCALL. */
	int (*forward_hypercalls)(struct vcpu_vm *vm, uint32_t base, uint32_t count);
	bool has_pio;
};

extern const struct kvm_arch_ops kvm_x86_ops;
extern const struct kvm_arch_ops kvm_arm64_ops;

static inline const struct kvm_arch_ops *kvm_arch(const struct vcpu_hv *hv)
{
	return hv->arch == VCPU_ARCH_ARM64 ? &kvm_arm64_ops : &kvm_x86_ops;
}

/* One register through KVM_{GET,SET}_ONE_REG; @value holds the id's size (bits 52-55). */
int kvm_one_reg(struct vcpu *cpu, bool set, uint64_t id, void *value);
/*
 * A hypercall exit: fill every field of cpu->exit.u.hypercall and choose
 * the write-back (cpu->complete).  Called directly, not through the table:
 * they are on the exit path.
 */
int kvm_x86_hypercall_decode(struct vcpu *cpu, const struct kvm_run *run);
int kvm_arm64_hypercall_decode(struct vcpu *cpu, const struct kvm_run *run);
int kvm_arm64_hypercall_arg(struct vcpu *cpu, uint32_t i, uint64_t *value);
void kvm_arm64_vcpu_prepare(struct vcpu *cpu);
int kvm_x86_get_segment(struct vcpu *cpu, enum vcpu_x86_seg seg, struct vcpu_x86_segment *s);
int kvm_x86_set_segment(struct vcpu *cpu, enum vcpu_x86_seg seg, const struct vcpu_x86_segment *s);
int kvm_x86_create_irqchip(struct vcpu_vm *vm, uint32_t flags);
int kvm_x86_supported_cpuid(struct vcpu_hv *hv, struct vcpu_x86_cpuid_entry *entries, uint32_t *n);
int kvm_x86_set_cpuid(struct vcpu *cpu, const struct vcpu_x86_cpuid_entry *entries, uint32_t n);
int kvm_get_state(struct vcpu *cpu, uint32_t cls, void *buf, size_t *len);
int kvm_set_state(struct vcpu *cpu, uint32_t cls, const void *buf, size_t len);
int kvm_vm_get_state(struct vcpu_vm *vm, uint32_t cls, void *buf, size_t *len);
int kvm_vm_set_state(struct vcpu_vm *vm, uint32_t cls, const void *buf, size_t len);
int kvm_arm64_gic_v3(struct vcpu_vm *vm, uint64_t dist, uint64_t redist, uint32_t nr_irqs);

#endif
