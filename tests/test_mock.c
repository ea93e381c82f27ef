// SPDX-License-Identifier: MIT
/*
 * The `mock` suite: libvcpu against the mock KVM driver (include/vcpu/mock.h),
 * for both modelled architectures on any host: handles, capabilities,
 * registers and every kind of exit (test_mock_vm.c: kicks, memory and the
 * VM calls).  The fixture is mock_fixture.h.
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
#include "mock_fixture.h"

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
	/* The vCPU lives as long as its VM (doc/abi/kvm.md §1): only the library's mapping went. */
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

/*
 * The 1.1 capabilities a portable VMM asks instead of branching on the
 * backend, on every backend's mock, and what each answer promises: a
 * function it says does not work fails with -EOPNOTSUPP (or -EINVAL for a
 * flag), one it says works does.
 */
static void test_cap_portable_facts(void **state)
{
	static const struct {
		const char *name;
		enum vcpu_backend backend;
		uint32_t arch, flags;
		uint64_t dtb, set, get, hc, poweroff, responses, events;
	} b[] = {
		{ "kvm arm64", VCPU_BACKEND_KVM, ARM64, 0, 0, 1, 1, VCPU_HYPERCALLS_ON_REQUEST, 1, 1,
		  VCPU_EVENTS_PSCI },
		{ "kvm x86", VCPU_BACKEND_KVM, X86, 0, 0, 1, 1, VCPU_HYPERCALLS_ON_REQUEST, 0, 1, 0 },
		{ "gunyah v17", VCPU_BACKEND_GUNYAH, ARM64, 0, 1, 1, 0, VCPU_HYPERCALLS_NONE, 0, 7,
		  VCPU_EVENTS_PSCI },
		{ "gunyah v8", VCPU_BACKEND_GUNYAH, ARM64, VCPU_MOCK_GUNYAH_V8, 1, 0, 0,
		  VCPU_HYPERCALLS_NONE, 0, 1, VCPU_EVENTS_PSCI },
		{ "geniezone", VCPU_BACKEND_GENIEZONE, ARM64, 0, 1, 1, 0, VCPU_HYPERCALLS_ALL, 0, 1,
		  VCPU_EVENTS_PSCI },
		{ "acrn", VCPU_BACKEND_ACRN, X86, 0, 0, 1, 0, VCPU_HYPERCALLS_NONE, 0, 3,
		  VCPU_EVENTS_X86_CF9 | VCPU_EVENTS_X86_PM1A },
	};
	(void)state;
	for (unsigned i = 0; i < ARRAY_SIZE(b); i++) {
		const struct vcpu_mock_config cfg = { .arch = b[i].arch, .flags = b[i].flags };
		struct vcpu_mock *m = NULL;
		struct vcpu_hv *hv = NULL;
		struct vcpu_vm *vm = NULL;
		struct vcpu *cpu = NULL;
		uint64_t v[7], hv_dtb = 9, reg = 0;
		static const enum vcpu_cap caps[7] = {
			VCPU_CAP_DTB_REQUIRED, VCPU_CAP_SET_REGS, VCPU_CAP_GET_REGS,
			VCPU_CAP_HYPERCALLS, VCPU_CAP_CREATE_POWER_OFF, VCPU_CAP_IO_RESPONSES,
			VCPU_CAP_SYSTEM_EVENTS,
		};
		const uint64_t want[7] = { b[i].dtb, b[i].set, b[i].get, b[i].hc, b[i].poweroff,
					   b[i].responses, b[i].events };
		const uint64_t reg_id = b[i].arch == ARM64 ? VCPU_REG_ARM64_PC : VCPU_REG_X86_RIP;
		int r;

		print_message("%s\n", b[i].name);
		assert_int_equal(vcpu_mock_open(b[i].backend, &cfg, &m, &hv), 0);
		assert_int_equal(vcpu_vm_create(hv, NULL, &vm), 0);
		for (unsigned c = 0; c < 7; c++) {
			assert_int_equal(vcpu_vm_check(vm, caps[c], &v[c]), 0);
			assert_int_equal(v[c], want[c]);
		}
		/* The same on the handle, but KVM arm64's hypercalls (a VM attribute). */
		assert_int_equal(vcpu_hv_check(hv, VCPU_CAP_DTB_REQUIRED, &hv_dtb), 0);
		assert_int_equal(hv_dtb, b[i].dtb);
		r = vcpu_hv_check(hv, VCPU_CAP_HYPERCALLS, &hv_dtb);
		if (b[i].backend == VCPU_BACKEND_KVM && b[i].arch == ARM64)
			assert_int_equal(r, -EOPNOTSUPP);
		else
			assert_int_equal(r, 0);
		/* What the answers promise. */
		r = vcpu_vm_set_dtb(vm, 0x40000000, 0x10000);
		if (!b[i].dtb)
			assert_int_equal(r, -EOPNOTSUPP);
		r = vcpu_vm_forward_hypercalls(vm, 0xc6000000u, 16);
		if (b[i].hc == VCPU_HYPERCALLS_NONE)
			assert_true(r == -EOPNOTSUPP);
		if (b[i].hc == VCPU_HYPERCALLS_ON_REQUEST && b[i].arch == ARM64)
			assert_int_equal(r, 0);
		r = vcpu_create(vm, 0, VCPU_CREATE_POWER_OFF, &cpu);
		if (b[i].poweroff) {
			assert_int_equal(r, 0);
		} else {
			assert_true(r == -EINVAL || r == -EOPNOTSUPP);
			assert_int_equal(vcpu_create(vm, 0, 0, &cpu), 0);
		}
		r = vcpu_set_reg(cpu, reg_id, 0x1000);
		assert_int_equal(r == 0, b[i].set != 0);
		r = vcpu_get_reg(cpu, reg_id, &reg);
		assert_int_equal(r == 0, b[i].get != 0);
		assert_int_equal(vcpu_destroy(&cpu), 0);
		assert_int_equal(vcpu_vm_destroy(&vm), 0);
		assert_int_equal(vcpu_hv_close(hv), 0);
		assert_int_equal(vcpu_mock_destroy(&m), 0);
	}
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

/* ------------------------------------------------------------------------ */
/* VCPU_VM_LAZY_HYPERCALL_ARGS, vcpu_hypercall_arg(), nret, and the per-exit */
/* reuse of arguments already read (arm64 KVM: one ONE_REG call each).      */

#define KVM_GET_ONE_REG_REQ 0x4010aeabul /* _IOW(KVMIO, 0xab, struct kvm_one_reg) */
#define KVM_SET_ONE_REG_REQ 0x4010aeacul /* _IOW(KVMIO, 0xac, struct kvm_one_reg) */

/* ioctls @req made since call number @since. */
static unsigned calls_since(struct fx *f, uint64_t since, unsigned long req)
{
	struct vcpu_mock_call_info ci;
	unsigned n = 0;

	for (uint64_t i = since + 1; i <= vcpu_mock_calls(f->mock); i++)
		if (vcpu_mock_call_info(f->mock, i, &ci) == 0 && ci.call == VCPU_MOCK_CALL_IOCTL &&
		    ci.req == req)
			n++;
	return n;
}

/* An arm64 KVM VM with @flags and vCPU 0, forwarding the vendor hypervisor calls. */
static struct vcpu *open_hc_vm(struct fx *f, uint32_t flags)
{
	const struct vcpu_mock_config cfg = { .arch = ARM64 };
	const struct vcpu_vm_config vcfg = { .flags = flags };

	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_KVM, &cfg, &f->mock, &f->hv), 0);
	assert_int_equal(vcpu_vm_create(f->hv, &vcfg, &f->vm), 0);
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, SMCCC_VENDOR_HYP_BASE, 0x100), 0);
	return add_cpu(f, 0);
}

