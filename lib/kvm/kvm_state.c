// SPDX-License-Identifier: MIT
/*
 * KVM state classes (vcpu_get_state(3)): each class is one or a few KVM
 * ioctls (Documentation/virt/kvm/api.rst, by the names below), whose
 * structures have the layout of the public ones, so most classes are a
 * single call into the caller's buffer.  The core has checked the class
 * and a set's length (lib/core/state.c).
 */
#define _GNU_SOURCE
#include "kvm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <vcpu/state.h>

_Static_assert(sizeof(struct vcpu_x86_regs) == sizeof(struct kvm_regs_x86), "regs");
_Static_assert(sizeof(struct vcpu_x86_sregs) == sizeof(struct kvm_sregs), "sregs");
_Static_assert(offsetof(struct vcpu_x86_sregs, gdt) == offsetof(struct kvm_sregs, gdt), "gdt");
_Static_assert(offsetof(struct vcpu_x86_sregs, interrupt_bitmap) ==
	       offsetof(struct kvm_sregs, interrupt_bitmap), "interrupt_bitmap");
_Static_assert(sizeof(struct vcpu_x86_segment) == sizeof(struct kvm_segment), "segment");
_Static_assert(offsetof(struct vcpu_x86_segment, unusable) == offsetof(struct kvm_segment, unusable),
	       "segment.unusable");
_Static_assert(sizeof(struct vcpu_x86_xcrs) == sizeof(struct kvm_xcrs), "xcrs");
_Static_assert(sizeof(struct vcpu_x86_debugregs) == sizeof(struct kvm_debugregs), "debugregs");
_Static_assert(sizeof(struct vcpu_x86_events) == sizeof(struct kvm_vcpu_events), "events");
_Static_assert(offsetof(struct vcpu_x86_events, exception_payload) ==
	       offsetof(struct kvm_vcpu_events, exception_payload), "events.payload");
_Static_assert(sizeof(struct vcpu_x86_lapic) == sizeof(struct kvm_lapic_state), "lapic");
_Static_assert(sizeof(struct vcpu_x86_pic_chip) == sizeof(struct kvm_pic_state), "pic");
_Static_assert(sizeof(struct vcpu_x86_ioapic) == sizeof(struct kvm_ioapic_state), "ioapic");
_Static_assert(sizeof(struct vcpu_x86_pit) == sizeof(struct kvm_pit_state2), "pit");
_Static_assert(offsetof(struct vcpu_x86_pit, flags) == offsetof(struct kvm_pit_state2, flags),
	       "pit.flags");
_Static_assert(sizeof(struct vcpu_x86_clock) == sizeof(struct kvm_clock_data), "clock");
_Static_assert(sizeof(struct vcpu_x86_msr) == sizeof(struct kvm_msr_entry), "msr");
_Static_assert(sizeof(struct vcpu_mp_state) == sizeof(struct kvm_mp_state), "mp_state");

/*
 * A get of @size bytes: 1 when only the size was asked (@buf NULL), 0 to
 * go on, -ENOSPC when *@len is short; *@len is @size after each.
 */
static int want(void *buf, size_t *len, size_t size)
{
	size_t room = *len;

	*len = size;
	if (!buf)
		return 1;
	return room < size ? -ENOSPC : 0;
}

static int short_buf(struct vcpu *cpu, const char *what, size_t size)
{
	return cpu_fail(cpu, -ENOSPC, "%s state needs %zu bytes", what, size);
}

/* One ioctl moving a fixed-size class between @buf and the vCPU. */
static int vcpu_fixed(struct vcpu *cpu, unsigned long req, const char *name, void *buf,
		      size_t *len, size_t size)
{
	int r = len ? want(buf, len, size) : 0;

	if (r == 1)
		return 0;
	if (r)
		return short_buf(cpu, name, size);
	r = vcpu_ioctl(cpu, req, (unsigned long)buf);
	return r < 0 ? cpu_fail(cpu, r, "%s on vCPU %u failed", name, cpu->id) : 0;
}

/* ---- x86_64 ---- */

static bool x86_irqchip(const struct vcpu_vm *vm)
{
	const struct kvm_vm_priv *p = vm->priv;

	return p->x86_irqchip;
}

static int x86_xsave_size(struct vcpu *cpu, size_t *size, bool *xsave2)
{
	int r = sys_ioctl(cpu->vm->hv, cpu->vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);

	if (r < 0)
		return cpu_fail(cpu, r, "KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) failed");
	/* api.rst, KVM_GET_XSAVE2: without KVM_CAP_XSAVE2, KVM_GET_XSAVE moves 4096 bytes. */
	*xsave2 = r > 0;
	*size = r > 0 ? (size_t)r : sizeof(struct kvm_xsave);
	/* The class's bounds (lib/core/state.c): what a snapshot could not carry back is refused now. */
	if (r > 0 && (r < (int)sizeof(struct kvm_xsave) || r % 4 || r > (1 << 20)))
		return cpu_fail(cpu, -EPROTO, "KVM_CAP_XSAVE2 says %d bytes: not a multiple of 4 "
				"from 4096 to 1 MiB", r);
	if (r > 0)
		return 0;
	r = sys_ioctl(cpu->vm->hv, cpu->vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE);
	if (r < 0)
		return cpu_fail(cpu, r, "KVM_CHECK_EXTENSION(KVM_CAP_XSAVE) failed");
	if (r == 0)
		return cpu_fail(cpu, -EOPNOTSUPP, "this KVM has no XSAVE state access (KVM_CAP_XSAVE)");
	return 0;
}

