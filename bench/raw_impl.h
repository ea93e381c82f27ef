/* SPDX-License-Identifier: MIT */
/*
 * The raw KVM loop, included once per "kernel" (raw_kvm.c, raw_seam.c).
 * The includer defines:
 *   RAW_OPS                 the name of the struct raw_ops to define
 *   RAW_OPEN(r)             open /dev/kvm: fd or -errno
 *   RAW_CLOSE(r, fd)
 *   RAW_IOCTL(r, fd, req, arg)          result or -errno
 *   RAW_MMAP(r, fd, len, out)           0 or -errno, *out = mapping
 *   RAW_MUNMAP(r, p, len)
 * Definitions only from kvm_abi.h (numbers checked against doc/abi/kvm.md).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "guest.h"
#include "raw.h"

static int raw_open(struct raw_vm *r)
{
	int v;

	r->kvm = r->vm = r->vcpu = -1;
	r->kvm = RAW_OPEN(r);
	if (r->kvm < 0)
		return r->kvm;
	v = RAW_IOCTL(r, r->kvm, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION_EXPECTED)
		goto fail;
	v = RAW_IOCTL(r, r->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (v < (int)sizeof(struct kvm_run))
		goto fail;
	r->run_size = (size_t)v;
	return 0;
fail:
	RAW_CLOSE(r, r->kvm);
	r->kvm = -1;
	return v < 0 ? v : -EPROTO;
}

static void raw_close(struct raw_vm *r)
{
	if (r->kvm >= 0)
		RAW_CLOSE(r, r->kvm);
	r->kvm = -1;
}

static int raw_arch_init(struct raw_vm *r)
{
	if (r->arch == VCPU_ARCH_ARM64) {
		struct kvm_vcpu_init init;
		int v;

		memset(&init, 0, sizeof(init));
		v = RAW_IOCTL(r, r->vm, KVM_ARM_PREFERRED_TARGET, (unsigned long)&init);
		if (v < 0)
			return v;
		memset(init.features, 0, sizeof(init.features));
		init.features[0] = 1u << KVM_ARM_VCPU_PSCI_0_2;
		return RAW_IOCTL(r, r->vcpu, KVM_ARM_VCPU_INIT, (unsigned long)&init);
	}
	/* x86: the host's CPUID, as libvcpu (and QEMU's -cpu host) give it. */
	enum { NENT = 256 };
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + NENT * sizeof(c->entries[0]));
	int v;

	if (!c)
		return -ENOMEM;
	c->nent = NENT;
	v = RAW_IOCTL(r, r->kvm, KVM_GET_SUPPORTED_CPUID, (unsigned long)c);
	if (v >= 0)
		v = RAW_IOCTL(r, r->vcpu, KVM_SET_CPUID2, (unsigned long)c);
	free(c);
	return v;
}

static void raw_destroy(struct raw_vm *r)
{
	if (r->run)
		RAW_MUNMAP(r, r->run, r->run_size);
	r->run = NULL;
	if (r->vcpu >= 0)
		RAW_CLOSE(r, r->vcpu);
	if (r->vm >= 0)
		RAW_CLOSE(r, r->vm);
	r->vcpu = r->vm = -1;
}

static int raw_create(struct raw_vm *r)
{
	struct kvm_userspace_memory_region m = {
		.slot = 0,
		.guest_phys_addr = r->ram_gpa,
		.memory_size = r->ram_size,
		.userspace_addr = (uint64_t)(uintptr_t)r->ram,
	};
	void *run = NULL;
	int v;

	r->vm = r->vcpu = -1;
	r->run = NULL;
	v = RAW_IOCTL(r, r->kvm, KVM_CREATE_VM, 0);
	if (v < 0)
		return v;
	r->vm = v;
	/* Intel needs it for real-mode guests; the address libvcpu and QEMU use. */
	if (r->arch == VCPU_ARCH_X86_64 && (v = RAW_IOCTL(r, r->vm, KVM_SET_TSS_ADDR, 0xfffbd000ul)) < 0)
		goto fail;
	v = RAW_IOCTL(r, r->vm, KVM_SET_USER_MEMORY_REGION, (unsigned long)&m);
	if (v < 0)
		goto fail;
	v = RAW_IOCTL(r, r->vm, KVM_CREATE_VCPU, 0);
	if (v < 0)
		goto fail;
	r->vcpu = v;
	v = RAW_MMAP(r, r->vcpu, r->run_size, &run);
	if (v < 0)
		goto fail;
	r->run = run;
	v = raw_arch_init(r);
	if (v < 0)
		goto fail;
	return 0;
fail:
	raw_destroy(r);
	return v;
}

static int raw_set_one(struct raw_vm *r, uint64_t id, uint64_t value)
{
	struct kvm_one_reg one = { .id = id, .addr = (uint64_t)(uintptr_t)&value };

	return RAW_IOCTL(r, r->vcpu, KVM_SET_ONE_REG, (unsigned long)&one);
}

