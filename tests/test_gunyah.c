// SPDX-License-Identifier: MIT
/*
 * The `gunyah` suite: libvcpu's Gunyah backend against the mock Gunyah
 * driver, for the v17 `GUNYAH_` ABI and the v8 `GH_` ABI.
 *
 * Every test runs between a setup that records the process's open fds and
 * memory mappings and a teardown that destroys every handle (asserting 0),
 * checks the mock holds no live object, destroys it, and asserts both
 * counts are back: nothing leaks, on success or error paths.
 *
 * Tests named after a driver rule call the ioctl through the library's own
 * syscall seam (sys_ioctl on the handle's fds) where the library itself
 * would never make the bad call, to show the mock answers as the kernel.
 * Scripted tests end with expect_script(): no failed write-back check in the
 * mock and exactly the steps given were completed.
 */
#define _GNU_SOURCE
#include <vcpu/mock.h>
#include <vcpu/vcpu.h>

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"
#include "mock_steps.h"
#include "core/internal.h"
#include "gunyah/gunyah_abi.h"
#include "mock/mock_gunyah.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MMIO_BASE 0x10000000ull
#define ARM_ADDR 0x1ffe0000ull  /* a write here arms a kicker */
#define RAM_GPA 0x80000000ull
#define RAM_PAGES 4
#define MAX_CPUS 8

/* ------------------------------------------------------------------------ */
/* Fixture                                                                    */

struct fx {
	long fds, maps;
	struct vcpu_mock *mock;
	struct vcpu_hv *hv;
	struct vcpu_vm *vm;
	struct vcpu *cpu[MAX_CPUS];
	void *ram;
	size_t page;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->page = (size_t)sysconf(_SC_PAGESIZE);
	f->fds = count_open_fds();
	f->maps = count_mappings();
	*state = f;
	return 0;
}

static void close_all(struct fx *f, int *rc_cpu, int *rc_vm, int *rc_hv, unsigned *live,
		      int *rc_mock)
{
	for (unsigned i = 0; i < MAX_CPUS; i++)
		if (f->cpu[i] && vcpu_destroy(&f->cpu[i]) != 0)
			*rc_cpu = -1;
	if (f->vm)
		*rc_vm = vcpu_vm_destroy(&f->vm);
	if (f->hv) {
		*rc_hv = vcpu_hv_close(f->hv);
		if (*rc_hv == 0)
			f->hv = NULL;
	}
	if (f->mock) {
		*live = vcpu_mock_live_objects(f->mock);
		*rc_mock = vcpu_mock_destroy(&f->mock);
	}
}

static int teardown(void **state)
{
	struct fx *f = *state;
	int rc_cpu = 0, rc_vm = 0, rc_hv = 0, rc_mock = 0;
	unsigned live = 0;
	long fds, maps;

	close_all(f, &rc_cpu, &rc_vm, &rc_hv, &live, &rc_mock);
	fds = count_open_fds();
	maps = count_mappings();
	assert_int_equal(rc_cpu, 0);
	assert_int_equal(rc_vm, 0);
	assert_int_equal(rc_hv, 0);
	assert_int_equal(live, 0);
	assert_int_equal(rc_mock, 0);
	assert_int_equal(fds, f->fds);
	assert_int_equal(maps, f->maps);
	free(f);
	return 0;
}

/* Close everything mid-test (a test that makes several VMs) and check nothing leaked. */
static void reset_fx(struct fx *f)
{
	int rc_cpu = 0, rc_vm = 0, rc_hv = 0, rc_mock = 0;
	unsigned live = 0;

	close_all(f, &rc_cpu, &rc_vm, &rc_hv, &live, &rc_mock);
	assert_int_equal(rc_cpu + rc_vm + rc_hv + rc_mock, 0);
	assert_int_equal(live, 0);
	assert_int_equal(count_open_fds(), f->fds);
	assert_int_equal(count_mappings(), f->maps);
	f->ram = NULL;
}

static void open_cfg(struct fx *f, uint32_t flags, uint32_t max_vcpus)
{
	struct vcpu_mock_config cfg = { .arch = VCPU_ARCH_ARM64, .flags = flags,
					 .max_vcpus = max_vcpus };

	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_GUNYAH, &cfg, &f->mock, &f->hv), 0);
	assert_int_equal(vcpu_hv_backend(f->hv), VCPU_BACKEND_GUNYAH);
	assert_int_equal(vcpu_hv_arch(f->hv), VCPU_ARCH_ARM64);
	assert_int_equal(vcpu_vm_create(f->hv, NULL, &f->vm), 0);
}

static struct vcpu *add_cpu(struct fx *f, unsigned slot, uint32_t id)
{
	assert_true(slot < MAX_CPUS);
	assert_int_equal(vcpu_create(f->vm, id, 0, &f->cpu[slot]), 0);
	return f->cpu[slot];
}

/* Guest RAM at RAM_GPA with the device tree in its last page. */
static void add_ram(struct fx *f)
{
	assert_int_equal(vcpu_vm_alloc(f->vm, RAM_GPA, RAM_PAGES * f->page, 0, &f->ram), 0);
	assert_non_null(f->ram);
	assert_int_equal(vcpu_vm_set_dtb(f->vm, RAM_GPA + (RAM_PAGES - 1) * f->page, f->page), 0);
}

/* A started v17 VM (v8: not started, the run call does it) with vCPU 0. */
static struct vcpu *boot(struct fx *f, uint32_t flags)
{
	struct vcpu *cpu;

	open_cfg(f, flags, 0);
	add_ram(f);
	cpu = add_cpu(f, 0, 0);
	if (!(flags & VCPU_MOCK_GUNYAH_V8))
		assert_int_equal(vcpu_vm_start(f->vm), 0);
	return cpu;
}

static void expect_detail(const char *detail, const char *needle)
{
	assert_non_null(detail);
	if (!strstr(detail, needle))
		fail_msg("detail \"%s\" does not mention \"%s\"", detail, needle);
}

static int raw_ioctl(struct fx *f, int fd, unsigned long req, const void *arg)
{
	return sys_ioctl(f->hv, fd, req, (unsigned long)(uintptr_t)arg);
}

/* ------------------------------------------------------------------------ */
/* Script steps                                                               */

/* An access the VMM must resume with @action. */
static struct vcpu_mock_step expecting(struct vcpu_mock_step s, uint32_t action)
{
	s.nexpect = 1;
	s.expect[0] = action;
	return s;
}

static struct vcpu_mock_step vm_exited(uint16_t type, uint32_t rsize, uint64_t reason)
{
	struct vcpu_mock_step s = step(VCPU_MOCK_GUNYAH_VM_EXITED);

	s.value = type;
	s.len = rsize;
	s.args[0] = reason;
	return s;
}

/* A RAW exit: @reason with the run page from offset 16 given field by field. */
static struct vcpu_mock_step raw(uint32_t reason)
{
	struct vcpu_mock_step s = step(VCPU_MOCK_RAW);

	s.value = reason;
	return s;
}

static void raw_put(struct vcpu_mock_step *s, unsigned page_off, uint64_t v, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		s->raw[page_off - 16 + i] = (uint8_t)(v >> (8 * i));
}

static void script(struct fx *f, uint32_t id, const struct vcpu_mock_step *steps, size_t n)
{
	assert_int_equal(vcpu_mock_script(f->mock, id, steps, n), 0);
}

#define SCRIPT(f, id, steps) script((f), (id), (steps), ARRAY_SIZE(steps))

static void expect_script(struct fx *f, uint32_t id, size_t n)
{
	const char *msg = NULL;
	unsigned failures = vcpu_mock_failures(f->mock, &msg);

	if (failures)
		print_message("mock failure: %s\n", msg ? msg : "(no message)");
	assert_int_equal(failures, 0);
	assert_int_equal(vcpu_mock_steps_done(f->mock, id), n);
}

/* ------------------------------------------------------------------------ */
/* Recording handlers                                                         */

#define NREC 32

struct rec {
	unsigned n_io, n_sev, n_fault, n_other;
	struct vcpu_io io[NREC];
	struct vcpu_system_event sev[4];
	struct vcpu_memory_fault fault[4];
	struct vcpu_exit other[4];
	uint64_t reply[NREC];
	unsigned n_reply, next_reply;
	uint32_t io_response;     /* answer to non-stop accesses, after resp[] */
	uint32_t resp[NREC];
	unsigned n_resp, next_resp;
	uint32_t fault_response;  /* answer to memory faults */
	int sev_rc, other_rc;
	struct fx *f;             /* memory-fault handler: map RAM at the address */
	bool kick_self;
	atomic_int armed;
};

static void rec_init(struct rec *r, struct fx *f)
{
	memset(r, 0, sizeof(*r));
	r->sev_rc = VCPU_STOP;
	r->other_rc = VCPU_STOP;
	r->fault_response = VCPU_IO_FAULT;
	r->f = f;
}

static void reply(struct rec *r, uint64_t v)
{
	assert_true(r->n_reply < NREC);
	r->reply[r->n_reply++] = v;
}

