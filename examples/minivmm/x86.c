// SPDX-License-Identifier: MIT
/*
 * minivmm on x86_64: the Linux x86 boot protocol (Documentation/arch/x86/
 * boot.rst) for a bzImage, entered directly at its 64-bit entry point, ACPI
 * tables that describe the CPUs, the interrupt controllers and the power
 * control registers, and a 16550 UART on COM1.  There is no firmware:
 * minivmm is the boot loader, so vCPU 0 starts in long mode on identity-
 * mapped page tables; the other vCPUs wait for the INIT and SIPI that Linux
 * sends from its LAPIC to start them at its real-mode trampoline.
 *
 * Guest physical map (RAM from 0, at most 3 GiB):
 *   0x000500  GDT
 *   0x007000  boot_params (the "zero page")
 *   0x008000  a stack page
 *   0x009000  page tables: PML4, PDPT, 4 PDs mapping 0..4 GiB with 2 MiB pages
 *   0x020000  command line
 *   0x09fc00  reserved up to 1 MiB (a PC's EBDA, VGA memory and BIOS), holding
 *   0x0e0000  the ACPI tables: RSDP, XSDT, FACS, FADT, MADT, DSDT
 *   0x100000  the protected-mode kernel (the bzImage after its setup code)
 *   top       the initrd, page aligned, below the kernel's initrd_addr_max
 *   0xfec00000  the IOAPIC, 0xfee00000 the LAPICs (KVM's)
 * Ports: COM1 at 0x3f8 (IRQ 4); ACPI PM1a event block at 0x600, PM1a
 * control at 0x604 (the SCI is IRQ 9, never raised); the reset control
 * register at 0xcf9 and the i8042's command port 0x64 (its reset command);
 * the 8259 PICs (0x20, 0xa0, 0x4d0) and the 8254 PIT (0x40-0x43, 0x61) are
 * KVM's (vcpu_x86_create_irqchip()); every other port reads as all ones
 * (nothing there).
 *
 * The guest's end: ACPI S5 (a PM1a control write) powers off; 0xcf9, the
 * i8042 reset and a triple fault reset; a panic is a warm 0xcf9 reset (see
 * x86_pio()).  With KVM's in-kernel LAPIC the HLT of a halted machine never
 * reaches minivmm, so without ACPI's registers it could not see the end.
 */
#define _GNU_SOURCE
#include "minivmm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GDT_GPA 0x500ull
#define ZERO_PAGE_GPA 0x7000ull
#define STACK_TOP 0x9000ull
#define PML4_GPA 0x9000ull
#define PDPT_GPA 0xa000ull
#define PD_GPA 0xb000ull /* one page per GiB */
#define IDENT_GIB 4
#define CMDLINE_GPA 0x20000ull
#define CMDLINE_MAX 0x10000ull
#define LOW_END 0x9fc00ull
#define HIGH_GPA 0x100000ull
#define KERNEL_GPA HIGH_GPA
#define STARTUP_64 0x200 /* the 64-bit entry: load address + 0x200 */
#define RAM_MAX (3ull << 30) /* RAM is one block from 0: it must end below the 32-bit hole */

#define DEFAULT_CMDLINE "console=ttyS0 earlyprintk=serial"
#define COM1_GSI 4 /* IRQ 4: the PIC pin, and the IOAPIC pin of the same number */

/* struct boot_params offsets (boot.rst, zero-page.rst); the setup header starts at 0x1f1. */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0
#define E820_RAM 1
#define E820_RESERVED 2
#define HDR_START 0x1f1
#define HDR_SETUP_SECTS 0x1f1
#define HDR_BOOT_FLAG 0x1fe
#define HDR_LEN_BYTE 0x201 /* the header ends at 0x202 + this byte */
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_HEAP_END_PTR 0x224
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_RELOCATABLE 0x234
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_PREF_ADDRESS 0x258
#define HDR_INIT_SIZE 0x260
#define HDR_MIN_SIZE 0x264 /* through init_size */
#define HDRS_MAGIC 0x53726448u /* "HdrS" */
#define CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x1

#define CR0_PE 0x1ull
#define CR0_ET 0x10ull
#define CR0_NE 0x20ull
#define CR0_PG 0x80000000ull
#define CR4_PAE 0x20ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull
#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_PS 0x80ull

static uint64_t le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

