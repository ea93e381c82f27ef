// SPDX-License-Identifier: MIT
/*
 * The `geniezone` suite: libvcpu's GenieZone backend against the modelled
 * /dev/gzvm driver (lib/mock/mock_geniezone*.c), on any host.
 *
 * Every test runs between a setup that records the process's open fds and
 * memory mappings and a teardown that destroys every handle (asserting 0),
 * checks that the mock holds no live object, destroys the mock, and asserts
 * both counts are back: nothing leaks, in any test.  Scripted tests end
 * with expect_script(): no failed write-back check in the mock and exactly
 * the steps given were completed.  A script usually ends with stop(), an
 * MMIO write to STOP_ADDR that the handlers answer with VCPU_STOP.
 *
 * Tests that name a driver rule call the modelled kernel directly through
 * the handle's syscall seam (raw_ioctl) so the rule itself, not the
 * library's own check in front of it, is what is shown.
 */
#define _GNU_SOURCE
#include <vcpu/arm64.h>
#include <vcpu/mock.h>
#include <vcpu/vcpu.h>

#include <errno.h>
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

#include "core/internal.h"
#include "geniezone/geniezone_abi.h"
#include "mock/mock_geniezone.h"
#include "helpers.h"
#include "threads.h"
#include "mock_steps.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MMIO_BASE 0x10000000ull
#define ARM_ADDR 0x1ffe0000ull
#define RAM_GPA 0x40000000ull
#define GIC_DIST 0x08000000ull
#define GIC_REDIST 0x080a0000ull
#define MAX_CPUS 8
#define NREC 64

/* ------------------------------------------------------------------------ */
/* Fixture                                                                    */

struct fx {
	long fds, maps;
	struct vcpu_mock *mock;
	struct vcpu_hv *hv;
	struct vcpu_vm *vm;
	struct vcpu *cpu[MAX_CPUS];
	int efd[4];
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
	for (unsigned i = 0; i < ARRAY_SIZE(f->efd); i++)
		f->efd[i] = -1;
	f->page = (size_t)sysconf(_SC_PAGESIZE);
	f->fds = count_open_fds();
	f->maps = count_mappings();
	*state = f;
	return 0;
}

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
	for (unsigned i = 0; i < ARRAY_SIZE(f->efd); i++)
		if (f->efd[i] >= 0)
			close(f->efd[i]);
	fds = count_open_fds();
	maps = count_mappings();

	assert_int_equal(rc_cpu, 0);
	assert_int_equal(rc_vm, 0);
	assert_int_equal(rc_hv, 0);
	assert_int_equal(live, 0);
	assert_int_equal(rc_mock, 0);
	assert_int_equal(fds, f->fds);
	assert_int_equal(maps, f->maps);
	free(f);
	return 0;
}

static void open_cfg(struct fx *f, const struct vcpu_mock_config *cfg)
{
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_GENIEZONE, cfg, &f->mock, &f->hv), 0);
	assert_int_equal(vcpu_vm_create(f->hv, NULL, &f->vm), 0);
}

static struct vcpu *add_cpu(struct fx *f, uint32_t id)
{
	assert_true(id < MAX_CPUS);
	assert_int_equal(vcpu_create(f->vm, id, 0, &f->cpu[id]), 0);
	return f->cpu[id];
}

static struct vcpu *open_one(struct fx *f)
{
	open_cfg(f, NULL);
	return add_cpu(f, 0);
}

/* One whole shared mapping: its own VMA, as the driver's size rule wants. */
static void *host_mapping(struct fx *f, size_t pages)
{
	for (unsigned i = 0; i < ARRAY_SIZE(f->mem); i++) {
		if (f->mem[i].p)
			continue;
		f->mem[i].len = pages * f->page;
		f->mem[i].p = mmap(NULL, f->mem[i].len, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		assert_true(f->mem[i].p != MAP_FAILED);
		return f->mem[i].p;
	}
	fail_msg("host_mapping: too many");
	return NULL;
}

static int new_eventfd(struct fx *f)
{
	for (unsigned i = 0; i < ARRAY_SIZE(f->efd); i++) {
		if (f->efd[i] >= 0)
			continue;
		f->efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		assert_true(f->efd[i] >= 0);
		return f->efd[i];
	}
	fail_msg("new_eventfd: too many");
	return -1;
}

static void expect_detail(const char *detail)
{
	assert_non_null(detail);
	assert_true(strlen(detail) > 0);
}

/* The modelled kernel, called through the handle's seam. */
static int raw_ioctl(struct fx *f, int fd, unsigned long req, unsigned long arg)
{
	return f->hv->sys->ioctl(f->hv->sys_ctx, fd, req, arg);
}

static struct mock_gz_vm_info vm_info(struct fx *f)
{
	struct mock_gz_vm_info i;

	assert_int_equal(mock_gz_vm_info(f->mock, f->vm->fd, &i), 0);
	return i;
}

static struct mock_gz_vcpu_stats stats(struct fx *f, uint32_t id)
{
	struct mock_gz_vcpu_stats s;

	assert_int_equal(mock_gz_vcpu_stats(f->mock, f->vm->fd, id, &s), 0);
	return s;
}

static struct gzvm_vcpu_run *run_of(struct vcpu *cpu)
{
	return cpu->run;
}

/* ------------------------------------------------------------------------ */
/* Script steps                                                               */

static struct vcpu_mock_step with_value(uint32_t op, uint64_t value)
{
	struct vcpu_mock_step s = step(op);

	s.value = value;
	return s;
}

static struct vcpu_mock_step with_data(uint32_t op, uint64_t value, uint32_t ndata,
				       const uint64_t *data)
{
	struct vcpu_mock_step s = with_value(op, value);

	s.ndata = ndata;
	for (uint32_t i = 0; i < ndata; i++)
		s.args[i] = data[i];
	return s;
}

/* A RAW exit: @code with the exit union (run offset 8) given field by field. */
static struct vcpu_mock_step raw(uint32_t code)
{
	return with_value(VCPU_MOCK_RAW, code);
}

static void raw_put(struct vcpu_mock_step *s, unsigned off, uint64_t v, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		s->raw[off + i] = (uint8_t)(v >> (8 * i));
}

static void script(struct fx *f, uint32_t id, const struct vcpu_mock_step *steps, size_t n)
{
	assert_int_equal(vcpu_mock_script(f->mock, id, steps, n), 0);
}

#define SCRIPT(f, id, steps) script((f), (id), (steps), ARRAY_SIZE(steps))

static void expect_script(struct fx *f, uint32_t id, size_t n)
{
	const char *msg = NULL;
	unsigned failures = vcpu_mock_failures(f->mock, &msg);

	if (failures)
		print_message("mock failure: %s\n", msg ? msg : "(no message)");
	assert_int_equal(failures, 0);
	assert_int_equal(vcpu_mock_steps_done(f->mock, id), n);
}

/* ------------------------------------------------------------------------ */
/* Recording handlers                                                         */

struct rec {
	unsigned n_mmio, n_hc, n_sev, n_other, n_fault;
	struct vcpu_io io[NREC];
	struct vcpu_hypercall hc[4];
	struct vcpu_system_event sev[8];
	struct vcpu_exit other[4];
	struct vcpu_memory_fault fault[4];
	uint64_t reply[NREC];
	unsigned n_reply, next_reply;
	unsigned hc_set;
	uint64_t hc_ret[4];
	int sev_rc, other_rc;
	/* memory_fault: map this much RAM at the faulting page, then RETRY */
	struct vcpu_vm *fix_vm;
	uint64_t fix_size;
	atomic_int armed;
};

static void rec_init(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	r->sev_rc = VCPU_STOP;
	r->other_rc = VCPU_STOP;
}

static int on_mmio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct rec *r = ctx;

	(void)cpu;
	if (r->n_mmio < NREC)
		r->io[r->n_mmio] = *io;
	r->n_mmio++;
	if (io->is_write && io->addr == STOP_ADDR)
		return VCPU_STOP;
	if (io->is_write && io->addr == ARM_ADDR) {
		atomic_store(&r->armed, 1);
		return VCPU_CONTINUE;
	}
	if (!io->is_write) {
		uint64_t v = r->next_reply < r->n_reply ? r->reply[r->next_reply] : 0;

		r->next_reply++;
		memset(io->data, 0, sizeof(io->data));
		for (unsigned i = 0; i < io->len; i++)
			io->data[i] = (uint8_t)(v >> (8 * i));
	}
	return VCPU_CONTINUE;
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
	return VCPU_CONTINUE;
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

static int on_fault(void *ctx, struct vcpu *cpu, struct vcpu_memory_fault *mf)
{
	struct rec *r = ctx;
	void *host = NULL;

	(void)cpu;
	if (r->n_fault < ARRAY_SIZE(r->fault))
		r->fault[r->n_fault] = *mf;
	r->n_fault++;
	if (r->fix_vm && vcpu_vm_alloc(r->fix_vm, mf->gpa & ~(uint64_t)0xfff, r->fix_size, 0,
				       &host) == 0)
		mf->response = VCPU_IO_RETRY;
	return VCPU_CONTINUE;
}

static const struct vcpu_handlers H_ALL = {
	.mmio = on_mmio,
	.hypercall = on_hypercall,
	.system_event = on_system_event,
	.other = on_other,
	.memory_fault = on_fault,
};

static const struct vcpu_handlers H_NO_OTHER = {
	.mmio = on_mmio,
	.hypercall = on_hypercall,
	.system_event = on_system_event,
};

/* ======================================================================== */
/* Handles, capabilities, VM creation                                         */

static void test_open_and_identity(void **state)
{
	struct fx *f = *state;
	struct vcpu_mock_config x86 = { .arch = VCPU_ARCH_X86_64 };
	struct vcpu_mock_config slots = { .nr_memslots = 4 };
	struct vcpu_mock *m = NULL;
	struct vcpu_hv *hv = NULL;

	open_cfg(f, NULL);
	assert_int_equal(vcpu_hv_backend(f->hv), VCPU_BACKEND_GENIEZONE);
	assert_int_equal(vcpu_hv_arch(f->hv), VCPU_ARCH_ARM64);
	assert_string_equal(vcpu_backend_name(vcpu_hv_backend(f->hv)), "geniezone");
	/* GenieZone exists on arm64 only, with the kernel's fixed limits. */
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_GENIEZONE, &x86, &m, &hv), -EINVAL);
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_GENIEZONE, &slots, &m, &hv), -EINVAL);
	assert_null(m);
	assert_null(hv);
}

