// SPDX-License-Identifier: MIT
/*
 * State classes and snapshots (vcpu_get_state(3), vcpu_vm_snapshot(3)).
 *
 * The rules every backend shares live here: which classes exist, for
 * which architecture and level, and what sizes a set may pass; the order a
 * restore applies them in; and the snapshot format, its writer and its
 * parser.  Backends only move a class's bytes to and from their driver.
 *
 * Snapshot format, version 1 (vcpu_vm_snapshot(3)), every integer little-endian:
 *
 *   header (40 bytes)
 *     0  "VCPUSNAP"          8  u32 version         12 u32 header size (40)
 *     16 u32 arch            20 u32 backend         24 u32 section count
 *     28 u32 CRC-32 (IEEE, of the whole blob with this field zero)
 *     32 u64 total length
 *   sections, each 8-byte aligned:
 *     0  u32 kind (SEC_*)    4  u32 class (0 for LAYOUT and VCPUS)
 *     8  u32 vCPU id (SNAP_VM for the VM's)   12 u32 reserved (0)
 *     16 u64 payload length, then the payload, zero-padded to 8 bytes
 *   SEC_LAYOUT: u32 count, u32 0, then per region u64 gpa, u64 size,
 *               u32 flags, u32 0 (VCPU_MEM_* flags);
 *   SEC_VCPUS:  u32 count, u32 0, then u32 ids, padded;
 *   SEC_STATE:  a class's bytes, as vcpu_get_state() gives them.
 *
 * A class's bytes are its public structure as laid out on a little-endian
 * host (x86_64 and arm64, the only architectures with these drivers); the
 * build refuses a big-endian target rather than write another format.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vcpu/state.h>

#include "internal.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the snapshot format stores state structures as little-endian bytes"
#endif

enum { ANY_ARCH = 0xff };

struct state_class {
	uint32_t cls;
	uint8_t arch;     /* enum vcpu_arch, or ANY_ARCH */
	bool vm;          /* a VM class */
	uint32_t size;    /* fixed size; 0: a count header (8 bytes) and elements */
	uint32_t elem;    /* element size of a counted class; XSAVE: 0 and size = minimum */
	const char *name;
};

static const struct state_class classes[] = {
	{ VCPU_STATE_MP, ANY_ARCH, false, sizeof(struct vcpu_mp_state), 0, "MP" },
	{ VCPU_STATE_X86_REGS, VCPU_ARCH_X86_64, false, sizeof(struct vcpu_x86_regs), 0, "X86_REGS" },
	{ VCPU_STATE_X86_SREGS, VCPU_ARCH_X86_64, false, sizeof(struct vcpu_x86_sregs), 0, "X86_SREGS" },
	{ VCPU_STATE_X86_XSAVE, VCPU_ARCH_X86_64, false, VCPU_X86_XSAVE_MIN_SIZE, 0, "X86_XSAVE" },
	{ VCPU_STATE_X86_XCRS, VCPU_ARCH_X86_64, false, sizeof(struct vcpu_x86_xcrs), 0, "X86_XCRS" },
	{ VCPU_STATE_X86_MSRS, VCPU_ARCH_X86_64, false, 0, sizeof(struct vcpu_x86_msr), "X86_MSRS" },
	{ VCPU_STATE_X86_DEBUGREGS, VCPU_ARCH_X86_64, false, sizeof(struct vcpu_x86_debugregs), 0,
	  "X86_DEBUGREGS" },
	{ VCPU_STATE_X86_EVENTS, VCPU_ARCH_X86_64, false, sizeof(struct vcpu_x86_events), 0, "X86_EVENTS" },
	{ VCPU_STATE_X86_LAPIC, VCPU_ARCH_X86_64, false, sizeof(struct vcpu_x86_lapic), 0, "X86_LAPIC" },
	{ VCPU_STATE_X86_TSC_KHZ, VCPU_ARCH_X86_64, false, sizeof(struct vcpu_x86_tsc_khz), 0,
	  "X86_TSC_KHZ" },
	/* Records of their own sizes: arm64_regs_bad() checks them. */
	{ VCPU_STATE_ARM64_REGS, VCPU_ARCH_ARM64, false, 0, 0, "ARM64_REGS" },
	{ VCPU_STATE_X86_PIC, VCPU_ARCH_X86_64, true, sizeof(struct vcpu_x86_pic), 0, "X86_PIC" },
	{ VCPU_STATE_X86_IOAPIC, VCPU_ARCH_X86_64, true, sizeof(struct vcpu_x86_ioapic), 0, "X86_IOAPIC" },
	{ VCPU_STATE_X86_PIT, VCPU_ARCH_X86_64, true, sizeof(struct vcpu_x86_pit), 0, "X86_PIT" },
	{ VCPU_STATE_X86_CLOCK, VCPU_ARCH_X86_64, true, sizeof(struct vcpu_x86_clock), 0, "X86_CLOCK" },
	{ VCPU_STATE_ARM64_VGIC, VCPU_ARCH_ARM64, true, 0, sizeof(struct vcpu_arm64_vgic_reg),
	  "ARM64_VGIC" },
};

