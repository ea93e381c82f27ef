// SPDX-License-Identifier: MIT
/*
 * The ACRN backend: /dev/acrn_hsm, one VM per open file (shared/abi/acrn.md).
 *
 * ACRN has no vCPU fd and no run call.  The hypervisor schedules the vCPUs;
 * a vCPU whose access it cannot handle is paused and its request posted in
 * slot n (= its vCPU id) of a 4 KiB page the library registers at
 * CREATE_VM.  One VMM thread blocks in ATTACH_IOREQ_CLIENT, serves each slot
 * in PROCESSING state and completes it with NOTIFY_REQUEST_FINISH.
 *
 * Threading model (include/vcpu/vcpu.h, vcpu_run()): vcpu_run() on any vCPU
 * handle of the VM makes the calling thread the VM's I/O-request server.  It
 * serves every vCPU, one request per run_once()/complete() cycle; the exit's
 * vcpu_id says whose.  A second concurrent server gets -EBUSY: per-vCPU
 * threads would all wake in ATTACH for the same requests (the HSM keeps its
 * "pending" bit until NOTIFY), so they would spin rather than share.
 *
 * Everything in the shared page is written by the hypervisor and the HSM:
 * a slot is copied once (after an acquire load of its state) and the copy is
 * validated before use.
 */
#define _GNU_SOURCE
#include "../core/internal.h"
#include "acrn_abi.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* drivers/virt/acrn/acrn_drv.h ACRN_MEM_MAPPING_MAX: the HSM's RAM mapping table. */
#define ACRN_MAX_MEMSEGS 256

enum acrn_vm_state { VM_CREATED, VM_RUNNING, VM_PAUSED };

struct acrn_hv_priv {
	unsigned next_name; /* guarded by hv->lock */
};

struct acrn_vm_priv {
	struct acrn_io_request_buffer *page; /* 4 KiB, page aligned, registered at CREATE_VM */
	uint16_t vmid, vcpu_num;
	uint32_t pm1a_port;                  /* 0: none */
	enum acrn_vm_state state;            /* VM-level calls, under vm->lock */
	atomic_bool client;                  /* CREATE_IOREQ_CLIENT done */
	uint32_t bound;                      /* vCPU ids with a handle, under vm->lock */
	/* The serving thread: its handle, kicks forwarded to it, resets. */
	_Atomic(struct vcpu *) server;
	/* The handle whose thread serves right now (inside vcpu_run()), or NULL. */
	_Atomic(struct vcpu *) active;
	atomic_int kick;                     /* a kick for whichever thread serves */
	atomic_int kickers;                  /* kicks reading .server right now */
	atomic_uint reset_gen;               /* bumped by vcpu_vm_reset() */
	atomic_int completing;               /* the server is between its gen check and NOTIFY */
	/* Only the serving thread touches these (claiming orders the hand-over). */
	unsigned scan;                       /* first slot of the next scan (fairness) */
	uint32_t deferred;                   /* slots of power requests not notified yet */
	unsigned deferred_gen;
	uint32_t bad_state[ACRN_IO_REQUEST_MAX]; /* last unknown state reported, + 1 */
};

struct acrn_vcpu_priv {
	struct acrn_vcpu_regs regs; /* what the hypervisor was last given */
	/* The request being served by this handle's vcpu_run(). */
	bool cur_valid;
	uint32_t cur_slot, cur_type;
	unsigned cur_gen;
};

static struct acrn_vm_priv *vm_priv(const struct vcpu_vm *vm)
{
	return vm->priv;
}

/* ------------------------------------------------------------------------ */
/* Handle and capabilities                                                    */

static int acrn_hv_init(struct vcpu_hv *hv)
{
	if (hv->arch != VCPU_ARCH_X86_64)
		return hv_fail(hv, -EOPNOTSUPP, "ACRN guests are x86_64 only");
	hv->priv = calloc(1, sizeof(struct acrn_hv_priv));
	if (!hv->priv)
		return hv_fail(hv, -ENOMEM, "cannot allocate ACRN state");
	/* A request completed unanswered fails the access (reads all ones, as acrn-dm). */
	hv->io_responses = 1u << VCPU_IO_FAULT;
	return 0;
}

