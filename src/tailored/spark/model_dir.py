"""A Spark-trained model written as the NORMAL model directory (`tailored.registry.model_dir`'s manifest + one
``arrays.npz``), so that `load_model`, `tailored recommend --model-dir`, `tailored serve` and the registry use it
unchanged.

What `load_model` rebuilds is a Recommender whose every state array `save_model` writes (``RECOMMENDER_STATE``); here
each is computed from the training interactions in Spark, as `Recommender.fit` computes it from a Dataset:

* users and items numbered ``0..n-1`` in sorted id order (the IdMaps);
* ``seen_``: users x items CSR of the training pairs (1 each): what ``exclude_seen`` leaves out of a user's list;
  ``last_seen_`` (each pair's latest time, days) with it when there are timestamps;
* ``warm_users_``, ``warm_items_``, ``candidate_items_``: every user and item here has interactions (no attribute
  tables: ``user_vocabulary_`` is empty, ``item_encoder_`` and ``item_features_`` None);
* ``first_seen_`` (each item's first time), ``daily_counts_`` and ``counts_end_`` (`tailored.spark.popularity`)
  with timestamps; ``co_purchase_`` and ``basket_count_`` (baskets holding both items, by a self-join of the
  baskets' items: the ``basket_id`` column, else each user's sessions) for complementary items;
* the scorer's state -- ALS (`train_als`): ``user_factors_``, ``item_factors_``; item-knn (`train_item_knn`):
  ``similarity_`` (neighbour x item) and ``user_items_`` (the weighted pairs); popularity (`train_popularity`):
  ``item_scores_`` -- and the popularity fallback's ``item_scores_`` (`item_popularity`); no stages.

The driver never holds everything at once: per-user rows (ids, factors, pair counts), the pairs, item-knn's
neighbours and the co-purchase counts, each sorted by index, come to the driver by ``toLocalIterator`` in chunks of
``chunk_rows`` that are appended to ``.npy`` files (headers written first: the counts are known), zipped into
``arrays.npz`` at the end; the whole folder is written in a staging sibling then renamed (`staged_directory`).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from tailored import __version__
from tailored.config import json_safe
from tailored.data.activity import DAY, TREND_DAYS
from tailored.data.baskets import SESSION_GAP
from tailored.data.columns import BASKET_ID, ITEM_ID, SCORE, TIMESTAMP, USER_ID, VALUE
from tailored.data.features import attribute_vocabulary
from tailored.data.io import staged_directory
from tailored.errors import DataError
from tailored.pipeline.cold_start import demographic_categories
from tailored.pipeline.settings import RecommenderSettings, settings_of
from tailored.registry.model_dir import ARRAYS, FORMAT, FORMAT_VERSION, LIBRARIES, MANIFEST
from tailored.spark.als import FACTORS, ITEM_INDEX, USER_INDEX, SparkFactors, indexed, weighted_interactions
from tailored.spark.neighbours import NEIGHBOUR_ID, SIMILARITY, SparkNeighbours
from tailored.spark.popularity import COUNT, DAY_COLUMN, SparkPopularity, daily_counts, item_popularity

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

CHUNK_ROWS = 65_536
SparkModel = SparkFactors | SparkNeighbours | SparkPopularity


def _functions() -> Any:
    from pyspark.sql import functions

    return functions


class NpyWriter:
    """An ``.npy`` file of known ``shape`` and ``dtype`` filled by appending blocks of rows (the header first)."""

    def __init__(self, path: Path, dtype: np.dtype | str, shape: tuple[int, ...]) -> None:
        self.path, self.dtype, self.shape, self.rows = path, np.dtype(dtype), shape, 0
        self._file: IO[bytes] = open(path, "wb")  # noqa: SIM115 (closed by close)
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_2_0(self._file, header)

    def append(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, self.dtype)
        if block.shape[1:] != self.shape[1:]:
            raise DataError(f"{self.path.name}: a block of shape {block.shape} does not fit rows of {self.shape[1:]}.")
        self.rows += len(block)
        self._file.write(block.tobytes())

    def close(self) -> None:
        self._file.close()
        if self.rows != self.shape[0]:
            raise DataError(f"{self.path.name}: {self.rows:,} rows were written where {self.shape[0]:,} were counted; "
                            "the interactions changed while the model was written (cache or save them first).")


def _chunks(frame: DataFrame, chunk_rows: int) -> Iterator[list[Any]]:
    """The rows of ``frame`` (sorted by the caller) in lists of up to ``chunk_rows``, by ``toLocalIterator``."""
    chunk: list[Any] = []
    for row in frame.toLocalIterator():
        chunk.append(row)
        if len(chunk) == chunk_rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _training_pairs(interactions: DataFrame) -> DataFrame:
    """``user_id, item_id[, timestamp]`` strings, one row per pair (its latest time)."""
    F = _functions()
    for column in (USER_ID, ITEM_ID):
        if column not in interactions.columns:
            raise DataError(f"The interactions DataFrame lacks column {column!r}; its columns are "
                            f"{interactions.columns}.")
    timed = TIMESTAMP in interactions.columns
    rows = interactions.select(F.col(USER_ID).cast("string").alias(USER_ID),
                               F.col(ITEM_ID).cast("string").alias(ITEM_ID),
                               *([F.col(TIMESTAMP).cast("double").alias(TIMESTAMP)] if timed else []))
    return rows.groupBy(USER_ID, ITEM_ID).agg(F.max(TIMESTAMP).alias(TIMESTAMP)) if timed else rows.distinct()


def write_model_dir(factors_or_model: SparkModel, interactions_df: DataFrame, directory: str | Path,
                    metadata: dict[str, Any] | None = None, chunk_rows: int = CHUNK_ROWS) -> Path:
    """Write ``factors_or_model`` -- `train_als`'s factors, `train_item_knn`'s neighbours or `train_popularity`'s
    scores -- trained on ``interactions_df`` (the training interactions: ``user_id, item_id[, value, timestamp]``) as
    a model directory that `load_model` reads; ``metadata`` joins the manifest. Users or items of the interactions
    that the model lacks (none after the train functions) get zero factors or scores."""
    if not isinstance(factors_or_model, SparkFactors | SparkNeighbours | SparkPopularity):
        raise DataError("write_model_dir writes SparkFactors (train_als), SparkNeighbours (train_item_knn) or "
                        f"SparkPopularity (train_popularity), got {type(factors_or_model).__name__}.")
    F = _functions()
    model, directory = factors_or_model, Path(directory)
    rows = interactions_df.cache()
    pairs = _training_pairs(rows).cache()
    users, items = indexed(pairs, USER_ID, USER_INDEX).cache(), indexed(pairs, ITEM_ID, ITEM_INDEX).cache()
    timed, knn = TIMESTAMP in rows.columns, isinstance(model, SparkNeighbours)
    n_factors = int(model.params["scorer"]["factors"]) if isinstance(model, SparkFactors) else 0
    sizes = pairs.agg(F.count("*"), F.max(F.length(USER_ID)), F.countDistinct(USER_ID),
                      F.countDistinct(ITEM_ID)).first()
    n_pairs, n_users, n_items = int(sizes[0]), int(sizes[2]), int(sizes[3])
    if n_pairs == 0:
        raise DataError("write_model_dir needs training interactions; the DataFrame has no rows.")
    zero = F.array_repeat(F.lit(0.0).cast("float"), n_factors)
    per_user = users.join(pairs.groupBy(USER_ID).agg(F.count("*").alias(COUNT)), USER_ID)
    if isinstance(model, SparkFactors):
        per_user = per_user.join(model.users, USER_ID, "left")
    per_user = per_user.select(USER_INDEX, USER_ID, COUNT, (F.coalesce(F.col(FACTORS), zero) if n_factors else zero)
                               .alias(FACTORS)).orderBy(USER_INDEX)
    seen = pairs.join(users, USER_ID).join(items, ITEM_ID)
    if knn:  # the weighted values of the pairs: the scorer's user_items_
        weighted, _ = weighted_interactions(rows, model.params["weighting"], model.params["confidence_alpha"],
                                            model.params["decay_half_life_days"])
        seen = seen.join(weighted, [USER_ID, ITEM_ID], "left")
    seen = seen.select(USER_INDEX, ITEM_INDEX, *([TIMESTAMP] if timed else []), *([VALUE] if knn else []))
    seen = seen.orderBy(USER_INDEX, ITEM_INDEX)
    scalars: dict[str, Any] = {"item_encoder_": None, "item_features_": None}
    with staged_directory(directory) as staging:
        parts = staging / "parts"
        parts.mkdir()
        writers = {
            "recommender.users": NpyWriter(parts / "users.npy", f"<U{max(int(sizes[1]), 1)}", (n_users,)),
            "recommender.seen_.csr_indptr": NpyWriter(parts / "indptr.npy", np.int64, (n_users + 1,)),
        }
        if n_factors:
            writers["scorer.user_factors_"] = NpyWriter(parts / "user_factors.npy", np.float32, (n_users, n_factors))
        writers["recommender.seen_.csr_indptr"].append(np.zeros(1, np.int64))
        done = 0
        for chunk in _chunks(per_user, chunk_rows):
            writers["recommender.users"].append(np.array([row[USER_ID] for row in chunk]))
            if n_factors:
                writers["scorer.user_factors_"].append(np.array([row[FACTORS] for row in chunk], np.float32))
            counts = np.cumsum(np.fromiter((row[COUNT] for row in chunk), np.int64, len(chunk))) + done
            writers["recommender.seen_.csr_indptr"].append(counts)
            done = int(counts[-1])
        columns = {"recommender.seen_.csr_indices": (ITEM_INDEX, np.int32, 1.0)}
        if timed:
            columns["recommender.last_seen_.csr_data"] = (TIMESTAMP, np.float64, float(DAY))
        if knn:
            columns["scorer.user_items_.csr_data"] = (VALUE, np.float32, 1.0)
        _stream_columns(seen, columns, n_pairs, parts, writers, chunk_rows)
        similarity = _similarity(model, items, n_items, parts, writers, chunk_rows) if knn else {}
        co_purchase, scalars["basket_count_"] = _co_purchase(rows, items, n_items, parts, writers, chunk_rows)
        if not co_purchase:
            scalars["co_purchase_"] = None
        for writer in writers.values():
            writer.close()
        arrays = _item_arrays(model, rows, items, n_items, n_factors, timed, chunk_rows) | similarity | co_purchase
        shape = np.asarray([n_users, n_items], np.int64)
        arrays |= {"recommender.seen_.csr_data": np.ones(n_pairs, np.float32), "recommender.seen_.csr_shape": shape,
                   "recommender.warm_users_": np.ones(n_users, bool)}
        arrays |= {f"recommender.user_vocabulary_.dict_{name}": array
                   for name, array in attribute_vocabulary(None, demographic_categories()).items()}
        shared = ["recommender.last_seen_"] * timed + ["scorer.user_items_"] * knn  # seen_'s pairs, other values
        arrays |= {f"{name}.csr_shape": shape for name in shared}
        if timed:
            counts_array, end = _daily_counts(rows, items, n_items)
            arrays |= counts_array
            scalars["counts_end_"] = end
        else:
            scalars |= {"first_seen_": None, "last_seen_": None, "daily_counts_": None, "counts_end_": None}
        with zipfile.ZipFile(staging / ARRAYS, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, writer in writers.items():
                archive.write(writer.path, f"{name}.npy")
            for name in shared:
                for field in ("indptr", "indices"):
                    archive.write(writers[f"recommender.seen_.csr_{field}"].path, f"{name}.csr_{field}.npy")
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
        shutil.rmtree(parts)
        manifest = _manifest(model, scalars, metadata)
        manifest["files"] = {ARRAYS: (staging / ARRAYS).stat().st_size}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
    for frame in (rows, pairs, users, items):
        frame.unpersist()
    return directory


def _stream_columns(frame: DataFrame, columns: dict[str, tuple[str, Any, float]], n_rows: int, parts: Path,
                    writers: dict[str, NpyWriter], chunk_rows: int) -> None:
    """Stream ``frame``'s columns into new ``.npy`` writers: array name -> (column, dtype, divisor)."""
    for name, (_, dtype, _) in columns.items():
        writers[name] = NpyWriter(parts / f"{name}.npy", dtype, (n_rows,))
    for chunk in _chunks(frame, chunk_rows):
        for name, (column, _, divisor) in columns.items():
            values = np.array([row[column] for row in chunk], np.float64)
            writers[name].append(values / divisor if divisor != 1.0 else values)


