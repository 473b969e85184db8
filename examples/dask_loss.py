"""The cross-entropy and its gradient of a chunked Dask array of logits, block by block.

When a batch of logits outgrows one machine's memory, Dask holds it as blocks of rows. The loss
and the gradient need one number from the whole batch, the divisor of the mean (the sum of the
class weights of the targets that are not ignored), and otherwise come from each block alone:
the fused kernel gives each block's loss sum and the gradient of that sum, which the divisor
scales. Nothing here is specific to one machine: the same graph runs on a distributed cluster.

    python examples/dask_loss.py          # 200,000 x 1,000 float32 logits in 20 blocks, local scheduler
"""
import argparse

import dask.array as da
import numpy as np

import fastsoftmax as fs


def cross_entropy_dask(logits, target, weight=None, ignore_index=-100, label_smoothing=0.0):
    """``(loss, grad)`` of the mean cross-entropy of a Dask array of logits (N, C), chunked along
    the rows only, and its targets (N,) chunked alike; ``loss`` is a 0-d Dask array and ``grad``
    a Dask array of the logits' shape and chunks. The same as ``fs.cross_entropy(logits, target,
    weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing, return_grad=True)``
    on the whole array, within float rounding."""
    if len(logits.chunks[1]) != 1:
        raise ValueError("chunk the logits along the rows only (one block spans the classes)")
    target = target.rechunk((logits.chunks[0],))
    c = logits.shape[1]
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    opts = dict(weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing)

    def divisor(t):  # the block's share of the mean's divisor
        kept = t != ignore_index
        return np.array([w[np.where(kept, t, 0)][kept].sum()])

    def loss_sum(x, t):  # the block's loss sum, in double
        return np.array([fs.cross_entropy(x, t[:, 0], reduction="sum", **opts)], np.float64)

    def grad(x, t, scale):  # the gradient of the block's loss sum, times 1 / divisor
        _, g = fs.cross_entropy(x, t[:, 0], reduction="sum", return_grad=True, **opts)
        g *= g.dtype.type(scale)
        return g

    t2 = target[:, None]  # blocks of (rows, 1), aligned with the logits' blocks
    denom = da.map_blocks(divisor, target, chunks=((1,) * target.numblocks[0],), dtype=np.float64).sum()
    sums = da.map_blocks(loss_sum, logits, t2, chunks=((1,) * logits.numblocks[0],), drop_axis=1, dtype=np.float64)
    loss = (sums.sum() / denom).astype(logits.dtype)
    # the divisor is one number: computed first, it reaches every block's gradient as a constant
    scale = 1.0 / float(denom.compute())
    g = da.map_blocks(grad, logits, t2, scale, dtype=logits.dtype)
    return loss, g


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--blocks", type=int, default=20)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.rows, args.classes), dtype=np.float32)
    t = rng.integers(0, args.classes, args.rows)
    t[::7] = -100  # some rows ignored
    weight = rng.uniform(0.5, 2.0, args.classes)
    rows = -(-args.rows // args.blocks)
    loss, grad = cross_entropy_dask(da.from_array(x, chunks=(rows, args.classes)), da.from_array(t, chunks=rows),
                                    weight=weight, label_smoothing=0.1)
    loss, grad = da.compute(loss, grad)  # Dask's local scheduler (threads); a cluster's client works the same
    ref_loss, ref_grad = fs.cross_entropy(x, t, weight=weight, label_smoothing=0.1, return_grad=True)
    print(f"{args.blocks} blocks of {rows} x {args.classes}: loss {float(loss):.6f}, one array: {float(ref_loss):.6f}")
    print(f"largest gradient difference: {float(np.max(np.abs(grad - ref_grad))):.3g} "
          f"(largest gradient entry {float(np.max(np.abs(ref_grad))):.3g})")
    return loss, grad, ref_loss, ref_grad


if __name__ == "__main__":
    main()
