// SPDX-License-Identifier: MIT
/*
 * libvcpu benchmarks (BENCHMARKS.md has the figures and how to read them).
 *
 *   bench_vcpu latency  [--driver seam|kvm] [--rounds R] [--exits N]
 *       The same guest run by the raw ioctl loop (raw_impl.h) and by
 *       vcpu_run() with a trivial handler, one VM each, interleaved in R
 *       rounds of N exits (the order alternates); per-exit time of each and
 *       lib/raw (median of the rounds' ratios, with their spread).
 *   bench_vcpu dispatch [--arch arm64|x86] [--kind mmio|hypercall|system-event|pio] [--exits N]
 *       vcpu_run() over the bench seam for each kind of exit, for callgrind
 *       (bench/dispatch.sh turns the profiles into instructions per exit).
 *   bench_vcpu scaling  [--exits N] [--reps K] [--max-threads M]
 *       N vCPUs in N threads over the bench seam; exits/s and efficiency.
 *   bench_vcpu setup    [--driver seam|kvm] [--iters N]
 *       VM + RAM slot + vCPU creation: libvcpu against the raw ioctls.
 *
 * --driver seam (default) is the bench seam (bench/seam.h): both guest
 * architectures on any host.  --driver kvm is /dev/kvm with the host's
 * architecture; without it the program exits 77 (meson: SKIP).
 *
 * Nothing here asserts a speed: targets are reported.  Wrong work fails
 * (exit 1): an unexpected exit, a handler or seam check, a short count.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <vcpu/arm64.h>
#include <vcpu/vcpu.h>

#include "guest.h"
#include "raw.h"
#include "seam.h"

#define DIE(...)                                                   \
	do {                                                       \
		fprintf(stderr, "bench_vcpu: " __VA_ARGS__);       \
		fputc('\n', stderr);                               \
		exit(1);                                           \
	} while (0)

#define CHECK(expr, detail)                                                              \
	do {                                                                             \
		int check_r_ = (expr);                                                   \
		if (check_r_ < 0)                                                        \
			DIE("%s = %d (%s): %s", #expr, check_r_, strerror(-check_r_),     \
			    (detail));                                                   \
	} while (0)

volatile sig_atomic_t raw_stop;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of @n values (sorts them). */
static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char *arch_name(enum vcpu_arch a)
{
	return a == VCPU_ARCH_ARM64 ? "arm64" : "x86_64";
}

static const char *pattern_name(enum bseam_pattern p)
{
	switch (p) {
	case BSEAM_MMIO_WRITE: return "mmio";
	case BSEAM_HYPERCALL: return "hypercall";
	case BSEAM_SYSTEM_EVENT: return "system-event";
	case BSEAM_PIO_OUT: return "pio";
	}
	return "?";
}

static enum vcpu_arch host_arch(void)
{
#if defined(__aarch64__)
	return VCPU_ARCH_ARM64;
#else
	return VCPU_ARCH_X86_64;
#endif
}

/* ------------------------------------------------------------------------ */
/* The trivial handlers: check the exit, answer it, count it                  */

struct lat {
	_Alignas(64) uint64_t n, target;
	uint64_t mmio_addr;
	int bad;
};

static int counted(struct lat *l)
{
	return ++l->n >= l->target ? VCPU_STOP : VCPU_CONTINUE;
}

static int on_mmio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct lat *l = ctx;

	(void)cpu;
	if (io->addr != l->mmio_addr || !io->is_write || io->data[0] != (uint8_t)BSEAM_MMIO_VALUE) {
		l->bad = 1;
		return -EPROTO;
	}
	return counted(l);
}

static int on_pio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct lat *l = ctx;

	(void)cpu;
	if (io->addr != BSEAM_PIO_PORT || !io->is_write || io->len != 1 ||
	    io->data[0] != (uint8_t)BSEAM_MMIO_VALUE) {
		l->bad = 1;
		return -EPROTO;
	}
	return counted(l);
}

static int on_hypercall(void *ctx, struct vcpu *cpu, struct vcpu_hypercall *hc)
{
	struct lat *l = ctx;

	(void)cpu;
	if (hc->nr != BSEAM_HC_NR) {
		l->bad = 1;
		return -EPROTO;
	}
	hc->ret[0] = BSEAM_HC_RET;
	return counted(l);
}

