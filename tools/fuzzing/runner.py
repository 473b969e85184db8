"""Runs fuzz cases and checks the contract; prints reproducers and keeps the counts.

For each case (its setup run afresh for every call, so that in-place calls start from the
same inputs):

(a) the call raises only TypeError, ValueError or IndexError (MemoryError where the case
    asks for an impossible size), never another exception, a crash or a hang (a watchdog
    thread reports a call that takes longer than the timeout and ends the process; a
    faulthandler dump backs it up when the call holds the GIL);
    the bad argument the generator made must be rejected with the documented type, and a
    valid call must not raise;
(b) a call that raises leaves every array of the case untouched, ``out=`` included (the
    bytes of their whole buffers are compared);
(c) a call that returns leaves every byte outside its ``out=`` array untouched;
(d) a valid call in the documented domain gives the reference's result within the bars
    (:mod:`.oracle`), and the reference follows the same error rules: it accepts what the
    call accepts and rejects what it rejects with a compatible exception type;
(e) the call gives the same bytes (results and every buffer) on 1, 2 and 3 threads.
"""

import collections
import faulthandler
import hashlib
import inspect
import os
import re
import sys
import threading
import time
import traceback
import types
import warnings

import numpy as np

import fastsoftmax
from fastsoftmax import _kernels, reference, sampling

from . import helpers, oracle

ALLOWED = (TypeError, ValueError, IndexError)
THREADS = (1, 2, 3)
HELPERS = {name: fn for name, fn in vars(helpers).items() if inspect.isfunction(fn)}
# the oracle parameters' values when a case does not set them (the functions' defaults)
DEFAULTS = dict(out=None, grad_output=1.0, axis=-1, ignore_index=-100, reduction="mean", label_smoothing=0.0,
                z_loss=0.0, weight=None, pos_weight=None)
# how many reproducers to print per (kind, family), and one-line notes after them
SHOW_FULL, SHOW_BRIEF = 2, 10


class HarnessError(Exception):
    """The harness itself failed on a case (a bug of the generator, not of fastsoftmax)."""


def namespace():
    """A fresh namespace for a case's source."""
    ns = {"np": np, "fs": fastsoftmax, "ref": reference, "sampling": sampling}
    ns.update(HELPERS)
    return ns


class Compiled:
    """A case's source, compiled once."""

    def __init__(self, case):
        self.case = case
        self.setup = compile("\n".join(case.setup), "<fuzz setup>", "exec")
        self.call = compile("\n".join(case.call), "<fuzz call>", "exec")
        self.ref_value = case.ref_value and compile("\n".join(case.ref_value), "<fuzz reference>", "exec")
        self.ref_errors = case.ref_errors and compile("\n".join(case.ref_errors), "<fuzz reference>", "exec")

    def fresh(self):
        ns = namespace()
        try:
            exec(self.setup, ns)
        except Exception as e:
            raise HarnessError(f"the case's setup raised {type(e).__name__}: {e}") from e
        return ns

    def holds(self, condition, ns):
        return condition is None or bool(eval(condition, ns))


# ----------------------------------------------------------------------------- memory of a case

def _arrays(ns):
    """{name: array} of the namespace's arrays (also inside tuples, e.g. sampled values)."""
    found = {}
    for name, value in ns.items():
        if isinstance(value, np.ndarray):
            found[name] = value
        elif isinstance(value, tuple):
            for k, item in enumerate(value):
                if isinstance(item, np.ndarray):
                    found[f"{name}[{k}]"] = item
    return found


def _root(a):
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _bytes(root):
    """A buffer's bytes in memory order (object arrays: their items' reprs)."""
    return repr(root.tolist()).encode() if root.dtype == object else root.tobytes(order="A")


class Memory:
    """The bytes of every buffer of a case's arrays, before a call."""

    def __init__(self, ns):
        self.roots = {}   # id(root) -> (root, names, bytes before)
        for name, a in sorted(_arrays(ns).items()):
            root = _root(a)
            entry = self.roots.setdefault(id(root), (root, [], _bytes(root)))
            entry[1].append(name)

    def changed(self, outputs=()):
        """[(names, number of bytes)] of the buffers changed outside ``outputs`` (arrays)."""
        found = []
        for root, names, before in self.roots.values():
            now = _bytes(root)
            if root.dtype == object:
                if now != before:
                    found.append((names, root.nbytes))
                continue
            diff = np.frombuffer(now, np.uint8) != np.frombuffer(before, np.uint8)
            for out in outputs:
                if isinstance(out, np.ndarray) and _root(out) is root:
                    diff &= ~_footprint(out, root)
            if diff.any():
                found.append((names, int(diff.sum())))
        return found

    def after(self):
        """The bytes of every buffer now, in a fixed order (for the comparison across threads)."""
        return tuple(sorted((tuple(names), _bytes(root)) for root, names, _ in self.roots.values()))


