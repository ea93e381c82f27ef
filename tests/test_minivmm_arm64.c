// SPDX-License-Identifier: MIT
/*
 * minivmm's arm64 machine on the mock driver: the Image header checks, where
 * the kernel, initrd and device tree land, what the device tree says, the
 * boot registers, and the run loop from the first MMIO exit (the PL011) to
 * the guest's PSCI end.  The real boot is the linux-boot suite.
 */
#define _GNU_SOURCE
#include "minivmm.h"

#include <vcpu/arm64.h>
#include <vcpu/mock.h>

#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "minivmm_fixture.h"

#define RAM_GPA 0x80000000ull
#define UART 0x09000000ull
#define MIB (1ull << 20)
#define PSCI_SYSTEM_RESET2_64 0xc4000012u /* PSCI 1.1: what Linux calls for a warm restart */

static int setup(void **state)
{
	return fx_setup(state, "Image");
}

static int teardown(void **state)
{
	return fx_teardown(state);
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A 4 KiB arm64 Image: header (booting.rst) and a recognisable body. */
static void make_image(struct fx *f, uint64_t text_offset, uint64_t image_size, uint32_t magic)
{
	uint8_t img[4096];

	for (size_t i = 0; i < sizeof(img); i++)
		img[i] = (uint8_t)(i * 7);
	put64(img + 8, text_offset);
	put64(img + 16, image_size);
	put64(img + 56, magic);
	write_file(f->kernel, img, sizeof(img));
}

static struct mv_config config(struct fx *f, unsigned cpus, uint64_t mem_mib)
{
	return (struct mv_config){ .kernel = f->kernel, .cmdline = "console=ttyAMA0 test=1",
				   .mem_mib = mem_mib, .cpus = cpus,
				   .hv = fx_mock(f, VCPU_BACKEND_KVM, VCPU_ARCH_ARM64) };
}

static uint64_t reg(struct fx *f, unsigned cpu, uint64_t id)
{
	uint64_t v = 0;

	assert_int_equal(vcpu_get_reg(f->v.cpu[cpu], id, &v), 0);
	return v;
}

/* ------------------------------------------------------------------------ */

static void test_image_header_checks(void **state)
{
	struct fx *f = *state;
	struct mv_arm64_image img;
	uint8_t buf[64] = { 0 };
	struct mv_file file = { .data = buf, .size = 32 };
	char err[128];

	assert_int_equal(mv_arm64_parse_image(&file, &img, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "too small"));
	file.size = sizeof(buf);
	assert_int_equal(mv_arm64_parse_image(&file, &img, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "magic"));
	put64(buf + 56, 0x644d5241);
	put64(buf + 8, 0x1234); /* not page aligned */
	put64(buf + 16, 0x10000);
	assert_int_equal(mv_arm64_parse_image(&file, &img, err, sizeof(err)), -ENOEXEC);
	put64(buf + 8, 0);
	assert_int_equal(mv_arm64_parse_image(&file, &img, err, sizeof(err)), 0);
	assert_int_equal(img.text_offset, 0);
	assert_int_equal(img.image_size, 0x10000);
	/* image_size 0: a pre-3.17 kernel, text_offset 0x80000. */
	put64(buf + 16, 0);
	assert_int_equal(mv_arm64_parse_image(&file, &img, err, sizeof(err)), 0);
	assert_int_equal(img.text_offset, 0x80000);

	/* Through minivmm: a bad kernel is a clear setup error. */
	make_image(f, 0, 0x10000, 0x12345678);
	struct mv_config cfg = config(f, 1, 64);
	assert_int_equal(mv_setup(&f->v, &cfg), -ENOEXEC);
	assert_non_null(strstr(f->v.err, "magic"));
}

static void test_too_little_memory(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = config(f, 1, 16);

	make_image(f, 0, 15 * MIB, 0x644d5241); /* 15 MiB kernel + 2 MiB DTB > 16 MiB */
	assert_int_equal(mv_setup(&f->v, &cfg), -ENOMEM);
	assert_non_null(strstr(f->v.err, "too little"));
}

static void test_missing_kernel(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = config(f, 1, 64);

	cfg.kernel = "/nonexistent/Image";
	assert_int_equal(mv_setup(&f->v, &cfg), -ENOENT);
	assert_non_null(strstr(f->v.err, "/nonexistent/Image"));
}

/* Kernel at RAM + text_offset, initrd and DTB at the top, x0/PC set, and a device tree that says so. */
static void test_layout_and_device_tree(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = config(f, 2, 64);
	uint8_t initrd[5000];
	const uint64_t dtb_gpa = RAM_GPA + 64 * MIB - 2 * MIB;
	const void *fdt;
	const fdt64_t *p64;
	const fdt32_t *p32;
	int node, len, ncpus = 0;

	memset(initrd, 0x5a, sizeof(initrd));
	write_file(f->initrd, initrd, sizeof(initrd));
	cfg.initrd = f->initrd;
	make_image(f, 0x80000, 2 * MIB, 0x644d5241);
	assert_int_equal(mv_setup(&f->v, &cfg), 0);

	/* booting.rst: x0 = DTB, PC = kernel entry (its first byte). */
	assert_int_equal(reg(f, 0, VCPU_REG_ARM64_PC), RAM_GPA + 0x80000);
	assert_int_equal(reg(f, 0, VCPU_REG_ARM64_X(0)), dtb_gpa);
	assert_int_equal(f->v.ram[0x80000 + 100], (uint8_t)(100 * 7));

	fdt = f->v.ram + (dtb_gpa - RAM_GPA);
	assert_int_equal(fdt_check_header(fdt), 0);
	node = fdt_path_offset(fdt, "/chosen");
	assert_true(node >= 0);
	/* minivmm's panic options first (a panic restarts warm), then the user's. */
	assert_string_equal(fdt_getprop(fdt, node, "bootargs", NULL),
			    "panic=-1 reboot=panic_warm console=ttyAMA0 test=1");
	assert_string_equal(fdt_getprop(fdt, node, "stdout-path", NULL), "/pl011@9000000");
	/* Properties are only 4-byte aligned: fdt64_ld() reads them. */
	p64 = fdt_getprop(fdt, node, "linux,initrd-start", &len);
	assert_non_null(p64);
	uint64_t istart = fdt64_ld(p64);
	p64 = fdt_getprop(fdt, node, "linux,initrd-end", &len);
	assert_int_equal(fdt64_ld(p64) - istart, sizeof(initrd));
	assert_int_equal(istart % 4096, 0);
	assert_true(istart + sizeof(initrd) <= dtb_gpa);
	assert_memory_equal(f->v.ram + (istart - RAM_GPA), initrd, sizeof(initrd));

	node = fdt_path_offset(fdt, "/memory@80000000");
	assert_true(node >= 0);
	p32 = fdt_getprop(fdt, node, "reg", &len);
	assert_int_equal(len, 16);
	assert_int_equal(fdt32_to_cpu(p32[1]), 0x80000000u);
	assert_int_equal(fdt32_to_cpu(p32[3]), 64 * MIB);

	node = fdt_path_offset(fdt, "/cpus");
	for (int c = fdt_first_subnode(fdt, node); c >= 0; c = fdt_next_subnode(fdt, c)) {
		assert_string_equal(fdt_getprop(fdt, c, "enable-method", NULL), "psci");
		p32 = fdt_getprop(fdt, c, "reg", NULL);
		/* The MPIDR KVM gave the vCPU. */
		assert_int_equal(fdt32_to_cpu(*p32), reg(f, (unsigned)ncpus, VCPU_REG_ARM64_MPIDR_EL1) & 0xffffff);
		ncpus++;
	}
	assert_int_equal(ncpus, 2);
	node = fdt_path_offset(fdt, "/psci");
	assert_string_equal(fdt_getprop(fdt, node, "method", NULL), "hvc");
	node = fdt_path_offset(fdt, "/intc@8000000");
	assert_true(node >= 0);
	p32 = fdt_getprop(fdt, node, "reg", &len);
	assert_int_equal(len, 32);
	assert_int_equal(fdt32_to_cpu(p32[7]), 2 * 0x20000); /* a redistributor per vCPU */
	assert_true(fdt_path_offset(fdt, "/pl011@9000000") >= 0);
	assert_true(fdt_path_offset(fdt, "/timer") >= 0);
}

static struct vcpu_mock_step uart_putc(char c)
{
	return (struct vcpu_mock_step){ .op = VCPU_MOCK_MMIO_WRITE, .addr = UART, .len = 4,
					.value = (uint8_t)c };
}

/* The PL011 the kernel probes and prints to, then PSCI SYSTEM_OFF: exit 0. */
static void test_run_console_and_power_off(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = config(f, 1, 64);
	struct vcpu_mock_step s[] = {
		{ .op = VCPU_MOCK_MMIO_READ, .addr = UART + 0xfe0, .len = 4, .value = 0x11, .reg = 2 },
		{ .op = VCPU_MOCK_MMIO_READ, .addr = UART + 0x18, .len = 4, .value = 0x90, .reg = 3 },
		uart_putc('o'), uart_putc('k'), uart_putc('\n'),
		{ .op = VCPU_MOCK_MMIO_READ, .addr = 0x0a000000, .len = 4, .value = 0, .reg = 4 },
		{ .op = VCPU_MOCK_HYPERCALL, .value = VCPU_PSCI_SYSTEM_OFF },
	};
	char out[64];
	const char *msg = NULL;

	make_image(f, 0x80000, MIB, 0x644d5241);
	assert_int_equal(mv_setup(&f->v, &cfg), 0);
	assert_int_equal(vcpu_mock_script(f->mock, 0, s, sizeof(s) / sizeof(s[0])), 0);
	assert_int_equal(run_captured(f, out, sizeof(out)), MV_EXIT_OFF);
	assert_string_equal(out, "ok\n");
	assert_string_equal(f->v.end, "powered off");
	assert_int_equal(vcpu_mock_failures(f->mock, &msg), 0);
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), sizeof(s) / sizeof(s[0]));
}

