/* SPDX-License-Identifier: MIT */
/*
 * The Gunyah VM-manager userspace ABI (/dev/gunyah), written from
 * doc/abi/gunyah.md: Part A, the v17 `GUNYAH_` series (guest_memfd memory,
 * boot context, numeric VM functions, page-fault exits, resume actions), and
 * Part B, the v8 `GH_` series (user-memory regions, functions named by a
 * string, MMIO-only exits).  The two never share a constant at run time: the
 * backend probes which one the driver speaks (gunyah.c) and uses only that
 * revision's numbers.  Our own definitions, not the kernel's header; every
 * number is checked at compile time against the tables.
 */
#ifndef VCPU_GUNYAH_ABI_H
#define VCPU_GUNYAH_ABI_H

#include <stddef.h>
#include <stdint.h>

/* asm-generic ioctl encoding, type 'G' (0x47), shared by both revisions. */
#define GHABI_IOC(dir, nr, size)                                                    \
	((unsigned long)(((unsigned long)(dir) << 30) | ((unsigned long)(size) << 16) | \
			 (0x47ul << 8) | (unsigned long)(nr)))
#define GHABI_IO(nr) GHABI_IOC(0, nr, 0)
#define GHABI_IOW(nr, type) GHABI_IOC(1, nr, sizeof(type))

/* ------------------------------------------------------------------------ */
/* Part A: v17                                                               */

/* A.4 */
struct gunyah_create_mem_args {
	uint64_t flags;
	uint64_t size;
	uint64_t reserved[6];
};

struct gunyah_vm_dtb_config {
	uint64_t guest_phys_addr;
	uint64_t size;
};

struct gunyah_fn_desc {
	uint32_t type;
	uint32_t arg_size;
	uint64_t arg;
};

struct gunyah_fn_vcpu_arg {
	uint32_t id;
};

struct gunyah_fn_irqfd_arg {
	uint32_t fd;
	uint32_t label;
	uint32_t flags;
	uint32_t padding;
};

struct gunyah_fn_ioeventfd_arg {
	uint64_t datamatch;
	uint64_t addr;
	uint32_t len;
	int32_t fd;
	uint32_t flags;
	uint32_t padding;
};

struct gunyah_map_mem_args {
	uint64_t guest_addr;
	uint32_t flags;
	uint32_t guest_mem_fd;
	uint64_t offset;
	uint64_t size;
};

struct gunyah_vm_boot_context {
	uint32_t reg;
	uint32_t reserved;
	uint64_t value;
};

#define GUNYAH_VM_MAX_EXIT_REASON_SIZE 8u

struct gunyah_vm_exit_info {
	uint16_t type;
	uint16_t padding;
	uint32_t reason_size;
	uint8_t reason[GUNYAH_VM_MAX_EXIT_REASON_SIZE];
};

/* Page 0 of a vCPU fd. */
struct gunyah_vcpu_run {
	uint8_t immediate_exit;
	uint8_t padding[7];
	uint32_t exit_reason;
	union {
		struct {
			uint64_t phys_addr;
			uint8_t data[8];
			uint32_t len;
			uint8_t is_write;
			uint8_t resume_action;
		} mmio;
		struct {
			uint32_t status; /* enum gunyah_vm_status (an int-sized enum) */
			struct gunyah_vm_exit_info exit_info;
		} status;
		struct {
			uint64_t phys_addr;
			int32_t attempt;
			uint8_t resume_action;
		} page_fault;
	};
};

