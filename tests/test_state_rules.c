// SPDX-License-Identifier: MIT
/*
 * The `state` suite, driver side: the mock KVM driver's state save/restore
 * ioctls (doc/abi/kvm.md §8) keep the Linux 6.1 kernel's rules.  Each case
 * shows one rule with raw ioctls through the seam (sys_ioctl(), which
 * returns the driver's answer: -errno, 0, or a count), on the fixture of
 * the mock suites (mock_fixture.h: leak accounting around every test).
 *
 * Kernel references: arch/x86/kvm/x86.c (msr_io, kvm_arch_vcpu_ioctl,
 * kvm_arch_vm_ioctl), arch/x86/kernel/fpu/xstate.c (copy_uabi_to_xstate),
 * arch/x86/kvm/lapic.c, i8254.c, ioapic.c; arch/arm64/kvm/guest.c,
 * hypercalls.c, arch_timer.c.
 */
#define _GNU_SOURCE
/* Before the fixture: it names some exit reasons as macros the ABI header has as an enum. */
#include "kvm/kvm_abi.h"

#include "mock_fixture.h"

/* Architectural MSR numbers (SDM vol. 4) the model keeps. */
#define MSR_IA32_TSC 0x10u
#define MSR_IA32_SYSENTER_EIP 0x176u
#define MSR_IA32_MISC_ENABLE 0x1a0u
#define MSR_IA32_CR_PAT 0x277u
#define MSR_STAR 0xc0000081u
#define MSR_LSTAR 0xc0000082u
#define MSR_TSC_AUX 0xc0000103u
#define MSR_UNKNOWN 0x12345u
#define PAT_DEFAULT 0x0007040600070406ull

#define NMODEL_MSRS 13u

static int ioc(struct fx *f, int fd, unsigned long req, const void *arg)
{
	return sys_ioctl(f->hv, fd, req, (unsigned long)(uintptr_t)arg);
}

static int cpu_ioc(struct fx *f, uint32_t id, unsigned long req, const void *arg)
{
	return ioc(f, f->cpu[id]->fd, req, arg);
}

static int vm_ioc(struct fx *f, unsigned long req, const void *arg)
{
	return ioc(f, f->vm->fd, req, arg);
}

static int check_ext(struct fx *f, unsigned long cap)
{
	return sys_ioctl(f->hv, f->hv->fd, KVM_CHECK_EXTENSION, cap);
}

#define MSRS_ROOM 8u

/* A zeroed kvm_msrs with room for MSRS_ROOM entries (free() it). */
static struct kvm_msrs *msrs_new(void)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + MSRS_ROOM * sizeof(struct kvm_msr_entry));

	assert_non_null(m);
	return m;
}

static void msrs_add(struct kvm_msrs *m, uint32_t index, uint64_t data)
{
	assert_true(m->nmsrs < MSRS_ROOM);
	m->entries[m->nmsrs++] = (struct kvm_msr_entry){ .index = index, .data = data };
}

static int set_msr(struct fx *f, uint32_t index, uint64_t data)
{
	struct kvm_msrs *m = msrs_new();
	int r;

	msrs_add(m, index, data);
	r = cpu_ioc(f, 0, KVM_SET_MSRS, m);
	free(m);
	return r;
}

static uint64_t get_msr(struct fx *f, uint32_t index)
{
	struct kvm_msrs *m = msrs_new();
	uint64_t v;

	msrs_add(m, index, 0xdeadbeef);
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_MSRS, m), 1);
	v = m->entries[0].data;
	free(m);
	return v;
}

/* ======================================================================== */
/* x86 MSRs                                                                 */

/* KVM_GET_MSR_INDEX_LIST: nmsrs too small is E2BIG with the count written back. */
static void test_msr_index_list(void **state)
{
	struct fx *f = *state;
	const uint32_t room = 32;
	struct kvm_msr_list *l = calloc(1, sizeof(*l) + room * sizeof(uint32_t));

	assert_non_null(l);
	open_arch(f, X86);
	assert_int_equal(ioc(f, f->hv->fd, KVM_GET_MSR_INDEX_LIST, l), -E2BIG);
	assert_int_equal(l->nmsrs, NMODEL_MSRS);
	assert_int_equal(l->indices[0], 0); /* nothing copied on E2BIG */
	l->nmsrs = NMODEL_MSRS - 1;
	assert_int_equal(ioc(f, f->hv->fd, KVM_GET_MSR_INDEX_LIST, l), -E2BIG);
	assert_int_equal(l->nmsrs, NMODEL_MSRS);
	l->nmsrs = room;
	assert_int_equal(ioc(f, f->hv->fd, KVM_GET_MSR_INDEX_LIST, l), 0);
	assert_int_equal(l->nmsrs, NMODEL_MSRS);
	assert_int_equal(l->indices[0], MSR_IA32_TSC);
	assert_int_equal(l->indices[5], MSR_IA32_MISC_ENABLE);
	assert_int_equal(l->indices[6], MSR_IA32_CR_PAT);
	assert_int_equal(l->indices[NMODEL_MSRS - 1], MSR_TSC_AUX);
	assert_int_equal(l->indices[NMODEL_MSRS], 0);
	/* A /dev/kvm ioctl only: not on the VM fd. */
	assert_int_equal(vm_ioc(f, KVM_GET_MSR_INDEX_LIST, l), -ENOTTY);
	free(l);
}

/* msr_io(): the batch stops at the first unknown MSR and returns the count done. */
static void test_msrs_stop_at_unknown(void **state)
{
	struct fx *f = *state;
	struct kvm_msrs *m = msrs_new();

	open_one(f, X86);
	msrs_add(m, MSR_STAR, 0x0023001000000000ull);
	msrs_add(m, MSR_UNKNOWN, 1);
	msrs_add(m, MSR_LSTAR, 0xffffffff81000000ull);
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_MSRS, m), 1);
	assert_int_equal(get_msr(f, MSR_STAR), 0x0023001000000000ull);
	assert_int_equal(get_msr(f, MSR_LSTAR), 0); /* never reached */

	m->nmsrs = 0;
	msrs_add(m, MSR_IA32_CR_PAT, 0);
	msrs_add(m, MSR_IA32_MISC_ENABLE, 0);
	msrs_add(m, MSR_UNKNOWN, 0x5555);
	msrs_add(m, MSR_IA32_TSC, 0x7777);
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_MSRS, m), 2);
	assert_int_equal(m->entries[0].data, PAT_DEFAULT);
	assert_int_equal(m->entries[1].data, 0x1800); /* PEBS_UNAVAIL | BTS_UNAVAIL at RESET */
	assert_int_equal(m->entries[2].data, 0x5555); /* left as sent */
	assert_int_equal(m->entries[3].data, 0x7777);

	/* An unknown MSR first: nothing done, which is 0, not an error. */
	m->nmsrs = 0;
	msrs_add(m, MSR_UNKNOWN, 0);
	msrs_add(m, MSR_IA32_TSC, 0);
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_MSRS, m), 0);
	free(m);
}

