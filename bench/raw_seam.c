// SPDX-License-Identifier: MIT
/*
 * The raw loop over the bench seam: direct calls of its functions (no
 * function pointer), so against libvcpu over the same seam the difference
 * is libvcpu's own exit path.
 */
#define _GNU_SOURCE
#include "raw.h"

#define RAW_OPS raw_seam_ops
#define RAW_OPEN(r) bseam_open((r)->ctx, "/dev/kvm", 0)
#define RAW_CLOSE(r, fd) bseam_close((r)->ctx, (fd))
#define RAW_IOCTL(r, fd, req, arg) bseam_ioctl((r)->ctx, (fd), (req), (arg))
#define RAW_MMAP(r, fd, len, out) bseam_mmap((r)->ctx, (fd), (len), 0, 0, (out))
#define RAW_MUNMAP(r, p, len) bseam_munmap((r)->ctx, (p), (len))

#include "raw_impl.h"