_Static_assert(sizeof(struct gunyah_create_mem_args) == 64, "gunyah_create_mem_args (A.4)");
_Static_assert(sizeof(struct gunyah_vm_dtb_config) == 16, "gunyah_vm_dtb_config");
_Static_assert(sizeof(struct gunyah_fn_desc) == 16, "gunyah_fn_desc");
_Static_assert(offsetof(struct gunyah_fn_desc, arg) == 8, "gunyah_fn_desc.arg");
_Static_assert(sizeof(struct gunyah_fn_vcpu_arg) == 4, "gunyah_fn_vcpu_arg");
_Static_assert(sizeof(struct gunyah_fn_irqfd_arg) == 16, "gunyah_fn_irqfd_arg");
_Static_assert(offsetof(struct gunyah_fn_irqfd_arg, flags) == 8, "irqfd flags");
_Static_assert(sizeof(struct gunyah_fn_ioeventfd_arg) == 32, "gunyah_fn_ioeventfd_arg");
_Static_assert(offsetof(struct gunyah_fn_ioeventfd_arg, addr) == 8, "ioeventfd addr");
_Static_assert(offsetof(struct gunyah_fn_ioeventfd_arg, len) == 16, "ioeventfd len");
_Static_assert(offsetof(struct gunyah_fn_ioeventfd_arg, fd) == 20, "ioeventfd fd");
_Static_assert(offsetof(struct gunyah_fn_ioeventfd_arg, flags) == 24, "ioeventfd flags");
_Static_assert(sizeof(struct gunyah_map_mem_args) == 32, "gunyah_map_mem_args");
_Static_assert(offsetof(struct gunyah_map_mem_args, flags) == 8, "map_mem flags");
_Static_assert(offsetof(struct gunyah_map_mem_args, guest_mem_fd) == 12, "map_mem fd");
_Static_assert(offsetof(struct gunyah_map_mem_args, offset) == 16, "map_mem offset");
_Static_assert(offsetof(struct gunyah_map_mem_args, size) == 24, "map_mem size");
_Static_assert(sizeof(struct gunyah_vm_boot_context) == 16, "gunyah_vm_boot_context");
_Static_assert(offsetof(struct gunyah_vm_boot_context, value) == 8, "boot context value");
_Static_assert(sizeof(struct gunyah_vm_exit_info) == 16, "gunyah_vm_exit_info");
_Static_assert(offsetof(struct gunyah_vm_exit_info, reason_size) == 4, "exit_info reason_size");
_Static_assert(offsetof(struct gunyah_vm_exit_info, reason) == 8, "exit_info reason");
_Static_assert(sizeof(struct gunyah_vcpu_run) == 40, "gunyah_vcpu_run (A.4: 40 bytes)");
_Static_assert(offsetof(struct gunyah_vcpu_run, exit_reason) == 8, "exit_reason");
_Static_assert(offsetof(struct gunyah_vcpu_run, mmio.phys_addr) == 16, "mmio.phys_addr");
_Static_assert(offsetof(struct gunyah_vcpu_run, mmio.data) == 24, "mmio.data");
_Static_assert(offsetof(struct gunyah_vcpu_run, mmio.len) == 32, "mmio.len");
_Static_assert(offsetof(struct gunyah_vcpu_run, mmio.is_write) == 36, "mmio.is_write");
_Static_assert(offsetof(struct gunyah_vcpu_run, mmio.resume_action) == 37, "mmio.resume_action");
_Static_assert(offsetof(struct gunyah_vcpu_run, status.status) == 16, "status.status");
_Static_assert(offsetof(struct gunyah_vcpu_run, status.exit_info.type) == 20, "exit_info.type");
_Static_assert(offsetof(struct gunyah_vcpu_run, status.exit_info.reason_size) == 24,
	       "exit_info.reason_size");
_Static_assert(offsetof(struct gunyah_vcpu_run, status.exit_info.reason) == 28, "exit_info.reason");
_Static_assert(offsetof(struct gunyah_vcpu_run, page_fault.phys_addr) == 16, "page_fault.phys_addr");
_Static_assert(offsetof(struct gunyah_vcpu_run, page_fault.attempt) == 24, "page_fault.attempt");
_Static_assert(offsetof(struct gunyah_vcpu_run, page_fault.resume_action) == 28,
	       "page_fault.resume_action");

/* A.2 */
#define GUNYAH_CREATE_VM GHABI_IO(0x0)
#define GUNYAH_VM_SET_DTB_CONFIG GHABI_IOW(0x2, struct gunyah_vm_dtb_config)
#define GUNYAH_VM_START GHABI_IO(0x3)
#define GUNYAH_VM_ADD_FUNCTION GHABI_IOW(0x4, struct gunyah_fn_desc)
#define GUNYAH_VCPU_RUN GHABI_IO(0x5)
#define GUNYAH_VCPU_MMAP_SIZE GHABI_IO(0x6)
#define GUNYAH_VM_REMOVE_FUNCTION GHABI_IOW(0x7, struct gunyah_fn_desc)
#define GUNYAH_CREATE_GUEST_MEM GHABI_IOW(0x8, struct gunyah_create_mem_args)
#define GUNYAH_VM_MAP_MEM GHABI_IOW(0x9, struct gunyah_map_mem_args)
#define GUNYAH_VM_SET_BOOT_CONTEXT GHABI_IOW(0xa, struct gunyah_vm_boot_context)

