"""Shared test fixtures.

The numeric fixtures (reference parity, golden metrics) live in the repository under
tests/fixtures/, so a clone alone runs every parity and golden-metric test. Only the real video
frames stay outside (`../shared/data/real`, or `$MVLM_SHARED/data/real`); tests that need them
skip with the reason when they are absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


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
    return FIXTURES / "metrics-golden"


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    return FIXTURES / "reference-parity"


@pytest.fixture()
def one_torch_thread():
    """Tiny ops on a shared 2-core machine: a second OpenMP thread only adds waiting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
