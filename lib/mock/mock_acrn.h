/* SPDX-License-Identifier: MIT */
/*
 * The modelled ACRN HSM (mock_acrn.c): its per-file VM object and the test
 * helpers that let a suite look at what the "hypervisor" was told.  Not
 * installed; the helpers are not exported from libvcpu.so (tests link the
 * static library).
 */
#ifndef VCPU_MOCK_ACRN_H
#define VCPU_MOCK_ACRN_H

#include "mock.h"
#include "../acrn/acrn_abi.h"

enum macrn_state { MACRN_NONE = 0, MACRN_CREATED, MACRN_RUNNING, MACRN_PAUSED };

struct macrn_memseg {
	uint32_t type, attr;
	uint64_t gpa, hva, len;
};

struct macrn_evfd {
	int fd;            /* the eventfd, by number (the process is the mock's only user) */
	bool pio, wildcard;
	uint32_t len;
	uint64_t addr, data;
};

/* What a vCPU of the modelled hypervisor is doing. */
struct macrn_vcpu {
	bool busy;                 /* its slot holds a request not completed yet */
	bool kernel;               /* ...dispatched to an in-kernel client */
	bool stuck;                /* a RAW_SLOT step left the slot in a state nobody completes */
	bool spinning;             /* at a SPIN step: ends when ATTACH is interrupted */
	uint32_t item;             /* the request of the step in flight (port I/O item, PCI phase) */
	uint32_t nitems;           /* ...of how many */
	size_t idx;                /* script index of the step in flight */
	unsigned gen;              /* ...and of which script */
	struct vcpu_mock_step step;
	uint64_t expect;           /* read: the value the VMM must complete it with */
	bool expect_read;
	struct acrn_vcpu_regs regs; /* what SET_VCPU_REGS delivered */
	unsigned nregs;             /* how many times */
};

struct macrn_vm {
	enum macrn_state state;
	uint16_t vmid, vcpu_num;
	char name[ACRN_NAME_LEN];
	uint64_t affinity, vm_flag;
	struct acrn_io_request *slots;  /* the VMM's pinned page */
	bool client;                    /* the default (userspace) client */
	unsigned client_gen;            /* bumped when it is destroyed */
	uint32_t ioreqs_map;            /* the default client's pending bits */
	uint32_t pci_conf_addr;         /* the HSM's 0xCF8 latch */
	struct macrn_vcpu vcpu[ACRN_IO_REQUEST_MAX];
	struct macrn_memseg *segs;
	size_t nsegs, cap_segs;
	struct macrn_evfd *ioevfds;
	size_t nioevfds, cap_ioevfds;
	struct macrn_evfd *irqfds;      /* .data/.addr: the MSI; .fd the eventfd */
	size_t nirqfds, cap_irqfds;
	uint8_t irq_level[MOCK_MAX_IRQS];
	unsigned irq_pulses[MOCK_MAX_IRQS];
	unsigned nmsi;
	uint64_t msi_addr, msi_data;    /* the last MSI injected */
	unsigned nclear, nreset, nstart, npause;
};


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


static inline struct acrn_io_request *slot_of(struct macrn_vm *vm, uint32_t i)
{
	return &vm->slots[i];
}

static inline uint32_t slot_state(const struct acrn_io_request *s)
{
	return __atomic_load_n(&s->processed, __ATOMIC_ACQUIRE);
}

static inline void set_state(struct acrn_io_request *s, uint32_t state)
{
	__atomic_store_n(&s->processed, state, __ATOMIC_RELEASE);
}

/* mock_acrn_guest.c, for the HSM's ioctls (mock_acrn.c); the mock lock held. */
void macrn_complete_slot(struct vcpu_mock *m, struct macrn_vm *vm, uint32_t id, bool check);
void macrn_advance(struct vcpu_mock *m, struct macrn_vm *vm);
void macrn_end_spins(struct vcpu_mock *m, struct macrn_vm *vm);

/*
 * Test helpers.  @fd is the library's VM fd (struct vcpu_vm.fd).  Each
 * returns 0, or -EBADF when @fd holds no created ACRN VM.
 */
struct mock_acrn_info {
	uint32_t state;             /* enum macrn_state */
	uint16_t vmid, vcpu_num;
	char name[ACRN_NAME_LEN];
	uint64_t affinity;
	bool client;
	unsigned nsegs, nclear, nreset, nstart, npause;
	struct macrn_memseg last_seg;
	uint32_t slot_state[ACRN_IO_REQUEST_MAX];
};
int mock_acrn_info(const struct vcpu_mock *m, int fd, struct mock_acrn_info *out);
/*
 * Tests only: run @hook(@arg) in the calling thread whenever the VMM sends
 * NOTIFY_REQUEST_FINISH, before the mock handles it (NULL: none), to put
 * another thread's call exactly between a completion and its notify.
 */
void mock_acrn_set_notify_hook(struct vcpu_mock *m, void (*hook)(void *arg), void *arg);
/* The registers vCPU @vcpu last received and how often (*count). */
int mock_acrn_regs(const struct vcpu_mock *m, int fd, uint32_t vcpu, struct acrn_vcpu_regs *out,
		   unsigned *count);
/* GSI @gsi: its level and the pulses it saw. */
int mock_acrn_irq(const struct vcpu_mock *m, int fd, uint32_t gsi, int *level, unsigned *pulses);
/*
 * MSIs injected so far (INJECT_MSI, and irqfds: their eventfds are read
 * here, as the HSM's wait-queue callback would on the write) and the last.
 */
int mock_acrn_msi(struct vcpu_mock *m, int fd, unsigned *count, uint64_t *addr, uint64_t *data);

#endif
