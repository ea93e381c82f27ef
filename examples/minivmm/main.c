// SPDX-License-Identifier: MIT
/*
 * minivmm: boot a Linux kernel on libvcpu.
 *
 *   minivmm --kernel Image [--initrd initrd.gz] [--cmdline "..."] [--mem MiB]
 *           [--cpus N] [--backend auto|kvm|gunyah|geniezone|acrn]
 *           [--timestamps] [--stats] [--save FILE [--save-at SECONDS]]
 *   minivmm --restore FILE [--backend ...] [--timestamps] [--stats] [--save ...]
 *
 * --save FILE: on SIGUSR1, or SECONDS after the start with --save-at, stop
 * the guest, save it whole to FILE (snapshot.c) and exit 0 ("minivmm: saved
 * after ..."); --restore FILE: run that guest on from where it was saved,
 * in this new process (its vCPUs and memory come from the file).
 *
 * Exit status: 0 the guest powered off, 3 it asked for a reset, 4 it
 * panicked or crashed or a vCPU could not go on, 1 minivmm failed (kernel,
 * memory, hypervisor), 2 bad command line.  The last line on stderr says
 * which: "minivmm: powered off after ...", "minivmm: reset after ...",
 * "minivmm: the guest panicked after ...", ...
 */
#define _GNU_SOURCE
#include "minivmm.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: minivmm --kernel IMAGE [--initrd FILE] [--cmdline TEXT] [--mem MIB]\n"
		   "               [--cpus N] [--backend auto|kvm|gunyah|geniezone|acrn]\n"
		   "               [--timestamps] [--stats] [--save FILE [--save-at SECONDS]]\n"
		   "       minivmm --restore FILE [--backend ...] [--timestamps] [--stats] [--save ...]\n");
}

static int parse_backend(const char *s, enum vcpu_backend *out)
{
	static const struct {
		const char *name;
		enum vcpu_backend b;
	} names[] = {
		{ "auto", VCPU_BACKEND_AUTO },       { "kvm", VCPU_BACKEND_KVM },
		{ "gunyah", VCPU_BACKEND_GUNYAH },   { "geniezone", VCPU_BACKEND_GENIEZONE },
		{ "acrn", VCPU_BACKEND_ACRN },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0) {
			*out = names[i].b;
			return 0;
		}
	return -1;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-')
		return -1;
	v = strtoull(s, &end, 0);
	if (*end || v > max)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ "mem", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'n' },
		{ "backend", required_argument, NULL, 'b' },
		{ "timestamps", no_argument, NULL, 't' },
		{ "stats", no_argument, NULL, 's' },
		{ "save", required_argument, NULL, 'S' },
		{ "save-at", required_argument, NULL, 'A' },
		{ "restore", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mv_config cfg = { .mem_mib = 512, .cpus = 1, .backend = VCPU_BACKEND_AUTO };
	static struct mv_vmm vmm;
	unsigned long long n;
	int c, status;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': cfg.kernel = optarg; break;
		case 'i': cfg.initrd = optarg; break;
		case 'c': cfg.cmdline = optarg; break;
		case 'm':
			if (parse_uint(optarg, 1ull << 20, &n) < 0) {
				fprintf(stderr, "minivmm: --mem %s: a size in MiB\n", optarg);
				return MV_EXIT_USAGE;
			}
			cfg.mem_mib = n;
			break;
		case 'n':
			if (parse_uint(optarg, MV_MAX_CPUS, &n) < 0 || n == 0) {
				fprintf(stderr, "minivmm: --cpus %s: 1 to %d\n", optarg, MV_MAX_CPUS);
				return MV_EXIT_USAGE;
			}
			cfg.cpus = (unsigned)n;
			break;
		case 'b':
			if (parse_backend(optarg, &cfg.backend) < 0) {
				fprintf(stderr, "minivmm: --backend %s: auto, kvm, gunyah, geniezone or acrn\n",
					optarg);
				return MV_EXIT_USAGE;
			}
			break;
		case 't': cfg.timestamps = true; break;
		case 's': cfg.stats = true; break;
		case 'S': cfg.save = optarg; break;
		case 'R': cfg.restore = optarg; break;
		case 'A': {
			char *end;

			cfg.save_at = strtod(optarg, &end);
			if (*end || !(cfg.save_at > 0 && cfg.save_at < 1e6)) {
				fprintf(stderr, "minivmm: --save-at %s: seconds after the start, above 0\n",
					optarg);
				return MV_EXIT_USAGE;
			}
			break;
		}
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return MV_EXIT_USAGE;
		}
	}
	if (optind != argc || (!cfg.kernel && !cfg.restore)) {
		fprintf(stderr, "minivmm: %s\n", optind != argc ? "unexpected arguments"
							 : "--kernel or --restore is required");
		usage(stderr);
		return MV_EXIT_USAGE;
	}
	if (cfg.restore && (cfg.kernel || cfg.initrd || cfg.cmdline)) {
		fprintf(stderr, "minivmm: --restore runs a saved guest: no --kernel, --initrd or --cmdline\n");
		return MV_EXIT_USAGE;
	}
	if (cfg.save_at > 0 && !cfg.save) {
		fprintf(stderr, "minivmm: --save-at needs --save FILE\n");
		return MV_EXIT_USAGE;
	}

	if (mv_setup(&vmm, &cfg) < 0) {
		fprintf(stderr, "minivmm: %s\n", vmm.err);
		mv_teardown(&vmm);
		return MV_EXIT_ERROR;
	}
	fprintf(stderr, "minivmm: %s guest on %s, %u vCPU(s), %llu MiB, setup %.3f s\n",
		vmm.arch->name, vcpu_backend_name(vcpu_hv_backend(vmm.hv)), vmm.cfg.cpus,
		(unsigned long long)(vmm.ram_size >> 20), mv_now() - vmm.t0);
	status = mv_run(&vmm);
	fprintf(stderr, "minivmm: %s after %.3f s\n", vmm.end ? vmm.end : "stopped",
		mv_now() - vmm.t0);
	mv_teardown(&vmm);
	return status;
}
