// SPDX-License-Identifier: MIT
/*
 * minivmm's core: the VM and its RAM, one thread per vCPU, the console,
 * and the end of the guest (power-off, reset, panic or an error) turned
 * into the exit status.  See minivmm.h; main.c is the command line.
 */
#define _GNU_SOURCE
#include "minivmm.h"


#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double mv_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int mv_fail(struct mv_vmm *v, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->err, sizeof(v->err), fmt, ap);
	va_end(ap);
	return err;
}

int mv_open_file(struct mv_vmm *v, const char *what, const char *path, struct mv_file *out)
{
	struct stat st;
	size_t head;
	int r;

	memset(out, 0, sizeof(*out));
	out->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (out->fd < 0)
		return mv_fail(v, -errno, "cannot open the %s %s: %s", what, path, strerror(errno));
	if (fstat(out->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		mv_close_file(out);
		return mv_fail(v, -EINVAL, "the %s %s is not a regular file", what, path);
	}
	out->size = (size_t)st.st_size;
	head = out->size < MV_HEAD ? out->size : MV_HEAD;
	r = mv_load_file(v, what, out, 0, out->head, head);
	if (r < 0) {
		mv_close_file(out);
		return r;
	}
	out->data = out->head;
	return 0;
}

/* Straight into guest RAM: the kernel is read once, not copied from a buffer. */
int mv_load_file(struct mv_vmm *v, const char *what, const struct mv_file *f, uint64_t off,
		 uint8_t *dst, size_t len)
{
	size_t n = 0;

	while (n < len) {
		ssize_t r = pread(f->fd, dst + n, len - n, (off_t)(off + n));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return mv_fail(v, -EIO, "reading the %s failed at byte %llu: %s", what,
				       (unsigned long long)(off + n),
				       r < 0 ? strerror(errno) : "the file got shorter");
		n += (size_t)r;
	}
	return 0;
}

void mv_close_file(struct mv_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

/* ------------------------------------------------------------------------ */
/* Console                                                                    */

void mv_console_putc(struct mv_vmm *v, uint8_t c)
{
	pthread_mutex_lock(&v->out_lock);
	if (v->bol && v->cfg.timestamps)
		printf("[+%8.3f] ", mv_now() - v->t0);
	v->bol = c == '\n';
	putchar(c);
	if (c == '\n')
		fflush(stdout);
	pthread_mutex_unlock(&v->out_lock);
}

/* ------------------------------------------------------------------------ */
/* The end of the guest                                                       */

/* The first end wins; every other vCPU is kicked out of its run call. */
void mv_finish(struct mv_vmm *v, struct vcpu *self, int status, const char *end)
{
	int expected = 0;

	if (!atomic_compare_exchange_strong(&v->done, &expected, 1))
		return;
	v->end = end; /* read by main() once every vCPU thread is joined */
	atomic_store(&v->status, status);
	for (unsigned i = 0; i < v->cfg.cpus; i++)
		if (v->cpu[i] && v->cpu[i] != self)
			vcpu_kick(v->cpu[i]);
}

/*
 * A guest that panics must end minivmm with MV_EXIT_CRASH, not spin forever
 * or look like a reboot.  Debian's kernels have no pvpanic driver built in
 * (arm64: CONFIG_PVPANIC unset; x86_64 cloud: PVPANIC_MMIO only a module)
 * and CONFIG_PANIC_TIMEOUT=0, so minivmm puts its own options before the
 * user's command line (Documentation/admin-guide/kernel-parameters.txt):
 *
 *   panic=-1           a panic restarts the machine at once (kernel/panic.c);
 *   reboot=panic_warm  ... as a WARM restart, while an ordinary reboot stays
 *                      cold (kernel/reboot.c, reboot_setup(): the "panic_"
 *                      prefix sets panic_reboot_mode, which panic() makes
 *                      reboot_mode just before emergency_restart()).
 *
 * Each architecture then sees the warm restart in its own way: arm64's PSCI
 * driver asks a warm restart with SYSTEM_RESET2 where the firmware has it
 * (KVM's PSCI 1.1 does), a cold one with SYSTEM_RESET (drivers/firmware/
 * psci/psci.c, psci_sys_reset()), which libvcpu reports as a RESET event
 * with VCPU_SYSTEM_EVENT_RESET2; for x86_64 see x86.c (the 0xCF9 register).
 * The limit: a user who gives reboot= options of their own after these can
 * lose the distinction (a panic then ends as a reset, status 3).
 */
char *mv_cmdline(struct mv_vmm *v, const char *dflt)
{
	const char *user = v->cfg.cmdline ? v->cfg.cmdline : dflt;
	const char *prefix = v->arch->cmdline_prefix ? v->arch->cmdline_prefix : "";
	size_t n = strlen(prefix) + 1 + strlen(user) + 1;
	char *s = malloc(n);

	if (!s) {
		mv_fail(v, -ENOMEM, "no memory for the command line");
		return NULL;
	}
	snprintf(s, n, "%s%s%s", prefix, *prefix && *user ? " " : "", user);
	return s;
}

int mv_on_system_event(void *ctx, struct vcpu *cpu, const struct vcpu_system_event *ev)
{
	struct mv_vmm *v = ctx;

	atomic_fetch_add(&v->exits, 1);
	switch (ev->type) {
	case VCPU_SYSTEM_EVENT_SHUTDOWN:
		mv_finish(v, cpu, MV_EXIT_OFF, "powered off");
		return MV_STOP;
	case VCPU_SYSTEM_EVENT_RESET:
		/* PSCI SYSTEM_RESET2: a warm restart, which only a panic asks for (mv_cmdline()). */
		if (ev->ndata > 0 && (ev->data[0] & VCPU_SYSTEM_EVENT_RESET2))
			mv_finish(v, cpu, MV_EXIT_CRASH, "the guest panicked");
		else
			mv_finish(v, cpu, MV_EXIT_RESET, "reset");
		return MV_STOP;
	case VCPU_SYSTEM_EVENT_WAKEUP:
		return VCPU_CONTINUE;
	default: /* CRASH; SUSPEND is never enabled, so it cannot come */
		fprintf(stderr, "minivmm: vCPU %u: guest system event %u (raw %u)\n", vcpu_id(cpu),
			ev->type, ev->raw_type);
		mv_finish(v, cpu, MV_EXIT_CRASH, "the guest crashed");
		return MV_STOP;
	}
}

int mv_on_other(void *ctx, struct vcpu *cpu, const struct vcpu_exit *exit)
{
	struct mv_vmm *v = ctx;

	atomic_fetch_add(&v->exits, 1);
	if (exit->kind == VCPU_EXIT_INTERNAL_ERROR || exit->kind == VCPU_EXIT_FAIL_ENTRY) {
		/* Not the guest's doing: the hypervisor gave up on this vCPU. */
		fprintf(stderr, "minivmm: vCPU %u: the hypervisor cannot run the guest any further: "
			"%s, code %llu (raw exit %u)\n", vcpu_id(cpu), vcpu_exit_kind_name(exit->kind),
			(unsigned long long)exit->u.internal.code, exit->raw_reason);
		mv_finish(v, cpu, MV_EXIT_CRASH, "the hypervisor failed to run the guest");
		return MV_STOP;
	}
	fprintf(stderr, "minivmm: vCPU %u: %s exit (raw %u) cannot be handled\n", vcpu_id(cpu),
		vcpu_exit_kind_name(exit->kind), exit->raw_reason);
	mv_finish(v, cpu, MV_EXIT_CRASH, "the guest stopped at an exit minivmm cannot handle");
	return MV_STOP;
}

/* ------------------------------------------------------------------------ */
/* Setup and teardown                                                         */

/*
 * vcpu_create()'s flags for vCPU @id, the same at boot and at a restore
 * (the snapshot's registers are those of this feature set).  Only KVM
 * parks secondaries for PSCI CPU_ON; the other hypervisors do it.  On KVM
 * arm64 the guest gets SVE and pointer authentication where the driver
 * has them, as kvmtool's guests do.
 */
uint32_t mv_vcpu_flags(struct mv_vmm *v, unsigned id)
{
	uint32_t flags = 0;
	uint64_t has = 0;

	if (vcpu_hv_backend(v->hv) != VCPU_BACKEND_KVM)
		return 0;
	if (id)
		flags |= v->arch->secondary_flags;
	if (v->arch->arch == VCPU_ARCH_ARM64) {
		if (vcpu_hv_check(v->hv, VCPU_CAP_ARM_SVE, &has) == 0 && has)
			flags |= VCPU_CREATE_ARM64_SVE;
		if (vcpu_hv_check(v->hv, VCPU_CAP_ARM_PTRAUTH, &has) == 0 && has)
			flags |= VCPU_CREATE_ARM64_PTRAUTH;
	}
	return flags;
}

static int open_hypervisor(struct mv_vmm *v)
{
	int r;

	if (v->cfg.hv) {
		v->hv = v->cfg.hv;
		return 0;
	}
	r = vcpu_hv_open(v->cfg.backend, &v->hv);
	if (r == -ENODEV)
		return mv_fail(v, r, "no hypervisor: none of /dev/kvm, /dev/gunyah, /dev/gzvm, "
				     "/dev/acrn_hsm is present");
	if (r < 0)
		return mv_fail(v, r, "cannot open the %s hypervisor: %s",
			       vcpu_backend_name(v->cfg.backend), strerror(-r));
	v->own_hv = true;
	return 0;
}

int mv_setup(struct mv_vmm *v, const struct mv_config *cfg)
{
	void *host = NULL;
	int r;

	memset(v, 0, sizeof(*v));
	v->cfg = *cfg;
	v->t0 = mv_now();
	v->bol = true;
	pthread_mutex_init(&v->out_lock, NULL);
	pthread_mutex_init(&v->pio_lock, NULL);
	/* --restore: vCPUs and memory come from the snapshot (mv_restore_setup()). */
	if (v->cfg.restore) {
		v->cfg.cpus = 1;
		v->cfg.mem_mib = 16;
	}
	if (v->cfg.cpus < 1 || v->cfg.cpus > MV_MAX_CPUS)
		return mv_fail(v, -EINVAL, "--cpus %u: 1 to %d", v->cfg.cpus, MV_MAX_CPUS);
	if (v->cfg.mem_mib < 16 || v->cfg.mem_mib > (1u << 20))
		return mv_fail(v, -EINVAL, "--mem %llu MiB: 16 MiB to 1 TiB",
			       (unsigned long long)v->cfg.mem_mib);
	/* Say what is wrong with the kernel before what is wrong with the host. */
	if (!v->cfg.restore && (!v->cfg.kernel || access(v->cfg.kernel, R_OK) != 0))
		return mv_fail(v, -ENOENT, "cannot read the kernel %s: %s",
			       v->cfg.kernel ? v->cfg.kernel : "(none)", strerror(errno));
	r = open_hypervisor(v);
	if (r < 0)
		return r;
	v->arch = vcpu_hv_arch(v->hv) == VCPU_ARCH_ARM64 ? &mv_arch_arm64 : &mv_arch_x86_64;

	r = vcpu_vm_create(v->hv, NULL, &v->vm);
	if (r < 0)
		return mv_fail(v, r, "cannot create a VM: %s", vcpu_hv_last_error(v->hv));
	if (v->arch->vm_setup && (r = v->arch->vm_setup(v)) < 0)
		return r;
	if (v->cfg.restore) {
		r = mv_restore_setup(v);
		if (r == 0)
			r = vcpu_vm_start(v->vm);
		return r < 0 && !v->err[0] ? mv_fail(v, r, "cannot start the VM: %s",
						     vcpu_vm_last_error(v->vm)) : r;
	}
	v->ram_gpa = v->arch->ram_gpa;
	v->ram_size = v->cfg.mem_mib << 20;
	/*
	 * RAM the way each driver wants it (Gunyah: a guest_memfd); the guest
	 * touches what it uses, and only that is resident.  The VM frees it.
	 */
	r = vcpu_vm_alloc(v->vm, v->ram_gpa, v->ram_size, 0, &host);
	if (r < 0)
		return mv_fail(v, r, "cannot allocate %llu MiB of guest RAM: %s",
			       (unsigned long long)v->cfg.mem_mib, vcpu_vm_last_error(v->vm));
	v->ram = host;
	for (unsigned i = 0; i < v->cfg.cpus; i++) {
		r = vcpu_create(v->vm, i, mv_vcpu_flags(v, i), &v->cpu[i]);
		if (r < 0)
			return mv_fail(v, r, "cannot create vCPU %u: %s", i, vcpu_vm_last_error(v->vm));
	}
	r = v->arch->setup(v);
	if (r < 0)
		return r;
	/* Gunyah and ACRN start the whole VM here; KVM and GenieZone at each vCPU's first run. */
	r = vcpu_vm_start(v->vm);
	return r < 0 ? mv_fail(v, r, "cannot start the VM: %s", vcpu_vm_last_error(v->vm)) : 0;
}

void mv_teardown(struct mv_vmm *v)
{
	for (unsigned i = 0; i < MV_MAX_CPUS; i++)
		if (v->cpu[i])
			vcpu_destroy(&v->cpu[i]);
	if (v->vm)
		vcpu_vm_destroy(&v->vm); /* frees the RAM from vcpu_vm_alloc() */
	if (v->ram_map)
		munmap(v->ram_map, v->ram_size); /* --restore's RAM, mapped from the file */
	v->ram = v->ram_map = NULL;
	if (v->hv && v->own_hv)
		vcpu_hv_close(v->hv);
	v->hv = NULL;
	pthread_mutex_destroy(&v->out_lock);
	pthread_mutex_destroy(&v->pio_lock);
}

/* ------------------------------------------------------------------------ */
/* Running                                                                    */

struct mv_thread {
	struct mv_vmm *v;
	struct vcpu *cpu;
};

static void *vcpu_loop(void *arg)
{
	struct mv_thread *t = arg;
	struct mv_vmm *v = t->v;
	int r;

	while (!atomic_load(&v->done)) {
		r = vcpu_run(t->cpu, &v->arch->handlers, v);
		if (r == -EINTR || r == MV_STOP || (r == -ECANCELED && atomic_load(&v->saving)))
			continue; /* a kick, the end or a save: the loop condition decides */
		if (r < 0) {
			fprintf(stderr, "minivmm: vCPU %u: %s\n", vcpu_id(t->cpu),
				vcpu_last_error(t->cpu));
			mv_finish(v, t->cpu, MV_EXIT_CRASH, "a vCPU failed");
		}
	}
	return NULL;
}

/* Resident memory of the process, and of guest RAM (mincore), in KiB. */
static void print_stats(struct mv_vmm *v)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t pages = v->ram_size / (size_t)page, guest = 0;
	unsigned char *vec = malloc(pages ? pages : 1);
	long rss = -1;
	struct rusage ru;
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &rss) == 1)
			break;
	if (f)
		fclose(f);
	if (vec && mincore(v->ram, v->ram_size, vec) == 0)
		for (size_t i = 0; i < pages; i++)
			guest += vec[i] & 1;
	free(vec);
	guest = guest * (size_t)page / 1024;
	/* The host's work for guest RAM: each fault is a page the guest touched first. */
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		memset(&ru, 0, sizeof(ru));
	/* RAM mapped from a snapshot file: mincore() counts the file's cached pages too. */
	if (v->ram_map)
		fprintf(stderr, "minivmm: %lu exits handled; resident memory %ld KiB with guest RAM "
			"(restored from a file: %zu KiB of it cached); %ld host page faults (%ld major)\n",
			atomic_load(&v->exits), rss, guest, ru.ru_minflt + ru.ru_majflt, ru.ru_majflt);
	else
		fprintf(stderr, "minivmm: %lu exits handled; resident memory %ld KiB without guest RAM "
			"(%zu KiB of guest RAM resident); %ld host page faults (%ld major)\n",
			atomic_load(&v->exits), rss >= 0 ? rss - (long)guest : -1, guest,
			ru.ru_minflt + ru.ru_majflt, ru.ru_majflt);
}

