// SPDX-License-Identifier: MIT
/*
 * The `faults` suite's caller half: every public function given what a
 * careless or hostile caller passes (NULL, out-of-range values, the wrong
 * state, a second destroy).  One table row per case: the call, the errno it
 * must return, and which handle must then hold a readable detail.  Rows run
 * against one fixture (the mock KVM driver with a VM and a vCPU) that must
 * stay usable: after the table, a normal run still works and nothing leaked.
 */
#define _GNU_SOURCE
#include <vcpu/arm64.h>
#include <vcpu/mock.h>
#include <vcpu/vcpu.h>

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct bx {
	struct vcpu_mock *mock;
	struct vcpu_hv *hv;
	struct vcpu_vm *vm;
	struct vcpu *cpu;
	void *ram;
	size_t page;
};

enum where { NONE, HV, VM, CPU };

struct row {
	const char *what;
	int (*call)(struct bx *b);
	int expect;
	enum where detail;
};

static const struct vcpu_handlers no_handlers;
static int noop(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	(void)ctx;
	(void)cpu;
	(void)io;
	return 0;
}
static const struct vcpu_handlers io_only = { .mmio = noop };

/* Each case is one line; the names say what is wrong. */
#define CASE(name, expr)                                                                    \
	static int name(struct bx *b)                                                         \
	{                                                                                     \
		(void)b;                                                                      \
		return (expr);                                                                \
	}

/* Hypervisor handles */
CASE(hv_open_null_out, vcpu_hv_open(VCPU_BACKEND_KVM, NULL))
CASE(hv_open_bad_backend, vcpu_hv_open((enum vcpu_backend)99, &(struct vcpu_hv *){ 0 }))
CASE(hv_open_path_auto,
     vcpu_hv_open_path(VCPU_BACKEND_AUTO, "/dev/kvm", &(struct vcpu_hv *){ 0 }))
CASE(hv_open_path_null, vcpu_hv_open_path(VCPU_BACKEND_KVM, NULL, &(struct vcpu_hv *){ 0 }))
CASE(hv_close_null, vcpu_hv_close(NULL))
CASE(hv_close_busy, vcpu_hv_close(b->hv))
CASE(hv_check_null, vcpu_hv_check(NULL, VCPU_CAP_MAX_VCPUS, &(uint64_t){ 0 }))
CASE(hv_check_null_value, vcpu_hv_check(b->hv, VCPU_CAP_MAX_VCPUS, NULL))
CASE(hv_check_bad_cap, vcpu_hv_check(b->hv, (enum vcpu_cap)999, &(uint64_t){ 0 }))
CASE(kick_signal_busy, vcpu_hv_set_kick_signal(b->hv, SIGRTMIN + 3))
CASE(kick_signal_kill, vcpu_hv_set_kick_signal(b->hv, SIGKILL))
CASE(kick_signal_range, vcpu_hv_set_kick_signal(b->hv, 1000))
CASE(kick_signal_segv, vcpu_hv_set_kick_signal(b->hv, SIGSEGV))
CASE(kick_signal_bus, vcpu_hv_set_kick_signal(b->hv, SIGBUS))
CASE(kick_signal_null, vcpu_hv_set_kick_signal(NULL, SIGRTMIN + 3))
CASE(kick_signal_get_null, vcpu_kick_signal(NULL))
/* VMs */
CASE(vm_create_null_hv, vcpu_vm_create(NULL, NULL, &(struct vcpu_vm *){ 0 }))
CASE(vm_create_null_out, vcpu_vm_create(b->hv, NULL, NULL))
CASE(vm_create_reserved,
     vcpu_vm_create(b->hv, &(struct vcpu_vm_config){ .reserved = { 1 } }, &(struct vcpu_vm *){ 0 }))
CASE(vm_create_flags,
     vcpu_vm_create(b->hv, &(struct vcpu_vm_config){ .flags = 1u << 30 }, &(struct vcpu_vm *){ 0 }))
CASE(vm_create_ipa,
     vcpu_vm_create(b->hv, &(struct vcpu_vm_config){ .ipa_bits = 99 }, &(struct vcpu_vm *){ 0 }))
