// SPDX-License-Identifier: MIT
/*
 * libFuzzer targets: arbitrary run-structure contents between run calls,
 * for each backend whose run structure a guest influences (built once per
 * backend with -DFUZZ_BACKEND=VCPU_BACKEND_*).
 *
 * Everything in a run structure is written by the kernel or hypervisor on
 * a guest's behalf.  The mock drivers' RAW step (include/vcpu/mock.h) lets a
 * test put any exit code, any bytes in the exit area and any run-call errno
 * there; this target turns the fuzzer's input into a script of such steps
 * and drives vcpu_run() through it with handlers that answer every access,
 * so decode, dispatch and every write-back see hostile input.  libvcpu must
 * return an errno for what it cannot accept and never crash, leak or read
 * out of bounds (the fuzz build runs with ASan and UBSan).
 *
 * Input: byte 0 = variant bits (KVM bit 0: arm64 rather than x86_64;
 * Gunyah bit 0: the v8 ABI; bit 1: memory faults are retried); then records
 * of 1 (exit-code selector) + 1 (errno selector) + up to 256 exit-area
 * bytes, until the input ends.  ACRN: the 256 bytes are an I/O request
 * slot as the hypervisor fills it.
 */
#include <vcpu/mock.h>
#include <vcpu/vcpu.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STEPS 33 /* 32 from the input, then the stop */
#define REC 258

#ifndef FUZZ_BACKEND
#define FUZZ_BACKEND VCPU_BACKEND_KVM
#endif

/* Codes the backend knows come up most of the time; else any 32-bit value. */
static uint32_t reason_of(uint8_t sel, const uint8_t *raw)
{
	uint32_t any = (uint32_t)raw[0] | (uint32_t)raw[1] << 8 | (uint32_t)raw[2] << 16 |
		       (uint32_t)sel << 24;

	switch (FUZZ_BACKEND) {
	case VCPU_BACKEND_GUNYAH:
		return sel < 64 ? sel & 7u : any;             /* UNKNOWN..PAGE_FAULT = 0..3 */
	case VCPU_BACKEND_GENIEZONE:
		return sel < 64 ? 0x92920000u + (sel & 15u) : any; /* GZVM_EXIT_* */
	default:
		return sel < 48 ? sel : any;                  /* KVM_EXIT_* */
	}
}

static int32_t errno_of(uint8_t sel)
{
	static const int32_t errs[] = { EINTR, EFAULT, EHWPOISON, EIO, EAGAIN };

	/* Mostly a successful run call: that is where the exit bytes matter. */
	return sel < 200 ? 0 : errs[sel % (sizeof(errs) / sizeof(errs[0]))];
}

#define STOP_ADDR 0xfff00000ull /* the script's last step: the end of an input */

static int on_io(void *ctx, struct vcpu *cpu, struct vcpu_io *io)
{
	(void)ctx;
	(void)cpu;
	if (io->is_write && io->addr == STOP_ADDR)
		return VCPU_STOP;
	if (!io->is_write)
		memset(io->data, 0xa5, sizeof(io->data));
	/* The length was validated: anything the handler relies on must hold. */
	if (io->len == 0 || io->len > 8)
		abort();
	return VCPU_CONTINUE;
}

static int on_hypercall(void *ctx, struct vcpu *cpu, struct vcpu_hypercall *hc)
{
	(void)ctx;
	(void)cpu;
	if (hc->nargs > 8)
		abort();
	hc->ret[0] = 0;
	return VCPU_CONTINUE;
}

static int on_event(void *ctx, struct vcpu *cpu, const struct vcpu_system_event *ev)
{
	(void)ctx;
	(void)cpu;
	if (ev->ndata > 16)
		abort();
	return VCPU_CONTINUE;
}

static int on_fault(void *ctx, struct vcpu *cpu, struct vcpu_memory_fault *f)
{
	(void)cpu;
	f->response = *(const int *)ctx ? VCPU_IO_RETRY : VCPU_IO_FAULT;
	return VCPU_CONTINUE;
}

static int on_other(void *ctx, struct vcpu *cpu, const struct vcpu_exit *e)
{
	(void)ctx;
	(void)cpu;
	if (e->kind == VCPU_EXIT_INTERNAL_ERROR && e->u.internal.ndata > 16)
		abort();
	return VCPU_CONTINUE;
}

