// SPDX-License-Identifier: MIT
/*
 * KVM on arm64: IPA size, vCPU init (preferred target, PSCI 0.2, the CPU
 * features asked for: SVE, pointer authentication, PMUv3), ONE_REG
 * registers, the in-kernel GICv3 (and the PMUs' interrupts), and SMCCC
 * calls forwarded to userspace by the SMCCC filter (Linux 6.4+).
 */
#define _GNU_SOURCE
#include "kvm.h"

#include <errno.h>
#include <string.h>

/* SMCCC passes arguments in x1..x7 for the calls VMMs forward. */
#define SMCCC_NARGS 7

static int arm64_vm_type(struct vcpu_vm *vm, const struct vcpu_vm_config *cfg,
			 unsigned long *type)
{
	uint64_t max = 0;
	int r;

	*type = 0;
	if (cfg->ipa_bits) {
		r = sys_ioctl(vm->hv, vm->hv->fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE);
		if (r < 0)
			return vm_fail(vm, r, "KVM_CHECK_EXTENSION(ARM_VM_IPA_SIZE) failed");
		max = (uint64_t)r;
		if (cfg->ipa_bits < 32 || cfg->ipa_bits > (max ? max : 40))
			return vm_fail(vm, -EINVAL, "ipa_bits %u is outside 32..%llu", cfg->ipa_bits,
				       (unsigned long long)(max ? max : 40));
		*type = cfg->ipa_bits; /* KVM_VM_TYPE_ARM_IPA_SIZE(bits) */
	}
	return 0;
}

static int arm64_vm_setup(struct vcpu_vm *vm)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_ARM_SYSTEM_SUSPEND };
	int r;

	if (!(vm->flags & VCPU_VM_SYSTEM_SUSPEND))
		return 0;
	r = sys_ioctl(vm->hv, vm->fd, KVM_ENABLE_CAP, (unsigned long)&cap);
	return r < 0 ? vm_fail(vm, r, "KVM_ENABLE_CAP(ARM_SYSTEM_SUSPEND) failed") : 0;
}

/*
 * The vcpu_create() feature flags: the capabilities that say the driver has
 * the feature (all of them) and the kvm_vcpu_init bits that ask for it
 * (doc/abi/kvm.md §9; api.rst KVM_ARM_VCPU_INIT).  Pointer authentication
 * is both kinds: kvm_vcpu_enable_ptrauth() (arch/arm64/kvm/reset.c) refuses
 * one without the other with EINVAL.
 */
static const struct {
	uint32_t flag;
	unsigned long cap[2]; /* cap[1]: 0, or a second one needed too */
	const char *cap_name[2];
	uint32_t bits;
	const char *what;
} arm64_features[] = {
	{ VCPU_CREATE_ARM64_SVE, { KVM_CAP_ARM_SVE, 0 }, { "KVM_CAP_ARM_SVE", NULL },
	  1u << KVM_ARM_VCPU_SVE, "SVE" },
	{ VCPU_CREATE_ARM64_PTRAUTH, { KVM_CAP_ARM_PTRAUTH_ADDRESS, KVM_CAP_ARM_PTRAUTH_GENERIC },
	  { "KVM_CAP_ARM_PTRAUTH_ADDRESS", "KVM_CAP_ARM_PTRAUTH_GENERIC" },
	  1u << KVM_ARM_VCPU_PTRAUTH_ADDRESS | 1u << KVM_ARM_VCPU_PTRAUTH_GENERIC,
	  "pointer authentication" },
	{ VCPU_CREATE_ARM64_PMU, { KVM_CAP_ARM_PMU_V3, 0 }, { "KVM_CAP_ARM_PMU_V3", NULL },
	  1u << KVM_ARM_VCPU_PMU_V3, "a PMUv3" },
};

/*
 * The kvm_vcpu_init bits of @flags' features, each asked of the driver
 * before the vCPU is made, so a refusal leaves its id free.
 */