def _similarity(model: SparkNeighbours, items: DataFrame, n_items: int, parts: Path, writers: dict[str, NpyWriter],
                chunk_rows: int) -> dict[str, np.ndarray]:
    """The scorer's ``similarity_`` (neighbour x item, CSR), streamed by neighbour."""
    F = _functions()
    entries = (model.neighbours.join(items.select(F.col(ITEM_ID).alias(NEIGHBOUR_ID), F.col(ITEM_INDEX).alias("row")),
                                     NEIGHBOUR_ID).join(items, ITEM_ID)
               .select("row", ITEM_INDEX, F.col(SIMILARITY).alias(VALUE)))
    return _stream_csr(entries, "scorer.similarity_", n_items, parts, writers, chunk_rows)


def _co_purchase(rows: DataFrame, items: DataFrame, n_items: int, parts: Path, writers: dict[str, NpyWriter],
                 chunk_rows: int) -> tuple[dict[str, np.ndarray], int]:
    """The Recommender's ``co_purchase_`` (items x items: baskets holding both; the diagonal, baskets holding the
    item) and ``basket_count_``, as `data.baskets.co_purchase_counts` makes them: baskets from the ``basket_id``
    column, else each user's sessions (a new one after `SESSION_GAP` seconds without a row); ({}, 0) with neither."""
    F = _functions()
    from pyspark.sql import Window

    user = F.col(USER_ID).cast("string")
    if BASKET_ID in rows.columns:
        basket = F.concat_ws("\x1f", user, F.col(BASKET_ID).cast("string"))
    elif TIMESTAMP in rows.columns:
        by_time = Window.partitionBy(USER_ID).orderBy(TIMESTAMP)
        gap = F.col(TIMESTAMP) - F.lag(TIMESTAMP).over(by_time)
        rows = rows.withColumn("starts", F.when(gap.isNull() | (gap > SESSION_GAP), 1).otherwise(0))
        basket = F.concat_ws("\x1f", user, F.sum("starts").over(by_time.rowsBetween(Window.unboundedPreceding, 0))
                             .cast("string"))
    else:
        return {}, 0
    holding = (rows.select(basket.alias("basket"), F.col(ITEM_ID).cast("string").alias(ITEM_ID)).distinct()
               .join(items, ITEM_ID).select("basket", ITEM_INDEX).cache())
    baskets = holding.select("basket").distinct().count()
    pairs = (holding.withColumnRenamed(ITEM_INDEX, "row").join(holding, "basket")
             .groupBy("row", ITEM_INDEX).agg(F.count("*").cast("double").alias(VALUE)))
    arrays = _stream_csr(pairs, "recommender.co_purchase_", n_items, parts, writers, chunk_rows)
    holding.unpersist()
    return arrays, baskets