/* msr_io(): nmsrs >= MAX_IO_MSRS (256) is E2BIG before any entry is read. */
static void test_msrs_e2big(void **state)
{
	struct fx *f = *state;
	struct kvm_msrs *m;
	size_t bytes = sizeof(*m) + KVM_MAX_IO_MSRS * sizeof(struct kvm_msr_entry);

	open_one(f, X86);
	m = calloc(1, bytes);
	assert_non_null(m);
	m->nmsrs = KVM_MAX_IO_MSRS;
	for (uint32_t i = 0; i < KVM_MAX_IO_MSRS; i++)
		m->entries[i] = (struct kvm_msr_entry){ .index = MSR_STAR, .data = 42 };
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_MSRS, m), -E2BIG);
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_MSRS, m), -E2BIG);
	assert_int_equal(get_msr(f, MSR_STAR), 0);
	m->nmsrs = KVM_MAX_IO_MSRS - 1; /* 255 is allowed */
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_MSRS, m), (int)KVM_MAX_IO_MSRS - 1);
	assert_int_equal(get_msr(f, MSR_STAR), 42);
	free(m);
}

/* __kvm_set_msr()/kvm_set_msr_common(): the value rules of a host write. */
static void test_msr_value_rules(void **state)
{
	struct fx *f = *state;

	open_one(f, X86);
	/* PAT: every byte a valid memory type (0, 1, 4, 5, 6, 7); 2 and 3 are reserved. */
	assert_int_equal(set_msr(f, MSR_IA32_CR_PAT, 0x0007040600070402ull), 0);
	assert_int_equal(set_msr(f, MSR_IA32_CR_PAT, 0x0807040600070406ull), 0);
	assert_int_equal(get_msr(f, MSR_IA32_CR_PAT), PAT_DEFAULT);
	assert_int_equal(set_msr(f, MSR_IA32_CR_PAT, 0x0706050401000706ull), 1);
	assert_int_equal(get_msr(f, MSR_IA32_CR_PAT), 0x0706050401000706ull);
	/* TSC_AUX: 32 bits. */
	assert_int_equal(set_msr(f, MSR_TSC_AUX, 1ull << 32), 0);
	assert_int_equal(set_msr(f, MSR_TSC_AUX, 0xffffffffull), 1);
	/* LSTAR: canonical (48-bit) addresses only. */
	assert_int_equal(set_msr(f, MSR_LSTAR, 0x0000800000000000ull), 0);
	assert_int_equal(set_msr(f, MSR_LSTAR, 0xffff800000000000ull), 1);
	assert_int_equal(get_msr(f, MSR_LSTAR), 0xffff800000000000ull);
	/* SYSENTER_EIP: made canonical rather than refused (AMD ignores the upper half). */
	assert_int_equal(set_msr(f, MSR_IA32_SYSENTER_EIP, 0x0000812345678000ull), 1);
	assert_int_equal(get_msr(f, MSR_IA32_SYSENTER_EIP), 0xffff812345678000ull);
}

/* ======================================================================== */
/* x86 XSAVE, XCRs, debug registers                                         */

static uint64_t xs_u64(const struct kvm_xsave *x, size_t off)
{
	uint64_t v;

	memcpy(&v, (const uint8_t *)x + off, sizeof(v));
	return v;
}

static void xs_put(struct kvm_xsave *x, size_t off, uint64_t v, size_t len)
{
	memcpy((uint8_t *)x + off, &v, len);
}

/* copy_uabi_to_xstate(): header and MXCSR checks, all before anything changes. */
static void test_xsave_rules(void **state)
{
	struct fx *f = *state;
	struct kvm_xsave *x = calloc(1, sizeof(*x)), *y = calloc(1, sizeof(*y)), *good;

	assert_non_null(x);
	assert_non_null(y);
	open_one(f, X86);
	assert_int_equal(check_ext(f, KVM_CAP_XSAVE), 1);
	assert_int_equal(check_ext(f, KVM_CAP_XSAVE2), (int)sizeof(struct kvm_xsave));
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_XSAVE, x), 0);
	assert_int_equal(xs_u64(x, 0) & 0xffff, 0x37f);       /* FCW */
	assert_int_equal(xs_u64(x, 24) & 0xffffffff, 0x1f80); /* MXCSR */
	assert_int_equal(xs_u64(x, 512), 0x3);                /* XSTATE_BV */
	assert_int_equal(xs_u64(x, 520), 0);                  /* XCOMP_BV */
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_XSAVE2, y), 0);
	assert_memory_equal(x, y, sizeof(*x));

	good = calloc(1, sizeof(*good));
	assert_non_null(good);
	memcpy(good, x, sizeof(*x));
	xs_put(good, 160, 0x1122334455667788ull, 8); /* XMM0 */

	memcpy(y, good, sizeof(*y));
	xs_put(y, 512, 0x8, 8); /* XSTATE_BV: MPX BNDREGS, not supported */
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_XSAVE, y), -EINVAL);
	memcpy(y, good, sizeof(*y));
	xs_put(y, 520, 1ull << 63, 8); /* XCOMP_BV: compacted format */
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_XSAVE, y), -EINVAL);
	memcpy(y, good, sizeof(*y));
	((uint8_t *)y)[575] = 1; /* the last reserved header byte */
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_XSAVE, y), -EINVAL);
	memcpy(y, good, sizeof(*y));
	xs_put(y, 24, 0x11f80, 4); /* MXCSR bit 16 */
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_XSAVE, y), -EINVAL);
	/* Nothing of the refused images landed. */
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_XSAVE, y), 0);
	assert_memory_equal(x, y, sizeof(*x));

	/* MXCSR is checked only when XSTATE_BV has x87, SSE or AVX. */
	memcpy(y, good, sizeof(*y));
	xs_put(y, 512, 0, 8);
	xs_put(y, 24, 0x11f80, 4);
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_XSAVE, y), 0);
	/* A valid image round-trips. */
	xs_put(good, 512, 0x7, 8);
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_XSAVE, good), 0);
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_XSAVE, y), 0);
	assert_memory_equal(good, y, sizeof(*y));
	free(good);
	free(x);
	free(y);
}

