/* SPDX-License-Identifier: MIT */
/*
 * Internals of the mock kernel driver (include/vcpu/mock.h), shared by
 * mock.c (handles, fds, mappings, scripts), mock_kvm.c (ioctl decoding,
 * system/VM/device ioctls), mock_vcpu.c (vCPU ioctls, register file) and
 * mock_guest.c (KVM_RUN and the scripted guest).  Not installed.
 *
 * Locking: one mutex (vcpu_mock.lock) guards every object, the fd table,
 * the mappings, the scripts and the failure record.  vCPU ioctls first take
 * that vCPU's ioctl_lock (the kernel's vcpu->mutex: a second thread's vCPU
 * ioctl waits while KVM_RUN runs), then the mock lock.  KVM_RUN drops the
 * mock lock only while it waits for a kick, never the ioctl_lock.
 */
#ifndef VCPU_MOCK_INTERNAL_H
#define VCPU_MOCK_INTERNAL_H

#include <vcpu/mock.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "../kvm/kvm_abi.h"

/* What an fd of the mock is (a bit each, so the ioctl table can OR them). */
enum mock_kind {
	MOCK_SYS = 1u << 0,
	MOCK_VM = 1u << 1,
	MOCK_VCPU = 1u << 2,
	MOCK_DEV = 1u << 3,
};

struct mock_vm;
struct mock_vcpu;

/*
 * One open fd.  Like a kernel struct file it outlives close() while an
 * ioctl on it is still running: refs counts the fd plus ioctls in flight.
 */
struct mock_file {
	int fd;
	enum mock_kind kind;
	unsigned refs;
	struct mock_vm *vm;     /* KVM VM, vCPU and device files: holds a VM reference */
	struct mock_vcpu *vcpu; /* KVM vCPU files */
	void *obj;              /* other drivers: their object (released by file_release) */
	unsigned subkind;       /* other drivers: their own kind of file */
};

/*
 * One modelled driver (KVM, Gunyah, GenieZone, ACRN).  mock.c owns the fd
 * table, the seam and the scripts; a driver decodes its ioctls and owns its
 * objects.  Each hook is called without the mock lock unless it says so.
 */
struct mock_driver {
	enum vcpu_backend backend;
	const char *node;         /* the device node, e.g. "/dev/kvm" */
	const char *name;         /* memfd name of the device fd */
	uint32_t arches;          /* 1u << enum vcpu_arch the driver exists on */
	uint32_t flags;           /* the VCPU_MOCK_* config flags it understands */
	/* After defaults are applied; may check cfg and set m->drv_state. */
	int (*init)(struct vcpu_mock *m);
	void (*fini)(struct vcpu_mock *m);
	/* An opened device fd (lock held): e.g. ACRN's empty per-fd VM. */
	int (*open)(struct vcpu_mock *m, struct mock_file *f);
	int (*ioctl)(struct vcpu_mock *m, struct mock_file *f, unsigned long req,
		     unsigned long arg);
	/* May @f be mapped for @len bytes at @off?  (lock held) */
	int (*mmap_check)(const struct vcpu_mock *m, const struct mock_file *f, size_t len,
			  off_t off);
	/* The last reference to @f is gone (lock held): drop f->obj. */
	void (*file_release)(struct vcpu_mock *m, struct mock_file *f);
	/* Is this step one the driver can play?  Only for ops >= 32. */
	bool (*step_valid)(const struct vcpu_mock *m, const struct vcpu_mock_step *s);
};

extern const struct mock_driver mock_kvm_driver;
extern const struct mock_driver mock_gunyah_driver;
extern const struct mock_driver mock_geniezone_driver;
extern const struct mock_driver mock_acrn_driver;

struct mock_map {
	void *addr;
	size_t len;
};

struct mock_script {
	uint32_t vcpu_id;
	struct vcpu_mock_step *steps;
	size_t nsteps;
	size_t pos;      /* next step to execute */
	size_t done;     /* steps executed (an exit counts when it is delivered) */
	unsigned gen;    /* bumped on replacement: a sleeping SPIN must not consume a new step */
};

