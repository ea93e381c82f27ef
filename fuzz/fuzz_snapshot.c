// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the snapshot parser (vcpu_snapshot_info(),
 * vcpu_snapshot_region(), vcpu_vm_restore()) on arbitrary bytes.
 *
 * A snapshot comes from a file a VMM reads back, maybe from another host:
 * libvcpu must refuse whatever is not a whole, valid snapshot with an errno
 * and never crash, leak or read out of bounds (the fuzz build runs with ASan
 * and UBSan).  Input: byte 0 bit 0 set: the CRC-32 at bytes 28..31 of the
 * rest is recomputed first, so that mutations reach the structural checks
 * and the restore behind the checksum; the rest is the blob.  The restore
 * goes into a mock KVM x86_64 VM with one 64 KiB region at 0 and vCPU 0,
 * the VM the seed in corpus/snapshot was taken of, so that a blob close to
 * a valid one is applied class by class.
 */
#define _GNU_SOURCE
#include <vcpu/mock.h>
#include <vcpu/state.h>
#include <vcpu/vcpu.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../tests/snapshot_crc.h"

#define RAM_SIZE 0x10000u

struct target {
	struct vcpu_mock *mock;
	struct vcpu_hv *hv;
	struct vcpu_vm *vm;
	struct vcpu *cpu;
	void *ram;
};

/* The VM every input is restored into; built once, kept for the process. */
static struct target *target(void)
{
	static struct target t;
	static int ready;
	const struct vcpu_mock_config cfg = { .arch = VCPU_ARCH_X86_64 };

	if (ready)
		return ready > 0 ? &t : NULL;
	ready = -1;
	t.ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t.ram == MAP_FAILED || vcpu_mock_open(VCPU_BACKEND_KVM, &cfg, &t.mock, &t.hv) ||
	    vcpu_vm_create(t.hv, NULL, &t.vm) || vcpu_vm_map(t.vm, 0, t.ram, RAM_SIZE, 0) ||
	    vcpu_create(t.vm, 0, 0, &t.cpu))
		return NULL;
	ready = 1;
	return &t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vcpu_snapshot_info info;
	struct vcpu_snapshot_region reg;
	struct target *t = target();
	uint8_t *blob;
	size_t len;

	if (size < 1 || !t)
		return 0;
	len = size - 1;
	/* An exact-size copy, so that ASan sees any read past the blob's end. */
	blob = malloc(len ? len : 1);
	if (!blob)
		return 0;
	memcpy(blob, data + 1, len);
	if ((data[0] & 1) && len >= 32)
		snapshot_fix_crc(blob, len);
	if (vcpu_snapshot_info(blob, len, &info) == 0) {
		for (uint32_t i = 0; i < info.nr_regions && i < 4; i++)
			if (vcpu_snapshot_region(blob, len, i, &reg) != 0)
				abort(); /* info accepted the blob: every region is readable */
	}
	(void)vcpu_vm_restore(t->vm, blob, len);
	free(blob);
	return 0;
}
