/* SPDX-License-Identifier: MIT */
/*
 * The KVM userspace ABI (x86_64 and arm64), written from doc/abi/kvm.md
 * (Linux 6.10 uapi, plus later additions marked there).  Our own definitions,
 * not the kernel's header: both architectures' layouts are defined on every
 * host, so the arm64 backend is exercised by the mock on x86_64 CI and vice
 * versa.  Every number below is checked at compile time against the table.
 */
#ifndef VCPU_KVM_ABI_H
#define VCPU_KVM_ABI_H

#include <stddef.h>
#include <stdint.h>

/* asm-generic ioctl encoding (x86_64 and arm64 share it). */
#define KVMABI_IOC(dir, nr, size) \
	((unsigned long)(((unsigned long)(dir) << 30) | ((unsigned long)(size) << 16) | (0xAEul << 8) | (unsigned long)(nr)))
#define KVMABI_IO(nr) KVMABI_IOC(0, nr, 0)
#define KVMABI_IOW(nr, type) KVMABI_IOC(1, nr, sizeof(type))
#define KVMABI_IOR(nr, type) KVMABI_IOC(2, nr, sizeof(type))
#define KVMABI_IOWR(nr, type) KVMABI_IOC(3, nr, sizeof(type))
#define KVMABI_IOC_DIR(v) (((v) >> 30) & 3u)
#define KVMABI_IOC_SIZE(v) (((v) >> 16) & 0x3fffu)
#define KVMABI_IOC_TYPE(v) (((v) >> 8) & 0xffu)
#define KVMABI_IOC_NR(v) ((v) & 0xffu)

#define KVM_API_VERSION_EXPECTED 12

/* §4.1 struct kvm_run: 2352 bytes on both arches. */
struct kvm_run {
	uint8_t request_interrupt_window;
	uint8_t immediate_exit;
	uint8_t padding1[6];
	uint32_t exit_reason;
	uint8_t ready_for_interrupt_injection;
	uint8_t if_flag;
	uint16_t flags;
	uint64_t cr8;
	uint64_t apic_base;
	union {
		struct { uint64_t hardware_exit_reason; } hw;
		struct { uint64_t hardware_entry_failure_reason; uint32_t cpu; } fail_entry;
		struct { uint32_t exception, error_code; } ex;
		struct { uint8_t direction, size; uint16_t port; uint32_t count; uint64_t data_offset; } io;
		struct { uint64_t phys_addr; uint8_t data[8]; uint32_t len; uint8_t is_write; } mmio;
		struct { uint64_t nr; uint64_t args[6]; uint64_t ret; uint64_t flags; } hypercall;
		struct { uint32_t suberror, ndata; uint64_t data[16]; } internal;
		struct { uint32_t type, ndata; uint64_t data[16]; } system_event;
		struct { uint64_t esr_iss, fault_ipa; } arm_nisv;
		struct { uint8_t error; uint8_t pad[7]; uint32_t reason, index; uint64_t data; } msr;
		struct { uint64_t flags, gpa, size; } memory_fault;
		uint8_t padding[256];
	} u;
	uint64_t kvm_valid_regs;
	uint64_t kvm_dirty_regs;
	union { uint8_t padding[2048]; } s;
};

_Static_assert(sizeof(struct kvm_run) == 2352, "kvm_run size (doc/abi/kvm.md 4.1)");
_Static_assert(offsetof(struct kvm_run, immediate_exit) == 1, "immediate_exit");
_Static_assert(offsetof(struct kvm_run, exit_reason) == 8, "exit_reason");
_Static_assert(offsetof(struct kvm_run, flags) == 14, "flags");
_Static_assert(offsetof(struct kvm_run, u) == 32, "exit union");
_Static_assert(offsetof(struct kvm_run, u.io.port) == 34, "io.port");
_Static_assert(offsetof(struct kvm_run, u.io.count) == 36, "io.count");
_Static_assert(offsetof(struct kvm_run, u.io.data_offset) == 40, "io.data_offset");
_Static_assert(offsetof(struct kvm_run, u.mmio.data) == 40, "mmio.data");
_Static_assert(offsetof(struct kvm_run, u.mmio.len) == 48, "mmio.len");
_Static_assert(offsetof(struct kvm_run, u.mmio.is_write) == 52, "mmio.is_write");
_Static_assert(offsetof(struct kvm_run, u.hypercall.ret) == 88, "hypercall.ret");
_Static_assert(offsetof(struct kvm_run, u.hypercall.flags) == 96, "hypercall.flags");
_Static_assert(offsetof(struct kvm_run, u.internal.data) == 40, "internal.data");
_Static_assert(offsetof(struct kvm_run, u.system_event.data) == 40, "system_event.data");
_Static_assert(offsetof(struct kvm_run, u.fail_entry.cpu) == 40, "fail_entry.cpu");
_Static_assert(offsetof(struct kvm_run, u.msr.reason) == 40, "msr.reason");
_Static_assert(offsetof(struct kvm_run, u.msr.data) == 48, "msr.data");
_Static_assert(offsetof(struct kvm_run, u.memory_fault.size) == 48, "memory_fault.size");
_Static_assert(offsetof(struct kvm_run, kvm_valid_regs) == 288, "kvm_valid_regs");
_Static_assert(offsetof(struct kvm_run, s) == 304, "sync regs");

/* §3 exit reasons. */
enum {
	KVM_EXIT_UNKNOWN = 0, KVM_EXIT_EXCEPTION = 1, KVM_EXIT_IO = 2, KVM_EXIT_HYPERCALL = 3,
	KVM_EXIT_DEBUG = 4, KVM_EXIT_HLT = 5, KVM_EXIT_MMIO = 6, KVM_EXIT_IRQ_WINDOW_OPEN = 7,
	KVM_EXIT_SHUTDOWN = 8, KVM_EXIT_FAIL_ENTRY = 9, KVM_EXIT_INTR = 10, KVM_EXIT_SET_TPR = 11,
	KVM_EXIT_TPR_ACCESS = 12, KVM_EXIT_NMI = 16, KVM_EXIT_INTERNAL_ERROR = 17,
	KVM_EXIT_SYSTEM_EVENT = 24, KVM_EXIT_IOAPIC_EOI = 26, KVM_EXIT_HYPERV = 27,
	KVM_EXIT_ARM_NISV = 28, KVM_EXIT_X86_RDMSR = 29, KVM_EXIT_X86_WRMSR = 30,
	KVM_EXIT_DIRTY_RING_FULL = 31, KVM_EXIT_AP_RESET_HOLD = 32, KVM_EXIT_X86_BUS_LOCK = 33,
	KVM_EXIT_XEN = 34, KVM_EXIT_NOTIFY = 37, KVM_EXIT_MEMORY_FAULT = 39, KVM_EXIT_TDX = 40,
	KVM_EXIT_ARM_SEA = 41,
};

