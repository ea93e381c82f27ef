/* SPDX-License-Identifier: MIT */
/*
 * The syscall seam: every call libvcpu makes into a kernel goes through one
 * of these tables, chosen when a hypervisor handle is opened.  lib/sys/linux.c
 * is the real kernel; lib/mock/ is the model of the drivers.  Nothing else in
 * the library calls open/ioctl/mmap directly, so a test can see (and a mock
 * can check) every kernel interaction.
 *
 * Conventions: return >= 0 on success and a negative errno on failure (never
 * -1 with errno), so results survive signal handlers and threads untouched.
 * signal_thread must be async-signal-safe (vcpu_kick() calls it).
 */
#ifndef VCPU_SYS_H
#define VCPU_SYS_H

#include <stddef.h>
#include <sys/types.h>

/*
 * The seam is shared by two libraries (libvcpu and libvcpu-mock): bump this
 * whenever struct vcpu_sys or the calling conventions below change.
 */
#define VCPU_SYS_ABI 1u

struct vcpu_sys {
	unsigned int abi; /* VCPU_SYS_ABI of the code that filled the table */
	int (*open)(void *ctx, const char *path, int flags);
	int (*close)(void *ctx, int fd);
	/* Returns the ioctl's non-negative result or -errno. */
	int (*ioctl)(void *ctx, int fd, unsigned long req, unsigned long arg);
	int (*mmap)(void *ctx, int fd, size_t len, int prot, off_t off, void **out);
	int (*munmap)(void *ctx, void *addr, size_t len);
	int (*signal_thread)(void *ctx, pid_t tid, int sig);
	/* The seam's owner is told the handle is gone (the mock counts it). */
	void (*release)(void *ctx);
};

/* The real kernel. */
extern const struct vcpu_sys vcpu_sys_linux;

/*
 * Page size of the host, asked once per handle (not a global), because the
 * mock may model a kernel with another page size one day.
 */
#endif
