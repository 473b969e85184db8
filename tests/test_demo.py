"""``python -m fastsoftmax demo``: runs with tiny sizes, both runs agree, output format, options
(and ``--sampled``: the sampled-softmax model against the full-softmax one).

The demo's NumPy baselines are also checked against the float64 reference, and a
deliberately wrong baseline must make the demo report a mismatch (exit status 1).
"""

import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import _datasets, demo
from fastsoftmax import functional as F
from fastsoftmax import reference as ref

HAVE_BCE = hasattr(F, "binary_cross_entropy_with_logits")
needs_bce = pytest.mark.skipif(not HAVE_BCE, reason="fastsoftmax.binary_cross_entropy_with_logits not available")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(fastsoftmax.__file__)))

EPOCH_LINE = re.compile(r"^  epoch +(\d+)/(\d+)  train loss (\d+\.\d{4}) / (\d+\.\d{4})  "
                        r"test (accuracy|macro-F1) +(\d+\.\d\d)% / +(\d+\.\d\d)%  "
                        r"loss fwd\+bwd \d+\.\d{3} s / \d+\.\d{3} s$")
VERDICT_LINE = re.compile(r"^-- (.+): final test (accuracy|macro-F1) fastsoftmax (\d+\.\d\d)%, NumPy (\d+\.\d\d)%: "
                          r"(MATCH|MISMATCH) \((.*)\)$")
TIME_LINE = re.compile(r"^-- (.+): time in the loss \(fwd\+bwd\): fastsoftmax (\d+\.\d{3}) s, NumPy (\d+\.\d{3}) s: "
                       r"fastsoftmax (?:\d+\.\dx (?:faster|slower)|too short to compare) "
                       r"\(whole training steps \d+\.\d\d s vs \d+\.\d\d s\)$")
SUMMARY_ROW = re.compile(r"^(softmax regression|logistic regression|MLP \(\d+ hidden\)) +(\d+\.\d\d)% +(\d+\.\d\d)%  "
                         r"(yes|NO) +\d+\.\d{3} s +\d+\.\d{3} s   (?:\d+\.\dx (?:faster|slower)|too short to compare)$")

SAMPLED_ROW = re.compile(r"^ +(\d+) +(\d+\.\d{4}) +(\d+\.\d{4}) +(\d+\.\d{4}) +([+-]\d+\.\d\d)% +(\d+\.\d\d)% +"
                         r"(\d+\.\d\d)% +(\d+\.\d\d) +(\d+\.\d\d)$")
SAMPLED_SUMMARY_ROW = re.compile(r"^(sampled softmax|full softmax) +(\d+\.\d{4}) +(\d+\.\d\d)% +(\d+\.\d\d)$")
SAMPLED_VERDICT = re.compile(r"^held-out loss: the sampled-softmax model's is ([+-]\d+\.\d\d)% from the full-softmax "
                             r"model's \(tolerance ([\d.]+)%\): (MATCH|MISMATCH)$")
SAMPLED_SPEED = re.compile(r"^time per training step \(mean of (\d+) steps, evaluation excluded\): the sampled "
                           r"softmax step is \d+\.\dx (faster|slower) than the full softmax step$")


def run_demo(*argv):
    out = io.StringIO()
    status = demo.main(["--quick", "--no-progress", *argv], out=out)
    return status, out.getvalue()


def parse(text, epochs, metric):
    """Check the output's structure; return the per-model verdicts and summary rows."""
    lines = text.splitlines()
    epoch_lines = [m for m in map(EPOCH_LINE.match, lines) if m]
    verdicts = [m for m in map(VERDICT_LINE.match, lines) if m]
    times = [m for m in map(TIME_LINE.match, lines) if m]
    summary = [m for m in map(SUMMARY_ROW.match, lines) if m]
    n_models = len(verdicts)
    assert n_models >= 1, text
    assert len(epoch_lines) == n_models * epochs, text  # one line per epoch: both runs side by side
    assert all(int(m.group(2)) == epochs and m.group(5) == metric for m in epoch_lines)
    assert [int(m.group(1)) for m in epoch_lines] == list(range(1, epochs + 1)) * n_models
    assert len(times) == n_models and len(summary) == n_models, text
    assert "== summary ==" in text
    # both runs print the same losses and scores epoch by epoch (float32 rounding could move
    # the 4th decimal in principle; at these sizes it does not)
    for m in epoch_lines:
        assert m.group(3) == m.group(4) and m.group(6) == m.group(7), m.group(0)
    # the last epoch's scores are the verdict's; the summary rows repeat the verdict lines
    for k, v in enumerate(verdicts):
        last = epoch_lines[(k + 1) * epochs - 1]
        assert (last.group(6), last.group(7)) == (v.group(3), v.group(4))
    for v, s in zip(verdicts, summary):
        assert (v.group(1), v.group(3), v.group(4)) == (s.group(1), s.group(2), s.group(3))
        assert (v.group(5) == "MATCH") == (s.group(4) == "yes")
    return verdicts, summary


