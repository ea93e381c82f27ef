// SPDX-License-Identifier: MIT
/*
 * The modelled KVM driver's vCPU objects: creation, the register files
 * (arm64 ONE_REG core/sysreg/firmware/timer registers and KVM_GET_REG_LIST,
 * x86 kvm_regs/kvm_sregs), KVM_ARM_VCPU_INIT, CPUID, the x86 state
 * save/restore ioctls (MSRs, XSAVE, XCRs, debug registers, events, LAPIC),
 * MP state and the signal mask, and the vCPU ioctl entry point.  KVM_RUN itself lives in mock_guest.c.
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

/*
 * KVM_REG_ARM_PSCI_VERSION values (arch/arm64/include/uapi/asm/kvm.h
 * KVM_ARM_PSCI_*: PSCI_VERSION(major, minor) = major << 16 | minor).  A
 * PSCI_0_2 vCPU reads the VM's version, KVM_ARM_PSCI_LATEST (1.1 in Linux
 * 6.1) until a write; any other vCPU reads 0.1.
 */
#define PSCI_V(major, minor) ((uint64_t)(major) << 16 | (minor))
#define PSCI_0_1 PSCI_V(0, 1)
#define PSCI_0_2 PSCI_V(0, 2)
#define PSCI_1_0 PSCI_V(1, 0)
#define PSCI_1_1 PSCI_V(1, 1)

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

static void x86_state_reset(struct mock_vcpu *v);

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
	x86_state_reset(v);
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
 * core_reg_size_from_offset(): the size of the register that starts at byte
 * offset @o of struct kvm_regs (x0..x30, sp, pc, pstate, sp_el1, elr_el1,
 * spsr[5]: 8; vregs[32]: 16; fpsr, fpcr: 4), or 0 where none starts (the
 * middle of a register, the padding before fp_regs, the reserved tail).
 */
static size_t core_size_at(size_t o)
{
	if (o < 328)
		return o % 8 ? 0 : 8;
	if (o >= CORE_VREGS_OFF && o < CORE_FPSR_OFF)
		return (o - CORE_VREGS_OFF) % 16 ? 0 : 16;
	if (o == CORE_FPSR_OFF || o == CORE_FPCR_OFF)
		return 4;
	return 0;
}

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
	if (core_size_at(o) == 0 || sz != core_size_at(o))
		return -EINVAL;
	*off = o;
	*size = sz;
	return 0;
}

static void put_u64(uint8_t *dst, size_t i, uint64_t v)
{
	memcpy(dst + i * sizeof(v), &v, sizeof(v));
}

/*
 * kvm_arm_copy_reg_indices(): every register ONE_REG accepts, in the
 * kernel's order: the core registers (by offset; an SVE vCPU's without the
 * V registers, which its Z registers hold), SVE's (VLS, Z0-31, P0-15, FFR),
 * the firmware registers (the model has PSCI_VERSION only), the timer
 * registers (the model has TIMER_CNT only), then the system registers by
 * id.  Returns the count; writes the ids when @dst.
 */
static bool has_sve(const struct mock_vcpu *v)
{
	return (v->features & (1u << KVM_ARM_VCPU_SVE)) != 0;
}

/* fp_regs.vregs: bytes 336 to 847 of the arm64 struct kvm_regs. */
static bool core_is_vreg(size_t off)
{
	return off >= 336 && off < 848;
}

static size_t reg_list(const struct mock_vcpu *v, uint8_t *dst)
{
	size_t n = 0;

	for (size_t o = 0; o < CORE_BYTES; o += 4) {
		size_t sz = core_size_at(o);
		uint64_t size = sz == 4 ? KVM_REG_SIZE_U32 : sz == 8 ? KVM_REG_SIZE_U64 : KVM_REG_SIZE_U128;

		if (!sz || (has_sve(v) && core_is_vreg(o)))
			continue;
		if (dst)
			put_u64(dst, n, KVM_REG_ARM64 | size | KVM_REG_ARM_CORE | (uint64_t)(o / 4));
		n++;
	}
	if (has_sve(v)) {
		if (dst)
			put_u64(dst, n, KVM_REG_ARM64_SVE_VLS);
		n++;
		for (unsigned i = 0; i < 32; i++, n++)
			if (dst)
				put_u64(dst, n, KVM_REG_ARM64_SVE_ZREG(i));
		for (unsigned i = 0; i < 16; i++, n++)
			if (dst)
				put_u64(dst, n, KVM_REG_ARM64_SVE_PREG(i));
		if (dst)
			put_u64(dst, n, KVM_REG_ARM64_SVE_FFR);
		n++;
	}
	if (dst)
		put_u64(dst, n, KVM_REG_ARM_PSCI_VERSION);
	n++;
	if (dst)
		put_u64(dst, n, KVM_REG_ARM64_TIMER_CNT);
	n++;
	for (size_t i = 0; i < v->nsysregs; i++) {
		if (dst)
			put_u64(dst, n, v->sysregs[i].id);
		n++;
	}
	return n;
}

/* kvm_arm_vcpu_is_finalized(): an SVE vCPU is unusable until finalized. */
static bool arm64_finalized(const struct mock_vcpu *v)
{
	return !(v->features & (1u << KVM_ARM_VCPU_SVE)) || v->sve_finalized;
}

/*
 * KVM_GET_REG_LIST (arm64 kvm_arch_vcpu_ioctl): ENOEXEC before
 * KVM_ARM_VCPU_INIT, EPERM (§9) for an SVE vCPU not yet finalized; n is
 * written back with the count in any case, and a
 * caller's n below it is E2BIG.  The kernel reads n into an unsigned int,
 * so only its low 32 bits count.
 */
