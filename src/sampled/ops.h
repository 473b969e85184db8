/*
 * The sampled losses' kernels, one dtype (included by isa/kernels_isa.h with T, H(), K()):
 * the gather of weight rows, the logits of the true and sampled classes (TensorFlow's
 * _compute_sampled_logits after its matrix product), and the scatter-add of gradient rows.
 * The matrix products are BLAS, called by the Python layer (fastsoftmax/sampled.py); the
 * loss and its gradient are the softmax family's cross_entropy and the elementwise bce_logits.
 */

/* Rows idx[0..m) of src (row stride ld elements, dim elements each, unit stride) into out (m x dim). */
typedef struct {
    const T *src;
    int64_t ld, dim;
    const int64_t *idx;
    T *out;
    int64_t per, m;
} H(gather_job);

static int H(gather_units)(fs_par *p, void *ctx)
{
    const H(gather_job) *G = (const H(gather_job) *)ctx;
    for (int64_t u; (u = fs_par_next(p)) >= 0;) {
        int64_t lo, hi;
        fs_unit_range(u, G->per, G->m, &lo, &hi);
        for (int64_t r = lo; r < hi; r++)
            memcpy(G->out + r * G->dim, G->src + G->idx[r] * G->ld, (size_t)G->dim * sizeof(T));
    }
    return FS_OK;
}

int K(gather_rows)(const T *src, int64_t ld, int64_t dim, const int64_t *idx, int64_t m, T *out)
{
    if (m <= 0 || dim <= 0)
        return FS_OK;
    H(gather_job) G = {src, ld, dim, idx, out, 0, m};
    G.per = (4096 + dim - 1) / dim; /* units of about 4096 elements */
    return fs_batch_parallel(m * dim, (m + G.per - 1) / G.per, H(gather_units), &G);
}

typedef struct {
    const fs_sampled_args *a;
    const T *x, *w_true, *b_true, *b_sampled;
    T *logits;
    int64_t per;
} H(logits_job);

/* Rows [lo, hi): logits[n] = the true logits, then the sampled ones (already x_n . W_s),
 * each + its bias, + ACCIDENTAL_HIT where a sampled class is one of the row's true classes,
 * - log(expected count); the order of TensorFlow's _compute_sampled_logits. */
static void H(logits_rows)(const H(logits_job) *L, int64_t lo, int64_t hi)
{
    const fs_sampled_args *a = L->a;
    const int64_t nt = a->num_true, s = a->num_sampled, d = a->dim, k = nt + s;
    for (int64_t n = lo; n < hi; n++) {
        T *row = L->logits + n * k;
        const T *xn = L->x + n * d;
        const int64_t *yn = a->labels + n * nt;
        for (int64_t t = 0; t < nt; t++) {
            const T *w = L->w_true + (n * nt + t) * d;
            double dot = 0.0;
            for (int64_t j = 0; j < d; j++)
                dot += (double)xn[j] * (double)w[j];
            T v = (T)dot;
            if (L->b_true)
                v += L->b_true[n * nt + t];
            if (a->logq_true)
                v = (T)((double)v - a->logq_true[n * nt + t]);
            row[t] = v;
        }
        T *z = row + nt;
        if (L->b_sampled)
            for (int64_t j = 0; j < s; j++)
                z[j] += L->b_sampled[j];
        if (a->remove_hits)
            for (int64_t t = 0; t < nt; t++) {
                /* the positions of class yn[t]: a range of the sorted candidates; a class the
                 * row has more than once is hit once */
                int dup = 0;
                for (int64_t u = 0; u < t; u++)
                    dup |= yn[u] == yn[t];
                if (dup)
                    continue;
                int64_t lo = 0, hi = s;
                while (lo < hi) {
                    const int64_t mid = lo + (hi - lo) / 2;
                    if (a->sampled[mid] < yn[t])
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                for (; lo < s && a->sampled[lo] == yn[t]; lo++)
                    z[lo] += (T)FS_ACCIDENTAL_HIT;
            }
        if (a->logq_sampled)
            for (int64_t j = 0; j < s; j++)
                z[j] = (T)((double)z[j] - a->logq_sampled[j]);
    }
}

static int H(logits_units)(fs_par *p, void *ctx)
{
    const H(logits_job) *L = (const H(logits_job) *)ctx;
    for (int64_t u; (u = fs_par_next(p)) >= 0;) {
        int64_t lo, hi;
        fs_unit_range(u, L->per, L->a->n_rows, &lo, &hi);
        H(logits_rows)(L, lo, hi);
    }
    return FS_OK;
}

int K(sampled_logits)(const fs_sampled_args *a, const T *x, const T *w_true, const T *b_true, const T *b_sampled,
                      T *logits)
{
    if (a->n_rows <= 0)
        return FS_OK;
    const int64_t k = a->num_true + a->num_sampled, work = a->num_true * a->dim + k;
    H(logits_job) L = {a, x, w_true, b_true, b_sampled, logits, 0};
    L.per = (4096 + work - 1) / work;
    return fs_batch_parallel(a->n_rows * work, (a->n_rows + L.per - 1) / L.per, H(logits_units), &L);
}

/* out[pos[r]] += scale[r] * src[src_row[r]] for r = 0 .. m-1 in that order (rows of dim
 * elements; src_row NULL: r, scale NULL: 1), so that the sums are the same on any thread count. */
int K(scatter_add_rows)(T *out, int64_t dim, const int64_t *pos, int64_t m, const T *src, const int64_t *src_row,
                        const T *scale)
{
    for (int64_t r = 0; r < m; r++) {
        T *o = out + pos[r] * dim;
        const T *v = src + (src_row ? src_row[r] : r) * dim;
        if (scale) {
            const T c = scale[r];
            for (int64_t j = 0; j < dim; j++)
                o[j] += c * v[j];
        } else {
            for (int64_t j = 0; j < dim; j++)
                o[j] += v[j];
        }
    }
    return FS_OK;
}
