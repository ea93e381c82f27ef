/* SPDX-License-Identifier: MIT */
/*
 * minivmm: a minimal VMM on libvcpu that boots Linux.  The architecture
 * parts (arm64.c, x86.c) load the kernel and describe the machine; the
 * core (minivmm.c) owns the VM, the vCPU threads, the console and the exit
 * status.  Only libvcpu's public API and libfdt are used.
 */
#ifndef MINIVMM_H
#define MINIVMM_H

#include <vcpu/vcpu.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MV_MAX_CPUS 8

/* vcpu_run() stop code of the handlers once the guest has ended. */
#define MV_STOP 1

/* Exit statuses of the program (also what the guest's end maps to). */
enum {
	MV_EXIT_OFF = 0,    /* the guest powered off */
	MV_EXIT_ERROR = 1,  /* minivmm failed: bad arguments, kernel, hypervisor */
	MV_EXIT_USAGE = 2,  /* bad command line */
	MV_EXIT_RESET = 3,  /* the guest asked for a reset (minivmm does not reboot) */
	MV_EXIT_CRASH = 4,  /* the guest panicked or crashed, or a vCPU could not go on */
};

struct mv_config {
	const char *kernel;
	const char *initrd;  /* NULL: none */
	const char *cmdline; /* NULL: the architecture's default */
	uint64_t mem_mib;
	unsigned cpus;
	enum vcpu_backend backend;
	/* An open hypervisor handle to run on instead of opening @backend (the
	 * unit tests pass libvcpu-mock's); minivmm does not close it. */
	struct vcpu_hv *hv;
	bool timestamps;     /* prefix console lines with the time since start */
	bool stats;          /* print resident memory and exit counts at the end */
	/* Snapshots (snapshot.c): save to @save on SIGUSR1 or @save_at seconds
	 * after the start (0: on the signal only), then exit; or start from
	 * the snapshot @restore instead of a kernel. */
	const char *save;
	double save_at;
	const char *restore;
};

/*
 * A file to load into guest RAM: its size and its first bytes (the headers
 * to parse); mv_load_file() reads the rest straight into guest RAM, with no
 * copy of the kernel on the heap.
 */
#define MV_HEAD 4096
struct mv_file {
	const uint8_t *data; /* the first min(size, MV_HEAD) bytes */
	size_t size;         /* of the whole file */
	int fd;              /* the open file, -1 when there is none */
	uint8_t head[MV_HEAD];
};

struct mv_arch;

struct mv_vmm {
	struct mv_config cfg;
	const struct mv_arch *arch;
	struct vcpu_hv *hv;
	struct vcpu_vm *vm;
	struct vcpu *cpu[MV_MAX_CPUS];
	bool own_hv;          /* hv was opened here (not mv_config.hv) */
	uint8_t *ram;         /* guest RAM, page-aligned host memory */
	uint64_t ram_gpa;
	uint64_t ram_size;
	double t0;            /* CLOCK_MONOTONIC at start, seconds */
	/* console */
	pthread_mutex_t out_lock;
	bool bol;             /* at the beginning of a line */
	/* the end */
	atomic_int done;      /* a vCPU saw the guest's end: the others stop */
	atomic_int status;    /* MV_EXIT_* */
	const char *end;      /* what ended it ("powered off", ...), set with status */
	atomic_ulong exits;
	/* x86.c: its port devices, which any vCPU may reach (under pio_lock) */
	pthread_mutex_t pio_lock;
	struct mv_uart {
		uint8_t ier, lcr, mcr, scr, dll, dlm; /* as the guest last wrote them */
		bool thre;   /* the "transmitter empty" interrupt is pending */
		int irq;     /* the level minivmm last drove on its line (GSI 4) */
	} uart;               /* COM1, a 16550 */
	uint8_t pm1[6];       /* ACPI PM1a event (status, enable) and control registers */
	uint8_t cf9;          /* the reset control register at port 0xCF9 */
	/* snapshot.c */
	atomic_int saving;    /* the vCPUs are being stopped for --save */
	void *ram_map;        /* --restore: RAM mapped from the snapshot file */
	char err[256];        /* why setup failed */
};

/* minivmm.c: mv_setup() (on failure v->err says why, call mv_teardown()
 * anyway), mv_run() (returns an MV_EXIT_* status), mv_teardown(). */
int mv_setup(struct mv_vmm *v, const struct mv_config *cfg);
int mv_run(struct mv_vmm *v);
void mv_teardown(struct mv_vmm *v);
int mv_fail(struct mv_vmm *v, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The guest's end, seen by vCPU @self: the first one sets the status and
 * what main() prints ("minivmm: <end> after N s"); the other vCPUs stop. */
void mv_finish(struct mv_vmm *v, struct vcpu *self, int status, const char *end);
/* The kernel command line: the architecture's cmdline_prefix, then the
 * user's or @dflt.  Returns a malloc'd string, or NULL (v->err says why). */
char *mv_cmdline(struct mv_vmm *v, const char *dflt);
int mv_open_file(struct mv_vmm *v, const char *what, const char *path, struct mv_file *out);
int mv_load_file(struct mv_vmm *v, const char *what, const struct mv_file *f, uint64_t off,
		 uint8_t *dst, size_t len);
void mv_close_file(struct mv_file *f);
void mv_console_putc(struct mv_vmm *v, uint8_t c);
double mv_now(void);
/* vcpu_create()'s flags for vCPU @id (secondaries parked; arm64 SVE and PAC where present). */
uint32_t mv_vcpu_flags(struct mv_vmm *v, unsigned id);
/* snapshot.c: --restore's setup (after the VM exists); --save's trigger thread (it
 * ends once v->done is set: join it) and the save. */
int mv_restore_setup(struct mv_vmm *v);
int mv_save_start(struct mv_vmm *v, pthread_t *th);
int mv_save(struct mv_vmm *v);
int mv_on_system_event(void *ctx, struct vcpu *cpu, const struct vcpu_system_event *ev);
int mv_on_other(void *ctx, struct vcpu *cpu, const struct vcpu_exit *exit);

/*
 * An architecture: where RAM goes, how to load the kernel and describe the
 * machine once the vCPUs exist, and the exit handlers of its devices.
 */
struct mv_arch {
	const char *name;
	enum vcpu_arch arch;
	uint64_t ram_gpa;
	uint32_t secondary_flags;   /* vcpu_create() flags of vCPUs 1.. */
	/* Put before every command line: how a panic ends the guest (minivmm.c, mv_cmdline()). */
	const char *cmdline_prefix;
	/* Optional: VM-wide devices that must exist before the first vCPU
	 * (x86: the in-kernel interrupt controllers and PIT).  0 or -errno. */
	int (*vm_setup)(struct mv_vmm *v);
	/* Load the kernel/initrd into RAM, build the platform, set the boot
	 * vCPU's registers.  Returns 0 or a negative errno (v->err says why). */
	int (*setup)(struct mv_vmm *v);
	/* Optional: the in-kernel devices made once the vCPUs exist (arm64: the
	 * GICv3); setup() calls it, and so does a restore. */
	int (*devices)(struct mv_vmm *v);
	struct vcpu_handlers handlers;
};

extern const struct mv_arch mv_arch_arm64;
extern const struct mv_arch mv_arch_x86_64;

/* arm64.c, exposed for the unit tests. */
struct mv_arm64_image {
	uint64_t text_offset;
	uint64_t image_size;   /* bytes the kernel occupies from its load address */
};
int mv_arm64_parse_image(const struct mv_file *f, struct mv_arm64_image *out, char *err,
			 size_t errlen);

#endif
