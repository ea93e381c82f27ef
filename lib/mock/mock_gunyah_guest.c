// SPDX-License-Identifier: MIT
/*
 * GUNYAH_VCPU_RUN and GH_VCPU_RUN of the modelled driver (gunyah_vcpu_run()
 * and gh_vcpu_run() of "virt: gunyah: Add proxy-scheduled vCPUs", patch 15
 * of the v17 series and 25/28 of v8), and the scripted guest behind them.
 *
 * One run call does what the kernel does, in its order: the vCPU must still
 * be a function and hold its hypervisor resource (ENODEV); a VM that is not
 * running reports STATUS; the MMIO exit handed out last time is resumed with
 * the resume_action the VMM left (any other value: EINVAL, state kept);
 * then, before each entry into the guest, immediate_exit stops the call
 * (v17 EINTR, v8 0) and a signal stops it (ERESTARTSYS, seen as EINTR).
 * Because the kernel consumes the resume before that check, a run stopped
 * there loses the completion: the mock records it as a failure, since the
 * guest would see it.  Then the guest runs steps until one exits.
 */
#define _GNU_SOURCE
#include "mock_gunyah.h"

#include <errno.h>
#include <signal.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A guest that spins this long without a kick is a hung test. */
#define SPIN_LIMIT_NS (30ull * 1000000000ull)
#define SPIN_TICK_NS 5000000L

enum step_result {
	STEP_NEXT,  /* done without an exit */
	STEP_EXIT,  /* an exit was delivered */
	STEP_AGAIN, /* an exit was delivered; the step runs again next time */
	STEP_ERROR, /* the script cannot run here */
};

int mgh_reg_index(uint64_t reg)
{
	if (reg >= VCPU_REG_ARM64_X(0) && reg <= VCPU_REG_ARM64_X(30))
		return (int)(reg - VCPU_REG_ARM64_X(0));
	switch (reg) {
	case VCPU_REG_ARM64_PC:
		return MGH_REG_PC;
	case VCPU_REG_ARM64_SP:
		return MGH_REG_SP;
	case VCPU_REG_ARM64_SP_EL1:
		return MGH_REG_SP_EL1;
	default:
		return -1;
	}
}

bool mgh_step_valid(const struct vcpu_mock *m, const struct vcpu_mock_step *s)
{
	(void)m;
	switch (s->op) {
	case VCPU_MOCK_GUNYAH_VM_EXITED:
		return s->len <= GUNYAH_VM_MAX_EXIT_REASON_SIZE && s->value <= 0xffff;
	case VCPU_MOCK_GUNYAH_VM_CRASHED:
	case VCPU_MOCK_GUNYAH_LOAD_FAILED:
		return true;
	case VCPU_MOCK_GUNYAH_DOORBELL:
		return s->flags <= 1 && s->value <= UINT32_MAX;
	default:
		return false;
	}
}

/* Where a load lands: xN (N = @reg), with the arm64 zero/sign extension. */
static void load_into(struct vcpu_mock *m, struct mgh_vcpu *v, const struct vcpu_mock_step *s,
		      uint32_t len, uint64_t value)
{
	uint64_t val = value & mock_len_mask(len);

	if ((s->flags & VCPU_MOCK_SIGN_EXTEND) && len < 8) {
		uint64_t sign = 1ull << (8 * len - 1);

		val = (val ^ sign) - sign;
	}
	if (s->reg > 30) {
		mock_fail(m, "vCPU %u: a load into register %llu, not x0-x30", v->id,
			  (unsigned long long)s->reg);
		return;
	}
	v->regs[s->reg] = val;
}

/* ------------------------------------------------------------------------ */
/* Exits                                                                      */

static void page_clear(struct mgh_vcpu *v, uint32_t reason)
{
	struct gunyah_vcpu_run *run = v->page;

	memset(&run->mmio, 0, sizeof(run->mmio));
	__atomic_store_n(&run->exit_reason, reason, __ATOMIC_RELAXED);
}

