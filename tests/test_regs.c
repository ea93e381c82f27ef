// SPDX-License-Identifier: MIT
/*
 * Batch register access, vcpu_get_regs() and vcpu_set_regs(), against the
 * mock drivers: how many driver calls a batch makes on each ABI, that a bad
 * batch reaches no driver at all, what is left applied when a driver refuses
 * part of one, and that a mode switch the drivers refuse one register at a
 * time (x86 long mode on a driver that pages only in long mode) goes through
 * whole.
 */
#define _GNU_SOURCE
#include <vcpu/arm64.h>
#include <vcpu/mock.h>
#include <vcpu/vcpu.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "acrn/acrn_abi.h"
#include "helpers.h"
#include "kvm/kvm_abi.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Long mode as minivmm enters it: PG|WP|NE|ET|MP|PE, PAE, LME|LMA, a 64-bit CS. */
#define CR0_LONG 0x80050033ull
#define CR4_PAE 0x20ull
#define EFER_LONG 0x500ull

/* Macros, so that static arrays can hold them (a const object is no constant expression). */
#define CS64 { .limit = 0xffffffff, .selector = 0x10, .type = 0xb, .present = 1, .s = 1, \
	       .l = 1, .g = 1 }
#define DS32 { .limit = 0xffffffff, .selector = 0x18, .type = 0x3, .present = 1, .db = 1, \
	       .s = 1, .g = 1 }
static const struct vcpu_x86_segment cs64 = CS64;
static const struct vcpu_x86_segment ds32 = DS32;

struct fx {
	long fds, maps;
	struct vcpu_mock *mock;
	struct vcpu_hv *hv;
	struct vcpu_vm *vm;
	struct vcpu *cpu;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->fds = count_open_fds();
	f->maps = count_mappings();
	*state = f;
	return 0;
}

/* Nothing leaked: every handle closes, the mock holds no object, fds and maps as before. */
static int teardown(void **state)
{
	struct fx *f = *state;
	unsigned live = 0;

	if (f->cpu)
		assert_int_equal(vcpu_destroy(&f->cpu), 0);
	if (f->vm)
		assert_int_equal(vcpu_vm_destroy(&f->vm), 0);
	if (f->hv)
		assert_int_equal(vcpu_hv_close(f->hv), 0);
	if (f->mock) {
		live = vcpu_mock_live_objects(f->mock);
		assert_int_equal(vcpu_mock_destroy(&f->mock), 0);
	}
	assert_int_equal(live, 0);
	assert_int_equal(count_open_fds(), f->fds);
	assert_int_equal(count_mappings(), f->maps);
	free(f);
	return 0;
}

static struct vcpu *open_cpu(struct fx *f, enum vcpu_backend backend, uint32_t arch,
			     uint32_t flags)
{
	const struct vcpu_mock_config cfg = { .arch = arch, .flags = flags };

	assert_int_equal(vcpu_mock_open(backend, &cfg, &f->mock, &f->hv), 0);
	assert_int_equal(vcpu_vm_create(f->hv, NULL, &f->vm), 0);
	assert_int_equal(vcpu_create(f->vm, 0, 0, &f->cpu), 0);
	return f->cpu;
}

/* The ioctl requests of the kernel calls made since call number @since. */
static size_t ioctls_since(struct fx *f, uint64_t since, unsigned long *req, size_t max)
{
	size_t n = 0;

	for (uint64_t i = since + 1; i <= vcpu_mock_calls(f->mock); i++) {
		struct vcpu_mock_call_info c;

		assert_int_equal(vcpu_mock_call_info(f->mock, i, &c), 0);
		assert_int_equal(c.call, VCPU_MOCK_CALL_IOCTL);
		assert_true(n < max);
		req[n++] = (unsigned long)c.req;
	}
	return n;
}

static uint64_t get1(struct vcpu *cpu, uint64_t id)
{
	uint64_t v = 0;

	assert_int_equal(vcpu_get_reg(cpu, id, &v), 0);
	return v;
}