static void put(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* What the setup header says about loading this bzImage. */
struct bzimage {
	size_t setup_size;   /* bytes of real-mode setup before the protected-mode kernel */
	size_t hdr_end;      /* the setup header is [0x1f1, hdr_end) of the file */
	uint64_t run_gpa;    /* where the kernel decompresses to and runs */
	uint32_t init_size;  /* bytes it needs there before it reads the memory map */
	uint32_t initrd_max; /* highest byte the initrd may occupy */
	uint32_t cmdline_size;
};

static int parse_bzimage(struct mv_vmm *v, const struct mv_file *f, struct bzimage *bz)
{
	const uint8_t *d = f->data;
	unsigned sects, version;
	uint64_t align;

	if (f->size < HDR_MIN_SIZE || le(d + HDR_BOOT_FLAG, 2) != 0xaa55 ||
	    le(d + HDR_MAGIC, 4) != HDRS_MAGIC)
		return mv_fail(v, -ENOEXEC, "the kernel %s is not a bzImage (no 0xAA55 boot flag and "
			       "\"HdrS\" setup header; a vmlinux must be made into arch/x86/boot/"
			       "bzImage)", v->cfg.kernel);
	version = (unsigned)le(d + HDR_VERSION, 2);
	if (version < 0x020c)
		return mv_fail(v, -ENOEXEC, "the bzImage's boot protocol %u.%02u is too old: the "
			       "64-bit entry needs 2.12 (Linux 3.8)", version >> 8, version & 0xff);
	if (!(le(d + HDR_XLOADFLAGS, 2) & XLF_KERNEL_64))
		return mv_fail(v, -ENOEXEC, "the bzImage has no 64-bit entry point (XLF_KERNEL_64 "
			       "is clear: a 32-bit kernel?)");
	/* A setup_sects of 0 means 4; the boot sector itself is one more. */
	sects = d[HDR_SETUP_SECTS] ? d[HDR_SETUP_SECTS] : 4;
	bz->setup_size = (sects + 1) * 512ul;
	bz->hdr_end = 0x202 + (size_t)d[HDR_LEN_BYTE]; /* at most 0x301: inside the setup */
	if (bz->setup_size >= f->size)
		return mv_fail(v, -ENOEXEC, "the bzImage is truncated: %zu bytes, %zu of them setup",
			       f->size, bz->setup_size);
	/*
	 * The decompressor (compressed/head_64.S) runs from the load address
	 * rounded up to kernel_alignment if relocatable, but never below
	 * LOAD_PHYSICAL_ADDR, which pref_address holds; init_size counts from there.
	 */
	bz->run_gpa = le(d + HDR_PREF_ADDRESS, 8);
	align = le(d + HDR_KERNEL_ALIGNMENT, 4);
	if (d[HDR_RELOCATABLE] && align && !(align & (align - 1)) &&
	    ((KERNEL_GPA + align - 1) & ~(align - 1)) > bz->run_gpa)
		bz->run_gpa = (KERNEL_GPA + align - 1) & ~(align - 1);
	if (bz->run_gpa > (1ull << 40))
		return mv_fail(v, -ENOEXEC, "the bzImage's pref_address 0x%llx is implausible",
			       (unsigned long long)bz->run_gpa);
	bz->init_size = (uint32_t)le(d + HDR_INIT_SIZE, 4);
	bz->initrd_max = (uint32_t)le(d + HDR_INITRD_ADDR_MAX, 4);
	bz->cmdline_size = (uint32_t)le(d + HDR_CMDLINE_SIZE, 4);
	return 0;
}

static void e820(uint8_t *bp, unsigned i, uint64_t addr, uint64_t size, uint32_t type)
{
	uint8_t *e = bp + BP_E820_TABLE + 20 * i; /* packed {u64 addr, u64 size, u32 type} */

	put(e, addr, 8);
	put(e + 8, size, 8);
	put(e + 16, type, 4);
	bp[BP_E820_ENTRIES] = (uint8_t)(i + 1);
}

/* The GDT boot.rst asks for: __BOOT_CS (0x10) 64-bit code, __BOOT_DS (0x18) data, a TSS. */
static void build_tables(uint8_t *ram)
{
	static const uint64_t gdt[6] = {
		0, 0,
		0x00af9b000000ffffull, /* 0x10: code, L=1, DPL 0 */
		0x00cf93000000ffffull, /* 0x18: data, 4 GiB, writable */
		0x00008b0000000067ull, /* 0x20: busy 64-bit TSS at 0, 104 bytes (two slots) */
		0,
	};

	for (unsigned i = 0; i < 6; i++)
		put(ram + GDT_GPA + 8 * i, gdt[i], 8);
	/* Identity map 0..4 GiB: boot.rst wants the kernel, zero page and command line mapped. */
	put(ram + PML4_GPA, PDPT_GPA | PTE_P | PTE_RW, 8);
	for (uint64_t g = 0; g < IDENT_GIB; g++) {
		put(ram + PDPT_GPA + 8 * g, (PD_GPA + 0x1000 * g) | PTE_P | PTE_RW, 8);
		for (uint64_t i = 0; i < 512; i++)
			put(ram + PD_GPA + 0x1000 * g + 8 * i,
			    (g << 30 | i << 21) | PTE_P | PTE_RW | PTE_PS, 8);
	}
}

/* ------------------------------------------------------------------------ */
/* ACPI tables (section numbers of the ACPI 6.4 specification).  Linux finds */
/* the RSDP through boot_params.acpi_rsdp_addr or by scanning 0xe0000-0xfffff */
/* (5.2.5.1); the whole block lies in the range e820 reports reserved.      */

#define ACPI_GPA 0xe0000ull
#define RSDP_GPA ACPI_GPA
#define XSDT_GPA (ACPI_GPA + 0x40)
#define FACS_GPA (ACPI_GPA + 0x80) /* 64-byte aligned (5.2.10) */
#define FADT_GPA (ACPI_GPA + 0x100)
#define MADT_GPA (ACPI_GPA + 0x300)
#define DSDT_GPA (ACPI_GPA + 0x400)
#define IOAPIC_GPA 0xfec00000u
#define LAPIC_GPA 0xfee00000u
#define SCI_IRQ 9
#define PM1A_EVT 0x600 /* PM1 status (2 bytes), PM1 enable (2 bytes): 4.8.3.1 */
#define PM1A_CNT 0x604 /* PM1 control (2 bytes): 4.8.3.2 */
#define PM1_SCI_EN 0x0001
#define PM1_SLP_TYP(v) (((v) >> 10) & 7)
#define PM1_SLP_EN 0x2000
#define S5_SLP_TYP 5   /* what \_S5 tells the OS to write to SLP_TYP */
#define RESET_PORT 0xcf9
#define CF9_SYS_RST 0x02  /* Intel ICH reset control register: a hard reset ... */
#define CF9_RST_CPU 0x04  /* ... starts when this bit is written 1 ... */
#define CF9_FULL_RST 0x08 /* ... and cycles power (a cold reset) with this one */
#define I8042_CMD 0x64
#define I8042_RESET 0xfe  /* pulse the reset line */

#define FADT_LEN 276   /* ACPI 6.0 and later (5.2.9) */
#define MADT_LEN(n) (44 + 8 * (n) + 12 + 10)

static void acpi_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put(t + 4, len, 4);
	t[8] = rev;
	memcpy(t + 10, "LIBVCP", 6);   /* OEM ID */
	memcpy(t + 16, "MINIVMM ", 8); /* OEM table ID */
	put(t + 24, 1, 4);             /* OEM revision */
	memcpy(t + 28, "LVCP", 4);     /* creator ID */
	put(t + 32, 1, 4);             /* creator revision */
}