static int on_system_event(void *ctx, struct vcpu *cpu, const struct vcpu_system_event *ev)
{
	struct lat *l = ctx;

	(void)cpu;
	if (ev->type != VCPU_SYSTEM_EVENT_SHUTDOWN) {
		l->bad = 1;
		return -EPROTO;
	}
	return counted(l);
}

static const struct vcpu_handlers handlers = {
	.mmio = on_mmio,
	.pio = on_pio,
	.hypercall = on_hypercall,
	.system_event = on_system_event,
};

/* ------------------------------------------------------------------------ */
/* One VM through libvcpu, one through the raw loop                           */

struct side {
	enum vcpu_arch arch;
	enum bseam_pattern pattern;
	uint32_t vm_flags;      /* vcpu_vm_config.flags (VCPU_VM_LAZY_HYPERCALL_ARGS) */
	void *ram;
	uint64_t ram_gpa, ram_size, code_gpa;
	/* libvcpu */
	struct vcpu_hv *hv;
	struct vcpu_vm *vm;
	struct vcpu *cpu;
	struct lat lat;
	/* raw */
	const struct raw_ops *ops;
	struct raw_vm raw;
};

static const void *guest_code(enum vcpu_arch a, enum bseam_pattern p, size_t *size)
{
	if (a == VCPU_ARCH_ARM64) {
		*size = p == BSEAM_HYPERCALL ? sizeof(guest_arm64_hvc) : sizeof(guest_arm64_mmio);
		return p == BSEAM_HYPERCALL ? (const void *)guest_arm64_hvc : guest_arm64_mmio;
	}
	*size = p == BSEAM_PIO_OUT ? sizeof(guest_x86_pio) : sizeof(guest_x86_mmio);
	return p == BSEAM_PIO_OUT ? guest_x86_pio : guest_x86_mmio;
}

/*
 * Guest RAM of its own for each VM, kept to the end, and each guest on its
 * own code page (@slot): QEMU's TCG (the nested-arm64 harness) can run a
 * stale translation of code an earlier VM had at the same address.
 */
static void side_ram(struct side *s, enum vcpu_arch a, unsigned slot)
{
	s->arch = a;
	s->ram_gpa = a == VCPU_ARCH_ARM64 ? GUEST_ARM64_RAM : GUEST_X86_RAM;
	s->ram_size = a == VCPU_ARCH_ARM64 ? GUEST_ARM64_RAM_SIZE : GUEST_X86_RAM_SIZE;
	s->code_gpa = a == VCPU_ARCH_ARM64 ? GUEST_ARM64_RAM + 0x1000ull * (slot % 15)
					   : GUEST_X86_CODE + 0x1000ull * (slot % 3);
	s->ram = mmap(NULL, s->ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s->ram == MAP_FAILED)
		DIE("mmap of guest RAM: %s", strerror(errno));
}

static void lib_boot(struct side *s)
{
	struct vcpu *cpu = s->cpu;
	size_t size;
	const void *code = guest_code(s->arch, s->pattern, &size);

	memcpy((uint8_t *)s->ram + (s->code_gpa - s->ram_gpa), code, size);
	if (s->arch == VCPU_ARCH_ARM64) {
		CHECK(vcpu_set_reg(cpu, VCPU_REG_ARM64_PC, s->code_gpa), vcpu_last_error(cpu));
		CHECK(vcpu_set_reg(cpu, VCPU_REG_ARM64_PSTATE, GUEST_ARM64_PSTATE), vcpu_last_error(cpu));
		CHECK(vcpu_set_reg(cpu, VCPU_REG_ARM64_X(5), BSEAM_MMIO_VALUE), vcpu_last_error(cpu));
		s->lat.mmio_addr = BSEAM_MMIO_ARM64;
	} else {
		static const enum vcpu_x86_seg segs[] = { VCPU_X86_CS, VCPU_X86_DS, VCPU_X86_ES,
							  VCPU_X86_SS };
		for (unsigned i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
			struct vcpu_x86_segment sg;

			CHECK(vcpu_x86_get_segment(cpu, segs[i], &sg), vcpu_last_error(cpu));
			sg.base = 0;
			sg.selector = 0;
			CHECK(vcpu_x86_set_segment(cpu, segs[i], &sg), vcpu_last_error(cpu));
		}
		CHECK(vcpu_set_reg(cpu, VCPU_REG_X86_RIP, s->code_gpa), vcpu_last_error(cpu));
		CHECK(vcpu_set_reg(cpu, VCPU_REG_X86_RFLAGS, 2), vcpu_last_error(cpu));
		CHECK(vcpu_set_reg(cpu, VCPU_REG_X86_RAX, BSEAM_MMIO_VALUE), vcpu_last_error(cpu));
		s->lat.mmio_addr = BSEAM_MMIO_X86;
	}
}

