// SPDX-License-Identifier: MIT
/*
 * minivmm's x86_64 machine on the mock driver: the bzImage setup header
 * checks, the zero page (setup header copy, command line, e820, initrd,
 * RSDP address), the ACPI tables (RSDP, XSDT, FADT, FACS, MADT, DSDT with
 * \_S5), the identity page tables and long-mode registers of the 64-bit
 * boot protocol, the in-kernel interrupt controllers and PIT made before
 * the vCPUs, and the run loop: the COM1 16550 on the pio handler with its
 * interrupt on IRQ 4, the accesses KVM keeps (HLT, LAPIC), MMIO, secondary
 * vCPUs left to the guest, and the guest's end (ACPI S5, 0xcf9 and i8042
 * resets, a panic's warm reset, a triple fault, an internal error).  No
 * real x86 boot runs here (no /dev/kvm).
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
/* ioctl numbers (doc/abi/kvm.md section 2), to read the mock's call record. */
#define KVM_CREATE_VM 0xae01ul
#define KVM_CREATE_VCPU 0xae41ul
#define KVM_CREATE_IRQCHIP 0xae60ul
#define KVM_IRQ_LINE 0x4008ae61ul
#define KVM_CREATE_PIT2 0x4040ae77ul
#define KVM_RUN 0xae80ul
#define COM1_GSI 4
#define PREFIX "panic=-1 reboot=pci,panic_warm" /* minivmm's, before every command line */

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

	/* minivmm's own options count too. */
	b.cmdline_size = sizeof(PREFIX " console=ttyS0 12") - 1;
	make_bzimage(f, &b);
	expect_failure(f, &cfg, -EINVAL, "this kernel takes at most");
	cfg.cmdline = "console=ttyS0 12"; /* exactly cmdline_size, without the NUL */
	assert_int_equal(mv_setup(&f->v, &cfg), 0);
	assert_string_equal((const char *)ram(f, get(ram(f, reg(f, VCPU_REG_X86_RSI)) + 0x228, 4)),
			    PREFIX " console=ttyS0 12");
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
			    PREFIX " console=ttyS0 earlyprintk=serial");
	/* acpi_rsdp_addr (zero-page.rst): the RSDP, in the reserved range e820 reports. */
	assert_int_equal(get(bp + 0x070, 8), 0xe0000);
	assert_memory_equal(ram(f, 0xe0000), "RSD PTR ", 8);
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

/*
 * The long-mode registers, set in one batch: the paravirtual kvm_pvm driver
 * refuses a KVM_SET_SREGS with paging outside long mode, which setting them
 * one at a time would pass through.
 */
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
	cfg.hv = fx_mock_flags(f, VCPU_BACKEND_KVM, VCPU_ARCH_X86_64, VCPU_MOCK_KVM_PVM);
	if (mv_setup(&f->v, &cfg) != 0)
		fail_msg("setup: %s", f->v.err);

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

/* ------------------------------------------------------------------------ */
/* ACPI                                                                       */

/* The bytes from @p sum to zero (ACPI 6.4, 5.2.5.3 and 5.2.6). */
static void assert_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	assert_int_equal(sum, 0);
}

/* A system description table at @gpa with signature @sig: its length, checksum checked. */
static const uint8_t *table(struct fx *f, uint64_t gpa, const char *sig)
{
	const uint8_t *t = ram(f, gpa);
	uint32_t len = (uint32_t)get(t + 4, 4);

	assert_memory_equal(t, sig, 4);
	assert_true(len >= 36 && gpa + len <= 0x100000);
	assert_checksum(t, len);
	return t;
}

