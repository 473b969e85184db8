"""Fused linear + cross-entropy (fs.linear_cross_entropy): time and peak memory against the unfused
composition, PyTorch, and the matrix products alone.

    python benchmarks/linear_ce.py                 # N=8192, D=1024, C=32000 (the first bar)
    python benchmarks/linear_ce.py --large         # N=16384, D=512, C=128256 (the second bar)
    python benchmarks/linear_ce.py --rounds 3 --n 2048   # smaller, for a quick look

Every case runs in a process of its own (its peak memory is its own), started once: inputs made
and touched, one call on a tiny problem to load the libraries, then one untimed call of the case
(the first call's peak: with the BLAS library's own packing buffers, which its first large product
touches and the process keeps). Then rounds: in each, every process makes one call in turn (the
order rotated from round to round, a pause before each call so that no thread of the last call
still spins), so that the cases share the machine's slow and fast moments alike; a time
measured case by case, one process after the other, moved by 5-10% from run to run on a shared
machine. Reported: the median time over the rounds, and each call's peak resident set above its
start, less the gradients it returned, in MiB: the first call's, and the largest of the timed
calls' (what a call adds in a training loop). float32, 2 threads (ours and BLAS's; PyTorch's
set_num_threads(2)).

The cases:
  ours        fs.linear_cross_entropy(x, W, t, bias=b, return_grad=True)
  unfused     logits = x @ W.T + b; fs.cross_entropy(logits, t, return_grad=True, out=logits);
              G @ W, G.T @ x, G.sum(0)
  torch       F.linear + F.cross_entropy, backward (when PyTorch is installed)
  products    the three products alone, whole, with NumPy (x @ W.T, G @ W, G.T @ x with a
              preallocated G)
  torch_products  the same three products with PyTorch
  chunked     the three products chunk by chunk (ours' chunks) into preallocated buffers, with
              the BLAS ours uses (NumPy's own gemm through ctypes, else SciPy's; the classifier's
              gradient with beta = 1)
The bars (issue 15): small case, peak <= 1/16 of the N x C float32 logits and time <= 1.05x
unfused and <= torch; large case, peak under 2 GB and time <= 1.1x chunked (peaks: the later
calls').
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def _status(field):
    """A field of /proc/self/status in bytes (VmRSS: resident now; VmHWM: its peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak():
    """Start VmHWM afresh from the resident set now (Linux 4.0+: clear_refs 5)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def setup_case(case, n, d, c):
    """The inputs of a case and its call (a function returning the loss and the gradients)."""
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    import fastsoftmax as fs
    from fastsoftmax import linear

    fs.set_num_threads(2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d), dtype=np.float32)
    w = rng.standard_normal((c, d), dtype=np.float32) * np.float32(d ** -0.5)
    b = np.zeros(c, np.float32)
    t = rng.integers(0, c, n)
    chunk = linear.default_chunk_size(n, c, np.float32)

    if case == "ours":
        def call():
            return fs.linear_cross_entropy(x, w, t, bias=b, return_grad=True)
    elif case == "unfused":
        def call():
            logits = x @ w.T
            logits += b
            loss, g = fs.cross_entropy(logits, t, return_grad=True, out=logits)
            return loss, (g @ w, g.T @ x, g.sum(axis=0))
    elif case == "torch":
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(2)
        xt, wt, bt, tt = (torch.from_numpy(a) for a in (x, w, b, t))

        def call():
            xg, wg, bg = (a.detach().requires_grad_() for a in (xt, wt, bt))
            loss = F.cross_entropy(F.linear(xg, wg, bg), tt)
            loss.backward()
            return loss, (xg.grad, wg.grad, bg.grad)
    elif case == "torch_products":
        import torch

        torch.set_num_threads(2)
        xt, wt = torch.from_numpy(x), torch.from_numpy(w)
        gt = torch.empty((n, c))

        def call():
            torch.matmul(xt, wt.T, out=gt)
            return None, (gt @ wt, gt.T @ xt)
    elif case == "products":
        g = np.empty((n, c), np.float32)

        def call():
            np.matmul(x, w.T, out=g)
            return None, (g @ w, g.T @ x)
    elif case == "chunked":
        rows = np.empty((chunk, c), np.float32)
        blas = linear._products(w, np.float32)  # the BLAS ours uses (linear._products)

        def call():
            d_x, d_w = np.empty((n, d), np.float32), np.empty((c, d), np.float32)
            for r0 in range(0, n, chunk):
                r1 = min(n, r0 + chunk)
                blk = rows[: r1 - r0]
                blas.logits(x[r0:r1], blk)
                blas.d_inputs(blk, d_x[r0:r1])
                blas.add_d_classifier(d_w, blk, x[r0:r1], r0 == 0)
            return None, (d_x, d_w)
    else:
        raise ValueError(case)

    # load the libraries and start their threads on a tiny problem of the same kind
    small = (x[:8], w[:16], b[:16], t[:8] % 16)
    if case == "ours":
        fs.linear_cross_entropy(*small[:2], small[3], bias=small[2], return_grad=True)
    else:
        np.matmul(small[0], small[1].T)
        fs.cross_entropy(np.zeros((8, 16), np.float32), small[3], return_grad=True)
    return call


def one_call(call):
    """{"time": s, "peak_mib": peak resident set above the start less the returned gradients}."""
    _reset_peak()
    before = _status("VmRSS")
    t0 = time.perf_counter()
    result = call()
    elapsed = time.perf_counter() - t0
    grads = sum(np.asarray(a).nbytes for a in result[1] if a is not None)  # the returned gradients
    peak = (_status("VmHWM") - before - grads) / 2**20
    del result  # freed before the next call
    return {"time": elapsed, "peak_mib": peak}


def serve(case, n, d, c):
    """The child: set the case up, make its first (untimed) call, then one call per line "call"
    on stdin, each answered by a JSON line on stdout."""
    call = setup_case(case, n, d, c)
    print(json.dumps(one_call(call)), flush=True)
    for line in sys.stdin:
        if line.strip() != "call":
            break
        print(json.dumps(one_call(call)), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large", action="store_true", help="N=16384, D=512, C=128256")
    ap.add_argument("--n", type=int)
    ap.add_argument("--d", type=int)
    ap.add_argument("--c", type=int)
    ap.add_argument("--rounds", type=int, default=7, help="timed calls per case, one per round")
    ap.add_argument("--pause", type=float, default=0.5, help="seconds before each call (default %(default)s)")
    ap.add_argument("--cases", default=None, help="comma-separated subset")
    ap.add_argument("--run", help=argparse.SUPPRESS)  # one case, in a child process
    args = ap.parse_args()
    n, d, c = (16384, 512, 128256) if args.large else (8192, 1024, 32000)
    n, d, c = args.n or n, args.d or d, args.c or c
    if args.run:
        serve(args.run, n, d, c)
        return
    cases = args.cases.split(",") if args.cases else (
        ["ours", "chunked"] if args.large else ["ours", "unfused", "torch", "products", "torch_products"])
    try:
        import torch  # noqa: F401
    except ImportError:
        cases = [k for k in cases if not k.startswith("torch")]
    procs, first = {}, {}
    for k in cases:  # one at a time, so that each first call has the machine to itself
        procs[k] = subprocess.Popen([sys.executable, __file__, "--run", k, "--n", str(n), "--d", str(d),
                                     "--c", str(c)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        first[k] = json.loads(procs[k].stdout.readline())
    results = {k: [] for k in cases}
    try:
        for r in range(args.rounds):
            for k in cases[r % len(cases):] + cases[:r % len(cases)]:
                time.sleep(args.pause)
                procs[k].stdin.write("call\n")
                procs[k].stdin.flush()
                results[k].append(json.loads(procs[k].stdout.readline()))
    finally:
        for p in procs.values():
            p.stdin.close()
            p.wait()
    logits_mib = n * c * 4 / 2**20
    print(f"N={n} D={d} C={c} float32, 2 threads; {args.rounds} rounds, each a call of every case in turn, "
          f"each case a process of its own; the N x C logits: {logits_mib:.0f} MiB")
    base = statistics.median(r["time"] for r in results[cases[0]])
    for k in cases:
        times = [r["time"] for r in results[k]]
        tm = statistics.median(times)
        steady = max(r["peak_mib"] for r in results[k])
        print(f"  {k:14s} {tm:8.3f} s  ({tm / base:5.2f}x {cases[0]}; {min(times):.3f}-{max(times):.3f})   peak "
              f"above inputs and grads: first call {first[k]['peak_mib']:7.1f} MiB, later calls {steady:7.1f} MiB "
              f"({steady / logits_mib:.3f} of the logits)")
    if len(cases) > 1:  # the ratio of each round's pair: the machine's moments cancel
        for k in cases[1:]:
            pair = statistics.median(a["time"] / b["time"] for a, b in zip(results[cases[0]], results[k]))
            print(f"  {cases[0]} / {k}, median of the rounds' ratios: {pair:.3f}")


if __name__ == "__main__":
    main()
