"""The answer-generation head: labels, teacher forcing, greedy decoding, the loss, checkpoints, the QA data."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from tests.test_model_fixtures import micro_config
from univlg.config import AnswerHeadConfig, TextEncoderConfig
from univlg.data.datasets import QuestionDataset, SampleOptions, SceneSampler
from univlg.data.formats.scanqa import read_scanqa_json
from univlg.data.scene_store import SceneStore
from univlg.errors import ConfigError
from univlg.model import UniVLG, build_model
from univlg.model.answer_head import IGNORE, build_answer_head
from univlg.model.text_encoder import load_tokenizer
from univlg.train.losses import answer_loss

HEAD = AnswerHeadConfig(enabled=True, dim=32, num_layers=2, num_heads=2, ffn_dim=64, max_answer_tokens=4)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(TextEncoderConfig())


def test_labels_end_with_the_end_token_and_pad_with_ignore(tokenizer):
    head = build_answer_head(HEAD, 16, tokenizer)
    labels = head.labels(["Brown", "a b c d e", None])
    brown = tokenizer("brown", add_special_tokens=False)["input_ids"]
    letters = tokenizer("a b c", add_special_tokens=False)["input_ids"]
    sep = tokenizer.sep_token_id
    assert labels[0].tolist() == brown + [sep] + [IGNORE] * (4 - len(brown) - 1)
    assert labels[1].tolist() == letters + [sep]  # cut to max_answer_tokens, the end kept
    assert labels[2].tolist() == [IGNORE] * 4


def test_teacher_forcing_is_causal_and_its_first_step_is_what_greedy_decoding_picks(tokenizer):
    torch.manual_seed(0)
    head = build_answer_head(HEAD, 16, tokenizer).eval()
    queries = torch.randn(2, 5, 16)
    labels = torch.tensor([[2829, 2048, 102], [2048, 102, IGNORE]])
    with torch.no_grad():
        logits = head(queries, labels)
        changed = labels.clone()
        changed[:, 1] = 7592
        other = head(queries, changed)
    assert logits.shape == (2, 3, len(tokenizer))
    assert torch.allclose(logits[:, :2], other[:, :2], atol=1e-5)  # positions 0-1 see labels before index 1 only
    assert not torch.allclose(logits[:, 2], other[:, 2])
    allowed = logits[:, 0].clone()
    allowed[:, [tokenizer.sep_token_id, tokenizer.pad_token_id]] = float("-inf")  # an answer has a token
    first = allowed.argmax(-1)
    generated = head.generate(queries, max_new_tokens=1)
    assert generated == [tokenizer.decode([int(t)], skip_special_tokens=True).strip() for t in first]


def test_answer_loss_is_the_mean_cross_entropy_of_the_answered_tokens():
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]], [[0.5, 0.5, 3.0], [9.0, 9.0, 9.0]]])
    labels = torch.tensor([[0, 1], [2, IGNORE]])

    def nll(row, target):
        return math.log(sum(math.exp(v) for v in row)) - row[target]

    expected = (nll([2.0, 0.0, -1.0], 0) + nll([0.0, 1.0, 0.0], 1) + nll([0.5, 0.5, 3.0], 2)) / 3
    assert answer_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)
    assert answer_loss(logits, torch.full_like(labels, IGNORE)).item() == 0.0


def test_a_head_trained_on_fixed_queries_writes_their_answers(tokenizer):
    torch.manual_seed(0)
    head = build_answer_head(dataclasses.replace(HEAD, max_answer_tokens=8), 16, tokenizer)
    queries = torch.randn(2, 5, 16)
    labels = head.labels(["brown", "two chairs"])
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(120):
        loss = answer_loss(head(queries, labels), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert head.eval().generate(queries, max_new_tokens=6) == ["brown", "two chairs"]


def test_checkpoints_store_tied_embeddings_once_and_reload_the_same_answers(tmp_path, synthetic_root):
    from safetensors import safe_open

    torch.manual_seed(0)
    cfg = dataclasses.replace(micro_config(), answer=HEAD)
    model = build_model(cfg).eval()
    folder = model.save_pretrained(tmp_path / "qa")
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        names = set(f.keys())
    assert "answer_head.t5.shared.weight" in names
    assert "answer_head.t5.lm_head.weight" not in names and "answer_head.t5.decoder.embed_tokens.weight" not in names
    scene = SceneStore(synthetic_root / "scans").get("synth_val_0000")
    questions = ["what colour is the chair?", "how many tables are there?"]
    reloaded = UniVLG.from_pretrained(folder)
    assert reloaded.answer(scene, questions, max_new_tokens=4) == model.answer(scene, questions, max_new_tokens=4)
    with pytest.raises(ConfigError, match="no answer-generation head"):
        build_model(micro_config()).answer(scene, questions)


def test_question_samples_ground_relevant_objects_and_carry_an_answer(synthetic_root):
    questions = read_scanqa_json(synthetic_root / "scanqa" / "ScanQA_v1.0_train.json")
    sampler = SceneSampler(SceneStore(synthetic_root / "scans"), 8, SampleOptions(num_frames=3, max_points=2000))
    dataset = QuestionDataset(sampler, questions)
    assert len(dataset) == sum(1 for q in questions if q.answers) > 0
    index = next(i for i, q in enumerate(dataset.questions) if q.object_ids)
    sample = dataset.sample(index, 5)
    question = dataset.questions[index]
    assert sample.text == question.question + " find relevant objects"
    assert all(sample.text[a:b] == "relevant objects" for spans in sample.spans for a, b in spans)
    assert sample.answer in question.answers
    assert set(sample.info["object_ids"]) <= set(question.object_ids)
    again = dataset.sample(index, 5)  # a pure function of (index, seed)
    assert (again.answer, again.info, again.text) == (sample.answer, sample.info, sample.text)


def test_a_question_about_nothing_is_a_sample_without_objects_and_its_loss_is_finite(synthetic_root, tiny_tokenize):
    from univlg.data.collate import collate_training
    from univlg.data.records import Question
    from univlg.train.losses import SetCriterion
    from univlg.train.matcher import HungarianMatcher
    from univlg.train.targets import SampleTargets

    sampler = SceneSampler(SceneStore(synthetic_root / "scans"), 8, SampleOptions(num_frames=2, max_points=500))
    dataset = QuestionDataset(sampler, [Question("synth_train_0000", "is there a ball in the room?", ("no",))])
    sample = dataset.sample(0, 1)
    assert sample.answer == "no" and sample.spans == [] and sample.point_masks.shape[0] == 0
    batch = collate_training([sample], tiny_tokenize)
    assert batch.positive_maps[0].shape[0] == 0
    span = torch.randn(1, 1, 4, batch.batch.text.input_ids.shape[1])
    masks = torch.randn(1, 1, 4, 10)
    target = SampleTargets(batch.positive_maps[0], torch.zeros(0, 10))
    losses = SetCriterion(HungarianMatcher())(
        span, batch.batch.text.attention_mask, masks, torch.ones(1, 10, dtype=torch.bool), [target]
    )
    assert torch.isfinite(losses["loss"]) and losses["loss_mask_0"].item() == 0.0


def test_greedy_decoding_writes_at_least_one_token(tokenizer):
    torch.manual_seed(0)
    head = build_answer_head(HEAD, 16, tokenizer).eval()
    end = tokenizer.sep_token_id

    def favour_end(module, inputs, output):
        output.logits[..., end] += 100.0  # the end token wins every step it is allowed
        return output

    head.t5.register_forward_hook(favour_end)
    answers = head.generate(torch.randn(2, 5, 16), max_new_tokens=4)
    assert all(len(a) > 0 for a in answers)


def test_situations_are_read_before_their_questions(synthetic_root, monkeypatch):
    model = build_model(dataclasses.replace(micro_config(), answer=HEAD)).eval()
    scene = SceneStore(synthetic_root / "scans").get("synth_val_0000")
    read = []
    tokenize = model.tokenize
    monkeypatch.setattr(model, "tokenize", lambda texts: read.extend(texts) or tokenize(texts))
    model.answer(scene, ["is the lamp on?", "what is left of me?"], situations=["I face the desk.", ""],
                 max_new_tokens=1)  # fmt: skip
    assert read == ["I face the desk. is the lamp on? find relevant objects",
                    "what is left of me? find relevant objects"]  # fmt: skip
    with pytest.raises(ValueError, match="1 situations for 2 questions"):
        model.answer(scene, ["a?", "b?"], situations=["I sit."])