/* Set the byte at @at so that the @len bytes from @t sum to zero (5.2.5.3, 5.2.6). */
static void acpi_checksum(uint8_t *t, size_t len, size_t at)
{
	uint8_t sum = 0;

	t[at] = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + t[i]);
	t[at] = (uint8_t)-sum;
}

static void build_acpi(uint8_t *ram, unsigned cpus)
{
	/*
	 * The DSDT's AML (chapter 20), all it holds: Name (_S5, Package () {5, 0,
	 * 0, 0}), the value to write to PM1a_CNT.SLP_TYP for S5 (7.4.2).  0x08
	 * NameOp, 0x12 PackageOp, PkgLength 7 (from itself to the end), four
	 * elements: 0x0a BytePrefix 5, then ZeroOp three times.  Without \_S5
	 * Linux has no ACPI power-off.
	 */
	static const uint8_t aml[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04,
				       0x0a, S5_SLP_TYP, 0x00, 0x00, 0x00 };
	uint8_t *rsdp = ram + RSDP_GPA, *xsdt = ram + XSDT_GPA, *facs = ram + FACS_GPA;
	uint8_t *fadt = ram + FADT_GPA, *madt = ram + MADT_GPA, *dsdt = ram + DSDT_GPA;
	uint8_t *e;

	memset(ram + ACPI_GPA, 0, DSDT_GPA + 36 + sizeof(aml) - ACPI_GPA);

	/* RSDP (5.2.5.3): revision 2, the XSDT only. */
	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, "LIBVCP", 6);
	rsdp[15] = 2;
	put(rsdp + 20, 36, 4);
	put(rsdp + 24, XSDT_GPA, 8);
	acpi_checksum(rsdp, 20, 8);  /* the ACPI 1.0 part */
	acpi_checksum(rsdp, 36, 32); /* the whole */

	/* XSDT (5.2.8): the FADT and the MADT. */
	acpi_header(xsdt, "XSDT", 36 + 16, 1);
	put(xsdt + 36, FADT_GPA, 8);
	put(xsdt + 44, MADT_GPA, 8);
	acpi_checksum(xsdt, 36 + 16, 9);

	/* FACS (5.2.10): required with the fixed hardware; nothing in it is used. */
	memcpy(facs, "FACS", 4);
	put(facs + 4, 64, 4);
	facs[32] = 2; /* version */

	/*
	 * FADT (5.2.9): the fixed hardware.  PM1a event and control blocks
	 * (the control register is how S5 is entered), no PM timer or GPE
	 * blocks, no SMI command port (so already in ACPI mode), the SCI on
	 * IRQ 9, and the reset register: port 0xcf9, value 0x0e (a full reset,
	 * what Linux itself writes there for a cold reboot; see x86_pio()).
	 */
	acpi_header(fadt, "FACP", FADT_LEN, 6);
	put(fadt + 36, FACS_GPA, 4);     /* FIRMWARE_CTRL */
	put(fadt + 40, DSDT_GPA, 4);     /* DSDT */
	put(fadt + 46, SCI_IRQ, 2);      /* SCI_INT */
	put(fadt + 56, PM1A_EVT, 4);     /* PM1a_EVT_BLK */
	put(fadt + 64, PM1A_CNT, 4);     /* PM1a_CNT_BLK */
	fadt[88] = 4;                    /* PM1_EVT_LEN */
	fadt[89] = 2;                    /* PM1_CNT_LEN */
	put(fadt + 96, 0x0fff, 2);       /* P_LVL2_LAT: > 100, no C2 */
	put(fadt + 98, 0x0fff, 2);       /* P_LVL3_LAT: > 1000, no C3 */
	/* IAPC_BOOT_ARCH (5.2.9.3): no VGA, no CMOS RTC; no 8042, so Linux does not probe one. */
	put(fadt + 109, 1u << 2 | 1u << 5, 2);
	/* Flags (5.2.9.1): WBINVD, PROC_C1, PWR_BUTTON and SLP_BUTTON (none fixed), RESET_REG_SUP. */
	put(fadt + 112, 1u << 0 | 1u << 2 | 1u << 4 | 1u << 5 | 1u << 10, 4);
	fadt[116] = 1;                   /* RESET_REG: system I/O, ... */
	fadt[117] = 8;                   /* ... 8 bits wide, ... */
	fadt[119] = 1;                   /* ... byte access, ... */
	put(fadt + 120, RESET_PORT, 8);  /* ... at 0xcf9 */
	fadt[128] = CF9_FULL_RST | CF9_RST_CPU | CF9_SYS_RST; /* RESET_VALUE */
	put(fadt + 140, DSDT_GPA, 8);    /* X_DSDT */
	acpi_checksum(fadt, FADT_LEN, 9);

	/*
	 * MADT (5.2.12): the LAPICs at their usual address, the 8259s present
	 * (PCAT_COMPAT: Linux masks them), then one Processor Local APIC per
	 * vCPU, whose APIC ID KVM makes the vCPU id, and the IOAPIC with GSIs
	 * from 0.  No override for IRQ 0: KVM's default GSI routing (KVM
	 * creates it with the irqchip, arch/x86/kvm/irq.c) wires GSI n to
	 * IOAPIC pin n, so the PIT's IRQ 0 is on pin 0 (QEMU and kvmtool
	 * route GSI 0 to pin 2 themselves, hence their override).  The SCI,
	 * IRQ 9, is declared level-triggered, active high (5.2.12.5), which
	 * is how KVM's IOAPIC sees a line.
	 */
	acpi_header(madt, "APIC", MADT_LEN(cpus), 5);
	put(madt + 36, LAPIC_GPA, 4);
	put(madt + 40, 1, 4); /* PCAT_COMPAT */
	e = madt + 44;
	for (unsigned i = 0; i < cpus; i++, e += 8) {
		e[0] = 0;          /* Processor Local APIC (5.2.12.2) */
		e[1] = 8;
		e[2] = (uint8_t)i; /* ACPI processor UID */
		e[3] = (uint8_t)i; /* APIC ID */
		put(e + 4, 1, 4);  /* enabled */
	}
	e[0] = 1;                      /* I/O APIC (5.2.12.3) */
	e[1] = 12;
	e[2] = (uint8_t)cpus;          /* its ID: after the LAPICs' */
	put(e + 4, IOAPIC_GPA, 4);
	put(e + 8, 0, 4);              /* global system interrupt base */
	e += 12;
	e[0] = 2;                      /* Interrupt Source Override (5.2.12.5) */
	e[1] = 10;
	e[2] = 0;                      /* ISA */
	e[3] = SCI_IRQ;
	put(e + 4, SCI_IRQ, 4);
	put(e + 8, 0x000d, 2);         /* active high (01), level-triggered (11 << 2) */
	acpi_checksum(madt, MADT_LEN(cpus), 9);

	acpi_header(dsdt, "DSDT", 36 + sizeof(aml), 2);
	memcpy(dsdt + 36, aml, sizeof(aml));
	acpi_checksum(dsdt, 36 + sizeof(aml), 9);
}

