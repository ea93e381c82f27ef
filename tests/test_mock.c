// SPDX-License-Identifier: MIT
/*
 * The `mock` suite: libvcpu against the mock KVM driver (include/vcpu/mock.h),
 * for both modelled architectures on any host.
 *
 * Every test runs between a setup that records the process's open fds and
 * memory mappings and a teardown that destroys every handle (asserting 0),
 * checks that the mock holds no live object, destroys the mock, and asserts
 * both counts are back: nothing leaks, in any test.
 *
 * Scripted tests finish with expect_script(): the mock recorded no failed
 * write-back check and the vCPU completed exactly the steps it was given.
 * Unless a test says otherwise a script ends with stop(): an MMIO write to
 * STOP_ADDR, which the recording handlers answer by stopping vcpu_run().
 */
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

/* kvm_run exit reasons and system event types (shared/abi/kvm.md section 3). */
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
#define KVM_RUN_REQ 0xae80ul /* _IO(KVMIO, 0x80), abi/kvm.md */

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

static int setup(void **state)
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
static int teardown(void **state)
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

static void open_cfg(struct fx *f, const struct vcpu_mock_config *cfg)
{
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_KVM, cfg, &f->mock, &f->hv), 0);
	assert_non_null(f->mock);
	assert_non_null(f->hv);
	assert_int_equal(vcpu_vm_create(f->hv, NULL, &f->vm), 0);
	assert_non_null(f->vm);
}

static void open_arch(struct fx *f, uint32_t arch)
{
	struct vcpu_mock_config cfg = { .arch = arch };

	open_cfg(f, &cfg);
}

static struct vcpu *add_cpu(struct fx *f, uint32_t id)
{
	assert_true(id < MAX_CPUS);
	assert_int_equal(vcpu_create(f->vm, id, 0, &f->cpu[id]), 0);
	assert_non_null(f->cpu[id]);
	assert_int_equal(vcpu_id(f->cpu[id]), id);
	return f->cpu[id];
}

/* One VM with vCPU 0 on a fresh mock of @arch. */
static struct vcpu *open_one(struct fx *f, uint32_t arch)
{
	open_arch(f, arch);
	return add_cpu(f, 0);
}

/* Page-aligned host memory, unmapped by the teardown (after the VM is gone). */
static void *guest_ram(struct fx *f, size_t pages)
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

static void expect_detail(const char *detail)
{
	assert_non_null(detail);
	assert_true(strlen(detail) > 0);
}

/* ------------------------------------------------------------------------ */
/* Script steps                                                               */

static struct vcpu_mock_step mmio_read_sx(uint64_t addr, uint32_t len, uint64_t value, uint64_t reg)
{
	struct vcpu_mock_step s = mmio_read(addr, len, value, reg);

	s.flags = VCPU_MOCK_SIGN_EXTEND;
	return s;
}

static struct vcpu_mock_step hypercall(uint64_t nr, uint32_t flags, uint32_t nargs,
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

static struct vcpu_mock_step with_data(uint32_t op, uint64_t value, uint32_t ndata,
				       const uint64_t *data)
{
	struct vcpu_mock_step s = step(op);

	s.value = value;
	s.ndata = ndata;
	for (uint32_t i = 0; i < ndata; i++)
		s.args[i] = data[i];
	return s;
}

static void put_le(uint8_t *p, uint64_t v, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned len)
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
static struct vcpu_mock_step raw(uint32_t code)
{
	struct vcpu_mock_step s = step(VCPU_MOCK_RAW);

	s.value = code;
	return s;
}

static void raw_put(struct vcpu_mock_step *s, unsigned off, uint64_t v, unsigned len)
{
	put_le(&s->raw[off], v, len);
}

static void script(struct fx *f, uint32_t id, const struct vcpu_mock_step *steps, size_t n)
{
	assert_int_equal(vcpu_mock_script(f->mock, id, steps, n), 0);
}

#define SCRIPT(f, id, steps) script((f), (id), (steps), ARRAY_SIZE(steps))

/* The mock saw only correct write-backs and vCPU @id completed @n steps. */
static void expect_script(struct fx *f, uint32_t id, size_t n)
{
	const char *msg = NULL;
	unsigned failures = vcpu_mock_failures(f->mock, &msg);

	if (failures)
		print_message("mock failure: %s\n", msg ? msg : "(no message)");
	assert_int_equal(failures, 0);
	assert_int_equal(vcpu_mock_steps_done(f->mock, id), n);
}

static uint64_t reg_of(struct vcpu *cpu, uint64_t reg)
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

static void rec_init(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	r->stop_rc = VCPU_STOP;
	r->sev_rc = VCPU_STOP;
	r->other_rc = VCPU_STOP;
	r->destroy_rc = 1;
	r->rerun_rc = 1;
}

static void reply(struct rec *r, uint64_t v)
{
	assert_true(r->n_reply < NREC);
	r->reply[r->n_reply++] = v;
}

static void arm_timer(int us)
{
	struct itimerval t = { .it_value = { .tv_sec = 0, .tv_usec = us } };

	setitimer(ITIMER_REAL, &t, NULL);
}

static int on_io(struct rec *r, struct vcpu *cpu, struct vcpu_io *io)
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

static int on_mmio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct rec *r = ctx;

	r->n_mmio++;
	return on_io(r, cpu, io);
}

static int on_pio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct rec *r = ctx;

	r->n_pio++;
	return on_io(r, cpu, io);
}

static int on_hypercall(void *ctx, struct vcpu *cpu, struct vcpu_hypercall *hc)
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

static int on_system_event(void *ctx, struct vcpu *cpu, const struct vcpu_system_event *ev)
{
	struct rec *r = ctx;

	(void)cpu;
	if (r->n_sev < ARRAY_SIZE(r->sev))
		r->sev[r->n_sev] = *ev;
	r->n_sev++;
	return r->sev_rc;
}

static int on_other(void *ctx, struct vcpu *cpu, const struct vcpu_exit *e)
{
	struct rec *r = ctx;

	(void)cpu;
	if (r->n_other < ARRAY_SIZE(r->other))
		r->other[r->n_other] = *e;
	r->n_other++;
	return r->other_rc;
}

static const struct vcpu_handlers H_ALL = {
	.mmio = on_mmio,
	.pio = on_pio,
	.hypercall = on_hypercall,
	.system_event = on_system_event,
	.other = on_other,
};

/* Everything but .other: fatal exits then make vcpu_run() return -EIO. */
static const struct vcpu_handlers H_NO_OTHER = {
	.mmio = on_mmio,
	.pio = on_pio,
	.hypercall = on_hypercall,
	.system_event = on_system_event,
};

static const struct vcpu_handlers H_MMIO_ONLY = { .mmio = on_mmio };

/* ======================================================================== */
/* Handles and lifecycle: objects are created top-down and destroyed          */
/* bottom-up; every handle reports its backend and architecture.              */

static void test_open_arm64(void **state)
{
	struct fx *f = *state;

	open_one(f, ARM64);
	assert_int_equal(vcpu_hv_backend(f->hv), VCPU_BACKEND_KVM);
	assert_int_equal(vcpu_hv_arch(f->hv), VCPU_ARCH_ARM64);
	assert_string_equal(vcpu_backend_name(vcpu_hv_backend(f->hv)), "kvm");
	assert_int_equal(vcpu_last_exit(f->cpu[0])->kind, VCPU_EXIT_NONE);
	assert_true(vcpu_mock_live_objects(f->mock) > 0);
}

static void test_open_x86(void **state)
{
	struct fx *f = *state;

	open_one(f, X86);
	assert_int_equal(vcpu_hv_backend(f->hv), VCPU_BACKEND_KVM);
	assert_int_equal(vcpu_hv_arch(f->hv), VCPU_ARCH_X86_64);
	assert_int_equal(vcpu_last_exit(f->cpu[0])->kind, VCPU_EXIT_NONE);
	assert_true(vcpu_mock_live_objects(f->mock) > 0);
}

/*
 * The leak accounting can fail: a live vCPU shows as one more fd each for
 * the system, VM and vCPU objects, and two run-page mappings (the
 * library's and the mock kernel's own view), and destroying everything
 * brings both counts back.
 */
static void test_leak_accounting_sees_objects(void **state)
{
	struct fx *f = *state;

	open_one(f, ARM64);
	assert_int_equal(count_open_fds(), f->fds + 3);
	assert_int_equal(count_mappings(), f->maps + 2);
	assert_int_equal(vcpu_destroy(&f->cpu[0]), 0);
	/* The vCPU lives as long as its VM (kvm.md §1): only the library's mapping went. */
	assert_int_equal(count_open_fds(), f->fds + 2);
	assert_int_equal(count_mappings(), f->maps + 1);
	assert_int_equal(vcpu_vm_destroy(&f->vm), 0);
	assert_int_equal(count_open_fds(), f->fds + 1);
	assert_int_equal(count_mappings(), f->maps);
}

static void test_mock_open_errors(void **state)
{
	struct fx *f = *state;
	struct vcpu_mock_config bad_arch = { .arch = 77 };
	struct vcpu_mock_config bad_reserved = { .arch = ARM64, .reserved = { 1 } };
	struct vcpu_mock *m = NULL;
	struct vcpu_hv *hv = NULL;

	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_KVM, NULL, NULL, &hv), -EINVAL);
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_KVM, NULL, &m, NULL), -EINVAL);
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_KVM, &bad_arch, &m, &hv), -EINVAL);
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_KVM, &bad_reserved, &m, &hv), -EINVAL);
	/* Gunyah is modelled now (test_gunyah.c): use a backend that does not exist. */
	assert_int_equal(vcpu_mock_open((enum vcpu_backend)99, NULL, &m, &hv), -EINVAL);
	assert_null(m);
	assert_null(hv);
	assert_int_equal(vcpu_mock_destroy(NULL), -EINVAL);
	assert_int_equal(vcpu_mock_destroy(&m), -EINVAL);
	(void)f;
}

/*
 * libvcpu-mock.so reaches libvcpu.so through vcpu_hv_open_sys() with its own
 * seam table: a table of another release (VCPU_SYS_ABI) is refused, not
 * called, and nothing is opened.
 */
static void test_seam_abi_mismatch(void **state)
{
	struct vcpu_sys other = vcpu_sys_linux;
	struct vcpu_hv *hv = NULL;
	long fds = count_open_fds();

	other.abi = VCPU_SYS_ABI + 1;
	assert_int_equal(vcpu_hv_open_sys(VCPU_BACKEND_KVM, VCPU_ARCH_HOST, "/dev/null", &other,
					  NULL, &hv), -EPROTO);
	assert_null(hv);
	assert_int_equal(count_open_fds(), fds);
	(void)state;
}

/* ======================================================================== */
/* Capabilities: each answer is asked of the driver (KVM_CHECK_EXTENSION,    */
/* KVM_HAS_DEVICE_ATTR), so the mock's configuration shows through.          */

static void test_cap_values_from_driver(void **state)
{
	struct fx *f = *state;
	struct vcpu_mock_config cfg = { .arch = ARM64, .max_vcpus = 5, .nr_memslots = 7,
					.ipa_bits = 44 };
	uint64_t v = 0;

	open_cfg(f, &cfg);
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_MAX_VCPUS, &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_NR_MEMSLOTS, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_ARM_IPA_BITS, &v), 0);
	assert_int_equal(v, 44);
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_IMMEDIATE_EXIT, &v), 0);
	assert_true(v > 0);
	assert_int_equal(vcpu_vm_check(f->vm, VCPU_CAP_MAX_VCPUS, &v), 0);
	assert_int_equal(v, 5);
}

static void test_cap_no_immediate_exit(void **state)
{
	struct fx *f = *state;
	struct vcpu_mock_config cfg = { .arch = X86, .flags = VCPU_MOCK_NO_IMMEDIATE_EXIT };
	uint64_t v = 1;

	open_cfg(f, &cfg);
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_IMMEDIATE_EXIT, &v), 0);
	assert_int_equal(v, 0);
}

static void test_cap_smccc_filter(void **state)
{
	struct fx *f = *state;
	uint64_t v = 0;

	open_arch(f, ARM64);
	assert_int_equal(vcpu_vm_check(f->vm, VCPU_CAP_ARM_SMCCC_FILTER, &v), 0);
	assert_int_equal(v, 1);
	/* A VM attribute: not answerable on the hypervisor handle. */
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_ARM_SMCCC_FILTER, &v), -EOPNOTSUPP);
	expect_detail(vcpu_hv_last_error(f->hv));
}

static void test_cap_no_smccc_filter(void **state)
{
	struct fx *f = *state;
	struct vcpu_mock_config cfg = { .arch = ARM64, .flags = VCPU_MOCK_NO_SMCCC_FILTER };
	uint64_t v = 1;

	open_cfg(f, &cfg);
	assert_int_equal(vcpu_vm_check(f->vm, VCPU_CAP_ARM_SMCCC_FILTER, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, SMCCC_VENDOR_HYP_BASE, 16),
			 -EOPNOTSUPP);
	expect_detail(vcpu_vm_last_error(f->vm));
}

static void test_cap_unknown(void **state)
{
	struct fx *f = *state;
	uint64_t v = 0;

	open_arch(f, X86);
	assert_int_equal(vcpu_hv_check(f->hv, (enum vcpu_cap)999, &v), -EINVAL);
	expect_detail(vcpu_hv_last_error(f->hv));
	assert_int_equal(vcpu_vm_check(f->vm, (enum vcpu_cap)0, &v), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	/* arm64-only capabilities are simply absent on x86. */
	assert_int_equal(vcpu_vm_check(f->vm, VCPU_CAP_ARM_SMCCC_FILTER, &v), 0);
	assert_int_equal(v, 0);
}

/* ======================================================================== */
/* Registers: KVM_{GET,SET}_ONE_REG (arm64) and kvm_regs/kvm_sregs (x86)     */
/* round-trip through the driver, and what is set is what the guest sees.    */

static void test_regs_arm64_core(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	const uint64_t other[] = { VCPU_REG_ARM64_SP, VCPU_REG_ARM64_PC, VCPU_REG_ARM64_PSTATE,
				   VCPU_REG_ARM64_SP_EL1, VCPU_REG_ARM64_ELR_EL1 };
	const uint64_t oval[] = { 0x7fff0000, 0x40080000, 0x3c5, 0x7ffe0000, 0x40000100 };

	for (unsigned i = 0; i <= 30; i++)
		assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_X(i),
					      0xa5a5000000000000ull | (uint64_t)i << 8 | i), 0);
	for (unsigned i = 0; i < ARRAY_SIZE(other); i++)
		assert_int_equal(vcpu_set_reg(cpu, other[i], oval[i]), 0);
	for (unsigned i = 0; i <= 30; i++)
		assert_int_equal(reg_of(cpu, VCPU_REG_ARM64_X(i)),
				 0xa5a5000000000000ull | (uint64_t)i << 8 | i);
	for (unsigned i = 0; i < ARRAY_SIZE(other); i++)
		assert_int_equal(reg_of(cpu, other[i]), oval[i]);
}

static void test_regs_arm64_sysreg(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);

	assert_int_equal(VCPU_REG_ARM64_MPIDR_EL1, VCPU_REG_ARM64_SYSREG(3, 0, 0, 0, 5));
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_MPIDR_EL1, 0x80000102), 0);
	assert_int_equal(reg_of(cpu, VCPU_REG_ARM64_MPIDR_EL1), 0x80000102);
}

static void test_regs_x86_gprs(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);

	for (uint64_t r = VCPU_REG_X86_RAX; r <= VCPU_REG_X86_R15; r++)
		assert_int_equal(vcpu_set_reg(cpu, r, 0x1111000000000000ull | r), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_RIP, 0xfff0), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_RFLAGS, 0x202), 0);
	for (uint64_t r = VCPU_REG_X86_RAX; r <= VCPU_REG_X86_R15; r++)
		assert_int_equal(reg_of(cpu, r), 0x1111000000000000ull | r);
	assert_int_equal(reg_of(cpu, VCPU_REG_X86_RIP), 0xfff0);
	assert_int_equal(reg_of(cpu, VCPU_REG_X86_RFLAGS), 0x202);
}

static void test_regs_x86_control(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);

	/*
	 * A consistent long-mode set: PG|WP|NE|ET|MP|PE, PAE, LME|LMA, one
	 * register at a time in an order whose every step KVM accepts (PAE
	 * paging, then long mode); EFER.LMA before CR0.PG is refused.
	 */
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_CR3, 0x9000), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_CR4, 0x20), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_EFER, 0x500), -EINVAL);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_CR0, 0x80050033), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_EFER, 0x500), 0);
	assert_int_equal(reg_of(cpu, VCPU_REG_X86_CR0), 0x80050033);
	assert_int_equal(reg_of(cpu, VCPU_REG_X86_CR3), 0x9000);
	assert_int_equal(reg_of(cpu, VCPU_REG_X86_CR4), 0x20);
	assert_int_equal(reg_of(cpu, VCPU_REG_X86_EFER), 0x500);
}

