// SPDX-License-Identifier: MIT
/*
 * The modelled KVM driver: ioctl decoding (which number is valid on which
 * fd, for which guest architecture) and the system, VM and vGICv3 device
 * ioctls, the x86 VM state ones (irqchip, PIT, kvmclock) included.  vCPU ioctls live in mock_vcpu.c, KVM_RUN in mock_guest.c.
 *
 * Section references (§) are to doc/abi/kvm.md.  Where the modelled
 * kernel is stricter or more specific than doc/abi/kvm.md, the comment says what
 * Linux does and why the mock does it.
 */
#define _GNU_SOURCE
#include "mock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ARCH_X86 1u
#define ARCH_ARM 2u
#define ARCH_ALL (ARCH_X86 | ARCH_ARM)

#define KVM_IOCTL_TYPE 0xAEu /* §1 KVMIO */

struct ioctl_rule {
	unsigned long req;
	unsigned kinds;  /* enum mock_kind bits */
	unsigned arches; /* ARCH_* */
};

/* §2: every ioctl the mock models, the fds it is valid on, and for which guest. */
static const struct ioctl_rule rules[] = {
	{ KVM_GET_API_VERSION, MOCK_SYS, ARCH_ALL },
	{ KVM_CREATE_VM, MOCK_SYS, ARCH_ALL },
	{ KVM_CHECK_EXTENSION, MOCK_SYS | MOCK_VM, ARCH_ALL },
	{ KVM_GET_VCPU_MMAP_SIZE, MOCK_SYS, ARCH_ALL },
	{ KVM_GET_SUPPORTED_CPUID, MOCK_SYS, ARCH_X86 },
	{ KVM_CREATE_VCPU, MOCK_VM, ARCH_ALL },
	{ KVM_SET_USER_MEMORY_REGION, MOCK_VM, ARCH_ALL },
	{ KVM_GET_DIRTY_LOG, MOCK_VM, ARCH_ALL },
	{ KVM_CLEAR_DIRTY_LOG, MOCK_VM, ARCH_ALL },
	{ KVM_SET_TSS_ADDR, MOCK_VM, ARCH_X86 },
	{ KVM_CREATE_IRQCHIP, MOCK_VM, ARCH_ALL },
	{ KVM_IRQ_LINE, MOCK_VM, ARCH_ALL },
	{ KVM_CREATE_PIT2, MOCK_VM, ARCH_X86 },
	{ KVM_ENABLE_CAP, MOCK_VM | MOCK_VCPU, ARCH_ALL },
	{ KVM_CREATE_DEVICE, MOCK_VM, ARCH_ALL },
	{ KVM_SET_DEVICE_ATTR, MOCK_VM | MOCK_VCPU | MOCK_DEV, ARCH_ALL },
	{ KVM_GET_DEVICE_ATTR, MOCK_VCPU | MOCK_DEV, ARCH_ALL },
	{ KVM_HAS_DEVICE_ATTR, MOCK_VM | MOCK_VCPU | MOCK_DEV, ARCH_ALL },
	{ KVM_ARM_PREFERRED_TARGET, MOCK_VM, ARCH_ARM },
	{ KVM_RUN, MOCK_VCPU, ARCH_ALL },
	{ KVM_GET_REGS_X86, MOCK_VCPU, ARCH_X86 },
	{ KVM_SET_REGS_X86, MOCK_VCPU, ARCH_X86 },
	{ KVM_GET_SREGS, MOCK_VCPU, ARCH_X86 },
	{ KVM_SET_SREGS, MOCK_VCPU, ARCH_X86 },
	{ KVM_SET_CPUID2, MOCK_VCPU, ARCH_X86 },
	{ KVM_GET_REGS_ARM64, MOCK_VCPU, ARCH_ARM },
	{ KVM_SET_REGS_ARM64, MOCK_VCPU, ARCH_ARM },
	{ KVM_GET_ONE_REG, MOCK_VCPU, ARCH_ARM },
	{ KVM_SET_ONE_REG, MOCK_VCPU, ARCH_ARM },
	{ KVM_ARM_VCPU_INIT, MOCK_VCPU, ARCH_ARM },
	{ KVM_GET_MP_STATE, MOCK_VCPU, ARCH_ALL },
	{ KVM_SET_MP_STATE, MOCK_VCPU, ARCH_ALL },
	{ KVM_SET_SIGNAL_MASK, MOCK_VCPU, ARCH_ALL },
	{ KVM_IRQFD, MOCK_VM, ARCH_ALL },
	{ KVM_IOEVENTFD, MOCK_VM, ARCH_ALL },
	{ KVM_SIGNAL_MSI, MOCK_VM, ARCH_ALL },
	/* §8 state save and restore. */
	{ KVM_GET_MSR_INDEX_LIST, MOCK_SYS, ARCH_X86 },
	{ KVM_GET_MSRS, MOCK_VCPU, ARCH_X86 },
	{ KVM_SET_MSRS, MOCK_VCPU, ARCH_X86 },
	{ KVM_GET_XSAVE, MOCK_VCPU, ARCH_X86 },
	{ KVM_GET_XSAVE2, MOCK_VCPU, ARCH_X86 },
	{ KVM_GET_TSC_KHZ, MOCK_VCPU, ARCH_X86 },
	{ KVM_SET_TSC_KHZ, MOCK_VCPU, ARCH_X86 },
	{ KVM_SET_XSAVE, MOCK_VCPU, ARCH_X86 },
	{ KVM_GET_XCRS, MOCK_VCPU, ARCH_X86 },
	{ KVM_SET_XCRS, MOCK_VCPU, ARCH_X86 },
	{ KVM_GET_DEBUGREGS, MOCK_VCPU, ARCH_X86 },
	{ KVM_SET_DEBUGREGS, MOCK_VCPU, ARCH_X86 },
	{ KVM_GET_VCPU_EVENTS, MOCK_VCPU, ARCH_X86 },
	{ KVM_SET_VCPU_EVENTS, MOCK_VCPU, ARCH_X86 },
	{ KVM_GET_LAPIC, MOCK_VCPU, ARCH_X86 },
	{ KVM_SET_LAPIC, MOCK_VCPU, ARCH_X86 },
	{ KVM_GET_IRQCHIP, MOCK_VM, ARCH_X86 },
	{ KVM_SET_IRQCHIP, MOCK_VM, ARCH_X86 },
	{ KVM_GET_PIT2, MOCK_VM, ARCH_X86 },
	{ KVM_SET_PIT2, MOCK_VM, ARCH_X86 },
	{ KVM_GET_CLOCK, MOCK_VM, ARCH_X86 },
	{ KVM_SET_CLOCK, MOCK_VM, ARCH_X86 },
	{ KVM_GET_REG_LIST, MOCK_VCPU, ARCH_ARM },
	/* §9 vCPU features. */
	{ KVM_ARM_VCPU_FINALIZE, MOCK_VCPU, ARCH_ARM },
};

/*
 * Decode the number (dir/size/type/nr, README "ioctl encoding") and reject
 * what the driver would not recognise on this fd.  Linux itself answers
 * some unknown numbers with EINVAL rather than ENOTTY; the mock always says
 * ENOTTY, the "no such ioctl here" answer a VMM must treat as absent.
 */
static int check_request(const struct vcpu_mock *m, enum mock_kind kind, unsigned long req,
			 unsigned long arg)
{
	unsigned arch = mock_is_arm64(m) ? ARCH_ARM : ARCH_X86;
	const struct ioctl_rule *rule = NULL;

	if (KVMABI_IOC_TYPE(req) != KVM_IOCTL_TYPE)
		return -ENOTTY;
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i].req == req)
			rule = &rules[i];
	/* The size and direction are part of the number: a wrong struct size misses here. */
	if (!rule || !(rule->kinds & kind) || !(rule->arches & arch))
		return -ENOTTY;
	/* A pointer argument of 0 faults in copy_from_user (SET_SIGNAL_MASK: NULL clears). */
	if (KVMABI_IOC_DIR(req) != 0 && arg == 0 && req != KVM_SET_SIGNAL_MASK)
		return -EFAULT;
	return 0;
}

