// SPDX-License-Identifier: MIT
/*
 * The benchmark seam (bench/seam.h): KVM's ABI answered from per-vCPU state.
 *
 * Only what libvcpu's KVM backend and the raw loop ask for is modelled, and
 * nothing is validated beyond what a benchmark needs to prove its guest ran:
 * this is a stand-in kernel for measuring, not a model (lib/mock is that).
 * File descriptors are plain numbers in three ranges (the handle, VMs,
 * vCPUs): no real fd, so a KVM_RUN costs a switch and a few stores.
 */
#define _GNU_SOURCE
#include "seam.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/internal.h"
#include "kvm/kvm_abi.h"

#define FD_KVM 100
#define FD_VM0 200
#define FD_VCPU0 1000
#define MAX_VMS 64
#define NCORE 36 /* x0..x30, sp, pc, pstate, sp_el1, elr_el1: (id - CORE_BASE) / 2 */

/* One vCPU, on cache lines of its own: threads running their vCPUs share nothing. */
struct bseam_vcpu {
	_Alignas(64) bool used;
	uint32_t id;
	struct kvm_run *run;
	size_t run_size;
	uint32_t last;       /* the pattern of the exit just given (0: none) */
	uint64_t exits;
	uint64_t failures;
	const char *first;
	uint64_t core[NCORE];
	struct kvm_regs_x86 regs;
	struct kvm_sregs sregs;
};

struct bseam {
	struct bseam_vcpu v[BSEAM_MAX_VCPUS];
	enum vcpu_arch arch;
	size_t page;
	bool vm_used[MAX_VMS];
	/* Written before the vCPU threads start, only read while they run. */
	uint32_t pattern[BSEAM_MAX_VCPUS];
};

static struct bseam_vcpu *vcpu_of(struct bseam *s, int fd)
{
	unsigned i = (unsigned)(fd - FD_VCPU0);

	return fd >= FD_VCPU0 && i < BSEAM_MAX_VCPUS && s->v[i].used ? &s->v[i] : NULL;
}

static bool is_vm(const struct bseam *s, int fd)
{
	unsigned i = (unsigned)(fd - FD_VM0);

	return fd >= FD_VM0 && i < MAX_VMS && s->vm_used[i];
}

static void fail(struct bseam_vcpu *v, const char *what)
{
	if (!v->failures++)
		v->first = what;
}

/* The last exit's write-back, as KVM would consume it at this entry. */
static void complete(struct bseam *s, struct bseam_vcpu *v)
{
	if (v->last == BSEAM_HYPERCALL) {
		uint64_t ret = s->arch == VCPU_ARCH_ARM64 ? v->core[0] : v->run->u.hypercall.ret;

		if (ret != BSEAM_HC_RET)
			fail(v, "a hypercall's result did not reach x0/RAX");
	}
	v->last = 0;
}

static int run(struct bseam *s, struct bseam_vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t p;

	if (!run)
		return -EINVAL;
	complete(s, v);
	if (__atomic_load_n(&run->immediate_exit, __ATOMIC_RELAXED)) {
		run->exit_reason = KVM_EXIT_INTR;
		return -EINTR;
	}
	p = s->pattern[v->id];
	switch (p) {
	case BSEAM_MMIO_WRITE: {
		/* arm64: str x5 (8 bytes); x86: mov [addr], al (1 byte). */
		uint64_t val = BSEAM_MMIO_VALUE;

		run->exit_reason = KVM_EXIT_MMIO;
		run->u.mmio.is_write = 1;
		if (s->arch == VCPU_ARCH_ARM64) {
			run->u.mmio.phys_addr = BSEAM_MMIO_ARM64;
			run->u.mmio.len = 8;
		} else {
			run->u.mmio.phys_addr = BSEAM_MMIO_X86;
			run->u.mmio.len = 1;
		}
		memcpy(run->u.mmio.data, &val, sizeof(val));
		break;
	}
	case BSEAM_HYPERCALL:
		run->exit_reason = KVM_EXIT_HYPERCALL;
		run->u.hypercall.nr = BSEAM_HC_NR;
		run->u.hypercall.flags = 0;
		if (s->arch == VCPU_ARCH_ARM64) {
			/* arm64 KVM leaves the arguments in x1..x7 (ONE_REG). */
			v->core[0] = BSEAM_HC_NR;
			for (unsigned i = 1; i <= 7; i++)
				v->core[i] = i;
		} else {
			for (unsigned i = 0; i < 6; i++)
				run->u.hypercall.args[i] = i + 1;
			run->u.hypercall.ret = 0;
		}
		break;
	case BSEAM_SYSTEM_EVENT:
		run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
		run->u.system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
		run->u.system_event.ndata = 1;
		run->u.system_event.data[0] = 0;
		break;
	case BSEAM_PIO_OUT:
		if (s->arch != VCPU_ARCH_X86_64)
			return -EINVAL;
		run->exit_reason = KVM_EXIT_IO;
		run->u.io.direction = KVM_EXIT_IO_OUT;
		run->u.io.size = 1;
		run->u.io.port = BSEAM_PIO_PORT;
		run->u.io.count = 1;
		run->u.io.data_offset = KVM_PIO_PAGE_OFFSET * s->page;
		((uint8_t *)run)[KVM_PIO_PAGE_OFFSET * s->page] = (uint8_t)BSEAM_MMIO_VALUE;
		break;
	default:
		return -EINVAL;
	}
	v->last = p;
	v->exits++;
	return 0;
}

