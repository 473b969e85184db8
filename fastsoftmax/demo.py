"""``python -m fastsoftmax demo``: train small NumPy networks with the fastsoftmax loss objects.

The demo trains a softmax regression and a one-hidden-layer MLP (plain NumPy forward and
backward, Adam or SGD written in NumPy) on a seeded synthetic data set with many classes,
twice each: once with :class:`fastsoftmax.losses.CrossEntropyLoss` and once with a
cross-entropy written in NumPy (log-softmax, loss, gradient).  Both runs start from the
same weights and see the same mini-batches, so they must end with the same accuracy; the
demo prints per-epoch loss and accuracy of both, checks that the final accuracies match,
and reports the time spent in the loss (forward + backward) for each, as a ratio.  The
two runs take their steps in turn, batch by batch, so that a change in the machine's
load slows both alike.  fastsoftmax runs on the library's default thread count (``--threads``
changes it), next to NumPy's BLAS threads in the matrix products, as in a user's loop.

``--multilabel`` does the same for multi-label classification with
:class:`fastsoftmax.losses.BCEWithLogitsLoss` against a NumPy binary cross-entropy, and
reports per-label F1.

``--sampled`` trains one softmax regression over 100,000 classes (Zipf class frequencies,
inputs from a random linear teacher) twice from zeros, by plain SGD on the same batches: with
:func:`fastsoftmax.sampled_softmax_loss` (1024 log-uniform samples per batch, updates of the
touched rows only) and with the full softmax cross-entropy (:func:`fastsoftmax.cross_entropy`
of ``X @ W.T + b``, dense updates).  Both models are evaluated with the full softmax on
held-out samples (the sampled loss is biased: it is for training); the demo prints the
sampled training loss, both held-out losses and accuracies and both models' time per step, and
the two models agree when their final held-out losses are within ``--tolerance`` (10%).

``--plot FILE.png`` saves the loss curves (needs matplotlib).

Everything is deterministic (seeded data, initial weights, batch order and sampled classes);
nothing is downloaded.  The exit status is 0 when every pair of runs agrees, 1 otherwise.
"""

import argparse
import os
import sys
import time

import numpy as np

from . import _datasets
from .functional import cross_entropy
from .losses import BCEWithLogitsLoss, CrossEntropyLoss
from .sampled import sampled_softmax_loss

__all__ = ["main", "NumpyCrossEntropyLoss", "NumpyBCEWithLogitsLoss", "SoftmaxRegression", "MLP",
           "Adam", "SGD"]


# ----------------------------------------------------------------------------- NumPy losses
# What one would write without fastsoftmax: the same interface as the loss objects
# (``loss = fn(logits, target)``, ``dlogits = fn.backward()``), mean reduction, written
# to be reasonably fast (in-place updates, exp computed once and reused for the gradient).


class NumpyCrossEntropyLoss:
    """Softmax cross-entropy in NumPy, index targets, mean over the batch (class axis last)."""

    def __call__(self, logits, target):
        rows = np.arange(logits.shape[0])
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        sumexp = exp.sum(axis=1, keepdims=True)
        loss = np.mean(np.log(sumexp[:, 0]) - shifted[rows, target])
        self._cache = exp, sumexp, rows, target
        return loss

    def backward(self, grad_output=1.0):
        exp, sumexp, rows, target = self._cache
        del self._cache
        grad = exp
        grad /= sumexp                   # softmax
        grad[rows, target] -= 1.0        # - one-hot
        grad *= grad_output / len(rows)  # mean
        return grad


class NumpyBCEWithLogitsLoss:
    """Binary cross-entropy on logits in NumPy, mean over all elements (stable form), with
    an optional ``pos_weight`` per label (last axis), as ``torch.nn.BCEWithLogitsLoss``."""

    def __init__(self, pos_weight=None):
        self.pos_weight = pos_weight

    def __call__(self, logits, target):
        e = np.exp(-np.abs(logits))                                 # in (0, 1]: no overflow
        softplus_neg = np.log1p(e) + np.maximum(-logits, 0)        # log(1 + exp(-x))
        if self.pos_weight is None:
            loss = np.mean((1 - target) * logits + softplus_neg)
        else:
            lw = 1 + (self.pos_weight - 1) * target
            loss = np.mean((1 - target) * logits + lw * softplus_neg)
        self._cache = logits, target, e
        return loss

    def backward(self, grad_output=1.0):
        logits, target, e = self._cache
        del self._cache
        sig = np.where(logits >= 0, 1.0, e)
        sig /= 1.0 + e                                              # sigmoid(x), stable for both signs
        if self.pos_weight is None:
            grad = sig - target
        else:
            grad = (1 + (self.pos_weight - 1) * target) * sig - self.pos_weight * target
        grad *= grad_output / logits.size
        return grad


# ----------------------------------------------------------------------------- models


class SoftmaxRegression:
    """``logits = X @ W + b``: softmax regression under the cross-entropy, logistic regression
    (one per label) under the binary cross-entropy."""

    name = "softmax regression"

    def __init__(self, n_in, n_out, rng, dtype, name=None):
        if name is not None:
            self.name = name
        self.W = (rng.standard_normal((n_in, n_out)) * np.sqrt(1.0 / n_in)).astype(dtype)
        self.b = np.zeros(n_out, dtype)
        self.params = [self.W, self.b]

    def forward(self, X):
        self._X = X
        return X @ self.W + self.b

    def backward(self, dlogits):
        X = self._X
        del self._X
        return [X.T @ dlogits, dlogits.sum(axis=0)]


