"""Loading a state dict into a model, after checking that it fits: one report of everything that does not."""

from __future__ import annotations

from torch import nn

from univlg.errors import CheckpointError


def load_model_state(model: nn.Module, state_dict: dict, source: str, ignore_prefixes: tuple[str, ...] = ()) -> None:
    """Load ``state_dict`` into ``model`` when every tensor fits.

    Args:
        state_dict: name -> tensor, the names of ``model.state_dict()``.
        source: what the tensors come from (a file), named in the error.
        ignore_prefixes: model tensors under these name prefixes may be absent (kept as they are, e.g. frozen
            encoders loaded from their own folder); every other model tensor must be given.

    Raises:
        CheckpointError: listing the missing, unexpected and mis-shaped tensors (nothing is loaded then).
    """
    own = model.state_dict()
    missing = sorted(k for k in set(own) - set(state_dict) if not k.startswith(tuple(ignore_prefixes)))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    )
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                parts.append(f"{label} ({len(items)}): {items[:5]}{' ...' if len(items) > 5 else ''}")
        raise CheckpointError(f"{source}: checkpoint does not fit the model: " + "; ".join(parts))
    model.load_state_dict(state_dict, strict=not ignore_prefixes)
