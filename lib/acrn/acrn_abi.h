/* SPDX-License-Identifier: MIT */
/*
 * The ACRN Hypervisor Service Module userspace ABI (/dev/acrn_hsm), written
 * from doc/abi/acrn.md: the merged include/uapi/linux/acrn.h (Linux 5.12+),
 * not the v5 patch 07/17 ("virt: acrn: Introduce an ioctl to set vCPU
 * registers state"), whose acrn_vcpu_regs was 304 bytes.  Our own
 * definitions, checked at compile time against every size, offset and ioctl
 * value of the tables (section numbers below are doc/abi/acrn.md's).  Shared by the
 * backend and the mock driver.
 */
#ifndef VCPU_ACRN_ABI_H
#define VCPU_ACRN_ABI_H

#include <stddef.h>
#include <stdint.h>

/* asm-generic ioctl encoding, type ACRN_IOCTL_TYPE 0xA2 (§1). */
#define ACRNABI_IOC(dir, nr, size)                                                   \
	((unsigned long)(((unsigned long)(dir) << 30) | ((unsigned long)(size) << 16) | \
			 (0xA2ul << 8) | (unsigned long)(nr)))
#define ACRNABI_IO(nr) ACRNABI_IOC(0, nr, 0)
#define ACRNABI_IOW(nr, size) ACRNABI_IOC(1, nr, size)
#define ACRNABI_IOWR(nr, size) ACRNABI_IOC(3, nr, size)

/* §3 constants. */
#define ACRN_IO_REQUEST_MAX 16
#define ACRN_IOREQ_STATE_PENDING 0u
#define ACRN_IOREQ_STATE_COMPLETE 1u
#define ACRN_IOREQ_STATE_PROCESSING 2u
#define ACRN_IOREQ_STATE_FREE 3u
#define ACRN_IOREQ_TYPE_PORTIO 0u
#define ACRN_IOREQ_TYPE_MMIO 1u
#define ACRN_IOREQ_TYPE_PCICFG 2u
#define ACRN_IOREQ_DIR_READ 0u
#define ACRN_IOREQ_DIR_WRITE 1u
#define ACRN_MEMMAP_RAM 0u
#define ACRN_MEMMAP_MMIO 1u
#define ACRN_MEM_ACCESS_READ 0x1u
#define ACRN_MEM_ACCESS_WRITE 0x2u
#define ACRN_MEM_ACCESS_EXEC 0x4u
#define ACRN_MEM_ACCESS_RIGHT_MASK 0x7u
#define ACRN_MEM_TYPE_MASK 0x7c0u
#define ACRN_IOEVENTFD_FLAG_PIO 0x1u
#define ACRN_IOEVENTFD_FLAG_DATAMATCH 0x2u
#define ACRN_IOEVENTFD_FLAG_DEASSIGN 0x4u
#define ACRN_IRQFD_FLAG_DEASSIGN 0x1u
#define ACRN_GSI_SET_HIGH 0u
#define ACRN_GSI_SET_LOW 1u
#define ACRN_GSI_RAISING_PULSE 2u
#define ACRN_GSI_FALLING_PULSE 3u
#define ACRN_NAME_LEN 16

/* §4.1 one I/O-request slot: 256 bytes, slot n of the page belongs to vCPU n. */
struct acrn_pio_request {
	uint32_t direction;
	uint32_t reserved;
	uint64_t address;
	uint64_t size;
	uint32_t value;
	uint32_t pad; /* the mmio variant's value is 8 bytes: keep the union size */
};

struct acrn_mmio_request {
	uint32_t direction;
	uint32_t reserved;
	uint64_t address;
	uint64_t size;
	uint64_t value;
};

struct acrn_pci_request {
	uint32_t direction;
	uint32_t reserved[3];
	uint64_t size;
	uint32_t value;
	uint32_t bus, dev, func, reg;
	uint32_t pad;
};

struct acrn_io_request {
	uint32_t type;
	uint32_t completion_polling;
	uint32_t reserved0[14];
	union {
		struct acrn_pio_request pio_request;
		struct acrn_pci_request pci_request;
		struct acrn_mmio_request mmio_request;
		uint64_t data[8];
	} reqs;
	uint32_t reserved1;
	uint32_t kernel_handled;
	uint32_t processed;
	uint32_t pad[29];
};

struct acrn_io_request_buffer {
	struct acrn_io_request req_slot[ACRN_IO_REQUEST_MAX];
};

