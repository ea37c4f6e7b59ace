"""The training engine: losses go down on a fixed batch, resume is exact, 2-process DDP keeps ranks identical."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.train_helpers import micro_train_config
from univlg.config import apply_overrides
from univlg.data.formats.referit3d import read_referit3d_csv
from univlg.errors import ConfigError
from univlg.train.config import load_train_config
from univlg.train.engine import train, validation_referrals

REPO = Path(__file__).resolve().parents[1]


def _losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return {row["step"]: row["train/loss"] for row in rows if "train/loss" in row}


def test_resume_continues_exactly(synthetic_root, tmp_path):
    whole = micro_train_config(synthetic_root, tmp_path / "whole")
    train(whole)
    split = micro_train_config(synthetic_root, tmp_path / "split")
    train(split, until=2)
    assert not (tmp_path / "split" / "model").exists()  # stopped early: no final model yet
    train(split, resume=True)
    expected, got = _losses(tmp_path / "whole"), _losses(tmp_path / "split")
    assert sorted(got) == [1, 2, 3, 4]
    assert got == expected  # bit-identical losses on CPU
    assert (tmp_path / "split" / "model" / "model.safetensors").is_file()


def test_loss_decreases_when_overfitting_one_batch(synthetic_root, tmp_path):
    cfg = micro_train_config(synthetic_root, tmp_path / "overfit", steps=30, log_every=1)
    cfg = apply_overrides(cfg, ["data.augment=false", "optim.warmup_steps=1", "data.prob_2d=0.0"])
    cfg.data.sources = cfg.data.sources[:1]
    # One fixed referral: the stream keeps drawing it.
    result = train(cfg)
    losses = _losses(tmp_path / "overfit")
    first, last = sum(losses[s] for s in (1, 2, 3)) / 3, sum(losses[s] for s in (28, 29, 30)) / 3
    assert last < 0.6 * first, f"mean loss {first:.2f} -> {last:.2f}"
    assert result.metrics["train/loss"] == losses[30]


def test_question_batches_train_the_answer_head(synthetic_root, tmp_path):
    import dataclasses

    from univlg.config import AnswerHeadConfig
    from univlg.data.formats.scanqa import read_scanqa_json
    from univlg.data.scene_store import SceneStore
    from univlg.model import UniVLG
    from univlg.train.config import SourceConfig

    cfg = micro_train_config(synthetic_root, tmp_path / "qa", steps=3)
    qa = str(synthetic_root / "scanqa" / "ScanQA_v1.0_train.json")
    cfg.data.sources = [SourceConfig(kind="qa", scans=str(synthetic_root / "scans"), annotations=qa)]
    cfg.model.answer = AnswerHeadConfig(enabled=True, dim=32, num_layers=1, num_heads=2, ffn_dim=64)
    train(cfg)
    rows = [json.loads(line) for line in (tmp_path / "qa" / "log.jsonl").read_text().splitlines()]
    answer_terms = [row["train/answer"] for row in rows if "train/answer" in row]
    assert len(answer_terms) == 3 and all(0 < v < float("inf") for v in answer_terms)
    model = UniVLG.from_pretrained(tmp_path / "qa" / "model")
    # fine-tuning start: a grounding-only model's tensors, the new head's own init (lr 0 keeps both as they start)
    tuned = dataclasses.replace(cfg, init_weights=str(tmp_path / "qa" / "model"), output_dir=str(tmp_path / "ft"))
    tuned = apply_overrides(tuned, ["optim.lr=0.0", "steps=1"])
    tuned.model.answer = dataclasses.replace(cfg.model.answer, num_layers=2)  # a head the folder cannot fill
    train(tuned)
    start, tuned_model = model.state_dict(), UniVLG.from_pretrained(tmp_path / "ft" / "model").state_dict()
    shared = [k for k in tuned_model if not k.startswith("answer_head.t5.decoder.block.1.")]
    assert all(torch.equal(tuned_model[k], start[k]) for k in shared)
    question = read_scanqa_json(qa)[0]
    scene = SceneStore(synthetic_root / "scans").get(question.scene_id)
    answers = model.answer(scene, [question.question], max_new_tokens=3)
    assert len(answers) == 1 and isinstance(answers[0], str)


def test_relation_geometry_term_trains_on_referral_batches(synthetic_root, tmp_path):
    """With the term on, the trainer gives referral samples their distractors and the term is logged: positive
    (a softmax NLL over at least two candidates) on every step whose batch has a referral with distractors."""
    cfg = micro_train_config(synthetic_root, tmp_path / "geometry", steps=3)
    cfg = apply_overrides(cfg, ["model.decoder.relation_head=true", "loss.relation_geometry=1.0", "data.prob_2d=0.0"])
    cfg.data.sources = cfg.data.sources[:1]  # referrals only
    train(cfg)
    rows = [json.loads(line) for line in (tmp_path / "geometry" / "log.jsonl").read_text().splitlines()]
    terms = [row["train/relation_geometry"] for row in rows if "train/relation_geometry" in row]
    assert len(terms) == 3 and any(v > 0 for v in terms) and all(0 <= v < float("inf") for v in terms)


def test_validation_reuses_the_training_store_and_filters_referrals(synthetic_root, tmp_path, monkeypatch):
    import univlg.train.data_stream as data_stream

    created = []

    class CountingStore(data_stream.SceneStore):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            created.append(self.root)

    monkeypatch.setattr(data_stream, "SceneStore", CountingStore)
    val = tmp_path / "sr3d_val.csv"
    rows = (synthetic_root / "referit3d" / "sr3d_val.csv").read_text().splitlines()
    # the second row does not mention its target's class: validation drops it, as univlg eval does
    rows[2] = rows[2].replace(",True,True,", ",False,True,")
    val.write_text("\n".join(rows) + "\n")
    cfg = micro_train_config(synthetic_root, tmp_path / "val", steps=2, val_every=1)
    cfg = apply_overrides(cfg, [f"data.val_scans={synthetic_root / 'scans'}", f"data.val_annotations={val}"])
    assert [r.utterance for r in validation_referrals(cfg)] == [
        r.utterance for i, r in enumerate(read_referit3d_csv(val)) if i != 1
    ]
    result = train(cfg)
    assert created == [synthetic_root / "scans"]  # one store for training and both validations
    logged = [json.loads(line) for line in (tmp_path / "val" / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in logged if "val/acc@0.25" in row] == [1, 2]
    assert 0.0 <= result.metrics["val/acc@0.25"] <= 1.0


def test_config_file_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model_preset: tiny\nmodel:\n  decoder: {num_queries: 12}\nsteps: 7\n")
    cfg = load_train_config(path, ["optim.lr=0.01", "model.decoder.num_layers=2"])
    assert cfg.steps == 7 and cfg.optim.lr == 0.01
    assert cfg.model.decoder.num_queries == 12 and cfg.model.decoder.num_layers == 2
    assert cfg.model.image_encoder.patch_size == 8  # the rest comes from the tiny preset
    with pytest.raises(ConfigError, match="box_loss"):
        load_train_config(path, ["loss.box_loss=hard"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_train_config(path, ["optim.learning_rate=1"])
    with pytest.raises(ConfigError, match="put 'model_preset: NAME' in"):
        load_train_config(path, ["model_preset=paper"])
    with pytest.raises(ConfigError, match=r"cannot be negative: \['query_rank'\]"):
        load_train_config(path, ["loss.query_rank=-1"])
    with pytest.raises(ConfigError, match="model.decoder.relation_classes"):
        load_train_config(path, ["loss.relation_class=1", "model.decoder.relation_head=true"])
    for term in ("relation_anchor", "relation_geometry"):
        with pytest.raises(ConfigError, match=f"loss.{term} supervises the relation head"):
            load_train_config(path, [f"loss.{term}=1"])
    assert (
        load_train_config(path, ["loss.relation_anchor=1", "model.decoder.relation_head=true"]).loss.relation_anchor
        == 1
    )
    with pytest.raises(ConfigError, match="sentences_per_scene must be at least 1, got 0"):
        load_train_config(path, ["data.sentences_per_scene=0"])
    with pytest.raises(ConfigError, match="val_scans"):  # raised by train() itself, before any process starts
        data = dataclasses.replace(cfg.data, val_annotations="val.csv")
        train(dataclasses.replace(cfg, data=data, output_dir=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_two_process_ddp_keeps_ranks_identical(synthetic_root, tmp_path):
    out = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29531",
        str(REPO / "tests" / "ddp_worker.py"),
        str(synthetic_root),
        str(out),
    ]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    rank0, rank1 = (torch.load(out / f"rank{r}.pt") for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        torch.testing.assert_close(rank0[name], rank1[name], rtol=0, atol=0, msg=name)
    initial = torch.load(out / "initial.pt")
    assert any(not torch.equal(initial[k], rank0[k]) for k in rank0)  # the weights did train
