/* SPDX-License-Identifier: MIT */
/*
 * The mock suites' fixture (test_mock.c: exits and registers; test_mock_vm.c:
 * kicks, memory, VM calls, irqchips): leak accounting, script steps and the
 * recording handlers.  Header-only, like helpers.h: each suite is one file.
 */
#ifndef VCPU_TESTS_MOCK_FIXTURE_H
#define VCPU_TESTS_MOCK_FIXTURE_H

#define _GNU_SOURCE
#include <vcpu/arm64.h>
#include <vcpu/mock.h>
#include <vcpu/vcpu.h>

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/internal.h" /* the backend's flag, for the stale-flag race */
#include "helpers.h"
#include "threads.h"
#include "mock_steps.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define ARM64 VCPU_ARCH_ARM64
#define X86 VCPU_ARCH_X86_64

#define MMIO_BASE 0x10000000ull /* device window of the tests */
#define ARM_ADDR 0x1ffe0000ull  /* a write here arms a kicker */
#define RAM_GPA 0x40000000ull   /* guest RAM of the memory tests */
#define MAX_CPUS 8
#define NREC 128

/* kvm_run exit reasons (the uapi linux/kvm.h, Documentation/virt/kvm/api.rst 5). */
#define KVM_EXIT_UNKNOWN 0
#define KVM_EXIT_IO 2
#define KVM_EXIT_HYPERCALL 3
#define KVM_EXIT_DEBUG 4
#define KVM_EXIT_HLT 5
#define KVM_EXIT_MMIO 6
#define KVM_EXIT_SHUTDOWN 8
#define KVM_EXIT_FAIL_ENTRY 9
#define KVM_EXIT_INTERNAL_ERROR 17
#define KVM_EXIT_SYSTEM_EVENT 24
#define KVM_EXIT_MEMORY_FAULT 39

#define PSCI_SYSTEM_RESET2_64 0xc4000012u /* PSCI 1.1 SYSTEM_RESET2, SMC64 */
#define SMCCC_VENDOR_HYP_BASE 0xc6000000u /* vendor-specific hypervisor service calls */
#define X86_KVM_HC_MAP_GPA_RANGE 12u
#define KVM_RUN_REQ 0xae80ul /* _IO(KVMIO, 0x80) */

/* ------------------------------------------------------------------------ */
/* Fixture: leak accounting and handle ownership                              */

struct fx {
	long fds, maps;
	struct vcpu_mock *mock;
	struct vcpu_hv *hv;
	struct vcpu_vm *vm;
	struct vcpu *cpu[MAX_CPUS];
	struct {
		void *p;
		size_t len;
	} mem[4];
	size_t page;
};

static inline int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->page = (size_t)sysconf(_SC_PAGESIZE);
	f->fds = count_open_fds();
	f->maps = count_mappings();
	*state = f;
	return 0;
}

/*
 * Destroy everything first (so one failed check cannot leak into the next
 * test), then assert: every destroy returned 0, no live object was left in
 * the mock before it was destroyed, and the fd and mapping counts are back.
 */
static inline int teardown(void **state)
{
	struct fx *f = *state;
	int rc_cpu = 0, rc_vm = 0, rc_hv = 0, rc_mock = 0;
	unsigned live = 0;
	long fds, maps;

	for (unsigned i = 0; i < MAX_CPUS; i++)
		if (f->cpu[i] && vcpu_destroy(&f->cpu[i]) != 0)
			rc_cpu = -1;
	if (f->vm)
		rc_vm = vcpu_vm_destroy(&f->vm);
	if (f->hv) {
		rc_hv = vcpu_hv_close(f->hv);
		if (rc_hv == 0)
			f->hv = NULL;
	}
	if (f->mock) {
		live = vcpu_mock_live_objects(f->mock);
		rc_mock = vcpu_mock_destroy(&f->mock);
	}
	for (unsigned i = 0; i < ARRAY_SIZE(f->mem); i++)
		if (f->mem[i].p)
			munmap(f->mem[i].p, f->mem[i].len);
	fds = count_open_fds();
	maps = count_mappings();

	assert_int_equal(rc_cpu, 0);
	assert_int_equal(rc_vm, 0);
	assert_int_equal(rc_hv, 0);
	assert_int_equal(live, 0);
	assert_int_equal(rc_mock, 0);
	assert_null(f->mock);
	assert_int_equal(fds, f->fds);
	assert_int_equal(maps, f->maps);
	free(f);
	return 0;
}

