// SPDX-License-Identifier: MIT
/*
 * The mock kernel driver: its public entry points, the fd table, the
 * mappings, the scripts and the failure record, and the syscall seam
 * (lib/sys/sys.h) that libvcpu calls instead of the kernel.
 *
 * Every object is a real memfd so that a leaked fd or mapping shows in
 * /proc/self/fd and /proc/self/maps exactly as a leaked KVM fd would.
 */
#define _GNU_SOURCE
#include "mock.h"
#include "../core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define MOCK_HOST_ARCH VCPU_ARCH_X86_64
#elif defined(__aarch64__)
#define MOCK_HOST_ARCH VCPU_ARCH_ARM64
#else
#define MOCK_HOST_ARCH VCPU_ARCH_HOST /* no modelled guest matches this host */
#endif

#define DEFAULT_MAX_VCPUS 8
#define DEFAULT_MEMSLOTS 32
#define DEFAULT_IPA_BITS 40
#define LIMIT_MAX_VCPUS 1024
#define LIMIT_MEMSLOTS 32764 /* KVM_USER_MEM_SLOTS */
#define MIN_IPA_BITS 32      /* ARM64_MIN_PARANGE_BITS */
#define MAX_IPA_BITS 52

bool mock_is_arm64(const struct vcpu_mock *m)
{
	return m->cfg.arch == VCPU_ARCH_ARM64;
}

static void lock_const(const struct vcpu_mock *m)
{
	/* The mock is always heap-allocated and non-const: the cast is defined. */
	pthread_mutex_lock(&((struct vcpu_mock *)m)->lock);
}

static void unlock_const(const struct vcpu_mock *m)
{
	pthread_mutex_unlock(&((struct vcpu_mock *)m)->lock);
}

/* Grow an array of @size-byte elements to hold one more; false when out of memory. */
bool mock_grow(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return true;
	ncap = *cap ? *cap * 2 : 8;
	p = realloc(*arr, ncap * size);
	if (!p)
		return false;
	*arr = p;
	*cap = ncap;
	return true;
}

/* ------------------------------------------------------------------------ */
/* Failure record                                                             */

void mock_fail(struct vcpu_mock *m, const char *fmt, ...)
{
	va_list ap;

	/* Only the first message is kept: later ones are usually its fallout. */
	if (m->nfail++ == 0) {
		va_start(ap, fmt);
		vsnprintf(m->fail, sizeof(m->fail), fmt, ap);
		va_end(ap);
	}
}

/* ------------------------------------------------------------------------ */
/* The fd table                                                               */

static ssize_t file_index(const struct vcpu_mock *m, int fd)
{
	for (size_t i = 0; i < m->nfiles; i++)
		if (m->files[i]->fd == fd)
			return (ssize_t)i;
	return -1;
}

struct mock_file *mock_file_new(struct vcpu_mock *m, const char *name, enum mock_kind kind,
				size_t size, int *err)
{
	struct mock_file *f;
	int fd;

	if (!mock_grow((void **)&m->files, &m->cap_files, m->nfiles, sizeof(*m->files))) {
		*err = -ENOMEM;
		return NULL;
	}
	fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0) {
		*err = -errno;
		return NULL;
	}
	if (size && ftruncate(fd, (off_t)size) < 0) {
		*err = -errno;
		close(fd);
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		*err = -ENOMEM;
		close(fd);
		return NULL;
	}
	f->fd = fd;
	f->kind = kind;
	f->refs = 1;
	m->files[m->nfiles++] = f;
	return f;
}

/* Take a reference for an ioctl: like fget(), the file survives a racing close(). */
struct mock_file *mock_file_get(struct vcpu_mock *m, int fd)
{
	ssize_t i = file_index(m, fd);

	if (i < 0)
		return NULL;
	m->files[i]->refs++;
	return m->files[i];
}

void mock_file_put(struct vcpu_mock *m, struct mock_file *f)
{
	if (--f->refs)
		return;
	/* doc/abi/kvm.md §1: vCPU and device fds hold a reference on their VM. */
	if (f->vm)
		mock_vm_put(f->vm);
	if (f->obj && m->drv->file_release)
		m->drv->file_release(m, f);
	free(f);
}

