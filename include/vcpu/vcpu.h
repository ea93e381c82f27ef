/* SPDX-License-Identifier: MIT */
/*
 * libvcpu: one small C API over the userspace ABIs of Linux hypervisor drivers.
 *
 * Object model: a hypervisor handle (struct vcpu_hv, one open driver: real or
 * mock) creates VMs (struct vcpu_vm), a VM creates vCPUs (struct vcpu).
 * Children must be destroyed before their parent; destroying a parent with
 * live children fails with -EBUSY.
 *
 * Errors: every function that can fail returns 0 (or a documented positive
 * value) on success and a negative errno on failure.  The failing handle keeps
 * a human-readable detail, read with vcpu_hv_last_error(), vcpu_vm_last_error()
 * or vcpu_last_error().  A NULL handle is reported as -EINVAL (there is no
 * handle to hold a detail).
 *
 * Threads: a vCPU is run by one thread at a time (the one in vcpu_run()); its
 * register accessors are for that thread, or for any thread while no
 * vcpu_run() is in progress.  vcpu_kick() may be called from any thread or a
 * signal handler.  VM-level calls (memory, vCPU creation) are serialised
 * internally and may come from any thread.
 */
#ifndef VCPU_VCPU_H
#define VCPU_VCPU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VCPU_API __attribute__((visibility("default")))
#else
#define VCPU_API
#endif

/** Hypervisor drivers libvcpu knows. */
enum vcpu_backend {
	VCPU_BACKEND_AUTO = 0,      /**< first device node present, in the order below */
	VCPU_BACKEND_KVM = 1,       /**< /dev/kvm */
	VCPU_BACKEND_GUNYAH = 2,    /**< /dev/gunyah */
	VCPU_BACKEND_GENIEZONE = 3, /**< /dev/gzvm */
	VCPU_BACKEND_ACRN = 4,      /**< /dev/acrn_hsm */
};

/** Guest architecture of a hypervisor handle. */
enum vcpu_arch {
	VCPU_ARCH_HOST = 0, /**< only as an argument: the architecture libvcpu was built for */
	VCPU_ARCH_X86_64 = 1,
	VCPU_ARCH_ARM64 = 2,
};

struct vcpu_hv;
struct vcpu_vm;
struct vcpu;

/* ------------------------------------------------------------------------ */
/* Hypervisor handle                                                          */

/**
 * vcpu_hv_open() - open a hypervisor driver.
 * @backend: a backend, or VCPU_BACKEND_AUTO to take the first device node
 *           present among /dev/kvm, /dev/gunyah, /dev/gzvm, /dev/acrn_hsm.
 * @out: receives the handle.
 *
 * Return: 0; -ENODEV when no (or not the named) device node exists;
 * -EOPNOTSUPP on a host that is neither x86_64 nor arm64; -EPROTO when the
 * driver speaks an ABI version libvcpu does not support; or the errno of the
 * failing open()/ioctl().
 */
VCPU_API int vcpu_hv_open(enum vcpu_backend backend, struct vcpu_hv **out);

/**
 * vcpu_hv_open_path() - open a hypervisor driver at an explicit device path
 * (a container's /dev, a test node).  @backend must not be AUTO.
 */
VCPU_API int vcpu_hv_open_path(enum vcpu_backend backend, const char *path,
			       struct vcpu_hv **out);

/**
 * vcpu_hv_close() - close a hypervisor handle.
 * Return: 0; -EBUSY (handle left open) while VMs created from it still exist;
 * -EINVAL for NULL.
 */
VCPU_API int vcpu_hv_close(struct vcpu_hv *hv);

/** vcpu_hv_backend() - the backend a handle talks to (never AUTO). */
VCPU_API enum vcpu_backend vcpu_hv_backend(const struct vcpu_hv *hv);

/** vcpu_hv_arch() - the guest architecture of a handle (never HOST). */
VCPU_API enum vcpu_arch vcpu_hv_arch(const struct vcpu_hv *hv);

/** vcpu_backend_name() - "kvm", "gunyah", "geniezone", "acrn", "auto" or "unknown". */
VCPU_API const char *vcpu_backend_name(enum vcpu_backend backend);

/** vcpu_hv_last_error() - detail of the last failure on @hv ("" if none). */
VCPU_API const char *vcpu_hv_last_error(const struct vcpu_hv *hv);

/**
 * Capabilities.  Where the driver can be asked (KVM's CHECK_EXTENSION, the
 * IPA width of GenieZone) it is asked each time, never cached; where the ABI
 * fixes the answer (Gunyah, ACRN, most of GenieZone) the answer is the ABI's.
 */
enum vcpu_cap {
	VCPU_CAP_MAX_VCPUS = 1,       /**< value: most vCPUs per VM */
	VCPU_CAP_MAX_VCPU_ID = 2,     /**< value: vCPU ids must be below this */
	VCPU_CAP_NR_MEMSLOTS = 3,     /**< value: memory regions per VM */
	VCPU_CAP_IMMEDIATE_EXIT = 4,  /**< kick without a lost wake-up */
	VCPU_CAP_READONLY_MEM = 5,    /**< VCPU_MEM_READONLY regions */
	VCPU_CAP_IRQFD = 6,
	VCPU_CAP_IOEVENTFD = 7,
	VCPU_CAP_IRQCHIP = 8,         /**< an in-kernel interrupt controller can be had (KVM:
				       *   vcpu_x86_create_irqchip(), vcpu_vm_create_gic_v3()) */
	VCPU_CAP_ONE_REG = 9,
	VCPU_CAP_ARM_PSCI_0_2 = 10,   /**< arm64: in-kernel PSCI 0.2+ */
	VCPU_CAP_ARM_IPA_BITS = 11,   /**< arm64 value: largest guest-physical address width */
	VCPU_CAP_ARM_SMCCC_FILTER = 12, /**< arm64: hypercalls can be forwarded (VM-level query) */
	VCPU_CAP_ARM_SYSTEM_SUSPEND = 13, /**< arm64: PSCI SYSTEM_SUSPEND as a system event */
	VCPU_CAP_SYSTEM_EVENT_DATA = 14,  /**< system events carry data words */
	/* 1.1: what a portable VMM asks instead of branching on the backend. */
	VCPU_CAP_DTB_REQUIRED = 15,   /**< a VM needs vcpu_vm_set_dtb() before it starts */
	VCPU_CAP_SET_REGS = 16,       /**< vcpu_set_reg() works (Gunyah: vCPU 0 before start) */
	VCPU_CAP_GET_REGS = 17,       /**< vcpu_get_reg() works */
	VCPU_CAP_HYPERCALLS = 18,     /**< value: VCPU_HYPERCALLS_*; KVM arm64: VM-level query */
	VCPU_CAP_CREATE_POWER_OFF = 19, /**< vcpu_create() takes VCPU_CREATE_POWER_OFF */
	VCPU_CAP_IO_RESPONSES = 20,   /**< value: bit n set: enum vcpu_io_response n works */
	VCPU_CAP_SYSTEM_EVENTS = 21,  /**< value: VCPU_EVENTS_*: what arrives as a system event */
	VCPU_CAP_DIRTY_LOG = 22,      /**< vcpu_vm_get_dirty_log() works (VCPU_MEM_LOG_DIRTY) */
	VCPU_CAP_STATE = 23,          /**< vcpu_get_state(), vcpu_vm_snapshot() work (<vcpu/state.h>) */
	/* 1.1: vCPU features, for the VCPU_CREATE_ARM64_* flags (KVM arm64; 0 elsewhere). */
	VCPU_CAP_ARM_SVE = 24,        /**< arm64: VCPU_CREATE_ARM64_SVE (KVM_CAP_ARM_SVE) */
	VCPU_CAP_ARM_PTRAUTH = 25,    /**< arm64: VCPU_CREATE_ARM64_PTRAUTH (address and generic) */
	VCPU_CAP_ARM_PMU = 26,        /**< arm64: VCPU_CREATE_ARM64_PMU (KVM_CAP_ARM_PMU_V3) */
};