struct lazy_rec {
	struct fx *f;
	uint64_t t0;            /* the call count when the handler started */
	unsigned gets, sets;    /* ONE_REG calls the handler caused */
	uint64_t arg1, arg1_again, x2, x1_after_set;
	uint64_t seen_args[8], seen_ret[4];
	uint32_t seen_nret;
	int r_arg, r_bad_index, r_after_set;
	uint32_t nret;          /* what the handler sets */
	uint64_t ret[4];
};

static int on_lazy_hc(void *ctx, struct vcpu *cpu, struct vcpu_hypercall *hc)
{
	struct lazy_rec *l = ctx;
	uint64_t t0 = vcpu_mock_calls(l->f->mock);

	memcpy(l->seen_args, hc->args, sizeof(l->seen_args));
	memcpy(l->seen_ret, hc->ret, sizeof(l->seen_ret));
	l->seen_nret = hc->nret;
	/* Argument 1 (x2) three ways: one ONE_REG call in all. */
	l->r_arg = vcpu_hypercall_arg(cpu, 1, &l->arg1);
	vcpu_hypercall_arg(cpu, 1, &l->arg1_again);
	vcpu_get_reg(cpu, VCPU_REG_ARM64_X(2), &l->x2);
	l->r_bad_index = vcpu_hypercall_arg(cpu, hc->nargs, &l->arg1_again);
	/* A register the handler writes is read back as written, not as the argument. */
	vcpu_set_reg(cpu, VCPU_REG_ARM64_X(6), 0x600d);
	vcpu_get_reg(cpu, VCPU_REG_ARM64_X(6), &l->x1_after_set);
	l->r_after_set = vcpu_hypercall_arg(cpu, 5, &l->arg1_again); /* x6: written first */
	l->gets = calls_since(l->f, t0, KVM_GET_ONE_REG_REQ);
	l->sets = calls_since(l->f, t0, KVM_SET_ONE_REG_REQ);
	l->t0 = vcpu_mock_calls(l->f->mock);
	memcpy(hc->ret, l->ret, sizeof(l->ret));
	if (l->nret)
		hc->nret = l->nret;
	return VCPU_STOP;
}