_Static_assert(sizeof(struct vcpu_x86_regs) == 144, "vcpu_x86_regs");
_Static_assert(sizeof(struct vcpu_x86_sregs) == 312, "vcpu_x86_sregs");
_Static_assert(sizeof(struct vcpu_x86_xcrs) == 392, "vcpu_x86_xcrs");
_Static_assert(sizeof(struct vcpu_x86_debugregs) == 128, "vcpu_x86_debugregs");
_Static_assert(sizeof(struct vcpu_x86_events) == 64, "vcpu_x86_events");
_Static_assert(sizeof(struct vcpu_x86_pic) == 32, "vcpu_x86_pic");
_Static_assert(sizeof(struct vcpu_x86_ioapic) == 216, "vcpu_x86_ioapic");
_Static_assert(sizeof(struct vcpu_x86_pit) == 112, "vcpu_x86_pit");
_Static_assert(sizeof(struct vcpu_x86_clock) == 48, "vcpu_x86_clock");
_Static_assert(sizeof(struct vcpu_arm64_reg) == 16, "vcpu_arm64_reg: the smallest record");
_Static_assert(sizeof(struct vcpu_arm64_vgic_reg) == 24, "vcpu_arm64_vgic_reg");
_Static_assert(sizeof(struct vcpu_x86_msrs) == 8 && sizeof(struct vcpu_arm64_regs) == 8 &&
		       sizeof(struct vcpu_arm64_vgic) == 8,
	       "counted classes: an 8-byte header");

/*
 * The order a restore applies each architecture's classes in.  x86 follows
 * what KVM needs (as QEMU's kvm_arch_put_registers() does): the TSC rate
 * before anything, as the TSC's value (an MSR) is written at it; SREGS, as
 * it carries EFER and the APIC base the LAPIC state depends on; the LAPIC
 * before the MSRs, so that IA32_TSC_DEADLINE lands on a LAPIC already in
 * TSC-deadline mode; events after the LAPIC they may name; MP state last
 * but the debug registers.  VM classes: the interrupt controllers and the
 * PIT before the vCPUs, the clock after them, as it keeps running.  arm64:
 * the GICv3 after the vCPUs, whose restored MPIDRs name its redistributors.
 */
static const uint32_t x86_vcpu_order[] = {
	VCPU_STATE_X86_TSC_KHZ, VCPU_STATE_X86_SREGS, VCPU_STATE_X86_REGS, VCPU_STATE_X86_XSAVE,
	VCPU_STATE_X86_XCRS, VCPU_STATE_X86_LAPIC, VCPU_STATE_X86_MSRS, VCPU_STATE_X86_EVENTS,
	VCPU_STATE_MP, VCPU_STATE_X86_DEBUGREGS,
};
static const uint32_t arm64_vcpu_order[] = { VCPU_STATE_ARM64_REGS, VCPU_STATE_MP };
static const uint32_t x86_vm_before[] = { VCPU_STATE_X86_PIC, VCPU_STATE_X86_IOAPIC,
					  VCPU_STATE_X86_PIT };
static const uint32_t x86_vm_after[] = { VCPU_STATE_X86_CLOCK };
static const uint32_t arm64_vm_after[] = { VCPU_STATE_ARM64_VGIC };

/*
 * Visit every class of @vm in restore order: the VM's classes before its
 * vCPUs', each vCPU's, then the VM's after them.  @fn gets @cpu NULL for a
 * VM class; the walk stops at its first non-zero return, which it returns.
 * Saving, matching and restoring all walk this one order.
 */
typedef int (*class_fn)(struct vcpu_vm *vm, struct vcpu *cpu, uint32_t cls, void *ctx);

#define NCLS(a) (sizeof(a) / sizeof((a)[0]))

static int walk_classes(struct vcpu_vm *vm, class_fn fn, void *ctx)
{
	const bool x86 = vm->hv->arch == VCPU_ARCH_X86_64;
	const uint32_t *vcpu_cls = x86 ? x86_vcpu_order : arm64_vcpu_order;
	const uint32_t *after = x86 ? x86_vm_after : arm64_vm_after;
	const size_t nvcpu_cls = x86 ? NCLS(x86_vcpu_order) : NCLS(arm64_vcpu_order);
	const size_t nbefore = x86 ? NCLS(x86_vm_before) : 0;
	const size_t nafter = x86 ? NCLS(x86_vm_after) : NCLS(arm64_vm_after);
	int r = 0;

	for (size_t k = 0; k < nbefore && !r; k++)
		r = fn(vm, NULL, x86_vm_before[k], ctx);
	for (unsigned i = 0; i < vm->nr_vcpus && !r; i++)
		for (size_t k = 0; k < nvcpu_cls && !r; k++)
			r = fn(vm, vm->cpus[i], vcpu_cls[k], ctx);
	for (size_t k = 0; k < nafter && !r; k++)
		r = fn(vm, NULL, after[k], ctx);
	return r;
}

static const struct state_class *class_find(uint32_t cls)
{
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (classes[i].cls == cls)
			return &classes[i];
	return NULL;
}

/*
 * ARM64_REGS: @count records, each an id and its value padded to 8 bytes,
 * exactly filling @len.  Sizes above 2048 bits (KVM's largest, SVE's Z
 * registers) are refused: no such register exists to read them from.
 */