/* KVM_GET_MSR_INDEX_LIST ( on /dev/kvm): malloc()ed, its count in *@n. */
static int x86_msr_list(struct vcpu *cpu, uint32_t **out, uint32_t *n)
{
	struct vcpu_hv *hv = cpu->vm->hv;
	struct kvm_msr_list probe = { 0 }, *l;
	int r = sys_ioctl(hv, hv->fd, KVM_GET_MSR_INDEX_LIST, (unsigned long)&probe);

	if (r < 0 && r != -E2BIG)
		return cpu_fail(cpu, r, "KVM_GET_MSR_INDEX_LIST failed");
	/* Sized twice: a driver may list more at the second call, which then fails. */
	for (int tries = 0; tries < 2; tries++) {
		uint32_t want_n = probe.nmsrs;

		if (want_n > 65536)
			return cpu_fail(cpu, -EPROTO, "KVM_GET_MSR_INDEX_LIST: %u MSRs", want_n);
		l = calloc(1, sizeof(*l) + 4 * (size_t)want_n);
		if (!l)
			return cpu_fail(cpu, -ENOMEM, "no memory for %u MSR indices", want_n);
		l->nmsrs = want_n;
		r = sys_ioctl(hv, hv->fd, KVM_GET_MSR_INDEX_LIST, (unsigned long)l);
		if (r == 0 && l->nmsrs <= want_n) {
			*n = l->nmsrs;
			*out = malloc(4 * (size_t)*n + 4);
			if (*out)
				memcpy(*out, l->indices, 4 * (size_t)*n);
			free(l);
			return *out ? 0 : cpu_fail(cpu, -ENOMEM, "no memory for MSR indices");
		}
		probe.nmsrs = l->nmsrs;
		free(l);
		if (r != -E2BIG)
			return cpu_fail(cpu, r < 0 ? r : -EPROTO, "KVM_GET_MSR_INDEX_LIST failed");
	}
	return cpu_fail(cpu, -EAGAIN, "KVM_GET_MSR_INDEX_LIST kept growing");
}

/*
 * KVM_GET_MSRS / KVM_SET_MSRS on @n entries in chunks
 * below the kernel's MAX_IO_MSRS; each returns how many it did, stopping at
 * the first MSR it refuses.  *@done: entries done.
 */
static int x86_msrs_io(struct vcpu *cpu, bool set, struct vcpu_x86_msr *e, uint32_t n,
		       uint32_t *done)
{
	struct kvm_msrs *m = malloc(sizeof(*m) + sizeof(struct kvm_msr_entry) * (KVM_MAX_IO_MSRS - 1));
	int r = 0;

	*done = 0;
	if (!m)
		return cpu_fail(cpu, -ENOMEM, "no memory for an MSR batch");
	while (*done < n) {
		uint32_t k = n - *done < KVM_MAX_IO_MSRS - 1 ? n - *done : KVM_MAX_IO_MSRS - 1;

		m->nmsrs = k;
		m->pad = 0;
		memcpy(m->entries, e + *done, sizeof(struct kvm_msr_entry) * k);
		r = vcpu_ioctl(cpu, set ? KVM_SET_MSRS : KVM_GET_MSRS, (unsigned long)m);
		if (r < 0) {
			r = cpu_fail(cpu, r, "KVM_%s_MSRS failed", set ? "SET" : "GET");
			break;
		}
		if ((uint32_t)r > k) {
			r = cpu_fail(cpu, -EPROTO, "KVM_%s_MSRS did %d of %u MSRs", set ? "SET" : "GET",
				     r, k);
			break;
		}
		if (!set)
			memcpy(e + *done, m->entries, sizeof(struct kvm_msr_entry) * (size_t)r);
		*done += (uint32_t)r;
		if ((uint32_t)r < k) {
			r = 0;
			break;
		}
		r = 0;
	}
	free(m);
	return r;
}

/*
 * Every MSR of the driver's list the vCPU lets us read.  KVM lists MSRs a
 * vCPU may still refuse (those of features its CPUID lacks), so a refused
 * one is left out rather than failing the whole class, as QEMU's
 * kvm_get_msrs() also only saves what reads back.
 */
static int x86_get_msrs(struct vcpu *cpu, void *buf, size_t *len)
{
	struct vcpu_x86_msrs *out = buf;
	uint32_t *idx = NULL, n = 0, kept = 0, done;
	struct vcpu_x86_msr *e;
	int r = x86_msr_list(cpu, &idx, &n);

	if (r)
		return r;
	r = want(buf, len, sizeof(*out) + sizeof(*e) * (size_t)n);
	if (r) {
		free(idx);
		return r == 1 ? 0 : short_buf(cpu, "X86_MSRS", *len);
	}
	e = vcpu_x86_msrs_entries(out);
	for (uint32_t i = 0; i < n; i++)
		e[i] = (struct vcpu_x86_msr){ .index = idx[i] };
	free(idx);
	while (n > kept) {
		r = x86_msrs_io(cpu, false, e + kept, n - kept, &done);
		if (r)
			return r;
		kept += done;
		if (kept < n) { /* e[kept] was refused: drop it */
			memmove(e + kept, e + kept + 1, sizeof(*e) * (n - kept - 1));
			n--;
		}
	}
	out->count = kept;
	out->reserved = 0;
	*len = sizeof(*out) + sizeof(*e) * (size_t)kept;
	return 0;
}

