/* SPDX-License-Identifier: MIT */
/*
 * The MediaTek GenieZone userspace ABI (/dev/gzvm), written from
 * doc/abi/geniezone.md (v13 series; v9 patch 09/21 "Add vcpu support").
 * Our own definitions, not the kernel's header: the driver is arm64-only but
 * these layouts are LP64-identical, so the backend and its mock build and
 * run on any host.  Every number is checked at compile time against the
 * tables; section references (§) are to doc/abi/geniezone.md.
 */
#ifndef VCPU_GENIEZONE_ABI_H
#define VCPU_GENIEZONE_ABI_H

#include <stddef.h>
#include <stdint.h>

/* asm-generic ioctl encoding with GenieZone's own magic (§2: GZVM_IOC_MAGIC). */
#define GZVM_IOC_MAGIC 0x92ul
#define GZABI_IOC(dir, nr, size)                                                            \
	((unsigned long)(((unsigned long)(dir) << 30) | ((unsigned long)(size) << 16) |     \
			 (GZVM_IOC_MAGIC << 8) | (unsigned long)(nr)))
#define GZABI_IO(nr) GZABI_IOC(0, nr, 0)
#define GZABI_IOW(nr, type) GZABI_IOC(1, nr, sizeof(type))
#define GZABI_IOWR(nr, type) GZABI_IOC(3, nr, sizeof(type))
#define GZABI_IOC_TYPE(v) (((v) >> 8) & 0xffu)

/* ------------------------------------------------------------------------ */
/* §4 structures                                                              */

/* 264 bytes; passed BY POINTER to GZVM_RUN, never mmapped (§5). */
struct gzvm_vcpu_run {
	uint32_t exit_reason;
	uint8_t immediate_exit;
	uint8_t padding1[3];
	union {
		struct {
			uint64_t phys_addr;
			uint8_t data[8];
			uint64_t size; /* u64, unlike KVM's u32 len */
			uint32_t reg_nr;
			uint8_t is_write;
		} mmio;
		struct {
			uint64_t hardware_entry_failure_reason;
			uint32_t cpu;
		} fail_entry;
		struct {
			uint32_t exception;
			uint32_t error_code;
			uint64_t fault_gpa;
			uint64_t reserved[30];
		} exception;
		struct {
			uint64_t args[8]; /* in/out: x0..x7 */
		} hypercall;
		struct {
			uint32_t suberror;
			uint32_t ndata;
			uint64_t data[16];
		} internal;
		struct {
			uint32_t type;
			uint32_t ndata;
			uint64_t data[16];
		} system_event;
		uint8_t padding[256];
	} u;
};

_Static_assert(sizeof(struct gzvm_vcpu_run) == 264, "gzvm_vcpu_run size (§4)");
_Static_assert(_Alignof(struct gzvm_vcpu_run) == 8, "gzvm_vcpu_run alignment");
_Static_assert(offsetof(struct gzvm_vcpu_run, immediate_exit) == 4, "immediate_exit");
_Static_assert(offsetof(struct gzvm_vcpu_run, padding1) == 5, "padding1");
_Static_assert(offsetof(struct gzvm_vcpu_run, u) == 8, "exit union");
_Static_assert(offsetof(struct gzvm_vcpu_run, u.mmio.data) == 16, "mmio.data");
_Static_assert(offsetof(struct gzvm_vcpu_run, u.mmio.size) == 24, "mmio.size");
_Static_assert(offsetof(struct gzvm_vcpu_run, u.mmio.reg_nr) == 32, "mmio.reg_nr");
_Static_assert(offsetof(struct gzvm_vcpu_run, u.mmio.is_write) == 36, "mmio.is_write");
_Static_assert(offsetof(struct gzvm_vcpu_run, u.fail_entry.cpu) == 16, "fail_entry.cpu");
_Static_assert(offsetof(struct gzvm_vcpu_run, u.exception.error_code) == 12, "error_code");
_Static_assert(offsetof(struct gzvm_vcpu_run, u.exception.fault_gpa) == 16, "fault_gpa");
_Static_assert(offsetof(struct gzvm_vcpu_run, u.exception.reserved) == 24, "exception.reserved");
_Static_assert(offsetof(struct gzvm_vcpu_run, u.hypercall.args) == 8, "hypercall.args");
_Static_assert(offsetof(struct gzvm_vcpu_run, u.internal.ndata) == 12, "internal.ndata");
_Static_assert(offsetof(struct gzvm_vcpu_run, u.internal.data) == 16, "internal.data");
_Static_assert(offsetof(struct gzvm_vcpu_run, u.system_event.ndata) == 12, "system_event.ndata");
_Static_assert(offsetof(struct gzvm_vcpu_run, u.system_event.data) == 16, "system_event.data");

