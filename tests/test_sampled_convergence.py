"""Sampled softmax trains a model almost as well as the full softmax (issue 14's convergence test).

Settings fixed before the first run, not tuned: 2,000 classes whose frequencies follow Zipf(1.0)
(class 0 the most frequent, as the log-uniform sampler assumes); a fixed random linear teacher in
D = 32: labels drawn from the Zipf prior and inputs x = T[y] + N(0, I), T ~ N(0, 0.5^2), so that
the true posterior is a softmax of a linear function of x; 50,000 training examples, batch 256,
3 epochs; softmax regression (W, b from zeros) trained by plain SGD with learning rate 1.0 for
both losses; the evaluation is the full softmax cross-entropy on 10,000 new examples.
(A first version drew the labels from softmax(x @ T.T + log prior) with x ~ N(0, I): the
teacher's logits then swamped the prior and the frequencies were not Zipf's.)
"""

import numpy as np

import fastsoftmax as fs

C, D, N_TRAIN, N_EVAL, BATCH, EPOCHS, S, LR = 2000, 32, 50_000, 10_000, 256, 3, 200, 1.0


def _data(rng, n, teacher, prior):
    y = rng.choice(C, size=n, p=prior)
    x = teacher[y] + rng.standard_normal((n, D))
    return x, y


def _train(x, y, sampled, rng):
    w = np.zeros((C, D))
    b = np.zeros(C)
    for _ in range(EPOCHS):
        order = rng.permutation(len(y))
        for k in range(0, len(y), BATCH):
            idx = order[k:k + BATCH]
            xb, yb = x[idx], y[idx]
            if sampled:
                _, g = fs.sampled_softmax_loss(w, b, yb, xb, S, C, rng=rng, return_grad=True)
                w[g.ids] -= LR * g.weights
                b[g.ids] -= LR * g.biases
            else:
                _, g_logits = fs.cross_entropy(xb @ w.T + b, yb, return_grad=True)
                w -= LR * (g_logits.T @ xb)
                b -= LR * g_logits.sum(axis=0)
    return w, b


def test_sampled_softmax_reaches_the_full_softmax_loss():
    rng = np.random.default_rng(0)
    teacher = 0.5 * rng.standard_normal((C, D))
    prior = 1.0 / np.arange(1, C + 1)  # Zipf(1.0)
    prior /= prior.sum()
    x, y = _data(rng, N_TRAIN, teacher, prior)
    x_eval, y_eval = _data(rng, N_EVAL, teacher, prior)
    w_full, b_full = _train(x, y, False, np.random.default_rng(1))
    w_s, b_s = _train(x, y, True, np.random.default_rng(1))
    full = fs.cross_entropy(x_eval @ w_full.T + b_full, y_eval)
    sampled = fs.cross_entropy(x_eval @ w_s.T + b_s, y_eval)
    untrained = np.log(C)
    assert full < 0.9 * untrained  # the full model learned something
    assert sampled <= 1.10 * full, (sampled, full)
