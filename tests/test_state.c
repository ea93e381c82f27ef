// SPDX-License-Identifier: MIT
/*
 * Suite "state": vCPU and VM state classes and snapshots on the mock
 * (vcpu_get_state(3), vcpu_vm_snapshot(3)): a round trip of every class,
 * snapshots restored into a VM of another mock driver, blobs truncated,
 * corrupted, foreign and of another version, VMs that do not match, failing
 * driver calls during save and restore, and the backends without state.
 * The mock's own rules for each state ioctl: test_state_rules.c.
 */
#define _GNU_SOURCE
#include "kvm/kvm.h" /* the vGIC's device fd, for the raw rule checks */
#include "mock_fixture.h"
#include "snapshot_crc.h"

#include <vcpu/state.h>

#define MSR_LSTAR 0xc0000082u
#define MSR_TSC 0x10u

/* A second VM on a mock of its own: the restore side of a snapshot. */
struct env {
	struct vcpu_mock *mock;
	struct vcpu_hv *hv;
	struct vcpu_vm *vm;
	struct vcpu *cpu[MAX_CPUS];
};

static void env_open(struct env *e, enum vcpu_backend backend, uint32_t arch)
{
	struct vcpu_mock_config cfg = { .arch = arch };

	memset(e, 0, sizeof(*e));
	assert_int_equal(vcpu_mock_open(backend, &cfg, &e->mock, &e->hv), 0);
	assert_int_equal(vcpu_vm_create(e->hv, NULL, &e->vm), 0);
}

static void env_close(struct env *e)
{
	for (unsigned i = 0; i < MAX_CPUS; i++)
		if (e->cpu[i])
			assert_int_equal(vcpu_destroy(&e->cpu[i]), 0);
	if (e->vm)
		assert_int_equal(vcpu_vm_destroy(&e->vm), 0);
	assert_int_equal(vcpu_hv_close(e->hv), 0);
	assert_int_equal(vcpu_mock_live_objects(e->mock), 0);
	assert_int_equal(vcpu_mock_destroy(&e->mock), 0);
}

/* Read a class into a malloc()ed buffer. */
static void *get_cls(struct vcpu *cpu, uint32_t cls, size_t *len)
{
	void *p;

	*len = 0;
	assert_int_equal(vcpu_get_state(cpu, cls, NULL, len), 0);
	assert_true(*len > 0);
	p = calloc(1, *len);
	assert_non_null(p);
	assert_int_equal(vcpu_get_state(cpu, cls, p, len), 0);
	return p;
}

static void *vm_get_cls(struct vcpu_vm *vm, uint32_t cls, size_t *len)
{
	void *p;

	*len = 0;
	assert_int_equal(vcpu_vm_get_state(vm, cls, NULL, len), 0);
	p = calloc(1, *len);
	assert_non_null(p);
	assert_int_equal(vcpu_vm_get_state(vm, cls, p, len), 0);
	return p;
}

/* Every class of @cpu equals that of @other (the clock aside). */
static void expect_same_vcpu(struct vcpu *cpu, struct vcpu *other, const uint32_t *cls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t la, lb;
		void *a = get_cls(cpu, cls[i], &la), *b = get_cls(other, cls[i], &lb);

		if (la != lb || memcmp(a, b, la) != 0)
			fail_msg("class 0x%x differs after restore (%zu vs %zu bytes)", cls[i], la, lb);
		free(a);
		free(b);
	}
}

static const uint32_t x86_classes[] = {
	VCPU_STATE_X86_TSC_KHZ, VCPU_STATE_X86_REGS, VCPU_STATE_X86_SREGS, VCPU_STATE_X86_XSAVE, VCPU_STATE_X86_XCRS,
	VCPU_STATE_X86_MSRS, VCPU_STATE_X86_DEBUGREGS, VCPU_STATE_X86_EVENTS, VCPU_STATE_MP,
};

/* Give an x86 vCPU distinct, valid values in every class. */
static void x86_dirty(struct vcpu *cpu, uint64_t seed)
{
	struct vcpu_x86_regs regs;
	struct vcpu_x86_sregs sregs;
	struct vcpu_x86_xcrs xcrs = { .nr_xcrs = 1, .xcrs = { { .xcr = 0, .value = 0x7 } } };
	struct vcpu_x86_debugregs dr = { .db = { seed, seed + 1, seed + 2, seed + 3 },
					 .dr6 = 0xffff0ff1, .dr7 = 0x401 };
	/* struct vcpu_x86_msrs with room for two */
	struct {
		uint32_t count, reserved;
		struct vcpu_x86_msr m[2];
	} msrs = { 2, 0, { { MSR_LSTAR, 0, 0xffffffff81000000ull + seed }, { MSR_TSC, 0, seed << 20 } } };
	struct vcpu_x86_events ev;
	struct vcpu_mp_state mp = { VCPU_MP_HALTED };
	size_t len = sizeof(regs);
	uint8_t *xs;

	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_REGS, &regs, &len), 0);
	regs.rax = seed;
	regs.r15 = ~seed;
	regs.rip = 0x1000 + seed;
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_REGS, &regs, sizeof(regs)), 0);
	len = sizeof(sregs);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_SREGS, &sregs, &len), 0);
	sregs.cr2 = 0xdead000 + seed;
	sregs.fs.base = 0x7000 + seed;
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_SREGS, &sregs, sizeof(sregs)), 0);
	xs = get_cls(cpu, VCPU_STATE_X86_XSAVE, &len);
	memset(xs + 160, (int)(0x40 + seed), 16); /* XMM0 in the FXSAVE region */
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_XSAVE, xs, len), 0);
	free(xs);
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_XCRS, &xcrs, sizeof(xcrs)), 0);
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_MSRS, &msrs, sizeof(msrs)), 0);
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_DEBUGREGS, &dr, sizeof(dr)), 0);
	len = sizeof(ev);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_EVENTS, &ev, &len), 0);
	ev.nmi.masked = 1;
	ev.interrupt.shadow = 1;
	ev.flags = VCPU_X86_EVENTS_VALID_SHADOW | VCPU_X86_EVENTS_VALID_NMI_PENDING;
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_EVENTS, &ev, sizeof(ev)), 0);
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_MP, &mp, sizeof(mp)), 0);
	{
		/* Faster than the host's: KVM catches the guest's TSC up. */
		struct vcpu_x86_tsc_khz t = { .khz = 2500000 + (uint32_t)seed };

		assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_TSC_KHZ, &t, sizeof(t)), 0);
	}
}

/*
 * KVM_SET_PIT2 reloads each channel's count, so count_load_time reads back
 * as the time of the set (arch/x86/kvm/i8254.c, kvm_pit_load_count()).
 */
static void pit_load_times_zero(void *p)
{
	struct vcpu_x86_pit *pit = p;

	for (unsigned i = 0; i < 3; i++)
		pit->channels[i].count_load_time = 0;
}

/* ------------------------------------------------------------------------ */
/* Classes, one at a time                                                    */

static void test_x86_regs_sregs_roundtrip(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct vcpu_x86_regs regs, back;
	struct vcpu_x86_sregs sregs, sback;
	size_t len = sizeof(regs);

	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_REGS, &regs, &len), 0);
	assert_int_equal(len, 144);
	regs.rbx = 0x1234;
	regs.rip = 0xfff0;
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_REGS, &regs, sizeof(regs)), 0);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_REGS, &back, &len), 0);
	assert_memory_equal(&regs, &back, sizeof(regs));
	/* The same registers through the register API. */
	assert_int_equal(reg_of(cpu, VCPU_REG_X86_RBX), 0x1234);
	len = sizeof(sregs);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_SREGS, &sregs, &len), 0);
	assert_int_equal(len, 312);
	sregs.cr2 = 0xabc000;
	sregs.gdt.base = 0x5000;
	sregs.gdt.limit = 0x27;
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_SREGS, &sregs, sizeof(sregs)), 0);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_SREGS, &sback, &len), 0);
	assert_memory_equal(&sregs, &sback, sizeof(sregs));
	assert_int_equal(reg_of(cpu, VCPU_REG_X86_CR2), 0xabc000);
}

