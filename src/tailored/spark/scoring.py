"""Top-k for every user on Spark: the item factors broadcast, the users scored in blocks where they live, the lists
written to files or to a database table for CRM campaigns.

`recommend_all` collects only the item factors (items x factors float32: 20,000 x 64 is 5 MB) and broadcasts them
with the item ids in sorted order (the order of the model directory that `spark.model_dir` writes). Each user's seen
items are gathered into one list per user (a ``groupBy``) and joined to the user's factors; inside ``mapInArrow``
a block of ``block_users`` users becomes one ``float32`` matrix product with the item factors, seen items are set to
``-inf`` and the local engine's `top_k` (argpartition, then a stable sort of the best k) picks the lists: the same
items, scores and tie-breaking as the local engine on the same factors. Nothing about the users reaches the driver.

Memory per Python worker: a block's scores (``block_users x items`` float32) plus `top_k`'s argpartition indices
(int64), about 12 bytes per (user, item) of a block. ``block_users`` (None) is chosen from the catalogue so that a
block stays within `BLOCK_BYTES`: 4,096 users at 10,000 items or fewer, 44 users at 1,000,000 items.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.data.columns import ITEM_ID, RANK, SCORE, USER_ID
from tailored.errors import ConfigError, DataError
from tailored.models.base import top_k
from tailored.pipeline.ranking import Ranking, masked_request
from tailored.query import Context
from tailored.rank.base import Catalogue, Reranker, Stage
from tailored.spark.als import FACTORS

if TYPE_CHECKING:
    import pyarrow as pa
    import sqlalchemy as sa
    from pyspark.sql import DataFrame

_SEEN = "_seen"
BLOCK_BYTES = 512 * 2**20
"""A scoring block's budget per Python worker (scores, indices and mask: `BYTES_PER_PAIR` per user and item)."""
BYTES_PER_PAIR = 12
MAX_BLOCK_USERS = 4096
OUTPUT = f"{USER_ID} string, {ITEM_ID} string, {RANK} int, {SCORE} double"


def recommend_all(users: DataFrame, items: DataFrame, seen: DataFrame | None, k: int = 10,
                  block_users: int | None = None, *, stages: Sequence[Stage | Reranker] = (),
                  item_attributes: pd.DataFrame | None = None, context: Context | None = None) -> DataFrame:
    """Top-``k`` lists ``user_id, item_id, rank, score`` (rank 1 best) of every user of ``users`` (``user_id,
    factors``) over the items of ``items`` (``item_id, factors``), without each user's ``seen`` items (``user_id,
    item_id``; None: nothing excluded). Lazy: the users are read when the result is written.

    ``stages`` (fitted, e.g. a model's ``rules``, ``calendar`` and ``max-share`` stages) run on each block through
    the local engine's own `Ranking`, for ``context`` (a campaign's send date: ``Context(moment=...)``; None: no
    date), over a catalogue of the item ids and ``item_attributes`` (``item_id`` + attribute columns). Stages see
    users unknown to a model (index -1), no interaction times and a run state (tally) per partition, so stages that
    need a user's model index, the catalogue's interactions or a whole run's counts (exposure) are not for Spark."""
    from pyspark.sql import functions as F

    if k < 1 or (block_users is not None and block_users < 1):
        raise ConfigError(f"k and block_users must be 1 or more, got k={k}, block_users={block_users}.")
    _require_columns("users", users, (USER_ID, FACTORS))
    _require_columns("items", items, (ITEM_ID, FACTORS))
    ids, factors = _item_factors(items)
    block_users = block_users or block_size(len(ids))
    ranking = None
    if stages:
        attributes = None
        if item_attributes is not None:
            if ITEM_ID not in item_attributes.columns:
                raise DataError(f"item_attributes has no '{ITEM_ID}' column; its columns are "
                                f"{list(item_attributes.columns)}.")
            attributes = (item_attributes.astype({ITEM_ID: str}).drop_duplicates(ITEM_ID, keep="last")
                          .set_index(ITEM_ID).reindex(pd.Index(ids, name=ITEM_ID)).reset_index(drop=True))
        ranking = (Ranking.of(list(stages)), Catalogue(ids, attributes), context or Context())
    broadcast = users.sparkSession.sparkContext.broadcast((ids, factors, ranking))
    rows = users.select(F.col(USER_ID).cast("string").alias(USER_ID),
                        F.col(FACTORS).cast("array<float>").alias(FACTORS))
    if seen is None:
        rows = rows.withColumn(_SEEN, F.lit(None).cast("array<string>"))
    else:
        _require_columns("seen", seen, (USER_ID, ITEM_ID))
        lists = seen.groupBy(F.col(USER_ID).cast("string").alias(USER_ID)).agg(
            F.collect_list(F.col(ITEM_ID).cast("string")).alias(_SEEN))
        rows = rows.join(lists, USER_ID, "left")
    return rows.mapInArrow(partial(_score_batches, broadcast, k, block_users), OUTPUT)


