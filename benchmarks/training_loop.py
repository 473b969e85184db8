#!/usr/bin/env python
"""fastsoftmax where users run it: inside a NumPy training loop, next to OpenBLAS's threads.

A kernel timed alone, call after call, is not the user's experience.  In a training loop
the loss sits between matrix products: OpenBLAS's worker threads keep spinning for a while
after a GEMM (and compete with the loss kernel's threads for the cores), and a thread
pool's helpers that spin after a loss call slow the next GEMM.  So this script times the
loss *and the whole step* of real loops, with DEFAULT settings: it sets no environment
variable (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, OMP_WAIT_POLICY, ...); every measured
process is a fresh child that inherits this process's environment unchanged.

Groups (``--only``):
  mlp     one-hidden-layer MLP step, float32, D=256 input features, (batch, hidden, classes)
          = 512/512/1000, 256/256/10000, 2048/512/100: H = relu(X @ W1), Z = H @ W2, loss
          and dZ, dW2 = H.T @ dZ, dH = dZ @ W2.T * (H > 0), dW1 = X.T @ dH, SGD.  Loss:
          fs.cross_entropy(Z, t, return_grad=True, out=Z) with the default thread count,
          the same after fs.set_num_threads(1), or five lines of NumPy.  5 warm-up steps,
          then --steps timed steps; per child the median loss time and step time.
  readme  the loop of README.md's "Loss objects for NumPy models" as a user copies it
          (100 steps, no warm-up): total time in loss_fn() + backward(), default vs 1 thread.
  busy    2048x32000 float32 fs.cross_entropy(x, t, return_grad=True, out=g) while another
          process spins (a `while True: pass` in Python): 1 warm-up + 7 calls, median.

Every (group, configuration, variant) runs in a fresh subprocess, in interleaved rounds
(every job once per round, order rotated); reported: the median over rounds of the
per-round medians, and the min-max over rounds.  Ratios are of those medians (the range
of the per-round ratios alongside).  The "Noise" line gives the CPU that other processes
used meanwhile (from /proc/stat): on a shared machine, judge the numbers by it.  Writes
<out>/training_loop.md and prints it.

    python benchmarks/training_loop.py                     # 5 rounds, about 2 minutes on 2 cores
    python benchmarks/training_loop.py --rounds 9 --steps 100 --only mlp,busy --strict
"""

import argparse
import hashlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
D = 256
MLP_CONFIGS = ["512x512x1000", "256x256x10000", "2048x512x100"]
WARMUP = 5
LR = 1e-3
BUSY_CALLS = 7
LABELS = {"default": "default", "1thread": "1 thread", "numpy": "NumPy"}
GROUPS = ("mlp", "readme", "busy")
# `while True: pass`, which also ends if this process dies without killing it (SIGKILL)
SPIN = "import os, sys\nwhile os.getppid() == int(sys.argv[1]):\n    for _ in range(10**6): pass"


# ------------------------------------------------------------------ children (fresh processes)

def _imports(variant="default"):
    import numpy as np
    try:
        import fastsoftmax as fs
    except ImportError:  # a checkout with an in-place build
        sys.path.insert(0, ROOT)
        import fastsoftmax as fs
    if variant == "1thread":
        fs.set_num_threads(1)
    return np, fs


def child_mlp(config, variant, steps):
    np, fs = _imports(variant)
    n, h, c = map(int, config.split("x"))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, D), dtype=np.float32)
    t = rng.integers(0, c, size=n)
    W1 = rng.standard_normal((D, h), dtype=np.float32) * np.float32(D ** -0.5)
    W2 = rng.standard_normal((h, c), dtype=np.float32) * np.float32(h ** -0.5)
    rows = np.arange(n)

    def numpy_loss(Z, t):  # mean cross-entropy and its gradient, float32, as a user writes it
        m = Z.max(axis=1, keepdims=True)
        e = np.exp(Z - m)
        s = e.sum(axis=1, keepdims=True)
        g = e / s
        g[rows, t] -= 1
        return np.mean(np.log(s[:, 0]) + m[:, 0] - Z[rows, t]), g / n

    def fs_loss(Z, t):
        return fs.cross_entropy(Z, t, return_grad=True, out=Z)

    loss_of = numpy_loss if variant == "numpy" else fs_loss
    loss_s, step_s = [], []
    for i in range(WARMUP + steps):
        t0 = time.perf_counter()
        H = np.maximum(X @ W1, 0)
        Z = H @ W2
        t1 = time.perf_counter()
        loss, dZ = loss_of(Z, t)
        t2 = time.perf_counter()
        dW2 = H.T @ dZ
        dH = (dZ @ W2.T) * (H > 0)
        dW1 = X.T @ dH
        W1 -= LR * dW1
        W2 -= LR * dW2
        t3 = time.perf_counter()
        if i >= WARMUP:
            loss_s.append(t2 - t1)
            step_s.append(t3 - t0)
    return {"loss_ms": 1e3 * statistics.median(loss_s), "step_ms": 1e3 * statistics.median(step_s),
            "final_loss": float(loss), "fs_threads": fs.get_num_threads()}


