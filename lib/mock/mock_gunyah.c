// SPDX-License-Identifier: MIT
/*
 * The modelled Gunyah driver: /dev/gunyah, VM files, VM functions (vCPU,
 * irqfd, ioeventfd), guest memory (v17 guest_memfd bindings, v8 user
 * regions) and the boot context, with the errno of each rule of the kernel
 * code of the posted v17 and v8 series ("virt: gunyah: Add
 * proxy-scheduled vCPUs") and doc/abi/gunyah.md (A.1-A.5, B.1-B.4).
 * The run call and the scripted guest are in mock_gunyah_guest.c.
 *
 * Rules and the errno the mock answers with (v17 unless marked), and the
 * test in tests/test_gunyah.c that shows each:
 *   dev   CREATE_VM with arg != 0                      EINVAL     test_rule_dev_ioctls
 *   dev   CREATE_GUEST_MEM size not page aligned       EINVAL     test_rule_dev_ioctls
 *   dev   CREATE_GUEST_MEM unknown flags               EINVAL     test_rule_dev_ioctls
 *   dev   unknown ioctl                                ENOTTY     test_rule_dev_ioctls
 *   dev   v8: CREATE_GUEST_MEM unknown                 ENOTTY     test_rule_v8_ioctls, test_open_v8
 *   vm    SET_DTB_CONFIG address + size wraps          EOVERFLOW  test_rule_dtb_and_start
 *   vm    START without a DTB / DTB not in a binding   EINVAL / ENOENT  test_rule_dtb_and_start
 *   vm    START again after a failed start             ENODEV     test_rule_dtb_and_start
 *   vm    START when running                           0          test_rule_dtb_and_start
 *   vm    ADD_FUNCTION arg_size > 256                  EINVAL     test_rule_add_remove_function
 *   vm    ADD_FUNCTION unknown type                    ENOENT     test_rule_add_remove_function
 *   vm    ADD_FUNCTION arg_size != sizeof the type's   EINVAL     test_rule_add_remove_function
 *   vm    ADD_FUNCTION same vCPU id                    EEXIST     test_rule_add_remove_function
 *   vm    ADD_FUNCTION same doorbell / io handler      EEXIST     test_irqfd, test_ioeventfd
 *   vm    ADD_FUNCTION irqfd/ioeventfd flags, len      EINVAL     test_ioeventfd
 *   vm    ADD_FUNCTION fd not an eventfd               EBADF      test_irqfd
 *   vm    REMOVE_FUNCTION nothing matches              ENOENT     test_rule_add_remove_function,
 *                                                                 test_irqfd, test_ioeventfd
 *   vm    MAP_MEM fd not a guest memory                EINVAL     test_rule_map_mem
 *   vm    MAP_MEM unknown flags, no R/W/X, bad access  EINVAL     test_rule_map_mem
 *   vm    MAP_MEM not page aligned                     EINVAL     test_rule_map_mem
 *   vm    MAP_MEM overlapping guest range, re-lend     EEXIST     test_rule_map_mem,
 *                                                                 test_alloc_failure_leaks_nothing
 *   vm    MAP_MEM|UNMAP flags differ / no binding      ENOENT     test_rule_map_mem
 *   vm    SET_BOOT_CONTEXT bad register set/index      EINVAL     test_rule_boot_context
 *   vm    SET_BOOT_CONTEXT after start                 EINVAL     test_rule_boot_context
 *   vm    unknown ioctl (v8: the v17-only ones)        ENOTTY     test_rule_dev_ioctls,
 *                                                                 test_rule_v8_ioctls
 *   vcpu  function added before START, resource at START; an id the VM's
 *         configuration lacks never gets one           ENODEV     test_vcpu_without_resource
 *   vcpu  RUN before start                             ENODEV     test_run_before_start
 *   vcpu  RUN after REMOVE_FUNCTION (immediate_exit set) ENODEV   test_remove_function_stops_vcpu
 *   vcpu  RUN with resume_action > 2 (state kept)      EINVAL     test_rule_bad_resume_action
 *   vcpu  RUN with immediate_exit set                  EINTR      test_rule_immediate_exit_v17,
 *                                                                 test_kick_before_run_v17
 *   vcpu  v8: RUN with immediate_exit set              0          test_rule_immediate_exit_v8
 *   vcpu  the resume is taken before immediate_exit and signals are checked:
 *         either stopping the call then loses it (a signal sent through the
 *         seam from the resume hook counts as pending)
 *                                                                 test_rule_immediate_exit_v17/_v8,
 *                                                                 test_kick_in_resume_window_v17/_v8,
 *                                                                 test_kicks_during_reads_v17/_v8
 *   vcpu  RUN interrupted by a signal (ERESTARTSYS)    EINTR      test_signal_is_not_a_kick
 *   vcpu  STATUS repeats on every later RUN            0          test_status_repeats
 *   vcpu  PAGE_FAULT: resume_action not read, re-executed at the next RUN
 *                                                                 test_page_fault_retry
 *   vcpu  unknown ioctl                                ENOTTY     test_rule_vcpu_ioctls_and_mmap
 *   vcpu  v8: unknown ioctl                            EINVAL     test_rule_v8_ioctls
 *   vcpu  v8: RUN starts the VM (ensure_started)                  test_v8_user_memory
 *   vcpu  v8: resume copies the page's mmio.len        (checked)  test_rule_immediate_exit_v8
 *   mmap  vCPU: offset != 0 or more than one page      EINVAL     test_rule_vcpu_ioctls_and_mmap
 *   mmap  VM fd                                        ENODEV     test_rule_vcpu_ioctls_and_mmap
 *   mmap  guest memory beyond its size                 EINVAL     test_rule_map_mem
 *   v8 vm SET_USER_MEM_REGION bad flags / alignment    EINVAL     test_rule_v8_ioctls
 *   v8 vm SET_USER_MEM_REGION label used, overlap      EEXIST     test_rule_v8_ioctls
 *   v8 vm ADD_FUNCTION name other than "vcpu"          ENOENT     test_rule_v8_ioctls
 */
