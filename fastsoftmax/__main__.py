"""``python -m fastsoftmax``: check the installed kernels against the float64 reference.

``softmax``, ``log_softmax``, ``logsumexp`` and ``cross_entropy`` (with ``return_grad=True``),
then the loss family (``sigmoid``, binary cross-entropy, ``z_loss``, the backward
functions, float16), against ``fastsoftmax.reference`` on a few small shapes, in float32
and float64, with the accuracy bars of ``reference.TOLERANCES``.  One PASS/FAIL line per
check; the exit code is 1 if any check fails.

``python -m fastsoftmax bench [options]`` instead times the kernels against plain NumPy
and, when importable, PyTorch and JAX (:mod:`fastsoftmax.bench`; see ``--help``).

``python -m fastsoftmax demo [options]`` trains small NumPy networks with the loss objects
of ``fastsoftmax.losses`` against plain NumPy losses (see ``python -m fastsoftmax demo --help``).
"""

import argparse
import sys

import numpy as np

from .reference import TOLERANCES


# ----------------------------------------------------------------------------- checks


def _excess(got, ref, bound):
    """Largest |got - ref| / bound (<= 1 passes), with exact matching where ref is not finite.

    Non-finite reference values (NaN, +-inf) must be reproduced exactly (NaN for NaN, the
    same infinity); a non-finite result where the reference is finite fails.  A zero
    bound means the result must equal the reference exactly.
    Returns (worst ratio, number of failing elements).
    """
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), ref.shape)
    if got.shape != ref.shape:
        return np.inf, -1
    fin = np.isfinite(ref)
    bad = 0
    nf = ~fin
    if nf.any():
        same = (np.isnan(ref[nf]) & np.isnan(got[nf])) | (ref[nf] == got[nf])
        bad += int((~same).sum())
    if not fin.any():
        return (np.inf if bad else 0.0), bad
    err = np.abs(got[fin] - ref[fin])
    b = bound[fin]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(err == 0, 0.0, np.where(b > 0, err / b, np.inf))
    ratio = np.where(np.isnan(ratio), np.inf, ratio)  # NaN result for a finite reference
    bad += int((ratio > 1).sum())
    worst = float(ratio.max()) if ratio.size else 0.0
    if bad and worst <= 1:
        worst = np.inf
    return worst, bad


class _VariantError(Exception):
    def __init__(self, variant, exc):
        super().__init__("[%s] %s: %s" % (variant, type(exc).__name__, exc))


class _Checker:
    def __init__(self):
        self.n_pass = 0
        self.n_fail = 0

    def report(self, name, ok, detail):
        if ok:
            self.n_pass += 1
        else:
            self.n_fail += 1
        print("%s  %-50s %s" % ("PASS" if ok else "FAIL", name, detail), flush=True)

    def run(self, name, fn):
        """fn() -> list of (label, worst, bad) or raises; reports one line."""
        try:
            problems = []
            worst_all = 0.0
            for label, worst, bad in fn():
                worst_all = max(worst_all, worst)
                if bad < 0:
                    problems.append("%s: wrong shape" % label)
                elif bad:
                    problems.append("%s: %d bad element(s), worst err/bar %.3g" % (label, bad, worst))
            if problems:
                self.report(name, False, "; ".join(problems))
            else:
                self.report(name, True, "worst err/bar %.3g" % worst_all)
        except _VariantError as exc:
            self.report(name, False, "raised %s" % exc)
        except Exception as exc:  # report and continue
            self.report(name, False, "raised %s: %s" % (type(exc).__name__, exc))


def _check_inputs(shape, dtype, rng, specials):
    x64 = rng.standard_normal(shape) * 4.0
    if specials and len(shape) == 2 and shape[0] >= 4 and shape[1] >= 8:
        x64[0] += 1e4          # large offset: exercises the max subtraction
        x64[1] -= 1e4
        x64[2, 1::3] = -np.inf  # masked classes (target of row 2 is set to class 0 below)
        x64[3, :] = 0.0         # uniform row
    x = x64.astype(dtype)
    return x, x.astype(np.float64)  # reference sees exactly the same values


def _cast_check(got, dtype, label):
    if np.asarray(got).dtype != dtype:
        raise TypeError("%s has dtype %s, expected %s" % (label, np.asarray(got).dtype, dtype))


def _dtype_of_scalar(v, dtype, label):
    if not isinstance(v, np.generic) or v.dtype != dtype:
        raise TypeError("%s is %r (%s), expected a NumPy %s scalar"
                        % (label, v, type(v).__name__, np.dtype(dtype).name))