struct gzvm_userspace_memory_region {
	uint32_t slot;
	uint32_t flags;
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
};

_Static_assert(sizeof(struct gzvm_userspace_memory_region) == 32, "memory region");
_Static_assert(offsetof(struct gzvm_userspace_memory_region, userspace_addr) == 24, "uaddr");

struct gzvm_memory_region { /* GZVM_SET_MEMORY_REGION: defined, never handled */
	uint32_t slot;
	uint32_t flags;
	uint64_t guest_phys_addr;
	uint64_t memory_size;
};

_Static_assert(sizeof(struct gzvm_memory_region) == 24, "gzvm_memory_region");

struct gzvm_irq_level {
	uint32_t irq;
	uint32_t level;
};

_Static_assert(sizeof(struct gzvm_irq_level) == 8, "irq_level");

struct gzvm_create_device {
	uint32_t dev_type;
	uint32_t id;
	uint64_t flags;
	uint64_t dev_addr;
	uint64_t dev_reg_size;
	uint64_t attr_addr;
	uint64_t attr_size;
};

_Static_assert(sizeof(struct gzvm_create_device) == 48, "create_device");
_Static_assert(offsetof(struct gzvm_create_device, dev_addr) == 16, "dev_addr");
_Static_assert(offsetof(struct gzvm_create_device, attr_size) == 40, "attr_size");

struct gzvm_enable_cap {
	uint64_t cap;
	uint64_t args[5];
};

_Static_assert(sizeof(struct gzvm_enable_cap) == 48, "enable_cap");

struct gzvm_one_reg {
	uint64_t id;
	uint64_t addr; /* user pointer to the value */
};

_Static_assert(sizeof(struct gzvm_one_reg) == 16, "one_reg");

struct gzvm_irqfd {
	uint32_t fd;
	uint32_t gsi;
	uint32_t flags;
	uint32_t resamplefd;
	uint8_t pad[16];
};

_Static_assert(sizeof(struct gzvm_irqfd) == 32, "irqfd");
_Static_assert(_Alignof(struct gzvm_irqfd) == 4, "irqfd alignment");

struct gzvm_ioeventfd {
	uint64_t datamatch;
	uint64_t addr;
	uint32_t len;
	int32_t fd;
	uint32_t flags;
	uint8_t pad[36];
};

_Static_assert(sizeof(struct gzvm_ioeventfd) == 64, "ioeventfd");
_Static_assert(offsetof(struct gzvm_ioeventfd, fd) == 20, "ioeventfd.fd");
_Static_assert(offsetof(struct gzvm_ioeventfd, flags) == 24, "ioeventfd.flags");

struct gzvm_dtb_config {
	uint64_t dtb_addr;
	uint64_t dtb_size;
};

_Static_assert(sizeof(struct gzvm_dtb_config) == 16, "dtb_config");

/* ------------------------------------------------------------------------ */
/* §2 ioctls                                                                  */

#define GZVM_CREATE_VM GZABI_IO(0x01)
#define GZVM_CHECK_EXTENSION GZABI_IO(0x03) /* _IO, yet the argument is a u64 pointer */
#define GZVM_SET_MEMORY_REGION GZABI_IOW(0x40, struct gzvm_memory_region)
#define GZVM_CREATE_VCPU GZABI_IO(0x41)
#define GZVM_SET_USER_MEMORY_REGION GZABI_IOW(0x46, struct gzvm_userspace_memory_region)
#define GZVM_CREATE_IRQCHIP GZABI_IO(0x60)
#define GZVM_IRQ_LINE GZABI_IOW(0x61, struct gzvm_irq_level)
#define GZVM_IRQFD GZABI_IOW(0x76, struct gzvm_irqfd)
#define GZVM_IOEVENTFD GZABI_IOW(0x79, struct gzvm_ioeventfd)
#define GZVM_RUN GZABI_IO(0x80) /* _IO, yet the argument is a gzvm_vcpu_run pointer */
#define GZVM_ENABLE_CAP GZABI_IOW(0xa3, struct gzvm_enable_cap)
#define GZVM_GET_ONE_REG GZABI_IOW(0xab, struct gzvm_one_reg) /* _IOW even for GET */
#define GZVM_SET_ONE_REG GZABI_IOW(0xac, struct gzvm_one_reg)
#define GZVM_CREATE_DEVICE GZABI_IOWR(0xe0, struct gzvm_create_device)
#define GZVM_SET_DTB_CONFIG GZABI_IOW(0xff, struct gzvm_dtb_config)

