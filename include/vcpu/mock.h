/* SPDX-License-Identifier: MIT */
/*
 * The mock kernel driver: a userspace model of a hypervisor driver's ABI that
 * libvcpu talks to through the same syscall seam as the real driver.  It keeps
 * VM and vCPU objects behind real file descriptors (memfds, so leaks show in
 * /proc/self/fd and /proc/self/maps), decodes and checks every ioctl, owns
 * the run structure the library maps, and plays a scripted guest per vCPU
 * that checks what the VMM wrote back.  VMMs can use it to unit-test their
 * device models (examples/devmodel).  It is its own library: link with
 * `pkg-config --libs libvcpu-mock`.
 *
 * Backends modelled: KVM (x86_64 and arm64, on any host), Gunyah and
 * GenieZone (arm64 guests), ACRN (x86_64 guests); each on any host.
 */
#ifndef VCPU_MOCK_H
#define VCPU_MOCK_H

#include <vcpu/vcpu.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vcpu_mock;

/** Driver limits and features of the modelled kernel; zero fields take defaults. */
struct vcpu_mock_config {
	uint32_t arch;          /**< enum vcpu_arch; HOST = the build's architecture */
	uint32_t max_vcpus;     /**< default 8 */
	uint32_t nr_memslots;   /**< default 32 */
	uint32_t flags;         /**< VCPU_MOCK_NO_* */
	uint32_t ipa_bits;      /**< arm64 largest IPA width, default 40 */
	/**
	 * Fault injection from the very first call (the handle's own open):
	 * kernel call number @fault_at (1-based, 0 = none) fails with
	 * -@fault_errno.  Later faults: vcpu_mock_fail_call().
	 */
	uint32_t fault_at;
	int32_t fault_errno;
	uint32_t reserved[5];
};

#define VCPU_MOCK_NO_IMMEDIATE_EXIT (1u << 0) /**< KVM: an old kernel without cap 136 */
#define VCPU_MOCK_NO_SMCCC_FILTER   (1u << 1) /**< KVM: arm64 before Linux 6.4 */
/**
 * KVM x86_64: the paravirtual kvm_pvm driver's rule on top of KVM's:
 * KVM_SET_SREGS refuses paging outside long mode (CR0.PG with EFER.LME clear).
 */
#define VCPU_MOCK_KVM_PVM           (1u << 2)
/*
 * KVM arm64: a host without one of the CPU features vcpu_create() can ask
 * for (the mock's host has all three by default).  KVM, more: bits 20-27.
 */
#define VCPU_MOCK_NO_SVE            (1u << 20) /**< no SVE: KVM_CAP_ARM_SVE 0 */
#define VCPU_MOCK_NO_PTRAUTH        (1u << 21) /**< no pointer authentication (caps 171, 172 0) */
#define VCPU_MOCK_NO_PMU            (1u << 22) /**< no PMUv3: KVM_CAP_ARM_PMU_V3 0 */
/* Flags of the other drivers: Gunyah bits 4-7, GenieZone 8-11, ACRN 12-15. */
/*
 * Gunyah: model the old v8 `GH_` ABI (user-memory regions, the "vcpu"
 * function by name, MMIO-only exits, a run call that starts the VM) instead
 * of v17 `GUNYAH_`.  The mock's Gunyah VM makes vCPU resources for ids below
 * max_vcpus when it starts; a vCPU function with a larger id never gets one.
 */
#define VCPU_MOCK_GUNYAH_V8 (1u << 4)
/* GenieZone (8-11): none; its limits are the kernel's constants (8 vCPUs, 10 slots). */
/**
 * GenieZone step flag (vcpu_mock_step.flags): a signal becomes pending just
 * as this step's exit happens, so GZVM_RUN copies the exit out and fails
 * with EINTR (the kernel's ERESTARTSYS); the VMM must still handle the exit.
 */
#define VCPU_MOCK_GZ_SIGNALLED (1u << 16)
/* ACRN: none so far (bits 12-15 are kept for it). */

/**
 * vcpu_mock_open() - create a mock driver and open a hypervisor handle on it.
 * @backend: the driver to model (AUTO: KVM).
 * @cfg: NULL for defaults (arch HOST: the build's architecture, or the only
 *       one the driver exists on).
 * Return: 0; -EINVAL for bad arguments (flags of another driver, an arch
 * the driver does not exist on); -EOPNOTSUPP for an unmodelled backend;
 * -EPROTO when the libvcpu it runs with is from another release (the two
 * libraries share a private interface).
 */
