"""Parameter groups, schedule and checkpoint files."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from univlg.errors import CheckpointError, ConfigError
from univlg.model.state_dict import load_model_state
from univlg.train.checkpoint import load_checkpoint, save_checkpoint
from univlg.train.optim import build_param_groups, warmup_cosine_factor


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(2, 2)
        self.backbone_proj = nn.Linear(2, 2)  # must not match "backbone" by substring
        self.norm = nn.LayerNorm(2)
        self.queries = nn.Embedding(3, 2)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def test_param_groups_by_module_prefix_and_no_decay_on_norms():
    groups = build_param_groups(Toy(), base_lr=1e-3, weight_decay=0.05, lr_multipliers={"backbone": 0.1})
    where = {name: (g["lr"], g["weight_decay"]) for g in groups for name in g["names"]}
    assert where["backbone.weight"] == pytest.approx((1e-4, 0.05))
    assert where["backbone_proj.weight"] == pytest.approx((1e-3, 0.05))
    assert where["norm.weight"] == pytest.approx((1e-3, 0.0)) and where["norm.bias"][1] == 0.0
    assert where["queries.weight"] == pytest.approx((1e-3, 0.0))
    assert "frozen.weight" not in where
    with pytest.raises(ConfigError, match=r"lr_multipliers: unknown module path\(s\) or parameter\(s\) \['decoder'\]"):
        build_param_groups(Toy(), 1e-3, 0.05, {"decoder": 0.1})


def test_a_parameter_name_takes_precedence_over_its_module():
    groups = build_param_groups(Toy(), 1e-3, 0.0, {"backbone": 0.1, "backbone.bias": 10.0})
    where = {name: g["lr"] for g in groups for name in g["names"]}
    assert where["backbone.weight"] == pytest.approx(1e-4) and where["backbone.bias"] == pytest.approx(1e-2)


def test_warmup_cosine_schedule():
    assert warmup_cosine_factor(0, 100, 10, 0.001) == pytest.approx(0.001)
    assert warmup_cosine_factor(5, 100, 10, 0.001) == pytest.approx(0.5005)
    assert warmup_cosine_factor(10, 100, 10, 0.001) == pytest.approx(1.0)
    assert warmup_cosine_factor(55, 100, 10, 0.001) == pytest.approx(0.5)
    assert warmup_cosine_factor(100, 100, 10, 0.001) == pytest.approx(0.0, abs=1e-12)
    assert warmup_cosine_factor(0, 100, 10, 1.0) == 1.0  # the paper's factor: no effective warm-up


def test_checkpoint_roundtrip_is_atomic(tmp_path):
    model = Toy()
    path = tmp_path / "ckpt" / "last.pt"
    save_checkpoint(path, {"model": model.state_dict(), "step": 7})
    before = path.read_bytes()
    with pytest.raises(AttributeError, match="pickle"):
        save_checkpoint(path, {"model": model.state_dict(), "bad": lambda: None})  # a local lambda cannot be pickled
    assert path.read_bytes() == before  # the old file survives a failed write
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary left behind
    state = load_checkpoint(path)
    other = Toy()
    load_model_state(other, state["model"], str(path))
    assert state["step"] == 7 and torch.equal(other.backbone.weight, model.backbone.weight)


def test_corrupted_and_mismatched_checkpoints_are_reported(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    state = Toy().state_dict()
    state["extra.weight"] = torch.zeros(1)
    state["norm.weight"] = torch.zeros(5)
    del state["backbone.bias"]
    with pytest.raises(CheckpointError) as info:
        load_model_state(Toy(), state, "x.pt")
    message = str(info.value)
    assert "missing (1): ['backbone.bias']" in message and "extra.weight" in message and "norm.weight" in message
