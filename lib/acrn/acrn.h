/* SPDX-License-Identifier: MIT */
/*
 * The ACRN backend's internals, shared by its three parts: acrn.c (the
 * handle, capabilities, VMs and the ops table), acrn_vcpu.c (vCPU handles
 * and the register file) and acrn_ioreq.c (serving the I/O request page:
 * the run loop's calls and kicks).
 */
#ifndef VCPU_ACRN_H
#define VCPU_ACRN_H

#include "../core/internal.h"
#include "acrn_abi.h"

/* drivers/virt/acrn/acrn_drv.h ACRN_MEM_MAPPING_MAX: the HSM's RAM mapping table. */
#define ACRN_MAX_MEMSEGS 256

enum acrn_vm_state { VM_CREATED, VM_RUNNING, VM_PAUSED };

struct acrn_hv_priv {
	unsigned next_name; /* guarded by hv->lock */
};

struct acrn_vm_priv {
	struct acrn_io_request_buffer *page; /* 4 KiB, page aligned, registered at CREATE_VM */
	uint16_t vmid, vcpu_num;
	uint32_t pm1a_port;                  /* 0: none */
	enum acrn_vm_state state;            /* VM-level calls, under vm->lock */
	atomic_bool client;                  /* CREATE_IOREQ_CLIENT done */
	uint32_t bound;                      /* vCPU ids with a handle, under vm->lock */
	/* The serving thread: its handle, kicks forwarded to it, resets. */
	_Atomic(struct vcpu *) server;
	/* The handle whose thread serves right now (inside vcpu_run()), or NULL. */
	_Atomic(struct vcpu *) active;
	atomic_int kick;                     /* a kick for whichever thread serves */
	atomic_int kickers;                  /* kicks reading .server right now */
	atomic_uint reset_gen;               /* bumped by vcpu_vm_reset() */
	atomic_int completing;               /* the server is between its gen check and NOTIFY */
	/* Only the serving thread touches these (claiming orders the hand-over). */
	unsigned scan;                       /* first slot of the next scan (fairness) */
	uint32_t deferred;                   /* slots of power requests not notified yet */
	unsigned deferred_gen;
	uint32_t bad_state[ACRN_IO_REQUEST_MAX]; /* last unknown state reported, + 1 */
};

struct acrn_vcpu_priv {
	struct acrn_vcpu_regs regs; /* what the hypervisor was last given */
	/* The request being served by this handle's vcpu_run(). */
	bool cur_valid;
	uint32_t cur_slot, cur_type;
	unsigned cur_gen;
};

static inline struct acrn_vm_priv *vm_priv(const struct vcpu_vm *vm)
{
	return vm->priv;
}

/* acrn_vcpu.c */
int acrn_vcpu_create(struct vcpu *cpu, uint32_t flags);
void acrn_vcpu_destroy(struct vcpu *cpu);
int acrn_get_reg(struct vcpu *cpu, uint64_t reg, uint64_t *value);
int acrn_set_reg(struct vcpu *cpu, uint64_t reg, uint64_t value);
int acrn_get_segment(struct vcpu *cpu, enum vcpu_x86_seg seg, struct vcpu_x86_segment *s);
int acrn_set_segment(struct vcpu *cpu, enum vcpu_x86_seg seg, const struct vcpu_x86_segment *s);
int acrn_set_regs(struct vcpu *cpu, const struct vcpu_reg *regs, uint32_t n);

/* acrn_ioreq.c */
int acrn_run_once(struct vcpu *cpu);
void acrn_run_end(struct vcpu *cpu);
int acrn_complete(struct vcpu *cpu, int result);
void acrn_set_immediate_exit(struct vcpu *cpu, int value);

#endif