/*
 * Lazy: nothing read before the handler, each argument read once however
 * it is asked for, x0 alone written back unless nret says more, x1..x3
 * past nret keep the guest's values.
 */
static void test_lazy_hypercall_args(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_hc_vm(f, VCPU_VM_LAZY_HYPERCALL_ARGS);
	const uint32_t fn = SMCCC_VENDOR_HYP_BASE + 0x30;
	const uint64_t expect[] = { 0x5a };
	struct vcpu_mock_step s[] = { hypercall(fn, 0, 7, hc_args, 1, expect) };
	struct lazy_rec l = { .f = f, .ret = { 0x5a, 0xdead, 0xdead, 0xdead } };
	const struct vcpu_handlers h = { .hypercall = on_lazy_hc };
	uint64_t t0, v;

	SCRIPT(f, 0, s);
	t0 = vcpu_mock_calls(f->mock);
	assert_int_equal(vcpu_run(cpu, &h, &l), VCPU_STOP);
	/* Before the handler: no argument read, results at their lazy defaults. */
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(l.seen_args[i], 0);
	assert_int_equal(l.seen_ret[0], VCPU_SMCCC_RET_NOT_SUPPORTED);
	for (unsigned i = 1; i < 4; i++)
		assert_int_equal(l.seen_ret[i], 0);
	assert_int_equal(l.seen_nret, 1);
	assert_int_equal(l.r_arg, 0);
	assert_int_equal(l.arg1, hc_args[1]);
	assert_int_equal(l.arg1_again, hc_args[1]);
	assert_int_equal(l.x2, hc_args[1]);
	assert_int_equal(l.r_bad_index, -EINVAL);
	assert_int_equal(l.x1_after_set, 0x600d);
	assert_int_equal(l.r_after_set, -ESTALE);
	/* x2 once, x6 once (after the handler wrote it); the set itself. */
	assert_int_equal(l.gets, 2);
	assert_int_equal(l.sets, 1);
	/* Between KVM_RUN and the handler: no ONE_REG at all. */
	assert_int_equal(calls_since(f, t0, KVM_GET_ONE_REG_REQ), 2);
	/* After it: x0 only (nret 1), then the finishing KVM_RUN. */
	assert_int_equal(calls_since(f, l.t0, KVM_SET_ONE_REG_REQ), 1);
	assert_int_equal(reg_of(cpu, VCPU_REG_ARM64_X(0)), 0x5a);
	for (unsigned i = 1; i < 4; i++)
		assert_int_equal(reg_of(cpu, VCPU_REG_ARM64_X(i)), hc_args[i - 1]);
	/* Read before the results went back: still known; not read: gone. */
	assert_int_equal(vcpu_hypercall_arg(cpu, 1, &v), 0);
	assert_int_equal(v, hc_args[1]);
	assert_int_equal(vcpu_hypercall_arg(cpu, 0, &v), -ESTALE);
	expect_detail(vcpu_last_error(cpu));
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* nret 3: x0..x2 written, x3 keeps the guest's value. */
static void test_lazy_hypercall_nret(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_hc_vm(f, VCPU_VM_LAZY_HYPERCALL_ARGS);
	const uint32_t fn = SMCCC_VENDOR_HYP_BASE + 0x31;
	const uint64_t expect[] = { 0, 0xb1, 0xb2, hc_args[2] };
	struct vcpu_mock_step s[] = { hypercall(fn, 0, 7, hc_args, 4, expect) };
	struct lazy_rec l = { .f = f, .nret = 3, .ret = { 0, 0xb1, 0xb2, 0xdead } };
	const struct vcpu_handlers h = { .hypercall = on_lazy_hc };

	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &h, &l), VCPU_STOP);
	assert_int_equal(calls_since(f, l.t0, KVM_SET_ONE_REG_REQ), 3);
	assert_int_equal(reg_of(cpu, VCPU_REG_ARM64_X(1)), 0xb1);
	assert_int_equal(reg_of(cpu, VCPU_REG_ARM64_X(2)), 0xb2);
	assert_int_equal(reg_of(cpu, VCPU_REG_ARM64_X(3)), hc_args[2]);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static int on_nret5(void *ctx, struct vcpu *cpu, struct vcpu_hypercall *hc)
{
	(void)ctx;
	(void)cpu;
	for (unsigned i = 0; i < 4; i++)
		hc->ret[i] = 0xc0 + i;
	hc->nret = 5;
	return VCPU_CONTINUE;
}