/* Walk the tables from the RSDP the way Linux does for @cpus vCPUs; return the FADT. */
static const uint8_t *check_acpi(struct fx *f, unsigned cpus)
{
	const uint8_t *bp = ram(f, reg(f, VCPU_REG_X86_RSI));
	const uint8_t *rsdp, *xsdt, *fadt = NULL, *madt = NULL, *dsdt, *facs, *e, *end;
	static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04,
				      0x0a, 0x05, 0x00, 0x00, 0x00 };
	unsigned lapics = 0, ioapics = 0, overrides = 0;
	uint32_t n;

	/* The RSDP: where boot_params says, 16-byte aligned in the BIOS area Linux scans. */
	rsdp = ram(f, get(bp + 0x070, 8));
	assert_int_equal(get(bp + 0x070, 8) % 16, 0);
	assert_true(get(bp + 0x070, 8) >= 0xe0000 && get(bp + 0x070, 8) < 0x100000);
	assert_memory_equal(rsdp, "RSD PTR ", 8);
	assert_checksum(rsdp, 20);
	assert_int_equal(rsdp[15], 2);
	assert_int_equal(get(rsdp + 20, 4), 36);
	assert_checksum(rsdp, 36);

	xsdt = table(f, get(rsdp + 24, 8), "XSDT");
	n = ((uint32_t)get(xsdt + 4, 4) - 36) / 8;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t at = get(xsdt + 36 + 8 * i, 8);

		if (memcmp(ram(f, at), "FACP", 4) == 0)
			fadt = table(f, at, "FACP");
		else
			madt = table(f, at, "APIC");
	}
	assert_non_null(fadt);
	assert_non_null(madt);

	/* FADT: ACPI 6 layout, PM1a at 0x600/0x604, SCI 9, reset register 0xcf9 <- 0x0e, DSDT. */
	assert_int_equal(get(fadt + 4, 4), 276);
	assert_int_equal(fadt[8], 6);
	assert_int_equal(get(fadt + 46, 2), 9);
	assert_int_equal(get(fadt + 48, 4), 0);       /* no SMI_CMD: already in ACPI mode */
	assert_int_equal(get(fadt + 56, 4), 0x600);   /* PM1a_EVT_BLK */
	assert_int_equal(get(fadt + 64, 4), 0x604);   /* PM1a_CNT_BLK */
	assert_int_equal(fadt[88], 4);
	assert_int_equal(fadt[89], 2);
	assert_int_equal(get(fadt + 109, 2) & 0x2, 0); /* no 8042 */
	assert_true(get(fadt + 112, 4) & (1u << 10)); /* RESET_REG_SUP */
	assert_int_equal(get(fadt + 112, 4) & (1u << 20), 0); /* not hardware-reduced */
	assert_int_equal(fadt[116], 1);               /* system I/O */
	assert_int_equal(fadt[117], 8);
	assert_int_equal(get(fadt + 120, 8), 0xcf9);
	assert_int_equal(fadt[128], 0x0e);
	assert_int_equal(get(fadt + 140, 8), get(fadt + 40, 4)); /* X_DSDT = DSDT */
	facs = ram(f, get(fadt + 36, 4));
	assert_int_equal(get(fadt + 36, 4) % 64, 0);
	assert_memory_equal(facs, "FACS", 4);
	assert_int_equal(get(facs + 4, 4), 64);

	/* DSDT: Name (_S5, Package () {5, 0, 0, 0}). */
	dsdt = table(f, get(fadt + 140, 8), "DSDT");
	assert_int_equal(get(dsdt + 4, 4), 36 + sizeof(s5));
	assert_memory_equal(dsdt + 36, s5, sizeof(s5));

	/* MADT: the LAPIC address, PCAT_COMPAT, a LAPIC per vCPU, the IOAPIC, IRQ 9 level-high. */
	assert_int_equal(get(madt + 36, 4), 0xfee00000);
	assert_int_equal(get(madt + 40, 4), 1);
	end = madt + get(madt + 4, 4);
	for (e = madt + 44; e < end; e += e[1]) {
		assert_true(e[1] >= 2 && e + e[1] <= end);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], lapics);     /* UID */
			assert_int_equal(e[3], lapics);     /* APIC ID = vCPU id */
			assert_int_equal(get(e + 4, 4), 1); /* enabled */
			lapics++;
			break;
		case 1:
			assert_int_equal(e[1], 12);
			assert_true(e[2] >= cpus); /* an ID no LAPIC has */
			assert_int_equal(get(e + 4, 4), 0xfec00000);
			assert_int_equal(get(e + 8, 4), 0);
			ioapics++;
			break;
		case 2:
			assert_int_equal(e[1], 10);
			/* Only the SCI: KVM's default routing has the PIT's IRQ 0 on pin 0. */
			assert_int_equal(e[3], 9);
			assert_int_equal(get(e + 4, 4), 9);
			assert_int_equal(get(e + 8, 2), 0x000d);
			overrides++;
			break;
		default:
			fail_msg("MADT entry type %u", e[0]);
		}
	}
	assert_true(e == end);
	assert_int_equal(lapics, cpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(overrides, 1);
	return fadt;
}

