// SPDX-License-Identifier: MIT
/* minivmm on x86_64: placeholder until the bzImage loader lands. */
#define _GNU_SOURCE
#include "minivmm.h"

#include <errno.h>

static int x86_setup(struct mv_vmm *v)
{
	return mv_fail(v, -EOPNOTSUPP, "x86_64 guests are not supported yet");
}

const struct mv_arch mv_arch_x86_64 = {
	.name = "x86_64",
	.arch = VCPU_ARCH_X86_64,
	.ram_gpa = 0,
	.setup = x86_setup,
	.handlers = { .system_event = mv_on_system_event, .other = mv_on_other },
};
