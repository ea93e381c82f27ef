// SPDX-License-Identifier: MIT
/*
 * KVM_RUN of the modelled driver and the scripted guest behind it.
 *
 * One KVM_RUN does what the kernel does: first it completes the exit the
 * VMM was handed last time (loading an MMIO/PIO read into the destination
 * register, RAX from hypercall.ret, advancing the arm64 PC), checking what
 * the VMM wrote back against the script; then it honours immediate_exit;
 * then the guest runs steps until one of them exits to userspace.
 *
 * Section references (§) are to doc/abi/kvm.md.
 */
#define _GNU_SOURCE
#include "mock.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>

/* PSCI return codes and function ids the in-kernel PSCI answers (§6.2). */
#define PSCI_RET_SUCCESS 0ull
#define PSCI_RET_NOT_SUPPORTED ((uint64_t)-1)
#define PSCI_RET_INVALID_PARAMS ((uint64_t)-2)
#define PSCI_RET_ALREADY_ON ((uint64_t)-4)
#define PSCI_RET_INTERNAL_FAILURE ((uint64_t)-6)
#define PSCI_FN(n) (0x84000000u + (n))
#define PSCI_FN64(n) (0xc4000000u + (n))
#define PSCI_VERSION PSCI_FN(0)
#define PSCI_CPU_OFF PSCI_FN(2)
#define PSCI_CPU_ON PSCI_FN(3)
#define PSCI_AFFINITY_INFO PSCI_FN(4)
#define PSCI_SYSTEM_OFF PSCI_FN(8)
#define PSCI_SYSTEM_RESET PSCI_FN(9)
#define PSCI_FEATURES PSCI_FN(10)
#define PSCI_SYSTEM_SUSPEND PSCI_FN(14)
#define PSCI_SYSTEM_RESET2 PSCI_FN(18)
#define SMCCC_VERSION 0x80000000u
#define SMCCC_VERSION_1_1 0x10001ull
#define PSCI_VERSION_1_1 0x10001ull
#define MPIDR_AFF_MASK 0xff00ffffffull

/* A guest that spins this long without a kick is a hung test, not a guest. */
#define SPIN_LIMIT_NS (30ull * 1000000000ull)
#define SPIN_TICK_NS 5000000L

enum step_result {
	STEP_NEXT,  /* done without an exit: run the next step */
	STEP_EXIT,  /* an exit was delivered: KVM_RUN returns */
	STEP_ERROR, /* the script cannot run here: KVM_RUN fails */
};

static uint64_t sign_extend(uint64_t v, uint32_t len)
{
	uint64_t sign = 1ull << (8 * len - 1);

	return len >= 8 ? v : ((v & mock_len_mask(len)) ^ sign) - sign;
}

static bool arm(const struct mock_vcpu *v)
{
	return mock_is_arm64(v->vm->mock);
}

/* ------------------------------------------------------------------------ */
/* Registers as the guest's instructions see them                            */

/* Where a load lands: arm64 xN (N = @reg), x86 RAX for 0, else a VCPU_REG_* id. */
static uint64_t dest_reg(const struct mock_vcpu *v, uint64_t reg)
{
	if (arm(v))
		return reg <= 30 ? VCPU_REG_ARM64_X(reg) : reg;
	return reg ? reg : VCPU_REG_X86_RAX;
}

/*
 * Put a loaded value into its register the way the instruction would:
 * arm64 loads zero-extend (LDRS* sign-extend) to 64 bits; x86 MOV of 1 or 2
 * bytes keeps the rest of the register, 4 bytes zero-extends, MOVSX
 * sign-extends.
 */
static void load_into(struct mock_vcpu *v, const struct vcpu_mock_step *s, uint32_t len,
		      uint64_t value)
{
	uint64_t reg = dest_reg(v, s->reg), old = 0, val = value & mock_len_mask(len);

	if (s->flags & VCPU_MOCK_SIGN_EXTEND)
		val = sign_extend(val, len);
	else if (!arm(v) && len < 4 && mock_reg_get(v, reg, &old) == 0)
		val |= old & ~mock_len_mask(len);
	if (mock_reg_set(v, reg, val) < 0)
		mock_fail(v->vm->mock, "vCPU %u: script register 0x%llx does not exist", v->id,
			  (unsigned long long)s->reg);
}

static uint64_t xreg(const struct mock_vcpu *v, unsigned n)
{
	return v->core[n];
}