static int set_boot_regs(struct vcpu *cpu)
{
	/*
	 * Long mode in one go: one vcpu_set_regs() is one KVM_SET_SREGS (then
	 * one KVM_SET_REGS), so the driver only ever sees the final state.
	 * Register by register, each KVM_SET_SREGS would be checked on its own
	 * and an intermediate one (CR0.PG before EFER.LME) may be refused, as
	 * the paravirtual kvm_pvm driver does.
	 */
#define SEG(which, ...) { .id = VCPU_REG_X86_SEG(which), .seg = { __VA_ARGS__ } }
#define DATA_SEG(which) SEG(which, .limit = 0xffffffff, .selector = 0x18, .type = 0x3, .present = 1, \
			.db = 1, .s = 1, .g = 1)
	static const struct vcpu_reg regs[] = {
		{ .id = VCPU_REG_X86_CR4, .value = CR4_PAE },
		{ .id = VCPU_REG_X86_CR0, .value = CR0_PE | CR0_ET | CR0_NE | CR0_PG },
		{ .id = VCPU_REG_X86_EFER, .value = EFER_LME | EFER_LMA },
		{ .id = VCPU_REG_X86_CR3, .value = PML4_GPA },
		SEG(VCPU_X86_GDT, .base = GDT_GPA, .limit = 6 * 8 - 1),
		/* __BOOT_CS (0x10) 64-bit code, __BOOT_DS (0x18) everywhere else. */
		SEG(VCPU_X86_CS, .limit = 0xffffffff, .selector = 0x10, .type = 0xb, .present = 1,
		    .s = 1, .l = 1, .g = 1),
		DATA_SEG(VCPU_X86_DS), DATA_SEG(VCPU_X86_ES), DATA_SEG(VCPU_X86_FS),
		DATA_SEG(VCPU_X86_GS), DATA_SEG(VCPU_X86_SS),
		/* VMX enters long mode only with a usable busy TSS in TR; Linux loads its own later. */
		SEG(VCPU_X86_TR, .limit = 0x67, .selector = 0x20, .type = 0xb, .present = 1),
		{ .id = VCPU_REG_X86_RFLAGS, .value = 0x2 }, /* bit 1 is always set; IF clear */
		{ .id = VCPU_REG_X86_RIP, .value = KERNEL_GPA + STARTUP_64 },
		{ .id = VCPU_REG_X86_RSI, .value = ZERO_PAGE_GPA },
		/* startup_64 sets its own stack; a valid one is free. */
		{ .id = VCPU_REG_X86_RSP, .value = STACK_TOP },
	};
