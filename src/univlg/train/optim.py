"""AdamW with explicit per-module learning-rate groups, and the warm-up + cosine schedule.

Learning-rate multipliers are given per module path (``{"pixel_decoder": 0.1}``) or parameter name
(``{"mask_decoder.relation_head.class_weights": 100}``): a parameter takes the multiplier of the longest such path
that is its name or a prefix of it, never a substring match (reference 3.5's quirk made the whole pixel decoder
train at 0.1x through the word "backbone"). Parameters of normalisation layers and embeddings
get no weight decay. Frozen parameters are left out.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from univlg.errors import ConfigError

NO_DECAY_MODULES = (nn.LayerNorm, nn.GroupNorm, nn.Embedding, nn.modules.batchnorm._BatchNorm)


def _multiplier(name: str, multipliers: dict[str, float]) -> float:
    best, best_length = 1.0, -1
    for prefix, value in multipliers.items():
        if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best_length:
            best, best_length = value, len(prefix)
    return best


def build_param_groups(
    model: nn.Module, base_lr: float, weight_decay: float, lr_multipliers: dict[str, float] | None = None
) -> list[dict]:
    """AdamW parameter groups: one per (learning rate, weight decay) pair, each group listing its names.

    ``lr_multipliers`` keys must be module paths or parameter names of ``model`` (an unknown one raises
    ConfigError).
    """
    multipliers = dict(lr_multipliers or {})
    modules = dict(model.named_modules())
    parameter_names = {name for name, _ in model.named_parameters()}
    unknown = sorted(p for p in multipliers if p not in modules and p not in parameter_names)
    if unknown:
        known = sorted(name for name in modules if name and "." not in name)
        raise ConfigError(
            f"optim.lr_multipliers: unknown module path(s) or parameter(s) {unknown}; top-level modules: {known}"
        )
    no_decay = set()
    for module_name, module in modules.items():
        if isinstance(module, NO_DECAY_MODULES):
            for param_name, _ in module.named_parameters(recurse=False):
                no_decay.add(f"{module_name}.{param_name}" if module_name else param_name)
    groups: dict[tuple[float, float], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lr = base_lr * _multiplier(name, multipliers)
        decay = 0.0 if name in no_decay else weight_decay
        group = groups.setdefault((lr, decay), {"params": [], "names": [], "lr": lr, "weight_decay": decay})
        group["params"].append(param)
        group["names"].append(name)
    return list(groups.values())


def warmup_cosine_factor(step: int, total_steps: int, warmup_steps: int, warmup_factor: float) -> float:
    """Learning-rate factor at ``step``: linear warm-up from ``warmup_factor`` to 1, then cosine decay to 0."""
    if step < warmup_steps:
        alpha = step / max(warmup_steps, 1)
        return warmup_factor * (1 - alpha) + alpha
    progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
    return 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(model: nn.Module, base_lr: float, weight_decay: float, lr_multipliers=None) -> torch.optim.AdamW:
    """AdamW over :func:`build_param_groups`."""
    return torch.optim.AdamW(build_param_groups(model, base_lr, weight_decay, lr_multipliers), lr=base_lr)


def build_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, warmup_factor: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step scheduler applying :func:`warmup_cosine_factor` to every group's learning rate."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine_factor(step, total_steps, warmup_steps, warmup_factor)
    )