/* The libvcpu VM of @s on @hv (already open). */
static void lib_side(struct side *s, struct bseam *seam)
{
	const struct vcpu_vm_config cfg = { .flags = s->vm_flags };

	CHECK(vcpu_vm_create(s->hv, &cfg, &s->vm), vcpu_hv_last_error(s->hv));
	CHECK(vcpu_vm_map(s->vm, s->ram_gpa, s->ram, s->ram_size, 0), vcpu_vm_last_error(s->vm));
	CHECK(vcpu_create(s->vm, 0, 0, &s->cpu), vcpu_vm_last_error(s->vm));
	if (seam)
		bseam_set_pattern(seam, 0, s->pattern);
	if (s->arch == VCPU_ARCH_ARM64 && s->pattern == BSEAM_HYPERCALL)
		CHECK(vcpu_vm_forward_hypercalls(s->vm, (uint32_t)BSEAM_HC_NR, 1),
		      vcpu_vm_last_error(s->vm));
	lib_boot(s);
}

/* The raw side closes its VM with the slot in place: so does this (no vcpu_vm_unmap). */
static void lib_side_free(struct side *s)
{
	if (s->cpu)
		CHECK(vcpu_destroy(&s->cpu), "vcpu_destroy");
	if (s->vm)
		CHECK(vcpu_vm_destroy(&s->vm), "vcpu_vm_destroy");
}

static void raw_side(struct side *s, void *seam)
{
	size_t size;
	const void *code = guest_code(s->arch, s->pattern, &size);

	s->raw = (struct raw_vm){ .ctx = seam, .arch = s->arch, .ram = s->ram,
				  .ram_gpa = s->ram_gpa, .ram_size = s->ram_size,
				  .code_gpa = s->code_gpa };
	CHECK(s->ops->open(&s->raw), "raw: opening /dev/kvm");
	CHECK(s->ops->create(&s->raw), "raw: VM, memory and vCPU");
	CHECK(s->ops->boot(&s->raw, s->pattern, code, size), "raw: boot registers");
}

static void raw_side_free(struct side *s)
{
	s->ops->destroy(&s->raw);
	s->ops->close(&s->raw);
}

/* N exits through vcpu_run(); ns per exit. */
static double lib_round(struct side *s, uint64_t n)
{
	double t0, t1;
	int rc;

	s->lat.n = 0;
	s->lat.target = n;
	t0 = now_ns();
	rc = vcpu_run(s->cpu, &handlers, &s->lat);
	t1 = now_ns();
	if (rc != VCPU_STOP || s->lat.n != n || s->lat.bad)
		DIE("%s %s: vcpu_run() = %d after %llu of %llu exits: %s", arch_name(s->arch),
		    pattern_name(s->pattern), rc, (unsigned long long)s->lat.n,
		    (unsigned long long)n, vcpu_last_error(s->cpu));
	return (t1 - t0) / (double)n;
}

static double raw_round(struct side *s, uint64_t n)
{
	double t0, t1;
	int rc;

	t0 = now_ns();
	rc = s->ops->run(&s->raw, s->pattern, n);
	t1 = now_ns();
	if (rc < 0)
		DIE("%s %s: the raw loop failed: %d (%s; exit reason %u)", arch_name(s->arch),
		    pattern_name(s->pattern), rc, strerror(-rc), s->raw.run->exit_reason);
	return (t1 - t0) / (double)n;
}

/* The watchdog: a guest that stops exiting must not hang the benchmark. */
static struct vcpu *watched;

static void on_alarm(int sig)
{
	(void)sig;
	raw_stop = 1;
	if (watched)
		vcpu_kick(watched);
}

static void watchdog(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART: KVM_RUN must return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
}

struct opts {
	const char *driver;
	const char *arch;
	const char *kind;
	unsigned rounds;
	uint64_t exits;
	unsigned reps;
	unsigned max_threads;
	unsigned iters;
};

