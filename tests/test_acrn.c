// SPDX-License-Identifier: MIT
/*
 * The `acrn` suite: libvcpu's ACRN backend against the modelled HSM
 * (lib/mock/mock_acrn.c), and the modelled HSM's own rules.
 *
 * Every test runs between a setup that records the process's open fds and
 * mappings and a teardown that destroys every handle (asserting 0), checks
 * the mock holds no live object and that both counts are back.
 *
 * Scripted guests check what the VMM completed their reads with; tests end
 * with expect_script(): no failed check, and the steps each vCPU was given
 * were all handed out.  Unless a test says otherwise a script ends with
 * stop(): an MMIO write to STOP_ADDR, which the recording handlers answer
 * by stopping vcpu_run().
 *
 * Driver rules are shown with raw ioctls through the same seam the library
 * uses (the VM's fd from the internal header), since libvcpu itself never
 * breaks them.
 */
#define _GNU_SOURCE
#include <vcpu/mock.h>
#include <vcpu/vcpu.h>

#include "acrn/acrn_abi.h"
#include "core/internal.h"
#include "mock/mock_acrn.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"
#include "threads.h"
#include "mock_steps.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MMIO_BASE 0x10000000ull
#define ARM_ADDR 0x1ffe0000ull   /* a write here arms a kicker */
#define ID_ADDR 0x1ffd0000ull    /* a read here returns the requesting vCPU's id */
#define STOP_PORT 0x5ff          /* a port write here stops vcpu_run() */
#define PM1A_PORT 0x404
#define MAX_CPUS 8
#define NREC 128

/* ------------------------------------------------------------------------ */
/* Fixture                                                                    */

struct fx {
	long fds, maps;
	struct vcpu_mock *mock;
	struct vcpu_hv *hv;
	struct vcpu_vm *vm;
	struct vcpu *cpu[MAX_CPUS];
	int efd[4];
	void *mem[4];
	size_t memlen[4];
	size_t page;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	for (unsigned i = 0; i < ARRAY_SIZE(f->efd); i++)
		f->efd[i] = -1;
	f->page = (size_t)sysconf(_SC_PAGESIZE);
	f->fds = count_open_fds();
	f->maps = count_mappings();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	int rc_cpu = 0, rc_vm = 0, rc_hv = 0, rc_mock = 0;
	unsigned live = 0;
	long fds, maps;

	for (unsigned i = 0; i < MAX_CPUS; i++)
		if (f->cpu[i] && vcpu_destroy(&f->cpu[i]) != 0)
			rc_cpu = -1;
	if (f->vm)
		rc_vm = vcpu_vm_destroy(&f->vm);
	if (f->hv) {
		rc_hv = vcpu_hv_close(f->hv);
		if (rc_hv == 0)
			f->hv = NULL;
	}
	if (f->mock) {
		live = vcpu_mock_live_objects(f->mock);
		rc_mock = vcpu_mock_destroy(&f->mock);
	}
	for (unsigned i = 0; i < ARRAY_SIZE(f->efd); i++)
		if (f->efd[i] >= 0)
			close(f->efd[i]);
	for (unsigned i = 0; i < ARRAY_SIZE(f->mem); i++)
		if (f->mem[i])
			munmap(f->mem[i], f->memlen[i]);
	fds = count_open_fds();
	maps = count_mappings();

	assert_int_equal(rc_cpu, 0);
	assert_int_equal(rc_vm, 0);
	assert_int_equal(rc_hv, 0);
	assert_int_equal(live, 0);
	assert_int_equal(rc_mock, 0);
	assert_null(f->mock);
	assert_int_equal(fds, f->fds);
	assert_int_equal(maps, f->maps);
	free(f);
	return 0;
}

static void open_mock(struct fx *f, const struct vcpu_mock_config *mcfg)
{
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_ACRN, mcfg, &f->mock, &f->hv), 0);
	assert_non_null(f->hv);
}

static void open_vm(struct fx *f, const struct vcpu_mock_config *mcfg,
		    const struct vcpu_vm_config *cfg)
{
	open_mock(f, mcfg);
	assert_int_equal(vcpu_vm_create(f->hv, cfg, &f->vm), 0);
	assert_non_null(f->vm);
}

static struct vcpu *add_cpu(struct fx *f, uint32_t id)
{
	assert_true(id < MAX_CPUS);
	assert_int_equal(vcpu_create(f->vm, id, 0, &f->cpu[id]), 0);
	assert_int_equal(vcpu_id(f->cpu[id]), id);
	return f->cpu[id];
}

/* A VM of @n vCPUs (cpu_affinity bits 0..n-1) with a handle for each. */
static void open_n(struct fx *f, unsigned n, uint32_t pm1a)
{
	struct vcpu_vm_config cfg = { .cpu_affinity = (1ull << n) - 1, .x86_pm1a_cnt_port = pm1a };

	open_vm(f, NULL, &cfg);
	for (uint32_t i = 0; i < n; i++)
		add_cpu(f, i);
}

static int raw_ioctl(struct fx *f, unsigned long req, const void *arg)
{
	return f->hv->sys->ioctl(f->hv->sys_ctx, f->vm->fd, req, (unsigned long)(uintptr_t)arg);
}

static struct mock_acrn_info info(struct fx *f)
{
	struct mock_acrn_info i;

	assert_int_equal(mock_acrn_info(f->mock, f->vm->fd, &i), 0);
	return i;
}

static int new_eventfd(struct fx *f)
{
	for (unsigned i = 0; i < ARRAY_SIZE(f->efd); i++) {
		if (f->efd[i] >= 0)
			continue;
		f->efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		assert_true(f->efd[i] >= 0);
		return f->efd[i];
	}
	fail_msg("too many eventfds");
	return -1;
}

static uint64_t eventfd_count(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	return v;
}

static void expect_detail(const char *d)
{
	assert_non_null(d);
	assert_true(strlen(d) > 0);
}

/* ------------------------------------------------------------------------ */
/* Script steps                                                               */

static struct vcpu_mock_step pci(uint32_t op, unsigned bus, unsigned dev, unsigned fn, unsigned reg,
				 uint32_t len, uint64_t value)
{
	struct vcpu_mock_step s = step(op);

	s.addr = VCPU_PCI_CFG_ADDR(bus, dev, fn, reg);
	s.len = len;
	s.value = value;
	return s;
}

/* A RAW_SLOT step: the slot as the hypervisor would leave it. */
static struct vcpu_mock_step raw_slot(uint32_t type, uint32_t dir, uint64_t addr, uint64_t size,
				      uint32_t state, uint32_t kernel_handled)
{
	struct vcpu_mock_step s = step(VCPU_MOCK_ACRN_RAW_SLOT);
	struct acrn_io_request req;

	memset(&req, 0, sizeof(req));
	req.type = type;
	req.reqs.mmio_request.direction = dir;
	req.reqs.mmio_request.address = addr;
	req.reqs.mmio_request.size = size;
	req.kernel_handled = kernel_handled;
	req.processed = state;
	memcpy(s.raw, &req, sizeof(req));
	return s;
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

static void put_le(uint8_t *p, uint64_t v, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned len)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < len && i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ------------------------------------------------------------------------ */
/* Recording handlers                                                         */

struct rec {
	unsigned n_mmio, n_pio, n_pci, n_sev, n_other, n_io;
	struct vcpu_io io[NREC];    /* every access, in order */
	uint32_t kind[NREC];
	uint32_t exit_id[NREC];     /* vcpu_last_exit()->vcpu_id at each */
	struct vcpu_system_event sev[4];
	uint32_t sev_id[4];
	uint64_t reply[NREC];
	unsigned n_reply, next_reply;
	uint32_t response;          /* set on every read */
	int stop_rc;
	int sev_rc;
	/* system events: do acrn-dm's reset in the handler */
	struct vcpu_vm *reset_vm;
	struct vcpu *boot_cpu;
	uint64_t boot_rip;
	int reset_rc, setreg_rc, start_rc;
	/* kicks */
	atomic_int armed;
	int arm_timer_us;
	/* a second server */
	struct vcpu *other;
	int other_rc;
};

static void rec_init(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	r->stop_rc = VCPU_STOP;
	r->sev_rc = VCPU_STOP;
	r->reset_rc = r->setreg_rc = r->start_rc = 1;
	r->other_rc = 1;
}

static void reply(struct rec *r, uint64_t v)
{
	assert_true(r->n_reply < NREC);
	r->reply[r->n_reply++] = v;
}

static void arm_timer(int us)
{
	struct itimerval t = { .it_value = { .tv_sec = 0, .tv_usec = us } };

	setitimer(ITIMER_REAL, &t, NULL);
}

static int on_io(struct rec *r, struct vcpu *cpu, struct vcpu_io *io, uint32_t kind)
{
	if (r->n_io < NREC) {
		r->io[r->n_io] = *io;
		r->kind[r->n_io] = kind;
		r->exit_id[r->n_io] = vcpu_last_exit(cpu)->vcpu_id;
	}
	r->n_io++;
	if (io->is_write && io->addr == STOP_ADDR && kind == VCPU_EXIT_MMIO)
		return r->stop_rc;
	if (io->is_write && io->addr == STOP_PORT && kind == VCPU_EXIT_PIO)
		return r->stop_rc;
	if (io->is_write && io->addr == ARM_ADDR) {
		atomic_store(&r->armed, 1);
		if (r->arm_timer_us)
			arm_timer(r->arm_timer_us);
		return VCPU_CONTINUE;
	}
	if (!io->is_write) {
		uint64_t v = io->addr == ID_ADDR ? io->vcpu_id
			     : r->next_reply < r->n_reply ? r->reply[r->next_reply] : 0;
		if (io->addr != ID_ADDR)
			r->next_reply++;
		memset(io->data, 0, sizeof(io->data));
		put_le(io->data, v, io->len);
		io->response = r->response;
	}
	return VCPU_CONTINUE;
}

static int on_mmio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct rec *r = ctx;

	r->n_mmio++;
	return on_io(r, cpu, io, VCPU_EXIT_MMIO);
}

static int on_pio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct rec *r = ctx;

	r->n_pio++;
	return on_io(r, cpu, io, VCPU_EXIT_PIO);
}

static int on_pci(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct rec *r = ctx;

	r->n_pci++;
	return on_io(r, cpu, io, VCPU_EXIT_PCI_CONFIG);
}