static uint64_t xcr0_of(struct fx *f)
{
	struct kvm_xcrs x;

	memset(&x, 0xa5, sizeof(x));
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_XCRS, &x), 0);
	assert_int_equal(x.nr_xcrs, 1);
	assert_int_equal(x.flags, 0);
	assert_int_equal(x.xcrs[0].xcr, 0);
	assert_int_equal(x.xcrs[1].xcr, 0); /* the rest zeroed */
	assert_int_equal(x.padding[15], 0);
	return x.xcrs[0].value;
}

static int set_xcr0(struct fx *f, uint32_t nr, uint32_t flags, uint64_t value)
{
	struct kvm_xcrs x;

	memset(&x, 0, sizeof(x));
	x.nr_xcrs = nr;
	x.flags = flags;
	x.xcrs[0].value = value;
	return cpu_ioc(f, 0, KVM_SET_XCRS, &x);
}

/* kvm_vcpu_ioctl_x86_set_xcrs() and __kvm_set_xcr(). */
static void test_xcrs_rules(void **state)
{
	struct fx *f = *state;
	struct kvm_xcrs x;

	open_one(f, X86);
	assert_int_equal(check_ext(f, KVM_CAP_XCRS), 1);
	assert_int_equal(xcr0_of(f), 0x1);
	assert_int_equal(set_xcr0(f, KVM_MAX_XCRS + 1, 0, 0x3), -EINVAL);
	assert_int_equal(set_xcr0(f, 1, 1, 0x3), -EINVAL);
	assert_int_equal(set_xcr0(f, 1, 0, 0x2), -EINVAL); /* no x87 */
	assert_int_equal(set_xcr0(f, 1, 0, 0x5), -EINVAL); /* AVX without SSE */
	assert_int_equal(set_xcr0(f, 1, 0, 0xf), -EINVAL); /* beyond the host's 0x7 */
	assert_int_equal(xcr0_of(f), 0x1);
	assert_int_equal(set_xcr0(f, 1, 0, 0x7), 0);
	assert_int_equal(xcr0_of(f), 0x7);
	/* nr_xcrs 0 changes nothing; an entry for another XCR is passed over. */
	assert_int_equal(set_xcr0(f, 0, 0, 0x3), 0);
	assert_int_equal(xcr0_of(f), 0x7);
	memset(&x, 0, sizeof(x));
	x.nr_xcrs = 2;
	x.xcrs[0] = (struct kvm_xcr){ .xcr = 1, .value = 0xdead };
	x.xcrs[1] = (struct kvm_xcr){ .xcr = 0, .value = 0x3 };
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_XCRS, &x), 0);
	assert_int_equal(xcr0_of(f), 0x3);
}

/* kvm_vcpu_ioctl_x86_set_debugregs(): flags 0, DR6/DR7 without bits 63:32. */
static void test_debugregs_rules(void **state)
{
	struct fx *f = *state;
	struct kvm_debugregs d, g;

	open_one(f, X86);
	assert_int_equal(check_ext(f, KVM_CAP_DEBUGREGS), 1);
	memset(&g, 0xa5, sizeof(g));
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_DEBUGREGS, &g), 0);
	assert_int_equal(g.dr6, 0xffff0ff0);
	assert_int_equal(g.dr7, 0x400);
	assert_int_equal(g.db[3], 0);
	assert_int_equal(g.flags, 0);
	assert_int_equal(g.reserved[8], 0);

	memset(&d, 0, sizeof(d));
	d.db[0] = 0x1000;
	d.db[3] = 0xffffffff81000000ull;
	d.dr6 = 0xffff4ff1;
	d.dr7 = 0x403;
	d.flags = 1;
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_DEBUGREGS, &d), -EINVAL);
	d.flags = 0;
	d.dr6 |= 1ull << 32;
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_DEBUGREGS, &d), -EINVAL);
	d.dr6 = 0xffff4ff1;
	d.dr7 |= 1ull << 63;
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_DEBUGREGS, &d), -EINVAL);
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_DEBUGREGS, &g), 0);
	assert_int_equal(g.db[0], 0); /* nothing applied */
	d.dr7 = 0x403;
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_DEBUGREGS, &d), 0);
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_DEBUGREGS, &g), 0);
	assert_memory_equal(&d, &g, sizeof(d));
}

/* ======================================================================== */
/* x86 vCPU events                                                          */

static struct kvm_vcpu_events events_of(struct fx *f)
{
	struct kvm_vcpu_events e;

	memset(&e, 0xa5, sizeof(e));
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_VCPU_EVENTS, &e), 0);
	return e;
}

