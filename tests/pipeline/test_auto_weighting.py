"""The default weighting ``auto`` follows the data: log1p for heavy-tailed counts (play counts), binary for 0/1 and
for ratings fed to ranking models, raw for rating predictors; `tailored train` says what it chose, and MovieLens P1
is reproduced with the command line's defaults."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.data.transforms import HEAVY_TAIL_RATIO, resolve_weighting
from tailored.pipeline.recommender import build_recommender
from tests.cli.helpers import cli, flat, ok


def play_counts(n_users: int = 60, n_items: int = 80, seed: int = 0) -> pd.DataFrame:
    """Last.fm-like plays: one row per (user, artist) with a heavy-tailed count, a few users playing thousands."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        items = rng.choice(n_items, 12, replace=False)
        plays = np.maximum(1, np.rint(rng.lognormal(2.5, 1.0, len(items)))).astype(int)
        if u < 3:  # the heavy listeners
            plays *= 500
        rows += [(f"u{u}", f"a{i}", float(p), 1_700_000_000 + 60 * u + j) for j, (i, p) in enumerate(zip(items, plays))]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"])


def star_ratings(n_users: int = 60, n_items: int = 80, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(f"u{u}", f"m{i}", float(rng.integers(1, 6)), 1_700_000_000 + 60 * u + int(i))
            for u in range(n_users) for i in rng.choice(n_items, 12, replace=False)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"])


def chosen(frame: pd.DataFrame, algorithm: str) -> str:
    recommender = build_recommender(algorithm).fit(Dataset.from_frame(frame))
    assert recommender.weighting == "auto"
    return recommender.weighting_


def test_heavy_tailed_counts_get_log1p() -> None:
    plays = play_counts()
    assert plays["value"].max() >= 1000 and plays["value"].max() >= HEAVY_TAIL_RATIO * plays["value"].median()
    weighting, reason = resolve_weighting("auto", Dataset.from_frame(plays), explicit=False)
    assert weighting == "log1p" and reason.startswith("counts with a heavy tail")
    assert chosen(plays, "ease") == chosen(plays, "als") == "log1p"


def test_repeated_purchases_are_counted_per_pair() -> None:
    # one row per purchase, value 1: one pair bought 30 times is a heavy tail of the per-pair totals
    rows = [("u0", "i0", 1.0)] * 30 + [(f"u{u}", f"i{u % 7}", 1.0) for u in range(1, 40)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "value"])
    assert resolve_weighting("auto", Dataset.from_frame(frame), explicit=False)[0] == "log1p"
    assert resolve_weighting("auto", Dataset.from_frame(frame.drop_duplicates()), explicit=False)[0] == "binary"


@pytest.mark.parametrize("algorithm", ["ease", "item-knn", "als"])
def test_ratings_and_implicit_01_get_binary_for_ranking_models(algorithm: str) -> None:
    ratings = star_ratings()
    assert chosen(ratings, algorithm) == "binary"
    implicit = ratings.assign(value=(ratings["value"] >= 3).astype(float))  # 0/1, zeros included
    assert chosen(implicit, algorithm) == "binary"


def test_rating_predictors_keep_raw_values() -> None:
    assert chosen(star_ratings(), "mf") == "raw"
    assert chosen(play_counts(), "mf") == "raw"
    weighting, reason = resolve_weighting("auto", Dataset.from_frame(star_ratings()), explicit=True)
    assert (weighting, reason) == ("raw", "the algorithm predicts the values (ratings) themselves")


def test_negative_values_stay_raw_and_a_given_weighting_is_kept() -> None:
    signed = star_ratings().assign(value=lambda f: f["value"] - 3.0)
    weighting, reason = resolve_weighting("auto", Dataset.from_frame(signed), explicit=False)
    assert weighting == "raw" and "negative" in reason
    assert resolve_weighting("log1p", Dataset.from_frame(star_ratings()), explicit=False) == ("log1p", "given")


def test_auto_trains_the_same_model_as_the_weighting_it_chose() -> None:
    data = Dataset.from_frame(play_counts())
    auto = build_recommender("ease").fit(data)
    given = build_recommender("ease", {"weighting": "log1p"}).fit(data)
    raw = build_recommender("ease", {"weighting": "raw"}).fit(data)
    np.testing.assert_array_equal(auto.scorer.weights_, given.scorer.weights_)
    assert not np.allclose(auto.scorer.weights_, raw.scorer.weights_)


def test_train_says_which_weighting_auto_chose_and_saves_it(tmp_path: Path) -> None:
    play_counts().to_csv(tmp_path / "plays.csv", index=False)
    star_ratings().to_csv(tmp_path / "ratings.csv", index=False)
    plays = ok(cli("train", "--interactions", "plays.csv", "--algorithm", "ease", "--model-dir", "ease", cwd=tmp_path))
    assert "weighting: auto chose log1p (counts with a heavy tail: the largest (user, item) total" in flat(plays.stderr)
    ratings = ok(cli("train", "--interactions", "ratings.csv", "--algorithm", "mf", "--param", "epochs=3",
                     "--param", "burn_in=1", "--model-dir", "mf", cwd=tmp_path))
    assert "weighting: auto chose raw (the algorithm predicts the values (ratings) themselves)" in flat(ratings.stderr)
    given = ok(cli("train", "--interactions", "plays.csv", "--algorithm", "ease", "--param", "weighting=binary",
                   "--model-dir", "given", cwd=tmp_path))
    assert "weighting: binary (given)" in flat(given.stderr)
    for model, weighting in (("ease", "log1p"), ("mf", "raw"), ("given", "binary")):
        assert json.loads((tmp_path / model / "manifest.json").read_text())["recommender"]["weighting"] == weighting


def test_movielens_p1_is_reproduced_with_command_line_defaults(ml100k_dir: Path, tmp_path: Path) -> None:
    """Star ratings kept as values by `datasets movielens`; `train --algorithm ease` with no parameter scores the
    P1 figure of binary interactions (0.4527 NDCG@10; raw ratings gave 0.3945)."""
    ok(cli("datasets", "movielens", "--data-dir", ml100k_dir, "--output-dir", "ml", cwd=tmp_path))
    assert set(pd.read_csv(tmp_path / "ml" / "interactions.csv")["value"]) == {1.0, 2.0, 3.0, 4.0, 5.0}
    ok(cli("split", "--interactions", "ml/interactions.csv", "--output-dir", "p1", "--method", "per_user",
           "--test-fraction", "0.2", "--seed", "42", cwd=tmp_path))
    trained = ok(cli("train", "--interactions", "p1/train.csv", "--algorithm", "ease", "--model-dir", "ease",
                     cwd=tmp_path))
    assert "weighting: auto chose binary" in flat(trained.stderr)
    ok(cli("evaluate", "--model-dir", "ease", "--test", "p1/test.csv", "--train", "p1/train.csv",
           "--metric", "ndcg@10", "--output", "metrics.json", cwd=tmp_path))
    [row] = json.loads((tmp_path / "metrics.json").read_text())
    assert row["metric"] == "ndcg@10" and row["value"] == pytest.approx(0.4527, abs=5e-4)
