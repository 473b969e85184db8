/* Per-dtype helpers that every family uses (included by isa/kernels_isa.h once per dtype,
 * before the families): partial vectors at the end of a row, a vector built lane by lane,
 * and the copies of a strided row into a contiguous scratch row and back. */

/* Copy the last n < LANES elements into a full vector, the rest set to fill. */
FS_INLINE V H(load_tail)(const T *p, int64_t n, T fill)
{
#if FS_MASKED_TAILS
    return VLOAD_TAIL(p, n, fill);
#endif
    T tmp[LANES];
    for (int k = 0; k < LANES; k++)
        tmp[k] = k < n ? p[k] : fill;
    return VLOAD(tmp);
}

/* The vector of a[0..LANES), built lane by lane (see gather_rows). */
FS_INLINE V H(from_scalars)(const T *a)
{
    const T *p[LANES];
    for (int k = 0; k < LANES; k++)
        p[k] = a + k;
    return VGATHER_ROWS(p, 0);
}

FS_INLINE void H(store_tail)(T *p, int64_t n, V v)
{
#if FS_MASKED_TAILS
    VSTORE_TAIL(p, n, v);
    return;
#endif
    T tmp[LANES];
    VSTORE(tmp, v);
    for (int64_t k = 0; k < n; k++)
        p[k] = tmp[k];
}

/* dst[j] = src[j * stride] */
static void H(gather)(T *dst, const T *src, int64_t n, int64_t stride)
{
    for (int64_t j = 0; j < n; j++)
        dst[j] = src[j * stride];
}

/* dst[j * stride] = src[j] */
static void H(scatter)(T *dst, int64_t stride, const T *src, int64_t n)
{
    for (int64_t j = 0; j < n; j++)
        dst[j * stride] = src[j];
}
