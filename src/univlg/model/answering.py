"""Answering questions about a scene (reference 4): encode the scene once, decode each question with the
ScanQA prompt (``question + " find relevant objects"``; SQA3D puts the situation first), let the generation head
write from the last layer's queries.
"""

from __future__ import annotations

import torch

from univlg.data.records import Question
from univlg.data.scene import Scene
from univlg.errors import ConfigError
from univlg.model.grounding import check_sentences, encode_scene, eval_mode


def answer_questions(
    model,
    scene: Scene,
    questions: list[str],
    batch_size: int = 8,
    max_frames: int | None = 450,
    max_size: int | None = None,
    max_new_tokens: int | None = None,
    situations: list[str] | None = None,
) -> list[str]:
    """One greedy answer per question about ``scene`` (see :func:`univlg.model.grounding.ground_sentences` for
    ``max_frames`` / ``max_size``; ``max_new_tokens`` defaults to ``model.answer.max_new_tokens``);
    ``situations``: per question the SQA3D situation ("I am sitting on the bed.") read before it, or None.

    Raises:
        ConfigError: the model has no generation head. TypeError: ``questions`` is a single string.
        ValueError: ``situations`` and ``questions`` differ in length.
    """
    questions = check_sentences(questions)
    situations = [""] * len(questions) if situations is None else check_sentences(situations)
    if len(situations) != len(questions):
        raise ValueError(f"{len(situations)} situations for {len(questions)} questions")
    if model.answer_head is None:
        raise ConfigError("this model has no answer-generation head (model.answer.enabled is false)")
    prompts = [
        Question(scene.scene_id, q, (), situation=situation).prompt()[0]
        for q, situation in zip(questions, situations, strict=True)
    ]
    answers: list[str] = []
    with eval_mode(model), torch.no_grad():
        visual, _ = encode_scene(model, scene, max_frames, max_size)
        for start in range(0, len(questions), batch_size):
            chunk = prompts[start : start + batch_size]
            text = model.tokenize(chunk).to(model.device)
            index = torch.zeros(len(chunk), dtype=torch.long, device=model.device)
            preds = model.decode(visual, text, visual_index=index, with_boxes=False)
            answers += model.answer_head.generate(preds.queries[-1], max_new_tokens)
    return answers