static void acrn_hv_fini(struct vcpu_hv *hv)
{
	free(hv->priv);
	hv->priv = NULL;
}

/*
 * The HSM has no capability query: these are facts of its ABI (acrn.md),
 * the same for every VM.
 */
static int acrn_check(struct vcpu_hv *hv, int fd, enum vcpu_cap cap, uint64_t *value, char *err)
{
	(void)hv;
	(void)fd;
	switch (cap) {
	case VCPU_CAP_MAX_VCPUS:
	case VCPU_CAP_MAX_VCPU_ID:
		*value = ACRN_IO_REQUEST_MAX; /* one request slot per vCPU */
		return 0;
	case VCPU_CAP_NR_MEMSLOTS:
		*value = ACRN_MAX_MEMSEGS;
		return 0;
	case VCPU_CAP_READONLY_MEM: /* a memseg without WRITE: writes become MMIO requests */
	case VCPU_CAP_IRQFD:        /* MSI only (VCPU_IRQFD_MSI) */
	case VCPU_CAP_IOEVENTFD:
	case VCPU_CAP_IRQCHIP:      /* the hypervisor's vIOAPIC/vPIC/vLAPIC */
	case VCPU_CAP_SYSTEM_EVENT_DATA:
		*value = 1;
		return 0;
	case VCPU_CAP_IMMEDIATE_EXIT: /* no such flag: see acrn_set_immediate_exit() */
	case VCPU_CAP_ONE_REG:
	case VCPU_CAP_ARM_PSCI_0_2:
	case VCPU_CAP_ARM_IPA_BITS:
	case VCPU_CAP_ARM_SYSTEM_SUSPEND:
	case VCPU_CAP_ARM_SMCCC_FILTER:
		*value = 0;
		return 0;
	default:
		return vcpu_fail(err, -EINVAL, "unknown capability %d", (int)cap);
	}
}

/* ------------------------------------------------------------------------ */
/* VMs                                                                        */

static int check_config(struct vcpu_vm *vm, const struct vcpu_vm_config *cfg)
{
	if (memchr(cfg->name, '\0', sizeof(cfg->name)) == NULL)
		return vm_fail(vm, -EINVAL, "the ACRN VM name has at most %d characters",
			       ACRN_NAME_LEN - 1);
	if (cfg->x86_pm1a_cnt_port > 0xffff)
		return vm_fail(vm, -EINVAL, "PM1a control port 0x%x is not a port",
			       cfg->x86_pm1a_cnt_port);
	return 0;
}

/*
 * The hypervisor knows post-launched VMs by name, so a generated one is
 * unique per process and VM: "lv", the pid and a counter, 14 characters.
 */
static void make_name(struct vcpu_hv *hv, const struct vcpu_vm_config *cfg, uint8_t *name)
{
	struct acrn_hv_priv *hp = hv->priv;
	char buf[ACRN_NAME_LEN + 8];
	unsigned n;

	if (cfg->name[0]) {
		memcpy(name, cfg->name, ACRN_NAME_LEN);
		return;
	}
	pthread_mutex_lock(&hv->lock);
	n = hp->next_name++;
	pthread_mutex_unlock(&hv->lock);
	snprintf(buf, sizeof(buf), "lv%08x%04x", (unsigned)getpid(), n & 0xffff);
	memset(name, 0, ACRN_NAME_LEN);
	memcpy(name, buf, ACRN_NAME_LEN - 1);
}

