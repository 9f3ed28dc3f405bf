"""Data quality: check interactions against configurable rules, keep every rejected row with its reason.

``check_quality`` runs the rules in a fixed order (missing values, unparsable values and timestamps, absurd values,
value range, timestamp range, unknown ids, duplicates, outlier counts, minimum activity); each rule only sees the rows
that earlier rules accepted, so a rejected row carries the first rule it failed and
``len(clean) + len(rejected) == len(input)``. ``require_valid`` is the guard of every job that trains or evaluates:
the rules on cells and values, raising when one fires. Row numbers are 0-based positions in the checked frame; with
``first_line`` (2 for a CSV file with a header, as `tailored check` passes) messages name file lines instead.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from tailored.data.bias import bias_summary
from tailored.data.columns import BASKET_ID, EVENT_TYPE, ITEM_ID, REASON, TIMESTAMP, USER_ID, VALUE
from tailored.data.idmap import id_strings
from tailored.data.quality_report import Action, Finding, QualityReport, Severity
from tailored.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

ROW = "row"
LINE = "line"
ALL_COLUMNS = "all_columns"
_SAMPLES = 5
_EPOCH = pd.Timestamp(0, tz="UTC")
TAIL_QUANTILE, TAIL_NORMAL_Z = 0.99, 2.3263
"""The quantile the outlier rule reads its spread from, and where a standard normal law has it."""
RETAIL_COUNT_ZSCORE = 7.0
"""A ``max_count_zscore`` for retail counts: the synthetic buyer of 569 bottles of water scores 7.3 to 7.7 on 600 to
60,000 customers, the heaviest ordinary pairs at most 6.6 (tests/data/test_quality.py)."""
ABSURD_VALUE = 1e9
"""Default ``max_abs_value``: no count, rating, duration or amount of one interaction reaches a billion; such a value
is a unit or export error, and summed or squared in float32 matrices it drowns (or overflows) every other value."""


@dataclass(frozen=True)
class QualityRules:
    """Which rules run and whether the rows they flag are rejected.

    ``drop_*`` set to False still reports the rows but keeps them (then unparsable values stay NaN, and unparsable
    timestamps make the clean ``timestamp`` column nullable ``Int64``). ``max_abs_value`` (None: off) rejects finite
    values beyond plus or minus it as absurd (`ABSURD_VALUE`). ``max_future_seconds`` (None: off) rejects
    timestamps later than now plus that many seconds; ``min_timestamp`` (unix seconds or an ISO date) rejects older
    ones. ``max_count_zscore`` flags (user, item[, event type]) pairs whose summed value has a robust z-score above
    it: on ``log1p`` of the sums by default (counts are heavy-tailed), ``(s - median) / spread`` with the spread read
    from the upper quantile, ``(q99 - median) / 2.326`` (`_robust_location`): the standard deviation of the normal
    law with that median and 99th percentile. Both stay put as the data grow, and most pairs sharing the median
    (bought once) does not make it 0, so a threshold means the same on 600 customers as on 60,000; 7 suits retail
    counts (`RETAIL_COUNT_ZSCORE`). ``clip_outliers`` scales the flagged rows so that each pair sums
    to the threshold instead of rejecting them. ``min_*_interactions`` filter in one pass
    (use ``transforms.k_core`` for the iterated version). ``known_users``/``known_items`` reject ids absent from the
    attribute tables when those are given.
    """

    drop_missing: bool = True
    drop_duplicates: bool = True
    drop_invalid_values: bool = True
    max_abs_value: float | None = ABSURD_VALUE
    min_value: float | None = None
    max_value: float | None = None
    max_future_seconds: float | None = 0
    min_timestamp: int | str | None = None
    max_count_zscore: float | None = None
    zscore_scale: Literal["log1p", "raw"] = "log1p"
    clip_outliers: bool = False
    min_user_interactions: int = 1
    min_item_interactions: int = 1
    known_users: bool = True
    known_items: bool = True


def check_quality(
    frame: pd.DataFrame,
    rules: QualityRules | None = None,
    users: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    source: str = "interactions",
    now: float | None = None,
    user_group: str = "segment",
    item_group: str = "category",
    first_line: int | None = None,
    names: dict[str, str] | None = None,
) -> QualityReport:
    """Check a canonical interactions frame whose ``value``/``timestamp`` may still be raw (text, NaN).

    ``users``/``items`` are attribute tables (``user_id``/``item_id`` columns): ids are checked against them and the
    bias summary reports the share of each ``user_group`` and ``item_group`` value. ``now`` (unix seconds) defaults to
    the current time. ``first_line`` is the file line of the frame's first row (2 for a CSV file with a header):
    when given, messages name file lines, as the readers do, and rejected rows also carry a ``line`` column.
    ``names`` maps canonical columns to the names the source uses (``{"item_id": "product"}``): findings and messages
    say those.
    """
    rules = rules or QualityRules()
    for column in (USER_ID, ITEM_ID):
        if column not in frame.columns:
            raise DataError(
                f"{source} has no '{column}' column (columns: {list(frame.columns)}); map your id column to it."
            )
    frame = frame.reset_index(drop=True)
    checker = _Checker(frame, source, first_line, names or {})
    value = pd.to_numeric(frame[VALUE], errors="coerce").to_numpy(np.float64) if VALUE in frame else None
    seconds = _seconds(frame[TIMESTAMP]) if TIMESTAMP in frame else None
    _check_cells(checker, value, seconds, rules)
    if value is not None:
        _check_values(checker, value, rules)
    if seconds is not None:
        _check_timestamps(checker, seconds, rules, now)
    _check_ids(checker, users, items, rules)
    checker.flag("duplicate_row", ALL_COLUMNS, "warning", _duplicates(frame, checker.alive), rules.drop_duplicates,
                 "exact copies of an earlier row", "remove the copies at the source")
    value = np.ones(len(frame)) if value is None else value
    if rules.max_count_zscore is not None:
        value = _outliers(frame, value, checker, rules)
    _check_activity(checker, rules)

    clean = _canonical(frame, checker.alive, value, seconds)
    bias = bias_summary(clean, users, items, user_group, item_group)
    report = QualityReport(source, clean, checker.rejected(), tuple(checker.findings), bias, first_line)
    logger.info(
        "quality check source=%s rows=%d accepted=%d rejected=%d", source, len(frame), len(clean), len(report.rejected)
    )
    return report


VALIDITY_RULES = QualityRules(drop_duplicates=False, max_future_seconds=None, known_users=False, known_items=False)
"""The rules of `require_valid`: those on cells and values; repeated rows, future dates and ids absent from the
attribute tables are left to `tailored check`, as they may be wanted."""


def require_valid(frame: pd.DataFrame, source: str = "interactions", first_line: int | None = None,
                  names: dict[str, str] | None = None) -> pd.DataFrame:
    """``frame`` in canonical dtypes (as `check_quality` cleans it) when every row has its ids, a finite value within
    ``ABSURD_VALUE`` and a parsable timestamp; otherwise a DataError naming the rows of each failed rule (and the
    columns by ``names``, as `check_quality` does), so that no model is trained on them."""
    report = check_quality(frame, VALIDITY_RULES, source=source, first_line=first_line, names=names)
    return report.raise_for_errors(
        "`tailored check --interactions FILE --output clean.csv` writes the valid rows, and the rejected ones with "
        "their reasons beside them."
    ).clean


def _check_cells(checker: _Checker, value: np.ndarray | None, seconds: np.ndarray | None, rules: QualityRules) -> None:
    """Empty cells, then values and timestamps that do not parse."""
    frame = checker.frame
    blank = {column: _blank(frame[column]) for column in (USER_ID, ITEM_ID, VALUE, TIMESTAMP, EVENT_TYPE, BASKET_ID)
             if column in frame}
    for column, missing in blank.items():
        checker.flag("missing_value", column, "error", missing, rules.drop_missing,
                     "empty cells", "fill them or drop the rows")
    if value is not None:
        checker.flag("invalid_value", VALUE, "error", ~np.isfinite(value) & ~blank[VALUE], rules.drop_invalid_values,
                     "values that are not finite numbers", "write plain numbers such as 2 or 1.5 (dot as decimal mark)")
    if seconds is not None:
        checker.flag("invalid_timestamp", TIMESTAMP, "error", np.isnan(seconds) & ~blank[TIMESTAMP],
                     rules.drop_invalid_values, "timestamps that are neither unix seconds nor ISO-8601 dates",
                     "write e.g. 1704067200 or 2024-01-01T00:00:00Z")


def _check_values(checker: _Checker, value: np.ndarray, rules: QualityRules) -> None:
    if rules.max_abs_value is not None:
        checker.flag("absurd_value", VALUE, "error", np.abs(value) > rules.max_abs_value, rules.drop_invalid_values,
                     f"absurd values (beyond plus or minus {rules.max_abs_value:g})",
                     "correct the unit or the export, or raise max_abs_value if they are real")
    if rules.min_value is not None:
        checker.flag("below_minimum", VALUE, "error", value < rules.min_value, rules.drop_invalid_values,
                     f"values below the minimum {rules.min_value:g}", "correct them or lower min_value")
    if rules.max_value is not None:
        checker.flag("above_maximum", VALUE, "error", value > rules.max_value, rules.drop_invalid_values,
                     f"values above the maximum {rules.max_value:g}", "correct them or raise max_value")


def _check_timestamps(checker: _Checker, seconds: np.ndarray, rules: QualityRules, now: float | None) -> None:
    if rules.max_future_seconds is not None:
        limit = (pd.Timestamp.now(tz="UTC").timestamp() if now is None else now) + rules.max_future_seconds
        checker.flag("future_timestamp", TIMESTAMP, "error", seconds > limit, rules.drop_invalid_values,
                     f"timestamps in the future (after {_date(limit)})",
                     "check the clock or the unit (seconds, not milliseconds)")
    if rules.min_timestamp is not None:
        earliest = _seconds(pd.Series([rules.min_timestamp]))[0]
        if np.isnan(earliest):
            raise ConfigError(f"min_timestamp={rules.min_timestamp!r} is neither unix seconds nor an ISO-8601 date.")
        checker.flag("before_min_timestamp", TIMESTAMP, "warning", seconds < earliest, rules.drop_invalid_values,
                     f"timestamps before {_date(earliest)}", "lower min_timestamp to keep them")


def _check_ids(checker: _Checker, users: pd.DataFrame | None, items: pd.DataFrame | None, rules: QualityRules) -> None:
    for column, table, enabled in ((USER_ID, users, rules.known_users), (ITEM_ID, items, rules.known_items)):
        if table is not None and enabled:
            if column not in table.columns:
                raise DataError(f"The {column.split('_')[0]} table has no '{column}' column (columns: "
                                f"{list(table.columns)}); rename its id column to '{column}'.")
            unknown = ~id_strings(checker.frame[column]).isin(id_strings(table[column])).to_numpy()
            checker.flag("unknown_id", column, "error", unknown, True, f"ids absent from the {column.split('_')[0]} "
                         "table", "add them to the attribute table or fix the ids")


def _check_activity(checker: _Checker, rules: QualityRules) -> None:
    for column, minimum in ((USER_ID, rules.min_user_interactions), (ITEM_ID, rules.min_item_interactions)):
        if minimum > 1:
            rare = _rare(checker.frame[column], checker.alive, minimum)
            checker.flag("too_few_interactions", column, "warning", rare, True,
                         f"ids with fewer than {minimum} interactions",
                         f"lower min_{column.split('_')[0]}_interactions to keep them")


class _Checker:
    """Applies rules in turn to the rows still accepted, recording findings and each rejected row's reason."""

    def __init__(self, frame: pd.DataFrame, source: str, first_line: int | None = None,
                 names: dict[str, str] | None = None) -> None:
        self.frame = frame
        self.source = source
        self.first_line = first_line
        self.names = names or {}
        self.alive = np.ones(len(frame), bool)
        self.reasons = np.full(len(frame), None, dtype=object)
        self.findings: list[Finding] = []

    def flag(
        self,
        rule: str,
        column: str,
        severity: Severity,
        mask: np.ndarray,
        drop: bool,
        what: str,
        fix: str,
        action: Action | None = None,
        shown: pd.Series | None = None,
    ) -> np.ndarray:
        """Record the accepted rows in ``mask``; reject them when ``drop``. Returns the flagged rows."""
        flagged = np.asarray(mask, bool) & self.alive
        rows = np.flatnonzero(flagged)
        action = action or ("rejected" if drop else "kept")
        samples = self._samples(rows[:_SAMPLES], column, shown)
        field = self.names.get(column, column)
        where = f"column '{field}'" if column != ALL_COLUMNS else "all columns"
        if len(rows):
            numbers = rows[:_SAMPLES] + (self.first_line or 0)
            listed = ", ".join(f"{r} ({s!r})" for r, s in zip(numbers, samples, strict=True))
            more = ", ..." if len(rows) > _SAMPLES else ""
            noun = ("line" if self.first_line is not None else "row") + ("s" if len(rows) > 1 else "")
            where += f" ({noun} {listed}{more})"
            message = f"{self.source}: {len(rows)} row(s) with {what} in {where}; {action}; {fix}."
        else:
            message = f"{self.source}: no {what} in {where}."
        sample_rows = tuple(int(r) for r in rows[:_SAMPLES])
        self.findings.append(Finding(rule, field, severity, action, len(rows), sample_rows, samples, message))
        if drop:
            self.reasons[flagged] = f"{rule}:{column}"
            self.alive &= ~flagged
        return flagged

    def _samples(self, rows: np.ndarray, column: str, shown: pd.Series | None) -> tuple[str, ...]:
        if shown is not None:
            return tuple(str(v) for v in shown.iloc[rows])
        if column == ALL_COLUMNS:
            return tuple("|".join(str(v) for v in row) for row in self.frame.iloc[rows].itertuples(index=False))
        return tuple(str(v) for v in self.frame[column].iloc[rows])

    def rejected(self) -> pd.DataFrame:
        rows = np.flatnonzero(~self.alive)
        table = self.frame.iloc[rows].reset_index(drop=True)
        table = table.astype({name: "str" for name in table.columns if table[name].dtype == object})
        table.insert(0, REASON, self.reasons[rows].astype(str))
        table.insert(0, ROW, rows.astype(np.int64))
        if self.first_line is not None:
            table.insert(1, LINE, rows.astype(np.int64) + self.first_line)
        return table


