// SPDX-License-Identifier: MIT
/*
 * The modelled ACRN Hypervisor Service Module (/dev/acrn_hsm) and the
 * hypervisor behind it, with scripted guests (include/vcpu/mock.h).
 *
 * Modelled on drivers/virt/acrn (hsm.c, ioreq.c, mm.c, ioeventfd.c,
 * irqfd.c) as summarised in doc/abi/acrn.md:
 *  - one VM per open file; every ioctl but CREATE_VM fails with EINVAL
 *    until CREATE_VM (and again after DESTROY_VM); unknown numbers ENOTTY;
 *  - reserved fields must be 0 (CREATE_VM, SET_VCPU_REGS, NOTIFY,
 *    IOEVENTFD): EINVAL;
 *  - the I/O request page: the hypervisor fills slot n for vCPU n and marks
 *    it PENDING; the HSM completes 0xCF8 itself, turns 0xCFC..0xCFF into
 *    PCI-config requests, gives ioeventfd ranges to its in-kernel client
 *    (kernel_handled 1) and the rest to the default client (PROCESSING,
 *    pending bit, wake-up); NOTIFY_REQUEST_FINISH marks the slot COMPLETE
 *    and the hypervisor resumes the vCPU;
 *  - ATTACH_IOREQ_CLIENT sleeps until a request is pending for userspace,
 *    returns 0 (nothing pending) when a signal interrupts it, and ENODEV
 *    once the client is destroyed;
 *  - what the hypervisor itself refuses (its -1, passed on by the HSM as
 *    EPERM): registers while the VM runs or for a vCPU it does not have,
 *    START of a VM that is not freshly created or reset, RESET of a VM
 *    that is not paused, a bad IRQ line operation.
 * Where it checks more than the kernel would (a VMM completing a request it
 * was never given, resetting with completions still owed), the mock records
 * a failure (mock_fail) rather than returning an errno the HSM never gives.
 *
 * A vCPU's script runs while the VM runs: a step that needs the VMM posts
 * a request and the vCPU waits for its completion, which is checked against
 * the script; a finished script leaves the vCPU idle (ACRN vCPUs do not
 * "return" to the VMM).
 */