CASE(vm_destroy_null, vcpu_vm_destroy(NULL))
CASE(vm_destroy_null_handle, vcpu_vm_destroy(&(struct vcpu_vm *){ NULL }))
CASE(vm_destroy_busy, vcpu_vm_destroy(&b->vm))
CASE(vm_check_null, vcpu_vm_check(NULL, VCPU_CAP_MAX_VCPUS, &(uint64_t){ 0 }))
CASE(vm_check_null_value, vcpu_vm_check(b->vm, VCPU_CAP_MAX_VCPUS, NULL))
CASE(vm_map_null, vcpu_vm_map(NULL, 0, b->ram, b->page, 0))
CASE(vm_map_null_host, vcpu_vm_map(b->vm, 0, NULL, b->page, 0))
CASE(vm_map_zero, vcpu_vm_map(b->vm, 0, b->ram, 0, 0))
CASE(vm_map_unaligned_gpa, vcpu_vm_map(b->vm, 1, b->ram, b->page, 0))
CASE(vm_map_unaligned_host, vcpu_vm_map(b->vm, 0, (char *)b->ram + 1, b->page, 0))
CASE(vm_map_wrap, vcpu_vm_map(b->vm, UINT64_MAX - b->page + 1, b->ram, 2 * b->page, 0))
CASE(vm_map_flags, vcpu_vm_map(b->vm, 0, b->ram, b->page, 1u << 20))
CASE(vm_map_overlap, vcpu_vm_map(b->vm, 0x100000, b->ram, b->page, 0))
CASE(vm_unmap_null, vcpu_vm_unmap(NULL, 0, b->page))
CASE(vm_unmap_missing, vcpu_vm_unmap(b->vm, 0x900000, b->page))
CASE(vm_unmap_partial, vcpu_vm_unmap(b->vm, 0x100000, b->page / 2))
CASE(vm_alloc_null, vcpu_vm_alloc(NULL, 0, b->page, 0, &(void *){ 0 }))
CASE(vm_alloc_null_host, vcpu_vm_alloc(b->vm, 0, b->page, 0, NULL))
CASE(vm_alloc_unaligned, vcpu_vm_alloc(b->vm, 3, b->page, 0, &(void *){ 0 }))
CASE(vm_alloc_overlap, vcpu_vm_alloc(b->vm, 0x100000, b->page, 0, &(void *){ 0 }))
CASE(vm_set_dtb_null, vcpu_vm_set_dtb(NULL, 0, 1))
CASE(vm_set_dtb_empty, vcpu_vm_set_dtb(b->vm, 0x1000, 0))
CASE(vm_set_dtb_kvm, vcpu_vm_set_dtb(b->vm, 0x1000, 0x1000))
CASE(vm_start_null, vcpu_vm_start(NULL))
CASE(vm_pause_null, vcpu_vm_pause(NULL))
CASE(vm_pause_kvm, vcpu_vm_pause(b->vm))
CASE(vm_reset_null, vcpu_vm_reset(NULL))
CASE(vm_reset_kvm, vcpu_vm_reset(b->vm))
CASE(vm_irqfd_null, vcpu_vm_irqfd(NULL, &(struct vcpu_irqfd){ .fd = 0 }))
CASE(vm_irqfd_null_arg, vcpu_vm_irqfd(b->vm, NULL))
CASE(vm_irqfd_flags, vcpu_vm_irqfd(b->vm, &(struct vcpu_irqfd){ .fd = 0, .flags = 1u << 9 }))
CASE(vm_irqfd_negative_fd, vcpu_vm_irqfd(b->vm, &(struct vcpu_irqfd){ .fd = -5, .irq = 40 }))
CASE(vm_irqfd_not_spi, vcpu_vm_irqfd(b->vm, &(struct vcpu_irqfd){ .fd = 0, .irq = 3 }))
CASE(vm_irqfd_msi_fields, vcpu_vm_irqfd(b->vm, &(struct vcpu_irqfd){ .fd = 0, .irq = 40,
									 .msi_data = 1 }))
CASE(vm_ioeventfd_null, vcpu_vm_ioeventfd(NULL, &(struct vcpu_ioeventfd){ .len = 4 }))
CASE(vm_ioeventfd_null_arg, vcpu_vm_ioeventfd(b->vm, NULL))
CASE(vm_ioeventfd_len, vcpu_vm_ioeventfd(b->vm, &(struct vcpu_ioeventfd){ .len = 5 }))
CASE(vm_ioeventfd_pio_arm64,
     vcpu_vm_ioeventfd(b->vm, &(struct vcpu_ioeventfd){ .len = 1, .flags = VCPU_IOEVENTFD_PIO }))