static int on_sev(void *ctx, struct vcpu *cpu, const struct vcpu_system_event *ev)
{
	struct rec *r = ctx;

	if (r->n_sev < ARRAY_SIZE(r->sev)) {
		r->sev[r->n_sev] = *ev;
		r->sev_id[r->n_sev] = vcpu_last_exit(cpu)->vcpu_id;
	}
	r->n_sev++;
	if (r->reset_vm && ev->type == VCPU_SYSTEM_EVENT_RESET) {
		/* acrn-dm's sequence: pause, clear, reset, boot registers, start. */
		r->reset_rc = vcpu_vm_reset(r->reset_vm);
		r->setreg_rc = vcpu_set_reg(r->boot_cpu, VCPU_REG_X86_RIP, r->boot_rip);
		r->start_rc = vcpu_vm_start(r->reset_vm);
		return VCPU_CONTINUE;
	}
	return r->sev_rc;
}

static int on_other(void *ctx, struct vcpu *cpu, const struct vcpu_exit *e)
{
	struct rec *r = ctx;

	(void)cpu;
	(void)e;
	r->n_other++;
	return VCPU_STOP;
}

static const struct vcpu_handlers H_ALL = {
	.mmio = on_mmio,
	.pio = on_pio,
	.system_event = on_sev,
	.pci_config = on_pci,
	.other = on_other,
};

/* ======================================================================== */
/* Handles and VMs                                                            */

/*
 * One VM per open file: the handle's fd and the VM's are two opens of the
 * node; the VM gets the hypervisor's vCPUs and a generated name.
 */
static void test_open_and_create(void **state)
{
	struct fx *f = *state;
	struct mock_acrn_info i;

	open_mock(f, NULL);
	assert_int_equal(vcpu_hv_backend(f->hv), VCPU_BACKEND_ACRN);
	assert_int_equal(vcpu_hv_arch(f->hv), VCPU_ARCH_X86_64);
	assert_string_equal(vcpu_backend_name(vcpu_hv_backend(f->hv)), "acrn");
	assert_int_equal(count_open_fds(), f->fds + 1);
	assert_int_equal(vcpu_vm_create(f->hv, NULL, &f->vm), 0);
	assert_int_equal(count_open_fds(), f->fds + 2);
	assert_true(f->vm->fd != f->hv->fd);
	i = info(f);
	assert_int_equal(i.state, MACRN_CREATED);
	assert_int_equal(i.vcpu_num, 8); /* affinity 0: the mock's 8 pCPUs */
	assert_int_equal(i.affinity, 0xff);
	assert_int_equal(strncmp(i.name, "lv", 2), 0);
	assert_true(strlen(i.name) > 2 && strlen(i.name) < ACRN_NAME_LEN);
	assert_false(i.client);
	/* The hv's own fd holds an empty VM: it only knows CREATE_VM. */
	assert_int_equal(mock_acrn_info(f->mock, f->hv->fd, &i), -EBADF);
	assert_int_equal(vcpu_vm_destroy(&f->vm), 0);
	assert_int_equal(count_open_fds(), f->fds + 1);
}

static void test_create_config(void **state)
{
	struct fx *f = *state;
	struct vcpu_vm_config cfg = { .cpu_affinity = 0x5, .name = "guest-one" };
	struct vcpu_vm_config bad = { 0 };
	struct vcpu_vm *vm2 = NULL;
	struct mock_acrn_info i;

	open_vm(f, NULL, &cfg);
	i = info(f);
	assert_int_equal(i.vcpu_num, 2);
	assert_int_equal(i.affinity, 0x5);
	assert_string_equal(i.name, "guest-one");
	/* The hypervisor knows VMs by name: a second "guest-one" is refused. */
	assert_int_equal(vcpu_vm_create(f->hv, &cfg, &vm2), -EINVAL);
	expect_detail(vcpu_hv_last_error(f->hv));
	assert_null(vm2);
	/* Generated names differ: two default VMs coexist. */
	assert_int_equal(vcpu_vm_create(f->hv, NULL, &vm2), 0);
	assert_int_equal(vcpu_vm_destroy(&vm2), 0);
	/* A pCPU the hypervisor does not have. */
	bad.cpu_affinity = 1ull << 9;
	assert_int_equal(vcpu_vm_create(f->hv, &bad, &vm2), -EINVAL);
	bad.cpu_affinity = 0;
	bad.ipa_bits = 40;
	assert_int_equal(vcpu_vm_create(f->hv, &bad, &vm2), -EINVAL);
	bad.ipa_bits = 0;
	memset(bad.name, 'x', sizeof(bad.name)); /* no room for the NUL */
	assert_int_equal(vcpu_vm_create(f->hv, &bad, &vm2), -EINVAL);
	memset(bad.name, 0, sizeof(bad.name));
	bad.x86_pm1a_cnt_port = 0x10000;
	assert_int_equal(vcpu_vm_create(f->hv, &bad, &vm2), -EINVAL);
	expect_detail(vcpu_hv_last_error(f->hv));
	assert_null(vm2);
	/* Nothing of the failed creations stayed open. */
	assert_int_equal(count_open_fds(), f->fds + 2);
}

static void test_mock_config_refused(void **state)
{
	struct fx *f = *state;
	struct vcpu_mock_config arm = { .arch = VCPU_ARCH_ARM64 };
	struct vcpu_mock_config big = { .max_vcpus = ACRN_IO_REQUEST_MAX + 1 };
	struct vcpu_mock_config kvmflag = { .flags = VCPU_MOCK_NO_IMMEDIATE_EXIT };

	/* ACRN exists on x86_64 only, with one request slot per vCPU, and no KVM flags. */
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_ACRN, &arm, &f->mock, &f->hv), -EINVAL);
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_ACRN, &big, &f->mock, &f->hv), -EINVAL);
	assert_int_equal(vcpu_mock_open(VCPU_BACKEND_ACRN, &kvmflag, &f->mock, &f->hv), -EINVAL);
	assert_null(f->mock);
	assert_null(f->hv);
}

/* vCPUs exist since CREATE_VM: a handle binds one, once. */
static void test_vcpu_bind(void **state)
{
	struct fx *f = *state;
	struct vcpu *dup = NULL;

	open_n(f, 2, 0);
	assert_int_equal(vcpu_create(f->vm, 2, 0, &dup), -EINVAL);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_create(f->vm, 1, 0, &dup), -EEXIST);
	assert_null(dup);
	assert_int_equal(vcpu_create(f->vm, 0, VCPU_CREATE_POWER_OFF, &dup), -EINVAL);
	assert_int_equal(vcpu_destroy(&f->cpu[1]), 0);
	add_cpu(f, 1);
	assert_int_equal(vcpu_vm_destroy(&f->vm), -EBUSY);
}

static void test_caps(void **state)
{
	struct fx *f = *state;
	uint64_t v = 99;

	open_n(f, 1, 0);
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_MAX_VCPUS, &v), 0);
	assert_int_equal(v, ACRN_IO_REQUEST_MAX);
	assert_int_equal(vcpu_hv_check(f->hv, VCPU_CAP_IMMEDIATE_EXIT, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(vcpu_vm_check(f->vm, VCPU_CAP_IRQFD, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(vcpu_vm_check(f->vm, VCPU_CAP_READONLY_MEM, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(vcpu_hv_check(f->hv, (enum vcpu_cap)999, &v), -EINVAL);
	assert_int_equal(vcpu_vm_set_dtb(f->vm, 0x1000, 0x1000), -EOPNOTSUPP);
}

/* ======================================================================== */
/* Rules of the modelled HSM, each with the errno hsm.c returns              */

/* hsm.c: before CREATE_VM every ioctl is EINVAL, known or not; after it unknown ones are ENOTTY. */
static void test_rule_vm_state_and_enotty(void **state)
{
	struct fx *f = *state;
	struct acrn_vm_creation c = { 0 };
	struct acrn_io_request_buffer *page = aligned_alloc(4096, 4096);
	int fd, save;

	open_n(f, 1, 0);
	assert_non_null(page);
	fd = f->hv->sys->open(f->hv->sys_ctx, "/dev/acrn_hsm", O_RDWR);
	assert_true(fd >= 0);
	save = f->vm->fd;
	f->vm->fd = fd; /* raw_ioctl() on the fresh file */
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_START_VM, NULL), -EINVAL);
	assert_int_equal(raw_ioctl(f, ACRNABI_IO(0x7f), NULL), -EINVAL);
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_CREATE_VM, NULL), -EFAULT);
	c.reserved0 = 1;
	c.ioreq_buf = (uint64_t)(uintptr_t)page;
	memcpy(c.name, "raw", 4);
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_CREATE_VM, &c), -EINVAL);
	c.reserved0 = 0;
	c.reserved1 = 2;
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_CREATE_VM, &c), -EINVAL);
	c.reserved1 = 0;
	c.ioreq_buf = 0;
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_CREATE_VM, &c), -EINVAL); /* no page */
	c.ioreq_buf = (uint64_t)(uintptr_t)page;
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_CREATE_VM, &c), 0);
	assert_int_equal(c.vcpu_num, 8);
	assert_int_equal(raw_ioctl(f, ACRNABI_IO(0x7f), NULL), -ENOTTY);
	assert_int_equal(raw_ioctl(f, 0xae01ul /* KVM_CREATE_VM */, NULL), -ENOTTY);
	/* The pre-merge 304-byte SET_VCPU_REGS is not the merged number. */
	assert_int_equal(raw_ioctl(f, 0x4130a216ul, NULL), -ENOTTY);
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_DESTROY_VM, NULL), 0);
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_START_VM, NULL), -EINVAL);
	f->vm->fd = save;
	assert_int_equal(f->hv->sys->close(f->hv->sys_ctx, fd), 0);
	free(page);
}

