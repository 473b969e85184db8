/* The softmax family, one dtype (see family.h): the output pass of a row. */

/* y = (x - m) - rest */
static void H(write_shift)(const T *x, T *y, int64_t n, T m, T rest)
{
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES)
        VSTORE(y + j, (VLOAD(x + j) - m) - rest);
    for (; j < n; j++)
        y[j] = (x[j] - m) - rest;
}

/* v[k] += d in double, rounded once: lane k read, the sum broadcast and blended in (an indexed
 * store into v would reload the whole vector from the stack: a failed store forwarding, 15-20
 * cycles a row); out of line, so that the loops below keep their vector in a register */
static __attribute__((noinline)) V H(add_at)(V v, int64_t k, double d)
{
    VI lane;
    for (int i = 0; i < LANES; i++)
        lane[i] = i;
    return VSELECT(lane == (int)k, VSPLAT((T)((double)v[k] + d)), v);
}

/* out[hole - base] += hdelta when hole falls in this vector */
#define ADD_AT_HOLE(out, base)                                                                         \
    if (__builtin_expect((uint64_t)(hole - (base)) < (uint64_t)LANES, 0))                              \
        out = H(add_at)(out, hole - (base), hdelta);

/* One vector of the output pass below, at src + j. */
FS_INLINE V H(out_vec)(const T *src, const T *u, const T *w, int64_t j, V vm, T a, T alpha, T beta,
                       const int stored, const int has_u, const int has_w, const int has_c)
{
    V v = VLOAD(src + j);
    V ex = stored ? v : VEXPN(v - vm);
    if (!has_c)
        return ex * a;
    V c = has_u ? VLOAD(u + j) * alpha + beta : VSPLAT(beta);
    if (has_w)
        c *= VLOAD(w + j);
    return ex * a - c;
}

/* The same for the k < LANES elements at src + j (the head and tail of the output pass). */
FS_INLINE V H(out_part)(const T *src, const T *u, const T *w, int64_t j, int64_t k, V vm, T a, T alpha,
                        T beta, const int stored, const int has_u, const int has_w, const int has_c)
{
    V v = H(load_tail)(src + j, k, stored ? 0 : -INFINITY);
    V ex = stored ? v : VEXPN(v - vm);
    if (!has_c)
        return ex * a;
    V c = has_u ? H(load_tail)(u + j, k, 0) * alpha + beta : VSPLAT(beta);
    if (has_w)
        c *= H(load_tail)(w + j, k, 0);
    return ex * a - c;
}

/* The whole vectors of the output pass below from j while j + LANES <= stop (streamed with nt);
 * returns where it stopped.  The vector that holds the hole (if any) is done on its own, so that
 * the loops test nothing per vector; two vectors per iteration share the loop's instructions. */
FS_INLINE int64_t H(out_vectors)(const T *src, T *g, const T *u, const T *w, int64_t j, int64_t stop, V vm, T a,
                                 T alpha, T beta, const int stored, const int has_u, const int has_w,
                                 const int has_c, const int nt, int64_t hole, double hdelta)
{
    const int64_t hv = hole >= j && hole < stop ? j + (hole - j) / LANES * LANES : stop;
#define OUT_VEC(k) H(out_vec)(src, u, w, k, vm, a, alpha, beta, stored, has_u, has_w, has_c)
#define PUT(k, v)                                                                                      \
    if (nt)                                                                                            \
        VSTREAM(g + (k), v);                                                                           \
    else                                                                                               \
        VSTORE(g + (k), v);
    for (int part = 0; part < 2; part++) {
        const int64_t end = part == 0 ? hv : stop;
        for (; j + 2 * LANES <= end; j += 2 * LANES) {
            V o0 = OUT_VEC(j), o1 = OUT_VEC(j + LANES);
            PUT(j, o0)
            PUT(j + LANES, o1)
        }
        for (; j + LANES <= end; j += LANES) {
            V o0 = OUT_VEC(j);
            PUT(j, o0)
        }
        if (part == 0 && hv + LANES <= stop) {
            V o0 = OUT_VEC(hv);
            ADD_AT_HOLE(o0, hv)
            PUT(hv, o0)
            j = hv + LANES;
        }
    }
#undef OUT_VEC
#undef PUT
    return j;
}

/* The k < LANES elements at j of the output pass below, with normal stores. */
FS_INLINE void H(out_tail)(const T *src, T *g, const T *u, const T *w, int64_t j, int64_t k, V vm, T a, T alpha,
                           T beta, const int stored, const int has_u, const int has_w, const int has_c, int64_t hole,
                           double hdelta)
{
    V ex = H(out_part)(src, u, w, j, k, vm, a, alpha, beta, stored, has_u, has_w, has_c);
    ADD_AT_HOLE(ex, j)
    H(store_tail)(g + j, k, ex);
}

