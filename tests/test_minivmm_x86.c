// SPDX-License-Identifier: MIT
/*
 * minivmm's x86_64 machine on the mock driver: the bzImage setup header
 * checks, the zero page (setup header copy, command line, e820, initrd),
 * the identity page tables and long-mode registers of the 64-bit boot
 * protocol, the in-kernel interrupt controllers and PIT made before the
 * vCPU, and the run loop: the COM1 16550 on the pio handler with its
 * interrupt on IRQ 4, the accesses KVM keeps (HLT, LAPIC), MMIO, and the
 * guest's end.  No real x86 boot runs here (no /dev/kvm).
 */
#define _GNU_SOURCE
#include "minivmm.h"

#include <vcpu/mock.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "minivmm_fixture.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define KERNEL_GPA 0x100000ull
#define BODY_SIZE 4096
#define KVM_EXIT_SHUTDOWN 8
#define KVM_SYSTEM_EVENT_SHUTDOWN 1
/* ioctl numbers (shared/abi/kvm.md section 2), to read the mock's call record. */
#define KVM_CREATE_VM 0xae01ul
#define KVM_CREATE_VCPU 0xae41ul
#define KVM_CREATE_IRQCHIP 0xae60ul
#define KVM_IRQ_LINE 0x4008ae61ul
#define KVM_CREATE_PIT2 0x4040ae77ul
#define KVM_RUN 0xae80ul
#define COM1_GSI 4

/* Not exported from libvcpu.so (lib/mock/mock.h): the level of a VM's line. */
int vcpu_mock_irq_line_level(const struct vcpu_mock *mock, int vm_fd, uint32_t irq);

static int setup(void **state)
{
	return fx_setup(state, "bzImage");
}

static int teardown(void **state)
{
	return fx_teardown(state);
}