_Static_assert(GUNYAH_CREATE_VM == 0x4700, "GUNYAH_CREATE_VM");
_Static_assert(GUNYAH_VM_SET_DTB_CONFIG == 0x40104702, "GUNYAH_VM_SET_DTB_CONFIG");
_Static_assert(GUNYAH_VM_START == 0x4703, "GUNYAH_VM_START");
_Static_assert(GUNYAH_VM_ADD_FUNCTION == 0x40104704, "GUNYAH_VM_ADD_FUNCTION");
_Static_assert(GUNYAH_VCPU_RUN == 0x4705, "GUNYAH_VCPU_RUN");
_Static_assert(GUNYAH_VCPU_MMAP_SIZE == 0x4706, "GUNYAH_VCPU_MMAP_SIZE");
_Static_assert(GUNYAH_VM_REMOVE_FUNCTION == 0x40104707, "GUNYAH_VM_REMOVE_FUNCTION");
_Static_assert(GUNYAH_CREATE_GUEST_MEM == 0x40404708, "GUNYAH_CREATE_GUEST_MEM");
_Static_assert(GUNYAH_VM_MAP_MEM == 0x40204709, "GUNYAH_VM_MAP_MEM");
_Static_assert(GUNYAH_VM_SET_BOOT_CONTEXT == 0x4010470a, "GUNYAH_VM_SET_BOOT_CONTEXT");

/* A.3 */
#define GUNYAH_FN_VCPU 1u
#define GUNYAH_FN_IRQFD 2u
#define GUNYAH_FN_IOEVENTFD 3u
#define GUNYAH_FN_MAX_ARG_SIZE 256u

#define GHMF_CLOEXEC 0x1ull
#define GHMF_ALLOW_HUGEPAGE 0x2ull

#define GUNYAH_MEM_DEFAULT_ACCESS 0x0u
#define GUNYAH_MEM_FORCE_LEND 0x1u
#define GUNYAH_MEM_FORCE_SHARE 0x2u
#define GUNYAH_MEM_ACCESS_MASK 0x7u
#define GUNYAH_MEM_ALLOW_READ 0x10u
#define GUNYAH_MEM_ALLOW_WRITE 0x20u
#define GUNYAH_MEM_ALLOW_EXEC 0x40u
#define GUNYAH_MEM_ALLOW_RWX 0x70u
#define GUNYAH_MEM_UNMAP 0x100u

#define GUNYAH_REG_SET_X 0u
#define GUNYAH_REG_SET_PC 1u
#define GUNYAH_REG_SET_SP 2u
#define GUNYAH_VM_BOOT_CONTEXT_REG(set, idx) ((((uint32_t)(set) & 0xffu) << 8) | ((uint32_t)(idx) & 0xffu))

#define GUNYAH_IRQFD_FLAGS_LEVEL 0x1u
#define GUNYAH_IOEVENTFD_FLAGS_DATAMATCH 0x1u

#define GUNYAH_VM_STATUS_LOAD_FAILED 1u
#define GUNYAH_VM_STATUS_EXITED 2u
#define GUNYAH_VM_STATUS_CRASHED 3u

#define GUNYAH_VCPU_EXIT_UNKNOWN 0u
#define GUNYAH_VCPU_EXIT_MMIO 1u
#define GUNYAH_VCPU_EXIT_STATUS 2u
#define GUNYAH_VCPU_EXIT_PAGE_FAULT 3u

#define GUNYAH_VCPU_RESUME_HANDLED 0u
#define GUNYAH_VCPU_RESUME_FAULT 1u
#define GUNYAH_VCPU_RESUME_RETRY 2u

/* Resource-manager exit types in exit_info.type (A.3, from G-CRO). */
#define GUNYAH_RM_EXIT_VM_EXIT 0u
#define GUNYAH_RM_EXIT_PSCI_POWER_OFF 1u
#define GUNYAH_RM_EXIT_PSCI_SYSTEM_RESET 2u
#define GUNYAH_RM_EXIT_PSCI_SYSTEM_RESET2 3u
#define GUNYAH_RM_EXIT_WDT_BITE 4u
#define GUNYAH_RM_EXIT_HYP_ERROR 5u
#define GUNYAH_RM_EXIT_ASYNC_EXT_ABORT 6u
#define GUNYAH_RM_EXIT_VM_FORCE_STOPPED 7u

_Static_assert(GUNYAH_VM_BOOT_CONTEXT_REG(GUNYAH_REG_SET_SP, 1) == 0x201, "boot reg id");