_Static_assert(sizeof(struct acrn_pio_request) == 32, "acrn_pio_request (4.1)");
_Static_assert(sizeof(struct acrn_mmio_request) == 32, "acrn_mmio_request (4.1)");
_Static_assert(sizeof(struct acrn_pci_request) == 48, "acrn_pci_request (4.1)");
_Static_assert(sizeof(struct acrn_io_request) == 256, "acrn_io_request (4.1)");
_Static_assert(sizeof(struct acrn_io_request_buffer) == 4096, "ioreq page (4.1)");
_Static_assert(offsetof(struct acrn_io_request, completion_polling) == 4, "completion_polling");
_Static_assert(offsetof(struct acrn_io_request, reqs) == 64, "reqs");
_Static_assert(offsetof(struct acrn_io_request, reqs.pio_request.direction) == 64, "pio.direction");
_Static_assert(offsetof(struct acrn_io_request, reqs.pio_request.address) == 72, "pio.address");
_Static_assert(offsetof(struct acrn_io_request, reqs.pio_request.size) == 80, "pio.size");
_Static_assert(offsetof(struct acrn_io_request, reqs.pio_request.value) == 88, "pio.value");
_Static_assert(offsetof(struct acrn_io_request, reqs.mmio_request.address) == 72, "mmio.address");
_Static_assert(offsetof(struct acrn_io_request, reqs.mmio_request.size) == 80, "mmio.size");
_Static_assert(offsetof(struct acrn_io_request, reqs.mmio_request.value) == 88, "mmio.value");
_Static_assert(offsetof(struct acrn_io_request, reqs.pci_request.size) == 80, "pci.size");
_Static_assert(offsetof(struct acrn_io_request, reqs.pci_request.value) == 88, "pci.value");
_Static_assert(offsetof(struct acrn_io_request, reqs.pci_request.bus) == 92, "pci.bus");
_Static_assert(offsetof(struct acrn_io_request, reqs.pci_request.dev) == 96, "pci.dev");
_Static_assert(offsetof(struct acrn_io_request, reqs.pci_request.func) == 100, "pci.func");
_Static_assert(offsetof(struct acrn_io_request, reqs.pci_request.reg) == 104, "pci.reg");
_Static_assert(offsetof(struct acrn_io_request, reserved1) == 128, "reserved1");
_Static_assert(offsetof(struct acrn_io_request, kernel_handled) == 132, "kernel_handled");
_Static_assert(offsetof(struct acrn_io_request, processed) == 136, "processed");

/* §4.2 */
struct acrn_ioreq_notify {
	uint16_t vmid;
	uint16_t reserved;
	uint32_t vcpu;
};
_Static_assert(sizeof(struct acrn_ioreq_notify) == 8, "acrn_ioreq_notify (4.2)");
_Static_assert(offsetof(struct acrn_ioreq_notify, vcpu) == 4, "notify.vcpu");

/* §4.3 */
struct acrn_vm_creation {
	uint16_t vmid;
	uint16_t reserved0;
	uint16_t vcpu_num;
	uint16_t reserved1;
	uint8_t name[ACRN_NAME_LEN]; /* 5.12: UUID; current ACRN: the VM's name */
	uint64_t vm_flag;
	uint64_t ioreq_buf;
	uint64_t cpu_affinity;
};
_Static_assert(sizeof(struct acrn_vm_creation) == 48, "acrn_vm_creation (4.3)");
_Static_assert(offsetof(struct acrn_vm_creation, vcpu_num) == 4, "vcpu_num");
_Static_assert(offsetof(struct acrn_vm_creation, name) == 8, "name");
_Static_assert(offsetof(struct acrn_vm_creation, vm_flag) == 24, "vm_flag");
_Static_assert(offsetof(struct acrn_vm_creation, ioreq_buf) == 32, "ioreq_buf");
_Static_assert(offsetof(struct acrn_vm_creation, cpu_affinity) == 40, "cpu_affinity");

/* §4.4 the merged 296-byte layout. */
struct acrn_descriptor_ptr {
	uint16_t limit;
	uint64_t base;
	uint16_t reserved[3];
} __attribute__((packed));

struct acrn_regs {
	/* x86 encoding order, not kvm_regs': rax rcx rdx rbx rsp rbp rsi rdi r8..r15 */
	uint64_t gprs[16];
	struct acrn_descriptor_ptr gdt;
	struct acrn_descriptor_ptr idt;
	uint64_t rip;
	uint64_t cs_base;
	uint64_t cr0;
	uint64_t cr4;
	uint64_t cr3;
	uint64_t ia32_efer;
	uint64_t rflags;
	uint64_t reserved_64[4];
	uint32_t cs_ar;
	uint32_t cs_limit;
	uint32_t reserved_32[3];
	uint16_t cs_sel, ss_sel, ds_sel, es_sel, fs_sel, gs_sel, ldt_sel, tr_sel;
};