/** VCPU_CAP_HYPERCALLS values: how hypercalls reach the VMM's handler. */
#define VCPU_HYPERCALLS_NONE 0       /**< never: the driver has no hypercall exits */
#define VCPU_HYPERCALLS_ON_REQUEST 1 /**< the ranges given to vcpu_vm_forward_hypercalls() */
#define VCPU_HYPERCALLS_ALL 2        /**< every one the driver does not answer (no request) */

/** VCPU_CAP_SYSTEM_EVENTS bits: guest requests that arrive as VCPU_EXIT_SYSTEM_EVENT. */
#define VCPU_EVENTS_PSCI (1u << 0)     /**< arm64 PSCI SYSTEM_OFF, SYSTEM_RESET(2), crashes */
#define VCPU_EVENTS_X86_CF9 (1u << 1)  /**< x86 writes of the reset control port 0xCF9 */
#define VCPU_EVENTS_X86_PM1A (1u << 2) /**< x86 ACPI PM1a sleep writes (x86_pm1a_cnt_port) */

/**
 * vcpu_hv_check() - ask the driver for a capability.
 * @value: receives 0 when absent, else 1 or the capability's value.
 * Return: 0; -EINVAL for an unknown @cap or NULL arguments; -EOPNOTSUPP when
 * the capability cannot be asked at this level (VCPU_CAP_ARM_SMCCC_FILTER:
 * use vcpu_vm_check()); or the driver's errno.
 */
VCPU_API int vcpu_hv_check(struct vcpu_hv *hv, enum vcpu_cap cap, uint64_t *value);

/* ------------------------------------------------------------------------ */
/* VMs and guest memory                                                       */

/**
 * VM creation options; NULL means all defaults.  Reserved fields must be 0.
 * A backend rejects (-EINVAL) a field it has no use for when it is non-zero,
 * rather than ignoring the caller's intent.
 */
struct vcpu_vm_config {
	uint32_t ipa_bits;      /**< arm64: guest-physical address width, 0 = driver default (40) */
	uint32_t flags;         /**< VCPU_VM_* */
	uint64_t cpu_affinity;  /**< ACRN: physical CPUs, one vCPU each; 0 = the driver's choice */
	uint32_t x86_pm1a_cnt_port; /**< ACRN: the VMM's ACPI PM1a control port (0 = none):
				     *   sleep requests written there become system events */
	uint32_t reserved32;
	char name[16];          /**< ACRN: the VM's name (NUL-padded); "" = a generated one */
	uint64_t reserved[2];
};

/** arm64 KVM: report PSCI SYSTEM_SUSPEND as VCPU_SYSTEM_EVENT_SUSPEND. */
#define VCPU_VM_SYSTEM_SUSPEND (1u << 0)
/**
 * Hypercall arguments and results on demand (1.1; every backend): where
 * each argument costs a driver call (arm64 KVM reads x1..x7 one
 * KVM_GET_ONE_REG at a time) none is read before the handler, which asks
 * for the ones it needs with vcpu_hypercall_arg(); and only the results the
 * handler counts in vcpu_hypercall.nret are written back (see struct
 * vcpu_hypercall).  Without it, all arguments are read before every
 * hypercall handler, as in 1.0.
 */
#define VCPU_VM_LAZY_HYPERCALL_ARGS (1u << 1)

/**
 * vcpu_vm_create() - create a VM.
 * Return: 0; -EINVAL for a bad config (reserved bits, unsupported ipa_bits);
 * or the driver's errno.
 */
VCPU_API int vcpu_vm_create(struct vcpu_hv *hv, const struct vcpu_vm_config *cfg,
			    struct vcpu_vm **out);

/**
 * vcpu_vm_destroy() - destroy a VM and unmap nothing of the VMM's memory.
 * @vm: pointer to the handle; set to NULL on success, so a second call is a
 *      clean -EINVAL rather than a use after free.
 * Return: 0; -EBUSY while vCPUs of this VM exist; -EINVAL for NULL; the
 * driver's errno when it refused to destroy the VM (ACRN): the VM and the
 * handle are kept, and a later call tries again.
 */
VCPU_API int vcpu_vm_destroy(struct vcpu_vm **vm);

/** vcpu_vm_last_error() - detail of the last failure on @vm ("" if none). */
VCPU_API const char *vcpu_vm_last_error(const struct vcpu_vm *vm);

/** vcpu_vm_check() - vcpu_hv_check() asked of this VM (answers may differ per VM). */
VCPU_API int vcpu_vm_check(struct vcpu_vm *vm, enum vcpu_cap cap, uint64_t *value);

#define VCPU_MEM_READONLY  (1u << 0) /**< guest writes exit as MMIO writes */
#define VCPU_MEM_LOG_DIRTY (1u << 1) /**< track dirty pages */
/** vcpu_vm_alloc() only: shared (not private) anonymous memory, for RAM another
 *  process must see (vhost-user) or a child must keep sharing after fork(). */
#define VCPU_MEM_SHARED    (1u << 2)

/**
 * vcpu_vm_map() - make host memory guest RAM.
 * @gpa: guest-physical address, page aligned.
 * @host: host virtual address, page aligned; the VMM keeps it mapped until
 *        vcpu_vm_unmap() or VM destruction.
 * @size: bytes, a non-zero multiple of the page size.
 * @flags: VCPU_MEM_*.
 * Return: 0; -EINVAL for misalignment, zero size, a wrapping range or unknown
 * flags; -EEXIST when [gpa, gpa+size) overlaps a mapped region; -ENOSPC when
 * the driver has no free slot; or the driver's errno.
 */
