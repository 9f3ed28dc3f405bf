"""What a scorer can do is declared (`tailored.models.base.capabilities`) and read once, when the Recommender is
fitted or loaded; a path that needs a capability the scorer lacks falls back clearly or is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError, DataError
from tailored.models import create_scorer
from tailored.models.base import HistoryScorer
from tailored.pipeline.recommender import Recommender, build_recommender
from tailored.query import Context, Query
from tailored.registry.model_dir import load_model, save_model
from tests.models.test_contract import planted_groups, planted_users

SESSION = Context(recent=("i0", "i3", "i5"))


@pytest.fixture(scope="module")
def planted() -> Dataset:
    train, _, items = planted_groups()
    return Dataset.from_frame(train, users=planted_users(), items=items)


def test_capabilities_are_read_at_fit_and_at_load(planted: Dataset, tmp_path) -> None:
    recommender = Recommender(create_scorer("ease")).fit(planted)
    assert recommender.can_.histories and recommender.can_.folds_in_history and not recommender.can_.vectors
    assert recommender.new_users_.fallback_can.attributes  # the demographic fallback (users carry a segment)
    loaded = load_model(save_model(recommender, tmp_path / "model"))
    assert loaded.can_ == recommender.can_ and loaded.new_users_.attribute_scorers == (loaded.fallback_,)


def test_a_scorer_that_cannot_read_a_session_leaves_it_to_the_prior_and_says_so(planted: Dataset) -> None:
    """popularity declares no history capability: an anonymous session is ranked by the fallback's prior, its items
    left out, and the list names the fallback, not the scorer."""
    recommender = Recommender(create_scorer("popularity")).fit(planted)
    assert not recommender.can_.histories and not recommender.can_.sequences
    one = recommender.recommend_one(Query(None, SESSION), 5)
    assert set(one.models) == {"demographic (session)"} and not {"i0", "i3", "i5"} & set(one.item_ids)
    with_ease = Recommender(create_scorer("ease")).fit(planted).recommend_one(Query(None, SESSION), 5)
    assert set(with_ease.models) == {"ease (session)"} and with_ease.item_ids.tolist() != one.item_ids.tolist()


def test_capabilities_are_not_probed_again_after_fit(planted: Dataset, monkeypatch) -> None:
    """Giving a fitted scorer's class a method later changes nothing: what it can do was read at fit."""
    recommender = Recommender(create_scorer("popularity")).fit(planted)
    before = recommender.recommend_one(Query(None, SESSION), 5)
    scorer_type = type(recommender.scorer)
    monkeypatch.setattr(scorer_type, "score_rows", lambda self, rows, items=None: np.zeros((rows.shape[0], 50)),
                        raising=False)
    assert isinstance(recommender.scorer, HistoryScorer)  # it would now pass the protocol...
    after = recommender.recommend_one(Query(None, SESSION), 5)
    assert after.item_ids.tolist() == before.item_ids.tolist() and set(after.models) == {"demographic (session)"}


def test_a_fallback_is_picked_by_catalogue_name_and_must_rank_new_users(planted: Dataset) -> None:
    assert type(build_recommender("ease", {"fallback": "popularity"}).fit(planted).fallback_).algorithm == "popularity"
    with pytest.raises(ConfigError, match=r"fallback='ease' cannot rank users without interactions; give auto"):
        build_recommender("popularity", {"fallback": "ease"}).fit(planted)


def test_without_an_item_capability_new_items_are_refused_and_a_vector_index_is_not_built(planted: Dataset) -> None:
    bare = Dataset.from_frame(planted_groups()[0])  # no item attributes: no item model
    recommender = Recommender(create_scorer("ease")).fit(bare)
    assert recommender.item_model_ is None and not recommender.new_items_.scorable
    with pytest.raises(DataError, match=r"1 new item\(s\) \(e.g. 'n1'\) cannot be scored"):
        recommender.with_items(pd.DataFrame({"item_id": ["n1"], "category": ["group0"]}))
    assert recommender.with_vector_index() is recommender  # ease declares no vectors
    als = Recommender(create_scorer("als")).fit(bare)
    indexed = als.with_vector_index()  # als declares vectors: the fast lane answers from the index
    assert als.top_from_index(0, 5) is None and indexed.top_from_index(0, 5) is not None