static void test_caps(void **state)
{
	struct fx *f = *state;
	struct vcpu_mock_config cfg = { .ipa_bits = 44 };
	uint64_t v = 99;

	open_cfg(f, &cfg);
	/* The one driver query: GZVM_CAP_VM_GPA_SIZE through a pointer. */
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_ARM_IPA_BITS, &v), 0);
	assert_int_equal(v, 44);
	assert_int_equal(vcpu_vm_check(f->vm, VCPU_CAP_ARM_IPA_BITS, &v), 0);
	assert_int_equal(v, 44);
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_MAX_VCPUS, &v), 0);
	assert_int_equal(v, 8);
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_MAX_VCPU_ID, &v), 0);
	assert_int_equal(v, 8);
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_NR_MEMSLOTS, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_IMMEDIATE_EXIT, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_IOEVENTFD, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_READONLY_MEM, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_ARM_SMCCC_FILTER, &v), -EOPNOTSUPP);
	expect_detail(vcpu_hv_last_error(f->hv));
	assert_int_equal(vcpu_vm_check(f->vm, VCPU_CAP_ARM_SMCCC_FILTER, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(vcpu_hv_check(f->hv, (enum vcpu_cap)999, &v), -EINVAL);
}

/* Kernel rule: GZVM_CHECK_EXTENSION's argument is a pointer to a u64. */
static void test_check_extension_pointer_rules(void **state)
{
	struct fx *f = *state;
	uint64_t cap;

	open_cfg(f, NULL);
	/* NULL on the device fd: EINVAL (checked before the copy); on a VM fd: EFAULT. */
	assert_int_equal(raw_ioctl(f, f->hv->fd, GZVM_CHECK_EXTENSION, 0), -EINVAL);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_CHECK_EXTENSION, 0), -EFAULT);
	cap = 0x1234;
	assert_int_equal(raw_ioctl(f, f->hv->fd, GZVM_CHECK_EXTENSION, (unsigned long)&cap),
			 -EOPNOTSUPP);
	cap = GZVM_CAP_VM_GPA_SIZE;
	assert_int_equal(raw_ioctl(f, f->hv->fd, GZVM_CHECK_EXTENSION, (unsigned long)&cap), 0);
	assert_int_equal(cap, 40); /* written over the capability */
	cap = GZVM_CAP_PROTECTED_VM;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_CHECK_EXTENSION, (unsigned long)&cap), 0);
	assert_int_equal(cap, 1);
}

static void test_vm_config(void **state)
{
	struct fx *f = *state;
	struct vcpu_vm_config c;
	struct vcpu_vm *vm = NULL;

	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_GENIEZONE, NULL, &f->mock, &f->hv), 0);
	memset(&c, 0, sizeof(c));
	c.ipa_bits = 36; /* every GenieZone VM has the driver's 40 bits */
	assert_int_equal(vcpu_vm_create(f->hv, &c, &vm), -EINVAL);
	expect_detail(vcpu_hv_last_error(f->hv));
	c.ipa_bits = 0;
	c.flags = VCPU_VM_SYSTEM_SUSPEND;
	assert_int_equal(vcpu_vm_create(f->hv, &c, &vm), -EINVAL);
	c.flags = 0;
	c.cpu_affinity = 1;
	assert_int_equal(vcpu_vm_create(f->hv, &c, &vm), -EINVAL);
	assert_null(vm);
	c.cpu_affinity = 0;
	c.ipa_bits = 40;
	assert_int_equal(vcpu_vm_create(f->hv, &c, &f->vm), 0);
	/* The modelled hypervisor creates VM type 0 only. */
	assert_int_equal(raw_ioctl(f, f->hv->fd, GZVM_CREATE_VM, 1), -EINVAL);
}

/* ======================================================================== */
/* vCPUs                                                                      */

/* Kernel rule: GZVM_CREATE_VCPU takes ids below GZVM_MAX_VCPUS (8), else EINVAL. */
static void test_vcpu_id_range(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = NULL;

	open_cfg(f, NULL);
	add_cpu(f, 7);
	assert_int_equal(vcpu_create(f->vm, 8, 0, &cpu), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_null(cpu);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_CREATE_VCPU, 8), -EINVAL);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_CREATE_VCPU, 0xffffffff), -EINVAL);
	assert_int_equal(vcpu_create(f->vm, 0, VCPU_CREATE_POWER_OFF, &cpu), -EOPNOTSUPP);
	expect_detail(vcpu_vm_last_error(f->vm));
}

/* vCPUs live as long as their VM: an id is never free again. */
static void test_vcpu_duplicate(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = NULL;

	open_cfg(f, NULL);
	add_cpu(f, 0);
	assert_int_equal(vcpu_create(f->vm, 0, 0, &cpu), -EEXIST);
	assert_int_equal(vcpu_destroy(&f->cpu[0]), 0);
	assert_int_equal(vcpu_create(f->vm, 0, 0, &cpu), -EEXIST);
	expect_detail(vcpu_vm_last_error(f->vm));
	/* The modelled hypervisor refuses the duplicate too (the kernel would let it through). */
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_CREATE_VCPU, 0), -EEXIST);
	add_cpu(f, 1);
}

/* The run structure is a private page-aligned buffer: vCPU fds cannot be mapped. */
static void test_run_buffer_not_mapped(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	void *p = NULL;

	assert_non_null(cpu->run);
	assert_int_equal((uintptr_t)cpu->run % f->page, 0);
	assert_int_equal(cpu->run_size, f->page);
	/* device, VM, vCPU: three fds and no mapping. */
	assert_int_equal(vcpu_mock_live_objects(f->mock), 3);
	assert_int_equal(f->hv->sys->mmap(f->hv->sys_ctx, cpu->fd, f->page, PROT_READ, 0, &p),
			 -ENODEV);
	assert_int_equal(run_of(cpu)->padding1[0] | run_of(cpu)->padding1[1] |
				 run_of(cpu)->padding1[2], 0);
}

