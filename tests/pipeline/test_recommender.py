"""Recommender: a trained user's events since training count without a refit (`with_events`: only the events training
did not hold, their items seen, the user's scores folded in from the training history plus the events); `recommend`
warns as the command line does and names the model behind each list."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.errors import DataError
from tailored.pipeline.recommender import RecommendationWarning, build_recommender
from tailored.query import parse_context
from tailored.registry.model_dir import save_model
from tests.serve.test_service import shop
from tests.cli.helpers import cli, flat, ok
from tests.conftest import require_extra

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, Dataset]:
    frame, items = shop()
    return frame, Dataset.from_frame(frame, items=items)


def test_unseen_events_are_those_training_did_not_hold(data) -> None:
    frame, dataset = data
    model = build_recommender("ease").fit(dataset)
    trained = frame[frame["user_id"] == "u1"].sort_values("timestamp").iloc[-1]
    events = pd.DataFrame({"user_id": ["u1", "u1", "u1", "nobody", "u1"],
                           "item_id": [trained["item_id"], trained["item_id"], "i0", "i1", "no-such-item"],
                           "timestamp": [trained["timestamp"], NOW, NOW, NOW, NOW]})
    # the trained event itself, a stranger, an unknown item: out
    assert model.unseen_events(events).index.tolist() == [1, 2]
    untimed = build_recommender("ease").fit(Dataset.from_frame(frame.drop(columns="timestamp")))
    assert "i0" not in set(frame.loc[frame["user_id"] == "u1", "item_id"])
    assert untimed.unseen_events(events).index.tolist() == [2]  # without times: the items new to the user only
    with pytest.raises(DataError,
                       match=r"Events lack the column\(s\) \['timestamp'\]: give user_id, item_id and timestamp"):
        model.with_events(events.drop(columns="timestamp"))


@pytest.mark.parametrize("algorithm", ["ease", "item-knn", "als"])
def test_a_history_model_scores_the_training_row_plus_the_events(data, algorithm) -> None:
    _, dataset = data
    model = build_recommender(algorithm).fit(dataset)
    user = model.users_.position("u1")
    top = model.recommend(["u1"], 3)["item_id"].tolist()
    view = model.with_events(pd.DataFrame({"user_id": "u1", "item_id": top[:2], "timestamp": [NOW, NOW + 1]}))
    after = view.recommend(["u1"], 5)
    assert not set(top[:2]) & set(after["item_id"]) and model.recommend(["u1"], 3)["item_id"].tolist() == top
    source = getattr(model.scorer, "user_items_", None)
    history = sp.csr_matrix((model.seen_ if source is None else source)[[user]], dtype=np.float64)
    extended = history.tolil()
    extended[0, model.items_.index(np.array(top[:2]))] = 1.0
    expected = model.scorer.score_rows(extended.tocsr())[0]
    listed = model.items_.index(after["item_id"].to_numpy())
    assert after["score"].to_numpy() == pytest.approx(expected[listed], rel=1e-5)
    assert not np.allclose(after["score"], model.scorer.score(np.array([user]))[0][listed])  # not the trained scores


def test_a_sequence_model_appends_the_events_to_the_training_sequence(data) -> None:
    require_extra("torch", "torch")
    _, dataset = data
    model = build_recommender("sasrec", {"epochs": 1}).fit(dataset)
    user = model.users_.position("u2")
    events = pd.DataFrame({"user_id": "u2", "item_id": ["i4", "i9", "i4"], "timestamp": [NOW + 2, NOW, NOW + 1]})
    after = model.with_events(events).recommend(["u2"], 5)
    sequence = model.scorer.sequences_[user]
    appended = model.items_.index(np.array(["i9", "i4", "i4"]))
    expected = model.scorer.score_sessions([[*sequence[sequence >= 0], *appended]])[0]
    listed = model.items_.index(after["item_id"].to_numpy())
    assert after["score"].to_numpy() == pytest.approx(expected[listed], rel=1e-5)
    assert not {"i4", "i9"} & set(after["item_id"])


def test_the_python_api_warns_as_the_command_line_and_names_each_lists_model(data, tmp_path) -> None:
    """A customer without history gets popularity counts beside the scorer's scores: the frame says which model
    produced each list, and the warning is the command line's own text."""
    frame, dataset = data
    model = build_recommender("ease").fit(dataset)
    with pytest.warns(RecommendationWarning) as caught:
        lists = model.recommend(["u1", "C404", "u2"], n=28)  # 30 items: u1 and u2 have seen more than 2
    expected = ["1 user id(s) unknown to the model and without attributes, e.g. 'C404': they get an anonymous "
                "visitor's list (the most popular items).",
                "2 user(s) got fewer than 28 items: the rules, filters or candidates left too few items."]
    assert [str(warning.message) for warning in caught] == expected
    assert lists.groupby("user_id", sort=False)["model"].first().to_dict() == {
        "u1": "ease", "C404": "popularity (cold start)", "u2": "ease"}
    visitor = model.recommend(["visitor"], 3, context=parse_context(["recent=i1|i2"]))
    assert set(visitor["model"]) == {"ease (session)"}
    save_model(model, tmp_path / "model")
    pd.DataFrame({"user_id": ["u1", "C404", "u2"]}).to_csv(tmp_path / "ids.csv", index=False)
    said = flat(ok(cli("recommend", "--model-dir", "model", "--users", "ids.csv", "--k", "28", "--output", "out.csv",
                       cwd=tmp_path)).stderr)
    assert f"warning: ids.csv: {expected[0]}" in said and f"warning: {expected[1]}" in said
    assert pd.read_csv(tmp_path / "out.csv").groupby("user_id", sort=False)["model"].first().to_dict() == {
        "u1": "ease", "C404": "popularity (cold start)", "u2": "ease"}


def test_stages_set_on_a_used_model_take_effect() -> None:
    """The stages are sorted by role once and kept (`Recommender._ranking`), but a model whose ``stages`` change
    after use -- appended in place, replaced, or a view with more -- ranks with the new ones."""
    from tailored.rank.rules import BusinessRules

    frame, items = shop()
    model = build_recommender("popularity").fit(Dataset.from_frame(frame, items=items))
    banned = {item for item, category in zip(items["item_id"], items["category"], strict=True) if category == "c0"}

    def listed(recommender) -> set[str]:
        return set(recommender.recommend(["u1"], 8)["item_id"])

    before = listed(model)
    assert before & banned
    rules = BusinessRules(exclude_categories=["c0"])
    assert not listed(model.with_stages([rules])) & banned and listed(model) == before
    model.stages.append(rules)
    assert not listed(model) & banned
    model.stages = []
    assert listed(model) == before