static const struct vcpu_handlers handlers = {
	.mmio = on_io, .pio = on_io, .hypercall = on_hypercall, .system_event = on_event,
	.other = on_other, .memory_fault = on_fault, .pci_config = on_io,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vcpu_mock_config cfg = { 0 };
	struct vcpu_mock_step *steps;
	struct vcpu_mock *m = NULL;
	struct vcpu_hv *hv = NULL;
	struct vcpu_vm *vm = NULL;
	struct vcpu *cpu = NULL;
	size_t n = 0;
	int retry;

	if (size < 1)
		return 0;
	if (FUZZ_BACKEND == VCPU_BACKEND_KVM)
		cfg.arch = (data[0] & 1) ? VCPU_ARCH_ARM64 : VCPU_ARCH_X86_64;
	else if (FUZZ_BACKEND == VCPU_BACKEND_GUNYAH && (data[0] & 1))
		cfg.flags = VCPU_MOCK_GUNYAH_V8;
	retry = (data[0] & 2) != 0;
	data++;
	size--;
	steps = calloc(MAX_STEPS, sizeof(*steps));
	if (!steps)
		return 0;
	while (size >= 2 && n < MAX_STEPS - 1) {
		size_t take = size - 2 < 256 ? size - 2 : 256;

		memcpy(steps[n].raw, data + 2, take);
		if (FUZZ_BACKEND == VCPU_BACKEND_ACRN) {
			/*
			 * The slot as the hypervisor leaves it for the VMM:
			 * PROCESSING (offset 136) for the VMM (kernel_handled at
			 * 132 clear); every other field is the fuzzer's.  (A slot
			 * in another state never wakes the VMM, on the real HSM
			 * too: nothing to fuzz there but a hang.)
			 */
			steps[n].op = VCPU_MOCK_ACRN_RAW_SLOT;
			memset(steps[n].raw + 132, 0, 8);
			steps[n].raw[136] = 2;
			n++;
			data += 2 + take;
			size -= 2 + take;
			continue;
		}
		steps[n].op = VCPU_MOCK_RAW;
		steps[n].value = reason_of(data[0], steps[n].raw);
		steps[n].err = errno_of(data[1]);
		n++;
		data += 2 + take;
		size -= 2 + take;
	}
	/* The end of the input: a write the handler answers by stopping. */
	steps[n].op = VCPU_MOCK_MMIO_WRITE;
	steps[n].addr = STOP_ADDR;
	steps[n].len = 4;
	n++;
	if (vcpu_mock_open(FUZZ_BACKEND, &cfg, &m, &hv) != 0)
		abort();
	if (vcpu_vm_create(hv, NULL, &vm) != 0)
		abort();
	if (FUZZ_BACKEND == VCPU_BACKEND_GUNYAH) {
		/* Gunyah starts a VM with a device tree in its memory, vCPUs added first. */
		void *ram;

		if (vcpu_vm_alloc(vm, 0x80000000ull, 1u << 20, 0, &ram) != 0 ||
		    vcpu_vm_set_dtb(vm, 0x80000000ull, 4096) != 0)
			abort();
	}
	/* Scripted before the start: ACRN's vCPUs run from vcpu_vm_start() on. */
	if (vcpu_mock_script(m, 0, steps, n) != 0)
		abort();
	if (vcpu_create(vm, 0, 0, &cpu) != 0)
		abort();
	/* ACRN's hypervisor runs a vCPU once the VMM gave it its registers. */
	if (FUZZ_BACKEND == VCPU_BACKEND_ACRN && vcpu_set_reg(cpu, VCPU_REG_X86_RIP, 0xfff0) != 0)
		abort();
	if (vcpu_vm_start(vm) != 0)
		abort();
	/*
	 * Until the stop, at most once per step: after an error the vCPU must
	 * still run (or fail cleanly).  The KVM and GenieZone mocks fail a run
	 * past the script's end; Gunyah's STATUS and ACRN's stop end it too.
	 */
	for (size_t i = 0; i <= n; i++) {
		int r = vcpu_run(cpu, &handlers, &retry);

		if (r < 0 && vcpu_last_error(cpu)[0] == '\0' && r != -EINTR)
			abort(); /* every failure explains itself */
		if (r == VCPU_STOP)
			break;
	}
	if (vcpu_destroy(&cpu) || vcpu_vm_destroy(&vm) || vcpu_hv_close(hv) ||
	    vcpu_mock_destroy(&m))
		abort();
	free(steps);
	return 0;
}