CASE(vm_msi_null, vcpu_vm_signal_msi(NULL, 0, 0))
CASE(vm_msi_data, vcpu_vm_signal_msi(b->vm, 0x8080040, 1ull << 33))
CASE(vm_irq_line_null, vcpu_vm_set_irq_line(NULL, 40, 1))
CASE(vm_irq_line_level, vcpu_vm_set_irq_line(b->vm, 40, 2))
CASE(vm_irq_line_range, vcpu_vm_set_irq_line(b->vm, 5000, 1))
CASE(gic_null, vcpu_vm_create_gic_v3(NULL, 0x8000000, 0x80a0000, 128))
CASE(gic_unaligned, vcpu_vm_create_gic_v3(b->vm, 0x8000001, 0x80a0000, 128))
CASE(gic_nr_irqs, vcpu_vm_create_gic_v3(b->vm, 0x8000000, 0x80a0000, 33))
CASE(x86_irqchip_null, vcpu_x86_create_irqchip(NULL, VCPU_X86_IRQCHIP_PIT))
CASE(x86_irqchip_arm64, vcpu_x86_create_irqchip(b->vm, VCPU_X86_IRQCHIP_PIT))
CASE(forward_null, vcpu_vm_forward_hypercalls(NULL, 0xc6000000u, 1))
CASE(forward_empty, vcpu_vm_forward_hypercalls(b->vm, 0xc6000000u, 0))
CASE(forward_wrap, vcpu_vm_forward_hypercalls(b->vm, 0xffffff00u, 0x1000))
/* vCPUs */
CASE(create_null_vm, vcpu_create(NULL, 1, 0, &(struct vcpu *){ 0 }))
CASE(create_null_out, vcpu_create(b->vm, 1, 0, NULL))
CASE(create_flags, vcpu_create(b->vm, 1, 1u << 7, &(struct vcpu *){ 0 }))
CASE(create_twice, vcpu_create(b->vm, 0, 0, &(struct vcpu *){ 0 }))
CASE(create_id_range, vcpu_create(b->vm, 100000, 0, &(struct vcpu *){ 0 }))
CASE(destroy_null, vcpu_destroy(NULL))
CASE(destroy_null_handle, vcpu_destroy(&(struct vcpu *){ NULL }))
CASE(get_reg_null, vcpu_get_reg(NULL, VCPU_REG_ARM64_PC, &(uint64_t){ 0 }))
CASE(get_reg_null_value, vcpu_get_reg(b->cpu, VCPU_REG_ARM64_PC, NULL))
CASE(get_reg_other_arch, vcpu_get_reg(b->cpu, VCPU_REG_X86_RAX, &(uint64_t){ 0 }))
CASE(get_reg_unknown, vcpu_get_reg(b->cpu, 0xdead0000ull, &(uint64_t){ 0 }))
CASE(set_reg_null, vcpu_set_reg(NULL, VCPU_REG_ARM64_PC, 0))
CASE(set_reg_x31, vcpu_set_reg(b->cpu, VCPU_REG_ARM64_X(31), 0))
CASE(get_seg_null, vcpu_x86_get_segment(NULL, VCPU_X86_CS, &(struct vcpu_x86_segment){ 0 }))
CASE(get_seg_arm64, vcpu_x86_get_segment(b->cpu, VCPU_X86_CS, &(struct vcpu_x86_segment){ 0 }))
CASE(set_seg_null_arg, vcpu_x86_set_segment(b->cpu, VCPU_X86_CS, NULL))
CASE(get_regs_null, vcpu_get_regs(NULL, &(struct vcpu_reg){ .id = VCPU_REG_ARM64_PC }, 1))
CASE(get_regs_null_array, vcpu_get_regs(b->cpu, NULL, 1))
CASE(set_regs_other_arch, vcpu_set_regs(b->cpu, &(struct vcpu_reg){ .id = VCPU_REG_X86_RIP }, 1))
CASE(set_regs_too_many, vcpu_set_regs(b->cpu, &(struct vcpu_reg){ .id = VCPU_REG_ARM64_PC },
				      VCPU_REGS_MAX + 1))
CASE(run_null, vcpu_run(NULL, &no_handlers, NULL))
CASE(run_null_handlers, vcpu_run(b->cpu, NULL, NULL))
static void later_handler(void) {}
CASE(run_reserved_handler,
     vcpu_run(b->cpu, &(struct vcpu_handlers){ .reserved[8] = later_handler }, NULL))
CASE(kick_null, vcpu_kick(NULL))
/* The mock's own API */
CASE(mock_open_null, vcpu_mock_open(VCPU_BACKEND_KVM, NULL, NULL, &(struct vcpu_hv *){ 0 }))
CASE(mock_open_bad_backend,
     vcpu_mock_open((enum vcpu_backend)42, NULL, &(struct vcpu_mock *){ 0 }, &(struct vcpu_hv *){ 0 }))
