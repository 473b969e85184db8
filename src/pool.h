/*
 * The package's own thread pool: one parallel-for over items that every driver calls.
 *
 *     static int body(fs_par *p, void *ctx) {
 *         ...per-thread setup...
 *         for (int64_t k; (k = fs_par_next(p)) >= 0;)
 *             ...item k...
 *         ...per-thread teardown...
 *         return status;
 *     }
 *     status = fs_parallel(nt, nitems, body, ctx);
 *
 * The calling thread runs `body` itself at once; up to nt - 1 helper threads join it
 * as they wake.  Items are handed out in increasing order as threads ask for them, so
 * a helper whose core is busy (BLAS threads spinning after a product, another process)
 * only ever holds the item it is working on: the caller takes over every item that no
 * helper has started.  A helper that wakes after all items are taken does not run
 * `body` at all.  Results must therefore not depend on which thread runs which item
 * (every kernel's items are independent, or merged in item order afterwards).
 *
 * After a call, helpers spin for a while (FS_POOL_SPIN_NS, fs_set_spin_ns) so that
 * calls made back to back find them awake, then sleep (futex on Linux, a condition
 * variable elsewhere): they leave the cores to the BLAS call that follows.
 *
 * A call that finds the pool in use (another Python thread's call, or a kernel called
 * from a helper, as the float16 driver does) runs on its calling thread alone; so does
 * a call when helper threads cannot be created.
 */
#ifndef FS_POOL_H
#define FS_POOL_H

#include <stdint.h>

#include "fastsoftmax.h"

typedef struct fs_par fs_par;
typedef int (*fs_par_body)(fs_par *p, void *ctx);

/* Runs body on up to nt threads over items 0 .. nitems-1; returns FS_OK or one of the
 * bodies' error statuses. */
int fs_parallel(int nt, int64_t nitems, fs_par_body body, void *ctx);

/* The next item for the calling thread, or -1 when all are taken. */
int64_t fs_par_next(fs_par *p);

/* The thread count (fs_set_num_threads, fs_get_num_threads, fs_threads_enabled), the
 * helpers' spin (fs_set_spin_ns) and the tests' limit on helpers (fs_limit_helpers) are
 * public: fastsoftmax.h. */
/* The default count: FASTSOFTMAX_NUM_THREADS, else OMP_NUM_THREADS (its first value), else
 * the CPUs this process may run on. */
int fs_pool_default_threads(void);
/* 1 when the calling thread is one of the pool's helpers. */
int fs_pool_in_helper(void);

/* How long a helper spins after its last item before it sleeps, unless fs_set_spin_ns
 * says otherwise; the caller waits as long for its helpers before it sleeps too. */
#define FS_POOL_SPIN_NS 50000

#endif
