/* SPDX-License-Identifier: MIT */
/*
 * For tests that edit a snapshot (tests/test_state.c) or mutate one
 * (fuzz/fuzz_snapshot.c): recompute its CRC-32 (IEEE, reflected, as
 * zlib's crc32()) over the whole blob with the CRC field, bytes 28-31,
 * zero, so that the parser's structural checks see the edit rather than
 * the checksum (vcpu_vm_snapshot(3)).  @len >= 32.
 */
#ifndef VCPU_TESTS_SNAPSHOT_CRC_H
#define VCPU_TESTS_SNAPSHOT_CRC_H

#include <stddef.h>
#include <stdint.h>

static inline void snapshot_fix_crc(uint8_t *b, size_t len)
{
	uint32_t crc = ~0u;

	for (int i = 0; i < 4; i++)
		b[28 + i] = 0;
	for (size_t i = 0; i < len; i++) {
		crc ^= b[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
	}
	crc = ~crc;
	for (int i = 0; i < 4; i++)
		b[28 + i] = (uint8_t)(crc >> (8 * i));
}

#endif