static int get_reg_list(const struct mock_vcpu *v, unsigned long arg)
{
	struct kvm_reg_list hdr;
	unsigned n;

	if (!v->initialised)
		return -ENOEXEC;
	if (!arm64_finalized(v))
		return -EPERM;
	memcpy(&hdr, (const void *)(uintptr_t)arg, sizeof(hdr));
	n = (unsigned)hdr.n;
	hdr.n = reg_list(v, NULL);
	memcpy((void *)(uintptr_t)arg, &hdr, sizeof(hdr));
	if (n < hdr.n)
		return -E2BIG;
	reg_list(v, (uint8_t *)(uintptr_t)arg + sizeof(hdr));
	return 0;
}

/*
 * kvm_arm_set_fw_reg() KVM_REG_ARM_PSCI_VERSION: a PSCI_0_2 vCPU takes 0.2,
 * 1.0 or 1.1, any other vCPU only 0.1; the version is the VM's.
 */
static int psci_version_set(struct mock_vcpu *v, uint64_t val)
{
	bool wants_02 = (v->features & (1u << KVM_ARM_VCPU_PSCI_0_2)) != 0;

	if (val == PSCI_0_1 && !wants_02)
		return 0;
	if ((val == PSCI_0_2 || val == PSCI_1_0 || val == PSCI_1_1) && wants_02) {
		v->vm->psci_version = val;
		return 0;
	}
	return -EINVAL;
}

/*
 * SVE's registers (guest.c get_sve_reg()/set_sve_reg(), sve_reg_to_region()):
 * ENOENT without SVE or for an id of another size or slice; VLS: any time
 * to read, EPERM to set once finalized (else taken: the model's VLs are any
 * subset of vq 1-16 with the largest kept, EINVAL otherwise); the others:
 * EPERM before finalize.
 */
static int sve_reg(struct mock_vcpu *v, bool set, const struct kvm_one_reg *r)
{
	uint8_t *slot = NULL;
	size_t size = 0;

	if (!has_sve(v))
		return -ENOENT;
	if (r->id == KVM_REG_ARM64_SVE_VLS) {
		uint8_t vls[64];

		if (!set) {
			memcpy((void *)(uintptr_t)r->addr, v->sve_vls, sizeof(v->sve_vls));
			return 0;
		}
		if (v->sve_finalized)
			return -EPERM;
		memcpy(vls, (const void *)(uintptr_t)r->addr, sizeof(vls));
		for (size_t i = 2; i < sizeof(vls); i++)
			if (vls[i])
				return -EINVAL; /* vq above 16: the host has none */
		if (!vls[0] && !vls[1])
			return -EINVAL;
		memcpy(v->sve_vls, vls, sizeof(vls));
		return 0;
	}
	for (unsigned i = 0; i < 32 && !slot; i++)
		if (r->id == KVM_REG_ARM64_SVE_ZREG(i)) {
			slot = v->sve_z[i];
			size = sizeof(v->sve_z[i]);
		}
	for (unsigned i = 0; i < 16 && !slot; i++)
		if (r->id == KVM_REG_ARM64_SVE_PREG(i)) {
			slot = v->sve_p[i];
			size = sizeof(v->sve_p[i]);
		}
	if (!slot && r->id == KVM_REG_ARM64_SVE_FFR) {
		slot = v->sve_ffr;
		size = sizeof(v->sve_ffr);
	}
	if (!slot)
		return -ENOENT;
	if (!v->sve_finalized)
		return -EPERM;
	if (set)
		memcpy(slot, (const void *)(uintptr_t)r->addr, size);
	else
		memcpy((void *)(uintptr_t)r->addr, slot, size);
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
		/* guest.c validate_core_offset(): an SVE vCPU's V registers are its Z registers'. */
		if (has_sve(v) && core_is_vreg(off))
			return -EINVAL;
		if (set)
			memcpy((uint8_t *)v->core + off, (const void *)(uintptr_t)r.addr, size);
		else
			memcpy((void *)(uintptr_t)r.addr, (const uint8_t *)v->core + off, size);
		return 0;
	case KVM_REG_ARM64_SYSREG:
		/*
		 * is_timer_reg(): the virtual counter.  Linux 6.1 keeps one
		 * offset for all vCPUs (update_vtimer_cntvoff()), so the value is
		 * the VM's; the model's counter does not tick.
		 */
		if (r.id == KVM_REG_ARM64_TIMER_CNT) {
			if (set)
				memcpy(&v->vm->timer_cnt, (const void *)(uintptr_t)r.addr, sizeof(val));
			else
				memcpy((void *)(uintptr_t)r.addr, &v->vm->timer_cnt, sizeof(val));
			return 0;
		}
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
	case KVM_REG_ARM64_SVE:
		return sve_reg(v, set, &r);
	case KVM_REG_ARM_FW:
		if (r.id != KVM_REG_ARM_PSCI_VERSION)
			return -ENOENT;
		if (!set) {
			val = (v->features & (1u << KVM_ARM_VCPU_PSCI_0_2)) ? v->vm->psci_version
									     : PSCI_0_1;
			memcpy((void *)(uintptr_t)r.addr, &val, sizeof(val));
			return 0;
		}
		memcpy(&val, (const void *)(uintptr_t)r.addr, sizeof(val));
		return psci_version_set(v, val);
	default:
		return -ENOENT;
	}
}

#define FEAT_PAC ((1u << KVM_ARM_VCPU_PTRAUTH_ADDRESS) | (1u << KVM_ARM_VCPU_PTRAUTH_GENERIC))

