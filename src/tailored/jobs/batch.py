"""`tailored batch`: top-k lists for every user of a campaign, chunk by chunk, to a file or a database table."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tailored.data.columns import USER_ID
from tailored.data.io import write_chunks
from tailored.jobs.tasks import Progress, read_users
from tailored.pipeline.recommender import Recommender
from tailored.query import Context
from tailored.rank.explain import with_titles
from tailored.registry.model_dir import load_model

if TYPE_CHECKING:
    from tailored.store import EventStore


def batch_lists(model: Recommender | str | Path, user_ids: np.ndarray | None, k: int, chunk_users: int = 10_000,
                progress: Progress | None = None, context: Context | None = None) -> Iterator[pd.DataFrame]:
    """Top-``k`` lists chunk by chunk (``chunk_users`` users each): for CRM exports whose whole output would not fit
    in memory. Unknown users get the cold-start fallback."""
    recommender = model if isinstance(model, Recommender) else load_model(model)
    ids = recommender.users_.external_ids if user_ids is None else np.asarray(user_ids)
    tally: dict[str, Any] = {}
    for start in range(0, len(ids), chunk_users):
        yield recommender.recommend(ids[start : start + chunk_users], k, context=context, tally=tally, warn=False)
        if progress is not None:
            progress(min(start + chunk_users, len(ids)), len(ids))


def without_erased_users(chunks: Iterable[pd.DataFrame], store: EventStore) -> Iterator[pd.DataFrame]:
    """The lists of ``chunks`` less those of users erased in ``store``: a model trained before an erasure still
    knows the user, and a campaign file must not bring them back."""
    for chunk in chunks:
        ids = chunk[USER_ID].astype(str)
        erased = store.erased_users(ids.unique())
        yield chunk[~ids.isin(erased)] if erased else chunk


def batch_to_file(model_dir: Path, output: Path, k: int, users: Path | None = None, chunk_users: int = 10_000,
                  context: Context | None = None, erasures: EventStore | None = None,
                  progress: Progress | None = None) -> int:
    """Write the top-``k`` lists (with titles) of the users of ``users`` (every user when None) to ``output``,
    atomically, less the users erased in ``erasures``; returns the number of rows."""
    user_ids = read_users(users)[0] if users is not None else None
    recommender = load_model(model_dir)
    chunks = batch_lists(recommender, user_ids, k, chunk_users, progress, context)
    if erasures is not None:
        chunks = without_erased_users(chunks, erasures)
    return write_chunks((with_titles(chunk, recommender.catalogue) for chunk in chunks), output)


def batch_to_store(model_dir: Path, store: EventStore, k: int, users: Path | None = None, chunk_users: int = 10_000,
                   context: Context | None = None, progress: Progress | None = None) -> tuple[str, int]:
    """Append the top-``k`` lists to a new batch of ``store``'s batch_recommendations table (a user erased there is
    left out by the store); returns the batch id and the number of rows."""
    user_ids = read_users(users)[0] if users is not None else None
    batch_id, rows = uuid.uuid4().hex, 0
    for chunk in batch_lists(load_model(model_dir), user_ids, k, chunk_users, progress, context):
        store.write_batch(batch_id, chunk)
        rows += len(chunk)
    return batch_id, rows