static int arm64_vcpu_check(struct vcpu *cpu, uint32_t flags)
{
	struct vcpu_hv *hv = cpu->vm->hv;
	uint32_t *bits = &((struct kvm_vcpu_priv *)cpu->priv)->arm64_features;

	*bits = 0;
	for (unsigned i = 0; i < sizeof(arm64_features) / sizeof(arm64_features[0]); i++) {
		if (!(flags & arm64_features[i].flag))
			continue;
		for (unsigned c = 0; c < 2 && arm64_features[i].cap[c]; c++) {
			int r = sys_ioctl(hv, hv->fd, KVM_CHECK_EXTENSION, arm64_features[i].cap[c]);

			if (r < 0)
				return cpu_fail(cpu, r, "KVM_CHECK_EXTENSION(%s) failed",
						arm64_features[i].cap_name[c]);
			if (r == 0)
				return cpu_fail(cpu, -EOPNOTSUPP,
						"vCPU %u: the driver cannot give a vCPU %s (%s is 0)",
						cpu->id, arm64_features[i].what,
						arm64_features[i].cap_name[c]);
		}
		*bits |= arm64_features[i].bits;
	}
	return 0;
}

static int arm64_vcpu_setup(struct vcpu *cpu, uint32_t flags)
{
	struct vcpu_hv *hv = cpu->vm->hv;
	const uint32_t features = ((struct kvm_vcpu_priv *)cpu->priv)->arm64_features;
	struct kvm_vcpu_init init;
	int r;

	memset(&init, 0, sizeof(init));
	r = sys_ioctl(hv, cpu->vm->fd, KVM_ARM_PREFERRED_TARGET, (unsigned long)&init);
	if (r < 0)
		return cpu_fail(cpu, r, "KVM_ARM_PREFERRED_TARGET failed");
	memset(init.features, 0, sizeof(init.features));
	/*
	 * KVM wants the same features on every vCPU of a VM (a later
	 * KVM_ARM_VCPU_INIT with others is EINVAL), so a failed question must
	 * fail this vCPU rather than create it without PSCI.
	 */
	r = sys_ioctl(hv, hv->fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_PSCI_0_2);
	if (r < 0)
		return cpu_fail(cpu, r, "KVM_CHECK_EXTENSION(KVM_CAP_ARM_PSCI_0_2) failed");
	if (r > 0)
		init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	if (flags & VCPU_CREATE_POWER_OFF)
		init.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF;
	init.features[0] |= features;
	r = sys_ioctl(hv, cpu->fd, KVM_ARM_VCPU_INIT, (unsigned long)&init);
	if (r < 0)
		return cpu_fail(cpu, r, "KVM_ARM_VCPU_INIT(target %u, features 0x%x) on vCPU %u failed%s",
				init.target, init.features[0], cpu->id,
				r == -EINVAL && features
					? " (KVM wants the same features on every vCPU of a VM)"
					: "");
	/*
	 * An SVE vCPU is unusable (KVM_RUN and KVM_GET_REG_LIST fail with
	 * EPERM) until it is finalized; between the two calls a VMM could set
	 * KVM_REG_ARM64_SVE_VLS, libvcpu keeps the default vector lengths
	 * (api.rst: KVM_ARM_VCPU_FINALIZE).
	 */
	if (features & (1u << KVM_ARM_VCPU_SVE)) {
		int what = KVM_ARM_VCPU_SVE;

		r = sys_ioctl(hv, cpu->fd, KVM_ARM_VCPU_FINALIZE, (unsigned long)&what);
		if (r < 0)
			return cpu_fail(cpu, r, "KVM_ARM_VCPU_FINALIZE(SVE) on vCPU %u failed",
					cpu->id);
	}
	/* Its interrupt and initialisation need the vGIC: kvm_arm64_gic_v3(). */
	if (features & (1u << KVM_ARM_VCPU_PMU_V3))
		__atomic_store_n(&((struct kvm_vcpu_priv *)cpu->priv)->arm64_pmu, KVM_ARM_PMU_WANTED,
				 __ATOMIC_RELAXED);
	return 0;
}

