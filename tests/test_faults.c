// SPDX-License-Identifier: MIT
/*
 * The `faults` suite: every kernel call libvcpu makes can fail, and each
 * failure must end in a clean negative errno with a readable detail, no
 * leaked fd, mapping or allocation, and handles that are still usable or
 * cleanly destroyable.
 *
 * Each scenario is a list of public-API steps run against the mock driver.
 * A first, fault-free run counts the kernel calls (vcpu_mock_calls()) and
 * records what each one was.  Then, for every call k and every errno that
 * kind of call can return, the scenario is replayed on a fresh mock whose
 * call k fails (vcpu_mock_config.fault_at, so even the handle's own open is
 * covered):
 *  - a failing step must return a negative errno and leave a detail on its
 *    handle;
 *  - a failing set-up step is retried once without the fault and must then
 *    succeed: the failure left the handles usable;
 *  - everything is destroyed (each destroy must return 0) and the fd and
 *    mapping counts must be back where they were.
 * The ASan/UBSan build runs this suite too, so leaked memory and invalid
 * accesses on error paths fail it as well.
 */
#define _GNU_SOURCE
#include <vcpu/arm64.h>
#include <vcpu/mock.h>
#include <vcpu/vcpu.h>

#include <errno.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MMIO 0x10000000ull
#define STOP 0x1fff0000ull
#define RAM 0x40000000ull
#define NCPU 2

/* The errnos each kind of call can return on Linux (open(2), ioctl(2), mmap(2), close(2)). */
static const int open_errs[] = { ENOENT, EACCES, EMFILE, ENOMEM };
static const int ioctl_errs[] = { EINVAL, ENOMEM, EFAULT, EINTR, ENOTTY, EIO, EBUSY };
static const int mmap_errs[] = { ENOMEM, EINVAL, ENODEV, EACCES };
static const int close_errs[] = { EIO, EINTR };

struct sc {
	uint32_t arch;
	struct vcpu_mock *mock;
	struct vcpu_hv *hv;
	struct vcpu_vm *vm;
	struct vcpu *cpu[NCPU];
	void *ram;        /* the VMM's own memory (x86 scenario) */
	size_t ram_len;
	int efd[2];
	unsigned stops;   /* handler stops seen */
};

/* A step returns 0 or -errno; @detail receives the handle's last error. */
typedef int (*step_fn)(struct sc *s, const char **detail);

struct scenario {
	const char *name;
	enum vcpu_backend backend;
	uint32_t arch;
	int (*script)(struct vcpu_mock *m);
	const step_fn *steps;
	size_t nsteps;
	size_t retry_upto; /* steps before this index are set-up: retried after a fault */
};

/* ------------------------------------------------------------------------ */
/* Steps                                                                      */

static int st_vm(struct sc *s, const char **d)
{
	int r = vcpu_vm_create(s->hv, NULL, &s->vm);

	*d = vcpu_hv_last_error(s->hv);
	return r;
}

static int st_cpu(struct sc *s, uint32_t id, const char **d)
{
	int r = vcpu_create(s->vm, id, 0, &s->cpu[id]);

	*d = vcpu_vm_last_error(s->vm);
	return r;
}

static int st_cpu0(struct sc *s, const char **d)
{
	return st_cpu(s, 0, d);
}

static int st_cpu1(struct sc *s, const char **d)
{
	return st_cpu(s, 1, d);
}

static int st_alloc(struct sc *s, const char **d)
{
	void *host = NULL;
	int r = vcpu_vm_alloc(s->vm, RAM, 16 * 4096, 0, &host);

	*d = vcpu_vm_last_error(s->vm);
	if (r == 0 && !host)
		return -EPROTO;
	return r;
}

static int st_map(struct sc *s, const char **d)
{
	int r = vcpu_vm_map(s->vm, RAM, s->ram, s->ram_len, 0);

	*d = vcpu_vm_last_error(s->vm);
	return r;
}

static int st_gic(struct sc *s, const char **d)
{
	int r = vcpu_vm_create_gic_v3(s->vm, 0x8000000, 0x80a0000, 128);

	*d = vcpu_vm_last_error(s->vm);
	return r;
}

