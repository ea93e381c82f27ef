/* SPDX-License-Identifier: MIT */
/*
 * Handles, the backend vtable and the error helpers shared by lib/core and
 * the backends.  Not installed.
 */
#ifndef VCPU_INTERNAL_H
#define VCPU_INTERNAL_H

#include <vcpu/vcpu.h>
#include <vcpu/arm64.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "../sys/sys.h"

#define VCPU_ERRLEN 256

struct vcpu_backend_ops;

struct vcpu_hv {
	const struct vcpu_backend_ops *ops;
	const struct vcpu_sys *sys;
	void *sys_ctx;
	enum vcpu_backend backend;
	enum vcpu_arch arch;
	int fd;                 /* the device node */
	char *path;             /* its path: ACRN opens it again for each VM */
	size_t page_size;
	int kick_signal;
	unsigned nr_vms;        /* guarded by lock */
	unsigned nr_vcpus;      /* across VMs, guarded by lock: freezes kick_signal */
	pthread_mutex_t lock;
	void *priv;             /* backend state (KVM: run-mapping size) */
	/*
	 * The handler responses besides HANDLED this driver can carry out
	 * (1 << VCPU_IO_FAULT, 1 << VCPU_IO_RETRY), set by hv_init; the core
	 * refuses the others (vcpu.c, io_result()).
	 */
	uint32_t io_responses;
	/*
	 * More facts of the driver, set by hv_init, that the core answers for
	 * vcpu_hv_check() (hv.c, vcpu_core_check()): a VM needs a device tree; registers can be
	 * set, read; vcpu_create() takes VCPU_CREATE_POWER_OFF; VCPU_EVENTS_*.
	 */
	bool dtb_required, regs_set, regs_get, power_off_create, dirty_log;
	uint32_t system_events;
	const char *driver;     /* the driver's name in details: ops->name, or its ABI's */
	atomic_flag err_busy;   /* writers of err: hv_fail() from any thread */
	char err[VCPU_ERRLEN];
};

struct vcpu_region {
	uint64_t gpa, size;
	void *host;
	uint32_t flags;
	uint32_t slot;
	bool owned;     /* vcpu_vm_alloc(): freed on unmap and VM destruction */
	bool shared;    /* vcpu_vm_alloc(VCPU_MEM_SHARED): MAP_SHARED, not private */
	int mem_fd;     /* backend memory object (Gunyah guest_memfd), else -1 */
};

struct vcpu_vm {
	struct vcpu_hv *hv;
	int fd;
	uint32_t flags;
	pthread_mutex_t lock;   /* regions and vCPU bookkeeping, never the exit path */
	struct vcpu_region *regions;
	unsigned nr_regions, cap_regions;
	unsigned max_regions;   /* the driver's slot count, asked at creation */
	unsigned nr_vcpus;
	struct vcpu **cpus;     /* the vCPU handles (nr_vcpus of them), under lock */
	unsigned cap_cpus;
	atomic_int stop_all;    /* vcpu_vm_stop_all() until vcpu_vm_resume_all() */
	void *priv;
	atomic_flag err_busy;   /* writers of err: VM-level calls come from any thread */
	char err[VCPU_ERRLEN];
};

#define VCPU_HC_WRITTEN (1u << 31)