/*
 * --save then --restore in another VM of another mock driver: the guest
 * prints 'a' and spins until the save at --save-at stops it; minivmm writes
 * the file and ends "saved" (0).  The restoring minivmm takes its vCPUs,
 * RAM and registers from the file (no kernel), and the guest goes on: 'b',
 * then PSCI SYSTEM_OFF.
 */
static void test_save_and_restore(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = config(f, 2, 64);
	const struct vcpu_mock_step s1[] = { uart_putc('a'), { .op = VCPU_MOCK_SPIN } };
	const struct vcpu_mock_step s2[] = {
		uart_putc('b'),
		{ .op = VCPU_MOCK_HYPERCALL, .value = VCPU_PSCI_SYSTEM_OFF },
	};
	char out[64], snap[128];
	const char *msg = NULL;
	uint64_t pc;

	snprintf(snap, sizeof(snap), "%s/snap", f->dir);
	make_image(f, 0x80000, MIB, 0x644d5241);
	cfg.save = snap;
	cfg.save_at = 0.05;
	assert_int_equal(mv_setup(&f->v, &cfg), 0);
	assert_int_equal(vcpu_mock_script(f->mock, 0, s1, 2), 0);
	assert_int_equal(vcpu_set_reg(f->v.cpu[0], VCPU_REG_ARM64_X(9), 0x5a5a), 0);
	f->v.ram[0x1234] = 0x77; /* guest RAM the file must carry */
	pc = reg(f, 0, VCPU_REG_ARM64_PC);
	assert_int_equal(run_captured(f, out, sizeof(out)), MV_EXIT_OFF);
	assert_string_equal(out, "a\n"); /* the line the save cut is ended */
	assert_string_equal(f->v.end, "saved");
	assert_int_equal(vcpu_mock_failures(f->mock, &msg), 0);
	mv_teardown(&f->v);

	/* A new "process": another mock, no kernel, everything from the file. */
	fx_mock(f, VCPU_BACKEND_KVM, VCPU_ARCH_ARM64);
	cfg = (struct mv_config){ .restore = snap, .hv = f->hv, .backend = VCPU_BACKEND_KVM };
	assert_int_equal(mv_setup(&f->v, &cfg), 0);
	assert_int_equal(f->v.cfg.cpus, 2);
	assert_int_equal(f->v.ram[0x1234], 0x77);
	assert_int_equal(reg(f, 0, VCPU_REG_ARM64_X(9)), 0x5a5a);
	/* The PC the saved guest had reached: the mock's guest advanced it past the UART store. */
	assert_int_equal(reg(f, 0, VCPU_REG_ARM64_PC), pc + 4);
	assert_int_equal(vcpu_mock_script(f->mock, 0, s2, 2), 0);
	assert_int_equal(run_captured(f, out, sizeof(out)), MV_EXIT_OFF);
	assert_string_equal(out, "b");
	assert_string_equal(f->v.end, "powered off");
	assert_int_equal(vcpu_mock_failures(f->mock, &msg), 0);
	unlink(snap);
}