/* A clock in nanoseconds, as u64 (the kernel's ktime_get*_ns()). */
static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* KVM_CLOCK_VALID_FLAGS: what KVM_CAP_ADJUST_CLOCK answers and KVM_SET_CLOCK accepts. */
#define MOCK_CLOCK_VALID_FLAGS (KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC)

/* ------------------------------------------------------------------------ */
/* /dev/kvm                                                                   */

/* §2 capabilities, answered for the modelled architecture and configuration. */
static int check_extension(const struct vcpu_mock *m, unsigned long cap)
{
	const struct vcpu_mock_config *c = &m->cfg;
	bool arm = mock_is_arm64(m);

	switch (cap) {
	case KVM_CAP_IRQCHIP:
	case KVM_CAP_USER_MEMORY:
	case KVM_CAP_IRQFD:
	case KVM_CAP_IOEVENTFD:
	case KVM_CAP_READONLY_MEM:
	case KVM_CAP_SYSTEM_EVENT_DATA:
		return 1;
	case KVM_CAP_NR_VCPUS:
	case KVM_CAP_MAX_VCPUS:
	case KVM_CAP_MAX_VCPU_ID:
		return (int)c->max_vcpus;
	case KVM_CAP_NR_MEMSLOTS:
		return (int)c->nr_memslots;
	case KVM_CAP_IMMEDIATE_EXIT:
		return !(c->flags & VCPU_MOCK_NO_IMMEDIATE_EXIT);
	case KVM_CAP_ONE_REG: /* x86 (Linux 6.10) has no ONE_REG: it uses GET/SET_REGS */
	case KVM_CAP_ARM_PSCI_0_2:
	case KVM_CAP_ARM_SYSTEM_SUSPEND:
		return arm;
	/* §9: system_supports_sve(), system_has_full_ptr_auth() (both caps), kvm_arm_support_pmu_v3(). */
	case KVM_CAP_ARM_SVE:
		return arm && !(c->flags & VCPU_MOCK_NO_SVE);
	case KVM_CAP_ARM_PTRAUTH_ADDRESS:
	case KVM_CAP_ARM_PTRAUTH_GENERIC:
		return arm && !(c->flags & VCPU_MOCK_NO_PTRAUTH);
	case KVM_CAP_ARM_PMU_V3:
		return arm && !(c->flags & VCPU_MOCK_NO_PMU);
	case KVM_CAP_ARM_VM_IPA_SIZE:
		return arm ? (int)c->ipa_bits : 0;
	case KVM_CAP_EXIT_HYPERCALL:
		return arm ? 0 : (int)MOCK_HC_EXIT_VALID;
	case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: /* KVM_DIRTY_LOG_MANUAL_CAPS */
		return KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET;
	case KVM_CAP_VM_ATTRIBUTES:
		/* arm64 gained VM attributes with the SMCCC filter (Linux 6.4). */
		return arm ? !(c->flags & VCPU_MOCK_NO_SMCCC_FILTER) : 1;
	/* §8 state save and restore. */
	case KVM_CAP_MP_STATE:
		return 1;
	case KVM_CAP_VCPU_EVENTS:
	case KVM_CAP_DEBUGREGS:
	case KVM_CAP_XSAVE:
	case KVM_CAP_XCRS:
	case KVM_CAP_PIT_STATE2:
		return !arm;
	case KVM_CAP_ADJUST_CLOCK:
		return arm ? 0 : (int)MOCK_CLOCK_VALID_FLAGS;
	case KVM_CAP_GET_TSC_KHZ:
		return !arm;
	case KVM_CAP_XSAVE2:
		/* xstate_required_size(supported_xcr0 0x7), at least sizeof(struct kvm_xsave). */
		return arm ? 0 : (int)sizeof(struct kvm_xsave);
	default:
		return 0;
	}
}

/* §2 KVM_CREATE_VM: x86 type 0; arm64 type = IPA bits (0 = 40), nothing else. */
static int vm_type_ipa(const struct vcpu_mock *m, unsigned long type, uint32_t *ipa)
{
	uint32_t bits = (uint32_t)(type & 0xff);

	if (!mock_is_arm64(m)) {
		*ipa = 0;
		return type ? -EINVAL : 0;
	}
	if (type & ~0xfful)
		return -EINVAL;
	if (!bits)
		bits = 40;
	if (bits < 32 || bits > m->cfg.ipa_bits)
		return -EINVAL;
	*ipa = bits;
	return 0;
}

static struct mock_vm *vm_alloc(struct vcpu_mock *m, uint32_t ipa)
{
	struct mock_vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return NULL;
	vm->slots = calloc(m->cfg.nr_memslots, sizeof(*vm->slots));
	vm->vcpus = calloc(m->cfg.max_vcpus, sizeof(*vm->vcpus));
	if (!vm->slots || !vm->vcpus) {
		free(vm->slots);
		free(vm->vcpus);
		free(vm);
		return NULL;
	}
	vm->mock = m;
	vm->refs = 1;
	vm->ipa_bits = ipa;
	vm->gic.dist = MOCK_NO_ADDR;
	vm->gic.redist = MOCK_NO_ADDR;
	/* kvm_arch_init_vm(): kvmclock_offset = -get_kvmclock_base_ns(), the clock starts at 0. */
	vm->kvmclock_offset = 0 - clock_ns(CLOCK_MONOTONIC);
	vm->psci_version = 0x10001; /* KVM_ARM_PSCI_LATEST: PSCI 1.1 */
	return vm;
}

static int create_vm(struct vcpu_mock *m, unsigned long type)
{
	struct mock_file *f;
	struct mock_vm *vm;
	uint32_t ipa;
	int err = vm_type_ipa(m, type, &ipa);

	if (err < 0)
		return err;
	vm = vm_alloc(m, ipa);
	if (!vm)
		return -ENOMEM;
	f = mock_file_new(m, "mock-kvm-vm", MOCK_VM, 0, &err);
	if (!f) {
		mock_vm_put(vm);
		return err;
	}
	f->vm = vm;
	return f->fd;
}

/* A small, plausible CPUID table (Intel-like, long mode, hypervisor bit). */
static const struct kvm_cpuid_entry2 supported_cpuid_table[] = {
	{ .function = 0, .eax = 7, .ebx = 0x756e6547, .ecx = 0x6c65746e, .edx = 0x49656e69 },
	/*
	 * EBX: CLFLUSH line 8 quadwords, 1 logical CPU, APIC id 0 (the host's
	 * table says 0); ECX without the hypervisor bit 31, which KVM leaves
	 * to the VMM.
	 */
	{ .function = 1, .eax = 0x000306a9, .ebx = 0x00010800, .ecx = 0x00b82201,
	  .edx = 0x078bfbff },
	{ .function = 7, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .ebx = 0x9 },
	{ .function = 0x80000000u, .eax = 0x80000001u },
	{ .function = 0x80000001u, .ecx = 0x1, .edx = 0x20100800 },
};

#define NSUPPORTED (sizeof(supported_cpuid_table) / sizeof(supported_cpuid_table[0]))

/*
 * §2 KVM_GET_SUPPORTED_CPUID: E2BIG when nent is too small.  Linux copies
 * nent back only on success, so a caller cannot learn the size from E2BIG:
 * it must retry with a larger buffer (QEMU doubles it).
 */
static int supported_cpuid(unsigned long arg)
{
	struct kvm_cpuid2 hdr;
	uint32_t nent;

	mock_copy_in(&hdr, arg, sizeof(hdr));
	nent = hdr.nent > MOCK_MAX_CPUID ? MOCK_MAX_CPUID : hdr.nent;
	if (nent < NSUPPORTED)
		return -E2BIG;
	mock_copy_out(arg + sizeof(hdr), supported_cpuid_table, sizeof(supported_cpuid_table));
	hdr.nent = NSUPPORTED;
	mock_copy_out(arg, &hdr.nent, sizeof(hdr.nent));
	return 0;
}

