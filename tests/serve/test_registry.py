"""Model registry: versions, promote, rollback; a serving app follows the stage and survives a broken version."""

from __future__ import annotations

import json
import shutil

import pytest
from fastapi.testclient import TestClient

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.pipeline.recommender import build_recommender
from tailored.registry.model_dir import save_model
from tailored.registry.versions import ModelRegistry
from tailored.serve import ServiceSettings, create_app
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
