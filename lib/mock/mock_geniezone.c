// SPDX-License-Identifier: MIT
/*
 * The modelled GenieZone driver (/dev/gzvm): ioctl decoding and the device,
 * VM and vCPU ioctls.  GZVM_RUN and the scripted guest live in
 * mock_geniezone_guest.c.
 *
 * The rules are the posted kernel's (gzvm_vcpu.c of "[PATCH v9 09/21] virt:
 * geniezone: Add vcpu support"; gzvm_main.c, gzvm_vm.c of the same series
 * and the Android copy), with its errnos.
 * Where the hypervisor (not the kernel) decides, the comment says so and
 * what the mock answers.  Section references (§) are to doc/abi/geniezone.md.
 */
#define _GNU_SOURCE
#include "mock_geniezone.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Object lifetime                                                            */

static void binding_drop(struct gz_binding *b)
{
	close(b->fd);
	if (b->resamplefd >= 0)
		close(b->resamplefd);
}

static void gz_vm_put(struct gz_vm *vm)
{
	if (--vm->refs)
		return;
	/* gzvm_destroy_vm: irqfds released, then every vCPU, then the VM. */
	for (size_t i = 0; i < vm->nirqfds; i++)
		binding_drop(&vm->irqfds[i]);
	for (size_t i = 0; i < vm->nioeventfds; i++)
		binding_drop(&vm->ioeventfds[i]);
	for (unsigned i = 0; i < GZVM_MAX_VCPUS; i++) {
		if (!vm->vcpus[i])
			continue;
		pthread_mutex_destroy(&vm->vcpus[i]->ioctl_lock);
		free(vm->vcpus[i]);
	}
	free(vm->irqfds);
	free(vm->ioeventfds);
	free(vm);
}

static void gz_file_release(struct vcpu_mock *m, struct mock_file *f)
{
	(void)m;
	/*
	 * The kernel frees the VM when the VM fd is released, even with vCPU
	 * fds open (a use-after-free libvcpu never triggers: it closes vCPUs
	 * first).  The mock keeps the VM while any of its fds lives.
	 */
	if (f->kind == MOCK_VM)
		gz_vm_put(f->obj);
	else if (f->kind == MOCK_VCPU)
		gz_vm_put(((struct gz_vcpu *)f->obj)->vm);
}

/* ------------------------------------------------------------------------ */
/* Host memory: the VMA rule of GZVM_SET_USER_MEMORY_REGION                    */

/*
 * The mapping of this process that contains @addr, from /proc/self/maps:
 * what vma_lookup() finds.  false when none does.
 */
static bool find_vma(uint64_t addr, uint64_t *start, uint64_t *end)
{
	char buf[4096], line[256];
	size_t used = 0;
	ssize_t n;
	bool found = false;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	while (!found && (n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n && !found; i++) {
			unsigned long long s, e;

			if (buf[i] != '\n') {
				if (used < sizeof(line) - 1)
					line[used++] = buf[i];
				continue;
			}
			line[used] = '\0';
			used = 0;
			if (sscanf(line, "%llx-%llx", &s, &e) == 2 && addr >= s && addr < e) {
				*start = s;
				*end = e;
				found = true;
			}
		}
	}
	close(fd);
	return found;
}

/*
 * gzvm_vm_ioctl_set_memory_region(): ENXIO for slot >= 10 (doc/abi/geniezone.md
 * says EINVAL; every posted kernel returns -ENXIO), EFAULT without a VMA at
 * userspace_addr, EINVAL unless memory_size is that VMA's size.  The kernel
 * checks neither alignment nor wrap; a range that starts inside the VMA
 * reaches past its end, where pinning the pages fails with EFAULT.  Flags
 * ("purposes") go to the hypervisor unchecked.  A slot may be rewritten.
 */