#define KVM_EXIT_IO_IN 0
#define KVM_EXIT_IO_OUT 1
#define KVM_SYSTEM_EVENT_SHUTDOWN 1
#define KVM_SYSTEM_EVENT_RESET 2
#define KVM_SYSTEM_EVENT_CRASH 3
#define KVM_SYSTEM_EVENT_WAKEUP 4
#define KVM_SYSTEM_EVENT_SUSPEND 5
#define KVM_SYSTEM_EVENT_SEV_TERM 6
#define KVM_SYSTEM_EVENT_TDX_FATAL 7
#define KVM_HYPERCALL_EXIT_SMC (1u << 0) /* arm64 hypercall.flags */
#define KVM_HYPERCALL_LONGMODE (1u << 0) /* x86 hypercall.flags */

/* x86: the I/O data page is page 1 of the run mapping (KVM_PIO_PAGE_OFFSET). */
#define KVM_PIO_PAGE_OFFSET 1

/* §4.2 memory. */
struct kvm_userspace_memory_region {
	uint32_t slot;
	uint32_t flags;
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
};
_Static_assert(sizeof(struct kvm_userspace_memory_region) == 32, "memory region");
#define KVM_MEM_LOG_DIRTY_PAGES (1u << 0)
#define KVM_MEM_READONLY (1u << 1)

/* §4.3 */
struct kvm_one_reg {
	uint64_t id;
	uint64_t addr;
};
_Static_assert(sizeof(struct kvm_one_reg) == 16, "one_reg");
#define KVM_REG_SIZE_SHIFT 52
#define KVM_REG_SIZE_MASK 0x00f0000000000000ull
#define KVM_REG_SIZE_U32 0x0020000000000000ull
#define KVM_REG_SIZE_U64 0x0030000000000000ull
#define KVM_REG_SIZE_U128 0x0040000000000000ull
#define KVM_REG_SIZE_BYTES(id) (1u << (((id) & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT))

/* §4.6 arm64 */
#define KVM_REG_ARM64_CORE_BASE 0x6030000000100000ull
#define KVM_REG_ARM64_CORE_X(n) (KVM_REG_ARM64_CORE_BASE + 2ull * (n))
#define KVM_REG_ARM64_CORE_SP 0x603000000010003eull
#define KVM_REG_ARM64_CORE_PC 0x6030000000100040ull
#define KVM_REG_ARM64_CORE_PSTATE 0x6030000000100042ull
#define KVM_REG_ARM64_CORE_SP_EL1 0x6030000000100044ull
#define KVM_REG_ARM64_CORE_ELR_EL1 0x6030000000100046ull
#define KVM_REG_ARM64_SYSREG_BASE 0x6030000000130000ull
#define KVM_REG_ARM64_MPIDR_EL1 0x603000000013c005ull
_Static_assert(KVM_REG_ARM64_CORE_X(30) == 0x603000000010003cull, "x30 id");
_Static_assert((KVM_REG_ARM64_SYSREG_BASE | (3u << 14) | 5u) == KVM_REG_ARM64_MPIDR_EL1, "sysreg ids");

struct kvm_vcpu_init {
	uint32_t target;
	uint32_t features[7];
};
_Static_assert(sizeof(struct kvm_vcpu_init) == 32, "vcpu_init");
#define KVM_ARM_VCPU_POWER_OFF 0
#define KVM_ARM_VCPU_PSCI_0_2 2

struct kvm_smccc_filter {
	uint32_t base;
	uint32_t nr_functions;
	uint8_t action;
	uint8_t pad[15];
};
_Static_assert(sizeof(struct kvm_smccc_filter) == 24, "smccc_filter");
#define KVM_SMCCC_FILTER_HANDLE 0
#define KVM_SMCCC_FILTER_DENY 1
#define KVM_SMCCC_FILTER_FWD_TO_USER 2
#define KVM_ARM_VM_SMCCC_CTRL 0
#define KVM_ARM_VM_SMCCC_FILTER 0

/* §4.4 */
struct kvm_irq_level {
	uint32_t irq;
	uint32_t level;
};
_Static_assert(sizeof(struct kvm_irq_level) == 8, "irq_level");
/* §4.4 interrupt and event plumbing */
struct kvm_irqfd {
	uint32_t fd;
	uint32_t gsi;
	uint32_t flags;
	uint32_t resamplefd;
	uint8_t pad[16];
};
_Static_assert(sizeof(struct kvm_irqfd) == 32, "kvm_irqfd");
#define KVM_IRQFD_FLAG_DEASSIGN (1u << 0)
#define KVM_IRQFD_FLAG_RESAMPLE (1u << 1)

struct kvm_ioeventfd {
	uint64_t datamatch;
	uint64_t addr;
	uint32_t len;
	int32_t fd;
	uint32_t flags;
	uint8_t pad[36];
};
_Static_assert(sizeof(struct kvm_ioeventfd) == 64, "kvm_ioeventfd");
_Static_assert(offsetof(struct kvm_ioeventfd, fd) == 20, "kvm_ioeventfd.fd");
_Static_assert(offsetof(struct kvm_ioeventfd, flags) == 24, "kvm_ioeventfd.flags");
#define KVM_IOEVENTFD_FLAG_DATAMATCH (1u << 0)
#define KVM_IOEVENTFD_FLAG_PIO (1u << 1)
#define KVM_IOEVENTFD_FLAG_DEASSIGN (1u << 2)
#define KVM_IOEVENTFD_VALID_FLAGS 0x1fu /* bits 0-4 (§4.4: up to FAST_MMIO's enum value) */