static void advance_pc(struct mock_vcpu *v)
{
	if (arm(v))
		v->core[CORE_PC] += 4; /* every A64 instruction is 4 bytes */
}

/* The guest's view after a call: x0..x(nexpect-1), or RAX on x86. */
static void check_results(struct vcpu_mock *m, struct mock_vcpu *v, size_t index,
			  const struct vcpu_mock_step *s)
{
	for (uint32_t i = 0; i < s->nexpect && i < 4; i++) {
		uint64_t got = arm(v) ? xreg(v, i) : v->regs.rax;

		if (got != s->expect[i])
			mock_fail(m, "vCPU %u step %zu: after call 0x%llx the guest expected %s%u = 0x%llx, "
				  "got 0x%llx", v->id, index, (unsigned long long)s->value,
				  arm(v) ? "x" : "rax/", i, (unsigned long long)s->expect[i],
				  (unsigned long long)got);
		if (!arm(v))
			break; /* x86 returns one value */
	}
}

/* ------------------------------------------------------------------------ */
/* Completing the previous exit (§5)                                         */

/*
 * arm64 kvm_arch_vcpu_ioctl_run() completes an MMIO access only when
 * kvm_run.exit_reason still reads KVM_EXIT_MMIO; otherwise the guest
 * re-executes the access and exits with it again (returns true).
 */
static bool complete_pending(struct vcpu_mock *m, struct mock_vcpu *v)
{
	struct kvm_run *run = v->run;
	const struct vcpu_mock_step *s = &v->pending_step;
	size_t idx = v->pending_index;
	enum mock_pending p = v->pending;
	uint64_t got, want;
	uint32_t len, count;
	const uint8_t *data;

	v->pending = PEND_NONE;
	switch (p) {
	case PEND_MMIO_READ:
	case PEND_MMIO_WRITE:
		if (arm(v) && __atomic_load_n(&run->exit_reason, __ATOMIC_RELAXED) != KVM_EXIT_MMIO) {
			v->pending = p;
			return true;
		}
		if (p == PEND_MMIO_READ) {
			len = s->op == VCPU_MOCK_MMIO_READ ? s->len : 8;
			got = mock_le_get(run->u.mmio.data, len);
			want = s->value & mock_len_mask(len);
			if (got != want)
				mock_fail(m, "vCPU %u step %zu: MMIO read of %u bytes at 0x%llx returned "
					  "0x%llx, the guest expected 0x%llx", v->id, idx, len,
					  (unsigned long long)s->addr, (unsigned long long)got,
					  (unsigned long long)want);
			load_into(v, s, len, got);
		}
		advance_pc(v);
		return false;
	case PEND_PIO_IN:
		len = s->len;
		count = s->count ? s->count : 1;
		data = (const uint8_t *)run + m->page_size * KVM_PIO_PAGE_OFFSET;
		for (uint32_t i = 0; i < count; i++) {
			got = mock_le_get(data + (size_t)i * len, len);
			want = (s->value + i) & mock_len_mask(len);
			if (got != want) {
				mock_fail(m, "vCPU %u step %zu: IN from port 0x%llx item %u returned "
					  "0x%llx, the guest expected 0x%llx", v->id, idx,
					  (unsigned long long)s->addr, i, (unsigned long long)got,
					  (unsigned long long)want);
				break;
			}
		}
		load_into(v, s, len, mock_le_get(data, len));
		return false;
	case PEND_HYPERCALL:
		/* complete_hypercall_exit(): KVM copies ret to RAX, 32 bits outside long mode. */
		if (!arm(v))
			v->regs.rax = run->u.hypercall.flags & KVM_HYPERCALL_LONGMODE ?
					      run->u.hypercall.ret : (uint32_t)run->u.hypercall.ret;
		check_results(m, v, idx, s);
		return false;
	case PEND_EXPECT_X0:
		check_results(m, v, idx, s);
		return false;
	case PEND_PIO_OUT:
	case PEND_PLAIN:
	case PEND_NONE:
	default:
		return false;
	}
}

/* ------------------------------------------------------------------------ */
/* Waiting for a kick (a spinning guest, a powered-off arm64 vCPU)           */

/* The kernel's 64-bit sigset (bit n-1 = signal n) as a glibc sigset_t. */
static void to_sigset(uint64_t kset, sigset_t *set)
{
	sigemptyset(set);
	for (int n = 1; n <= 64; n++)
		if (kset & (1ull << (n - 1)))
			sigaddset(set, n); /* glibc refuses its reserved 32/33: leave them out */
}