VCPU_API int vcpu_vm_map(struct vcpu_vm *vm, uint64_t gpa, void *host, uint64_t size,
			 uint32_t flags);

/**
 * vcpu_vm_unmap() - remove the region that starts at @gpa with exactly @size.
 * Return: 0; -ENOENT when no such region exists; or the driver's errno.
 */
VCPU_API int vcpu_vm_unmap(struct vcpu_vm *vm, uint64_t gpa, uint64_t size);

/**
 * vcpu_vm_alloc() - allocate guest RAM the way the backend requires and map
 * it at @gpa.  KVM, GenieZone, ACRN and Gunyah v8 get private anonymous
 * memory (shared with VCPU_MEM_SHARED), 2 MiB aligned and advised for
 * transparent huge pages when @size is at least 2 MiB, passed to
 * vcpu_vm_map(); Gunyah v17 gets a guest_memfd (GUNYAH_CREATE_GUEST_MEM)
 * bound with GUNYAH_VM_MAP_MEM.  A portable VMM allocates all its RAM this way.
 * @gpa, @size, @flags: as for vcpu_vm_map(), plus VCPU_MEM_SHARED.
 * @host: receives the host address of the (zeroed) memory.  It stays valid
 *        until vcpu_vm_unmap() of the same range or VM destruction, which
 *        free it.
 * Return: 0; the errors of vcpu_vm_map(); -ENOMEM.
 */
VCPU_API int vcpu_vm_alloc(struct vcpu_vm *vm, uint64_t gpa, uint64_t size, uint32_t flags,
			   void **host);

/**
 * vcpu_vm_get_dirty_log() - the pages of the region mapped at @gpa (with
 * VCPU_MEM_LOG_DIRTY) that the guest wrote since it was mapped or since the
 * last call, and start over.  Bit i of @bitmap (bit i % 64 of word i / 64)
 * is the region's page i, in pages of the host's page size
 * (sysconf(_SC_PAGESIZE)); @words must hold them all: at least
 * (size / page size + 63) / 64.  What the VMM wrote itself through its
 * mapping is not logged.  Cost: one driver call that copies and clears
 * the bitmap; the driver write-protects the logged pages again, so the
 * guest's next write to each costs one fault.  KVM: KVM_GET_DIRTY_LOG.
 * Return: 0; -EINVAL for NULL, no region starting at @gpa, one mapped
 * without VCPU_MEM_LOG_DIRTY, or a bitmap too small; -EOPNOTSUPP where the
 * driver keeps no dirty log (VCPU_CAP_DIRTY_LOG 0); or the driver's errno.
 * (1.1)
 */
VCPU_API int vcpu_vm_get_dirty_log(struct vcpu_vm *vm, uint64_t gpa, uint64_t *bitmap,
				   uint64_t words);

/**
 * vcpu_vm_set_dtb() - tell the hypervisor where the guest's device tree lies
 * (Gunyah GUNYAH_VM_SET_DTB_CONFIG, GenieZone GZVM_SET_DTB_CONFIG); the range
 * must lie in guest RAM.  Gunyah's resource manager edits the tree in place,
 * so leave spare room (a page) in @size.
 * Return: 0; -EINVAL for an empty or wrapping range; -EOPNOTSUPP on KVM and
 * ACRN (the VMM points the boot registers at the tree itself); or the
 * driver's errno.
 */
VCPU_API int vcpu_vm_set_dtb(struct vcpu_vm *vm, uint64_t gpa, uint64_t size);

/**
 * vcpu_vm_start() - start the guest.  Gunyah (GUNYAH_VM_START) and ACRN
 * (ACRN_IOCTL_START_VM) need it once all vCPUs exist and their boot
 * registers are set; on KVM and GenieZone it does nothing and returns 0 (the
 * first vcpu_run() starts each vCPU).  A portable VMM calls it after setup.
 * Return: 0 (also when already started); or the driver's errno.
 */
VCPU_API int vcpu_vm_start(struct vcpu_vm *vm);

/**
 * vcpu_vm_pause() - stop every vCPU of the VM where the hypervisor schedules
 * them itself (ACRN_IOCTL_PAUSE_VM).
 * Return: 0; -EOPNOTSUPP elsewhere (stop the vCPU threads with vcpu_kick());
 * or the driver's errno.
 */
VCPU_API int vcpu_vm_pause(struct vcpu_vm *vm);

/**
 * vcpu_vm_reset() - reset a paused VM in place so it can be given new boot
 * registers and started again (ACRN: pending I/O requests are completed,
 * then ACRN_IOCTL_RESET_VM).
 * Return: 0; -EOPNOTSUPP where the ABI has no reset (KVM: re-initialise the
 * vCPUs; Gunyah, GenieZone: destroy and re-create the VM); or the driver's
 * errno.
 */
VCPU_API int vcpu_vm_reset(struct vcpu_vm *vm);

/** An eventfd that injects an interrupt when signalled (vcpu_vm_irqfd()). */
struct vcpu_irqfd {
	int32_t fd;          /**< the eventfd */
	uint32_t flags;      /**< VCPU_IRQFD_* */
	uint32_t irq;        /**< KVM x86: GSI; arm64: SPI INTID; Gunyah: doorbell label */
	/** With VCPU_IRQFD_LEVEL on KVM and GenieZone: the resample eventfd.
	 *  Read only with LEVEL, so a zeroed struct does not mean fd 0. */
	int32_t resample_fd;
	uint64_t msi_addr;   /**< VCPU_IRQFD_MSI (ACRN): the MSI to inject */
	uint64_t msi_data;
	uint64_t reserved[2];
};

#define VCPU_IRQFD_DEASSIGN (1u << 0) /**< remove the binding made with the same fd */
#define VCPU_IRQFD_LEVEL    (1u << 1) /**< level-triggered (KVM: with resample_fd; Gunyah) */
#define VCPU_IRQFD_MSI      (1u << 2) /**< inject msi_addr/msi_data instead of irq */

/**
 * vcpu_vm_irqfd() - bind (or unbind) an eventfd to a guest interrupt, so a
 * device thread injects it with a write() and no libvcpu call.
 * Return: 0; -EINVAL for unknown flags, reserved fields or a combination the
 * backend cannot express; -EOPNOTSUPP where the ABI has no irqfd; or the
 * driver's errno.
 */
VCPU_API int vcpu_vm_irqfd(struct vcpu_vm *vm, const struct vcpu_irqfd *irqfd);