struct kvm_msi {
	uint32_t address_lo;
	uint32_t address_hi;
	uint32_t data;
	uint32_t flags;
	uint32_t devid;
	uint8_t pad[12];
};
_Static_assert(sizeof(struct kvm_msi) == 32, "kvm_msi");
_Static_assert(offsetof(struct kvm_msi, devid) == 16, "kvm_msi.devid");

#define KVM_ARM_IRQ_TYPE_SHIFT 24
#define KVM_ARM_IRQ_TYPE_SPI 1u

struct kvm_create_device {
	uint32_t type;
	uint32_t fd;
	uint32_t flags;
};
_Static_assert(sizeof(struct kvm_create_device) == 12, "create_device");
#define KVM_DEV_TYPE_ARM_VGIC_V3 7

struct kvm_device_attr {
	uint32_t flags;
	uint32_t group;
	uint64_t attr;
	uint64_t addr;
};
_Static_assert(sizeof(struct kvm_device_attr) == 24, "device_attr");
#define KVM_DEV_ARM_VGIC_GRP_ADDR 0
#define KVM_VGIC_V3_ADDR_TYPE_DIST 2
#define KVM_VGIC_V3_ADDR_TYPE_REDIST 3
#define KVM_DEV_ARM_VGIC_GRP_NR_IRQS 3
#define KVM_DEV_ARM_VGIC_GRP_CTRL 4
#define KVM_DEV_ARM_VGIC_CTRL_INIT 0
/*
 * The vGICv3's register groups (doc/abi/kvm.md §8, arch/arm64/include/uapi/
 * asm/kvm.h; Documentation/virt/kvm/devices/arm-vgic-v3.rst): attr bits
 * 63-32 a vCPU's affinity (Aff3.Aff2.Aff1.Aff0, 8 bits each), 31-0 the
 * register's offset (DIST/REDIST, a u32 at addr), its instruction encoding
 * (CPU_SYSREGS, a u64), or the LEVEL_INFO selector and INTID (a u32).
 */
#define KVM_DEV_ARM_VGIC_GRP_DIST_REGS 1
#define KVM_DEV_ARM_VGIC_GRP_REDIST_REGS 5
#define KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS 6
#define KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO 7
#define KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT 32
#define KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT 10
#define VGIC_LEVEL_INFO_LINE_LEVEL 0

struct kvm_enable_cap {
	uint32_t cap;
	uint32_t flags;
	uint64_t args[4];
	uint8_t pad[64];
};
_Static_assert(sizeof(struct kvm_enable_cap) == 104, "enable_cap");

/*
 * §2 KVM_CREATE_PIT2 (x86).  KVM_PIT_SPEAKER_DUMMY is not in doc/abi/kvm.md: it is 1
 * in arch/x86/include/uapi/asm/kvm.h ("emulate speaker port stub"), and makes
 * KVM also claim port 0x61, where Linux gates PIT channel 2 to calibrate.
 */
struct kvm_pit_config {
	uint32_t flags;
	uint32_t pad[15];
};
_Static_assert(sizeof(struct kvm_pit_config) == 64, "kvm_pit_config (doc/abi/kvm.md 2)");
#define KVM_PIT_SPEAKER_DUMMY 1u

/*
 * x86 KVM_CREATE_IRQCHIP installs the default GSI routing (arch/x86/kvm/
 * irq_comm.c default_routing[]): GSIs 0-15 to the PIC and IOAPIC pins, 16-23
 * to the IOAPIC only.  KVM_IRQ_LINE on a GSI past these finds no route and
 * does nothing, and nothing in libvcpu adds routes.
 */
#define KVM_X86_DEFAULT_GSIS 24

/* §4.5 x86_64 */
struct kvm_regs_x86 {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
};
_Static_assert(sizeof(struct kvm_regs_x86) == 144, "x86 kvm_regs");

struct kvm_segment {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint8_t type, present, dpl, db, s, l, g, avl, unusable, padding;
};
_Static_assert(sizeof(struct kvm_segment) == 24, "kvm_segment");

struct kvm_dtable {
	uint64_t base;
	uint16_t limit;
	uint16_t padding[3];
};
_Static_assert(sizeof(struct kvm_dtable) == 16, "kvm_dtable");

struct kvm_sregs {
	struct kvm_segment cs, ds, es, fs, gs, ss, tr, ldt;
	struct kvm_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
	uint64_t interrupt_bitmap[4];
};
_Static_assert(sizeof(struct kvm_sregs) == 312, "kvm_sregs");
_Static_assert(offsetof(struct kvm_sregs, gdt) == 192, "sregs.gdt");
_Static_assert(offsetof(struct kvm_sregs, cr0) == 224, "sregs.cr0");
_Static_assert(offsetof(struct kvm_sregs, efer) == 264, "sregs.efer");

struct kvm_cpuid_entry2 {
	uint32_t function, index, flags, eax, ebx, ecx, edx;
	uint32_t padding[3];
};
_Static_assert(sizeof(struct kvm_cpuid_entry2) == 40, "cpuid_entry2");
#define KVM_CPUID_FLAG_SIGNIFCANT_INDEX 1u /* the uapi's spelling: index selects a subleaf */
struct kvm_cpuid2 {
	uint32_t nent;
	uint32_t padding;
	struct kvm_cpuid_entry2 entries[];
};
_Static_assert(sizeof(struct kvm_cpuid2) == 8, "cpuid2 header");

/* arm64 struct kvm_regs is only used for its size in the ioctl number (864). */
#define KVM_REGS_ARM64_SIZE 864

/*
 * KVM_GET_DIRTY_LOG's argument (api.rst 4.8; 16 bytes, doc/abi/kvm.md §2):
 * the slot, and where the kernel copies its bitmap, ALIGN(npages, 64) / 8
 * bytes of it, one bit per page, clearing it (without manual protection).
 */
struct kvm_dirty_log {
	uint32_t slot;
	uint32_t padding1;
	uint64_t dirty_bitmap; /* a user pointer */
};
_Static_assert(sizeof(struct kvm_dirty_log) == 16, "kvm_dirty_log");