#define _GNU_SOURCE
#include "mock_gunyah.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static bool v8_mock(const struct vcpu_mock *m)
{
	return (m->cfg.flags & VCPU_MOCK_GUNYAH_V8) != 0;
}

/* copy_from_user(): NULL (or any pointer the test marks bad) faults. */
static int copy_in(void *dst, unsigned long arg, size_t size)
{
	if (!arg)
		return -EFAULT;
	memcpy(dst, (const void *)(uintptr_t)arg, size);
	return 0;
}

static bool page_aligned(const struct vcpu_mock *m, uint64_t v)
{
	return (v & (m->page_size - 1)) == 0;
}

/* ------------------------------------------------------------------------ */
/* Object lifetimes (mock lock held)                                          */

static void vcpu_put(struct mgh_vcpu *v)
{
	if (--v->refs)
		return;
	munmap(v->page, v->vm->mock->page_size);
	pthread_mutex_destroy(&v->run_lock);
	free(v);
}

static void binding_drop(struct vcpu_mock *m, struct mgh_binding *b)
{
	if (b->gmem)
		mock_file_put(m, b->gmem);
	b->gmem = NULL;
}

/* gunyah_vm_remove_function_instance(): unbind. */
static void fn_drop(struct mgh_fn *fn)
{
	if (fn->type == GUNYAH_FN_VCPU) {
		struct mgh_vcpu *v = fn->vcpu;

		/* gunyah_vcpu_unpopulate() + unbind: a sleeping run call leaves with EINTR. */
		__atomic_store_n(&((struct gunyah_vcpu_run *)v->page)->immediate_exit, 1,
				 __ATOMIC_SEQ_CST);
		v->bound = false;
		v->rsc = false;
		vcpu_put(v);
	} else if (fn->efd >= 0) {
		close(fn->efd);
	}
}

static void vm_put(struct mgh_vm *vm)
{
	if (--vm->refs)
		return;
	for (size_t i = 0; i < vm->nfn; i++)
		fn_drop(&vm->fn[i]);
	for (size_t i = 0; i < vm->nb; i++)
		binding_drop(vm->mock, &vm->b[i]);
	free(vm->fn);
	free(vm->b);
	free(vm);
}

static void gunyah_file_release(struct vcpu_mock *m, struct mock_file *f)
{
	(void)m;
	switch (f->subkind) {
	case MGH_VM:
		vm_put(f->obj);
		break;
	case MGH_VCPU: {
		struct mgh_vcpu *v = f->obj;
		struct mgh_vm *vm = v->vm;

		/* gunyah_vcpu_release(): the fd's VM reference and vCPU reference. */
		vcpu_put(v);
		vm_put(vm);
		break;
	}
	case MGH_GMEM: {
		struct mgh_gmem *g = f->obj;

		close(g->fd);
		free(g);
		break;
	}
	default:
		break;
	}
	f->obj = NULL;
}

