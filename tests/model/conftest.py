"""Fixtures for the model tests. `torch` and `transformers` (the test extra) are fixtures, so a
test that needs them is skipped without them and the rest of its file still runs."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="session")
def transformers():
    return pytest.importorskip("transformers")


@pytest.fixture
def assert_close():
    def check(ours, theirs, name, atol=1e-5):
        ours = np.asarray(ours)
        theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
        assert ours.shape == theirs.shape, f"{name}: shape {ours.shape} != {theirs.shape}"
        diff = float(np.max(np.abs(ours - theirs)))
        assert diff <= atol, f"{name}: max abs difference {diff:.3g} > {atol}"
    return check