struct acrn_vcpu_regs {
	uint16_t vcpu_id;
	uint16_t reserved[3];
	struct acrn_regs vcpu_regs;
};

enum acrn_gpr { ACRN_RAX, ACRN_RCX, ACRN_RDX, ACRN_RBX, ACRN_RSP, ACRN_RBP, ACRN_RSI, ACRN_RDI };

_Static_assert(sizeof(struct acrn_descriptor_ptr) == 16, "acrn_descriptor_ptr (4.4)");
_Static_assert(offsetof(struct acrn_descriptor_ptr, base) == 2, "descriptor base");
_Static_assert(offsetof(struct acrn_descriptor_ptr, reserved) == 10, "descriptor reserved");
_Static_assert(sizeof(struct acrn_regs) == 288, "acrn_regs (4.4)");
_Static_assert(offsetof(struct acrn_regs, gdt) == 128, "gdt");
_Static_assert(offsetof(struct acrn_regs, idt) == 144, "idt");
_Static_assert(offsetof(struct acrn_regs, rip) == 160, "rip");
_Static_assert(offsetof(struct acrn_regs, cs_base) == 168, "cs_base");
_Static_assert(offsetof(struct acrn_regs, cr0) == 176, "cr0");
_Static_assert(offsetof(struct acrn_regs, cr4) == 184, "cr4");
_Static_assert(offsetof(struct acrn_regs, cr3) == 192, "cr3");
_Static_assert(offsetof(struct acrn_regs, ia32_efer) == 200, "ia32_efer");
_Static_assert(offsetof(struct acrn_regs, rflags) == 208, "rflags");
_Static_assert(offsetof(struct acrn_regs, reserved_64) == 216, "reserved_64");
_Static_assert(offsetof(struct acrn_regs, cs_ar) == 248, "cs_ar");
_Static_assert(offsetof(struct acrn_regs, cs_limit) == 252, "cs_limit");
_Static_assert(offsetof(struct acrn_regs, reserved_32) == 256, "reserved_32");
_Static_assert(offsetof(struct acrn_regs, cs_sel) == 268, "cs_sel");
_Static_assert(offsetof(struct acrn_regs, tr_sel) == 282, "tr_sel");
_Static_assert(sizeof(struct acrn_vcpu_regs) == 296, "acrn_vcpu_regs (4.4, merged)");
_Static_assert(offsetof(struct acrn_vcpu_regs, vcpu_regs) == 8, "vcpu_regs");

/* §4.5 */
struct acrn_vm_memmap {
	uint32_t type;
	uint32_t attr;
	uint64_t user_vm_pa;
	uint64_t vma_base; /* RAM: host VA; MMIO: service_vm_pa */
	uint64_t len;
};
_Static_assert(sizeof(struct acrn_vm_memmap) == 32, "acrn_vm_memmap (4.5)");
_Static_assert(offsetof(struct acrn_vm_memmap, vma_base) == 16, "vma_base");
_Static_assert(offsetof(struct acrn_vm_memmap, len) == 24, "len");

struct acrn_msi_entry {
	uint64_t msi_addr;
	uint64_t msi_data;
};
_Static_assert(sizeof(struct acrn_msi_entry) == 16, "acrn_msi_entry (4.5)");

struct acrn_ioeventfd {
	uint32_t fd;
	uint32_t flags;
	uint64_t addr;
	uint32_t len;
	uint32_t reserved;
	uint64_t data;
};
_Static_assert(sizeof(struct acrn_ioeventfd) == 32, "acrn_ioeventfd (4.5)");
_Static_assert(offsetof(struct acrn_ioeventfd, len) == 16, "ioeventfd.len");
_Static_assert(offsetof(struct acrn_ioeventfd, data) == 24, "ioeventfd.data");

struct acrn_irqfd {
	int32_t fd;
	uint32_t flags;
	struct acrn_msi_entry msi;
};
_Static_assert(sizeof(struct acrn_irqfd) == 24, "acrn_irqfd (4.5)");
_Static_assert(offsetof(struct acrn_irqfd, msi) == 8, "irqfd.msi");