#undef DATA_SEG
#undef SEG

	return vcpu_set_regs(cpu, regs, sizeof(regs) / sizeof(regs[0]));
}

static int x86_setup(struct mv_vmm *v)
{
	const uint64_t ram_end = v->ram_gpa + v->ram_size;
	char *cmdline = mv_cmdline(v, DEFAULT_CMDLINE);
	struct mv_file kernel = { .fd = -1 }, initrd = { .fd = -1 };
	struct bzimage bz = { 0 };
	uint64_t need, limit, initrd_gpa = 0;
	uint8_t *bp = v->ram + ZERO_PAGE_GPA; /* RAM starts at GPA 0: offsets are addresses */
	int r;

	if (!cmdline)
		return -ENOMEM;
	r = mv_open_file(v, "kernel", v->cfg.kernel, &kernel);
	if (r < 0)
		goto out;
	if ((r = parse_bzimage(v, &kernel, &bz)) < 0)
		goto out;
	if (strlen(cmdline) > bz.cmdline_size || strlen(cmdline) >= CMDLINE_MAX) {
		r = mv_fail(v, -EINVAL, "the command line is %zu bytes (with minivmm's \"%s\"): "
			    "this kernel takes at most %u", strlen(cmdline), mv_arch_x86_64.cmdline_prefix,
			    bz.cmdline_size);
		goto out;
	}
	if (v->cfg.initrd && (r = mv_open_file(v, "initrd", v->cfg.initrd, &initrd)) < 0)
		goto out;
	/* The compressed kernel at 1 MiB and the decompressor's buffer must both fit. */
	need = bz.run_gpa + bz.init_size;
	if (need < KERNEL_GPA + (kernel.size - bz.setup_size))
		need = KERNEL_GPA + (kernel.size - bz.setup_size);
	/* ramdisk_image is 32 bits; initrd_addr_max keeps it lower still. */
	limit = (uint64_t)bz.initrd_max + 1 < ram_end ? (uint64_t)bz.initrd_max + 1 : ram_end;
	if (initrd.size && initrd.size <= limit)
		initrd_gpa = (limit - initrd.size) & ~0xfffull;
	if (need > ram_end || (initrd.size && (initrd.size > limit || initrd_gpa < need))) {
		r = mv_fail(v, -ENOMEM, "--mem %llu MiB is too little: the kernel needs the first "
			    "%llu MiB (init_size %u KiB from 0x%llx) and the initrd %zu KiB more",
			    (unsigned long long)v->cfg.mem_mib,
			    (unsigned long long)((need + (1 << 20) - 1) >> 20), bz.init_size >> 10,
			    (unsigned long long)bz.run_gpa, initrd.size >> 10);
		goto out;
	}

	/* boot.rst, 64-bit boot protocol: a zeroed zero page with the image's setup header. */
	memset(bp, 0, 4096);
	memcpy(bp + HDR_START, kernel.data + HDR_START, bz.hdr_end - HDR_START);
	bp[HDR_TYPE_OF_LOADER] = 0xff; /* a loader without an assigned id */
	bp[HDR_LOADFLAGS] |= CAN_USE_HEAP;
	put(bp + HDR_HEAP_END_PTR, 0xfe00, 2);
	put(bp + HDR_CMD_LINE_PTR, CMDLINE_GPA, 4);
	memcpy(v->ram + CMDLINE_GPA, cmdline, strlen(cmdline) + 1);
	put(bp + HDR_RAMDISK_IMAGE, initrd_gpa, 4);
	put(bp + HDR_RAMDISK_SIZE, initrd.size, 4);
	/* zero-page.rst: where the RSDP is, so that Linux need not scan for it. */
	put(bp + BP_ACPI_RSDP_ADDR, RSDP_GPA, 8);
	/* The reserved range holds the ACPI tables: Linux maps them from there. */
	e820(bp, 0, 0, LOW_END, E820_RAM);
	e820(bp, 1, LOW_END, HIGH_GPA - LOW_END, E820_RESERVED);
	e820(bp, 2, HIGH_GPA, ram_end - HIGH_GPA, E820_RAM);
	build_tables(v->ram);
	build_acpi(v->ram, v->cfg.cpus);
	r = mv_load_file(v, "kernel", &kernel, bz.setup_size, v->ram + KERNEL_GPA,
			 kernel.size - bz.setup_size);
	if (r == 0 && initrd.size)
		r = mv_load_file(v, "initrd", &initrd, 0, v->ram + initrd_gpa, initrd.size);
	if (r < 0)
		goto out;

	/* Only vCPU 0: the others start where Linux's SIPI sends them. */
	r = set_boot_regs(v->cpu[0]);
	if (r < 0)
		r = mv_fail(v, r, "cannot set the boot registers: %s", vcpu_last_error(v->cpu[0]));
out:
	mv_close_file(&kernel);
	mv_close_file(&initrd);
	free(cmdline);
	return r;
}