static int acrn_vm_create(struct vcpu_vm *vm, const struct vcpu_vm_config *cfg)
{
	struct vcpu_hv *hv = vm->hv;
	struct acrn_vm_creation c;
	struct acrn_vm_priv *p;
	int fd, r;

	r = check_config(vm, cfg);
	if (r < 0)
		return r;
	p = calloc(1, sizeof(*p));
	if (!p)
		return vm_fail(vm, -ENOMEM, "cannot allocate ACRN VM state");
	/* acrn.md §1: the HSM pins the page holding ioreq_buf; slot 0 is its start. */
	p->page = aligned_alloc(4096, sizeof(*p->page));
	if (!p->page) {
		free(p);
		return vm_fail(vm, -ENOMEM, "cannot allocate the I/O request page");
	}
	memset(p->page, 0, sizeof(*p->page));
	p->pm1a_port = cfg->x86_pm1a_cnt_port;
	p->state = VM_CREATED;

	/* One VM per open file: a fresh open of the same node holds this one. */
	fd = hv->sys->open(hv->sys_ctx, hv->path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = vm_fail(vm, fd, "cannot open %s for a new VM", hv->path);
		goto fail;
	}
	memset(&c, 0, sizeof(c));
	make_name(hv, cfg, c.name);
	c.ioreq_buf = (uint64_t)(uintptr_t)p->page;
	c.cpu_affinity = cfg->cpu_affinity; /* 0: the hypervisor's configured CPUs */
	r = sys_ioctl(hv, fd, ACRN_IOCTL_CREATE_VM, (unsigned long)&c);
	if (r < 0) {
		vm_fail(vm, r, "ACRN_IOCTL_CREATE_VM(name \"%.15s\", cpu_affinity 0x%llx) failed",
			(const char *)c.name, (unsigned long long)cfg->cpu_affinity);
		goto fail_fd;
	}
	/* The count comes from the driver: it bounds every slot index we use. */
	if (c.vcpu_num == 0 || c.vcpu_num > ACRN_IO_REQUEST_MAX) {
		r = vm_fail(vm, -EPROTO, "ACRN created a VM with %u vCPUs (1..%d expected)",
			    c.vcpu_num, ACRN_IO_REQUEST_MAX);
		sys_ioctl(hv, fd, ACRN_IOCTL_DESTROY_VM, 0);
		goto fail_fd;
	}
	p->vmid = c.vmid;
	p->vcpu_num = c.vcpu_num;
	vm->fd = fd;
	vm->max_regions = ACRN_MAX_MEMSEGS;
	vm->priv = p;
	return 0;

fail_fd:
	sys_close(hv, fd);
fail:
	free(p->page);
	free(p);
	return r;
}

/*
 * acrn-dm's teardown order: the I/O request client, then the VM.  The
 * request page stays pinned, the hypervisor free to write it, until
 * DESTROY_VM succeeds; if it fails, nothing is freed and the handle stays,
 * so the VMM can try again (hsm.c acrn_vm_destroy() clears its "destroyed"
 * mark on failure, so a second call really asks again).
 */
static int acrn_vm_destroy(struct vcpu_vm *vm)
{
	struct acrn_vm_priv *p = vm_priv(vm);
	struct vcpu_hv *hv = vm->hv;
	int r;

	if (atomic_load(&p->client) &&
	    sys_ioctl(hv, vm->fd, ACRN_IOCTL_DESTROY_IOREQ_CLIENT, 0) == 0)
		atomic_store(&p->client, false);
	r = sys_ioctl(hv, vm->fd, ACRN_IOCTL_DESTROY_VM, 0);
	if (r < 0)
		return vm_fail(vm, r, "ACRN_IOCTL_DESTROY_VM failed: the VM and its pinned request "
			       "page are kept; destroy it again");
	sys_close(hv, vm->fd);
	free(p->page);
	free(p);
	vm->priv = NULL;
	return 0;
}

