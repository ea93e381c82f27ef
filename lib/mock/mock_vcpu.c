// SPDX-License-Identifier: MIT
/*
 * The modelled KVM driver's vCPU objects: creation, the register files
 * (arm64 ONE_REG core/sysreg/firmware registers, x86 kvm_regs/kvm_sregs),
 * KVM_ARM_VCPU_INIT, CPUID, MP state and the signal mask, and the vCPU
 * ioctl entry point.  KVM_RUN itself lives in mock_guest.c.
 *
 * Section references (§) are to doc/abi/kvm.md.
 */
#define _GNU_SOURCE
#include "mock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* §4.6 pstate after reset: EL1h with D, A, I and F masked. */
#define ARM64_RESET_PSTATE 0x3c5ull
#define MPIDR_RES1 (1ull << 31)

#define SYSREG(op0, op1, crn, crm, op2)                                                  \
	(KVM_REG_ARM64_SYSREG_BASE | ((uint64_t)(op0) << 14) | ((uint64_t)(op1) << 11) |   \
	 ((uint64_t)(crn) << 7) | ((uint64_t)(crm) << 3) | (uint64_t)(op2))

/*
 * The system registers the modelled vCPU has, with their reset values.
 * Linux exposes a few hundred; a VMM booting Linux touches these.  An id
 * outside the table is ENOENT, as for a register the host lacks.
 */
static const struct {
	uint64_t id, reset;
	bool read_only; /* writes must repeat the current value (ID registers) */
} sysreg_table[] = {
	{ SYSREG(3, 0, 0, 0, 0), 0x410fd4f0, true },   /* MIDR_EL1: a generic Arm core */
	{ KVM_REG_ARM64_MPIDR_EL1, 0, false },         /* reset from the vCPU id */
	{ SYSREG(3, 0, 1, 0, 0), 0x30d00800, false },  /* SCTLR_EL1 (RES1 bits) */
	{ SYSREG(3, 0, 1, 0, 2), 0, false },           /* CPACR_EL1 */
	{ SYSREG(3, 0, 2, 0, 0), 0, false },           /* TTBR0_EL1 */
	{ SYSREG(3, 0, 2, 0, 1), 0, false },           /* TTBR1_EL1 */
	{ SYSREG(3, 0, 2, 0, 2), 0, false },           /* TCR_EL1 */
	{ SYSREG(3, 0, 5, 2, 0), 0, false },           /* ESR_EL1 */
	{ SYSREG(3, 0, 6, 0, 0), 0, false },           /* FAR_EL1 */
	{ SYSREG(3, 0, 10, 2, 0), 0, false },          /* MAIR_EL1 */
	{ SYSREG(3, 0, 12, 0, 0), 0, false },          /* VBAR_EL1 */
	{ SYSREG(3, 0, 13, 0, 1), 0, false },          /* CONTEXTIDR_EL1 */
	{ SYSREG(3, 0, 13, 0, 4), 0, false },          /* TPIDR_EL1 */
	{ SYSREG(3, 0, 14, 1, 0), 0, false },          /* CNTKCTL_EL1 */
	{ SYSREG(3, 3, 13, 0, 2), 0, false },          /* TPIDR_EL0 */
};

#define NSYSREGS (sizeof(sysreg_table) / sizeof(sysreg_table[0]))

/* PSCI 1.1, what KVM_REG_ARM_PSCI_VERSION reads after a PSCI_0_2 init. */
#define MOCK_PSCI_VERSION 0x10001ull

/* Linux reset_mpidr(): Aff0 = id[3:0], Aff1 = id[11:4], Aff2 = id[19:12]. */
static uint64_t reset_mpidr(uint32_t id)
{
	return MPIDR_RES1 | (id & 0xfu) | (uint64_t)((id >> 4) & 0xffu) << 8 |
	       (uint64_t)((id >> 12) & 0xffu) << 16;
}

static uint64_t *sysreg_slot(struct mock_vcpu *v, uint64_t id)
{
	for (size_t i = 0; i < v->nsysregs; i++)
		if (v->sysregs[i].id == id)
			return &v->sysregs[i].value;
	return NULL;
}

