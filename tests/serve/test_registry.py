"""Model registry: versions, promote, rollback; a serving app follows the stage and survives a broken version."""

from __future__ import annotations

import getpass
import json
import multiprocessing
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.pipeline.recommender import build_recommender
from tailored.registry.model_dir import save_model
from tailored.registry.versions import ModelRegistry
from tailored.serve import ServiceSettings, create_app
from tests.cli.helpers import cli, flat, ok
from tests.serve.test_service import shop


@pytest.fixture
def registry(tmp_path) -> ModelRegistry:
    frame, items = shop()
    dataset = Dataset.from_frame(frame, items=items)
    for algorithm in ("popularity", "item-knn"):
        save_model(build_recommender(algorithm).fit(dataset), tmp_path / algorithm)
    registry = ModelRegistry(tmp_path / "registry")
    assert registry.register("shop", tmp_path / "popularity") == "v0001"
    assert registry.register("shop", tmp_path / "item-knn") == "v0002"
    return registry


def test_promote_and_rollback_move_the_stage(registry) -> None:
    registry.promote("shop", "v0001")
    registry.promote("shop", "v0002")
    assert registry.resolve("shop@production").name == "v0002" and registry.resolve("shop@v0001").name == "v0001"
    assert registry.rollback("shop") == "v0001" and registry.current("shop", "production") == "v0001"
    rows = registry.describe()
    assert [(row["version"], row["algorithm"], row["stages"]) for row in rows] == [
        ("v0001", "popularity", "production"), ("v0002", "item-knn", "")]
    with pytest.raises(ConfigError, match="no earlier version"):
        registry.rollback("shop")
    with pytest.raises(ConfigError, match="has no version 'v0009'"):
        registry.promote("shop", "v0009")
    with pytest.raises(ConfigError, match="No version of 'shop' is at 'staging'"):
        registry.resolve("shop@staging")


def test_every_promotion_and_rollback_is_recorded_with_who_and_why(registry) -> None:
    before = time.time()
    registry.promote("shop", "v0001")
    registry.promote("shop", "v0002", by="ana", reason="canary won")
    registry.rollback("shop", reason="p99 too high")
    with pytest.raises(ConfigError):
        registry.rollback("shop")  # refused: nothing recorded
    changes = registry.changes("shop")
    assert [(c["action"], c["stage"], c["previous"], c["version"], c["by"], c["reason"]) for c in changes] == [
        ("promote", "production", None, "v0001", getpass.getuser(), ""),
        ("promote", "production", "v0001", "v0002", "ana", "canary won"),
        ("rollback", "production", "v0002", "v0001", getpass.getuser(), "p99 too high")]
    assert before <= changes[0]["at"] <= changes[1]["at"] <= changes[2]["at"] <= time.time()
    result = ok(cli("models", "history", "--registry", registry.root, "shop", cwd=registry.root))
    assert "p99 too high" in flat(result.stdout) and "canary won" in flat(result.stdout)
    unknown = cli("models", "history", "--registry", registry.root, "cafe", cwd=registry.root)
    assert unknown.returncode != 0 and "No model 'cafe'" in flat(unknown.stderr)


def _promote_many(root: str, version: str, times: int) -> None:
    for _ in range(times):
        ModelRegistry(Path(root)).promote("shop", version, by=version)


def test_two_processes_promoting_at_once_lose_no_change(registry) -> None:
    """Read-modify-write under a file lock: 2 x 40 concurrent promotions give 80 pointer entries and 80 records."""
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_promote_many, args=(str(registry.root), version, 40))
               for version in ("v0001", "v0002")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    history = json.loads(registry.pointer_file("shop").read_text())["stages"]["production"]
    changes = registry.changes("shop")
    assert len(history) == len(changes) == 80 and sorted(set(history)) == ["v0001", "v0002"]
    assert [change["version"] for change in changes] == history  # the trail replays the pointer history
    assert all(change["previous"] == before for change, before in zip(changes[1:], history, strict=False))


def test_the_service_follows_the_stage_and_keeps_serving_when_a_version_is_broken(registry, tmp_path) -> None:
    registry.promote("shop", "v0001")
    settings = ServiceSettings(db_url=f"sqlite:///{tmp_path / 'db.sqlite'}", registry=registry.root,
                               model="shop@production", reload_seconds=3600)
    with TestClient(create_app(settings)) as client:
        service = client.app.state.service
        key = service.store.create_key(["recommend"])
        headers = {"Authorization": f"Bearer {key}"}
        served = client.get("/v1/users/u1/recommendations", headers=headers).json()
        assert served["model_version"].startswith("popularity@")
        registry.promote("shop", "v0002")
        assert service.follow_registry() is True
        served = client.get("/v1/users/u1/recommendations", headers=headers).json()
        assert served["model_version"].startswith("item-knn@")
        broken = registry.root / "shop" / "v0003"
        shutil.copytree(registry.root / "shop" / "v0001", broken)
        manifest = json.loads((broken / "manifest.json").read_text())
        (broken / "manifest.json").write_text(json.dumps(manifest | {"format_version": 99}))
        registry.promote("shop", "v0003")
        assert service.follow_registry() is False and service.reload_failures == 1
        answer = client.get("/v1/users/u1/recommendations", headers=headers)
        assert answer.status_code == 200 and answer.json()["model_version"].startswith("item-knn@")
        ready = client.get("/readyz").json()
        assert ready["ready"] is True and ready["reload_failures"] == 1 and "v0003" in ready["last_reload_error"]
        for number, damage in ((4, "missing"), (5, "corrupt")):  # the model's arrays gone, or garbage in their place
            version = registry.root / "shop" / f"v000{number}"
            shutil.copytree(registry.root / "shop" / "v0002", version)
            if damage == "missing":
                (version / "arrays.npz").unlink()
            else:
                (version / "arrays.npz").write_bytes(b"not a numpy archive")
            registry.promote("shop", version.name)
            assert service.follow_registry() is False
            answer = client.get("/v1/users/u1/recommendations", headers=headers)
            assert answer.status_code == 200 and answer.json()["model_version"].startswith("item-knn@")
            assert version.name in client.get("/readyz").json()["last_reload_error"]