/* The in-kernel PICs, IOAPIC, LAPIC and PIT; they must exist before the vCPU. */
static int x86_vm_setup(struct mv_vmm *v)
{
	int r;

	/* A memory slot over the IOAPIC or LAPIC page would hide them (and KVM's TSS). */
	if ((v->cfg.mem_mib << 20) > RAM_MAX)
		return mv_fail(v, -EINVAL, "--mem %llu MiB: x86_64 RAM must end by 3 GiB (the "
			       "IOAPIC, the LAPIC and KVM's TSS lie above)",
			       (unsigned long long)v->cfg.mem_mib);
	v->pm1[PM1A_CNT - PM1A_EVT] = PM1_SCI_EN;
	r = vcpu_x86_create_irqchip(v->vm, VCPU_X86_IRQCHIP_PIT);

	/* ACRN's hypervisor has its own PIC, IOAPIC and LAPIC; a PIT would be ours (none). */
	if (r == -EOPNOTSUPP && vcpu_hv_backend(v->hv) == VCPU_BACKEND_ACRN)
		return 0;
	return r < 0 ? mv_fail(v, r, "cannot create the interrupt controllers and PIT: %s",
			       vcpu_vm_last_error(v->vm)) : 0;
}

/* ------------------------------------------------------------------------ */
/* COM1: a 16550 that transmits at once and never receives, so its only     */
/* interrupt is "transmitter empty" (THRE), on IRQ 4.                        */

#define COM1 0x3f8
#define LCR_DLAB 0x80
#define IER_THRI 0x02            /* interrupt when the transmitter is empty */
#define IIR_NONE 0x01            /* no interrupt pending; no FIFOs: Linux sees a 16450 */
#define IIR_THRI 0x02            /* the transmitter-empty interrupt is pending */
#define MCR_OUT2 0x08            /* on a PC, gates the UART's interrupt onto its IRQ line */
#define LSR_IDLE 0x60            /* THRE | TEMT: ready to send, nothing received */
#define MSR_READY 0xb0           /* DCD | DSR | CTS: the other end is there */