static inline void open_cfg(struct fx *f, const struct vcpu_mock_config *cfg)
{
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_KVM, cfg, &f->mock, &f->hv), 0);
	assert_non_null(f->mock);
	assert_non_null(f->hv);
	assert_int_equal(vcpu_vm_create(f->hv, NULL, &f->vm), 0);
	assert_non_null(f->vm);
}

static inline void open_arch(struct fx *f, uint32_t arch)
{
	struct vcpu_mock_config cfg = { .arch = arch };

	open_cfg(f, &cfg);
}

static inline struct vcpu *add_cpu(struct fx *f, uint32_t id)
{
	assert_true(id < MAX_CPUS);
	assert_int_equal(vcpu_create(f->vm, id, 0, &f->cpu[id]), 0);
	assert_non_null(f->cpu[id]);
	assert_int_equal(vcpu_id(f->cpu[id]), id);
	return f->cpu[id];
}

/* One VM with vCPU 0 on a fresh mock of @arch. */
static inline struct vcpu *open_one(struct fx *f, uint32_t arch)
{
	open_arch(f, arch);
	return add_cpu(f, 0);
}

/* Page-aligned host memory, unmapped by the teardown (after the VM is gone). */
static inline void *guest_ram(struct fx *f, size_t pages)
{
	for (unsigned i = 0; i < ARRAY_SIZE(f->mem); i++) {
		if (f->mem[i].p)
			continue;
		f->mem[i].len = pages * f->page;
		f->mem[i].p = mmap(NULL, f->mem[i].len, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		assert_true(f->mem[i].p != MAP_FAILED);
		memset(f->mem[i].p, 0, f->mem[i].len);
		return f->mem[i].p;
	}
	fail_msg("guest_ram: too many regions");
	return NULL;
}

static inline void expect_detail(const char *detail)
{
	assert_non_null(detail);
	assert_true(strlen(detail) > 0);
}

/* ------------------------------------------------------------------------ */
/* Script steps                                                               */

static inline struct vcpu_mock_step mmio_read_sx(uint64_t addr, uint32_t len, uint64_t value, uint64_t reg)
{
	struct vcpu_mock_step s = mmio_read(addr, len, value, reg);

	s.flags = VCPU_MOCK_SIGN_EXTEND;
	return s;
}

static inline struct vcpu_mock_step hypercall(uint64_t nr, uint32_t flags, uint32_t nargs,
				       const uint64_t *args, uint32_t nexpect,
				       const uint64_t *expect)
{
	struct vcpu_mock_step s = step(VCPU_MOCK_HYPERCALL);

	s.value = nr;
	s.flags = flags;
	s.ndata = nargs;
	for (uint32_t i = 0; i < nargs; i++)
		s.args[i] = args[i];
	s.nexpect = nexpect;
	for (uint32_t i = 0; i < nexpect; i++)
		s.expect[i] = expect[i];
	return s;
}

static inline struct vcpu_mock_step with_data(uint32_t op, uint64_t value, uint32_t ndata,
				       const uint64_t *data)
{
	struct vcpu_mock_step s = step(op);

	s.value = value;
	s.ndata = ndata;
	for (uint32_t i = 0; i < ndata; i++)
		s.args[i] = data[i];
	return s;
}

static inline void put_le(uint8_t *p, uint64_t v, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t get_le(const uint8_t *p, unsigned len)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < len && i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/*
 * A RAW step: exit code @code with the kvm_run exit union (kvm_run offset
 * 32) given field by field; offsets below are from the union's start.
 */
static inline struct vcpu_mock_step raw(uint32_t code)
{
	struct vcpu_mock_step s = step(VCPU_MOCK_RAW);

	s.value = code;
	return s;
}

static inline void raw_put(struct vcpu_mock_step *s, unsigned off, uint64_t v, unsigned len)
{
	put_le(&s->raw[off], v, len);
}

static inline void script(struct fx *f, uint32_t id, const struct vcpu_mock_step *steps, size_t n)
{
	assert_int_equal(vcpu_mock_script(f->mock, id, steps, n), 0);
}

#define SCRIPT(f, id, steps) script((f), (id), (steps), ARRAY_SIZE(steps))

/* The mock saw only correct write-backs and vCPU @id completed @n steps. */
static inline void expect_script(struct fx *f, uint32_t id, size_t n)
{
	const char *msg = NULL;
	unsigned failures = vcpu_mock_failures(f->mock, &msg);

	if (failures)
		print_message("mock failure: %s\n", msg ? msg : "(no message)");
	assert_int_equal(failures, 0);
	assert_int_equal(vcpu_mock_steps_done(f->mock, id), n);
}

static inline uint64_t reg_of(struct vcpu *cpu, uint64_t reg)
{
	uint64_t v = 0xbad;

	assert_int_equal(vcpu_get_reg(cpu, reg, &v), 0);
	return v;
}

/* ------------------------------------------------------------------------ */
/* Recording handlers                                                         */

struct rec {
	/* What the handlers saw. */
	unsigned n_mmio, n_pio, n_hc, n_sev, n_other, n_io;
	struct vcpu_io io[NREC]; /* every MMIO access and port I/O item, in order */
	uint32_t io_cpu[NREC];   /* vcpu_id(cpu) of each */
	struct vcpu_hypercall hc[4];
	struct vcpu_system_event sev[4];
	struct vcpu_exit other[4];
	/* What they answer. */
	uint64_t reply[NREC]; /* values of reads, in order */
	unsigned n_reply, next_reply;
	int stop_rc;  /* for a write to STOP_ADDR */
	int io_rc;    /* for every other access */
	int hc_rc;
	unsigned hc_set; /* bit i: store hc_ret[i] into ret[i] */
	uint64_t hc_ret[4];
	int sev_rc, other_rc;
	/* Kick tests: ARM_ADDR sets armed, and starts the SIGALRM timer if asked. */
	atomic_int armed;
	int arm_timer_us;
	/* Handler-side checks (no cmocka asserts outside the main thread). */
	struct vcpu *self;
	int destroy_rc, rerun_rc;
	uint32_t want_id;
	uint64_t lo, hi; /* accepted address window (two-vCPU test) */
	atomic_int bad;
};

static inline void rec_init(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	r->stop_rc = VCPU_STOP;
	r->sev_rc = VCPU_STOP;
	r->other_rc = VCPU_STOP;
	r->destroy_rc = 1;
	r->rerun_rc = 1;
}

static inline void reply(struct rec *r, uint64_t v)
{
	assert_true(r->n_reply < NREC);
	r->reply[r->n_reply++] = v;
}

static inline void arm_timer(int us)
{
	struct itimerval t = { .it_value = { .tv_sec = 0, .tv_usec = us } };

	setitimer(ITIMER_REAL, &t, NULL);
}

static inline int on_io(struct rec *r, struct vcpu *cpu, struct vcpu_io *io)
{
	if (r->n_io < NREC) {
		r->io[r->n_io] = *io;
		r->io_cpu[r->n_io] = vcpu_id(cpu);
	}
	r->n_io++;
	if (r->hi && (io->addr < r->lo || io->addr >= r->hi) && io->addr != STOP_ADDR)
		atomic_store(&r->bad, 1);
	if (r->hi && (io->vcpu_id != r->want_id || vcpu_id(cpu) != r->want_id))
		atomic_store(&r->bad, 1);
	if (io->is_write && io->addr == STOP_ADDR)
		return r->stop_rc;
	if (io->is_write && io->addr == ARM_ADDR) {
		atomic_store(&r->armed, 1);
		if (r->arm_timer_us)
			arm_timer(r->arm_timer_us);
		return VCPU_CONTINUE;
	}
	if (!io->is_write) {
		uint64_t v = r->next_reply < r->n_reply ? r->reply[r->next_reply] : 0;
		r->next_reply++;
		memset(io->data, 0, sizeof(io->data));
		put_le(io->data, v, io->len);
	}
	return r->io_rc;
}

static inline int on_mmio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct rec *r = ctx;

	r->n_mmio++;
	return on_io(r, cpu, io);
}

static inline int on_pio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct rec *r = ctx;

	r->n_pio++;
	return on_io(r, cpu, io);
}

