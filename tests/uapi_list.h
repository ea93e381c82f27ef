/* SPDX-License-Identifier: MIT */
/*
 * What tests/check_uapi.c compares between lib/kvm/kvm_abi.h and the build
 * host's <linux/kvm.h>: X() a number (ioctl or constant), S() a structure's
 * size, O() a field's offset.  Names are the uapi's; each appears in both.
 */
#define UAPI_VALUES                                                                       \
	X(KVM_GET_MSR_INDEX_LIST) X(KVM_GET_MSRS) X(KVM_SET_MSRS) X(KVM_GET_LAPIC)         \
	X(KVM_SET_LAPIC) X(KVM_GET_VCPU_EVENTS) X(KVM_SET_VCPU_EVENTS) X(KVM_GET_DEBUGREGS) \
	X(KVM_SET_DEBUGREGS) X(KVM_GET_XSAVE) X(KVM_SET_XSAVE) X(KVM_GET_XSAVE2)            \
	X(KVM_GET_XCRS) X(KVM_SET_XCRS) X(KVM_GET_IRQCHIP) X(KVM_SET_IRQCHIP)               \
	X(KVM_SET_CLOCK) X(KVM_GET_CLOCK) X(KVM_GET_PIT2) X(KVM_SET_PIT2)                   \
	X(KVM_GET_REG_LIST) X(KVM_GET_MP_STATE) X(KVM_SET_MP_STATE) X(KVM_GET_SREGS)        \
	X(KVM_SET_SREGS) X(KVM_GET_DIRTY_LOG) X(KVM_CAP_MP_STATE) X(KVM_CAP_PIT_STATE2)     \
	X(KVM_CAP_ADJUST_CLOCK) X(KVM_CAP_VCPU_EVENTS) X(KVM_CAP_DEBUGREGS)                 \
	X(KVM_CAP_XSAVE) X(KVM_CAP_XCRS) X(KVM_CAP_XSAVE2) X(KVM_MAX_XCRS)                  \
	X(KVM_VCPUEVENT_VALID_NMI_PENDING) X(KVM_VCPUEVENT_VALID_SIPI_VECTOR)               \
	X(KVM_VCPUEVENT_VALID_SHADOW) X(KVM_VCPUEVENT_VALID_SMM)                            \
	X(KVM_VCPUEVENT_VALID_PAYLOAD) X(KVM_VCPUEVENT_VALID_TRIPLE_FAULT)                  \
	X(KVM_CLOCK_TSC_STABLE) X(KVM_CLOCK_REALTIME) X(KVM_CLOCK_HOST_TSC)                 \
	X(KVM_IRQCHIP_PIC_MASTER) X(KVM_IRQCHIP_PIC_SLAVE) X(KVM_IRQCHIP_IOAPIC)       \
	X(KVM_CLEAR_DIRTY_LOG) X(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)                         \
	X(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) X(KVM_DIRTY_LOG_INITIALLY_SET)         \
	X(KVM_GET_TSC_KHZ) X(KVM_SET_TSC_KHZ) X(KVM_CAP_GET_TSC_KHZ) X(KVM_CAP_TSC_CONTROL)         \
	X(KVM_ARM_VCPU_FINALIZE) X(KVM_CAP_ARM_PMU_V3) X(KVM_CAP_ARM_SVE)                   \
	X(KVM_CAP_ARM_PTRAUTH_ADDRESS) X(KVM_CAP_ARM_PTRAUTH_GENERIC)                       \
	X(KVM_GET_SUPPORTED_CPUID) X(KVM_SET_CPUID2) X(KVM_CPUID_FLAG_SIGNIFCANT_INDEX)

#define UAPI_SIZES                                                                        \
	S(kvm_msr_entry) S(kvm_msrs) S(kvm_msr_list) S(kvm_xsave) S(kvm_xcr) S(kvm_xcrs)   \
	S(kvm_debugregs) S(kvm_vcpu_events) S(kvm_lapic_state) S(kvm_pic_state)             \
	S(kvm_ioapic_state) S(kvm_irqchip) S(kvm_pit_channel_state) S(kvm_pit_state2)       \
	S(kvm_clock_data) S(kvm_reg_list) S(kvm_sregs) S(kvm_segment) S(kvm_mp_state)       \
	S(kvm_clear_dirty_log)      \
	S(kvm_cpuid_entry2) S(kvm_cpuid2)

#define UAPI_OFFSETS                                                                      \
	O(kvm_vcpu_events, flags) O(kvm_vcpu_events, smi) O(kvm_vcpu_events, triple_fault)  \
	O(kvm_vcpu_events, exception_has_payload) O(kvm_vcpu_events, exception_payload)     \
	O(kvm_xcrs, xcrs) O(kvm_xcrs, padding) O(kvm_debugregs, flags)                      \
	O(kvm_irqchip, chip) O(kvm_ioapic_state, redirtbl) O(kvm_pit_state2, flags)         \
	O(kvm_pit_channel_state, count_load_time) O(kvm_clock_data, realtime)               \
	O(kvm_clock_data, host_tsc) O(kvm_msrs, entries) O(kvm_reg_list, reg)               \
	O(kvm_clear_dirty_log, first_page) O(kvm_clear_dirty_log, dirty_bitmap)              \
	O(kvm_cpuid_entry2, flags) O(kvm_cpuid_entry2, padding) O(kvm_cpuid2, entries)