static void test_x86_xsave_roundtrip(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	size_t len, len2;
	uint8_t *xs = get_cls(cpu, VCPU_STATE_X86_XSAVE, &len), *back;

	assert_true(len >= VCPU_X86_XSAVE_MIN_SIZE);
	assert_int_equal(get_le(xs, 2), 0x37f);       /* FCW after reset */
	assert_int_equal(get_le(xs + 24, 4), 0x1f80); /* MXCSR after reset */
	memset(xs + 160, 0x5a, 16);                   /* XMM0 */
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_XSAVE, xs, len), 0);
	back = get_cls(cpu, VCPU_STATE_X86_XSAVE, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(xs, back, len);
	/* A size the driver does not use. */
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_XSAVE, xs, len + 4), -EINVAL);
	expect_detail(vcpu_last_error(cpu));
	/* The driver's own rule: XCOMP_BV (compacted format) must be 0. */
	put_le(xs + 520, 1ull << 63, 8);
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_XSAVE, xs, len), -EINVAL);
	free(xs);
	free(back);
}

static void test_x86_xcrs_debugregs_events(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct vcpu_x86_xcrs x = { .nr_xcrs = 1, .xcrs = { { .xcr = 0, .value = 0x7 } } }, xb;
	struct vcpu_x86_debugregs d = { .db = { 1, 2, 3, 4 }, .dr6 = 0xffff0ff0, .dr7 = 0x403 }, db;
	struct vcpu_x86_events e, eb;
	size_t len = sizeof(xb);

	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_XCRS, &x, sizeof(x)), 0);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_XCRS, &xb, &len), 0);
	assert_int_equal(xb.nr_xcrs, 1);
	assert_int_equal(xb.xcrs[0].value, 0x7);
	x.xcrs[0].value = 0x4; /* AVX without x87: refused by the driver */
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_XCRS, &x, sizeof(x)), -EINVAL);
	expect_detail(vcpu_last_error(cpu));
	len = sizeof(db);
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_DEBUGREGS, &d, sizeof(d)), 0);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_DEBUGREGS, &db, &len), 0);
	assert_memory_equal(&d, &db, sizeof(d));
	len = sizeof(e);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_EVENTS, &e, &len), 0);
	e.nmi.masked = 1;
	e.interrupt.shadow = 2;
	e.flags = VCPU_X86_EVENTS_VALID_SHADOW;
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_EVENTS, &e, sizeof(e)), 0);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_EVENTS, &eb, &len), 0);
	assert_int_equal(eb.nmi.masked, 1);
	assert_int_equal(eb.interrupt.shadow, 2);
}

static void test_x86_msrs(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	size_t len, bound = 0;
	struct vcpu_x86_msrs *m;
	struct {
		uint32_t count, reserved;
		struct vcpu_x86_msr e[3];
	} set = { 3, 0, { { MSR_LSTAR, 0, 0xffffffff81234560ull },
			       { 0x277, 0, 0x0202020202020202ull }, /* PAT type 2: invalid */
			       { MSR_TSC, 0, 5 } } };
	bool lstar = false, tsc = false;

	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_MSRS, NULL, &bound), 0);
	m = get_cls(cpu, VCPU_STATE_X86_MSRS, &len);
	assert_true(len <= bound);
	assert_int_equal(len, 8 + 16 * (size_t)m->count);
	for (uint32_t i = 0; i < m->count; i++) {
		lstar |= vcpu_x86_msrs_entries(m)[i].index == MSR_LSTAR;
		tsc |= vcpu_x86_msrs_entries(m)[i].index == MSR_TSC;
	}
	assert_true(lstar && tsc);
	free(m);
	/* The driver stops at the PAT value: the detail names it. */
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_MSRS, &set, sizeof(set)), -EINVAL);
	assert_non_null(strstr(vcpu_last_error(cpu), "0x277"));
	m = get_cls(cpu, VCPU_STATE_X86_MSRS, &len);
	for (uint32_t i = 0; i < m->count; i++)
		if (vcpu_x86_msrs_entries(m)[i].index == MSR_LSTAR)
			assert_int_equal(vcpu_x86_msrs_entries(m)[i].value, 0xffffffff81234560ull);
	free(m);
	/* A count that does not match the length. */
	set.count = 4;
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_MSRS, &set, sizeof(set)), -EINVAL);
}

/* The guest's TSC rate: read, set faster, refused slower (no scaling on the modelled host). */
static void test_x86_tsc_khz(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	struct vcpu_x86_tsc_khz t = { 0 };
	size_t len = sizeof(t);

	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_TSC_KHZ, &t, &len), 0);
	assert_int_equal(t.khz, 2400000);
	t.khz = 3000000;
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_TSC_KHZ, &t, sizeof(t)), 0);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_TSC_KHZ, &t, &len), 0);
	assert_int_equal(t.khz, 3000000);
	t.khz = 1000000;
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_TSC_KHZ, &t, sizeof(t)), -EINVAL);
	assert_non_null(strstr(vcpu_last_error(cpu), "KVM_SET_TSC_KHZ"));
	t.khz = 0; /* 0 is no rate */
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_TSC_KHZ, &t, sizeof(t)), -EINVAL);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_TSC_KHZ, &t, &len), 0);
	assert_int_equal(t.khz, 3000000);
}

static void test_x86_lapic_needs_irqchip(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu;
	struct vcpu_x86_lapic lapic, back;
	size_t len = sizeof(lapic);

	open_arch(f, X86);
	cpu = add_cpu(f, 0);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_LAPIC, &lapic, &len), -ENXIO);
	assert_non_null(strstr(vcpu_last_error(cpu), "irqchip"));
	vcpu_destroy(&f->cpu[0]);
	vcpu_vm_destroy(&f->vm);
	assert_int_equal(vcpu_vm_create(f->hv, NULL, &f->vm), 0);
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, 0), 0);
	cpu = add_cpu(f, 1);
	len = sizeof(lapic);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_LAPIC, &lapic, &len), 0);
	assert_int_equal(get_le(lapic.regs + 0x20, 4) >> 24, 1); /* APIC id = vCPU id */
	put_le(lapic.regs + 0x80, 0x20, 4);                        /* TPR */
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_LAPIC, &lapic, sizeof(lapic)), 0);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_LAPIC, &back, &len), 0);
	assert_memory_equal(&lapic, &back, sizeof(lapic));
}