static int raw_boot(struct raw_vm *r, enum bseam_pattern p, const void *code, size_t size)
{
	int v;

	if (r->arch == VCPU_ARCH_ARM64) {
		memcpy((uint8_t *)r->ram + (r->code_gpa - r->ram_gpa), code, size);
		if (p == BSEAM_HYPERCALL) {
			struct kvm_smccc_filter f = { .base = (uint32_t)BSEAM_HC_NR, .nr_functions = 1,
						      .action = KVM_SMCCC_FILTER_FWD_TO_USER };
			struct kvm_device_attr a = { .group = KVM_ARM_VM_SMCCC_CTRL,
						     .attr = KVM_ARM_VM_SMCCC_FILTER,
						     .addr = (uint64_t)(uintptr_t)&f };

			v = RAW_IOCTL(r, r->vm, KVM_SET_DEVICE_ATTR, (unsigned long)&a);
			if (v < 0)
				return v;
		}
		v = raw_set_one(r, KVM_REG_ARM64_CORE_PC, r->code_gpa);
		if (v >= 0)
			v = raw_set_one(r, KVM_REG_ARM64_CORE_PSTATE, GUEST_ARM64_PSTATE);
		if (v >= 0)
			v = raw_set_one(r, KVM_REG_ARM64_CORE_X(5), BSEAM_MMIO_VALUE);
		return v < 0 ? v : 0;
	}
	struct kvm_sregs s;
	struct kvm_regs_x86 g;
	struct kvm_segment *segs[] = { &s.cs, &s.ds, &s.es, &s.ss };

	memcpy((uint8_t *)r->ram + (r->code_gpa - r->ram_gpa), code, size);
	v = RAW_IOCTL(r, r->vcpu, KVM_GET_SREGS, (unsigned long)&s);
	if (v < 0)
		return v;
	for (unsigned i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
		segs[i]->base = 0;
		segs[i]->selector = 0;
	}
	v = RAW_IOCTL(r, r->vcpu, KVM_SET_SREGS, (unsigned long)&s);
	if (v < 0)
		return v;
	memset(&g, 0, sizeof(g));
	g.rip = r->code_gpa;
	g.rflags = 2;
	g.rax = BSEAM_MMIO_VALUE;
	v = RAW_IOCTL(r, r->vcpu, KVM_SET_REGS_X86, (unsigned long)&g);
	return v < 0 ? v : 0;
}

/*
 * One exit, checked as libvcpu's trivial handlers check it, answered as
 * they answer it.  The arm64 hypercall reads x1..x7 (one ONE_REG each: arm64
 * has no KVM_GET_REGS), the work any VMM that serves SMCCC arguments does,
 * and what libvcpu does before its handler sees them.
 */
static int raw_exit(struct raw_vm *r, enum bseam_pattern p)
{
	struct kvm_run *run = r->run;

	switch (p) {
	case BSEAM_MMIO_WRITE:
		if (run->exit_reason != KVM_EXIT_MMIO || !run->u.mmio.is_write ||
		    run->u.mmio.phys_addr != (r->arch == VCPU_ARCH_ARM64 ? BSEAM_MMIO_ARM64 : BSEAM_MMIO_X86) ||
		    run->u.mmio.data[0] != (uint8_t)BSEAM_MMIO_VALUE)
			return -EPROTO;
		return 0;
	case BSEAM_PIO_OUT:
		if (run->exit_reason != KVM_EXIT_IO || run->u.io.direction != KVM_EXIT_IO_OUT ||
		    run->u.io.port != BSEAM_PIO_PORT || run->u.io.size != 1 || run->u.io.count != 1 ||
		    run->u.io.data_offset < sizeof(*run) || run->u.io.data_offset >= r->run_size ||
		    ((const uint8_t *)run)[run->u.io.data_offset] != (uint8_t)BSEAM_MMIO_VALUE)
			return -EPROTO;
		return 0;
	case BSEAM_HYPERCALL:
		if (run->exit_reason != KVM_EXIT_HYPERCALL || run->u.hypercall.nr != BSEAM_HC_NR)
			return -EPROTO;
		if (r->arch == VCPU_ARCH_ARM64) {
			uint64_t args[7];
			int v;

			for (unsigned i = 0; i < 7; i++) {
				struct kvm_one_reg one = { .id = KVM_REG_ARM64_CORE_X(i + 1),
							   .addr = (uint64_t)(uintptr_t)&args[i] };
				v = RAW_IOCTL(r, r->vcpu, KVM_GET_ONE_REG, (unsigned long)&one);
				if (v < 0)
					return v;
			}
			v = raw_set_one(r, KVM_REG_ARM64_CORE_X(0), BSEAM_HC_RET);
			return v < 0 ? v : 0;
		}
		run->u.hypercall.ret = BSEAM_HC_RET;
		return 0;
	case BSEAM_SYSTEM_EVENT:
		return run->exit_reason == KVM_EXIT_SYSTEM_EVENT &&
			       run->u.system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN ? 0 : -EPROTO;
	}
	return -EINVAL;
}

static int raw_run(struct raw_vm *r, enum bseam_pattern p, uint64_t n)
{
	for (uint64_t i = 0; i < n;) {
		int v = RAW_IOCTL(r, r->vcpu, KVM_RUN, 0);

		if (v == -EINTR && !raw_stop)
			continue; /* a signal, not an exit */
		if (v == -EINTR)
			return -ETIMEDOUT;
		if (v < 0)
			return v;
		v = raw_exit(r, p);
		if (v < 0)
			return v;
		i++;
	}
	return 0;
}

const struct raw_ops RAW_OPS = {
	.name = "raw",
	.open = raw_open,
	.create = raw_create,
	.boot = raw_boot,
	.run = raw_run,
	.destroy = raw_destroy,
	.close = raw_close,
};
