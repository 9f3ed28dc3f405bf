"""Ranking metrics of recommendation lists on Spark, equal to `tailored evaluate` (``evaluate_lists``) on the same
lists and test set.

The per-user metrics are the local engine's own functions (`tailored.eval.metrics`), applied to the lists of a batch
of users inside ``mapInArrow``: each test user's recommendations and test items are gathered into one row by a
``groupBy`` (the only shuffle), so a batch holds whole users and the driver receives one sum per metric and batch.
Catalogue metrics (coverage, Gini) need the exposure of each item: the batches emit item counts, Spark sums them per
item, and the driver receives a histogram (how many catalogue items were shown how often), never one row per user.

Who counts, as locally: every distinct user of ``test``; a test user without recommendations has an empty list (0 for
every per-user metric); a user's relevant items are the distinct test items. Lists are ordered by ``rank`` (ties keep
the frame's order, as the local stable sort does) and cut at the largest cut-off. The catalogue is the set of
training items (``train``), or ``catalogue_size`` items when every recommended item is a training item (lists made
by `recommend_all` from the trained factors).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from tailored.data.columns import ITEM_ID, RANK, USER_ID
from tailored.errors import ConfigError, DataError
from tailored.eval.evaluator import parse_metrics
from tailored.eval.metrics import Metric, RankedLists

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

DEFAULT_METRICS = ("precision@10", "recall@10", "ndcg@10", "map@10", "hr@10", "coverage@10", "gini@10")
PER_USER = ("precision", "recall", "hr", "ndcg", "mrr", "map")
CATALOGUE = ("coverage", "gini")
_ORDER, _RAW = "_order", "_raw_rank"
_LISTS, _TRUTH = "_lists", "_truth"
_USERS, _CATALOGUE, _EXPOSURE = "users", "catalogue", "exposure@"
_REPEATED, _NOT_A_NUMBER = "!repeated", "!not a number"
_OUTPUT = "metric string, item_id string, value double, users long"
"""Batch output: a per-user metric's sum over the batch's test users (item_id null, users = how many), an item's
exposure in the top-k lists (``metric`` = ``exposure@k``, value = times shown), or a problem (``metric`` starting
with "!", item_id = an example, value = how many)."""


def evaluate(
    recommendations: DataFrame,
    test: DataFrame,
    metrics: Sequence[str] = DEFAULT_METRICS,
    catalogue_size: int | None = None,
    *,
    train: DataFrame | None = None,
) -> dict[str, float]:
    """Metric name -> value of ``recommendations`` (``user_id, item_id, rank``; rank 1 best) against ``test``
    (``user_id, item_id``). Coverage and Gini need the catalogue: ``train`` (its distinct items, as `tailored evaluate
    --train`) or ``catalogue_size`` (the number of training items, when every recommended item is one of them)."""
    ranking = _parse(metrics)
    _require_columns("recommendations", recommendations, (USER_ID, ITEM_ID, RANK))
    _require_columns("test", test, (USER_ID, ITEM_ID))
    if train is not None:
        _require_columns("train", train, (ITEM_ID,))
    catalogue_ks = sorted({m.k for m in ranking if not m.per_user})
    if catalogue_ks and (train is None) == (catalogue_size is None):
        raise DataError(f"Metrics {[m.name for m in ranking if not m.per_user]} need the catalogue: pass exactly one "
                        "of train= (the training interactions) or catalogue_size= (the number of training items).")
    if catalogue_size is not None and catalogue_size < 1:
        raise ConfigError(f"catalogue_size must be 1 or more, got {catalogue_size}.")
    from pyspark.sql import functions as F

    lists = recommendations.select(
        F.col(USER_ID).cast("string").alias(USER_ID), F.col(ITEM_ID).cast("string").alias(ITEM_ID),
        F.col(RANK).try_cast("double").alias(RANK), F.monotonically_increasing_id().alias(_ORDER),
        F.when(F.col(RANK).try_cast("double").isNull(), F.col(RANK).cast("string")).alias(_RAW))
    truth = test.select(F.col(USER_ID).cast("string").alias(USER_ID), F.col(ITEM_ID).cast("string").alias(ITEM_ID))
    per_user = [m for m in ranking if m.per_user]
    out = _grouped(lists, truth).mapInArrow(
        partial(_batch_metrics, per_user, catalogue_ks, max(m.k for m in ranking)), _OUTPUT)
    catalogue = None if train is None else train.select(F.col(ITEM_ID).cast("string").alias(ITEM_ID))
    rows = _summary(out, catalogue)
    _raise_problems(rows)
    if not any(row[0] == _USERS for row in rows):
        raise DataError("The test frame has no rows; nothing to evaluate.")
    n_catalogue = catalogue_size or sum(row[4] for row in rows if row[0] == _CATALOGUE)
    return {m.name: _value(m, rows, n_catalogue) for m in ranking}


def _parse(metrics: Sequence[str]) -> list[Metric]:
    ranking, rating = parse_metrics(metrics)
    unsupported = [m.name for m in ranking if m.name.split("@")[0] not in PER_USER + CATALOGUE]
    if rating or unsupported or not ranking:
        asked = [m.name for m in rating] + unsupported
        raise ConfigError(f"Spark evaluation computes {', '.join(PER_USER + CATALOGUE)} at any cut-off (e.g. ndcg@10); "
                          f"{asked or 'nothing'} asked: compute the others locally with `tailored evaluate`.")
    return ranking


def _require_columns(name: str, frame: DataFrame, needed: tuple[str, ...]) -> None:
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        raise DataError(f"The {name} frame lacks column(s) {missing}; its columns are {frame.columns}.")


def _grouped(lists: DataFrame, truth: DataFrame) -> DataFrame:
    """One row per user (the only shuffle): its recommendations (rank, order, item, raw rank when not a number) and
    its distinct test items."""
    from pyspark.sql import functions as F

    entries = lists.select(USER_ID, F.struct(RANK, _ORDER, ITEM_ID, _RAW).alias(_LISTS),
                           F.lit(None).cast("string").alias(_TRUTH))
    empty = F.lit(None).cast(entries.schema[_LISTS].dataType).alias(_LISTS)
    rows = entries.unionByName(truth.select(USER_ID, empty, F.col(ITEM_ID).alias(_TRUTH)))
    return rows.groupBy(USER_ID).agg(F.collect_list(_LISTS).alias(_LISTS), F.collect_set(_TRUTH).alias(_TRUTH))


def _batch_metrics(per_user: list[Metric], catalogue_ks: list[int], k: int,
                   batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """For each batch of users: problems in the lists (an example of each), the number of test users, the sum of
    each per-user metric over them (the local functions on the batch's `RankedLists`) and each item's exposure in
    their top-k lists for each catalogue cut-off."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for batch in batches:
        entries, truth = batch.column(_LISTS), batch.column(_TRUTH)
        owner, flat = pc.list_parent_indices(entries).to_numpy(), pc.list_flatten(entries)
        truth_owner, truth_items = pc.list_parent_indices(truth).to_numpy(), pc.list_flatten(truth)
        codes, ids = _codes(pa.concat_arrays([flat.field(ITEM_ID), truth_items]))
        item_codes, truth_codes = codes[: len(flat)], codes[len(flat):]
        ranks = flat.field(RANK).to_numpy(zero_copy_only=False)
        order = np.lexsort((flat.field(_ORDER).to_numpy(), ranks, owner))
        owner, item_codes = owner[order], item_codes[order]
        rows: list[tuple[str, str | None, float, int]] = _problems(batch.column(USER_ID), owner, item_codes, ids,
                                                                  flat.field(_RAW))
        tested = np.bincount(truth_owner, minlength=batch.num_rows) > 0  # users with a test item
        row_of = np.cumsum(tested) - 1
        kept = tested[owner]
        owner, item_codes = row_of[owner[kept]], item_codes[kept]
        n_users = int(tested.sum())
        if n_users:
            starts = np.searchsorted(owner, np.arange(n_users))
            position = np.arange(len(owner)) - starts[owner]
            top = position < k
            items = np.full((n_users, k), -1, np.int64)
            items[owner[top], position[top]] = item_codes[top]
            relevant = sp.csr_matrix((np.ones(len(truth_codes)), (row_of[truth_owner], truth_codes)),
                                     shape=(n_users, len(ids)))
            lists = RankedLists(items, relevant, np.diff(relevant.indptr), np.zeros(len(ids)), 0)
            rows.append((_USERS, None, float(n_users), n_users))
            rows += [(metric.name, None, float(np.sum(metric(lists))), n_users) for metric in per_user]
            for cut in catalogue_ks:
                counts = np.bincount(items[:, :cut][items[:, :cut] >= 0], minlength=len(ids))
                shown = np.flatnonzero(counts)
                rows += zip([f"{_EXPOSURE}{cut}"] * len(shown), ids.take(pa.array(shown)).to_pylist(),
                            counts[shown].astype(np.float64).tolist(), [0] * len(shown), strict=True)
        if rows:
            names, items_shown, values, users = zip(*rows, strict=True)
            yield pa.RecordBatch.from_arrays(
                [pa.array(names, pa.string()), pa.array(items_shown, pa.string()), pa.array(values, pa.float64()),
                 pa.array(users, pa.int64())], names=["metric", ITEM_ID, "value", "users"])


def _problems(users: pa.Array, owner: np.ndarray, item_codes: np.ndarray, ids: pa.Array,
              raw_ranks: pa.Array) -> list[tuple[str, str | None, float, int]]:
    """Rows naming what `evaluate_lists` refuses: an item repeated in a user's list, a rank that is not a number
    (how many, and one example each)."""
    rows = []
    keys = np.sort(owner * max(len(ids), 1) + item_codes)
    repeated = keys[1:][keys[1:] == keys[:-1]]
    if len(repeated):
        user, item = divmod(int(repeated[0]), max(len(ids), 1))
        example = f"{{'user_id': {users[user].as_py()!r}, 'item_id': {ids[item].as_py()!r}}}"
        rows.append((_REPEATED, example, float(len(repeated)), 0))
    bad = np.flatnonzero(raw_ranks.is_valid().to_numpy(zero_copy_only=False))
    if len(bad):
        rows.append((_NOT_A_NUMBER, repr(raw_ranks[int(bad[0])].as_py()), float(len(bad)), 0))
    return rows


def _codes(items: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Dense integer codes of item ids within a batch, and the ids by code."""
    encoded = items.dictionary_encode()
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary


Row = tuple[str, bool | None, float | None, float, int, str | None]


def _summary(out: DataFrame, catalogue: DataFrame | None) -> list[Row]:
    """The one collect: (metric, in the catalogue, exposure, summed value, users or items, example) rows: the test
    users and each per-user metric's sum over them; per catalogue cut-off, how many items were shown exactly
    ``exposure`` times (catalogue items apart); the size of the catalogue; each problem's count and an example."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if catalogue is not None:
        out = out.unionByName(catalogue.select(F.lit(_CATALOGUE).alias("metric"), ITEM_ID,
                                               F.lit(0.0).alias("value"), F.lit(0).cast("long").alias("users")))
    item = F.col(ITEM_ID)
    problem = F.col("metric").startswith("!")
    is_item = item.isNotNull() & ~problem
    per_item = out.groupBy("metric", F.when(is_item, item).alias(ITEM_ID), problem.alias("problem")).agg(
        F.sum("value").alias("value"), F.sum("users").alias("users"), F.min(F.when(problem, item)).alias("example"))
    if catalogue is None:
        per_item = per_item.withColumn("in_catalogue", item.isNotNull())
    else:  # a window, not a self-join: the batches run once
        listed = F.max(item.isNotNull() & (F.col("metric") == _CATALOGUE)).over(Window.partitionBy(ITEM_ID))
        per_item = per_item.withColumn("in_catalogue", listed)
    exposure = F.when(item.isNotNull(), F.col("value"))
    rows = (per_item.groupBy("metric", "in_catalogue", exposure.alias("exposure"))
            .agg(F.sum("value").alias("value"),
                 F.sum(F.when(item.isNull() & ~F.col("problem"), F.col("users")).otherwise(F.lit(1))).alias("count"),
                 F.min("example").alias("example")).collect())
    return [(row["metric"], row["in_catalogue"], row["exposure"], row["value"], int(row["count"]), row["example"])
            for row in rows]


def _raise_problems(rows: list[Row]) -> None:
    found = {row[0]: row for row in rows if row[0].startswith("!")}
    if _NOT_A_NUMBER in found:
        _, _, _, count, _, example = found[_NOT_A_NUMBER]
        raise DataError(f"Column '{RANK}' of the recommendations has {int(count)} values that are not numbers, "
                        f"e.g. {example}.")
    if _REPEATED in found:
        _, _, _, count, _, example = found[_REPEATED]
        raise DataError(f"{int(count)} recommendations repeat an item for the same user, e.g. {example}; "
                        "de-duplicate the lists.")


def _value(metric: Metric, rows: list[Row], n_catalogue: int) -> float:
    if metric.per_user:
        [(_, _, _, total, users, _)] = [row for row in rows if row[0] == metric.name]
        return total / users
    histogram = [(int(exposure), count, inside) for name, inside, exposure, _, count, _ in rows
                 if name == f"exposure@{metric.k}"]
    if metric.name.startswith("coverage"):
        return sum(count for _, count, _ in histogram) / max(n_catalogue, 1)
    return _gini(sorted((exposure, count) for exposure, count, inside in histogram if inside), n_catalogue)


def _gini(histogram: list[tuple[int, int]], n: int) -> float:
    """Gini index of the exposure of ``n`` catalogue items, from (exposure, how many items) pairs of the shown ones
    (ascending): the unshown items take the first ranks with 0; the items sharing an exposure take a run of ranks
    a..b, whose weights (2r - n - 1) sum to (b - a + 1)(a + b - n - 1). Integer sums, so exact."""
    shown = sum(count for _, count in histogram)
    if shown > n:
        raise DataError(f"The lists show {shown} distinct catalogue items but catalogue_size is {n}: pass train= "
                        "(the training interactions) so that items outside the catalogue are told apart.")
    total = sum(exposure * count for exposure, count in histogram)
    if n == 0 or total == 0:
        return 0.0
    weighted, first = 0, n - shown + 1
    for exposure, count in histogram:
        last = first + count - 1
        weighted += exposure * count * (first + last - n - 1)
        first = last + 1
    return weighted / (n * total)