static int st_x86_irqchip(struct sc *s, const char **d)
{
	int r = vcpu_x86_create_irqchip(s->vm, VCPU_X86_IRQCHIP_PIT);

	*d = vcpu_vm_last_error(s->vm);
	return r;
}

static int st_x86_irqfd(struct sc *s, const char **d)
{
	struct vcpu_irqfd a = { .fd = s->efd[0], .irq = 4 };
	int r = vcpu_vm_irqfd(s->vm, &a);

	*d = vcpu_vm_last_error(s->vm);
	return r;
}

static int st_x86_irq_line(struct sc *s, const char **d)
{
	int r = vcpu_vm_set_irq_line(s->vm, 3, 1);

	if (r == 0)
		r = vcpu_vm_set_irq_line(s->vm, 3, 0);
	*d = vcpu_vm_last_error(s->vm);
	return r;
}

static int st_forward(struct sc *s, const char **d)
{
	int r = vcpu_vm_forward_hypercalls(s->vm, 0xc6000000u, 0x100);

	*d = vcpu_vm_last_error(s->vm);
	return r;
}

static int st_irqfd(struct sc *s, const char **d)
{
	struct vcpu_irqfd a = { .fd = s->efd[0], .irq = 40 };
	int r = vcpu_vm_irqfd(s->vm, &a);

	*d = vcpu_vm_last_error(s->vm);
	return r;
}

static int st_ioeventfd(struct sc *s, const char **d)
{
	struct vcpu_ioeventfd a = { .fd = s->efd[1], .addr = MMIO + 0x800, .len = 4 };
	int r = vcpu_vm_ioeventfd(s->vm, &a);

	*d = vcpu_vm_last_error(s->vm);
	return r;
}

static int st_arm_regs(struct sc *s, const char **d)
{
	int r = vcpu_set_reg(s->cpu[0], VCPU_REG_ARM64_PC, RAM);
	uint64_t v = 0;

	if (r == 0)
		r = vcpu_set_reg(s->cpu[0], VCPU_REG_ARM64_X(0), 0x1234);
	if (r == 0)
		r = vcpu_get_reg(s->cpu[0], VCPU_REG_ARM64_X(0), &v);
	if (r == 0 && v != 0x1234)
		r = -EPROTO;
	*d = vcpu_last_error(s->cpu[0]);
	return r;
}

static int st_x86_regs(struct sc *s, const char **d)
{
	struct vcpu_x86_segment cs = { .base = 0, .limit = 0xffffffff, .selector = 8, .type = 11,
				       .present = 1, .s = 1, .l = 1, .g = 1 };
	/* Long mode in one batch: GET_REGS, GET_SREGS, SET_SREGS, SET_REGS (+ restore). */
	const struct vcpu_reg regs[] = {
		{ .id = VCPU_REG_X86_CR4, .value = 0x20 },
		{ .id = VCPU_REG_X86_CR0, .value = 0x80050033 },
		{ .id = VCPU_REG_X86_EFER, .value = 0x500 },
		{ .id = VCPU_REG_X86_SEG(VCPU_X86_CS), .seg = cs },
		{ .id = VCPU_REG_X86_RIP, .value = 0x1000 },
	};
	int r = vcpu_set_regs(s->cpu[0], regs, ARRAY_SIZE(regs));
	uint64_t v = 0;

	if (r == 0)
		r = vcpu_set_reg(s->cpu[0], VCPU_REG_X86_RAX, 0x1234);
	/* ACRN cannot read registers back. */
	if (r == 0 && vcpu_hv_backend(s->hv) == VCPU_BACKEND_KVM)
		r = vcpu_get_reg(s->cpu[0], VCPU_REG_X86_CR0, &v);
	if (r == 0 && vcpu_hv_backend(s->hv) == VCPU_BACKEND_KVM && v != 0x80050033)
		r = -EPROTO;
	*d = vcpu_last_error(s->cpu[0]);
	return r;
}

static int st_dtb(struct sc *s, const char **d)
{
	int r = vcpu_vm_set_dtb(s->vm, RAM, 4096);

	*d = vcpu_vm_last_error(s->vm);
	return r;
}

static int st_start(struct sc *s, const char **d)
{
	int r = vcpu_vm_start(s->vm);

	*d = vcpu_vm_last_error(s->vm);
	return r;
}