static void test_x86_vm_devices(void **state)
{
	struct fx *f = *state;
	struct vcpu_x86_pic pic, picb;
	struct vcpu_x86_ioapic io, iob;
	struct vcpu_x86_pit pit, pitb;
	struct vcpu_x86_clock clk = { .clock = 5000000000ull }, clkb;
	size_t len = sizeof(pic);

	open_arch(f, X86);
	assert_int_equal(vcpu_vm_get_state(f->vm, VCPU_STATE_X86_PIC, &pic, &len), -ENXIO);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_x86_create_irqchip(f->vm, VCPU_X86_IRQCHIP_PIT), 0);
	assert_int_equal(vcpu_vm_get_state(f->vm, VCPU_STATE_X86_PIC, &pic, &len), 0);
	pic.master.imr = 0xfb;
	pic.slave.irq_base = 0x70;
	assert_int_equal(vcpu_vm_set_state(f->vm, VCPU_STATE_X86_PIC, &pic, sizeof(pic)), 0);
	assert_int_equal(vcpu_vm_get_state(f->vm, VCPU_STATE_X86_PIC, &picb, &len), 0);
	assert_memory_equal(&pic, &picb, sizeof(pic));
	len = sizeof(io);
	assert_int_equal(vcpu_vm_get_state(f->vm, VCPU_STATE_X86_IOAPIC, &io, &len), 0);
	assert_int_equal(io.base_address, 0xfec00000ull);
	io.redirtbl[4] = 0x24;
	assert_int_equal(vcpu_vm_set_state(f->vm, VCPU_STATE_X86_IOAPIC, &io, sizeof(io)), 0);
	assert_int_equal(vcpu_vm_get_state(f->vm, VCPU_STATE_X86_IOAPIC, &iob, &len), 0);
	assert_int_equal(iob.redirtbl[4], 0x24);
	len = sizeof(pit);
	assert_int_equal(vcpu_vm_get_state(f->vm, VCPU_STATE_X86_PIT, &pit, &len), 0);
	pit.channels[0].count = 1193;
	pit.channels[0].mode = 2;
	assert_int_equal(vcpu_vm_set_state(f->vm, VCPU_STATE_X86_PIT, &pit, sizeof(pit)), 0);
	assert_int_equal(vcpu_vm_get_state(f->vm, VCPU_STATE_X86_PIT, &pitb, &len), 0);
	pit_load_times_zero(&pit);
	pit_load_times_zero(&pitb);
	assert_memory_equal(&pit, &pitb, sizeof(pit));
	len = sizeof(clk);
	assert_int_equal(vcpu_vm_set_state(f->vm, VCPU_STATE_X86_CLOCK, &clk, sizeof(clk)), 0);
	assert_int_equal(vcpu_vm_get_state(f->vm, VCPU_STATE_X86_CLOCK, &clkb, &len), 0);
	/* The clock runs on from where it was set, well under a minute here. */
	assert_true(clkb.clock >= clk.clock && clkb.clock - clk.clock < 60000000000ull);
}

static void test_mp_state_both_arches(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	struct vcpu_mp_state mp = { VCPU_MP_STOPPED }, back;
	size_t len = sizeof(back);

	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_MP, &mp, sizeof(mp)), 0);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_MP, &back, &len), 0);
	assert_int_equal(back.state, VCPU_MP_STOPPED);
	mp.state = VCPU_MP_RUNNABLE;
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_MP, &mp, sizeof(mp)), 0);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_MP, &back, &len), 0);
	assert_int_equal(back.state, VCPU_MP_RUNNABLE);
	/* An x86 class on arm64, a VM class on a vCPU, an unknown class. */
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_REGS, &back, &len), -EINVAL);
	assert_non_null(strstr(vcpu_last_error(cpu), "architecture"));
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_CLOCK, &back, &len), -EINVAL);
	assert_int_equal(vcpu_get_state(cpu, 0x7777, &back, &len), -EINVAL);
	assert_int_equal(vcpu_vm_get_state(f->vm, VCPU_STATE_MP, &back, &len), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
}

static void test_arm64_regs_roundtrip(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, ARM64);
	size_t len, len2;
	struct vcpu_arm64_regs *r = get_cls(cpu, VCPU_STATE_ARM64_REGS, &len), *back;
	bool pc = false, v0 = false, fpsr = false, mpidr = false;

	assert_true(r->count > 70); /* core, FP/SIMD, system and firmware registers */
	struct vcpu_arm64_reg *e = vcpu_arm64_regs_first(r);

	for (uint32_t i = 0; i < r->count; i++, e = vcpu_arm64_regs_next(e)) {
		if (e->id == 0x6030000000100040ull) { /* PC */
			pc = true;
			put_le(vcpu_arm64_reg_value(e), 0x80001000, 8);
		} else if (e->id == 0x6040000000100054ull) { /* V0, 128 bits: a 24-byte record */
			v0 = true;
			assert_int_equal(vcpu_arm64_reg_size(e), 24);
			memset(vcpu_arm64_reg_value(e), 0xa5, 16);
		} else if (e->id == 0x60200000001000d4ull) { /* FPSR, 32 bits: padded to 8 */
			fpsr = true;
			assert_int_equal(vcpu_arm64_reg_size(e), 16);
			put_le(vcpu_arm64_reg_value(e), 0x8000000, 4);
		} else if (e->id == 0x603000000013c005ull) { /* MPIDR_EL1 */
			mpidr = true;
		}
	}
	assert_ptr_equal((uint8_t *)e, (uint8_t *)r + len);
	assert_true(pc && v0 && fpsr && mpidr);
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_ARM64_REGS, r, len), 0);
	back = get_cls(cpu, VCPU_STATE_ARM64_REGS, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(r, back, len);
	assert_int_equal(reg_of(cpu, VCPU_REG_ARM64_PC), 0x80001000);
	/* An id of another architecture is refused before the driver is asked. */
	vcpu_arm64_regs_first(r)->id = 0x2030000000000000ull;
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_ARM64_REGS, r, len), -EINVAL);
	expect_detail(vcpu_last_error(cpu));
	/* A record claiming more bytes than the buffer holds. */
	vcpu_arm64_regs_first(r)->id = 0x6080000000100054ull; /* 256 bytes */
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_ARM64_REGS, r, 8 + 16), -EINVAL);
	assert_non_null(strstr(vcpu_last_error(cpu), "does not fit"));
	free(r);
	free(back);
}

static void test_get_state_sizes(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	uint8_t small[16];
	size_t len = 0;

	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_SREGS, NULL, &len), 0);
	assert_int_equal(len, 312);
	len = sizeof(small);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_SREGS, small, &len), -ENOSPC);
	assert_int_equal(len, 312);
	len = sizeof(small);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_XSAVE, small, &len), -ENOSPC);
	assert_true(len >= 4096);
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_REGS, small, sizeof(small)), -EINVAL);
	assert_non_null(strstr(vcpu_last_error(cpu), "144"));
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_MSRS, small, 4), -EINVAL);
	assert_int_equal(vcpu_get_state(cpu, VCPU_STATE_X86_REGS, small, NULL), -EINVAL);
	assert_int_equal(vcpu_set_state(cpu, VCPU_STATE_X86_REGS, NULL, 144), -EINVAL);
	assert_int_equal(vcpu_get_state(NULL, VCPU_STATE_X86_REGS, small, &len), -EINVAL);
	assert_int_equal(vcpu_vm_set_state(f->vm, VCPU_STATE_X86_CLOCK, small, sizeof(small)), -EINVAL);
}

/* A handler may not move state: the vCPU is inside vcpu_run(). */
struct busy_ctx {
	int get_rc, snap_rc;
	struct vcpu_vm *vm;
};

static int on_mmio_busy(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct busy_ctx *b = ctx;
	struct vcpu_x86_regs regs;
	size_t len = sizeof(regs);
	void *blob = NULL;
	size_t blen = 0;

	(void)io;
	b->get_rc = vcpu_get_state(cpu, VCPU_STATE_X86_REGS, &regs, &len);
	b->snap_rc = vcpu_vm_snapshot(b->vm, &blob, &blen);
	free(blob);
	return VCPU_STOP;
}

