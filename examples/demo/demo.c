// SPDX-License-Identifier: MIT
/*
 * demo: the smallest useful VMM on libvcpu.
 *
 * With /dev/kvm on x86_64 it runs a real 16-bit guest that prints a line on
 * the COM1 UART (port 0x3f8), reads a device-id register over MMIO and halts.
 * Without a hypervisor (or with --mock) it runs the same conversation against
 * the mock KVM driver, whose scripted guest checks every value this VMM
 * returns: on x86_64 the real guest's own (port I/O, the id read, HLT); on
 * arm64 a PL011 UART at 0x09000000, a forwarded hypercall and PSCI
 * SYSTEM_OFF.  (x86 KVM answers a guest's VMCALL itself: hypercalls reach a
 * VMM only on arm64, see vcpu_vm_forward_hypercalls(3).)
 *
 * usage: demo [--mock]     exit 0 on success, 1 on failure
 */
#define _GNU_SOURCE
#include <vcpu/arm64.h>
#include <vcpu/mock.h>
#include <vcpu/vcpu.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MSG "Hello from the guest\n"
#define COM1 0x3f8u
#define X86_ID_ADDR 0xd000u               /* a demo device-id register, 16 bits */
#define X86_ID 0x7663u
#define PL011_DR 0x09000000u              /* PL011 data register (QEMU virt layout) */
#define PL011_PERIPHID0 (PL011_DR + 0xfe0u)
#define PL011_ID 0x11u
#define DEMO_HC_ARM64 0xc6000000u         /* SMC64 vendor-hypervisor call 0: ret = a + b */

struct demo {
	uint64_t id_addr, id_value; /* the device-id register this machine has */
	uint64_t hc_nr;
	bool id_read, hc_done, halted;
	uint32_t event;
};

static int on_pio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	(void)ctx, (void)cpu;
	if (io->addr == COM1 && io->is_write) {
		putchar(io->data[0]);
		return VCPU_CONTINUE;
	}
	memset(io->data, 0, sizeof(io->data)); /* nothing else on the bus */
	return VCPU_CONTINUE;
}

static int on_mmio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct demo *d = ctx;

	(void)cpu;
	if (io->addr == PL011_DR && io->is_write) {
		putchar(io->data[0]);
	} else if (io->addr == d->id_addr && !io->is_write) {
		for (uint32_t i = 0; i < io->len && i < 8; i++)
			io->data[i] = (uint8_t)(d->id_value >> (8 * i));
		d->id_read = true;
	} else {
		fprintf(stderr, "demo: unexpected MMIO %s at %#llx\n", io->is_write ? "write" : "read",
			(unsigned long long)io->addr);
		io->response = VCPU_IO_FAULT;
	}
	return VCPU_CONTINUE;
}

static int on_hypercall(void *ctx, struct vcpu *cpu, struct vcpu_hypercall *hc)
{
	struct demo *d = ctx;

	(void)cpu;
	if (hc->nr != d->hc_nr) {
		hc->ret[0] = VCPU_SMCCC_RET_NOT_SUPPORTED;
		return VCPU_CONTINUE;
	}
	hc->ret[0] = hc->args[0] + hc->args[1];
	printf("demo: hypercall %#llx(%llu, %llu) = %llu\n", (unsigned long long)hc->nr,
	       (unsigned long long)hc->args[0], (unsigned long long)hc->args[1],
	       (unsigned long long)hc->ret[0]);
	d->hc_done = true;
	return VCPU_CONTINUE;
}

static int on_system_event(void *ctx, struct vcpu *cpu, const struct vcpu_system_event *ev)
{
	struct demo *d = ctx;

	(void)cpu;
	d->event = ev->type;
	return VCPU_STOP;
}

static int on_other(void *ctx, struct vcpu *cpu, const struct vcpu_exit *exit)
{
	struct demo *d = ctx;

	(void)cpu;
	if (exit->kind == VCPU_EXIT_HALT) {
		d->halted = true;
		return VCPU_STOP;
	}
	fprintf(stderr, "demo: unexpected exit '%s' (raw reason %u)\n",
		vcpu_exit_kind_name(exit->kind), exit->raw_reason);
	return -EIO;
}

