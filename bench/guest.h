/* SPDX-License-Identifier: MIT */
/*
 * The exit-latency guests: endless loops of one exiting instruction, so a
 * benchmark round is "the next N exits" and never has to move the PC (the
 * raw loop and libvcpu continue the same guest round after round).
 *
 * Layout as in tests/test_real_kvm.c (same RAM and MMIO addresses):
 *   arm64  EL1h, MMU off, PSTATE 0x3c5; RAM at 0x10000, MMIO at 0x10000000.
 *   x86_64 16-bit real mode, CS/DS base 0; RAM at 0, code at 0x1000.
 * Encodings: aarch64-linux-gnu-as / objdump -d, and `as --32` with .code16
 * .intel_syntax noprefix / objdump -d -m i8086 -M intel; each comment gives
 * the offset and the instruction as assembled.  The addresses match the
 * bench seam's (bench/seam.h), which plays the same exits without a guest.
 */
#ifndef BENCH_GUEST_H
#define BENCH_GUEST_H

#include <stdint.h>

#include "seam.h"

#define GUEST_ARM64_RAM 0x10000ull
#define GUEST_ARM64_RAM_SIZE 0x10000ull
#define GUEST_ARM64_PSTATE 0x3c5ull /* EL1h, DAIF masked */
#define GUEST_X86_RAM 0x0ull
#define GUEST_X86_RAM_SIZE 0x4000ull
#define GUEST_X86_CODE 0x1000ull

/* x5 holds BSEAM_MMIO_VALUE (the host sets it). */
static const uint32_t guest_arm64_mmio[] = {
	0xd2a20001, /* 0000: movz x1, #0x1000, lsl #16    x1 = 0x10000000 (MMIO base) */
	0xf9002025, /* 0004: 1: str x5, [x1, #0x40]       MMIO write 8 bytes at base+0x40 */
	0x17ffffff, /* 0008: b 1b                         forever */
};

/* Forwarded by the SMCCC filter (BSEAM_HC_NR, SiP service): an HVC exit each time. */
static const uint32_t guest_arm64_hvc[] = {
	0xd2800020, /* 0000: 1: movz x0, #0x0001          x0 = 0x1 */
	0xf2b04000, /* 0004: movk x0, #0x8200, lsl #16    x0 = 0x82000001 (the call's result lands in x0) */
	0xd4000002, /* 0008: hvc #0                       hypercall exit */
	0x17fffffd, /* 000c: b 1b                         forever */
};

/* al holds BSEAM_MMIO_VALUE's low byte (the host sets RAX). */
static const uint8_t guest_x86_mmio[] = {
	0xa2, 0x40, 0x80, /* 0000: 1: mov [0x8040], al  MMIO write 1 byte at 0x8040 */
	0xeb, 0xfb,       /* 0003: jmp 1b               forever */
};

static const uint8_t guest_x86_pio[] = {
	0xba, 0x10, 0x05, /* 0000: mov dx, 0x510         dx = BSEAM_PIO_PORT */
	0xee,             /* 0003: 1: out dx, al         OUT 1 byte to 0x510 */
	0xeb, 0xfd,       /* 0004: jmp 1b                forever */
};

_Static_assert(BSEAM_MMIO_ARM64 == 0x10000000ull + 0x40, "arm64 guest MMIO address");
_Static_assert(BSEAM_MMIO_X86 == 0x8040ull, "x86 guest MMIO address");
_Static_assert(BSEAM_PIO_PORT == 0x510, "x86 guest port");
_Static_assert(BSEAM_HC_NR == 0x82000001ull, "arm64 guest function id");

#endif