/* A file that is not a snapshot, or a truncated one, is refused with a reason. */
static void test_restore_bad_file(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = { .restore = f->initrd, .backend = VCPU_BACKEND_KVM };
	static const char junk[200] = "MINIVMM";

	cfg.hv = fx_mock(f, VCPU_BACKEND_KVM, VCPU_ARCH_ARM64);
	write_file(f->initrd, junk, sizeof(junk));
	assert_int_equal(mv_setup(&f->v, &cfg), -EBADMSG);
	assert_non_null(strstr(f->v.err, "not a minivmm snapshot"));
	mv_teardown(&f->v);
	cfg.restore = "/nonexistent/snap";
	assert_int_equal(mv_setup(&f->v, &cfg), -ENOENT);
}

/* PSCI SYSTEM_RESET is a reset (3); SYSTEM_RESET2 a panic (4); an internal error 4. */
static void test_run_reset_and_crash(void **state)
{
	struct fx *f = *state;
	struct mv_config cfg = config(f, 1, 64);
	struct vcpu_mock_step reset[] = { { .op = VCPU_MOCK_HYPERCALL, .value = VCPU_PSCI_SYSTEM_RESET } };
	/* A panic with reboot=panic_warm: psci_sys_reset() calls SYSTEM_RESET2, reset type 0 (warm). */
	struct vcpu_mock_step panic[] = { { .op = VCPU_MOCK_HYPERCALL, .value = PSCI_SYSTEM_RESET2_64,
					    .args = { 0, 0 } } };
	struct vcpu_mock_step crash[] = { { .op = VCPU_MOCK_INTERNAL_ERROR, .value = 1 } };
	char out[16];

	make_image(f, 0x80000, MIB, 0x644d5241);
	assert_int_equal(mv_setup(&f->v, &cfg), 0);
	assert_int_equal(vcpu_mock_script(f->mock, 0, reset, 1), 0);
	assert_int_equal(run_captured(f, out, sizeof(out)), MV_EXIT_RESET);
	assert_string_equal(f->v.end, "reset");
	mv_teardown(&f->v);

	assert_int_equal(mv_setup(&f->v, &cfg), 0);
	assert_int_equal(vcpu_mock_script(f->mock, 0, panic, 1), 0);
	assert_int_equal(run_captured(f, out, sizeof(out)), MV_EXIT_CRASH);
	assert_string_equal(f->v.end, "the guest panicked");
	mv_teardown(&f->v);

	assert_int_equal(mv_setup(&f->v, &cfg), 0);
	assert_int_equal(vcpu_mock_script(f->mock, 0, crash, 1), 0);
	assert_int_equal(run_captured(f, out, sizeof(out)), MV_EXIT_CRASH);
	assert_string_equal(f->v.end, "the hypervisor failed to run the guest");
}

