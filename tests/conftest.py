"""Shared fixtures: locating MovieLens 100K (skipped when absent, required when TAILORED_REQUIRE_DATA=1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TAILORED_DATA_DIR", REPOSITORY.parent / "shared" / "data"))


def _require(path: Path, what: str) -> Path:
    if path.exists():
        return path
    message = f"{what} not found at {path} (set TAILORED_DATA_DIR to the folder holding ml-100k)"
    if os.environ.get("TAILORED_REQUIRE_DATA") == "1":
        pytest.fail(message + "; TAILORED_REQUIRE_DATA=1 makes this a failure", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    return _require(SHARED_DATA / "ml-100k", "MovieLens 100K")


@pytest.fixture(scope="session")
def ml100k_splits_dir() -> Path:
    return _require(SHARED_DATA / "ml-100k-splits", "MovieLens 100K benchmark splits")
