"""What a genomics reader produces: the parts of an AnnData, then the AnnData itself.

Readers build a :class:`Parts` (plain numpy/scipy/dask values and pandas frames with
``str`` indexes, already in the form anndata would hold them) and hand it to
:meth:`Parts.to_anndata`. Keeping the two steps apart lets readers be tested on their
parts alone and keeps the container ignorant of file formats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from ..core.anndata import AnnData

__all__ = ["Parts"]


@dataclass
class Parts:
    """The elements of an AnnData read from a file (cells x genes)."""

    X: Any
    obs: pd.DataFrame
    var: pd.DataFrame
    layers: dict[str, Any] = field(default_factory=dict)
    obsm: dict[str, Any] = field(default_factory=dict)
    varm: dict[str, Any] = field(default_factory=dict)
    uns: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # anndata's frames without columns have an empty ``object`` column index
        for df in (self.obs, self.var):
            if len(df.columns) == 0:
                df.columns = pd.Index([], dtype=object)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.obs), len(self.var))

    def to_anndata(self) -> AnnData:
        """Wrap the parts into an :class:`annscale.AnnData`."""
        from ..core.anndata import AnnData

        return AnnData(
            X=self.X,
            obs=self.obs,
            var=self.var,
            uns=self.uns,
            layers=self.layers or None,
            obsm=self.obsm or None,
            varm=self.varm or None,
        )