struct vcpu_mock {
	pthread_mutex_t lock;
	const struct mock_driver *drv;
	void *drv_state;             /* the driver's own mock-wide state */
	struct vcpu_mock_config cfg; /* defaults applied, arch resolved */
	size_t page_size;
	size_t mmap_size;            /* KVM_GET_VCPU_MMAP_SIZE */
	bool hv_open;                /* between vcpu_mock_open() and the seam's release */
	struct mock_file **files;
	size_t nfiles, cap_files;
	struct mock_map *maps;
	size_t nmaps, cap_maps;
	struct mock_script *scripts;
	size_t nscripts, cap_scripts;
	unsigned nfail;
	char fail[256];
	/* Fault injection: the seam counts calls; call fault_at fails with -fault_err. */
	uint64_t ncalls;
	uint64_t fault_at;
	int fault_err;
	struct vcpu_mock_call_info *trace; /* ring of MOCK_TRACE entries, by call number */
	/*
	 * Signals sent through the seam (signal_thread), so a driver can see
	 * one land where the kernel would test signal_pending(); and a test's
	 * hook at a driver's race point (Gunyah: the resume just taken, kicks
	 * not yet looked at), called without the lock.
	 */
	atomic_uint signals_sent;
	void (*race_hook)(void *arg);
	void *race_arg;
};

#define MOCK_TRACE 65536u

/* doc/abi/kvm.md §4.2 memory slot, as the modelled kernel keeps it. */
struct mock_slot {
	bool used;
	uint32_t flags;
	uint64_t gpa, size, uaddr;
	/* LOG_DIRTY_PAGES: a bit a page the guest wrote since the last GET_DIRTY_LOG. */
	uint64_t *dirty;
};

/* doc/abi/kvm.md §6.2: one SMCCC filter range [base, last] with its action. */
struct mock_range {
	uint32_t base, last;
	uint8_t action;
};

#define MOCK_NO_ADDR UINT64_MAX
#define MOCK_MAX_IRQS 1024
#define MOCK_HOST_TSC_KHZ 2400000u /* the modelled x86 host's TSC: 2.4 GHz, unscalable */

/* A vCPU's redistributor (SGIs and PPIs, INTIDs 0-31) and CPU interface (mock_vgic.c). */
struct mock_vgic_cpu {
	uint64_t propbaser, pendbaser;
	uint32_t group, grpmod, enabled, pending, active;
	uint32_t cfg[2];
	uint8_t prio[32];
	uint64_t icc[9];        /* enum icc in mock_vgic.c */
};

struct mock_vgic {
	bool created, initialised;
	uint64_t dist, redist;  /* MOCK_NO_ADDR until set */
	uint32_t nr_irqs;       /* 0 until set; INIT defaults it to 256 */
	/* The distributor's SPI state, one bit, two bits or a byte per INTID (mock_vgic.c). */
	bool enabled_g1;
	uint32_t group[MOCK_MAX_IRQS / 32], grpmod[MOCK_MAX_IRQS / 32];
	uint32_t enabled[MOCK_MAX_IRQS / 32], pending[MOCK_MAX_IRQS / 32];
	uint32_t active[MOCK_MAX_IRQS / 32], cfg[MOCK_MAX_IRQS / 16];
	uint8_t prio[MOCK_MAX_IRQS];
	uint64_t irouter[MOCK_MAX_IRQS];
	struct mock_vgic_cpu *cpus; /* cfg.max_vcpus of them from CTRL_INIT; by vCPU id */
};

/* doc/abi/kvm.md §4.4: an irqfd or ioeventfd binding; eventfds are matched by fd number. */
struct mock_irqfd {
	int fd;
	uint32_t gsi;
	int resamplefd;  /* -1 unless KVM_IRQFD_FLAG_RESAMPLE */
};