/*
 * KVM lists MSRs of paravirtual features (MSR_KVM_ASYNC_PF_INT...) that a
 * host-initiated write may still refuse on a vCPU whose CPUID lacks the
 * feature, even with the value a read gave.  A refused MSR that already
 * holds the value is therefore not an error: the state is what was asked.
 * Any other refusal is, and the detail names the MSR.
 */
static int x86_set_msrs(struct vcpu *cpu, const void *buf)
{
	const struct vcpu_x86_msrs *in = buf;
	struct vcpu_x86_msr *e, cur;
	uint32_t done, at = 0;
	int r = 0;

	if (!in->count)
		return 0;
	e = malloc(sizeof(*e) * in->count);
	if (!e)
		return cpu_fail(cpu, -ENOMEM, "no memory for %u MSRs", in->count);
	memcpy(e, (const uint8_t *)buf + sizeof(*in), sizeof(*e) * in->count);
	while (at < in->count) {
		r = x86_msrs_io(cpu, true, e + at, in->count - at, &done);
		if (r)
			break;
		at += done;
		if (at == in->count)
			break;
		cur = (struct vcpu_x86_msr){ .index = e[at].index };
		r = x86_msrs_io(cpu, false, &cur, 1, &done);
		if (r)
			break;
		if (done != 1 || cur.value != e[at].value) {
			r = cpu_fail(cpu, -EINVAL, "KVM_SET_MSRS refused MSR 0x%x = 0x%llx (entry %u "
				     "of %u)", e[at].index, (unsigned long long)e[at].value, at,
				     in->count);
			break;
		}
		at++;
	}
	free(e);
	return r;
}

static int x86_xsave(struct vcpu *cpu, bool set, void *buf, size_t *len)
{
	size_t size = 0;
	bool xsave2 = false;
	int r = x86_xsave_size(cpu, &size, &xsave2);

	if (r)
		return r;
	if (set) {
		if (*len != size)
			return cpu_fail(cpu, -EINVAL, "this KVM's XSAVE area is %zu bytes, not %zu",
					size, *len);
		r = vcpu_ioctl(cpu, KVM_SET_XSAVE, (unsigned long)buf);
		return r < 0 ? cpu_fail(cpu, r, "KVM_SET_XSAVE on vCPU %u failed", cpu->id) : 0;
	}
	r = want(buf, len, size);
	if (r)
		return r == 1 ? 0 : short_buf(cpu, "X86_XSAVE", size);
	r = vcpu_ioctl(cpu, xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, (unsigned long)buf);
	return r < 0 ? cpu_fail(cpu, r, "KVM_GET_XSAVE%s on vCPU %u failed", xsave2 ? "2" : "",
				cpu->id)
		     : 0;
}

/* The guest's TSC rate: ENXIO (no such class) where the driver cannot tell it. */
static int x86_tsc_khz(struct vcpu *cpu, bool set, void *buf, size_t *len)
{
	struct vcpu_x86_tsc_khz t;
	int r = sys_ioctl(cpu->vm->hv, cpu->vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_GET_TSC_KHZ);

	if (r < 0)
		return cpu_fail(cpu, r, "KVM_CHECK_EXTENSION(KVM_CAP_GET_TSC_KHZ) failed");
	if (r == 0)
		return cpu_fail(cpu, -ENXIO, "this KVM cannot report the TSC rate "
				"(KVM_CAP_GET_TSC_KHZ)");
	if (set) {
		memcpy(&t, buf, sizeof(t));
		if (t.khz == 0 || t.khz > INT32_MAX || t.reserved)
			return cpu_fail(cpu, -EINVAL, "TSC rate %u kHz (reserved 0x%x)", t.khz,
					t.reserved);
		r = vcpu_ioctl(cpu, KVM_SET_TSC_KHZ, t.khz);
		return r < 0 ? cpu_fail(cpu, r, "KVM_SET_TSC_KHZ(%u) on vCPU %u failed%s", t.khz,
					cpu->id, r == -EINVAL ? ": the host's TSC is faster and "
					"cannot be scaled down" : "")
			     : 0;
	}
	r = want(buf, len, sizeof(t));
	if (r)
		return r == 1 ? 0 : short_buf(cpu, "X86_TSC_KHZ", sizeof(t));
	r = vcpu_ioctl(cpu, KVM_GET_TSC_KHZ, 0);
	if (r <= 0)
		return cpu_fail(cpu, r < 0 ? r : -EPROTO, "KVM_GET_TSC_KHZ on vCPU %u failed",
				cpu->id);
	t = (struct vcpu_x86_tsc_khz){ .khz = (uint32_t)r };
	memcpy(buf, &t, sizeof(t));
	return 0;
}

