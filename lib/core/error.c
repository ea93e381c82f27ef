// SPDX-License-Identifier: MIT
/* Error details and names: the strings VMM logs are made of. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 3, 0)))
static int vfail(char *buf, int err, const char *fmt, va_list ap)
{
	char ebuf[64];
	int n = vsnprintf(buf, VCPU_ERRLEN, fmt, ap);

	/* Append the errno's text so every detail says both what and why. */
	if (n >= 0 && n < VCPU_ERRLEN && err < 0)
		snprintf(buf + n, (size_t)(VCPU_ERRLEN - n), " (%s)",
			 strerror_r(-err, ebuf, sizeof(ebuf)));
	return err;
}

int vcpu_fail(char *buf, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(buf, err, fmt, ap);
	va_end(ap);
	return err;
}

/* A spin lock: the section is one snprintf, and failures are rare. */
static void err_lock(atomic_flag *busy)
{
	while (atomic_flag_test_and_set_explicit(busy, memory_order_acquire))
		sched_yield();
}

int vcpu_fail_shared(atomic_flag *busy, char *buf, int err, const char *fmt, ...)
{
	va_list ap;

	err_lock(busy);
	va_start(ap, fmt);
	vfail(buf, err, fmt, ap);
	va_end(ap);
	atomic_flag_clear_explicit(busy, memory_order_release);
	return err;
}

void vcpu_err_set(atomic_flag *busy, char *buf, const char *detail)
{
	err_lock(busy);
	snprintf(buf, VCPU_ERRLEN, "%s", detail);
	atomic_flag_clear_explicit(busy, memory_order_release);
}

VCPU_API const char *vcpu_backend_name(enum vcpu_backend backend)
{
	switch (backend) {
	case VCPU_BACKEND_AUTO: return "auto";
	case VCPU_BACKEND_KVM: return "kvm";
	case VCPU_BACKEND_GUNYAH: return "gunyah";
	case VCPU_BACKEND_GENIEZONE: return "geniezone";
	case VCPU_BACKEND_ACRN: return "acrn";
	}
	return "unknown";
}

VCPU_API const char *vcpu_exit_kind_name(uint32_t kind)
{
	static const char *const names[] = {
		[VCPU_EXIT_NONE] = "none",
		[VCPU_EXIT_MMIO] = "mmio",
		[VCPU_EXIT_PIO] = "pio",
		[VCPU_EXIT_HYPERCALL] = "hypercall",
		[VCPU_EXIT_SYSTEM_EVENT] = "system-event",
		[VCPU_EXIT_MEMORY_FAULT] = "memory-fault",
		[VCPU_EXIT_INTERNAL_ERROR] = "internal-error",
		[VCPU_EXIT_FAIL_ENTRY] = "fail-entry",
		[VCPU_EXIT_DEBUG] = "debug",
		[VCPU_EXIT_HALT] = "halt",
		[VCPU_EXIT_SHUTDOWN] = "shutdown",
		[VCPU_EXIT_OTHER] = "other",
		[VCPU_EXIT_UNKNOWN] = "unknown",
		[VCPU_EXIT_PCI_CONFIG] = "pci-config",
		[VCPU_EXIT_EXCEPTION] = "exception",
	};
	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "invalid";
}

VCPU_API const char *vcpu_hv_last_error(const struct vcpu_hv *hv)
{
	return hv ? hv->err : "NULL hypervisor handle";
}

VCPU_API const char *vcpu_vm_last_error(const struct vcpu_vm *vm)
{
	return vm ? vm->err : "NULL VM handle";
}

VCPU_API const char *vcpu_last_error(const struct vcpu *cpu)
{
	return cpu ? cpu->err : "NULL vCPU handle";
}
