/* SPDX-License-Identifier: MIT */
/*
 * Saving and restoring a vCPU's and a VM's state (LIBVCPU_1.1): the state
 * one class at a time, and snapshots of a whole VM that a new VM, in another
 * process, restores.  See vcpu_get_state(3) and vcpu_vm_snapshot(3).
 *
 * The x86_64 classes have the layouts of the Linux KVM uapi structures that
 * carry them (Documentation/virt/kvm/api.rst, by the ioctl named at each class): the
 * formats x86 VMMs already save, so that state moved between libvcpu and
 * another VMM needs no conversion.
 */
#ifndef VCPU_STATE_H
#define VCPU_STATE_H

#include <vcpu/vcpu.h>

#ifdef __cplusplus
extern "C" {
#endif

/** State classes: which part of a vCPU's or a VM's state a call moves. */
enum vcpu_state_class {
	/* vCPU, every architecture */
	VCPU_STATE_MP = 1,            /**< struct vcpu_mp_state */
	/* vCPU, x86_64 */
	VCPU_STATE_X86_REGS = 0x100,  /**< struct vcpu_x86_regs (KVM_GET_REGS) */
	VCPU_STATE_X86_SREGS,         /**< struct vcpu_x86_sregs (KVM_GET_SREGS) */
	VCPU_STATE_X86_XSAVE,         /**< the XSAVE area: FPU, SSE, AVX...; see vcpu_get_state(3) */
	VCPU_STATE_X86_XCRS,          /**< struct vcpu_x86_xcrs (KVM_GET_XCRS) */
	VCPU_STATE_X86_MSRS,          /**< struct vcpu_x86_msrs: every MSR the driver saves */
	VCPU_STATE_X86_DEBUGREGS,     /**< struct vcpu_x86_debugregs (KVM_GET_DEBUGREGS) */
	VCPU_STATE_X86_EVENTS,        /**< struct vcpu_x86_events (KVM_GET_VCPU_EVENTS) */
	VCPU_STATE_X86_LAPIC,         /**< struct vcpu_x86_lapic; needs the in-kernel irqchip */
	VCPU_STATE_X86_TSC_KHZ,       /**< struct vcpu_x86_tsc_khz: the guest's TSC rate */
	/* vCPU, arm64 */
	VCPU_STATE_ARM64_REGS = 0x200, /**< struct vcpu_arm64_regs: every register the driver lists */
	/* VM, x86_64: need vcpu_x86_create_irqchip() (PIT: with VCPU_X86_IRQCHIP_PIT) */
	VCPU_STATE_X86_PIC = 0x1000,  /**< struct vcpu_x86_pic: both 8259s */
	VCPU_STATE_X86_IOAPIC,        /**< struct vcpu_x86_ioapic */
	VCPU_STATE_X86_PIT,           /**< struct vcpu_x86_pit (KVM_GET_PIT2) */
	VCPU_STATE_X86_CLOCK,         /**< struct vcpu_x86_clock: kvmclock (KVM_GET_CLOCK) */
	/* VM, arm64: needs vcpu_vm_create_gic_v3() */
	VCPU_STATE_ARM64_VGIC = 0x1100, /**< struct vcpu_arm64_vgic: the GICv3's registers */
};

/** VCPU_STATE_MP: the vCPU's multiprocessing state (KVM_GET_MP_STATE values). */
struct vcpu_mp_state {
	uint32_t state; /**< VCPU_MP_* */
};
#define VCPU_MP_RUNNABLE 0
#define VCPU_MP_UNINITIALIZED 1  /**< x86: waiting for INIT */
#define VCPU_MP_INIT_RECEIVED 2  /**< x86: waiting for SIPI */
#define VCPU_MP_HALTED 3         /**< x86: HLT with interrupts to wake it */
#define VCPU_MP_SIPI_RECEIVED 4
#define VCPU_MP_STOPPED 5        /**< arm64: powered off (PSCI CPU_OFF) */
#define VCPU_MP_SUSPENDED 10     /**< arm64: in PSCI CPU_SUSPEND / WFI emulation */

/** VCPU_STATE_X86_REGS: general-purpose registers, RIP and RFLAGS (144 bytes). */
struct vcpu_x86_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
};

/** A descriptor-table register of struct vcpu_x86_sregs. */
struct vcpu_x86_dtable {
	uint64_t base;
	uint16_t limit;
	uint16_t reserved[3];
};