def child_readme(variant):
    np, fs = _imports(variant)
    loss_total = 0.0
    t_start = time.perf_counter()
    # ---- README.md, "Loss objects for NumPy models", verbatim except for the two timers
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2048, 64), dtype=np.float32)
    y = rng.integers(0, 1000, size=2048)                    # class indices
    W = np.zeros((64, 1000), np.float32)
    b = np.zeros(1000, np.float32)

    loss_fn = fs.CrossEntropyLoss(label_smoothing=0.1)      # options checked here, once
    for step in range(100):
        logits = X @ W + b
        t0 = time.perf_counter()
        loss = loss_fn(logits, y)       # one fused kernel call: the loss, and d loss/d logits kept
        dlogits = loss_fn.backward()    # that gradient: no recomputation, no copy
        loss_total += time.perf_counter() - t0
        W -= 1.0 * (X.T @ dlogits)      # SGD step
        b -= 1.0 * dlogits.sum(axis=0)
    # ----
    return {"loss_ms": 1e3 * loss_total, "loop_ms": 1e3 * (time.perf_counter() - t_start),
            "final_loss": float(loss), "fs_threads": fs.get_num_threads()}


def child_busy(shape, variant):
    np, fs = _imports(variant)
    n, c = map(int, shape.split("x"))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c), dtype=np.float32)
    t = rng.integers(0, c, size=n)
    g = np.empty_like(x)
    fs.cross_entropy(x, t, return_grad=True, out=g)  # warm-up
    times = []
    for _ in range(BUSY_CALLS):
        t0 = time.perf_counter()
        fs.cross_entropy(x, t, return_grad=True, out=g)
        times.append(time.perf_counter() - t0)
    return {"call_ms": 1e3 * statistics.median(times), "fs_threads": fs.get_num_threads()}


def child_info():
    np, fs = _imports()
    info = {"numpy": np.__version__, "fastsoftmax": fs.backend_info(),
            "extension": fs._kernels.__file__, "blas": "threadpoolctl not importable"}
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = "; ".join("%s (%s), %s threads" % (
            p["internal_api"], ", ".join(str(p[k]) for k in ("prefix", "version", "threading_layer", "architecture")
                                         if p.get(k)), p["num_threads"]) for p in threadpool_info())
    except ImportError:
        pass
    return info


# ------------------------------------------------------------------ parent