static void test_state_busy_while_running(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	const struct vcpu_mock_step steps[] = { mmio_write(MMIO_BASE, 4, 1) };
	const struct vcpu_handlers h = { .mmio = on_mmio_busy };
	struct busy_ctx b = { 0, 0, f->vm };

	SCRIPT(f, 0, steps);
	assert_int_equal(vcpu_run(cpu, &h, &b), VCPU_STOP);
	assert_int_equal(b.get_rc, -EBUSY);
	assert_int_equal(b.snap_rc, -EBUSY);
}

/*
 * A VM-wide stop that lands while a handler answers a read: vcpu_run()
 * returns -ECANCELED with that read completed in the vCPU's registers, so
 * a snapshot taken now holds it (the driver applies a read's result only
 * when it is entered again: KVM_RUN with immediate_exit does that).
 */
struct stop_ctx {
	struct vcpu_vm *vm;
	uint64_t value;
};

static int on_read_then_stop(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct stop_ctx *c = ctx;

	(void)cpu;
	put_le(io->data, c->value, io->len);
	vcpu_vm_stop_all(c->vm);
	return VCPU_CONTINUE;
}

static void stop_completes_read(struct fx *f, uint32_t arch)
{
	struct vcpu *cpu = open_one(f, arch);
	const uint64_t reg = arch == ARM64 ? 5 : 0, id = arch == ARM64 ? VCPU_REG_ARM64_X(5)
									: VCPU_REG_X86_RAX;
	const struct vcpu_mock_step steps[] = { mmio_read(MMIO_BASE, 4, 0x1234abcd, reg), stop() };
	const struct vcpu_handlers h = { .mmio = on_read_then_stop };
	struct stop_ctx c = { f->vm, 0x1234abcd };
	struct rec r;

	rec_init(&r);
	SCRIPT(f, 0, steps);
	assert_int_equal(vcpu_run(cpu, &h, &c), -ECANCELED);
	expect_script(f, 0, 1);
	assert_int_equal(reg_of(cpu, id) & 0xffffffffu, 0x1234abcd);
	/* And the guest goes on from there once resumed. */
	assert_int_equal(vcpu_vm_resume_all(f->vm), 0);
	assert_int_equal(vcpu_run(cpu, &H_MMIO_ONLY, &r), VCPU_STOP);
	expect_script(f, 0, 2);
}

static void test_stop_completes_read_arm64(void **state)
{
	stop_completes_read(*state, ARM64);
}

static void test_stop_completes_read_x86(void **state)
{
	stop_completes_read(*state, X86);
}

/* ------------------------------------------------------------------------ */
/* Snapshots                                                                  */

/* An x86 VM with two vCPUs, the PC devices, two regions, every class dirtied. */
static void x86_source(struct fx *f, bool irqchip)
{
	open_arch(f, X86);
	assert_int_equal(vcpu_vm_map(f->vm, 0, guest_ram(f, 4), 4 * f->page, 0), 0);
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA, guest_ram(f, 2), 2 * f->page,
				     VCPU_MEM_LOG_DIRTY), 0);
	if (irqchip)
		assert_int_equal(vcpu_x86_create_irqchip(f->vm, VCPU_X86_IRQCHIP_PIT), 0);
	x86_dirty(add_cpu(f, 0), 1);
	x86_dirty(add_cpu(f, 3), 2);
}

/* The matching VM on a fresh mock; its RAM is the caller's. */
static void x86_target(struct env *e, void *ram0, void *ram1, size_t page, bool irqchip)
{
	env_open(e, VCPU_BACKEND_KVM, X86);
	assert_int_equal(vcpu_vm_map(e->vm, 0, ram0, 4 * page, 0), 0);
	assert_int_equal(vcpu_vm_map(e->vm, RAM_GPA, ram1, 2 * page, VCPU_MEM_LOG_DIRTY), 0);
	if (irqchip)
		assert_int_equal(vcpu_x86_create_irqchip(e->vm, VCPU_X86_IRQCHIP_PIT), 0);
	assert_int_equal(vcpu_create(e->vm, 0, 0, &e->cpu[0]), 0);
	assert_int_equal(vcpu_create(e->vm, 3, 0, &e->cpu[3]), 0);
}

static void test_snapshot_x86_roundtrip(void **state)
{
	struct fx *f = *state;
	struct env e;
	void *blob = NULL;
	size_t len = 0, l1, l2;
	struct vcpu_snapshot_info info;
	struct vcpu_snapshot_region reg;
	void *a, *b;
	struct vcpu_x86_clock *clk;
	const uint32_t vm_cls[] = { VCPU_STATE_X86_PIC, VCPU_STATE_X86_IOAPIC, VCPU_STATE_X86_PIT };

	x86_source(f, true);
	assert_int_equal(vcpu_vm_snapshot(f->vm, &blob, &len), 0);
	assert_non_null(blob);
	assert_int_equal(vcpu_snapshot_info(blob, len, &info), 0);
	assert_int_equal(info.version, VCPU_SNAPSHOT_VERSION);
	assert_int_equal(info.arch, VCPU_ARCH_X86_64);
	assert_int_equal(info.backend, VCPU_BACKEND_KVM);
	assert_int_equal(info.nr_vcpus, 2);
	assert_int_equal(info.nr_regions, 2);
	assert_int_equal(vcpu_snapshot_region(blob, len, 1, &reg), 0);
	assert_int_equal(reg.gpa, RAM_GPA);
	assert_int_equal(reg.size, 2 * f->page);
	assert_int_equal(reg.flags, VCPU_MEM_LOG_DIRTY);
	assert_int_equal(vcpu_snapshot_region(blob, len, 2, &reg), -ERANGE);
	assert_int_equal(info.devices, VCPU_SNAPSHOT_DEV_X86_IRQCHIP | VCPU_SNAPSHOT_DEV_X86_PIT);
	{
		uint32_t id = 9;

		assert_int_equal(vcpu_snapshot_vcpu(blob, len, 1, &id), 0);
		assert_int_equal(id, 3);
		assert_int_equal(vcpu_snapshot_vcpu(blob, len, 2, &id), -ERANGE);
		assert_int_equal(vcpu_snapshot_vcpu(blob, len, 0, NULL), -EINVAL);
	}

	x86_target(&e, guest_ram(f, 4), guest_ram(f, 2), f->page, true);
	assert_int_equal(vcpu_vm_restore(e.vm, blob, len), 0);
	expect_same_vcpu(f->cpu[0], e.cpu[0], x86_classes, ARRAY_SIZE(x86_classes));
	expect_same_vcpu(f->cpu[3], e.cpu[3], x86_classes, ARRAY_SIZE(x86_classes));
	{
		const uint32_t lapic[] = { VCPU_STATE_X86_LAPIC };

		expect_same_vcpu(f->cpu[3], e.cpu[3], lapic, 1);
	}
	for (size_t i = 0; i < ARRAY_SIZE(vm_cls); i++) {
		a = vm_get_cls(f->vm, vm_cls[i], &l1);
		b = vm_get_cls(e.vm, vm_cls[i], &l2);
		assert_int_equal(l1, l2);
		if (vm_cls[i] == VCPU_STATE_X86_PIT) {
			pit_load_times_zero(a);
			pit_load_times_zero(b);
		}
		assert_memory_equal(a, b, l1);
		free(a);
		free(b);
	}
	clk = vm_get_cls(e.vm, VCPU_STATE_X86_CLOCK, &l1);
	a = vm_get_cls(f->vm, VCPU_STATE_X86_CLOCK, &l2);
	/* The restored clock went on from the saved one, not from the new VM's zero. */
	assert_true(clk->clock + 60000000000ull > ((struct vcpu_x86_clock *)a)->clock);
	free(a);
	free(clk);
	assert_int_equal(reg_of(e.cpu[3], VCPU_REG_X86_RAX), 2);
	env_close(&e);
	free(blob);
}

