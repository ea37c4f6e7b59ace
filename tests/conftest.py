"""Shared fixtures.

Real-data tests read ``../shared/realdata`` beside the checkout. A user's clone has no such folder: those tests
skip with a reason there, but fail when the ``CI`` environment variable is set (CI always has the data).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
REALDATA = REPO_ROOT.parent / "shared" / "realdata"


def require_realdata(*parts: str) -> Path:
    """The path ``../shared/realdata/<parts>``; skip (or fail under CI) when it is absent."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        message = f"real sample data not found at {path} (only present beside the project's own checkout)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def realdata() -> Path:
    """Root of the real sample data (see :func:`require_realdata`)."""
    return require_realdata()


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    np.random.seed(0)
    yield