class MLP:
    """``logits = relu(X @ W1 + b1) @ W2 + b2``."""

    def __init__(self, n_in, n_hidden, n_out, rng, dtype):
        self.name = "MLP (%d hidden)" % n_hidden
        self.W1 = (rng.standard_normal((n_in, n_hidden)) * np.sqrt(2.0 / n_in)).astype(dtype)
        self.b1 = np.zeros(n_hidden, dtype)
        self.W2 = (rng.standard_normal((n_hidden, n_out)) * np.sqrt(1.0 / n_hidden)).astype(dtype)
        self.b2 = np.zeros(n_out, dtype)
        self.params = [self.W1, self.b1, self.W2, self.b2]

    def forward(self, X):
        h = X @ self.W1
        h += self.b1
        np.maximum(h, 0, out=h)
        self._cache = X, h
        return h @ self.W2 + self.b2

    def backward(self, dlogits):
        X, h = self._cache
        del self._cache
        dW2 = h.T @ dlogits
        db2 = dlogits.sum(axis=0)
        dh = dlogits @ self.W2.T
        dh *= h > 0
        return [X.T @ dh, dh.sum(axis=0), dW2, db2]


class Adam:
    """Adam (Kingma & Ba) on a list of arrays, updated in place."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads):
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1.0 - b1 ** self.t, 1.0 - b2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            p -= (self.lr / c1) * m / (np.sqrt(v / c2) + self.eps)


class SGD:
    """Stochastic gradient descent with momentum, in place."""

    def __init__(self, params, lr=0.1, momentum=0.9):
        self.params, self.lr, self.momentum = params, lr, momentum
        self.velocity = [np.zeros_like(p) for p in params]

    def step(self, grads):
        for p, g, v in zip(self.params, grads, self.velocity):
            v *= self.momentum
            v -= self.lr * g
            p += v


# ----------------------------------------------------------------------------- training


class _Progress:
    """A one-line text progress bar on a terminal (nothing when the stream is not a tty)."""

    def __init__(self, stream, enabled):
        self.stream = stream
        self.enabled = enabled and hasattr(stream, "isatty") and stream.isatty()
        self._last = 0.0
        self._width = 0

    def update(self, label, done, total, loss):
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        n = 30
        filled = n * done // total
        line = "%s [%s%s] %d/%d batches  loss %.4f" % (label, "#" * filled, "." * (n - filled), done, total,
                                                        loss)
        self._width = max(self._width, len(line))
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()

    def clear(self):
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


def _accuracy(logits, y):
    return float(np.mean(np.argmax(logits, axis=1) == y))


def _f1_per_label(logits, Y):
    """Per-label F1 of the predictions ``logits > 0`` (0 when a label is neither true nor predicted)."""
    pred = logits > 0
    true = Y > 0.5
    tp = np.sum(pred & true, axis=0)
    fp = np.sum(pred & ~true, axis=0)
    fn = np.sum(~pred & true, axis=0)
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def train_side_by_side(make_model, losses, make_optimizer, data, *, epochs, batch_size, seed, metric, label,
                       out, progress):
    """Train one copy of a model per loss, in lockstep; one line per epoch on ``out``.

    ``make_model()`` gives the same initial weights at each call; ``losses`` is a list of
    ``(name, make_loss)``; ``data`` = (X_train, y_train, X_test, y_test); ``metric(logits,
    y)`` -> float.  Every copy sees the same mini-batches, and the copies take their steps
    in turn, batch by batch, so that a change in the machine's load slows them alike and
    the timings compare.  Returns ``{name: run}``, each run a dict with the per-epoch train
    loss and test metric, the final test logits, and the seconds spent in the loss
    (forward + backward) and in whole training steps.
    """
    X, y, X_test, y_test = data
    rng = np.random.default_rng([seed, 3])  # the batch order
    n_batches = -(-len(X) // batch_size)
    runs = {}
    for name, make_loss in losses:
        model = make_model()
        runs[name] = dict(model=model, loss_fn=make_loss(), optimizer=make_optimizer(model.params), loss=[],
                          metric=[], loss_time=0.0, step_time=0.0)
    model_name = model.name
    names = [name for name, _ in losses]
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(X))
        sums = dict.fromkeys(names, 0.0)
        epoch_loss_time = dict.fromkeys(names, 0.0)
        for i in range(n_batches):
            idx = order[i * batch_size:(i + 1) * batch_size]
            Xb, yb = X[idx], y[idx]
            for name in names:
                run = runs[name]
                t0 = time.perf_counter()
                logits = run["model"].forward(Xb)
                t1 = time.perf_counter()
                loss = run["loss_fn"](logits, yb)
                dlogits = run["loss_fn"].backward()
                t2 = time.perf_counter()
                run["optimizer"].step(run["model"].backward(dlogits))
                run["step_time"] += time.perf_counter() - t0
                epoch_loss_time[name] += t2 - t1
                sums[name] += float(loss) * len(idx)
            seen = i * batch_size + len(idx)
            progress.update("  %s, epoch %d/%d" % (model_name, epoch, epochs), i + 1, n_batches,
                            sums[names[0]] / seen)
        progress.clear()
        for name in names:
            run = runs[name]
            run["loss"].append(sums[name] / len(X))
            run["metric"].append(metric(run["model"].forward(X_test), y_test))
            run["loss_time"] += epoch_loss_time[name]
        print("  epoch %2d/%d  train loss %s  test %s %s  loss fwd+bwd %s"
              % (epoch, epochs, " / ".join("%.4f" % runs[n]["loss"][-1] for n in names), label,
                 " / ".join("%6.2f%%" % (100 * runs[n]["metric"][-1]) for n in names),
                 " / ".join("%.3f s" % epoch_loss_time[n] for n in names)), file=out, flush=True)
    for run in runs.values():
        run["test_logits"] = run.pop("model").forward(X_test)
        del run["loss_fn"], run["optimizer"]
    return runs


# ----------------------------------------------------------------------------- the two demos


def _make_optimizer(args, params):
    if args.optimizer == "adam":
        return Adam(params, lr=args.lr)
    return SGD(params, lr=args.lr)


def _models(args, n_in, n_out, dtype, task="multiclass"):
    """Factories: a fresh model with the same initial weights at each call."""
    factories = []
    linear = "logistic regression" if task == "multilabel" else "softmax regression"  # one sigmoid per label
    if "softmax" in args.models:
        factories.append(lambda: SoftmaxRegression(n_in, n_out, np.random.default_rng([args.seed, 4]), dtype,
                                                   name=linear))
    if "mlp" in args.models:
        factories.append(lambda: MLP(n_in, args.hidden, n_out, np.random.default_rng([args.seed, 5]), dtype))
    return factories


def _compare(args, out, data, loss_pair, metric, metric_label, task):
    """Train every model with both losses; print the comparison; return (ok, results)."""
    results = []
    ok = True
    progress = _Progress(sys.stderr, args.progress)
    n_in, n_out = data[0].shape[1], args.labels if task == "multilabel" else args.classes
    for make_model in _models(args, n_in, n_out, np.dtype(args.dtype), task):
        name = make_model().name
        print("\n== %s, trained with fastsoftmax / with NumPy (in lockstep, same batches) =="
              % name, file=out, flush=True)
        runs = train_side_by_side(make_model, loss_pair, lambda params: _make_optimizer(args, params), data,
                                  epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                                  metric=metric, label=metric_label, out=out, progress=progress)
        fs_run, np_run = runs["fastsoftmax"], runs["numpy"]
        verdict = _agreement(task, fs_run, np_run, data, args)
        ok &= verdict["match"]
        results.append(dict(model=name, runs=runs, verdict=verdict))
        print("-- %s: final test %s fastsoftmax %.2f%%, NumPy %.2f%%: %s (%s)"
              % (name, metric_label, 100 * fs_run["metric"][-1], 100 * np_run["metric"][-1],
                 "MATCH" if verdict["match"] else "MISMATCH", verdict["detail"]), file=out)
        print("-- %s: time in the loss (fwd+bwd): fastsoftmax %.3f s, NumPy %.3f s: fastsoftmax %s "
              "(whole training steps %.2f s vs %.2f s)"
              % (name, fs_run["loss_time"], np_run["loss_time"], _loss_ratio(fs_run["loss_time"], np_run["loss_time"]),
                 fs_run["step_time"], np_run["step_time"]), file=out, flush=True)
    return ok, results


def _agreement(task, fs_run, np_run, data, args):
    """Do the two runs end with the same result?  (dict(match, detail))

    Both runs start from the same weights and see the same batches; the losses differ
    only by rounding, so the final predictions can differ only for test samples that sit
    on a decision boundary to within that rounding.  In float64 the results must be
    identical; in float32 at most ``--tolerance`` percentage points apart (accuracy, or
    macro-F1 for multi-label; the largest per-label F1 difference is reported, not judged:
    one flipped sample moves the F1 of a rare label by a percent or more).
    """
    tol = 0.0 if args.dtype == "float64" else args.tolerance / 100
    a, b = fs_run["test_logits"], np_run["test_logits"]
    if task == "multiclass":
        n_diff = int(np.sum(np.argmax(a, axis=1) != np.argmax(b, axis=1)))
        diff = abs(fs_run["metric"][-1] - np_run["metric"][-1])
        detail = "predictions differ on %d of %d test samples" % (n_diff, len(a))
    else:
        f1a, f1b = _f1_per_label(a, data[3]), _f1_per_label(b, data[3])
        n_diff = int(np.sum((a > 0) != (b > 0)))
        diff = abs(fs_run["metric"][-1] - np_run["metric"][-1])
        detail = ("predictions differ on %d of %d test labels; largest per-label F1 difference %.4f"
                  % (n_diff, a.size, float(np.max(np.abs(f1a - f1b)))))
    return dict(match=bool(diff <= tol + 1e-12), detail=detail)


def run_multiclass(args, out):
    X, y = _datasets.make_clusters(args.samples, args.features, args.classes, seed=args.seed,
                                   dtype=np.dtype(args.dtype))
    data = _datasets.train_test_split(X, y)
    print("data: %d train / %d test samples, %d features, %d classes (seeded Gaussian clusters, 2 per class, "
          "seed %d); %s, batch %d, %s lr %g, %d epochs"
          % (len(data[0]), len(data[2]), args.features, args.classes, args.seed, args.dtype, args.batch_size,
             args.optimizer, args.lr, args.epochs), file=out, flush=True)
    pair = [("fastsoftmax", CrossEntropyLoss), ("numpy", NumpyCrossEntropyLoss)]
    return _compare(args, out, data, pair, _accuracy, "accuracy", "multiclass")


def _micro_f1(logits, Y):
    pred, true = logits > 0, Y > 0.5
    tp = np.sum(pred & true)
    denom = 2 * tp + np.sum(pred & ~true) + np.sum(~pred & true)
    return float(2 * tp / denom) if denom else 0.0


def _macro_f1(logits, Y):
    return float(np.mean(_f1_per_label(logits, Y)))


def run_multilabel(args, out):
    X, Y = _datasets.make_multilabel(args.samples, args.features, args.labels, seed=args.seed,
                                     dtype=np.dtype(args.dtype))
    data = _datasets.train_test_split(X, Y)
    print("data: %d train / %d test samples, %d features, %d labels (%.1f per sample on average; seeded "
          "topics with tags), pos_weight %g; %s, batch %d, %s lr %g, %d epochs"
          % (len(data[0]), len(data[2]), args.features, args.labels, float(Y.sum(axis=1).mean()),
             args.pos_weight, args.dtype, args.batch_size, args.optimizer, args.lr, args.epochs), file=out,
          flush=True)
    pos_weight = np.full(args.labels, args.pos_weight, dtype=np.dtype(args.dtype))
    pair = [("fastsoftmax", lambda: BCEWithLogitsLoss(pos_weight=pos_weight)),
            ("numpy", lambda: NumpyBCEWithLogitsLoss(pos_weight=pos_weight))]
    ok, results = _compare(args, out, data, pair, _macro_f1, "macro-F1", "multilabel")
    Y_test = data[3]
    shown = min(args.labels, 10)
    for r in results:
        f1 = {impl: _f1_per_label(run["test_logits"], Y_test) for impl, run in r["runs"].items()}
        print("\nper-label test F1, %s (labels 0-%d of %d; micro-F1 fastsoftmax %.4f, NumPy %.4f):"
              % (r["model"], shown - 1, args.labels, _micro_f1(r["runs"]["fastsoftmax"]["test_logits"], Y_test),
                 _micro_f1(r["runs"]["numpy"]["test_logits"], Y_test)), file=out)
        print("  label        " + " ".join("%6d" % j for j in range(shown)), file=out)
        for impl, name in (("fastsoftmax", "fastsoftmax"), ("numpy", "NumPy")):
            print("  %-12s " % name + " ".join("%6.3f" % v for v in f1[impl][:shown]), file=out)
        q = np.percentile(f1["fastsoftmax"], [0, 50, 100])
        print("  all %d labels, fastsoftmax: min %.3f  median %.3f  max %.3f  macro %.4f"
              % (args.labels, q[0], q[1], q[2], f1["fastsoftmax"].mean()), file=out, flush=True)
    return ok, results


# ----------------------------------------------------------------------------- sampled softmax demo
# One softmax regression over many classes, trained twice from zeros by plain SGD on the same
# batches: with the sampled softmax loss (a few classes per batch, sparse updates of their rows)
# and with the full softmax cross-entropy (every class, dense updates).  Both are evaluated with
# the full softmax on held-out samples: the sampled loss is a biased estimate, for training only.

_HELD_OUT = 4096  # held-out samples of --sampled


def _sampled_softmax_step(W, b, Xb, yb, lr, num_sampled, rng):
    """One SGD step on the sampled softmax loss, in place; only the rows of the classes it
    touched (true and sampled) change.  Returns the batch's sampled loss."""
    loss, g = sampled_softmax_loss(W, b, yb, Xb, num_sampled, len(W), rng=rng, return_grad=True)
    W[g.ids] -= lr * g.weights  # g.ids are distinct: the fancy-indexed update is exact
    b[g.ids] -= lr * g.biases
    return loss


