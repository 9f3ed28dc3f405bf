"""`tailored ope` as a user runs it: the Open Bandit sample without a model, a saved model's on-policy log, bad
input (exit 2 with the reason)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.pipeline.recommender import build_recommender
from tailored.pipeline.slates import candidates_of, request_rng
from tailored.policies.base import parse_policy
from tailored.query import Query
from tailored.registry.model_dir import save_model
from tests.cli.helpers import cli, flat, ok
from tests.conftest import require_extra

SOFTMAX = "softmax:temperature=0.5"


@pytest.fixture(scope="module")
def on_policy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small popularity-free model saved to a folder and a log of softmax lists over its candidates, with the
    exact propensities and random clicks."""
    folder = tmp_path_factory.mktemp("ope")
    rng = np.random.default_rng(0)
    users, items = np.repeat([f"u{u}" for u in range(40)], 15), rng.integers(0, 80, 600)
    frame = pd.DataFrame({"user_id": users, "item_id": [f"i{i}" for i in items]}).drop_duplicates()
    model = build_recommender("item-knn").fit(Dataset.from_frame(frame))
    save_model(model, folder / "model")
    policy, rows = parse_policy(SOFTMAX), []
    for index in range(200):
        user, exposure = f"u{index % 40}", f"{index:032x}"
        candidates = candidates_of(model, Query(user), 5)
        slate = policy.choose(candidates, 5, request_rng(0, exposure))
        for position, (chosen, propensity) in enumerate(zip(slate.chosen, slate.propensities, strict=True), 1):
            rows.append({"exposure_id": exposure, "user_id": user, "position": position,
                         "item_id": candidates.item_ids[chosen], "propensity": propensity, "policy": SOFTMAX,
                         "model_version": "v1", "created_at": float(index), "click": int(rng.random() < 0.2),
                         "purchase": 0, "revenue": 0.0})
    pd.DataFrame(rows).to_csv(folder / "log.csv", index=False)
    return folder / "model", folder / "log.csv"


def test_on_policy_estimates_equal_the_logged_value(on_policy: tuple[Path, Path], tmp_path: Path) -> None:
    model, log = on_policy
    result = ok(cli("ope", "--log", log, "--model-dir", model, "--policy", SOFTMAX, "--estimators",
                    "ips,snips,dm,dr,pi", "--samples", 200, "--output", tmp_path / "on.json", cwd=tmp_path))
    found = json.loads((tmp_path / "on.json").read_text())
    assert found["policy"] == SOFTMAX and found["reward"] == "click" and found["n"] == 200 and found["rows"] == 1000
    for name in ("ips", "snips", "pi"):  # every weight is 1
        assert found["estimates"][name]["value"] == pytest.approx(found["logged_value"], rel=1e-9)
    for name in ("ips", "snips", "dr", "pi"):
        low, high = found["estimates"][name]["ci"]
        assert low <= found["logged_value"] <= high
    assert found["estimates"]["dr"]["value"] == pytest.approx(found["logged_value"], rel=0.05)
    assert found["estimates"]["ips"]["ess"] == pytest.approx(1000)
    assert not any("propensity 1" in warning or "not among" in warning for warning in found["warnings"])
    assert "snips" in result.stderr


def test_greedy_from_softmax_logs_is_estimated_within_support(on_policy: tuple[Path, Path], tmp_path: Path) -> None:
    model, log = on_policy
    ok(cli("ope", "--log", log, "--model-dir", model, "--policy", "greedy", "--samples", 100,
           "--output", tmp_path / "greedy.json", cwd=tmp_path))
    found = json.loads((tmp_path / "greedy.json").read_text())
    assert set(found["estimates"]) == {"ips", "snips", "dm", "dr"}
    assert 0 < found["estimates"]["ips"]["ess"] < 1000
    assert not any("propensity 1" in warning for warning in found["warnings"])


def test_open_bandit_random_policy_without_a_model(tmp_path: Path) -> None:
    require_extra("feedback", "obp")
    from tailored.data.open_bandit import read_open_bandit

    read_open_bandit("bts").to_csv(tmp_path / "bts.csv", index=False)
    ok(cli("ope", "--log", tmp_path / "bts.csv", "--policy", "uniform", "--estimators", "ips,snips",
           "--output", tmp_path / "random.json", cwd=tmp_path))
    found = json.loads((tmp_path / "random.json").read_text())
    assert found["n"] == 10_000 and found["policy"] == "uniform"
    on_policy_rate = read_open_bandit("random")["click"].mean()
    low, high = found["estimates"]["snips"]["ci"]
    assert low <= on_policy_rate <= high


