"""What the CLI and a scheduler call: load data, train, recommend, predict, evaluate. Orchestration only."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tailored.data.columns import BASKET_ID, ITEM_ID, PREDICTION, TIMESTAMP, USER_ID, VALUE
from tailored.data.dataset import Dataset
from tailored.data.features import is_vector_column, value_text
from tailored.data.io import CSV_SUFFIXES, read_attributes, read_interactions, read_table
from tailored.data.quality import QualityReport, QualityRules, check_quality, require_valid
from tailored.errors import DataError
from tailored.eval.evaluator import EvalReport, evaluate_lists
from tailored.eval.metrics import mae, rmse
from tailored.data.features import numeric_bins
from tailored.pipeline.recommender import Recommender
from tailored.registry.model_dir import load_model, save_model
from tailored.pipeline.recommender import RECOMMENDER_PARAMS, build_recommender
from tailored.rank import Reranker, Stage, create_stage
from tailored.query import Context

if TYPE_CHECKING:
    from tailored.store import EventStore

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


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
    user_table = read_attributes(users, id_column=USER_ID) if users is not None else None
    item_table = read_attributes(items, id_column=ITEM_ID) if items is not None else None
    return Dataset.from_frame(frame, users=user_table, items=item_table)


def train(
    dataset: Dataset,
    algorithm: str,
    params: dict[str, Any],
    model_dir: str | Path,
    metadata: dict[str, Any] | None = None,
    stages: list[Stage | Reranker] | None = None,
    checkpoint_dir: str | Path | None = None,
) -> Recommender:
    """Fit ``algorithm`` (followed by the ``stages``) on ``dataset`` and save it to ``model_dir``. With
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

        checkpoints = DirectoryCheckpoints(checkpoint_dir, f"{algorithm} {json.dumps(params, sort_keys=True, default=str)} data {fingerprint}")
        with checkpointing(checkpoints):
            recommender.fit(dataset)
    save_model(recommender, model_dir, {"data_fingerprint": fingerprint, "n_interactions": len(dataset)} | (metadata or {}))
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
) -> Recommender:
    """Train the model of ``model_dir`` again (same algorithm, parameters, weighting and stages) on the last
    ``window_days`` of ``interactions`` (all of it when None); saved to ``output_dir`` (default: in place, atomically)."""
    from tailored.monitoring.drift import recent_window
    from tailored.registry.model_dir import read_manifest

    manifest = read_manifest(model_dir)
    window = recent_window(read_valid(interactions, columns), window_days)
    if window.empty:
        raise DataError(f"{interactions} has no interactions in the last {window_days} days: nothing to retrain on.")
    dataset = _with_attributes(window, users, items)  # the window is valid already
    params = manifest["params"] | {k: manifest["recommender"][k] for k in RECOMMENDER_PARAMS if k in manifest["recommender"]}
    stages = [create_stage(entry["name"], entry["params"]) for entry in manifest["stages"]]
    metadata = {"source": str(interactions), "window_days": window_days}
    return train(dataset, manifest["algorithm"], params, output_dir or model_dir, metadata, stages=stages)


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
        frames.append(recommender.recommend(ids[start : start + block], k, attributes, context, explain, tally, warn=False))
        if progress is not None:
            progress(min(start + block, len(ids)), len(ids))
    return pd.concat(frames, ignore_index=True) if frames else recommender.recommend([], k, warn=False)


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


def attribute_report(recommender: Recommender, dataset: Dataset) -> list[str]:
    """A line each for the users' and the items' attribute tables of ``dataset``: the columns the fitted model uses
    (and how, where not as categories) and the columns it leaves out, with the reason."""
    lines = []
    if dataset.user_attributes is not None:
        vocabulary = recommender.user_vocabulary_
        bins = numeric_bins(vocabulary["columns"], vocabulary.get("edges"))
        tokens = pd.Series(vocabulary["vocabulary"], dtype=str).str.split("=", n=1).str[0].value_counts()
        used = {str(name): f"{len(bins[name]) + 1} bins" if name in bins
                else _categories_kept(int(tokens.get(name, 0)), dataset.user_attributes[name])
                for name in vocabulary["columns"]}
        lines.append(_attribute_line("user", used, dataset.user_attributes))
    if dataset.item_attributes is not None:
        encoder = recommender.item_encoder_ or {"columns": [], "kinds": []}
        used = {str(name): _item_use(str(kind), encoder[f"vocabulary_{i}"], dataset.item_attributes[name])
                for i, (name, kind) in enumerate(zip(encoder["columns"], encoder["kinds"]))}
        lines.append(_attribute_line("item", used, dataset.item_attributes))
    return lines


def _attribute_line(kind: str, used: dict[str, str], table: pd.DataFrame) -> str:
    names = [f"{name} ({how})" if how else name for name, how in used.items()] or ["none"]
    left_out = [f"{name} ({_why_left_out(table[name])})" for name in table.columns if name not in used]
    return f"{kind} attributes used: {', '.join(names)}" + (f"; left out: {', '.join(left_out)}" if left_out else "")


def _item_use(kind: str, vocabulary: np.ndarray, column: pd.Series) -> str:
    if kind == "vector":
        return f"vector of {int(vocabulary[0])}"
    if kind == "numeric":
        return f"{len(vocabulary) + 1} bins"
    return {"multi": "'|' list", "text": "text"}.get(kind) or _categories_kept(len(vocabulary), column)


def _categories_kept(kept: int, column: pd.Series) -> str:
    """'' when every value of a categorical column is a category, else how many are (the rarer ones are unknown)."""
    distinct = value_text(column.dropna()).nunique()
    return f"the {kept:,} most shared of {distinct:,} values, the others as unknown" if kept < distinct else ""