struct mock_ioeventfd {
	int fd;
	bool pio, datamatch;
	uint64_t addr;
	uint32_t len;    /* 0: any width (MMIO "fast" ioeventfd) */
	uint64_t value;
};

struct mock_vm {
	struct vcpu_mock *mock;
	unsigned refs;             /* the VM fd + every vCPU and device fd */
	uint32_t ipa_bits;         /* arm64 */
	struct mock_slot *slots;   /* cfg.nr_memslots entries */
	struct mock_vcpu **vcpus;  /* by id, cfg.max_vcpus entries; live until the VM dies */
	unsigned nr_vcpus;
	bool has_run;              /* a vCPU entered KVM_RUN (arm64: freezes filter/vGIC) */
	bool irqchip;              /* x86 KVM_CREATE_IRQCHIP: PICs, IOAPIC, a LAPIC per vCPU */
	bool pit;                  /* x86 KVM_CREATE_PIT2 */
	uint32_t pit_flags;        /* its kvm_pit_config.flags */
	struct mock_vgic gic;      /* arm64 */
	struct mock_range *filter; /* arm64 SMCCC filter, reserved ranges included */
	size_t nfilter, cap_filter;
	bool system_suspend;       /* KVM_CAP_ARM_SYSTEM_SUSPEND enabled */
	uint64_t manual_protect;   /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2's flags, once enabled */
	uint64_t hc_exit;          /* x86 KVM_CAP_EXIT_HYPERCALL: the numbers that exit */
	bool features_set;         /* arm64: the VM-wide vCPU feature set is fixed */
	uint32_t features;
	uint64_t tss_addr;
	uint8_t irq_level[MOCK_MAX_IRQS];
	struct mock_irqfd *irqfds;
	size_t nirqfds, cap_irqfds;
	struct mock_ioeventfd *ioeventfds;
	size_t nioeventfds, cap_ioeventfds;
	uint64_t msi_addr, msi_data; /* the last KVM_SIGNAL_MSI delivered */
	unsigned nmsi;
	/* §8 state, x86: the in-kernel PICs, IOAPIC and PIT (valid once created), kvmclock. */
	struct kvm_pic_state pic[2];       /* KVM_IRQCHIP_PIC_MASTER, _SLAVE */
	struct kvm_ioapic_state ioapic;
	struct kvm_pit_state2 pit_state;
	uint64_t kvmclock_offset;          /* guest ns = CLOCK_MONOTONIC ns + this (mod 2^64) */
	/* §8 state, arm64: both VM-wide in Linux 6.1 (kvm->arch.psci_version, cntvoff). */
	uint64_t psci_version;             /* KVM_REG_ARM_PSCI_VERSION of PSCI_0_2 vCPUs */
	uint64_t timer_cnt;                /* KVM_REG_ARM64_TIMER_CNT: the guest's frozen counter */
};

/* The exit a vCPU owes a completion for (what the VMM must write back). */
enum mock_pending {
	PEND_NONE = 0,
	PEND_MMIO_READ,
	PEND_MMIO_WRITE,
	PEND_PIO_IN,
	PEND_PIO_OUT,
	PEND_HYPERCALL,   /* arm64 forwarded or x86 exit: results checked on resume */
	PEND_EXPECT_X0,   /* arm64 PSCI event: only expect[] is checked on resume */
	PEND_PLAIN,       /* nothing to complete */
};

/* arm64 struct kvm_regs as 108 u64 words (doc/abi/kvm.md §4.6), indexed by offset/8. */
#define MOCK_CORE_WORDS (KVM_REGS_ARM64_SIZE / 8)
#define CORE_SP 31
#define CORE_PC 32
#define CORE_PSTATE 33
#define CORE_SP_EL1 34
#define CORE_ELR_EL1 35

struct mock_sysreg {
	uint64_t id, value;
};

