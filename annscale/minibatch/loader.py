"""``annscale.loader``: shuffled minibatches of a lazy object, for training models.

Rows are visited in a random order of contiguous blocks (see :mod:`.plan`); a few blocks
are read together (:mod:`.fetch`), in the background while the previous ones are used
(:mod:`.prefetch`), shuffled in memory and cut into minibatches (:mod:`.batch`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import plan
from .batch import TorchConverter, as_anndata, minibatches
from .fetch import group_task
from .prefetch import LazyTasks, prefetched
from .source import LoaderSource, open_source

__all__ = ["Loader", "loader"]

#: default number of blocks read together and shuffled in memory
FETCH_BLOCKS = 16
#: default number of fetch groups read ahead in the background
PREFETCH = 2


class Loader:
    """An iterable of shuffled minibatches over the rows of an AnnData (see :func:`loader`).

    Iterating starts a new epoch each time (``epoch`` counts them; :meth:`set_epoch` sets
    it). :meth:`iter_epoch` gives one epoch of one shard; :meth:`torch_dataset` splits
    epochs across DataLoader workers and DDP ranks.
    """

    def __init__(
        self,
        source: LoaderSource,
        *,
        batch_size: int,
        shuffle: bool,
        drop_last: bool,
        seed: int | None,
        as_torch: bool,
        torch_sparse: bool,
        fetch_blocks: int,
        prefetch: int,
    ):
        if not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive number of rows, got {batch_size!r}")
        if fetch_blocks < 1:
            raise ValueError(f"fetch_blocks must be at least 1, got {fetch_blocks}")
        if prefetch < 0:
            raise ValueError(f"prefetch must be >= 0 fetch groups, got {prefetch}")
        self.source = source
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        #: the seed of every epoch's order (drawn at random when not given)
        self.seed = int(np.random.SeedSequence().entropy % 2**63) if seed is None else int(seed)
        self.seed_given = seed is not None
        self.as_torch = as_torch
        self.fetch_blocks = int(fetch_blocks)
        self.prefetch = int(prefetch)
        self.epoch = 0
        obs = source.obs
        #: categories of the requested categorical obs columns (codes index into these)
        self.categories: dict[str, pd.Index] = {
            str(k): obs[k].cat.categories
            for k in obs.columns
            if isinstance(obs[k].dtype, pd.CategoricalDtype)
        }
        self._torch = TorchConverter(obs, source.source, torch_sparse) if as_torch else None
        self.torch_sparse = torch_sparse

    # ---------------------------------------------------------------- sizes

    @property
    def n_obs(self) -> int:
        """Rows visited per epoch."""
        return self.source.n_obs

    @property
    def n_blocks(self) -> int:
        return len(self.source.bounds) - 1

    @property
    def block_rows(self) -> np.ndarray:
        """Rows of each block (int64)."""
        return np.diff(self.source.bounds)

    def __len__(self) -> int:
        """Minibatches per epoch (of the whole object, one shard)."""
        return plan.n_batches(self.n_obs, self.batch_size, self.drop_last)

    def __repr__(self) -> str:
        return (
            f"<annscale Loader: {self.n_obs} rows of {self.source.element} in "
            f"{self.n_blocks} blocks, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"fetch_blocks={self.fetch_blocks}, prefetch={self.prefetch}, epoch={self.epoch}>"
        )

    # ---------------------------------------------------------------- iteration

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch ``epoch`` (as ``DistributedSampler.set_epoch``)."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[Any]:
        epoch = self.epoch
        self.epoch += 1
        return self.iter_epoch(epoch)

    def shard_rows(self, shard: int = 0, n_shards: int = 1) -> int:
        """Rows that shard ``shard`` of ``n_shards`` visits in every epoch."""
        n = self.n_obs
        return (shard + 1) * n // n_shards - shard * n // n_shards

    def iter_epoch(
        self, epoch: int, *, shard: int = 0, n_shards: int = 1, as_torch: bool | None = None
    ) -> Iterator[Any]:
        """The minibatches of shard ``shard`` of ``n_shards`` in epoch ``epoch``.

        The shards of one epoch are disjoint and together hold every row exactly once; the
        same ``(seed, epoch, shard, n_shards)`` always gives the same minibatches.
        """
        order = plan.epoch_order(self.n_blocks, seed=self.seed, epoch=epoch, shuffle=self.shuffle)
        starts, stops = plan.shard_ranges(self.source.bounds, order, shard, n_shards)
        groups = plan.fetch_groups(starts, stops, self.fetch_blocks)
        tasks = LazyTasks(len(groups), lambda g: group_task(self.source, *groups[g]))

        def shuffled():
            for g, rows in enumerate(prefetched(tasks, self.prefetch)):
                perm = plan.group_permutation(
                    rows.n, seed=self.seed, epoch=epoch, shard=shard, n_shards=n_shards,
                    group=g, shuffle=self.shuffle,
                )  # fmt: skip
                yield rows, perm
                del rows

        torch_out = self.as_torch if as_torch is None else as_torch
        convert = self._converter(torch_out)
        for rows in minibatches(shuffled(), self.batch_size, self.drop_last):
            yield convert(rows)

    def _converter(self, torch_out: bool):
        if torch_out:
            if self._torch is None:
                self._torch = TorchConverter(self.source.obs, self.source.source, self.torch_sparse)
            return self._torch
        obs, var = self.source.obs, self.source.var
        return lambda rows: as_anndata(rows, obs, var)

    def torch_dataset(self, *, rank: int | None = None, world_size: int | None = None) -> Any:
        """A ``torch.utils.data.IterableDataset`` of this loader's minibatches as dicts of
        tensors (see :class:`annscale.minibatch.batch.TorchConverter`).

        Each DataLoader worker of each DDP rank reads its own shard of every epoch
        (disjoint, every row once per epoch). ``rank``/``world_size`` default to those of
        ``torch.distributed`` when it is initialised, else 0 and 1. Use it with
        ``DataLoader(ds, batch_size=None, num_workers=...)`` (batches are already made).
        """
        from .torch_dataset import LoaderDataset

        self._converter(True)  # checks now that the obs columns can become tensors
        return LoaderDataset(self, rank=rank, world_size=world_size)


def loader(
    data: Any,
    *,
    batch_size: int = 256,
    shuffle: bool = True,
    block_size: int | None = None,
    layer: str | None = None,
    obs_keys: Sequence[str] | str | None = None,
    obsm_keys: Sequence[str] | str | None = None,
    drop_last: bool = False,
    seed: int | None = None,
    as_torch: bool = False,
    torch_sparse: bool = False,
    fetch_blocks: int = FETCH_BLOCKS,
    prefetch: int = PREFETCH,
    storage_options: dict[str, Any] | None = None,
) -> Loader:
    """Shuffled minibatches of the rows of a (lazy) AnnData, read in blocks from storage.

    Parameters
    ----------
    data
        An :class:`annscale.AnnData` — opened lazily (``read_lazy``, ``read_collection``,
        ``concat`` of lazy objects), a view of one, or in memory — or the URL/path of a
        ``.h5ad``/zarr store (opened with ``read_lazy``), or a glob or a list of them
        (opened with ``read_collection``: for its join and label options, call it yourself).
    batch_size
        Rows per minibatch; every batch is full except possibly the last of an epoch.
    shuffle
        Visit blocks in a random order and shuffle rows within each fetch group. ``False``
        gives the stored order.
    block_size
        Rows per block (contiguous rows read with one request per stored array). ``None``:
        stored arrays opened lazily are cut into blocks of about 1 MiB of stored data,
        balanced by nonzeros (whole storage chunks for dense arrays); other dask arrays use
        their row chunks; in-memory matrices blocks of about 1 MiB.
    layer
        Load this layer instead of X.
    obs_keys, obsm_keys
        obs columns and obsm values that come with each batch.
    drop_last
        Drop the last minibatch of an epoch (of each shard) when it is short.
    seed
        Seed of the block order and of the in-memory shuffles; epoch ``e`` uses
        ``(seed, e)``, so every epoch differs and each is reproducible. ``None``: drawn at
        random once (see ``Loader.seed``); give one for DDP so that all ranks agree.
    as_torch
        Yield dicts of torch tensors instead of AnnData (needs the ``torch`` extra).
    torch_sparse
        With ``as_torch``: ``"X"`` as a torch sparse CSR tensor instead of a dense one.
    fetch_blocks
        Blocks read together and shuffled together in memory (more: better mixing, more
        memory).
    prefetch
        Fetch groups read ahead in the background. Memory bound: at most
        ``(prefetch + 1) * fetch_blocks`` blocks are held at once (plus fewer than
        ``batch_size`` rows carried between groups), whatever the size of the data.
    storage_options
        fsspec options when ``data`` is a URL or a list of URLs.

    Returns
    -------
    A :class:`Loader`: iterate it for one epoch of minibatches (each iteration a new
    epoch); ``len()`` is the number of minibatches per epoch; ``.categories`` maps each
    requested categorical obs column to its categories; ``.torch_dataset()`` gives a
    ``torch.utils.data.IterableDataset`` for DataLoader workers and DDP ranks.

    Reads: opening reads obs (and, for sparse stored matrices, ``indptr``) to plan blocks;
    each fetch group reads only its blocks' rows of the matrix and of the obsm values.
    """
    source = open_source(
        data,
        layer=layer,
        obs_keys=obs_keys,
        obsm_keys=obsm_keys,
        block_size=block_size,
        storage_options=storage_options,
    )
    return Loader(
        source,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        seed=seed,
        as_torch=as_torch,
        torch_sparse=torch_sparse,
        fetch_blocks=fetch_blocks,
        prefetch=prefetch,
    )
