// SPDX-License-Identifier: MIT
/* The build host's <linux/kvm.h> side of tests/check_uapi.c. */
#include <linux/kvm.h>
#include <stddef.h>

#include "uapi_list.h"

#define X(n) (unsigned long)(n),
#define S(t) sizeof(struct t),
#define O(t, f) offsetof(struct t, f),
const unsigned long uapi_sys_values[] = { UAPI_VALUES };
const size_t uapi_sys_sizes[] = { UAPI_SIZES };
const size_t uapi_sys_offsets[] = { UAPI_OFFSETS };