static int sys_ioctl(struct vcpu_mock *m, unsigned long req, unsigned long arg)
{
	switch (req) {
	case KVM_GET_API_VERSION:
		return arg ? -EINVAL : KVM_API_VERSION_EXPECTED; /* kvm_dev_ioctl: arg must be 0 */
	case KVM_CREATE_VM:
		return create_vm(m, arg);
	case KVM_CHECK_EXTENSION:
		return check_extension(m, arg);
	case KVM_GET_VCPU_MMAP_SIZE:
		return arg ? -EINVAL : (int)m->mmap_size;
	case KVM_GET_SUPPORTED_CPUID:
		return supported_cpuid(arg);
	case KVM_GET_MSR_INDEX_LIST:
		return mock_msr_index_list(arg);
	default:
		return -ENOTTY;
	}
}

/* ------------------------------------------------------------------------ */
/* VM: vCPUs                                                                  */

static int create_vcpu(struct vcpu_mock *m, struct mock_vm *vm, unsigned long id)
{
	char name[32];
	struct mock_file *f;
	struct mock_vcpu *v;
	int err = 0;

	/* §2 KVM_CREATE_VCPU: EINVAL for id >= max, EEXIST for a live id. */
	if (id >= m->cfg.max_vcpus)
		return -EINVAL;
	/* arm64 kvm_arch_vcpu_precreate: the vGIC is sized at INIT. */
	if (mock_is_arm64(m) && vm->gic.initialised)
		return -EBUSY;
	/* A vCPU lives as long as its VM, even after its fd is closed. */
	if (vm->vcpus[id])
		return -EEXIST;
	snprintf(name, sizeof(name), "kvm-vcpu:%lu", id);
	f = mock_file_new(m, name, MOCK_VCPU, m->mmap_size, &err);
	if (!f)
		return err;
	v = mock_vcpu_new(vm, (uint32_t)id, f->fd, &err);
	if (!v) {
		mock_close_locked(m, f->fd);
		return err;
	}
	f->vm = vm;
	f->vcpu = v;
	vm->refs++;
	vm->vcpus[id] = v;
	vm->nr_vcpus++;
	return f->fd;
}

/* ------------------------------------------------------------------------ */
/* VM: memory slots (§4.2, Linux __kvm_set_memory_region)                     */

static bool slots_overlap(const struct mock_vm *vm, uint32_t self, uint64_t gpa, uint64_t size)
{
	for (uint32_t i = 0; i < vm->mock->cfg.nr_memslots; i++) {
		const struct mock_slot *s = &vm->slots[i];

		if (i != self && s->used && gpa < s->gpa + s->size && s->gpa < gpa + size)
			return true;
	}
	return false;
}

/* The generic sanity checks, in the kernel's order. */
static int region_sane(const struct vcpu_mock *m, const struct kvm_userspace_memory_region *r)
{
	const uint64_t psz = m->page_size;

	if (r->flags & ~(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY))
		return -EINVAL;
	if (r->memory_size % psz || r->guest_phys_addr % psz || r->userspace_addr % psz)
		return -EINVAL;
	/* Bits 16-31 of slot are the address space: the mock models only space 0. */
	if ((r->slot >> 16) || (r->slot & 0xffff) >= m->cfg.nr_memslots)
		return -EINVAL;
	if (r->guest_phys_addr + r->memory_size < r->guest_phys_addr)
		return -EINVAL;
	if (r->memory_size / psz > 0x7fffffffull) /* KVM_MEM_MAX_NR_PAGES */
		return -EINVAL;
	return 0;
}

/* kvm_arch_prepare_memory_region: the slot must fit the guest's physical space. */
static int region_fits(const struct mock_vm *vm, const struct kvm_userspace_memory_region *r)
{
	uint64_t end = r->guest_phys_addr + r->memory_size;

	if (mock_is_arm64(vm->mock))
		return vm->ipa_bits < 64 && end > (1ull << vm->ipa_bits) ? -EFAULT : 0;
	return end > (1ull << 52) ? -EINVAL : 0;
}

static int set_memory_region(struct vcpu_mock *m, struct mock_vm *vm, unsigned long arg)
{
	struct kvm_userspace_memory_region r;
	struct mock_slot *old;
	int err;

	mock_copy_in(&r, arg, sizeof(r));
	err = region_sane(m, &r);
	if (err < 0)
		return err;
	old = &vm->slots[r.slot & 0xffff];
	/* Deleting a slot that does not exist is EINVAL (Linux >= 5.17). */
	if (!r.memory_size) {
		if (!old->used)
			return -EINVAL;
		free(old->dirty);
		*old = (struct mock_slot){ .used = false };
		return 0;
	}
	/* An existing slot may move or change LOG_DIRTY; its size, host address and RO bit are fixed. */
	if (old->used && (r.userspace_addr != old->uaddr || r.memory_size != old->size ||
			  ((r.flags ^ old->flags) & KVM_MEM_READONLY)))
		return -EINVAL;
	if ((!old->used || r.guest_phys_addr != old->gpa) &&
	    slots_overlap(vm, r.slot & 0xffff, r.guest_phys_addr, r.memory_size))
		return -EEXIST;
	err = region_fits(vm, &r);
	if (err < 0)
		return err;
	/*
	 * Logging switched on starts a clean bitmap (kvm_alloc_dirty_bitmap()),
	 * one kept on keeps it, switched off frees it.
	 */
	uint64_t *dirty = old->used ? old->dirty : NULL;

	if ((r.flags & KVM_MEM_LOG_DIRTY_PAGES) && !dirty) {
		dirty = calloc((r.memory_size / m->page_size + 63) / 64, sizeof(*dirty));
		if (!dirty)
			return -ENOMEM;
	} else if (!(r.flags & KVM_MEM_LOG_DIRTY_PAGES)) {
		free(dirty);
		dirty = NULL;
	}
	*old = (struct mock_slot){ .used = true, .flags = r.flags, .gpa = r.guest_phys_addr,
				   .size = r.memory_size, .uaddr = r.userspace_addr, .dirty = dirty };
	return 0;
}

/*
 * kvm_vm_ioctl_get_dirty_log(): EINVAL for a slot number out of range,
 * ENOENT for one that does not log, EFAULT for a bad buffer; else
 * ALIGN(npages, 64) / 8 bytes copied out, and cleared unless manual
 * protection is on (then KVM_CLEAR_DIRTY_LOG clears them).  Logging
 * switched on with KVM_DIRTY_LOG_INITIALLY_SET starts all ones (not
 * modelled: libvcpu never asks for it).
 */
static int get_dirty_log(struct vcpu_mock *m, struct mock_vm *vm, unsigned long arg)
{
	struct kvm_dirty_log log;
	struct mock_slot *s;
	size_t bytes;

	mock_copy_in(&log, arg, sizeof(log));
	if ((log.slot >> 16) || (log.slot & 0xffff) >= m->cfg.nr_memslots)
		return -EINVAL;
	s = &vm->slots[log.slot & 0xffff];
	if (!s->used || !s->dirty)
		return -ENOENT;
	if (!log.dirty_bitmap)
		return -EFAULT;
	bytes = (s->size / m->page_size + 63) / 64 * sizeof(uint64_t);
	memcpy((void *)(uintptr_t)log.dirty_bitmap, s->dirty, bytes);
	if (!(vm->manual_protect & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE))
		memset(s->dirty, 0, bytes);
	return 0;
}

