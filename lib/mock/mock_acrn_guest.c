// SPDX-License-Identifier: MIT
/*
 * The modelled ACRN hypervisor's side (see mock_acrn.c for the model): the
 * requests its vCPUs post in the I/O request page, the scripted guests
 * that post them, and the eventfds the HSM signals for its in-kernel
 * clients.
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
void macrn_complete_slot(struct vcpu_mock *m, struct macrn_vm *vm, uint32_t id, bool check)
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
		macrn_complete_slot(m, vm, id, true);
		return;
	}
	if (s->type == ACRN_IOREQ_TYPE_PORTIO && pio->address >= 0xcfc && pio->address < 0xcfc + 4) {
		uint32_t conf = vm->pci_conf_addr, off = (uint32_t)(pio->address - 0xcfc);

		if (!(conf & PCI_CONF_ENABLE)) {
			if (pio->direction == ACRN_IOREQ_DIR_READ)
				pio->value = 0xffffffffu;
			macrn_complete_slot(m, vm, id, true);
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
		macrn_complete_slot(m, vm, id, true);
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

void macrn_advance(struct vcpu_mock *m, struct macrn_vm *vm)
{
	if (!vm->slots)
		return;
	for (uint32_t i = 0; i < vm->vcpu_num; i++) {
		dispatch(m, vm, i); /* requests that waited for a client */
		run_vcpu(m, vm, i);
	}
}

/* A signal ended an ATTACH wait: the spinning guests' SPIN steps are over. */
void macrn_end_spins(struct vcpu_mock *m, struct macrn_vm *vm)
{
	for (uint32_t i = 0; i < vm->vcpu_num; i++) {
		struct macrn_vcpu *v = &vm->vcpu[i];

		if (!v->spinning)
			continue;
		v->spinning = false;
		step_done(m, v, i);
	}
}