def _cpu_seconds():
    """(CPU seconds used by the whole machine, by this process and its waited-for children)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        machine = (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    except (OSError, ValueError):
        machine = float("nan")
    t = os.times()
    return machine, t.user + t.system + t.children_user + t.children_system


def run_child(argv, busy=False):
    """The JSON result of a fresh `python training_loop.py --child ...` (one retry: the
    extension may be rebuilt under us), with "others": the cores that other processes of
    the machine used meanwhile.  With ``busy``, a spinning process runs meanwhile."""
    spinner = subprocess.Popen([sys.executable, "-c", SPIN, str(os.getpid())]) if busy else None
    try:
        for _ in range(2):
            (m0, own0), w0 = _cpu_seconds(), time.perf_counter()
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child"] + argv,
                               capture_output=True, text=True)
            if p.returncode == 0:
                if spinner is not None:
                    spinner.kill()
                    spinner.wait()
                (m1, own1), w1 = _cpu_seconds(), time.perf_counter()
                result = json.loads(p.stdout.strip().splitlines()[-1])
                result["others"] = max(0.0, (m1 - m0) - (own1 - own0)) / (w1 - w0)
                return result
            time.sleep(2)
        raise RuntimeError("child %s failed (exit %d):\n%s" % (argv, p.returncode, p.stderr[-2000:]))
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()


def _rot(seq, r):
    r %= len(seq)
    return list(seq[r:]) + list(seq[:r])


def round_jobs(groups, r, args):
    """[(key, child argv, busy)] for round r: configurations and variants rotated by r."""
    jobs = []
    if "mlp" in groups:
        for cfg in _rot(args.configs, r):
            for v in _rot(["default", "1thread", "numpy"], r):
                jobs.append((("mlp", cfg, v), ["mlp", cfg, v, str(args.steps)], False))
    if "readme" in groups:
        for v in _rot(["default", "1thread"], r):
            jobs.append((("readme", "", v), ["readme", v], False))
    if "busy" in groups:
        for v in _rot(["default", "1thread"], r):
            jobs.append((("busy", args.busy_shape, v), ["busy", args.busy_shape, v], True))
    return jobs


def _ms(v):
    return "%.3f" % v if v < 10 else "%.1f" % v


def _cell(vals):
    return "%s (%s–%s)" % (_ms(statistics.median(vals)), _ms(min(vals)), _ms(max(vals))) if vals else "-"


def _file_id(path):
    try:
        with open(path, "rb") as f:
            return "%s, modified %s" % (hashlib.sha256(f.read()).hexdigest()[:12],
                                        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(path))))
    except OSError as e:
        return "unreadable (%s)" % e


def header(info, args, ext_before, ext_after, load_before):
    try:
        git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                             capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        git = "?"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    env = [k + "=" + v for k, v in sorted(os.environ.items())
           if k.startswith(("OMP_", "GOMP_", "KMP_", "OPENBLAS_", "MKL_", "BLIS_", "FASTSOFTMAX_"))]
    rows = [("CPU", "%s; nproc %d (%d available)" % (cpu, os.cpu_count(), len(os.sched_getaffinity(0)))),
            ("versions", "Python %s, NumPy %s" % (platform.python_version(), info["numpy"])),
            ("BLAS / thread pools (threadpoolctl)", info["blas"]),
            ("fastsoftmax.backend_info()", json.dumps(info["fastsoftmax"])),
            ("fastsoftmax build", "%s: %s; checkout %s" % (info["extension"], ext_before, git)),
            ("environment (thread variables)", ", ".join(env) or "none set (library defaults)"),
            ("method", "each job a fresh process; %d rounds, interleaved, order rotated; mlp: %d warm-up + "
             "%d timed steps; cells: median over rounds of the per-round medians (min–max over rounds)"
             % (args.rounds, WARMUP, args.steps)),
            ("load average (1 min) before / after", "%.2f / %.2f" % (load_before, os.getloadavg()[0])),
            ("date", time.strftime("%Y-%m-%d %H:%M %Z"))]
    if ext_after != ext_before:
        rows.append(("WARNING", "the extension changed during the run: now %s" % ext_after))
    return ["# fastsoftmax in a NumPy training loop", "",
            "Generated by `python benchmarks/training_loop.py %s`." % " ".join(sys.argv[1:]), "",
            "| | |", "|---|---|"] + ["| %s | %s |" % r for r in rows] + [""]


def report(res, args):
    """Markdown lines and the bars [(text, met)] from res[(group, cfg, variant)] = [per-round dicts]."""
    def vals(key, field):
        return [d[field] for d in res.get(key, [])]

    bars, out = [], []

    def bar(name, num, den, field, limit):
        a, b = vals(num, field), vals(den, field)
        if not a or not b:
            return
        ratio = statistics.median(a) / statistics.median(b)
        per_round = [x / y for x, y in zip(a, b)]
        met = ratio <= limit
        bars.append(("| %s | %.2f (%.2f–%.2f) | <= %.2f | %s |" % (
            name, ratio, min(per_round), max(per_round), limit, "MET" if met else "NOT MET"), met))

    if "mlp" in args.only:
        out += ["## MLP training step (ms per step)", "",
                "| batch x hidden x classes | loss default | loss 1 thread | loss NumPy "
                "| step default | step 1 thread | step NumPy | final loss (all variants) |",
                "|---|---:|---:|---:|---:|---:|---:|---|"]
        for cfg in args.configs:
            k = {v: ("mlp", cfg, v) for v in LABELS}
            finals = [f for v in LABELS for f in vals(k[v], "final_loss")]
            out.append("| %s | %s | %s |" % (cfg, " | ".join(_cell(vals(k[v], f)) for f in ("loss_ms", "step_ms")
                                                               for v in LABELS),
                                              "%.5g–%.5g" % (min(finals), max(finals)) if finals else "-"))
            bar("loss default / 1 thread, %s" % cfg, k["default"], k["1thread"], "loss_ms", 1.1)
            bar("step default / NumPy loss, %s" % cfg, k["default"], k["numpy"], "step_ms", 1.0)
            bar("step default / 1 thread, %s" % cfg, k["default"], k["1thread"], "step_ms", 1.05)
        if "256x256x10000" in args.configs:
            bar("loss default / 1 thread, 256x256x10000 (threads must pay)", ("mlp", "256x256x10000", "default"),
                ("mlp", "256x256x10000", "1thread"), "loss_ms", 0.85)
        out.append("")
    if "readme" in args.only:
        out += ["## README loss-object loop (100 steps, ms in total)", "",
                "| variant | time in loss_fn() + backward() | whole loop |", "|---|---:|---:|"]
        for v in ("default", "1thread"):
            out.append("| %s | %s | %s |" % (LABELS[v], _cell(vals(("readme", "", v), "loss_ms")),
                                             _cell(vals(("readme", "", v), "loop_ms"))))
        bar("README loop, loss default / 1 thread", ("readme", "", "default"), ("readme", "", "1thread"),
            "loss_ms", 1.1)
        out.append("")
    if "busy" in args.only:
        key = lambda v: ("busy", args.busy_shape, v)  # noqa: E731
        out += ["## %s fused CE (out=) next to a spinning process (ms per call)" % args.busy_shape, "",
                "| variant | median call |", "|---|---:|"]
        out += ["| %s | %s |" % (LABELS[v], _cell(vals(key(v), "call_ms"))) for v in ("default", "1thread")]
        bar("busy machine, %s default / 1 thread" % args.busy_shape, key("default"), key("1thread"), "call_ms", 1.2)
        out.append("")
    seen = {LABELS[v]: sorted({d["fs_threads"] for (_, _, w), ds in res.items() if w == v for d in ds})
            for v in ("default", "1thread")}
    out += ["fastsoftmax.get_num_threads() in the children: %s." % ", ".join("%s %s" % kv for kv in seen.items())]
    others = sorted(d["others"] for ds in res.values() for d in ds)
    if others:
        out += ["Noise: other processes used %.2f cores (median over jobs; max %.2f; %d of %d jobs above 0.25) "
                "of the machine's %d while the jobs ran." % (
                    statistics.median(others), others[-1], sum(o > 0.25 for o in others), len(others), os.cpu_count())]
    out.append("")
    out += ["## Bars", "", "| bar | ratio of medians (per-round range) | required | result |", "|---|---:|---:|---|"]
    out += [b[0] for b in bars]
    out += ["", "%d of %d bars met." % (sum(m for _, m in bars), len(bars)), ""]
    return out, bars


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5,  # 3 rounds missed bars on noise alone (benchmarks/README.md)
                   help="interleaved rounds (default %(default)s)")
    p.add_argument("--steps", type=int, default=60, help="timed MLP steps per child (default %(default)s)")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"),
                   help="directory for training_loop.md, '-' for none (default %(default)s)")
    p.add_argument("--only", default=",".join(GROUPS), help="groups: mlp,readme,busy (default all)")
    p.add_argument("--configs", default=",".join(MLP_CONFIGS), help="MLP BATCHxHIDDENxCLASSES list")
    p.add_argument("--busy-shape", default="2048x32000", help="NxC of the busy group (default %(default)s)")
    p.add_argument("--strict", action="store_true", help="exit status 1 when a bar is NOT MET")
    args = p.parse_args(argv)
    args.only = [g.strip() for g in args.only.split(",") if g.strip()]
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    if not set(args.only) <= set(GROUPS) or args.rounds < 1 or args.steps < 1:
        p.error("--only takes %s; --rounds and --steps must be >= 1" % ",".join(GROUPS))

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` kills the spinner
    load_before = os.getloadavg()[0]
    info = run_child(["info"])
    ext_before = _file_id(info["extension"])
    res = {}
    for r in range(args.rounds):
        for key, child_argv, busy in round_jobs(args.only, r, args):
            d = run_child(child_argv, busy)
            res.setdefault(key, []).append(d)
            print("round %d/%d  %-6s %-14s %-8s %s" % (r + 1, args.rounds, key[0], key[1], key[2], " ".join(
                "%s=%s" % (f, _ms(v)) for f, v in d.items() if f.endswith("_ms")) + " others=%.2f" % d["others"]),
                  file=sys.stderr, flush=True)
    lines, bars = report(res, args)
    text = "\n".join(header(info, args, ext_before, _file_id(info["extension"]), load_before) + lines)
    print(text)
    if args.out != "-":
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "training_loop.md"), "w") as f:
            f.write(text)
    return 1 if args.strict and not all(m for _, m in bars) else 0


def child_main(argv):
    kind = argv[0]
    if kind == "mlp":
        result = child_mlp(argv[1], argv[2], int(argv[3]))
    elif kind == "readme":
        result = child_readme(argv[1])
    elif kind == "busy":
        result = child_busy(argv[1], argv[2])
    else:
        result = child_info()
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child_main(sys.argv[2:])
    else:
        sys.exit(main())
