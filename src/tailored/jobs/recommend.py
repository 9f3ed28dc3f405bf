"""`tailored recommend`: lists for the users of a file (or every user) from a saved model, with the request-time
stages, new users and items described by their attributes, and the warnings a person should read about them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tailored.data.columns import ITEM_ID
from tailored.data.io import read_attributes
from tailored.jobs.tasks import Progress, read_item_ids, read_users, recommend
from tailored.pipeline.lists import short_lists, short_lists_message, undescribed_message
from tailored.query import Context
from tailored.rank import Reranker, Stage
from tailored.rank.specs import check_request_time, load_stage_file
from tailored.registry.model_dir import fit_added_stages, load_model


@dataclass(frozen=True)
class Lists:
    """A table of item lists and the warnings about them (inputs the model could not use, lists cut short)."""

    frame: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def recommend_files(
    model_dir: Path,
    k: int,
    users: Path | None = None,
    items: Path | None = None,
    candidates: Path | None = None,
    context: Context | None = None,
    stages: list[Stage | Reranker] | None = None,
    calendar: Path | None = None,
    rules: Path | None = None,
    explain: bool = False,
    progress: Progress | None = None,
) -> Lists:
    """Top-``k`` lists of the model in ``model_dir`` for the users of ``users`` (a ``user_id`` column; other columns
    describe new users), every training user when None. ``items`` adds new items described by their attributes,
    ``candidates`` restricts the ranking to its item ids; ``stages``, then the ``calendar`` and ``rules`` files, are
    added after the model's own (stages that learn from the training data are refused, before any file is read)."""
    added = list(stages or [])
    check_request_time(added)
    added += load_stage_file("calendar", calendar) if calendar is not None else []
    added += load_stage_file("rules", rules) if rules is not None else []
    user_ids, attributes = read_users(users) if users is not None else (None, None)
    new_items = read_attributes(items, id_column=ITEM_ID) if items is not None else None
    candidate_ids = read_item_ids(candidates) if candidates is not None else None
    model = load_model(model_dir)
    added = fit_added_stages(model, added)
    warnings = [] if attributes is None else [f"{users}: {p}." for p in model.attribute_problems(attributes)]
    if new_items is not None:
        warnings += [f"{items}: {problem}." for problem in model.item_attribute_problems(new_items)]
    undescribed = model.undescribed_users(user_ids, attributes, context) if user_ids is not None else []
    if len(undescribed):
        warnings.append(f"{users}: {undescribed_message(undescribed, model.fallback_.algorithm)}")
    frame = recommend(model, user_ids, k, progress, attributes=attributes, items=new_items, candidates=candidate_ids,
                      context=context, stages=added, explain=explain)
    short = short_lists(frame, k, user_ids)
    if short:
        warnings.append(short_lists_message(short, k))
    return Lists(frame, warnings)