/** An eventfd signalled by guest writes to an address (vcpu_vm_ioeventfd()). */
struct vcpu_ioeventfd {
	int32_t fd;          /**< the eventfd */
	uint32_t flags;      /**< VCPU_IOEVENTFD_* */
	uint64_t addr;       /**< MMIO guest-physical address, or port */
	uint32_t len;        /**< 0 (any width, not with DATAMATCH), 1, 2, 4 or 8 */
	uint32_t reserved32;
	uint64_t datamatch;  /**< VCPU_IOEVENTFD_DATAMATCH: only this value signals */
	uint64_t reserved[2];
};

#define VCPU_IOEVENTFD_DEASSIGN  (1u << 0)
#define VCPU_IOEVENTFD_PIO       (1u << 1) /**< x86 port I/O rather than MMIO */
#define VCPU_IOEVENTFD_DATAMATCH (1u << 2)

/**
 * vcpu_vm_ioeventfd() - let guest writes to @ioeventfd->addr signal an
 * eventfd inside the driver instead of exiting to the VMM.
 * Return: 0; -EINVAL for bad flags, length or reserved fields; -EOPNOTSUPP
 * where the ABI has no ioeventfd; or the driver's errno.
 */
VCPU_API int vcpu_vm_ioeventfd(struct vcpu_vm *vm, const struct vcpu_ioeventfd *ioeventfd);

/**
 * vcpu_vm_signal_msi() - inject a message-signalled interrupt (ACRN
 * ACRN_IOCTL_INJECT_MSI; KVM KVM_SIGNAL_MSI).
 * Return: 0; -EOPNOTSUPP where the ABI has none; or the driver's errno.
 */
VCPU_API int vcpu_vm_signal_msi(struct vcpu_vm *vm, uint64_t addr, uint64_t data);

/**
 * vcpu_vm_set_irq_line() - drive an interrupt line of the in-kernel irqchip.
 * @irq: x86_64: a GSI (0..23, see vcpu_x86_create_irqchip()); arm64: a
 *       shared peripheral interrupt's INTID (32..1019).
 * @level: 1 asserted, 0 deasserted.
 * Return: 0; -EINVAL for an irq out of range; -ENXIO when the VM has no
 * in-kernel irqchip; or the driver's errno.
 */
VCPU_API int vcpu_vm_set_irq_line(struct vcpu_vm *vm, uint32_t irq, int level);

/**
 * vcpu_vm_forward_hypercalls() - have the guest's hypercalls numbered
 * [@base, @base + @count) exit to the VMM as VCPU_EXIT_HYPERCALL.
 *
 * arm64 (KVM: the SMCCC filter, action FWD_TO_USER, Linux 6.4+): SMCCC
 * function ids, whether the guest uses HVC or SMC.  PSCI ids may be
 * forwarded too; the Arm architecture call ranges (0x80000000-0x8000ffff,
 * 0xc0000000-0xc000ffff) may not; only before any vCPU has run.
 * x86_64 KVM answers a guest's VMCALL/VMMCALL itself (its own hypercalls;
 * -KVM_ENOSYS, -1000, in RAX for a number it does not know) and forwards
 * only what KVM_CAP_EXIT_HYPERCALL allows: KVM_HC_MAP_GPA_RANGE (12), the
 * page-state changes of confidential guests (Linux 5.15+).  Without this
 * call no hypercall ever exits on x86_64.
 * GenieZone exits on every hypercall its driver does not handle; Gunyah
 * and ACRN have no hypercall exits.
 * Return: 0; -EINVAL for an empty or wrapping range; -EEXIST for a range that
 * overlaps one already set or a reserved one; -EBUSY (arm64) once a vCPU has
 * run; -EOPNOTSUPP when the driver cannot forward these numbers (arm64 before
 * Linux 6.4; on x86 every number but the ones KVM_CAP_EXIT_HYPERCALL names;
 * other backends).
 */
VCPU_API int vcpu_vm_forward_hypercalls(struct vcpu_vm *vm, uint32_t base, uint32_t count);

/* ------------------------------------------------------------------------ */
/* vCPUs and registers                                                        */

/** arm64: create the vCPU powered off; it starts when the guest calls PSCI CPU_ON. */
#define VCPU_CREATE_POWER_OFF (1u << 0)
/*
 * arm64 CPU features a guest sees only when the VMM asks for them (1.1;
 * KVM only: VCPU_CAP_ARM_SVE, _PTRAUTH, _PMU say whether the driver has
 * them).  KVM wants one feature set on every vCPU of a VM: give each vCPU
 * the same ones (POWER_OFF may differ).
 */
/** SVE with the driver's default vector lengths (the vCPU is finalized at creation). */
#define VCPU_CREATE_ARM64_SVE (1u << 1)
/** Pointer authentication, address and generic keys both (KVM takes both or neither). */
#define VCPU_CREATE_ARM64_PTRAUTH (1u << 2)
/**
 * The PMUv3, interrupting on PPI 23 (the INTID Linux device trees use; the
 * VMM describes it in its "arm,armv8-pmuv3" node).  Needs the in-kernel
 * GICv3: vcpu_vm_create_gic_v3() initialises the PMU of each such vCPU,
 * and a vCPU created with this flag cannot run before that.
 */
#define VCPU_CREATE_ARM64_PMU (1u << 3)

/**
 * vcpu_create() - create vCPU @id and map (or allocate) its run structure.
 * On arm64 KVM the vCPU is initialised for the preferred target with PSCI
 * 0.2 and the VCPU_CREATE_ARM64_* features asked for, each asked of the
 * driver first; on x86_64 KVM it gets the driver's supported CPUID, with
 * its own APIC id in leaves 1, 0xB and 0x1F and the hypervisor bit set
 * (vcpu_x86_set_cpuid() replaces it).
 * Return: 0; -EINVAL for unknown @flags, POWER_OFF or a VCPU_CREATE_ARM64_*
 * flag on a non-arm64 VM, or an id the driver rejects; -EOPNOTSUPP for
 * POWER_OFF or a VCPU_CREATE_ARM64_* flag on a backend that cannot
 * (Gunyah, GenieZone) and for a feature the driver lacks; -EEXIST for an
 * id already in use; or the driver's errno (KVM: EINVAL for a feature set
 * other than the VM's other vCPUs have).
 */
VCPU_API int vcpu_create(struct vcpu_vm *vm, uint32_t id, uint32_t flags, struct vcpu **out);

/**
 * vcpu_destroy() - unmap the run structure and close the vCPU.
 * @cpu: pointer to the handle; set to NULL on success.
 * Return: 0; -EBUSY while a thread is inside vcpu_run(); -EINVAL for NULL.
 */
VCPU_API int vcpu_destroy(struct vcpu **cpu);

/** vcpu_id() - the id the vCPU was created with. */
VCPU_API uint32_t vcpu_id(const struct vcpu *cpu);