static int x86_state(struct vcpu *cpu, uint32_t cls, bool set, void *buf, size_t *len)
{
#define FIXED(getreq, setreq, name, type) \
	vcpu_fixed(cpu, set ? (setreq) : (getreq), set ? "KVM_SET_" name : "KVM_GET_" name, buf, \
		   set ? NULL : len, sizeof(type))
	switch (cls) {
	case VCPU_STATE_X86_REGS:
		return FIXED(KVM_GET_REGS_X86, KVM_SET_REGS_X86, "REGS", struct kvm_regs_x86);
	case VCPU_STATE_X86_SREGS:
		return FIXED(KVM_GET_SREGS, KVM_SET_SREGS, "SREGS", struct kvm_sregs);
	case VCPU_STATE_X86_XSAVE:
		return x86_xsave(cpu, set, buf, len);
	case VCPU_STATE_X86_XCRS:
		return FIXED(KVM_GET_XCRS, KVM_SET_XCRS, "XCRS", struct kvm_xcrs);
	case VCPU_STATE_X86_MSRS:
		return set ? x86_set_msrs(cpu, buf) : x86_get_msrs(cpu, buf, len);
	case VCPU_STATE_X86_DEBUGREGS:
		return FIXED(KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, "DEBUGREGS", struct kvm_debugregs);
	case VCPU_STATE_X86_EVENTS:
		return FIXED(KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, "VCPU_EVENTS",
			     struct kvm_vcpu_events);
	case VCPU_STATE_X86_TSC_KHZ:
		return x86_tsc_khz(cpu, set, buf, len);
	case VCPU_STATE_X86_LAPIC:
		/* KVM answers EINVAL without an in-kernel LAPIC; the API says which device is missing. */
		if (!x86_irqchip(cpu->vm))
			return cpu_fail(cpu, -ENXIO, "the VM has no in-kernel LAPIC "
					"(vcpu_x86_create_irqchip())");
		return FIXED(KVM_GET_LAPIC, KVM_SET_LAPIC, "LAPIC", struct kvm_lapic_state);
	default:
		return cpu_fail(cpu, -EINVAL, "state class 0x%x is not an x86 vCPU class", cls);
	}
#undef FIXED
}

static int x86_vm_state(struct vcpu_vm *vm, uint32_t cls, bool set, void *buf, size_t *len)
{
	const struct kvm_vm_priv *p = vm->priv;
	struct kvm_irqchip chip;
	size_t size;
	int r;

	switch (cls) {
	case VCPU_STATE_X86_PIC:
	case VCPU_STATE_X86_IOAPIC:
		if (!p->x86_irqchip)
			return vm_fail(vm, -ENXIO, "the VM has no in-kernel irqchip "
				       "(vcpu_x86_create_irqchip())");
		size = cls == VCPU_STATE_X86_PIC ? sizeof(struct vcpu_x86_pic)
						 : sizeof(struct vcpu_x86_ioapic);
		if (!set && (r = want(buf, len, size)) != 0)
			return r == 1 ? 0 : vm_fail(vm, -ENOSPC, "the state needs %zu bytes", size);
		/* KVM_GET_IRQCHIP / KVM_SET_IRQCHIP, one chip at a time. */
		for (uint32_t id = cls == VCPU_STATE_X86_PIC ? 0 : 2;
		     id <= (cls == VCPU_STATE_X86_PIC ? 1u : 2u); id++) {
			uint8_t *part = (uint8_t *)buf + (id == 1 ? sizeof(struct kvm_pic_state) : 0);
			size_t psize = id == 2 ? sizeof(struct kvm_ioapic_state)
					       : sizeof(struct kvm_pic_state);

			memset(&chip, 0, sizeof(chip));
			chip.chip_id = id;
			if (set)
				memcpy(&chip.chip, part, psize);
			r = sys_ioctl(vm->hv, vm->fd, set ? KVM_SET_IRQCHIP : KVM_GET_IRQCHIP,
				      (unsigned long)&chip);
			if (r < 0)
				return vm_fail(vm, r, "KVM_%s_IRQCHIP(chip %u) failed", set ? "SET" : "GET",
					       id);
			if (!set)
				memcpy(part, &chip.chip, psize);
		}
		return 0;
	case VCPU_STATE_X86_PIT:
		if (!p->x86_pit)
			return vm_fail(vm, -ENXIO, "the VM has no in-kernel PIT "
				       "(vcpu_x86_create_irqchip() with VCPU_X86_IRQCHIP_PIT)");
		if (!set && (r = want(buf, len, sizeof(struct kvm_pit_state2))) != 0)
			return r == 1 ? 0 : vm_fail(vm, -ENOSPC, "X86_PIT state needs 112 bytes");
		r = sys_ioctl(vm->hv, vm->fd, set ? KVM_SET_PIT2 : KVM_GET_PIT2, (unsigned long)buf);
		return r < 0 ? vm_fail(vm, r, "KVM_%s_PIT2 failed", set ? "SET" : "GET") : 0;
	case VCPU_STATE_X86_CLOCK: {
		struct kvm_clock_data c;

		if (!set) {
			r = want(buf, len, sizeof(c));
			if (r)
				return r == 1 ? 0 : vm_fail(vm, -ENOSPC, "X86_CLOCK state needs 48 bytes");
			r = sys_ioctl(vm->hv, vm->fd, KVM_GET_CLOCK, (unsigned long)buf);
			return r < 0 ? vm_fail(vm, r, "KVM_GET_CLOCK failed") : 0;
		}
		/*
		 * Only the clock is set: the flags and times a get
		 * reported describe the source host, and KVM_CLOCK_REALTIME would
		 * advance the clock by the wall time since, which a snapshot
		 * restored later must not do.
		 */
		memcpy(&c, buf, sizeof(c));
		c = (struct kvm_clock_data){ .clock = c.clock };
		r = sys_ioctl(vm->hv, vm->fd, KVM_SET_CLOCK, (unsigned long)&c);
		return r < 0 ? vm_fail(vm, r, "KVM_SET_CLOCK failed") : 0;
	}
	default:
		return vm_fail(vm, -EINVAL, "state class 0x%x is not an x86 VM class", cls);
	}
}

