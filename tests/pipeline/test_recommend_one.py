"""`Recommender.recommend_one` gives, as arrays, exactly the list `recommend` gives for the same user: trained users,
users of the users table without interactions, new users described by attributes, anonymous sessions, with
request-time stages, context and explanations; ``exclude`` leaves items out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.models import create_scorer
from tailored.pipeline.recommender import Recommender
from tailored.query import Context, Query, parse_context
from tailored.rank.base import create_stage
from tests.models.test_contract import planted_groups, planted_users
from tests.conftest import require_extra

QUIET = pd.DataFrame({"user_id": ["quiet-0"], "segment": ["s1"], "region": ["north"]})
NEW_ITEMS = pd.DataFrame({"item_id": ["n1", "n2"], "category": ["group0", "misc"]})
USERS = ["u0", "u17", "quiet-0", "stranger", "new-0", None]
"""Trained users, a users-table user without interactions, an unknown id, a new user with attributes, a session."""
ATTRIBUTES = {"new-0": {"segment": "s2", "region": "south"}, "quiet-0": {"segment": "s0", "region": "south"}}
CONTEXTS = {"none": None, "date": parse_context(["date=2026-03-01"]),
            "session": parse_context(["date=2026-03-01", "recent=i0|i3|i41|i7"])}


@pytest.fixture(scope="module")
def planted() -> Dataset:
    train, _, items = planted_groups()
    return Dataset.from_frame(train, users=pd.concat([planted_users(), QUIET]), items=items)


def fitted(algorithm: str, planted: Dataset) -> Recommender:
    params = {"epochs": 3, "patience": 1} if algorithm in ("ncf", "sasrec") else {}
    return Recommender(create_scorer(algorithm, params)).fit(planted)


def assert_same(recommender: Recommender, user: str | None, context_name: str, explain: bool) -> str:
    """Asserts that both paths give the same list; returns the model that made it."""
    context = CONTEXTS[context_name]
    attributes = ATTRIBUTES.get(user or "")
    query = Query(user, context or Context(), attributes=attributes)
    table = None if attributes is None else pd.DataFrame([{"user_id": user, **attributes}])
    frame = recommender.recommend([user or ""], 8, attributes=table, context=context, explain=explain, warn=False)
    one = recommender.recommend_one(query, 8, explain=explain)
    assert one.item_ids.tolist() == frame["item_id"].tolist()
    np.testing.assert_array_equal(one.scores, frame["score"].to_numpy())
    assert one.models.tolist() == frame["model"].astype(str).tolist()
    if explain:
        assert one.reasons.tolist() == frame["reasons"].tolist()
    else:
        assert one.reasons is None
    return one.models[0]


@pytest.mark.parametrize("algorithm", ["ease", "ncf", "sasrec"])
def test_recommend_one_is_the_list_recommend_gives(algorithm: str, planted: Dataset) -> None:
    if algorithm != "ease":
        require_extra("torch", "torch")
    recommender = fitted(algorithm, planted)
    views = {"model": recommender, "items": recommender.with_items(NEW_ITEMS),
             "stages": recommender.with_stages([create_stage("diversity").fit(planted),
                                                create_stage("rules", {"pinned": ["i44"]}).fit(planted)]),
             "events": recommender.with_events(pd.DataFrame({"user_id": ["u0", "u0"], "item_id": ["i30", "i31"],
                                                             "timestamp": [5000.0, 5001.0]}))}
    models = {assert_same(view, user, context_name, explain=context_name == "session")
              for view in views.values() for user in USERS for context_name in CONTEXTS}
    expected = {algorithm, f"{algorithm} (session)", "demographic (cold start)"}
    assert models == expected | ({"ncf+demographic (cold start)"} if algorithm == "ncf" else set())  # every path ran


def test_the_excluded_items_are_left_out_and_the_rest_keeps_its_order(planted: Dataset) -> None:
    recommender = fitted("ease", planted)
    full = recommender.recommend_one(Query("u0"), 10)
    assert len(full) == 10 and set(full.models) == {"ease"}
    left = recommender.recommend_one(Query("u0", exclude=(full.item_ids[0], full.item_ids[3], "no-such-item")), 8)
    assert left.item_ids.tolist() == [item for k, item in enumerate(full.item_ids) if k not in (0, 3)]


def test_stages_set_on_a_fitted_model_are_run(planted: Dataset) -> None:
    """The benchmarks and jobs swap a fitted model's ``stages``: the lists follow (and the fast lane closes)."""
    recommender = Recommender(create_scorer("ease")).fit(planted)
    before = recommender.recommend_one(Query("u0"), 5)
    recommender.stages = [create_stage("rules", {"pinned": ["i44"]}).fit(planted)]
    after = recommender.recommend_one(Query("u0"), 5)
    assert after.item_ids[0] == "i44" and before.item_ids[0] != "i44"
    assert after.item_ids.tolist() == recommender.recommend(["u0"], 5)["item_id"].tolist()
