from __future__ import annotations

import numpy as np
import pandas as pd

from tailored.data.dataset import Dataset
from tailored.models import create_scorer
from tailored.pipeline.recommender import Recommender
from tailored.rank import RecentActivityBooster
from tailored.query import parse_context

DAY = 86_400
START = int(pd.Timestamp("2026-01-01", tz="UTC").timestamp())


def grocery() -> pd.DataFrame:
    """200 baskets: pasta always with sauce, cereal always with milk, bread everywhere (the staple)."""
    rng = np.random.default_rng(1)
    rows = []
    for basket in range(200):
        user, moment = f"u{basket % 40}", START + basket * DAY // 4
        pair = ["pasta", "sauce"] if basket % 2 else ["cereal", "milk"]
        for item in pair + ["bread"] + ([f"misc{rng.integers(10)}"] if rng.random() < 0.5 else []):
            rows.append((user, item, moment, basket))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "basket_id"])


def fitted(**params: float) -> tuple[Recommender, Dataset]:
    dataset = Dataset.from_frame(grocery())
    recommender = Recommender(create_scorer("popularity"), exclude_seen=False, stages=[RecentActivityBooster(**params)])
    return recommender.fit(dataset), dataset


def test_fit_keeps_each_users_latest_items_latest_first() -> None:
    recommender, dataset = fitted(window=2)
    stage = recommender.stages[0]
    frame = grocery()
    mine = frame[frame["user_id"] == "u39"]
    last = mine[mine["timestamp"] == mine["timestamp"].max()]  # one basket: items bought at the same moment
    user = dataset.users.index(np.array(["u39"]))[0]
    assert set(dataset.items.ids(stage.recent_[user])) <= set(last["item_id"])
    assert np.allclose(stage.recent_days_[user], last["timestamp"].iloc[0] / DAY)


def test_a_session_gets_the_complement_first_then_similar_items_with_reasons() -> None:
    recommender, _ = fitted(max_age_days=0.0)  # learned activity too old: only the session counts
    session = parse_context(["date=2026-03-01", "recent=pasta"])
    frame = recommender.recommend(["new visitor"], 3, context=session, explain=True)
    assert frame["item_id"].iloc[0] == "sauce"
    assert "pasta" not in frame["item_id"].tolist()
    assert frame["reasons"].iloc[0] == "goes with pasta"
    plain = recommender.recommend(["new visitor"], 3, context=parse_context(["date=2026-03-01"]))
    assert plain["item_id"].iloc[0] == "bread"  # without activity: the popular staple


def test_adjustment_is_standardised_score_plus_weighted_signals() -> None:
    recommender, dataset = fitted(max_age_days=0.0, complement_weight=2.0, similar_weight=0.0)
    stage = recommender.stages[0]
    request = recommender._request(np.array([-1]), np.array([False]), np.zeros((1, dataset.n_items), np.float32),
                                   parse_context(["date=2026-03-01", "recent=cereal"]))
    complement, _, _, _ = stage.signals(request)
    milk, cereal = dataset.items.index(np.array(["milk", "cereal"]))
    assert complement[0, milk] == 1.0  # the strongest complement, normalised to 1
    adjusted = stage.adjust(np.zeros((1, dataset.n_items), np.float32), request)
    assert adjusted[0, milk] == 2.0 and adjusted[0, cereal] == -np.inf