/* ---- arm64 ---- */

/* KVM_GET_REG_LIST: malloc()ed, count in *@n; ENOEXEC before init. */
static int arm64_reg_list(struct vcpu *cpu, uint64_t **out, uint64_t *n)
{
	struct kvm_reg_list probe = { 0 }, *l;
	int r = vcpu_ioctl(cpu, KVM_GET_REG_LIST, (unsigned long)&probe);

	if (r < 0 && r != -E2BIG)
		return cpu_fail(cpu, r, "KVM_GET_REG_LIST on vCPU %u failed", cpu->id);
	if (probe.n > 65536)
		return cpu_fail(cpu, -EPROTO, "KVM_GET_REG_LIST: %llu registers",
				(unsigned long long)probe.n);
	l = calloc(1, sizeof(*l) + 8 * (size_t)probe.n);
	if (!l)
		return cpu_fail(cpu, -ENOMEM, "no memory for %llu register ids",
				(unsigned long long)probe.n);
	l->n = probe.n;
	r = vcpu_ioctl(cpu, KVM_GET_REG_LIST, (unsigned long)l);
	if (r < 0 || l->n > probe.n) {
		free(l);
		return cpu_fail(cpu, r < 0 ? r : -EPROTO, "KVM_GET_REG_LIST on vCPU %u failed",
				cpu->id);
	}
	*n = l->n;
	*out = malloc(8 * (size_t)*n + 8);
	if (*out)
		memcpy(*out, l->reg, 8 * (size_t)*n);
	free(l);
	return *out ? 0 : cpu_fail(cpu, -ENOMEM, "no memory for register ids");
}

/* The registers' records are checked by the core (lib/core/state.c, arm64_regs_bad()). */
static int arm64_set_regs(struct vcpu *cpu, const void *buf)
{
	const struct vcpu_arm64_regs *in = buf;
	const uint8_t *p = (const uint8_t *)buf + sizeof(*in);
	uint8_t value[256];
	int r = 0;

	for (uint32_t i = 0; i < in->count && !r; i++) {
		struct vcpu_arm64_reg e;

		memcpy(&e, p, sizeof(e));
		if ((e.id & KVM_REG_ARCH_MASK) != KVM_REG_ARM64)
			return cpu_fail(cpu, -EINVAL, "entry %u: 0x%llx is not an arm64 register id",
					i, (unsigned long long)e.id);
		memcpy(value, p + 8, vcpu_arm64_reg_bytes(e.id));
		p += vcpu_arm64_reg_size(&e);
		if (e.id == KVM_REG_ARM64_SVE_VLS) {
			/*
			 * Fixed when the vCPU was finalized (vcpu_create() with
			 * VCPU_CREATE_ARM64_SVE): KVM refuses a set after, so
			 * only check that the vector lengths are the saved ones.
			 */
			uint8_t cur[64];

			r = kvm_one_reg(cpu, false, e.id, cur);
			if (!r && memcmp(cur, value, sizeof(cur)) != 0)
				r = cpu_fail(cpu, -EINVAL, "the vCPU's SVE vector lengths differ from "
					     "the saved ones");
			continue;
		}
		r = kvm_one_reg(cpu, true, e.id, value);
	}
	return r;
}

static int arm64_state(struct vcpu *cpu, uint32_t cls, bool set, void *buf, size_t *len)
{
	struct vcpu_arm64_regs *regs = buf;
	uint64_t *ids = NULL, n = 0;
	size_t need = sizeof(*regs);
	uint8_t *p;
	int r;

	if (cls != VCPU_STATE_ARM64_REGS)
		return cpu_fail(cpu, -EINVAL, "state class 0x%x is not an arm64 vCPU class", cls);
	if (set)
		return arm64_set_regs(cpu, buf);
	r = arm64_reg_list(cpu, &ids, &n);
	if (r)
		return r;
	for (uint64_t i = 0; i < n && !r; i++) {
		struct vcpu_arm64_reg e = { .id = ids[i] };

		if (vcpu_arm64_reg_bytes(ids[i]) > 256)
			r = cpu_fail(cpu, -EPROTO, "KVM lists register 0x%llx of %zu bytes",
				     (unsigned long long)ids[i], vcpu_arm64_reg_bytes(ids[i]));
		need += vcpu_arm64_reg_size(&e);
	}
	if (!r)
		r = want(buf, len, need);
	if (r) {
		free(ids);
		return r == 1 ? 0 : r == -ENOSPC ? short_buf(cpu, "ARM64_REGS", need) : r;
	}
	memset(buf, 0, need);
	regs->count = (uint32_t)n;
	p = (uint8_t *)buf + sizeof(*regs);
	for (uint64_t i = 0; i < n && !r; i++) {
		struct vcpu_arm64_reg e = { .id = ids[i] };

		memcpy(p, &e.id, sizeof(e.id));
		r = kvm_one_reg(cpu, false, ids[i], p + 8);
		p += vcpu_arm64_reg_size(&e);
	}
	free(ids);
	return r;
}