/** VCPU_STATE_X86_SREGS: segments, descriptor tables, control registers (312 bytes). */
struct vcpu_x86_sregs {
	struct vcpu_x86_segment cs, ds, es, fs, gs, ss, tr, ldt;
	struct vcpu_x86_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
	uint64_t interrupt_bitmap[4]; /**< an injected interrupt with no in-kernel LAPIC */
};

/**
 * VCPU_STATE_X86_XSAVE: the XSAVE area in the standard (non-compacted)
 * format of the Intel SDM, vol. 1, 13.4: the legacy FXSAVE region, the
 * XSAVE header (XSTATE_BV at byte 512; XCOMP_BV must be 0), then each
 * component at the offset CPUID leaf 0xD gives on the host.  Its size is at
 * least 4096 bytes and is what vcpu_get_state() with a NULL buffer answers.
 */
#define VCPU_X86_XSAVE_MIN_SIZE 4096u

/** One extended control register of struct vcpu_x86_xcrs. */
struct vcpu_x86_xcr {
	uint32_t xcr;      /**< 0: XCR0 */
	uint32_t reserved;
	uint64_t value;
};
#define VCPU_X86_MAX_XCRS 16u

/** VCPU_STATE_X86_XCRS (392 bytes). */
struct vcpu_x86_xcrs {
	uint32_t nr_xcrs;  /**< entries used, at most VCPU_X86_MAX_XCRS */
	uint32_t flags;    /**< 0 */
	struct vcpu_x86_xcr xcrs[VCPU_X86_MAX_XCRS];
	uint64_t reserved[16];
};

/** One MSR of struct vcpu_x86_msrs. */
struct vcpu_x86_msr {
	uint32_t index;
	uint32_t reserved;
	uint64_t value;
};

/**
 * VCPU_STATE_X86_MSRS: this header, then @count struct vcpu_x86_msr
 * (vcpu_x86_msrs_entries()).  Get: every MSR of the driver's save list
 * (KVM_GET_MSR_INDEX_LIST, api.rst 4.3), including IA32_TSC; set: any
 * MSRs, applied in order.  Size: 8 + 16 * count bytes.
 */
struct vcpu_x86_msrs {
	uint32_t count;
	uint32_t reserved;
};

/** The entries after a struct vcpu_x86_msrs header. */
static inline struct vcpu_x86_msr *vcpu_x86_msrs_entries(struct vcpu_x86_msrs *m)
{
	return (struct vcpu_x86_msr *)(void *)(m + 1);
}

/** VCPU_STATE_X86_DEBUGREGS (128 bytes). */
struct vcpu_x86_debugregs {
	uint64_t db[4];    /**< DR0-DR3 */
	uint64_t dr6, dr7; /**< upper 32 bits must be 0 */
	uint64_t flags;    /**< 0 */
	uint64_t reserved[9];
};

/**
 * VCPU_STATE_X86_EVENTS: pending and injected exceptions, interrupts, NMI,
 * SMM, the interrupt shadow (64 bytes; KVM_GET_VCPU_EVENTS).
 * @flags says which optional fields a set applies (VCPU_X86_EVENTS_VALID_*).
 */
struct vcpu_x86_events {
	struct {
		uint8_t injected, nr, has_error_code, pending;
		uint32_t error_code;
	} exception;
	struct {
		uint8_t injected, nr, soft, shadow;
	} interrupt;
	struct {
		uint8_t injected, pending, masked, pad;
	} nmi;
	uint32_t sipi_vector;
	uint32_t flags;
	struct {
		uint8_t smm, pending, smm_inside_nmi, latched_init;
	} smi;
	struct {
		uint8_t pending;
	} triple_fault;
	uint8_t reserved[26];
	uint8_t exception_has_payload;
	uint64_t exception_payload;
};
#define VCPU_X86_EVENTS_VALID_NMI_PENDING  0x01u
#define VCPU_X86_EVENTS_VALID_SIPI_VECTOR  0x02u
#define VCPU_X86_EVENTS_VALID_SHADOW       0x04u
#define VCPU_X86_EVENTS_VALID_SMM          0x08u
#define VCPU_X86_EVENTS_VALID_PAYLOAD      0x10u
#define VCPU_X86_EVENTS_VALID_TRIPLE_FAULT 0x20u

/**
 * VCPU_STATE_X86_TSC_KHZ: the rate of the guest's TSC (KVM_GET_TSC_KHZ,
 * KVM_SET_TSC_KHZ), so that a guest moved to a host with another TSC rate
 * keeps its own (where the driver scales or catches up); the TSC's value
 * is the MSR IA32_TSC of VCPU_STATE_X86_MSRS.  A driver without
 * KVM_CAP_GET_TSC_KHZ has no such class (-ENXIO, like a missing device).
 */