/* kvm_vcpu_ioctl_x86_{get,set}_vcpu_events() without the payload and triple-fault caps. */
static void test_vcpu_events_rules(void **state)
{
	struct fx *f = *state;
	struct kvm_vcpu_events e, g;
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_INIT_RECEIVED };

	open_one(f, X86);
	assert_int_equal(check_ext(f, KVM_CAP_VCPU_EVENTS), 1);
	g = events_of(f);
	/* sipi_vector is never reported: SIPI_VECTOR is not among the flags. */
	assert_int_equal(g.flags, KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW |
					  KVM_VCPUEVENT_VALID_SMM);
	assert_int_equal(g.exception.injected, 0);
	assert_int_equal(g.reserved[0], 0);

	memset(&e, 0, sizeof(e));
	e.flags = 0x40;
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_VCPU_EVENTS, &e), -EINVAL);
	e.flags = KVM_VCPUEVENT_VALID_PAYLOAD; /* KVM_CAP_EXCEPTION_PAYLOAD not enabled */
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_VCPU_EVENTS, &e), -EINVAL);
	e.flags = 0;
	e.exception.injected = 1;
	e.exception.nr = 2; /* the NMI vector */
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_VCPU_EVENTS, &e), -EINVAL);
	e.exception.nr = 32;
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_VCPU_EVENTS, &e), -EINVAL);

	/* A valid set; guarded fields only under their flag. */
	memset(&e, 0, sizeof(e));
	e.exception.injected = 1;
	e.exception.nr = 14;
	e.exception.has_error_code = 1;
	e.exception.error_code = 0x2;
	e.interrupt.injected = 1;
	e.interrupt.nr = 0x30;
	e.interrupt.shadow = 0x2; /* STI, but VALID_SHADOW is not set */
	e.nmi.pending = 1;        /* VALID_NMI_PENDING not set either */
	e.nmi.masked = 1;
	e.smi.pending = 1;        /* nor VALID_SMM */
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_VCPU_EVENTS, &e), 0);
	g = events_of(f);
	assert_int_equal(g.exception.injected, 1);
	assert_int_equal(g.exception.nr, 14);
	assert_int_equal(g.exception.has_error_code, 1);
	assert_int_equal(g.exception.error_code, 0x2);
	assert_int_equal(g.interrupt.injected, 1);
	assert_int_equal(g.interrupt.nr, 0x30);
	assert_int_equal(g.interrupt.shadow, 0);
	assert_int_equal(g.nmi.pending, 0);
	assert_int_equal(g.nmi.masked, 1);
	assert_int_equal(g.smi.pending, 0);
	e.flags = KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_NMI_PENDING |
		  KVM_VCPUEVENT_VALID_SMM;
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_VCPU_EVENTS, &e), 0);
	g = events_of(f);
	assert_int_equal(g.interrupt.shadow, 0x2);
	assert_int_equal(g.nmi.pending, 1);
	assert_int_equal(g.smi.pending, 1);

	/* Without VALID_PAYLOAD a pending exception is dropped, so its vector is not checked. */
	memset(&e, 0, sizeof(e));
	e.exception.pending = 1;
	e.exception.nr = 200;
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_VCPU_EVENTS, &e), 0);
	g = events_of(f);
	assert_int_equal(g.exception.pending, 0);
	assert_int_equal(g.exception.injected, 0);
	/* A software exception (#BP) is not reported as injected. */
	e.exception.pending = 0;
	e.exception.injected = 1;
	e.exception.nr = 3;
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_VCPU_EVENTS, &e), 0);
	assert_int_equal(events_of(f).exception.injected, 0);

	/* KVM_CAP_X86_TRIPLE_FAULT_EVENT not enabled. */
	memset(&e, 0, sizeof(e));
	e.flags = KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_VCPU_EVENTS, &e), -EINVAL);

	/* INITs are latched while in SMM: no SMM state for a vCPU in INIT_RECEIVED. */
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_MP_STATE, &mp), 0);
	memset(&e, 0, sizeof(e));
	e.flags = KVM_VCPUEVENT_VALID_SMM;
	e.smi.smm = 1;
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_VCPU_EVENTS, &e), -EINVAL);
	e.smi.smm = 0;
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_VCPU_EVENTS, &e), 0);
}

/* ======================================================================== */
/* x86 in-kernel irqchip state: LAPIC, PIC/IOAPIC, PIT                      */

static uint32_t apic_reg(const struct kvm_lapic_state *s, unsigned off)
{
	uint32_t v;

	memcpy(&v, &s->regs[off], sizeof(v));
	return v;
}

/* KVM_GET/SET_LAPIC: EINVAL without the in-kernel LAPIC (not ENXIO). */
static void test_lapic_without_irqchip(void **state)
{
	struct fx *f = *state;
	struct kvm_lapic_state s;

	memset(&s, 0, sizeof(s));
	open_one(f, X86);
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_LAPIC, &s), -EINVAL);
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_LAPIC, &s), -EINVAL);
}

static void test_lapic_round_trip(void **state)
{
	struct fx *f = *state;
	struct kvm_lapic_state s, g;

	open_arch(f, X86);
	assert_int_equal(vm_ioc(f, KVM_CREATE_IRQCHIP, NULL), 0);
	add_cpu(f, 0);
	add_cpu(f, 1);
	assert_int_equal(cpu_ioc(f, 1, KVM_GET_LAPIC, &s), 0);
	assert_int_equal(apic_reg(&s, 0x20), 1u << 24); /* APIC ID = vcpu_id << 24 */
	assert_int_equal(apic_reg(&s, 0x30), 0x50014);  /* version */
	assert_int_equal(apic_reg(&s, 0xe0), 0xffffffff); /* DFR */
	assert_int_equal(apic_reg(&s, 0xf0), 0xff);     /* SPIV */
	assert_int_equal(apic_reg(&s, 0x350), 0x10000); /* LINT0 masked on an AP */
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_LAPIC, &s), 0);
	assert_int_equal(apic_reg(&s, 0x20), 0);
	assert_int_equal(apic_reg(&s, 0x350), 0x700);   /* the BSP's LINT0: ExtINT */

	/* Any APIC ID is taken; KVM rewrites the version register. */
	s.regs[0x23] = 0x7f;
	s.regs[0xf1] = 0x01; /* SPIV: APIC software-enabled */
	s.regs[0x30] = 0x99;
	assert_int_equal(cpu_ioc(f, 0, KVM_SET_LAPIC, &s), 0);
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_LAPIC, &g), 0);
	assert_int_equal(apic_reg(&g, 0x20), 0x7fu << 24);
	assert_int_equal(apic_reg(&g, 0xf0), 0x1ff);
	assert_int_equal(apic_reg(&g, 0x30), 0x50014);
	s.regs[0x30] = 0x14;
	assert_memory_equal(&s, &g, sizeof(s));
}

