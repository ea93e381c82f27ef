// SPDX-License-Identifier: MIT
/*
 * The `state` suite, vCPU features (LIBVCPU_1.1): the arm64 vcpu_create()
 * flags VCPU_CREATE_ARM64_SVE, _PTRAUTH and _PMU with their capabilities,
 * and x86 CPUID with vcpu_x86_get_supported_cpuid() and
 * vcpu_x86_set_cpuid(), against the mock KVM driver; and the mock's own
 * rules for them (doc/abi/kvm.md §9) with raw ioctls through the seam
 * (sys_ioctl(): the driver's answer, -errno or 0).  The fixture (leak
 * accounting around every test) is mock_fixture.h.
 *
 * Kernel references (Linux 6.1): arch/arm64/kvm/arm.c
 * (kvm_vcpu_set_target, kvm_arch_vcpu_ioctl, kvm_arch_vcpu_run_pid_change),
 * reset.c (kvm_reset_vcpu, kvm_vcpu_enable_ptrauth, kvm_arm_vcpu_finalize),
 * pmu-emul.c (kvm_arm_pmu_v3_set_attr, pmu_irq_is_valid,
 * kvm_arm_pmu_v3_enable); arch/x86/kvm/cpuid.c (kvm_vcpu_ioctl_set_cpuid2,
 * kvm_dev_ioctl_get_cpuid).
 */
#define _GNU_SOURCE
/* Before the fixture: it names some exit reasons as macros the ABI header has as an enum. */
#include "kvm/kvm_abi.h"

#include "mock_fixture.h"

#define PSCI_FEAT (1u << KVM_ARM_VCPU_PSCI_0_2)
#define SVE_FEAT (1u << KVM_ARM_VCPU_SVE)
#define PAC_FEAT ((1u << KVM_ARM_VCPU_PTRAUTH_ADDRESS) | (1u << KVM_ARM_VCPU_PTRAUTH_GENERIC))
#define PMU_FEAT (1u << KVM_ARM_VCPU_PMU_V3)
#define GICD 0x08000000ull
#define GICR 0x080a0000ull
#define PMU_PPI 23

static int ioc(struct fx *f, int fd, unsigned long req, const void *arg)
{
	return sys_ioctl(f->hv, fd, req, (unsigned long)(uintptr_t)arg);
}

/* A vCPU made behind libvcpu's back (KVM_CREATE_VCPU): its fd, closed by the test. */
static int raw_vcpu(struct fx *f, uint32_t id)
{
	int fd = sys_ioctl(f->hv, f->vm->fd, KVM_CREATE_VCPU, id);

	assert_true(fd >= 0);
	return fd;
}

static int raw_init(struct fx *f, int fd, uint32_t features)
{
	struct kvm_vcpu_init init = { .target = KVM_ARM_TARGET_GENERIC_V8 };

	init.features[0] = features;
	return ioc(f, fd, KVM_ARM_VCPU_INIT, &init);
}

static int finalize(struct fx *f, int fd, int what)
{
	return ioc(f, fd, KVM_ARM_VCPU_FINALIZE, &what);
}

static int reg_list_count(struct fx *f, int fd)
{
	struct kvm_reg_list l = { .n = 0 };

	return ioc(f, fd, KVM_GET_REG_LIST, &l);
}

/* KVM_{SET,GET,HAS}_DEVICE_ATTR of the PMUv3 group on a vCPU fd. */
static int pmu_attr(struct fx *f, int fd, unsigned long req, uint64_t attr, int32_t *irq)
{
	struct kvm_device_attr a = { .group = KVM_ARM_VCPU_PMU_V3_CTRL, .attr = attr,
				     .addr = (uint64_t)(uintptr_t)irq };

	return ioc(f, fd, req, &a);
}

static int set_pmu_irq(struct fx *f, int fd, int32_t irq)
{
	return pmu_attr(f, fd, KVM_SET_DEVICE_ATTR, KVM_ARM_VCPU_PMU_V3_IRQ, &irq);
}

static int pmu_init(struct fx *f, int fd)
{
	return pmu_attr(f, fd, KVM_SET_DEVICE_ATTR, KVM_ARM_VCPU_PMU_V3_INIT, NULL);
}

static int32_t get_pmu_irq(struct fx *f, int fd)
{
	int32_t irq = -1;

	assert_int_equal(pmu_attr(f, fd, KVM_GET_DEVICE_ATTR, KVM_ARM_VCPU_PMU_V3_IRQ, &irq), 0);
	return irq;
}

/*
 * An SVE vCPU's registers (guest.c, sve_reg_to_region() and friends): the
 * list has VLS, Z0-31, P0-15 and FFR, and no V registers, which then fail
 * with EINVAL; Z/P/FFR are EPERM before finalize, VLS is EPERM to set
 * after it; Z0 round-trips its 256 bytes.
 */