/* Portable id -> KVM ONE_REG id; 0 when the id is not an arm64 register. */
static uint64_t arm64_reg_id(uint64_t reg)
{
	if (reg >= VCPU_REG_ARM64_X(0) && reg <= VCPU_REG_ARM64_X(30))
		return KVM_REG_ARM64_CORE_X(reg - VCPU_REG_ARM64_X(0));
	switch (reg) {
	case VCPU_REG_ARM64_SP: return KVM_REG_ARM64_CORE_SP;
	case VCPU_REG_ARM64_PC: return KVM_REG_ARM64_CORE_PC;
	case VCPU_REG_ARM64_PSTATE: return KVM_REG_ARM64_CORE_PSTATE;
	case VCPU_REG_ARM64_SP_EL1: return KVM_REG_ARM64_CORE_SP_EL1;
	case VCPU_REG_ARM64_ELR_EL1: return KVM_REG_ARM64_CORE_ELR_EL1;
	default: break;
	}
	if ((reg & ~(uint64_t)0xffff) == VCPU_REG_ARM64_SYSREG(0, 0, 0, 0, 0))
		return KVM_REG_ARM64_SYSREG_BASE | (reg & 0xffff);
	return 0;
}

/*
 * During a hypercall exit, x1..x7 as the guest left them are args[0..6]
 * once read (bit i of cpu->hc_known), so a handler's register reads cost
 * one ONE_REG each per exit at most.  Bit 8 + i: the handler wrote x(i+1)
 * (its argument value is no longer in the register).  VCPU_HC_WRITTEN: the
 * results are in x0..; nothing is served from args[] then.
 */
#define HC_CHANGED(i) (1u << (8 + (i)))

static bool hc_cache_on(const struct vcpu *cpu)
{
	return cpu->exit.kind == VCPU_EXIT_HYPERCALL && !(cpu->hc_known & VCPU_HC_WRITTEN);
}

static __attribute__((noinline, cold)) int x_failed(struct vcpu *cpu, bool set, unsigned x, int r)
{
	return cpu_fail(cpu, r, "KVM_%s_ONE_REG(x%u) on vCPU %u failed", set ? "SET" : "GET", x,
			cpu->id);
}

/* ONE_REG on x@x: arm64 KVM has no KVM_GET_REGS. */
static inline int x_reg(struct vcpu *cpu, bool set, unsigned x, uint64_t *v)
{
	struct kvm_one_reg one = { .id = KVM_REG_ARM64_CORE_X(x), .addr = (uint64_t)(uintptr_t)v };
	int r = vcpu_ioctl(cpu, set ? KVM_SET_ONE_REG : KVM_GET_ONE_REG, (unsigned long)&one);

	return __builtin_expect(r < 0, 0) ? x_failed(cpu, set, x, r) : 0;
}

static int arm64_reg(struct vcpu *cpu, uint64_t reg, uint64_t *value, bool set)
{
	struct vcpu_hypercall *hc = &cpu->exit.u.hypercall;
	uint64_t id = arm64_reg_id(reg);

	if (!id)
		return cpu_fail(cpu, -EINVAL, "register 0x%llx is not an arm64 register",
				(unsigned long long)reg);
	if (reg >= VCPU_REG_ARM64_X(1) && reg <= VCPU_REG_ARM64_X(SMCCC_NARGS) &&
	    hc_cache_on(cpu)) {
		const unsigned i = (unsigned)(reg - VCPU_REG_ARM64_X(1));
		int r;

		if (set) {
			/* A failed set may have been applied or not: changed either way. */
			cpu->hc_known |= HC_CHANGED(i);
			return x_reg(cpu, true, i + 1, value);
		}
		if (cpu->hc_known & (1u << i) && !(cpu->hc_known & HC_CHANGED(i))) {
			*value = hc->args[i];
			return 0;
		}
		r = x_reg(cpu, false, i + 1, value);
		if (r == 0 && !(cpu->hc_known & HC_CHANGED(i))) {
			hc->args[i] = *value;
			cpu->hc_known |= 1u << i;
		}
		return r;
	}
	return kvm_one_reg(cpu, set, id, value);
}

static int arm64_get_reg(struct vcpu *cpu, uint64_t reg, uint64_t *value)
{
	return arm64_reg(cpu, reg, value, false);
}

static int arm64_set_reg(struct vcpu *cpu, uint64_t reg, uint64_t value)
{
	return arm64_reg(cpu, reg, &value, true);
}

/*
 * x1..x(nret-1): one whose result equals the guest's value, read before,
 * costs nothing (1.0: "only registers the handler changed").
 */