static void test_snapshot_arm64_roundtrip(void **state)
{
	struct fx *f = *state;
	struct env e;
	void *blob = NULL;
	size_t len = 0;
	const uint32_t cls[] = { VCPU_STATE_ARM64_REGS, VCPU_STATE_MP };
	struct vcpu_mp_state off = { VCPU_MP_STOPPED };

	open_arch(f, ARM64);
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA, guest_ram(f, 2), 2 * f->page, 0), 0);
	add_cpu(f, 0);
	add_cpu(f, 1);
	assert_int_equal(vcpu_set_reg(f->cpu[0], VCPU_REG_ARM64_X(7), 0x77), 0);
	assert_int_equal(vcpu_set_reg(f->cpu[1], VCPU_REG_ARM64_PC, 0x40001000), 0);
	assert_int_equal(vcpu_set_state(f->cpu[1], VCPU_STATE_MP, &off, sizeof(off)), 0);
	assert_int_equal(vcpu_vm_snapshot(f->vm, &blob, &len), 0);

	env_open(&e, VCPU_BACKEND_KVM, ARM64);
	assert_int_equal(vcpu_vm_map(e.vm, RAM_GPA, guest_ram(f, 2), 2 * f->page, 0), 0);
	assert_int_equal(vcpu_create(e.vm, 0, 0, &e.cpu[0]), 0);
	assert_int_equal(vcpu_create(e.vm, 1, 0, &e.cpu[1]), 0);
	assert_int_equal(vcpu_vm_restore(e.vm, blob, len), 0);
	expect_same_vcpu(f->cpu[0], e.cpu[0], cls, ARRAY_SIZE(cls));
	expect_same_vcpu(f->cpu[1], e.cpu[1], cls, ARRAY_SIZE(cls));
	assert_int_equal(reg_of(e.cpu[0], VCPU_REG_ARM64_X(7)), 0x77);
	assert_int_equal(reg_of(e.cpu[1], VCPU_REG_ARM64_PC), 0x40001000);
	env_close(&e);
	free(blob);
}

/*
 * An SVE vCPU: its 2048-bit Z registers travel in ARM64_REGS records of
 * 264 bytes (no V registers: its Z registers hold them), restore into an
 * SVE vCPU of another VM, and not into one without SVE.
 */