static void test_sve_register_rules(void **state)
{
	struct fx *f = *state;
	uint8_t z[256], back[256], vls[64];
	struct kvm_one_reg one = { .id = 0x6080000000150000ull, .addr = (uintptr_t)z }; /* Z0 */
	struct kvm_one_reg v0 = { .id = 0x6040000000100054ull, .addr = (uintptr_t)z };
	struct kvm_one_reg vl = { .id = 0x606000000015ffffull, .addr = (uintptr_t)vls };
	int fd;

	open_arch(f, ARM64);
	fd = raw_vcpu(f, 0);
	assert_int_equal(raw_init(f, fd, 1u << KVM_ARM_VCPU_SVE), 0);
	assert_int_equal(ioc(f, fd, KVM_GET_ONE_REG, &one), -EPERM); /* not finalized */
	assert_int_equal(ioc(f, fd, KVM_GET_ONE_REG, &vl), 0);
	assert_int_equal(vls[0], 0xff); /* vq 1-16 */
	assert_int_equal(vls[1], 0xff);
	vls[1] = 0; /* 1024-bit vectors at most: taken before finalize */
	assert_int_equal(ioc(f, fd, KVM_SET_ONE_REG, &vl), 0);
	vls[1] = 0xff;
	assert_int_equal(finalize(f, fd, KVM_ARM_VCPU_SVE), 0);
	assert_int_equal(ioc(f, fd, KVM_SET_ONE_REG, &vl), -EPERM);
	assert_int_equal(ioc(f, fd, KVM_GET_ONE_REG, &vl), 0);
	assert_int_equal(vls[1], 0);
	assert_int_equal(ioc(f, fd, KVM_GET_ONE_REG, &v0), -EINVAL); /* V0 lives in Z0 */
	memset(z, 0x5a, sizeof(z));
	assert_int_equal(ioc(f, fd, KVM_SET_ONE_REG, &one), 0);
	one.addr = (uintptr_t)back;
	assert_int_equal(ioc(f, fd, KVM_GET_ONE_REG, &one), 0);
	assert_memory_equal(z, back, sizeof(z));
	{
		/* struct kvm_reg_list: n, then the ids. */
		uint64_t l[1 + 256] = { 256 };
		bool has_vls = false, has_z31 = false, has_ffr = false, has_v0 = false;

		assert_int_equal(ioc(f, fd, KVM_GET_REG_LIST, l), 0);
		for (uint64_t i = 1; i <= l[0]; i++) {
			has_vls |= l[i] == 0x606000000015ffffull;
			has_z31 |= l[i] == 0x60800000001503e0ull;
			has_ffr |= l[i] == 0x6050000000150600ull;
			has_v0 |= l[i] == 0x6040000000100054ull;
		}
		assert_true(has_vls && has_z31 && has_ffr && !has_v0);
	}
	sys_close(f->hv, fd);
}

/* The vGICv3 made and initialised with raw device ioctls; returns its fd. */
static int raw_gic(struct fx *f, bool init)
{
	struct kvm_create_device dev = { .type = KVM_DEV_TYPE_ARM_VGIC_V3 };
	uint64_t dist = GICD, redist = GICR;
	struct kvm_device_attr a = { .group = KVM_DEV_ARM_VGIC_GRP_ADDR };

	assert_int_equal(ioc(f, f->vm->fd, KVM_CREATE_DEVICE, &dev), 0);
	if (!init)
		return (int)dev.fd;
	a.attr = KVM_VGIC_V3_ADDR_TYPE_DIST;
	a.addr = (uint64_t)(uintptr_t)&dist;
	assert_int_equal(ioc(f, (int)dev.fd, KVM_SET_DEVICE_ATTR, &a), 0);
	a.attr = KVM_VGIC_V3_ADDR_TYPE_REDIST;
	a.addr = (uint64_t)(uintptr_t)&redist;
	assert_int_equal(ioc(f, (int)dev.fd, KVM_SET_DEVICE_ATTR, &a), 0);
	return (int)dev.fd;
}

static int raw_gic_init(struct fx *f, int gic)
{
	struct kvm_device_attr a = { .group = KVM_DEV_ARM_VGIC_GRP_CTRL,
				     .attr = KVM_DEV_ARM_VGIC_CTRL_INIT };

	return ioc(f, gic, KVM_SET_DEVICE_ATTR, &a);
}

static int create(struct fx *f, uint32_t id, uint32_t flags)
{
	assert_true(id < MAX_CPUS);
	return vcpu_create(f->vm, id, flags, &f->cpu[id]);
}

/* Did kernel calls @from.. include @req, with result @result? */
static bool called(struct fx *f, uint64_t from, unsigned long req, int result)
{
	struct vcpu_mock_call_info ci;

	for (uint64_t n = from; n <= vcpu_mock_calls(f->mock); n++)
		if (vcpu_mock_call_info(f->mock, n, &ci) == 0 && ci.req == req && ci.result == result)
			return true;
	return false;
}

