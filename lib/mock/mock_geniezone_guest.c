// SPDX-License-Identifier: MIT
/*
 * GZVM_RUN of the modelled GenieZone driver and the scripted guest behind it,
 * following gzvm_vcpu_run() of the posted v9 series (patch 09/21):
 *
 *   copy_from_user(run) -> EFAULT; padding1 != 0 -> EINVAL;
 *   immediate_exit == 1 -> EINTR (nothing copied back);
 *   while (!need_userspace && !signal_pending)
 *       enter the hypervisor (which first consumes the completion the VMM
 *       wrote: MMIO read data, hypercall results) and classify its exit;
 *   copy_to_user(run); signal_pending -> ERESTARTSYS.
 *
 * signal_pending is modelled for real: the calling thread's signals are
 * blocked for the duration of the call and sigpending() is asked where the
 * kernel asks.  ERESTARTSYS then becomes what user space sees: EINTR when
 * a pending signal's handler lacks SA_RESTART, else a transparent restart
 * (handlers run, the call starts over with a fresh copy-in).
 */
#define _GNU_SOURCE
#include "mock_geniezone.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#define SPIN_LIMIT_NS (30ull * 1000000000ull)
#define SPIN_TICK_NS 2000000L
/* Entries refused by immediate_exit in a row before the VMM is called stuck. */
#define IE_STREAK_LIMIT 10000u

enum hv_result {
	HV_NONE,     /* the step ran without an exit: the guest goes on */
	HV_INTERNAL, /* a kernel-internal exit: the loop re-enters */
	HV_USER,     /* an exit for user space */
	HV_ERROR,    /* the script cannot go on: the call fails with EIO */
};

/* ------------------------------------------------------------------------ */
/* copy_from_user / copy_to_user, except for the byte a kicker may write     */

#define IE_OFF offsetof(struct gzvm_vcpu_run, immediate_exit)

static void copy_in(struct gzvm_vcpu_run *k, unsigned long arg)
{
	const uint8_t *u = (const uint8_t *)(uintptr_t)arg;

	memcpy(k, u, IE_OFF);
	k->immediate_exit = __atomic_load_n(u + IE_OFF, __ATOMIC_ACQUIRE);
	memcpy((uint8_t *)k + IE_OFF + 1, u + IE_OFF + 1, sizeof(*k) - IE_OFF - 1);
}

static void copy_out(unsigned long arg, const struct gzvm_vcpu_run *k)
{
	uint8_t *u = (uint8_t *)(uintptr_t)arg;

	memcpy(u, k, IE_OFF);
	/*
	 * The kernel's copy of the flag: a kicker's 1 written meanwhile is
	 * lost (doc/abi/geniezone.md §7).
	 */
	__atomic_store_n(u + IE_OFF, k->immediate_exit, __ATOMIC_RELEASE);
	memcpy(u + IE_OFF + 1, (const uint8_t *)k + IE_OFF + 1, sizeof(*k) - IE_OFF - 1);
}

static uint8_t user_flag(unsigned long arg)
{
	return __atomic_load_n((const uint8_t *)(uintptr_t)arg + IE_OFF, __ATOMIC_ACQUIRE);
}

/* ------------------------------------------------------------------------ */
/* signal_pending()                                                           */

static bool signal_pending(const sigset_t *caller_mask)
{
	sigset_t p;

	if (sigpending(&p) < 0)
		return false;
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&p, s) == 1 && sigismember(caller_mask, s) != 1)
			return true;
	return false;
}

static bool default_ignored(int s)
{
	return s == SIGCHLD || s == SIGURG || s == SIGWINCH || s == SIGCONT;
}

/* Would every pending signal let the kernel restart the call? */
static bool restartable(const sigset_t *caller_mask)
{
	sigset_t p;
	struct sigaction sa;

	if (sigpending(&p) < 0)
		return false;
	for (int s = 1; s < NSIG; s++) {
		if (sigismember(&p, s) != 1 || sigismember(caller_mask, s) == 1)
			continue;
		if (sigaction(s, NULL, &sa) < 0)
			return false;
		if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN)
			continue;
		if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL && default_ignored(s))
			continue;
		if (!(sa.sa_flags & SA_RESTART))
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------------ */
/* Exits                                                                      */

