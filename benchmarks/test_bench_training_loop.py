"""Smoke test of ``benchmarks/training_loop.py``: a tiny run (1 round, 3 steps, the
512x512x1000 MLP, the README loop, a 256x1000 busy case) must finish, write its Markdown
and print one line per bar.  It checks that the script works, not its numbers: this
directory's conftest pins OMP_NUM_THREADS / OPENBLAS_NUM_THREADS (FASTSOFTMAX_BENCH_THREADS,
default 1) and the children inherit that; run the script itself for the measurement.

    pytest benchmarks/test_bench_training_loop.py
"""

import os
import subprocess
import sys

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "training_loop.py")


def test_training_loop_runs(tmp_path):
    p = subprocess.run([sys.executable, SCRIPT, "--rounds", "1", "--steps", "3", "--configs", "512x512x1000",
                        "--busy-shape", "256x1000", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    text = (tmp_path / "training_loop.md").read_text()
    assert text.strip() == p.stdout.strip()
    assert "| 512x512x1000 |" in text and "| 1 thread |" in text
    bar_lines = [line for line in text.splitlines() if line.endswith(("| MET |", "| NOT MET |"))]
    assert len(bar_lines) == 5, text  # 3 MLP bars, the README loop, the busy machine
    assert "of 5 bars met." in text