/* Run vCPU @id through one MMIO write and the stop. */
static void run_ok(struct fx *f, uint32_t id)
{
	struct vcpu_mock_step s[] = { mmio_write(MMIO_BASE, 4, 0xfea7), stop() };
	struct rec r;

	rec_init(&r);
	SCRIPT(f, id, s);
	assert_int_equal(vcpu_run(f->cpu[id], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 2);
	expect_script(f, id, ARRAY_SIZE(s));
}

/* ======================================================================== */
/* Capabilities                                                             */

static uint64_t cap_of(struct vcpu_hv *hv, enum vcpu_cap cap)
{
	uint64_t v = 0xbad;

	assert_int_equal(vcpu_hv_check(hv, cap, &v), 0);
	return v;
}

static uint64_t vm_cap_of(struct vcpu_vm *vm, enum vcpu_cap cap)
{
	uint64_t v = 0xbad;

	assert_int_equal(vcpu_vm_check(vm, cap, &v), 0);
	return v;
}

static void expect_no_features(struct vcpu_hv *hv)
{
	assert_int_equal(cap_of(hv, VCPU_CAP_ARM_SVE), 0);
	assert_int_equal(cap_of(hv, VCPU_CAP_ARM_PTRAUTH), 0);
	assert_int_equal(cap_of(hv, VCPU_CAP_ARM_PMU), 0);
}

/* KVM arm64 asks the driver (each of the two PTRAUTH caps); every other handle says 0. */
static void test_caps(void **state)
{
	struct fx *f = *state;
	static const enum vcpu_backend others[] = { VCPU_BACKEND_GUNYAH, VCPU_BACKEND_GENIEZONE,
						     VCPU_BACKEND_ACRN };
	uint64_t before;

	open_arch(f, ARM64);
	before = vcpu_mock_calls(f->mock);
	assert_int_equal(cap_of(f->hv, VCPU_CAP_ARM_SVE), 1);
	assert_int_equal(cap_of(f->hv, VCPU_CAP_ARM_PTRAUTH), 1);
	assert_int_equal(cap_of(f->hv, VCPU_CAP_ARM_PMU), 1);
	assert_int_equal(vcpu_mock_calls(f->mock) - before, 4); /* asked each time, never cached */
	assert_int_equal(vm_cap_of(f->vm, VCPU_CAP_ARM_SVE), 1);
	assert_int_equal(vm_cap_of(f->vm, VCPU_CAP_ARM_PTRAUTH), 1);
	assert_int_equal(vm_cap_of(f->vm, VCPU_CAP_ARM_PMU), 1);
	assert_int_equal(vcpu_vm_destroy(&f->vm), 0);
	assert_int_equal(vcpu_hv_close(f->hv), 0);
	f->hv = NULL;
	assert_int_equal(vcpu_mock_destroy(&f->mock), 0);

	/* A host without them. */
	{
		struct vcpu_mock_config cfg = {
			.arch = ARM64,
			.flags = VCPU_MOCK_NO_SVE | VCPU_MOCK_NO_PTRAUTH | VCPU_MOCK_NO_PMU,
		};
		struct vcpu_mock *m = NULL;
		struct vcpu_hv *hv = NULL;

		assert_int_equal(vcpu_mock_open(VCPU_BACKEND_KVM, &cfg, &m, &hv), 0);
		expect_no_features(hv);
		assert_int_equal(vcpu_hv_close(hv), 0);
		assert_int_equal(vcpu_mock_destroy(&m), 0);
		cfg.flags = VCPU_MOCK_NO_PTRAUTH;
		assert_int_equal(vcpu_mock_open(VCPU_BACKEND_KVM, &cfg, &m, &hv), 0);
		assert_int_equal(cap_of(hv, VCPU_CAP_ARM_SVE), 1);
		assert_int_equal(cap_of(hv, VCPU_CAP_ARM_PTRAUTH), 0);
		assert_int_equal(cap_of(hv, VCPU_CAP_ARM_PMU), 1);
		assert_int_equal(vcpu_hv_close(hv), 0);
		assert_int_equal(vcpu_mock_destroy(&m), 0);
	}
	/* x86 KVM and the other drivers. */
	for (int i = -1; i < (int)ARRAY_SIZE(others); i++) {
		struct vcpu_mock_config cfg = { .arch = i < 0 ? X86 : VCPU_ARCH_HOST };
		struct vcpu_mock *m = NULL;
		struct vcpu_hv *hv = NULL;

		assert_int_equal(vcpu_mock_open(i < 0 ? VCPU_BACKEND_KVM : others[i], &cfg, &m, &hv),
				 0);
		expect_no_features(hv);
		assert_int_equal(vcpu_hv_close(hv), 0);
		assert_int_equal(vcpu_mock_destroy(&m), 0);
	}
}

/* ======================================================================== */
/* arm64 SVE                                                                */

/*
 * VCPU_CREATE_ARM64_SVE: the capability asked, the feature bit set, and the
 * vCPU finalized, so it lists its registers and runs at once.
 */
static void test_sve_flag(void **state)
{
	struct fx *f = *state;
	uint64_t before;
	int fd;

	open_arch(f, ARM64);
	before = vcpu_mock_calls(f->mock);
	assert_int_equal(create(f, 0, VCPU_CREATE_ARM64_SVE), 0);
	assert_true(called(f, before, KVM_CHECK_EXTENSION, 1));
	assert_true(called(f, before, KVM_ARM_VCPU_FINALIZE, 0));
	/* Finalized: a second time is EPERM, and nothing says EPERM any more. */
	assert_int_equal(finalize(f, f->cpu[0]->fd, KVM_ARM_VCPU_SVE), -EPERM);
	assert_int_equal(reg_list_count(f, f->cpu[0]->fd), -E2BIG);
	/* The VM's feature set is PSCI 0.2 + SVE: a vCPU with exactly that joins it. */
	fd = raw_vcpu(f, 1);
	assert_int_equal(raw_init(f, fd, PSCI_FEAT), -EINVAL);
	assert_int_equal(raw_init(f, fd, PSCI_FEAT | SVE_FEAT), 0);
	assert_int_equal(sys_close(f->hv, fd), 0);
	run_ok(f, 0);
	/* And a vCPU libvcpu makes without the flag is refused by the driver, as KVM does. */
	assert_int_equal(create(f, 2, 0), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "KVM_ARM_VCPU_INIT"));
}

/*
 * KVM_ARM_VCPU_FINALIZE: ENOEXEC before init, EINVAL for a feature that is
 * not one or a vCPU without SVE, EPERM the second time; before it an SVE
 * vCPU's KVM_RUN and KVM_GET_REG_LIST are EPERM.
 */