static int on_mmio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct rec *r = ctx;

	if (r->n_io < NREC)
		r->io[r->n_io++] = *io;
	if (io->is_write && io->addr == STOP_ADDR)
		return VCPU_STOP;
	if (io->is_write && io->addr == ARM_ADDR) {
		atomic_store(&r->armed, 1);
		return VCPU_CONTINUE;
	}
	if (!io->is_write && r->next_reply < r->n_reply) {
		uint64_t v = r->reply[r->next_reply++];

		for (unsigned i = 0; i < io->len; i++)
			io->data[i] = (uint8_t)(v >> (8 * i));
	}
	io->response = r->next_resp < r->n_resp ? r->resp[r->next_resp++] : r->io_response;
	if (r->kick_self)
		vcpu_kick(cpu);
	return VCPU_CONTINUE;
}

static int on_sev(void *ctx, struct vcpu *cpu, const struct vcpu_system_event *ev)
{
	struct rec *r = ctx;

	(void)cpu;
	if (r->n_sev < 4)
		r->sev[r->n_sev] = *ev;
	r->n_sev++;
	return r->sev_rc;
}

static int on_fault(void *ctx, struct vcpu *cpu, struct vcpu_memory_fault *fl)
{
	struct rec *r = ctx;
	void *p;

	(void)cpu;
	if (r->n_fault < 4)
		r->fault[r->n_fault] = *fl;
	r->n_fault++;
	if (r->fault_response == VCPU_IO_RETRY && r->f &&
	    vcpu_vm_alloc(r->f->vm, fl->gpa & ~(uint64_t)(r->f->page - 1), r->f->page, 0, &p) == 0)
		memcpy((uint8_t *)p + (fl->gpa & (r->f->page - 1)), "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	fl->response = r->fault_response;
	return VCPU_CONTINUE;
}

static int on_other(void *ctx, struct vcpu *cpu, const struct vcpu_exit *e)
{
	struct rec *r = ctx;

	(void)cpu;
	if (r->n_other < 4)
		r->other[r->n_other] = *e;
	r->n_other++;
	return r->other_rc;
}

static const struct vcpu_handlers H = {
	.mmio = on_mmio,
	.system_event = on_sev,
	.memory_fault = on_fault,
	.other = on_other,
};

static const struct vcpu_handlers H_MMIO = { .mmio = on_mmio };

/* ------------------------------------------------------------------------ */
/* Threads                                                                    */

static void sleep_us(long us)
{
	struct timespec t = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };

	nanosleep(&t, NULL);
}

struct kicker {
	struct vcpu *cpu;
	atomic_int *armed;
	pid_t signal_tid; /* nonzero: send only the kick signal to this thread */
	int signo;
	int rc;
};

static void *kicker_main(void *p)
{
	struct kicker *k = p;

	for (int i = 0; i < 10000 && !atomic_load(k->armed); i++)
		sleep_us(1000);
	sleep_us(20000);
	if (k->signal_tid)
		k->rc = (int)syscall(SYS_tgkill, (long)getpid(), (long)k->signal_tid, (long)k->signo);
	else
		k->rc = vcpu_kick(k->cpu);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Opening: the ABI probe and the capabilities                                */

static void test_open_v17(void **state)
{
	struct fx *f = *state;
	uint64_t v = 99;

	open_cfg(f, 0, 0);
	assert_string_equal(vcpu_backend_name(vcpu_hv_backend(f->hv)), "gunyah");
	/* The probe created nothing (the leak check in teardown) and found v17. */
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_IRQFD, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_IMMEDIATE_EXIT, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(vcpu_vm_check(f->vm, VCPU_CAP_IRQCHIP, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_MAX_VCPUS, &v), -EOPNOTSUPP);
	expect_detail(vcpu_hv_last_error(f->hv), "device tree");
	assert_int_equal(vcpu_hv_check(f->hv, (enum vcpu_cap)999, &v), -EINVAL);
}

static void test_open_v8(void **state)
{
	struct fx *f = *state;
	struct vcpu_irqfd irq = { .fd = 0, .irq = 1, .resample_fd = -1 };
	uint64_t v = 99;

	open_cfg(f, VCPU_MOCK_GUNYAH_V8, 0);
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_IRQFD, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(vcpu_vm_irqfd(f->vm, &irq), -EOPNOTSUPP);
	expect_detail(vcpu_vm_last_error(f->vm), "v8");
}

/* Gunyah is arm64-only; VM settings of other backends are refused, not ignored. */
static void test_bad_configs(void **state)
{
	struct fx *f = *state;
	struct vcpu_mock_config x86 = { .arch = VCPU_ARCH_X86_64 };
	struct vcpu_mock_config kvmflag = { .flags = VCPU_MOCK_NO_SMCCC_FILTER << 0 };
	struct vcpu_vm_config ipa = { .ipa_bits = 40 }, acrn = { .cpu_affinity = 1 };
	struct vcpu_mock *m = NULL;
	struct vcpu_hv *hv = NULL;
	struct vcpu_vm *vm = NULL;

	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_GUNYAH, &x86, &m, &hv), -EINVAL);
	kvmflag.flags = 1u << 8; /* a GenieZone bit */
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_GUNYAH, &kvmflag, &m, &hv), -EINVAL);
	assert_null(m);
	open_cfg(f, 0, 0);
	assert_int_equal(vcpu_vm_create(f->hv, &ipa, &vm), -EINVAL);
	expect_detail(vcpu_hv_last_error(f->hv), "ipa_bits");
	assert_int_equal(vcpu_vm_create(f->hv, &acrn, &vm), -EINVAL);
	assert_null(vm);
}

/* ------------------------------------------------------------------------ */
/* Driver rules on the device and VM fds                                      */

static void test_rule_dev_ioctls(void **state)
{
	struct fx *f = *state;
	struct gunyah_create_mem_args a = { .size = 1 };

	open_cfg(f, 0, 0);
	assert_int_equal(raw_ioctl(f, f->hv->fd, GUNYAH_CREATE_VM, (void *)1), -EINVAL);
	assert_int_equal(raw_ioctl(f, f->hv->fd, GUNYAH_CREATE_GUEST_MEM, &a), -EINVAL);
	a.size = f->page;
	a.flags = 4;
	assert_int_equal(raw_ioctl(f, f->hv->fd, GUNYAH_CREATE_GUEST_MEM, &a), -EINVAL);
	assert_int_equal(raw_ioctl(f, f->hv->fd, GUNYAH_CREATE_GUEST_MEM, NULL), -EFAULT);
	assert_int_equal(raw_ioctl(f, f->hv->fd, GHABI_IO(0x42), NULL), -ENOTTY);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GHABI_IO(0x42), NULL), -ENOTTY);
	/* v8 ioctls do not exist on a v17 VM. */
	assert_int_equal(raw_ioctl(f, f->vm->fd, GH_VM_SET_USER_MEM_REGION, &a), -ENOTTY);
}

static void test_rule_vcpu_ioctls_and_mmap(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu;
	void *p = NULL;

	open_cfg(f, 0, 0);
	add_ram(f);
	cpu = add_cpu(f, 0, 0);
	assert_int_equal(raw_ioctl(f, cpu->fd, GUNYAH_VCPU_MMAP_SIZE, NULL), (int)f->page);
	assert_int_equal(raw_ioctl(f, cpu->fd, GHABI_IO(0x42), NULL), -ENOTTY);
	/* Only page 0 of a vCPU fd can be mapped; VM fds have no mmap. */
	assert_int_equal(f->hv->sys->mmap(f->hv->sys_ctx, cpu->fd, f->page, PROT_READ,
					  (off_t)f->page, &p), -EINVAL);
	assert_int_equal(f->hv->sys->mmap(f->hv->sys_ctx, cpu->fd, 2 * f->page, PROT_READ, 0, &p),
			 -EINVAL);
	assert_int_equal(f->hv->sys->mmap(f->hv->sys_ctx, f->vm->fd, f->page, PROT_READ, 0, &p),
			 -ENODEV);
	assert_null(p);
}

static void test_rule_add_remove_function(void **state)
{
	struct fx *f = *state;
	struct gunyah_fn_vcpu_arg a = { .id = 3 };
	uint8_t big[300] = { 0 };
	struct gunyah_fn_desc d = { .type = GUNYAH_FN_VCPU, .arg_size = 300,
				    .arg = (uint64_t)(uintptr_t)big };
	struct vcpu *dup = NULL;

	open_cfg(f, 0, 0);
	add_cpu(f, 0, 0);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_ADD_FUNCTION, &d), -EINVAL);
	d.arg_size = 8;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_ADD_FUNCTION, &d), -EINVAL);
	d.type = 9;
	d.arg_size = sizeof(a);
	d.arg = (uint64_t)(uintptr_t)&a;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_ADD_FUNCTION, &d), -ENOENT);
	d.type = GUNYAH_FN_VCPU;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_REMOVE_FUNCTION, &d), -ENOENT);
	/* The same vCPU id twice: EEXIST, and the failed create leaves nothing behind. */
	assert_int_equal(vcpu_create(f->vm, 0, 0, &dup), -EEXIST);
	assert_null(dup);
	expect_detail(vcpu_vm_last_error(f->vm), "in use");
}