struct vcpu {
	struct vcpu_vm *vm;
	uint32_t id;
	int fd;
	void *run;              /* the mapped (or allocated) run structure */
	size_t run_size;
	/* Kick protocol (see vcpu_kick()): */
	atomic_int kick_pending;
	atomic_int in_run;
	_Atomic pid_t tid;
	/*
	 * Deferred kicks (backends with ops->resume_before_kick, see
	 * vcpu_kick()): completing, the run call now entered carries a
	 * completion the driver takes before it looks at kicks; resume_at_entry,
	 * the exit just decoded leaves one for the next run call (set by the
	 * decoder); kick_timer, this vcpu_run()'s timer that sends the kick
	 * signal a deferred kick holds back; deferring, kickers inside their
	 * kick (a window opens, and the timer goes, only once they are out).
	 */
	atomic_int completing;
	atomic_int deferring;
	atomic_int kick_deferred;
	bool resume_at_entry;
	bool kick_timer_ok;
	timer_t kick_timer;
	struct vcpu_exit exit;  /* the last decoded exit */
	/*
	 * Repeated port I/O (x86 rep ins/outs): the backend points io_buf at the
	 * validated item array in the run mapping and the core calls the handler
	 * once per item.  NULL for single accesses.
	 */
	uint8_t *io_buf;
	uint32_t io_count;
	/*
	 * An I/O exit's access as decoded, kept apart from the handler (which
	 * may change exit.u.io): write-backs go by these, and vcpu_run()
	 * puts them back into exit.u.io before it returns.
	 */
	struct {
		uint64_t addr;
		uint32_t len;
		uint8_t is_write;
		uint8_t reserved[3];
	} acc;                  /* struct vcpu_io's first 16 bytes, copied as one */
	/*
	 * Chosen with the exit: how the handler's results are written back
	 * (NULL: nothing to write; backends that do not choose per exit keep
	 * their ops->complete), and whether the driver must still finish the
	 * exit before vcpu_run() returns (ops->finish).
	 */
	int (*complete)(struct vcpu *cpu, int result);
	bool finish_pending;
	bool lazy_hc;           /* the VM has VCPU_VM_LAZY_HYPERCALL_ARGS */
	/*
	 * A hypercall exit: bit i, args[i] is filled; VCPU_HC_WRITTEN, the
	 * results were written back (an argument not read by then is gone);
	 * bits 8..30 are the backend's.
	 */
	uint32_t hc_known;
	/*
	 * The exit path's calls without a chain of loads: the backend's run
	 * call (ops->run_once unless its vcpu_create chose one for this vCPU,
	 * e.g. per architecture) and the seam's ioctl, copied from the handle.
	 */
	int (*run_once)(struct vcpu *cpu);
	int (*enter)(struct vcpu *cpu); /* vcpu_run()'s choice: run_once, or it with the kick unblocked */
	sigset_t kick_set;      /* the kick signal alone, built once per vcpu_run() */
	int (*sys_ioctl)(void *ctx, int fd, unsigned long req, unsigned long arg);
	void *sys_ctx;
	void *priv;
	char err[VCPU_ERRLEN];
};

/*
 * A backend: one table of these per hypervisor ABI.  Required (checked at
 * open, see hv.c): name, hv_init, check, vm_create, vm_destroy, vm_map,
 * vm_irq_line, vcpu_create, vcpu_destroy, get_reg, set_reg, run_once,
 * set_immediate_exit.  Every other entry is optional: NULL means
 * the ABI has no such thing, and the core answers for it (most often
 * -EOPNOTSUPP with a detail that names the backend).
 *
 * Adding a backend: a directory lib/<name>/ with its ABI header written from
 * the driver's uapi (static asserts on sizes and ioctl numbers) and this
 * table; an entry in hv.c's backends[] and enum vcpu_backend; a model of the
 * driver in lib/mock/ that enforces the driver's rules, with a test suite of
 * its own (tests/test_<name>.c) and a step in tests/test_faults.c; a fuzz
 * target over its run structure (fuzz/); the backend's rows in the man pages
 * (vcpu_run(3), vcpu_get_reg(3), libvcpu(7)).
 *
 * What a backend decodes from its run structure.  decode() fills cpu->exit
 * and returns 0, -EINTR (interrupted: no exit), or -EPROTO/-errno with a
 * detail set on cpu.  complete() writes the handler's results back before the
 * next entry.
 */
