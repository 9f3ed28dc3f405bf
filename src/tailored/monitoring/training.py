"""One record per training: which data (the fingerprint), how clean it was (the model directory's quality report),
how biased (from the model's own training pairs), how good (evaluated on a frozen test file with intervals and per
user segment) and what changed since the previous record of the same model.

- ``fingerprint``: the manifest's data fingerprint (`Dataset.fingerprint`), else a hash of the training pairs.
- ``quality``: rows, accepted, rejected and the findings that flagged rows (``quality.json`` of the model
  directory; empty when the model was trained without the check).
- ``bias``: training pairs, users, items, ``popularity_gini`` (Gini of pairs per item), ``top1_item_share``,
  ``top10_user_share`` and ``activity_skew`` (mean / median pairs per user: 1 when even, large when a few users
  dominate), and the share of pairs per user ``segment`` and item ``category`` (from the attributes given).
- ``evaluation``: ``{metric: {"value", "ci": [low, high]}}`` on the test file (users and their test items; the
  model's training pairs are the history lists leave out), ``segments``: ``{segment: {"users", metric: value}}``.
- ``diff``: each evaluation metric and ``popularity_gini`` minus the previous record's, and ``rejected_share``'s
  difference; empty for a first record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailored.data.bias import gini, top_share
from tailored.data.columns import ITEM_ID, USER_ID
from tailored.data.dataset import Dataset
from tailored.data.io import read_interactions
from tailored.data.quality import require_valid
from tailored.errors import DataError
from tailored.eval.evaluator import DEFAULT_METRICS, evaluate
from tailored.pipeline.recommender import Recommender
from tailored.registry.model_dir import load_model, read_manifest
from tailored.split.base import Split
from tailored.store.database import EventStore
from tailored.store.monitoring import add_training, attribute_values, trainings

QUALITY_FILE = "quality.json"
SEGMENT = "segment"


def training_record(model_dir: Path, test: Path | None = None, segments: pd.Series | None = None,
                    categories: pd.Series | None = None, metrics: Sequence[str] = DEFAULT_METRICS,
                    bootstrap: int = 1000, previous: dict[str, Any] | None = None,
                    recommender: Recommender | None = None) -> dict[str, Any]:
    """The record of the model in ``model_dir`` (see the module's text): ``segments`` maps user ids to their segment,
    ``categories`` item ids to their category (None: no group shares); ``previous`` is the last record of the same
    model (None: no diff); ``recommender``: the model already loaded from ``model_dir``."""
    manifest = read_manifest(model_dir)
    recommender = load_model(model_dir) if recommender is None else recommender
    record: dict[str, Any] = {"fingerprint": str(manifest.get("data_fingerprint") or pairs_fingerprint(recommender)),
                              "algorithm": manifest["algorithm"], "quality": quality_of(model_dir),
                              "bias": bias_of(recommender, segments, categories), "evaluation": {}, "segments": {}}
    if test is not None:
        record["evaluation"], record["segments"] = evaluation_of(recommender, test, segments, metrics, bootstrap)
    record["diff"] = diff_of(record, previous) if previous is not None else {}
    return record


def pairs_fingerprint(recommender: Recommender) -> str:
    """A hash of the model's training pairs and ids, ``pairs:`` + 16 hex digits, for a model saved without the
    fingerprint of its data."""
    digest = hashlib.sha256()
    for ids in (recommender.users_.external_ids.astype(str), recommender.items_.external_ids.astype(str)):
        digest.update("\x1f".join(ids).encode())
    seen = recommender.seen_.tocsr()
    digest.update(seen.indptr.astype(np.int64).tobytes() + seen.indices.astype(np.int64).tobytes())
    return "pairs:" + digest.hexdigest()[:16]


def quality_of(model_dir: Path) -> dict[str, Any]:
    """Rows, accepted, rejected and the findings that flagged rows, from the model directory's quality report."""
    path = Path(model_dir) / QUALITY_FILE
    if not path.is_file():
        return {}
    try:
        report = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(f"{path} cannot be read ({error}): train the model again to rewrite it.") from error
    findings = [{name: finding.get(name) for name in ("rule", "field", "severity", "action", "count", "message")}
                for finding in report.get("findings", []) if finding.get("count")]
    return {"rows": report.get("rows"), "accepted": report.get("accepted"), "rejected": report.get("rejected"),
            "findings": findings}


def bias_of(recommender: Recommender, segments: pd.Series | None = None,
            categories: pd.Series | None = None) -> dict[str, Any]:
    """Concentration of the model's training pairs, and their share per user segment and item category."""
    seen = recommender.seen_.tocoo()
    per_user, per_item = recommender.seen_.getnnz(axis=1), recommender.seen_.getnnz(axis=0)
    active = per_user[per_user > 0]
    bias: dict[str, Any] = {
        "pairs": int(seen.nnz), "users": int(active.size), "items": int((per_item > 0).sum()),
        "popularity_gini": gini(per_item), "top1_item_share": top_share(per_item, 0.01),
        "top10_user_share": top_share(active, 0.10),
        "activity_skew": float(active.mean() / np.median(active)) if active.size else None,
    }
    for name, groups, ids in (("segments", segments, recommender.users_.external_ids[seen.row]),
                              ("categories", categories, recommender.items_.external_ids[seen.col])):
        if groups is not None:
            labels = pd.Series(groups.reindex(pd.Index(ids).astype(str)).fillna("(none)").to_numpy())
            bias[name] = {str(key): float(value) for key, value in labels.value_counts(normalize=True).items()}
    return bias


def evaluation_of(recommender: Recommender, test: Path, segments: pd.Series | None, metrics: Sequence[str],
                  bootstrap: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics with bootstrap intervals on the ``test`` file, overall and per segment (when ``segments`` is given)."""
    truth = require_valid(read_interactions(test), str(test))
    seen = recommender.seen_.tocoo()
    train = Dataset.from_frame(pd.DataFrame({USER_ID: recommender.users_.external_ids[seen.row].astype(str),
                                             ITEM_ID: recommender.items_.external_ids[seen.col].astype(str)}))
    users = None
    if segments is not None:
        tested = pd.unique(truth[USER_ID])
        users = pd.DataFrame({USER_ID: tested, SEGMENT: segments.reindex(tested).fillna("(none)").to_numpy()})
    split = Split(train, Dataset.from_frame(truth, users=users), name=Path(test).name)
    report = evaluate(recommender, split, metrics, bootstrap=bootstrap, segments=SEGMENT if users is not None else None)
    values = report.to_dict()
    evaluation = {name: {"value": row["value"], "ci": [row["ci_low"], row["ci_high"]]}
                  for name, row in values["metrics"].items()}
    by_segment = {str(row.pop(SEGMENT)): row for row in values["segments"] or []}
    return evaluation, by_segment


def diff_of(record: dict[str, Any], previous: dict[str, Any]) -> dict[str, float]:
    """Each evaluation metric, the popularity Gini and the rejected share minus the previous record's (those both
    have)."""
    def flat(each: dict[str, Any]) -> dict[str, float]:
        values = {name: figure["value"] for name, figure in each.get("evaluation", {}).items()}
        values["popularity_gini"] = each.get("bias", {}).get("popularity_gini")
        quality = each.get("quality") or {}
        if quality.get("rows"):
            values["rejected_share"] = quality["rejected"] / quality["rows"]
        return {name: float(value) for name, value in values.items() if value is not None}

    now, before = flat(record), flat(previous)
    return {name: now[name] - before[name] for name in now if name in before}


def record_training(store: EventStore, model: str, model_dir: Path, test: Path | None = None,
                    metrics: Sequence[str] = DEFAULT_METRICS, bootstrap: int = 1000) -> dict[str, Any]:
    """Make the record of the model in ``model_dir`` (named ``model``) with the store's user segments and item
    categories (user ids keyed as the store keys them, one by one), against the last stored record of ``model``, and
    store it; returns it."""
    recommender = load_model(model_dir)
    users = recommender.users_.external_ids.astype(str)
    stored = pd.Index([store.user_key(user) for user in users])
    segments = pd.Series(attribute_values(store, "user", SEGMENT, stored).reindex(stored).to_numpy(),
                         index=users).dropna()
    categories = attribute_values(store, "item", "category")
    earlier = trainings(store, model=model)
    record = training_record(model_dir, test, segments if len(segments) else None,
                             categories if len(categories) else None, metrics, bootstrap,
                             earlier[-1] if earlier else None, recommender)
    add_training(store, model, record["fingerprint"], record)
    return record