/*
 * The kvm_vcpu_init bits the modelled host takes: POWER_OFF, PSCI_0_2, and
 * (§9) SVE, both pointer-authentication bits and PMU_V3 unless the
 * configuration takes them away (VCPU_MOCK_NO_*); never AArch32 EL1 or
 * nested virtualisation.
 */
static uint32_t features_supported(const struct vcpu_mock *m)
{
	uint32_t f = (1u << KVM_ARM_VCPU_POWER_OFF) | (1u << KVM_ARM_VCPU_PSCI_0_2);

	if (!(m->cfg.flags & VCPU_MOCK_NO_SVE))
		f |= 1u << KVM_ARM_VCPU_SVE;
	if (!(m->cfg.flags & VCPU_MOCK_NO_PTRAUTH))
		f |= FEAT_PAC;
	if (!(m->cfg.flags & VCPU_MOCK_NO_PMU))
		f |= 1u << KVM_ARM_VCPU_PMU_V3;
	return f;
}

/*
 * §4.6 KVM_ARM_VCPU_INIT (kvm_vcpu_set_target / kvm_vcpu_init_check_features),
 * §9 its features (kvm_reset_vcpu(), arch/arm64/kvm/reset.c): SVE without
 * system_supports_sve(), pointer authentication with one bit of the two
 * or without system_has_full_ptr_auth() (kvm_vcpu_enable_ptrauth()), PMU_V3
 * without kvm_arm_support_pmu_v3(): EINVAL, and the vCPU stays as it was.
 * A vCPU initialised again keeps its SVE finalization and PMU state.
 */
static int vcpu_init(struct mock_vcpu *v, unsigned long arg)
{
	const uint32_t supported = features_supported(v->vm->mock);
	struct mock_vm *vm = v->vm;
	struct kvm_vcpu_init init;
	uint32_t features;

	memcpy(&init, (const void *)(uintptr_t)arg, sizeof(init));
	if (init.target != KVM_ARM_TARGET_GENERIC_V8)
		return -EINVAL;
	for (unsigned i = 1; i < 7; i++)
		if (init.features[i])
			return -ENOENT; /* bits past KVM_VCPU_MAX_FEATURES */
	if (init.features[0] & ~supported)
		return -EINVAL;
	if ((init.features[0] & FEAT_PAC) && (init.features[0] & FEAT_PAC) != FEAT_PAC)
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
	/* kvm_vcpu_enable_sve(): the host's vector lengths, vq 1-16 (up to 2048 bits) here. */
	if ((features & (1u << KVM_ARM_VCPU_SVE)) && !v->sve_finalized) {
		memset(v->sve_vls, 0, sizeof(v->sve_vls));
		v->sve_vls[0] = v->sve_vls[1] = 0xff;
	}
	mock_arm64_reset(v);
	mock_set_mp_state(v, init.features[0] & (1u << KVM_ARM_VCPU_POWER_OFF)
				     ? KVM_MP_STATE_STOPPED
				     : KVM_MP_STATE_RUNNABLE);
	v->pending = PEND_NONE;
	v->replay = false;
	return 0;
}

/*
 * §9 KVM_ARM_VCPU_FINALIZE (kvm_arch_vcpu_ioctl(), kvm_arm_vcpu_finalize()
 * in reset.c): ENOEXEC before KVM_ARM_VCPU_INIT; the int @arg points to
 * names the feature, and only KVM_ARM_VCPU_SVE is one, on a vCPU
 * initialised with it (else EINVAL); finalizing it again is EPERM.
 */
static int vcpu_finalize(struct mock_vcpu *v, unsigned long arg)
{
	int what;

	if (!v->initialised)
		return -ENOEXEC;
	memcpy(&what, (const void *)(uintptr_t)arg, sizeof(what));
	if (what != KVM_ARM_VCPU_SVE || !(v->features & (1u << KVM_ARM_VCPU_SVE)))
		return -EINVAL;
	if (v->sve_finalized)
		return -EPERM;
	v->sve_finalized = true;
	return 0;
}

/*
 * §9 kvm_arch_vcpu_run_pid_change() (arch/arm64/kvm/arm.c), before a
 * vCPU's first run: EPERM for an SVE vCPU not finalized; EINVAL for a
 * PMU_V3 vCPU whose PMU_V3_INIT was not done (kvm_arm_pmu_v3_enable()).
 */
int mock_arm64_run_check(const struct mock_vcpu *v)
{
	if (!arm64_finalized(v))
		return -EPERM;
	if ((v->features & (1u << KVM_ARM_VCPU_PMU_V3)) && !v->pmu_created)
		return -EINVAL;
	return 0;
}

#define INTID_PPI_FIRST 16u
#define INTID_SPI_FIRST 32u
#define INTID_SPI_LAST 1019u /* VGIC_MAX_SPI */

/*
 * pmu_irq_is_valid(): a PPI must be the one every other PMU of the VM has
 * (a PPI is per vCPU, so all use one number); an SPI must be one no other
 * PMU has.  vCPUs whose PMU has no interrupt yet do not count; @self does.
 */
static bool pmu_irq_valid(const struct mock_vm *vm, uint32_t irq)
{
	for (uint32_t i = 0; i < vm->mock->cfg.max_vcpus; i++) {
		const struct mock_vcpu *o = vm->vcpus[i];

		if (!o || !o->pmu_irq)
			continue;
		if (irq < INTID_SPI_FIRST ? o->pmu_irq != irq : o->pmu_irq == irq)
			return false;
	}
	return true;
}