#define _GNU_SOURCE
#include "mock_acrn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int copy_in(void *dst, unsigned long arg, size_t len)
{
	if (!arg)
		return -EFAULT; /* copy_from_user of NULL */
	memcpy(dst, (const void *)(uintptr_t)arg, len);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* ioctls                                                                     */

static bool name_in_use(struct vcpu_mock *m, const char *name)
{
	for (size_t i = 0; i < m->nfiles; i++) {
		const struct macrn_vm *o = m->files[i]->obj;

		if (o && o->state != MACRN_NONE && strncmp(o->name, name, ACRN_NAME_LEN) == 0)
			return true;
	}
	return false;
}

static int create_vm(struct vcpu_mock *m, struct macrn_vm *vm, unsigned long arg)
{
	struct macrn_driver *st = m->drv_state;
	struct acrn_vm_creation c;
	uint64_t all = (1ull << m->cfg.max_vcpus) - 1, aff;
	int r = copy_in(&c, arg, sizeof(c));

	if (r < 0)
		return r;
	if (c.reserved0 | c.reserved1)
		return -EINVAL;
	/* acrn_vm_create() failing (hypercall, ioreq page) is EINVAL from hsm.c. */
	if (vm->state != MACRN_NONE) /* the HSM would lose its VM: refused here */
		return -EINVAL;
	aff = c.cpu_affinity ? c.cpu_affinity : all;
	if (aff & ~all)
		return -EINVAL; /* a pCPU the hypervisor does not have */
	if (!c.ioreq_buf)
		return -EINVAL; /* the page cannot be pinned */
	if (name_in_use(m, (const char *)c.name))
		return -EINVAL; /* the hypervisor knows post-launched VMs by name */
	memset(vm, 0, sizeof(*vm));
	vm->state = MACRN_CREATED;
	vm->vmid = st->next_vmid++;
	vm->vcpu_num = (uint16_t)__builtin_popcountll(aff);
	memcpy(vm->name, c.name, ACRN_NAME_LEN);
	vm->affinity = aff;
	vm->vm_flag = c.vm_flag;
	/* The HSM pins the page holding ioreq_buf: slot 0 is at its start. */
	vm->slots = (struct acrn_io_request *)(uintptr_t)(c.ioreq_buf & ~(uint64_t)4095);
	for (uint32_t i = 0; i < ACRN_IO_REQUEST_MAX; i++)
		set_state(slot_of(vm, i), ACRN_IOREQ_STATE_FREE);
	c.vmid = vm->vmid;
	c.vcpu_num = vm->vcpu_num;
	memcpy((void *)(uintptr_t)arg, &c, sizeof(c));
	return 0;
}

/* hsm.c acrn_vm_destroy(): clients, fds, mappings and the page go. */
static void destroy_vm(struct macrn_vm *vm)
{
	free(vm->segs);
	free(vm->ioevfds);
	free(vm->irqfds);
	memset(vm, 0, sizeof(*vm));
	vm->state = MACRN_NONE;
	vm->client_gen = 1; /* a sleeping ATTACH sees its client gone */
}

static int set_regs(struct macrn_vm *vm, unsigned long arg)
{
	struct acrn_vcpu_regs regs;
	int r = copy_in(&regs, arg, sizeof(regs));

	if (r < 0)
		return r;
	for (unsigned i = 0; i < 3; i++)
		if (regs.reserved[i] || regs.vcpu_regs.reserved_32[i] ||
		    regs.vcpu_regs.gdt.reserved[i] || regs.vcpu_regs.idt.reserved[i])
			return -EINVAL;
	for (unsigned i = 0; i < 4; i++)
		if (regs.vcpu_regs.reserved_64[i])
			return -EINVAL;
	/* The hypervisor: only while the VM is not running, only its own vCPUs. */
	if (vm->state == MACRN_RUNNING || regs.vcpu_id >= vm->vcpu_num)
		return -EPERM;
	vm->vcpu[regs.vcpu_id].regs = regs;
	vm->vcpu[regs.vcpu_id].nregs++;
	return 0;
}

static int set_memseg(struct vcpu_mock *m, struct macrn_vm *vm, unsigned long arg, bool unset)
{
	struct acrn_vm_memmap mm;
	int r = copy_in(&mm, arg, sizeof(mm));

	if (r < 0)
		return r;
	if (unset) {
		/* mm.c acrn_vm_memseg_unmap(): MMIO ranges only; RAM stays until DESTROY_VM. */
		if (mm.type != ACRN_MEMMAP_MMIO)
			return -EINVAL;
		for (size_t i = 0; i < vm->nsegs; i++)
			if (vm->segs[i].type == ACRN_MEMMAP_MMIO && vm->segs[i].gpa == mm.user_vm_pa &&
			    vm->segs[i].len == mm.len) {
				vm->segs[i] = vm->segs[--vm->nsegs];
				break;
			}
		return 0;
	}
	if (mm.type != ACRN_MEMMAP_RAM && mm.type != ACRN_MEMMAP_MMIO)
		return -EINVAL;
	if (mm.type == ACRN_MEMMAP_RAM) {
		size_t used = 0;

		if (!mm.vma_base)
			return -EFAULT; /* nothing to pin */
		if (!mm.len || (mm.len | mm.user_vm_pa | mm.vma_base) & (m->page_size - 1))
			return -EINVAL; /* the mock only pins whole pages */
		for (size_t i = 0; i < vm->nsegs; i++)
			used += vm->segs[i].type == ACRN_MEMMAP_RAM;
		/* ACRN_MEM_MAPPING_MAX, modelled by nr_memslots: "Run out of memory mapping slots" */
		if (used >= m->cfg.nr_memslots)
			return -ENOMEM;
	}
	if (!mock_grow((void **)&vm->segs, &vm->cap_segs, vm->nsegs, sizeof(*vm->segs)))
		return -ENOMEM;
	vm->segs[vm->nsegs++] = (struct macrn_memseg){
		.type = mm.type,
		/* RAM is mapped write-back whatever the type bits say */
		.attr = mm.type == ACRN_MEMMAP_RAM ? mm.attr & ACRN_MEM_ACCESS_RIGHT_MASK : mm.attr,
		.gpa = mm.user_vm_pa,
		.hva = mm.vma_base,
		.len = mm.len,
	};
	return 0;
}

static int set_irqline(struct macrn_vm *vm, unsigned long arg)
{
	uint64_t v = arg;
	uint32_t gsi = (uint32_t)v, op = (uint32_t)(v >> 32);

	if (gsi >= MOCK_MAX_IRQS || op > ACRN_GSI_FALLING_PULSE)
		return -EPERM;
	switch (op) {
	case ACRN_GSI_SET_HIGH: vm->irq_level[gsi] = 1; break;
	case ACRN_GSI_SET_LOW: vm->irq_level[gsi] = 0; break;
	case ACRN_GSI_RAISING_PULSE: vm->irq_pulses[gsi]++; vm->irq_level[gsi] = 0; break;
	default: vm->irq_pulses[gsi]++; vm->irq_level[gsi] = 1; break;
	}
	return 0;
}

static int inject_msi(struct macrn_vm *vm, uint64_t addr, uint64_t data)
{
	vm->nmsi++;
	vm->msi_addr = addr;
	vm->msi_data = data;
	return 0;
}

static int notify_finish(struct vcpu_mock *m, struct macrn_vm *vm, unsigned long arg)
{
	struct acrn_ioreq_notify n;
	struct macrn_vcpu *v;
	struct acrn_io_request *s;
	int r = copy_in(&n, arg, sizeof(n));

	if (r < 0)
		return r;
	if (n.reserved)
		return -EINVAL;
	if (!vm->client)
		return 0; /* acrn_ioreq_request_default_complete() without a client */
	if (n.vcpu >= vm->vcpu_num)
		return -EINVAL;
	v = &vm->vcpu[n.vcpu];
	s = slot_of(vm, n.vcpu);
	/* The HSM does not look: it marks the slot COMPLETE and notifies regardless. */
	if (!(vm->ioreqs_map & (1u << n.vcpu)) || !v->busy || v->kernel) {
		mock_fail(m, "NOTIFY_REQUEST_FINISH for vCPU %u, which has no request for the VMM "
			  "(slot state %u%s)", n.vcpu, slot_state(s),
			  v->kernel ? ", owned by an in-kernel client" : "");
		vm->ioreqs_map &= ~(1u << n.vcpu);
		set_state(s, ACRN_IOREQ_STATE_COMPLETE);
		return 0;
	}
	if (slot_state(s) != ACRN_IOREQ_STATE_PROCESSING)
		mock_fail(m, "vCPU %u: the VMM changed the slot's state to %u (only the HSM writes "
			  "it)", n.vcpu, slot_state(s));
	vm->ioreqs_map &= ~(1u << n.vcpu);
	macrn_complete_slot(m, vm, n.vcpu, true);
	macrn_advance(m, vm);
	return 0;
}

/* ioreq.c acrn_ioreq_request_clear(): complete what the default client holds. */
static int clear_ioreqs(struct vcpu_mock *m, struct macrn_vm *vm)
{
	vm->nclear++;
	if (!vm->client)
		return 0;
	for (uint32_t i = 0; i < vm->vcpu_num; i++) {
		if (!(vm->ioreqs_map & (1u << i)))
			continue;
		vm->ioreqs_map &= ~(1u << i);
		macrn_complete_slot(m, vm, i, false);
	}
	return 0;
}

/* The hypervisor's reset of a paused VM: vCPUs reset, every slot FREE. */
static int reset_vm(struct vcpu_mock *m, struct macrn_vm *vm)
{
	if (vm->state != MACRN_PAUSED)
		return -EPERM;
	if (vm->ioreqs_map)
		mock_fail(m, "RESET_VM while the VMM still owes completions (mask 0x%x): "
			  "without CLEAR_VM_IOREQ first the HSM's pending bits outlive the "
			  "reset", vm->ioreqs_map);
	for (uint32_t i = 0; i < vm->vcpu_num; i++) {
		struct macrn_vcpu *v = &vm->vcpu[i];

		set_state(slot_of(vm, i), ACRN_IOREQ_STATE_FREE);
		v->busy = v->kernel = v->stuck = false;
		v->expect_read = false;
		v->item = v->nitems; /* the access in flight is abandoned */
	}
	vm->state = MACRN_CREATED;
	vm->nreset++;
	return 0;
}

/*
 * ioreq.c acrn_ioreq_client_wait(): interruptible, and 0 when interrupted.
 * Signals are blocked from entry to exit except inside ppoll(), so one
 * arriving after the "system call" began interrupts it, as in the kernel.
 */
static int attach(struct vcpu_mock *m, struct macrn_vm *vm)
{
	const struct timespec tick = { .tv_sec = 0, .tv_nsec = WAIT_TICK_NS };
	unsigned gen = vm->client_gen;
	uint64_t waited = 0;
	sigset_t all, old;
	int r, pr, err;

	if (!vm->client)
		return -ENODEV;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (;;) {
		macrn_advance(m, vm);
		if (vm->state == MACRN_NONE || !vm->client || vm->client_gen != gen) {
			r = -ENODEV;
			break;
		}
		if (vm->ioreqs_map) {
			r = 0;
			break;
		}
		if (waited >= WAIT_LIMIT_NS) {
			mock_fail(m, "ATTACH_IOREQ_CLIENT waited %llu s with nothing to serve",
				  (unsigned long long)(WAIT_LIMIT_NS / 1000000000ull));
			r = -EIO;
			break;
		}
		pthread_mutex_unlock(&m->lock);
		pr = ppoll(NULL, 0, &tick, &old);
		err = errno;
		pthread_mutex_lock(&m->lock);
		if (pr < 0 && err == EINTR) {
			if (vm->state != MACRN_NONE)
				macrn_end_spins(m, vm);
			r = 0;
			break;
		}
		waited += WAIT_TICK_NS;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

static int ioeventfd(struct macrn_vm *vm, unsigned long arg)
{
	struct acrn_ioeventfd a;
	bool pio;
	int r = copy_in(&a, arg, sizeof(a));

	if (r < 0)
		return r;
	if (a.reserved)
		return -EINVAL;
	pio = a.flags & ACRN_IOEVENTFD_FLAG_PIO;
	if (a.flags & ACRN_IOEVENTFD_FLAG_DEASSIGN) {
		r = mock_check_eventfd((int)a.fd);
		if (r < 0)
			return r;
		for (size_t i = 0; i < vm->nioevfds; i++)
			if (vm->ioevfds[i].fd == (int)a.fd) {
				vm->ioevfds[i] = vm->ioevfds[--vm->nioevfds];
				break;
			}
		return 0;
	}
	if (a.addr + a.len < a.addr)
		return -EINVAL;
	if (a.len != 1 && a.len != 2 && a.len != 4 && a.len != 8)
		return -EINVAL;
	r = mock_check_eventfd((int)a.fd);
	if (r < 0)
		return r;
	for (size_t i = 0; i < vm->nioevfds; i++) {
		const struct macrn_evfd *p = &vm->ioevfds[i];
		bool wild = !(a.flags & ACRN_IOEVENTFD_FLAG_DATAMATCH);

		if (p->fd == (int)a.fd && p->addr == a.addr && p->pio == pio &&
		    (p->wildcard || wild || p->data == a.data))
			return -EEXIST;
	}
	if (!mock_grow((void **)&vm->ioevfds, &vm->cap_ioevfds, vm->nioevfds, sizeof(*vm->ioevfds)))
		return -ENOMEM;
	vm->ioevfds[vm->nioevfds++] = (struct macrn_evfd){
		.fd = (int)a.fd, .pio = pio, .wildcard = !(a.flags & ACRN_IOEVENTFD_FLAG_DATAMATCH),
		.len = a.len, .addr = a.addr, .data = a.data,
	};
	return 0;
}

static int irqfd(struct macrn_vm *vm, unsigned long arg)
{
	struct acrn_irqfd a;
	int r = copy_in(&a, arg, sizeof(a));

	if (r < 0)
		return r;
	r = mock_check_eventfd(a.fd);
	if (r < 0)
		return r;
	if (a.flags & ACRN_IRQFD_FLAG_DEASSIGN) {
		for (size_t i = 0; i < vm->nirqfds; i++)
			if (vm->irqfds[i].fd == a.fd) {
				vm->irqfds[i] = vm->irqfds[--vm->nirqfds];
				break;
			}
		return 0;
	}
	for (size_t i = 0; i < vm->nirqfds; i++)
		if (vm->irqfds[i].fd == a.fd)
			return -EBUSY; /* irqfd.c: one binding per eventfd */
	if (!mock_grow((void **)&vm->irqfds, &vm->cap_irqfds, vm->nirqfds, sizeof(*vm->irqfds)))
		return -ENOMEM;
	vm->irqfds[vm->nirqfds++] = (struct macrn_evfd){ .fd = a.fd, .addr = a.msi.msi_addr,
							 .data = a.msi.msi_data };
	return 0;
}

static int vm_ioctl(struct vcpu_mock *m, struct macrn_vm *vm, unsigned long req, unsigned long arg)
{
	struct acrn_msi_entry msi;
	int r;

	/* hsm.c: before CREATE_VM (and after DESTROY_VM) only CREATE_VM, even for unknown numbers. */
	if (vm->state == MACRN_NONE && req != ACRN_IOCTL_CREATE_VM)
		return -EINVAL;
	switch (req) {
	case ACRN_IOCTL_CREATE_VM:
		return create_vm(m, vm, arg);
	case ACRN_IOCTL_DESTROY_VM:
		destroy_vm(vm);
		return 0;
	case ACRN_IOCTL_START_VM:
		if (vm->state != MACRN_CREATED)
			return -EPERM;
		vm->state = MACRN_RUNNING;
		vm->nstart++;
		macrn_advance(m, vm);
		return 0;
	case ACRN_IOCTL_PAUSE_VM:
		if (vm->state == MACRN_RUNNING)
			vm->state = MACRN_PAUSED;
		vm->npause++;
		return 0;
	case ACRN_IOCTL_RESET_VM:
		return reset_vm(m, vm);
	case ACRN_IOCTL_SET_VCPU_REGS:
		return set_regs(vm, arg);
	case ACRN_IOCTL_SET_MEMSEG:
		return set_memseg(m, vm, arg, false);
	case ACRN_IOCTL_UNSET_MEMSEG:
		return set_memseg(m, vm, arg, true);
	case ACRN_IOCTL_SET_IRQLINE:
		return set_irqline(vm, arg);
	case ACRN_IOCTL_INJECT_MSI:
		r = copy_in(&msi, arg, sizeof(msi));
		return r < 0 ? r : inject_msi(vm, msi.msi_addr, msi.msi_data);
	case ACRN_IOCTL_CREATE_IOREQ_CLIENT:
		if (vm->client)
			return -EEXIST;
		vm->client = true;
		macrn_advance(m, vm);
		return 0;
	case ACRN_IOCTL_DESTROY_IOREQ_CLIENT:
		if (vm->client) {
			/* Its pending bits go with it: those slots stay PROCESSING. */
			vm->client = false;
			vm->client_gen++;
			vm->ioreqs_map = 0;
		}
		return 0;
	case ACRN_IOCTL_ATTACH_IOREQ_CLIENT:
		return attach(m, vm);
	case ACRN_IOCTL_NOTIFY_REQUEST_FINISH:
		return notify_finish(m, vm, arg);
	case ACRN_IOCTL_CLEAR_VM_IOREQ:
		return clear_ioreqs(m, vm);
	case ACRN_IOCTL_IOEVENTFD:
		return ioeventfd(vm, arg);
	case ACRN_IOCTL_IRQFD:
		return irqfd(vm, arg);
	default:
		return -ENOTTY;
	}
}

static int acrn_ioctl(struct vcpu_mock *m, struct mock_file *f, unsigned long req, unsigned long arg)
{
	const struct macrn_driver *st = m->drv_state;
	int r;

	if (req == ACRN_IOCTL_NOTIFY_REQUEST_FINISH && st->notify_hook)
		st->notify_hook(st->notify_arg);
	pthread_mutex_lock(&m->lock);
	r = f->obj ? vm_ioctl(m, f->obj, req, arg) : -ENOTTY;
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* ------------------------------------------------------------------------ */
/* The driver table                                                           */

static int acrn_init(struct vcpu_mock *m)
{
	if (m->cfg.max_vcpus > ACRN_MAX_PCPUS)
		return -EINVAL;
	m->drv_state = calloc(1, sizeof(struct macrn_driver));
	return m->drv_state ? 0 : -ENOMEM;
}

static void acrn_fini(struct vcpu_mock *m)
{
	free(m->drv_state);
	m->drv_state = NULL;
}

/* hsm.c acrn_dev_open(): every open file gets an empty VM. */
static int acrn_open(struct vcpu_mock *m, struct mock_file *f)
{
	struct macrn_vm *vm = calloc(1, sizeof(*vm));

	(void)m;
	if (!vm)
		return -ENOMEM;
	vm->state = MACRN_NONE;
	f->obj = vm;
	f->subkind = 1;
	return 0;
}

static void acrn_release(struct vcpu_mock *m, struct mock_file *f)
{
	struct macrn_vm *vm = f->obj;

	(void)m;
	destroy_vm(vm);
	free(vm);
	f->obj = NULL;
}

/* The HSM has no mmap: the fops have none, so mmap() fails with ENODEV. */
static int acrn_mmap_check(const struct vcpu_mock *m, const struct mock_file *f, size_t len,
			   off_t off)
{
	(void)m;
	(void)f;
	(void)len;
	(void)off;
	return -ENODEV;
}

static bool acrn_step_valid(const struct vcpu_mock *m, const struct vcpu_mock_step *s)
{
	uint64_t reg = s->addr & 0xfff;

	(void)m;
	switch (s->op) {
	case VCPU_MOCK_ACRN_PCI_READ:
	case VCPU_MOCK_ACRN_PCI_WRITE:
		/* One data-port access: it must fit in 0xCFC..0xCFF. */
		return (s->len == 1 || s->len == 2 || s->len == 4) && s->addr < (1ull << 28) &&
		       (reg & 3) + s->len <= 4;
	case VCPU_MOCK_ACRN_RAW_SLOT:
		return true;
	default:
		return false;
	}
}

const struct mock_driver mock_acrn_driver = {
	.backend = VCPU_BACKEND_ACRN,
	.node = "/dev/acrn_hsm",
	.name = "mock-acrn",
	.arches = 1u << VCPU_ARCH_X86_64,
	.flags = 0,
	.init = acrn_init,
	.fini = acrn_fini,
	.open = acrn_open,
	.ioctl = acrn_ioctl,
	.mmap_check = acrn_mmap_check,
	.file_release = acrn_release,
	.step_valid = acrn_step_valid,
};

/* ------------------------------------------------------------------------ */
/* Test helpers                                                               */

static struct macrn_vm *vm_of(const struct vcpu_mock *m, int fd)
{
	for (size_t i = 0; i < m->nfiles; i++) {
		struct macrn_vm *vm = m->files[i]->obj;

		if (m->files[i]->fd == fd && vm && vm->state != MACRN_NONE)
			return vm;
	}
	return NULL;
}

static void lock_m(const struct vcpu_mock *m)
{
	pthread_mutex_lock(&((struct vcpu_mock *)m)->lock);
}

static void unlock_m(const struct vcpu_mock *m)
{
	pthread_mutex_unlock(&((struct vcpu_mock *)m)->lock);
}

void mock_acrn_set_notify_hook(struct vcpu_mock *m, void (*hook)(void *arg), void *arg)
{
	struct macrn_driver *st = m->drv_state;

	st->notify_hook = hook;
	st->notify_arg = arg;
}

int mock_acrn_info(const struct vcpu_mock *m, int fd, struct mock_acrn_info *out)
{
	struct macrn_vm *vm;
	int r = -EBADF;

	lock_m(m);
	vm = vm_of(m, fd);
	if (vm) {
		memset(out, 0, sizeof(*out));
		out->state = vm->state;
		out->vmid = vm->vmid;
		out->vcpu_num = vm->vcpu_num;
		memcpy(out->name, vm->name, sizeof(out->name));
		out->affinity = vm->affinity;
		out->client = vm->client;
		out->nsegs = (unsigned)vm->nsegs;
		if (vm->nsegs)
			out->last_seg = vm->segs[vm->nsegs - 1];
		out->nclear = vm->nclear;
		out->nreset = vm->nreset;
		out->nstart = vm->nstart;
		out->npause = vm->npause;
		for (uint32_t i = 0; i < ACRN_IO_REQUEST_MAX; i++)
			out->slot_state[i] = slot_state(slot_of(vm, i));
		r = 0;
	}
	unlock_m(m);
	return r;
}

int mock_acrn_regs(const struct vcpu_mock *m, int fd, uint32_t vcpu, struct acrn_vcpu_regs *out,
		   unsigned *count)
{
	struct macrn_vm *vm;
	int r = -EBADF;

	lock_m(m);
	vm = vm_of(m, fd);
	if (vm && vcpu < ACRN_IO_REQUEST_MAX) {
		*out = vm->vcpu[vcpu].regs;
		*count = vm->vcpu[vcpu].nregs;
		r = 0;
	}
	unlock_m(m);
	return r;
}

int mock_acrn_irq(const struct vcpu_mock *m, int fd, uint32_t gsi, int *level, unsigned *pulses)
{
	struct macrn_vm *vm;
	int r = -EBADF;

	lock_m(m);
	vm = vm_of(m, fd);
	if (vm && gsi < MOCK_MAX_IRQS) {
		*level = vm->irq_level[gsi];
		*pulses = vm->irq_pulses[gsi];
		r = 0;
	}
	unlock_m(m);
	return r;
}

int mock_acrn_msi(struct vcpu_mock *m, int fd, unsigned *count, uint64_t *addr, uint64_t *data)
{
	struct macrn_vm *vm;
	int r = -EBADF;

	lock_m(m);
	vm = vm_of(m, fd);
	if (vm) {
		/* irqfd.c: a signalled eventfd injects its MSI (counts merge). */
		for (size_t i = 0; i < vm->nirqfds; i++) {
			struct pollfd p = { .fd = vm->irqfds[i].fd, .events = POLLIN };
			uint64_t cnt;

			if (poll(&p, 1, 0) == 1 && (p.revents & POLLIN) &&
			    read(p.fd, &cnt, sizeof(cnt)) == (ssize_t)sizeof(cnt))
				inject_msi(vm, vm->irqfds[i].addr, vm->irqfds[i].data);
		}
		*count = vm->nmsi;
		*addr = vm->msi_addr;
		*data = vm->msi_data;
		r = 0;
	}
	unlock_m(m);
	return r;
}