IMAGE_FILE = r"\.(?:jpe?g|png|gif|webp|bmp|tiff?)$"
"""A value naming an image file."""


def _why_left_out(column: pd.Series) -> str:
    if is_vector_column(column):
        return "vectors: user attributes are categories and numbers"
    values = column.dropna().astype(str)
    distinct = values.nunique()
    if distinct <= 1:
        return "no value" if values.empty else "the same value everywhere"
    if values.str.contains(IMAGE_FILE, case=False).mean() > 0.5:
        return f"image files: `tailored embed --image-column {column.name}` makes features of them"
    if distinct == len(values):
        return "a different value in every row"
    return f"{distinct:,} distinct values, mostly rare"


def embed_items(
    items: str | Path,
    text_columns: list[str],
    image_column: str | None = None,
    image_root: str | Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    vectors: str | Path | None = None,
    vectors_column: str = "image_embedding",
) -> tuple[pd.DataFrame, dict[int, str]]:
    """The items table with a ``text_embedding`` column (MiniLM of the text columns joined), an
    ``image_descriptor`` column and/or a ``vectors_column`` of embeddings supplied in a NumPy file
    (`supplied_vectors`); also returns the rows whose image could not be read, with the reason. ``progress`` gets
    (what, done, total) with ``what`` "texts" or "images"."""
    from tailored.data.embeddings import image_descriptors, supplied_vectors, text_embeddings

    table = read_attributes(items, id_column=ITEM_ID)
    missing = [c for c in [*text_columns, *([image_column] if image_column else [])] if c not in table.columns]
    if missing:
        raise DataError(f"{items} has no column(s) {missing}; columns are {list(table.columns)}.")
    if not text_columns and image_column is None and vectors is None:
        raise DataError("Nothing to embed: give --text-columns, --image-column and/or --vectors.")
    if vectors is not None and vectors_column in table.columns:
        raise DataError(f"{items} already has a column {vectors_column!r}: choose another --vectors-column.")
    supplied = supplied_vectors(vectors, table[ITEM_ID].astype(str).tolist()) if vectors is not None else None
    failures: dict[int, str] = {}
    if text_columns:
        texts = table[text_columns].fillna("").astype(str).agg(". ".join, axis=1).str.strip(". ")
        table["text_embedding"] = list(text_embeddings(texts.tolist(), progress=_labelled(progress, "texts")))
    if image_column is not None:
        paths = table[image_column].tolist()
        descriptors, failures = image_descriptors(paths, image_root, _labelled(progress, "images"))
        table["image_descriptor"] = list(descriptors)
    if supplied is not None:
        table[vectors_column] = list(supplied)
    return table, failures


def _labelled(progress: Callable[[str, int, int], None] | None, what: str) -> Progress | None:
    return None if progress is None else lambda done, total: progress(what, done, total)


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
        raise DataError(f"Pairs need columns {USER_ID}, {ITEM_ID}; missing {missing}; columns are {list(pairs.columns)}.")
    user_ids = pairs[USER_ID].astype(str).to_numpy()
    item_ids = pairs[ITEM_ID].astype(str).to_numpy()
    return pd.DataFrame({USER_ID: user_ids, ITEM_ID: item_ids, PREDICTION: recommender.predict(user_ids, item_ids)})


CATALOGUE_METRICS = ("coverage", "gini", "novelty", "popularity")


def evaluate_files(
    test: str | Path | pd.DataFrame,
    recommendations: str | Path | pd.DataFrame,
    train: str | Path | None,
    metrics: list[str],
    bootstrap: int = 1000,
) -> EvalReport:
    """Ranking metrics of recommendations (a file or frame) against a test file (or the frame `read_valid` read from
    it); the training file is needed for the catalogue metrics (coverage, Gini, novelty, popularity)."""
    if train is None and any(name.split("@")[0] in CATALOGUE_METRICS for name in metrics):
        raise DataError(f"Metrics {[m for m in metrics if m.split('@')[0] in CATALOGUE_METRICS]} need the training "
                        "file (catalogue and popularity): pass --train FILE.")
    train_frame = read_valid(train) if train is not None else pd.DataFrame({USER_ID: [], ITEM_ID: []})
    recommended = recommendations if isinstance(recommendations, pd.DataFrame) else read_table(recommendations)
    return evaluate_lists(recommended, _valid(test), train_frame, metrics, bootstrap=bootstrap)


def rating_errors(model: Recommender | str | Path, test: str | Path | pd.DataFrame) -> dict[str, float]:
    """RMSE and MAE of a model's predictions over every pair of a test file or `read_valid` frame (fallbacks, never
    skipped)."""
    truth = _valid(test)
    predicted = predict(model, truth)[PREDICTION].to_numpy()
    return {"rmse": rmse(predicted, truth[VALUE].to_numpy()), "mae": mae(predicted, truth[VALUE].to_numpy())}


def _valid(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """A frame as given (already read by `read_valid`), else the file read through `read_valid`."""
    return source if isinstance(source, pd.DataFrame) else read_valid(source)


def read_raw_interactions(source: str | Path, columns: ColumnNames = ColumnNames()) -> pd.DataFrame:
    """The interactions file with its columns renamed to the canonical names but values left as read (for checks)."""
    table = read_table(source)
    mapping = {name: canonical for canonical, name in columns.names.items()}
    missing = [name for name, canonical in mapping.items() if name not in table.columns and canonical in (USER_ID, ITEM_ID)]
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