static void test_sve_finalize_rules(void **state)
{
	struct fx *f = *state;
	int sve, plain;

	open_arch(f, ARM64);
	sve = raw_vcpu(f, 0);
	assert_int_equal(finalize(f, sve, KVM_ARM_VCPU_SVE), -ENOEXEC);
	assert_int_equal(raw_init(f, sve, PSCI_FEAT | SVE_FEAT), 0);
	assert_int_equal(ioc(f, sve, KVM_RUN, NULL), -EPERM);
	assert_int_equal(reg_list_count(f, sve), -EPERM);
	assert_int_equal(finalize(f, sve, KVM_ARM_VCPU_PMU_V3), -EINVAL);
	assert_int_equal(finalize(f, sve, 99), -EINVAL);
	assert_int_equal(ioc(f, sve, KVM_ARM_VCPU_FINALIZE, NULL), -EFAULT);
	assert_int_equal(finalize(f, sve, KVM_ARM_VCPU_SVE), 0);
	assert_int_equal(finalize(f, sve, KVM_ARM_VCPU_SVE), -EPERM);
	assert_int_equal(reg_list_count(f, sve), -E2BIG);
	/* A second init keeps the finalization (kvm_reset_vcpu() only resets SVE's state). */
	assert_int_equal(raw_init(f, sve, PSCI_FEAT | SVE_FEAT), 0);
	assert_int_equal(finalize(f, sve, KVM_ARM_VCPU_SVE), -EPERM);
	assert_int_equal(sys_close(f->hv, sve), 0);
	assert_int_equal(vcpu_vm_destroy(&f->vm), 0);

	/* A vCPU without SVE has nothing to finalize. */
	assert_int_equal(vcpu_vm_create(f->hv, NULL, &f->vm), 0);
	plain = raw_vcpu(f, 0);
	assert_int_equal(raw_init(f, plain, PSCI_FEAT), 0);
	assert_int_equal(finalize(f, plain, KVM_ARM_VCPU_SVE), -EINVAL);
	assert_int_equal(reg_list_count(f, plain), -E2BIG);
	assert_int_equal(sys_close(f->hv, plain), 0);
	/* x86 has no such ioctl. */
	assert_int_equal(vcpu_vm_destroy(&f->vm), 0);
	assert_int_equal(vcpu_hv_close(f->hv), 0);
	f->hv = NULL;
	assert_int_equal(vcpu_mock_destroy(&f->mock), 0);
	open_arch(f, X86);
	add_cpu(f, 0);
	assert_int_equal(finalize(f, f->cpu[0]->fd, KVM_ARM_VCPU_SVE), -ENOTTY);
}

/* ======================================================================== */
/* arm64 pointer authentication                                             */

/* Both keys or neither (kvm_vcpu_enable_ptrauth()); libvcpu always asks for both. */
static void test_ptrauth(void **state)
{
	struct fx *f = *state;
	uint64_t before;
	int fd;

	open_arch(f, ARM64);
	fd = raw_vcpu(f, 0);
	assert_int_equal(raw_init(f, fd, PSCI_FEAT | (1u << KVM_ARM_VCPU_PTRAUTH_ADDRESS)), -EINVAL);
	assert_int_equal(raw_init(f, fd, PSCI_FEAT | (1u << KVM_ARM_VCPU_PTRAUTH_GENERIC)), -EINVAL);
	/* Refused: the vCPU stays uninitialised. */
	assert_int_equal(reg_list_count(f, fd), -ENOEXEC);
	assert_int_equal(sys_close(f->hv, fd), 0);
	assert_int_equal(vcpu_vm_destroy(&f->vm), 0);

	assert_int_equal(vcpu_vm_create(f->hv, NULL, &f->vm), 0);
	before = vcpu_mock_calls(f->mock);
	assert_int_equal(create(f, 0, VCPU_CREATE_ARM64_PTRAUTH), 0);
	assert_int_equal(create(f, 1, VCPU_CREATE_ARM64_PTRAUTH | VCPU_CREATE_POWER_OFF), 0);
	assert_false(called(f, before, KVM_ARM_VCPU_FINALIZE, 0)); /* nothing to finalize */
	/* The VM's set has both bits. */
	fd = raw_vcpu(f, 2);
	assert_int_equal(raw_init(f, fd, PSCI_FEAT), -EINVAL);
	assert_int_equal(raw_init(f, fd, PSCI_FEAT | PAC_FEAT), 0);
	assert_int_equal(sys_close(f->hv, fd), 0);
	run_ok(f, 0);
}

/* ======================================================================== */
/* Refusals                                                                 */

/* A feature the driver lacks: -EOPNOTSUPP naming it, before the vCPU exists. */
static void test_feature_absent(void **state)
{
	struct fx *f = *state;
	static const uint32_t all = VCPU_CREATE_ARM64_SVE | VCPU_CREATE_ARM64_PTRAUTH |
				    VCPU_CREATE_ARM64_PMU;
	static const struct {
		uint32_t mock_flag, create_flag, bits;
		const char *cap;
	} cases[] = {
		{ VCPU_MOCK_NO_SVE, VCPU_CREATE_ARM64_SVE, SVE_FEAT, "KVM_CAP_ARM_SVE" },
		{ VCPU_MOCK_NO_PTRAUTH, VCPU_CREATE_ARM64_PTRAUTH, PAC_FEAT,
		  "KVM_CAP_ARM_PTRAUTH_ADDRESS" },
		{ VCPU_MOCK_NO_PMU, VCPU_CREATE_ARM64_PMU, PMU_FEAT, "KVM_CAP_ARM_PMU_V3" },
	};

	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		struct vcpu_mock_config cfg = { .arch = ARM64, .flags = cases[i].mock_flag };
		uint64_t before;
		int fd;

		open_cfg(f, &cfg);
		before = vcpu_mock_calls(f->mock);
		assert_int_equal(create(f, 0, cases[i].create_flag), -EOPNOTSUPP);
		assert_null(f->cpu[0]);
		assert_non_null(strstr(vcpu_vm_last_error(f->vm), cases[i].cap));
		assert_false(called(f, before, KVM_CREATE_VCPU, 0));
		/* The driver refuses the bit itself too (kvm_reset_vcpu(): EINVAL). */
		fd = raw_vcpu(f, 1);
		assert_int_equal(raw_init(f, fd, PSCI_FEAT | cases[i].bits), -EINVAL);
		assert_int_equal(sys_close(f->hv, fd), 0);
		/* The id is still free, and the others still work. */
		assert_int_equal(create(f, 0, all & ~cases[i].create_flag), 0);
		assert_int_equal(vcpu_destroy(&f->cpu[0]), 0);
		assert_int_equal(vcpu_vm_destroy(&f->vm), 0);
		assert_int_equal(vcpu_hv_close(f->hv), 0);
		f->hv = NULL;
		assert_int_equal(vcpu_mock_destroy(&f->mock), 0);
	}
}