struct vcpu_backend_ops {
	const char *name;
	/*
	 * vcpu_vm_alloc() must give the driver shared anonymous memory: it
	 * wants each slot to be exactly one VMA, and private anonymous
	 * mappings merge with their neighbours (GenieZone).
	 */
	bool ram_shared;
	/*
	 * The struct vcpu_vm_config settings this ABI has (VCFG_*): the core
	 * refuses a non-zero one it lacks, so every backend says alike that
	 * the caller's intent cannot be honoured.  Values the backend takes
	 * it still checks itself (an arm64-only width on x86, a width the
	 * driver cannot give).
	 */
	uint32_t vm_config;
	int (*hv_init)(struct vcpu_hv *hv);
	void (*hv_fini)(struct vcpu_hv *hv);
	int (*check)(struct vcpu_hv *hv, int fd, enum vcpu_cap cap, uint64_t *value, char *err);
	int (*vm_create)(struct vcpu_vm *vm, const struct vcpu_vm_config *cfg);
	/* 0, or the driver refused: then the VM and all of it stay as they were. */
	int (*vm_destroy)(struct vcpu_vm *vm);
	int (*vm_map)(struct vcpu_vm *vm, const struct vcpu_region *r, bool remove);
	int (*vm_irq_line)(struct vcpu_vm *vm, uint32_t irq, int level);
	int (*vm_gic_v3)(struct vcpu_vm *vm, uint64_t dist, uint64_t redist, uint32_t nr_irqs);
	/* x86: the PC's interrupt controllers (+ PIT); NULL: -EOPNOTSUPP.  Flags are checked. */
	int (*vm_x86_irqchip)(struct vcpu_vm *vm, uint32_t flags);
	int (*vm_forward_hypercalls)(struct vcpu_vm *vm, uint32_t base, uint32_t count);
	/*
	 * Optional VM-level calls; NULL means the ABI has no such thing and
	 * the core answers -EOPNOTSUPP (vm_start: 0, nothing to do).
	 * vm_alloc fills r->host (and r->mem_fd) and binds the memory, with
	 * vm->lock held; vm_free releases what vm_alloc made after the binding
	 * is gone.  Without vm_alloc the core maps anonymous shared memory and
	 * uses vm_map.
	 */
	int (*vm_alloc)(struct vcpu_vm *vm, struct vcpu_region *r);
	void (*vm_free)(struct vcpu_vm *vm, struct vcpu_region *r);
	int (*vm_set_dtb)(struct vcpu_vm *vm, uint64_t gpa, uint64_t size);
	/*
	 * Optional: copy region @reg's dirty bitmap (one bit a page, the core
	 * checked that @bitmap holds them) and clear it; vm->lock is held.
	 */
	int (*vm_get_dirty_log)(struct vcpu_vm *vm, const struct vcpu_region *reg,
				uint64_t *bitmap);
	/*
	 * Optional state access (vcpu_get_state(3)); NULL: -EOPNOTSUPP.  The
	 * core has checked the class (known, this architecture, this level)
	 * and a set's length against the class's fixed size or element size
	 * (state.c, classes[]); a get with @buf NULL answers the size needed
	 * in *@len.  -ENXIO: the VM lacks the device the class belongs to.
	 */
	int (*get_state)(struct vcpu *cpu, uint32_t cls, void *buf, size_t *len);
	int (*set_state)(struct vcpu *cpu, uint32_t cls, const void *buf, size_t len);
	int (*vm_get_state)(struct vcpu_vm *vm, uint32_t cls, void *buf, size_t *len);
	int (*vm_set_state)(struct vcpu_vm *vm, uint32_t cls, const void *buf, size_t len);
	int (*vm_start)(struct vcpu_vm *vm);
	int (*vm_pause)(struct vcpu_vm *vm);
	int (*vm_reset)(struct vcpu_vm *vm);
	int (*vm_irqfd)(struct vcpu_vm *vm, const struct vcpu_irqfd *irqfd);
	int (*vm_ioeventfd)(struct vcpu_vm *vm, const struct vcpu_ioeventfd *io);
	int (*vm_signal_msi)(struct vcpu_vm *vm, uint64_t addr, uint64_t data);
	int (*vcpu_create)(struct vcpu *cpu, uint32_t flags);
	void (*vcpu_destroy)(struct vcpu *cpu);
	int (*get_reg)(struct vcpu *cpu, uint64_t reg, uint64_t *value);
	int (*set_reg)(struct vcpu *cpu, uint64_t reg, uint64_t value);
	int (*get_segment)(struct vcpu *cpu, enum vcpu_x86_seg seg, struct vcpu_x86_segment *s);
	int (*set_segment)(struct vcpu *cpu, enum vcpu_x86_seg seg, const struct vcpu_x86_segment *s);
	/*
	 * Optional x86 CPUID (vcpu_x86_get_supported_cpuid(),
	 * vcpu_x86_set_cpuid()); NULL: -EOPNOTSUPP.  The core has checked the
	 * arguments and the architecture.  x86_supported_cpuid: as the public
	 * call (*n in: room, out: count; -ENOSPC when short, nothing written).
	 */
	int (*x86_supported_cpuid)(struct vcpu_hv *hv, struct vcpu_x86_cpuid_entry *entries,
				   uint32_t *n);
	int (*x86_set_cpuid)(struct vcpu *cpu, const struct vcpu_x86_cpuid_entry *entries,
			     uint32_t n);
	/*
	 * Optional batch access, for ABIs that move many registers per call;
	 * the core has checked the batch (ids of this architecture, no
	 * duplicate in a set, n >= 1).  NULL: vcpu_regs_each().
	 */
	int (*get_regs)(struct vcpu *cpu, struct vcpu_reg *regs, uint32_t n);
	int (*set_regs)(struct vcpu *cpu, const struct vcpu_reg *regs, uint32_t n);
	/*
	 * Optional: the mask the driver's run call runs with (KVM_SET_SIGNAL_MASK),
	 * asked once per vcpu_run(): the thread's mask without the kick signal,
	 * which vcpu_run() keeps blocked otherwise.  NULL: the core unblocks the
	 * kick signal around each run call itself.
	 */
	int (*run_signal_mask)(struct vcpu *cpu, const sigset_t *mask);
	/* Optional: vcpu_run() is returning (ACRN gives up serving the VM). */
	void (*run_end)(struct vcpu *cpu);
	/*
	 * Exit path: one entry into the guest, then decode.  vcpu_create may
	 * put a more specific one in struct vcpu.run_once.
	 */
	int (*run_once)(struct vcpu *cpu);
	/*
	 * Optional: read hypercall argument @i (below nargs, not yet in
	 * hc_known) into @value, for vcpu_hypercall_arg().  NULL: the decoder
	 * always fills every argument.
	 */
	int (*hypercall_arg)(struct vcpu *cpu, uint32_t i, uint64_t *value);
	/*
	 * Optional: write the handler's results back; @result: what the
	 * handler (or dispatch) returned, 0 when the loop is about to enter
	 * the guest again, else vcpu_run() is returning.  An error beats the
	 * handler's stop code.  The default of struct
	 * vcpu.complete, which a backend may instead set per exit in run_once.
	 */
	int (*complete)(struct vcpu *cpu, int result);
	/*
	 * Optional, for exits run_once marked finish_pending: make the driver
	 * finish the exit complete() wrote back without running the guest, so registers and guest state are
	 * consistent when vcpu_run() returns.  Leaves the immediate-exit flag
	 * set; the core restores it.
	 */
	int (*finish)(struct vcpu *cpu);
	void (*set_immediate_exit)(struct vcpu *cpu, int value);
	/*
	 * The driver's run call takes a pending completion (an MMIO read's
	 * data) before it looks at immediate_exit and signals, and loses it
	 * when either stops the call (the posted Gunyah series, v8 and v17):
	 * the core then holds kicks back from such a call (vcpu_kick()).
	 */
	bool resume_before_kick;
};