/*
 * §9 the PMUv3's vCPU attributes, group KVM_ARM_VCPU_PMU_V3_CTRL
 * (kvm_arm_pmu_v3_{set,get,has}_attr() in arch/arm64/kvm/pmu-emul.c,
 * Documentation/virt/kvm/devices/vcpu.rst).  SET: ENODEV on a vCPU
 * without the feature, EBUSY once its PMU is initialised, ENXIO for an
 * unknown attribute.  PMU_V3_IRQ (an int at addr): EINVAL without the
 * in-kernel vGIC (irqchip_in_kernel(): created, not yet initialised will
 * do), for an INTID that is neither a PPI (16-31) nor an SPI (32-1019),
 * or against pmu_irq_is_valid(); EBUSY when the vCPU has one already.
 * PMU_V3_INIT: with a vGIC, ENODEV before its CTRL_INIT, ENXIO without an
 * interrupt, EINVAL for an SPI past the vGIC's (kvm_vgic_set_owner());
 * without a vGIC it succeeds (a user-space irqchip).  GET PMU_V3_IRQ:
 * EINVAL without the vGIC, ENODEV without the feature, ENXIO when unset.
 * HAS: 0 for IRQ and INIT on a vCPU with the feature.  Not modelled
 * (ENXIO): the PMU's FILTER and SET_PMU, the timer and PV-time groups, and
 * every x86 vCPU attribute.
 */
