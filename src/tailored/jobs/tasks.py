"""The tasks the faces and a scheduler call: read and check data, train, retrain, recommend, predict.
Orchestration only."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailored.data.columns import BASKET_ID, ITEM_ID, PREDICTION, TIMESTAMP, USER_ID, VALUE
from tailored.data.dataset import Dataset
from tailored.data.io import CSV_SUFFIXES, read_attributes, read_interactions, read_table, write_text
from tailored.data.quality import QualityReport, QualityRules, check_quality, require_valid
from tailored.data.transforms import history_window
from tailored.errors import DataError
from tailored.pipeline.recommender import RECOMMENDER_PARAMS, Recommender, build_recommender
from tailored.query import Context
from tailored.rank import Reranker, Stage, create_stage
from tailored.registry.model_dir import load_model, save_model

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
QUALITY_REPORT = "quality.json"
"""The quality report `tailored train` saves in the model directory."""
REJECTED_ROWS = "rejected.csv"
"""The rows the quality rules rejected, with their reasons, saved beside the model."""


@dataclass(frozen=True)
class ColumnNames:
    """Names of the interaction columns in the user's files (mapped to the canonical ones on read)."""

    user: str = USER_ID
    item: str = ITEM_ID
    value: str = "value"
    time: str = "timestamp"
    basket: str | None = None

    @property
    def names(self) -> dict[str, str]:
        """Canonical column -> the file's name for it (what quality messages say)."""
        return {USER_ID: self.user, ITEM_ID: self.item, VALUE: self.value, TIMESTAMP: self.time}


def _first_line(source: str | Path) -> int | None:
    """The file line of the first row: 2 below a CSV/TSV header; None (rows numbered from 0) otherwise."""
    return 2 if Path(source).suffix.lower() in CSV_SUFFIXES else None


def read_valid(source: str | Path | pd.DataFrame, columns: ColumnNames = ColumnNames()) -> pd.DataFrame:
    """Interactions read from ``source`` and passed through `require_valid`: a row with a missing id, an unparsable,
    non-finite or absurd value or an unparsable timestamp is a DataError naming its file line (its row for a frame)."""
    frame = read_interactions(source, user=columns.user, item=columns.item, value=columns.value, time=columns.time,
                              basket=columns.basket or BASKET_ID)
    if isinstance(source, pd.DataFrame):
        return require_valid(frame, "the given interactions", names=columns.names)
    return require_valid(frame, str(source), _first_line(source), columns.names)


def load_dataset(
    interactions: str | Path | pd.DataFrame,
    users: str | Path | None = None,
    items: str | Path | None = None,
    columns: ColumnNames = ColumnNames(),
) -> Dataset:
    frame = read_valid(interactions, columns)
    if frame.empty:
        raise DataError(f"{interactions} holds no interactions: nothing to train on.")
    return _with_attributes(frame, users, items)


def _with_attributes(frame: pd.DataFrame, users: str | Path | None, items: str | Path | None) -> Dataset:
    """The Dataset of interactions already read by `read_valid`, with the attribute files."""
    user_table, item_table = _attribute_tables(users, items)
    return Dataset.from_frame(frame, users=user_table, items=item_table)


def _attribute_tables(users: str | Path | None, items: str | Path | None) -> tuple[pd.DataFrame | None, ...]:
    return (read_attributes(users, id_column=USER_ID) if users is not None else None,
            read_attributes(items, id_column=ITEM_ID) if items is not None else None)


def checked_dataset(
    interactions: str | Path,
    users: str | Path | None = None,
    items: str | Path | None = None,
    columns: ColumnNames = ColumnNames(),
    rules: QualityRules | None = None,
) -> tuple[Dataset, QualityReport]:
    """The Dataset of the rows of ``interactions`` that pass the quality ``rules`` (default `QualityRules()`), and
    the report. A row `read_valid` refuses (a missing id, an unparsable or absurd value) stops the job with a
    DataError naming it; the other rows the rules flag (repeated rows, future dates, ids absent from the attribute
    tables...) are left out and listed in the report, with their reasons."""
    frame = read_valid(interactions, columns)
    if frame.empty:
        raise DataError(f"{interactions} holds no interactions: nothing to train on.")
    user_table, item_table = _attribute_tables(users, items)
    report = _checked(frame, interactions, columns, rules, user_table, item_table)
    return Dataset.from_frame(report.clean, users=user_table, items=item_table), report


def _checked(frame: pd.DataFrame, interactions: str | Path, columns: ColumnNames, rules: QualityRules | None,
             user_table: pd.DataFrame | None, item_table: pd.DataFrame | None) -> QualityReport:
    """The quality report of the valid ``frame`` read from ``interactions`` (rows named by their file line); a
    DataError when the rules reject every row."""
    report = check_quality(frame, rules, users=user_table, items=item_table, source=str(interactions),
                           first_line=_first_line(interactions), names=columns.names)
    if report.clean.empty:
        raise DataError(f"The quality rules rejected every row of {interactions}: nothing to train on. "
                        f"`tailored check --interactions {interactions}` lists the reasons.")
    return report