static __attribute__((noinline)) int write_x1_x3(struct vcpu *cpu)
{
	struct vcpu_hypercall *hc = &cpu->exit.u.hypercall;
	const uint32_t known = cpu->hc_known;
	int r = 0;

	/* The core saw to nret <= 4. */
	for (unsigned i = 1; r == 0 && i < hc->nret; i++)
		if (!(known & (1u << (i - 1))) || hc->args[i - 1] != hc->ret[i])
			r = x_reg(cpu, true, i, &hc->ret[i]);
	return r;
}

/*
 * ret[0..nret-1] to x0..: x0 always (hypercall.nr holds only its low 32
 * bits), through the one_reg prepared at vCPU creation, so the usual
 * single result costs one call and no stack.
 */
static int arm64_hypercall_complete(struct vcpu *cpu, int result)
{
	struct kvm_vcpu_priv *p = cpu->priv;
	int r;

	(void)result;
	cpu->hc_known |= VCPU_HC_WRITTEN;
	r = vcpu_ioctl(cpu, KVM_SET_ONE_REG, (unsigned long)&p->one_x0);
	if (__builtin_expect(r < 0, 0))
		return x_failed(cpu, true, 0, r);
	return cpu->exit.u.hypercall.nret > 1 ? write_x1_x3(cpu) : 0;
}

/* The eager decode (no VCPU_VM_LAZY_HYPERCALL_ARGS): x1..x7 read before the handler. */
static __attribute__((noinline)) int decode_eager(struct vcpu *cpu)
{
	struct vcpu_hypercall *hc = &cpu->exit.u.hypercall;

	for (unsigned i = 0; i < SMCCC_NARGS; i++) {
		int r = x_reg(cpu, false, i + 1, &hc->args[i]);

		if (r < 0)
			return r;
	}
	vcpu_smccc_results_init(cpu, hc, true);
	cpu->exit.kind = VCPU_EXIT_HYPERCALL;
	cpu->complete = arm64_hypercall_complete;
	return 0;
}

/*
 * arm64 KVM fills only hypercall.nr (the function id) and flags; the
 * arguments are still in the guest's registers: all read now, or, for a
 * VCPU_VM_LAZY_HYPERCALL_ARGS VM, none until the handler asks.
 */
int kvm_arm64_hypercall_decode(struct vcpu *cpu, const struct kvm_run *run)
{
	struct vcpu_hypercall *hc = &cpu->exit.u.hypercall;

	hc->nr = run->u.hypercall.nr;
	hc->flags = run->u.hypercall.flags & KVM_HYPERCALL_EXIT_SMC ? VCPU_HYPERCALL_SMC : 0;
	hc->nargs = SMCCC_NARGS;
	hc->args[SMCCC_NARGS] = 0;
	if (!cpu->lazy_hc)
		return decode_eager(cpu);
	memset(hc->args, 0, SMCCC_NARGS * sizeof(hc->args[0]));
	vcpu_smccc_results_init(cpu, hc, false);
	cpu->exit.kind = VCPU_EXIT_HYPERCALL;
	cpu->complete = arm64_hypercall_complete;
	return 0;
}

/* vcpu_hypercall_arg(): the core saw to i < nargs, not known, results not written. */
int kvm_arm64_hypercall_arg(struct vcpu *cpu, uint32_t i, uint64_t *value)
{
	if (cpu->hc_known & HC_CHANGED(i))
		return cpu_fail(cpu, -ESTALE, "vCPU %u: the handler wrote x%u before reading "
				"hypercall argument %u", cpu->id, i + 1, i);
	return x_reg(cpu, false, i + 1, value);
}

/* The x0 write-back of every hypercall exit, prepared once (arm64_hypercall_complete()). */
void kvm_arm64_vcpu_prepare(struct vcpu *cpu)
{
	struct kvm_vcpu_priv *p = cpu->priv;

	p->one_x0 = (struct kvm_one_reg){
		.id = KVM_REG_ARM64_CORE_X(0),
		.addr = (uint64_t)(uintptr_t)&cpu->exit.u.hypercall.ret[0] };
}