def block_size(items: int) -> int:
    """Users per scoring block: as many as `BLOCK_BYTES` holds at ``items`` items, between 1 and `MAX_BLOCK_USERS`."""
    return int(np.clip(BLOCK_BYTES // (BYTES_PER_PAIR * max(items, 1)), 1, MAX_BLOCK_USERS))


def _require_columns(name: str, frame: DataFrame, needed: tuple[str, ...]) -> None:
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        raise DataError(f"The {name} frame lacks column(s) {missing}; its columns are {frame.columns}.")


def _item_factors(items: DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Item ids (sorted) and their factors as one float32 matrix, on the driver (the one thing collected)."""
    from pyspark.sql import functions as F

    frame = items.select(F.col(ITEM_ID).cast("string").alias(ITEM_ID),
                         F.col(FACTORS).cast("array<float>").alias(FACTORS)).toPandas()
    frame = frame.sort_values(ITEM_ID, kind="stable", ignore_index=True)
    if frame.empty:
        raise DataError("The items frame has no rows: there is nothing to recommend.")
    repeated = frame[ITEM_ID].duplicated()
    if repeated.any():
        raise DataError(f"The items frame repeats item ids, e.g. {frame.loc[repeated, ITEM_ID].head(3).tolist()}: "
                        "give each item one row of factors.")
    lengths = frame[FACTORS].map(lambda vector: -1 if vector is None else len(vector))
    if lengths.nunique() != 1 or lengths.iloc[0] < 1:
        odd = frame.loc[lengths != lengths.mode().iloc[0], ITEM_ID].head(3).tolist()
        raise DataError(f"Item factors must all have the same length ({int(lengths.mode().iloc[0])}); items {odd} "
                        "have another length or none.")
    return frame[ITEM_ID].to_numpy(dtype=object), np.stack(frame[FACTORS].to_numpy()).astype(np.float32)


def _score_batches(broadcast: object, k: int, block_users: int,
                   batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Lists of each block of users of each Arrow batch (runs in the Python workers)."""
    ids, item_factors, ranking = broadcast.value  # type: ignore[attr-defined]
    position, tally = pd.Index(ids), {}  # the stages' run state: one per partition
    for batch in batches:
        for start in range(0, batch.num_rows, block_users):
            block = batch.slice(start, block_users)
            if block.num_rows:
                yield _block_lists(block, ids, position, item_factors, k, ranking, tally)


def _block_lists(block: pa.RecordBatch, ids: np.ndarray, position: pd.Index, item_factors: np.ndarray, k: int,
                 ranking: tuple[Ranking, Catalogue, Context] | None, tally: dict[str, Any]) -> pa.RecordBatch:
    import pyarrow as pa
    import pyarrow.compute as pc

    users, vectors = block.column(USER_ID), block.column(FACTORS)
    n_users, n_factors = block.num_rows, item_factors.shape[1]
    lengths = pc.fill_null(pc.list_value_length(vectors), -1).to_numpy()
    if (lengths != n_factors).any():
        user = users[int(np.flatnonzero(lengths != n_factors)[0])].as_py()
        raise DataError(f"User {user!r} has {lengths[lengths != n_factors][0]} factors (-1: none) but the items have "
                        f"{n_factors}: score users and items of the same model.")
    matrix = pc.list_flatten(vectors).to_numpy(zero_copy_only=False).astype(np.float32).reshape(n_users, n_factors)
    scores = matrix @ item_factors.T
    seen = block.column(_SEEN)
    seen_items = position.get_indexer(pc.list_flatten(seen).to_numpy(zero_copy_only=False))
    owners = pc.list_parent_indices(seen).to_numpy()
    known = seen_items >= 0  # items outside the model cannot be recommended anyway
    if ranking is None:
        scores[owners[known], seen_items[known]] = -np.inf
        best, values = exact_top_k(scores, k)
    else:
        stages, catalogue, context = ranking
        history = sp.csr_matrix((np.ones(known.sum(), np.float32), (owners[known], seen_items[known])),
                                shape=scores.shape)
        request = masked_request(scores, np.full(n_users, -1), history, None, np.ones(len(ids), bool), True,
                                 context, catalogue, tally)
        best, values, _ = stages.ranked(scores, request, k, explain=False)
    rows, ranks = np.nonzero(best >= 0)
    return pa.RecordBatch.from_arrays(
        [users.take(pa.array(rows)).cast(pa.string()), pa.array(ids[best[rows, ranks]], pa.string()),
         pa.array(ranks + 1, pa.int32()), pa.array(values[rows, ranks].astype(np.float64))],
        names=[USER_ID, ITEM_ID, RANK, SCORE])


def exact_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`top_k`'s lists, exactly, at a third of its cost on wide blocks: ``np.partition`` finds each row's k+1 best
    values (no index array, no negated copy); where they are finite and all distinct, the k items scoring at least
    the k-th value are the list and their order is unique; the other rows (ties near the top, fewer than k+1 finite
    scores) go through `top_k` itself, so ties are broken exactly as the local engine breaks them."""
    n_rows, n_items = scores.shape
    if k >= n_items:
        return top_k(scores, k)
    best = np.partition(scores, n_items - k - 1, axis=1)[:, n_items - k - 1:]
    best.sort(axis=1)
    clear = np.isfinite(best[:, 0]) & (best[:, 1:] > best[:, :-1]).all(axis=1)
    items, values = np.empty((n_rows, k), np.int64), np.empty((n_rows, k), scores.dtype)
    rows = np.flatnonzero(clear)
    if len(rows):
        columns = np.nonzero(scores >= np.where(clear, best[:, 1], np.inf)[:, None])[1].reshape(len(rows), k)
        found_values = scores[rows[:, None], columns]
        order = np.argsort(-found_values, axis=1)
        items[rows] = np.take_along_axis(columns, order, axis=1)
        values[rows] = np.take_along_axis(found_values, order, axis=1)
    rest = np.flatnonzero(~clear)
    if len(rest):
        items[rest], values[rest] = top_k(scores[rest], k)
    return items, values


# -- to a database table -------------------------------------------------------------------------------------------
def write_table(lists: DataFrame, url: str, table: str, mode: str = "replace") -> int:
    """Write ``lists`` (``user_id, item_id, rank, score``) to the table ``table`` of the SQLAlchemy ``url`` (SQLite
    or PostgreSQL, as the event store), for CRM campaigns; returns the number of rows written.

    Each partition inserts its rows in one transaction into a staging table, first deleting what an earlier attempt of
    the same partition left (a retried task writes once); the driver then swaps them into ``table`` in one transaction
    (``replace``: the old rows deleted, ``append``: kept) and drops the staging table. A failure anywhere leaves
    ``table`` as it was. The table is created when absent; an existing one must have the four columns."""
    import sqlalchemy as sa

    from tailored.store.schema import engine_for, write_transaction

    if mode not in ("replace", "append"):
        raise ConfigError(f"mode must be 'replace' or 'append', got {mode!r}.")
    _require_columns("lists", lists, (USER_ID, ITEM_ID, RANK, SCORE))
    engine = engine_for(url)
    metadata = sa.MetaData()
    target = _lists_table(table, metadata)
    staging = _lists_table(f"{table}_staging_{uuid.uuid4().hex[:12]}", metadata, sa.Column("part", sa.Integer))
    inspector = sa.inspect(engine)
    if inspector.has_table(table):
        missing = {USER_ID, ITEM_ID, RANK, SCORE} - {column["name"] for column in inspector.get_columns(table)}
        if missing:
            raise DataError(f"Table {table!r} at {engine.url!r} lacks column(s) {sorted(missing)}: write to another "
                            "table or add them.")
    else:
        target.create(engine)
    staging.create(engine)
    try:
        written = (lists.select(USER_ID, ITEM_ID, RANK, SCORE)
                   .mapInArrow(partial(_insert_partition, url, staging.name), "rows long").groupBy().sum("rows")
                   .collect()[0][0]) or 0
        columns = [USER_ID, ITEM_ID, RANK, SCORE]
        with write_transaction(engine) as connection:
            staged = connection.execute(sa.select(sa.func.count()).select_from(staging)).scalar_one()
            if staged != written:
                raise DataError(f"The staging table {staging.name!r} holds {staged} rows but {written} were written: "
                                f"{table!r} is left as it was.")
            if mode == "replace":
                connection.execute(target.delete())
            connection.execute(target.insert().from_select(columns, sa.select(*[staging.c[c] for c in columns])))
    finally:
        staging.drop(engine, checkfirst=True)
        engine.dispose()
    return int(written)


def _lists_table(name: str, metadata: sa.MetaData, *extra: sa.Column) -> sa.Table:
    import sqlalchemy as sa

    return sa.Table(name, metadata, sa.Column(USER_ID, sa.String(255), nullable=False),
                    sa.Column(ITEM_ID, sa.String(255), nullable=False), sa.Column(RANK, sa.Integer, nullable=False),
                    sa.Column(SCORE, sa.Float(53)), *extra)


def _insert_partition(url: str, staging: str, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """One partition's rows into the staging table in one transaction (rows of an earlier attempt deleted first)."""
    import pyarrow as pa
    import sqlalchemy as sa
    from pyspark import TaskContext

    from tailored.store.schema import engine_for, write_transaction

    part = TaskContext.get().partitionId()
    engine = engine_for(url)
    table = sa.Table(staging, sa.MetaData(), autoload_with=engine)
    written = 0
    try:
        with write_transaction(engine) as connection:
            connection.execute(table.delete().where(table.c.part == part))
            for batch in batches:
                if batch.num_rows:
                    records = batch.append_column("part", pa.array(np.full(batch.num_rows, part), pa.int32()))
                    connection.execute(table.insert(), records.to_pylist())
                    written += batch.num_rows
    finally:
        engine.dispose()
    yield pa.RecordBatch.from_arrays([pa.array([written], pa.int64())], names=["rows"])