/* §2 ioctls. */
#define KVM_GET_API_VERSION KVMABI_IO(0x00)
#define KVM_CREATE_VM KVMABI_IO(0x01)
#define KVM_CHECK_EXTENSION KVMABI_IO(0x03)
#define KVM_GET_VCPU_MMAP_SIZE KVMABI_IO(0x04)
#define KVM_GET_SUPPORTED_CPUID KVMABI_IOWR(0x05, struct kvm_cpuid2)
#define KVM_CREATE_VCPU KVMABI_IO(0x41)
#define KVM_GET_DIRTY_LOG KVMABI_IOW(0x42, struct kvm_dirty_log)
#define KVM_SET_USER_MEMORY_REGION KVMABI_IOW(0x46, struct kvm_userspace_memory_region)
#define KVM_SET_TSS_ADDR KVMABI_IO(0x47)
#define KVM_CREATE_IRQCHIP KVMABI_IO(0x60)
#define KVM_IRQ_LINE KVMABI_IOW(0x61, struct kvm_irq_level)
#define KVM_CREATE_PIT2 KVMABI_IOW(0x77, struct kvm_pit_config)
#define KVM_IRQFD KVMABI_IOW(0x76, struct kvm_irqfd)
#define KVM_IOEVENTFD KVMABI_IOW(0x79, struct kvm_ioeventfd)
#define KVM_SIGNAL_MSI KVMABI_IOW(0xa5, struct kvm_msi)
#define KVM_RUN KVMABI_IO(0x80)
#define KVM_GET_REGS_X86 KVMABI_IOR(0x81, struct kvm_regs_x86)
#define KVM_SET_REGS_X86 KVMABI_IOW(0x82, struct kvm_regs_x86)
#define KVM_GET_SREGS KVMABI_IOR(0x83, struct kvm_sregs)
#define KVM_SET_SREGS KVMABI_IOW(0x84, struct kvm_sregs)
#define KVM_SET_CPUID2 KVMABI_IOW(0x90, struct kvm_cpuid2)
#define KVM_ENABLE_CAP KVMABI_IOW(0xa3, struct kvm_enable_cap)
#define KVM_GET_ONE_REG KVMABI_IOW(0xab, struct kvm_one_reg)
#define KVM_SET_ONE_REG KVMABI_IOW(0xac, struct kvm_one_reg)
#define KVM_ARM_VCPU_INIT KVMABI_IOW(0xae, struct kvm_vcpu_init)
#define KVM_ARM_PREFERRED_TARGET KVMABI_IOR(0xaf, struct kvm_vcpu_init)
#define KVM_CREATE_DEVICE KVMABI_IOWR(0xe0, struct kvm_create_device)
#define KVM_SET_DEVICE_ATTR KVMABI_IOW(0xe1, struct kvm_device_attr)
#define KVM_GET_DEVICE_ATTR KVMABI_IOW(0xe2, struct kvm_device_attr)
#define KVM_HAS_DEVICE_ATTR KVMABI_IOW(0xe3, struct kvm_device_attr)
#define KVM_GET_REGS_ARM64 KVMABI_IOC(2, 0x81, KVM_REGS_ARM64_SIZE)

_Static_assert(KVM_GET_SUPPORTED_CPUID == 0xc008ae05ul, "KVM_GET_SUPPORTED_CPUID");
_Static_assert(KVM_SET_USER_MEMORY_REGION == 0x4020ae46ul, "KVM_SET_USER_MEMORY_REGION");
_Static_assert(KVM_GET_DIRTY_LOG == 0x4010ae42ul, "KVM_GET_DIRTY_LOG");
_Static_assert(KVM_IRQ_LINE == 0x4008ae61ul, "KVM_IRQ_LINE");
_Static_assert(KVM_CREATE_PIT2 == 0x4040ae77ul, "KVM_CREATE_PIT2");
_Static_assert(KVM_IRQFD == 0x4020ae76ul, "KVM_IRQFD");
_Static_assert(KVM_IOEVENTFD == 0x4040ae79ul, "KVM_IOEVENTFD");
_Static_assert(KVM_SIGNAL_MSI == 0x4020aea5ul, "KVM_SIGNAL_MSI");
_Static_assert(KVM_RUN == 0xae80ul, "KVM_RUN");
_Static_assert(KVM_GET_REGS_X86 == 0x8090ae81ul, "KVM_GET_REGS x86");
_Static_assert(KVM_SET_REGS_X86 == 0x4090ae82ul, "KVM_SET_REGS x86");
_Static_assert(KVM_GET_SREGS == 0x8138ae83ul, "KVM_GET_SREGS");
_Static_assert(KVM_SET_SREGS == 0x4138ae84ul, "KVM_SET_SREGS");
_Static_assert(KVM_SET_CPUID2 == 0x4008ae90ul, "KVM_SET_CPUID2");
_Static_assert(KVM_ENABLE_CAP == 0x4068aea3ul, "KVM_ENABLE_CAP");
_Static_assert(KVM_GET_ONE_REG == 0x4010aeabul, "KVM_GET_ONE_REG");
_Static_assert(KVM_SET_ONE_REG == 0x4010aeacul, "KVM_SET_ONE_REG");
_Static_assert(KVM_ARM_VCPU_INIT == 0x4020aeaeul, "KVM_ARM_VCPU_INIT");
_Static_assert(KVM_ARM_PREFERRED_TARGET == 0x8020aeaful, "KVM_ARM_PREFERRED_TARGET");
_Static_assert(KVM_CREATE_DEVICE == 0xc00caee0ul, "KVM_CREATE_DEVICE");
_Static_assert(KVM_SET_DEVICE_ATTR == 0x4018aee1ul, "KVM_SET_DEVICE_ATTR");
_Static_assert(KVM_HAS_DEVICE_ATTR == 0x4018aee3ul, "KVM_HAS_DEVICE_ATTR");
_Static_assert(KVM_GET_REGS_ARM64 == 0x8360ae81ul, "KVM_GET_REGS arm64");