static void test_rule_map_mem(void **state)
{
	struct fx *f = *state;
	struct gunyah_create_mem_args ca = { .flags = GHMF_CLOEXEC, .size = 4 * f->page };
	struct gunyah_map_mem_args m = { .guest_addr = 0x10000000, .flags = GUNYAH_MEM_ALLOW_RWX,
					 .size = 2 * f->page };
	int fd, fd2;

	open_cfg(f, 0, 0);
	fd = raw_ioctl(f, f->hv->fd, GUNYAH_CREATE_GUEST_MEM, &ca);
	assert_true(fd >= 0);
	fd2 = raw_ioctl(f, f->hv->fd, GUNYAH_CREATE_GUEST_MEM, &ca);
	assert_true(fd2 >= 0);
	{
		void *p = NULL;

		/* A guest memory maps within its size only. */
		assert_int_equal(f->hv->sys->mmap(f->hv->sys_ctx, fd, 8 * f->page, PROT_READ, 0, &p),
				 -EINVAL);
		assert_null(p);
	}
	m.guest_mem_fd = (uint32_t)f->vm->fd; /* not a guest memory */
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_MAP_MEM, &m), -EINVAL);
	m.guest_mem_fd = (uint32_t)fd;
	m.flags = GUNYAH_MEM_FORCE_LEND; /* no R/W/X */
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_MAP_MEM, &m), -EINVAL);
	m.flags = GUNYAH_MEM_ALLOW_RWX | 3; /* access 3 */
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_MAP_MEM, &m), -EINVAL);
	m.flags = GUNYAH_MEM_ALLOW_RWX | 0x1000;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_MAP_MEM, &m), -EINVAL);
	m.flags = GUNYAH_MEM_ALLOW_RWX;
	m.offset = 12;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_MAP_MEM, &m), -EINVAL);
	m.offset = 0;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_MAP_MEM, &m), 0);
	/* Overlapping guest range (another memory), and lending the same memory twice. */
	m.guest_mem_fd = (uint32_t)fd2;
	m.guest_addr += f->page;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_MAP_MEM, &m), -EEXIST);
	m.guest_mem_fd = (uint32_t)fd;
	m.guest_addr = 0x20000000;
	m.offset = 2 * f->page;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_MAP_MEM, &m), -EEXIST);
	/* Unmap: flags must match the binding's; no split in the middle; then whole. */
	m.guest_addr = 0x10000000;
	m.offset = 0;
	m.flags = GUNYAH_MEM_ALLOW_READ | GUNYAH_MEM_UNMAP;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_MAP_MEM, &m), -ENOENT);
	m.flags = GUNYAH_MEM_ALLOW_RWX | GUNYAH_MEM_UNMAP;
	m.size = 4 * f->page;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_MAP_MEM, &m), -ENOENT);
	m.size = 2 * f->page;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_MAP_MEM, &m), 0);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_MAP_MEM, &m), -ENOENT);
	sys_close(f->hv, fd);
	sys_close(f->hv, fd2);
}

static void test_rule_boot_context(void **state)
{
	struct fx *f = *state;
	struct gunyah_vm_boot_context b = { .reg = GUNYAH_VM_BOOT_CONTEXT_REG(GUNYAH_REG_SET_X, 32) };

	open_cfg(f, 0, 0);
	add_ram(f);
	add_cpu(f, 0, 0);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_SET_BOOT_CONTEXT, &b), -EINVAL);
	b.reg = GUNYAH_VM_BOOT_CONTEXT_REG(GUNYAH_REG_SET_PC, 1);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_SET_BOOT_CONTEXT, &b), -EINVAL);
	b.reg = GUNYAH_VM_BOOT_CONTEXT_REG(GUNYAH_REG_SET_SP, 3);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_SET_BOOT_CONTEXT, &b), -EINVAL);
	b.reg = GUNYAH_VM_BOOT_CONTEXT_REG(3, 0);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_SET_BOOT_CONTEXT, &b), -EINVAL);
	b.reg = GUNYAH_VM_BOOT_CONTEXT_REG(GUNYAH_REG_SET_X, 31);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_SET_BOOT_CONTEXT, &b), 0);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	/* After start the driver refuses; the library says why before asking. */
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_SET_BOOT_CONTEXT, &b), -EINVAL);
	assert_int_equal(vcpu_set_reg(f->cpu[0], VCPU_REG_ARM64_PC, 0x1000), -EOPNOTSUPP);
	expect_detail(vcpu_last_error(f->cpu[0]), "before vcpu_vm_start");
}

static void test_rule_dtb_and_start(void **state)
{
	struct fx *f = *state;
	struct gunyah_vm_dtb_config c = { .guest_phys_addr = ~0ull - 10, .size = 100 };

	open_cfg(f, 0, 0);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_SET_DTB_CONFIG, &c), -EOVERFLOW);
	assert_int_equal(vcpu_vm_set_dtb(f->vm, ~0ull - 10, 100), -EINVAL); /* caught first */
	/* No device tree: the start fails, and a failed start is final. */
	assert_int_equal(vcpu_vm_start(f->vm), -EINVAL);
	assert_int_equal(vcpu_vm_start(f->vm), -ENODEV);
	expect_detail(vcpu_vm_last_error(f->vm), "re-create");
	reset_fx(f);
	/* A device tree outside guest RAM. */
	open_cfg(f, 0, 0);
	assert_int_equal(vcpu_vm_set_dtb(f->vm, 0x1000000, f->page), 0);
	assert_int_equal(vcpu_vm_start(f->vm), -ENOENT);
	reset_fx(f);
	/* A good start is idempotent. */
	open_cfg(f, 0, 0);
	add_ram(f);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
}

/* ------------------------------------------------------------------------ */
/* vCPUs                                                                      */

static void test_run_before_start(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu;
	struct rec r;

	open_cfg(f, 0, 0);
	add_ram(f);
	cpu = add_cpu(f, 0, 0);
	rec_init(&r, f);
	assert_int_equal(vcpu_run(cpu, &H, &r), -ENODEV);
	expect_detail(vcpu_last_error(cpu), "vcpu_vm_start()");
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	/* vCPUs are functions added before start. */
	assert_int_equal(vcpu_create(f->vm, 1, 0, &f->cpu[1]), -EBUSY);
	expect_detail(vcpu_vm_last_error(f->vm), "before vcpu_vm_start");
	assert_null(f->cpu[1]);
}

static void test_vcpu_without_resource(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu;
	struct rec r;

	open_cfg(f, 0, 2); /* the VM's configuration has vCPUs 0 and 1 */
	add_ram(f);
	cpu = add_cpu(f, 0, 5);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	rec_init(&r, f);
	assert_int_equal(vcpu_run(cpu, &H, &r), -ENODEV);
	expect_detail(vcpu_last_error(cpu), "no Gunyah vCPU resource");
}

static void test_remove_function_stops_vcpu(void **state)
{
	struct fx *f = *state;
	struct gunyah_fn_vcpu_arg a = { .id = 0 };
	struct gunyah_fn_desc d = { .type = GUNYAH_FN_VCPU, .arg_size = sizeof(a),
				    .arg = (uint64_t)(uintptr_t)&a };
	struct vcpu *cpu = boot(f, 0);
	const struct gunyah_vcpu_run *run = cpu->run;
	struct rec r;

	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_REMOVE_FUNCTION, &d), 0);
	/* gunyah_vcpu_unpopulate() sets immediate_exit for a sleeping run call. */
	assert_int_equal(run->immediate_exit, 1);
	assert_int_equal(raw_ioctl(f, cpu->fd, GUNYAH_VCPU_RUN, NULL), -ENODEV);
	rec_init(&r, f);
	/* The library's own REMOVE_FUNCTION at destroy now finds nothing: still clean. */
	assert_int_equal(vcpu_destroy(&f->cpu[0]), 0);
}

static void test_vcpu_recreate(void **state)
{
	struct fx *f = *state;

	open_cfg(f, 0, 0);
	add_cpu(f, 0, 0);
	assert_int_equal(vcpu_destroy(&f->cpu[0]), 0);
	/* v17 removes the function with the vCPU: the id is free again. */
	add_cpu(f, 0, 0);
	reset_fx(f);
	open_cfg(f, VCPU_MOCK_GUNYAH_V8, 0);
	add_cpu(f, 0, 0);
	assert_int_equal(vcpu_destroy(&f->cpu[0]), 0);
	/* v8 has no REMOVE_FUNCTION: the id stays taken. */
	assert_int_equal(vcpu_create(f->vm, 0, 0, &f->cpu[0]), -EEXIST);
	expect_detail(vcpu_vm_last_error(f->vm), "cannot remove");
}

static void test_create_flags_and_busy(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = NULL;

	open_cfg(f, 0, 0);
	assert_int_equal(vcpu_create(f->vm, 1, VCPU_CREATE_POWER_OFF, &cpu), -EOPNOTSUPP);
	expect_detail(vcpu_vm_last_error(f->vm), "PSCI CPU_ON");
	assert_null(cpu);
	add_cpu(f, 0, 0);
	assert_int_equal(vcpu_vm_destroy(&f->vm), -EBUSY);
	assert_non_null(f->vm);
}

/* ------------------------------------------------------------------------ */
/* Registers: the boot context                                                */