static int acrn_vm_map(struct vcpu_vm *vm, const struct vcpu_region *reg, bool remove)
{
	struct acrn_vm_memmap m = {
		.type = ACRN_MEMMAP_RAM,
		.user_vm_pa = reg->gpa,
		.vma_base = (uint64_t)(uintptr_t)reg->host,
		.len = reg->size,
	};
	int r;

	/* drivers/virt/acrn/mm.c: UNSET_MEMSEG refuses RAM; pinned RAM goes at DESTROY_VM. */
	if (remove)
		return vm_fail(vm, -EOPNOTSUPP,
			       "ACRN cannot unmap guest RAM (0x%llx+0x%llx): it stays mapped until "
			       "the VM is destroyed",
			       (unsigned long long)reg->gpa, (unsigned long long)reg->size);
	if (reg->flags & VCPU_MEM_LOG_DIRTY)
		return vm_fail(vm, -EOPNOTSUPP, "ACRN has no dirty-page logging");
	/* The HSM maps RAM write-back whatever type bits we pass (acrn-dm passes none). */
	m.attr = ACRN_MEM_ACCESS_READ | ACRN_MEM_ACCESS_EXEC |
		 (reg->flags & VCPU_MEM_READONLY ? 0 : ACRN_MEM_ACCESS_WRITE);
	r = sys_ioctl(vm->hv, vm->fd, ACRN_IOCTL_SET_MEMSEG, (unsigned long)&m);
	if (r < 0)
		return vm_fail(vm, r, "ACRN_IOCTL_SET_MEMSEG(RAM 0x%llx+0x%llx, attr 0x%x) failed",
			       (unsigned long long)reg->gpa, (unsigned long long)reg->size, m.attr);
	return 0;
}

static int acrn_vm_irq_line(struct vcpu_vm *vm, uint32_t irq, int level)
{
	uint64_t op = level ? ACRN_GSI_SET_HIGH : ACRN_GSI_SET_LOW;
	int r = sys_ioctl(vm->hv, vm->fd, ACRN_IOCTL_SET_IRQLINE,
			  (unsigned long)((uint64_t)irq | op << 32));

	if (r < 0)
		return vm_fail(vm, r, "ACRN_IOCTL_SET_IRQLINE(GSI %u, %s) failed", irq,
			       level ? "high" : "low");
	return 0;
}

static int acrn_vm_start(struct vcpu_vm *vm)
{
	struct acrn_vm_priv *p = vm_priv(vm);
	int r = 0;

	pthread_mutex_lock(&vm->lock);
	if (p->state == VM_RUNNING)
		goto out;
	/* acrn-dm order (acrn.md §1): the client exists before the first request. */
	if (!atomic_load(&p->client)) {
		r = sys_ioctl(vm->hv, vm->fd, ACRN_IOCTL_CREATE_IOREQ_CLIENT, 0);
		if (r < 0) {
			vm_fail(vm, r, "ACRN_IOCTL_CREATE_IOREQ_CLIENT failed");
			goto out;
		}
		atomic_store(&p->client, true);
	}
	r = sys_ioctl(vm->hv, vm->fd, ACRN_IOCTL_START_VM, 0);
	if (r < 0) {
		vm_fail(vm, r, "ACRN_IOCTL_START_VM failed");
		goto out;
	}
	p->state = VM_RUNNING;
out:
	pthread_mutex_unlock(&vm->lock);
	return r;
}

static int pause_locked(struct vcpu_vm *vm, struct acrn_vm_priv *p)
{
	int r = sys_ioctl(vm->hv, vm->fd, ACRN_IOCTL_PAUSE_VM, 0);

	if (r < 0)
		return vm_fail(vm, r, "ACRN_IOCTL_PAUSE_VM failed");
	if (p->state == VM_RUNNING)
		p->state = VM_PAUSED;
	return 0;
}

static int acrn_vm_pause(struct vcpu_vm *vm)
{
	int r;

	pthread_mutex_lock(&vm->lock);
	r = pause_locked(vm, vm_priv(vm));
	pthread_mutex_unlock(&vm->lock);
	return r;
}

/*
 * acrn-dm's reset (acrn.md §1 step 10): pause, complete every pending
 * request, reset; the VMM then sets boot registers and starts again.  The
 * generation is bumped first so a request being served when the reset
 * happened is not completed a second time (its slot may hold a new one).
 */
