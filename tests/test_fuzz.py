"""A short run of the fuzz harness (tools/fuzz.py, random mode): a few thousand seeded cases
over every public function and loss object, each checked against the contract -- only
TypeError / ValueError / IndexError, nothing written when a call raises, inputs never
modified, the reference's results within reference.TOLERANCES and its error rules the same,
bitwise the same results on 1, 2 and 3 threads (tools/fuzzing/runner.py).

The seed is the suite's (FASTSOFTMAX_TEST_SEED); FASTSOFTMAX_FUZZ_CASES changes the number of
cases (default 4000, about 20 s).  A failure prints the violations with standalone
reproducers; ``python tools/fuzz.py random --seed SEED --case N`` replays one case.  The long
runs are commands of their own (README, "Development").
"""

import io
import os
import sys

from conftest import SEED

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tools"))
import fuzz  # noqa: E402

CASES = int(os.environ.get("FASTSOFTMAX_FUZZ_CASES", "4000"))


def test_short_fuzz_run():
    out = io.StringIO()
    runner = fuzz.run_random(SEED, cases=CASES, timeout=120.0, out=out)
    summary = runner.summary()
    report = out.getvalue()
    assert not runner.violations, f"{summary}\n\n{report[:40_000]}"
