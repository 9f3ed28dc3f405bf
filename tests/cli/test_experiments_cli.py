"""`tailored experiments create|list|stop` as a user runs them: arms resolved in a real registry, one running
experiment per surface, every bad option refused with exit 2 and nothing created."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.pipeline.recommender import build_recommender
from tailored.registry.model_dir import save_model
from tailored.registry.versions import ModelRegistry
from tailored.store import EventStore
from tailored.store.experiments import experiments
from tests.cli.helpers import cli, flat, ok


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A registry with shop v0001 (production) and v0002, and an empty store."""
    frame = pd.DataFrame({"user_id": [f"u{n % 7}" for n in range(40)], "item_id": [f"i{n % 11}" for n in range(40)]})
    save_model(build_recommender("popularity").fit(Dataset.from_frame(frame.drop_duplicates())), tmp_path / "model")
    registry = ModelRegistry(tmp_path / "registry")
    registry.register("shop", tmp_path / "model")
    registry.register("shop", tmp_path / "model")
    registry.promote("shop", "v0001")
    EventStore(f"sqlite:///{tmp_path / 'events.db'}").engine.dispose()
    return tmp_path


def created(shop: Path) -> list[dict]:
    return experiments(EventStore(f"sqlite:///{shop / 'events.db'}"))


def test_create_list_stop(shop: Path) -> None:
    db = f"sqlite:///{shop / 'events.db'}"
    result = ok(cli("experiments", "create", "--db", db, "--name", "ranker", "--arm", "control=shop@production",
                    "--arm", "treatment=shop@v0002", "--arm", "holdout=baseline", "--traffic", "45,45,10",
                    "--metric", "click_rate", "--guardrail", "p99_ms<=30", "--min-users", "500", cwd=shop))
    assert "started experiment 'ranker' on recommendations" in flat(result.stderr)  # messages go to stderr
    [row] = created(shop)
    assert row["status"] == "running" and row["design"]["min_users"] == 500
    assert [(arm["name"], arm["ref"], arm["share"]) for arm in row["design"]["arms"]] == [
        ("control", "shop@production", 45), ("treatment", "shop@v0002", 45), ("holdout", "baseline", 10)]
    again = cli("experiments", "create", "--db", db, "--name", "second", "--arm", "a=shop@v0001", "--arm",
                "b=shop@v0002", "--traffic", "50,50", "--metric", "conversion", cwd=shop)
    assert again.returncode == 2 and "ranker already runs on surface 'recommendations'" in flat(again.stderr)
    listed = flat(ok(cli("experiments", "list", "--db", db, cwd=shop)).stdout)
    assert "ranker" in listed and "running" in listed and "treatment=shop@v0002 45%" in listed
    ok(cli("experiments", "stop", "--db", db, "--name", "ranker", "--reason", "enough", cwd=shop))
    assert created(shop)[0]["status"] == "stopped" and created(shop)[0]["stop_reason"] == "enough"
    ok(cli("experiments", "create", "--db", db, "--name", "second", "--arm", "a=shop@v0001", "--arm",
           "b=shop@v0002", "--traffic", "50,50", "--metric", "conversion", cwd=shop))


@pytest.mark.parametrize(("options", "message"), [
    (["--arm", "control=shop@production", "--arm", "treatment=shop@v0009", "--traffic", "50,50"],
     "--arm 'treatment=shop@v0009'"),
    (["--arm", "control=shop@production", "--arm", "treatment=shop@v0002", "--traffic", "60,50"],
     "the shares sum to 110, not 100"),
    (["--arm", "control=nope@production", "--arm", "treatment=shop@v0002", "--traffic", "50,50"],
     "No version of 'nope' is at 'production'"),
])
def test_bad_options_exit_2_and_create_nothing(shop: Path, options: list[str], message: str) -> None:
    result = cli("experiments", "create", "--db", f"sqlite:///{shop / 'events.db'}", "--name", "bad",
                 "--metric", "click_rate", *options, cwd=shop)
    assert result.returncode == 2 and message in flat(result.stderr)
    assert created(shop) == []


def test_a_missing_database_is_refused_not_created(shop: Path) -> None:
    result = cli("experiments", "list", "--db", f"sqlite:///{shop / 'typo.db'}", cwd=shop)
    assert result.returncode == 2 and not (shop / "typo.db").exists()
