"""The examples in public docstrings run and print what they say (doctest)."""

from __future__ import annotations

import doctest
import importlib

import pytest

#: Modules whose public docstrings carry runnable examples.
MODULES_WITH_EXAMPLES = [
    "featstore.evaluate.encoding.estimator",
    "featstore.evaluate.metrics.alignment",
    "featstore.evaluate.metrics.agreement",
]


@pytest.mark.parametrize("name", MODULES_WITH_EXAMPLES)
def test_docstring_examples_run(name):
    outcome = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0
    assert outcome.failed == 0