static void test_acpi_tables(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = config(f, NULL, 64);
	struct bz b = bz_default();
	static const unsigned counts[] = { 1, 2, MV_MAX_CPUS };

	make_bzimage(f, &b);
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
		cfg.cpus = counts[i];
		assert_int_equal(mv_setup(&f->v, &cfg), 0);
		check_acpi(f, counts[i]);
		mv_teardown(&f->v);
	}
	cfg.cpus = 2;
	assert_int_equal(mv_setup(&f->v, &cfg), 0);
}

/*
 * Two vCPUs: vCPU 0 boots; minivmm leaves vCPU 1 as KVM made it (the guest's
 * INIT/SIPI starts it) and runs it on its own thread until the end, here
 * ACPI S5 the way ACPICA writes it: SLP_TYP, then SLP_TYP | SLP_EN.
 */
static void test_smp_and_acpi_power_off(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = config(f, NULL, 64);
	struct bz b = bz_default();
	const struct vcpu_mock_step s[] = {
		{ .op = VCPU_MOCK_PIO_IN, .addr = 0x604, .len = 2, .value = 0x0001 }, /* SCI_EN */
		{ .op = VCPU_MOCK_PIO_OUT, .addr = 0x602, .len = 2, .value = 0x0120 }, /* PM1_EN */
		{ .op = VCPU_MOCK_PIO_IN, .addr = 0x602, .len = 2, .value = 0x0120 },
		{ .op = VCPU_MOCK_PIO_OUT, .addr = 0x600, .len = 2, .value = 0xffff }, /* clear status */
		{ .op = VCPU_MOCK_PIO_IN, .addr = 0x600, .len = 4, .value = 0x01200000 },
		/* SLP_EN with another SLP_TYP (S1, never offered): ignored. */
		{ .op = VCPU_MOCK_PIO_OUT, .addr = 0x604, .len = 2, .value = 1 << 10 | 0x2001 },
		{ .op = VCPU_MOCK_PIO_IN, .addr = 0x604, .len = 2, .value = 1 << 10 | 0x0001 },
		{ .op = VCPU_MOCK_PIO_OUT, .addr = 0x604, .len = 2, .value = 5 << 10 | 0x0001 },
		{ .op = VCPU_MOCK_PIO_OUT, .addr = 0x604, .len = 2, .value = 5 << 10 | 0x2001 },
	};
	const struct vcpu_mock_step spin = { .op = VCPU_MOCK_SPIN };
	struct vcpu_x86_segment cs;
	uint64_t rip = 0;
	char out[16];
	const char *msg = NULL;

	make_bzimage(f, &b);
	cfg.cpus = 2;
	assert_int_equal(mv_setup(&f->v, &cfg), 0);
	/* vCPU 1 still at the reset vector: only vCPU 0 gets boot registers. */
	assert_int_equal(vcpu_get_reg(f->v.cpu[1], VCPU_REG_X86_RIP, &rip), 0);
	assert_int_equal(rip, 0xfff0);
	assert_int_equal(vcpu_x86_get_segment(f->v.cpu[1], VCPU_X86_CS, &cs), 0);
	assert_int_equal(cs.selector, 0xf000);
	assert_int_equal(vcpu_mock_script(f->mock, 0, s, ARRAY_SIZE(s)), 0);
	assert_int_equal(vcpu_mock_script(f->mock, 1, &spin, 1), 0);
	assert_int_equal(run_captured(f, out, sizeof(out)), MV_EXIT_OFF);
	assert_string_equal(f->v.end, "powered off");
	if (vcpu_mock_failures(f->mock, &msg))
		fail_msg("%s", msg);
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), ARRAY_SIZE(s));
}

