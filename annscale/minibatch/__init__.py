"""Minibatch loading for deep learning over lazy objects and collections.

``annscale.loader(data, batch_size=256, ...)`` (see :func:`annscale.minibatch.loader.loader`)
iterates shuffled minibatches — in-memory AnnData or dicts of torch tensors — reading
blocks of contiguous rows from storage in the background. Modules: :mod:`.plan` (epoch
order, sharding; pure), :mod:`.source` (what is read), :mod:`.fetch` (reading a group of
blocks), :mod:`.prefetch` (background reads, memory bound), :mod:`.batch` (minibatches),
:mod:`.torch_dataset` (``torch.utils.data.IterableDataset``; imports torch).

The package is not named ``loader``: importing it must never shadow the function
``annscale.loader`` (as ``annscale.combine`` does not shadow ``annscale.concat``).
"""

from __future__ import annotations

from .loader import Loader, loader

__all__ = ["Loader", "loader"]