/* The arm64 flags elsewhere: EINVAL on x86, EOPNOTSUPP on Gunyah and GenieZone. */
static void test_flags_elsewhere(void **state)
{
	struct fx *f = *state;
	static const uint32_t flags[] = { VCPU_CREATE_ARM64_SVE, VCPU_CREATE_ARM64_PTRAUTH,
					  VCPU_CREATE_ARM64_PMU };
	static const enum vcpu_backend arm_others[] = { VCPU_BACKEND_GUNYAH, VCPU_BACKEND_GENIEZONE };

	open_arch(f, X86);
	for (unsigned i = 0; i < ARRAY_SIZE(flags); i++) {
		assert_int_equal(create(f, 0, flags[i]), -EINVAL);
		assert_non_null(strstr(vcpu_vm_last_error(f->vm), "arm64"));
	}
	assert_int_equal(create(f, 0, 1u << 4), -EINVAL); /* still unknown */
	assert_int_equal(vcpu_vm_destroy(&f->vm), 0);
	assert_int_equal(vcpu_hv_close(f->hv), 0);
	f->hv = NULL;
	assert_int_equal(vcpu_mock_destroy(&f->mock), 0);

	for (unsigned b = 0; b < ARRAY_SIZE(arm_others); b++) {
		struct vcpu_mock_config cfg = { .arch = ARM64 };

		assert_int_equal(vcpu_mock_open(arm_others[b], &cfg, &f->mock, &f->hv), 0);
		assert_int_equal(vcpu_vm_create(f->hv, NULL, &f->vm), 0);
		for (unsigned i = 0; i < ARRAY_SIZE(flags); i++) {
			assert_int_equal(create(f, 0, flags[i]), -EOPNOTSUPP);
			expect_detail(vcpu_vm_last_error(f->vm));
		}
		assert_int_equal(create(f, 0, 0), 0);
		assert_int_equal(vcpu_destroy(&f->cpu[0]), 0);
		assert_int_equal(vcpu_vm_destroy(&f->vm), 0);
		assert_int_equal(vcpu_hv_close(f->hv), 0);
		f->hv = NULL;
		assert_int_equal(vcpu_mock_destroy(&f->mock), 0);
	}
}

/* ======================================================================== */
/* arm64 PMUv3                                                              */

/*
 * VCPU_CREATE_ARM64_PMU: the vCPU cannot run before the GICv3 (EINVAL,
 * with the reason); vcpu_vm_create_gic_v3() gives each such vCPU PPI 23
 * and initialises its PMU.
 */
static void test_pmu_after_gic(void **state)
{
	struct fx *f = *state;
	uint64_t before;

	open_arch(f, ARM64);
	assert_int_equal(create(f, 0, VCPU_CREATE_ARM64_PMU), 0);
	assert_int_equal(create(f, 1, VCPU_CREATE_ARM64_PMU | VCPU_CREATE_POWER_OFF), 0);
	/* Not yet: the driver's KVM_RUN says EINVAL, libvcpu says why. */
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, NULL), -EINVAL);
	assert_non_null(strstr(vcpu_last_error(f->cpu[0]), "vcpu_vm_create_gic_v3"));
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), 0);
	before = vcpu_mock_calls(f->mock);
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GICD, GICR, 128), 0);
	assert_true(called(f, before, KVM_SET_DEVICE_ATTR, 0));
	for (uint32_t i = 0; i < 2; i++) {
		assert_int_equal(get_pmu_irq(f, f->cpu[i]->fd), PMU_PPI);
		/* Initialised: the PMU takes nothing more. */
		assert_int_equal(set_pmu_irq(f, f->cpu[i]->fd, PMU_PPI), -EBUSY);
		assert_int_equal(pmu_init(f, f->cpu[i]->fd), -EBUSY);
	}
	run_ok(f, 0);
	/* The GICv3 is made once. */
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GICD, GICR, 128), -EEXIST);
}

/*
 * A PMU step that fails after the vGIC was made: the vGIC stays, the call
 * says so, and calling again finishes the PMUs (then -EEXIST).
 */
static void test_pmu_gic_retry(void **state)
{
	struct fx *f = *state;
	uint64_t before;
	struct vcpu_mock_call_info ci;

	open_arch(f, ARM64);
	assert_int_equal(create(f, 0, VCPU_CREATE_ARM64_PMU), 0);
	assert_int_equal(create(f, 1, VCPU_CREATE_ARM64_PMU), 0);
	before = vcpu_mock_calls(f->mock);
	/* CREATE_DEVICE, 4 vGIC attributes, vCPU 0's IRQ and INIT, vCPU 1's IRQ, then its INIT. */
	assert_int_equal(vcpu_mock_fail_call(f->mock, before + 9, EIO), 0);
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GICD, GICR, 128), -EIO);
	assert_int_equal(vcpu_mock_call_info(f->mock, before + 9, &ci), 0);
	assert_int_equal(ci.req, KVM_SET_DEVICE_ATTR);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "vCPU 1"));
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "PMU_V3_INIT"));
	assert_int_equal(vcpu_run(f->cpu[1], &H_ALL, NULL), -EINVAL);
	before = vcpu_mock_calls(f->mock);
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GICD, GICR, 128), 0);
	assert_int_equal(vcpu_mock_calls(f->mock) - before, 1); /* only vCPU 1's INIT */
	assert_int_equal(vcpu_vm_create_gic_v3(f->vm, GICD, GICR, 128), -EEXIST);
	run_ok(f, 0);
	run_ok(f, 1);
}