/* gunyah_handle_mmio() / gh_handle_mmio(). */
static void exit_mmio(struct mgh_vcpu *v, size_t idx, const struct vcpu_mock_step *s, uint32_t len,
		      bool write)
{
	struct gunyah_vcpu_run *run = v->page;
	const bool ram = s->op == VCPU_MOCK_MEM_WRITE || s->op == VCPU_MOCK_MEM_CHECK;

	page_clear(v, GUNYAH_VCPU_EXIT_MMIO);
	run->mmio.phys_addr = s->addr;
	run->mmio.len = len;
	run->mmio.is_write = write;
	if (write)
		mock_le_put(run->mmio.data, s->value, len);
	/* The kernel pre-sets HANDLED; on v8's page the byte is padding. */
	if (!v->vm->v8)
		run->mmio.resume_action = GUNYAH_VCPU_RESUME_HANDLED;
	v->state = write ? MGH_ST_MMIO_WRITE : MGH_ST_MMIO_READ;
	v->mmio_read_len = (uint8_t)len;
	v->handle_mmio = true;
	v->v8_len = len;
	v->pending = true;
	v->pidx = idx;
	if (s != &v->pstep) {
		v->pstep = *s;
		v->pram = ram;
	}
	v->pstep.len = len;
	v->pwrite = write;
}

static void exit_page_fault(struct mgh_vcpu *v, uint64_t gpa, int32_t attempt)
{
	struct gunyah_vcpu_run *run = v->page;

	/* gunyah_handle_page_fault(): the resume action is not read back. */
	page_clear(v, GUNYAH_VCPU_EXIT_PAGE_FAULT);
	run->page_fault.phys_addr = gpa;
	run->page_fault.attempt = attempt;
	run->page_fault.resume_action = GUNYAH_VCPU_RESUME_FAULT;
}

/* gunyah_vcpu_check_system(): the VM is no longer running. */
static void exit_status(struct mgh_vcpu *v)
{
	struct gunyah_vcpu_run *run = v->page;
	const struct mgh_vm *vm = v->vm;

	page_clear(v, GUNYAH_VCPU_EXIT_STATUS);
	switch (vm->status) {
	case MGH_INIT_FAILED:
		run->status.status = GUNYAH_VM_STATUS_LOAD_FAILED;
		break;
	case MGH_EXITED:
		run->status.status = GUNYAH_VM_STATUS_EXITED;
		break;
	default:
		run->status.status = GUNYAH_VM_STATUS_CRASHED;
		break;
	}
	run->status.exit_info = vm->exit_info;
	v->state = MGH_ST_DOWN;
}

/* ------------------------------------------------------------------------ */
/* Resuming the MMIO exit                                                     */

static uint32_t wanted_action(const struct vcpu_mock_step *s)
{
	return s->nexpect == 1 ? (uint32_t)s->expect[0] : GUNYAH_VCPU_RESUME_HANDLED;
}

/* A read's value reaches the guest: check it, load it. */
static void read_done(struct vcpu_mock *m, struct mgh_vcpu *v, uint64_t got)
{
	const struct vcpu_mock_step *s = &v->pstep;
	uint64_t want = s->value & mock_len_mask(s->len);

	got &= mock_len_mask(s->len);
	if (got != want)
		mock_fail(m, "vCPU %u step %zu: the load of %u bytes at 0x%llx returned 0x%llx, the "
			  "guest expected 0x%llx", v->id, v->pidx, s->len, (unsigned long long)s->addr,
			  (unsigned long long)got, (unsigned long long)want);
	if (!v->pram)
		load_into(m, v, s, s->len, got);
}

/*
 * The hypercall that takes resume_data: @action and @data are what the
 * kernel took from the run page when the call began.
 */