VCPU_API int vcpu_mock_open(enum vcpu_backend backend, const struct vcpu_mock_config *cfg,
			    struct vcpu_mock **mock, struct vcpu_hv **hv);

/**
 * vcpu_mock_destroy() - free the mock once its hypervisor handle is closed.
 * Return: 0, *mock set to NULL; -EBUSY while the handle or any object
 * (VM, vCPU, mapping) is still open; -EINVAL for NULL.
 */
VCPU_API int vcpu_mock_destroy(struct vcpu_mock **mock);

/**
 * What one step of a scripted guest does.  On an x86 KVM VM with the
 * in-kernel irqchip (vcpu_x86_create_irqchip()), MMIO and port accesses that
 * KVM's own devices claim (the PICs at ports 0x20-0x21, 0xa0-0xa1 and
 * 0x4d0-0x4d1, a PIT at 0x40-0x43 and its speaker stub at 0x61, the IOAPIC
 * page at 0xfec00000, the vCPU's LAPIC page) are emulated in the modelled
 * kernel: the step is done without an exit, and what a read returns is not
 * modelled.
 */
enum vcpu_mock_op {
	/* MMIO store of @len bytes of @value at @addr. */
	VCPU_MOCK_MMIO_WRITE = 1,
	/* MMIO load of @len bytes at @addr; the VMM must return @value, which
	 * lands in guest register @reg (arm64 xN, x86 RAX when @reg is 0). */
	VCPU_MOCK_MMIO_READ = 2,
	/* x86 OUT of @count items of @len bytes to port @addr: item i = @value + i. */
	VCPU_MOCK_PIO_OUT = 3,
	/* x86 IN: the VMM must return @value + i for item i; item 0 lands in RAX. */
	VCPU_MOCK_PIO_IN = 4,
	/* Hypercall @value (arm64: SMCCC function id in x0, @args in x1..x7,
	 * SMC when @flags has VCPU_HYPERCALL_SMC; x86: nr and args).  The guest
	 * then checks x0..x(@nexpect-1) (x86: RAX) against @expect.  The call
	 * only exits if forwarded; otherwise the modelled kernel answers it
	 * (arm64: PSCI in-kernel, others NOT_SUPPORTED; x86: -KVM_ENOSYS). */
	VCPU_MOCK_HYPERCALL = 5,
	/* System event @value (KVM type) with @ndata words of @args. */
	VCPU_MOCK_SYSTEM_EVENT = 6,
	/* Internal error: suberror @value, @ndata words of @args. */
	VCPU_MOCK_INTERNAL_ERROR = 7,
	/* Failed entry: hardware reason @value, cpu @count. */
	VCPU_MOCK_FAIL_ENTRY = 8,
	/* Memory fault at @addr, size @len, flags @value (the run call fails with EFAULT). */
	VCPU_MOCK_MEMORY_FAULT = 9,
	/* Anything: exit code @value, union bytes @raw; the run call fails with
	 * errno @err when non-zero. */
	VCPU_MOCK_RAW = 10,
	/* Spin in the guest until kicked (immediate_exit or a signal). */
	VCPU_MOCK_SPIN = 11,
	/* Load 8 bytes of guest RAM at @addr and expect @value (no exit when RAM
	 * is mapped there; an MMIO read exit when it is not). */
	VCPU_MOCK_MEM_CHECK = 12,
	/* Store 8 bytes of @value to guest RAM at @addr (an MMIO write exit when unmapped). */
	VCPU_MOCK_MEM_WRITE = 13,
	/* x86 HLT: KVM_EXIT_HLT without an in-kernel LAPIC; with one the vCPU
	 * waits in the kernel, woken by an interrupt the mock has pending at
	 * once (no exit). */
	VCPU_MOCK_HLT = 14,
	/* Expect guest register @reg (a VCPU_REG_* id) to hold @value (no exit). */
	VCPU_MOCK_REG_CHECK = 15,
	/* Set guest register @reg (a VCPU_REG_* id) to @value (no exit): what
	 * straight-line code that never exits leaves behind (a move, an add, the
	 * arm64 PC stepping over such instructions). */
	VCPU_MOCK_REG_SET = 16,
	/* x86 CPUID leaf @value, subleaf @count, as KVM answers it (no exit):
	 * RAX, RBX, RCX, RDX get the vCPU's entry from KVM_SET_CPUID2 (a
	 * leaf the table lacks reads as zeros).  KVM on x86_64 only. */
	VCPU_MOCK_X86_CPUID = 17,
	/*
	 * 18..31: more steps every driver plays.  From 32 on, each driver's own
	 * exits: Gunyah 32-47, GenieZone 48-63, ACRN 64-79.
	 */
	/*
	 * Gunyah (32-47).  The common steps play as on Gunyah: MMIO_READ/WRITE
	 * exit as GUNYAH_VCPU_EXIT_MMIO unless an ioeventfd takes the write;
	 * with @nexpect 1 the VMM must resume with @expect[0] (a
	 * gunyah_vcpu_resume_action: 1 fault, 2 retry), else with HANDLED.  A
	 * retried access runs again: on memory bound meanwhile it completes
	 * there, else it exits again (then expecting HANDLED).  MEM_CHECK/
	 * MEM_WRITE use the guest_memfd bindings (v8: the user regions);
	 * unbound or not permitted, v17 exits PAGE_FAULT and re-executes the
	 * step at the next run (v8: an MMIO exit).  MEMORY_FAULT is a
	 * PAGE_FAULT at @addr with attempt (int32_t)@value.  RAW: exit_reason
	 * @value with the run page's bytes from offset 16 in @raw[0..23].
	 * REG_CHECK/REG_SET see vCPU 0 start from the boot context.
	 */
	/* The VM exited: resource-manager exit type @value, @len reason bytes (<= 8) of @args[0]. */
	VCPU_MOCK_GUNYAH_VM_EXITED = 32,
	/* The VM crashed (GUNYAH_VM_STATUS_CRASHED). */
	VCPU_MOCK_GUNYAH_VM_CRASHED = 33,
	/* The VM failed to load (GUNYAH_VM_STATUS_LOAD_FAILED). */
	VCPU_MOCK_GUNYAH_LOAD_FAILED = 34,
	/* The guest expects doorbell @value to have been rung (an irqfd written) since the
	 * last check, level-triggered when @flags is 1. */
	VCPU_MOCK_GUNYAH_DOORBELL = 35,
	/*
	 * GenieZone (48-63).  Its driver plays the common steps on the
	 * gzvm_vcpu_run it copies in and out: HYPERCALL exits with x0..x7 in
	 * hypercall.args[] and checks the args[] written back (x0..x3 =
	 * results, x4..x7 unchanged); SYSTEM_EVENT takes a GenieZone type
	 * (1-7) in @value; MEMORY_FAULT is an EXCEPTION exit (page fault,
	 * fault_gpa @addr, error_code @value) re-raised until memory backs
	 * @addr; SPIN ends only on a signal (the kernel never re-reads
	 * immediate_exit during a call).
	 */
	/* EXCEPTION exit: exception @value, error_code @count, fault_gpa @addr. */
	VCPU_MOCK_GZ_EXCEPTION = 48,
	/* DEBUG exit with the exit union bytes @raw. */
	VCPU_MOCK_GZ_DEBUG = 49,
	/* GZVM_EXIT_SHUTDOWN. */
	VCPU_MOCK_GZ_SHUTDOWN = 50,
	/* The hypervisor returns kernel-internal exit @value (IRQ, GZ, IDLE,
	 * IPI): the modelled kernel re-enters without going to user space. */
	VCPU_MOCK_GZ_KERNEL_EXIT = 51,
	/* Run (no exit) until the VMM's run buffer has immediate_exit = 1,
	 * i.e. a kicker set it during the call; the kernel itself does not
	 * look, this only lets a test place a kick inside GZVM_RUN. */
	VCPU_MOCK_GZ_AWAIT_FLAG = 52,
	/*
	 * ACRN (x86_64).  Its guests also play MMIO_WRITE/READ, PIO_OUT/IN
	 * (one request per item), MEM_CHECK/MEM_WRITE (through the memory
	 * segments), REG_CHECK (the registers SET_VCPU_REGS delivered), HLT
	 * (no request) and SPIN (no request until the VMM's wait in
	 * ATTACH_IOREQ_CLIENT is interrupted by a signal).  Each request step
	 * is done when it is posted; the vCPU then waits for its completion,
	 * and reads are checked against @value.
	 *
	 * PCI configuration read of @len bytes (1, 2 or 4) of the register at
	 * @addr = VCPU_PCI_CFG_ADDR(bus, dev, fn, reg), made the way a guest
	 * does it: CONFIG_ADDRESS at port 0xCF8 (the HSM completes it), then
	 * the data port 0xCFC + (reg & 3), which the HSM turns into a
	 * PCI-config request; (reg & 3) + @len must not exceed 4.  The VMM
	 * must return @value.
	 */
	VCPU_MOCK_ACRN_PCI_READ = 64,
	/* PCI configuration write of @value, as above. */
	VCPU_MOCK_ACRN_PCI_WRITE = 65,
	/*
	 * The hypervisor stores the 256 bytes of @raw in the vCPU's request
	 * slot as they are, processed (offset 136) and kernel_handled (132)
	 * included.  PROCESSING with kernel_handled 0 reaches the VMM and
	 * waits for its completion; PROCESSING with kernel_handled 1 belongs
	 * to an in-kernel client; any other state leaves the vCPU waiting
	 * until a reset.
	 */
	VCPU_MOCK_ACRN_RAW_SLOT = 66,
};

