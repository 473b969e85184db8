/*
 * The thread pool of pool.h over POSIX threads.
 *
 * One job at a time: the caller holds `lock` while its job runs (a second caller that
 * finds it held runs alone).  The job's items are taken with one atomic counter; the
 * helpers join through `state`, which holds the job's generation, a CLOSED bit and the
 * number of helpers that joined, so that a helper can join only the open job it saw
 * and the caller, when it closes the job, knows how many helpers to wait for.
 *
 *   caller: job fields; state = gen' (open); gen = gen'; wake the sleepers
 *           body(); s = state |= CLOSED; wait until done == joined(s)
 *   helper: seen = gen; if state is open and items are left: state += 1, body(), done += 1
 *           spin until gen != seen (fs_set_spin_ns), then sleep on gen
 *
 * Every shared word is a C11 atomic (sequentially consistent where a sleeper's check
 * and a waker's store must not pass each other: the futex pattern), so that the pool is
 * clean under ThreadSanitizer.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sched_getaffinity */
#endif
#include "fastsoftmax.h"
#include "pool.h"

#ifndef FS_NO_THREADS
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#if defined(__GLIBC__) && (defined(__x86_64__) || defined(__aarch64__))
/* glibc 2.32 and 2.34 moved these four from libpthread into libc under new symbol versions and
 * kept the first versions, the same functions.  Linking to the first keeps the extension
 * loadable on the glibc of the manylinux_2_17 tag (auditwheel show; tools/build-wheel) whatever
 * glibc builds it.  These are the only symbols newer than GLIBC_2.17 that the extension uses. */
#ifdef __x86_64__
#define FS_GLIBC_FIRST "GLIBC_2.2.5"
#else
#define FS_GLIBC_FIRST "GLIBC_2.17"
#endif
__asm__(".symver pthread_create, pthread_create@" FS_GLIBC_FIRST);
__asm__(".symver pthread_once, pthread_once@" FS_GLIBC_FIRST);
__asm__(".symver pthread_mutex_trylock, pthread_mutex_trylock@" FS_GLIBC_FIRST);
__asm__(".symver pthread_sigmask, pthread_sigmask@" FS_GLIBC_FIRST);
#endif

#define MAX_HELPERS 255
#define CLOSED ((uint64_t)1 << 31)
#define JOINED_MASK (CLOSED - 1)

struct fs_par {
    fs_par_body body;
    void *ctx;
    _Atomic int64_t nitems;
    _Atomic int64_t next;
    _Atomic int limit;      /* helpers that may join */
    _Atomic int caller_cpu; /* the CPU the caller runs on (-1: unknown) */
};

static struct {
    pthread_mutex_t lock; /* held by the caller whose job runs */
    fs_par job;
    _Atomic uint32_t gen;   /* futex word: bumped when a job is posted */
    _Atomic uint64_t state; /* gen << 32 | CLOSED | helpers joined */
    _Atomic uint32_t done;  /* futex word: helpers that finished the job */
    _Atomic int status;
    _Atomic int sleepers;       /* helpers asleep on gen */
    _Atomic int caller_waiting; /* the caller asleep on done */
    _Atomic int started;        /* helpers created (changed under lock) */
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .state = CLOSED};

static _Atomic int configured = 0; /* fs_set_num_threads; 0: the default */
static _Atomic int helper_limit = -1;
static _Atomic int64_t spin_ns = FS_POOL_SPIN_NS;
static _Thread_local int in_helper = 0;

/* ---------------------------------------------------------------- sleeping and waking */

#ifdef __linux__
static void word_wait(_Atomic uint32_t *w, uint32_t seen)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}
static void word_wake(_Atomic uint32_t *w) { syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0); }
#else
/* without futexes: one mutex and condition variable for both words (wakes are rare) */
static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wait_cond = PTHREAD_COND_INITIALIZER;
static void word_wait(_Atomic uint32_t *w, uint32_t seen)
{
    pthread_mutex_lock(&wait_lock);
    while (atomic_load(w) == seen)
        pthread_cond_wait(&wait_cond, &wait_lock);
    pthread_mutex_unlock(&wait_lock);
}
static void word_wake(_Atomic uint32_t *w)
{
    (void)w;
    pthread_mutex_lock(&wait_lock);
    pthread_cond_broadcast(&wait_cond);
    pthread_mutex_unlock(&wait_lock);
}
#endif

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Spins up to spin_ns while *w == seen (if below is 0) or *w < below; 1 if it changed. */
static int spin_on(_Atomic uint32_t *w, uint32_t seen, uint32_t below)
{
    const int64_t t0 = now_ns(), limit = atomic_load_explicit(&spin_ns, memory_order_relaxed);
    for (;;) {
        for (int i = 0; i < 64; i++) {
            uint32_t v = atomic_load_explicit(w, memory_order_acquire);
            if (below ? v >= below : v != seen)
                return 1;
            cpu_relax();
        }
        if (now_ns() - t0 > limit)
            return 0;
    }
}

