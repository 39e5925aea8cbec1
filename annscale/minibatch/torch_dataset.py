"""``Loader.torch_dataset()``: a ``torch.utils.data.IterableDataset`` of minibatches.

Each epoch is split into ``world_size * num_workers`` disjoint shards (see
:func:`annscale.minibatch.plan.shard_ranges`): DataLoader worker ``w`` of DDP rank ``r``
reads shard ``r * num_workers + w``. Shards differ in length by at most one row, so ranks
may differ by one minibatch per epoch when the rows do not divide evenly.

Epochs: every iteration of the dataset starts the next epoch *in the process that
iterates*. DataLoader workers that are not persistent are fresh copies each epoch, so call
:meth:`LoaderDataset.set_epoch` before each epoch (as with ``DistributedSampler``) to get
a new order; with ``persistent_workers=True`` or ``num_workers=0`` the count advances by
itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

__all__ = ["LoaderDataset", "distributed_rank"]


def distributed_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """``(rank, world_size)``: as given, else torch.distributed's when initialised, else (0, 1)."""
    if rank is None or world_size is None:
        if dist.is_available() and dist.is_initialized():
            rank = dist.get_rank() if rank is None else rank
            world_size = dist.get_world_size() if world_size is None else world_size
        else:
            rank = 0 if rank is None else rank
            world_size = 1 if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
    return int(rank), int(world_size)


class LoaderDataset(IterableDataset):
    """Minibatches (dicts of tensors) of a :class:`~annscale.minibatch.loader.Loader`, split
    across DataLoader workers and DDP ranks. Use ``DataLoader(ds, batch_size=None)``."""

    def __init__(self, loader: Any, *, rank: int | None = None, world_size: int | None = None):
        super().__init__()
        self.loader = loader
        self.rank, self.world_size = distributed_rank(rank, world_size)
        if self.world_size > 1 and loader.shuffle and not loader.seed_given:
            raise ValueError(
                "with several DDP ranks, give loader(..., seed=...) so that all ranks draw "
                "the same order (a random seed would differ between ranks and overlap)"
            )
        self.epoch = loader.epoch

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch ``epoch`` (call it before each epoch)."""
        self.epoch = int(epoch)

    def shard(self) -> tuple[int, int]:
        """``(shard, n_shards)`` of the calling process (worker of this rank)."""
        info = get_worker_info()
        worker, n_workers = (0, 1) if info is None else (info.id, info.num_workers)
        return self.rank * n_workers + worker, self.world_size * n_workers

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        shard, n_shards = self.shard()
        epoch = self.epoch
        self.epoch += 1
        return self.loader.iter_epoch(epoch, shard=shard, n_shards=n_shards, as_torch=True)