/* Open libvcpu's handle (seam or /dev/kvm) for @a; exits 77 without a driver. */
static void open_hv(const struct opts *o, enum vcpu_arch a, struct bseam **seam,
		    struct vcpu_hv **hv)
{
	*seam = NULL;
	if (strcmp(o->driver, "kvm") == 0) {
		int r;

		if (access("/dev/kvm", R_OK | W_OK) != 0) {
			printf("no usable /dev/kvm: the real-driver benchmark is skipped\n");
			exit(77);
		}
		r = vcpu_hv_open(VCPU_BACKEND_KVM, hv);
		if (r < 0)
			DIE("vcpu_hv_open(KVM) = %d (%s)", r, strerror(-r));
		return;
	}
	*seam = bseam_new(a);
	if (!*seam)
		DIE("out of memory");
	CHECK(bseam_open_hv(*seam, hv), "opening a handle over the bench seam");
}

static void close_hv(struct bseam *seam, struct vcpu_hv *hv)
{
	const char *first;

	CHECK(vcpu_hv_close(hv), vcpu_hv_last_error(hv));
	if (seam && bseam_failures(seam, &first))
		DIE("the bench seam recorded %llu failed write-back check(s), the first: %s",
		    (unsigned long long)bseam_failures(seam, NULL), first);
	bseam_free(seam);
}

/* ------------------------------------------------------------------------ */
/* latency                                                                     */

static void latency_one(const struct opts *o, enum vcpu_arch a, enum bseam_pattern p,
			unsigned *slot)
{
	struct bseam *seam;
	struct side s = { .pattern = p };
	bool real = strcmp(o->driver, "kvm") == 0;
	unsigned R = o->rounds;
	double *lib = calloc(R, sizeof(double)), *raw = calloc(R, sizeof(double));
	double *ratio = calloc(R, sizeof(double));

	if (!lib || !raw || !ratio)
		DIE("out of memory");
	open_hv(o, a, &seam, &s.hv);
	/* Two VMs with the same guest; each on RAM and a code page of its own. */
	struct side t = s;
	side_ram(&s, a, (*slot)++);
	side_ram(&t, a, (*slot)++);
	s.pattern = t.pattern = p;
	lib_side(&s, seam);
	t.ops = real ? &raw_kvm_ops : &raw_seam_ops;
	raw_side(&t, seam);

	watched = s.cpu;
	alarm(120);
	/* Warm both paths (page faults, caches, the host's translation). */
	lib_round(&s, o->exits / 10 + 1);
	raw_round(&t, o->exits / 10 + 1);
	for (unsigned i = 0; i < R; i++) {
		/* Alternate the order so a drift of the machine hits both alike. */
		if (i % 2) {
			lib[i] = lib_round(&s, o->exits);
			raw[i] = raw_round(&t, o->exits);
		} else {
			raw[i] = raw_round(&t, o->exits);
			lib[i] = lib_round(&s, o->exits);
		}
		ratio[i] = lib[i] / raw[i];
	}
	alarm(0);
	watched = NULL;

	double lmin = lib[0], lmax = lib[0], rmin = raw[0], rmax = raw[0];
	for (unsigned i = 0; i < R; i++) {
		lmin = lib[i] < lmin ? lib[i] : lmin;
		lmax = lib[i] > lmax ? lib[i] : lmax;
		rmin = raw[i] < rmin ? raw[i] : rmin;
		rmax = raw[i] > rmax ? raw[i] : rmax;
	}
	double lm = median(lib, R), rm = median(raw, R), qm = median(ratio, R);
	/* ratio[] is sorted now: the quartiles give the spread without outliers. */
	printf("exit latency [%s %s %s]: raw %.1f ns/exit (%.1f..%.1f), lib %.1f ns/exit "
	       "(%.1f..%.1f), lib-raw %+.1f ns/exit, lib/raw %.3f (median of %u rounds of %llu exits; "
	       "quartiles %.3f..%.3f, min..max %.3f..%.3f)\n",
	       real ? "kvm" : "seam", arch_name(a), pattern_name(p), rm, rmin, rmax, lm, lmin, lmax,
	       lm - rm, qm, R, (unsigned long long)o->exits, ratio[(R - 1) / 4], ratio[(3 * (R - 1)) / 4],
	       ratio[0], ratio[R - 1]);
	fflush(stdout);

	raw_side_free(&t);
	lib_side_free(&s);
	close_hv(seam, s.hv);
	munmap(s.ram, s.ram_size);
	munmap(t.ram, t.ram_size);
	free(lib);
	free(raw);
	free(ratio);
}