static int one_reg(struct bseam_vcpu *v, bool set, const struct kvm_one_reg *r)
{
	uint64_t *val = (uint64_t *)(uintptr_t)r->addr;
	uint64_t off = r->id - KVM_REG_ARM64_CORE_BASE;

	if (r->id >= KVM_REG_ARM64_CORE_BASE && off < 2 * NCORE && off % 2 == 0) {
		if (set)
			v->core[off / 2] = *val;
		else
			*val = v->core[off / 2];
		return 0;
	}
	if ((r->id & ~0xffffull) == KVM_REG_ARM64_SYSREG_BASE) {
		if (!set)
			*val = 0;
		return 0;
	}
	return -ENOENT;
}

static int create_vcpu(struct bseam *s, unsigned long id)
{
	if (id >= BSEAM_MAX_VCPUS)
		return -EINVAL;
	for (unsigned i = 0; i < BSEAM_MAX_VCPUS; i++) {
		struct bseam_vcpu *v = &s->v[i];

		if (v->used)
			continue;
		memset(v, 0, sizeof(*v));
		v->used = true;
		v->id = (uint32_t)id;
		v->regs.rflags = 2;
		return FD_VCPU0 + (int)i;
	}
	return -EMFILE;
}

static int create_vm(struct bseam *s)
{
	for (unsigned i = 0; i < MAX_VMS; i++) {
		if (!s->vm_used[i]) {
			s->vm_used[i] = true;
			return FD_VM0 + (int)i;
		}
	}
	return -EMFILE;
}

static int check_extension(unsigned long cap)
{
	switch (cap) {
	case KVM_CAP_NR_MEMSLOTS: return 32;
	case KVM_CAP_MAX_VCPUS: return BSEAM_MAX_VCPUS;
	case KVM_CAP_MAX_VCPU_ID: return BSEAM_MAX_VCPUS;
	case KVM_CAP_IMMEDIATE_EXIT: return 1;
	case KVM_CAP_ARM_PSCI_0_2: return 1;
	case KVM_CAP_ONE_REG: return 1;
	default: return 0;
	}
}

int bseam_ioctl(void *ctx, int fd, unsigned long req, unsigned long arg)
{
	struct bseam *s = ctx;
	struct bseam_vcpu *v;

	/* The exit path first: everything else is setup. */
	if (req == KVM_RUN) {
		v = vcpu_of(s, fd);
		return v ? run(s, v) : -EBADF;
	}
	if (req == KVM_GET_ONE_REG || req == KVM_SET_ONE_REG) {
		v = vcpu_of(s, fd);
		if (!v || s->arch != VCPU_ARCH_ARM64)
			return v ? -ENOTTY : -EBADF;
		return one_reg(v, req == KVM_SET_ONE_REG, (const struct kvm_one_reg *)arg);
	}
	if (fd == FD_KVM) {
		switch (req) {
		case KVM_GET_API_VERSION: return KVM_API_VERSION_EXPECTED;
		case KVM_GET_VCPU_MMAP_SIZE: return (int)(3 * s->page); /* run, PIO, coalesced MMIO */
		case KVM_CHECK_EXTENSION: return check_extension(arg);
		case KVM_CREATE_VM: return create_vm(s);
		case KVM_GET_SUPPORTED_CPUID:
			if (s->arch != VCPU_ARCH_X86_64)
				return -ENOTTY;
			((struct kvm_cpuid2 *)arg)->nent = 0;
			return 0;
		default: return -ENOTTY;
		}
	}
	if (is_vm(s, fd)) {
		switch (req) {
		case KVM_CHECK_EXTENSION: return check_extension(arg);
		case KVM_CREATE_VCPU: return create_vcpu(s, arg);
		case KVM_SET_USER_MEMORY_REGION: return 0;
		case KVM_SET_TSS_ADDR: return s->arch == VCPU_ARCH_X86_64 ? 0 : -ENOTTY;
		case KVM_ARM_PREFERRED_TARGET:
			if (s->arch != VCPU_ARCH_ARM64)
				return -ENOTTY;
			memset((void *)arg, 0, sizeof(struct kvm_vcpu_init));
			((struct kvm_vcpu_init *)arg)->target = KVM_ARM_TARGET_GENERIC_V8;
			return 0;
		case KVM_HAS_DEVICE_ATTR:
		case KVM_SET_DEVICE_ATTR:
		case KVM_ENABLE_CAP:
			return s->arch == VCPU_ARCH_ARM64 ? 0 : -ENOTTY;
		default: return -ENOTTY;
		}
	}
	v = vcpu_of(s, fd);
	if (!v)
		return -EBADF;
	/* vcpu_run() gives KVM_RUN its signal mask (once per mask). */
	if (req == KVM_SET_SIGNAL_MASK)
		return ((const struct kvm_signal_mask *)arg)->len == KVM_SIGSET_SIZE ? 0 : -EINVAL;
	if (s->arch == VCPU_ARCH_ARM64)
		return req == KVM_ARM_VCPU_INIT ? 0 : -ENOTTY;
	switch (req) {
	case KVM_SET_CPUID2: return 0;
	case KVM_GET_REGS_X86: memcpy((void *)arg, &v->regs, sizeof(v->regs)); return 0;
	case KVM_SET_REGS_X86: memcpy(&v->regs, (const void *)arg, sizeof(v->regs)); return 0;
	case KVM_GET_SREGS: memcpy((void *)arg, &v->sregs, sizeof(v->sregs)); return 0;
	case KVM_SET_SREGS: memcpy(&v->sregs, (const void *)arg, sizeof(v->sregs)); return 0;
	default: return -ENOTTY;
	}
}