static const char *arm64_regs_bad(const void *buf, size_t len, uint32_t count, char *why,
				  size_t whylen)
{
	size_t off = 8;

	for (uint32_t i = 0; i < count; i++) {
		struct vcpu_arm64_reg r;

		if (len - off < sizeof(r)) {
			snprintf(why, whylen, "ARM64_REGS: register %u of %u starts past the end", i,
				 count);
			return why;
		}
		memcpy(&r, (const uint8_t *)buf + off, sizeof(r));
		if (vcpu_arm64_reg_bytes(r.id) > 256 || len - off < vcpu_arm64_reg_size(&r)) {
			snprintf(why, whylen, "ARM64_REGS: register %u (id 0x%llx) does not fit", i,
				 (unsigned long long)r.id);
			return why;
		}
		off += vcpu_arm64_reg_size(&r);
	}
	if (off != len) {
		snprintf(why, whylen, "ARM64_REGS: %zu bytes after %u registers", len - off, count);
		return why;
	}
	return NULL;
}

/*
 * Is @len bytes at @buf a valid instance of @c?  NULL: yes; else what is
 * wrong, in @why.  Shared by sets and by the snapshot parser, so that a blob
 * can never carry state a set would refuse.
 */
static const char *class_len_bad(const struct state_class *c, const void *buf, size_t len,
				 char *why, size_t whylen)
{
	uint32_t count;

	if (c->size && c->elem == 0 && c->cls != VCPU_STATE_X86_XSAVE) {
		if (len == c->size)
			return NULL;
		snprintf(why, whylen, "%s state is %u bytes, not %zu", c->name, c->size, len);
		return why;
	}
	if (c->cls == VCPU_STATE_X86_XSAVE) {
		if (len >= c->size && len % 4 == 0 && len <= (1u << 20))
			return NULL;
		snprintf(why, whylen, "an XSAVE area is a multiple of 4 bytes from %u to 1 MiB, "
			 "not %zu", c->size, len);
		return why;
	}
	if (len < 8) {
		snprintf(why, whylen, "%s state has an 8-byte count header; %zu bytes is too short",
			 c->name, len);
		return why;
	}
	memcpy(&count, buf, sizeof(count));
	if (c->cls == VCPU_STATE_ARM64_REGS)
		return arm64_regs_bad(buf, len, count, why, whylen);
	if ((len - 8) % c->elem || (len - 8) / c->elem != count) {
		snprintf(why, whylen, "%s state of %zu bytes does not hold its count, %u entries of "
			 "%u bytes", c->name, len, count, c->elem);
		return why;
	}
	return NULL;
}

/* The class for a call on @arch at the vCPU (@vm false) or VM level, or NULL with @why set. */
static const struct state_class *class_for(uint32_t cls, enum vcpu_arch arch, bool vm,
					   char *why, size_t whylen)
{
	const struct state_class *c = class_find(cls);

	if (!c)
		snprintf(why, whylen, "unknown state class 0x%x", cls);
	else if (c->arch != ANY_ARCH && c->arch != arch)
		snprintf(why, whylen, "state class %s is not of this VM's architecture", c->name);
	else if (c->vm != vm)
		snprintf(why, whylen, "state class %s is a %s class: use %s", c->name,
			 c->vm ? "VM" : "vCPU", c->vm ? "vcpu_vm_get_state()" : "vcpu_get_state()");
	else
		return c;
	return NULL;
}

static bool any_vcpu_runs(struct vcpu_vm *vm)
{
	bool runs = false;

	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		runs |= atomic_load(&vm->cpus[i]->in_run) != 0;
	return runs;
}

VCPU_API int vcpu_get_state(struct vcpu *cpu, uint32_t cls, void *buf, size_t *len)
{
	char why[160];
	const struct state_class *c;

	if (!cpu)
		return -EINVAL;
	if (!len)
		return cpu_fail(cpu, -EINVAL, "vcpu_get_state: NULL length pointer");
	c = class_for(cls, cpu->vm->hv->arch, false, why, sizeof(why));
	if (!c)
		return cpu_fail(cpu, -EINVAL, "vcpu_get_state: %s", why);
	if (atomic_load(&cpu->in_run))
		return cpu_fail(cpu, -EBUSY, "vcpu_get_state(%s): vCPU %u is running", c->name,
				cpu->id);
	if (!cpu->vm->hv->ops->get_state)
		return cpu_fail(cpu, -EOPNOTSUPP, "the %s backend cannot read vCPU state",
				cpu->vm->hv->ops->name);
	return cpu->vm->hv->ops->get_state(cpu, cls, buf, len);
}