def _stream_csr(entries: DataFrame, name: str, n_items: int, parts: Path, writers: dict[str, NpyWriter],
                chunk_rows: int) -> dict[str, np.ndarray]:
    """An items x items CSR matrix from ``entries`` (``row, item_index, value``): indices and data streamed row by
    row into writers, the row pointers (items + 1) and the shape returned."""
    entries = entries.orderBy("row", ITEM_INDEX).cache()
    n_entries, per_row = entries.count(), np.zeros(n_items + 1, np.int64)
    _stream_columns(entries, {f"{name}.csr_indices": (ITEM_INDEX, np.int32, 1.0),
                              f"{name}.csr_data": (VALUE, np.float32, 1.0)}, n_entries, parts, writers, chunk_rows)
    for chunk in _chunks(entries.groupBy("row").count(), chunk_rows):
        per_row[np.array([row["row"] for row in chunk]) + 1] = [row["count"] for row in chunk]
    entries.unpersist()
    return {f"{name}.csr_indptr": np.cumsum(per_row), f"{name}.csr_shape": np.asarray([n_items, n_items], np.int64)}


def _item_arrays(model: SparkModel, rows: DataFrame, items: DataFrame, n_items: int, n_factors: int, timed: bool,
                 chunk_rows: int) -> dict[str, np.ndarray]:
    """The items' ids, factors (ALS), popularity (the fallback's, and the scorer's for popularity) and first times,
    in index order (items are the smaller side)."""
    F = _functions()
    zero = F.array_repeat(F.lit(0.0).cast("float"), n_factors)
    fallback = item_popularity(rows, model.params.get("weighting", "binary"))
    per_item = items.join(fallback, ITEM_ID, "left")
    if isinstance(model, SparkPopularity):
        per_item = per_item.join(model.items.withColumnRenamed(SCORE, "own"), ITEM_ID, "left")
    else:
        per_item = per_item.withColumn("own", F.lit(0.0))
    if isinstance(model, SparkFactors):
        per_item = per_item.join(model.items, ITEM_ID, "left")
    if timed:  # each item's first row (not its pairs' latest)
        first = rows.groupBy(F.col(ITEM_ID).cast("string").alias(ITEM_ID)).agg(
            F.min(F.col(TIMESTAMP).cast("double")).alias("first"))
        per_item = per_item.join(first, ITEM_ID, "left")
    else:
        per_item = per_item.withColumn("first", F.lit(float("nan")))
    factors = F.coalesce(F.col(FACTORS), zero) if isinstance(model, SparkFactors) else zero
    per_item = per_item.select(ITEM_INDEX, ITEM_ID, factors.alias(FACTORS), SCORE, "own", "first").orderBy(ITEM_INDEX)
    ids, vectors, scores, own, first = [], [], [], [], []
    for chunk in _chunks(per_item, chunk_rows):
        ids.append(np.array([row[ITEM_ID] for row in chunk]))
        vectors.append(np.array([row[FACTORS] for row in chunk], np.float32).reshape(len(chunk), n_factors))
        scores.append(np.array([row[SCORE] or 0.0 for row in chunk], np.float32))
        own.append(np.array([row["own"] or 0.0 for row in chunk], np.float32))
        first.append(np.array([row["first"] for row in chunk], np.float64))
    arrays = {"recommender.items": np.concatenate(ids).astype(str), "fallback.item_scores_": np.concatenate(scores),
              "recommender.warm_items_": np.ones(n_items, bool), "recommender.candidate_items_": np.ones(n_items, bool)}
    if isinstance(model, SparkFactors):
        arrays["scorer.item_factors_"] = np.concatenate(vectors)
    if isinstance(model, SparkPopularity):
        arrays["scorer.item_scores_"] = np.concatenate(own)
    if timed:
        arrays["recommender.first_seen_"] = np.concatenate(first)
    return arrays