/* A signal is pending for this thread that the vCPU's KVM_SET_SIGNAL_MASK mask does not block. */
static bool unblocked_pending(const struct mock_vcpu *v)
{
	sigset_t pending, mask;

	if (sigpending(&pending) < 0)
		return false;
	to_sigset(v->sigmask, &mask);
	for (int n = 1; n <= 64; n++)
		if (n != 32 && n != 33 && /* glibc's own: never the VMM's */
		    sigismember(&pending, n) == 1 && sigismember(&mask, n) == 0)
			return true;
	return false;
}

static bool runnable(const struct mock_vcpu *v)
{
	return mock_mp_state(v) != KVM_MP_STATE_STOPPED;
}

/*
 * Sleep in "guest mode" until @done(v) holds (NULL: never), immediate_exit
 * is set (with KVM_CAP_IMMEDIATE_EXIT) or a signal arrives.  Like the
 * kernel, a signal is taken with the KVM_SET_SIGNAL_MASK mask in force.
 * Drops the mock lock while asleep.  0 when @done, -EINTR when kicked.
 */
static int wait_guest(struct vcpu_mock *m, struct mock_vcpu *v, bool (*done)(const struct mock_vcpu *))
{
	const bool ie_cap = !(m->cfg.flags & VCPU_MOCK_NO_IMMEDIATE_EXIT);
	const struct timespec tick = { .tv_sec = 0, .tv_nsec = SPIN_TICK_NS };
	uint64_t waited = 0;
	sigset_t mask;
	int r;

	if (v->sigmask_set)
		to_sigset(v->sigmask, &mask);
	for (;;) {
		if (done && done(v))
			return 0;
		if (ie_cap && __atomic_load_n(&v->run->immediate_exit, __ATOMIC_ACQUIRE))
			return -EINTR;
		if (waited >= SPIN_LIMIT_NS) {
			mock_fail(m, "vCPU %u: the guest waited %llu s without a kick", v->id,
				  (unsigned long long)(SPIN_LIMIT_NS / 1000000000ull));
			return -EIO;
		}
		pthread_mutex_unlock(&m->lock);
		r = ppoll(NULL, 0, &tick, v->sigmask_set ? &mask : NULL);
		pthread_mutex_lock(&m->lock);
		if (r < 0 && errno == EINTR)
			return -EINTR;
		waited += SPIN_TICK_NS;
	}
}

/* ------------------------------------------------------------------------ */
/* Exits                                                                      */

static void begin_exit(struct kvm_run *run, uint32_t reason)
{
	memset(&run->u, 0, sizeof(run->u));
	run->flags = 0;
	__atomic_store_n(&run->exit_reason, reason, __ATOMIC_RELAXED);
}

static void pend(struct mock_vcpu *v, enum mock_pending p, size_t idx,
		 const struct vcpu_mock_step *s)
{
	v->pending = p;
	v->pending_index = idx;
	if (s != &v->pending_step) /* a replayed access re-uses its own copy */
		v->pending_step = *s;
}

static void exit_mmio(struct mock_vcpu *v, size_t idx, const struct vcpu_mock_step *s,
		      uint32_t len, bool write)
{
	struct kvm_run *run = v->run;

	begin_exit(run, KVM_EXIT_MMIO);
	run->u.mmio.phys_addr = s->addr;
	run->u.mmio.len = len;
	run->u.mmio.is_write = write;
	if (write)
		mock_le_put(run->u.mmio.data, s->value, len);
	pend(v, write ? PEND_MMIO_WRITE : PEND_MMIO_READ, idx, s);
}

static void exit_pio(struct vcpu_mock *m, struct mock_vcpu *v, size_t idx,
		     const struct vcpu_mock_step *s, bool out)
{
	struct kvm_run *run = v->run;
	uint32_t count = s->count ? s->count : 1;
	uint8_t *data = (uint8_t *)run + m->page_size * KVM_PIO_PAGE_OFFSET;

	begin_exit(run, KVM_EXIT_IO);
	run->u.io.direction = out ? KVM_EXIT_IO_OUT : KVM_EXIT_IO_IN;
	run->u.io.size = (uint8_t)s->len;
	run->u.io.port = (uint16_t)s->addr;
	run->u.io.count = count;
	run->u.io.data_offset = m->page_size * KVM_PIO_PAGE_OFFSET;
	for (uint32_t i = 0; i < count; i++)
		mock_le_put(data + (size_t)i * s->len, out ? s->value + i : 0xa5a5a5a5a5a5a5a5ull, s->len);
	pend(v, out ? PEND_PIO_OUT : PEND_PIO_IN, idx, s);
}