/*
 * The same minivmm on the Gunyah and GenieZone mock drivers, up to the
 * first MMIO exit and on to the guest's power-off: RAM from the driver's
 * kind of memory, the device tree handed over, the boot registers in the
 * backend's own form (Gunyah's boot context, GenieZone's ONE_REG), the VM
 * started, the PL011 on the MMIO handler.
 */
static void run_on_backend(struct fx *f, enum vcpu_backend backend,
			   const struct vcpu_mock_step *off)
{
	struct mv_config cfg = config(f, 2, 64);
	const uint64_t dtb_gpa = RAM_GPA + 64 * MIB - 2 * MIB;
	struct vcpu_mock_step s[] = {
		{ .op = VCPU_MOCK_REG_CHECK, .reg = VCPU_REG_ARM64_PC, .value = RAM_GPA + 0x80000 },
		{ .op = VCPU_MOCK_REG_CHECK, .reg = VCPU_REG_ARM64_X(0), .value = dtb_gpa },
		{ .op = VCPU_MOCK_MEM_CHECK, .addr = RAM_GPA + 0x80000 + 64, .value = 0xf1eae3dcd5cec7c0ull },
		uart_putc('h'), uart_putc('i'), uart_putc('\n'),
		*off,
	};
	const struct vcpu_mock_step spin = { .op = VCPU_MOCK_SPIN };
	char out[64];
	const char *msg = NULL;

	cfg.hv = fx_mock(f, backend, VCPU_ARCH_ARM64);
	make_image(f, 0x80000, MIB, 0x644d5241);
	if (mv_setup(&f->v, &cfg) != 0)
		print_message("setup: %s\n", f->v.err);
	assert_int_equal(f->v.err[0], 0);
	assert_int_equal(vcpu_hv_backend(f->v.hv), backend);
	assert_int_equal(vcpu_mock_script(f->mock, 0, s, sizeof(s) / sizeof(s[0])), 0);
	/* The secondary runs from the start (no KVM-style parking): it idles until kicked. */
	assert_int_equal(vcpu_mock_script(f->mock, 1, &spin, 1), 0);
	assert_int_equal(run_captured(f, out, sizeof(out)), MV_EXIT_OFF);
	assert_string_equal(out, "hi\n");
	if (vcpu_mock_failures(f->mock, &msg))
		print_message("mock: %s\n", msg);
	assert_int_equal(vcpu_mock_failures(f->mock, &msg), 0);
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), sizeof(s) / sizeof(s[0]));
}

static void test_gunyah_to_first_mmio_and_off(void **state)
{
	/* The resource manager reports PSCI SYSTEM_OFF as a VM exit of type 1. */
	struct vcpu_mock_step off = { .op = VCPU_MOCK_GUNYAH_VM_EXITED, .value = 1 };

	run_on_backend(*state, VCPU_BACKEND_GUNYAH, &off);
}

static void test_geniezone_to_first_mmio_and_off(void **state)
{
	/* GZVM_SYSTEM_EVENT_SHUTDOWN. */
	struct vcpu_mock_step off = { .op = VCPU_MOCK_SYSTEM_EVENT, .value = 1 };

	run_on_backend(*state, VCPU_BACKEND_GENIEZONE, &off);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_image_header_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_little_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_kernel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layout_and_device_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_console_and_power_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_reset_and_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_and_restore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_bad_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gunyah_to_first_mmio_and_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_geniezone_to_first_mmio_and_off, setup, teardown),
	};

	return cmocka_run_group_tests_name("minivmm-arm64", tests, NULL, NULL);
}