struct vcpu_x86_tsc_khz {
	uint32_t khz;
	uint32_t reserved;
};

/** VCPU_STATE_X86_LAPIC: the local APIC's 4 KiB register page, first 1 KiB. */
struct vcpu_x86_lapic {
	uint8_t regs[1024];
};

/** One 8259 of struct vcpu_x86_pic (16 bytes, struct kvm_pic_state). */
struct vcpu_x86_pic_chip {
	uint8_t last_irr, irr, imr, isr, priority_add, irq_base, read_reg_select, poll;
	uint8_t special_mask, init_state, auto_eoi, rotate_on_auto_eoi;
	uint8_t special_fully_nested_mode, init4, elcr, elcr_mask;
};

/** VCPU_STATE_X86_PIC: the master and slave 8259 (KVM_GET_IRQCHIP chips 0, 1). */
struct vcpu_x86_pic {
	struct vcpu_x86_pic_chip master, slave;
};

/** VCPU_STATE_X86_IOAPIC (216 bytes, struct kvm_ioapic_state). */
struct vcpu_x86_ioapic {
	uint64_t base_address;
	uint32_t ioregsel, id, irr, pad;
	uint64_t redirtbl[24]; /**< the 64-bit redirection entries, as the IOAPIC holds them */
};

/** A PIT channel of struct vcpu_x86_pit (24 bytes, struct kvm_pit_channel_state). */
struct vcpu_x86_pit_channel {
	uint32_t count;
	uint16_t latched_count;
	uint8_t count_latched, status_latched, status, read_state, write_state;
	uint8_t write_latch, rw_mode, mode, bcd, gate;
	int64_t count_load_time;
};

/** VCPU_STATE_X86_PIT (112 bytes, struct kvm_pit_state2). */
struct vcpu_x86_pit {
	struct vcpu_x86_pit_channel channels[3];
	uint32_t flags;
	uint32_t reserved[9];
};

/**
 * VCPU_STATE_X86_CLOCK: the VM's kvmclock (48 bytes, struct kvm_clock_data).  Set uses @clock only; @flags is what the driver reported.
 */
struct vcpu_x86_clock {
	uint64_t clock;    /**< guest nanoseconds */
	uint32_t flags;
	uint32_t pad0;
	uint64_t realtime;
	uint64_t host_tsc;
	uint32_t pad[4];
};

/**
 * One register of VCPU_STATE_ARM64_REGS: the driver's own id (KVM: the
 * KVM_GET_REG_LIST id, whose bits 52-55 give its size, as
 * vcpu_arm64_reg_bytes() reads them), then its value, little-endian, in
 * that many bytes from @value (vcpu_arm64_reg_value(): @value is only its
 * first 8), padded with zeros to a multiple of 8 (at least 8): 16 bytes
 * for a 64-bit register, 24 for a 128-bit V register, 264 for a 2048-bit
 * SVE Z register.  vcpu_arm64_regs_next() steps over it.
 */
struct vcpu_arm64_reg {
	uint64_t id;
	uint8_t value[8];
};

/** The bytes of the value of register @id (1 << bits 52-55 of the id). */
static inline size_t vcpu_arm64_reg_bytes(uint64_t id)
{
	return (size_t)1 << ((id >> 52) & 0xf);
}

/** The bytes @r takes in a struct vcpu_arm64_regs: 8 and its value, padded to 8. */
static inline size_t vcpu_arm64_reg_size(const struct vcpu_arm64_reg *r)
{
	size_t n = vcpu_arm64_reg_bytes(r->id);

	return 8 + (n < 8 ? 8 : (n + 7) & ~(size_t)7);
}

/** Where @r's value starts (its vcpu_arm64_reg_bytes() bytes, little-endian). */
static inline uint8_t *vcpu_arm64_reg_value(struct vcpu_arm64_reg *r)
{
	return (uint8_t *)r + 8;
}

/** The register after @r. */
static inline struct vcpu_arm64_reg *vcpu_arm64_regs_next(struct vcpu_arm64_reg *r)
{
	return (struct vcpu_arm64_reg *)(void *)((uint8_t *)r + vcpu_arm64_reg_size(r));
}

/**
 * VCPU_STATE_ARM64_REGS: this header, then @count registers
 * (vcpu_arm64_regs_first(), vcpu_arm64_regs_next()): every register the
 * driver lists for the vCPU (core, FP/SIMD, SVE with VCPU_CREATE_ARM64_SVE,
 * system, timer and firmware registers), in the driver's order, which is
 * also the order a set applies them.  Size: 8 and each register's.
 */