/*
 * The PMUv3 attributes' rules: no vGIC, INTID range, one PPI for all, one
 * SPI each, EBUSY, INIT's ENODEV/ENXIO/EINVAL, and KVM_RUN without INIT.
 */
static void test_pmu_attr_rules(void **state)
{
	struct fx *f = *state;
	struct kvm_device_attr nr = { .group = KVM_DEV_ARM_VGIC_GRP_NR_IRQS };
	uint32_t nr_irqs = 256;
	int32_t irq = 0;
	int gic, fd[4];

	open_arch(f, ARM64);
	for (uint32_t i = 0; i < 4; i++) {
		assert_int_equal(create(f, i, VCPU_CREATE_ARM64_PMU), 0);
		fd[i] = f->cpu[i]->fd;
	}
	/* Without an in-kernel vGIC. */
	assert_int_equal(pmu_attr(f, fd[0], KVM_HAS_DEVICE_ATTR, KVM_ARM_VCPU_PMU_V3_IRQ, NULL), 0);
	assert_int_equal(pmu_attr(f, fd[0], KVM_HAS_DEVICE_ATTR, KVM_ARM_VCPU_PMU_V3_INIT, NULL), 0);
	assert_int_equal(pmu_attr(f, fd[0], KVM_HAS_DEVICE_ATTR, 99, NULL), -ENXIO);
	assert_int_equal(set_pmu_irq(f, fd[0], PMU_PPI), -EINVAL);
	assert_int_equal(pmu_attr(f, fd[0], KVM_GET_DEVICE_ATTR, KVM_ARM_VCPU_PMU_V3_IRQ, &irq),
			 -EINVAL);
	assert_int_equal(pmu_attr(f, fd[0], KVM_SET_DEVICE_ATTR, 99, &irq), -ENXIO);

	gic = raw_gic(f, true);
	assert_int_equal(pmu_attr(f, fd[0], KVM_GET_DEVICE_ATTR, KVM_ARM_VCPU_PMU_V3_IRQ, &irq),
			 -ENXIO); /* not set yet */
	assert_int_equal(set_pmu_irq(f, fd[0], 15), -EINVAL);   /* an SGI */
	assert_int_equal(set_pmu_irq(f, fd[0], 1020), -EINVAL); /* past the SPIs */
	assert_int_equal(pmu_attr(f, fd[0], KVM_SET_DEVICE_ATTR, KVM_ARM_VCPU_PMU_V3_IRQ, NULL),
			 -EFAULT);
	assert_int_equal(set_pmu_irq(f, fd[0], PMU_PPI), 0);
	assert_int_equal(set_pmu_irq(f, fd[0], PMU_PPI), -EBUSY);
	assert_int_equal(set_pmu_irq(f, fd[0], 22), -EINVAL); /* not the VM's PPI */
	assert_int_equal(set_pmu_irq(f, fd[1], 22), -EINVAL);
	assert_int_equal(set_pmu_irq(f, fd[1], PMU_PPI), 0);
	/* SPIs: one each. */
	assert_int_equal(set_pmu_irq(f, fd[2], 40), 0);
	assert_int_equal(set_pmu_irq(f, fd[3], 40), -EINVAL);
	assert_int_equal(set_pmu_irq(f, fd[3], 300), 0);
	assert_int_equal(get_pmu_irq(f, fd[3]), 300);
	/* INIT waits for the vGIC's CTRL_INIT. */
	assert_int_equal(pmu_init(f, fd[0]), -ENODEV);
	nr.addr = (uint64_t)(uintptr_t)&nr_irqs;
	assert_int_equal(ioc(f, gic, KVM_SET_DEVICE_ATTR, &nr), 0);
	assert_int_equal(raw_gic_init(f, gic), 0);
	assert_int_equal(pmu_init(f, fd[0]), 0);
	assert_int_equal(pmu_init(f, fd[0]), -EBUSY);
	assert_int_equal(set_pmu_irq(f, fd[0], PMU_PPI), -EBUSY);
	assert_int_equal(pmu_init(f, fd[2]), 0);
	assert_int_equal(pmu_init(f, fd[3]), -EINVAL); /* SPI 300 past the vGIC's 256 INTIDs */
	/* KVM_RUN of a PMU vCPU without INIT: EINVAL (kvm_arm_pmu_v3_enable()). */
	assert_int_equal(ioc(f, fd[3], KVM_RUN, NULL), -EINVAL);
	assert_int_equal(ioc(f, fd[1], KVM_RUN, NULL), -EINVAL);
	assert_int_equal(vcpu_mock_steps_done(f->mock, 1), 0);
	run_ok(f, 0);
	assert_int_equal(sys_close(f->hv, gic), 0);
}

/* A vCPU without the PMU: ENODEV to SET, ENXIO to HAS; other groups ENXIO. */
static void test_pmu_absent_attrs(void **state)
{
	struct fx *f = *state;
	struct kvm_device_attr timer = { .group = 1 /* KVM_ARM_VCPU_TIMER_CTRL */ };
	int gic;

	open_arch(f, ARM64);
	add_cpu(f, 0);
	gic = raw_gic(f, false);
	assert_int_equal(set_pmu_irq(f, f->cpu[0]->fd, PMU_PPI), -ENODEV);
	assert_int_equal(pmu_init(f, f->cpu[0]->fd), -ENODEV);
	assert_int_equal(pmu_attr(f, f->cpu[0]->fd, KVM_HAS_DEVICE_ATTR, KVM_ARM_VCPU_PMU_V3_IRQ,
				  NULL),
			 -ENXIO);
	assert_int_equal(ioc(f, f->cpu[0]->fd, KVM_HAS_DEVICE_ATTR, &timer), -ENXIO);
	assert_int_equal(sys_close(f->hv, gic), 0);
	/* Mixed feature sets in one VM: KVM keeps one set per VM. */
	assert_int_equal(create(f, 1, VCPU_CREATE_ARM64_PMU), -EINVAL);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "same features"));
}