def training_data(
    interactions: str | Path,
    users: str | Path | None = None,
    items: str | Path | None = None,
    columns: ColumnNames = ColumnNames(),
    rules: QualityRules | None = None,
    check: bool = True,
    window_days: float | None = None,
) -> tuple[Dataset, QualityReport | None]:
    """What `tailored train` fits on: the rows that pass the quality ``rules`` (``check``; else every valid row, and
    no report), then only the last ``window_days`` when given."""
    if check:
        dataset, report = checked_dataset(interactions, users, items, columns, rules)
    else:
        dataset, report = load_dataset(interactions, users, items, columns), None
    return (dataset if window_days is None else history_window(dataset, days=window_days)), report


def training_stages(algorithm: str, params: dict[str, Any], stages: list[Stage | Reranker],
                    context_stages: bool) -> list[Stage | Reranker]:
    """``stages`` after the learned context stages (seasonality, time of day) when ``context_stages``; the algorithm's
    name and parameters are checked first, before any data is read."""
    from tailored.rank.specs import with_context_stages

    build_recommender(algorithm, params)
    return with_context_stages(stages) if context_stages else stages


def train(
    dataset: Dataset,
    algorithm: str,
    params: dict[str, Any],
    model_dir: str | Path,
    metadata: dict[str, Any] | None = None,
    stages: list[Stage | Reranker] | None = None,
    checkpoint_dir: str | Path | None = None,
    quality: QualityReport | None = None,
) -> Recommender:
    """Fit ``algorithm`` (followed by the ``stages``) on ``dataset`` and save it to ``model_dir``, with the
    ``quality`` report of its data (`QUALITY_REPORT`, and the rejected rows in `REJECTED_ROWS`). With
    ``checkpoint_dir`` the neural training loops checkpoint every epoch there and resume from it; the checkpoints are
    removed once the model is saved."""
    recommender = build_recommender(algorithm, params)
    recommender.stages = list(stages or [])
    fingerprint = dataset.fingerprint()
    if checkpoint_dir is None:
        recommender.fit(dataset)
    else:
        from tailored.models.neural.training import checkpointing
        from tailored.registry.checkpoints import DirectoryCheckpoints

        key = f"{algorithm} {json.dumps(params, sort_keys=True, default=str)} data {fingerprint}"
        checkpoints = DirectoryCheckpoints(checkpoint_dir, key)
        with checkpointing(checkpoints):
            recommender.fit(dataset)
    save_model(recommender, model_dir,
               {"data_fingerprint": fingerprint, "n_interactions": len(dataset)} | (metadata or {}))
    if quality is not None:
        write_text(quality.to_json(), Path(model_dir) / QUALITY_REPORT)
        quality.write_rejected(Path(model_dir) / REJECTED_ROWS)
    if checkpoint_dir is not None:
        checkpoints.remove()
    logger.info("trained algorithm=%s interactions=%d model_dir=%s", algorithm, len(dataset), model_dir)
    return recommender


def retrain(
    interactions: str | Path,
    model_dir: str | Path,
    window_days: float | None,
    output_dir: str | Path | None = None,
    users: str | Path | None = None,
    items: str | Path | None = None,
    columns: ColumnNames = ColumnNames(),
    rules: QualityRules | None = None,
    check: bool = True,
) -> tuple[Recommender, QualityReport | None]:
    """Train the model of ``model_dir`` again (same algorithm, parameters, weighting and stages) on the last
    ``window_days`` of the rows of ``interactions`` that pass the quality ``rules`` (all valid rows without
    ``check``); saved to ``output_dir`` (default: in place, atomically) with the quality report. Returns the model
    and the report (None without ``check``)."""
    from tailored.monitoring.drift import recent_window
    from tailored.registry.model_dir import read_manifest

    manifest = read_manifest(model_dir)
    frame = read_valid(interactions, columns)
    user_table, item_table = _attribute_tables(users, items)
    quality = _checked(frame, interactions, columns, rules, user_table, item_table) if check else None
    window = recent_window(frame if quality is None else quality.clean, window_days)
    if window.empty:
        raise DataError(f"{interactions} has no interactions in the last {window_days} days: nothing to retrain on.")
    dataset = Dataset.from_frame(window, users=user_table, items=item_table)  # the window is valid already
    settings = manifest["recommender"]
    params = manifest["params"] | {k: settings[k] for k in RECOMMENDER_PARAMS if k in settings}
    stages = [create_stage(entry["name"], entry["params"]) for entry in manifest["stages"]]
    metadata = {"source": str(interactions), "window_days": window_days}
    model = train(dataset, manifest["algorithm"], params, output_dir or model_dir, metadata, stages=stages,
                  quality=quality)
    return model, quality