static int st_boot_pc(struct sc *s, const char **d)
{
	int r = vcpu_set_reg(s->cpu[0], VCPU_REG_ARM64_PC, RAM + 0x1000);

	if (r == 0)
		r = vcpu_set_reg(s->cpu[0], VCPU_REG_ARM64_X(0), RAM);
	*d = vcpu_last_error(s->cpu[0]);
	return r;
}

static int st_irq_line(struct sc *s, const char **d)
{
	int r = vcpu_vm_set_irq_line(s->vm, 40, 1);

	*d = vcpu_vm_last_error(s->vm);
	return r;
}

static int on_io(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct sc *s = ctx;

	(void)cpu;
	if (io->is_write && io->addr == STOP) {
		s->stops++;
		return VCPU_STOP;
	}
	if (!io->is_write) {
		memset(io->data, 0, sizeof(io->data));
		io->data[0] = 0x5a;
	}
	return VCPU_CONTINUE;
}

static int on_hypercall(void *ctx, struct vcpu *cpu, struct vcpu_hypercall *hc)
{
	(void)ctx;
	(void)cpu;
	hc->ret[0] = 0;
	hc->ret[1] = 0x77;
	return VCPU_CONTINUE;
}

static int on_event(void *ctx, struct vcpu *cpu, const struct vcpu_system_event *ev)
{
	(void)ctx;
	(void)cpu;
	(void)ev;
	return VCPU_STOP;
}

static const struct vcpu_handlers handlers = {
	.mmio = on_io, .pio = on_io, .hypercall = on_hypercall, .system_event = on_event,
};

static int st_run(struct sc *s, const char **d)
{
	int r = vcpu_run(s->cpu[0], &handlers, s);

	*d = vcpu_last_error(s->cpu[0]);
	if (r == VCPU_STOP)
		return 0;
	return r < 0 ? r : -EPROTO;
}

/* ------------------------------------------------------------------------ */
/* Scripts                                                                    */

static struct vcpu_mock_step mk(uint32_t op, uint64_t addr, uint32_t len, uint64_t value)
{
	struct vcpu_mock_step st;

	memset(&st, 0, sizeof(st));
	st.op = op;
	st.addr = addr;
	st.len = len;
	st.value = value;
	return st;
}

static int script_arm64(struct vcpu_mock *m)
{
	struct vcpu_mock_step st[6];

	st[0] = mk(VCPU_MOCK_MMIO_READ, MMIO, 4, 0x5a);
	st[0].reg = 3;
	st[1] = mk(VCPU_MOCK_MMIO_WRITE, MMIO + 0x800, 4, 9); /* the ioeventfd: no exit */
	st[2] = mk(VCPU_MOCK_HYPERCALL, 0, 0, 0xc6000001u);
	st[2].nexpect = 2;
	st[2].expect[1] = 0x77;
	st[3] = mk(VCPU_MOCK_MEM_WRITE, RAM + 64, 8, 42);
	st[4] = mk(VCPU_MOCK_MMIO_WRITE, STOP, 4, 1);
	st[5] = mk(VCPU_MOCK_SYSTEM_EVENT, 0, 0, 1 /* KVM_SYSTEM_EVENT_SHUTDOWN */);
	return vcpu_mock_script(m, 0, st, ARRAY_SIZE(st));
}

static int script_x86(struct vcpu_mock *m)
{
	struct vcpu_mock_step st[7];

	st[0] = mk(VCPU_MOCK_PIO_IN, 0x3f8, 1, 0x5a);
	st[1] = mk(VCPU_MOCK_PIO_OUT, 0x3f8, 1, 0x41);
	st[2] = mk(VCPU_MOCK_PIO_OUT, 0x43, 1, 0x34); /* the in-kernel PIT: no exit */
	st[3] = mk(VCPU_MOCK_HLT, 0, 0, 0);           /* the in-kernel LAPIC: no exit */
	st[4] = mk(VCPU_MOCK_MMIO_READ, MMIO, 4, 0x5a);
	st[5] = mk(VCPU_MOCK_MEM_CHECK, RAM + 128, 8, 0);
	st[6] = mk(VCPU_MOCK_MMIO_WRITE, STOP, 4, 1);
	return vcpu_mock_script(m, 0, st, ARRAY_SIZE(st));
}