int bseam_open(void *ctx, const char *path, int flags)
{
	(void)ctx;
	(void)path;
	(void)flags;
	return FD_KVM;
}

int bseam_close(void *ctx, int fd)
{
	struct bseam *s = ctx;
	struct bseam_vcpu *v = vcpu_of(s, fd);

	if (v)
		v->used = false;
	else if (is_vm(s, fd))
		s->vm_used[fd - FD_VM0] = false;
	else if (fd != FD_KVM)
		return -EBADF;
	return 0;
}

int bseam_mmap(void *ctx, int fd, size_t len, int prot, off_t off, void **out)
{
	struct bseam *s = ctx;
	struct bseam_vcpu *v = vcpu_of(s, fd);

	(void)prot;
	if (!v || off != 0 || len < sizeof(struct kvm_run) || len % s->page || v->run)
		return -EINVAL;
	v->run = aligned_alloc(s->page, len);
	if (!v->run)
		return -ENOMEM;
	memset(v->run, 0, len);
	v->run_size = len;
	*out = v->run;
	return 0;
}

int bseam_munmap(void *ctx, void *addr, size_t len)
{
	struct bseam *s = ctx;

	for (unsigned i = 0; i < BSEAM_MAX_VCPUS; i++) {
		if (s->v[i].run == addr && s->v[i].run_size == len) {
			free(addr);
			s->v[i].run = NULL;
			return 0;
		}
	}
	return -EINVAL;
}

static int seam_signal_thread(void *ctx, pid_t tid, int sig)
{
	(void)ctx;
	return syscall(SYS_tgkill, (long)getpid(), (long)tid, (long)sig) < 0 ? -errno : 0;
}

static const struct vcpu_sys bseam_sys = {
	.abi = VCPU_SYS_ABI,
	.open = bseam_open,
	.close = bseam_close,
	.ioctl = bseam_ioctl,
	.mmap = bseam_mmap,
	.munmap = bseam_munmap,
	.signal_thread = seam_signal_thread,
};

struct bseam *bseam_new(enum vcpu_arch arch)
{
	size_t size = (sizeof(struct bseam) + 63) & ~(size_t)63;
	struct bseam *s = aligned_alloc(64, size);

	if (!s)
		return NULL;
	memset(s, 0, size);
	s->arch = arch;
	s->page = (size_t)sysconf(_SC_PAGESIZE);
	for (unsigned i = 0; i < BSEAM_MAX_VCPUS; i++)
		s->pattern[i] = BSEAM_MMIO_WRITE;
	return s;
}

void bseam_free(struct bseam *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < BSEAM_MAX_VCPUS; i++)
		free(s->v[i].run);
	free(s);
}

int bseam_open_hv(struct bseam *s, struct vcpu_hv **hv)
{
	return vcpu_hv_open_sys(VCPU_BACKEND_KVM, s->arch, "/dev/kvm", &bseam_sys, s, hv);
}

void bseam_set_pattern(struct bseam *s, uint32_t id, enum bseam_pattern p)
{
	if (id < BSEAM_MAX_VCPUS)
		s->pattern[id] = (uint32_t)p;
}

uint64_t bseam_exits(const struct bseam *s, uint32_t id)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < BSEAM_MAX_VCPUS; i++)
		if (s->v[i].used && s->v[i].id == id)
			n += s->v[i].exits;
	return n;
}

uint64_t bseam_failures(const struct bseam *s, const char **first)
{
	uint64_t n = 0;

	if (first)
		*first = "";
	for (unsigned i = 0; i < BSEAM_MAX_VCPUS; i++) {
		if (s->v[i].failures && first && !n)
			*first = s->v[i].first;
		n += s->v[i].failures;
	}
	return n;
}