/* KVM_GET/SET_IRQCHIP: ENXIO without the irqchip, EINVAL for a chip_id past the IOAPIC. */
static void test_irqchip_rules(void **state)
{
	struct fx *f = *state;
	struct kvm_irqchip c, g;

	open_arch(f, X86);
	memset(&c, 0, sizeof(c));
	assert_int_equal(vm_ioc(f, KVM_GET_IRQCHIP, &c), -ENXIO);
	assert_int_equal(vm_ioc(f, KVM_SET_IRQCHIP, &c), -ENXIO);
	assert_int_equal(vm_ioc(f, KVM_CREATE_IRQCHIP, NULL), 0);
	c.chip_id = 3;
	assert_int_equal(vm_ioc(f, KVM_GET_IRQCHIP, &c), -EINVAL);
	assert_int_equal(vm_ioc(f, KVM_SET_IRQCHIP, &c), -EINVAL);

	/* The state after KVM_CREATE_IRQCHIP. */
	c.chip_id = KVM_IRQCHIP_PIC_MASTER;
	assert_int_equal(vm_ioc(f, KVM_GET_IRQCHIP, &c), 0);
	assert_int_equal(c.chip.pic.bytes[15], 0xf8); /* elcr_mask */
	c.chip_id = KVM_IRQCHIP_PIC_SLAVE;
	assert_int_equal(vm_ioc(f, KVM_GET_IRQCHIP, &c), 0);
	assert_int_equal(c.chip.pic.bytes[15], 0xde);
	c.chip_id = KVM_IRQCHIP_IOAPIC;
	assert_int_equal(vm_ioc(f, KVM_GET_IRQCHIP, &c), 0);
	assert_int_equal(c.chip.ioapic.base_address, 0xfec00000ull);
	for (int i = 0; i < 24; i++)
		assert_int_equal(c.chip.ioapic.redirtbl[i], 0x10000); /* masked */

	/* Round trips. */
	memset(&c, 0, sizeof(c));
	c.chip_id = KVM_IRQCHIP_PIC_SLAVE;
	for (int i = 0; i < 16; i++)
		c.chip.pic.bytes[i] = (uint8_t)(0x10 + i);
	assert_int_equal(vm_ioc(f, KVM_SET_IRQCHIP, &c), 0);
	memset(&g, 0, sizeof(g));
	g.chip_id = KVM_IRQCHIP_PIC_SLAVE;
	assert_int_equal(vm_ioc(f, KVM_GET_IRQCHIP, &g), 0);
	assert_memory_equal(&c, &g, sizeof(c));
	g.chip_id = KVM_IRQCHIP_PIC_MASTER;
	assert_int_equal(vm_ioc(f, KVM_GET_IRQCHIP, &g), 0);
	assert_int_equal(g.chip.pic.bytes[15], 0xf8); /* the other PIC is untouched */

	memset(&c, 0, sizeof(c));
	c.chip_id = KVM_IRQCHIP_IOAPIC;
	c.chip.ioapic.base_address = 0xfec00000ull;
	c.chip.ioapic.id = 2;
	c.chip.ioapic.ioregsel = 0x10;
	for (int i = 0; i < 24; i++)
		c.chip.ioapic.redirtbl[i] = 0x10000 | (uint64_t)(0x20 + i);
	c.chip.ioapic.redirtbl[4] = 0x0100000000000031ull; /* unmasked, to APIC 1 */
	assert_int_equal(vm_ioc(f, KVM_SET_IRQCHIP, &c), 0);
	memset(&g, 0, sizeof(g));
	g.chip_id = KVM_IRQCHIP_IOAPIC;
	assert_int_equal(vm_ioc(f, KVM_GET_IRQCHIP, &g), 0);
	assert_memory_equal(&c.chip.ioapic, &g.chip.ioapic, sizeof(c.chip.ioapic));
}