static int cmd_latency(const struct opts *o)
{
	bool real = strcmp(o->driver, "kvm") == 0;
	unsigned slot = 0;
	const enum vcpu_arch arches[] = { VCPU_ARCH_ARM64, VCPU_ARCH_X86_64 };

	watchdog();
	for (unsigned i = 0; i < 2; i++) {
		enum vcpu_arch a = arches[i];

		if (real && a != host_arch())
			continue;
		if (o->arch && strcmp(o->arch, a == VCPU_ARCH_ARM64 ? "arm64" : "x86") != 0)
			continue;
		latency_one(o, a, BSEAM_MMIO_WRITE, &slot);
		latency_one(o, a, a == VCPU_ARCH_ARM64 ? BSEAM_HYPERCALL : BSEAM_PIO_OUT, &slot);
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* dispatch (under callgrind)                                                  */

/*
 * Under callgrind with --toggle-collect=vcpu_run --dump-after=vcpu_run each
 * vcpu_run() becomes a profile of its own, numbered in call order; the
 * "dispatch-dump" lines say which is which.  Per (arch, kind): a warm-up
 * (lazy symbol binding, first touches), then N and 2N exits, so
 * bench/dispatch.sh takes (cost(2N) - cost(N)) / N: the per-call costs
 * (the thread id, finishing the last exit) cancel out.
 */
static void dispatch_one(const struct opts *o, enum vcpu_arch a, enum bseam_pattern p,
			 uint32_t vm_flags, unsigned *dump)
{
	struct side s = { .pattern = p, .vm_flags = vm_flags };
	const char *kind = vm_flags & VCPU_VM_LAZY_HYPERCALL_ARGS ? "hypercall-lazy"
								   : pattern_name(p);
	struct bseam *seam;
	struct opts so = *o;
	const uint64_t n[3] = { 100, o->exits, 2 * o->exits };

	so.driver = "seam";
	open_hv(&so, a, &seam, &s.hv);
	side_ram(&s, a, 0);
	lib_side(&s, seam);
	for (unsigned i = 0; i < 3; i++) {
		uint64_t before = bseam_exits(seam, 0);

		lib_round(&s, n[i]);
		if (bseam_exits(seam, 0) - before != n[i])
			DIE("the seam gave %llu exits, the handler counted %llu",
			    (unsigned long long)(bseam_exits(seam, 0) - before),
			    (unsigned long long)n[i]);
		printf("dispatch-dump %u %s %s %llu\n", ++*dump, arch_name(a), kind,
		       (unsigned long long)n[i]);
	}
	lib_side_free(&s);
	close_hv(seam, s.hv);
	munmap(s.ram, s.ram_size);
}

static int cmd_dispatch(const struct opts *o)
{
	static const struct {
		enum vcpu_arch arch;
		enum bseam_pattern kind;
		uint32_t vm_flags;
	} runs[] = {
		{ VCPU_ARCH_ARM64, BSEAM_MMIO_WRITE, 0 },
		{ VCPU_ARCH_ARM64, BSEAM_HYPERCALL, 0 },
		/* the handler reads no argument (it answers by function id) */
		{ VCPU_ARCH_ARM64, BSEAM_HYPERCALL, VCPU_VM_LAZY_HYPERCALL_ARGS },
		{ VCPU_ARCH_ARM64, BSEAM_SYSTEM_EVENT, 0 },
		{ VCPU_ARCH_X86_64, BSEAM_MMIO_WRITE, 0 },
		{ VCPU_ARCH_X86_64, BSEAM_PIO_OUT, 0 },
		{ VCPU_ARCH_X86_64, BSEAM_HYPERCALL, 0 },
		{ VCPU_ARCH_X86_64, BSEAM_SYSTEM_EVENT, 0 },
	};
	unsigned dump = 0;

	for (unsigned i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		if (o->arch && strcmp(o->arch, runs[i].arch == VCPU_ARCH_ARM64 ? "arm64" : "x86"))
			continue;
		if (o->kind && strcmp(o->kind, pattern_name(runs[i].kind)))
			continue;
		dispatch_one(o, runs[i].arch, runs[i].kind, runs[i].vm_flags, &dump);
	}
	fflush(stdout);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* scaling                                                                     */

struct worker {
	pthread_t th;
	struct vcpu *cpu;
	struct lat lat;
	pthread_barrier_t *go;
	double t0, t1, cpu_ns;
	int rc;
};

static double thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	double c0;

	pthread_barrier_wait(w->go);
	w->t0 = now_ns();
	c0 = thread_cpu_ns();
	w->rc = vcpu_run(w->cpu, &handlers, &w->lat);
	w->cpu_ns = thread_cpu_ns() - c0;
	w->t1 = now_ns();
	return NULL;
}

/* Physical cores: distinct (package, core) pairs in sysfs; 0 if unknown. */
static unsigned physical_cores(void)
{
	unsigned ncpu = (unsigned)sysconf(_SC_NPROCESSORS_ONLN), n = 0;
	unsigned long long *seen = calloc(ncpu ? ncpu : 1, sizeof(*seen));

	if (!seen)
		return 0;
	for (unsigned c = 0; c < ncpu; c++) {
		char path[128];
		unsigned pkg = 0, core = 0;
		FILE *f;

		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%u/topology/core_id", c);
		f = fopen(path, "r");
		if (!f || fscanf(f, "%u", &core) != 1) {
			if (f)
				fclose(f);
			free(seen);
			return 0;
		}
		fclose(f);
		snprintf(path, sizeof(path),
			 "/sys/devices/system/cpu/cpu%u/topology/physical_package_id", c);
		f = fopen(path, "r");
		if (f) {
			if (fscanf(f, "%u", &pkg) != 1)
				pkg = 0;
			fclose(f);
		}
		unsigned long long key = ((unsigned long long)pkg << 32) | core;
		bool dup = false;
		for (unsigned i = 0; i < n; i++)
			dup |= seen[i] == key;
		if (!dup)
			seen[n++] = key;
	}
	free(seen);
	return n;
}

/*
 * Exits per second of @nthreads vCPUs, each in its own thread (wall clock),
 * and in *per_cpu exits per second of CPU time per thread (the mean): the
 * latter ignores what else the machine runs, and still shows any cache line
 * or lock the threads share (as CPU time spent waiting or missing).
 */
static double scaling_rate(struct vcpu **cpus, unsigned nthreads, uint64_t exits, double *per_cpu)
{
	double cpu_sum = 0;
	struct worker *w = calloc(nthreads, sizeof(*w));
	pthread_barrier_t go;
	double start = 0, end = 0;

	if (!w)
		DIE("out of memory");
	pthread_barrier_init(&go, NULL, nthreads);
	for (unsigned i = 0; i < nthreads; i++) {
		w[i].cpu = cpus[i];
		w[i].go = &go;
		w[i].lat.target = exits;
		w[i].lat.mmio_addr = BSEAM_MMIO_ARM64;
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0)
			DIE("pthread_create failed");
	}
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_join(w[i].th, NULL);
		if (w[i].rc != VCPU_STOP || w[i].lat.n != exits || w[i].lat.bad)
			DIE("scaling: vCPU %u: vcpu_run() = %d after %llu exits: %s", i, w[i].rc,
			    (unsigned long long)w[i].lat.n, vcpu_last_error(w[i].cpu));
		cpu_sum += w[i].cpu_ns;
		start = i == 0 || w[i].t0 < start ? w[i].t0 : start;
		end = i == 0 || w[i].t1 > end ? w[i].t1 : end;
	}
	pthread_barrier_destroy(&go);
	free(w);
	if (per_cpu)
		*per_cpu = (double)nthreads * (double)exits / (cpu_sum / 1e9);
	return (double)nthreads * (double)exits / ((end - start) / 1e9);
}