static int script_gunyah(struct vcpu_mock *m)
{
	struct vcpu_mock_step st[4];

	st[0] = mk(VCPU_MOCK_MMIO_READ, MMIO, 4, 0x5a);
	st[0].reg = 3;
	st[1] = mk(VCPU_MOCK_MEM_WRITE, RAM + 64, 8, 42);
	st[2] = mk(VCPU_MOCK_MMIO_WRITE, STOP, 4, 1);
	st[3] = mk(VCPU_MOCK_GUNYAH_VM_EXITED, 0, 0, 1 /* PSCI_POWER_OFF */);
	return vcpu_mock_script(m, 0, st, ARRAY_SIZE(st));
}

static int script_geniezone(struct vcpu_mock *m)
{
	struct vcpu_mock_step st[5];

	st[0] = mk(VCPU_MOCK_MMIO_READ, MMIO, 4, 0x5a);
	st[0].reg = 3;
	st[1] = mk(VCPU_MOCK_HYPERCALL, 0, 0, 0xc6000001u);
	st[1].nexpect = 2;
	st[1].expect[1] = 0x77;
	st[2] = mk(VCPU_MOCK_MEM_WRITE, RAM + 64, 8, 42);
	st[3] = mk(VCPU_MOCK_MMIO_WRITE, STOP, 4, 1);
	st[4] = mk(VCPU_MOCK_SYSTEM_EVENT, 0, 0, 1 /* GZVM_SYSTEM_EVENT_SHUTDOWN */);
	return vcpu_mock_script(m, 0, st, ARRAY_SIZE(st));
}

static int script_acrn(struct vcpu_mock *m)
{
	struct vcpu_mock_step st[4];

	st[0] = mk(VCPU_MOCK_MMIO_READ, MMIO, 4, 0x5a);
	st[1] = mk(VCPU_MOCK_PIO_OUT, 0x3f8, 1, 0x41);
	st[2] = mk(VCPU_MOCK_PIO_IN, 0x3f8, 1, 0x5a);
	st[3] = mk(VCPU_MOCK_MMIO_WRITE, STOP, 4, 1);
	return vcpu_mock_script(m, 0, st, ARRAY_SIZE(st));
}

static const step_fn acrn_steps[] = {
	st_vm, st_map, st_cpu0, st_x86_regs, st_start, st_run,
};

static const step_fn gunyah_steps[] = {
	st_vm, st_alloc, st_dtb, st_cpu0, st_cpu1, st_boot_pc, st_ioeventfd, st_start, st_run, st_run,
};

static const step_fn geniezone_steps[] = {
	st_vm, st_alloc, st_cpu0, st_cpu1, st_gic, st_boot_pc, st_irqfd, st_ioeventfd, st_run,
	st_irq_line, st_run,
};

static const step_fn arm64_steps[] = {
	st_vm, st_alloc, st_cpu0, st_cpu1, st_gic, st_forward, st_irqfd, st_ioeventfd, st_arm_regs,
	st_run, st_irq_line, st_run,
};

static const step_fn x86_steps[] = {
	st_vm, st_x86_irqchip, st_map, st_cpu0, st_x86_regs, st_x86_irqfd, st_x86_irq_line, st_run,
};

static const struct scenario scenarios[] = {
	{ "kvm-arm64", VCPU_BACKEND_KVM, VCPU_ARCH_ARM64, script_arm64, arm64_steps,
	  ARRAY_SIZE(arm64_steps), 9 },
	{ "kvm-x86", VCPU_BACKEND_KVM, VCPU_ARCH_X86_64, script_x86, x86_steps,
	  ARRAY_SIZE(x86_steps), 7 },
	{ "gunyah", VCPU_BACKEND_GUNYAH, VCPU_ARCH_ARM64, script_gunyah, gunyah_steps,
	  ARRAY_SIZE(gunyah_steps), 8 },
	{ "geniezone", VCPU_BACKEND_GENIEZONE, VCPU_ARCH_ARM64, script_geniezone, geniezone_steps,
	  ARRAY_SIZE(geniezone_steps), 8 },
	{ "acrn", VCPU_BACKEND_ACRN, VCPU_ARCH_X86_64, script_acrn, acrn_steps,
	  ARRAY_SIZE(acrn_steps), 5 },
};