def read_users(source: str | Path) -> tuple[np.ndarray, pd.DataFrame | None]:
    """User ids from a file's ``user_id`` column (or its only column), and its other columns as the attributes of
    users that may be new (None when the file holds ids only)."""
    table = read_table(source)
    if USER_ID not in table.columns and table.shape[1] != 1:
        raise DataError(f"{source} has no '{USER_ID}' column; columns are {list(table.columns)}.")
    ids = pd.unique((table[USER_ID] if USER_ID in table.columns else table.iloc[:, 0]).dropna().astype(str).to_numpy())
    attributes = read_attributes(source, id_column=USER_ID) if USER_ID in table.columns and table.shape[1] > 1 else None
    return ids, attributes


def recommend(
    model: Recommender | str | Path,
    user_ids: np.ndarray | None,
    k: int,
    progress: Progress | None = None,
    attributes: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    candidates: np.ndarray | None = None,
    context: Context | None = None,
    stages: list[Stage | Reranker] | None = None,
    explain: bool = False,
) -> pd.DataFrame:
    """Top-``k`` for ``user_ids`` (all training users when None); unknown users get the cold-start fallback, which
    uses their ``attributes`` when given. ``items`` (``item_id`` + attributes) adds new items to the catalogue;
    ``candidates`` restricts the ranking to those item ids; ``stages`` (rules, calendar, location...) follow the
    model's own; ``explain`` adds a ``reasons`` column."""
    recommender = model if isinstance(model, Recommender) else load_model(model)
    if stages:
        recommender = recommender.with_stages(stages)
    if items is not None:
        recommender = recommender.with_items(items)
    if candidates is not None:
        recommender = recommender.restricted_to(candidates)
    ids = recommender.users_.external_ids if user_ids is None else np.asarray(user_ids)
    frames = []
    block = recommender.batch_size
    tally: dict[str, Any] = {}  # shared by the blocks: exposure counts span the whole run
    for start in range(0, len(ids), block):
        frames.append(recommender.recommend(ids[start : start + block], k, attributes, context, explain, tally,
                                            warn=False))
        if progress is not None:
            progress(min(start + block, len(ids)), len(ids))
    return pd.concat(frames, ignore_index=True) if frames else recommender.recommend([], k, warn=False)


def read_item_ids(source: str | Path) -> np.ndarray:
    """Item ids from a file's ``item_id`` column (or its only column)."""
    table = read_table(source)
    if ITEM_ID not in table.columns and table.shape[1] != 1:
        raise DataError(f"{source} has no '{ITEM_ID}' column; columns are {list(table.columns)}.")
    return pd.unique((table[ITEM_ID] if ITEM_ID in table.columns else table.iloc[:, 0]).dropna().astype(str).to_numpy())


def predict(model: Recommender | str | Path, pairs: pd.DataFrame) -> pd.DataFrame:
    recommender = model if isinstance(model, Recommender) else load_model(model)
    missing = [c for c in (USER_ID, ITEM_ID) if c not in pairs.columns]
    if missing:
        raise DataError(f"Pairs need columns {USER_ID}, {ITEM_ID}; missing {missing}; columns are "
                        f"{list(pairs.columns)}.")
    user_ids = pairs[USER_ID].astype(str).to_numpy()
    item_ids = pairs[ITEM_ID].astype(str).to_numpy()
    return pd.DataFrame({USER_ID: user_ids, ITEM_ID: item_ids, PREDICTION: recommender.predict(user_ids, item_ids)})


def read_raw_interactions(source: str | Path, columns: ColumnNames = ColumnNames()) -> pd.DataFrame:
    """The interactions file with its columns renamed to the canonical names but values left as read (for checks)."""
    table = read_table(source)
    mapping = {name: canonical for canonical, name in columns.names.items()}
    missing = [name for name, canonical in mapping.items()
               if name not in table.columns and canonical in (USER_ID, ITEM_ID)]
    if missing:
        raise DataError(f"{source} has no column(s) {missing}; available columns: {list(table.columns)}.")
    return table.rename(columns=mapping)


def check(
    interactions: str | Path,
    users: str | Path | None = None,
    items: str | Path | None = None,
    columns: ColumnNames = ColumnNames(),
    rules: QualityRules | None = None,
) -> QualityReport:
    """Run the quality rules over a raw interactions file (and its attribute tables)."""
    return check_quality(
        read_raw_interactions(interactions, columns),
        rules,
        users=read_attributes(users, id_column=USER_ID) if users is not None else None,
        items=read_attributes(items, id_column=ITEM_ID) if items is not None else None,
        source=str(interactions),
        first_line=_first_line(interactions),
        names=columns.names,
    )