static void test_arm64_sve_snapshot(void **state)
{
	struct fx *f = *state;
	struct env e;
	struct vcpu_arm64_regs *r, *back;
	struct vcpu_arm64_reg *x;
	void *blob = NULL;
	size_t len, len2, blen = 0;
	bool z31 = false, vreg = false;

	open_arch(f, ARM64);
	assert_int_equal(vcpu_create(f->vm, 0, VCPU_CREATE_ARM64_SVE, &f->cpu[0]), 0);
	r = get_cls(f->cpu[0], VCPU_STATE_ARM64_REGS, &len);
	x = vcpu_arm64_regs_first(r);
	for (uint32_t i = 0; i < r->count; i++, x = vcpu_arm64_regs_next(x)) {
		vreg |= x->id == 0x6040000000100054ull; /* V0 */
		if (x->id == 0x60800000001503e0ull) {   /* Z31, 2048 bits */
			z31 = true;
			assert_int_equal(vcpu_arm64_reg_size(x), 264);
			memset(vcpu_arm64_reg_value(x), 0x3c, 256);
		}
	}
	assert_true(z31 && !vreg);
	assert_int_equal(vcpu_set_state(f->cpu[0], VCPU_STATE_ARM64_REGS, r, len), 0);
	back = get_cls(f->cpu[0], VCPU_STATE_ARM64_REGS, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(r, back, len);
	free(back);
	assert_int_equal(vcpu_vm_snapshot(f->vm, &blob, &blen), 0);

	env_open(&e, VCPU_BACKEND_KVM, ARM64);
	assert_int_equal(vcpu_create(e.vm, 0, VCPU_CREATE_ARM64_SVE, &e.cpu[0]), 0);
	assert_int_equal(vcpu_vm_restore(e.vm, blob, blen), 0);
	back = get_cls(e.cpu[0], VCPU_STATE_ARM64_REGS, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(r, back, len);
	free(back);
	env_close(&e);
	/* Without SVE the vCPU has no Z registers to take them. */
	env_open(&e, VCPU_BACKEND_KVM, ARM64);
	assert_int_equal(vcpu_create(e.vm, 0, 0, &e.cpu[0]), 0);
	assert_int_equal(vcpu_vm_restore(e.vm, blob, blen), -ENOENT);
	assert_non_null(strstr(vcpu_vm_last_error(e.vm), "ARM64_REGS"));
	env_close(&e);
	free(r);
	free(blob);
}

/* An arm64 VM with vCPUs 0 and 1 and a GICv3 with @nr_irqs interrupts. */
#define GICD_GPA 0x8000000ull
#define GICR_GPA 0x80a0000ull
static void arm64_gic_vm(struct vcpu_vm *vm, struct vcpu **cpus, uint32_t nr_irqs)
{
	for (uint32_t i = 0; i < 2; i++)
		assert_int_equal(vcpu_create(vm, i, 0, &cpus[i]), 0);
	assert_int_equal(vcpu_vm_create_gic_v3(vm, GICD_GPA, GICR_GPA, nr_irqs), 0);
}

/* The entry of @g for (group, attr), or fail. */
static struct vcpu_arm64_vgic_reg *gic_entry(struct vcpu_arm64_vgic *g, uint32_t group,
					     uint64_t attr)
{
	for (uint32_t i = 0; i < g->count; i++) {
		struct vcpu_arm64_vgic_reg *e = &vcpu_arm64_vgic_entries(g)[i];

		if (e->group == group && e->attr == attr)
			return e;
	}
	fail_msg("no vGIC register group %u attr 0x%llx", group, (unsigned long long)attr);
	return NULL;
}

#define GRP_DIST 1u
#define GRP_REDIST 5u
#define GRP_CPU 6u
#define GRP_LEVEL 7u
#define AFF1 (1ull << 32) /* vCPU 1: MPIDR Aff0 = 1 */
#define ICC_PMR_EL1 0xc230u /* op0 3, op1 0, CRn 4, CRm 6, op2 0 */

/*
 * The vGIC class: registers set through it read back, set/clear pairs are
 * restored exactly (a bit the saved state lacks is cleared), and a VM
 * without a GIC has no such state.
 */
static void test_arm64_vgic_roundtrip(void **state)
{
	struct fx *f = *state;
	struct vcpu_arm64_vgic *g, *back;
	size_t len, len2;

	open_arch(f, ARM64);
	assert_int_equal(vcpu_vm_get_state(f->vm, VCPU_STATE_ARM64_VGIC, NULL, &len), -ENXIO);
	arm64_gic_vm(f->vm, f->cpu, 96);
	g = vm_get_cls(f->vm, VCPU_STATE_ARM64_VGIC, &len);
	assert_int_equal(len, 8 + 24 * (size_t)g->count);
	gic_entry(g, GRP_DIST, 0x0104)->value = 0x00000300;      /* ISENABLER1: SPIs 40, 41 */
	gic_entry(g, GRP_DIST, 0x0400 + 40)->value = 0x0000a080; /* IPRIORITYR: 40, 41 */
	gic_entry(g, GRP_DIST, 0x6000 + 8 * 41)->value = 0x1;    /* IROUTER41: vCPU 1 */
	gic_entry(g, GRP_DIST, 0x0c00 + 4 * 2)->value = 0x2;     /* ICFGR2: SPI 32 edge */
	gic_entry(g, GRP_LEVEL, 64)->value = 0x4;                /* SPI 66's line high */
	gic_entry(g, GRP_REDIST, AFF1 | 0x10100)->value = 0x08000000; /* ISENABLER0: PPI 27 */
	gic_entry(g, GRP_CPU, AFF1 | ICC_PMR_EL1)->value = 0xf0;
	assert_int_equal(vcpu_vm_set_state(f->vm, VCPU_STATE_ARM64_VGIC, g, len), 0);
	back = vm_get_cls(f->vm, VCPU_STATE_ARM64_VGIC, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(g, back, len);
	/* Restoring the first state clears SPI 41's enable again (ICENABLER, then ISENABLER). */
	gic_entry(g, GRP_DIST, 0x0104)->value = 0x00000100;
	assert_int_equal(vcpu_vm_set_state(f->vm, VCPU_STATE_ARM64_VGIC, g, len), 0);
	free(back);
	back = vm_get_cls(f->vm, VCPU_STATE_ARM64_VGIC, &len2);
	assert_int_equal(gic_entry(back, GRP_DIST, 0x0104)->value, 0x100);
	/* A 32-bit register given more than 32 bits. */
	gic_entry(g, GRP_DIST, 0x0104)->value = 1ull << 32;
	assert_int_equal(vcpu_vm_set_state(f->vm, VCPU_STATE_ARM64_VGIC, g, len), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	free(g);
	free(back);
}

/* The mock's vGIC register rules (arm-vgic-v3.rst), through raw device attributes. */
static void test_arm64_vgic_rules(void **state)
{
	struct fx *f = *state;
	int gic_fd;
	uint32_t v32 = 0;
	uint64_t v64 = 0;
	struct { uint32_t flags, group; uint64_t attr, addr; } a = { 0, GRP_DIST, 0x0104,
								      (uintptr_t)&v32 };
	const unsigned long get = 0x4018aee2ul, set = 0x4018aee1ul; /* KVM_[GS]ET_DEVICE_ATTR */

	open_arch(f, ARM64);
	add_cpu(f, 0);
	add_cpu(f, 1);
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GICD_GPA, GICR_GPA, 64), 0);
	gic_fd = ((const struct kvm_vm_priv *)f->vm->priv)->gic_fd;
	assert_true(gic_fd >= 0);
	v32 = 0x1;
	assert_int_equal(sys_ioctl(f->hv, gic_fd, set, (unsigned long)(uintptr_t)&a), 0);
	a.attr = 0x0184; /* ICENABLER1 */
	v32 = 0x1;
	assert_int_equal(sys_ioctl(f->hv, gic_fd, set, (unsigned long)(uintptr_t)&a), 0);
	a.attr = 0x0104;
	assert_int_equal(sys_ioctl(f->hv, gic_fd, get, (unsigned long)(uintptr_t)&a), 0);
	assert_int_equal(v32, 0);
	a.attr = 0x0108; /* ISENABLER2: SPIs 64-95, past nr_irqs: RAZ/WI */
	v32 = ~0u;
	assert_int_equal(sys_ioctl(f->hv, gic_fd, set, (unsigned long)(uintptr_t)&a), 0);
	assert_int_equal(sys_ioctl(f->hv, gic_fd, get, (unsigned long)(uintptr_t)&a), 0);
	assert_int_equal(v32, 0);
	a.attr = 0x0e00; /* GICD_NSACR: not accessible */
	assert_int_equal(sys_ioctl(f->hv, gic_fd, get, (unsigned long)(uintptr_t)&a), -ENXIO);
	a.group = GRP_REDIST; /* an affinity no vCPU has */
	a.attr = (7ull << 32) | 0x10100;
	assert_int_equal(sys_ioctl(f->hv, gic_fd, get, (unsigned long)(uintptr_t)&a), -EINVAL);
	a.group = GRP_LEVEL; /* INTID not a multiple of 32 */
	a.attr = 33;
	assert_int_equal(sys_ioctl(f->hv, gic_fd, get, (unsigned long)(uintptr_t)&a), -EINVAL);
	a.group = GRP_CPU;
	a.addr = (uintptr_t)&v64;
	a.attr = 0xc645; /* ICC_AP0R1_EL1: beyond 5 priority bits */
	assert_int_equal(sys_ioctl(f->hv, gic_fd, get, (unsigned long)(uintptr_t)&a), -EINVAL);
	a.attr = 0xc664; /* ICC_CTLR_EL1: the read-only PRIbits must match */
	assert_int_equal(sys_ioctl(f->hv, gic_fd, get, (unsigned long)(uintptr_t)&a), 0);
	v64 ^= 1ull << 8;
	assert_int_equal(sys_ioctl(f->hv, gic_fd, set, (unsigned long)(uintptr_t)&a), -EINVAL);
}

/* A snapshot of a VM with a GICv3 restores into a VM with the same GIC, and no other. */
static void test_snapshot_arm64_gic(void **state)
{
	struct fx *f = *state;
	struct env e;
	void *blob = NULL;
	size_t len = 0, l1, l2;
	struct vcpu_snapshot_info info;
	struct vcpu_arm64_vgic *g, *back;

	open_arch(f, ARM64);
	arm64_gic_vm(f->vm, f->cpu, 64);
	g = vm_get_cls(f->vm, VCPU_STATE_ARM64_VGIC, &l1);
	gic_entry(g, GRP_DIST, 0x0104)->value = 0x80000001;
	gic_entry(g, GRP_CPU, AFF1 | ICC_PMR_EL1)->value = 0x80;
	assert_int_equal(vcpu_vm_set_state(f->vm, VCPU_STATE_ARM64_VGIC, g, l1), 0);
	assert_int_equal(vcpu_vm_snapshot(f->vm, &blob, &len), 0);
	assert_int_equal(vcpu_snapshot_info(blob, len, &info), 0);
	assert_int_equal(info.devices, VCPU_SNAPSHOT_DEV_ARM64_GIC_V3);

	env_open(&e, VCPU_BACKEND_KVM, ARM64);
	arm64_gic_vm(e.vm, e.cpu, 64);
	assert_int_equal(vcpu_vm_restore(e.vm, blob, len), 0);
	back = vm_get_cls(e.vm, VCPU_STATE_ARM64_VGIC, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(g, back, l1);
	free(back);
	env_close(&e);
	/* Another interrupt count. */
	env_open(&e, VCPU_BACKEND_KVM, ARM64);
	arm64_gic_vm(e.vm, e.cpu, 96);
	assert_int_equal(vcpu_vm_restore(e.vm, blob, len), -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(e.vm), "interrupts"));
	env_close(&e);
	/* No GIC at all. */
	env_open(&e, VCPU_BACKEND_KVM, ARM64);
	for (uint32_t i = 0; i < 2; i++)
		assert_int_equal(vcpu_create(e.vm, i, 0, &e.cpu[i]), 0);
	assert_int_equal(vcpu_vm_restore(e.vm, blob, len), -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(e.vm), "ARM64_VGIC"));
	env_close(&e);
	free(g);
	free(blob);
}

/* Take an x86 snapshot of the fixture's VM (no irqchip). */
static void *small_snapshot(struct fx *f, size_t *len)
{
	void *blob = NULL;

	x86_source(f, false);
	assert_int_equal(vcpu_vm_snapshot(f->vm, &blob, len), 0);
	return blob;
}


static void test_snapshot_truncated(void **state)
{
	struct fx *f = *state;
	size_t len;
	uint8_t *blob = small_snapshot(f, &len);
	struct vcpu_snapshot_info info;

	for (size_t n = 0; n < len; n++)
		assert_int_equal(vcpu_snapshot_info(blob, n, &info), -EBADMSG);
	assert_int_equal(vcpu_snapshot_info(blob, len, &info), 0);
	free(blob);
}

static void test_snapshot_corrupted(void **state)
{
	struct fx *f = *state;
	struct env e;
	size_t len;
	uint8_t *blob = small_snapshot(f, &len);
	struct vcpu_snapshot_info info;

	/* Every single flipped byte is caught (the CRC covers the whole blob). */
	for (size_t i = 0; i < len; i++) {
		blob[i] ^= 0x10;
		assert_int_not_equal(vcpu_snapshot_info(blob, len, &info), 0);
		blob[i] ^= 0x10;
	}
	env_open(&e, VCPU_BACKEND_KVM, X86);
	blob[len - 1] ^= 1;
	assert_int_equal(vcpu_vm_restore(e.vm, blob, len), -EBADMSG);
	assert_non_null(strstr(vcpu_vm_last_error(e.vm), "CRC"));
	env_close(&e);
	free(blob);
}

/* Structural damage behind a valid CRC: the parser, not the CRC, refuses it. */
static void test_snapshot_bad_structure(void **state)
{
	struct fx *f = *state;
	size_t len;
	uint8_t *blob = small_snapshot(f, &len), *copy = malloc(len);
	struct vcpu_snapshot_info info;
	const size_t sec0 = 40; /* the first section: the layout */

	assert_non_null(copy);
	/* A section length running past the end. */
	memcpy(copy, blob, len);
	put_le(copy + sec0 + 16, 1ull << 40, 8);
	snapshot_fix_crc(copy, len);
	assert_int_equal(vcpu_snapshot_info(copy, len, &info), -EBADMSG);
	/* A region count the section cannot hold. */
	memcpy(copy, blob, len);
	put_le(copy + sec0 + 24, 1000, 4);
	snapshot_fix_crc(copy, len);
	assert_int_equal(vcpu_snapshot_info(copy, len, &info), -EBADMSG);
	/* An unknown section kind. */
	memcpy(copy, blob, len);
	put_le(copy + sec0, 99, 4);
	snapshot_fix_crc(copy, len);
	assert_int_equal(vcpu_snapshot_info(copy, len, &info), -EBADMSG);
	/* More sections than there are. */
	memcpy(copy, blob, len);
	put_le(copy + 24, get_le(copy + 24, 4) + 1, 4);
	snapshot_fix_crc(copy, len);
	assert_int_equal(vcpu_snapshot_info(copy, len, &info), -EBADMSG);
	/* Another architecture's header: its x86 state sections do not belong. */
	memcpy(copy, blob, len);
	put_le(copy + 16, VCPU_ARCH_ARM64, 4);
	snapshot_fix_crc(copy, len);
	assert_int_equal(vcpu_snapshot_info(copy, len, &info), -EBADMSG);
	free(copy);
	free(blob);
}

static void test_snapshot_version(void **state)
{
	struct fx *f = *state;
	struct env e;
	size_t len;
	uint8_t *blob = small_snapshot(f, &len);
	struct vcpu_snapshot_info info;

	put_le(blob + 8, VCPU_SNAPSHOT_VERSION + 1, 4);
	snapshot_fix_crc(blob, len);
	assert_int_equal(vcpu_snapshot_info(blob, len, &info), -EPROTONOSUPPORT);
	env_open(&e, VCPU_BACKEND_KVM, X86);
	assert_int_equal(vcpu_vm_restore(e.vm, blob, len), -EPROTONOSUPPORT);
	assert_non_null(strstr(vcpu_vm_last_error(e.vm), "version"));
	env_close(&e);
	free(blob);
}

static void test_snapshot_foreign(void **state)
{
	struct fx *f = *state;
	struct env e;
	size_t len;
	void *blob = small_snapshot(f, &len);

	/* Another architecture. */
	env_open(&e, VCPU_BACKEND_KVM, ARM64);
	assert_int_equal(vcpu_vm_restore(e.vm, blob, len), -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(e.vm), "arm64"));
	env_close(&e);
	/* Another backend of the same architecture. */
	env_open(&e, VCPU_BACKEND_ACRN, X86);
	assert_int_equal(vcpu_vm_restore(e.vm, blob, len), -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(e.vm), "acrn"));
	env_close(&e);
	free(blob);
}