VCPU_API int vcpu_set_state(struct vcpu *cpu, uint32_t cls, const void *buf, size_t len)
{
	char why[160];
	const struct state_class *c;
	int r;

	if (!cpu)
		return -EINVAL;
	if (!buf)
		return cpu_fail(cpu, -EINVAL, "vcpu_set_state: NULL buffer");
	c = class_for(cls, cpu->vm->hv->arch, false, why, sizeof(why));
	if (!c || class_len_bad(c, buf, len, why, sizeof(why)))
		return cpu_fail(cpu, -EINVAL, "vcpu_set_state: %s", why);
	if (atomic_load(&cpu->in_run))
		return cpu_fail(cpu, -EBUSY, "vcpu_set_state(%s): vCPU %u is running", c->name,
				cpu->id);
	if (!cpu->vm->hv->ops->set_state)
		return cpu_fail(cpu, -EOPNOTSUPP, "the %s backend cannot write vCPU state",
				cpu->vm->hv->ops->name);
	r = cpu->vm->hv->ops->set_state(cpu, cls, buf, len);
	/* Registers cached from the last hypercall exit are stale now (kvm_arm64.c). */
	cpu->hc_known |= VCPU_HC_WRITTEN;
	return r;
}

/* A VM class call, vm->lock held by the caller. */
static int vm_state_locked(struct vcpu_vm *vm, uint32_t cls, void *out, const void *in,
			   size_t *len)
{
	char why[160];
	const struct state_class *c;
	const char *fn = in ? "vcpu_vm_set_state" : "vcpu_vm_get_state";

	c = class_for(cls, vm->hv->arch, true, why, sizeof(why));
	if (!c || (in && class_len_bad(c, in, *len, why, sizeof(why))))
		return vm_fail(vm, -EINVAL, "%s: %s", fn, why);
	if (in ? !vm->hv->ops->vm_set_state : !vm->hv->ops->vm_get_state)
		return vm_fail(vm, -EOPNOTSUPP, "the %s backend cannot %s VM state",
			       vm->hv->ops->name, in ? "write" : "read");
	return in ? vm->hv->ops->vm_set_state(vm, cls, in, *len)
		  : vm->hv->ops->vm_get_state(vm, cls, out, len);
}

/* VM calls hold vm->lock: the vCPU set cannot change, and two VM calls do not interleave. */
static int vm_state_call(struct vcpu_vm *vm, uint32_t cls, void *out, const void *in,
			 size_t *len)
{
	int r;

	pthread_mutex_lock(&vm->lock);
	if (any_vcpu_runs(vm))
		r = vm_fail(vm, -EBUSY, "%s(0x%x): a vCPU of the VM is running",
			    in ? "vcpu_vm_set_state" : "vcpu_vm_get_state", cls);
	else
		r = vm_state_locked(vm, cls, out, in, len);
	pthread_mutex_unlock(&vm->lock);
	return r;
}

VCPU_API int vcpu_vm_get_state(struct vcpu_vm *vm, uint32_t cls, void *buf, size_t *len)
{
	if (!vm)
		return -EINVAL;
	if (!len)
		return vm_fail(vm, -EINVAL, "vcpu_vm_get_state: NULL length pointer");
	return vm_state_call(vm, cls, buf, NULL, len);
}

VCPU_API int vcpu_vm_set_state(struct vcpu_vm *vm, uint32_t cls, const void *buf, size_t len)
{
	if (!vm)
		return -EINVAL;
	if (!buf)
		return vm_fail(vm, -EINVAL, "vcpu_vm_set_state: NULL buffer");
	return vm_state_call(vm, cls, NULL, buf, &len);
}

