"""The examples in examples/ run, in seconds, and do what they say."""

import importlib.util
import os
import sys

import numpy as np

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