/* ------------------------------------------------------------------------ */
/* Guest memory as the guest sees it                                          */

/*
 * The guest's access of @len bytes at @gpa through the bindings (v17) or
 * user regions (v8).  False when no binding covers it (attempt -ENOENT) or
 * it does not allow the access (-EPERM), as the kernel's demand paging
 * reports in page_fault.attempt.
 */
bool mgh_translate(struct mgh_vm *vm, uint64_t gpa, uint64_t len, bool write, int *attempt,
		   void *buf)
{
	for (size_t i = 0; i < vm->nb; i++) {
		const struct mgh_binding *b = &vm->b[i];
		uint32_t need;

		if (gpa < b->gpa || gpa + len > b->gpa + b->size || gpa + len < gpa)
			continue;
		if (vm->v8)
			need = write ? GH_MEM_ALLOW_WRITE : GH_MEM_ALLOW_READ;
		else
			need = write ? GUNYAH_MEM_ALLOW_WRITE : GUNYAH_MEM_ALLOW_READ;
		if (!(b->flags & need)) {
			*attempt = -EPERM;
			return false;
		}
		if (vm->v8) {
			void *host = (void *)(uintptr_t)(b->uaddr + (gpa - b->gpa));

			if (write)
				memcpy(host, buf, len);
			else
				memcpy(buf, host, len);
			return true;
		}
		{
			const struct mgh_gmem *g = b->gmem->obj;
			off_t off = (off_t)(b->off + (gpa - b->gpa));
			ssize_t n = write ? pwrite(g->fd, buf, len, off) : pread(g->fd, buf, len, off);

			if (n != (ssize_t)len) {
				*attempt = -ENOMEM;
				return false;
			}
		}
		return true;
	}
	*attempt = -ENOENT;
	return false;
}

/* The hypervisor starts the boot vCPU (0) with the boot context. */
void mgh_vcpu_load_boot(struct mgh_vcpu *v)
{
	const struct mgh_vm *vm = v->vm;

	if (v->id != 0)
		return;
	for (unsigned i = 0; i <= 30; i++)
		if (vm->boot_set[GUNYAH_REG_SET_X] & (1u << i))
			v->regs[i] = vm->boot[GUNYAH_REG_SET_X][i];
	if (vm->boot_set[GUNYAH_REG_SET_PC] & 1u)
		v->regs[MGH_REG_PC] = vm->boot[GUNYAH_REG_SET_PC][0];
	if (vm->boot_set[GUNYAH_REG_SET_SP] & 1u)
		v->regs[MGH_REG_SP] = vm->boot[GUNYAH_REG_SET_SP][0];
	if (vm->boot_set[GUNYAH_REG_SET_SP] & 2u)
		v->regs[MGH_REG_SP_EL1] = vm->boot[GUNYAH_REG_SET_SP][1];
}

/* The hypervisor made vCPU resources for ids below max_vcpus. */
static void populate(struct mgh_vm *vm, struct mgh_vcpu *v)
{
	if (vm->status != MGH_RUNNING || v->rsc || v->id >= vm->mock->cfg.max_vcpus)
		return;
	v->rsc = true;
	mgh_vcpu_load_boot(v);
}

static const struct mgh_binding *binding_at(const struct mgh_vm *vm, uint64_t gpa)
{
	for (size_t i = 0; i < vm->nb; i++)
		if (gpa >= vm->b[i].gpa && gpa - vm->b[i].gpa < vm->b[i].size)
			return &vm->b[i];
	return NULL;
}