/* ---- both ---- */

static int kvm_state(struct vcpu *cpu, uint32_t cls, bool set, void *buf, size_t *len)
{
	if (cls == VCPU_STATE_MP)
		return vcpu_fixed(cpu, set ? KVM_SET_MP_STATE : KVM_GET_MP_STATE,
				  set ? "KVM_SET_MP_STATE" : "KVM_GET_MP_STATE", buf,
				  set ? NULL : len, sizeof(struct kvm_mp_state));
	return cpu->vm->hv->arch == VCPU_ARCH_X86_64 ? x86_state(cpu, cls, set, buf, len)
						     : arm64_state(cpu, cls, set, buf, len);
}

int kvm_get_state(struct vcpu *cpu, uint32_t cls, void *buf, size_t *len)
{
	return kvm_state(cpu, cls, false, buf, len);
}

int kvm_set_state(struct vcpu *cpu, uint32_t cls, const void *buf, size_t len)
{
	/* The ioctls only read @buf on a set. */
	return kvm_state(cpu, cls, true, (void *)(uintptr_t)buf, &len);
}

/* ---- arm64 vGICv3 ---- */

/*
 * The registers a GICv3's state is (Arm IHI 0069: GICD_*, GICR_*, ICC_*),
 * listed in the order QEMU's kvm_arm_gicv3_put() writes them back:
 * GICD_CTLR; each redistributor; the distributor's SPIs (groups, routing,
 * trigger modes, line levels, then pending, enabled, active, priorities);
 * each CPU interface, ICC_SRE and ICC_CTLR first.  Bit registers with a
 * set/clear pair are saved by their set half (ISENABLER...) and restored
 * by a clear of every bit, then the set.
 */
#define GICD_CTLR 0x0000u
#define GICD_IGROUPR 0x0080u
#define GICD_ISENABLER 0x0100u
#define GICD_ISPENDR 0x0200u
#define GICD_ISACTIVER 0x0300u
#define GIC_CLEAR_DELTA 0x80u /* ICENABLER = ISENABLER + 0x80, and so on */
#define GICD_IPRIORITYR 0x0400u
#define GICD_ICFGR 0x0c00u
#define GICD_IGRPMODR 0x0d00u
#define GICD_IROUTER 0x6000u
#define GICR_CTLR 0x0000u
#define GICR_SGI 0x10000u
/* CPU interface registers by encoding (the low 16 bits of a CPU_SYSREGS attr). */
#define ICC(op1, crn, crm, op2) ((uint64_t)(3u << 14 | (op1) << 11 | (crn) << 7 | (crm) << 3 | (op2)))
#define ICC_PMR_EL1 ICC(0, 4, 6, 0)
#define ICC_BPR0_EL1 ICC(0, 12, 8, 3)
#define ICC_AP0R_EL1(n) ICC(0, 12, 8, 4 + (n))
#define ICC_AP1R_EL1(n) ICC(0, 12, 9, (n))
#define ICC_BPR1_EL1 ICC(0, 12, 12, 3)
#define ICC_CTLR_EL1 ICC(0, 12, 12, 4)
#define ICC_SRE_EL1 ICC(0, 12, 12, 5)
#define ICC_IGRPEN0_EL1 ICC(0, 12, 12, 6)
#define ICC_IGRPEN1_EL1 ICC(0, 12, 12, 7)

struct vgic_walk {
	struct vcpu_vm *vm;
	int fd;
	struct vcpu_arm64_vgic_reg *e; /* NULL: count only */
	uint32_t n;
	int err;
};

static int gic_attr(struct vgic_walk *w, bool set, uint32_t group, uint64_t attr, void *val)
{
	struct kvm_device_attr a = { .group = group, .attr = attr,
				     .addr = (uint64_t)(uintptr_t)val };
	int r = sys_ioctl(w->vm->hv, w->fd, set ? KVM_SET_DEVICE_ATTR : KVM_GET_DEVICE_ATTR,
			  (unsigned long)&a);

	return r < 0 ? vm_fail(w->vm, r, "KVM_%s_DEVICE_ATTR(vGIC group %u, attr 0x%llx) failed",
			       set ? "SET" : "GET", group, (unsigned long long)attr)
		     : 0;
}

/* Read one register into the next entry (or only count it). */
static void gic_save(struct vgic_walk *w, uint32_t group, uint64_t attr)
{
	struct vcpu_arm64_vgic_reg *e;
	uint32_t v32 = 0;
	uint64_t v64 = 0;

	if (w->err)
		return;
	if (w->e) {
		e = &w->e[w->n];
		*e = (struct vcpu_arm64_vgic_reg){ .group = group, .attr = attr };
		if (group == KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS || group == KVM_DEV_ARM_VGIC_GRP_ADDR) {
			w->err = gic_attr(w, false, group, attr, &v64);
			e->value = v64;
		} else {
			w->err = gic_attr(w, false, group, attr, &v32);
			e->value = v32;
		}
	}
	w->n++;
}