static void exit_system_event(struct mock_vcpu *v, uint32_t type, uint32_t ndata,
			      const uint64_t *data)
{
	struct kvm_run *run = v->run;

	begin_exit(run, KVM_EXIT_SYSTEM_EVENT);
	run->u.system_event.type = type;
	run->u.system_event.ndata = ndata;
	memcpy(run->u.system_event.data, data, ndata * sizeof(data[0]));
}

/* ------------------------------------------------------------------------ */
/* arm64 SMCCC calls the modelled kernel handles itself (PSCI)               */

static struct mock_vcpu *vcpu_by_mpidr(struct mock_vm *vm, uint64_t mpidr)
{
	for (uint32_t i = 0; i < vm->mock->cfg.max_vcpus; i++) {
		struct mock_vcpu *t = vm->vcpus[i];

		if (t && t->initialised && (mock_mpidr(t) & MPIDR_AFF_MASK) == (mpidr & MPIDR_AFF_MASK))
			return t;
	}
	return NULL;
}

static bool psci_implemented(const struct mock_vcpu *v, uint32_t fn)
{
	switch (fn) {
	case PSCI_VERSION:
	case PSCI_CPU_OFF:
	case PSCI_CPU_ON:
	case PSCI_FN64(3):
	case PSCI_AFFINITY_INFO:
	case PSCI_FN64(4):
	case PSCI_SYSTEM_OFF:
	case PSCI_SYSTEM_RESET:
	case PSCI_FEATURES:
	case PSCI_SYSTEM_RESET2:
	case PSCI_FN64(18):
		return true;
	case PSCI_SYSTEM_SUSPEND:
	case PSCI_FN64(14):
		return v->vm->system_suspend;
	default:
		return false;
	}
}

/*
 * Linux smccc_set_retval(vcpu, x0, 0, 0, 0): a call the kernel answers
 * itself leaves zeros in x1..x3, not the caller's arguments.
 */
static void smccc_ret(struct mock_vcpu *v, uint64_t x0)
{
	v->core[0] = x0;
	v->core[1] = v->core[2] = v->core[3] = 0;
}

/*
 * kvm_psci_call() for PSCI 1.1.  Returns true when the call became a system
 * event exit (x0 then holds what a resumed guest sees).
 */
static bool psci_call(struct mock_vcpu *v, uint32_t fn)
{
	static const uint64_t no_flags[1] = { 0 };
	static const uint64_t reset2[1] = { KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2 };
	struct mock_vcpu *t;

	if (!(v->features & (1u << KVM_ARM_VCPU_PSCI_0_2)) || !psci_implemented(v, fn)) {
		smccc_ret(v, PSCI_RET_NOT_SUPPORTED);
		return false;
	}
	switch (fn) {
	case PSCI_VERSION:
		smccc_ret(v, PSCI_VERSION_1_1);
		return false;
	case PSCI_FEATURES:
		smccc_ret(v, psci_implemented(v, (uint32_t)xreg(v, 1)) ? PSCI_RET_SUCCESS
								      : PSCI_RET_NOT_SUPPORTED);
		return false;
	case PSCI_CPU_OFF:
		mock_set_mp_state(v, KVM_MP_STATE_STOPPED);
		smccc_ret(v, PSCI_RET_SUCCESS);
		return false;
	case PSCI_CPU_ON:
	case PSCI_FN64(3):
		t = vcpu_by_mpidr(v->vm, xreg(v, 1));
		if (!t) {
			smccc_ret(v, PSCI_RET_INVALID_PARAMS);
		} else if (runnable(t)) {
			smccc_ret(v, PSCI_RET_ALREADY_ON);
		} else {
			/* The target starts at x2 with x0 = x3, in AArch64 EL1h. */
			t->core[CORE_PC] = fn == PSCI_CPU_ON ? (uint32_t)xreg(v, 2) : xreg(v, 2);
			t->core[0] = fn == PSCI_CPU_ON ? (uint32_t)xreg(v, 3) : xreg(v, 3);
			mock_set_mp_state(t, KVM_MP_STATE_RUNNABLE);
			smccc_ret(v, PSCI_RET_SUCCESS);
		}
		return false;
	case PSCI_AFFINITY_INFO:
	case PSCI_FN64(4):
		t = vcpu_by_mpidr(v->vm, xreg(v, 1));
		smccc_ret(v, !t ? PSCI_RET_INVALID_PARAMS : runnable(t) ? 0 : 1);
		return false;
	case PSCI_SYSTEM_OFF:
	case PSCI_SYSTEM_RESET:
		/* A guest resumed after SYSTEM_OFF/RESET sees INTERNAL_FAILURE (Linux psci.c). */
		smccc_ret(v, PSCI_RET_INTERNAL_FAILURE);
		exit_system_event(v, fn == PSCI_SYSTEM_OFF ? KVM_SYSTEM_EVENT_SHUTDOWN
							   : KVM_SYSTEM_EVENT_RESET, 1, no_flags);
		return true;
	case PSCI_SYSTEM_RESET2:
	case PSCI_FN64(18):
		/* Only x0: x1 and x2 still hold the reset type and cookie. */
		v->core[0] = PSCI_RET_INTERNAL_FAILURE;
		exit_system_event(v, KVM_SYSTEM_EVENT_RESET, 1, reset2);
		return true;
	default: /* SYSTEM_SUSPEND, enabled */
		exit_system_event(v, KVM_SYSTEM_EVENT_SUSPEND, 1, no_flags);
		return true;
	}
}