def _daily_counts(rows: DataFrame, items: DataFrame, n_items: int) -> tuple[dict[str, np.ndarray], float]:
    """``daily_counts_`` (items x ``TREND_DAYS``, CSR) as CSR arrays and ``counts_end_``."""
    import scipy.sparse as sp

    counts, end = daily_counts(rows)
    table = counts.join(items, ITEM_ID).select(ITEM_INDEX, DAY_COLUMN, COUNT).toPandas()
    matrix = sp.csr_matrix((table[COUNT].to_numpy(np.float32), (table[ITEM_INDEX].to_numpy(), table[DAY_COLUMN])),
                           shape=(n_items, TREND_DAYS))
    matrix.sort_indices()
    return {f"recommender.daily_counts_.csr_{name}": np.asarray(getattr(matrix, name))
            for name in ("data", "indices", "indptr")} | {
        "recommender.daily_counts_.csr_shape": np.asarray(matrix.shape)}, end


def _manifest(model: SparkModel, scalars: dict[str, Any], metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest `save_model` would write for this model (`read_manifest` checks its keys)."""
    params = model.params
    settings = RecommenderSettings(weighting=params.get("weighting", "binary"),
                                   confidence_alpha=float(params.get("confidence_alpha", 1.0)),
                                   decay_half_life_days=params.get("decay_half_life_days"))
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tailored_version": __version__,
        "algorithm": params.get("algorithm", "als"),
        "params": json_safe(params["scorer"]),
        "members": [],
        "recommender": settings_of(settings),
        "fallback": {"algorithm": "popularity", "params": {"half_life_days": None}},
        "item_model": None,
        "stages": [],
        "scalars": {"recommender": scalars, "scorer": {}, "fallback": {}},
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "libraries": {name: _version(name) for name in (*LIBRARIES, "pyspark")},
        "trained_on": {"engine": "spark", **json_safe({k: v for k, v in params.items() if k != "scorer"})},
        **(metadata or {}),
    }



def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None