_Static_assert(GZVM_CREATE_VM == 0x9201ul, "GZVM_CREATE_VM");
_Static_assert(GZVM_CHECK_EXTENSION == 0x9203ul, "GZVM_CHECK_EXTENSION");
_Static_assert(GZVM_SET_MEMORY_REGION == 0x40189240ul, "GZVM_SET_MEMORY_REGION");
_Static_assert(GZVM_CREATE_VCPU == 0x9241ul, "GZVM_CREATE_VCPU");
_Static_assert(GZVM_SET_USER_MEMORY_REGION == 0x40209246ul, "GZVM_SET_USER_MEMORY_REGION");
_Static_assert(GZVM_CREATE_IRQCHIP == 0x9260ul, "GZVM_CREATE_IRQCHIP");
_Static_assert(GZVM_IRQ_LINE == 0x40089261ul, "GZVM_IRQ_LINE");
_Static_assert(GZVM_IRQFD == 0x40209276ul, "GZVM_IRQFD");
_Static_assert(GZVM_IOEVENTFD == 0x40409279ul, "GZVM_IOEVENTFD");
_Static_assert(GZVM_RUN == 0x9280ul, "GZVM_RUN");
_Static_assert(GZVM_ENABLE_CAP == 0x403092a3ul, "GZVM_ENABLE_CAP");
_Static_assert(GZVM_GET_ONE_REG == 0x401092abul, "GZVM_GET_ONE_REG");
_Static_assert(GZVM_SET_ONE_REG == 0x401092acul, "GZVM_SET_ONE_REG");
_Static_assert(GZVM_CREATE_DEVICE == 0xc03092e0ul, "GZVM_CREATE_DEVICE");
_Static_assert(GZVM_SET_DTB_CONFIG == 0x401092fful, "GZVM_SET_DTB_CONFIG");

/* ------------------------------------------------------------------------ */
/* §3 constants                                                               */

#define GZVM_CAP_VM_GPA_SIZE 0xa5ull
#define GZVM_CAP_PROTECTED_VM 0xffbadab1ull

#define GZVM_MAX_VCPUS 8u       /* kernel constant: ids 0..7 */
#define GZVM_MAX_MEM_REGION 10u /* kernel constant: slots 0..9 */

/* ONE_REG ids: the KVM arm64 encoding (§3: crosvm lays gzvm_regs out as kvm_regs). */
#define GZVM_REG_ARCH_ARM64 0x6000000000000000ull
#define GZVM_REG_ARCH_MASK 0xff00000000000000ull
#define GZVM_REG_SIZE_SHIFT 52
#define GZVM_REG_SIZE_MASK 0x00f0000000000000ull
#define GZVM_REG_SIZE_U64 0x0030000000000000ull
#define GZVM_REG_ARM_CORE 0x00100000ull
#define GZVM_REG_CORE(off) \
	(GZVM_REG_ARCH_ARM64 | GZVM_REG_SIZE_U64 | GZVM_REG_ARM_CORE | ((uint64_t)(off) / 4))
/* Byte offsets in gzvm_regs (= kvm_regs): regs[31], sp, pc, pstate, sp_el1, elr_el1. */
#define GZVM_CORE_OFF_X(n) (8u * (n))
#define GZVM_CORE_OFF_SP 248u
#define GZVM_CORE_OFF_PC 256u
#define GZVM_CORE_OFF_PSTATE 264u
#define GZVM_CORE_OFF_SP_EL1 272u
#define GZVM_CORE_OFF_ELR_EL1 280u

_Static_assert(GZVM_REG_CORE(GZVM_CORE_OFF_X(0)) == 0x6030000000100000ull, "x0 id");
_Static_assert(GZVM_REG_CORE(GZVM_CORE_OFF_X(30)) == 0x603000000010003cull, "x30 id");
_Static_assert(GZVM_REG_CORE(GZVM_CORE_OFF_SP) == 0x603000000010003eull, "sp id");
_Static_assert(GZVM_REG_CORE(GZVM_CORE_OFF_PC) == 0x6030000000100040ull, "pc id");
_Static_assert(GZVM_REG_CORE(GZVM_CORE_OFF_PSTATE) == 0x6030000000100042ull, "pstate id");
_Static_assert(GZVM_REG_CORE(GZVM_CORE_OFF_SP_EL1) == 0x6030000000100044ull, "sp_el1 id");
_Static_assert(GZVM_REG_CORE(GZVM_CORE_OFF_ELR_EL1) == 0x6030000000100046ull, "elr_el1 id");