/** Load sign-extends (an arm64 LDRS* / x86 MOVSX). */
#define VCPU_MOCK_SIGN_EXTEND (1u << 8)

struct vcpu_mock_step {
	uint32_t op;        /**< enum vcpu_mock_op */
	uint32_t len;
	uint64_t addr;
	uint64_t value;
	uint64_t reg;
	uint32_t count;
	uint32_t flags;
	uint32_t ndata;
	uint32_t nexpect;
	uint64_t args[16];
	uint64_t expect[4];
	int32_t err;
	uint32_t reserved;
	uint8_t raw[256];
};

/**
 * vcpu_mock_script() - give vCPU @vcpu_id a scripted guest (copied).  May be
 * called before or after the vCPU is created; replaces any earlier script.
 * When the script is exhausted the run call fails with EIO and a failure is
 * recorded.
 */
VCPU_API int vcpu_mock_script(struct vcpu_mock *mock, uint32_t vcpu_id,
			      const struct vcpu_mock_step *steps, size_t nsteps);

/** vcpu_mock_steps_done() - how many steps vCPU @vcpu_id has completed. */
VCPU_API size_t vcpu_mock_steps_done(const struct vcpu_mock *mock, uint32_t vcpu_id);

/**
 * vcpu_mock_failures() - how many write-back checks failed, and the first
 * failure's description in @msg (may be NULL).
 */
