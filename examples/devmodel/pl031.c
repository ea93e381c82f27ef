/* SPDX-License-Identifier: MIT */
/* PL031 RTC model (ARM DDI 0224C); see pl031.h. */
#include "pl031.h"

#include <stddef.h>

enum {
	RTC_DR = 0x00,   /* data: the current time, read-only */
	RTC_MR = 0x04,   /* match */
	RTC_LR = 0x08,   /* load: sets the time */
	RTC_CR = 0x0c,   /* control: bit 0 starts the clock, always 1 here */
	RTC_IMSC = 0x10, /* interrupt mask set/clear */
	RTC_RIS = 0x14,  /* raw interrupt status */
	RTC_MIS = 0x18,  /* masked interrupt status */
	RTC_ICR = 0x1c,  /* interrupt clear, write-only */
	RTC_ID = 0xfe0,  /* PeriphID0-3, PCellID0-3 */
};

/* The identification registers Linux's amba bus matches the driver on. */
static const uint8_t pl031_id[8] = { 0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1 };

static uint32_t now(const struct pl031 *rtc)
{
	return rtc->now(rtc->ctx) + rtc->offset;
}

static void update_irq(struct pl031 *rtc)
{
	bool level = (rtc->raw & rtc->mask) != 0;

	if (level != rtc->irq) {
		rtc->irq = level;
		if (rtc->set_irq)
			rtc->set_irq(rtc->ctx, level);
	}
}

/* The real device raises the interrupt when the counter passes the match
 * value; a model that only looks on access sees it at the next access. */
static void check_match(struct pl031 *rtc)
{
	if (now(rtc) == rtc->match)
		rtc->raw = 1;
	update_irq(rtc);
}

void pl031_init(struct pl031 *rtc, uint32_t (*now_fn)(void *), void (*set_irq)(void *, bool),
		void *ctx)
{
	*rtc = (struct pl031){ .now = now_fn, .set_irq = set_irq, .ctx = ctx };
}

bool pl031_read(struct pl031 *rtc, uint32_t off, uint32_t len, uint32_t *val)
{
	if (len != 4 || (off & 3) || off >= PL031_SIZE)
		return false;
	if (off >= RTC_ID) {
		*val = pl031_id[(off - RTC_ID) / 4];
		return true;
	}
	switch (off) {
	case RTC_DR: *val = now(rtc); break;
	case RTC_MR: *val = rtc->match; break;
	case RTC_LR: *val = rtc->load; break;
	case RTC_CR: *val = 1; break;
	case RTC_IMSC: *val = rtc->mask; break;
	case RTC_RIS: *val = rtc->raw; break;
	case RTC_MIS: *val = rtc->raw & rtc->mask; break;
	default: return false;
	}
	return true;
}

bool pl031_write(struct pl031 *rtc, uint32_t off, uint32_t len, uint32_t val)
{
	if (len != 4 || (off & 3) || off >= PL031_SIZE)
		return false;
	switch (off) {
	case RTC_MR: rtc->match = val; check_match(rtc); break;
	case RTC_LR:
		rtc->load = val;
		rtc->offset = val - rtc->now(rtc->ctx);
		check_match(rtc);
		break;
	case RTC_CR: break; /* the clock always runs */
	case RTC_IMSC: rtc->mask = val & 1; update_irq(rtc); break;
	case RTC_ICR: rtc->raw &= (uint8_t)~(val & 1); update_irq(rtc); break;
	default: return false; /* DR, RIS, MIS and the ids are read-only */
	}
	return true;
}