static inline int on_hypercall(void *ctx, struct vcpu *cpu, struct vcpu_hypercall *hc)
{
	struct rec *r = ctx;

	(void)cpu;
	if (r->n_hc < ARRAY_SIZE(r->hc))
		r->hc[r->n_hc] = *hc;
	r->n_hc++;
	for (unsigned i = 0; i < 4; i++)
		if (r->hc_set & (1u << i))
			hc->ret[i] = r->hc_ret[i];
	return r->hc_rc;
}

static inline int on_system_event(void *ctx, struct vcpu *cpu, const struct vcpu_system_event *ev)
{
	struct rec *r = ctx;

	(void)cpu;
	if (r->n_sev < ARRAY_SIZE(r->sev))
		r->sev[r->n_sev] = *ev;
	r->n_sev++;
	return r->sev_rc;
}

static inline int on_other(void *ctx, struct vcpu *cpu, const struct vcpu_exit *e)
{
	struct rec *r = ctx;

	(void)cpu;
	if (r->n_other < ARRAY_SIZE(r->other))
		r->other[r->n_other] = *e;
	r->n_other++;
	return r->other_rc;
}

static const struct vcpu_handlers H_ALL __attribute__((unused)) = {
	.mmio = on_mmio,
	.pio = on_pio,
	.hypercall = on_hypercall,
	.system_event = on_system_event,
	.other = on_other,
};