def _full_softmax_step(W, b, Xb, yb, lr, logits, grad_W):
    """One SGD step on the full softmax cross-entropy of ``Xb @ W.T + b``, in place.

    ``logits`` (at least ``len(Xb)`` rows of all classes) and ``grad_W`` (W's shape) are work
    arrays allocated once: at 100,000 classes a batch's logits take 200 MB, which a new array
    would page in again at every step.  Returns the batch's loss.
    """
    z = logits[:len(Xb)]
    np.matmul(Xb, W.T, out=z)
    z += b
    loss, g = cross_entropy(z, yb, return_grad=True, out=z)  # the gradient overwrites the logits
    np.matmul(g.T, Xb, out=grad_W)
    grad_W *= lr
    W -= grad_W
    b -= lr * g.sum(axis=0)
    return loss


def _evaluate(W, b, X, y, logits):
    """Full softmax cross-entropy (mean) and accuracy of ``X @ W.T + b``, by chunks of ``len(logits)`` rows."""
    total, correct = 0.0, 0
    for k in range(0, len(X), len(logits)):
        Xc, yc = X[k:k + len(logits)], y[k:k + len(logits)]
        z = logits[:len(Xc)]
        np.matmul(Xc, W.T, out=z)
        z += b
        correct += int(np.count_nonzero(np.argmax(z, axis=1) == yc))
        total += float(cross_entropy(z, yc, reduction="sum"))
    return total / len(X), correct / len(X)