static int cmd_scaling(const struct opts *o)
{
	unsigned ncpu = (unsigned)sysconf(_SC_NPROCESSORS_ONLN), phys = physical_cores();
	unsigned max = o->max_threads ? o->max_threads : ncpu;
	struct bseam *seam;
	struct side s = { .pattern = BSEAM_MMIO_WRITE };
	struct vcpu **cpus;
	double single = 0, single_cpu = 0;
	struct opts so = *o;

	if (max > BSEAM_MAX_VCPUS)
		max = BSEAM_MAX_VCPUS;
	cpus = calloc(max, sizeof(*cpus));
	if (!cpus)
		DIE("out of memory");
	so.driver = "seam";
	open_hv(&so, VCPU_ARCH_ARM64, &seam, &s.hv);
	side_ram(&s, VCPU_ARCH_ARM64, 0);
	CHECK(vcpu_vm_create(s.hv, NULL, &s.vm), vcpu_hv_last_error(s.hv));
	CHECK(vcpu_vm_map(s.vm, s.ram_gpa, s.ram, s.ram_size, 0), vcpu_vm_last_error(s.vm));
	for (unsigned i = 0; i < max; i++)
		CHECK(vcpu_create(s.vm, i, 0, &cpus[i]), vcpu_vm_last_error(s.vm));
	printf("scaling: nproc %u (online CPUs), physical cores %u%s; bench seam, arm64 MMIO "
	       "writes, %llu exits per vCPU, median of %u runs\n",
	       ncpu, phys, phys ? "" : " (unknown)", (unsigned long long)o->exits, o->reps);
	double *rates = calloc(o->reps, sizeof(double)), *cpu_rates = calloc(o->reps, sizeof(double));
	if (!rates || !cpu_rates)
		DIE("out of memory");
	for (unsigned n = 1;; n = n * 2 > max && n < max ? max : n * 2) {
		scaling_rate(cpus, n, o->exits / 10 + 1, NULL); /* warm the threads' caches */
		for (unsigned k = 0; k < o->reps; k++)
			rates[k] = scaling_rate(cpus, n, o->exits, &cpu_rates[k]);
		double rate = median(rates, o->reps), cpu_rate = median(cpu_rates, o->reps);
		if (n == 1) {
			single = rate;
			single_cpu = cpu_rate;
		}
		printf("scaling: %u vCPU thread(s): %.3g exits/s, efficiency %.3f (against %u x "
		       "single-vCPU); per CPU-second of each thread %.3g exits, efficiency %.3f%s\n",
		       n, rate, rate / (single * n), n, cpu_rate, cpu_rate / single_cpu,
		       phys && n == phys ? "  <- physical cores" : "");
		fflush(stdout);
		if (n >= max)
			break;
	}
	uint64_t total = 0;
	for (unsigned i = 0; i < max; i++)
		total += bseam_exits(seam, i);
	for (unsigned i = 0; i < max; i++)
		CHECK(vcpu_destroy(&cpus[i]), "vcpu_destroy");
	CHECK(vcpu_vm_unmap(s.vm, s.ram_gpa, s.ram_size), vcpu_vm_last_error(s.vm));
	CHECK(vcpu_vm_destroy(&s.vm), "vcpu_vm_destroy");
	close_hv(seam, s.hv);
	munmap(s.ram, s.ram_size);
	free(cpus);
	free(rates);
	free(cpu_rates);
	if (!total)
		DIE("scaling: the seam gave no exits");
	return 0;
}