/* A VM-level detail around a vCPU's, which already names the errno. */
__attribute__((format(printf, 3, 4)))
static int relay(struct vcpu_vm *vm, int err, const char *fmt, ...)
{
	char buf[VCPU_ERRLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	vcpu_err_set(&vm->err_busy, vm->err, buf);
	return err;
}

/* ------------------------------------------------------------------------ */
/* The snapshot format                                                       */

#define SNAP_MAGIC "VCPUSNAP"
#define SNAP_HDR 40u
#define SNAP_SEC_HDR 24u
#define SNAP_VM 0xffffffffu
/* Far above any real VM (a few MiB for hundreds of vCPUs), far below size_t's end. */
#define SNAP_MAX_LEN ((size_t)1 << 30)

enum { SEC_LAYOUT = 1, SEC_VCPUS = 2, SEC_STATE = 3 };

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32()), bit by bit: snapshots are small. */
static uint32_t crc32_ieee(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static uint32_t blob_crc(const uint8_t *b, size_t len)
{
	static const uint8_t zero[4];
	uint32_t crc = crc32_ieee(0, b, 28);

	crc = crc32_ieee(crc, zero, 4);
	return crc32_ieee(crc, b + 32, len - 32);
}

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* A writer over a growing buffer; any failure sticks in @err. */
struct wbuf {
	uint8_t *p;
	size_t len, cap;
	int err;
	uint32_t nsec;
};

static uint8_t *wb_reserve(struct wbuf *w, size_t n)
{
	uint8_t *np;
	size_t cap;

	if (w->err)
		return NULL;
	if (n > SNAP_MAX_LEN - w->len) {
		w->err = -E2BIG;
		return NULL;
	}
	if (w->len + n > w->cap) {
		cap = w->cap ? w->cap : 4096;
		while (cap < w->len + n)
			cap *= 2;
		np = realloc(w->p, cap);
		if (!np) {
			w->err = -ENOMEM;
			return NULL;
		}
		w->p = np;
		w->cap = cap;
	}
	np = w->p + w->len;
	memset(np, 0, n);
	w->len += n;
	return np;
}

/* Start a section with room for @plen payload bytes; returns the payload. */
static uint8_t *wb_section(struct wbuf *w, uint32_t kind, uint32_t cls, uint32_t id, size_t plen)
{
	uint8_t *h = wb_reserve(w, SNAP_SEC_HDR + pad8(plen));

	if (!h)
		return NULL;
	put32(h, kind);
	put32(h + 4, cls);
	put32(h + 8, id);
	put64(h + 16, plen);
	w->nsec++;
	return h + SNAP_SEC_HDR;
}

/* A parsed, checked blob: where its sections are. */
struct snap {
	const uint8_t *b;
	size_t len;
	uint32_t arch, backend, nsec;
	const uint8_t *layout;  /* SEC_LAYOUT's payload */
	uint32_t nregions;
	const uint8_t *vcpus;   /* SEC_VCPUS's payload */
	uint32_t nvcpus;
};

struct section {
	uint32_t kind, cls, id;
	const uint8_t *payload;
	size_t len;
};

/* The @i'th section at *@off; advances *@off.  The blob was walked by snap_parse(). */
static struct section sec_at(const struct snap *s, size_t *off)
{
	const uint8_t *h = s->b + *off;
	struct section sec = { get32(h), get32(h + 4), get32(h + 8), h + SNAP_SEC_HDR,
			       (size_t)get64(h + 16) };

	*off += SNAP_SEC_HDR + pad8(sec.len);
	return sec;
}

static bool vcpu_listed(const struct snap *s, uint32_t id)
{
	for (uint32_t i = 0; i < s->nvcpus; i++)
		if (get32(s->vcpus + 8 + 4 * (size_t)i) == id)
			return true;
	return false;
}

/*
 * Check everything about a blob that does not need a VM: header, CRC, each
 * section's bounds, kind, class (of the blob's architecture and level) and
 * size, one LAYOUT and one VCPUS section, state only for listed vCPUs and
 * at most once per class.  On failure @why says what is wrong.
 */
static int snap_parse(const void *blob, size_t len, struct snap *s, char *why, size_t whylen)
{
	const uint8_t *b = blob;
	size_t off, total;
	uint32_t version;

	memset(s, 0, sizeof(*s));
	if (len < SNAP_HDR || memcmp(b, SNAP_MAGIC, 8) != 0) {
		snprintf(why, whylen, "not a libvcpu snapshot (%s)",
			 len < SNAP_HDR ? "shorter than its header" : "no VCPUSNAP magic");
		return -EBADMSG;
	}
	version = get32(b + 8);
	if (version != VCPU_SNAPSHOT_VERSION) {
		snprintf(why, whylen, "snapshot format version %u; this libvcpu reads version %u",
			 version, VCPU_SNAPSHOT_VERSION);
		return -EPROTONOSUPPORT;
	}
	total = (size_t)get64(b + 32);
	if (get32(b + 12) != SNAP_HDR || total != len || len > SNAP_MAX_LEN || len % 8) {
		snprintf(why, whylen, "snapshot truncated or padded: header says %llu bytes, "
			 "the buffer has %zu", (unsigned long long)get64(b + 32), len);
		return -EBADMSG;
	}
	if (get32(b + 28) != blob_crc(b, len)) {
		snprintf(why, whylen, "snapshot corrupted: CRC-32 0x%08x does not match its "
			 "contents (0x%08x)", get32(b + 28), blob_crc(b, len));
		return -EBADMSG;
	}
	s->b = b;
	s->len = len;
	s->arch = get32(b + 16);
	s->backend = get32(b + 20);
	s->nsec = get32(b + 24);
	if (s->arch != VCPU_ARCH_X86_64 && s->arch != VCPU_ARCH_ARM64) {
		snprintf(why, whylen, "snapshot of unknown architecture %u", s->arch);
		return -EBADMSG;
	}
	/* Pass 1: bounds, kinds, sizes; find LAYOUT and VCPUS. */
	off = SNAP_HDR;
	for (uint32_t i = 0; i < s->nsec; i++) {
		const uint8_t *h = b + off;
		uint64_t plen;
		struct section sec;
		const struct state_class *c;

		if (len - off < SNAP_SEC_HDR) {
			snprintf(why, whylen, "section %u starts past the end", i);
			return -EBADMSG;
		}
		plen = get64(h + 16);
		if (plen > len - off - SNAP_SEC_HDR || pad8((size_t)plen) > len - off - SNAP_SEC_HDR) {
			snprintf(why, whylen, "section %u's %llu bytes run past the end", i,
				 (unsigned long long)plen);
			return -EBADMSG;
		}
		sec = sec_at(s, &off);
		if (get32(h + 12)) {
			snprintf(why, whylen, "section %u: reserved field set", i);
			return -EBADMSG;
		}
		switch (sec.kind) {
		case SEC_LAYOUT:
		case SEC_VCPUS: {
			uint32_t n, esz = sec.kind == SEC_LAYOUT ? 24 : 4;

			if (sec.cls || sec.id != SNAP_VM || sec.len < 8 ||
			    (sec.kind == SEC_LAYOUT ? s->layout : s->vcpus)) {
				snprintf(why, whylen, "section %u: a bad or repeated %s section", i,
					 sec.kind == SEC_LAYOUT ? "layout" : "vCPU list");
				return -EBADMSG;
			}
			n = get32(sec.payload);
			if ((sec.len - 8) / esz != n || (sec.len - 8) % esz) {
				snprintf(why, whylen, "section %u: %zu bytes do not hold %u entries",
					 i, sec.len, n);
				return -EBADMSG;
			}
			if (sec.kind == SEC_LAYOUT) {
				s->layout = sec.payload;
				s->nregions = n;
			} else {
				s->vcpus = sec.payload;
				s->nvcpus = n;
			}
			break;
		}
		case SEC_STATE:
			c = class_find(sec.cls);
			if (!c || (c->arch != ANY_ARCH && c->arch != s->arch) ||
			    c->vm != (sec.id == SNAP_VM)) {
				snprintf(why, whylen, "section %u: state class 0x%x does not belong "
					 "at this %s", i, sec.cls, sec.id == SNAP_VM ? "VM" : "vCPU");
				return -EBADMSG;
			}
			if (class_len_bad(c, sec.payload, sec.len, why, whylen))
				return -EBADMSG;
			break;
		default:
			snprintf(why, whylen, "section %u: unknown kind %u", i, sec.kind);
			return -EBADMSG;
		}
	}
	if (off != len || !s->layout || !s->vcpus) {
		snprintf(why, whylen, "%s", off != len ? "bytes after the last section"
					    : "no memory layout or vCPU list");
		return -EBADMSG;
	}
	/* Pass 2: vCPU ids unique; state only for listed vCPUs, each class once. */
	for (uint32_t i = 0; i < s->nvcpus; i++)
		for (uint32_t j = 0; j < i; j++)
			if (get32(s->vcpus + 8 + 4 * (size_t)i) == get32(s->vcpus + 8 + 4 * (size_t)j)) {
				snprintf(why, whylen, "vCPU %u listed twice",
					 get32(s->vcpus + 8 + 4 * (size_t)i));
				return -EBADMSG;
			}
	off = SNAP_HDR;
	for (uint32_t i = 0; i < s->nsec; i++) {
		size_t o2 = SNAP_HDR;
		struct section sec = sec_at(s, &off);

		if (sec.kind != SEC_STATE)
			continue;
		if (sec.id != SNAP_VM && !vcpu_listed(s, sec.id)) {
			snprintf(why, whylen, "section %u: state of vCPU %u, which is not listed", i,
				 sec.id);
			return -EBADMSG;
		}
		for (uint32_t j = 0; j < i; j++) {
			struct section o = sec_at(s, &o2);

			if (o.kind == SEC_STATE && o.cls == sec.cls && o.id == sec.id) {
				snprintf(why, whylen, "section %u repeats section %u", i, j);
				return -EBADMSG;
			}
		}
	}
	return 0;
}

/* The state section of (@id, @cls), or NULL. */
static const struct section *snap_find(const struct snap *s, uint32_t id, uint32_t cls,
				       struct section *out)
{
	size_t off = SNAP_HDR;

	for (uint32_t i = 0; i < s->nsec; i++) {
		*out = sec_at(s, &off);
		if (out->kind == SEC_STATE && out->id == id && out->cls == cls)
			return out;
	}
	return NULL;
}

VCPU_API int vcpu_snapshot_info(const void *blob, size_t len, struct vcpu_snapshot_info *info)
{
	struct section sec;
	struct snap s;
	char why[160];
	int r;

	if (!blob || !info)
		return -EINVAL;
	r = snap_parse(blob, len, &s, why, sizeof(why));
	if (r)
		return r;
	memset(info, 0, sizeof(*info));
	info->version = VCPU_SNAPSHOT_VERSION;
	info->arch = s.arch;
	info->backend = s.backend;
	info->nr_vcpus = s.nvcpus;
	info->nr_regions = s.nregions;
	if (snap_find(&s, SNAP_VM, VCPU_STATE_X86_PIC, &sec))
		info->devices |= VCPU_SNAPSHOT_DEV_X86_IRQCHIP;
	if (snap_find(&s, SNAP_VM, VCPU_STATE_X86_PIT, &sec))
		info->devices |= VCPU_SNAPSHOT_DEV_X86_PIT;
	if (snap_find(&s, SNAP_VM, VCPU_STATE_ARM64_VGIC, &sec))
		info->devices |= VCPU_SNAPSHOT_DEV_ARM64_GIC_V3;
	return 0;
}

VCPU_API int vcpu_snapshot_vcpu(const void *blob, size_t len, uint32_t index, uint32_t *id)
{
	struct snap s;
	char why[160];
	int r;

	if (!blob || !id)
		return -EINVAL;
	r = snap_parse(blob, len, &s, why, sizeof(why));
	if (r)
		return r;
	if (index >= s.nvcpus)
		return -ERANGE;
	*id = get32(s.vcpus + 8 + 4 * (size_t)index);
	return 0;
}

VCPU_API int vcpu_snapshot_region(const void *blob, size_t len, uint32_t index,
				  struct vcpu_snapshot_region *region)
{
	struct snap s;
	char why[160];
	const uint8_t *e;
	int r;

	if (!blob || !region)
		return -EINVAL;
	r = snap_parse(blob, len, &s, why, sizeof(why));
	if (r)
		return r;
	if (index >= s.nregions)
		return -ERANGE;
	e = s.layout + 8 + 24 * (size_t)index;
	memset(region, 0, sizeof(*region));
	region->gpa = get64(e);
	region->size = get64(e + 8);
	region->flags = get32(e + 16);
	return 0;
}

/* Save one class into @w; -ENXIO (the VM lacks the device) saves nothing and is 0. */
/* Save one class into the writer @ctx; -ENXIO (the VM lacks the device) saves nothing and is 0. */
static int save_class(struct vcpu_vm *vm, struct vcpu *cpu, uint32_t cls, void *ctx)
{
	struct wbuf *w = ctx;
	size_t need = 0, got;
	uint8_t *p;
	int r;

	r = cpu ? vcpu_get_state(cpu, cls, NULL, &need) : vm_state_locked(vm, cls, NULL, NULL, &need);
	if (r == -ENXIO)
		return 0;
	if (r == 0) {
		p = wb_section(w, SEC_STATE, cls, cpu ? cpu->id : SNAP_VM, need);
		r = p ? 0 : w->err;
	}
	if (r == 0) {
		got = need;
		r = cpu ? vcpu_get_state(cpu, cls, p, &got) : vm_state_locked(vm, cls, p, NULL, &got);
	}
	if (r == 0) {
		/* Counted classes may come out shorter than the bound asked first. */
		put64(p - 8, got);
		w->len -= pad8(need) - pad8(got);
		return 0;
	}
	if (cpu)
		return relay(vm, r, "saving vCPU %u's %s state: %s", cpu->id, class_find(cls)->name,
			     r == w->err ? strerror(-r) : cpu->err);
	return r == w->err ? vm_fail(vm, r, "saving the VM's %s state: %s", class_find(cls)->name,
				     strerror(-r))
			   : r;
}

static int snapshot_locked(struct vcpu_vm *vm, struct wbuf *w)
{
	uint8_t *p;

	p = wb_reserve(w, SNAP_HDR);
	if (!p)
		return w->err;
	p = wb_section(w, SEC_LAYOUT, 0, SNAP_VM, 8 + 24 * (size_t)vm->nr_regions);
	if (!p)
		return w->err;
	put32(p, vm->nr_regions);
	for (unsigned i = 0; i < vm->nr_regions; i++) {
		put64(p + 8 + 24 * i, vm->regions[i].gpa);
		put64(p + 16 + 24 * i, vm->regions[i].size);
		put32(p + 24 + 24 * i, vm->regions[i].flags);
	}
	p = wb_section(w, SEC_VCPUS, 0, SNAP_VM, 8 + 4 * (size_t)vm->nr_vcpus);
	if (!p)
		return w->err;
	put32(p, vm->nr_vcpus);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		put32(p + 8 + 4 * i, vm->cpus[i]->id);
	return walk_classes(vm, save_class, w);
}

VCPU_API int vcpu_vm_snapshot(struct vcpu_vm *vm, void **blob, size_t *len)
{
	struct wbuf w = { 0 };
	uint8_t *b;
	int r;

	if (!vm)
		return -EINVAL;
	if (!blob || !len)
		return vm_fail(vm, -EINVAL, "vcpu_vm_snapshot: NULL blob or length pointer");
	if (!vm->hv->ops->get_state || !vm->hv->ops->set_state)
		return vm_fail(vm, -EOPNOTSUPP, "the %s backend cannot save VM state (VCPU_CAP_STATE)",
			       vm->hv->ops->name);
	/* vm->lock keeps the regions and vCPUs as they are while they are written down. */
	pthread_mutex_lock(&vm->lock);
	if (any_vcpu_runs(vm))
		r = vm_fail(vm, -EBUSY, "vcpu_vm_snapshot: a vCPU of the VM is running; stop them "
			    "first (vcpu_vm_stop_all())");
	else
		r = snapshot_locked(vm, &w);
	pthread_mutex_unlock(&vm->lock);
	if (r) {
		free(w.p);
		return r;
	}
	b = w.p;
	memcpy(b, SNAP_MAGIC, 8);
	put32(b + 8, VCPU_SNAPSHOT_VERSION);
	put32(b + 12, SNAP_HDR);
	put32(b + 16, (uint32_t)vm->hv->arch);
	put32(b + 20, (uint32_t)vm->hv->backend);
	put32(b + 24, w.nsec);
	put64(b + 32, w.len);
	put32(b + 28, blob_crc(b, w.len));
	*blob = b;
	*len = w.len;
	return 0;
}

/* The vCPU of @vm with id @id, or NULL. */
static struct vcpu *vm_vcpu(struct vcpu_vm *vm, uint32_t id)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		if (vm->cpus[i]->id == id)
			return vm->cpus[i];
	return NULL;
}