static void test_boot_context_registers(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu, *cpu1;
	struct rec r;
	uint64_t v = 0;
	struct vcpu_mock_step s[] = {
		reg_check(VCPU_REG_ARM64_X(0), RAM_GPA + 3 * 4096),
		reg_check(VCPU_REG_ARM64_X(30), 0x3030),
		reg_check(VCPU_REG_ARM64_PC, RAM_GPA),
		reg_check(VCPU_REG_ARM64_SP, 0x5000),
		reg_check(VCPU_REG_ARM64_SP_EL1, 0x6000),
		stop(),
	};

	open_cfg(f, 0, 0);
	add_ram(f);
	cpu = add_cpu(f, 0, 0);
	cpu1 = add_cpu(f, 1, 1);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_X(0), RAM_GPA + 3 * 4096), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_X(30), 0x3030), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_PC, RAM_GPA), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_SP, 0x5000), 0);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_SP_EL1, 0x6000), 0);
	/* The boot context is VM-wide: only the boot vCPU takes it. */
	assert_int_equal(vcpu_set_reg(cpu1, VCPU_REG_ARM64_PC, 0), -EOPNOTSUPP);
	expect_detail(vcpu_last_error(cpu1), "vCPU 0");
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_PSTATE, 0x3c5), -EOPNOTSUPP);
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_X86_RAX, 0), -EINVAL);
	assert_int_equal(vcpu_get_reg(cpu, VCPU_REG_ARM64_PC, &v), -EOPNOTSUPP);
	expect_detail(vcpu_last_error(cpu), "read-back");
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	rec_init(&r, f);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H, &r), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* ------------------------------------------------------------------------ */
/* Guest memory                                                               */

static void test_guest_memory_v17(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu;
	struct rec r;
	uint64_t v;
	struct vcpu_mock_step s[] = {
		mem_op(VCPU_MOCK_MEM_CHECK, RAM_GPA + 8, 0x1122334455667788ull),
		mem_op(VCPU_MOCK_MEM_WRITE, RAM_GPA + 0x100, 0xfeedfacecafebeefull),
		stop(),
	};

	cpu = boot(f, 0);
	memcpy((uint8_t *)f->ram + 8, &(uint64_t){ 0x1122334455667788ull }, 8);
	rec_init(&r, f);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H, &r), VCPU_STOP);
	memcpy(&v, (uint8_t *)f->ram + 0x100, 8);
	assert_int_equal(v, 0xfeedfacecafebeefull);
	expect_script(f, 0, ARRAY_SIZE(s));
	/* Host memory cannot become v17 guest RAM; LOG_DIRTY does not exist. */
	assert_int_equal(vcpu_vm_map(f->vm, 0x10000000, f->ram, f->page, 0), -EOPNOTSUPP);
	expect_detail(vcpu_vm_last_error(f->vm), "vcpu_vm_alloc");
	assert_int_equal(vcpu_vm_alloc(f->vm, 0x20000000, f->page, VCPU_MEM_LOG_DIRTY, (void **)&v),
			 -EOPNOTSUPP);
}

/* The library's own error path: a failed bind frees the guest_memfd and its mapping. */
static void test_alloc_failure_leaks_nothing(void **state)
{
	struct fx *f = *state;
	struct gunyah_create_mem_args ca = { .size = f->page };
	struct gunyah_map_mem_args m = { .guest_addr = 0x30000000, .flags = GUNYAH_MEM_ALLOW_RWX,
					 .size = f->page };
	void *p = (void *)1;
	int fd;

	open_cfg(f, 0, 0);
	fd = raw_ioctl(f, f->hv->fd, GUNYAH_CREATE_GUEST_MEM, &ca);
	assert_true(fd >= 0);
	m.guest_mem_fd = (uint32_t)fd;
	/* Bound behind the library's back, so only the driver sees the overlap. */
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_MAP_MEM, &m), 0);
	assert_int_equal(vcpu_vm_alloc(f->vm, 0x30000000, f->page, 0, &p), -EEXIST);
	assert_null(p);
	expect_detail(vcpu_vm_last_error(f->vm), "GUNYAH_VM_MAP_MEM");
	sys_close(f->hv, fd);
}

static void test_page_fault_retry(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu;
	struct rec r;
	struct vcpu_mock_step s[] = {
		mem_op(VCPU_MOCK_MEM_CHECK, 0x40000010, 0x8877665544332211ull),
		stop(),
	};

	cpu = boot(f, 0);
	rec_init(&r, f);
	r.fault_response = VCPU_IO_RETRY; /* the handler maps a page there */
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H, &r), VCPU_STOP);
	assert_int_equal(r.n_fault, 1);
	assert_int_equal(r.fault[0].gpa, 0x40000010);
	assert_int_equal(r.fault[0].size, f->page);
	assert_int_equal(r.fault[0].error, -ENOENT);
	assert_int_equal(vcpu_last_exit(cpu)->raw_reason, GUNYAH_VCPU_EXIT_MMIO);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_page_fault_fatal_and_unmap(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu;
	struct rec r;
	void *ro = NULL;
	struct vcpu_mock_step s[] = {
		mem_op(VCPU_MOCK_MEM_WRITE, 0x50000000, 1), /* read-only RAM */
		mem_op(VCPU_MOCK_MEM_CHECK, RAM_GPA, 0),   /* RAM unmapped below */
	};

	open_cfg(f, 0, 0);
	add_ram(f);
	assert_int_equal(vcpu_vm_alloc(f->vm, 0x50000000, f->page, VCPU_MEM_READONLY, &ro), 0);
	cpu = add_cpu(f, 0, 0);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	rec_init(&r, f);
	SCRIPT(f, 0, s);
	/* The default answer: Gunyah cannot inject it, vcpu_run() fails. */
	assert_int_equal(vcpu_run(cpu, &H, &r), -EFAULT);
	expect_detail(vcpu_last_error(cpu), "cannot reflect");
	assert_int_equal(r.fault[0].error, -EPERM);
	assert_int_equal(vcpu_last_exit(cpu)->kind, VCPU_EXIT_MEMORY_FAULT);
	/* GUNYAH_MEM_UNMAP through vcpu_vm_unmap(): the RAM is gone for the guest. */
	assert_int_equal(vcpu_vm_unmap(f->vm, 0x50000000, f->page), 0);
	assert_int_equal(vcpu_vm_unmap(f->vm, RAM_GPA, RAM_PAGES * f->page), 0);
	f->ram = NULL;
	assert_int_equal(vcpu_mock_script(f->mock, 0, &s[1], 1), 0);
	assert_int_equal(vcpu_run(cpu, &H, &r), -EFAULT);
	assert_int_equal(r.n_fault, 2);
	assert_int_equal(r.fault[1].gpa, RAM_GPA);
	assert_int_equal(r.fault[1].error, -ENOENT);
	/* Without a memory-fault handler the exit goes to .other, then nowhere. */
	assert_int_equal(vcpu_run(cpu, &H_MMIO, &r), -ENOSYS);
}

static void test_v8_user_memory(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu;
	struct rec r;
	uint64_t *host;
	struct vcpu_mock_step s[] = {
		mem_op(VCPU_MOCK_MEM_CHECK, 0x60000000, 0xabcdef),
		mem_op(VCPU_MOCK_MEM_WRITE, RAM_GPA, 0x77),
		mem_op(VCPU_MOCK_MEM_WRITE, 0x70000000, 0x99), /* no region: MMIO on v8 */
		stop(),
	};

	open_cfg(f, VCPU_MOCK_GUNYAH_V8, 0);
	add_ram(f);
	host = mmap(NULL, f->page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(host != MAP_FAILED);
	host[0] = 0xabcdef;
	assert_int_equal(vcpu_vm_map(f->vm, 0x60000000, host, f->page, 0), 0);
	cpu = add_cpu(f, 0, 0);
	/* v8 has no boot context. */
	assert_int_equal(vcpu_set_reg(cpu, VCPU_REG_ARM64_PC, 0), -EOPNOTSUPP);
	expect_detail(vcpu_last_error(cpu), "v8");
	rec_init(&r, f);
	SCRIPT(f, 0, s);
	/* No vcpu_vm_start(): the v8 run call starts the VM itself. */
	assert_int_equal(vcpu_run(cpu, &H, &r), VCPU_STOP);
	assert_int_equal(*(uint64_t *)f->ram, 0x77);
	assert_int_equal(r.n_io, 2);
	assert_int_equal(r.io[0].addr, 0x70000000);
	assert_int_equal(r.io[0].len, 8);
	assert_int_equal(r.io[0].data[0], 0x99);
	expect_script(f, 0, ARRAY_SIZE(s));
	/* ... after which no vCPU can be added. */
	assert_int_equal(vcpu_create(f->vm, 1, 0, &f->cpu[1]), -EBUSY);
	assert_int_equal(vcpu_vm_unmap(f->vm, 0x60000000, f->page), 0);
	assert_int_equal(vcpu_vm_destroy(&f->vm), -EBUSY);
	assert_int_equal(vcpu_destroy(&f->cpu[0]), 0);
	assert_int_equal(vcpu_vm_destroy(&f->vm), 0);
	munmap(host, f->page);
}

static void test_rule_v8_ioctls(void **state)
{
	struct fx *f = *state;
	struct gunyah_create_mem_args ca = { .size = 4096 };
	struct gh_userspace_memory_region reg = { .label = 1, .flags = 0x10,
						  .guest_phys_addr = 0x1000, .memory_size = 4096 };
	struct gh_vm_function fn;
	struct vcpu *cpu;

	open_cfg(f, VCPU_MOCK_GUNYAH_V8, 0);
	assert_int_equal(raw_ioctl(f, f->hv->fd, GUNYAH_CREATE_GUEST_MEM, &ca), -ENOTTY);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_MAP_MEM, &ca), -ENOTTY);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_SET_BOOT_CONTEXT, &ca), -ENOTTY);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GH_VM_SET_USER_MEM_REGION, &reg), -EINVAL);
	reg.flags = GH_MEM_ALLOW_READ;
	reg.guest_phys_addr = 0x1001;
	reg.userspace_addr = 0x10000;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GH_VM_SET_USER_MEM_REGION, &reg), -EINVAL);
	add_ram(f); /* label 0 at RAM_GPA */
	reg.label = 0;
	reg.guest_phys_addr = 0x1000;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GH_VM_SET_USER_MEM_REGION, &reg), -EEXIST);
	reg.label = 7;
	reg.guest_phys_addr = RAM_GPA;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GH_VM_SET_USER_MEM_REGION, &reg), -EEXIST);
	memset(&fn, 0, sizeof(fn));
	memcpy(fn.name, "irqfd", 6);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GH_VM_ADD_FUNCTION, &fn), -ENOENT);
	cpu = add_cpu(f, 0, 0);
	assert_int_equal(raw_ioctl(f, cpu->fd, GHABI_IO(0x42), NULL), -EINVAL);
}