/* ======================================================================== */
/* Registers                                                                  */

static void test_set_reg_reaches_guest(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step s[] = {
		reg_check(VCPU_REG_ARM64_PC, 0x40080000),
		reg_check(VCPU_REG_ARM64_X(0), 0x48000000),
		reg_check(VCPU_REG_ARM64_X(30), 0x1e),
		reg_check(VCPU_REG_ARM64_SP, 0x7000),
		reg_check(VCPU_REG_ARM64_PSTATE, 0x3c5),
		reg_check(VCPU_REG_ARM64_SP_EL1, 0x8000),
		reg_check(VCPU_REG_ARM64_ELR_EL1, 0x1234),
		stop(),
	};

	rec_init(&r);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_PC, 0x40080000), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_X(0), 0x48000000), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_X(30), 0x1e), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_SP, 0x7000), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_SP_EL1, 0x8000), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_ELR_EL1, 0x1234), 0);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* Kernel rule: GZVM_GET_ONE_REG is EOPNOTSUPP; the library says so. */
static void test_get_reg_honest_error(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct gzvm_one_reg one = { .id = GZVM_REG_CORE(GZVM_CORE_OFF_PC), .addr = 0 };
	uint64_t v = 0x5a;

	assert_int_equal(vcpu_get_reg(cpu, VCPU_REG_ARM64_PC, &v), -EOPNOTSUPP);
	assert_non_null(strstr(vcpu_last_error(cpu), "GET_ONE_REG"));
	assert_int_equal(v, 0x5a);
	/* Before the argument is even read. */
	assert_int_equal(raw_ioctl(f, cpu->fd, GZVM_GET_ONE_REG, (unsigned long)&one), -EOPNOTSUPP);
	assert_int_equal(raw_ioctl(f, cpu->fd, GZVM_GET_ONE_REG, 0), -EOPNOTSUPP);
	/* Ids of another architecture and undocumented system registers. */
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_RAX, 1), -EINVAL);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_MPIDR_EL1, 1), -EOPNOTSUPP);
	expect_detail(vcpu_last_error(cpu));
}

/* Kernel rule: SET_ONE_REG sizes must be 1, 2, 4 or 8 bytes (EINVAL); value pointer EFAULT. */
static void test_set_one_reg_rules(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	uint64_t val = 7;
	struct gzvm_one_reg one;

	one.addr = (uint64_t)(uintptr_t)&val;
	one.id = (GZVM_REG_CORE(0) & ~GZVM_REG_SIZE_MASK) | (4ull << GZVM_REG_SIZE_SHIFT); /* U128 */
	assert_int_equal(raw_ioctl(f, cpu->fd, GZVM_SET_ONE_REG, (unsigned long)&one), -EINVAL);
	one.id = (GZVM_REG_CORE(0) & ~GZVM_REG_SIZE_MASK) | (5ull << GZVM_REG_SIZE_SHIFT); /* U256 */
	assert_int_equal(raw_ioctl(f, cpu->fd, GZVM_SET_ONE_REG, (unsigned long)&one), -EINVAL);
	one.id = GZVM_REG_CORE(GZVM_CORE_OFF_PC);
	one.addr = 0;
	assert_int_equal(raw_ioctl(f, cpu->fd, GZVM_SET_ONE_REG, (unsigned long)&one), -EFAULT);
	assert_int_equal(raw_ioctl(f, cpu->fd, GZVM_SET_ONE_REG, 0), -EFAULT);
	one.addr = (uint64_t)(uintptr_t)&val;
	assert_int_equal(raw_ioctl(f, cpu->fd, GZVM_SET_ONE_REG, (unsigned long)&one), 0);
	assert_int_equal(stats(f, 0).pc, 7);
}

/* ======================================================================== */
/* MMIO                                                                       */

static void test_mmio_writes(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step s[] = {
		mmio_write(MMIO_BASE, 1, 0xab),
		mmio_write(MMIO_BASE + 2, 2, 0xbeef),
		mmio_write(MMIO_BASE + 4, 4, 0xdeadbeef),
		mmio_write(MMIO_BASE + 8, 8, 0x0123456789abcdefull),
		stop(),
	};
	static const uint32_t len[] = { 1, 2, 4, 8 };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 5);
	for (unsigned i = 0; i < 4; i++) {
		uint64_t got = 0;

		assert_int_equal(r.io[i].addr, s[i].addr);
		assert_int_equal(r.io[i].len, len[i]);
		assert_true(r.io[i].is_write);
		assert_int_equal(r.io[i].vcpu_id, 0);
		memcpy(&got, r.io[i].data, len[i]);
		assert_int_equal(got, s[i].value);
	}
	assert_int_equal(vcpu_last_exit(cpu)->raw_reason, GZVM_EXIT_MMIO);
	expect_script(f, 0, ARRAY_SIZE(s));
	/* Four accesses completed (the stop is completed at the next entry). */
	assert_int_equal(stats(f, 0).pc, 16);
}

/* Reads reach the guest through the next copy-in: the mock checks mmio.data. */
static void test_mmio_reads_written_back(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step sx = mmio_read(MMIO_BASE + 0x20, 2, 0x8001, 7);
	struct vcpu_mock_step s[] = {
		mmio_read(MMIO_BASE, 1, 0x5a, 3),
		mmio_read(MMIO_BASE + 8, 4, 0xcafef00d, 4),
		mmio_read(MMIO_BASE + 16, 8, 0x1122334455667788ull, 5),
		sx,
		reg_check(VCPU_REG_ARM64_X(3), 0x5a),
		reg_check(VCPU_REG_ARM64_X(4), 0xcafef00d),
		reg_check(VCPU_REG_ARM64_X(5), 0x1122334455667788ull),
		reg_check(VCPU_REG_ARM64_X(7), 0xffffffffffff8001ull),
		stop(),
	};

	s[3].flags = VCPU_MOCK_SIGN_EXTEND;
	rec_init(&r);
	r.reply[r.n_reply++] = 0x5a;
	r.reply[r.n_reply++] = 0xcafef00d;
	r.reply[r.n_reply++] = 0x1122334455667788ull;
	r.reply[r.n_reply++] = 0x8001;
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 5);
	assert_false(r.io[0].is_write);
	assert_int_equal(r.io[1].len, 4);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* A wrong value is caught by the guest: the write-back checks can fail. */
static void test_mock_catches_wrong_read(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step s[] = { mmio_read(MMIO_BASE, 4, 0x1234, 1), stop() };

	rec_init(&r);
	r.reply[r.n_reply++] = 0x4321;
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(vcpu_mock_failures(f->mock, NULL), 1);
}

/* No handler: -ENOSYS, the vCPU resumable, the read completed with zeros. */
static void test_mmio_unhandled_read_zero(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	const struct vcpu_handlers none = { 0 };
	struct rec r;
	struct vcpu_mock_step s[] = { mmio_read(MMIO_BASE, 8, 0, 2), reg_check(VCPU_REG_ARM64_X(2), 0),
				      stop() };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_X(2), 0x77), 0);
	assert_int_equal(vcpu_run(cpu, &none, NULL), -ENOSYS);
	expect_detail(vcpu_last_error(cpu));
	assert_int_equal(vcpu_last_exit(cpu)->kind, VCPU_EXIT_MMIO);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* mmio.size is a u64 from the driver: only 1, 2, 4 and 8 are accesses. */
