"""The workload registry: each workload has one function per side (library or configuration).

A side function takes a :class:`benchmarks.runner.Context`, does its setup, wraps exactly the
measured work in ``with ctx.timed():`` and returns a digest (see :mod:`benchmarks.digest`).
Libraries are imported inside side functions: the harness process imports this registry but
never anndata or annscale.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SideFn = Callable[[Any], dict]


@dataclass
class Workload:
    """One benchmark: what it measures, the data it needs, and how each side runs it."""

    name: str
    description: str
    needs: tuple[str, ...] = ("matrix",)  # "matrix", "samples", "s3"; () for none
    sides: tuple[str, str] = ("anndata", "annscale")
    #: how the first side does it when it cannot do it directly (shown in the table)
    note: str = ""
    #: "compare" (anndata vs annscale), "scaling" (one library, two configurations) or
    #: "check" (a test of the measurement itself)
    kind: str = "compare"
    #: left out of the default run; selected only by name with ``--only``
    hidden: bool = False
    #: poll the RSS of child processes too (dask worker processes)
    spawns_processes: bool = False
    functions: dict[str, SideFn] = field(default_factory=dict)

    def side(self, name: str) -> Callable[[SideFn], SideFn]:
        """Register the function that runs side ``name``."""
        if name not in self.sides:
            raise ValueError(f"{self.name}: unknown side {name!r}, expected one of {self.sides}")

        def register(fn: SideFn) -> SideFn:
            self.functions[name] = fn
            return fn

        return register


REGISTRY: dict[str, Workload] = {}

#: names usable with ``--only`` that stand for several workloads
GROUPS: dict[str, tuple[str, ...]] = {
    "gene_sums_means": ("gene_sums", "gene_means"),
    "write_from_memory": ("write_h5ad_from_memory", "write_zarr_from_memory"),
    "write_from_lazy": ("write_h5ad_from_lazy", "write_zarr_from_lazy"),
}


def workload(name: str, description: str, **kwargs: Any) -> Workload:
    """Create and register a workload; attach its sides with ``@wl.side("anndata")``."""
    if name in REGISTRY:
        raise ValueError(f"workload {name!r} registered twice")
    wl = Workload(name, description, **kwargs)
    REGISTRY[name] = wl
    return wl


#: order of the rows in the report (the order in which the issues list them)
ORDER = (
    "open_lazy",
    "eager_read",
    "rows_10k_to_memory",
    "genes_500_to_memory",
    "obs_mask_selection",
    "gene_sums",
    "gene_means",
    "write_h5ad_from_memory",
    "write_zarr_from_memory",
    "write_h5ad_from_lazy",
    "write_zarr_from_lazy",
    "concat_on_disk_60",
    "collection_filter_60",
    "lazy_concat_write_half_vs_all",
    "s3_open_row_subset",
    "distributed_1_vs_2",
    "distributed_scheduler_overhead",
    "loader_epoch_60",
    "rss_sanity",
    "rss_sanity_children",
)


#: workload modules that may not exist in every checkout
OPTIONAL_MODULES = ("loader",)


def load() -> dict[str, Workload]:
    """Import every workload module (cheap: no data library is imported); return them in order."""
    from . import cloud, concat, distributed, reads, reductions, sanity, writes  # noqa: F401

    # workload modules added later register themselves when their file exists
    for extra in OPTIONAL_MODULES:
        if importlib.util.find_spec(f"{__name__}.{extra}") is not None:
            importlib.import_module(f"{__name__}.{extra}")

    rank = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(REGISTRY.items(), key=lambda item: rank.get(item[0], len(rank))))