/* Called with pio_lock held. */
static uint8_t uart_read(struct mv_vmm *v, unsigned reg)
{
	bool dlab = v->uart.lcr & LCR_DLAB;

	switch (reg) {
	case 0: return dlab ? v->uart.dll : 0; /* RBR: nothing received */
	case 1: return dlab ? v->uart.dlm : v->uart.ier;
	case 2:
		/* Reading IIR while THRE is the interrupt it reports clears it. */
		if ((v->uart.ier & IER_THRI) && v->uart.thre) {
			v->uart.thre = false;
			return IIR_THRI;
		}
		return IIR_NONE;
	case 3: return v->uart.lcr;
	case 4: return v->uart.mcr;
	case 5: return LSR_IDLE;
	case 6: return MSR_READY;
	default: return v->uart.scr;
	}
}

/* Called with pio_lock held. */
static void uart_write(struct mv_vmm *v, unsigned reg, uint8_t val)
{
	bool dlab = v->uart.lcr & LCR_DLAB;

	switch (reg) {
	case 0:
		if (dlab) {
			v->uart.dll = val;
		} else {
			/* Writing THR clears THRE; the byte leaves at once, so it is set again. */
			mv_console_putc(v, val);
			v->uart.thre = true;
		}
		break;
	case 1:
		if (dlab) {
			v->uart.dlm = val;
			break;
		}
		/* Enabling THRI while THR is empty (it always is) raises the interrupt. */
		if ((val & IER_THRI) && !(v->uart.ier & IER_THRI))
			v->uart.thre = true;
		v->uart.ier = val & 0x0f; /* the four defined enables */
		break;
	case 3: v->uart.lcr = val; break;
	case 4: v->uart.mcr = val & 0x1f; break;
	case 7: v->uart.scr = val; break;
	default: break; /* FCR (no FIFOs), and LSR/MSR are read-only */
	}
}

/*
 * Drive IRQ 4 with the UART's interrupt output, as a level: KVM's PIC and
 * IOAPIC see an edge when it rises, whichever trigger mode the guest picked.
 * Called with pio_lock held, so the line follows the registers in order.
 */
static int uart_update_irq(struct mv_vmm *v)
{
	int level = (v->uart.ier & IER_THRI) && v->uart.thre && (v->uart.mcr & MCR_OUT2);
	int r;

	if (level == v->uart.irq)
		return 0;
	r = vcpu_vm_set_irq_line(v->vm, COM1_GSI, level);
	if (r < 0) {
		fprintf(stderr, "minivmm: COM1 cannot drive IRQ %d: %s\n", COM1_GSI,
			vcpu_vm_last_error(v->vm));
		return r;
	}
	v->uart.irq = level;
	return 0;
}

/*
 * The ACPI PM1a registers (ACPI 6.4, 4.8.3), one byte at @off from the event
 * block: status reads 0 (no fixed event is ever raised), enable keeps what
 * the guest wrote, control keeps SCI_EN set (already in ACPI mode) and acts
 * on SLP_EN: with the SLP_TYP of \_S5 it is the power-off.  No other sleep
 * state is offered, so any other SLP_TYP is ignored.  Under pio_lock.
 */
static int pm1_access(struct mv_vmm *v, struct vcpu *cpu, unsigned off, bool write, uint8_t *val)
{
	const unsigned cnt_hi = PM1A_CNT - PM1A_EVT + 1; /* SLP_TYP and SLP_EN are bits 10-13 */

	if (!write) {
		*val = off < 2 ? 0 : v->pm1[off];
		return 0;
	}
	if (off < 2)
		return 0; /* status bits clear when written 1: none is ever set */
	if (off == cnt_hi && (*val << 8 & PM1_SLP_EN) && PM1_SLP_TYP(*val << 8) == S5_SLP_TYP) {
		mv_finish(v, cpu, MV_EXIT_OFF, "powered off");
		return MV_STOP;
	}
	v->pm1[off] = off == cnt_hi ? (uint8_t)(*val & ~(PM1_SLP_EN >> 8)) : *val;
	v->pm1[PM1A_CNT - PM1A_EVT] |= PM1_SCI_EN;
	return 0;
}

/*
 * The reset control register at 0xcf9 (Intel's ICH/PCH datasheets), as
 * Linux drives it: the FADT's reset register (ACPI reboot, its default) and
 * reboot=pci (arch/x86/kernel/reboot.c, native_machine_emergency_restart(),
 * BOOT_CF9_FORCE) both end in a write with RST_CPU set.  reboot=pci reads
 * the register, writes it back with SYS_RST, then with 0x06 (RST_CPU |
 * SYS_RST) for a warm reset or 0x0e (and FULL_RST) for a cold one, so the
 * register must read back what was written.  minivmm's own command line
 * options (reboot=pci,panic_warm, see mv_cmdline()) make every ordinary
 * reboot cold and a panic warm: a warm reset here is the guest's panic.
 * Under pio_lock.
 */
