"""The digits example (clients/python/examples/digits.py), shortened: a
few epochs of each model on scikit-learn's bundled 8x8 digits must reach
an accuracy far above chance (10 %). The full run, from the README's main
job, reaches 95 % and more."""
import os
import sys

import pytest

from conftest import ROOT

EXAMPLES = os.path.join(ROOT, "clients", "python", "examples")


@pytest.fixture(scope="module")
def digits(jt):
    pytest.importorskip("sklearn", reason="the digits example needs scikit-learn")
    from kiln import graph
    if not graph.runtime().has_autodiff():
        pytest.skip("this kilnd has no autodiff")
    sys.path.insert(0, EXAMPLES)
    try:
        import digits
    finally:
        sys.path.remove(EXAMPLES)
    return digits


@pytest.mark.parametrize("name, epochs, least", [("mlp", 4, 0.85), ("cnn", 3, 0.6)])
def test_digits_short_training(digits, name, epochs, least):
    data = digits.load(0)
    assert len(data[1]) == 1438 and len(data[3]) == 359  # 80/20 of 1797
    acc, _ = digits.train(name, data, epochs, 64, 0.0, 0, progress=False)
    assert acc > least, (name, acc)
