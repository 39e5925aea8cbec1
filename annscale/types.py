"""As :mod:`anndata.types`: only the deprecated ``ExtensionNamespace`` name remains.

It is the protocol of namespaces registered with :func:`annscale.register_anndata_namespace`,
defined in the ``scverse_misc`` package (an optional dependency), where it should be imported
from.
"""

from __future__ import annotations

import warnings
from typing import Any


def __getattr__(key: str) -> Any:
    if key == "ExtensionNamespace":
        from scverse_misc import ExtensionNamespace

        warnings.warn(
            "Importing ExtensionNamespace from `types` is deprecated. "
            "Please use scverse_misc instead.",
            FutureWarning,
            stacklevel=2,
        )
        return ExtensionNamespace
    raise AttributeError(f"types has no attribute {key!r}")