/* ------------------------------------------------------------------------ */
/* The sweep                                                                  */

/*
 * Steps whose kernel object outlives a failure half-way: KVM keeps a vCPU
 * until its VM dies even when its fd is closed, and a VM has one vGIC and
 * one SMCCC filter.  Retrying those after a late fault is the driver's
 * EEXIST, not a library bug; every other retry must succeed.
 */
static bool burns_on_failure(step_fn fn)
{
	return fn == st_cpu0 || fn == st_cpu1 || fn == st_gic || fn == st_forward;
}

struct outcome {
	uint64_t calls;       /* kernel calls the run made */
	int failed_step;      /* -1: every step succeeded */
	int rc;
};

static void teardown_sc(struct sc *s)
{
	for (unsigned i = 0; i < NCPU; i++)
		if (s->cpu[i])
			assert_int_equal(vcpu_destroy(&s->cpu[i]), 0);
	if (s->vm) {
		/* A refused ACRN_IOCTL_DESTROY_VM keeps the VM: destroying again works. */
		int r = vcpu_vm_destroy(&s->vm);

		if (r < 0 && s->vm)
			r = vcpu_vm_destroy(&s->vm);
		assert_int_equal(r, 0);
	}
	if (s->hv)
		assert_int_equal(vcpu_hv_close(s->hv), 0);
	if (s->mock) {
		assert_int_equal(vcpu_mock_live_objects(s->mock), 0);
		assert_int_equal(vcpu_mock_destroy(&s->mock), 0);
	}
	if (s->ram)
		munmap(s->ram, s->ram_len);
	close(s->efd[0]);
	close(s->efd[1]);
}

/*
 * Run @sc with kernel call @fault_at failing with -@err (0: no fault).
 * Returns what happened; asserts the error contract on the way.
 */
static struct outcome run_scenario(const struct scenario *sc, uint32_t fault_at, int err)
{
	struct vcpu_mock_config cfg = { .arch = sc->arch, .fault_at = fault_at, .fault_errno = err };
	struct outcome o = { .failed_step = -1 };
	struct sc s = { .arch = sc->arch };
	const char *detail = NULL;
	int r;

	s.efd[0] = eventfd(0, EFD_CLOEXEC);
	s.efd[1] = eventfd(0, EFD_CLOEXEC);
	assert_true(s.efd[0] >= 0 && s.efd[1] >= 0);
	s.ram_len = 16 * 4096;
	s.ram = mmap(NULL, s.ram_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(s.ram != MAP_FAILED);

	r = vcpu_mock_open(sc->backend, &cfg, &s.mock, &s.hv);
	if (r < 0) {
		/* The fault hit the handle's own set-up: nothing may be left behind. */
		assert_true(fault_at > 0);
		assert_null(s.mock);
		assert_null(s.hv);
		o.failed_step = 0;
		o.rc = r;
		teardown_sc(&s);
		return o;
	}
	assert_int_equal(sc->script(s.mock), 0);
	for (size_t i = 0; i < sc->nsteps; i++) {
		detail = NULL;
		r = sc->steps[i](&s, &detail);
		if (r == 0)
			continue;
		/* The error contract: a negative errno and a reason on the handle. */
		assert_true(r < 0);
		assert_non_null(detail);
		if (!fault_at || !detail[0])
			print_message("%s step %zu: %d \"%s\"\n", sc->name, i, r, detail);
		assert_true(fault_at > 0);
		assert_true(detail[0] != '\0');
		o.failed_step = (int)(i + 1);
		o.rc = r;
		/* Set-up calls must leave the handles usable: the same call now succeeds. */
		if (i < sc->retry_upto) {
			r = sc->steps[i](&s, &detail);
			if (r == -EEXIST && burns_on_failure(sc->steps[i]))
				r = 0;
			if (r != 0)
				print_message("%s step %zu retry: %d \"%s\"\n", sc->name, i, r, detail);
			assert_int_equal(r, 0);
		}
		break;
	}
	o.calls = vcpu_mock_calls(s.mock);
	teardown_sc(&s);
	return o;
}

static size_t errs_for(uint32_t call, const int **errs)
{
	switch (call) {
	case VCPU_MOCK_CALL_OPEN:
		*errs = open_errs;
		return ARRAY_SIZE(open_errs);
	case VCPU_MOCK_CALL_IOCTL:
		*errs = ioctl_errs;
		return ARRAY_SIZE(ioctl_errs);
	case VCPU_MOCK_CALL_MMAP:
		*errs = mmap_errs;
		return ARRAY_SIZE(mmap_errs);
	case VCPU_MOCK_CALL_CLOSE:
		*errs = close_errs;
		return ARRAY_SIZE(close_errs);
	default:
		*errs = NULL;
		return 0;
	}
}

/* What each call of the fault-free run was: a fresh mock replays it identically. */
static struct vcpu_mock_call_info *record_calls(const struct scenario *sc, uint64_t *n)
{
	struct vcpu_mock_config cfg = { .arch = sc->arch };
	struct sc s = { .arch = sc->arch };
	const char *detail;
	struct vcpu_mock_call_info *calls;