struct vcpu_arm64_regs {
	uint32_t count;
	uint32_t reserved;
};

/** The first register after a struct vcpu_arm64_regs header. */
static inline struct vcpu_arm64_reg *vcpu_arm64_regs_first(struct vcpu_arm64_regs *r)
{
	return (struct vcpu_arm64_reg *)(void *)(r + 1);
}

/**
 * One register of struct vcpu_arm64_vgic, as the KVM vGICv3 device names
 * it (Documentation/virt/kvm/devices/arm-vgic-v3.rst): @group a
 * KVM_DEV_ARM_VGIC_GRP_* number (1 distributor, 5 redistributor, 6 CPU
 * interface, 7 line levels; 0 addresses and 3 interrupt count, which a set
 * checks rather than writes), @attr its attribute (a vCPU's affinity in
 * bits 63-32, the offset or register encoding below), @value the register.
 */
struct vcpu_arm64_vgic_reg {
	uint32_t group;
	uint32_t reserved;
	uint64_t attr;
	uint64_t value;
};

/**
 * VCPU_STATE_ARM64_VGIC: this header, then @count struct vcpu_arm64_vgic_reg
 * (vcpu_arm64_vgic_entries()): the distributor's and each redistributor's
 * and CPU interface's registers and the SPIs' line levels, in the order a
 * set writes them back (the order QEMU restores a GICv3 in).  Size:
 * 8 + 24 * count bytes; a few thousand bytes per vCPU and 100 SPIs.
 */
struct vcpu_arm64_vgic {
	uint32_t count;
	uint32_t reserved;
};

/** The entries after a struct vcpu_arm64_vgic header. */
static inline struct vcpu_arm64_vgic_reg *vcpu_arm64_vgic_entries(struct vcpu_arm64_vgic *g)
{
	return (struct vcpu_arm64_vgic_reg *)(void *)(g + 1);
}

/**
 * vcpu_get_state() / vcpu_set_state() - read or write one class of a vCPU's
 * state.  Neither may be called while the vCPU runs (-EBUSY).
 * @cls: enum vcpu_state_class, a vCPU class of the vCPU's architecture.
 * @buf, @len (get): the buffer and, in, its size; out, the bytes written.
 *       With @buf NULL nothing is read: *@len is set to the size the class
 *       needs (an upper bound for MSRS and ARM64_REGS) and 0 is returned.
 * @buf, @len (set): the state, @len bytes, a size the class allows.
 * Return: 0; -EINVAL for NULL arguments, a class unknown or of another
 * architecture or of the VM, or a @len the class does not allow (set);
 * -ENOSPC when *@len is too small (get: *@len is set to the size needed);
 * -EBUSY while the vCPU runs; -ENXIO for VCPU_STATE_X86_LAPIC without an
 * in-kernel irqchip; -EOPNOTSUPP where the backend cannot move this class
 * (VCPU_CAP_STATE); or the driver's errno (e.g. -EINVAL for a value it
 * refuses).  vcpu_last_error() names the class and the cause.
 */
VCPU_API int vcpu_get_state(struct vcpu *cpu, uint32_t cls, void *buf, size_t *len);
VCPU_API int vcpu_set_state(struct vcpu *cpu, uint32_t cls, const void *buf, size_t len);

/**
 * vcpu_vm_get_state() / vcpu_vm_set_state() - the same for a VM class
 * (VCPU_STATE_X86_PIC, _IOAPIC, _PIT, _CLOCK; VCPU_STATE_ARM64_VGIC).  -EBUSY while any vCPU of
 * the VM runs; -ENXIO when the VM lacks the device; errors otherwise as
 * vcpu_get_state(), with details from vcpu_vm_last_error().
 */
VCPU_API int vcpu_vm_get_state(struct vcpu_vm *vm, uint32_t cls, void *buf, size_t *len);
VCPU_API int vcpu_vm_set_state(struct vcpu_vm *vm, uint32_t cls, const void *buf, size_t len);

/** Snapshot format version this libvcpu writes (and the only one it reads). */
#define VCPU_SNAPSHOT_VERSION 1u