static int cf9_access(struct mv_vmm *v, struct vcpu *cpu, struct vcpu_io *io)
{
	if (!io->is_write) {
		io->data[0] = v->cf9;
		return 0;
	}
	if (!(io->data[0] & CF9_RST_CPU)) {
		v->cf9 = io->data[0] & (CF9_SYS_RST | CF9_FULL_RST);
		return 0;
	}
	if (io->data[0] & CF9_FULL_RST)
		mv_finish(v, cpu, MV_EXIT_RESET, "reset");
	else
		mv_finish(v, cpu, MV_EXIT_CRASH, "the guest panicked");
	return MV_STOP;
}

/* The ports minivmm serves; byte by byte, so a 16- or 32-bit access covers the ports it spans. */
static int x86_pio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct mv_vmm *v = ctx;
	int r = 0;

	atomic_fetch_add(&v->exits, 1);
	/* The i8042's "pulse the reset line": Linux's reboot=kbd, and its fallback. */
	if (io->addr == I8042_CMD && io->is_write && io->data[0] == I8042_RESET) {
		mv_finish(v, cpu, MV_EXIT_RESET, "reset");
		return MV_STOP;
	}
	pthread_mutex_lock(&v->pio_lock);
	/* Only a byte access is 0xcf9: a 32-bit one at 0xcf8 is PCI's CONFIG_ADDRESS. */
	if (io->addr == RESET_PORT && io->len == 1) {
		r = cf9_access(v, cpu, io);
		pthread_mutex_unlock(&v->pio_lock);
		return r;
	}
	for (uint32_t i = 0; i < io->len && i < sizeof(io->data) && r == 0; i++) {
		uint64_t port = io->addr + i;

		if (port >= COM1 && port < COM1 + 8) {
			if (io->is_write)
				uart_write(v, (unsigned)(port - COM1), io->data[i]);
			else
				io->data[i] = uart_read(v, (unsigned)(port - COM1));
			r = uart_update_irq(v);
		} else if (port >= PM1A_EVT && port < PM1A_CNT + 2) {
			r = pm1_access(v, cpu, (unsigned)(port - PM1A_EVT), io->is_write, &io->data[i]);
		} else if (!io->is_write) {
			io->data[i] = 0xff;
		}
	}
	pthread_mutex_unlock(&v->pio_lock);
	return r;
}

/* No MMIO device: reads as zero, writes are dropped. */
static int x86_mmio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct mv_vmm *v = ctx;

	(void)cpu;
	atomic_fetch_add(&v->exits, 1);
	if (!io->is_write)
		memset(io->data, 0, sizeof(io->data));
	return VCPU_CONTINUE;
}

static int x86_other(void *ctx, struct vcpu *cpu, const struct vcpu_exit *exit)
{
	static const struct vcpu_system_event reset = { .type = VCPU_SYSTEM_EVENT_RESET };
	struct mv_vmm *v = ctx;

	switch (exit->kind) {
	case VCPU_EXIT_HALT:
		/* Not with an in-kernel LAPIC (it waits for the interrupt): resume the idle loop. */
		atomic_fetch_add(&v->exits, 1);
		return VCPU_CONTINUE;
	case VCPU_EXIT_SHUTDOWN:
		/* A triple fault: how x86 resets when nothing else can (reboot=t). */
		return mv_on_system_event(ctx, cpu, &reset);
	case VCPU_EXIT_INTERNAL_ERROR:
		/* KVM_INTERNAL_ERROR_EMULATION (Documentation/virt/kvm/api.rst). */
		if (vcpu_hv_backend(v->hv) == VCPU_BACKEND_KVM && exit->u.internal.code == 1)
			fprintf(stderr, "minivmm: vCPU %u: KVM's instruction emulator failed on an "
				"instruction of the guest\n", vcpu_id(cpu));
		return mv_on_other(ctx, cpu, exit);
	default:
		return mv_on_other(ctx, cpu, exit);
	}
}

const struct mv_arch mv_arch_x86_64 = {
	.name = "x86_64",
	.arch = VCPU_ARCH_X86_64,
	.ram_gpa = 0,
	/* A panic restarts warm through 0xcf9 (x86_pio(), minivmm.c mv_cmdline()). */
	.cmdline_prefix = "panic=-1 reboot=pci,panic_warm",
	.vm_setup = x86_vm_setup,
	.setup = x86_setup,
	.handlers = {
		.mmio = x86_mmio,
		.pio = x86_pio,
		.system_event = mv_on_system_event,
		.other = x86_other,
	},
};