	s.efd[0] = eventfd(0, EFD_CLOEXEC);
	s.efd[1] = eventfd(0, EFD_CLOEXEC);
	s.ram_len = 16 * 4096;
	s.ram = mmap(NULL, s.ram_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(s.ram != MAP_FAILED);
	assert_int_equal(vcpu_mock_open(sc->backend, &cfg, &s.mock, &s.hv), 0);
	assert_int_equal(sc->script(s.mock), 0);
	for (size_t i = 0; i < sc->nsteps; i++) {
		int r = sc->steps[i](&s, &detail);

		if (r != 0)
			print_message("%s step %zu without a fault: %d \"%s\"\n", sc->name, i, r,
				      detail);
		assert_int_equal(r, 0);
	}
	assert_int_equal(vcpu_mock_failures(s.mock, NULL), 0);
	/* Include the teardown's own calls: closes can fail too. */
	for (unsigned i = 0; i < NCPU; i++)
		if (s.cpu[i])
			assert_int_equal(vcpu_destroy(&s.cpu[i]), 0);
	assert_int_equal(vcpu_vm_destroy(&s.vm), 0);
	*n = vcpu_mock_calls(s.mock);
	calls = calloc(*n + 1, sizeof(*calls));
	assert_non_null(calls);
	for (uint64_t k = 1; k <= *n; k++)
		assert_int_equal(vcpu_mock_call_info(s.mock, k, &calls[k]), 0);
	assert_int_equal(vcpu_hv_close(s.hv), 0);
	s.hv = NULL;
	teardown_sc(&s);
	return calls;
}

/*
 * A fault the library cannot tell from a different driver: Gunyah's probe
 * (GUNYAH_CREATE_GUEST_MEM on the device fd) failing with ENOTTY is exactly
 * what the v8 driver answers, so the handle then speaks v8, correctly.
 */
#define GUNYAH_CREATE_GUEST_MEM 0x40404708ul

static bool indistinguishable(const struct scenario *sc, const struct vcpu_mock_call_info *c,
			      int err)
{
	return sc->backend == VCPU_BACKEND_GUNYAH && c->call == VCPU_MOCK_CALL_IOCTL &&
	       c->req == GUNYAH_CREATE_GUEST_MEM && err == ENOTTY;
}

static void sweep(const struct scenario *sc)
{
	long fds = count_open_fds(), maps = count_mappings();
	unsigned runs = 0, failures = 0;
	uint64_t n = 0;
	struct vcpu_mock_call_info *calls = record_calls(sc, &n);

	assert_true(n > 10);
	for (uint64_t k = 1; k <= n; k++) {
		const int *errs;
		size_t nerr = errs_for(calls[k].call, &errs);

		for (size_t e = 0; e < nerr; e++) {
			struct outcome o;

			if (indistinguishable(sc, &calls[k], errs[e]))
				continue;
			o = run_scenario(sc, (uint32_t)k, errs[e]);

			runs++;
			if (o.failed_step >= 0)
				failures++;
			assert_int_equal(count_open_fds(), fds);
			assert_int_equal(count_mappings(), maps);
		}
	}
	free(calls);
	print_message("%s: %llu kernel calls, %u faulted runs, %u ended in a clean error\n",
		      sc->name, (unsigned long long)n, runs, failures);
	/* Most faults must surface (EINTR on KVM_RUN and failed closes need not). */
	assert_true(failures > runs / 2);
}

static void test_sweep_kvm_arm64(void **state)
{
	(void)state;
	sweep(&scenarios[0]);
}

static void test_sweep_kvm_x86(void **state)
{
	(void)state;
	sweep(&scenarios[1]);
}

static void test_sweep_gunyah(void **state)
{
	(void)state;
	sweep(&scenarios[2]);
}

static void test_sweep_geniezone(void **state)
{
	(void)state;
	sweep(&scenarios[3]);
}

static void test_sweep_acrn(void **state)
{
	(void)state;
	sweep(&scenarios[4]);
}

/* The injection itself: numbering, recording, one-shot, argument checks. */
static void test_injection_api(void **state)
{
	struct vcpu_mock_config bad = { .fault_at = 1 };
	struct vcpu_mock_config bad2 = { .fault_errno = 5 };
	struct vcpu_mock *m = NULL;
	struct vcpu_hv *hv = NULL;
	struct vcpu_vm *vm = NULL;
	struct vcpu_mock_call_info ci;
	uint64_t n;

	(void)state;
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_KVM, &bad, &m, &hv), -EINVAL);
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_KVM, &bad2, &m, &hv), -EINVAL);
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_KVM, NULL, &m, &hv), 0);
	n = vcpu_mock_calls(m);
	assert_true(n >= 1);
	assert_int_equal(vcpu_mock_call_info(m, 1, &ci), 0);
	assert_int_equal(ci.call, VCPU_MOCK_CALL_OPEN);
	assert_true(ci.result >= 0);
	assert_int_equal(vcpu_mock_call_info(m, n + 1, &ci), -ENOENT);
	assert_int_equal(vcpu_mock_call_info(m, 0, &ci), -ENOENT);
	/* A past call cannot fail any more; the next one can, once. */
	assert_int_equal(vcpu_mock_fail_call(m, n, EIO), -EINVAL);
	assert_int_equal(vcpu_mock_fail_call(m, n + 1, 0), -EINVAL);
	assert_int_equal(vcpu_mock_fail_call(m, n + 1, ENOMEM), 0);
	assert_int_equal(vcpu_vm_create(hv, NULL, &vm), -ENOMEM);
	assert_true(strstr(vcpu_hv_last_error(hv), "KVM_CREATE_VM") != NULL);
	assert_int_equal(vcpu_mock_call_info(m, n + 1, &ci), 0);
	assert_int_equal(ci.call, VCPU_MOCK_CALL_IOCTL);
	assert_int_equal(ci.result, -ENOMEM);
	assert_int_equal(vcpu_vm_create(hv, NULL, &vm), 0);
	/* Cancelled: nothing fails. */
	assert_int_equal(vcpu_mock_fail_call(m, vcpu_mock_calls(m) + 1, EIO), 0);
	assert_int_equal(vcpu_mock_fail_call(m, 0, 0), 0);
	assert_int_equal(vcpu_vm_destroy(&vm), 0);
	assert_int_equal(vcpu_hv_close(hv), 0);
	assert_int_equal(vcpu_mock_destroy(&m), 0);
	assert_int_equal(vcpu_mock_calls(NULL), 0);
	assert_int_equal(vcpu_mock_fail_call(NULL, 1, EIO), -EINVAL);
	assert_int_equal(vcpu_mock_call_info(NULL, 1, &ci), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_injection_api),
		cmocka_unit_test(test_sweep_kvm_arm64),
		cmocka_unit_test(test_sweep_kvm_x86),
		cmocka_unit_test(test_sweep_gunyah),
		cmocka_unit_test(test_sweep_geniezone),
		cmocka_unit_test(test_sweep_acrn),
	};

	/* Warm up stdio and the allocator so the first sweep's counts are stable. */
	(void)count_open_fds();
	(void)count_mappings();
	fflush(stdout);
	return cmocka_run_group_tests_name("faults", tests, NULL, NULL);
}