static void test_malformed_mmio_size(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	static const uint64_t bad[] = { 0, 3, 16, 1ull << 32 };
	struct rec r;

	rec_init(&r);
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		struct vcpu_mock_step s[] = { raw(GZVM_EXIT_MMIO) };

		raw_put(&s[0], 0, MMIO_BASE, 8);
		raw_put(&s[0], 16, bad[i], 8);
		SCRIPT(f, 0, s);
		assert_int_equal(vcpu_run(cpu, &H_ALL, &r), -EPROTO);
		assert_int_equal(vcpu_last_exit(cpu)->raw_reason, GZVM_EXIT_MMIO);
		expect_detail(vcpu_last_error(cpu));
	}
	assert_int_equal(r.n_mmio, 0);
}

/* ======================================================================== */
/* Hypercalls: hypercall.args[] is x0..x7, in and out                          */

static struct vcpu_mock_step hvc(uint64_t fid, uint32_t nargs, const uint64_t *args,
				 uint32_t nexpect, const uint64_t *expect)
{
	struct vcpu_mock_step s = with_data(VCPU_MOCK_HYPERCALL, fid, nargs, args);

	s.nexpect = nexpect;
	for (uint32_t i = 0; i < nexpect; i++)
		s.expect[i] = expect[i];
	return s;
}

static void test_hypercall_args_and_results(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	static const uint64_t args[7] = { 11, 22, 33, 44, 55, 66, 77 };
	static const uint64_t expect[4] = { 0, 0xa1, 0xa2, 0xa3 };
	struct rec r;
	struct vcpu_mock_step s[] = { hvc(0xc6000010, 7, args, 4, expect), stop() };

	rec_init(&r);
	r.hc_set = 0xf;
	r.hc_ret[0] = 0;
	r.hc_ret[1] = 0xa1;
	r.hc_ret[2] = 0xa2;
	r.hc_ret[3] = 0xa3;
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_hc, 1);
	assert_int_equal(r.hc[0].nr, 0xc6000010);
	assert_int_equal(r.hc[0].nargs, 7);
	assert_memory_equal(r.hc[0].args, args, sizeof(args));
	assert_int_equal(r.hc[0].flags, 0);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* A handler that sets nothing: x0 = NOT_SUPPORTED, x1..x3 as the guest left them. */
static void test_hypercall_default_results(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	static const uint64_t args[3] = { 0x111, 0x222, 0x333 };
	static const uint64_t expect[4] = { VCPU_SMCCC_RET_NOT_SUPPORTED, 0x111, 0x222, 0x333 };
	struct rec r;
	struct vcpu_mock_step s[] = { hvc(0x86000020, 3, args, 4, expect), stop() };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_hc, 1);
	assert_int_equal(r.hc[0].ret[0], VCPU_SMCCC_RET_NOT_SUPPORTED);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static int on_hc_two_results(void *ctx, struct vcpu *cpu, struct vcpu_hypercall *hc)
{
	struct rec *r = ctx;
	uint64_t v = 0;

	r->hc[r->n_hc++] = *hc;
	/* Free here: the arguments are in the run structure, lazy or not. */
	assert_int_equal(vcpu_hypercall_arg(cpu, 6, &v), 0);
	assert_int_equal(v, 77);
	hc->ret[0] = 0;
	hc->ret[1] = 0xb1;
	hc->ret[2] = 0xdead; /* past nret: not written */
	hc->nret = 2;
	return VCPU_CONTINUE;
}

/*
 * VCPU_VM_LAZY_HYPERCALL_ARGS on GenieZone: the arguments are filled all
 * the same; only ret[0..nret-1] go back, x2 and x3 keep the guest's values.
 */
static void test_hypercall_lazy_nret(void **state)
{
	struct fx *f = *state;
	static const uint64_t args[7] = { 11, 22, 33, 44, 55, 66, 77 };
	static const uint64_t expect[4] = { 0, 0xb1, 22, 33 };
	const struct vcpu_vm_config cfg = { .flags = VCPU_VM_LAZY_HYPERCALL_ARGS };
	const struct vcpu_handlers h = { .hypercall = on_hc_two_results, .mmio = on_mmio };
	struct vcpu_mock_step s[] = { hvc(0xc6000011, 7, args, 4, expect), stop() };
	struct vcpu *cpu;
	struct rec r;

	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_GENIEZONE, NULL, &f->mock, &f->hv), 0);
	assert_int_equal(vcpu_vm_create(f->hv, &cfg, &f->vm), 0);
	cpu = add_cpu(f, 0);
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &h, &r), VCPU_STOP);
	assert_int_equal(r.n_hc, 1);
	assert_memory_equal(r.hc[0].args, args, sizeof(args));
	assert_int_equal(r.hc[0].nret, 1);
	assert_int_equal(r.hc[0].ret[1], 0);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* ======================================================================== */
/* System events, shutdown, exceptions, fatal exits                           */

static void test_system_events_all_types(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	static const uint32_t want[8] = { 0, VCPU_SYSTEM_EVENT_SHUTDOWN, VCPU_SYSTEM_EVENT_RESET,
					  VCPU_SYSTEM_EVENT_CRASH, VCPU_SYSTEM_EVENT_WAKEUP,
					  VCPU_SYSTEM_EVENT_SUSPEND, VCPU_SYSTEM_EVENT_CRASH,
					  VCPU_SYSTEM_EVENT_SUSPEND };
	static const uint64_t data[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	struct rec r;

	rec_init(&r);
	for (uint32_t type = 1; type <= 7; type++) {
		struct vcpu_mock_step s[] = { with_data(VCPU_MOCK_SYSTEM_EVENT, type, type == 7 ? 16 : type,
							data) };

		SCRIPT(f, 0, s);
		assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
		assert_int_equal(r.n_sev, type);
		assert_int_equal(r.sev[type - 1].type, want[type]);
		assert_int_equal(r.sev[type - 1].raw_type, type);
		assert_int_equal(r.sev[type - 1].ndata, type == 7 ? 16 : type);
		assert_memory_equal(r.sev[type - 1].data, data,
				    r.sev[type - 1].ndata * sizeof(uint64_t));
		expect_script(f, 0, 1);
	}
}

/* ndata is checked against 16; a type outside 1-7 is no event. */
static void test_system_event_malformed(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	static const uint32_t type[] = { 1, 0, 8 };
	static const uint32_t ndata[] = { 17, 0, 0 };
	struct rec r;

	rec_init(&r);
	for (unsigned i = 0; i < ARRAY_SIZE(type); i++) {
		struct vcpu_mock_step s[] = { raw(GZVM_EXIT_SYSTEM_EVENT) };

		raw_put(&s[0], 0, type[i], 4);
		raw_put(&s[0], 4, ndata[i], 4);
		SCRIPT(f, 0, s);
		assert_int_equal(vcpu_run(cpu, &H_ALL, &r), -EPROTO);
		expect_detail(vcpu_last_error(cpu));
	}
	assert_int_equal(r.n_sev, 0);
}

/* GZVM_EXIT_SHUTDOWN is the guest powering off: a SHUTDOWN system event. */
static void test_shutdown_exit(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step s[] = { step(VCPU_MOCK_GZ_SHUTDOWN) };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_sev, 1);
	assert_int_equal(r.sev[0].type, VCPU_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(vcpu_last_exit(cpu)->raw_reason, GZVM_EXIT_SHUTDOWN);
	expect_script(f, 0, 1);
}

/* A page fault the kernel could not back: the VMM adds memory and retries. */
static void test_page_fault_retry_after_adding_memory(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step fault = mem_op(VCPU_MOCK_MEMORY_FAULT, RAM_GPA + 0x10, 0x93);
	struct vcpu_mock_step s[] = {
		fault,
		mem_op(VCPU_MOCK_MEM_WRITE, RAM_GPA + 0x10, 0xfeedface),
		mem_op(VCPU_MOCK_MEM_CHECK, RAM_GPA + 0x10, 0xfeedface),
		stop(),
	};

	rec_init(&r);
	r.fix_vm = f->vm;
	r.fix_size = f->page;
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_fault, 1);
	assert_int_equal(r.fault[0].gpa, RAM_GPA + 0x10);
	assert_int_equal(r.fault[0].flags, 0x93);
	assert_int_equal(vm_info(f).nslots, 1);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* Left unfixed it stops vcpu_run() with -EFAULT, and faults again when resumed. */
static void test_page_fault_unfixed(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step s[] = { mem_op(VCPU_MOCK_MEMORY_FAULT, RAM_GPA, 0), stop() };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), -EFAULT);
	expect_detail(vcpu_last_error(cpu));
	assert_int_equal(vcpu_last_exit(cpu)->kind, VCPU_EXIT_MEMORY_FAULT);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), -EFAULT);
	assert_int_equal(r.n_fault, 2);
	assert_int_equal(r.fault[1].gpa, RAM_GPA);
	expect_script(f, 0, 1);
}