/* ---------------------------------------------------------------- helpers */

#ifdef __linux__
/* When no CPU is idle (BLAS threads spinning after a product, another process), Linux
 * wakes a helper on its waker's CPU: the helper then preempts the caller and the job runs
 * on one core while the other core's spinner yields to nobody.  A helper that finds
 * itself on the caller's CPU leaves it for the job's duration (its affinity without that
 * CPU; *saved gets the affinity to restore); 1 if it moved. */
static int step_off(int caller_cpu, cpu_set_t *saved)
{
    if (caller_cpu < 0 || sched_getcpu() != caller_cpu || sched_getaffinity(0, sizeof *saved, saved) != 0)
        return 0;
    cpu_set_t others = *saved;
    CPU_CLR(caller_cpu, &others);
    return CPU_COUNT(&others) > 0 && sched_setaffinity(0, sizeof others, &others) == 0;
}
#endif

static void try_join(void)
{
    fs_par *j = &pool.job;
    uint64_t s = atomic_load(&pool.state);
    for (;;) {
        if ((s & CLOSED) || (int)(s & JOINED_MASK) >= atomic_load_explicit(&j->limit, memory_order_relaxed) ||
            atomic_load_explicit(&j->next, memory_order_relaxed) >= atomic_load_explicit(&j->nitems, memory_order_relaxed))
            return;
        if (atomic_compare_exchange_weak(&pool.state, &s, s + 1))
            break;
    }
    /* joined: the job's fields stay as they are until this helper is done */
#ifdef __linux__
    cpu_set_t saved;
    const int moved = step_off(atomic_load_explicit(&j->caller_cpu, memory_order_relaxed), &saved);
#endif
    const int status = j->body(j, j->ctx);
#ifdef __linux__
    if (moved)
        sched_setaffinity(0, sizeof saved, &saved);
#endif
    if (status != FS_OK)
        atomic_store(&pool.status, status);
    atomic_fetch_add(&pool.done, 1);
    if (atomic_load(&pool.caller_waiting))
        word_wake(&pool.done);
}

static void *helper_main(void *arg)
{
    (void)arg;
    in_helper = 1;
    for (;;) {
        const uint32_t seen = atomic_load(&pool.gen);
        try_join();
        if (spin_on(&pool.gen, seen, 0))
            continue;
        atomic_fetch_add(&pool.sleepers, 1);
        while (atomic_load(&pool.gen) == seen)
            word_wait(&pool.gen, seen);
        atomic_fetch_sub(&pool.sleepers, 1);
    }
    return NULL;
}

/* Starts helpers until `want` exist (under lock); returns how many there are. */
static int start_helpers(int want)
{
    if (want > MAX_HELPERS)
        want = MAX_HELPERS;
    int have = atomic_load(&pool.started);
    if (have >= want)
        return have;
    /* helpers take no signals: Python handles them on its main thread */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    int ok = pthread_attr_init(&attr) == 0;
    if (ok)
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    while (ok && have < want) {
        const int limit = atomic_load(&helper_limit);
        pthread_t t;
        if ((limit >= 0 && have >= limit) || pthread_create(&t, &attr, helper_main, NULL) != 0)
            break; /* the system refused: the pool goes on with the helpers it has */
        atomic_store(&pool.started, ++have);
    }
    if (ok)
        pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return have;
}

/* A forked child has none of the parent's helpers, and the lock may have been held by a
 * thread that does not exist in the child. */
static void after_fork_child(void)
{
    pthread_mutex_init(&pool.lock, NULL);
    atomic_store(&pool.started, 0);
    atomic_store(&pool.state, CLOSED);
    atomic_store(&pool.sleepers, 0);
    atomic_store(&pool.caller_waiting, 0);
}

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static void register_fork(void) { pthread_atfork(NULL, NULL, after_fork_child); }

/* ---------------------------------------------------------------- the parallel-for */

int64_t fs_par_next(fs_par *p)
{
    const int64_t n = atomic_load_explicit(&p->nitems, memory_order_relaxed);
    if (atomic_load_explicit(&p->next, memory_order_relaxed) >= n)
        return -1; /* no increment past the end once done */
    const int64_t k = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
    return k < n ? k : -1;
}