static void resume(struct vcpu_mock *m, struct mgh_vcpu *v, uint32_t action, uint64_t data)
{
	const struct vcpu_mock_step *s = &v->pstep;
	uint32_t want = wanted_action(s);

	v->pending = false;
	if (action != want)
		mock_fail(m, "vCPU %u step %zu: the VMM resumed the access at 0x%llx with action %u, "
			  "the guest expected %u", v->id, v->pidx, (unsigned long long)s->addr, action,
			  want);
	switch (action) {
	case GUNYAH_VCPU_RESUME_HANDLED:
		if (!v->pwrite)
			read_done(m, v, data);
		break;
	case GUNYAH_VCPU_RESUME_FAULT:
		v->aborts++; /* the guest takes the abort */
		break;
	default: /* RETRY: the guest makes the access again */
		v->retry = true;
		break;
	}
}

/* ------------------------------------------------------------------------ */
/* Waiting for a kick                                                         */

/*
 * The guest spins: the kernel sleeps interruptibly and checks
 * immediate_exit before each entry.  Drops the mock lock while asleep.
 * 1: immediate_exit; -EINTR: a signal; 0: the VM stopped meanwhile.
 */
static int spin(struct vcpu_mock *m, struct mgh_vcpu *v)
{
	const struct timespec tick = { .tv_sec = 0, .tv_nsec = SPIN_TICK_NS };
	const struct gunyah_vcpu_run *run = v->page;
	uint64_t waited = 0;
	sigset_t all, caller;
	int r = 0;

	/*
	 * The kernel's signal_pending() stays set until the signal is taken
	 * on the way out; here a signal is only seen in ppoll(), so between
	 * ticks every signal is held pending and ppoll() lets them in.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &caller);
	for (;;) {
		if (__atomic_load_n(&run->immediate_exit, __ATOMIC_ACQUIRE)) {
			r = 1;
			break;
		}
		if (v->vm->status != MGH_RUNNING)
			break;
		if (waited >= SPIN_LIMIT_NS) {
			mock_fail(m, "vCPU %u: the guest spun %llu s without a kick", v->id,
				  (unsigned long long)(SPIN_LIMIT_NS / 1000000000ull));
			r = -EIO;
			break;
		}
		pthread_mutex_unlock(&m->lock);
		r = ppoll(NULL, 0, &tick, &caller);
		pthread_mutex_lock(&m->lock);
		if (r < 0 && errno == EINTR) {
			r = -EINTR; /* signal_pending(): ERESTARTSYS, EINTR without SA_RESTART */
			break;
		}
		r = 0;
		waited += SPIN_TICK_NS;
	}
	pthread_sigmask(SIG_SETMASK, &caller, NULL);
	return r;
}

/* ------------------------------------------------------------------------ */
/* One step                                                                   */

static enum step_result not_here(struct vcpu_mock *m, struct mgh_vcpu *v, size_t idx,
				 const struct vcpu_mock_step *s)
{
	mock_fail(m, "vCPU %u step %zu: op %u is not possible on Gunyah %s", v->id, idx, s->op,
		  v->vm->v8 ? "v8" : "v17");
	return STEP_ERROR;
}

static void ring_doorbell_check(struct vcpu_mock *m, struct mgh_vcpu *v, size_t idx,
				const struct vcpu_mock_step *s)
{
	struct mgh_fn *fn = mgh_find_irqfd(v->vm, (uint32_t)s->value);
	struct pollfd p;
	uint64_t n = 0;

	if (!fn) {
		mock_fail(m, "vCPU %u step %zu: no irqfd is bound to doorbell %llu", v->id, idx,
			  (unsigned long long)s->value);
		return;
	}
	if ((fn->flags & GUNYAH_IRQFD_FLAGS_LEVEL) != s->flags)
		mock_fail(m, "vCPU %u step %zu: doorbell %llu is %s-triggered, the guest expected %s",
			  v->id, idx, (unsigned long long)s->value,
			  fn->flags & GUNYAH_IRQFD_FLAGS_LEVEL ? "level" : "edge",
			  s->flags ? "level" : "edge");
	p = (struct pollfd){ .fd = fn->efd, .events = POLLIN };
	if (poll(&p, 1, 0) != 1 || read(fn->efd, &n, sizeof(n)) != (ssize_t)sizeof(n) || n == 0)
		mock_fail(m, "vCPU %u step %zu: doorbell %llu was not rung", v->id, idx,
			  (unsigned long long)s->value);
}

