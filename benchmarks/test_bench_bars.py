"""pytest-benchmark cases for fastsoftmax's performance bars, one group per bar group.

The implementations are the ones ``benchmarks/bars.py`` times (``_harness.bar_groups``),
so a group's table shows the same comparison; e.g. in group
``bar ce: fused CE fwd+bwd 2048x32000 float32`` the Min column's parenthesised ratio on the
``memcpy`` row vs the ``fastsoftmax out=`` row gives the "<= 1.25x memcpy" bar.
These run at FASTSOFTMAX_BENCH_BAR_THREADS threads (default 2, the bars' setting) for
fastsoftmax, PyTorch and scikit-learn, independently of FASTSOFTMAX_BENCH_THREADS (the
thread count of test_bench_ops.py); the previous settings are restored after each case.

    pytest benchmarks/test_bench_bars.py --benchmark-enable
    pytest benchmarks/test_bench_bars.py --benchmark-enable -k "bar_ce and not fwd"

The ratios of separately run pytest-benchmark cases drift with the machine's load more
than the interleaved measurement of ``python benchmarks/bars.py``, which prints the bars
with MET / NOT MET.
"""

import os

import pytest

import fastsoftmax as fs
import _baselines as bl
import _harness

BAR_THREADS = int(os.environ.get("FASTSOFTMAX_BENCH_BAR_THREADS", "2"))
GROUPS = {g["key"]: g for g in _harness.bar_groups(BAR_THREADS)}

# (group key, implementation name) -- must match the names the builders in _harness use
IMPLS = {
    "ce": ["fastsoftmax out=", "fastsoftmax", "memcpy", "torch"],
    "ce_fwd": ["fastsoftmax", "numpy max"],
    "softmax": ["fastsoftmax out=", "fastsoftmax", "memcpy", "torch"],
    "small": ["fastsoftmax", "fastsoftmax out=", "sklearn", "sklearn out=", "torch"],
    "f64": ["fastsoftmax out=", "memcpy"],
    "row": ["1 thread", "%d threads" % BAR_THREADS],
    "isa": ["isa=%s" % n for n in fs._config.ISA_NAMES],
}

_built = {}  # only the latest group's inputs stay alive


def _impl(key, name):
    if key not in _built:
        _built.clear()
        ctx = {"threads": BAR_THREADS}
        _built[key] = {im.name: im for im in GROUPS[key]["build"](ctx)}
    return _built[key].get(name)


@pytest.fixture
def bar_threads():
    """BAR_THREADS for fastsoftmax and torch during the case; previous settings restored."""
    torch = _harness.optional_import("torch")
    fs_prev = fs.get_num_threads()
    isa_prev = fs._config.get_isa()
    t_prev = torch.get_num_threads() if torch is not None else None
    fs.set_num_threads(BAR_THREADS)
    if torch is not None:
        torch.set_num_threads(BAR_THREADS)
    yield BAR_THREADS
    fs.set_num_threads(fs_prev)
    fs._config.set_isa(isa_prev)
    if torch is not None:
        torch.set_num_threads(t_prev)


def _cases():
    out = []
    for key, names in IMPLS.items():
        for name in names:
            out.append(pytest.param(key, name, id="%s-%s" % (key, name.replace(" ", "_"))))
    return out


@pytest.mark.parametrize("key,name", _cases())
def test_bar(benchmark, bar_threads, key, name):
    grp = GROUPS[key]
    if name == "torch" and not bl.has_torch():
        pytest.skip("torch is not installed")
    if name.startswith("sklearn") and not bl.has_sklearn():
        pytest.skip("scikit-learn is not installed")
    if name.startswith("isa=") and name[4:] not in fs._config.supported_isas():
        pytest.skip("instruction set %s is not supported here" % name[4:])
    im = _impl(key, name)
    assert im is not None, "no implementation %r in bar group %r" % (name, key)
    benchmark.group = "bar %s: %s (%s)" % (key, grp["title"], "; ".join(
        "%s %s %.2fx" % (c.text, "<=" if c.kind == "max" else ">=", c.required)
        for c in grp["checks"] if not c.info))
    benchmark.extra_info.update(bar=key, impl=name, call=im.note, threads=BAR_THREADS)
    if im.pre:
        im.pre()  # a persistent setting (ISA path / thread count); the fixture restores it
    benchmark(im.fn)
