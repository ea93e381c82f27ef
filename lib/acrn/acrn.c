// SPDX-License-Identifier: MIT
/*
 * The ACRN backend: /dev/acrn_hsm, one VM per open file (doc/abi/acrn.md).
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
#include "acrn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	/* SET_VCPU_REGS only; 0xCF9 and (if configured) PM1a writes are system events. */
	hv->regs_set = true;
	hv->system_events = VCPU_EVENTS_X86_CF9 | VCPU_EVENTS_X86_PM1A;
	return 0;
}

static void acrn_hv_fini(struct vcpu_hv *hv)
{
	free(hv->priv);
	hv->priv = NULL;
}

/*
 * The HSM has no capability query: these are facts of its ABI (doc/abi/acrn.md),
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
	case VCPU_CAP_ARM_SVE:
	case VCPU_CAP_ARM_PTRAUTH:
	case VCPU_CAP_ARM_PMU:
		*value = 0;
		return 0;
	case VCPU_CAP_HYPERCALLS:
		*value = VCPU_HYPERCALLS_NONE;
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
	/* doc/abi/acrn.md §1: the HSM pins the page holding ioreq_buf; slot 0 is its start. */
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
	/* acrn-dm order (doc/abi/acrn.md §1): the client exists before the first request. */
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
 * acrn-dm's reset (doc/abi/acrn.md §1 step 10): pause, complete every pending
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