static const struct vcpu_reg long_mode[] = {
	{ .id = VCPU_REG_X86_CR4, .value = CR4_PAE },
	{ .id = VCPU_REG_X86_CR0, .value = CR0_LONG },
	{ .id = VCPU_REG_X86_EFER, .value = EFER_LONG },
	{ .id = VCPU_REG_X86_CR3, .value = 0x9000 },
	{ .id = VCPU_REG_X86_SEG(VCPU_X86_CS), .seg = CS64 },
	{ .id = VCPU_REG_X86_SEG(VCPU_X86_DS), .seg = DS32 },
	{ .id = VCPU_REG_X86_SEG(VCPU_X86_GDT), .seg = { .base = 0x500, .limit = 47 } },
	{ .id = VCPU_REG_X86_RIP, .value = 0x100200 },
	{ .id = VCPU_REG_X86_RSI, .value = 0x7000 },
	{ .id = VCPU_REG_X86_RFLAGS, .value = 0x2 },
};

/* x86 KVM: one KVM_GET_REGS, KVM_GET_SREGS, KVM_SET_SREGS, KVM_SET_REGS; read back alike. */
static void test_x86_long_mode_batch(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_cpu(f, VCPU_BACKEND_KVM, VCPU_ARCH_X86_64, 0);
	struct vcpu_reg back[ARRAY_SIZE(long_mode)];
	unsigned long req[8];
	uint64_t t0 = vcpu_mock_calls(f->mock);

	assert_int_equal(vcpu_set_regs(cpu, long_mode, ARRAY_SIZE(long_mode)), 0);
	assert_int_equal(ioctls_since(f, t0, req, ARRAY_SIZE(req)), 4);
	assert_int_equal(req[0], KVM_GET_REGS_X86);
	assert_int_equal(req[1], KVM_GET_SREGS);
	assert_int_equal(req[2], KVM_SET_SREGS);
	assert_int_equal(req[3], KVM_SET_REGS_X86);

	memset(back, 0xa5, sizeof(back));
	for (size_t i = 0; i < ARRAY_SIZE(back); i++)
		back[i].id = long_mode[i].id;
	t0 = vcpu_mock_calls(f->mock);
	assert_int_equal(vcpu_get_regs(cpu, back, ARRAY_SIZE(back)), 0);
	assert_int_equal(ioctls_since(f, t0, req, ARRAY_SIZE(req)), 2);
	for (size_t i = 0; i < ARRAY_SIZE(back); i++) {
		if (back[i].id >= VCPU_REG_X86_SEG(VCPU_X86_CS))
			continue;
		assert_int_equal(back[i].value, long_mode[i].value);
	}
	assert_memory_equal(&back[4].seg, &cs64, sizeof(cs64));
	assert_memory_equal(&back[5].seg, &ds32, sizeof(ds32));
	assert_int_equal(back[6].seg.base, 0x500);
	assert_int_equal(back[6].seg.limit, 47);
	assert_int_equal(back[6].seg.selector, 0);

	/* Only general registers: KVM_GET_REGS alone, nothing of kvm_sregs. */
	struct vcpu_reg rip = { .id = VCPU_REG_X86_RIP };
	t0 = vcpu_mock_calls(f->mock);
	assert_int_equal(vcpu_get_regs(cpu, &rip, 1), 0);
	assert_int_equal(ioctls_since(f, t0, req, ARRAY_SIZE(req)), 1);
	assert_int_equal(req[0], KVM_GET_REGS_X86);
	assert_int_equal(rip.value, 0x100200);
}

/*
 * The paravirtual kvm_pvm driver pages only in long mode: the one-register
 * path passes through CR0.PG with EFER.LME clear and is refused; the batch
 * reaches KVM_SET_SREGS whole and is taken.
 */
static void test_x86_pvm_needs_batch(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_cpu(f, VCPU_BACKEND_KVM, VCPU_ARCH_X86_64, VCPU_MOCK_KVM_PVM);

	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_CR4, CR4_PAE), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_CR0, CR0_LONG), -EINVAL);
	assert_non_null(strstr(vcpu_last_error(cpu), "KVM_SET_SREGS"));
	/* EFER first is refused by every KVM (LMA without paging). */
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_EFER, EFER_LONG), -EINVAL);

	assert_int_equal(vcpu_set_regs(cpu, long_mode, ARRAY_SIZE(long_mode)), 0);
	assert_int_equal(get1(cpu, VCPU_REG_X86_CR0), CR0_LONG);
	assert_int_equal(get1(cpu, VCPU_REG_X86_EFER), EFER_LONG);
	assert_int_equal(get1(cpu, VCPU_REG_X86_RIP), 0x100200);
}