/* ------------------------------------------------------------------------ */
/* MMIO exits and resume actions                                              */

static void mmio_sizes(struct fx *f, uint32_t flags)
{
	struct vcpu *cpu = boot(f, flags);
	struct rec r;
	struct vcpu_mock_step rd = mmio_read(MMIO_BASE + 0x20, 2, 0x8001, 4);
	struct vcpu_mock_step s[] = {
		mmio_write(MMIO_BASE, 1, 0xab),
		mmio_write(MMIO_BASE + 8, 8, 0x0102030405060708ull),
		mmio_read(MMIO_BASE + 0x10, 4, 0xdeadbeef, 3),
		mmio_read(MMIO_BASE + 0x18, 8, 0x1122334455667788ull, 30),
		rd,
		reg_check(VCPU_REG_ARM64_X(3), 0xdeadbeef),
		reg_check(VCPU_REG_ARM64_X(30), 0x1122334455667788ull),
		reg_check(VCPU_REG_ARM64_X(4), 0xffffffffffff8001ull),
		stop(),
	};

	s[4].flags = VCPU_MOCK_SIGN_EXTEND;
	rec_init(&r, f);
	reply(&r, 0xdeadbeef);
	reply(&r, 0x1122334455667788ull);
	reply(&r, 0x8001);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H, &r), VCPU_STOP);
	assert_int_equal(r.n_io, 6);
	assert_int_equal(r.io[0].len, 1);
	assert_int_equal(r.io[0].data[0], 0xab);
	assert_true(r.io[0].is_write);
	assert_int_equal(r.io[1].len, 8);
	assert_int_equal(r.io[1].data[7], 0x01);
	assert_int_equal(r.io[2].addr, MMIO_BASE + 0x10);
	assert_false(r.io[2].is_write);
	assert_int_equal(r.io[2].vcpu_id, 0);
	assert_int_equal(vcpu_last_exit(cpu)->kind, VCPU_EXIT_MMIO);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_mmio_v17(void **state)
{
	mmio_sizes(*state, 0);
}

static void test_mmio_v8(void **state)
{
	mmio_sizes(*state, VCPU_MOCK_GUNYAH_V8);
}

static void test_mmio_fault_and_retry(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = boot(f, 0);
	struct rec r;
	void *p = NULL;
	struct vcpu_mock_step s[] = {
		expecting(mmio_read(MMIO_BASE, 4, 0, 1), GUNYAH_VCPU_RESUME_FAULT),
		/* Retried after the VMM mapped RAM there: the load reads the RAM. */
		expecting(mmio_read(0x41000000, 4, 0x44332211, 2), GUNYAH_VCPU_RESUME_RETRY),
		reg_check(VCPU_REG_ARM64_X(2), 0x44332211),
		/* Retried with nothing mapped: it exits again, to be handled then. */
		expecting(mmio_write(MMIO_BASE + 4, 4, 0x77), GUNYAH_VCPU_RESUME_RETRY),
		stop(),
	};

	assert_int_equal(vcpu_vm_alloc(f->vm, 0x41000000, f->page, 0, &p), 0);
	memcpy(p, "\x11\x22\x33\x44", 4);
	rec_init(&r, f);
	r.resp[r.n_resp++] = VCPU_IO_FAULT;
	r.resp[r.n_resp++] = VCPU_IO_RETRY;
	r.resp[r.n_resp++] = VCPU_IO_RETRY;
	r.resp[r.n_resp++] = VCPU_IO_HANDLED;
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H, &r), VCPU_STOP);
	assert_int_equal(r.n_io, 5);
	assert_int_equal(r.io[2].addr, MMIO_BASE + 4);
	assert_int_equal(r.io[3].addr, MMIO_BASE + 4); /* the same access again */
	assert_int_equal(r.io[3].data[0], 0x77);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* A resume_action the kernel does not know: EINVAL, and the exit stays resumable. */
static void test_rule_bad_resume_action(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = boot(f, 0);
	struct gunyah_vcpu_run *run = cpu->run;
	struct rec r;
	struct vcpu_mock_step s[] = { mmio_read(MMIO_BASE, 4, 0x1234, 1),
				      reg_check(VCPU_REG_ARM64_X(1), 0x1234), stop() };

	rec_init(&r, f);
	SCRIPT(f, 0, s);
	assert_int_equal(raw_ioctl(f, cpu->fd, GUNYAH_VCPU_RUN, NULL), 0);
	assert_int_equal(run->exit_reason, GUNYAH_VCPU_EXIT_MMIO);
	assert_int_equal(run->mmio.resume_action, GUNYAH_VCPU_RESUME_HANDLED); /* pre-set */
	run->mmio.resume_action = 3;
	assert_int_equal(raw_ioctl(f, cpu->fd, GUNYAH_VCPU_RUN, NULL), -EINVAL);
	run->mmio.resume_action = GUNYAH_VCPU_RESUME_HANDLED;
	memcpy(run->mmio.data, "\x34\x12\0\0", 4);
	assert_int_equal(vcpu_run(cpu, &H, &r), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* The library refuses a handler's answer outside the enum before the kernel sees it. */
static int bad_response(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	(void)ctx;
	(void)cpu;
	io->response = 7;
	return VCPU_CONTINUE;
}

static void test_bad_handler_response(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = boot(f, 0);
	const struct vcpu_handlers h = { .mmio = bad_response };
	struct vcpu_mock_step s[] = { mmio_write(MMIO_BASE, 4, 1) };

	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &h, NULL), -EINVAL);
	expect_detail(vcpu_last_error(cpu), "HANDLED, FAULT or RETRY");
	reset_fx(f);
	/* v8 has no resume action: FAULT cannot be expressed. */
	cpu = boot(f, VCPU_MOCK_GUNYAH_V8);
	SCRIPT(f, 0, s);
	{
		struct rec r;

		rec_init(&r, f);
		r.io_response = VCPU_IO_FAULT;
		assert_int_equal(vcpu_run(cpu, &H, &r), -EOPNOTSUPP);
		expect_detail(vcpu_last_error(cpu), "v8");
	}
}

/* ------------------------------------------------------------------------ */
/* STATUS exits                                                               */

struct status_case {
	uint32_t op;
	uint16_t type;
	uint32_t want_kind, want_type;
	uint64_t want_flags;
};