static void test_regs_x86_segments(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	const struct vcpu_x86_segment cs = { .base = 0, .limit = 0xffffffff, .selector = 0x8,
					     .type = 0xb, .present = 1, .s = 1, .l = 1, .g = 1 };
	const struct vcpu_x86_segment ds = { .base = 0x1000, .limit = 0xfffff, .selector = 0x10,
					     .type = 0x3, .present = 1, .db = 1, .s = 1, .g = 1 };
	const struct vcpu_x86_segment tr = { .base = 0x3000, .limit = 0x67, .selector = 0x18,
					     .type = 0xb, .present = 1 };
	const struct vcpu_x86_segment gdt = { .base = 0x5000, .limit = 0x27 };
	const struct vcpu_x86_segment idt = { .base = 0x6000, .limit = 0xfff };
	struct vcpu_x86_segment s;

	/* A 64-bit CS only in long mode (kvm_is_valid_sregs()). */
	assert_int_equal(vcpu_x86_set_segment(cpu, VCPU_X86_CS, &cs), -EINVAL);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_CR4, 0x20), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_CR0, 0x80000011), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_EFER, 0x500), 0);
	assert_int_equal(vcpu_x86_set_segment(cpu, VCPU_X86_CS, &cs), 0);
	assert_int_equal(vcpu_x86_set_segment(cpu, VCPU_X86_DS, &ds), 0);
	assert_int_equal(vcpu_x86_set_segment(cpu, VCPU_X86_SS, &ds), 0);
	assert_int_equal(vcpu_x86_set_segment(cpu, VCPU_X86_TR, &tr), 0);
	assert_int_equal(vcpu_x86_set_segment(cpu, VCPU_X86_GDT, &gdt), 0);
	assert_int_equal(vcpu_x86_set_segment(cpu, VCPU_X86_IDT, &idt), 0);

	assert_int_equal(vcpu_x86_get_segment(cpu, VCPU_X86_CS, &s), 0);
	assert_memory_equal(&s, &cs, sizeof(s));
	assert_int_equal(vcpu_x86_get_segment(cpu, VCPU_X86_DS, &s), 0);
	assert_memory_equal(&s, &ds, sizeof(s));
	assert_int_equal(vcpu_x86_get_segment(cpu, VCPU_X86_SS, &s), 0);
	assert_memory_equal(&s, &ds, sizeof(s));
	assert_int_equal(vcpu_x86_get_segment(cpu, VCPU_X86_TR, &s), 0);
	assert_memory_equal(&s, &tr, sizeof(s));
	assert_int_equal(vcpu_x86_get_segment(cpu, VCPU_X86_GDT, &s), 0);
	assert_int_equal(s.base, gdt.base);
	assert_int_equal(s.limit, gdt.limit);
	assert_int_equal(vcpu_x86_get_segment(cpu, VCPU_X86_IDT, &s), 0);
	assert_int_equal(s.base, idt.base);
	assert_int_equal(s.limit, idt.limit);
	/* Setting one segment left the others alone. */
	assert_int_equal(vcpu_x86_get_segment(cpu, VCPU_X86_CS, &s), 0);
	assert_int_equal(s.selector, 0x8);
}

static void test_regs_wrong_arch(void **state)
{
	struct fx *f = *state;
	struct vcpu_x86_segment s = { .limit = 1 };
	struct vcpu_mock *m2 = NULL;
	struct vcpu_hv *hv2 = NULL;
	struct vcpu_vm *vm2 = NULL;
	struct vcpu *x86cpu = NULL, *armcpu = open_one(f, ARM64);
	struct vcpu_mock_config cfg = { .arch = X86 };
	uint64_t v = 0;

	assert_int_equal(vcpu_get_reg(armcpu, VCPU_REG_X86_RAX, &v), -EINVAL);
	expect_detail(vcpu_last_error(armcpu));
	assert_int_equal(vcpu_set_reg(armcpu, VCPU_REG_X86_CR3, 0), -EINVAL);
	assert_int_equal(vcpu_x86_get_segment(armcpu, VCPU_X86_CS, &s), -EINVAL);
	assert_int_equal(vcpu_x86_set_segment(armcpu, VCPU_X86_CS, &s), -EINVAL);
	assert_int_equal(vcpu_get_reg(armcpu, 0xdead, &v), -EINVAL);

	/* A second mock in the same test: the other architecture. */
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_KVM, &cfg, &m2, &hv2), 0);
	assert_int_equal(vcpu_vm_create(hv2, NULL, &vm2), 0);
	assert_int_equal(vcpu_create(vm2, 0, 0, &x86cpu), 0);
	assert_int_equal(vcpu_get_reg(x86cpu, VCPU_REG_ARM64_X(0), &v), -EINVAL);
	expect_detail(vcpu_last_error(x86cpu));
	assert_int_equal(vcpu_set_reg(x86cpu, VCPU_REG_ARM64_PC, 0), -EINVAL);
	assert_int_equal(vcpu_get_reg(x86cpu, VCPU_REG_ARM64_MPIDR_EL1, &v), -EINVAL);
	assert_int_equal(vcpu_get_reg(x86cpu, 0xdead, &v), -EINVAL);
	assert_int_equal(vcpu_x86_get_segment(x86cpu, (enum vcpu_x86_seg)42, &s), -EINVAL);
	assert_int_equal(vcpu_destroy(&x86cpu), 0);
	assert_int_equal(vcpu_vm_destroy(&vm2), 0);
	assert_int_equal(vcpu_hv_close(hv2), 0);
	assert_int_equal(vcpu_mock_live_objects(m2), 0);
	assert_int_equal(vcpu_mock_destroy(&m2), 0);
}

/* What vcpu_set_reg() stores is what the scripted guest reads (REG_CHECK). */
static void test_regs_reach_guest_arm64(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct rec r;
	struct vcpu_mock_step s[] = {
		reg_check(VCPU_REG_ARM64_X(9), 0x9999aaaa),
		reg_check(VCPU_REG_ARM64_SP, 0x7fff0000),
		reg_check(VCPU_REG_ARM64_MPIDR_EL1, 0x80000003),
		stop(),
	};

	rec_init(&r);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_X(9), 0x9999aaaa), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_SP, 0x7fff0000), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_MPIDR_EL1, 0x80000003), 0);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 1);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_regs_reach_guest_x86(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	struct vcpu_mock_step s[] = {
		reg_check(VCPU_REG_X86_RBX, 0xb0b0b0b0),
		reg_check(VCPU_REG_X86_R15, 0xf15),
		stop(),
	};

	rec_init(&r);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_RBX, 0xb0b0b0b0), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_R15, 0xf15), 0);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* ======================================================================== */
/* MMIO (KVM_EXIT_MMIO): a write shows phys_addr/len/data to the handler;   */
/* a read's len bytes go to mmio.data and reach the destination register on */
/* the next KVM_RUN (zero- or sign-extended by the instruction); arm64 PC    */
/* advances by 4 per completed access.                                       */

static const uint32_t lens[] = { 1, 2, 4, 8 };
static const uint64_t vals[] = { 0xab, 0xbeef, 0xdeadbeef, 0x0123456789abcdefull };

static void mmio_writes(struct fx *f, uint32_t arch)
{
	struct vcpu *cpu = open_one(f, arch);
	struct rec r;
	struct vcpu_mock_step s[] = {
		mmio_write(MMIO_BASE + 0x00, 1, vals[0]),
		mmio_write(MMIO_BASE + 0x10, 2, vals[1]),
		mmio_write(MMIO_BASE + 0x20, 4, vals[2]),
		mmio_write(MMIO_BASE + 0x30, 8, vals[3]),
		stop(),
	};

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 5);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(r.io[i].addr, MMIO_BASE + 0x10 * i);
		assert_int_equal(r.io[i].len, lens[i]);
		assert_int_equal(r.io[i].is_write, 1);
		assert_int_equal(get_le(r.io[i].data, lens[i]), vals[i]);
		assert_int_equal(r.io[i].vcpu_id, 0);
		assert_int_equal(r.io_cpu[i], 0);
	}
	assert_int_equal(vcpu_last_exit(cpu)->kind, VCPU_EXIT_MMIO);
	assert_int_equal(vcpu_last_exit(cpu)->raw_reason, KVM_EXIT_MMIO);
	assert_int_equal(vcpu_last_exit(cpu)->u.io.addr, STOP_ADDR);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/*
 * KVM_RUN failing with EAGAIN (an x86 application processor leaving
 * wait-for-SIPI with the in-kernel LAPIC) is no exit: the vCPU is entered
 * again, and the guest carries on where it was.
 */
static void test_run_eagain_reenters(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct vcpu_mock_call_info ci;
	struct rec r;
	struct vcpu_mock_step s[] = {
		mmio_write(MMIO_BASE, 4, 0x1234),
		stop(),
	};
	/* vcpu_run()'s first call is KVM_SET_SIGNAL_MASK, its second KVM_RUN. */
	uint64_t first = vcpu_mock_calls(f->mock) + 2;

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_mock_fail_call(f->mock, first, EAGAIN), 0);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(vcpu_mock_call_info(f->mock, first, &ci), 0);
	assert_int_equal(ci.call, VCPU_MOCK_CALL_IOCTL);
	assert_int_equal(ci.req, KVM_RUN_REQ);
	assert_int_equal(ci.result, -EAGAIN);
	assert_int_equal(r.n_mmio, 2);
	assert_int_equal(get_le(r.io[0].data, 4), 0x1234);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* KVM completes every access: it cannot fault or retry one, and a response
 * outside the enum is the handler's bug. */
static int answer_with(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	(void)cpu;
	io->response = *(const uint32_t *)ctx;
	return VCPU_CONTINUE;
}

static void test_io_response_checked(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	const struct vcpu_handlers h = { .mmio = answer_with };
	struct vcpu_mock_step s[] = { mmio_read(MMIO_BASE, 4, 0, 0), mmio_read(MMIO_BASE, 4, 0, 0) };
	uint32_t response = VCPU_IO_FAULT;

	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &h, &response), -EOPNOTSUPP);
	expect_detail(vcpu_last_error(cpu));
	response = VCPU_IO_RETRY + 1;
	assert_int_equal(vcpu_run(cpu, &h, &response), -EINVAL);
	assert_non_null(strstr(vcpu_last_error(cpu), "not HANDLED, FAULT or RETRY"));
}

/*
 * A handler that stops the loop and leaves a bad response: the write-back
 * error, not the stop code, is what vcpu_run() returns (a resumed guest
 * would not read what the handler meant).
 */
static int on_other_stop(void *ctx, struct vcpu *cpu, const struct vcpu_exit *e)
{
	(void)ctx, (void)cpu, (void)e;
	return VCPU_STOP;
}

static int answer_and_stop(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	(void)cpu;
	io->data[0] = 0x34;
	io->data[1] = 0x12;
	io->response = *(const uint32_t *)ctx;
	return VCPU_STOP;
}

static void test_stop_keeps_writeback_error(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	const struct vcpu_handlers h = { .mmio = answer_and_stop };
	struct vcpu_mock_step s[] = { mmio_read(MMIO_BASE, 2, 0x1234, 0), stop() };
	uint32_t response = VCPU_IO_RETRY + 5;

	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &h, &response), -EINVAL);
	assert_non_null(strstr(vcpu_last_error(cpu), "not HANDLED, FAULT or RETRY"));
}

/* A stop with a good answer stays a stop, and the resumed guest reads the value. */
static void test_stop_with_answer(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	const struct vcpu_handlers h = { .mmio = answer_and_stop, .other = on_other_stop };
	struct vcpu_mock_step s[] = { mmio_read(MMIO_BASE, 2, 0x1234, 0), stop() };
	uint32_t response = VCPU_IO_HANDLED;

	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &h, &response), VCPU_STOP);
	assert_int_equal(vcpu_run(cpu, &h, &response), VCPU_STOP);
	assert_int_equal(vcpu_mock_failures(f->mock, NULL), 0);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/*
 * VM-level calls may come from any thread (vcpu.h), failures included: two
 * threads failing on one VM at once each get a whole detail (under TSan,
 * an unserialised write of the detail is a reported race).
 */
struct fail_maps {
	struct vcpu_vm *vm;
	atomic_int bad;
};

static void *fail_maps(void *arg)
{
	struct fail_maps *fm = arg;

	for (int i = 0; i < 2000; i++) {
		uint64_t v = 0;

		if (vcpu_vm_map(fm->vm, 0x1001, NULL, 4096, 0) != -EINVAL ||
		    vcpu_vm_check(fm->vm, (enum vcpu_cap)999, &v) != -EINVAL)
			atomic_fetch_add(&fm->bad, 1);
	}
	return NULL;
}

static void test_vm_errors_from_threads(void **state)
{
	struct fx *f = *state;
	struct fail_maps fm = { 0 };
	struct thr a, b;

	open_arch(f, X86);
	fm.vm = f->vm;
	thr_start(&a, fail_maps, &fm);
	thr_start(&b, fail_maps, &fm);
	thr_join(&a);
	thr_join(&b);
	assert_int_equal(atomic_load(&fm.bad), 0);
	expect_detail(vcpu_vm_last_error(f->vm));
}

/*
 * arm64: KVM wants one feature set per VM, so a vCPU whose PSCI question
 * failed is not created (it would have no PSCI, and the next vCPU's
 * KVM_ARM_VCPU_INIT would be refused); the next attempt works.
 */
static void test_psci_check_failure_fails_vcpu(void **state)
{
	struct fx *f = *state;
	uint64_t t0, check = 0;

	open_arch(f, ARM64);
	/* Find the CHECK_EXTENSION of a vCPU creation, then fail it on the next one. */
	t0 = vcpu_mock_calls(f->mock);
	add_cpu(f, 0);
	for (uint64_t i = t0 + 1; i <= vcpu_mock_calls(f->mock) && !check; i++) {
		struct vcpu_mock_call_info c;

		assert_int_equal(vcpu_mock_call_info(f->mock, i, &c), 0);
		if (c.call == VCPU_MOCK_CALL_IOCTL && c.req == 0xae03 /* KVM_CHECK_EXTENSION */)
			check = i - t0;
	}
	assert_true(check > 0);
	assert_int_equal(vcpu_destroy(&f->cpu[0]), 0);
	assert_int_equal(vcpu_mock_fail_call(f->mock, vcpu_mock_calls(f->mock) + check, EIO), 0);
	assert_int_equal(vcpu_create(f->vm, 1, 0, &f->cpu[1]), -EIO);
	assert_null(f->cpu[1]);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "PSCI"));
	/* KVM keeps vCPU 1 (created before the failure) until the VM dies: use 2. */
	add_cpu(f, 2);
}

static void test_mmio_write_arm64(void **state)
{
	mmio_writes(*state, ARM64);
}

static void test_mmio_write_x86(void **state)
{
	mmio_writes(*state, X86);
}

/* The access carries the id of the vCPU that made it (not always 0). */
static void test_mmio_vcpu_id(void **state)
{
	struct fx *f = *state;
	struct rec r;
	struct vcpu_mock_step s[] = { mmio_write(MMIO_BASE, 4, 7), stop() };
	struct vcpu *cpu;

	open_arch(f, ARM64);
	cpu = add_cpu(f, 3);
	rec_init(&r);
	SCRIPT(f, 3, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 2);
	assert_int_equal(r.io_cpu[0], 3);
	assert_int_equal(r.io[0].vcpu_id, 3);
	assert_int_equal(vcpu_last_exit(cpu)->vcpu_id, 3);
	expect_script(f, 3, ARRAY_SIZE(s));
}

static void test_mmio_read_arm64(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct rec r;
	struct vcpu_mock_step s[] = {
		mmio_read(MMIO_BASE + 0x00, 1, vals[0], 5),
		reg_check(VCPU_REG_ARM64_X(5), vals[0]),
		mmio_read(MMIO_BASE + 0x10, 2, vals[1], 6),
		reg_check(VCPU_REG_ARM64_X(6), vals[1]),
		mmio_read(MMIO_BASE + 0x20, 4, vals[2], 7),
		reg_check(VCPU_REG_ARM64_X(7), vals[2]),
		mmio_read(MMIO_BASE + 0x30, 8, vals[3], 8),
		reg_check(VCPU_REG_ARM64_X(8), vals[3]),
		stop(),
	};

	rec_init(&r);
	/* All ones before: a narrow load must zero-extend into the register. */
	for (unsigned i = 5; i <= 8; i++)
		assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_X(i), ~0ull), 0);
	for (unsigned i = 0; i < 4; i++)
		reply(&r, vals[i]);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 5);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(r.io[i].addr, MMIO_BASE + 0x10 * i);
		assert_int_equal(r.io[i].len, lens[i]);
		assert_int_equal(r.io[i].is_write, 0);
		assert_int_equal(reg_of(cpu, VCPU_REG_ARM64_X(5 + i)), vals[i]);
	}
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_mmio_read_x86(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	struct vcpu_mock_step s[9];

	rec_init(&r);
	for (unsigned i = 0; i < 4; i++) {
		s[2 * i] = mmio_read(MMIO_BASE + 0x10 * i, lens[i], vals[i], 0);
		s[2 * i + 1] = reg_check(VCPU_REG_X86_RAX, vals[i]);
		reply(&r, vals[i]);
	}
	s[8] = stop();
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_RAX, 0), 0);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 5);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(r.io[i].len, lens[i]);
		assert_int_equal(r.io[i].is_write, 0);
	}
	assert_int_equal(reg_of(cpu, VCPU_REG_X86_RAX), vals[3]);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* A sign-extending load (LDRSB/LDRSH/LDRSW, MOVSX): the handler returns the */