/* Memory-slot "purpose" flags (from crosvm; the kernel passes them on unchecked). */
#define GZVM_USER_MEM_REGION_GUEST_MEM 0x1u
#define GZVM_USER_MEM_REGION_PROTECT_FW 0x2u
#define GZVM_USER_MEM_REGION_STATIC_SWIOTLB 0x4u

#define GZVM_IRQFD_FLAG_DEASSIGN 0x1u
#define GZVM_IRQFD_FLAG_RESAMPLE 0x2u

#define GZVM_IOEVENTFD_FLAG_DATAMATCH 0x1u
#define GZVM_IOEVENTFD_FLAG_PIO 0x2u
#define GZVM_IOEVENTFD_FLAG_DEASSIGN 0x4u
#define GZVM_IOEVENTFD_VALID_FLAG_MASK 0x7u

#define GZVM_DEV_TYPE_ARM_VGIC_V3_DIST 0u
#define GZVM_DEV_TYPE_ARM_VGIC_V3_REDIST 1u

/* GZVM_IRQ_LINE irq field: VCPU2 31-28, TYPE 27-24, VCPU 23-16, NUM 15-0. */
#define GZVM_IRQ_LINE_TYPE_SHIFT 24
#define GZVM_IRQ_LINE_TYPE_MASK 0xfu
#define GZVM_IRQ_LINE_NUM_MASK 0xffffu
#define GZVM_IRQ_TYPE_SPI 1u
/* §9: the hypervisor injects NUM as SPI INTID NUM + 32 (irqfd gsi likewise). */
#define GZVM_SPI_INTID_BASE 32u

/* Exit reasons (§3). */
#define GZVM_EXIT_UNKNOWN 0x92920000u
#define GZVM_EXIT_MMIO 0x92920001u
#define GZVM_EXIT_HYPERCALL 0x92920002u
#define GZVM_EXIT_IRQ 0x92920003u
#define GZVM_EXIT_EXCEPTION 0x92920004u
#define GZVM_EXIT_DEBUG 0x92920005u
#define GZVM_EXIT_FAIL_ENTRY 0x92920006u
#define GZVM_EXIT_INTERNAL_ERROR 0x92920007u
#define GZVM_EXIT_SYSTEM_EVENT 0x92920008u
#define GZVM_EXIT_SHUTDOWN 0x92920009u
#define GZVM_EXIT_GZ 0x9292000au
#define GZVM_EXIT_IDLE 0x9292000bu
#define GZVM_EXIT_IPI 0x9292000du

/*
 * Not a GenieZone code (they all start 0x9292): libvcpu stores it in
 * exit_reason (an output-only field) before each GZVM_RUN, so an EINTR return
 * tells "the guest did not exit" from "the guest exited just as a signal
 * arrived" (the kernel copies the struct back in both cases).
 */
#define GZVM_EXIT_NONE_SENTINEL 0u

/* System event types (§3; 7 is S2IDLE here, not KVM's TDX_FATAL). */
#define GZVM_SYSTEM_EVENT_SHUTDOWN 1u
#define GZVM_SYSTEM_EVENT_RESET 2u
#define GZVM_SYSTEM_EVENT_CRASH 3u
#define GZVM_SYSTEM_EVENT_WAKEUP 4u
#define GZVM_SYSTEM_EVENT_SUSPEND 5u
#define GZVM_SYSTEM_EVENT_SEV_TERM 6u
#define GZVM_SYSTEM_EVENT_S2IDLE 7u

#define GZVM_EXCEPTION_UNKNOWN 0u
#define GZVM_EXCEPTION_PAGE_FAULT 1u

/*
 * Linux's kernel-internal "restart the system call" code (include/linux/
 * errno.h).  GZVM_RUN returns it when a signal interrupts the guest; user
 * space normally sees EINTR (no SA_RESTART) or a restart, but a tracer can
 * make it visible, so the backend treats it as EINTR.
 */
#define GZVM_ERESTARTSYS 512

#endif