/*
 * Does @vm match the blob: the same regions, vCPU ids, and devices (a class
 * saved in the blob exists on the VM, and one the VM has is in the blob)?
 */
static int match_class(struct vcpu_vm *vm, struct vcpu *cpu, uint32_t cls, void *ctx);

static int restore_match(struct vcpu_vm *vm, const struct snap *s)
{
	if (vm->nr_regions != s->nregions)
		return vm_fail(vm, -EINVAL, "the snapshot has %u memory regions, the VM %u",
			       s->nregions, vm->nr_regions);
	for (uint32_t i = 0; i < s->nregions; i++) {
		const uint8_t *e = s->layout + 8 + 24 * (size_t)i;
		bool found = false;

		for (unsigned j = 0; j < vm->nr_regions; j++)
			found |= vm->regions[j].gpa == get64(e) && vm->regions[j].size == get64(e + 8) &&
				 vm->regions[j].flags == get32(e + 16);
		if (!found)
			return vm_fail(vm, -EINVAL, "the VM has no region [0x%llx, +0x%llx) with flags "
				       "0x%x as the snapshot has", (unsigned long long)get64(e),
				       (unsigned long long)get64(e + 8), get32(e + 16));
	}
	if (vm->nr_vcpus != s->nvcpus)
		return vm_fail(vm, -EINVAL, "the snapshot has %u vCPUs, the VM %u", s->nvcpus,
			       vm->nr_vcpus);
	for (uint32_t i = 0; i < s->nvcpus; i++)
		if (!vm_vcpu(vm, get32(s->vcpus + 8 + 4 * (size_t)i)))
			return vm_fail(vm, -EINVAL, "the VM has no vCPU %u as the snapshot has",
				       get32(s->vcpus + 8 + 4 * (size_t)i));
	return walk_classes(vm, match_class, (void *)s);
}