static int acrn_vm_reset(struct vcpu_vm *vm)
{
	struct acrn_vm_priv *p = vm_priv(vm);
	int r = 0;

	pthread_mutex_lock(&vm->lock);
	if (p->state == VM_CREATED)
		goto out; /* never started since creation or the last reset */
	if (p->state == VM_RUNNING) {
		r = pause_locked(vm, p);
		if (r < 0)
			goto out;
	}
	atomic_fetch_add(&p->reset_gen, 1);
	/* A completion already past its check finishes first (completion_begin()). */
	while (atomic_load(&p->completing))
		sched_yield();
	r = sys_ioctl(vm->hv, vm->fd, ACRN_IOCTL_CLEAR_VM_IOREQ, 0);
	if (r < 0) {
		vm_fail(vm, r, "ACRN_IOCTL_CLEAR_VM_IOREQ failed");
		goto out;
	}
	r = sys_ioctl(vm->hv, vm->fd, ACRN_IOCTL_RESET_VM, 0);
	if (r < 0) {
		vm_fail(vm, r, "ACRN_IOCTL_RESET_VM failed");
		goto out;
	}
	p->state = VM_CREATED;
out:
	pthread_mutex_unlock(&vm->lock);
	return r;
}

static int acrn_vm_irqfd(struct vcpu_vm *vm, const struct vcpu_irqfd *in)
{
	struct acrn_irqfd a = { .fd = in->fd, .msi = { in->msi_addr, in->msi_data } };
	int r;

	if (!(in->flags & VCPU_IRQFD_MSI))
		return vm_fail(vm, -EINVAL, "ACRN irqfds inject MSIs: set VCPU_IRQFD_MSI and msi_*");
	if (in->flags & VCPU_IRQFD_LEVEL)
		return vm_fail(vm, -EINVAL, "ACRN irqfds are edge (MSI) only");
	if (in->irq)
		return vm_fail(vm, -EINVAL, "ACRN irqfds have no interrupt line (irq %u)", in->irq);
	if (in->flags & VCPU_IRQFD_DEASSIGN)
		a.flags = ACRN_IRQFD_FLAG_DEASSIGN;
	r = sys_ioctl(vm->hv, vm->fd, ACRN_IOCTL_IRQFD, (unsigned long)&a);
	if (r < 0)
		return vm_fail(vm, r, "ACRN_IOCTL_IRQFD(fd %d%s) failed", in->fd,
			       a.flags ? ", deassign" : "");
	return 0;
}

static int acrn_vm_ioeventfd(struct vcpu_vm *vm, const struct vcpu_ioeventfd *in)
{
	struct acrn_ioeventfd a = { .fd = (uint32_t)in->fd, .addr = in->addr, .len = in->len,
				    .data = in->datamatch };
	int r;

	/* ioeventfd.c: only 1, 2, 4 and 8-byte windows. */
	if (in->len == 0)
		return vm_fail(vm, -EINVAL, "ACRN ioeventfds need a length (1, 2, 4 or 8)");
	if ((in->flags & VCPU_IOEVENTFD_PIO) && (in->len > 4 || in->addr + in->len > 0x10000))
		return vm_fail(vm, -EINVAL, "port ioeventfd 0x%llx+%u is not a port range",
			       (unsigned long long)in->addr, in->len);
	if (in->flags & VCPU_IOEVENTFD_PIO)
		a.flags |= ACRN_IOEVENTFD_FLAG_PIO;
	if (in->flags & VCPU_IOEVENTFD_DATAMATCH)
		a.flags |= ACRN_IOEVENTFD_FLAG_DATAMATCH;
	if (in->flags & VCPU_IOEVENTFD_DEASSIGN)
		a.flags |= ACRN_IOEVENTFD_FLAG_DEASSIGN;
	r = sys_ioctl(vm->hv, vm->fd, ACRN_IOCTL_IOEVENTFD, (unsigned long)&a);
	if (r < 0)
		return vm_fail(vm, r, "ACRN_IOCTL_IOEVENTFD(%s 0x%llx+%u) failed",
			       a.flags & ACRN_IOEVENTFD_FLAG_PIO ? "port" : "MMIO",
			       (unsigned long long)in->addr, in->len);
	return 0;
}

