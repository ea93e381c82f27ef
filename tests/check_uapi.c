// SPDX-License-Identifier: MIT
/*
 * lib/kvm/kvm_abi.h is written from doc/abi/kvm.md, not from the kernel's
 * header (both architectures' layouts must build on every host).  This test
 * compares each state-related number, size and offset of it with the build
 * host's own <linux/kvm.h> (compiled in check_uapi_sys.c, a separate unit,
 * as the two headers define the same names).  x86_64 hosts only: the x86
 * structures are the ones whose layouts the uapi defines per architecture.
 */
#include <stddef.h>
#include <stdio.h>

#include "kvm/kvm_abi.h"
#include "uapi_list.h"

extern const unsigned long uapi_sys_values[];
extern const size_t uapi_sys_sizes[];
extern const size_t uapi_sys_offsets[];

#define X(n) { #n, (unsigned long)(n) },
#define S(t) { "sizeof(struct " #t ")", sizeof(struct t) },
#define O(t, f) { "offsetof(" #t ", " #f ")", offsetof(struct t, f) },
static const struct { const char *name; unsigned long v; } ours_values[] = { UAPI_VALUES };
static const struct { const char *name; size_t v; } ours_sizes[] = { UAPI_SIZES };
static const struct { const char *name; size_t v; } ours_offsets[] = { UAPI_OFFSETS };

int main(void)
{
	int bad = 0;

	for (size_t i = 0; i < sizeof(ours_values) / sizeof(ours_values[0]); i++)
		if (ours_values[i].v != uapi_sys_values[i]) {
			printf("FAIL: %s is 0x%lx in kvm_abi.h, 0x%lx in <linux/kvm.h>\n",
			       ours_values[i].name, ours_values[i].v, uapi_sys_values[i]);
			bad = 1;
		}
	for (size_t i = 0; i < sizeof(ours_sizes) / sizeof(ours_sizes[0]); i++)
		if (ours_sizes[i].v != uapi_sys_sizes[i]) {
			printf("FAIL: %s is %zu in kvm_abi.h, %zu in <linux/kvm.h>\n",
			       ours_sizes[i].name, ours_sizes[i].v, uapi_sys_sizes[i]);
			bad = 1;
		}
	for (size_t i = 0; i < sizeof(ours_offsets) / sizeof(ours_offsets[0]); i++)
		if (ours_offsets[i].v != uapi_sys_offsets[i]) {
			printf("FAIL: %s is %zu in kvm_abi.h, %zu in <linux/kvm.h>\n",
			       ours_offsets[i].name, ours_offsets[i].v, uapi_sys_offsets[i]);
			bad = 1;
		}
	if (!bad)
		printf("%zu numbers, %zu sizes and %zu offsets agree with <linux/kvm.h>\n",
		       sizeof(ours_values) / sizeof(ours_values[0]),
		       sizeof(ours_sizes) / sizeof(ours_sizes[0]),
		       sizeof(ours_offsets) / sizeof(ours_offsets[0]));
	return bad;
}
