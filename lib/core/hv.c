// SPDX-License-Identifier: MIT
/* Hypervisor handles: backend selection, capability queries, the kick signal. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
	enum vcpu_backend backend;
	const char *path;
	const struct vcpu_backend_ops *ops; /* NULL: not implemented in this build */
} backends[] = {
	{ VCPU_BACKEND_KVM, "/dev/kvm", &vcpu_kvm_ops },
	{ VCPU_BACKEND_GUNYAH, "/dev/gunyah", &vcpu_gunyah_ops },
	{ VCPU_BACKEND_GENIEZONE, "/dev/gzvm", &vcpu_geniezone_ops },
	{ VCPU_BACKEND_ACRN, "/dev/acrn_hsm", &vcpu_acrn_ops },
};

#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

static enum vcpu_arch host_arch(void)
{
#if defined(__x86_64__)
	return VCPU_ARCH_X86_64;
#elif defined(__aarch64__)
	return VCPU_ARCH_ARM64;
#else
	return VCPU_ARCH_HOST; /* no backend supports this host */
#endif
}

/*
 * The operations the core calls without asking (internal.h marks the
 * others optional, checked where they are used): a backend without one of
 * these is a build mistake, refused at open rather than a NULL call later.
 */
static bool ops_complete(const struct vcpu_backend_ops *o)
{
	return o->name && o->hv_init && o->check && o->vm_create && o->vm_destroy && o->vm_map &&
	       o->vm_irq_line && o->vcpu_create && o->vcpu_destroy && o->get_reg && o->set_reg &&
	       o->run_once && o->set_immediate_exit;
}

static int find_backend(enum vcpu_backend b)
{
	for (unsigned i = 0; i < NBACKENDS; i++)
		if (backends[i].backend == b)
			return (int)i;
	return -1;
}

int vcpu_hv_open_sys(enum vcpu_backend backend, enum vcpu_arch arch, const char *path,
		     const struct vcpu_sys *sys, void *sys_ctx, struct vcpu_hv **out)
{
	int idx = find_backend(backend);
	struct vcpu_hv *hv;
	long psz;
	int r;

	if (!out || !sys || !path || idx < 0)
		return -EINVAL;
	*out = NULL;
	if (sys->abi != VCPU_SYS_ABI)
		return -EPROTO;
	if (!backends[idx].ops)
		return -EOPNOTSUPP;
	if (!ops_complete(backends[idx].ops))
		return -ENOSYS;
	if (arch == VCPU_ARCH_HOST)
		arch = host_arch();
	if (arch != VCPU_ARCH_X86_64 && arch != VCPU_ARCH_ARM64)
		return -EOPNOTSUPP;
	psz = sysconf(_SC_PAGESIZE);
	if (psz <= 0)
		return -EINVAL;

	hv = calloc(1, sizeof(*hv));
	if (!hv)
		return -ENOMEM;
	hv->ops = backends[idx].ops;
	hv->driver = hv->ops->name;
	atomic_flag_clear(&hv->err_busy);
	hv->sys = sys;
	hv->sys_ctx = sys_ctx;
	hv->backend = backend;
	hv->arch = arch;
	hv->page_size = (size_t)psz;
	/* SIGRTMIN and +1 are commonly taken by threading runtimes and VMMs. */
	hv->kick_signal = SIGRTMIN + 2;
	r = pthread_mutex_init(&hv->lock, NULL);
	if (r) {
		free(hv);
		return -r;
	}
	hv->path = strdup(path);
	if (!hv->path) {
		r = -ENOMEM;
		goto fail_lock;
	}
	hv->fd = sys->open(sys_ctx, path, O_RDWR | O_CLOEXEC);
	if (hv->fd < 0) {
		r = hv->fd;
		goto fail_path;
	}
	r = hv->ops->hv_init(hv);
	if (r < 0)
		goto fail_fd;
	*out = hv;
	return 0;

fail_fd:
	sys->close(sys_ctx, hv->fd);
fail_path:
	free(hv->path);
fail_lock:
	pthread_mutex_destroy(&hv->lock);
	free(hv);
	return r;
}

VCPU_API int vcpu_hv_open_path(enum vcpu_backend backend, const char *path, struct vcpu_hv **out)
{
	if (backend == VCPU_BACKEND_AUTO || !path)
		return -EINVAL;
	return vcpu_hv_open_sys(backend, VCPU_ARCH_HOST, path, &vcpu_sys_linux, NULL, out);
}

VCPU_API int vcpu_hv_open(enum vcpu_backend backend, struct vcpu_hv **out)
{
	int r = -ENODEV;

	if (!out)
		return -EINVAL;
	*out = NULL;
	for (unsigned i = 0; i < NBACKENDS; i++) {
		if (backend != VCPU_BACKEND_AUTO && backend != backends[i].backend)
			continue;
		/* AUTO only considers drivers this build can talk to. */
		if (backend == VCPU_BACKEND_AUTO && !backends[i].ops)
			continue;
		r = vcpu_hv_open_sys(backends[i].backend, VCPU_ARCH_HOST, backends[i].path,
				     &vcpu_sys_linux, NULL, out);
		/* A missing node is not an answer in AUTO mode: try the next driver. */
		if (r == -ENOENT || r == -ENODEV || r == -ENXIO) {
			r = -ENODEV;
			continue;
		}
		return r;
	}
	if (backend != VCPU_BACKEND_AUTO && find_backend(backend) < 0)
		return -EINVAL;
	return r;
}