/* KVM_GET/SET_PIT2: ENXIO without KVM_CREATE_PIT2; a count of 0 loads as 0x10000. */
static void test_pit2_rules(void **state)
{
	struct fx *f = *state;
	struct kvm_pit_config cfg = { .flags = 0 };
	struct kvm_pit_state2 s, g;

	open_arch(f, X86);
	assert_int_equal(check_ext(f, KVM_CAP_PIT_STATE2), 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(vm_ioc(f, KVM_GET_PIT2, &s), -ENXIO);
	assert_int_equal(vm_ioc(f, KVM_CREATE_IRQCHIP, NULL), 0);
	assert_int_equal(vm_ioc(f, KVM_GET_PIT2, &s), -ENXIO); /* the irqchip alone has no PIT */
	assert_int_equal(vm_ioc(f, KVM_SET_PIT2, &s), -ENXIO);
	assert_int_equal(vm_ioc(f, KVM_CREATE_PIT2, &cfg), 0);

	/* kvm_pit_reset(): no mode programmed, gate high but channel 2's, count 0x10000. */
	memset(&s, 0xa5, sizeof(s));
	assert_int_equal(vm_ioc(f, KVM_GET_PIT2, &s), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(s.channels[i].mode, 0xff);
		assert_int_equal(s.channels[i].gate, i != 2);
		assert_int_equal(s.channels[i].count, 0x10000);
	}
	assert_int_equal(s.flags, 0);
	assert_int_equal(s.reserved[8], 0);

	memset(&s, 0, sizeof(s));
	s.channels[0] = (struct kvm_pit_channel_state){ .count = 0x2e9c, .mode = 2, .rw_mode = 3,
							 .gate = 1, .read_state = 3,
							 .write_state = 3 };
	s.channels[1] = (struct kvm_pit_channel_state){ .count = 0, .mode = 0xff, .gate = 1 };
	s.channels[2] = (struct kvm_pit_channel_state){ .count = 0x533, .mode = 3 };
	s.flags = KVM_PIT_FLAGS_SPEAKER_DATA_ON;
	s.reserved[0] = 7;
	assert_int_equal(vm_ioc(f, KVM_SET_PIT2, &s), 0);
	assert_int_equal(vm_ioc(f, KVM_GET_PIT2, &g), 0);
	assert_int_equal(g.channels[0].count, 0x2e9c);
	assert_int_equal(g.channels[0].mode, 2);
	assert_int_equal(g.channels[0].rw_mode, 3);
	assert_int_equal(g.channels[0].write_state, 3);
	assert_int_equal(g.channels[1].count, 0x10000); /* pit_load_count(): 0 is 0x10000 */
	assert_int_equal(g.channels[2].count, 0x533);
	assert_int_equal(g.channels[2].gate, 0);
	assert_int_equal(g.flags, KVM_PIT_FLAGS_SPEAKER_DATA_ON);
	assert_int_equal(g.reserved[0], 0);
}

/* ======================================================================== */
/* x86 kvmclock                                                             */

static uint64_t now_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define SEC 1000000000ull

/* KVM_SET_CLOCK: flags within KVM_CLOCK_VALID_FLAGS; the clock runs on from the value set. */
static void test_clock_rules(void **state)
{
	struct fx *f = *state;
	struct kvm_clock_data d, g;
	const uint64_t t = 1000 * SEC;

	open_arch(f, X86);
	assert_int_equal(check_ext(f, KVM_CAP_ADJUST_CLOCK),
			 KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC);
	memset(&g, 0xa5, sizeof(g));
	assert_int_equal(vm_ioc(f, KVM_GET_CLOCK, &g), 0);
	assert_true(g.clock < 60 * SEC); /* a new VM's clock starts at 0 */
	assert_int_equal(g.flags, KVM_CLOCK_TSC_STABLE);
	assert_int_equal(g.pad[3], 0);

	memset(&d, 0, sizeof(d));
	d.clock = t;
	d.flags = 0x1; /* not a KVM_CLOCK_* flag */
	assert_int_equal(vm_ioc(f, KVM_SET_CLOCK, &d), -EINVAL);
	d.flags = 0;
	assert_int_equal(vm_ioc(f, KVM_SET_CLOCK, &d), 0);
	assert_int_equal(vm_ioc(f, KVM_GET_CLOCK, &g), 0);
	assert_true(g.clock >= t && g.clock < t + 10 * SEC);

	/* A GET result passes back unchanged (TSC_STABLE is accepted). */
	assert_int_equal(vm_ioc(f, KVM_SET_CLOCK, &g), 0);

	/* REALTIME: the time since data.realtime is added (here 5 s). */
	d.clock = t;
	d.flags = KVM_CLOCK_REALTIME;
	d.realtime = now_ns(CLOCK_REALTIME) - 5 * SEC;
	assert_int_equal(vm_ioc(f, KVM_SET_CLOCK, &d), 0);
	assert_int_equal(vm_ioc(f, KVM_GET_CLOCK, &g), 0);
	assert_true(g.clock >= t + 5 * SEC && g.clock < t + 15 * SEC);
}

/* ======================================================================== */
/* Capabilities and architecture                                            */

/*
 * Manual dirty-log protection (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, which
 * libvcpu enables on every VM where KVM offers it): GET_DIRTY_LOG then
 * leaves the bits set, CLEAR_DIRTY_LOG clears exactly those it is given,
 * and its range rules (kvm_clear_dirty_log_protect()).
 */
static void test_clear_dirty_log_rules(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu;
	const size_t pages = 128;
	void *ram;
	uint64_t bm[2] = { 0 }, bits[2];
	struct kvm_dirty_log get = { .slot = 0, .dirty_bitmap = (uintptr_t)bm };
	struct kvm_clear_dirty_log clr = { .slot = 0, .num_pages = 128, .dirty_bitmap = (uintptr_t)bits };
	const struct vcpu_mock_step steps[] = {
		{ .op = VCPU_MOCK_MEM_WRITE, .addr = RAM_GPA + 3 * 4096, .value = 1 },
		{ .op = VCPU_MOCK_MEM_WRITE, .addr = RAM_GPA + 70 * 4096, .value = 1 },
		stop(),
	};
	struct rec r;

	cpu = open_one(f, ARM64);
	if (f->page != 4096)
		skip(); /* the pages below are 4 KiB ones */
	assert_int_equal(check_ext(f, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2),
			 KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET);
	ram = guest_ram(f, pages);
	assert_int_equal(vcpu_vm_map(f->vm, RAM_GPA, ram, pages * f->page, VCPU_MEM_LOG_DIRTY), 0);
	rec_init(&r);
	SCRIPT(f, 0, steps);
	assert_int_equal(vcpu_run(cpu, &H_MMIO_ONLY, &r), VCPU_STOP);
	/* libvcpu's VM has manual protection on: a raw GET does not clear. */
	assert_int_equal(vm_ioc(f, KVM_GET_DIRTY_LOG, &get), 0);
	assert_int_equal(bm[0], 1ull << 3);
	assert_int_equal(bm[1], 1ull << 6);
	assert_int_equal(vm_ioc(f, KVM_GET_DIRTY_LOG, &get), 0);
	assert_int_equal(bm[0], 1ull << 3);
	/* The range rules. */
	bits[0] = bits[1] = ~0ull;
	clr.first_page = 1;
	assert_int_equal(vm_ioc(f, KVM_CLEAR_DIRTY_LOG, &clr), -EINVAL); /* not a multiple of 64 */
	clr.first_page = 64;
	assert_int_equal(vm_ioc(f, KVM_CLEAR_DIRTY_LOG, &clr), -EINVAL); /* past the slot */
	clr.first_page = 0;
	clr.num_pages = 10;
	assert_int_equal(vm_ioc(f, KVM_CLEAR_DIRTY_LOG, &clr), -EINVAL); /* short, not 64s */
	clr.slot = 1;
	clr.num_pages = 64;
	assert_int_equal(vm_ioc(f, KVM_CLEAR_DIRTY_LOG, &clr), -ENOENT); /* no such slot */
	/* Clearing page 70 only leaves page 3 reported. */
	clr.slot = 0;
	clr.first_page = 64;
	clr.num_pages = 64;
	bits[0] = 1ull << 6;
	assert_int_equal(vm_ioc(f, KVM_CLEAR_DIRTY_LOG, &clr), 0);
	assert_int_equal(vm_ioc(f, KVM_GET_DIRTY_LOG, &get), 0);
	assert_int_equal(bm[0], 1ull << 3);
	assert_int_equal(bm[1], 0);
	/* The API reads and clears: twice gives page 3, then nothing. */
	assert_int_equal(vcpu_vm_get_dirty_log(f->vm, RAM_GPA, bm, 2), 0);
	assert_int_equal(bm[0], 1ull << 3);
	assert_int_equal(vcpu_vm_get_dirty_log(f->vm, RAM_GPA, bm, 2), 0);
	assert_int_equal(bm[0] | bm[1], 0);
}

/* KVM_GET/SET_TSC_KHZ (kvm_set_tsc_khz()), on a host that cannot scale its TSC. */
static void test_tsc_khz_rules(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = open_one(f, X86);
	const unsigned long get = KVM_GET_TSC_KHZ, set = KVM_SET_TSC_KHZ;

	assert_int_equal(check_ext(f, KVM_CAP_GET_TSC_KHZ), 1);
	assert_int_equal(sys_ioctl(f->hv, cpu->fd, get, 0), 2400000);
	assert_int_equal(sys_ioctl(f->hv, cpu->fd, set, 2400000 - 500), 0); /* within 250 ppm */
	assert_int_equal(sys_ioctl(f->hv, cpu->fd, get, 0), 2400000 - 500);
	assert_int_equal(sys_ioctl(f->hv, cpu->fd, set, 2000000), -EINVAL); /* slower: no scaling */
	assert_int_equal(sys_ioctl(f->hv, cpu->fd, set, 3000000), 0);       /* faster: caught up */
	assert_int_equal(sys_ioctl(f->hv, cpu->fd, get, 0), 3000000);
	assert_int_equal(sys_ioctl(f->hv, cpu->fd, set, 0), 0);             /* 0: the host's */
	assert_int_equal(sys_ioctl(f->hv, cpu->fd, get, 0), 2400000);
}

static void test_caps_per_arch(void **state)
{
	struct fx *f = *state;
	struct vcpu_mock *m = NULL;
	struct vcpu_hv *hv = NULL;
	struct vcpu_mock_config cfg = { .arch = ARM64 };

	open_arch(f, X86);
	assert_int_equal(check_ext(f, KVM_CAP_MP_STATE), 1);
	assert_int_equal(sys_ioctl(f->hv, f->vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2),
			 (int)sizeof(struct kvm_xsave)); /* the VM fd answers too */
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_KVM, &cfg, &m, &hv), 0);
	assert_int_equal(sys_ioctl(hv, hv->fd, KVM_CHECK_EXTENSION, KVM_CAP_MP_STATE), 1);
	assert_int_equal(sys_ioctl(hv, hv->fd, KVM_CHECK_EXTENSION, KVM_CAP_VCPU_EVENTS), 0);
	assert_int_equal(sys_ioctl(hv, hv->fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2), 0);
	assert_int_equal(sys_ioctl(hv, hv->fd, KVM_CHECK_EXTENSION, KVM_CAP_ADJUST_CLOCK), 0);
	assert_int_equal(sys_ioctl(hv, hv->fd, KVM_CHECK_EXTENSION, KVM_CAP_PIT_STATE2), 0);
	struct kvm_msr_list l = { .nmsrs = 0 };
	assert_int_equal(sys_ioctl(hv, hv->fd, KVM_GET_MSR_INDEX_LIST, (unsigned long)(uintptr_t)&l),
			 -ENOTTY);
	assert_int_equal(vcpu_hv_close(hv), 0);
	assert_int_equal(vcpu_mock_destroy(&m), 0);
}