def _row_factors(logits_shape, axis, target, weight, ignore_index, reduction, eps, prob):
    """Per-row gradient scale r of the gradient bar: the largest factor that applies to the row.

    r_n = W_n * s, where W_n is the largest class weight that enters row n's loss
    (w[y_n] for index targets without smoothing, max_c w[c] with smoothing or probability
    targets; 1 without weight) and s = 1/D for "mean" (D = sum of w[y_n] over rows not
    ignored, or N for probability targets) and 1 for "sum"/"none".  Ignored rows: r = 0
    (their gradient must be exactly 0).  Returned with the batch shape.
    """
    C = logits_shape[axis]
    w = np.ones(C) if weight is None else np.asarray(weight, dtype=np.float64)
    batch = tuple(d for i, d in enumerate(logits_shape) if i != axis % len(logits_shape))
    if prob:
        r = np.full(batch, w.max() if C else 1.0)
        denom = float(np.prod(batch))
    else:
        t = np.asarray(target)
        ign = t == ignore_index
        ty = np.where(ign, 0, t)
        wy = w[ty] if C else np.zeros(batch)
        r = np.full(batch, w.max()) if eps > 0 else wy.astype(np.float64)
        r = np.where(ign, 0.0, r)
        denom = float(np.where(ign, 0.0, wy).sum())
    if reduction == "mean":
        r = r / denom if denom > 0 else np.zeros_like(r)
    return r


def run_checks():
    import fastsoftmax as fs
    from fastsoftmax import reference as ref

    print("== accuracy checks against fastsoftmax.reference (float64) ==", flush=True)
    chk = _Checker()
    rng = np.random.default_rng(20240611)
    cases = [((1, 1), -1), ((7, 5), -1), ((33, 1000), -1), ((5, 32000), -1),
             ((4, 6, 17), 1), ((0, 10), -1)]
    for dtype in (np.float32, np.float64):
        dt = np.dtype(dtype)
        rel, tiny = TOLERANCES[dt]["rel"], TOLERANCES[dt]["softmax_abs"]
        for shape, axis in cases:
            tag = "%s %s axis=%d" % (dt.name, "x".join(map(str, shape)), axis)
            x, x64 = _check_inputs(shape, dtype, rng, specials=True)

            def c_softmax():
                p = fs.softmax(x, axis=axis)
                _cast_check(p, dt, "softmax")
                pr = ref.softmax(x64, axis=axis)
                return [("softmax", *_excess(p, pr, rel * np.abs(pr) + tiny))]

            def c_log_softmax():
                lp = fs.log_softmax(x, axis=axis)
                _cast_check(lp, dt, "log_softmax")
                lr = ref.log_softmax(x64, axis=axis)
                return [("log_softmax", *_excess(lp, lr, rel * (1 + np.abs(lr))))]

            def c_logsumexp():
                v = fs.logsumexp(x, axis=axis)
                _cast_check(v, dt, "logsumexp")
                vr = ref.logsumexp(x64, axis=axis)
                return [("logsumexp", *_excess(v, vr, rel * (1 + np.abs(vr))))]

            chk.run("softmax            " + tag, c_softmax)
            chk.run("log_softmax        " + tag, c_log_softmax)
            chk.run("logsumexp          " + tag, c_logsumexp)

            C = shape[axis]
            batch = tuple(d for i, d in enumerate(shape) if i != axis % len(shape))
            if C == 0:
                continue
            target = rng.integers(0, C, size=batch, dtype=np.int64)
            if len(shape) == 2 and shape[0] >= 4 and shape[1] >= 8:
                target[2] = 0  # row 2 has -inf at classes 1, 4, 7, ...: keep the target finite
            # clean inputs (no -inf) for the smoothing / soft-label variants
            xc, xc64 = _check_inputs(shape, dtype, rng, specials=False)
            weight = rng.uniform(0.25, 2.0, size=C).astype(dtype)
            t_ign = target.copy()
            if t_ign.size >= 3:
                t_ign.reshape(-1)[::3] = -100
            probs = rng.dirichlet(np.ones(C), size=batch)  # float64, sums to 1 along last axis
            probs = np.moveaxis(probs, -1, axis).astype(dtype)

            variants = [
                ("mean", x, x64, target, {}, False),
                ("sum weight+ignore+smooth=0.1", xc, xc64, t_ign,
                 dict(reduction="sum", weight=weight, label_smoothing=0.1), False),
                ("mean weight+ignore", xc, xc64, t_ign, dict(weight=weight), False),
                ("none soft-labels+smooth=0.05", xc, xc64, probs,
                 dict(reduction="none", label_smoothing=0.05), True),
            ]

            def c_ce(variants=variants):
                results = []
                for vname, xx, xx64, tt, kw, prob in variants:
                    red = kw.get("reduction", "mean")
                    try:
                        loss, grad = fs.cross_entropy(xx, tt, axis=axis, return_grad=True, **kw)
                        kw64 = dict(kw)
                        if "weight" in kw64:
                            kw64["weight"] = kw64["weight"].astype(np.float64)
                        tt_ref = tt.astype(np.float64) if prob else tt
                        lr, gr = ref.cross_entropy(xx64, tt_ref, axis=axis, return_grad=True, **kw64)
                        _cast_check(grad, dt, "grad")
                        if red == "none":
                            _cast_check(loss, dt, "loss")
                        else:
                            _dtype_of_scalar(loss, dt, "loss")
                    except Exception as exc:
                        raise _VariantError(vname, exc) from exc
                    r = _row_factors(xx.shape, axis, tt, kw.get("weight"), -100, red,
                                     kw.get("label_smoothing", 0.0), prob)
                    r = np.expand_dims(r, axis)
                    lr = np.asarray(lr, dtype=np.float64)
                    gr = np.asarray(gr, dtype=np.float64)
                    results.append(("[%s] loss" % vname, *_excess(loss, lr, rel * (1 + np.abs(lr)))))
                    results.append(("[%s] grad" % vname, *_excess(grad, gr, rel * (np.abs(gr) + r))))
                return results

            chk.run("cross_entropy+grad " + tag, c_ce)
    _check_loss_family(chk, fs, ref, rng)
    print("checks: %d passed, %d failed" % (chk.n_pass, chk.n_fail), flush=True)
    return chk.n_fail == 0