/* Other exceptions: VCPU_EXIT_EXCEPTION, fatal (-EIO) without .other. */
static void test_exception_other(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step e = with_value(VCPU_MOCK_GZ_EXCEPTION, GZVM_EXCEPTION_UNKNOWN);
	struct vcpu_mock_step s[2];

	e.count = 0x96000010;
	e.addr = 0x1000;
	s[0] = e;
	s[1] = e;
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_NO_OTHER, &r), -EIO);
	expect_detail(vcpu_last_error(cpu));
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_other, 1);
	assert_int_equal(r.other[0].kind, VCPU_EXIT_EXCEPTION);
	assert_int_equal(r.other[0].u.internal.code, GZVM_EXCEPTION_UNKNOWN);
	assert_int_equal(r.other[0].u.internal.data[0], 0x96000010);
	assert_int_equal(r.other[0].u.internal.data[1], 0x1000);
	expect_script(f, 0, 2);
}

static void test_debug_exit(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step s[] = { step(VCPU_MOCK_GZ_DEBUG) };

	for (unsigned i = 0; i < sizeof(s[0].raw); i++)
		s[0].raw[i] = (uint8_t)(i * 7);
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_other, 1);
	assert_int_equal(r.other[0].kind, VCPU_EXIT_DEBUG);
	assert_int_equal(r.other[0].raw_reason, GZVM_EXIT_DEBUG);
	assert_memory_equal(r.other[0].u.raw, s[0].raw, sizeof(s[0].raw));
	expect_script(f, 0, 1);
}

static void test_fail_entry_and_internal_error(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	static const uint64_t data[3] = { 0xa, 0xb, 0xc };
	struct rec r;
	struct vcpu_mock_step fe = with_value(VCPU_MOCK_FAIL_ENTRY, 0x1c);
	struct vcpu_mock_step s[3];

	fe.count = 3;
	s[0] = fe;
	s[1] = with_data(VCPU_MOCK_INTERNAL_ERROR, 2, 3, data);
	s[2] = with_data(VCPU_MOCK_INTERNAL_ERROR, 4, 0, data);
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.other[0].kind, VCPU_EXIT_FAIL_ENTRY);
	assert_int_equal(r.other[0].u.internal.code, 0x1c);
	assert_int_equal(r.other[0].u.internal.data[0], 3);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.other[1].kind, VCPU_EXIT_INTERNAL_ERROR);
	assert_int_equal(r.other[1].u.internal.code, 2);
	assert_int_equal(r.other[1].u.internal.ndata, 3);
	assert_memory_equal(r.other[1].u.internal.data, data, sizeof(data));
	assert_int_equal(vcpu_run(cpu, &H_NO_OTHER, &r), -EIO);
	expect_script(f, 0, 3);
}

static void test_internal_error_ndata_checked(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step s[] = { raw(GZVM_EXIT_INTERNAL_ERROR) };

	raw_put(&s[0], 0, 1, 4);
	raw_put(&s[0], 4, 17, 4);
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), -EPROTO);
	assert_int_equal(r.n_other, 0);
	expect_detail(vcpu_last_error(cpu));
}

/* IRQ, GZ, IDLE and IPI exits stay in the kernel: the VMM sees only the MMIO. */
static void test_kernel_internal_exits_stay_in_kernel(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step s[] = {
		with_value(VCPU_MOCK_GZ_KERNEL_EXIT, GZVM_EXIT_IRQ),
		with_value(VCPU_MOCK_GZ_KERNEL_EXIT, GZVM_EXIT_GZ),
		with_value(VCPU_MOCK_GZ_KERNEL_EXIT, GZVM_EXIT_IDLE),
		with_value(VCPU_MOCK_GZ_KERNEL_EXIT, GZVM_EXIT_IPI),
		mmio_write(MMIO_BASE, 4, 1),
		stop(),
	};

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 2);
	assert_int_equal(r.n_other, 0);
	assert_int_equal(stats(f, 0).entries, 2);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* A misbehaving driver returning one is reported to .other, never fatal. */
static void test_leaked_internal_exit_reported(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step s[] = { raw(GZVM_EXIT_IRQ), raw(GZVM_EXIT_GZ), stop() };

	rec_init(&r);
	r.other_rc = VCPU_CONTINUE;
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_NO_OTHER, &r), -ENOSYS);
	assert_int_equal(vcpu_last_exit(cpu)->kind, VCPU_EXIT_OTHER);
	assert_int_equal(vcpu_last_exit(cpu)->raw_reason, GZVM_EXIT_IRQ);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_other, 1);
	assert_int_equal(r.other[0].raw_reason, GZVM_EXIT_GZ);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* Unknown codes are errors with the raw value; UNKNOWN itself is fatal. */
static void test_unknown_exits(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step s[] = { raw(0x9292000c), raw(GZVM_EXIT_NONE_SENTINEL),
				      raw(GZVM_EXIT_UNKNOWN) };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), -EPROTO);
	assert_int_equal(vcpu_last_exit(cpu)->raw_reason, 0x9292000c);
	assert_non_null(strstr(vcpu_last_error(cpu), "0x9292000c"));
	/* A return without any exit code written is no exit either. */
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), -EPROTO);
	assert_int_equal(vcpu_run(cpu, &H_NO_OTHER, &r), -EIO);
	assert_int_equal(vcpu_last_exit(cpu)->kind, VCPU_EXIT_UNKNOWN);
	expect_script(f, 0, 3);
}

/* ======================================================================== */
/* GZVM_RUN entry rules and kicks                                             */

/* Kernel rule: padding1 must be zero, else EINVAL before anything runs. */
static void test_padding1_rule(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step s[] = { stop() };

	rec_init(&r);
	SCRIPT(f, 0, s);
	run_of(cpu)->padding1[1] = 1;
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), -EINVAL);
	expect_detail(vcpu_last_error(cpu));
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), 0);
	assert_int_equal(stats(f, 0).entries, 0);
	run_of(cpu)->padding1[1] = 0;
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	expect_script(f, 0, 1);
}

/* Kernel rule: a NULL run pointer faults. */
static void test_run_null_pointer(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);

	assert_int_equal(raw_ioctl(f, cpu->fd, GZVM_RUN, 0), -EFAULT);
}

/*
 * Kernel rule: immediate_exit == 1 at entry is EINTR.  A stale flag (set
 * with no kick pending) costs one refused entry, never a loop.
 */
static void test_stale_immediate_exit(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step s[] = { mmio_write(MMIO_BASE, 4, 1), stop() };

	rec_init(&r);
	SCRIPT(f, 0, s);
	run_of(cpu)->immediate_exit = 1;
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(stats(f, 0).eintr_at_entry, 1);
	assert_int_equal(run_of(cpu)->immediate_exit, 0);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_kick_before_run(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step s[] = { mmio_write(MMIO_BASE, 4, 1), stop() };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_kick(cpu), 0);
	assert_int_equal(vcpu_kick(cpu), 0);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), -EINTR);
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), 0);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 2);
	expect_script(f, 0, ARRAY_SIZE(s));
}

struct kicker {
	struct vcpu *cpu;
	atomic_int *armed;
	long delay_us;
	int mode; /* 0: vcpu_kick(); 1: the flags only (signal delivered late); 2: SIGUSR2 then kick */
	pthread_t target;
	int rc;
};

