/* SPDX-License-Identifier: MIT */
/*
 * The modelled Gunyah driver's objects, shared by mock_gunyah.c (device, VM
 * and function ioctls, guest memory) and mock_gunyah_guest.c (the vCPU run
 * call and the scripted guest).  Not installed.
 *
 * Lifetimes follow the kernel (the v17 series' gunyah_vcpu.c, doc/abi/gunyah.md A.1): the VM
 * lives while its fd or any vCPU fd is open; a vCPU object lives while its
 * function instance (removed by GUNYAH_VM_REMOVE_FUNCTION or VM teardown)
 * or its fd exists; a guest memory object lives while its fd or a binding
 * of it exists.  All state is guarded by vcpu_mock.lock; a vCPU's run_lock
 * (the kernel's vcpu->run_lock) is taken first by the run call.
 */
#ifndef VCPU_MOCK_GUNYAH_H
#define VCPU_MOCK_GUNYAH_H

#include "mock.h"
#include "../gunyah/gunyah_abi.h"

enum mgh_subkind {
	MGH_VM = 1,
	MGH_VCPU = 2,
	MGH_GMEM = 3,
};

/* The resource manager's view of the VM (gunyah_rm_vm_status, reduced). */
enum mgh_status {
	MGH_NO_STATE = 0,
	MGH_LOAD,        /* a start began and failed: never runnable */
	MGH_RUNNING,
	MGH_EXITED,
	MGH_CRASHED,
	MGH_INIT_FAILED,
};

/* Where the guest's registers live in mgh_vcpu.regs. */
#define MGH_REG_PC 31
#define MGH_REG_SP 32
#define MGH_REG_SP_EL1 33
#define MGH_NREGS 34

struct mgh_gmem {
	int fd;          /* our own descriptor of the memfd: the file's may be closed */
	uint64_t size;
	uint64_t flags;
};

struct mgh_binding {
	uint64_t gpa, size;
	uint32_t flags;          /* v17 gunyah_map_flags / v8 GH_MEM_* */
	uint64_t off;            /* v17: offset into the guest memory */
	struct mock_file *gmem;  /* v17: holds a reference */
	uint32_t label;          /* v8 */
	uint64_t uaddr;          /* v8: the VMM's memory */
};

struct mgh_vcpu;

struct mgh_fn {
	uint32_t type;           /* GUNYAH_FN_* */
	/* VCPU */
	uint32_t id;
	struct mgh_vcpu *vcpu;
	/* IRQFD, IOEVENTFD: our duplicate of the eventfd (the kernel's eventfd_ctx) */
	int efd;
	uint32_t label, flags;
	uint64_t addr, datamatch;
	uint32_t len;
};

struct mgh_vm {
	struct vcpu_mock *mock;
	unsigned refs;              /* the VM fd + every vCPU fd */
	bool v8;
	enum mgh_status status;
	struct gunyah_vm_exit_info exit_info;
	bool dtb_set;
	uint64_t dtb_gpa, dtb_size;
	uint64_t boot[3][32];       /* boot context by register set and index */
	uint32_t boot_set[3];       /* bit per index */
	struct mgh_binding *b;
	size_t nb, cap_b;
	struct mgh_fn *fn;
	size_t nfn, cap_fn;
};

enum mgh_run_state {
	MGH_ST_UNKNOWN = 0,
	MGH_ST_READY,
	MGH_ST_MMIO_READ,
	MGH_ST_MMIO_WRITE,
	MGH_ST_DOWN,
};

struct mgh_vcpu {
	struct mgh_vm *vm;
	uint32_t id;
	unsigned refs;              /* the function instance + the fd */
	bool bound;                 /* the function instance exists (vcpu->f) */
	bool rsc;                   /* the hypervisor resource was handed over (vcpu->rsc) */
	pthread_mutex_t run_lock;
	void *page;                 /* our mapping of the run page */
	enum mgh_run_state state;
	uint8_t mmio_read_len;      /* v17: the kernel's own copy */
	bool handle_mmio;           /* v8 */
	uint32_t v8_len;            /* v8: the len we wrote, to catch a VMM changing it */
	/* The access that exited and awaits its resume (or, retried, runs again). */
	bool pending, retry;
	bool pwrite;                /* the access is a store */
	bool pram;                  /* a RAM load or store that exited (no register load) */
	size_t pidx;
	struct vcpu_mock_step pstep;
	uint64_t regs[MGH_NREGS];
	unsigned aborts;            /* FAULT resumes: aborts injected into the guest */
};

/*
 * Call @hook(@arg) in every run call that has just taken a resume, before
 * it looks at immediate_exit and signals (gunyah_vcpu_run()'s window);
 * NULL: none.  A signal sent through the seam from the hook counts as one
 * pending there.
 */
void mock_gunyah_set_resume_hook(struct vcpu_mock *m, void (*hook)(void *arg), void *arg);

/* mock_gunyah.c */
bool mgh_translate(struct mgh_vm *vm, uint64_t gpa, uint64_t len, bool write, int *attempt,
		   void *buf);
void mgh_vcpu_load_boot(struct mgh_vcpu *v);
struct mgh_fn *mgh_find_ioeventfd(struct mgh_vm *vm, uint64_t addr, uint32_t len, uint64_t data);
struct mgh_fn *mgh_find_irqfd(struct mgh_vm *vm, uint32_t label);
int mgh_start(struct mgh_vm *vm);

/* mock_gunyah_guest.c */
int mgh_vcpu_run(struct vcpu_mock *m, struct mgh_vcpu *v);
bool mgh_step_valid(const struct vcpu_mock *m, const struct vcpu_mock_step *s);
int mgh_reg_index(uint64_t reg);

#endif