VCPU_API unsigned vcpu_mock_failures(const struct vcpu_mock *mock, const char **msg);

/* ------------------------------------------------------------------------ */
/* Fault injection: any kernel call can fail, as on a real system             */

/** The kinds of kernel call libvcpu makes through its seam. */
enum vcpu_mock_call {
	VCPU_MOCK_CALL_OPEN = 1,
	VCPU_MOCK_CALL_CLOSE = 2,  /**< a failed close still releases the fd, as Linux's does */
	VCPU_MOCK_CALL_IOCTL = 3,
	VCPU_MOCK_CALL_MMAP = 4,
	VCPU_MOCK_CALL_MUNMAP = 5, /**< counted, never failed: munmap of a whole mapping cannot */
};

/** One recorded kernel call. */
struct vcpu_mock_call_info {
	uint32_t call;      /**< enum vcpu_mock_call */
	int32_t result;     /**< what the call returned: >= 0, or -errno */
	uint64_t req;       /**< the ioctl request number (IOCTL) */
};

/**
 * vcpu_mock_calls() - how many kernel calls libvcpu has made on @mock
 * (counting from 1 with the handle's open), so a test can replay a sequence
 * and fail each call in turn.
 */
VCPU_API uint64_t vcpu_mock_calls(const struct vcpu_mock *mock);

/**
 * vcpu_mock_call_info() - what kernel call number @n (1-based) was.  The
 * mock remembers the last 65536 calls.
 * Return: 0; -ENOENT for a call not made or forgotten; -EINVAL for NULL.
 */
VCPU_API int vcpu_mock_call_info(const struct vcpu_mock *mock, uint64_t n,
				 struct vcpu_mock_call_info *out);

/**
 * vcpu_mock_fail_call() - make kernel call number @n (1-based, in the
 * numbering of vcpu_mock_calls()) fail with -@err without reaching the
 * modelled driver (a close still releases its fd).  One pending fault at a
 * time; @n = 0 cancels it.
 * Return: 0; -EINVAL for NULL, an @err outside 1..4095, or a call already made.
 */
VCPU_API int vcpu_mock_fail_call(struct vcpu_mock *mock, uint64_t n, int err);

/** vcpu_mock_live_objects() - fds (system, VM, vCPU, device) and mappings still open. */
VCPU_API unsigned vcpu_mock_live_objects(const struct vcpu_mock *mock);

#ifdef __cplusplus
}
#endif

#endif /* VCPU_MOCK_H */
