// SPDX-License-Identifier: MIT
/* The real kernel behind the syscall seam: plain syscalls, errno folded into the return. */
#define _GNU_SOURCE
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int linux_open(void *ctx, const char *path, int flags)
{
	(void)ctx;
	int fd = open(path, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int linux_close(void *ctx, int fd)
{
	(void)ctx;
	/* Linux closes the fd even when close() reports EINTR: never retry. */
	return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

static int linux_ioctl(void *ctx, int fd, unsigned long req, unsigned long arg)
{
	(void)ctx;
	int r = ioctl(fd, req, arg);
	return r < 0 ? -errno : r;
}

static int linux_mmap(void *ctx, int fd, size_t len, int prot, off_t off, void **out)
{
	(void)ctx;
	void *p = mmap(NULL, len, prot, MAP_SHARED, fd, off);
	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

static int linux_munmap(void *ctx, void *addr, size_t len)
{
	(void)ctx;
	return munmap(addr, len) < 0 ? -errno : 0;
}

static int linux_signal_thread(void *ctx, pid_t tid, int sig)
{
	(void)ctx;
	/* tgkill, not pthread_kill: a tid stays meaningful in a signal handler. */
	long r = syscall(SYS_tgkill, (long)getpid(), (long)tid, (long)sig);
	return r < 0 ? -errno : 0;
}

const struct vcpu_sys vcpu_sys_linux = {
	.abi = VCPU_SYS_ABI,
	.open = linux_open,
	.close = linux_close,
	.ioctl = linux_ioctl,
	.mmap = linux_mmap,
	.munmap = linux_munmap,
	.signal_thread = linux_signal_thread,
	.release = NULL,
};
