/* SPDX-License-Identifier: MIT */
/*
 * Leak accounting shared by the cmocka suites: how many file descriptors and
 * memory mappings the process holds.  A fixture records both before a test
 * and asserts they are back to the same values after its teardown.
 *
 * Header-only (static functions) so each suite's single source file builds
 * without extra objects.  Both counters use raw open/read/getdents through
 * opendir() only, no stdio, so counting itself leaves nothing behind.
 */
#ifndef VCPU_TESTS_HELPERS_H
#define VCPU_TESTS_HELPERS_H

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Entries of /proc/self/fd, not counting the directory's own descriptor. */
static inline long count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n - 1;
}

/*
 * Mappings of hypervisor objects: the lines of /proc/self/maps backed by a
 * memfd (the mock's run pages) or an anonymous inode (a real driver's, e.g.
 * "anon_inode:kvm-vcpu:0").  Only those: anonymous memory comes and goes
 * with the allocator (ASan's above all), which is not what a leak check of
 * libvcpu is about.  Guest RAM from vcpu_vm_alloc() counts too: shared
 * anonymous memory ("/dev/zero (deleted)") one per mapping, and private
 * anonymous memory, which the kernel merges with its neighbours, by its 4
 * KiB pages: libvcpu advises it MADV_HUGEPAGE ("hg" in VmFlags of
 * /proc/self/smaps), which nothing else in the process does.
 */
static inline long count_mappings(void)
{
	static const char *const keys[] = { "/memfd:", "anon_inode:", "/dev/zero (deleted)" };
	char buf[4096], line[512];
	size_t used = 0;
	unsigned long start = 0, end = 0;
	long n = 0;
	ssize_t r;
	int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while ((r = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < r; i++) {
			const char *dash;

			if (buf[i] != '\n') {
				if (used < sizeof(line) - 1)
					line[used++] = buf[i];
				continue;
			}
			line[used] = '\0';
			used = 0;
			if (strncmp(line, "VmFlags:", 8) == 0) {
				if (strstr(line, " hg"))
					n += (long)((end - start) / 4096);
				continue;
			}
			/* A mapping's first line: "start-end perms offset dev inode [path]". */
			dash = strchr(line, '-');
			if (!dash || strchr(line, ':') < dash)
				continue;
			start = strtoul(line, NULL, 16);
			end = strtoul(dash + 1, NULL, 16);
			for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
				if (strstr(line, keys[k])) {
					n++;
					break;
				}
		}
	}
	close(fd);
	return r < 0 ? -1 : n;
}

/*
 * Whether count_mappings() sees private guest RAM: the kernel reports
 * MADV_HUGEPAGE in smaps, but user-mode emulation (qemu-aarch64) neither
 * passes the advice on nor shows it.
 */
static inline int hugepage_advice_visible(void)
{
	const size_t len = 4096;
	long before = count_mappings(), after;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return 0;
	madvise(p, len, MADV_HUGEPAGE);
	after = count_mappings();
	munmap(p, len);
	return after > before;
}

#endif