/*
 * kvm_vm_ioctl_clear_dirty_log() (Linux 6.1 kvm_clear_dirty_log_protect()):
 * EINVAL for a first_page not a multiple of 64, a slot out of range, or a
 * range past the slot or of a length not a multiple of 64 short of the
 * slot's end; ENOENT for a slot that does not log; EFAULT for a bad buffer.
 * The bits set in the buffer are cleared (the pages protected again).
 */
static int clear_dirty_log(struct vcpu_mock *m, struct mock_vm *vm, unsigned long arg)
{
	struct kvm_clear_dirty_log log;
	struct mock_slot *s;
	uint64_t npages;
	const uint8_t *bits;

	mock_copy_in(&log, arg, sizeof(log));
	if (log.first_page & 63)
		return -EINVAL;
	if ((log.slot >> 16) || (log.slot & 0xffff) >= m->cfg.nr_memslots)
		return -EINVAL;
	s = &vm->slots[log.slot & 0xffff];
	if (!s->used || !s->dirty)
		return -ENOENT;
	npages = s->size / m->page_size;
	if (log.first_page > npages || log.num_pages > npages - log.first_page ||
	    (log.num_pages < npages - log.first_page && (log.num_pages & 63)))
		return -EINVAL;
	if (!log.dirty_bitmap)
		return -EFAULT;
	bits = (const uint8_t *)(uintptr_t)log.dirty_bitmap;
	for (uint64_t i = 0; i < log.num_pages; i++)
		if (bits[i / 8] & (1u << (i % 8))) {
			uint64_t p = log.first_page + i;

			s->dirty[p / 64] &= ~(1ull << (p % 64));
		}
	return 0;
}

void mock_vm_mark_dirty(struct mock_vm *vm, uint64_t gpa, uint64_t len)
{
	const uint64_t psz = vm->mock->page_size;

	for (uint32_t i = 0; i < vm->mock->cfg.nr_memslots; i++) {
		struct mock_slot *s = &vm->slots[i];

		if (!s->used || !s->dirty || gpa < s->gpa || gpa - s->gpa >= s->size)
			continue;
		for (uint64_t p = (gpa - s->gpa) / psz;
		     p <= (gpa - s->gpa + len - 1) / psz && p < s->size / psz; p++)
			s->dirty[p / 64] |= 1ull << (p % 64);
	}
}

bool mock_vm_translate(const struct mock_vm *vm, uint64_t gpa, uint64_t len, bool write,
		       void **host)
{
	for (uint32_t i = 0; i < vm->mock->cfg.nr_memslots; i++) {
		const struct mock_slot *s = &vm->slots[i];
		uint64_t off = gpa - s->gpa;

		if (!s->used || gpa < s->gpa || off >= s->size || len > s->size - off)
			continue;
		/* A guest write to a read-only slot exits as MMIO (§4.2 READONLY). */
		if (write && (s->flags & KVM_MEM_READONLY))
			return false;
		*host = (void *)(uintptr_t)(s->uaddr + off);
		return true;
	}
	return false;
}

/* ------------------------------------------------------------------------ */
/* VM: interrupts                                                             */

/* x86 kvm_vm_ioctl_set_tss_addr: three pages below 4 GiB. */
static int set_tss_addr(const struct vcpu_mock *m, struct mock_vm *vm, unsigned long addr)
{
	if (addr > (uint32_t)(0u - 3u * (uint32_t)m->page_size))
		return -EINVAL;
	vm->tss_addr = addr;
	return 0;
}

static int create_irqchip(const struct vcpu_mock *m, struct mock_vm *vm)
{
	/*
	 * arm64: KVM_CREATE_IRQCHIP is the legacy GICv2; the modelled host is a
	 * GICv3 without v2 compatibility (kvm_vgic_create: EEXIST, then ENODEV).
	 */
	if (mock_is_arm64(m))
		return vm->gic.created ? -EEXIST : -ENODEV;
	/*
	 * x86 kvm_arch_vm_ioctl: EEXIST when the VM has one, EINVAL once any
	 * vCPU was created (kvm->created_vcpus: vCPUs live as long as the VM, so
	 * nr_vcpus never drops).  It also installs the default GSI routing.
	 */
	if (vm->irqchip)
		return -EEXIST;
	if (vm->nr_vcpus)
		return -EINVAL;
	vm->irqchip = true;
	/*
	 * kvm_create_pic(): zeroed PICs but for the ELCR masks (0xf8, 0xde);
	 * kvm_ioapic_reset(): the default base and every pin masked.
	 */
	memset(vm->pic, 0, sizeof(vm->pic));
	vm->pic[0].bytes[15] = 0xf8; /* elcr_mask, the last byte */
	vm->pic[1].bytes[15] = 0xde;
	memset(&vm->ioapic, 0, sizeof(vm->ioapic));
	vm->ioapic.base_address = 0xfec00000ull; /* IOAPIC_DEFAULT_BASE_ADDRESS */
	for (size_t i = 0; i < 24; i++)
		vm->ioapic.redirtbl[i] = 1ull << 16; /* mask */
	return 0;
}

/*
 * pit_load_count(): a count of 0 means 0x10000, and loading it stamps the
 * channel's count_load_time with ktime_get().
 */
static void pit_load_count(struct kvm_pit_channel_state *c, uint32_t val)
{
	c->count = val ? val : 0x10000u;
	c->count_load_time = (int64_t)(clock_ns(CLOCK_MONOTONIC) & INT64_MAX);
}

/*
 * x86 kvm_arch_vm_ioctl KVM_CREATE_PIT2: the config is copied in (EFAULT);
 * EEXIST for a second PIT, then ENOENT without the in-kernel PIC (since
 * "KVM: x86: Check irqchip mode before create PIT", 2024; older kernels made
 * a PIT that could never interrupt), nothing about vCPUs.
 * kvm_create_pit() acts on KVM_PIT_SPEAKER_DUMMY and ignores the other bits.
 */
static int create_pit2(struct mock_vm *vm, unsigned long arg)
{
	struct kvm_pit_config cfg;

	mock_copy_in(&cfg, arg, sizeof(cfg));
	if (vm->pit)
		return -EEXIST;
	if (!vm->irqchip)
		return -ENOENT;
	vm->pit = true;
	vm->pit_flags = cfg.flags;
	/* kvm_pit_reset(): flags 0; each channel mode 0xff (no timer), gate 1 but channel 2's. */
	memset(&vm->pit_state, 0, sizeof(vm->pit_state));
	for (int i = 0; i < 3; i++) {
		vm->pit_state.channels[i].mode = 0xff;
		vm->pit_state.channels[i].gate = i != 2;
		pit_load_count(&vm->pit_state.channels[i], 0);
	}
	return 0;
}

/*
 * The ranges the in-kernel devices register on KVM's buses: the PICs
 * (picdev_in_range: 0x20-0x21, 0xa0-0xa1 and the ELCR 0x4d0-0x4d1), the PIT
 * (pit_in_range: 0x40-0x43; the speaker stub 0x61 with SPEAKER_DUMMY), the
 * IOAPIC (IOAPIC_DEFAULT_BASE_ADDRESS, IOAPIC_MEM_LENGTH 0x100) and each
 * vCPU's LAPIC page at its APIC base (with the LAPIC_MMIO_HOLE quirk, on by
 * default, even while the guest has the LAPIC disabled).
 */
const char *mock_kvm_in_kernel_device(const struct mock_vcpu *v, bool pio, uint64_t addr)
{
	const struct mock_vm *vm = v->vm;
	uint64_t apic = v->sregs.apic_base & ~0xfffull;

	if (mock_is_arm64(vm->mock) || !vm->irqchip)
		return NULL;
	if (pio) {
		if (addr == 0x20 || addr == 0x21 || addr == 0xa0 || addr == 0xa1 ||
		    addr == 0x4d0 || addr == 0x4d1)
			return "PIC";
		if (vm->pit && addr >= 0x40 && addr <= 0x43)
			return "PIT";
		if (vm->pit && (vm->pit_flags & KVM_PIT_SPEAKER_DUMMY) && addr == 0x61)
			return "PIT speaker port";
		return NULL;
	}
	if (addr >= 0xfec00000ull && addr < 0xfec00100ull)
		return "IOAPIC";
	if (addr >= apic && addr - apic < 0x1000)
		return "LAPIC";
	return NULL;
}