CASE(mock_open_reserved,
     vcpu_mock_open(VCPU_BACKEND_KVM, &(struct vcpu_mock_config){ .reserved = { 1 } },
		    &(struct vcpu_mock *){ 0 }, &(struct vcpu_hv *){ 0 }))
CASE(mock_destroy_null, vcpu_mock_destroy(NULL))
CASE(mock_destroy_busy, vcpu_mock_destroy(&b->mock))
CASE(mock_script_null, vcpu_mock_script(NULL, 0, NULL, 0))
CASE(mock_script_id, vcpu_mock_script(b->mock, 5000, NULL, 0))
CASE(mock_script_steps, vcpu_mock_script(b->mock, 0, NULL, 3))
CASE(mock_script_op, vcpu_mock_script(b->mock, 0, &(struct vcpu_mock_step){ .op = 999 }, 1))
CASE(mock_fail_call_past, vcpu_mock_fail_call(b->mock, 1, EIO))
CASE(mock_fail_call_errno, vcpu_mock_fail_call(b->mock, 1000000, 0))
CASE(mock_call_info_null, vcpu_mock_call_info(b->mock, 1, NULL))

static const struct row rows[] = {
	{ "vcpu_hv_open(NULL out)", hv_open_null_out, -EINVAL, NONE },
	{ "vcpu_hv_open(backend 99)", hv_open_bad_backend, -EINVAL, NONE },
	{ "vcpu_hv_open_path(AUTO)", hv_open_path_auto, -EINVAL, NONE },
	{ "vcpu_hv_open_path(NULL path)", hv_open_path_null, -EINVAL, NONE },
	{ "vcpu_hv_close(NULL)", hv_close_null, -EINVAL, NONE },
	{ "vcpu_hv_close(VMs alive)", hv_close_busy, -EBUSY, HV },
	{ "vcpu_hv_check(NULL)", hv_check_null, -EINVAL, NONE },
	{ "vcpu_hv_check(NULL value)", hv_check_null_value, -EINVAL, HV },
	{ "vcpu_hv_check(cap 999)", hv_check_bad_cap, -EINVAL, HV },
	{ "vcpu_hv_set_kick_signal(vCPUs exist)", kick_signal_busy, -EBUSY, HV },
	{ "vcpu_hv_set_kick_signal(SIGKILL)", kick_signal_kill, -EINVAL, HV },
	{ "vcpu_hv_set_kick_signal(1000)", kick_signal_range, -EINVAL, HV },
	{ "vcpu_hv_set_kick_signal(SIGSEGV)", kick_signal_segv, -EINVAL, HV },
	{ "vcpu_hv_set_kick_signal(SIGBUS)", kick_signal_bus, -EINVAL, HV },
	{ "vcpu_hv_set_kick_signal(NULL)", kick_signal_null, -EINVAL, NONE },
	{ "vcpu_kick_signal(NULL)", kick_signal_get_null, -EINVAL, NONE },
	{ "vcpu_vm_create(NULL hv)", vm_create_null_hv, -EINVAL, NONE },
	{ "vcpu_vm_create(NULL out)", vm_create_null_out, -EINVAL, HV },
	{ "vcpu_vm_create(reserved)", vm_create_reserved, -EINVAL, HV },
	{ "vcpu_vm_create(unknown flags)", vm_create_flags, -EINVAL, HV },
	{ "vcpu_vm_create(ipa_bits 99)", vm_create_ipa, -EINVAL, HV },
	{ "vcpu_vm_destroy(NULL)", vm_destroy_null, -EINVAL, NONE },
	{ "vcpu_vm_destroy(&NULL: second destroy)", vm_destroy_null_handle, -EINVAL, NONE },
	{ "vcpu_vm_destroy(vCPUs alive)", vm_destroy_busy, -EBUSY, VM },
	{ "vcpu_vm_check(NULL)", vm_check_null, -EINVAL, NONE },
	{ "vcpu_vm_check(NULL value)", vm_check_null_value, -EINVAL, VM },
	{ "vcpu_vm_map(NULL)", vm_map_null, -EINVAL, NONE },
	{ "vcpu_vm_map(NULL host)", vm_map_null_host, -EINVAL, VM },
	{ "vcpu_vm_map(size 0)", vm_map_zero, -EINVAL, VM },
	{ "vcpu_vm_map(gpa unaligned)", vm_map_unaligned_gpa, -EINVAL, VM },
	{ "vcpu_vm_map(host unaligned)", vm_map_unaligned_host, -EINVAL, VM },
	{ "vcpu_vm_map(wraps)", vm_map_wrap, -EINVAL, VM },
	{ "vcpu_vm_map(unknown flags)", vm_map_flags, -EINVAL, VM },
	{ "vcpu_vm_map(overlap)", vm_map_overlap, -EEXIST, VM },
	{ "vcpu_vm_unmap(NULL)", vm_unmap_null, -EINVAL, NONE },
	{ "vcpu_vm_unmap(no region)", vm_unmap_missing, -ENOENT, VM },
	{ "vcpu_vm_unmap(part of a region)", vm_unmap_partial, -ENOENT, VM },
	{ "vcpu_vm_alloc(NULL)", vm_alloc_null, -EINVAL, NONE },
	{ "vcpu_vm_alloc(NULL host)", vm_alloc_null_host, -EINVAL, VM },
	{ "vcpu_vm_alloc(unaligned)", vm_alloc_unaligned, -EINVAL, VM },
	{ "vcpu_vm_alloc(overlap)", vm_alloc_overlap, -EEXIST, VM },
	{ "vcpu_vm_set_dtb(NULL)", vm_set_dtb_null, -EINVAL, NONE },
	{ "vcpu_vm_set_dtb(size 0)", vm_set_dtb_empty, -EINVAL, VM },
	{ "vcpu_vm_set_dtb(on KVM)", vm_set_dtb_kvm, -EOPNOTSUPP, VM },
	{ "vcpu_vm_start(NULL)", vm_start_null, -EINVAL, NONE },
	{ "vcpu_vm_pause(NULL)", vm_pause_null, -EINVAL, NONE },
	{ "vcpu_vm_pause(on KVM)", vm_pause_kvm, -EOPNOTSUPP, VM },
	{ "vcpu_vm_reset(NULL)", vm_reset_null, -EINVAL, NONE },
	{ "vcpu_vm_reset(on KVM)", vm_reset_kvm, -EOPNOTSUPP, VM },
	{ "vcpu_vm_irqfd(NULL)", vm_irqfd_null, -EINVAL, NONE },
	{ "vcpu_vm_irqfd(NULL irqfd)", vm_irqfd_null_arg, -EINVAL, VM },
	{ "vcpu_vm_irqfd(unknown flags)", vm_irqfd_flags, -EINVAL, VM },
	{ "vcpu_vm_irqfd(fd -5)", vm_irqfd_negative_fd, -EBADF, VM },
	{ "vcpu_vm_irqfd(INTID 3)", vm_irqfd_not_spi, -EINVAL, VM },
	{ "vcpu_vm_irqfd(msi_data without MSI)", vm_irqfd_msi_fields, -EINVAL, VM },
	{ "vcpu_vm_ioeventfd(NULL)", vm_ioeventfd_null, -EINVAL, NONE },
	{ "vcpu_vm_ioeventfd(NULL ioeventfd)", vm_ioeventfd_null_arg, -EINVAL, VM },
	{ "vcpu_vm_ioeventfd(len 5)", vm_ioeventfd_len, -EINVAL, VM },
	{ "vcpu_vm_ioeventfd(PIO on arm64)", vm_ioeventfd_pio_arm64, -EINVAL, VM },
	{ "vcpu_vm_signal_msi(NULL)", vm_msi_null, -EINVAL, NONE },
	{ "vcpu_vm_signal_msi(data > 32 bits)", vm_msi_data, -EINVAL, VM },
	{ "vcpu_vm_set_irq_line(NULL)", vm_irq_line_null, -EINVAL, NONE },
	{ "vcpu_vm_set_irq_line(level 2)", vm_irq_line_level, -EINVAL, VM },
	{ "vcpu_vm_set_irq_line(INTID 5000)", vm_irq_line_range, -EINVAL, VM },
	{ "vcpu_vm_create_gic_v3(NULL)", gic_null, -EINVAL, NONE },
	{ "vcpu_vm_create_gic_v3(unaligned)", gic_unaligned, -EINVAL, VM },
	{ "vcpu_vm_create_gic_v3(33 irqs)", gic_nr_irqs, -EINVAL, VM },
	{ "vcpu_x86_create_irqchip(NULL)", x86_irqchip_null, -EINVAL, NONE },
	{ "vcpu_x86_create_irqchip(arm64 VM)", x86_irqchip_arm64, -EINVAL, VM },
	{ "vcpu_vm_forward_hypercalls(NULL)", forward_null, -EINVAL, NONE },
	{ "vcpu_vm_forward_hypercalls(count 0)", forward_empty, -EINVAL, VM },
	{ "vcpu_vm_forward_hypercalls(wraps)", forward_wrap, -EINVAL, VM },
	{ "vcpu_create(NULL vm)", create_null_vm, -EINVAL, NONE },
	{ "vcpu_create(NULL out)", create_null_out, -EINVAL, VM },
	{ "vcpu_create(unknown flags)", create_flags, -EINVAL, VM },
	{ "vcpu_create(id in use)", create_twice, -EEXIST, VM },
	{ "vcpu_create(id 100000)", create_id_range, -EINVAL, VM },
	{ "vcpu_destroy(NULL)", destroy_null, -EINVAL, NONE },
	{ "vcpu_destroy(&NULL: second destroy)", destroy_null_handle, -EINVAL, NONE },
	{ "vcpu_get_reg(NULL)", get_reg_null, -EINVAL, NONE },
	{ "vcpu_get_reg(NULL value)", get_reg_null_value, -EINVAL, CPU },
	{ "vcpu_get_reg(x86 id on arm64)", get_reg_other_arch, -EINVAL, CPU },
	{ "vcpu_get_reg(unknown id)", get_reg_unknown, -EINVAL, CPU },
	{ "vcpu_set_reg(NULL)", set_reg_null, -EINVAL, NONE },
	{ "vcpu_set_reg(x31)", set_reg_x31, -EINVAL, CPU },
	{ "vcpu_x86_get_segment(NULL)", get_seg_null, -EINVAL, NONE },
	{ "vcpu_x86_get_segment(arm64 vCPU)", get_seg_arm64, -EINVAL, CPU },
	{ "vcpu_x86_set_segment(NULL segment)", set_seg_null_arg, -EINVAL, CPU },
	{ "vcpu_get_regs(NULL)", get_regs_null, -EINVAL, NONE },
	{ "vcpu_get_regs(NULL array)", get_regs_null_array, -EINVAL, CPU },
	{ "vcpu_set_regs(x86 id on arm64)", set_regs_other_arch, -EINVAL, CPU },
	{ "vcpu_set_regs(VCPU_REGS_MAX + 1)", set_regs_too_many, -EINVAL, CPU },
	{ "vcpu_run(NULL)", run_null, -EINVAL, NONE },
	{ "vcpu_run(NULL handlers)", run_null_handlers, -EINVAL, CPU },
	{ "vcpu_run(reserved handler set)", run_reserved_handler, -EINVAL, CPU },
	{ "vcpu_kick(NULL)", kick_null, -EINVAL, NONE },
	{ "vcpu_mock_open(NULL mock)", mock_open_null, -EINVAL, NONE },
	{ "vcpu_mock_open(backend 42)", mock_open_bad_backend, -EINVAL, NONE },
	{ "vcpu_mock_open(reserved)", mock_open_reserved, -EINVAL, NONE },
	{ "vcpu_mock_destroy(NULL)", mock_destroy_null, -EINVAL, NONE },
	{ "vcpu_mock_destroy(handle open)", mock_destroy_busy, -EBUSY, NONE },
	{ "vcpu_mock_script(NULL)", mock_script_null, -EINVAL, NONE },
	{ "vcpu_mock_script(id 5000)", mock_script_id, -EINVAL, NONE },
	{ "vcpu_mock_script(NULL steps)", mock_script_steps, -EINVAL, NONE },
	{ "vcpu_mock_script(op 999)", mock_script_op, -EINVAL, NONE },
	{ "vcpu_mock_fail_call(past call)", mock_fail_call_past, -EINVAL, NONE },
	{ "vcpu_mock_fail_call(errno 0)", mock_fail_call_errno, -EINVAL, NONE },
	{ "vcpu_mock_call_info(NULL out)", mock_call_info_null, -EINVAL, NONE },
};

