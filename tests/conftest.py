"""Shared test fixtures: where ../shared lives, and skips with a reason when it does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """`$MVLM_SHARED` if set, else `../shared` beside the repository."""
    env = os.environ.get("MVLM_SHARED")
    return Path(env) if env else REPO.parent / "shared"


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} not found at {path} (set MVLM_SHARED to the shared folder)")
    return path


@pytest.fixture(scope="session")
def real_data() -> Path:
    return _need(shared_dir() / "data" / "real", "real benchmark data")


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return _need(shared_dir() / "fixtures" / "metrics-golden", "metrics golden fixtures")


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    return _need(shared_dir() / "fixtures" / "reference-parity", "reference parity fixtures")