int fs_parallel(int nt, int64_t nitems, fs_par_body body, void *ctx)
{
    int helpers = 0;
    if (nt > 1 && nitems > 1 && !in_helper && pthread_mutex_trylock(&pool.lock) == 0) {
        pthread_once(&fork_once, register_fork);
        helpers = start_helpers(nt - 1);
        if (helpers > nt - 1)
            helpers = nt - 1;
        if (helpers > nitems - 1)
            helpers = (int)(nitems - 1);
        if (helpers < 1)
            pthread_mutex_unlock(&pool.lock);
    }
    if (helpers < 1) {
        fs_par alone = {body, ctx, nitems, 0, 0, -1};
        return body(&alone, ctx);
    }
    fs_par *j = &pool.job;
    j->body = body;
    j->ctx = ctx;
    atomic_store_explicit(&j->nitems, nitems, memory_order_relaxed);
    atomic_store_explicit(&j->next, 0, memory_order_relaxed);
    atomic_store_explicit(&j->limit, helpers, memory_order_relaxed);
#ifdef __linux__
    atomic_store_explicit(&j->caller_cpu, sched_getcpu(), memory_order_relaxed);
#endif
    atomic_store(&pool.status, FS_OK);
    atomic_store(&pool.done, 0);
    /* open the job before the helpers can see the new generation (a helper that saw it
     * and found the job still closed would go back to sleep) */
    const uint32_t g = atomic_load(&pool.gen) + 1;
    atomic_store(&pool.state, (uint64_t)g << 32);
    atomic_store(&pool.gen, g);
    if (atomic_load(&pool.sleepers) > 0)
        word_wake(&pool.gen);

    int status = body(j, ctx);

    const uint32_t joined = (uint32_t)(atomic_fetch_or(&pool.state, CLOSED) & JOINED_MASK);
    if (joined > 0 && !spin_on(&pool.done, 0, joined)) {
        atomic_store(&pool.caller_waiting, 1);
        for (uint32_t d; (d = atomic_load(&pool.done)) < joined;)
            word_wait(&pool.done, d);
        atomic_store(&pool.caller_waiting, 0);
    }
    const int theirs = atomic_load(&pool.status);
    pthread_mutex_unlock(&pool.lock);
    return status != FS_OK ? status : theirs;
}

/* ---------------------------------------------------------------- the thread count */

int fs_pool_default_threads(void)
{
    static _Atomic int cached = 0;
    int n = atomic_load(&cached);
    if (n > 0)
        return n;
    const char *vars[] = {"FASTSOFTMAX_NUM_THREADS", "OMP_NUM_THREADS"};
    for (int k = 0; k < 2 && n <= 0; k++) {
        const char *s = getenv(vars[k]);
        if (s)
            n = atoi(s); /* "4,2" (nested OpenMP levels) reads as 4 */
    }
    if (n <= 0) {
#ifdef __linux__
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof set, &set) == 0)
            n = CPU_COUNT(&set);
#endif
        if (n <= 0)
            n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    }
    if (n < 1)
        n = 1;
    if (n > MAX_HELPERS + 1)
        n = MAX_HELPERS + 1;
    atomic_store(&cached, n);
    return n;
}

void fs_set_num_threads(int n) { atomic_store(&configured, n > 0 ? (n > MAX_HELPERS + 1 ? MAX_HELPERS + 1 : n) : 0); }

int fs_get_num_threads(void)
{
    const int n = atomic_load(&configured);
    return n > 0 ? n : fs_pool_default_threads();
}

int fs_pool_in_helper(void) { return in_helper; }
void fs_limit_helpers(int n) { atomic_store(&helper_limit, n); }
void fs_set_spin_ns(int64_t ns) { atomic_store(&spin_ns, ns >= 0 ? ns : FS_POOL_SPIN_NS); }
int fs_threads_enabled(void) { return 1; }

#else /* FS_NO_THREADS: a build without threads runs every job on its caller */

struct fs_par {
    int64_t nitems, next;
};

int64_t fs_par_next(fs_par *p) { return p->next < p->nitems ? p->next++ : -1; }

int fs_parallel(int nt, int64_t nitems, fs_par_body body, void *ctx)
{
    (void)nt;
    fs_par alone = {nitems, 0};
    return body(&alone, ctx);
}

void fs_set_num_threads(int n) { (void)n; }
int fs_get_num_threads(void) { return 1; }
int fs_threads_enabled(void) { return 0; }
int fs_pool_default_threads(void) { return 1; }
int fs_pool_in_helper(void) { return 0; }
void fs_limit_helpers(int n) { (void)n; }
void fs_set_spin_ns(int64_t ns) { (void)ns; }
#endif