static enum step_result run_step(struct vcpu_mock *m, struct mgh_vcpu *v, size_t idx,
				 const struct vcpu_mock_step *s, int *rc)
{
	struct mgh_vm *vm = v->vm;
	struct gunyah_vcpu_run *run = v->page;
	uint8_t buf[8];
	int attempt = 0, i;
	uint64_t val;

	*rc = 0;
	switch (s->op) {
	case VCPU_MOCK_MMIO_WRITE:
		if (!vm->v8) {
			struct mgh_fn *fn = mgh_find_ioeventfd(vm, s->addr, s->len,
							       s->value & mock_len_mask(s->len));

			if (fn) {
				/* An in-kernel IO handler takes it: no exit. */
				val = 1;
				if (write(fn->efd, &val, sizeof(val)) != (ssize_t)sizeof(val))
					mock_fail(m, "vCPU %u step %zu: signalling the ioeventfd failed",
						  v->id, idx);
				return STEP_NEXT;
			}
		}
		exit_mmio(v, idx, s, s->len, true);
		return STEP_EXIT;
	case VCPU_MOCK_MMIO_READ:
		exit_mmio(v, idx, s, s->len, false);
		return STEP_EXIT;
	case VCPU_MOCK_MEM_CHECK:
	case VCPU_MOCK_MEM_WRITE: {
		const bool w = s->op == VCPU_MOCK_MEM_WRITE;

		mock_le_put(buf, s->value, 8);
		if (mgh_translate(vm, s->addr, 8, w, &attempt, buf)) {
			if (!w && mock_le_get(buf, 8) != s->value)
				mock_fail(m, "vCPU %u step %zu: guest RAM at 0x%llx holds 0x%llx, expected "
					  "0x%llx", v->id, idx, (unsigned long long)s->addr,
					  (unsigned long long)mock_le_get(buf, 8), (unsigned long long)s->value);
			return STEP_NEXT;
		}
		if (vm->v8) {
			/* v8 has no page faults: what no region backs is MMIO. */
			exit_mmio(v, idx, s, 8, w);
			return STEP_EXIT;
		}
		/* The guest re-executes the access when it runs again. */
		exit_page_fault(v, s->addr, attempt);
		return STEP_AGAIN;
	}
	case VCPU_MOCK_MEMORY_FAULT:
		if (vm->v8)
			return not_here(m, v, idx, s);
		exit_page_fault(v, s->addr, (int32_t)s->value);
		return STEP_EXIT;
	case VCPU_MOCK_RAW:
		page_clear(v, (uint32_t)s->value);
		memcpy((uint8_t *)run + 16, s->raw, sizeof(struct gunyah_vcpu_run) - 16);
		*rc = s->err > 0 ? -s->err : s->err;
		return STEP_EXIT;
	case VCPU_MOCK_REG_CHECK:
	case VCPU_MOCK_REG_SET:
		i = mgh_reg_index(s->reg);
		if (i < 0) {
			mock_fail(m, "vCPU %u step %zu: no register 0x%llx in the model", v->id, idx,
				  (unsigned long long)s->reg);
			return STEP_ERROR;
		}
		if (s->op == VCPU_MOCK_REG_SET)
			v->regs[i] = s->value;
		else if (v->regs[i] != s->value)
			mock_fail(m, "vCPU %u step %zu: register 0x%llx holds 0x%llx, expected 0x%llx",
				  v->id, idx, (unsigned long long)s->reg, (unsigned long long)v->regs[i],
				  (unsigned long long)s->value);
		return STEP_NEXT;
	case VCPU_MOCK_GUNYAH_VM_EXITED:
	case VCPU_MOCK_GUNYAH_VM_CRASHED:
	case VCPU_MOCK_GUNYAH_LOAD_FAILED:
		if (vm->v8)
			return not_here(m, v, idx, s);
		/* gunyah_vm_rm_notification_exited() and friends: VM-wide. */
		memset(&vm->exit_info, 0, sizeof(vm->exit_info));
		if (s->op == VCPU_MOCK_GUNYAH_VM_EXITED) {
			vm->status = MGH_EXITED;
			vm->exit_info.type = (uint16_t)s->value;
			vm->exit_info.reason_size = s->len;
			mock_le_put(vm->exit_info.reason, s->args[0], s->len);
		} else {
			vm->status = s->op == VCPU_MOCK_GUNYAH_VM_CRASHED ? MGH_CRASHED : MGH_INIT_FAILED;
		}
		exit_status(v);
		return STEP_EXIT;
	case VCPU_MOCK_GUNYAH_DOORBELL:
		if (vm->v8)
			return not_here(m, v, idx, s);
		ring_doorbell_check(m, v, idx, s);
		return STEP_NEXT;
	default:
		return not_here(m, v, idx, s);
	}
}