static int vcpu_attr(struct vcpu_mock *m, struct mock_vcpu *v, unsigned long req,
		     unsigned long arg)
{
	const bool has = (v->features & (1u << KVM_ARM_VCPU_PMU_V3)) != 0;
	const struct mock_vgic *gic = &v->vm->gic;
	struct kvm_device_attr a;
	int32_t irq;

	memcpy(&a, (const void *)(uintptr_t)arg, sizeof(a));
	if (!mock_is_arm64(m) || a.group != KVM_ARM_VCPU_PMU_V3_CTRL)
		return -ENXIO;
	if (req == KVM_HAS_DEVICE_ATTR)
		return has && (a.attr == KVM_ARM_VCPU_PMU_V3_IRQ || a.attr == KVM_ARM_VCPU_PMU_V3_INIT)
			       ? 0
			       : -ENXIO;
	if (req == KVM_GET_DEVICE_ATTR) {
		if (a.attr != KVM_ARM_VCPU_PMU_V3_IRQ)
			return -ENXIO;
		if (!gic->created)
			return -EINVAL;
		if (!has)
			return -ENODEV;
		if (!v->pmu_irq)
			return -ENXIO;
		if (!a.addr)
			return -EFAULT;
		irq = (int32_t)v->pmu_irq;
		memcpy((void *)(uintptr_t)a.addr, &irq, sizeof(irq));
		return 0;
	}
	if (!has)
		return -ENODEV;
	if (v->pmu_created)
		return -EBUSY;
	switch (a.attr) {
	case KVM_ARM_VCPU_PMU_V3_IRQ:
		if (!gic->created)
			return -EINVAL;
		if (!a.addr)
			return -EFAULT;
		memcpy(&irq, (const void *)(uintptr_t)a.addr, sizeof(irq));
		if (irq < (int32_t)INTID_PPI_FIRST || irq > (int32_t)INTID_SPI_LAST)
			return -EINVAL;
		if (!pmu_irq_valid(v->vm, (uint32_t)irq))
			return -EINVAL;
		if (v->pmu_irq)
			return -EBUSY;
		v->pmu_irq = (uint32_t)irq;
		return 0;
	case KVM_ARM_VCPU_PMU_V3_INIT:
		if (gic->created) {
			if (!gic->initialised)
				return -ENODEV;
			if (!v->pmu_irq)
				return -ENXIO;
			if (v->pmu_irq >= INTID_SPI_FIRST && v->pmu_irq >= gic->nr_irqs)
				return -EINVAL;
		}
		v->pmu_created = true;
		return 0;
	default:
		return -ENXIO;
	}
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
/* x86 state save and restore (§8; Linux 6.1 arch/x86/kvm/x86.c, lapic.c)    */

/* The architectural MSR numbers of the modelled MSRs (SDM vol. 4). */
#define MSR_IA32_TSC 0x10u
#define MSR_IA32_TSC_ADJUST 0x3bu
#define MSR_IA32_SYSENTER_CS 0x174u
#define MSR_IA32_SYSENTER_ESP 0x175u
#define MSR_IA32_SYSENTER_EIP 0x176u
#define MSR_IA32_MISC_ENABLE 0x1a0u
#define MSR_IA32_CR_PAT 0x277u
#define MSR_STAR 0xc0000081u
#define MSR_LSTAR 0xc0000082u
#define MSR_CSTAR 0xc0000083u
#define MSR_SYSCALL_MASK 0xc0000084u
#define MSR_KERNEL_GS_BASE 0xc0000102u
#define MSR_TSC_AUX 0xc0000103u

/*
 * The MSRs the model keeps, in KVM_GET_MSR_INDEX_LIST order, with their
 * values after vCPU creation (kvm_vcpu_reset(): MISC_ENABLE is
 * PEBS_UNAVAIL | BTS_UNAVAIL since Linux 6.0, PAT is MSR_IA32_CR_PAT_DEFAULT).
 * The model's TSC does not tick: it reads what was last written.
 */
static const struct {
	uint32_t index;
	uint64_t reset;
} msr_table[] = {
	{ MSR_IA32_TSC, 0 },
	{ MSR_IA32_TSC_ADJUST, 0 },
	{ MSR_IA32_SYSENTER_CS, 0 },
	{ MSR_IA32_SYSENTER_ESP, 0 },
	{ MSR_IA32_SYSENTER_EIP, 0 },
	{ MSR_IA32_MISC_ENABLE, (1ull << 12) | (1ull << 11) },
	{ MSR_IA32_CR_PAT, 0x0007040600070406ull },
	{ MSR_STAR, 0 },
	{ MSR_LSTAR, 0 },
	{ MSR_CSTAR, 0 },
	{ MSR_SYSCALL_MASK, 0 },
	{ MSR_KERNEL_GS_BASE, 0 },
	{ MSR_TSC_AUX, 0 },
};
_Static_assert(sizeof(msr_table) / sizeof(msr_table[0]) == MOCK_X86_NMSRS, "MOCK_X86_NMSRS");

static int msr_slot(uint32_t index)
{
	for (int i = 0; i < MOCK_X86_NMSRS; i++)
		if (msr_table[i].index == index)
			return i;
	return -1;
}

/* 48-bit virtual addresses (no LA57): bits 63..47 all equal. */
static bool canonical48(uint64_t a)
{
	uint64_t top = a >> 47;

	return top == 0 || top == 0x1ffff;
}

static uint64_t canonicalize48(uint64_t a)
{
	return (a & (1ull << 47)) ? a | 0xffff000000000000ull : a & 0x0000ffffffffffffull;
}

/* kvm_pat_valid(): each byte a memory type 0, 1, 4, 5, 6 or 7. */
static bool pat_valid(uint64_t data)
{
	if (data & 0xf8f8f8f8f8f8f8f8ull)
		return false;
	return (data | ((data & 0x0202020202020202ull) << 1)) == data;
}

/*
 * A host-initiated write (__kvm_set_msr() and kvm_set_msr_common() with
 * host_initiated): false where KVM refuses it.  LSTAR, CSTAR and
 * KERNEL_GS_BASE must be canonical; SYSENTER_ESP/EIP are made canonical
 * instead (AMD ignores their upper half, so KVM cannot refuse); TSC_AUX has
 * 32 bits (the model's guest is Intel, where bits 63:32 are reserved).  The
 * model acts as if the guest's CPUID had every feature these MSRs need.
 */
static bool msr_write(struct mock_vcpu *v, uint32_t index, uint64_t data)
{
	int i = msr_slot(index);

	if (i < 0)
		return false;
	switch (index) {
	case MSR_LSTAR:
	case MSR_CSTAR:
	case MSR_KERNEL_GS_BASE:
		if (!canonical48(data))
			return false;
		break;
	case MSR_IA32_SYSENTER_ESP:
	case MSR_IA32_SYSENTER_EIP:
		data = canonicalize48(data);
		break;
	case MSR_IA32_CR_PAT:
		if (!pat_valid(data))
			return false;
		break;
	case MSR_TSC_AUX:
		if (data >> 32)
			return false;
		break;
	default:
		break;
	}
	v->msr[i] = data;
	return true;
}

/*
 * msr_io(): E2BIG for nmsrs >= MAX_IO_MSRS; then the entries in order,
 * stopping at the first one KVM does not know or refuses.  The ioctl
 * returns how many were done (a count, not an error); GET writes the
 * entries back.
 */
static int msr_io(struct mock_vcpu *v, bool set, unsigned long arg)
{
	struct kvm_msrs hdr;
	struct kvm_msr_entry e;
	uint8_t *ents = (uint8_t *)(uintptr_t)arg + sizeof(hdr);
	uint32_t i;

	memcpy(&hdr, (const void *)(uintptr_t)arg, sizeof(hdr));
	if (hdr.nmsrs >= KVM_MAX_IO_MSRS)
		return -E2BIG;
	for (i = 0; i < hdr.nmsrs; i++) {
		memcpy(&e, ents + (size_t)i * sizeof(e), sizeof(e));
		if (set) {
			if (!msr_write(v, e.index, e.data))
				break;
		} else {
			int slot = msr_slot(e.index);

			if (slot < 0)
				break;
			e.data = v->msr[slot];
			memcpy(ents + (size_t)i * sizeof(e), &e, sizeof(e));
		}
	}
	return (int)i;
}

/*
 * KVM_GET_MSR_INDEX_LIST (/dev/kvm): nmsrs is written back with the count
 * in any case; a caller's nmsrs below it is E2BIG.
 */
int mock_msr_index_list(unsigned long arg)
{
	struct kvm_msr_list hdr;
	uint32_t n;

	memcpy(&hdr, (const void *)(uintptr_t)arg, sizeof(hdr));
	n = hdr.nmsrs;
	hdr.nmsrs = MOCK_X86_NMSRS;
	memcpy((void *)(uintptr_t)arg, &hdr, sizeof(hdr));
	if (n < MOCK_X86_NMSRS)
		return -E2BIG;
	for (size_t i = 0; i < MOCK_X86_NMSRS; i++)
		memcpy((uint8_t *)(uintptr_t)arg + sizeof(hdr) + i * sizeof(uint32_t),
		       &msr_table[i].index, sizeof(uint32_t));
	return 0;
}

/*
 * XSAVE (uabi layout: the legacy FXSAVE area, then the XSAVE header at 512).
 * The model's host supports x87, SSE and AVX (XCR0 0x7): 4096 bytes, what
 * KVM_CAP_XSAVE2 answers.
 */
#define XSAVE_FCW 0
#define XSAVE_MXCSR 24
#define XSAVE_XSTATE_BV 512
#define XSAVE_XCOMP_BV 520
#define XSAVE_HDR_RESERVED 528 /* 48 bytes, up to 575 */
#define XSAVE_HDR_END 576
#define XFEATURES_SUPPORTED 0x7ull     /* x87 | SSE | AVX */
#define XFEATURE_FP 0x1ull
#define XFEATURE_SSE 0x2ull
#define XFEATURE_YMM 0x4ull
#define MXCSR_FEATURE_MASK 0xffffu     /* the host's MXCSR_MASK (with DAZ) */

/*
 * kvm_vcpu_ioctl_x86_set_xsave() -> copy_uabi_to_xstate(): EINVAL for
 * XSTATE_BV bits outside the supported features, a non-zero XCOMP_BV (the
 * uabi is never compacted), non-zero reserved header bytes, or, when
 * XSTATE_BV has x87, SSE or AVX, reserved MXCSR bits.  All checked before
 * anything is copied.
 */
static int set_xsave(struct mock_vcpu *v, unsigned long arg)
{
	const uint8_t *p = (const uint8_t *)(uintptr_t)arg;
	uint64_t bv, comp;
	uint32_t mxcsr;

	memcpy(&bv, p + XSAVE_XSTATE_BV, sizeof(bv));
	memcpy(&comp, p + XSAVE_XCOMP_BV, sizeof(comp));
	if ((bv & ~XFEATURES_SUPPORTED) || comp)
		return -EINVAL;
	for (size_t i = XSAVE_HDR_RESERVED; i < XSAVE_HDR_END; i++)
		if (p[i])
			return -EINVAL;
	if (bv & (XFEATURE_FP | XFEATURE_SSE | XFEATURE_YMM)) {
		memcpy(&mxcsr, p + XSAVE_MXCSR, sizeof(mxcsr));
		if (mxcsr & ~MXCSR_FEATURE_MASK)
			return -EINVAL;
	}
	memcpy(&v->xsave, p, sizeof(v->xsave));
	return 0;
}

/* __kvm_set_xcr(): x87 always, AVX only with SSE, nothing the host lacks. */
static bool xcr0_valid(uint64_t x)
{
	if (!(x & XFEATURE_FP))
		return false;
	if ((x & XFEATURE_YMM) && !(x & XFEATURE_SSE))
		return false;
	return !(x & ~XFEATURES_SUPPORTED);
}

static void get_xcrs(const struct mock_vcpu *v, unsigned long arg)
{
	struct kvm_xcrs x;

	memset(&x, 0, sizeof(x));
	x.nr_xcrs = 1;
	x.xcrs[0].xcr = 0; /* XCR_XFEATURE_ENABLED_MASK */
	x.xcrs[0].value = v->xcr0;
	memcpy((void *)(uintptr_t)arg, &x, sizeof(x));
}

/*
 * kvm_vcpu_ioctl_x86_set_xcrs(): EINVAL for nr_xcrs > KVM_MAX_XCRS or
 * non-zero flags.  Only XCR0 exists: the first entry for XCR 0 is applied
 * (EINVAL when __kvm_set_xcr() refuses it) and the walk ends there; entries
 * for other XCRs are passed over, as the kernel does.
 */
static int set_xcrs(struct mock_vcpu *v, unsigned long arg)
{
	struct kvm_xcrs x;

	memcpy(&x, (const void *)(uintptr_t)arg, sizeof(x));
	if (x.nr_xcrs > KVM_MAX_XCRS || x.flags)
		return -EINVAL;
	for (uint32_t i = 0; i < x.nr_xcrs; i++) {
		if (x.xcrs[i].xcr != 0)
			continue;
		if (!xcr0_valid(x.xcrs[i].value))
			return -EINVAL;
		v->xcr0 = x.xcrs[i].value;
		break;
	}
	return 0;
}

static void get_debugregs(const struct mock_vcpu *v, unsigned long arg)
{
	struct kvm_debugregs d;

	memset(&d, 0, sizeof(d));
	memcpy(d.db, v->dbg.db, sizeof(d.db));
	d.dr6 = v->dbg.dr6;
	d.dr7 = v->dbg.dr7;
	memcpy((void *)(uintptr_t)arg, &d, sizeof(d));
}

/* kvm_vcpu_ioctl_x86_set_debugregs(): flags 0; DR6 and DR7 have 32 bits. */
static int set_debugregs(struct mock_vcpu *v, unsigned long arg)
{
	struct kvm_debugregs d;

	memcpy(&d, (const void *)(uintptr_t)arg, sizeof(d));
	if (d.flags || (d.dr6 >> 32) || (d.dr7 >> 32))
		return -EINVAL;
	memcpy(v->dbg.db, d.db, sizeof(d.db));
	v->dbg.dr6 = d.dr6;
	v->dbg.dr7 = d.dr7;
	return 0;
}

#define EVENTS_VALID_ALL                                                                    \
	(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |                \
	 KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_PAYLOAD | \
	 KVM_VCPUEVENT_VALID_TRIPLE_FAULT)
#define NMI_VECTOR 2
#define BP_VECTOR 3
#define OF_VECTOR 4
/* interrupt.shadow bits (arch/x86/include/uapi/asm/kvm.h KVM_X86_SHADOW_INT_*). */
#define SHADOW_INT_MOV_SS 0x01u
#define SHADOW_INT_STI 0x02u

/*
 * kvm_vcpu_ioctl_x86_get_vcpu_events(): software exceptions (#BP, #OF) are
 * not reported as injected; a pending exception reads as injected (no
 * KVM_CAP_EXCEPTION_PAYLOAD); a soft interrupt is not reported; sipi_vector
 * is never valid on the way out: flags are NMI_PENDING | SHADOW | SMM.
 */
static void get_vcpu_events(const struct mock_vcpu *v, unsigned long arg)
{
	const struct kvm_vcpu_events *s = &v->events;
	struct kvm_vcpu_events e;

	memset(&e, 0, sizeof(e));
	if (s->exception.nr != BP_VECTOR && s->exception.nr != OF_VECTOR) {
		e.exception.injected = s->exception.injected | s->exception.pending;
		e.exception.pending = s->exception.pending;
	}
	e.exception.nr = s->exception.nr;
	e.exception.has_error_code = s->exception.has_error_code;
	e.exception.error_code = s->exception.error_code;
	e.exception_has_payload = s->exception_has_payload;
	e.exception_payload = s->exception_payload;
	e.interrupt.injected = s->interrupt.injected && !s->interrupt.soft;
	e.interrupt.nr = s->interrupt.nr;
	e.interrupt.shadow = s->interrupt.shadow;
	e.nmi = s->nmi;
	e.smi = s->smi;
	e.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW |
		  KVM_VCPUEVENT_VALID_SMM;
	memcpy((void *)(uintptr_t)arg, &e, sizeof(e));
}

/*
 * kvm_vcpu_ioctl_x86_set_vcpu_events(), on a VM that enabled neither
 * KVM_CAP_EXCEPTION_PAYLOAD nor KVM_CAP_X86_TRIPLE_FAULT_EVENT (the model
 * has neither): EINVAL for unknown flags or VALID_PAYLOAD; without it
 * exception.pending and the payload flag are dropped; EINVAL for an injected
 * exception with a vector above 31 or the NMI vector, and for SMM state with
 * the vCPU in INIT_RECEIVED.  The exception, interrupt and nmi.injected/
 * masked always apply; nmi.pending, sipi_vector (in-kernel LAPIC only),
 * the interrupt shadow and smi.* only under their flag.  VALID_TRIPLE_FAULT
 * is refused last, after the rest was applied, as in the kernel.  The
 * shadow is stored as VMX does (MOV SS wins over STI); booleans as booleans.
 */
static int set_vcpu_events(struct mock_vcpu *v, unsigned long arg)
{
	struct kvm_vcpu_events *s = &v->events;
	struct kvm_vcpu_events e;

	memcpy(&e, (const void *)(uintptr_t)arg, sizeof(e));
	if (e.flags & ~EVENTS_VALID_ALL)
		return -EINVAL;
	if (e.flags & KVM_VCPUEVENT_VALID_PAYLOAD)
		return -EINVAL; /* exception_payload_enabled is false */
	e.exception.pending = 0;
	e.exception_has_payload = 0;
	if (e.exception.injected && (e.exception.nr > 31 || e.exception.nr == NMI_VECTOR))
		return -EINVAL;
	if ((e.flags & KVM_VCPUEVENT_VALID_SMM) && (e.smi.smm || e.smi.pending) &&
	    mock_mp_state(v) == KVM_MP_STATE_INIT_RECEIVED)
		return -EINVAL;

	s->exception.injected = e.exception.injected != 0;
	s->exception.pending = 0;
	s->exception.nr = e.exception.nr;
	s->exception.has_error_code = e.exception.has_error_code != 0;
	s->exception.error_code = e.exception.error_code;
	s->exception_has_payload = 0;
	s->exception_payload = e.exception_payload;
	s->interrupt.injected = e.interrupt.injected != 0;
	s->interrupt.nr = e.interrupt.nr;
	s->interrupt.soft = e.interrupt.soft != 0;
	if (e.flags & KVM_VCPUEVENT_VALID_SHADOW)
		s->interrupt.shadow = (e.interrupt.shadow & SHADOW_INT_MOV_SS) ? SHADOW_INT_MOV_SS
				      : (e.interrupt.shadow & SHADOW_INT_STI)  ? SHADOW_INT_STI
										: 0;
	s->nmi.injected = e.nmi.injected != 0;
	if (e.flags & KVM_VCPUEVENT_VALID_NMI_PENDING)
		s->nmi.pending = e.nmi.pending != 0;
	s->nmi.masked = e.nmi.masked != 0;
	if ((e.flags & KVM_VCPUEVENT_VALID_SIPI_VECTOR) && v->vm->irqchip)
		s->sipi_vector = e.sipi_vector;
	if (e.flags & KVM_VCPUEVENT_VALID_SMM) {
		s->smi.smm = e.smi.smm != 0;
		s->smi.pending = e.smi.pending != 0;
		/* Leaving SMM clears HF_SMM_INSIDE_NMI_MASK (kvm_smm_changed()). */
		s->smi.smm_inside_nmi = e.smi.smm && e.smi.smm_inside_nmi;
		if (v->vm->irqchip)
			s->smi.latched_init = e.smi.latched_init != 0;
	}
	if (e.flags & KVM_VCPUEVENT_VALID_TRIPLE_FAULT)
		return -EINVAL; /* triple_fault_event is false */
	return 0;
}

/* Local APIC register offsets and values (arch/x86/include/asm/apicdef.h, lapic.c). */
#define APIC_ID 0x20
#define APIC_LVR 0x30
#define APIC_DFR 0xe0
#define APIC_SPIV 0xf0
#define APIC_LVTT 0x320  /* then LVTTHMR, LVTPC, LVT0, LVT1, LVTERR, 0x10 apart */
#define APIC_LVT0 0x350
#define APIC_TMCCT 0x390
#define APIC_LVT_MASKED 0x10000u
#define APIC_MODE_EXTINT 0x700u
#define KVM_APIC_LVT_NUM 6 /* Linux 6.1 (CMCI came in 6.3) */
/* kvm_apic_set_version(): APIC_VERSION 0x14, max LVT entry; no directed EOI with an IOAPIC. */
#define KVM_APIC_LVR (0x14u | (uint32_t)(KVM_APIC_LVT_NUM - 1) << 16)

static void apic_put(struct kvm_lapic_state *s, unsigned off, uint32_t val)
{
	memcpy(&s->regs[off], &val, sizeof(val));
}

/*
 * kvm_lapic_reset(): xAPIC ID = vcpu_id, the version, every LVT masked but
 * LINT0 of the BSP (ExtINT, KVM_X86_QUIRK_LINT0_REENABLED), DFR flat,
 * SPIV 0xff (software-disabled); everything else zero.
 */
static void lapic_reset(struct mock_vcpu *v)
{
	memset(&v->lapic, 0, sizeof(v->lapic));
	apic_put(&v->lapic, APIC_ID, (v->id & 0xffu) << 24);
	apic_put(&v->lapic, APIC_LVR, KVM_APIC_LVR);
	for (unsigned i = 0; i < KVM_APIC_LVT_NUM; i++)
		apic_put(&v->lapic, APIC_LVTT + 0x10 * i, APIC_LVT_MASKED);
	if (v->id == 0) /* kvm->arch.bsp_vcpu_id */
		apic_put(&v->lapic, APIC_LVT0, APIC_MODE_EXTINT);
	apic_put(&v->lapic, APIC_DFR, 0xffffffffu);
	apic_put(&v->lapic, APIC_SPIV, 0xffu);
}

/*
 * kvm_apic_set_state() in xAPIC mode: the page is taken as given (the APIC
 * ID included), then KVM rewrites the version register and zeroes the
 * current-count register (the model's timer never counts).
 */
static void set_lapic(struct mock_vcpu *v, unsigned long arg)
{
	memcpy(&v->lapic, (const void *)(uintptr_t)arg, sizeof(v->lapic));
	apic_put(&v->lapic, APIC_LVR, KVM_APIC_LVR);
	apic_put(&v->lapic, APIC_TMCCT, 0);
}

/* What the §8 state is after vCPU creation (kvm_vcpu_reset(), fpstate init). */
/*
 * KVM_SET_TSC_KHZ (arch/x86/kvm/x86.c, kvm_set_tsc_khz()): 0 is the host's
 * rate; the modelled host cannot scale its TSC, so a rate within 250 ppm
 * of the host's is taken as it, a faster one is caught up with, and a
 * slower one refused (EINVAL).
 */
static int set_tsc_khz(struct mock_vcpu *v, unsigned long arg)
{
	uint32_t khz = (uint32_t)arg;
	uint64_t tol = (uint64_t)MOCK_HOST_TSC_KHZ * 250 / 1000000;

	if (khz == 0)
		khz = MOCK_HOST_TSC_KHZ;
	if (khz < MOCK_HOST_TSC_KHZ - tol)
		return -EINVAL;
	v->tsc_khz = khz;
	return 0;
}

static void x86_state_reset(struct mock_vcpu *v)
{
	uint8_t *xs = (uint8_t *)&v->xsave;
	const uint16_t fcw = 0x37f;
	const uint32_t mxcsr = 0x1f80;
	const uint64_t bv = XFEATURE_FP | XFEATURE_SSE;

	for (size_t i = 0; i < MOCK_X86_NMSRS; i++)
		v->msr[i] = msr_table[i].reset;
	memset(&v->xsave, 0, sizeof(v->xsave));
	memcpy(xs + XSAVE_FCW, &fcw, sizeof(fcw));
	memcpy(xs + XSAVE_MXCSR, &mxcsr, sizeof(mxcsr));
	memcpy(xs + XSAVE_XSTATE_BV, &bv, sizeof(bv));
	v->xcr0 = XFEATURE_FP;
	v->tsc_khz = MOCK_HOST_TSC_KHZ;
	memset(&v->dbg, 0, sizeof(v->dbg));
	v->dbg.dr6 = 0xffff0ff0u; /* DR6_ACTIVE_LOW */
	v->dbg.dr7 = 0x400u;      /* DR7_FIXED_1 */
	memset(&v->events, 0, sizeof(v->events));
	lapic_reset(v);
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
	case KVM_GET_MSRS:
	case KVM_SET_MSRS:
		return msr_io(v, req == KVM_SET_MSRS, arg);
	case KVM_GET_TSC_KHZ:
		return (int)v->tsc_khz;
	case KVM_SET_TSC_KHZ:
		return set_tsc_khz(v, arg);
	case KVM_GET_XSAVE:
	case KVM_GET_XSAVE2: /* guest_fpu.uabi_size bytes: 4096 on the model */
		memcpy((void *)(uintptr_t)arg, &v->xsave, sizeof(v->xsave));
		return 0;
	case KVM_SET_XSAVE:
		return set_xsave(v, arg);
	case KVM_GET_XCRS:
		get_xcrs(v, arg);
		return 0;
	case KVM_SET_XCRS:
		return set_xcrs(v, arg);
	case KVM_GET_DEBUGREGS:
		get_debugregs(v, arg);
		return 0;
	case KVM_SET_DEBUGREGS:
		return set_debugregs(v, arg);
	case KVM_GET_VCPU_EVENTS:
		get_vcpu_events(v, arg);
		return 0;
	case KVM_SET_VCPU_EVENTS:
		return set_vcpu_events(v, arg);
	case KVM_GET_LAPIC:
	case KVM_SET_LAPIC:
		/* kvm_arch_vcpu_ioctl: r = -EINVAL; if (!lapic_in_kernel(vcpu)) goto out; */
		if (!v->vm->irqchip)
			return -EINVAL;
		if (req == KVM_SET_LAPIC)
			set_lapic(v, arg);
		else
			memcpy((void *)(uintptr_t)arg, &v->lapic, sizeof(v->lapic));
		return 0;
	case KVM_GET_REG_LIST:
		return get_reg_list(v, arg);
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
		return vcpu_attr(m, v, req, arg); /* arm64's PMUv3 group only */
	case KVM_ARM_VCPU_FINALIZE:
		return vcpu_finalize(v, arg);
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
