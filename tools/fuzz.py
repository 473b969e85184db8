#!/usr/bin/env python3
"""Fuzz the public API of fastsoftmax against its contract.

Every case calls one public function or loss object (softmax, log_softmax, logsumexp,
cross_entropy, sigmoid, binary_cross_entropy_with_logits, the backward functions,
CrossEntropyLoss / BCEWithLogitsLoss forward and backward, the sampled losses and their
objects, the candidate samplers, set_num_threads) with random shapes (empty axes, odd sizes,
up to 5000 classes), dtypes, memory layouts (strided, negative strides, Fortran order,
misaligned views of byte buffers, read-only, out= overlapping the inputs), values (NaN,
infinities, huge, tiny, subnormal), options (bad types, out-of-range and huge integers) and
thread counts.  The contract (tools/fuzzing/runner.py): only TypeError / ValueError /
IndexError, nothing written when a call raises, inputs never modified, the reference's
results within reference.TOLERANCES (and its error rules the same), bitwise the same
results on 1, 2 and 3 threads, no crash or hang.  Each violation is printed with a
standalone reproducer; the exit status is 1 if there was any.

    python tools/fuzz.py random --seed 1 --cases 100000     # seeded, runs anywhere
    python tools/fuzz.py random --seconds 600               # for a time instead
    python tools/fuzz.py random --seed 1 --case 4242        # one case again (its source with --show)
    python tools/fuzz.py atheris --runs 100000              # coverage-guided (pip install atheris)
    python tools/fuzz.py atheris --runs 100000 -seed=1 CORPUS_DIR   # libFuzzer's options and corpus

Run from the checkout with the extension built in place (PYTHONPATH=.).
"""

import argparse
import faulthandler
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)


class CaseNote:
    """A file that names the case being run, so that a crash (which kills the process
    before it can print anything of its own) can be replayed; removed at a clean exit."""

    def __init__(self):
        fd, self.path = tempfile.mkstemp(prefix="fastsoftmax-fuzz-", suffix=".case")
        self._fd = fd

    def write(self, text):
        data = (text + "\n").encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def remove(self):
        os.close(self._fd)
        os.unlink(self.path)


def asan_loaded():
    """Whether AddressSanitizer's runtime is in the process (tools/sanitize preloads it): its
    allocator aborts on an impossible size instead of returning NULL, so such cases are left out."""
    try:
        with open("/proc/self/maps") as f:
            return "libasan" in f.read()
    except OSError:
        return "libasan" in os.environ.get("LD_PRELOAD", "")


def run_random(seed, cases=None, seconds=None, only=None, timeout=30.0, out=None, show=False):
    """The random mode: cases ``0, 1, ...`` of ``seed`` (case k from ``default_rng([seed, k])``)
    until ``cases`` cases or ``seconds`` seconds (``only``: case ``only`` alone).  Returns the
    runner (its ``violations`` counter and ``summary()``)."""
    import fastsoftmax
    from fuzzing import cases as generator, runner as running, sources

    out = out or sys.stdout
    r = running.Runner(timeout=timeout, out=out, label=f"random, seed {seed}")
    note = CaseNote()
    huge = not asan_loaded()
    print(f"fuzz: random mode, seed {seed}{'' if huge else ' (AddressSanitizer: no impossible sizes)'}; "
          f"a crash leaves the case it was running in {note.path}", file=out)
    deadline = None if seconds is None else time.monotonic() + seconds
    k = only or 0
    try:
        while True:
            if only is not None and k > only:
                break
            if only is None and ((cases is not None and k >= cases) or (deadline and time.monotonic() > deadline)):
                break
            ident = f"seed {seed}, case {k}"
            note.write(f"{ident}: replay with python tools/fuzz.py random --seed {seed} --case {k} --show")
            case = generator.generate(sources.RandomSource([seed, k]), huge)
            if show:
                print(running.reproducer(case, "case", "the case's source", ident, 1), file=out)
            r.run(case, ident)
            k += 1
    finally:
        fastsoftmax.set_num_threads(0)
        fastsoftmax._kernels.set_tuning(0, 0)
        r.close()
        note.remove()
    return r


def run_atheris(runs, timeout, libfuzzer_args):
    """The atheris mode: the same generator on the fuzzer's input bytes, Python coverage of
    fastsoftmax as its guide; ends after ``runs`` inputs with the summary."""
    try:
        import atheris
    except ImportError:
        print("fuzz: the atheris mode needs atheris (pip install atheris; it ships wheels for Linux "
              "x86-64 and CPython 3.8-3.11, and builds elsewhere with clang and libFuzzer)", file=sys.stderr)
        return 2
    with atheris.instrument_imports(include=["fastsoftmax"]):
        import fastsoftmax
        import fastsoftmax.losses
        import fastsoftmax.reference
        import fastsoftmax.sampled
        import fastsoftmax.sampling  # noqa: F401
    from fuzzing import cases as generator, runner as running, sources

    r = running.Runner(timeout=timeout, label="atheris")
    huge = not asan_loaded()
    note = CaseNote()
    print(f"fuzz: atheris mode, {runs} runs; a crash leaves the run it was in {note.path}", flush=True)

    def one_input(data):
        ident = f"atheris run {r.cases}"
        note.write(ident)
        r.run(generator.generate(sources.FuzzedSource(atheris.FuzzedDataProvider(data)), huge), ident)
        if r.cases >= runs:
            fastsoftmax.set_num_threads(0)
            r.summary()
            note.remove()
            os._exit(1 if sum(r.violations.values()) else 0)

    # libFuzzer ends the process after -runs without returning here: the callback ends it first.
    # A case takes about 100-300 bytes of choices: no slow growth of the inputs from 4 bytes.
    defaults = [f"-runs={runs + 1}", "-rss_limit_mb=0", "-len_control=0", "-max_len=1024"]
    given = {arg.split("=")[0] for arg in libfuzzer_args}
    atheris.Setup([sys.argv[0]] + [d for d in defaults if d.split("=")[0] not in given] + libfuzzer_args, one_input)
    atheris.Fuzz()  # does not return


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)
    random_mode = modes.add_parser("random", help="seeded random cases")
    random_mode.add_argument("--seed", type=int, default=0)
    limit = random_mode.add_mutually_exclusive_group()
    limit.add_argument("--cases", type=int, help="number of cases (default 10000)")
    limit.add_argument("--seconds", type=float, help="run for this long instead")
    limit.add_argument("--case", type=int, help="run this case alone")
    random_mode.add_argument("--show", action="store_true", help="print each case's source")
    atheris_mode = modes.add_parser("atheris", help="coverage-guided cases (atheris)")
    atheris_mode.add_argument("--runs", type=int, default=100_000)
    for mode in (random_mode, atheris_mode):
        mode.add_argument("--timeout", type=float, default=30.0, help="seconds a call may take (default 30)")
    args, rest = parser.parse_known_args(argv)
    if args.mode == "random" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    faulthandler.enable(all_threads=True)
    if args.mode == "atheris":
        return run_atheris(args.runs, args.timeout, rest)
    cases = args.cases if args.cases is not None or args.seconds is not None or args.case is not None else 10_000
    r = run_random(args.seed, cases=cases, seconds=args.seconds, only=args.case, timeout=args.timeout,
                   show=args.show)
    r.summary()
    return 1 if sum(r.violations.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
