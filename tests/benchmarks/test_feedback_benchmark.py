"""`tailored benchmark feedback` on a small model: every click sent with its list's exposure id is credited by id
and learnt once, as the policy's own count says."""

from __future__ import annotations

from tailored.benchmarks.feedback import feedback_benchmark
from tailored.data.dataset import Dataset
from tailored.pipeline.recommender import build_recommender
from tailored.registry.model_dir import save_model
from tests.serve.test_service import shop


def test_every_click_is_attributed_by_its_exposure_id_and_learnt_once(tmp_path) -> None:
    frame, items = shop()
    save_model(build_recommender("ease").fit(Dataset.from_frame(frame, items=items)), tmp_path / "model")
    figures = feedback_benchmark(tmp_path / "model", f"sqlite:///{tmp_path / 'bench.db'}", lists=30, batch_size=25,
                                 clients=3, rate=20, seconds=1, connections=2, say=lambda _: None)
    assert figures["clicks_posted"] > 30 and figures["clicks_by_exposure_id"] == figures["clicks_posted"]
    assert figures["rewards_learnt"] == figures["clicks_posted"] and figures["learnt_equals_credited"]
    for policy in ("greedy", "thompson"):
        assert figures[f"{policy}_lists_ok"] == figures[f"{policy}_lists_requests"] > 0