static bool vcpu_index_exists(const struct mock_vm *vm, uint32_t idx)
{
	return idx < vm->mock->cfg.max_vcpus && vm->vcpus[idx];
}

/* §4.4 arm64 irq encoding, as kvm_vm_ioctl_irq_line decodes it. */
static int irq_line_arm64(struct mock_vm *vm, uint32_t irq, uint32_t level)
{
	uint32_t type = (irq >> KVM_ARM_IRQ_TYPE_SHIFT) & KVM_ARM_IRQ_TYPE_MASK;
	uint32_t num = irq & KVM_ARM_IRQ_NUM_MASK;
	uint32_t vcpu = ((irq >> KVM_ARM_IRQ_VCPU_SHIFT) & KVM_ARM_IRQ_VCPU_MASK) +
			((irq >> KVM_ARM_IRQ_VCPU2_SHIFT) & KVM_ARM_IRQ_VCPU2_MASK) *
				(KVM_ARM_IRQ_VCPU_MASK + 1);

	switch (type) {
	case KVM_ARM_IRQ_TYPE_CPU: /* the vCPU's IRQ/FIQ pin: only without a vGIC */
		if (vm->gic.created)
			return -ENXIO;
		return vcpu_index_exists(vm, vcpu) && num <= 1 ? 0 : -EINVAL;
	case KVM_ARM_IRQ_TYPE_PPI:
		if (!vm->gic.created)
			return -ENXIO;
		if (!vcpu_index_exists(vm, vcpu) || num < 16 || num >= 32)
			return -EINVAL;
		return vm->gic.initialised ? 0 : -EBUSY;
	case KVM_ARM_IRQ_TYPE_SPI:
		if (!vm->gic.created)
			return -ENXIO;
		if (num < 32)
			return -EINVAL;
		/* vgic_lazy_init: a GICv3 is never initialised implicitly. */
		if (!vm->gic.initialised)
			return -EBUSY;
		if (num >= vm->gic.nr_irqs)
			return -EINVAL;
		vm->irq_level[num] = level != 0;
		return 0;
	default:
		return -EINVAL;
	}
}

static int irq_line(const struct vcpu_mock *m, struct mock_vm *vm, unsigned long arg)
{
	struct kvm_irq_level l;

	mock_copy_in(&l, arg, sizeof(l));
	if (mock_is_arm64(m))
		return irq_line_arm64(vm, l.irq, l.level);
	/*
	 * §2 KVM_IRQ_LINE (kvm_vm_ioctl_irq_line): ENXIO without an in-kernel
	 * irqchip.  kvm_set_irq() finds no route for a GSI past the default
	 * table (kvm_irq_map_gsi: gsi < nr_rt_entries) and does nothing, which
	 * KVM_IRQ_LINE (unlike KVM_IRQ_LINE_STATUS) does not report.
	 */
	if (!vm->irqchip)
		return -ENXIO;
	if (l.irq < KVM_X86_DEFAULT_GSIS)
		vm->irq_level[l.irq] = l.level != 0;
	return 0;
}

/*
 * §2 KVM_ENABLE_CAP, flags 0: arm64 KVM_CAP_ARM_SYSTEM_SUSPEND; x86
 * KVM_CAP_EXIT_HYPERCALL, whose mask may name only the hypercalls KVM can
 * forward (KVM_EXIT_HYPERCALL_VALID_MASK) and replaces the previous one.
 */
static int vm_enable_cap(const struct vcpu_mock *m, struct mock_vm *vm, unsigned long arg)
{
	struct kvm_enable_cap cap;

	mock_copy_in(&cap, arg, sizeof(cap));
	if (cap.flags)
		return -EINVAL;
	if (mock_is_arm64(m) && cap.cap == KVM_CAP_ARM_SYSTEM_SUSPEND) {
		vm->system_suspend = true;
		return 0;
	}
	if (cap.cap == KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) {
		/* kvm_vm_ioctl_enable_cap_generic(): only KVM_DIRTY_LOG_MANUAL_CAPS' bits. */
		if (cap.args[0] & ~(uint64_t)(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
					      KVM_DIRTY_LOG_INITIALLY_SET))
			return -EINVAL;
		vm->manual_protect = cap.args[0];
		return 0;
	}
	if (!mock_is_arm64(m) && cap.cap == KVM_CAP_EXIT_HYPERCALL) {
		if (cap.args[0] & ~MOCK_HC_EXIT_VALID)
			return -EINVAL;
		vm->hc_exit = cap.args[0];
		return 0;
	}
	return -EINVAL;
}

/* ------------------------------------------------------------------------ */
/* VM: the SMCCC filter (§6.2)                                                */

static bool filter_overlaps(const struct mock_vm *vm, uint32_t base, uint32_t last)
{
	for (size_t i = 0; i < vm->nfilter; i++)
		if (base <= vm->filter[i].last && vm->filter[i].base <= last)
			return true;
	return false;
}