/* hsm.c: reserved fields of SET_VCPU_REGS, NOTIFY and IOEVENTFD must be 0. */
static void test_rule_reserved_fields(void **state)
{
	struct fx *f = *state;
	struct acrn_vcpu_regs regs;
	struct acrn_ioreq_notify n = { .vcpu = 0, .reserved = 1 };
	struct acrn_ioeventfd io = { .len = 4, .addr = MMIO_BASE, .reserved = 1 };
	struct acrn_vcpu_regs *cases[5];
	unsigned count = 0;

	open_n(f, 1, 0);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_vm_pause(f->vm), 0);
	for (unsigned k = 0; k < 5; k++) {
		cases[k] = calloc(1, sizeof(regs));
		assert_non_null(cases[k]);
	}
	cases[0]->reserved[2] = 1;
	cases[1]->vcpu_regs.reserved_32[1] = 1;
	cases[2]->vcpu_regs.reserved_64[3] = 1;
	cases[3]->vcpu_regs.gdt.reserved[0] = 1;
	cases[4]->vcpu_regs.idt.reserved[2] = 1;
	for (unsigned k = 0; k < 5; k++) {
		assert_int_equal(raw_ioctl(f, ACRN_IOCTL_SET_VCPU_REGS, cases[k]), -EINVAL);
		free(cases[k]);
	}
	assert_int_equal(mock_acrn_regs(f->mock, f->vm->fd, 0, &regs, &count), 0);
	assert_int_equal(count, 0);
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_NOTIFY_REQUEST_FINISH, &n), -EINVAL);
	io.fd = (uint32_t)new_eventfd(f);
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_IOEVENTFD, &io), -EINVAL);
	io.reserved = 0;
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_IOEVENTFD, &io), 0);
}

/* ioreq.c: one default client; ATTACH without it ENODEV; NOTIFY checks the vCPU. */
static void test_rule_ioreq_client(void **state)
{
	struct fx *f = *state;
	struct acrn_ioreq_notify n = { .vcpu = 2 };

	open_n(f, 2, 0);
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_ATTACH_IOREQ_CLIENT, NULL), -ENODEV);
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_NOTIFY_REQUEST_FINISH, &n), 0); /* no client: ignored */
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_CREATE_IOREQ_CLIENT, NULL), 0);
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_CREATE_IOREQ_CLIENT, NULL), -EEXIST);
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_NOTIFY_REQUEST_FINISH, &n), -EINVAL); /* vcpu >= vcpu_num */
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_DESTROY_IOREQ_CLIENT, NULL), 0);
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_ATTACH_IOREQ_CLIENT, NULL), -ENODEV);
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_DESTROY_IOREQ_CLIENT, NULL), 0);
	assert_int_equal(vcpu_mock_failures(f->mock, NULL), 0);
}

/*
 * The HSM does not look at the slot a NOTIFY names; the mock does, and
 * records a VMM completing a request it was never given.
 */
static void test_rule_notify_without_request_caught(void **state)
{
	struct fx *f = *state;
	struct acrn_ioreq_notify n = { .vcpu = 1 };
	const char *msg = NULL;

	open_n(f, 2, 0);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_mock_failures(f->mock, NULL), 0);
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_NOTIFY_REQUEST_FINISH, &n), 0);
	assert_int_equal(vcpu_mock_failures(f->mock, &msg), 1);
	assert_non_null(strstr(msg, "no request"));
}

/* The hypervisor's own refusals (its -1, EPERM through hsm.c). */
static void test_rule_hypervisor_states(void **state)
{
	struct fx *f = *state;
	struct acrn_vcpu_regs regs;
	unsigned count = 0;

	open_n(f, 2, 0);
	memset(&regs, 0, sizeof(regs));
	regs.vcpu_id = 2; /* the VM has two */
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_SET_VCPU_REGS, &regs), -EPERM);
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_RESET_VM, NULL), -EPERM); /* not paused */
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_vm_start(f->vm), 0); /* the library knows it runs */
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_START_VM, NULL), -EPERM);
	assert_int_equal(raw_ioctl(f, ACRN_IOCTL_RESET_VM, NULL), -EPERM);
	/* Registers only while the VM does not run: the error comes back at the call. */
	assert_int_equal(vcpu_set_reg(f->cpu[0], VCPU_REG_X86_RIP, 0x1000), -EPERM);
	expect_detail(vcpu_last_error(f->cpu[0]));
	assert_int_equal(vcpu_vm_pause(f->vm), 0);
	assert_int_equal(vcpu_set_reg(f->cpu[0], VCPU_REG_X86_RIP, 0x1000), 0);
	assert_int_equal(mock_acrn_regs(f->mock, f->vm->fd, 0, &regs, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(regs.vcpu_regs.rip, 0x1000);
	/* A paused VM starts again only through a reset. */
	assert_int_equal(vcpu_vm_start(f->vm), -EPERM);
	assert_int_equal(vcpu_vm_reset(f->vm), 0);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(info(f).nreset, 1);
}

/* ======================================================================== */
/* Registers: set only                                                        */

static void test_set_reg_reaches_hypervisor(void **state)
{
	struct fx *f = *state;
	struct acrn_vcpu_regs regs;
	struct acrn_regs *a = &regs.vcpu_regs;
	unsigned count = 0;
	static const struct {
		uint64_t id, value;
	} set[] = {
		{ VCPU_REG_X86_RAX, 0x1111 }, { VCPU_REG_X86_RBX, 0x2222 },
		{ VCPU_REG_X86_RCX, 0x3333 }, { VCPU_REG_X86_RDX, 0x4444 },
		{ VCPU_REG_X86_RSI, 0x5555 }, { VCPU_REG_X86_RSP, 0x6666 },
		{ VCPU_REG_X86_R15, 0x7777 }, { VCPU_REG_X86_RIP, 0x100000 },
		{ VCPU_REG_X86_RFLAGS, 0x202 }, { VCPU_REG_X86_CR0, 0x80050033 },
		{ VCPU_REG_X86_CR3, 0x9000 }, { VCPU_REG_X86_CR4, 0x20 },
		{ VCPU_REG_X86_EFER, 0x500 },
	};

	open_n(f, 2, 0);
	/* The first set sends the architectural reset state around it. */
	assert_int_equal(vcpu_set_reg(f->cpu[1], VCPU_REG_X86_RAX, 0xabc), 0);
	assert_int_equal(mock_acrn_regs(f->mock, f->vm->fd, 1, &regs, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(regs.vcpu_id, 1);
	assert_int_equal(a->gprs[ACRN_RAX], 0xabc);
	assert_int_equal(a->rip, 0xfff0);
	assert_int_equal(a->cs_sel, 0xf000);
	assert_int_equal(a->cs_base, 0xffff0000);
	assert_int_equal(a->rflags, 2);
	for (unsigned i = 0; i < ARRAY_SIZE(set); i++)
		assert_int_equal(vcpu_set_reg(f->cpu[0], set[i].id, set[i].value), 0);
	assert_int_equal(mock_acrn_regs(f->mock, f->vm->fd, 0, &regs, &count), 0);
	assert_int_equal(count, ARRAY_SIZE(set));
	assert_int_equal(regs.vcpu_id, 0);
	/* ACRN's GPR order is the instruction encoding's: rax rcx rdx rbx rsp rbp rsi rdi. */
	assert_int_equal(a->gprs[0], 0x1111);
	assert_int_equal(a->gprs[1], 0x3333);
	assert_int_equal(a->gprs[2], 0x4444);
	assert_int_equal(a->gprs[3], 0x2222);
	assert_int_equal(a->gprs[4], 0x6666);
	assert_int_equal(a->gprs[6], 0x5555);
	assert_int_equal(a->gprs[15], 0x7777);
	assert_int_equal(a->rip, 0x100000);
	assert_int_equal(a->rflags, 0x202);
	assert_int_equal(a->cr0, 0x80050033);
	assert_int_equal(a->cr3, 0x9000);
	assert_int_equal(a->cr4, 0x20);
	assert_int_equal(a->ia32_efer, 0x500);
	/* vCPU 1's file was left alone. */
	assert_int_equal(mock_acrn_regs(f->mock, f->vm->fd, 1, &regs, &count), 0);
	assert_int_equal(count, 1);
}

/* Reading has no ABI: an honest error, and nothing is sent for bad ids. */
static void test_get_reg_honest_error(void **state)
{
	struct fx *f = *state;
	struct vcpu_x86_segment seg;
	struct acrn_vcpu_regs regs;
	uint64_t v = 7;
	unsigned count = 9;

	open_n(f, 1, 0);
	assert_int_equal(vcpu_get_reg(f->cpu[0], VCPU_REG_X86_RIP, &v), -EOPNOTSUPP);
	assert_non_null(strstr(vcpu_last_error(f->cpu[0]), "SET_VCPU_REGS"));
	assert_int_equal(v, 7);
	assert_int_equal(vcpu_x86_get_segment(f->cpu[0], VCPU_X86_CS, &seg), -EOPNOTSUPP);
	assert_int_equal(vcpu_set_reg(f->cpu[0], VCPU_REG_X86_CR2, 1), -ENOENT);
	assert_int_equal(vcpu_set_reg(f->cpu[0], VCPU_REG_X86_APIC_BASE, 1), -ENOENT);
	assert_int_equal(vcpu_set_reg(f->cpu[0], VCPU_REG_ARM64_PC, 1), -EINVAL);
	expect_detail(vcpu_last_error(f->cpu[0]));
	assert_int_equal(mock_acrn_regs(f->mock, f->vm->fd, 0, &regs, &count), 0);
	assert_int_equal(count, 0);
}

static void test_segments(void **state)
{
	struct fx *f = *state;
	struct acrn_vcpu_regs regs;
	struct acrn_regs *a = &regs.vcpu_regs;
	const struct vcpu_x86_segment cs64 = { .base = 0, .limit = 0xfffff, .selector = 0x8,
					       .type = 0xb, .present = 1, .s = 1, .l = 1, .g = 1 };
	struct vcpu_x86_segment ds = { .limit = 0xfffff, .selector = 0x10, .type = 3, .present = 1,
				       .s = 1, .db = 1, .g = 1 };
	struct vcpu_x86_segment gdt = { .base = 0x500, .limit = 0x27 };
	struct vcpu_x86_segment bad = cs64;
	unsigned count = 0;

	open_n(f, 1, 0);
	assert_int_equal(vcpu_x86_set_segment(f->cpu[0], VCPU_X86_CS, &cs64), 0);
	assert_int_equal(vcpu_x86_set_segment(f->cpu[0], VCPU_X86_DS, &ds), 0);
	assert_int_equal(vcpu_x86_set_segment(f->cpu[0], VCPU_X86_GDT, &gdt), 0);
	ds.selector = 0x18;
	assert_int_equal(vcpu_x86_set_segment(f->cpu[0], VCPU_X86_TR, &ds), 0);
	/* The hypervisor loads data segments flat: a base would be lost. */
	ds.base = 0x10000;
	assert_int_equal(vcpu_x86_set_segment(f->cpu[0], VCPU_X86_SS, &ds), -EOPNOTSUPP);
	gdt.limit = 0x10000;
	assert_int_equal(vcpu_x86_set_segment(f->cpu[0], VCPU_X86_IDT, &gdt), -EINVAL);
	bad.dpl = 4;
	assert_int_equal(vcpu_x86_set_segment(f->cpu[0], VCPU_X86_CS, &bad), -EINVAL);
	assert_int_equal(mock_acrn_regs(f->mock, f->vm->fd, 0, &regs, &count), 0);
	assert_int_equal(count, 4);
	assert_int_equal(a->cs_sel, 0x8);
	assert_int_equal(a->cs_base, 0);
	assert_int_equal(a->cs_limit, 0xfffff);
	assert_int_equal(a->cs_ar, 0xa09b); /* VMX rights: G, L, P, S, type 0xb */
	assert_int_equal(a->ds_sel, 0x10);
	assert_int_equal(a->tr_sel, 0x18);
	assert_int_equal(a->ss_sel, 0);
	assert_int_equal(a->gdt.base, 0x500);
	assert_int_equal(a->gdt.limit, 0x27);
	assert_int_equal(a->idt.limit, 0xffff);
}

/* The guest starts with the registers it was given (REG_CHECK reads the hypervisor's copy). */
static void test_regs_seen_by_guest(void **state)
{
	struct fx *f = *state;
	struct rec r;
	struct vcpu_mock_step s[] = {
		reg_check(VCPU_REG_X86_RIP, 0x7c00),
		reg_check(VCPU_REG_X86_RDX, 0x80),
		stop(),
	};

	open_n(f, 1, 0);
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_set_reg(f->cpu[0], VCPU_REG_X86_RIP, 0x7c00), 0);
	assert_int_equal(vcpu_set_reg(f->cpu[0], VCPU_REG_X86_RDX, 0x80), 0);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* ======================================================================== */
/* I/O requests                                                               */

static void test_run_before_start(void **state)
{
	struct fx *f = *state;
	struct rec r;

	open_n(f, 1, 0);
	rec_init(&r);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), -ENODEV);
	assert_non_null(strstr(vcpu_last_error(f->cpu[0]), "vcpu_vm_start"));
	assert_int_equal(vcpu_run(f->cpu[0], NULL, &r), -EINVAL);
}

static void test_mmio(void **state)
{
	struct fx *f = *state;
	struct rec r;
	struct vcpu_mock_step s[] = {
		mmio_write(MMIO_BASE + 4, 4, 0xdeadbeef),
		mmio_read(MMIO_BASE + 8, 8, 0x1122334455667788ull, 0),
		mmio_read(MMIO_BASE + 0x10, 2, 0xbeef, 0),
		stop(),
	};

	open_n(f, 1, 0);
	rec_init(&r);
	reply(&r, 0x1122334455667788ull);
	reply(&r, 0xbeef);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 4);
	assert_int_equal(r.io[0].addr, MMIO_BASE + 4);
	assert_int_equal(r.io[0].len, 4);
	assert_true(r.io[0].is_write);
	assert_int_equal(get_le(r.io[0].data, 4), 0xdeadbeef);
	assert_int_equal(r.io[1].len, 8);
	assert_false(r.io[1].is_write);
	assert_int_equal(r.io[2].len, 2);
	assert_int_equal(vcpu_last_exit(f->cpu[0])->kind, VCPU_EXIT_MMIO);
	assert_int_equal(vcpu_last_exit(f->cpu[0])->raw_reason, ACRN_IOREQ_TYPE_MMIO);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* A wrong completion value is caught by the guest: the check can fail. */
static void test_mock_catches_wrong_read(void **state)
{
	struct fx *f = *state;
	struct rec r;
	const char *msg = NULL;
	struct vcpu_mock_step s[] = { mmio_read(MMIO_BASE, 4, 0x1234, 0), stop() };

	open_n(f, 1, 0);
	rec_init(&r);
	reply(&r, 0x4321);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(vcpu_mock_failures(f->mock, &msg), 1);
	assert_non_null(strstr(msg, "0x4321"));
}

static void test_pio(void **state)
{
	struct fx *f = *state;
	struct rec r;
	struct vcpu_mock_step s[] = {
		pio(VCPU_MOCK_PIO_OUT, 0x3f8, 1, 1, 'A'),
		pio(VCPU_MOCK_PIO_IN, 0x60, 2, 1, 0xbeef),
		pio(VCPU_MOCK_PIO_OUT, 0x80, 4, 3, 0x100), /* rep outsd: one request per item */
		pio(VCPU_MOCK_PIO_IN, 0x71, 4, 1, 0xcafef00d),
		stop(),
	};

	open_n(f, 1, 0);
	rec_init(&r);
	reply(&r, 0xbeef);
	reply(&r, 0xcafef00d);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_pio, 6);
	assert_int_equal(r.io[0].addr, 0x3f8);
	assert_int_equal(r.io[0].len, 1);
	assert_int_equal(r.io[0].data[0], 'A');
	assert_int_equal(r.io[1].addr, 0x60);
	assert_false(r.io[1].is_write);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(r.io[2 + i].addr, 0x80);
		assert_int_equal(get_le(r.io[2 + i].data, 4), 0x100 + i);
	}
	assert_int_equal(r.kind[5], VCPU_EXIT_PIO);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* 0xCF8 never reaches the VMM; 0xCFC arrives as a PCI-config request with an ECAM-style address. */