static void put(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

/* The setup header fields a test varies; bz_default() is a plausible Linux 6.x bzImage. */
struct bz {
	uint8_t setup_sects;
	uint16_t version, xloadflags;
	uint32_t init_size, initrd_addr_max, cmdline_size;
	size_t file_size; /* 0: setup plus a BODY_SIZE kernel */
};

static struct bz bz_default(void)
{
	return (struct bz){ .setup_sects = 2, .version = 0x020f, .xloadflags = 0x3,
			    .init_size = 8 * MIB, .initrd_addr_max = 0x7fffffff,
			    .cmdline_size = 2047 };
}

static size_t setup_bytes(const struct bz *b)
{
	return ((b->setup_sects ? b->setup_sects : 4) + 1) * 512ul;
}

/* Write a synthetic bzImage: a boot.rst setup header and a recognisable "kernel". */
static void make_bzimage(struct fx *f, const struct bz *b)
{
	size_t size = b->file_size ? b->file_size : setup_bytes(b) + BODY_SIZE;
	uint8_t *img = calloc(1, size);

	assert_non_null(img);
	img[0x1f1] = b->setup_sects;
	put(img + 0x1fe, 0xaa55, 2);
	img[0x200] = 0xeb;         /* jmp: the header ends at 0x202 + 0x66 = 0x268 */
	img[0x201] = 0x66;
	memcpy(img + 0x202, "HdrS", 4);
	put(img + 0x206, b->version, 2);
	img[0x211] = 0x01;         /* LOADED_HIGH */
	put(img + 0x22c, b->initrd_addr_max, 4);
	put(img + 0x230, 2 * MIB, 4); /* kernel_alignment */
	img[0x234] = 1;            /* relocatable_kernel */
	put(img + 0x236, b->xloadflags, 2);
	put(img + 0x238, b->cmdline_size, 4);
	put(img + 0x258, 16 * MIB, 8); /* pref_address = LOAD_PHYSICAL_ADDR */
	put(img + 0x260, b->init_size, 4);
	memset(img + 0x268, 0xee, 8); /* past the header: must not reach the zero page */
	for (size_t i = setup_bytes(b); i < size; i++)
		img[i] = (uint8_t)(i * 13 + 1);
	write_file(f->kernel, img, size);
	free(img);
}

static struct mv_config config(struct fx *f, const char *cmdline, uint64_t mem_mib)
{
	return (struct mv_config){ .kernel = f->kernel, .cmdline = cmdline, .mem_mib = mem_mib,
				   .cpus = 1, .hv = fx_mock(f, VCPU_BACKEND_KVM, VCPU_ARCH_X86_64) };
}

static uint64_t reg(struct fx *f, uint64_t id)
{
	uint64_t v = 0;

	assert_int_equal(vcpu_get_reg(f->v.cpu[0], id, &v), 0);
	return v;
}

static struct vcpu_x86_segment seg(struct fx *f, enum vcpu_x86_seg which)
{
	struct vcpu_x86_segment s;

	assert_int_equal(vcpu_x86_get_segment(f->v.cpu[0], which, &s), 0);
	return s;
}

/* Guest RAM at @gpa: RAM starts at GPA 0. */
static uint8_t *ram(struct fx *f, uint64_t gpa)
{
	assert_int_equal(f->v.ram_gpa, 0);
	assert_true(gpa < f->v.ram_size);
	return f->v.ram + gpa;
}

/* Setup fails with @err and a message containing @what; the VMM is torn down for the next. */
static void expect_failure(struct fx *f, const struct mv_config *cfg, int err, const char *what)
{
	assert_int_equal(mv_setup(&f->v, cfg), err);
	if (!strstr(f->v.err, what))
		fail_msg("\"%s\" is not in the error \"%s\"", what, f->v.err);
	mv_teardown(&f->v);
}

/* ------------------------------------------------------------------------ */

static void test_header_checks(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = config(f, NULL, 64);
	uint8_t junk[4096];
	struct bz b;

	memset(junk, 0x90, sizeof(junk));
	write_file(f->kernel, junk, sizeof(junk));
	expect_failure(f, &cfg, -ENOEXEC, "not a bzImage");
	write_file(f->kernel, junk, 100);
	expect_failure(f, &cfg, -ENOEXEC, "not a bzImage");

	b = bz_default();
	b.version = 0x020b;
	make_bzimage(f, &b);
	expect_failure(f, &cfg, -ENOEXEC, "boot protocol 2.11 is too old");

	b = bz_default();
	b.xloadflags = 0x2; /* XLF_CAN_BE_LOADED_ABOVE_4G without XLF_KERNEL_64 */
	make_bzimage(f, &b);
	expect_failure(f, &cfg, -ENOEXEC, "no 64-bit entry point");

	b = bz_default();
	b.file_size = setup_bytes(&b); /* nothing after the setup code */
	make_bzimage(f, &b);
	expect_failure(f, &cfg, -ENOEXEC, "truncated");

	/* No MP table or ACPI would tell Linux about a second vCPU. */
	b = bz_default();
	make_bzimage(f, &b);
	cfg.cpus = 2;
	expect_failure(f, &cfg, -EINVAL, "one vCPU");
}

static void test_too_little_memory(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = config(f, NULL, 16);
	struct bz b = bz_default();
	static uint8_t rd[17 * MIB];

	/* The kernel runs at pref_address (16 MiB) and needs init_size (8 MiB) there. */
	make_bzimage(f, &b);
	expect_failure(f, &cfg, -ENOMEM, "--mem 16 MiB is too little");
	cfg.mem_mib = 24;
	assert_int_equal(mv_setup(&f->v, &cfg), 0);
	mv_teardown(&f->v);
	/* Nor too much: RAM from 0 must stay below the IOAPIC and LAPIC (nothing is allocated). */
	cfg.mem_mib = 3073;
	expect_failure(f, &cfg, -EINVAL, "must end by 3 GiB");
	cfg.mem_mib = 24;

	/* Enough for the kernel, not for the initrd above it. */
	write_file(f->initrd, rd, sizeof(rd));
	cfg.initrd = f->initrd;
	cfg.mem_mib = 40;
	expect_failure(f, &cfg, -ENOMEM, "--mem 40 MiB is too little");
	cfg.mem_mib = 41;
	assert_int_equal(mv_setup(&f->v, &cfg), 0);
}

static void test_cmdline_size(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = config(f, "console=ttyS0 0123456789", 64);
	struct bz b = bz_default();

	b.cmdline_size = 16;
	make_bzimage(f, &b);
	expect_failure(f, &cfg, -EINVAL, "at most 16");
	cfg.cmdline = "console=ttyS0 12"; /* exactly cmdline_size, without the NUL */
	assert_int_equal(mv_setup(&f->v, &cfg), 0);
	assert_string_equal((const char *)ram(f, get(ram(f, reg(f, VCPU_REG_X86_RSI)) + 0x228, 4)),
			    "console=ttyS0 12");
}

/* The zero page: the image's header, the loader's fields, the command line and e820. */
static void test_zero_page(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = config(f, NULL, 64);
	struct bz b = bz_default();
	const uint8_t *bp;
	uint8_t initrd[10000], body[BODY_SIZE];

	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i * 3 + 7);
	write_file(f->initrd, initrd, sizeof(initrd));
	cfg.initrd = f->initrd;
	b.setup_sects = 0; /* 0 means 4: the kernel is at (4 + 1) * 512 */
	make_bzimage(f, &b);
	assert_int_equal(mv_setup(&f->v, &cfg), 0);

	bp = ram(f, reg(f, VCPU_REG_X86_RSI));
	/* The header is copied from 0x1f1 to its end, 0x202 + byte 0x201, and no further. */
	assert_int_equal(get(bp + 0x1fe, 2), 0xaa55);
	assert_memory_equal(bp + 0x202, "HdrS", 4);
	assert_int_equal(get(bp + 0x206, 2), 0x020f);
	assert_int_equal(get(bp + 0x236, 2), 0x3);
	assert_int_equal(get(bp + 0x260, 4), 8 * MIB);
	assert_int_equal(bp[0x268], 0);
	assert_int_equal(bp[0x1ef], 0); /* the sentinel: a loader that copies the header right */
	/* The loader's fields. */
	assert_int_equal(bp[0x210], 0xff);              /* type_of_loader: undefined */
	assert_int_equal(bp[0x211], 0x81);              /* LOADED_HIGH | CAN_USE_HEAP */
	assert_int_equal(get(bp + 0x224, 2), 0xfe00);   /* heap_end_ptr */
	assert_string_equal((const char *)ram(f, get(bp + 0x228, 4)),
			    "console=ttyS0 earlyprintk=serial noapic nolapic");
	/* The initrd: page aligned at the top of RAM, as given. */
	assert_int_equal(get(bp + 0x21c, 4), sizeof(initrd));
	assert_int_equal(get(bp + 0x218, 4), (64 * MIB - sizeof(initrd)) & ~0xfffull);
	assert_memory_equal(ram(f, get(bp + 0x218, 4)), initrd, sizeof(initrd));
	/* e820: low RAM, the legacy hole, the rest of RAM. */
	assert_int_equal(bp[0x1e8], 3);
	{
		static const uint64_t e[3][3] = {
			{ 0, 0x9fc00, 1 },
			{ 0x9fc00, 0x100000 - 0x9fc00, 2 },
			{ 0x100000, 64 * MIB - 0x100000, 1 },
		};
		for (unsigned i = 0; i < 3; i++) {
			const uint8_t *ent = bp + 0x2d0 + 20 * i;
			assert_int_equal(get(ent, 8), e[i][0]);
			assert_int_equal(get(ent + 8, 8), e[i][1]);
			assert_int_equal(get(ent + 16, 4), e[i][2]);
		}
		assert_int_equal(get(bp + 0x2d0 + 60, 8), 0);
	}
	/* The protected-mode kernel at 1 MiB, without the setup sectors. */
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)((setup_bytes(&b) + i) * 13 + 1);
	assert_memory_equal(ram(f, KERNEL_GPA), body, sizeof(body));
}