static void begin_exit(struct gz_vcpu *v, uint32_t reason)
{
	memset(&v->run.u, 0, sizeof(v->run.u));
	v->run.exit_reason = reason;
}

static void pend(struct gz_vcpu *v, enum gz_pending p, size_t idx, const struct vcpu_mock_step *s)
{
	v->pending = p;
	v->pending_index = idx;
	if (s != &v->pending_step)
		v->pending_step = *s;
}

static void exit_mmio(struct gz_vcpu *v, size_t idx, const struct vcpu_mock_step *s,
		      uint32_t len, bool write)
{
	begin_exit(v, GZVM_EXIT_MMIO);
	v->run.u.mmio.phys_addr = s->addr;
	v->run.u.mmio.size = len;
	v->run.u.mmio.reg_nr = (uint32_t)s->reg;
	v->run.u.mmio.is_write = write;
	if (write)
		mock_le_put(v->run.u.mmio.data, s->value, len);
	pend(v, write ? GZP_MMIO_WRITE : GZP_MMIO_READ, idx, s);
}

static void exit_page_fault(struct gz_vcpu *v, size_t idx, const struct vcpu_mock_step *s)
{
	begin_exit(v, GZVM_EXIT_EXCEPTION);
	v->run.u.exception.exception = GZVM_EXCEPTION_PAGE_FAULT;
	v->run.u.exception.error_code = (uint32_t)s->value;
	v->run.u.exception.fault_gpa = s->addr;
	pend(v, GZP_PAGE_FAULT, idx, s);
}

/* ------------------------------------------------------------------------ */
/* The hypervisor consumes the completion at its next entry                   */

static void check_x(struct vcpu_mock *m, struct gz_vcpu *v, size_t idx,
		    const struct vcpu_mock_step *s)
{
	for (uint32_t i = 0; i < s->nexpect && i < 4; i++)
		if (v->core[i] != s->expect[i])
			mock_fail(m, "vCPU %u step %zu: after call 0x%llx the guest expected x%u = "
				  "0x%llx, got 0x%llx", v->id, idx, (unsigned long long)s->value, i,
				  (unsigned long long)s->expect[i], (unsigned long long)v->core[i]);
}

/* true: the access faults again (no memory was added): the same exit is re-raised. */
static bool complete_pending(struct vcpu_mock *m, struct gz_vcpu *v)
{
	const struct vcpu_mock_step *s = &v->pending_step;
	enum gz_pending p = v->pending;
	size_t idx = v->pending_index;
	uint64_t got, want, val;
	uint32_t len;
	void *host;

	v->pending = GZP_NONE;
	switch (p) {
	case GZP_MMIO_READ:
		len = (uint32_t)v->run.u.mmio.size;
		if (len == 0 || len > 8) {
			mock_fail(m, "vCPU %u step %zu: the VMM changed mmio.size to %u", v->id, idx, len);
			len = 8;
		}
		got = mock_le_get(v->run.u.mmio.data, len);
		want = s->value & mock_len_mask(len);
		if (got != want)
			mock_fail(m, "vCPU %u step %zu: MMIO read of %u bytes at 0x%llx returned 0x%llx, "
				  "the guest expected 0x%llx", v->id, idx, len,
				  (unsigned long long)s->addr, (unsigned long long)got,
				  (unsigned long long)want);
		/* The hypervisor loads x(reg_nr); arm64 loads zero- or sign-extend. */
		val = got;
		if ((s->flags & VCPU_MOCK_SIGN_EXTEND) && len < 8) {
			uint64_t sign = 1ull << (8 * len - 1);
			val = (val ^ sign) - sign;
		}
		if (s->reg <= 30)
			v->core[s->reg] = val;
		v->core[GZVM_CORE_OFF_PC / 8] += 4;
		return false;
	case GZP_MMIO_WRITE:
		v->core[GZVM_CORE_OFF_PC / 8] += 4;
		return false;
	case GZP_HYPERCALL:
		/* hypercall.args[] is in/out: the guest's x0..x7 come back from it. */
		for (unsigned i = 0; i < 8; i++)
			v->core[i] = v->run.u.hypercall.args[i];
		for (unsigned i = 4; i < 8; i++) {
			want = i - 1 < s->ndata ? s->args[i - 1] : 0;
			if (v->core[i] != want)
				mock_fail(m, "vCPU %u step %zu: the VMM changed x%u of call 0x%llx to "
					  "0x%llx (was 0x%llx)", v->id, idx, i,
					  (unsigned long long)s->value, (unsigned long long)v->core[i],
					  (unsigned long long)want);
		}
		check_x(m, v, idx, s);
		v->core[GZVM_CORE_OFF_PC / 8] += 4;
		return false;
	case GZP_PAGE_FAULT:
		if (!mock_gz_translate(v->vm, s->addr, 1, false, &host)) {
			v->pending = GZP_PAGE_FAULT;
			return true;
		}
		return false;
	default:
		return false;
	}
}

