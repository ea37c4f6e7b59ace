"""Process-group set-up for ``torchrun``: NCCL on GPUs, gloo on CPUs; plain single-process runs need nothing."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from univlg.device import resolve_device


@dataclass(frozen=True)
class ProcessInfo:
    """rank / world_size of this process and the device it trains on."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> ProcessInfo:
    """Join the process group when launched by ``torchrun`` and choose the device.

    ``device``: "auto" (a GPU when available, else the CPU), "cpu", or "cuda" (:func:`univlg.device.resolve_device`;
    ConfigError when CUDA is asked for but not available). Under torchrun each process takes GPU
    ``rank % device_count``; alone, a process takes the one named ("cuda:N") or the current one.
    """
    chosen = resolve_device(device)
    use_cuda = chosen.type == "cuda"
    if dist.is_available() and dist.is_torchelastic_launched() and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    world_size = dist.get_world_size() if dist.is_initialized() else 1
    if use_cuda:
        if world_size > 1:
            index = rank % torch.cuda.device_count()
        else:
            index = torch.cuda.current_device() if chosen.index is None else chosen.index
        torch.cuda.set_device(index)
        return ProcessInfo(rank, world_size, torch.device("cuda", index))
    return ProcessInfo(rank, world_size, torch.device("cpu"))


def teardown() -> None:
    """Leave the process group if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