#define VCFG_IPA_BITS     (1u << 0) /* ipa_bits */
#define VCFG_SUSPEND      (1u << 1) /* flags: VCPU_VM_SYSTEM_SUSPEND */
#define VCFG_CPU_AFFINITY (1u << 2) /* cpu_affinity */
#define VCFG_PM1A_PORT    (1u << 3) /* x86_pm1a_cnt_port */
#define VCFG_NAME         (1u << 4) /* name */

/* The vcpu_create() flags that choose arm64 CPU features (KVM only). */
#define VCPU_CREATE_ARM64_FEATURES \
	(VCPU_CREATE_ARM64_SVE | VCPU_CREATE_ARM64_PTRAUTH | VCPU_CREATE_ARM64_PMU)

extern const struct vcpu_backend_ops vcpu_kvm_ops;
extern const struct vcpu_backend_ops vcpu_gunyah_ops;
extern const struct vcpu_backend_ops vcpu_geniezone_ops;
extern const struct vcpu_backend_ops vcpu_acrn_ops;

/*
 * Exported under LIBVCPU_PRIVATE (lib/libvcpu.map) for libvcpu-mock.so, and
 * for nothing else: not API, no compatibility promise beyond one release.
 */
#define VCPU_PRIVATE_API __attribute__((visibility("default")))