/* initrd_addr_max caps where the initrd goes, even with RAM above it. */
static void test_initrd_addr_max(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = config(f, "console=ttyS0", 64);
	struct bz b = bz_default();
	uint8_t initrd[5000] = { 1, 2, 3 };
	const uint8_t *bp;
	uint64_t at;

	write_file(f->initrd, initrd, sizeof(initrd));
	cfg.initrd = f->initrd;
	b.initrd_addr_max = 0x1ffffff; /* the initrd's last byte at most at 32 MiB - 1 */
	make_bzimage(f, &b);
	assert_int_equal(mv_setup(&f->v, &cfg), 0);
	bp = ram(f, reg(f, VCPU_REG_X86_RSI));
	at = get(bp + 0x218, 4);
	assert_int_equal(at, (32 * MIB - sizeof(initrd)) & ~0xfffull);
	assert_true(at >= 24 * MIB); /* above the kernel's init_size at 16 MiB */
	assert_memory_equal(ram(f, at), initrd, sizeof(initrd));
}

/* Follow 4-level paging from CR3 for @va: 2 MiB pages, present and writable. */
static uint64_t translate(struct fx *f, uint64_t cr3, uint64_t va)
{
	const uint64_t addr = 0x000ffffffffff000ull;
	uint64_t e = cr3;
	const unsigned shift[3] = { 39, 30, 21 };

	for (unsigned level = 0; level < 3; level++) {
		e = get(ram(f, (e & addr) + 8 * ((va >> shift[level]) & 511)), 8);
		assert_true((e & 0x3) == 0x3); /* P | RW */
		assert_int_equal(!!(e & 0x80), level == 2); /* PS only in the PD */
	}
	return (e & addr & ~(2 * MIB - 1)) | (va & (2 * MIB - 1));
}