def parse_sampled(text, steps):
    """Check the structure of a --sampled output; return its table rows, summary rows and verdict."""
    lines = text.splitlines()
    assert "    step   train loss   held-out loss (full softmax)      held-out accuracy    ms per training step" \
        in lines
    rows = [m for m in map(SAMPLED_ROW.match, lines) if m]
    summary = [m for m in map(SAMPLED_SUMMARY_ROW.match, lines) if m]
    verdicts = [m for m in map(SAMPLED_VERDICT.match, lines) if m]
    speeds = [m for m in map(SAMPLED_SPEED.match, lines) if m]
    assert [int(m.group(1)) for m in rows] == steps, text  # one row per evaluation point
    assert [m.group(1) for m in summary] == ["sampled softmax", "full softmax"], text
    assert len(verdicts) == 1 and len(speeds) == 1 and int(speeds[0].group(1)) == steps[-1], text
    for m in rows:
        sampled, full = float(m.group(3)), float(m.group(4))
        assert abs(100 * (sampled / full - 1) - float(m.group(5))) <= 0.01 + 1e-9  # the difference column
        assert float(m.group(8)) > 0 and float(m.group(9)) > 0  # ms per step of both
    # the summary repeats the last row's held-out losses and accuracies
    last = rows[-1]
    assert (summary[0].group(2), summary[1].group(2)) == (last.group(3), last.group(4))
    assert (summary[0].group(3), summary[1].group(3)) == (last.group(6), last.group(7))
    return rows, summary, verdicts[0]


def test_demo_quick_runs_and_both_losses_agree():
    status, text = run_demo()
    verdicts, _ = parse(text, epochs=2, metric="accuracy")
    assert status == 0, text
    assert [v.group(1) for v in verdicts] == ["softmax regression", "MLP (16 hidden)"]
    for v in verdicts:
        assert v.group(5) == "MATCH" and v.group(3) == v.group(4)
        assert v.group(6).startswith("predictions differ on 0 of 240 test samples")
    assert text.startswith("fastsoftmax %s demo: multi-class (CrossEntropyLoss)" % fastsoftmax.__version__)
    assert "data: 960 train / 240 test samples, 8 features, 20 classes" in text
    assert text.rstrip().splitlines()[-1].startswith("fastsoftmax and NumPy runs agree (total ")
    # the MLP learns something even in two epochs (20 classes: chance is 5%)
    assert float(verdicts[1].group(3)) > 20.0


def test_demo_threads_option_and_restore():
    before = fastsoftmax.get_num_threads()
    status, text = run_demo("--models", "softmax", "--epochs", "1")
    assert status == 0 and "fastsoftmax threads: %d" % before in text.splitlines()[0]  # the library's default
    assert fastsoftmax.get_num_threads() == before
    status, text = run_demo("--models", "softmax", "--epochs", "1", "--threads", "1")
    assert status == 0 and "fastsoftmax threads: 1" in text.splitlines()[0]
    assert fastsoftmax.get_num_threads() == before  # the process's setting is restored


def test_demo_float64_sgd_options():
    status, text = run_demo("--dtype", "float64", "--optimizer", "sgd", "--models", "mlp", "--epochs", "3",
                            "--classes", "7", "--hidden", "5", "--batch-size", "64", "--seed", "3")
    verdicts, _ = parse(text, epochs=3, metric="accuracy")
    assert status == 0, text
    assert [v.group(1) for v in verdicts] == ["MLP (5 hidden)"]
    assert "float64, batch 64, sgd lr 0.1, 3 epochs" in text and "7 classes" in text and "seed 3" in text


def test_demo_reports_a_mismatch(monkeypatch):
    """A wrong baseline (the one-hot term dropped from the gradient) must fail the comparison."""

    class Wrong(demo.NumpyCrossEntropyLoss):
        def backward(self, grad_output=1.0):
            exp, sumexp, rows, target = self._cache
            return exp / sumexp * (grad_output / len(rows))

    monkeypatch.setattr(demo, "NumpyCrossEntropyLoss", Wrong)
    status, text = run_demo("--models", "softmax", "--epochs", "3", "--tolerance", "0")
    assert status == 1
    assert "MISMATCH" in text and text.rstrip().endswith(")") and "runs disagree" in text