static void *kicker_main(void *p)
{
	struct kicker *k = p;

	for (int i = 0; i < 10000 && !atomic_load(k->armed); i++)
		sleep_us(1000);
	sleep_us(k->delay_us);
	if (k->mode == 1) {
		/* vcpu_kick() without its signal: what a kick looks like when the
		 * signal only lands after GZVM_RUN returned. */
		atomic_store(&k->cpu->kick_pending, 1);
		k->cpu->vm->hv->ops->set_immediate_exit(k->cpu, 1);
		k->rc = 0;
		return NULL;
	}
	if (k->mode == 2) {
		pthread_kill(k->target, SIGUSR2);
		sleep_us(k->delay_us);
	}
	k->rc = vcpu_kick(k->cpu);
	return NULL;
}

/* A kick from another thread while the guest spins: the signal ends GZVM_RUN. */
static void test_kick_from_thread(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
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

	rec_init(&r);
	SCRIPT(f, 0, s);
	k = (struct kicker){ .cpu = cpu, .armed = &r.armed, .delay_us = 30000, .rc = 1 };
	thr_start(&t, kicker_main, &k);
	rc = vcpu_run(cpu, &H_ALL, &r);
	thr_join(&t);
	assert_int_equal(rc, -EINTR);
	assert_int_equal(k.rc, 0);
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), 2);
	assert_true(stats(f, 0).eintr_after_exit >= 1);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 3);
	assert_int_equal(r.io[1].addr, MMIO_BASE);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/*
 * The kick lands inside GZVM_RUN, the guest then exits normally and the
 * kernel's copy-out overwrites the kicker's immediate_exit with 0.  The exit
 * is handled once and vcpu_run() still returns -EINTR before re-entering.
 */
static void test_kick_survives_copy_back(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct kicker k;
	struct thr t;
	struct vcpu_mock_step s[] = {
		mmio_write(ARM_ADDR, 4, 1),
		step(VCPU_MOCK_GZ_AWAIT_FLAG),
		mmio_write(MMIO_BASE, 4, 0x1),
		stop(),
	};
	int rc;

	rec_init(&r);
	SCRIPT(f, 0, s);
	k = (struct kicker){ .cpu = cpu, .armed = &r.armed, .delay_us = 5000, .mode = 1, .rc = 1 };
	thr_start(&t, kicker_main, &k);
	rc = vcpu_run(cpu, &H_ALL, &r);
	thr_join(&t);
	assert_int_equal(rc, -EINTR);
	assert_int_equal(r.n_mmio, 2); /* ARM, then the write that followed the kick */
	assert_int_equal(r.io[1].addr, MMIO_BASE);
	/* The kernel never saw the flag at an entry: the copy-out erased it. */
	assert_int_equal(stats(f, 0).eintr_at_entry, 0);
	assert_int_equal(run_of(cpu)->immediate_exit, 0);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/*
 * ERESTARTSYS after a real exit: the kernel copied an MMIO read out and then
 * saw a signal.  The read must still be handled and its value delivered.
 */
static void test_exit_with_signal_not_lost(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step rd = mmio_read(MMIO_BASE, 4, 0xabcd1234, 9);
	struct vcpu_mock_step s[3];
	static const uint64_t args[1] = { 5 };
	static const uint64_t expect[2] = { 0x77, 5 };

	rd.flags = VCPU_MOCK_GZ_SIGNALLED;
	s[0] = rd;
	s[1] = hvc(0xc6000001, 1, args, 2, expect);
	s[1].flags = VCPU_MOCK_GZ_SIGNALLED;
	s[2] = stop();
	rec_init(&r);
	r.reply[r.n_reply++] = 0xabcd1234;
	r.hc_set = 1;
	r.hc_ret[0] = 0x77;
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 2);
	assert_int_equal(r.n_hc, 1);
	assert_int_equal(stats(f, 0).eintr_after_exit, 2);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* ERESTARTSYS (512) seen by user space is an EINTR too. */
static void test_erestartsys_is_eintr(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step irq = raw(GZVM_EXIT_IRQ);
	struct vcpu_mock_step wr = raw(GZVM_EXIT_MMIO);
	struct vcpu_mock_step s[3];

	irq.err = GZVM_ERESTARTSYS;
	raw_put(&wr, 0, MMIO_BASE + 0x40, 8);
	raw_put(&wr, 16, 4, 8);
	raw_put(&wr, 28, 1, 1);
	wr.err = GZVM_ERESTARTSYS;
	s[0] = irq;
	s[1] = wr;
	s[2] = stop();
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 2);
	assert_int_equal(r.io[0].addr, MMIO_BASE + 0x40);
	assert_true(r.io[0].is_write);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void on_usr2(int sig)
{
	(void)sig;
}

/*
 * A signal whose handler has SA_RESTART makes the kernel restart GZVM_RUN
 * (the guest keeps spinning); the kick signal, without it, ends the call.
 */
static void test_sa_restart_signal_restarts(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct sigaction sa, old;
	struct rec r;
	struct kicker k;
	struct thr t;
	struct vcpu_mock_step s[] = { mmio_write(ARM_ADDR, 4, 1), step(VCPU_MOCK_SPIN), stop() };
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr2;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR2, &sa, &old), 0);
	rec_init(&r);
	SCRIPT(f, 0, s);
	k = (struct kicker){ .cpu = cpu, .armed = &r.armed, .delay_us = 40000, .mode = 2,
			     .target = pthread_self(), .rc = 1 };
	thr_start(&t, kicker_main, &k);
	rc = vcpu_run(cpu, &H_ALL, &r);
	thr_join(&t);
	sigaction(SIGUSR2, &old, NULL);
	assert_int_equal(rc, -EINTR);
	assert_int_equal(k.rc, 0);
	assert_true(stats(f, 0).restarts >= 1);
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), 2);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* vcpu_kick() from a signal handler (async-signal-safe) ends a spinning guest. */
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
	struct vcpu *cpu = open_one(f);
	struct sigaction sa, old;
	struct itimerval it = { .it_value = { .tv_sec = 0, .tv_usec = 30000 } };
	struct itimerval off = { .it_value = { 0, 0 } };
	struct rec r;
	struct vcpu_mock_step s[] = { step(VCPU_MOCK_SPIN), stop() };
	int rc;

	alarm_cpu = cpu;
	alarm_rc = 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	rec_init(&r);
	SCRIPT(f, 0, s);
	setitimer(ITIMER_REAL, &it, NULL);
	rc = vcpu_run(cpu, &H_ALL, &r);
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);
	assert_int_equal(rc, -EINTR);
	assert_int_equal(alarm_rc, 0);
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), 1);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* ======================================================================== */
/* Guest memory                                                               */

static void test_alloc_and_roundtrip(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	uint64_t *ram = NULL;
	struct vcpu_mock_step s[] = {
		mem_op(VCPU_MOCK_MEM_WRITE, RAM_GPA + 8, 0x1122334455667788ull),
		mem_op(VCPU_MOCK_MEM_CHECK, RAM_GPA + 16, 0xc0ffee),
		stop(),
	};

	assert_int_equal(vcpu_vm_alloc(f->vm, RAM_GPA, 4 * f->page, 0, (void **)&ram), 0);
	assert_non_null(ram);
	ram[2] = 0xc0ffee;
	assert_int_equal(vm_info(f).nslots, 1);
	assert_int_equal(vm_info(f).slot_flags[0], GZVM_USER_MEM_REGION_GUEST_MEM);
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(ram[1], 0x1122334455667788ull);
	assert_int_equal(r.n_mmio, 1);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* Kernel rule: memory_size must be the size of the VMA at userspace_addr. */
static void test_map_vma_rule(void **state)
{
	struct fx *f = *state;
	uint8_t *p;

	open_cfg(f, NULL);
	p = host_mapping(f, 4);
	/* Part of a mapping: EINVAL from the driver, with advice in the detail. */
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA, p, 2 * f->page, 0), -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "one mapping"));
	/* The whole mapping is accepted. */
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA, p, 4 * f->page, 0), 0);
	/* No read-only or dirty-logged slots, and no removal. */
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA + 0x100000, host_mapping(f, 1), f->page,
				     VCPU_MEM_READONLY), -EINVAL);
	assert_int_equal(vcpu_vm_unmap(f->vm, RAM_GPA, 4 * f->page), -EOPNOTSUPP);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vm_info(f).nslots, 1);
}