/* On an x86_64 KVM VM with vCPU 0 and no irqchip, and on an ACRN VM. */
CASE(x86_irqchip_flags, vcpu_x86_create_irqchip(b->vm, 1u << 4))
CASE(x86_irqchip_after_vcpu, vcpu_x86_create_irqchip(b->vm, VCPU_X86_IRQCHIP_PIT))
CASE(x86_irqchip_after_vcpu_plain, vcpu_x86_create_irqchip(b->vm, 0))
CASE(x86_irq_line_no_irqchip, vcpu_vm_set_irq_line(b->vm, 4, 1))
CASE(x86_irq_line_gsi, vcpu_vm_set_irq_line(b->vm, 24, 1))
CASE(x86_irqfd_gsi, vcpu_vm_irqfd(b->vm, &(struct vcpu_irqfd){ .fd = 0, .irq = 24 }))
CASE(x86_get_seg_null_out, vcpu_x86_get_segment(b->cpu, VCPU_X86_CS, NULL))
CASE(acrn_irqchip, vcpu_x86_create_irqchip(b->vm, VCPU_X86_IRQCHIP_PIT))
CASE(acrn_irqchip_flags, vcpu_x86_create_irqchip(b->vm, 1u << 31))

static const struct row x86_rows[] = {
	{ "vcpu_x86_create_irqchip(unknown flags)", x86_irqchip_flags, -EINVAL, VM },
	{ "vcpu_x86_create_irqchip(after vcpu_create)", x86_irqchip_after_vcpu, -EINVAL, VM },
	{ "vcpu_x86_create_irqchip(0, after vcpu_create)", x86_irqchip_after_vcpu_plain, -EINVAL,
	  VM },
	{ "vcpu_vm_set_irq_line(x86, no irqchip)", x86_irq_line_no_irqchip, -ENXIO, VM },
	{ "vcpu_vm_set_irq_line(GSI 24)", x86_irq_line_gsi, -EINVAL, VM },
	{ "vcpu_vm_irqfd(GSI 24)", x86_irqfd_gsi, -EINVAL, VM },
	{ "vcpu_x86_get_segment(NULL out)", x86_get_seg_null_out, -EINVAL, CPU },
};