static const uint64_t *sysreg_cslot(const struct mock_vcpu *v, uint64_t id)
{
	return sysreg_slot((struct mock_vcpu *)v, id);
}

uint64_t mock_mpidr(const struct mock_vcpu *v)
{
	const uint64_t *p = sysreg_cslot(v, KVM_REG_ARM64_MPIDR_EL1);

	return p ? *p : reset_mpidr(v->id);
}

/* kvm_reset_vcpu(): what KVM_ARM_VCPU_INIT leaves behind. */
void mock_arm64_reset(struct mock_vcpu *v)
{
	memset(v->core, 0, sizeof(v->core));
	v->core[CORE_PSTATE] = ARM64_RESET_PSTATE;
	for (size_t i = 0; i < v->nsysregs; i++)
		v->sysregs[i].value = sysreg_table[i].reset;
	*sysreg_slot(v, KVM_REG_ARM64_MPIDR_EL1) = reset_mpidr(v->id);
}

/* The x86 power-on state (SDM "Processor State After Reset"), as KVM sets it. */
static void x86_reset(struct mock_vcpu *v)
{
	const struct kvm_segment data = { .limit = 0xffff, .type = 3, .present = 1, .s = 1 };

	memset(&v->regs, 0, sizeof(v->regs));
	memset(&v->sregs, 0, sizeof(v->sregs));
	v->regs.rip = 0xfff0;
	v->regs.rflags = 0x2;
	v->regs.rdx = 0x600; /* the family/model/stepping signature */
	v->sregs.cs = data;
	v->sregs.cs.type = 0xb;
	v->sregs.cs.selector = 0xf000;
	v->sregs.cs.base = 0xffff0000;
	v->sregs.ds = v->sregs.es = v->sregs.fs = v->sregs.gs = v->sregs.ss = data;
	v->sregs.tr = (struct kvm_segment){ .limit = 0xffff, .type = 0xb, .present = 1 };
	v->sregs.ldt = (struct kvm_segment){ .limit = 0xffff, .type = 2, .present = 1 };
	v->sregs.gdt.limit = 0xffff;
	v->sregs.idt.limit = 0xffff;
	v->sregs.cr0 = 0x60000010;
	v->sregs.apic_base = 0xfee00000 | (v->id == 0 ? 0x100 : 0) | 0x800;
}

struct mock_vcpu *mock_vcpu_new(struct mock_vm *vm, uint32_t id, int fd, int *err)
{
	struct vcpu_mock *m = vm->mock;
	struct mock_vcpu *v = calloc(1, sizeof(*v));
	void *p;

	if (!v) {
		*err = -ENOMEM;
		return NULL;
	}
	if (mock_is_arm64(m)) {
		v->sysregs = calloc(NSYSREGS, sizeof(*v->sysregs));
		if (!v->sysregs) {
			free(v);
			*err = -ENOMEM;
			return NULL;
		}
		v->nsysregs = v->cap_sysregs = NSYSREGS;
		for (size_t i = 0; i < NSYSREGS; i++)
			v->sysregs[i].id = sysreg_table[i].id;
	}
	/* The kernel's side of the run pages: the same memfd pages the VMM maps. */
	p = mmap(NULL, m->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		*err = -errno;
		free(v->sysregs);
		free(v);
		return NULL;
	}
	if (pthread_mutex_init(&v->ioctl_lock, NULL) != 0) {
		munmap(p, m->mmap_size);
		free(v->sysregs);
		free(v);
		*err = -ENOMEM;
		return NULL;
	}
	v->vm = vm;
	v->id = id;
	v->run = p;
	v->run_size = m->mmap_size;
	if (mock_is_arm64(m)) {
		mock_arm64_reset(v);
		v->mp_state = KVM_MP_STATE_RUNNABLE;
	} else {
		x86_reset(v);
		v->mp_state = KVM_MP_STATE_RUNNABLE; /* no in-kernel LAPIC: every vCPU runs */
	}
	return v;
}

void mock_vcpu_free(struct mock_vcpu *v)
{
	munmap(v->run, v->run_size);
	pthread_mutex_destroy(&v->ioctl_lock);
	free(v->sysregs);
	free(v->cpuid);
	free(v);
}

