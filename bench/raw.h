/* SPDX-License-Identifier: MIT */
/*
 * The baseline: KVM driven by hand, the way a VMM without libvcpu would, one
 * ioctl at a time.  Built twice from raw_impl.h: raw_kvm.c makes the system
 * calls themselves (the real driver), raw_seam.c calls the bench seam's
 * functions directly (so the mock figures compare libvcpu with the same loop
 * over the same stand-in kernel, and CI exercises this code on any host).
 */
#ifndef BENCH_RAW_H
#define BENCH_RAW_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <vcpu/vcpu.h>

#include "kvm/kvm_abi.h"
#include "seam.h"

struct raw_vm {
	void *ctx;           /* raw_seam_ops: the struct bseam */
	enum vcpu_arch arch; /* the guest's; the real driver's is the host's */
	int kvm, vm, vcpu;
	struct kvm_run *run;
	size_t run_size;
	void *ram;           /* set by the caller before create(): page-aligned */
	uint64_t ram_gpa, ram_size;
	uint64_t code_gpa;   /* where boot() puts the guest, inside the RAM */
};

struct raw_ops {
	const char *name;
	/* /dev/kvm, its API version and the run-mapping size. */
	int (*open)(struct raw_vm *r);
	/* VM, RAM in slot 0, vCPU 0 with its run mapping and architecture init
	 * (arm64: preferred target + PSCI 0.2; x86: KVM's supported CPUID). */
	int (*create)(struct raw_vm *r);
	/* Copy @code to code_gpa and point vCPU 0 at it;
	 * BSEAM_HYPERCALL on arm64 also forwards BSEAM_HC_NR (SMCCC filter). */
	int (*boot)(struct raw_vm *r, enum bseam_pattern p, const void *code, size_t size);
	/* The next @n exits of pattern @p, each checked; 0 or -errno (-EPROTO: wrong exit). */
	int (*run)(struct raw_vm *r, enum bseam_pattern p, uint64_t n);
	void (*destroy)(struct raw_vm *r);
	void (*close)(struct raw_vm *r);
};

/* Set by a signal handler (the benchmark's watchdog): an EINTR ends run(). */
extern volatile sig_atomic_t raw_stop;

extern const struct raw_ops raw_kvm_ops;
extern const struct raw_ops raw_seam_ops;

#endif