/* ======================================================================== */
/* x86 CPUID                                                                */

#define MOCK_NLEAVES 5u /* the mock's KVM_GET_SUPPORTED_CPUID table */
#define HYPERVISOR_BIT (1u << 31)

static void test_cpuid_get(void **state)
{
	struct fx *f = *state;
	struct vcpu_x86_cpuid_entry e[8];
	uint32_t n;

	memset(e, 0xa5, sizeof(e));
	open_arch(f, X86);
	/* How many: *n = 0, nothing written. */
	n = 0;
	assert_int_equal(vcpu_x86_get_supported_cpuid(f->hv, NULL, &n), -ENOSPC);
	assert_int_equal(n, MOCK_NLEAVES);
	n = MOCK_NLEAVES - 1;
	assert_int_equal(vcpu_x86_get_supported_cpuid(f->hv, e, &n), -ENOSPC);
	assert_int_equal(n, MOCK_NLEAVES);
	assert_int_equal(e[0].function, 0xa5a5a5a5u);
	expect_detail(vcpu_hv_last_error(f->hv));
	n = ARRAY_SIZE(e);
	assert_int_equal(vcpu_x86_get_supported_cpuid(f->hv, e, &n), 0);
	assert_int_equal(n, MOCK_NLEAVES);
	/* Leaf 0: "GenuineIntel", max basic leaf 7; the host's leaf 1 has APIC id 0. */
	assert_int_equal(e[0].function, 0);
	assert_int_equal(e[0].ebx, 0x756e6547u);
	assert_int_equal(e[1].function, 1);
	assert_int_equal(e[1].ebx >> 24, 0);
	assert_int_equal(e[1].ecx & HYPERVISOR_BIT, 0);
	assert_int_equal(e[2].function, 7);
	assert_int_equal(e[2].flags, VCPU_X86_CPUID_SIGNIFICANT_INDEX);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(e[i].padding[0] | e[i].padding[1] | e[i].padding[2], 0);
	}
	assert_int_equal(e[MOCK_NLEAVES].function, 0xa5a5a5a5u); /* nothing past the count */
	/* The driver's rule: E2BIG when short, and nent is written back only on success. */
	{
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 8 * sizeof(struct kvm_cpuid_entry2));

		assert_non_null(c);
		c->nent = MOCK_NLEAVES - 1;
		assert_int_equal(ioc(f, f->hv->fd, KVM_GET_SUPPORTED_CPUID, c), -E2BIG);
		assert_int_equal(c->nent, MOCK_NLEAVES - 1);
		c->nent = 0;
		assert_int_equal(ioc(f, f->hv->fd, KVM_GET_SUPPORTED_CPUID, c), -E2BIG);
		c->nent = 8;
		assert_int_equal(ioc(f, f->hv->fd, KVM_GET_SUPPORTED_CPUID, c), 0);
		assert_int_equal(c->nent, MOCK_NLEAVES);
		free(c);
	}
	/* Bad arguments. */
	assert_int_equal(vcpu_x86_get_supported_cpuid(NULL, e, &n), -EINVAL);
	assert_int_equal(vcpu_x86_get_supported_cpuid(f->hv, e, NULL), -EINVAL);
	n = 1;
	assert_int_equal(vcpu_x86_get_supported_cpuid(f->hv, NULL, &n), -EINVAL);
	/* The default table of a vCPU: its own APIC id and the hypervisor bit (leaf 1). */
	{
		struct vcpu_mock_step s[] = {
			{ .op = VCPU_MOCK_X86_CPUID, .value = 1 },
			reg_check(VCPU_REG_X86_RBX, (e[1].ebx & 0x00ffffffu) | 3u << 24),
			reg_check(VCPU_REG_X86_RCX, e[1].ecx | HYPERVISOR_BIT),
			stop(),
		};
		struct rec r;

		add_cpu(f, 3);
		rec_init(&r);
		SCRIPT(f, 3, s);
		assert_int_equal(vcpu_run(f->cpu[3], &H_ALL, &r), VCPU_STOP);
		expect_script(f, 3, ARRAY_SIZE(s));
	}
}

/* Only x86 handles, and only drivers with the query. */
static void test_cpuid_elsewhere(void **state)
{
	struct fx *f = *state;
	struct vcpu_x86_cpuid_entry e[8];
	uint32_t n = ARRAY_SIZE(e);
	struct vcpu_mock_config acrn = { .arch = X86 };

	memset(e, 0, sizeof(e));
	open_arch(f, ARM64);
	add_cpu(f, 0);
	assert_int_equal(vcpu_x86_get_supported_cpuid(f->hv, e, &n), -EINVAL);
	assert_int_equal(vcpu_x86_set_cpuid(f->cpu[0], e, 1), -EINVAL);
	expect_detail(vcpu_last_error(f->cpu[0]));
	assert_int_equal(vcpu_x86_set_cpuid(NULL, e, 1), -EINVAL);
	assert_int_equal(vcpu_destroy(&f->cpu[0]), 0);
	assert_int_equal(vcpu_vm_destroy(&f->vm), 0);
	assert_int_equal(vcpu_hv_close(f->hv), 0);
	f->hv = NULL;
	assert_int_equal(vcpu_mock_destroy(&f->mock), 0);

	/* ACRN: the hypervisor decides the leaves. */
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_ACRN, &acrn, &f->mock, &f->hv), 0);
	assert_int_equal(vcpu_x86_get_supported_cpuid(f->hv, e, &n), -EOPNOTSUPP);
	expect_detail(vcpu_hv_last_error(f->hv));
	assert_int_equal(vcpu_vm_create(f->hv, NULL, &f->vm), 0);
	add_cpu(f, 0);
	assert_int_equal(vcpu_x86_set_cpuid(f->cpu[0], e, 1), -EOPNOTSUPP);
	expect_detail(vcpu_last_error(f->cpu[0]));
}