/* len-byte value, the register holds it sign-extended to 64 bits.           */
static void test_mmio_read_sign_extend_arm64(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct rec r;
	struct vcpu_mock_step s[] = {
		mmio_read_sx(MMIO_BASE, 1, 0x80, 10),
		reg_check(VCPU_REG_ARM64_X(10), 0xffffffffffffff80ull),
		mmio_read_sx(MMIO_BASE, 2, 0x8001, 11),
		reg_check(VCPU_REG_ARM64_X(11), 0xffffffffffff8001ull),
		mmio_read_sx(MMIO_BASE, 4, 0x80000000, 12),
		reg_check(VCPU_REG_ARM64_X(12), 0xffffffff80000000ull),
		mmio_read_sx(MMIO_BASE, 4, 0x7fffffff, 13), /* positive: unchanged */
		reg_check(VCPU_REG_ARM64_X(13), 0x7fffffff),
		stop(),
	};

	rec_init(&r);
	reply(&r, 0x80);
	reply(&r, 0x8001);
	reply(&r, 0x80000000);
	reply(&r, 0x7fffffff);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(reg_of(cpu, VCPU_REG_ARM64_X(10)), 0xffffffffffffff80ull);
	assert_int_equal(reg_of(cpu, VCPU_REG_ARM64_X(12)), 0xffffffff80000000ull);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_mmio_read_sign_extend_x86(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	struct vcpu_mock_step s[] = {
		mmio_read_sx(MMIO_BASE, 2, 0x8000, 0),
		reg_check(VCPU_REG_X86_RAX, 0xffffffffffff8000ull),
		stop(),
	};

	rec_init(&r);
	reply(&r, 0x8000);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(reg_of(cpu, VCPU_REG_X86_RAX), 0xffffffffffff8000ull);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* No .mmio and no .other: -ENOSYS with the exit kept; resuming completes */
/* the read with zeros.                                                    */
static void test_mmio_unhandled_read_zero(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	const struct vcpu_handlers none = { .system_event = on_system_event };
	struct rec r;
	struct vcpu_mock_step s[] = {
		mmio_read(MMIO_BASE + 0x40, 4, 0, 3),
		reg_check(VCPU_REG_ARM64_X(3), 0),
		stop(),
	};
	const struct vcpu_exit *e;

	rec_init(&r);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_X(3), 0x3333333333333333ull), 0);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &none, &r), -ENOSYS);
	expect_detail(vcpu_last_error(cpu));
	e = vcpu_last_exit(cpu);
	assert_int_equal(e->kind, VCPU_EXIT_MMIO);
	assert_int_equal(e->raw_reason, KVM_EXIT_MMIO);
	assert_int_equal(e->u.io.addr, MMIO_BASE + 0x40);
	assert_int_equal(e->u.io.len, 4);
	assert_int_equal(e->u.io.is_write, 0);
	/* Resumable: the next run completes the read (zeros) and goes on. */
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 1);
	assert_int_equal(reg_of(cpu, VCPU_REG_ARM64_X(3)), 0);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* arm64: each completed MMIO access moves PC past its 4-byte instruction. */
static void test_mmio_pc_advance_arm64(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct rec r;
	const uint64_t pc0 = 0x40080000;
	struct vcpu_mock_step s[] = {
		mmio_write(MMIO_BASE, 4, 1),
		mmio_read(MMIO_BASE, 4, 2, 1),
		mmio_write(MMIO_BASE, 8, 3),
		reg_check(VCPU_REG_ARM64_PC, pc0 + 12),
		mmio_write(STOP_ADDR, 4, 0),
		reg_check(VCPU_REG_ARM64_PC, pc0 + 16),
		stop(),
	};

	rec_init(&r);
	r.stop_rc = 9;
	reply(&r, 2);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_PC, pc0), 0);
	SCRIPT(f, 0, s);
	/* Stopped at the 4th access: its PC advance is still pending ... */
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), 9);
	/* ... and completes when the vCPU resumes. */
	r.stop_rc = VCPU_STOP;
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(reg_of(cpu, VCPU_REG_ARM64_PC), pc0 + 20);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* The mock checks write-backs: a wrong read value is recorded as a failure. */
static void test_mock_catches_wrong_mmio_read(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct rec r;
	struct vcpu_mock_step s[] = { mmio_read(MMIO_BASE, 4, 0x1234, 2), stop() };
	const char *msg = NULL;

	rec_init(&r);
	reply(&r, 0x1235); /* not what the guest expects */
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(vcpu_mock_failures(f->mock, &msg), 1);
	expect_detail(msg);
}

static void test_mock_catches_wrong_hypercall_ret(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	const uint64_t args[] = { 0x1000, 2, 3 }, expect[] = { 0x77 };
	struct vcpu_mock_step s[] = {
		hypercall(X86_KVM_HC_MAP_GPA_RANGE, 0, 3, args, 1, expect),
		stop(),
	};
	const char *msg = NULL;

	rec_init(&r);
	r.hc_set = 1;
	r.hc_ret[0] = 0x78;
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, X86_KVM_HC_MAP_GPA_RANGE, 1), 0);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_hc, 1);
	assert_int_equal(vcpu_mock_failures(f->mock, &msg), 1);
	expect_detail(msg);
}

/* ======================================================================== */
/* x86 port I/O (KVM_EXIT_IO): count items of size bytes at                 */
/* run + data_offset; one handler call per item (rep ins/outs); IN data is   */
/* written back in place, item 0 reaching RAX.                               */

static void test_pio_out(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	struct vcpu_mock_step s[] = {
		pio(VCPU_MOCK_PIO_OUT, 0x3f8, 1, 1, 'A'),
		pio(VCPU_MOCK_PIO_OUT, 0xcf8, 4, 1, 0x80000010),
		stop(),
	};

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_pio, 2);
	assert_int_equal(r.io[0].addr, 0x3f8);
	assert_int_equal(r.io[0].len, 1);
	assert_int_equal(r.io[0].is_write, 1);
	assert_int_equal(r.io[0].data[0], 'A');
	assert_int_equal(r.io[1].addr, 0xcf8);
	assert_int_equal(r.io[1].len, 4);
	assert_int_equal(get_le(r.io[1].data, 4), 0x80000010);
	assert_int_equal(vcpu_last_exit(cpu)->kind, VCPU_EXIT_MMIO);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_pio_out_rep(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	struct vcpu_mock_step s[] = { pio(VCPU_MOCK_PIO_OUT, 0x1f0, 2, 4, 0x100), stop() };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_pio, 4);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(r.io[i].addr, 0x1f0);
		assert_int_equal(r.io[i].len, 2);
		assert_int_equal(r.io[i].is_write, 1);
		assert_int_equal(get_le(r.io[i].data, 2), 0x100 + i);
	}
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_pio_in(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	struct vcpu_mock_step s[] = {
		pio(VCPU_MOCK_PIO_IN, 0xcfc, 4, 1, 0xdeadbeef),
		reg_check(VCPU_REG_X86_RAX, 0xdeadbeef),
		stop(),
	};

	rec_init(&r);
	reply(&r, 0xdeadbeef);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_RAX, 0), 0);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_pio, 1);
	assert_int_equal(r.io[0].addr, 0xcfc);
	assert_int_equal(r.io[0].len, 4);
	assert_int_equal(r.io[0].is_write, 0);
	assert_int_equal(reg_of(cpu, VCPU_REG_X86_RAX), 0xdeadbeef);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_pio_in_rep(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	struct vcpu_mock_step s[] = { pio(VCPU_MOCK_PIO_IN, 0x60, 1, 3, 0x41), stop() };

	rec_init(&r);
	for (unsigned i = 0; i < 3; i++)
		reply(&r, 0x41 + i);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_pio, 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(r.io[i].addr, 0x60);
		assert_int_equal(r.io[i].len, 1);
		assert_int_equal(r.io[i].is_write, 0);
	}
	expect_script(f, 0, ARRAY_SIZE(s));
}

/*
 * A handler that rewrites the access it was given (length, direction,
 * address): the write-back goes by the access the guest made, never past
 * the data (the rep items, kvm_run's 8 data bytes).
 */
static int scribble(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	unsigned *n = ctx;

	(void)cpu;
	if (io->is_write) /* the script's stop() */
		return VCPU_STOP;
	memset(io->data, 0, sizeof(io->data));
	io->data[0] = (uint8_t)(0x41 + (*n)++);
	io->data[1] = 0x12;
	io->len = 200;
	io->is_write = 1;
	io->addr = 0xdead;
	return VCPU_CONTINUE;
}

static void test_handler_cannot_change_access(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	const struct vcpu_handlers h = { .mmio = scribble, .pio = scribble };
	struct vcpu_mock_step s[] = {
		pio(VCPU_MOCK_PIO_IN, 0x60, 1, 3, 0x41),
		mmio_read(MMIO_BASE, 1, 0x44, 0),
		stop(),
	};
	unsigned n = 0;

	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &h, &n), VCPU_STOP);
	assert_int_equal(n, 4);
	assert_int_equal(vcpu_mock_failures(f->mock, NULL), 0);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* A port read nobody handles completes as zeros, like an MMIO read. */
static void test_pio_unhandled_in_zero(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	struct vcpu_mock_step s[] = {
		pio(VCPU_MOCK_PIO_IN, 0x71, 2, 1, 0),
		stop(),
	};

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_MMIO_ONLY, &r), -ENOSYS);
	expect_detail(vcpu_last_error(cpu));
	assert_int_equal(vcpu_last_exit(cpu)->kind, VCPU_EXIT_PIO);
	assert_int_equal(vcpu_last_exit(cpu)->raw_reason, KVM_EXIT_IO);
	assert_int_equal(vcpu_last_exit(cpu)->u.io.addr, 0x71);
	assert_int_equal(vcpu_run(cpu, &H_MMIO_ONLY, &r), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* ======================================================================== */
/* Hypercalls.  arm64: SMCCC function ids set to FWD_TO_USER by the SMCCC    */
/* filter exit as KVM_EXIT_HYPERCALL (nr = id, flags bit0 = SMC); x1..x7 are */
/* read and x0..x3 written with ONE_REG; ret[0] defaults to NOT_SUPPORTED,   */
/* ret[1..3] to x1..x3.  Ids not forwarded never exit.  x86: ret -> RAX.     */

static const uint64_t hc_args[] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77 };

static void test_hvc_forwarded(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct rec r;
	const uint64_t ret[] = { 0, 0xa1, 0xa2, 0xa3 };
	const uint32_t fn = SMCCC_VENDOR_HYP_BASE + 0x10;
	struct vcpu_mock_step s[] = { hypercall(fn, 0, 7, hc_args, 4, ret), stop() };

	rec_init(&r);
	r.hc_set = 0xf;
	memcpy(r.hc_ret, ret, sizeof(ret));
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, SMCCC_VENDOR_HYP_BASE, 0x100), 0);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_hc, 1);
	assert_int_equal(r.hc[0].nr, fn);
	assert_int_equal(r.hc[0].flags & VCPU_HYPERCALL_SMC, 0);
	assert_int_equal(r.hc[0].nargs, 7);
	for (unsigned i = 0; i < 7; i++)
		assert_int_equal(r.hc[0].args[i], hc_args[i]);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(reg_of(cpu, VCPU_REG_ARM64_X(i)), ret[i]);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* SMC conduit; the handler sets only ret[0]: x1..x3 keep their values. */
static void test_smc_forwarded_defaults(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct rec r;
	const uint64_t expect[] = { 0, hc_args[0], hc_args[1], hc_args[2] };
	const uint32_t fn = SMCCC_VENDOR_HYP_BASE + 0x20;
	struct vcpu_mock_step s[] = {
		hypercall(fn, VCPU_HYPERCALL_SMC, 7, hc_args, 4, expect),
		stop(),
	};

	rec_init(&r);
	r.hc_set = 1;
	r.hc_ret[0] = VCPU_SMCCC_RET_SUCCESS;
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, SMCCC_VENDOR_HYP_BASE, 0x100), 0);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_hc, 1);
	assert_int_equal(r.hc[0].nr, fn);
	assert_int_equal(r.hc[0].flags & VCPU_HYPERCALL_SMC, VCPU_HYPERCALL_SMC);
	/* What the handler was given before it answered. */
	assert_int_equal(r.hc[0].ret[0], VCPU_SMCCC_RET_NOT_SUPPORTED);
	for (unsigned i = 1; i < 4; i++)
		assert_int_equal(r.hc[0].ret[i], hc_args[i - 1]);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(reg_of(cpu, VCPU_REG_ARM64_X(i)), expect[i]);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* HVC then SMC to the same id: told apart by VCPU_HYPERCALL_SMC; a handler */
/* that answers nothing leaves NOT_SUPPORTED in x0.                         */
static void test_hvc_smc_told_apart(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct rec r;
	const uint64_t ns[] = { VCPU_SMCCC_RET_NOT_SUPPORTED };
	const uint32_t fn = SMCCC_VENDOR_HYP_BASE + 1;
	struct vcpu_mock_step s[] = {
		hypercall(fn, 0, 1, hc_args, 1, ns),
		hypercall(fn, VCPU_HYPERCALL_SMC, 1, hc_args, 1, ns),
		stop(),
	};

	rec_init(&r);
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, fn, 1), 0);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_hc, 2);
	assert_int_equal(r.hc[0].flags & VCPU_HYPERCALL_SMC, 0);
	assert_int_equal(r.hc[1].flags & VCPU_HYPERCALL_SMC, VCPU_HYPERCALL_SMC);
	assert_int_equal(reg_of(cpu, VCPU_REG_ARM64_X(0)), VCPU_SMCCC_RET_NOT_SUPPORTED);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_hypercall_not_forwarded(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct rec r;
	const uint64_t ns[] = { VCPU_SMCCC_RET_NOT_SUPPORTED };
	struct vcpu_mock_step s[] = {
		hypercall(SMCCC_VENDOR_HYP_BASE + 5, 0, 2, hc_args, 1, ns),
		hypercall(SMCCC_VENDOR_HYP_BASE + 6, VCPU_HYPERCALL_SMC, 0, NULL, 1, ns),
		stop(),
	};

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_hc, 0);
	assert_int_equal(r.n_mmio, 1);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* PSCI ids may be forwarded too: SYSTEM_OFF then exits as a hypercall. */
static void test_psci_forwarded(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct rec r;
	struct vcpu_mock_step s[] = { hypercall(VCPU_PSCI_SYSTEM_OFF, 0, 0, NULL, 0, NULL) };

	rec_init(&r);
	r.hc_rc = 33;
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, VCPU_PSCI_0_2_FN_BASE, 0x20), 0);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), 33);
	assert_int_equal(r.n_hc, 1);
	assert_int_equal(r.n_sev, 0);
	assert_int_equal(r.hc[0].nr, VCPU_PSCI_SYSTEM_OFF);
	assert_int_equal(vcpu_last_exit(cpu)->kind, VCPU_EXIT_HYPERCALL);
	assert_int_equal(vcpu_last_exit(cpu)->raw_reason, KVM_EXIT_HYPERCALL);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* The SMCCC filter's rules: empty/wrapping -EINVAL, overlaps and the Arm */
/* architecture ranges -EEXIST, x86 VMs -EINVAL.                          */
static void test_forward_ranges(void **state)
{
	struct fx *f = *state;
	struct vcpu_mock *m2 = NULL;
	struct vcpu_hv *hv2 = NULL;
	struct vcpu_vm *vm2 = NULL;
	struct vcpu_mock_config cfg = { .arch = X86 };

	open_arch(f, ARM64);
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, SMCCC_VENDOR_HYP_BASE, 0), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, 0xffffff00u, 0x200), -EINVAL);
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, 0x80000000u, 1), -EEXIST);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, 0xc000fff0u, 0x20), -EEXIST);
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, SMCCC_VENDOR_HYP_BASE, 0x100), 0);
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, SMCCC_VENDOR_HYP_BASE + 0x80, 0x100),
			 -EEXIST);
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, SMCCC_VENDOR_HYP_BASE + 0x100, 0x100),
			 0);

	/* The attribute question failing is an error, not "no filter". */
	assert_int_equal(vcpu_mock_fail_call(f->mock, vcpu_mock_calls(f->mock) + 1, EIO), 0);
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, SMCCC_VENDOR_HYP_BASE + 0x200, 1), -EIO);
	expect_detail(vcpu_vm_last_error(f->vm));

	/* An x86 VM has no SMCCC: KVM forwards only its own hypercall numbers. */
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_KVM, &cfg, &m2, &hv2), 0);
	assert_int_equal(vcpu_vm_create(hv2, NULL, &vm2), 0);
	assert_int_equal(vcpu_vm_forward_hypercalls(vm2, SMCCC_VENDOR_HYP_BASE, 1), -EOPNOTSUPP);
	expect_detail(vcpu_vm_last_error(vm2));
	assert_int_equal(vcpu_vm_destroy(&vm2), 0);
	assert_int_equal(vcpu_hv_close(hv2), 0);
	assert_int_equal(vcpu_mock_destroy(&m2), 0);
}