static void test_status_exits(void **state)
{
	struct fx *f = *state;
	static const struct status_case cases[] = {
		{ VCPU_MOCK_GUNYAH_VM_EXITED, 0, VCPU_EXIT_SYSTEM_EVENT, VCPU_SYSTEM_EVENT_SHUTDOWN, 0 },
		{ VCPU_MOCK_GUNYAH_VM_EXITED, 1, VCPU_EXIT_SYSTEM_EVENT, VCPU_SYSTEM_EVENT_SHUTDOWN, 0 },
		{ VCPU_MOCK_GUNYAH_VM_EXITED, 2, VCPU_EXIT_SYSTEM_EVENT, VCPU_SYSTEM_EVENT_RESET, 0 },
		{ VCPU_MOCK_GUNYAH_VM_EXITED, 3, VCPU_EXIT_SYSTEM_EVENT, VCPU_SYSTEM_EVENT_RESET,
		  VCPU_SYSTEM_EVENT_RESET2 },
		{ VCPU_MOCK_GUNYAH_VM_EXITED, 4, VCPU_EXIT_SYSTEM_EVENT, VCPU_SYSTEM_EVENT_CRASH, 0 },
		{ VCPU_MOCK_GUNYAH_VM_EXITED, 5, VCPU_EXIT_SYSTEM_EVENT, VCPU_SYSTEM_EVENT_CRASH, 0 },
		{ VCPU_MOCK_GUNYAH_VM_EXITED, 6, VCPU_EXIT_SYSTEM_EVENT, VCPU_SYSTEM_EVENT_CRASH, 0 },
		{ VCPU_MOCK_GUNYAH_VM_EXITED, 7, VCPU_EXIT_SYSTEM_EVENT, VCPU_SYSTEM_EVENT_SHUTDOWN, 0 },
		{ VCPU_MOCK_GUNYAH_VM_CRASHED, 0, VCPU_EXIT_SYSTEM_EVENT, VCPU_SYSTEM_EVENT_CRASH, 0 },
		{ VCPU_MOCK_GUNYAH_LOAD_FAILED, 0, VCPU_EXIT_FAIL_ENTRY, 0, 0 },
	};

	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct status_case *c = &cases[i];
		struct vcpu_mock_step s[1];
		struct vcpu *cpu = boot(f, 0);
		struct rec r;
		int rc;

		s[0] = c->op == VCPU_MOCK_GUNYAH_VM_EXITED ? vm_exited(c->type, 4, 0xc0de0000u + i)
							    : step(c->op);
		rec_init(&r, f);
		SCRIPT(f, 0, s);
		rc = vcpu_run(cpu, &H, &r);
		assert_int_equal(vcpu_last_exit(cpu)->kind, c->want_kind);
		assert_int_equal(vcpu_last_exit(cpu)->raw_reason, GUNYAH_VCPU_EXIT_STATUS);
		if (c->want_kind == VCPU_EXIT_SYSTEM_EVENT) {
			assert_int_equal(rc, VCPU_STOP);
			assert_int_equal(r.n_sev, 1);
			assert_int_equal(r.sev[0].type, c->want_type);
			assert_int_equal(r.sev[0].raw_type, c->type);
			assert_int_equal(r.sev[0].ndata, 4);
			assert_int_equal(r.sev[0].data[0], c->want_flags);
			if (c->op == VCPU_MOCK_GUNYAH_VM_EXITED) {
				assert_int_equal(r.sev[0].data[1], 0xc0de0000u + i);
				assert_int_equal(r.sev[0].data[2], 4);
			}
			assert_int_equal(r.sev[0].data[3], c->op == VCPU_MOCK_GUNYAH_VM_EXITED ? 2 : 3);
		} else {
			assert_int_equal(rc, VCPU_STOP); /* .other took it */
			assert_int_equal(r.n_other, 1);
			assert_int_equal(r.other[0].u.internal.code, GUNYAH_VM_STATUS_LOAD_FAILED);
		}
		expect_script(f, 0, 1);
		reset_fx(f);
	}
}

/* The VM stays down: each run reports it again; continuing is refused. */
static void test_status_repeats(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = boot(f, 0);
	struct rec r;
	struct vcpu_mock_step s[] = { vm_exited(1, 0, 0) };

	rec_init(&r, f);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H, &r), VCPU_STOP);
	assert_int_equal(vcpu_run(cpu, &H, &r), VCPU_STOP);
	assert_int_equal(r.n_sev, 2);
	assert_int_equal(r.sev[1].type, VCPU_SYSTEM_EVENT_SHUTDOWN);
	r.sev_rc = VCPU_CONTINUE;
	assert_int_equal(vcpu_run(cpu, &H, &r), -EIO);
	expect_detail(vcpu_last_error(cpu), "no longer runnable");
	/* A LOAD_FAILED status without a handler: the guest cannot continue. */
	reset_fx(f);
	cpu = boot(f, 0);
	s[0] = step(VCPU_MOCK_GUNYAH_LOAD_FAILED);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H_MMIO, NULL), -EIO);
	expect_script(f, 0, 1);
}

/* A second vCPU spinning in the guest sees the VM exit that vCPU 0 caused. */
struct runner {
	struct vcpu *cpu;
	struct rec *r;
	int rc;
};

static void *runner_main(void *p)
{
	struct runner *ru = p;

	ru->rc = vcpu_run(ru->cpu, &H, ru->r);
	return NULL;
}

static void test_status_reaches_all_vcpus(void **state)
{
	struct fx *f = *state;
	struct vcpu *c0, *c1;
	struct rec r0, r1;
	struct runner ru;
	pthread_t t;
	struct vcpu_mock_step s0[] = { vm_exited(2, 0, 0) };
	struct vcpu_mock_step s1[] = { mmio_write(ARM_ADDR, 4, 1), step(VCPU_MOCK_SPIN) };

	open_cfg(f, 0, 0);
	add_ram(f);
	c0 = add_cpu(f, 0, 0);
	c1 = add_cpu(f, 1, 1);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	rec_init(&r0, f);
	rec_init(&r1, f);
	SCRIPT(f, 0, s0);
	SCRIPT(f, 1, s1);
	ru = (struct runner){ .cpu = c1, .r = &r1, .rc = 99 };
	assert_int_equal(pthread_create(&t, NULL, runner_main, &ru), 0);
	for (int i = 0; i < 5000 && !atomic_load(&r1.armed); i++)
		sleep_us(1000);
	assert_int_equal(vcpu_run(c0, &H, &r0), VCPU_STOP);
	pthread_join(t, NULL);
	assert_int_equal(ru.rc, VCPU_STOP);
	assert_int_equal(r1.n_sev, 1);
	assert_int_equal(r1.sev[0].type, VCPU_SYSTEM_EVENT_RESET);
	assert_int_equal(r0.sev[0].type, VCPU_SYSTEM_EVENT_RESET);
	expect_script(f, 0, 1);
}

/* ------------------------------------------------------------------------ */
/* Malformed and unknown exits                                                */

static void expect_eproto(struct fx *f, struct vcpu *cpu, struct vcpu_mock_step s,
			  uint32_t raw_reason, const char *needle)
{
	struct rec r;

	rec_init(&r, f);
	assert_int_equal(vcpu_mock_script(f->mock, 0, &s, 1), 0);
	assert_int_equal(vcpu_run(cpu, &H, &r), -EPROTO);
	assert_int_equal(vcpu_last_exit(cpu)->raw_reason, raw_reason);
	expect_detail(vcpu_last_error(cpu), needle);
	assert_int_equal(r.n_io + r.n_sev + r.n_other, 0); /* no handler saw garbage */
}

static void test_malformed_exits(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = boot(f, 0);
	struct vcpu_mock_step s;

	s = raw(GUNYAH_VCPU_EXIT_MMIO);
	raw_put(&s, 32, 9, 4); /* mmio.len 9 */
	expect_eproto(f, cpu, s, 1, "mmio.len 9");
	s = raw(GUNYAH_VCPU_EXIT_MMIO);
	raw_put(&s, 32, 0, 4);
	expect_eproto(f, cpu, s, 1, "mmio.len 0");
	s = raw(GUNYAH_VCPU_EXIT_MMIO);
	raw_put(&s, 32, 4, 4);
	raw_put(&s, 36, 2, 1);
	expect_eproto(f, cpu, s, 1, "is_write");
	s = raw(GUNYAH_VCPU_EXIT_STATUS);
	raw_put(&s, 16, GUNYAH_VM_STATUS_EXITED, 4);
	raw_put(&s, 24, 9, 4); /* reason_size 9 */
	expect_eproto(f, cpu, s, 2, "reason_size");
	s = raw(GUNYAH_VCPU_EXIT_STATUS);
	raw_put(&s, 16, 7, 4);
	expect_eproto(f, cpu, s, 2, "status.status 7");
	s = raw(GUNYAH_VCPU_EXIT_STATUS);
	raw_put(&s, 16, GUNYAH_VM_STATUS_EXITED, 4);
	raw_put(&s, 20, 99, 2);
	expect_eproto(f, cpu, s, 2, "exit_info.type 99");
	expect_eproto(f, cpu, raw(GUNYAH_VCPU_EXIT_UNKNOWN), 0, "unknown Gunyah exit reason 0");
	expect_eproto(f, cpu, raw(77), 77, "reason 77");
	expect_script(f, 0, 1);
}

/* A run call that fails with an errno is reported with it. */
static void test_run_errno(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = boot(f, 0);
	struct vcpu_mock_step s = raw(GUNYAH_VCPU_EXIT_MMIO);
	struct rec r;

	s.err = EIO;
	rec_init(&r, f);
	assert_int_equal(vcpu_mock_script(f->mock, 0, &s, 1), 0);
	assert_int_equal(vcpu_run(cpu, &H, &r), -EIO);
	expect_detail(vcpu_last_error(cpu), "GUNYAH_VCPU_RUN");
	/* ERESTARTSYS leaking out raw is taken as an interruption: the run goes on. */
	s.err = GUNYAH_ERESTARTSYS;
	{
		struct vcpu_mock_step two[] = { s, stop() };

		SCRIPT(f, 0, two);
		assert_int_equal(vcpu_run(cpu, &H, &r), VCPU_STOP);
		expect_script(f, 0, 2);
	}
}

/* ------------------------------------------------------------------------ */
/* Kicks                                                                      */

