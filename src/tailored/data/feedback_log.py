"""The feedback log (one row per shown position of a served list; `tailored logs export` writes it) read from a CSV or
Parquet file or a frame and validated for off-policy evaluation: every problem names the file, the column and rows.

Columns: ``exposure_id, user_id, position, item_id, propensity, policy, model_version, created_at, click, purchase,
revenue``. Position 1 is the top; ``propensity`` is the logging policy's exact probability of showing the item at that
position given its candidates, in (0, 1]. Row numbers follow `tailored.data.io`: CSV line numbers (the header is line
1), else 0-based positions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tailored.data.cells import id_texts
from tailored.data.io import CSV_SUFFIXES, read_table, rows_named
from tailored.errors import DataError

EXPOSURE_ID = "exposure_id"
POSITION = "position"
PROPENSITY = "propensity"
POLICY = "policy"
MODEL_VERSION = "model_version"
CREATED_AT = "created_at"
REWARDS = ("click", "purchase", "revenue")
LOG_COLUMNS = (EXPOSURE_ID, "user_id", POSITION, "item_id", PROPENSITY, POLICY, MODEL_VERSION, CREATED_AT, *REWARDS)
REQUIRED = (EXPOSURE_ID, "user_id", POSITION, "item_id", PROPENSITY)
"""Columns every log needs, besides the reward column evaluated."""
_FIX = "export the log again with `tailored logs export`, or fix or remove those rows"


@dataclass(frozen=True)
class _Source:
    frame: pd.DataFrame
    label: str
    from_text: bool

    def rows(self, mask: np.ndarray) -> str:
        return rows_named(mask, self.from_text)

    def fail(self, column: str, mask: np.ndarray, problem: str, why: str = "") -> DataError:
        count = int(mask.sum())
        samples = pd.Series(self.frame[column].to_numpy()[mask]).dropna().astype(str).unique()[:3]
        example = f", e.g. {', '.join(map(repr, samples))}" if len(samples) else ""
        return DataError(f"Column '{column}' in {self.label} has {count} {problem}{example} ({self.rows(mask)})"
                         f"{'; ' + why if why else ''}; {_FIX}.")


def read_feedback_log(source: str | os.PathLike[str] | pd.DataFrame, reward: str = "click") -> pd.DataFrame:
    """The validated log: ids as strings, ``position`` int64, ``propensity`` and the rewards float64 (``created_at``
    too when present), rows in the file's order. ``reward`` names the column to be evaluated (it must be present)."""
    if reward not in REWARDS:
        raise DataError(f"Unknown reward {reward!r}: use one of {', '.join(REWARDS)}.")
    is_path = isinstance(source, (str, os.PathLike))
    frame = read_table(source)
    label = str(source) if is_path else "the given DataFrame"
    return check_feedback_log(frame, reward, label, from_text=is_path and str(source).lower().endswith(CSV_SUFFIXES))


def check_feedback_log(frame: pd.DataFrame, reward: str = "click", label: str = "the given DataFrame",
                       from_text: bool = False) -> pd.DataFrame:
    """`read_feedback_log`'s checks and conversions on a frame already read (``label`` names it in errors)."""
    source = _Source(frame.reset_index(drop=True), label, from_text)
    missing = [column for column in (*REQUIRED, reward) if column not in frame.columns]
    if missing:
        raise DataError(f"Column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} not found in "
                        f"{label}: a feedback log has the columns {', '.join(LOG_COLUMNS)} (`tailored logs export` "
                        f"writes them; off-policy evaluation needs {', '.join(REQUIRED)} and the reward column); "
                        f"found: {list(frame.columns)}.")
    if len(frame) == 0:
        raise DataError(f"{label} has no rows: nothing to evaluate.")
    out: dict[str, Any] = {}
    for column in (EXPOSURE_ID, "user_id", "item_id", POLICY, MODEL_VERSION):
        if column in frame.columns:
            texts = id_texts(source.frame[column])
            if column in REQUIRED:
                _refuse(source, column, texts.isna().to_numpy(), "empty values")
            out[column] = texts
    position = _numbers(source, POSITION)
    _refuse(source, POSITION, (position < 1) | (position % 1 != 0), "positions that are not whole numbers >= 1",
            "position 1 is the top of the list")
    out[POSITION] = position.astype(np.int64)
    propensity = _numbers(source, PROPENSITY)
    _refuse(source, PROPENSITY, (propensity <= 0) | (propensity > 1), "propensities outside (0, 1]",
            "a propensity is the logging policy's exact probability of showing that item at that position; without "
            "it a list cannot be evaluated off-policy")
    out[PROPENSITY] = propensity
    for column in REWARDS:
        if column in frame.columns:
            values = _numbers(source, column)
            if column != "revenue":
                _refuse(source, column, (values != 0) & (values != 1), "values other than 0 and 1")
            out[column] = values
    if CREATED_AT in frame.columns:
        out[CREATED_AT] = _numbers(source, CREATED_AT)
    log = pd.DataFrame(out)[[column for column in LOG_COLUMNS if column in out]]
    twice = log.duplicated([EXPOSURE_ID, POSITION], keep="first").to_numpy()
    _refuse(source, EXPOSURE_ID, twice, "rows repeating an (exposure_id, position) of an earlier row",
            "each position of a list is logged once")
    return log


def _numbers(source: _Source, column: str) -> np.ndarray:
    """A column as finite float64, refusing empty, non-numeric, NaN and infinite cells."""
    raw = source.frame[column]
    _refuse(source, column, raw.isna().to_numpy(), "empty or NaN values")
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    _refuse(source, column, ~np.isfinite(values), "values that are not finite numbers")
    return values


def _refuse(source: _Source, column: str, mask: np.ndarray, problem: str, why: str = "") -> None:
    if mask.any():
        raise source.fail(column, mask, problem, why)