static void test_page_tables_and_registers(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = config(f, NULL, 64);
	struct bz b = bz_default();
	struct vcpu_x86_segment s;
	const enum vcpu_x86_seg data[] = { VCPU_X86_DS, VCPU_X86_ES, VCPU_X86_FS, VCPU_X86_GS,
					   VCPU_X86_SS };
	uint64_t cr3, gdt;

	make_bzimage(f, &b);
	assert_int_equal(mv_setup(&f->v, &cfg), 0);

	/* Long mode: CR0.PE|PG, CR4.PAE, EFER.LME|LMA, interrupts off. */
	assert_int_equal(reg(f, VCPU_REG_X86_CR0) & 0x80000001ull, 0x80000001ull);
	assert_true(reg(f, VCPU_REG_X86_CR4) & 0x20);
	assert_int_equal(reg(f, VCPU_REG_X86_EFER) & 0x500, 0x500);
	assert_int_equal(reg(f, VCPU_REG_X86_RFLAGS), 0x2);
	/* startup_64 at load address + 0x200, RSI the zero page. */
	assert_int_equal(reg(f, VCPU_REG_X86_RIP), KERNEL_GPA + 0x200);
	assert_int_equal(get(ram(f, reg(f, VCPU_REG_X86_RSI)) + 0x202, 4), 0x53726448);

	/* The identity map covers the first 4 GiB; the kernel, zero page, command line among it. */
	cr3 = reg(f, VCPU_REG_X86_CR3);
	assert_int_equal(cr3 & 0xfff, 0);
	for (uint64_t va = 0; va < 4 * GIB; va += 2 * MIB)
		assert_int_equal(translate(f, cr3, va), va);
	assert_int_equal(translate(f, cr3, KERNEL_GPA + 0x200), KERNEL_GPA + 0x200);
	assert_int_equal(translate(f, cr3, GIB - 1), GIB - 1);

	/* __BOOT_CS 0x10: 64-bit code; __BOOT_DS 0x18 everywhere else. */
	s = seg(f, VCPU_X86_CS);
	assert_int_equal(s.selector, 0x10);
	assert_int_equal(s.l, 1);
	assert_int_equal(s.db, 0);
	assert_int_equal(s.type, 0xb);
	assert_int_equal(s.present, 1);
	assert_int_equal(s.s, 1);
	assert_int_equal(s.dpl, 0);
	for (size_t i = 0; i < ARRAY_SIZE(data); i++) {
		s = seg(f, data[i]);
		assert_int_equal(s.selector, 0x18);
		assert_int_equal(s.type, 0x3);
		assert_int_equal(s.present, 1);
		assert_int_equal(s.base, 0);
		assert_int_equal(s.limit, 0xffffffff);
	}
	s = seg(f, VCPU_X86_TR);
	assert_int_equal(s.type, 0xb); /* a busy TSS: VMX enters long mode with nothing else */
	assert_int_equal(s.present, 1);
	assert_int_equal(s.s, 0);
	/* The GDT in RAM says the same as the segment registers. */
	s = seg(f, VCPU_X86_GDT);
	gdt = s.base;
	assert_true(s.limit >= 0x27);
	assert_int_equal(get(ram(f, gdt + 0x10), 8) >> 53 & 1, 1);   /* L */
	assert_int_equal(get(ram(f, gdt + 0x10), 8) >> 40 & 0x9f, 0x9b); /* P, S, code */
	assert_int_equal(get(ram(f, gdt + 0x18), 8) >> 40 & 0x9f, 0x93); /* P, S, data */
	assert_int_equal(get(ram(f, gdt + 0x20), 8) >> 40 & 0x9f, 0x8b); /* P, busy TSS */
}

