"""``univlg ground`` and ``univlg answer`` end to end on a rendered room written as a generic posed RGB-D folder."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import torch
from PIL import Image

from tests.test_model_fixtures import make_scene, micro_config
from univlg.cli import main
from univlg.config import AnswerHeadConfig
from univlg.model import build_model


def _write_scene(folder, scene):
    for sub in ("color", "depth", "pose"):
        (folder / sub).mkdir(parents=True)
    f = scene.frames
    for i, name in enumerate(f.names):
        Image.fromarray(f.rgb[i]).save(folder / "color" / f"{name}.png")
        np.save(folder / "depth" / f"{name}.npy", f.depth[i])
        np.savetxt(folder / "pose" / f"{name}.txt", f.cam_to_world[i])
    np.savetxt(folder / "intrinsics.txt", f.intrinsics[0])


def test_ground_command_writes_json_and_masks(tmp_path, capsys):
    torch.manual_seed(0)
    build_model(micro_config()).save_pretrained(tmp_path / "ckpt")
    _write_scene(tmp_path / "scene", make_scene(3, points=None))
    out = tmp_path / "res" / "g.json"
    argv = ["ground", "the red wall", "a lamp near the floor", "--checkpoint", str(tmp_path / "ckpt")]
    code = main(argv + ["--scene", str(tmp_path / "scene"), "--out", str(out), "--span", "wall", "--span", "lamp"])
    assert code == 0
    document = json.loads(out.read_text())
    assert [r["phrase"] for r in document["results"]] == ["wall", "lamp"]
    assert [r["span"] for r in document["results"]] == [[8, 12], [2, 6]]
    points = np.load(out.parent / document["points_file"])
    for result in document["results"]:
        mask = np.load(out.parent / result["mask_file"])
        assert mask.shape == (len(points),) and mask.dtype == bool
        assert 0.0 <= result["score"] <= 1.0
    assert "2 sentence(s)" in capsys.readouterr().out
    code = main(argv + ["--scene", str(tmp_path / "scene"), "--span", "sofa", "--span", "lamp"])
    assert code == 2 and "does not occur" in capsys.readouterr().err


def test_answer_command_prints_and_writes_one_answer_per_question(tmp_path, capsys):
    torch.manual_seed(0)
    head = AnswerHeadConfig(enabled=True, dim=32, num_layers=1, num_heads=2, ffn_dim=64, max_new_tokens=3)
    build_model(dataclasses.replace(micro_config(), answer=head)).save_pretrained(tmp_path / "qa")
    build_model(micro_config()).save_pretrained(tmp_path / "plain")
    _write_scene(tmp_path / "scene", make_scene(3, points=None))
    questions = ["what is on the table?", "how many chairs are there?"]
    out = tmp_path / "answers.json"
    argv = ["answer", *questions, "--scene", str(tmp_path / "scene"), "--out", str(out)]
    assert main(argv + ["--checkpoint", str(tmp_path / "qa")]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [r["question"] for r in rows] == questions and all(isinstance(r["answer"], str) for r in rows)
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"{q!r} -> {r['answer']!r}" for q, r in zip(questions, rows, strict=True)]
    assert main(argv + ["--checkpoint", str(tmp_path / "plain")]) == 2
    assert "no answer-generation head" in capsys.readouterr().err


def test_answer_command_passes_situations_per_question(tmp_path, capsys, monkeypatch):
    torch.manual_seed(0)
    head = AnswerHeadConfig(enabled=True, dim=32, num_layers=1, num_heads=2, ffn_dim=64, max_new_tokens=3)
    build_model(dataclasses.replace(micro_config(), answer=head)).save_pretrained(tmp_path / "qa")
    _write_scene(tmp_path / "scene", make_scene(3, points=None))
    seen = []

    def fake_answer(model, scene, questions, max_frames, max_new_tokens, situations):
        seen.append(situations)
        return ["yes"] * len(questions)

    monkeypatch.setattr("univlg.model.univlg.UniVLG.answer", fake_answer)
    out = tmp_path / "answers.json"
    argv = ["answer", "is the lamp on?", "what is left?", "--scene", str(tmp_path / "scene"), "--out", str(out),
            "--checkpoint", str(tmp_path / "qa")]  # fmt: skip
    assert main([*argv, "--situation", "I sit on the bed."]) == 0
    assert main([*argv, "--situation", "I sit on the bed.", "--situation", "I face the door."]) == 0
    assert [r["situation"] for r in json.loads(out.read_text())["results"]] == ["I sit on the bed.", "I face the door."]
    assert main(argv) == 0
    assert seen == [["I sit on the bed."] * 2, ["I sit on the bed.", "I face the door."], None]
    assert main([*argv, *["--situation", "a", "--situation", "b", "--situation", "c"]]) == 2
    assert "--situation given 3 times for 2 questions" in capsys.readouterr().err
