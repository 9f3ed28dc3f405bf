"""Concentration of accepted interactions: Gini index, top shares, per-user and per-item counts, and the share of
each user or item group (a segment, a category) in the population and in the interactions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tailored.data.columns import ITEM_ID, USER_ID
from tailored.data.idmap import id_strings


@dataclass(frozen=True)
class BiasSummary:
    """Concentration of the accepted interactions; users/items known only from attribute tables count as zero."""

    interactions: int
    users: int
    items: int
    item_gini: float
    top1_item_share: float
    top1_user_share: float
    top10_user_share: float
    median_per_user: float
    mean_per_user: float
    median_per_item: float
    mean_per_item: float
    user_groups: pd.DataFrame | None = None
    item_groups: pd.DataFrame | None = None

    def to_dict(self) -> dict[str, Any]:
        scalars = {name: value for name, value in vars(self).items() if not isinstance(value, pd.DataFrame | None)}
        groups = {
            name: table.to_dict(orient="records")
            for name, table in (("user_groups", self.user_groups), ("item_groups", self.item_groups))
            if table is not None
        }
        return scalars | groups


def bias_summary(
    clean: pd.DataFrame, users: pd.DataFrame | None, items: pd.DataFrame | None, user_group: str, item_group: str
) -> BiasSummary:
    user_counts = _counts(clean[USER_ID], users, USER_ID)
    item_counts = _counts(clean[ITEM_ID], items, ITEM_ID)
    return BiasSummary(
        interactions=len(clean),
        users=len(user_counts),
        items=len(item_counts),
        item_gini=gini(item_counts),
        top1_item_share=top_share(item_counts, 0.01),
        top1_user_share=top_share(user_counts, 0.01),
        top10_user_share=top_share(user_counts, 0.10),
        median_per_user=float(np.median(user_counts)) if len(user_counts) else 0.0,
        mean_per_user=float(np.mean(user_counts)) if len(user_counts) else 0.0,
        median_per_item=float(np.median(item_counts)) if len(item_counts) else 0.0,
        mean_per_item=float(np.mean(item_counts)) if len(item_counts) else 0.0,
        user_groups=_group_shares(clean[USER_ID], users, USER_ID, user_group),
        item_groups=_group_shares(clean[ITEM_ID], items, ITEM_ID, item_group),
    )


def _counts(ids: pd.Series, table: pd.DataFrame | None, column: str) -> np.ndarray:
    counts = ids.value_counts()
    if table is not None and column in table.columns:
        listed = pd.Index(id_strings(table[column]).dropna().unique())
        counts = counts.reindex(counts.index.union(listed), fill_value=0)
    return counts.to_numpy(np.int64)


def gini(counts: np.ndarray) -> float:
    """Gini index of non-negative counts: 0 when all are equal, (n-1)/n when one holds everything."""
    values = np.sort(np.asarray(counts, np.float64))
    total = values.sum()
    if len(values) == 0 or total == 0:
        return 0.0
    ranks = np.arange(1, len(values) + 1)
    return float(2.0 * (ranks * values).sum() / (len(values) * total) - (len(values) + 1) / len(values))


def top_share(counts: np.ndarray, fraction: float) -> float:
    """Share of the total held by the top ``fraction`` of entries (at least one entry)."""
    values = np.sort(np.asarray(counts, np.float64))[::-1]
    total = values.sum()
    if total == 0:
        return 0.0
    return float(values[: max(1, math.ceil(fraction * len(values)))].sum() / total)


def _group_shares(ids: pd.Series, table: pd.DataFrame | None, column: str, group: str) -> pd.DataFrame | None:
    """Share of the table's entities and of the interactions in each group value (``(unknown)`` for ids not listed,
    ``(missing)`` for a blank value). A ``|`` list (``Drama|Romance``) puts its entity in each of its groups, so
    the shares then add up to more than 1."""
    if table is None or column not in table.columns or group not in table.columns:
        return None
    listed = table.drop_duplicates(column, keep="last")
    values = listed[group].astype("string").str.strip().replace("", pd.NA).fillna("(missing)")
    groups = pd.Series(values.to_numpy(), index=id_strings(listed[column]).to_numpy())
    if groups.str.contains("|", regex=False).any():
        groups = groups.str.split("|").explode().str.strip()
    per_id = ids.value_counts()
    interactions = pd.Series(per_id.reindex(groups.index, fill_value=0).to_numpy(), index=groups.to_numpy())
    interactions = interactions.groupby(level=0).sum()
    unknown = per_id[~per_id.index.isin(groups.index)].sum()
    if unknown:
        interactions["(unknown)"] = unknown
    shares = pd.concat(
        [(groups.value_counts() / len(listed)).rename("population_share"),
         (interactions / max(len(ids), 1)).rename("interaction_share")], axis=1
    ).fillna(0.0)
    shares = shares.sort_values("interaction_share", ascending=False, kind="stable")
    return shares.rename_axis("group").reset_index().astype({"group": "str"})
