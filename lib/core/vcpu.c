// SPDX-License-Identifier: MIT
/*
 * vCPUs: creation, registers, the run loop and the kick.
 *
 * The run loop is the hot path: it allocates nothing, takes no lock, and
 * makes no system call beyond the backend's entry and the write-backs its ABI
 * requires.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void kick_handler(int sig)
{
	/* Only interrupts the run call; the kick state lives in the vCPU. */
	(void)sig;
}

/*
 * Install an empty handler without SA_RESTART, unless the VMM already has
 * one: SA_RESTART would make Gunyah and GenieZone restart their run call and
 * swallow the kick.
 */
static int ensure_kick_handler(int signo)
{
	struct sigaction old, sa;

	if (sigaction(signo, NULL, &old) < 0)
		return -errno;
	/* An ignored signal is discarded when sent: every kick would be lost. */
	if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_IGN)
		return -EINVAL;
	if (old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO))
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	return sigaction(signo, &sa, NULL) < 0 ? -errno : 0;
}

VCPU_API int vcpu_create(struct vcpu_vm *vm, uint32_t id, uint32_t flags, struct vcpu **out)
{
	struct vcpu_hv *hv;
	struct vcpu *cpu;
	int r;

	if (!vm)
		return -EINVAL;
	hv = vm->hv;
	if (!out)
		return vm_fail(vm, -EINVAL, "vcpu_create: NULL out pointer");
	*out = NULL;
	if (flags & ~(VCPU_CREATE_POWER_OFF | VCPU_CREATE_ARM64_FEATURES))
		return vm_fail(vm, -EINVAL, "unknown vcpu_create flags 0x%x",
			       flags & ~(VCPU_CREATE_POWER_OFF | VCPU_CREATE_ARM64_FEATURES));
	if ((flags & VCPU_CREATE_POWER_OFF) && hv->arch != VCPU_ARCH_ARM64)
		return vm_fail(vm, -EINVAL, "VCPU_CREATE_POWER_OFF is an arm64 (PSCI) flag");
	if ((flags & VCPU_CREATE_ARM64_FEATURES) && hv->arch != VCPU_ARCH_ARM64)
		return vm_fail(vm, -EINVAL, "vcpu_create flags 0x%x choose arm64 CPU features "
			       "(SVE, pointer authentication, PMU)",
			       flags & VCPU_CREATE_ARM64_FEATURES);

	cpu = calloc(1, sizeof(*cpu));
	if (!cpu)
		return vm_fail(vm, -ENOMEM, "cannot allocate vCPU %u", id);
	cpu->vm = vm;
	cpu->id = id;
	cpu->complete = hv->ops->complete;
	cpu->lazy_hc = (vm->flags & VCPU_VM_LAZY_HYPERCALL_ARGS) != 0;
	cpu->run_once = hv->ops->run_once;
	cpu->sys_ioctl = hv->sys->ioctl;
	cpu->sys_ctx = hv->sys_ctx;
	cpu->fd = -1;
	cpu->exit.vcpu_id = id;

	pthread_mutex_lock(&hv->lock);
	r = ensure_kick_handler(hv->kick_signal);
	if (r == 0)
		hv->nr_vcpus++;
	pthread_mutex_unlock(&hv->lock);
	if (r < 0) {
		free(cpu);
		if (r == -EINVAL)
			return vm_fail(vm, r, "the kick signal %d is ignored (SIG_IGN): kicks would "
				       "be lost; give it a handler or choose another with "
				       "vcpu_hv_set_kick_signal()", hv->kick_signal);
		return vm_fail(vm, r, "cannot install the kick signal %d handler", hv->kick_signal);
	}

	pthread_mutex_lock(&vm->lock);
	/* Room in the VM's list first: nothing can fail after the driver's vCPU exists. */
	if (vm->nr_vcpus == vm->cap_cpus) {
		unsigned cap = vm->cap_cpus ? 2 * vm->cap_cpus : 8;
		struct vcpu **cpus = realloc(vm->cpus, cap * sizeof(*cpus));

		if (cpus) {
			vm->cpus = cpus;
			vm->cap_cpus = cap;
		}
	}
	if (vm->nr_vcpus == vm->cap_cpus)
		r = cpu_fail(cpu, -ENOMEM, "cannot grow the VM's vCPU list");
	else
		r = hv->ops->vcpu_create(cpu, flags);
	if (r == 0)
		vm->cpus[vm->nr_vcpus++] = cpu;
	pthread_mutex_unlock(&vm->lock);
	if (r < 0) {
		vcpu_err_set(&vm->err_busy, vm->err, cpu->err);
		free(cpu);
		pthread_mutex_lock(&hv->lock);
		hv->nr_vcpus--;
		pthread_mutex_unlock(&hv->lock);
		return r;
	}
	*out = cpu;
	return 0;
}

VCPU_API int vcpu_destroy(struct vcpu **pcpu)
{
	struct vcpu *cpu;
	struct vcpu_vm *vm;

	if (!pcpu || !*pcpu)
		return -EINVAL;
	cpu = *pcpu;
	vm = cpu->vm;
	if (atomic_load(&cpu->in_run))
		return cpu_fail(cpu, -EBUSY, "vCPU %u is inside vcpu_run()", cpu->id);
	/* Out of the VM's list first: vcpu_vm_stop_all() kicks what it finds there. */
	pthread_mutex_lock(&vm->lock);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		if (vm->cpus[i] == cpu) {
			vm->cpus[i] = vm->cpus[--vm->nr_vcpus];
			break;
		}
	pthread_mutex_unlock(&vm->lock);
	vm->hv->ops->vcpu_destroy(cpu);
	pthread_mutex_lock(&vm->hv->lock);
	vm->hv->nr_vcpus--;
	pthread_mutex_unlock(&vm->hv->lock);
	free(cpu);
	*pcpu = NULL;
	return 0;
}

