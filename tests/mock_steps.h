/* SPDX-License-Identifier: MIT */
/*
 * Builders for the mock drivers' script steps (include/vcpu/mock.h), shared
 * by the suites of every backend.  A script usually ends with stop(): an MMIO
 * write to STOP_ADDR, which the suites' handlers answer by stopping
 * vcpu_run().
 */
#ifndef TESTS_MOCK_STEPS_H
#define TESTS_MOCK_STEPS_H

#include <vcpu/mock.h>

#include <stdint.h>
#include <string.h>

#define STOP_ADDR 0x1fff0000ull /* a write here stops vcpu_run() */

static inline struct vcpu_mock_step step(uint32_t op)
{
	struct vcpu_mock_step s;

	memset(&s, 0, sizeof(s));
	s.op = op;
	return s;
}

static inline struct vcpu_mock_step mmio_write(uint64_t addr, uint32_t len, uint64_t value)
{
	struct vcpu_mock_step s = step(VCPU_MOCK_MMIO_WRITE);

	s.addr = addr;
	s.len = len;
	s.value = value;
	return s;
}

/* The VMM must return @value; @reg: arm64 N of xN; x86 0 (RAX). */
static inline struct vcpu_mock_step mmio_read(uint64_t addr, uint32_t len, uint64_t value,
					      uint64_t reg)
{
	struct vcpu_mock_step s = step(VCPU_MOCK_MMIO_READ);

	s.addr = addr;
	s.len = len;
	s.value = value;
	s.reg = reg;
	return s;
}

static inline struct vcpu_mock_step stop(void)
{
	return mmio_write(STOP_ADDR, 4, 0x5709);
}

/* x86 port I/O (VCPU_MOCK_PIO_OUT/IN): @count items of @len bytes. */
static inline struct vcpu_mock_step pio(uint32_t op, uint16_t port, uint32_t len,
					uint32_t count, uint64_t value)
{
	struct vcpu_mock_step s = step(op);

	s.addr = port;
	s.len = len;
	s.count = count;
	s.value = value;
	return s;
}

/* VCPU_MOCK_MEM_CHECK / VCPU_MOCK_MEM_WRITE of @value at @addr. */
static inline struct vcpu_mock_step mem_op(uint32_t op, uint64_t addr, uint64_t value)
{
	struct vcpu_mock_step s = step(op);

	s.addr = addr;
	s.value = value;
	return s;
}

static inline struct vcpu_mock_step reg_check(uint64_t reg, uint64_t value)
{
	struct vcpu_mock_step s = step(VCPU_MOCK_REG_CHECK);

	s.reg = reg;
	s.value = value;
	return s;
}

#endif
