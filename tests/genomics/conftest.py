"""Fixtures for the genomics readers: the shared real files and comparison helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def data() -> Path:
    """The shared folder of real files written by other tools (read in place, never copied)."""
    if not DATA.is_dir():  # pragma: no cover - the checkout always has it beside
        pytest.fail(f"shared test data not found at {DATA}")
    return DATA.resolve()