@pytest.mark.parametrize(("change", "message"), [
    ({"propensity": 0.0}, "Column 'propensity' in {log} has 1 propensities outside (0, 1]"),
    ({"drop": "propensity"}, "Column 'propensity' not found in {log}"),
])
def test_bad_logs_exit_2_naming_the_column(on_policy: tuple[Path, Path], tmp_path: Path, change: dict[str, object],
                                         message: str) -> None:
    model, source = on_policy
    frame = pd.read_csv(source)
    if "drop" in change:
        frame = frame.drop(columns=str(change["drop"]))
    else:
        frame.loc[3, "propensity"] = change["propensity"]
    log = tmp_path / "bad.csv"
    frame.to_csv(log, index=False)
    result = cli("ope", "--log", log, "--model-dir", model, "--policy", "greedy", "--output", tmp_path / "r.json",
                 cwd=tmp_path)
    assert result.returncode == 2 and message.format(log=log) in flat(result.stderr)
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(("arguments", "message"), [
    (["--policy", "greedy"], "Policy 'greedy' needs the model's candidates: give --model-dir"),
    (["--policy", "softmax:temperature=0"], "temperature"),
    (["--policy", "uniform", "--estimators", "ips,ipw"], "--estimators 'ips,ipw': choose among"),
    (["--policy", "uniform", "--reward", "views"], "--reward 'views'"),
])
def test_bad_options_exit_2(on_policy: tuple[Path, Path], tmp_path: Path, arguments: list[str], message: str) -> None:
    _, log = on_policy
    result = cli("ope", "--log", log, *arguments, "--output", tmp_path / "r.json", cwd=tmp_path)
    assert result.returncode == 2 and message in flat(result.stderr), result.stderr


def test_the_log_is_read_from_a_store(tmp_path: Path) -> None:
    """Uniform lists over four items logged in a store, clicks answering some of them: `--db` gives the same
    result as the exported file."""
    from tailored.store import EventStore
    from tailored.store.database import Event, exposure_row

    url = f"sqlite:///{tmp_path / 'events.db'}"
    store, rng = EventStore(url), np.random.default_rng(1)
    rows, events = [], []
    for index in range(60):
        shown = rng.permutation(["a", "b", "c", "d"])[:2]
        row = exposure_row(f"u{index % 7}", "v1", shown, [0.25, 0.25], policy="uniform")
        rows.append(row)
        if rng.random() < 0.4:
            events.append(Event(f"e{index}", row["user_id"], str(shown[0]), "click", timestamp=row["created_at"] + 1,
                                exposure_id=row["exposure_id"]))
    store.log_exposures(rows)
    store.append_events(events)
    ok(cli("ope", "--db", url, "--policy", "uniform", "--estimators", "ips,snips", "--output", tmp_path / "db.json",
           cwd=tmp_path))
    ok(cli("logs", "export", "--db", url, "--output", tmp_path / "log.csv", cwd=tmp_path))
    ok(cli("ope", "--log", tmp_path / "log.csv", "--policy", "uniform", "--estimators", "ips,snips",
           "--output", tmp_path / "file.json", cwd=tmp_path))
    from_db, from_file = (json.loads((tmp_path / name).read_text()) for name in ("db.json", "file.json"))
    assert from_db == from_file and from_db["n"] == 60
    assert from_db["logged_value"] == pytest.approx(len(events) / 60)
    assert from_db["estimates"]["ips"]["value"] == pytest.approx(from_db["logged_value"])  # uniform on uniform


def test_given_candidates_set_the_target_probabilities_and_an_empty_list_earns_nothing() -> None:
    """In process (`jobs.ope.evaluate_log`, as the simulator calls it): greedy over x > y > z shows x then y; the
    second list has no candidates (the target shows nothing there) and its logged items count as outside."""
    from tailored.data.feedback_log import read_feedback_log
    from tailored.jobs.ope import evaluate_log
    from tailored.policies.base import Candidates

    log = read_feedback_log(pd.DataFrame({
        "exposure_id": ["a", "a", "b", "b", "c"], "user_id": "u", "position": [1, 2, 1, 2, 1],
        "item_id": ["x", "y", "y", "z", "x"], "propensity": 0.5, "click": [1, 0, 0, 1, 1],
        "revenue": [10.0, 0.0, 0.0, 7.0, 4.0]}), reward="revenue")
    ranked = Candidates(np.array(["x", "y", "z"]), np.array([3.0, 2.0, 1.0]), np.zeros(3, bool))
    empty = Candidates(np.array([]), np.array([]), np.zeros(0, bool))
    found = evaluate_log(log, "greedy", candidates=[ranked, empty, ranked], samples=20)
    assert found["estimates"]["ips"]["value"] == pytest.approx((1 * 2 + 1 * 2) / 3)  # x at 1 in a and c, weight 2
    assert found["estimates"]["snips"]["value"] == pytest.approx(1.0)
    assert any("2 of 5 logged rows" in warning for warning in found["warnings"])
    revenue = evaluate_log(log, "greedy", candidates=[ranked, empty, ranked], reward="revenue", samples=20)
    assert revenue["estimates"]["ips"]["value"] == pytest.approx((10 * 2 + 4 * 2) / 3)
    assert revenue["logged_value"] == pytest.approx(21 / 3)
    with pytest.raises(ConfigError, match="2 candidate lists given for the log's 3 lists"):
        evaluate_log(log, "greedy", candidates=[ranked, ranked])
