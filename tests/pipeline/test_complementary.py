"""Complementary items from baskets or sessions: the planted pair beats the staple everyone buys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.errors import DataError
from tailored.models import create_scorer
from tailored.pipeline.recommender import Recommender
from tailored.pipeline.complementary import complementary_items


def baskets(seed: int = 0, with_ids: bool = True) -> pd.DataFrame:
    """400 baskets: milk in 70%, spaghetti in 20% (with pasta sauce 80% of the time), filler items at random;
    baskets an hour apart, their items a minute apart."""
    rng = np.random.default_rng(seed)
    rows = []
    for basket in range(400):
        user, start = f"u{rng.integers(80)}", basket * 3600
        items = [f"filler{i}" for i in rng.choice(30, 3, replace=False)]
        items += ["milk"] if rng.random() < 0.7 else []
        if rng.random() < 0.2:
            items += ["spaghetti"] + (["sauce"] if rng.random() < 0.8 else [])
        rows += [(user, item, start + 60 * position, basket) for position, item in enumerate(items)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "basket_id"])
    return frame if with_ids else frame.drop(columns="basket_id")


@pytest.mark.parametrize("with_ids", [True, False], ids=["basket column", "30-minute sessions"])
def test_the_planted_complement_comes_first(with_ids: bool) -> None:
    recommender = Recommender(create_scorer("popularity")).fit(Dataset.from_frame(baskets(with_ids=with_ids)))
    frame = complementary_items(recommender, ["spaghetti"], k=3)
    first = frame.iloc[0]
    assert first["complementary_item_id"] == "sauce" and first["lift"] > 3 and 0.6 < first["confidence"] < 0.95
    ranked = complementary_items(recommender, ["spaghetti"], k=40, backfill=False)
    assert (ranked["lift"] > 1).all() and ranked["complementary_item_id"].iloc[0] == "sauce"
    milk = ranked[ranked["complementary_item_id"] == "milk"]  # the staple (lift ~ 1): a complement only above 1
    assert milk.empty or milk["rank"].iloc[0] > 1
    full = complementary_items(recommender, ["spaghetti"], k=30)  # more slots than pairs: backfilled
    sources = full["source"].tolist()
    assert len(full) == 30 and sources == sorted(sources)  # every complement before every popular item
    assert "popular" in sources and full.loc[full["source"] == "popular", "score"].isna().all()
    assert len(complementary_items(recommender, ["spaghetti"], k=30, backfill=False)) == sources.count("complement")
    assert recommender.basket_count_ == 400


def test_without_baskets_or_timestamps_complements_are_a_clear_error() -> None:
    frame = baskets().drop(columns=["basket_id", "timestamp"])
    recommender = Recommender(create_scorer("popularity")).fit(Dataset.from_frame(frame))
    with pytest.raises(DataError, match="no co-purchase statistics"):
        complementary_items(recommender, ["spaghetti"])


def test_command_line_basket_column_and_complementary(tmp_path) -> None:
    from tests.cli.helpers import cli, ok

    baskets().rename(columns={"basket_id": "order"}).to_csv(tmp_path / "orders.csv", index=False)
    pd.DataFrame({"item_id": ["spaghetti"]}).to_csv(tmp_path / "query.csv", index=False)
    ok(cli("train", "--interactions", "orders.csv", "--basket-col", "order", "--algorithm", "popularity",
           "--model-dir", "model", cwd=tmp_path))
    ok(cli("complementary", "--model-dir", "model", "--items", "query.csv", "--k", "2", "--output", "c.csv",
           cwd=tmp_path))
    result = pd.read_csv(tmp_path / "c.csv")
    assert result["complementary_item_id"].iloc[0] == "sauce"
    assert list(result.columns) == ["item_id", "complementary_item_id", "score", "lift", "confidence", "support",
                                    "rank", "source"]


def test_a_basket_id_column_is_used_without_being_named(tmp_path) -> None:
    from tailored.jobs import tasks as jobs

    orders = baskets().assign(timestamp=1_700_000_000)  # one moment: sessions would make one basket per user
    orders.to_csv(tmp_path / "orders.csv", index=False)
    recommender = Recommender(create_scorer("popularity")).fit(jobs.load_dataset(tmp_path / "orders.csv"))
    assert recommender.basket_count_ == 400
    sessions = Recommender(create_scorer("popularity")).fit(jobs.load_dataset(orders.drop(columns="basket_id")))
    assert sessions.basket_count_ == orders["user_id"].nunique()


def test_an_item_added_after_training_gets_backfilled_complements_and_no_trend() -> None:
    from tailored.pipeline.trending import trending_items

    items = pd.DataFrame({"item_id": [f"filler{i}" for i in range(30)] + ["milk", "spaghetti", "sauce"],
                          "category": "food"})
    recommender = Recommender(create_scorer("popularity")).fit(Dataset.from_frame(baskets(), items=items))
    extended = recommender.with_items(pd.DataFrame({"item_id": ["truffle"], "category": ["food"]}))
    frame = complementary_items(extended, ["truffle"], k=3)
    assert frame["source"].tolist() == ["popular"] * 3 and frame["complementary_item_id"].iloc[0] == "milk"
    assert "truffle" in complementary_items(extended, ["spaghetti"], k=40)["complementary_item_id"].tolist()
    assert "truffle" not in trending_items(extended, k=40)["item_id"].tolist()


def around_the_threshold() -> pd.DataFrame:
    """10,000 one-customer baskets, each with a bag; 1,000 hold "pasta", and partners sold in 1,000 baskets each are
    in 99, 100 and 101 of pasta's: lifts 0.99, 1.0 and 1.01 (the bag, in every basket: 1.0)."""
    rows = [(f"u{basket}", "bag", basket) for basket in range(10_000)]
    rows += [(f"u{basket}", "pasta", basket) for basket in range(1_000)]
    for partner, together in (("lift 0.99", 99), ("lift 1.0", 100), ("lift 1.01", 101)):
        rows += [(f"u{basket}", partner, basket) for basket in [*range(together), *range(9_000, 10_000 - together)]]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "basket_id"])