static void test_x86_hypercall(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	const uint64_t args[] = { 0x100000, 16, 0x10 }, expect[] = { 0x5a5a };
	struct vcpu_mock_step s[] = {
		hypercall(X86_KVM_HC_MAP_GPA_RANGE, 0, 3, args, 1, expect),
		reg_check(VCPU_REG_X86_RAX, 0x5a5a),
		stop(),
	};

	rec_init(&r);
	r.hc_set = 1;
	r.hc_ret[0] = 0x5a5a;
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, X86_KVM_HC_MAP_GPA_RANGE, 1), 0);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_hc, 1);
	assert_int_equal(r.hc[0].nr, X86_KVM_HC_MAP_GPA_RANGE);
	assert_int_equal(r.hc[0].nargs, 3);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(r.hc[0].args[i], args[i]);
	assert_int_equal(reg_of(cpu, VCPU_REG_X86_RAX), 0x5a5a);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/*
 * x86 KVM answers a VMCALL itself unless its number was forwarded (only
 * KVM_HC_MAP_GPA_RANGE can be): no exit, -KVM_ENOSYS (-1000) in RAX, 32
 * bits outside long mode; a forwarded call with bad arguments gets
 * -KVM_EINVAL without an exit.
 */
static void test_x86_hypercall_not_forwarded(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	const uint64_t args[] = { 0x100000, 16, 0 }, bad[] = { 0x100800, 16, 0 };
	const uint64_t enosys32[] = { 0xfffffc18u }, enosys64[] = { (uint64_t)-1000 };
	const uint64_t einval[] = { (uint64_t)-22 };
	struct vcpu_mock_step s[] = {
		hypercall(0x100, 0, 2, args, 1, enosys32),
		hypercall(X86_KVM_HC_MAP_GPA_RANGE, VCPU_HYPERCALL_LONGMODE, 3, args, 1, enosys64),
		stop(),
	};
	struct vcpu_mock_step s2[] = {
		hypercall(X86_KVM_HC_MAP_GPA_RANGE, VCPU_HYPERCALL_LONGMODE, 3, bad, 1, einval),
		hypercall(0x100, VCPU_HYPERCALL_LONGMODE, 0, NULL, 1, enosys64),
		stop(),
	};

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_hc, 0);
	expect_script(f, 0, ARRAY_SIZE(s));
	assert_int_equal(vcpu_mock_failures(f->mock, NULL), 0);

	/* Only numbers KVM can forward: MAP_GPA_RANGE, once. */
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, 0x100, 1), -EOPNOTSUPP);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, 0, 13), -EOPNOTSUPP);
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, X86_KVM_HC_MAP_GPA_RANGE, 1), 0);
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, X86_KVM_HC_MAP_GPA_RANGE, 1), -EEXIST);
	rec_init(&r);
	SCRIPT(f, 0, s2);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_hc, 0);
	assert_int_equal(vcpu_mock_failures(f->mock, NULL), 0);
}

/* ======================================================================== */
/* System events (KVM_EXIT_SYSTEM_EVENT): type and data[ndata] reach the    */
/* handler; arm64 PSCI SYSTEM_OFF/RESET/RESET2 handled in-kernel become      */
/* SHUTDOWN/RESET events, RESET2 flagged in data[0] bit 0.                   */

static void psci_event(struct fx *f, uint32_t fn, uint32_t want_type, uint64_t want_flag)
{
	struct vcpu *cpu = open_one(f, ARM64);
	struct rec r;
	const uint64_t args[] = { 0, 0 };
	struct vcpu_mock_step s[] = { hypercall(fn, 0, 2, args, 0, NULL) };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_hc, 0);
	assert_int_equal(r.n_sev, 1);
	assert_int_equal(r.sev[0].type, want_type);
	assert_int_equal(r.sev[0].raw_type, want_type); /* KVM numbers them alike */
	assert_int_equal(r.sev[0].data[0] & VCPU_SYSTEM_EVENT_RESET2, want_flag);
	assert_int_equal(vcpu_last_exit(cpu)->kind, VCPU_EXIT_SYSTEM_EVENT);
	assert_int_equal(vcpu_last_exit(cpu)->raw_reason, KVM_EXIT_SYSTEM_EVENT);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_psci_system_off(void **state)
{
	psci_event(*state, VCPU_PSCI_SYSTEM_OFF, VCPU_SYSTEM_EVENT_SHUTDOWN, 0);
}

static void test_psci_system_reset(void **state)
{
	psci_event(*state, VCPU_PSCI_SYSTEM_RESET, VCPU_SYSTEM_EVENT_RESET, 0);
}

static void test_psci_system_reset2(void **state)
{
	psci_event(*state, PSCI_SYSTEM_RESET2_64, VCPU_SYSTEM_EVENT_RESET,
		   VCPU_SYSTEM_EVENT_RESET2);
}

static void test_system_event_crash(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct rec r;
	const uint64_t data[] = { 0xc0ffee, 0x2, 0x3 };
	struct vcpu_mock_step s[] = { with_data(VCPU_MOCK_SYSTEM_EVENT, 3, 3, data) };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_sev, 1);
	assert_int_equal(r.sev[0].type, VCPU_SYSTEM_EVENT_CRASH);
	assert_int_equal(r.sev[0].raw_type, 3);
	assert_int_equal(r.sev[0].ndata, 3);
	assert_memory_equal(r.sev[0].data, data, sizeof(data));
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* WAKEUP and SUSPEND are not final: the handler continues the guest. */
static void test_system_event_wakeup_suspend(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct rec r;
	const uint64_t d1[] = { 0x1 }, d2[] = { 0x40080000, 0xc0de };
	struct vcpu_mock_step s[] = {
		with_data(VCPU_MOCK_SYSTEM_EVENT, 4, 1, d1),
		with_data(VCPU_MOCK_SYSTEM_EVENT, 5, 2, d2),
		stop(),
	};

	rec_init(&r);
	r.sev_rc = VCPU_CONTINUE;
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_sev, 2);
	assert_int_equal(r.sev[0].type, VCPU_SYSTEM_EVENT_WAKEUP);
	assert_int_equal(r.sev[0].ndata, 1);
	assert_int_equal(r.sev[0].data[0], 1);
	assert_int_equal(r.sev[1].type, VCPU_SYSTEM_EVENT_SUSPEND);
	assert_int_equal(r.sev[1].raw_type, 5);
	assert_int_equal(r.sev[1].ndata, 2);
	assert_int_equal(r.sev[1].data[1], 0xc0de);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* A RAW system event: a pre-KVM_CAP_SYSTEM_EVENT_DATA kernel (ndata 0)   */
/* still delivers the legacy flags word as data[0].                        */
static void test_system_event_raw_legacy(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	struct vcpu_mock_step s[] = { raw(KVM_EXIT_SYSTEM_EVENT) };

	raw_put(&s[0], 0, 2, 4);   /* type RESET */
	raw_put(&s[0], 4, 0, 4);   /* ndata 0 */
	raw_put(&s[0], 8, 0x1, 8); /* flags */
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_sev, 1);
	assert_int_equal(r.sev[0].type, VCPU_SYSTEM_EVENT_RESET);
	assert_int_equal(r.sev[0].ndata, 0);
	assert_int_equal(r.sev[0].data[0], 1);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* Without .system_event the event goes to .other; without either, -ENOSYS. */
static void test_system_event_fallbacks(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	const struct vcpu_handlers other_only = { .other = on_other };
	struct rec r;
	const uint64_t d[] = { 7 };
	struct vcpu_mock_step s[] = {
		with_data(VCPU_MOCK_SYSTEM_EVENT, 3, 1, d),
		with_data(VCPU_MOCK_SYSTEM_EVENT, 3, 1, d),
	};

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &other_only, &r), VCPU_STOP);
	assert_int_equal(r.n_other, 1);
	assert_int_equal(r.other[0].kind, VCPU_EXIT_SYSTEM_EVENT);
	assert_int_equal(r.other[0].u.system_event.type, VCPU_SYSTEM_EVENT_CRASH);
	assert_int_equal(r.other[0].u.system_event.data[0], 7);
	assert_int_equal(vcpu_run(cpu, &H_MMIO_ONLY, &r), -ENOSYS);
	expect_detail(vcpu_last_error(cpu));
	assert_int_equal(vcpu_last_exit(cpu)->kind, VCPU_EXIT_SYSTEM_EVENT);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* ======================================================================== */
/* Fatal and architecture-specific exits: internal error (17), failed entry */
/* (9), triple fault (8) and KVM_EXIT_UNKNOWN (0) go to .other or make       */
/* vcpu_run() return -EIO; memory faults (KVM_RUN -EFAULT + exit 39) and HLT */
/* (5) go to .other; an exit code KVM does not define is -EPROTO.            */

static void test_internal_error_other(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	const uint64_t d[] = { 0xaaaa, 0xbbbb, 0xcccc };
	struct vcpu_mock_step s[] = { with_data(VCPU_MOCK_INTERNAL_ERROR, 1, 3, d) };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_other, 1);
	assert_int_equal(r.other[0].kind, VCPU_EXIT_INTERNAL_ERROR);
	assert_int_equal(r.other[0].raw_reason, KVM_EXIT_INTERNAL_ERROR);
	assert_int_equal(r.other[0].u.internal.code, 1);
	assert_int_equal(r.other[0].u.internal.ndata, 3);
	assert_memory_equal(r.other[0].u.internal.data, d, sizeof(d));
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_internal_error_eio(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct rec r;
	struct vcpu_mock_step s[] = { with_data(VCPU_MOCK_INTERNAL_ERROR, 4, 0, NULL) };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_NO_OTHER, &r), -EIO);
	expect_detail(vcpu_last_error(cpu));
	assert_int_equal(vcpu_last_exit(cpu)->kind, VCPU_EXIT_INTERNAL_ERROR);
	assert_int_equal(vcpu_last_exit(cpu)->u.internal.code, 4);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_fail_entry(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	struct vcpu_mock_step s[] = { step(VCPU_MOCK_FAIL_ENTRY), step(VCPU_MOCK_FAIL_ENTRY) };

	s[0].value = 0x80000021; /* VMX: invalid guest state */
	s[0].count = 5;
	s[1] = s[0];
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_other, 1);
	assert_int_equal(r.other[0].kind, VCPU_EXIT_FAIL_ENTRY);
	assert_int_equal(r.other[0].raw_reason, KVM_EXIT_FAIL_ENTRY);
	assert_int_equal(r.other[0].u.internal.code, 0x80000021);
	assert_int_equal(r.other[0].u.internal.data[0], 5);
	/* The same without .other: the guest cannot continue. */
	assert_int_equal(vcpu_run(cpu, &H_NO_OTHER, &r), -EIO);
	expect_detail(vcpu_last_error(cpu));
	assert_int_equal(vcpu_last_exit(cpu)->kind, VCPU_EXIT_FAIL_ENTRY);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_memory_fault(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct rec r;
	struct vcpu_mock_step s[] = { step(VCPU_MOCK_MEMORY_FAULT), step(VCPU_MOCK_MEMORY_FAULT) };

	s[0].addr = 0x50000000;
	s[0].len = 0x2000;
	s[0].value = 8; /* KVM_MEMORY_EXIT_FLAG_PRIVATE */
	s[1] = s[0];
	rec_init(&r);
	SCRIPT(f, 0, s);
	/* .other stops without making memory: the fault is reported, not the stop code. */
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), -EFAULT);
	expect_detail(vcpu_last_error(cpu));
	assert_int_equal(r.n_other, 1);
	assert_int_equal(r.other[0].kind, VCPU_EXIT_MEMORY_FAULT);
	assert_int_equal(r.other[0].raw_reason, KVM_EXIT_MEMORY_FAULT);
	assert_int_equal(r.other[0].u.fault.gpa, 0x50000000);
	assert_int_equal(r.other[0].u.fault.size, 0x2000);
	assert_int_equal(r.other[0].u.fault.flags, 8);
	/* Not fatal, just unhandled without .other. */
	assert_int_equal(vcpu_run(cpu, &H_NO_OTHER, &r), -ENOSYS);
	expect_detail(vcpu_last_error(cpu));
	assert_int_equal(vcpu_last_exit(cpu)->kind, VCPU_EXIT_MEMORY_FAULT);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_hlt(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	struct vcpu_mock_step s[] = { step(VCPU_MOCK_HLT), stop() };

	rec_init(&r);
	r.other_rc = VCPU_CONTINUE; /* like an idle loop: resume */
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_other, 1);
	assert_int_equal(r.other[0].kind, VCPU_EXIT_HALT);
	assert_int_equal(r.other[0].raw_reason, KVM_EXIT_HLT);
	assert_int_equal(r.n_mmio, 1);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_triple_fault_and_unknown(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	struct vcpu_mock_step s[] = { raw(KVM_EXIT_SHUTDOWN), raw(KVM_EXIT_UNKNOWN),
				      raw(KVM_EXIT_UNKNOWN) };

	raw_put(&s[1], 0, 0x77, 8); /* hw.hardware_exit_reason */
	s[2] = s[1];
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_NO_OTHER, &r), -EIO);
	expect_detail(vcpu_last_error(cpu));
	assert_int_equal(vcpu_last_exit(cpu)->kind, VCPU_EXIT_SHUTDOWN);
	assert_int_equal(vcpu_last_exit(cpu)->raw_reason, KVM_EXIT_SHUTDOWN);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_other, 1);
	assert_int_equal(r.other[0].kind, VCPU_EXIT_UNKNOWN);
	assert_int_equal(r.other[0].raw_reason, KVM_EXIT_UNKNOWN);
	assert_int_equal(r.other[0].u.internal.code, 0x77);
	assert_int_equal(vcpu_run(cpu, &H_NO_OTHER, &r), -EIO);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* A known exit without a portable meaning keeps its bytes for .other. */
static void test_debug_exit_raw_bytes(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct rec r;
	struct vcpu_mock_step s[] = { raw(KVM_EXIT_DEBUG) };

	raw_put(&s[0], 0, 0xf2000000, 4); /* hsr: BRK */
	raw_put(&s[0], 8, 0x40001234, 8); /* far */
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_other, 1);
	assert_int_equal(r.other[0].kind, VCPU_EXIT_DEBUG);
	assert_int_equal(r.other[0].raw_reason, KVM_EXIT_DEBUG);
	assert_memory_equal(r.other[0].u.raw, s[0].raw, 16);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_unknown_exit_code(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct rec r;
	struct vcpu_mock_step s[] = { raw(0x7777) };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), -EPROTO);
	expect_detail(vcpu_last_error(cpu));
	assert_int_equal(vcpu_last_exit(cpu)->raw_reason, 0x7777);
	assert_int_equal(r.n_other, 0);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* The run call itself failing (RAW with err): its errno, with a detail. */
static void test_run_call_fails(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	struct vcpu_mock_step s[] = { raw(KVM_EXIT_UNKNOWN) };

	s[0].err = EFAULT;
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), -EFAULT);
	expect_detail(vcpu_last_error(cpu));
	assert_int_equal(r.n_other, 0);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* ======================================================================== */
/* Malformed exits: every length, size, count and offset the kernel writes  */
/* is validated before use; a bad one is -EPROTO with a detail, never a      */
/* crash or an out-of-bounds access.                                         */

static void expect_malformed(struct fx *f, uint32_t arch, struct vcpu_mock_step s)
{
	struct vcpu *cpu = open_one(f, arch);
	struct rec r;

	rec_init(&r);
	script(f, 0, &s, 1);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), -EPROTO);
	expect_detail(vcpu_last_error(cpu));
	assert_int_equal(vcpu_last_exit(cpu)->raw_reason, s.value);
	assert_int_equal(r.n_mmio + r.n_pio + r.n_hc + r.n_sev + r.n_other, 0);
	expect_script(f, 0, 1);
}

static struct vcpu_mock_step raw_mmio(uint32_t len)
{
	struct vcpu_mock_step s = raw(KVM_EXIT_MMIO);

	raw_put(&s, 0, MMIO_BASE, 8); /* phys_addr */
	raw_put(&s, 16, len, 4);      /* len */
	raw_put(&s, 20, 1, 1);        /* is_write */
	return s;
}

static struct vcpu_mock_step raw_pio(uint32_t size, uint32_t count, uint64_t data_offset)
{
	struct vcpu_mock_step s = raw(KVM_EXIT_IO);

	raw_put(&s, 0, 1, 1);           /* direction OUT */
	raw_put(&s, 1, size, 1);        /* size */
	raw_put(&s, 2, 0x3f8, 2);       /* port */
	raw_put(&s, 4, count, 4);       /* count */
	raw_put(&s, 8, data_offset, 8); /* data_offset */
	return s;
}

static void test_malformed_mmio_len0(void **state)
{
	expect_malformed(*state, ARM64, raw_mmio(0));
}

static void test_malformed_mmio_len9(void **state)
{
	expect_malformed(*state, X86, raw_mmio(9));
}

static void test_malformed_pio_size3(void **state)
{
	expect_malformed(*state, X86, raw_pio(3, 1, 4096));
}

static void test_malformed_pio_offset(void **state)
{
	expect_malformed(*state, X86, raw_pio(1, 1, 0x10000000));
}

static void test_malformed_pio_count(void **state)
{
	/* Starts inside the mapping, 256 KiB of items run far past its end. */
	expect_malformed(*state, X86, raw_pio(4, 0x10000, 4096));
}