/* KVM's own rules on the whole kvm_sregs: a state it refuses leaves nothing applied. */
static void test_x86_invalid_state_refused(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_cpu(f, VCPU_BACKEND_KVM, VCPU_ARCH_X86_64, 0);
	const struct vcpu_reg no_pae[] = {
		{ .id = VCPU_REG_X86_CR0, .value = CR0_LONG },
		{ .id = VCPU_REG_X86_EFER, .value = EFER_LONG },
		{ .id = VCPU_REG_X86_RIP, .value = 0x4242 },
	};
	const struct vcpu_reg cs64_real[] = {
		{ .id = VCPU_REG_X86_SEG(VCPU_X86_CS), .seg = cs64 },
	};
	uint64_t cr0 = get1(cpu, VCPU_REG_X86_CR0), rip = get1(cpu, VCPU_REG_X86_RIP);

	assert_int_equal(vcpu_set_regs(cpu, no_pae, ARRAY_SIZE(no_pae)), -EINVAL);
	assert_non_null(strstr(vcpu_last_error(cpu), "KVM_SET_SREGS"));
	assert_int_equal(vcpu_set_regs(cpu, cs64_real, 1), -EINVAL);
	assert_int_equal(get1(cpu, VCPU_REG_X86_CR0), cr0);
	assert_int_equal(get1(cpu, VCPU_REG_X86_RIP), rip);
}

/* KVM_SET_REGS refused after KVM_SET_SREGS took the batch: the old kvm_sregs is put back. */
static void test_x86_regs_refused_restores_sregs(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_cpu(f, VCPU_BACKEND_KVM, VCPU_ARCH_X86_64, 0);
	uint64_t cr0 = get1(cpu, VCPU_REG_X86_CR0), t0 = vcpu_mock_calls(f->mock);
	struct vcpu_x86_segment cs;
	unsigned long req[8];

	/* GET_REGS, GET_SREGS, SET_SREGS, then SET_REGS fails. */
	assert_int_equal(vcpu_mock_fail_call(f->mock, t0 + 4, EFAULT), 0);
	assert_int_equal(vcpu_set_regs(cpu, long_mode, ARRAY_SIZE(long_mode)), -EFAULT);
	assert_non_null(strstr(vcpu_last_error(cpu), "restored"));
	assert_int_equal(ioctls_since(f, t0, req, ARRAY_SIZE(req)), 5);
	assert_int_equal(req[4], KVM_SET_SREGS);
	assert_int_equal(get1(cpu, VCPU_REG_X86_CR0), cr0);
	assert_int_equal(get1(cpu, VCPU_REG_X86_EFER), 0);
	assert_int_equal(vcpu_x86_get_segment(cpu, VCPU_X86_CS, &cs), 0);
	assert_int_equal(cs.l, 0);
	assert_int_equal(cs.base, 0xffff0000);
}