static void kick_spinning(struct fx *f, uint32_t flags, bool signal_only)
{
	struct vcpu *cpu = boot(f, flags);
	struct rec r;
	struct kicker k;
	pthread_t t;
	struct vcpu_mock_step s[] = {
		mmio_write(ARM_ADDR, 4, 1),
		step(VCPU_MOCK_SPIN),
		mmio_write(MMIO_BASE, 4, 0xaf7e5),
		stop(),
	};
	int rc;

	rec_init(&r, f);
	SCRIPT(f, 0, s);
	k = (struct kicker){ .cpu = cpu, .armed = &r.armed, .rc = 1,
			     .signal_tid = signal_only ? gettid() : 0,
			     .signo = vcpu_kick_signal(f->hv) };
	assert_int_equal(pthread_create(&t, NULL, kicker_main, &k), 0);
	rc = vcpu_run(cpu, &H, &r);
	pthread_join(t, NULL);
	assert_int_equal(k.rc, 0);
	if (signal_only) {
		/* A signal alone (ERESTARTSYS, EINTR) is no kick: vcpu_run() goes on. */
		assert_int_equal(rc, VCPU_STOP);
		assert_int_equal(r.n_io, 3);
	} else {
		assert_int_equal(rc, -EINTR);
		assert_int_equal(r.n_io, 1);
		assert_int_equal(vcpu_mock_steps_done(f->mock, 0), 2); /* the spin ended */
		assert_int_equal(vcpu_run(cpu, &H, &r), VCPU_STOP);
		assert_int_equal(r.n_io, 3);
	}
	assert_int_equal(r.io[1].addr, MMIO_BASE);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_kick_from_thread_v17(void **state)
{
	kick_spinning(*state, 0, false);
}

static void test_kick_from_thread_v8(void **state)
{
	kick_spinning(*state, VCPU_MOCK_GUNYAH_V8, false);
}

static void test_signal_is_not_a_kick(void **state)
{
	kick_spinning(*state, 0, true);
}

static void kick_before_run(struct fx *f, uint32_t flags)
{
	struct vcpu *cpu = boot(f, flags);
	struct rec r;
	struct vcpu_mock_step s[] = { stop() };

	rec_init(&r, f);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_kick(cpu), 0);
	assert_int_equal(vcpu_run(cpu, &H, &r), -EINTR);
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), 0);
	assert_int_equal(((struct gunyah_vcpu_run *)cpu->run)->immediate_exit, 0);
	assert_int_equal(vcpu_run(cpu, &H, &r), VCPU_STOP);
	expect_script(f, 0, 1);
}

static void test_kick_before_run_v17(void **state)
{
	kick_before_run(*state, 0);
}

static void test_kick_before_run_v8(void **state)
{
	kick_before_run(*state, VCPU_MOCK_GUNYAH_V8);
}

/*
 * A kick from the MMIO handler: vcpu_run() returns -EINTR before entering
 * the driver again, so the completion is not lost to immediate_exit (the
 * driver drops it when the run call stops there) and reaches the guest at
 * the next vcpu_run().
 */
static void kick_keeps_completion(struct fx *f, uint32_t flags)
{
	struct vcpu *cpu = boot(f, flags);
	struct rec r;
	struct vcpu_mock_step s[] = { mmio_read(MMIO_BASE, 4, 0xc0ffee, 5),
				      reg_check(VCPU_REG_ARM64_X(5), 0xc0ffee), stop() };

	rec_init(&r, f);
	reply(&r, 0xc0ffee);
	r.kick_self = true;
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H, &r), -EINTR);
	r.kick_self = false;
	assert_int_equal(vcpu_run(cpu, &H, &r), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_kick_keeps_completion_v17(void **state)
{
	kick_keeps_completion(*state, 0);
}

static void test_kick_keeps_completion_v8(void **state)
{
	kick_keeps_completion(*state, VCPU_MOCK_GUNYAH_V8);
}

/*
 * A kick that lands in the driver's window, after the run call took an MMIO
 * read's data and before it looks at immediate_exit and signals (the mock
 * puts it exactly there): the kick is held back, the guest gets its value,
 * and vcpu_run() still returns -EINTR, through the deferred signal that
 * stops the spinning guest.  Without the deferral the mock sees the read
 * lost (its immediate_exit or signal check in the window).
 */
struct window_kick {
	struct vcpu *cpu;
	atomic_int kicks;
	uint8_t ie_after;       /* immediate_exit right after the kick, in the window */
};

static void kick_in_window(void *arg)
{
	struct window_kick *w = arg;

	if (atomic_fetch_add(&w->kicks, 1) == 0) {
		vcpu_kick(w->cpu);
		w->ie_after = __atomic_load_n(&((struct gunyah_vcpu_run *)w->cpu->run)->immediate_exit,
					      __ATOMIC_SEQ_CST);
	}
}

static void kick_in_resume_window(struct fx *f, uint32_t flags)
{
	struct vcpu *cpu = boot(f, flags);
	struct vcpu_mock_step s[] = { mmio_read(MMIO_BASE, 4, 0xfeed, 5),
				      reg_check(VCPU_REG_ARM64_X(5), 0xfeed), step(VCPU_MOCK_SPIN),
				      stop() };
	struct window_kick w = { .cpu = cpu };
	struct timespec t0, t1;
	struct rec r;

	rec_init(&r, f);
	reply(&r, 0xfeed);
	SCRIPT(f, 0, s);
	mock_gunyah_set_resume_hook(f->mock, kick_in_window, &w);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(vcpu_run(cpu, &H, &r), -EINTR);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	mock_gunyah_set_resume_hook(f->mock, NULL, NULL);
	assert_int_equal(atomic_load(&w.kicks), 1);
	assert_int_equal(w.ie_after, 0);
	/* The read, its register, and the spin the deferred signal ended. */
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), 3);
	/* Held back by about KICK_DEFER_NS (200 us), not lost: well under the mock's spin limit. */
	assert_true((t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec) < 5000000000ll);
	assert_int_equal(vcpu_run(cpu, &H, &r), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/*
 * The same race left to chance: 20000 MMIO reads while another thread
 * kicks every 50 us (the reproducer); every read reaches the guest
 * (the mock checks each value, and a kick or signal in its window).
 */
#define STRESS_READS 20000

static uint64_t stress_value(uint64_t addr)
{
	return (addr - MMIO_BASE) * 0x10001ull + 0x5a5a;
}

static int on_stress_read(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	uint64_t v = stress_value(io->addr);

	(void)ctx;
	(void)cpu;
	if (io->is_write)
		return io->addr == STOP_ADDR ? VCPU_STOP : VCPU_CONTINUE;
	for (unsigned i = 0; i < io->len; i++)
		io->data[i] = (uint8_t)(v >> (8 * i));
	return VCPU_CONTINUE;
}

struct stress_kicker {
	struct vcpu *cpu;
	atomic_int stop;
	unsigned kicks;
};

static void *stress_kick_main(void *arg)
{
	struct stress_kicker *k = arg;
	const struct timespec gap = { 0, 50000 };

	while (!atomic_load(&k->stop)) {
		vcpu_kick(k->cpu);
		k->kicks++;
		nanosleep(&gap, NULL);
	}
	return NULL;
}

static void kicks_during_reads(struct fx *f, uint32_t flags)
{
	struct vcpu *cpu = boot(f, flags);
	const struct vcpu_handlers h = { .mmio = on_stress_read };
	struct vcpu_mock_step *s = calloc(STRESS_READS + 1, sizeof(*s));
	struct stress_kicker k = { .cpu = cpu };
	unsigned interrupted = 0;
	pthread_t t;
	int rc;

	assert_non_null(s);
	for (unsigned i = 0; i < STRESS_READS; i++)
		s[i] = mmio_read(MMIO_BASE + 8 * (i % 64), 4,
				 stress_value(MMIO_BASE + 8 * (i % 64)) & 0xffffffff, 3);
	s[STRESS_READS] = stop();
	assert_int_equal(vcpu_mock_script(f->mock, 0, s, STRESS_READS + 1), 0);
	assert_int_equal(pthread_create(&t, NULL, stress_kick_main, &k), 0);
	while ((rc = vcpu_run(cpu, &h, NULL)) == -EINTR)
		interrupted++;
	atomic_store(&k.stop, 1);
	pthread_join(t, NULL);
	free(s);
	assert_int_equal(rc, VCPU_STOP);
	print_message("%u kicks, %u vcpu_run() calls ended by one\n", k.kicks, interrupted);
	expect_script(f, 0, STRESS_READS + 1);
}

static void test_kicks_during_reads_v17(void **state)
{
	kicks_during_reads(*state, 0);
}

static void test_kicks_during_reads_v8(void **state)
{
	kicks_during_reads(*state, VCPU_MOCK_GUNYAH_V8);
}

static void test_kick_in_resume_window_v17(void **state)
{
	kick_in_resume_window(*state, 0);
}

static void test_kick_in_resume_window_v8(void **state)
{
	kick_in_resume_window(*state, VCPU_MOCK_GUNYAH_V8);
}

/* The driver rule itself: immediate_exit after a resume was taken loses it (v17 EINTR, v8 0). */
static void immediate_exit_rule(struct fx *f, uint32_t flags, int want)
{
	struct vcpu *cpu = boot(f, flags);
	struct gunyah_vcpu_run *run = cpu->run;
	struct vcpu_mock_step s[] = { mmio_read(MMIO_BASE, 4, 1, 1), stop() };
	unsigned long req = flags ? GH_VCPU_RUN : GUNYAH_VCPU_RUN;

	SCRIPT(f, 0, s);
	assert_int_equal(raw_ioctl(f, cpu->fd, req, NULL), 0);
	assert_int_equal(run->exit_reason, 1);
	run->mmio.data[0] = 1;
	run->immediate_exit = 1;
	assert_int_equal(raw_ioctl(f, cpu->fd, req, NULL), want);
	assert_int_equal(vcpu_mock_failures(f->mock, NULL), 1);
	/* Nothing pending any more: immediate_exit alone. */
	assert_int_equal(raw_ioctl(f, cpu->fd, req, NULL), want);
	assert_int_equal(vcpu_mock_failures(f->mock, NULL), 1);
	run->immediate_exit = 0;
}

static void test_rule_immediate_exit_v17(void **state)
{
	immediate_exit_rule(*state, 0, -EINTR);
}

static void test_rule_immediate_exit_v8(void **state)
{
	struct fx *f = *state;

	immediate_exit_rule(f, VCPU_MOCK_GUNYAH_V8, 0);
	/* v8 copies back the page's len: a VMM must not change it (libvcpu never does). */
	reset_fx(f);
	{
		struct vcpu *cpu = boot(f, VCPU_MOCK_GUNYAH_V8);
		struct gh_vcpu_run *run = cpu->run;
		struct vcpu_mock_step s[] = { mmio_read(MMIO_BASE, 2, 0, 1), stop() };

		SCRIPT(f, 0, s);
		assert_int_equal(raw_ioctl(f, cpu->fd, GH_VCPU_RUN, NULL), 0);
		run->mmio.len = 64;
		assert_int_equal(raw_ioctl(f, cpu->fd, GH_VCPU_RUN, NULL), 0);
		assert_int_equal(vcpu_mock_failures(f->mock, NULL), 1);
	}
}

/* ------------------------------------------------------------------------ */
/* irqfd and ioeventfd                                                        */

static void test_irqfd(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = boot(f, 0);
	int efd = eventfd(0, EFD_CLOEXEC), pfd[2];
	struct vcpu_irqfd irq = { .fd = efd, .irq = 5, .flags = VCPU_IRQFD_LEVEL, .resample_fd = -1 };
	struct vcpu_mock_step db = step(VCPU_MOCK_GUNYAH_DOORBELL);
	struct vcpu_mock_step s[2];
	struct rec r;
	uint64_t one = 1;

	assert_true(efd >= 0);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	assert_int_equal(vcpu_vm_irqfd(f->vm, &irq), 0);
	assert_int_equal(vcpu_vm_irqfd(f->vm, &irq), -EEXIST); /* one binding per doorbell */
	irq.flags = VCPU_IRQFD_MSI;
	assert_int_equal(vcpu_vm_irqfd(f->vm, &irq), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm), "doorbell");
	irq = (struct vcpu_irqfd){ .fd = pfd[0], .irq = 6, .resample_fd = -1 };
	assert_int_equal(vcpu_vm_irqfd(f->vm, &irq), -EBADF);
	/* The device thread rings it; the guest sees the level-triggered doorbell. */
	assert_int_equal(write(efd, &one, sizeof(one)), (ssize_t)sizeof(one));
	db.value = 5;
	db.flags = 1;
	s[0] = db;
	s[1] = stop();
	rec_init(&r, f);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H, &r), VCPU_STOP);
	expect_script(f, 0, 2);
	irq = (struct vcpu_irqfd){ .fd = efd, .irq = 5, .flags = VCPU_IRQFD_DEASSIGN,
				   .resample_fd = -1 };
	assert_int_equal(vcpu_vm_irqfd(f->vm, &irq), 0);
	assert_int_equal(vcpu_vm_irqfd(f->vm, &irq), -ENOENT);
	/* Not rung (and now unbound): the guest notices. */
	s[0].value = 5;
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H, &r), VCPU_STOP);
	assert_int_equal(vcpu_mock_failures(f->mock, NULL), 1);
	close(efd);
	close(pfd[0]);
	close(pfd[1]);
}