/* The mock's scripted guest: the same conversation the real guest has. */
static size_t mock_script(enum vcpu_arch arch, struct demo *d, struct vcpu_mock_step *s)
{
	size_t n = 0;
	bool arm = arch == VCPU_ARCH_ARM64;

	for (const char *c = MSG; *c; c++, n++) {
		if (arm)
			s[n] = (struct vcpu_mock_step){ .op = VCPU_MOCK_MMIO_WRITE, .addr = PL011_DR,
							.len = 4, .value = (uint8_t)*c };
		else
			s[n] = (struct vcpu_mock_step){ .op = VCPU_MOCK_PIO_OUT, .addr = COM1,
							.len = 1, .count = 1, .value = (uint8_t)*c };
	}
	d->id_addr = arm ? PL011_PERIPHID0 : X86_ID_ADDR;
	d->id_value = arm ? PL011_ID : X86_ID;
	s[n++] = (struct vcpu_mock_step){ .op = VCPU_MOCK_MMIO_READ, .addr = d->id_addr,
					  .len = arm ? 4 : 2, .value = d->id_value, .reg = arm };
	if (!arm) { /* x86_guest(): hlt, which exits without an in-kernel LAPIC */
		s[n++] = (struct vcpu_mock_step){ .op = VCPU_MOCK_HLT };
		return n;
	}
	d->hc_nr = DEMO_HC_ARM64;
	s[n++] = (struct vcpu_mock_step){ .op = VCPU_MOCK_HYPERCALL, .value = d->hc_nr, .ndata = 2,
					  .args = { 2, 3 }, .nexpect = 1, .expect = { 5 } };
	/* the in-kernel PSCI turns SYSTEM_OFF into a shutdown event */
	s[n++] = (struct vcpu_mock_step){ .op = VCPU_MOCK_HYPERCALL, .value = VCPU_PSCI_SYSTEM_OFF };
	return n;
}

/* A real-mode x86 guest at 0x1000: OUT each byte to COM1, read the id, HLT. */
static size_t x86_guest(uint8_t *p, struct demo *d)
{
	size_t n = 0;

	p[n++] = 0xba, p[n++] = COM1 & 0xff, p[n++] = COM1 >> 8; /* mov dx, 0x3f8 */
	for (const char *c = MSG; *c; c++)
		p[n++] = 0xb0, p[n++] = (uint8_t)*c, p[n++] = 0xee; /* mov al, c; out dx, al */
	p[n++] = 0xa1, p[n++] = X86_ID_ADDR & 0xff, p[n++] = X86_ID_ADDR >> 8; /* mov ax, [id] */
	p[n++] = 0xf4; /* hlt */
	d->id_addr = X86_ID_ADDR;
	d->id_value = X86_ID;
	return n;
}

