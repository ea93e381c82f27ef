/* SPDX-License-Identifier: MIT */
/*
 * The modelled GenieZone driver (/dev/gzvm): its objects, shared by
 * mock_geniezone.c (ioctl decoding, system/VM/vCPU ioctls) and
 * mock_geniezone_guest.c (GZVM_RUN and the scripted guest), plus a few
 * inspection helpers for the tests (not exported from libvcpu.so).
 *
 * Locking is the KVM model's (mock.h): a vCPU ioctl takes that vCPU's
 * ioctl_lock, then the mock lock; GZVM_RUN drops the mock lock only while
 * the guest spins.  Section references (§) are to doc/abi/geniezone.md.
 */
#ifndef VCPU_MOCK_GENIEZONE_H
#define VCPU_MOCK_GENIEZONE_H

#include "mock.h"
#include "../geniezone/geniezone_abi.h"

#define GZ_MOCK_CORE_WORDS 36 /* x0..x30, sp, pc, pstate, sp_el1, elr_el1 */
#define GZ_MOCK_MAX_INTID 1019u

struct gz_slot {
	bool used;
	uint32_t flags;
	uint64_t gpa, size, uaddr;
};

/* An irqfd or ioeventfd binding; the driver holds its own reference (a dup). */
struct gz_binding {
	int fd;
	int resamplefd;   /* irqfd RESAMPLE, else -1 */
	uint32_t gsi;     /* irqfd */
	uint32_t flags;   /* the ABI's flags as given */
	uint64_t addr, datamatch; /* ioeventfd */
	uint32_t len;
};

struct gz_vcpu;

struct gz_vm {
	struct vcpu_mock *mock;
	unsigned refs;                 /* the VM fd + every vCPU fd */
	struct gz_slot slots[GZVM_MAX_MEM_REGION];
	struct gz_vcpu *vcpus[GZVM_MAX_VCPUS]; /* live until the VM dies (the kernel's vcpus[]) */
	unsigned nr_vcpus;
	bool dist, redist;
	uint64_t dist_addr, dist_size, redist_addr, redist_size;
	bool dtb;
	uint64_t dtb_addr, dtb_size;
	uint8_t irq_level[GZ_MOCK_MAX_INTID + 1];
	struct gz_binding *irqfds;
	size_t nirqfds, cap_irqfds;
	struct gz_binding *ioeventfds;
	size_t nioeventfds, cap_ioeventfds;
};

/* The exit the hypervisor waits to see completed at the next entry. */
enum gz_pending {
	GZP_NONE = 0,
	GZP_MMIO_READ,
	GZP_MMIO_WRITE,
	GZP_HYPERCALL,
	GZP_PAGE_FAULT,
	GZP_PLAIN,
};

struct gz_vcpu {
	struct gz_vm *vm;
	uint32_t id;
	pthread_mutex_t ioctl_lock;
	struct gzvm_vcpu_run run;     /* the kernel's private copy (§5) */
	uint64_t core[GZ_MOCK_CORE_WORDS];
	enum gz_pending pending;
	size_t pending_index;
	struct vcpu_mock_step pending_step;
	uint64_t spun_ns;             /* how long the current SPIN/AWAIT step has run */
	unsigned ie_streak;           /* consecutive entries refused by immediate_exit */
	/* Counters for the tests. */
	unsigned long entries, eintr_at_entry, eintr_after_exit, restarts;
};

/* mock_geniezone.c */
bool mock_gz_translate(const struct gz_vm *vm, uint64_t gpa, uint64_t len, bool write,
		       void **host);
int mock_gz_reg_slot(struct gz_vcpu *v, uint64_t portable_reg, uint64_t **slot);
bool mock_gz_ioeventfd_hit(struct gz_vm *vm, uint64_t addr, uint32_t len, uint64_t value);

/* mock_geniezone_guest.c: GZVM_RUN on @arg (the VMM's struct gzvm_vcpu_run). */
int mock_gz_run(struct vcpu_mock *m, struct gz_vcpu *v, unsigned long arg);

/* ------------------------------------------------------------------------ */
/* Test helpers: what the modelled driver holds, looked up by the VM's fd.    */

struct mock_gz_vm_info {
	bool dist, redist, dtb;
	uint64_t dist_addr, dist_size, redist_addr, redist_size;
	uint64_t dtb_addr, dtb_size;
	unsigned nslots, nirqfds, nioeventfds, nr_vcpus;
	uint32_t slot_flags[GZVM_MAX_MEM_REGION];
	uint32_t irqfd_gsi[4], irqfd_flags[4];
};

struct mock_gz_vcpu_stats {
	unsigned long entries;          /* GZVM_RUN calls that passed the entry checks */
	unsigned long eintr_at_entry;   /* refused with EINTR by immediate_exit */
	unsigned long eintr_after_exit; /* ERESTARTSYS after the guest ran */
	unsigned long restarts;         /* transparent restarts (SA_RESTART handlers) */
	uint64_t pc;
};

/* 0, -EBADF for an fd that is not a GenieZone VM. */
int mock_gz_vm_info(const struct vcpu_mock *mock, int vm_fd, struct mock_gz_vm_info *out);
/* The level last driven on SPI @intid; -EINVAL out of range. */
int mock_gz_irq_level(const struct vcpu_mock *mock, int vm_fd, uint32_t intid);
/* -ENOENT for a vCPU that does not exist. */
int mock_gz_vcpu_stats(const struct vcpu_mock *mock, int vm_fd, uint32_t id,
		       struct mock_gz_vcpu_stats *out);

#endif