/** vcpu_last_error() - detail of the last failure on @cpu ("" if none). */
VCPU_API const char *vcpu_last_error(const struct vcpu *cpu);

/*
 * Portable register ids (uint64_t).  Each architecture's ids only work on a
 * vCPU of that architecture (else -EINVAL).
 */
#define VCPU_REG_ARM64_X(n)   ((uint64_t)0x1000 + (uint64_t)(n)) /**< x0..x30 */
#define VCPU_REG_ARM64_SP     ((uint64_t)0x1020) /**< SP_EL0 */
#define VCPU_REG_ARM64_PC     ((uint64_t)0x1021)
#define VCPU_REG_ARM64_PSTATE ((uint64_t)0x1022)
#define VCPU_REG_ARM64_SP_EL1 ((uint64_t)0x1023)
#define VCPU_REG_ARM64_ELR_EL1 ((uint64_t)0x1024)
/** A raw AArch64 system register, by its MRS/MSR encoding. */
#define VCPU_REG_ARM64_SYSREG(op0, op1, crn, crm, op2)                                   \
	((uint64_t)0x20000 | ((uint64_t)((op0) & 3) << 14) | ((uint64_t)((op1) & 7) << 11) | \
	 ((uint64_t)((crn) & 15) << 7) | ((uint64_t)((crm) & 15) << 3) | (uint64_t)((op2) & 7))
#define VCPU_REG_ARM64_MPIDR_EL1 VCPU_REG_ARM64_SYSREG(3, 0, 0, 0, 5)

enum vcpu_x86_reg {
	VCPU_REG_X86_RAX = 0x100, VCPU_REG_X86_RBX, VCPU_REG_X86_RCX, VCPU_REG_X86_RDX,
	VCPU_REG_X86_RSI, VCPU_REG_X86_RDI, VCPU_REG_X86_RSP, VCPU_REG_X86_RBP,
	VCPU_REG_X86_R8, VCPU_REG_X86_R9, VCPU_REG_X86_R10, VCPU_REG_X86_R11,
	VCPU_REG_X86_R12, VCPU_REG_X86_R13, VCPU_REG_X86_R14, VCPU_REG_X86_R15,
	VCPU_REG_X86_RIP, VCPU_REG_X86_RFLAGS,
	VCPU_REG_X86_CR0 = 0x140, VCPU_REG_X86_CR2, VCPU_REG_X86_CR3, VCPU_REG_X86_CR4,
	VCPU_REG_X86_CR8, VCPU_REG_X86_EFER, VCPU_REG_X86_APIC_BASE,
};

/**
 * vcpu_get_reg() / vcpu_set_reg() - read or write one register.
 * Return: 0; -EINVAL for an id of another architecture or unknown to
 * libvcpu; -ENOENT when the driver does not know the register; -EOPNOTSUPP
 * where the backend's ABI offers no such access; or the driver's errno.
 */
VCPU_API int vcpu_get_reg(struct vcpu *cpu, uint64_t reg, uint64_t *value);
VCPU_API int vcpu_set_reg(struct vcpu *cpu, uint64_t reg, uint64_t value);

/** x86_64 segment and descriptor-table registers. */
enum vcpu_x86_seg {
	VCPU_X86_CS = 0, VCPU_X86_DS, VCPU_X86_ES, VCPU_X86_FS, VCPU_X86_GS, VCPU_X86_SS,
	VCPU_X86_TR, VCPU_X86_LDT,
	VCPU_X86_GDT, /**< only base and limit are used */
	VCPU_X86_IDT, /**< only base and limit are used */
};

struct vcpu_x86_segment {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint8_t type, present, dpl, db, s, l, g, avl, unusable, reserved;
};

/** vcpu_x86_get_segment() / vcpu_x86_set_segment(): -EINVAL on a non-x86 vCPU. */
VCPU_API int vcpu_x86_get_segment(struct vcpu *cpu, enum vcpu_x86_seg seg,
				  struct vcpu_x86_segment *out);
VCPU_API int vcpu_x86_set_segment(struct vcpu *cpu, enum vcpu_x86_seg seg,
				  const struct vcpu_x86_segment *in);

/*
 * Batch register access (LIBVCPU_1.1).
 */

/** The id of an x86_64 segment or descriptor-table register in a batch. */
#define VCPU_REG_X86_SEG(seg) ((uint64_t)0x180 + (uint64_t)(seg)) /**< seg: enum vcpu_x86_seg */

/** The most entries one vcpu_get_regs() / vcpu_set_regs() call takes. */
#define VCPU_REGS_MAX 4096u

/** One register of a batch. */
struct vcpu_reg {
	uint64_t id;                         /**< VCPU_REG_* */
	union {
		uint64_t value;              /**< every id but VCPU_REG_X86_SEG() */
		struct vcpu_x86_segment seg; /**< VCPU_REG_X86_SEG() ids */
	};
};

/**
 * vcpu_get_regs() / vcpu_set_regs() - read or write @n registers in one call.
 *
 * The whole batch is checked before the driver is asked anything: every id
 * must be one of the vCPU's architecture, no id may appear twice in a set,
 * and segment values must be representable; otherwise nothing is read or
 * written and the detail names the first bad entry.  The driver is then
 * called as few times as its ABI allows: x86_64 KVM reads or writes each of
 * kvm_regs and kvm_sregs at most once, so control registers, EFER and the
 * segments a mode switch needs reach KVM_SET_SREGS together (one register
 * at a time, the intermediate states may be refused, e.g. CR0.PG without
 * EFER.LME by a driver that pages only in long mode); the new kvm_sregs is
 * written before kvm_regs, and if kvm_regs is then refused the old kvm_sregs
 * is put back.  ACRN sends its register file once.  Where the ABI sets
 * registers one at a time (arm64 ONE_REG on KVM and GenieZone, Gunyah's
 * boot context), entries are applied in order, and if the driver refuses
 * entry i, entries before it have been applied; the detail names i.
 * @n: 0 to VCPU_REGS_MAX; 0 does nothing and returns 0.
 * Return: 0; -EINVAL for NULL @cpu, NULL @regs with @n > 0, @n above
 * VCPU_REGS_MAX, an id of another architecture or unknown to libvcpu, a
 * duplicate id (set), or a descriptor-table limit above 0xffff (set); the
 * errors of vcpu_get_reg() / vcpu_set_reg() and of the segment calls.
 */
VCPU_API int vcpu_get_regs(struct vcpu *cpu, struct vcpu_reg *regs, uint32_t n);
VCPU_API int vcpu_set_regs(struct vcpu *cpu, const struct vcpu_reg *regs, uint32_t n);

