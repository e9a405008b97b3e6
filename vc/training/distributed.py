"""DistributedDataParallel plumbing: torchrun's environment, the process group, rank-0-only side effects.

The train stage runs unchanged as one process or under ``torchrun --nproc_per_node N`` (NCCL on GPUs, Gloo on
CPU). ``train.batch_size`` is the global batch: each of the N ranks draws ``batch_size / N`` items.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from vc.configlib import ConfigError

__all__ = ["DistContext"]


@dataclass
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @classmethod
    def from_env(cls) -> DistContext:
        """Read torchrun's ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``; a plain process is rank 0 of 1."""
        return cls(
            int(os.environ.get("RANK", "0")),
            int(os.environ.get("LOCAL_RANK", "0")),
            int(os.environ.get("WORLD_SIZE", "1")),
        )

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, wanted: str, key: str = "train.device") -> torch.device:
        """``auto``: this rank's GPU when CUDA is available, else the CPU. ``key`` names the param in the
        error raised when ``cuda`` is asked for on a machine without one."""
        use_cuda = wanted == "cuda" or (wanted == "auto" and torch.cuda.is_available())
        if wanted == "cuda" and not torch.cuda.is_available():
            raise ConfigError(key, "is 'cuda' but no CUDA device is available (use 'auto' or 'cpu')")
        if use_cuda:
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")

    def init(self, device: torch.device) -> None:
        if self.enabled and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def wrap(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        if not self.enabled:
            return module
        ids = [device.index] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank if ``flag`` is true on any rank (so all ranks stop at the same step)."""
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
