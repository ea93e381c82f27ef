// SPDX-License-Identifier: MIT
/*
 * The `mock` suite, continued: kicks, guest memory, the public API's errors,
 * the arm64 vGICv3, vCPUs in parallel, the portable VM calls on KVM and the
 * x86 in-kernel irqchip, against the mock KVM driver.  The fixture (leak
 * accounting around every test) is mock_fixture.h.
 */
#include "mock_fixture.h"

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

/*
 * vcpu_vm_stop_all(): two vCPUs spinning in their threads both leave with
 * -ECANCELED; a later vcpu_run() returns it without a driver call; after
 * vcpu_vm_resume_all() both finish their scripts (no stale kick left).
 */
static void test_vm_stop_all(void **state)
{
	struct fx *f = *state;
	static struct rec r[2];
	struct vcpu_mock_step s[2][4];
	struct runner ru[2];
	struct thr t[2];
	uint64_t calls;

	open_arch(f, ARM64);
	for (uint32_t c = 0; c < 2; c++) {
		add_cpu(f, c);
		rec_init(&r[c]);
		s[c][0] = mmio_write(ARM_ADDR, 4, c);
		s[c][1] = step(VCPU_MOCK_SPIN);
		s[c][2] = mmio_write(MMIO_BASE + 8 * c, 4, 7);
		s[c][3] = stop();
		script(f, c, s[c], ARRAY_SIZE(s[c]));
		ru[c] = (struct runner){ .cpu = f->cpu[c], .r = &r[c], .rc = 1000 };
	}
	assert_int_equal(vcpu_vm_stop_all(NULL), -EINVAL);
	assert_int_equal(vcpu_vm_resume_all(NULL), -EINVAL);
	thr_start(&t[0], runner_main, &ru[0]);
	thr_start(&t[1], runner_main, &ru[1]);
	for (int i = 0; i < 5000 && !(atomic_load(&r[0].armed) && atomic_load(&r[1].armed)); i++)
		sleep_us(1000);
	sleep_us(20000); /* both in the guest's spin */
	assert_int_equal(vcpu_vm_stop_all(f->vm), 0);
	thr_join(&t[0]);
	thr_join(&t[1]);
	for (uint32_t c = 0; c < 2; c++) {
		assert_int_equal(ru[c].rc, -ECANCELED);
		assert_int_equal(vcpu_mock_steps_done(f->mock, c), 2);
	}
	calls = vcpu_mock_calls(f->mock);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r[0]), -ECANCELED);
	assert_int_equal(vcpu_mock_calls(f->mock), calls);
	assert_int_equal(vcpu_vm_resume_all(f->vm), 0);
	for (uint32_t c = 0; c < 2; c++) {
		assert_int_equal(vcpu_run(f->cpu[c], &H_ALL, &r[c]), VCPU_STOP);
		expect_script(f, c, ARRAY_SIZE(s[c]));
	}
}

/* A vCPU stopped while outside vcpu_run() keeps no kick after the resume. */
static void test_vm_stop_all_idle(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct vcpu_mock_step s[] = { stop() };
	struct rec r;

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_vm_stop_all(f->vm), 0);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), -ECANCELED);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), -ECANCELED);
	assert_int_equal(vcpu_vm_resume_all(f->vm), 0);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static int on_mmio_eintr(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	(void)ctx;
	(void)cpu;
	(void)io;
	return -EINTR;
}

/* -EINTR from vcpu_run() means a kick and nothing else: a handler's is refused. */
static void test_handler_eintr_is_not_a_kick(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct vcpu_mock_step s[] = { mmio_write(MMIO_BASE, 4, 1) };
	const struct vcpu_handlers h = { .mmio = on_mmio_eintr };

	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &h, NULL), -EINVAL);
	assert_non_null(strstr(vcpu_last_error(cpu), "keeps for kicks"));
	expect_script(f, 0, ARRAY_SIZE(s));
}

/*
 * The dirty-page log: exactly the pages the guest wrote, once each; the
 * next call starts over; what the VMM wrote through its own mapping is not
 * in it; a region mapped without logging, a wrong start or a short bitmap
 * are refused before the driver is asked.
 */