static void test_snapshot_vm_mismatch(void **state)
{
	struct fx *f = *state;
	struct env e;
	size_t len;
	void *blob = NULL;
	void *ram0 = NULL, *ram1 = NULL;

	x86_source(f, true);
	assert_int_equal(vcpu_vm_snapshot(f->vm, &blob, &len), 0);
	ram0 = guest_ram(f, 4);
	ram1 = guest_ram(f, 2);
	/* No irqchip on the target: the PIC, IOAPIC, PIT and LAPIC states have nowhere to go. */
	x86_target(&e, ram0, ram1, f->page, false);
	assert_int_equal(vcpu_vm_restore(e.vm, blob, len), -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(e.vm), "X86_PIC"));
	env_close(&e);
	/* A vCPU short. */
	x86_target(&e, ram0, ram1, f->page, true);
	assert_int_equal(vcpu_destroy(&e.cpu[3]), 0);
	assert_int_equal(vcpu_vm_restore(e.vm, blob, len), -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(e.vm), "vCPU"));
	assert_int_equal(vcpu_create(e.vm, 2, 0, &e.cpu[2]), 0); /* another id */
	assert_int_equal(vcpu_vm_restore(e.vm, blob, len), -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(e.vm), "no vCPU 3"));
	env_close(&e);
	/* A region of another size. */
	env_open(&e, VCPU_BACKEND_KVM, X86);
	assert_int_equal(vcpu_vm_map(e.vm, 0, ram0, 4 * f->page, 0), 0);
	assert_int_equal(vcpu_vm_map(e.vm, RAM_GPA, ram1, f->page, VCPU_MEM_LOG_DIRTY), 0);
	assert_int_equal(vcpu_vm_restore(e.vm, blob, len), -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(e.vm), "region"));
	env_close(&e);
	free(blob);
}

static void test_snapshot_bad_args(void **state)
{
	struct fx *f = *state;
	void *blob = NULL;
	size_t len = 0;
	struct vcpu_snapshot_info info;
	struct vcpu_snapshot_region reg;
	uint8_t junk[64] = "VCPUSNAP\1"; /* version 1, then nothing that holds */

	open_arch(f, X86);
	assert_int_equal(vcpu_vm_snapshot(NULL, &blob, &len), -EINVAL);
	assert_int_equal(vcpu_vm_snapshot(f->vm, NULL, &len), -EINVAL);
	assert_int_equal(vcpu_vm_snapshot(f->vm, &blob, NULL), -EINVAL);
	assert_int_equal(vcpu_vm_restore(f->vm, NULL, 10), -EINVAL);
	assert_int_equal(vcpu_vm_restore(NULL, junk, sizeof(junk)), -EINVAL);
	assert_int_equal(vcpu_snapshot_info(NULL, 10, &info), -EINVAL);
	assert_int_equal(vcpu_snapshot_info(junk, sizeof(junk), NULL), -EINVAL);
	assert_int_equal(vcpu_snapshot_info(junk, sizeof(junk), &info), -EBADMSG);
	assert_int_equal(vcpu_snapshot_region(junk, sizeof(junk), 0, NULL), -EINVAL);
	assert_int_equal(vcpu_snapshot_region(junk, sizeof(junk), 0, &reg), -EBADMSG);
	assert_int_equal(vcpu_vm_restore(f->vm, junk, sizeof(junk)), -EBADMSG);
	expect_detail(vcpu_vm_last_error(f->vm));
}