int mv_run(struct mv_vmm *v)
{
	struct mv_thread t[MV_MAX_CPUS];
	pthread_t th[MV_MAX_CPUS], save_th;
	unsigned started = 0;
	bool saver = false;

	for (unsigned i = 0; i < v->cfg.cpus; i++)
		t[i] = (struct mv_thread){ .v = v, .cpu = v->cpu[i] };
	if (v->cfg.save) {
		if (mv_save_start(v, &save_th) < 0) {
			fprintf(stderr, "minivmm: cannot start the thread of --save\n");
			return MV_EXIT_ERROR;
		}
		saver = true;
	}
	/*
	 * vCPU 0 runs on this thread.  The secondaries wait in their run calls
	 * until the guest starts them: arm64 with PSCI CPU_ON, x86 with INIT and
	 * SIPI from its LAPIC (KVM keeps them in wait-for-SIPI meanwhile).
	 */
	for (unsigned i = 1; i < v->cfg.cpus; i++) {
		if (pthread_create(&th[i], NULL, vcpu_loop, &t[i]) != 0) {
			fprintf(stderr, "minivmm: cannot start the thread of vCPU %u\n", i);
			mv_finish(v, NULL, MV_EXIT_ERROR, "failed");
			break;
		}
		started = i;
	}
	vcpu_loop(&t[0]);
	for (unsigned i = 1; i <= started; i++)
		pthread_join(th[i], NULL);
	fflush(stdout);
	if (saver) {
		pthread_join(save_th, NULL); /* the saver sees v->done within 100 ms */
		/* Every vCPU is out of vcpu_run(): the state is still. */
		if (atomic_load(&v->saving))
			atomic_store(&v->status, mv_save(v));
	}
	if (v->cfg.stats)
		print_stats(v);
	return atomic_load(&v->status);
}
