"""Loading a state dict into a model, after checking that it fits: one report of everything that does not.

Tensor names of Hugging Face modules change between transformers releases (DINOv2's attention projections were
``attention.attention.{query,key,value}`` and ``attention.output.dense`` before they became
``attention.{q,k,v,o}_proj``), so a checkpoint written under one release is renamed to the installed one's names.
"""

from __future__ import annotations

from torch import nn

from univlg.errors import CheckpointError

# (older name part, newer name part) of the same tensor in different transformers releases
RENAMED_PARTS = (
    (".attention.attention.query.", ".attention.q_proj."),
    (".attention.attention.key.", ".attention.k_proj."),
    (".attention.attention.value.", ".attention.v_proj."),
    (".attention.output.dense.", ".attention.o_proj."),
)


def to_installed_names(state_dict: dict, own: set[str]) -> dict:
    """``state_dict`` with every name the model lacks renamed to the model's name of the same tensor, if any."""
    renamed = {}
    for name, tensor in state_dict.items():
        if name not in own:
            for old, new in RENAMED_PARTS:
                for a, b in ((old, new), (new, old)):
                    if a in name and name.replace(a, b) in own:
                        name = name.replace(a, b)
                        break
        renamed[name] = tensor
    return renamed


def shared_tensor_aliases(state_dict: dict) -> dict[str, str]:
    """name -> earlier name, for tensors that share storage with an earlier one of ``state_dict`` (tied weights,
    e.g. T5's input and output embeddings): a checkpoint stores each tensor once."""
    first: dict[tuple, str] = {}
    aliases = {}
    for name, tensor in state_dict.items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape), tensor.stride())
        if key in first:
            aliases[name] = first[key]
        else:
            first[key] = name
    return aliases


def load_model_state(model: nn.Module, state_dict: dict, source: str, ignore_prefixes: tuple[str, ...] = ()) -> None:
    """Load ``state_dict`` into ``model`` when every tensor fits.

    Args:
        state_dict: name -> tensor, the names of ``model.state_dict()``; a tied tensor may be given once (under
            its first name, see :func:`shared_tensor_aliases`).
        source: what the tensors come from (a file), named in the error.
        ignore_prefixes: model tensors under these name prefixes may be absent (kept as they are, e.g. frozen
            encoders loaded from their own folder); every other model tensor must be given.

    Raises:
        CheckpointError: listing the missing, unexpected and mis-shaped tensors (nothing is loaded then).
    """
    own = model.state_dict()
    state_dict = to_installed_names(state_dict, set(own))
    for alias, name in shared_tensor_aliases(own).items():
        if alias not in state_dict and name in state_dict:
            state_dict[alias] = state_dict[name]
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


def load_matching_state(model: nn.Module, state_dict: dict, source: str) -> list[str]:
    """Load the tensors of ``state_dict`` into ``model``; model tensors it lacks keep their values.

    Returns:
        the model tensor names that were not given (tied aliases of given tensors excluded).

    Raises:
        CheckpointError: ``state_dict`` has tensors the model lacks or tensors of another shape (nothing loaded).
    """
    own = model.state_dict()
    state_dict = to_installed_names(state_dict, set(own))
    aliases = shared_tensor_aliases(own)
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    )
    if unexpected or shapes:
        raise CheckpointError(
            f"{source}: does not fit the model: unexpected {unexpected[:5]} ({len(unexpected)}), "
            f"shape mismatch {shapes[:5]} ({len(shapes)})"
        )
    model.load_state_dict(state_dict, strict=False)
    return sorted(k for k in set(own) - set(state_dict) if aliases.get(k) not in state_dict)