/*
 * vcpu_x86_set_cpuid(): exactly the VMM's table (no APIC id, no hypervisor
 * bit of libvcpu's), read back by the guest's CPUID.
 */
static void test_cpuid_set_roundtrip(void **state)
{
	struct fx *f = *state;
	struct vcpu_x86_cpuid_entry e[8];
	uint32_t n = ARRAY_SIZE(e);
	struct rec r;
	struct vcpu_mock_step s[] = {
		{ .op = VCPU_MOCK_X86_CPUID, .value = 0 },
		reg_check(VCPU_REG_X86_RAX, 1),
		reg_check(VCPU_REG_X86_RBX, 0x61626364),
		{ .op = VCPU_MOCK_X86_CPUID, .value = 1 },
		reg_check(VCPU_REG_X86_RBX, 0x00010800), /* APIC id 0 as given, not 2 */
		reg_check(VCPU_REG_X86_RCX, 0x00b82201), /* no hypervisor bit */
		{ .op = VCPU_MOCK_X86_CPUID, .value = 7 },   /* dropped: zeros */
		reg_check(VCPU_REG_X86_RBX, 0),
		stop(),
	};

	open_arch(f, X86);
	add_cpu(f, 2);
	assert_int_equal(vcpu_x86_get_supported_cpuid(f->hv, e, &n), 0);
	e[0].eax = 1;
	e[0].ebx = 0x61626364;
	/* Two leaves only. */
	assert_int_equal(vcpu_x86_set_cpuid(f->cpu[2], e, 2), 0);
	rec_init(&r);
	SCRIPT(f, 2, s);
	assert_int_equal(vcpu_run(f->cpu[2], &H_ALL, &r), VCPU_STOP);
	expect_script(f, 2, ARRAY_SIZE(s));
}

/*
 * KVM_SET_CPUID2 after the first KVM_RUN: the same table again is taken,
 * another one is EINVAL (Linux 5.16+); padding is libvcpu's to refuse.
 */
static void test_cpuid_set_after_run(void **state)
{
	struct fx *f = *state;
	struct vcpu_x86_cpuid_entry e[8];
	uint32_t n = ARRAY_SIZE(e);

	open_arch(f, X86);
	add_cpu(f, 0);
	assert_int_equal(vcpu_x86_get_supported_cpuid(f->hv, e, &n), 0);
	/* libvcpu's checks, before the driver. */
	assert_int_equal(vcpu_x86_set_cpuid(f->cpu[0], NULL, 1), -EINVAL);
	e[1].padding[2] = 1;
	assert_int_equal(vcpu_x86_set_cpuid(f->cpu[0], e, n), -EINVAL);
	assert_non_null(strstr(vcpu_last_error(f->cpu[0]), "padding"));
	e[1].padding[2] = 0;
	/* Before the first run anything goes, an empty table too. */
	assert_int_equal(vcpu_x86_set_cpuid(f->cpu[0], NULL, 0), 0);
	assert_int_equal(vcpu_x86_set_cpuid(f->cpu[0], e, n), 0);
	run_ok(f, 0);
	assert_int_equal(vcpu_x86_set_cpuid(f->cpu[0], e, n), 0); /* identical */
	e[0].ebx ^= 1;
	assert_int_equal(vcpu_x86_set_cpuid(f->cpu[0], e, n), -EINVAL);
	assert_non_null(strstr(vcpu_last_error(f->cpu[0]), "KVM_SET_CPUID2"));
	e[0].ebx ^= 1;
	assert_int_equal(vcpu_x86_set_cpuid(f->cpu[0], e, n - 1), -EINVAL);
	assert_int_equal(vcpu_x86_set_cpuid(f->cpu[0], e, n), 0);
}

/* More leaves than the driver takes: E2BIG (KVM_MAX_CPUID_ENTRIES, 256). */
static void test_cpuid_too_many(void **state)
{
	struct fx *f = *state;
	const uint32_t n = 257;
	struct vcpu_x86_cpuid_entry *e = calloc(n, sizeof(*e));

	assert_non_null(e);
	open_arch(f, X86);
	add_cpu(f, 0);
	for (uint32_t i = 0; i < n; i++)
		e[i].function = 0x40000000u + i;
	assert_int_equal(vcpu_x86_set_cpuid(f->cpu[0], e, n), -E2BIG);
	assert_int_equal(vcpu_x86_set_cpuid(f->cpu[0], e, n - 1), 0);
	free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_caps),
		T(test_sve_flag),
		T(test_sve_finalize_rules),
		T(test_sve_register_rules),
		T(test_ptrauth),
		T(test_feature_absent),
		T(test_flags_elsewhere),
		T(test_pmu_after_gic),
		T(test_pmu_gic_retry),
		T(test_pmu_attr_rules),
		T(test_pmu_absent_attrs),
		T(test_cpuid_get),
		T(test_cpuid_elsewhere),
		T(test_cpuid_set_roundtrip),
		T(test_cpuid_set_after_run),
		T(test_cpuid_too_many),
	};

	warm_up();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