static int filter_insert(struct mock_vm *vm, uint32_t base, uint32_t last, uint8_t action)
{
	if (vm->nfilter == vm->cap_filter) {
		size_t ncap = vm->cap_filter ? vm->cap_filter * 2 : 8;
		struct mock_range *p = realloc(vm->filter, ncap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		vm->filter = p;
		vm->cap_filter = ncap;
	}
	vm->filter[vm->nfilter++] = (struct mock_range){ base, last, action };
	return 0;
}

static int smccc_set_filter(struct mock_vm *vm, unsigned long uaddr)
{
	static const uint8_t zero[sizeof(((struct kvm_smccc_filter *)0)->pad)];
	struct kvm_smccc_filter f;
	uint32_t last;
	int r;

	mock_copy_in(&f, uaddr, sizeof(f));
	last = f.base + f.nr_functions - 1; /* u32 arithmetic, as in the kernel */
	/* EINVAL: non-zero pad, empty or wrapping range, unknown action. */
	if (memcmp(f.pad, zero, sizeof(zero)) || !f.nr_functions || last < f.base ||
	    f.action > KVM_SMCCC_FILTER_FWD_TO_USER)
		return -EINVAL;
	if (vm->has_run)
		return -EBUSY;
	/* The Arm architecture call ranges are reserved (HANDLE) once a filter exists. */
	if (!vm->nfilter) {
		r = filter_insert(vm, 0x80000000u, 0x8000ffffu, KVM_SMCCC_FILTER_HANDLE);
		if (r == 0)
			r = filter_insert(vm, 0xc0000000u, 0xc000ffffu, KVM_SMCCC_FILTER_HANDLE);
		if (r < 0)
			return r;
	}
	if (filter_overlaps(vm, f.base, last))
		return -EEXIST;
	return filter_insert(vm, f.base, last, f.action);
}

uint8_t mock_smccc_action(const struct mock_vm *vm, uint32_t func)
{
	for (size_t i = 0; i < vm->nfilter; i++)
		if (func >= vm->filter[i].base && func <= vm->filter[i].last)
			return vm->filter[i].action;
	return KVM_SMCCC_FILTER_HANDLE;
}

static int vm_attr(const struct vcpu_mock *m, struct mock_vm *vm, unsigned long req,
		   unsigned long arg)
{
	struct kvm_device_attr a;

	mock_copy_in(&a, arg, sizeof(a));
	/* The filter is arm64-only and absent before Linux 6.4 (VCPU_MOCK_NO_SMCCC_FILTER). */
	if (!mock_is_arm64(m) || (m->cfg.flags & VCPU_MOCK_NO_SMCCC_FILTER))
		return -ENXIO;
	if (a.group != KVM_ARM_VM_SMCCC_CTRL || a.attr != KVM_ARM_VM_SMCCC_FILTER)
		return -ENXIO;
	if (req == KVM_HAS_DEVICE_ATTR)
		return 0;
	if (!a.addr)
		return -EFAULT;
	return smccc_set_filter(vm, a.addr);
}

/* ------------------------------------------------------------------------ */
/* VM: devices                                                                */

static bool any_vcpu_ran(const struct mock_vm *vm)
{
	for (uint32_t i = 0; i < vm->mock->cfg.max_vcpus; i++)
		if (vm->vcpus[i] && vm->vcpus[i]->has_run)
			return true;
	return false;
}

static int create_device(struct vcpu_mock *m, struct mock_vm *vm, unsigned long arg)
{
	struct kvm_create_device cd;
	struct mock_file *f;
	int err = 0;

	mock_copy_in(&cd, arg, sizeof(cd));
	/* §2 KVM_CREATE_DEVICE: ENODEV for a type the host cannot provide. */
	if (!mock_is_arm64(m) || cd.type != KVM_DEV_TYPE_ARM_VGIC_V3)
		return -ENODEV;
	if (cd.flags & KVM_CREATE_DEVICE_TEST)
		return 0;
	/* kvm_vgic_create: one vGIC per VM, before any vCPU ran, at most 512 vCPUs. */
	if (vm->gic.created)
		return -EEXIST;
	if (any_vcpu_ran(vm))
		return -EBUSY;
	if (vm->nr_vcpus > 512)
		return -E2BIG;
	f = mock_file_new(m, "kvm-vgic-v3", MOCK_DEV, 0, &err);
	if (!f)
		return err;
	f->vm = vm;
	vm->refs++;
	vm->gic.created = true;
	cd.fd = (uint32_t)f->fd;
	mock_copy_out(arg, &cd, sizeof(cd));
	return 0;
}

static int preferred_target(unsigned long arg)
{
	struct kvm_vcpu_init init = { .target = KVM_ARM_TARGET_GENERIC_V8 };

	mock_copy_out(arg, &init, sizeof(init));
	return 0;
}

/* ------------------------------------------------------------------------ */
/* VM: irqfd, ioeventfd, MSI (§4.4; Linux virt/kvm/eventfd.c)                 */

static int kvm_irqfd(struct vcpu_mock *m, struct mock_vm *vm, unsigned long arg)
{
	struct kvm_irqfd a;
	int r;

	mock_copy_in(&a, arg, sizeof(a));
	if (a.flags & ~(KVM_IRQFD_FLAG_DEASSIGN | KVM_IRQFD_FLAG_RESAMPLE))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(a.pad); i++)
		if (a.pad[i])
			return -EINVAL;
	if (a.flags & KVM_IRQFD_FLAG_DEASSIGN) {
		/* kvm_irqfd_deassign(): every match goes; none is not an error. */
		for (size_t i = 0; i < vm->nirqfds;) {
			if (vm->irqfds[i].fd == (int)a.fd && vm->irqfds[i].gsi == a.gsi)
				vm->irqfds[i] = vm->irqfds[--vm->nirqfds];
			else
				i++;
		}
		return 0;
	}
	/* kvm_arch_irqfd_allowed(): x86 needs the in-kernel irqchip. */
	if (!mock_is_arm64(m) && !vm->irqchip)
		return -EINVAL;
	r = mock_check_eventfd((int)a.fd);
	if (r < 0)
		return r;
	if (a.flags & KVM_IRQFD_FLAG_RESAMPLE) {
		r = mock_check_eventfd((int)a.resamplefd);
		if (r < 0)
			return r;
	}
	/* kvm_irqfd_assign(): one binding per eventfd. */
	for (size_t i = 0; i < vm->nirqfds; i++)
		if (vm->irqfds[i].fd == (int)a.fd)
			return -EBUSY;
	if (!mock_grow((void **)&vm->irqfds, &vm->cap_irqfds, vm->nirqfds, sizeof(*vm->irqfds)))
		return -ENOMEM;
	vm->irqfds[vm->nirqfds++] = (struct mock_irqfd){
		.fd = (int)a.fd, .gsi = a.gsi,
		.resamplefd = (a.flags & KVM_IRQFD_FLAG_RESAMPLE) ? (int)a.resamplefd : -1,
	};
	return 0;
}

static bool ioeventfd_same(const struct mock_ioeventfd *e, const struct mock_ioeventfd *n)
{
	/* ioeventfd_check_collision(): same bus, address and length, and datamatch overlap. */
	return e->pio == n->pio && e->addr == n->addr && e->len == n->len &&
	       (!e->datamatch || !n->datamatch || e->value == n->value);
}

static int kvm_ioeventfd(struct mock_vm *vm, unsigned long arg)
{
	struct kvm_ioeventfd a;
	struct mock_ioeventfd n;
	int r;

	mock_copy_in(&a, arg, sizeof(a));
	if (a.flags & ~KVM_IOEVENTFD_VALID_FLAGS)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(a.pad); i++)
		if (a.pad[i])
			return -EINVAL;
	if (a.len != 0 && a.len != 1 && a.len != 2 && a.len != 4 && a.len != 8)
		return -EINVAL;
	if (a.addr + a.len < a.addr)
		return -EINVAL;
	if (!a.len && (a.flags & KVM_IOEVENTFD_FLAG_DATAMATCH))
		return -EINVAL;
	n = (struct mock_ioeventfd){
		.fd = a.fd, .pio = (a.flags & KVM_IOEVENTFD_FLAG_PIO) != 0,
		.datamatch = (a.flags & KVM_IOEVENTFD_FLAG_DATAMATCH) != 0,
		.addr = a.addr, .len = a.len, .value = a.datamatch,
	};
	if (a.flags & KVM_IOEVENTFD_FLAG_DEASSIGN) {
		/* kvm_deassign_ioeventfd_idx(): same eventfd and parameters, else ENOENT. */
		for (size_t i = 0; i < vm->nioeventfds; i++) {
			const struct mock_ioeventfd *e = &vm->ioeventfds[i];
			if (e->fd == n.fd && e->pio == n.pio && e->addr == n.addr &&
			    e->len == n.len && e->datamatch == n.datamatch &&
			    (!n.datamatch || e->value == n.value)) {
				vm->ioeventfds[i] = vm->ioeventfds[--vm->nioeventfds];
				return 0;
			}
		}
		return -ENOENT;
	}
	r = mock_check_eventfd(a.fd);
	if (r < 0)
		return r;
	for (size_t i = 0; i < vm->nioeventfds; i++)
		if (ioeventfd_same(&vm->ioeventfds[i], &n))
			return -EEXIST;
	if (!mock_grow((void **)&vm->ioeventfds, &vm->cap_ioeventfds, vm->nioeventfds,
		       sizeof(*vm->ioeventfds)))
		return -ENOMEM;
	vm->ioeventfds[vm->nioeventfds++] = n;
	return 0;
}