/* More than four results: the caller's error, and the four are written back. */
static void test_hypercall_nret_above_four(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_hc_vm(f, VCPU_VM_LAZY_HYPERCALL_ARGS);
	const uint32_t fn = SMCCC_VENDOR_HYP_BASE + 0x32;
	const uint64_t expect[] = { 0xc0, 0xc1, 0xc2, 0xc3 };
	struct vcpu_mock_step s[] = { hypercall(fn, 0, 7, hc_args, 4, expect) };
	const struct vcpu_handlers h = { .hypercall = on_nret5 };

	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &h, NULL), -EINVAL);
	assert_non_null(strstr(vcpu_last_error(cpu), "nret 5"));
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(reg_of(cpu, VCPU_REG_ARM64_X(i)), 0xc0 + i);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static int on_eager_hc(void *ctx, struct vcpu *cpu, struct vcpu_hypercall *hc)
{
	struct lazy_rec *l = ctx;
	uint64_t t0 = vcpu_mock_calls(l->f->mock), v;

	/* Every argument and x1..x7 again: all already read, no call. */
	for (uint32_t i = 0; i < hc->nargs; i++) {
		assert_int_equal(vcpu_hypercall_arg(cpu, i, &v), 0);
		assert_int_equal(v, hc_args[i]);
		assert_int_equal(vcpu_get_reg(cpu, VCPU_REG_ARM64_X(i + 1), &v), 0);
		assert_int_equal(v, hc_args[i]);
	}
	l->gets = calls_since(l->f, t0, KVM_GET_ONE_REG_REQ);
	l->seen_nret = hc->nret;
	hc->ret[0] = 0;
	hc->ret[1] = 0x99; /* x1 changes; x2, x3 as they were: not written */
	l->t0 = vcpu_mock_calls(l->f->mock);
	return VCPU_STOP;
}

/*
 * 1.0 behaviour without the flag (all read, nret 4); reads during the exit
 * cost nothing; only the results that differ are written; after vcpu_run()
 * a register reads as the guest will see it (x1 = its result).
 */
static void test_eager_hypercall_reuses_args(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_hc_vm(f, 0);
	const uint32_t fn = SMCCC_VENDOR_HYP_BASE + 0x33;
	const uint64_t expect[] = { 0, 0x99, hc_args[1], hc_args[2] };
	struct vcpu_mock_step s[] = { hypercall(fn, 0, 7, hc_args, 4, expect) };
	struct lazy_rec l = { .f = f };
	const struct vcpu_handlers h = { .hypercall = on_eager_hc };
	uint64_t v;

	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &h, &l), VCPU_STOP);
	assert_int_equal(l.gets, 0);
	assert_int_equal(l.seen_nret, 4);
	assert_int_equal(calls_since(f, l.t0, KVM_SET_ONE_REG_REQ), 2); /* x0, x1 */
	assert_int_equal(vcpu_get_reg(cpu, VCPU_REG_ARM64_X(1), &v), 0);
	assert_int_equal(v, 0x99);
	assert_int_equal(vcpu_hypercall_arg(cpu, 0, &v), 0); /* the argument, kept */
	assert_int_equal(v, hc_args[0]);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static int on_hc_stop(void *ctx, struct vcpu *cpu, struct vcpu_hypercall *hc)
{
	(void)ctx;
	(void)cpu;
	hc->ret[0] = 0;
	return VCPU_STOP;
}