static enum step_result arm64_hypercall(struct vcpu_mock *m, struct mock_vcpu *v, size_t idx,
					const struct vcpu_mock_step *s)
{
	uint32_t fn = (uint32_t)s->value; /* SMCCC: the function id is w0 */
	struct kvm_run *run = v->run;

	if (s->ndata > 7) {
		mock_fail(m, "vCPU %u step %zu: an SMCCC call has at most 7 arguments", v->id, idx);
		return STEP_ERROR;
	}
	v->core[0] = s->value;
	for (uint32_t i = 0; i < s->ndata; i++)
		v->core[1 + i] = s->args[i];
	advance_pc(v); /* §5: PC already points past the HVC/SMC at the exit */
	switch (mock_smccc_action(v->vm, fn)) {
	case KVM_SMCCC_FILTER_FWD_TO_USER:
		begin_exit(run, KVM_EXIT_HYPERCALL);
		run->u.hypercall.nr = fn;
		run->u.hypercall.flags = s->flags & VCPU_HYPERCALL_SMC ? KVM_HYPERCALL_EXIT_SMC : 0;
		pend(v, PEND_HYPERCALL, idx, s);
		return STEP_EXIT;
	case KVM_SMCCC_FILTER_DENY:
		smccc_ret(v, PSCI_RET_NOT_SUPPORTED);
		break;
	default:
		if ((fn & 0xbfffffe0u) == PSCI_FN(0)) { /* PSCI, SMC32 or SMC64 */
			if (psci_call(v, fn)) {
				pend(v, PEND_EXPECT_X0, idx, s);
				return STEP_EXIT;
			}
		} else {
			smccc_ret(v, fn == SMCCC_VERSION ? SMCCC_VERSION_1_1
							 : PSCI_RET_NOT_SUPPORTED);
		}
		break;
	}
	check_results(m, v, idx, s);
	return STEP_NEXT;
}

/*
 * kvm_emulate_hypercall() (arch/x86/kvm/x86.c): outside 64-bit mode the
 * number, arguments and result are 32 bits.  Only a number the VM enabled
 * with KVM_CAP_EXIT_HYPERCALL exits (MAP_GPA_RANGE, after checking its
 * arguments: -KVM_EINVAL for an unaligned GPA, no pages or a wrapping
 * range); KVM answers every other one in RAX, -KVM_ENOSYS for a number it
 * does not know, and the guest goes on.
 */
#define KVM_ENOSYS 1000
#define KVM_EINVAL 22