static void test_pci_config(void **state)
{
	struct fx *f = *state;
	struct rec r;
	struct vcpu_mock_step s[] = {
		pci(VCPU_MOCK_ACRN_PCI_WRITE, 0, 3, 0, 0x10, 4, 0xfebf0000),
		pci(VCPU_MOCK_ACRN_PCI_READ, 0, 3, 0, 0x02, 2, 0x1af4),
		pci(VCPU_MOCK_ACRN_PCI_READ, 0x12, 0x1f, 7, 0x104, 4, 0x00010010), /* extended */
		pci(VCPU_MOCK_ACRN_PCI_READ, 1, 2, 3, 0x3d, 1, 0x01),
		stop(),
	};

	open_n(f, 1, 0);
	rec_init(&r);
	reply(&r, 0x1af4);
	reply(&r, 0x00010010);
	reply(&r, 0x01);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_pci, 4);
	assert_int_equal(r.n_pio, 0);
	assert_int_equal(r.io[0].addr, VCPU_PCI_CFG_ADDR(0, 3, 0, 0x10));
	assert_true(r.io[0].is_write);
	assert_int_equal(get_le(r.io[0].data, 4), 0xfebf0000);
	assert_int_equal(r.io[1].addr, VCPU_PCI_CFG_ADDR(0, 3, 0, 0x02));
	assert_int_equal(r.io[1].len, 2);
	assert_int_equal(r.io[2].addr, VCPU_PCI_CFG_ADDR(0x12, 0x1f, 7, 0x104));
	assert_int_equal(r.io[3].addr, VCPU_PCI_CFG_ADDR(1, 2, 3, 0x3d));
	assert_int_equal(r.io[3].len, 1);
	assert_int_equal(r.kind[2], VCPU_EXIT_PCI_CONFIG);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* No handler: -ENOSYS, the exit kept, and the read completed with zeros. */
static void test_unhandled_read_zero(void **state)
{
	struct fx *f = *state;
	struct rec r;
	const struct vcpu_handlers h = { .pio = on_pio };
	struct vcpu_mock_step s[] = {
		pci(VCPU_MOCK_ACRN_PCI_READ, 0, 1, 0, 0, 4, 0),
		mmio_read(MMIO_BASE, 4, 0, 0),
		pio(VCPU_MOCK_PIO_OUT, STOP_PORT, 1, 1, 1),
	};

	open_n(f, 1, 0);
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_run(f->cpu[0], &h, &r), -ENOSYS);
	assert_int_equal(vcpu_last_exit(f->cpu[0])->kind, VCPU_EXIT_PCI_CONFIG);
	expect_detail(vcpu_last_error(f->cpu[0]));
	assert_int_equal(vcpu_run(f->cpu[0], &h, &r), -ENOSYS);
	assert_int_equal(vcpu_last_exit(f->cpu[0])->kind, VCPU_EXIT_MMIO);
	assert_int_equal(vcpu_run(f->cpu[0], &h, &r), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* acrn-dm answers a read it could not emulate with all-ones: so does FAULT here. */
static void test_fault_response(void **state)
{
	struct fx *f = *state;
	struct rec r;
	struct vcpu_mock_step s[] = {
		pio(VCPU_MOCK_PIO_IN, 0x70, 4, 1, 0xffffffff),
		mmio_read(MMIO_BASE, 8, ~0ull, 0),
		pci(VCPU_MOCK_ACRN_PCI_READ, 0, 9, 0, 0, 2, 0xffff),
		pio(VCPU_MOCK_PIO_IN, 0x71, 1, 1, 0xff),
		stop(),
	};

	open_n(f, 1, 0);
	rec_init(&r);
	r.response = VCPU_IO_FAULT;
	reply(&r, 1);
	reply(&r, 2);
	reply(&r, 3);
	reply(&r, 4);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_io, 5);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* RETRY has no meaning on ACRN: -EOPNOTSUPP, the read completed as a failed one. */
static int retry_mmio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	int rc = on_mmio(ctx, cpu, io);

	if (!io->is_write)
		io->response = VCPU_IO_RETRY;
	return rc;
}

