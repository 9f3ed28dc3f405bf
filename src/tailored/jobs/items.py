"""Item lists from a saved model: similar items, complements (bought together) and trending items, with titles."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from tailored.data.columns import ITEM_ID
from tailored.data.io import read_attributes
from tailored.errors import DataError
from tailored.jobs.recommend import Lists
from tailored.jobs.tasks import read_item_ids
from tailored.pipeline.complementary import COMPLEMENTARY_ITEM_ID, complementary_items
from tailored.pipeline.recommender import Recommender
from tailored.pipeline.similar import SIMILAR_ITEM_ID, similar_items
from tailored.pipeline.trending import trending_items
from tailored.rank.explain import with_titles
from tailored.registry.model_dir import load_model


def similar_lists(model_dir: Path, items: Path, k: int) -> Lists:
    """The ``k`` most similar items of each item of ``items``; items it describes with attribute columns join the
    catalogue first (so new items get neighbours)."""
    table = read_attributes(items, id_column=ITEM_ID)
    recommender, warnings = load_model(model_dir), []
    if table.shape[1] > 1:
        warnings = [f"{items}: {problem}." for problem in recommender.item_attribute_problems(table)]
        recommender = recommender.with_items(table)
    query, unknown = known_items(recommender, table[ITEM_ID].astype(str).unique(), items,
                                 "describe new items with attribute columns in --items")
    frame = similar_items(recommender, query, k)
    return Lists(with_titles(frame, recommender.catalogue, SIMILAR_ITEM_ID), warnings + unknown)


def complementary_lists(model_dir: Path, items: Path, k: int, min_count: int, backfill: bool) -> Lists:
    """The items bought together with each item of ``items`` (pairs seen in at least ``min_count`` baskets), then,
    with ``backfill``, the most bought items."""
    recommender = load_model(model_dir)
    query, unknown = known_items(recommender, read_item_ids(items), items, "complements need purchase history")
    frame = complementary_items(recommender, query, k, min_count, backfill)
    return Lists(with_titles(frame, recommender.catalogue, COMPLEMENTARY_ITEM_ID), unknown)


def trending_lists(model_dir: Path, k: int, window_days: int, min_count: int,
                   items: Path | None = None) -> tuple[Lists, dt.date]:
    """The ``k`` items rising fastest in the last ``window_days`` of the training data (among ``items`` when given),
    and the last day of that data."""
    recommender = load_model(model_dir)
    frame = trending_items(recommender, k, window_days, min_count, read_item_ids(items) if items is not None else None)
    as_of = dt.datetime.fromtimestamp(recommender.counts_end_, dt.UTC).date()
    return Lists(with_titles(frame, recommender.catalogue)), as_of


def known_items(recommender: Recommender, ids: np.ndarray, source: Path, hint: str) -> tuple[np.ndarray, list[str]]:
    """The query item ``ids`` the model knows, and a warning naming the others, which are skipped (none known: a
    DataError, with ``hint``)."""
    known = recommender.items_.index(ids, missing="mask") >= 0
    unknown = ", ".join(map(repr, ids[~known][:5].tolist())) + (", ..." if (~known).sum() > 5 else "")
    if not known.any():
        raise DataError(f"None of the {len(ids):,} item id(s) of {source} is known to the model (e.g. {unknown}); "
                        f"{hint}.")
    skipped = [] if known.all() else [
        f"{source}: {int((~known).sum()):,} item id(s) unknown to the model skipped: {unknown} ({hint})."]
    return ids[known], skipped