static void test_malformed_pio_on_arm64(void **state)
{
	expect_malformed(*state, ARM64, raw_pio(1, 1, 4096));
}

static void test_malformed_system_event_ndata(void **state)
{
	struct vcpu_mock_step s = raw(KVM_EXIT_SYSTEM_EVENT);

	raw_put(&s, 0, 1, 4);  /* SHUTDOWN */
	raw_put(&s, 4, 17, 4); /* ndata: one more than data[16] holds */
	expect_malformed(*state, ARM64, s);
}

static void test_malformed_internal_ndata(void **state)
{
	struct vcpu_mock_step s = raw(KVM_EXIT_INTERNAL_ERROR);

	raw_put(&s, 0, 1, 4);
	raw_put(&s, 4, 200, 4);
	expect_malformed(*state, X86, s);
}

/* ======================================================================== */
/* Handler results: 0 continues, a positive value stops vcpu_run() with     */
/* that value, a negative errno stops it as an error; a missing handler is   */
/* -ENOSYS.  In every case the vCPU stays resumable.                         */

static void test_handler_stop_code(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct rec r;
	struct vcpu_mock_step s[] = { mmio_write(MMIO_BASE, 4, 1), stop() };

	rec_init(&r);
	r.io_rc = 42;
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), 42);
	assert_int_equal(r.n_mmio, 1);
	r.io_rc = VCPU_CONTINUE;
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 2);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_handler_negative_errno(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	struct vcpu_mock_step s[] = { mmio_read(MMIO_BASE, 2, 0x55aa, 0), stop() };

	rec_init(&r);
	reply(&r, 0x55aa);
	r.io_rc = -EPERM;
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), -EPERM);
	/* The value was still written back for the resumed guest. */
	r.io_rc = VCPU_CONTINUE;
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_no_handler_enosys_resumable(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	const struct vcpu_handlers empty = { 0 };
	struct rec r;
	struct vcpu_mock_step s[] = { mmio_write(MMIO_BASE + 8, 8, 0x1122), stop() };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &empty, &r), -ENOSYS);
	expect_detail(vcpu_last_error(cpu));
	assert_int_equal(vcpu_last_exit(cpu)->kind, VCPU_EXIT_MMIO);
	assert_int_equal(vcpu_last_exit(cpu)->u.io.addr, MMIO_BASE + 8);
	assert_int_equal(get_le(vcpu_last_exit(cpu)->u.io.data, 8), 0x1122);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 1);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* Inside a handler the vCPU is busy: no destroy, no second vcpu_run(). */
static int busy_mmio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct rec *r = ctx;
	struct vcpu *copy = cpu;

	r->destroy_rc = vcpu_destroy(&copy);
	r->rerun_rc = vcpu_run(cpu, &H_ALL, r);
	return on_mmio(ctx, cpu, io);
}

static void test_busy_inside_handler(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	const struct vcpu_handlers h = { .mmio = busy_mmio };
	struct rec r;
	struct vcpu_mock_step s[] = { stop() };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &h, &r), VCPU_STOP);
	assert_int_equal(r.destroy_rc, -EBUSY);
	assert_int_equal(r.rerun_rc, -EBUSY);
	expect_detail(vcpu_last_error(cpu));
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* ======================================================================== */
/* Kicks: immediate_exit plus a signal make KVM_RUN return EINTR, which     */
/* vcpu_run() reports as -EINTR; a kick is never lost and kicks merge.       */

struct kicker {
	struct vcpu *cpu;
	atomic_int *armed;
	long delay_us;
	int rc;
};

static void *kicker_main(void *p)
{
	struct kicker *k = p;

	for (int i = 0; i < 10000 && !atomic_load(k->armed); i++)
		sleep_us(1000);
	sleep_us(k->delay_us);
	k->rc = vcpu_kick(k->cpu);
	return NULL;
}

static void kick_spinning_from_thread(struct fx *f, const struct vcpu_mock_config *cfg)
{
	struct vcpu *cpu;
	struct rec r;
	struct kicker k;
	struct thr t;
	struct vcpu_mock_step s[] = {
		mmio_write(ARM_ADDR, 4, 1),
		step(VCPU_MOCK_SPIN),
		mmio_write(MMIO_BASE, 4, 0xaf7e5),
		stop(),
	};
	int rc;

	open_cfg(f, cfg);
	cpu = add_cpu(f, 0);
	rec_init(&r);
	SCRIPT(f, 0, s);
	k = (struct kicker){ .cpu = cpu, .armed = &r.armed, .delay_us = 30000, .rc = 1 };
	thr_start(&t, kicker_main, &k);
	rc = vcpu_run(cpu, &H_ALL, &r);
	thr_join(&t);
	assert_int_equal(rc, -EINTR);
	assert_int_equal(k.rc, 0);
	assert_int_equal(r.n_mmio, 1);
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), 2); /* the spin ended */
	/* The vCPU then runs on to the next step. */
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 3);
	assert_int_equal(r.io[1].addr, MMIO_BASE);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_kick_from_thread(void **state)
{
	struct vcpu_mock_config cfg = { .arch = ARM64 };

	kick_spinning_from_thread(*state, &cfg);
}

/*
 * A kicker's flag store that lands after vcpu_run() consumed its kick (it
 * sets kick_pending, the vCPU takes it and clears the flag, then the
 * kicker's immediate_exit store arrives) leaves the flag set with no kick
 * pending.  The next vcpu_run() must clear it and run, not spin on EINTR.
 */
static void test_stale_immediate_exit_flag(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct vcpu_mock_step s[] = { mmio_write(MMIO_BASE, 4, 1), stop() };
	struct rec r;

	rec_init(&r);
	SCRIPT(f, 0, s);
	cpu->vm->hv->ops->set_immediate_exit(cpu, 1); /* the late store, without kick_pending */
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 2);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* An old kernel without KVM_CAP_IMMEDIATE_EXIT: the signal alone stops it. */
static void test_kick_from_thread_no_immediate_exit(void **state)
{
	struct vcpu_mock_config cfg = { .arch = X86, .flags = VCPU_MOCK_NO_IMMEDIATE_EXIT };

	kick_spinning_from_thread(*state, &cfg);
}

static void kick_before_run(struct fx *f, const struct vcpu_mock_config *cfg)
{
	struct vcpu *cpu;
	struct rec r;
	struct vcpu_mock_step s[] = { mmio_write(MMIO_BASE, 4, 1), stop() };

	open_cfg(f, cfg);
	cpu = add_cpu(f, 0);
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_kick(cpu), 0);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), -EINTR);
	assert_int_equal(r.n_mmio, 0);
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), 0);
	/* Consumed: the next run goes ahead. */
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 2);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_kick_before_run(void **state)
{
	struct vcpu_mock_config cfg = { .arch = ARM64 };

	kick_before_run(*state, &cfg);
}

static void test_kick_before_run_no_immediate_exit(void **state)
{
	struct vcpu_mock_config cfg = { .arch = X86, .flags = VCPU_MOCK_NO_IMMEDIATE_EXIT };

	kick_before_run(*state, &cfg);
}

static void test_two_kicks_merge(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct rec r;
	struct vcpu_mock_step s[] = { mmio_write(MMIO_BASE, 4, 1), stop() };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_kick(cpu), 0);
	assert_int_equal(vcpu_kick(cpu), 0);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), -EINTR);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 2);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* A handler may kick its own vCPU: vcpu_run() returns -EINTR right after. */
static int kicking_mmio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	vcpu_kick(cpu);
	return on_mmio(ctx, cpu, io);
}

static void test_kick_from_handler(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	const struct vcpu_handlers h = { .mmio = kicking_mmio };
	struct rec r;
	struct vcpu_mock_step s[] = { mmio_write(MMIO_BASE, 4, 1), stop() };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &h, &r), -EINTR);
	assert_int_equal(r.n_mmio, 1);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 2);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* vcpu_kick() is async-signal-safe: a SIGALRM handler kicks the spinning vCPU. */
static struct vcpu *volatile alarm_cpu;
static volatile sig_atomic_t alarm_rc = 1;

static void on_alarm(int sig)
{
	(void)sig;
	alarm_rc = vcpu_kick(alarm_cpu);
}

static void test_kick_from_signal_handler(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct sigaction sa, old;
	struct rec r;
	struct vcpu_mock_step s[] = {
		mmio_write(ARM_ADDR, 4, 1),
		step(VCPU_MOCK_SPIN),
		stop(),
	};
	int rc;

	rec_init(&r);
	r.arm_timer_us = 30000;
	alarm_cpu = cpu;
	alarm_rc = 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	SCRIPT(f, 0, s);
	rc = vcpu_run(cpu, &H_ALL, &r);
	arm_timer(0);
	sigaction(SIGALRM, &old, NULL);
	assert_int_equal(rc, -EINTR);
	assert_int_equal(alarm_rc, 0);
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), 2);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* ======================================================================== */
/* Guest memory (KVM_SET_USER_MEMORY_REGION): arguments are checked before   */
/* the driver is asked; a mapped region is guest RAM both ways; an unmapped  */
/* or read-only access becomes an MMIO exit; slots run out with -ENOSPC.     */

static void test_map_invalid(void **state)
{
	struct fx *f = *state;
	uint8_t *p;
	size_t pg;

	open_arch(f, ARM64);
	p = guest_ram(f, 2);
	pg = f->page;
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA + 1, p, pg, 0), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA, p + 1, pg, 0), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA, p, pg + 1, 0), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA, p, 0, 0), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_vm_map(f->vm, UINT64_MAX - pg + 1, p, 2 * pg, 0), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA, p, pg, 1u << 7), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	/* None of them took a slot. */
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA, p, 2 * pg, 0), 0);
	assert_int_equal(vcpu_vm_unmap(f->vm, RAM_GPA, 2 * pg), 0);
}

static void test_map_overlap_and_unmap_enoent(void **state)
{
	struct fx *f = *state;
	uint8_t *p, *q;
	size_t pg;

	open_arch(f, X86);
	p = guest_ram(f, 2);
	q = guest_ram(f, 2);
	pg = f->page;
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA, p, 2 * pg, 0), 0);
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA + pg, q, 2 * pg, 0), -EEXIST);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA - pg, q, 2 * pg, 0), -EEXIST);
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA + 2 * pg, q, 2 * pg, 0), 0); /* adjacent */
	assert_int_equal(vcpu_vm_unmap(f->vm, RAM_GPA + 8 * pg, pg), -ENOENT);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_vm_unmap(f->vm, RAM_GPA, pg), -ENOENT); /* not the exact size */
	assert_int_equal(vcpu_vm_unmap(f->vm, RAM_GPA, 2 * pg), 0);
	assert_int_equal(vcpu_vm_unmap(f->vm, RAM_GPA, 2 * pg), -ENOENT); /* already gone */
	assert_int_equal(vcpu_vm_unmap(f->vm, RAM_GPA + 2 * pg, 2 * pg), 0);
}

static void mem_roundtrip(struct fx *f, uint32_t arch)
{
	struct vcpu *cpu = open_one(f, arch);
	uint64_t *ram = guest_ram(f, 1);
	struct rec r;
	struct vcpu_mock_step s[] = {
		mem_op(VCPU_MOCK_MEM_CHECK, RAM_GPA + 8, 0x1122334455667788ull),
		mem_op(VCPU_MOCK_MEM_WRITE, RAM_GPA + 16, 0x8877665544332211ull),
		mem_op(VCPU_MOCK_MEM_CHECK, RAM_GPA + 16, 0x8877665544332211ull),
		stop(),
	};

	ram[1] = 0x1122334455667788ull;
	rec_init(&r);
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA, ram, f->page, 0), 0);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 1); /* only the stop: RAM accesses do not exit */
	assert_int_equal(ram[2], 0x8877665544332211ull);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_mem_roundtrip_arm64(void **state)
{
	mem_roundtrip(*state, ARM64);
}

static void test_mem_roundtrip_x86(void **state)
{
	mem_roundtrip(*state, X86);
}

static void test_unmap_then_mmio(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	uint64_t *ram = guest_ram(f, 1);
	struct rec r;
	struct vcpu_mock_step s1[] = { mem_op(VCPU_MOCK_MEM_CHECK, RAM_GPA, 0xfeed), stop() };
	struct vcpu_mock_step s2[] = { mem_op(VCPU_MOCK_MEM_CHECK, RAM_GPA, 0xbeef), stop() };

	ram[0] = 0xfeed;
	rec_init(&r);
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA, ram, f->page, 0), 0);
	SCRIPT(f, 0, s1);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 1);
	expect_script(f, 0, ARRAY_SIZE(s1));

	assert_int_equal(vcpu_vm_unmap(f->vm, RAM_GPA, f->page), 0);
	rec_init(&r);
	reply(&r, 0xbeef);
	SCRIPT(f, 0, s2);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 2);
	assert_int_equal(r.io[0].addr, RAM_GPA);
	assert_int_equal(r.io[0].len, 8);
	assert_int_equal(r.io[0].is_write, 0);
	expect_script(f, 0, ARRAY_SIZE(s2));
}

static void test_readonly_write_exits(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	uint64_t *ram = guest_ram(f, 1);
	struct rec r;
	struct vcpu_mock_step s[] = {
		mem_op(VCPU_MOCK_MEM_CHECK, RAM_GPA + 24, 0x600d), /* reads are RAM */
		mem_op(VCPU_MOCK_MEM_WRITE, RAM_GPA + 24, 0xbad0bad0),
		stop(),
	};

	ram[3] = 0x600d;
	rec_init(&r);
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA, ram, f->page, VCPU_MEM_READONLY), 0);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 2);
	assert_int_equal(r.io[0].addr, RAM_GPA + 24);
	assert_int_equal(r.io[0].is_write, 1);
	assert_int_equal(r.io[0].len, 8);
	assert_int_equal(get_le(r.io[0].data, 8), 0xbad0bad0);
	assert_int_equal(ram[3], 0x600d); /* host memory untouched */
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_memslots_enospc(void **state)
{
	struct fx *f = *state;
	struct vcpu_mock_config cfg = { .arch = ARM64, .nr_memslots = 2 };
	uint8_t *p;
	size_t pg;

	open_cfg(f, &cfg);
	p = guest_ram(f, 4);
	pg = f->page;
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA, p, pg, 0), 0);
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA + pg, p + pg, pg, 0), 0);
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA + 2 * pg, p + 2 * pg, pg, 0), -ENOSPC);
	expect_detail(vcpu_vm_last_error(f->vm));
	/* Unmapping frees a slot for the next region. */
	assert_int_equal(vcpu_vm_unmap(f->vm, RAM_GPA, pg), 0);
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA + 2 * pg, p + 2 * pg, pg, 0), 0);
}

/* ======================================================================== */
/* Public API errors: NULL handles and out pointers are -EINVAL; bad         */
/* arguments, duplicates and wrong order are refused with the documented     */
/* errno and a detail on the handle.                                         */

static void test_null_handles(void **state)
{
	struct fx *f = *state;
	struct vcpu_handlers h = { 0 };
	struct vcpu_x86_segment seg;
	struct vcpu_vm *nvm = NULL;
	struct vcpu *ncpu = NULL;
	struct vcpu_hv *hv = NULL;
	uint64_t v;

	assert_int_equal(vcpu_hv_open(VCPU_BACKEND_KVM, NULL), -EINVAL);
	assert_int_equal(vcpu_hv_open_path(VCPU_BACKEND_KVM, NULL, &hv), -EINVAL);
	assert_int_equal(vcpu_hv_open_path(VCPU_BACKEND_AUTO, "/dev/null", &hv), -EINVAL);
	assert_null(hv);
	assert_int_equal(vcpu_hv_close(NULL), -EINVAL);
	assert_int_equal(vcpu_hv_check(NULL, VCPU_CAP_MAX_VCPUS, &v), -EINVAL);
	assert_int_equal(vcpu_hv_set_kick_signal(NULL, SIGUSR1), -EINVAL);
	assert_int_equal(vcpu_kick_signal(NULL), -EINVAL);
	assert_int_equal(vcpu_vm_create(NULL, NULL, &nvm), -EINVAL);
	assert_int_equal(vcpu_vm_destroy(NULL), -EINVAL);
	assert_int_equal(vcpu_vm_destroy(&nvm), -EINVAL);
	assert_int_equal(vcpu_vm_check(NULL, VCPU_CAP_MAX_VCPUS, &v), -EINVAL);
	assert_int_equal(vcpu_vm_map(NULL, 0, &v, 4096, 0), -EINVAL);
	assert_int_equal(vcpu_vm_unmap(NULL, 0, 4096), -EINVAL);
	assert_int_equal(vcpu_vm_set_irq_line(NULL, 40, 1), -EINVAL);
	assert_int_equal(vcpu_vm_create_gic_v3(NULL, 0, 0x10000, 64), -EINVAL);
	assert_int_equal(vcpu_vm_forward_hypercalls(NULL, SMCCC_VENDOR_HYP_BASE, 1), -EINVAL);
	assert_int_equal(vcpu_create(NULL, 0, 0, &ncpu), -EINVAL);
	assert_int_equal(vcpu_destroy(NULL), -EINVAL);
	assert_int_equal(vcpu_destroy(&ncpu), -EINVAL);
	assert_int_equal(vcpu_get_reg(NULL, VCPU_REG_X86_RAX, &v), -EINVAL);
	assert_int_equal(vcpu_set_reg(NULL, VCPU_REG_X86_RAX, 0), -EINVAL);
	assert_int_equal(vcpu_x86_get_segment(NULL, VCPU_X86_CS, &seg), -EINVAL);
	assert_int_equal(vcpu_x86_set_segment(NULL, VCPU_X86_CS, &seg), -EINVAL);
	assert_int_equal(vcpu_run(NULL, &h, NULL), -EINVAL);
	assert_int_equal(vcpu_kick(NULL), -EINVAL);
	/* The detail getters never return NULL. */
	expect_detail(vcpu_hv_last_error(NULL));
	expect_detail(vcpu_vm_last_error(NULL));
	expect_detail(vcpu_last_error(NULL));
	(void)f;
}

