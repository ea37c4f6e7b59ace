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


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A small synthetic dataset (2 train, 1 val, 1 test scene; 10 frames 80x60) in the on-disk formats."""
    from univlg.data.synthetic.generate import generate
    from univlg.data.synthetic.generate_scene import SynthSettings

    root = tmp_path_factory.mktemp("synthetic")
    settings = SynthSettings(frames=10, width=80, height=60, referrals_per_scene=8, questions_per_scene=4)
    generate(root, {"train": 2, "val": 1, "test": 1}, seed=11, settings=settings, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_tokenize():
    """The tokenising function of the ``tiny`` preset (the packaged MiniLM tokenizer), texts -> TextBatch."""
    from univlg.config import TextEncoderConfig
    from univlg.data.batch import tokenize
    from univlg.model.text_encoder import load_tokenizer

    tokenizer = load_tokenizer(TextEncoderConfig())
    return lambda texts: tokenize(tokenizer, list(texts), 128)


@pytest.fixture(scope="session")
def eval_checkpoint(tmp_path_factory):
    """A saved random micro model whose mask head is redrawn wider, so its masks are neither empty nor everything."""
    from tests.test_model_fixtures import micro_config
    from univlg.model import build_model

    torch.manual_seed(0)
    model = build_model(micro_config())
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "mask_embed" in name:
                parameter.normal_(0.0, 0.6)
    return model.save_pretrained(tmp_path_factory.mktemp("eval_ckpt") / "ckpt")