static int acrn_vm_signal_msi(struct vcpu_vm *vm, uint64_t addr, uint64_t data)
{
	struct acrn_msi_entry msi = { .msi_addr = addr, .msi_data = data };
	int r = sys_ioctl(vm->hv, vm->fd, ACRN_IOCTL_INJECT_MSI, (unsigned long)&msi);

	if (r < 0)
		return vm_fail(vm, r, "ACRN_IOCTL_INJECT_MSI(0x%llx, 0x%llx) failed",
			       (unsigned long long)addr, (unsigned long long)data);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* vCPUs and registers                                                        */

/*
 * The shadow starts in the architectural reset state (Intel SDM vol. 3
 * "Processor state following power-up, reset or INIT"): the first
 * vcpu_set_reg() sends it whole, so registers never set are those of a
 * freshly reset CPU, not zeros the hypervisor would reject (CR0.ET) or a
 * CS that cannot fetch.
 */
static void regs_reset_state(struct acrn_vcpu_regs *v, uint32_t id)
{
	struct acrn_regs *r = &v->vcpu_regs;

	memset(v, 0, sizeof(*v));
	v->vcpu_id = (uint16_t)id;
	r->rip = 0xfff0;
	r->rflags = 0x2;
	r->cr0 = 0x60000010; /* CD | NW | ET */
	r->cs_sel = 0xf000;
	r->cs_base = 0xffff0000;
	r->cs_limit = 0xffff;
	r->cs_ar = 0x9b; /* present, code execute/read accessed */
	r->gdt.limit = 0xffff;
	r->idt.limit = 0xffff;
}

static int acrn_vcpu_create(struct vcpu *cpu, uint32_t flags)
{
	struct acrn_vm_priv *p = vm_priv(cpu->vm);
	struct acrn_vcpu_priv *cp;

	(void)flags;
	/* vCPUs exist since CREATE_VM; a handle just names one (vm->lock held). */
	if (cpu->id >= p->vcpu_num)
		return cpu_fail(cpu, -EINVAL, "the ACRN VM has %u vCPUs: no vCPU %u", p->vcpu_num,
				cpu->id);
	if (p->bound & (1u << cpu->id))
		return cpu_fail(cpu, -EEXIST, "vCPU %u already has a handle", cpu->id);
	cp = calloc(1, sizeof(*cp));
	if (!cp)
		return cpu_fail(cpu, -ENOMEM, "cannot allocate vCPU %u state", cpu->id);
	regs_reset_state(&cp->regs, cpu->id);
	p->bound |= 1u << cpu->id;
	cpu->priv = cp;
	cpu->fd = -1;
	return 0;
}

static void acrn_vcpu_destroy(struct vcpu *cpu)
{
	struct vcpu_vm *vm = cpu->vm;
	struct acrn_vm_priv *p = vm_priv(vm);
	struct vcpu *self = cpu;

	pthread_mutex_lock(&vm->lock);
	p->bound &= ~(1u << cpu->id);
	atomic_compare_exchange_strong(&p->server, &self, NULL);
	pthread_mutex_unlock(&vm->lock);
	/* A kicker that read .server before it was cleared may still look at us. */
	while (atomic_load(&p->kickers))
		sched_yield();
	free(cpu->priv);
	cpu->priv = NULL;
}

/* Where a portable id lives in acrn_regs; *absent for x86 registers ACRN does not carry. */
static uint64_t *reg_slot(struct acrn_regs *r, uint64_t reg, bool *absent)
{
	static const uint8_t gpr[] = {
		/* VCPU_REG_X86_RAX.. in enum order -> ACRN's encoding order */
		ACRN_RAX, ACRN_RBX, ACRN_RCX, ACRN_RDX, ACRN_RSI, ACRN_RDI, ACRN_RSP, ACRN_RBP,
	};

	*absent = false;
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
	case VCPU_REG_X86_CR2:
	case VCPU_REG_X86_CR8:
	case VCPU_REG_X86_APIC_BASE:
		*absent = true;
		return NULL;
	default:
		return NULL;
	}
}