static int set_memory_region(struct gz_vm *vm, unsigned long arg)
{
	struct gzvm_userspace_memory_region r;
	uint64_t start, end;

	mock_copy_in(&r, arg, sizeof(r));
	if (r.slot >= GZVM_MAX_MEM_REGION)
		return -ENXIO;
	if (!find_vma(r.userspace_addr, &start, &end))
		return -EFAULT;
	if (end - start != r.memory_size)
		return -EINVAL;
	if (r.userspace_addr != start)
		return -EFAULT;
	vm->slots[r.slot] = (struct gz_slot){ .used = true, .flags = r.flags,
					      .gpa = r.guest_phys_addr, .size = r.memory_size,
					      .uaddr = r.userspace_addr };
	return 0;
}

bool mock_gz_translate(const struct gz_vm *vm, uint64_t gpa, uint64_t len, bool write,
		       void **host)
{
	(void)write; /* no read-only slots in GenieZone */
	for (unsigned i = 0; i < GZVM_MAX_MEM_REGION; i++) {
		const struct gz_slot *s = &vm->slots[i];
		uint64_t off = gpa - s->gpa;

		if (!s->used || gpa < s->gpa || off >= s->size || len > s->size - off)
			continue;
		*host = (void *)(uintptr_t)(s->uaddr + off);
		return true;
	}
	return false;
}

/* ------------------------------------------------------------------------ */
/* /dev/gzvm and capabilities                                                 */

/*
 * gzvm_dev_ioctl_check_extension(): the argument points at a u64 holding the
 * capability, and the answer is written over it.  EINVAL for a NULL
 * argument on the device fd (checked there first), EFAULT on the VM fd
 * (copy_from_user), EOPNOTSUPP for an unknown capability.
 */
static int check_extension(const struct vcpu_mock *m, bool dev_fd, unsigned long arg)
{
	uint64_t cap, val;

	if (!arg)
		return dev_fd ? -EINVAL : -EFAULT;
	mock_copy_in(&cap, arg, sizeof(cap));
	switch (cap) {
	case GZVM_CAP_VM_GPA_SIZE:
		val = m->cfg.ipa_bits; /* CONFIG_ARM64_PA_BITS of the modelled kernel */
		break;
	case GZVM_CAP_PROTECTED_VM:
		val = 1;
		break;
	default:
		return -EOPNOTSUPP;
	}
	mock_copy_out(arg, &val, sizeof(val));
	return 0;
}

static int create_vm(struct vcpu_mock *m, unsigned long type)
{
	struct mock_file *f;
	struct gz_vm *vm;
	int err = 0;

	/* The hypervisor creates "Linux VMs" (type 0) only; the mock refuses others. */
	if (type != 0)
		return -EINVAL;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->mock = m;
	vm->refs = 1;
	f = mock_file_new(m, "gzvm-vm", MOCK_VM, 0, &err);
	if (!f) {
		free(vm);
		return err;
	}
	f->obj = vm;
	return f->fd;
}

/* ------------------------------------------------------------------------ */
/* VM: vCPUs                                                                  */

static int create_vcpu(struct vcpu_mock *m, struct gz_vm *vm, unsigned long id)
{
	char name[32];
	struct mock_file *f;
	struct gz_vcpu *v;
	int err = 0;

	/* gzvm_vm_ioctl_create_vcpu: EINVAL for id >= GZVM_MAX_VCPUS. */
	if (id >= GZVM_MAX_VCPUS)
		return -EINVAL;
	/*
	 * The kernel does not check a second create of the same id (it would
	 * overwrite vcpus[id]); the hypervisor would refuse the duplicate:
	 * the mock answers EEXIST.  vCPUs live until the VM dies.
	 */
	if (vm->vcpus[id])
		return -EEXIST;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (pthread_mutex_init(&v->ioctl_lock, NULL) != 0) {
		free(v);
		return -ENOMEM;
	}
	snprintf(name, sizeof(name), "gzvm-vcpu:%lu", id);
	f = mock_file_new(m, name, MOCK_VCPU, 0, &err);
	if (!f) {
		pthread_mutex_destroy(&v->ioctl_lock);
		free(v);
		return err;
	}
	v->vm = vm;
	v->id = (uint32_t)id;
	v->core[GZVM_CORE_OFF_PSTATE / 8] = 0x3c5; /* EL1h, DAIF masked */
	f->obj = v;
	vm->refs++;
	vm->vcpus[id] = v;
	vm->nr_vcpus++;
	return f->fd;
}