static enum step_result x86_hypercall(struct vcpu_mock *m, struct mock_vcpu *v, size_t idx,
				      const struct vcpu_mock_step *s)
{
	struct kvm_run *run = v->run;
	const bool longmode = s->flags & VCPU_HYPERCALL_LONGMODE;
	const uint64_t nr = longmode ? s->value : (uint32_t)s->value;
	uint64_t a[6] = { 0 }, ret;

	for (uint32_t i = 0; i < s->ndata && i < 6; i++)
		a[i] = longmode ? s->args[i] : (uint32_t)s->args[i];
	if (nr != KVM_HC_MAP_GPA_RANGE || !(v->vm->hc_exit & MOCK_HC_EXIT_VALID)) {
		ret = (uint64_t)-KVM_ENOSYS;
	} else if ((a[0] & 0xfff) || !a[1] || (a[0] >> 12) + a[1] <= (a[0] >> 12)) {
		ret = (uint64_t)-KVM_EINVAL;
	} else {
		begin_exit(run, KVM_EXIT_HYPERCALL);
		run->u.hypercall.nr = nr;
		for (uint32_t i = 0; i < 3; i++)
			run->u.hypercall.args[i] = a[i];
		run->u.hypercall.ret = 0;
		run->u.hypercall.flags = longmode ? KVM_HYPERCALL_LONGMODE : 0;
		pend(v, PEND_HYPERCALL, idx, s);
		return STEP_EXIT;
	}
	v->regs.rax = longmode ? ret : (uint32_t)ret;
	check_results(m, v, idx, s);
	return STEP_NEXT;
}

/* ------------------------------------------------------------------------ */
/* One step                                                                   */

static enum step_result wrong_arch(struct vcpu_mock *m, struct mock_vcpu *v, size_t idx,
				   const char *what)
{
	mock_fail(m, "vCPU %u step %zu: %s is not possible on %s", v->id, idx, what,
		  arm(v) ? "arm64" : "x86_64");
	return STEP_ERROR;
}

/*
 * kvm_cpuid() (arch/x86/kvm/cpuid.c): the entry KVM_SET_CPUID2 gave for the
 * leaf, matched on the subleaf only where the entry says it is significant.
 */
static void x86_cpuid(struct mock_vcpu *v, uint32_t leaf, uint32_t subleaf)
{
	uint32_t out[4] = { 0 };

	for (uint32_t i = 0; i < v->ncpuid; i++) {
		const struct kvm_cpuid_entry2 *e = &v->cpuid[i];

		if (e->function != leaf ||
		    ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != subleaf))
			continue;
		out[0] = e->eax;
		out[1] = e->ebx;
		out[2] = e->ecx;
		out[3] = e->edx;
		break;
	}
	mock_reg_set(v, VCPU_REG_X86_RAX, out[0]);
	mock_reg_set(v, VCPU_REG_X86_RBX, out[1]);
	mock_reg_set(v, VCPU_REG_X86_RCX, out[2]);
	mock_reg_set(v, VCPU_REG_X86_RDX, out[3]);
}