/* ------------------------------------------------------------------------ */
/* setup                                                                       */

static void setup_one(const struct opts *o, enum vcpu_arch a)
{
	bool real = strcmp(o->driver, "kvm") == 0;
	struct bseam *seam;
	struct side s = { .pattern = BSEAM_MMIO_WRITE };
	unsigned N = o->iters;
	double *lib = calloc(N, sizeof(double)), *raw = calloc(N, sizeof(double));
	double *libd = calloc(N, sizeof(double)), *rawd = calloc(N, sizeof(double));

	if (!lib || !raw || !libd || !rawd)
		DIE("out of memory");
	open_hv(o, a, &seam, &s.hv);
	side_ram(&s, a, 0);
	s.ops = real ? &raw_kvm_ops : &raw_seam_ops;
	s.raw = (struct raw_vm){ .ctx = seam, .arch = a, .ram = s.ram, .ram_gpa = s.ram_gpa,
				 .ram_size = s.ram_size, .code_gpa = s.code_gpa };
	CHECK(s.ops->open(&s.raw), "raw: opening /dev/kvm");
	for (unsigned i = 0; i < N + 1; i++) {
		/* Round 0 warms up and is not counted; then the order alternates. */
		unsigned k = i ? i - 1 : 0;
		for (unsigned half = 0; half < 2; half++) {
			double t0, t1, t2;

			if ((half == 0) == (i % 2 == 0)) {
				t0 = now_ns();
				CHECK(vcpu_vm_create(s.hv, NULL, &s.vm), vcpu_hv_last_error(s.hv));
				CHECK(vcpu_vm_map(s.vm, s.ram_gpa, s.ram, s.ram_size, 0),
				      vcpu_vm_last_error(s.vm));
				CHECK(vcpu_create(s.vm, 0, 0, &s.cpu), vcpu_vm_last_error(s.vm));
				t1 = now_ns();
				lib_side_free(&s);
				t2 = now_ns();
				lib[k] = t1 - t0;
				libd[k] = t2 - t1;
			} else {
				t0 = now_ns();
				CHECK(s.ops->create(&s.raw), "raw: VM, memory and vCPU");
				t1 = now_ns();
				s.ops->destroy(&s.raw);
				t2 = now_ns();
				raw[k] = t1 - t0;
				rawd[k] = t2 - t1;
			}
		}
	}
	s.ops->close(&s.raw);
	close_hv(seam, s.hv);
	munmap(s.ram, s.ram_size);
	double lm = median(lib, N), rm = median(raw, N);
	printf("setup [%s %s]: VM + RAM slot + vCPU: raw %.2f us, lib %.2f us, lib/raw %.3f; "
	       "teardown: raw %.2f us, lib %.2f us (medians of %u)\n",
	       real ? "kvm" : "seam", arch_name(a), rm / 1e3, lm / 1e3, lm / rm,
	       median(rawd, N) / 1e3, median(libd, N) / 1e3, N);
	fflush(stdout);
	free(lib);
	free(raw);
	free(libd);
	free(rawd);
}

