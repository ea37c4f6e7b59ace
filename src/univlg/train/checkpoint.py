"""Training checkpoints: written atomically, loaded with clear errors, enough state to resume exactly."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from univlg.errors import CheckpointError

FORMAT_VERSION = 1


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write ``state`` (model/optimizer/scheduler state dicts, step, config...) to ``path`` atomically.

    The file is written to a temporary name in the same folder and renamed over ``path``, so a crash never leaves
    a half-written checkpoint behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save({"format_version": FORMAT_VERSION, **state}, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; CheckpointError if missing or corrupted."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"{path}: corrupted or not a univlg training checkpoint ({error})") from error
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION or "model" not in state:
        raise CheckpointError(f"{path}: not a univlg training checkpoint (format version {FORMAT_VERSION} expected)")
    return state
