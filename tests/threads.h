/* SPDX-License-Identifier: MIT */
/*
 * Threads for the cmocka suites, with stacks the test owns: glibc caches the
 * stacks of joined threads, and a cached stack would show as a leaked
 * mapping in the fixtures' count_mappings().  Include after <cmocka.h>.
 */
#ifndef VCPU_TESTS_THREADS_H
#define VCPU_TESTS_THREADS_H

#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

struct thr {
	pthread_t t;
	void *stack;
	size_t size;
};

static inline void thr_start(struct thr *t, void *(*fn)(void *), void *arg)
{
	pthread_attr_t a;

	t->size = 512 * 1024;
	t->stack = mmap(NULL, t->size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	assert_true(t->stack != MAP_FAILED);
	assert_int_equal(pthread_attr_init(&a), 0);
	assert_int_equal(pthread_attr_setstack(&a, t->stack, t->size), 0);
	assert_int_equal(pthread_create(&t->t, &a, fn, arg), 0);
	pthread_attr_destroy(&a);
}

static inline void thr_join(struct thr *t)
{
	pthread_join(t->t, NULL);
	munmap(t->stack, t->size);
}

static inline void sleep_us(long us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

#endif