/** vcpu_x86_create_irqchip() flag: also create the in-kernel i8254 PIT. */
#define VCPU_X86_IRQCHIP_PIT (1u << 0)

/**
 * vcpu_x86_create_irqchip() - give an x86_64 VM the in-kernel interrupt
 * controllers of a PC: two 8259 PICs (ports 0x20, 0xa0, ELCR 0x4d0), an
 * IOAPIC (MMIO 0xfec00000) and a local APIC per vCPU (KVM_CREATE_IRQCHIP),
 * with GSIs 0-15 routed to the PIC and IOAPIC pins and 16-23 to the IOAPIC.
 * vcpu_vm_set_irq_line(), vcpu_vm_irqfd() and vcpu_vm_signal_msi() need it
 * on x86, and with it HLT no longer exits (the vCPU waits in the kernel for
 * an interrupt).  With VCPU_X86_IRQCHIP_PIT also the 8254 timer on ports
 * 0x40-0x43, interrupting on GSI 0, and the port 0x61 stub Linux uses to
 * calibrate it (KVM_CREATE_PIT2, KVM_PIT_SPEAKER_DUMMY).
 * Call it before the first vcpu_create() of the VM.  KVM cannot remove an
 * irqchip: if the PIT fails after the irqchip was made, calling again with
 * the flag creates only the PIT.
 * Return: 0; -EINVAL for NULL, a VM that is not x86_64, unknown @flags, or
 * vCPUs already created; -EEXIST if the VM already has them; -EOPNOTSUPP on
 * a backend without the call (ACRN: the hypervisor's vPIC, vIOAPIC and
 * vLAPIC always exist, and a PIT is the VMM's to emulate); or the driver's
 * errno.
 */
VCPU_API int vcpu_x86_create_irqchip(struct vcpu_vm *vm, uint32_t flags);

/*
 * x86_64 CPUID (LIBVCPU_1.1).
 */

/** vcpu_x86_cpuid_entry.flags: @index selects a subleaf of @function. */
#define VCPU_X86_CPUID_SIGNIFICANT_INDEX (1u << 0)

/** One CPUID leaf (KVM's struct kvm_cpuid_entry2 layout, 40 bytes). */
struct vcpu_x86_cpuid_entry {
	uint32_t function;   /**< EAX on input: the leaf */
	uint32_t index;      /**< ECX on input: the subleaf, with SIGNIFICANT_INDEX */
	uint32_t flags;      /**< VCPU_X86_CPUID_SIGNIFICANT_INDEX and the driver's other bits */
	uint32_t eax, ebx, ecx, edx;
	uint32_t padding[3]; /**< 0 */
};

/**
 * vcpu_x86_get_supported_cpuid() - the CPUID leaves the driver can give a
 * vCPU, as it describes them (KVM_GET_SUPPORTED_CPUID: the host's, APIC
 * ids 0, no hypervisor bit).
 * @entries: room for *@n entries (may be NULL when *@n is 0).
 * @n: in, the room; out, how many leaves the driver has.
 * Return: 0 with *@n entries filled; -ENOSPC when they do not fit: *@n
 * then holds the count and nothing is written (ask with *@n = 0 to learn
 * it); -EINVAL for NULL arguments or a handle that is not x86_64;
 * -EOPNOTSUPP where the backend has no such query (ACRN); -EPROTO for an
 * inconsistent answer; or the driver's errno.
 */
VCPU_API int vcpu_x86_get_supported_cpuid(struct vcpu_hv *hv, struct vcpu_x86_cpuid_entry *entries,
					  uint32_t *n);

/**
 * vcpu_x86_set_cpuid() - give the vCPU exactly these @n CPUID leaves
 * (KVM_SET_CPUID2), in place of the table vcpu_create() set.  Nothing is
 * added: the VMM then owns the APIC ids of leaves 1 (EBX[31:24]), 0xB and
 * 0x1F (EDX), which must say the vCPU's id, and the hypervisor bit
 * (leaf 1 ECX[31]).  Before the vCPU's first vcpu_run(): KVM (Linux 5.16+)
 * then takes only the table the vCPU already has.
 * Return: 0; -EINVAL for NULL @cpu, NULL @entries with @n > 0, non-zero
 * padding, a vCPU that is not x86_64, or (the driver) a different table
 * after the first run; -EOPNOTSUPP where the backend cannot (ACRN); -E2BIG
 * (the driver) for more leaves than it takes; or the driver's errno.
 */
VCPU_API int vcpu_x86_set_cpuid(struct vcpu *cpu, const struct vcpu_x86_cpuid_entry *entries,
				uint32_t n);

/* ------------------------------------------------------------------------ */
/* Exits and the run loop                                                     */

/** What a handler tells the backend to do with a trapped access. */
enum vcpu_io_response {
	VCPU_IO_HANDLED = 0, /**< emulated: reads return io->data */
	VCPU_IO_FAULT = 1,   /**< inject an abort into the guest (where the ABI can) */
	VCPU_IO_RETRY = 2,   /**< re-execute the access (memory was added meanwhile) */
};

/** An MMIO or port-I/O access.  data[] is little-endian, len bytes valid. */
struct vcpu_io {
	uint64_t addr;      /**< guest-physical address, or port number */
	uint32_t len;       /**< MMIO: 1 to 8 (arm64, ACRN: 1, 2, 4 or 8; x86 KVM
			     *   may split an access into other lengths); port
			     *   I/O: 1, 2 or 4.  addr + len never wraps. */
	uint8_t is_write;   /**< 1: data holds the value written */
	uint8_t reserved[3];
	uint8_t data[8];    /**< read: the handler stores the value here */
	uint32_t response;  /**< enum vcpu_io_response, set by the handler */
	uint32_t vcpu_id;   /**< the vCPU that made the access */
};

/**
 * PCI configuration access (VCPU_EXIT_PCI_CONFIG, from ACRN): io->addr holds
 * the ECAM-style offset of the register, so a VMM with an ECAM window can
 * route it through the same code.
 */
#define VCPU_PCI_CFG_ADDR(bus, dev, fn, reg)                                              \
	(((uint64_t)((bus) & 0xff) << 20) | ((uint64_t)((dev) & 0x1f) << 15) |            \
	 ((uint64_t)((fn) & 7) << 12) | ((uint64_t)(reg) & 0xfff))

/**
 * A guest access to memory the driver could not back (KVM MEMORY_FAULT,
 * Gunyah PAGE_FAULT, GenieZone EXCEPTION page fault).  The handler may add
 * memory and answer VCPU_IO_RETRY; VCPU_IO_FAULT (the default) stops
 * vcpu_run() with -EFAULT where the ABI cannot reflect an abort.
 */