void mock_vm_put(struct mock_vm *vm)
{
	if (--vm->refs)
		return;
	/* The last fd of the VM is gone: the kernel destroys the VM and its vCPUs. */
	for (uint32_t i = 0; i < vm->mock->cfg.max_vcpus; i++)
		if (vm->vcpus[i])
			mock_vcpu_free(vm->vcpus[i]);
	free(vm->vcpus);
	for (uint32_t i = 0; vm->slots && i < vm->mock->cfg.nr_memslots; i++)
		free(vm->slots[i].dirty);
	free(vm->slots);
	free(vm->filter);
	free(vm->gic.cpus);
	free(vm->irqfds);
	free(vm->ioeventfds);
	free(vm);
}

int mock_close_locked(struct vcpu_mock *m, int fd)
{
	ssize_t i = file_index(m, fd);
	struct mock_file *f;

	if (i < 0)
		return -EBADF;
	f = m->files[i];
	m->files[i] = m->files[--m->nfiles];
	close(f->fd);
	mock_file_put(m, f);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Checks every modelled driver makes                                         */

/* eventfd_ctx_fdget(): no such file is EBADF, a file that is no eventfd EINVAL. */
int mock_check_eventfd(int fd)
{
	char path[64], target[64];
	ssize_t n;

	if (fd < 0 || fcntl(fd, F_GETFD) < 0)
		return -EBADF;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -EBADF;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[eventfd]") == 0 ? 0 : -EINVAL;
}

/* ------------------------------------------------------------------------ */
/* The syscall seam                                                           */

/*
 * Count a kernel call and decide whether it fails by injection (lock held).
 * Returns 0 to go on, or the injected -errno.  The number is returned in
 * @nr so the result can be recorded against it.
 */
static int call_begin(struct vcpu_mock *m, enum vcpu_mock_call call, unsigned long req,
		      uint64_t *nr)
{
	struct vcpu_mock_call_info *t;

	*nr = ++m->ncalls;
	t = &m->trace[*nr % MOCK_TRACE];
	*t = (struct vcpu_mock_call_info){ .call = call, .req = req };
	if (m->fault_at != *nr || call == VCPU_MOCK_CALL_MUNMAP)
		return 0;
	m->fault_at = 0;
	t->result = -m->fault_err;
	return -m->fault_err;
}

static void call_end(struct vcpu_mock *m, uint64_t nr, int result)
{
	if (m->ncalls - nr < MOCK_TRACE)
		m->trace[nr % MOCK_TRACE].result = result;
}

static int seam_open(void *ctx, const char *path, int flags)
{
	struct vcpu_mock *m = ctx;
	struct mock_file *f = NULL;
	int err = 0;

	uint64_t nr;

	(void)flags;
	pthread_mutex_lock(&m->lock);
	err = call_begin(m, VCPU_MOCK_CALL_OPEN, 0, &nr);
	if (err < 0)
		goto out;
	/* The only device node this driver provides. */
	if (!path || strcmp(path, m->drv->node) != 0) {
		err = path ? -ENOENT : -EFAULT;
		goto out;
	}
	f = mock_file_new(m, m->drv->name, MOCK_SYS, 0, &err);
	if (f && m->drv->open) {
		err = m->drv->open(m, f);
		if (err < 0) {
			mock_close_locked(m, f->fd);
			f = NULL;
		}
	}
	if (f)
		err = f->fd;
out:
	call_end(m, nr, err);
	pthread_mutex_unlock(&m->lock);
	return err;
}

static int seam_close(void *ctx, int fd)
{
	struct vcpu_mock *m = ctx;
	uint64_t nr;
	int r, injected;

	pthread_mutex_lock(&m->lock);
	injected = call_begin(m, VCPU_MOCK_CALL_CLOSE, 0, &nr);
	/* Linux releases the fd even when close() reports an error. */
	r = mock_close_locked(m, fd);
	if (injected < 0 && r == 0)
		r = injected;
	call_end(m, nr, r);
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int seam_ioctl(void *ctx, int fd, unsigned long req, unsigned long arg)
{
	struct vcpu_mock *m = ctx;
	struct mock_file *f;
	uint64_t nr;
	int r;

	pthread_mutex_lock(&m->lock);
	r = call_begin(m, VCPU_MOCK_CALL_IOCTL, req, &nr);
	f = r < 0 ? NULL : mock_file_get(m, fd);
	if (!f && r == 0)
		r = -EBADF;
	if (!f)
		call_end(m, nr, r);
	pthread_mutex_unlock(&m->lock);
	if (!f)
		return r;
	r = m->drv->ioctl(m, f, req, arg);
	pthread_mutex_lock(&m->lock);
	/* A KVM_RUN that slept may have been overtaken by later calls: fine, recorded by number. */
	call_end(m, nr, r);
	mock_file_put(m, f);
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int seam_mmap(void *ctx, int fd, size_t len, int prot, off_t off, void **out)
{
	struct vcpu_mock *m = ctx;
	uint64_t nr;
	ssize_t i;
	void *p;
	int r;

	if (!out)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	i = file_index(m, fd);
	r = call_begin(m, VCPU_MOCK_CALL_MMAP, 0, &nr);
	if (r == 0)
		r = i < 0 ? -EBADF : m->drv->mmap_check(m, m->files[i], len, off);
	if (r == 0 && !mock_grow((void **)&m->maps, &m->cap_maps, m->nmaps, sizeof(*m->maps)))
		r = -ENOMEM;
	if (r == 0) {
		/* The library and the mock's own view share the pages. */
		p = mmap(NULL, len, prot, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			r = -errno;
		} else {
			m->maps[m->nmaps++] = (struct mock_map){ .addr = p, .len = len };
			*out = p;
		}
	}
	call_end(m, nr, r);
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int seam_munmap(void *ctx, void *addr, size_t len)
{
	struct vcpu_mock *m = ctx;
	int r = -EINVAL;
	uint64_t nr;

	pthread_mutex_lock(&m->lock);
	(void)call_begin(m, VCPU_MOCK_CALL_MUNMAP, 0, &nr);
	/* Only whole mappings made through the seam: anything else is a library bug. */
	for (size_t i = 0; i < m->nmaps; i++) {
		if (m->maps[i].addr != addr || m->maps[i].len != len)
			continue;
		r = munmap(addr, len) < 0 ? -errno : 0;
		if (r == 0)
			m->maps[i] = m->maps[--m->nmaps];
		break;
	}
	call_end(m, nr, r);
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int seam_signal_thread(void *ctx, pid_t tid, int sig)
{
	struct vcpu_mock *m = ctx;

	atomic_fetch_add(&m->signals_sent, 1);
	/* A real signal: it is what interrupts a spinning guest's ppoll(). */
	long r = syscall(SYS_tgkill, (long)getpid(), (long)tid, (long)sig);

	return r < 0 ? -errno : 0;
}

static void seam_release(void *ctx)
{
	struct vcpu_mock *m = ctx;

	pthread_mutex_lock(&m->lock);
	m->hv_open = false;
	pthread_mutex_unlock(&m->lock);
}

static const struct vcpu_sys mock_sys = {
	.abi = VCPU_SYS_ABI,
	.open = seam_open,
	.close = seam_close,
	.ioctl = seam_ioctl,
	.mmap = seam_mmap,
	.munmap = seam_munmap,
	.signal_thread = seam_signal_thread,
	.release = seam_release,
};

/* ------------------------------------------------------------------------ */
/* Creation and destruction                                                   */

static bool reserved_zero(const uint32_t *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (r[i])
			return false;
	return true;
}

static int resolve_arch(uint32_t arch, uint32_t *out)
{
	if (arch == VCPU_ARCH_HOST) {
		if (MOCK_HOST_ARCH == VCPU_ARCH_HOST)
			return -EOPNOTSUPP;
		arch = MOCK_HOST_ARCH;
	}
	if (arch != VCPU_ARCH_X86_64 && arch != VCPU_ARCH_ARM64)
		return -EINVAL;
	*out = arch;
	return 0;
}

static int apply_config(const struct mock_driver *drv, const struct vcpu_mock_config *in,
			struct vcpu_mock_config *c)
{
	int r;

	if (in)
		*c = *in;
	else
		memset(c, 0, sizeof(*c));
	if (!reserved_zero(c->reserved, sizeof(c->reserved) / sizeof(c->reserved[0])) ||
	    (c->flags & ~drv->flags))
		return -EINVAL;
	/* Gunyah and GenieZone exist only on arm64, ACRN only on x86_64. */
	if (c->arch == VCPU_ARCH_HOST && !(drv->arches & (drv->arches - 1)))
		c->arch = (uint32_t)__builtin_ctz(drv->arches);
	r = resolve_arch(c->arch, &c->arch);
	if (r < 0)
		return r;
	if (!(drv->arches & (1u << c->arch)))
		return -EINVAL;
	if ((c->fault_at && (c->fault_errno <= 0 || c->fault_errno > 4095)) ||
	    (!c->fault_at && c->fault_errno))
		return -EINVAL;
	if (!c->max_vcpus)
		c->max_vcpus = DEFAULT_MAX_VCPUS;
	if (!c->nr_memslots)
		c->nr_memslots = DEFAULT_MEMSLOTS;
	if (!c->ipa_bits)
		c->ipa_bits = DEFAULT_IPA_BITS;
	if (c->max_vcpus > LIMIT_MAX_VCPUS || c->nr_memslots > LIMIT_MEMSLOTS ||
	    c->ipa_bits < MIN_IPA_BITS || c->ipa_bits > MAX_IPA_BITS)
		return -EINVAL;
	return 0;
}

static int resolve_backend(enum vcpu_backend backend, const struct mock_driver **drv)
{
	switch (backend) {
	case VCPU_BACKEND_AUTO: /* the KVM model, the one every host can play */
	case VCPU_BACKEND_KVM:
		*drv = &mock_kvm_driver;
		return 0;
	case VCPU_BACKEND_GUNYAH:
		*drv = &mock_gunyah_driver; /* GUNYAH-DRIVER */
		return 0;
	case VCPU_BACKEND_GENIEZONE:
		*drv = &mock_geniezone_driver; return 0; /* GENIEZONE-DRIVER */
	case VCPU_BACKEND_ACRN:
		*drv = &mock_acrn_driver; /* ACRN-DRIVER */
		return 0;
	default:
		return -EINVAL;
	}
}

static void free_scripts(struct vcpu_mock *m)
{
	for (size_t i = 0; i < m->nscripts; i++)
		free(m->scripts[i].steps);
	free(m->scripts);
}

/* Undo whatever a failed open left behind (the core closes its fds itself). */
static void teardown(struct vcpu_mock *m)
{
	pthread_mutex_lock(&m->lock);
	while (m->nfiles)
		mock_close_locked(m, m->files[0]->fd);
	for (size_t i = 0; i < m->nmaps; i++)
		munmap(m->maps[i].addr, m->maps[i].len);
	pthread_mutex_unlock(&m->lock);
	if (m->drv->fini)
		m->drv->fini(m);
	free(m->files);
	free(m->maps);
	free(m->trace);
	free_scripts(m);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

VCPU_API int vcpu_mock_open(enum vcpu_backend backend, const struct vcpu_mock_config *cfg,
			    struct vcpu_mock **mock, struct vcpu_hv **hv)
{
	const struct mock_driver *drv;
	struct vcpu_mock *m;
	long psz = sysconf(_SC_PAGESIZE);
	int r;

	if (!mock || !hv)
		return -EINVAL;
	*mock = NULL;
	*hv = NULL;
	r = resolve_backend(backend, &drv);
	if (r < 0)
		return r;
	if (psz <= 0)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->drv = drv;
	m->page_size = (size_t)psz;
	m->trace = calloc(MOCK_TRACE, sizeof(*m->trace));
	if (!m->trace) {
		free(m);
		return -ENOMEM;
	}
	r = apply_config(drv, cfg, &m->cfg);
	m->fault_at = m->cfg.fault_at;
	m->fault_err = m->cfg.fault_errno;
	if (r == 0)
		r = -pthread_mutex_init(&m->lock, NULL);
	if (r < 0) {
		free(m->trace);
		free(m);
		return r;
	}
	r = drv->init ? drv->init(m) : 0;
	if (r < 0) {
		pthread_mutex_destroy(&m->lock);
		free(m->trace);
		free(m);
		return r;
	}
	m->hv_open = true;
	r = vcpu_hv_open_sys(drv->backend, (enum vcpu_arch)m->cfg.arch, drv->node, &mock_sys, m,
			     hv);
	if (r < 0) {
		teardown(m);
		return r;
	}
	*mock = m;
	return 0;
}

VCPU_API int vcpu_mock_destroy(struct vcpu_mock **mock)
{
	struct vcpu_mock *m;
	bool busy;

	if (!mock || !*mock)
		return -EINVAL;
	m = *mock;
	pthread_mutex_lock(&m->lock);
	busy = m->hv_open || m->nfiles || m->nmaps;
	pthread_mutex_unlock(&m->lock);
	if (busy)
		return -EBUSY;
	teardown(m);
	*mock = NULL;
	return 0;
}

VCPU_API unsigned vcpu_mock_live_objects(const struct vcpu_mock *mock)
{
	size_t n;

	if (!mock)
		return 0;
	lock_const(mock);
	n = mock->nfiles + mock->nmaps;
	unlock_const(mock);
	return (unsigned)n;
}

VCPU_API unsigned vcpu_mock_failures(const struct vcpu_mock *mock, const char **msg)
{
	unsigned n;

	if (!mock) {
		if (msg)
			*msg = "";
		return 0;
	}
	lock_const(mock);
	n = mock->nfail;
	/* Stable once written: only the first failure's text is ever stored. */
	if (msg)
		*msg = n ? mock->fail : "";
	unlock_const(mock);
	return n;
}

/* ------------------------------------------------------------------------ */
/* Scripts                                                                    */

struct mock_script *mock_script_find(struct vcpu_mock *m, uint32_t vcpu_id)
{
	for (size_t i = 0; i < m->nscripts; i++)
		if (m->scripts[i].vcpu_id == vcpu_id)
			return &m->scripts[i];
	return NULL;
}

static bool valid_len(uint32_t len, bool pio)
{
	return len == 1 || len == 2 || len == 4 || (!pio && len == 8);
}

/* What the public header promises a step may hold; the arch is checked when it runs. */
static bool step_valid(const struct vcpu_mock *m, const struct vcpu_mock_step *s)
{
	uint64_t count = s->count ? s->count : 1;

	if (s->reserved)
		return false;
	if (s->op >= 32)
		return m->drv->step_valid && m->drv->step_valid(m, s);
	switch (s->op) {
	case VCPU_MOCK_MMIO_WRITE:
	case VCPU_MOCK_MMIO_READ:
		return valid_len(s->len, false);
	case VCPU_MOCK_PIO_OUT:
	case VCPU_MOCK_PIO_IN:
		return valid_len(s->len, true) && s->addr <= 0xffff &&
		       count * s->len <= m->page_size;
	case VCPU_MOCK_HYPERCALL:
		return s->nexpect <= 4;
	case VCPU_MOCK_SYSTEM_EVENT:
	case VCPU_MOCK_INTERNAL_ERROR:
		return s->ndata <= 16;
	case VCPU_MOCK_FAIL_ENTRY:
	case VCPU_MOCK_MEMORY_FAULT:
	case VCPU_MOCK_RAW:
	case VCPU_MOCK_SPIN:
	case VCPU_MOCK_MEM_CHECK:
	case VCPU_MOCK_MEM_WRITE:
	case VCPU_MOCK_HLT:
	case VCPU_MOCK_REG_CHECK:
	case VCPU_MOCK_REG_SET:
		return true;
	case VCPU_MOCK_X86_CPUID:
		return m->drv->backend == VCPU_BACKEND_KVM && !mock_is_arm64(m);
	default:
		return false;
	}
}

static int script_store(struct vcpu_mock *m, uint32_t vcpu_id, struct vcpu_mock_step *steps,
			size_t nsteps)
{
	struct mock_script *s = mock_script_find(m, vcpu_id);

	if (!s) {
		if (!mock_grow((void **)&m->scripts, &m->cap_scripts, m->nscripts, sizeof(*m->scripts)))
			return -ENOMEM;
		s = &m->scripts[m->nscripts++];
		memset(s, 0, sizeof(*s));
		s->vcpu_id = vcpu_id;
	}
	free(s->steps);
	s->steps = steps;
	s->nsteps = nsteps;
	s->pos = 0;
	s->done = 0;
	s->gen++;
	return 0;
}

VCPU_API int vcpu_mock_script(struct vcpu_mock *mock, uint32_t vcpu_id,
			      const struct vcpu_mock_step *steps, size_t nsteps)
{
	struct vcpu_mock_step *copy = NULL;
	int r;

	if (!mock || (nsteps && !steps) || vcpu_id >= mock->cfg.max_vcpus ||
	    nsteps > SIZE_MAX / sizeof(*steps))
		return -EINVAL;
	for (size_t i = 0; i < nsteps; i++)
		if (!step_valid(mock, &steps[i]))
			return -EINVAL;
	if (nsteps) {
		copy = malloc(nsteps * sizeof(*steps));
		if (!copy)
			return -ENOMEM;
		memcpy(copy, steps, nsteps * sizeof(*steps));
	}
	pthread_mutex_lock(&mock->lock);
	r = script_store(mock, vcpu_id, copy, nsteps);
	pthread_mutex_unlock(&mock->lock);
	if (r < 0)
		free(copy);
	return r;
}

VCPU_API size_t vcpu_mock_steps_done(const struct vcpu_mock *mock, uint32_t vcpu_id)
{
	const struct mock_script *s;
	size_t n = 0;

	if (!mock)
		return 0;
	lock_const(mock);
	s = mock_script_find((struct vcpu_mock *)mock, vcpu_id);
	if (s)
		n = s->done;
	unlock_const(mock);
	return n;
}

int vcpu_mock_irq_line_level(const struct vcpu_mock *mock, int vm_fd, uint32_t irq)
{
	ssize_t i;
	int r = -EBADF;

	if (!mock)
		return -EINVAL;
	if (irq >= MOCK_MAX_IRQS)
		return -EINVAL;
	lock_const(mock);
	i = file_index(mock, vm_fd);
	if (i >= 0 && mock->files[i]->kind == MOCK_VM)
		r = mock->files[i]->vm->irq_level[irq];
	unlock_const(mock);
	return r;
}

/* ------------------------------------------------------------------------ */
/* Fault injection                                                            */

VCPU_API uint64_t vcpu_mock_calls(const struct vcpu_mock *mock)
{
	uint64_t n;

	if (!mock)
		return 0;
	lock_const(mock);
	n = mock->ncalls;
	unlock_const(mock);
	return n;
}

VCPU_API int vcpu_mock_call_info(const struct vcpu_mock *mock, uint64_t n,
				 struct vcpu_mock_call_info *out)
{
	int r = -ENOENT;

	if (!mock || !out)
		return -EINVAL;
	lock_const(mock);
	if (n >= 1 && n <= mock->ncalls && mock->ncalls - n < MOCK_TRACE) {
		*out = mock->trace[n % MOCK_TRACE];
		r = 0;
	}
	unlock_const(mock);
	return r;
}

VCPU_API int vcpu_mock_fail_call(struct vcpu_mock *mock, uint64_t n, int err)
{
	int r = 0;

	if (!mock || (n && (err <= 0 || err > 4095)))
		return -EINVAL;
	pthread_mutex_lock(&mock->lock);
	if (n && n <= mock->ncalls) {
		r = -EINVAL;
	} else {
		mock->fault_at = n;
		mock->fault_err = err;
	}
	pthread_mutex_unlock(&mock->lock);
	return r;
}