/*
 * Open a handle over an explicit seam (the real kernel or the mock).
 * -EPROTO when sys->abi is not VCPU_SYS_ABI: a libvcpu-mock from another
 * release.
 */
VCPU_PRIVATE_API int vcpu_hv_open_sys(enum vcpu_backend backend, enum vcpu_arch arch, const char *path,
		     const struct vcpu_sys *sys, void *sys_ctx, struct vcpu_hv **out);

/*
 * A checked batch one entry at a time through get_reg/set_reg and the
 * segment ops (exactly one of @get and @set is non-NULL); a failure names
 * the entry.  The fallback of the get_regs/set_regs ops.
 */
int vcpu_regs_each(struct vcpu *cpu, struct vcpu_reg *get, const struct vcpu_reg *set,
		   uint32_t n);
/*
 * A run structure the driver filled with something out of range (a length,
 * a count, an offset, a code): -EPROTO, with the backend, the raw exit
 * reason, the field and its value in the detail.  Nothing of it is used.
 */
int vcpu_malformed(struct vcpu *cpu, const char *what, unsigned long long v);

/*
 * The two exits KVM's kvm_run layout (which GenieZone's copies) carries
 * with up to 16 data words: the words past @ndata read as zero, more than
 * 16 is a malformed exit.  @type is the portable system-event type the
 * backend mapped @raw_type to.  With @legacy_word0 a system event without
 * data words still gets word 0 (KVM before KVM_CAP_SYSTEM_EVENT_DATA kept
 * a flags word there).  0 or -EPROTO.
 */
static inline int vcpu_decode_system_event(struct vcpu *cpu, uint32_t type, uint32_t raw_type,
					   uint32_t ndata, const uint64_t *data, bool legacy_word0)
{
	/* 16-byte stores: gcc makes a 128-byte memset() one `rep stos` step per word. */
	typedef uint64_t u64x2 __attribute__((vector_size(16), aligned(8), may_alias));
	struct vcpu_system_event *ev = &cpu->exit.u.system_event;
	u64x2 *words = (u64x2 *)ev->data;

	if (__builtin_expect(ndata > 16, 0))
		return vcpu_malformed(cpu, "system_event.ndata", ndata);
	ev->type = type;
	ev->raw_type = raw_type;
	ev->reserved = 0;
	ev->ndata = ndata;
	/* Spelled out: gcc turns a loop of these back into the memset(). */
	words[0] = words[1] = words[2] = words[3] = (u64x2){ 0, 0 };
	words[4] = words[5] = words[6] = words[7] = (u64x2){ 0, 0 };
	/* The usual one word is a plain move, not a memcpy call. */
	if (ndata > 1)
		memcpy(ev->data, data, ndata * sizeof(ev->data[0]));
	else if (ndata == 1 || legacy_word0)
		ev->data[0] = data[0];
	cpu->exit.kind = VCPU_EXIT_SYSTEM_EVENT;
	return 0;
}
int vcpu_decode_internal(struct vcpu *cpu, uint32_t kind, uint64_t code, uint32_t ndata,
			 const uint64_t *data);