struct vcpu_memory_fault {
	uint64_t gpa;
	uint64_t size;      /**< 0 when the driver does not say */
	uint64_t flags;     /**< the backend's own flags (KVM: KVM_MEMORY_EXIT_FLAG_*) */
	int32_t error;      /**< Gunyah: the kernel's own -errno attempt, else 0 */
	uint32_t response;  /**< enum vcpu_io_response: RETRY or FAULT */
};

/** Hypercall conduit and ABI flags. */
#define VCPU_HYPERCALL_SMC (1u << 0) /**< arm64: SMC (else HVC) */
#define VCPU_HYPERCALL_LONGMODE (1u << 1) /**< x86_64: made in 64-bit mode */

/**
 * A hypercall.  arm64 (SMCCC): nr = function id (w0), args[0..6] = x1..x7,
 * ret[0..nret-1] are written to x0..x(nret-1); ret[0] starts as SMCCC
 * NOT_SUPPORTED (-1), ret[1..3] as x1..x3 and nret as 4, so a handler only
 * sets what it returns.  With VCPU_VM_LAZY_HYPERCALL_ARGS, args[] hold only
 * what vcpu_hypercall_arg() has read (all of them where reading is free:
 * GenieZone), ret[1..3] start as 0 and nret as 1: a handler that returns
 * more than x0 sets nret (at most 4; more fails vcpu_run() with -EINVAL),
 * and x1..x3 past nret keep the guest's values (SMCCC 1.1+ lets unused
 * result registers be preserved).
 * x86_64 KVM: only the numbers enabled with vcpu_vm_forward_hypercalls()
 * exit (KVM_HC_MAP_GPA_RANGE: nr 12, args[0..2] = GPA, pages, attributes);
 * ret[0] goes to RAX (32 bits of it outside long mode); nret is not used.
 */
struct vcpu_hypercall {
	uint64_t nr;
	uint64_t args[8];
	uint32_t nargs;     /**< how many args[] the call has */
	uint32_t flags;     /**< VCPU_HYPERCALL_* */
	uint64_t ret[4];
	uint32_t nret;      /**< arm64: how many of ret[] are written back (1.1) */
	uint32_t reserved;
};

enum vcpu_system_event_type {
	VCPU_SYSTEM_EVENT_SHUTDOWN = 1,
	VCPU_SYSTEM_EVENT_RESET = 2,
	VCPU_SYSTEM_EVENT_CRASH = 3,
	VCPU_SYSTEM_EVENT_WAKEUP = 4,
	VCPU_SYSTEM_EVENT_SUSPEND = 5,
};

/** arm64 KVM: data[0] bit 0 on RESET means PSCI SYSTEM_RESET2. */
#define VCPU_SYSTEM_EVENT_RESET2 (1u << 0)

struct vcpu_system_event {
	uint32_t type;      /**< enum vcpu_system_event_type */
	uint32_t ndata;     /**< valid data[] words (validated: at most 16) */
	uint64_t data[16];
	uint32_t raw_type;  /**< the backend's own event code */
	uint32_t reserved;
};

enum vcpu_exit_kind {
	VCPU_EXIT_NONE = 0,
	VCPU_EXIT_MMIO = 1,
	VCPU_EXIT_PIO = 2,
	VCPU_EXIT_HYPERCALL = 3,
	VCPU_EXIT_SYSTEM_EVENT = 4,
	VCPU_EXIT_MEMORY_FAULT = 5,   /**< fault.gpa/size: the driver could not back guest memory */
	VCPU_EXIT_INTERNAL_ERROR = 6, /**< internal.code, data */
	VCPU_EXIT_FAIL_ENTRY = 7,     /**< internal.code = hardware reason, data[0] = host cpu */
	VCPU_EXIT_DEBUG = 8,
	VCPU_EXIT_HALT = 9,           /**< x86 HLT without an in-kernel LAPIC */
	VCPU_EXIT_SHUTDOWN = 10,      /**< x86 triple fault */
	VCPU_EXIT_OTHER = 11,         /**< known to the backend, no portable meaning: see raw */
	VCPU_EXIT_UNKNOWN = 12,       /**< the driver itself could not classify it */
	VCPU_EXIT_PCI_CONFIG = 13,    /**< io: addr = VCPU_PCI_CFG_ADDR(), len 1, 2 or 4 */
	VCPU_EXIT_EXCEPTION = 14,     /**< internal.code = exception, data[0] = error code */
};

/** One normalized exit.  raw_reason is always the backend's own code. */
struct vcpu_exit {
	uint32_t kind;       /**< enum vcpu_exit_kind */
	uint32_t raw_reason; /**< e.g. kvm_run.exit_reason */
	uint32_t vcpu_id;
	uint32_t reserved;
	union {
		struct vcpu_io io;
		struct vcpu_hypercall hypercall;
		struct vcpu_system_event system_event;
		struct vcpu_memory_fault fault;
		struct {
			uint64_t code;   /**< suberror / hardware reason */
			uint32_t ndata;  /**< valid data[] words (validated: at most 16) */
			uint32_t reserved;
			uint64_t data[16];
		} internal;
		uint8_t raw[256];     /**< the backend's exit bytes, for OTHER/UNKNOWN/DEBUG */
	} u;
};

/*
 * Handler return values: VCPU_CONTINUE (0) resumes the guest; a positive value
 * stops vcpu_run(), which returns it (the VMM's own reason code); a negative
 * errno stops vcpu_run(), which returns it as an error.
 */
#define VCPU_CONTINUE 0
#define VCPU_STOP 1 /**< a ready-made stop code */

/**
 * The VMM's exit handlers.  Any may be NULL: that exit then goes to .other,
 * and if .other is NULL too vcpu_run() returns -ENOSYS with the exit kept in
 * vcpu_last_exit() (the vCPU stays usable: a later vcpu_run() resumes it,
 * completing an unhandled read with zeros).
 */
struct vcpu_handlers {
	int (*mmio)(void *ctx, struct vcpu *cpu, struct vcpu_io *io);
	int (*pio)(void *ctx, struct vcpu *cpu, struct vcpu_io *io);
	int (*hypercall)(void *ctx, struct vcpu *cpu, struct vcpu_hypercall *hc);
	int (*system_event)(void *ctx, struct vcpu *cpu, const struct vcpu_system_event *ev);
	int (*other)(void *ctx, struct vcpu *cpu, const struct vcpu_exit *exit);
	int (*memory_fault)(void *ctx, struct vcpu *cpu, struct vcpu_memory_fault *f);
	int (*pci_config)(void *ctx, struct vcpu *cpu, struct vcpu_io *io);
	/**
	 * Must be NULL.  Room for the handlers of later 1.x releases without
	 * changing the struct's size; vcpu_run() rejects a non-NULL entry
	 * with -EINVAL, so a program built for a later release fails clearly
	 * on an older library instead of losing exits.
	 */
	void (*reserved[9])(void);
};