def _speed_up(slow, fast):
    """``fast`` against ``slow`` (positive seconds) as "N.Nx faster" or "N.Nx slower": never a ratio
    that rounds to 0."""
    ratio = slow / fast
    return "%.1fx faster" % ratio if ratio >= 1 else "%.1fx slower" % (1 / ratio)


#: Loss times under this (seconds, a run's total) are too short to compare: no ratio is printed.
MIN_TIMED = 0.02


def _loss_ratio(fs_time, np_time):
    """fastsoftmax's loss time against NumPy's in words, or why there is no ratio."""
    if min(fs_time, np_time) < MIN_TIMED:
        return "too short to compare"
    return _speed_up(np_time, fs_time)


_SAMPLED_HEADER = ("    step   train loss   held-out loss (full softmax)      held-out accuracy    "
                   "ms per training step\n"
                   "            (sampled)    sampled      full  difference     sampled      full     "
                   "sampled       full")
_SAMPLED_ROW = "  %6d %12.4f %10.4f %9.4f %+10.2f%% %10.2f%% %8.2f%% %11.2f %10.2f"


def train_sampled_vs_full(data, n_classes, *, num_sampled, epochs, batch_size, lr, eval_every, seed, out,
                          progress):
    """Train the two copies in lockstep; one table row per evaluation point on ``out``.

    ``data`` = (X_train, y_train, X_test, y_test).  Every ``eval_every`` steps and after the last
    one, both models are evaluated with the full softmax on the test samples.  A row shows the
    sampled model's mean training (sampled) loss since the previous row, the held-out loss of
    both models and its relative difference ``(sampled - full) / full``, their held-out
    accuracies, and both models' mean time per training step since the previous row: the whole
    step (loss, gradients, update) is timed, the evaluation is not.  The copies take their steps
    in turn, batch by batch, so that a change in the machine's load slows both alike.  ``seed``
    seeds the batch order and the sampled classes.

    Returns the rows, each a dict: ``step``, ``train_loss`` and, per model (``"sampled"``,
    ``"full"``), a dict of the held-out ``loss`` and ``accuracy`` and the training seconds
    ``time`` up to that step.
    """
    X, y, X_test, y_test = data
    dtype = X.dtype
    batch_rng = np.random.default_rng([seed, 3])
    sampler_rng = np.random.default_rng([seed, 6])
    models = {name: (np.zeros((n_classes, X.shape[1]), dtype), np.zeros(n_classes, dtype))
              for name in ("sampled", "full")}
    logits = np.empty((batch_size, n_classes), dtype)  # the full softmax's work arrays, also used to evaluate
    grad_W = np.empty((n_classes, X.shape[1]), dtype)
    n_batches = -(-len(X) // batch_size)
    total_steps = epochs * n_batches
    rows = []
    elapsed = dict(sampled=0.0, full=0.0)  # training seconds so far
    since = dict(sampled=0.0, full=0.0, loss=0.0, steps=0)  # since the previous row
    print(_SAMPLED_HEADER, file=out, flush=True)
    for step in range(1, total_steps + 1):
        i = (step - 1) % n_batches
        if i == 0:
            order = batch_rng.permutation(len(X))
        idx = order[i * batch_size:(i + 1) * batch_size]
        Xb, yb = X[idx], y[idx]
        t0 = time.perf_counter()
        loss = _sampled_softmax_step(*models["sampled"], Xb, yb, lr, num_sampled, sampler_rng)
        t1 = time.perf_counter()
        _full_softmax_step(*models["full"], Xb, yb, lr, logits, grad_W)
        t2 = time.perf_counter()
        since["sampled"] += t1 - t0
        since["full"] += t2 - t1
        since["loss"] += float(loss)
        since["steps"] += 1
        progress.update("  step", step, total_steps, since["loss"] / since["steps"])
        if step % eval_every and step < total_steps:
            continue
        progress.clear()
        row = dict(step=step, train_loss=since["loss"] / since["steps"])
        for name, (W, b) in models.items():
            elapsed[name] += since[name]
            held_out, accuracy = _evaluate(W, b, X_test, y_test, logits)
            row[name] = dict(loss=held_out, accuracy=accuracy, time=elapsed[name])
        rows.append(row)
        s, f = row["sampled"], row["full"]
        print(_SAMPLED_ROW % (step, row["train_loss"], s["loss"], f["loss"], 100 * (s["loss"] / f["loss"] - 1),
                              100 * s["accuracy"], 100 * f["accuracy"], 1e3 * since["sampled"] / since["steps"],
                              1e3 * since["full"] / since["steps"]), file=out, flush=True)
        since = dict.fromkeys(since, 0)
    return rows


def run_sampled(args, out):
    """The --sampled demo: data, training table and summary.  Returns (ok, rows, verdict line)."""
    dtype = np.dtype(args.dtype)
    X, y = _datasets.make_zipf_linear(args.samples + _HELD_OUT, args.features, args.classes, seed=args.seed,
                                      dtype=dtype)
    data = X[:args.samples], y[:args.samples], X[args.samples:], y[args.samples:]
    n_batches = -(-args.samples // args.batch_size)
    total_steps = args.epochs * n_batches
    # about six evaluation points unless --eval-every says otherwise
    eval_every = args.eval_every or -(-total_steps // 6)
    print("data: %d train / %d held-out samples, %d features, %d classes (seeded: Zipf(1) class frequencies, "
          "x = T[y] + N(0, I) for a random linear teacher T; seed %d); %s, batch %d, plain SGD lr %g, %d epoch%s "
          "(%d steps)" % (args.samples, _HELD_OUT, args.features, args.classes, args.seed, args.dtype,
                          args.batch_size, args.lr, args.epochs, "s" if args.epochs > 1 else "", total_steps),
          file=out, flush=True)
    print("\n== softmax regression (W %d x %d, b) from zeros, trained with sampled softmax (%d log-uniform samples "
          "per batch) / with full softmax (in lockstep, same batches) =="
          % (args.classes, args.features, args.num_sampled), file=out, flush=True)
    rows = train_sampled_vs_full(data, args.classes, num_sampled=args.num_sampled, epochs=args.epochs,
                                 batch_size=args.batch_size, lr=args.lr, eval_every=eval_every, seed=args.seed,
                                 out=out, progress=_Progress(sys.stderr, args.progress))
    last = rows[-1]
    s, f = last["sampled"], last["full"]
    difference = s["loss"] / f["loss"] - 1
    ok = bool(abs(difference) <= args.tolerance / 100)  # False for NaN
    print("\n== summary ==", file=out)
    print("%-22s %14s %18s %22s" % ("model trained with", "held-out loss", "held-out accuracy",
                                    "ms per training step"), file=out)
    for name, label in (("sampled", "sampled softmax"), ("full", "full softmax")):
        r = last[name]
        print("%-22s %14.4f %17.2f%% %22.2f"
              % (label, r["loss"], 100 * r["accuracy"], 1e3 * r["time"] / total_steps), file=out)
    print("held-out loss: the sampled-softmax model's is %+.2f%% from the full-softmax model's (tolerance %g%%): %s"
          % (100 * difference, args.tolerance, "MATCH" if ok else "MISMATCH"), file=out)
    print("time per training step (mean of %d steps, evaluation excluded): the sampled softmax step is %s than "
          "the full softmax step" % (total_steps, _speed_up(f["time"], s["time"])), file=out, flush=True)
    if ok:
        verdict = "sampled and full softmax models agree: held-out losses within %g%%" % args.tolerance
    else:
        verdict = ("MISMATCH: the sampled-softmax model's held-out loss is %+.2f%% from the full-softmax model's, "
                   "beyond the tolerance of %g%%" % (100 * difference, args.tolerance))
    return ok, rows, verdict


# ----------------------------------------------------------------------------- summary and plot


def _summary(results, metric_label, out):
    print("\n== summary ==", file=out)
    print("%-22s %-31s %s" % ("", "final test " + metric_label, "time in the loss (fwd+bwd)"), file=out)
    print("%-22s %12s %8s  %-7s %12s %9s   %s" % ("model", "fastsoftmax", "NumPy", "agree", "fastsoftmax", "NumPy",
                                                 "fastsoftmax is"), file=out)
    for r in results:
        fs_run, np_run = r["runs"]["fastsoftmax"], r["runs"]["numpy"]
        print("%-22s %11.2f%% %7.2f%%  %-7s %10.3f s %7.3f s   %s"
              % (r["model"], 100 * fs_run["metric"][-1], 100 * np_run["metric"][-1],
                 "yes" if r["verdict"]["match"] else "NO", fs_run["loss_time"], np_run["loss_time"],
                 _loss_ratio(fs_run["loss_time"], np_run["loss_time"])), file=out)
    out.flush()


def _pyplot(out):
    """matplotlib.pyplot on the Agg backend, or None (with a message on ``out``) without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot: matplotlib is not installed, no plot written (pip install matplotlib)", file=out)
        return None
    return plt


def plot(results, path, metric_label, out):
    """Loss and metric curves of every run to ``path``; False (with a message) without matplotlib."""
    plt = _pyplot(out)
    if plt is None:
        return False
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4.2))
    for k, r in enumerate(results):
        color = "C%d" % k
        # the two runs coincide: fastsoftmax as a wide pale line, NumPy as dashes with dots on top
        for impl, style, name in (("fastsoftmax", dict(linestyle="-", linewidth=5, alpha=0.35), "fastsoftmax"),
                                  ("numpy", dict(linestyle="--", marker="o", markersize=3), "NumPy")):
            run = r["runs"][impl]
            epochs = np.arange(1, len(run["loss"]) + 1)
            ax_loss.plot(epochs, run["loss"], color=color, label="%s, %s" % (r["model"], name), **style)
            ax_metric.plot(epochs, 100 * np.asarray(run["metric"]), color=color,
                           label="%s, %s" % (r["model"], name), **style)
    ax_loss.set(xlabel="epoch", ylabel="train loss", title="training loss")
    ax_metric.set(xlabel="epoch", ylabel="test %s (%%)" % metric_label, title="test " + metric_label)
    return _save(plt, fig, (ax_loss, ax_metric), path, out)


def plot_sampled(rows, path, num_sampled, out):
    """--sampled: the held-out loss of both models against training steps and against training
    time, to ``path``; False (with a message) without matplotlib."""
    plt = _pyplot(out)
    if plt is None:
        return False
    fig, (ax_step, ax_time) = plt.subplots(1, 2, figsize=(11, 4.2))
    # the losses per step nearly coincide: the sampled run as a wide pale line, the full one as dashes on top
    for name, label, style in (("sampled", "sampled softmax (%d samples)" % num_sampled,
                                dict(color="C0", linewidth=5, alpha=0.4)),
                               ("full", "full softmax", dict(color="C1", linestyle="--", marker="o", markersize=3))):
        loss = [r[name]["loss"] for r in rows]
        ax_step.plot([r["step"] for r in rows], loss, label=label, **style)
        ax_time.plot([r[name]["time"] for r in rows], loss, label=label, **style)
    ax_step.set(xlabel="training step", ylabel="held-out loss (full softmax)", title="held-out loss per step")
    # the sampled run is much faster: a log scale shows both
    ax_time.set(xlabel="training time (s, evaluation excluded)", ylabel="held-out loss (full softmax)",
                xscale="log", title="held-out loss against training time")
    return _save(plt, fig, (ax_step, ax_time), path, out)


def _save(plt, fig, axes, path, out):
    """Grid and legend on each of ``axes``, then the figure to ``path``; True."""
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print("loss curves saved to %s" % path, file=out)
    return True


# ----------------------------------------------------------------------------- command line

_DEFAULTS = dict(
    multiclass=dict(samples=24000, features=32, classes=1000, labels=500, hidden=64, epochs=5, batch_size=512,
                    lr=6e-3, optimizer="adam", models="softmax,mlp", pos_weight=10.0, tolerance=0.2),
    multilabel=dict(samples=24000, features=32, classes=1000, labels=500, hidden=64, epochs=5, batch_size=256,
                    lr=1e-2, optimizer="adam", models="softmax,mlp", pos_weight=10.0, tolerance=0.2),
    quick=dict(samples=1200, features=8, classes=20, labels=20, hidden=16, epochs=2, batch_size=100, lr=1e-2),
    # --sampled: samples are the training samples (_HELD_OUT more are drawn for the evaluation)
    sampled=dict(samples=76800, features=64, classes=100000, epochs=1, batch_size=512, lr=1.0, optimizer="sgd",
                 num_sampled=1024, tolerance=10.0),
    sampled_quick=dict(samples=6400, features=32, classes=2000, batch_size=256, num_sampled=200),
)

# options of the other demos, which --sampled does not use (besides --multilabel)
_NOT_SAMPLED = (("--models", "models"), ("--hidden", "hidden"), ("--labels", "labels"), ("--pos-weight", "pos_weight"))


def _parser(prog):
    p = argparse.ArgumentParser(
        prog=prog,
        description="Train a softmax regression and a one-hidden-layer MLP (plain NumPy) on seeded synthetic "
                    "data, once with fastsoftmax's CrossEntropyLoss and once with a NumPy cross-entropy; "
                    "print per-epoch loss and accuracy, check that both runs end with the same accuracy and "
                    "compare the time spent in the loss.  Exit status 1 if the runs disagree.  With --sampled, "
                    "train a softmax regression over 100,000 classes with sampled_softmax_loss and with the "
                    "full softmax side by side, and compare their held-out losses (full softmax) and their "
                    "time per training step.")
    p.add_argument("--multilabel", action="store_true",
                   help="multi-label classification with BCEWithLogitsLoss against a NumPy binary "
                        "cross-entropy; reports per-label F1")
    p.add_argument("--sampled", action="store_true",
                   help="sampled softmax (sampled_softmax_loss, log-uniform sampler) against the full softmax "
                        "(cross_entropy) on a softmax regression with Zipf-distributed classes, plain SGD; "
                        "exit status 1 if the final held-out losses differ by more than --tolerance")
    p.add_argument("--plot", metavar="FILE.png", help="save the loss and accuracy curves (needs matplotlib; "
                                                      "--sampled: the held-out losses)")
    p.add_argument("--epochs", type=int, help="training epochs (default: 5; --quick: 2; --sampled: 1)")
    p.add_argument("--samples", type=int, help="samples, 80%%%% for training (default: 24000); --sampled: training "
                                               "samples, and %d more held out (default: 76800)" % _HELD_OUT)
    p.add_argument("--features", type=int, help="input features (default: 32; --sampled: 64)")
    p.add_argument("--classes", type=int, help="classes (default: 1000; --sampled: 100000)")
    p.add_argument("--labels", type=int, help="labels for --multilabel (default: 500)")
    p.add_argument("--pos-weight", type=float,
                   help="--multilabel: pos_weight of every label, in both losses (default: 10)")
    p.add_argument("--hidden", type=int, help="hidden units of the MLP (default: 64)")
    p.add_argument("--batch-size", type=int, help="mini-batch size (default: 512, or 256 with --multilabel)")
    p.add_argument("--lr", type=float, help="learning rate (default, Adam: 6e-3, or 1e-2 with --multilabel; "
                                            "SGD: 0.1; --sampled: 1.0)")
    p.add_argument("--optimizer", choices=("adam", "sgd"),
                   help="default: adam (SGD with momentum 0.9); --sampled: plain SGD only")
    p.add_argument("--models", help="comma-separated models to train: softmax, mlp (default: softmax,mlp)")
    p.add_argument("--num-sampled", type=int,
                   help="--sampled: classes sampled per batch (default: 1024; --quick: 200)")
    p.add_argument("--eval-every", type=int, metavar="STEPS",
                   help="--sampled: evaluate both models every STEPS training steps and after the last "
                        "(default: six evaluations in all)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default: %(default)s")
    p.add_argument("--seed", type=int, default=0,
                   help="data, weights, batch order and sampled classes (default: %(default)s)")
    p.add_argument("--tolerance", type=float, metavar="PCT",
                   help="float32: largest accepted difference of the final accuracies / F1 scores, in "
                        "percentage points (rounding can flip a borderline sample; float64 runs must be "
                        "identical) (default: 0.2); --sampled: largest accepted difference of the sampled "
                        "model's final held-out loss from the full model's, in percent of the latter "
                        "(default: 10)")
    p.add_argument("--threads", type=int, default=0,
                   help="fastsoftmax threads (default: 0, the library's default)")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes, for a smoke test (about a second; --sampled: 2000 classes)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (it is drawn on stderr only when stderr is a terminal)")
    return p


def main(argv=None, prog="python -m fastsoftmax demo", out=None):
    """Run the demo; returns the exit status (0: every pair of runs agrees)."""
    out = sys.stdout if out is None else out
    parser = _parser(prog)
    args = parser.parse_args(argv)
    if args.sampled:
        if args.multilabel:
            parser.error("argument --multilabel: not allowed with argument --sampled")
        for option, key in _NOT_SAMPLED:
            if getattr(args, key) is not None:
                parser.error("argument %s: not allowed with argument --sampled" % option)
        if args.optimizer == "adam":
            parser.error("argument --optimizer: --sampled trains with plain SGD, not adam")
    else:
        for option, key in (("--num-sampled", "num_sampled"), ("--eval-every", "eval_every")):
            if getattr(args, key) is not None:
                parser.error("argument %s: only with --sampled" % option)
    mode = "sampled" if args.sampled else "multilabel" if args.multilabel else "multiclass"
    defaults = dict(_DEFAULTS[mode])
    if args.quick:
        defaults.update(_DEFAULTS["sampled_quick" if args.sampled else "quick"])
    if args.optimizer == "sgd" and args.lr is None and not args.sampled:
        defaults["lr"] = 0.1
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    for key in ("epochs", "samples", "features", "classes", "labels", "hidden", "batch_size", "num_sampled",
                "eval_every"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            parser.error("--%s must be >= 1" % key.replace("_", "-"))
    if args.samples < 10:
        parser.error("--samples must be >= 10")
    if args.sampled:
        if args.num_sampled >= args.classes:
            parser.error("--num-sampled must be smaller than --classes (%d)" % args.classes)
    else:
        args.models = [m.strip() for m in args.models.split(",") if m.strip()]
        if not args.models or any(m not in ("softmax", "mlp") for m in args.models):
            parser.error("--models: a comma-separated list of softmax, mlp")
    if args.plot:
        args.plot = os.path.abspath(args.plot)
        if not os.path.isdir(os.path.dirname(args.plot)):
            parser.error("--plot: directory %s does not exist" % os.path.dirname(args.plot))

    import fastsoftmax as fs

    if args.threads < 0:
        parser.error("--threads must be >= 0")
    restore = _thread_setting(fs)
    try:
        if args.threads:
            fs.set_num_threads(args.threads)
        return _run(args, out, fs)
    finally:
        fs.set_num_threads(restore)


def _thread_setting(fs):
    """The argument of ``fs.set_num_threads`` that restores the current setting (0: the default)."""
    before = fs.get_num_threads()
    fs.set_num_threads(0)
    return 0 if fs.get_num_threads() == before else before


def _run(args, out, fs):
    mode = ("sampled softmax (sampled_softmax_loss) vs full softmax (cross_entropy)" if args.sampled else
            "multi-label (BCEWithLogitsLoss)" if args.multilabel else "multi-class (CrossEntropyLoss)")
    print("fastsoftmax %s demo: %s; fastsoftmax threads: %d" % (fs.__version__, mode, fs.get_num_threads()),
          file=out)
    t0 = time.perf_counter()
    if args.sampled:
        ok, rows, verdict = run_sampled(args, out)
        if args.plot:
            plot_sampled(rows, args.plot, args.num_sampled, out)
    else:
        if args.multilabel:
            ok, results = run_multilabel(args, out)
            metric_label = "macro-F1"
        else:
            ok, results = run_multiclass(args, out)
            metric_label = "accuracy"
        _summary(results, metric_label, out)
        if args.plot:
            plot(results, args.plot, metric_label, out)
        verdict = "fastsoftmax and NumPy runs agree" if ok else "MISMATCH: fastsoftmax and NumPy runs disagree"
    print("%s (total %.1f s)" % (verdict, time.perf_counter() - t0), file=out, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