static void test_ioeventfd(void **state)
{
	struct fx *f = *state;
	struct vcpu *cpu = boot(f, 0);
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct vcpu_ioeventfd io = { .fd = efd, .addr = MMIO_BASE + 0x40, .len = 4,
				     .flags = VCPU_IOEVENTFD_DATAMATCH, .datamatch = 0x1234 };
	struct gunyah_fn_ioeventfd_arg a = { .addr = MMIO_BASE, .len = 3, .fd = efd };
	struct gunyah_fn_desc d = { .type = GUNYAH_FN_IOEVENTFD, .arg_size = sizeof(a),
				    .arg = (uint64_t)(uintptr_t)&a };
	struct vcpu_mock_step s[] = {
		mmio_write(MMIO_BASE + 0x40, 4, 0x1234), /* taken in the driver */
		mmio_write(MMIO_BASE + 0x40, 4, 0x9999), /* no match: exits */
		stop(),
	};
	struct rec r;
	uint64_t n = 0;

	assert_true(efd >= 0);
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &io), 0);
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &io), -EEXIST);
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_ADD_FUNCTION, &d), -EINVAL); /* len 3 */
	a.len = 0;
	a.flags = GUNYAH_IOEVENTFD_FLAGS_DATAMATCH;
	assert_int_equal(raw_ioctl(f, f->vm->fd, GUNYAH_VM_ADD_FUNCTION, &d), -EINVAL);
	io.flags |= VCPU_IOEVENTFD_PIO;
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &io), -EINVAL);
	io.flags &= ~VCPU_IOEVENTFD_PIO;
	rec_init(&r, f);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(cpu, &H, &r), VCPU_STOP);
	assert_int_equal(r.n_io, 2);
	assert_int_equal(r.io[0].data[0], 0x99);
	assert_int_equal(read(efd, &n, sizeof(n)), (ssize_t)sizeof(n));
	assert_int_equal(n, 1);
	expect_script(f, 0, ARRAY_SIZE(s));
	io.flags |= VCPU_IOEVENTFD_DEASSIGN;
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &io), 0);
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &io), -ENOENT);
	close(efd);
}

/* Teardown with bindings, functions and guest memory live leaves nothing behind. */
static void test_teardown_with_live_functions(void **state)
{
	struct fx *f = *state;
	int efd = eventfd(0, EFD_CLOEXEC);
	struct vcpu_irqfd irq = { .fd = efd, .irq = 1, .resample_fd = -1 };
	struct vcpu_ioeventfd io = { .fd = efd, .addr = MMIO_BASE, .len = 0 };
	void *p = NULL;

	assert_true(efd >= 0);
	open_cfg(f, 0, 0);
	add_ram(f);
	assert_int_equal(vcpu_vm_alloc(f->vm, 0x90000000, 8 * f->page, 0, &p), 0);
	add_cpu(f, 0, 0);
	add_cpu(f, 1, 1);
	assert_int_equal(vcpu_vm_irqfd(f->vm, &irq), 0);
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &io), 0);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	close(efd); /* the driver keeps its own reference */
	/* The fixture's teardown destroys vCPUs, VM (freeing the memory) and mock. */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_open_v17),
		T(test_open_v8),
		T(test_bad_configs),
		T(test_rule_dev_ioctls),
		T(test_rule_vcpu_ioctls_and_mmap),
		T(test_rule_add_remove_function),
		T(test_rule_map_mem),
		T(test_rule_boot_context),
		T(test_rule_dtb_and_start),
		T(test_run_before_start),
		T(test_vcpu_without_resource),
		T(test_remove_function_stops_vcpu),
		T(test_vcpu_recreate),
		T(test_create_flags_and_busy),
		T(test_boot_context_registers),
		T(test_guest_memory_v17),
		T(test_alloc_failure_leaks_nothing),
		T(test_page_fault_retry),
		T(test_page_fault_fatal_and_unmap),
		T(test_v8_user_memory),
		T(test_rule_v8_ioctls),
		T(test_mmio_v17),
		T(test_mmio_v8),
		T(test_mmio_fault_and_retry),
		T(test_rule_bad_resume_action),
		T(test_bad_handler_response),
		T(test_status_exits),
		T(test_status_repeats),
		T(test_status_reaches_all_vcpus),
		T(test_malformed_exits),
		T(test_run_errno),
		T(test_kick_from_thread_v17),
		T(test_kick_from_thread_v8),
		T(test_signal_is_not_a_kick),
		T(test_kick_before_run_v17),
		T(test_kick_before_run_v8),
		T(test_kick_keeps_completion_v17),
		T(test_kick_keeps_completion_v8),
		T(test_kick_in_resume_window_v17),
		T(test_kicks_during_reads_v17),
		T(test_kicks_during_reads_v8),
		T(test_kick_in_resume_window_v8),
		T(test_rule_immediate_exit_v17),
		T(test_rule_immediate_exit_v8),
		T(test_irqfd),
		T(test_ioeventfd),
		T(test_teardown_with_live_functions),
#undef T
	};

	return cmocka_run_group_tests_name("gunyah", tests, NULL, NULL);
}