/**
 * vcpu_run() - run the vCPU, dispatching exits to @h, until one stops it.
 * Return:
 *  - a positive value: a handler returned it to stop the loop;
 *  - -EINTR: vcpu_kick() stopped it (not an error; no detail is recorded).
 *    It means nothing else: a handler that returns -EINTR makes vcpu_run()
 *    fail with -EINVAL instead;
 *  - -ECANCELED: vcpu_vm_stop_all() stopped the VM (not an error either);
 *  - -ENOSYS: an exit with no handler (see vcpu_last_exit());
 *  - -EPROTO: the driver reported an exit code libvcpu does not know, or a
 *    malformed exit (length, size or offset out of range); the raw code is in
 *    vcpu_last_exit()->raw_reason;
 *  - -EIO: the guest cannot continue (internal error, failed entry, triple
 *    fault) and no .other handler took it;
 *  - another negative errno: the run call or a write-back failed, or a
 *    handler returned it.
 * Never aborts.  Does not allocate, and takes no lock shared with other vCPUs
 * (ACRN excepted: there one thread serves the whole VM, see below).
 *
 * ACRN: the hypervisor schedules the vCPUs itself and posts their I/O
 * requests to one page per VM, so ONE thread serves a VM: the thread that
 * calls vcpu_run() on any vCPU handle of it, after vcpu_vm_start().  It
 * handles the requests of every vCPU, one per handler call; the handlers get
 * the handle passed to vcpu_run(), and exit->vcpu_id and io->vcpu_id name
 * the vCPU that made the access.  A second thread's vcpu_run() on the same
 * VM returns -EBUSY.  Guest reset and power-off arrive as port writes (0xCF9;
 * PM1a_CNT at vcpu_vm_config.x86_pm1a_cnt_port) and are reported as system
 * events; the write is completed when serving resumes, or by a
 * vcpu_vm_reset() made in the handler, so the guest stays at it meanwhile.
 * vcpu_kick() on any vCPU handle of the VM stops the serving thread (or the
 * next vcpu_run() on the VM).  ACRN has no immediate-exit flag
 * (VCPU_CAP_IMMEDIATE_EXIT is 0): a kick landing in the few instructions
 * before the thread blocks in the driver is only seen at the next request,
 * so kick again if vcpu_run() has not returned.  Register reads fail with
 * -EOPNOTSUPP (the ABI can only set them).
 */
VCPU_API int vcpu_run(struct vcpu *cpu, const struct vcpu_handlers *h, void *ctx);

/**
 * vcpu_vm_stop_all() - make every vCPU of @vm leave vcpu_run() with
 * -ECANCELED, and every later vcpu_run() on it return -ECANCELED at once,
 * until vcpu_vm_resume_all().  The VM-wide stop a VMM needs to shut down,
 * reset or save a guest: each vCPU's own thread sees it, whether it is in
 * the guest, in a handler (the loop stops after it), or outside vcpu_run().
 * Any thread, a handler of @vm's vCPUs included (not a signal handler: it
 * takes the VM's lock).  (1.1)
 * Return: 0; -EINVAL for NULL.
 */
VCPU_API int vcpu_vm_stop_all(struct vcpu_vm *vm);

/**
 * vcpu_vm_resume_all() - end vcpu_vm_stop_all(): vcpu_run() runs again.
 * The kick the stop left on a vCPU that was not inside vcpu_run() is taken
 * back.  (1.1)  Return: 0; -EINVAL for NULL.
 */
VCPU_API int vcpu_vm_resume_all(struct vcpu_vm *vm);

/**
 * vcpu_hypercall_arg() - argument @i (0-based: x(i+1) on arm64) of the
 * hypercall @cpu stopped at, read from the driver the first time it is
 * asked for in this exit and stored in vcpu_hypercall.args[i] too.  For
 * handlers, mostly with VCPU_VM_LAZY_HYPERCALL_ARGS (without it every
 * argument is already in args[]).  After vcpu_run() returned, only
 * arguments already read are known: the registers hold the results now.
 * Return: 0; -EINVAL for NULL, when the last exit is no hypercall, or @i is
 * not below nargs; -ESTALE for an argument not read before the results
 * were written; or the driver's errno.  (1.1)
 */
VCPU_API int vcpu_hypercall_arg(struct vcpu *cpu, uint32_t i, uint64_t *value);

/**
 * vcpu_kick() - make vcpu_run() on @cpu return -EINTR soon.
 * Async-signal-safe; any thread.  A kick is never lost: if @cpu is not inside
 * vcpu_run(), the next vcpu_run() returns -EINTR at once.  Uses the
 * backend's immediate-exit flag and the kick signal (vcpu_kick_signal()).
 * Gunyah: while the run call that completes an MMIO access is being
 * entered, the kick is held back about 200 us (the driver takes the
 * completion before it looks at kicks and would drop it; see vcpu_kick(3)).
 * Return: 0; -EINVAL for NULL.
 */
VCPU_API int vcpu_kick(struct vcpu *cpu);

/**
 * vcpu_kick_signal() - the signal vcpu_kick() sends to the thread in
 * vcpu_run() (SIGRTMIN + 2 unless changed by vcpu_hv_set_kick_signal()).
 * libvcpu installs an empty handler without SA_RESTART for it when the
 * signal is at its default disposition; a VMM with its own handler for that
 * signal must not use SA_RESTART, and vcpu_create() refuses (-EINVAL) a
 * kick signal set to SIG_IGN.  vcpu_run() keeps the signal blocked in its
 * thread except while the guest runs (KVM: KVM_SET_SIGNAL_MASK), so
 * handlers never see EINTR because of a kick, and a thread may keep it
 * blocked itself; the thread's mask is restored when vcpu_run() returns.
 */
VCPU_API int vcpu_kick_signal(const struct vcpu_hv *hv);

/**
 * vcpu_hv_set_kick_signal() - choose the kick signal; only while @hv has no
 * vCPU (-EBUSY otherwise).  -EINVAL for an invalid signal, one that cannot
 * be caught, or a synchronous fault signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
 * SIGTRAP).
 */
VCPU_API int vcpu_hv_set_kick_signal(struct vcpu_hv *hv, int signo);

/** vcpu_last_exit() - the exit vcpu_run() decoded last (kind NONE before any). */
VCPU_API const struct vcpu_exit *vcpu_last_exit(const struct vcpu *cpu);

/** vcpu_exit_kind_name() - "mmio", "pio", ... for logs. */
VCPU_API const char *vcpu_exit_kind_name(uint32_t kind);

#ifdef __cplusplus
}
#endif

#endif /* VCPU_VCPU_H */
