"""A tiny, fast training config over the synthetic fixture, shared by the engine tests and the DDP worker."""

from __future__ import annotations

from pathlib import Path

from univlg.train.config import TrainConfig, train_config_from_dict


def micro_train_config(synthetic_root: Path, output_dir: Path, **top) -> TrainConfig:
    """The ``tiny`` preset shrunk further (2 views, 1500 points, 1 decoder layer) for seconds-long steps."""
    scans = str(synthetic_root / "scans")
    data = {
        "model_preset": "tiny",
        "model": {
            "image_encoder": {"hidden_size": 32, "num_heads": 2},
            "pixel_decoder": {"dim": 32, "ffn_dim": 64, "num_heads": 2, "cross_view": {"dim": 32, "num_heads": 2}},
            "decoder": {"dim": 32, "ffn_dim": 64, "num_heads": 2, "num_layers": 1, "num_queries": 8},
        },
        "data": {
            "sources": [
                {"kind": "referral", "scans": scans, "annotations": str(synthetic_root / "referit3d/sr3d_train.csv")},
                {
                    "kind": "image_referral",
                    "scans": scans,
                    "annotations": str(synthetic_root / "refcoco/refs(synth_train).p"),
                    "instances": str(synthetic_root / "refcoco/instances_train.json"),
                },
            ],
            "num_frames": 2,
            "max_points": 1500,
        },
        "optim": {"lr": 1e-3, "warmup_steps": 1, "clip_norm": 1.0},
        "steps": 4,
        "log_every": 1,
        "checkpoint_every": 100,
        "output_dir": str(output_dir),
        "device": "cpu",
        **top,
    }
    return train_config_from_dict(data)
