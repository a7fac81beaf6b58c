"""Several processes, one run: torchrun + DistributedDataParallel, and nothing home-made.

``torchrun --nproc_per_node N -m trashkit train --set ...`` starts N copies of the same run;
torchrun tells each its ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``. Every rank trains on its
own share of each epoch's batches (:class:`trashkit.data.EpochBatches`), DDP averages the
gradients, and rank 0 alone writes checkpoints and logs. Each rank evaluates the whole
validation set itself (it is small), so all ranks agree on the best epoch without talking.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Dist:
    """Where this process stands among the run's processes (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str = "auto") -> Dist:
    """Join the process group torchrun prepared (gloo on CPU, NCCL on GPUs); a plain
    ``python`` process is simply rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    d = Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and device != "cpu"
        if use_cuda:
            torch.cuda.set_device(d.local_rank)
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return d


def barrier(d: Dist) -> None:
    """Wait for every rank (e.g. until rank 0 has written the run's config)."""
    if d.world > 1:
        dist.barrier()


def wrap(net: nn.Module, d: Dist, device: torch.device, sync_bn: bool) -> nn.Module:
    """The module the loop calls: ``net`` itself, or ``net`` inside DDP (whose gradients
    are averaged over the ranks in ``backward``)."""
    if d.world <= 1:
        return net
    if sync_bn:
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids)