static struct vcpu_mock_step pio(uint32_t op, uint16_t port, uint64_t value)
{
	return (struct vcpu_mock_step){ .op = op, .addr = port, .len = 1, .value = value };
}

#define OUT(port, v) pio(VCPU_MOCK_PIO_OUT, port, v)
#define IN(port, v) pio(VCPU_MOCK_PIO_IN, port, v)

/* The first kernel call of kind @req (0: none), from call @from on; its result in @result. */
static uint64_t find_call(struct fx *f, uint64_t from, unsigned long req, int32_t *result)
{
	struct vcpu_mock_call_info ci;

	for (uint64_t n = from; n <= vcpu_mock_calls(f->mock); n++) {
		assert_int_equal(vcpu_mock_call_info(f->mock, n, &ci), 0);
		if (ci.call == VCPU_MOCK_CALL_IOCTL && ci.req == req) {
			if (result)
				*result = ci.result;
			return n;
		}
	}
	return 0;
}

/* The level minivmm last drove on COM1's line, as the mock's irqchip has it. */
static int com1_line(struct fx *f)
{
	int32_t vm_fd = -1;

	assert_true(find_call(f, 1, KVM_CREATE_VM, &vm_fd) > 0);
	return vcpu_mock_irq_line_level(f->mock, vm_fd, COM1_GSI);
}

/* The irqchip, then the PIT, both before the vCPU: KVM refuses the irqchip after. */
static void test_irqchip_and_pit_before_vcpu(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = config(f, NULL, 64);
	struct bz b = bz_default();
	uint64_t chip, pit, vcpu;
	int32_t rc = -1;

	make_bzimage(f, &b);
	assert_int_equal(mv_setup(&f->v, &cfg), 0);
	chip = find_call(f, 1, KVM_CREATE_IRQCHIP, &rc);
	assert_true(chip > 0);
	assert_int_equal(rc, 0);
	pit = find_call(f, 1, KVM_CREATE_PIT2, &rc);
	assert_true(pit > chip);
	assert_int_equal(rc, 0);
	vcpu = find_call(f, 1, KVM_CREATE_VCPU, &rc);
	assert_true(vcpu > pit);
	assert_true(rc >= 0);
	assert_int_equal(vcpu_x86_create_irqchip(f->v.vm, VCPU_X86_IRQCHIP_PIT), -EEXIST);
	/* Nothing drove the UART's line yet. */
	assert_int_equal(find_call(f, 1, KVM_IRQ_LINE, NULL), 0);
	assert_int_equal(com1_line(f), 0);
}

/* One byte-wide access to COM1 register @reg through minivmm's pio handler. */
static uint8_t com1(struct fx *f, unsigned reg, bool write, uint8_t val)
{
	struct vcpu_io io = { .addr = 0x3f8 + reg, .len = 1, .is_write = write };

	io.data[0] = val;
	assert_int_equal(mv_arch_x86_64.handlers.pio(&f->v, f->v.cpu[0], &io), VCPU_CONTINUE);
	return io.data[0];
}

/*
 * The 16550's THRE interrupt as Linux's 8250 driver meets it: raised when
 * THRI is enabled or a byte leaves, cleared by reading IIR, gated by OUT2;
 * the line is driven only when it changes.
 */