/*
 * Output pass over n elements: g = E * a - (u ? alpha u + beta : beta) * (w ? w : 1),
 * where E = src (exponentials stored by pass 1) or exp(src - m) (recomputed),
 * and g[hole] += hdelta (the target's term of the cross-entropy gradient; hole
 * -1: none).  It is added before the store, never read back: reading back a
 * streamed line waits for it to reach memory.
 * With nt, only whole 64-byte lines of g are streamed; the elements before its first line
 * boundary and after its last one are stored normally.  A line partly streamed and partly
 * stored (a row's ends, when rows are not whole lines) is read and written back by the memory:
 * 2^26 floats in rows of 300, one thread, ran 1.2x slower streamed that way than with normal
 * stores on AMD Zen 3.
 * Softmax is the case without the c term (has_c = 0).  The variants are
 * generated from one body by constant flags.
 */
FS_INLINE void H(output_body)(const T *src, T *g, const T *u, const T *w, int64_t n, T m, T a, T alpha,
                              T beta, const int stored, const int has_u, const int has_w, const int has_c,
                              const int nt, int64_t hole, double hdelta)
{
    const V vm = VSPLAT(m);
    int64_t j = 0;
#define SPAN(j0, stop, streamed)                                                                       \
    H(out_vectors)(src, g, u, w, j0, stop, vm, a, alpha, beta, stored, has_u, has_w, has_c, streamed, hole, hdelta)
#define TAIL(j0, k) H(out_tail)(src, g, u, w, j0, k, vm, a, alpha, beta, stored, has_u, has_w, has_c, hole, hdelta)
    if (nt) {
        const int64_t line = 64 / (int64_t)sizeof(T); /* a whole number of vectors */
        int64_t head = (int64_t)((((uintptr_t)0 - (uintptr_t)g) % 64) / sizeof(T));
        if (head > n)
            head = n;
        j = SPAN(0, head, 0);
        if (j < head) {
            TAIL(j, head - j);
            j = head;
        }
        j = SPAN(j, j + (n - j) / line * line, 1);
    }
    j = SPAN(j, n, 0);
    if (j < n)
        TAIL(j, n - j);
#undef SPAN
#undef TAIL
}
#undef ADD_AT_HOLE

#define OUTPUT_VARIANTS(stored, nt)                                                                    \
    if (!has_c)                                                                                        \
        H(output_body)(src, g, u, w, n, m, a, alpha, beta, stored, 0, 0, 0, nt, hole, hdelta);                       \
    else if (u && w)                                                                                   \
        H(output_body)(src, g, u, w, n, m, a, alpha, beta, stored, 1, 1, 1, nt, hole, hdelta);                       \
    else if (u)                                                                                        \
        H(output_body)(src, g, u, w, n, m, a, alpha, beta, stored, 1, 0, 1, nt, hole, hdelta);                       \
    else if (w)                                                                                        \
        H(output_body)(src, g, u, w, n, m, a, alpha, beta, stored, 0, 1, 1, nt, hole, hdelta);                       \
    else                                                                                               \
        H(output_body)(src, g, u, w, n, m, a, alpha, beta, stored, 0, 0, 1, nt, hole, hdelta);

/* A row whose multiplier a is beyond T's range (the z-loss of a huge log-sum-exp, with
 * float32): in double, one element at a time, so that an exponential of 0 gives 0 - c_j
 * rather than 0 * inf. */
static __attribute__((noinline)) void H(output_huge)(const T *src, T *g, const T *u, const T *w, int64_t n, T m,
                                                      double a, T alpha, T beta, int stored, int has_c,
                                                      int64_t hole, double hdelta)
{
    for (int64_t j = 0; j < n; j++) {
        const double e = stored ? (double)src[j] : exp((double)src[j] - (double)m);
        const double c = has_c ? (u ? (double)alpha * u[j] + beta : (double)beta) * (w ? (double)w[j] : 1.0) : 0.0;
        g[j] = (T)(e * a - c + (j == hole ? hdelta : 0.0));
    }
}

/* The output pass over n elements; a is the multiplier of the exponentials (in double: see
 * output_huge). */
static void H(output_range)(const T *src, T *g, const T *u, const T *w, int64_t n, T m, double a_d, T alpha,
                            T beta, int stored, int has_c, int nt, int64_t hole, double hdelta)
{
    const T a = (T)a_d;
    if (__builtin_expect(!isfinite(a) && isfinite(a_d), 0)) {
        H(output_huge)(src, g, u, w, n, m, a_d, alpha, beta, stored, has_c, hole, hdelta);
        return;
    }
    if (stored && nt) {
        OUTPUT_VARIANTS(1, 1)
    } else if (stored) {
        OUTPUT_VARIANTS(1, 0)
    } else if (nt) {
        OUTPUT_VARIANTS(0, 1)
    } else {
        OUTPUT_VARIANTS(0, 0)
    }
}
#undef OUTPUT_VARIANTS