/* gunyah_vm_start() / v8 gh_vm_start(), reduced to what userspace can see. */
int mgh_start(struct mgh_vm *vm)
{
	if (vm->status != MGH_NO_STATE)
		return vm->status == MGH_RUNNING ? 0 : -ENODEV;
	if (!vm->v8) {
		/* The status moves on before the DTB parcel is shared: a failure is final. */
		vm->status = MGH_LOAD;
		if (!vm->dtb_set || vm->dtb_size < vm->mock->page_size)
			return -EINVAL; /* share_parcel() of zero pages */
		if (!binding_at(vm, vm->dtb_gpa))
			return -ENOENT;
	}
	vm->status = MGH_RUNNING;
	for (size_t i = 0; i < vm->nfn; i++)
		if (vm->fn[i].type == GUNYAH_FN_VCPU)
			populate(vm, vm->fn[i].vcpu);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* VM functions                                                               */

static struct mgh_fn *fn_new(struct mgh_vm *vm)
{
	struct mgh_fn *fn;

	if (!mock_grow((void **)&vm->fn, &vm->cap_fn, vm->nfn, sizeof(*vm->fn)))
		return NULL;
	fn = &vm->fn[vm->nfn];
	memset(fn, 0, sizeof(*fn));
	fn->efd = -1;
	return fn;
}

static struct mgh_fn *find_vcpu_fn(struct mgh_vm *vm, uint32_t id)
{
	for (size_t i = 0; i < vm->nfn; i++)
		if (vm->fn[i].type == GUNYAH_FN_VCPU && vm->fn[i].id == id)
			return &vm->fn[i];
	return NULL;
}

struct mgh_fn *mgh_find_irqfd(struct mgh_vm *vm, uint32_t label)
{
	for (size_t i = 0; i < vm->nfn; i++)
		if (vm->fn[i].type == GUNYAH_FN_IRQFD && vm->fn[i].label == label)
			return &vm->fn[i];
	return NULL;
}

/* _gunyah_vm_io_handler_compare(): a handler without length or datamatch covers more. */
static bool io_same(const struct mgh_fn *a, uint64_t addr, uint32_t len, bool dm, uint64_t data)
{
	bool adm = a->flags & GUNYAH_IOEVENTFD_FLAGS_DATAMATCH;

	if (a->addr != addr)
		return false;
	if ((a->len == 0) != (len == 0))
		return true;
	if (a->len != len)
		return false;
	if (adm != dm)
		return true;
	return !dm || a->datamatch == data;
}

struct mgh_fn *mgh_find_ioeventfd(struct mgh_vm *vm, uint64_t addr, uint32_t len, uint64_t data)
{
	for (size_t i = 0; i < vm->nfn; i++)
		if (vm->fn[i].type == GUNYAH_FN_IOEVENTFD && io_same(&vm->fn[i], addr, len, true, data))
			return &vm->fn[i];
	return NULL;
}

/* gunyah_vcpu_bind(): a vCPU file with its zeroed run page. */
static int bind_vcpu(struct vcpu_mock *m, struct mgh_vm *vm, uint32_t id)
{
	struct mock_file *f;
	struct mgh_vcpu *v;
	struct mgh_fn *fn;
	int err = 0;

	if (find_vcpu_fn(vm, id))
		return -EEXIST; /* gunyah_vm_add_resource_ticket(): same type and label */
	fn = fn_new(vm);
	if (!fn)
		return -ENOMEM;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	f = mock_file_new(m, "gh-vcpu", MOCK_VCPU, m->page_size, &err);
	if (!f) {
		free(v);
		return err;
	}
	v->page = mmap(NULL, m->page_size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	if (v->page == MAP_FAILED) {
		err = -errno;
		free(v);
		mock_close_locked(m, f->fd);
		return err;
	}
	pthread_mutex_init(&v->run_lock, NULL);
	v->vm = vm;
	v->id = id;
	v->refs = 2; /* the function instance and the fd */
	v->bound = true;
	vm->refs++;  /* the fd's VM reference */
	f->subkind = MGH_VCPU;
	f->obj = v;
	fn->type = GUNYAH_FN_VCPU;
	fn->id = id;
	fn->vcpu = v;
	vm->nfn++;
	populate(vm, v); /* an unclaimed resource of a started VM */
	return f->fd;
}

static int bind_irqfd(struct mgh_vm *vm, const struct gunyah_fn_irqfd_arg *a)
{
	struct mgh_fn *fn;

	if (a->flags & ~GUNYAH_IRQFD_FLAGS_LEVEL)
		return -EINVAL;
	if (mock_check_eventfd((int)a->fd) < 0)
		return -EBADF;
	if (mgh_find_irqfd(vm, a->label))
		return -EEXIST;
	fn = fn_new(vm);
	if (!fn)
		return -ENOMEM;
	fn->efd = fcntl((int)a->fd, F_DUPFD_CLOEXEC, 0);
	if (fn->efd < 0)
		return -errno;
	fn->type = GUNYAH_FN_IRQFD;
	fn->label = a->label;
	fn->flags = a->flags;
	vm->nfn++;
	return 0;
}

static int bind_ioeventfd(struct mgh_vm *vm, const struct gunyah_fn_ioeventfd_arg *a)
{
	const bool dm = a->flags & GUNYAH_IOEVENTFD_FLAGS_DATAMATCH;
	struct mgh_fn *fn;

	if (a->flags & ~GUNYAH_IOEVENTFD_FLAGS_DATAMATCH)
		return -EINVAL;
	if (a->len != 0 && a->len != 1 && a->len != 2 && a->len != 4 && a->len != 8)
		return -EINVAL;
	if (dm && a->len == 0)
		return -EINVAL;
	if (mock_check_eventfd(a->fd) < 0)
		return -EBADF;
	for (size_t i = 0; i < vm->nfn; i++)
		if (vm->fn[i].type == GUNYAH_FN_IOEVENTFD &&
		    io_same(&vm->fn[i], a->addr, a->len, dm, a->datamatch))
			return -EEXIST;
	fn = fn_new(vm);
	if (!fn)
		return -ENOMEM;
	fn->efd = fcntl(a->fd, F_DUPFD_CLOEXEC, 0);
	if (fn->efd < 0)
		return -errno;
	fn->type = GUNYAH_FN_IOEVENTFD;
	fn->addr = a->addr;
	fn->len = a->len;
	fn->flags = a->flags;
	fn->datamatch = dm ? a->datamatch : 0;
	vm->nfn++;
	return 0;
}

/* gunyah_vm_add_function_instance() and the types' bind(). */
static int add_function(struct vcpu_mock *m, struct mgh_vm *vm, unsigned long arg)
{
	uint8_t buf[GUNYAH_FN_MAX_ARG_SIZE];
	struct gunyah_fn_desc d;
	int r = copy_in(&d, arg, sizeof(d));

	if (r < 0)
		return r;
	if (d.arg_size > GUNYAH_FN_MAX_ARG_SIZE)
		return -EINVAL;
	if (d.arg_size && copy_in(buf, (unsigned long)d.arg, d.arg_size) < 0)
		return -EFAULT;
	switch (d.type) {
	case GUNYAH_FN_VCPU: {
		struct gunyah_fn_vcpu_arg a;

		if (d.arg_size != sizeof(a))
			return -EINVAL;
		memcpy(&a, buf, sizeof(a));
		return bind_vcpu(m, vm, a.id);
	}
	case GUNYAH_FN_IRQFD: {
		struct gunyah_fn_irqfd_arg a;

		if (d.arg_size != sizeof(a))
			return -EINVAL;
		memcpy(&a, buf, sizeof(a));
		return bind_irqfd(vm, &a);
	}
	case GUNYAH_FN_IOEVENTFD: {
		struct gunyah_fn_ioeventfd_arg a;

		if (d.arg_size != sizeof(a))
			return -EINVAL;
		memcpy(&a, buf, sizeof(a));
		return bind_ioeventfd(vm, &a);
	}
	default:
		return -ENOENT; /* gunyah_vm_get_function(): no such function type */
	}
}

/* gunyah_vm_rm_function_instance(): every instance the type's compare() matches. */
static int remove_function(struct mgh_vm *vm, unsigned long arg)
{
	uint8_t buf[GUNYAH_FN_MAX_ARG_SIZE];
	struct gunyah_fn_desc d;
	int r = copy_in(&d, arg, sizeof(d)), found = -ENOENT;

	if (r < 0)
		return r;
	if (d.arg_size > GUNYAH_FN_MAX_ARG_SIZE)
		return -EINVAL;
	if (d.arg_size && copy_in(buf, (unsigned long)d.arg, d.arg_size) < 0)
		return -EFAULT;
	for (size_t i = 0; i < vm->nfn;) {
		struct mgh_fn *fn = &vm->fn[i];
		bool match = false;

		if (fn->type == d.type) {
			if (d.type == GUNYAH_FN_VCPU && d.arg_size == sizeof(struct gunyah_fn_vcpu_arg)) {
				struct gunyah_fn_vcpu_arg a;

				memcpy(&a, buf, sizeof(a));
				match = a.id == fn->id;
			} else if (d.type == GUNYAH_FN_IRQFD &&
				   d.arg_size == sizeof(struct gunyah_fn_irqfd_arg)) {
				struct gunyah_fn_irqfd_arg a;

				memcpy(&a, buf, sizeof(a));
				match = a.label == fn->label;
			} else if (d.type == GUNYAH_FN_IOEVENTFD &&
				   d.arg_size == sizeof(struct gunyah_fn_ioeventfd_arg)) {
				struct gunyah_fn_ioeventfd_arg a;

				memcpy(&a, buf, sizeof(a));
				match = a.addr == fn->addr && a.len == fn->len && a.flags == fn->flags &&
					(!(a.flags & GUNYAH_IOEVENTFD_FLAGS_DATAMATCH) ||
					 a.datamatch == fn->datamatch);
			}
		}
		if (!match) {
			i++;
			continue;
		}
		fn_drop(fn);
		vm->fn[i] = vm->fn[--vm->nfn];
		found = 0;
	}
	return found;
}

/* ------------------------------------------------------------------------ */
/* Guest memory bindings                                                      */

static bool is_lend(uint32_t flags)
{
	/* DEFAULT: "RM requires all VMs to be protected". */
	return (flags & GUNYAH_MEM_ACCESS_MASK) != GUNYAH_MEM_FORCE_SHARE;
}

static int unmap_mem(struct vcpu_mock *m, struct mgh_vm *vm, const struct gunyah_map_mem_args *a,
		     struct mock_file *gf)
{
	uint32_t flags = a->flags & ~GUNYAH_MEM_UNMAP;

	/* gunyah_gmem_remove_mapping(): a binding of this memory with the same flags. */
	for (size_t i = 0; i < vm->nb; i++) {
		struct mgh_binding *b = &vm->b[i];
		uint64_t start, end;

		if (b->gmem != gf || b->flags != flags)
			continue;
		if (a->guest_addr < b->gpa || a->guest_addr + a->size > b->gpa + b->size)
			continue;
		start = a->guest_addr - b->gpa;
		if (a->offset - b->off != start)
			continue;
		end = b->gpa + b->size - (a->guest_addr + a->size);
		if (!start && !end) {
			binding_drop(m, b);
			vm->b[i] = vm->b[--vm->nb];
		} else if (start && !end) {
			b->size = start;
		} else if (!start && end) {
			b->gpa += a->size;
			b->off += a->size;
			b->size -= a->size;
		} else {
			return -EINVAL; /* no split in two */
		}
		return 0;
	}
	return -ENOENT;
}

/* gunyah_gmem_modify_binding(). */
static int map_mem(struct vcpu_mock *m, struct mgh_vm *vm, unsigned long arg)
{
	struct gunyah_map_mem_args a;
	uint32_t access;
	struct mock_file *gf = NULL;
	struct mgh_binding *b;
	int r = copy_in(&a, arg, sizeof(a));

	if (r < 0)
		return r;
	for (size_t i = 0; i < m->nfiles; i++)
		if (m->files[i]->fd == (int)a.guest_mem_fd && m->files[i]->subkind == MGH_GMEM &&
		    m->files[i]->obj)
			gf = m->files[i];
	if (!gf)
		return -EINVAL; /* fget() failed or not a guest memory file */
	access = a.flags & GUNYAH_MEM_ACCESS_MASK;
	if (a.flags & ~(GUNYAH_MEM_ALLOW_RWX | GUNYAH_MEM_UNMAP | GUNYAH_MEM_ACCESS_MASK))
		return -EINVAL;
	if (!(a.flags & GUNYAH_MEM_ALLOW_RWX))
		return -EINVAL;
	if (access != GUNYAH_MEM_DEFAULT_ACCESS && access != GUNYAH_MEM_FORCE_LEND &&
	    access != GUNYAH_MEM_FORCE_SHARE)
		return -EINVAL;
	if (!page_aligned(m, a.guest_addr) || !page_aligned(m, a.offset) || !page_aligned(m, a.size))
		return -EINVAL;
	if (a.flags & GUNYAH_MEM_UNMAP)
		return unmap_mem(m, vm, &a, gf);
	for (size_t i = 0; i < vm->nb; i++) {
		const struct mgh_binding *o = &vm->b[i];

		/* The VM's layout tree takes one binding per guest page. */
		if (a.guest_addr < o->gpa + o->size && o->gpa < a.guest_addr + a.size)
			return -EEXIST;
		/* A lent page goes to one binding only. */
		if (o->gmem == gf && (is_lend(o->flags) || is_lend(a.flags)))
			return -EEXIST;
	}
	if (!mock_grow((void **)&vm->b, &vm->cap_b, vm->nb, sizeof(*vm->b)))
		return -ENOMEM;
	b = &vm->b[vm->nb++];
	memset(b, 0, sizeof(*b));
	b->gpa = a.guest_addr;
	b->size = a.size;
	b->off = a.offset;
	b->flags = a.flags;
	b->gmem = gf;
	gf->refs++; /* the binding holds the file */
	return 0;
}

/* v8 gh_vm_mem_alloc() / gh_vm_mem_free(). */
static int v8_user_region(struct vcpu_mock *m, struct mgh_vm *vm, unsigned long arg)
{
	struct gh_userspace_memory_region r8;
	struct mgh_binding *b;
	int r = copy_in(&r8, arg, sizeof(r8));

	if (r < 0)
		return r;
	if (r8.flags & ~(GH_MEM_ALLOW_READ | GH_MEM_ALLOW_WRITE | GH_MEM_ALLOW_EXEC | GH_MEM_LENT))
		return -EINVAL;
	if (!r8.memory_size) {
		/* Freeing a label that does not exist is not an error. */
		for (size_t i = 0; i < vm->nb; i++)
			if (vm->b[i].label == r8.label) {
				vm->b[i] = vm->b[--vm->nb];
				break;
			}
		return 0;
	}
	if (!page_aligned(m, r8.memory_size) || !page_aligned(m, r8.userspace_addr) ||
	    !page_aligned(m, r8.guest_phys_addr))
		return -EINVAL;
	for (size_t i = 0; i < vm->nb; i++) {
		const struct mgh_binding *o = &vm->b[i];

		if (o->label == r8.label)
			return -EEXIST;
		if (r8.guest_phys_addr < o->gpa + o->size && o->gpa < r8.guest_phys_addr + r8.memory_size)
			return -EEXIST;
	}
	if (!r8.userspace_addr)
		return -EFAULT; /* pin_user_pages_fast() */
	if (!mock_grow((void **)&vm->b, &vm->cap_b, vm->nb, sizeof(*vm->b)))
		return -ENOMEM;
	b = &vm->b[vm->nb++];
	memset(b, 0, sizeof(*b));
	b->label = r8.label;
	b->flags = r8.flags;
	b->gpa = r8.guest_phys_addr;
	b->size = r8.memory_size;
	b->uaddr = r8.userspace_addr;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* ioctls                                                                     */

static int create_vm(struct vcpu_mock *m, unsigned long arg)
{
	struct mock_file *f;
	struct mgh_vm *vm;
	int err = 0;

	if (arg)
		return -EINVAL; /* arg reserved for future use */
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	f = mock_file_new(m, "gunyah-vm", MOCK_VM, 0, &err);
	if (!f) {
		free(vm);
		return err;
	}
	vm->mock = m;
	vm->refs = 1;
	vm->v8 = v8_mock(m);
	f->subkind = MGH_VM;
	f->obj = vm;
	return f->fd;
}

static int create_guest_mem(struct vcpu_mock *m, unsigned long arg)
{
	struct gunyah_create_mem_args a;
	struct mock_file *f;
	struct mgh_gmem *g;
	int err = copy_in(&a, arg, sizeof(a));

	if (err < 0)
		return err;
	if (!page_aligned(m, a.size))
		return -EINVAL;
	if (a.flags & ~(GHMF_CLOEXEC | GHMF_ALLOW_HUGEPAGE))
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	f = mock_file_new(m, "gunyah-gmem", MOCK_DEV, a.size, &err);
	if (!f) {
		free(g);
		return err;
	}
	g->fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
	if (g->fd < 0) {
		err = -errno;
		free(g);
		mock_close_locked(m, f->fd);
		return err;
	}
	g->size = a.size;
	g->flags = a.flags;
	f->subkind = MGH_GMEM;
	f->obj = g;
	return f->fd;
}

static int dev_ioctl(struct vcpu_mock *m, unsigned long req, unsigned long arg)
{
	if (req == GUNYAH_CREATE_VM) /* == GH_CREATE_VM */
		return create_vm(m, arg);
	if (req == GUNYAH_CREATE_GUEST_MEM && !v8_mock(m))
		return create_guest_mem(m, arg);
	return -ENOTTY;
}

static int set_boot_context(struct mgh_vm *vm, unsigned long arg)
{
	struct gunyah_vm_boot_context b;
	uint8_t set, idx;
	int r = copy_in(&b, arg, sizeof(b));

	if (r < 0)
		return r;
	set = (uint8_t)(b.reg >> 8);
	idx = (uint8_t)b.reg;
	switch (set) {
	case GUNYAH_REG_SET_X:
		if (idx > 31)
			return -EINVAL;
		break;
	case GUNYAH_REG_SET_PC:
		if (idx)
			return -EINVAL;
		break;
	case GUNYAH_REG_SET_SP:
		if (idx > 2)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	if (vm->status != MGH_NO_STATE)
		return -EINVAL;
	vm->boot[set][idx] = b.value;
	vm->boot_set[set] |= 1u << idx;
	return 0;
}

static int v8_add_function(struct vcpu_mock *m, struct mgh_vm *vm, unsigned long arg)
{
	struct gh_vm_function f8;
	int r = copy_in(&f8, arg, sizeof(f8));

	if (r < 0)
		return r;
	if (memchr(f8.name, '\0', sizeof(f8.name)) == NULL || strcmp(f8.name, "vcpu") != 0)
		return -ENOENT;
	return bind_vcpu(m, vm, f8.vcpu.vcpu_id);
}

static int vm_ioctl(struct vcpu_mock *m, struct mgh_vm *vm, unsigned long req, unsigned long arg)
{
	if (req == GUNYAH_VM_START) /* == GH_VM_START */
		return mgh_start(vm);
	if (vm->v8) {
		switch (req) {
		case GH_VM_SET_USER_MEM_REGION:
			return v8_user_region(m, vm, arg);
		case GH_VM_SET_DTB_CONFIG: {
			struct gh_vm_dtb_config c;
			int r = copy_in(&c, arg, sizeof(c));

			if (r == 0) {
				vm->dtb_set = true;
				vm->dtb_gpa = c.gpa;
				vm->dtb_size = c.size;
			}
			return r;
		}
		case GH_VM_ADD_FUNCTION:
			return v8_add_function(m, vm, arg);
		default:
			return -ENOTTY;
		}
	}
	switch (req) {
	case GUNYAH_VM_SET_DTB_CONFIG: {
		struct gunyah_vm_dtb_config c;
		int r = copy_in(&c, arg, sizeof(c));

		if (r < 0)
			return r;
		if (c.guest_phys_addr + c.size < c.guest_phys_addr)
			return -EOVERFLOW;
		vm->dtb_set = true;
		vm->dtb_gpa = c.guest_phys_addr;
		vm->dtb_size = c.size;
		return 0;
	}
	case GUNYAH_VM_ADD_FUNCTION:
		return add_function(m, vm, arg);
	case GUNYAH_VM_REMOVE_FUNCTION:
		return remove_function(vm, arg);
	case GUNYAH_VM_MAP_MEM:
		return map_mem(m, vm, arg);
	case GUNYAH_VM_SET_BOOT_CONTEXT:
		return set_boot_context(vm, arg);
	default:
		return -ENOTTY;
	}
}

static int gunyah_ioctl(struct vcpu_mock *m, struct mock_file *f, unsigned long req,
			unsigned long arg)
{
	int r;

	if (f->subkind == MGH_VCPU) {
		struct mgh_vcpu *v = f->obj;

		if (req == GUNYAH_VCPU_RUN) /* == GH_VCPU_RUN */
			return mgh_vcpu_run(m, v);
		if (req == GUNYAH_VCPU_MMAP_SIZE)
			return (int)m->page_size;
		return v8_mock(m) ? -EINVAL : -ENOTTY;
	}
	pthread_mutex_lock(&m->lock);
	switch (f->kind) {
	case MOCK_SYS:
		r = dev_ioctl(m, req, arg);
		break;
	case MOCK_VM:
		r = vm_ioctl(m, f->obj, req, arg);
		break;
	default:
		r = -ENOTTY; /* guest memory files take no ioctls */
		break;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int gunyah_mmap_check(const struct vcpu_mock *m, const struct mock_file *f, size_t len,
			     off_t off)
{
	const struct mgh_gmem *g;

	switch (f->subkind) {
	case MGH_VCPU:
		/* gunyah_vcpu_fault() provides page 0 only. */
		return off == 0 && len > 0 && len <= m->page_size ? 0 : -EINVAL;
	case MGH_GMEM:
		g = f->obj;
		if (len == 0 || off < 0 || (uint64_t)off > g->size || len > g->size - (uint64_t)off)
			return -EINVAL;
		return 0;
	default:
		return -ENODEV; /* no mmap file operation */
	}
}

const struct mock_driver mock_gunyah_driver = {
	.backend = VCPU_BACKEND_GUNYAH,
	.node = "/dev/gunyah",
	.name = "gunyah",
	.arches = 1u << VCPU_ARCH_ARM64,
	.flags = VCPU_MOCK_GUNYAH_V8,
	.ioctl = gunyah_ioctl,
	.mmap_check = gunyah_mmap_check,
	.file_release = gunyah_file_release,
	.step_valid = mgh_step_valid,
};
