"""The Examples sections of riemlearn.optim run (doctest)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["parameter", "problem", "sgd", "adam", "steepest_descent", "conjugate_gradient",
           "trust_regions", "lbfgs", "interop"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name == "interop":
        pytest.importorskip("geoopt")
        pytest.importorskip("pymanopt")
    mod = importlib.import_module(f"riemlearn.optim.{name}")
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0 and res.attempted > 0
