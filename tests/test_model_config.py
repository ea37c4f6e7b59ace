"""Model presets: the YAML files equal the presets, configs round-trip, bad configs fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_model_fixtures import micro_config
from univlg.config import ModelConfig, apply_overrides, load_config, paper_model_config, tiny_model_config
from univlg.errors import ConfigError
from univlg.model import build_model

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize(
    ("name", "preset"), [("model_tiny.yaml", tiny_model_config), ("model_paper.yaml", paper_model_config)]
)
def test_yaml_files_equal_the_presets(name, preset):
    assert load_config(ModelConfig, CONFIGS / name) == preset()


def test_paper_defaults_are_the_published_numbers():
    cfg = paper_model_config()
    assert cfg.image_encoder.feature_layers == (5, 11, 17, 23) and cfg.image_encoder.patch_size == 14
    assert cfg.backbone_3d.layers_per_level == (2, 2, 6, 2) and cfg.backbone_3d.cross_view.voxel_size == 0.08
    pd = cfg.pixel_decoder
    assert (pd.dim, pd.encoder_layers, pd.num_heads, pd.num_points, pd.ffn_dim) == (256, 6, 8, 4, 1024)
    assert (pd.cross_view.knn, pd.lift_voxel_size, pd.skip_voxel_size, pd.interp_knn) == (8, 0.04, 0.02, 8)
    d = cfg.decoder
    assert (d.dim, d.num_heads, d.ffn_dim, d.num_layers, d.num_queries, d.temperature) == (256, 8, 2048, 9, 100, 0.07)
    assert cfg.text_encoder.max_length == 512 and cfg.output.voxel_size == 0.02


def test_overrides_and_inconsistent_configs():
    cfg = apply_overrides(tiny_model_config(), ["decoder.num_queries=50", "output.use_segments=false"])
    assert cfg.decoder.num_queries == 50 and not cfg.output.use_segments
    # YAML 1.1 reads 8e-4 (no dot) as a string; a float field still takes it
    assert apply_overrides(tiny_model_config(), ["decoder.anchor_sigma=8e-4"]).decoder.anchor_sigma == 8e-4
    with pytest.raises(ConfigError, match="expected float"):
        apply_overrides(tiny_model_config(), ["decoder.anchor_sigma=wide"])
    with pytest.raises(ConfigError, match="must equal decoder.dim"):
        build_model(apply_overrides(micro_config(), ["decoder.dim=64"]))
    with pytest.raises(ConfigError, match="needs image_encoder.path"):
        build_model(apply_overrides(micro_config(), ["image_encoder.pretrained=true"]))
    cut = apply_overrides(tiny_model_config(), ["output.grounding_component_cell=0.1"])
    assert cut.output.grounding_component_cell == 0.1 and cut.output.grounding_component_fraction == 1.0
    with pytest.raises(ConfigError, match="grounding_component_cell must be positive"):
        apply_overrides(tiny_model_config(), ["output.grounding_component_cell=0"])
    with pytest.raises(ConfigError, match=r"grounding_component_fraction must be in \(0, 1\]"):
        apply_overrides(tiny_model_config(), ["output.grounding_component_fraction=1.5"])


def test_text_length_beyond_the_encoders_positions_is_a_config_error():
    from univlg.config import TextEncoderConfig
    from univlg.model.text_encoder import build_text_encoder, load_tokenizer

    cfg = TextEncoderConfig(max_length=520)  # the packaged MiniLM has 512 positions
    with pytest.raises(ConfigError, match="max_length 520 exceeds the 512 token positions"):
        build_text_encoder(cfg, 32, load_tokenizer(cfg))
    assert build_text_encoder(TextEncoderConfig(max_length=512), 32, load_tokenizer(cfg)).projector.out_features == 32