/* The x86-only state ioctls on an arm64 vCPU and VM: unknown there (ENOTTY). */
static void test_x86_state_ioctls_on_arm64(void **state)
{
	struct fx *f = *state;
	void *u = calloc(1, 8192); /* room for any of the structs, zeroed */
	static const unsigned long vcpu_reqs[] = {
		KVM_GET_MSRS, KVM_SET_MSRS, KVM_GET_XSAVE, KVM_GET_XSAVE2, KVM_SET_XSAVE,
		KVM_GET_XCRS, KVM_SET_XCRS, KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS,
		KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, KVM_GET_LAPIC, KVM_SET_LAPIC,
	};
	static const unsigned long vm_reqs[] = {
		KVM_GET_IRQCHIP, KVM_SET_IRQCHIP, KVM_GET_PIT2, KVM_SET_PIT2, KVM_GET_CLOCK,
		KVM_SET_CLOCK,
	};

	assert_non_null(u);
	open_one(f, ARM64);
	for (size_t i = 0; i < ARRAY_SIZE(vcpu_reqs); i++)
		assert_int_equal(cpu_ioc(f, 0, vcpu_reqs[i], u), -ENOTTY);
	for (size_t i = 0; i < ARRAY_SIZE(vm_reqs); i++)
		assert_int_equal(vm_ioc(f, vm_reqs[i], u), -ENOTTY);
	free(u);
}

/* And the other way: KVM_GET_REG_LIST is arm64's (x86 has no ONE_REG in Linux 6.1). */
static void test_reg_list_on_x86(void **state)
{
	struct fx *f = *state;
	struct kvm_reg_list l = { .n = 0 };

	open_one(f, X86);
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_REG_LIST, &l), -ENOTTY);
}

/* ======================================================================== */
/* arm64 KVM_GET_REG_LIST and ONE_REG                                       */

#define MIDR_EL1 (KVM_REG_ARM64_SYSREG_BASE | 0xc000u) /* SYS_REG(3, 0, 0, 0, 0) */
#define V0_ID 0x6040000000100054ull
#define FPSR_ID 0x60200000001000d4ull
#define FPCR_ID 0x60200000001000d5ull

static struct kvm_reg_list *reg_list_of(struct fx *f, uint32_t id)
{
	struct kvm_reg_list hdr = { .n = 0 }, *l;

	assert_int_equal(cpu_ioc(f, id, KVM_GET_REG_LIST, &hdr), -E2BIG);
	assert_true(hdr.n > 0 && hdr.n < 4096);
	l = calloc(1, sizeof(*l) + hdr.n * sizeof(uint64_t));
	assert_non_null(l);
	l->n = hdr.n;
	assert_int_equal(cpu_ioc(f, id, KVM_GET_REG_LIST, l), 0);
	assert_int_equal(l->n, hdr.n);
	return l;
}

static bool list_has(const struct kvm_reg_list *l, uint64_t id)
{
	for (uint64_t i = 0; i < l->n; i++)
		if (l->reg[i] == id)
			return true;
	return false;
}

static int one_reg(struct fx *f, uint32_t cpu, bool set, uint64_t id, void *buf)
{
	struct kvm_one_reg r = { .id = id, .addr = (uint64_t)(uintptr_t)buf };

	return cpu_ioc(f, cpu, set ? KVM_SET_ONE_REG : KVM_GET_ONE_REG, &r);
}