/* Capabilities (§2). */
#define KVM_CAP_IRQCHIP 0
#define KVM_CAP_USER_MEMORY 3
#define KVM_CAP_NR_VCPUS 9
#define KVM_CAP_NR_MEMSLOTS 10
#define KVM_CAP_IRQFD 32
#define KVM_CAP_IOEVENTFD 36
#define KVM_CAP_MAX_VCPUS 66
#define KVM_CAP_ONE_REG 70
#define KVM_CAP_READONLY_MEM 81
#define KVM_CAP_ARM_PSCI_0_2 102
#define KVM_CAP_VM_ATTRIBUTES 101
#define KVM_CAP_MAX_VCPU_ID 128
#define KVM_CAP_IMMEDIATE_EXIT 136
#define KVM_CAP_ARM_VM_IPA_SIZE 165
#define KVM_CAP_SYSTEM_EVENT_DATA 215
#define KVM_CAP_ARM_SYSTEM_SUSPEND 216
/*
 * x86: which hypercall numbers exit to userspace (Documentation/virt/kvm/
 * api.rst, 7.25 KVM_CAP_EXIT_HYPERCALL): CHECK_EXTENSION answers the mask
 * KVM can forward, ENABLE_CAP args[0] sets the VM's.  Linux 5.15+ forwards
 * only KVM_HC_MAP_GPA_RANGE (Documentation/virt/kvm/x86/hypercalls.rst);
 * every other VMCALL is answered in the kernel (-KVM_ENOSYS in RAX).
 */
#define KVM_CAP_EXIT_HYPERCALL 201
#define KVM_HC_MAP_GPA_RANGE 12

/*
 * Further definitions the mock driver (lib/mock) models; all from
 * doc/abi/kvm.md, checked below like the rest.
 */

/* §2: vCPU state and signal-mask ioctls. */
struct kvm_mp_state {
	uint32_t mp_state;
};
_Static_assert(sizeof(struct kvm_mp_state) == 4, "kvm_mp_state (doc/abi/kvm.md 4.4)");
#define KVM_MP_STATE_RUNNABLE 0
#define KVM_MP_STATE_UNINITIALIZED 1
#define KVM_MP_STATE_INIT_RECEIVED 2
#define KVM_MP_STATE_HALTED 3
#define KVM_MP_STATE_SIPI_RECEIVED 4
#define KVM_MP_STATE_STOPPED 5
#define KVM_MP_STATE_SUSPENDED 10

/* §4.4: len must be the kernel's sigset size, 8, not glibc's 128. */
struct kvm_signal_mask {
	uint32_t len;
	uint8_t sigset[];
};
_Static_assert(sizeof(struct kvm_signal_mask) == 4, "kvm_signal_mask header (doc/abi/kvm.md 4.4)");
#define KVM_SIGSET_SIZE 8

#define KVM_GET_MP_STATE KVMABI_IOR(0x98, struct kvm_mp_state)
#define KVM_SET_MP_STATE KVMABI_IOW(0x99, struct kvm_mp_state)
#define KVM_SET_SIGNAL_MASK KVMABI_IOW(0x8b, struct kvm_signal_mask)
#define KVM_SET_REGS_ARM64 KVMABI_IOC(1, 0x82, KVM_REGS_ARM64_SIZE)
_Static_assert(KVM_GET_MP_STATE == 0x8004ae98ul, "KVM_GET_MP_STATE");
_Static_assert(KVM_SET_MP_STATE == 0x4004ae99ul, "KVM_SET_MP_STATE");
_Static_assert(KVM_SET_SIGNAL_MASK == 0x4004ae8bul, "KVM_SET_SIGNAL_MASK");
_Static_assert(KVM_SET_REGS_ARM64 == 0x4360ae82ul, "KVM_SET_REGS arm64");
_Static_assert(KVM_GET_API_VERSION == 0xae00ul && KVM_CREATE_VM == 0xae01ul, "dev ioctls");
_Static_assert(KVM_CHECK_EXTENSION == 0xae03ul && KVM_GET_VCPU_MMAP_SIZE == 0xae04ul, "dev ioctls");
_Static_assert(KVM_CREATE_VCPU == 0xae41ul && KVM_SET_TSS_ADDR == 0xae47ul, "vm ioctls");
_Static_assert(KVM_CREATE_IRQCHIP == 0xae60ul, "KVM_CREATE_IRQCHIP");
_Static_assert(KVM_GET_DEVICE_ATTR == 0x4018aee2ul, "KVM_GET_DEVICE_ATTR");

/* §4.3/§4.6 ONE_REG id fields (arm64). */
#define KVM_REG_ARCH_MASK 0xff00000000000000ull
#define KVM_REG_ARM64 0x6000000000000000ull
#define KVM_REG_ARM_COPROC_MASK 0x000000000fff0000ull
#define KVM_REG_ARM_CORE (0x0010ull << 16)
#define KVM_REG_ARM64_SYSREG (0x0013ull << 16)
#define KVM_REG_ARM_FW (0x0014ull << 16)
#define KVM_REG_ARM_PSCI_VERSION 0x6030000000140000ull
_Static_assert((KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE) == KVM_REG_ARM64_CORE_BASE,
	       "core reg base (doc/abi/kvm.md 4.6)");
_Static_assert((KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG) == KVM_REG_ARM64_SYSREG_BASE,
	       "sysreg base (doc/abi/kvm.md 4.6)");
_Static_assert(KVM_REG_ARM64_CORE_PC == KVM_REG_ARM64_CORE_BASE + 256 / 4, "pc offset 256");
_Static_assert(KVM_REG_ARM64_CORE_ELR_EL1 == KVM_REG_ARM64_CORE_BASE + 280 / 4, "elr_el1 offset 280");

/* §4.6 struct kvm_vcpu_init: target and features[0] bits. */
#define KVM_ARM_TARGET_GENERIC_V8 5
#define KVM_ARM_VCPU_EL1_32BIT 1
#define KVM_ARM_VCPU_PMU_V3 3
#define KVM_ARM_VCPU_SVE 4
#define KVM_ARM_VCPU_HAS_EL2 7

/* §4.4 arm64 KVM_IRQ_LINE irq field: type in bits 27-24, vcpu index 23-16. */
#define KVM_ARM_IRQ_TYPE_MASK 0xfu
#define KVM_ARM_IRQ_TYPE_CPU 0u
#define KVM_ARM_IRQ_TYPE_PPI 2u
#define KVM_ARM_IRQ_VCPU_SHIFT 16
#define KVM_ARM_IRQ_VCPU_MASK 0xffu
#define KVM_ARM_IRQ_VCPU2_SHIFT 28
#define KVM_ARM_IRQ_VCPU2_MASK 0xfu
#define KVM_ARM_IRQ_NUM_MASK 0xffffu