def _footprint(view, root):
    """The bytes of ``root`` (base-less, so contiguous) that ``view`` covers, as a mask in
    memory order."""
    mask = np.zeros(root.nbytes, bool)
    if view.size:
        offset = view.__array_interface__["data"][0] - root.__array_interface__["data"][0]
        covered = np.lib.stride_tricks.as_strided(mask[offset:], shape=view.shape + (view.itemsize,),
                                                  strides=view.strides + (1,))
        covered[...] = True
    return mask


def _fingerprint(value):
    """The bytes of a result, for the comparison across thread counts."""
    if isinstance(value, (tuple, list)):
        return tuple(_fingerprint(v) for v in value)
    if isinstance(value, (np.ndarray, np.generic)):
        a = np.asarray(value)
        return (a.dtype.str, a.shape, a.tobytes())
    return repr(value)


# ----------------------------------------------------------------------------- the watchdog

class Watchdog(threading.Thread):
    """Reports a call that does not return within ``timeout`` seconds and ends the process
    (exit status 1).  ``arm(case, ident)`` before a call, ``disarm()`` after it."""

    def __init__(self, runner, timeout):
        super().__init__(daemon=True, name="fuzz-watchdog")
        self.runner = runner
        self.timeout = timeout
        self._deadline = None
        self._what = None
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def arm(self, compiled, ident, threads):
        with self._lock:
            self._what = (compiled, ident, threads)
            self._deadline = time.monotonic() + self.timeout
        # the backstop: a call that holds the GIL never lets this thread run
        faulthandler.dump_traceback_later(2 * self.timeout + 10, exit=True, file=sys.__stderr__)

    def disarm(self):
        with self._lock:
            self._deadline = None
        faulthandler.cancel_dump_traceback_later()

    def stop(self):
        self._stop.set()

    def run(self):
        while not self._stop.wait(0.2):
            with self._lock:
                late = self._deadline is not None and time.monotonic() > self._deadline
                what = self._what
            if late:
                compiled, ident, threads = what
                self.runner.to_terminal()  # the process ends here: what was captured must not be lost
                self.runner.report("hang", compiled, ident, threads,
                                   f"the call did not return within {self.timeout:g} s")
                faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)
                self.runner.summary()
                sys.stdout.flush()
                os._exit(1)


# ----------------------------------------------------------------------------- the runner