def _f16_ulps(got, ref64):
    """Largest distance in float16 ulps between got (float16) and ref64 rounded to float16."""
    r = ref64.astype(np.float16)
    g = np.asarray(got, np.float16)
    fin = np.isfinite(r)
    same_special = np.array_equal(np.isnan(g), np.isnan(r)) and np.array_equal(g[~fin & ~np.isnan(r)],
                                                                                  r[~fin & ~np.isnan(r)])
    if not fin.any():
        return (0.0 if same_special else np.inf), 0 if same_special else 1
    ulp = np.spacing(np.abs(r[fin])).astype(np.float64)
    d = np.abs(g[fin].astype(np.float64) - r[fin].astype(np.float64)) / ulp
    worst = float(d.max())
    bad = int((d > TOLERANCES[np.dtype(np.float16)]["ulp"]).sum()) + (0 if same_special else 1)
    return worst, bad


def _check_loss_family(chk, fs, ref, rng):
    """The loss family: sigmoid, BCE with logits, z_loss, the backward functions, float16."""
    for dtype in (np.float32, np.float64):
        dt = np.dtype(dtype)
        rel, tiny = TOLERANCES[dt]["rel"], TOLERANCES[dt]["softmax_abs"]
        for shape in ((7, 5), (33, 1000), (3, 20001)):
            tag = "%s %s" % (dt.name, "x".join(map(str, shape)))
            x, x64 = _check_inputs(shape, dtype, rng, specials=False)
            x[0, 0], x[-1, -1] = 1e4, -1e4
            x64 = x.astype(np.float64)

            def c_sigmoid():
                s = fs.sigmoid(x)
                _cast_check(s, dt, "sigmoid")
                sr = ref.sigmoid(x64)
                return [("sigmoid", *_excess(s, sr, rel * np.abs(sr) + tiny))]

            def c_bce():
                t = rng.random(shape).astype(dtype)
                w = rng.uniform(0.25, 2.0, size=(shape[0], 1)).astype(dtype)
                pw = rng.uniform(0.5, 4.0, size=shape[-1]).astype(dtype)
                out = []
                for red in ("mean", "sum", "none"):
                    loss, grad = fs.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw, reduction=red,
                                                                     return_grad=True)
                    lr, gr = ref.binary_cross_entropy_with_logits(x64, t.astype(np.float64), weight=w.astype(np.float64),
                                                                  pos_weight=pw.astype(np.float64), reduction=red,
                                                                  return_grad=True)
                    r = np.abs(w.astype(np.float64)) * np.maximum(1.0, pw) / (x.size if red == "mean" else 1)
                    out.append(("[%s] loss" % red, *_excess(loss, lr, rel * (1 + np.abs(lr)))))
                    out.append(("[%s] grad" % red, *_excess(grad, gr, rel * (np.abs(gr) + r))))
                return out

            def c_zloss():
                t = rng.integers(0, shape[-1], size=shape[0])
                w = rng.uniform(0.25, 2.0, size=shape[-1]).astype(dtype)
                loss, grad = fs.cross_entropy(x, t, weight=w, z_loss=1e-3, return_grad=True)
                lr, gr = ref.cross_entropy(x64, t, weight=w.astype(np.float64), z_loss=1e-3, return_grad=True)
                lse = np.abs(ref.logsumexp(x64))
                r = np.expand_dims(_row_factors(shape, -1, t, w, -100, "mean", 0.0, False) * (1 + 2e-3 * lse), -1)
                return [("loss", *_excess(loss, lr, rel * (1 + abs(lr)))),
                        ("grad", *_excess(grad, gr, rel * (np.abs(gr) + r)))]

            def c_backward():
                g = rng.standard_normal(shape).astype(dtype)
                g64 = g.astype(np.float64)
                p, lp = fs.softmax(x), fs.log_softmax(x)
                p64, lp64 = p.astype(np.float64), lp.astype(np.float64)
                sb, lb = fs.softmax_backward(p, g), fs.log_softmax_backward(lp, g)
                sr, lr = ref.softmax_backward(p64, g64), ref.log_softmax_backward(lp64, g64)
                sbar = rel * p64 * (np.abs(g64) + (p64 * np.abs(g64)).sum(-1, keepdims=True)) + tiny
                lbar = rel * (np.abs(g64) + np.exp(lp64) * np.abs(g64).sum(-1, keepdims=True)) + tiny
                return [("softmax_backward", *_excess(sb, sr, sbar)), ("log_softmax_backward", *_excess(lb, lr, lbar))]

            chk.run("sigmoid            " + tag, c_sigmoid)
            chk.run("bce_with_logits    " + tag, c_bce)
            chk.run("cross_entropy z    " + tag, c_zloss)
            chk.run("softmax backward   " + tag, c_backward)

    for shape in ((7, 5), (33, 1000), (3, 20001)):
        tag = "float16 %s" % "x".join(map(str, shape))
        x = (rng.standard_normal(shape) * 4).astype(np.float16)
        x64 = x.astype(np.float64)

        def c_half():
            out = [("softmax (f16 ulps)", *_f16_ulps(fs.softmax(x), ref.softmax(x64))),
                   ("log_softmax (f16 ulps)", *_f16_ulps(fs.log_softmax(x), ref.log_softmax(x64))),
                   ("logsumexp (f16 ulps)", *_f16_ulps(fs.logsumexp(x), ref.logsumexp(x64)))]
            t = rng.integers(0, shape[-1], size=shape[0])
            loss, grad = fs.cross_entropy(x, t, return_grad=True)
            _dtype_of_scalar(loss, np.float32, "float16 cross_entropy loss")
            _cast_check(grad, np.float16, "float16 cross_entropy grad")
            lr = ref.cross_entropy(x64, t)
            rel32 = TOLERANCES[np.dtype(np.float32)]["rel"]  # float16 losses are float32
            out.append(("cross_entropy loss", *_excess(loss, lr, rel32 * (1 + abs(lr)))))
            return out

        chk.run("float16            " + tag, c_half)