static void test_dirty_log(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	const size_t pg = f->page;
	uint8_t *p = guest_ram(f, 70), *plain = guest_ram(f, 1);
	struct vcpu_mock_step s[] = {
		mem_op(VCPU_MOCK_MEM_WRITE, RAM_GPA + 1 * pg, 1),
		mem_op(VCPU_MOCK_MEM_WRITE, RAM_GPA + 5 * pg + 8, 2),
		mem_op(VCPU_MOCK_MEM_WRITE, RAM_GPA + 5 * pg + 16, 3),
		mem_op(VCPU_MOCK_MEM_WRITE, RAM_GPA + 69 * pg, 4), /* word 1, bit 5 */
		stop(),
	};
	uint64_t bm[2] = { ~0ull, ~0ull }, v = 0;
	struct rec r;

	assert_int_equal(vcpu_vm_check(f->vm, VCPU_CAP_DIRTY_LOG, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA, p, 70 * pg, VCPU_MEM_LOG_DIRTY), 0);
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA + 0x100000, plain, pg, 0), 0);
	/* Nothing written yet. */
	assert_int_equal(vcpu_vm_get_dirty_log(f->vm, RAM_GPA, bm, 2), 0);
	assert_int_equal(bm[0], 0);
	assert_int_equal(bm[1], 0);
	p[3 * pg] = 0x55; /* the VMM's own write: not the guest's */
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_ALL, &r), VCPU_STOP);
	assert_int_equal(vcpu_vm_get_dirty_log(f->vm, RAM_GPA, bm, 2), 0);
	assert_int_equal(bm[0], (1ull << 1) | (1ull << 5));
	assert_int_equal(bm[1], 1ull << 5);
	assert_int_equal(p[69 * pg], 4);
	assert_int_equal(vcpu_vm_get_dirty_log(f->vm, RAM_GPA, bm, 2), 0);
	assert_int_equal(bm[0] | bm[1], 0);
	/* Refused before any driver call. */
	assert_int_equal(vcpu_vm_get_dirty_log(f->vm, RAM_GPA, bm, 1), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_vm_get_dirty_log(f->vm, RAM_GPA + pg, bm, 2), -EINVAL);
	assert_int_equal(vcpu_vm_get_dirty_log(f->vm, RAM_GPA + 0x100000, bm, 2), -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "VCPU_MEM_LOG_DIRTY"));
	assert_int_equal(vcpu_vm_get_dirty_log(f->vm, RAM_GPA, NULL, 2), -EINVAL);
	assert_int_equal(vcpu_vm_get_dirty_log(NULL, RAM_GPA, bm, 2), -EINVAL);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* The mock holds the kernel's rules: ENOENT for a slot that does not log. */
static void test_rule_get_dirty_log(void **state)
{
	struct fx *f = *state;
	struct { uint32_t slot, pad; uint64_t bitmap; } log = { 0, 0, 0 };
	uint64_t bm[1];
	const unsigned long get_dirty_log = 0x4010ae42ul; /* KVM_GET_DIRTY_LOG */

	open_arch(f, ARM64);
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA, guest_ram(f, 1), f->page, 0), 0);
	log.bitmap = (uint64_t)(uintptr_t)bm;
	assert_int_equal(sys_ioctl(f->hv, f->vm->fd, get_dirty_log, (unsigned long)(uintptr_t)&log), -ENOENT); /* slot 0 does not log */
	log.slot = 1 << 16;
	assert_int_equal(sys_ioctl(f->hv, f->vm->fd, get_dirty_log, (unsigned long)(uintptr_t)&log), -EINVAL);
}

/* Backends without a dirty log say so, and refuse with a detail. */
static void test_dirty_log_unsupported(void **state)
{
	struct vcpu_mock *m = NULL;
	struct vcpu_hv *hv = NULL;
	struct vcpu_vm *vm = NULL;
	uint64_t v = 9, bm[1];

	(void)state;
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_GENIEZONE, NULL, &m, &hv), 0);
	assert_int_equal(vcpu_vm_create(hv, NULL, &vm), 0);
	assert_int_equal(vcpu_vm_check(vm, VCPU_CAP_DIRTY_LOG, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(vcpu_vm_get_dirty_log(vm, 0x40000000, bm, 1), -EOPNOTSUPP);
	expect_detail(vcpu_vm_last_error(vm));
	assert_int_equal(vcpu_vm_destroy(&vm), 0);
	assert_int_equal(vcpu_hv_close(hv), 0);
	assert_int_equal(vcpu_mock_destroy(&m), 0);
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

/* doc/abi/kvm.md section 2. */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_memory_fault_handler),
		T(test_kick_from_thread),
		T(test_kick_from_thread_no_immediate_exit),
		T(test_stale_immediate_exit_flag),
		T(test_kick_before_run),
		T(test_kick_before_run_no_immediate_exit),
		T(test_two_kicks_merge),
		T(test_kick_from_handler),
		T(test_kick_from_signal_handler),
		T(test_map_invalid),
		T(test_map_overlap_and_unmap_enoent),
		T(test_mem_roundtrip_arm64),
		T(test_mem_roundtrip_x86),
		T(test_unmap_then_mmio),
		T(test_readonly_write_exits),
		T(test_memslots_enospc),
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
		T(test_gic_create_and_irq),
		T(test_gic_irq_without_gic),
		T(test_gic_bad_args),
		T(test_gic_on_x86),
		T(test_two_vcpus_in_parallel),
		T(test_vm_stop_all),
		T(test_vm_stop_all_idle),
		T(test_handler_eintr_is_not_a_kick),
		T(test_dirty_log),
		T(test_rule_get_dirty_log),
		T(test_dirty_log_unsupported),
		T(test_vm_alloc),
		T(test_vm_alloc_private_aligned),
		T(test_vm_lifecycle_calls_on_kvm),
		T(test_irqfd_kvm),
		T(test_irqfd_x86_needs_irqchip),
		T(test_signal_msi_arm64_without_its),
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
	return cmocka_run_group_tests_name("mock-vm", tests, NULL, NULL);
}