static void test_retry_response(void **state)
{
	struct fx *f = *state;
	struct rec r;
	const struct vcpu_handlers h = { .mmio = retry_mmio };
	struct vcpu_mock_step s[] = { mmio_read(MMIO_BASE, 4, 0xffffffff, 0), stop() };

	open_n(f, 1, 0);
	rec_init(&r);
	reply(&r, 5);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_run(f->cpu[0], &h, &r), -EOPNOTSUPP);
	expect_detail(vcpu_last_error(f->cpu[0]));
	assert_int_equal(vcpu_run(f->cpu[0], &h, &r), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/*
 * One thread serves every vCPU, through any handle: each request carries
 * its vCPU's id (the guests check it by reading ID_ADDR), and the scan
 * rotates so the vCPUs take turns.
 */
static int stop_after(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct rec *r = ctx;
	int rc = on_mmio(ctx, cpu, io);

	return rc == 0 && r->n_io == 12 ? VCPU_STOP : rc;
}

static void test_multi_vcpu_one_thread(void **state)
{
	struct fx *f = *state;
	const struct vcpu_handlers h = { .mmio = stop_after };
	unsigned seen[3] = { 0 };
	struct rec r;

	open_n(f, 3, 0);
	rec_init(&r);
	for (uint32_t id = 0; id < 3; id++) {
		struct vcpu_mock_step s[] = {
			mmio_write(MMIO_BASE + id * 0x100, 4, id << 8 | 0),
			mmio_write(MMIO_BASE + id * 0x100, 4, id << 8 | 1),
			mmio_write(MMIO_BASE + id * 0x100, 4, id << 8 | 2),
			mmio_read(ID_ADDR, 4, id, 0),
		};
		SCRIPT(f, id, s);
	}
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_run(f->cpu[1], &h, &r), VCPU_STOP);
	assert_int_equal(r.n_io, 12);
	for (unsigned i = 0; i < 12; i++) {
		uint32_t id = r.io[i].vcpu_id;

		assert_true(id < 3);
		assert_int_equal(r.exit_id[i], id);
		if (r.io[i].addr == ID_ADDR) {
			assert_int_equal(seen[id], 3);
			continue;
		}
		assert_int_equal(r.io[i].addr, MMIO_BASE + id * 0x100);
		assert_int_equal(get_le(r.io[i].data, 4), id << 8 | seen[id]);
		seen[id]++;
	}
	/* Turns: the first three requests come from three different vCPUs. */
	assert_true(r.io[0].vcpu_id != r.io[1].vcpu_id && r.io[1].vcpu_id != r.io[2].vcpu_id &&
		    r.io[0].vcpu_id != r.io[2].vcpu_id);
	for (uint32_t id = 0; id < 3; id++)
		expect_script(f, id, 4);
}

/* ======================================================================== */
/* Kicks and the single server                                                */

struct kicker {
	struct vcpu *cpu;
	atomic_int *armed;
	atomic_int done;
	int rc, kicks;
};

/*
 * Kick once armed; kick again if vcpu_run() has not returned 200 ms later
 * (ACRN has no immediate-exit flag: vcpu.h documents the window).
 */
static void *kicker_main(void *p)
{
	struct kicker *k = p;

	for (int i = 0; i < 10000 && !atomic_load(k->armed); i++)
		sleep_us(1000);
	sleep_us(50000);
	for (int i = 0; i < 25 && !atomic_load(&k->done); i++) {
		k->rc = vcpu_kick(k->cpu);
		k->kicks++;
		for (int j = 0; j < 200 && !atomic_load(&k->done); j++)
			sleep_us(1000);
	}
	return NULL;
}

/* Continue after a kick: a second kick of the window may be pending. */
static int run_on(struct vcpu *cpu, const struct vcpu_handlers *h, struct rec *r)
{
	int rc = vcpu_run(cpu, h, r);

	return rc == -EINTR ? vcpu_run(cpu, h, r) : rc;
}

static void kick_spinning(struct fx *f, unsigned kick_id)
{
	struct rec r;
	struct kicker k;
	struct thr t;
	struct vcpu_mock_step s[] = {
		mmio_write(ARM_ADDR, 4, 1),
		step(VCPU_MOCK_SPIN),
		mmio_write(MMIO_BASE, 4, 0xaf7e5),
		stop(),
	};
	int rc;

	open_n(f, 2, 0);
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	memset(&k, 0, sizeof(k));
	k.cpu = f->cpu[kick_id];
	k.armed = &r.armed;
	k.rc = 1;
	thr_start(&t, kicker_main, &k);
	rc = vcpu_run(f->cpu[0], &H_ALL, &r);
	atomic_store(&k.done, 1);
	thr_join(&t);
	assert_int_equal(rc, -EINTR);
	assert_int_equal(k.rc, 0);
	assert_int_equal(r.n_mmio, 1);
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), 2); /* the spin ended */
	assert_int_equal(run_on(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 3);
	assert_int_equal(r.io[1].addr, MMIO_BASE);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_kick_from_thread(void **state)
{
	kick_spinning(*state, 0);
}

/* A kick through another vCPU's handle stops the thread serving the VM. */
static void test_kick_through_other_handle(void **state)
{
	kick_spinning(*state, 1);
}

static void test_kick_before_run(void **state)
{
	struct fx *f = *state;
	struct rec r;
	struct vcpu_mock_step s[] = { mmio_write(MMIO_BASE, 4, 1), stop() };

	open_n(f, 2, 0);
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	/* Kicks merge, and one through vCPU 1 is the VM's: one -EINTR. */
	assert_int_equal(vcpu_kick(f->cpu[1]), 0);
	assert_int_equal(vcpu_kick(f->cpu[1]), 0);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), -EINTR);
	assert_int_equal(r.n_io, 0);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_mmio, 2);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static struct vcpu *volatile alarm_cpu;
static volatile sig_atomic_t alarm_rc = 1;

static void on_alarm(int sig)
{
	(void)sig;
	alarm_rc = vcpu_kick(alarm_cpu);
}