/* The access the VMM asked to retry, made again (v17). */
static bool retry_access(struct vcpu_mock *m, struct mgh_vcpu *v)
{
	uint8_t buf[8];
	int attempt = 0;

	v->retry = false;
	mock_le_put(buf, v->pstep.value, v->pstep.len);
	if (mgh_translate(v->vm, v->pstep.addr, v->pstep.len, v->pwrite, &attempt, buf)) {
		if (!v->pwrite)
			read_done(m, v, mock_le_get(buf, v->pstep.len));
		return false;
	}
	/* Still nothing there: the same access exits again, to be handled this time. */
	v->pstep.nexpect = 0;
	exit_mmio(v, v->pidx, &v->pstep, v->pstep.len, v->pwrite);
	return true;
}

/*
 * The kernel's loop: @resume_pending when the first entry carries resume
 * data; @ie_rc is what immediate_exit makes the call return.
 */
static int guest_loop(struct vcpu_mock *m, struct mgh_vcpu *v, bool resume_pending,
		      uint32_t action, uint64_t data, int ie_rc)
{
	const struct gunyah_vcpu_run *run = v->page;
	struct mock_script *s;
	enum step_result res;
	size_t idx;
	int rc;

	for (;;) {
		unsigned signals = atomic_load(&m->signals_sent);

		if (resume_pending && m->race_hook) {
			pthread_mutex_unlock(&m->lock);
			m->race_hook(m->race_arg);
			pthread_mutex_lock(&m->lock);
		}
		/* signal_pending() in the window: a kick signal sent meanwhile. */
		if (resume_pending && atomic_load(&m->signals_sent) != signals) {
			mock_fail(m, "vCPU %u step %zu: a signal stopped the run call after it took the "
				  "resume of the access at 0x%llx: the guest never sees it", v->id,
				  v->pidx, (unsigned long long)v->pstep.addr);
			v->pending = false;
			return -EINTR;
		}
		if (__atomic_load_n(&run->immediate_exit, __ATOMIC_ACQUIRE)) {
			if (resume_pending) {
				mock_fail(m, "vCPU %u step %zu: the run call returned for immediate_exit "
					  "after taking the resume of the access at 0x%llx: the guest "
					  "never sees it", v->id, v->pidx,
					  (unsigned long long)v->pstep.addr);
				v->pending = false;
			}
			return ie_rc;
		}
		if (resume_pending) {
			resume(m, v, action, data);
			resume_pending = false;
		}
		if (v->vm->status != MGH_RUNNING) {
			exit_status(v);
			return 0;
		}
		if (v->retry && retry_access(m, v))
			return 0;
		s = mock_script_find(m, v->id);
		if (!s || s->pos >= s->nsteps) {
			mock_fail(m, "vCPU %u: the guest ran past the end of its script (%zu steps)", v->id,
				  s ? s->nsteps : 0);
			return -EIO;
		}
		idx = s->pos;
		if (s->steps[idx].op == VCPU_MOCK_SPIN) {
			unsigned gen = s->gen;

			rc = spin(m, v);
			if (rc == 0) {
				exit_status(v);
				return 0;
			}
			/* The script may have been replaced while the lock was dropped. */
			s = mock_script_find(m, v->id);
			if (rc != -EIO && s && s->gen == gen && s->pos == idx) {
				s->pos++;
				s->done++;
			}
			return rc == 1 ? ie_rc : rc;
		}
		res = run_step(m, v, idx, &s->steps[idx], &rc);
		if (res == STEP_ERROR)
			return -EIO;
		if (res == STEP_AGAIN)
			return 0;
		s->pos++;
		s->done++;
		if (res == STEP_EXIT)
			return rc;
	}
}