/* Whatever is wrong with a batch, no driver call is made and the detail names the entry. */
static void test_bad_batch_reaches_no_driver(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_cpu(f, VCPU_BACKEND_KVM, VCPU_ARCH_X86_64, 0);
	const struct vcpu_reg other_arch[] = {
		{ .id = VCPU_REG_X86_RAX, .value = 1 },
		{ .id = VCPU_REG_ARM64_PC, .value = 2 },
	};
	const struct vcpu_reg unknown[] = { { .id = 0x112, .value = 1 } };
	const struct vcpu_reg twice[] = {
		{ .id = VCPU_REG_X86_RAX, .value = 1 },
		{ .id = VCPU_REG_X86_RBX, .value = 2 },
		{ .id = VCPU_REG_X86_RAX, .value = 3 },
	};
	const struct vcpu_reg big_limit[] = {
		{ .id = VCPU_REG_X86_SEG(VCPU_X86_IDT), .seg = { .limit = 0x10000 } },
	};
	const struct vcpu_reg past_idt[] = { { .id = VCPU_REG_X86_SEG(VCPU_X86_IDT) + 1 } };
	struct vcpu_reg get_twice[] = { { .id = VCPU_REG_X86_RAX }, { .id = VCPU_REG_X86_RAX } };
	uint64_t t0 = vcpu_mock_calls(f->mock);

	assert_int_equal(vcpu_set_regs(cpu, other_arch, 2), -EINVAL);
	assert_non_null(strstr(vcpu_last_error(cpu), "entry 1"));
	assert_int_equal(vcpu_get_regs(cpu, (struct vcpu_reg *)other_arch + 1, 1), -EINVAL);
	assert_int_equal(vcpu_set_regs(cpu, unknown, 1), -EINVAL);
	assert_int_equal(vcpu_set_regs(cpu, twice, 3), -EINVAL);
	assert_non_null(strstr(vcpu_last_error(cpu), "entries 0 and 2"));
	assert_int_equal(vcpu_set_regs(cpu, big_limit, 1), -EINVAL);
	assert_non_null(strstr(vcpu_last_error(cpu), "16 bits"));
	assert_int_equal(vcpu_set_regs(cpu, past_idt, 1), -EINVAL);
	assert_int_equal(vcpu_set_regs(cpu, NULL, 1), -EINVAL);
	assert_int_equal(vcpu_get_regs(cpu, NULL, 1), -EINVAL);
	assert_int_equal(vcpu_set_regs(cpu, long_mode, VCPU_REGS_MAX + 1), -EINVAL);
	assert_int_equal(vcpu_set_regs(NULL, long_mode, 1), -EINVAL);
	assert_int_equal(vcpu_get_regs(NULL, get_twice, 1), -EINVAL);
	/* Empty batches do nothing, with or without an array. */
	assert_int_equal(vcpu_set_regs(cpu, NULL, 0), 0);
	assert_int_equal(vcpu_get_regs(cpu, NULL, 0), 0);
	assert_int_equal(vcpu_mock_calls(f->mock), t0);
	/* Reading a register twice is harmless. */
	assert_int_equal(vcpu_get_regs(cpu, get_twice, 2), 0);
	assert_int_equal(get_twice[0].value, get_twice[1].value);
}

/* arm64 KVM: ONE_REG per entry, in order; a refused entry leaves the earlier ones set. */
static void test_arm64_one_reg_each(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_cpu(f, VCPU_BACKEND_KVM, VCPU_ARCH_ARM64, 0);
	const struct vcpu_reg set[] = {
		{ .id = VCPU_REG_ARM64_X(0), .value = 0x1000 },
		{ .id = VCPU_REG_ARM64_X(1), .value = 0x1001 },
		{ .id = VCPU_REG_ARM64_PC, .value = 0x80000 },
		{ .id = VCPU_REG_ARM64_PSTATE, .value = 0x3c5 },
	};
	struct vcpu_reg get[] = {
		{ .id = VCPU_REG_ARM64_PC }, { .id = VCPU_REG_ARM64_X(1) },
		{ .id = VCPU_REG_ARM64_X(0) }, { .id = VCPU_REG_ARM64_MPIDR_EL1 },
	};
	const struct vcpu_reg seg[] = { { .id = VCPU_REG_X86_SEG(VCPU_X86_CS), .seg = cs64 } };
	unsigned long req[8];
	uint64_t t0 = vcpu_mock_calls(f->mock);

	assert_int_equal(vcpu_set_regs(cpu, set, ARRAY_SIZE(set)), 0);
	assert_int_equal(ioctls_since(f, t0, req, ARRAY_SIZE(req)), 4);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(req[i], KVM_SET_ONE_REG);
	assert_int_equal(vcpu_get_regs(cpu, get, ARRAY_SIZE(get)), 0);
	assert_int_equal(get[0].value, 0x80000);
	assert_int_equal(get[1].value, 0x1001);
	assert_int_equal(get[2].value, 0x1000);
	assert_int_equal(get[3].value, get1(cpu, VCPU_REG_ARM64_MPIDR_EL1));
	/* Segments are x86's. */
	assert_int_equal(vcpu_set_regs(cpu, seg, 1), -EINVAL);

	/* The driver refuses entry 2: entries 0 and 1 are set, the detail says 2. */
	const struct vcpu_reg again[] = {
		{ .id = VCPU_REG_ARM64_X(0), .value = 0x2000 },
		{ .id = VCPU_REG_ARM64_X(1), .value = 0x2001 },
		{ .id = VCPU_REG_ARM64_PC, .value = 0x90000 },
	};
	t0 = vcpu_mock_calls(f->mock);
	assert_int_equal(vcpu_mock_fail_call(f->mock, t0 + 3, EINVAL), 0);
	assert_int_equal(vcpu_set_regs(cpu, again, 3), -EINVAL);
	assert_non_null(strstr(vcpu_last_error(cpu), "entry 2: KVM_SET_ONE_REG"));
	assert_int_equal(get1(cpu, VCPU_REG_ARM64_X(0)), 0x2000);
	assert_int_equal(get1(cpu, VCPU_REG_ARM64_X(1)), 0x2001);
	assert_int_equal(get1(cpu, VCPU_REG_ARM64_PC), 0x80000);
}