/* ------------------------------------------------------------------------ */
/* Part B: v8                                                                */

struct gh_userspace_memory_region {
	uint32_t label;
	uint32_t flags;
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
};

struct gh_vm_dtb_config {
	uint64_t gpa;
	uint64_t size;
};

#define GH_FUNCTION_NAME_SIZE 32u
#define GH_FUNCTION_MAX_ARG_SIZE 1024u

struct gh_vm_function {
	char name[GH_FUNCTION_NAME_SIZE];
	union {
		struct {
			uint32_t vcpu_id;
		} vcpu;
		char data[GH_FUNCTION_MAX_ARG_SIZE];
	};
};

struct gh_vcpu_run {
	uint8_t immediate_exit;
	uint8_t padding1[7];
	uint32_t exit_reason;
	union {
		struct {
			uint64_t phys_addr;
			uint8_t data[8];
			uint32_t len;
			uint8_t is_write;
		} mmio;
	};
};

_Static_assert(sizeof(struct gh_userspace_memory_region) == 32, "gh_userspace_memory_region (B.3)");
_Static_assert(offsetof(struct gh_userspace_memory_region, guest_phys_addr) == 8, "region gpa");
_Static_assert(offsetof(struct gh_userspace_memory_region, memory_size) == 16, "region size");
_Static_assert(offsetof(struct gh_userspace_memory_region, userspace_addr) == 24, "region uaddr");
_Static_assert(sizeof(struct gh_vm_dtb_config) == 16, "gh_vm_dtb_config");
_Static_assert(sizeof(struct gh_vm_function) == 1056, "gh_vm_function (B.3: 1056)");
_Static_assert(offsetof(struct gh_vm_function, vcpu.vcpu_id) == 32, "gh_vm_function.vcpu");
_Static_assert(sizeof(struct gh_vcpu_run) == 40, "gh_vcpu_run (B.3: 40)");
_Static_assert(offsetof(struct gh_vcpu_run, exit_reason) == 8, "gh exit_reason");
_Static_assert(offsetof(struct gh_vcpu_run, mmio.phys_addr) == 16, "gh mmio.phys_addr");
_Static_assert(offsetof(struct gh_vcpu_run, mmio.data) == 24, "gh mmio.data");
_Static_assert(offsetof(struct gh_vcpu_run, mmio.len) == 32, "gh mmio.len");
_Static_assert(offsetof(struct gh_vcpu_run, mmio.is_write) == 36, "gh mmio.is_write");

/* B.2 */
#define GH_CREATE_VM GHABI_IO(0x0)
#define GH_VM_SET_USER_MEM_REGION GHABI_IOW(0x1, struct gh_userspace_memory_region)
#define GH_VM_SET_DTB_CONFIG GHABI_IOW(0x2, struct gh_vm_dtb_config)
#define GH_VM_START GHABI_IO(0x3)
#define GH_VM_ADD_FUNCTION GHABI_IOW(0x4, struct gh_vm_function)
#define GH_VCPU_RUN GHABI_IO(0x5)
#define GH_VCPU_MMAP_SIZE GHABI_IO(0x6)

_Static_assert(GH_CREATE_VM == 0x4700, "GH_CREATE_VM");
_Static_assert(GH_VM_SET_USER_MEM_REGION == 0x40204701, "GH_VM_SET_USER_MEM_REGION");
_Static_assert(GH_VM_SET_DTB_CONFIG == 0x40104702, "GH_VM_SET_DTB_CONFIG");
_Static_assert(GH_VM_START == 0x4703, "GH_VM_START");
_Static_assert(GH_VM_ADD_FUNCTION == 0x44204704, "GH_VM_ADD_FUNCTION");
_Static_assert(GH_VCPU_RUN == 0x4705, "GH_VCPU_RUN");
_Static_assert(GH_VCPU_MMAP_SIZE == 0x4706, "GH_VCPU_MMAP_SIZE");

#define GH_MEM_ALLOW_READ 0x1u
#define GH_MEM_ALLOW_WRITE 0x2u
#define GH_MEM_ALLOW_EXEC 0x4u
#define GH_MEM_LENT 0x8u

#define GH_VM_EXIT_UNKNOWN 0u
#define GH_VM_EXIT_MMIO 1u

/* The kernel turns this into EINTR (or a restart) on the way out; seen raw only by bugs. */
#define GUNYAH_ERESTARTSYS 512

#endif