/* gunyah_vcpu_run(). */
static int run_v17(struct vcpu_mock *m, struct mgh_vcpu *v)
{
	struct gunyah_vcpu_run *run = v->page;
	uint32_t action = 0;
	uint64_t data = 0;
	bool resume_pending = false;

	if (!v->bound || !v->rsc)
		return -ENODEV;
	switch (v->state) {
	case MGH_ST_UNKNOWN:
		if (v->vm->status != MGH_RUNNING) {
			exit_status(v);
			return 0;
		}
		v->state = MGH_ST_READY;
		break;
	case MGH_ST_MMIO_READ:
	case MGH_ST_MMIO_WRITE:
		action = __atomic_load_n(&run->mmio.resume_action, __ATOMIC_RELAXED);
		if (action > GUNYAH_VCPU_RESUME_RETRY)
			return -EINVAL; /* the state stays: a corrected page can resume it */
		if (v->state == MGH_ST_MMIO_READ && action == GUNYAH_VCPU_RESUME_HANDLED)
			data = mock_le_get(run->mmio.data, v->mmio_read_len); /* the kernel's own len */
		v->state = MGH_ST_READY;
		resume_pending = true;
		break;
	case MGH_ST_DOWN:
		return 0; /* the STATUS exit stays in the page */
	default:
		break;
	}
	return guest_loop(m, v, resume_pending, action, data, -EINTR);
}

/* gh_vcpu_run(). */
static int run_v8(struct vcpu_mock *m, struct mgh_vcpu *v)
{
	struct gh_vcpu_run *run = v->page;
	bool resume_pending = false;
	uint64_t data = 0;
	uint32_t len;
	int r;

	/* gh_vm_ensure_started(): the run call starts the VM itself. */
	r = mgh_start(v->vm);
	if (r < 0)
		return r;
	if (!v->rsc || !v->bound)
		return -ENODEV;
	if (v->handle_mmio) {
		/* gh_handle_mmio_return() copies the shared page's len, unchecked. */
		len = __atomic_load_n(&run->mmio.len, __ATOMIC_RELAXED);
		if (len != v->v8_len) {
			mock_fail(m, "vCPU %u step %zu: the VMM changed mmio.len from %u to %u, and v8 "
				  "copies that many bytes into the guest's 8-byte register", v->id,
				  v->pidx, v->v8_len, len);
			len = len > 8 ? 8 : len;
		}
		if (!v->pwrite)
			data = mock_le_get(run->mmio.data, len);
		v->handle_mmio = false;
		__atomic_store_n(&run->exit_reason, GH_VM_EXIT_UNKNOWN, __ATOMIC_RELAXED);
		resume_pending = true;
	}
	return guest_loop(m, v, resume_pending, GUNYAH_VCPU_RESUME_HANDLED, data, 0);
}

int mgh_vcpu_run(struct vcpu_mock *m, struct mgh_vcpu *v)
{
	int r;

	pthread_mutex_lock(&v->run_lock);
	pthread_mutex_lock(&m->lock);
	r = v->vm->v8 ? run_v8(m, v) : run_v17(m, v);
	pthread_mutex_unlock(&m->lock);
	pthread_mutex_unlock(&v->run_lock);
	return r;
}

void mock_gunyah_set_resume_hook(struct vcpu_mock *m, void (*hook)(void *arg), void *arg)
{
	pthread_mutex_lock(&m->lock);
	m->race_hook = hook;
	m->race_arg = arg;
	pthread_mutex_unlock(&m->lock);
}