#define CHECK(call)                                                                   \
	do {                                                                          \
		int rc_ = (call);                                                     \
		if (rc_ < 0) {                                                        \
			fprintf(stderr, "demo: %s: %s\n", #call, strerror(-rc_));     \
			goto out;                                                     \
		}                                                                     \
	} while (0)

int main(int argc, char **argv)
{
	static struct vcpu_mock_step steps[64];
	const struct vcpu_handlers h = { .mmio = on_mmio, .pio = on_pio, .hypercall = on_hypercall,
					 .system_event = on_system_event, .other = on_other };
	struct demo d = { 0 };
	struct vcpu_mock *mock = NULL;
	struct vcpu_hv *hv = NULL;
	struct vcpu_vm *vm = NULL;
	struct vcpu *cpu = NULL;
	size_t nsteps = 0, mem_size = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t gpa = 0x1000;
	void *mem = MAP_FAILED;
	const char *msg = NULL;
	int ok = 0, rc;

	if (argc > 1 && strcmp(argv[1], "--mock") == 0) {
		printf("demo: --mock: using the mock KVM driver\n");
	} else {
		rc = vcpu_hv_open(VCPU_BACKEND_AUTO, &hv);
		/*
		 * ENOSYS/ENOTTY: a node that does not speak KVM's ioctls, or a
		 * program run under user-mode emulation (qemu-aarch64 on an
		 * x86_64 host implements none of them): no hypervisor either.
		 */
		if (rc == -ENODEV || rc == -EACCES || rc == -EPERM || rc == -ENOSYS ||
		    rc == -ENOTTY) {
			printf("demo: no usable hypervisor device (%s): using the mock KVM driver\n",
			       strerror(-rc));
		} else if (rc < 0) {
			fprintf(stderr, "demo: vcpu_hv_open: %s\n", strerror(-rc));
			goto out;
		} else if (vcpu_hv_arch(hv) != VCPU_ARCH_X86_64) {
			printf("demo: the real guest of this demo is x86_64 only: using the mock\n");
			vcpu_hv_close(hv);
			hv = NULL;
		}
	}
	if (!hv) {
		CHECK(vcpu_mock_open(VCPU_BACKEND_KVM, NULL, &mock, &hv));
		nsteps = mock_script(vcpu_hv_arch(hv), &d, steps);
		CHECK(vcpu_mock_script(mock, 0, steps, nsteps));
		if (vcpu_hv_arch(hv) == VCPU_ARCH_ARM64)
			gpa = 0x40000000; /* RAM of the QEMU virt layout, any page size */
	}
	printf("demo: %s%s, %s guest\n", mock ? "mock " : "", vcpu_backend_name(vcpu_hv_backend(hv)),
	       vcpu_hv_arch(hv) == VCPU_ARCH_ARM64 ? "arm64" : "x86_64");

	CHECK(vcpu_vm_create(hv, NULL, &vm));
	mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("demo: mmap");
		goto out;
	}
	CHECK(vcpu_vm_map(vm, gpa, mem, mem_size, 0));
	if (mock && vcpu_hv_arch(hv) == VCPU_ARCH_ARM64)
		CHECK(vcpu_vm_forward_hypercalls(vm, DEMO_HC_ARM64, 1));
	CHECK(vcpu_create(vm, 0, 0, &cpu));
	if (!mock) {
		struct vcpu_x86_segment cs;

		x86_guest(mem, &d);
		CHECK(vcpu_x86_get_segment(cpu, VCPU_X86_CS, &cs));
		cs.base = 0;
		cs.selector = 0;
		CHECK(vcpu_x86_set_segment(cpu, VCPU_X86_CS, &cs));
		CHECK(vcpu_set_reg(cpu, VCPU_REG_X86_RIP, gpa));
		CHECK(vcpu_set_reg(cpu, VCPU_REG_X86_RFLAGS, 0x2));
	}

	rc = vcpu_run(cpu, &h, &d);
	fflush(stdout);
	if (rc != VCPU_STOP) {
		fprintf(stderr, "demo: vcpu_run: %d (%s): %s\n", rc, rc < 0 ? strerror(-rc) : "stop code",
			vcpu_last_error(cpu));
		goto out;
	}
	if (mock && vcpu_mock_failures(mock, &msg) != 0) {
		fprintf(stderr, "demo: the mock guest saw a wrong value: %s\n", msg);
		goto out;
	}
	if (mock && vcpu_mock_steps_done(mock, 0) != nsteps) {
		fprintf(stderr, "demo: the guest stopped after %zu of %zu steps\n",
			vcpu_mock_steps_done(mock, 0), nsteps);
		goto out;
	}
	if (!d.id_read || (d.hc_nr && !d.hc_done)) {
		fprintf(stderr, "demo: the guest skipped its device-id read or hypercall\n");
		goto out;
	}
	if (d.halted)
		printf("demo: guest halted\n");
	else
		printf("demo: guest shut down (system event %u)\n", d.event);
	ok = d.halted || d.event == VCPU_SYSTEM_EVENT_SHUTDOWN;
out:
	if (cpu && vcpu_destroy(&cpu) < 0)
		ok = 0;
	if (vm && vcpu_vm_destroy(&vm) < 0)
		ok = 0;
	if (mem != MAP_FAILED)
		munmap(mem, mem_size);
	if (hv && vcpu_hv_close(hv) < 0)
		ok = 0;
	if (mock && vcpu_mock_destroy(&mock) < 0) {
		fprintf(stderr, "demo: mock objects left open\n");
		ok = 0;
	}
	if (!ok)
		fprintf(stderr, "demo: FAILED\n");
	return ok ? 0 : 1;
}