/*
 * An SMCCC call's results before the handler (vcpu.h, struct
 * vcpu_hypercall): x0 NOT_SUPPORTED unless the handler answers; x1..x3 as
 * the guest left them and all four written back, or, with
 * VCPU_VM_LAZY_HYPERCALL_ARGS, zeros and only x0 written unless the handler
 * says more.  @args_read: the decoder filled args[0..nargs), as it must
 * unless the VM is lazy.
 */
static inline void vcpu_smccc_results_init(struct vcpu *cpu, struct vcpu_hypercall *hc,
					   bool args_read)
{
	cpu->hc_known = args_read ? 0xff : 0; /* bits past nargs: never asked for */
	hc->ret[0] = VCPU_SMCCC_RET_NOT_SUPPORTED;
	if (cpu->lazy_hc) {
		hc->ret[1] = hc->ret[2] = hc->ret[3] = 0;
		hc->nret = 1;
	} else {
		hc->ret[1] = hc->args[0];
		hc->ret[2] = hc->args[1];
		hc->ret[3] = hc->args[2];
		hc->nret = 4;
	}
	hc->reserved = 0;
}

/*
 * An MMIO access every backend accepts: 1 to 8 bytes (x86 KVM splits some
 * accesses into odd lengths; arm64 and ACRN give 1, 2, 4 or 8), none
 * reaching past the end of the 64-bit address space.
 */
static inline bool vcpu_mmio_ok(uint64_t addr, uint64_t len)
{
	return len - 1 < 8 && addr + (len - 1) >= addr;
}

/* The capabilities the core answers from struct vcpu_hv's facts (hv.c). */
bool vcpu_core_check(const struct vcpu_hv *hv, enum vcpu_cap cap, uint64_t *value);

/* Prefix the detail that batch entry @i left with its index; returns @r. */
int vcpu_regs_entry_failed(struct vcpu *cpu, uint32_t i, int r);
/* VCPU_REG_X86_SEG() ids. */
bool vcpu_reg_is_segment(uint64_t id);

/*
 * Error recording: format into a handle's buffer and return -err.  The
 * hypervisor and VM handles may fail in several threads at once, so their
 * buffers have one writer at a time (err_busy); a vCPU's belongs to the
 * thread that runs it.  Readers read in the failing thread (vcpu.h).
 */
int vcpu_fail(char *buf, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vcpu_fail_shared(atomic_flag *busy, char *buf, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Copy a detail into a shared buffer (a child's failure kept on its parent). */
void vcpu_err_set(atomic_flag *busy, char *buf, const char *detail);
#define hv_fail(hv, e, ...) vcpu_fail_shared(&(hv)->err_busy, (hv)->err, (e), __VA_ARGS__)
#define vm_fail(vm, e, ...) vcpu_fail_shared(&(vm)->err_busy, (vm)->err, (e), __VA_ARGS__)
#define cpu_fail(cpu, e, ...) vcpu_fail((cpu)->err, (e), __VA_ARGS__)

static inline int sys_ioctl(const struct vcpu_hv *hv, int fd, unsigned long req, unsigned long arg)
{
	return hv->sys->ioctl(hv->sys_ctx, fd, req, arg);
}

/* The vCPU's own calls on the exit path (the same seam as sys_ioctl()). */
static inline int vcpu_ioctl(const struct vcpu *cpu, unsigned long req, unsigned long arg)
{
	return cpu->sys_ioctl(cpu->sys_ctx, cpu->fd, req, arg);
}

static inline int sys_close(const struct vcpu_hv *hv, int fd)
{
	return hv->sys->close(hv->sys_ctx, fd);
}

#endif