static uint32_t arm64_irq_encode(uint32_t irq, int *ok)
{
	/* Shared peripheral interrupts: INTID 32..1019, addressed to no vCPU. */
	*ok = irq >= 32 && irq <= 1019;
	return (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | irq;
}

static int set_dev_attr(struct vcpu_vm *vm, int fd, uint32_t group, uint64_t attr, void *addr,
			const char *what)
{
	struct kvm_device_attr a = { .group = group, .attr = attr,
				     .addr = (uint64_t)(uintptr_t)addr };
	int r = sys_ioctl(vm->hv, fd, KVM_SET_DEVICE_ATTR, (unsigned long)&a);

	return r < 0 ? vm_fail(vm, r, "GICv3: setting %s failed", what) : 0;
}

/*
 * The PMU's overflow interrupt: PPI 23 (GIC_PPI 7), the INTID Linux's
 * device trees give "arm,armv8-pmuv3" and QEMU's virt board and kvmtool
 * use.  A PPI is per vCPU, so every PMU has the same number, as
 * pmu_irq_is_valid() (arch/arm64/kvm/pmu-emul.c) requires of PPIs.
 */
#define ARM64_PMU_PPI 23

static int pmu_attr(struct vcpu_vm *vm, struct vcpu *cpu, uint64_t attr, void *addr,
		    const char *what)
{
	struct kvm_device_attr a = { .group = KVM_ARM_VCPU_PMU_V3_CTRL, .attr = attr,
				     .addr = (uint64_t)(uintptr_t)addr };
	int r = sys_ioctl(vm->hv, cpu->fd, KVM_SET_DEVICE_ATTR, (unsigned long)&a);

	return r < 0 ? vm_fail(vm, r, "the PMU of vCPU %u: KVM_SET_DEVICE_ATTR(%s) failed (the "
			       "GICv3 exists; calling again sets up the PMUs left)", cpu->id, what)
		     : 0;
}

/*
 * Each VCPU_CREATE_ARM64_PMU vCPU's interrupt, then its PMU, once the vGIC
 * is initialised (Documentation/virt/kvm/devices/vcpu.rst, PMU_V3_IRQ and
 * PMU_V3_INIT: INIT is ENODEV before the vGIC's CTRL_INIT, and KVM_RUN is
 * EINVAL for a PMU vCPU without it).  vm->lock held; a PMU left half done
 * by a failure is finished by the next call.
 */
static int pmus_init(struct vcpu_vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *cpu = vm->cpus[i];
		struct kvm_vcpu_priv *p = cpu->priv;
		int irq = ARM64_PMU_PPI;
		int r;

		if (__atomic_load_n(&p->arm64_pmu, __ATOMIC_RELAXED) == KVM_ARM_PMU_WANTED) {
			r = pmu_attr(vm, cpu, KVM_ARM_VCPU_PMU_V3_IRQ, &irq, "PMU_V3_IRQ, PPI 23");
			if (r < 0)
				return r;
			__atomic_store_n(&p->arm64_pmu, KVM_ARM_PMU_IRQ_SET, __ATOMIC_RELAXED);
		}
		if (__atomic_load_n(&p->arm64_pmu, __ATOMIC_RELAXED) == KVM_ARM_PMU_IRQ_SET) {
			r = pmu_attr(vm, cpu, KVM_ARM_VCPU_PMU_V3_INIT, NULL, "PMU_V3_INIT");
			if (r < 0)
				return r;
			__atomic_store_n(&p->arm64_pmu, KVM_ARM_PMU_READY, __ATOMIC_RELAXED);
		}
	}
	return 0;
}

static bool pmus_pending(const struct vcpu_vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		const struct kvm_vcpu_priv *p = vm->cpus[i]->priv;
		uint8_t s = __atomic_load_n(&p->arm64_pmu, __ATOMIC_RELAXED);

		if (s && s != KVM_ARM_PMU_READY)
			return true;
	}
	return false;
}