@needs_bce
def test_demo_multilabel_quick():
    status, text = run_demo("--multilabel")
    verdicts, _ = parse(text, epochs=2, metric="macro-F1")
    assert status == 0, text
    assert "multi-label (BCEWithLogitsLoss)" in text and "20 labels" in text and "pos_weight 10;" in text
    for v in verdicts:
        assert v.group(5) == "MATCH" and v.group(3) == v.group(4)
        assert "largest per-label F1 difference 0.0000" in v.group(6)
    tables = re.findall(r"per-label test F1, (.+) \(labels 0-9 of 20; micro-F1 fastsoftmax (\d\.\d{4}), "
                        r"NumPy (\d\.\d{4})\):\n  label +(?: +\d+){10}\n  fastsoftmax +((?: +\d\.\d{3}){10})\n"
                        r"  NumPy +((?: +\d\.\d{3}){10})\n  all 20 labels, fastsoftmax: min", text)
    assert len(tables) == 2, text
    for model, micro_fs, micro_np, f1_fs, f1_np in tables:
        assert micro_fs == micro_np and f1_fs == f1_np


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curves.png"
    status, text = run_demo("--models", "softmax", "--plot", str(path))
    assert status == 0
    assert "loss curves saved to %s" % path in text
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_sampled(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "sampled.png"
    status, text = run_demo("--sampled", "--plot", str(path))
    assert status == 0
    assert "loss curves saved to %s" % path in text
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    path = tmp_path / "curves.png"
    status, text = run_demo("--models", "softmax", "--plot", str(path))
    assert status == 0
    assert "--plot: matplotlib is not installed, no plot written" in text
    assert not path.exists()


def test_demo_sampled_quick():
    status, text = run_demo("--sampled")
    rows, _, verdict = parse_sampled(text, steps=[5, 10, 15, 20, 25])
    assert status == 0, text
    assert text.startswith("fastsoftmax %s demo: sampled softmax (sampled_softmax_loss) vs full softmax "
                           "(cross_entropy); fastsoftmax threads: " % fastsoftmax.__version__)
    assert ("data: 6400 train / 4096 held-out samples, 32 features, 2000 classes" in text
            and "float32, batch 256, plain SGD lr 1, 1 epoch (25 steps)" in text)
    assert "trained with sampled softmax (200 log-uniform samples per batch) / with full softmax" in text
    assert verdict.group(3) == "MATCH" and verdict.group(2) == "10"
    assert abs(float(verdict.group(1))) <= 10
    # both models learn (an untrained model's loss is log(2000) = 7.6), and their held-out losses fall together
    for m in rows:
        assert float(m.group(3)) < 7.0 and float(m.group(4)) < 7.0
    assert float(rows[-1].group(4)) < float(rows[0].group(4))
    assert text.rstrip().splitlines()[-1].startswith("sampled and full softmax models agree: held-out losses within "
                                                     "10% (total ")


def test_demo_sampled_options():
    status, text = run_demo("--sampled", "--dtype", "float64", "--epochs", "2", "--eval-every", "30",
                            "--num-sampled", "50", "--classes", "300", "--batch-size", "128", "--seed", "3",
                            "--threads", "1", "--tolerance", "25")
    parse_sampled(text, steps=[30, 60, 90, 100])  # every 30 steps and after the last
    assert status == 0, text
    assert "fastsoftmax threads: 1" in text.splitlines()[0]
    assert "300 classes" in text and "seed 3" in text
    assert "float64, batch 128, plain SGD lr 1, 2 epochs (100 steps)" in text
    assert "(50 log-uniform samples per batch)" in text and "(tolerance 25%)" in text


def test_demo_sampled_reports_a_mismatch(monkeypatch):
    """A broken sampled loss (its gradient zeroed: the model does not learn) must fail the comparison."""
    loss_fn = demo.sampled_softmax_loss

    def no_learning(*args, **kwargs):
        loss, g = loss_fn(*args, **kwargs)
        return loss, g._replace(weights=0 * g.weights, biases=0 * g.biases)

    monkeypatch.setattr(demo, "sampled_softmax_loss", no_learning)
    status, text = run_demo("--sampled")
    _, _, verdict = parse_sampled(text, steps=[5, 10, 15, 20, 25])
    assert status == 1
    assert verdict.group(3) == "MISMATCH" and float(verdict.group(1)) > 10
    assert re.search(r"^MISMATCH: the sampled-softmax model's held-out loss is \+\d+\.\d\d% from the full-softmax "
                     r"model's, beyond the tolerance of 10% \(total \d+\.\d s\)$", text, re.M), text


def test_demo_sampled_steps(rng):
    """The two training steps: the full one is SGD on the reference gradient; the sampled one
    changes only the rows of the classes its gradient names."""
    C, D, N, lr = 30, 4, 8, 0.5
    W, b = rng.standard_normal((C, D)), rng.standard_normal(C)
    X, y = rng.standard_normal((N, D)), rng.integers(0, C, size=N)
    _, g = ref.cross_entropy(X @ W.T + b, y, return_grad=True)
    W_full, b_full = W.copy(), b.copy()
    loss = demo._full_softmax_step(W_full, b_full, X, y, lr, np.empty((N + 3, C)), np.empty((C, D)))
    np.testing.assert_allclose(loss, ref.cross_entropy(X @ W.T + b, y), rtol=1e-13)
    np.testing.assert_allclose(W_full, W - lr * (g.T @ X), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(b_full, b - lr * g.sum(axis=0), rtol=1e-12, atol=1e-15)

    W_s, b_s = W.copy(), b.copy()
    demo._sampled_softmax_step(W_s, b_s, X, y, lr, 5, np.random.default_rng(1))
    _, gs = fastsoftmax.sampled_softmax_loss(W, b, y, X, 5, C, rng=np.random.default_rng(1), return_grad=True)
    untouched = np.setdiff1d(np.arange(C), gs.ids)
    assert untouched.size and np.array_equal(W_s[untouched], W[untouched]) and np.array_equal(b_s[untouched],
                                                                                              b[untouched])
    np.testing.assert_allclose(W_s[gs.ids], W[gs.ids] - lr * gs.weights, rtol=1e-15)
    np.testing.assert_allclose(b_s[gs.ids], b[gs.ids] - lr * gs.biases, rtol=1e-15)


def test_speed_up_is_never_a_ratio_rounded_to_zero():
    assert demo._speed_up(0.170, 0.0025) == "68.0x faster"
    assert demo._speed_up(0.001, 0.3) == "300.0x slower"
    assert demo._speed_up(1.0, 1.0) == "1.0x faster"


@pytest.mark.parametrize("argv,message", [
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--models", "resnet"], "--models"),
    (["--plot", "/nonexistent-dir/x.png"], "does not exist"),
    (["--dtype", "float16"], "invalid choice"),
    (["--threads", "-1"], "--threads must be >= 0"),
    (["--sampled", "--multilabel"], "argument --multilabel: not allowed with argument --sampled"),
    (["--sampled", "--models", "softmax"], "argument --models: not allowed with argument --sampled"),
    (["--sampled", "--hidden", "8"], "argument --hidden: not allowed with argument --sampled"),
    (["--sampled", "--labels", "8"], "argument --labels: not allowed with argument --sampled"),
    (["--sampled", "--pos-weight", "0"], "argument --pos-weight: not allowed with argument --sampled"),
    (["--sampled", "--optimizer", "adam"], "argument --optimizer: --sampled trains with plain SGD, not adam"),
    (["--sampled", "--quick", "--num-sampled", "2000"], "--num-sampled must be smaller than --classes (2000)"),
    (["--sampled", "--num-sampled", "0"], "--num-sampled must be >= 1"),
    (["--sampled", "--eval-every", "0"], "--eval-every must be >= 1"),
    (["--num-sampled", "64"], "argument --num-sampled: only with --sampled"),
    (["--multilabel", "--eval-every", "5"], "argument --eval-every: only with --sampled"),
])
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        demo.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def _run_module(*args):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "fastsoftmax", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_module_entry_point_help_and_run():
    r = _run_module("demo", "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: python -m fastsoftmax demo")
    for option in ("--multilabel", "--sampled", "--num-sampled", "--plot FILE.png", "--epochs", "--quick"):
        assert option in r.stdout
    r = _run_module("demo", "--quick", "--models", "softmax")
    assert r.returncode == 0, r.stdout + r.stderr
    parse(r.stdout, epochs=2, metric="accuracy")
    assert r.stderr == ""  # no progress bar when stderr is not a terminal


def test_progress_bar_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    bar = demo._Progress(stream, enabled=True)
    bar.update("  epoch  1/2", 5, 10, 2.5)
    bar.update("  epoch  1/2", 10, 10, 2.0)
    bar.clear()
    text = stream.getvalue()
    assert "\r  epoch  1/2 [###############...............] 5/10 batches  loss 2.5000" in text
    assert "[##############################] 10/10 batches  loss 2.0000" in text
    assert text.endswith("\r")
    quiet = io.StringIO()  # not a terminal: nothing
    demo._Progress(quiet, enabled=True).update("x", 1, 2, 0.0)
    assert quiet.getvalue() == ""


# ----------------------------------------------------------------------------- the demo's pieces


def test_numpy_baselines_match_the_reference(rng):
    logits = rng.standard_normal((50, 13)) * 4
    y = rng.integers(0, 13, size=50)
    loss_fn = demo.NumpyCrossEntropyLoss()
    loss = loss_fn(logits, y)
    grad = loss_fn.backward(0.5)
    want_loss, want_grad = ref.cross_entropy(logits, y, return_grad=True)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-13)
    np.testing.assert_allclose(grad, 0.5 * want_grad, rtol=1e-12, atol=1e-17)

    logits = rng.standard_normal((50, 13)) * 30  # large |x|: the stable forms matter
    Y = (rng.random((50, 13)) < 0.3).astype(np.float64)
    for pos_weight in (None, rng.uniform(0.5, 10.0, size=13)):
        loss_fn = demo.NumpyBCEWithLogitsLoss(pos_weight=pos_weight)
        loss = loss_fn(logits, Y)
        grad = loss_fn.backward(3.0)
        want_loss, want_grad = ref.binary_cross_entropy_with_logits(logits, Y, pos_weight=pos_weight,
                                                                    return_grad=True)
        np.testing.assert_allclose(loss, want_loss, rtol=1e-13)
        np.testing.assert_allclose(grad, 3.0 * want_grad, rtol=1e-12, atol=1e-20)


@pytest.mark.parametrize("make_model", [lambda r: demo.SoftmaxRegression(5, 4, r, np.float64),
                                        lambda r: demo.MLP(5, 6, 4, r, np.float64)], ids=["softmax", "mlp"])
def test_model_gradients_by_finite_differences(rng, make_model):
    model = make_model(rng)
    for p in model.params:  # nonzero biases, so that every ReLU and bias path is exercised
        p += 0.1 * rng.standard_normal(p.shape)
    X = rng.standard_normal((7, 5))
    y = rng.integers(0, 4, size=7)

    def objective():
        return float(ref.cross_entropy(model.forward(X), y))

    _, dlogits = ref.cross_entropy(model.forward(X), y, return_grad=True)
    grads = model.backward(dlogits)
    h = 1e-6
    for p, g in zip(model.params, grads):
        assert g.shape == p.shape
        for k in range(p.size):
            old = p.flat[k]
            p.flat[k] = old + h
            up = objective()
            p.flat[k] = old - h
            down = objective()
            p.flat[k] = old
            assert abs((up - down) / (2 * h) - g.flat[k]) <= 1e-7 * (1 + abs(g.flat[k]))


def test_optimizers_minimise_a_quadratic():
    for make in (lambda ps: demo.Adam(ps, lr=0.05), lambda ps: demo.SGD(ps, lr=0.05)):
        x = np.array([3.0, -2.0])
        opt = make([x])
        for _ in range(500):
            opt.step([2 * x])  # gradient of |x|^2
        assert np.all(np.abs(x) < 1e-2)


def test_datasets_are_deterministic():
    a = _datasets.make_clusters(100, 4, 5, seed=1)
    b = _datasets.make_clusters(100, 4, 5, seed=1)
    c = _datasets.make_clusters(100, 4, 5, seed=2)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert a[0].dtype == np.float32 and a[1].dtype == np.int64 and set(np.unique(a[1])) <= set(range(5))
    X, Y = _datasets.make_multilabel(200, 6, 10, seed=1, dtype=np.float64)
    assert X.shape == (200, 6) and Y.shape == (200, 10) and X.dtype == Y.dtype == np.float64
    assert set(np.unique(Y)) <= {0.0, 1.0} and 1.0 < Y.sum(axis=1).mean() < 6.0
    Xtr, ytr, Xte, yte = _datasets.train_test_split(*a)
    assert len(Xtr) == 80 and len(Xte) == 20 and np.array_equal(np.concatenate([ytr, yte]), a[1])


def test_zipf_data():
    X, y = _datasets.make_zipf_linear(20000, 6, 500, seed=1)
    X2, y2 = _datasets.make_zipf_linear(20000, 6, 500, seed=1)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    assert X.shape == (20000, 6) and X.dtype == np.float32 and y.dtype == np.int64
    counts = np.bincount(y, minlength=500)
    assert counts.size == 500 and counts.argmax() == 0  # class 0 the most frequent, as log-uniform assumes
    # Zipf(1): class c has 1 / (c + 1) of class 0's frequency (up to sampling noise)
    np.testing.assert_allclose(counts[[1, 3, 9]] / counts[0], [1 / 2, 1 / 4, 1 / 10], rtol=0.15)
