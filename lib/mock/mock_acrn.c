// SPDX-License-Identifier: MIT
/*
 * The modelled ACRN Hypervisor Service Module (/dev/acrn_hsm) and the
 * hypervisor behind it, with scripted guests (include/vcpu/mock.h).
 *
 * Modelled on drivers/virt/acrn (hsm.c, ioreq.c, mm.c, ioeventfd.c,
 * irqfd.c) as summarised in shared/abi/acrn.md:
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

#define ACRN_MAX_PCPUS ACRN_IO_REQUEST_MAX /* one slot per vCPU: no bigger VM exists */
#define PCI_CONF_ENABLE 0x80000000u
#define STALE_READ 0xa5a5a5a5a5a5a5a5ull   /* what a read slot holds before the VMM answers */
#define WAIT_TICK_NS 1000000L
#define WAIT_LIMIT_NS (30ull * 1000000000ull)

struct macrn_driver {
	uint16_t next_vmid;
	/* A test's own code run as NOTIFY_REQUEST_FINISH arrives, before the mock lock. */
	void (*notify_hook)(void *arg);
	void *notify_arg;
};

static int copy_in(void *dst, unsigned long arg, size_t len)
{
	if (!arg)
		return -EFAULT; /* copy_from_user of NULL */
	memcpy(dst, (const void *)(uintptr_t)arg, len);
	return 0;
}

static struct acrn_io_request *slot_of(struct macrn_vm *vm, uint32_t i)
{
	return &vm->slots[i];
}

static uint32_t slot_state(const struct acrn_io_request *s)
{
	return __atomic_load_n(&s->processed, __ATOMIC_ACQUIRE);
}

