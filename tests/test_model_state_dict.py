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
