// SPDX-License-Identifier: MIT
/*
 * minivmm --save / --restore: a whole running guest in one file, on
 * libvcpu's snapshots (vcpu_vm_snapshot(3)).
 *
 * The file, minivmm's own format (little-endian, as both architectures):
 *
 *   0   "MINIVMM" 1        8   u32 arch (enum vcpu_arch)   12  u32 vCPUs
 *   16  u64 RAM's guest-physical address                   24  u64 RAM size
 *   32  u64 offset, 40 u64 length of minivmm's device state (x86: the UART,
 *       the PM1 and 0xCF9 registers; arm64: none, its PL011 keeps no state)
 *   48  u64 offset, 56 u64 length of libvcpu's snapshot
 *   64  u64 offset of RAM (64 KiB aligned), the RAM's size bytes from there
 *
 * RAM is written sparsely: pages the guest never touched (mincore) and
 * pages of zeros are holes.  A restore maps the file's RAM privately into
 * the guest, so it starts at once and reads only the pages the guest uses.
 */
#define _GNU_SOURCE
#include "minivmm.h"

#include <vcpu/state.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SNAP_MAGIC "MINIVMM\1"
#define SNAP_HDR 72u
#define RAM_ALIGN 0x10000u /* the largest arm64 page size */
#define CHUNK 0x10000u     /* RAM is checked and written this much at a time */