/* vcpu_kick() is async-signal-safe on ACRN too. */
static void test_kick_from_signal_handler(void **state)
{
	struct fx *f = *state;
	struct sigaction sa, old;
	struct rec r;
	struct vcpu_mock_step s[] = { mmio_write(ARM_ADDR, 4, 1), step(VCPU_MOCK_SPIN), stop() };
	int rc;

	open_n(f, 1, 0);
	rec_init(&r);
	r.arm_timer_us = 30000;
	alarm_cpu = f->cpu[0];
	alarm_rc = 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	/* SIGALRM itself interrupts the wait in the driver, after the handler kicked. */
	rc = vcpu_run(f->cpu[0], &H_ALL, &r);
	arm_timer(0);
	sigaction(SIGALRM, &old, NULL);
	assert_int_equal(rc, -EINTR);
	assert_int_equal(alarm_rc, 0);
	assert_int_equal(run_on(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* A handler of the serving thread tries to serve through another handle: -EBUSY. */
static int nested_run(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct rec *r = ctx;

	if (io->addr == ARM_ADDR && r->other) {
		r->other_rc = vcpu_run(r->other, &H_ALL, r);
		return VCPU_CONTINUE;
	}
	return on_mmio(ctx, cpu, io);
}

struct server_arg {
	struct vcpu *cpu;
	struct rec *r;
	atomic_int rc;
};

static void *server_main(void *p)
{
	struct server_arg *a = p;

	atomic_store(&a->rc, vcpu_run(a->cpu, &H_ALL, a->r));
	return NULL;
}

/*
 * Two threads race to serve, over and over, through two handles: every
 * vcpu_run() either serves or says -EBUSY, and no two ever serve at once
 * (handlers never overlap); each server hands over after a few requests.
 * A check-then-act claim let both through when their checks interleaved.
 */
#define RACE_REQS 1500

struct claim_race {
	struct vcpu *cpu[2];
	atomic_int inside, overlap, handled, busy, done, ready, exited, bad_rc;
};

static int claim_race_io(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct claim_race *c = ctx;
	int n;

	(void)cpu;
	if (atomic_fetch_add(&c->inside, 1) != 0)
		atomic_store(&c->overlap, 1);
	n = atomic_fetch_add(&c->handled, 1) + 1;
	if (n % 3 == 1)
		sleep_us(20); /* a second server would be inside meanwhile */
	atomic_fetch_sub(&c->inside, 1);
	io->response = VCPU_IO_HANDLED;
	/* Give serving back now and then, so the other thread claims again. */
	return n % 3 == 0 || io->addr == STOP_ADDR ? VCPU_STOP : VCPU_CONTINUE;
}

static void *claim_race_main(void *p)
{
	struct claim_race *c = p;
	const struct vcpu_handlers h = { .mmio = claim_race_io };
	const int me = atomic_fetch_add(&c->ready, 1);

	while (atomic_load(&c->ready) < 2)
		sched_yield();
	while (!atomic_load(&c->done)) {
		int rc = vcpu_run(c->cpu[me], &h, c);

		if (rc == -EBUSY) {
			atomic_fetch_add(&c->busy, 1);
			sched_yield(); /* let the server run (valgrind runs one thread at a time) */
		} else if (rc != VCPU_STOP && rc != -EINTR) {
			atomic_store(&c->bad_rc, rc);
		}
	}
	atomic_fetch_add(&c->exited, 1);
	return NULL;
}

static void test_claim_race_one_server(void **state)
{
	struct fx *f = *state;
	struct vcpu_mock_step *s = calloc(RACE_REQS + 1, sizeof(*s));
	struct claim_race c = { 0 };
	struct thr t[2];

	assert_non_null(s);
	open_n(f, 2, 0);
	for (unsigned i = 0; i < RACE_REQS; i++)
		s[i] = mmio_write(MMIO_BASE + 4 * (i % 16), 4, i);
	s[RACE_REQS] = stop();
	assert_int_equal(vcpu_mock_script(f->mock, 0, s, RACE_REQS + 1), 0);
	free(s);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	c.cpu[0] = f->cpu[0];
	c.cpu[1] = f->cpu[1];
	thr_start(&t[0], claim_race_main, &c);
	thr_start(&t[1], claim_race_main, &c);
	for (int i = 0; i < 20000 && atomic_load(&c.handled) < RACE_REQS + 1; i++)
		sleep_us(500);
	/* Every request is served: end the threads (a server now waits for none). */
	atomic_store(&c.done, 1);
	for (int i = 0; i < 5000 && atomic_load(&c.exited) < 2; i++) {
		vcpu_kick(f->cpu[0]);
		sleep_us(1000);
	}
	thr_join(&t[0]);
	thr_join(&t[1]);
	assert_int_equal(atomic_load(&c.bad_rc), 0);
	print_message("%d requests, %d -EBUSY\n", atomic_load(&c.handled), atomic_load(&c.busy));
	assert_int_equal(atomic_load(&c.overlap), 0);
	assert_int_equal(atomic_load(&c.handled), RACE_REQS + 1);
	expect_script(f, 0, RACE_REQS + 1);
}

static void test_second_server_ebusy(void **state)
{
	struct fx *f = *state;
	const struct vcpu_handlers h = { .mmio = nested_run };
	struct rec r;
	struct server_arg a;
	struct thr t;
	struct vcpu_mock_step s[] = {
		mmio_write(ARM_ADDR, 4, 1), /* nested_run: vCPU 1's handle from the serving thread */
		stop(),
		mmio_write(ARM_ADDR, 4, 2), /* a server thread arms */
		step(VCPU_MOCK_SPIN),
		mmio_write(MMIO_BASE, 4, 2),
		stop(),
	};

	open_n(f, 2, 0);
	rec_init(&r);
	r.other = f->cpu[1];
	r.other_rc = 1;
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_run(f->cpu[0], &h, &r), VCPU_STOP);
	assert_int_equal(r.other_rc, -EBUSY);
	assert_non_null(strstr(vcpu_last_error(f->cpu[1]), "one thread"));
	/* Another thread serves (its guest spins): -EBUSY here, then a kick via vCPU 1 ends it. */
	r.other = NULL;
	a.cpu = f->cpu[0];
	a.r = &r;
	atomic_store(&a.rc, 1);
	atomic_store(&r.armed, 0);
	thr_start(&t, server_main, &a);
	for (int i = 0; i < 5000 && !atomic_load(&r.armed); i++)
		sleep_us(1000);
	assert_true(atomic_load(&r.armed));
	sleep_us(50000);
	assert_int_equal(vcpu_run(f->cpu[1], &H_ALL, &r), -EBUSY);
	for (int i = 0; i < 25 && atomic_load(&a.rc) == 1; i++) {
		assert_int_equal(vcpu_kick(f->cpu[1]), 0);
		for (int j = 0; j < 200 && atomic_load(&a.rc) == 1; j++)
			sleep_us(1000);
	}
	thr_join(&t);
	assert_int_equal(atomic_load(&a.rc), -EINTR);
	/* The server left: vCPU 1's handle takes over and finishes vCPU 0's script. */
	assert_int_equal(run_on(f->cpu[1], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.io[r.n_io - 2].addr, MMIO_BASE);
	assert_int_equal(r.exit_id[r.n_io - 1], 0);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* ======================================================================== */
/* Guest power control: port writes become system events                     */

/*
 * acrn-dm's reset in the handler: the 0xCF9 write is completed by
 * CLEAR_VM_IOREQ, never NOTIFYed afterwards (the mock would record a
 * NOTIFY without a request), and the guest restarts at the new RIP.
 */
static void test_reset_sequence_in_handler(void **state)
{
	struct fx *f = *state;
	struct rec r;
	struct mock_acrn_info i;
	struct vcpu_mock_step s0[] = {
		pio(VCPU_MOCK_PIO_OUT, 0xcf9, 1, 1, 0x6), /* system reset (bit 2) */
		reg_check(VCPU_REG_X86_RIP, 0xfffff0),
		mmio_write(MMIO_BASE, 4, 2),
		stop(),
	};
	/* Pending at the reset: completed by CLEAR_VM_IOREQ, unanswered (no value check). */
	struct vcpu_mock_step s1[] = { mmio_read(MMIO_BASE + 0x100, 4, 0x1234, 0) };

	open_n(f, 2, 0);
	rec_init(&r);
	r.reset_vm = f->vm;
	r.boot_cpu = f->cpu[0];
	r.boot_rip = 0xfffff0;
	SCRIPT(f, 0, s0);
	SCRIPT(f, 1, s1);
	assert_int_equal(vcpu_set_reg(f->cpu[0], VCPU_REG_X86_RIP, 0x1000), 0);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_run(f->cpu[1], &H_ALL, &r), VCPU_STOP);
	/* vCPU 0's two writes after the restart; vCPU 1's read never reached a handler. */
	assert_int_equal(r.n_io, 2);
	assert_int_equal(r.io[0].addr, MMIO_BASE);
	assert_int_equal(r.io[0].vcpu_id, 0);
	assert_int_equal(r.io[1].addr, STOP_ADDR);
	assert_int_equal(r.n_sev, 1);
	assert_int_equal(r.sev[0].type, VCPU_SYSTEM_EVENT_RESET);
	assert_int_equal(r.sev[0].ndata, 1);
	assert_int_equal(r.sev[0].data[0], 0x6);
	assert_int_equal(r.sev[0].raw_type, 0xcf9);
	assert_int_equal(r.sev_id[0], 0);
	assert_int_equal(r.reset_rc, 0);
	assert_int_equal(r.setreg_rc, 0);
	assert_int_equal(r.start_rc, 0);
	i = info(f);
	assert_int_equal(i.npause, 1);
	assert_int_equal(i.nclear, 1);
	assert_int_equal(i.nreset, 1);
	assert_int_equal(i.nstart, 2);
	expect_script(f, 0, ARRAY_SIZE(s0));
	expect_script(f, 1, ARRAY_SIZE(s1));
}

#define WDT_ADDR 0x1ffc0000ull /* a watchdog: a write here resets the VM from the handler */

static int wdt_mmio(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	struct rec *r = ctx;
	int rc = on_mmio(ctx, cpu, io);

	if (io->addr == WDT_ADDR) {
		r->reset_rc = vcpu_vm_reset(r->reset_vm);
		r->setreg_rc = vcpu_set_reg(r->boot_cpu, VCPU_REG_X86_RIP, r->boot_rip);
		r->start_rc = vcpu_vm_start(r->reset_vm);
	}
	return rc;
}

/*
 * A reset made while serving an ordinary request: that request was
 * completed by CLEAR_VM_IOREQ, and its slot already holds the restarted
 * guest's next request, which must reach the VMM rather than be completed
 * by a stale NOTIFY.
 */
static void test_reset_from_mmio_handler(void **state)
{
	struct fx *f = *state;
	const struct vcpu_handlers h = { .mmio = wdt_mmio };
	struct rec r;
	struct vcpu_mock_step s[] = {
		mmio_write(WDT_ADDR, 4, 1),
		reg_check(VCPU_REG_X86_RIP, 0x2000),
		mmio_write(MMIO_BASE, 4, 2),
		stop(),
	};

	open_n(f, 1, 0);
	rec_init(&r);
	r.reset_vm = f->vm;
	r.boot_cpu = f->cpu[0];
	r.boot_rip = 0x2000;
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_run(f->cpu[0], &h, &r), VCPU_STOP);
	assert_int_equal(r.reset_rc, 0);
	assert_int_equal(r.setreg_rc, 0);
	assert_int_equal(r.start_rc, 0);
	assert_int_equal(r.n_io, 3);
	assert_int_equal(r.io[1].addr, MMIO_BASE);
	assert_int_equal(get_le(r.io[1].data, 4), 2);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/*
 * Power-off and suspend through PM1a_CNT: the write is held (the guest stays
 * at it) while vcpu_run() is stopped, and completed when serving resumes.
 */
static void test_power_events(void **state)
{
	struct fx *f = *state;
	struct rec r;
	struct vcpu_mock_step s[] = {
		pio(VCPU_MOCK_PIO_OUT, PM1A_PORT, 2, 1, (3u << 10)),          /* SLP_EN clear */
		pio(VCPU_MOCK_PIO_OUT, PM1A_PORT, 2, 1, (5u << 10) | (1u << 13)), /* S5 */
		pio(VCPU_MOCK_PIO_OUT, PM1A_PORT, 2, 1, (3u << 10) | (1u << 13)), /* S3 */
		pio(VCPU_MOCK_PIO_OUT, 0xcf9, 1, 1, 0x2),                     /* bit 1 only */
		pio(VCPU_MOCK_PIO_OUT, 0xcf9, 1, 1, 0xe),                     /* full reset */
		stop(),
	};

	open_n(f, 1, PM1A_PORT);
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_pio, 1); /* the first write was just a write */
	assert_int_equal(r.n_sev, 1);
	assert_int_equal(r.sev[0].type, VCPU_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(r.sev[0].raw_type, PM1A_PORT);
	assert_int_equal(r.sev[0].data[0], (5u << 10) | (1u << 13));
	/* Held: the request is still the VMM's, the guest has gone no further. */
	assert_int_equal(info(f).slot_state[0], ACRN_IOREQ_STATE_PROCESSING);
	assert_int_equal(vcpu_mock_steps_done(f->mock, 0), 2);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.sev[1].type, VCPU_SYSTEM_EVENT_SUSPEND);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_pio, 2); /* 0xCF9 without bit 2 or 3 */
	assert_int_equal(r.io[1].addr, 0xcf9);
	assert_int_equal(r.sev[2].type, VCPU_SYSTEM_EVENT_RESET);
	assert_int_equal(r.sev[2].data[0], 0xe);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_sev, 3);
	expect_script(f, 0, ARRAY_SIZE(s));
}

/* ======================================================================== */
/* Malformed slots                                                            */

static void malformed_case(struct fx *f, struct vcpu_mock_step bad, uint32_t raw_type)
{
	struct rec r;
	struct vcpu_mock_step s[] = { bad, mmio_write(MMIO_BASE, 4, 9), stop() };

	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), -EPROTO);
	assert_int_equal(vcpu_last_exit(f->cpu[0])->raw_reason, raw_type);
	assert_int_equal(vcpu_last_exit(f->cpu[0])->vcpu_id, 0);
	expect_detail(vcpu_last_error(f->cpu[0]));
	assert_int_equal(r.n_io, 0);
	/* Completed unanswered: the guest goes on and the next run serves it. */
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_io, 2);
	expect_script(f, 0, ARRAY_SIZE(s));
}

static void test_malformed_slots(void **state)
{
	struct fx *f = *state;
	const uint32_t P = ACRN_IOREQ_STATE_PROCESSING;
	struct vcpu_mock_step pcidev = raw_slot(ACRN_IOREQ_TYPE_PCICFG, 0, 0, 4, P, 0);
	struct vcpu_mock_step pcireg = raw_slot(ACRN_IOREQ_TYPE_PCICFG, 0, 0, 4, P, 0);
	struct acrn_io_request *req;

	req = (struct acrn_io_request *)(void *)pcidev.raw;
	req->reqs.pci_request.dev = 32;
	req = (struct acrn_io_request *)(void *)pcireg.raw;
	req->reqs.pci_request.reg = 0xffe; /* + 4 bytes leaves the space */
	open_n(f, 1, 0);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	malformed_case(f, raw_slot(7, 0, MMIO_BASE, 4, P, 0), 7);
	malformed_case(f, raw_slot(ACRN_IOREQ_TYPE_MMIO, 0, MMIO_BASE, 3, P, 0), 1);
	malformed_case(f, raw_slot(ACRN_IOREQ_TYPE_MMIO, 0, MMIO_BASE, 16, P, 0), 1);
	malformed_case(f, raw_slot(ACRN_IOREQ_TYPE_MMIO, 2, MMIO_BASE, 4, P, 0), 1);
	malformed_case(f, raw_slot(ACRN_IOREQ_TYPE_MMIO, 1, ~0ull - 1, 4, P, 0), 1);
	malformed_case(f, raw_slot(ACRN_IOREQ_TYPE_PORTIO, 0, 0x60, 8, P, 0), 0);
	malformed_case(f, raw_slot(ACRN_IOREQ_TYPE_PORTIO, 0, 0x10000, 1, P, 0), 0);
	malformed_case(f, pcidev, 2);
	malformed_case(f, pcireg, 2);
}

