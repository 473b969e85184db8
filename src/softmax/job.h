/* The softmax family, one dtype (see family.h): a batch job, what the ops hand to the driver
 * (H(run), driver.h). */

typedef struct {
    int kind;
    const fs_batch *b;
    const T *x;
    const fs_strides *xs;
    T *y;                    /* softmax output or gradient (NULL: none) */
    const fs_strides *ys;
    T *lse;                  /* logsumexp output */
    const fs_ce_args *ce;
    const T *u;              /* a second input of the logits' shape read with each row (the
                              * cross-entropy's probability targets), or NULL */
    const fs_strides *us;
    double *loss_rows;
    double wsum;
    int nt;                  /* streaming stores for the output (set by run) */
} H(job);


static int H(run)(const H(job) *J);