bool mock_kvm_ioeventfd_write(struct mock_vm *vm, bool pio, uint64_t addr, uint32_t len,
			      uint64_t value)
{
	for (size_t i = 0; i < vm->nioeventfds; i++) {
		const struct mock_ioeventfd *e = &vm->ioeventfds[i];
		uint64_t one = 1;

		if (e->pio != pio || e->addr != addr || (e->len && e->len != len))
			continue;
		if (e->datamatch && e->value != value)
			continue;
		/* The driver signals the eventfd and the guest goes on: no exit. */
		if (write(e->fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
			return false;
		return true;
	}
	return false;
}

/*
 * kvm_send_userspace_msi(): EINVAL without an in-kernel irqchip or with flags
 * other than KVM_MSI_VALID_DEVID (bit 0), which x86 accepts and ignores.
 */
static int kvm_signal_msi(struct vcpu_mock *m, struct mock_vm *vm, unsigned long arg)
{
	struct kvm_msi a;

	mock_copy_in(&a, arg, sizeof(a));
	/* kvm_send_userspace_msi() checks the flags, not the padding. */
	if (mock_is_arm64(m)) {
		if (!vm->gic.created || (a.flags & ~1u))
			return -EINVAL;
		/* vgic_msi_to_its(): the modelled GICv3 has no ITS to take MSIs. */
		return -ENODEV;
	}
	if (!vm->irqchip || (a.flags & ~1u))
		return -EINVAL;
	vm->msi_addr = (uint64_t)a.address_hi << 32 | a.address_lo;
	vm->msi_data = a.data;
	vm->nmsi++;
	return 1; /* delivered */
}

/* ------------------------------------------------------------------------ */
/* VM: x86 state save and restore (§8; Linux 6.1 arch/x86/kvm/x86.c)          */

/*
 * KVM_GET_IRQCHIP / KVM_SET_IRQCHIP (the latter _IOR, but read by the
 * kernel): ENXIO without the in-kernel irqchip (irqchip_kernel()), EINVAL
 * for a chip_id other than the two PICs and the IOAPIC.  The whole struct is
 * copied in and, for GET, back out with the chip's state in place: bytes of
 * the union past that state come back as the caller sent them.  SET takes
 * the state as given (kvm_set_ioapic() copies base_address too).
 */
static int irqchip_state(struct mock_vm *vm, bool set, unsigned long arg)
{
	struct kvm_irqchip chip;

	mock_copy_in(&chip, arg, sizeof(chip));
	if (!vm->irqchip)
		return -ENXIO;
	switch (chip.chip_id) {
	case KVM_IRQCHIP_PIC_MASTER:
	case KVM_IRQCHIP_PIC_SLAVE:
		if (set)
			vm->pic[chip.chip_id] = chip.chip.pic;
		else
			chip.chip.pic = vm->pic[chip.chip_id];
		break;
	case KVM_IRQCHIP_IOAPIC:
		if (set)
			vm->ioapic = chip.chip.ioapic;
		else
			chip.chip.ioapic = vm->ioapic;
		break;
	default:
		return -EINVAL;
	}
	if (!set)
		mock_copy_out(arg, &chip, sizeof(chip));
	return 0;
}

/*
 * KVM_GET_PIT2 / KVM_SET_PIT2: ENXIO without KVM_CREATE_PIT2.  GET gives the
 * channels and flags with reserved zeroed; SET takes channels and flags as
 * given, then reloads each channel's count (0 becomes 0x10000, the load time
 * becomes now).
 */
static int pit2_state(struct mock_vm *vm, bool set, unsigned long arg)
{
	struct kvm_pit_state2 ps;

	if (set)
		mock_copy_in(&ps, arg, sizeof(ps));
	if (!vm->pit)
		return -ENXIO;
	if (!set) {
		ps = vm->pit_state;
		memset(ps.reserved, 0, sizeof(ps.reserved));
		mock_copy_out(arg, &ps, sizeof(ps));
		return 0;
	}
	memcpy(vm->pit_state.channels, ps.channels, sizeof(ps.channels));
	vm->pit_state.flags = ps.flags;
	for (int i = 0; i < 3; i++)
		pit_load_count(&vm->pit_state.channels[i], vm->pit_state.channels[i].count);
	return 0;
}

/*
 * kvmclock: guest ns = CLOCK_MONOTONIC ns + kvmclock_offset.  SET_CLOCK
 * refuses flags outside KVM_CLOCK_VALID_FLAGS (a GET result may be passed
 * back as is); with KVM_CLOCK_REALTIME the time since data.realtime (when
 * the host's real time is past it) is added, so the clock does not step
 * back over a migration.  GET reports TSC_STABLE, without the realtime and
 * host TSC pair (the model has no TSC).
 */
static int set_clock(struct mock_vm *vm, unsigned long arg)
{
	struct kvm_clock_data d;

	mock_copy_in(&d, arg, sizeof(d));
	if (d.flags & ~MOCK_CLOCK_VALID_FLAGS)
		return -EINVAL;
	if (d.flags & KVM_CLOCK_REALTIME) {
		uint64_t now_real = clock_ns(CLOCK_REALTIME);

		if (now_real > d.realtime)
			d.clock += now_real - d.realtime;
	}
	vm->kvmclock_offset = d.clock - clock_ns(CLOCK_MONOTONIC);
	return 0;
}

static int get_clock(const struct mock_vm *vm, unsigned long arg)
{
	struct kvm_clock_data d;

	memset(&d, 0, sizeof(d));
	d.clock = clock_ns(CLOCK_MONOTONIC) + vm->kvmclock_offset;
	d.flags = KVM_CLOCK_TSC_STABLE;
	mock_copy_out(arg, &d, sizeof(d));
	return 0;
}

static int vm_ioctl(struct vcpu_mock *m, struct mock_vm *vm, unsigned long req, unsigned long arg)
{
	switch (req) {
	case KVM_CHECK_EXTENSION:
		return check_extension(m, arg);
	case KVM_CREATE_VCPU:
		return create_vcpu(m, vm, arg);
	case KVM_SET_USER_MEMORY_REGION:
		return set_memory_region(m, vm, arg);
	case KVM_GET_DIRTY_LOG:
		return get_dirty_log(m, vm, arg);
	case KVM_CLEAR_DIRTY_LOG:
		return clear_dirty_log(m, vm, arg);
	case KVM_SET_TSS_ADDR:
		return set_tss_addr(m, vm, arg);
	case KVM_CREATE_IRQCHIP:
		return create_irqchip(m, vm);
	case KVM_CREATE_PIT2:
		return create_pit2(vm, arg);
	case KVM_IRQ_LINE:
		return irq_line(m, vm, arg);
	case KVM_ENABLE_CAP:
		return vm_enable_cap(m, vm, arg);
	case KVM_CREATE_DEVICE:
		return create_device(m, vm, arg);
	case KVM_SET_DEVICE_ATTR:
	case KVM_HAS_DEVICE_ATTR:
		return vm_attr(m, vm, req, arg);
	case KVM_ARM_PREFERRED_TARGET:
		return preferred_target(arg);
	case KVM_IRQFD:
		return kvm_irqfd(m, vm, arg);
	case KVM_IOEVENTFD:
		return kvm_ioeventfd(vm, arg);
	case KVM_SIGNAL_MSI:
		return kvm_signal_msi(m, vm, arg);
	case KVM_GET_IRQCHIP:
	case KVM_SET_IRQCHIP:
		return irqchip_state(vm, req == KVM_SET_IRQCHIP, arg);
	case KVM_GET_PIT2:
	case KVM_SET_PIT2:
		return pit2_state(vm, req == KVM_SET_PIT2, arg);
	case KVM_SET_CLOCK:
		return set_clock(vm, arg);
	case KVM_GET_CLOCK:
		return get_clock(vm, arg);
	default:
		return -ENOTTY;
	}
}

/* ------------------------------------------------------------------------ */
/* The vGICv3 device fd (Linux vgic-kvm-device.c)                             */

#define VGIC_FRAME 0x10000ull      /* 64 KiB alignment and distributor size */
#define VGIC_REDIST_SIZE 0x20000ull /* per vCPU */

static int vgic_set_addr(struct mock_vm *vm, uint64_t attr, unsigned long uaddr)
{
	uint64_t *slot, addr, size;

	if (attr == KVM_VGIC_V3_ADDR_TYPE_DIST) {
		slot = &vm->gic.dist;
		size = VGIC_FRAME;
	} else if (attr == KVM_VGIC_V3_ADDR_TYPE_REDIST) {
		/* The legacy single region is sized at first run; only its base is checked here. */
		slot = &vm->gic.redist;
		size = 0;
	} else {
		return -ENXIO;
	}
	if (!uaddr)
		return -EFAULT;
	mock_copy_in(&addr, uaddr, sizeof(addr));
	/* vgic_check_iorange: EEXIST, then alignment, wrap, then E2BIG past the IPA space. */
	if (*slot != MOCK_NO_ADDR)
		return -EEXIST;
	if (addr % VGIC_FRAME || addr + size < addr)
		return -EINVAL;
	if (vm->ipa_bits < 64 && (addr >= (1ull << vm->ipa_bits) ||
				  addr + size > (1ull << vm->ipa_bits)))
		return -E2BIG;
	*slot = addr;
	return 0;
}

static int vgic_set_nr_irqs(struct mock_vm *vm, unsigned long uaddr)
{
	uint32_t val;

	if (!uaddr)
		return -EFAULT;
	mock_copy_in(&val, uaddr, sizeof(val));
	/*
	 * At least 32 SPIs, a multiple of 32, and at most VGIC_MAX_RESERVED
	 * (1023): the kernel's comment says "at most 1024" but its check
	 * rejects 1024, so 992 is the largest accepted value.
	 */
	if (val < 64 || val > 1023 || (val & 31))
		return -EINVAL;
	if (vm->gic.initialised || vm->gic.nr_irqs)
		return -EBUSY;
	vm->gic.nr_irqs = val;
	return 0;
}

/*
 * CTRL_INIT (Documentation/virt/kvm/devices/arm-vgic-v3.rst): EBUSY once a
 * vCPU runs, ENODEV without vCPUs, ENXIO when not configured.  Linux only
 * discovers missing addresses at the first KVM_RUN; the mock insists on them
 * here, the order every VMM uses, so a missing address is caught at its cause.
 */
static int vgic_init(struct mock_vm *vm)
{
	if (vm->gic.initialised)
		return 0;
	if (any_vcpu_ran(vm))
		return -EBUSY;
	if (!vm->nr_vcpus)
		return -ENODEV;
	if (vm->gic.dist == MOCK_NO_ADDR || vm->gic.redist == MOCK_NO_ADDR)
		return -ENXIO;
	if (!vm->gic.nr_irqs)
		vm->gic.nr_irqs = 256; /* VGIC_NR_IRQS_LEGACY */
	if (mock_vgic_init_cpus(vm) != 0)
		return -ENOMEM;
	vm->gic.initialised = true;
	return 0;
}

static int vgic_set_attr(struct mock_vm *vm, const struct kvm_device_attr *a)
{
	switch (a->group) {
	case KVM_DEV_ARM_VGIC_GRP_ADDR:
		return vgic_set_addr(vm, a->attr, a->addr);
	case KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
		return vgic_set_nr_irqs(vm, a->addr);
	case KVM_DEV_ARM_VGIC_GRP_CTRL:
		return a->attr == KVM_DEV_ARM_VGIC_CTRL_INIT ? vgic_init(vm) : -ENXIO;
	default:
		return mock_vgic_regs_group(a->group) ? mock_vgic_regs(vm, a, MOCK_ATTR_SET) : -ENXIO;
	}
}

static int vgic_get_attr(struct mock_vm *vm, const struct kvm_device_attr *a)
{
	uint64_t addr;
	uint32_t n;

	if (a->group == KVM_DEV_ARM_VGIC_GRP_ADDR) {
		if (a->attr != KVM_VGIC_V3_ADDR_TYPE_DIST && a->attr != KVM_VGIC_V3_ADDR_TYPE_REDIST)
			return -ENXIO;
		if (!a->addr)
			return -EFAULT;
		/* An unset address reads as VGIC_ADDR_UNDEF (all ones). */
		addr = a->attr == KVM_VGIC_V3_ADDR_TYPE_DIST ? vm->gic.dist : vm->gic.redist;
		mock_copy_out(a->addr, &addr, sizeof(addr));
		return 0;
	}
	if (a->group == KVM_DEV_ARM_VGIC_GRP_NR_IRQS) {
		if (!a->addr)
			return -EFAULT;
		/* nr_spis + 32, so 32 before NR_IRQS or INIT set it. */
		n = vm->gic.nr_irqs ? vm->gic.nr_irqs : 32;
		mock_copy_out(a->addr, &n, sizeof(n));
		return 0;
	}
	return mock_vgic_regs_group(a->group) ? mock_vgic_regs(vm, a, MOCK_ATTR_GET) : -ENXIO;
}

static int vgic_has_attr(struct mock_vm *vm, const struct kvm_device_attr *a)
{
	switch (a->group) {
	case KVM_DEV_ARM_VGIC_GRP_ADDR:
		return a->attr == KVM_VGIC_V3_ADDR_TYPE_DIST ||
		       a->attr == KVM_VGIC_V3_ADDR_TYPE_REDIST ? 0 : -ENXIO;
	case KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
		return 0;
	case KVM_DEV_ARM_VGIC_GRP_CTRL:
		return a->attr == KVM_DEV_ARM_VGIC_CTRL_INIT ? 0 : -ENXIO;
	default:
		return mock_vgic_regs_group(a->group) ? mock_vgic_regs(vm, a, MOCK_ATTR_HAS) : -ENXIO;
	}
}

static int dev_ioctl(struct mock_vm *vm, unsigned long req, unsigned long arg)
{
	struct kvm_device_attr a;

	mock_copy_in(&a, arg, sizeof(a));
	switch (req) {
	case KVM_SET_DEVICE_ATTR:
		return vgic_set_attr(vm, &a);
	case KVM_GET_DEVICE_ATTR:
		return vgic_get_attr(vm, &a);
	case KVM_HAS_DEVICE_ATTR:
		return vgic_has_attr(vm, &a);
	default:
		return -ENOTTY;
	}
}

/* ------------------------------------------------------------------------ */

int mock_kvm_ioctl(struct vcpu_mock *m, struct mock_file *f, unsigned long req,
		   unsigned long arg)
{
	int r;

	/* The kernel's ioctl command is 32 bits: higher bits of the request never arrive. */
	req = (uint32_t)req;
	r = check_request(m, f->kind, req, arg);
	if (r < 0)
		return r;
	if (f->kind == MOCK_VCPU)
		return mock_vcpu_ioctl(m, f->vcpu, req, arg); /* takes its own locks */
	pthread_mutex_lock(&m->lock);
	switch (f->kind) {
	case MOCK_SYS:
		r = sys_ioctl(m, req, arg);
		break;
	case MOCK_VM:
		r = vm_ioctl(m, f->vm, req, arg);
		break;
	default:
		r = dev_ioctl(f->vm, req, arg);
		break;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int kvm_driver_init(struct vcpu_mock *m)
{
	/* doc/abi/kvm.md §1: run page, x86 PIO data page, then the coalesced-MMIO ring. */
	m->mmap_size = m->page_size * (mock_is_arm64(m) ? 2 : 3);
	return 0;
}

/* kvm_vcpu_mmap(): only vCPU fds map, from offset 0, within the mmap size. */
static int kvm_mmap_check(const struct vcpu_mock *m, const struct mock_file *f, size_t len,
			  off_t off)
{
	if (f->kind != MOCK_VCPU)
		return -ENODEV;
	if (off != 0 || len == 0 || len > m->mmap_size || len % m->page_size)
		return -EINVAL;
	return 0;
}

const struct mock_driver mock_kvm_driver = {
	.backend = VCPU_BACKEND_KVM,
	.node = "/dev/kvm",
	.name = "mock-kvm",
	.arches = (1u << VCPU_ARCH_X86_64) | (1u << VCPU_ARCH_ARM64),
	.flags = VCPU_MOCK_NO_IMMEDIATE_EXIT | VCPU_MOCK_NO_SMCCC_FILTER | VCPU_MOCK_KVM_PVM |
		 VCPU_MOCK_NO_SVE | VCPU_MOCK_NO_PTRAUTH | VCPU_MOCK_NO_PMU,
	.init = kvm_driver_init,
	.ioctl = mock_kvm_ioctl,
	.mmap_check = kvm_mmap_check,
};