/* A slot in a state the ABI does not have: reported once, other vCPUs still served. */
static void test_bad_slot_state(void **state)
{
	struct fx *f = *state;
	struct rec r;
	struct vcpu_mock_step s0[] = { raw_slot(ACRN_IOREQ_TYPE_MMIO, 0, MMIO_BASE, 4, 9, 0) };
	struct vcpu_mock_step s1[] = { mmio_write(MMIO_BASE + 0x100, 4, 1), stop() };

	open_n(f, 2, 0);
	rec_init(&r);
	SCRIPT(f, 0, s0);
	SCRIPT(f, 1, s1);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), -EPROTO);
	assert_int_equal(vcpu_last_exit(f->cpu[0])->vcpu_id, 0);
	assert_non_null(strstr(vcpu_last_error(f->cpu[0]), "state 9"));
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_io, 2);
	assert_int_equal(r.io[0].vcpu_id, 1);
	expect_script(f, 0, 1);
	expect_script(f, 1, 2);
}

/* kernel_handled 1: an in-kernel client's request, never the VMM's (a NOTIFY would be recorded). */
static void test_kernel_handled_skipped(void **state)
{
	struct fx *f = *state;
	struct rec r;
	struct vcpu_mock_step s0[] = {
		raw_slot(ACRN_IOREQ_TYPE_MMIO, 1, MMIO_BASE, 4, ACRN_IOREQ_STATE_PROCESSING, 1),
	};
	struct vcpu_mock_step s1[] = { mmio_write(MMIO_BASE + 0x100, 4, 1), stop() };

	open_n(f, 2, 0);
	rec_init(&r);
	SCRIPT(f, 0, s0);
	SCRIPT(f, 1, s1);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_io, 2);
	assert_int_equal(r.io[0].vcpu_id, 1);
	assert_int_equal(r.io[1].vcpu_id, 1);
	expect_script(f, 0, 1);
	expect_script(f, 1, 2);
}

/* ======================================================================== */
/* Interrupts, eventfds, memory                                               */

static void test_irq_line_and_msi(void **state)
{
	struct fx *f = *state;
	int level = -1;
	unsigned pulses = 9, count = 9;
	uint64_t addr = 0, data = 0;

	open_n(f, 1, 0);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 5, 1), 0);
	assert_int_equal(mock_acrn_irq(f->mock, f->vm->fd, 5, &level, &pulses), 0);
	assert_int_equal(level, 1);
	assert_int_equal(pulses, 0);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 5, 0), 0);
	assert_int_equal(mock_acrn_irq(f->mock, f->vm->fd, 5, &level, &pulses), 0);
	assert_int_equal(level, 0);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 5, 2), -EINVAL);
	assert_int_equal(vcpu_vm_set_irq_line(f->vm, 4096, 1), -EPERM);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_vm_signal_msi(f->vm, 0xfee01000, 0x4031), 0);
	assert_int_equal(mock_acrn_msi(f->mock, f->vm->fd, &count, &addr, &data), 0);
	assert_int_equal(count, 1);
	assert_int_equal(addr, 0xfee01000);
	assert_int_equal(data, 0x4031);
}

static void test_irqfd_msi(void **state)
{
	struct fx *f = *state;
	struct vcpu_irqfd irq = { .flags = VCPU_IRQFD_MSI, .resample_fd = -1,
				  .msi_addr = 0xfee00000, .msi_data = 0x41 };
	unsigned count = 0;
	uint64_t addr = 0, data = 0, one = 1;
	int pipefd[2];

	open_n(f, 1, 0);
	irq.fd = new_eventfd(f);
	{
		struct vcpu_irqfd gsi = irq;

		gsi.flags = 0;
		gsi.irq = 5;
		gsi.msi_addr = gsi.msi_data = 0;
		assert_int_equal(vcpu_vm_irqfd(f->vm, &gsi), -EINVAL); /* ACRN injects MSIs */
		expect_detail(vcpu_vm_last_error(f->vm));
		gsi = irq;
		gsi.irq = 5;
		assert_int_equal(vcpu_vm_irqfd(f->vm, &gsi), -EINVAL); /* no line either */
		gsi.irq = 0;
		gsi.flags |= VCPU_IRQFD_LEVEL;
		assert_int_equal(vcpu_vm_irqfd(f->vm, &gsi), -EINVAL); /* edge only */
		/* resample_fd is read only with LEVEL: a zeroed struct binds. */
		gsi = irq;
		gsi.resample_fd = 0;
		assert_int_equal(vcpu_vm_irqfd(f->vm, &gsi), 0);
		gsi.flags |= VCPU_IRQFD_DEASSIGN;
		assert_int_equal(vcpu_vm_irqfd(f->vm, &gsi), 0);
	}
	assert_int_equal(vcpu_vm_irqfd(f->vm, &irq), 0);
	assert_int_equal(vcpu_vm_irqfd(f->vm, &irq), -EBUSY); /* one binding per eventfd */
	assert_int_equal(write(irq.fd, &one, sizeof(one)), (ssize_t)sizeof(one));
	assert_int_equal(mock_acrn_msi(f->mock, f->vm->fd, &count, &addr, &data), 0);
	assert_int_equal(count, 1);
	assert_int_equal(addr, 0xfee00000);
	assert_int_equal(data, 0x41);
	irq.flags |= VCPU_IRQFD_DEASSIGN;
	assert_int_equal(vcpu_vm_irqfd(f->vm, &irq), 0);
	assert_int_equal(write(irq.fd, &one, sizeof(one)), (ssize_t)sizeof(one));
	assert_int_equal(mock_acrn_msi(f->mock, f->vm->fd, &count, &addr, &data), 0);
	assert_int_equal(count, 1);
	/* Not an eventfd: eventfd_ctx_fdget() says EINVAL. */
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	irq.flags = VCPU_IRQFD_MSI;
	irq.fd = pipefd[0];
	assert_int_equal(vcpu_vm_irqfd(f->vm, &irq), -EINVAL);
	close(pipefd[0]);
	close(pipefd[1]);
}

static void test_ioeventfd(void **state)
{
	struct fx *f = *state;
	struct rec r;
	struct vcpu_ioeventfd mm = { .addr = MMIO_BASE + 0x40, .len = 4 };
	struct vcpu_ioeventfd port = { .addr = 0x510, .len = 2, .flags = VCPU_IOEVENTFD_PIO |
					VCPU_IOEVENTFD_DATAMATCH, .datamatch = 7 };
	struct vcpu_mock_step s[] = {
		mmio_write(MMIO_BASE + 0x40, 4, 1),         /* in the kernel: the eventfd */
		mmio_read(MMIO_BASE + 0x40, 4, 0, 0),          /* the in-kernel client reads 0 */
		pio(VCPU_MOCK_PIO_OUT, 0x510, 2, 1, 3),     /* no match: in the kernel, silent */
		pio(VCPU_MOCK_PIO_OUT, 0x510, 2, 1, 7),     /* match */
		mmio_write(MMIO_BASE + 0x44, 4, 2),         /* outside: the VMM */
		stop(),
	};

	open_n(f, 1, 0);
	rec_init(&r);
	mm.fd = new_eventfd(f);
	port.fd = new_eventfd(f);
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &mm), 0);
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &mm), -EEXIST);
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &port), 0);
	{
		struct vcpu_ioeventfd any = mm;

		any.len = 0;
		assert_int_equal(vcpu_vm_ioeventfd(f->vm, &any), -EINVAL); /* ACRN needs a width */
		any.len = 8;
		any.flags = VCPU_IOEVENTFD_PIO;
		assert_int_equal(vcpu_vm_ioeventfd(f->vm, &any), -EINVAL);
	}
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(r.n_io, 2);
	assert_int_equal(r.io[0].addr, MMIO_BASE + 0x44);
	assert_int_equal(eventfd_count(mm.fd), 1);
	assert_int_equal(eventfd_count(port.fd), 1);
	expect_script(f, 0, ARRAY_SIZE(s));
	/* Unbound: the same write reaches the VMM again. */
	mm.flags = VCPU_IOEVENTFD_DEASSIGN;
	assert_int_equal(vcpu_vm_ioeventfd(f->vm, &mm), 0);
	{
		struct vcpu_mock_step again[] = { mmio_write(MMIO_BASE + 0x40, 4, 1), stop() };

		SCRIPT(f, 0, again);
		assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
		assert_int_equal(r.n_io, 4);
		assert_int_equal(r.io[2].addr, MMIO_BASE + 0x40);
		assert_int_equal(eventfd_count(mm.fd), 0);
		expect_script(f, 0, ARRAY_SIZE(again));
	}
}