/* §2 ioctls, all on the /dev/acrn_hsm fd that holds the VM. */
#define ACRN_IOCTL_CREATE_VM ACRNABI_IOWR(0x10, sizeof(struct acrn_vm_creation))
#define ACRN_IOCTL_DESTROY_VM ACRNABI_IO(0x11)
#define ACRN_IOCTL_START_VM ACRNABI_IO(0x12)
#define ACRN_IOCTL_PAUSE_VM ACRNABI_IO(0x13)
#define ACRN_IOCTL_RESET_VM ACRNABI_IO(0x15)
#define ACRN_IOCTL_SET_VCPU_REGS ACRNABI_IOW(0x16, sizeof(struct acrn_vcpu_regs))
#define ACRN_IOCTL_INJECT_MSI ACRNABI_IOW(0x23, sizeof(struct acrn_msi_entry))
#define ACRN_IOCTL_SET_IRQLINE ACRNABI_IOW(0x25, sizeof(uint64_t)) /* by value */
#define ACRN_IOCTL_NOTIFY_REQUEST_FINISH ACRNABI_IOW(0x31, sizeof(struct acrn_ioreq_notify))
#define ACRN_IOCTL_CREATE_IOREQ_CLIENT ACRNABI_IO(0x32)
#define ACRN_IOCTL_ATTACH_IOREQ_CLIENT ACRNABI_IO(0x33)
#define ACRN_IOCTL_DESTROY_IOREQ_CLIENT ACRNABI_IO(0x34)
#define ACRN_IOCTL_CLEAR_VM_IOREQ ACRNABI_IO(0x35)
#define ACRN_IOCTL_SET_MEMSEG ACRNABI_IOW(0x41, sizeof(struct acrn_vm_memmap))
#define ACRN_IOCTL_UNSET_MEMSEG ACRNABI_IOW(0x42, sizeof(struct acrn_vm_memmap))
#define ACRN_IOCTL_IOEVENTFD ACRNABI_IOW(0x70, sizeof(struct acrn_ioeventfd))
#define ACRN_IOCTL_IRQFD ACRNABI_IOW(0x71, sizeof(struct acrn_irqfd))

_Static_assert(ACRN_IOCTL_CREATE_VM == 0xc030a210ul, "CREATE_VM");
_Static_assert(ACRN_IOCTL_DESTROY_VM == 0xa211ul, "DESTROY_VM");
_Static_assert(ACRN_IOCTL_START_VM == 0xa212ul, "START_VM");
_Static_assert(ACRN_IOCTL_PAUSE_VM == 0xa213ul, "PAUSE_VM");
_Static_assert(ACRN_IOCTL_RESET_VM == 0xa215ul, "RESET_VM");
_Static_assert(ACRN_IOCTL_SET_VCPU_REGS == 0x4128a216ul, "SET_VCPU_REGS (merged, 296 bytes)");
_Static_assert(ACRN_IOCTL_INJECT_MSI == 0x4010a223ul, "INJECT_MSI");
_Static_assert(ACRN_IOCTL_SET_IRQLINE == 0x4008a225ul, "SET_IRQLINE");
_Static_assert(ACRN_IOCTL_NOTIFY_REQUEST_FINISH == 0x4008a231ul, "NOTIFY_REQUEST_FINISH");
_Static_assert(ACRN_IOCTL_CREATE_IOREQ_CLIENT == 0xa232ul, "CREATE_IOREQ_CLIENT");
_Static_assert(ACRN_IOCTL_ATTACH_IOREQ_CLIENT == 0xa233ul, "ATTACH_IOREQ_CLIENT");
_Static_assert(ACRN_IOCTL_DESTROY_IOREQ_CLIENT == 0xa234ul, "DESTROY_IOREQ_CLIENT");
_Static_assert(ACRN_IOCTL_CLEAR_VM_IOREQ == 0xa235ul, "CLEAR_VM_IOREQ");
_Static_assert(ACRN_IOCTL_SET_MEMSEG == 0x4020a241ul, "SET_MEMSEG");
_Static_assert(ACRN_IOCTL_UNSET_MEMSEG == 0x4020a242ul, "UNSET_MEMSEG");
_Static_assert(ACRN_IOCTL_IOEVENTFD == 0x4020a270ul, "IOEVENTFD");
_Static_assert(ACRN_IOCTL_IRQFD == 0x4018a271ul, "IRQFD");

/*
 * Guest power control as acrn-dm's device models see it (§7): a 1-byte write
 * to the reset control port, or PM1a_CNT with SLP_EN and a sleep type.
 */
#define ACRN_RESET_PORT 0xcf9u
#define ACRN_RESET_SYS 0x4u  /* system reset in place */
#define ACRN_RESET_FULL 0x8u /* full reset (acrn-dm exits) */
#define ACRN_PM1_SLP_EN (1u << 13)
#define ACRN_PM1_SLP_TYP_SHIFT 10
#define ACRN_PM1_SLP_TYP_MASK 7u
#define ACRN_SLP_TYP_S5 5u
#define ACRN_SLP_TYP_S3 3u

#endif
