"""Run by torchrun in tests/test_train_engine.py: train 2 steps with DDP, save this rank's weights."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.train_helpers import micro_train_config  # noqa: E402
from univlg.model.univlg import build_model  # noqa: E402
from univlg.train.engine import train  # noqa: E402


def floating(state: dict) -> dict:
    return {k: v.detach().clone() for k, v in state.items() if v.dtype.is_floating_point}


def main() -> None:
    synthetic_root, out = Path(sys.argv[1]), Path(sys.argv[2])
    cfg = micro_train_config(synthetic_root, out, steps=2)
    cfg.data.sources = cfg.data.sources[:1]
    torch.manual_seed(cfg.seed)
    initial = floating(build_model(cfg.model).state_dict())
    result = train(cfg)  # joins the gloo group that torchrun set up, and leaves it at the end
    torch.save(floating(result.model.state_dict()), out / f"rank{result.rank}.pt")
    if result.rank == 0:
        torch.save(initial, out / "initial.pt")


if __name__ == "__main__":
    main()
