/* SPDX-License-Identifier: MIT */
/*
 * An ARM PL031 real-time clock, the kind of device model a VMM keeps: it
 * knows nothing of libvcpu.  The VMM's MMIO handler forwards accesses inside
 * its window to pl031_read()/pl031_write(); time and the interrupt line come
 * in through callbacks, so a test can drive them (test_pl031.c).
 */
#ifndef PL031_H
#define PL031_H

#include <stdbool.h>
#include <stdint.h>

#define PL031_SIZE 0x1000u

struct pl031 {
	/* The host clock in seconds; a test gives a fake one. */
	uint32_t (*now)(void *ctx);
	/* Level of the device's interrupt output changed. */
	void (*set_irq)(void *ctx, bool level);
	void *ctx;

	uint32_t offset; /* guest time = now() + offset */
	uint32_t match;
	uint32_t load;
	uint8_t mask;    /* IMSC */
	uint8_t raw;     /* RIS */
	bool irq;
};

void pl031_init(struct pl031 *rtc, uint32_t (*now)(void *), void (*set_irq)(void *, bool),
		void *ctx);
/* Register accesses at @off in the window; only 32-bit accesses are defined. */
bool pl031_read(struct pl031 *rtc, uint32_t off, uint32_t len, uint32_t *val);
bool pl031_write(struct pl031 *rtc, uint32_t off, uint32_t len, uint32_t val);

#endif