def test_a_pair_at_or_below_lift_1_is_never_a_complement() -> None:
    recommender = Recommender(create_scorer("popularity")).fit(Dataset.from_frame(around_the_threshold()))
    frame = complementary_items(recommender, ["pasta"], k=4).set_index("complementary_item_id")
    assert frame["lift"].to_dict() == pytest.approx({"lift 1.01": 1.01, "bag": 1.0, "lift 1.0": 1.0, "lift 0.99": 0.99})
    assert frame["source"].to_dict() == {"lift 1.01": "complement", "bag": "popular", "lift 1.0": "popular",
                                         "lift 0.99": "popular"}
    strict = complementary_items(recommender, ["pasta"], k=4, backfill=False)
    assert strict["complementary_item_id"].tolist() == ["lift 1.01"]


def test_the_command_line_lists_only_pairs_above_lift_1_as_complements(tmp_path) -> None:
    from tests.cli.helpers import cli, ok

    around_the_threshold().to_csv(tmp_path / "orders.csv", index=False)
    pd.DataFrame({"item_id": ["pasta"]}).to_csv(tmp_path / "query.csv", index=False)
    ok(cli("train", "--interactions", "orders.csv", "--algorithm", "popularity", "--model-dir", "model", cwd=tmp_path))
    ok(cli("complementary", "--model-dir", "model", "--items", "query.csv", "--k", "4", "--no-backfill", "--output",
           "c.csv", cwd=tmp_path))
    result = pd.read_csv(tmp_path / "c.csv")
    assert result[["complementary_item_id", "source"]].to_dict("records") == [
        {"complementary_item_id": "lift 1.01", "source": "complement"}]
    assert result["lift"].iloc[0] == pytest.approx(1.01)
