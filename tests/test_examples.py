"""The examples in examples/ run, in seconds, and do what they say."""

import importlib.util
import os
import sys

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "examples")


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(EXAMPLES, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_linear_lm_trains(monkeypatch, capsys):
    """The small language model's loss falls well below the uniform guess in 20 steps."""
    module = _load("linear_lm")
    monkeypatch.setattr(sys, "argv", ["linear_lm.py", "--vocab", "2000", "--steps", "20", "--batch", "256"])
    loss = module.main()
    assert loss < np.log(2000) - 0.4
    assert "step   20" in capsys.readouterr().out


def test_dask_blocks_give_the_one_array_result(monkeypatch):
    """The chunked Dask computation equals fs.cross_entropy on the whole array, within the
    accuracy bars (float32; blocks of 2858 rows, ignored rows, class weights, smoothing)."""
    pytest.importorskip("dask.array")
    from conftest import assert_grad_close, assert_value_close, grad_row_factor

    module = _load("dask_loss")
    monkeypatch.setattr(sys, "argv", ["dask_loss.py", "--rows", "20000", "--classes", "300", "--blocks", "7"])
    loss, grad, ref_loss, ref_grad = module.main()
    assert loss.dtype == np.float32 and grad.dtype == np.float32 and grad.shape == (20000, 300)
    assert_value_close(loss, ref_loss, np.float32, "loss")
    rng = np.random.default_rng(0)  # the example's inputs again, for the gradient bar's row factors
    rng.standard_normal((20000, 300), dtype=np.float32)
    t = rng.integers(0, 300, 20000)
    t[::7] = -100
    weight = rng.uniform(0.5, 2.0, 300)
    r = grad_row_factor((20000, 300), t, weight=weight, label_smoothing=0.1)
    assert_grad_close(grad, ref_grad, np.float32, r)


def test_dask_rejects_blocks_across_the_classes():
    da = pytest.importorskip("dask.array")
    module = _load("dask_loss")
    with pytest.raises(ValueError, match="rows only"):
        module.cross_entropy_dask(da.zeros((10, 6), chunks=(5, 3)), da.zeros(10, dtype=int, chunks=5))