/* ------------------------------------------------------------------------ */
/* VM: interrupts                                                             */

/*
 * gzvm_vm_ioctl_irq_line(): TYPE is ignored, NUM goes to the hypervisor,
 * which injects SPI NUM + 32 (§9).  A refused injection (no vGIC, or no
 * such SPI) comes back from the hypervisor as EFAULT.
 */
static int irq_line(struct gz_vm *vm, unsigned long arg)
{
	struct gzvm_irq_level l;
	uint32_t intid;

	mock_copy_in(&l, arg, sizeof(l));
	intid = (l.irq & GZVM_IRQ_LINE_NUM_MASK) + GZVM_SPI_INTID_BASE;
	if (!vm->dist || !vm->redist || intid > GZ_MOCK_MAX_INTID)
		return -EFAULT;
	vm->irq_level[intid] = l.level != 0;
	return 0;
}

/*
 * gzvm_vm_ioctl_create_device(): EINVAL for device attributes larger than a
 * page.  The hypervisor knows the two vGICv3 frames, once each (the mock
 * answers EINVAL for another type, EEXIST for a second one).
 */
static int create_device(const struct vcpu_mock *m, struct gz_vm *vm, unsigned long arg)
{
	struct gzvm_create_device d;

	mock_copy_in(&d, arg, sizeof(d));
	if (d.attr_addr && d.attr_size && d.attr_size > m->page_size)
		return -EINVAL;
	switch (d.dev_type) {
	case GZVM_DEV_TYPE_ARM_VGIC_V3_DIST:
		if (vm->dist)
			return -EEXIST;
		vm->dist = true;
		vm->dist_addr = d.dev_addr;
		vm->dist_size = d.dev_reg_size;
		return 0;
	case GZVM_DEV_TYPE_ARM_VGIC_V3_REDIST:
		if (vm->redist)
			return -EEXIST;
		vm->redist = true;
		vm->redist_addr = d.dev_addr;
		vm->redist_size = d.dev_reg_size;
		return 0;
	default:
		return -EINVAL;
	}
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

static int binding_add(struct gz_binding **arr, size_t *n, size_t *cap, struct gz_binding b)
{
	b.fd = fcntl(b.fd, F_DUPFD_CLOEXEC, 0);
	if (b.fd < 0)
		return -errno;
	if (b.resamplefd >= 0) {
		b.resamplefd = fcntl(b.resamplefd, F_DUPFD_CLOEXEC, 0);
		if (b.resamplefd < 0) {
			int err = -errno;
			close(b.fd);
			return err;
		}
	}
	if (!mock_grow((void **)arr, cap, *n, sizeof(**arr))) {
		binding_drop(&b);
		return -ENOMEM;
	}
	(*arr)[(*n)++] = b;
	return 0;
}

/*
 * GZVM_IRQFD: the driver's irqfd code is KVM's (same struct, same flags):
 * EINVAL for unknown flags, EBADF/EINVAL for a bad eventfd, EBUSY for an
 * eventfd already bound, and a deassign of nothing bound succeeds.
 */
static int irqfd(struct gz_vm *vm, unsigned long arg)
{
	struct gzvm_irqfd a;
	struct gz_binding b = { .resamplefd = -1 };
	int err;

	mock_copy_in(&a, arg, sizeof(a));
	if (a.flags & ~(GZVM_IRQFD_FLAG_DEASSIGN | GZVM_IRQFD_FLAG_RESAMPLE))
		return -EINVAL;
	err = mock_check_eventfd((int)a.fd);
	if (err < 0)
		return err;
	if (a.flags & GZVM_IRQFD_FLAG_DEASSIGN) {
		for (size_t i = 0; i < vm->nirqfds; i++) {
			if (vm->irqfds[i].gsi != a.gsi || !same_file(vm->irqfds[i].fd, (int)a.fd))
				continue;
			binding_drop(&vm->irqfds[i]);
			vm->irqfds[i] = vm->irqfds[--vm->nirqfds];
			break;
		}
		return 0;
	}
	for (size_t i = 0; i < vm->nirqfds; i++)
		if (same_file(vm->irqfds[i].fd, (int)a.fd))
			return -EBUSY;
	if (a.flags & GZVM_IRQFD_FLAG_RESAMPLE) {
		err = mock_check_eventfd((int)a.resamplefd);
		if (err < 0)
			return err;
		b.resamplefd = (int)a.resamplefd;
	}
	b.fd = (int)a.fd;
	b.gsi = a.gsi;
	b.flags = a.flags;
	return binding_add(&vm->irqfds, &vm->nirqfds, &vm->cap_irqfds, b);
}

static bool ioevent_same(const struct gz_binding *b, const struct gzvm_ioeventfd *a)
{
	bool dm = a->flags & GZVM_IOEVENTFD_FLAG_DATAMATCH;

	return b->addr == a->addr && b->len == a->len &&
	       (b->flags & GZVM_IOEVENTFD_FLAG_DATAMATCH) == (dm ? GZVM_IOEVENTFD_FLAG_DATAMATCH : 0u) &&
	       (!dm || b->datamatch == a->datamatch);
}

/*
 * GZVM_IOEVENTFD, as KVM's ioeventfd.c which the driver's follows: EINVAL
 * for unknown flags, a length other than 0/1/2/4/8, DATAMATCH with length
 * 0, a wrapping range or a bad eventfd (EBADF for no file); EEXIST for a
 * second identical binding; ENOENT to deassign one that does not exist.
 * arm64 has no port bus: PIO is EINVAL (the mock's answer).
 */
static int ioeventfd(struct gz_vm *vm, unsigned long arg)
{
	struct gzvm_ioeventfd a;
	struct gz_binding b = { .resamplefd = -1 };
	int err;

	mock_copy_in(&a, arg, sizeof(a));
	if (a.flags & ~GZVM_IOEVENTFD_VALID_FLAG_MASK)
		return -EINVAL;
	if (a.flags & GZVM_IOEVENTFD_FLAG_PIO)
		return -EINVAL;
	if (a.len != 0 && a.len != 1 && a.len != 2 && a.len != 4 && a.len != 8)
		return -EINVAL;
	if (a.len == 0 && (a.flags & GZVM_IOEVENTFD_FLAG_DATAMATCH))
		return -EINVAL;
	if (a.addr + a.len < a.addr)
		return -EINVAL;
	err = mock_check_eventfd(a.fd);
	if (err < 0)
		return err;
	for (size_t i = 0; i < vm->nioeventfds; i++) {
		if (!ioevent_same(&vm->ioeventfds[i], &a))
			continue;
		if (!(a.flags & GZVM_IOEVENTFD_FLAG_DEASSIGN))
			return -EEXIST;
		if (!same_file(vm->ioeventfds[i].fd, a.fd))
			continue;
		binding_drop(&vm->ioeventfds[i]);
		vm->ioeventfds[i] = vm->ioeventfds[--vm->nioeventfds];
		return 0;
	}
	if (a.flags & GZVM_IOEVENTFD_FLAG_DEASSIGN)
		return -ENOENT;
	b.fd = a.fd;
	b.addr = a.addr;
	b.len = a.len;
	b.datamatch = a.datamatch;
	b.flags = a.flags;
	return binding_add(&vm->ioeventfds, &vm->nioeventfds, &vm->cap_ioeventfds, b);
}

/* A guest MMIO write an ioeventfd takes: the eventfd counts, no exit (§3 MMIO row). */
bool mock_gz_ioeventfd_hit(struct gz_vm *vm, uint64_t addr, uint32_t len, uint64_t value)
{
	for (size_t i = 0; i < vm->nioeventfds; i++) {
		const struct gz_binding *b = &vm->ioeventfds[i];
		uint64_t one = 1;
		uint64_t mask = len >= 8 ? ~0ull : (1ull << (8 * len)) - 1;

		if (b->addr != addr || (b->len && b->len != len))
			continue;
		if ((b->flags & GZVM_IOEVENTFD_FLAG_DATAMATCH) && (value & mask) != b->datamatch)
			continue;
		if (write(b->fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
			mock_fail(vm->mock, "ioeventfd at 0x%llx: cannot signal its eventfd",
				  (unsigned long long)addr);
		return true;
	}
	return false;
}

static int vm_ioctl(struct vcpu_mock *m, struct gz_vm *vm, unsigned long req, unsigned long arg)
{
	struct gzvm_dtb_config dtb;

	switch (req) {
	case GZVM_CHECK_EXTENSION:
		return check_extension(m, false, arg);
	case GZVM_CREATE_VCPU:
		return create_vcpu(m, vm, arg);
	case GZVM_SET_USER_MEMORY_REGION:
		return set_memory_region(vm, arg);
	case GZVM_IRQ_LINE:
		return irq_line(vm, arg);
	case GZVM_CREATE_DEVICE:
		return create_device(m, vm, arg);
	case GZVM_IRQFD:
		return irqfd(vm, arg);
	case GZVM_IOEVENTFD:
		return ioeventfd(vm, arg);
	case GZVM_SET_DTB_CONFIG:
		mock_copy_in(&dtb, arg, sizeof(dtb));
		vm->dtb = true;
		vm->dtb_addr = dtb.dtb_addr;
		vm->dtb_size = dtb.dtb_size;
		return 0;
	case GZVM_ENABLE_CAP:
		/* Protected-VM sub-commands are not modelled: an unknown cap is EINVAL. */
		return -EINVAL;
	default:
		/* GZVM_SET_MEMORY_REGION and GZVM_CREATE_IRQCHIP are defined, never handled. */
		return -ENOTTY;
	}
}

/* ------------------------------------------------------------------------ */
/* vCPU: ONE_REG                                                              */

int mock_gz_reg_slot(struct gz_vcpu *v, uint64_t reg, uint64_t **slot)
{
	if (reg >= VCPU_REG_ARM64_X(0) && reg <= VCPU_REG_ARM64_X(30))
		*slot = &v->core[reg - VCPU_REG_ARM64_X(0)];
	else if (reg == VCPU_REG_ARM64_SP)
		*slot = &v->core[GZVM_CORE_OFF_SP / 8];
	else if (reg == VCPU_REG_ARM64_PC)
		*slot = &v->core[GZVM_CORE_OFF_PC / 8];
	else if (reg == VCPU_REG_ARM64_PSTATE)
		*slot = &v->core[GZVM_CORE_OFF_PSTATE / 8];
	else if (reg == VCPU_REG_ARM64_SP_EL1)
		*slot = &v->core[GZVM_CORE_OFF_SP_EL1 / 8];
	else if (reg == VCPU_REG_ARM64_ELR_EL1)
		*slot = &v->core[GZVM_CORE_OFF_ELR_EL1 / 8];
	else
		return -EINVAL;
	return 0;
}

/*
 * gzvm_vcpu_update_one_reg(): EFAULT when the struct or value cannot be
 * read, EINVAL for a size field that is not 1, 2, 4 or 8 bytes.  Then "the
 * GZ hypervisor would filter out invalid vcpu register access": the
 * modelled hypervisor knows the 64-bit core registers (KVM's ids) and
 * answers EINVAL for anything else.
 */
static int set_one_reg(struct gz_vcpu *v, unsigned long arg)
{
	struct gzvm_one_reg r;
	uint64_t size, data = 0, idx;

	mock_copy_in(&r, arg, sizeof(r));
	size = 1ull << ((r.id & GZVM_REG_SIZE_MASK) >> GZVM_REG_SIZE_SHIFT);
	if (size != 1 && size != 2 && size != 4 && size != 8)
		return -EINVAL;
	if (!r.addr)
		return -EFAULT;
	memcpy(&data, (const void *)(uintptr_t)r.addr, size);
	if ((r.id & ~(uint64_t)0xfffff) != (GZVM_REG_ARCH_ARM64 | GZVM_REG_SIZE_U64 | GZVM_REG_ARM_CORE))
		return -EINVAL;
	idx = r.id & 0xfffff; /* offset / 4 */
	if (idx % 2 || idx / 2 >= GZ_MOCK_CORE_WORDS)
		return -EINVAL;
	v->core[idx / 2] = data;
	return 0;
}

static int vcpu_ioctl(struct vcpu_mock *m, struct gz_vcpu *v, unsigned long req, unsigned long arg)
{
	int r;

	/* The vCPU's mutex: one ioctl per vCPU at a time, GZVM_RUN included. */
	pthread_mutex_lock(&v->ioctl_lock);
	pthread_mutex_lock(&m->lock);
	switch (req) {
	case GZVM_RUN:
		r = mock_gz_run(m, v, arg);
		break;
	case GZVM_GET_ONE_REG:
		r = -EOPNOTSUPP; /* not implemented, before the argument is even read */
		break;
	case GZVM_SET_ONE_REG:
		r = arg ? set_one_reg(v, arg) : -EFAULT;
		break;
	default:
		r = -ENOTTY;
		break;
	}
	pthread_mutex_unlock(&m->lock);
	pthread_mutex_unlock(&v->ioctl_lock);
	return r;
}

/* ------------------------------------------------------------------------ */

/* Pointer arguments the kernel copies in: NULL faults. */
static bool takes_struct(unsigned long req)
{
	switch (req) {
	case GZVM_SET_USER_MEMORY_REGION:
	case GZVM_IRQ_LINE:
	case GZVM_CREATE_DEVICE:
	case GZVM_IRQFD:
	case GZVM_IOEVENTFD:
	case GZVM_ENABLE_CAP:
	case GZVM_SET_DTB_CONFIG:
		return true;
	default:
		return false;
	}
}

static int gz_ioctl(struct vcpu_mock *m, struct mock_file *f, unsigned long req, unsigned long arg)
{
	int r;

	/* The kernel's ioctl command is 32 bits wide. */
	req = (uint32_t)req;
	if (GZABI_IOC_TYPE(req) != GZVM_IOC_MAGIC)
		return -ENOTTY;
	if (f->kind == MOCK_VCPU)
		return vcpu_ioctl(m, f->obj, req, arg);
	if (f->kind == MOCK_VM && takes_struct(req) && !arg)
		return -EFAULT;
	pthread_mutex_lock(&m->lock);
	if (f->kind == MOCK_VM) {
		r = vm_ioctl(m, f->obj, req, arg);
	} else if (req == GZVM_CREATE_VM) {
		r = create_vm(m, arg);
	} else if (req == GZVM_CHECK_EXTENSION) {
		r = check_extension(m, true, arg);
	} else {
		r = -ENOTTY;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* The kernel's limits are constants: only the defaults fit them. */
static int gz_init(struct vcpu_mock *m)
{
	if (m->cfg.max_vcpus != 8 || m->cfg.nr_memslots != 32)
		return -EINVAL;
	m->cfg.max_vcpus = GZVM_MAX_VCPUS;
	m->cfg.nr_memslots = GZVM_MAX_MEM_REGION;
	return 0;
}

/* No fd of gzvm has an mmap handler: the run structure is passed by pointer (§5). */
static int gz_mmap_check(const struct vcpu_mock *m, const struct mock_file *f, size_t len,
			 off_t off)
{
	(void)m;
	(void)f;
	(void)len;
	(void)off;
	return -ENODEV;
}

static bool gz_step_valid(const struct vcpu_mock *m, const struct vcpu_mock_step *s)
{
	(void)m;
	switch (s->op) {
	case VCPU_MOCK_GZ_EXCEPTION:
	case VCPU_MOCK_GZ_DEBUG:
	case VCPU_MOCK_GZ_SHUTDOWN:
	case VCPU_MOCK_GZ_AWAIT_FLAG:
		return true;
	case VCPU_MOCK_GZ_KERNEL_EXIT:
		return s->value == GZVM_EXIT_IRQ || s->value == GZVM_EXIT_GZ ||
		       s->value == GZVM_EXIT_IDLE || s->value == GZVM_EXIT_IPI;
	default:
		return false;
	}
}

/* ------------------------------------------------------------------------ */
/* Test helpers                                                               */

static struct gz_vm *vm_of(const struct vcpu_mock *m, int fd)
{
	for (size_t i = 0; i < m->nfiles; i++)
		if (m->files[i]->fd == fd && m->files[i]->kind == MOCK_VM &&
		    m->drv == &mock_geniezone_driver)
			return m->files[i]->obj;
	return NULL;
}

int mock_gz_vm_info(const struct vcpu_mock *mock, int vm_fd, struct mock_gz_vm_info *out)
{
	struct vcpu_mock *m = (struct vcpu_mock *)mock; /* heap-allocated: the cast is defined */
	struct gz_vm *vm;
	int r = -EBADF;

	pthread_mutex_lock(&m->lock);
	vm = vm_of(m, vm_fd);
	if (vm) {
		memset(out, 0, sizeof(*out));
		out->dist = vm->dist;
		out->redist = vm->redist;
		out->dist_addr = vm->dist_addr;
		out->dist_size = vm->dist_size;
		out->redist_addr = vm->redist_addr;
		out->redist_size = vm->redist_size;
		out->dtb = vm->dtb;
		out->dtb_addr = vm->dtb_addr;
		out->dtb_size = vm->dtb_size;
		out->nr_vcpus = vm->nr_vcpus;
		for (unsigned i = 0; i < GZVM_MAX_MEM_REGION; i++) {
			out->nslots += vm->slots[i].used;
			out->slot_flags[i] = vm->slots[i].flags;
		}
		out->nirqfds = (unsigned)vm->nirqfds;
		out->nioeventfds = (unsigned)vm->nioeventfds;
		for (size_t i = 0; i < vm->nirqfds && i < 4; i++) {
			out->irqfd_gsi[i] = vm->irqfds[i].gsi;
			out->irqfd_flags[i] = vm->irqfds[i].flags;
		}
		r = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int mock_gz_irq_level(const struct vcpu_mock *mock, int vm_fd, uint32_t intid)
{
	struct vcpu_mock *m = (struct vcpu_mock *)mock;
	struct gz_vm *vm;
	int r = -EBADF;

	if (intid > GZ_MOCK_MAX_INTID)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	vm = vm_of(m, vm_fd);
	if (vm)
		r = vm->irq_level[intid];
	pthread_mutex_unlock(&m->lock);
	return r;
}

int mock_gz_vcpu_stats(const struct vcpu_mock *mock, int vm_fd, uint32_t id,
		       struct mock_gz_vcpu_stats *out)
{
	struct vcpu_mock *m = (struct vcpu_mock *)mock;
	struct gz_vm *vm;
	int r = -EBADF;

	pthread_mutex_lock(&m->lock);
	vm = vm_of(m, vm_fd);
	if (vm) {
		const struct gz_vcpu *v = id < GZVM_MAX_VCPUS ? vm->vcpus[id] : NULL;

		r = -ENOENT;
		if (v) {
			out->entries = v->entries;
			out->eintr_at_entry = v->eintr_at_entry;
			out->eintr_after_exit = v->eintr_after_exit;
			out->restarts = v->restarts;
			out->pc = v->core[GZVM_CORE_OFF_PC / 8];
			r = 0;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

const struct mock_driver mock_geniezone_driver = {
	.backend = VCPU_BACKEND_GENIEZONE,
	.node = "/dev/gzvm",
	.name = "mock-gzvm",
	.arches = 1u << VCPU_ARCH_ARM64,
	.flags = 0,
	.init = gz_init,
	.ioctl = gz_ioctl,
	.mmap_check = gz_mmap_check,
	.file_release = gz_file_release,
	.step_valid = gz_step_valid,
};