uint32_t mock_mp_state(const struct mock_vcpu *v)
{
	return __atomic_load_n(&v->mp_state, __ATOMIC_ACQUIRE);
}

void mock_set_mp_state(struct mock_vcpu *v, uint32_t state)
{
	__atomic_store_n(&v->mp_state, state, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------------------ */
/* Registers by portable id (the scripted guest's view)                       */

static uint64_t *x86_reg_slot(struct mock_vcpu *v, uint64_t reg)
{
	if (reg >= VCPU_REG_X86_RAX && reg <= VCPU_REG_X86_RFLAGS)
		return &v->regs.rax + (reg - VCPU_REG_X86_RAX);
	switch (reg) {
	case VCPU_REG_X86_CR0: return &v->sregs.cr0;
	case VCPU_REG_X86_CR2: return &v->sregs.cr2;
	case VCPU_REG_X86_CR3: return &v->sregs.cr3;
	case VCPU_REG_X86_CR4: return &v->sregs.cr4;
	case VCPU_REG_X86_CR8: return &v->sregs.cr8;
	case VCPU_REG_X86_EFER: return &v->sregs.efer;
	case VCPU_REG_X86_APIC_BASE: return &v->sregs.apic_base;
	default: return NULL;
	}
}

static uint64_t *arm64_reg_slot(struct mock_vcpu *v, uint64_t reg)
{
	if (reg >= VCPU_REG_ARM64_X(0) && reg <= VCPU_REG_ARM64_X(30))
		return &v->core[reg - VCPU_REG_ARM64_X(0)];
	switch (reg) {
	case VCPU_REG_ARM64_SP: return &v->core[CORE_SP];
	case VCPU_REG_ARM64_PC: return &v->core[CORE_PC];
	case VCPU_REG_ARM64_PSTATE: return &v->core[CORE_PSTATE];
	case VCPU_REG_ARM64_SP_EL1: return &v->core[CORE_SP_EL1];
	case VCPU_REG_ARM64_ELR_EL1: return &v->core[CORE_ELR_EL1];
	default: break;
	}
	if ((reg & ~(uint64_t)0xffff) == VCPU_REG_ARM64_SYSREG(0, 0, 0, 0, 0))
		return sysreg_slot(v, KVM_REG_ARM64_SYSREG_BASE | (reg & 0xffff));
	return NULL;
}

static uint64_t *reg_slot(struct mock_vcpu *v, uint64_t reg)
{
	return mock_is_arm64(v->vm->mock) ? arm64_reg_slot(v, reg) : x86_reg_slot(v, reg);
}

int mock_reg_get(const struct mock_vcpu *v, uint64_t reg, uint64_t *value)
{
	const uint64_t *p = reg_slot((struct mock_vcpu *)v, reg);

	if (!p)
		return -EINVAL;
	*value = *p;
	return 0;
}

int mock_reg_set(struct mock_vcpu *v, uint64_t reg, uint64_t value)
{
	uint64_t *p = reg_slot(v, reg);

	if (!p)
		return -EINVAL;
	*p = value;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* arm64 ONE_REG (§4.3, §4.6; Linux arch/arm64/kvm/guest.c)                  */

#define CORE_BYTES KVM_REGS_ARM64_SIZE
#define CORE_VREGS_OFF 336 /* struct user_fpsimd_state: 16-aligned after spsr[5] */
#define CORE_FPSR_OFF 848
#define CORE_FPCR_OFF 852

/*
 * validate_core_offset(): which byte offsets of struct kvm_regs name a
 * register, and with which size.  Anything else is EINVAL; an offset past
 * the struct is ENOENT.
 */
static int core_reg_check(uint64_t id, size_t *off, size_t *size)
{
	uint64_t idx = id & ~(KVM_REG_ARCH_MASK | KVM_REG_SIZE_MASK | KVM_REG_ARM_COPROC_MASK);
	size_t o = (size_t)(idx * 4);
	size_t sz = KVM_REG_SIZE_BYTES(id);

	if (idx >= CORE_BYTES / 4 || o + sz > CORE_BYTES)
		return -ENOENT;
	if (o < CORE_VREGS_OFF) { /* x0..x30, sp, pc, pstate, sp_el1, elr_el1, spsr[5] */
		if (o % 8 || sz != 8 || o >= 328)
			return -EINVAL;
	} else if (o < CORE_FPSR_OFF) {
		if ((o - CORE_VREGS_OFF) % 16 || sz != 16)
			return -EINVAL;
	} else if (o == CORE_FPSR_OFF || o == CORE_FPCR_OFF) {
		if (sz != 4)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	*off = o;
	*size = sz;
	return 0;
}

static int one_reg(struct mock_vcpu *v, bool set, unsigned long arg)
{
	struct kvm_one_reg r;
	uint64_t *slot, val;
	size_t off, size;
	int err;

	memcpy(&r, (const void *)(uintptr_t)arg, sizeof(r));
	/* kvm_arch_vcpu_ioctl: ONE_REG on an uninitialised vCPU. */
	if (!v->initialised)
		return -ENOEXEC;
	if ((r.id & KVM_REG_ARCH_MASK) != KVM_REG_ARM64)
		return -EINVAL;
	if (!r.addr)
		return -EFAULT;
	switch (r.id & KVM_REG_ARM_COPROC_MASK) {
	case KVM_REG_ARM_CORE:
		err = core_reg_check(r.id, &off, &size);
		if (err < 0)
			return err;
		if (set)
			memcpy((uint8_t *)v->core + off, (const void *)(uintptr_t)r.addr, size);
		else
			memcpy((void *)(uintptr_t)r.addr, (const uint8_t *)v->core + off, size);
		return 0;
	case KVM_REG_ARM64_SYSREG:
		if ((r.id & KVM_REG_SIZE_MASK) != KVM_REG_SIZE_U64)
			return -ENOENT;
		slot = sysreg_slot(v, r.id);
		if (!slot)
			return -ENOENT;
		if (!set) {
			memcpy((void *)(uintptr_t)r.addr, slot, sizeof(*slot));
			return 0;
		}
		memcpy(&val, (const void *)(uintptr_t)r.addr, sizeof(val));
		for (size_t i = 0; i < NSYSREGS; i++)
			if (sysreg_table[i].id == r.id && sysreg_table[i].read_only && val != *slot)
				return -EINVAL;
		*slot = val;
		return 0;
	case KVM_REG_ARM_FW:
		if (r.id != KVM_REG_ARM_PSCI_VERSION)
			return -ENOENT;
		if (!set) {
			val = MOCK_PSCI_VERSION;
			memcpy((void *)(uintptr_t)r.addr, &val, sizeof(val));
			return 0;
		}
		/* The modelled host speaks PSCI 1.1 only; writing it back is allowed. */
		memcpy(&val, (const void *)(uintptr_t)r.addr, sizeof(val));
		return val == MOCK_PSCI_VERSION ? 0 : -EINVAL;
	default:
		return -ENOENT;
	}
}

/* §4.6 KVM_ARM_VCPU_INIT (kvm_vcpu_set_target / kvm_vcpu_init_check_features). */
static int vcpu_init(struct mock_vcpu *v, unsigned long arg)
{
	const uint32_t supported = (1u << KVM_ARM_VCPU_POWER_OFF) | (1u << KVM_ARM_VCPU_PSCI_0_2);
	struct mock_vm *vm = v->vm;
	struct kvm_vcpu_init init;
	uint32_t features;

	memcpy(&init, (const void *)(uintptr_t)arg, sizeof(init));
	if (init.target != KVM_ARM_TARGET_GENERIC_V8)
		return -EINVAL;
	for (unsigned i = 1; i < 7; i++)
		if (init.features[i])
			return -ENOENT; /* bits past KVM_VCPU_MAX_FEATURES */
	/* The modelled host has no AArch32 EL1, PMU, SVE, pointer auth or nested virt. */
	if (init.features[0] & ~supported)
		return -EINVAL;
	/* POWER_OFF is per vCPU; the rest must match across the VM, and a vCPU keeps its set. */
	features = init.features[0] & ~(1u << KVM_ARM_VCPU_POWER_OFF);
	if (v->initialised && features != v->features)
		return -EINVAL;
	if (vm->features_set && features != vm->features)
		return -EINVAL;
	vm->features_set = true;
	vm->features = features;
	v->features = features;
	v->initialised = true;
	mock_arm64_reset(v);
	mock_set_mp_state(v, init.features[0] & (1u << KVM_ARM_VCPU_POWER_OFF)
				     ? KVM_MP_STATE_STOPPED
				     : KVM_MP_STATE_RUNNABLE);
	v->pending = PEND_NONE;
	v->replay = false;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* x86 register files and CPUID                                              */

static int set_cpuid2(struct mock_vcpu *v, unsigned long arg)
{
	struct kvm_cpuid2 hdr;
	struct kvm_cpuid_entry2 *e;
	size_t bytes;

	memcpy(&hdr, (const void *)(uintptr_t)arg, sizeof(hdr));
	if (hdr.nent > MOCK_MAX_CPUID)
		return -E2BIG;
	bytes = (size_t)hdr.nent * sizeof(*e);
	/* Linux 5.16+: after the first KVM_RUN only an identical table is accepted. */
	if (v->has_run) {
		if (hdr.nent != v->ncpuid ||
		    (bytes && memcmp(v->cpuid, (const void *)(uintptr_t)(arg + sizeof(hdr)), bytes)))
			return -EINVAL;
		return 0;
	}
	e = NULL;
	if (bytes) {
		e = malloc(bytes);
		if (!e)
			return -ENOMEM;
		memcpy(e, (const void *)(uintptr_t)(arg + sizeof(hdr)), bytes);
	}
	free(v->cpuid);
	v->cpuid = e;
	v->ncpuid = hdr.nent;
	return 0;
}

#define CR0_PE (1ull << 0)
#define CR0_NW (1ull << 29)
#define CR0_CD (1ull << 30)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

/*
 * kvm_set_sregs() -> kvm_is_valid_sregs() (arch/x86/kvm/x86.c): with
 * EFER.LME and CR0.PG the vCPU is in long mode and needs CR4.PAE and
 * EFER.LMA; otherwise neither EFER.LMA nor a 64-bit CS is allowed; and CR0
 * must be valid (kvm_is_valid_cr0(): no upper bits, NW only with CD, PG only
 * with PE).  A CR3 above the guest's physical-address width is refused too
 * (the mock's width: 52 bits).  VCPU_MOCK_KVM_PVM adds the paravirtual
 * kvm_pvm driver's rule: paging only in long mode.
 */
static int set_sregs(struct vcpu_mock *m, struct mock_vcpu *v, unsigned long arg)
{
	struct kvm_sregs s;

	memcpy(&s, (const void *)(uintptr_t)arg, sizeof(s));
	if ((s.efer & EFER_LME) && (s.cr0 & CR0_PG)) {
		if (!(s.cr4 & CR4_PAE) || !(s.efer & EFER_LMA) || (s.cr3 >> 52))
			return -EINVAL;
	} else if ((s.efer & EFER_LMA) || s.cs.l) {
		return -EINVAL;
	}
	if ((s.cr0 >> 32) || ((s.cr0 & CR0_NW) && !(s.cr0 & CR0_CD)) ||
	    ((s.cr0 & CR0_PG) && !(s.cr0 & CR0_PE)))
		return -EINVAL;
	if ((m->cfg.flags & VCPU_MOCK_KVM_PVM) && (s.cr0 & CR0_PG) && !(s.efer & EFER_LME))
		return -EINVAL;
	v->sregs = s;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* MP state and signal mask                                                   */

static bool mp_state_valid(const struct vcpu_mock *m, uint32_t s)
{
	if (mock_is_arm64(m))
		return s == KVM_MP_STATE_RUNNABLE || s == KVM_MP_STATE_STOPPED ||
		       s == KVM_MP_STATE_SUSPENDED;
	return s == KVM_MP_STATE_RUNNABLE || s == KVM_MP_STATE_UNINITIALIZED ||
	       s == KVM_MP_STATE_INIT_RECEIVED || s == KVM_MP_STATE_HALTED ||
	       s == KVM_MP_STATE_SIPI_RECEIVED;
}

static int set_signal_mask(struct mock_vcpu *v, unsigned long arg)
{
	struct kvm_signal_mask hdr;

	if (!arg) { /* NULL: run with the thread's own mask */
		v->sigmask_set = false;
		return 0;
	}
	memcpy(&hdr, (const void *)(uintptr_t)arg, sizeof(hdr));
	if (hdr.len != KVM_SIGSET_SIZE)
		return -EINVAL;
	memcpy(&v->sigmask, (const uint8_t *)(uintptr_t)arg + sizeof(hdr), KVM_SIGSET_SIZE);
	v->sigmask_set = true;
	return 0;
}

/* ------------------------------------------------------------------------ */

static int vcpu_ioctl_locked(struct vcpu_mock *m, struct mock_vcpu *v, unsigned long req,
			     unsigned long arg)
{
	struct kvm_mp_state mp;
	bool arm = mock_is_arm64(m);

	switch (req) {
	case KVM_RUN:
		return arg ? -EINVAL : mock_vcpu_run(m, v);
	case KVM_GET_REGS_X86:
		memcpy((void *)(uintptr_t)arg, &v->regs, sizeof(v->regs));
		return 0;
	case KVM_SET_REGS_X86:
		memcpy(&v->regs, (const void *)(uintptr_t)arg, sizeof(v->regs));
		v->regs.rflags |= 0x2; /* bit 1 is reserved as one */
		return 0;
	case KVM_GET_SREGS:
		memcpy((void *)(uintptr_t)arg, &v->sregs, sizeof(v->sregs));
		return 0;
	case KVM_SET_SREGS:
		return set_sregs(m, v, arg);
	case KVM_SET_CPUID2:
		return set_cpuid2(v, arg);
	case KVM_GET_REGS_ARM64:
	case KVM_SET_REGS_ARM64:
		/* arm64 implements kvm_arch_vcpu_ioctl_{get,set}_regs as EINVAL: ONE_REG only. */
		return -EINVAL;
	case KVM_GET_ONE_REG:
	case KVM_SET_ONE_REG:
		return one_reg(v, req == KVM_SET_ONE_REG, arg);
	case KVM_ARM_VCPU_INIT:
		return vcpu_init(v, arg);
	case KVM_GET_MP_STATE:
		if (arm && !v->initialised)
			return -ENOEXEC;
		mp.mp_state = mock_mp_state(v);
		memcpy((void *)(uintptr_t)arg, &mp, sizeof(mp));
		return 0;
	case KVM_SET_MP_STATE:
		if (arm && !v->initialised)
			return -ENOEXEC;
		memcpy(&mp, (const void *)(uintptr_t)arg, sizeof(mp));
		if (!mp_state_valid(m, mp.mp_state))
			return -EINVAL;
		mock_set_mp_state(v, mp.mp_state);
		return 0;
	case KVM_SET_SIGNAL_MASK:
		return set_signal_mask(v, arg);
	case KVM_ENABLE_CAP:
		return -EINVAL; /* no per-vCPU capability is modelled */
	case KVM_SET_DEVICE_ATTR:
	case KVM_GET_DEVICE_ATTR:
	case KVM_HAS_DEVICE_ATTR:
		return -ENXIO; /* no vCPU attribute groups (PMU, timer) are modelled */
	default:
		return -ENOTTY;
	}
}

int mock_vcpu_ioctl(struct vcpu_mock *m, struct mock_vcpu *v, unsigned long req,
		    unsigned long arg)
{
	int r;

	/* The kernel's vcpu->mutex: one ioctl per vCPU at a time, KVM_RUN included. */
	pthread_mutex_lock(&v->ioctl_lock);
	pthread_mutex_lock(&m->lock);
	r = vcpu_ioctl_locked(m, v, req, arg);
	pthread_mutex_unlock(&m->lock);
	pthread_mutex_unlock(&v->ioctl_lock);
	return r;
}