class Runner:
    """Runs cases and checks the contract; counts the cases and the violations by kind."""

    def __init__(self, timeout=30.0, out=None, label="random"):
        self.out = out or sys.stdout
        self.label = label
        self.cases = 0
        self.violations = collections.Counter()   # kind -> count
        self.by_family = collections.Counter()    # (kind, family) -> count
        self.start = time.monotonic()
        self.watchdog = Watchdog(self, timeout)
        self.watchdog.start()

    # ---- one case
    def run(self, case, ident):
        """Run one case; returns the number of violations found."""
        self.cases += 1
        before = sum(self.violations.values())
        compiled = Compiled(case)
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                self._check(compiled, ident)
        except HarnessError as e:
            self.report("harness-error", compiled, ident, THREADS[0], f"{e}\n{traceback.format_exc()}")
        finally:
            _kernels.set_num_threads(0)
            _kernels.set_tuning(0, 0)
        return sum(self.violations.values()) - before

    def _call(self, compiled, code, ns, ident, threads, tuning):
        """Run ``code`` in ``ns`` on ``threads`` threads; returns (result, exception)."""
        fastsoftmax.set_num_threads(threads)
        _kernels.set_tuning(*tuning)
        self.watchdog.arm(compiled, ident, threads)
        try:
            exec(code, ns)
            return ns.get("result"), None
        except Exception as e:
            return None, e
        finally:
            self.watchdog.disarm()
            fastsoftmax.set_num_threads(0)
            _kernels.set_tuning(0, 0)

    def _check(self, compiled, ident):
        case = compiled.case
        inputs = compiled.fresh()  # untouched inputs: conditions, oracle parameters
        expected = [types_ for types_, when in case.expect if compiled.holds(when, inputs)]
        unsure = [types_ for types_, when in case.unsure if compiled.holds(when, inputs)]
        runs = THREADS if case.deterministic else THREADS[1:2]
        prints = []
        for k, threads in enumerate(runs):
            ns = compiled.fresh()
            memory = Memory(ns)
            result, error = self._call(compiled, compiled.call, ns, ident, threads, case.tuning)
            outputs = [ns.get(name) for name in case.outputs]
            prints.append(("raised", type(error).__name__) if error else
                          (_fingerprint(result), memory.after()))
            if k:
                continue
            first = (threads, result, error, ns)
            # (a) and (b) / (c)
            if error is not None:
                self._check_error(compiled, ident, threads, error, expected, unsure, memory)
            else:
                changed = memory.changed(outputs)
                if changed:
                    self.report("input-modified", compiled, ident, threads,
                                "bytes outside out= changed: " + _describe(changed), changed=changed)
                if expected:
                    self.report("missing-error", compiled, ident, threads,
                                f"returned; expected {_names(expected)}")
        # (e)
        if len(set(map(repr, prints))) > 1:
            self.report("threads", compiled, ident, runs[0],
                        "different outcomes on " + ", ".join(f"{n} threads: {_brief(p)}" for n, p in zip(runs, prints)))
        # (d)
        threads, result, error, ns = first
        if error is None and not expected:
            self._check_reference(compiled, ident, threads, result, inputs, ns)
        elif error is not None and case.ref_errors and self._as_expected(error, expected, unsure):
            # the exception types are comparable when one argument alone is bad
            self._check_reference_rejects(compiled, ident, threads, error, len(expected) == 1 and not unsure)

    @staticmethod
    def _as_expected(error, expected, unsure):
        """The call raised an exception of a bad argument (``expected``) or of one it may
        reject (``unsure``)."""
        return any(isinstance(error, t) for types_ in expected + unsure for t in types_)

    def _check_error(self, compiled, ident, threads, error, expected, unsure, memory):
        case = compiled.case
        allowed = ALLOWED + ((MemoryError,) if case.big_alloc else ())
        if not isinstance(error, allowed):
            self.report("bad-exception", compiled, ident, threads, _exc(error), error=error)
        elif not self._as_expected(error, expected, unsure):
            if expected:
                self.report("wrong-error", compiled, ident, threads,
                            f"{_exc(error)}; expected {_names(expected + unsure)}", error=error)
            else:
                self.report("unexpected-error", compiled, ident, threads, f"{_exc(error)} on a valid call",
                            error=error)
        changed = memory.changed()
        if changed:
            self.report("written-on-error", compiled, ident, threads,
                        f"{_exc(error)}, and bytes changed: {_describe(changed)}", changed=changed, error=error)

    def _check_reference(self, compiled, ident, threads, result, inputs, ns):
        """(d) for a call that returned: the reference accepts the same call, and gives the
        same result within the bars (in the domain)."""
        case = compiled.case
        if case.ref_errors and case.outputs:  # the reference must accept the same out= as well
            _, ref_error = self._reference(compiled, compiled.ref_errors)
            if ref_error is not None:
                self._report_reference_raised(compiled, ident, threads, ref_error)
                return
        if not case.domain or not case.oracle:
            return
        expected = None
        if case.oracle not in oracle.WITHOUT_REFERENCE:
            expected, ref_error = self._reference(compiled, compiled.ref_value)
            if ref_error is not None:
                self._report_reference_raised(compiled, ident, threads, ref_error)
                return
        params = dict(DEFAULTS)
        try:
            params.update({k: eval(v, inputs) for k, v in case.params.items()})
        except Exception as e:
            raise HarnessError(f"an oracle parameter raised {type(e).__name__}: {e}") from e
        params["out"] = ns.get(params["out"]) if params["out"] else None
        try:
            oracle.ORACLES[case.oracle](result, expected, types.SimpleNamespace(**params))
        except AssertionError as e:
            self.report("value", compiled, ident, threads, str(e) or "assertion failed")

    def _check_reference_rejects(self, compiled, ident, threads, error, same_type):
        """(d) for a call that raised: the reference raises too (``same_type``: a compatible
        exception, one a subclass of the other)."""
        _, ref_error = self._reference(compiled, compiled.ref_errors)
        if ref_error is None:
            self.report("ref-accepts", compiled, ident, threads, f"fastsoftmax raised {_exc(error)}, the reference "
                        "returned", ref=compiled.case.ref_errors, error=error)
        elif not isinstance(ref_error, ALLOWED):
            self.report("ref-bad-exception", compiled, ident, threads, f"the reference raised {_exc(ref_error)}",
                        ref=compiled.case.ref_errors)
        elif same_type and not (isinstance(ref_error, type(error)) or isinstance(error, type(ref_error))):
            self.report("ref-error-type", compiled, ident, threads,
                        f"fastsoftmax raised {_exc(error)}, the reference {_exc(ref_error)}",
                        ref=compiled.case.ref_errors, error=error)

    def _report_reference_raised(self, compiled, ident, threads, ref_error):
        kind = "ref-raises" if isinstance(ref_error, ALLOWED) else "ref-bad-exception"
        code = compiled.case.ref_errors if compiled.case.outputs else compiled.case.ref_value
        self.report(kind, compiled, ident, threads,
                    f"fastsoftmax returned, the reference raised {_exc(ref_error)}", ref=code)

    def _reference(self, compiled, code):
        ns = compiled.fresh()
        try:
            exec(code, ns)
            return ns.get("result"), None
        except Exception as e:
            return None, e

    # ---- reports
    def report(self, kind, compiled, ident, threads, message, **details):
        case = compiled.case
        self.violations[kind] += 1
        self.by_family[kind, case.family] += 1
        seen = self.by_family[kind, case.family]
        head = f"VIOLATION [{kind}] {case.family}: {ident}, {threads} thread(s): {message.splitlines()[0]}"
        if seen <= SHOW_FULL:
            try:
                text = reproducer(compiled.case, kind, message, ident, threads, **details)
            except Exception:  # a case whose setup fails cannot be written out: its source then
                text = "\n".join(["# (no reproducer: " + traceback.format_exc().splitlines()[-1] + ")"]
                                  + compiled.case.setup + compiled.case.call)
            print(f"{head}\n{text}", file=self.out)
        elif seen <= SHOW_FULL + SHOW_BRIEF:
            print(head, file=self.out)
        elif seen == SHOW_FULL + SHOW_BRIEF + 1:
            print(f"(further [{kind}] violations of {case.family} are counted, not printed)", file=self.out)
        self.out.flush()

    def to_terminal(self):
        """Report to the process's stderr from now on, after what was written to a captured
        output (a StringIO) so far."""
        if hasattr(self.out, "getvalue"):
            sys.__stderr__.write(self.out.getvalue())
            self.out = sys.__stderr__

    def close(self):
        """Stop the watchdog (the counts stay)."""
        self.watchdog.stop()

    def summary(self):
        """The last line: cases, violations by kind, time."""
        total = sum(self.violations.values())
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(self.violations.items())) or "none"
        line = (f"fuzz summary ({self.label}): {self.cases} cases, {total} violations ({kinds}), "
                f"{time.monotonic() - self.start:.1f} s")
        print(line, file=self.out)
        self.out.flush()
        return line