VCPU_API uint32_t vcpu_id(const struct vcpu *cpu)
{
	return cpu ? cpu->id : UINT32_MAX;
}

VCPU_API const struct vcpu_exit *vcpu_last_exit(const struct vcpu *cpu)
{
	return cpu ? &cpu->exit : NULL;
}

VCPU_API int vcpu_get_reg(struct vcpu *cpu, uint64_t reg, uint64_t *value)
{
	if (!cpu)
		return -EINVAL;
	if (!value)
		return cpu_fail(cpu, -EINVAL, "vcpu_get_reg: NULL value pointer");
	return cpu->vm->hv->ops->get_reg(cpu, reg, value);
}

VCPU_API int vcpu_set_reg(struct vcpu *cpu, uint64_t reg, uint64_t value)
{
	if (!cpu)
		return -EINVAL;
	return cpu->vm->hv->ops->set_reg(cpu, reg, value);
}

static int check_segment_call(struct vcpu *cpu, enum vcpu_x86_seg seg, const void *p)
{
	if (!p)
		return cpu_fail(cpu, -EINVAL, "NULL segment pointer");
	if (cpu->vm->hv->arch != VCPU_ARCH_X86_64)
		return cpu_fail(cpu, -EINVAL, "segment registers exist only on x86_64");
	if ((unsigned)seg > VCPU_X86_IDT)
		return cpu_fail(cpu, -EINVAL, "unknown x86 segment %d", (int)seg);
	if (!cpu->vm->hv->ops->get_segment)
		return cpu_fail(cpu, -EOPNOTSUPP, "the %s backend has no segment access",
				cpu->vm->hv->ops->name);
	return 0;
}

VCPU_API int vcpu_x86_get_segment(struct vcpu *cpu, enum vcpu_x86_seg seg,
				  struct vcpu_x86_segment *out)
{
	int r;

	if (!cpu)
		return -EINVAL;
	r = check_segment_call(cpu, seg, out);
	return r < 0 ? r : cpu->vm->hv->ops->get_segment(cpu, seg, out);
}

/*
 * GDTR and IDTR hold a 16-bit limit on every x86 ABI (kvm_dtable, ACRN's
 * acrn_descriptor_ptr): a wider one would be cut, not refused, by a driver.
 */
static bool dtable_limit_too_wide(enum vcpu_x86_seg seg, const struct vcpu_x86_segment *in)
{
	return (seg == VCPU_X86_GDT || seg == VCPU_X86_IDT) && in->limit > 0xffff;
}

VCPU_API int vcpu_x86_set_segment(struct vcpu *cpu, enum vcpu_x86_seg seg,
				  const struct vcpu_x86_segment *in)
{
	int r;

	if (!cpu)
		return -EINVAL;
	r = check_segment_call(cpu, seg, in);
	if (r == 0 && dtable_limit_too_wide(seg, in))
		r = cpu_fail(cpu, -EINVAL, "descriptor-table limit 0x%x exceeds 16 bits",
			     in->limit);
	return r < 0 ? r : cpu->vm->hv->ops->set_segment(cpu, seg, in);
}

VCPU_API int vcpu_x86_set_cpuid(struct vcpu *cpu, const struct vcpu_x86_cpuid_entry *entries,
				uint32_t n)
{
	const struct vcpu_backend_ops *ops;

	if (!cpu)
		return -EINVAL;
	ops = cpu->vm->hv->ops;
	if (!entries && n)
		return cpu_fail(cpu, -EINVAL, "vcpu_x86_set_cpuid: NULL entries for %u leaves", n);
	if (cpu->vm->hv->arch != VCPU_ARCH_X86_64)
		return cpu_fail(cpu, -EINVAL, "CPUID leaves exist only on x86_64");
	/* Reserved for a later meaning: a table with something there is not understood. */
	for (uint32_t i = 0; i < n; i++)
		if (entries[i].padding[0] || entries[i].padding[1] || entries[i].padding[2])
			return cpu_fail(cpu, -EINVAL, "CPUID entry %u (leaf 0x%x): padding is not 0",
					i, entries[i].function);
	if (!ops->x86_set_cpuid)
		return cpu_fail(cpu, -EOPNOTSUPP, "%s cannot set CPUID leaves: its hypervisor "
				"decides them", cpu->vm->hv->driver);
	return ops->x86_set_cpuid(cpu, entries, n);
}

/* ------------------------------------------------------------------------ */
/* Batch register access                                                      */