static void test_null_out_pointers(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);

	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_MAX_VCPUS, NULL), -EINVAL);
	expect_detail(vcpu_hv_last_error(f->hv));
	assert_int_equal(vcpu_vm_create(f->hv, NULL, NULL), -EINVAL);
	expect_detail(vcpu_hv_last_error(f->hv));
	assert_int_equal(vcpu_vm_check(f->vm, VCPU_CAP_MAX_VCPUS, NULL), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_create(f->vm, 1, 0, NULL), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_get_reg(cpu, VCPU_REG_X86_RAX, NULL), -EINVAL);
	expect_detail(vcpu_last_error(cpu));
	assert_int_equal(vcpu_x86_get_segment(cpu, VCPU_X86_CS, NULL), -EINVAL);
	assert_int_equal(vcpu_x86_set_segment(cpu, VCPU_X86_CS, NULL), -EINVAL);
	assert_int_equal(vcpu_run(cpu, NULL, NULL), -EINVAL);
	expect_detail(vcpu_last_error(cpu));
}

static void test_vcpu_id_range_and_duplicate(void **state)
{
	struct fx *f = *state;
	struct vcpu_mock_config cfg = { .arch = ARM64, .max_vcpus = 4 };
	struct vcpu *extra = NULL;

	open_cfg(f, &cfg);
	add_cpu(f, 0);
	add_cpu(f, 3);
	assert_int_equal(vcpu_create(f->vm, 4, 0, &extra), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_null(extra);
	assert_int_equal(vcpu_create(f->vm, 1000, 0, &extra), -EINVAL);
	assert_int_equal(vcpu_create(f->vm, 3, 0, &extra), -EEXIST);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_null(extra);
	/* The failures left the VM usable. */
	add_cpu(f, 1);
}

static void test_vcpu_create_bad_flags(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = NULL;

	open_arch(f, X86);
	assert_int_equal(vcpu_create(f->vm, 0, 1u << 5, &cpu), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_create(f->vm, 0, VCPU_CREATE_POWER_OFF, &cpu), -EINVAL);
	assert_null(cpu);
	add_cpu(f, 0);
}

static void test_vm_config_invalid(void **state)
{
	struct fx *f = *state;
	struct vcpu_vm_config reserved = { .reserved = { [1] = 1 } };
	struct vcpu_vm_config flags = { .flags = 1u << 9 };
	struct vcpu_vm_config ipa = { .ipa_bits = 52 };
	struct vcpu_vm_config ok = { .ipa_bits = 36 };
	struct vcpu_vm *vm = NULL;

	open_arch(f, ARM64); /* mock IPA limit: 40 bits */
	assert_int_equal(vcpu_vm_create(f->hv, &reserved, &vm), -EINVAL);
	expect_detail(vcpu_hv_last_error(f->hv));
	assert_int_equal(vcpu_vm_create(f->hv, &flags, &vm), -EINVAL);
	assert_int_equal(vcpu_vm_create(f->hv, &ipa, &vm), -EINVAL);
	expect_detail(vcpu_hv_last_error(f->hv));
	assert_null(vm);
	assert_int_equal(vcpu_vm_create(f->hv, &ok, &vm), 0);
	assert_int_equal(vcpu_vm_destroy(&vm), 0);
}

static void test_destroy_order(void **state)
{
	struct fx *f = *state;

	open_one(f, ARM64);
	assert_int_equal(vcpu_vm_destroy(&f->vm), -EBUSY);
	assert_non_null(f->vm);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_hv_close(f->hv), -EBUSY);
	expect_detail(vcpu_hv_last_error(f->hv));
	assert_int_equal(vcpu_mock_destroy(&f->mock), -EBUSY);
	assert_non_null(f->mock);
	/* Bottom-up works, and the mock refuses while only the handle is left. */
	assert_int_equal(vcpu_destroy(&f->cpu[0]), 0);
	assert_int_equal(vcpu_vm_destroy(&f->vm), 0);
	assert_int_equal(vcpu_mock_destroy(&f->mock), -EBUSY);
	assert_non_null(f->mock);
}

static void test_double_destroy(void **state)
{
	struct fx *f = *state;

	open_one(f, X86);
	assert_int_equal(vcpu_destroy(&f->cpu[0]), 0);
	assert_null(f->cpu[0]);
	assert_int_equal(vcpu_destroy(&f->cpu[0]), -EINVAL);
	assert_int_equal(vcpu_vm_destroy(&f->vm), 0);
	assert_null(f->vm);
	assert_int_equal(vcpu_vm_destroy(&f->vm), -EINVAL);
}

/* Things that must happen before the first KVM_RUN. */
static void run_once_to_stop(struct fx *f, struct vcpu *cpu)
{
	struct rec r;
	struct vcpu_mock_step s[] = { mmio_write(MMIO_BASE, 4, 1), stop() };

	rec_init(&r);
	SCRIPT(f, vcpu_id(cpu), s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	expect_script(f, vcpu_id(cpu), ARRAY_SIZE(s));
}

static void test_forward_after_run_ebusy(void **state)
{
	struct fx *f = *state;

	run_once_to_stop(f, open_one(f, ARM64));
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, SMCCC_VENDOR_HYP_BASE, 16), -EBUSY);
	expect_detail(vcpu_vm_last_error(f->vm));
}

static void test_gic_after_run_ebusy(void **state)
{
	struct fx *f = *state;

	run_once_to_stop(f, open_one(f, ARM64));
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, 0x08000000, 0x080a0000, 128), -EBUSY);
	expect_detail(vcpu_vm_last_error(f->vm));
}

/*
 * A handler's own system calls never fail with EINTR because of a kick:
 * the kick signal is blocked outside the run call.  The handler sleeps
 * while another thread kicks; its nanosleep() completes, and vcpu_run()
 * returns -EINTR after it.  With and without immediate_exit (the signal
 * alone, left pending until the next KVM_RUN), and on a backend with no
 * signal mask of its own (GenieZone: unblocked around GZVM_RUN only).
 */
struct sleepy {
	atomic_int armed;
	int eintr, sleeps;
};

static int sleepy_mmio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct sleepy *z = ctx;
	struct timespec t = { 0, 40 * 1000 * 1000 };

	(void)cpu;
	if (io->is_write && io->addr == STOP_ADDR)
		return VCPU_STOP;
	atomic_store(&z->armed, 1);
	while (nanosleep(&t, &t) < 0)
		if (errno == EINTR)
			z->eintr++;
	z->sleeps++;
	memset(io->data, 0, sizeof(io->data));
	return VCPU_CONTINUE;
}

static void kick_during_handler(struct fx *f, enum vcpu_backend backend, uint32_t flags)
{
	const struct vcpu_mock_config cfg = { .arch = ARM64, .flags = flags };
	const struct vcpu_handlers h = { .mmio = sleepy_mmio };
	struct vcpu_mock_step s[] = { mmio_write(MMIO_BASE, 4, 1), stop() };
	struct sleepy z = { 0 };
	struct kicker k;
	struct thr t;
	int rc;

	assert_int_equal(vcpu_mock_open(backend, &cfg, &f->mock, &f->hv), 0);
	assert_int_equal(vcpu_vm_create(f->hv, NULL, &f->vm), 0);
	if (backend == VCPU_BACKEND_GENIEZONE)
		assert_int_equal(vcpu_vm_alloc(f->vm, 0x40000000, 0x10000, 0, &(void *){ 0 }), 0);
	add_cpu(f, 0);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	SCRIPT(f, 0, s);
	k = (struct kicker){ .cpu = f->cpu[0], .armed = &z.armed, .delay_us = 5000, .rc = 1 };
	thr_start(&t, kicker_main, &k);
	rc = vcpu_run(f->cpu[0], &h, &z);
	thr_join(&t);
	assert_int_equal(k.rc, 0);
	assert_int_equal(z.sleeps, 1);
	assert_int_equal(z.eintr, 0);
	assert_int_equal(rc, -EINTR);
	/* The kick is consumed (its signal too): the vCPU runs on to the stop. */
	assert_int_equal(vcpu_run(f->cpu[0], &h, &z), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_kick_during_handler(void **state)
{
	kick_during_handler(*state, VCPU_BACKEND_KVM, 0);
}

static void test_kick_during_handler_no_immediate_exit(void **state)
{
	kick_during_handler(*state, VCPU_BACKEND_KVM, VCPU_MOCK_NO_IMMEDIATE_EXIT);
}

static void test_kick_during_handler_geniezone(void **state)
{
	kick_during_handler(*state, VCPU_BACKEND_GENIEZONE, 0);
}

/*
 * The signalfd pattern: the VMM's vCPU thread keeps the kick signal blocked.
 * KVM_SET_SIGNAL_MASK lets it through during KVM_RUN, so a kick still stops
 * a spinning guest, even without immediate_exit.
 */
static void test_kick_signal_blocked_by_thread(void **state)
{
	struct fx *f = *state;
	const struct vcpu_mock_config cfg = { .arch = X86, .flags = VCPU_MOCK_NO_IMMEDIATE_EXIT };
	struct vcpu_mock_step s[] = {
		mmio_write(ARM_ADDR, 4, 1),
		step(VCPU_MOCK_SPIN),
		stop(),
	};
	sigset_t block, old, now;
	struct kicker k;
	struct rec r;
	struct thr t;
	int rc;

	open_cfg(f, &cfg);
	add_cpu(f, 0);
	rec_init(&r);
	SCRIPT(f, 0, s);
	sigemptyset(&block);
	sigaddset(&block, vcpu_kick_signal(f->hv));
	assert_int_equal(pthread_sigmask(SIG_BLOCK, &block, &old), 0);
	k = (struct kicker){ .cpu = f->cpu[0], .armed = &r.armed, .delay_us = 20000, .rc = 1 };
	thr_start(&t, kicker_main, &k);
	rc = vcpu_run(f->cpu[0], &H_ALL, &r);
	thr_join(&t);
	/* vcpu_run() gives the thread its own mask back. */
	assert_int_equal(pthread_sigmask(SIG_SETMASK, NULL, &now), 0);
	assert_int_equal(sigismember(&now, vcpu_kick_signal(f->hv)), 1);
	assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
	assert_int_equal(rc, -EINTR);
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), 2);
}

/* An ignored kick signal would lose every kick: vCPU creation says so. */
static void test_kick_signal_ignored_refused(void **state)
{
	struct fx *f = *state;
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	struct vcpu *cpu = NULL;

	open_arch(f, X86);
	assert_int_equal(vcpu_hv_set_kick_signal(f->hv, SIGRTMIN + 6), 0);
	sigemptyset(&ign.sa_mask);
	assert_int_equal(sigaction(SIGRTMIN + 6, &ign, &old), 0);
	assert_int_equal(vcpu_create(f->vm, 0, 0, &cpu), -EINVAL);
	assert_null(cpu);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "SIG_IGN"));
	assert_int_equal(sigaction(SIGRTMIN + 6, &old, NULL), 0);
	add_cpu(f, 0);
}

static void test_kick_signal_rules(void **state)
{
	struct fx *f = *state;

	open_arch(f, X86);
	assert_int_equal(vcpu_kick_signal(f->hv), SIGRTMIN + 2);
	assert_int_equal(vcpu_hv_set_kick_signal(f->hv, SIGKILL), -EINVAL);
	expect_detail(vcpu_hv_last_error(f->hv));
	assert_int_equal(vcpu_hv_set_kick_signal(f->hv, 0), -EINVAL);
	assert_int_equal(vcpu_hv_set_kick_signal(f->hv, SIGRTMAX + 1), -EINVAL);
	assert_int_equal(vcpu_hv_set_kick_signal(f->hv, SIGRTMIN + 4), 0);
	assert_int_equal(vcpu_kick_signal(f->hv), SIGRTMIN + 4);
	add_cpu(f, 0);
	assert_int_equal(vcpu_hv_set_kick_signal(f->hv, SIGRTMIN + 5), -EBUSY);
	expect_detail(vcpu_hv_last_error(f->hv));
	assert_int_equal(vcpu_kick_signal(f->hv), SIGRTMIN + 4);
	/* Kicks use the chosen signal and still work. */
	assert_int_equal(vcpu_kick(f->cpu[0]), 0);
	{
		struct rec r;
		rec_init(&r);
		assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), -EINTR);
	}
}

/* ======================================================================== */
/* arm64 vGICv3 (KVM_CREATE_DEVICE type 7 + attributes, after the vCPUs):   */
/* SPIs are driven with KVM_IRQ_LINE; no irqchip is -ENXIO.                  */

#define GIC_DIST 0x08000000ull
#define GIC_REDIST 0x080a0000ull

static void test_gic_create_and_irq(void **state)
{
	struct fx *f = *state;
	uint64_t v = 0;

	open_arch(f, ARM64);
	add_cpu(f, 0);
	add_cpu(f, 1);
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GIC_DIST, GIC_REDIST, 128), 0);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 40, 1), 0);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 40, 0), 0);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 32, 1), 0);
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GIC_DIST, GIC_REDIST, 128), -EEXIST);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_vm_check(f->vm, VCPU_CAP_IRQCHIP, &v), 0);
}

static void test_gic_irq_without_gic(void **state)
{
	struct fx *f = *state;

	open_one(f, ARM64);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 40, 1), -ENXIO);
	expect_detail(vcpu_vm_last_error(f->vm));
}

static void test_gic_bad_args(void **state)
{
	struct fx *f = *state;

	open_one(f, ARM64);
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GIC_DIST + 0x1000, GIC_REDIST, 128),
			 -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GIC_DIST, GIC_REDIST + 0x800, 128),
			 -EINVAL);
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GIC_DIST, GIC_REDIST, 48), -EINVAL);
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GIC_DIST, GIC_REDIST, 2048), -EINVAL);
	/* The failures created nothing: a good call still works. */
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GIC_DIST, GIC_REDIST, 64), 0);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 5, 1), -EINVAL); /* an SGI/PPI */
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 31, 1), -EINVAL);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 1020, 1), -EINVAL);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 40, 2), -EINVAL);
}

static void test_gic_on_x86(void **state)
{
	struct fx *f = *state;

	open_one(f, X86);
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GIC_DIST, GIC_REDIST, 128), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 4, 1), -ENXIO); /* no irqchip */
}

/* ======================================================================== */
/* Two vCPUs run at once in two threads, each with its own script; nothing */
/* is shared on the exit path, so neither sees the other's exits.           */

struct runner {
	struct vcpu *cpu;
	struct rec *r;
	int rc;
};

static void *runner_main(void *p)
{
	struct runner *ru = p;

	ru->rc = vcpu_run(ru->cpu, &H_ALL, ru->r);
	return NULL;
}

#define PAR_ITERS 40

static void test_two_vcpus_in_parallel(void **state)
{
	struct fx *f = *state;
	static struct rec r[2];
	struct vcpu_mock_step s[2][2 * PAR_ITERS + 1];
	struct runner ru[2];
	struct thr t[2];

	open_arch(f, ARM64);
	for (uint32_t c = 0; c < 2; c++) {
		uint64_t base = MMIO_BASE + 0x100000 * c;

		add_cpu(f, c);
		rec_init(&r[c]);
		r[c].want_id = c;
		r[c].lo = base;
		r[c].hi = base + 0x100000;
		for (unsigned i = 0; i < PAR_ITERS; i++) {
			s[c][2 * i] = mmio_write(base + 8 * i, 8, (uint64_t)c << 32 | i);
			s[c][2 * i + 1] = mmio_read(base + 8 * i, 4, 1000 * c + i, 1);
			reply(&r[c], 1000 * c + i);
		}
		s[c][2 * PAR_ITERS] = stop();
		script(f, c, s[c], ARRAY_SIZE(s[c]));
		ru[c] = (struct runner){ .cpu = f->cpu[c], .r = &r[c], .rc = 1000 };
	}
	thr_start(&t[0], runner_main, &ru[0]);
	thr_start(&t[1], runner_main, &ru[1]);
	thr_join(&t[0]);
	thr_join(&t[1]);
	for (uint32_t c = 0; c < 2; c++) {
		assert_int_equal(ru[c].rc, VCPU_STOP);
		assert_int_equal(atomic_load(&r[c].bad), 0);
		assert_int_equal(r[c].n_mmio, 2 * PAR_ITERS + 1);
		for (unsigned i = 0; i < PAR_ITERS; i++)
			assert_int_equal(get_le(r[c].io[2 * i].data, 8), (uint64_t)c << 32 | i);
		assert_int_equal(reg_of(f->cpu[c], VCPU_REG_ARM64_X(1)), 1000 * c + PAR_ITERS - 1);
		expect_script(f, c, ARRAY_SIZE(s[c]));
	}
}