/* What of struct mv_vmm the VMM's own devices are (x86.c: COM1, PM1, 0xCF9). */
struct dev_state {
	struct mv_uart uart;
	uint8_t pm1[6];
	uint8_t cf9;
};

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int write_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -(n < 0 ? errno : EIO);
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EBADMSG; /* short: the file is truncated */
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;

	for (size_t i = 0; i < len / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* ------------------------------------------------------------------------ */
/* --save                                                                     */

/* Wait for SIGUSR1 or --save-at, then stop every vCPU for the save. */
static void *saver(void *arg)
{
	struct mv_vmm *v = arg;
	const struct timespec slice = { 0, 100 * 1000 * 1000 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	while (!atomic_load(&v->done)) {
		bool now = sigtimedwait(&set, NULL, &slice) == SIGUSR1 ||
			   (v->cfg.save_at > 0 && mv_now() - v->t0 >= v->cfg.save_at);

		if (!now)
			continue;
		/* First come: the guest's own end may be racing this. */
		if (atomic_exchange(&v->done, 1) == 0) {
			atomic_store(&v->saving, 1);
			vcpu_vm_stop_all(v->vm);
		}
		break;
	}
	return NULL;
}

/* SIGUSR1 stays blocked in every thread (the vCPU threads inherit the mask): the saver takes it. */
int mv_save_start(struct mv_vmm *v, pthread_t *th)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	return pthread_create(th, NULL, saver, v) == 0 ? 0 : -EAGAIN;
}

int mv_save(struct mv_vmm *v)
{
	const double t0 = mv_now();
	long pg = sysconf(_SC_PAGESIZE);
	uint8_t hdr[SNAP_HDR] = SNAP_MAGIC;
	struct dev_state dev;
	unsigned char vec[CHUNK / 4096];
	uint64_t blob_off, ram_off, written = 0;
	void *blob = NULL;
	size_t len = 0;
	int fd, r;

	/* The guest's console may be mid-line: end it, so minivmm's lines stand alone. */
	pthread_mutex_lock(&v->out_lock);
	if (!v->bol)
		putchar('\n');
	fflush(stdout);
	pthread_mutex_unlock(&v->out_lock);
	r = vcpu_vm_snapshot(v->vm, &blob, &len);
	if (r < 0) {
		fprintf(stderr, "minivmm: cannot save the VM: %s\n", vcpu_vm_last_error(v->vm));
		return MV_EXIT_ERROR;
	}
	memset(&dev, 0, sizeof(dev));
	dev.uart = v->uart;
	memcpy(dev.pm1, v->pm1, sizeof(dev.pm1));
	dev.cf9 = v->cf9;
	blob_off = SNAP_HDR + sizeof(dev);
	ram_off = (blob_off + len + RAM_ALIGN - 1) / RAM_ALIGN * RAM_ALIGN;
	put32(hdr + 8, (uint32_t)v->arch->arch);
	put32(hdr + 12, v->cfg.cpus);
	put64(hdr + 16, v->ram_gpa);
	put64(hdr + 24, v->ram_size);
	put64(hdr + 32, SNAP_HDR);
	put64(hdr + 40, sizeof(dev));
	put64(hdr + 48, blob_off);
	put64(hdr + 56, len);
	put64(hdr + 64, ram_off);
	fd = open(v->cfg.save, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "minivmm: cannot create %s: %s\n", v->cfg.save, strerror(errno));
		free(blob);
		return MV_EXIT_ERROR;
	}
	r = write_all(fd, hdr, sizeof(hdr), 0);
	if (!r)
		r = write_all(fd, &dev, sizeof(dev), SNAP_HDR);
	if (!r)
		r = write_all(fd, blob, len, (off_t)blob_off);
	/* RAM: only what the guest touched and is not zeros; the rest stays a hole. */
	for (uint64_t off = 0; !r && off < v->ram_size; off += CHUNK) {
		size_t n = v->ram_size - off < CHUNK ? (size_t)(v->ram_size - off) : CHUNK;
		bool touched = true;

		if (pg > 0 && (size_t)pg <= CHUNK && mincore(v->ram + off, n, vec) == 0) {
			touched = false;
			for (size_t i = 0; i < (n + (size_t)pg - 1) / (size_t)pg; i++)
				touched |= vec[i] & 1;
		}
		if (!touched || all_zero(v->ram + off, n))
			continue;
		r = write_all(fd, v->ram + off, n, (off_t)(ram_off + off));
		written += n;
	}
	if (!r && ftruncate(fd, (off_t)(ram_off + v->ram_size)) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	free(blob);
	if (r) {
		fprintf(stderr, "minivmm: cannot write %s: %s\n", v->cfg.save, strerror(-r));
		return MV_EXIT_ERROR;
	}
	fprintf(stderr, "minivmm: saved %u vCPU(s) to %s: state %zu bytes, %llu KiB of the %llu MiB "
		"of RAM written, in %.3f s\n", v->cfg.cpus, v->cfg.save, len,
		(unsigned long long)(written >> 10), (unsigned long long)(v->ram_size >> 20),
		mv_now() - t0);
	v->end = "saved";
	return MV_EXIT_OFF;
}

/* ------------------------------------------------------------------------ */
/* --restore                                                                  */

/*
 * The VM exists (and the architecture's vm_setup has run): map the saved
 * RAM, make the vCPUs and devices the snapshot names, put its state back.
 */
int mv_restore_setup(struct mv_vmm *v)
{
	const double t0 = mv_now();
	uint8_t hdr[SNAP_HDR];
	struct vcpu_snapshot_info info;
	struct vcpu_snapshot_region reg;
	struct dev_state dev;
	struct stat st;
	uint64_t dev_off, dev_len, blob_off, blob_len, ram_off;
	void *blob = NULL, *ram;
	int fd, r;

	fd = open(v->cfg.restore, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mv_fail(v, -errno, "cannot open the snapshot %s: %s", v->cfg.restore,
			       strerror(errno));
	r = fstat(fd, &st) < 0 ? -errno : read_all(fd, hdr, sizeof(hdr), 0);
	if (r < 0) {
		mv_fail(v, r, "cannot read the snapshot %s: %s", v->cfg.restore, strerror(-r));
		goto out;
	}
	dev_off = get64(hdr + 32);
	dev_len = get64(hdr + 40);
	blob_off = get64(hdr + 48);
	blob_len = get64(hdr + 56);
	ram_off = get64(hdr + 64);
	v->ram_gpa = get64(hdr + 16);
	v->ram_size = get64(hdr + 24);
	r = -EBADMSG;
	if (memcmp(hdr, SNAP_MAGIC, 8) != 0 || dev_len != sizeof(dev) || blob_len > (1u << 30) ||
	    dev_off > (uint64_t)st.st_size || blob_off > (uint64_t)st.st_size - blob_len ||
	    ram_off % RAM_ALIGN || ram_off > (uint64_t)st.st_size ||
	    v->ram_size > (uint64_t)st.st_size - ram_off || v->ram_size == 0) {
		mv_fail(v, r, "%s is not a minivmm snapshot, or is truncated", v->cfg.restore);
		goto out;
	}
	if (get32(hdr + 8) != (uint32_t)v->arch->arch) {
		r = mv_fail(v, -EINVAL, "%s is a snapshot of another architecture", v->cfg.restore);
		goto out;
	}
	blob = malloc(blob_len ? blob_len : 1);
	if (!blob) {
		r = mv_fail(v, -ENOMEM, "no memory for the snapshot");
		goto out;
	}
	r = read_all(fd, &dev, sizeof(dev), (off_t)dev_off);
	if (!r)
		r = read_all(fd, blob, blob_len, (off_t)blob_off);
	if (r < 0) {
		mv_fail(v, r, "cannot read the snapshot %s: %s", v->cfg.restore, strerror(-r));
		goto out;
	}
	r = vcpu_snapshot_info(blob, blob_len, &info);
	if (r == 0 && (info.nr_regions != 1 || info.nr_vcpus < 1 || info.nr_vcpus > MV_MAX_CPUS))
		r = -EINVAL;
	if (r == 0)
		r = vcpu_snapshot_region(blob, blob_len, 0, &reg);
	if (r == 0 && (reg.gpa != v->ram_gpa || reg.size != v->ram_size))
		r = -EINVAL;
	if (r < 0) {
		mv_fail(v, r, "%s does not hold a minivmm VM's state (%s)", v->cfg.restore, strerror(-r));
		goto out;
	}
	/* A private mapping: the guest's writes stay in this process, the file is kept. */
	ram = mmap(NULL, v->ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, (off_t)ram_off);
	if (ram == MAP_FAILED) {
		r = mv_fail(v, -errno, "cannot map the saved RAM: %s", strerror(errno));
		goto out;
	}
	v->ram = v->ram_map = ram;
	r = vcpu_vm_map(v->vm, v->ram_gpa, ram, v->ram_size, reg.flags);
	if (r < 0) {
		mv_fail(v, r, "cannot map the saved RAM into the VM: %s", vcpu_vm_last_error(v->vm));
		goto out;
	}
	v->cfg.cpus = info.nr_vcpus;
	v->cfg.mem_mib = v->ram_size >> 20;
	for (uint32_t i = 0; i < info.nr_vcpus && !r; i++) {
		uint32_t id = 0;

		r = vcpu_snapshot_vcpu(blob, blob_len, i, &id);
		if (r == 0 && id >= MV_MAX_CPUS)
			r = -EINVAL;
		if (r == 0)
			r = vcpu_create(v->vm, id, mv_vcpu_flags(v, id), &v->cpu[id]);
		if (r < 0)
			mv_fail(v, r, "cannot create vCPU %u: %s", id, vcpu_vm_last_error(v->vm));
	}
	if (r == 0 && v->arch->devices)
		r = v->arch->devices(v);
	if (r == 0) {
		r = vcpu_vm_restore(v->vm, blob, blob_len);
		if (r < 0)
			mv_fail(v, r, "cannot restore the VM: %s", vcpu_vm_last_error(v->vm));
	}
	if (r == 0) {
		v->uart = dev.uart;
		memcpy(v->pm1, dev.pm1, sizeof(v->pm1));
		v->cf9 = dev.cf9;
		fprintf(stderr, "minivmm: restored %u vCPU(s) from %s (state %llu bytes) in %.3f s\n",
			info.nr_vcpus, v->cfg.restore, (unsigned long long)blob_len, mv_now() - t0);
	}
out:
	free(blob);
	close(fd);
	return r;
}
