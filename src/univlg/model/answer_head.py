"""Answer generation (reference 4): a T5 decoder that reads the object queries and writes the answer.

The last decoder layer's Q layer-normed queries go through Linear(C -> d) + LayerNorm and are T5's
``encoder_outputs`` (T5's own encoder is not used, as in the paper, and is dropped from the module; no attention
mask). Training is teacher
forcing: :meth:`AnswerHead.forward` gives the logits of every answer token from the labels, which
:func:`univlg.train.losses.answer_loss` scores with cross-entropy. Inference decodes greedily
(:meth:`AnswerHead.generate`), at least one token (every label ends with the end token, so an undertrained head
would otherwise stop at once), without a cache so that it does not depend on a transformers release's cache API.

Labels are (B, A) long token ids ending with the end token, padded with ``IGNORE`` (-100); a row of ``IGNORE``
only has no answer (a sample of a non-QA source in a mixed batch). Answers are lower-cased; with the default
WordPiece tokenizer, decoding puts spaces around punctuation ("t-shirt" comes back as "t - shirt"), so such
answers never match exactly (ScanQA's exact match compares raw strings; its refined match squeezes spaces).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from univlg.config import AnswerHeadConfig
from univlg.errors import CheckpointError, ConfigError

IGNORE = -100


def _t5_classes():
    from transformers import T5Config, T5ForConditionalGeneration
    from transformers.modeling_outputs import BaseModelOutput

    return T5Config, T5ForConditionalGeneration, BaseModelOutput


class AnswerHead(nn.Module):
    """``project`` (Linear + LayerNorm to T5's width) and ``t5`` (a ``T5ForConditionalGeneration``).

    ``tokenizer``: what answers are written with (T5's own for a pretrained ``path``, else the text encoder's);
    its pad id starts decoding and its end id (``eos``, or ``sep`` for BERT-style tokenizers) ends an answer.
    """

    def __init__(self, cfg: AnswerHeadConfig, query_dim: int, tokenizer):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.pad_id = tokenizer.pad_token_id
        self.end_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        if self.pad_id is None or self.end_id is None:
            raise CheckpointError("the answer tokenizer needs a pad token and an end (eos or sep) token")
        self.t5 = self._build_t5(cfg, len(tokenizer))
        self.t5.encoder = None  # never run: the projected queries are its output; no dead weights in checkpoints
        width = self.t5.config.d_model
        self.project = nn.Sequential(nn.Linear(query_dim, width), nn.LayerNorm(width))

    def _build_t5(self, cfg: AnswerHeadConfig, vocab_size: int) -> nn.Module:
        t5_config, t5_model, _ = _t5_classes()
        if cfg.path is not None:
            if not Path(cfg.path).is_dir():
                raise CheckpointError(f"answer head folder not found: {cfg.path}")
            return t5_model.from_pretrained(cfg.path)
        config = t5_config(
            vocab_size=vocab_size,
            d_model=cfg.dim,
            d_kv=cfg.dim // cfg.num_heads,
            d_ff=cfg.ffn_dim,
            num_layers=1,  # the encoder is built, then dropped
            num_decoder_layers=cfg.num_layers,
            num_heads=cfg.num_heads,
            pad_token_id=self.pad_id,
            eos_token_id=self.end_id,
            decoder_start_token_id=self.pad_id,
        )
        return t5_model(config)

    def labels(self, answers: list[str | None]) -> torch.Tensor:
        """(B, A) long labels of ``answers`` (None: a row of IGNORE), cut to ``max_answer_tokens`` with the end."""
        rows = []
        for answer in answers:
            if answer is None:
                rows.append([])
                continue
            ids = self.tokenizer(answer.lower(), add_special_tokens=False)["input_ids"]
            rows.append(ids[: self.cfg.max_answer_tokens - 1] + [self.end_id])
        width = max(1, max(len(r) for r in rows))
        out = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        for i, ids in enumerate(rows):
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def _encoded(self, queries: torch.Tensor):
        _, _, encoder_output = _t5_classes()
        return encoder_output(last_hidden_state=self.project(queries))

    def forward(self, queries: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """queries: (B, Q, C); labels: (B, A) -> (B, A, V) logits of each answer token given the ones before it."""
        start = labels.new_full((labels.shape[0], 1), self.pad_id)
        previous = torch.cat([start, labels[:, :-1]], dim=1)
        previous = previous.masked_fill(previous == IGNORE, self.pad_id)
        return self.t5(encoder_outputs=self._encoded(queries), decoder_input_ids=previous, use_cache=False).logits

    @torch.no_grad()
    def generate(self, queries: torch.Tensor, max_new_tokens: int | None = None) -> list[str]:
        """queries: (B, Q, C) -> B answers, greedy, at least one and at most ``max_new_tokens`` tokens (default from
        the config)."""
        limit = self.cfg.max_new_tokens if max_new_tokens is None else max_new_tokens
        encoded = self._encoded(queries)
        ids = torch.full((queries.shape[0], 1), self.pad_id, dtype=torch.long, device=queries.device)
        done = torch.zeros(queries.shape[0], dtype=torch.bool, device=queries.device)
        for step in range(limit):
            logits = self.t5(encoder_outputs=encoded, decoder_input_ids=ids, use_cache=False).logits[:, -1]
            if step == 0:  # an answer has at least one token: the end token is the commonest label of all
                logits[:, [self.end_id, self.pad_id]] = float("-inf")
            token = logits.argmax(-1).masked_fill(done, self.pad_id)
            ids = torch.cat([ids, token[:, None]], dim=1)
            done |= token == self.end_id
            if bool(done.all()):
                break
        return [self._text(row[1:]) for row in ids.tolist()]

    def _text(self, ids: list[int]) -> str:
        if self.end_id in ids:
            ids = ids[: ids.index(self.end_id)]
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()


def check_answer_config(cfg: AnswerHeadConfig) -> None:
    """ConfigError for sizes no head can have."""
    if cfg.max_answer_tokens < 2 or cfg.max_new_tokens < 1:
        raise ConfigError("answer.max_answer_tokens must be >= 2 (a token and the end) and max_new_tokens >= 1")
    if cfg.path is None and (min(cfg.dim, cfg.num_layers, cfg.num_heads, cfg.ffn_dim) < 1 or cfg.dim % cfg.num_heads):
        raise ConfigError(
            f"answer: dim {cfg.dim}, num_layers {cfg.num_layers}, num_heads {cfg.num_heads}, ffn_dim {cfg.ffn_dim} "
            "must be positive, with dim a multiple of num_heads"
        )


def build_answer_head(cfg: AnswerHeadConfig, query_dim: int, text_tokenizer) -> AnswerHead | None:
    """The head ``cfg`` describes (None when disabled); a pretrained ``path`` brings its own tokenizer.

    Raises:
        ConfigError: impossible sizes. CheckpointError: ``path`` is missing or unreadable.
    """
    if not cfg.enabled:
        return None
    check_answer_config(cfg)
    tokenizer = text_tokenizer
    if cfg.path is not None:
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(cfg.path)
        except (OSError, ValueError) as error:
            raise CheckpointError(f"{cfg.path}: cannot load the answer tokenizer: {error}") from error
    return AnswerHead(cfg, query_dim, tokenizer)