/* Send the whole register file; the shadow changes only when the hypervisor took it. */
static int send_regs(struct vcpu *cpu, const struct acrn_vcpu_regs *regs)
{
	struct acrn_vcpu_priv *cp = cpu->priv;
	int r = sys_ioctl(cpu->vm->hv, cpu->vm->fd, ACRN_IOCTL_SET_VCPU_REGS, (unsigned long)regs);

	if (r < 0)
		return cpu_fail(cpu, r,
				"ACRN_IOCTL_SET_VCPU_REGS on vCPU %u failed (the hypervisor takes "
				"registers only while the VM is not running)",
				cpu->id);
	cp->regs = *regs;
	return 0;
}

static int acrn_get_reg(struct vcpu *cpu, uint64_t reg, uint64_t *value)
{
	(void)value;
	return cpu_fail(cpu, -EOPNOTSUPP,
			"ACRN cannot read registers (only ACRN_IOCTL_SET_VCPU_REGS exists): "
			"register 0x%llx of vCPU %u",
			(unsigned long long)reg, cpu->id);
}

/* Put one register into a copy of the register file (nothing is sent). */
static int put_reg(struct vcpu *cpu, struct acrn_vcpu_regs *regs, uint64_t reg, uint64_t value)
{
	bool absent;
	uint64_t *slot = reg_slot(&regs->vcpu_regs, reg, &absent);

	if (absent)
		return cpu_fail(cpu, -ENOENT, "ACRN's vCPU registers have no register 0x%llx",
				(unsigned long long)reg);
	if (!slot)
		return cpu_fail(cpu, -EINVAL, "0x%llx is not an x86_64 register id",
				(unsigned long long)reg);
	*slot = value;
	return 0;
}

static int acrn_set_reg(struct vcpu *cpu, uint64_t reg, uint64_t value)
{
	struct acrn_vcpu_priv *cp = cpu->priv;
	struct acrn_vcpu_regs regs = cp->regs;
	int r = put_reg(cpu, &regs, reg, value);

	return r < 0 ? r : send_regs(cpu, &regs);
}

static int acrn_get_segment(struct vcpu *cpu, enum vcpu_x86_seg seg, struct vcpu_x86_segment *s)
{
	(void)s;
	return cpu_fail(cpu, -EOPNOTSUPP,
			"ACRN cannot read registers (only ACRN_IOCTL_SET_VCPU_REGS exists): "
			"segment %d of vCPU %u",
			(int)seg, cpu->id);
}

/*
 * acrn_regs carries CS whole (base, limit, VMX access rights), a selector
 * for the other segments, and GDT/IDT base and limit.  The hypervisor loads
 * those other segments flat (base 0, limit and rights from CR0.PE), so a
 * base it would drop is refused rather than lost.
 */
static int put_segment(struct vcpu *cpu, struct acrn_vcpu_regs *regs, enum vcpu_x86_seg seg,
		       const struct vcpu_x86_segment *s)
{
	struct acrn_regs *r = &regs->vcpu_regs;
	uint16_t *sel = NULL;

	switch (seg) {
	case VCPU_X86_CS:
		if (s->type > 15 || s->dpl > 3 || s->present > 1 || s->s > 1 || s->l > 1 ||
		    s->db > 1 || s->g > 1 || s->avl > 1 || s->unusable > 1)
			return cpu_fail(cpu, -EINVAL, "CS attributes out of range");
		r->cs_base = s->base;
		r->cs_limit = s->limit;
		r->cs_sel = s->selector;
		r->cs_ar = (uint32_t)s->type | (uint32_t)s->s << 4 | (uint32_t)s->dpl << 5 |
			   (uint32_t)s->present << 7 | (uint32_t)s->avl << 12 |
			   (uint32_t)s->l << 13 | (uint32_t)s->db << 14 | (uint32_t)s->g << 15 |
			   (uint32_t)s->unusable << 16;
		break;
	case VCPU_X86_GDT:
	case VCPU_X86_IDT:
		/* The core refused limits over 16 bits. */
		if (seg == VCPU_X86_GDT) {
			r->gdt.base = s->base;
			r->gdt.limit = (uint16_t)s->limit;
		} else {
			r->idt.base = s->base;
			r->idt.limit = (uint16_t)s->limit;
		}
		break;
	case VCPU_X86_DS: sel = &r->ds_sel; break;
	case VCPU_X86_ES: sel = &r->es_sel; break;
	case VCPU_X86_FS: sel = &r->fs_sel; break;
	case VCPU_X86_GS: sel = &r->gs_sel; break;
	case VCPU_X86_SS: sel = &r->ss_sel; break;
	case VCPU_X86_TR: sel = &r->tr_sel; break;
	case VCPU_X86_LDT: sel = &r->ldt_sel; break;
	default:
		return cpu_fail(cpu, -EINVAL, "unknown x86 segment %d", (int)seg);
	}
	if (sel) {
		if (s->base)
			return cpu_fail(cpu, -EOPNOTSUPP,
					"ACRN loads segment %d flat: base 0x%llx cannot be set "
					"(only CS has a base)",
					(int)seg, (unsigned long long)s->base);
		*sel = s->selector;
	}
	return 0;
}