static void test_uart_irq(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = config(f, NULL, 64);
	struct bz b = bz_default();
	char out[16];
	uint64_t calls;
	int p[2], saved;
	ssize_t n;

	make_bzimage(f, &b);
	assert_int_equal(mv_setup(&f->v, &cfg), 0);
	/* What reaches the console, as run_captured() does it. */
	fflush(stdout);
	assert_int_equal(pipe(p), 0);
	saved = dup(STDOUT_FILENO);
	dup2(p[1], STDOUT_FILENO);
	close(p[1]);
	calls = vcpu_mock_calls(f->mock);
#define LINE_IS(level, ncalls)                                                       \
	do {                                                                         \
		assert_int_equal(com1_line(f), (level));                             \
		assert_int_equal(vcpu_mock_calls(f->mock) - calls, (ncalls));      \
		calls = vcpu_mock_calls(f->mock);                                  \
	} while (0)

	/* THRI without OUT2: pending in the UART, not on IRQ 4. */
	com1(f, 1, true, 0x02);
	LINE_IS(0, 0);
	com1(f, 4, true, 0x0b); /* DTR | RTS | OUT2 */
	LINE_IS(1, 1);
	assert_int_equal(com1(f, 1, false, 0), 0x02);
	LINE_IS(1, 0);
	/* Reading IIR reports THRE and clears it. */
	assert_int_equal(com1(f, 2, false, 0), 0x02);
	LINE_IS(0, 1);
	assert_int_equal(com1(f, 2, false, 0), 0x01);
	LINE_IS(0, 0);
	/* A byte leaves at once: THR is empty again. */
	com1(f, 0, true, 'o');
	LINE_IS(1, 1);
	com1(f, 0, true, 'k');
	LINE_IS(1, 0);
	/* THRI off and on: the interrupt goes and comes back. */
	com1(f, 1, true, 0x00);
	LINE_IS(0, 1);
	assert_int_equal(com1(f, 2, false, 0), 0x01);
	com1(f, 1, true, 0x02);
	LINE_IS(1, 1);
	/* OUT2 off: the line drops though the UART still has it pending. */
	com1(f, 4, true, 0x03);
	LINE_IS(0, 1);
	assert_int_equal(com1(f, 2, false, 0), 0x02);
	com1(f, 4, true, 0x0b);
	LINE_IS(0, 0);
	/* The divisor latch is no THR: no byte, no interrupt. */
	com1(f, 3, true, 0x83);
	com1(f, 0, true, 0x01);
	LINE_IS(0, 0);
	com1(f, 3, true, 0x03);
	/* Other ports read as nothing and leave the line alone. */
	{
		struct vcpu_io io = { .addr = 0x2f8, .len = 2 };
		assert_int_equal(mv_arch_x86_64.handlers.pio(&f->v, f->v.cpu[0], &io),
				 VCPU_CONTINUE);
		assert_int_equal(io.data[0], 0xff);
		assert_int_equal(io.data[1], 0xff);
	}
	LINE_IS(0, 0);
#undef LINE_IS
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	n = read(p[0], out, sizeof(out) - 1);
	close(p[0]);
	out[n > 0 ? n : 0] = '\0';
	assert_string_equal(out, "ok");
}

/*
 * The 16550 Linux's earlyprintk and 8250 driver drive, its IRQ, other ports
 * and MMIO, what KVM keeps in the kernel (HLT, the LAPIC, the PIT), then
 * shutdown: exit 0.
 */