/* One run of minivmm on the script @s: the status, and what it said ended the guest. */
static int run_script(struct fx *f, const struct vcpu_mock_step *s, size_t n, const char *end)
{
	struct mv_config cfg = config(f, NULL, 64);
	struct bz b = bz_default();
	char out[16];
	const char *msg = NULL;
	int status;

	make_bzimage(f, &b);
	assert_int_equal(mv_setup(&f->v, &cfg), 0);
	assert_int_equal(vcpu_mock_script(f->mock, 0, s, n), 0);
	status = run_captured(f, out, sizeof(out));
	if (vcpu_mock_failures(f->mock, &msg))
		fail_msg("%s", msg);
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), n);
	assert_non_null(f->v.end);
	assert_string_equal(f->v.end, end);
	mv_teardown(&f->v);
	return status;
}

/*
 * Linux's resets (arch/x86/kernel/reboot.c): reboot=pci reads 0xcf9, writes
 * it back with 0x02, then 0x0e (cold: a reboot) or 0x06 (warm: with
 * minivmm's reboot=panic_warm, a panic); the FADT's reset register; the
 * i8042's 0xfe.  A 32-bit access at 0xcf8, PCI's CONFIG_ADDRESS, spans 0xcf9
 * without being it.
 */
static void test_resets_and_panic(void **state)
{
	struct fx *f = *state;
	const struct vcpu_mock_step cold[] = {
		/* pci_check_type1(): outl(0x80000000), inl, then outl of what it first read. */
		{ .op = VCPU_MOCK_PIO_OUT, .addr = 0xcf8, .len = 4, .value = 0x80000000 },
		{ .op = VCPU_MOCK_PIO_IN, .addr = 0xcf8, .len = 4, .value = 0xffffffff },
		{ .op = VCPU_MOCK_PIO_OUT, .addr = 0xcf8, .len = 4, .value = 0xffffffff },
		IN(0xcf9, 0x00), OUT(0xcf9, 0x02), IN(0xcf9, 0x02), OUT(0xcf9, 0x0e),
	};
	const struct vcpu_mock_step warm[] = {
		IN(0xcf9, 0x00), OUT(0xcf9, 0x02), OUT(0xcf9, 0x06),
	};
	const struct vcpu_mock_step acpi[] = { OUT(0xcf9, 0x0e) }; /* the FADT's RESET_VALUE */
	const struct vcpu_mock_step kbd[] = { IN(0x64, 0xff), OUT(0x64, 0xfe) };

	assert_int_equal(run_script(f, cold, ARRAY_SIZE(cold), "reset"), MV_EXIT_RESET);
	assert_int_equal(run_script(f, warm, ARRAY_SIZE(warm), "the guest panicked"), MV_EXIT_CRASH);
	assert_int_equal(run_script(f, acpi, ARRAY_SIZE(acpi), "reset"), MV_EXIT_RESET);
	assert_int_equal(run_script(f, kbd, ARRAY_SIZE(kbd), "reset"), MV_EXIT_RESET);
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
	assert_string_equal(f->v.end, "reset");
	mv_teardown(&f->v);

	assert_int_equal(mv_setup(&f->v, &cfg), 0);
	assert_int_equal(vcpu_mock_script(f->mock, 0, crash, 1), 0);
	assert_int_equal(run_captured(f, out, sizeof(out)), MV_EXIT_CRASH);
	assert_string_equal(f->v.end, "the hypervisor failed to run the guest");
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
		cmocka_unit_test_setup_teardown(test_acpi_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_smp_and_acpi_power_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resets_and_panic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_reset_and_crash, setup, teardown),
	};

	return cmocka_run_group_tests_name("minivmm-x86", tests, NULL, NULL);
}