/* Everything but .other: fatal exits then make vcpu_run() return -EIO. */
static const struct vcpu_handlers H_NO_OTHER __attribute__((unused)) = {
	.mmio = on_mmio,
	.pio = on_pio,
	.hypercall = on_hypercall,
	.system_event = on_system_event,
};

static const struct vcpu_handlers H_MMIO_ONLY __attribute__((unused)) = { .mmio = on_mmio };


#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/*
 * Warm the process up before counting anything: the first heap growth, the
 * kick signal's handler and stdio buffers must not look like a leak of the
 * first test.  One arena for all threads: a per-thread malloc arena would
 * show as a mapping that outlives its thread.
 */
static inline void warm_up(void)
{
	for (uint32_t arch = X86; arch <= ARM64; arch++) {
		struct vcpu_mock_config cfg = { .arch = arch };
		struct vcpu_mock *m = NULL;
		struct vcpu_hv *hv = NULL;
		struct vcpu_vm *vm = NULL;
		struct vcpu *cpu = NULL;

		if (vcpu_mock_open(VCPU_BACKEND_KVM, &cfg, &m, &hv) != 0)
			continue;
		if (vcpu_vm_create(hv, NULL, &vm) == 0) {
			if (vcpu_create(vm, 0, 0, &cpu) == 0)
				vcpu_destroy(&cpu);
			vcpu_vm_destroy(&vm);
		}
		vcpu_hv_close(hv);
		vcpu_mock_destroy(&m);
	}
	(void)count_open_fds();
	(void)count_mappings();
	fflush(stdout);
}

#endif
