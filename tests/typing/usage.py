"""What a typed user of fastsoftmax writes: mypy --strict must pass on this file, with the types
asserted below (tests/test_typing.py runs it)."""

from typing import Any

from typing_extensions import assert_type

import numpy as np
from numpy.typing import NDArray

import fastsoftmax as fs

x = np.zeros((4, 3), np.float32)
t = np.array([0, 1, 2, 1])
FloatArray = NDArray[np.floating[Any]]

assert_type(fs.softmax(x), FloatArray)
assert_type(fs.log_softmax(x, axis=0), FloatArray)
assert_type(fs.logsumexp(x), FloatArray)
assert_type(fs.logsumexp(x, axis=None, keepdims=True), FloatArray)
assert_type(fs.logsumexp(x, (0, 1), b=x, return_sign=True), tuple[FloatArray, FloatArray])
assert_type(fs.softmax([1, 2, 3], axis=None), FloatArray)
assert_type(fs.cross_entropy(x, t), np.floating[Any])
assert_type(fs.cross_entropy(x, t, reduction="sum", label_smoothing=0.1), np.floating[Any])
assert_type(fs.cross_entropy(x, t, reduction="none"), FloatArray)
assert_type(fs.cross_entropy(x, t, return_grad=True), tuple[np.floating[Any], FloatArray])
loss, grad = fs.cross_entropy(x, t, return_grad=True, out=x)
assert_type(loss, np.floating[Any])
rows, grad2 = fs.cross_entropy(x, t, reduction="none", return_grad=True)
assert_type(rows, FloatArray)
assert_type(fs.binary_cross_entropy_with_logits(x, x > 0), np.floating[Any])
assert_type(fs.binary_cross_entropy_with_logits(x, x, reduction="none", return_grad=True), tuple[FloatArray, FloatArray])
assert_type(fs.softmax_backward(x, x), FloatArray)

w = np.zeros((10, 3), np.float32)
h = np.zeros((4, 3), np.float32)
assert_type(fs.linear_cross_entropy(h, w, t), np.floating[Any])
lin_loss, g = fs.linear_cross_entropy(h, w, t, return_grad=True, chunk_size=2)
assert_type(g, fs.LinearGrads)
assert_type(g.classifier, FloatArray)

y = np.zeros((4, 1), np.int64)
s_loss, sg = fs.sampled_softmax_loss(w, None, y, h, 4, 10, rng=0, return_grad=True)
assert_type(sg, fs.SampledGrads)
assert_type(sg.ids, NDArray[np.int64])
cand, true_count, sampled_count = fs.sampling.log_uniform_candidate_sampler(y, 1, 4, True, 10, rng=0)
assert_type(cand, NDArray[np.int64])

ce = fs.CrossEntropyLoss(np.ones(3), label_smoothing=0.1)
ce(x, t)
assert_type(ce.backward(), FloatArray)
ce_inplace = fs.CrossEntropyLoss(axis=0, inplace=True)
assert_type(ce_inplace.inplace, bool)
bce = fs.BCEWithLogitsLoss(pos_weight=np.ones(3), reduction="none", inplace=True)
bce(x.copy(), np.zeros((4, 3)))
assert_type(bce.backward(np.ones((4, 3))), FloatArray)
lin = fs.LinearCrossEntropyLoss(reduction="sum")
lin(h, w, t)
assert_type(lin.backward(2.0), fs.LinearGrads)
fs.set_num_threads(2)
assert_type(fs.get_num_threads(), int)