/* Bad calls of vcpu_hypercall_arg(); x86 fills every argument in the exit. */
static void test_hypercall_arg_errors(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	const uint64_t args[] = { 0x1000, 4, 7 };
	const uint64_t expect[] = { 0 };
	struct vcpu_mock_step s[] = {
		hypercall(X86_KVM_HC_MAP_GPA_RANGE, VCPU_HYPERCALL_LONGMODE, 3, args, 1, expect),
	};
	const struct vcpu_handlers h = { .hypercall = on_hc_stop };
	uint64_t v;

	assert_int_equal(vcpu_hypercall_arg(NULL, 0, &v), -EINVAL);
	assert_int_equal(vcpu_hypercall_arg(cpu, 0, NULL), -EINVAL);
	assert_int_equal(vcpu_hypercall_arg(cpu, 0, &v), -EINVAL); /* no exit yet */
	assert_non_null(strstr(vcpu_last_error(cpu), "not a hypercall"));
	assert_int_equal(vcpu_vm_forward_hypercalls(f->vm, X86_KVM_HC_MAP_GPA_RANGE, 1), 0);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &h, NULL), VCPU_STOP);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(vcpu_hypercall_arg(cpu, i, &v), 0);
		assert_int_equal(v, args[i]);
	}
	assert_int_equal(vcpu_hypercall_arg(cpu, 3, &v), -EINVAL); /* MAP_GPA_RANGE has 3 */
	assert_int_equal(vcpu_last_exit(cpu)->u.hypercall.nret, 1);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
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
		T(test_cap_values_from_driver),
		T(test_cap_no_immediate_exit),
		T(test_cap_smccc_filter),
		T(test_cap_no_smccc_filter),
		T(test_cap_portable_facts),
		T(test_cap_unknown),
		T(test_regs_arm64_core),
		T(test_regs_arm64_sysreg),
		T(test_regs_x86_gprs),
		T(test_regs_x86_control),
		T(test_regs_x86_segments),
		T(test_regs_wrong_arch),
		T(test_regs_reach_guest_arm64),
		T(test_regs_reach_guest_x86),
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
		T(test_pio_out),
		T(test_pio_out_rep),
		T(test_pio_in),
		T(test_pio_in_rep),
		T(test_pio_unhandled_in_zero),
		T(test_hvc_forwarded),
		T(test_smc_forwarded_defaults),
		T(test_hvc_smc_told_apart),
		T(test_hypercall_not_forwarded),
		T(test_lazy_hypercall_args),
		T(test_lazy_hypercall_nret),
		T(test_hypercall_nret_above_four),
		T(test_eager_hypercall_reuses_args),
		T(test_hypercall_arg_errors),
		T(test_psci_forwarded),
		T(test_forward_ranges),
		T(test_x86_hypercall),
		T(test_x86_hypercall_not_forwarded),
		T(test_psci_system_off),
		T(test_psci_system_reset),
		T(test_psci_system_reset2),
		T(test_system_event_crash),
		T(test_system_event_wakeup_suspend),
		T(test_system_event_raw_legacy),
		T(test_system_event_fallbacks),
		T(test_internal_error_other),
		T(test_internal_error_eio),
		T(test_fail_entry),
		T(test_memory_fault),
		T(test_hlt),
		T(test_triple_fault_and_unknown),
		T(test_debug_exit_raw_bytes),
		T(test_unknown_exit_code),
		T(test_run_call_fails),
		T(test_malformed_mmio_len0),
		T(test_malformed_mmio_len9),
		T(test_malformed_pio_size3),
		T(test_malformed_pio_offset),
		T(test_malformed_pio_count),
		T(test_malformed_pio_on_arm64),
		T(test_malformed_system_event_ndata),
		T(test_malformed_internal_ndata),
		T(test_handler_stop_code),
		T(test_handler_negative_errno),
		T(test_no_handler_enosys_resumable),
		T(test_busy_inside_handler),
	};

	mallopt(M_ARENA_MAX, 1);
	warm_up();
	return cmocka_run_group_tests_name("mock", tests, NULL, NULL);
}