/* The architecture a portable register id belongs to; HOST when none. */
static enum vcpu_arch reg_arch(uint64_t id)
{
	if ((id >= VCPU_REG_X86_RAX && id <= VCPU_REG_X86_RFLAGS) ||
	    (id >= VCPU_REG_X86_CR0 && id <= VCPU_REG_X86_APIC_BASE) ||
	    (id >= VCPU_REG_X86_SEG(VCPU_X86_CS) && id <= VCPU_REG_X86_SEG(VCPU_X86_IDT)))
		return VCPU_ARCH_X86_64;
	if ((id >= VCPU_REG_ARM64_X(0) && id <= VCPU_REG_ARM64_X(30)) ||
	    (id >= VCPU_REG_ARM64_SP && id <= VCPU_REG_ARM64_ELR_EL1) ||
	    (id & ~(uint64_t)0xffff) == VCPU_REG_ARM64_SYSREG(0, 0, 0, 0, 0))
		return VCPU_ARCH_ARM64;
	return VCPU_ARCH_HOST;
}

bool vcpu_reg_is_segment(uint64_t id)
{
	return id >= VCPU_REG_X86_SEG(VCPU_X86_CS) && id <= VCPU_REG_X86_SEG(VCPU_X86_IDT);
}

/* The whole batch, before any driver call (vcpu.h: nothing is applied on bad input). */
static int check_regs(struct vcpu *cpu, const struct vcpu_reg *regs, uint32_t n, bool set)
{
	const char *fn = set ? "vcpu_set_regs" : "vcpu_get_regs";

	if (n > VCPU_REGS_MAX)
		return cpu_fail(cpu, -EINVAL, "%s: %u entries, at most %u", fn, n, VCPU_REGS_MAX);
	if (n && !regs)
		return cpu_fail(cpu, -EINVAL, "%s: NULL array of %u entries", fn, n);
	for (uint32_t i = 0; i < n; i++) {
		const struct vcpu_reg *e = &regs[i];

		if (reg_arch(e->id) != cpu->vm->hv->arch)
			return cpu_fail(cpu, -EINVAL, "%s: entry %u: 0x%llx is not a%s register",
					fn, i, (unsigned long long)e->id,
					cpu->vm->hv->arch == VCPU_ARCH_ARM64 ? "n arm64" : "n x86_64");
		if (!set)
			continue;
		if (vcpu_reg_is_segment(e->id) &&
		    dtable_limit_too_wide((enum vcpu_x86_seg)(e->id - VCPU_REG_X86_SEG(0)), &e->seg))
			return cpu_fail(cpu, -EINVAL, "%s: entry %u: descriptor-table limit 0x%x "
					"exceeds 16 bits", fn, i, e->seg.limit);
		/* A register set twice has no defined order on every ABI: refuse it. */
		for (uint32_t j = 0; j < i; j++)
			if (regs[j].id == e->id)
				return cpu_fail(cpu, -EINVAL, "%s: entries %u and %u both set "
						"register 0x%llx", fn, j, i,
						(unsigned long long)e->id);
	}
	return 0;
}

int vcpu_regs_entry_failed(struct vcpu *cpu, uint32_t i, int r)
{
	char prefix[24];
	size_t n = (size_t)snprintf(prefix, sizeof(prefix), "entry %u: ", i);
	size_t len = strnlen(cpu->err, sizeof(cpu->err) - 1);

	/* Shift the detail right to make room; its end is cut if it must be. */
	if (len + n > sizeof(cpu->err) - 1)
		len = sizeof(cpu->err) - 1 - n;
	memmove(cpu->err + n, cpu->err, len);
	memcpy(cpu->err, prefix, n);
	cpu->err[n + len] = '\0';
	return r;
}

int vcpu_regs_each(struct vcpu *cpu, struct vcpu_reg *get, const struct vcpu_reg *set,
		   uint32_t n)
{
	const struct vcpu_backend_ops *ops = cpu->vm->hv->ops;
	int r = 0;

	for (uint32_t i = 0; i < n && r == 0; i++) {
		uint64_t id = get ? get[i].id : set[i].id;
		enum vcpu_x86_seg seg = (enum vcpu_x86_seg)(id - VCPU_REG_X86_SEG(0));

		if (vcpu_reg_is_segment(id) && !(get ? !!ops->get_segment : !!ops->set_segment))
			r = cpu_fail(cpu, -EOPNOTSUPP, "the %s backend has no segment access",
				     ops->name);
		else if (vcpu_reg_is_segment(id))
			r = get ? ops->get_segment(cpu, seg, &get[i].seg)
				: ops->set_segment(cpu, seg, &set[i].seg);
		else
			r = get ? ops->get_reg(cpu, id, &get[i].value)
				: ops->set_reg(cpu, id, set[i].value);
		if (r < 0)
			return vcpu_regs_entry_failed(cpu, i, r);
	}
	return r;
}

VCPU_API int vcpu_get_regs(struct vcpu *cpu, struct vcpu_reg *regs, uint32_t n)
{
	const struct vcpu_backend_ops *ops;
	int r;

	if (!cpu)
		return -EINVAL;
	r = check_regs(cpu, regs, n, false);
	if (r < 0 || n == 0)
		return r;
	ops = cpu->vm->hv->ops;
	return ops->get_regs ? ops->get_regs(cpu, regs, n) : vcpu_regs_each(cpu, regs, NULL, n);
}

VCPU_API int vcpu_set_regs(struct vcpu *cpu, const struct vcpu_reg *regs, uint32_t n)
{
	const struct vcpu_backend_ops *ops;
	int r;

	if (!cpu)
		return -EINVAL;
	r = check_regs(cpu, regs, n, true);
	if (r < 0 || n == 0)
		return r;
	ops = cpu->vm->hv->ops;
	return ops->set_regs ? ops->set_regs(cpu, regs, n) : vcpu_regs_each(cpu, NULL, regs, n);
}

