"""Real dask.distributed clusters for the tests: a ``dask scheduler`` and ``dask worker``
processes on loopback, started and stopped with ``deploy/local-cluster.sh``.

:class:`ScriptCluster` wraps one cluster: its address, its workers' process ids (each
worker runs in its own process group with its nanny), SIGKILLing one, reading their logs.
Input data are small ``.h5ad`` files with shifted gene sets (an outer join widens the genes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "local-cluster.sh"
MEMORY_LIMIT = 1 << 30
"""Memory limit of each test worker, in bytes (``--memory-limit``)."""


@dataclass
class ScriptCluster:
    """A cluster started by ``deploy/local-cluster.sh start`` in ``directory``."""

    directory: Path
    workers: int
    options: list[str] = field(default_factory=list)

    def _run(self, command: str, *options: str, timeout: float = 180) -> str:
        env = {**os.environ, "PYTHON": sys.executable}
        done = subprocess.run(
            ["bash", str(SCRIPT), command, "--dir", str(self.directory), *options],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"local-cluster.sh {command} failed ({done.returncode}):\n{done.stderr}"
                f"\n{self.logs()}"
            )
        return done.stdout.strip()

    def start(self) -> ScriptCluster:
        opts = ["-n", str(self.workers), "-p", "0", "-m", str(MEMORY_LIMIT), *self.options]
        self.address = self._run("start", *opts).splitlines()[-1]
        return self

    def stop(self) -> None:
        self._run("stop", timeout=60)

    def worker_pids(self) -> list[int]:
        """Process ids of the ``dask worker`` commands (process-group leaders), by index."""
        return [int((self.directory / f"worker-{i}.pid").read_text()) for i in range(self.workers)]

    def kill_worker(self, index: int) -> None:
        """SIGKILL worker ``index`` and its nanny (its whole process group): a lost machine."""
        os.killpg(self.worker_pids()[index], signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.directory.glob("*.log"))
        )

    def client(self):
        from distributed import Client

        return Client(self.address, set_as_default=False, timeout="60s")


def write_samples(directory: Path, n: int, *, cells: int, genes: int, seed: int = 0):
    """``n`` sparse CSR ``.h5ad`` samples; sample ``i`` has genes ``g{i}..g{i+genes-1}``.

    Returns the paths and the in-memory objects (as anndata wrote them).
    """
    paths, adatas = [], []
    for i in range(n):
        x = sp.random(
            cells, genes, density=0.1, format="csr", random_state=seed + i, dtype=np.float32
        )
        x.data = np.round(x.data * 10) + 1
        a = anndata.AnnData(
            x,
            obs=pd.DataFrame(index=[f"c{j}" for j in range(cells)]),
            var=pd.DataFrame(index=[f"g{j}" for j in range(i, i + genes)]),
        )
        path = directory / f"sample{i:02d}.h5ad"
        a.write_h5ad(path)
        paths.append(str(path))
        adatas.append(a)
    return paths, adatas


def executed_tasks(client) -> int:
    """Tasks executed so far by all workers of ``client``'s cluster."""
    return sum(client.run(lambda dask_worker: dask_worker.state.executed_count).values())


def worker_stats(dask_worker) -> tuple[int, int, int, int]:
    """(RSS bytes, tasks executed, bytes spilled to disk, process id) of a worker."""
    import os

    import psutil

    spilled = dask_worker.data.spilled_total
    rss = psutil.Process().memory_info().rss
    return rss, dask_worker.state.executed_count, spilled.disk, os.getpid()