/* ------------------------------------------------------------------------ */
/* One hypervisor entry: run steps until one exits                           */

static enum hv_result fail_step(struct vcpu_mock *m, struct gz_vcpu *v, size_t idx,
				const char *what)
{
	mock_fail(m, "vCPU %u step %zu: %s", v->id, idx, what);
	return HV_ERROR;
}

/* A tick of guest time with the mock unlocked, ended by a timer interrupt. */
static enum hv_result tick(struct vcpu_mock *m, struct gz_vcpu *v)
{
	const struct timespec t = { .tv_sec = 0, .tv_nsec = SPIN_TICK_NS };

	if (v->spun_ns >= SPIN_LIMIT_NS) {
		mock_fail(m, "vCPU %u: the guest spun %llu s without a kick", v->id,
			  (unsigned long long)(SPIN_LIMIT_NS / 1000000000ull));
		return HV_ERROR;
	}
	pthread_mutex_unlock(&m->lock);
	nanosleep(&t, NULL); /* signals are blocked: never cut short */
	pthread_mutex_lock(&m->lock);
	v->spun_ns += SPIN_TICK_NS;
	begin_exit(v, GZVM_EXIT_IRQ);
	return HV_INTERNAL;
}

static enum hv_result hypercall(struct vcpu_mock *m, struct gz_vcpu *v, size_t idx,
				const struct vcpu_mock_step *s)
{
	if (s->ndata > 7)
		return fail_step(m, v, idx, "an SMCCC call has at most 7 arguments");
	/* v9: every guest HVC the kernel sees goes to user space, x0..x7 in args[]. */
	begin_exit(v, GZVM_EXIT_HYPERCALL);
	v->run.u.hypercall.args[0] = s->value;
	for (uint32_t i = 0; i < s->ndata; i++)
		v->run.u.hypercall.args[1 + i] = s->args[i];
	for (unsigned i = 0; i < 8; i++)
		v->core[i] = v->run.u.hypercall.args[i];
	pend(v, GZP_HYPERCALL, idx, s);
	return HV_USER;
}