/* Kernel rules: slot >= 10 is ENXIO, no VMA is EFAULT, a range past the VMA EFAULT. */
static void test_memory_region_driver_rules(void **state)
{
	struct fx *f = *state;
	struct gzvm_userspace_memory_region m;
	uint8_t *p;

	open_cfg(f, NULL);
	p = host_mapping(f, 2);
	memset(&m, 0, sizeof(m));
	m.slot = GZVM_MAX_MEM_REGION;
	m.guest_phys_addr = RAM_GPA;
	m.memory_size = 2 * f->page;
	m.userspace_addr = (uint64_t)(uintptr_t)p;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_SET_USER_MEMORY_REGION, (unsigned long)&m),
			 -ENXIO);
	m.slot = 9;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_SET_USER_MEMORY_REGION, (unsigned long)&m), 0);
	m.userspace_addr = (uint64_t)(uintptr_t)p + f->page; /* inside, same size: past the end */
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_SET_USER_MEMORY_REGION, (unsigned long)&m),
			 -EFAULT);
	m.userspace_addr = 0x1000; /* nothing mapped at page 1 */
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_SET_USER_MEMORY_REGION, (unsigned long)&m),
			 -EFAULT);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_SET_USER_MEMORY_REGION, 0), -EFAULT);
}

/* Ten slots, then the library's -ENOSPC. */
static void test_ten_slots(void **state)
{
	struct fx *f = *state;
	void *host = NULL;

	open_cfg(f, NULL);
	for (unsigned i = 0; i < GZVM_MAX_MEM_REGION; i++)
		assert_int_equal(vcpu_vm_alloc(f->vm, RAM_GPA + i * 0x100000ull, f->page, 0, &host),
				 0);
	assert_int_equal(vcpu_vm_alloc(f->vm, RAM_GPA + 0x10000000ull, f->page, 0, &host),
			 -ENOSPC);
	assert_null(host);
	assert_int_equal(vm_info(f).nslots, GZVM_MAX_MEM_REGION);
}

/* ======================================================================== */
/* vGICv3, IRQ line, irqfd, ioeventfd, DTB                                    */

static void test_gic_and_irq_line(void **state)
{
	struct fx *f = *state;
	struct mock_gz_vm_info i;
	struct gzvm_irq_level l = { .irq = 5, .level = 1 };

	open_cfg(f, NULL);
	/* The hypervisor refuses an injection without a vGIC (kernel: EFAULT). */
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_IRQ_LINE, (unsigned long)&l), -EFAULT);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 40, 1), -ENXIO);
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GIC_DIST, GIC_REDIST, 256), -EINVAL);
	add_cpu(f, 0);
	add_cpu(f, 1);
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GIC_DIST + 0x100, GIC_REDIST, 256), -EINVAL);
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GIC_DIST, GIC_REDIST, 256), 0);
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GIC_DIST, GIC_REDIST, 256), -EEXIST);
	i = vm_info(f);
	assert_true(i.dist && i.redist);
	assert_int_equal(i.dist_addr, GIC_DIST);
	assert_int_equal(i.dist_size, VCPU_GIC_V3_DIST_SIZE);
	assert_int_equal(i.redist_addr, GIC_REDIST);
	assert_int_equal(i.redist_size, 2 * VCPU_GIC_V3_REDIST_SIZE_PER_CPU);
	/* INTID 40 travels as SPI index 8: the hypervisor adds 32. */
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 40, 1), 0);
	assert_int_equal(mock_gz_irq_level(f->mock, f->vm->fd, 40), 1);
	assert_int_equal(mock_gz_irq_level(f->mock, f->vm->fd, 8), 0);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 40, 0), 0);
	assert_int_equal(mock_gz_irq_level(f->mock, f->vm->fd, 40), 0);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 31, 1), -EINVAL);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 256, 1), -EINVAL);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 40, 2), -EINVAL);
}

static void test_gic_after_run_ebusy(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct rec r;
	struct vcpu_mock_step s[] = { stop() };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GIC_DIST, GIC_REDIST, 128), -EBUSY);
	expect_detail(vcpu_vm_last_error(f->vm));
}

static void test_irqfd(void **state)
{
	struct fx *f = *state;
	struct vcpu_irqfd a;
	int pipefd[2];
	int efd, rfd;

	open_cfg(f, NULL);
	add_cpu(f, 0);
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GIC_DIST, GIC_REDIST, 128), 0);
	efd = new_eventfd(f);
	rfd = new_eventfd(f);
	memset(&a, 0, sizeof(a));
	a.fd = efd;
	a.irq = 45;
	a.resample_fd = -1;
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), 0);
	assert_int_equal(vm_info(f).nirqfds, 1);
	assert_int_equal(vm_info(f).irqfd_gsi[0], 13); /* SPI index: INTID - 32 */
	/* Driver rule: one binding per eventfd (EBUSY). */
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), -EBUSY);
	a.flags = VCPU_IRQFD_DEASSIGN;
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), 0);
	assert_int_equal(vm_info(f).nirqfds, 0);
	/* Resampling (level-triggered) lines; resample_fd only counts with LEVEL. */
	a.flags = VCPU_IRQFD_LEVEL;
	a.resample_fd = -1;
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), -EINVAL);
	a.resample_fd = rfd;
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), 0);
	assert_int_equal(vm_info(f).irqfd_flags[0], GZVM_IRQFD_FLAG_RESAMPLE);
	/* Driver rule: a file that is no eventfd is EINVAL. */
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	a.fd = pipefd[0];
	a.resample_fd = -1;
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), -EINVAL);
	close(pipefd[0]);
	close(pipefd[1]);
	/* What GenieZone cannot express, and lines that are no SPI. */
	a.fd = efd;
	a.flags = VCPU_IRQFD_MSI;
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), -EINVAL);
	a.flags = 0;
	a.irq = 20;
	assert_int_equal(vcpu_vm_irqfd(f->vm, &a), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	/* The binding still held by the driver is dropped with the VM (teardown). */
}

/* A write an ioeventfd matches signals it inside the driver: no exit. */
static void test_ioeventfd(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);
	struct vcpu_ioeventfd io;
	struct rec r;
	uint64_t count = 0;
	int efd = new_eventfd(f);
	struct vcpu_mock_step s[] = {
		mmio_write(MMIO_BASE + 0x50, 4, 7),    /* matches: eventfd */
		mmio_write(MMIO_BASE + 0x50, 4, 8),    /* other data: an exit */
		mmio_write(MMIO_BASE + 0x50, 4, 7),
		stop(),
	};

	memset(&io, 0, sizeof(io));
	io.fd = efd;
	io.addr = MMIO_BASE + 0x50;
	io.len = 4;
	io.flags = VCPU_IOEVENTFD_DATAMATCH;
	io.datamatch = 7;
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &io), 0);
	/* Driver rules: the same binding twice is EEXIST, deassigning nothing ENOENT. */
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &io), -EEXIST);
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 2);
	assert_int_equal(r.io[0].data[0], 8);
	assert_int_equal(read(efd, &count, sizeof(count)), (ssize_t)sizeof(count));
	assert_int_equal(count, 2);
	expect_script(f, 0, ARRAY_SIZE(s));
	io.flags |= VCPU_IOEVENTFD_DEASSIGN;
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &io), 0);
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &io), -ENOENT);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vm_info(f).nioeventfds, 0);
	io.flags = VCPU_IOEVENTFD_PIO;
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &io), -EINVAL);
}

static void test_dtb_and_vm_calls(void **state)
{
	struct fx *f = *state;
	struct mock_gz_vm_info i;

	open_cfg(f, NULL);
	assert_int_equal(vcpu_vm_set_dtb(f->vm, RAM_GPA + 0x100000, 0x2000), 0);
	i = vm_info(f);
	assert_true(i.dtb);
	assert_int_equal(i.dtb_addr, RAM_GPA + 0x100000);
	assert_int_equal(i.dtb_size, 0x2000);
	assert_int_equal(vcpu_vm_set_dtb(f->vm, RAM_GPA, 0), -EINVAL);
	/* No start call: the first GZVM_RUN starts each vCPU. */
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_vm_pause(f->vm), -EOPNOTSUPP);
	assert_int_equal(vcpu_vm_reset(f->vm), -EOPNOTSUPP);
	assert_int_equal(vcpu_vm_signal_msi(f->vm, 0, 0), -EOPNOTSUPP);
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, 0xc6000000u, 16), -EOPNOTSUPP);
}

