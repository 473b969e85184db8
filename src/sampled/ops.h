/*
 * The sampled losses' kernels, one dtype (included by isa/kernels_isa.h with T, H(), K()):
 * the gather of weight rows, the true classes' logits and the accidental hits (TensorFlow's
 * _compute_sampled_logits around its matrix product), the scatter-add of gradient rows and
 * the weights' gradient rows of the unique ids. The matrix products are BLAS, called by the
 * Python layer (fastsoftmax/sampled.py), which folds the sampled classes' biases and log Q
 * into the product (a column of ones beside the inputs, one of b - log Q beside the rows);
 * the loss and its gradient are the softmax family's cross_entropy and the elementwise
 * bce_logits.
 */

#ifndef FS_SAMPLED_OPS_ONCE
#define FS_SAMPLED_OPS_ONCE
/* The first index i in [0, n) with v[i] >= key (n if none), v nondecreasing. */
static inline int64_t fs_lower_bound(const int64_t *v, int64_t n, int64_t key)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (v[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
#endif

/* Rows idx[0..m) of src (row stride ld elements, dim elements each, unit stride) into the
 * first dim elements of out's rows (row stride ldo >= dim). */
typedef struct {
    const T *src;
    int64_t ld, dim;
    const int64_t *idx;
    T *out;
    int64_t ldo, per, m;
} H(gather_job);

static int H(gather_units)(fs_par *p, void *ctx)
{
    const H(gather_job) *G = (const H(gather_job) *)ctx;
    for (int64_t u; (u = fs_par_next(p)) >= 0;) {
        int64_t lo, hi;
        fs_unit_range(u, G->per, G->m, &lo, &hi);
        for (int64_t r = lo; r < hi; r++)
            memcpy(G->out + r * G->ldo, G->src + G->idx[r] * G->ld, (size_t)G->dim * sizeof(T));
    }
    return FS_OK;
}

int K(gather_rows)(const T *src, int64_t ld, int64_t dim, const int64_t *idx, int64_t m, T *out, int64_t ldo)
{
    if (m <= 0 || dim <= 0)
        return FS_OK;
    H(gather_job) G = {src, ld, dim, idx, out, ldo, 0, m};
    G.per = (4096 + dim - 1) / dim; /* units of about 4096 elements */
    return fs_batch_parallel(m * dim, (m + G.per - 1) / G.per, H(gather_units), &G);
}

typedef struct {
    const fs_sampled_args *a;
    const T *x, *w_true, *b_true;
    T *logits;
    int64_t per;
} H(logits_job);

/* Rows [lo, hi): logits[n] = the true logits, then the sampled ones, already
 * x_n . W_s + b_s - log Q_s from the product; the true logits x_n . w + b - log Q (the order
 * of TensorFlow's _compute_sampled_logits), and ACCIDENTAL_HIT added where a sampled class is
 * one of the row's true classes. */
static void H(logits_rows)(const H(logits_job) *L, int64_t lo, int64_t hi)
{
    const fs_sampled_args *a = L->a;
    const int64_t nt = a->num_true, s = a->num_sampled, d = a->dim, k = nt + s;
    for (int64_t n = lo; n < hi; n++) {
        T *row = L->logits + n * k;
        const T *xn = L->x + n * a->ld_x;
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
        if (a->remove_hits)
            for (int64_t t = 0; t < nt; t++) {
                /* the positions of class yn[t]: a range of the sorted candidates; a class the
                 * row has more than once is hit once */
                int dup = 0;
                for (int64_t u = 0; u < t; u++)
                    dup |= yn[u] == yn[t];
                if (dup)
                    continue;
                for (int64_t j = fs_lower_bound(a->sampled, s, yn[t]); j < s && a->sampled[j] == yn[t]; j++)
                    z[j] += (T)FS_ACCIDENTAL_HIT;
            }
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

int K(sampled_logits)(const fs_sampled_args *a, const T *x, const T *w_true, const T *b_true, T *logits)
{
    if (a->n_rows <= 0)
        return FS_OK;
    const int64_t work = a->num_true * (a->dim + 16) + 1;
    H(logits_job) L = {a, x, w_true, b_true, logits, 0};
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

typedef struct {
    const fs_id_rows *a;
    const T *prod, *x, *scale;
    T *out, *out_b;
    int64_t per;
} H(id_rows_job);

/* Output rows [lo, hi): each written once, from the product's rows of its sampled positions
 * (in order), then its true entries (in increasing entry number). */
static void H(id_rows_range)(const H(id_rows_job) *J, int64_t lo, int64_t hi)
{
    const fs_id_rows *a = J->a;
    const int64_t d = a->dim;
    int64_t s = fs_lower_bound(a->pos_sampled, a->num_sampled, lo);
    int64_t e = fs_lower_bound(a->pos_true_sorted, a->num_entries, lo);
    for (int64_t i = lo; i < hi; i++) {
        T *o = J->out + i * d;
        T bias = 0; /* with out_b: column d of the product holds the biases' gradient */
        if (s < a->num_sampled && a->pos_sampled[s] == i) {
            const T *p = J->prod + s * a->ld_prod;
            memcpy(o, p, (size_t)d * sizeof(T));
            if (J->out_b)
                bias = p[d];
            for (s++; s < a->num_sampled && a->pos_sampled[s] == i; s++) {
                p = J->prod + s * a->ld_prod;
                for (int64_t j = 0; j < d; j++)
                    o[j] += p[j];
                if (J->out_b)
                    bias += p[d];
            }
        } else {
            memset(o, 0, (size_t)d * sizeof(T));
        }
        for (; e < a->num_entries && a->pos_true_sorted[e] == i; e++) {
            const int64_t entry = a->true_order[e];
            const T c = J->scale[entry];
            const T *v = J->x + (entry / a->num_true) * a->ld_x;
            for (int64_t j = 0; j < d; j++)
                o[j] += c * v[j];
            bias += c;
        }
        if (J->out_b)
            J->out_b[i] = bias;
    }
}

static int H(id_rows_units)(fs_par *p, void *ctx)
{
    const H(id_rows_job) *J = (const H(id_rows_job) *)ctx;
    for (int64_t u; (u = fs_par_next(p)) >= 0;) {
        int64_t lo, hi;
        fs_unit_range(u, J->per, J->a->n_ids, &lo, &hi);
        H(id_rows_range)(J, lo, hi);
    }
    return FS_OK;
}

int K(sampled_id_rows)(const fs_id_rows *a, const T *prod, const T *x, const T *scale, T *out, T *out_b)
{
    if (a->n_ids <= 0)
        return FS_OK;
    const int64_t d = a->dim > 0 ? a->dim : 1;
    H(id_rows_job) J = {a, prod, x, scale, out, out_b, (4096 + d - 1) / d};
    return fs_batch_parallel(a->n_ids * d, (a->n_ids + J.per - 1) / J.per, H(id_rows_units), &J);
}