static enum hv_result run_step(struct vcpu_mock *m, struct gz_vcpu *v, unsigned long arg,
			       size_t idx, const struct vcpu_mock_step *s, int *rc, bool *advance)
{
	uint64_t val, *slot;
	void *host;

	*advance = true;
	switch (s->op) {
	case VCPU_MOCK_MMIO_WRITE:
		if (mock_gz_ioeventfd_hit(v->vm, s->addr, s->len, s->value)) {
			v->core[GZVM_CORE_OFF_PC / 8] += 4;
			return HV_INTERNAL; /* the kernel signalled the eventfd and re-entered */
		}
		exit_mmio(v, idx, s, s->len, true);
		return HV_USER;
	case VCPU_MOCK_MMIO_READ:
		exit_mmio(v, idx, s, s->len, false);
		return HV_USER;
	case VCPU_MOCK_HYPERCALL:
		return hypercall(m, v, idx, s);
	case VCPU_MOCK_SYSTEM_EVENT:
		begin_exit(v, GZVM_EXIT_SYSTEM_EVENT);
		v->run.u.system_event.type = (uint32_t)s->value;
		v->run.u.system_event.ndata = s->ndata;
		memcpy(v->run.u.system_event.data, s->args, s->ndata * sizeof(s->args[0]));
		pend(v, GZP_PLAIN, idx, s);
		return HV_USER;
	case VCPU_MOCK_INTERNAL_ERROR:
		begin_exit(v, GZVM_EXIT_INTERNAL_ERROR);
		v->run.u.internal.suberror = (uint32_t)s->value;
		v->run.u.internal.ndata = s->ndata;
		memcpy(v->run.u.internal.data, s->args, s->ndata * sizeof(s->args[0]));
		pend(v, GZP_PLAIN, idx, s);
		return HV_USER;
	case VCPU_MOCK_FAIL_ENTRY:
		begin_exit(v, GZVM_EXIT_FAIL_ENTRY);
		v->run.u.fail_entry.hardware_entry_failure_reason = s->value;
		v->run.u.fail_entry.cpu = s->count;
		pend(v, GZP_PLAIN, idx, s);
		return HV_USER;
	case VCPU_MOCK_MEMORY_FAULT:
		exit_page_fault(v, idx, s);
		return HV_USER;
	case VCPU_MOCK_RAW:
		begin_exit(v, (uint32_t)s->value);
		memcpy(&v->run.u, s->raw, sizeof(v->run.u));
		pend(v, GZP_PLAIN, idx, s);
		*rc = s->err > 0 ? -s->err : s->err;
		return HV_USER;
	case VCPU_MOCK_MEM_CHECK:
		if (mock_gz_translate(v->vm, s->addr, 8, false, &host)) {
			memcpy(&val, host, sizeof(val));
			if (val != s->value)
				mock_fail(m, "vCPU %u step %zu: guest RAM at 0x%llx holds 0x%llx, "
					  "expected 0x%llx", v->id, idx, (unsigned long long)s->addr,
					  (unsigned long long)val, (unsigned long long)s->value);
			return HV_NONE;
		}
		exit_mmio(v, idx, s, 8, false);
		return HV_USER;
	case VCPU_MOCK_MEM_WRITE:
		if (mock_gz_translate(v->vm, s->addr, 8, true, &host)) {
			memcpy(host, &s->value, sizeof(s->value));
			return HV_NONE;
		}
		exit_mmio(v, idx, s, 8, true);
		return HV_USER;
	case VCPU_MOCK_REG_CHECK:
		if (mock_gz_reg_slot(v, s->reg, &slot) < 0)
			return fail_step(m, v, idx, "no such register on a GenieZone vCPU");
		if (*slot != s->value)
			mock_fail(m, "vCPU %u step %zu: register 0x%llx holds 0x%llx, expected 0x%llx",
				  v->id, idx, (unsigned long long)s->reg, (unsigned long long)*slot,
				  (unsigned long long)s->value);
		return HV_NONE;
	case VCPU_MOCK_REG_SET:
		if (mock_gz_reg_slot(v, s->reg, &slot) < 0)
			return fail_step(m, v, idx, "no such register on a GenieZone vCPU");
		*slot = s->value;
		return HV_NONE;
	case VCPU_MOCK_GZ_EXCEPTION:
		begin_exit(v, GZVM_EXIT_EXCEPTION);
		v->run.u.exception.exception = (uint32_t)s->value;
		v->run.u.exception.error_code = s->count;
		v->run.u.exception.fault_gpa = s->addr;
		pend(v, GZP_PLAIN, idx, s);
		return HV_USER;
	case VCPU_MOCK_GZ_DEBUG:
		begin_exit(v, GZVM_EXIT_DEBUG);
		memcpy(&v->run.u, s->raw, sizeof(v->run.u));
		pend(v, GZP_PLAIN, idx, s);
		return HV_USER;
	case VCPU_MOCK_GZ_SHUTDOWN:
		begin_exit(v, GZVM_EXIT_SHUTDOWN);
		pend(v, GZP_PLAIN, idx, s);
		return HV_USER;
	case VCPU_MOCK_GZ_KERNEL_EXIT:
		begin_exit(v, (uint32_t)s->value);
		return HV_INTERNAL;
	case VCPU_MOCK_SPIN:
		/* Ends when the run loop sees a signal (gz_run), not here. */
		*advance = false;
		return tick(m, v);
	case VCPU_MOCK_GZ_AWAIT_FLAG:
		if (user_flag(arg) == 1) {
			v->spun_ns = 0;
			return HV_NONE;
		}
		*advance = false;
		return tick(m, v);
	case VCPU_MOCK_PIO_OUT:
	case VCPU_MOCK_PIO_IN:
	case VCPU_MOCK_HLT:
		return fail_step(m, v, idx, "x86-only step on an arm64 GenieZone guest");
	default:
		return fail_step(m, v, idx, "unknown op");
	}
}