def _blank(column: pd.Series) -> np.ndarray:
    """Missing cells: NaN/None, or text that is empty after stripping."""
    missing = column.isna().to_numpy()
    if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column)):
        missing = missing | (column.astype("str").str.strip() == "").fillna(False).to_numpy(bool)
    return missing


def _seconds(raw: pd.Series) -> np.ndarray:
    """Unix seconds (floored, float64, NaN when missing or unparsable) from numbers, datetimes or ISO-8601 text."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        moments = raw if raw.dt.tz is not None else raw.dt.tz_localize("UTC")
        return np.floor((moments - _EPOCH).dt.total_seconds().to_numpy(np.float64))
    numbers = pd.to_numeric(raw, errors="coerce")
    if pd.api.types.is_numeric_dtype(raw):
        return np.floor(numbers.to_numpy(np.float64))
    text = raw.where(numbers.isna() & raw.notna())
    dates = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    from_dates = (dates - _EPOCH).dt.total_seconds().to_numpy(np.float64)
    parsed = np.where(numbers.notna(), numbers.to_numpy(np.float64), from_dates)
    return np.floor(parsed)


def _duplicates(frame: pd.DataFrame, alive: np.ndarray) -> np.ndarray:
    duplicated = np.zeros(len(frame), bool)
    duplicated[alive] = frame[alive].duplicated(keep="first").to_numpy()
    return duplicated


def _rare(ids: pd.Series, alive: np.ndarray, minimum: int) -> np.ndarray:
    codes, uniques = pd.factorize(ids)
    counted = alive & (codes >= 0)
    counts = np.append(np.bincount(codes[counted], minlength=len(uniques)), 0)  # code -1 (missing id) reads the 0
    return counted & (counts[codes] < minimum)


def _outliers(frame: pd.DataFrame, value: np.ndarray, checker: _Checker, rules: QualityRules) -> np.ndarray:
    """Flag rows of pairs whose summed value is an outlier; reject them, or scale them down when clipping."""
    keys = [USER_ID, ITEM_ID] + ([EVENT_TYPE] if EVENT_TYPE in frame.columns else [])
    alive = checker.alive
    pair = np.full(len(frame), -1)
    if alive.any():
        pair[alive] = frame.loc[alive, keys].groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
    totals = np.bincount(pair[alive], weights=value[alive], minlength=1)
    scaled = np.log1p(np.clip(totals, 0.0, None)) if rules.zscore_scale == "log1p" else totals
    center, spread = _robust_location(scaled[np.isfinite(scaled)])
    threshold = float(rules.max_count_zscore)  # type: ignore[arg-type]
    outlying = (scaled - center) > threshold * spread if spread > 0 else np.zeros(len(scaled), bool)
    row_total = np.where(pair >= 0, totals[np.maximum(pair, 0)], np.nan)
    flagged = checker.flag(
        "outlier_count", VALUE, "warning", (pair >= 0) & outlying[np.maximum(pair, 0)],
        not rules.clip_outliers, f"(user, item) totals with a robust z-score above {threshold:g}",
        ("their values were clipped to the threshold; raise max_count_zscore to keep them as they are"
         if rules.clip_outliers else "set clip_outliers=True to keep them clipped, or raise max_count_zscore"),
        action="clipped" if rules.clip_outliers else None, shown=pd.Series(row_total),
    )
    if rules.clip_outliers and flagged.any():
        cap_scaled = center + threshold * spread
        cap = math.expm1(cap_scaled) if rules.zscore_scale == "log1p" else cap_scaled
        value = value.copy()
        value[flagged] *= cap / row_total[flagged]
    return value


def _robust_location(values: np.ndarray) -> tuple[float, float]:
    """Median and a robust standard deviation from the upper quantile: ``(q99 - median) / 2.326``, the spread of the
    normal law with the same median and 99th percentile (unlike the MAD, not 0 when most values equal the median;
    1% of the values, and always the largest one, may be anything: the percentile is a value of the data, never
    interpolated towards the largest). When the 99th percentile is the median too, 1.2533 x the mean absolute
    deviation."""
    if len(values) == 0:
        return 0.0, 0.0
    center = float(np.median(values))
    spread = (float(np.quantile(values, TAIL_QUANTILE, method="lower")) - center) / TAIL_NORMAL_Z
    return center, spread or 1.2533 * float(np.abs(values - center).mean())


def _canonical(frame: pd.DataFrame, alive: np.ndarray, value: np.ndarray, seconds: np.ndarray | None) -> pd.DataFrame:
    clean = frame[alive].reset_index(drop=True)
    clean[USER_ID] = id_strings(clean[USER_ID])
    clean[ITEM_ID] = id_strings(clean[ITEM_ID])
    clean[VALUE] = value[alive]
    if seconds is not None:
        kept = seconds[alive]
        clean[TIMESTAMP] = kept.astype(np.int64) if not np.isnan(kept).any() else pd.array(kept, dtype="Int64")
    leading = [USER_ID, ITEM_ID, VALUE] + ([TIMESTAMP] if seconds is not None else [])
    return clean[leading + [c for c in clean.columns if c not in leading]]


def _date(seconds: float) -> str:
    return pd.Timestamp(math.floor(seconds), unit="s", tz="UTC").isoformat()