/**
 * vcpu_vm_snapshot() - save a whole VM's state into a new blob: every
 * vCPU's classes, the VM's devices and the memory layout (guest physical
 * address, size and flags of each region), not guest RAM, which the VMM
 * saves itself, as it owns it (vcpu_vm_snapshot(3) shows how).  The blob is
 * versioned, self-describing and little-endian, with a CRC-32 over it all.
 * No vCPU may run meanwhile: stop them (vcpu_vm_stop_all()) first.
 * @blob: set to a malloc()ed buffer the caller free()s.
 * Return: 0; -EINVAL for NULL arguments; -EBUSY while a vCPU runs;
 * -EOPNOTSUPP where the backend cannot save state (VCPU_CAP_STATE 0);
 * -ENOMEM; -E2BIG past 1 GiB; or an error of vcpu_get_state().  Nothing
 * is allocated on error.
 */
VCPU_API int vcpu_vm_snapshot(struct vcpu_vm *vm, void **blob, size_t *len);

/**
 * vcpu_vm_restore() - put a snapshot's state into @vm, a VM of the same
 * architecture and backend with the same memory layout (the same regions,
 * mapped by the VMM with the RAM it saved) and the same vCPU ids, created
 * but not yet run, and the same in-kernel devices.  The blob is checked
 * whole before anything is written.
 * Return: 0; -EINVAL for NULL arguments or a VM that does not match (the
 * detail says what differs: architecture, backend, a region, a vCPU, a
 * device); -EBADMSG for a blob that is truncated, corrupted or not a
 * snapshot; -EPROTONOSUPPORT for another format version; -EBUSY while a
 * vCPU runs; or an error of vcpu_set_state(), after which the VM's state
 * is partly restored and the VM should be destroyed.
 */
VCPU_API int vcpu_vm_restore(struct vcpu_vm *vm, const void *blob, size_t len);

/** What vcpu_snapshot_info() reads from a snapshot's header and layout. */
struct vcpu_snapshot_info {
	uint32_t version;     /**< VCPU_SNAPSHOT_VERSION */
	uint32_t arch;        /**< enum vcpu_arch */
	uint32_t backend;     /**< enum vcpu_backend */
	uint32_t nr_vcpus;
	uint32_t nr_regions;  /**< memory regions; vcpu_snapshot_region() reads each */
	uint32_t devices;     /**< VCPU_SNAPSHOT_DEV_*: the in-kernel devices the VM had */
	uint32_t reserved[2];
};

/* struct vcpu_snapshot_info.devices: what the restoring VM must create too. */
#define VCPU_SNAPSHOT_DEV_X86_IRQCHIP (1u << 0) /**< vcpu_x86_create_irqchip() */
#define VCPU_SNAPSHOT_DEV_X86_PIT     (1u << 1) /**< ... with VCPU_X86_IRQCHIP_PIT */
#define VCPU_SNAPSHOT_DEV_ARM64_GIC_V3 (1u << 2) /**< vcpu_vm_create_gic_v3(), same bases and IRQs */

/**
 * vcpu_snapshot_info() - check a snapshot (header, CRC, every section's
 * bounds) and describe it, so that a VMM can build the matching VM before
 * vcpu_vm_restore().  Touches no VM.
 * Return: 0; -EINVAL for NULL arguments; -EBADMSG for a truncated or
 * corrupted blob; -EPROTONOSUPPORT for another format version.
 */
VCPU_API int vcpu_snapshot_info(const void *blob, size_t len, struct vcpu_snapshot_info *info);

/** A memory region of a snapshot, as the saved VM had it mapped. */
struct vcpu_snapshot_region {
	uint64_t gpa;
	uint64_t size;
	uint32_t flags;    /**< VCPU_MEM_* of the vcpu_vm_map() (or vcpu_vm_alloc()) call */
	uint32_t reserved;
};

/**
 * vcpu_snapshot_region() - the @index'th memory region of a snapshot, in
 * the order the VM had them.  The VMM maps its saved RAM there again.
 * Return: 0; -EINVAL for NULL arguments; -ERANGE for @index >= nr_regions;
 * the errors of vcpu_snapshot_info().
 */
VCPU_API int vcpu_snapshot_region(const void *blob, size_t len, uint32_t index,
				  struct vcpu_snapshot_region *region);

/**
 * vcpu_snapshot_vcpu() - the id of a snapshot's @index'th vCPU (in the
 * order the VM created them), for the vcpu_create() of the restoring VM.
 * Return: 0; -EINVAL for NULL arguments; -ERANGE for @index >= nr_vcpus;
 * the errors of vcpu_snapshot_info().
 */
VCPU_API int vcpu_snapshot_vcpu(const void *blob, size_t len, uint32_t index, uint32_t *id);

#ifdef __cplusplus
}
#endif

#endif /* VCPU_STATE_H */