static const struct row acrn_rows[] = {
	{ "vcpu_x86_create_irqchip(on ACRN)", acrn_irqchip, -EOPNOTSUPP, VM },
	{ "vcpu_x86_create_irqchip(on ACRN, unknown flags)", acrn_irqchip_flags, -EINVAL, VM },
};

static const char *detail_of(const struct bx *b, enum where w)
{
	switch (w) {
	case HV:
		return vcpu_hv_last_error(b->hv);
	case VM:
		return vcpu_vm_last_error(b->vm);
	case CPU:
		return vcpu_last_error(b->cpu);
	default:
		return NULL;
	}
}

/* Each row must return its errno and leave a fresh detail on its handle; returns the misses. */
static unsigned run_rows(struct bx *b, const struct row *table, size_t n)
{
	unsigned bad = 0;

	for (size_t i = 0; i < n; i++) {
		const struct row *r = &table[i];
		const char *d;
		int rc;

		char before[256] = "";

		/*
		 * Leave a known detail on the handle first, so a stale one cannot
		 * pass for this row's: the row must replace it.
		 */
		if (r->detail == HV)
			(void)vcpu_hv_set_kick_signal(b->hv, -77);
		else if (r->detail == VM)
			(void)vcpu_vm_set_irq_line(b->vm, 40, 77);
		else if (r->detail == CPU)
			(void)vcpu_set_reg(b->cpu, 0x7777777ull, 0);
		d = detail_of(b, r->detail);
		if (d)
			snprintf(before, sizeof(before), "%s", d);
		rc = r->call(b);
		d = detail_of(b, r->detail);
		if (rc != r->expect ||
		    (r->detail != NONE && (!d || !d[0] || strcmp(d, before) == 0))) {
			print_message("%s: returned %d (want %d), detail \"%s\"\n", r->what, rc,
				      r->expect, d ? d : "(none)");
			bad++;
		}
	}
	return bad;
}