VCPU_API int vcpu_hv_close(struct vcpu_hv *hv)
{
	unsigned vms;

	if (!hv)
		return -EINVAL;
	pthread_mutex_lock(&hv->lock);
	vms = hv->nr_vms;
	pthread_mutex_unlock(&hv->lock);
	if (vms)
		return hv_fail(hv, -EBUSY, "cannot close the %s handle: %u VM(s) still exist",
			       hv->ops->name, vms);
	if (hv->ops->hv_fini)
		hv->ops->hv_fini(hv);
	sys_close(hv, hv->fd);
	if (hv->sys->release)
		hv->sys->release(hv->sys_ctx);
	pthread_mutex_destroy(&hv->lock);
	free(hv->path);
	free(hv);
	return 0;
}

VCPU_API enum vcpu_backend vcpu_hv_backend(const struct vcpu_hv *hv)
{
	return hv ? hv->backend : VCPU_BACKEND_AUTO;
}

VCPU_API enum vcpu_arch vcpu_hv_arch(const struct vcpu_hv *hv)
{
	return hv ? hv->arch : VCPU_ARCH_HOST;
}

/*
 * The capabilities that are facts of the driver, set by hv_init, answered
 * here for every backend alike; false for one the backend answers.
 */
bool vcpu_core_check(const struct vcpu_hv *hv, enum vcpu_cap cap, uint64_t *value)
{
	switch (cap) {
	case VCPU_CAP_DTB_REQUIRED:
		*value = hv->dtb_required;
		return true;
	case VCPU_CAP_SET_REGS:
		*value = hv->regs_set;
		return true;
	case VCPU_CAP_GET_REGS:
		*value = hv->regs_get;
		return true;
	case VCPU_CAP_CREATE_POWER_OFF:
		*value = hv->power_off_create;
		return true;
	case VCPU_CAP_IO_RESPONSES:
		*value = 1u << VCPU_IO_HANDLED | hv->io_responses;
		return true;
	case VCPU_CAP_SYSTEM_EVENTS:
		*value = hv->system_events;
		return true;
	case VCPU_CAP_DIRTY_LOG:
		*value = hv->dirty_log;
		return true;
	case VCPU_CAP_STATE:
		*value = hv->ops->get_state && hv->ops->set_state;
		return true;
	default:
		return false;
	}
}

VCPU_API int vcpu_hv_check(struct vcpu_hv *hv, enum vcpu_cap cap, uint64_t *value)
{
	char err[VCPU_ERRLEN] = "";
	int r;

	if (!hv)
		return -EINVAL;
	if (!value)
		return hv_fail(hv, -EINVAL, "vcpu_hv_check: NULL value pointer");
	if (vcpu_core_check(hv, cap, value))
		return 0;
	/* The backend formats into a buffer of this call's; the handle's is shared. */
	r = hv->ops->check(hv, hv->fd, cap, value, err);
	if (r < 0)
		vcpu_err_set(&hv->err_busy, hv->err, err);
	return r;
}

VCPU_API int vcpu_x86_get_supported_cpuid(struct vcpu_hv *hv, struct vcpu_x86_cpuid_entry *entries,
					  uint32_t *n)
{
	if (!hv)
		return -EINVAL;
	if (!n)
		return hv_fail(hv, -EINVAL, "vcpu_x86_get_supported_cpuid: NULL count pointer");
	if (!entries && *n)
		return hv_fail(hv, -EINVAL, "vcpu_x86_get_supported_cpuid: NULL entries for %u", *n);
	if (hv->arch != VCPU_ARCH_X86_64)
		return hv_fail(hv, -EINVAL, "CPUID leaves exist only on x86_64");
	if (!hv->ops->x86_supported_cpuid)
		return hv_fail(hv, -EOPNOTSUPP, "%s has no CPUID query: its hypervisor decides "
			       "the leaves", hv->driver);
	return hv->ops->x86_supported_cpuid(hv, entries, n);
}

VCPU_API int vcpu_kick_signal(const struct vcpu_hv *hv)
{
	return hv ? hv->kick_signal : -EINVAL;
}

VCPU_API int vcpu_hv_set_kick_signal(struct vcpu_hv *hv, int signo)
{
	int r = 0;

	if (!hv)
		return -EINVAL;
	/*
	 * Not the uncatchable ones, nor those the kernel sends synchronously
	 * for a fault of the thread itself (a kick handler would swallow a
	 * real SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGTRAP and loop on it).
	 */
	if (signo <= 0 || signo > SIGRTMAX || signo == SIGKILL || signo == SIGSTOP ||
	    signo == SIGSEGV || signo == SIGBUS || signo == SIGFPE || signo == SIGILL ||
	    signo == SIGTRAP)
		return hv_fail(hv, -EINVAL, "signal %d cannot be used to kick vCPUs", signo);
	pthread_mutex_lock(&hv->lock);
	if (hv->nr_vcpus)
		r = hv_fail(hv, -EBUSY, "the kick signal is fixed once vCPUs exist (%u do)",
			    hv->nr_vcpus);
	else
		hv->kick_signal = signo;
	pthread_mutex_unlock(&hv->lock);
	return r;
}
