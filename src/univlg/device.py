"""The torch device a command or a training run uses, from the ``--device`` / ``device`` setting."""

from __future__ import annotations

import torch

from univlg.errors import ConfigError

DEVICE_HELP = "auto (a GPU when available, else the CPU), cpu, cuda or cuda:N"


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"``: the current CUDA device when CUDA is available, else the CPU; ``"cpu"``; ``"cuda"`` or
    ``"cuda:N"``.

    Raises:
        ConfigError: an unknown name, or a CUDA device that is not available.
    """
    text = str(name).strip().lower()
    if text == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError) as error:
        raise ConfigError(f"device {name!r}: expected {DEVICE_HELP}") from error
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {name!r}: expected {DEVICE_HELP}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for but CUDA is not available here; use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device
