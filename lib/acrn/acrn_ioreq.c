// SPDX-License-Identifier: MIT
/*
 * ACRN: serving the I/O request page (see acrn.c for the model): claiming
 * the VM, scanning and decoding its slots, completing them, and kicks.
 */
#define _GNU_SOURCE
#include "acrn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Serving I/O requests                                                       */

static uint64_t len_mask(uint32_t len)
{
	return len >= 8 ? ~0ull : (1ull << (8 * len)) - 1;
}

static void put_le(uint8_t *p, uint64_t v, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, uint32_t len)
{
	uint64_t v = 0;

	for (uint32_t i = 0; i < len; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/*
 * Become the VM's server.  Serving is taken with one compare-and-swap on
 * .active and given back when vcpu_run() returns (acrn_run_end()), so two
 * threads can never both serve, whatever order their checks run in; serving
 * on costs one load.  The VM lock orders the hand-over of the serving
 * thread's plain fields (scan, deferred, bad_state) and of .server, which
 * kicks signal.
 */
static int claim_server(struct vcpu *cpu, struct acrn_vm_priv *p)
{
	struct vcpu *cur = NULL;

	if (atomic_load(&p->active) == cpu)
		return 0;
	/* The handle that serves is not looked at: its thread may be leaving. */
	if (!atomic_compare_exchange_strong(&p->active, &cur, cpu))
		return cpu_fail(cpu, -EBUSY,
				"another handle's thread already serves this VM: on ACRN one "
				"thread in vcpu_run() serves the I/O requests of all vCPUs");
	pthread_mutex_lock(&cpu->vm->lock);
	atomic_store(&p->server, cpu);
	pthread_mutex_unlock(&cpu->vm->lock);
	return 0;
}

/* vcpu_run() returns: another handle's thread may serve now. */
void acrn_run_end(struct vcpu *cpu)
{
	struct acrn_vm_priv *p = vm_priv(cpu->vm);
	struct vcpu *self = cpu;

	atomic_compare_exchange_strong(&p->active, &self, NULL);
}

static int notify(struct vcpu *cpu, struct acrn_vm_priv *p, uint32_t slot)
{
	struct acrn_ioreq_notify n = { .vmid = p->vmid, .reserved = 0, .vcpu = slot };
	int r = sys_ioctl(cpu->vm->hv, cpu->vm->fd, ACRN_IOCTL_NOTIFY_REQUEST_FINISH,
			  (unsigned long)&n);

	if (r < 0)
		return cpu_fail(cpu, r, "ACRN_IOCTL_NOTIFY_REQUEST_FINISH(vCPU %u) failed", slot);
	return 0;
}

/* Resuming service completes the power requests handed out last time. */
/*
 * A completion is checked against the reset generation, then written and
 * notified; a reset bumps the generation, then waits for a completion in
 * flight before CLEAR_VM_IOREQ.  With sequentially consistent atomics
 * either the server sees the new generation and sends nothing, or the
 * reset sees it completing and lets it finish first: a notify never lands
 * on a slot the reset already cleared (whatever it holds by then).
 */
static bool completion_begin(struct acrn_vm_priv *p, unsigned gen)
{
	atomic_store(&p->completing, 1);
	if (atomic_load(&p->reset_gen) == gen)
		return true;
	atomic_store(&p->completing, 0);
	return false;
}

static void completion_end(struct acrn_vm_priv *p)
{
	atomic_store(&p->completing, 0);
}

static int flush_deferred(struct vcpu *cpu, struct acrn_vm_priv *p)
{
	uint32_t d = p->deferred;
	int r = 0;

	if (!d)
		return 0;
	p->deferred = 0;
	if (!completion_begin(p, p->deferred_gen))
		return 0; /* CLEAR_VM_IOREQ completed them */
	for (uint32_t i = 0; i < ACRN_IO_REQUEST_MAX && r == 0; i++)
		if (d & (1u << i))
			r = notify(cpu, p, i);
	completion_end(p);
	return r;
}

static int malformed_request(struct vcpu *cpu, struct acrn_vm_priv *p, uint32_t slot,
			     const struct acrn_io_request *req, const char *what, unsigned long long v)
{
	int r;

	/*
	 * Completed unanswered so the vCPU is not stuck and the next
	 * vcpu_run() serves the others; the raw slot stays in the exit.
	 */
	cpu->exit.kind = VCPU_EXIT_UNKNOWN;
	memcpy(cpu->exit.u.raw, req, sizeof(cpu->exit.u.raw));
	r = notify(cpu, p, slot);
	if (r < 0)
		return r;
	return cpu_fail(cpu, -EPROTO, "vCPU %u: malformed ACRN I/O request (type %u): %s %llu",
			slot, req->type, what, v);
}

static bool power_event(struct vcpu *cpu, struct acrn_vm_priv *p, uint64_t port, uint32_t len,
			uint32_t value)
{
	struct vcpu_system_event *ev = &cpu->exit.u.system_event;
	uint32_t type;

	if (port == ACRN_RESET_PORT && len == 1 && (value & (ACRN_RESET_SYS | ACRN_RESET_FULL))) {
		type = VCPU_SYSTEM_EVENT_RESET;
	} else if (p->pm1a_port && port == p->pm1a_port && (value & ACRN_PM1_SLP_EN)) {
		uint32_t slp = (value >> ACRN_PM1_SLP_TYP_SHIFT) & ACRN_PM1_SLP_TYP_MASK;

		if (slp == ACRN_SLP_TYP_S5)
			type = VCPU_SYSTEM_EVENT_SHUTDOWN;
		else if (slp == ACRN_SLP_TYP_S3)
			type = VCPU_SYSTEM_EVENT_SUSPEND;
		else
			return false;
	} else {
		return false;
	}
	memset(ev, 0, sizeof(*ev));
	ev->type = type;
	ev->raw_type = (uint32_t)port; /* ACRN has no event codes: the port that carried it */
	ev->ndata = 1;
	ev->data[0] = value;
	cpu->exit.kind = VCPU_EXIT_SYSTEM_EVENT;
	return true;
}

/* Decode slot @slot (a validated copy in @req) into cpu->exit. */
static int decode(struct vcpu *cpu, struct acrn_vm_priv *p, uint32_t slot,
		  const struct acrn_io_request *req)
{
	struct vcpu_exit *e = &cpu->exit;
	struct vcpu_io *io = &e->u.io;
	uint32_t type = req->type;
	/* direction and size sit at the same offsets in all three request kinds */
	uint32_t dir = req->reqs.mmio_request.direction;
	uint64_t size = req->reqs.mmio_request.size;

	memset(&e->u, 0, sizeof(e->u));
	e->raw_reason = type;
	e->vcpu_id = slot;
	e->kind = VCPU_EXIT_NONE;
	if (type > ACRN_IOREQ_TYPE_PCICFG)
		return malformed_request(cpu, p, slot, req, "type", type);
	if (dir > ACRN_IOREQ_DIR_WRITE)
		return malformed_request(cpu, p, slot, req, "direction", dir);
	if (size != 1 && size != 2 && size != 4 && !(size == 8 && type == ACRN_IOREQ_TYPE_MMIO))
		return malformed_request(cpu, p, slot, req, "size", size);
	io->len = (uint32_t)size;
	io->is_write = dir == ACRN_IOREQ_DIR_WRITE;
	io->vcpu_id = slot;
	switch (type) {
	case ACRN_IOREQ_TYPE_PORTIO: {
		const struct acrn_pio_request *pio = &req->reqs.pio_request;

		if (pio->address > 0xffff || pio->address + size > 0x10000)
			return malformed_request(cpu, p, slot, req, "port", pio->address);
		if (io->is_write && power_event(cpu, p, pio->address, io->len,
						(uint32_t)(pio->value & len_mask(io->len))))
			return 0;
		io->addr = pio->address;
		if (io->is_write)
			put_le(io->data, pio->value, io->len);
		e->kind = VCPU_EXIT_PIO;
		return 0;
	}
	case ACRN_IOREQ_TYPE_MMIO: {
		const struct acrn_mmio_request *mmio = &req->reqs.mmio_request;

		if (mmio->address + size < mmio->address)
			return malformed_request(cpu, p, slot, req, "address", mmio->address);
		io->addr = mmio->address;
		if (io->is_write)
			put_le(io->data, mmio->value, io->len);
		e->kind = VCPU_EXIT_MMIO;
		return 0;
	}
	default: {
		const struct acrn_pci_request *pci = &req->reqs.pci_request;

		if (pci->bus > 0xff)
			return malformed_request(cpu, p, slot, req, "pci bus", pci->bus);
		if (pci->dev > 0x1f)
			return malformed_request(cpu, p, slot, req, "pci device", pci->dev);
		if (pci->func > 7)
			return malformed_request(cpu, p, slot, req, "pci function", pci->func);
		if (pci->reg > 0xfff || pci->reg + size > 0x1000)
			return malformed_request(cpu, p, slot, req, "pci register", pci->reg);
		io->addr = VCPU_PCI_CFG_ADDR(pci->bus, pci->dev, pci->func, pci->reg);
		if (io->is_write)
			put_le(io->data, pci->value, io->len);
		e->kind = VCPU_EXIT_PCI_CONFIG;
		return 0;
	}
	}
}

/*
 * Find the next request for userspace, starting after the last one served
 * so that a busy vCPU cannot starve the others.  Returns 1 with cpu->exit
 * filled, 0 when none is pending, or an error.
 */
static int scan(struct vcpu *cpu, struct acrn_vm_priv *p)
{
	struct acrn_vcpu_priv *cp = cpu->priv;
	const unsigned n = p->vcpu_num;

	for (unsigned k = 0; k < n; k++) {
		uint32_t slot = (p->scan + k) % n;
		struct acrn_io_request *s = &p->page->req_slot[slot];
		struct acrn_io_request req;
		uint32_t state = __atomic_load_n(&s->processed, __ATOMIC_ACQUIRE);
		int r;

		if (state > ACRN_IOREQ_STATE_FREE) {
			/* Reported once per value: the slot cannot be completed safely. */
			if (p->bad_state[slot] == state + 1)
				continue;
			p->bad_state[slot] = state + 1;
			memset(&cpu->exit.u, 0, sizeof(cpu->exit.u));
			cpu->exit.kind = VCPU_EXIT_UNKNOWN;
			cpu->exit.vcpu_id = slot;
			cpu->exit.raw_reason = s->type;
			memcpy(cpu->exit.u.raw, s, sizeof(cpu->exit.u.raw));
			return cpu_fail(cpu, -EPROTO,
					"vCPU %u: ACRN I/O request slot in unknown state %u", slot,
					state);
		}
		p->bad_state[slot] = 0;
		if (state != ACRN_IOREQ_STATE_PROCESSING)
			continue;
		/* One copy after the acquire: every later check sees the same bytes. */
		memcpy(&req, s, sizeof(req));
		if (req.kernel_handled)
			continue; /* an in-kernel client (ioeventfd) owns it */
		p->scan = (slot + 1) % n;
		r = decode(cpu, p, slot, &req);
		if (r < 0)
			return r;
		cp->cur_valid = true;
		cp->cur_slot = slot;
		cp->cur_type = req.type;
		cp->cur_gen = atomic_load(&p->reset_gen);
		return 1;
	}
	return 0;
}

/*
 * A kick forwarded to the VM from any handle becomes this handle's, which
 * the core's run loop then takes (and returns -EINTR).
 */
static bool take_vm_kick(struct vcpu *cpu, struct acrn_vm_priv *p)
{
	if (!atomic_exchange(&p->kick, 0))
		return false;
	atomic_store(&cpu->kick_pending, 1);
	return true;
}

int acrn_run_once(struct vcpu *cpu)
{
	struct acrn_vm_priv *p = vm_priv(cpu->vm);
	int r;

	r = claim_server(cpu, p);
	if (r < 0)
		return r;
	r = flush_deferred(cpu, p);
	if (r < 0)
		return r;
	/* Before serving, so a stream of requests cannot starve a kick. */
	if (take_vm_kick(cpu, p))
		return -EINTR;
	r = scan(cpu, p);
	if (r != 0)
		return r < 0 ? r : 0;
	if (!atomic_load(&p->client))
		return cpu_fail(cpu, -ENODEV,
				"no I/O request client: start the VM with vcpu_vm_start() first");
	/*
	 * Again right before blocking: a kick landing between here and the
	 * driver's wait is only seen at the next request or signal (there is
	 * no immediate-exit flag), so this window is kept to a few
	 * instructions.
	 */
	if (take_vm_kick(cpu, p))
		return -EINTR;
	r = sys_ioctl(cpu->vm->hv, cpu->vm->fd, ACRN_IOCTL_ATTACH_IOREQ_CLIENT, 0);
	if (r == -ENODEV)
		return cpu_fail(cpu, r, "the VM's I/O request client was destroyed");
	if (r < 0 && r != -EINTR)
		return cpu_fail(cpu, r, "ACRN_IOCTL_ATTACH_IOREQ_CLIENT failed");
	r = scan(cpu, p);
	if (r != 0)
		return r < 0 ? r : 0;
	/* Woken by a signal (the HSM returns 0 then): let the core look at kicks. */
	take_vm_kick(cpu, p);
	return -EINTR;
}

int acrn_complete(struct vcpu *cpu, int result)
{
	(void)result;
	struct acrn_vm_priv *p = vm_priv(cpu->vm);
	struct acrn_vcpu_priv *cp = cpu->priv;
	const struct vcpu_io *io = &cpu->exit.u.io;
	struct acrn_io_request *s;
	uint64_t v;
	int r;

	if (!cp->cur_valid)
		return 0;
	cp->cur_valid = false;
	s = &p->page->req_slot[cp->cur_slot];
	if (cpu->exit.kind == VCPU_EXIT_SYSTEM_EVENT) {
		/*
		 * Like acrn-dm, hold the power request: the vCPU stays at its
		 * write while the VMM resets or powers off.  A later
		 * vcpu_run() completes it, unless a reset already did.
		 */
		if (atomic_load(&p->reset_gen) == cp->cur_gen) {
			p->deferred |= 1u << cp->cur_slot;
			p->deferred_gen = cp->cur_gen;
		}
		return 0;
	}
	/* vcpu_vm_reset() meanwhile: CLEAR_VM_IOREQ completed it, the slot is not ours. */
	if (!completion_begin(p, cp->cur_gen))
		return 0;
	if (!cpu->acc.is_write) {
		/* acrn-dm answers a read it could not emulate with all-ones. */
		if (io->response == VCPU_IO_HANDLED)
			v = get_le(io->data, cpu->acc.len);
		else
			v = len_mask(cpu->acc.len);
		if (cp->cur_type == ACRN_IOREQ_TYPE_MMIO)
			s->reqs.mmio_request.value = v;
		else if (cp->cur_type == ACRN_IOREQ_TYPE_PORTIO)
			s->reqs.pio_request.value = (uint32_t)v;
		else
			s->reqs.pci_request.value = (uint32_t)v;
	}
	/* RETRY was refused by the core and turned into FAULT (hv->io_responses). */
	r = notify(cpu, p, cp->cur_slot);
	completion_end(p);
	return r;
}

/*
 * There is no immediate-exit flag: a kick on any handle becomes the VM's,
 * for whichever thread serves it, and that thread is signalled (the core
 * signals it itself when the kicked handle is the serving one).  Only
 * async-signal-safe atomics; vcpu_destroy() waits for kickers in flight.
 */
void acrn_set_immediate_exit(struct vcpu *cpu, int value)
{
	struct acrn_vm_priv *p = vm_priv(cpu->vm);
	const struct vcpu_hv *hv = cpu->vm->hv;
	struct vcpu *s;

	if (!value || !atomic_exchange(&cpu->kick_pending, 0))
		return;
	atomic_fetch_add(&p->kickers, 1);
	atomic_store(&p->kick, 1);
	s = atomic_load(&p->server);
	if (s && s != cpu && atomic_load(&s->in_run) == 1)
		hv->sys->signal_thread(hv->sys_ctx, atomic_load(&s->tid), hv->kick_signal);
	atomic_fetch_sub(&p->kickers, 1);
}