#define MOCK_MAX_CPUID 256 /* KVM_MAX_CPUID_ENTRIES */
/* x86: the MSRs the model keeps (mock_vcpu.c msr_table, KVM_GET_MSR_INDEX_LIST order). */
#define MOCK_X86_NMSRS 13
/* KVM_EXIT_HYPERCALL_VALID_MASK (arch/x86/kvm/x86.h): only MAP_GPA_RANGE can exit. */
#define MOCK_HC_EXIT_VALID (1ull << KVM_HC_MAP_GPA_RANGE)

struct mock_vcpu {
	struct mock_vm *vm;
	uint32_t id;
	pthread_mutex_t ioctl_lock;
	struct kvm_run *run;        /* the "kernel side" mapping of the run pages */
	size_t run_size;
	bool has_run;
	uint32_t mp_state;          /* atomic: a CPU_ON from another vCPU wakes this one */
	/* arm64 */
	bool initialised;
	uint32_t features;
	/* §9: KVM_ARM_VCPU_FINALIZE(SVE) done; the PMUv3's interrupt (0: unset) and PMU_V3_INIT. */
	bool sve_finalized;
	/* SVE's registers (2048-bit vectors: one slice), and the vector lengths, bit vq - 1. */
	uint8_t sve_z[32][256], sve_p[16][32], sve_ffr[32], sve_vls[64];
	uint32_t pmu_irq;
	bool pmu_created;
	uint64_t core[MOCK_CORE_WORDS];
	struct mock_sysreg *sysregs;
	size_t nsysregs, cap_sysregs;
	/* x86_64 */
	struct kvm_regs_x86 regs;
	struct kvm_sregs sregs;
	struct kvm_cpuid_entry2 *cpuid;
	uint32_t ncpuid;
	/* x86 §8 state: what the GET ioctls report and the SET ioctls change. */
	uint64_t msr[MOCK_X86_NMSRS];  /* by msr_table position */
	struct kvm_xsave xsave;        /* the uabi (non-compacted) image */
	uint64_t xcr0;
	uint32_t tsc_khz;            /* KVM_SET_TSC_KHZ's rate; the host's at reset */
	struct kvm_debugregs dbg;      /* db[], dr6, dr7; the rest zero */
	struct kvm_vcpu_events events; /* the kernel's event state, as SET leaves it */
	struct kvm_lapic_state lapic;  /* used only with the VM's in-kernel irqchip */
	/* KVM_SET_SIGNAL_MASK: the kernel's 64-bit sigset (bit n-1 = signal n) */
	bool sigmask_set;
	uint64_t sigmask;
	/* the exit awaiting completion */
	enum mock_pending pending;
	bool replay;                /* arm64: the MMIO access was not completed: redo it */
	size_t pending_index;
	struct vcpu_mock_step pending_step;
};

/*
 * An ioctl's user pointer (or a device attribute's addr), to the caller's
 * own memory: the seam has checked it is not NULL where the ioctl has an
 * argument (mock_kvm.c).
 */
static inline void mock_copy_in(void *dst, uint64_t arg, size_t len)
{
	memcpy(dst, (const void *)(uintptr_t)arg, len);
}

static inline void mock_copy_out(uint64_t arg, const void *src, size_t len)
{
	memcpy((void *)(uintptr_t)arg, src, len);
}