/* ENOEXEC before KVM_ARM_VCPU_INIT; E2BIG with the count written back; n is 32 bits. */
static void test_reg_list_rules(void **state)
{
	struct fx *f = *state;
	struct kvm_reg_list hdr = { .n = 0 }, *l;
	int raw;

	open_one(f, ARM64); /* vCPU 0: created and initialised by the library */
	raw = vm_ioc(f, KVM_CREATE_VCPU, (const void *)(uintptr_t)1); /* vCPU 1, never initialised */
	assert_true(raw >= 0);
	assert_int_equal(ioc(f, raw, KVM_GET_REG_LIST, &hdr), -ENOEXEC);
	assert_int_equal(hdr.n, 0);
	assert_int_equal(sys_close(f->hv, raw), 0);

	hdr.n = 3;
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_REG_LIST, &hdr), -E2BIG);
	assert_true(hdr.n > 3);
	l = reg_list_of(f, 0);
	/* 41 64-bit core registers, V0..V31, FPSR, FPCR; PSCI_VERSION; TIMER_CNT; the sysregs. */
	assert_true(l->n >= 75 + 2 + 2);
	assert_int_equal(l->reg[0], KVM_REG_ARM64_CORE_X(0));
	assert_int_equal(l->reg[31], KVM_REG_ARM64_CORE_BASE + 248 / 4); /* SP */
	assert_int_equal(l->reg[41], V0_ID);
	assert_int_equal(l->reg[72], V0_ID + 4 * 31);
	assert_int_equal(l->reg[73], FPSR_ID);
	assert_int_equal(l->reg[74], FPCR_ID);
	assert_int_equal(l->reg[75], KVM_REG_ARM64_PSCI_VERSION);
	assert_int_equal(l->reg[76], KVM_REG_ARM64_TIMER_CNT);
	assert_true(list_has(l, KVM_REG_ARM64_MPIDR_EL1));
	assert_true(list_has(l, KVM_REG_ARM64_CORE_ELR_EL1));
	assert_true(list_has(l, KVM_REG_ARM64_CORE_BASE + 320 / 4)); /* SPSR[4] */
	assert_false(list_has(l, KVM_REG_ARM64_CORE_BASE + 328 / 4)); /* padding */

	/* kvm_arch_vcpu_ioctl() reads n as an unsigned int: 2^32 + 1 is 1. */
	hdr.n = (1ull << 32) + 1;
	assert_int_equal(cpu_ioc(f, 0, KVM_GET_REG_LIST, &hdr), -E2BIG);
	assert_int_equal(hdr.n, l->n);
	free(l);
}

/* Every listed id works with ONE_REG at its size, and a set then get returns the bytes set. */
static void test_reg_list_ids_round_trip(void **state)
{
	struct fx *f = *state;
	struct kvm_reg_list *l;
	uint8_t cur[16], val[16], back[16];

	open_one(f, ARM64);
	l = reg_list_of(f, 0);
	for (uint64_t i = 0; i < l->n; i++) {
		uint64_t id = l->reg[i];
		size_t sz = (size_t)1 << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT);

		assert_true(sz == 4 || sz == 8 || sz == 16);
		memset(cur, 0, sizeof(cur));
		assert_int_equal(one_reg(f, 0, false, id, cur), 0);
		if (id == MIDR_EL1) {
			memcpy(val, cur, sizeof(val)); /* an ID register: only its own value */
		} else if (id == KVM_REG_ARM64_PSCI_VERSION) {
			uint64_t v = 0x10000; /* PSCI 1.0 */
			memcpy(val, &v, sizeof(v));
		} else {
			for (size_t b = 0; b < sizeof(val); b++)
				val[b] = (uint8_t)(i * 7 + b * 13 + 1);
		}
		assert_int_equal(one_reg(f, 0, true, id, val), 0);
		memset(back, 0, sizeof(back));
		assert_int_equal(one_reg(f, 0, false, id, back), 0);
		if (memcmp(val, back, sz) != 0)
			fail_msg("register 0x%llx did not round-trip", (unsigned long long)id);
	}
	free(l);
}

/* validate_core_offset(), the firmware and timer registers. */
static void test_one_reg_rules(void **state)
{
	struct fx *f = *state;
	uint64_t v = 0, size_bits = KVM_REG_SIZE_U32 ^ KVM_REG_SIZE_U64;

	open_arch(f, ARM64);
	add_cpu(f, 0);
	add_cpu(f, 1);
	/* A core id whose size is not its field's: EINVAL; an unknown system register: ENOENT. */
	assert_int_equal(one_reg(f, 0, false, KVM_REG_ARM64_CORE_X(0) ^ size_bits, &v), -EINVAL);
	assert_int_equal(one_reg(f, 0, false, FPSR_ID ^ size_bits, &v), -EINVAL);
	assert_int_equal(one_reg(f, 0, false, KVM_REG_ARM64_CORE_BASE + 1, &v), -EINVAL);
	assert_int_equal(one_reg(f, 0, false, KVM_REG_ARM64_SYSREG_BASE | 0xc001u, &v), -ENOENT);
	assert_int_equal(one_reg(f, 0, false, KVM_REG_ARM64_PSCI_VERSION ^ size_bits, &v), -ENOENT);

	/* PSCI_VERSION: a PSCI 0.2 vCPU takes 0.2, 1.0, 1.1; the version is the VM's. */
	assert_int_equal(one_reg(f, 0, false, KVM_REG_ARM64_PSCI_VERSION, &v), 0);
	assert_int_equal(v, 0x10001);
	v = 0x1; /* 0.1 only without the PSCI_0_2 feature */
	assert_int_equal(one_reg(f, 0, true, KVM_REG_ARM64_PSCI_VERSION, &v), -EINVAL);
	v = 0x10002;
	assert_int_equal(one_reg(f, 0, true, KVM_REG_ARM64_PSCI_VERSION, &v), -EINVAL);
	v = 0x2;
	assert_int_equal(one_reg(f, 0, true, KVM_REG_ARM64_PSCI_VERSION, &v), 0);
	v = 0;
	assert_int_equal(one_reg(f, 1, false, KVM_REG_ARM64_PSCI_VERSION, &v), 0);
	assert_int_equal(v, 0x2);

	/* TIMER_CNT: one virtual counter offset for the whole VM. */
	v = 0x123456789ull;
	assert_int_equal(one_reg(f, 1, true, KVM_REG_ARM64_TIMER_CNT, &v), 0);
	v = 0;
	assert_int_equal(one_reg(f, 0, false, KVM_REG_ARM64_TIMER_CNT, &v), 0);
	assert_int_equal(v, 0x123456789ull);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_clear_dirty_log_rules),
		T(test_tsc_khz_rules),
		T(test_msr_index_list),
		T(test_msrs_stop_at_unknown),
		T(test_msrs_e2big),
		T(test_msr_value_rules),
		T(test_xsave_rules),
		T(test_xcrs_rules),
		T(test_debugregs_rules),
		T(test_vcpu_events_rules),
		T(test_lapic_without_irqchip),
		T(test_lapic_round_trip),
		T(test_irqchip_rules),
		T(test_pit2_rules),
		T(test_clock_rules),
		T(test_caps_per_arch),
		T(test_x86_state_ioctls_on_arm64),
		T(test_reg_list_on_x86),
		T(test_reg_list_rules),
		T(test_reg_list_ids_round_trip),
		T(test_one_reg_rules),
	};

	mallopt(M_ARENA_MAX, 1);
	warm_up();
	return cmocka_run_group_tests_name("state-rules", tests, NULL, NULL);
}