static int acrn_set_segment(struct vcpu *cpu, enum vcpu_x86_seg seg, const struct vcpu_x86_segment *s)
{
	struct acrn_vcpu_priv *cp = cpu->priv;
	struct acrn_vcpu_regs regs = cp->regs;
	int r = put_segment(cpu, &regs, seg, s);

	return r < 0 ? r : send_regs(cpu, &regs);
}

/* A batch is one ACRN_IOCTL_SET_VCPU_REGS: all of it is taken, or none. */
static int acrn_set_regs(struct vcpu *cpu, const struct vcpu_reg *regs, uint32_t n)
{
	struct acrn_vcpu_priv *cp = cpu->priv;
	struct acrn_vcpu_regs file = cp->regs;
	int r = 0;

	for (uint32_t i = 0; i < n && r == 0; i++) {
		if (vcpu_reg_is_segment(regs[i].id))
			r = put_segment(cpu, &file,
					(enum vcpu_x86_seg)(regs[i].id - VCPU_REG_X86_SEG(0)),
					&regs[i].seg);
		else
			r = put_reg(cpu, &file, regs[i].id, regs[i].value);
		if (r < 0)
			return vcpu_regs_entry_failed(cpu, i, r);
	}
	return send_regs(cpu, &file);
}

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
static void acrn_run_end(struct vcpu *cpu)
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

static int acrn_run_once(struct vcpu *cpu)
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

static int acrn_complete(struct vcpu *cpu, int result)
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
static void acrn_set_immediate_exit(struct vcpu *cpu, int value)
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

const struct vcpu_backend_ops vcpu_acrn_ops = {
	.name = "acrn",
	.vm_config = VCFG_CPU_AFFINITY | VCFG_PM1A_PORT | VCFG_NAME,
	.hv_init = acrn_hv_init,
	.hv_fini = acrn_hv_fini,
	.check = acrn_check,
	.vm_create = acrn_vm_create,
	.vm_destroy = acrn_vm_destroy,
	.vm_map = acrn_vm_map,
	.vm_irq_line = acrn_vm_irq_line,
	.vm_start = acrn_vm_start,
	.vm_pause = acrn_vm_pause,
	.vm_reset = acrn_vm_reset,
	.vm_irqfd = acrn_vm_irqfd,
	.vm_ioeventfd = acrn_vm_ioeventfd,
	.vm_signal_msi = acrn_vm_signal_msi,
	.vcpu_create = acrn_vcpu_create,
	.vcpu_destroy = acrn_vcpu_destroy,
	.get_reg = acrn_get_reg,
	.set_reg = acrn_set_reg,
	.get_segment = acrn_get_segment,
	.set_segment = acrn_set_segment,
	.set_regs = acrn_set_regs,
	.run_once = acrn_run_once,
	.run_end = acrn_run_end,
	.complete = acrn_complete,
	.set_immediate_exit = acrn_set_immediate_exit,
};
