"""Checkpoints written under another transformers release load: renamed DINOv2 tensors are matched by name."""

import pytest
import torch
from torch import nn

from univlg.errors import CheckpointError
from univlg.model.state_dict import load_model_state


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj = nn.Linear(2, 2)
        self.o_proj = nn.Linear(2, 2)


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = Attention()


def test_older_attention_names_load_into_the_installed_names():
    model = nn.ModuleDict({"layer": Layer()})
    old = {
        "layer.attention.attention.query.weight": torch.full((2, 2), 1.0),
        "layer.attention.attention.query.bias": torch.full((2,), 2.0),
        "layer.attention.output.dense.weight": torch.full((2, 2), 3.0),
        "layer.attention.output.dense.bias": torch.full((2,), 4.0),
    }
    load_model_state(model, old, "old.safetensors")
    assert torch.equal(model["layer"].attention.q_proj.weight, old["layer.attention.attention.query.weight"])
    assert torch.equal(model["layer"].attention.o_proj.bias, old["layer.attention.output.dense.bias"])


def test_a_name_without_a_counterpart_is_still_reported():
    model = nn.ModuleDict({"layer": Layer()})
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["layer.attention.attention.key.weight"] = torch.zeros(2, 2)  # the model has no k_proj
    with pytest.raises(CheckpointError, match="unexpected"):
        load_model_state(model, state, "x.safetensors")


def test_matching_state_loads_what_fits_and_reports_what_it_lacks():
    from univlg.model.state_dict import load_matching_state

    source = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    target = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2), nn.Linear(2, 5))
    before = target[2].weight.detach().clone()
    kept = load_matching_state(target, source.state_dict(), "source")
    assert kept == ["2.bias", "2.weight"]
    assert torch.equal(target[0].weight, source[0].weight) and torch.equal(target[1].bias, source[1].bias)
    assert torch.equal(target[2].weight, before)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_matching_state(nn.Sequential(nn.Linear(3, 5)), source.state_dict(), "source")
    with pytest.raises(CheckpointError, match="unexpected"):
        load_matching_state(nn.Sequential(nn.Linear(3, 4)), source.state_dict(), "source")
