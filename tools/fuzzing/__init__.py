"""The fastsoftmax fuzz harness (driven by ``tools/fuzz.py``).

* :mod:`.helpers` -- the array constructors every case is written with (their source is
  pasted into each printed reproducer);
* :mod:`.sources` -- where the generator's choices come from: a seeded NumPy generator
  (``random`` mode) or atheris's FuzzedDataProvider (``atheris`` mode);
* :mod:`.cases` -- the case generator: one public function or loss object, its arguments
  and what the call must do, as Python source;
* :mod:`.oracle` -- the comparisons with :mod:`fastsoftmax.reference` within
  ``reference.TOLERANCES`` (through the test suite's helpers in ``tests/conftest.py``);
* :mod:`.runner` -- runs a case on 1, 2 and 3 threads and checks the contract, prints
  the reproducers and keeps the counts.
"""