static void test_run_console_and_power_off(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = config(f, NULL, 64);
	struct bz b = bz_default();
	struct vcpu_mock_step s[] = {
		{ .op = VCPU_MOCK_REG_CHECK, .reg = VCPU_REG_X86_RIP, .value = KERNEL_GPA + 0x200 },
		{ .op = VCPU_MOCK_REG_CHECK, .reg = VCPU_REG_X86_RFLAGS, .value = 0x2 },
		OUT(0x3f8, 'H'), OUT(0x3f8, 'i'),
		/* rep outsb of two items: 'A', 'B' */
		{ .op = VCPU_MOCK_PIO_OUT, .addr = 0x3f8, .len = 1, .count = 2, .value = 'A' },
		OUT(0x3f8, '\n'),
		IN(0x3fd, 0x60),                 /* LSR: THRE | TEMT */
		IN(0x3fa, 0x01),                 /* IIR: no interrupt pending */
		OUT(0x3ff, 0x5a), IN(0x3ff, 0x5a), /* the scratch register keeps what it got */
		OUT(0x3fb, 0x83), OUT(0x3f8, 0x0c), OUT(0x3f9, 0x00), /* DLAB: 9600 baud */
		IN(0x3f8, 0x0c), IN(0x3fb, 0x83),
		OUT(0x3fb, 0x03), IN(0x3fb, 0x03), /* 8N1, DLAB clear again */
		OUT(0x3fc, 0x0b),                /* MCR: DTR | RTS | OUT2 */
		OUT(0x3f9, 0x0f), IN(0x3f9, 0x0f), /* IER: THRI raises IRQ 4 (exit 17) */
		IN(0x3fa, 0x02),                 /* IIR: THRE, now cleared (exit 19) */
		OUT(0x3f8, '!'),                 /* the byte leaves: THRE again (exit 20) */
		OUT(0x3f9, 0x00),                /* IER: none (exit 21) */
		IN(0x2fd, 0xff),                 /* no COM2 */
		{ .op = VCPU_MOCK_PIO_IN, .addr = 0x80, .len = 2, .value = 0xffff },
		OUT(0x80, 0x00),                 /* a POST code: dropped */
		/* KVM's own, no exit: the idle HLT, the LAPIC, the PIT, the PIC. */
		{ .op = VCPU_MOCK_HLT },
		{ .op = VCPU_MOCK_MMIO_READ, .addr = 0xfee00030, .len = 4, .value = 0 },
		{ .op = VCPU_MOCK_MMIO_WRITE, .addr = 0xfee000b0, .len = 4, .value = 0 },
		OUT(0x43, 0x34), OUT(0x40, 0x9c), OUT(0x40, 0x2e), OUT(0x21, 0xef),
		{ .op = VCPU_MOCK_MMIO_READ, .addr = 0xfed00000, .len = 4, .value = 0 }, /* no HPET */
		{ .op = VCPU_MOCK_SYSTEM_EVENT, .value = KVM_SYSTEM_EVENT_SHUTDOWN },
	};
	const size_t in_kernel = 7, reg_checks = 2;
	/* After which exit (from 1) each KVM_IRQ_LINE came; test_uart_irq checks the levels. */
	static const unsigned irq_after[] = { 17, 19, 20, 21 };
	unsigned runs = 0, nirq = 0;
	struct vcpu_mock_call_info ci;
	char out[64];
	const char *msg = NULL;

	make_bzimage(f, &b);
	assert_int_equal(mv_setup(&f->v, &cfg), 0);
	assert_int_equal(vcpu_mock_script(f->mock, 0, s, ARRAY_SIZE(s)), 0);
	assert_int_equal(run_captured(f, out, sizeof(out)), MV_EXIT_OFF);
	assert_string_equal(out, "HiAB\n!"); /* the divisor latch write is no character */
	if (vcpu_mock_failures(f->mock, &msg))
		fail_msg("%s", msg);
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), ARRAY_SIZE(s));
	/* Every step but the register checks and KVM's own is an exit; rep outsb is two calls. */
	assert_int_equal(atomic_load(&f->v.exits), ARRAY_SIZE(s) - reg_checks - in_kernel + 1);

	/* IRQ 4 went up and down at those exits, and nowhere else. */
	for (uint64_t n = 1; n <= vcpu_mock_calls(f->mock); n++) {
		assert_int_equal(vcpu_mock_call_info(f->mock, n, &ci), 0);
		if (ci.call != VCPU_MOCK_CALL_IOCTL)
			continue;
		if (ci.req == KVM_RUN)
			runs++;
		if (ci.req == KVM_IRQ_LINE) {
			assert_true(nirq < ARRAY_SIZE(irq_after));
			assert_int_equal(ci.result, 0);
			assert_int_equal(runs, irq_after[nirq]);
			nirq++;
		}
	}
	assert_int_equal(nirq, ARRAY_SIZE(irq_after));
	assert_int_equal(com1_line(f), 0);
}

/* A triple fault is x86's reset; an internal error a crash. */
static void test_run_reset_and_crash(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = config(f, NULL, 64);
	struct bz b = bz_default();
	struct vcpu_mock_step reset[] = { { .op = VCPU_MOCK_RAW, .value = KVM_EXIT_SHUTDOWN } };
	struct vcpu_mock_step crash[] = { { .op = VCPU_MOCK_INTERNAL_ERROR, .value = 1 } };
	char out[16];

	make_bzimage(f, &b);
	assert_int_equal(mv_setup(&f->v, &cfg), 0);
	assert_int_equal(vcpu_mock_script(f->mock, 0, reset, 1), 0);
	assert_int_equal(run_captured(f, out, sizeof(out)), MV_EXIT_RESET);
	mv_teardown(&f->v);

	assert_int_equal(mv_setup(&f->v, &cfg), 0);
	assert_int_equal(vcpu_mock_script(f->mock, 0, crash, 1), 0);
	assert_int_equal(run_captured(f, out, sizeof(out)), MV_EXIT_CRASH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_header_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_little_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmdline_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_initrd_addr_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_page_tables_and_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_irqchip_and_pit_before_vcpu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uart_irq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_console_and_power_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_reset_and_crash, setup, teardown),
	};

	return cmocka_run_group_tests_name("minivmm-x86", tests, NULL, NULL);
}
