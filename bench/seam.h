/* SPDX-License-Identifier: MIT */
/*
 * The benchmark seam: a struct vcpu_sys that answers KVM's ABI with no
 * kernel, no lock and no allocation on KVM_RUN.  Each KVM_RUN writes the
 * next exit of the vCPU's pattern into its kvm_run and returns, so what a
 * benchmark measures around vcpu_run() is libvcpu's own exit path (plus this
 * seam's KVM_RUN, which callgrind can subtract exactly: bseam_ioctl).
 *
 * Why not the mock driver (include/vcpu/mock.h): it models the kernel
 * faithfully, which costs thousands of instructions per exit and one global
 * lock; a benchmark over it measures the mock.
 *
 * Every pattern checks what the VMM wrote back where the ABI has a write-back
 * (hypercall results), and counts the exits it produced, so a benchmark can
 * prove the work was done.  Not part of libvcpu.
 */
#ifndef BENCH_SEAM_H
#define BENCH_SEAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <vcpu/vcpu.h>

/* What each KVM_RUN of a vCPU returns. */
enum bseam_pattern {
	BSEAM_MMIO_WRITE = 1,   /* 8-byte MMIO write of BSEAM_MMIO_VALUE at the MMIO address */
	BSEAM_HYPERCALL = 2,    /* arm64 HVC / x86 KVM_HC: nr BSEAM_HC_NR, args 1..7 */
	BSEAM_SYSTEM_EVENT = 3, /* SHUTDOWN with one data word */
	BSEAM_PIO_OUT = 4,      /* x86: 1-byte OUT to BSEAM_PIO_PORT */
};

#define BSEAM_MAX_VCPUS 64

/* The addresses the guests of bench/guest.h use, so one handler serves both. */
#define BSEAM_MMIO_ARM64 0x10000040ull
#define BSEAM_MMIO_X86 0x8040ull
#define BSEAM_PIO_PORT 0x510u
#define BSEAM_MMIO_VALUE 0x1a7ull
#define BSEAM_HC_NR 0x82000001ull /* SMCCC SiP fast call: what the arm64 guest makes */
#define BSEAM_HC_RET 0x5a5aull    /* what every handler answers; the seam checks it */

struct bseam;

/* A seam for @arch guests (VCPU_ARCH_ARM64 or VCPU_ARCH_X86_64); NULL on ENOMEM. */
struct bseam *bseam_new(enum vcpu_arch arch);
void bseam_free(struct bseam *s);

/* Open a libvcpu KVM handle over the seam (vcpu_hv_open_sys()). */
int bseam_open_hv(struct bseam *s, struct vcpu_hv **hv);

/* The pattern vCPU @id plays from its next KVM_RUN on (default MMIO_WRITE). */
void bseam_set_pattern(struct bseam *s, uint32_t id, enum bseam_pattern p);

/* Exits vCPU @id has been given; failed write-back checks of all vCPUs. */
uint64_t bseam_exits(const struct bseam *s, uint32_t id);
uint64_t bseam_failures(const struct bseam *s, const char **first);

/* The seam's entry points, for the raw loop built over the seam (raw_seam.c). */
int bseam_open(void *ctx, const char *path, int flags);
int bseam_close(void *ctx, int fd);
int bseam_ioctl(void *ctx, int fd, unsigned long req, unsigned long arg);
int bseam_mmap(void *ctx, int fd, size_t len, int prot, off_t off, void **out);
int bseam_munmap(void *ctx, void *addr, size_t len);

#endif