static void test_bad_input_table(void **state)
{
	long fds = count_open_fds(), maps = count_mappings();
	struct vcpu_mock_config cfg = { .arch = VCPU_ARCH_ARM64 };
	struct vcpu_mock_step st = { .op = VCPU_MOCK_MMIO_WRITE, .addr = 0x1000, .len = 4 };
	struct bx b = { .page = (size_t)sysconf(_SC_PAGESIZE) };
	unsigned bad = 0;

	(void)state;
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_KVM, &cfg, &b.mock, &b.hv), 0);
	assert_int_equal(vcpu_vm_create(b.hv, NULL, &b.vm), 0);
	assert_int_equal(vcpu_create(b.vm, 0, 0, &b.cpu), 0);
	b.ram = mmap(NULL, 2 * b.page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(b.ram != MAP_FAILED);
	assert_int_equal(vcpu_vm_map(b.vm, 0x100000, b.ram, 2 * b.page, 0), 0);

	bad = run_rows(&b, rows, ARRAY_SIZE(rows));
	assert_int_equal(bad, 0);
	assert_true(b.hv && b.vm && b.cpu && b.mock);

	/* The handles are still fine: a run and an orderly teardown work. */
	assert_int_equal(vcpu_mock_script(b.mock, 0, &st, 1), 0);
	assert_int_equal(vcpu_run(b.cpu, &io_only, NULL), -EIO); /* script exhausted after one */
	assert_int_equal(vcpu_mock_steps_done(b.mock, 0), 1);
	assert_int_equal(vcpu_destroy(&b.cpu), 0);
	assert_null(b.cpu);
	assert_int_equal(vcpu_destroy(&b.cpu), -EINVAL); /* the second destroy is harmless */
	assert_int_equal(vcpu_vm_destroy(&b.vm), 0);
	assert_int_equal(vcpu_vm_destroy(&b.vm), -EINVAL);
	assert_int_equal(vcpu_hv_close(b.hv), 0);
	assert_int_equal(vcpu_mock_destroy(&b.mock), 0);
	assert_int_equal(vcpu_mock_destroy(&b.mock), -EINVAL);
	munmap(b.ram, 2 * b.page);
	assert_int_equal(count_open_fds(), fds);
	assert_int_equal(count_mappings(), maps);
}