/* An empty VM (no vCPU, no memory) snapshots and restores too. */
static void test_snapshot_empty_vm(void **state)
{
	struct fx *f = *state;
	struct env e;
	void *blob = NULL;
	size_t len = 0;
	struct vcpu_snapshot_info info;

	open_arch(f, X86);
	assert_int_equal(vcpu_vm_snapshot(f->vm, &blob, &len), 0);
	assert_int_equal(vcpu_snapshot_info(blob, len, &info), 0);
	assert_int_equal(info.nr_vcpus, 0);
	assert_int_equal(info.nr_regions, 0);
	env_open(&e, VCPU_BACKEND_KVM, X86);
	assert_int_equal(vcpu_vm_restore(e.vm, blob, len), 0);
	env_close(&e);
	free(blob);
}

/*
 * Each driver call of a save fails in turn: the snapshot fails with that
 * error, allocates nothing the caller sees, leaks nothing (the teardown
 * counts fds and mappings), and the source VM still runs afterwards.
 */
static void test_snapshot_fault_each_call(void **state)
{
	struct fx *f = *state;
	void *blob = NULL;
	size_t len = 0;
	uint64_t calls, base;
	unsigned failed = 0;
	const struct vcpu_mock_step steps[] = { mmio_write(MMIO_BASE, 4, 7), stop() };
	struct rec r;

	x86_source(f, true);
	base = vcpu_mock_calls(f->mock);
	assert_int_equal(vcpu_vm_snapshot(f->vm, &blob, &len), 0);
	free(blob);
	calls = vcpu_mock_calls(f->mock) - base;
	assert_true(calls > 10);
	for (uint64_t k = 1; k <= calls; k++) {
		blob = (void *)1;
		assert_int_equal(vcpu_mock_fail_call(f->mock, vcpu_mock_calls(f->mock) + k, EIO), 0);
		int rc = vcpu_vm_snapshot(f->vm, &blob, &len);

		assert_int_equal(vcpu_mock_fail_call(f->mock, 0, EIO), 0);
		if (rc == 0) {
			free(blob); /* the failed call was one a save may skip (a refused MSR) */
			continue;
		}
		failed++;
		assert_int_equal(rc, -EIO);
		assert_ptr_equal(blob, (void *)1);
		expect_detail(vcpu_vm_last_error(f->vm));
	}
	assert_true(failed > calls / 2);
	rec_init(&r);
	SCRIPT(f, 0, steps);
	assert_int_equal(vcpu_run(f->cpu[0], &H_MMIO_ONLY, &r), VCPU_STOP);
	expect_script(f, 0, 2);
}

/* Each driver call of a restore fails in turn: an error, and nothing leaks. */
static void test_restore_fault_each_call(void **state)
{
	struct fx *f = *state;
	struct env e;
	void *blob = NULL, *ram0, *ram1;
	size_t len = 0;
	uint64_t calls, base;

	x86_source(f, true);
	assert_int_equal(vcpu_vm_snapshot(f->vm, &blob, &len), 0);
	ram0 = guest_ram(f, 4);
	ram1 = guest_ram(f, 2);
	x86_target(&e, ram0, ram1, f->page, true);
	base = vcpu_mock_calls(e.mock);
	assert_int_equal(vcpu_vm_restore(e.vm, blob, len), 0);
	calls = vcpu_mock_calls(e.mock) - base;
	env_close(&e);
	for (uint64_t k = 1; k <= calls; k++) {
		x86_target(&e, ram0, ram1, f->page, true);
		assert_int_equal(vcpu_mock_fail_call(e.mock, vcpu_mock_calls(e.mock) + k, EIO), 0);
		assert_int_equal(vcpu_vm_restore(e.vm, blob, len), -EIO);
		expect_detail(vcpu_vm_last_error(e.vm));
		env_close(&e);
	}
	free(blob);
}

/* Backends whose ABI has no state access say so beforehand and refuse clearly. */
static void test_state_unsupported_backends(void **state)
{
	static const struct {
		enum vcpu_backend b;
		uint32_t arch;
		uint32_t cls;
	} cases[] = {
		{ VCPU_BACKEND_GUNYAH, VCPU_ARCH_ARM64, VCPU_STATE_ARM64_REGS },
		{ VCPU_BACKEND_GENIEZONE, VCPU_ARCH_ARM64, VCPU_STATE_ARM64_REGS },
		{ VCPU_BACKEND_ACRN, VCPU_ARCH_X86_64, VCPU_STATE_X86_REGS },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct env e;
		uint64_t v = 9;
		uint8_t buf[8];
		size_t len = sizeof(buf);
		void *blob = NULL;

		env_open(&e, cases[i].b, cases[i].arch);
		assert_int_equal(vcpu_hv_check(e.hv, VCPU_CAP_STATE, &v), 0);
		assert_int_equal(v, 0);
		assert_int_equal(vcpu_create(e.vm, 0, 0, &e.cpu[0]), 0);
		assert_int_equal(vcpu_get_state(e.cpu[0], cases[i].cls, buf, &len), -EOPNOTSUPP);
		assert_non_null(strstr(vcpu_last_error(e.cpu[0]), vcpu_backend_name(cases[i].b)));
		assert_int_equal(vcpu_vm_snapshot(e.vm, &blob, &len), -EOPNOTSUPP);
		expect_detail(vcpu_vm_last_error(e.vm));
		assert_null(blob);
		env_close(&e);
	}
}

static void test_state_cap_kvm(void **state)
{
	struct fx *f = *state;
	uint64_t v = 0;

	open_arch(f, X86);
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_STATE, &v), 0);
	assert_int_equal(v, 1);
}

/* ------------------------------------------------------------------------ */

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_x86_regs_sregs_roundtrip),
		T(test_x86_xsave_roundtrip),
		T(test_x86_xcrs_debugregs_events),
		T(test_x86_msrs),
		T(test_x86_tsc_khz),
		T(test_x86_lapic_needs_irqchip),
		T(test_x86_vm_devices),
		T(test_mp_state_both_arches),
		T(test_arm64_regs_roundtrip),
		T(test_get_state_sizes),
		T(test_state_busy_while_running),
		T(test_stop_completes_read_arm64),
		T(test_stop_completes_read_x86),
		T(test_snapshot_x86_roundtrip),
		T(test_snapshot_arm64_roundtrip),
		T(test_arm64_sve_snapshot),
		T(test_arm64_vgic_roundtrip),
		T(test_arm64_vgic_rules),
		T(test_snapshot_arm64_gic),
		T(test_snapshot_truncated),
		T(test_snapshot_corrupted),
		T(test_snapshot_bad_structure),
		T(test_snapshot_version),
		T(test_snapshot_foreign),
		T(test_snapshot_vm_mismatch),
		T(test_snapshot_bad_args),
		T(test_snapshot_empty_vm),
		T(test_snapshot_fault_each_call),
		T(test_restore_fault_each_call),
		T(test_state_unsupported_backends),
		T(test_state_cap_kvm),
	};

	mallopt(M_ARENA_MAX, 1);
	return cmocka_run_group_tests_name("state", tests, NULL, NULL);
}