int kvm_arm64_gic_v3(struct vcpu_vm *vm, uint64_t dist, uint64_t redist, uint32_t nr_irqs)
{
	struct kvm_vm_priv *p = vm->priv;
	struct kvm_create_device dev = { .type = KVM_DEV_TYPE_ARM_VGIC_V3 };
	int r;

	pthread_mutex_lock(&vm->lock);
	/* The vGIC cannot be taken back: a second call finishes the PMUs a failure left. */
	if (p->gic_fd >= 0 && pmus_pending(vm)) {
		r = pmus_init(vm);
		goto out;
	}
	if (p->gic_fd >= 0) {
		r = vm_fail(vm, -EEXIST, "the VM already has an in-kernel irqchip");
		goto out;
	}
	if (!vm->nr_vcpus) {
		r = vm_fail(vm, -EINVAL, "create the vCPUs before the GICv3 (redistributors are per vCPU)");
		goto out;
	}
	r = sys_ioctl(vm->hv, vm->fd, KVM_CREATE_DEVICE, (unsigned long)&dev);
	if (r < 0) {
		r = vm_fail(vm, r, "KVM_CREATE_DEVICE(VGIC_V3) failed");
		goto out;
	}
	r = set_dev_attr(vm, (int)dev.fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST,
			 &dist, "the distributor base");
	if (!r)
		r = set_dev_attr(vm, (int)dev.fd, KVM_DEV_ARM_VGIC_GRP_ADDR,
				 KVM_VGIC_V3_ADDR_TYPE_REDIST, &redist, "the redistributor base");
	if (!r)
		r = set_dev_attr(vm, (int)dev.fd, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr_irqs,
				 "the number of IRQs");
	if (!r)
		r = set_dev_attr(vm, (int)dev.fd, KVM_DEV_ARM_VGIC_GRP_CTRL,
				 KVM_DEV_ARM_VGIC_CTRL_INIT, NULL, "CTRL_INIT");
	if (r < 0) {
		sys_close(vm->hv, (int)dev.fd);
		goto out;
	}
	p->gic_fd = (int)dev.fd;
	r = pmus_init(vm);
out:
	pthread_mutex_unlock(&vm->lock);
	return r;
}

static int arm64_forward_hypercalls(struct vcpu_vm *vm, uint32_t base, uint32_t count)
{
	struct kvm_smccc_filter f = { .base = base, .nr_functions = count,
				      .action = KVM_SMCCC_FILTER_FWD_TO_USER };
	struct kvm_device_attr a = { .group = KVM_ARM_VM_SMCCC_CTRL,
				     .attr = KVM_ARM_VM_SMCCC_FILTER,
				     .addr = (uint64_t)(uintptr_t)&f };
	int r;

	/* ENXIO/ENOTTY/EINVAL: no such attribute; anything else is the call failing. */
	r = sys_ioctl(vm->hv, vm->fd, KVM_HAS_DEVICE_ATTR, (unsigned long)&a);
	if (r == -ENXIO || r == -ENOTTY || r == -EINVAL)
		return vm_fail(vm, -EOPNOTSUPP,
			       "the driver has no SMCCC filter (Linux 6.4+ needed): %d", r);
	if (r < 0)
		return vm_fail(vm, r, "KVM_HAS_DEVICE_ATTR(SMCCC filter) failed");
	r = sys_ioctl(vm->hv, vm->fd, KVM_SET_DEVICE_ATTR, (unsigned long)&a);
	if (r == -EBUSY)
		return vm_fail(vm, r, "SMCCC filter 0x%x+0x%x refused: a vCPU has already run",
			       base, count);
	if (r == -EEXIST)
		return vm_fail(vm, r, "SMCCC filter 0x%x+0x%x overlaps a set or reserved range",
			       base, count);
	return r < 0 ? vm_fail(vm, r, "KVM_SET_DEVICE_ATTR(SMCCC filter 0x%x+0x%x) failed", base,
			       count)
		     : 0;
}

const struct kvm_arch_ops kvm_arm64_ops = {
	.vm_type = arm64_vm_type,
	.vm_setup = arm64_vm_setup,
	.vcpu_check = arm64_vcpu_check,
	.vcpu_setup = arm64_vcpu_setup,
	.get_reg = arm64_get_reg,
	.set_reg = arm64_set_reg,
	.irq_encode = arm64_irq_encode,
	.forward_hypercalls = arm64_forward_hypercalls,
	.has_pio = false,
};