static void set_state(struct acrn_io_request *s, uint32_t state)
{
	__atomic_store_n(&s->processed, state, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------------------ */
/* eventfds as eventfd_ctx_fdget() sees them                                  */

static void eventfd_signal1(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
		return; /* a full counter: eventfd_signal() saturates too */
}

/* ------------------------------------------------------------------------ */
/* The hypervisor's side of a request                                         */

static struct mock_script *script_of(struct vcpu_mock *m, const struct macrn_vcpu *v, uint32_t id)
{
	struct mock_script *s = mock_script_find(m, id);

	/* A script replaced meanwhile is a new guest: the old step's bookkeeping is void. */
	return s && s->gen == v->gen ? s : NULL;
}

static void step_done(struct vcpu_mock *m, struct macrn_vcpu *v, uint32_t id)
{
	struct mock_script *s = script_of(m, v, id);

	if (s && s->pos == v->idx) {
		s->pos++;
		s->done++;
	}
}

/*
 * The hypervisor resumes vCPU @id after its request completed (COMPLETE):
 * it loads what a read returned, checked against the script, and frees
 * the slot.  @check is false when nobody answered (CLEAR_VM_IOREQ).
 */
static void resume_vcpu(struct vcpu_mock *m, struct macrn_vm *vm, uint32_t id, bool check)
{
	struct macrn_vcpu *v = &vm->vcpu[id];
	struct acrn_io_request *s = slot_of(vm, id);
	uint64_t got;

	if (check && v->expect_read) {
		uint64_t size = s->reqs.mmio_request.size;

		got = s->type == ACRN_IOREQ_TYPE_MMIO ? s->reqs.mmio_request.value
						     : (uint64_t)s->reqs.pio_request.value;
		got &= mock_len_mask(size);
		if (got != v->expect)
			mock_fail(m, "vCPU %u step %zu: %s read of %llu bytes at 0x%llx completed with "
				  "0x%llx, the guest expected 0x%llx", id, v->idx,
				  s->type == ACRN_IOREQ_TYPE_MMIO ? "MMIO"
				  : s->type == ACRN_IOREQ_TYPE_PCICFG ? "PCI config" : "port",
				  (unsigned long long)size,
				  (unsigned long long)(s->type == ACRN_IOREQ_TYPE_PCICFG
							       ? s->reqs.pci_request.reg
							       : s->reqs.mmio_request.address),
				  (unsigned long long)got, (unsigned long long)v->expect);
	}
	set_state(s, ACRN_IOREQ_STATE_FREE);
	v->busy = false;
	v->kernel = false;
	v->expect_read = false;
	v->item++;
}

/* ioreq.c ioreq_complete_request(): COMPLETE, then the notify hypercall. */
static void complete_slot(struct vcpu_mock *m, struct macrn_vm *vm, uint32_t id, bool check)
{
	set_state(slot_of(vm, id), ACRN_IOREQ_STATE_COMPLETE);
	resume_vcpu(m, vm, id, check);
}

static struct macrn_evfd *ioeventfd_range(struct macrn_vm *vm, const struct acrn_io_request *s)
{
	bool pio = s->type == ACRN_IOREQ_TYPE_PORTIO;
	uint64_t a = s->reqs.mmio_request.address, size = s->reqs.mmio_request.size;

	if (s->type > ACRN_IOREQ_TYPE_MMIO)
		return NULL;
	for (size_t i = 0; i < vm->nioevfds; i++) {
		struct macrn_evfd *p = &vm->ioevfds[i];

		if (p->pio == pio && a >= p->addr && a + size - 1 <= p->addr + p->len - 1)
			return p;
	}
	return NULL;
}

/* ioeventfd.c acrn_ioeventfd_handler(): reads see 0, matching writes signal. */
static void ioeventfd_handle(struct macrn_vm *vm, struct acrn_io_request *s)
{
	bool pio = s->type == ACRN_IOREQ_TYPE_PORTIO;
	uint64_t a = s->reqs.mmio_request.address, size = s->reqs.mmio_request.size;
	uint64_t val = pio ? s->reqs.pio_request.value : s->reqs.mmio_request.value;

	if (s->reqs.mmio_request.direction == ACRN_IOREQ_DIR_READ) {
		if (pio)
			s->reqs.pio_request.value = 0;
		else
			s->reqs.mmio_request.value = 0;
		return;
	}
	for (size_t i = 0; i < vm->nioevfds; i++) {
		struct macrn_evfd *p = &vm->ioevfds[i];

		if (p->pio == pio && p->addr == a && p->len >= size && (p->wildcard || p->data == val)) {
			eventfd_signal1(p->fd);
			return;
		}
	}
}

/* ioreq.c acrn_ioreq_dispatch() for one PENDING slot. */
static void dispatch(struct vcpu_mock *m, struct macrn_vm *vm, uint32_t id)
{
	struct acrn_io_request *s = slot_of(vm, id);
	struct acrn_pio_request *pio = &s->reqs.pio_request;

	if (slot_state(s) != ACRN_IOREQ_STATE_PENDING)
		return;
	if (s->type == ACRN_IOREQ_TYPE_PORTIO && pio->address == 0xcf8) {
		if (pio->direction == ACRN_IOREQ_DIR_WRITE)
			vm->pci_conf_addr = pio->value;
		else
			pio->value = vm->pci_conf_addr;
		complete_slot(m, vm, id, true);
		return;
	}
	if (s->type == ACRN_IOREQ_TYPE_PORTIO && pio->address >= 0xcfc && pio->address < 0xcfc + 4) {
		uint32_t conf = vm->pci_conf_addr, off = (uint32_t)(pio->address - 0xcfc);

		if (!(conf & PCI_CONF_ENABLE)) {
			if (pio->direction == ACRN_IOREQ_DIR_READ)
				pio->value = 0xffffffffu;
			complete_slot(m, vm, id, true);
			return;
		}
		s->type = ACRN_IOREQ_TYPE_PCICFG;
		s->reqs.pci_request.bus = (conf >> 16) & 0xff;
		s->reqs.pci_request.dev = (conf >> 11) & 0x1f;
		s->reqs.pci_request.func = (conf >> 8) & 0x7;
		s->reqs.pci_request.reg = (conf & 0xfc) + ((conf >> 16) & 0xf00) + off;
	}
	if (ioeventfd_range(vm, s)) {
		/* The in-kernel client's thread handles and completes it at once. */
		s->kernel_handled = 1;
		set_state(s, ACRN_IOREQ_STATE_PROCESSING);
		vm->vcpu[id].kernel = true;
		ioeventfd_handle(vm, s);
		complete_slot(m, vm, id, true);
		return;
	}
	if (!vm->client)
		return; /* no client to take it: it waits */
	s->kernel_handled = 0;
	set_state(s, ACRN_IOREQ_STATE_PROCESSING);
	vm->ioreqs_map |= 1u << id;
}

/* The hypervisor posts a request of vCPU @id (it is paused until completed). */
static void post(struct vcpu_mock *m, struct macrn_vm *vm, uint32_t id, uint32_t type, bool write,
		 uint64_t addr, uint32_t size, uint64_t value)
{
	struct acrn_io_request *s = slot_of(vm, id);
	struct macrn_vcpu *v = &vm->vcpu[id];

	memset(s, 0, offsetof(struct acrn_io_request, processed));
	s->type = type;
	s->reqs.mmio_request.direction = write ? ACRN_IOREQ_DIR_WRITE : ACRN_IOREQ_DIR_READ;
	s->reqs.mmio_request.address = addr;
	s->reqs.mmio_request.size = size;
	if (!write)
		value = STALE_READ;
	if (type == ACRN_IOREQ_TYPE_MMIO)
		s->reqs.mmio_request.value = write ? value & mock_len_mask(size) : value;
	else
		s->reqs.pio_request.value = (uint32_t)(write ? value & mock_len_mask(size) : value);
	v->busy = true;
	v->kernel = false;
	set_state(s, ACRN_IOREQ_STATE_PENDING);
	dispatch(m, vm, id);
}

/* ------------------------------------------------------------------------ */
/* The scripted guest                                                         */

static bool guest_ram(struct macrn_vm *vm, uint64_t gpa, bool write, void **host)
{
	for (size_t i = 0; i < vm->nsegs; i++) {
		const struct macrn_memseg *g = &vm->segs[i];

		if (g->type != ACRN_MEMMAP_RAM || gpa < g->gpa || gpa + 8 > g->gpa + g->len)
			continue;
		if (write && !(g->attr & ACRN_MEM_ACCESS_WRITE))
			return false; /* EPT violation on a read-only page: an MMIO write */
		*host = (void *)(uintptr_t)(g->hva + (gpa - g->gpa));
		return true;
	}
	return false;
}

/* Where a portable id lives in acrn_regs (the register file the hypervisor was given). */
static uint64_t *regs_field(struct acrn_regs *r, uint64_t reg)
{
	static const uint8_t gpr[] = { ACRN_RAX, ACRN_RBX, ACRN_RCX, ACRN_RDX,
				       ACRN_RSI, ACRN_RDI, ACRN_RSP, ACRN_RBP };

	if (reg >= VCPU_REG_X86_RAX && reg <= VCPU_REG_X86_RBP)
		return &r->gprs[gpr[reg - VCPU_REG_X86_RAX]];
	if (reg >= VCPU_REG_X86_R8 && reg <= VCPU_REG_X86_R15)
		return &r->gprs[8 + (reg - VCPU_REG_X86_R8)];
	switch (reg) {
	case VCPU_REG_X86_RIP: return &r->rip;
	case VCPU_REG_X86_RFLAGS: return &r->rflags;
	case VCPU_REG_X86_CR0: return &r->cr0;
	case VCPU_REG_X86_CR3: return &r->cr3;
	case VCPU_REG_X86_CR4: return &r->cr4;
	case VCPU_REG_X86_EFER: return &r->ia32_efer;
	default: return NULL;
	}
}

/* Items of a step that become requests: port I/O repeats, PCI goes via 0xCF8 then 0xCFC. */
static uint32_t step_items(const struct vcpu_mock_step *s)
{
	switch (s->op) {
	case VCPU_MOCK_PIO_OUT:
	case VCPU_MOCK_PIO_IN:
		return s->count ? s->count : 1;
	case VCPU_MOCK_ACRN_PCI_READ:
	case VCPU_MOCK_ACRN_PCI_WRITE:
		return 2;
	default:
		return 1;
	}
}

static void post_raw(struct vcpu_mock *m, struct macrn_vm *vm, uint32_t id)
{
	struct acrn_io_request *s = slot_of(vm, id);
	struct macrn_vcpu *v = &vm->vcpu[id];
	struct acrn_io_request raw;

	(void)m;
	memcpy(&raw, v->step.raw, sizeof(raw));
	memcpy(s, &raw, offsetof(struct acrn_io_request, processed));
	set_state(s, raw.processed);
	v->busy = true;
	v->expect_read = false;
	if (raw.processed == ACRN_IOREQ_STATE_PROCESSING && raw.kernel_handled) {
		v->kernel = true; /* an in-kernel client's: it never reaches the VMM */
	} else if (raw.processed == ACRN_IOREQ_STATE_PROCESSING) {
		if (vm->client)
			vm->ioreqs_map |= 1u << id;
	} else {
		v->stuck = true; /* a state nobody completes: the vCPU waits for a reset */
	}
}

/* Post item v->item of the step in flight. */
static void post_item(struct vcpu_mock *m, struct macrn_vm *vm, uint32_t id)
{
	struct macrn_vcpu *v = &vm->vcpu[id];
	const struct vcpu_mock_step *s = &v->step;
	uint32_t k = v->item;
	uint64_t reg = s->addr & 0xfff;

	/* The step counts as done when its last request is handed out. */
	if (k + 1 == v->nitems)
		step_done(m, v, id);
	switch (s->op) {
	case VCPU_MOCK_MMIO_WRITE:
		post(m, vm, id, ACRN_IOREQ_TYPE_MMIO, true, s->addr, s->len, s->value);
		break;
	case VCPU_MOCK_MMIO_READ:
		v->expect = s->value & mock_len_mask(s->len);
		v->expect_read = true;
		post(m, vm, id, ACRN_IOREQ_TYPE_MMIO, false, s->addr, s->len, 0);
		break;
	case VCPU_MOCK_MEM_CHECK:
		v->expect = s->value;
		v->expect_read = true;
		post(m, vm, id, ACRN_IOREQ_TYPE_MMIO, false, s->addr, 8, 0);
		break;
	case VCPU_MOCK_MEM_WRITE:
		post(m, vm, id, ACRN_IOREQ_TYPE_MMIO, true, s->addr, 8, s->value);
		break;
	case VCPU_MOCK_PIO_OUT:
		post(m, vm, id, ACRN_IOREQ_TYPE_PORTIO, true, s->addr, s->len, s->value + k);
		break;
	case VCPU_MOCK_PIO_IN:
		v->expect = (s->value + k) & mock_len_mask(s->len);
		v->expect_read = true;
		post(m, vm, id, ACRN_IOREQ_TYPE_PORTIO, false, s->addr, s->len, 0);
		break;
	case VCPU_MOCK_ACRN_PCI_READ:
	case VCPU_MOCK_ACRN_PCI_WRITE:
		if (k == 0) {
			/* CONFIG_ADDRESS, with register bits 8-11 in 24-27 as the HSM decodes them. */
			uint32_t conf = PCI_CONF_ENABLE | (uint32_t)((s->addr >> 20) & 0xff) << 16 |
					(uint32_t)((s->addr >> 15) & 0x1f) << 11 |
					(uint32_t)((s->addr >> 12) & 7) << 8 | (uint32_t)(reg & 0xfc) |
					(uint32_t)(reg & 0xf00) << 16;
			post(m, vm, id, ACRN_IOREQ_TYPE_PORTIO, true, 0xcf8, 4, conf);
		} else if (s->op == VCPU_MOCK_ACRN_PCI_WRITE) {
			post(m, vm, id, ACRN_IOREQ_TYPE_PORTIO, true, 0xcfc + (reg & 3), s->len, s->value);
		} else {
			v->expect = s->value & mock_len_mask(s->len);
			v->expect_read = true;
			post(m, vm, id, ACRN_IOREQ_TYPE_PORTIO, false, 0xcfc + (reg & 3), s->len, 0);
		}
		break;
	case VCPU_MOCK_ACRN_RAW_SLOT:
		post_raw(m, vm, id);
		break;
	default:
		break;
	}
}

/* Start script step @idx; false when the vCPU cannot go on (the step failed). */
static bool start_step(struct vcpu_mock *m, struct macrn_vm *vm, uint32_t id, struct mock_script *sc)
{
	struct macrn_vcpu *v = &vm->vcpu[id];
	const struct vcpu_mock_step *s = &sc->steps[sc->pos];
	uint64_t val, *field;
	void *host;

	v->idx = sc->pos;
	v->step = *s;
	v->gen = sc->gen;
	v->item = 0;
	v->nitems = 0;
	switch (s->op) {
	case VCPU_MOCK_MEM_CHECK:
		if (guest_ram(vm, s->addr, false, &host)) {
			memcpy(&val, host, sizeof(val)); /* guest RAM is little-endian like the host */
			if (val != s->value)
				mock_fail(m, "vCPU %u step %zu: guest RAM at 0x%llx holds 0x%llx, expected "
					  "0x%llx", id, v->idx, (unsigned long long)s->addr,
					  (unsigned long long)val, (unsigned long long)s->value);
			step_done(m, v, id);
			return true;
		}
		break;
	case VCPU_MOCK_MEM_WRITE:
		if (guest_ram(vm, s->addr, true, &host)) {
			memcpy(host, &s->value, sizeof(s->value));
			step_done(m, v, id);
			return true;
		}
		break;
	case VCPU_MOCK_REG_CHECK:
		field = regs_field(&v->regs.vcpu_regs, s->reg);
		if (!field) {
			mock_fail(m, "vCPU %u step %zu: ACRN's registers have no 0x%llx", id, v->idx,
				  (unsigned long long)s->reg);
			return false;
		}
		if (*field != s->value)
			mock_fail(m, "vCPU %u step %zu: register 0x%llx holds 0x%llx, expected 0x%llx",
				  id, v->idx, (unsigned long long)s->reg, (unsigned long long)*field,
				  (unsigned long long)s->value);
		step_done(m, v, id);
		return true;
	case VCPU_MOCK_HLT:
		/* The hypervisor idles the vCPU itself: nothing for the VMM. */
		step_done(m, v, id);
		return true;
	case VCPU_MOCK_SPIN:
		v->spinning = true;
		return true;
	case VCPU_MOCK_MMIO_WRITE:
	case VCPU_MOCK_MMIO_READ:
	case VCPU_MOCK_PIO_OUT:
	case VCPU_MOCK_PIO_IN:
	case VCPU_MOCK_ACRN_PCI_READ:
	case VCPU_MOCK_ACRN_PCI_WRITE:
	case VCPU_MOCK_ACRN_RAW_SLOT:
		break;
	default:
		mock_fail(m, "vCPU %u step %zu: op %u has no ACRN counterpart", id, v->idx, s->op);
		return false;
	}
	v->nitems = step_items(s);
	return true;
}

/* Run vCPU @id until it waits for the VMM, spins, idles or fails. */
static void run_vcpu(struct vcpu_mock *m, struct macrn_vm *vm, uint32_t id)
{
	struct macrn_vcpu *v = &vm->vcpu[id];
	struct mock_script *sc;

	for (;;) {
		if (v->busy || v->stuck || v->spinning || vm->state != MACRN_RUNNING)
			return;
		if (v->item < v->nitems) {
			post_item(m, vm, id);
			continue;
		}
		sc = mock_script_find(m, id);
		if (!sc || sc->pos >= sc->nsteps)
			return; /* the guest idles */
		if (!start_step(m, vm, id, sc)) {
			v->stuck = true;
			return;
		}
	}
}

static void advance(struct vcpu_mock *m, struct macrn_vm *vm)
{
	if (!vm->slots)
		return;
	for (uint32_t i = 0; i < vm->vcpu_num; i++) {
		dispatch(m, vm, i); /* requests that waited for a client */
		run_vcpu(m, vm, i);
	}
}

/* A signal ended an ATTACH wait: the spinning guests' SPIN steps are over. */
static void end_spins(struct vcpu_mock *m, struct macrn_vm *vm)
{
	for (uint32_t i = 0; i < vm->vcpu_num; i++) {
		struct macrn_vcpu *v = &vm->vcpu[i];

		if (!v->spinning)
			continue;
		v->spinning = false;
		step_done(m, v, i);
	}
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
	complete_slot(m, vm, n.vcpu, true);
	advance(m, vm);
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
		complete_slot(m, vm, i, false);
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
		advance(m, vm);
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
				end_spins(m, vm);
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
		advance(m, vm);
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
		advance(m, vm);
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
