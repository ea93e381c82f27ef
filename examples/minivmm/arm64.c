// SPDX-License-Identifier: MIT
/*
 * minivmm on arm64: the Linux arm64 boot protocol (Documentation/arch/arm64/
 * booting.rst) and a "virt"-like machine described by a device tree built
 * with libfdt: RAM at 2 GiB, the in-kernel GICv3, the arch timer, PSCI
 * (in-kernel, HVC conduit) and a PL011 UART emulated here.
 *
 * Guest physical map:
 *   0x08000000  GICv3 distributor (64 KiB)
 *   0x080a0000  GICv3 redistributors (128 KiB per vCPU)
 *   0x09000000  PL011 UART (4 KiB)
 *   0x80000000  RAM: kernel at text_offset, ..., initrd, DTB in the top 2 MiB
 */
#define _GNU_SOURCE
#include "minivmm.h"

#include <vcpu/arm64.h>

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RAM_GPA 0x80000000ull
#define GICD_GPA 0x08000000ull
#define GICR_GPA 0x080a0000ull
#define GICR_SIZE 0x20000ull /* per vCPU */
#define UART_GPA 0x09000000ull
#define UART_SIZE 0x1000ull
#define GIC_NR_IRQS 128
#define UART_SPI 1           /* INTID 33 */
#define DTB_MAX (2ull << 20)
#define FDT_BUF 0x10000

#define PHANDLE_GIC 1
#define PHANDLE_CLK 2

