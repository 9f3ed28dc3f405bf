"""`tailored benchmark complementary`: do complementary items predict what else goes in the basket, and do they
recommend what goes with the item rather than the staples?

Baskets are split in time: the first ``1 - test_share`` of them (by their first interaction) train the
co-purchase counts, the rest are the test. For each test basket with at least two items known to training, each
of its items is a query; a list (the item's top-``k`` complements, or the ``k`` most bought items other than the
query) hits when it holds another item of the basket. Reported per method: the hit rate over queries and the mean
lift of the listed pairs (training counts; pairs never seen together have lift 0). With the planted pairs of a
data set (``item_id, complement_item_id``: `tailored datasets synthetic` writes them), also the share of pairs
whose partner is in the item's top-``k``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tailored.pipeline.complementary import COMPLEMENTARY_ITEM_ID, complementary_items
from tailored.data.baskets import association_scores
from tailored.data.columns import BASKET_ID, ITEM_ID, TIMESTAMP, USER_ID
from tailored.data.dataset import Dataset
from tailored.errors import DataError
from tailored.models import create_scorer
from tailored.pipeline.recommender import Recommender

POPULAR = "most bought"


def complementary_benchmark(interactions: pd.DataFrame, pairs: pd.DataFrame | None = None, k: int = 10,
                            min_count: int = 5, test_share: float = 0.2) -> tuple[pd.DataFrame, float | None]:
    """The methods' table (``method, hit_rate, mean_lift, hit_rate_vs_popular, lift_vs_popular``) and the planted
    partners' top-``k`` rate (None without ``pairs``). ``interactions`` need ``user_id, item_id, timestamp,
    basket_id``."""
    missing = [column for column in (USER_ID, ITEM_ID, TIMESTAMP, BASKET_ID) if column not in interactions]
    if missing:
        raise DataError(f"The basket benchmark needs columns {missing}; the interactions have "
                        f"{list(interactions.columns)}.")
    frame = interactions.astype({ITEM_ID: str, USER_ID: str})
    started = frame.groupby(BASKET_ID)[TIMESTAMP].transform("min")
    cut = np.quantile(started.drop_duplicates(), 1 - test_share)
    train, test = frame[started < cut], frame[started >= cut]
    baskets = Dataset.from_frame(train[[USER_ID, ITEM_ID, TIMESTAMP, BASKET_ID]])
    recommender = Recommender(create_scorer("popularity")).fit(baskets)
    known = test[test[ITEM_ID].isin(recommender.items_.external_ids.astype(str))].drop_duplicates([BASKET_ID, ITEM_ID])
    known = known[known.groupby(BASKET_ID)[ITEM_ID].transform("size") >= 2]
    queries = known[[BASKET_ID, ITEM_ID]].reset_index(drop=True)
    rows = []
    for method, lists in method_lists(recommender, queries[ITEM_ID].unique(), k, min_count).items():
        rows.append({"method": method, **list_quality(recommender, queries, lists)})
    table = pd.DataFrame(rows)
    popular = table.set_index("method").loc[POPULAR]
    table["hit_rate_vs_popular"] = table["hit_rate"] / popular["hit_rate"]
    table["lift_vs_popular"] = table["mean_lift"] / popular["mean_lift"]
    return table, None if pairs is None else partner_rate(recommender, pairs, k, min_count)


def method_lists(recommender: Recommender, items: np.ndarray, k: int, min_count: int) -> dict[str, pd.DataFrame]:
    """``item_id, complementary_item_id`` lists of each method for the query items."""
    counts = recommender.co_purchase_.diagonal()
    ranked = recommender.items_.ids(np.argsort(-counts, kind="stable")[: k + 1]).astype(str)
    popular = pd.DataFrame({ITEM_ID: np.repeat(items, k + 1), COMPLEMENTARY_ITEM_ID: np.tile(ranked, len(items))})
    popular = popular[popular[ITEM_ID] != popular[COMPLEMENTARY_ITEM_ID]].groupby(ITEM_ID).head(k)
    return {"complementary": complementary_items(recommender, items, k, min_count),
            "complementary, no backfill": complementary_items(recommender, items, k, min_count, backfill=False),
            POPULAR: popular}


def list_quality(recommender: Recommender, queries: pd.DataFrame, lists: pd.DataFrame) -> dict[str, float]:
    """Hit rate of the lists over the (basket, item) queries, and the mean lift of the listed pairs."""
    basket_items = queries.rename(columns={ITEM_ID: COMPLEMENTARY_ITEM_ID})
    listed = queries.merge(lists[[ITEM_ID, COMPLEMENTARY_ITEM_ID]], on=ITEM_ID)
    hits = listed.merge(basket_items, on=[BASKET_ID, COMPLEMENTARY_ITEM_ID])
    hit = queries.merge(hits[[BASKET_ID, ITEM_ID]].drop_duplicates().assign(hit=True), on=[BASKET_ID, ITEM_ID],
                        how="left")
    first = recommender.items_.index(lists[ITEM_ID].to_numpy())
    second = recommender.items_.index(lists[COMPLEMENTARY_ITEM_ID].to_numpy())
    unique, inverse = np.unique(first, return_inverse=True)
    lift = association_scores(recommender.co_purchase_, recommender.basket_count_, unique, 1)[1]
    return {"hit_rate": float(hit["hit"].fillna(False).astype(bool).mean()),
            "mean_lift": float(lift[inverse, second].mean()) if len(lists) else 0.0}


def partner_rate(recommender: Recommender, pairs: pd.DataFrame, k: int, min_count: int) -> float:
    """Share of the planted pairs (both items known to training) whose partner is in the item's top-``k``."""
    pairs = pairs.astype(str)
    trained = set(recommender.items_.external_ids.astype(str))
    pairs = pairs[pairs[ITEM_ID].isin(trained) & pairs["complement_item_id"].isin(trained)]
    if pairs.empty:
        raise DataError("None of the planted pairs has both items in the training baskets.")
    lists = complementary_items(recommender, pairs[ITEM_ID].unique(), k, min_count)
    found = pairs.merge(lists, left_on=[ITEM_ID, "complement_item_id"], right_on=[ITEM_ID, COMPLEMENTARY_ITEM_ID])
    return len(found.drop_duplicates([ITEM_ID, "complement_item_id"])) / len(pairs.drop_duplicates())
