/* SPDX-License-Identifier: MIT */
/*
 * arm64 extensions of the libvcpu API: the in-kernel GICv3 and the SMCCC
 * and PSCI constants of hypercall handling.  Every function returns -EINVAL
 * on a VM whose architecture is not arm64 and -EOPNOTSUPP on a backend
 * without the feature.
 */
#ifndef VCPU_ARM64_H
#define VCPU_ARM64_H

#include <vcpu/vcpu.h>

#ifdef __cplusplus
extern "C" {
#endif

/** GICv3 distributor frame size and per-vCPU redistributor size (bytes). */
#define VCPU_GIC_V3_DIST_SIZE 0x10000u
#define VCPU_GIC_V3_REDIST_SIZE_PER_CPU 0x20000u

/**
 * vcpu_vm_create_gic_v3() - create and initialise the in-kernel GICv3.
 * Call after every vCPU of the VM exists and before any runs: the
 * redistributor region [redist_base, + nr_vcpus * 128 KiB) is sized from them.
 * @dist_base, @redist_base: 64 KiB aligned guest-physical addresses.
 * @nr_irqs: interrupt lines including the 32 private ones, a multiple of 32
 *           in 64..1024.
 * KVM: then each vCPU created with VCPU_CREATE_ARM64_PMU gets its PMU's
 * interrupt, PPI 23, and its PMU initialised (which KVM allows only once
 * the vGIC is).  If that fails, the GICv3 stays, and a second call (its
 * arguments then unused) sets up only the PMUs left.
 * Return: 0; -EINVAL for misaligned bases or a bad @nr_irqs; -EEXIST if the
 * VM already has one; -EBUSY if a vCPU has already run; or the driver's errno.
 */
VCPU_API int vcpu_vm_create_gic_v3(struct vcpu_vm *vm, uint64_t dist_base,
				   uint64_t redist_base, uint32_t nr_irqs);

/* vcpu_vm_forward_hypercalls() (SMCCC function ids on arm64) is in <vcpu/vcpu.h>. */

/* SMCCC return values and the PSCI function ids VMMs commonly handle. */
#define VCPU_SMCCC_RET_SUCCESS 0
#define VCPU_SMCCC_RET_NOT_SUPPORTED ((uint64_t)-1)
#define VCPU_PSCI_0_2_FN_BASE 0x84000000u
#define VCPU_PSCI_0_2_FN64_BASE 0xc4000000u
#define VCPU_PSCI_VERSION 0x84000000u
#define VCPU_PSCI_CPU_ON_64 0xc4000003u
#define VCPU_PSCI_SYSTEM_OFF 0x84000008u
#define VCPU_PSCI_SYSTEM_RESET 0x84000009u

#ifdef __cplusplus
}
#endif

#endif /* VCPU_ARM64_H */