/* RAM goes in with SET_MEMSEG, the guest uses it without exits; it cannot be unmapped. */
static void test_memory(void **state)
{
	struct fx *f = *state;
	struct vcpu_mock_config mcfg = { .nr_memslots = 2 };
	struct vcpu_vm_config cfg = { .cpu_affinity = 1 };
	struct mock_acrn_info i;
	struct rec r;
	void *ram = NULL, *rom;
	struct vcpu_mock_step s[] = {
		mem_op(VCPU_MOCK_MEM_WRITE, 0x100008, 0x0123456789abcdefull),
		mem_op(VCPU_MOCK_MEM_CHECK, 0x100000, 0x55aa),
		mem_op(VCPU_MOCK_MEM_WRITE, 0x200000, 0x77),  /* read-only: an MMIO write */
		mem_op(VCPU_MOCK_MEM_CHECK, 0x300000, 0x99),  /* no RAM: an MMIO read */
		stop(),
	};

	open_vm(f, &mcfg, &cfg);
	add_cpu(f, 0);
	rec_init(&r);
	reply(&r, 0x99);
	assert_int_equal(vcpu_vm_alloc(f->vm, 0x100000, 2 * f->page, 0, &ram), 0);
	i = info(f);
	assert_int_equal(i.nsegs, 1);
	assert_int_equal(i.last_seg.type, ACRN_MEMMAP_RAM);
	assert_int_equal(i.last_seg.attr, 7);
	assert_int_equal(i.last_seg.hva, (uint64_t)(uintptr_t)ram);
	assert_int_equal(i.last_seg.len, 2 * f->page);
	((uint64_t *)ram)[0] = 0x55aa;
	f->memlen[0] = f->page;
	rom = f->mem[0] = mmap(NULL, f->page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);
	assert_true(rom != MAP_FAILED);
	assert_int_equal(vcpu_vm_map(f->vm, 0x200000, rom, f->page, VCPU_MEM_READONLY), 0);
	assert_int_equal(info(f).last_seg.attr, 5);
	/* The HSM's mapping table is full (nr_memslots models ACRN_MEM_MAPPING_MAX). */
	assert_int_equal(vcpu_vm_map(f->vm, 0x400000, rom, f->page, 0), -ENOMEM);
	assert_int_equal(vcpu_vm_map(f->vm, 0x500000, rom, f->page, VCPU_MEM_LOG_DIRTY), -EOPNOTSUPP);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_run(f->cpu[0], &H_ALL, &r), VCPU_STOP);
	assert_int_equal(((uint64_t *)ram)[1], 0x0123456789abcdefull);
	assert_int_equal(r.n_mmio, 3);
	assert_int_equal(r.io[0].addr, 0x200000);
	assert_int_equal(get_le(r.io[0].data, 8), 0x77);
	assert_int_equal(r.io[1].addr, 0x300000);
	expect_script(f, 0, ARRAY_SIZE(s));
	/* mm.c: UNSET_MEMSEG takes MMIO ranges only; RAM stays until the VM goes. */
	assert_int_equal(vcpu_vm_unmap(f->vm, 0x100000, 2 * f->page), -EOPNOTSUPP);
	expect_detail(vcpu_vm_last_error(f->vm));
	assert_int_equal(vcpu_vm_map(f->vm, 0x100000, rom, f->page, 0), -EEXIST);
	{
		struct acrn_vm_memmap m = { .type = ACRN_MEMMAP_RAM, .user_vm_pa = 0x100000,
					    .len = 2 * f->page };

		assert_int_equal(raw_ioctl(f, ACRN_IOCTL_UNSET_MEMSEG, &m), -EINVAL);
		m.type = 9;
		assert_int_equal(raw_ioctl(f, ACRN_IOCTL_SET_MEMSEG, &m), -EINVAL);
		m.type = ACRN_MEMMAP_MMIO;
		m.vma_base = 0xfe000000;
		assert_int_equal(raw_ioctl(f, ACRN_IOCTL_SET_MEMSEG, &m), 0);
		assert_int_equal(info(f).nsegs, 3);
		assert_int_equal(raw_ioctl(f, ACRN_IOCTL_UNSET_MEMSEG, &m), 0);
		assert_int_equal(info(f).nsegs, 2);
	}
}

/* Destroying a started VM tears down its client; nothing of it stays open. */
static void test_destroy_started_no_leak(void **state)
{
	struct fx *f = *state;
	struct rec r;
	struct vcpu_mock_step s[] = { mmio_write(MMIO_BASE, 4, 1), mmio_read(MMIO_BASE, 4, 0, 0) };

	open_n(f, 2, 0);
	rec_init(&r);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	/* A request left pending at destruction. */
	assert_int_equal(info(f).slot_state[0], ACRN_IOREQ_STATE_PROCESSING);
	assert_int_equal(vcpu_destroy(&f->cpu[0]), 0);
	assert_int_equal(vcpu_destroy(&f->cpu[1]), 0);
	assert_int_equal(vcpu_vm_destroy(&f->vm), 0);
	assert_int_equal(count_open_fds(), f->fds + 1);
	assert_int_equal(vcpu_mock_failures(f->mock, NULL), 0);
}

/*
 * ACRN_IOCTL_DESTROY_VM refused: the hypervisor may still write the pinned
 * request page, so nothing is freed and the handle stays; a second
 * vcpu_vm_destroy() asks again and then frees it all (the fixture counts).
 */
static void test_destroy_refused_keeps_vm(void **state)
{
	struct fx *f = *state;
	struct vcpu_vm *vm;
	uint64_t calls;

	open_n(f, 1, 0);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	assert_int_equal(vcpu_destroy(&f->cpu[0]), 0);
	/* The destroy's calls: DESTROY_IOREQ_CLIENT, then DESTROY_VM. */
	calls = vcpu_mock_calls(f->mock);
	assert_int_equal(vcpu_mock_fail_call(f->mock, calls + 2, EIO), 0);
	vm = f->vm;
	assert_int_equal(vcpu_vm_destroy(&f->vm), -EIO);
	assert_ptr_equal(f->vm, vm);
	assert_non_null(strstr(vcpu_vm_last_error(f->vm), "kept"));
	assert_int_equal(vcpu_vm_destroy(&f->vm), 0);
	assert_null(f->vm);
}

/*
 * A reset from another thread landing between the serving thread's check of
 * the reset generation and its NOTIFY_REQUEST_FINISH: the mock's notify
 * hook starts the reset right there and gives it 50 ms.  The reset must
 * wait for the completion in flight (CLEAR_VM_IOREQ would otherwise free
 * the slot, and the late notify complete whatever the slot holds then).
 */
struct reset_race {
	struct vcpu_vm *vm;
	atomic_int go, done, armed;
	int rc;
};

static void *reset_main(void *arg)
{
	struct reset_race *x = arg;

	while (!atomic_load(&x->go))
		sleep_us(100);
	x->rc = vcpu_vm_reset(x->vm);
	atomic_store(&x->done, 1);
	return NULL;
}

static void reset_in_notify(void *arg)
{
	struct reset_race *x = arg;

	if (!atomic_exchange(&x->armed, 0))
		return;
	atomic_store(&x->go, 1);
	for (int i = 0; i < 500 && !atomic_load(&x->done); i++)
		sleep_us(100);
}

static int answer_and_stop(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	(void)ctx, (void)cpu;
	memset(io->data, 0, sizeof(io->data));
	io->data[0] = 0x34;
	io->data[1] = 0x12;
	return VCPU_STOP;
}

static void test_reset_waits_for_completion_in_flight(void **state)
{
	struct fx *f = *state;
	const struct vcpu_handlers h = { .mmio = answer_and_stop };
	struct vcpu_mock_step s[] = { mmio_read(MMIO_BASE, 4, 0x1234, 0) };
	struct reset_race x = { 0 };
	const char *msg = "";
	struct thr t;

	open_n(f, 1, 0);
	SCRIPT(f, 0, s);
	assert_int_equal(vcpu_vm_start(f->vm), 0);
	x.vm = f->vm;
	atomic_store(&x.armed, 1);
	mock_acrn_set_notify_hook(f->mock, reset_in_notify, &x);
	thr_start(&t, reset_main, &x);
	assert_int_equal(vcpu_run(f->cpu[0], &h, NULL), VCPU_STOP);
	thr_join(&t);
	mock_acrn_set_notify_hook(f->mock, NULL, NULL);
	assert_int_equal(x.rc, 0);
	if (vcpu_mock_failures(f->mock, &msg))
		fail_msg("the mock saw: %s", msg);
	assert_int_equal(info(f).state, MACRN_CREATED);
}

/* ------------------------------------------------------------------------ */

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* Let glibc and the mock allocate their one-time state before the leak counts. */
static void warm_up(void)
{
	struct vcpu_mock *m = NULL;
	struct vcpu_hv *hv = NULL;
	struct vcpu_vm *vm = NULL;
	struct vcpu *cpu = NULL;
	int efd = eventfd(0, EFD_CLOEXEC);

	if (vcpu_mock_open(VCPU_BACKEND_ACRN, NULL, &m, &hv) == 0) {
		if (vcpu_vm_create(hv, NULL, &vm) == 0) {
			if (vcpu_create(vm, 0, 0, &cpu) == 0)
				vcpu_destroy(&cpu);
			vcpu_vm_destroy(&vm);
		}
		vcpu_hv_close(hv);
		vcpu_mock_destroy(&m);
	}
	if (efd >= 0)
		close(efd);
	(void)count_open_fds();
	(void)count_mappings();
	fflush(stdout);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* handles and VMs */
		T(test_open_and_create),
		T(test_create_config),
		T(test_mock_config_refused),
		T(test_vcpu_bind),
		T(test_caps),
		/* the modelled HSM's rules */
		T(test_rule_vm_state_and_enotty),
		T(test_rule_reserved_fields),
		T(test_rule_ioreq_client),
		T(test_rule_notify_without_request_caught),
		T(test_rule_hypervisor_states),
		/* registers */
		T(test_set_reg_reaches_hypervisor),
		T(test_get_reg_honest_error),
		T(test_segments),
		T(test_regs_seen_by_guest),
		/* I/O requests */
		T(test_run_before_start),
		T(test_mmio),
		T(test_mock_catches_wrong_read),
		T(test_pio),
		T(test_pci_config),
		T(test_unhandled_read_zero),
		T(test_fault_response),
		T(test_retry_response),
		T(test_multi_vcpu_one_thread),
		/* kicks and the single server */
		T(test_kick_from_thread),
		T(test_kick_through_other_handle),
		T(test_kick_before_run),
		T(test_kick_from_signal_handler),
		T(test_second_server_ebusy),
		T(test_claim_race_one_server),
		/* power control */
		T(test_reset_sequence_in_handler),
		T(test_reset_from_mmio_handler),
		T(test_power_events),
		/* malformed slots */
		T(test_malformed_slots),
		T(test_bad_slot_state),
		T(test_kernel_handled_skipped),
		/* interrupts, eventfds, memory */
		T(test_irq_line_and_msi),
		T(test_irqfd_msi),
		T(test_ioeventfd),
		T(test_memory),
		T(test_destroy_started_no_leak),
		T(test_destroy_refused_keeps_vm),
		T(test_reset_waits_for_completion_in_flight),
	};

	mallopt(M_ARENA_MAX, 1);
	warm_up();
	return cmocka_run_group_tests_name("acrn", tests, NULL, NULL);
}