/* Little-endian access bytes, as every modelled guest moves them. */
static inline uint64_t mock_le_get(const uint8_t *p, uint32_t len)
{
	uint64_t v = 0;

	for (uint32_t i = 0; i < len && i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static inline void mock_le_put(uint8_t *p, uint64_t v, uint32_t len)
{
	for (uint32_t i = 0; i < len && i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t mock_len_mask(uint64_t len)
{
	return len >= 8 ? ~0ull : (1ull << (8 * len)) - 1;
}

/* mock.c */
struct mock_file *mock_file_new(struct vcpu_mock *m, const char *name, enum mock_kind kind,
				size_t size, int *err);
void mock_file_put(struct vcpu_mock *m, struct mock_file *f);
int mock_close_locked(struct vcpu_mock *m, int fd);
void mock_vm_put(struct mock_vm *vm);
struct mock_script *mock_script_find(struct vcpu_mock *m, uint32_t vcpu_id);
void mock_fail(struct vcpu_mock *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool mock_is_arm64(const struct vcpu_mock *m);
struct mock_file *mock_file_get(struct vcpu_mock *m, int fd); /* lock held; NULL: EBADF */
bool mock_grow(void **arr, size_t *cap, size_t n, size_t size);

/* mock_kvm.c */
int mock_kvm_ioctl(struct vcpu_mock *m, struct mock_file *f, unsigned long req,
		   unsigned long arg);
/* A guest write of @len bytes at @gpa: its pages go into a logging slot's dirty bitmap. */
void mock_vm_mark_dirty(struct mock_vm *vm, uint64_t gpa, uint64_t len);
bool mock_vm_translate(const struct mock_vm *vm, uint64_t gpa, uint64_t len, bool write,
		       void **host);
uint8_t mock_smccc_action(const struct mock_vm *vm, uint32_t func);
/* A guest write the driver hands to an ioeventfd instead of exiting (lock held). */
bool mock_kvm_ioeventfd_write(struct mock_vm *vm, bool pio, uint64_t addr, uint32_t len,
			      uint64_t value);
/* Is @fd one of this process's eventfds?  0, -EBADF or -EINVAL as eventfd_ctx_fdget(). */
int mock_check_eventfd(int fd);
/*
 * x86: the in-kernel device (PIC, PIT, IOAPIC, LAPIC) that claims a guest
 * access at port or MMIO address @addr, so KVM handles it without an exit;
 * NULL when the access goes to user space (lock held).
 */
const char *mock_kvm_in_kernel_device(const struct mock_vcpu *v, bool pio, uint64_t addr);

/* mock_vcpu.c */
struct mock_vcpu *mock_vcpu_new(struct mock_vm *vm, uint32_t id, int fd, int *err);
void mock_vcpu_free(struct mock_vcpu *v);
int mock_vcpu_ioctl(struct vcpu_mock *m, struct mock_vcpu *v, unsigned long req,
		    unsigned long arg);
int mock_reg_get(const struct mock_vcpu *v, uint64_t reg, uint64_t *value);

/* mock_vgic.c: the vGICv3's register groups (DIST/REDIST_REGS, CPU_SYSREGS, LEVEL_INFO). */
enum mock_attr_op { MOCK_ATTR_GET, MOCK_ATTR_SET, MOCK_ATTR_HAS };
bool mock_vgic_regs_group(uint32_t group);
int mock_vgic_regs(struct mock_vm *vm, const struct kvm_device_attr *a, enum mock_attr_op op);
int mock_vgic_init_cpus(struct mock_vm *vm);
int mock_reg_set(struct mock_vcpu *v, uint64_t reg, uint64_t value);
uint64_t mock_mpidr(const struct mock_vcpu *v);
void mock_arm64_reset(struct mock_vcpu *v);
/* arm64 KVM_RUN before the first run: 0, or -EPERM / -EINVAL (SVE not finalized, PMU not initialised). */
int mock_arm64_run_check(const struct mock_vcpu *v);
uint32_t mock_mp_state(const struct mock_vcpu *v);
/* x86 KVM_GET_MSR_INDEX_LIST on /dev/kvm (lock held). */
int mock_msr_index_list(unsigned long arg);
void mock_set_mp_state(struct mock_vcpu *v, uint32_t state);

/* mock_guest.c */
int mock_vcpu_run(struct vcpu_mock *m, struct mock_vcpu *v);

/*
 * Test helper (not exported from libvcpu.so): the level last driven on
 * interrupt line @irq (x86 GSI with a route: 0..23, arm64 INTID) of the VM
 * behind @vm_fd.
 * Returns 0 or 1, -EBADF for an fd that is not a VM, -EINVAL out of range.
 */
int vcpu_mock_irq_line_level(const struct vcpu_mock *mock, int vm_fd, uint32_t irq);

#endif