/* §2 KVM_CREATE_DEVICE flags: probe a type without creating it. */
#define KVM_CREATE_DEVICE_TEST 1u

/* §3 system_event.data[0] on arm64 RESET. */
#define KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2 (1ull << 0)
#define KVM_HYPERCALL_EXIT_16BIT (1u << 1)

/* §3 memory_fault.flags. */
#define KVM_MEMORY_EXIT_FLAG_PRIVATE (1ull << 3)


/*
 * §8 State save and restore (doc/abi/kvm.md §8: Linux 6.1 uapi, linux/kvm.h
 * and arch/x86/include/uapi/asm/kvm.h; api.rst 4.x as named).  x86 unless
 * said.  tests/check_uapi.c compares each with the build host's own
 * <linux/kvm.h>.
 */
struct kvm_msr_entry {
	uint32_t index;
	uint32_t reserved;
	uint64_t data;
};
_Static_assert(sizeof(struct kvm_msr_entry) == 16, "kvm_msr_entry");
struct kvm_msrs {
	uint32_t nmsrs;
	uint32_t pad;
	struct kvm_msr_entry entries[];
};
_Static_assert(sizeof(struct kvm_msrs) == 8, "kvm_msrs header");
struct kvm_msr_list {
	uint32_t nmsrs;
	uint32_t indices[];
};
_Static_assert(sizeof(struct kvm_msr_list) == 4, "kvm_msr_list header");
/* KVM_GET_MSRS / KVM_SET_MSRS take at most this many (arch/x86/kvm/x86.c MAX_IO_MSRS). */
#define KVM_MAX_IO_MSRS 256u

struct kvm_xsave {
	uint32_t region[1024];
};
_Static_assert(sizeof(struct kvm_xsave) == 4096, "kvm_xsave");
struct kvm_xcr {
	uint32_t xcr;
	uint32_t reserved;
	uint64_t value;
};
#define KVM_MAX_XCRS 16u
struct kvm_xcrs {
	uint32_t nr_xcrs;
	uint32_t flags;
	struct kvm_xcr xcrs[KVM_MAX_XCRS];
	uint64_t padding[16];
};
_Static_assert(sizeof(struct kvm_xcrs) == 392, "kvm_xcrs");
struct kvm_debugregs {
	uint64_t db[4];
	uint64_t dr6, dr7, flags;
	uint64_t reserved[9];
};
_Static_assert(sizeof(struct kvm_debugregs) == 128, "kvm_debugregs");
struct kvm_vcpu_events {
	struct { uint8_t injected, nr, has_error_code, pending; uint32_t error_code; } exception;
	struct { uint8_t injected, nr, soft, shadow; } interrupt;
	struct { uint8_t injected, pending, masked, pad; } nmi;
	uint32_t sipi_vector;
	uint32_t flags;
	struct { uint8_t smm, pending, smm_inside_nmi, latched_init; } smi;
	struct { uint8_t pending; } triple_fault;
	uint8_t reserved[26];
	uint8_t exception_has_payload;
	uint64_t exception_payload;
};
_Static_assert(sizeof(struct kvm_vcpu_events) == 64, "kvm_vcpu_events (doc/abi/kvm.md 2)");
_Static_assert(offsetof(struct kvm_vcpu_events, flags) == 20, "events.flags");
_Static_assert(offsetof(struct kvm_vcpu_events, exception_payload) == 56, "events.payload");
#define KVM_VCPUEVENT_VALID_NMI_PENDING 0x01u
#define KVM_VCPUEVENT_VALID_SIPI_VECTOR 0x02u
#define KVM_VCPUEVENT_VALID_SHADOW 0x04u
#define KVM_VCPUEVENT_VALID_SMM 0x08u
#define KVM_VCPUEVENT_VALID_PAYLOAD 0x10u
#define KVM_VCPUEVENT_VALID_TRIPLE_FAULT 0x20u
struct kvm_lapic_state {
	uint8_t regs[1024];
};
_Static_assert(sizeof(struct kvm_lapic_state) == 1024, "kvm_lapic_state (doc/abi/kvm.md 7)");
struct kvm_pic_state {
	uint8_t bytes[16]; /* last_irr ... elcr_mask, one byte each */
};
struct kvm_ioapic_state {
	uint64_t base_address;
	uint32_t ioregsel, id, irr, pad;
	uint64_t redirtbl[24];
};
_Static_assert(sizeof(struct kvm_ioapic_state) == 216, "kvm_ioapic_state");
struct kvm_irqchip {
	uint32_t chip_id;
	uint32_t pad;
	union {
		uint8_t dummy[512];
		struct kvm_pic_state pic;
		struct kvm_ioapic_state ioapic;
	} chip;
};
_Static_assert(sizeof(struct kvm_irqchip) == 520, "kvm_irqchip");
#define KVM_IRQCHIP_PIC_MASTER 0u
#define KVM_IRQCHIP_PIC_SLAVE 1u
#define KVM_IRQCHIP_IOAPIC 2u
struct kvm_pit_channel_state {
	uint32_t count;
	uint16_t latched_count;
	uint8_t count_latched, status_latched, status, read_state, write_state, write_latch;
	uint8_t rw_mode, mode, bcd, gate;
	int64_t count_load_time;
};
_Static_assert(sizeof(struct kvm_pit_channel_state) == 24, "kvm_pit_channel_state");
struct kvm_pit_state2 {
	struct kvm_pit_channel_state channels[3];
	uint32_t flags;
	uint32_t reserved[9];
};
_Static_assert(sizeof(struct kvm_pit_state2) == 112, "kvm_pit_state2");
#define KVM_PIT_FLAGS_HPET_LEGACY 0x1u
#define KVM_PIT_FLAGS_SPEAKER_DATA_ON 0x2u
struct kvm_clock_data {
	uint64_t clock;
	uint32_t flags;
	uint32_t pad0;
	uint64_t realtime;
	uint64_t host_tsc;
	uint32_t pad[4];
};
_Static_assert(sizeof(struct kvm_clock_data) == 48, "kvm_clock_data");
#define KVM_CLOCK_TSC_STABLE 0x2u
#define KVM_CLOCK_REALTIME 0x4u
#define KVM_CLOCK_HOST_TSC 0x8u
struct kvm_reg_list {
	uint64_t n;
	uint64_t reg[];
};
_Static_assert(sizeof(struct kvm_reg_list) == 8, "kvm_reg_list header");