/* ACRN: one ACRN_IOCTL_SET_VCPU_REGS for the batch; a bad entry sends nothing. */
static void test_acrn_one_call(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_cpu(f, VCPU_BACKEND_ACRN, VCPU_ARCH_X86_64, 0);
	const struct vcpu_reg ds_based[] = {
		{ .id = VCPU_REG_X86_RIP, .value = 0x1000 },
		{ .id = VCPU_REG_X86_SEG(VCPU_X86_DS), .seg = { .base = 0x1000, .selector = 8 } },
	};
	const struct vcpu_reg cr2[] = { { .id = VCPU_REG_X86_CR2, .value = 1 } };
	struct vcpu_reg rip = { .id = VCPU_REG_X86_RIP };
	unsigned long req[4];
	uint64_t t0 = vcpu_mock_calls(f->mock);

	assert_int_equal(vcpu_set_regs(cpu, long_mode, ARRAY_SIZE(long_mode)), 0);
	assert_int_equal(ioctls_since(f, t0, req, ARRAY_SIZE(req)), 1);
	assert_int_equal(req[0], ACRN_IOCTL_SET_VCPU_REGS);
	t0 = vcpu_mock_calls(f->mock);
	assert_int_equal(vcpu_set_regs(cpu, ds_based, 2), -EOPNOTSUPP);
	assert_non_null(strstr(vcpu_last_error(cpu), "entry 1: "));
	assert_int_equal(vcpu_set_regs(cpu, cr2, 1), -ENOENT);
	assert_int_equal(vcpu_mock_calls(f->mock), t0);
	/* ACRN cannot read registers: said for the batch as for one register. */
	assert_int_equal(vcpu_get_regs(cpu, &rip, 1), -EOPNOTSUPP);
	assert_non_null(strstr(vcpu_last_error(cpu), "entry 0: ACRN cannot read"));
}

/* Gunyah: the boot context one register at a time, on vCPU 0, before the VM starts. */
static void test_gunyah_boot_context(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_cpu(f, VCPU_BACKEND_GUNYAH, VCPU_ARCH_ARM64, 0);
	const struct vcpu_reg boot[] = {
		{ .id = VCPU_REG_ARM64_PC, .value = 0x80000000 },
		{ .id = VCPU_REG_ARM64_X(0), .value = 0x88000000 },
	};
	const struct vcpu_reg pstate[] = {
		{ .id = VCPU_REG_ARM64_X(1), .value = 0 },
		{ .id = VCPU_REG_ARM64_PSTATE, .value = 0x3c5 },
	};

	assert_int_equal(vcpu_set_regs(cpu, boot, 2), 0);
	/* Gunyah's boot context has no PSTATE: entry 1 fails after entry 0 was set. */
	assert_int_equal(vcpu_set_regs(cpu, pstate, 2), -EOPNOTSUPP);
	assert_non_null(strstr(vcpu_last_error(cpu), "entry 1: "));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_x86_long_mode_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_x86_pvm_needs_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_x86_invalid_state_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_x86_regs_refused_restores_sregs, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_batch_reaches_no_driver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arm64_one_reg_each, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acrn_one_call, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gunyah_boot_context, setup, teardown),
	};

	return cmocka_run_group_tests_name("regs", tests, NULL, NULL);
}
