// SPDX-License-Identifier: MIT
/* The raw loop on the real driver: plain system calls, as a VMM without libvcpu makes them. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "raw.h"

static inline int raw_sys_ioctl(int fd, unsigned long req, unsigned long arg)
{
	int v = ioctl(fd, req, arg);

	return v < 0 ? -errno : v;
}

static inline int raw_sys_open(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static inline int raw_sys_mmap(int fd, size_t len, void **out)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

#define RAW_OPS raw_kvm_ops
#define RAW_OPEN(r) raw_sys_open()
#define RAW_CLOSE(r, fd) close(fd)
#define RAW_IOCTL(r, fd, req, arg) raw_sys_ioctl((fd), (req), (arg))
#define RAW_MMAP(r, fd, len, out) raw_sys_mmap((fd), (len), (out))
#define RAW_MUNMAP(r, p, len) munmap((p), (len))

#include "raw_impl.h"