/* A vCPU's affinity as the vGIC's attributes name it (arm-vgic-v3.rst: Aff3.Aff2.Aff1.Aff0). */
static int gic_affinity(struct vcpu *cpu, uint64_t *aff)
{
	uint64_t mpidr = 0;
	int r = kvm_one_reg(cpu, false, KVM_REG_ARM64_MPIDR_EL1, &mpidr);

	if (r)
		return r;
	*aff = ((mpidr >> 32) & 0xff) << 24 | (mpidr & 0xffffff);
	return 0;
}

/*
 * Walk every register of the GIC in restore order.  @max_apr: the number
 * of ICC_AP[01]R<n> each CPU interface has: its ICC_CTLR_EL1.PRIbits says
 * (5 priority bits: 1, 6: 2, 7: 4); a count-only walk assumes 4.
 */
static void gic_walk(struct vgic_walk *w, uint32_t nr_irqs)
{
	struct vcpu_vm *vm = w->vm;
	uint64_t aff;

	gic_save(w, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST);
	gic_save(w, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST);
	gic_save(w, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0);
	gic_save(w, KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_CTLR);
	for (unsigned i = 0; i < vm->nr_vcpus && !w->err; i++) {
		const uint32_t sgi[] = { GICD_IGROUPR, GICD_IGRPMODR, GICD_ICFGR + 4, GICD_ISPENDR,
					 GICD_ISENABLER, GICD_ISACTIVER };

		if (w->e && (w->err = gic_affinity(vm->cpus[i], &aff)) != 0)
			break;
		aff = w->e ? aff << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT : 0;
		/*
		 * No GICR_PROPBASER/PENDBASER: they matter only with LPIs, which
		 * need an ITS libvcpu never creates, and KVM sanitises what is
		 * written to them, so a restore would not even read back the same.
		 */
		gic_save(w, KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, aff | GICR_CTLR);
		for (size_t k = 0; k < sizeof(sgi) / sizeof(sgi[0]); k++)
			gic_save(w, KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, aff | (GICR_SGI + sgi[k]));
		for (uint32_t b = 0; b < 32; b += 4)
			gic_save(w, KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, aff | (GICR_SGI + GICD_IPRIORITYR + b));
	}
	/* SPIs: INTIDs 32 to nr_irqs - 1; every register 32-bit, IROUTER by halves. */
	for (uint32_t n = 1; n < nr_irqs / 32; n++) {
		gic_save(w, KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_IGROUPR + 4 * n);
		gic_save(w, KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_IGRPMODR + 4 * n);
	}
	for (uint32_t irq = 32; irq < nr_irqs; irq++)
		for (uint32_t h = 0; h < 8; h += 4)
			gic_save(w, KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_IROUTER + 8ull * irq + h);
	for (uint32_t n = 2; n < nr_irqs / 16; n++)
		gic_save(w, KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_ICFGR + 4 * n);
	for (uint32_t irq = 32; irq < nr_irqs; irq += 32)
		gic_save(w, KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO,
			 (uint64_t)VGIC_LEVEL_INFO_LINE_LEVEL << KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT | irq);
	for (uint32_t n = 1; n < nr_irqs / 32; n++) {
		gic_save(w, KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_ISPENDR + 4 * n);
		gic_save(w, KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_ISENABLER + 4 * n);
		gic_save(w, KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_ISACTIVER + 4 * n);
	}
	for (uint32_t b = 32; b < nr_irqs; b += 4)
		gic_save(w, KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_IPRIORITYR + b);
	for (unsigned i = 0; i < vm->nr_vcpus && !w->err; i++) {
		const uint64_t icc[] = { ICC_SRE_EL1, ICC_CTLR_EL1, ICC_IGRPEN0_EL1, ICC_IGRPEN1_EL1,
					 ICC_PMR_EL1, ICC_BPR0_EL1, ICC_BPR1_EL1 };
		uint32_t napr = 4, ctlr_at;

		if (w->e && (w->err = gic_affinity(vm->cpus[i], &aff)) != 0)
			break;
		aff = w->e ? aff << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT : 0;
		ctlr_at = w->n + 1;
		for (size_t k = 0; k < sizeof(icc) / sizeof(icc[0]); k++)
			gic_save(w, KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, aff | icc[k]);
		if (w->e && !w->err) {
			uint32_t pribits = (uint32_t)((w->e[ctlr_at].value >> 8) & 7) + 1;

			napr = pribits >= 7 ? 4 : pribits == 6 ? 2 : 1;
		}
		for (uint32_t k = 0; k < napr; k++)
			gic_save(w, KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, aff | ICC_AP0R_EL1(k));
		for (uint32_t k = 0; k < napr; k++)
			gic_save(w, KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, aff | ICC_AP1R_EL1(k));
	}
}

static int gic_nr_irqs(struct vgic_walk *w, uint32_t *nr)
{
	int r = gic_attr(w, false, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, nr);

	if (!r && (*nr < 32 || *nr > 1024 || *nr % 32))
		r = vm_fail(w->vm, -EPROTO, "the vGIC reports %u interrupts", *nr);
	return r;
}