/* ------------------------------------------------------------------------ */
/* The portable VM calls on KVM: alloc, irqfd, ioeventfd, MSI, lifecycle     */

static int on_fault_retry(void *ctx, struct vcpu *cpu, struct vcpu_memory_fault *mf)
{
	struct rec *r = ctx;

	(void)cpu;
	r->n_other++;
	mf->response = r->other_rc ? VCPU_IO_FAULT : VCPU_IO_RETRY;
	return VCPU_CONTINUE;
}

static void test_memory_fault_handler(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct vcpu_handlers h = H_ALL;
	struct rec r;
	struct vcpu_mock_step s[] = { step(VCPU_MOCK_MEMORY_FAULT), stop(),
				      step(VCPU_MOCK_MEMORY_FAULT) };

	s[0].addr = 0x80000000;
	s[0].len = 0x1000;
	s[2] = s[0];
	h.memory_fault = on_fault_retry;
	rec_init(&r);
	r.other_rc = 0; /* on_fault_retry: 0 answers RETRY */
	SCRIPT(f, 0, s);
	/* RETRY: the guest goes on to its next step. */
	assert_int_equal(vcpu_run(cpu, &h, &r), VCPU_STOP);
	assert_int_equal(r.n_other, 1);
	/* FAULT: KVM cannot reflect it, so the run stops with EFAULT and a reason. */
	r.other_rc = 1;
	assert_int_equal(vcpu_run(cpu, &h, &r), -EFAULT);
	expect_detail(vcpu_last_error(cpu));
	assert_non_null(strstr(vcpu_last_error(cpu), "0x80000000"));
	assert_int_equal(vcpu_last_exit(cpu)->u.fault.response, VCPU_IO_FAULT);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_vm_alloc(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct vcpu_mock_step s[] = { step(VCPU_MOCK_MEM_WRITE), step(VCPU_MOCK_MEM_CHECK), stop() };
	long maps = count_mappings();
	void *ram = NULL, *other = NULL;
	struct rec r;

	assert_int_equal(vcpu_vm_alloc(f->vm, RAM_GPA, 4 * f->page, 0, &ram), 0);
	assert_non_null(ram);
	/* Private anonymous memory, counted by its pages (helpers.h) where they show. */
	const long pages = hugepage_advice_visible() ? (long)f->page / 4096 : 0;
	assert_int_equal(count_mappings(), maps + 4 * pages);
	/* The memory is zeroed and the guest's stores land in it. */
	assert_int_equal(((uint64_t *)ram)[1], 0);
	((uint64_t *)ram)[2] = 0x1122334455667788ull;
	s[0].addr = RAM_GPA + 8;
	s[0].value = 0xfeedfacecafef00dull;
	s[1].addr = RAM_GPA + 16;
	s[1].value = 0x1122334455667788ull;
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 1); /* only the stop: both accesses hit RAM */
	assert_int_equal(((uint64_t *)ram)[1], 0xfeedfacecafef00dull);
	expect_script(f, 0, ARRAY_SIZE(s));

	/* The region rules of vcpu_vm_map() apply, and a failure leaves nothing behind. */
	assert_int_equal(vcpu_vm_alloc(f->vm, RAM_GPA + f->page, f->page, 0, &other), -EEXIST);
	assert_null(other);
	assert_int_equal(vcpu_vm_alloc(f->vm, RAM_GPA + 1, f->page, 0, &other), -EINVAL);
	assert_int_equal(vcpu_vm_alloc(f->vm, 0, f->page, 0, NULL), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(count_mappings(), maps + 4 * pages);

	/* Unmapping frees it; a second allocation is freed with the VM (teardown counts). */
	assert_int_equal(vcpu_vm_unmap(f->vm, RAM_GPA, 4 * f->page), 0);
	assert_int_equal(count_mappings(), maps);
	assert_int_equal(vcpu_vm_alloc(f->vm, 0, 2 * f->page, 0, &other), 0);
	assert_int_equal(count_mappings(), maps + 2 * pages);
}

/* The line of /proc/self/maps that holds @p: its permissions ("rw-p", "rw-s"). */
static void maps_perms(const void *p, char perms[5])
{
	FILE *fp = fopen("/proc/self/maps", "re");
	unsigned long a, b;
	char line[512];

	strcpy(perms, "none");
	while (fp && fgets(line, sizeof(line), fp))
		if (sscanf(line, "%lx-%lx %4s", &a, &b, perms) == 3 && (uintptr_t)p >= a &&
		    (uintptr_t)p < b)
			break;
	if (fp)
		fclose(fp);
}

/*
 * Guest RAM is private anonymous memory, 2 MiB aligned from 2 MiB up
 * (transparent huge pages); VCPU_MEM_SHARED makes it shared; vcpu_vm_map()
 * refuses that flag (the memory is the caller's).
 */
static void test_vm_alloc_private_aligned(void **state)
{
	struct fx *f = *state;
	void *ram = NULL, *shared = NULL, *bad = NULL;
	char perms[5];

	open_arch(f, X86);
	assert_int_equal(vcpu_vm_alloc(f->vm, RAM_GPA, 4ull << 20, 0, &ram), 0);
	assert_int_equal((uintptr_t)ram & ((2u << 20) - 1), 0);
	maps_perms(ram, perms);
	assert_string_equal(perms, "rw-p");
	memset(ram, 0x5a, 4u << 20); /* all of it is there */
	assert_int_equal(vcpu_vm_alloc(f->vm, RAM_GPA + (4ull << 20), 2u << 20, VCPU_MEM_SHARED,
				       &shared), 0);
	maps_perms(shared, perms);
	assert_string_equal(perms, "rw-s");
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA + (8ull << 20), shared, 4096, VCPU_MEM_SHARED),
			 -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "VCPU_MEM_SHARED"));
	assert_int_equal(vcpu_vm_alloc(f->vm, RAM_GPA + (8ull << 20), 4096, 1u << 7, &bad), -EINVAL);
	assert_null(bad);
}

static void test_vm_lifecycle_calls_on_kvm(void **state)
{
	struct fx *f = *state;
	struct vcpu_vm *vm2 = NULL;
	struct vcpu_vm_config acrn_only = { .cpu_affinity = 1 };
	struct vcpu_vm_config named = { .name = "guest" };
	struct vcpu_vm_config pm = { .x86_pm1a_cnt_port = 0x404 };
	struct vcpu_vm_config reserved = { .reserved32 = 1 };

	open_arch(f, X86);
	/* KVM starts each vCPU at its first run: start is a successful no-op. */
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_vm_pause(f->vm), -EOPNOTSUPP);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_vm_reset(f->vm), -EOPNOTSUPP);
	assert_int_equal(vcpu_vm_set_dtb(f->vm, 0x1000, 0x1000), -EOPNOTSUPP);
	assert_int_equal(vcpu_vm_set_dtb(f->vm, 0x1000, 0), -EINVAL);
	assert_int_equal(vcpu_vm_set_dtb(f->vm, UINT64_MAX - 10, 0x1000), -EINVAL);
	assert_int_equal(vcpu_vm_start(NULL), -EINVAL);
	assert_int_equal(vcpu_vm_pause(NULL), -EINVAL);
	assert_int_equal(vcpu_vm_reset(NULL), -EINVAL);
	assert_int_equal(vcpu_vm_set_dtb(NULL, 0, 1), -EINVAL);
	/* ACRN's settings are refused, not ignored. */
	assert_int_equal(vcpu_vm_create(f->hv, &acrn_only, &vm2), -EINVAL);
	assert_int_equal(vcpu_vm_create(f->hv, &named, &vm2), -EINVAL);
	assert_int_equal(vcpu_vm_create(f->hv, &pm, &vm2), -EINVAL);
	assert_int_equal(vcpu_vm_create(f->hv, &reserved, &vm2), -EINVAL);
	expect_detail(vcpu_hv_last_error(f->hv));
	assert_null(vm2);
}

static int new_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	assert_true(fd >= 0);
	return fd;
}

static uint64_t eventfd_count(int fd)
{
	uint64_t n = 0;

	if (read(fd, &n, sizeof(n)) != (ssize_t)sizeof(n))
		return 0;
	return n;
}

static void test_irqfd_kvm(void **state)
{
	struct fx *f = *state;
	int efd, efd2, res, pipefd[2];
	struct vcpu_irqfd a;

	open_arch(f, ARM64);
	efd = new_eventfd();
	efd2 = new_eventfd();
	res = new_eventfd();
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	a = (struct vcpu_irqfd){ .fd = efd, .irq = 40 };
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), 0);
	/* kvm_irqfd_assign(): one binding per eventfd. */
	a.irq = 41;
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), -EBUSY);
	expect_detail(vcpu_vm_last_error(f->vm));
	/* eventfd_ctx_fdget(): not an eventfd is EINVAL, no file is EBADF. */
	a.fd = pipefd[0];
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), -EINVAL);
	a.fd = 1000;
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), -EBADF);
	/* The library's own checks: SPIs only, no MSI routing, level needs resample. */
	a = (struct vcpu_irqfd){ .fd = efd2, .irq = 20 };
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), -EINVAL);
	a = (struct vcpu_irqfd){ .fd = efd2, .irq = 50, .flags = VCPU_IRQFD_MSI };
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), -EINVAL);
	a = (struct vcpu_irqfd){ .fd = efd2, .irq = 50, .flags = VCPU_IRQFD_LEVEL, .resample_fd = -1 };
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), -EINVAL);
	a.resample_fd = res;
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), 0);
	a = (struct vcpu_irqfd){ .fd = efd2, .irq = 50, .flags = 1u << 7 };
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), -EINVAL);
	a = (struct vcpu_irqfd){ .fd = efd2, .irq = 50, .reserved = { 0, 1 } };
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), -EINVAL);
	a = (struct vcpu_irqfd){ .fd = -1, .irq = 50 };
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), -EBADF);
	assert_int_equal(vcpu_vm_irqfd(f->vm, NULL), -EINVAL);
	assert_int_equal(vcpu_vm_irqfd(NULL, &a), -EINVAL);
	/* Deassigned, the eventfd can be bound again. */
	a = (struct vcpu_irqfd){ .fd = efd, .irq = 40, .flags = VCPU_IRQFD_DEASSIGN };
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), 0);
	a.flags = 0;
	a.irq = 41;
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), 0);
	close(efd);
	close(efd2);
	close(res);
	close(pipefd[0]);
	close(pipefd[1]);
}

static void test_irqfd_x86_needs_irqchip(void **state)
{
	struct fx *f = *state;
	int efd;
	struct vcpu_irqfd a;

	open_arch(f, X86);
	efd = new_eventfd();
	a = (struct vcpu_irqfd){ .fd = efd, .irq = 5 };
	/* kvm_arch_irqfd_allowed(): no in-kernel irqchip on this VM. */
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "irqchip"));
	/* ... and so no MSI either. */
	assert_int_equal(vcpu_vm_signal_msi(f->vm, 0xfee00000, 0x31), -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "irqchip"));
	assert_int_equal(vcpu_vm_signal_msi(f->vm, 0xfee00000, 1ull << 32), -EINVAL);
	assert_int_equal(vcpu_vm_signal_msi(NULL, 0, 0), -EINVAL);
	close(efd);
}

static void test_signal_msi_arm64_without_its(void **state)
{
	struct fx *f = *state;

	open_arch(f, ARM64);
	assert_int_equal(vcpu_vm_signal_msi(f->vm, 0x8080040, 0x20), -EINVAL);
	add_cpu(f, 0);
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, 0x8000000, 0x80a0000, 128), 0);
	/* vgic_msi_to_its(): a GICv3 without an ITS takes no MSIs. */
	assert_int_equal(vcpu_vm_signal_msi(f->vm, 0x8080040, 0x20), -ENODEV);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "ITS"));
}

/* ======================================================================== */
/* x86 in-kernel irqchip (KVM_CREATE_IRQCHIP) and PIT (KVM_CREATE_PIT2),     */
/* before the vCPUs: GSIs 0..23 are driven with KVM_IRQ_LINE.  The kernel's  */
/* own rules are also shown with raw ioctls where the library stops first.  */

/* shared/abi/kvm.md section 2. */
#define KVM_CREATE_IRQCHIP_NR 0xae60ul
#define KVM_IRQ_LINE_NR 0x4008ae61ul
#define KVM_CREATE_PIT2_NR 0x4040ae77ul
#define KVM_SIGNAL_MSI_NR 0x4020aea5ul
#define KVM_PIT_SPEAKER_DUMMY 1u /* arch/x86/include/uapi/asm/kvm.h */

/* Not exported from libvcpu.so (lib/mock/mock.h): the level of a VM's line. */
int vcpu_mock_irq_line_level(const struct vcpu_mock *mock, int vm_fd, uint32_t irq);

static int vm_ioctl(struct fx *f, unsigned long req, const void *arg)
{
	return sys_ioctl(f->hv, f->vm->fd, req, (unsigned long)(uintptr_t)arg);
}

static int irq_line_raw(struct fx *f, uint32_t gsi, uint32_t level)
{
	const uint32_t l[2] = { gsi, level }; /* struct kvm_irq_level */

	return vm_ioctl(f, KVM_IRQ_LINE_NR, l);
}

static int pit2_raw(struct fx *f, uint32_t flags)
{
	uint32_t cfg[16] = { flags }; /* struct kvm_pit_config: flags, pad[15] */

	return vm_ioctl(f, KVM_CREATE_PIT2_NR, cfg);
}

static int line(struct fx *f, uint32_t gsi)
{
	return vcpu_mock_irq_line_level(f->mock, f->vm->fd, gsi);
}

static void test_x86_irqchip_create_and_irq(void **state)
{
	struct fx *f = *state;
	uint64_t v = 0;

	open_arch(f, X86);
	assert_int_equal(vcpu_vm_check(f->vm, VCPU_CAP_IRQCHIP, &v), 0);
	assert_int_equal(v, 1);
	/* kvm_vm_ioctl_irq_line(): ENXIO without an in-kernel irqchip. */
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 4, 1), -ENXIO);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "vcpu_x86_create_irqchip"));
	assert_int_equal(irq_line_raw(f, 4, 1), -ENXIO);

	assert_int_equal(vcpu_x86_create_irqchip(f->vm, VCPU_X86_IRQCHIP_PIT), 0);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 4, 1), 0);
	assert_int_equal(line(f, 4), 1);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 4, 0), 0);
	assert_int_equal(line(f, 4), 0);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 23, 1), 0);
	assert_int_equal(line(f, 23), 1);
	/* Past the default routing: kvm_set_irq() finds no route and KVM_IRQ_LINE says 0. */
	assert_int_equal(irq_line_raw(f, 24, 1), 0);
	assert_int_equal(line(f, 24), 0);
	assert_int_equal(irq_line_raw(f, 0xffffffffu, 1), 0);
	/* ... which libvcpu refuses, since such a line would do nothing. */
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 24, 1), -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "0..23"));
	/* One each: EEXIST, whichever parts are asked for again. */
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, 0), -EEXIST);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, VCPU_X86_IRQCHIP_PIT), -EEXIST);
	assert_int_equal(vm_ioctl(f, KVM_CREATE_IRQCHIP_NR, NULL), -EEXIST);
	assert_int_equal(pit2_raw(f, KVM_PIT_SPEAKER_DUMMY), -EEXIST);
	/* Unknown flags, another architecture. */
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, 1u << 5), -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "flags"));
	assert_int_equal(vcpu_x86_create_irqchip(NULL, 0), -EINVAL);
	/* The vCPU created now runs with it. */
	add_cpu(f, 0);
	assert_int_equal(vcpu_vm_check(f->vm, VCPU_CAP_IRQCHIP, &v), 0);
	assert_int_equal(v, 1);
}

/* x86 KVM_CREATE_IRQCHIP: EINVAL once a vCPU was created, even after it was destroyed. */
static void test_x86_irqchip_before_vcpus(void **state)
{
	struct fx *f = *state;

	open_arch(f, X86);
	add_cpu(f, 0);
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, VCPU_X86_IRQCHIP_PIT), -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "before the first vCPU"));
	assert_int_equal(vm_ioctl(f, KVM_CREATE_IRQCHIP_NR, NULL), -EINVAL);
	/* kvm->created_vcpus does not drop when a vCPU's fd is closed. */
	assert_int_equal(vcpu_destroy(&f->cpu[0]), 0);
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, 0), -EINVAL);
	assert_int_equal(vm_ioctl(f, KVM_CREATE_IRQCHIP_NR, NULL), -EINVAL);
	/* Nothing was made: lines still have no irqchip. */
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 4, 1), -ENXIO);
}