def _exc(e):
    return f"{type(e).__name__}: {e}"


def _names(expected):
    return " or ".join(sorted({t.__name__ for types_ in expected for t in types_}))


def _describe(changed):
    return "; ".join(f"{'/'.join(names)} ({n} bytes)" for names, n in changed)


def _brief(fingerprint):
    if fingerprint[0] == "raised":
        return f"raised {fingerprint[1]}"
    return "result " + hashlib.sha1(repr(fingerprint).encode()).hexdigest()[:10]


# ----------------------------------------------------------------------------- reproducers

_HELPER_CALL = re.compile(r"\b(values|probs|classes)\(")
LITERAL_MAX = 24  # arrays of at most this many elements are written out


def _calls(text):
    """(start, end) of each helpers.values / probs / classes call in ``text``."""
    for m in _HELPER_CALL.finditer(text):
        depth = 0
        for end in range(m.end() - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                yield m.start(), end + 1
                break


def _literal(a):
    """Source of ``a`` (exact values)."""

    def item(v):
        if isinstance(v, list):
            return "[" + ", ".join(item(x) for x in v) + "]"
        if isinstance(v, float):
            return {"nan": "np.nan", "inf": "np.inf", "-inf": "-np.inf"}.get(repr(v), repr(v))
        if isinstance(v, complex):
            return f"complex({item(v.real)}, {item(v.imag)})"
        return repr(v)

    body = item(a.tolist())
    dtype = "object" if a.dtype == object else a.dtype.name
    text = f"np.array({body}, dtype='{dtype}')"
    return f"{text}.reshape({a.shape!r})" if a.size == 0 else text


def _inline_small_arrays(line):
    """``line`` with its small helper-built arrays written out as literals."""
    out, last = [], 0
    for start, end in _calls(line):
        if start < last:
            continue
        value = eval(line[start:end], namespace())
        if value.size <= LITERAL_MAX:
            out.append(line[last:start] + _literal(value))
            last = end
    return "".join(out) + line[last:]


def reproducer(case, kind, message, ident, threads, changed=(), ref=None, error=None):
    """A standalone Python script that shows the violation."""
    setup = [_inline_small_arrays(line) for line in case.setup]
    body = "\n".join(setup + case.call + (case.ref_value or []) + (ref or []))
    lines = [f"# fastsoftmax fuzz: [{kind}] in {case.family}; {ident}; {threads} thread(s)"]
    lines += ["# " + line for line in message.splitlines()[:6]]
    lines += ["import numpy as np", "import fastsoftmax as fs"]
    if re.search(r"\bref\.", body):
        lines.append("from fastsoftmax import reference as ref")
    if re.search(r"\bsampling\.", body):
        lines.append("from fastsoftmax import sampling")
    if kind == "threads":
        lines.append("import hashlib")
    lines.append("")
    for name, fn in HELPERS.items():
        if re.search(rf"\b{name}\(", "\n".join(setup)):
            lines += [inspect.getsource(fn).rstrip(), ""]
    tuning = "" if case.tuning == (0, 0) else f"fs._kernels.set_tuning{case.tuning!r}  # small problems threaded"
    if kind == "threads":
        lines += ["def digest(v):", "    if isinstance(v, (tuple, list)):", "        return [digest(a) for a in v]",
                  "    a = np.asarray(v)", "    return a.dtype.str, a.shape, hashlib.sha1(a.tobytes()).hexdigest()[:12]",
                  "", "", "for n in (1, 2, 3):", "    fs.set_num_threads(n)"]
        lines += ["    " + tuning] if tuning else []
        lines += ["    " + line for line in setup] + ["    try:"]
        lines += ["        " + line for line in case.call]
        lines += ["        print(n, digest(result), [digest(v) for k, v in sorted(locals().items())",
                  "                                   if isinstance(v, np.ndarray)])",
                  "    except Exception as e:", "        print(n, type(e).__name__, e)"]
        return "\n".join(lines) + "\n"
    lines += setup
    lines += [f"fs.set_num_threads({threads})"] + ([tuning] if tuning else [])
    if changed:
        names = sorted({n for group, _ in changed for n in group if "[" not in n})  # (not tuple items)
        lines.append(f"before = {{k: v.copy() for k, v in dict({', '.join(f'{n}={n}' for n in names)}).items()}}")
    if kind == "value":  # the reference first: the call may write over its inputs
        lines += [line.replace("result", "expected", 1) if line.startswith("result") else line
                  for line in case.ref_value]
    if error is not None or changed:
        lines += ["try:"] + ["    " + line for line in case.call]
        lines += ["except Exception as e:", "    print('fastsoftmax raised', type(e).__name__, e)"]
    else:
        lines += case.call + ["print('fastsoftmax:', result)"]
    if changed:
        lines += ["for k, v in before.items():",
                  "    print(k, 'unchanged' if v.tobytes() == globals()[k].tobytes() else 'CHANGED')"]
    if kind == "value":
        lines.append("print('reference:  ', expected)")
    if ref:
        lines += ["try:"] + ["    " + line for line in ref]
        lines += ["    print('reference returned', result)", "except Exception as e:",
                  "    print('reference raised', type(e).__name__, e)"]
    m = re.match(r"seed (\d+), case (\d+)", ident)
    if m:
        lines.append(f"# replay: python tools/fuzz.py random --seed {m.group(1)} --case {m.group(2)}")
    return "\n".join(lines) + "\n"