#define KVM_GET_MSR_INDEX_LIST KVMABI_IOWR(0x02, struct kvm_msr_list)
#define KVM_GET_MSRS KVMABI_IOWR(0x88, struct kvm_msrs)
#define KVM_SET_MSRS KVMABI_IOW(0x89, struct kvm_msrs)
#define KVM_GET_LAPIC KVMABI_IOR(0x8e, struct kvm_lapic_state)
#define KVM_SET_LAPIC KVMABI_IOW(0x8f, struct kvm_lapic_state)
#define KVM_GET_VCPU_EVENTS KVMABI_IOR(0x9f, struct kvm_vcpu_events)
#define KVM_SET_VCPU_EVENTS KVMABI_IOW(0xa0, struct kvm_vcpu_events)
#define KVM_GET_DEBUGREGS KVMABI_IOR(0xa1, struct kvm_debugregs)
#define KVM_SET_DEBUGREGS KVMABI_IOW(0xa2, struct kvm_debugregs)
#define KVM_GET_XSAVE KVMABI_IOR(0xa4, struct kvm_xsave)
#define KVM_SET_XSAVE KVMABI_IOW(0xa5, struct kvm_xsave)
#define KVM_GET_XCRS KVMABI_IOR(0xa6, struct kvm_xcrs)
#define KVM_SET_XCRS KVMABI_IOW(0xa7, struct kvm_xcrs)
#define KVM_GET_XSAVE2 KVMABI_IOR(0xcf, struct kvm_xsave)
/* VM fd.  SET_IRQCHIP is _IOR in the uapi, a historical slip kept for ABI. */
#define KVM_GET_IRQCHIP KVMABI_IOWR(0x62, struct kvm_irqchip)
#define KVM_SET_IRQCHIP KVMABI_IOR(0x63, struct kvm_irqchip)
#define KVM_SET_CLOCK KVMABI_IOW(0x7b, struct kvm_clock_data)
#define KVM_GET_CLOCK KVMABI_IOR(0x7c, struct kvm_clock_data)
#define KVM_GET_PIT2 KVMABI_IOR(0x9f, struct kvm_pit_state2)
#define KVM_SET_PIT2 KVMABI_IOW(0xa0, struct kvm_pit_state2)
/* vCPU fd, both architectures. */
#define KVM_GET_REG_LIST KVMABI_IOWR(0xb0, struct kvm_reg_list)
/*
 * x86 vCPU fd: the guest's TSC rate in kHz, the ioctl's value (SET) and
 * return value (GET) (api.rst KVM_GET_TSC_KHZ, KVM_SET_TSC_KHZ).
 */
#define KVM_SET_TSC_KHZ KVMABI_IO(0xa2)
#define KVM_GET_TSC_KHZ KVMABI_IO(0xa3)
_Static_assert(KVM_SET_TSC_KHZ == 0xaea2ul && KVM_GET_TSC_KHZ == 0xaea3ul, "TSC_KHZ");
#define KVM_CAP_TSC_CONTROL 60
#define KVM_CAP_GET_TSC_KHZ 61

/*
 * Manual dirty-log protection (api.rst KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
 * KVM_CLEAR_DIRTY_LOG): with it enabled, KVM_GET_DIRTY_LOG only copies the
 * bitmap, and KVM_CLEAR_DIRTY_LOG clears the bits given and write-protects
 * those pages again.  first_page a multiple of 64; num_pages too, unless
 * the range ends at the slot's end.
 */
struct kvm_clear_dirty_log {
	uint32_t slot;
	uint32_t num_pages;
	uint64_t first_page;
	uint64_t dirty_bitmap; /* a user pointer */
};
_Static_assert(sizeof(struct kvm_clear_dirty_log) == 24, "kvm_clear_dirty_log");
#define KVM_CLEAR_DIRTY_LOG KVMABI_IOWR(0xc0, struct kvm_clear_dirty_log)
_Static_assert(KVM_CLEAR_DIRTY_LOG == 0xc018aec0ul, "KVM_CLEAR_DIRTY_LOG");
#define KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 168
#define KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE (1u << 0)
#define KVM_DIRTY_LOG_INITIALLY_SET (1u << 1)

_Static_assert(KVM_GET_MSR_INDEX_LIST == 0xc004ae02ul, "KVM_GET_MSR_INDEX_LIST");
_Static_assert(KVM_GET_MSRS == 0xc008ae88ul, "KVM_GET_MSRS");
_Static_assert(KVM_SET_MSRS == 0x4008ae89ul, "KVM_SET_MSRS");
_Static_assert(KVM_GET_LAPIC == 0x8400ae8eul, "KVM_GET_LAPIC");
_Static_assert(KVM_SET_LAPIC == 0x4400ae8ful, "KVM_SET_LAPIC");
_Static_assert(KVM_GET_VCPU_EVENTS == 0x8040ae9ful, "KVM_GET_VCPU_EVENTS");
_Static_assert(KVM_SET_VCPU_EVENTS == 0x4040aea0ul, "KVM_SET_VCPU_EVENTS");
_Static_assert(KVM_GET_DEBUGREGS == 0x8080aea1ul, "KVM_GET_DEBUGREGS");
_Static_assert(KVM_SET_DEBUGREGS == 0x4080aea2ul, "KVM_SET_DEBUGREGS");
_Static_assert(KVM_GET_XSAVE == 0x9000aea4ul, "KVM_GET_XSAVE");
_Static_assert(KVM_SET_XSAVE == 0x5000aea5ul, "KVM_SET_XSAVE");
_Static_assert(KVM_GET_XCRS == 0x8188aea6ul, "KVM_GET_XCRS");
_Static_assert(KVM_SET_XCRS == 0x4188aea7ul, "KVM_SET_XCRS");
_Static_assert(KVM_GET_XSAVE2 == 0x9000aecful, "KVM_GET_XSAVE2");
_Static_assert(KVM_GET_IRQCHIP == 0xc208ae62ul, "KVM_GET_IRQCHIP");
_Static_assert(KVM_SET_IRQCHIP == 0x8208ae63ul, "KVM_SET_IRQCHIP");
_Static_assert(KVM_SET_CLOCK == 0x4030ae7bul, "KVM_SET_CLOCK");
_Static_assert(KVM_GET_CLOCK == 0x8030ae7cul, "KVM_GET_CLOCK");
_Static_assert(KVM_GET_PIT2 == 0x8070ae9ful, "KVM_GET_PIT2");
_Static_assert(KVM_SET_PIT2 == 0x4070aea0ul, "KVM_SET_PIT2");
_Static_assert(KVM_GET_REG_LIST == 0xc008aeb0ul, "KVM_GET_REG_LIST");