/* x86 KVM_CREATE_PIT2: ENOENT without the PIC, EEXIST for a second, any time after. */
static void test_x86_pit_rules(void **state)
{
	struct fx *f = *state;
	struct rec r;
	struct vcpu_mock_step s[] = {
		pio(VCPU_MOCK_PIO_OUT, 0x43, 1, 1, 0x34), /* PIT: channel 0, mode 2 */
		pio(VCPU_MOCK_PIO_OUT, 0x40, 1, 1, 0x9c),
		pio(VCPU_MOCK_PIO_IN, 0x61, 1, 1, 0),     /* the speaker stub */
		pio(VCPU_MOCK_PIO_OUT, 0x3f8, 1, 1, 'x'), /* COM1 is the VMM's */
		stop(),
	};

	open_arch(f, X86);
	assert_int_equal(pit2_raw(f, KVM_PIT_SPEAKER_DUMMY), -ENOENT);
	assert_int_equal(vm_ioctl(f, KVM_CREATE_PIT2_NR, NULL), -EFAULT);
	/* The irqchip alone, then a vCPU, then the PIT: the kernel allows it. */
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, 0), 0);
	add_cpu(f, 0);
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, 0), -EEXIST);
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, VCPU_X86_IRQCHIP_PIT), 0);
	assert_int_equal(pit2_raw(f, KVM_PIT_SPEAKER_DUMMY), -EEXIST);
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, VCPU_X86_IRQCHIP_PIT), -EEXIST);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "PIT"));
	/* The PIT's ports never reach the VMM. */
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_pio, 1);
	assert_int_equal(r.io[0].addr, 0x3f8);
	assert_int_equal(r.n_mmio, 1);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* A failed KVM_CREATE_PIT2 leaves the irqchip (KVM cannot remove it): the retry makes the PIT. */
static void test_x86_pit_retry_after_failure(void **state)
{
	struct fx *f = *state;

	open_arch(f, X86);
	/* Call n+1 is KVM_CREATE_IRQCHIP, n+2 KVM_CREATE_PIT2. */
	assert_int_equal(vcpu_mock_fail_call(f->mock, vcpu_mock_calls(f->mock) + 2, ENOMEM), 0);
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, VCPU_X86_IRQCHIP_PIT), -ENOMEM);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "KVM_CREATE_PIT2"));
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 4, 1), 0); /* the irqchip is there */
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, 0), -EEXIST);
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, VCPU_X86_IRQCHIP_PIT), 0);
	assert_int_equal(pit2_raw(f, KVM_PIT_SPEAKER_DUMMY), -EEXIST);
	/* A failed KVM_CREATE_IRQCHIP made nothing: the next call makes both. */
	assert_int_equal(vcpu_vm_destroy(&f->vm), 0);
	assert_int_equal(vcpu_vm_create(f->hv, NULL, &f->vm), 0);
	assert_int_equal(vcpu_mock_fail_call(f->mock, vcpu_mock_calls(f->mock) + 1, EIO), 0);
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, VCPU_X86_IRQCHIP_PIT), -EIO);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "KVM_CREATE_IRQCHIP"));
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 4, 1), -ENXIO);
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, VCPU_X86_IRQCHIP_PIT), 0);
	assert_int_equal(pit2_raw(f, KVM_PIT_SPEAKER_DUMMY), -EEXIST);
}

/* kvm_arch_irqfd_allowed() and kvm_send_userspace_msi() accept x86 VMs with the irqchip. */
static void test_x86_irqfd_msi_with_irqchip(void **state)
{
	struct fx *f = *state;
	int efd = new_eventfd(), efd2 = new_eventfd(), res = new_eventfd();
	struct vcpu_irqfd a = { .fd = efd, .irq = 5 };
	uint32_t msi[8] = { 0xfee00000u, 0, 0x31, 1 /* KVM_MSI_VALID_DEVID */, 7 };

	open_arch(f, X86);
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), -EINVAL);
	assert_int_equal(vcpu_vm_signal_msi(f->vm, 0xfee00000, 0x31), -EINVAL);
	assert_int_equal(vm_ioctl(f, KVM_SIGNAL_MSI_NR, msi), -EINVAL);
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, 0), 0);
	add_cpu(f, 0);
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), 0);
	/* Level-triggered with a resample eventfd: needs the full (not split) irqchip. */
	a = (struct vcpu_irqfd){ .fd = efd2, .irq = 10, .flags = VCPU_IRQFD_LEVEL,
				 .resample_fd = res };
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), 0);
	/* A GSI without a route: the irqfd would never fire. */
	a = (struct vcpu_irqfd){ .fd = res, .irq = 24 };
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "0..23"));
	assert_int_equal(vcpu_vm_signal_msi(f->vm, 0xfee00000, 0x31), 0);
	/* x86 accepts KVM_MSI_VALID_DEVID and ignores the device id. */
	assert_true(vm_ioctl(f, KVM_SIGNAL_MSI_NR, msi) >= 0);
	msi[3] = 2;
	assert_int_equal(vm_ioctl(f, KVM_SIGNAL_MSI_NR, msi), -EINVAL);
	close(efd);
	close(efd2);
	close(res);
}

/*
 * With the in-kernel LAPIC a HLT waits in the kernel (no exit), and the
 * PICs, IOAPIC and LAPIC are KVM's: only the other accesses exit.
 */
static void test_x86_in_kernel_devices(void **state)
{
	struct fx *f = *state;
	struct rec r;
	struct vcpu_mock_step s[] = {
		step(VCPU_MOCK_HLT),
		reg_check(VCPU_REG_X86_RIP, 0xfff1), /* past the one-byte HLT */
		pio(VCPU_MOCK_PIO_OUT, 0x20, 1, 1, 0x11), /* PIC ICW1 */
		pio(VCPU_MOCK_PIO_OUT, 0xa1, 1, 1, 0xff),
		pio(VCPU_MOCK_PIO_IN, 0x4d0, 1, 1, 0),    /* ELCR */
		mmio_read(0xfee00030, 4, 0, 0),           /* LAPIC version */
		mmio_write(0xfee000b0, 4, 0),             /* LAPIC EOI */
		mmio_write(0xfec00000, 4, 0x10),          /* IOAPIC select */
		pio(VCPU_MOCK_PIO_OUT, 0x43, 1, 1, 0x34), /* no PIT was made: the VMM's */
		mmio_write(0xfed00000, 4, 1),             /* no HPET in KVM: the VMM's */
		stop(),
	};

	open_arch(f, X86);
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, 0), 0);
	add_cpu(f, 0);
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_other, 0); /* no HLT exit */
	assert_int_equal(r.n_pio, 1);
	assert_int_equal(r.io[0].addr, 0x43);
	assert_int_equal(r.n_mmio, 2);
	assert_int_equal(r.io[1].addr, 0xfed00000);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* Not on arm64 (its irqchip is the vGICv3), not on a backend without the call. */
static void test_x86_irqchip_wrong_vm(void **state)
{
	struct fx *f = *state;
	struct vcpu_mock *am = NULL;
	struct vcpu_hv *ahv = NULL;
	struct vcpu_vm *avm = NULL;

	open_arch(f, ARM64);
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, 0), -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "x86_64"));
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, VCPU_X86_IRQCHIP_PIT), -EINVAL);

	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_ACRN, NULL, &am, &ahv), 0);
	assert_int_equal(vcpu_vm_create(ahv, NULL, &avm), 0);
	assert_int_equal(vcpu_x86_create_irqchip(avm, VCPU_X86_IRQCHIP_PIT), -EOPNOTSUPP);
	assert_non_null(strstr(vcpu_vm_last_error(avm), "acrn"));
	assert_int_equal(vcpu_x86_create_irqchip(avm, 1u << 3), -EINVAL);
	assert_int_equal(vcpu_vm_destroy(&avm), 0);
	assert_int_equal(vcpu_hv_close(ahv), 0);
	assert_int_equal(vcpu_mock_destroy(&am), 0);
}

static void test_ioeventfd_kvm(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	int mmio = new_eventfd(), port = new_eventfd(), match = new_eventfd();
	struct vcpu_ioeventfd a;
	struct rec r;
	struct vcpu_mock_step s[] = {
		mmio_write(MMIO_BASE, 4, 7),         /* signals mmio, no exit */
		mmio_write(MMIO_BASE + 4, 4, 7),     /* exits: no binding */
		pio(VCPU_MOCK_PIO_OUT, 0x510, 2, 1, 0x1234), /* signals port */
		mmio_write(MMIO_BASE + 8, 2, 5),     /* wrong value: exits */
		mmio_write(MMIO_BASE + 8, 2, 9),     /* matches: signals match */
		stop(),
	};

	a = (struct vcpu_ioeventfd){ .fd = mmio, .addr = MMIO_BASE, .len = 4 };
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &a), 0);
	/* ioeventfd_check_collision(): the same range twice. */
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &a), -EEXIST);
	expect_detail(vcpu_vm_last_error(f->vm));
	a = (struct vcpu_ioeventfd){ .fd = port, .addr = 0x510, .len = 2,
				     .flags = VCPU_IOEVENTFD_PIO };
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &a), 0);
	a = (struct vcpu_ioeventfd){ .fd = match, .addr = MMIO_BASE + 8, .len = 2, .datamatch = 9,
				     .flags = VCPU_IOEVENTFD_DATAMATCH };
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &a), 0);
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 3);
	assert_int_equal(r.io[0].addr, MMIO_BASE + 4);
	assert_int_equal(r.io[1].addr, MMIO_BASE + 8);
	assert_int_equal(r.n_pio, 0);
	assert_int_equal(eventfd_count(mmio), 1);
	assert_int_equal(eventfd_count(port), 1);
	assert_int_equal(eventfd_count(match), 1);
	expect_script(f, 0, ARRAY_SIZE(s));

	/* The kernel's rules, and the library's own before the call. */
	a = (struct vcpu_ioeventfd){ .fd = mmio, .addr = MMIO_BASE, .len = 3 };
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &a), -EINVAL);
	a = (struct vcpu_ioeventfd){ .fd = mmio, .addr = MMIO_BASE, .len = 0,
				     .flags = VCPU_IOEVENTFD_DATAMATCH };
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &a), -EINVAL);
	a = (struct vcpu_ioeventfd){ .fd = mmio, .addr = UINT64_MAX - 1, .len = 4 };
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &a), -EINVAL);
	a = (struct vcpu_ioeventfd){ .fd = mmio, .addr = MMIO_BASE, .len = 4, .reserved32 = 1 };
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &a), -EINVAL);
	a = (struct vcpu_ioeventfd){ .fd = mmio, .addr = MMIO_BASE, .len = 4, .flags = 1u << 9 };
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &a), -EINVAL);
	a = (struct vcpu_ioeventfd){ .fd = 0, .addr = MMIO_BASE + 64, .len = 4 };
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &a), -EINVAL); /* fd 0 is no eventfd */
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, NULL), -EINVAL);
	/* Deassign needs the exact binding: ENOENT otherwise. */
	a = (struct vcpu_ioeventfd){ .fd = mmio, .addr = MMIO_BASE, .len = 4,
				     .flags = VCPU_IOEVENTFD_DEASSIGN };
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &a), 0);
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &a), -ENOENT);
	close(mmio);
	close(port);
	close(match);
}

static void test_ioeventfd_pio_is_x86_only(void **state)
{
	struct fx *f = *state;
	int efd;
	struct vcpu_ioeventfd a;

	open_arch(f, ARM64);
	efd = new_eventfd();
	a = (struct vcpu_ioeventfd){ .fd = efd, .addr = 0x60, .len = 1,
				     .flags = VCPU_IOEVENTFD_PIO };
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &a), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	a.flags = 0;
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &a), 0);
	close(efd);
}

/* ======================================================================== */

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/*
 * Warm the process up before counting anything: the first heap growth, the
 * kick signal's handler and stdio buffers must not look like a leak of the
 * first test.  One arena for all threads: a per-thread malloc arena would
 * show as a mapping that outlives its thread.
 */
static void warm_up(void)
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* handles and lifecycle */
		T(test_open_arm64),
		T(test_open_x86),
		T(test_mock_open_errors),
		T(test_seam_abi_mismatch),
		T(test_run_eagain_reenters),
		T(test_io_response_checked),
		T(test_stop_keeps_writeback_error),
		T(test_vm_errors_from_threads),
		T(test_handler_cannot_change_access),
		T(test_stop_with_answer),
		T(test_psci_check_failure_fails_vcpu),
		T(test_leak_accounting_sees_objects),
		/* capabilities */
		T(test_cap_values_from_driver),
		T(test_cap_no_immediate_exit),
		T(test_cap_smccc_filter),
		T(test_cap_no_smccc_filter),
		T(test_cap_unknown),
		/* registers */
		T(test_regs_arm64_core),
		T(test_regs_arm64_sysreg),
		T(test_regs_x86_gprs),
		T(test_regs_x86_control),
		T(test_regs_x86_segments),
		T(test_regs_wrong_arch),
		T(test_regs_reach_guest_arm64),
		T(test_regs_reach_guest_x86),
		/* MMIO */
		T(test_mmio_write_arm64),
		T(test_mmio_write_x86),
		T(test_mmio_vcpu_id),
		T(test_mmio_read_arm64),
		T(test_mmio_read_x86),
		T(test_mmio_read_sign_extend_arm64),
		T(test_mmio_read_sign_extend_x86),
		T(test_mmio_unhandled_read_zero),
		T(test_mmio_pc_advance_arm64),
		T(test_mock_catches_wrong_mmio_read),
		T(test_mock_catches_wrong_hypercall_ret),
		/* port I/O */
		T(test_pio_out),
		T(test_pio_out_rep),
		T(test_pio_in),
		T(test_pio_in_rep),
		T(test_pio_unhandled_in_zero),
		/* hypercalls */
		T(test_hvc_forwarded),
		T(test_smc_forwarded_defaults),
		T(test_hvc_smc_told_apart),
		T(test_hypercall_not_forwarded),
		T(test_psci_forwarded),
		T(test_forward_ranges),
		T(test_x86_hypercall),
		T(test_x86_hypercall_not_forwarded),
		/* system events */
		T(test_psci_system_off),
		T(test_psci_system_reset),
		T(test_psci_system_reset2),
		T(test_system_event_crash),
		T(test_system_event_wakeup_suspend),
		T(test_system_event_raw_legacy),
		T(test_system_event_fallbacks),
		/* fatal and other exits */
		T(test_internal_error_other),
		T(test_internal_error_eio),
		T(test_fail_entry),
		T(test_memory_fault),
		T(test_memory_fault_handler),
		T(test_hlt),
		T(test_triple_fault_and_unknown),
		T(test_debug_exit_raw_bytes),
		T(test_unknown_exit_code),
		T(test_run_call_fails),
		/* malformed exits */
		T(test_malformed_mmio_len0),
		T(test_malformed_mmio_len9),
		T(test_malformed_pio_size3),
		T(test_malformed_pio_offset),
		T(test_malformed_pio_count),
		T(test_malformed_pio_on_arm64),
		T(test_malformed_system_event_ndata),
		T(test_malformed_internal_ndata),
		/* handler results */
		T(test_handler_stop_code),
		T(test_handler_negative_errno),
		T(test_no_handler_enosys_resumable),
		T(test_busy_inside_handler),
		/* kicks */
		T(test_kick_from_thread),
		T(test_kick_from_thread_no_immediate_exit),
		T(test_stale_immediate_exit_flag),
		T(test_kick_before_run),
		T(test_kick_before_run_no_immediate_exit),
		T(test_two_kicks_merge),
		T(test_kick_from_handler),
		T(test_kick_from_signal_handler),
		/* guest memory */
		T(test_map_invalid),
		T(test_map_overlap_and_unmap_enoent),
		T(test_mem_roundtrip_arm64),
		T(test_mem_roundtrip_x86),
		T(test_unmap_then_mmio),
		T(test_readonly_write_exits),
		T(test_memslots_enospc),
		/* API errors */
		T(test_null_handles),
		T(test_null_out_pointers),
		T(test_vcpu_id_range_and_duplicate),
		T(test_vcpu_create_bad_flags),
		T(test_vm_config_invalid),
		T(test_destroy_order),
		T(test_double_destroy),
		T(test_forward_after_run_ebusy),
		T(test_gic_after_run_ebusy),
		T(test_kick_signal_rules),
		T(test_kick_during_handler),
		T(test_kick_during_handler_no_immediate_exit),
		T(test_kick_during_handler_geniezone),
		T(test_kick_signal_blocked_by_thread),
		T(test_kick_signal_ignored_refused),
		/* vGICv3 */
		T(test_gic_create_and_irq),
		T(test_gic_irq_without_gic),
		T(test_gic_bad_args),
		T(test_gic_on_x86),
		/* threads */
		T(test_two_vcpus_in_parallel),
		/* the portable VM calls on KVM */
		T(test_vm_alloc),
		T(test_vm_alloc_private_aligned),
		T(test_vm_lifecycle_calls_on_kvm),
		T(test_irqfd_kvm),
		T(test_irqfd_x86_needs_irqchip),
		T(test_signal_msi_arm64_without_its),
		/* x86 in-kernel irqchip and PIT */
		T(test_x86_irqchip_create_and_irq),
		T(test_x86_irqchip_before_vcpus),
		T(test_x86_pit_rules),
		T(test_x86_pit_retry_after_failure),
		T(test_x86_irqfd_msi_with_irqchip),
		T(test_x86_in_kernel_devices),
		T(test_x86_irqchip_wrong_vm),
		T(test_ioeventfd_kvm),
		T(test_ioeventfd_pio_is_x86_only),
	};

	mallopt(M_ARENA_MAX, 1);
	warm_up();
	return cmocka_run_group_tests_name("mock", tests, NULL, NULL);
}