int vcpu_malformed(struct vcpu *cpu, const char *what, unsigned long long v)
{
	return cpu_fail(cpu, -EPROTO, "vCPU %u: malformed %s exit %u (0x%x): %s %llu", cpu->id,
			cpu->vm->hv->ops->name, cpu->exit.raw_reason, cpu->exit.raw_reason, what, v);
}

int vcpu_decode_internal(struct vcpu *cpu, uint32_t kind, uint64_t code, uint32_t ndata,
			 const uint64_t *data)
{
	if (ndata > 16)
		return vcpu_malformed(cpu, "internal.ndata", ndata);
	cpu->exit.u.internal.code = code;
	cpu->exit.u.internal.ndata = ndata;
	memcpy(cpu->exit.u.internal.data, data, ndata * sizeof(uint64_t));
	cpu->exit.kind = kind;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                   */

typedef int (*io_handler)(void *ctx, struct vcpu *cpu, struct vcpu_io *io);

/*
 * Repeated port I/O: one handler call per item, reads stored in place.  Out
 * of line so that the single access, every other exit, inlines to one call.
 */
static __attribute__((noinline)) int call_io_rep(io_handler fn, void *ctx, struct vcpu *cpu)
{
	struct vcpu_io *io = &cpu->exit.u.io;
	const uint32_t len = cpu->acc.len;
	const bool is_write = cpu->acc.is_write;
	int r = 0;

	for (uint32_t i = 0; i < cpu->io_count && r == 0; i++) {
		uint8_t *item = cpu->io_buf + (size_t)i * len;
		memset(io->data, 0, sizeof(io->data));
		io->addr = cpu->acc.addr;
		io->len = len;
		io->is_write = is_write;
		if (is_write)
			memcpy(io->data, item, len);
		r = fn(ctx, cpu, io);
		if (!is_write)
			memcpy(item, io->data, len);
	}
	return r;
}

/*
 * A response outside enum vcpu_io_response, on every backend: the error is
 * the caller's (a handler's own error or stop code is lost with it), and
 * the access completes as handled, with the data the handler left, so the
 * guest is not left at it.
 */
static __attribute__((noinline, cold)) int bad_response(struct vcpu *cpu)
{
	struct vcpu_io *io = &cpu->exit.u.io;
	uint32_t response = io->response;

	io->response = VCPU_IO_HANDLED;
	return cpu_fail(cpu, -EINVAL, "vCPU %u: the %s handler's response %u is not HANDLED, "
			"FAULT or RETRY", cpu->id, vcpu_exit_kind_name(cpu->exit.kind), response);
}

/*
 * More results than the four result registers: the caller's error, and
 * only those four are written back, so the guest is not left at the call.
 */
static __attribute__((noinline, cold)) int bad_nret(struct vcpu *cpu)
{
	struct vcpu_hypercall *hc = &cpu->exit.u.hypercall;
	uint32_t nret = hc->nret;

	hc->nret = 4;
	return cpu_fail(cpu, -EINVAL, "vCPU %u: the hypercall handler's nret %u is above 4",
			cpu->id, nret);
}

/*
 * The handler gets io to fill in data and response; what the guest's
 * access was (address, length, direction) is kept in cpu->acc for the
 * backend to write back by, whatever the handler leaves in io.
 */
static inline int call_io(io_handler fn, void *ctx, struct vcpu *cpu)
{
	struct vcpu_io *io = &cpu->exit.u.io;

	return __builtin_expect(cpu->io_buf != NULL, 0) ? call_io_rep(fn, ctx, cpu)
							: fn(ctx, cpu, io);
}

static bool is_io_exit(uint32_t kind)
{
	return kind == VCPU_EXIT_MMIO || kind == VCPU_EXIT_PIO || kind == VCPU_EXIT_PCI_CONFIG;
}

/* vcpu_last_exit() shows the access as the guest made it, not as a handler left it. */
static void restore_access(struct vcpu *cpu)
{
	if (is_io_exit(cpu->exit.kind))
		memcpy(&cpu->exit.u.io, &cpu->acc, sizeof(cpu->acc));
}

_Static_assert(sizeof(((struct vcpu *)0)->acc) == offsetof(struct vcpu_io, data) &&
		       offsetof(struct vcpu_io, len) == 8 && offsetof(struct vcpu_io, is_write) == 12,
	       "struct vcpu.acc mirrors the head of struct vcpu_io");

static int unhandled(struct vcpu *cpu)
{
	const struct vcpu_exit *e = &cpu->exit;

	switch (e->kind) {
	case VCPU_EXIT_MMIO:
	case VCPU_EXIT_PIO:
	case VCPU_EXIT_PCI_CONFIG:
		return cpu_fail(cpu, -ENOSYS, "vCPU %u: no handler for %s %s at 0x%llx (len %u)",
				cpu->id, vcpu_exit_kind_name(e->kind),
				e->u.io.is_write ? "write" : "read",
				(unsigned long long)e->u.io.addr, e->u.io.len);
	case VCPU_EXIT_INTERNAL_ERROR:
	case VCPU_EXIT_FAIL_ENTRY:
	case VCPU_EXIT_SHUTDOWN:
	case VCPU_EXIT_UNKNOWN:
	case VCPU_EXIT_EXCEPTION:
		return cpu_fail(cpu, -EIO, "vCPU %u cannot continue: %s exit (raw %u, code 0x%llx)",
				cpu->id, vcpu_exit_kind_name(e->kind), e->raw_reason,
				(unsigned long long)e->u.internal.code);
	default:
		return cpu_fail(cpu, -ENOSYS, "vCPU %u: no handler for %s exit (raw %u)", cpu->id,
				vcpu_exit_kind_name(e->kind), e->raw_reason);
	}
}

static __attribute__((noinline, cold)) int handler_failed(struct vcpu *cpu, int r)
{
	/* -EINTR from vcpu_run() always means a kick (vcpu.h). */
	if (r == -EINTR)
		return cpu_fail(cpu, -EINVAL, "vCPU %u: the %s handler returned -EINTR, which "
				"vcpu_run() keeps for kicks: return another errno",
				cpu->id, vcpu_exit_kind_name(cpu->exit.kind));
	return cpu_fail(cpu, r, "vCPU %u: the %s handler failed", cpu->id,
			vcpu_exit_kind_name(cpu->exit.kind));
}

static inline int handler_result(struct vcpu *cpu, int r)
{
	return __builtin_expect(r < 0, 0) ? handler_failed(cpu, r) : r;
}

/*
 * A memory fault not answered with RETRY: no ABI can reflect it into the
 * guest (running again would only fault again), so it ends vcpu_run(),
 * beating a handler's stop code.
 */
static __attribute__((noinline, cold)) int unbacked(struct vcpu *cpu)
{
	const struct vcpu_memory_fault *f = &cpu->exit.u.fault;
	char size[40] = "", attempt[32] = "";

	if (f->size)
		snprintf(size, sizeof(size), "+0x%llx", (unsigned long long)f->size);
	if (f->error)
		snprintf(attempt, sizeof(attempt), " (attempt %d)", f->error);
	return cpu_fail(cpu, -EFAULT, "vCPU %u: guest access to 0x%llx%s has no memory behind "
			"it%s; %s cannot reflect the fault into the guest", cpu->id,
			(unsigned long long)f->gpa, size, attempt, cpu->vm->hv->ops->name);
}

/*
 * A response the driver cannot carry out: the caller hears -EOPNOTSUPP, and
 * the access completes as a failed one where the driver can say so, else
 * as handled with the handler's data, so the guest is not left at it.
 */
static __attribute__((noinline, cold)) int unsupported_response(struct vcpu *cpu)
{
	struct vcpu_io *io = &cpu->exit.u.io;
	const uint32_t response = io->response;

	io->response = cpu->vm->hv->io_responses & (1u << VCPU_IO_FAULT) ? VCPU_IO_FAULT
									 : VCPU_IO_HANDLED;
	return cpu_fail(cpu, -EOPNOTSUPP, "vCPU %u: the %s driver cannot %s an access at 0x%llx",
			cpu->id, cpu->vm->hv->driver,
			response == VCPU_IO_FAULT ? "fault" : "re-execute",
			(unsigned long long)cpu->acc.addr);
}

/* An access handled: the handler's result, then its response checked (the core's rules). */
static inline int io_result(struct vcpu *cpu, int r)
{
	const uint32_t response = cpu->exit.u.io.response;

	r = handler_result(cpu, r);
	if (__builtin_expect(response != VCPU_IO_HANDLED, 0)) {
		if (response > VCPU_IO_RETRY)
			return bad_response(cpu);
		if (!(cpu->vm->hv->io_responses & (1u << response)))
			return unsupported_response(cpu);
	}
	return r;
}

static int dispatch(struct vcpu *cpu, const struct vcpu_handlers *h, void *ctx)
{
	struct vcpu_exit *e = &cpu->exit;
	io_handler io_fn;

	/* The frequent accesses before the table the switch compiles to. */
	if (__builtin_expect(e->kind == VCPU_EXIT_MMIO, 1)) {
		io_fn = h->mmio;
		goto io;
	}
	if (e->kind == VCPU_EXIT_HYPERCALL) {
		if (h->hypercall) {
			int r = handler_result(cpu, h->hypercall(ctx, cpu, &e->u.hypercall));

			return __builtin_expect(e->u.hypercall.nret > 4, 0) ? bad_nret(cpu) : r;
		}
		goto other;
	}
	if (e->kind == VCPU_EXIT_PIO) {
		io_fn = h->pio;
		goto io;
	}
	if (e->kind == VCPU_EXIT_SYSTEM_EVENT) {
		if (h->system_event)
			return handler_result(cpu, h->system_event(ctx, cpu, &e->u.system_event));
		goto other;
	}
	switch (e->kind) {
	case VCPU_EXIT_PCI_CONFIG:
		io_fn = h->pci_config;
	io:
		/* Kept from the handler for the write-back, handled or not. */
		memcpy(&cpu->acc, &e->u.io, sizeof(cpu->acc));
		if (io_fn)
			return io_result(cpu, call_io(io_fn, ctx, cpu));
		break;
	case VCPU_EXIT_MEMORY_FAULT: {
		int r;

		/* Nobody fixed the memory unless a handler says so. */
		e->u.fault.response = VCPU_IO_FAULT;
		if (h->memory_fault) {
			r = handler_result(cpu, h->memory_fault(ctx, cpu, &e->u.fault));
		} else if (h->other) {
			r = h->other(ctx, cpu, e);
			/* .other saw a const exit: continuing means "try again". */
			if (r == 0)
				e->u.fault.response = VCPU_IO_RETRY;
			r = handler_result(cpu, r);
		} else {
			return unhandled(cpu);
		}
		return r >= 0 && e->u.fault.response != VCPU_IO_RETRY ? unbacked(cpu) : r;
	}
	default:
		break;
	}
other:
	if (h->other)
		return handler_result(cpu, h->other(ctx, cpu, e));
	return unhandled(cpu);
}

/*
 * Consume a kick: clear the backend's flag only after taking the request.
 * A plain load first keeps the locked exchange off every exit; a kick the
 * load misses is caught by the driver's immediate-exit check or the signal,
 * and the EINTR brings the loop back here.
 */
static __attribute__((noinline)) bool take_kick_slow(struct vcpu *cpu,
						     const struct vcpu_backend_ops *ops)
{
	if (!atomic_exchange(&cpu->kick_pending, 0))
		return false;
	ops->set_immediate_exit(cpu, 0);
	return true;
}

static inline __attribute__((always_inline)) bool take_kick(struct vcpu *cpu,
							    const struct vcpu_backend_ops *ops)
{
	return __builtin_expect(atomic_load_explicit(&cpu->kick_pending, memory_order_acquire), 0) &&
	       take_kick_slow(cpu, ops);
}

/* What a kick taken means: vcpu_vm_stop_all()'s, or the VMM's own. */
static int kicked(const struct vcpu *cpu)
{
	return atomic_load(&cpu->vm->stop_all) ? -ECANCELED : -EINTR;
}

/*
 * Deferred kicks.  A driver with ops->resume_before_kick (Gunyah) takes a
 * pending MMIO completion out of the run page before it looks at
 * immediate_exit and at signals, and a run call either stops after that
 * loses the completion: the guest's read gets no data.  So while a run call
 * that carries one is entered (cpu->completing), vcpu_kick() sets neither:
 * it arms a timer that sends the kick signal KICK_DEFER_NS later, by when
 * the driver has long passed its window and the signal stops the guest.  A
 * kick seen before the call still returns -EINTR without entering.
 */
#define KICK_DEFER_NS 200000 /* 200 us */

/* This vcpu_run()'s timer: it sends the kick signal to this thread. */
static void kick_timer_start(struct vcpu *cpu)
{
	struct sigevent sev;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = cpu->vm->hv->kick_signal;
	sev._sigev_un._tid = atomic_load(&cpu->tid); /* glibc's name for sigev_notify_thread_id */
	/*
	 * Without a timer (RLIMIT_SIGPENDING, ENOMEM) kicks are sent at once,
	 * as they were before deferral, and may cost a completion (BUGS in
	 * vcpu_kick(3)).
	 */
	cpu->kick_timer_ok = timer_create(CLOCK_MONOTONIC, &sev, &cpu->kick_timer) == 0;
}

/* The window of one run call is over: a deferred kick's timer has nothing left to do. */
static void kick_window_end(struct vcpu *cpu)
{
	static const struct itimerspec off;

	atomic_store(&cpu->completing, 0);
	if (atomic_exchange(&cpu->kick_deferred, 0))
		timer_settime(cpu->kick_timer, 0, &off, NULL);
}

static void drop_pending_kick(const sigset_t *kick);

/*
 * vcpu_run() returns, the kick signal still blocked: no kicker may arm the
 * timer once it is gone, and a signal it already queued is taken here, not
 * by the VMM's code after vcpu_run().
 */
static void kick_timer_stop(struct vcpu *cpu)
{
	if (!cpu->kick_timer_ok)
		return;
	atomic_store(&cpu->completing, 0);
	while (atomic_load(&cpu->deferring))
		sched_yield();
	timer_delete(cpu->kick_timer);
	drop_pending_kick(&cpu->kick_set);
	atomic_store(&cpu->kick_deferred, 0);
	cpu->kick_timer_ok = false;
}

/* vcpu_kick(), while the target's run call carries a completion: true if held back. */
/*
 * vcpu_kick() on such a backend.  The whole kick is one section the vCPU
 * thread waits out before it enters a window (run_in_window()), so a kicker
 * that read completing clear cannot store immediate_exit=1 into a window
 * that opened after, however long it was preempted in between.
 */
static void kick_deferrable(struct vcpu *cpu, const struct vcpu_hv *hv)
{
	const struct itimerspec later = { .it_value = { .tv_nsec = KICK_DEFER_NS } };

	atomic_fetch_add(&cpu->deferring, 1);
	if (atomic_load(&cpu->completing)) {
		atomic_store(&cpu->kick_deferred, 1);
		if (timer_settime(cpu->kick_timer, 0, &later, NULL) == 0) {
			atomic_fetch_sub(&cpu->deferring, 1);
			return;
		}
	}
	hv->ops->set_immediate_exit(cpu, 1);
	if (atomic_load(&cpu->in_run) == 1)
		hv->sys->signal_thread(hv->sys_ctx, atomic_load(&cpu->tid), hv->kick_signal);
	atomic_fetch_sub(&cpu->deferring, 1);
}

/*
 * One run call that carries a completion (cpu->resume_at_entry): *kick when
 * a kick was taken instead of entering.
 */
static __attribute__((noinline)) int run_in_window(struct vcpu *cpu,
						   const struct vcpu_backend_ops *ops, bool *kick)
{
	int r;

	/*
	 * completing before kick_pending is read, as a kicker writes
	 * kick_pending before it reads completing: one of the two sees the
	 * other (both sequentially consistent).  A kicker that read completing
	 * clear may not have stored immediate_exit yet: wait for it
	 * (kick_deferrable()), then its kick is pending here.  What is left in
	 * immediate_exit after that belongs to a kick already taken.
	 */
	atomic_store(&cpu->completing, 1);
	while (atomic_load(&cpu->deferring))
		sched_yield();
	*kick = atomic_load(&cpu->kick_pending) && take_kick(cpu, ops);
	if (*kick) {
		kick_window_end(cpu);
		return 0;
	}
	ops->set_immediate_exit(cpu, 0);
	cpu->io_buf = NULL;
	r = cpu->enter(cpu);
	kick_window_end(cpu);
	return r;
}

/*
 * Where the driver has no signal mask of its own, the kick signal is let
 * through around the run call only; a kick landing just before the call is
 * taken by the handler in user space and caught by the immediate-exit flag.
 */
static int run_unblocked(struct vcpu *cpu)
{
	int r;

	pthread_sigmask(SIG_UNBLOCK, &cpu->kick_set, NULL);
	r = cpu->run_once(cpu);
	pthread_sigmask(SIG_BLOCK, &cpu->kick_set, NULL);
	return r;
}

/*
 * KVM leaves a kick signal that came while the thread was in user space
 * pending (blocked there), and would fail every KVM_RUN with EINTR until it
 * is taken: take it.
 */
static void drop_pending_kick(const sigset_t *kick)
{
	static const struct timespec now = { 0, 0 };

	while (sigtimedwait(kick, NULL, &now) > 0)
		;
}

VCPU_API int vcpu_run(struct vcpu *cpu, const struct vcpu_handlers *h, void *ctx)
{
	const struct vcpu_backend_ops *ops;
	bool unfinished = false;
	int expected = 0;
	sigset_t thread_mask;
	int r;

	if (!cpu)
		return -EINVAL;
	if (!h)
		return cpu_fail(cpu, -EINVAL, "vcpu_run: NULL handlers");
	for (size_t i = 0; i < sizeof(h->reserved) / sizeof(h->reserved[0]); i++)
		if (h->reserved[i])
			return cpu_fail(cpu, -EINVAL,
					"vcpu_run: vcpu_handlers.reserved[%zu] is set (a handler "
					"this version of libvcpu does not have)", i);
	ops = cpu->vm->hv->ops;
	/* 2 = claimed: the tid is not published yet, so kickers only set flags. */
	if (!atomic_compare_exchange_strong(&cpu->in_run, &expected, 2))
		return cpu_fail(cpu, -EBUSY, "vCPU %u is already in vcpu_run()", cpu->id);
	atomic_store(&cpu->tid, gettid());
	if (atomic_load(&cpu->vm->stop_all)) {
		atomic_store(&cpu->in_run, 0);
		return -ECANCELED; /* no detail: not an error, like a kick */
	}
	if (ops->resume_before_kick)
		kick_timer_start(cpu);
	atomic_store(&cpu->in_run, 1);
	/*
	 * The kick signal stays blocked while the handlers run, so their
	 * read(), write(), poll() or nanosleep() never fail with EINTR because
	 * of a kick; only the run call lets it through.
	 */
	/* The run call: the backend's own where it has a signal mask for it (KVM). */
	cpu->enter = ops->run_signal_mask ? cpu->run_once : run_unblocked;
	sigemptyset(&cpu->kick_set);
	sigaddset(&cpu->kick_set, cpu->vm->hv->kick_signal);
	pthread_sigmask(SIG_BLOCK, &cpu->kick_set, &thread_mask);
	if (ops->run_signal_mask) {
		sigset_t run_mask = thread_mask;

		sigdelset(&run_mask, cpu->vm->hv->kick_signal);
		r = ops->run_signal_mask(cpu, &run_mask);
		if (r < 0)
			goto out;
	}

	/*
	 * finish_pending: the exit last handled in this call still waits for
	 * the driver to be entered (its decoder sets it); none yet.  A kick
	 * taken before the next entry leaves it so, and the end below
	 * finishes it: a stop that lands while a handler answers a read
	 * returns with the read in the registers, where a snapshot sees it.
	 */
	cpu->finish_pending = false;
	for (;;) {
		if (__builtin_expect(cpu->resume_at_entry, 0) && cpu->kick_timer_ok) {
			/* The run call takes a completion before it looks at kicks (above). */
			bool kicked_before;

			r = run_in_window(cpu, ops, &kicked_before);
			if (kicked_before) {
				r = kicked(cpu);
				unfinished = cpu->finish_pending;
				break;
			}
		} else {
			/*
			 * A kick sets kick_pending before the backend's
			 * immediate-exit flag and the signal, so checking here
			 * and letting the driver check its flag at entry leaves
			 * no window to lose one.
			 */
			if (take_kick(cpu, ops)) {
				r = kicked(cpu);
				unfinished = cpu->finish_pending;
				break;
			}
			cpu->io_buf = NULL;
			r = cpu->enter(cpu);
		}
		if (__builtin_expect(r < 0, 0)) {
			/* Entering the driver completed the last exit, whatever it returned. */
			cpu->finish_pending = false;
			if (r != -EINTR)
				break;
			if (ops->run_signal_mask)
				drop_pending_kick(&cpu->kick_set);
			/*
			 * A kick (seen above) or another signal: re-enter.  A
			 * kicker whose flag store landed after take_kick()
			 * consumed its kick leaves the flag set with nothing
			 * pending; clear it, or every entry would fail at once.
			 * A kick racing with this sets kick_pending first, so
			 * the next take_kick() still sees it.
			 */
			if (!atomic_load(&cpu->kick_pending))
				ops->set_immediate_exit(cpu, 0);
			continue;
		}
		r = dispatch(cpu, h, ctx);
		/* Write back even when stopping: a resumed guest must see the result. */
		if (cpu->complete) {
			int c = cpu->complete(cpu, r);

			/*
			 * A write-back that failed beats a handler's stop
			 * code: the guest did not get what the handler gave
			 * it, and the caller must hear it.  An error the
			 * handler or dispatch already reported (an unhandled
			 * exit's -ENOSYS) stays first.  Nothing is left to
			 * finish.
			 */
			if (__builtin_expect(c < 0, 0)) {
				if (r >= 0)
					r = c;
				break;
			}
		}
		if (r != 0) {
			unfinished = cpu->finish_pending;
			break;
		}
	}
	/*
	 * Leave the vCPU consistent for the caller (register reads, saving
	 * state): the access just handled reaches the guest's registers now,
	 * not at the next vcpu_run().
	 */
	if (unfinished && ops->finish) {
		int c = ops->finish(cpu);

		/* Keep a kick that arrived meanwhile for the next vcpu_run(). */
		ops->set_immediate_exit(cpu, atomic_load(&cpu->kick_pending) ? 1 : 0);
		if (c < 0 && r >= 0)
			r = c;
	}
	restore_access(cpu);
out:
	kick_timer_stop(cpu);
	pthread_sigmask(SIG_SETMASK, &thread_mask, NULL);
	if (ops->run_end)
		ops->run_end(cpu);
	atomic_store(&cpu->in_run, 0);
	return r;
}

VCPU_API int vcpu_vm_stop_all(struct vcpu_vm *vm)
{
	if (!vm)
		return -EINVAL;
	/* Set before the kicks: a vCPU that takes one, or enters later, sees it. */
	atomic_store(&vm->stop_all, 1);
	pthread_mutex_lock(&vm->lock);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(vm->cpus[i]);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

VCPU_API int vcpu_vm_resume_all(struct vcpu_vm *vm)
{
	if (!vm)
		return -EINVAL;
	atomic_store(&vm->stop_all, 0);
	/*
	 * A vCPU that was not inside vcpu_run() still holds the stop's kick:
	 * take it back, or its next vcpu_run() would return -EINTR at once.
	 */
	pthread_mutex_lock(&vm->lock);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *cpu = vm->cpus[i];

		if (atomic_load(&cpu->in_run) == 0 && atomic_exchange(&cpu->kick_pending, 0))
			vm->hv->ops->set_immediate_exit(cpu, 0);
	}
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

VCPU_API int vcpu_hypercall_arg(struct vcpu *cpu, uint32_t i, uint64_t *value)
{
	struct vcpu_hypercall *hc;
	const struct vcpu_backend_ops *ops;
	int r;

	if (!cpu)
		return -EINVAL;
	if (!value)
		return cpu_fail(cpu, -EINVAL, "vcpu_hypercall_arg: NULL value pointer");
	hc = &cpu->exit.u.hypercall;
	if (cpu->exit.kind != VCPU_EXIT_HYPERCALL)
		return cpu_fail(cpu, -EINVAL, "vCPU %u: the last exit (%s) is not a hypercall",
				cpu->id, vcpu_exit_kind_name(cpu->exit.kind));
	if (i >= hc->nargs || i >= 8)
		return cpu_fail(cpu, -EINVAL, "vCPU %u: hypercall argument %u, the call has %u",
				cpu->id, i, hc->nargs);
	if (!(cpu->hc_known & (1u << i))) {
		if (cpu->hc_known & VCPU_HC_WRITTEN)
			return cpu_fail(cpu, -ESTALE, "vCPU %u: hypercall argument %u was not read "
					"before the results were written back", cpu->id, i);
		ops = cpu->vm->hv->ops;
		if (!ops->hypercall_arg)
			return cpu_fail(cpu, -EPROTO, "vCPU %u: the %s backend left hypercall "
					"argument %u unread", cpu->id, ops->name, i);
		r = ops->hypercall_arg(cpu, i, &hc->args[i]);
		if (r < 0)
			return r;
		cpu->hc_known |= 1u << i;
	}
	*value = hc->args[i];
	return 0;
}

VCPU_API int vcpu_kick(struct vcpu *cpu)
{
	const struct vcpu_hv *hv;
	int saved_errno = errno;

	if (!cpu)
		return -EINVAL;
	hv = cpu->vm->hv;
	atomic_store(&cpu->kick_pending, 1);
	if (hv->ops->resume_before_kick) {
		kick_deferrable(cpu, hv);
	} else {
		hv->ops->set_immediate_exit(cpu, 1);
		if (atomic_load(&cpu->in_run) == 1)
			hv->sys->signal_thread(hv->sys_ctx, atomic_load(&cpu->tid),
					       hv->kick_signal);
	}
	errno = saved_errno; /* callable from signal handlers */
	return 0;
}