/*
 * The VM has the class's device (its size query does not answer -ENXIO)
 * if and only if the blob has its state.
 */
static int match_class(struct vcpu_vm *vm, struct vcpu *cpu, uint32_t cls, void *ctx)
{
	const struct snap *s = ctx;
	struct section sec;
	size_t need;
	int r = cpu ? vcpu_get_state(cpu, cls, NULL, &need) : vm_state_locked(vm, cls, NULL, NULL, &need);
	bool has = snap_find(s, cpu ? cpu->id : SNAP_VM, cls, &sec) != NULL;

	if (r && r != -ENXIO)
		return cpu ? relay(vm, r, "vCPU %u: %s", cpu->id, cpu->err) : r;
	if (has == (r == 0))
		return 0;
	if (cpu)
		return vm_fail(vm, -EINVAL, "vCPU %u: the snapshot %s %s state, the VM %s it", cpu->id,
			       has ? "has" : "lacks", class_find(cls)->name, has ? "lacks" : "has");
	return vm_fail(vm, -EINVAL, "the snapshot %s %s state, the VM %s the device",
		       has ? "has" : "lacks", class_find(cls)->name, has ? "lacks" : "has");
}

/* Put the blob's state of one class back, where the blob has it. */
static int restore_class(struct vcpu_vm *vm, struct vcpu *cpu, uint32_t cls, void *ctx)
{
	const struct snap *s = ctx;
	struct section sec;
	size_t len;
	int r;

	if (!snap_find(s, cpu ? cpu->id : SNAP_VM, cls, &sec))
		return 0;
	if (!cpu) {
		len = sec.len;
		return vm_state_locked(vm, cls, NULL, sec.payload, &len);
	}
	r = vcpu_set_state(cpu, cls, sec.payload, sec.len);
	return r ? relay(vm, r, "restoring vCPU %u's %s state: %s", cpu->id, class_find(cls)->name,
			 cpu->err)
		 : 0;
}

