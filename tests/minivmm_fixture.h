/* SPDX-License-Identifier: MIT */
/*
 * The fixture of the minivmm unit tests: a temporary directory for the
 * kernel and initrd files a case writes, the VMM, and the fd count that
 * must be back after mv_teardown().  Header-only, like helpers.h.
 */
#ifndef VCPU_TESTS_MINIVMM_FIXTURE_H
#define VCPU_TESTS_MINIVMM_FIXTURE_H

#include "minivmm.h"
#include "helpers.h"

#include <vcpu/mock.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fx {
	long fds;
	char dir[64];
	char kernel[96], initrd[96];
	struct mv_vmm v;
	/* The mock driver minivmm runs on (mv_config.hv). */
	struct vcpu_mock *mock;
	struct vcpu_hv *hv;
};

/* Open a mock driver of @backend with @arch guests and VCPU_MOCK_* @flags for
 * mv_config.hv (the previous one, if any, is closed: a case may switch backends). */
static inline struct vcpu_hv *fx_mock_flags(struct fx *f, enum vcpu_backend backend,
					    enum vcpu_arch arch, uint32_t flags)
{
	struct vcpu_mock_config mc = { .arch = arch, .flags = flags };

	/* GenieZone's vCPU limit is the kernel's constant: keep its default. */
	if (backend == VCPU_BACKEND_KVM)
		mc.max_vcpus = MV_MAX_CPUS;
	if (f->hv) {
		assert_int_equal(vcpu_hv_close(f->hv), 0);
		f->hv = NULL;
		assert_int_equal(vcpu_mock_destroy(&f->mock), 0);
	}
	assert_int_equal(vcpu_mock_open(backend, &mc, &f->mock, &f->hv), 0);
	return f->hv;
}

static inline struct vcpu_hv *fx_mock(struct fx *f, enum vcpu_backend backend, enum vcpu_arch arch)
{
	return fx_mock_flags(f, backend, arch, 0);
}

/* @kernel_name: the kernel file's name in the directory (Image, bzImage). */
static inline int fx_setup(void **state, const char *kernel_name)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/minivmm-test-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->kernel, sizeof(f->kernel), "%s/%s", f->dir, kernel_name);
	snprintf(f->initrd, sizeof(f->initrd), "%s/initrd", f->dir);
	f->fds = count_open_fds();
	*state = f;
	return 0;
}

static inline int fx_teardown(void **state)
{
	struct fx *f = *state;
	long fds;

	mv_teardown(&f->v);
	if (f->hv)
		assert_int_equal(vcpu_hv_close(f->hv), 0);
	/* -EBUSY here: minivmm left a VM, vCPU or mapping open. */
	if (f->mock)
		assert_int_equal(vcpu_mock_destroy(&f->mock), 0);
	fds = count_open_fds();
	unlink(f->kernel);
	unlink(f->initrd);
	rmdir(f->dir);
	assert_int_equal(fds, f->fds);
	free(f);
	return 0;
}

static inline void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* mv_run(), with what the guest prints on its console captured in @out. */
static inline int run_captured(struct fx *f, char *out, size_t outlen)
{
	int p[2], saved, status;
	ssize_t n;

	fflush(stdout);
	assert_int_equal(pipe(p), 0);
	saved = dup(STDOUT_FILENO);
	dup2(p[1], STDOUT_FILENO);
	close(p[1]);
	status = mv_run(&f->v);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	n = read(p[0], out, outlen - 1);
	close(p[0]);
	out[n > 0 ? n : 0] = '\0';
	return status;
}

#endif