static enum step_result run_step(struct vcpu_mock *m, struct mock_vcpu *v, size_t idx,
				 const struct vcpu_mock_step *s, int *rc)
{
	struct kvm_run *run = v->run;
	struct vcpu_mock_step as_mmio;
	uint64_t val;
	void *host;

	*rc = 0;
	switch (s->op) {
	case VCPU_MOCK_MMIO_WRITE:
	case VCPU_MOCK_MMIO_READ:
		/* x86 in-kernel PIC/PIT/IOAPIC/LAPIC: KVM emulates the access, no exit. */
		if (mock_kvm_in_kernel_device(v, false, s->addr))
			return STEP_NEXT;
		if (s->op == VCPU_MOCK_MMIO_WRITE &&
		    mock_kvm_ioeventfd_write(v->vm, false, s->addr, s->len,
					     s->value & mock_len_mask(s->len)))
			return STEP_NEXT;
		exit_mmio(v, idx, s, s->len, s->op == VCPU_MOCK_MMIO_WRITE);
		return STEP_EXIT;
	case VCPU_MOCK_PIO_OUT:
	case VCPU_MOCK_PIO_IN:
		if (arm(v))
			return wrong_arch(m, v, idx, "port I/O");
		if (mock_kvm_in_kernel_device(v, true, s->addr))
			return STEP_NEXT;
		if (s->op == VCPU_MOCK_PIO_OUT && (s->count ? s->count : 1) == 1 &&
		    mock_kvm_ioeventfd_write(v->vm, true, s->addr, s->len,
					     s->value & mock_len_mask(s->len)))
			return STEP_NEXT;
		exit_pio(m, v, idx, s, s->op == VCPU_MOCK_PIO_OUT);
		return STEP_EXIT;
	case VCPU_MOCK_HYPERCALL:
		return arm(v) ? arm64_hypercall(m, v, idx, s) : x86_hypercall(m, v, idx, s);
	case VCPU_MOCK_SYSTEM_EVENT:
		exit_system_event(v, (uint32_t)s->value, s->ndata, s->args);
		pend(v, PEND_PLAIN, idx, s);
		return STEP_EXIT;
	case VCPU_MOCK_INTERNAL_ERROR:
		begin_exit(run, KVM_EXIT_INTERNAL_ERROR);
		run->u.internal.suberror = (uint32_t)s->value;
		run->u.internal.ndata = s->ndata;
		memcpy(run->u.internal.data, s->args, s->ndata * sizeof(s->args[0]));
		pend(v, PEND_PLAIN, idx, s);
		return STEP_EXIT;
	case VCPU_MOCK_FAIL_ENTRY:
		begin_exit(run, KVM_EXIT_FAIL_ENTRY);
		run->u.fail_entry.hardware_entry_failure_reason = s->value;
		run->u.fail_entry.cpu = s->count;
		pend(v, PEND_PLAIN, idx, s);
		return STEP_EXIT;
	case VCPU_MOCK_MEMORY_FAULT:
		/* KVM_CAP_MEMORY_FAULT_INFO: the run call fails, the exit says why. */
		begin_exit(run, KVM_EXIT_MEMORY_FAULT);
		run->u.memory_fault.flags = s->value;
		run->u.memory_fault.gpa = s->addr;
		run->u.memory_fault.size = s->len;
		pend(v, PEND_PLAIN, idx, s);
		*rc = -EFAULT;
		return STEP_EXIT;
	case VCPU_MOCK_RAW:
		begin_exit(run, (uint32_t)s->value);
		memcpy(&run->u, s->raw, sizeof(run->u));
		pend(v, PEND_PLAIN, idx, s);
		*rc = s->err > 0 ? -s->err : s->err;
		return STEP_EXIT;
	case VCPU_MOCK_HLT:
		if (arm(v))
			return wrong_arch(m, v, idx, "HLT");
		/* kvm_emulate_halt() skips the 1-byte HLT before it exits: RIP is past it. */
		v->regs.rip++;
		/*
		 * __kvm_emulate_halt(): with an in-kernel LAPIC the vCPU halts inside
		 * KVM_RUN until an interrupt is pending, never exiting for it.  The
		 * mock has the waking interrupt pending at once: the guest goes on.
		 */
		if (v->vm->irqchip)
			return STEP_NEXT;
		begin_exit(run, KVM_EXIT_HLT);
		pend(v, PEND_PLAIN, idx, s);
		return STEP_EXIT;
	case VCPU_MOCK_MEM_CHECK:
		if (mock_vm_translate(v->vm, s->addr, 8, false, &host)) {
			memcpy(&val, host, sizeof(val)); /* guest RAM is little-endian like the host */
			if (val != s->value)
				mock_fail(m, "vCPU %u step %zu: guest RAM at 0x%llx holds 0x%llx, "
					  "expected 0x%llx", v->id, idx, (unsigned long long)s->addr,
					  (unsigned long long)val, (unsigned long long)s->value);
			return STEP_NEXT;
		}
		as_mmio = *s; /* no RAM there: the load exits as MMIO */
		exit_mmio(v, idx, &as_mmio, 8, false);
		return STEP_EXIT;
	case VCPU_MOCK_MEM_WRITE:
		if (mock_vm_translate(v->vm, s->addr, 8, true, &host)) {
			memcpy(host, &s->value, sizeof(s->value));
			mock_vm_mark_dirty(v->vm, s->addr, 8);
			return STEP_NEXT;
		}
		exit_mmio(v, idx, s, 8, true);
		return STEP_EXIT;
	case VCPU_MOCK_REG_CHECK:
		if (mock_reg_get(v, s->reg, &val) < 0) {
			mock_fail(m, "vCPU %u step %zu: no register 0x%llx on this architecture", v->id,
				  idx, (unsigned long long)s->reg);
			return STEP_ERROR;
		}
		if (val != s->value)
			mock_fail(m, "vCPU %u step %zu: register 0x%llx holds 0x%llx, expected 0x%llx",
				  v->id, idx, (unsigned long long)s->reg, (unsigned long long)val,
				  (unsigned long long)s->value);
		return STEP_NEXT;
	case VCPU_MOCK_REG_SET:
		if (mock_reg_set(v, s->reg, s->value) < 0) {
			mock_fail(m, "vCPU %u step %zu: no register 0x%llx on this architecture",
				  v->id, idx, (unsigned long long)s->reg);
			return STEP_ERROR;
		}
		return STEP_NEXT;
	case VCPU_MOCK_X86_CPUID:
		x86_cpuid(v, (uint32_t)s->value, s->count);
		return STEP_NEXT;
	default: /* VCPU_MOCK_SPIN is handled by the caller; others were refused when stored */
		mock_fail(m, "vCPU %u step %zu: unknown op %u", v->id, idx, s->op);
		return STEP_ERROR;
	}
}