#define KVM_CAP_MP_STATE 14
#define KVM_CAP_PIT_STATE2 35
#define KVM_CAP_ADJUST_CLOCK 39
#define KVM_CAP_VCPU_EVENTS 41
#define KVM_CAP_DEBUGREGS 50
#define KVM_CAP_XSAVE 55
#define KVM_CAP_XCRS 56
#define KVM_CAP_XSAVE2 208

/* arm64 register-id fields beyond §4.6 (arch/arm64/include/uapi/asm/kvm.h). */
#define KVM_REG_ARCH_MASK 0xff00000000000000ull
#define KVM_REG_ARM64 0x6000000000000000ull
#define KVM_REG_X86 0x2000000000000000ull
#define KVM_REG_ARM64_TIMER_CNT 0x603000000013df1aull
/*
 * The SVE vector lengths (arch/arm64/include/uapi/asm/kvm.h; api.rst
 * KVM_ARM_VCPU_FINALIZE): a 512-bit pseudo-register, settable only before
 * the vCPU is finalized, listed by KVM_GET_REG_LIST after.
 */
#define KVM_REG_ARM64_SVE_VLS 0x606000000015ffffull
/*
 * SVE's registers (same header), one slice each up to 2048-bit vectors:
 * Z0-Z31 (U2048, n << 5), P0-P15 and FFR (U256).
 */
#define KVM_REG_ARM64_SVE (0x15ull << 16)
#define KVM_REG_ARM64_SVE_ZREG(n) (0x6080000000150000ull | ((uint64_t)(n) << 5))
#define KVM_REG_ARM64_SVE_PREG(n) (0x6050000000150400ull | ((uint64_t)(n) << 5))
#define KVM_REG_ARM64_SVE_FFR 0x6050000000150600ull
#define KVM_REG_ARM64_PSCI_VERSION 0x6030000000140000ull

/*
 * §9 vCPU features (doc/abi/kvm.md §9): the values of Linux 6.1's
 * <linux/kvm.h> and arch/arm64/include/uapi/asm/kvm.h as Debian 12 ships
 * them (compiled and printed, not copied).  arm64 SVE, pointer
 * authentication and PMUv3 are asked of the driver with these capabilities
 * (Documentation/virt/kvm/api.rst: KVM_CAP_ARM_SVE, KVM_CAP_ARM_PTRAUTH_ADDRESS
 * and KVM_CAP_ARM_PTRAUTH_GENERIC, KVM_CAP_ARM_PMU_V3) and chosen with
 * kvm_vcpu_init feature bits (KVM_ARM_VCPU_PMU_V3 3 and KVM_ARM_VCPU_SVE 4
 * are in §4.6 above).  An SVE vCPU must then be finalized (api.rst:
 * KVM_ARM_VCPU_FINALIZE, whose argument points to an int), and a
 * PMUv3 vCPU given its interrupt and initialised through its vCPU fd's
 * device attributes (Documentation/virt/kvm/devices/vcpu.rst, "GROUP:
 * KVM_ARM_VCPU_PMU_V3_CTRL").  x86: KVM_GET_SUPPORTED_CPUID and
 * KVM_SET_CPUID2 (§2) with struct kvm_cpuid_entry2 (§4.5).
 */
#define KVM_CAP_ARM_PMU_V3 126
#define KVM_CAP_ARM_SVE 170
#define KVM_CAP_ARM_PTRAUTH_ADDRESS 171
#define KVM_CAP_ARM_PTRAUTH_GENERIC 172
#define KVM_ARM_VCPU_PTRAUTH_ADDRESS 5
#define KVM_ARM_VCPU_PTRAUTH_GENERIC 6
#define KVM_ARM_VCPU_FINALIZE KVMABI_IOW(0xc2, int)
#define KVM_ARM_VCPU_PMU_V3_CTRL 0
#define KVM_ARM_VCPU_PMU_V3_IRQ 0
#define KVM_ARM_VCPU_PMU_V3_INIT 1
_Static_assert(KVM_ARM_VCPU_FINALIZE == 0x4004aec2ul, "KVM_ARM_VCPU_FINALIZE (doc/abi/kvm.md 9)");
_Static_assert(KVM_CAP_ARM_PMU_V3 == 126 && KVM_CAP_ARM_SVE == 170 &&
	       KVM_CAP_ARM_PTRAUTH_ADDRESS == 171 && KVM_CAP_ARM_PTRAUTH_GENERIC == 172,
	       "arm64 feature capabilities (doc/abi/kvm.md 9)");
_Static_assert(((1u << KVM_ARM_VCPU_PMU_V3) | (1u << KVM_ARM_VCPU_SVE) |
		(1u << KVM_ARM_VCPU_PTRAUTH_ADDRESS) | (1u << KVM_ARM_VCPU_PTRAUTH_GENERIC)) == 0x78u,
	       "kvm_vcpu_init feature bits 3-6 (doc/abi/kvm.md 4.6, 9)");
_Static_assert(KVM_ARM_VCPU_PMU_V3_CTRL == 0 && KVM_ARM_VCPU_PMU_V3_IRQ == 0 &&
	       KVM_ARM_VCPU_PMU_V3_INIT == 1, "PMUv3 vCPU attributes (doc/abi/kvm.md 9)");

#endif
