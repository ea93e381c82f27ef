/* SPDX-License-Identifier: MIT */
/*
 * A VMM's unit test of its PL031 model, run on a scripted guest by the mock
 * driver of libvcpu-mock: the guest makes the register accesses Linux's
 * rtc-pl031 driver makes, and the mock checks every value the model returns.
 * No hypervisor is needed; the code under test is the VMM's own MMIO handler
 * and device model, exactly as they run on a real driver.
 *
 * Build it out of tree (README.md in this directory):
 *   cc -std=c11 test_pl031.c pl031.c $(pkg-config --cflags --libs libvcpu-mock)
 */
#include "pl031.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <vcpu/mock.h>
#include <vcpu/vcpu.h>

#define RTC_BASE 0x09010000u /* where QEMU's virt machine has it */
#define SHUTDOWN 1           /* KVM_SYSTEM_EVENT_SHUTDOWN: PSCI SYSTEM_OFF */
#define STOP 1               /* the handler's code that ends vcpu_run() */

/* What the VMM around the model does: route the window, collect the IRQ. */
struct board {
	struct pl031 rtc;
	uint32_t host_time;
	int irq_edges[4];
	unsigned nedges;
	unsigned unclaimed; /* accesses the model rejected */
};

static uint32_t fake_now(void *ctx)
{
	return ((struct board *)ctx)->host_time;
}

static void record_irq(void *ctx, bool level)
{
	struct board *b = ctx;

	if (b->nedges < 4)
		b->irq_edges[b->nedges] = level;
	b->nedges++;
}

static int on_mmio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct board *b = ctx;
	uint32_t off = (uint32_t)(io->addr - RTC_BASE), val = 0;
	bool ok;

	(void)cpu;
	if (io->addr < RTC_BASE || io->addr - RTC_BASE >= PL031_SIZE)
		return -EFAULT; /* nothing else on this board */
	if (io->is_write) {
		memcpy(&val, io->data, sizeof(val)); /* little-endian host and guest */
		ok = pl031_write(&b->rtc, off, io->len, val);
	} else {
		ok = pl031_read(&b->rtc, off, io->len, &val);
		memcpy(io->data, &val, sizeof(val)); /* reads-as-zero when rejected */
	}
	b->unclaimed += !ok;
	return 0;
}

static int on_system_event(void *ctx, struct vcpu *cpu, const struct vcpu_system_event *ev)
{
	(void)ctx, (void)cpu;
	return ev->type == VCPU_SYSTEM_EVENT_SHUTDOWN ? STOP : -EIO;
}

/* A 32-bit load into x1, or a 32-bit store, at register @off. */
#define READ(off, val) \
	{ .op = VCPU_MOCK_MMIO_READ, .addr = RTC_BASE + (off), .len = 4, .value = (val), .reg = 1 }
#define WRITE(off, val) { .op = VCPU_MOCK_MMIO_WRITE, .addr = RTC_BASE + (off), .len = 4, .value = (val) }

static const struct vcpu_mock_step guest[] = {
	READ(0xfe0, 0x31), READ(0xfe4, 0x10), /* amba probe: PeriphID */
	READ(0xffc, 0xb1),                    /* PCellID3 */
	READ(0x00, 1000),                     /* RTC_DR: the host clock */
	WRITE(0x08, 1700000000),              /* RTC_LR: set the time */
	READ(0x00, 1700000000),
	WRITE(0x10, 1),                       /* RTC_IMSC: alarm interrupt on */
	WRITE(0x04, 1700000000),              /* RTC_MR: alarm now: IRQ goes up */
	READ(0x18, 1),                        /* RTC_MIS */
	WRITE(0x1c, 1),                       /* RTC_ICR: IRQ goes down */
	READ(0x14, 0),                        /* RTC_RIS */
	READ(0x20, 0),                        /* not a register: reads as zero */
	{ .op = VCPU_MOCK_SYSTEM_EVENT, .value = SHUTDOWN },
};
#define NSTEPS (sizeof(guest) / sizeof(guest[0]))

#define CHECK(cond, ...)                                                              \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "test_pl031: " __VA_ARGS__);                  \
			fputc('\n', stderr);                                          \
			goto out;                                                     \
		}                                                                     \
	} while (0)

int main(void)
{
	const struct vcpu_mock_config cfg = { .arch = VCPU_ARCH_ARM64 };
	const struct vcpu_handlers h = { .mmio = on_mmio, .system_event = on_system_event };
	struct board b = { .host_time = 1000 };
	struct vcpu_mock *mock = NULL;
	struct vcpu_hv *hv = NULL;
	struct vcpu_vm *vm = NULL;
	struct vcpu *cpu = NULL;
	const char *why = NULL;
	int ok = 0, r;

	pl031_init(&b.rtc, fake_now, record_irq, &b);
	r = vcpu_mock_open(VCPU_BACKEND_KVM, &cfg, &mock, &hv);
	CHECK(r == 0, "vcpu_mock_open: %s", strerror(-r));
	r = vcpu_mock_script(mock, 0, guest, NSTEPS);
	CHECK(r == 0, "vcpu_mock_script: %s", strerror(-r));
	r = vcpu_vm_create(hv, NULL, &vm);
	CHECK(r == 0, "vcpu_vm_create: %s", vcpu_hv_last_error(hv));
	r = vcpu_create(vm, 0, 0, &cpu);
	CHECK(r == 0, "vcpu_create: %s", vcpu_vm_last_error(vm));

	r = vcpu_run(cpu, &h, &b);
	CHECK(r == STOP, "vcpu_run returned %d: %s", r, vcpu_last_error(cpu));
	CHECK(vcpu_mock_failures(mock, &why) == 0, "the guest read a wrong value: %s", why);
	CHECK(vcpu_mock_steps_done(mock, 0) == NSTEPS, "the guest stopped after %zu of %zu steps",
	      vcpu_mock_steps_done(mock, 0), NSTEPS);
	CHECK(b.nedges == 2 && b.irq_edges[0] == 1 && b.irq_edges[1] == 0,
	      "the interrupt line moved %u times, expected up then down", b.nedges);
	CHECK(b.unclaimed == 1, "%u accesses rejected by the model, expected 1", b.unclaimed);
	ok = 1;
	printf("test_pl031: %zu guest accesses checked\n", NSTEPS - 1);
out:
	if (cpu)
		vcpu_destroy(&cpu);
	if (vm)
		vcpu_vm_destroy(&vm);
	if (hv)
		vcpu_hv_close(hv);
	if (mock && vcpu_mock_destroy(&mock) < 0) {
		fprintf(stderr, "test_pl031: mock objects left open\n");
		ok = 0;
	}
	return ok ? 0 : 1;
}