/* booting.rst: the 64-byte Image header. */
#define IMAGE_MAGIC 0x644d5241u /* "ARM\x64" */
#define IMAGE_HDR_SIZE 64
#define TEXT_OFFSET_LEGACY 0x80000ull

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int mv_arm64_parse_image(const struct mv_file *f, struct mv_arm64_image *out, char *err,
			 size_t errlen)
{
	uint32_t magic;

	if (f->size < IMAGE_HDR_SIZE) {
		snprintf(err, errlen, "the kernel is %zu bytes: too small for an arm64 Image", f->size);
		return -ENOEXEC;
	}
	magic = (uint32_t)le64(f->data + 56);
	if (magic != IMAGE_MAGIC) {
		snprintf(err, errlen, "the kernel has no arm64 Image magic (0x%08x at offset 56; a "
			 "compressed vmlinuz must be unpacked first)", magic);
		return -ENOEXEC;
	}
	out->text_offset = le64(f->data + 8);
	out->image_size = le64(f->data + 16);
	/* An image_size of 0 is a kernel older than 3.17: text_offset 0x80000, size unknown. */
	if (out->image_size == 0) {
		out->text_offset = TEXT_OFFSET_LEGACY;
		out->image_size = f->size;
	}
	if (out->image_size < f->size || out->text_offset % 4096 || out->text_offset > (1ull << 30)) {
		snprintf(err, errlen, "the kernel's Image header is inconsistent (text_offset 0x%llx, "
			 "image_size 0x%llx, file %zu bytes)", (unsigned long long)out->text_offset,
			 (unsigned long long)out->image_size, f->size);
		return -ENOEXEC;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The device tree                                                            */

/* Append big-endian cells to a property buffer. */
static size_t cells(uint32_t *buf, size_t n, uint64_t v, int ncells)
{
	if (ncells == 2)
		buf[n++] = cpu_to_fdt32((uint32_t)(v >> 32));
	buf[n++] = cpu_to_fdt32((uint32_t)v);
	return n;
}

static int reg_prop(void *fdt, uint64_t base, uint64_t size)
{
	uint32_t r[4];
	size_t n = cells(r, cells(r, 0, base, 2), size, 2);

	return fdt_property(fdt, "reg", r, (int)(n * sizeof(r[0])));
}

/* Strings lists ("a\0b\0") for compatible and clock-names. */
static int strings(void *fdt, const char *name, const char *list, size_t len)
{
	return fdt_property(fdt, name, list, (int)len);
}

struct dt_layout {
	uint64_t initrd_gpa, initrd_size;
	const char *cmdline;
};

static int build_fdt(struct mv_vmm *v, void *fdt, const struct dt_layout *l)
{
	char name[64];
	uint32_t c[12];
	size_t n;
	int r = 0;

#define DT(call)                   \
	do {                       \
		if ((r = (call)) < 0) \
			return r;  \
	} while (0)

	DT(fdt_create(fdt, FDT_BUF));
	DT(fdt_finish_reservemap(fdt));
	DT(fdt_begin_node(fdt, ""));
	DT(fdt_property_string(fdt, "compatible", "linux,dummy-virt"));
	DT(fdt_property_u32(fdt, "#address-cells", 2));
	DT(fdt_property_u32(fdt, "#size-cells", 2));
	DT(fdt_property_u32(fdt, "interrupt-parent", PHANDLE_GIC));

	DT(fdt_begin_node(fdt, "chosen"));
	DT(fdt_property_string(fdt, "bootargs", l->cmdline));
	snprintf(name, sizeof(name), "/pl011@%llx", (unsigned long long)UART_GPA);
	DT(fdt_property_string(fdt, "stdout-path", name));
	if (l->initrd_size) {
		DT(fdt_property_u64(fdt, "linux,initrd-start", l->initrd_gpa));
		DT(fdt_property_u64(fdt, "linux,initrd-end", l->initrd_gpa + l->initrd_size));
	}
	DT(fdt_end_node(fdt));

	snprintf(name, sizeof(name), "memory@%llx", (unsigned long long)v->ram_gpa);
	DT(fdt_begin_node(fdt, name));
	DT(fdt_property_string(fdt, "device_type", "memory"));
	DT(reg_prop(fdt, v->ram_gpa, v->ram_size));
	DT(fdt_end_node(fdt));

	DT(fdt_begin_node(fdt, "cpus"));
	DT(fdt_property_u32(fdt, "#address-cells", 1));
	DT(fdt_property_u32(fdt, "#size-cells", 0));
	for (unsigned i = 0; i < v->cfg.cpus; i++) {
		uint64_t mpidr = 0;

		/*
		 * The cpu's reg is its MPIDR affinity, as the hypervisor assigned
		 * it.  Gunyah and GenieZone give no register reads; they number
		 * vCPUs by index (Aff0), as crosvm's device trees assume.
		 */
		r = vcpu_get_reg(v->cpu[i], VCPU_REG_ARM64_MPIDR_EL1, &mpidr);
		if (r == -EOPNOTSUPP)
			mpidr = i;
		else if (r < 0)
			return r;
		snprintf(name, sizeof(name), "cpu@%x", (unsigned)(mpidr & 0xffffff));
		DT(fdt_begin_node(fdt, name));
		DT(fdt_property_string(fdt, "device_type", "cpu"));
		DT(fdt_property_string(fdt, "compatible", "arm,arm-v8"));
		DT(fdt_property_u32(fdt, "reg", (uint32_t)(mpidr & 0xffffff)));
		DT(fdt_property_string(fdt, "enable-method", "psci"));
		DT(fdt_end_node(fdt));
	}
	DT(fdt_end_node(fdt));

	DT(fdt_begin_node(fdt, "psci"));
	DT(strings(fdt, "compatible", "arm,psci-1.0\0arm,psci-0.2", sizeof("arm,psci-1.0\0arm,psci-0.2")));
	DT(fdt_property_string(fdt, "method", "hvc"));
	DT(fdt_end_node(fdt));

	/* PPIs 13, 14, 11, 10: secure, non-secure, virtual and hypervisor timers. */
	DT(fdt_begin_node(fdt, "timer"));
	DT(fdt_property_string(fdt, "compatible", "arm,armv8-timer"));
	n = 0;
	for (unsigned i = 0; i < 4; i++) {
		static const uint32_t ppi[4] = { 13, 14, 11, 10 };
		c[n++] = cpu_to_fdt32(1);
		c[n++] = cpu_to_fdt32(ppi[i]);
		c[n++] = cpu_to_fdt32(0x4); /* level-triggered, as QEMU virt describes them */
	}
	DT(fdt_property(fdt, "interrupts", c, (int)(n * sizeof(c[0]))));
	DT(fdt_property(fdt, "always-on", NULL, 0));
	DT(fdt_end_node(fdt));

	snprintf(name, sizeof(name), "intc@%llx", (unsigned long long)GICD_GPA);
	DT(fdt_begin_node(fdt, name));
	DT(fdt_property_string(fdt, "compatible", "arm,gic-v3"));
	DT(fdt_property_u32(fdt, "#interrupt-cells", 3));
	DT(fdt_property(fdt, "interrupt-controller", NULL, 0));
	n = cells(c, 0, GICD_GPA, 2);
	n = cells(c, n, VCPU_GIC_V3_DIST_SIZE, 2);
	n = cells(c, n, GICR_GPA, 2);
	n = cells(c, n, GICR_SIZE * v->cfg.cpus, 2);
	DT(fdt_property(fdt, "reg", c, (int)(n * sizeof(c[0]))));
	DT(fdt_property_u32(fdt, "phandle", PHANDLE_GIC));
	DT(fdt_end_node(fdt));

	DT(fdt_begin_node(fdt, "apb-pclk"));
	DT(fdt_property_string(fdt, "compatible", "fixed-clock"));
	DT(fdt_property_u32(fdt, "#clock-cells", 0));
	DT(fdt_property_u32(fdt, "clock-frequency", 24000000));
	DT(fdt_property_string(fdt, "clock-output-names", "clk24mhz"));
	DT(fdt_property_u32(fdt, "phandle", PHANDLE_CLK));
	DT(fdt_end_node(fdt));

	snprintf(name, sizeof(name), "pl011@%llx", (unsigned long long)UART_GPA);
	DT(fdt_begin_node(fdt, name));
	DT(strings(fdt, "compatible", "arm,pl011\0arm,primecell", sizeof("arm,pl011\0arm,primecell")));
	DT(reg_prop(fdt, UART_GPA, UART_SIZE));
	c[0] = cpu_to_fdt32(0); /* SPI */
	c[1] = cpu_to_fdt32(UART_SPI);
	c[2] = cpu_to_fdt32(4); /* IRQ_TYPE_LEVEL_HIGH */
	DT(fdt_property(fdt, "interrupts", c, 3 * sizeof(c[0])));
	c[0] = c[1] = cpu_to_fdt32(PHANDLE_CLK);
	DT(fdt_property(fdt, "clocks", c, 2 * sizeof(c[0])));
	DT(strings(fdt, "clock-names", "uartclk\0apb_pclk", sizeof("uartclk\0apb_pclk")));
	DT(fdt_end_node(fdt));

	DT(fdt_end_node(fdt));
	DT(fdt_finish(fdt));
#undef DT
	return 0;
}

/* ------------------------------------------------------------------------ */

/*
 * The vGIC needs the vCPUs (one redistributor each): they exist by now.
 * Gunyah's hypervisor brings its own GIC (-EOPNOTSUPP here).
 */
static int arm64_devices(struct mv_vmm *v)
{
	int r = vcpu_vm_create_gic_v3(v->vm, GICD_GPA, GICR_GPA, GIC_NR_IRQS);

	if (r == -EOPNOTSUPP && vcpu_hv_backend(v->hv) == VCPU_BACKEND_GUNYAH)
		return 0;
	return r < 0 ? mv_fail(v, r, "cannot create the GICv3: %s", vcpu_vm_last_error(v->vm)) : 0;
}

static int arm64_setup(struct mv_vmm *v)
{
	const uint64_t ram_end = v->ram_gpa + v->ram_size;
	const uint64_t dtb_gpa = ram_end - DTB_MAX;
	struct mv_file kernel = { .fd = -1 }, initrd = { .fd = -1 };
	struct mv_arm64_image img;
	struct dt_layout l = { 0 };
	char *cmdline = mv_cmdline(v, "console=ttyAMA0");
	uint64_t load, kernel_end;
	void *fdt = NULL;
	int r;

	if (!cmdline)
		return -ENOMEM;
	l.cmdline = cmdline;
	r = mv_open_file(v, "kernel", v->cfg.kernel, &kernel);
	if (r < 0)
		goto out;
	r = mv_arm64_parse_image(&kernel, &img, v->err, sizeof(v->err));
	if (r < 0)
		goto out;
	if (v->cfg.initrd && (r = mv_open_file(v, "initrd", v->cfg.initrd, &initrd)) < 0)
		goto out;
	/* RAM starts 2 MiB aligned, so the kernel lands at base + text_offset. */
	load = v->ram_gpa + img.text_offset;
	kernel_end = load + img.image_size;
	l.initrd_size = initrd.size;
	l.initrd_gpa = (dtb_gpa - initrd.size) & ~0xfffull;
	if (v->ram_size <= DTB_MAX || initrd.size > dtb_gpa - v->ram_gpa ||
	    kernel_end > l.initrd_gpa) {
		r = mv_fail(v, -ENOMEM, "--mem %llu MiB is too little: the kernel needs %llu MiB, the "
			    "initrd %zu KiB and the device tree 2 MiB",
			    (unsigned long long)v->cfg.mem_mib,
			    (unsigned long long)((kernel_end - v->ram_gpa + (1 << 20) - 1) >> 20),
			    initrd.size >> 10);
		goto out;
	}
	r = mv_load_file(v, "kernel", &kernel, 0, v->ram + (load - v->ram_gpa), kernel.size);
	if (r == 0 && initrd.size)
		r = mv_load_file(v, "initrd", &initrd, 0, v->ram + (l.initrd_gpa - v->ram_gpa),
				 initrd.size);
	if (r < 0)
		goto out;

	r = arm64_devices(v);
	if (r < 0)
		goto out;
	fdt = calloc(1, FDT_BUF);
	if (!fdt) {
		r = mv_fail(v, -ENOMEM, "no memory for the device tree");
		goto out;
	}
	r = build_fdt(v, fdt, &l);
	if (r < 0) {
		r = mv_fail(v, -EINVAL, "building the device tree failed: %s",
			    r < 0 && r > -64 ? fdt_strerror(r) : "register read");
		goto out;
	}
	memcpy(v->ram + (dtb_gpa - v->ram_gpa), fdt, fdt_totalsize(fdt));
	/* Gunyah and GenieZone read the tree themselves; the whole 2 MiB leaves room for edits. */
	r = vcpu_vm_set_dtb(v->vm, dtb_gpa, DTB_MAX);
	if (r < 0 && r != -EOPNOTSUPP) {
		r = mv_fail(v, r, "cannot hand the device tree over: %s", vcpu_vm_last_error(v->vm));
		goto out;
	}

	/* booting.rst: x0 = DTB, x1..x3 = 0, MMU off, EL1h with DAIF masked (KVM's reset). */
	r = vcpu_set_reg(v->cpu[0], VCPU_REG_ARM64_PC, load);
	if (r == 0)
		r = vcpu_set_reg(v->cpu[0], VCPU_REG_ARM64_X(0), dtb_gpa);
	if (r < 0)
		r = mv_fail(v, r, "cannot set the boot registers: %s", vcpu_last_error(v->cpu[0]));
out:
	free(fdt);
	mv_close_file(&kernel);
	mv_close_file(&initrd);
	free(cmdline);
	return r;
}

/* ------------------------------------------------------------------------ */
/* PL011: transmit only; the registers Linux's amba-pl011 driver probes.     */

#define PL011_DR 0x000
#define PL011_FR 0x018
#define PL011_FR_TXFE (1u << 7)
#define PL011_FR_RXFE (1u << 4)
#define PL011_PERIPHID 0xfe0

static uint32_t pl011_read(uint64_t off)
{
	static const uint8_t id[8] = { 0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1 };

	if (off == PL011_FR)
		return PL011_FR_TXFE | PL011_FR_RXFE; /* never busy, nothing to read */
	if (off >= PL011_PERIPHID && off < PL011_PERIPHID + 32 && off % 4 == 0)
		return id[(off - PL011_PERIPHID) / 4];
	return 0;
}

static int arm64_mmio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct mv_vmm *v = ctx;
	uint64_t off = io->addr - UART_GPA;
	uint32_t val;

	(void)cpu;
	atomic_fetch_add(&v->exits, 1);
	if (io->addr < UART_GPA || off >= UART_SIZE) {
		/* Nothing else is there: reads as zero, writes are dropped. */
		return VCPU_CONTINUE;
	}
	if (io->is_write) {
		if (off == PL011_DR)
			mv_console_putc(v, io->data[0]);
		return VCPU_CONTINUE;
	}
	val = pl011_read(off);
	for (unsigned i = 0; i < io->len && i < 4; i++)
		io->data[i] = (uint8_t)(val >> (8 * i));
	return VCPU_CONTINUE;
}

const struct mv_arch mv_arch_arm64 = {
	.name = "arm64",
	.arch = VCPU_ARCH_ARM64,
	.ram_gpa = RAM_GPA,
	/* Secondaries wait powered off for the guest's PSCI CPU_ON. */
	.secondary_flags = VCPU_CREATE_POWER_OFF,
	/* A panic restarts warm: PSCI SYSTEM_RESET2, not SYSTEM_RESET (minivmm.c, mv_cmdline()). */
	.cmdline_prefix = "panic=-1 reboot=panic_warm",
	.setup = arm64_setup,
	.devices = arm64_devices,
	.handlers = {
		.mmio = arm64_mmio,
		.system_event = mv_on_system_event,
		.other = mv_on_other,
	},
};