/*
 * One gzvm_arch_vcpu_run(): the completion is consumed, then the guest runs
 * until its next exit.  Steps without an exit (RAM, registers) do not return
 * to the kernel; an ioeventfd write or a kernel-internal exit does.
 */
static enum hv_result hv_enter(struct vcpu_mock *m, struct gz_vcpu *v, unsigned long arg,
			       size_t *step_idx, int *rc)
{
	struct mock_script *s;
	enum hv_result res;
	unsigned gen;
	bool advance;
	size_t idx;

	if (v->pending != GZP_NONE && complete_pending(m, v)) {
		exit_page_fault(v, v->pending_index, &v->pending_step);
		*step_idx = v->pending_index;
		return HV_USER;
	}
	do {
		s = mock_script_find(m, v->id);
		if (!s || s->pos >= s->nsteps) {
			mock_fail(m, "vCPU %u: the guest ran past the end of its script (%zu steps)",
				  v->id, s ? s->nsteps : 0);
			return HV_ERROR;
		}
		idx = s->pos;
		gen = s->gen;
		*step_idx = idx;
		res = run_step(m, v, arg, idx, &s->steps[idx], rc, &advance);
		if (res == HV_ERROR)
			return res;
		/* A tick dropped the lock: the script may have been replaced meanwhile. */
		s = mock_script_find(m, v->id);
		if (advance && s && s->gen == gen) {
			s->pos++;
			s->done++;
		}
	} while (res == HV_NONE);
	return res;
}

/* The step the guest is in, if it is a SPIN: a kick ends it. */
static void end_spin(struct vcpu_mock *m, struct gz_vcpu *v)
{
	struct mock_script *s = mock_script_find(m, v->id);

	if (s && s->pos < s->nsteps && s->steps[s->pos].op == VCPU_MOCK_SPIN) {
		s->pos++;
		s->done++;
		v->spun_ns = 0;
	}
}

static bool step_signalled(struct vcpu_mock *m, struct gz_vcpu *v, size_t idx)
{
	struct mock_script *s = mock_script_find(m, v->id);

	return s && idx < s->nsteps && (s->steps[idx].flags & VCPU_MOCK_GZ_SIGNALLED);
}

int mock_gz_run(struct vcpu_mock *m, struct gz_vcpu *v, unsigned long arg)
{
	sigset_t all, caller;
	bool need_user, signalled;
	enum hv_result res;
	size_t idx = 0;
	int rc;

	if (!arg)
		return -EFAULT;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &caller);
restart:
	rc = 0;
	copy_in(&v->run, arg);
	if (v->run.padding1[0] | v->run.padding1[1] | v->run.padding1[2]) {
		rc = -EINVAL;
		goto out;
	}
	if (v->run.immediate_exit == 1) {
		v->eintr_at_entry++;
		if (++v->ie_streak >= IE_STREAK_LIMIT) {
			mock_fail(m, "vCPU %u: %u GZVM_RUN calls in a row with immediate_exit set "
				  "(a stale flag the VMM never clears)", v->id, v->ie_streak);
			rc = -EIO;
		} else {
			rc = -EINTR;
		}
		goto out;
	}
	v->ie_streak = 0;
	v->entries++;
	need_user = false;
	signalled = false;
	while (!need_user) {
		if (signal_pending(&caller))
			break;
		res = hv_enter(m, v, arg, &idx, &rc);
		if (res == HV_ERROR) {
			rc = -EIO;
			break;
		}
		need_user = res == HV_USER;
		if (need_user && step_signalled(m, v, idx))
			signalled = true;
	}
	copy_out(arg, &v->run);
	if (rc == 0 && (signalled || signal_pending(&caller))) {
		/* gzvm_arch_inform_exit(), then -ERESTARTSYS. */
		if (!signalled && restartable(&caller)) {
			v->restarts++;
			pthread_sigmask(SIG_SETMASK, &caller, NULL); /* the handlers run */
			pthread_sigmask(SIG_BLOCK, &all, NULL);
			goto restart;
		}
		/* Only an interruption the VMM sees ends a spinning guest's step. */
		if (!signalled)
			end_spin(m, v);
		v->eintr_after_exit++;
		rc = -EINTR;
	}
out:
	pthread_sigmask(SIG_SETMASK, &caller, NULL);
	return rc;
}