/* ------------------------------------------------------------------------ */

/* A spinning guest ends when kicked: the step is done, KVM_RUN says EINTR. */
static int spin(struct vcpu_mock *m, struct mock_vcpu *v)
{
	struct mock_script *s = mock_script_find(m, v->id);
	unsigned gen = s->gen;
	size_t pos = s->pos;
	int r = wait_guest(m, v, NULL);

	/* The script may have been replaced while the mock lock was dropped. */
	s = mock_script_find(m, v->id);
	if (r == -EINTR && s && s->gen == gen && s->pos == pos) {
		s->pos++;
		s->done++;
	}
	if (r == -EINTR)
		__atomic_store_n(&v->run->exit_reason, KVM_EXIT_INTR, __ATOMIC_RELAXED);
	return r;
}

int mock_vcpu_run(struct vcpu_mock *m, struct mock_vcpu *v)
{
	const bool ie_cap = !(m->cfg.flags & VCPU_MOCK_NO_IMMEDIATE_EXIT);
	struct kvm_run *run = v->run;
	struct mock_script *s;
	enum step_result res;
	size_t idx;
	int rc;

	/* §2/§4.6: an arm64 vCPU runs only after KVM_ARM_VCPU_INIT, §9 and its features' setup. */
	if (arm(v) && !v->initialised)
		return -ENOEXEC;
	if (arm(v) && (rc = mock_arm64_run_check(v)) < 0)
		return rc;
	/* The first run freezes the SMCCC filter and the vGIC configuration. */
	v->has_run = true;
	v->vm->has_run = true;

	if (complete_pending(m, v)) {
		/* arm64: the access was not completed, so the guest makes it again. */
		exit_mmio(v, v->pending_index, &v->pending_step,
			  v->pending_step.op == VCPU_MOCK_MMIO_READ ||
					  v->pending_step.op == VCPU_MOCK_MMIO_WRITE
				  ? v->pending_step.len
				  : 8,
			  v->pending == PEND_MMIO_WRITE);
		return 0;
	}
	/* §4.1: pending I/O is completed first, then immediate_exit is honoured. */
	if (ie_cap && __atomic_load_n(&run->immediate_exit, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&run->exit_reason, KVM_EXIT_INTR, __ATOMIC_RELAXED);
		return -EINTR;
	}
	/*
	 * kvm_sigset_activate(): KVM_RUN runs with the KVM_SET_SIGNAL_MASK mask,
	 * so a signal the thread keeps blocked but that mask lets through is
	 * "pending" in the kernel's eyes: the run fails with EINTR at once, and
	 * the signal stays pending when the thread's own mask is put back.
	 */
	if (v->sigmask_set && unblocked_pending(v)) {
		__atomic_store_n(&run->exit_reason, KVM_EXIT_INTR, __ATOMIC_RELAXED);
		return -EINTR;
	}

	for (;;) {
		/* A powered-off vCPU sleeps in KVM_RUN until PSCI CPU_ON or a signal. */
		if (!runnable(v)) {
			rc = wait_guest(m, v, runnable);
			if (rc < 0) {
				if (rc == -EINTR)
					__atomic_store_n(&run->exit_reason, KVM_EXIT_INTR,
							 __ATOMIC_RELAXED);
				return rc;
			}
		}
		s = mock_script_find(m, v->id);
		if (!s || s->pos >= s->nsteps) {
			mock_fail(m, "vCPU %u: the guest ran past the end of its script (%zu steps)",
				  v->id, s ? s->nsteps : 0);
			return -EIO;
		}
		idx = s->pos;
		if (s->steps[idx].op == VCPU_MOCK_SPIN)
			return spin(m, v);
		res = run_step(m, v, idx, &s->steps[idx], &rc);
		if (res == STEP_ERROR)
			return -EIO;
		s->pos++;
		s->done++;
		if (res == STEP_EXIT)
			return rc;
	}
}
