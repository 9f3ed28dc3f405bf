"""Shared fixtures: locating MovieLens 100K (skipped when absent, required when TAILORED_REQUIRE_DATA=1), a fresh
PostgreSQL database (the same rule with TAILORED_REQUIRE_POSTGRES=1) and the modules of optional extras
(`require_extra`: the same rule with TAILORED_REQUIRE_TORCH=1, TAILORED_REQUIRE_TEXT=1)."""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

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


def require_extra(extra: str, module: str) -> ModuleType:
    """``module``, which the optional ``extra`` installs (``torch``, ``text``); without it the test (or, called at the
    top of a test file, the file) is skipped, or fails when ``TAILORED_REQUIRE_<EXTRA>=1`` (CI installs the extras)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        variable = f"TAILORED_REQUIRE_{extra.upper()}"
        message = f"the `{extra}` extra is not installed ({module} cannot be imported)"
        if os.environ.get(variable) == "1":
            pytest.fail(f"{message}; {variable}=1 makes this a failure", pytrace=False)
        pytest.skip(message, allow_module_level=True)


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    return _require(SHARED_DATA / "ml-100k", "MovieLens 100K")


@pytest.fixture(scope="session")
def ml100k_splits_dir() -> Path:
    return _require(SHARED_DATA / "ml-100k-splits", "MovieLens 100K benchmark splits")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL server of ``TAILORED_TEST_POSTGRES_URL`` (CI starts one with `.ci/postgres`),
    dropped afterwards. Without the URL the test is skipped, or fails when ``TAILORED_REQUIRE_POSTGRES=1``."""
    import sqlalchemy as sa

    server = os.environ.get("TAILORED_TEST_POSTGRES_URL")
    if not server:
        if os.environ.get("TAILORED_REQUIRE_POSTGRES") == "1":
            pytest.fail("TAILORED_REQUIRE_POSTGRES=1 but TAILORED_TEST_POSTGRES_URL is not set (start one with "
                        ".ci/postgres)")
        pytest.skip("no PostgreSQL server: set TAILORED_TEST_POSTGRES_URL (e.g. $(.ci/postgres))")
    name = f"tailored_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield server.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def require_browser() -> str:
    """The path of Debian's ``chromium`` for the Playwright tests (the ``playwright`` package of the ``test`` extra
    drives it); without both the test is skipped, or fails when ``TAILORED_REQUIRE_BROWSER=1`` (CI installs them)."""
    import importlib.util
    import shutil

    path = shutil.which("chromium")
    missing = None if path else "chromium is not installed (apt-get install -y chromium)"
    if importlib.util.find_spec("playwright") is None:
        missing = "the playwright package is not installed (pip install '.[test]')"
    if missing is None:
        return str(path)
    if os.environ.get("TAILORED_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{missing}; TAILORED_REQUIRE_BROWSER=1 makes this a failure", pytrace=False)
    pytest.skip(missing, allow_module_level=True)