static int cmd_setup(const struct opts *o)
{
	bool real = strcmp(o->driver, "kvm") == 0;

	if (real) {
		setup_one(o, host_arch());
	} else {
		setup_one(o, VCPU_ARCH_ARM64);
		setup_one(o, VCPU_ARCH_X86_64);
	}
	return 0;
}

/* ------------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_vcpu latency [--driver seam|kvm] [--arch arm64|x86] [--rounds R] [--exits N]\n"
		"       bench_vcpu dispatch [--arch arm64|x86] [--kind mmio|hypercall|system-event|pio] [--exits N]\n"
		"       bench_vcpu scaling [--exits N] [--reps K] [--max-threads M]\n"
		"       bench_vcpu setup [--driver seam|kvm] [--iters N]\n");
	exit(2);
}

static uint64_t number(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	if (!*s || *end || v == 0)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	struct opts o = { .driver = "seam", .rounds = 9, .exits = 200000, .reps = 5, .iters = 200 };
	bool exits_set = false;

	if (argc < 2)
		usage();
	for (int i = 2; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		if (strcmp(a, "--driver") == 0)
			o.driver = v;
		else if (strcmp(a, "--arch") == 0)
			o.arch = v;
		else if (strcmp(a, "--kind") == 0)
			o.kind = v;
		else if (strcmp(a, "--rounds") == 0)
			o.rounds = (unsigned)number(v);
		else if (strcmp(a, "--exits") == 0)
			o.exits = number(v), exits_set = true;
		else if (strcmp(a, "--reps") == 0)
			o.reps = (unsigned)number(v);
		else if (strcmp(a, "--max-threads") == 0)
			o.max_threads = (unsigned)number(v);
		else if (strcmp(a, "--iters") == 0)
			o.iters = (unsigned)number(v);
		else
			usage();
	}
	if (strcmp(o.driver, "seam") != 0 && strcmp(o.driver, "kvm") != 0)
		usage();
	/* A real exit costs microseconds, a seam exit nanoseconds. */
	if (!exits_set && strcmp(o.driver, "kvm") == 0)
		o.exits = 20000;
	/* Long enough (tens of ms per run) that thread start-up and scheduling do not count. */
	if (!exits_set && strcmp(argv[1], "scaling") == 0)
		o.exits = 3000000;
	if (strcmp(argv[1], "latency") == 0)
		return cmd_latency(&o);
	if (strcmp(argv[1], "dispatch") == 0)
		return cmd_dispatch(&o);
	if (strcmp(argv[1], "scaling") == 0)
		return cmd_scaling(&o);
	if (strcmp(argv[1], "setup") == 0)
		return cmd_setup(&o);
	usage();
}