/*
 * The x86 irqchip's rows on an x86_64 KVM VM that already has a vCPU, and on
 * ACRN; afterwards the VM still works without an irqchip and nothing leaked.
 */
static void test_bad_input_x86(void **state)
{
	long fds = count_open_fds(), maps = count_mappings();
	struct vcpu_mock_config cfg = { .arch = VCPU_ARCH_X86_64 };
	struct vcpu_mock_step st = { .op = VCPU_MOCK_HLT };
	struct bx x = { .page = (size_t)sysconf(_SC_PAGESIZE) };
	struct bx a = { .page = x.page };
	const struct vcpu_exit *e;

	(void)state;
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_KVM, &cfg, &x.mock, &x.hv), 0);
	assert_int_equal(vcpu_vm_create(x.hv, NULL, &x.vm), 0);
	assert_int_equal(vcpu_create(x.vm, 0, 0, &x.cpu), 0);
	assert_int_equal(run_rows(&x, x86_rows, ARRAY_SIZE(x86_rows)), 0);
	/* Still no irqchip: HLT exits to the VMM. */
	assert_int_equal(vcpu_mock_script(x.mock, 0, &st, 1), 0);
	assert_int_equal(vcpu_run(x.cpu, &no_handlers, NULL), -ENOSYS);
	e = vcpu_last_exit(x.cpu);
	assert_int_equal(e->kind, VCPU_EXIT_HALT);
	assert_int_equal(vcpu_destroy(&x.cpu), 0);
	assert_int_equal(vcpu_vm_destroy(&x.vm), 0);
	assert_int_equal(vcpu_hv_close(x.hv), 0);
	assert_int_equal(vcpu_mock_destroy(&x.mock), 0);

	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_ACRN, NULL, &a.mock, &a.hv), 0);
	assert_int_equal(vcpu_vm_create(a.hv, NULL, &a.vm), 0);
	assert_int_equal(run_rows(&a, acrn_rows, ARRAY_SIZE(acrn_rows)), 0);
	assert_int_equal(vcpu_vm_destroy(&a.vm), 0);
	assert_int_equal(vcpu_hv_close(a.hv), 0);
	assert_int_equal(vcpu_mock_destroy(&a.mock), 0);
	assert_int_equal(count_open_fds(), fds);
	assert_int_equal(count_mappings(), maps);
}

/* Functions without an errno return document their answer for NULL. */
static void test_null_handles_of_accessors(void **state)
{
	(void)state;
	assert_int_equal(vcpu_hv_backend(NULL), VCPU_BACKEND_AUTO);
	assert_int_equal(vcpu_hv_arch(NULL), VCPU_ARCH_HOST);
	assert_int_equal(vcpu_id(NULL), UINT32_MAX);
	assert_null(vcpu_last_exit(NULL));
	assert_true(strlen(vcpu_hv_last_error(NULL)) > 0);
	assert_true(strlen(vcpu_vm_last_error(NULL)) > 0);
	assert_true(strlen(vcpu_last_error(NULL)) > 0);
	assert_string_equal(vcpu_backend_name((enum vcpu_backend)77), "unknown");
	assert_string_equal(vcpu_exit_kind_name(9999), "invalid");
	assert_int_equal(vcpu_mock_steps_done(NULL, 0), 0);
	assert_int_equal(vcpu_mock_failures(NULL, NULL), 0);
	assert_int_equal(vcpu_mock_live_objects(NULL), 0);
	assert_int_equal(vcpu_mock_calls(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_input_table),
		cmocka_unit_test(test_bad_input_x86),
		cmocka_unit_test(test_null_handles_of_accessors),
	};

	(void)count_open_fds();
	(void)count_mappings();
	fflush(stdout);
	return cmocka_run_group_tests_name("bad-input", tests, NULL, NULL);
}