# ----------------------------------------------------------------------------- command line


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "bench":
        from fastsoftmax import bench

        return bench.main(argv[1:], prog="python -m fastsoftmax bench")
    if argv and argv[0] == "demo":
        from fastsoftmax import demo

        return demo.main(argv[1:], prog="python -m fastsoftmax demo")
    parser = argparse.ArgumentParser(
        prog="python -m fastsoftmax",
        description="Check the fastsoftmax kernels against the float64 reference (fastsoftmax.reference) with "
                    "the accuracy bars of fastsoftmax.reference.TOLERANCES; the exit status is 1 if a check "
                    "fails.  'python -m fastsoftmax bench --help': a short benchmark against NumPy, PyTorch "
                    "and JAX; 'python -m fastsoftmax demo --help': train NumPy networks with the loss objects.")
    parser.parse_args(argv)

    from fastsoftmax import bench

    print("fastsoftmax self-check", flush=True)
    for line in bench.machine_header(libraries=()):
        print(line, flush=True)
    warning = bench.busy_warning(consequence="timings (python -m fastsoftmax bench) would be slower and noisier "
                                             "than on an idle machine")
    if warning:
        print(warning, flush=True)
    print(flush=True)
    try:
        ok = run_checks()
    except Exception as exc:  # e.g. the package or its reference cannot be imported
        print("FAIL  checks could not run: %s: %s" % (type(exc).__name__, exc), flush=True)
        ok = False
    print("\nto time the kernels: python -m fastsoftmax bench", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
