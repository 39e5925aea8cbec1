"""The example every user starts from runs unchanged with annscale and prints what anndata prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SEED = Path(__file__).resolve().parents[2] / "shared" / "docs" / "seed-example.py"


def _run(source: str, cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", source], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_seed_example_prints_the_same_as_with_anndata(tmp_path):
    source = SEED.read_text()
    assert "import annscale as ad" in source
    (tmp_path / "annscale").mkdir()
    (tmp_path / "anndata").mkdir()
    ours = _run(source, tmp_path / "annscale")
    theirs = _run(
        source.replace("import annscale as ad", "import anndata as ad"), tmp_path / "anndata"
    )
    assert ours == theirs
    assert "Backed subset loaded: (10, 50)" in ours


def test_seed_example_file_is_readable_by_anndata(tmp_path):
    import anndata

    _run(SEED.read_text(), tmp_path)
    back = anndata.read_h5ad(tmp_path / "example.h5ad")
    assert back.shape == (100, 500)
    assert str(back.obs["cell_type"].dtype) == "category"