static int restore_locked(struct vcpu_vm *vm, const struct snap *s)
{
	int r = restore_match(vm, s);

	return r ? r : walk_classes(vm, restore_class, (void *)s);
}

VCPU_API int vcpu_vm_restore(struct vcpu_vm *vm, const void *blob, size_t len)
{
	struct snap s;
	char why[160];
	int r;

	if (!vm)
		return -EINVAL;
	if (!blob)
		return vm_fail(vm, -EINVAL, "vcpu_vm_restore: NULL blob");
	r = snap_parse(blob, len, &s, why, sizeof(why));
	if (r)
		return vm_fail(vm, r, "vcpu_vm_restore: %s", why);
	if (s.arch != (uint32_t)vm->hv->arch || s.backend != (uint32_t)vm->hv->backend)
		return vm_fail(vm, -EINVAL, "the snapshot is of a%s %s VM on %s; this VM is %s on %s",
			       s.arch == VCPU_ARCH_X86_64 ? "n" : "",
			       s.arch == VCPU_ARCH_X86_64 ? "x86_64" : "arm64",
			       vcpu_backend_name((enum vcpu_backend)s.backend),
			       vm->hv->arch == VCPU_ARCH_X86_64 ? "x86_64" : "arm64",
			       vm->hv->ops->name);
	if (!vm->hv->ops->get_state || !vm->hv->ops->set_state)
		return vm_fail(vm, -EOPNOTSUPP, "the %s backend cannot restore VM state",
			       vm->hv->ops->name);
	pthread_mutex_lock(&vm->lock);
	if (any_vcpu_runs(vm))
		r = vm_fail(vm, -EBUSY, "vcpu_vm_restore: a vCPU of the VM is running");
	else
		r = restore_locked(vm, &s);
	pthread_mutex_unlock(&vm->lock);
	return r;
}