static int gic_get(struct vcpu_vm *vm, void *buf, size_t *len)
{
	const struct kvm_vm_priv *p = vm->priv;
	struct vgic_walk w = { .vm = vm, .fd = p->gic_fd };
	struct vcpu_arm64_vgic *out = buf;
	uint32_t nr = 0;
	int r;

	if (p->gic_fd < 0)
		return vm_fail(vm, -ENXIO, "the VM has no in-kernel GICv3 (vcpu_vm_create_gic_v3())");
	r = gic_nr_irqs(&w, &nr);
	if (r)
		return r;
	gic_walk(&w, nr); /* the count, with 4 APxR registers per CPU interface */
	r = want(buf, len, sizeof(*out) + sizeof(struct vcpu_arm64_vgic_reg) * (size_t)w.n);
	if (r)
		return r == 1 ? 0 : vm_fail(vm, -ENOSPC, "ARM64_VGIC state needs %zu bytes", *len);
	w.e = vcpu_arm64_vgic_entries(out);
	w.n = 0;
	gic_walk(&w, nr);
	if (w.err)
		return w.err;
	out->count = w.n;
	out->reserved = 0;
	*len = sizeof(*out) + sizeof(struct vcpu_arm64_vgic_reg) * (size_t)w.n;
	return 0;
}

static bool gic_set_clear_pair(const struct vcpu_arm64_vgic_reg *e, uint32_t off)
{
	uint32_t base = e->group == KVM_DEV_ARM_VGIC_GRP_REDIST_REGS ? GICR_SGI : 0;

	if (e->group != KVM_DEV_ARM_VGIC_GRP_DIST_REGS && e->group != KVM_DEV_ARM_VGIC_GRP_REDIST_REGS)
		return false;
	if (off < base)
		return false;
	off -= base;
	return (off >= GICD_ISENABLER && off < GICD_ISENABLER + GIC_CLEAR_DELTA) ||
	       (off >= GICD_ISPENDR && off < GICD_ISPENDR + GIC_CLEAR_DELTA) ||
	       (off >= GICD_ISACTIVER && off < GICD_ISACTIVER + GIC_CLEAR_DELTA);
}

static int gic_set(struct vcpu_vm *vm, const void *buf)
{
	const struct kvm_vm_priv *p = vm->priv;
	struct vgic_walk w = { .vm = vm, .fd = p->gic_fd };
	const struct vcpu_arm64_vgic *in = buf;
	int r = 0;

	if (p->gic_fd < 0)
		return vm_fail(vm, -ENXIO, "the VM has no in-kernel GICv3 (vcpu_vm_create_gic_v3())");
	for (uint32_t i = 0; i < in->count && !r; i++) {
		struct vcpu_arm64_vgic_reg e;
		uint64_t cur = 0;
		uint32_t v32;

		memcpy(&e, (const uint8_t *)buf + sizeof(*in) + sizeof(e) * i, sizeof(e));
		switch (e.group) {
		case KVM_DEV_ARM_VGIC_GRP_ADDR:
		case KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
			/* Fixed when the GIC was made: the VM's must be the saved one's. */
			r = gic_attr(&w, false, e.group, e.attr, &cur);
			if (!r && (e.group == KVM_DEV_ARM_VGIC_GRP_NR_IRQS ? (uint32_t)cur : cur) != e.value)
				r = vm_fail(vm, -EINVAL, "the VM's GICv3 differs from the saved one: %s "
					    "0x%llx, saved 0x%llx", e.group == KVM_DEV_ARM_VGIC_GRP_NR_IRQS
					    ? "interrupts" : e.attr == KVM_VGIC_V3_ADDR_TYPE_DIST
					    ? "distributor at" : "redistributors at",
					    (unsigned long long)(e.group == KVM_DEV_ARM_VGIC_GRP_NR_IRQS
								 ? (uint32_t)cur : cur),
					    (unsigned long long)e.value);
			break;
		case KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS:
			r = gic_attr(&w, true, e.group, e.attr, &e.value);
			break;
		case KVM_DEV_ARM_VGIC_GRP_DIST_REGS:
		case KVM_DEV_ARM_VGIC_GRP_REDIST_REGS:
		case KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO:
			if (e.value > UINT32_MAX) {
				r = vm_fail(vm, -EINVAL, "entry %u: a 32-bit vGIC register holds "
					    "0x%llx", i, (unsigned long long)e.value);
				break;
			}
			if (gic_set_clear_pair(&e, (uint32_t)e.attr)) {
				v32 = UINT32_MAX;
				r = gic_attr(&w, true, e.group, e.attr + GIC_CLEAR_DELTA, &v32);
			}
			v32 = (uint32_t)e.value;
			if (!r)
				r = gic_attr(&w, true, e.group, e.attr, &v32);
			break;
		default:
			r = vm_fail(vm, -EINVAL, "entry %u: vGIC group %u is not part of its state", i,
				    e.group);
			break;
		}
	}
	return r;
}

/* ---- VM classes ---- */

int kvm_vm_get_state(struct vcpu_vm *vm, uint32_t cls, void *buf, size_t *len)
{
	if (cls == VCPU_STATE_ARM64_VGIC)
		return gic_get(vm, buf, len);
	return x86_vm_state(vm, cls, false, buf, len);
}

int kvm_vm_set_state(struct vcpu_vm *vm, uint32_t cls, const void *buf, size_t len)
{
	if (cls == VCPU_STATE_ARM64_VGIC)
		return gic_set(vm, buf);
	return x86_vm_state(vm, cls, true, (void *)(uintptr_t)buf, &len);
}