/* Kernel rule: numbers a fd does not handle are ENOTTY; struct pointers of NULL fault. */
static void test_unknown_ioctls(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f);

	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_SET_MEMORY_REGION, 0), -ENOTTY);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_CREATE_IRQCHIP, 0), -ENOTTY);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_RUN, 0), -ENOTTY);
	assert_int_equal(raw_ioctl(f, f->hv->fd, GZVM_CREATE_VCPU, 0), -ENOTTY);
	assert_int_equal(raw_ioctl(f, cpu->fd, GZVM_CREATE_VCPU, 1), -ENOTTY);
	assert_int_equal(raw_ioctl(f, cpu->fd, 0xae80 /* KVM_RUN */, 0), -ENOTTY);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_IRQFD, 0), -EFAULT);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_SET_DTB_CONFIG, 0), -EFAULT);
}

/*
 * Driver rules behind the library's own checks: irqfd/ioeventfd flags,
 * lengths and eventfds (EINVAL, EBADF), device attributes over a page.
 */
static void test_device_ioctl_rules(void **state)
{
	struct fx *f = *state;
	struct gzvm_irqfd irq;
	struct gzvm_ioeventfd io;
	struct gzvm_create_device d;
	int efd;

	open_cfg(f, NULL);
	efd = new_eventfd(f);
	memset(&irq, 0, sizeof(irq));
	irq.fd = (uint32_t)efd;
	irq.flags = 0x4;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_IRQFD, (unsigned long)&irq), -EINVAL);
	irq.flags = 0;
	irq.fd = 999;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_IRQFD, (unsigned long)&irq), -EBADF);
	memset(&io, 0, sizeof(io));
	io.fd = efd;
	io.addr = MMIO_BASE;
	io.len = 3;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_IOEVENTFD, (unsigned long)&io), -EINVAL);
	io.len = 0;
	io.flags = GZVM_IOEVENTFD_FLAG_DATAMATCH;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_IOEVENTFD, (unsigned long)&io), -EINVAL);
	io.len = 4;
	io.flags = GZVM_IOEVENTFD_FLAG_PIO;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_IOEVENTFD, (unsigned long)&io), -EINVAL);
	io.flags = 0x8;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_IOEVENTFD, (unsigned long)&io), -EINVAL);
	io.flags = 0;
	io.addr = UINT64_MAX - 1;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_IOEVENTFD, (unsigned long)&io), -EINVAL);
	memset(&d, 0, sizeof(d));
	d.dev_type = GZVM_DEV_TYPE_ARM_VGIC_V3_DIST;
	d.attr_addr = (uint64_t)(uintptr_t)&d;
	d.attr_size = f->page + 1;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GZVM_CREATE_DEVICE, (unsigned long)&d), -EINVAL);
	assert_false(vm_info(f).dist);
}

/* ======================================================================== */
/* Two vCPUs, each with its own buffer, in parallel                           */

struct runner {
	struct vcpu *cpu;
	struct rec r;
	int rc;
};

static void *runner_main(void *p)
{
	struct runner *x = p;

	x->rc = vcpu_run(x->cpu, &H_ALL, &x->r);
	return NULL;
}

static void test_two_vcpus_in_parallel(void **state)
{
	struct fx *f = *state;
	struct runner a, b;
	struct thr ta, tb;
	struct vcpu_mock_step s0[] = { mmio_read(MMIO_BASE, 4, 0xa0, 1), mmio_write(MMIO_BASE, 4, 1),
				       stop() };
	struct vcpu_mock_step s1[] = { mmio_read(MMIO_BASE + 4, 4, 0xb1, 1),
				       mmio_write(MMIO_BASE + 4, 4, 2), stop() };

	open_cfg(f, NULL);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.cpu = add_cpu(f, 0);
	b.cpu = add_cpu(f, 1);
	assert_true(a.cpu->run != b.cpu->run);
	rec_init(&a.r);
	rec_init(&b.r);
	a.r.reply[a.r.n_reply++] = 0xa0;
	b.r.reply[b.r.n_reply++] = 0xb1;
	SCRIPT(f, 0, s0);
	SCRIPT(f, 1, s1);
	thr_start(&ta, runner_main, &a);
	thr_start(&tb, runner_main, &b);
	thr_join(&ta);
	thr_join(&tb);
	assert_int_equal(a.rc, VCPU_STOP);
	assert_int_equal(b.rc, VCPU_STOP);
	assert_int_equal(a.r.io[1].vcpu_id, 0);
	assert_int_equal(b.r.io[1].vcpu_id, 1);
	expect_script(f, 0, ARRAY_SIZE(s0));
	expect_script(f, 1, ARRAY_SIZE(s1));
}

/* ======================================================================== */

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* Let glibc and the loader settle their one-time fds and mappings first. */
static void warm_up(void)
{
	struct vcpu_mock *m = NULL;
	struct vcpu_hv *hv = NULL;
	struct vcpu_vm *vm = NULL;
	struct vcpu *cpu = NULL;

	if (vcpu_mock_open(VCPU_BACKEND_GENIEZONE, NULL, &m, &hv) == 0) {
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
		/* handles, capabilities, VMs */
		T(test_open_and_identity),
		T(test_caps),
		T(test_check_extension_pointer_rules),
		T(test_vm_config),
		/* vCPUs and registers */
		T(test_vcpu_id_range),
		T(test_vcpu_duplicate),
		T(test_run_buffer_not_mapped),
		T(test_set_reg_reaches_guest),
		T(test_get_reg_honest_error),
		T(test_set_one_reg_rules),
		/* MMIO */
		T(test_mmio_writes),
		T(test_mmio_reads_written_back),
		T(test_mock_catches_wrong_read),
		T(test_mmio_unhandled_read_zero),
		T(test_malformed_mmio_size),
		/* hypercalls */
		T(test_hypercall_args_and_results),
		T(test_hypercall_default_results),
		T(test_hypercall_lazy_nret),
		/* other exits */
		T(test_system_events_all_types),
		T(test_system_event_malformed),
		T(test_shutdown_exit),
		T(test_page_fault_retry_after_adding_memory),
		T(test_page_fault_unfixed),
		T(test_exception_other),
		T(test_debug_exit),
		T(test_fail_entry_and_internal_error),
		T(test_internal_error_ndata_checked),
		T(test_kernel_internal_exits_stay_in_kernel),
		T(test_leaked_internal_exit_reported),
		T(test_unknown_exits),
		/* GZVM_RUN entry rules and kicks */
		T(test_padding1_rule),
		T(test_run_null_pointer),
		T(test_stale_immediate_exit),
		T(test_kick_before_run),
		T(test_kick_from_thread),
		T(test_kick_survives_copy_back),
		T(test_exit_with_signal_not_lost),
		T(test_erestartsys_is_eintr),
		T(test_sa_restart_signal_restarts),
		T(test_kick_from_signal_handler),
		/* memory */
		T(test_alloc_and_roundtrip),
		T(test_map_vma_rule),
		T(test_memory_region_driver_rules),
		T(test_ten_slots),
		/* interrupts, devices, VM calls */
		T(test_gic_and_irq_line),
		T(test_gic_after_run_ebusy),
		T(test_irqfd),
		T(test_ioeventfd),
		T(test_dtb_and_vm_calls),
		T(test_unknown_ioctls),
		T(test_device_ioctl_rules),
		/* threads */
		T(test_two_vcpus_in_parallel),
	};

	mallopt(M_ARENA_MAX, 1);
	warm_up();
	return cmocka_run_group_tests_name("geniezone", tests, NULL, NULL);
}
